/* sbc-io.c: the IO engine of the block commands.  Runs the backend
 * requests sbc.c makes of SCSI commands (sbc-io.h): on the IO workers,
 * with each LUN's share of them bounded (lun_submit); for reads and
 * writes through the backend's async calls where it has them (libaio),
 * holding no worker; and reads the page cache can answer on the loop
 * thread itself (sbc_read_inline, sendfile).  The LUN's write lock
 * orders the exclusive requests (COMPARE AND WRITE, ORWRITE, WRITE
 * ATOMIC, partial-block writes) against all others.  io_run and the
 * helpers above it run on workers; the rest on the loop thread.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "scsi.h"
#include "sbc-io.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

/* Scratch buffers are page-aligned for O_DIRECT backends. */
static void *
aligned_buf(size_t n)
{
	void *p;

	return posix_memalign(&p, 4096, (n + 4095) & ~(size_t)4095) ? NULL : p;
}

/* Worker: compare [offset, offset+length) with pattern; returns -EILSEQ and
 * the first differing byte's offset in *miss. */
static int
compare(struct backend *be, const uint8_t *want, uint32_t want_len,
	uint64_t offset, uint32_t length, uint64_t *miss)
{
	uint8_t *tmp = aligned_buf(MIN(length, 1u << 20));
	uint32_t done = 0;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	while (done < length && r == 0) {
		uint32_t n = MIN(length - done, 1u << 20);
		r = backend_pread(be, tmp, n, offset + done);
		for (uint32_t i = 0; r == 0 && i < n; i++) {
			uint8_t w = want[(done + i) % want_len];
			if (tmp[i] != w) {
				*miss = done + i;
				r = -EILSEQ;
			}
		}
		done += n;
	}
	free(tmp);
	return r;
}

static int
write_same(struct backend *be, const uint8_t *block, uint32_t bs,
	   uint64_t offset, uint64_t length, uint32_t flags)
{
	uint32_t chunk = (uint32_t)MIN(length, 1u << 20);
	uint8_t *tmp = aligned_buf(chunk);
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	for (uint32_t i = 0; i < chunk; i += bs)
		memcpy(tmp + i, block, bs);
	while (length > 0 && r == 0) {
		uint32_t n = (uint32_t)MIN(length, chunk);
		r = backend_pwrite(be, tmp, n, offset, flags);
		offset += n;
		length -= n;
	}
	free(tmp);
	return r;
}

/* Worker: compare the first half of buf with the medium and, when equal,
 * write the second half, holding the LUN's write lock exclusively so no
 * other write can land between the two (SBC-4 §5.3). */
static int
compare_and_write(struct lun *l, struct scsi_cmd *cmd, uint64_t *miss)
{
	uint32_t len = cmd->length;
	uint8_t *tmp = aligned_buf(len);
	int r;

	if (!tmp)
		return -ENOMEM;
	pthread_rwlock_wrlock(&l->write_lock);
	r = backend_pread(l->be, tmp, len, cmd->offset);
	if (r == 0) {
		for (uint32_t i = 0; i < len; i++)
			if (tmp[i] != cmd->buf[i]) {
				*miss = i;
				r = -EILSEQ;
				break;
			}
	}
	if (r == 0)
		r = backend_pwrite(l->be, cmd->buf + len, len, cmd->offset,
				   cmd->flags);
	pthread_rwlock_unlock(&l->write_lock);
	free(tmp);
	return r;
}

/* Worker: ORWRITE (SBC-4 §5.12) reads the blocks, ORs the Data-Out into
 * them and writes the result, a chunk at a time, holding the LUN's write
 * lock exclusively throughout, so that no other write lands between a
 * read and its write: the "uninterrupted series of actions" the command
 * asks for.  An error in a later chunk leaves the earlier ones written,
 * as a failed WRITE may. */
