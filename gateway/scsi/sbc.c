/* sbc.c: SBC-3/SBC-4 block commands.  Owns LBA/length checks, the mapping
 * of CDBs to backend requests (read, write with FUA when WCE is off, flush
 * of a range, zero, trim, compare) and their submission to the IO workers,
 * or for reads and writes to the backend's async calls where it has them.
 * Sense bytes belong to sense.c.  Handlers run on the loop thread; the
 * io_* functions below run on workers.
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
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

enum io_op {
	IO_READ = 1,
	IO_WRITE,
	IO_FLUSH,
	IO_COMPARE,		/* read and compare with cmd->buf */
	IO_COMPARE_EACH,	/* compare one block with every block */
	IO_WRITE_SAME,		/* replicate the first block */
	IO_ZERO,
	IO_TRIM,
	IO_UNMAP,		/* descriptors in cmd->buf */
	IO_CAW,			/* COMPARE AND WRITE */
	IO_LBA_STATUS,		/* GET LBA STATUS: extents into a buffer */
	IO_ORWRITE,		/* ORWRITE: read, OR cmd->buf in, write */
	IO_WRITE_ATOMIC,	/* WRITE ATOMIC: a write under the lock */
	IO_WRITE_TAIL,		/* WRITE ending inside a block: see write_tail */
	IO_ORWRITE_TAIL,	/* the same for ORWRITE */
};

/* GET LBA STATUS answers at most this many descriptors at once. */
#define LBA_STATUS_MAX_DESC 128



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

