/* pr.c: reservations (SPC-4 §5.13; SPC-2 §5.5, §7.17, §7.21).  The
 * registration helpers the other pr*.c files share, TransportIDs, the
 * conflict check every command goes through, RESERVE/RELEASE(6/10) and
 * PERSISTENT RESERVE IN.  PERSISTENT RESERVE OUT is pr-out.c, the APTPL
 * state file pr-file.c.  Loop thread; the state is guarded by pr_lock.
 *
 * SPC-2 reservations and persistent ones exclude each other as SPC-4
 * §5.13.3 asks (CRH = 1): while registrations exist RESERVE and RELEASE
 * conflict unless they come from a holder (then they do nothing), and
 * while an SPC-2 reservation exists every PERSISTENT RESERVE OUT
 * conflicts (SPC-2 §5.5.1; PERSISTENT RESERVE IN does not, see
 * pr_conflict).
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

/* Service actions (SPC-4 table 201). */
#define PRIN_READ_KEYS 0x00
#define PRIN_READ_RESERVATION 0x01
#define PRIN_REPORT_CAPABILITIES 0x02
#define PRIN_READ_FULL_STATUS 0x03

#define ISCSI_PROTOCOL_ID 0x5

scsi_abort_fn *scsi_abort_hook;

/* ---- registrations ---- */

static bool
reg_matches(const struct pr_reg *r, const char *initiator,
	    const uint8_t isid[6])
{
	/* RFC 7143 §4.2.7.1: iSCSI names compare case-insensitively. */
	return !strcasecmp(r->initiator, initiator) &&
	       (r->any_isid || !memcmp(r->isid, isid, 6));
}

/* The registration of nexus n: the one for its ISID, else one made for
 * every ISID of its name (a format 00h TransportID). */
struct pr_reg *
pr_reg_of(struct pr_state *pr, const struct scsi_nexus *n)
{
	struct pr_reg *any = NULL;

	if (!n)
		return NULL;
	for (size_t i = 0; i < pr->nregs; i++) {
		struct pr_reg *r = &pr->regs[i];
		if (!reg_matches(r, n->initiator, n->isid))
			continue;
		if (!r->any_isid)
			return r;
		if (!any)
			any = r;
	}
	return any;
}

bool
pr_same_id(const struct pr_reg *a, const struct pr_reg *b)
{
	return !strcasecmp(a->initiator, b->initiator) &&
	       a->any_isid == b->any_isid &&
	       (a->any_isid || !memcmp(a->isid, b->isid, 6));
}

/* The registration for exactly this identity. */
struct pr_reg *
pr_reg_find(struct pr_state *pr, const struct pr_reg *id)
{
	for (size_t i = 0; i < pr->nregs; i++)
		if (pr_same_id(&pr->regs[i], id))
			return &pr->regs[i];
	return NULL;
}

/* Does any registration cover a nexus the identity id names? */
bool
pr_id_registered(struct pr_state *pr, const struct pr_reg *id)
{
	for (size_t i = 0; i < pr->nregs; i++) {
		const struct pr_reg *r = &pr->regs[i];
		if (strcasecmp(r->initiator, id->initiator))
			continue;
		if (r->any_isid || id->any_isid || !memcmp(r->isid, id->isid, 6))
			return true;
	}
	return false;
}

/* SPC-4 §5.13.10: every registrant holds an all registrants reservation. */
bool
pr_is_holder(const struct pr_state *pr, const struct pr_reg *r)
{
	return r && pr->type && (pr_type_all_reg(pr->type) || r->holder);
}

struct pr_reg *
pr_holder_of(struct pr_state *pr)
{
	for (size_t i = 0; i < pr->nregs; i++)
		if (pr->regs[i].holder)
			return &pr->regs[i];
	return NULL;
}

/* Room for more registrations, so that adding them cannot fail halfway.
 * Pointers into regs are stale after a true return. */
bool
pr_reg_reserve(struct pr_state *pr, size_t more)
{
	size_t want = pr->nregs + more, cap;
	struct pr_reg *p;

	if (want > PR_MAX_REGS)
		return false;
	if (want <= pr->cap)
		return true;
	cap = MIN(MAX(want, 2 * pr->cap), (size_t)PR_MAX_REGS);
	p = realloc(pr->regs, cap * sizeof *p);
	if (!p)
		return false;
	pr->regs = p;
	pr->cap = cap;
	return true;
}

