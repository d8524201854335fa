/* login.c: the login phase (RFC 7143 §6, §11.12-§11.13).  Owns the stages
 * (security, operational, full feature), the C-bit continuation of long
 * key text in both directions, the checks on the leading login (version,
 * names, session type, target, ACL), key answers, session creation and
 * reinstatement, and login rejects with their status class and detail.
 * Loop thread only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi.h"
#include "chap.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "images.h"
#include "io/io.h"
#include "log.h"
#include "util/util.h"

#define LOGIN_PDU_TEXT_MAX 8192		/* §13.12: during login */

struct login_state {
	bool started;
	bool checked;			/* leading-login checks done */
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t itt;
	uint16_t cid;
	uint32_t cmdsn;
	unsigned stage;			/* current CSG */
	char initiator[224];
	char initiator_alias[256];
	char target_name[224];
	bool discovery;
	bool auth_rejected;
	/* Authentication: the CHAP identities that apply, and progress. */
	const struct conf_chap *chap, *mutual;
	enum { AUTH_NONE, AUTH_WANT_A, AUTH_WANT_R, AUTH_OK } auth;
	struct chap_state chap_st;
	bool declared;			/* our declarative keys are sent */
	struct target *target;
	struct iscsi_params params;
	uint8_t *acc;			/* request text across C-bit PDUs */
	uint32_t acc_len;
	struct iscsi_text out;		/* response text not yet sent */
	uint32_t out_off;
	uint8_t last_flags;		/* T/CSG/NSG for continuation replies */
	/* Per-initiator images, provisioned on an IO worker before the
	 * final login response; moved to the session by finish_login.
	 * pi is indexed by slot (npi entries); the worker walks tmpls, the
	 * templates as they were when it started (a reload may change the
	 * target meanwhile), each with a reference. */
	struct iscsi_conn *conn;
	struct io_job pi_job;
	struct lun **pi;
	size_t npi;
	struct lun **tmpls;
	size_t ntmpls;
	bool pi_done;
	uint16_t pi_status;
	char pi_err[512];
};

static void
release_images(struct iscsi_conn *c, struct lun **pi, size_t npi)
{
	if (!pi)
		return;
	for (size_t i = 0; i < npi; i++)
		if (pi[i])
			images_release_async(pi[i], c->loop);
	free(pi);
}

struct target *
login_target(const struct iscsi_conn *c)
{
	return c->login ? c->login->target : NULL;
}

void
login_free(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;

	if (!ls)
		return;
	if (ls->pi)
		release_images(c, ls->pi, ls->npi);
	free(ls->acc);
	iscsi_text_free(&ls->out);
	memset(&ls->chap_st, 0, sizeof ls->chap_st);
	free(ls);
	c->login = NULL;
}

static void
send_login_rsp(struct iscsi_conn *c, uint8_t flags, uint16_t status,
	       const void *data, uint32_t len)
{
	struct login_state *ls = c->login;
	struct tx_pdu *p = tx_pdu_new(ISCSI_OP_LOGIN_RSP);
	uint32_t depth = iscsi_g.conf->iscsi.queue_depth;

	if (!p)
		return;
	p->bhs[1] = flags;
	p->bhs[2] = 0x00;	/* version max */
	p->bhs[3] = 0x00;	/* version active */
	if (ls) {
		memcpy(p->bhs + 8, ls->isid, 6);
		put_be16(p->bhs + 14, c->sess ? c->sess->tsih : 0);
		put_be32(p->bhs + 16, ls->itt);
		put_be32(p->bhs + 24, c->stat_sn++);
		put_be32(p->bhs + 28, ls->cmdsn);
		put_be32(p->bhs + 32, ls->cmdsn + depth - 1);
	}
	p->bhs[36] = status >> 8;
	p->bhs[37] = status & 0xff;
	if (len)
		tx_pdu_set_data(p, data, len, true);
	conn_queue(c, p);
}

