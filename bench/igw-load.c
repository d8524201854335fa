/* igw-load.c: an iSCSI load generator for benchmarking iscsi-gw (or any
 * other target) with libiscsi's asynchronous API.
 *
 *   igw-load [options] iscsi://HOST:PORT/TARGET/LUN
 *
 * N sessions, each its own libiscsi context and TCP connection, are driven
 * from one thread with poll() over all the contexts' descriptors.  Every
 * session keeps exactly --qd READ(16)/WRITE(16) commands in flight: each
 * completion issues the next command from its callback.
 *
 * The LUN range (--range, default the whole LUN) is cut into units of
 * --bs bytes; an I/O covers one unit (the prefill, --fill and read-back
 * passes cover several consecutive units at once).  With --verify every
 * logical block written carries a pattern made of its LBA and a generation
 * number, the generation of each unit is tracked, and every read is
 * checked against it.  No two commands in flight ever touch the same unit
 * while --verify is on, so the expected content is always known.
 *
 * Latencies are recorded in log-linear histograms (128 linear buckets per
 * power of two: under 0.8% error), one per direction.
 *
 * Exit status: 0 success, 1 a SCSI/transport error or a verification
 * failure, 2 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define PROG "igw-load"
#define DEFAULT_INITIATOR "iqn.2026-11.org.example:igw-load"
#define GEN_UNKNOWN UINT32_MAX
#define PATTERN_MAGIC 0x49474c44u	/* "IGLD" */
#define FILL_CHUNK (1u << 20)		/* prefill/read-back I/O size */
#define FILL_BUFFERS 16			/* big buffers over all sessions */
#define MAX_ERR_MSGS 10
#define MAX_VERIFY_MSGS 10

/* ---------------------------------------------------------------- */
/* Latency histogram: values in ns.  Below 256 one bucket per value; above,
 * 128 buckets per power of two. */

#define H_SUB_BITS 7
#define H_SUB (1u << H_SUB_BITS)
#define H_LINEAR (2 * H_SUB)
#define H_BUCKETS (H_LINEAR + (63 - H_SUB_BITS) * H_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t b[H_BUCKETS];
};

static unsigned
hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < H_LINEAR)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);	/* >= H_SUB_BITS + 1 */
	shift = e - H_SUB_BITS;
	return H_LINEAR + (e - H_SUB_BITS - 1) * H_SUB +
	       (unsigned)((v >> shift) - H_SUB);
}

/* The middle of a bucket. */
static uint64_t
hist_value(unsigned i)
{
	unsigned e, shift;
	uint64_t lo;

	if (i < H_LINEAR)
		return i;
	e = (i - H_LINEAR) / H_SUB + H_SUB_BITS + 1;
	shift = e - H_SUB_BITS;
	lo = ((uint64_t)(H_SUB + (i - H_LINEAR) % H_SUB)) << shift;
	return lo + (((uint64_t)1 << shift) - 1) / 2;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->b[hist_index(v)]++;
}

static void
hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (unsigned i = 0; i < H_BUCKETS; i++)
		dst->b[i] += src->b[i];
}

