/* keys.c: text keys (RFC 7143 §6, §13).  Owns parsing "key=value\0" text
 * with its size rules, and the negotiation table: each operational key's
 * type (boolean AND/OR, numeric min/max/declarative, list), range and
 * where it may appear.  No I/O, no state: unit-testable alone.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "util/util.h"

/* §6.1: key names are at most 63 bytes of [A-Za-z0-9.-+@_]; values at most
 * 255 bytes except where a key allows more (8192 for text values). */
#define KEY_NAME_MAX 63
#define KEY_VALUE_MAX 8192

static bool
valid_key_name(const char *k, size_t n)
{
	if (n == 0 || n > KEY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = k[i];
		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '+' ||
		      ch == '@' || ch == '_'))
			return false;
	}
	return true;
}

int
iscsi_text_parse(const uint8_t *data, uint32_t len, struct iscsi_kv *out,
		 int max)
{
	uint32_t i = 0;
	int n = 0;

	while (i < len) {
		const char *s = (const char *)data + i;
		const uint8_t *nul = memchr(data + i, 0, len - i);
		size_t slen = nul ? (size_t)(nul - (data + i)) : len - i;
		const char *eq;

		if (slen == 0) {	/* padding NULs at the end */
			i++;
			continue;
		}
		if (!nul)
			return -1;	/* unterminated */
		eq = memchr(s, '=', slen);
		if (!eq || !valid_key_name(s, eq - s) ||
		    slen - (eq - s) - 1 > KEY_VALUE_MAX)
			return -1;
		if (n >= max)
			return -1;
		out[n].key = (char *)s;
		out[n].value = (char *)eq + 1;
		((char *)eq)[0] = '\0';	/* split in place */
		n++;
		i += slen + 1;
	}
	return n;
}

void
iscsi_text_add(struct iscsi_text *t, const char *key, const char *fmt, ...)
{
	va_list ap;
	char val[1024];
	int vn, kn;

	if (t->oom)
		return;
	va_start(ap, fmt);
	vn = vsnprintf(val, sizeof val, fmt, ap);
	va_end(ap);
	if (vn < 0)
		return;
	if ((size_t)vn >= sizeof val)
		vn = sizeof val - 1;
	kn = strlen(key);
	if (t->len + kn + vn + 2 > t->cap) {
		uint32_t cap = MAX(t->cap * 2, t->len + kn + vn + 2 + 256);
		char *b = realloc(t->buf, cap);
		if (!b) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, key, kn);
	t->buf[t->len + kn] = '=';
	memcpy(t->buf + t->len + kn + 1, val, vn);
	t->buf[t->len + kn + 1 + vn] = '\0';
	t->len += kn + vn + 2;
}