/* Add after pr_reg_reserve. */
struct pr_reg *
pr_reg_add(struct pr_state *pr, const struct pr_reg *id, uint64_t key,
	   bool all_tg_pt)
{
	struct pr_reg *r;

	if (pr->nregs >= pr->cap)
		abort();	/* pr_reg_reserve was not called: our bug */
	r = &pr->regs[pr->nregs++];
	*r = *id;
	r->key = key;
	r->all_tg_pt = all_tg_pt;
	r->holder = false;
	return r;
}

void
pr_reg_remove(struct pr_state *pr, size_t i)
{
	memmove(&pr->regs[i], &pr->regs[i + 1],
		(pr->nregs - i - 1) * sizeof *pr->regs);
	pr->nregs--;
}

void
pr_resv_release(struct pr_state *pr)
{
	pr->type = 0;
	for (size_t i = 0; i < pr->nregs; i++)
		pr->regs[i].holder = false;
}

/* After registrations went away: a reservation whose holders are all
 * gone is released (SPC-4 §5.13.10, table 71). */
void
pr_resv_settle(struct pr_state *pr)
{
	if (pr->type && (pr_type_all_reg(pr->type) ? pr->nregs == 0 :
			 !pr_holder_of(pr)))
		pr_resv_release(pr);
}

void
pr_active_update(struct pr_state *pr)
{
	__atomic_store_n(&pr->active, pr->type || pr->spc2, __ATOMIC_RELEASE);
}

/* Unit attention for the nexuses of registration r, but not except. */
void
pr_ua_reg(struct lun *l, const struct pr_reg *r,
	  const struct scsi_nexus *except, enum scsi_ua ua)
{
	scsi_ua_establish_port(l, r->initiator, r->any_isid ? NULL : r->isid,
			       except, ua);
}

/* ... for every registered I_T nexus other than except. */
void
pr_ua_registrants(struct lun *l, struct pr_state *pr,
		  const struct scsi_nexus *except, enum scsi_ua ua)
{
	for (size_t i = 0; i < pr->nregs; i++)
		pr_ua_reg(l, &pr->regs[i], except, ua);
}

void
pr_set_conflict(struct scsi_cmd *cmd)
{
	cmd->status = SAM_STAT_RESERVATION_CONFLICT;
	cmd->sense_len = 0;
}

/* ---- TransportIDs (SPC-4 §7.6.4.6, iSCSI) ---- */

/* Build the TransportID of r into out (NULL: only measure).  Format 01h,
 * "name,i,0x<ISID>", names one initiator port; format 00h, "name", names
 * every port of the initiator (a registration made through one). */
static uint32_t
tid_build(uint8_t *out, const struct pr_reg *r)
{
	char s[260];
	int n;
	uint32_t addl;

	if (r->any_isid)
		n = snprintf(s, sizeof s, "%s", r->initiator);
	else
		n = snprintf(s, sizeof s, "%s,i,0x%02x%02x%02x%02x%02x%02x",
			     r->initiator, r->isid[0], r->isid[1], r->isid[2],
			     r->isid[3], r->isid[4], r->isid[5]);
	if (n < 0)
		n = 0;
	/* NUL-terminated, padded to a multiple of 4, at least 20 bytes. */
	addl = MAX(((uint32_t)n + 1 + 3) & ~3u, 20u);
	if (out) {
		memset(out, 0, 4 + addl);
		out[0] = (r->any_isid ? 0x00 : 0x40) | ISCSI_PROTOCOL_ID;
		put_be16(out + 2, (uint16_t)addl);
		memcpy(out + 4, s, (size_t)n);
	}
	return 4 + addl;
}

int
pr_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse the TransportID at p (len bytes left) into id.  Returns its length,
 * or 0 with *bad the offset of the offending byte within p. */
