/* test-control.c: control-render.c and metrics.c with no socket: the
 * latency buckets' bounds, the initiator totals table and its limit, and
 * the status JSON and Prometheus exposition rendered from a hand-built LUN
 * map and session table, including initiator names that need escaping
 * (quotes, backslashes, invalid UTF-8).  The sockets themselves are
 * t/status.sh's. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "control.h"
#include "metrics.h"
#include "lunmap.h"
#include "iscsi/iscsi.h"

#define TNAME "iqn.2026-01.com.example:t0"

TEST(bucket_bounds)
{
	struct lat_hist h = { 0 };

	metrics_observe(&h, 0);
	metrics_observe(&h, 50000);		/* le 50us: inclusive */
	metrics_observe(&h, 50001);
	metrics_observe(&h, 10000000000ull);	/* le 10s */
	metrics_observe(&h, 10000000001ull);	/* +Inf */
	CHECK_EQ_UINT(h.bucket[0], 2);
	CHECK_EQ_UINT(h.bucket[1], 1);
	CHECK_EQ_UINT(h.bucket[METRICS_NBUCKETS - 1], 1);
	CHECK_EQ_UINT(h.bucket[METRICS_NBUCKETS], 1);
	CHECK_EQ_UINT(h.sum_ns, 50000 + 50001 + 10000000000ull +
		      10000000001ull);
	for (size_t i = 1; i < METRICS_NBUCKETS; i++)
		CHECK(metrics_bucket_ns[i] > metrics_bucket_ns[i - 1]);
	CHECK_EQ_STR(metrics_bucket_le[0], "5e-05");
	CHECK_EQ_STR(metrics_bucket_le[METRICS_NBUCKETS - 1], "10");
}

TEST(initiator_table)
{
	const struct initiator_totals *t;
	size_t n;
	char name[64];

	metrics_initiators_free();
	metrics_initiator_retire("iqn.2026-01.com.example:a", 1, 10, 100);
	metrics_initiator_retire("IQN.2026-01.com.example:A", 2, 20, 200);
	metrics_initiator_retire("iqn.2026-01.com.example:b", 5, 0, 0);
	t = metrics_initiators(&n);
	REQUIRE(n == 2);
	CHECK_EQ_STR(t[0].name, "iqn.2026-01.com.example:a");
	CHECK_EQ_UINT(t[0].commands, 3);
	CHECK_EQ_UINT(t[0].read_bytes, 30);
	CHECK_EQ_UINT(t[0].write_bytes, 300);
	CHECK_EQ_UINT(t[1].commands, 5);
	/* Past the limit every new name is summed as "(other)". */
	for (int i = 0; i < METRICS_MAX_INITIATORS + 10; i++) {
		snprintf(name, sizeof name, "iqn.2026-01.com.example:n%d", i);
		metrics_initiator_retire(name, 1, 0, 0);
	}
	t = metrics_initiators(&n);
	REQUIRE(n == METRICS_MAX_INITIATORS + 1);
	CHECK_EQ_STR(t[METRICS_MAX_INITIATORS].name, "(other)");
	CHECK_EQ_UINT(t[METRICS_MAX_INITIATORS].commands, 12);
	/* Known names still count under their own name. */
	metrics_initiator_retire("iqn.2026-01.com.example:b", 1, 0, 0);
	t = metrics_initiators(&n);
	CHECK_EQ_UINT(t[1].commands, 6);
	metrics_initiators_free();
	t = metrics_initiators(&n);
	CHECK_EQ_INT(n, 0);
}

/* One target, one LUN, two sessions: enough for both renderers. */
static struct lun lun0 = { .id = 0, .block_size = 512, .nblocks = 2048,
			   .stat_reads = 3, .stat_read_bytes = 1536 };
static struct lun *luns[] = { &lun0 };
static struct target tgt = { .name = (char *)TNAME, .luns = luns,
			     .nluns = 1 };
static struct target *tgts[] = { &tgt };
static struct lunmap map = { .targets = tgts, .ntargets = 1 };
static struct iscsi_conn conn_a = { .state = CONN_FFP, .peer = "1.2.3.4:5" };
static struct iscsi_conn conn_b = { .state = CONN_FFP, .peer = "1.2.3.4:6" };
static struct iscsi_session sess_b = {
	.conn = &conn_b, .target = &tgt, .tsih = 2,
	.initiator = "iqn.2026-01.com.example:bad\xff\xfe",
	.isid = { 0x80, 0, 0, 0, 0, 0x0b },
};
static struct iscsi_session sess_a = {
	.conn = &conn_a, .next = &sess_b, .target = &tgt, .tsih = 1,
	.initiator = "iqn.2026-01.com.example:q\"b\\s",
	.isid = { 0x80, 0, 0, 0, 0, 0x0a },
	.stat_commands = 7, .stat_read_bytes = 4096,
};

static void
fake_setup(void)
{
	static const char *portals[] = { "127.0.0.1:3260" };
	static struct conf c = { .portals = (char **)portals, .nportals = 1 };

	iscsi_g.conf = &c;
	iscsi_g.map = &map;
	iscsi_g.sessions = &sess_a;
	conn_a.sess = &sess_a;
	conn_b.sess = &sess_b;
	conn_a.next = &conn_b;
	iscsi_g.conns = &conn_a;
	memset(&lun0.metrics, 0, sizeof lun0.metrics);
	metrics_observe(&lun0.metrics.read, 30000);
	metrics_observe(&lun0.metrics.read, 2000000);
	metrics_observe(&lun0.metrics.read, 20000000000ull);
}

