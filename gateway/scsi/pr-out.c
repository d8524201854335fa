/* pr-out.c: PERSISTENT RESERVE OUT (SPC-4 §5.13.7 to §5.13.11, §6.16).
 * Loop thread.  A command runs in three steps:
 *
 *   1. no lock: CDB and parameter list checks (ILLEGAL REQUEST);
 *   2. pr_lock: keys checked (RESERVATION CONFLICT), TransportIDs parsed,
 *      the state changed as one indivisible action (§5.13.1), unit
 *      attentions established and, with APTPL, the state file text built;
 *   3. unlocked: PREEMPT AND ABORT aborts the preempted nexuses' commands
 *      through scsi_abort_hook; with APTPL the state goes to pr-file.c's
 *      writer and the status goes out once it is on disk.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scsi.h"
#include "pr.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

/* Service actions (SPC-4 table 213). */
#define PROUT_REGISTER 0x00
#define PROUT_RESERVE 0x01
#define PROUT_RELEASE 0x02
#define PROUT_CLEAR 0x03
#define PROUT_PREEMPT 0x04
#define PROUT_PREEMPT_AND_ABORT 0x05
#define PROUT_REGISTER_IGNORE 0x06
#define PROUT_REGISTER_AND_MOVE 0x07

/* Larger parameter lists get PARAMETER LIST LENGTH ERROR (§6.16.1). */
#define PROUT_PLEN_MAX (28 + PR_MAX_REGS * 260u)

enum { PO_GOOD, PO_CONFLICT, PO_SENSE };

struct prout {
	struct scsi_cmd *cmd;
	struct lun *l;
	struct pr_state *pr;
	const struct scsi_nexus *n;
	unsigned sa, type;
	uint64_t rk, sark;
	bool spec_i_pt, all_tg_pt, aptpl, unreg;
	uint16_t rtpi;
	const uint8_t *tid_data;	/* the TransportIDs in the list */
	uint32_t tid_base, tid_len;	/* their offset and length */
	struct pr_reg *tids;	/* parsed: SPEC_I_PT's list, or the REGISTER
				 * AND MOVE destination */
	uint32_t *tid_off;	/* offset of each in the parameter list */
	size_t ntids;
	struct pr_reg *victims;	/* PREEMPT AND ABORT: removed registrations */
	size_t nvictims;
	bool changed;		/* the state changed: save it with APTPL */
};

/* A registration goes: a victim for PREEMPT AND ABORT, REGISTRATIONS
 * PREEMPTED for its nexuses (not the sender's: §5.13.11.2.5). */
static void
preempt_reg(struct prout *po, size_t i)
{
	struct pr_state *pr = po->pr;
	const struct pr_reg *r = &pr->regs[i];

	pr_ua_reg(po->l, r, po->n, UA_REGISTRATIONS_PREEMPTED);
	if (po->sa == PROUT_PREEMPT_AND_ABORT && po->victims)
		po->victims[po->nvictims++] = *r;
	pr_reg_remove(pr, i);
}

/* Parse the TransportIDs of the list (SPEC_I_PT's, or REGISTER AND MOVE's
 * one).  Returns false with the sense set. */
static bool
prout_tids(struct prout *po)
{
	uint32_t o, max = po->tid_len / 24 + 1;

	po->tids = calloc(max, sizeof *po->tids);
	po->tid_off = calloc(max, sizeof *po->tid_off);
	if (!po->tids || !po->tid_off) {
		scsi_set_errno(po->cmd, ENOMEM, false);
		return false;
	}
	for (o = 0; o < po->tid_len && po->ntids < max;) {
		uint32_t bad, n = pr_tid_parse(po->tid_data + o,
					       po->tid_len - o,
					       &po->tids[po->ntids], &bad);
		if (!n) {
			scsi_invalid_param(po->cmd, po->tid_base + o + bad, -1);
			return false;
		}
		po->tid_off[po->ntids++] = o;
		o += n;
		if (po->sa == PROUT_REGISTER_AND_MOVE)
			break;
	}
	if (po->sa == PROUT_REGISTER_AND_MOVE && po->ntids != 1) {
		scsi_invalid_param(po->cmd, 20, -1);
		return false;
	}
	return true;
}

