/* lvm.c: LVM through its commands (lvs with JSON reports, lvcreate,
 * lvextend, lvremove), never by parsing human output.  Shared by
 * per-initiator images, LUNs of backend type "lvm" and `iscsi-gw
 * provision`.  Blocking: IO workers or the command line, never the
 * network loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fs.h>

#include <jansson.h>

#include "lvm.h"
#include "conf/conf.h"
#include "images-store.h"

int
run_cmd(char *const argv[], char **out, char **errout, bool progress)
{
	return image_run(argv, out, errout, progress);
}

/* The last line of a command's stderr, for messages. */
const char *
run_last_line(const char *s)
{
	const char *nl;

	if (!s || !*s)
		return "no message";
	nl = strrchr(s, '\n');
	s = nl ? nl + 1 : s;
	while (*s == ' ')
		s++;
	return s;
}

/* ---- LVM: its commands, with JSON reports ---- */

/* lvs VG/LV: path, size in bytes, pool.  Returns 1 found, 0 not, -1 error. */
int
lvm_report(const char *vglv, char **path, uint64_t *size, char **pool,
	   char *err, size_t errsz)
{
	char *argv[] = { "lvs", "--reportformat", "json", "--units", "b",
			 "--nosuffix", "-o", "lv_name,lv_path,lv_size,pool_lv",
			 (char *)vglv, NULL };
	char *out = NULL, *eo = NULL;
	json_t *root, *lv;
	json_error_t je;
	int st = run_cmd(argv, &out, &eo, false);

	if (path)
		*path = NULL;
	if (pool)
		*pool = NULL;
	if (st < 0) {
		snprintf(err, errsz, "lvs: %s", strerror(errno));
		return -1;
	}
	if (st != 0) {
		/* "Failed to find logical volume": not there. */
		int notfound = eo && (strstr(eo, "ailed to find") ||
				      strstr(eo, "not found"));
		if (!notfound)
			snprintf(err, errsz, "lvs %s: %s", vglv, run_last_line(eo));
		free(out);
		free(eo);
		return notfound ? 0 : -1;
	}
	free(eo);
	root = json_loads(out, 0, &je);
	free(out);
	lv = json_array_get(json_object_get(json_array_get(
		json_object_get(root, "report"), 0), "lv"), 0);
	if (!lv) {
		json_decref(root);
		if (!root) {
			snprintf(err, errsz, "lvs %s: output is not a JSON report", vglv);
			return -1;
		}
		return 0;
	}
	if (path && json_is_string(json_object_get(lv, "lv_path")))
		*path = strdup(json_string_value(json_object_get(lv, "lv_path")));
	if (pool && json_is_string(json_object_get(lv, "pool_lv")))
		*pool = strdup(json_string_value(json_object_get(lv, "pool_lv")));
	if (size) {
		const char *s = json_string_value(json_object_get(lv, "lv_size"));
		*size = s ? strtoull(s, NULL, 10) : 0;
	}
	json_decref(root);
	return 1;
}

/* Out of space, in LVM's words: the login gets "out of resources". */
bool
lvm_no_space(const char *msg)
{
	return msg && (strcasestr(msg, "insufficient") ||
		       strcasestr(msg, "free space") ||
		       strcasestr(msg, "out of") || strcasestr(msg, "full"));
}

int
lvm_remove(const char *vglv, char *err, size_t errsz)
{
	char *argv[] = { "lvremove", "--yes", (char *)vglv, NULL };
	char *eo = NULL;
	int st = run_cmd(argv, NULL, &eo, false);

	if (st != 0) {
		snprintf(err, errsz, "lvremove %s: %s", vglv,
			 st < 0 ? strerror(errno) : run_last_line(eo));
		free(eo);
		return -1;
	}
	free(eo);
	return 0;
}


