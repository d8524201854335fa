/* images-store.c: the store half of the per-initiator images (see
 * images-store.h), shared by the daemon and the `iscsi-gw images`
 * command: the names and paths of an initiator's image, its metadata file
 * and lock, running qemu-img and LVM's commands, and creating and
 * removing images of each kind.  Blocking: never on the network loop.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include <jansson.h>

#include "images.h"
#include "images-store.h"
#include "lvm.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "io/io.h"
#include "iscsi/iscsi.h"
#include "util/util.h"

/* ---- names ---- */

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
image_key(const char *target, unsigned lun, const char *initiator,
	  char *out, size_t outsz)
{
	char safe[65], whole[700];
	size_t n = 0;

	/* Initiator names come from the network: only [a-z0-9.-] pass,
	 * the rest become '_', and the hash keeps apart names that the
	 * folding makes equal.  Names compare case-insensitively
	 * (RFC 7143 §4.2.7.1), so the key does too. */
	for (const char *p = initiator; *p && n < sizeof safe - 1; p++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)*p);
		safe[n++] = (isalnum(ch) || ch == '.' || ch == '-') && ch < 128 ?
			(char)ch : '_';
	}
	safe[n] = '\0';
	snprintf(whole, sizeof whole, "%s/%u/%s", target, lun, initiator);
	snprintf(out, outsz, "%s-%08" PRIx32, safe,
		 (uint32_t)(fnv1a(whole) ^ (fnv1a(whole) >> 32)));
}

int
image_paths(const char *sdir, const char *target, unsigned lun,
	    const struct conf_pi *pi, const char *initiator,
	    struct image_paths *ip)
{
	char tdir[300];

	memset(ip, 0, sizeof *ip);
	image_key(target, lun, initiator, ip->key, sizeof ip->key);
	snprintf(tdir, sizeof tdir, "%s", target);
	for (char *p = tdir; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
		if (*p == '/')
			*p = '_';
	}
	if (asprintf(&ip->dir, "%s/images/%s/lun%u", sdir, tdir, lun) < 0) {
		ip->dir = NULL;
		return -1;
	}
	if (asprintf(&ip->meta, "%s/%s.json", ip->dir, ip->key) < 0) {
		ip->meta = NULL;
		return -1;
	}
	switch (pi->kind) {
	case PI_OVERLAY:
		if (asprintf(&ip->image, "%s/%s.qcow2", ip->dir, ip->key) < 0)
			ip->image = NULL;
		break;
	case PI_FILE:
		if (asprintf(&ip->image, "%s/%s.img", ip->dir, ip->key) < 0)
			ip->image = NULL;
		break;
	case PI_LVM:
		if (asprintf(&ip->image, "%s/%s-l%u-%s", pi->vg, pi->prefix,
			     lun, ip->key) < 0)
			ip->image = NULL;
		break;
	}
	return ip->image ? 0 : -1;
}

void
image_paths_free(struct image_paths *ip)
{
	free(ip->dir);
	free(ip->meta);
	free(ip->image);
	free(ip->device);
	memset(ip, 0, sizeof *ip);
}

static int
mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* ---- running commands (qemu-img, LVM) ---- */

/* Run argv (no shell) with stdin from /dev/null; collect stdout (when
 * out is given) and stderr, each up to 64 KiB.  Returns the exit status,
 * or -1 if it could not run.  progress: stdout goes to our stdout. */
