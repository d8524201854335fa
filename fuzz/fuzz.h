/* fuzz.h: helpers shared by the libFuzzer targets in fuzz/ (the targets
 * are not product code; fuzz/build.sh builds them, t/fuzz.sh runs them).
 *
 * Each target includes this header once.  It owns: silencing the product's
 * log, loading a built-in map, aborting with a message when an invariant
 * fails (libFuzzer saves the input that got there), and putting mutable
 * LUN state back between inputs so that one input cannot change what the
 * next one sees (the fuzzer needs inputs to mean the same thing each run).
 */
#ifndef IGW_FUZZ_H
#define IGW_FUZZ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "log.h"
#include "lunmap.h"
/* Reservations, where this version has them: reset between inputs. */
#if defined(__has_include)
#if __has_include("scsi/pr.h")
#include "scsi/pr.h"
#define FUZZ_HAVE_PR 1
#endif
#endif

/* An invariant of ours failed: say which, then abort so libFuzzer keeps
 * the input as a crash. */
static void __attribute__((noreturn, format(printf, 1, 2)))
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	/* fd 2, not stderr: that FILE may be /dev/null (below). */
	dprintf(2, "fuzz invariant failed: ");
	va_start(ap, fmt);
	vdprintf(2, fmt, ap);
	va_end(ap);
	dprintf(2, "\n");
	abort();
}

#define FUZZ_ASSERT(cond, ...)                                                \
	do {                                                                  \
		if (!(cond))                                                  \
			fuzz_fail(__VA_ARGS__);                               \
	} while (0)

/* The product logs each refused login, bad PDU and bad map to stderr: at
 * thousands of inputs a second that is most of the run and buries
 * libFuzzer's own lines.  libFuzzer prints through the FILE pointer it
 * copied from stderr at start-up and the sanitizers write to fd 2
 * directly, so pointing the stderr variable (glibc lets it be assigned)
 * at /dev/null silences the product alone.  FUZZ_VERBOSE=1 keeps the
 * log, for reproducing a crash; FUZZ_DEBUG="iscsi.pdu=1,scsi=1" also
 * turns on those debug areas (as iscsi-gw -D does). */
static inline void
fuzz_quiet_logs(void)
{
	const char *v = getenv("FUZZ_VERBOSE");
	const char *dbg = getenv("FUZZ_DEBUG");
	FILE *f;

	if (dbg && *dbg) {
		char *copy = strdup(dbg), *save = NULL;

		for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t;
		     t = strtok_r(NULL, ", ", &save))
			if (log_set_debug_flag(t) < 0)
				fuzz_fail("FUZZ_DEBUG: bad flag '%s'", t);
		free(copy);
		v = "1";
	}
	if (v && *v && strcmp(v, "0"))
		return;
	f = fopen("/dev/null", "w");
	if (f)
		stderr = f;
}

/* Load a built-in map or give up: a target without its map tests nothing. */
static inline struct conf *
fuzz_load_map(const char *json, const char *label)
{
	char err[1024];
	struct conf *c = conf_load_string(json, NULL, label, err, sizeof err);

	if (!c) {
		fuzz_fail("%s: built-in map refused: %s", label, err);
	}
	return c;
}

/* Mutable LUN state an input may change (MODE SELECT sets WCE and SWP;
 * PERSISTENT RESERVE OUT registers and reserves): saved once after
 * lunmap_new, put back before each input.  Only for maps without a
 * state_dir, and with nothing in flight. */
struct fuzz_lun_state {
	struct lun *lun;
	int wce, swp;
};

#define FUZZ_MAX_LUNS 16

static struct fuzz_lun_state fuzz_luns[FUZZ_MAX_LUNS];
static size_t fuzz_nluns;

static inline void
fuzz_save_luns(struct lunmap *m)
{
	for (size_t t = 0; t < m->ntargets; t++)
		for (size_t i = 0; i < m->targets[t]->nluns; i++) {
			struct lun *l = m->targets[t]->luns[i];

			if (fuzz_nluns == FUZZ_MAX_LUNS)
				fuzz_fail("more than %d LUNs in the map",
					  FUZZ_MAX_LUNS);
			fuzz_luns[fuzz_nluns].lun = l;
			fuzz_luns[fuzz_nluns].wce = l->wce;
			fuzz_luns[fuzz_nluns].swp = l->swp;
			fuzz_nluns++;
		}
}

static inline void
fuzz_restore_luns(void)
{
	for (size_t i = 0; i < fuzz_nluns; i++) {
		__atomic_store_n(&fuzz_luns[i].lun->wce, fuzz_luns[i].wce,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&fuzz_luns[i].lun->swp, fuzz_luns[i].swp,
				 __ATOMIC_RELAXED);
#ifdef FUZZ_HAVE_PR
		/* No registrations, no reservation, as at start-up. */
		pr_lun_free(fuzz_luns[i].lun);
		if (pr_lun_init(fuzz_luns[i].lun, NULL) < 0)
			fuzz_fail("pr_lun_init failed");
#endif
	}
}

#endif
