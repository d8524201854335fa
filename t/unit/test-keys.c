/* test-keys.c: iscsi/keys.c, text key parsing and the RFC 7143 key
 * negotiation table.  Every key of key_table is negotiated with its result
 * function (§6.2, §13) and the exact answer text is checked. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "iscsi/iscsi.h"
#include "conf/conf.h"
#include "util/util.h"

/* ---- iscsi_text_parse ---- */

/* Parse a literal (sizeof - 1 keeps its embedded NULs, drops the final
 * one) in a writable copy: the parser splits in place. */
static int
parse_lit(const char *lit, size_t len, struct iscsi_kv *kv, int max,
	  uint8_t *copy)
{
	memcpy(copy, lit, len);
	return iscsi_text_parse(copy, (uint32_t)len, kv, max);
}
#define PARSE(lit, kv, max, copy) parse_lit((lit), sizeof(lit) - 1, (kv), (max), (copy))

TEST(text_parse_valid)
{
	static const char text[] = "InitiatorName=iqn.2026-01.x:i\0"
				   "SessionType=Normal\0"
				   "Empty=\0"
				   "X-com.example+a@b_c.d=v=w\0";
	uint8_t buf[sizeof text];
	struct iscsi_kv kv[8];
	int n = PARSE(text, kv, 8, buf);

	REQUIRE(n == 4);
	CHECK_EQ_STR(kv[0].key, "InitiatorName");
	CHECK_EQ_STR(kv[0].value, "iqn.2026-01.x:i");
	CHECK_EQ_STR(kv[1].key, "SessionType");
	CHECK_EQ_STR(kv[1].value, "Normal");
	CHECK_EQ_STR(kv[2].key, "Empty");
	CHECK_EQ_STR(kv[2].value, "");
	/* Key names may use . - + @ _; the value keeps later '='. */
	CHECK_EQ_STR(kv[3].key, "X-com.example+a@b_c.d");
	CHECK_EQ_STR(kv[3].value, "v=w");
	/* Split in place: the pointers are into the buffer. */
	CHECK((uint8_t *)kv[0].key == buf);
	CHECK((uint8_t *)kv[0].value == buf + strlen("InitiatorName="));

	/* Nothing at all is no keys. */
	CHECK_EQ_INT(iscsi_text_parse(buf, 0, kv, 8), 0);
}

TEST(text_parse_padding)
{
	static const char text[] = "A=1\0B=2\0\0\0\0";
	uint8_t buf[sizeof text];
	struct iscsi_kv kv[4];

	CHECK_EQ_INT(PARSE(text, kv, 4, buf), 2);
	CHECK_EQ_STR(kv[1].key, "B");
	CHECK_EQ_STR(kv[1].value, "2");
	/* Only NULs. */
	CHECK_EQ_INT(PARSE("\0\0\0\0", kv, 4, buf), 0);
}

