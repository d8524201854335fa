/* cmd.c: command dispatch, the LUN field, I_T nexus objects and unit
 * attentions.  scsi_cmd_exec checks, in SAM-5 order: the opcode exists, the
 * LUN exists, no unit attention is pending, no reservation conflicts
 * (pr.c), the medium is in (a removable LUN), then runs the handler.  Runs
 * on the loop thread; nexus UA and prevent bits are guarded by the nexus
 * lock because a reset on one session establishes UAs on the others.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scsi.h"
#include "pr.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

static pthread_mutex_t nexus_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_nexus *nexus_list;	/* nexus_list_lock */

int
scsi_decode_lun(uint64_t raw)
{
	uint8_t b[8];

	put_be64(b, raw);
	/* Only the first level is used; the rest must be zero. */
	for (int i = 2; i < 8; i++)
		if (b[i])
			return -1;
	switch (b[0] >> 6) {
	case 0:	/* peripheral device addressing, bus 0 */
		if (b[0] & 0x3f)
			return -1;
		return b[1];
	case 1:	/* flat space addressing */
		return ((b[0] & 0x3f) << 8) | b[1];
	default:
		return -1;
	}
}

uint64_t
scsi_encode_lun(unsigned id)
{
	uint8_t b[8] = { 0 };

	if (id < 256) {
		b[1] = id;
	} else {
		b[0] = 0x40 | ((id >> 8) & 0x3f);
		b[1] = id & 0xff;
	}
	return get_be64(b);
}

struct scsi_nexus *
scsi_nexus_new(struct target *t, const char *initiator, const uint8_t isid[6])
{
	struct scsi_nexus *n = calloc(1, sizeof *n);

	if (!n)
		return NULL;
	n->target = t;
	snprintf(n->initiator, sizeof n->initiator, "%s", initiator);
	memcpy(n->isid, isid, 6);
	pthread_mutex_init(&n->lock, NULL);
	n->nua = t->next_slot;
	n->ua = calloc(n->nua + 1, sizeof *n->ua);
	n->prevent = calloc(n->nua + 1, 1);
	if (!n->ua || !n->prevent) {
		free(n->ua);
		free(n->prevent);
		free(n);
		return NULL;
	}
	/* A new nexus starts with no unit attention; one that existed
	 * before a restart gets POWER ON (iscsi/nexus-seen.c). */
	pthread_mutex_lock(&nexus_list_lock);
	n->next = nexus_list;
	nexus_list = n;
	pthread_mutex_unlock(&nexus_list_lock);
	return n;
}

void
scsi_nexus_power_on(struct scsi_nexus *n)
{
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < n->nua; i++)
		n->ua[i] |= 1u << UA_POWER_ON;
	pthread_mutex_unlock(&n->lock);
}

void
scsi_nexus_free(struct scsi_nexus *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&nexus_list_lock);
	for (struct scsi_nexus **pp = &nexus_list; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	pthread_mutex_unlock(&nexus_list_lock);
	scsi_nexus_lost(n);
	xcopy_nexus_free(n);
	pthread_mutex_destroy(&n->lock);
	free(n->ua);
	free(n->prevent);
	free(n);
}

void
scsi_nexus_lost(struct scsi_nexus *n)
{
	if (!n)
		return;
	/* I_T nexus loss: its SPC-2 reservations end; registrations stay. */
	pr_nexus_gone(n);
	/* SBC-4 (PREVENT ALLOW MEDIUM REMOVAL): so do its preventions of
	 * medium removal.  Taken under nexus_list_lock as they are set, so
	 * that an eject sees them before or after, never half-way. */
	pthread_mutex_lock(&nexus_list_lock);
	pthread_mutex_lock(&n->lock);
	memset(n->prevent, 0, n->nua + 1);
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_unlock(&nexus_list_lock);
}

/* ua[] and prevent[] cover the slots the target had when the nexus was
 * made; a reload adds LUNs with new slots (lunmap.h), so grow them to hold
 * slot nslots - 1.  n->lock held.  False when out of memory (the UA or
 * prevention is then lost); nua changes only once both have grown. */
