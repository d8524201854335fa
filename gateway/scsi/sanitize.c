/* sanitize.c: SANITIZE (SBC-4 §4.11, §5.30).  Owns which service actions
 * a LUN offers, the CDB and parameter list checks, the sanitize job run
 * on an IO worker, its progress and the sanitize failure mode.  Sense
 * bytes belong to sense.c.  The handler runs on the loop thread,
 * sanitize_run on a worker.
 *
 *   BLOCK ERASE          thin LUNs whose backend can deallocate: every
 *                        block deallocated (it then reads zero, as
 *                        LBPRZ says)
 *   OVERWRITE            backends that hold the only copy of the data
 *                        (can_sanitize_overwrite: memory): the pattern
 *                        written over every block, OVERWRITE COUNT
 *                        passes, inverted between passes with INVERT
 *   EXIT FAILURE MODE    wherever one of the two is offered
 *   CRYPTOGRAPHIC ERASE  never: no backend keeps a key to throw away
 *
 * A file, a thin pool or an NBD export cannot promise that overwriting
 * the LUN's blocks reaches every copy of the old data (a file's old
 * extents, snapshots, a flash device's remapping), so they get no
 * OVERWRITE.  Either sanitize ends with a flush of the backend before
 * it counts as done.
 *
 *            SANITIZE                     success
 *   idle ----------------> sanitizing --------------------> idle
 *     ^                        | error
 *     |                        v
 *     +-- success ------- failed (AUSE 0: restricted,
 *     |   (any sanitize)         AUSE 1: unrestricted)
 *     +-- EXIT FAILURE MODE, unrestricted only
 *
 * While sanitizing, every command but INQUIRY, REPORT LUNS and REQUEST
 * SENSE ends with NOT READY, SANITIZE IN PROGRESS and the progress
 * (cmd.c); resets and aborts do not stop it.  While failed, medium
 * access commands end with MEDIUM ERROR, SANITIZE COMMAND FAILED.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

#define SA_OVERWRITE 0x01
#define SA_BLOCK_ERASE 0x02
#define SA_EXIT_FAILURE_MODE 0x1f

/* OVERWRITE writes from a buffer of this many bytes (a multiple of
 * every block size), the pattern repeated in each block. */
#define OVERWRITE_CHUNK (1u << 20)

struct sanitize_job {
	struct io_job job;
	struct lun *l;
	struct scsi_cmd *cmd;	/* NULL once IMMED sent the status */
	unsigned sa;
	bool ause;
	/* OVERWRITE: passes, INVERT, and the chunk holding the pattern. */
	unsigned count;
	bool invert;
	uint8_t *buf;
	uint32_t buf_len;
	int result;
};

static bool
block_erase_avail(const struct lun *l)
{
	return l->thin && l->be->can_trim;
}

static bool
overwrite_avail(const struct lun *l)
{
	return l->be->can_sanitize_overwrite;
}

bool
sbc_sanitize_sa_avail(const struct lun *l, unsigned sa)
{
	switch (sa) {
	case SA_OVERWRITE:
		return overwrite_avail(l);
	case SA_BLOCK_ERASE:
		return block_erase_avail(l);
	case SA_EXIT_FAILURE_MODE:
		return sbc_sanitize_avail(l);
	}
	return false;
}

bool
sbc_sanitize_avail(const struct lun *l)
{
	return block_erase_avail(l) || overwrite_avail(l);
}

static const char *
sa_name(unsigned sa)
{
	return sa == SA_OVERWRITE ? "OVERWRITE" : "BLOCK ERASE";
}

unsigned
sbc_sanitize_sense(const struct lun *l, uint8_t *s, bool desc)
{
	unsigned progress = __atomic_load_n(&l->sanitize_progress,
					    __ATOMIC_RELAXED);
	unsigned n = scsi_build_sense(s, desc, SK_NOT_READY,
				      ASC_SANITIZE_IN_PROGRESS);

	if (desc) {
		/* Sense-key specific descriptor: progress indication. */
		s[7] = 8;
		memset(s + 8, 0, 8);
		s[8] = 0x02;
		s[9] = 0x06;
		s[12] = 0x80;
		put_be16(s + 13, (uint16_t)progress);
		return 16;
	}
	s[15] = 0x80;		/* SKSV: progress indication */
	put_be16(s + 16, (uint16_t)progress);
	return n;
}