TEST(text_parse_errors)
{
	uint8_t buf[256];
	struct iscsi_kv kv[4];

	CHECK_EQ_INT(PARSE("NoEquals\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A=1\0NoEquals\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("=value\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A B=1\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A/B=1\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A:B=1\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A\nB=1\0", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("Caf\xc3\xa9=1\0", kv, 4, buf), -1);
	/* The last pair must end with a NUL. */
	CHECK_EQ_INT(PARSE("A=1\0B=2", kv, 4, buf), -1);
	CHECK_EQ_INT(PARSE("A=1", kv, 4, buf), -1);
}

TEST(text_parse_key_name_length)
{
	uint8_t buf[128];
	struct iscsi_kv kv[2];
	size_t n;

	/* 63 bytes: the longest key name (§6.1). */
	memset(buf, 'K', 63);
	memcpy(buf + 63, "=v", 3);
	n = 63 + 3;
	CHECK_EQ_INT(iscsi_text_parse(buf, (uint32_t)n, kv, 2), 1);
	CHECK_EQ_INT(strlen(kv[0].key), 63);
	CHECK_EQ_STR(kv[0].value, "v");
	/* 64 bytes: refused. */
	memset(buf, 'K', 64);
	memcpy(buf + 64, "=v", 3);
	n = 64 + 3;
	CHECK_EQ_INT(iscsi_text_parse(buf, (uint32_t)n, kv, 2), -1);
}

TEST(text_parse_value_length)
{
	/* 8192 bytes of value is the most any key may have. */
	size_t cap = 2 + 8193 + 1;
	uint8_t *buf = malloc(cap);
	struct iscsi_kv kv[2];

	REQUIRE(buf != NULL);
	memcpy(buf, "V=", 2);
	memset(buf + 2, 'x', 8192);
	buf[2 + 8192] = '\0';
	CHECK_EQ_INT(iscsi_text_parse(buf, 2 + 8192 + 1, kv, 2), 1);
	CHECK_EQ_INT(strlen(kv[0].value), 8192);
	memcpy(buf, "V=", 2);
	memset(buf + 2, 'x', 8193);
	buf[2 + 8193] = '\0';
	CHECK_EQ_INT(iscsi_text_parse(buf, 2 + 8193 + 1, kv, 2), -1);
	free(buf);
}

TEST(text_parse_max_keys)
{
	static const char text[] = "A=1\0B=2\0C=3\0";
	uint8_t buf[sizeof text];
	struct iscsi_kv kv[3];

	CHECK_EQ_INT(PARSE(text, kv, 3, buf), 3);
	CHECK_EQ_INT(PARSE(text, kv, 2, buf), -1);
	CHECK_EQ_INT(PARSE(text, kv, 0, buf), -1);
	/* Padding does not count as keys. */
	CHECK_EQ_INT(PARSE("A=1\0B=2\0\0\0", kv, 2, buf), 2);
}

/* ---- iscsi_parse_number ---- */

#define CHECK_NUM(s, want)                                                    \
	do {                                                                  \
		uint64_t v_ = 0xdead;                                         \
		CHECK_EQ_INT(iscsi_parse_number((s), &v_), 0);                \
		CHECK_EQ_UINT(v_, (want));                                    \
	} while (0)
#define CHECK_NUM_BAD(s)                                                      \
	do {                                                                  \
		uint64_t v_ = 0xdead;                                         \
		CHECK_EQ_INT(iscsi_parse_number((s), &v_), -1);               \
		CHECK_EQ_UINT(v_, 0xdead);                                    \
	} while (0)

TEST(parse_number)
{
	CHECK_NUM("0", 0);
	CHECK_NUM("8192", 8192);
	CHECK_NUM("007", 7);
	CHECK_NUM("0x2000", 8192);
	CHECK_NUM("0X1f", 31);
	CHECK_NUM("0xFFFFFF", 16777215);
	CHECK_NUM("18446744073709551615", UINT64_MAX);
	CHECK_NUM("0xffffffffffffffff", UINT64_MAX);
	CHECK_NUM_BAD("");
	CHECK_NUM_BAD("-1");
	CHECK_NUM_BAD("+1");
	CHECK_NUM_BAD(" 1");
	CHECK_NUM_BAD("1 ");
	CHECK_NUM_BAD("12a");
	CHECK_NUM_BAD("junk");
	CHECK_NUM_BAD("0x");
	CHECK_NUM_BAD("0xg");
	CHECK_NUM_BAD("0x-1");
	CHECK_NUM_BAD("0x 1");
	CHECK_NUM_BAD("0x12z");
	CHECK_NUM_BAD("1.5");
	CHECK_NUM_BAD("18446744073709551616");
	CHECK_NUM_BAD("0x10000000000000000");
}

TEST(list_has)
{
	CHECK(iscsi_list_has("None", "None"));
	CHECK(iscsi_list_has("None,CRC32C", "None"));
	CHECK(iscsi_list_has("None,CRC32C", "CRC32C"));
	CHECK(iscsi_list_has("CRC32C,None", "None"));
	CHECK(!iscsi_list_has("CRC32C", "None"));
	CHECK(!iscsi_list_has("None,CRC32C", "CRC"));
	CHECK(!iscsi_list_has("NoneX", "None"));
	CHECK(!iscsi_list_has("", "None"));
	CHECK(!iscsi_list_has("none", "None"));
}

/* ---- iscsi_text_add ---- */

TEST(text_add_builds_pairs)
{
	struct iscsi_text t = { 0 };
	static const char want[] = "A=1\0Bee=two\0";
	char big[2000];

	iscsi_text_add(&t, "A", "%d", 1);
	iscsi_text_add(&t, "Bee", "%s", "two");
	CHECK(!t.oom);
	REQUIRE(t.len == sizeof want - 1);
	CHECK_MEM(t.buf, want, sizeof want - 1);
	/* It grows as needed, and a value is cut at 1023 bytes. */
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 100; i++)
		iscsi_text_add(&t, "K", "%s", big);
	CHECK(!t.oom);
	CHECK_EQ_INT(t.len, sizeof want - 1 + 100 * (2 + 1023 + 1));
	CHECK(t.cap >= t.len);
	CHECK_EQ_INT(strlen(t.buf + sizeof want - 1), 2 + 1023);
	iscsi_text_free(&t);
	CHECK(t.buf == NULL);
	CHECK_EQ_INT(t.len, 0);
}

/* ---- iscsi_params_offer ---- */

static const char offer_map[] =
	"{\"portals\": [\"127.0.0.1:3260\"],"
	" \"iscsi\": {\"max_recv_data_segment_length\": 131072,"
	"            \"max_burst_length\": 524288,"
	"            \"first_burst_length\": 65536,"
	"            \"initial_r2t\": true, \"immediate_data\": false,"
	"            \"max_outstanding_r2t\": 4},"
	" \"targets\": []}";

TEST(params_offer_from_conf)
{
	char err[512];
	struct conf *c = conf_load_string(offer_map, NULL, "offer", err,
					  sizeof err);
	struct iscsi_params o;

	REQUIRE(c != NULL);
	iscsi_params_offer(&o, c);
	CHECK_EQ_INT(o.max_connections, 1);
	CHECK_EQ_INT(o.initial_r2t, true);
	CHECK_EQ_INT(o.immediate_data, false);
	CHECK_EQ_INT(o.max_burst_length, 524288);
	CHECK_EQ_INT(o.first_burst_length, 65536);
	CHECK_EQ_INT(o.default_time2wait, 2);
	CHECK_EQ_INT(o.default_time2retain, 0);
	CHECK_EQ_INT(o.max_outstanding_r2t, 4);
	CHECK_EQ_INT(o.data_pdu_in_order, true);
	CHECK_EQ_INT(o.data_sequence_in_order, true);
	CHECK_EQ_INT(o.error_recovery_level, 0);
	/* In the offer, the digest flags mean "CRC32C may be chosen". */
	CHECK_EQ_INT(o.header_digest, true);
	CHECK_EQ_INT(o.data_digest, true);
	CHECK_EQ_INT(o.if_marker, false);
	CHECK_EQ_INT(o.of_marker, false);
	CHECK_EQ_INT(o.max_recv_dsl, 131072);
	CHECK_EQ_INT(o.max_send_dsl, 8192);
	CHECK_EQ_INT(o.protocol_level, 1);
	conf_free(c);
}

TEST(params_offer_from_hand_made_conf)
{
	struct conf c;
	struct iscsi_params o;

	memset(&c, 0, sizeof c);
	c.iscsi.max_recv_data_segment_length = 8192;
	c.iscsi.max_burst_length = 16777215;
	c.iscsi.first_burst_length = 512;
	c.iscsi.initial_r2t = false;
	c.iscsi.immediate_data = true;
	c.iscsi.max_outstanding_r2t = 65535;
	iscsi_params_offer(&o, &c);
	CHECK_EQ_INT(o.max_recv_dsl, 8192);
	CHECK_EQ_INT(o.max_burst_length, 16777215);
	CHECK_EQ_INT(o.first_burst_length, 512);
	CHECK_EQ_INT(o.initial_r2t, false);
	CHECK_EQ_INT(o.immediate_data, true);
	CHECK_EQ_INT(o.max_outstanding_r2t, 65535);
	/* Fixed by the target whatever the map says. */
	CHECK_EQ_INT(o.max_connections, 1);
	CHECK_EQ_INT(o.error_recovery_level, 0);
	CHECK_EQ_INT(o.protocol_level, 1);
}

TEST(params_defaults_rfc7143)
{
	struct iscsi_params p;

	memset(&p, 0xa5, sizeof p);
	iscsi_params_defaults(&p);
	/* §13 defaults. */
	CHECK_EQ_INT(p.max_connections, 1);
	CHECK_EQ_INT(p.initial_r2t, true);
	CHECK_EQ_INT(p.immediate_data, true);
	CHECK_EQ_INT(p.max_burst_length, 262144);
	CHECK_EQ_INT(p.first_burst_length, 65536);
	CHECK_EQ_INT(p.default_time2wait, 2);
	CHECK_EQ_INT(p.default_time2retain, 20);
	CHECK_EQ_INT(p.max_outstanding_r2t, 1);
	CHECK_EQ_INT(p.data_pdu_in_order, true);
	CHECK_EQ_INT(p.data_sequence_in_order, true);
	CHECK_EQ_INT(p.error_recovery_level, 0);
	CHECK_EQ_INT(p.header_digest, false);
	CHECK_EQ_INT(p.data_digest, false);
	CHECK_EQ_INT(p.max_send_dsl, 8192);
	CHECK_EQ_INT(p.max_recv_dsl, 8192);
	CHECK_EQ_INT(p.if_marker, false);
	CHECK_EQ_INT(p.of_marker, false);
}

/* ---- iscsi_negotiate_key ---- */

/* The offer under test and the session's values being negotiated. */
static struct iscsi_params offer, params;

/* The offer of a default map ("iscsi": {} ). */
static void
offer_default(void)
{
	char err[512];
	struct conf *c = conf_load_string(
		"{\"portals\": [\"127.0.0.1:3260\"], \"iscsi\": {},"
		" \"targets\": []}", NULL, "default", err, sizeof err);

	if (!c) {
		fprintf(stderr, "conf_load_string: %s\n", err);
		abort();
	}
	iscsi_params_offer(&offer, c);
	conf_free(c);
	/* A session starts from the §13 defaults. */
	iscsi_params_defaults(&params);
}

static bool
params_equal(const struct iscsi_params *a, const struct iscsi_params *b)
{
	return a->max_connections == b->max_connections &&
	       a->initial_r2t == b->initial_r2t &&
	       a->immediate_data == b->immediate_data &&
	       a->max_burst_length == b->max_burst_length &&
	       a->first_burst_length == b->first_burst_length &&
	       a->default_time2wait == b->default_time2wait &&
	       a->default_time2retain == b->default_time2retain &&
	       a->max_outstanding_r2t == b->max_outstanding_r2t &&
	       a->data_pdu_in_order == b->data_pdu_in_order &&
	       a->data_sequence_in_order == b->data_sequence_in_order &&
	       a->error_recovery_level == b->error_recovery_level &&
	       a->header_digest == b->header_digest &&
	       a->data_digest == b->data_digest &&
	       a->max_send_dsl == b->max_send_dsl &&
	       a->max_recv_dsl == b->max_recv_dsl &&
	       a->if_marker == b->if_marker && a->of_marker == b->of_marker &&
	       a->protocol_level == b->protocol_level;
}

/* Negotiate one key; the answer, as "Key=Value" or "" when there is none,
 * goes to ans.  Returns the negotiate return code, or -99 when the answer
 * text is not zero or one well-formed pair. */
static int
negotiate(enum key_phase phase, bool leading, const char *key,
	  const char *value, char *ans, size_t anssz)
{
	struct iscsi_text t = { 0 };
	int r = iscsi_negotiate_key(&params, &offer, phase, leading, key,
				    value, &t);

	ans[0] = '\0';
	if (t.len) {
		size_t l = strnlen(t.buf, t.len);
		if (l + 1 != t.len || l >= anssz)
			r = -99;
		else
			memcpy(ans, t.buf, l + 1);
	}
	iscsi_text_free(&t);
	return r;
}

#define CHECK_NEG_AT(phase, leading, key, value, want)                        \
	do {                                                                  \
		char a_[256];                                                 \
		CHECK_EQ_INT(negotiate((phase), (leading), (key), (value),   \
				       a_, sizeof a_), 0);                    \
		CHECK_EQ_STR(a_, (want));                                     \
	} while (0)
#define CHECK_NEG(key, value, want)                                           \
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, true, key, value, want)

