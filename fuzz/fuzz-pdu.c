/* fuzz-pdu.c: libFuzzer target for the receive path of iSCSI
 * connections (iscsi/conn.c rx state machine, then login.c, session.c,
 * cmd.c, tmf.c, discovery.c, the SCSI layer and the memory backend).
 *
 * The iSCSI layer is set up as iscsi_start does, without listening; each
 * input gets a fresh connection (or two) on one end of a socketpair, and
 * the harness plays the initiator on the other end:
 *
 *   input --build--> bytes --peer_cb (write, then drain)--> [sv[0] | sv[1]]
 *   [sv[1]] --conn_event/rx_step--> dispatch --> ... --> tx --> [sv[0]]
 *
 * The loop runs in rounds: a 250 us timerfd (or our end, once it has sent
 * everything or seen the end of stream) stops evloop_run, then, as the
 * daemon's once-a-second tick does after a batch of events, conn_tick(NULL)
 * runs (reaping closed connections).  When everything is written and the
 * target is quiet (no command in the SCSI layer, nothing queued, nothing
 * unread), our end is half-closed; the target reads the end of stream,
 * closes, and the input is over when the connection is reaped.  A
 * connection still there after MAX_SECONDS is a finding (a peer that went
 * away must never leave a connection behind), as is any session left.
 *
 * What the target sends back is parsed (check_response): only target
 * opcodes, no AHS, zero padding, DataSegmentLength within the initiator's
 * MaxRecvDataSegmentLength (8192 during login; in full feature phase the
 * negotiated value, or any larger one the input declares in a Text
 * request), and ExpCmdSN/MaxCmdSN a valid window whose MaxCmdSN never goes
 * back.
 *
 * Input format.  Byte 0 holds flags:
 *
 *   0x01 LOGIN   first send a canned, good leading login (CSG 1 -> FFP)
 *   0x06 VARIANT which canned login ((b >> 1) & 3):
 *                0 normal session to T1, no digests, ImmediateData=Yes
 *                1 as 0 with HeaderDigest=CRC32C and DataDigest=CRC32C
 *                2 InitialR2T=No, FirstBurst 1024, MaxBurst 4096,
 *                  MaxRecvDataSegmentLength 512, MaxOutstandingR2T 4
 *                3 discovery session, MaxRecvDataSegmentLength 512
 *   0x08 FRAMED  the rest is PDU records: a 48-byte BHS, its AHS
 *                (TotalAHSLength words) and its data segment
 *                (DataSegmentLength bytes); both are clipped to what the
 *                input holds and the fields rewritten to match; the
 *                harness adds padding and, after the variant-1 login, the
 *                CRC32C digests.  A tail shorter than a BHS goes raw.
 *                Without FRAMED the rest is sent as it is.
 *   0x10 CMDSN   (FRAMED) overwrite the CmdSN of request PDUs with the
 *                next expected one (immediate ones do not advance it).
 *   0x20 EARLY   half-close as soon as everything is written, so the
 *                end of stream races with commands still running.
 *   0x40 TWO     two connections at once (same initiator): each gets the
 *                canned login (ISIDs ...01 and ...02, so two sessions);
 *                FRAMED records alternate between them, first to the
 *                first; raw bytes are split in halves.  For what crosses
 *                sessions: reinstatement (same ISID, no canned login),
 *                LOGICAL UNIT RESET and TARGET WARM RESET, reservations.
 *
 * Determinism: one IO worker; getrandom is replaced below so a CHAP
 * challenge is always the same (the seed corpus holds a correct CHAP
 * response to it); MODE SELECT and reservation state is put back before
 * each input (fuzz.h).  The CHAP replay cache (chap.c: a mutual CHAP
 * challenge is accepted once per process) and memory LUN contents do
 * carry over.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "util/util.h"
#include "util/crc32c.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "io/io.h"
#include "scsi/scsi.h"
#include "iscsi/iscsi.h"

#define T1 "iqn.2026-11.org.example:fuzz"
#define T2 "iqn.2026-11.org.example:chap"
#define T3 "iqn.2026-11.org.example:acl"
#define INITIATOR "iqn.2026-11.org.example:initiator"
#define CHAP_SECRET "fuzz-secret-0123"
#define MUTUAL_SECRET "fuzz-mutual-4567"

#define F_LOGIN 0x01
#define F_FRAMED 0x08
#define F_CMDSN 0x10
#define F_EARLY 0x20
#define F_TWO 0x40

#define NPEERS 2

#define LOGIN_CMDSN 1u
#define ROUND_US 250
/* Under libFuzzer's -timeout=10, so a stuck connection is reported with
 * its state rather than as a bare timeout. */
