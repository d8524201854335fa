/* xcopy.c: the copy manager: EXTENDED COPY(LID1) (SPC-4 §6.4).  Owns the
 * parameter list checks, the lookup of copy targets (CSCDs), the copy
 * itself and the held results; what reports them (RECEIVE COPY RESULTS,
 * the Third-party Copy VPD page) is xcopy-results.c, sense bytes belong
 * to sense.c.
 *
 *   loop thread                               IO worker
 *   spc_extended_copy: parse and check the
 *   whole list, resolve CSCDs, reservations,
 *   write protection, ranges; lun_get each
 *   LUN --io_submit---------------------->    copy_run: each segment in
 *                                             chunks, read source, write
 *                                             destination (FUA when WCE
 *                                             is off); stops between
 *                                             chunks once cmd->abort is set
 *                                             or a copy target was reset
 *   copy_done: lun_put, held results,  <---
 *   status
 *
 * Only block-to-block segments (02h) between identification CSCDs (E4h)
 * naming a LUN by the NAA or T10 vendor ID designator of its Device
 * Identification VPD page.  A LUN of the command's target, or of a
 * target where the same initiator has a session, may be a source or
 * destination (a copy is no way around another target's ACL, CHAP or
 * networks); it is checked for reservations as a READ(16) or
 * WRITE(16) from the I_T nexus of the EXTENDED COPY would be.  A copy
 * holds no IO worker slot of its LUNs (sbc-io.c's per-LUN limit): it runs as
 * one job, a chunk at a time, and at most a quarter of the workers run
 * copies; the others wait their turn.
 *
 * Held results (LIST ID USAGE 00b) belong to the I_T nexus and die with
 * it; they and everything else here are loop-thread only.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"
#include "xcopy-internal.h"
#include "pr.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

#define CSCD_LEN 32
#define SEG_B2B_LEN 0x18		/* DESCRIPTOR LENGTH of 02h */

/* ASCs of the copy manager (SPC-4 Annex D). */
#define ASC_OPERATION_IN_PROGRESS 0x0016
#define ASC_UNREACHABLE_COPY_TARGET 0x0804
#define ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE 0x0d03
#define ASC_TOO_MANY_TARGET_DESCRIPTORS 0x2606
#define ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE 0x2607
#define ASC_TOO_MANY_SEGMENT_DESCRIPTORS 0x2608
#define ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE 0x2609
#define ASC_INLINE_DATA_LENGTH_EXCEEDED 0x260b

#define SK_COPY_ABORTED 0xa

/* LIST ID USAGE (SPC-4 table 105). */
#define LID_HOLD 0
#define LID_NO_HOLD 2
#define LID_NONE 3

static struct lunmap *the_map;

/* Copies on the IO workers at once, and the ones waiting for a turn
 * (loop thread): copies whose backend hangs must not take every worker
 * from the LUNs' reads and writes (sbc-io.c keeps a quarter of the pool
 * free per LUN the same way). */
static unsigned copies_running, copy_limit = 4;
static struct xcopy_job *copy_q_head, *copy_q_tail;

void
xcopy_set_limit(unsigned io_threads)
{
	copy_limit = io_threads / 4 ? io_threads / 4 : 1;
}

void
scsi_set_lunmap(struct lunmap *m)
{
	the_map = m;
}

void
xcopy_nexus_free(struct scsi_nexus *n)
{
	free(n->xcopy);
	n->xcopy = NULL;
}

struct xcopy_held *
xcopy_held_find(struct scsi_nexus *n, uint8_t list_id)
{
	struct xcopy_nexus *x = n ? n->xcopy : NULL;

	for (unsigned i = 0; x && i < XCOPY_HELD_MAX; i++)
		if (x->held[i].used && x->held[i].list_id == list_id)
			return &x->held[i];
	return NULL;
}

/* A slot for list_id: the oldest completed one when all are used, NULL
 * when every slot holds a running copy or out of memory. */
