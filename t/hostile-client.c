/* hostile-client.c: a network-level bad-input test for iscsi-gw.
 *
 *   hostile-client HOST PORT TARGETNAME
 *
 * Speaks raw iSCSI (RFC 7143) over TCP, without libiscsi, and runs numbered
 * cases, each on a fresh connection: malformed and out-of-protocol PDUs in
 * the login phase and in full feature phase, each checked against the
 * answer the RFC asks for.  After every case a fresh, correct login must
 * still work (the daemon is alive).  A well-behaved session logged in before
 * the first case stays open the whole time and must still answer a NOP-Out
 * and a TEST UNIT READY at the end.
 *
 * Output is TAP-like: "ok N - what" or "not ok N - what (why)", then a last
 * line "N passed, N failed".  Exit status 0 only when every case passed.
 * Every socket has SO_RCVTIMEO/SO_SNDTIMEO and every wait is bounded by
 * poll(), so nothing hangs.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#define BHS_LEN 48
#define RSVD 0xffffffffu
#define IO_TIMEOUT_MS 5000
#define LOGIN_DSL_MAX 8192	/* RFC 7143 §13.12: the default during login */
#define WHY_LEN 512

#define OP_NOP_OUT 0x00
#define OP_SCSI_CMD 0x01
#define OP_LOGIN_REQ 0x03
#define OP_DATA_OUT 0x05
#define OP_SNACK 0x10
#define OP_NOP_IN 0x20
#define OP_SCSI_RSP 0x21
#define OP_LOGIN_RSP 0x23
#define OP_DATA_IN 0x25
#define OP_REJECT 0x3f
#define OP_IMMEDIATE 0x40

/* Login flags (byte 1). */
#define LF_T 0x80
#define LF_C 0x40
#define LF_CSG(x) ((x) << 2)
#define LF_NSG(x) (x)

static const char *g_host, *g_port, *g_target;
static const char *g_initiator = "iqn.2026-11.org.example:hostile";
static unsigned g_isid_counter;

/* ---- byte helpers ---- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void
put24(uint8_t *p, uint32_t v)
{
	p[0] = v >> 16;
	p[1] = v >> 8;
	p[2] = v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sockets ---- */

static int
tcp_connect(void)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000 };
	int fd = -1, one = 1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(g_host, g_port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* 0 when everything was sent, -1 otherwise (errno set). */
static int
send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

enum rx { RX_OK = 1, RX_EOF = 0, RX_TIMEOUT = -1, RX_ERR = -2 };

static const char *
rx_str(int r)
{
	switch (r) {
	case RX_OK: return "ok";
	case RX_EOF: return "connection closed";
	case RX_TIMEOUT: return "timed out";
	default: return "socket error";
	}
}

/* Read exactly len bytes before the deadline. */
static int
recv_exact(int fd, void *buf, size_t len, long long deadline)
{
	uint8_t *p = buf;

	while (len) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;
		int pr;

		if (left <= 0)
			return RX_TIMEOUT;
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return RX_ERR;
		}
		if (pr == 0)
			return RX_TIMEOUT;
		r = recv(fd, p, len, 0);
		if (r == 0)
			return RX_EOF;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return RX_TIMEOUT;
			if (errno == ECONNRESET || errno == EPIPE)
				return RX_EOF;
			return RX_ERR;
		}
		p += r;
		len -= (size_t)r;
	}
	return RX_OK;
}

/* ---- PDUs ---- */

struct pdu {
	uint8_t bhs[BHS_LEN];
	uint8_t *data;		/* malloc'd, NUL-terminated for text */
	uint32_t dsl;
};

static void
pdu_clear(struct pdu *p)
{
	free(p->data);
	memset(p, 0, sizeof *p);
}

static uint8_t
pdu_op(const struct pdu *p)
{
	return p->bhs[0] & 0x3f;
}

/* Receive one PDU (header, AHS, data, padding) within timeout_ms. */
static int
recv_pdu(int fd, struct pdu *p, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t ahs[1024], pad[4];
	uint32_t ahs_len;
	int r;

	pdu_clear(p);
	r = recv_exact(fd, p->bhs, BHS_LEN, deadline);
	if (r != RX_OK)
		return r;
	ahs_len = p->bhs[4] * 4u;
	if (ahs_len && (r = recv_exact(fd, ahs, ahs_len, deadline)) != RX_OK)
		return r;
	p->dsl = get24(p->bhs + 5);
	p->data = calloc(1, p->dsl + 1);
	if (!p->data)
		return RX_ERR;
	if (p->dsl && (r = recv_exact(fd, p->data, p->dsl, deadline)) != RX_OK)
		return r;
	if ((p->dsl & 3) &&
	    (r = recv_exact(fd, pad, 4 - (p->dsl & 3), deadline)) != RX_OK)
		return r;
	return RX_OK;
}

/* Send a header and a data segment with its padding. */
static int
send_pdu(int fd, const uint8_t *bhs, const void *data, uint32_t dsl)
{
	static const uint8_t zero[4];

	if (send_all(fd, bhs, BHS_LEN) < 0)
		return -1;
	if (dsl && send_all(fd, data, dsl) < 0)
		return -1;
	if ((dsl & 3) && send_all(fd, zero, 4 - (dsl & 3)) < 0)
		return -1;
	return 0;
}

/* Wait for the peer to close: RX_EOF, or what came instead. */
static int
wait_close(int fd, int timeout_ms, struct pdu *extra)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return RX_TIMEOUT;
		r = recv_pdu(fd, extra, (int)left);
		if (r != RX_OK)
			return r;
		/* Any PDU before the close is reported to the caller. */
		return RX_OK;
	}
}

/* ---- key text ---- */

struct text {
	char *buf;
	size_t len, cap;
};

static void
text_add(struct text *t, const char *fmt, ...)
{
	char kv[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(kv, sizeof kv, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof kv)
		n = sizeof kv - 1;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		t->buf = realloc(t->buf, cap);
		if (!t->buf) {
			perror("realloc");
			exit(2);
		}
		t->cap = cap;
	}
	memcpy(t->buf + t->len, kv, (size_t)n);
	t->buf[t->len + (size_t)n] = '\0';	/* every key ends in NUL */
	t->len += (size_t)n + 1;
}

static void
text_raw(struct text *t, const void *bytes, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		while (cap < t->len + n)
			cap *= 2;
		t->buf = realloc(t->buf, cap);
		if (!t->buf) {
			perror("realloc");
			exit(2);
		}
		t->cap = cap;
	}
	memcpy(t->buf + t->len, bytes, n);
	t->len += n;
}