#define MAX_SECONDS 8

static struct conf *conf;
static struct lunmap *map;
static struct evloop *loop;
static struct ev_handler timer = { .fd = -1 };

enum rsp_stage { RS_BHS, RS_HDIG, RS_DATA, RS_PAD, RS_DDIG };

/* An initiator end: what it sends, how far it got, and the parser of
 * what the target sends back. */
struct peer {
	struct ev_handler ev;
	uint8_t *buf;
	size_t len, cap, off;
	bool shut;		/* our write side is closed */
	struct iscsi_conn *conn;	/* the target's side; valid while it is
					 * in iscsi_g.conns */
	/* Response parser (check_response). */
	enum rsp_stage stage;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint32_t got, dsl;
	bool ffp;		/* the final login response went by */
	bool hd, dd;		/* digests, from the connection at that time */
	bool lost;		/* framing unknown from here: stop checking */
	uint32_t limit;		/* the initiator's MaxRecvDataSegmentLength */
	bool have_max;
	uint32_t max_cmdsn;
};

static struct peer peers[NPEERS] = { { .ev.fd = -1 }, { .ev.fd = -1 } };
static unsigned npeers;
/* The largest MaxRecvDataSegmentLength the input could have declared
 * after login (Text requests), so renegotiation is never a false alarm. */
static uint32_t input_mrdsl;

/* The challenge and identifier of every CHAP exchange: 0xa0, 0xa1, ...
 * from the start of each request (chap.c asks for the challenge, then
 * for one byte of identifier, so CHAP_I is 0xa0 = 160). */
ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)(0xa0 + i);
	return (ssize_t)len;
}

/* ---- building the byte stream ---- */

static void
tx_put(struct peer *pe, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (pe->len + n > pe->cap) {
		size_t cap = MAX(pe->cap * 2, pe->len + n + 4096);
		uint8_t *b = realloc(pe->buf, cap);

		if (!b)
			abort();
		pe->buf = b;
		pe->cap = cap;
	}
	memcpy(pe->buf + pe->len, p, n);
	pe->len += n;
}

static void
put_digest(struct peer *pe, const void *a, size_t alen, const void *b,
	   size_t blen)
{
	uint32_t d = crc32c_update(~0u, a, alen);
	uint8_t le[4];

	d = ~crc32c_update(d, b, blen);
	/* On the wire little-endian (RFC 7143 §11.1). */
	le[0] = (uint8_t)d;
	le[1] = (uint8_t)(d >> 8);
	le[2] = (uint8_t)(d >> 16);
	le[3] = (uint8_t)(d >> 24);
	tx_put(pe, le, 4);
}

/* One PDU: header (and AHS), digest, data, padding, digest. */
static void
emit_pdu(struct peer *pe, uint8_t *bhs, const uint8_t *ahs, uint32_t ahs_len,
	 const uint8_t *data, uint32_t dsl, bool digests)
{
	static const uint8_t zero[4];
	uint32_t pad = (4 - (dsl & 3)) & 3;
	uint8_t hdr[ISCSI_BHS_LEN + 1024];

	bhs[4] = (uint8_t)(ahs_len / 4);
	bhs_set_dsl(bhs, dsl);
	memcpy(hdr, bhs, ISCSI_BHS_LEN);
	if (ahs_len)
		memcpy(hdr + ISCSI_BHS_LEN, ahs, ahs_len);
	tx_put(pe, hdr, ISCSI_BHS_LEN + ahs_len);
	if (digests)
		put_digest(pe, hdr, ISCSI_BHS_LEN + ahs_len, NULL, 0);
	if (dsl) {
		tx_put(pe, data, dsl);
		tx_put(pe, zero, pad);
		if (digests)
			put_digest(pe, data, dsl, zero, pad);
	}
}