static int
or_write(struct lun *l, struct scsi_cmd *cmd)
{
	uint32_t chunk = MIN(cmd->length, 1u << 20);
	uint8_t *tmp = aligned_buf(chunk);
	uint32_t done = 0;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	pthread_rwlock_wrlock(&l->write_lock);
	while (done < cmd->length && r == 0) {
		uint32_t n = MIN(cmd->length - done, chunk);
		r = backend_pread(l->be, tmp, n, cmd->offset + done);
		if (r == 0) {
			for (uint32_t i = 0; i < n; i++)
				tmp[i] |= cmd->buf[done + i];
			r = backend_pwrite(l->be, tmp, n, cmd->offset + done,
					   cmd->flags);
		}
		done += n;
	}
	pthread_rwlock_unlock(&l->write_lock);
	free(tmp);
	return r;
}

/* Worker: a WRITE (IO_WRITE_TAIL) or ORWRITE (IO_ORWRITE_TAIL) whose
 * Data-Out ends inside a block: the initiator's Expected Data Transfer
 * Length is shorter than the blocks the CDB names, and not a whole number
 * of blocks (cmd->length is that length, in bytes).  The bytes that
 * arrived are written and the rest of the last block keeps what it held:
 * FCP-4 §9.4.2 a), "process the command normally except that data beyond
 * [the expected length] shall not be requested or transferred", which
 * RFC 7143 §11.4.5.2 leaves to the SCSI layer; the transport reports the
 * overflow.  The last block is read, merged and written back whole, so
 * backends see block-aligned requests only, holding the LUN's write lock
 * exclusively so that no other write to that block lands in between. */
static int
write_tail(struct lun *l, struct scsi_cmd *cmd, bool or)
{
	uint32_t bs = l->block_size;
	uint32_t len = (cmd->length + bs - 1) & ~(bs - 1);
	uint8_t *tmp = aligned_buf(len);
	int r;

	if (!tmp)
		return -ENOMEM;
	pthread_rwlock_wrlock(&l->write_lock);
	if (or)
		r = backend_pread(l->be, tmp, len, cmd->offset);
	else
		r = backend_pread(l->be, tmp + len - bs, bs,
				  cmd->offset + len - bs);
	if (r == 0) {
		if (or)
			for (uint32_t i = 0; i < cmd->length; i++)
				tmp[i] |= cmd->buf[i];
		else
			memcpy(tmp, cmd->buf, cmd->length);
		r = backend_pwrite(l->be, tmp, len, cmd->offset, cmd->flags);
	}
	pthread_rwlock_unlock(&l->write_lock);
	free(tmp);
	return r;
}

/* Worker: WRITE ATOMIC (SBC-4 §5.48) as one backend write holding the
 * write lock exclusively, so that every overlapping read or write (they
 * hold it shared) comes wholly before or wholly after it.  That a crash
 * cannot tear it is the backend's part (can_atomic). */
static int
write_atomic(struct lun *l, struct scsi_cmd *cmd)
{
	int r;

	pthread_rwlock_wrlock(&l->write_lock);
	r = backend_pwrite(l->be, cmd->buf, cmd->length, cmd->offset,
			   cmd->flags);
	pthread_rwlock_unlock(&l->write_lock);
	return r;
}

/* Worker: the provisioning status of runs of blocks from cmd->offset
 * (SBC-4 §5.8), from the backend's allocation (SEEK_DATA/SEEK_HOLE on
 * files).  Builds the parameter data in a buffer hung on cmd->job.next's
 * place: cmd->op_buf. */
