/* lunmap.h: targets and their LUN tables, built from a conf.  Owns LUN
 * objects (the backend handle, geometry, identity, the WCE state) and their
 * reference counts.  Built and torn down on the main thread; once built the
 * map is read-only, and a LUN's mutable fields name their lock.
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
	unsigned index;			/* position in target->luns */
	struct target *target;
	struct backend *be;		/* NULL for a per-initiator template */
	char *pointer;			/* JSON pointer, for log lines */
	/* Per-initiator images (images.c): a template has pi set and no
	 * backend; each initiator's instance is a LUN of its own with the
	 * same id and index, tmpl pointing back and initiator its owner. */
	const struct conf_pi *pi;
	struct lun *tmpl;
	char *initiator;
	/* Geometry and identity: read-only once initialised. */
	uint32_t block_size;
	uint32_t block_shift;
	uint64_t nblocks;
	bool read_only;
	bool thin;
	char serial[65];
	uint64_t naa;			/* NAA 3 designator, stable */
	/* Current caching-page WCE and control-page SWP bits: atomic,
	 * changed by MODE SELECT. */
	int wce;
	int swp;
	/* Writes hold it shared, COMPARE AND WRITE exclusive, so the
	 * compare and the write are atomic against every other write. */
	pthread_rwlock_t write_lock;
	/* Reservations (scsi/pr.c, scsi/pr.h): pr_lock guards *pr. */
	pthread_mutex_t pr_lock;
	struct pr_state *pr;
	/* IO counters, atomic. */
	uint64_t stat_reads, stat_writes, stat_read_bytes, stat_write_bytes;
	uint64_t stat_errors;
	struct lun_metrics metrics;	/* latency histograms, atomic */
};

struct target {
	char *name;
	char *alias;
	/* CHAP identities from the conf, which outlives the map. */
	const struct conf_chap *chap, *mutual_chap;
	char **acl;
	size_t nacl;
	uint16_t tpgt;
	struct lun **luns;		/* sorted by id */
	size_t nluns;
	size_t npi;			/* how many are per-initiator templates */
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
/* "TARGET LUN" from the control socket: ask the LUN's backend its size
 * again (an LV was extended, a file grown) and, if it changed, serve the
 * new capacity with a CAPACITY DATA HAS CHANGED unit attention on every
 * nexus.  Returns the JSON answer (malloc'd).  Loop thread. */
char *lunmap_rescan_request(struct lunmap *m, const char *args);

#endif