static const char *const login_keys[4] = {
	"InitiatorName=" INITIATOR "\0TargetName=" T1 "\0"
	"SessionType=Normal\0MaxRecvDataSegmentLength=65536\0"
	"HeaderDigest=None\0DataDigest=None\0ErrorRecoveryLevel=0\0"
	"InitialR2T=Yes\0ImmediateData=Yes\0MaxBurstLength=262144\0"
	"FirstBurstLength=65536\0",

	"InitiatorName=" INITIATOR "\0TargetName=" T1 "\0"
	"SessionType=Normal\0MaxRecvDataSegmentLength=65536\0"
	"HeaderDigest=CRC32C\0DataDigest=CRC32C\0ErrorRecoveryLevel=0\0"
	"InitialR2T=Yes\0ImmediateData=Yes\0MaxBurstLength=262144\0"
	"FirstBurstLength=65536\0",

	"InitiatorName=" INITIATOR "\0TargetName=" T1 "\0"
	"SessionType=Normal\0MaxRecvDataSegmentLength=512\0"
	"HeaderDigest=None\0DataDigest=None\0InitialR2T=No\0"
	"ImmediateData=Yes\0MaxBurstLength=4096\0FirstBurstLength=1024\0"
	"MaxOutstandingR2T=4\0",

	"InitiatorName=" INITIATOR "\0SessionType=Discovery\0"
	"MaxRecvDataSegmentLength=512\0HeaderDigest=None\0"
	"DataDigest=None\0",
};

/* Length of a "k=v\0k=v\0" literal: up to the first empty string. */
static uint32_t
keys_len(const char *k)
{
	const char *p = k;

	while (*p)
		p += strlen(p) + 1;
	return (uint32_t)(p - k);
}

static void
emit_login(struct peer *pe, unsigned variant, uint8_t isid_tail)
{
	uint8_t bhs[ISCSI_BHS_LEN] = { 0 };
	const uint8_t isid[6] = { 0x80, 0x00, 0x02, 0x3d, 0x00, isid_tail };
	const char *k = login_keys[variant];

	bhs[0] = 0x40 | ISCSI_OP_LOGIN_REQ;
	bhs[1] = 0x87;			/* T, CSG 1, NSG 3 */
	memcpy(bhs + 8, isid, 6);
	put_be32(bhs + 16, 0x1000);	/* ITT */
	put_be32(bhs + 24, LOGIN_CMDSN);
	put_be32(bhs + 28, 0);		/* ExpStatSN */
	emit_pdu(pe, bhs, NULL, 0, (const uint8_t *)k, keys_len(k), false);
}

static bool
carries_cmdsn(uint8_t op)
{
	return op == ISCSI_OP_NOP_OUT || op == ISCSI_OP_SCSI_CMD ||
	       op == ISCSI_OP_TMF_REQ || op == ISCSI_OP_TEXT_REQ ||
	       op == ISCSI_OP_LOGOUT_REQ;
}

