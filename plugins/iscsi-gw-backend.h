/* iscsi-gw-backend.h: the public backend interface of iscsi-gw.
 *
 * A backend is a flat, append-only struct of callbacks, stamped by
 * IGW_REGISTER_BACKEND with its size and API version.  The core copies at
 * most _struct_size bytes of it and refuses an _api_version it does not know,
 * so old backends keep working when members are appended.
 *
 * A backend never sees a CDB, a PDU or a core structure.  It sees a LUN's
 * settings as key/value strings (config), opens a handle (open), and serves
 * byte-addressed requests on it.  The core asks the can_* questions once at
 * open and emulates what is missing (FUA by flush, zero by writing zeroes,
 * COMPARE AND WRITE by read + compare + write under a range lock).
 *
 *   map file --(config key=value)--> instance --(open)--> handle
 *   worker thread --pread/pwrite/flush/trim/zero(handle, ...)--> 0 | -errno
 *   loop thread --async_pread/async_pwrite(handle, ..., done)--> 0
 *   backend thread --done(opaque, 0 | -errno)--> core
 *
 * Errors: every call returns 0 or a negative errno (-EIO, -ENOSPC, ...);
 * the core turns errno into SCSI sense in one table.  Constructors return
 * NULL and set errno.
 *
 * Threads: config, config_complete, open, close and free run on the main
 * thread.  Data calls run on the IO worker pool; how many at once is bounded
 * by _thread_model.  The optional async calls run on a network loop thread
 * and complete on a thread of the backend's (a libaio reaper).
 */
#ifndef ISCSI_GW_BACKEND_H
#define ISCSI_GW_BACKEND_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IGW_BACKEND_API_VERSION 1

/* Thread models: how many data calls the core may make at once. */
#define IGW_THREAD_MODEL_SERIALIZE_ALL 0	/* one call, all handles */
#define IGW_THREAD_MODEL_SERIALIZE_HANDLE 1	/* one call per handle */
#define IGW_THREAD_MODEL_PARALLEL 2		/* any number */

/* Completion of an asynchronous data call (async_pread, async_pwrite):
 * result is 0 or -errno, as the synchronous call would have returned. */
typedef void (*igw_async_done)(void *opaque, int result);

/* Flags for data calls. */
#define IGW_FLAG_FUA 0x1	/* pwrite/zero/trim: stable before returning */
#define IGW_FLAG_MAY_TRIM 0x2	/* zero: may deallocate */

struct igw_backend {
	/* Set by IGW_REGISTER_BACKEND: do not set by hand. */
	uint64_t _struct_size;
	int _api_version;
	int _thread_model;

	/* Short name, the "type" in the map ("file", "memory"). */
	const char *name;
	const char *description;

	/* Main thread.  Allocate the per-LUN instance that config() fills. */
	void *(*instance_new)(void);
	/* Main thread.  One call per backend key of the map.  Returns 0, or
	 * -EINVAL for an unknown key / bad value after setting the message
	 * with igw_backend_error() (the core names the key). */
	int (*config)(void *instance, const char *key, const char *value);
	/* Main thread.  All keys seen: check them together.  0 or -errno. */
	int (*config_complete)(void *instance);
	/* Main thread.  Open the storage; returns a handle or NULL + errno. */
	void *(*open)(void *instance, int readonly);
	/* Main thread.  All data calls on the handle have returned. */
	void (*close)(void *handle);
	/* Main thread.  Free the instance (after close). */
	void (*instance_free)(void *instance);

	/* Size in bytes.  Returns >= 0 or -errno. */
	int64_t (*get_size)(void *handle);
	/* Optional: preferred logical and physical block sizes (block
	 * devices report theirs).  0 or -errno. */
	int (*block_size)(void *handle, uint32_t *logical, uint32_t *physical);

	/* Optional capability questions: 1 yes, 0 no, -errno.  Missing means
	 * no, except can_write (missing means yes when pwrite is set). */
	int (*can_write)(void *handle);
	int (*can_flush)(void *handle);
	int (*can_fua)(void *handle);	/* native FUA (else core flushes) */
	int (*can_trim)(void *handle);
	int (*can_zero)(void *handle);	/* native zero (else core writes) */
	int (*can_extents)(void *handle);
	int (*can_multi_conn)(void *handle);

	/* Worker threads.  buf is lent for the call; count > 0. */
	int (*pread)(void *handle, void *buf, uint32_t count, uint64_t offset,
		     uint32_t flags);
	int (*pwrite)(void *handle, const void *buf, uint32_t count,
		      uint64_t offset, uint32_t flags);
	/* Make [offset, offset+count) stable; count 0 means the whole
	 * device.  A backend may flush more than asked, never less. */
	int (*flush)(void *handle, uint64_t count, uint64_t offset,
		     uint32_t flags);
	int (*trim)(void *handle, uint64_t count, uint64_t offset,
		    uint32_t flags);
	int (*zero)(void *handle, uint64_t count, uint64_t offset,
		    uint32_t flags);
	/* Is [offset, offset+count) allocated?  Sets *run_len to the length
	 * of the first run of the same state from offset, *allocated to 1/0. */
	int (*extents)(void *handle, uint64_t count, uint64_t offset,
		       uint64_t *run_len, int *allocated);