void
iscsi_text_free(struct iscsi_text *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

int
iscsi_parse_number(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -1;
		v = strtoull(s + 2, &end, 16);
	} else {
		v = strtoull(s, &end, 10);
	}
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

void
iscsi_params_defaults(struct iscsi_params *p)
{
	/* §13: the values in force when a key is not negotiated. */
	*p = (struct iscsi_params){
		.max_connections = 1,
		.initial_r2t = true,
		.immediate_data = true,
		.max_burst_length = 262144,
		.first_burst_length = 65536,
		.default_time2wait = 2,
		.default_time2retain = 20,
		.max_outstanding_r2t = 1,
		.data_pdu_in_order = true,
		.data_sequence_in_order = true,
		.error_recovery_level = 0,
		.max_send_dsl = 8192,
		.max_recv_dsl = 8192,
		.protocol_level = 0,
	};
}

void
iscsi_params_offer(struct iscsi_params *p, const struct conf *c)
{
	iscsi_params_defaults(p);
	p->max_connections = 1;
	p->initial_r2t = c->iscsi.initial_r2t;
	p->immediate_data = c->iscsi.immediate_data;
	p->max_burst_length = c->iscsi.max_burst_length;
	p->first_burst_length = c->iscsi.first_burst_length;
	p->default_time2wait = 2;
	p->default_time2retain = 0;
	p->max_outstanding_r2t = c->iscsi.max_outstanding_r2t;
	p->max_recv_dsl = c->iscsi.max_recv_data_segment_length;
	p->protocol_level = 1;
	/* In the offer, "digest" means CRC32C may be chosen. */
	p->header_digest = c->iscsi.header_digest != DIGESTS_OFF;
	p->data_digest = c->iscsi.data_digest != DIGESTS_OFF;
	p->header_digest_required = c->iscsi.header_digest == DIGESTS_REQUIRE;
	p->data_digest_required = c->iscsi.data_digest == DIGESTS_REQUIRE;
}

enum key_type {
	KT_BOOL_AND,
	KT_BOOL_OR,
	KT_NUM_MIN,
	KT_NUM_MAX,
	KT_DIGEST,
	KT_MRDSL,		/* declarative MaxRecvDataSegmentLength */
	KT_MARKER_INT,		/* obsolete, answered Irrelevant */
	KT_PROTOCOL_LEVEL,
	KT_TASK_REPORTING,
};

struct key_def {
	const char *name;
	enum key_type type;
	uint32_t lo, hi;
	size_t off;		/* into struct iscsi_params */
	bool leading_only;	/* LO: first connection of a session */
	bool ffp_ok;		/* may be renegotiated in full feature phase */
};

#define P(field) offsetof(struct iscsi_params, field)

static const struct key_def key_table[] = {
	{ .name = "HeaderDigest", .type = KT_DIGEST, .off = P(header_digest) },
	{ .name = "DataDigest", .type = KT_DIGEST, .off = P(data_digest) },
	{ .name = "MaxConnections", .type = KT_NUM_MIN, .lo = 1, .hi = 65535,
	  .off = P(max_connections), .leading_only = true },
	{ .name = "InitialR2T", .type = KT_BOOL_OR, .off = P(initial_r2t),
	  .leading_only = true },
	{ .name = "ImmediateData", .type = KT_BOOL_AND,
	  .off = P(immediate_data), .leading_only = true },
	{ .name = "MaxRecvDataSegmentLength", .type = KT_MRDSL, .lo = 512,
	  .hi = 16777215, .off = P(max_send_dsl), .ffp_ok = true },
	{ .name = "MaxBurstLength", .type = KT_NUM_MIN, .lo = 512,
	  .hi = 16777215, .off = P(max_burst_length), .leading_only = true },
	{ .name = "FirstBurstLength", .type = KT_NUM_MIN, .lo = 512,
	  .hi = 16777215, .off = P(first_burst_length), .leading_only = true },
	{ .name = "DefaultTime2Wait", .type = KT_NUM_MAX, .lo = 0, .hi = 3600,
	  .off = P(default_time2wait), .leading_only = true },
	{ .name = "DefaultTime2Retain", .type = KT_NUM_MIN, .lo = 0, .hi = 3600,
	  .off = P(default_time2retain), .leading_only = true },
	{ .name = "MaxOutstandingR2T", .type = KT_NUM_MIN, .lo = 1,
	  .hi = 65535, .off = P(max_outstanding_r2t), .leading_only = true },
	{ .name = "DataPDUInOrder", .type = KT_BOOL_OR,
	  .off = P(data_pdu_in_order), .leading_only = true },
	{ .name = "DataSequenceInOrder", .type = KT_BOOL_OR,
	  .off = P(data_sequence_in_order), .leading_only = true },
	{ .name = "ErrorRecoveryLevel", .type = KT_NUM_MIN, .lo = 0, .hi = 2,
	  .off = P(error_recovery_level), .leading_only = true },
	/* RFC 3720 markers, removed by RFC 7143 but still sent by initiators:
	 * we never use them (AND with No). */
	{ .name = "IFMarker", .type = KT_BOOL_AND, .off = P(if_marker) },
	{ .name = "OFMarker", .type = KT_BOOL_AND, .off = P(of_marker) },
	{ .name = "IFMarkInt", .type = KT_MARKER_INT },
	{ .name = "OFMarkInt", .type = KT_MARKER_INT },
	{ .name = "iSCSIProtocolLevel", .type = KT_PROTOCOL_LEVEL, .lo = 0,
	  .hi = 31, .off = P(protocol_level), .leading_only = true },
	{ .name = "TaskReporting", .type = KT_TASK_REPORTING,
	  .leading_only = true },
};

static const struct key_def *
find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(key_table); i++)
		if (!strcmp(key_table[i].name, name))
			return &key_table[i];
	return NULL;
}

