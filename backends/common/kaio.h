/* kaio.h: Linux native AIO (libaio) for the file and blockdev backends.
 * Owns one io_context per open handle, the eventfd its requests signal and
 * the reaper thread that collects completions; the backend owns the fd,
 * alignment (O_DIRECT) and its own locks.
 *
 *   loop thread --kaio_pread/kaio_pwrite--> io_submit (never waits for IO)
 *   kernel --eventfd--> reaper: io_getevents, finish short transfers,
 *                       after_write hook, done(opaque, 0 | -errno)
 *
 * io_submit does not wait for the IO, but may wait inside the kernel for
 * what it needs to start it (a full device queue; block allocation or the
 * journal of a file system when a write fills a hole of a sparse file):
 * the price of submitting from the network loop.
 *
 * Submission returns -EAGAIN whenever the request cannot be queued (the
 * context is full, io_submit refused it, the kernel has no RWF_DSYNC for
 * AIO): the caller then does it synchronously.  Without libaio at build
 * time kaio_new fails with ENOTSUP and nothing else is called.
 */
#ifndef IGW_KAIO_H
#define IGW_KAIO_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi-gw-backend.h"

struct kaio;

/* At most depth requests in flight on fd.  after_write, when set, runs on
 * the reaper after each write completes and before its done (the file
 * backend drops its read-modify-write lock there).  NULL + errno. */
struct kaio *kaio_new(int fd, unsigned depth,
		      void (*after_write)(void *arg), void *arg);
/* Every accepted request's done has been called: stops the reaper. */
void kaio_free(struct kaio *k);
/* 0 (done will be called), or -EAGAIN (nothing was started). */
int kaio_pread(struct kaio *k, void *buf, uint32_t count, uint64_t offset,
	       igw_async_done done, void *opaque);
/* dsync: RWF_DSYNC, stable before done. */
int kaio_pwrite(struct kaio *k, const void *buf, uint32_t count,
		uint64_t offset, bool dsync, igw_async_done done, void *opaque);

#endif