int
image_run(char *const argv[], char **out, char **errout, bool progress)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	char *bufs[2] = { NULL, NULL };
	size_t lens[2] = { 0, 0 };
	pid_t pid;
	int status;

	if (out)
		*out = NULL;
	if (errout)
		*errout = NULL;
	if ((!progress && pipe2(po, O_CLOEXEC) < 0) || pipe2(pe, O_CLOEXEC) < 0) {
		int e = errno;
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		errno = e;
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		bufs[i] = calloc(1, 65536 + 1);
		if (!bufs[i])
			goto fail;
	}
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY);

		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (!progress)
			dup2(po[1], 1);
		dup2(pe[1], 2);
		/* LVM complains about every descriptor it inherits. */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		setenv("LVM_SUPPRESS_FD_WARNINGS", "1", 1);
		setenv("LC_ALL", "C", 1);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (!progress)
		close(po[1]);
	close(pe[1]);
	{
		struct pollfd pf[2] = {
			{ .fd = progress ? -1 : po[0], .events = POLLIN },
			{ .fd = pe[0], .events = POLLIN },
		};
		int open_fds = progress ? 1 : 2;

		while (open_fds > 0) {
			if (poll(pf, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			for (int i = 0; i < 2; i++) {
				char tmp[4096];
				ssize_t r;

				if (pf[i].fd < 0 || !pf[i].revents)
					continue;
				r = read(pf[i].fd, tmp, sizeof tmp);
				if (r <= 0) {
					close(pf[i].fd);
					pf[i].fd = -1;
					open_fds--;
					continue;
				}
				if (lens[i] + (size_t)r > 65536)
					r = (ssize_t)(65536 - lens[i]);
				memcpy(bufs[i] + lens[i], tmp, (size_t)r);
				lens[i] += (size_t)r;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (out)
		*out = bufs[0];
	else
		free(bufs[0]);
	/* The last line of stderr is the one that says why. */
	while (lens[1] && isspace((unsigned char)bufs[1][lens[1] - 1]))
		bufs[1][--lens[1]] = '\0';
	if (errout)
		*errout = bufs[1];
	else
		free(bufs[1]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
fail:
	{
		int e = errno;
		if (!progress) {
			close(po[0]);
			close(po[1]);
		}
		close(pe[0]);
		close(pe[1]);
		free(bufs[0]);
		free(bufs[1]);
		errno = e;
	}
	return -1;
}

int
image_set_err(char *err, size_t errsz, uint16_t *status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	(void)status;
	return -1;
}

static int
image_lvm_create(const struct conf_pi *pi, const struct image_paths *ip,
		 uint16_t *status, char *err, size_t errsz)
{
	const char *lv = strchr(ip->image, '/') + 1;
	char *opool = NULL;
	bool no_space;

	*status = LOGIN_TARGET_ERROR;
	if (pi->origin) {
		char origin[300];
		int r;

		snprintf(origin, sizeof origin, "%s/%s", pi->vg, pi->origin);
		r = lvm_report(origin, NULL, NULL, &opool, err, errsz);
		if (r <= 0) {
			if (r == 0)
				snprintf(err, errsz, "golden volume %s not found",
					 origin);
			free(opool);
			return -1;
		}
		if (!opool || strcmp(opool, pi->thin_pool)) {
			snprintf(err, errsz, "golden volume %s is not a thin volume in thin pool %s",
				 origin, pi->thin_pool);
			free(opool);
			return -1;
		}
		free(opool);
	}
	if (lvm_create_volume(pi->vg, lv, pi->origin, pi->thin_pool, pi->size,
			      &no_space, err, errsz) < 0) {
		if (no_space)
			*status = LOGIN_OUT_OF_RESOURCES;
		return -1;
	}
	return 0;
}

/* ---- the store ---- */

int
image_exists(const struct conf_pi *pi, struct image_paths *ip, char *err,
	     size_t errsz)
{
	struct stat st;

	if (pi->kind == PI_LVM) {
		int r;
		free(ip->device);
		ip->device = NULL;
		r = lvm_report(ip->image, &ip->device, NULL, NULL, err, errsz);
		if (r == 1 && !ip->device) {
			snprintf(err, errsz, "lvs %s: no lv_path", ip->image);
			return -1;
		}
		return r;
	}
	if (stat(ip->image, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	snprintf(err, errsz, "%s: %s", ip->image, strerror(errno));
	return -1;
}

int
image_remove(const struct conf_pi *pi, struct image_paths *ip, char *err,
	     size_t errsz)
{
	if (pi->kind == PI_LVM) {
		int r = lvm_report(ip->image, NULL, NULL, NULL, err, errsz);
		if (r < 0)
			return -1;
		if (r == 1 && lvm_remove(ip->image, err, errsz) < 0)
			return -1;
		return 0;
	}
	if (unlink(ip->image) < 0 && errno != ENOENT) {
		snprintf(err, errsz, "%s: %s", ip->image, strerror(errno));
		return -1;
	}
	fsync_dir(ip->dir);
	return 0;
}

int
image_create(const struct conf_pi *pi, struct image_paths *ip,
	     uint16_t *status, char *err, size_t errsz)
{
	CLEANUP_FREE char *tmp = NULL;
	struct stat st;
	int fd;

	*status = LOGIN_TARGET_ERROR;
	if (pi->kind == PI_LVM) {
		if (image_lvm_create(pi, ip, status, err, errsz) < 0)
			return -1;
		if (image_exists(pi, ip, err, errsz) != 1) {
			if (!err[0])
				snprintf(err, errsz, "lvcreate %s: the volume is not there afterwards",
					 ip->image);
			return -1;
		}
		return 0;
	}
	if (mkdir_p(ip->dir) < 0)
		return image_set_err(err, errsz, status, "%s: %s", ip->dir,
			       strerror(errno));
	/* Made under a temporary name and renamed: a crash never leaves a
	 * half-made image under the real one. */
	if (asprintf(&tmp, "%s.tmp", ip->image) < 0) {
		tmp = NULL;
		return image_set_err(err, errsz, status, "out of memory");
	}
	unlink(tmp);
	if (pi->kind == PI_OVERLAY) {
		char backing[PATH_MAX + 32];
		char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
				 "-F", (char *)pi->golden_format, "-b", backing,
				 tmp, NULL };
		char *eo = NULL;
		int rc;

		if (stat(pi->golden, &st) < 0)
			return image_set_err(err, errsz, status, "golden image %s: %s",
				       pi->golden, strerror(errno));
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			return image_set_err(err, errsz, status,
				       "golden image %s is not a file or a block device",
				       pi->golden);
		snprintf(backing, sizeof backing, "%s", pi->golden);
		rc = image_run(argv, NULL, &eo, false);
		if (rc != 0) {
			if (rc > 0 && eo && strcasestr(eo, "space"))
				*status = LOGIN_OUT_OF_RESOURCES;
			image_set_err(err, errsz, status, "qemu-img create %s: %s",
				ip->image, rc < 0 ? strerror(errno) : run_last_line(eo));
			free(eo);
			unlink(tmp);
			return -1;
		}
		free(eo);
		fd = open(tmp, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0) {
			image_set_err(err, errsz, status, "%s: %s", tmp, strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(tmp);
			return -1;
		}
		close(fd);
	} else {
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return image_set_err(err, errsz, status, "%s: %s", tmp,
				       strerror(errno));
		if (ftruncate(fd, (off_t)pi->size) < 0 || fsync(fd) < 0) {
			if (errno == ENOSPC || errno == EFBIG)
				*status = LOGIN_OUT_OF_RESOURCES;
			image_set_err(err, errsz, status, "%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		close(fd);
	}
	if (rename(tmp, ip->image) < 0) {
		image_set_err(err, errsz, status, "%s: %s", ip->image, strerror(errno));
		unlink(tmp);
		return -1;
	}
	fsync_dir(ip->dir);
	return 0;
}

static const char *const kind_names[] = { "overlay", "file", "lvm" };

const char *
image_kind_name(const struct conf_pi *pi)
{
	return kind_names[pi->kind];
}

/* The metadata file: open (creating it) and lock it.  Returns the fd, or
 * -1 with errno EWOULDBLOCK when another process holds it. */
int
image_lock(const struct image_paths *ip, bool wait)
{
	int fd;

	if (mkdir_p(ip->dir) < 0)
		return -1;
	for (int tries = 0; tries < 100; tries++) {
		struct stat a, b;

		fd = open(ip->meta, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		/* The holder before us may have deleted the file: a lock
		 * on an unlinked file guards nothing. */
		if (fstat(fd, &a) == 0 && stat(ip->meta, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

int
image_write_meta(int fd, const char *target, unsigned lun,
		 const struct conf_pi *pi, const char *initiator,
		 const struct image_paths *ip)
{
	json_t *o = json_object();
	char now[40], *text;
	time_t t = time(NULL);
	struct tm tm;
	size_t len;
	ssize_t w;

	if (!o)
		return -1;
	gmtime_r(&t, &tm);
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "initiator", json_string(initiator));
	json_object_set_new(o, "target", json_string(target));
	json_object_set_new(o, "lun", json_integer(lun));
	json_object_set_new(o, "kind", json_string(image_kind_name(pi)));
	json_object_set_new(o, "image", json_string(ip->image));
	if (pi->golden)
		json_object_set_new(o, "golden", json_string(pi->golden));
	json_object_set_new(o, "created", json_string(now));
	text = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!text)
		return -1;
	len = strlen(text);
	if (ftruncate(fd, 0) < 0) {
		free(text);
		return -1;
	}
	w = pwrite(fd, text, len, 0);
	free(text);
	if (w != (ssize_t)len || fsync(fd) < 0)
		return -1;
	return 0;
}
