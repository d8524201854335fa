/* lunmap.h: targets and their LUN tables, built from a conf.  Owns LUN
 * objects (the backend handle, geometry, identity, the WCE state) and their
 * reference counts.  Built and torn down on the main thread, which is the
 * network loop's: only that thread reads or changes the target and LUN
 * tables, and a reload (reload.c) swaps them there.  Other threads (IO
 * workers, the FUSE view) only use LUNs they hold a reference on; a LUN's
 * mutable fields name their lock.
 */
#ifndef IGW_LUNMAP_H
#define IGW_LUNMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "conf/conf.h"
#include "metrics.h"

struct backend;

struct lun {
	unsigned id;			/* LUN number 0..16383 */
	/* Stable per target, never reused (target->next_slot): indexes the
	 * nexus UA bits and the session's images, which a reload must not
	 * shift.  Bounds-check it against those tables: they grow lazily. */
	unsigned slot;
	struct target *target;
	const struct conf_lun *conf;	/* its map entry (confs outlive LUNs);
					 * NULL for an initiator's image */
	/* Users that outlive a reload's switch (commands, FUSE files, image
	 * provisioning): atomic, lun_get/lun_put.  A LUN the map no longer
	 * lists is retired (loop thread) and freed once this is 0. */
	unsigned refs;
	bool retired;			/* loop thread */
	struct lun *retired_next;	/* reload.c's list, loop thread */
	struct backend *be;		/* NULL for a per-initiator template */
	char *pointer;			/* JSON pointer, for log lines */
	/* Per-initiator images (images.c): a template has pi set and no
	 * backend; each initiator's instance is a LUN of its own with the
	 * same id and slot, tmpl pointing back and initiator its owner. */
	const struct conf_pi *pi;
	struct lun *tmpl;
	char *initiator;
	/* Geometry and identity: read-only once initialised. */
	uint32_t block_size;
	uint32_t block_shift;
	uint64_t nblocks;
	bool read_only;
	bool thin;
	bool removable;		/* RMB: START STOP UNIT loads, ejects */
	char serial[65];
	uint64_t naa;			/* NAA 3 designator, stable */
	/* Current caching-page WCE and control-page SWP bits: atomic,
	 * changed by MODE SELECT. */
	int wce;
	int swp;
	/* SANITIZE in progress (scsi/sanitize.c): atomic.  While set, commands
	 * but INQUIRY, REPORT LUNS and REQUEST SENSE end with NOT READY,
	 * SANITIZE IN PROGRESS; progress is 0 to 65535. */
	int sanitizing;
	unsigned sanitize_progress;
	/* The last SANITIZE failed (atomic): SANITIZE_FAILED_RESTRICTED
	 * (it had AUSE 0) or _UNRESTRICTED (AUSE 1), else 0.  Medium
	 * access commands then end with MEDIUM ERROR, SANITIZE COMMAND
	 * FAILED until a sanitize succeeds or, when unrestricted, EXIT
	 * FAILURE MODE (SBC-4 §4.11).  Not kept across a restart. */
	int sanitize_failed;
	struct mode_save *ms;		/* scsi/mode-save.c; NULL: none */
	/* A removable LUN's medium was ejected (START STOP UNIT, scsi/
	 * medium.c): atomic; set only under scsi/cmd.c's nexus list lock,
	 * where the prevent bits of every nexus are checked.  While set,
	 * medium access commands end with NOT READY, MEDIUM NOT PRESENT. */
	int medium_out;
	/* Reads and writes hold it shared; COMPARE AND WRITE, ORWRITE and
	 * WRITE ATOMIC exclusive, so that each is atomic against every
	 * other read and write (scsi/sbc-io.c). */
	pthread_rwlock_t write_lock;
	/* LOGICAL UNIT RESETs and target resets of this LUN, atomic: an
	 * EXTENDED COPY that reads or writes it stops when it changes
	 * (scsi/xcopy.c). */
	unsigned reset_gen;
	/* Reservations (scsi/pr.c, scsi/pr.h): pr_lock guards *pr. */
	pthread_mutex_t pr_lock;
	struct pr_state *pr;
	/* IO workers this LUN holds, and its commands waiting for one
	 * (scsi/sbc-io.c): a LUN whose backend hangs never takes every
	 * worker from the others.  q_lock guards them. */
	pthread_mutex_t q_lock;
	unsigned q_inflight;
	struct io_job *q_head, *q_tail;
	/* IO counters, atomic. */
	uint64_t stat_reads, stat_writes, stat_read_bytes, stat_write_bytes;
	uint64_t stat_errors;
	/* Reads and writes that went the backend's async way (libaio), how
	 * many are in flight, and the most ever in flight at once: loop
	 * thread writes, status reads (atomic). */
	uint64_t stat_async;
	unsigned async_inflight, async_peak;
	struct lun_metrics metrics;	/* latency histograms, atomic */
};

struct target {
	char *name;
	char *alias;
	/* CHAP identities from the conf, which outlives the map. */
	const struct conf_chap *chap, *mutual_chap;
	char **acl;
	size_t nacl;
	/* Address filter from the conf, which outlives the map: NULL
	 * admits every address. */
	const struct conf_net *nets;
	size_t nnets;
	uint16_t tpgt;
	struct lun **luns;		/* sorted by id */
	size_t nluns;
	size_t npi;			/* how many are per-initiator templates */
	unsigned next_slot;		/* the next LUN's slot */
	bool removed;			/* a reload dropped it: loop thread */
	struct target *retired_next;	/* reload.c's list, loop thread */
};

struct lunmap {
	struct target **targets;
	size_t ntargets;
	char *state_dir;		/* NULL when the map has none */
};

/* Open every backend of c.  On error logs it, returns NULL. */
struct lunmap *lunmap_new(const struct conf *c);
void lunmap_free(struct lunmap *m);
struct target *lunmap_find_target(struct lunmap *m, const char *name);
struct lun *target_find_lun(struct target *t, unsigned id);
bool target_allows(const struct target *t, const char *initiator);
/* Open a per-initiator instance of template tmpl: backend type and keys
 * as a conf would give them.  Any thread.  NULL on error, with the cause
 * in backend_last_error() (or errno). */
struct lun *lun_instance_new(struct lun *tmpl, const char *initiator,
			     const char *type, const struct conf_kv *keys,
			     size_t nkeys);
void lun_free(struct lun *l);
/* Open the LUN of map entry cl on target t (reservations restored from
 * state_dir).  Loop thread.  NULL after logging the error, which names
 * cl->pointer; the cause stays in backend_last_error() (or errno). */
struct lun *lunmap_lun_new(struct target *t, const struct conf_lun *cl,
			   const char *state_dir);
/* A target of ct with no LUNs yet.  NULL + errno. */
struct target *target_new(const struct conf_target *ct);
/* Set t's alias, acl and CHAP pointers (into ct's conf) from ct.  -1 when
 * out of memory, t unchanged. */
int target_apply_conf(struct target *t, const struct conf_target *ct);
/* Free t and its LUN array, not the LUNs. */
void target_free(struct target *t);

/* References on a LUN: any thread. */
static inline void
lun_get(struct lun *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_ACQ_REL);
}

static inline void
lun_put(struct lun *l)
{
	__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL);
}

/* "TARGET LUN" from the control socket: ask the LUN's backend its size
 * again (an LV was extended, a file grown) and, if it changed, serve the
 * new capacity with a CAPACITY DATA HAS CHANGED unit attention on every
 * nexus.  Returns the JSON answer (malloc'd).  Loop thread. */
char *lunmap_rescan_request(struct lunmap *m, const char *args);

#endif