TEST(negotiate_digests)
{
	offer_default();
	params.header_digest = true;
	CHECK_NEG("HeaderDigest", "None", "HeaderDigest=None");
	CHECK_EQ_INT(params.header_digest, false);
	CHECK_NEG("HeaderDigest", "None,CRC32C", "HeaderDigest=None");
	/* The first value of the offer that the target supports (§6.2.1). */
	CHECK_NEG("HeaderDigest", "CRC32C,None", "HeaderDigest=CRC32C");
	CHECK_EQ_INT(params.header_digest, true);
	CHECK_NEG("HeaderDigest", "CRC32C", "HeaderDigest=CRC32C");
	CHECK_NEG("HeaderDigest", "MD5,CRC32C", "HeaderDigest=CRC32C");
	CHECK_NEG("HeaderDigest", "MD5", "HeaderDigest=Reject");
	CHECK_NEG("HeaderDigest", "", "HeaderDigest=Reject");
	CHECK_NEG("HeaderDigest", "none", "HeaderDigest=Reject");
	params.data_digest = true;
	CHECK_NEG("DataDigest", "None,CRC32C", "DataDigest=None");
	CHECK_EQ_INT(params.data_digest, false);
	CHECK_NEG("DataDigest", "None", "DataDigest=None");
	CHECK_NEG("DataDigest", "CRC32C", "DataDigest=CRC32C");
	CHECK_EQ_INT(params.data_digest, true);
	/* With "digests": false in the map, CRC32C is not chosen. */
	offer.header_digest = offer.data_digest = false;
	CHECK_NEG("HeaderDigest", "CRC32C,None", "HeaderDigest=None");
	CHECK_NEG("DataDigest", "CRC32C", "DataDigest=Reject");
	offer.header_digest = offer.data_digest = true;
	/* Digests are not leading-only. */
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, false, "HeaderDigest", "None",
		     "HeaderDigest=None");
	CHECK_NEG_AT(KEY_PHASE_SECURITY, true, "DataDigest", "None",
		     "DataDigest=None");
}