static void
login_fail(struct iscsi_conn *c, uint16_t status, const char *why)
{
	struct login_state *ls = c->login;
	char esc[240];

	conn_log_prefix(c);
	log_escape(esc, sizeof esc, ls ? ls->initiator : "", ls ? strlen(ls->initiator) : 0);
	log_warn("login refused (status 0x%04x: %s)%s%s%s%s", status, why,
		 esc[0] ? " initiator " : "", esc,
		 ls && ls->target_name[0] ? " target " : "",
		 ls && ls->target_name[0] ? ls->target_name : "");
	send_login_rsp(c, ls ? (ls->stage << 2) : 0, status, NULL, 0);
	/* §6.11: after a login reject the target closes the connection. */
	c->state = CONN_LOGOUT;
	conn_flush(c);
}

void
login_reject_oversize(struct iscsi_conn *c, const uint8_t *bhs)
{
	if (!c->login) {
		c->login = calloc(1, sizeof *c->login);
		if (c->login) {
			memcpy(c->login->isid, bhs + 8, 6);
			c->login->itt = get_be32(bhs + 16);
		}
	}
	login_fail(c, LOGIN_INITIATOR_ERROR,
		   "login PDU data segment over 8192 bytes");
}

void
login_reject_invalid(struct iscsi_conn *c, const uint8_t *bhs)
{
	if (!c->login) {
		c->login = calloc(1, sizeof *c->login);
		if (c->login) {
			memcpy(c->login->isid, bhs + 8, 6);
			c->login->itt = get_be32(bhs + 16);
		}
	}
	login_fail(c, LOGIN_INVALID_DURING_LOGIN, "non-login PDU during login");
}

