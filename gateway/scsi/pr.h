/* pr.h: reservations (SPC-4 §5.13).  Owns the per-LUN reservation state:
 * persistent reservation registrations and the persistent reservation
 * (PERSISTENT RESERVE IN/OUT), the SPC-2 RESERVE/RELEASE reservation and
 * the conflict check every command goes through (scsi_cmd_exec).  pr.c has
 * the check, RESERVE/RELEASE and PERSISTENT RESERVE IN, pr-out.c
 * PERSISTENT RESERVE OUT, pr-file.c the APTPL state file in state_dir
 * (written on the IO worker pool).  Runs on the loop thread; the state is
 * guarded by lun->pr_lock.
 *
 *   struct lun
 *     pr_lock ---------------- guards everything in *pr but save_*
 *     pr --> struct pr_state
 *              regs[]          registrations, in registration order
 *              type            persistent reservation type, 0: none
 *              regs[i].holder  the holder (not used by all-registrants types,
 *                              where every registrant holds it)
 *              spc2            the nexus holding an SPC-2 reservation
 *              path            pr-<hash>-<lun> in state_dir, NULL: no APTPL
 *
 * Registrations belong to I_T nexus identities (initiator name, ISID and
 * the target's one target port), not to live nexus objects: they outlive
 * the session (SPC-4 §5.13.1).  An SPC-2 reservation belongs to the live
 * nexus and ends with it.
 */
#ifndef IGW_SCSI_PR_H
#define IGW_SCSI_PR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "scsi.h"

struct lun;
struct scsi_cmd;
struct scsi_nexus;
struct scsi_op;
struct target;

/* The most registrations a LUN keeps (INSUFFICIENT REGISTRATION
 * RESOURCES beyond). */
#define PR_MAX_REGS 1024

struct pr_reg {
	uint64_t key;
	char initiator[224];
	uint8_t isid[6];
	bool any_isid;		/* TransportID format 00h: every ISID */
	bool all_tg_pt;		/* registered with ALL_TG_PT */
	bool holder;		/* holds a non-all-registrants reservation */
};

struct pr_state {
	struct pr_reg *regs;	/* pr_lock */
	size_t nregs, cap;
	uint32_t generation;	/* PRgeneration, 0 at start (SPC-4 §6.15.2) */
	uint8_t type;		/* 0: no persistent reservation */
	bool aptpl;		/* last APTPL received */
	struct scsi_nexus *spc2;	/* SPC-2 RESERVE holder, NULL: none */
	int active;		/* atomic: type || spc2, the lock-free
				 * fast path of pr_conflict */
	uint64_t save_seq;	/* pr_lock: states handed to the writer */
	/* Read-only once initialised. */
	char *path;		/* APTPL state file, NULL without state_dir */
	char *dir;
	/* The writer (IO workers): save_lock. */
	pthread_mutex_t save_lock;
	uint64_t saved_seq;	/* newest state on disk */
};

/* Persistent reservation types (SPC-4 §6.15.3.4). */
#define PR_WE 0x1
#define PR_EA 0x3
#define PR_WE_RO 0x5
#define PR_EA_RO 0x6
#define PR_WE_AR 0x7
#define PR_EA_AR 0x8

/* Every target has one target port: relative port 1 in the Device
 * Identification VPD page. */
#define PR_RTPI 1

/* lunmap.c, main thread: set up l->pr_lock and l->pr, restoring the
 * state saved with APTPL in state_dir (NULL: no persistence).  Returns 0,
 * or -1 with the error logged (an unreadable state file stops start-up:
 * starting without the reservations could let the wrong host write). */
int pr_lun_init(struct lun *l, const char *state_dir);
void pr_lun_free(struct lun *l);

/* cmd.c: true if cmd conflicts with a reservation held through another
 * I_T nexus (SPC-4 table 65, SBC-4 table 13); the status is then set. */
bool pr_conflict(struct scsi_cmd *cmd, const struct scsi_op *op);
/* cmd.c: I_T nexus loss ends the SPC-2 reservation n holds. */
void pr_nexus_gone(struct scsi_nexus *n);
/* cmd.c: a LOGICAL UNIT RESET (l) or target reset (l NULL) ends the SPC-2
 * reservations of t's LUNs; persistent ones stay (SPC-4 §5.13.1). */
void pr_reset(struct target *t, struct lun *l);

/* ---- Internal to pr.c, pr-out.c and pr-file.c: pr_lock held. ---- */

static inline bool
pr_type_valid(unsigned t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO ||
	       t == PR_WE_AR || t == PR_EA_AR;
}

static inline bool
pr_type_all_reg(unsigned t)
{
	return t == PR_WE_AR || t == PR_EA_AR;
}

/* Registrants only or all registrants: every registrant may access. */
static inline bool
pr_type_rr(unsigned t)
{
	return t == PR_WE_RO || t == PR_EA_RO || pr_type_all_reg(t);
}

static inline bool
pr_type_write_excl(unsigned t)
{
	return t == PR_WE || t == PR_WE_RO || t == PR_WE_AR;
}

/* pr.c */
/* The registration of nexus n (NULL: none). */
struct pr_reg *pr_reg_of(struct pr_state *pr, const struct scsi_nexus *n);
/* The registration for exactly identity id. */
struct pr_reg *pr_reg_find(struct pr_state *pr, const struct pr_reg *id);
bool pr_same_id(const struct pr_reg *a, const struct pr_reg *b);
/* Does a registration cover a nexus that identity id names? */
bool pr_id_registered(struct pr_state *pr, const struct pr_reg *id);
bool pr_is_holder(const struct pr_state *pr, const struct pr_reg *r);
struct pr_reg *pr_holder_of(struct pr_state *pr);
/* Room for more registrations (false: INSUFFICIENT REGISTRATION
 * RESOURCES); pointers into regs are stale after it. */
bool pr_reg_reserve(struct pr_state *pr, size_t more);
struct pr_reg *pr_reg_add(struct pr_state *pr, const struct pr_reg *id,
			  uint64_t key, bool all_tg_pt);
void pr_reg_remove(struct pr_state *pr, size_t i);
void pr_resv_release(struct pr_state *pr);
/* Release a reservation whose holders are all gone. */
void pr_resv_settle(struct pr_state *pr);
void pr_active_update(struct pr_state *pr);
/* Unit attention for the nexuses of r / of every registrant, but except. */
void pr_ua_reg(struct lun *l, const struct pr_reg *r,
	       const struct scsi_nexus *except, enum scsi_ua ua);
void pr_ua_registrants(struct lun *l, struct pr_state *pr,
		       const struct scsi_nexus *except, enum scsi_ua ua);
void pr_set_conflict(struct scsi_cmd *cmd);
int pr_hexval(int ch);
/* Parse an iSCSI TransportID (len bytes left) into id: its length, or 0
 * with *bad the offset of the offending byte. */
uint32_t pr_tid_parse(const uint8_t *p, uint32_t len, struct pr_reg *id,
		      uint32_t *bad);

/* pr-file.c */
/* The state file text (NULL: out of memory). */
char *pr_state_text(const struct lun *l, size_t *len);
/* Write text (NULL: remove the file, APTPL went off) on the IO workers,
 * then complete cmd: returns SCSI_ASYNC, or SCSI_DONE with the sense set.
 * Takes text. */
int pr_save(struct scsi_cmd *cmd, struct pr_state *pr, char *text,
	    size_t len, uint64_t seq);

#endif
