/* blockdev.c: the "blockdev" backend.  A LUN on a Linux block device: an
 * LVM logical volume, an MD array, a loop device, a disk partition.
 *
 * Keys: path (required), direct (default true: O_DIRECT, no double
 * caching; the page cache is used with "direct": false), aio (default
 * true: with direct, reads and writes go through Linux native AIO).
 *
 * The device is opened O_EXCL, so two LUNs (or a mounted file system) can
 * never share it by mistake.  Size and block sizes come from the device
 * (BLKGETSIZE64, BLKSSZGET, BLKPBSZGET); zero is BLKZEROOUT, and a
 * zero that may deallocate (UNMAP) a punched hole (fallocate, which the
 * kernel turns into a discard that reads back zeroes); trim is
 * BLKDISCARD; flush is fdatasync (which flushes the device's volatile
 * cache), FUA is RWF_DSYNC.
 *
 * Threads: parallel; the handle is read-only once open returns, but for
 * the capability flags.  With direct and aio, reads and writes aligned to
 * the logical sector are submitted from the network loop with io_submit
 * and complete on a reaper thread (kaio.c): FUA is an iocb with
 * aio_rw_flags RWF_DSYNC.  Everything else (and everything when libaio is
 * missing) is synchronous on the IO workers.
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
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "iscsi-gw-backend.h"
#include "backends/common/kaio.h"
#include "util/util.h"

/* Requests in flight per LUN on the async path; more go to the workers. */
#define AIO_DEPTH 128

struct bd_instance {
	char *path;
	bool direct;
	bool aio;
};

struct bd_handle {
	struct bd_instance *inst;
	int fd;
	bool readonly;
	uint64_t size;
	uint32_t lbs, pbs;	/* logical, physical block size */
	bool can_discard, can_zeroout;
	bool can_punch;		/* fallocate(PUNCH_HOLE) deallocates */
	struct kaio *aio;	/* NULL: everything on the workers */
};

static void *
bd_instance_new(void)
{
	struct bd_instance *bi = calloc(1, sizeof *bi);

	if (bi)
		bi->direct = bi->aio = true;
	return bi;
}

static void
bd_instance_free(void *p)
{
	struct bd_instance *bi = p;

	if (bi) {
		free(bi->path);
		free(bi);
	}
}

static int
bd_config(void *p, const char *key, const char *value)
{
	struct bd_instance *bi = p;

	if (!strcmp(key, "path")) {
		free(bi->path);
		bi->path = strdup(value);
		return bi->path ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "direct") || !strcmp(key, "aio")) {
		bool *b = key[0] == 'd' ? &bi->direct : &bi->aio;

		if (!strcmp(value, "true"))
			*b = true;
		else if (!strcmp(value, "false"))
			*b = false;
		else {
			igw_backend_error("'%s' must be true or false", key);
			return -EINVAL;
		}
		return 0;
	}
	igw_backend_error("unknown key '%s' for backend type blockdev", key);
	return -EINVAL;
}

static int
bd_config_complete(void *p)
{
	struct bd_instance *bi = p;

	if (!bi->path) {
		igw_backend_error("'path' is required for backend type blockdev");
		return -EINVAL;
	}
	return 0;
}

static void *
bd_open(void *p, int readonly)
{
	struct bd_instance *bi = p;
	struct bd_handle *h;
	struct stat st;
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_EXCL | O_CLOEXEC;
	int fd, e, lbs = 512;
	unsigned int pbs = 0;
	uint64_t size;

	if (bi->direct)
		flags |= O_DIRECT;
	fd = open(bi->path, flags);
	if (fd < 0) {
		e = errno;
		igw_backend_error("%s: %s%s", bi->path, strerror(e),
				  e == EBUSY ? " (in use: mounted, or another LUN has it)" : "");
		errno = e;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode)) {
		igw_backend_error("%s: not a block device (use type file for files)",
				  bi->path);
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		e = errno;
		igw_backend_error("%s: BLKGETSIZE64: %s", bi->path, strerror(e));
		close(fd);
		errno = e;
		return NULL;
	}
	if (ioctl(fd, BLKSSZGET, &lbs) < 0 || lbs <= 0)
		lbs = 512;
	if (ioctl(fd, BLKPBSZGET, &pbs) < 0 || pbs == 0)
		pbs = lbs;
	h = calloc(1, sizeof *h);
	if (!h) {
		close(fd);
		return NULL;
	}
	h->inst = bi;
	h->fd = fd;
	h->readonly = readonly;
	h->size = size;
	h->lbs = (uint32_t)lbs;
	h->pbs = pbs;
	h->can_discard = true;
	h->can_punch = !readonly;
	h->can_zeroout = true;
	/* Without AIO (no libaio, io_setup refused: fs.aio-max-nr) the
	 * LUN is served, all on the workers. */
	if (bi->direct && bi->aio)
		h->aio = kaio_new(fd, AIO_DEPTH, NULL, NULL);
	return h;
}

