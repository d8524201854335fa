/* metrics.h: the numbers behind `iscsi-gw status` and the Prometheus
 * endpoint that the LUN counters (lunmap.h stat_*) and the session
 * counters (iscsi.h) do not already hold: per-LUN IO latency histograms
 * and the command and byte totals of initiators whose sessions are gone.
 * Rendering them is control.c's business.
 *
 * Threads: a histogram is written where a SCSI read or write completes
 * (sbc-io.c, the loop thread) and read by the renderer (the loop thread);
 * its counters are atomics all the same, so a second loop thread would
 * need no lock.  The initiator table is loop-thread only.
 *
 *   sbc-io.c sbc_submit: start = metrics_now_ns()
 *   sbc-io.c io_done: metrics_observe(&lun->metrics.read, now - start)
 *   control.c: buckets summed into cumulative le="..." lines
 */
#ifndef IGW_METRICS_H
#define IGW_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the latency buckets, in nanoseconds: 50us .. 10s.
 * An observation above the last goes to the +Inf bucket. */
#define METRICS_NBUCKETS 17
extern const uint64_t metrics_bucket_ns[METRICS_NBUCKETS];
/* The same bounds as Prometheus "le" label values ("5e-05", ...). */
extern const char *const metrics_bucket_le[METRICS_NBUCKETS];

/* One latency histogram.  bucket[i] counts observations in
 * (bound[i-1], bound[i]] (not cumulative); bucket[METRICS_NBUCKETS] is
 * the overflow.  Atomic. */
struct lat_hist {
	uint64_t bucket[METRICS_NBUCKETS + 1];
	uint64_t sum_ns;
};

/* In struct lun; zeroed with it. */
struct lun_metrics {
	struct lat_hist read, write;
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t metrics_now_ns(void);
/* Count one IO of ns nanoseconds.  Any thread. */
void metrics_observe(struct lat_hist *h, uint64_t ns);

/* Totals of the sessions of one initiator name that have ended (loop
 * thread).  The table holds at most METRICS_MAX_INITIATORS names; the
 * rest are summed under the name "(other)". */
#define METRICS_MAX_INITIATORS 1024
struct initiator_totals {
	char name[224];
	uint64_t commands, read_bytes, write_bytes;
};
/* A session of this initiator ended: fold its counters in. */
void metrics_initiator_retire(const char *initiator, uint64_t commands,
			      uint64_t read_bytes, uint64_t write_bytes);
/* The table, in order of first appearance; *n is set to its length. */
const struct initiator_totals *metrics_initiators(size_t *n);
void metrics_initiators_free(void);

#endif