static int
lba_status(struct lun *l, struct scsi_cmd *cmd)
{
	uint64_t end = l->nblocks << l->block_shift;
	uint64_t off = cmd->offset;
	uint32_t n = 0, max = cmd->length;
	uint8_t *d = calloc(1, 8 + 16 * (size_t)max);

	if (!d)
		return -ENOMEM;
	while (off < end && n < max) {
		uint64_t run = end - off;
		int alloc = 1;
		uint64_t first = off >> l->block_shift, last;

		if (l->be->can_extents) {
			int r = backend_extents(l->be, end - off, off, &run,
						&alloc);
			if (r < 0) {
				free(d);
				return r;
			}
			if (run == 0)
				run = end - off;
		}
		/* Whole blocks: a partly allocated block counts as mapped. */
		last = alloc ? (off + run + l->block_size - 1) >> l->block_shift :
			       (off + run) >> l->block_shift;
		if (last <= first)
			last = first + 1;
		if (last > l->nblocks)
			last = l->nblocks;
		/* Merge with the previous descriptor when the state is the
		 * same (block rounding can make neighbours agree). */
		if (n > 0 && (d[8 + 16 * (n - 1) + 12] & 0x0f) == (alloc ? 0 : 1) &&
		    get_be64(d + 8 + 16 * (n - 1)) +
		    get_be32(d + 8 + 16 * (n - 1) + 8) == first) {
			uint8_t *p = d + 8 + 16 * (n - 1);
			put_be32(p + 8, (uint32_t)MIN(get_be32(p + 8) + (last - first),
						      0xffffffffULL));
		} else {
			uint8_t *p = d + 8 + 16 * n;
			put_be64(p, first);
			put_be32(p + 8, (uint32_t)MIN(last - first, 0xffffffffULL));
			p[12] = alloc ? 0 : 1;	/* mapped / deallocated */
			n++;
		}
		off = last << l->block_shift;
	}
	put_be32(d, 4 + 16 * n);
	cmd->op_buf = d;
	cmd->op_len = 8 + 16 * n;
	return 0;
}

static void
io_run(struct io_job *job)
{
	struct scsi_cmd *cmd = container_of(job, struct scsi_cmd, job);
	struct lun *l = cmd->lun;
	struct backend *be = l->be;
	uint64_t miss = 0;
	/* Everything that reads or writes blocks but the exclusive ones
	 * (COMPARE AND WRITE, ORWRITE, WRITE ATOMIC lock for themselves):
	 * reads too, so that none sees half of an exclusive one. */
	bool shared = cmd->op == IO_READ || cmd->op == IO_COMPARE ||
		      cmd->op == IO_COMPARE_EACH ||
		      cmd->op == IO_WRITE || cmd->op == IO_WRITE_SAME ||
		      cmd->op == IO_ZERO || cmd->op == IO_TRIM ||
		      cmd->op == IO_UNMAP;

	if (shared)
		pthread_rwlock_rdlock(&l->write_lock);
	switch (cmd->op) {
	case IO_CAW:
		cmd->result = compare_and_write(l, cmd, &miss);
		break;
	case IO_LBA_STATUS:
		cmd->result = lba_status(l, cmd);
		break;
	case IO_ORWRITE:
		cmd->result = or_write(l, cmd);
		break;
	case IO_WRITE_ATOMIC:
		cmd->result = write_atomic(l, cmd);
		break;
	case IO_WRITE_TAIL:
	case IO_ORWRITE_TAIL:
		cmd->result = write_tail(l, cmd, cmd->op == IO_ORWRITE_TAIL);
		break;
	case IO_READ:
		cmd->result = backend_pread(be, cmd->buf, cmd->length, cmd->offset);
		break;
	case IO_WRITE:
		cmd->result = backend_pwrite(be, cmd->buf, cmd->length,
					     cmd->offset, cmd->flags);
		break;
	case IO_FLUSH:
		cmd->result = backend_flush(be, cmd->length ? cmd->length :
					    ((l->nblocks << l->block_shift) -
					     cmd->offset), cmd->offset);
		break;
	case IO_COMPARE:
		cmd->result = compare(be, cmd->buf, cmd->length, cmd->offset,
				      cmd->length, &miss);
		break;
	case IO_COMPARE_EACH:
		cmd->result = compare(be, cmd->buf, l->block_size, cmd->offset,
				      cmd->length, &miss);
		break;
	case IO_WRITE_SAME:
		cmd->result = write_same(be, cmd->buf, l->block_size,
					 cmd->offset,
					 (uint64_t)cmd->length << l->block_shift,
					 cmd->flags);
		break;
	case IO_ZERO:
		cmd->result = backend_zero(be,
					   (uint64_t)cmd->length << l->block_shift,
					   cmd->offset, cmd->flags);
		break;
	case IO_TRIM:
		cmd->result = backend_trim(be,
					   (uint64_t)cmd->length << l->block_shift,
					   cmd->offset, cmd->flags);
		break;
	case IO_UNMAP: {
		const uint8_t *p = cmd->buf + 8;
		cmd->result = 0;
		for (uint32_t i = 0; i < cmd->length && cmd->result == 0; i++) {
			uint64_t lba = get_be64(p + 16 * i);
			uint32_t nb = get_be32(p + 16 * i + 8);
			/* Zero with permission to deallocate, not a bare
			 * trim: LBPRZ=1 promises that unmapped blocks read
			 * as zero, which BLKDISCARD and NBD trim do not. */
			if (nb)
				cmd->result = backend_zero(be,
					(uint64_t)nb << l->block_shift,
					lba << l->block_shift,
					cmd->flags | IGW_FLAG_MAY_TRIM);
		}
		break;
	}
	default:
		cmd->result = -EINVAL;
	}
	if (shared)
		pthread_rwlock_unlock(&l->write_lock);
	if (cmd->result == -EILSEQ)
		cmd->offset = miss;
}