static void
bd_close(void *p)
{
	struct bd_handle *h = p;

	kaio_free(h->aio);
	if (!h->readonly)
		fdatasync(h->fd);
	close(h->fd);
	free(h);
}

static int64_t
bd_get_size(void *p)
{
	struct bd_handle *h = p;
	uint64_t size;

	/* Asked again after an LV or MD array grew (a rescan). */
	if (ioctl(h->fd, BLKGETSIZE64, &size) == 0)
		__atomic_store_n(&h->size, size, __ATOMIC_RELAXED);
	return (int64_t)__atomic_load_n(&h->size, __ATOMIC_RELAXED);
}

static int
bd_block_size(void *p, uint32_t *logical, uint32_t *physical)
{
	struct bd_handle *h = p;

	*logical = h->lbs;
	*physical = h->pbs;
	return 0;
}

static int
bd_can_write(void *p)
{
	return !((struct bd_handle *)p)->readonly;
}

static int
bd_yes(void *p)
{
	return 1;
}

static bool
misaligned(const struct bd_handle *h, const void *buf, uint64_t count,
	   uint64_t offset)
{
	uint64_t a = h->inst->direct ? MAX(h->lbs, 512u) : 1;

	return ((uintptr_t)buf | count | offset) & (a - 1);
}

static int bd_pread(void *p, void *buf, uint32_t count, uint64_t offset,
		    uint32_t flags);
static int bd_pwrite(void *p, const void *buf, uint32_t count,
		     uint64_t offset, uint32_t flags);

/* O_DIRECT needs aligned requests: bounce the rare unaligned one. */
static int
bounce(struct bd_handle *h, void *buf, uint32_t count, uint64_t offset,
       bool write, uint32_t flags)
{
	uint64_t a = 4096;
	uint64_t start = offset & ~(a - 1);
	uint64_t end = MIN((offset + count + a - 1) & ~(a - 1), h->size);
	void *b;
	int r;

	if (posix_memalign(&b, a, end - start))
		return -ENOMEM;
	r = bd_pread(h, b, (uint32_t)(end - start), start, 0);
	if (r == 0 && write) {
		memcpy((char *)b + (offset - start), buf, count);
		r = bd_pwrite(h, b, (uint32_t)(end - start), start, flags);
	} else if (r == 0) {
		memcpy(buf, (char *)b + (offset - start), count);
	}
	free(b);
	return r;
}

static int
bd_pread(void *p, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct bd_handle *h = p;
	char *b = buf;

	if (misaligned(h, buf, count, offset))
		return bounce(h, buf, count, offset, false, flags);
	while (count > 0) {
		ssize_t r = pread(h->fd, b, count, (off_t)offset);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		b += r;
		count -= r;
		offset += r;
	}
	return 0;
}