/* REGISTER and REGISTER AND IGNORE EXISTING KEY (§5.13.7, tables 67, 68). */
static int
po_register(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n);
	bool ignore = po->sa == PROUT_REGISTER_IGNORE;

	if (!me) {
		struct pr_reg self = { 0 };

		if (!ignore && po->rk)
			return PO_CONFLICT;
		if (!po->sark)
			return PO_GOOD;		/* nothing to do */
		if (po->spec_i_pt && !prout_tids(po))
			return PO_SENSE;
		for (size_t i = 0; i < po->ntids; i++)
			if (pr_id_registered(pr, &po->tids[i])) {
				/* Table 67 note b. */
				scsi_invalid_param(po->cmd,
						   po->tid_base + po->tid_off[i],
						   -1);
				return PO_SENSE;
			}
		if (!pr_reg_reserve(pr, 1 + po->ntids)) {
			scsi_set_sense(po->cmd, SK_ILLEGAL_REQUEST,
				       ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
			return PO_SENSE;
		}
		snprintf(self.initiator, sizeof self.initiator, "%s",
			 po->n->initiator);
		memcpy(self.isid, po->n->isid, 6);
		pr_reg_add(pr, &self, po->sark, po->all_tg_pt);
		for (size_t i = 0; i < po->ntids; i++)
			if (!pr_reg_find(pr, &po->tids[i]))
				pr_reg_add(pr, &po->tids[i], po->sark,
					   po->all_tg_pt);
	} else {
		if (!ignore && po->rk != me->key)
			return PO_CONFLICT;
		if (po->spec_i_pt) {
			/* Table 67 note c. */
			scsi_invalid_param(po->cmd, 20, 3);
			return PO_SENSE;
		}
		if (po->sark) {
			me->key = po->sark;
			me->all_tg_pt = po->all_tg_pt;
		} else {
			/* Unregister (§5.13.11.2.3). */
			bool was_holder = pr_is_holder(pr, me);
			uint8_t old = pr->type;

			pr_reg_remove(pr, (size_t)(me - pr->regs));
			pr_resv_settle(pr);
			if (was_holder && !pr->type &&
			    (old == PR_WE_RO || old == PR_EA_RO))
				pr_ua_registrants(po->l, pr, po->n,
						  UA_RESERVATIONS_RELEASED);
		}
	}
	pr->generation++;
	pr->aptpl = po->aptpl;
	po->changed = true;
	return PO_GOOD;
}

/* RESERVE (§5.13.9). */
static int
po_reserve(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n);

	if (!me || po->rk != me->key)
		return PO_CONFLICT;
	if (pr->type)	/* the same again from a holder is GOOD */
		return pr_is_holder(pr, me) && pr->type == po->type ? PO_GOOD :
								   PO_CONFLICT;
	pr->type = (uint8_t)po->type;
	me->holder = !pr_type_all_reg(po->type);
	po->changed = true;
	return PO_GOOD;
}

/* RELEASE (§5.13.11.2.2). */
static int
po_release(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n);
	uint8_t old = pr->type;

	if (!me || po->rk != me->key)
		return PO_CONFLICT;
	if (!pr_is_holder(pr, me))
		return PO_GOOD;		/* no reservation, or not ours */
	if (pr->type != po->type) {
		scsi_set_sense(po->cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
		return PO_SENSE;
	}
	pr_resv_release(pr);
	if (pr_type_rr(old))
		pr_ua_registrants(po->l, pr, po->n, UA_RESERVATIONS_RELEASED);
	po->changed = true;
	return PO_GOOD;
}

/* CLEAR (§5.13.11.2.7). */
static int
po_clear(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n);

	if (!me || po->rk != me->key)
		return PO_CONFLICT;
	log_info("LUN %u: PERSISTENT RESERVE OUT CLEAR: %zu registration%s%s removed",
		 po->l->id, pr->nregs, pr->nregs == 1 ? "" : "s",
		 pr->type ? " and the reservation" : "");
	pr_ua_registrants(po->l, pr, po->n, UA_RESERVATIONS_PREEMPTED);
	pr_resv_release(pr);
	pr->nregs = 0;
	pr->generation++;
	po->changed = true;
	return PO_GOOD;
}

