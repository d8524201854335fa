/* lvm.h: LVM through its commands; see lvm.c. */
#ifndef IGW_LVM_H
#define IGW_LVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Run argv (no shell); see image_run in images.c. */
int run_cmd(char *const argv[], char **out, char **errout, bool progress);
/* The last line of a command's stderr, for messages. */
const char *run_last_line(const char *s);

/* lvs VG/LV: device path, size in bytes, thin pool (each optional,
 * malloc'd).  1 found, 0 not there, -1 error (message in err). */
int lvm_report(const char *vglv, char **path, uint64_t *size, char **pool,
	       char *err, size_t errsz);
/* LVM's words for "out of space". */
bool lvm_no_space(const char *msg);
/* A thin snapshot of origin (size ignored), a thin volume in thin_pool,
 * or a thick volume of size bytes (zeroed before it is returned). */
int lvm_create_volume(const char *vg, const char *lv, const char *origin,
		      const char *thin_pool, uint64_t size, bool *no_space,
		      char *err, size_t errsz);
int lvm_extend(const char *vglv, uint64_t size, bool *no_space, char *err,
	       size_t errsz);
int lvm_remove(const char *vglv, char *err, size_t errsz);

struct conf_kv;
/* A LUN of backend type "lvm" (keys vg, lv, size, thin_pool): find its
 * volume, creating it when missing if create and the keys give a size.
 * Returns 0 found, 1 created (device set, malloc'd), -1 error. */
int lvm_lun_volume(const struct conf_kv *keys, size_t nkeys, bool create,
		   char **device, char *err, size_t errsz);

#endif
