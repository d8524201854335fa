/* memory.c: the "memory" backend, for tests and benchmarks.  The LUN lives
 * in an anonymous private mapping (MAP_NORESERVE), so untouched blocks cost
 * nothing and read as zeroes; trim gives pages back with MADV_DONTNEED.
 * Which pages hold data is a bitmap (set by writes, cleared by trims):
 * mincore cannot tell, since a read maps the shared zero page.
 * Nothing survives the process: flush is a no-op and that is the truth.
 * With "lock" the mapping is locked in memory (mlock2, MLOCK_ONFAULT: a
 * page is locked when first touched; plain mlock, which takes it all at
 * once, where that flag is unknown) and never swapped out; it is then
 * the only copy of the data, so writing over every byte erases it
 * (can_sanitize_overwrite).  Pages given back with MADV_DONTNEED go to
 * the kernel, which clears them before any process sees them again; a
 * locked mapping cannot give pages back (madvise refuses locked pages),
 * so there zeroing is a memset.  Without "lock" a page may sit in swap,
 * out of reach of an overwrite: no SANITIZE OVERWRITE then.
 *
 * Keys: size (required), lock (default false).
 * Threads: parallel; distinct ranges never overlap, and the core orders
 * overlapping requests.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iscsi-gw-backend.h"
#include "util/util.h"

struct mem_instance {
	uint64_t size;
	bool lock;
};

struct mem_handle {
	uint8_t *base;
	uint64_t size;
	bool readonly;
	bool locked;		/* mlock2'd: never in swap */
	uint64_t pg;		/* page size */
	uint64_t *alloc;	/* one bit per page: written since a trim */
};

/* Mark the pages of [offset, offset+count) allocated (set) or, for the
 * whole pages only, deallocated.  Atomic: workers run in parallel. */
static void
mark(struct mem_handle *h, uint64_t offset, uint64_t count, bool set)
{
	uint64_t first, end;

	if (count == 0)
		return;
	if (set) {
		first = offset / h->pg;
		end = (offset + count + h->pg - 1) / h->pg;
	} else {
		first = (offset + h->pg - 1) / h->pg;
		end = (offset + count) / h->pg;
	}
	for (uint64_t i = first; i < end; i++) {
		uint64_t bit = 1ULL << (i % 64);
		if (set)
			__atomic_fetch_or(&h->alloc[i / 64], bit, __ATOMIC_RELAXED);
		else
			__atomic_fetch_and(&h->alloc[i / 64], ~bit,
					   __ATOMIC_RELAXED);
	}
}

static bool
page_allocated(struct mem_handle *h, uint64_t page)
{
	return __atomic_load_n(&h->alloc[page / 64], __ATOMIC_RELAXED) &
	       (1ULL << (page % 64));
}

static void *
mem_instance_new(void)
{
	return calloc(1, sizeof(struct mem_instance));
}

static void
mem_instance_free(void *p)
{
	free(p);
}

static int
mem_config(void *p, const char *key, const char *value)
{
	struct mem_instance *mi = p;

	if (!strcmp(key, "size")) {
		if (parse_size(value, &mi->size) < 0 || mi->size == 0) {
			igw_backend_error("size '%s' is not a size such as 512M or 1G",
					  value);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "lock")) {
		if (!strcmp(value, "true")) {
			mi->lock = true;
		} else if (!strcmp(value, "false")) {
			mi->lock = false;
		} else {
			igw_backend_error("'lock' must be true or false");
			return -EINVAL;
		}
		return 0;
	}
	igw_backend_error("unknown key '%s' for backend type memory", key);
	return -EINVAL;
}

static int
mem_config_complete(void *p)
{
	struct mem_instance *mi = p;

	if (mi->size == 0) {
		igw_backend_error("'size' is required for backend type memory");
		return -EINVAL;
	}
	return 0;
}