uint32_t
pr_tid_parse(const uint8_t *p, uint32_t len, struct pr_reg *id, uint32_t *bad)
{
	uint32_t addl;
	size_t n, name_len;
	const char *s, *sep;

	memset(id, 0, sizeof *id);
	*bad = 0;
	if (len < 4 || (p[0] & 0x0f) != ISCSI_PROTOCOL_ID || (p[0] >> 6) > 1)
		return 0;
	*bad = 2;
	addl = get_be16(p + 2);
	if (addl < 4 || addl > len - 4)
		return 0;
	*bad = 4;
	s = (const char *)p + 4;
	n = strnlen(s, addl);
	if (n == addl || n == 0)
		return 0;	/* not NUL-terminated, or empty */
	if ((p[0] >> 6) == 0) {
		name_len = n;
		id->any_isid = true;
	} else {
		/* "name" ",i,0x" 12 hex digits of ISID */
		sep = memchr(s, ',', n);
		if (!sep || (size_t)(s + n - sep) != 5 + 12 ||
		    strncasecmp(sep, ",i,0x", 5))
			return 0;
		name_len = (size_t)(sep - s);
		for (int i = 0; i < 6; i++) {
			int hi = pr_hexval(sep[5 + 2 * i]), lo = pr_hexval(sep[6 + 2 * i]);
			if (hi < 0 || lo < 0)
				return 0;
			id->isid[i] = (uint8_t)(hi << 4 | lo);
		}
	}
	if (name_len == 0 || name_len >= sizeof id->initiator)
		return 0;
	memcpy(id->initiator, s, name_len);
	return 4 + addl;
}

/* ---- the conflict check ---- */

enum resv_class {
	RESV_ALLOWED,	/* allowed through every persistent reservation */
	RESV_READ,	/* allowed through Write Exclusive types */
	RESV_CONFLICT,	/* conflicts unless holder or (RR) registered */
};

/* The flags of the opcode table (cdb-table.c), refined for the two rows
 * whose class depends on the CDB (SBC-4 table 13). */
static enum resv_class
resv_class(const struct scsi_cmd *cmd, const struct scsi_op *op)
{
	const uint8_t *c = cmd->cdb;

	switch (c[0]) {
	case 0x1b:	/* START STOP UNIT: START = 1, POWER CONDITION 0h only */
		return (c[4] & 0x01) && !(c[4] & 0xf0) ? RESV_ALLOWED :
							 RESV_CONFLICT;
	case 0x1e:	/* PREVENT ALLOW MEDIUM REMOVAL: PREVENT = 00b only */
		return !(c[4] & 0x03) ? RESV_ALLOWED : RESV_CONFLICT;
	case 0x9e:	/* READ CAPACITY(16) always, GET LBA STATUS as a read */
		return (c[1] & 0x1f) == 0x10 ? RESV_ALLOWED : RESV_READ;
	case 0xa3:	/* REPORT TARGET PORT GROUPS always (SPC-4 table 65) */
		if ((c[1] & 0x1f) == 0x0a)
			return RESV_ALLOWED;
		break;
	}
	if (op->flags & OPF_RESV_ANY)
		return RESV_ALLOWED;
	if (op->flags & OPF_RESV_READ)
		return RESV_READ;
	return RESV_CONFLICT;
}

