/* backend.c: see backend.h.  Modelled on nbdkit's server/plugins.c: the
 * core asks each capability once, then every data call goes through here so
 * that a missing capability is emulated in one place.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "util/util.h"

const struct igw_backend *igw_backend_get_file_backend(void);
const struct igw_backend *igw_backend_get_memory_backend(void);
const struct igw_backend *igw_backend_get_blockdev_backend(void);
#ifdef HAVE_LIBNBD
const struct igw_backend *igw_backend_get_nbd_backend(void);
const struct igw_backend *igw_backend_get_nbdkit_backend(void);
const struct igw_backend *igw_backend_get_qemu_nbd_backend(void);
#endif

static const struct {
	const char *name;
	const struct igw_backend *(*get)(void);
} builtin[] = {
	{ .name = "file", .get = igw_backend_get_file_backend },
	{ .name = "memory", .get = igw_backend_get_memory_backend },
	{ .name = "blockdev", .get = igw_backend_get_blockdev_backend },
#ifdef HAVE_LIBNBD
	{ .name = "nbd", .get = igw_backend_get_nbd_backend },
	{ .name = "nbdkit", .get = igw_backend_get_nbdkit_backend },
	{ .name = "qemu-nbd", .get = igw_backend_get_qemu_nbd_backend },
#endif
};

static __thread char last_error[512];

void
igw_backend_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
}

const char *
backend_last_error(void)
{
	return last_error;
}

void
backend_clear_error(void)
{
	last_error[0] = '\0';
}

const struct igw_backend *
backend_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(builtin); i++)
		if (!strcmp(builtin[i].name, name))
			return builtin[i].get();
	return NULL;
}

struct backend *
backend_new(const char *type)
{
	const struct igw_backend *ops = backend_lookup(type);
	struct backend *b;

	if (!ops) {
		igw_backend_error("unknown backend type '%s' (known: file, memory, blockdev, nbd, nbdkit)",
				  type);
		errno = ENOENT;
		return NULL;
	}
	if (ops->_api_version != IGW_BACKEND_API_VERSION) {
		igw_backend_error("backend '%s' has API version %d, this gateway has %d",
				  type, ops->_api_version, IGW_BACKEND_API_VERSION);
		errno = ENOTSUP;
		return NULL;
	}
	b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	memcpy(&b->ops, ops, MIN(ops->_struct_size, sizeof b->ops));
	b->instance = b->ops.instance_new ? b->ops.instance_new() : NULL;
	if (b->ops.instance_new && !b->instance) {
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	b->serialise = b->ops._thread_model != IGW_THREAD_MODEL_PARALLEL;
	return b;
}

int
backend_config(struct backend *b, const char *key, const char *value)
{
	if (!b->ops.config) {
		igw_backend_error("backend '%s' takes no keys", b->ops.name);
		return -EINVAL;
	}
	return b->ops.config(b->instance, key, value);
}

int
backend_config_complete(struct backend *b)
{
	return b->ops.config_complete ? b->ops.config_complete(b->instance) : 0;
}

static bool
ask(struct backend *b, int (*q)(void *), bool dflt)
{
	int r;

	if (!q)
		return dflt;
	r = q(b->handle);
	if (r < 0) {
		log_warn("backend %s: capability question failed: %s",
			 b->ops.name, strerror(-r));
		return false;
	}
	return r > 0;
}

int
backend_open(struct backend *b, bool readonly)
{
	b->handle = b->ops.open(b->instance, readonly);
	if (!b->handle)
		return errno ? -errno : -EIO;
	b->can_write = !readonly && b->ops.pwrite &&
		       ask(b, b->ops.can_write, true);
	b->can_flush = b->ops.flush && ask(b, b->ops.can_flush, false);
	b->can_fua = b->can_flush && ask(b, b->ops.can_fua, false);
	b->can_trim = b->ops.trim && ask(b, b->ops.can_trim, false);
	b->can_zero = b->ops.zero && ask(b, b->ops.can_zero, false);
	b->can_extents = b->ops.extents && ask(b, b->ops.can_extents, false);
	b->can_multi_conn = ask(b, b->ops.can_multi_conn, false);
	b->can_atomic = ask(b, b->ops.can_atomic, false);
	b->can_sanitize_overwrite = ask(b, b->ops.can_sanitize_overwrite,
					false);
	b->can_async = !b->serialise && b->ops.async_pread &&
		       b->ops.async_pwrite && ask(b, b->ops.can_async, false);
	if (b->ops.read_fd && !b->serialise) {
		int fd;
		uint64_t off;

		b->can_read_fd =
			b->ops.read_fd(b->handle, 0, 0, &fd, &off) == 0;
	}
	if (b->ops.block_size &&
	    b->ops.block_size(b->handle, &b->pref_logical, &b->pref_physical) < 0)
		b->pref_logical = b->pref_physical = 0;
	return 0;
}

int
backend_set_owner(struct backend *b, uint32_t uid, uint32_t gid)
{
	if (!b->handle || !b->ops.set_owner)
		return 0;
	return b->ops.set_owner(b->handle, uid, gid);
}

void
backend_free(struct backend *b)
{
	if (!b)
		return;
	if (b->handle && b->ops.close)
		b->ops.close(b->handle);
	if (b->instance && b->ops.instance_free)
		b->ops.instance_free(b->instance);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

int64_t
backend_get_size(struct backend *b)
{
	return b->ops.get_size(b->handle);
}

static void
cleanup_unlock_maybe(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}
#define SERIALISE(b)                                                          \
	pthread_mutex_t *_sl __attribute__((cleanup(cleanup_unlock_maybe))) = \
		(b)->serialise ? &(b)->lock : NULL;                           \
	if (_sl)                                                              \
		pthread_mutex_lock(_sl)

int
backend_pread(struct backend *b, void *buf, uint32_t count, uint64_t offset)
{
	SERIALISE(b);
	return b->ops.pread(b->handle, buf, count, offset, 0);
}

static int
flush_unlocked(struct backend *b, uint64_t count, uint64_t offset)
{
	if (!b->can_flush)
		return 0; /* nothing volatile to flush: WCE is reported off */
	return b->ops.flush(b->handle, count, offset, 0);
}