static void *
mem_open(void *p, int readonly)
{
	struct mem_instance *mi = p;
	struct mem_handle *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->size = mi->size;
	h->readonly = readonly;
	h->pg = (uint64_t)sysconf(_SC_PAGESIZE);
	h->alloc = calloc((mi->size / h->pg + 64) / 64, sizeof(uint64_t));
	if (!h->alloc) {
		free(h);
		return NULL;
	}
	h->base = mmap(NULL, mi->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h->base == MAP_FAILED) {
		int e = errno;
		igw_backend_error("mmap of %llu bytes: %s",
				  (unsigned long long)mi->size, strerror(e));
		free(h->alloc);
		free(h);
		errno = e;
		return NULL;
	}
	if (mi->lock) {
		/* Where MLOCK_ONFAULT is unknown (kernels before 4.4, and
		 * valgrind) mlock, which takes the whole size at once. */
		int r = mlock2(h->base, mi->size, MLOCK_ONFAULT);
		if (r < 0 && (errno == EINVAL || errno == ENOSYS))
			r = mlock(h->base, mi->size);
		if (r < 0) {
			int e = errno;
			igw_backend_error("lock: mlock of %llu bytes: %s (the "
					  "limit is RLIMIT_MEMLOCK, ulimit -l, "
					  "unless the daemon has CAP_IPC_LOCK)",
					  (unsigned long long)mi->size,
					  strerror(e));
			munmap(h->base, mi->size);
			free(h->alloc);
			free(h);
			errno = e;
			return NULL;
		}
		h->locked = true;
	}
	return h;
}

static void
mem_close(void *p)
{
	struct mem_handle *h = p;

	munmap(h->base, h->size);
	free(h->alloc);
	free(h);
}

static int64_t
mem_get_size(void *p)
{
	return (int64_t)((struct mem_handle *)p)->size;
}

static int
mem_can_write(void *p)
{
	return !((struct mem_handle *)p)->readonly;
}

static int
mem_yes(void *p)
{
	return 1;
}

static int
mem_locked(void *p)
{
	return ((struct mem_handle *)p)->locked;
}

static int
mem_pread(void *p, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct mem_handle *h = p;

	memcpy(buf, h->base + offset, count);
	return 0;
}

static int
mem_pwrite(void *p, const void *buf, uint32_t count, uint64_t offset,
	   uint32_t flags)
{
	struct mem_handle *h = p;

	memcpy(h->base + offset, buf, count);
	mark(h, offset, count, true);
	return 0;
}

static int
mem_flush(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	return 0;
}

/* Zero [offset, offset+count): whole pages are given back, edges memset. */
static int
mem_zero(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct mem_handle *h = p;
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = (offset + pg - 1) / pg * pg;
	uint64_t end = (offset + count) / pg * pg;

	if (start < end) {
		memset(h->base + offset, 0, start - offset);
		if (!h->locked) {
			madvise(h->base + start, end - start, MADV_DONTNEED);
		} else {
			/* Pages not written since they were last zeroed
			 * are zero already: touching them would only take
			 * memory. */
			for (uint64_t a = start; a < end; a += pg)
				if (page_allocated(h, a / pg))
					memset(h->base + a, 0, pg);
		}
		memset(h->base + end, 0, offset + count - end);
	} else {
		memset(h->base + offset, 0, count);
	}
	/* Without leave to deallocate the blocks stay mapped (zeroes). */
	if (flags & IGW_FLAG_MAY_TRIM)
		mark(h, offset, count, false);
	else
		mark(h, offset, count, true);
	return 0;
}

static int
mem_trim(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	return mem_zero(p, count, offset, flags | IGW_FLAG_MAY_TRIM);
}

static int
mem_extents(void *p, uint64_t count, uint64_t offset, uint64_t *run_len,
	    int *allocated)
{
	struct mem_handle *h = p;
	uint64_t pg = h->pg;
	uint64_t first = offset / pg * pg;
	uint64_t end = offset + count;
	int state = -1;
	uint64_t a;

	for (a = first; a < end; a += pg) {
		int s = page_allocated(h, a / pg);
		if (state < 0)
			state = s;
		else if (s != state)
			break;
	}
	*allocated = state > 0;
	*run_len = MIN(a, end) - offset;
	return 0;
}

static struct igw_backend memory_backend = {
	.name = "memory",
	.description = "RAM, lost at exit (tests and benchmarks)",
	.instance_new = mem_instance_new,
	.config = mem_config,
	.config_complete = mem_config_complete,
	.open = mem_open,
	.close = mem_close,
	.instance_free = mem_instance_free,
	.get_size = mem_get_size,
	.can_write = mem_can_write,
	.can_flush = mem_yes,
	.can_fua = mem_yes,
	.can_trim = mem_yes,
	.can_zero = mem_yes,
	.can_extents = mem_yes,
	.can_multi_conn = mem_yes,
	.can_atomic = mem_yes,
	.can_sanitize_overwrite = mem_locked,
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.flush = mem_flush,
	.trim = mem_trim,
	.zero = mem_zero,
	.extents = mem_extents,
};

IGW_REGISTER_BACKEND(memory_backend, IGW_THREAD_MODEL_PARALLEL)