static struct xcopy_held *
held_new(struct scsi_nexus *n, uint8_t list_id)
{
	struct xcopy_nexus *x = n->xcopy;
	struct xcopy_held *h = NULL;

	if (!x) {
		x = n->xcopy = calloc(1, sizeof *x);
		if (!x)
			return NULL;
	}
	for (unsigned i = 0; i < XCOPY_HELD_MAX; i++) {
		struct xcopy_held *c = &x->held[i];
		if (!c->used) {
			h = c;
			break;
		}
		if (!c->running && (!h || c->seq < h->seq))
			h = c;
	}
	if (h) {
		memset(h, 0, sizeof *h);
		h->used = true;
		h->list_id = list_id;
		h->seq = ++x->seq;
	}
	return h;
}

/* ---- sense ---- */

/* COPY ABORTED with a segment pointer (SPC-4 §4.5.2.4.5): the field at
 * byte `field` of segment descriptor `seg`, whose number is also in the
 * COMMAND-SPECIFIC INFORMATION field. */
static void
copy_aborted(struct scsi_cmd *cmd, uint16_t asc, unsigned seg, int field)
{
	scsi_set_sense(cmd, SK_COPY_ABORTED, asc);
	put_be16(cmd->sense + 10, (uint16_t)seg);
	if (field >= 0) {
		cmd->sense[15] = 0x80 | 0x20;	/* SKSV, SD */
		put_be16(cmd->sense + 16, (uint16_t)field);
	}
}

static void
list_len_error(struct scsi_cmd *cmd)
{
	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
		       ASC_PARAMETER_LIST_LENGTH_ERROR);
}

/* ---- CSCD descriptors ---- */

struct cscd {
	struct lun *lun;	/* NULL: names no LUN of ours */
	bool nul;
	uint8_t ptype;
	uint32_t block_len;
};

/* Does designator d (type, length, bytes) name LUN l, as its Device
 * Identification VPD page reports it (spc.c)? */
static bool
designates(const struct lun *l, unsigned type, const uint8_t *id, unsigned n)
{
	uint8_t want[8 + sizeof l->serial];
	size_t sl;

	if (!l || !l->be)
		return false;
	switch (type) {
	case 0x3:	/* NAA */
		return n == 8 && get_be64(id) == l->naa;
	case 0x1:	/* T10 vendor ID: vendor, then the serial number */
		sl = strlen(l->serial);
		memset(want, ' ', 8);
		memcpy(want, "ISCSI-GW", 8);
		memcpy(want + 8, l->serial, sl);
		return n == 8 + sl && !memcmp(id, want, n);
	default:
		return false;
	}
}

/* Only LUNs the initiator may reach anyway are copy targets: those of
 * the target it sent the command to, and of targets where it has a
 * session now (so passed their ACL, CHAP and network checks).  Another
 * target's LUN is not a way around those checks: it names no LUN. */
static bool
reachable(const struct scsi_cmd *cmd, const struct target *t)
{
	return t == cmd->nexus->target ||
	       scsi_initiator_on_target(cmd->nexus->initiator, t);
}

static struct lun *
lun_by_designator(struct scsi_cmd *cmd, unsigned type, const uint8_t *id,
		  unsigned n)
{
	/* The LUN the command came to first: a per-initiator image is in
	 * no target's table. */
	if (designates(cmd->lun, type, id, n))
		return cmd->lun;
	for (size_t i = 0; the_map && i < the_map->ntargets; i++) {
		struct target *t = the_map->targets[i];
		if (!reachable(cmd, t))
			continue;
		for (size_t j = 0; j < t->nluns; j++)
			if (designates(t->luns[j], type, id, n))
				return t->luns[j];
	}
	return NULL;
}

/* Parse an identification CSCD (SPC-4 §6.4.6.2) at p, byte offset off in
 * the parameter list.  False with sense set. */
static bool
parse_cscd(struct scsi_cmd *cmd, const uint8_t *p, unsigned off,
	   struct cscd *d)
{
	unsigned assoc = (p[5] >> 4) & 3, type = p[5] & 0x0f;
	unsigned n = p[7];