static bool
nexus_ua_grow(struct scsi_nexus *n, size_t nslots)
{
	uint32_t *nu;
	uint8_t *np;

	if (nslots <= n->nua)
		return true;
	np = realloc(n->prevent, nslots + 1);
	if (!np)
		return false;
	memset(np + n->nua, 0, nslots + 1 - n->nua);
	n->prevent = np;
	nu = realloc(n->ua, (nslots + 1) * sizeof *n->ua);
	if (!nu)
		return false;
	memset(nu + n->nua, 0, (nslots + 1 - n->nua) * sizeof *nu);
	n->ua = nu;
	n->nua = nslots;
	return true;
}

/* Whether LUN l is reached through n: a per-initiator image only through
 * its initiator's nexuses (they share the template's slot). */
static bool
nexus_reaches(const struct scsi_nexus *n, const struct lun *l)
{
	return n->target == l->target &&
	       (!l->initiator || !strcasecmp(n->initiator, l->initiator));
}

bool
scsi_initiator_on_target(const char *initiator, const struct target *t)
{
	bool found = false;

	pthread_mutex_lock(&nexus_list_lock);
	for (struct scsi_nexus *n = nexus_list; n && !found; n = n->next)
		found = n->target == t && !strcasecmp(n->initiator, initiator);
	pthread_mutex_unlock(&nexus_list_lock);
	return found;
}

void
scsi_ua_establish_all(struct target *t, struct lun *l, enum scsi_ua ua)
{
	bool reset = ua == UA_RESET || ua == UA_POWER_ON;

	pthread_mutex_lock(&nexus_list_lock);
	for (struct scsi_nexus *n = nexus_list; n; n = n->next) {
		if (n->target != t)
			continue;
		pthread_mutex_lock(&n->lock);
		if (!nexus_ua_grow(n, l ? l->slot + 1u : t->next_slot))
			log_error("out of memory for a unit attention");
		for (size_t i = 0; i < n->nua; i++)
			if (!l || l->slot == i)
				n->ua[i] |= 1u << ua;
		/* SBC-4: a logical unit reset (and a target reset, which
		 * resets every LUN) ends the prevention of medium removal. */
		if (reset && !l)
			memset(n->prevent, 0, n->nua + 1);
		else if (reset && l->slot < n->nua && nexus_reaches(n, l))
			n->prevent[l->slot] = 0;
		pthread_mutex_unlock(&n->lock);
	}
	pthread_mutex_unlock(&nexus_list_lock);
	if (reset) {
		pr_reset(t, l);
		for (size_t i = 0; i < (l ? 1 : t->nluns); i++)
			__atomic_add_fetch(&(l ? l : t->luns[i])->reset_gen, 1,
					   __ATOMIC_RELEASE);
	}
}

void
scsi_ua_establish_port(struct lun *l, const char *initiator,
		       const uint8_t *isid, const struct scsi_nexus *except,
		       enum scsi_ua ua)
{
	pthread_mutex_lock(&nexus_list_lock);
	for (struct scsi_nexus *n = nexus_list; n; n = n->next) {
		if (n == except || n->target != l->target ||
		    strcasecmp(n->initiator, initiator) ||
		    (isid && memcmp(n->isid, isid, 6)))
			continue;
		scsi_ua_establish_nexus(n, l, ua);
	}
	pthread_mutex_unlock(&nexus_list_lock);
}

void
scsi_ua_establish_nexus(struct scsi_nexus *n, struct lun *l, enum scsi_ua ua)
{
	pthread_mutex_lock(&n->lock);
	if (nexus_ua_grow(n, l->slot + 1u))
		n->ua[l->slot] |= 1u << ua;
	else
		log_error("out of memory for a unit attention");
	pthread_mutex_unlock(&n->lock);
}