TEST(negotiate_max_connections_min)
{
	offer_default();
	CHECK_NEG("MaxConnections", "8", "MaxConnections=1");
	CHECK_EQ_INT(params.max_connections, 1);
	CHECK_NEG("MaxConnections", "1", "MaxConnections=1");
	CHECK_NEG("MaxConnections", "65535", "MaxConnections=1");
	CHECK_NEG("MaxConnections", "0", "MaxConnections=Reject");
	CHECK_NEG("MaxConnections", "65536", "MaxConnections=Reject");
	CHECK_NEG("MaxConnections", "many", "MaxConnections=Reject");
	CHECK_NEG("MaxConnections", "", "MaxConnections=Reject");
	/* The smaller of the two, whichever side has it. */
	offer.max_connections = 4;
	CHECK_NEG("MaxConnections", "2", "MaxConnections=2");
	CHECK_EQ_INT(params.max_connections, 2);
	CHECK_NEG("MaxConnections", "0x10", "MaxConnections=4");
	CHECK_EQ_INT(params.max_connections, 4);
}

TEST(negotiate_initial_r2t_or)
{
	offer_default();	/* initial_r2t false in the map */
	CHECK_NEG("InitialR2T", "No", "InitialR2T=No");
	CHECK_EQ_INT(params.initial_r2t, false);
	CHECK_NEG("InitialR2T", "Yes", "InitialR2T=Yes");
	CHECK_EQ_INT(params.initial_r2t, true);
	offer.initial_r2t = true;
	CHECK_NEG("InitialR2T", "No", "InitialR2T=Yes");
	CHECK_NEG("InitialR2T", "Yes", "InitialR2T=Yes");
	CHECK_NEG("InitialR2T", "yes", "InitialR2T=Reject");
}

