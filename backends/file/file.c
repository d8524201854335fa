/* file.c: the "file" backend.  A LUN stored in a regular file (sparse when
 * created by us), read and written with pread/pwrite through the page cache,
 * or with O_DIRECT when "direct" is set: then reads and writes aligned to
 * 4096 bytes go through Linux native AIO (kaio.c: io_submit from the
 * network loop, completions on a reaper thread), unless "aio" is false or
 * the build has no libaio; the rest run on the IO workers.
 *
 * Keys: path (required), size (creates a sparse file when missing; an
 * existing file of another size is refused unless resize is true), resize,
 * direct, aio (default true; only with direct).  Relative paths were made
 * absolute by the core.
 *
 * Durability: FUA writes use pwritev2(RWF_DSYNC), or an iocb with
 * aio_rw_flags RWF_DSYNC, which makes just that range (and the metadata to
 * reach it) stable before the call returns or the iocb completes.  flush() of a range first
 * writes that range back with sync_file_range(), then fdatasync()s the file
 * (sync_file_range alone does not flush metadata or the disk's cache).
 *
 * Threads: parallel; the handle is read-only once open returns, but for
 * the rmw lock and the capability flags.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "iscsi-gw-backend.h"
#include "backends/common/kaio.h"
#include "util/util.h"

struct file_instance {
	char *path;
	uint64_t size;
	bool have_size;
	bool resize;
	bool direct;
	bool aio;
};

struct igw_file_handle {
	struct file_instance *inst;
	int fd;
	bool readonly;
	bool can_punch;
	bool can_zero_range;
	/* With O_DIRECT a write that is not aligned is a read-modify-write
	 * of whole aligned blocks; it holds rmw exclusively, every other
	 * write, zeroing or punch shared, so nothing written next to it in
	 * the same aligned block can be put back to its old contents.  An
	 * async write holds it shared from submission to completion, and is
	 * released on the reaper thread: hence a lock of our own rather
	 * than a pthread_rwlock_t (released by the thread that took it).
	 * rmw_m guards the counts; writers waiting come first. */
	pthread_mutex_t rmw_m;
	pthread_cond_t rmw_c;
	unsigned rmw_shared;
	bool rmw_excl;
	unsigned rmw_excl_wait;
	struct kaio *aio;	/* NULL: everything on the workers */
};

static void *
file_instance_new(void)
{
	struct file_instance *fi = calloc(1, sizeof *fi);

	if (fi)
		fi->aio = true;
	return fi;
}

static void
file_instance_free(void *p)
{
	struct file_instance *fi = p;

	if (fi) {
		free(fi->path);
		free(fi);
	}
}

static int
parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -1;
}

static int
file_config(void *p, const char *key, const char *value)
{
	struct file_instance *fi = p;

	if (!strcmp(key, "path")) {
		free(fi->path);
		fi->path = strdup(value);
		return fi->path ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "size")) {
		if (parse_size(value, &fi->size) < 0 || fi->size == 0) {
			igw_backend_error("size '%s' is not a size such as 512M or 1G",
					  value);
			return -EINVAL;
		}
		fi->have_size = true;
		return 0;
	}
	if (!strcmp(key, "resize") || !strcmp(key, "direct") ||
	    !strcmp(key, "aio")) {
		bool b;
		if (parse_bool(value, &b) < 0) {
			igw_backend_error("'%s' must be true or false", key);
			return -EINVAL;
		}
		if (key[0] == 'r')
			fi->resize = b;
		else if (key[0] == 'd')
			fi->direct = b;
		else
			fi->aio = b;
		return 0;
	}
	igw_backend_error("unknown key '%s' for backend type file", key);
	return -EINVAL;
}

static int
file_config_complete(void *p)
{
	struct file_instance *fi = p;

	if (!fi->path) {
		igw_backend_error("'path' is required for backend type file");
		return -EINVAL;
	}
	return 0;
}

/* Requests in flight per LUN on the async path; more go to the workers. */
#define AIO_DEPTH 128

static void rmw_release(void *p);

