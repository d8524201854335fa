/* tmf.c: task management (RFC 7143 §11.5, SAM-5 §7).  ABORT TASK, ABORT
 * TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET WARM RESET and
 * TARGET COLD RESET.
 * The response to a TMF goes out only when every task it aborted has left
 * the IO workers, so no aborted write can land after the initiator was told
 * it is gone.  Loop thread only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iscsi.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

#define TMF_ABORT_TASK 1
#define TMF_ABORT_TASK_SET 2
#define TMF_CLEAR_ACA 3
#define TMF_CLEAR_TASK_SET 4
#define TMF_LUN_RESET 5
#define TMF_TARGET_WARM_RESET 6
#define TMF_TARGET_COLD_RESET 7
#define TMF_TASK_REASSIGN 8

#define TMF_RSP_COMPLETE 0
#define TMF_RSP_NO_TASK 1
#define TMF_RSP_NO_LUN 2
#define TMF_RSP_REASSIGN_UNSUPPORTED 4
#define TMF_RSP_NOT_SUPPORTED 5
#define TMF_RSP_REJECTED 255

static void
tmf_send(struct iscsi_tmf *tmf)
{
	struct iscsi_conn *c = tmf->conn;
	struct tx_pdu *p;

	if (tmf->hold) {
		task_hold_release(tmf->hold);
		task_put(tmf->hold);
		conn_put(c);
		free(tmf);
		return;
	}
	if (c->state == CONN_FFP && (p = tx_pdu_new(ISCSI_OP_TMF_RSP))) {
		p->bhs[1] = 0x80;
		p->bhs[2] = tmf->response;
		put_be32(p->bhs + 16, tmf->itt);
		conn_fill_sn(c, p->bhs, true);
		conn_queue(c, p);
		conn_flush(c);
	}
	if (tmf->cold && c->sess) {
		struct target *t = c->sess->target;

		for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next)
			if (o != c && o->state != CONN_CLOSED && o->sess &&
			    o->sess->target == t)
				conn_close(o, "TARGET COLD RESET");
		if (c->state == CONN_FFP) {
			/* Closed once the response is sent. */
			c->state = CONN_LOGOUT;
			conn_flush(c);
		}
	}
	conn_put(c);
	free(tmf);
}

void
tmf_task_finished(struct iscsi_tmf *tmf)
{
	if (--tmf->pending == 0)
		tmf_send(tmf);
}

/* Abort the tasks of connection c that match lun (NULL: all); returns
 * how many. */
static unsigned
abort_matching(struct iscsi_conn *c, struct lun *lun, struct iscsi_tmf *tmf,
	       uint32_t except_itt)
{
	struct iscsi_task *t = c->tasks, *next;
	unsigned n = 0;

	for (; t; t = next) {
		next = t->next;
		if (t->itt == except_itt && c == tmf->conn)
			continue;
		if (lun && t->cmd.lun != lun)
			continue;
		task_abort(t, tmf);
		n++;
	}
	return n;
}

/* Commands of connection o's I_T nexus on l were aborted by another
 * nexus (CLEAR TASK SET, PREEMPT AND ABORT): as the control mode page's
 * TAS is 0 they end without status, and the nexus learns of it from a
 * unit attention, COMMANDS CLEARED BY ANOTHER INITIATOR (SAM-5 §5.6). */
static void
cleared_by_another(struct iscsi_conn *o, struct lun *l)
{
	if (o->sess && o->sess->nexus)
		scsi_ua_establish_nexus(o->sess->nexus, l,
					UA_COMMANDS_CLEARED);
}

/* scsi_abort_hook: PERSISTENT RESERVE OUT PREEMPT AND ABORT aborts the
 * preempted nexuses' commands on one LUN (SPC-4 §5.13.11.2.6), and its
 * own status waits until they have left the SCSI layer, as a TMF's
 * response does: once the preempting initiator is told GOOD, no write of
 * the preempted one can still land (a cluster's failover writes next). */
void
tmf_pr_abort(struct target *t, struct lun *l, const char *initiator,
	     const uint8_t *isid, const struct scsi_cmd *except)
{
	struct iscsi_task *pt = except ?
		container_of((struct scsi_cmd *)except, struct iscsi_task, cmd) :
		NULL;
	struct iscsi_tmf *w = pt ? calloc(1, sizeof *w) : NULL;

	if (w) {
		w->conn = pt->conn;
		conn_get(pt->conn);
		w->hold = pt;
		pt->refs++;
		pt->holds++;
		w->pending = 1;
	} else if (pt) {
		log_error("PREEMPT AND ABORT: out of memory; its status will "
			  "not wait for the aborted commands");
	}
	for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next) {
		struct iscsi_session *s = o->sess;
		struct iscsi_task *k, *next;
		unsigned n = 0;

		if (o->state == CONN_CLOSED || !s || s->target != t ||
		    strcasecmp(s->initiator, initiator) ||
		    (isid && memcmp(s->isid, isid, 6)))
			continue;
		for (k = o->tasks; k; k = next) {
			next = k->next;
			if (k->cmd.lun == l && &k->cmd != except) {
				log_info("PREEMPT AND ABORT: ITT 0x%08x aborted",
					 k->itt);
				task_abort(k, w);
				n++;
			}
		}
		if (n && (!except || s->nexus != except->nexus))
			cleared_by_another(o, l);
	}
	if (w)
		tmf_task_finished(w);
}