static void
text_free(struct text *t)
{
	free(t->buf);
	memset(t, 0, sizeof *t);
}

/* The standard keys of a good normal-session login. */
static void
text_good(struct text *t)
{
	text_add(t, "InitiatorName=%s", g_initiator);
	text_add(t, "TargetName=%s", g_target);
	text_add(t, "SessionType=Normal");
	text_add(t, "HeaderDigest=None");
	text_add(t, "DataDigest=None");
	text_add(t, "MaxRecvDataSegmentLength=262144");
}

/* Value of key in "k=v\0k=v\0" text, or NULL. */
static const char *
text_find(const uint8_t *data, uint32_t len, const char *key, char *val,
	  size_t valsz)
{
	size_t kl = strlen(key);
	uint32_t i = 0;

	while (i < len) {
		const char *s = (const char *)data + i;
		size_t sl = strnlen(s, len - i);

		if (sl > kl && !strncmp(s, key, kl) && s[kl] == '=') {
			snprintf(val, valsz, "%.*s", (int)(sl - kl - 1), s + kl + 1);
			return val;
		}
		i += sl + 1;
	}
	return NULL;
}

/* ---- login ---- */

static void
next_isid(uint8_t isid[6])
{
	unsigned n = ++g_isid_counter;
	unsigned pid = (unsigned)getpid();

	isid[0] = 0x80;		/* random format (RFC 7143 §11.12.5) */
	isid[1] = pid >> 8;
	isid[2] = pid;
	isid[3] = 0x5a;
	isid[4] = n >> 8;
	isid[5] = n;
}

static void
login_bhs(uint8_t *bhs, uint8_t flags, const uint8_t isid[6], uint32_t itt,
	  uint32_t cmdsn, uint32_t expstatsn, uint32_t dsl)
{
	memset(bhs, 0, BHS_LEN);
	bhs[0] = OP_IMMEDIATE | OP_LOGIN_REQ;
	bhs[1] = flags;
	bhs[2] = 0x00;		/* version max */
	bhs[3] = 0x00;		/* version min */
	put24(bhs + 5, dsl);
	memcpy(bhs + 8, isid, 6);
	put16(bhs + 14, 0);	/* TSIH: new session */
	put32(bhs + 16, itt);
	put16(bhs + 20, 1);	/* CID */
	put32(bhs + 24, cmdsn);
	put32(bhs + 28, expstatsn);
}

static uint16_t
login_status(const struct pdu *p)
{
	return (uint16_t)(p->bhs[36] << 8 | p->bhs[37]);
}

/* A session in full feature phase. */
struct sess {
	int fd;
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t cmdsn;		/* next CmdSN to use */
	uint32_t expstatsn;
	uint32_t itt;		/* next ITT */
	uint32_t tgt_mrdsl;	/* the target's declared MaxRecvDSL */
	uint32_t pings;		/* target NOP-Ins answered */
};

static void
sess_close(struct sess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Log in with a correct single-PDU operational login (CSG=1, NSG=3, T=1).
 * Returns true in full feature phase; false with why set. */
static bool
good_login(struct sess *s, char *why)
{
	struct text t = { 0 };
	uint8_t bhs[BHS_LEN];
	struct pdu rsp = { 0 };
	char val[64];
	int r;
	bool ok = false;

	memset(s, 0, sizeof *s);
	s->fd = tcp_connect();
	if (s->fd < 0) {
		snprintf(why, WHY_LEN, "connect: %s", strerror(errno));
		return false;
	}
	next_isid(s->isid);
	text_good(&t);
	login_bhs(bhs, LF_T | LF_CSG(1) | LF_NSG(3), s->isid, 0x100, 1, 0,
		  (uint32_t)t.len);
	if (send_pdu(s->fd, bhs, t.buf, (uint32_t)t.len) < 0) {
		snprintf(why, WHY_LEN, "send login: %s", strerror(errno));
		goto out;
	}
	r = recv_pdu(s->fd, &rsp, IO_TIMEOUT_MS);
	if (r != RX_OK) {
		snprintf(why, WHY_LEN, "login response: %s", rx_str(r));
		goto out;
	}
	if (pdu_op(&rsp) != OP_LOGIN_RSP) {
		snprintf(why, WHY_LEN, "login answered with opcode 0x%02x",
			 pdu_op(&rsp));
		goto out;
	}
	if (login_status(&rsp) != 0) {
		snprintf(why, WHY_LEN, "login status 0x%04x", login_status(&rsp));
		goto out;
	}
	if ((rsp.bhs[1] & (LF_T | LF_C | 3)) != (LF_T | 3)) {
		snprintf(why, WHY_LEN, "login response flags 0x%02x, not T NSG=3",
			 rsp.bhs[1]);
		goto out;
	}
	if (rsp.dsl > LOGIN_DSL_MAX) {
		snprintf(why, WHY_LEN, "login response data segment %u > %u",
			 rsp.dsl, LOGIN_DSL_MAX);
		goto out;
	}
	if (!text_find(rsp.data, rsp.dsl, "MaxRecvDataSegmentLength", val,
		       sizeof val)) {
		snprintf(why, WHY_LEN,
			 "target did not declare MaxRecvDataSegmentLength");
		goto out;
	}
	s->tgt_mrdsl = (uint32_t)strtoul(val, NULL, 0);
	s->tsih = get16(rsp.bhs + 14);
	if (s->tsih == 0) {
		snprintf(why, WHY_LEN, "final login response has TSIH 0");
		goto out;
	}
	s->cmdsn = get32(rsp.bhs + 28);		/* ExpCmdSN */
	s->expstatsn = get32(rsp.bhs + 24) + 1;
	s->itt = 0x1000;
	ok = true;
out:
	if (!ok)
		sess_close(s);
	pdu_clear(&rsp);
	text_free(&t);
	return ok;
}

/* Answer a target ping (NOP-In with a TTT). */
static void
answer_ping(struct sess *s, const struct pdu *p)
{
	uint8_t bhs[BHS_LEN] = { 0 };

	bhs[0] = OP_IMMEDIATE | OP_NOP_OUT;
	bhs[1] = 0x80;
	memcpy(bhs + 8, p->bhs + 8, 8);
	put32(bhs + 16, RSVD);
	memcpy(bhs + 20, p->bhs + 20, 4);
	put32(bhs + 24, s->cmdsn);
	put32(bhs + 28, s->expstatsn);
	send_pdu(s->fd, bhs, NULL, 0);
	s->pings++;
}

/* Receive the next PDU in full feature phase, answering target pings and
 * keeping ExpStatSN current. */
static int
sess_recv(struct sess *s, struct pdu *p, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		uint8_t op;
		int r;

		if (left < 0)
			left = 0;
		r = recv_pdu(s->fd, p, (int)left);
		if (r != RX_OK)
			return r;
		op = pdu_op(p);
		if (op == OP_NOP_IN && get32(p->bhs + 16) == RSVD) {
			if (get32(p->bhs + 20) != RSVD)
				answer_ping(s, p);
			continue;
		}
		/* PDUs that carry a StatSN (Data-In only with S). */
		if (op != OP_DATA_IN || (p->bhs[1] & 0x01)) {
			uint32_t sn = get32(p->bhs + 24);
			if ((int32_t)(sn + 1 - s->expstatsn) > 0)
				s->expstatsn = sn + 1;
		}
		return RX_OK;
	}
}