/* Checks on the first complete request of a login (§6.1, §13). */
static bool
leading_checks(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	char esc[240];

	if (!ls->initiator[0]) {
		login_fail(c, LOGIN_MISSING_PARAMETER, "no InitiatorName");
		return false;
	}
	if (ls->tsih != 0) {
		/* Adding a connection: MaxConnections is 1 here. */
		bool exists = false;
		for (struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
			if (s->tsih == ls->tsih)
				exists = true;
		login_fail(c, exists ? LOGIN_TOO_MANY_CONNECTIONS :
			   LOGIN_SESSION_DOES_NOT_EXIST,
			   exists ? "session has its one connection" :
			   "no session with that TSIH");
		return false;
	}
	if (ls->discovery)
		return true;
	if (!ls->target_name[0]) {
		login_fail(c, LOGIN_MISSING_PARAMETER, "no TargetName");
		return false;
	}
	ls->target = lunmap_find_target(iscsi_g.map, ls->target_name);
	if (!ls->target) {
		log_escape(esc, sizeof esc, ls->target_name, strlen(ls->target_name));
		login_fail(c, LOGIN_NOT_FOUND, "no such target");
		return false;
	}
	{
		unsigned n = 0;
		for (struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
			if (s->conn->state != CONN_CLOSED &&
			    !strcasecmp(s->initiator, ls->initiator) &&
			    memcmp(s->isid, ls->isid, 6))
				n++;
		if (n >= iscsi_g.conf->iscsi.max_sessions_per_initiator) {
			login_fail(c, LOGIN_TOO_MANY_CONNECTIONS,
				   "max_sessions_per_initiator reached");
			return false;
		}
	}
	if (!target_allows(ls->target, ls->initiator)) {
		login_fail(c, LOGIN_AUTHORIZATION_FAILURE,
			   "initiator not in the target's acl");
		return false;
	}
	if (!conn_allowed(c, ls->target, ls->initiator)) {
		login_fail(c, LOGIN_AUTHORIZATION_FAILURE,
			   "address not in the target's networks");
		return false;
	}
	return true;
}

static bool
finish_login(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	struct iscsi_session *s, *old;
	char esc[240];

	if (!ls->discovery) {
		old = session_find(ls->initiator, ls->isid, ls->target, false);
		if (old) {
			/* §6.3.5: session reinstatement closes the old one. */
			conn_log_prefix(old->conn);
			log_info("session reinstated by a new login with the same ISID");
			conn_close(old->conn, "session reinstatement");
			conn_log_prefix(c);
		}
	}
	s = session_new(c);
	if (!s) {
		login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
		return false;
	}
	c->sess = s;
	s->discovery = ls->discovery;
	s->target = ls->target;
	snprintf(s->initiator, sizeof s->initiator, "%s", ls->initiator);
	snprintf(s->initiator_alias, sizeof s->initiator_alias, "%s",
		 ls->initiator_alias);
	memcpy(s->isid, ls->isid, 6);
	s->pi = ls->pi;
	s->npi = ls->npi;
	ls->pi = NULL;
	s->tsih = session_alloc_tsih();
	s->exp_cmd_sn = ls->cmdsn;
	s->max_cmd_sn = ls->cmdsn - 1;
	session_update_window(s);
	if (!s->discovery) {
		s->nexus = scsi_nexus_new(s->target, s->initiator, s->isid);
		if (!s->nexus) {
			login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
			return false;
		}
		if (nexus_seen_check(s->initiator, s->isid, s->target->name))
			scsi_nexus_power_on(s->nexus);
	}
	c->params = ls->params;
	c->params.max_recv_dsl = iscsi_g.offer.max_recv_dsl;
	c->cid = ls->cid;
	conn_log_prefix(c);
	log_escape(esc, sizeof esc, ls->initiator, strlen(ls->initiator));
	log_info("login: %s session to %s, TSIH %u, MaxRecvDSL %u/%u, "
		 "MaxBurst %u, FirstBurst %u, InitialR2T %s, ImmediateData %s, "
		 "MaxOutstandingR2T %u, HeaderDigest %s, DataDigest %s",
		 s->discovery ? "discovery" : "normal",
		 s->discovery ? "-" : s->target->name, s->tsih,
		 c->params.max_recv_dsl, c->params.max_send_dsl,
		 c->params.max_burst_length, c->params.first_burst_length,
		 c->params.initial_r2t ? "Yes" : "No",
		 c->params.immediate_data ? "Yes" : "No",
		 c->params.max_outstanding_r2t,
		 c->params.header_digest ? "CRC32C" : "None",
		 c->params.data_digest ? "CRC32C" : "None");
	return true;
}

static bool
is_key(const char *k, const char *name)
{
	return !strcmp(k, name);
}

/* The CHAP exchange, once the initiator's CHAP_N/CHAP_R (and maybe its own
 * CHAP_I/CHAP_C for mutual CHAP) arrived.  Returns false after a reject. */
static __attribute__((noinline)) bool
chap_finish(struct iscsi_conn *c, const char *n, const char *r,
	    const char *ci, const char *cc)
{
	struct login_state *ls = c->login;
	uint8_t resp[64], chal[1024], mine[64];
	char hex[2 * 64 + 3];
	int rlen, clen;
	uint64_t id;

	if (ls->auth != AUTH_WANT_R || !n || !r) {
		login_fail(c, LOGIN_AUTH_FAILURE, "CHAP keys out of order");
		return false;
	}
	rlen = chap_decode(r, resp, sizeof resp);
	if (strcmp(n, ls->chap->user) || rlen < 0 ||
	    !chap_verify(&ls->chap_st, ls->chap->secret, ls->chap->secret_len,
			 resp, (size_t)rlen)) {
		char esc[300];
		log_escape(esc, sizeof esc, n, strlen(n));
		login_fail(c, LOGIN_AUTH_FAILURE, "CHAP authentication failed");
		log_warn("CHAP: wrong name or response for user '%s'", esc);
		return false;
	}
	if (ci || cc) {
		if (!ls->mutual) {
			login_fail(c, LOGIN_AUTH_FAILURE,
				   "mutual CHAP asked but not configured");
			return false;
		}
		clen = cc ? chap_decode(cc, chal, sizeof chal) : -1;
		if (!ci || iscsi_parse_number(ci, &id) < 0 || id > 255 ||
		    clen < 0 ||
		    !chap_challenge_acceptable(&ls->chap_st, chal, (size_t)clen)) {
			login_fail(c, LOGIN_AUTH_FAILURE,
				   "initiator's CHAP challenge refused (short, reflected or replayed)");
			return false;
		}
		if (chap_response(ls->chap_st.alg, (uint8_t)id,
				  ls->mutual->secret, ls->mutual->secret_len,
				  chal, (size_t)clen, mine) < 0) {
			login_fail(c, LOGIN_TARGET_ERROR, "CHAP digest failed");
			return false;
		}
		chap_encode_hex(mine, chap_digest_len(ls->chap_st.alg), hex);
		iscsi_text_add(&ls->out, "CHAP_N", "%s", ls->mutual->user);
		iscsi_text_add(&ls->out, "CHAP_R", "%s", hex);
	}
	/* One challenge, one answer: it can never be used again. */
	memset(ls->chap_st.challenge, 0, sizeof ls->chap_st.challenge);
	ls->auth = AUTH_OK;
	log_debug(LOG_AREA_ISCSI_LOGIN, "CHAP: authenticated%s",
		  ci ? " (mutual)" : "");
	return true;
}

/* Answer every key of the request.  Returns false after a login reject.
 * Names come first, so the target (and its CHAP settings) is known before
 * AuthMethod is answered, whatever the order of the keys. */
static bool
process_keys(struct iscsi_conn *c, unsigned csg)
{
	struct login_state *ls = c->login;
	CLEANUP_FREE struct iscsi_kv *kv =
		calloc(ISCSI_LOGIN_KEYS_MAX, sizeof *kv);
	const char *chap_n = NULL, *chap_r = NULL, *chap_i = NULL,
		   *chap_c = NULL;
	int n = 0;

	if (!kv) {
		login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
		return false;
	}
	if (ls->acc_len) {
		n = iscsi_text_parse(ls->acc, ls->acc_len, kv,
				     ISCSI_LOGIN_KEYS_MAX);
		if (n < 0) {
			login_fail(c, LOGIN_INITIATOR_ERROR, "malformed key text");
			return false;
		}
	}
	for (int i = 0; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		for (int j = 0; j < i; j++)
			if (!strcmp(kv[j].key, k)) {
				/* §6.2: a key sent twice is a protocol error. */
				login_fail(c, LOGIN_INITIATOR_ERROR,
					   "key sent twice");
				return false;
			}
		if (!strncmp(k, "CHAP_", 5))
			log_debug(LOG_AREA_ISCSI_LOGIN, "login key %s", k);
		else
			log_debug(LOG_AREA_ISCSI_LOGIN, "login key %s=%s", k, v);
		if (is_key(k, "InitiatorName")) {
			if (!*v || strlen(v) > 223) {
				login_fail(c, LOGIN_INITIATOR_ERROR,
					   "bad InitiatorName");
				return false;
			}
			snprintf(ls->initiator, sizeof ls->initiator, "%s", v);
		} else if (is_key(k, "TargetName")) {
			if (!*v || strlen(v) > 223) {
				login_fail(c, LOGIN_INITIATOR_ERROR,
					   "bad TargetName");
				return false;
			}
			snprintf(ls->target_name, sizeof ls->target_name, "%s", v);
		} else if (is_key(k, "SessionType")) {
			if (!strcmp(v, "Discovery"))
				ls->discovery = true;
			else if (!strcmp(v, "Normal"))
				ls->discovery = false;
			else {
				login_fail(c, LOGIN_SESSION_TYPE_UNSUPPORTED,
					   "unknown SessionType");
				return false;
			}
		}
	}
	if (!ls->checked) {
		if (!leading_checks(c))
			return false;
		ls->checked = true;
		if (!ls->discovery) {
			/* §13.9: TargetPortalGroupTag in the first response. */
			iscsi_text_add(&ls->out, "TargetPortalGroupTag", "%u",
				       ls->target->tpgt);
			if (ls->target->alias)
				iscsi_text_add(&ls->out, "TargetAlias", "%s",
					       ls->target->alias);
		}
		ls->chap = ls->discovery ? iscsi_g.conf->discovery_chap :
					   ls->target->chap;
		ls->mutual = ls->discovery ? iscsi_g.conf->discovery_mutual_chap :
					     ls->target->mutual_chap;
		if (ls->chap && csg != 0) {
			/* §6.3: skipping the security stage is not allowed
			 * when the target requires authentication. */
			login_fail(c, LOGIN_AUTH_FAILURE,
				   "CHAP required but the security stage was skipped");
			return false;
		}
	}
	for (int i = 0; i < n; i++) {
		const char *k = kv[i].key, *v = kv[i].value;

		if (is_key(k, "InitiatorName") || is_key(k, "TargetName") ||
		    is_key(k, "SessionType")) {
			continue;
		} else if (is_key(k, "InitiatorAlias")) {
			snprintf(ls->initiator_alias, sizeof ls->initiator_alias,
				 "%s", v);
		} else if (is_key(k, "AuthMethod")) {
			if (ls->stage != 0) {
				login_fail(c, LOGIN_INITIATOR_ERROR,
					   "AuthMethod outside the security stage");
				return false;
			}
			if (ls->chap && iscsi_list_has(v, "CHAP")) {
				iscsi_text_add(&ls->out, k, "CHAP");
				ls->auth = AUTH_WANT_A;
			} else if (!ls->chap && iscsi_list_has(v, "None")) {
				iscsi_text_add(&ls->out, k, "None");
				ls->auth = AUTH_OK;
			} else {
				ls->auth_rejected = true;
				iscsi_text_add(&ls->out, k, "Reject");
			}
		} else if (is_key(k, "CHAP_A")) {
			int alg = chap_pick_alg(v);
			char hex[2 * 32 + 3];

			if (ls->stage != 0 || ls->auth != AUTH_WANT_A) {
				login_fail(c, LOGIN_AUTH_FAILURE,
					   "CHAP_A out of order");
				return false;
			}
			if (alg < 0) {
				login_fail(c, LOGIN_AUTH_FAILURE,
					   "no CHAP algorithm in common");
				return false;
			}
			if (chap_new_challenge(&ls->chap_st, alg) < 0) {
				login_fail(c, LOGIN_TARGET_ERROR,
					   "no random bytes for a challenge");
				return false;
			}
			chap_encode_hex(ls->chap_st.challenge,
					ls->chap_st.challenge_len, hex);
			iscsi_text_add(&ls->out, "CHAP_A", "%d", alg);
			iscsi_text_add(&ls->out, "CHAP_I", "%u", ls->chap_st.id);
			iscsi_text_add(&ls->out, "CHAP_C", "%s", hex);
			ls->auth = AUTH_WANT_R;
		} else if (is_key(k, "CHAP_N")) {
			chap_n = v;
		} else if (is_key(k, "CHAP_R")) {
			chap_r = v;
		} else if (is_key(k, "CHAP_I")) {
			chap_i = v;
		} else if (is_key(k, "CHAP_C")) {
			chap_c = v;
		} else if (!strncmp(k, "CHAP_", 5)) {
			iscsi_text_add(&ls->out, k, "NotUnderstood");
		} else if (is_key(k, "SendTargets") || is_key(k, "TargetAddress") ||
			   is_key(k, "TargetAlias") ||
			   is_key(k, "TargetPortalGroupTag")) {
			/* Target-declared or text-only keys (§13). */
			iscsi_text_add(&ls->out, k, "Irrelevant");
		} else if (iscsi_negotiate_key(&ls->params, &iscsi_g.offer,
					       ls->stage == 0 ? KEY_PHASE_SECURITY :
					       KEY_PHASE_OPERATIONAL, true, k, v,
					       &ls->out) == 0) {
			/* negotiated */
		} else {
			/* Unknown, X- and X# keys (§6.2, §13.1). */
			iscsi_text_add(&ls->out, k, "NotUnderstood");
		}
	}
	if ((chap_n || chap_r || chap_i || chap_c) &&
	    !chap_finish(c, chap_n, chap_r, chap_i, chap_c))
		return false;
	return true;
}

/* Send the next piece of our answer: at most 8192 bytes a PDU during
 * login (§13.12), with C set while more follows; the initiator fetches
 * the rest with empty requests (§11.13.2).  The stage transition the
 * initiator asked for happens with the last piece only. */
static void send_answer(struct iscsi_conn *c);

/* IO worker: open (first creating) this initiator's image of each
 * per-initiator LUN of the target. */
static void
provision_run(struct io_job *job)
{
	struct login_state *ls = container_of(job, struct login_state, pi_job);

	for (size_t i = 0; i < ls->ntmpls; i++) {
		struct lun *tmpl = ls->tmpls[i];

		if (images_acquire(tmpl, ls->initiator, &ls->pi[tmpl->slot],
				   &ls->pi_status, ls->pi_err,
				   sizeof ls->pi_err) < 0) {
			log_error("%s: image for %s: %s", tmpl->pointer,
				  ls->initiator, ls->pi_err);
			for (size_t k = 0; k < ls->npi; k++)
				if (ls->pi[k]) {
					images_release(ls->pi[k]);
					ls->pi[k] = NULL;
				}
			return;
		}
	}
	ls->pi_status = LOGIN_OK;
}

/* Loop thread: provisioning is over. */
static void
provision_done(struct io_job *job)
{
	struct login_state *ls = container_of(job, struct login_state, pi_job);
	struct iscsi_conn *c = ls->conn;

	c->login_busy = false;
	for (size_t i = 0; i < ls->ntmpls; i++)
		lun_put(ls->tmpls[i]);
	free(ls->tmpls);
	ls->tmpls = NULL;
	ls->ntmpls = 0;
	conn_put(c);
	if (c->state == CONN_CLOSED)
		return;		/* login_free releases the images */
	conn_log_prefix(c);
	if (ls->pi_status != LOGIN_OK) {
		free(ls->pi);
		ls->pi = NULL;
		login_fail(c, ls->pi_status, ls->pi_err);
		return;
	}
	ls->pi_done = true;
	send_answer(c);
	conn_update_events(c);
}

static void
provision_start(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	const struct target *t = ls->target;

	ls->npi = t->next_slot;
	ls->pi = calloc(ls->npi + 1, sizeof *ls->pi);
	ls->tmpls = calloc(t->npi + 1, sizeof *ls->tmpls);
	if (!ls->pi || !ls->tmpls) {
		free(ls->pi);
		free(ls->tmpls);
		ls->pi = NULL;
		ls->tmpls = NULL;
		login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	for (size_t i = 0; i < t->nluns && ls->ntmpls < t->npi; i++)
		if (t->luns[i]->pi) {
			lun_get(t->luns[i]);
			ls->tmpls[ls->ntmpls++] = t->luns[i];
		}
	ls->conn = c;
	ls->pi_status = LOGIN_TARGET_ERROR;
	ls->pi_job.fn = provision_run;
	ls->pi_job.done = provision_done;
	ls->pi_job.loop = c->loop;
	c->login_busy = true;
	conn_get(c);
	conn_update_events(c);
	io_submit(&ls->pi_job);
}

static void
send_answer(struct iscsi_conn *c)
{
	struct login_state *ls = c->login;
	uint32_t left = ls->out.len - ls->out_off;
	uint32_t n = MIN(left, LOGIN_PDU_TEXT_MAX);
	bool last = n >= left;
	uint8_t flags = ls->last_flags;

	if (!last) {
		flags = (flags & ~0x80) | 0x40;	/* C, no transit yet */
	} else if ((flags & 0x80) && (flags & 3) == 3) {
		if (!ls->discovery && ls->target->npi && !ls->pi_done) {
			/* Answered once the images are ready. */
			provision_start(c);
			return;
		}
		if (!finish_login(c))
			return;
	}
	send_login_rsp(c, flags, LOGIN_OK, n ? ls->out.buf + ls->out_off : NULL,
		       n);
	ls->out_off += n;
	if (!last) {
		conn_flush(c);
		return;
	}
	iscsi_text_free(&ls->out);
	ls->out_off = 0;
	if (flags & 0x80) {
		ls->stage = flags & 3;
		if (ls->stage == 3) {
			c->state = CONN_FFP;
			login_free(c);
		}
	}
	conn_flush(c);
}

void
login_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data, uint32_t dsl)
{
	struct login_state *ls = c->login;
	uint8_t flags = bhs[1];
	bool transit = flags & 0x80, cont = flags & 0x40;
	unsigned csg = (flags >> 2) & 3, nsg = flags & 3;
	uint8_t rflags;

	if (!ls) {
		ls = c->login = calloc(1, sizeof *ls);
		if (!ls) {
			conn_close(c, "out of memory");
			return;
		}
	}
	if (!ls->started) {
		ls->started = true;
		memcpy(ls->isid, bhs + 8, 6);
		ls->tsih = get_be16(bhs + 14);
		ls->itt = get_be32(bhs + 16);
		ls->cid = get_be16(bhs + 20);
		ls->cmdsn = get_be32(bhs + 24);
		ls->stage = csg;
		c->stat_sn = get_be32(bhs + 28);
		ls->params = iscsi_g.offer;
		/* Until negotiated, values default as in §13. */
		iscsi_params_defaults(&ls->params);
		ls->params.max_recv_dsl = iscsi_g.offer.max_recv_dsl;
		ls->params.max_send_dsl = 8192;
		/* Version-min above ours (0x00) cannot work (§11.12.4). */
		if (bhs[3] > 0x00) {
			login_fail(c, LOGIN_UNSUPPORTED_VERSION,
				   "unsupported version");
			return;
		}
	} else if (memcmp(ls->isid, bhs + 8, 6) || ls->tsih != get_be16(bhs + 14) ||
		   ls->cid != get_be16(bhs + 20)) {
		login_fail(c, LOGIN_INITIATOR_ERROR,
			   "ISID, TSIH or CID changed during login");
		return;
	}
	ls->itt = get_be32(bhs + 16);
	c->exp_stat_sn = get_be32(bhs + 28);

	if (transit && cont) {
		login_fail(c, LOGIN_INITIATOR_ERROR, "T and C bits both set");
		return;
	}
	if (csg != ls->stage || csg >= 2 ||
	    (transit && (nsg == 2 || nsg <= csg))) {
		login_fail(c, LOGIN_INITIATOR_ERROR, "invalid stage transition");
		return;
	}
	/* The initiator fetches the rest of our long answer with empty
	 * requests (§11.13.2). */
	if (ls->out.len && ls->out_off) {
		if (dsl) {
			login_fail(c, LOGIN_INITIATOR_ERROR,
				   "keys sent while the target's answer continues");
			return;
		}
		send_answer(c);
		return;
	}
	if (dsl) {
		uint8_t *nb;

		if (ls->acc_len + dsl > ISCSI_LOGIN_TEXT_MAX) {
			login_fail(c, LOGIN_INITIATOR_ERROR, "login text too long");
			return;
		}
		nb = realloc(ls->acc, ls->acc_len + dsl);
		if (!nb) {
			login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
			return;
		}
		memcpy(nb + ls->acc_len, data, dsl);
		ls->acc = nb;
		ls->acc_len += dsl;
	}
	if (cont) {
		/* More text follows: acknowledge with an empty response. */
		send_login_rsp(c, csg << 2, LOGIN_OK, NULL, 0);
		conn_flush(c);
		return;
	}
	if (!process_keys(c, csg))
		return;
	free(ls->acc);
	ls->acc = NULL;
	ls->acc_len = 0;
	if (transit && csg == 0 && ls->auth_rejected) {
		login_fail(c, LOGIN_AUTH_FAILURE,
			   "no authentication method in common");
		return;
	}
	if (transit && csg == 0 && ls->chap && ls->auth != AUTH_OK) {
		/* §6.3: the target may refuse the transit while the
		 * exchange goes on: answer with T=0 and stay. */
		if (ls->auth == AUTH_NONE) {
			login_fail(c, LOGIN_AUTH_FAILURE,
				   "CHAP required but not negotiated");
			return;
		}
		transit = false;
	}
	if (!ls->declared && (csg == 1 || (transit && nsg == 3))) {
		/* Declarative: what we can receive (§13.12). */
		iscsi_text_add(&ls->out, "MaxRecvDataSegmentLength", "%u",
			       iscsi_g.offer.max_recv_dsl);
		ls->declared = true;
	}
	if (ls->out.oom) {
		login_fail(c, LOGIN_OUT_OF_RESOURCES, "out of memory");
		return;
	}
	if (transit && nsg == 3 && !ls->discovery &&
	    ((iscsi_g.offer.header_digest_required && !ls->params.header_digest) ||
	     (iscsi_g.offer.data_digest_required && !ls->params.data_digest))) {
		/* The map requires CRC32C and it was not agreed. */
		login_fail(c, LOGIN_INITIATOR_ERROR,
			   "CRC32C digests required by the map");
		return;
	}
	rflags = transit ? (0x80 | (csg << 2) | nsg) : (csg << 2);
	ls->last_flags = rflags;
	send_answer(c);
}