static void *
file_open(void *p, int readonly)
{
	struct file_instance *fi = p;
	struct igw_file_handle *h;
	struct stat st;
	int flags = readonly ? O_RDONLY : O_RDWR;
	int fd;

	if (fi->direct)
		flags |= O_DIRECT;
	fd = open(fi->path, flags | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && fi->have_size && !readonly) {
		/* Sparse create: the file takes no space until written. */
		fd = open(fi->path, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t)fi->size) < 0) {
			igw_backend_error("%s: ftruncate: %m", fi->path);
			close(fd);
			unlink(fi->path);
			return NULL;
		}
	}
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT && !fi->have_size)
			igw_backend_error("%s: does not exist (give 'size' to create it)",
					  fi->path);
		else
			igw_backend_error("%s: open: %s", fi->path, strerror(e));
		errno = e;
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		igw_backend_error("%s: fstat: %m", fi->path);
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		igw_backend_error("%s: not a regular file (use type blockdev for devices)",
				  fi->path);
		errno = EINVAL;
		goto err;
	}
	if (fi->have_size && (uint64_t)st.st_size != fi->size) {
		if (!fi->resize || readonly) {
			igw_backend_error("%s: file is %" PRIu64 " bytes, map says %"
					  PRIu64 " (set \"resize\": true to resize it)",
					  fi->path, (uint64_t)st.st_size, fi->size);
			errno = EINVAL;
			goto err;
		}
		if (ftruncate(fd, (off_t)fi->size) < 0) {
			igw_backend_error("%s: ftruncate: %m", fi->path);
			goto err;
		}
	}
	h = calloc(1, sizeof *h);
	if (!h)
		goto err;
	h->inst = fi;
	h->fd = fd;
	pthread_mutex_init(&h->rmw_m, NULL);
	pthread_cond_init(&h->rmw_c, NULL);
	h->readonly = readonly;
	h->can_punch = true;
	h->can_zero_range = true;
	/* Without AIO (no libaio, io_setup refused: fs.aio-max-nr) the
	 * LUN is served, all on the workers. */
	if (fi->direct && fi->aio)
		h->aio = kaio_new(fd, AIO_DEPTH, rmw_release, h);
	return h;
err:
	{
		int e = errno;
		close(fd);
		errno = e ? e : EIO;
	}
	return NULL;
}

static void
file_close(void *p)
{
	struct igw_file_handle *h = p;

	kaio_free(h->aio);
	/* A clean stop leaves nothing in the page cache unflushed. */
	if (!h->readonly && fdatasync(h->fd) < 0)
		igw_backend_error("%s: fdatasync at close: %m", h->inst->path);
	close(h->fd);
	pthread_mutex_destroy(&h->rmw_m);
	pthread_cond_destroy(&h->rmw_c);
	free(h);
}

static int64_t
file_get_size(void *p)
{
	struct igw_file_handle *h = p;
	struct stat st;

	if (fstat(h->fd, &st) < 0)
		return -errno;
	return st.st_size;
}

static int
file_can_write(void *p)
{
	return !((struct igw_file_handle *)p)->readonly;
}

static int
file_yes(void *p)
{
	return 1;
}

/* O_DIRECT needs buffer, offset and length aligned to the device's
 * logical block: an unaligned request goes through an aligned bounce
 * buffer (read-modify-write for writes, under h->rmw).  On a LUN with
 * 4096-byte blocks SCSI requests never bounce; on one with 512-byte
 * blocks those not aligned to 4096 bytes do. */
#define DIRECT_ALIGN 4096

static bool
unaligned(const struct igw_file_handle *h, const void *buf, uint32_t count,
	  uint64_t offset)
{
	return h->inst->direct &&
	       (((uintptr_t)buf | count | offset) & (DIRECT_ALIGN - 1));
}

/* Writes other than a bounce's: shared, and only with O_DIRECT (through
 * the page cache nothing bounces). */
static void
rmw_shared(struct igw_file_handle *h)
{
	if (!h->inst->direct)
		return;
	pthread_mutex_lock(&h->rmw_m);
	while (h->rmw_excl || h->rmw_excl_wait)
		pthread_cond_wait(&h->rmw_c, &h->rmw_m);
	h->rmw_shared++;
	pthread_mutex_unlock(&h->rmw_m);
}

/* The async path: never waits (the network loop calls it). */
static bool
rmw_try_shared(struct igw_file_handle *h)
{
	bool ok;

	pthread_mutex_lock(&h->rmw_m);
	ok = !h->rmw_excl && !h->rmw_excl_wait;
	if (ok)
		h->rmw_shared++;
	pthread_mutex_unlock(&h->rmw_m);
	return ok;
}

/* Any thread: the reaper releases async writes (kaio after_write). */
static void
rmw_release(void *p)
{
	struct igw_file_handle *h = p;

	pthread_mutex_lock(&h->rmw_m);
	if (--h->rmw_shared == 0 && h->rmw_excl_wait)
		pthread_cond_broadcast(&h->rmw_c);
	pthread_mutex_unlock(&h->rmw_m);
}

static void
rmw_done(struct igw_file_handle *h)
{
	if (h->inst->direct)
		rmw_release(h);
}

