/* backend.h: the core's side of the backend interface.  Owns the table of
 * built-in backends, version checks, the capability answers asked once at
 * open, the thread-model locks, and the emulation of what a backend lacks
 * (FUA by flush, zero by writing zeroes).  Data calls run on IO workers,
 * but backend_async_pread/pwrite on the loop thread; everything else on
 * the main thread.
 */
#ifndef IGW_BACKEND_H
#define IGW_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "iscsi-gw-backend.h"

struct backend {
	struct igw_backend ops;		/* copied, at most _struct_size */
	void *instance;			/* set by backend config */
	void *handle;			/* from ops.open, NULL when closed */
	/* Capabilities: read-only once backend_open returns. */
	bool can_write, can_flush, can_fua, can_trim, can_zero, can_extents;
	bool can_multi_conn, can_atomic;
	/* Reads and writes may go through async_pread/async_pwrite (the
	 * backend's answer, a parallel thread model, both calls set). */
	bool can_async;
	bool can_read_fd;	/* read_fd answers (parallel backends only) */
	bool can_sanitize_overwrite;	/* the only copy: see the member */
	uint32_t pref_logical, pref_physical;	/* 0 when not told */
	/* Serialises data calls for SERIALIZE_* thread models. */
	pthread_mutex_t lock;
	bool serialise;
};

const struct igw_backend *backend_lookup(const char *name);
/* Newly allocated backend of that type; NULL + errno (message set). */
struct backend *backend_new(const char *type);
int backend_config(struct backend *b, const char *key, const char *value);
int backend_config_complete(struct backend *b);
int backend_open(struct backend *b, bool readonly);
void backend_free(struct backend *b);	/* closes if open */
/* Before giving up root: see set_owner.  0 or -errno. */
int backend_set_owner(struct backend *b, uint32_t uid, uint32_t gid);
/* The message a backend set with igw_backend_error (thread-local). */
const char *backend_last_error(void);
void backend_clear_error(void);

int64_t backend_get_size(struct backend *b);
int backend_pread(struct backend *b, void *buf, uint32_t count,
		  uint64_t offset);
int backend_pwrite(struct backend *b, const void *buf, uint32_t count,
		   uint64_t offset, uint32_t flags);
int backend_flush(struct backend *b, uint64_t count, uint64_t offset);
/* Loop thread, never blocks: start a read or write whose result goes to
 * done(opaque, 0 | -errno) on a backend thread.  -EAGAIN: not started,
 * make the synchronous call (backend_pread/backend_pwrite) on a worker;
 * FUA the backend cannot do natively always goes that way. */
int backend_async_pread(struct backend *b, void *buf, uint32_t count,
			uint64_t offset, igw_async_done done, void *opaque);
int backend_async_pwrite(struct backend *b, const void *buf, uint32_t count,
			 uint64_t offset, uint32_t flags,
			 igw_async_done done, void *opaque);
int backend_trim(struct backend *b, uint64_t count, uint64_t offset,
		 uint32_t flags);
int backend_zero(struct backend *b, uint64_t count, uint64_t offset,
		 uint32_t flags);
/* Where [offset, offset+count) can be read through the page cache: see
 * read_fd in iscsi-gw-backend.h.  0, or -EOPNOTSUPP. */
int backend_read_fd(struct backend *b, uint64_t offset, uint32_t count,
		    int *fd, uint64_t *fd_offset);
int backend_extents(struct backend *b, uint64_t count, uint64_t offset,
		    uint64_t *run_len, int *allocated);

#endif