static void
build_stream(const uint8_t *d, size_t n)
{
	uint8_t flags = n ? d[0] : 0;
	unsigned variant = (flags >> 1) & 3;
	bool digests = (flags & F_LOGIN) && variant == 1;
	uint32_t cmdsn[NPEERS];
	unsigned next = 0;

	npeers = (flags & F_TWO) ? 2 : 1;
	for (unsigned i = 0; i < npeers; i++) {
		peers[i].len = peers[i].off = 0;
		cmdsn[i] = LOGIN_CMDSN;
		if (flags & F_LOGIN)
			emit_login(&peers[i], variant, (uint8_t)(1 + i));
	}
	if (n == 0)
		return;
	d++;
	n--;
	if (!(flags & F_FRAMED)) {
		size_t half = npeers == 2 ? n / 2 : n;

		tx_put(&peers[0], d, half);
		if (npeers == 2)
			tx_put(&peers[1], d + half, n - half);
		return;
	}
	while (n >= ISCSI_BHS_LEN) {
		struct peer *pe = &peers[next];
		uint8_t bhs[ISCSI_BHS_LEN];
		uint32_t ahs_len, dsl;

		memcpy(bhs, d, ISCSI_BHS_LEN);
		d += ISCSI_BHS_LEN;
		n -= ISCSI_BHS_LEN;
		ahs_len = MIN((uint32_t)bhs[4] * 4, (uint32_t)n & ~3u);
		const uint8_t *ahs = d;
		d += ahs_len;
		n -= ahs_len;
		dsl = MIN(bhs_dsl(bhs), (uint32_t)n);
		if ((flags & F_CMDSN) && carries_cmdsn(bhs_opcode(bhs))) {
			put_be32(bhs + 24, cmdsn[next]);
			if (!bhs_immediate(bhs))
				cmdsn[next]++;
		}
		emit_pdu(pe, bhs, ahs, ahs_len, d, dsl, digests);
		d += dsl;
		n -= dsl;
		next = (next + 1) % npeers;
	}
	tx_put(&peers[next], d, n);
}

/* ---- checking what the target sends ---- */

static void
scan_mrdsl(const uint8_t *d, size_t n)
{
	static const char key[] = "MaxRecvDataSegmentLength=";
	const size_t kl = sizeof key - 1;

	input_mrdsl = 0;
	for (const uint8_t *p = d; (p = memmem(p, n - (size_t)(p - d), key, kl));
	     p += kl) {
		const uint8_t *v = p + kl;
		size_t left = n - (size_t)(v - d), vl = 0;
		char num[32];
		uint64_t x;

		while (vl < left && vl < sizeof num - 1 && v[vl])
			vl++;
		memcpy(num, v, vl);
		num[vl] = '\0';
		if (iscsi_parse_number(num, &x) == 0 && x >= 512 &&
		    x <= 16777215 && x > input_mrdsl)
			input_mrdsl = (uint32_t)x;
	}
}

static bool
conn_alive(const struct iscsi_conn *c)
{
	for (struct iscsi_conn *o = iscsi_g.conns; o; o = o->next)
		if (o == c)
			return true;
	return false;
}

static bool
target_opcode(uint8_t op)
{
	return (op >= ISCSI_OP_NOP_IN && op <= ISCSI_OP_LOGOUT_RSP) ||
	       op == ISCSI_OP_R2T || op == ISCSI_OP_ASYNC ||
	       op == ISCSI_OP_REJECT;
}

/* A whole header arrived: RFC 7143 framing and limits. */
static void
check_header(struct peer *pe)
{
	const uint8_t *b = pe->bhs;
	uint8_t op = bhs_opcode(b);
	uint32_t limit = pe->ffp ? MAX(pe->limit, input_mrdsl) : 8192;

	pe->dsl = bhs_dsl(b);
	FUZZ_ASSERT(target_opcode(op) && !(b[0] & 0xc0),
		    "target sent opcode byte 0x%02x", b[0]);
	FUZZ_ASSERT(b[4] == 0, "target sent TotalAHSLength %u (opcode 0x%02x)",
		    b[4], op);
	/* §11.2.1.5 (MaxRecvDataSegmentLength, §13.12): the receiver's
	 * declared limit, 8192 during login. */
	FUZZ_ASSERT(pe->dsl <= limit,
		    "target sent opcode 0x%02x with DataSegmentLength %u, over "
		    "the initiator's MaxRecvDataSegmentLength %u%s", op, pe->dsl,
		    limit, pe->ffp ? "" : " (login)");
	if (pe->ffp && op != ISCSI_OP_LOGIN_RSP) {
		uint32_t exp = get_be32(b + 28), max = get_be32(b + 32);

		/* §4.2.2.1: MaxCmdSN + 1 >= ExpCmdSN, and (this target's
		 * promise, session.c) MaxCmdSN never moves back. */
		FUZZ_ASSERT(sn_le(exp - 1, max), "opcode 0x%02x: ExpCmdSN %u "
			    "beyond MaxCmdSN %u + 1", op, exp, max);
		FUZZ_ASSERT(!pe->have_max || sn_le(pe->max_cmdsn, max),
			    "opcode 0x%02x: MaxCmdSN went back from %u to %u",
			    op, pe->max_cmdsn, max);
		pe->have_max = true;
		pe->max_cmdsn = max;
	}
	if (op == ISCSI_OP_LOGIN_RSP && (b[1] & 0x80) && (b[1] & 3) == 3 &&
	    b[36] == 0 && b[37] == 0) {
		/* The last login response: full feature phase from the next
		 * PDU, with the digests the connection negotiated. */
		if (!pe->conn || !conn_alive(pe->conn)) {
			pe->lost = true;
			return;
		}
		pe->ffp = true;
		pe->hd = pe->conn->params.header_digest;
		pe->dd = pe->conn->params.data_digest;
		pe->limit = pe->conn->params.max_send_dsl;
	}
}