/* A LUN may hold this many workers; its other commands wait in its own
 * queue, so a backend that hangs (an NBD server gone, a dead disk)
 * cannot starve the other LUNs of workers.  A quarter of the pool, at
 * least one worker, stays free for them. */
static unsigned lun_worker_limit = 12;

void
scsi_set_lun_worker_limit(unsigned io_threads)
{
	unsigned keep = io_threads / 4 ? io_threads / 4 : 1;

	lun_worker_limit = io_threads > keep ? io_threads - keep : 1;
	xcopy_set_limit(io_threads);
}

static void
lun_submit(struct lun *l, struct io_job *job)
{
	bool now;

	pthread_mutex_lock(&l->q_lock);
	now = l->q_inflight < lun_worker_limit;
	if (now) {
		l->q_inflight++;
	} else {
		job->next = NULL;
		if (l->q_tail)
			l->q_tail->next = job;
		else
			l->q_head = job;
		l->q_tail = job;
	}
	pthread_mutex_unlock(&l->q_lock);
	if (now)
		io_submit(job);
}

/* A job of l finished: its worker slot goes to the next waiting one. */
static void
lun_job_done(struct lun *l)
{
	struct io_job *next;

	pthread_mutex_lock(&l->q_lock);
	next = l->q_head;
	if (next) {
		l->q_head = next->next;
		if (!l->q_head)
			l->q_tail = NULL;
	} else {
		l->q_inflight--;
	}
	pthread_mutex_unlock(&l->q_lock);
	if (next)
		io_submit(next);
}

/* The async path (backends with async_pread/async_pwrite: file and
 * blockdev with O_DIRECT and libaio).  A READ or WRITE is started from the
 * loop thread and holds no worker while in flight:
 *
 *   loop: submit --trylock write_lock shared--> backend_async_p*()
 *   backend reaper: async_done --evloop_complete--> loop: io_done, unlock
 *
 * The write lock is taken and released on the loop thread, so a COMPARE
 * AND WRITE, ORWRITE or WRITE ATOMIC (exclusive, on a worker) still sees
 * none of them half done.  When the lock is held exclusively, or the
 * backend declines (unaligned, queue full), the command takes the worker
 * path instead.  Task management and LUN removal need nothing more: the
 * command completes, and drops its references, only after done. */
static void
async_done(void *opaque, int result)
{
	struct scsi_cmd *cmd = opaque;

	cmd->result = result;
	evloop_complete(&cmd->job);
}