	/* LU ID TYPE (bits 7-6 of byte 1) is obsolete in SPC-4 and ignored
	 * (libiscsi's ValidTgtDescr expects GOOD from an SPC-4 device).
	 * NUL, obsolete too, still names no LUN: a segment that uses it is
	 * refused as UNREACHABLE COPY TARGET. */
	memset(d, 0, sizeof *d);
	d->nul = p[1] & 0x20;
	d->ptype = p[1] & 0x1f;
	if (n > 20) {		/* the designator fills bytes 8 to 27 at most */
		scsi_invalid_param(cmd, off + 7, 7);
		return false;
	}
	d->block_len = get_be24(p + 29);
	if (assoc == 0 && !d->nul)
		d->lun = lun_by_designator(cmd, type, p + 8, n);
	return true;
}

/* ---- reservations and protection of a copy target ---- */

/* Would a READ(16) (write false) or WRITE(16) from cmd's I_T nexus to l
 * be refused?  Sets the sense or status on cmd then. */
static bool
target_refuses(struct scsi_cmd *cmd, struct lun *l, bool write)
{
	struct scsi_cmd probe;
	const struct scsi_op *op = scsi_op_at(write ? 0x8a : 0x88);

	if (__atomic_load_n(&l->medium_out, __ATOMIC_ACQUIRE)) {
		/* A removable LUN whose medium is ejected (medium.c). */
		scsi_set_sense(cmd, SK_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
		return true;
	}
	if (write && l->read_only) {
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return true;
	}
	if (write && __atomic_load_n(&l->swp, __ATOMIC_RELAXED)) {
		scsi_set_sense(cmd, SK_DATA_PROTECT,
			       ASC_SOFTWARE_WRITE_PROTECTED);
		return true;
	}
	memset(&probe, 0, sizeof probe);
	probe.cdb[0] = write ? 0x8a : 0x88;
	probe.cdb_len = 16;
	/* A copy target being sanitized, or left failed by a sanitize,
	 * is no more readable or writable through a copy (sanitize.c). */
	if (__atomic_load_n(&l->sanitizing, __ATOMIC_ACQUIRE)) {
		cmd->status = SAM_STAT_CHECK_CONDITION;
		cmd->sense_len = sbc_sanitize_sense(l, cmd->sense, false);
		return true;
	}
	if (sbc_sanitize_failed_blocks(l, probe.cdb)) {
		scsi_set_sense(cmd, SK_MEDIUM_ERROR,
			       ASC_SANITIZE_COMMAND_FAILED);
		return true;
	}
	probe.lun = l;
	probe.lun_id = l->id;
	probe.nexus = cmd->nexus;
	if (!op || !pr_conflict(&probe, op))
		return false;
	cmd->status = probe.status;
	cmd->sense_len = probe.sense_len;
	memcpy(cmd->sense, probe.sense, sizeof cmd->sense);
	return true;
}

/* ---- segment descriptors ---- */

/* Check block-to-block segment number i at p (byte off of the list)
 * against the CSCDs and fill s.  False with sense set. */
static bool
parse_b2b(struct scsi_cmd *cmd, const uint8_t *p, unsigned off, unsigned i,
	  const struct cscd *cscd, unsigned ncscd, struct xcopy_seg *s)
{
	unsigned si = get_be16(p + 4), di = get_be16(p + 6);
	bool dc = p[1] & 0x02;
	uint32_t nb = get_be16(p + 10);
	uint64_t src_lba = get_be64(p + 12), dst_lba = get_be64(p + 20);
	const struct cscd *sd, *dd;
	uint32_t sbs, dbs;

	if (get_be16(p + 2) != SEG_B2B_LEN) {
		scsi_invalid_param(cmd, off + 2, -1);
		return false;
	}
	/* SPC-4 §6.4.5.1: a CSCD that is not there or cannot be reached. */
	if (si >= ncscd || !cscd[si].lun) {
		copy_aborted(cmd, ASC_UNREACHABLE_COPY_TARGET, i, 4);
		return false;
	}
	if (di >= ncscd || !cscd[di].lun) {
		copy_aborted(cmd, ASC_UNREACHABLE_COPY_TARGET, i, 6);
		return false;
	}
	sd = &cscd[si];
	dd = &cscd[di];
	/* A block device, with the block length it has (SPC-4 §6.4.6.1). */
	if (sd->ptype != 0 || sd->block_len != sd->lun->block_size) {
		copy_aborted(cmd, ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, i, 4);
		return false;
	}
	if (dd->ptype != 0 || dd->block_len != dd->lun->block_size) {
		copy_aborted(cmd, ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, i, 6);
		return false;
	}
	sbs = sd->lun->block_size;
	dbs = dd->lun->block_size;
	/* DC: NUMBER OF BLOCKS counts destination blocks, else source. */
	s->len = (uint64_t)nb * (dc ? dbs : sbs);
	if (s->len % sbs || s->len % dbs) {
		/* An inexact segment: refused (SPC-4 §6.4.5.1 lets the copy
		 * manager choose). */
		scsi_invalid_param(cmd, off + 10, -1);
		return false;
	}
	if (src_lba > sd->lun->nblocks ||
	    s->len / sbs > sd->lun->nblocks - src_lba) {
		copy_aborted(cmd, ASC_NO_ADDITIONAL_SENSE, i, 12);
		return false;
	}
	if (dst_lba > dd->lun->nblocks ||
	    s->len / dbs > dd->lun->nblocks - dst_lba) {
		copy_aborted(cmd, ASC_NO_ADDITIONAL_SENSE, i, 20);
		return false;
	}
	if (target_refuses(cmd, sd->lun, false) ||
	    target_refuses(cmd, dd->lun, true))
		return false;
	s->src = sd->lun;
	s->dst = dd->lun;
	s->src_off = src_lba * sbs;
	s->dst_off = dst_lba * dbs;
	return true;
}

/* ---- the copy (IO worker) ---- */

static void *
aligned_buf(size_t n)
{
	void *p;

	return posix_memalign(&p, 4096, n) ? NULL : p;
}

/* Copy one segment, a chunk at a time.  Overlapping ranges of one LUN
 * are copied from the end when the destination lies after the source, so
 * that no chunk reads blocks an earlier chunk wrote. */
static int
copy_segment(struct xcopy_job *x, const struct xcopy_seg *s, uint8_t *buf)
{
	struct lun *src = s->src, *dst = s->dst;
	bool backwards = src == dst && s->dst_off > s->src_off &&
			 s->dst_off < s->src_off + s->len;
	uint32_t flags = __atomic_load_n(&dst->wce, __ATOMIC_RELAXED) ?
			 0 : IGW_FLAG_FUA;
	uint64_t done = 0;
	int r = 0;

	while (done < s->len && r == 0) {
		uint32_t n = (uint32_t)MIN(s->len - done, XCOPY_CHUNK);
		uint64_t at = backwards ? s->len - done - n : done;

		if (__atomic_load_n(&x->cmd->abort, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		/* A reset of the source or destination stops it too. */
		if (__atomic_load_n(&src->reset_gen, __ATOMIC_ACQUIRE) !=
		    s->src_gen ||
		    __atomic_load_n(&dst->reset_gen, __ATOMIC_ACQUIRE) !=
		    s->dst_gen)
			return -ENOLINK;
		pthread_rwlock_rdlock(&src->write_lock);
		r = backend_pread(src->be, buf, n, s->src_off + at);
		pthread_rwlock_unlock(&src->write_lock);
		if (r < 0)
			break;
		pthread_rwlock_rdlock(&dst->write_lock);
		r = backend_pwrite(dst->be, buf, n, s->dst_off + at, flags);
		pthread_rwlock_unlock(&dst->write_lock);
		if (r < 0) {
			x->write_failed = true;
			break;
		}
		done += n;
		__atomic_add_fetch(&x->bytes_done, n, __ATOMIC_RELAXED);
		__atomic_add_fetch(&dst->stat_write_bytes, n,
				   __ATOMIC_RELAXED);
		__atomic_add_fetch(&src->stat_read_bytes, n, __ATOMIC_RELAXED);
	}
	return r;
}

static void
copy_run(struct io_job *job)
{
	struct xcopy_job *x = container_of(job, struct xcopy_job, job);
	uint64_t most = 0;
	uint8_t *buf;

	for (unsigned i = 0; i < x->nsegs; i++)
		most = MAX(most, MIN(x->segs[i].len, XCOPY_CHUNK));
	buf = aligned_buf(most ? most : 4096);
	if (!buf) {
		x->result = -ENOMEM;
		return;
	}
	x->result = 0;
	for (unsigned i = 0; i < x->nsegs && x->result == 0; i++) {
		x->result = copy_segment(x, &x->segs[i], buf);
		if (x->result == 0)
			__atomic_add_fetch(&x->segs_done, 1, __ATOMIC_RELAXED);
	}
	free(buf);
}

/* Start x now or when a running copy ends.  Loop thread. */
static void
copy_start(struct xcopy_job *x)
{
	if (copies_running < copy_limit) {
		copies_running++;
		io_submit(&x->job);
		return;
	}
	x->qnext = NULL;
	if (copy_q_tail)
		copy_q_tail->qnext = x;
	else
		copy_q_head = x;
	copy_q_tail = x;
}

static void
copy_done(struct io_job *job)
{
	struct xcopy_job *x = container_of(job, struct xcopy_job, job);
	struct scsi_cmd *cmd = x->cmd;
	struct xcopy_held *h = x->hold ? xcopy_held_find(cmd->nexus, x->list_id) :
			       NULL;
	struct xcopy_job *next = copy_q_head;

	copies_running--;
	if (next) {
		copy_q_head = next->qnext;
		if (!copy_q_head)
			copy_q_tail = NULL;
		copy_start(next);
	}

	for (unsigned i = 0; i < x->nrefs; i++)
		lun_put(x->refs[i]);
	if (h && h->running == x) {
		h->running = NULL;
		h->status = x->result == 0 ? CM_GOOD : CM_ERRORS;
		h->segs_done = (uint16_t)x->segs_done;
		h->bytes_done = x->bytes_done;
	}
	if (x->result == -ECANCELED) {
		/* Aborted: the transport sends no status for it. */
		scsi_set_sense(cmd, SK_ABORTED_COMMAND,
			       ASC_NO_ADDITIONAL_SENSE);
	} else if (x->result == -ENOLINK) {
		/* A copy target was reset under it. */
		log_info("EXTENDED COPY: segment %u: a copy target was reset",
			 x->segs_done);
		copy_aborted(cmd, ASC_BUS_DEVICE_RESET_OCCURRED, x->segs_done,
			     -1);
	} else if (x->result < 0) {
		log_error("EXTENDED COPY: segment %u: %s: %s", x->segs_done,
			  x->write_failed ? "write" : "read",
			  strerror(-x->result));
		scsi_set_errno(cmd, x->result, x->write_failed);
		if (cmd->status == SAM_STAT_CHECK_CONDITION) {
			/* SPC-4 §6.4.5: the error of a copy target makes
			 * the EXTENDED COPY end with COPY ABORTED; the
			 * segment number says where. */
			uint16_t asc = get_be16(cmd->sense + 12);
			copy_aborted(cmd, asc, x->segs_done, -1);
		}
	}
	free(x);
	scsi_cmd_complete(cmd);
}

/* ---- EXTENDED COPY(LID1) ---- */

/* One reference per LUN the copy uses, dropped by copy_done. */
static void
job_ref(struct xcopy_job *x, struct lun *l)
{
	for (unsigned i = 0; i < x->nrefs; i++)
		if (x->refs[i] == l)
			return;
	lun_get(l);
	x->refs[x->nrefs++] = l;
}

int
spc_extended_copy(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t plen = get_be32(c + 10);
	const uint8_t *p = cmd->buf;
	struct cscd cscd[XCOPY_MAX_CSCD];
	unsigned ncscd = 0, nsegs = 0, usage;
	uint32_t tlen, slen, ilen, off;
	struct xcopy_job *x;
	struct xcopy_held *h;

	if (c[1] & 0x1f) {	/* LID1 only: SA 01h is LID4 */
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	cmd->xfer_len = plen;
	if (plen == 0)		/* no copy, not an error (SPC-4 §6.4.1) */
		return SCSI_DONE;
	if (plen > cmd->edtl || plen < 16) {
		list_len_error(cmd);
		return SCSI_DONE;
	}
	usage = (p[1] >> 3) & 3;
	if (usage == 1) {	/* reserved */
		scsi_invalid_param(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (usage == LID_NONE && p[0]) {
		scsi_invalid_param(cmd, 0, 7);
		return SCSI_DONE;
	}
	tlen = get_be16(p + 2);
	slen = get_be32(p + 8);
	ilen = get_be32(p + 12);
	if (ilen) {		/* no segment type here takes inline data */
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INLINE_DATA_LENGTH_EXCEEDED);
		return SCSI_DONE;
	}
	/* SPC-4 §6.4.3.5, then the list the Data-Out holds. */
	if ((uint64_t)tlen + slen > XCOPY_MAX_DESC_LIST ||
	    16 + (uint64_t)tlen + slen > plen) {
		list_len_error(cmd);
		return SCSI_DONE;
	}
	/* Count first: too many is reported before what they hold
	 * (SPC-4 §6.4.3.4, §6.4.3.5). */
	if (tlen % CSCD_LEN) {
		list_len_error(cmd);
		return SCSI_DONE;
	}
	if (tlen / CSCD_LEN > XCOPY_MAX_CSCD) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_TOO_MANY_TARGET_DESCRIPTORS);
		return SCSI_DONE;
	}
	for (off = 16 + tlen; off < 16 + tlen + slen; nsegs++) {
		if (off + 4 > 16 + tlen + slen) {
			list_len_error(cmd);
			return SCSI_DONE;
		}
		off += 4 + get_be16(p + off + 2);
	}
	if (off != 16 + tlen + slen) {
		list_len_error(cmd);
		return SCSI_DONE;
	}
	if (nsegs > XCOPY_MAX_SEGS) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
		return SCSI_DONE;
	}
	for (off = 16; off < 16 + tlen; off += CSCD_LEN) {
		if (p[off] != CSCD_IDENT) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE);
			return SCSI_DONE;
		}
		if (!parse_cscd(cmd, p + off, off, &cscd[ncscd++]))
			return SCSI_DONE;
	}
	for (off = 16 + tlen; off < 16 + tlen + slen;
	     off += 4 + get_be16(p + off + 2))
		if (p[off] != SEG_BLOCK_TO_BLOCK) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE);
			return SCSI_DONE;
		}
	h = NULL;
	if (usage == LID_HOLD && cmd->nexus) {
		h = xcopy_held_find(cmd->nexus, p[0]);
		if (h && h->running) {	/* SPC-4 §6.4.3.2 */
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_OPERATION_IN_PROGRESS);
			return SCSI_DONE;
		}
	}
	x = calloc(1, sizeof *x);
	if (!x) {
		scsi_set_errno(cmd, ENOMEM, true);
		return SCSI_DONE;
	}
	off = 16 + tlen;
	for (unsigned i = 0; i < nsegs; i++) {
		if (!parse_b2b(cmd, p + off, off, i, cscd, ncscd, &x->segs[i])) {
			free(x);
			return SCSI_DONE;
		}
		off += 4 + get_be16(p + off + 2);
	}
	x->nsegs = nsegs;
	if (nsegs == 0) {
		free(x);
		return SCSI_DONE;
	}
	if (usage == LID_HOLD && cmd->nexus) {
		/* A completed list of the same identifier is replaced. */
		if (h)
			h->used = false;
		h = held_new(cmd->nexus, p[0]);
		if (!h) {
			free(x);
			scsi_set_errno(cmd, ENOMEM, true);
			return SCSI_DONE;
		}
		h->running = x;
		x->hold = true;
		x->list_id = p[0];
	}
	for (unsigned i = 0; i < nsegs; i++) {
		struct xcopy_seg *sg = &x->segs[i];
		job_ref(x, sg->src);
		job_ref(x, sg->dst);
		sg->src_gen = __atomic_load_n(&sg->src->reset_gen,
					      __ATOMIC_ACQUIRE);
		sg->dst_gen = __atomic_load_n(&sg->dst->reset_gen,
					      __ATOMIC_ACQUIRE);
	}
	x->cmd = cmd;
	x->job.fn = copy_run;
	x->job.done = copy_done;
	x->job.loop = cmd->loop;
	copy_start(x);
	return SCSI_ASYNC;
}
