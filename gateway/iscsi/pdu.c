/* pdu.c: building outgoing PDUs and the transmit queue.  Each response is
 * gathered (header, data, padding) into one writev with its neighbours, so
 * a read's Data-In PDUs leave in as few system calls as the socket allows.
 * Loop thread only.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <endian.h>

#include "iscsi.h"
#include "log.h"
#include "util/util.h"
#include "util/crc32c.h"

static const uint8_t zero_pad[4];

void
bhs_set_dsl(uint8_t *b, uint32_t len)
{
	b[5] = len >> 16;
	b[6] = len >> 8;
	b[7] = len;
}

struct tx_pdu *
tx_pdu_new(uint8_t opcode)
{
	struct tx_pdu *p = calloc(1, sizeof *p);

	if (p)
		p->bhs[0] = opcode;
	return p;
}

void
tx_pdu_set_data(struct tx_pdu *p, const void *data, uint32_t len, bool copy)
{
	if (copy && len) {
		p->owned = malloc(len);
		if (!p->owned) {
			len = 0;
		} else {
			memcpy(p->owned, data, len);
			data = p->owned;
		}
	}
	p->data = data;
	p->data_len = len;
	bhs_set_dsl(p->bhs, len);
}

void
conn_fill_sn(struct iscsi_conn *c, uint8_t *bhs, bool advance)
{
	put_be32(bhs + 24, c->stat_sn);
	if (advance)
		c->stat_sn++;
	if (c->sess) {
		put_be32(bhs + 28, c->sess->exp_cmd_sn);
		put_be32(bhs + 32, c->sess->max_cmd_sn);
	}
}

static void
tx_pdu_free(struct tx_pdu *p)
{
	if (p->task)
		task_put(p->task);
	free(p->owned);
	free(p);
}

void
conn_queue(struct iscsi_conn *c, struct tx_pdu *p)
{
	if (c->state == CONN_CLOSED) {
		tx_pdu_free(p);
		return;
	}
	if (p->task)
		p->task->refs++;
	/* Digests apply from the first PDU after the last login response
	 * (§13.1): only in full feature phase. */
	if ((c->state == CONN_FFP || c->state == CONN_LOGOUT) &&
	    c->params.header_digest) {
		uint32_t d = crc32c_value(p->bhs, ISCSI_BHS_LEN);
		memcpy(p->hdig, &(uint32_t){ htole32(d) }, 4);
		p->hdig_len = 4;
	}
	if ((c->state == CONN_FFP || c->state == CONN_LOGOUT) &&
	    c->params.data_digest && p->data_len) {
		static const uint8_t zeros[4];
		uint32_t pad = (4 - (p->data_len & 3)) & 3;
		uint32_t d = crc32c_update(~0u, p->data, p->data_len);
		d = ~crc32c_update(d, zeros, pad);
		memcpy(p->ddig, &(uint32_t){ htole32(d) }, 4);
		p->ddig_len = 4;
	}
	if (log_debug_on[LOG_AREA_ISCSI_PDU])
		log_debug_msg("tx opcode 0x%02x itt 0x%08x dsl %u", p->bhs[0] & 0x3f,
			      get_be32(p->bhs + 16), p->data_len);
	p->next = NULL;
	if (c->tx_tail)
		c->tx_tail->next = p;
	else
		c->tx_head = p;
	c->tx_tail = p;
	c->tx_bytes += ISCSI_BHS_LEN + p->data_len;
}

/* Bytes of p on the wire: header, digest, data, padding, digest. */
static size_t
wire_len(const struct tx_pdu *p)
{
	return ISCSI_BHS_LEN + p->hdig_len + p->data_len +
	       ((4 - (p->data_len & 3)) & 3) + p->ddig_len;
}

/* Bytes of p before its data: header and header digest. */
static size_t
head_len(const struct tx_pdu *p)
{
	return ISCSI_BHS_LEN + p->hdig_len;
}

