/* test-pdu.c: the iSCSI layer (iscsi/) end to end, in-process and without
 * TCP.  The real connection code serves one end of a socketpair; the test
 * plays the initiator on the other end, building request PDUs byte by byte
 * and decoding the target's answers field by field (RFC 7143 §11).
 *
 *   test --send()--> [sv[0] | sv[1]] --conn_event/rx_step--> login.c, cmd.c
 *   test <--recv()-- [sv[0] | sv[1]] <--conn_flush-- tx queue
 *
 * There is no single-step API for the event loop: pump() arms a timerfd
 * whose callback calls evloop_stop, then runs evloop_run, so the target
 * gets a bounded slice of time.  Every read and write of the initiator end
 * is non-blocking and pumps the target while it would block, so large
 * transfers (bigger than the socket buffers) make progress both ways.
 *
 *   LUN 0: memory 1 MiB, 512-byte blocks   (2048 blocks)
 *   LUN 1: memory 1 MiB, 4096-byte blocks  (256 blocks)
 *
 * The login negotiates InitialR2T=Yes and ImmediateData=No, so every write
 * is solicited by R2T; MaxOutstandingR2T is not offered and stays 1.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util/util.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "io/io.h"
#include "scsi/scsi.h"
#include "iscsi/iscsi.h"

#define TARGET_NAME "iqn.2026-11.org.example:t1"
#define INITIATOR_NAME "iqn.2026-11.org.example:initiator"

static const char map_json[] =
	"{\"portals\": [\"127.0.0.1:3260\"],"
	" \"targets\": [{\"name\": \"" TARGET_NAME "\", \"luns\": ["
	"  {\"lun\": 0, \"backend\": {\"type\": \"memory\", \"size\": \"1M\"}},"
	"  {\"lun\": 1, \"block_size\": 4096,"
	"   \"backend\": {\"type\": \"memory\", \"size\": \"1M\"}}]}]}";

#define LOGIN_CMDSN 5u		/* CmdSN of the login request */
#define INI_MRDSL 65536u	/* our MaxRecvDataSegmentLength */
#define TGT_MRDSL 262144u	/* the target's (conf default) */
#define MAX_BURST 262144u	/* negotiated MaxBurstLength */
#define FIRST_BURST 65536u	/* negotiated FirstBurstLength */
#define IO_TIMEOUT_MS 5000	/* generous: valgrind */
#define PUMP_MS 10

/* SCSI Command flags (§11.3.1). */
#define SC_F 0x80
#define SC_R 0x40
#define SC_W 0x20
#define SC_SIMPLE 0x01

static struct conf *conf;
static struct lunmap *lmap;
static struct evloop *evl;
static struct ev_handler pump_timer = { .fd = -1 };

/* ---- running the target ---- */

static void
pump_timer_cb(struct ev_handler *h, uint32_t events)
{
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof n);

	(void)r;
	evloop_stop(evl);
}

/* After each batch of events: what worker completions left to send
 * (iscsi_start's hook also reaps closed connections at once; here the
 * tests look at a closed connection until the tick reaps it). */
static void
after_batch(void *opaque)
{
	(void)opaque;
	conn_flush_queued();
}

/* Let the target run for ms milliseconds: socket events, completions
 * from the IO workers, flushes. */
static void
pump_ms(unsigned ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L },
	};

	timerfd_settime(pump_timer.fd, 0, &its, NULL);
	evloop_run(evl);
}

static void
pump(void)
{
	pump_ms(PUMP_MS);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the initiator end ---- */

struct ini {
	int fd;			/* our end of the socketpair; -1: none */
	struct iscsi_conn *conn;	/* the target's connection */
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t cmdsn;		/* next CmdSN to send */
	bool statsn_known;	/* a response has set exp_statsn */
	uint32_t exp_statsn;	/* next StatSN expected */
	uint32_t max_cmdsn;	/* last MaxCmdSN seen (never goes down) */
	uint32_t next_itt;
};

static struct ini I = { .fd = -1 };

/* Bytes waiting on our end. */
static int
pending_bytes(int fd)
{
	int n = 0;

	if (ioctl(fd, FIONREAD, &n) < 0)
		return -1;
	return n;
}

static bool
send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint64_t deadline = now_ms() + IO_TIMEOUT_MS;

	while (n) {
		ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    now_ms() < deadline) {
			pump();		/* the target drains the socket */
			continue;
		}
		return false;
	}
	return true;
}

/* Read n bytes, running the target while none are there.  Returns how
 * many were read: fewer than n at end of stream (*eof set) or on timeout. */
static size_t
recv_all(int fd, void *buf, size_t n, bool *eof)
{
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t deadline = now_ms() + IO_TIMEOUT_MS;

	*eof = false;
	while (got < n) {
		ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0) {
			*eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
		    now_ms() < deadline) {
			pump();
			continue;
		}
		break;
	}
	return got;
}

/* Close whatever a previous test left open and reap the connection. */
static void
ini_close(struct ini *in)
{
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	/* The target reads the end of stream, closes, and the tick reaps. */
	for (int i = 0; i < 100 && iscsi_g.conns; i++) {
		pump();
		conn_tick(NULL);
	}
	in->conn = NULL;
}

/* A new connection, in the login phase.  sndbuf, when not 0, shrinks the
 * send buffers of both ends so that transfers go in many partial reads
 * and writes (writev stopping inside a PDU, EPOLLOUT resuming it). */
static bool
ini_open_buf(struct ini *in, uint8_t isid_tail, int sndbuf)
{
	int sv[2], fl;
	struct timeval tv = { .tv_sec = 2 };

	ini_close(in);
	memset(in, 0, sizeof *in);
	in->fd = -1;
	if (!CHECK(iscsi_g.conns == NULL) || !CHECK(iscsi_g.nconns == 0))
		return false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		CHECK_MSG(false, "socketpair: %s", strerror(errno));
		return false;
	}
	fl = fcntl(sv[1], F_GETFL);
	fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (sndbuf) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	}
	conn_accept(sv[1], "test-peer", "127.0.0.1", 3260);
	in->fd = sv[0];
	if (!CHECK(iscsi_g.nconns == 1) || !CHECK(iscsi_g.conns != NULL))
		return false;
	in->conn = iscsi_g.conns;
	CHECK(in->conn->state == CONN_LOGIN);
	/* ISID: type 2 (random), qualifier, then a per-test byte. */
	in->isid[0] = 0x80;
	in->isid[1] = 0x00;
	in->isid[2] = 0x02;
	in->isid[3] = 0x3d;
	in->isid[4] = 0x00;
	in->isid[5] = isid_tail;
	in->cmdsn = LOGIN_CMDSN;
	in->exp_statsn = 0x1000;	/* what we claim to expect first */
	in->next_itt = 0x100;
	return true;
}