bool
iscsi_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !strncmp(p, item, n))
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

int
iscsi_negotiate_key(struct iscsi_params *p, const struct iscsi_params *offer,
		    enum key_phase phase, bool leading, const char *key,
		    const char *value, struct iscsi_text *out)
{
	const struct key_def *d = find_key(key);
	uint64_t num;
	bool *bp;
	uint32_t *np;

	if (!d)
		return -1;
	if (phase == KEY_PHASE_FFP && !d->ffp_ok) {
		/* §13: login-only keys cannot change in full feature phase. */
		iscsi_text_add(out, key, "Reject");
		return 0;
	}
	if (d->leading_only && !leading) {
		iscsi_text_add(out, key, "Irrelevant");
		return 0;
	}
	bp = (bool *)((char *)p + d->off);
	np = (uint32_t *)((char *)p + d->off);
	switch (d->type) {
	case KT_BOOL_AND:
	case KT_BOOL_OR: {
		bool mine = *(const bool *)((const char *)offer + d->off);
		bool theirs;
		if (!strcmp(value, "Yes"))
			theirs = true;
		else if (!strcmp(value, "No"))
			theirs = false;
		else {
			iscsi_text_add(out, key, "Reject");
			return 0;
		}
		*bp = d->type == KT_BOOL_AND ? (mine && theirs) : (mine || theirs);
		/* §6.2.1: for AND, a No offer needs no answer, but answering
		 * with the result is always allowed. */
		iscsi_text_add(out, key, "%s", *bp ? "Yes" : "No");
		return 0;
	}
	case KT_NUM_MIN:
	case KT_NUM_MAX:
	case KT_PROTOCOL_LEVEL: {
		uint32_t mine = *(const uint32_t *)((const char *)offer + d->off);
		if (iscsi_parse_number(value, &num) < 0 || num < d->lo ||
		    num > d->hi) {
			iscsi_text_add(out, key, "Reject");
			return 0;
		}
		if (d->type == KT_NUM_MAX)
			*np = MAX((uint32_t)num, mine);
		else
			*np = MIN((uint32_t)num, mine);
		iscsi_text_add(out, key, "%u", *np);
		return 0;
	}
	case KT_MRDSL:
		if (iscsi_parse_number(value, &num) < 0 || num < d->lo ||
		    num > d->hi) {
			iscsi_text_add(out, key, "Reject");
			return 0;
		}
		/* Declarative (§13.12): what the initiator can receive is
		 * what we may send.  Ours is declared by the caller. */
		p->max_send_dsl = (uint32_t)num;
		return 0;
	case KT_DIGEST: {
		/* §6.2.1 list negotiation: the first value of the offer that
		 * we support.  CRC32C unless the map turned digests off. */
		bool crc_ok = *(const bool *)((const char *)offer + d->off);
		for (const char *v = value; *v;) {
			const char *comma = strchr(v, ',');
			size_t n = comma ? (size_t)(comma - v) : strlen(v);
			if (n == 4 && !strncmp(v, "None", 4) &&
			    !(d->off == offsetof(struct iscsi_params, header_digest) ?
			      offer->header_digest_required :
			      offer->data_digest_required)) {
				*bp = false;
				iscsi_text_add(out, key, "None");
				return 0;
			}
			if (n == 6 && !strncmp(v, "CRC32C", 6) && crc_ok) {
				*bp = true;
				iscsi_text_add(out, key, "CRC32C");
				return 0;
			}
			v = comma ? comma + 1 : v + n;
		}
		iscsi_text_add(out, key, "Reject");
		return 0;
	}
	case KT_MARKER_INT:
		iscsi_text_add(out, key, "Irrelevant");
		return 0;
	case KT_TASK_REPORTING:
		iscsi_text_add(out, key, iscsi_list_has(value, "RFC3720") ? "RFC3720" :
			       "Reject");
		return 0;
	}
	return -1;
}