static int
bd_pwrite(void *p, const void *buf, uint32_t count, uint64_t offset,
	  uint32_t flags)
{
	struct bd_handle *h = p;
	const char *b = buf;
	int rwf = (flags & IGW_FLAG_FUA) ? RWF_DSYNC : 0;

	if (misaligned(h, buf, count, offset))
		return bounce(h, (void *)buf, count, offset, true, flags);
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
bd_flush(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct bd_handle *h = p;

	/* fdatasync on a block device writes back its dirty pages and
	 * flushes the device's volatile write cache. */
	return fdatasync(h->fd) < 0 ? -errno : 0;
}

static int
bd_trim(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct bd_handle *h = p;
	uint64_t range[2] = { offset, count };

	if (!h->can_discard)
		return 0;	/* advisory */
	if (ioctl(h->fd, BLKDISCARD, range) < 0) {
		if (errno == EOPNOTSUPP) {
			h->can_discard = false;
			return 0;
		}
		return -errno;
	}
	return (flags & IGW_FLAG_FUA) ? bd_flush(h, count, offset, 0) : 0;
}

static int
bd_zero(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct bd_handle *h = p;
	uint64_t range[2] = { offset, count };

	if (!h->can_zeroout || misaligned(h, NULL, count, offset))
		return -EOPNOTSUPP;
	/* UNMAP and WRITE SAME with UNMAP (IGW_FLAG_MAY_TRIM): punching a
	 * hole in a block device zeroes the range by deallocating it
	 * (discard or write-zeroes with unmap: a thin LV gives its blocks
	 * back to the pool) and fails rather than write zeroes; then
	 * BLKZEROOUT, which may write them. */
	if ((flags & IGW_FLAG_MAY_TRIM) && h->can_punch) {
		if (fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)offset, (off_t)count) == 0)
			return (flags & IGW_FLAG_FUA) ?
				bd_flush(h, count, offset, 0) : 0;
		if (errno != EOPNOTSUPP && errno != EINVAL)
			return -errno;
		h->can_punch = false;
	}
	if (ioctl(h->fd, BLKZEROOUT, range) < 0) {
		if (errno == EOPNOTSUPP || errno == EINVAL) {
			h->can_zeroout = false;
			return -EOPNOTSUPP;
		}
		return -errno;
	}
	return (flags & IGW_FLAG_FUA) ? bd_flush(h, count, offset, 0) : 0;
}

static int
bd_can_async(void *p)
{
	return ((struct bd_handle *)p)->aio != NULL;
}

/* Network loop: aligned requests go to the kernel, the rare unaligned
 * one bounces on a worker (-EAGAIN). */
static int
bd_async_pread(void *p, void *buf, uint32_t count, uint64_t offset,
	       uint32_t flags, igw_async_done done, void *opaque)
{
	struct bd_handle *h = p;

	if (!h->aio || misaligned(h, buf, count, offset))
		return -EAGAIN;
	return kaio_pread(h->aio, buf, count, offset, done, opaque);
}

static int
bd_async_pwrite(void *p, const void *buf, uint32_t count, uint64_t offset,
		uint32_t flags, igw_async_done done, void *opaque)
{
	struct bd_handle *h = p;

	if (!h->aio || misaligned(h, buf, count, offset))
		return -EAGAIN;
	return kaio_pwrite(h->aio, buf, count, offset,
			   (flags & IGW_FLAG_FUA) != 0, done, opaque);
}

/* Reads through the page cache: the core may read the device itself. */
static int
bd_read_fd(void *p, uint64_t offset, uint32_t count, int *fd,
	   uint64_t *fd_offset)
{
	struct bd_handle *h = p;

	(void)count;
	if (h->inst->direct)
		return -EOPNOTSUPP;
	*fd = h->fd;
	*fd_offset = offset;
	return 0;
}

static struct igw_backend blockdev_backend = {
	.name = "blockdev",
	.description = "a block device (LVM LV, MD array, loop device...)",
	.instance_new = bd_instance_new,
	.config = bd_config,
	.config_complete = bd_config_complete,
	.open = bd_open,
	.close = bd_close,
	.instance_free = bd_instance_free,
	.get_size = bd_get_size,
	.block_size = bd_block_size,
	.can_write = bd_can_write,
	.can_flush = bd_yes,
	.can_fua = bd_yes,
	.can_trim = bd_yes,
	.can_zero = bd_yes,
	.can_multi_conn = bd_yes,
	.pread = bd_pread,
	.pwrite = bd_pwrite,
	.flush = bd_flush,
	.trim = bd_trim,
	.zero = bd_zero,
	.can_async = bd_can_async,
	.async_pread = bd_async_pread,
	.async_pwrite = bd_async_pwrite,
	.read_fd = bd_read_fd,
};

IGW_REGISTER_BACKEND(blockdev_backend, IGW_THREAD_MODEL_PARALLEL)