/* The value at percentile p (0..100), ns. */
static uint64_t
hist_pct(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

/* ---------------------------------------------------------------- */
/* Random numbers: splitmix64 to seed, xoshiro256** to draw. */

struct rng {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* Uniform in [0, n). */
static uint64_t
rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* ---------------------------------------------------------------- */
/* The data pattern of one logical block: word 0 the LBA, word 1 the magic
 * and the generation, then a stream seeded by both. */

static uint64_t
pattern_seed(uint64_t lba, uint32_t gen)
{
	uint64_t x = lba * 0x9e3779b97f4a7c15ULL ^
		     ((uint64_t)gen << 32 | PATTERN_MAGIC);

	return splitmix64(&x);
}

static void
pattern_fill(uint8_t *buf, uint64_t lba, uint32_t nblocks, uint32_t lbs,
	     uint32_t gen)
{
	for (uint32_t b = 0; b < nblocks; b++, lba++) {
		uint64_t *w = (uint64_t *)(buf + (size_t)b * lbs);
		uint64_t x = pattern_seed(lba, gen);

		w[0] = lba;
		w[1] = (uint64_t)PATTERN_MAGIC << 32 | gen;
		for (uint32_t i = 2; i < lbs / 8; i++)
			w[i] = splitmix64(&x);
	}
}

/* Check nblocks blocks; returns the index of the first bad block, or -1.
 * *why describes the mismatch. */
static long
pattern_check(const uint8_t *buf, uint64_t lba, uint32_t nblocks,
	      uint32_t lbs, uint32_t gen, char *why, size_t whylen)
{
	for (uint32_t b = 0; b < nblocks; b++, lba++) {
		const uint64_t *w = (const uint64_t *)(buf + (size_t)b * lbs);
		uint64_t x = pattern_seed(lba, gen);
		uint64_t want1 = (uint64_t)PATTERN_MAGIC << 32 | gen;

		if (w[0] != lba || w[1] != want1) {
			if ((w[1] >> 32) == PATTERN_MAGIC)
				snprintf(why, whylen,
					 "LBA %" PRIu64 ": header says LBA %" PRIu64
					 " generation %" PRIu32 ", expected generation %" PRIu32,
					 lba, w[0], (uint32_t)w[1], gen);
			else
				snprintf(why, whylen,
					 "LBA %" PRIu64 ": no pattern header (words %016" PRIx64
					 " %016" PRIx64 "), expected generation %" PRIu32,
					 lba, w[0], w[1], gen);
			return b;
		}
		for (uint32_t i = 2; i < lbs / 8; i++) {
			if (w[i] != splitmix64(&x)) {
				snprintf(why, whylen,
					 "LBA %" PRIu64 " generation %" PRIu32
					 ": header good, data differs at byte %u",
					 lba, gen, i * 8);
				return b;
			}
		}
	}
	return -1;
}

/* ---------------------------------------------------------------- */

enum phase { PH_FILL, PH_RUN, PH_READBACK };
enum rw { RW_READ, RW_WRITE, RW_MIX };
enum next { NEXT_OK, NEXT_DONE, NEXT_BUSY };

struct sess;

struct slot {
	struct sess *s;
	uint8_t *buf;
	size_t bufsize;
	bool inflight;
	bool write;
	bool measured;
	uint32_t wgen;		/* generation a write carries */
	uint64_t unit;		/* first unit */
	uint32_t nunits;
	uint64_t t0;		/* submission, ns */
};

struct sess {
	int idx;
	struct iscsi_context *iscsi;
	int lun;
	bool dead;
	struct slot *slots;
	int inflight;
	int slots_idle;		/* idle but wanting work (NEXT_BUSY) */
	struct rng rng;
	uint64_t seq_start, seq_end, seq_next;	/* units: this session's slice */
};

struct phase_stats {
	uint64_t ios, bytes;
	uint64_t t_start, t_end;
};

static struct {
	/* options */
	const char *url;
	const char *initiator;
	bool pattern_rand;
	enum rw rw;
	unsigned read_pct;
	uint64_t bs;
	unsigned qd;
	unsigned nsess;
	uint64_t ios_limit;		/* 0: none */
	double seconds;			/* 0: none */
	double warmup;
	uint64_t range;			/* bytes, 0: whole LUN */
	bool verify, fill, prefilled, json;
	uint32_t gen_base;
	uint64_t seed;
	long target_pid;		/* 0: none */
	int timeout;

	/* the LUN */
	uint32_t lbs;			/* logical block size */
	uint64_t lun_blocks;
	uint64_t nunits;
	uint32_t unit_blocks;
	uint32_t chunk_units;		/* units per fill/read-back I/O */
	unsigned fill_slots;		/* slots per session with a big buffer */

	/* verification state */
	uint32_t *gen;			/* per unit, GEN_UNKNOWN when unknown */
	uint8_t *busy;			/* per unit: a command is in flight */

	struct sess *sess;
	int inflight;			/* over all sessions */
	enum phase phase;
	uint64_t cursor;		/* fill/read-back: next unit */
	uint64_t t_measure;		/* run: measurement starts, ns */
	uint64_t deadline;		/* run: no new I/O from here, ns */
	uint64_t measured_issued;
	uint64_t t_last;		/* last measured completion */

	struct hist hr, hw;		/* run phase, measured */
	uint64_t rbytes, wbytes;
	struct phase_stats fillst, backst;
	uint64_t errors, verify_fail, verified_units;
	unsigned err_msgs, verify_msgs;
	bool fatal;

	/* CPU time over the measured window */
	bool cpu_started;
	double cpu_u0, cpu_s0, cpu_u1, cpu_s1;
	bool have_tcpu;
	double tcpu0, tcpu1;
} g;

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void __attribute__((format(printf, 1, 2)))
warnx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* "4k", "256K", "1M", "1GiB", "512" -> bytes (binary multiples). */
static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B") ||
		      !strcmp(end, "ib") || !strcmp(end, "b")))
		end += strlen(end);
	else if (!shift && (!strcmp(end, "B") || !strcmp(end, "b")))
		end++;
	if (*end)
		return -1;
	if (shift && v > (ULLONG_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static uint64_t
parse_u64_opt(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		die("--%s: '%s' is not a number in [%" PRIu64 ", %" PRIu64 "]",
		    opt, s, lo, hi);
	return v;
}

static double
parse_secs_opt(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e7)
		die("--%s: '%s' is not a number of seconds", opt, s);
	return v;
}

/* ---------------------------------------------------------------- */
/* The target process's CPU time, from /proc/PID/stat (ticks). */

static int
proc_cpu(long pid, double *secs)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	*secs = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static void
rusage_secs(double *u, double *s)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*u = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
cpu_mark_start(void)
{
	g.cpu_started = true;
	if (g.target_pid)
		g.have_tcpu = proc_cpu(g.target_pid, &g.tcpu0) == 0;
	rusage_secs(&g.cpu_u0, &g.cpu_s0);
}

static void
cpu_mark_end(void)
{
	if (!g.cpu_started)
		return;
	rusage_secs(&g.cpu_u1, &g.cpu_s1);
	if (g.have_tcpu)
		g.have_tcpu = proc_cpu(g.target_pid, &g.tcpu1) == 0;
}

/* ---------------------------------------------------------------- */
/* Units and verification bookkeeping. */

static void
units_lock(uint64_t u, uint32_t n, bool on)
{
	if (!g.busy)
		return;
	for (uint32_t i = 0; i < n; i++)
		g.busy[u + i] = on;
}

static bool
units_free(uint64_t u, uint32_t n)
{
	if (!g.busy)
		return true;
	for (uint32_t i = 0; i < n; i++)
		if (g.busy[u + i])
			return false;
	return true;
}

/* Choose the next command of the current phase for slot sl. */
static enum next
next_io(struct sess *s, struct slot *sl, uint64_t now)
{
	uint64_t u;

	if (g.fatal || interrupted)
		return NEXT_DONE;
	if (g.phase != PH_RUN) {
		uint32_t n;

		if (sl - s->slots >= (long)g.fill_slots)
			return NEXT_DONE;	/* small buffer */
		if (g.phase == PH_READBACK) {
			/* Skip chunks with nothing known to check. */
			while (g.cursor < g.nunits) {
				uint64_t e = g.cursor + g.chunk_units;
				bool any = false;

				if (e > g.nunits)
					e = g.nunits;
				for (uint64_t i = g.cursor; i < e && !any; i++)
					any = g.gen[i] != GEN_UNKNOWN;
				if (any)
					break;
				g.cursor = e;
			}
		}
		if (g.cursor >= g.nunits)
			return NEXT_DONE;
		n = g.chunk_units;
		if (g.nunits - g.cursor < n)
			n = (uint32_t)(g.nunits - g.cursor);
		sl->unit = g.cursor;
		sl->nunits = n;
		sl->write = g.phase == PH_FILL;
		sl->wgen = g.gen_base;
		sl->measured = false;
		g.cursor += n;
		units_lock(sl->unit, n, true);
		return NEXT_OK;
	}

	/* The measured run. */
	if (g.seconds > 0 && now >= g.deadline)
		return NEXT_DONE;
	if (g.ios_limit && now >= g.t_measure &&
	    g.measured_issued >= g.ios_limit)
		return NEXT_DONE;
	if (g.pattern_rand) {
		int tries = 0;

		do {
			u = rng_below(&s->rng, g.nunits);
		} while (!units_free(u, 1) && ++tries < 64);
		if (tries == 64)
			return NEXT_BUSY;
	} else {
		uint64_t len = s->seq_end - s->seq_start, tries = 0;

		do {
			u = s->seq_next++;
			if (s->seq_next >= s->seq_end)
				s->seq_next = s->seq_start;
		} while (!units_free(u, 1) && ++tries < len);
		if (tries == len)
			return NEXT_BUSY;
	}
	sl->unit = u;
	sl->nunits = 1;
	switch (g.rw) {
	case RW_READ:
		sl->write = false;
		break;
	case RW_WRITE:
		sl->write = true;
		break;
	default:
		sl->write = rng_below(&s->rng, 100) >= g.read_pct;
		break;
	}
	if (sl->write && g.gen) {
		uint32_t cur = g.gen[u];

		sl->wgen = cur == GEN_UNKNOWN ? g.gen_base + 1 : cur + 1;
		if (sl->wgen == GEN_UNKNOWN)
			sl->wgen = 0;
	}
	sl->measured = now >= g.t_measure;
	if (sl->measured)
		g.measured_issued++;
	units_lock(u, 1, true);
	return NEXT_OK;
}

static void io_done(struct iscsi_context *iscsi, int status,
		    void *command_data, void *private_data);

static void
report_error(struct slot *sl, int status, struct scsi_task *task)
{
	char what[256];

	g.errors++;
	if (g.err_msgs++ >= MAX_ERR_MSGS) {
		if (g.err_msgs == MAX_ERR_MSGS + 1)
			warnx("more errors: not shown");
		return;
	}
	if (status == SCSI_STATUS_CHECK_CONDITION && task)
		snprintf(what, sizeof what, "CHECK CONDITION %s (0x%x) %s (0x%04x)",
			 scsi_sense_key_str(task->sense.key), task->sense.key,
			 scsi_sense_ascq_str(task->sense.ascq), task->sense.ascq);
	else if (status == SCSI_STATUS_CANCELLED)
		snprintf(what, sizeof what, "cancelled: %s",
			 iscsi_get_error(sl->s->iscsi));
	else if (status == SCSI_STATUS_TIMEOUT)
		snprintf(what, sizeof what, "timed out");
	else
		snprintf(what, sizeof what, "status 0x%x: %s", (unsigned)status,
			 iscsi_get_error(sl->s->iscsi));
	warnx("session %d: %s(16) LBA %" PRIu64 " blocks %" PRIu64 ": %s",
	      sl->s->idx, sl->write ? "WRITE" : "READ",
	      sl->unit * g.unit_blocks, (uint64_t)sl->nunits * g.unit_blocks,
	      what);
}

/* Issue the slot's next command; leaves it idle when there is none. */
static void
slot_issue(struct slot *sl)
{
	struct sess *s = sl->s;
	struct scsi_task *task;
	uint64_t now = now_ns();
	uint64_t lba;
	uint32_t len;

	if (s->dead || sl->inflight)
		return;
	switch (next_io(s, sl, now)) {
	case NEXT_DONE:
		return;
	case NEXT_BUSY:
		s->slots_idle++;
		return;
	case NEXT_OK:
		break;
	}
	lba = sl->unit * g.unit_blocks;
	len = (uint32_t)(sl->nunits * g.bs);
	if (sl->write) {
		if (g.verify || g.fill)
			pattern_fill(sl->buf, lba, len / g.lbs, g.lbs, sl->wgen);
		task = iscsi_write16_task(s->iscsi, s->lun, lba, sl->buf, len,
					  (int)g.lbs, 0, 0, 0, 0, 0, io_done, sl);
	} else {
		task = iscsi_read16_task(s->iscsi, s->lun, lba, len, (int)g.lbs,
					 0, 0, 0, 0, 0, io_done, sl);
		if (task && scsi_task_add_data_in_buffer(task, (int)len,
							 sl->buf) != 0) {
			/* Too late to take it back: let it read into
			 * libiscsi's buffer; io_done copes. */
			warnx("scsi_task_add_data_in_buffer failed");
		}
	}
	if (!task) {
		warnx("session %d: cannot queue command: %s", s->idx,
		      iscsi_get_error(s->iscsi));
		units_lock(sl->unit, sl->nunits, false);
		g.errors++;
		g.fatal = true;
		return;
	}
	sl->t0 = now;
	sl->inflight = true;
	s->inflight++;
	g.inflight++;
}

static void
verify_read(struct slot *sl, const uint8_t *data)
{
	char why[256];

	for (uint32_t i = 0; i < sl->nunits; i++) {
		uint64_t u = sl->unit + i;
		uint32_t want = g.gen[u];
		long bad;

		if (want == GEN_UNKNOWN)
			continue;
		g.verified_units++;
		bad = pattern_check(data + (size_t)i * g.bs,
				    u * g.unit_blocks, g.unit_blocks, g.lbs,
				    want, why, sizeof why);
		if (bad < 0)
			continue;
		g.verify_fail++;
		if (g.verify_msgs++ < MAX_VERIFY_MSGS)
			warnx("verify failure (session %d, %s): %s",
			      sl->s->idx,
			      g.phase == PH_RUN ? "run" : g.phase == PH_FILL ?
			      "prefill" : "read-back", why);
		else if (g.verify_msgs == MAX_VERIFY_MSGS + 1)
			warnx("more verify failures: not shown");
	}
}

static void
io_done(struct iscsi_context *iscsi, int status, void *command_data,
	void *private_data)
{
	struct scsi_task *task = command_data;
	struct slot *sl = private_data;
	struct sess *s = sl->s;
	uint64_t now = now_ns(), lat;
	uint64_t bytes = (uint64_t)sl->nunits * g.bs;

	(void)iscsi;
	if (!sl->inflight) {
		/* Abandoned with a dead session. */
		if (task)
			scsi_free_scsi_task(task);
		return;
	}
	lat = now - sl->t0;
	sl->inflight = false;
	s->inflight--;
	g.inflight--;

	if (status != SCSI_STATUS_GOOD) {
		report_error(sl, status, task);
		if (sl->write && g.gen)
			for (uint32_t i = 0; i < sl->nunits; i++)
				g.gen[sl->unit + i] = GEN_UNKNOWN;
	} else if (sl->write) {
		if (g.gen)
			for (uint32_t i = 0; i < sl->nunits; i++)
				g.gen[sl->unit + i] = sl->wgen;
	} else if (g.gen) {
		const uint8_t *data = sl->buf;

		if (task && task->datain.data && task->datain.size >= (int)bytes)
			data = task->datain.data;	/* not our buffer */
		verify_read(sl, data);
	}
	units_lock(sl->unit, sl->nunits, false);
	if (task)
		scsi_free_scsi_task(task);

	if (g.phase == PH_RUN) {
		if (sl->measured && status == SCSI_STATUS_GOOD &&
		    (g.seconds <= 0 || now <= g.deadline)) {
			if (sl->write) {
				hist_add(&g.hw, lat);
				g.wbytes += bytes;
			} else {
				hist_add(&g.hr, lat);
				g.rbytes += bytes;
			}
			g.t_last = now;
		}
	} else {
		struct phase_stats *ps = g.phase == PH_FILL ? &g.fillst : &g.backst;

		if (status == SCSI_STATUS_GOOD) {
			ps->ios++;
			ps->bytes += bytes;
		}
		ps->t_end = now;
	}
	slot_issue(sl);
	/* A unit this command held may be what an idle slot waits for. */
	if (g.busy) {
		for (unsigned i = 0; i < g.nsess; i++) {
			struct sess *o = &g.sess[i];

			if (!o->slots_idle)
				continue;
			o->slots_idle = 0;
			for (unsigned j = 0; j < g.qd; j++)
				slot_issue(&o->slots[j]);
		}
	}
}

/* A session's connection failed: what it had in flight is lost. */
static void
sess_kill(struct sess *s, const char *why)
{
	warnx("session %d: %s: %s", s->idx, why, iscsi_get_error(s->iscsi));
	s->dead = true;
	g.fatal = true;
	for (unsigned j = 0; j < g.qd; j++) {
		struct slot *sl = &s->slots[j];

		if (!sl->inflight)
			continue;
		sl->inflight = false;
		units_lock(sl->unit, sl->nunits, false);
		if (sl->write && g.gen)
			for (uint32_t i = 0; i < sl->nunits; i++)
				g.gen[sl->unit + i] = GEN_UNKNOWN;
		g.errors++;
		s->inflight--;
		g.inflight--;
	}
}

/* Run one phase to its end: start every slot, then poll until nothing is
 * in flight. */
static void
run_phase(enum phase ph)
{
	struct pollfd *pfd = calloc(g.nsess, sizeof *pfd);
	int *map = calloc(g.nsess, sizeof *map);
	uint64_t last_tick = now_ns(), drain_start = 0;

	if (!pfd || !map)
		die("out of memory");
	g.phase = ph;
	g.cursor = 0;
	if (ph == PH_RUN) {
		uint64_t t = now_ns();

		g.t_measure = t + (uint64_t)(g.warmup * 1e9);
		g.deadline = g.seconds > 0 ?
			     g.t_measure + (uint64_t)(g.seconds * 1e9) : UINT64_MAX;
		g.t_last = g.t_measure;
		if (g.warmup <= 0)
			cpu_mark_start();
	} else {
		struct phase_stats *ps = ph == PH_FILL ? &g.fillst : &g.backst;

		ps->t_start = ps->t_end = now_ns();
	}
	for (unsigned i = 0; i < g.nsess; i++) {
		g.sess[i].slots_idle = 0;
		for (unsigned j = 0; j < g.qd; j++)
			slot_issue(&g.sess[i].slots[j]);
	}
	while (g.inflight > 0) {
		int n = 0, r;
		uint64_t now;

		for (unsigned i = 0; i < g.nsess; i++) {
			struct sess *s = &g.sess[i];
			int ev;

			if (s->dead)
				continue;
			ev = iscsi_which_events(s->iscsi);
			/* Send what the callbacks queued without a poll
			 * round trip: the socket is almost always
			 * writable. */
			if (ev & POLLOUT) {
				if (iscsi_service(s->iscsi, POLLOUT) < 0) {
					sess_kill(s, "send failed");
					continue;
				}
				ev = iscsi_which_events(s->iscsi);
			}
			if (s->inflight == 0 && !(ev & POLLOUT))
				continue;
			pfd[n].fd = iscsi_get_fd(s->iscsi);
			pfd[n].events = (short)ev;
			pfd[n].revents = 0;
			map[n++] = (int)i;
		}
		if (g.inflight == 0)
			break;
		r = poll(pfd, (nfds_t)n, 100);
		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (int k = 0; r > 0 && k < n; k++) {
			struct sess *s = &g.sess[map[k]];

			if (!pfd[k].revents || s->dead)
				continue;
			if (iscsi_service(s->iscsi, pfd[k].revents) < 0)
				sess_kill(s, "connection failed");
		}
		now = now_ns();
		if (ph == PH_RUN && !g.cpu_started && now >= g.t_measure)
			cpu_mark_start();
		if (now - last_tick >= 1000000000ULL) {
			/* libiscsi's timeouts are scanned from here. */
			last_tick = now;
			for (unsigned i = 0; i < g.nsess; i++)
				if (!g.sess[i].dead &&
				    iscsi_service(g.sess[i].iscsi, 0) < 0)
					sess_kill(&g.sess[i], "connection failed");
		}
		if (interrupted && !drain_start)
			drain_start = now;
		if (drain_start && now - drain_start > 60000000000ULL) {
			warnx("%d commands still in flight 60 s after the stop: giving up",
			      g.inflight);
			g.errors += (uint64_t)g.inflight;
			g.fatal = true;
			break;
		}
	}
	free(pfd);
	free(map);
}

/* ---------------------------------------------------------------- */

static int
sess_open(struct sess *s, int idx, uint32_t isid_rnd)
{
	struct iscsi_url *url;

	s->idx = idx;
	s->iscsi = iscsi_create_context(g.initiator);
	if (!s->iscsi) {
		warnx("iscsi_create_context failed");
		return -1;
	}
	/* Distinct ISIDs: with one initiator name, equal ISIDs would make
	 * each login reinstate (and so end) the previous session. */
	iscsi_set_isid_random(s->iscsi, isid_rnd, (uint32_t)idx);
	url = iscsi_parse_full_url(s->iscsi, g.url);
	if (!url) {
		warnx("bad URL '%s': %s", g.url, iscsi_get_error(s->iscsi));
		return -1;
	}
	iscsi_set_targetname(s->iscsi, url->target);
	iscsi_set_session_type(s->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(s->iscsi, ISCSI_HEADER_DIGEST_NONE);
	iscsi_set_noautoreconnect(s->iscsi, 1);
	if (g.timeout)
		iscsi_set_timeout(s->iscsi, g.timeout);
	if (url->user[0])
		iscsi_set_initiator_username_pwd(s->iscsi, url->user,
						 url->passwd);
	if (iscsi_full_connect_sync(s->iscsi, url->portal, url->lun) != 0) {
		warnx("session %d: login to %s on %s failed: %s", idx,
		      url->target, url->portal, iscsi_get_error(s->iscsi));
		iscsi_destroy_url(url);
		return -1;
	}
	s->lun = url->lun;
	iscsi_destroy_url(url);
	return 0;
}

static int
read_capacity(struct sess *s)
{
	struct scsi_task *task = iscsi_readcapacity16_sync(s->iscsi, s->lun);
	struct scsi_readcapacity16 *rc;

	if (!task || task->status != SCSI_STATUS_GOOD) {
		warnx("READ CAPACITY(16) failed: %s", iscsi_get_error(s->iscsi));
		if (task)
			scsi_free_scsi_task(task);
		return -1;
	}
	rc = scsi_datain_unmarshall(task);
	if (!rc) {
		warnx("cannot decode READ CAPACITY(16) data");
		scsi_free_scsi_task(task);
		return -1;
	}
	g.lbs = rc->block_length;
	g.lun_blocks = rc->returned_lba + 1;
	scsi_free_scsi_task(task);
	if (g.lbs < 16 || g.lbs % 8) {
		warnx("unsupported logical block size %u", g.lbs);
		return -1;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [options] iscsi://HOST[:PORT]/TARGET/LUN\n"
"  --pattern seq|rand     access pattern (default rand)\n"
"  --rw read|write|mix    direction (default read)\n"
"  --read-pct N           reads in percent for --rw mix (default 70)\n"
"  --bs SIZE              I/O size, a multiple of the block size (default 4k)\n"
"  --qd N                 commands in flight per session (default 32)\n"
"  --sessions N           sessions, each its own connection (default 1)\n"
"  --ios N                measured I/Os to issue\n"
"  --seconds S            measured run time (default 10 unless --ios)\n"
"  --warmup S             unmeasured I/O before the run (default 0)\n"
"  --range SIZE           use the first SIZE bytes of the LUN (default all)\n"
"  --verify               write a checkable pattern, check every read\n"
"  --fill                 write the pattern over the range and exit\n"
"  --prefilled            --verify: the range holds what --fill wrote\n"
"  --gen N                generation --fill writes / --prefilled expects (0)\n"
"  --seed N               random seed (default 1)\n"
"  --initiator NAME       initiator name (default " DEFAULT_INITIATOR ")\n"
"  --target-pid PID       also report that process's CPU time per I/O\n"
"  --timeout S            fail a command after S seconds (default 30, 0 none)\n"
"  --json                 one JSON object on stdout\n"
"  --help\n");
}

static void
parse_args(int argc, char **argv)
{
	enum { O_PATTERN = 256, O_RW, O_READ_PCT, O_BS, O_QD, O_SESSIONS,
	       O_IOS, O_SECONDS, O_WARMUP, O_RANGE, O_VERIFY, O_FILL,
	       O_PREFILLED, O_GEN, O_SEED, O_INITIATOR, O_JSON, O_TPID,
	       O_TIMEOUT, O_HELP };
	static const struct option opts[] = {
		{ "pattern", required_argument, NULL, O_PATTERN },
		{ "rw", required_argument, NULL, O_RW },
		{ "read-pct", required_argument, NULL, O_READ_PCT },
		{ "bs", required_argument, NULL, O_BS },
		{ "qd", required_argument, NULL, O_QD },
		{ "sessions", required_argument, NULL, O_SESSIONS },
		{ "ios", required_argument, NULL, O_IOS },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "range", required_argument, NULL, O_RANGE },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "fill", no_argument, NULL, O_FILL },
		{ "prefilled", no_argument, NULL, O_PREFILLED },
		{ "gen", required_argument, NULL, O_GEN },
		{ "seed", required_argument, NULL, O_SEED },
		{ "initiator", required_argument, NULL, O_INITIATOR },
		{ "json", no_argument, NULL, O_JSON },
		{ "target-pid", required_argument, NULL, O_TPID },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 }
	};
	bool have_seconds = false;
	int c;

	g.initiator = DEFAULT_INITIATOR;
	g.pattern_rand = true;
	g.rw = RW_READ;
	g.read_pct = 70;
	g.bs = 4096;
	g.qd = 32;
	g.nsess = 1;
	g.seed = 1;
	g.timeout = 30;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_PATTERN:
			if (!strcmp(optarg, "rand") || !strcmp(optarg, "random"))
				g.pattern_rand = true;
			else if (!strcmp(optarg, "seq") ||
				 !strcmp(optarg, "sequential"))
				g.pattern_rand = false;
			else
				die("--pattern: '%s' is not seq or rand", optarg);
			break;
		case O_RW:
			if (!strcmp(optarg, "read"))
				g.rw = RW_READ;
			else if (!strcmp(optarg, "write"))
				g.rw = RW_WRITE;
			else if (!strcmp(optarg, "mix"))
				g.rw = RW_MIX;
			else
				die("--rw: '%s' is not read, write or mix", optarg);
			break;
		case O_READ_PCT:
			g.read_pct = (unsigned)parse_u64_opt("read-pct", optarg, 0, 100);
			break;
		case O_BS:
			if (parse_size(optarg, &g.bs) < 0 || g.bs == 0 ||
			    g.bs > (32u << 20))
				die("--bs: '%s' is not a size from 1 byte to 32M", optarg);
			break;
		case O_QD:
			g.qd = (unsigned)parse_u64_opt("qd", optarg, 1, 4096);
			break;
		case O_SESSIONS:
			g.nsess = (unsigned)parse_u64_opt("sessions", optarg, 1, 1024);
			break;
		case O_IOS:
			g.ios_limit = parse_u64_opt("ios", optarg, 1, UINT64_MAX);
			break;
		case O_SECONDS:
			g.seconds = parse_secs_opt("seconds", optarg);
			have_seconds = true;
			break;
		case O_WARMUP:
			g.warmup = parse_secs_opt("warmup", optarg);
			break;
		case O_RANGE:
			if (parse_size(optarg, &g.range) < 0 || g.range == 0)
				die("--range: '%s' is not a size such as 64M", optarg);
			break;
		case O_VERIFY:
			g.verify = true;
			break;
		case O_FILL:
			g.fill = true;
			break;
		case O_PREFILLED:
			g.prefilled = true;
			break;
		case O_GEN:
			g.gen_base = (uint32_t)parse_u64_opt("gen", optarg, 0,
							     UINT32_MAX - 1);
			break;
		case O_SEED:
			g.seed = parse_u64_opt("seed", optarg, 0, UINT64_MAX);
			break;
		case O_INITIATOR:
			if (!*optarg)
				die("--initiator: empty name");
			g.initiator = optarg;
			break;
		case O_JSON:
			g.json = true;
			break;
		case O_TPID:
			g.target_pid = (long)parse_u64_opt("target-pid", optarg, 1,
							   INT_MAX);
			break;
		case O_TIMEOUT:
			g.timeout = (int)parse_u64_opt("timeout", optarg, 0, 3600);
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	g.url = argv[optind];
	if (!have_seconds && !g.ios_limit)
		g.seconds = 10;
	if (have_seconds && g.seconds <= 0 && !g.ios_limit)
		die("--seconds 0 needs --ios");
	if (g.prefilled && !g.verify)
		die("--prefilled only makes sense with --verify");
	if (g.prefilled && g.fill)
		die("--prefilled and --fill exclude each other");
}