TEST(negotiate_immediate_data_and)
{
	offer_default();	/* immediate_data true in the map */
	CHECK_NEG("ImmediateData", "Yes", "ImmediateData=Yes");
	CHECK_EQ_INT(params.immediate_data, true);
	CHECK_NEG("ImmediateData", "No", "ImmediateData=No");
	CHECK_EQ_INT(params.immediate_data, false);
	offer.immediate_data = false;
	CHECK_NEG("ImmediateData", "Yes", "ImmediateData=No");
	CHECK_EQ_INT(params.immediate_data, false);
	CHECK_NEG("ImmediateData", "No", "ImmediateData=No");
}

TEST(negotiate_mrdsl_declarative)
{
	offer_default();
	params.max_recv_dsl = offer.max_recv_dsl;
	/* No answer: ours is declared separately by the login code. */
	CHECK_NEG("MaxRecvDataSegmentLength", "65536", "");
	CHECK_EQ_INT(params.max_send_dsl, 65536);
	CHECK_EQ_INT(params.max_recv_dsl, 262144);
	CHECK_NEG("MaxRecvDataSegmentLength", "512", "");
	CHECK_EQ_INT(params.max_send_dsl, 512);
	CHECK_NEG("MaxRecvDataSegmentLength", "16777215", "");
	CHECK_EQ_INT(params.max_send_dsl, 16777215);
	/* Not min'd with ours: it is the initiator's declaration. */
	CHECK_NEG("MaxRecvDataSegmentLength", "0x100000", "");
	CHECK_EQ_INT(params.max_send_dsl, 1048576);
	CHECK_NEG("MaxRecvDataSegmentLength", "511",
		  "MaxRecvDataSegmentLength=Reject");
	CHECK_NEG("MaxRecvDataSegmentLength", "16777216",
		  "MaxRecvDataSegmentLength=Reject");
	CHECK_NEG("MaxRecvDataSegmentLength", "big",
		  "MaxRecvDataSegmentLength=Reject");
	CHECK_EQ_INT(params.max_send_dsl, 1048576);
	/* Not leading-only. */
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, false, "MaxRecvDataSegmentLength",
		     "8192", "");
	CHECK_EQ_INT(params.max_send_dsl, 8192);
}

TEST(negotiate_burst_lengths_min)
{
	offer_default();	/* 1048576 and 262144 */
	CHECK_NEG("MaxBurstLength", "262144", "MaxBurstLength=262144");
	CHECK_EQ_INT(params.max_burst_length, 262144);
	CHECK_NEG("MaxBurstLength", "16777215", "MaxBurstLength=1048576");
	CHECK_EQ_INT(params.max_burst_length, 1048576);
	CHECK_NEG("MaxBurstLength", "512", "MaxBurstLength=512");
	CHECK_NEG("MaxBurstLength", "511", "MaxBurstLength=Reject");
	CHECK_NEG("MaxBurstLength", "16777216", "MaxBurstLength=Reject");
	CHECK_NEG("MaxBurstLength", "0", "MaxBurstLength=Reject");
	CHECK_EQ_INT(params.max_burst_length, 512);

	CHECK_NEG("FirstBurstLength", "65536", "FirstBurstLength=65536");
	CHECK_EQ_INT(params.first_burst_length, 65536);
	CHECK_NEG("FirstBurstLength", "16777215", "FirstBurstLength=262144");
	CHECK_EQ_INT(params.first_burst_length, 262144);
	CHECK_NEG("FirstBurstLength", "512", "FirstBurstLength=512");
	CHECK_NEG("FirstBurstLength", "511", "FirstBurstLength=Reject");
	CHECK_NEG("FirstBurstLength", "16777216", "FirstBurstLength=Reject");
	CHECK_NEG("FirstBurstLength", "0x1000000", "FirstBurstLength=Reject");
}

