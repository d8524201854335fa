/* images.h: per-initiator images.  A LUN whose map entry has
 * "per_initiator" is a template; every initiator that logs in to its
 * target gets an image of its own, found again by the initiator's name
 * at every later login and after restarts:
 *
 *   overlay  state_dir/images/<target>/lun<N>/<key>.qcow2, a qcow2 overlay
 *            whose backing file is the golden image (made by qemu-img,
 *            served by a qemu-nbd the gateway runs)
 *   file     state_dir/images/<target>/lun<N>/<key>.img, a sparse file
 *   lvm      <vg>/<prefix>-l<N>-<key>, a thin snapshot of origin or a
 *            fresh LV, made and removed with LVM's commands
 *
 * <key> is the initiator name made safe for file and LV names plus a
 * hash of the exact target/LUN/initiator, so two initiators never share
 * an image.  Next to each image, <key>.json records whose it is; the
 * gateway holds an flock on it while the image is open, which is how
 * `iscsi-gw images` knows an image is in use.
 *
 * Owns the registry of open images (a mutex; provisioning and closing
 * run on IO workers, never on the network loop).
 */
#ifndef IGW_IMAGES_H
#define IGW_IMAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct lun;
struct lunmap;

/* The map's state_dir, set once at start-up. */
void images_init(const struct lunmap *m);

/* The image of tmpl for initiator: opened (and first created, or
 * recreated under policy reset) unless another session of the same
 * initiator has it open already.  Blocks: IO workers only.  On failure
 * returns -1 with a login status (LOGIN_*) and a message for the log. */
int images_acquire(struct lun *tmpl, const char *initiator, struct lun **out,
		   uint16_t *status, char *err, size_t errsz);
/* Drop a reference; the last one closes the image (and deletes it under
 * policy delete).  Blocks: IO workers, or the loop at shutdown. */
void images_release(struct lun *inst);
/* From the loop thread: release on an IO worker. */
struct evloop;
void images_release_async(struct lun *inst, struct evloop *loop);
/* After the IO pool has stopped: free what asynchronous releases left. */
void images_shutdown(void);

/* The first open image that match accepts (called with the registry
 * locked: must not block), with a reference taken; drop it with
 * images_release.  NULL when none matches. */
struct lun *images_hold_match(bool (*match)(struct lun *inst, void *opaque),
			      void *opaque);
/* Call fn for each open image (registry locked: fn must not block). */
void images_foreach(void (*fn)(struct lun *inst, void *opaque), void *opaque);
/* Does the registry hold an image of tmpl, in any state?  Entries use
 * their template until they are gone, so a template that a reload
 * dropped is freed only once this is false (reload.c).  Any thread. */
bool images_template_busy(const struct lun *tmpl);

#endif