/* Feed what the target sent on this connection through the parser. */
static void
check_response(struct peer *pe, const uint8_t *p, size_t n)
{
	while (n && !pe->lost) {
		uint32_t want;
		size_t take;

		switch (pe->stage) {
		case RS_BHS:
			want = ISCSI_BHS_LEN;
			break;
		case RS_HDIG:
		case RS_DDIG:
			want = 4;
			break;
		case RS_DATA:
			want = pe->dsl;
			break;
		default:
			want = (4 - (pe->dsl & 3)) & 3;
			break;
		}
		take = MIN((size_t)(want - pe->got), n);
		if (pe->stage == RS_BHS)
			memcpy(pe->bhs + pe->got, p, take);
		if (pe->stage == RS_PAD)
			for (size_t i = 0; i < take; i++)
				FUZZ_ASSERT(p[i] == 0, "non-zero padding after "
					    "opcode 0x%02x",
					    bhs_opcode(pe->bhs));
		pe->got += (uint32_t)take;
		p += take;
		n -= take;
		if (pe->got < want)
			break;
		pe->got = 0;
		switch (pe->stage) {
		case RS_BHS:
			/* Digests start with the PDU after the last login
			 * response (§13.1): decide before check_header may
			 * turn them on. */
			if (pe->ffp && pe->hd) {
				check_header(pe);
				pe->stage = RS_HDIG;
				break;
			}
			check_header(pe);
			pe->stage = pe->dsl ? RS_DATA : RS_BHS;
			break;
		case RS_HDIG:
			pe->stage = pe->dsl ? RS_DATA : RS_BHS;
			break;
		case RS_DATA:
			pe->stage = RS_PAD;
			break;
		case RS_PAD:
			pe->stage = pe->ffp && pe->dd && bhs_opcode(pe->bhs) !=
				    ISCSI_OP_LOGIN_RSP ? RS_DDIG : RS_BHS;
			break;
		case RS_DDIG:
			pe->stage = RS_BHS;
			break;
		}
	}
}

/* ---- the initiator end ---- */

static void
peer_close(struct peer *pe)
{
	evloop_del(loop, &pe->ev);
	close(pe->ev.fd);
	pe->ev.fd = -1;
}

static void
peer_cb(struct ev_handler *h, uint32_t events)
{
	static uint8_t sink[1 << 18];
	struct peer *pe = container_of(h, struct peer, ev);
	bool eof = false;

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t r = read(h->fd, sink, sizeof sink);

			if (r > 0) {
				check_response(pe, sink, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			eof = true;	/* the target closed */
			break;
		}
	}
	while (!eof && pe->off < pe->len) {
		ssize_t r = send(h->fd, pe->buf + pe->off, pe->len - pe->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			pe->off += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		pe->off = pe->len;	/* EPIPE: the target is gone */
	}
	if (eof) {
		peer_close(pe);
		evloop_stop(loop);
		return;
	}
	evloop_mod(loop, h, EPOLLIN | EPOLLRDHUP |
		   (pe->off < pe->len ? EPOLLOUT : 0));
	/* All sent: let the round end so the caller can see whether the
	 * target went quiet, rather than wait for the timer. */
	if (!pe->shut && pe->off == pe->len)
		evloop_stop(loop);
}

static void
timer_cb(struct ev_handler *h, uint32_t events)
{
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof n);

	(void)r;
	(void)events;
	evloop_stop(loop);
}

