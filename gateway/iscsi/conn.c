/* conn.c: one iSCSI connection: the receive state machine, PDU dispatch by
 * phase, NOP-Out/NOP-In, Logout, closing and reaping.  Loop thread only.
 *
 *   RX_BHS --(AHS?)--> RX_AHS --(data?)--> RX_DATA --> RX_PAD --> dispatch
 *
 * A Data-Out's payload is read straight into its task's buffer; any other
 * data segment into a buffer of its own, at most MaxRecvDataSegmentLength.
 * A connection is freed only when its last reference goes (tasks in the
 * workers hold one) and never inside an event callback: conn_reap runs
 * after the batch of events that closed it, and from the tick.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <endian.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"
#include "util/crc32c.h"

struct iscsi_globals iscsi_g;

void
conn_log_prefix(struct iscsi_conn *c)
{
	char buf[400], esc[240];

	if (c && c->sess && c->sess->initiator[0]) {
		log_escape(esc, sizeof esc, c->sess->initiator,
			   strlen(c->sess->initiator));
		snprintf(buf, sizeof buf, "%s %s", c->peer, esc);
		log_set_prefix(buf);
	} else {
		log_set_prefix(c ? c->peer : NULL);
	}
}

void
conn_get(struct iscsi_conn *c)
{
	c->refs++;
}

void
conn_put(struct iscsi_conn *c)
{
	c->refs--;	/* freed by conn_reap once closed and unreferenced */
	if (c->refs == 0 && c->state == CONN_CLOSED)
		iscsi_g.reap_wanted = true;
}

void
conn_update_events(struct iscsi_conn *c)
{
	uint32_t ev = 0;
	bool want_in;

	if (c->state == CONN_CLOSED)
		return;
	/* Stop reading while the window is full of our own work: a
	 * connection cannot queue more than it is allowed. */
	want_in = !c->draining && !c->login_busy && c->state != CONN_LOGOUT &&
		  c->ntasks < 2 * iscsi_g.conf->iscsi.queue_depth + 16 &&
		  c->tx_bytes < (64u << 20);
	/* EPOLLRDHUP only while reading: a half-closed peer would
	 * otherwise wake the loop for ever while we wait to send. */
	if (want_in)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->tx_head)
		ev |= EPOLLOUT;
	/* Most calls change nothing: spare the loop an epoll_ctl. */
	if (ev == c->ev_mask)
		return;
	if (evloop_mod(c->loop, &c->ev, ev) == 0)
		c->ev_mask = ev;
}

void
conn_close(struct iscsi_conn *c, const char *why)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_log_prefix(c);
	if (c->sess && c->sess->target)
		log_info("connection closed (%s): target %s", why,
			 c->sess->target->name);
	else
		log_info("connection closed (%s)", why);
	c->state = CONN_CLOSED;
	evloop_del(c->loop, &c->ev);
	close(c->ev.fd);
	c->ev.fd = -1;
	/* Abort every task: nothing more will be sent on this link. */
	while (c->tasks) {
		struct iscsi_task *t = c->tasks;
		task_abort(t, NULL);
	}
	/* I_T nexus loss: SPC-2 reservations end now, not when the last
	 * reference to the session goes. */
	if (c->sess)
		scsi_nexus_lost(c->sess->nexus);
	while (c->tx_head) {
		struct tx_pdu *p = c->tx_head;
		c->tx_head = p->next;
		if (p->task)
			task_put(p->task);
		free(p->owned);
		free(p);
	}
	c->tx_tail = NULL;
	c->tx_bytes = 0;
	c->refs--;	/* the reference of being open */
	iscsi_g.reap_wanted = true;
	log_set_prefix(NULL);
}

static void
conn_free(struct iscsi_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		iscsi_g.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	iscsi_g.nconns--;
	if (c->sess)
		session_free(c->sess);
	login_free(c);
	free(c->rx_data_owned);
	free(c->rxb);
	free(c->text_pending);
	free(c);
}

