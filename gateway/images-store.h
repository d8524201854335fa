/* images-store.h: the store half of images.c, shared by the daemon and
 * the `iscsi-gw images` command: where each initiator's image lives, its
 * metadata file and lock, and creating and removing images of each kind.
 * Blocking calls (they run qemu-img and LVM's commands): never on the
 * network loop.
 */
#ifndef IGW_IMAGES_STORE_H
#define IGW_IMAGES_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct image_paths {
	char key[80];		/* safe initiator name + hash */
	char *dir;		/* state_dir/images/<target>/lun<N> */
	char *meta;		/* dir/<key>.json: metadata and lock */
	char *image;		/* the image file, or VG/LV for lvm */
	char *device;		/* lvm: the LV's device path (lvs lv_path) */
};

void image_key(const char *target, unsigned lun, const char *initiator,
	       char *out, size_t outsz);
int image_paths(const char *state_dir, const char *target, unsigned lun,
		const struct conf_pi *pi, const char *initiator,
		struct image_paths *ip);
void image_paths_free(struct image_paths *ip);
const char *image_kind_name(const struct conf_pi *pi);

/* 1 there (lvm: ip->device set), 0 not, -1 error (message in err). */
int image_exists(const struct conf_pi *pi, struct image_paths *ip, char *err,
		 size_t errsz);
/* Create a new image; on error a login status and a message. */
int image_create(const struct conf_pi *pi, struct image_paths *ip,
		 uint16_t *status, char *err, size_t errsz);
int image_remove(const struct conf_pi *pi, struct image_paths *ip, char *err,
		 size_t errsz);
/* Open and flock the metadata file; -1 + EWOULDBLOCK when held. */
int image_lock(const struct image_paths *ip, bool wait);
int image_write_meta(int fd, const char *target, unsigned lun,
		     const struct conf_pi *pi, const char *initiator,
		     const struct image_paths *ip);
/* Run a command (no shell); see images-store.c. */
int image_run(char *const argv[], char **out, char **errout, bool progress);
/* Format a message into err (errsz bytes); returns -1.  status is for
 * the callers' symmetry and left as it is. */
int image_set_err(char *err, size_t errsz, uint16_t *status,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
