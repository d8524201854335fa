/* cmd.c: SCSI commands on the wire (RFC 7143 §10.3-§10.8, §11.3-§11.8).
 * Owns tasks: collecting write data (immediate, unsolicited Data-Out up to
 * FirstBurstLength, then R2T-solicited bursts of MaxBurstLength with up to
 * MaxOutstandingR2T in flight), handing the command to the SCSI layer, and
 * sending Data-In (status in the last PDU when the command succeeded) or a
 * SCSI Response with sense and residuals.  Loop thread only.
 *
 * DataPDUInOrder and DataSequenceInOrder are always Yes here, so write data
 * arrives in offset order: "received" is the only cursor needed.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

/* Tasks beyond the CmdSN window (immediate commands) are capped too. */
#define TASKS_PER_CONN_MAX(q) (2 * (q) + 16)

struct task_ext {
	uint32_t need;		/* data-out bytes to collect */
	uint32_t unsol_end;	/* end of the unsolicited burst */
	uint32_t sol_start;	/* where R2T-solicited data starts */
	uint32_t r2ts_sent, r2ts_done;
	bool failed;		/* a Data-Out sequence error */
	bool want_data_in;	/* R bit */
	uint8_t attr;
};

/* The task_ext rides after the task in one allocation. */
static inline struct task_ext *
ext(struct iscsi_task *t)
{
	return (struct task_ext *)(t + 1);
}

struct iscsi_task *
task_find(struct iscsi_conn *c, uint32_t itt)
{
	for (struct iscsi_task *t = c->tasks; t; t = t->next)
		if (t->itt == itt)
			return t;
	return NULL;
}

static void
task_unlink(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (t->prev)
		t->prev->next = t->next;
	else if (c->tasks == t)
		c->tasks = t->next;
	else
		return;	/* not linked */
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	c->ntasks--;
}

void
task_put(struct iscsi_task *t)
{
	if (--t->refs)
		return;
	t->conn->buf_bytes -= t->buf_alloc;
	if (t->cmd.lun)
		lun_put(t->cmd.lun);
	free(t->cmd.buf);
	free(t);
}

static void
task_release_slot(struct iscsi_task *t)
{
	if (t->counted && t->conn->sess) {
		t->counted = false;
		session_slot_release(t->conn->sess);
	}
}

/* Retire a task from the connection: no more PDUs will reference it. */
static void
task_retire(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	task_release_slot(t);
	task_unlink(t);
	task_put(t);		/* the list's reference */
	logout_maybe_finish(c);
}

void
task_abort(struct iscsi_task *t, struct iscsi_tmf *tmf)
{
	t->aborted = true;
	__atomic_store_n(&t->cmd.abort, 1, __ATOMIC_RELEASE);
	if (t->state == TASK_EXEC) {
		/* In the SCSI layer or a worker: its completion drops it. */
		if (tmf && !t->tmf) {
			t->tmf = tmf;
			tmf->pending++;
		}
		task_release_slot(t);
		task_unlink(t);
		return;
	}
	task_retire(t);
}

static void
send_r2ts(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct task_ext *x = ext(t);
	uint32_t mb = c->params.max_burst_length;

	while (t->r2t_next < x->need &&
	       x->r2ts_sent - x->r2ts_done < c->params.max_outstanding_r2t) {
		uint32_t len = MIN(mb, x->need - t->r2t_next);
		struct tx_pdu *p = tx_pdu_new(ISCSI_OP_R2T);

		if (!p)
			return;
		p->bhs[1] = 0x80;
		put_be64(p->bhs + 8, t->cmd.lun_raw);
		put_be32(p->bhs + 16, t->itt);
		put_be32(p->bhs + 20, t->ttt);
		conn_fill_sn(c, p->bhs, false);
		put_be32(p->bhs + 36, t->r2t_sn++);
		put_be32(p->bhs + 40, t->r2t_next);
		put_be32(p->bhs + 44, len);
		conn_queue(c, p);
		t->r2t_next += len;
		x->r2ts_sent++;
	}
}