/* Nothing in flight on any connection: no command in the SCSI layer or a
 * worker, no TMF waiting (each holds a connection reference), nothing
 * queued to send and nothing unread on the target's end. */
static bool
target_quiet(void)
{
	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next) {
		int unread = 0;

		if (c->state == CONN_CLOSED)
			continue;
		if (c->refs > 1 || c->tx_head)
			return false;
		if (ioctl(c->ev.fd, FIONREAD, &unread) == 0 && unread > 0)
			return false;
	}
	return true;
}

static bool
peers_open(void)
{
	for (unsigned i = 0; i < npeers; i++)
		if (peers[i].ev.fd >= 0)
			return true;
	return false;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
timer_arm(unsigned us)
{
	struct itimerspec its = {
		.it_value = { .tv_nsec = (long)us * 1000 },
		.it_interval = { .tv_nsec = (long)us * 1000 },
	};

	timerfd_settime(timer.fd, 0, &its, NULL);
}

/* ---- set-up ---- */

static void
write_secret(const char *path, const char *secret)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, secret, strlen(secret)) < 0 ||
	    write(fd, "\n", 1) < 0)
		fuzz_fail("writing %s: %s", path, strerror(errno));
	close(fd);
}

/* 8 portals so that a discovery answer is long enough to continue. */
#define LUN(n, extra, size)                                                   \
	"{\"lun\": " #n ", " extra "\"backend\": {\"type\": \"memory\", "     \
	"\"size\": \"" size "\"}}"