bool
conn_allowed(const struct iscsi_conn *c, const struct target *t,
	     const char *initiator)
{
	return target_allows(t, initiator) &&
	       conf_net_match(t->nets, t->nnets,
			      (const struct sockaddr *)&c->peer_sa);
}

void
conn_flush_later(struct iscsi_conn *c)
{
	if (c->flush_queued)
		return;
	c->flush_queued = true;
	conn_get(c);
	c->flush_next = iscsi_g.flush_list;
	iscsi_g.flush_list = c;
}

void
conn_flush_queued(void)
{
	while (iscsi_g.flush_list) {
		struct iscsi_conn *c = iscsi_g.flush_list;

		iscsi_g.flush_list = c->flush_next;
		c->flush_next = NULL;
		c->flush_queued = false;
		if (c->state != CONN_CLOSED) {
			conn_log_prefix(c);
			conn_flush(c);
			log_set_prefix(NULL);
		}
		conn_put(c);
	}
}

void
conn_after_batch(void *opaque)
{
	conn_flush_queued();
	if (iscsi_g.reap_wanted) {
		iscsi_g.reap_wanted = false;
		conn_reap();
	}
}

void
conn_reap(void)
{
	struct iscsi_conn *c = iscsi_g.conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->state == CONN_CLOSED && c->refs == 0)
			conn_free(c);
	}
}

static void conn_event(struct ev_handler *h, uint32_t events);

/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
static bool
sa_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

