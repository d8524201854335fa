/* reload.h: live reload of the map, on SIGHUP or "reload" on the control
 * socket.  Owns the difference between the running map and the file as it
 * is now (conf-diff.c says what differs), opening what is new, the switch,
 * and the retired LUNs and targets, freed once nothing uses them.  Runs on
 * the network loop's thread, which is the only one that reads or changes
 * target and LUN tables (lunmap.h); the FUSE view rebuilds its own under
 * its lock (fuse_view_reload).
 *
 *   conf_load_file --> open every new or changed LUN --any fails--> refuse
 *        |                                                (nothing changed)
 *        v all open
 *   switch: swap each target's LUN table, add and drop targets,
 *           unit attentions, FUSE tables; dropped LUNs go on a list
 *        |
 *   tick: a dropped LUN with no task, FUSE file or image on it is closed
 *         on an IO worker; a dropped target with no connection is freed
 */
#ifndef IGW_RELOAD_H
#define IGW_RELOAD_H

struct conf;
struct lunmap;

/* At start-up, once the map is open: path is the map file (NULL for the
 * built-in map, which cannot be reloaded), c its conf, which the caller
 * keeps and frees after reload_free, m the running map.  Main thread. */
void reload_init(const char *path, const struct conf *c, struct lunmap *m);
/* Re-read the map file, verify it whole, open what is new, then switch;
 * a map that fails any of it is refused and the running one stays as it
 * was.  why names the trigger in log lines ("SIGHUP").  Returns the JSON
 * answer, one line without a newline, malloc'd (NULL: out of memory):
 * {"ok":true,"added":[..],"removed":[..],"changed":[..],"unchanged":N,...}
 * or {"ok":false,"error":"..."}.  Loop thread. */
char *reload_run(const char *why);
/* Once a second on the loop thread: close retired LUNs and free retired
 * targets that nothing uses any more. */
void reload_tick(void);
/* At exit, after the IO pool, the images and the FUSE view have stopped:
 * free what is retired and every conf a reload brought.  Idempotent. */
void reload_free(void);

#endif