static void
rmw_exclusive(struct igw_file_handle *h)
{
	pthread_mutex_lock(&h->rmw_m);
	h->rmw_excl_wait++;
	while (h->rmw_excl || h->rmw_shared)
		pthread_cond_wait(&h->rmw_c, &h->rmw_m);
	h->rmw_excl_wait--;
	h->rmw_excl = true;
	pthread_mutex_unlock(&h->rmw_m);
}

static void
rmw_exclusive_done(struct igw_file_handle *h)
{
	pthread_mutex_lock(&h->rmw_m);
	h->rmw_excl = false;
	pthread_cond_broadcast(&h->rmw_c);
	pthread_mutex_unlock(&h->rmw_m);
}

static int pread_all(struct igw_file_handle *h, void *buf, uint32_t count,
		     uint64_t offset);
static int pwrite_all(struct igw_file_handle *h, const void *buf,
		      uint32_t count, uint64_t offset, uint32_t flags);

static int
bounce(struct igw_file_handle *h, void *buf, uint32_t count, uint64_t offset,
       bool write, uint32_t flags)
{
	uint64_t start = offset & ~(uint64_t)(DIRECT_ALIGN - 1);
	uint64_t end = (offset + count + DIRECT_ALIGN - 1) &
		       ~(uint64_t)(DIRECT_ALIGN - 1);
	void *b;
	int r;

	if (posix_memalign(&b, DIRECT_ALIGN, end - start))
		return -ENOMEM;
	if (write)
		rmw_exclusive(h);
	r = pread_all(h, b, end - start, start);
	if (r == 0 && write) {
		memcpy((char *)b + (offset - start), buf, count);
		r = pwrite_all(h, b, end - start, start, flags);
	}
	if (write)
		rmw_exclusive_done(h);
	if (r == 0 && !write) {
		memcpy(buf, (char *)b + (offset - start), count);
	}
	free(b);
	return r;
}

static int
file_pread(void *p, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct igw_file_handle *h = p;

	if (unaligned(h, buf, count, offset))
		return bounce(h, buf, count, offset, false, flags);
	return pread_all(h, buf, count, offset);
}

static int
pread_all(struct igw_file_handle *h, void *buf, uint32_t count,
	  uint64_t offset)
{
	char *b = buf;

	while (count > 0) {
		ssize_t r = pread(h->fd, b, count, (off_t)offset);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) /* past the end: the core checked bounds */
			return -EIO;
		b += r;
		count -= r;
		offset += r;
	}
	return 0;
}

static int
file_pwrite(void *p, const void *buf, uint32_t count, uint64_t offset,
	    uint32_t flags)
{
	struct igw_file_handle *h = p;
	int r;

	if (unaligned(h, buf, count, offset))
		return bounce(h, (void *)buf, count, offset, true, flags);
	rmw_shared(h);
	r = pwrite_all(h, buf, count, offset, flags);
	rmw_done(h);
	return r;
}

static int
pwrite_all(struct igw_file_handle *h, const void *buf, uint32_t count,
	   uint64_t offset, uint32_t flags)
{
	const char *b = buf;
	int rwf = (flags & IGW_FLAG_FUA) ? RWF_DSYNC : 0;

	while (count > 0) {
		struct iovec iov = { .iov_base = (void *)b, .iov_len = count };
		ssize_t r = pwritev2(h->fd, &iov, 1, (off_t)offset, rwf);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += r;
		count -= r;
		offset += r;
	}
	return 0;
}

static int
file_flush(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct igw_file_handle *h = p;

	if (count > 0 &&
	    sync_file_range(h->fd, (off_t)offset, (off_t)count,
			    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			    SYNC_FILE_RANGE_WAIT_AFTER) < 0 && errno != ESPIPE)
		return -errno;
	if (fdatasync(h->fd) < 0)
		return -errno;
	return 0;
}

static int
file_trim(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct igw_file_handle *h = p;

	int r;

	if (!h->can_punch)
		return 0; /* trim is advisory */
	rmw_shared(h);
	r = fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)count);
	rmw_done(h);
	if (r < 0) {
		if (errno == EOPNOTSUPP) {
			h->can_punch = false;
			return 0;
		}
		return -errno;
	}
	if ((flags & IGW_FLAG_FUA) && fdatasync(h->fd) < 0)
		return -errno;
	return 0;
}

static int
file_zero(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct igw_file_handle *h = p;
	int r = -EOPNOTSUPP;

	rmw_shared(h);
	if ((flags & IGW_FLAG_MAY_TRIM) && h->can_punch) {
		r = fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)offset, (off_t)count) < 0 ? -errno : 0;
		if (r == -EOPNOTSUPP)
			h->can_punch = false;
	}
	if (r == -EOPNOTSUPP && h->can_zero_range) {
		r = fallocate(h->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			      (off_t)offset, (off_t)count) < 0 ? -errno : 0;
		if (r == -EOPNOTSUPP)
			h->can_zero_range = false;
	}
	rmw_done(h);
	if (r == 0 && (flags & IGW_FLAG_FUA) && fdatasync(h->fd) < 0)
		return -errno;
	return r; /* -EOPNOTSUPP: the core writes zeroes */
}