void
conn_accept(int fd, const char *peer, const char *lhost, unsigned lport)
{
	struct iscsi_conn *c;
	int one = 1;

	if (iscsi_g.shutting_down ||
	    iscsi_g.nconns >= iscsi_g.conf->iscsi.max_connections) {
		log_warn("%s: refusing connection: %s", peer,
			 iscsi_g.shutting_down ? "shutting down" :
			 "max_connections reached");
		close(fd);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	{
		socklen_t len = sizeof c->peer_sa;
		if (getpeername(fd, (struct sockaddr *)&c->peer_sa, &len) < 0)
			c->peer_sa.ss_family = AF_UNSPEC;
	}
	c->peer_loopback = sa_is_loopback(&c->peer_sa);
	c->ev.fd = fd;
	c->ev.cb = conn_event;
	c->loop = iscsi_g.loop;
	c->refs = 1;
	c->state = CONN_LOGIN;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	snprintf(c->local_host, sizeof c->local_host, "%s", lhost);
	c->local_port = lport;
	c->created = c->last_rx = time(NULL);
	iscsi_params_defaults(&c->params);
	c->next_ttt = 1;
	c->next = iscsi_g.conns;
	if (c->next)
		c->next->prev = c;
	iscsi_g.conns = c;
	iscsi_g.nconns++;
	c->ev_mask = EPOLLIN | EPOLLRDHUP;
	if (evloop_add(c->loop, &c->ev, c->ev_mask) < 0) {
		conn_close(c, "epoll");
		return;
	}
	log_debug(LOG_AREA_ISCSI_LOGIN, "%s: connection accepted", peer);
}

/* ---- PDUs handled here: NOP-Out, Logout ---- */

void
nop_out_handle(struct iscsi_conn *c, uint8_t *bhs, uint8_t *data,
	       uint32_t dsl)
{
	uint32_t itt = get_be32(bhs + 16), ttt = get_be32(bhs + 20);
	struct tx_pdu *p;

	if (ttt != ISCSI_RSVD_TAG) {
		/* The answer to our ping (§11.18). */
		if (ttt == c->ping_ttt)
			c->ping_sent = 0;
		return;
	}
	if (itt == ISCSI_RSVD_TAG)
		return;	/* a ping that wants no answer */
	p = tx_pdu_new(ISCSI_OP_NOP_IN);
	if (!p)
		return;
	p->bhs[1] = 0x80;
	memcpy(p->bhs + 8, bhs + 8, 8);		/* LUN */
	put_be32(p->bhs + 16, itt);
	put_be32(p->bhs + 20, ISCSI_RSVD_TAG);
	conn_fill_sn(c, p->bhs, true);
	/* Echo the ping data (§11.19), but never more than the initiator
	 * can receive: its MaxRecvDataSegmentLength may be below ours. */
	tx_pdu_set_data(p, data, MIN(dsl, c->params.max_send_dsl), true);
	conn_queue(c, p);
}

void
logout_maybe_finish(struct iscsi_conn *c)
{
	struct tx_pdu *p;

	if (!c->logout_pending || c->ntasks > 0 || c->state == CONN_CLOSED)
		return;
	c->logout_pending = false;
	p = tx_pdu_new(ISCSI_OP_LOGOUT_RSP);
	if (!p)
		return;
	p->bhs[1] = 0x80;
	p->bhs[2] = c->logout_response;
	put_be32(p->bhs + 16, c->logout_itt);
	conn_fill_sn(c, p->bhs, true);
	put_be16(p->bhs + 40, c->params.default_time2wait);
	put_be16(p->bhs + 42, c->params.default_time2retain);
	conn_queue(c, p);
	if (c->logout_response == 0) {
		c->state = CONN_LOGOUT;	/* close once the response is out */
		conn_log_prefix(c);
		log_info("logout");
	}
	conn_flush(c);
}

void
logout_handle(struct iscsi_conn *c, uint8_t *bhs)
{
	unsigned reason = bhs[1] & 0x7f;
	uint16_t cid = get_be16(bhs + 20);

	c->logout_itt = get_be32(bhs + 16);
	c->logout_pending = true;
	switch (reason) {
	case 0:	/* close the session: it has this one connection */
		c->logout_response = 0;
		break;
	case 1:	/* close the connection */
		c->logout_response = cid == c->cid ? 0 : 1;
		break;
	case 2:	/* remove for recovery: ERL 0 has none (§11.15.1) */
		c->logout_response = 2;
		break;
	default:
		c->logout_pending = false;
		conn_send_reject(c, REJECT_INVALID_PDU_FIELD, bhs);
		return;
	}
	logout_maybe_finish(c);
}

/* ---- receive state machine ---- */

static void
rx_reset(struct iscsi_conn *c)
{
	c->rx_stage = RX_BHS;
	c->rx_got = 0;
	c->rx_ahs_len = 0;
	c->rx_data = NULL;
	free(c->rx_data_owned);
	c->rx_data_owned = NULL;
	c->rx_dsl = 0;
	c->rx_task = NULL;
	c->rx_discard = false;
	c->rx_reject = 0;
	c->rx_hd = c->rx_dd = false;
}

static void
dispatch(struct iscsi_conn *c)
{
	uint8_t *bhs = c->rx_bhs;
	uint8_t op = bhs_opcode(bhs);
	uint8_t *data = c->rx_data;

	if (log_debug_on[LOG_AREA_ISCSI_PDU])
		log_debug_msg("rx opcode 0x%02x%s itt 0x%08x dsl %u", op,
			      bhs_immediate(bhs) ? " (I)" : "",
			      get_be32(bhs + 16), c->rx_dsl);
	if (c->rx_reject == REJECT_DIGEST_ERROR && c->state == CONN_FFP) {
		/* A damaged data segment: a SCSI command or its Data-Out
		 * fails with CHECK CONDITION (keeping CmdSN in step); any
		 * other PDU is rejected (§11.17.1). */
		if (op == ISCSI_OP_SCSI_CMD) {
			c->rx_data_owned = NULL;
			free(data);
			session_cmd_pdu(c, bhs, NULL, c->rx_dsl);
			return;
		}
		if (op == ISCSI_OP_DATA_OUT) {
			cmd_data_out_digest_error(c);
			return;
		}
	}
	if (c->rx_reject) {
		conn_send_reject(c, c->rx_reject, bhs);
		return;
	}
	if (c->state == CONN_LOGIN) {
		if (op == ISCSI_OP_LOGIN_REQ)
			login_handle(c, bhs, data, c->rx_dsl);
		else
			login_reject_invalid(c, bhs);
		return;
	}
	if (c->state != CONN_FFP)
		return;
	switch (op) {
	case ISCSI_OP_DATA_OUT:
		cmd_data_out_done(c);
		break;
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_SCSI_CMD:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		/* Ownership of the data segment moves to the session. */
		c->rx_data_owned = NULL;
		session_cmd_pdu(c, bhs, data, c->rx_dsl);
		break;
	case ISCSI_OP_LOGIN_REQ:
		/* §6.2: a login request in full feature phase is a protocol
		 * error. */
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		break;
	case ISCSI_OP_SNACK:
		/* ErrorRecoveryLevel 0 has no SNACK (§11.16). */
		conn_send_reject(c, REJECT_PROTOCOL_ERROR, bhs);
		break;
	default:
		conn_send_reject(c, REJECT_CMD_NOT_SUPPORTED, bhs);
		break;
	}
}

/* The header is complete: validate it and choose where data goes. */
static bool
rx_header(struct iscsi_conn *c)
{
	uint8_t *bhs = c->rx_bhs;
	uint32_t dsl = bhs_dsl(bhs);
	uint32_t limit = c->state == CONN_LOGIN ? 8192 : c->params.max_recv_dsl;

	c->rx_dsl = dsl;
	/* During login both sides may send 8192 bytes at most (§13.12). */
	if (c->state == CONN_LOGIN && limit < 8192)
		limit = 8192;
	if (dsl > limit) {
		if (c->state == CONN_LOGIN) {
			/* Nothing is negotiated yet: refuse the login. */
			login_reject_oversize(c, bhs);
			return false;
		}
		if (dsl > 4 * (uint64_t)limit) {
			conn_close(c, "data segment far over MaxRecvDataSegmentLength");
			return false;
		}
		log_warn("data segment of %u bytes exceeds the negotiated %u",
			 dsl, limit);
		/* Read it into scratch space only, then Reject the PDU. */
		c->rx_reject = REJECT_PROTOCOL_ERROR;
		c->rx_discard = true;
		return true;
	}
	if (!c->rx_discard && bhs_opcode(bhs) == ISCSI_OP_DATA_OUT &&
	    c->state == CONN_FFP)
		cmd_data_out_header(c);
	if (c->rx_discard)
		return true;	/* data goes to scratch space */
	if (dsl && !c->rx_data) {
		c->rx_data_owned = malloc(dsl);
		if (!c->rx_data_owned) {
			conn_close(c, "out of memory");
			return false;
		}
		c->rx_data = c->rx_data_owned;
	}
	return true;
}

static void
rx_pdu_done(struct iscsi_conn *c)
{
	dispatch(c);
	if (c->state != CONN_CLOSED)
		rx_reset(c);
}

static bool
header_digest_ok(struct iscsi_conn *c)
{
	uint32_t d = crc32c_update(~0u, c->rx_bhs, ISCSI_BHS_LEN);
	uint32_t got;

	d = ~crc32c_update(d, c->rx_ahs, c->rx_ahs_len);
	memcpy(&got, c->rx_dig, 4);
	return le32toh(got) == d;
}

static bool
data_digest_ok(struct iscsi_conn *c)
{
	uint32_t d = crc32c_update(~0u, c->rx_data, c->rx_dsl);
	uint32_t got;

	d = ~crc32c_update(d, c->rx_pad, (4 - (c->rx_dsl & 3)) & 3);
	memcpy(&got, c->rx_dig, 4);
	return le32toh(got) == d;
}

/* Bytes a read() asks for in full feature phase: several PDUs' worth of
 * headers and small data segments in one system call. */
#define RXB_SIZE (32u << 10)

/* Read up to want bytes for the current stage into dst: first what an
 * earlier read brought beyond its PDU, then from the socket, through the
 * read-ahead buffer unless want is large (big data segments land in
 * place).  During login exactly what is asked is read: nothing is read
 * past a PDU whose handling may pause the connection (login_busy).
 * Returns read()'s convention. */
static ssize_t
rx_read(struct iscsi_conn *c, uint8_t *dst, uint32_t want)
{
	uint32_t n;
	ssize_t r;

	if (c->rxb_off < c->rxb_len) {
		n = MIN(want, c->rxb_len - c->rxb_off);
		memcpy(dst, c->rxb + c->rxb_off, n);
		c->rxb_off += n;
		return n;
	}
	if (c->state != CONN_FFP || want >= RXB_SIZE / 2)
		return read(c->ev.fd, dst, want);
	if (!c->rxb && !(c->rxb = malloc(RXB_SIZE)))
		return read(c->ev.fd, dst, want);
	/* The last read emptied the socket: the read() that would only
	 * say EAGAIN is left to epoll, which reports anything new. */
	if (c->rx_drained) {
		errno = EAGAIN;
		return -1;
	}
	r = read(c->ev.fd, c->rxb, RXB_SIZE);
	if (r <= 0)
		return r;
	c->rx_drained = r < (ssize_t)RXB_SIZE;
	n = MIN(want, (uint32_t)r);
	memcpy(dst, c->rxb, n);
	c->rxb_off = n;
	c->rxb_len = (uint32_t)r;
	return n;
}

/* Read what the current stage needs.  Returns 1 progress, 0 would block,
 * -1 closed. */
static int
rx_step(struct iscsi_conn *c)
{
	uint8_t *dst;
	uint32_t want;
	ssize_t r;

	switch (c->rx_stage) {
	case RX_BHS:
		dst = c->rx_bhs + c->rx_got;
		want = ISCSI_BHS_LEN - c->rx_got;
		break;
	case RX_AHS:
		dst = c->rx_ahs + c->rx_got;
		want = c->rx_ahs_len - c->rx_got;
		break;
	case RX_DATA:
		want = c->rx_dsl - c->rx_got;
		if (c->rx_data) {
			dst = c->rx_data + c->rx_got;
		} else {
			/* Discarded data: through a small scratch buffer. */
			static uint8_t scratch[65536];
			dst = scratch;
			want = MIN(want, sizeof scratch);
		}
		break;
	case RX_HDIG:
	case RX_DDIG:
		dst = c->rx_dig + c->rx_got;
		want = 4 - c->rx_got;
		break;
	default:
		dst = c->rx_pad + c->rx_got;
		want = ((4 - (c->rx_dsl & 3)) & 3) - c->rx_got;
		break;
	}
	if (want) {
		r = rx_read(c, dst, want);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				return 1;
			conn_close(c, strerror(errno));
			return -1;
		}
		if (r == 0) {
			conn_close(c, c->rx_stage == RX_BHS && c->rx_got == 0 ?
				   "peer closed" : "peer closed mid-PDU");
			return -1;
		}
		c->rx_got += r;
		if ((uint32_t)r < want ||
		    (c->rx_stage == RX_DATA && c->rx_got < c->rx_dsl))
			return 1;
	}
	c->last_rx = time(NULL);
	c->ping_sent = 0;	/* any traffic proves the peer alive */
	c->rx_got = 0;
	switch (c->rx_stage) {
	case RX_BHS:
		/* Digests are on from the first PDU of full feature phase. */
		c->rx_hd = c->state == CONN_FFP && c->params.header_digest;
		c->rx_dd = c->state == CONN_FFP && c->params.data_digest;
		if (c->rx_bhs[4]) {
			c->rx_ahs_len = c->rx_bhs[4] * 4;
			c->rx_stage = RX_AHS;
			return 1;
		}
		/* fallthrough */
	case RX_AHS:
		if (c->rx_hd) {
			c->rx_stage = RX_HDIG;
			return 1;
		}
		/* fallthrough */
	case RX_HDIG:
		if (c->rx_hd && !header_digest_ok(c)) {
			/* §7.8: at ErrorRecoveryLevel 0 a header digest error
			 * loses the framing: the connection is dropped. */
			conn_close(c, "header digest error");
			return -1;
		}
		if (!rx_header(c))
			return -1;
		if (c->rx_dsl) {
			c->rx_stage = RX_DATA;
			return 1;
		}
		rx_pdu_done(c);
		return c->state == CONN_CLOSED ? -1 : 1;
	case RX_DATA:
		if (c->rx_dsl & 3) {
			c->rx_stage = RX_PAD;
			return 1;
		}
		/* fallthrough */
	case RX_PAD:
		if (c->rx_dd) {
			c->rx_stage = RX_DDIG;
			return 1;
		}
		/* fallthrough */
	default:
		if (c->rx_dd && c->rx_data && !data_digest_ok(c)) {
			log_warn("data digest error (opcode 0x%02x)",
				 bhs_opcode(c->rx_bhs));
			c->rx_reject = REJECT_DIGEST_ERROR;
		}
		rx_pdu_done(c);
		return c->state == CONN_CLOSED ? -1 : 1;
	}
}