bool
pr_conflict(struct scsi_cmd *cmd, const struct scsi_op *op)
{
	struct lun *l = cmd->lun;
	struct pr_state *pr = l ? l->pr : NULL;
	bool conflict = false;

	if (!pr || !__atomic_load_n(&pr->active, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&l->pr_lock);
	if (pr->spc2) {
		/* SPC-2 §5.5.1, kept by SPC-4 §5.13.3: under an SPC-2
		 * reservation every PERSISTENT RESERVE OUT conflicts,
		 * whoever sends it; other nexuses get only INQUIRY, REPORT
		 * LUNS, REQUEST SENSE, RELEASE, PREVENT ALLOW MEDIUM REMOVAL
		 * with PREVENT 00b and PERSISTENT RESERVE IN through.  Deviation: SPC-2 makes PERSISTENT RESERVE IN
		 * conflict too; here it reads the state (no keys, no
		 * reservation, a RESERVE(6/10) holder is not reported) so a
		 * multipath or cluster initiator polling keys is not refused
		 * because another path holds a RESERVE. */
		conflict = cmd->cdb[0] == 0x5f ||
			   (pr->spc2 != cmd->nexus &&
			    !(op->flags & OPF_RESV_SPC2) &&
			    !(cmd->cdb[0] == 0x1e && !(cmd->cdb[4] & 0x03)));
	} else if (pr->type) {
		/* SPC-4 table 65, SBC-4 table 13. */
		struct pr_reg *r = pr_reg_of(pr, cmd->nexus);
		enum resv_class k = resv_class(cmd, op);

		conflict = !(k == RESV_ALLOWED || pr_is_holder(pr, r) ||
			     (r && pr_type_rr(pr->type)) ||
			     (k == RESV_READ && pr_type_write_excl(pr->type)));
	}
	pthread_mutex_unlock(&l->pr_lock);
	if (conflict) {
		log_debug(LOG_AREA_SCSI, "LUN %u: CDB %02x: reservation conflict",
			  l->id, cmd->cdb[0]);
		pr_set_conflict(cmd);
	}
	return conflict;
}

void
pr_nexus_gone(struct scsi_nexus *n)
{
	struct target *t = n->target;

	for (size_t i = 0; t && i < t->nluns; i++) {
		struct lun *l = t->luns[i];
		if (!l->pr)
			continue;
		pthread_mutex_lock(&l->pr_lock);
		if (l->pr->spc2 == n) {
			l->pr->spc2 = NULL;
			pr_active_update(l->pr);
		}
		pthread_mutex_unlock(&l->pr_lock);
	}
}

void
pr_reset(struct target *t, struct lun *only)
{
	for (size_t i = 0; i < t->nluns; i++) {
		struct lun *l = t->luns[i];
		if ((only && l != only) || !l->pr)
			continue;
		pthread_mutex_lock(&l->pr_lock);
		if (l->pr->spc2)
			log_info("LUN %u: reset releases the RESERVE(6/10) reservation",
				 l->id);
		l->pr->spc2 = NULL;
		pr_active_update(l->pr);
		pthread_mutex_unlock(&l->pr_lock);
	}
}

/* ---- RESERVE / RELEASE (SPC-2) ---- */

static bool
spc2_cdb_ok(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;

	if (c[0] == 0x56 || c[0] == 0x57)
		cmd->xfer_len = get_be16(c + 7);
	/* Third-party reservations and extents are not supported. */
	if (c[1] & 0x10) {
		scsi_invalid_field(cmd, 1, 4);
		return false;
	}
	if (c[1] & 0x01) {
		scsi_invalid_field(cmd, 1, 0);
		return false;
	}
	return true;
}

/* SPC-4 §5.13.3: with registrations present, RESERVE and RELEASE are
 * GOOD without effect from a persistent reservation holder, or from a
 * registrant under a registrants only or all registrants reservation;
 * from anyone else they conflict (SPC-2 §5.5.1). */
static bool
spc2_vs_pr_conflict(struct pr_state *pr, const struct scsi_nexus *n)
{
	struct pr_reg *me = pr_reg_of(pr, n);

	return !(pr_is_holder(pr, me) || (me && pr_type_rr(pr->type)));
}

int
spc_reserve(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	struct pr_state *pr = l->pr;
	bool conflict = false;

	if (!spc2_cdb_ok(cmd))
		return SCSI_DONE;
	pthread_mutex_lock(&l->pr_lock);
	if (pr->nregs)
		conflict = spc2_vs_pr_conflict(pr, cmd->nexus);
	else if (pr->spc2 && pr->spc2 != cmd->nexus)
		conflict = true;
	else
		pr->spc2 = cmd->nexus;
	pr_active_update(pr);
	pthread_mutex_unlock(&l->pr_lock);
	if (conflict)
		pr_set_conflict(cmd);
	return SCSI_DONE;
}

int
spc_release(struct scsi_cmd *cmd)
{
	struct lun *l = cmd->lun;
	struct pr_state *pr = l->pr;
	bool conflict = false;

	if (!spc2_cdb_ok(cmd))
		return SCSI_DONE;
	pthread_mutex_lock(&l->pr_lock);
	if (pr->nregs)
		conflict = spc2_vs_pr_conflict(pr, cmd->nexus);
	else if (pr->spc2 == cmd->nexus)
		pr->spc2 = NULL;
	/* Not reserved, or by another nexus: GOOD, no effect (SPC-2
	 * §7.17.1). */
	pr_active_update(pr);
	pthread_mutex_unlock(&l->pr_lock);
	if (conflict)
		pr_set_conflict(cmd);
	return SCSI_DONE;
}

/* ---- PERSISTENT RESERVE IN (SPC-4 §6.15) ---- */

static uint8_t *
read_keys(struct pr_state *pr, size_t *len)
{
	uint8_t *d;

	*len = 8 + 8 * pr->nregs;
	d = calloc(1, *len);
	if (!d)
		return NULL;
	put_be32(d, pr->generation);
	put_be32(d + 4, (uint32_t)(8 * pr->nregs));
	for (size_t i = 0; i < pr->nregs; i++)
		put_be64(d + 8 + 8 * i, pr->regs[i].key);
	return d;
}

static uint8_t *
read_reservation(struct pr_state *pr, size_t *len)
{
	uint8_t *d;

	*len = pr->type ? 24 : 8;
	d = calloc(1, *len);
	if (!d)
		return NULL;
	put_be32(d, pr->generation);
	if (pr->type) {
		const struct pr_reg *h = pr_holder_of(pr);
		put_be32(d + 4, 16);
		/* An all registrants reservation reports key 0 (§5.13.6.3). */
		put_be64(d + 8, pr_type_all_reg(pr->type) || !h ? 0 : h->key);
		d[21] = pr->type;	/* scope 0h: LU_SCOPE */
	}
	return d;
}

static uint8_t *
report_capabilities(struct pr_state *pr, size_t *len)
{
	uint8_t *d;

	*len = 8;
	d = calloc(1, *len);
	if (!d)
		return NULL;
	put_be16(d, 8);
	/* Nothing is claimed for a command the opcode table leaves out. */
	if (scsi_op_at(0x16))
		d[2] |= 0x10;	/* CRH: the §5.13.3 exceptions */
	if (!scsi_op_at(0x5f))
		return d;
	/* SIP_C, ATP_C (the one target port is every target port), PTPL_C
	 * only with a state_dir to keep it in. */
	d[2] |= 0x08 | 0x04 | (pr->path ? 0x01 : 0);
	/* TMV; ALLOW COMMANDS 011b: TEST UNIT READY passes every type, MODE
	 * SENSE and REPORT SUPPORTED OPERATION CODES pass Write Exclusive;
	 * PTPL_A. */
	d[3] = 0x80 | (3 << 4) | (pr->path && pr->aptpl ? 0x01 : 0);
	/* WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX; EX_AC_AR. */
	d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
	d[5] = 0x01;
	return d;
}

static uint8_t *
read_full_status(struct pr_state *pr, size_t *len)
{
	uint8_t *d;
	size_t o = 8;

	*len = 8;
	for (size_t i = 0; i < pr->nregs; i++)
		*len += 24 + tid_build(NULL, &pr->regs[i]);
	d = calloc(1, *len);
	if (!d)
		return NULL;
	put_be32(d, pr->generation);
	put_be32(d + 4, (uint32_t)(*len - 8));
	for (size_t i = 0; i < pr->nregs; i++) {
		const struct pr_reg *r = &pr->regs[i];
		uint32_t n;

		put_be64(d + o, r->key);
		d[o + 12] = (r->all_tg_pt ? 0x02 : 0) |
			    (pr_is_holder(pr, r) ? 0x01 : 0);
		if (pr_is_holder(pr, r))
			d[o + 13] = pr->type;
		put_be16(d + o + 18, PR_RTPI);
		n = tid_build(d + o + 24, r);
		put_be32(d + o + 20, n);
		o += 24 + n;
	}
	return d;
}

int
spc_pr_in(struct scsi_cmd *cmd)
{
	const uint8_t *c = cmd->cdb;
	uint32_t alloc = get_be16(c + 7);
	struct lun *l = cmd->lun;
	uint8_t *d;
	size_t len;
	int r;

	pthread_mutex_lock(&l->pr_lock);
	switch (c[1] & 0x1f) {
	case PRIN_READ_KEYS:
		d = read_keys(l->pr, &len);
		break;
	case PRIN_READ_RESERVATION:
		d = read_reservation(l->pr, &len);
		break;
	case PRIN_REPORT_CAPABILITIES:
		d = report_capabilities(l->pr, &len);
		break;
	case PRIN_READ_FULL_STATUS:
		d = read_full_status(l->pr, &len);
		break;
	default:
		pthread_mutex_unlock(&l->pr_lock);
		scsi_invalid_field(cmd, 1, 4);
		return SCSI_DONE;
	}
	pthread_mutex_unlock(&l->pr_lock);
	if (!d) {
		scsi_set_errno(cmd, ENOMEM, false);
		return SCSI_DONE;
	}
	r = spc_put_data(cmd, d, (uint32_t)len, alloc);
	free(d);
	return r;
}