/* SPC-4 §3.1 "medium access command", as far as this LUN serves them:
 * what reads, writes, verifies, caches or deallocates its blocks. */
bool
sbc_sanitize_failed_blocks(const struct lun *l, const uint8_t *cdb)
{
	if (!__atomic_load_n(&l->sanitize_failed, __ATOMIC_ACQUIRE))
		return false;
	switch (cdb[0]) {
	case 0x08: case 0x28: case 0xa8: case 0x88:	/* READ */
	case 0x0a: case 0x2a: case 0xaa: case 0x8a:	/* WRITE */
	case 0x2e: case 0xae: case 0x8e:		/* WRITE AND VERIFY */
	case 0x2f: case 0xaf: case 0x8f:		/* VERIFY */
	case 0x34: case 0x90:				/* PRE-FETCH */
	case 0x35: case 0x91:				/* SYNCHRONIZE CACHE */
	case 0x41: case 0x93:				/* WRITE SAME */
	case 0x42:					/* UNMAP */
	case 0x83:					/* EXTENDED COPY */
	case 0x89:					/* COMPARE AND WRITE */
	case 0x8b:					/* ORWRITE(16) */
	case 0x9c:					/* WRITE ATOMIC(16) */
		return true;
	}
	return false;
}

static void
set_progress(struct lun *l, uint64_t done, uint64_t all)
{
	/* In floating point: done * 65535 overflows past 256 TiB. */
	unsigned p = all ? (unsigned)((double)done / (double)all * 65535.0) : 0;

	__atomic_store_n(&l->sanitize_progress, MIN(p, 65535u),
			 __ATOMIC_RELAXED);
}

static int
block_erase(struct lun *l)
{
	uint64_t total = l->nblocks << l->block_shift;
	const uint64_t chunk = 64ULL << 20;
	int r = 0;

	for (uint64_t off = 0; off < total && r == 0; off += chunk) {
		uint64_t n = MIN(chunk, total - off);

		r = backend_zero(l->be, n, off, IGW_FLAG_MAY_TRIM);
		set_progress(l, off + n, total);
	}
	return r;
}

/* SBC-4 §5.30: each pass writes the initialization pattern over
 * every block (repeated from the start of each block); with INVERT the
 * pattern is inverted between consecutive passes. */
static int
overwrite(struct lun *l, struct sanitize_job *j)
{
	uint64_t total = l->nblocks << l->block_shift;
	uint64_t all = total * j->count;
	int r = 0;

	for (unsigned pass = 0; pass < j->count && r == 0; pass++) {
		if (pass > 0 && j->invert)
			for (uint32_t i = 0; i < j->buf_len; i++)
				j->buf[i] ^= 0xff;
		for (uint64_t off = 0; off < total && r == 0;
		     off += j->buf_len) {
			uint32_t n = (uint32_t)MIN((uint64_t)j->buf_len,
						   total - off);

			r = backend_pwrite(l->be, j->buf, n, off, 0);
			set_progress(l, pass * total + off + n, all);
		}
	}
	return r;
}

static void
sanitize_run(struct io_job *job)
{
	struct sanitize_job *j = container_of(job, struct sanitize_job, job);
	struct lun *l = j->l;
	int r;

	/* Exclusive: the reads and writes already running finish first,
	 * and no other command starts (they are refused meanwhile). */
	pthread_rwlock_wrlock(&l->write_lock);
	r = j->sa == SA_OVERWRITE ? overwrite(l, j) : block_erase(l);
	/* Done only once stable: a crash after GOOD keeps it done. */
	if (r == 0)
		r = backend_flush(l->be, l->nblocks << l->block_shift, 0);
	pthread_rwlock_unlock(&l->write_lock);
	j->result = r;
}