static void
conn_event(struct ev_handler *h, uint32_t events)
{
	struct iscsi_conn *c = container_of(h, struct iscsi_conn, ev);

	if (c->state == CONN_CLOSED)
		return;
	conn_log_prefix(c);
	c->in_event = true;
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->state == CONN_CLOSED)
		goto out;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		c->rx_drained = false;
		/* Bounded work per wakeup keeps other connections served;
		 * what the read-ahead buffer holds is handled now, though:
		 * the socket may have nothing more to wake us for it. */
		for (int i = 0; c->state != CONN_CLOSED; i++) {
			if (i >= 256 && c->rxb_off == c->rxb_len)
				break;
			if (c->draining || c->login_busy ||
			    c->state == CONN_LOGOUT)
				break;
			if (rx_step(c) <= 0)
				break;
		}
	}
	c->in_event = false;
	if (c->state != CONN_CLOSED)
		conn_flush(c);
out:
	c->in_event = false;
	log_set_prefix(NULL);
}

/* Once a second: login timeout, NOP-In pings, dead peers, reaping. */
void
conn_tick(void *opaque)
{
	time_t now = time(NULL);
	const struct conf_iscsi *ci = &iscsi_g.conf->iscsi;

	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next) {
		if (c->state == CONN_CLOSED)
			continue;
		if (c->state == CONN_LOGIN &&
		    now - c->created >= (time_t)ci->login_timeout) {
			conn_close(c, "login timed out");
			continue;
		}
		if (c->state == CONN_LOGOUT) {
			/* The last response waits for a peer that may never
			 * read it: bounded like a ping. */
			if (!c->logout_at)
				c->logout_at = now;
			else if (now - c->logout_at >= (time_t)ci->nop_timeout)
				conn_close(c, "peer did not read its last response");
			continue;
		}
		if (c->state != CONN_FFP || ci->nop_interval == 0)
			continue;
		if (c->ping_sent && now - c->ping_sent >= (time_t)ci->nop_timeout) {
			conn_close(c, "no answer to NOP-In");
			continue;
		}
		if (!c->ping_sent && now - c->last_rx >= (time_t)ci->nop_interval) {
			struct tx_pdu *p = tx_pdu_new(ISCSI_OP_NOP_IN);
			if (!p)
				continue;
			p->bhs[1] = 0x80;
			c->ping_ttt = c->next_ttt++;
			if (c->ping_ttt == ISCSI_RSVD_TAG)
				c->ping_ttt = c->next_ttt++;
			put_be32(p->bhs + 16, ISCSI_RSVD_TAG);
			put_be32(p->bhs + 20, c->ping_ttt);
			/* StatSN is not advanced for an unsolicited NOP-In. */
			conn_fill_sn(c, p->bhs, false);
			conn_queue(c, p);
			c->ping_sent = now;
			conn_flush(c);
		}
	}
	conn_flush_queued();	/* completions outside an event batch */
	conn_reap();
}