/* PREEMPT and PREEMPT AND ABORT (§5.13.11.2.4 to .6, figure 9). */
static int
po_preempt(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n), *h;
	size_t removed = 0;

	if (!me || po->rk != me->key)
		return PO_CONFLICT;
	if (po->sa == PROUT_PREEMPT_AND_ABORT) {
		po->victims = calloc(pr->nregs, sizeof *po->victims);
		if (!po->victims && pr->nregs) {
			scsi_set_errno(po->cmd, ENOMEM, false);
			return PO_SENSE;
		}
	}
	h = pr->type && !pr_type_all_reg(pr->type) ? pr_holder_of(pr) : NULL;
	if ((pr->type && pr_type_all_reg(pr->type) && !po->sark) ||
	    (h && po->sark == h->key)) {
		/* Preempt the reservation: for all registrants with key 0
		 * every other registration goes, else those with the
		 * holder's key but the sender's. */
		uint8_t old = pr->type;
		const struct pr_reg self = *me;

		log_info("LUN %u: PERSISTENT RESERVE OUT %s: reservation type %u -> %u",
			 po->l->id, po->sa == PROUT_PREEMPT ? "PREEMPT" :
			 "PREEMPT AND ABORT", old, po->type);
		pr_resv_release(pr);
		for (size_t i = 0; i < pr->nregs;) {
			struct pr_reg *r = &pr->regs[i];
			if (!pr_same_id(r, &self) &&
			    (pr_type_all_reg(old) || r->key == po->sark)) {
				preempt_reg(po, i);
				continue;
			}
			i++;
		}
		me = pr_reg_of(pr, po->n);
		pr->type = (uint8_t)po->type;
		me->holder = !pr_type_all_reg(po->type);
		/* Those still registered learn of a new type or scope. */
		if (old != po->type)
			pr_ua_registrants(po->l, pr, po->n,
					  UA_RESERVATIONS_RELEASED);
	} else {
		/* Remove registrations (§5.13.11.2.5), the sender's too if
		 * its key is named. */
		if (!po->sark) {
			scsi_invalid_param(po->cmd, 8, -1);
			return PO_SENSE;
		}
		for (size_t i = 0; i < pr->nregs;) {
			if (pr->regs[i].key == po->sark) {
				preempt_reg(po, i);
				removed++;
				continue;
			}
			i++;
		}
		if (!removed)
			return PO_CONFLICT;
		pr_resv_settle(pr);
	}
	pr->generation++;
	po->changed = true;
	return PO_GOOD;
}