static const char map_fmt[] =
	"{\"portals\": [\"127.0.0.1:3260\", \"127.0.0.2:3260\","
	"  \"127.0.0.3:3260\", \"[::1]:3260\", \"0.0.0.0:3261\","
	"  \"192.0.2.1:3260\", \"192.0.2.2:3260\", \"192.0.2.3:3260\"],"
	" \"iscsi\": {\"queue_depth\": 16, \"nop_interval\": 0,"
	"   \"login_timeout\": 3600, \"max_connections\": 8,"
	"   \"max_recv_data_segment_length\": 65536,"
	"   \"first_burst_length\": 65536, \"max_burst_length\": 262144,"
	"   \"max_outstanding_r2t\": 4},"
	" \"targets\": ["
	"  {\"name\": \"" T1 "\", \"alias\": \"fuzz disk\", \"luns\": ["
	"    " LUN(0, "", "1M") ","
	"    " LUN(1, "\"block_size\": 4096, \"thin\": true, "
		  "\"write_cache\": true, ", "1M") ","
	"    " LUN(2, "\"read_only\": true, \"serial\": \"RO\", ", "256K") ","
	"    " LUN(300, "", "64K") "]},"
	"  {\"name\": \"" T2 "\","
	"   \"chap\": {\"user\": \"fuzz\", \"secret_file\": \"%s/chap\"},"
	"   \"mutual_chap\": {\"user\": \"target\","
	"                     \"secret_file\": \"%s/mutual\"},"
	"   \"luns\": [" LUN(0, "", "64K") "]},"
	"  {\"name\": \"" T3 "\","
	"   \"acl\": [\"iqn.2026-11.org.example:other\"],"
	"   \"luns\": [" LUN(0, "", "64K") "]}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/igw-fuzz-pdu.XXXXXX", path[64], *json;

	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	/* As iscsi-gw's main: a peer gone is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);

	/* CHAP secrets live in files; the conf keeps them in memory. */
	if (!mkdtemp(dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof path, "%s/chap", dir);
	write_secret(path, CHAP_SECRET);
	snprintf(path, sizeof path, "%s/mutual", dir);
	write_secret(path, MUTUAL_SECRET);
	if (asprintf(&json, map_fmt, dir, dir) < 0)
		abort();
	conf = fuzz_load_map(json, "fuzz-pdu");
	free(json);
	snprintf(path, sizeof path, "%s/chap", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/mutual", dir);
	unlink(path);
	rmdir(dir);

	map = lunmap_new(conf);
	loop = evloop_new();
	timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	timer.cb = timer_cb;
	if (!map || !loop || timer.fd < 0 ||
	    evloop_add(loop, &timer, EPOLLIN) < 0 || io_pool_start(1) < 0)
		fuzz_fail("set-up failed");
	fuzz_save_luns(map);

	/* As iscsi_start, without listening (portal.c). */
	iscsi_g.conf = conf;
	iscsi_g.map = map;
	iscsi_g.loop = loop;
	iscsi_params_offer(&iscsi_g.offer, conf);
	iscsi_g.next_tsih = 0x1200;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool early = size > 0 && (data[0] & F_EARLY);
	unsigned round;
	double deadline;

	FUZZ_ASSERT(!iscsi_g.conns && iscsi_g.nconns == 0 && !iscsi_g.sessions,
		    "state left over from the previous input");
	fuzz_restore_luns();
	build_stream(data, size);
	scan_mrdsl(data, size);

	for (unsigned i = 0; i < npeers; i++) {
		struct peer *pe = &peers[i];
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, 0, sv) < 0)
			fuzz_fail("socketpair: %s", strerror(errno));
		conn_accept(sv[1], i ? "fuzz-2" : "fuzz", "127.0.0.1", 3260);
		FUZZ_ASSERT(iscsi_g.nconns == i + 1,
			    "conn_accept did not add the connection");
		pe->ev.fd = sv[0];
		pe->ev.cb = peer_cb;
		pe->shut = false;
		pe->conn = iscsi_g.conns;	/* conn_accept puts it first */
		pe->stage = RS_BHS;
		pe->got = pe->dsl = 0;
		pe->ffp = pe->hd = pe->dd = pe->lost = pe->have_max = false;
		pe->limit = 0;
		if (evloop_add(loop, &pe->ev, EPOLLIN | EPOLLOUT | EPOLLRDHUP) < 0)
			fuzz_fail("evloop_add: %s", strerror(errno));
	}
	timer_arm(ROUND_US);

	deadline = now_s() + MAX_SECONDS;
	for (round = 0; now_s() < deadline; round++) {
		bool all_sent = true;

		evloop_run(loop);
		/* The daemon's tick, after the batch of events. */
		conn_tick(NULL);
		for (unsigned i = 0; i < npeers; i++)
			if (peers[i].ev.fd >= 0 && peers[i].off < peers[i].len)
				all_sent = false;
		/* Both ends at once, so that neither connection is closed
		 * while the other still has work that concerns it. */
		if (all_sent && (early || target_quiet()))
			for (unsigned i = 0; i < npeers; i++)
				if (peers[i].ev.fd >= 0 && !peers[i].shut) {
					shutdown(peers[i].ev.fd, SHUT_WR);
					peers[i].shut = true;
				}
		if (!iscsi_g.conns && !peers_open())
			break;
	}
	timer_arm(0);
	if (iscsi_g.conns) {
		struct iscsi_conn *c = iscsi_g.conns;

		fuzz_fail("connection %s not freed after %u rounds, %d s: "
			  "state %d, refs %u, ntasks %u, tx %s, rx stage %d",
			  c->peer, round, MAX_SECONDS, (int)c->state, c->refs,
			  c->ntasks, c->tx_head ? "queued" : "empty",
			  (int)c->rx_stage);
	}
	if (peers_open())
		fuzz_fail("the target never closed its end");
	FUZZ_ASSERT(iscsi_g.nconns == 0, "nconns %u with no connection",
		    iscsi_g.nconns);
	FUZZ_ASSERT(!iscsi_g.sessions, "a session outlived its connection");
	return 0;
}
