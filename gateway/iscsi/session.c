/* session.c: sessions, the session table (reinstatement by initiator name,
 * ISID and target) and the CmdSN window of RFC 7143 §4.2.2.
 *
 * Non-immediate commands are delivered in CmdSN order: one that arrives
 * early waits in a small sorted queue; one outside [ExpCmdSN, MaxCmdSN] is
 * silently dropped, as §4.2.2.1 requires.  The window is
 *   MaxCmdSN = ExpCmdSN + queue_depth - 1 - (commands still running)
 * and never shrinks (Linux ignores a MaxCmdSN that goes down).  Loop thread.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "images.h"
#include "metrics.h"
#include "log.h"
#include "util/util.h"

struct iscsi_pdu_q {
	struct iscsi_pdu_q *next;
	uint32_t cmdsn;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *data;
	uint32_t dsl;
};

struct iscsi_session *
session_new(struct iscsi_conn *c)
{
	struct iscsi_session *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->conn = c;
	s->next = iscsi_g.sessions;
	iscsi_g.sessions = s;
	return s;
}

void
session_free(struct iscsi_session *s)
{
	struct iscsi_pdu_q *q, *next;

	if (!s->discovery && s->initiator[0])
		metrics_initiator_retire(s->initiator, s->stat_commands,
					 s->stat_read_bytes,
					 s->stat_write_bytes);
	for (struct iscsi_session **pp = &iscsi_g.sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	for (q = s->pending; q; q = next) {
		next = q->next;
		free(q->data);
		free(q);
	}
	scsi_nexus_free(s->nexus);
	if (s->pi) {
		/* Closing an image can take a while (flush, qemu-nbd, LVM):
		 * on an IO worker. */
		for (size_t i = 0; i < s->npi; i++)
			if (s->pi[i])
				images_release_async(s->pi[i], s->conn->loop);
		free(s->pi);
	}
	free(s);
}

struct lun *
session_lun(struct iscsi_session *s, unsigned id)
{
	struct lun *l = target_find_lun(s->target, id);

	if (!l || !l->pi)
		return l;
	if (l->slot < s->npi && s->pi[l->slot])
		return s->pi[l->slot];
	/* A reload changed the template: the image this session opened
	 * of the old one serves it until logout.  A template added after
	 * the login has no image here (NULL: LUN not supported). */
	for (size_t i = 0; i < s->npi; i++)
		if (s->pi[i] && s->pi[i]->id == id)
			return s->pi[i];
	return NULL;
}

void
session_close_target(struct target *t, const char *why)
{
	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next)
		if (c->state != CONN_CLOSED &&
		    ((c->sess && c->sess->target == t) || login_target(c) == t))
			conn_close(c, why);
}

void
session_recheck_acl(struct target *t)
{
	for (struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
		if (!s->discovery && s->target == t &&
		    s->conn->state != CONN_CLOSED &&
		    !conn_allowed(s->conn, t, s->initiator))
			conn_close(s->conn, "the initiator is no longer in the target's acl or networks");
}

bool
session_target_in_use(const struct target *t)
{
	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next)
		if ((c->sess && c->sess->target == t) || login_target(c) == t)
			return true;
	return false;
}

