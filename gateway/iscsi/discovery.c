/* discovery.c: Text requests (RFC 7143 §11.10-§11.11) and SendTargets
 * (§13.3, Appendix C).  A discovery session sees every target the
 * initiator may use (the acl decides); a normal session sees its own.  A
 * long answer is sent in pieces with a Target Transfer Tag that the
 * initiator returns to fetch the next.  Loop thread only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

static void
add_addresses(struct iscsi_conn *c, struct target *t, struct iscsi_text *out)
{
	const struct conf *cf = iscsi_g.conf;

	iscsi_text_add(out, "TargetName", "%s", t->name);
	for (size_t i = 0; i < cf->nportals; i++) {
		char host[256];
		unsigned port;
		bool v6;

		if (conf_parse_portal(cf->portals[i], host, sizeof host, &port) < 0)
			continue;
		/* A wildcard portal is reported as the address the initiator
		 * reached us on. */
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
		    !strcmp(host, "*")) {
			snprintf(host, sizeof host, "%s", c->local_host);
			port = c->local_port;
		}
		v6 = strchr(host, ':') != NULL;
		iscsi_text_add(out, "TargetAddress", "%s%s%s:%u,%u",
			       v6 ? "[" : "", host, v6 ? "]" : "", port, t->tpgt);
	}
}

static void
send_text_rsp(struct iscsi_conn *c, uint32_t itt)
{
	struct tx_pdu *p = tx_pdu_new(ISCSI_OP_TEXT_RSP);
	uint32_t left = c->text_pending_len - c->text_pending_off;
	uint32_t n = MIN(left, c->params.max_send_dsl);
	bool more;

	if (!p)
		return;
	/* Split on a key boundary where one fits (§11.11.2 allows any). */
	if (n < left) {
		uint32_t cut = n;
		while (cut > 0 && c->text_pending[c->text_pending_off + cut - 1])
			cut--;
		if (cut > 0)
			n = cut;
	}
	more = n < left;
	p->bhs[1] = more ? 0x40 : 0x80;		/* C or F */
	put_be32(p->bhs + 16, itt);
	if (more) {
		c->text_ttt = c->next_ttt++;
		if (c->text_ttt == ISCSI_RSVD_TAG)
			c->text_ttt = c->next_ttt++;
	}
	put_be32(p->bhs + 20, more ? c->text_ttt : ISCSI_RSVD_TAG);
	conn_fill_sn(c, p->bhs, true);
	/* An empty answer has no buffer at all (NULL + 0 is undefined). */
	tx_pdu_set_data(p, n ? c->text_pending + c->text_pending_off : NULL, n,
			true);
	conn_queue(c, p);
	c->text_pending_off += n;
	if (!more) {
		free(c->text_pending);
		c->text_pending = NULL;
		c->text_pending_len = c->text_pending_off = 0;
	}
}

void
text_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data, uint32_t dsl)
{
	struct iscsi_session *s = c->sess;
	uint32_t itt = get_be32(bhs + 16), ttt = get_be32(bhs + 20);
	struct iscsi_kv kv[64];
	struct iscsi_text out = { 0 };
	int n;

	if (ttt != ISCSI_RSVD_TAG) {
		/* Continuation of our long answer. */
		if (c->text_pending && ttt == c->text_ttt && itt == c->text_itt) {
			send_text_rsp(c, itt);
			return;
		}
		conn_send_reject(c, REJECT_INVALID_PDU_FIELD, bhs);
		return;
	}
	if (bhs[1] & 0x40) {
		/* Requests split with C are not accepted: SendTargets and
		 * MaxRecvDataSegmentLength fit in one PDU. */
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		return;
	}
	free(c->text_pending);
	c->text_pending = NULL;
	c->text_pending_len = c->text_pending_off = 0;
	n = dsl ? iscsi_text_parse(data, dsl, kv, ARRAY_SIZE(kv)) : 0;
	if (n < 0) {
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		if (!strcmp(k, "SendTargets")) {
			if (s->discovery && !strcmp(v, "All")) {
				for (size_t t = 0; t < iscsi_g.map->ntargets; t++) {
					struct target *tg = iscsi_g.map->targets[t];
					if (conn_allowed(c, tg, s->initiator))
						add_addresses(c, tg, &out);
				}
			} else if (!s->discovery &&
				   (!strcmp(v, "All") || !*v ||
				    !strcasecmp(v, s->target->name))) {
				/* §13.3: a normal session reports its own. */
				add_addresses(c, s->target, &out);
			} else if (*v) {
				struct target *tg =
					lunmap_find_target(iscsi_g.map, v);
				if (tg && conn_allowed(c, tg, s->initiator))
					add_addresses(c, tg, &out);
			}
		} else if (iscsi_negotiate_key(&c->params, &iscsi_g.offer,
					       KEY_PHASE_FFP, false, k, v,
					       &out) == 0) {
			/* MaxRecvDataSegmentLength may change in FFP. */
		} else {
			iscsi_text_add(&out, k, "NotUnderstood");
		}
	}
	if (out.oom) {
		iscsi_text_free(&out);
		conn_send_reject(c, REJECT_OUT_OF_RESOURCES, bhs);
		return;
	}
	c->text_pending = (uint8_t *)out.buf;
	c->text_pending_len = out.len;
	c->text_pending_off = 0;
	c->text_itt = itt;
	send_text_rsp(c, itt);
}