/* Add the parts of p not yet sent to iov; returns the new count.  Sets
 * *stop when p's data comes from a file and is next: the caller sends
 * what was gathered, then the data with sendfile. */
static int
gather(const struct tx_pdu *p, struct iovec *iov, int n, bool *stop)
{
	const struct {
		const void *base;
		size_t len;
	} part[5] = {
		{ p->bhs, ISCSI_BHS_LEN },
		{ p->hdig, p->hdig_len },
		{ p->data, p->data_len },
		{ zero_pad, (4 - (p->data_len & 3)) & 3 },
		{ p->ddig, p->ddig_len },
	};
	size_t off = p->sent;

	for (int i = 0; i < 5; i++) {
		if (off >= part[i].len) {
			off -= part[i].len;
			continue;
		}
		if (i == 2 && p->from_file) {
			*stop = true;
			return n;
		}
		iov[n].iov_base = (char *)part[i].base + off;
		iov[n++].iov_len = part[i].len - off;
		off = 0;
	}
	return n;
}

void
conn_flush(struct iscsi_conn *c)
{
	while (c->tx_head && c->state != CONN_CLOSED) {
		struct tx_pdu *h = c->tx_head;
		struct iovec iov[64];
		bool stop = false;
		int n = 0;
		ssize_t r;

		if (h->from_file && h->sent >= head_len(h) &&
		    h->sent < head_len(h) + h->data_len) {
			/* Its header is out: the data, from the page cache
			 * to the socket without a copy.  Partial on a full
			 * socket, like writev. */
			uint32_t done = h->sent - head_len(h);

			r = scsi_cmd_send_data(&h->task->cmd, c->ev.fd,
					       h->file_off + done,
					       h->data_len - done);
			if (r == 0) {
				conn_close(c, "backing file shorter than read");
				return;
			}
		} else {
			struct msghdr m = { .msg_iov = iov };

			/* Gather up to 12 PDUs (5 vectors each), up to the
			 * data of one sent from a file: its header leaves
			 * with MSG_MORE, to share a segment with the data. */
			for (struct tx_pdu *p = h; p && !stop && n + 5 <= 64;
			     p = p->next)
				n = gather(p, iov, n, &stop);
			m.msg_iovlen = n;
			r = sendmsg(c->ev.fd, &m, stop ? MSG_MORE : 0);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c, "send failed");
			return;
		}
		/* Retire what was sent. */
		while (r > 0 && c->tx_head) {
			struct tx_pdu *p = c->tx_head;
			size_t left = wire_len(p) - p->sent;

			if ((size_t)r < left) {
				p->sent += r;
				r = 0;
				break;
			}
			r -= left;
			c->tx_head = p->next;
			if (!c->tx_head)
				c->tx_tail = NULL;
			c->tx_bytes -= ISCSI_BHS_LEN + p->data_len;
			tx_pdu_free(p);
		}
	}
	if (c->state == CONN_CLOSED)
		return;
	if (!c->tx_head && c->state == CONN_LOGOUT) {
		conn_close(c, "logged out");
		return;
	}
	conn_update_events(c);
}

void
conn_send_reject(struct iscsi_conn *c, uint8_t reason, const uint8_t *bhs)
{
	struct tx_pdu *p = tx_pdu_new(ISCSI_OP_REJECT);

	if (!p)
		return;
	log_debug(LOG_AREA_ISCSI_PDU, "reject opcode 0x%02x reason 0x%02x",
		  bhs[0] & 0x3f, reason);
	p->bhs[1] = 0x80;
	p->bhs[2] = reason;
	put_be32(p->bhs + 16, ISCSI_RSVD_TAG);
	conn_fill_sn(c, p->bhs, true);
	/* The data segment is the rejected PDU's header (§11.17). */
	tx_pdu_set_data(p, bhs, ISCSI_BHS_LEN, true);
	conn_queue(c, p);
}