static int
submit(struct scsi_cmd *cmd, int op, uint64_t offset, uint32_t length,
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
static bool
read_inline(struct scsi_cmd *cmd, uint64_t offset, uint32_t len)
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

/* Decode LBA and transfer length of READ/WRITE/VERIFY-shaped CDBs. */
static void
decode_rw(const uint8_t *c, uint64_t *lba, uint32_t *nb)
{
	switch (c[0] >> 5) {
	case 0:	/* 6-byte */
		*lba = get_be24(c + 1) & 0x1fffff;
		*nb = c[4] ? c[4] : (c[0] == 0x08 || c[0] == 0x0a ? 256 : 0);
		break;
	case 1: case 2:	/* 10-byte */
		*lba = get_be32(c + 2);
		*nb = get_be16(c + 7);
		break;
	case 5:	/* 12-byte */
		*lba = get_be32(c + 2);
		*nb = get_be32(c + 6);
		break;
	default: /* 16-byte */
		*lba = get_be64(c + 2);
		*nb = get_be32(c + 10);
		break;
	}
}

/* Shared checks: returns false with sense set when the range is bad. */
static bool
check_range(struct scsi_cmd *cmd, uint64_t lba, uint64_t nb)
{
	struct lun *l = cmd->lun;

	if (lba > l->nblocks || nb > l->nblocks - lba) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	return true;
}

static bool
check_xfer(struct scsi_cmd *cmd, uint32_t nb, unsigned len_byte)
{
	if ((uint64_t)nb << cmd->lun->block_shift > SCSI_MAX_XFER) {
		scsi_invalid_field(cmd, len_byte, -1);
		return false;
	}
	return true;
}

static unsigned
len_byte(const uint8_t *c)
{
	switch (c[0] >> 5) {
	case 0: return 4;
	case 1: case 2: return 7;
	case 5: return 6;
	default: return 10;
	}
}

int
sbc_read(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba;
	uint32_t nb, len;

	decode_rw(c, &lba, &nb);
	if (c[0] != 0x08 && (c[1] & 0xe0)) {	/* RDPROTECT: no PI here */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return SCSI_DONE;
	cmd->xfer_len = nb << l->block_shift;
	len = MIN(cmd->xfer_len, cmd->edtl);
	if (len == 0)
		return SCSI_DONE;
	if (l->be->can_read_fd && read_inline(cmd, lba << l->block_shift, len))
		return SCSI_DONE;
	return submit(cmd, IO_READ, lba << l->block_shift, len, 0);
}

static uint32_t
write_flags(struct scsi_cmd *cmd)
{
	/* WRITE(6) has no FUA bit; in WRITE SAME(10/16) and UNMAP that
	 * bit is UNMAP or ANCHOR, not FUA. */
	bool fua = cmd->cdb[0] != 0x0a && cmd->cdb[0] != 0x41 &&
		   cmd->cdb[0] != 0x93 && cmd->cdb[0] != 0x42 &&
		   (cmd->cdb[1] & 0x08);

	/* WCE off: every write is stable before its status (SBC-4 §4.15). */
	if (fua || !__atomic_load_n(&cmd->lun->wce, __ATOMIC_RELAXED))
		return IGW_FLAG_FUA;
	return 0;
}

/* Write (op IO_WRITE or IO_ORWRITE) what the initiator sent.  With fewer
 * bytes than the CDB describes (EDTL overflow, RFC 7143 §11.4.5.2) just
 * those bytes are written, the transport reports the residual, and the
 * blocks beyond them are not touched; a Data-Out that ends inside a block
 * takes write_tail.  With no Data-Out at all nothing is written. */
static int
write_blocks(struct scsi_cmd *cmd, int op, uint64_t lba, uint32_t flags)
{
	struct lun *l = cmd->lun;
	uint32_t len = cmd->xfer_len;

	if (cmd->edtl < len) {
		len = cmd->edtl;
		if (len == 0)
			return SCSI_DONE;
		if (len & (l->block_size - 1))
			return submit(cmd, op == IO_ORWRITE ? IO_ORWRITE_TAIL :
				      IO_WRITE_TAIL, lba << l->block_shift,
				      len, flags);
	}
	return submit(cmd, op, lba << l->block_shift, len, flags);
}

/* The checks WRITE, WRITE AND VERIFY and ORWRITE share: the protection
 * field (bits 7-5 of byte 1; WRITE(6) has none), range, transfer length.
 * False when the command is done (refused, or no blocks to write). */
static bool
write_checks(struct scsi_cmd *cmd, uint64_t *lba)
{
	const uint8_t *c = cmd->cdb;
	uint32_t nb;

	decode_rw(c, lba, &nb);
	if (c[0] != 0x0a && (c[1] & 0xe0)) {	/* WR/ORPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return false;
	}
	if (!check_range(cmd, *lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return false;
	cmd->xfer_len = nb << cmd->lun->block_shift;
	return cmd->xfer_len != 0;
}

int
sbc_write(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	return write_blocks(cmd, IO_WRITE, lba, write_flags(cmd));
}

int
sbc_write_verify(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	/* Verification against the medium: the write is made stable. */
	return write_blocks(cmd, IO_WRITE, lba, IGW_FLAG_FUA);
}

/* ORWRITE(16) (SBC-4 §5.12): the Data-Out is ORed into the blocks (BMOP
 * 000b, the only operation of the 16-byte CDB).  Checked as WRITE(16) is;
 * ORPROTECT, like WRPROTECT, must be zero. */
int
sbc_orwrite(struct scsi_cmd *cmd)
{
	uint64_t lba;

	if (!write_checks(cmd, &lba))
		return SCSI_DONE;
	return write_blocks(cmd, IO_ORWRITE, lba, write_flags(cmd));
}

bool
sbc_atomic_avail(const struct lun *l)
{
	return l->be->can_atomic;
}

uint32_t
sbc_atomic_max(const struct lun *l)
{
	if (!sbc_atomic_avail(l))
		return 0;
	return MIN(SCSI_MAX_ATOMIC, SCSI_MAX_XFER) >> l->block_shift;
}

/* WRITE ATOMIC(16) (SBC-4 §5.48), on LUNs whose backend writes cannot be
 * torn by a crash (sbc_atomic_avail; the others answer INVALID COMMAND
 * OPERATION CODE from the dispatcher).  Within the Block Limits VPD page:
 * at most sbc_atomic_max blocks, no alignment or granularity, and no
 * ATOMIC BOUNDARY (its maxima are reported as zero).  All or nothing, so
 * unlike WRITE a Data-Out shorter than the CDB describes writes nothing. */
int
sbc_write_atomic(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t nb = get_be16(c + 12);

	if (c[1] & 0xe0) {	/* WRPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (get_be16(c + 10)) {	/* ATOMIC BOUNDARY */
		scsi_invalid_field(cmd, 10, -1);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	if (nb > sbc_atomic_max(l)) {
		scsi_invalid_field(cmd, 12, -1);
		return SCSI_DONE;
	}
	cmd->xfer_len = nb << l->block_shift;
	if (nb == 0)
		return SCSI_DONE;
	if (cmd->edtl < cmd->xfer_len) {
		scsi_invalid_field(cmd, 12, -1);
		return SCSI_DONE;
	}
	return submit(cmd, IO_WRITE_ATOMIC, lba << l->block_shift,
		      cmd->xfer_len, write_flags(cmd));
}

int
sbc_verify(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	unsigned bytchk = (c[1] >> 1) & 0x03;
	uint64_t lba;
	uint32_t nb;

	decode_rw(c, &lba, &nb);
	if (c[1] & 0xe0) {	/* VRPROTECT */
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (bytchk == 2) {
		scsi_invalid_field(cmd, 1, 2);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb) || !check_xfer(cmd, nb, len_byte(c)))
		return SCSI_DONE;
	if (nb == 0 || bytchk == 0)
		return SCSI_DONE;
	cmd->xfer_len = bytchk == 3 ? l->block_size : nb << l->block_shift;
	if (cmd->edtl < cmd->xfer_len) {
		scsi_invalid_field(cmd, len_byte(c), -1);
		return SCSI_DONE;
	}
	if (bytchk == 3) {
		submit(cmd, IO_COMPARE_EACH, lba << l->block_shift,
		       nb << l->block_shift, 0);
		return SCSI_ASYNC;
	}
	return submit(cmd, IO_COMPARE, lba << l->block_shift,
		      nb << l->block_shift, 0);
}

int
sbc_read_capacity10(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint8_t d[8];

	if (!(c[8] & 0x01) && get_be32(c + 2)) {	/* LBA without PMI */
		scsi_invalid_field(cmd, 2, -1);
		return SCSI_DONE;
	}
	put_be32(d, (uint32_t)MIN(l->nblocks - 1, 0xffffffffULL));
	put_be32(d + 4, l->block_size);
	return spc_put_data(cmd, d, sizeof d, sizeof d);
}

static int
read_capacity16(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint8_t d[32] = { 0 };
	unsigned exp = 0;

	if (l->be->pref_physical > l->block_size) {
		uint32_t ratio = l->be->pref_physical / l->block_size;
		while ((1u << exp) < ratio && exp < 15)
			exp++;
	}
	put_be64(d, l->nblocks - 1);
	put_be32(d + 8, l->block_size);
	d[13] = exp;
	if (l->thin && l->be->can_trim)
		d[14] = 0x80 | 0x40;	/* LBPME, LBPRZ */
	return spc_put_data(cmd, d, sizeof d, get_be32(c + 10));
}

static int
get_lba_status(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t alloc = get_be32(c + 10);
	uint32_t ndesc;

	if (!(l->thin && l->be->can_trim)) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (lba >= l->nblocks) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return SCSI_DONE;
	}
	if (alloc < 24) {
		/* Room for the header and no descriptor: just the header. */
		uint8_t d[8] = { 0 };
		put_be32(d, 4);
		return spc_put_data(cmd, d, 8, alloc);
	}
	ndesc = MIN((alloc - 8) / 16, LBA_STATUS_MAX_DESC);
	return submit(cmd, IO_LBA_STATUS, lba << l->block_shift, ndesc, 0);
}

int
sbc_service_action_in(struct scsi_cmd *cmd)
{
	switch (cmd->cdb[1] & 0x1f) {
	case 0x10:
		return read_capacity16(cmd);
	case 0x12:
		return get_lba_status(cmd);
	default:
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
}

int
sbc_synchronize_cache(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba, nb;

	if (c[0] == 0x35) {
		lba = get_be32(c + 2);
		nb = get_be16(c + 7);
	} else {
		lba = get_be64(c + 2);
		nb = get_be32(c + 10);
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	/* nb 0: from lba to the end.  IMMED is honoured by finishing first,
	 * which is never wrong.  Lengths past 4 GiB flush to the end. */
	if ((nb << l->block_shift) > 0xffffffffULL)
		nb = 0;
	return submit(cmd, IO_FLUSH, lba << l->block_shift,
		      (uint32_t)(nb << l->block_shift), 0);
}

/* READ DEFECT DATA(10) and (12) (SBC-4).  A gateway LUN has no medium and
 * no defects: the answer is the header of an empty list.  An empty list
 * reads the same in every address descriptor format, so it is returned in
 * the format asked for, with PLISTV and GLISTV set for the lists asked for
 * (they are returned, empty); a reserved format (111b) is refused.  The
 * ADDRESS DESCRIPTOR INDEX of the 12-byte CDB is at or past the end of an
 * empty list: no descriptor either way. */
int
sbc_read_defect_data(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	bool twelve = c[0] == 0xb7;
	unsigned fbyte = twelve ? 1 : 2;
	uint8_t d[8] = { 0 };

	if ((c[fbyte] & 0x07) == 0x07) {
		scsi_invalid_field(cmd, fbyte, 2);
		return SCSI_DONE;
	}
	/* PLISTV, GLISTV and DEFECT LIST FORMAT sit where REQ_PLIST,
	 * REQ_GLIST and DEFECT LIST FORMAT sit in the CDB; the DEFECT LIST
	 * LENGTH is zero. */
	d[1] = c[fbyte] & 0x1f;
	if (twelve)
		return spc_put_data(cmd, d, 8, get_be32(c + 6));
	return spc_put_data(cmd, d, 4, get_be16(c + 7));
}

int
sbc_prefetch(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint64_t lba, nb;

	if (c[0] == 0x34) {
		lba = get_be32(c + 2);
		nb = get_be16(c + 7);
	} else {
		lba = get_be64(c + 2);
		nb = get_be32(c + 10);
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	return SCSI_DONE;
}

int
sbc_write_same(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	bool sixteen = c[0] == 0x93;
	bool unmap = c[1] & 0x08, anchor = c[1] & 0x10;
	bool ndob = sixteen && (c[1] & 0x01);
	uint64_t lba = sixteen ? get_be64(c + 2) : get_be32(c + 2);
	uint64_t nb = sixteen ? get_be32(c + 10) : get_be16(c + 7);
	bool lbp = l->thin && l->be->can_trim;

	if (c[1] & 0xe0) {
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (anchor) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (unmap && !lbp) {
		/* SBC-4 §5.49: UNMAP without logical block provisioning. */
		scsi_invalid_field(cmd, 1, 3);
		return SCSI_DONE;
	}
	if (nb == 0)	/* WSNZ = 0: zero means to the end */
		nb = lba < l->nblocks ? l->nblocks - lba : 0;
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	if (nb > 0xffffffffULL) {
		scsi_invalid_field(cmd, sixteen ? 10 : 7, -1);
		return SCSI_DONE;
	}
	cmd->xfer_len = ndob ? 0 : l->block_size;
	/* The Data-Out is one logical block.  Another length means the
	 * initiator has another block size in mind, and replicating what
	 * it sent over the range would write a pattern it never meant:
	 * refused both ways, as COMPARE AND WRITE refuses. */
	if (!ndob && cmd->edtl != l->block_size) {
		scsi_invalid_field(cmd, sixteen ? 10 : 7, -1);
		return SCSI_DONE;
	}
	if (nb == 0)
		return SCSI_DONE;
	bool zero = ndob;
	if (!zero) {
		zero = true;
		for (uint32_t i = 0; i < l->block_size; i++)
			if (cmd->buf[i]) {
				zero = false;
				break;
			}
	}
	/* SBC-3 §5.43: with UNMAP set the blocks are unmapped, whatever the
	 * data; LBPRZ=1 says they then read as zero. */
	if (unmap && lbp)
		return submit(cmd, IO_ZERO, lba << l->block_shift,
			      (uint32_t)nb, IGW_FLAG_MAY_TRIM | write_flags(cmd));
	if (zero)
		return submit(cmd, IO_ZERO, lba << l->block_shift,
			      (uint32_t)nb, write_flags(cmd));
	return submit(cmd, IO_WRITE_SAME, lba << l->block_shift, (uint32_t)nb,
		      write_flags(cmd));
}

int
sbc_unmap(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint32_t plen = get_be16(c + 7);
	const uint8_t *p = cmd->buf;
	uint32_t bdl, n;

	if (!(l->thin && l->be->can_trim)) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_COMMAND_OPERATION_CODE);
		return SCSI_DONE;
	}
	cmd->xfer_len = plen;
	if (c[1] & 0x01) {	/* ANCHOR */
		scsi_invalid_field(cmd, 1, 0);
		return SCSI_DONE;
	}
	if (plen == 0)
		return SCSI_DONE;
	if (plen < 8 || plen > cmd->edtl) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return SCSI_DONE;
	}
	bdl = get_be16(p + 2);
	if (bdl > plen - 8)
		bdl = (plen - 8) & ~15u;
	n = bdl / 16;
	if (n > 256) {
		scsi_invalid_param(cmd, 2, -1);
		return SCSI_DONE;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lba = get_be64(p + 8 + 16 * i);
		uint32_t nb = get_be32(p + 8 + 16 * i + 8);
		if (!check_range(cmd, lba, nb))
			return SCSI_DONE;
	}
	if (n == 0)
		return SCSI_DONE;
	return submit(cmd, IO_UNMAP, 0, n, write_flags(cmd));
}

uint32_t
scsi_cmd_out_len(const struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba, n = 0;
	uint32_t nb;

	if (!l)
		return cmd->edtl;
	switch (c[0]) {
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:	/* WRITE */
	case 0x2e: case 0xae: case 0x8e:		/* WRITE AND VERIFY */
	case 0x8b:					/* ORWRITE(16) */
		decode_rw(c, &lba, &nb);
		n = (uint64_t)nb << l->block_shift;
		break;
	case 0x9c:					/* WRITE ATOMIC(16) */
		n = (uint64_t)get_be16(c + 12) << l->block_shift;
		break;
	case 0x2f: case 0xaf: case 0x8f:		/* VERIFY */
		decode_rw(c, &lba, &nb);
		switch ((c[1] >> 1) & 3) {
		case 1: n = (uint64_t)nb << l->block_shift; break;
		case 3: n = nb ? l->block_size : 0; break;
		default: n = 0;
		}
		break;
	case 0x41:					/* WRITE SAME(10) */
		n = l->block_size;
		break;
	case 0x93:					/* WRITE SAME(16) */
		n = (c[1] & 0x01) ? 0 : l->block_size;
		break;
	case 0x89:			/* COMPARE AND WRITE */
		n = 2 * ((uint64_t)c[13] << l->block_shift);
		break;
	case 0x42: case 0x48: case 0x55: /* UNMAP, SANITIZE, MODE SELECT(10) */
		n = get_be16(c + 7);
		break;
	case 0x15:			/* MODE SELECT(6) */
		n = c[4];
		break;
	case 0x5f:			/* PERSISTENT RESERVE OUT */
		n = get_be32(c + 5);
		break;
	case 0x83:			/* EXTENDED COPY */
		n = get_be32(c + 10);
		break;
	case 0x56: case 0x57:		/* RESERVE(10), RELEASE(10) */
		n = get_be16(c + 7);
		break;
	default:
		return cmd->edtl;
	}
	return (uint32_t)MIN(n, (uint64_t)cmd->edtl);
}

int
sbc_compare_and_write(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	uint64_t lba = get_be64(c + 2);
	uint32_t nb = c[13];

	if (c[1] & 0xe0) {
		scsi_invalid_field(cmd, 1, 7);
		return SCSI_DONE;
	}
	if (nb > SCSI_MAX_CAW_BLOCKS) {
		scsi_invalid_field(cmd, 13, -1);
		return SCSI_DONE;
	}
	if (!check_range(cmd, lba, nb))
		return SCSI_DONE;
	cmd->xfer_len = 2 * (nb << l->block_shift);
	if (cmd->edtl != cmd->xfer_len) {
		/* The Data-Out buffer must hold exactly the verify and the
		 * write data (SBC-4 §5.3); a length byte that wrapped to 0
		 * under 256 blocks of data lands here too. */
		scsi_invalid_field(cmd, 13, -1);
		return SCSI_DONE;
	}
	if (nb == 0)
		return SCSI_DONE;
	return submit(cmd, IO_CAW, lba << l->block_shift, nb << l->block_shift,
		      write_flags(cmd));
}
