/* fuse-view.h: the FUSE view of the running map (top-level "fuse_mount").
 * Owns the mount, its request threads and the path layout:
 *
 *   <fuse_mount>/<target name>/lun<N>        the LUN's bytes
 *   <fuse_mount>/<target name>/lun<N>.stats  its counters, as text
 *
 * Data goes through the backend (backend_pread/backend_pwrite), the same
 * calls the SCSI layer makes, so the view shows exactly what initiators
 * wrote.  Writes are allowed only on LUNs with "fuse_writable": true.
 * The LUNs, their locks and counters belong to lunmap.c.
 *
 * Threads: start and stop run on the main thread (start after the LUNs
 * are open and before privileges are dropped; stop before lunmap_free).
 * Requests are served on the view's own threads.
 */
#ifndef IGW_FUSE_VIEW_H
#define IGW_FUSE_VIEW_H

struct conf;
struct lunmap;

#include <stddef.h>
#include <stdio.h>

#ifdef HAVE_FUSE3
/* Mount the view on c->fuse_mount (nothing when it is NULL): creates the
 * folder when missing, lazily unmounts a stale mount left by a crashed
 * run, starts the request threads.  0, or -1 after logging why. */
int fuse_view_start(const struct conf *c, struct lunmap *m);
/* `iscsi-gw mount DIR` (control socket, loop thread): mount the view on
 * dir (absolute) when none is mounted.  0, or -1; msg says what
 * happened. */
int fuse_view_mount(const struct conf *c, struct lunmap *m, const char *dir,
		    char *msg, size_t msgsz);
/* Stop the threads and unmount (lazily: a reader holding a file open
 * cannot delay shutdown; its next access fails).  Safe to call when the
 * view was never started, and more than once. */
void fuse_view_stop(void);
/* A reload changed the map: rebuild the view's tables from it (c for
 * "fuse_writable").  Loop thread; nothing when the view is not mounted. */
void fuse_view_reload(const struct conf *c, struct lunmap *m);
#else
/* Without libfuse3, conf.c refuses "fuse_mount": nothing to do here. */
static inline int
fuse_view_start(const struct conf *c, struct lunmap *m)
{
	return 0;
}
static inline int
fuse_view_mount(const struct conf *c, struct lunmap *m, const char *dir,
		char *msg, size_t msgsz)
{
	snprintf(msg, msgsz, "this build of iscsi-gw has no FUSE view (libfuse3)");
	return -1;
}
static inline void
fuse_view_stop(void)
{
}
static inline void
fuse_view_reload(const struct conf *c, struct lunmap *m)
{
}
#endif

#endif
