/* fuzz-keys.c: libFuzzer target for login and text keys (iscsi/keys.c)
 * and CHAP value decoding (iscsi/chap.c), with no connection.
 *
 * Input: byte 0 chooses the offer and the key limit, the rest is key text
 * ("key=value\0..." as in a Login or Text request):
 *
 *   byte0 & 3    offer from the map: 0 defaults, 1 digests "require",
 *                2 digests "off" with InitialR2T=Yes, ImmediateData=No and
 *                small bursts, 3 large limits
 *   byte0 & 4    at most 4 pairs instead of ISCSI_LOGIN_KEYS_MAX
 *
 * Each input: iscsi_text_parse into an array of exactly the limit (so
 * ASan sees an overrun), checks on every pair, then iscsi_negotiate_key
 * for every pair in each phase (security, operational, full feature),
 * leading and not, checking the answer text parses back and the
 * negotiated values stay in their RFC 7143 §13 ranges.  Every value (and
 * the text up to its first NUL) also goes through iscsi_parse_number,
 * iscsi_list_has, chap_pick_alg and chap_decode into buffers of several
 * exact sizes; a hex value that decodes must encode back to itself.
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "util/util.h"
#include "conf/conf.h"
#include "iscsi/iscsi.h"
#include "iscsi/chap.h"

static struct iscsi_params offers[4];

static const char *const offer_maps[4] = {
	"{\"portals\": [\"127.0.0.1:3260\"], \"targets\": []}",
	"{\"portals\": [\"127.0.0.1:3260\"], \"iscsi\": {\"digests\": \"require\"},"
	" \"targets\": []}",
	"{\"portals\": [\"127.0.0.1:3260\"],"
	" \"iscsi\": {\"digests\": \"off\", \"initial_r2t\": true,"
	"   \"immediate_data\": false, \"max_burst_length\": 4096,"
	"   \"first_burst_length\": 512, \"max_outstanding_r2t\": 1,"
	"   \"max_recv_data_segment_length\": 512}, \"targets\": []}",
	"{\"portals\": [\"127.0.0.1:3260\"],"
	" \"iscsi\": {\"max_burst_length\": 16777215,"
	"   \"first_burst_length\": 16777215, \"max_outstanding_r2t\": 65535,"
	"   \"max_recv_data_segment_length\": 16777215}, \"targets\": []}",
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	for (int i = 0; i < 4; i++) {
		struct conf *c = fuzz_load_map(offer_maps[i], "fuzz-keys");

		iscsi_params_offer(&offers[i], c);
		conf_free(c);
	}
	return 0;
}

static bool
key_char_ok(unsigned char ch)
{
	return isalnum(ch) || ch == '.' || ch == '-' || ch == '+' ||
	       ch == '@' || ch == '_';
}

/* A parsed pair lies inside buf and obeys §6.1. */
static void
check_pair(const uint8_t *buf, uint32_t len, const struct iscsi_kv *kv)
{
	const char *b = (const char *)buf;
	size_t kl, vl;

	FUZZ_ASSERT(kv->key >= b && kv->key < b + len, "key outside the text");
	FUZZ_ASSERT(kv->value > kv->key && kv->value <= b + len,
		    "value outside the text");
	FUZZ_ASSERT(memchr(kv->value, 0, b + len - kv->value),
		    "value not NUL-terminated inside the text");
	kl = strlen(kv->key);
	vl = strlen(kv->value);
	FUZZ_ASSERT(kv->key + kl + 1 == kv->value, "key and value not adjacent");
	FUZZ_ASSERT(kl >= 1 && kl <= 63, "key of %zu bytes accepted", kl);
	for (size_t i = 0; i < kl; i++)
		FUZZ_ASSERT(key_char_ok((unsigned char)kv->key[i]),
			    "bad character 0x%02x in key accepted",
			    (unsigned char)kv->key[i]);
	FUZZ_ASSERT(vl <= 8192, "value of %zu bytes accepted", vl);
}

/* Negotiated values stay in the ranges of §13 (and our offer). */
static void
check_params(const struct iscsi_params *p, const struct iscsi_params *o)
{
	FUZZ_ASSERT(p->max_connections >= 1 && p->max_connections <= 65535,
		    "MaxConnections %u", p->max_connections);
	FUZZ_ASSERT(p->max_burst_length >= 512 &&
		    p->max_burst_length <= 16777215,
		    "MaxBurstLength %u", p->max_burst_length);
	FUZZ_ASSERT(p->first_burst_length >= 512 &&
		    p->first_burst_length <= 16777215,
		    "FirstBurstLength %u", p->first_burst_length);
	FUZZ_ASSERT(p->default_time2wait <= 3600, "DefaultTime2Wait %u",
		    p->default_time2wait);
	FUZZ_ASSERT(p->default_time2retain <= 3600, "DefaultTime2Retain %u",
		    p->default_time2retain);
	FUZZ_ASSERT(p->max_outstanding_r2t >= 1 &&
		    p->max_outstanding_r2t <= 65535,
		    "MaxOutstandingR2T %u", p->max_outstanding_r2t);
	FUZZ_ASSERT(p->error_recovery_level <= 2, "ErrorRecoveryLevel %u",
		    p->error_recovery_level);
	FUZZ_ASSERT(p->max_send_dsl >= 512 && p->max_send_dsl <= 16777215,
		    "MaxRecvDataSegmentLength (ours to send) %u",
		    p->max_send_dsl);
	FUZZ_ASSERT(p->protocol_level <= 31, "iSCSIProtocolLevel %u",
		    p->protocol_level);
	/* CRC32C is chosen only when the offer allows it. */
	FUZZ_ASSERT(!p->header_digest || o->header_digest,
		    "HeaderDigest=CRC32C against the offer");
	FUZZ_ASSERT(!p->data_digest || o->data_digest,
		    "DataDigest=CRC32C against the offer");
	FUZZ_ASSERT(!p->if_marker && !p->of_marker, "markers turned on");
}