/* Answer pings that arrived while we were busy elsewhere. */
static void
sess_service(struct sess *s)
{
	struct pdu p = { 0 };

	if (s->fd < 0)
		return;
	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (sess_recv(s, &p, 200) != RX_OK)
			break;
		/* Anything else unsolicited is simply dropped here. */
	}
	pdu_clear(&p);
}

static int
send_nop(struct sess *s, uint32_t itt)
{
	uint8_t bhs[BHS_LEN] = { 0 };

	bhs[0] = OP_IMMEDIATE | OP_NOP_OUT;
	bhs[1] = 0x80;
	put32(bhs + 16, itt);
	put32(bhs + 20, RSVD);
	put32(bhs + 24, s->cmdsn);	/* immediate: not advanced */
	put32(bhs + 28, s->expstatsn);
	return send_pdu(s->fd, bhs, NULL, 0);
}

/* NOP-Out with itt must come back as a NOP-In with itt, and nothing else
 * may come first. */
static bool
nop_ping(struct sess *s, uint32_t itt, char *why)
{
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	if (send_nop(s, itt) < 0) {
		snprintf(why, WHY_LEN, "send NOP-Out: %s", strerror(errno));
		return false;
	}
	r = sess_recv(s, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		snprintf(why, WHY_LEN, "NOP-Out not answered: %s", rx_str(r));
	else if (pdu_op(&p) != OP_NOP_IN)
		snprintf(why, WHY_LEN,
			 "NOP-Out answered with opcode 0x%02x (byte 2 0x%02x)",
			 pdu_op(&p), p.bhs[2]);
	else if (get32(p.bhs + 16) != itt)
		snprintf(why, WHY_LEN, "NOP-In ITT 0x%08x, want 0x%08x",
			 get32(p.bhs + 16), itt);
	else if (get32(p.bhs + 20) != RSVD)
		snprintf(why, WHY_LEN, "NOP-In TTT 0x%08x, want 0xffffffff",
			 get32(p.bhs + 20));
	else
		ok = true;
	pdu_clear(&p);
	return ok;
}

/* Build and send a SCSI Command PDU. */
static int
send_scsi(struct sess *s, uint32_t itt, uint32_t cmdsn, uint8_t lun,
	  uint8_t flags, uint32_t edtl, const uint8_t *cdb, size_t cdb_len,
	  const void *data, uint32_t dsl)
{
	uint8_t bhs[BHS_LEN] = { 0 };

	bhs[0] = OP_SCSI_CMD;
	bhs[1] = flags;
	put24(bhs + 5, dsl);
	bhs[9] = lun;		/* peripheral device addressing */
	put32(bhs + 16, itt);
	put32(bhs + 20, edtl);
	put32(bhs + 24, cmdsn);
	put32(bhs + 28, s->expstatsn);
	memcpy(bhs + 32, cdb, cdb_len);
	return send_pdu(s->fd, bhs, data, dsl);
}

struct scsi_result {
	uint8_t response, status;
	uint8_t key, asc, ascq;
	bool have_sense;
};

/* Wait for the SCSI Response (or Data-In with status) of itt. */
static bool
wait_scsi(struct sess *s, uint32_t itt, struct scsi_result *res, char *why)
{
	struct pdu p = { 0 };
	long long deadline = now_ms() + IO_TIMEOUT_MS;
	bool ok = false;

	memset(res, 0, sizeof *res);
	for (;;) {
		long long left = deadline - now_ms();
		int r = sess_recv(s, &p, left > 0 ? (int)left : 0);
		uint8_t op;

		if (r != RX_OK) {
			snprintf(why, WHY_LEN, "no SCSI response: %s", rx_str(r));
			break;
		}
		op = pdu_op(&p);
		if (op == OP_DATA_IN && get32(p.bhs + 16) == itt) {
			if (p.bhs[1] & 0x01) {
				res->status = p.bhs[3];
				ok = true;
				break;
			}
			continue;
		}
		if (op != OP_SCSI_RSP) {
			snprintf(why, WHY_LEN,
				 "expected SCSI Response, got opcode 0x%02x (byte 2 0x%02x)",
				 op, p.bhs[2]);
			break;
		}
		if (get32(p.bhs + 16) != itt) {
			snprintf(why, WHY_LEN, "SCSI Response for ITT 0x%08x, want 0x%08x",
				 get32(p.bhs + 16), itt);
			break;
		}
		res->response = p.bhs[2];
		res->status = p.bhs[3];
		if (p.dsl >= 2) {
			uint32_t sl = get16(p.data);
			const uint8_t *sense = p.data + 2;

			if (sl + 2 > p.dsl) {
				snprintf(why, WHY_LEN,
					 "sense length %u exceeds data segment %u",
					 sl, p.dsl);
				break;
			}
			if (sl >= 14 && (sense[0] & 0x7e) == 0x70) {
				res->key = sense[2] & 0x0f;
				res->asc = sense[12];
				res->ascq = sense[13];
				res->have_sense = true;
			} else if (sl >= 4 && (sense[0] & 0x7e) == 0x72) {
				res->key = sense[1] & 0x0f;
				res->asc = sense[2];
				res->ascq = sense[3];
				res->have_sense = true;
			}
		}
		ok = true;
		break;
	}
	pdu_clear(&p);
	return ok;
}

/* TEST UNIT READY with the right CmdSN must end GOOD (a unit attention is
 * answered by trying once more). */
static bool
tur_good(struct sess *s, char *why)
{
	static const uint8_t cdb[16] = { 0x00 };
	struct scsi_result res;

	for (int attempt = 0; attempt < 2; attempt++) {
		uint32_t itt = s->itt++;

		if (send_scsi(s, itt, s->cmdsn++, 0, 0x80, 0, cdb, sizeof cdb,
			      NULL, 0) < 0) {
			snprintf(why, WHY_LEN, "send TUR: %s", strerror(errno));
			return false;
		}
		if (!wait_scsi(s, itt, &res, why))
			return false;
		if (res.response != 0) {
			snprintf(why, WHY_LEN, "TUR response code 0x%02x",
				 res.response);
			return false;
		}
		if (res.status == 0)
			return true;
		if (!(res.status == 0x02 && res.have_sense && res.key == 6)) {
			snprintf(why, WHY_LEN,
				 "TUR status 0x%02x sense %x/%02x/%02x, want GOOD",
				 res.status, res.key, res.asc, res.ascq);
			return false;
		}
	}
	snprintf(why, WHY_LEN, "TUR kept returning UNIT ATTENTION");
	return false;
}

/* A fresh good login, a NOP-Out answered: the daemon is alive. */
static bool
daemon_alive(char *why)
{
	struct sess s;
	char w[WHY_LEN];
	bool ok;

	if (!good_login(&s, w)) {
		snprintf(why, WHY_LEN, "daemon not alive: fresh login: %s", w);
		return false;
	}
	ok = nop_ping(&s, 0xa11e, w);
	if (!ok)
		snprintf(why, WHY_LEN, "daemon not alive: %s", w);
	sess_close(&s);
	return ok;
}

/* ---- checks ---- */

#define FAIL(...)                                                             \
	do {                                                                  \
		snprintf(why, WHY_LEN, __VA_ARGS__);                          \
		goto out;                                                     \
	} while (0)

/* A Reject with reason for a PDU of opcode rejected_op. */
static bool
is_reject(const struct pdu *p, uint8_t reason, uint8_t rejected_op, char *why)
{
	if (pdu_op(p) != OP_REJECT) {
		snprintf(why, WHY_LEN, "expected Reject, got opcode 0x%02x (byte 2 0x%02x)",
			 pdu_op(p), p->bhs[2]);
		return false;
	}
	if (p->bhs[2] != reason) {
		snprintf(why, WHY_LEN, "Reject reason 0x%02x, want 0x%02x",
			 p->bhs[2], reason);
		return false;
	}
	if (get32(p->bhs + 16) != RSVD) {
		snprintf(why, WHY_LEN, "Reject ITT 0x%08x, want 0xffffffff",
			 get32(p->bhs + 16));
		return false;
	}
	if (p->dsl != BHS_LEN) {
		snprintf(why, WHY_LEN, "Reject data segment %u bytes, want 48 (the rejected BHS)",
			 p->dsl);
		return false;
	}
	if ((p->data[0] & 0x3f) != rejected_op) {
		snprintf(why, WHY_LEN, "Reject carries a BHS of opcode 0x%02x, want 0x%02x",
			 p->data[0] & 0x3f, rejected_op);
		return false;
	}
	return true;
}

/* Send one login PDU with text, expect a login reject with status want,
 * then the connection closed (§6.11... the target closes after a reject). */
static bool
login_expect(uint8_t flags, uint8_t vmin, const void *text, uint32_t len,
	     uint16_t want, char *why)
{
	uint8_t bhs[BHS_LEN], isid[6];
	struct pdu p = { 0 };
	bool ok = false;
	int fd = tcp_connect(), r;

	if (fd < 0)
		FAIL("connect: %s", strerror(errno));
	next_isid(isid);
	login_bhs(bhs, flags, isid, 0x77, 1, 0, len);
	bhs[3] = vmin;
	if (send_pdu(fd, bhs, text, len) < 0)
		FAIL("send: %s", strerror(errno));
	r = recv_pdu(fd, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		FAIL("no login response: %s", rx_str(r));
	if (pdu_op(&p) != OP_LOGIN_RSP)
		FAIL("got opcode 0x%02x (byte 2 0x%02x), want Login Response",
		     pdu_op(&p), p.bhs[2]);
	if (login_status(&p) != want)
		FAIL("login status 0x%04x, want 0x%04x", login_status(&p), want);
	if (get32(p.bhs + 16) != 0x77)
		FAIL("login response ITT 0x%08x, want 0x00000077",
		     get32(p.bhs + 16));
	if (p.bhs[1] & LF_T)
		FAIL("login reject has the T bit set (flags 0x%02x)", p.bhs[1]);
	r = wait_close(fd, IO_TIMEOUT_MS, &p);
	if (r == RX_OK)
		FAIL("after the login reject: unexpected opcode 0x%02x",
		     pdu_op(&p));
	if (r != RX_EOF)
		FAIL("connection not closed after the login reject: %s",
		     rx_str(r));
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	pdu_clear(&p);
	return ok;
}

/* ---- cases ---- */

static bool
case_truncated_bhs(char *why)
{
	uint8_t bhs[BHS_LEN], isid[6];
	int fd = tcp_connect();
	bool ok = false;

	if (fd < 0)
		FAIL("connect: %s", strerror(errno));
	next_isid(isid);
	login_bhs(bhs, LF_T | LF_CSG(1) | LF_NSG(3), isid, 1, 1, 0, 100);
	if (send_all(fd, bhs, 20) < 0)
		FAIL("send: %s", strerror(errno));
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool
case_login_big_dsl(char *why)
{
	uint8_t bhs[BHS_LEN], isid[6];
	struct text t = { 0 };
	struct pdu p = { 0 };
	bool ok = false;
	int fd = tcp_connect(), r;
	char filler[128];

	if (fd < 0)
		FAIL("connect: %s", strerror(errno));
	text_good(&t);
	memset(filler, 'a', sizeof filler - 1);
	filler[sizeof filler - 1] = '\0';
	for (int i = 0; t.len < 9000; i++)
		text_add(&t, "X-org.example.pad%d=%s", i, filler);
	t.len = 9000;
	t.buf[t.len - 1] = '\0';
	next_isid(isid);
	login_bhs(bhs, LF_T | LF_CSG(1) | LF_NSG(3), isid, 2, 1, 0, 9000);
	if (send_pdu(fd, bhs, t.buf, 9000) < 0) {
		if (errno == EPIPE || errno == ECONNRESET) {
			ok = true;	/* closed on the header */
			goto out;
		}
		FAIL("send: %s", strerror(errno));
	}
	r = recv_pdu(fd, &p, IO_TIMEOUT_MS);
	if (r == RX_EOF) {
		ok = true;
		goto out;
	}
	if (r != RX_OK)
		FAIL("neither an answer nor a close: %s", rx_str(r));
	if (pdu_op(&p) == OP_REJECT) {
		if (!is_reject(&p, 0x04, OP_LOGIN_REQ, why))
			goto out;
		ok = true;
		goto out;
	}
	if (pdu_op(&p) != OP_LOGIN_RSP)
		FAIL("got opcode 0x%02x", pdu_op(&p));
	if ((login_status(&p) >> 8) == 0)
		FAIL("login of a 9000-byte PDU accepted (status 0x%04x)",
		     login_status(&p));
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	pdu_clear(&p);
	text_free(&t);
	return ok;
}

static bool
case_version_min(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_good(&t);
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 1, t.buf,
			  (uint32_t)t.len, 0x0205, why);
	text_free(&t);
	return ok;
}

static bool
case_no_initiator(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_add(&t, "TargetName=%s", g_target);
	text_add(&t, "SessionType=Normal");
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0207, why);
	text_free(&t);
	return ok;
}

static bool
case_unknown_target(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_add(&t, "InitiatorName=%s", g_initiator);
	text_add(&t, "TargetName=%s.no-such-target", g_target);
	text_add(&t, "SessionType=Normal");
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0203, why);
	text_free(&t);
	return ok;
}