static int
file_extents(void *p, uint64_t count, uint64_t offset, uint64_t *run_len,
	     int *allocated)
{
	struct igw_file_handle *h = p;
	off_t data = lseek(h->fd, (off_t)offset, SEEK_DATA);
	off_t end;

	if (data < 0) {
		if (errno != ENXIO)
			return -errno;
		*allocated = 0; /* only a hole until EOF */
		*run_len = count;
		return 0;
	}
	if ((uint64_t)data > offset) {
		*allocated = 0;
		*run_len = MIN((uint64_t)data - offset, count);
		return 0;
	}
	end = lseek(h->fd, (off_t)offset, SEEK_HOLE);
	if (end < 0)
		return -errno;
	*allocated = 1;
	*run_len = MIN((uint64_t)end - offset, count);
	return 0;
}

static int
file_can_async(void *p)
{
	return ((struct igw_file_handle *)p)->aio != NULL;
}

/* Network loop: O_DIRECT requests aligned to DIRECT_ALIGN (all of them on
 * a LUN with 4096-byte blocks) go to the kernel; the rest bounce on a
 * worker (-EAGAIN). */
static int
file_async_pread(void *p, void *buf, uint32_t count, uint64_t offset,
		 uint32_t flags, igw_async_done done, void *opaque)
{
	struct igw_file_handle *h = p;

	if (!h->aio || unaligned(h, buf, count, offset))
		return -EAGAIN;
	return kaio_pread(h->aio, buf, count, offset, done, opaque);
}

static int
file_async_pwrite(void *p, const void *buf, uint32_t count, uint64_t offset,
		  uint32_t flags, igw_async_done done, void *opaque)
{
	struct igw_file_handle *h = p;
	int r;

	if (!h->aio || unaligned(h, buf, count, offset))
		return -EAGAIN;
	/* Shared until the reaper completes it (rmw_release); a bounce
	 * holding or waiting for it exclusively sends us to a worker. */
	if (!rmw_try_shared(h))
		return -EAGAIN;
	r = kaio_pwrite(h->aio, buf, count, offset,
			(flags & IGW_FLAG_FUA) != 0, done, opaque);
	if (r < 0)
		rmw_release(h);
	return r;
}

/* Reads through the page cache: the core may read the file itself. */
static int
file_read_fd(void *p, uint64_t offset, uint32_t count, int *fd,
	     uint64_t *fd_offset)
{
	struct igw_file_handle *h = p;

	(void)count;
	if (h->inst->direct)
		return -EOPNOTSUPP;
	*fd = h->fd;
	*fd_offset = offset;
	return 0;
}

/* With O_DIRECT the gateway itself reads and writes whole 4096-byte
 * blocks (DIRECT_ALIGN: anything smaller is a read-modify-write under the
 * rmw lock), so a LUN with 512-byte blocks is a 512e disk: its physical
 * block is 4096 bytes (READ CAPACITY(16) says so, and initiators align
 * to it).  Through the page cache nothing is said.  No preferred logical
 * size: both 512 and 4096 are served. */
static int
file_block_size(void *p, uint32_t *logical, uint32_t *physical)
{
	struct igw_file_handle *h = p;

	*logical = 0;
	*physical = h->inst->direct ? DIRECT_ALIGN : 0;
	return 0;
}

static struct igw_backend file_backend = {
	.name = "file",
	.description = "a regular file, sparse when created",
	.instance_new = file_instance_new,
	.config = file_config,
	.config_complete = file_config_complete,
	.open = file_open,
	.close = file_close,
	.instance_free = file_instance_free,
	.get_size = file_get_size,
	.block_size = file_block_size,
	.can_write = file_can_write,
	.can_flush = file_yes,
	.can_fua = file_yes,
	.can_trim = file_yes,
	.can_zero = file_yes,
	.can_extents = file_yes,
	.can_multi_conn = file_yes,
	.pread = file_pread,
	.pwrite = file_pwrite,
	.flush = file_flush,
	.trim = file_trim,
	.zero = file_zero,
	.extents = file_extents,
	.can_async = file_can_async,
	.async_pread = file_async_pread,
	.async_pwrite = file_async_pwrite,
	.read_fd = file_read_fd,
};

IGW_REGISTER_BACKEND(file_backend, IGW_THREAD_MODEL_PARALLEL)