static void
fake_teardown(void)
{
	memset(&iscsi_g, 0, sizeof iscsi_g);
}

TEST(status_json)
{
	struct sbuf b = { 0 };
	json_t *root, *s;
	json_error_t je;

	fake_setup();
	control_render_status(&b, iscsi_g.conf, 42);
	REQUIRE(!b.oom && b.buf);
	CHECK(b.buf[b.len - 1] == '\n');
	root = json_loads(b.buf, 0, &je);
	REQUIRE(root != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(root, "uptime_seconds")), 42);
	s = json_object_get(root, "sessions");
	REQUIRE(json_array_size(s) == 2);
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(s, 0),
						       "initiator")),
		     "iqn.2026-01.com.example:q\"b\\s");
	/* Not UTF-8: escaped, but present. */
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(s, 1),
						       "initiator")),
		     "iqn.2026-01.com.example:bad\\xff\\xfe");
	for (size_t i = 0; i < 2; i++) {
		json_t *x = json_array_get(s, i);
		CHECK_EQ_STR(json_string_value(json_object_get(x, "target")),
			     TNAME);
		CHECK_EQ_STR(json_string_value(json_object_get(x, "type")),
			     "normal");
	}
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(s, 0),
						       "isid")),
		     "80000000000a");
	CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(s, 0),
							"commands")), 7);
	{
		json_t *l = json_array_get(json_object_get(json_array_get(
			json_object_get(root, "targets"), 0), "luns"), 0);
		CHECK_EQ_INT(json_integer_value(json_object_get(l, "reads")), 3);
		CHECK_EQ_INT(json_integer_value(json_object_get(l, "blocks")),
			     2048);
		CHECK(json_is_null(json_object_get(l, "backend")));
	}
	json_decref(root);
	free(b.buf);
	fake_teardown();
}

TEST(prometheus_exposition)
{
	struct sbuf b = { 0 };

	fake_setup();
	metrics_initiators_free();
	/* An ended session of a: its totals add to the live one's. */
	metrics_initiator_retire("iqn.2026-01.com.example:q\"b\\s", 1, 0, 8);
	control_render_metrics(&b, 5);
	REQUIRE(!b.oom && b.buf);
	CHECK_CONTAINS(b.buf, "# TYPE iscsi_gw_lun_io_latency_seconds histogram\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_reads_total{target=\"" TNAME
		       "\",lun=\"0\"} 3\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_read_bytes_total{target=\"" TNAME
		       "\",lun=\"0\"} 1536\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_bucket{target=\""
		       TNAME "\",lun=\"0\",op=\"read\",le=\"5e-05\"} 1\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_bucket{target=\""
		       TNAME "\",lun=\"0\",op=\"read\",le=\"0.0025\"} 2\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_bucket{target=\""
		       TNAME "\",lun=\"0\",op=\"read\",le=\"10\"} 2\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_bucket{target=\""
		       TNAME "\",lun=\"0\",op=\"read\",le=\"+Inf\"} 3\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_count{target=\""
		       TNAME "\",lun=\"0\",op=\"read\"} 3\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_sum{target=\""
		       TNAME "\",lun=\"0\",op=\"read\"} 20.002030000\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_lun_io_latency_seconds_count{target=\""
		       TNAME "\",lun=\"0\",op=\"write\"} 0\n");
	/* Label values: quote and backslash escaped; not UTF-8: as the
	 * log escapes it, its backslashes escaped in turn. */
	CHECK_CONTAINS(b.buf, "iscsi_gw_initiator_commands_total{initiator="
		       "\"iqn.2026-01.com.example:q\\\"b\\\\s\"} 8\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_initiator_write_bytes_total{initiator="
		       "\"iqn.2026-01.com.example:q\\\"b\\\\s\"} 8\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_initiator_commands_total{initiator="
		       "\"iqn.2026-01.com.example:bad\\\\xff\\\\xfe\"} 0\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_sessions 2\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_connections 2\n");
	CHECK_CONTAINS(b.buf, "iscsi_gw_uptime_seconds 5\n");
	CHECK(b.buf[b.len - 1] == '\n');
	free(b.buf);
	metrics_initiators_free();
	fake_teardown();
}

TEST(error_answer)
{
	struct sbuf b = { 0 };
	json_t *o;

	control_render_error(&b, "unknown request '%s'", "a\"b");
	REQUIRE(b.buf != NULL);
	o = json_loads(b.buf, 0, NULL);
	REQUIRE(o != NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(o, "error")),
		     "unknown request 'a\"b'");
	json_decref(o);
	free(b.buf);
}

TEST(sbuf_grows)
{
	struct sbuf b = { 0 };
	static char big[10000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sb_printf(&b, "%s", "abc");
	sb_append(&b, big, strlen(big));
	sb_printf(&b, "%s|%d", big, 7);
	REQUIRE(!b.oom);
	CHECK_EQ_UINT(b.len, 3 + 2 * strlen(big) + 2);
	CHECK(!memcmp(b.buf, "abcxxx", 6));
	CHECK_EQ_STR(b.buf + b.len - 2, "|7");
	free(b.buf);
}

int
main(int argc, char **argv)
{
	return harness_run(argc, argv);
}