static bool
submit_async(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	unsigned n;
	int r;

	if (!l->be->can_async ||
	    (cmd->op != IO_READ && cmd->op != IO_WRITE) ||
	    pthread_rwlock_tryrdlock(&l->write_lock) != 0)
		return false;
	cmd->async = true;
	n = __atomic_add_fetch(&l->async_inflight, 1, __ATOMIC_RELAXED);
	if (n > __atomic_load_n(&l->async_peak, __ATOMIC_RELAXED))
		__atomic_store_n(&l->async_peak, n, __ATOMIC_RELAXED);
	if (cmd->op == IO_READ)
		r = backend_async_pread(l->be, cmd->buf, cmd->length,
					cmd->offset, async_done, cmd);
	else
		r = backend_async_pwrite(l->be, cmd->buf, cmd->length,
					 cmd->offset, cmd->flags, async_done,
					 cmd);
	if (r == 0)
		return true;
	if (r != -EAGAIN) {
		/* Failed at once: completes as a failed request would. */
		async_done(cmd, r);
		return true;
	}
	cmd->async = false;
	__atomic_sub_fetch(&l->async_inflight, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&l->write_lock);
	return false;
}

static void
io_done(struct io_job *job)
{
	struct scsi_cmd *cmd = container_of(job, struct scsi_cmd, job);
	struct lun *l = cmd->lun;

	if (cmd->async) {
		cmd->async = false;
		pthread_rwlock_unlock(&l->write_lock);
		__atomic_sub_fetch(&l->async_inflight, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->stat_async, 1, __ATOMIC_RELAXED);
	} else {
		lun_job_done(l);
	}
	bool write = cmd->op == IO_WRITE || cmd->op == IO_WRITE_SAME ||
		     cmd->op == IO_CAW || cmd->op == IO_ORWRITE ||
		     cmd->op == IO_WRITE_ATOMIC ||
		     cmd->op == IO_WRITE_TAIL || cmd->op == IO_ORWRITE_TAIL ||
		     cmd->op == IO_ZERO || cmd->op == IO_TRIM ||
		     cmd->op == IO_UNMAP || cmd->op == IO_FLUSH;

	if (cmd->result == -EILSEQ) {
		/* SBC-4 §5.3: the information field is the offset of the
		 * first byte that did not match. */
		scsi_set_sense_info(cmd, SK_MISCOMPARE,
				    ASC_MISCOMPARE_DURING_VERIFY, cmd->offset);
	} else if (cmd->result < 0) {
		log_error("%s: %s at byte %llu: %s", l->pointer,
			  write ? "write" : "read",
			  (unsigned long long)cmd->offset,
			  strerror(-cmd->result));
		scsi_set_errno(cmd, cmd->result, write);
		cmd->data_len = 0;
	} else if (cmd->op == IO_LBA_STATUS) {
		spc_put_data(cmd, cmd->op_buf, cmd->op_len,
			     get_be32(cmd->cdb + 10));
	} else if (cmd->op == IO_READ) {
		cmd->data_len = cmd->length;
		__atomic_add_fetch(&l->stat_reads, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->stat_read_bytes, cmd->length,
				   __ATOMIC_RELAXED);
	} else if (cmd->op == IO_WRITE || cmd->op == IO_WRITE_TAIL) {
		__atomic_add_fetch(&l->stat_writes, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->stat_write_bytes, cmd->length,
				   __ATOMIC_RELAXED);
	}
	/* Latency from submission to completion, queueing in the pool
	 * included; failed reads and writes count too. */
	if (cmd->op == IO_READ || cmd->op == IO_WRITE)
		metrics_observe(cmd->op == IO_READ ? &l->metrics.read :
				&l->metrics.write,
				metrics_now_ns() - cmd->start_ns);
	free(cmd->op_buf);
	cmd->op_buf = NULL;
	scsi_cmd_complete(cmd);
}

int
sbc_submit(struct scsi_cmd *cmd, int op, uint64_t offset, uint32_t length,
	   uint32_t flags)
{
	cmd->op = op;
	cmd->offset = offset;
	cmd->length = length;
	cmd->flags = flags;
	if (op == IO_READ || op == IO_WRITE)
		cmd->start_ns = metrics_now_ns();
	cmd->job.fn = io_run;
	cmd->job.done = io_done;
	cmd->job.loop = cmd->loop;
	cmd->async = false;
	if (!submit_async(cmd))
		lun_submit(cmd->lun, &cmd->job);
	return SCSI_ASYNC;
}