static void
send_response(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct scsi_cmd *cmd = &t->cmd;
	struct task_ext *x = ext(t);
	uint32_t resid = 0;
	uint8_t resid_flags = 0;
	uint32_t data_len = x->want_data_in ? cmd->data_len : 0;
	uint32_t mb = c->params.max_burst_length;
	uint32_t mdsl = c->params.max_send_dsl;
	bool collapse;

	/* Residuals (§11.4.5): against what the CDB asked to move. */
	if (cmd->xfer_len > cmd->edtl) {
		resid_flags = 0x04;	/* O */
		resid = cmd->xfer_len - cmd->edtl;
	} else if (cmd->xfer_len < cmd->edtl) {
		resid_flags = 0x02;	/* U */
		resid = cmd->edtl - cmd->xfer_len;
	}
	task_release_slot(t);	/* so the window in the response is fresh */
	collapse = cmd->status == SAM_STAT_GOOD && data_len > 0;

	for (uint32_t off = 0; off < data_len;) {
		uint32_t len = MIN(mdsl, data_len - off);
		struct tx_pdu *p;
		bool last;

		/* A Data-In sequence ends at each MaxBurstLength (§13.14). */
		if (off / mb != (off + len - 1) / mb)
			len = (off / mb + 1) * mb - off;
		last = off + len == data_len;
		p = tx_pdu_new(ISCSI_OP_DATA_IN);
		if (!p)
			break;
		p->task = t;
		if (last || (off + len) % mb == 0)
			p->bhs[1] |= 0x80;	/* F */
		put_be64(p->bhs + 8, cmd->lun_raw);
		put_be32(p->bhs + 16, t->itt);
		put_be32(p->bhs + 20, ISCSI_RSVD_TAG);
		if (last && collapse) {
			p->bhs[1] |= 0x01 | resid_flags;	/* S */
			p->bhs[3] = cmd->status;
			conn_fill_sn(c, p->bhs, true);
			put_be32(p->bhs + 44, resid);
		} else {
			conn_fill_sn(c, p->bhs, false);
			put_be32(p->bhs + 24, 0);
		}
		put_be32(p->bhs + 36, t->data_sn++);
		put_be32(p->bhs + 40, off);
		if (cmd->data_in_file) {
			p->from_file = true;
			p->file_off = off;
			p->data_len = len;
			bhs_set_dsl(p->bhs, len);
		} else {
			tx_pdu_set_data(p, cmd->buf + off, len, false);
		}
		conn_queue(c, p);
		off += len;
	}
	if (!collapse) {
		struct tx_pdu *p = tx_pdu_new(ISCSI_OP_SCSI_RSP);
		uint8_t sd[2 + SCSI_SENSE_MAX];

		if (!p)
			return;
		p->bhs[1] = 0x80 | resid_flags;
		p->bhs[2] = 0x00;	/* command completed at target */
		p->bhs[3] = cmd->status;
		put_be32(p->bhs + 16, t->itt);
		conn_fill_sn(c, p->bhs, true);
		put_be32(p->bhs + 36, t->data_sn);	/* ExpDataSN */
		put_be32(p->bhs + 44, resid);
		if (cmd->sense_len) {
			put_be16(sd, cmd->sense_len);
			memcpy(sd + 2, cmd->sense, cmd->sense_len);
			tx_pdu_set_data(p, sd, 2 + cmd->sense_len, true);
		}
		conn_queue(c, p);
	}
}

static void task_done(struct scsi_cmd *cmd);

void
task_hold_release(struct iscsi_task *t)
{
	if (--t->holds == 0 && t->done_deferred) {
		t->done_deferred = false;
		task_done(&t->cmd);
	}
}

/* SCSI layer callback: loop thread. */
static void
task_done(struct scsi_cmd *cmd)
{
	struct iscsi_task *t = container_of(cmd, struct iscsi_task, cmd);
	struct iscsi_conn *c = t->conn;
	bool was_exec = t->state == TASK_EXEC;

	if (t->holds) {
		t->done_deferred = true;
		return;
	}
	if (t->aborted) {
		/* §11.5.1: an aborted task gets no response. */
		if (t->tmf)
			tmf_task_finished(t->tmf);
		t->tmf = NULL;
		task_put(t);	/* the list's reference, dropped at abort */
		if (was_exec)
			conn_put(c);
		return;
	}
	t->state = TASK_DONE;
	if (c->sess) {
		c->sess->stat_commands++;
		c->sess->stat_read_bytes += cmd->data_len;
		c->sess->stat_write_bytes += t->received;
	}
	if (c->state == CONN_FFP || c->state == CONN_LOGOUT)
		send_response(t);
	task_retire(t);
	if (was_exec) {
		conn_put(c);
		/* Within the connection's event (commands answered at once)
		 * conn_event flushes at its end; completions from workers
		 * are flushed after their batch, together. */
		if (!c->in_event)
			conn_flush_later(c);
	}
}

static void
task_exec(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	t->state = TASK_EXEC;
	conn_get(c);
	scsi_cmd_exec(&t->cmd);
}

/* Fail a command before it reaches the SCSI layer. */
static void
task_fail(struct iscsi_task *t, uint8_t key, uint16_t asc)
{
	t->state = TASK_EXEC;
	scsi_set_sense(&t->cmd, key, asc);
	conn_get(t->conn);
	t->cmd.done(&t->cmd);
}

static void
data_complete_check(struct iscsi_task *t)
{
	struct task_ext *x = ext(t);

	if (t->received < x->need)
		return;
	if (x->failed) {
		task_fail(t, SK_ABORTED_COMMAND, ASC_DATA_PHASE_ERROR);
		return;
	}
	task_exec(t);
}