/* REGISTER AND MOVE (§5.13.8, table 70). */
static int
po_register_and_move(struct prout *po)
{
	struct pr_state *pr = po->pr;
	struct pr_reg *me = pr_reg_of(pr, po->n), *dest;
	const struct pr_reg *id;

	if (!me || po->rk != me->key)
		return PO_CONFLICT;
	if (!pr->type) {
		scsi_invalid_field(po->cmd, 1, 4);
		return PO_SENSE;
	}
	if (pr_type_all_reg(pr->type) || !me->holder)
		return PO_CONFLICT;
	if (!po->sark) {
		scsi_invalid_param(po->cmd, 8, -1);
		return PO_SENSE;
	}
	if (po->rtpi != PR_RTPI) {
		scsi_invalid_param(po->cmd, 18, -1);
		return PO_SENSE;
	}
	if (!prout_tids(po))
		return PO_SENSE;
	id = &po->tids[0];
	/* The destination may not be the sender's own initiator port. */
	if (!strcasecmp(id->initiator, po->n->initiator) &&
	    (id->any_isid || !memcmp(id->isid, po->n->isid, 6))) {
		scsi_invalid_param(po->cmd, 24, -1);
		return PO_SENSE;
	}
	dest = pr_reg_find(pr, id);
	if (!dest) {
		if (!pr_reg_reserve(pr, 1)) {
			scsi_set_sense(po->cmd, SK_ILLEGAL_REQUEST,
				       ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
			return PO_SENSE;
		}
		dest = pr_reg_add(pr, id, po->sark, false);
		me = pr_reg_of(pr, po->n);
	}
	dest->key = po->sark;
	me->holder = false;
	dest->holder = true;
	if (po->unreg)
		pr_reg_remove(pr, (size_t)(me - pr->regs));
	pr->generation++;
	pr->aptpl = po->aptpl;
	po->changed = true;
	return PO_GOOD;
}

/* Parameter list checks of §6.16.1, §6.16.3 and §6.16.4: ILLEGAL REQUEST
 * before the keys are looked at.  Returns false with the sense set. */
static bool
prout_parse(struct prout *po, const uint8_t *p, uint32_t plen)
{
	struct scsi_cmd *cmd = po->cmd;
	uint32_t tpdl, base;
	unsigned aptpl_byte;

	if (plen < 24)
		goto length_error;
	po->rk = get_be64(p);
	po->sark = get_be64(p + 8);
	if (po->sa == PROUT_REGISTER_AND_MOVE) {
		po->unreg = p[17] & 0x02;
		po->aptpl = p[17] & 0x01;
		aptpl_byte = 17;
		po->rtpi = get_be16(p + 18);
		tpdl = get_be32(p + 20);
		base = 24;
	} else {
		po->spec_i_pt = p[20] & 0x08;
		po->all_tg_pt = p[20] & 0x04;
		po->aptpl = p[20] & 0x01;
		aptpl_byte = 20;
		if (po->spec_i_pt && po->sa != PROUT_REGISTER) {
			scsi_invalid_param(cmd, 20, 3);
			return false;
		}
		if (!po->spec_i_pt) {
			if (plen != 24)
				goto length_error;
			tpdl = 0;
		} else {
			if (plen < 28)
				goto length_error;
			tpdl = get_be32(p + 24);
		}
		base = 28;
		/* APTPL and ALL_TG_PT count for the register actions only. */
		if (po->sa != PROUT_REGISTER && po->sa != PROUT_REGISTER_IGNORE)
			po->aptpl = po->all_tg_pt = false;
	}
	if (po->aptpl && !po->pr->path) {
		/* No state_dir: nothing can persist through power loss. */
		scsi_invalid_param(cmd, aptpl_byte, 0);
		return false;
	}
	if (po->sa != PROUT_REGISTER_AND_MOVE && !po->spec_i_pt)
		return true;
	if ((uint64_t)base + tpdl > plen)
		goto length_error;
	/* Parsed once the keys pass: tables 67 and 70 answer RESERVATION
	 * CONFLICT whatever the rest of the list holds. */
	po->tid_data = p + base;
	po->tid_base = base;
	po->tid_len = tpdl;
	return true;
length_error:
	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	return false;
}

static const char *const prout_names[] = {
	"REGISTER", "RESERVE", "RELEASE", "CLEAR", "PREEMPT",
	"PREEMPT AND ABORT", "REGISTER AND IGNORE EXISTING KEY",
	"REGISTER AND MOVE",
};

int
spc_pr_out(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t plen = get_be32(c + 5);
	struct lun *l = cmd->lun;
	struct pr_state *pr = l->pr;
	struct prout po = {
		.cmd = cmd, .l = l, .pr = pr, .n = cmd->nexus,
		.sa = c[1] & 0x1f, .type = c[2] & 0x0f,
	};
	bool was_aptpl, save = false;
	char *text = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int r = PO_SENSE;

	cmd->xfer_len = plen;
	if (po.sa > PROUT_REGISTER_AND_MOVE) {
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	if (po.sa == PROUT_RESERVE || po.sa == PROUT_RELEASE ||
	    po.sa == PROUT_PREEMPT || po.sa == PROUT_PREEMPT_AND_ABORT) {
		if (c[2] >> 4) {	/* only LU_SCOPE */
			scsi_invalid_field(cmd, 2, 7);
			return SCSI_DONE;
		}
		if (!pr_type_valid(po.type)) {
			scsi_invalid_field(cmd, 2, 3);
			return SCSI_DONE;
		}
	}
	if (plen > cmd->edtl || plen > PROUT_PLEN_MAX) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAMETER_LIST_LENGTH_ERROR);
		return SCSI_DONE;
	}
	if (!cmd->nexus) {
		pr_set_conflict(cmd);
		return SCSI_DONE;
	}
	if (!prout_parse(&po, cmd->buf, plen))
		goto out;
	log_debug(LOG_AREA_SCSI, "LUN %u: PERSISTENT RESERVE OUT %s key 0x%016" PRIx64
		  " service action key 0x%016" PRIx64 " type %u", l->id,
		  prout_names[po.sa], po.rk, po.sark, po.type);

	pthread_mutex_lock(&l->pr_lock);
	was_aptpl = pr->aptpl;
	switch (po.sa) {
	case PROUT_REGISTER:
	case PROUT_REGISTER_IGNORE:
		r = po_register(&po);
		break;
	case PROUT_RESERVE:
		r = po_reserve(&po);
		break;
	case PROUT_RELEASE:
		r = po_release(&po);
		break;
	case PROUT_CLEAR:
		r = po_clear(&po);
		break;
	case PROUT_PREEMPT:
	case PROUT_PREEMPT_AND_ABORT:
		r = po_preempt(&po);
		break;
	case PROUT_REGISTER_AND_MOVE:
		r = po_register_and_move(&po);
		break;
	}
	pr_active_update(pr);
	/* With APTPL on, or just turned off, the file follows the state. */
	if (r == PO_GOOD && po.changed && pr->path && (pr->aptpl || was_aptpl)) {
		if (pr->aptpl && !(text = pr_state_text(l, &len))) {
			log_error("%s: cannot save the persistent reservations: out of memory",
				  l->pointer);
			scsi_set_sense(cmd, SK_HARDWARE_ERROR,
				       ASC_INTERNAL_TARGET_FAILURE);
		} else {
			seq = ++pr->save_seq;
			save = true;
		}
	}
	pthread_mutex_unlock(&l->pr_lock);

	if (r == PO_CONFLICT)
		pr_set_conflict(cmd);
	/* PREEMPT AND ABORT: the preempted nexuses' commands on this LUN
	 * go, all but this one (§5.13.11.2.6 c). */
	for (size_t i = 0; i < po.nvictims && scsi_abort_hook; i++) {
		const struct pr_reg *v = &po.victims[i];
		scsi_abort_hook(l->target, l, v->initiator,
				v->any_isid ? NULL : v->isid, cmd);
	}
out:
	free(po.tids);
	free(po.tid_off);
	free(po.victims);
	return save ? pr_save(cmd, pr, text, len, seq) : SCSI_DONE;
}