/* The answer text: "key=value\0" entries, every key one we were sent. */
static void
check_answer(const struct iscsi_text *out, const struct iscsi_kv *kv, int n)
{
	struct iscsi_kv *ans;
	uint8_t *copy;
	int m;

	if (out->oom || out->len == 0)
		return;
	FUZZ_ASSERT(out->len <= out->cap, "answer length %u over capacity %u",
		    out->len, out->cap);
	FUZZ_ASSERT(out->buf[out->len - 1] == '\0', "answer not terminated");
	copy = malloc(out->len);
	ans = calloc(n, sizeof *ans);
	if (!copy || !ans)
		abort();
	memcpy(copy, out->buf, out->len);
	m = iscsi_text_parse(copy, out->len, ans, n);
	FUZZ_ASSERT(m >= 0, "our own answer does not parse (or has more "
		    "pairs than the request)");
	for (int i = 0; i < m; i++) {
		bool asked = false;

		for (int j = 0; j < n && !asked; j++)
			asked = !strcmp(ans[i].key, kv[j].key);
		FUZZ_ASSERT(asked, "answer to key '%s' that was not sent",
			    ans[i].key);
		FUZZ_ASSERT(strlen(ans[i].value) > 0, "empty answer to '%s'",
			    ans[i].key);
	}
	free(ans);
	free(copy);
}

static void
negotiate_all(const struct iscsi_params *offer, const struct iscsi_kv *kv,
	      int n)
{
	static const enum key_phase phases[] = {
		KEY_PHASE_SECURITY, KEY_PHASE_OPERATIONAL, KEY_PHASE_FFP,
	};

	for (size_t ph = 0; ph < ARRAY_SIZE(phases); ph++)
		for (int leading = 0; leading < 2; leading++) {
			struct iscsi_params p;
			struct iscsi_text out = { 0 };

			iscsi_params_defaults(&p);
			for (int i = 0; i < n; i++) {
				uint32_t before = out.len;
				int r = iscsi_negotiate_key(&p, offer,
							    phases[ph],
							    leading, kv[i].key,
							    kv[i].value, &out);

				FUZZ_ASSERT(r == 0 || r == -1,
					    "iscsi_negotiate_key returned %d",
					    r);
				FUZZ_ASSERT(r == 0 || out.len == before,
					    "answer added to a key that is not "
					    "an operational key");
			}
			check_params(&p, offer);
			check_answer(&out, kv, n);
			iscsi_text_free(&out);
		}
}

/* Hex digits of s (after "0x") equal the encoding of b, up to case and a
 * leading zero nibble. */
static bool
hex_matches(const char *s, const uint8_t *b, size_t n)
{
	char *enc = malloc(2 * n + 3);
	const char *x = s + 2, *y;
	bool ok;

	if (!enc)
		abort();
	chap_encode_hex(b, n, enc);
	y = enc + 2;
	if (strlen(x) & 1) {
		/* An odd count: the first byte is a lone nibble. */
		ok = y[0] == '0' && !strcasecmp(x, y + 1);
	} else {
		ok = !strcasecmp(x, y);
	}
	free(enc);
	return ok;
}

static void
check_value(const char *v)
{
	static const size_t sizes[] = { 1, 16, 32, 64, 1024 };
	uint64_t num;
	int alg;

	(void)iscsi_parse_number(v, &num);
	(void)iscsi_list_has(v, "None");
	(void)iscsi_list_has(v, "CRC32C");
	alg = chap_pick_alg(v);
	FUZZ_ASSERT(alg == -1 || alg == 5 || alg == 7 || alg == 8,
		    "chap_pick_alg gave %d", alg);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint8_t *out = malloc(sizes[i]);
		int r;

		if (!out)
			abort();
		r = chap_decode(v, out, sizes[i]);
		FUZZ_ASSERT(r >= -1 && r <= (int)sizes[i],
			    "chap_decode into %zu bytes returned %d", sizes[i],
			    r);
		if (r > 0 && (v[1] == 'x' || v[1] == 'X'))
			FUZZ_ASSERT(hex_matches(v, out, (size_t)r),
				    "chap_decode of hex does not encode back");
		if (r >= 0 && alg > 0) {
			/* A response checked against a fixed challenge. */
			struct chap_state cs = { .alg = alg, .id = 7,
						 .challenge_len = 16 };
			(void)chap_verify(&cs, "secret", 6, out, (size_t)r);
		}
		free(out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct iscsi_params *offer;
	struct iscsi_kv *kv;
	uint8_t *buf;
	char *first;
	uint32_t len;
	int max, n;

	if (size < 1 || size - 1 > ISCSI_LOGIN_TEXT_MAX)
		return 0;
	offer = &offers[data[0] & 3];
	max = (data[0] & 4) ? 4 : ISCSI_LOGIN_KEYS_MAX;
	len = (uint32_t)(size - 1);

	/* The text up to its first NUL, as one CHAP value. */
	first = strndup((const char *)data + 1, len);
	if (!first)
		abort();
	check_value(first);
	free(first);

	buf = malloc(len ? len : 1);
	kv = malloc(sizeof *kv * (size_t)max);
	if (!buf || !kv)
		abort();
	memcpy(buf, data + 1, len);
	n = iscsi_text_parse(buf, len, kv, max);
	FUZZ_ASSERT(n >= -1 && n <= max, "iscsi_text_parse returned %d", n);
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			check_pair(buf, len, &kv[i]);
			check_value(kv[i].value);
		}
		negotiate_all(offer, kv, n);
	}
	free(kv);
	free(buf);
	return 0;
}