int
lvm_create_volume(const char *vg, const char *lv, const char *origin,
		  const char *thin_pool, uint64_t size, bool *no_space,
		  char *err, size_t errsz)
{
	char vglv[300], sz[40];
	char *eo = NULL, *path = NULL;
	int st;

	*no_space = false;
	snprintf(vglv, sizeof vglv, "%s/%s", vg, origin ? origin : lv);
	snprintf(sz, sizeof sz, "%" PRIu64 "b", size);
	if (origin) {
		char *argv[] = { "lvcreate", "--yes", "--snapshot", "--name",
				 (char *)lv, "--setactivationskip", "n",
				 "--activate", "y", vglv, NULL };
		st = run_cmd(argv, NULL, &eo, false);
	} else if (thin_pool) {
		char *argv[] = { "lvcreate", "--yes", "--type", "thin",
				 "--virtualsize", sz, "--thinpool",
				 (char *)thin_pool, "--name", (char *)lv,
				 (char *)vg, NULL };
		st = run_cmd(argv, NULL, &eo, false);
	} else {
		char *argv[] = { "lvcreate", "--yes", "--size", sz, "--name",
				 (char *)lv, "--activate", "y", (char *)vg, NULL };
		st = run_cmd(argv, NULL, &eo, false);
	}
	if (st != 0) {
		snprintf(err, errsz, "lvcreate %s/%s: %s", vg, lv,
			 st < 0 ? strerror(errno) : run_last_line(eo));
		*no_space = st > 0 && lvm_no_space(eo);
		free(eo);
		return -1;
	}
	free(eo);
	if (!origin && !thin_pool) {
		/* A fresh thick volume holds whatever its extents held
		 * before: zero it, so nobody reads another's old data. */
		uint64_t range[2] = { 0, size };
		int fd;

		snprintf(vglv, sizeof vglv, "%s/%s", vg, lv);
		if (lvm_report(vglv, &path, NULL, NULL, err, errsz) <= 0 ||
		    !path) {
			if (!err[0])
				snprintf(err, errsz, "lvs %s: no such volume after lvcreate",
					 vglv);
			free(path);
			return -1;
		}
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, BLKZEROOUT, range) < 0) {
			snprintf(err, errsz, "zeroing the new volume %s: %s", path,
				 strerror(errno));
			if (fd >= 0)
				close(fd);
			free(path);
			return -1;
		}
		close(fd);
		free(path);
	}
	return 0;
}

int
lvm_extend(const char *vglv, uint64_t size, bool *no_space, char *err,
	   size_t errsz)
{
	char sz[40];
	char *argv[] = { "lvextend", "--size", sz, (char *)vglv, NULL };
	char *eo = NULL;
	int st;

	*no_space = false;
	snprintf(sz, sizeof sz, "%" PRIu64 "b", size);
	st = run_cmd(argv, NULL, &eo, false);
	if (st != 0) {
		snprintf(err, errsz, "lvextend %s: %s", vglv,
			 st < 0 ? strerror(errno) : run_last_line(eo));
		*no_space = st > 0 && lvm_no_space(eo);
		free(eo);
		return -1;
	}
	free(eo);
	return 0;
}

int
lvm_lun_volume(const struct conf_kv *keys, size_t nkeys, bool create,
	       char **device, char *err, size_t errsz)
{
	const char *vg = NULL, *lv = NULL, *pool = NULL;
	uint64_t size = 0;
	char vglv[300];
	bool no_space;
	int r;

	*device = NULL;
	err[0] = '\0';
	for (size_t i = 0; i < nkeys; i++) {
		if (!strcmp(keys[i].key, "vg"))
			vg = keys[i].value;
		else if (!strcmp(keys[i].key, "lv"))
			lv = keys[i].value;
		else if (!strcmp(keys[i].key, "thin_pool"))
			pool = keys[i].value;
		else if (!strcmp(keys[i].key, "size"))
			size = strtoull(keys[i].value, NULL, 10);
	}
	if (!vg || !lv) {
		snprintf(err, errsz, "'vg' and 'lv' are required");
		return -1;
	}
	snprintf(vglv, sizeof vglv, "%s/%s", vg, lv);
	r = lvm_report(vglv, device, NULL, NULL, err, errsz);
	if (r < 0)
		return -1;
	if (r == 1) {
		if (!*device) {
			snprintf(err, errsz, "lvs %s: no device path", vglv);
			return -1;
		}
		return 0;
	}
	if (!create || !size) {
		snprintf(err, errsz, "logical volume %s does not exist%s", vglv,
			 size ? "" : " and the map gives no 'size' to create it with");
		return -1;
	}
	if (lvm_create_volume(vg, lv, NULL, pool, size, &no_space, err,
			      errsz) < 0)
		return -1;
	if (lvm_report(vglv, device, NULL, NULL, err, errsz) != 1 || !*device) {
		if (!err[0])
			snprintf(err, errsz, "lvs %s: not there after lvcreate", vglv);
		return -1;
	}
	return 1;
}