static bool
case_malformed_key(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_good(&t);
	text_add(&t, "ThisKeyHasNoEqualsSign");
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0200, why);
	text_free(&t);
	return ok;
}

static bool
case_key_twice(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_good(&t);
	text_add(&t, "SessionType=Normal");
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0200, why);
	text_free(&t);
	return ok;
}

static bool
case_t_and_c(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_good(&t);
	ok = login_expect(LF_T | LF_C | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0200, why);
	text_free(&t);
	return ok;
}

static bool
case_scsi_before_login(char *why)
{
	static const uint8_t cdb[16] = { 0x00 };
	uint8_t bhs[BHS_LEN] = { 0 };
	struct pdu p = { 0 };
	bool ok = false;
	int fd = tcp_connect(), r;

	if (fd < 0)
		FAIL("connect: %s", strerror(errno));
	bhs[0] = OP_SCSI_CMD;
	bhs[1] = 0x80;
	put32(bhs + 16, 0x99);
	put32(bhs + 24, 1);
	memcpy(bhs + 32, cdb, sizeof cdb);
	if (send_pdu(fd, bhs, NULL, 0) < 0)
		FAIL("send: %s", strerror(errno));
	r = recv_pdu(fd, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		FAIL("no answer: %s", rx_str(r));
	if (pdu_op(&p) != OP_LOGIN_RSP)
		FAIL("got opcode 0x%02x, want Login Response", pdu_op(&p));
	if (login_status(&p) != 0x020b)
		FAIL("login status 0x%04x, want 0x020b", login_status(&p));
	r = wait_close(fd, IO_TIMEOUT_MS, &p);
	if (r != RX_EOF)
		FAIL("connection not closed after the reject: %s",
		     r == RX_OK ? "got another PDU" : rx_str(r));
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	pdu_clear(&p);
	return ok;
}

static bool
case_bogus_session_type(char *why)
{
	struct text t = { 0 };
	bool ok;

	text_add(&t, "InitiatorName=%s", g_initiator);
	text_add(&t, "TargetName=%s", g_target);
	text_add(&t, "SessionType=Bogus");
	ok = login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, t.buf,
			  (uint32_t)t.len, 0x0209, why);
	text_free(&t);
	return ok;
}