/* Reads the loop thread serves itself from the page cache (read_fd in
 * iscsi-gw-backend.h), without the two thread hand-offs of a worker:
 *  - from SENDFILE_MIN bytes, when the transport can send from a file
 *    (data_file_ok: no data digest, an initiator not on loopback) and
 *    cachestat(2) finds every page of the range cached, the data is not
 *    copied at all: the transport sendfile()s it (IET's sendpage);
 *  - up to INLINE_COPY_MAX bytes, preadv2(RWF_NOWAIT) copies what is
 *    cached into buf, and anything else (EAGAIN, a short read) goes to
 *    a worker as before.
 * Smaller reads are copied rather than sent from the file: one writev
 * with their header costs less than a sendmsg and a sendfile. */
#define SENDFILE_MIN (64u << 10)
#define INLINE_COPY_MAX (256u << 10)

#ifndef __NR_cachestat
#define __NR_cachestat 451	/* Linux 6.5, the same on every arch */
#endif

/* Is every page of [off, off+len) of fd in the page cache? */
static bool
range_cached(int fd, uint64_t off, uint32_t len)
{
	static bool missing;	/* ENOSYS: an older kernel */
	static long page;
	struct {
		uint64_t off, len;
	} range;
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
			 nr_recently_evicted;
	} cs;
	uint64_t first, last;

	if (missing)
		return false;
	if (!page)
		page = sysconf(_SC_PAGESIZE);
	first = off / page;
	last = (off + len - 1) / page;
	range.off = first * page;
	range.len = (last - first + 1) * page;
	if (syscall(__NR_cachestat, fd, &range, &cs, 0) < 0) {
		if (errno == ENOSYS)
			missing = true;
		return false;
	}
	return cs.nr_cache >= last - first + 1;
}

/* Loop thread: true when the read is done (data in buf, or left in the
 * file for the transport), false when a worker must do it. */
bool
sbc_read_inline(struct scsi_cmd *cmd, uint64_t offset, uint32_t len)
{
	struct lun *l = cmd->lun;
	uint64_t start = metrics_now_ns(), fd_off;
	bool done = false;
	int fd;

	if (backend_read_fd(l->be, offset, len, &fd, &fd_off) < 0)
		return false;
	/* Never while an exclusive command holds the lock: a worker waits
	 * for it instead of the loop. */
	if (pthread_rwlock_tryrdlock(&l->write_lock) != 0)
		return false;
	if (cmd->data_file_ok && len >= SENDFILE_MIN &&
	    range_cached(fd, fd_off, len)) {
		cmd->data_in_file = true;
		cmd->data_fd = fd;
		cmd->data_fd_off = fd_off;
		done = true;
	} else if (len <= INLINE_COPY_MAX) {
		struct iovec iov = { .iov_base = cmd->buf, .iov_len = len };

		done = preadv2(fd, &iov, 1, (off_t)fd_off, RWF_NOWAIT) ==
		       (ssize_t)len;
	}
	pthread_rwlock_unlock(&l->write_lock);
	if (!done)
		return false;
	cmd->data_len = len;
	__atomic_add_fetch(&l->stat_reads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->stat_read_bytes, len, __ATOMIC_RELAXED);
	metrics_observe(&l->metrics.read, metrics_now_ns() - start);
	return true;
}

ssize_t
scsi_cmd_send_data(struct scsi_cmd *cmd, int sock, uint32_t off, uint32_t len)
{
	struct lun *l = cmd->lun;
	off_t pos = (off_t)(cmd->data_fd_off + off);
	ssize_t r;
	int e;

	pthread_rwlock_rdlock(&l->write_lock);
	r = sendfile(sock, cmd->data_fd, &pos, len);
	e = errno;
	pthread_rwlock_unlock(&l->write_lock);
	errno = e;
	return r;
}