int
backend_pwrite(struct backend *b, const void *buf, uint32_t count,
	       uint64_t offset, uint32_t flags)
{
	SERIALISE(b);
	int r;

	if (!b->can_write)
		return -EROFS;
	if ((flags & IGW_FLAG_FUA) && !b->can_fua) {
		r = b->ops.pwrite(b->handle, buf, count, offset,
				  flags & ~IGW_FLAG_FUA);
		return r < 0 ? r : flush_unlocked(b, count, offset);
	}
	return b->ops.pwrite(b->handle, buf, count, offset, flags);
}

int
backend_async_pread(struct backend *b, void *buf, uint32_t count,
		    uint64_t offset, igw_async_done done, void *opaque)
{
	if (!b->can_async)
		return -EAGAIN;
	return b->ops.async_pread(b->handle, buf, count, offset, 0, done,
				  opaque);
}

int
backend_async_pwrite(struct backend *b, const void *buf, uint32_t count,
		     uint64_t offset, uint32_t flags, igw_async_done done,
		     void *opaque)
{
	/* Refusals and FUA by flush are the synchronous path's. */
	if (!b->can_async || !b->can_write ||
	    ((flags & IGW_FLAG_FUA) && !b->can_fua))
		return -EAGAIN;
	return b->ops.async_pwrite(b->handle, buf, count, offset, flags, done,
				   opaque);
}

int
backend_flush(struct backend *b, uint64_t count, uint64_t offset)
{
	SERIALISE(b);
	return flush_unlocked(b, count, offset);
}

int
backend_trim(struct backend *b, uint64_t count, uint64_t offset,
	     uint32_t flags)
{
	SERIALISE(b);
	int r;

	if (!b->can_write)
		return -EROFS;
	if (!b->can_trim)
		return 0; /* advisory */
	r = b->ops.trim(b->handle, count, offset, flags & ~IGW_FLAG_FUA);
	if (r == 0 && (flags & IGW_FLAG_FUA))
		r = flush_unlocked(b, count, offset);
	return r;
}

/* Zero by writing zeroes, 1 MiB at a time, where the backend cannot. */
static int
zero_by_writing(struct backend *b, uint64_t count, uint64_t offset)
{
	static const size_t chunk = 1 << 20;
	void *z = calloc(1, chunk);
	int r = 0;

	if (!z)
		return -ENOMEM;
	while (count > 0 && r == 0) {
		uint32_t n = (uint32_t)MIN(count, chunk);
		r = b->ops.pwrite(b->handle, z, n, offset, 0);
		offset += n;
		count -= n;
	}
	free(z);
	return r;
}

int
backend_zero(struct backend *b, uint64_t count, uint64_t offset,
	     uint32_t flags)
{
	SERIALISE(b);
	int r = -EOPNOTSUPP;

	if (!b->can_write)
		return -EROFS;
	if (b->can_zero)
		r = b->ops.zero(b->handle, count, offset,
				flags & ~IGW_FLAG_FUA);
	if (r == -EOPNOTSUPP)
		r = zero_by_writing(b, count, offset);
	if (r == 0 && (flags & IGW_FLAG_FUA))
		r = flush_unlocked(b, count, offset);
	return r;
}

int
backend_extents(struct backend *b, uint64_t count, uint64_t offset,
		uint64_t *run_len, int *allocated)
{
	SERIALISE(b);

	if (!b->can_extents) {
		*run_len = count;
		*allocated = 1;
		return 0;
	}
	return b->ops.extents(b->handle, count, offset, run_len, allocated);
}

int
backend_read_fd(struct backend *b, uint64_t offset, uint32_t count, int *fd,
		uint64_t *fd_offset)
{
	if (!b->can_read_fd)
		return -EOPNOTSUPP;
	return b->ops.read_fd(b->handle, offset, count, fd, fd_offset);
}