struct iscsi_session *
session_find(const char *initiator, const uint8_t isid[6], struct target *t,
	     bool discovery)
{
	for (struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
		if (s->discovery == discovery && s->target == t &&
		    !memcmp(s->isid, isid, 6) &&
		    !strcasecmp(s->initiator, initiator) &&
		    s->conn->state != CONN_CLOSED)
			return s;
	return NULL;
}

uint16_t
session_alloc_tsih(void)
{
	for (;;) {
		uint16_t t = ++iscsi_g.next_tsih;
		bool used = false;

		if (t == 0)
			continue;
		for (struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
			if (s->tsih == t)
				used = true;
		if (!used)
			return t;
	}
}

void
session_update_window(struct iscsi_session *s)
{
	uint32_t depth = iscsi_g.conf->iscsi.queue_depth;
	uint32_t want;

	if (s->active >= depth)
		want = s->exp_cmd_sn - 1;
	else
		want = s->exp_cmd_sn + depth - 1 - s->active;
	if (sn_lt(s->max_cmd_sn, want))
		s->max_cmd_sn = want;
}

void
session_slot_release(struct iscsi_session *s)
{
	if (s->active)
		s->active--;
	session_update_window(s);
}

static void
deliver(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data, uint32_t dsl)
{
	uint8_t op = bhs_opcode(bhs);
	struct iscsi_session *s = c->sess;

	if (s->discovery && op != ISCSI_OP_TEXT_REQ &&
	    op != ISCSI_OP_LOGOUT_REQ && op != ISCSI_OP_NOP_OUT) {
		/* §4.3: a discovery session carries Text and Logout only. */
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		free(data);
		return;
	}
	if (c->logout_pending && op != ISCSI_OP_LOGOUT_REQ) {
		conn_send_reject(c, REJECT_WAITING_FOR_LOGOUT, bhs);
		free(data);
		return;
	}
	switch (op) {
	case ISCSI_OP_SCSI_CMD:
		cmd_scsi(c, bhs, data, dsl);	/* takes data */
		return;
	case ISCSI_OP_NOP_OUT:
		nop_out_handle(c, bhs, data, dsl);
		break;
	case ISCSI_OP_TMF_REQ:
		tmf_handle(c, bhs);
		break;
	case ISCSI_OP_TEXT_REQ:
		text_handle(c, bhs, data, dsl);
		break;
	case ISCSI_OP_LOGOUT_REQ:
		logout_handle(c, bhs);
		break;
	}
	free(data);
}

void
session_cmd_pdu(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
		uint32_t dsl)
{
	struct iscsi_session *s = c->sess;
	uint32_t cmdsn = get_be32(bhs + 24);

	c->exp_stat_sn = get_be32(bhs + 28);
	if (bhs_immediate(bhs)) {
		/* §4.2.2.1: immediate commands are not ordered by CmdSN. */
		deliver(c, bhs, data, dsl);
		return;
	}
	if (cmdsn == s->exp_cmd_sn) {
		s->exp_cmd_sn++;
		if (bhs_opcode(bhs) == ISCSI_OP_SCSI_CMD)
			s->active++;	/* cmd_scsi releases it when done */
		session_update_window(s);
		deliver(c, bhs, data, dsl);
		/* Commands that waited for this one. */
		while (s->pending && s->pending->cmdsn == s->exp_cmd_sn &&
		       c->state == CONN_FFP) {
			struct iscsi_pdu_q *q = s->pending;
			s->pending = q->next;
			s->npending--;
			s->exp_cmd_sn++;
			if (bhs_opcode(q->bhs) == ISCSI_OP_SCSI_CMD)
				s->active++;
			session_update_window(s);
			deliver(c, q->bhs, q->data, q->dsl);
			free(q);
		}
		return;
	}
	if (sn_lt(s->exp_cmd_sn, cmdsn) && sn_le(cmdsn, s->max_cmd_sn)) {
		struct iscsi_pdu_q *q = calloc(1, sizeof *q), **pp;

		if (!q) {
			free(data);
			return;
		}
		for (pp = &s->pending; *pp; pp = &(*pp)->next) {
			if ((*pp)->cmdsn == cmdsn) {	/* duplicate: drop */
				free(q);
				free(data);
				return;
			}
			if (sn_lt(cmdsn, (*pp)->cmdsn))
				break;
		}
		q->cmdsn = cmdsn;
		memcpy(q->bhs, bhs, ISCSI_BHS_LEN);
		q->data = data;
		q->dsl = dsl;
		q->next = *pp;
		*pp = q;
		s->npending++;
		log_debug(LOG_AREA_ISCSI_PDU, "CmdSN %u queued (expecting %u)",
			  cmdsn, s->exp_cmd_sn);
		return;
	}
	/* Outside the window: silently ignored (§4.2.2.1). */
	log_debug(LOG_AREA_ISCSI_PDU,
		  "CmdSN %u outside window [%u, %u]: ignored", cmdsn,
		  s->exp_cmd_sn, s->max_cmd_sn);
	free(data);
}