void
tmf_handle(struct iscsi_conn *c, uint8_t *bhs)
{
	unsigned fn = bhs[1] & 0x7f;
	uint32_t itt = get_be32(bhs + 16);
	uint32_t ref_itt = get_be32(bhs + 20);
	struct iscsi_session *s = c->sess;
	int lun_id = scsi_decode_lun(get_be64(bhs + 8));
	struct lun *lun = lun_id < 0 ? NULL :
			  session_lun(s, (unsigned)lun_id);
	struct iscsi_tmf *tmf = calloc(1, sizeof *tmf);
	struct iscsi_task *t;

	if (!tmf) {
		conn_send_reject(c, REJECT_OUT_OF_RESOURCES, bhs);
		return;
	}
	tmf->conn = c;
	tmf->itt = itt;
	tmf->pending = 1;	/* released at the end of this function */
	conn_get(c);
	conn_log_prefix(c);

	switch (fn) {
	case TMF_ABORT_TASK:
		t = task_find(c, ref_itt);
		if (t && t->state != TASK_DONE) {
			log_info("ABORT TASK ITT 0x%08x", ref_itt);
			task_abort(t, tmf);
			tmf->response = TMF_RSP_COMPLETE;
		} else {
			/* §11.5.1: not found and not pending: "task does
			 * not exist" (it completed already). */
			tmf->response = TMF_RSP_NO_TASK;
		}
		break;
	case TMF_ABORT_TASK_SET:
		if (!lun) {
			tmf->response = TMF_RSP_NO_LUN;
			break;
		}
		log_info("ABORT TASK SET on LUN %d", lun_id);
		abort_matching(c, lun, tmf, itt);
		tmf->response = TMF_RSP_COMPLETE;
		break;
	case TMF_CLEAR_TASK_SET:
		if (!lun) {
			tmf->response = TMF_RSP_NO_LUN;
			break;
		}
		/* SAM-5 §7.4: every command of the task set, and with TST 0
		 * (control mode page) there is one task set for every I_T
		 * nexus: the other nexuses' commands on the LUN go too. */
		log_info("CLEAR TASK SET on LUN %d", lun_id);
		for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next)
			if (o->state == CONN_FFP && o->sess &&
			    o->sess->target == s->target &&
			    abort_matching(o, lun, tmf, itt) &&
			    o->sess != s)
				cleared_by_another(o, lun);
		tmf->response = TMF_RSP_COMPLETE;
		break;
	case TMF_LUN_RESET:
		if (!lun) {
			tmf->response = TMF_RSP_NO_LUN;
			break;
		}
		log_info("LOGICAL UNIT RESET on LUN %d", lun_id);
		/* SAM-5 §7.7: every task of every nexus on the LUN. */
		for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next)
			if (o->state == CONN_FFP && o->sess &&
			    o->sess->target == s->target)
				abort_matching(o, lun, tmf, itt);
		/* SAM-5 §6.3.3: a unit attention on every nexus, the one
		 * that asked included (libiscsi's MultipathIO.Reset checks
		 * each path). */
		scsi_ua_establish_all(s->target, lun, UA_RESET);
		tmf->response = TMF_RSP_COMPLETE;
		break;
	case TMF_TARGET_WARM_RESET:
	case TMF_TARGET_COLD_RESET:
		log_info("TARGET %s RESET of %s",
			 fn == TMF_TARGET_COLD_RESET ? "COLD" : "WARM",
			 s->target->name);
		for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next)
			if (o->state == CONN_FFP && o->sess &&
			    o->sess->target == s->target)
				abort_matching(o, NULL, tmf, itt);
		scsi_ua_establish_all(s->target, NULL, UA_RESET);
		/* §11.5.1: after a cold reset's response the target closes
		 * every connection to the target (tmf_send). */
		tmf->cold = fn == TMF_TARGET_COLD_RESET;
		tmf->response = TMF_RSP_COMPLETE;
		break;
	case TMF_TASK_REASSIGN:
		tmf->response = TMF_RSP_REASSIGN_UNSUPPORTED;
		break;
	case TMF_CLEAR_ACA:
	default:
		tmf->response = TMF_RSP_NOT_SUPPORTED;
		break;
	}
	tmf_task_finished(tmf);
}