TEST(negotiate_time2wait_max_time2retain_min)
{
	offer_default();	/* Time2Wait 2, Time2Retain 0 */
	CHECK_NEG("DefaultTime2Wait", "0", "DefaultTime2Wait=2");
	CHECK_EQ_INT(params.default_time2wait, 2);
	CHECK_NEG("DefaultTime2Wait", "20", "DefaultTime2Wait=20");
	CHECK_EQ_INT(params.default_time2wait, 20);
	CHECK_NEG("DefaultTime2Wait", "3600", "DefaultTime2Wait=3600");
	CHECK_NEG("DefaultTime2Wait", "3601", "DefaultTime2Wait=Reject");

	CHECK_NEG("DefaultTime2Retain", "20", "DefaultTime2Retain=0");
	CHECK_EQ_INT(params.default_time2retain, 0);
	CHECK_NEG("DefaultTime2Retain", "3601", "DefaultTime2Retain=Reject");
	offer.default_time2retain = 20;
	CHECK_NEG("DefaultTime2Retain", "10", "DefaultTime2Retain=10");
	CHECK_EQ_INT(params.default_time2retain, 10);
	CHECK_NEG("DefaultTime2Retain", "3600", "DefaultTime2Retain=20");
	CHECK_NEG("DefaultTime2Retain", "0", "DefaultTime2Retain=0");
}

TEST(negotiate_max_outstanding_r2t_min)
{
	offer_default();	/* 16 */
	CHECK_NEG("MaxOutstandingR2T", "1", "MaxOutstandingR2T=1");
	CHECK_EQ_INT(params.max_outstanding_r2t, 1);
	CHECK_NEG("MaxOutstandingR2T", "100", "MaxOutstandingR2T=16");
	CHECK_EQ_INT(params.max_outstanding_r2t, 16);
	CHECK_NEG("MaxOutstandingR2T", "65535", "MaxOutstandingR2T=16");
	CHECK_NEG("MaxOutstandingR2T", "0", "MaxOutstandingR2T=Reject");
	CHECK_NEG("MaxOutstandingR2T", "65536", "MaxOutstandingR2T=Reject");
}

TEST(negotiate_in_order_or)
{
	offer_default();	/* both Yes */
	CHECK_NEG("DataPDUInOrder", "No", "DataPDUInOrder=Yes");
	CHECK_EQ_INT(params.data_pdu_in_order, true);
	CHECK_NEG("DataSequenceInOrder", "No", "DataSequenceInOrder=Yes");
	CHECK_EQ_INT(params.data_sequence_in_order, true);
	offer.data_pdu_in_order = false;
	offer.data_sequence_in_order = false;
	CHECK_NEG("DataPDUInOrder", "No", "DataPDUInOrder=No");
	CHECK_EQ_INT(params.data_pdu_in_order, false);
	CHECK_NEG("DataPDUInOrder", "Yes", "DataPDUInOrder=Yes");
	CHECK_NEG("DataSequenceInOrder", "No", "DataSequenceInOrder=No");
	CHECK_EQ_INT(params.data_sequence_in_order, false);
	CHECK_NEG("DataSequenceInOrder", "Yes", "DataSequenceInOrder=Yes");
	CHECK_NEG("DataPDUInOrder", "True", "DataPDUInOrder=Reject");
}

TEST(negotiate_error_recovery_level_min)
{
	offer_default();	/* 0 */
	CHECK_NEG("ErrorRecoveryLevel", "2", "ErrorRecoveryLevel=0");
	CHECK_NEG("ErrorRecoveryLevel", "0", "ErrorRecoveryLevel=0");
	CHECK_EQ_INT(params.error_recovery_level, 0);
	CHECK_NEG("ErrorRecoveryLevel", "3", "ErrorRecoveryLevel=Reject");
	CHECK_NEG("ErrorRecoveryLevel", "-1", "ErrorRecoveryLevel=Reject");
	offer.error_recovery_level = 2;
	CHECK_NEG("ErrorRecoveryLevel", "1", "ErrorRecoveryLevel=1");
	CHECK_EQ_INT(params.error_recovery_level, 1);
}