/* Log in for a full-feature-phase case; FAIL on error. */
#define FFP_LOGIN(s)                                                          \
	do {                                                                  \
		char w_[WHY_LEN];                                             \
		if (!good_login((s), w_))                                     \
			FAIL("login: %s", w_);                                \
	} while (0)

static bool
case_unknown_opcode(char *why)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	bhs[0] = 0x1e;
	bhs[1] = 0x80;
	put32(bhs + 16, 0x1e1e);
	put32(bhs + 24, s.cmdsn);
	put32(bhs + 28, s.expstatsn);
	if (send_pdu(s.fd, bhs, NULL, 0) < 0)
		FAIL("send: %s", strerror(errno));
	r = sess_recv(&s, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		FAIL("no Reject: %s", rx_str(r));
	if (!is_reject(&p, 0x05, 0x1e, why))
		goto out;
	if (!nop_ping(&s, 0x1234, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

static bool
case_login_in_ffp(char *why)
{
	uint8_t bhs[BHS_LEN];
	struct sess s = { .fd = -1 };
	struct text t = { 0 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	text_good(&t);
	login_bhs(bhs, LF_T | LF_CSG(1) | LF_NSG(3), s.isid, 0x1212, s.cmdsn,
		  s.expstatsn, (uint32_t)t.len);
	if (send_pdu(s.fd, bhs, t.buf, (uint32_t)t.len) < 0)
		FAIL("send: %s", strerror(errno));
	r = sess_recv(&s, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		FAIL("no Reject: %s", rx_str(r));
	if (!is_reject(&p, 0x04, OP_LOGIN_REQ, why))
		goto out;
	if (!nop_ping(&s, 0x1213, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	text_free(&t);
	return ok;
}

static bool
case_ffp_over_mrdsl(char *why)
{
	static const uint8_t cdb[16] = { 0x00 };
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	uint8_t *data = NULL;
	uint32_t dsl;
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	dsl = s.tgt_mrdsl < 300000 ? 300000 : s.tgt_mrdsl + 4096;
	if (dsl > 0xffffff)
		FAIL("target declared MaxRecvDataSegmentLength %u: cannot exceed",
		     s.tgt_mrdsl);
	data = calloc(1, dsl);
	if (!data)
		FAIL("out of memory");
	if (send_scsi(&s, s.itt++, s.cmdsn, 0, 0x80, 0, cdb, sizeof cdb,
		      data, dsl) < 0) {
		if (errno == EPIPE || errno == ECONNRESET) {
			ok = true;	/* closed while we sent */
			goto out;
		}
		FAIL("send: %s", strerror(errno));
	}
	r = sess_recv(&s, &p, IO_TIMEOUT_MS);
	if (r == RX_EOF) {
		ok = true;
		goto out;
	}
	if (r != RX_OK)
		FAIL("neither a Reject nor a close: %s", rx_str(r));
	if (!is_reject(&p, 0x04, OP_SCSI_CMD, why))
		goto out;
	/* Rejected, not fatal: the connection still works. */
	if (!nop_ping(&s, 0x1313, why))
		goto out;
	ok = true;
out:
	free(data);
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

static bool
case_snack(char *why)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	bhs[0] = OP_SNACK;
	bhs[1] = 0x80;		/* type 0: Data/R2T SNACK */
	put32(bhs + 16, 0x1414);
	put32(bhs + 20, RSVD);
	put32(bhs + 28, s.expstatsn);
	if (send_pdu(s.fd, bhs, NULL, 0) < 0)
		FAIL("send: %s", strerror(errno));
	r = sess_recv(&s, &p, IO_TIMEOUT_MS);
	if (r != RX_OK)
		FAIL("no Reject: %s", rx_str(r));
	if (!is_reject(&p, 0x04, OP_SNACK, why))
		goto out;
	if (!nop_ping(&s, 0x1415, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

/* A command that must end in CHECK CONDITION with key/asc. */
static bool
expect_check_condition(struct sess *s, uint8_t lun, uint8_t flags,
		       uint32_t edtl, const uint8_t *cdb, uint8_t key,
		       uint8_t asc, char *why)
{
	struct scsi_result res;
	uint32_t itt = s->itt++;

	if (send_scsi(s, itt, s->cmdsn++, lun, flags, edtl, cdb, 16, NULL, 0) < 0) {
		snprintf(why, WHY_LEN, "send: %s", strerror(errno));
		return false;
	}
	if (!wait_scsi(s, itt, &res, why))
		return false;
	if (res.response != 0) {
		snprintf(why, WHY_LEN, "response code 0x%02x, want 0", res.response);
		return false;
	}
	if (res.status != 0x02) {
		snprintf(why, WHY_LEN, "status 0x%02x, want 0x02 CHECK CONDITION",
			 res.status);
		return false;
	}
	if (!res.have_sense) {
		snprintf(why, WHY_LEN, "CHECK CONDITION without sense data");
		return false;
	}
	if (res.key != key || res.asc != asc) {
		snprintf(why, WHY_LEN, "sense %x/%02x/%02x, want %x/%02x/xx",
			 res.key, res.asc, res.ascq, key, asc);
		return false;
	}
	return true;
}

static bool
case_bad_lun(char *why)
{
	uint8_t cdb[16] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };	/* READ(10) */
	struct sess s = { .fd = -1 };
	bool ok = false;

	FFP_LOGIN(&s);
	if (!expect_check_condition(&s, 5, 0xc0, 512, cdb, 0x5, 0x25, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	return ok;
}

static bool
case_bad_cdb_opcode(char *why)
{
	uint8_t cdb[16] = { 0xc0 };
	struct sess s = { .fd = -1 };
	bool ok = false;

	FFP_LOGIN(&s);
	if (!expect_check_condition(&s, 0, 0x80, 0, cdb, 0x5, 0x20, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	return ok;
}

static bool
case_cmdsn_outside_window(char *why)
{
	static const uint8_t cdb[16] = { 0x00 };
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	if (send_scsi(&s, 0x1717, s.cmdsn + 100000, 0, 0x80, 0, cdb, sizeof cdb,
		      NULL, 0) < 0)
		FAIL("send: %s", strerror(errno));
	r = sess_recv(&s, &p, 2000);
	if (r == RX_OK)
		FAIL("command outside the CmdSN window answered: opcode 0x%02x",
		     pdu_op(&p));
	if (r != RX_TIMEOUT)
		FAIL("after a command outside the window: %s", rx_str(r));
	if (!tur_good(&s, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

static bool
case_huge_dsl(char *why)
{
	uint8_t bhs[BHS_LEN] = { 0 };
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	bhs[0] = OP_IMMEDIATE | OP_NOP_OUT;
	bhs[1] = 0x80;
	put24(bhs + 5, 0xffffff);
	put32(bhs + 16, 0x1818);
	put32(bhs + 20, RSVD);
	put32(bhs + 24, s.cmdsn);
	put32(bhs + 28, s.expstatsn);
	if (send_all(s.fd, bhs, BHS_LEN) < 0)
		FAIL("send: %s", strerror(errno));
	r = sess_recv(&s, &p, IO_TIMEOUT_MS);
	if (r == RX_OK)
		FAIL("got opcode 0x%02x (byte 2 0x%02x) instead of a close",
		     pdu_op(&p), p.bhs[2]);
	if (r != RX_EOF)
		FAIL("connection not closed by the target after a "
		     "DataSegmentLength of 0xffffff: %s (it waits for the 16 MB)",
		     rx_str(r));
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

static bool
case_data_out_unknown_itt(char *why)
{
	uint8_t bhs[BHS_LEN] = { 0 }, data[512];
	struct sess s = { .fd = -1 };
	bool ok = false;

	FFP_LOGIN(&s);
	memset(data, 0xd5, sizeof data);
	bhs[0] = OP_DATA_OUT;
	bhs[1] = 0x80;
	put24(bhs + 5, sizeof data);
	put32(bhs + 16, 0xdead0001);
	put32(bhs + 20, RSVD);
	put32(bhs + 28, s.expstatsn);
	put32(bhs + 36, 0);	/* DataSN */
	put32(bhs + 40, 0);	/* Buffer Offset */
	if (send_pdu(s.fd, bhs, data, sizeof data) < 0)
		FAIL("send: %s", strerror(errno));
	/* Dropped silently: the next thing we hear is the NOP-In. */
	if (!nop_ping(&s, 0x1919, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	return ok;
}

static bool
case_big_ahs(char *why)
{
	uint8_t bhs[BHS_LEN] = { 0 }, ahs[255 * 4];
	struct sess s = { .fd = -1 };
	struct pdu p = { 0 };
	bool ok = false;
	int r;

	FFP_LOGIN(&s);
	for (size_t i = 0; i < sizeof ahs; i++)
		ahs[i] = (uint8_t)(i * 37 + 11);
	bhs[0] = OP_IMMEDIATE | OP_NOP_OUT;
	bhs[1] = 0x80;
	bhs[4] = 255;
	put32(bhs + 16, 0x2020);
	put32(bhs + 20, RSVD);
	put32(bhs + 24, s.cmdsn);
	put32(bhs + 28, s.expstatsn);
	if (send_all(s.fd, bhs, BHS_LEN) < 0 ||
	    send_all(s.fd, ahs, sizeof ahs) < 0) {
		if (errno == EPIPE || errno == ECONNRESET) {
			ok = true;
			goto out;
		}
		FAIL("send: %s", strerror(errno));
	}
	/* Any of: a Reject, a close, the NOP-In, or nothing. */
	r = sess_recv(&s, &p, 2000);
	if (r == RX_OK) {
		uint8_t op = pdu_op(&p);
		if (op != OP_REJECT && op != OP_NOP_IN)
			FAIL("unexpected opcode 0x%02x", op);
		if (op == OP_NOP_IN && get32(p.bhs + 16) != 0x2020)
			FAIL("NOP-In for ITT 0x%08x, want 0x00002020",
			     get32(p.bhs + 16));
	} else if (r != RX_EOF && r != RX_TIMEOUT) {
		FAIL("%s", rx_str(r));
	}
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	return ok;
}

/* 200 unknown 60-character keys over several C-bit PDUs: each non-final
 * PDU gets an empty login response; the answer comes in PDUs of at most
 * 8192 bytes (C bit while more follows, fetched with empty requests).
 * stage 1: all in the operational stage, transit to full feature phase.
 * stage 0: in the security stage (CSG=0 NSG=1) with AuthMethod=None, so
 * the long answer is continued before the stage changes; then an ordinary
 * operational request to full feature phase.  Either way, a class 2 login
 * reject is an acceptable answer too. */
static bool
many_keys(unsigned stage, char *why)
{
	uint8_t bhs[BHS_LEN], isid[6];
	struct text t = { 0 }, answer = { 0 }, op = { 0 };
	struct pdu p = { 0 };
	struct sess s = { .fd = -1 };
	const uint32_t chunk = 4000;
	const uint8_t nsg = stage == 0 ? 1 : 3;
	const uint8_t final_flags = LF_T | LF_CSG(stage) | LF_NSG(nsg);
	uint32_t off = 0, itt = 0x2100, statsn = 0;
	unsigned nu = 0, npdu = 0;
	bool ok = false;
	int r;

	if (stage == 0) {
		text_add(&t, "InitiatorName=%s", g_initiator);
		text_add(&t, "TargetName=%s", g_target);
		text_add(&t, "SessionType=Normal");
		text_add(&t, "AuthMethod=None");
	} else {
		text_good(&t);
	}
	for (int i = 0; i < 200; i++) {
		char name[61];
		snprintf(name, sizeof name, "Zhostile%03d", i);
		memset(name + strlen(name), 'k', 60 - strlen(name));
		name[60] = '\0';
		text_add(&t, "%s=v", name);
	}
	s.fd = tcp_connect();
	if (s.fd < 0)
		FAIL("connect: %s", strerror(errno));
	next_isid(isid);
	memcpy(s.isid, isid, 6);
	/* The request, in pieces of 4000 bytes with C set but on the last. */
	while (off < t.len) {
		uint32_t n = (uint32_t)(t.len - off) > chunk ? chunk :
			     (uint32_t)(t.len - off);
		bool last = off + n == t.len;

		login_bhs(bhs, last ? final_flags :
			  (LF_C | LF_CSG(stage) | LF_NSG(nsg)),
			  isid, itt++, 1, statsn, n);
		if (send_pdu(s.fd, bhs, t.buf + off, n) < 0)
			FAIL("send: %s", strerror(errno));
		off += n;
		npdu++;
		if (last)
			break;
		r = recv_pdu(s.fd, &p, IO_TIMEOUT_MS);
		if (r != RX_OK)
			FAIL("request PDU %u not acknowledged: %s", npdu, rx_str(r));
		if (pdu_op(&p) != OP_LOGIN_RSP)
			FAIL("request PDU %u answered with opcode 0x%02x", npdu,
			     pdu_op(&p));
		if (login_status(&p) >> 8) {
			ok = (login_status(&p) >> 8) == 2;	/* class 2 reject */
			if (!ok)
				FAIL("request PDU %u: status 0x%04x", npdu,
				     login_status(&p));
			goto out;
		}
		if (p.dsl != 0 || (p.bhs[1] & (LF_T | LF_C)))
			FAIL("request PDU %u: continuation answer not empty "
			     "(dsl %u flags 0x%02x)", npdu, p.dsl, p.bhs[1]);
		statsn = get32(p.bhs + 24) + 1;
	}
	/* The answer, possibly in several pieces. */
	for (int pieces = 0;; pieces++) {
		if (pieces > 64)
			FAIL("answer never ends");
		r = recv_pdu(s.fd, &p, IO_TIMEOUT_MS);
		if (r != RX_OK)
			FAIL("no answer to %s: %s", pieces ?
			     "an empty request fetching the rest of the answer" :
			     "the final request", rx_str(r));
		if (pdu_op(&p) != OP_LOGIN_RSP)
			FAIL("final request answered with opcode 0x%02x",
			     pdu_op(&p));
		if (login_status(&p) >> 8) {
			ok = (login_status(&p) >> 8) == 2 && pieces == 0;
			if (!ok)
				FAIL("status 0x%04x%s", login_status(&p), pieces ?
				     " on an empty request fetching the rest of "
				     "the target's own answer" : "");
			goto out;
		}
		if (p.dsl > LOGIN_DSL_MAX)
			FAIL("login response piece %d has a %u-byte data segment "
			     "(flags 0x%02x): over the 8192 allowed during login",
			     pieces + 1, p.dsl, p.bhs[1]);
		text_raw(&answer, p.data, p.dsl);
		statsn = get32(p.bhs + 24) + 1;
		if ((p.bhs[1] & LF_C) && (p.bhs[1] & LF_T))
			FAIL("login response with both T and C set");
		if (((p.bhs[1] >> 2) & 3) != stage)
			FAIL("login response piece %d: CSG %u, want %u",
			     pieces + 1, (p.bhs[1] >> 2) & 3, stage);
		if (!(p.bhs[1] & LF_C))
			break;
		/* Fetch the rest with an empty request. */
		login_bhs(bhs, final_flags, isid, itt++, 1, statsn, 0);
		if (send_pdu(s.fd, bhs, NULL, 0) < 0)
			FAIL("send: %s", strerror(errno));
	}
	if ((p.bhs[1] & (LF_T | 3)) != (LF_T | nsg))
		FAIL("last login response flags 0x%02x, not T NSG=%u", p.bhs[1],
		     nsg);
	for (uint32_t i = 0; i < answer.len;) {
		const char *kv = answer.buf + i;
		size_t l = strnlen(kv, answer.len - i);
		if (!strncmp(kv, "Zhostile", 8) && strstr(kv, "=NotUnderstood"))
			nu++;
		i += (uint32_t)l + 1;
	}
	if (nu != 200)
		FAIL("%u NotUnderstood answers, want 200", nu);
	if (stage == 0) {
		/* The operational stage, to full feature phase. */
		text_add(&op, "HeaderDigest=None");
		text_add(&op, "DataDigest=None");
		text_add(&op, "MaxRecvDataSegmentLength=262144");
		login_bhs(bhs, LF_T | LF_CSG(1) | LF_NSG(3), isid, itt++, 1,
			  statsn, (uint32_t)op.len);
		if (send_pdu(s.fd, bhs, op.buf, (uint32_t)op.len) < 0)
			FAIL("send: %s", strerror(errno));
		r = recv_pdu(s.fd, &p, IO_TIMEOUT_MS);
		if (r != RX_OK)
			FAIL("no answer to the operational request: %s", rx_str(r));
		if (pdu_op(&p) != OP_LOGIN_RSP || login_status(&p) != 0)
			FAIL("operational request answered with opcode 0x%02x "
			     "status 0x%04x", pdu_op(&p), login_status(&p));
		if ((p.bhs[1] & (LF_T | LF_C | 3)) != (LF_T | 3))
			FAIL("operational answer flags 0x%02x, not T NSG=3",
			     p.bhs[1]);
		statsn = get32(p.bhs + 24) + 1;
	}
	s.cmdsn = get32(p.bhs + 28);
	s.expstatsn = statsn;
	if (!nop_ping(&s, 0x2121, why))
		goto out;
	ok = true;
out:
	sess_close(&s);
	pdu_clear(&p);
	text_free(&t);
	text_free(&op);
	text_free(&answer);
	return ok;
}

static bool
case_many_keys(char *why)
{
	return many_keys(1, why);
}

static bool
case_many_keys_security(char *why)
{
	return many_keys(0, why);
}

static bool
case_login_no_data(char *why)
{
	return login_expect(LF_T | LF_CSG(1) | LF_NSG(3), 0, NULL, 0, 0x0207,
			    why);
}

static bool
case_fuzz(char *why)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;	/* fixed seed */
	uint8_t buf[200];

	(void)why;
	for (int conn = 0; conn < 200; conn++) {
		int fd = tcp_connect();
		unsigned n;

		if (fd < 0) {
			snprintf(why, WHY_LEN, "connection %d: connect: %s", conn,
				 strerror(errno));
			return false;
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = 1 + (unsigned)(x % 200);
		for (unsigned i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (uint8_t)(x >> 24);
		}
		/* Some of them look like a login PDU, to get further. */
		if (conn % 4 == 0 && n >= BHS_LEN)
			buf[0] = OP_IMMEDIATE | OP_LOGIN_REQ;
		send_all(fd, buf, n);	/* the target may close early */
		close(fd);
	}
	return true;
}

/* ---- main ---- */

struct hcase {
	const char *name;
	bool (*fn)(char *why);
};

static const struct hcase cases[] = {
	{ "truncated BHS (20 bytes, then close)", case_truncated_bhs },
	{ "login PDU with a 9000-byte data segment", case_login_big_dsl },
	{ "login with version-min 1 -> 0x0205", case_version_min },
	{ "login without InitiatorName -> 0x0207", case_no_initiator },
	{ "login to an unknown TargetName -> 0x0203", case_unknown_target },
	{ "malformed key text (no '=') -> 0x0200", case_malformed_key },
	{ "same key twice -> 0x0200", case_key_twice },
	{ "T and C bits both set -> 0x0200", case_t_and_c },
	{ "SCSI Command before login -> 0x020b and close", case_scsi_before_login },
	{ "SessionType=Bogus -> 0x0209", case_bogus_session_type },
	{ "FFP: unknown opcode 0x1e -> Reject 0x05, NOP still answered", case_unknown_opcode },
	{ "FFP: Login Request -> Reject 0x04", case_login_in_ffp },
	{ "FFP: data segment over MaxRecvDataSegmentLength -> Reject 0x04 or close", case_ffp_over_mrdsl },
	{ "FFP: SNACK -> Reject 0x04", case_snack },
	{ "FFP: READ(10) to LUN 5 -> CHECK CONDITION 5/25", case_bad_lun },
	{ "FFP: CDB opcode 0xc0 -> CHECK CONDITION 5/20", case_bad_cdb_opcode },
	{ "FFP: CmdSN outside the window ignored, then TUR GOOD", case_cmdsn_outside_window },
	{ "FFP: DataSegmentLength 0xffffff -> connection closed", case_huge_dsl },
	{ "FFP: Data-Out for an unknown ITT dropped silently", case_data_out_unknown_itt },
	{ "FFP: TotalAHSLength 255 with garbage AHS", case_big_ahs },
	{ "login with 200 unknown 60-character keys over C-bit PDUs", case_many_keys },
	{ "login with no data and T to FFP -> 0x0207", case_login_no_data },
	{ "random-byte fuzz, 200 connections", case_fuzz },
	{ "security-stage login with 200 unknown keys: long answer continued, then FFP", case_many_keys_security },
};

int
main(int argc, char **argv)
{
	struct sess good = { .fd = -1 };
	char why[WHY_LEN], w2[WHY_LEN];
	unsigned passed = 0, failed = 0, n = 0;
	bool good_ok;

	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST PORT TARGETNAME\n", argv[0]);
		return 2;
	}
	g_host = argv[1];
	g_port = argv[2];
	g_target = argv[3];
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* The well-behaved session that must outlive every case. */
	good_ok = good_login(&good, w2);
	if (!good_ok)
		printf("# good session: login failed: %s\n", w2);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok;

		n++;
		why[0] = '\0';
		ok = cases[i].fn(why);
		/* Whatever the case did, the daemon must still take logins. */
		if (!daemon_alive(w2)) {
			if (ok)
				snprintf(why, WHY_LEN, "%s", w2);
			else
				snprintf(why + strlen(why), WHY_LEN - strlen(why),
					 "; %s", w2);
			ok = false;
		}
		if (ok) {
			printf("ok %u - %s\n", n, cases[i].name);
			passed++;
		} else {
			printf("not ok %u - %s (%s)\n", n, cases[i].name, why);
			failed++;
		}
		sess_service(&good);
	}

	n++;
	if (!good_ok) {
		snprintf(why, WHY_LEN, "its login failed");
	} else if (nop_ping(&good, 0x600d, why) && tur_good(&good, why)) {
		why[0] = '\0';
	}
	if (!why[0]) {
		printf("ok %u - the good session still answers NOP-Out and TUR (%u target pings answered)\n",
		       n, good.pings);
		passed++;
	} else {
		printf("not ok %u - the good session still answers NOP-Out and TUR (%s)\n",
		       n, why);
		failed++;
	}
	sess_close(&good);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