void
scsi_ua_establish_others(struct lun *l, const struct scsi_nexus *except,
			 enum scsi_ua ua)
{
	pthread_mutex_lock(&nexus_list_lock);
	for (struct scsi_nexus *n = nexus_list; n; n = n->next) {
		if (n == except || !nexus_reaches(n, l))
			continue;
		scsi_ua_establish_nexus(n, l, ua);
	}
	pthread_mutex_unlock(&nexus_list_lock);
}

bool
scsi_nexus_prevent(struct scsi_nexus *n, const struct lun *l, bool on)
{
	bool ok = true;

	if (!n)
		return true;
	pthread_mutex_lock(&nexus_list_lock);
	pthread_mutex_lock(&n->lock);
	if (on && nexus_ua_grow(n, l->slot + 1u))
		n->prevent[l->slot] = 1;
	else if (on)
		ok = false;
	else if (l->slot < n->nua)
		n->prevent[l->slot] = 0;
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_unlock(&nexus_list_lock);
	return ok;
}

int
scsi_medium_move(struct lun *l, bool out)
{
	bool prevented = false;
	int r = 0;

	/* Under nexus_list_lock, which every change of a prevent bit also
	 * holds: no PREVENT can succeed between the check and the move. */
	pthread_mutex_lock(&nexus_list_lock);
	if (__atomic_load_n(&l->medium_out, __ATOMIC_ACQUIRE) == out)
		goto out;
	for (struct scsi_nexus *n = nexus_list; n && !prevented; n = n->next) {
		if (!nexus_reaches(n, l))
			continue;
		pthread_mutex_lock(&n->lock);
		prevented = l->slot < n->nua && n->prevent[l->slot];
		pthread_mutex_unlock(&n->lock);
	}
	if (prevented) {
		r = -EBUSY;
	} else {
		__atomic_store_n(&l->medium_out, out, __ATOMIC_RELEASE);
		r = 1;
	}
out:
	pthread_mutex_unlock(&nexus_list_lock);
	return r;
}

static const uint16_t ua_asc[UA__MAX] = {
	[UA_POWER_ON] = ASC_POWER_ON_OCCURRED,
	[UA_RESET] = ASC_BUS_DEVICE_RESET_OCCURRED,
	[UA_MEDIUM_CHANGED] = ASC_NOT_READY_TO_READY_CHANGE,
	[UA_COMMANDS_CLEARED] = ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR,
	[UA_CAPACITY_CHANGED] = ASC_CAPACITY_DATA_HAS_CHANGED,
	[UA_MODE_CHANGED] = ASC_MODE_PARAMETERS_CHANGED,
	[UA_LUNS_CHANGED] = ASC_REPORTED_LUNS_DATA_HAS_CHANGED,
	[UA_RESERVATIONS_PREEMPTED] = ASC_RESERVATIONS_PREEMPTED,
	[UA_RESERVATIONS_RELEASED] = ASC_RESERVATIONS_RELEASED,
	[UA_REGISTRATIONS_PREEMPTED] = ASC_REGISTRATIONS_PREEMPTED,
};