	/* Appended members: a backend built before one was added has none
	 * of it, which means no. */

	/* Optional capability: 1 when no crash can leave a pwrite half done
	 * for anyone to read afterwards (memory: nothing survives a crash).
	 * The core then offers WRITE ATOMIC, and orders it against the
	 * other requests itself; a store that can tear a write (a file in
	 * the page cache, most disks) answers no. */
	int (*can_atomic)(void *handle);

	/* Optional asynchronous reads and writes (SPDK submit_request):
	 * the request is started and the call returns; the IO holds no
	 * worker while in flight.  The core uses them when can_async
	 * answers 1 (asked once at open) and the thread model is
	 * parallel; pread/pwrite stay required, as the fallback.
	 *
	 * Called on a network loop thread: must not block.  buf is lent
	 * until done is called; count > 0; flags as for pread/pwrite (FUA:
	 * stable before done).  Returns:
	 *   0        accepted: done(opaque, 0 | -errno) is called exactly
	 *            once, on a thread of the backend, never from inside
	 *            the call.  Short transfers are the backend's to finish.
	 *   -EAGAIN  not taken (unaligned, queue full, would block): the
	 *            core makes the synchronous call on a worker instead.
	 *   -errno   failed; done is not called.
	 * close is called only once every accepted request's done has
	 * been called; it waits for done to have returned. */
	int (*can_async)(void *handle);
	int (*async_pread)(void *handle, void *buf, uint32_t count,
			   uint64_t offset, uint32_t flags,
			   igw_async_done done, void *opaque);
	int (*async_pwrite)(void *handle, const void *buf, uint32_t count,
			    uint64_t offset, uint32_t flags,
			    igw_async_done done, void *opaque);

	/* Optional.  Main thread, once per open handle, just before the
	 * daemon gives up root for uid/gid (the map's "user"): hand over to
	 * them what the handle will need afterwards (the nbdkit backend
	 * runs its server as them, in a socket folder they own, so that it
	 * can be restarted and stopped).  0 or -errno (message set): the
	 * daemon does not start. */
	int (*set_owner)(void *handle, uint32_t uid, uint32_t gid);

	/* Optional, any thread: where the bytes [offset, offset+count) of the
	 * device lie in a file descriptor read through the page cache (a
	 * file or block device opened without O_DIRECT).  Sets *fd, valid
	 * until close, and *fd_offset, and returns 0; the core may then
	 * read cached data itself (preadv2 with RWF_NOWAIT on its network
	 * thread) or send it to the socket with sendfile(2) instead of
	 * calling pread.  Missing, or -EOPNOTSUPP: reads go through pread.
	 * Only asked of backends with IGW_THREAD_MODEL_PARALLEL. */
	int (*read_fd)(void *handle, uint64_t offset, uint32_t count, int *fd,
		       uint64_t *fd_offset);

	/* Optional capability, asked once at open: 1 when the bytes pwrite
	 * stores are the only copy of the device's data that the backend
	 * or anything under it keeps, so that writing every byte of the
	 * device leaves none of the old data to recover.  The core then
	 * offers SANITIZE OVERWRITE (SBC-4 §4.11), which writes a pattern
	 * over every block and flushes.  Answer no unless that is true: a
	 * file keeps old extents (copy-on-write file systems, snapshots,
	 * the drive under it), a flash device remaps written blocks and a
	 * thin pool shares them with snapshots, an NBD server is out of
	 * sight.  The memory backend answers yes. */
	int (*can_sanitize_overwrite)(void *handle);
};

/* Set the message the core prints when a call returns an error. */
void igw_backend_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Stamp and export a backend.  A built-in backend is linked into the
 * daemon; an external one is a shared object whose single exported symbol
 * is igw_backend_get. */
#define IGW_REGISTER_BACKEND(ident, thread_model)                             \
	const struct igw_backend *igw_backend_get_##ident(void);              \
	const struct igw_backend *igw_backend_get_##ident(void)               \
	{                                                                     \
		static struct igw_backend b;                                  \
		b = ident;                                                    \
		b._struct_size = sizeof(struct igw_backend);                  \
		b._api_version = IGW_BACKEND_API_VERSION;                     \
		b._thread_model = (thread_model);                             \
		return &b;                                                    \
	}

#ifdef __cplusplus
}
#endif

#endif