TEST(negotiate_markers)
{
	offer_default();
	/* RFC 3720 markers: AND with our No. */
	CHECK_NEG("IFMarker", "Yes", "IFMarker=No");
	CHECK_EQ_INT(params.if_marker, false);
	CHECK_NEG("IFMarker", "No", "IFMarker=No");
	CHECK_NEG("OFMarker", "Yes", "OFMarker=No");
	CHECK_EQ_INT(params.of_marker, false);
	CHECK_NEG("OFMarker", "No", "OFMarker=No");
	CHECK_NEG("IFMarker", "Maybe", "IFMarker=Reject");
	CHECK_NEG("IFMarkInt", "2048~8192", "IFMarkInt=Irrelevant");
	CHECK_NEG("OFMarkInt", "2048~8192", "OFMarkInt=Irrelevant");
	CHECK_NEG("IFMarkInt", "junk", "IFMarkInt=Irrelevant");
}

TEST(negotiate_protocol_level_min)
{
	offer_default();	/* 1 (RFC 7144) */
	CHECK_NEG("iSCSIProtocolLevel", "2", "iSCSIProtocolLevel=1");
	CHECK_EQ_INT(params.protocol_level, 1);
	CHECK_NEG("iSCSIProtocolLevel", "31", "iSCSIProtocolLevel=1");
	CHECK_NEG("iSCSIProtocolLevel", "0", "iSCSIProtocolLevel=0");
	CHECK_EQ_INT(params.protocol_level, 0);
	CHECK_NEG("iSCSIProtocolLevel", "1", "iSCSIProtocolLevel=1");
	CHECK_NEG("iSCSIProtocolLevel", "32", "iSCSIProtocolLevel=Reject");
}

TEST(negotiate_task_reporting)
{
	offer_default();
	CHECK_NEG("TaskReporting", "RFC3720", "TaskReporting=RFC3720");
	CHECK_NEG("TaskReporting", "ResponseFence,RFC3720",
		  "TaskReporting=RFC3720");
	CHECK_NEG("TaskReporting", "FastAbort,ResponseFence",
		  "TaskReporting=Reject");
	CHECK_NEG("TaskReporting", "", "TaskReporting=Reject");
}

TEST(negotiate_bad_booleans)
{
	static const char *const bools[] = {
		"InitialR2T", "ImmediateData", "DataPDUInOrder",
		"DataSequenceInOrder", "IFMarker", "OFMarker",
	};
	static const char *const values[] = {
		"yes", "no", "YES", "true", "1", "", "Yes,No", "Yes ",
	};

	offer_default();
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
		for (size_t j = 0; j < ARRAY_SIZE(values); j++) {
			char want[64], a[256];
			snprintf(want, sizeof want, "%s=Reject", bools[i]);
			CHECK_EQ_INT(negotiate(KEY_PHASE_OPERATIONAL, true,
					       bools[i], values[j], a, sizeof a),
				     0);
			CHECK_MSG(!strcmp(a, want), "%s=%s answered \"%s\"",
				  bools[i], values[j], a);
		}
}

TEST(negotiate_ffp_phase)
{
	static const char *const login_only[] = {
		"HeaderDigest", "DataDigest", "MaxConnections", "InitialR2T",
		"ImmediateData", "MaxBurstLength", "FirstBurstLength",
		"DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T",
		"DataPDUInOrder", "DataSequenceInOrder", "ErrorRecoveryLevel",
		"IFMarker", "OFMarker", "IFMarkInt", "OFMarkInt",
		"iSCSIProtocolLevel", "TaskReporting",
	};
	struct iscsi_params before;

	offer_default();
	before = params;
	for (size_t i = 0; i < ARRAY_SIZE(login_only); i++) {
		char want[64], a[256];
		snprintf(want, sizeof want, "%s=Reject", login_only[i]);
		CHECK_EQ_INT(negotiate(KEY_PHASE_FFP, false, login_only[i],
				       "1", a, sizeof a), 0);
		CHECK_MSG(!strcmp(a, want), "%s in FFP answered \"%s\"",
			  login_only[i], a);
	}
	CHECK_NEG_AT(KEY_PHASE_FFP, false, "MaxBurstLength", "512",
		     "MaxBurstLength=Reject");
	CHECK_NEG_AT(KEY_PHASE_FFP, true, "HeaderDigest", "None",
		     "HeaderDigest=Reject");
	/* Nothing changed. */
	CHECK(params_equal(&params, &before));
	/* MaxRecvDataSegmentLength may be renegotiated (§13.12). */
	CHECK_NEG_AT(KEY_PHASE_FFP, false, "MaxRecvDataSegmentLength",
		     "131072", "");
	CHECK_EQ_INT(params.max_send_dsl, 131072);
	CHECK_NEG_AT(KEY_PHASE_FFP, false, "MaxRecvDataSegmentLength", "1",
		     "MaxRecvDataSegmentLength=Reject");
}