bool
scsi_ua_pop(struct scsi_cmd *cmd, uint16_t *asc)
{
	struct scsi_nexus *n = cmd->nexus;
	bool found = false;

	if (!n || !cmd->lun)
		return false;
	pthread_mutex_lock(&n->lock);
	if (cmd->lun->slot >= n->nua) {
		/* A LUN added after this nexus: nothing established yet. */
		pthread_mutex_unlock(&n->lock);
		return false;
	}
	uint32_t *bits = &n->ua[cmd->lun->slot];
	for (int u = 0; u < UA__MAX; u++) {
		if (*bits & (1u << u)) {
			/* A power-on or reset report covers the lesser ones. */
			if (u == UA_POWER_ON || u == UA_RESET)
				*bits &= ~((1u << UA_POWER_ON) | (1u << UA_RESET));
			else
				*bits &= ~(1u << u);
			*asc = ua_asc[u];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return found;
}

void
scsi_cmd_complete(struct scsi_cmd *cmd)
{
	if (cmd->status == SAM_STAT_GOOD && cmd->data_len > cmd->edtl)
		cmd->data_len = cmd->edtl;
	cmd->done(cmd);
}

void
scsi_cmd_exec(struct scsi_cmd *cmd)
{
	const struct scsi_op *op;
	unsigned sa;
	uint16_t asc;

	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
	cmd->data_len = 0;
	cmd->xfer_len = 0;
	cmd->data_in_file = false;

	op = scsi_find_op(cmd->cdb, &sa);
	if (log_debug_on[LOG_AREA_SCSI])
		log_debug_msg("LUN %u: CDB %02x (%s) edtl %u", cmd->lun_id,
			      cmd->cdb[0], op ? op->name : "unsupported",
			      cmd->edtl);
	/* SPC-4 §4.5.2: a missing LUN is reported before the opcode, except
	 * for commands that run without one. */
	if (!cmd->lun && !(op && (op->flags & OPF_NO_LUN))) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_LOGICAL_UNIT_NOT_SUPPORTED);
		goto out;
	}
	if (!op || (op->avail && cmd->lun && !op->avail(cmd->lun))) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_COMMAND_OPERATION_CODE);
		goto out;
	}
	if (cmd->cdb_len < op->cdb_len) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_INVALID_COMMAND_OPERATION_CODE);
		goto out;
	}
	/* SBC-4 §4.11.2: while a SANITIZE runs, only INQUIRY, REPORT LUNS
	 * and REQUEST SENSE are processed. */
	if (cmd->lun && __atomic_load_n(&cmd->lun->sanitizing,
					__ATOMIC_ACQUIRE) &&
	    cmd->cdb[0] != 0x12 && cmd->cdb[0] != 0xa0 &&
	    cmd->cdb[0] != 0x03) {
		cmd->status = SAM_STAT_CHECK_CONDITION;
		cmd->sense_len = sbc_sanitize_sense(cmd->lun, cmd->sense,
						    false);
		goto out;
	}
	/* CONTROL byte: NACA and link are not supported. */
	if (cmd->cdb[op->cdb_len - 1] & 0x05) {
		scsi_invalid_field(cmd, op->cdb_len - 1,
				   (cmd->cdb[op->cdb_len - 1] & 0x04) ? 2 : 0);
		goto out;
	}
	if (!(op->flags & OPF_NO_UA) && scsi_ua_pop(cmd, &asc)) {
		scsi_set_sense(cmd, SK_UNIT_ATTENTION, asc);
		goto out;
	}
	if (pr_conflict(cmd, op))
		goto out;
	/* SBC-4: a medium access command to a removable LUN whose medium
	 * was ejected. */
	if (cmd->lun && !(op->flags & OPF_NO_MEDIUM) &&
	    __atomic_load_n(&cmd->lun->medium_out, __ATOMIC_ACQUIRE)) {
		scsi_set_sense(cmd, SK_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
		goto out;
	}
	if ((op->flags & OPF_WRITE) && cmd->lun && cmd->lun->read_only) {
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		goto out;
	}
	if ((op->flags & OPF_WRITE) && cmd->lun &&
	    __atomic_load_n(&cmd->lun->swp, __ATOMIC_RELAXED)) {
		scsi_set_sense(cmd, SK_DATA_PROTECT,
			       ASC_SOFTWARE_WRITE_PROTECTED);
		goto out;
	}
	/* SBC-4 §4.11: after a failed SANITIZE, medium access fails until
	 * a sanitize succeeds or EXIT FAILURE MODE (sanitize.c). */
	if (cmd->lun && sbc_sanitize_failed_blocks(cmd->lun, cmd->cdb)) {
		scsi_set_sense(cmd, SK_MEDIUM_ERROR,
			       ASC_SANITIZE_COMMAND_FAILED);
		goto out;
	}
	if (op->fn(cmd) == SCSI_ASYNC)
		return;
out:
	scsi_cmd_complete(cmd);
}