static void
sanitize_done(struct io_job *job)
{
	struct sanitize_job *j = container_of(job, struct sanitize_job, job);
	struct lun *l = j->l;

	/* The failure mode is in place before the LUN stops answering
	 * SANITIZE IN PROGRESS, so no command slips between the two. */
	if (j->result < 0) {
		log_error("%s: SANITIZE %s failed: %s; medium access fails "
			  "until a sanitize succeeds%s", l->pointer,
			  sa_name(j->sa), strerror(-j->result),
			  j->ause ? " or EXIT FAILURE MODE" : "");
		__atomic_store_n(&l->sanitize_failed,
				 j->ause ? SANITIZE_FAILED_UNRESTRICTED :
					   SANITIZE_FAILED_RESTRICTED,
				 __ATOMIC_RELEASE);
	} else {
		log_info("%s: SANITIZE %s done: %s", l->pointer,
			 sa_name(j->sa),
			 j->sa == SA_OVERWRITE ? "every block overwritten" :
						 "every block deallocated");
		__atomic_store_n(&l->sanitize_failed, 0, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&l->sanitize_progress, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->sanitizing, 0, __ATOMIC_RELEASE);
	if (j->cmd) {
		if (j->result < 0)
			scsi_set_sense(j->cmd, SK_MEDIUM_ERROR,
				       ASC_SANITIZE_COMMAND_FAILED);
		scsi_cmd_complete(j->cmd);
	}
	lun_put(l);
	free(j->buf);
	free(j);
}

/* The OVERWRITE parameter list (SBC-4 §5.30), plen bytes at p:
 *   byte 0    INVERT (bit 7), TEST (bits 6-5), OVERWRITE COUNT (4-0)
 *   byte 1    reserved
 *   bytes 2-3 INITIALIZATION PATTERN LENGTH, 1 to the block length
 *   bytes 4-  INITIALIZATION PATTERN
 * The CDB has already bounded plen to 5 .. block length + 4.  On
 * success j holds the count, INVERT and a chunk filled with the
 * pattern; false with the sense set otherwise. */
static bool
overwrite_params(struct scsi_cmd *cmd, const uint8_t *p, uint32_t plen,
		 struct sanitize_job *j)
{
	struct lun *l = cmd->lun;
	uint32_t bs = l->block_size;
	uint32_t ipl = get_be16(p + 2);
	uint64_t total = l->nblocks << l->block_shift;

	if ((p[0] & 0x1f) == 0) {		/* OVERWRITE COUNT 0 */
		scsi_invalid_param(cmd, 0, 4);
		return false;
	}
	if (p[0] & 0x60) {			/* TEST: no test mode */
		scsi_invalid_param(cmd, 0, 6);
		return false;
	}
	if (p[1]) {
		scsi_invalid_param(cmd, 1, 7);
		return false;
	}
	if (ipl == 0 || ipl > bs) {
		scsi_invalid_param(cmd, 2, 7);
		return false;
	}
	if (4 + ipl > plen) {
		/* The list ends before the pattern it announces does. */
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return false;
	}
	if (4 + ipl < plen) {
		/* Bytes after the pattern: its length is wrong. */
		scsi_invalid_param(cmd, 2, 7);
		return false;
	}
	j->count = p[0] & 0x1f;
	j->invert = p[0] & 0x80;
	/* A whole number of blocks: OVERWRITE_CHUNK, or the LUN if less. */
	j->buf_len = (uint32_t)MIN((uint64_t)OVERWRITE_CHUNK, total);
	if (posix_memalign((void **)&j->buf, 4096, j->buf_len)) {
		j->buf = NULL;
		scsi_set_errno(cmd, -ENOMEM, true);
		return false;
	}
	for (uint32_t o = 0; o < bs; o += ipl)
		memcpy(j->buf + o, p + 4, MIN(ipl, bs - o));
	for (uint32_t o = bs; o < j->buf_len; o += bs)
		memcpy(j->buf + o, j->buf, bs);
	return true;
}

/* EXIT FAILURE MODE (SBC-4 §4.11): leaves the failure mode of a
 * sanitize that failed with AUSE 1; one that failed with AUSE 0 can only
 * be left by a sanitize that succeeds (INVALID FIELD IN CDB).  With no
 * failed sanitize there is nothing to leave: GOOD. */
static int
exit_failure_mode(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	int failed = __atomic_load_n(&l->sanitize_failed, __ATOMIC_ACQUIRE);

	if (failed == SANITIZE_FAILED_RESTRICTED) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (failed) {
		__atomic_store_n(&l->sanitize_failed, 0, __ATOMIC_RELEASE);
		log_info("%s: SANITIZE EXIT FAILURE MODE: medium access "
			 "allowed again after a failed sanitize", l->pointer);
	}
	return SCSI_DONE;
}

int
sbc_sanitize(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	struct lun *l = cmd->lun;
	bool immed = c[1] & 0x80, ause = c[1] & 0x20;
	unsigned sa = c[1] & 0x1f;
	uint32_t plen = get_be16(c + 7);
	struct sanitize_job *j;
	bool bad_len;

	/* Byte 1 bit 6 and bytes 2 to 6 are reserved. */
	if (c[1] & 0x40) {
		scsi_invalid_field(cmd, 1, 6);
		return SCSI_DONE;
	}
	for (unsigned i = 2; i <= 6; i++)
		if (c[i]) {
			scsi_invalid_field(cmd, i, 7);
			return SCSI_DONE;
		}
	if (!sbc_sanitize_sa_avail(l, sa)) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	cmd->xfer_len = plen;
	/* §5.30: only OVERWRITE has a parameter list, of 5 to block
	 * length + 4 bytes; a wrong length is INVALID FIELD IN CDB. */
	if (sa == SA_OVERWRITE)
		bad_len = plen < 5 || plen > l->block_size + 4;
	else
		bad_len = plen != 0;
	if (bad_len) {
		scsi_invalid_field(cmd, 7, 7);
		return SCSI_DONE;
	}
	if (plen > cmd->edtl) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return SCSI_DONE;
	}
	if (sa == SA_EXIT_FAILURE_MODE)
		return exit_failure_mode(cmd);
	/* §4.11: after a failure in the restricted completion mode, a
	 * sanitize asking for the unrestricted one is refused. */
	if (ause && __atomic_load_n(&l->sanitize_failed, __ATOMIC_ACQUIRE) ==
			    SANITIZE_FAILED_RESTRICTED) {
		scsi_invalid_field(cmd, 1, 5);
		return SCSI_DONE;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		scsi_set_errno(cmd, -ENOMEM, true);
		return SCSI_DONE;
	}
	j->sa = sa;
	j->ause = ause;
	/* The pattern is copied out: with IMMED cmd->buf goes at once. */
	if (sa == SA_OVERWRITE && !overwrite_params(cmd, cmd->buf, plen, j)) {
		free(j->buf);
		free(j);
		return SCSI_DONE;
	}
	if (__atomic_exchange_n(&l->sanitizing, 1, __ATOMIC_ACQ_REL)) {
		free(j->buf);
		free(j);
		scsi_set_sense(cmd, SK_NOT_READY, ASC_SANITIZE_IN_PROGRESS);
		return SCSI_DONE;
	}
	if (sa == SA_OVERWRITE)
		log_info("%s: SANITIZE OVERWRITE started: %u pass%s%s%s",
			 l->pointer, j->count, j->count == 1 ? "" : "es",
			 j->invert ? ", inverted between passes" : "",
			 immed ? " (IMMED)" : "");
	else
		log_info("%s: SANITIZE BLOCK ERASE started%s", l->pointer,
			 immed ? " (IMMED)" : "");
	lun_get(l);
	j->l = l;
	j->cmd = immed ? NULL : cmd;
	j->job.fn = sanitize_run;
	j->job.done = sanitize_done;
	j->job.loop = cmd->loop;
	io_submit(&j->job);
	return immed ? SCSI_DONE : SCSI_ASYNC;
}
