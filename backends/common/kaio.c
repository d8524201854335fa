/* kaio.c: see kaio.h.  One io_context per handle; every iocb signals one
 * eventfd, and one reaper thread per context blocks reading it, then
 * collects what finished with a non-blocking io_getevents.  The reaper is
 * the only thread that completes requests, so a completion never runs on
 * the network loop that submitted it (the core hands it back itself).
 *
 * Short transfers (a device that shrank, a partial write before ENOSPC)
 * are finished synchronously on the reaper: they are rare, and the
 * synchronous call returns the error the caller must see.
 *
 * Threads: kaio_new and kaio_free on the main thread; kaio_pread and
 * kaio_pwrite on any thread (the network loop); the reaper as above.
 * Shared fields are atomic.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kaio.h"

#ifdef HAVE_LIBAIO

#include <libaio.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/util.h"

/* The daemon's own io_submit (io/io.h, the worker pool) would take the
 * place of libaio's at link time: libaio's is a bare system call, made
 * here under a name of our own. */
static int
sys_io_submit(io_context_t ctx, long nr, struct iocb **ios)
{
	long r = syscall(SYS_io_submit, ctx, nr, ios);

	return r < 0 ? -errno : (int)r;
}

struct kaio_req {
	struct iocb iocb;		/* first: io_event.obj points here */
	struct kaio *k;
	bool write;
	bool dsync;
	char *buf;
	uint32_t left;
	uint64_t offset;
	igw_async_done done;
	void *opaque;
};

struct kaio {
	io_context_t ctx;
	int fd;
	int efd;			/* signalled by every iocb */
	unsigned depth;
	unsigned inflight;		/* atomic */
	bool stop;			/* atomic */
	bool no_dsync;			/* atomic: AIO without RWF_DSYNC */
	pthread_t reaper;
	void (*after_write)(void *arg);
	void *arg;
};

/* Reaper: the rest of a short transfer, synchronously. */
static int
finish_sync(struct kaio_req *q)
{
	while (q->left > 0) {
		ssize_t r;

		if (q->write) {
			struct iovec iov = { .iov_base = q->buf,
					     .iov_len = q->left };
			r = pwritev2(q->k->fd, &iov, 1, (off_t)q->offset,
				     q->dsync ? RWF_DSYNC : 0);
		} else {
			r = pread(q->k->fd, q->buf, q->left, (off_t)q->offset);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)	/* past the end: the core checked bounds */
			return -EIO;
		q->buf += r;
		q->left -= (uint32_t)r;
		q->offset += (uint64_t)r;
	}
	return 0;
}

static void
complete(struct kaio_req *q, long res)
{
	struct kaio *k = q->k;
	int r;

	if (res < 0) {
		r = (int)res;
	} else if ((uint64_t)res >= q->left) {
		r = 0;
	} else if (res == 0 && !q->write) {
		r = -EIO;
	} else {
		q->buf += res;
		q->left -= (uint32_t)res;
		q->offset += (uint64_t)res;
		r = finish_sync(q);
	}
	if (q->write && k->after_write)
		k->after_write(k->arg);
	q->done(q->opaque, r);
	free(q);
	__atomic_sub_fetch(&k->inflight, 1, __ATOMIC_ACQ_REL);
}

static void *
reaper(void *arg)
{
	struct kaio *k = arg;
	struct io_event ev[64];

	for (;;) {
		uint64_t v;

		if (read(k->efd, &v, sizeof v) < 0 && errno != EINTR &&
		    errno != EAGAIN)
			abort();	/* a bad eventfd: nothing can complete */
		for (;;) {
			struct timespec zero = { 0, 0 };
			int n = io_getevents(k->ctx, 0, ARRAY_SIZE(ev), ev,
					     &zero);

			if (n == -EINTR)
				continue;
			if (n <= 0)
				break;
			for (int i = 0; i < n; i++)
				complete((struct kaio_req *)ev[i].obj,
					 (long)ev[i].res);
		}
		if (__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&k->inflight, __ATOMIC_ACQUIRE) == 0)
			return NULL;
	}
}