/* ---------------------------------------------------------------- */
/* Output */

struct opsum {
	uint64_t ios, bytes;
	double iops, mib_s;
	const struct hist *h;
};

static void
opsum_make(struct opsum *o, const struct hist *h, uint64_t bytes, double secs)
{
	o->h = h;
	o->ios = h->count;
	o->bytes = bytes;
	o->iops = secs > 0 ? (double)h->count / secs : 0;
	o->mib_s = secs > 0 ? (double)bytes / secs / 1048576.0 : 0;
}

static double
us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void
json_lat(FILE *f, const struct hist *h)
{
	fprintf(f, "{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
		"\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f}",
		us(h->min), h->count ? us(h->sum / h->count) : 0.0,
		us(hist_pct(h, 50)), us(hist_pct(h, 90)), us(hist_pct(h, 99)),
		us(hist_pct(h, 99.9)), us(h->max));
}

static void
json_op(FILE *f, const char *name, const struct opsum *o)
{
	fprintf(f, "\"%s\":{\"ios\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"iops\":%.1f,\"mib_s\":%.2f,\"lat_us\":",
		name, o->ios, o->bytes, o->iops, o->mib_s);
	json_lat(f, o->h);
	fputc('}', f);
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void
text_lat(FILE *f, const char *label, const struct opsum *o)
{
	const struct hist *h = o->h;

	fprintf(f, "  %-6s %10" PRIu64 " ios %11.1f IOPS %9.2f MiB/s  lat us: "
		"min %.1f mean %.1f p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
		label, o->ios, o->iops, o->mib_s, us(h->min),
		h->count ? us(h->sum / h->count) : 0.0, us(hist_pct(h, 50)),
		us(hist_pct(h, 99)), us(hist_pct(h, 99.9)), us(h->max));
}

static const char *
rw_name(void)
{
	return g.rw == RW_READ ? "read" : g.rw == RW_WRITE ? "write" : "mix";
}

static void
report(double secs)
{
	static struct hist all;
	double cpu_user = g.cpu_u1 - g.cpu_u0, cpu_sys = g.cpu_s1 - g.cpu_s0;
	bool have_tcpu = g.have_tcpu;
	double tcpu = g.tcpu1 - g.tcpu0;
	struct opsum ot, orr, ow;
	bool ran = !g.fill;
	double fill_s = (double)(g.fillst.t_end - g.fillst.t_start) / 1e9;
	double back_s = (double)(g.backst.t_end - g.backst.t_start) / 1e9;
	uint64_t ios;

	hist_merge(&all, &g.hr);
	hist_merge(&all, &g.hw);
	opsum_make(&ot, &all, g.rbytes + g.wbytes, secs);
	opsum_make(&orr, &g.hr, g.rbytes, secs);
	opsum_make(&ow, &g.hw, g.wbytes, secs);
	ios = ran ? ot.ios : g.fillst.ios;

	if (g.json) {
		FILE *f = stdout;

		fprintf(f, "{\"url\":");
		json_str(f, g.url);
		fprintf(f, ",\"mode\":\"%s\",\"pattern\":\"%s\",\"rw\":\"%s\","
			"\"read_pct\":%u,\"bs\":%" PRIu64 ",\"qd\":%u,"
			"\"sessions\":%u,\"block_size\":%u,\"range_bytes\":%" PRIu64
			",\"warmup_s\":%.3f,\"seconds\":%.3f,\"verify\":%s",
			g.fill ? "fill" : "run",
			g.fill || !g.pattern_rand ? "seq" : "rand",
			g.fill ? "write" : rw_name(),
			g.fill ? 0 : g.rw == RW_MIX ? g.read_pct :
			g.rw == RW_READ ? 100 : 0,
			g.bs, g.qd, g.nsess, g.lbs, g.nunits * g.bs, g.warmup,
			secs, g.verify ? "true" : "false");
		if (ran) {
			fprintf(f, ",\"ios\":%" PRIu64 ",\"iops\":%.1f,\"mib_s\":%.2f,"
				"\"lat_us\":", ot.ios, ot.iops, ot.mib_s);
			json_lat(f, &all);
			fputc(',', f);
			json_op(f, "read", &orr);
			fputc(',', f);
			json_op(f, "write", &ow);
		}
		if (g.fillst.t_start)
			fprintf(f, ",\"%s\":{\"ios\":%" PRIu64 ",\"bytes\":%" PRIu64
				",\"seconds\":%.3f}", g.fill ? "fill" : "prefill",
				g.fillst.ios, g.fillst.bytes, fill_s);
		if (g.backst.t_start)
			fprintf(f, ",\"readback\":{\"ios\":%" PRIu64 ",\"bytes\":%" PRIu64
				",\"seconds\":%.3f}", g.backst.ios, g.backst.bytes,
				back_s);
		fprintf(f, ",\"errors\":%" PRIu64 ",\"verify_failures\":%" PRIu64
			",\"verified_units\":%" PRIu64, g.errors, g.verify_fail,
			g.verified_units);
		fprintf(f, ",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,"
			"\"us_per_io\":%.2f}", cpu_user, cpu_sys,
			ios ? (cpu_user + cpu_sys) * 1e6 / (double)ios : 0.0);
		if (have_tcpu)
			fprintf(f, ",\"target_cpu\":{\"pid\":%ld,\"seconds\":%.2f,"
				"\"us_per_io\":%.2f}", g.target_pid, tcpu,
				ios ? tcpu * 1e6 / (double)ios : 0.0);
		fprintf(f, ",\"interrupted\":%s}\n",
			interrupted ? "true" : "false");
		return;
	}

	printf("%s: %s\n", PROG, g.url);
	printf("  %s %s bs=%" PRIu64 " qd=%u sessions=%u range=%.1f MiB "
	       "block=%u%s%s\n",
	       g.fill ? "seq" : g.pattern_rand ? "rand" : "seq",
	       g.fill ? "fill" : rw_name(),
	       g.bs, g.qd, g.nsess, (double)(g.nunits * g.bs) / 1048576.0,
	       g.lbs, g.verify ? " verify" : "",
	       interrupted ? " (interrupted)" : "");
	if (g.fillst.t_start)
		printf("  %s: %" PRIu64 " ios, %.1f MiB in %.2f s (%.1f MiB/s)\n",
		       g.fill ? "fill" : "prefill", g.fillst.ios,
		       (double)g.fillst.bytes / 1048576.0, fill_s,
		       fill_s > 0 ? (double)g.fillst.bytes / 1048576.0 / fill_s : 0);
	if (ran) {
		printf("  time %.2f s%s\n", secs,
		       g.warmup > 0 ? " (after warmup)" : "");
		text_lat(stdout, "total", &ot);
		if (g.rw == RW_MIX) {
			text_lat(stdout, "read", &orr);
			text_lat(stdout, "write", &ow);
		}
	}
	if (g.backst.t_start)
		printf("  read-back: %" PRIu64 " ios, %.1f MiB in %.2f s\n",
		       g.backst.ios, (double)g.backst.bytes / 1048576.0, back_s);
	printf("  errors %" PRIu64 "  verify failures %" PRIu64, g.errors,
	       g.verify_fail);
	if (g.verify)
		printf(" (%" PRIu64 " units checked)", g.verified_units);
	printf("\n  cpu (" PROG ") %.2f s user %.2f s sys, %.2f us/io\n",
	       cpu_user, cpu_sys,
	       ios ? (cpu_user + cpu_sys) * 1e6 / (double)ios : 0.0);
	if (have_tcpu)
		printf("  cpu (target pid %ld) %.2f s, %.2f us/io\n",
		       g.target_pid, tcpu, ios ? tcpu * 1e6 / (double)ios : 0.0);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	uint32_t isid_rnd;
	uint64_t range_bytes;
	size_t big;
	double secs = 0;
	int rc;

	parse_args(argc, argv);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	g.sess = calloc(g.nsess, sizeof *g.sess);
	if (!g.sess)
		die("out of memory");
	{
		uint64_t x = (uint64_t)getpid() << 32 ^ now_ns();
		isid_rnd = (uint32_t)splitmix64(&x) & 0xffffff;
	}
	for (unsigned i = 0; i < g.nsess; i++)
		if (sess_open(&g.sess[i], (int)i, isid_rnd) < 0)
			exit(2);
	if (read_capacity(&g.sess[0]) < 0)
		exit(2);

	/* Geometry. */
	if (g.bs % g.lbs)
		die("--bs %" PRIu64 " is not a multiple of the block size %u",
		    g.bs, g.lbs);
	range_bytes = g.lun_blocks * g.lbs;
	if (g.range) {
		if (g.range > range_bytes)
			die("--range %" PRIu64 " is larger than the LUN (%" PRIu64
			    " bytes)", g.range, range_bytes);
		range_bytes = g.range;
	}
	g.nunits = range_bytes / g.bs;
	g.unit_blocks = (uint32_t)(g.bs / g.lbs);
	if (g.nunits == 0)
		die("the range (%" PRIu64 " bytes) is smaller than --bs", range_bytes);
	g.chunk_units = g.bs >= FILL_CHUNK ? 1 : (uint32_t)(FILL_CHUNK / g.bs);
	g.fill_slots = FILL_BUFFERS / g.nsess;
	if (g.fill_slots < 1)
		g.fill_slots = 1;
	if (g.fill_slots > g.qd)
		g.fill_slots = g.qd;
	if (g.verify || g.fill) {
		if (g.nunits > (1ULL << 30))
			die("--verify tracks every unit: %" PRIu64 " units is too "
			    "many, use a smaller --range or a larger --bs", g.nunits);
		g.gen = malloc(g.nunits * sizeof *g.gen);
		g.busy = calloc(g.nunits, 1);
		if (!g.gen || !g.busy)
			die("out of memory for %" PRIu64 " units", g.nunits);
		for (uint64_t i = 0; i < g.nunits; i++)
			g.gen[i] = g.prefilled ? g.gen_base : GEN_UNKNOWN;
	}
	if (g.verify && !g.fill &&
	    g.nunits < 2ULL * g.qd * g.nsess)
		die("--verify needs at least 2 x qd x sessions = %llu units of "
		    "--bs in the range, there are %" PRIu64,
		    2ULL * g.qd * g.nsess, g.nunits);

	/* Buffers and per-session streams. */
	big = (size_t)g.chunk_units * g.bs;
	for (unsigned i = 0; i < g.nsess; i++) {
		struct sess *s = &g.sess[i];

		s->slots = calloc(g.qd, sizeof *s->slots);
		if (!s->slots)
			die("out of memory");
		rng_seed(&s->rng, g.seed * 0x100000001b3ULL + i);
		s->seq_start = g.nunits * i / g.nsess;
		s->seq_end = g.nunits * (i + 1) / g.nsess;
		if (s->seq_end == s->seq_start) {
			s->seq_start = 0;	/* more sessions than units */
			s->seq_end = g.nunits;
		}
		s->seq_next = s->seq_start;
		for (unsigned j = 0; j < g.qd; j++) {
			struct slot *sl = &s->slots[j];
			bool fillbuf = (g.verify || g.fill) && j < g.fill_slots;

			sl->s = s;
			sl->bufsize = fillbuf && big > g.bs ? big : g.bs;
			if (posix_memalign((void **)&sl->buf, 4096, sl->bufsize))
				die("out of memory for buffers");
			if (!g.verify && !g.fill) {
				/* Incompressible, never checked. */
				uint64_t x = g.seed + i * 1000003ULL + j;
				for (size_t k = 0; k + 8 <= sl->bufsize; k += 8) {
					uint64_t v = splitmix64(&x);
					memcpy(sl->buf + k, &v, 8);
				}
			}
		}
	}

	if (g.fill) {
		cpu_mark_start();
		run_phase(PH_FILL);
		cpu_mark_end();
		secs = (double)(g.fillst.t_end - g.fillst.t_start) / 1e9;
		if (g.verify && !g.fatal && !interrupted)
			run_phase(PH_READBACK);
	} else {
		bool reads = g.rw != RW_WRITE;
		bool by_time;

		if (g.verify && reads && !g.prefilled)
			run_phase(PH_FILL);
		if (!g.fatal && !interrupted)
			run_phase(PH_RUN);
		cpu_mark_end();
		/* Ended by the clock: the window is exactly --seconds. */
		by_time = g.seconds > 0 && !interrupted && !g.fatal &&
			  !(g.ios_limit && g.measured_issued >= g.ios_limit);
		if (by_time)
			secs = g.seconds;
		else if (g.t_last > g.t_measure)
			secs = (double)(g.t_last - g.t_measure) / 1e9;
		if (g.verify && g.rw != RW_READ && !g.fatal && !interrupted)
			run_phase(PH_READBACK);
	}
	if (g.target_pid && !g.have_tcpu)
		warnx("cannot read /proc/%ld/stat", g.target_pid);

	report(secs);

	for (unsigned i = 0; i < g.nsess; i++) {
		struct sess *s = &g.sess[i];

		if (!s->dead)
			iscsi_logout_sync(s->iscsi);
		iscsi_destroy_context(s->iscsi);
		for (unsigned j = 0; j < g.qd; j++)
			free(s->slots[j].buf);
		free(s->slots);
	}
	free(g.sess);
	free(g.gen);
	free(g.busy);
	rc = g.errors || g.verify_fail || g.fatal ? 1 : 0;
	return rc;
}