TEST(negotiate_leading_only_on_other_connection)
{
	offer_default();
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, false, "MaxConnections", "1",
		     "MaxConnections=Irrelevant");
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, false, "MaxBurstLength", "512",
		     "MaxBurstLength=Irrelevant");
	CHECK_EQ_INT(params.max_burst_length, 262144);
	CHECK_NEG_AT(KEY_PHASE_OPERATIONAL, false, "TaskReporting", "RFC3720",
		     "TaskReporting=Irrelevant");
}

TEST(negotiate_unknown_keys)
{
	static const char *const unknown[] = {
		"Foo", "X-com.example.Key", "X#Foo", "InitiatorName",
		"TargetName", "AuthMethod", "SessionType", "SendTargets",
		"maxburstlength", "HeaderDigest ", "",
	};
	struct iscsi_params before;

	offer_default();
	before = params;
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
		struct iscsi_text t = { 0 };
		int r = iscsi_negotiate_key(&params, &offer,
					    KEY_PHASE_OPERATIONAL, true,
					    unknown[i], "1", &t);
		CHECK_MSG(r == -1, "\"%s\" returned %d", unknown[i], r);
		CHECK_MSG(t.len == 0, "\"%s\" answered", unknown[i]);
		iscsi_text_free(&t);
		r = iscsi_negotiate_key(&params, &offer, KEY_PHASE_FFP, false,
					unknown[i], "1", &t);
		CHECK_MSG(r == -1, "\"%s\" in FFP returned %d", unknown[i], r);
		iscsi_text_free(&t);
	}
	CHECK(params_equal(&params, &before));
}

/* Every key of key_table is known, answers exactly one pair (or none for
 * the declarative MaxRecvDataSegmentLength) in the operational stage. */
TEST(negotiate_every_table_key)
{
	static const struct {
		const char *key, *value, *want;
	} table[] = {
		{ "HeaderDigest", "None", "HeaderDigest=None" },
		{ "DataDigest", "None", "DataDigest=None" },
		{ "MaxConnections", "1", "MaxConnections=1" },
		{ "InitialR2T", "Yes", "InitialR2T=Yes" },
		{ "ImmediateData", "Yes", "ImmediateData=Yes" },
		{ "MaxRecvDataSegmentLength", "8192", "" },
		{ "MaxBurstLength", "262144", "MaxBurstLength=262144" },
		{ "FirstBurstLength", "65536", "FirstBurstLength=65536" },
		{ "DefaultTime2Wait", "2", "DefaultTime2Wait=2" },
		{ "DefaultTime2Retain", "20", "DefaultTime2Retain=0" },
		{ "MaxOutstandingR2T", "1", "MaxOutstandingR2T=1" },
		{ "DataPDUInOrder", "Yes", "DataPDUInOrder=Yes" },
		{ "DataSequenceInOrder", "Yes", "DataSequenceInOrder=Yes" },
		{ "ErrorRecoveryLevel", "0", "ErrorRecoveryLevel=0" },
		{ "IFMarker", "No", "IFMarker=No" },
		{ "OFMarker", "No", "OFMarker=No" },
		{ "IFMarkInt", "2048~8192", "IFMarkInt=Irrelevant" },
		{ "OFMarkInt", "2048~8192", "OFMarkInt=Irrelevant" },
		{ "iSCSIProtocolLevel", "1", "iSCSIProtocolLevel=1" },
		{ "TaskReporting", "RFC3720", "TaskReporting=RFC3720" },
	};
	struct iscsi_text t = { 0 };
	size_t want_len = 0;

	offer_default();
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		char a[256];
		CHECK_EQ_INT(negotiate(KEY_PHASE_OPERATIONAL, true,
				       table[i].key, table[i].value, a,
				       sizeof a), 0);
		CHECK_MSG(!strcmp(a, table[i].want),
			  "%s=%s answered \"%s\", want \"%s\"", table[i].key,
			  table[i].value, a, table[i].want);
	}
	/* Answers accumulate in one text buffer, in order. */
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		CHECK_EQ_INT(iscsi_negotiate_key(&params, &offer,
						 KEY_PHASE_OPERATIONAL, true,
						 table[i].key, table[i].value,
						 &t), 0);
		if (table[i].want[0])
			want_len += strlen(table[i].want) + 1;
	}
	CHECK_EQ_INT(t.len, want_len);
	{
		size_t o = 0;
		for (size_t i = 0; i < ARRAY_SIZE(table) && o < t.len; i++) {
			if (!table[i].want[0])
				continue;
			CHECK_EQ_STR(t.buf + o, table[i].want);
			o += strlen(t.buf + o) + 1;
		}
	}
	iscsi_text_free(&t);
}

int
main(int argc, char **argv)
{
	return harness_run(argc, argv);
}