struct kaio *
kaio_new(int fd, unsigned depth, void (*after_write)(void *arg), void *arg)
{
	struct kaio *k = calloc(1, sizeof *k);
	sigset_t all, old;
	int r;

	if (!k)
		return NULL;
	k->fd = fd;
	k->depth = depth;
	k->after_write = after_write;
	k->arg = arg;
	k->efd = eventfd(0, EFD_CLOEXEC);
	if (k->efd < 0)
		goto err_free;
	r = io_setup((int)depth, &k->ctx);
	if (r < 0) {
		errno = -r;
		goto err_efd;
	}
	/* The daemon takes its signals from a signalfd: none may be
	 * delivered to the reaper. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&k->reaper, NULL, reaper, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		errno = r;
		goto err_ctx;
	}
	return k;
err_ctx:
	io_destroy(k->ctx);
err_efd:
	r = errno;
	close(k->efd);
	errno = r;
err_free:
	r = errno;
	free(k);
	errno = r;
	return NULL;
}

void
kaio_free(struct kaio *k)
{
	uint64_t one = 1;

	if (!k)
		return;
	__atomic_store_n(&k->stop, true, __ATOMIC_RELEASE);
	if (write(k->efd, &one, sizeof one) < 0)
		abort();
	pthread_join(k->reaper, NULL);
	io_destroy(k->ctx);
	close(k->efd);
	free(k);
}

static int
submit(struct kaio *k, struct kaio_req *q)
{
	struct iocb *p = &q->iocb;
	int r;

	if (__atomic_add_fetch(&k->inflight, 1, __ATOMIC_ACQ_REL) > k->depth) {
		r = -EAGAIN;
		goto undo;
	}
	io_set_eventfd(p, k->efd);
	r = sys_io_submit(k->ctx, 1, &p);
	if (r == 1)
		return 0;
	/* Kernels before 4.13 refuse aio_rw_flags: FUA writes then go the
	 * synchronous way for as long as the handle is open. */
	if (r == -EINVAL && q->dsync)
		__atomic_store_n(&k->no_dsync, true, __ATOMIC_RELAXED);
	r = -EAGAIN;
undo:
	__atomic_sub_fetch(&k->inflight, 1, __ATOMIC_ACQ_REL);
	free(q);
	return r;
}

static struct kaio_req *
req_new(struct kaio *k, void *buf, uint32_t count, uint64_t offset,
	bool write, bool dsync, igw_async_done done, void *opaque)
{
	struct kaio_req *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	q->k = k;
	q->write = write;
	q->dsync = dsync;
	q->buf = buf;
	q->left = count;
	q->offset = offset;
	q->done = done;
	q->opaque = opaque;
	return q;
}

int
kaio_pread(struct kaio *k, void *buf, uint32_t count, uint64_t offset,
	   igw_async_done done, void *opaque)
{
	struct kaio_req *q = req_new(k, buf, count, offset, false, false,
				     done, opaque);

	if (!q)
		return -EAGAIN;
	io_prep_pread(&q->iocb, k->fd, buf, count, (long long)offset);
	return submit(k, q);
}

int
kaio_pwrite(struct kaio *k, const void *buf, uint32_t count, uint64_t offset,
	    bool dsync, igw_async_done done, void *opaque)
{
	struct kaio_req *q;

	if (dsync && __atomic_load_n(&k->no_dsync, __ATOMIC_RELAXED))
		return -EAGAIN;
	q = req_new(k, (void *)buf, count, offset, true, dsync, done, opaque);
	if (!q)
		return -EAGAIN;
	io_prep_pwrite(&q->iocb, k->fd, (void *)buf, count, (long long)offset);
	/* FUA and write_cache false: the kernel completes the iocb only
	 * once the data (and the metadata to reach it) is stable. */
	if (dsync)
		q->iocb.aio_rw_flags = RWF_DSYNC;
	return submit(k, q);
}

#else /* !HAVE_LIBAIO */

struct kaio *
kaio_new(int fd, unsigned depth, void (*after_write)(void *arg), void *arg)
{
	errno = ENOTSUP;
	return NULL;
}

void
kaio_free(struct kaio *k)
{
}

int
kaio_pread(struct kaio *k, void *buf, uint32_t count, uint64_t offset,
	   igw_async_done done, void *opaque)
{
	return -EAGAIN;
}

int
kaio_pwrite(struct kaio *k, const void *buf, uint32_t count, uint64_t offset,
	    bool dsync, igw_async_done done, void *opaque)
{
	return -EAGAIN;
}

#endif
