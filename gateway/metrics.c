/* metrics.c: see metrics.h.  Latency histograms (atomic counters, any
 * thread) and the table of ended sessions' totals by initiator name (loop
 * thread).  The table is bounded: without an acl anyone may log in under
 * any name, and each name must not cost memory for ever.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "metrics.h"

const uint64_t metrics_bucket_ns[METRICS_NBUCKETS] = {
	50000, 100000, 250000, 500000,				/* us */
	1000000, 2500000, 5000000, 10000000, 25000000,		/* ms */
	50000000, 100000000, 250000000, 500000000,
	1000000000, 2500000000, 5000000000, 10000000000,	/* s */
};

const char *const metrics_bucket_le[METRICS_NBUCKETS] = {
	"5e-05", "0.0001", "0.00025", "0.0005",
	"0.001", "0.0025", "0.005", "0.01", "0.025",
	"0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10",
};

uint64_t
metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
metrics_observe(struct lat_hist *h, uint64_t ns)
{
	size_t i = 0;

	while (i < METRICS_NBUCKETS && ns > metrics_bucket_ns[i])
		i++;
	__atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

/* Loop thread only. */
static struct initiator_totals *retired;
static size_t nretired, capretired;

void
metrics_initiator_retire(const char *initiator, uint64_t commands,
			 uint64_t read_bytes, uint64_t write_bytes)
{
	struct initiator_totals *t = NULL;

	/* iSCSI names compare case-insensitively (RFC 7143 §4.2.7.1). */
	for (size_t i = 0; i < nretired && !t; i++)
		if (!strcasecmp(retired[i].name, initiator))
			t = &retired[i];
	if (!t && nretired >= METRICS_MAX_INITIATORS) {
		/* Full: the one slot past the limit is "(other)". */
		if (nretired > METRICS_MAX_INITIATORS)
			t = &retired[METRICS_MAX_INITIATORS];
		else
			initiator = "(other)";
	}
	if (!t) {
		if (nretired == capretired) {
			size_t cap = capretired ? 2 * capretired : 16;
			struct initiator_totals *n;

			/* One slot more than the limit, for "(other)". */
			if (cap > METRICS_MAX_INITIATORS + 1)
				cap = METRICS_MAX_INITIATORS + 1;
			n = realloc(retired, cap * sizeof *n);
			if (!n)
				return;	/* the totals lose this session */
			retired = n;
			capretired = cap;
		}
		t = &retired[nretired++];
		memset(t, 0, sizeof *t);
		snprintf(t->name, sizeof t->name, "%s", initiator);
	}
	t->commands += commands;
	t->read_bytes += read_bytes;
	t->write_bytes += write_bytes;
}

const struct initiator_totals *
metrics_initiators(size_t *n)
{
	*n = nretired;
	return retired;
}

void
metrics_initiators_free(void)
{
	free(retired);
	retired = NULL;
	nretired = capretired = 0;
}