static bool
ini_open(struct ini *in, uint8_t isid_tail)
{
	return ini_open_buf(in, isid_tail, 0);
}

/* Nothing more from the target after letting it run a while. */
static bool
quiet(struct ini *in)
{
	for (int i = 0; i < 3; i++)
		pump();
	return pending_bytes(in->fd) == 0;
}

/* ---- PDUs ---- */

struct pdu {
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t *data;		/* dsl bytes and a NUL; NULL when dsl is 0 */
	uint32_t dsl;
};

static void
pdu_free(struct pdu *p)
{
	free(p->data);
	p->data = NULL;
}

static uint32_t
pad_of(uint32_t dsl)
{
	return (4 - (dsl & 3)) & 3;
}

/* Our own encoding: the test must not trust the product's helpers. */
static void
set_dsl(uint8_t *b, uint32_t dsl)
{
	b[5] = (uint8_t)(dsl >> 16);
	b[6] = (uint8_t)(dsl >> 8);
	b[7] = (uint8_t)dsl;
}

static uint32_t
get_dsl(const uint8_t *b)
{
	return (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
}

/* Peripheral-device addressing, as Linux sends LUNs below 256. */
static void
put_lun(uint8_t *p, unsigned lun)
{
	memset(p, 0, 8);
	p[1] = (uint8_t)lun;
}

/* Header, data, zero padding to 4 bytes: one send. */
static bool
send_pdu(struct ini *in, uint8_t *bhs, const void *data, uint32_t dsl)
{
	size_t n = ISCSI_BHS_LEN + dsl + pad_of(dsl);
	uint8_t *buf = calloc(1, n);
	bool ok;

	if (!buf)
		abort();
	set_dsl(bhs, dsl);
	memcpy(buf, bhs, ISCSI_BHS_LEN);
	if (dsl)
		memcpy(buf + ISCSI_BHS_LEN, data, dsl);
	ok = send_all(in->fd, buf, n);
	free(buf);
	CHECK_MSG(ok, "sending opcode 0x%02x: %s", bhs[0], strerror(errno));
	return ok;
}

/* Read one whole PDU from the target: header, no AHS, data of at most our
 * MaxRecvDataSegmentLength, zero padding. */
static bool
recv_pdu_at(struct ini *in, struct pdu *p, int line)
{
	uint8_t pad[4];
	bool eof;
	size_t n;

	memset(p, 0, sizeof *p);
	n = recv_all(in->fd, p->bhs, ISCSI_BHS_LEN, &eof);
	if (n != ISCSI_BHS_LEN) {
		harness_fail(__FILE__, line, "no PDU from the target (%zu header bytes%s)",
			     n, eof ? ", end of stream" : ", timeout");
		return false;
	}
	if (p->bhs[4] != 0)
		harness_fail(__FILE__, line, "TotalAHSLength %u in opcode 0x%02x",
			     p->bhs[4], p->bhs[0]);
	p->dsl = get_dsl(p->bhs);
	if (p->dsl > INI_MRDSL) {
		harness_fail(__FILE__, line,
			     "opcode 0x%02x DataSegmentLength %u exceeds our MaxRecvDataSegmentLength %u",
			     p->bhs[0], p->dsl, INI_MRDSL);
		return false;
	}
	if (p->dsl) {
		p->data = malloc(p->dsl + 1);
		if (!p->data)
			abort();
		n = recv_all(in->fd, p->data, p->dsl, &eof);
		p->data[n] = 0;
		if (n != p->dsl) {
			harness_fail(__FILE__, line, "short data segment: %zu of %u",
				     n, p->dsl);
			pdu_free(p);
			return false;
		}
	}
	n = recv_all(in->fd, pad, pad_of(p->dsl), &eof);
	if (n != pad_of(p->dsl)) {
		harness_fail(__FILE__, line, "short padding: %zu of %u", n,
			     pad_of(p->dsl));
		pdu_free(p);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (pad[i])
			harness_fail(__FILE__, line, "padding byte %zu is 0x%02x",
				     i, pad[i]);
	return true;
}
#define RECV_PDU(in, p) recv_pdu_at((in), (p), __LINE__)

/* Field checks that name the caller's line. */
#define EXPECT_EQ(line, what, a, b)                                           \
	do {                                                                  \
		unsigned long long e_a_ = (unsigned long long)(a);            \
		unsigned long long e_b_ = (unsigned long long)(b);            \
		if (e_a_ != e_b_)                                             \
			harness_fail(__FILE__, (line),                        \
				     "%s: %s is %llu (0x%llx), expected %llu (0x%llx)", \
				     (what), #a, e_a_, e_a_, e_b_, e_b_);     \
	} while (0)
#define EXPECT(line, what, cond)                                              \
	do {                                                                  \
		if (!(cond))                                                  \
			harness_fail(__FILE__, (line), "%s: %s", (what),      \
				     #cond);                                  \
	} while (0)

/* StatSN of a response: consecutive from the first one. */
static void
take_statsn(struct ini *in, const uint8_t *bhs, const char *what, int line)
{
	uint32_t sn = get_be32(bhs + 24);

	if (in->statsn_known)
		EXPECT_EQ(line, what, sn, in->exp_statsn);
	in->statsn_known = true;
	in->exp_statsn = sn + 1;
}

/* ExpCmdSN and MaxCmdSN: the window is open at least 64 commands wide and
 * MaxCmdSN never moves back. */
static void
check_window(struct ini *in, const uint8_t *bhs, uint32_t exp_cmdsn,
	     const char *what, int line)
{
	uint32_t exp = get_be32(bhs + 28), max = get_be32(bhs + 32);

	EXPECT_EQ(line, what, exp, exp_cmdsn);
	EXPECT(line, what, sn_le(exp + 63, max));
	if (in->max_cmdsn)
		EXPECT(line, what, sn_le(in->max_cmdsn, max));
	in->max_cmdsn = max;
}

/* ---- login ---- */

static const char *const login_keys[] = {
	"InitiatorName=" INITIATOR_NAME,
	"TargetName=" TARGET_NAME,
	"SessionType=Normal",
	"MaxRecvDataSegmentLength=65536",
	"MaxBurstLength=262144",
	"FirstBurstLength=65536",
	"InitialR2T=Yes",
	"ImmediateData=No",
	"HeaderDigest=None,CRC32C",
};

/* The complete, exact answer to login_keys. */
static const struct {
	const char *key, *value;
} login_answers[] = {
	{ "TargetPortalGroupTag", "1" },
	{ "MaxRecvDataSegmentLength", "262144" },
	{ "HeaderDigest", "None" },
	{ "InitialR2T", "Yes" },
	{ "ImmediateData", "No" },
	{ "MaxBurstLength", "262144" },
	{ "FirstBurstLength", "65536" },
};

/* "key=value\0" for keys[from, to). */
static uint32_t
keys_text(uint8_t *out, size_t cap, size_t from, size_t to)
{
	uint32_t len = 0;

	for (size_t i = from; i < to; i++) {
		size_t n = strlen(login_keys[i]) + 1;

		if (len + n > cap)
			abort();
		memcpy(out + len, login_keys[i], n);
		len += (uint32_t)n;
	}
	return len;
}

static void
login_bhs(struct ini *in, uint8_t *b, uint8_t flags, uint32_t itt)
{
	memset(b, 0, ISCSI_BHS_LEN);
	b[0] = 0x40 | ISCSI_OP_LOGIN_REQ;	/* always immediate */
	b[1] = flags;
	b[2] = 0x00;		/* Version-max */
	b[3] = 0x00;		/* Version-min */
	memcpy(b + 8, in->isid, 6);
	put_be16(b + 14, 0);	/* TSIH 0: a new session */
	put_be32(b + 16, itt);
	put_be16(b + 20, 0);	/* CID */
	put_be32(b + 24, in->cmdsn);
	put_be32(b + 28, in->exp_statsn);
}

/* Split "k=v\0k=v\0..." into at most max pairs: -1 when malformed. */
static int
parse_text(char *text, uint32_t len, char **k, char **v, int max)
{
	int n = 0;
	uint32_t i = 0;

	while (i < len) {
		char *s = text + i;
		size_t sl = strnlen(s, len - i);
		char *eq;

		if (sl == len - i)
			return -1;	/* not NUL-terminated */
		eq = memchr(s, '=', sl);
		if (!eq || eq == s || n >= max)
			return -1;
		*eq = 0;
		k[n] = s;
		v[n] = eq + 1;
		n++;
		i += (uint32_t)sl + 1;
	}
	return n;
}

/* The final login response: T, CSG 1, NSG 3, status 0, a TSIH, and the
 * exact key answers. */
static void
check_login_final(struct ini *in, struct pdu *p, uint32_t itt, int line)
{
	const uint8_t *b = p->bhs;
	char *k[32], *v[32];
	int n;

	EXPECT_EQ(line, "login response", b[0], ISCSI_OP_LOGIN_RSP);
	EXPECT_EQ(line, "login response T/C/CSG/NSG", b[1], 0x87);
	EXPECT_EQ(line, "login response Version-max", b[2], 0x00);
	EXPECT_EQ(line, "login response Version-active", b[3], 0x00);
	EXPECT(line, "login response ISID", !memcmp(b + 8, in->isid, 6));
	EXPECT(line, "login response TSIH", get_be16(b + 14) != 0);
	EXPECT_EQ(line, "login response ITT", get_be32(b + 16), itt);
	take_statsn(in, b, "login response StatSN", line);
	check_window(in, b, LOGIN_CMDSN, "login response", line);
	EXPECT_EQ(line, "login response Status-Class", b[36], 0);
	EXPECT_EQ(line, "login response Status-Detail", b[37], 0);
	in->tsih = get_be16(b + 14);

	n = p->dsl ? parse_text((char *)p->data, p->dsl, k, v, 32) : 0;
	EXPECT_EQ(line, "login response key count", n,
		  ARRAY_SIZE(login_answers));
	for (size_t a = 0; a < ARRAY_SIZE(login_answers); a++) {
		int found = 0;

		for (int i = 0; i < n; i++) {
			if (strcmp(k[i], login_answers[a].key))
				continue;
			found++;
			if (strcmp(v[i], login_answers[a].value))
				harness_fail(__FILE__, line,
					     "login answer %s=%s, expected %s",
					     k[i], v[i], login_answers[a].value);
		}
		if (found != 1)
			harness_fail(__FILE__, line,
				     "login answer %s appears %d times",
				     login_answers[a].key, found);
	}
}

/* One Login Request with every key, straight to full feature phase. */
static bool
login_at(struct ini *in, int line)
{
	uint8_t b[ISCSI_BHS_LEN], text[1024];
	uint32_t len = keys_text(text, sizeof text, 0, ARRAY_SIZE(login_keys));
	uint32_t itt = in->next_itt++;
	struct pdu p;
	unsigned before = harness_cur_failures;

	login_bhs(in, b, 0x87, itt);
	if (!send_pdu(in, b, text, len) || !recv_pdu_at(in, &p, line))
		return false;
	check_login_final(in, &p, itt, line);
	pdu_free(&p);
	EXPECT(line, "connection state after login",
	       in->conn->state == CONN_FFP);
	return harness_cur_failures == before;
}
#define LOGIN(in) login_at((in), __LINE__)

/* ---- SCSI ---- */

static void
cdb10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t nb)
{
	memset(c, 0, 16);
	c[0] = op;
	put_be32(c + 2, lba);
	put_be16(c + 7, nb);
}

static uint32_t
send_scsi_sn(struct ini *in, unsigned lun, uint8_t flags, uint32_t edtl,
	     const uint8_t *cdb, uint32_t cmdsn)
{
	uint8_t b[ISCSI_BHS_LEN];
	uint32_t itt = in->next_itt++;

	memset(b, 0, sizeof b);
	b[0] = ISCSI_OP_SCSI_CMD;
	b[1] = flags;
	put_lun(b + 8, lun);
	put_be32(b + 16, itt);
	put_be32(b + 20, edtl);
	put_be32(b + 24, cmdsn);
	put_be32(b + 28, in->exp_statsn);
	memcpy(b + 32, cdb, 16);
	send_pdu(in, b, NULL, 0);
	return itt;
}

static uint32_t
send_scsi(struct ini *in, unsigned lun, uint8_t flags, uint32_t edtl,
	  const uint8_t *cdb)
{
	return send_scsi_sn(in, lun, flags, edtl, cdb, in->cmdsn++);
}

/* A SCSI Response: F, response 0 (completed at target), the status, the
 * residual flags and count, ExpDataSN. */
static void
check_scsi_rsp_at(struct ini *in, const struct pdu *p, uint32_t itt,
		  uint8_t status, uint8_t ou, uint32_t resid,
		  uint32_t exp_cmdsn, uint32_t exp_datasn, int line)
{
	const uint8_t *b = p->bhs;

	EXPECT_EQ(line, "SCSI Response opcode", b[0], ISCSI_OP_SCSI_RSP);
	EXPECT_EQ(line, "SCSI Response flags", b[1], 0x80 | ou);
	EXPECT_EQ(line, "SCSI Response response", b[2], 0x00);
	EXPECT_EQ(line, "SCSI Response status", b[3], status);
	EXPECT_EQ(line, "SCSI Response ITT", get_be32(b + 16), itt);
	EXPECT_EQ(line, "SCSI Response SNACK Tag", get_be32(b + 20), 0);
	take_statsn(in, b, "SCSI Response StatSN", line);
	check_window(in, b, exp_cmdsn, "SCSI Response", line);
	EXPECT_EQ(line, "SCSI Response ExpDataSN", get_be32(b + 36), exp_datasn);
	EXPECT_EQ(line, "SCSI Response Bidi residual", get_be32(b + 40), 0);
	EXPECT_EQ(line, "SCSI Response residual", get_be32(b + 44), resid);
}

/* Receive and check the SCSI Response of a command with no data. */
static void
expect_rsp_at(struct ini *in, uint32_t itt, uint8_t status, uint32_t exp_cmdsn,
	      int line)
{
	struct pdu p;

	if (!recv_pdu_at(in, &p, line))
		return;
	check_scsi_rsp_at(in, &p, itt, status, 0, 0, exp_cmdsn, 0, line);
	EXPECT_EQ(line, "SCSI Response DataSegmentLength", p.dsl, 0);
	pdu_free(&p);
}
#define EXPECT_RSP(in, itt, status, exp_cmdsn)                                \
	expect_rsp_at((in), (itt), (status), (exp_cmdsn), __LINE__)

/* WRITE(10) of nb blocks of bs bytes from data: every byte solicited by
 * R2T (InitialR2T=Yes, ImmediateData=No), sent in Data-Out PDUs of at most
 * chunk bytes, then the SCSI Response.  Returns the ITT. */
static uint32_t
write10_at(struct ini *in, unsigned lun, uint32_t lba, uint16_t nb, uint32_t bs,
	   const uint8_t *data, uint32_t chunk, int line)
{
	uint8_t cdb[16], b[ISCSI_BHS_LEN];
	uint32_t total = nb * bs, off = 0, r2tsn = 0;
	uint32_t itt;
	struct pdu p;

	cdb10(cdb, 0x2a, lba, nb);
	itt = send_scsi(in, lun, SC_F | SC_W | SC_SIMPLE, total, cdb);
	while (off < total) {
		uint32_t ttt, want, datasn = 0;

		if (!recv_pdu_at(in, &p, line))
			return itt;
		EXPECT_EQ(line, "R2T opcode", p.bhs[0], ISCSI_OP_R2T);
		if (p.bhs[0] != ISCSI_OP_R2T) {
			pdu_free(&p);
			return itt;
		}
		EXPECT_EQ(line, "R2T flags", p.bhs[1], 0x80);
		EXPECT_EQ(line, "R2T DataSegmentLength", p.dsl, 0);
		EXPECT_EQ(line, "R2T LUN", get_be64(p.bhs + 8),
			  (uint64_t)lun << 48);
		EXPECT_EQ(line, "R2T ITT", get_be32(p.bhs + 16), itt);
		ttt = get_be32(p.bhs + 20);
		EXPECT(line, "R2T TTT", ttt != ISCSI_RSVD_TAG);
		/* The next StatSN, not advanced by an R2T. */
		EXPECT_EQ(line, "R2T StatSN", get_be32(p.bhs + 24),
			  in->exp_statsn);
		check_window(in, p.bhs, in->cmdsn, "R2T", line);
		EXPECT_EQ(line, "R2T R2TSN", get_be32(p.bhs + 36), r2tsn);
		EXPECT_EQ(line, "R2T Buffer Offset", get_be32(p.bhs + 40), off);
		want = get_be32(p.bhs + 44);
		EXPECT_EQ(line, "R2T Desired Data Transfer Length", want,
			  MIN(MAX_BURST, total - off));
		pdu_free(&p);
		r2tsn++;
		if (want == 0 || want > total - off)
			return itt;
		/* One Data-Out sequence answering this R2T. */
		for (uint32_t end = off + want; off < end; datasn++) {
			uint32_t len = MIN(chunk, end - off);

			memset(b, 0, sizeof b);
			b[0] = ISCSI_OP_DATA_OUT;
			b[1] = off + len == end ? 0x80 : 0x00;
			put_lun(b + 8, lun);
			put_be32(b + 16, itt);
			put_be32(b + 20, ttt);
			put_be32(b + 28, in->exp_statsn);
			put_be32(b + 36, datasn);
			put_be32(b + 40, off);
			if (!send_pdu(in, b, data + off, len))
				return itt;
			off += len;
		}
	}
	if (!recv_pdu_at(in, &p, line))
		return itt;
	check_scsi_rsp_at(in, &p, itt, SAM_STAT_GOOD, 0, 0, in->cmdsn, 0, line);
	EXPECT_EQ(line, "SCSI Response DataSegmentLength", p.dsl, 0);
	pdu_free(&p);
	return itt;
}
#define WRITE10(in, lun, lba, nb, bs, data, chunk)                            \
	write10_at((in), (lun), (lba), (nb), (bs), (data), (chunk), __LINE__)

/* Receive the Data-In PDUs of a successful read: expect bytes in all, in
 * order, the last with F, S and status GOOD (phase collapse) and the
 * residual ou/resid.  The data lands in out. */
static void
data_in_at(struct ini *in, uint32_t itt, unsigned lun, uint32_t expect,
	   uint8_t ou, uint32_t resid, uint8_t *out, int line)
{
	uint32_t off = 0, datasn = 0;
	struct pdu p;
	bool last = false;

	while (!last) {
		const uint8_t *b = p.bhs;
		uint8_t flags;

		if (!recv_pdu_at(in, &p, line))
			return;
		flags = b[1];
		EXPECT_EQ(line, "Data-In opcode", b[0], ISCSI_OP_DATA_IN);
		if (b[0] != ISCSI_OP_DATA_IN) {
			pdu_free(&p);
			return;
		}
		last = flags & 0x01;	/* S: the status is here */
		EXPECT(line, "Data-In without A bit (ERL 0)", !(flags & 0x40));
		EXPECT_EQ(line, "Data-In LUN", get_be64(b + 8),
			  (uint64_t)lun << 48);
		EXPECT_EQ(line, "Data-In ITT", get_be32(b + 16), itt);
		EXPECT_EQ(line, "Data-In TTT", get_be32(b + 20), ISCSI_RSVD_TAG);
		EXPECT_EQ(line, "Data-In DataSN", get_be32(b + 36), datasn);
		EXPECT_EQ(line, "Data-In Buffer Offset", get_be32(b + 40), off);
		EXPECT(line, "Data-In DataSegmentLength", p.dsl > 0);
		EXPECT(line, "Data-In within the expected length",
		       off + p.dsl <= expect);
		if (p.dsl == 0 || off + p.dsl > expect) {
			pdu_free(&p);
			return;
		}
		/* A Data-In sequence ends at MaxBurstLength (§13.14). */
		if (last) {
			EXPECT_EQ(line, "Data-In last: flags", flags, 0x81 | ou);
			EXPECT_EQ(line, "Data-In last: status", b[3], SAM_STAT_GOOD);
			take_statsn(in, b, "Data-In StatSN", line);
			EXPECT_EQ(line, "Data-In last: residual",
				  get_be32(b + 44), resid);
			EXPECT_EQ(line, "Data-In: all the data", off + p.dsl,
				  expect);
		} else {
			EXPECT_EQ(line, "Data-In flags", flags,
				  (off + p.dsl) % MAX_BURST ? 0x00 : 0x80);
			EXPECT_EQ(line, "Data-In status (reserved)", b[3], 0);
			EXPECT_EQ(line, "Data-In StatSN (reserved)",
				  get_be32(b + 24), 0);
			EXPECT_EQ(line, "Data-In residual (reserved)",
				  get_be32(b + 44), 0);
		}
		check_window(in, b, in->cmdsn, "Data-In", line);
		memcpy(out + off, p.data, p.dsl);
		off += p.dsl;
		datasn++;
		pdu_free(&p);
	}
}
#define DATA_IN(in, itt, lun, expect, ou, resid, out)                         \
	data_in_at((in), (itt), (lun), (expect), (ou), (resid), (out), __LINE__)

/* ---- logout ---- */

static void
logout_at(struct ini *in, int line)
{
	uint8_t b[ISCSI_BHS_LEN], byte;
	uint32_t itt = in->next_itt++;
	struct pdu p;
	bool eof;

	memset(b, 0, sizeof b);
	b[0] = 0x40 | ISCSI_OP_LOGOUT_REQ;
	b[1] = 0x80 | 0;	/* F, reason 0: close the session */
	put_be32(b + 16, itt);
	put_be16(b + 20, 0);	/* CID */
	put_be32(b + 24, in->cmdsn);	/* immediate: not advanced */
	put_be32(b + 28, in->exp_statsn);
	if (!send_pdu(in, b, NULL, 0) || !recv_pdu_at(in, &p, line))
		return;
	EXPECT_EQ(line, "Logout Response opcode", p.bhs[0], ISCSI_OP_LOGOUT_RSP);
	EXPECT_EQ(line, "Logout Response flags", p.bhs[1], 0x80);
	EXPECT_EQ(line, "Logout Response response", p.bhs[2], 0);
	EXPECT_EQ(line, "Logout Response ITT", get_be32(p.bhs + 16), itt);
	EXPECT_EQ(line, "Logout Response DataSegmentLength", p.dsl, 0);
	take_statsn(in, p.bhs, "Logout Response StatSN", line);
	check_window(in, p.bhs, in->cmdsn, "Logout Response", line);
	pdu_free(&p);
	/* Then the target closes its end. */
	EXPECT_EQ(line, "bytes after the Logout Response",
		  recv_all(in->fd, &byte, 1, &eof), 0);
	EXPECT(line, "end of stream after logout", eof);
	EXPECT(line, "connection closed after logout",
	       in->conn->state == CONN_CLOSED);
}
#define LOGOUT(in) logout_at((in), __LINE__)

/* Close our end and check that the connection and its session are freed. */
#define CLOSE_AND_REAP(in)                                                    \
	do {                                                                  \
		ini_close(in);                                                \
		CHECK(iscsi_g.conns == NULL);                                 \
		CHECK_EQ_INT(iscsi_g.nconns, 0);                              \
		CHECK(iscsi_g.sessions == NULL);                              \
	} while (0)

static void
fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* ================= tests ================= */

TEST(login_one_pdu)
{
	struct ini *in = &I;

	REQUIRE(ini_open(in, 1));
	REQUIRE(LOGIN(in));
	/* The negotiated values are in force on the connection. */
	CHECK_EQ_UINT(in->conn->params.max_send_dsl, INI_MRDSL);
	CHECK_EQ_UINT(in->conn->params.max_recv_dsl, TGT_MRDSL);
	CHECK_EQ_UINT(in->conn->params.max_burst_length, MAX_BURST);
	CHECK_EQ_UINT(in->conn->params.first_burst_length, FIRST_BURST);
	CHECK(in->conn->params.initial_r2t);
	CHECK(!in->conn->params.immediate_data);
	CHECK(!in->conn->params.header_digest);
	REQUIRE(in->conn->sess != NULL);
	CHECK_EQ_UINT(in->conn->sess->tsih, in->tsih);
	CHECK_EQ_STR(in->conn->sess->initiator, INITIATOR_NAME);
	CHECK(quiet(in));
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

/* §11.12.2: a login request's text may continue over PDUs with C set; the
 * target answers each but the last with an empty response. */
static void
login_split(struct ini *in, const uint8_t *text, uint32_t len, uint32_t cut)
{
	uint8_t b[ISCSI_BHS_LEN];
	uint32_t itt = in->next_itt++;
	struct pdu p;

	login_bhs(in, b, 0x40 | 0x04, itt);	/* C, CSG 1, T 0 */
	REQUIRE(send_pdu(in, b, text, cut));
	REQUIRE(RECV_PDU(in, &p));
	CHECK_EQ_HEX(p.bhs[0], ISCSI_OP_LOGIN_RSP);
	CHECK_EQ_HEX(p.bhs[1], 0x04);		/* no T, no C, CSG 1 */
	CHECK_EQ_HEX(p.bhs[36], 0);
	CHECK_EQ_HEX(p.bhs[37], 0);
	CHECK_EQ_INT(p.dsl, 0);
	CHECK_MEM(p.bhs + 8, in->isid, 6);
	CHECK_EQ_UINT(get_be16(p.bhs + 14), 0);	/* no session yet */
	CHECK_EQ_HEX(get_be32(p.bhs + 16), itt);
	CHECK_EQ_UINT(get_be32(p.bhs + 28), LOGIN_CMDSN);
	take_statsn(in, p.bhs, "continuation response StatSN", __LINE__);
	pdu_free(&p);
	CHECK(in->conn->state == CONN_LOGIN);
	CHECK(in->conn->sess == NULL);

	itt = in->next_itt++;
	login_bhs(in, b, 0x87, itt);
	REQUIRE(send_pdu(in, b, text + cut, len - cut));
	REQUIRE(RECV_PDU(in, &p));
	check_login_final(in, &p, itt, __LINE__);
	pdu_free(&p);
	CHECK(in->conn->state == CONN_FFP);
}

TEST(login_continuation)
{
	struct ini *in = &I;
	uint8_t text[1024];
	uint32_t half = keys_text(text, sizeof text, 0, 4);
	uint32_t len = half + keys_text(text + half, sizeof text - half, 4,
					ARRAY_SIZE(login_keys));

	REQUIRE(ini_open(in, 2));
	login_split(in, text, len, half);	/* at a key boundary */
	CHECK(quiet(in));
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

TEST(login_continuation_mid_key)
{
	struct ini *in = &I;
	uint8_t text[1024];
	uint32_t len = keys_text(text, sizeof text, 0, ARRAY_SIZE(login_keys));
	/* Inside "TargetName=iqn...": key=value pairs may span PDUs. */
	uint32_t cut = (uint32_t)strlen(login_keys[0]) + 1 + 7;

	REQUIRE(ini_open(in, 3));
	login_split(in, text, len, cut);
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

static void
send_nop_out(struct ini *in, uint32_t itt, const void *data, uint32_t dsl)
{
	uint8_t b[ISCSI_BHS_LEN];

	memset(b, 0, sizeof b);
	b[0] = 0x40 | ISCSI_OP_NOP_OUT;		/* immediate */
	b[1] = 0x80;
	put_lun(b + 8, 0);
	put_be32(b + 16, itt);
	put_be32(b + 20, ISCSI_RSVD_TAG);
	put_be32(b + 24, in->cmdsn);
	put_be32(b + 28, in->exp_statsn);
	send_pdu(in, b, data, dsl);
}

/* Check a NOP-In answering ITT itt with ping data. */
static void
check_nop_in_at(struct ini *in, const uint8_t *b, uint32_t itt, uint32_t dsl,
		uint32_t exp_cmdsn, int line)
{
	EXPECT_EQ(line, "NOP-In opcode", b[0], ISCSI_OP_NOP_IN);
	EXPECT_EQ(line, "NOP-In flags", b[1], 0x80);
	EXPECT_EQ(line, "NOP-In TotalAHSLength", b[4], 0);
	EXPECT_EQ(line, "NOP-In DataSegmentLength", get_dsl(b), dsl);
	EXPECT_EQ(line, "NOP-In LUN", get_be64(b + 8), 0);
	EXPECT_EQ(line, "NOP-In ITT", get_be32(b + 16), itt);
	EXPECT_EQ(line, "NOP-In TTT", get_be32(b + 20), ISCSI_RSVD_TAG);
	take_statsn(in, b, "NOP-In StatSN", line);
	check_window(in, b, exp_cmdsn, "NOP-In", line);
}

TEST(nop_out_ping)
{
	struct ini *in = &I;
	static const uint8_t ping[10] = { '0', '1', '2', '3', '4',
					  '5', '6', '7', '8', '9' };
	uint8_t wire[ISCSI_BHS_LEN + 12];
	uint32_t statsn;
	bool eof;

	REQUIRE(ini_open(in, 4));
	REQUIRE(LOGIN(in));

	send_nop_out(in, 0x77, ping, sizeof ping);
	/* 48 + 10 + 2 bytes of padding, and nothing more. */
	REQUIRE(recv_all(in->fd, wire, sizeof wire, &eof) == sizeof wire);
	check_nop_in_at(in, wire, 0x77, 10, in->cmdsn, __LINE__);
	CHECK_MEM(wire + ISCSI_BHS_LEN, ping, 10);
	CHECK_FILL(wire + ISCSI_BHS_LEN + 10, 0, 2);
	CHECK(quiet(in));

	/* ITT 0xffffffff: a ping that wants no answer, StatSN not used. */
	statsn = in->exp_statsn;
	send_nop_out(in, ISCSI_RSVD_TAG, ping, 4);
	CHECK(quiet(in));
	/* No data: a NOP-In with no data segment and no padding. */
	send_nop_out(in, 0x78, NULL, 0);
	REQUIRE(recv_all(in->fd, wire, ISCSI_BHS_LEN, &eof) == ISCSI_BHS_LEN);
	CHECK_EQ_UINT(get_be32(wire + 24), statsn);
	check_nop_in_at(in, wire, 0x78, 0, in->cmdsn, __LINE__);
	CHECK(quiet(in));

	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

/* The receive state machine resumes in every stage: a NOP-Out arriving in
 * pieces (inside the header, at its end, inside the data, in the padding)
 * with the target running between them. */
TEST(rx_partial_reads)
{
	struct ini *in = &I;
	static const uint8_t ping[10] = { 'a', 'b', 'c', 'd', 'e',
					  'f', 'g', 'h', 'i', 'j' };
	static const size_t cuts[] = { 1, 47, 48, 53, 58, 59, 60 };
	uint8_t b[ISCSI_BHS_LEN], buf[60];
	size_t prev = 0;
	struct pdu p;

	REQUIRE(ini_open(in, 5));
	REQUIRE(LOGIN(in));
	memset(b, 0, sizeof b);
	b[0] = 0x40 | ISCSI_OP_NOP_OUT;
	b[1] = 0x80;
	put_be32(b + 16, 0x79);
	put_be32(b + 20, ISCSI_RSVD_TAG);
	put_be32(b + 24, in->cmdsn);
	put_be32(b + 28, in->exp_statsn);
	set_dsl(b, 10);
	memset(buf, 0, sizeof buf);
	memcpy(buf, b, ISCSI_BHS_LEN);
	memcpy(buf + ISCSI_BHS_LEN, ping, 10);
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		REQUIRE(send_all(in->fd, buf + prev, cuts[i] - prev));
		prev = cuts[i];
		if (i + 1 < ARRAY_SIZE(cuts))
			CHECK_MSG(quiet(in), "answer before byte %zu", prev);
	}
	REQUIRE(RECV_PDU(in, &p));
	check_nop_in_at(in, p.bhs, 0x79, 10, in->cmdsn, __LINE__);
	CHECK_MEM(p.data, ping, 10);
	pdu_free(&p);

	/* Two PDUs in one write: both are read and answered, in order. */
	{
		uint8_t two[2 * ISCSI_BHS_LEN], cdb[16] = { 0 };
		uint32_t tur_itt = in->next_itt++;

		memcpy(two, b, ISCSI_BHS_LEN);
		set_dsl(two, 0);
		put_be32(two + 16, 0x7a);
		memset(two + ISCSI_BHS_LEN, 0, ISCSI_BHS_LEN);
		two[ISCSI_BHS_LEN] = ISCSI_OP_SCSI_CMD;
		two[ISCSI_BHS_LEN + 1] = SC_F | SC_SIMPLE;
		put_be32(two + ISCSI_BHS_LEN + 16, tur_itt);
		put_be32(two + ISCSI_BHS_LEN + 24, in->cmdsn++);
		put_be32(two + ISCSI_BHS_LEN + 28, in->exp_statsn);
		memcpy(two + ISCSI_BHS_LEN + 32, cdb, 16);	/* TUR */
		REQUIRE(send_all(in->fd, two, sizeof two));
		REQUIRE(RECV_PDU(in, &p));
		/* The NOP-In was built before the TUR was read: ExpCmdSN
		 * does not count the TUR yet. */
		check_nop_in_at(in, p.bhs, 0x7a, 0, in->cmdsn - 1, __LINE__);
		pdu_free(&p);
		EXPECT_RSP(in, tur_itt, SAM_STAT_GOOD, in->cmdsn);
	}
	CHECK(quiet(in));
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

TEST(write_then_read_8k)
{
	struct ini *in = &I;
	uint8_t *pat = malloc(8192), *got = malloc(8192), cdb[16];
	uint32_t itt;

	REQUIRE(pat && got);
	fill_pattern(pat, 8192, 1);
	if (!ini_open(in, 6) || !LOGIN(in))
		goto out;

	/* 16 blocks of 512 bytes: one R2T for all 8192 bytes, answered in
	 * two Data-Out PDUs (DataSN 0, 1; F on the second). */
	WRITE10(in, 0, 100, 16, 512, pat, 4096);
	CHECK_EQ_INT(in->conn->ntasks, 0);

	memset(got, 0xee, 8192);
	cdb10(cdb, 0x28, 100, 16);
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, 8192, cdb);
	DATA_IN(in, itt, 0, 8192, 0, 0, got);
	CHECK_MEM(got, pat, 8192);
	/* Phase collapse: no separate SCSI Response. */
	CHECK(quiet(in));

	/* A second write/read gets a fresh R2T, StatSN going on by 1. */
	fill_pattern(pat, 8192, 2);
	WRITE10(in, 0, 100, 16, 512, pat, 8192);
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, 8192, cdb);
	DATA_IN(in, itt, 0, 8192, 0, 0, got);
	CHECK_MEM(got, pat, 8192);
	CHECK(quiet(in));
	LOGOUT(in);
out:
	CLOSE_AND_REAP(in);
	free(pat);
	free(got);
}

/* 384 KiB: two R2Ts (MaxBurstLength 256 KiB, one outstanding), Data-Out
 * of 64 KiB; the read back comes in six Data-In PDUs of 64 KiB (our
 * MaxRecvDataSegmentLength) with F at the 256 KiB burst end.  Small
 * socket buffers make both directions go in pieces. */
TEST(write_then_read_large)
{
	struct ini *in = &I;
	const uint32_t len = 384 * 1024;
	uint8_t *pat = malloc(len), *got = malloc(len), cdb[16];
	uint32_t itt;

	REQUIRE(pat && got);
	fill_pattern(pat, len, 3);
	if (!ini_open_buf(in, 7, 16384) || !LOGIN(in))
		goto out;
	WRITE10(in, 0, 0, (uint16_t)(len / 512), 512, pat, INI_MRDSL);

	memset(got, 0xee, len);
	cdb10(cdb, 0x28, 0, (uint16_t)(len / 512));
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, len, cdb);
	DATA_IN(in, itt, 0, len, 0, 0, got);
	CHECK_MEM(got, pat, len);
	CHECK(quiet(in));
	LOGOUT(in);
out:
	CLOSE_AND_REAP(in);
	free(pat);
	free(got);
}

/* LUN 1 has 4096-byte blocks: the LUN field is routed and echoed. */
TEST(lun1_4k_blocks)
{
	struct ini *in = &I;
	uint8_t *pat = malloc(16384), *got = malloc(16384), cdb[16];
	uint32_t itt;

	REQUIRE(pat && got);
	fill_pattern(pat, 16384, 4);
	if (!ini_open(in, 8) || !LOGIN(in))
		goto out;
	WRITE10(in, 1, 200, 4, 4096, pat, 8192);
	memset(got, 0xee, 16384);
	cdb10(cdb, 0x28, 200, 4);
	itt = send_scsi(in, 1, SC_F | SC_R | SC_SIMPLE, 16384, cdb);
	DATA_IN(in, itt, 1, 16384, 0, 0, got);
	CHECK_MEM(got, pat, 16384);
	/* The same bytes of LUN 0 (no other test writes there) are not. */
	cdb10(cdb, 0x28, 1600, 32);
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, 16384, cdb);
	DATA_IN(in, itt, 0, 16384, 0, 0, got);
	CHECK_FILL(got, 0, 16384);
	CHECK(quiet(in));
	LOGOUT(in);
out:
	CLOSE_AND_REAP(in);
	free(pat);
	free(got);
}

/* §11.4.5: residuals against what the CDB asks to move. */
TEST(read_residuals)
{
	struct ini *in = &I;
	uint8_t *pat = malloc(16384), *got = malloc(16384), cdb[16];
	uint32_t itt;

	REQUIRE(pat && got);
	fill_pattern(pat, 8192, 5);
	if (!ini_open(in, 9) || !LOGIN(in))
		goto out;
	WRITE10(in, 0, 200, 16, 512, pat, 8192);
	cdb10(cdb, 0x28, 200, 16);

	/* EDTL 4096 < 8192: overflow, O bit, residual 4096, 4096 bytes. */
	memset(got, 0xee, 16384);
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, 4096, cdb);
	DATA_IN(in, itt, 0, 4096, 0x04, 4096, got);
	CHECK_MEM(got, pat, 4096);
	CHECK(quiet(in));

	/* EDTL 16384 > 8192: underflow, U bit, residual 8192, 8192 bytes. */
	memset(got, 0xee, 16384);
	itt = send_scsi(in, 0, SC_F | SC_R | SC_SIMPLE, 16384, cdb);
	DATA_IN(in, itt, 0, 8192, 0x02, 8192, got);
	CHECK_MEM(got, pat, 8192);
	CHECK(quiet(in));
	LOGOUT(in);
out:
	CLOSE_AND_REAP(in);
	free(pat);
	free(got);
}

TEST(unknown_opcode_sense)
{
	struct ini *in = &I;
	uint8_t cdb[16] = { 0xc3 };
	uint32_t itt;
	struct pdu p;

	REQUIRE(ini_open(in, 10));
	REQUIRE(LOGIN(in));
	itt = send_scsi(in, 0, SC_F | SC_SIMPLE, 0, cdb);
	REQUIRE(RECV_PDU(in, &p));
	check_scsi_rsp_at(in, &p, itt, SAM_STAT_CHECK_CONDITION, 0, 0,
			  in->cmdsn, 0, __LINE__);
	/* SenseLength, then fixed-format sense: ILLEGAL REQUEST, INVALID
	 * COMMAND OPERATION CODE. */
	CHECK_EQ_INT(p.dsl, 2 + 18);
	if (p.dsl == 20) {
		CHECK_EQ_UINT(get_be16(p.data), 18);
		CHECK_EQ_HEX(p.data[2] & 0x7f, 0x70);
		CHECK_EQ_HEX(p.data[2 + 2] & 0x0f, SK_ILLEGAL_REQUEST);
		CHECK_EQ_UINT(p.data[2 + 7], 10);	/* additional length */
		CHECK_EQ_HEX(p.data[2 + 12], 0x20);
		CHECK_EQ_HEX(p.data[2 + 13], 0x00);
	}
	pdu_free(&p);
	/* The session goes on. */
	cdb[0] = 0x00;	/* TEST UNIT READY */
	itt = send_scsi(in, 0, SC_F | SC_SIMPLE, 0, cdb);
	EXPECT_RSP(in, itt, SAM_STAT_GOOD, in->cmdsn);
	CHECK(quiet(in));
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

/* §4.2.2.1: a command ahead of ExpCmdSN waits for the missing one; both
 * are then answered in CmdSN order. */
TEST(cmdsn_gap)
{
	struct ini *in = &I;
	uint8_t cdb[16] = { 0 };	/* TEST UNIT READY */
	uint32_t n, late_itt, first_itt;

	REQUIRE(ini_open(in, 11));
	REQUIRE(LOGIN(in));
	n = in->cmdsn;
	late_itt = send_scsi_sn(in, 0, SC_F | SC_SIMPLE, 0, cdb, n + 1);
	CHECK_MSG(quiet(in), "a command after a CmdSN gap was answered");
	CHECK_EQ_UINT(in->conn->sess->exp_cmd_sn, n);
	CHECK_EQ_UINT(in->conn->sess->npending, 1);
	first_itt = send_scsi_sn(in, 0, SC_F | SC_SIMPLE, 0, cdb, n);
	in->cmdsn = n + 2;
	EXPECT_RSP(in, first_itt, SAM_STAT_GOOD, n + 1);
	EXPECT_RSP(in, late_itt, SAM_STAT_GOOD, n + 2);
	CHECK_EQ_UINT(in->conn->sess->npending, 0);
	CHECK(quiet(in));
	LOGOUT(in);
	CLOSE_AND_REAP(in);
}

TEST(logout_closes)
{
	struct ini *in = &I;
	uint8_t cdb[16] = { 0 };
	uint32_t itt;

	REQUIRE(ini_open(in, 12));
	REQUIRE(LOGIN(in));
	itt = send_scsi(in, 0, SC_F | SC_SIMPLE, 0, cdb);
	EXPECT_RSP(in, itt, SAM_STAT_GOOD, in->cmdsn);
	LOGOUT(in);
	/* Closed but not freed until the tick reaps it. */
	CHECK_EQ_INT(iscsi_g.nconns, 1);
	conn_tick(NULL);
	CHECK_EQ_INT(iscsi_g.nconns, 0);
	CHECK(iscsi_g.conns == NULL);
	CHECK(iscsi_g.sessions == NULL);
	in->conn = NULL;
	CLOSE_AND_REAP(in);
}

int
main(int argc, char **argv)
{
	char err[512];
	int r;

	/* As iscsi-gw's main: a peer gone is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* A target stuck in a loop fails the test instead of hanging it. */
	alarm(600);
	conf = conf_load_string(map_json, NULL, "test-pdu", err, sizeof err);
	if (!conf) {
		fprintf(stderr, "conf_load_string: %s\n", err);
		return 2;
	}
	lmap = lunmap_new(conf);
	evl = evloop_new();
	pump_timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	pump_timer.cb = pump_timer_cb;
	if (!lmap || !lunmap_find_target(lmap, TARGET_NAME) || !evl ||
	    pump_timer.fd < 0 || evloop_add(evl, &pump_timer, EPOLLIN) < 0 ||
	    io_pool_start(2) < 0) {
		fprintf(stderr, "setup failed\n");
		return 2;
	}
	/* As iscsi_start, without listening. */
	iscsi_g.conf = conf;
	iscsi_g.map = lmap;
	iscsi_g.loop = evl;
	evloop_set_after(evl, after_batch, NULL);
	iscsi_params_offer(&iscsi_g.offer, conf);
	iscsi_g.next_tsih = 0x1200;

	r = harness_run(argc, argv);

	ini_close(&I);
	if (iscsi_g.conns) {
		fprintf(stderr, "connections left at exit\n");
		r = 1;
	}
	io_pool_stop();
	evloop_del(evl, &pump_timer);
	close(pump_timer.fd);
	evloop_free(evl);
	lunmap_free(lmap);
	conf_free(conf);
	return r;
}