void
cmd_scsi(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data, uint32_t dsl)
{
	struct iscsi_session *s = c->sess;
	const struct conf_iscsi *ci = &iscsi_g.conf->iscsi;
	uint8_t flags = bhs[1];
	uint32_t itt = get_be32(bhs + 16);
	uint32_t edtl = get_be32(bhs + 20);
	bool counted = !bhs_immediate(bhs);
	struct iscsi_task *t;
	struct task_ext *x;
	int lun;

	if (task_find(c, itt)) {
		conn_send_reject(c, REJECT_TASK_IN_PROGRESS, bhs);
		if (counted)
			session_slot_release(s);
		free(data);
		return;
	}
	t = calloc(1, sizeof *t + sizeof(struct task_ext));
	if (!t) {
		conn_send_reject(c, REJECT_OUT_OF_RESOURCES, bhs);
		if (counted)
			session_slot_release(s);
		free(data);
		return;
	}
	x = ext(t);
	t->conn = c;
	t->refs = 1;
	t->itt = itt;
	t->cmdsn = get_be32(bhs + 24);
	t->counted = counted;
	t->ttt = c->next_ttt++;
	if (t->ttt == ISCSI_RSVD_TAG)
		t->ttt = c->next_ttt++;
	t->state = TASK_DATA_OUT;
	x->want_data_in = flags & 0x40;
	x->attr = flags & 0x07;
	/* Link first, so every exit below goes through task_retire. */
	t->next = c->tasks;
	if (t->next)
		t->next->prev = t;
	c->tasks = t;
	c->ntasks++;

	struct scsi_cmd *cmd = &t->cmd;
	memcpy(cmd->cdb, bhs + 32, 16);
	cmd->cdb_len = 16;
	cmd->lun_raw = get_be64(bhs + 8);
	lun = scsi_decode_lun(cmd->lun_raw);
	cmd->lun_id = lun < 0 ? 0xffff : (unsigned)lun;
	cmd->lun = lun < 0 ? NULL : session_lun(s, (unsigned)lun);
	/* Until the task is freed: a reload retires a LUN it drops, and
	 * frees it only when no task holds it (reload.c). */
	if (cmd->lun)
		lun_get(cmd->lun);
	cmd->nexus = s->nexus;
	cmd->loop = c->loop;
	cmd->dir = (flags & 0x40 ? SCSI_DIR_READ : 0) |
		   (flags & 0x20 ? SCSI_DIR_WRITE : 0);
	cmd->edtl = edtl;
	cmd->done = task_done;
	/* Data-In from the page cache needs no copy unless a digest must
	 * be computed over it.  Not to an initiator on this host through
	 * a loopback address: the receiver's copy out of the page cache's
	 * cold pages costs it more than our copy, which leaves the data in
	 * the processor's cache for it (256 KB reads: 2,100 MiB/s copied,
	 * 1,550 with sendfile, bench/RESULTS.md). */
	cmd->data_file_ok = !c->params.data_digest && !c->peer_loopback;

	if (c->ntasks > TASKS_PER_CONN_MAX(ci->queue_depth)) {
		free(data);
		t->state = TASK_EXEC;
		conn_get(c);
		cmd->status = SAM_STAT_TASK_SET_FULL;
		task_done(cmd);
		return;
	}
	if (edtl > SCSI_MAX_XFER + (1u << 20)) {
		/* Larger than the Block Limits VPD allows: no buffer. */
		free(data);
		cmd->edtl = 0;
		task_fail(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	if (edtl && c->buf_bytes + edtl >
		    (uint64_t)ci->max_buffer_mb << 20) {
		/* Bounded memory per connection: the initiator retries. */
		free(data);
		t->state = TASK_EXEC;
		conn_get(c);
		cmd->status = SAM_STAT_TASK_SET_FULL;
		task_done(cmd);
		return;
	}
	if (edtl) {
		/* Page-aligned, so O_DIRECT backends can use it as it is. */
		if (posix_memalign((void **)&cmd->buf, 4096,
				   (edtl + 4095) & ~4095u) != 0)
			cmd->buf = NULL;
		if (!cmd->buf) {
			free(data);
			task_fail(t, SK_ABORTED_COMMAND, ASC_INTERNAL_TARGET_FAILURE);
			return;
		}
		t->buf_alloc = edtl;
		c->buf_bytes += edtl;
	}
	if (!(flags & 0x20)) {
		/* No write data expected: immediate data is not allowed. */
		free(data);
		if (dsl) {
			task_fail(t, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
			return;
		}
		task_exec(t);
		return;
	}
	/* Write: how much the CDB wants, at most EDTL. */
	x->need = scsi_cmd_out_len(cmd);
	if (dsl && !data) {
		/* The data segment failed its digest (conn.c). */
		task_fail(t, SK_ABORTED_COMMAND, ASC_PROTOCOL_SERVICE_CRC_ERROR);
		return;
	}
	if (dsl > edtl || (dsl && !c->params.immediate_data) ||
	    dsl > c->params.first_burst_length) {
		/* §10.4: immediate data beyond EDTL/FirstBurstLength. */
		free(data);
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		task_retire(t);
		return;
	}
	if (dsl)
		memcpy(cmd->buf, data, dsl);
	free(data);
	t->received = dsl;
	x->unsol_end = MIN(c->params.first_burst_length, edtl);
	/* F clear: unsolicited Data-Out follows (§11.3.1, InitialR2T=No). */
	t->unsol_open = !(flags & 0x80) && !c->params.initial_r2t &&
			t->received < x->unsol_end;
	if (t->received >= x->need && !t->unsol_open) {
		task_exec(t);
		return;
	}
	if (t->received >= x->need) {
		/* The rest of the unsolicited data is not needed; the
		 * command runs now and late Data-Out PDUs are dropped. */
		task_exec(t);
		return;
	}
	if (!t->unsol_open) {
		x->sol_start = t->received;
		t->r2t_next = t->received;
		send_r2ts(t);
	}
}

/* A Data-Out header arrived (payload not read yet): find its task and,
 * when it fits, let the payload land straight in the task's buffer. */
void
cmd_data_out_header(struct iscsi_conn *c)
{
	const uint8_t *bhs = c->rx_bhs;
	uint32_t itt = get_be32(bhs + 16), ttt = get_be32(bhs + 20);
	uint32_t datasn = get_be32(bhs + 36), off = get_be32(bhs + 40);
	uint32_t dsl = bhs_dsl(bhs);
	struct iscsi_task *t = task_find(c, itt);
	struct task_ext *x;
	uint32_t end;

	if (!t || t->state != TASK_DATA_OUT) {
		/* Data for a finished or failed command: dropped. */
		c->rx_discard = true;
		return;
	}
	x = ext(t);
	if (ttt == ISCSI_RSVD_TAG) {
		end = x->unsol_end;
		if (!t->unsol_open || datasn != t->unsol_datasn)
			goto bad;
	} else {
		if (ttt != t->ttt || x->r2ts_sent == x->r2ts_done)
			goto bad;
		end = MIN(x->sol_start + (uint64_t)(x->r2ts_done + 1) *
			  c->params.max_burst_length, x->need);
		if (datasn != t->seq_datasn)
			goto bad;
	}
	if (off != t->received || (uint64_t)off + dsl > end ||
	    (uint64_t)off + dsl > t->cmd.edtl)
		goto bad;
	c->rx_task = t;
	c->rx_data = t->cmd.buf + off;
	return;
bad:
	log_warn("Data-Out for ITT 0x%08x out of sequence (TTT 0x%08x DataSN %u offset %u length %u)",
		 itt, ttt, datasn, off, dsl);
	x->failed = true;
	c->rx_discard = true;
	c->rx_task = t;
}

void
cmd_data_out_done(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->rx_task;
	const uint8_t *bhs = c->rx_bhs;
	bool final = bhs[1] & 0x80;
	struct task_ext *x;
	uint32_t end;

	if (!t)
		return;
	x = ext(t);
	if (x->failed) {
		/* Answer now: at ErrorRecoveryLevel 0 nothing can recover
		 * the sequence, and later Data-Out PDUs are dropped. */
		task_fail(t, SK_ABORTED_COMMAND, ASC_DATA_PHASE_ERROR);
		return;
	}
	t->received += c->rx_dsl;
	if (get_be32(bhs + 20) == ISCSI_RSVD_TAG) {
		t->unsol_datasn++;
		if (final || t->received >= x->unsol_end) {
			t->unsol_open = false;
			x->sol_start = t->received;
			t->r2t_next = t->received;
		}
	} else {
		t->seq_datasn++;
		end = MIN(x->sol_start + (uint64_t)(x->r2ts_done + 1) *
			  c->params.max_burst_length, x->need);
		if (final || t->received >= end) {
			x->r2ts_done++;
			t->seq_datasn = 0;
		}
	}
	if (t->received >= x->need && !t->unsol_open) {
		data_complete_check(t);
		return;
	}
	if (!t->unsol_open)
		send_r2ts(t);
}

/* A Data-Out whose data digest failed: the data in the buffer is not to
 * be trusted, and ErrorRecoveryLevel 0 has no retransmission: the command
 * fails now (ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR). */
void
cmd_data_out_digest_error(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->rx_task;

	if (!t || t->state != TASK_DATA_OUT)
		return;
	task_fail(t, SK_ABORTED_COMMAND, ASC_PROTOCOL_SERVICE_CRC_ERROR);
}
