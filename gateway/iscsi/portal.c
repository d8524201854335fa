/* portal.c: listening sockets and the start and stop of the iSCSI layer.
 * Accepting is cheap on purpose: a refused connection costs one accept
 * and one close.  Main thread, which is the network loop's thread.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <time.h>

#include "iscsi.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

struct portal {
	struct ev_handler ev;
	char *spec;
};

static struct portal *portals;
static size_t nportals;

static void
addr_str(const struct sockaddr *sa, char *host, size_t hsz, unsigned *port)
{
	if (getnameinfo(sa, sa->sa_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
			host, hsz, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, hsz, "?");
	*port = ntohs(sa->sa_family == AF_INET6 ?
		      ((const struct sockaddr_in6 *)sa)->sin6_port :
		      ((const struct sockaddr_in *)sa)->sin_port);
}

static void
portal_accept(struct ev_handler *h, uint32_t events)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer, local;
		socklen_t plen = sizeof peer, llen = sizeof local;
		char phost[64], lhost[64], pstr[96];
		unsigned pport, lport;
		int fd = accept4(h->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %m");
			return;
		}
		getsockname(fd, (struct sockaddr *)&local, &llen);
		addr_str((struct sockaddr *)&peer, phost, sizeof phost, &pport);
		addr_str((struct sockaddr *)&local, lhost, sizeof lhost, &lport);
		snprintf(pstr, sizeof pstr, strchr(phost, ':') ? "[%s]:%u" :
			 "%s:%u", phost, pport);
		conn_accept(fd, pstr, lhost, lport);
	}
}

static int
portal_listen(struct portal *p)
{
	char host[256], portstr[16];
	unsigned port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	int fd, one = 1, r;

	if (conf_parse_portal(p->spec, host, sizeof host, &port) < 0)
		return -EINVAL;
	snprintf(portstr, sizeof portstr, "%u", port);
	r = getaddrinfo(!strcmp(host, "*") ? NULL : host, portstr, &hints, &res);
	if (r) {
		log_error("portal %s: %s", p->spec, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("portal %s: socket: %m", p->spec);
		freeaddrinfo(res);
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		log_error("portal %s: %s", p->spec, strerror(e));
		close(fd);
		freeaddrinfo(res);
		return -e;
	}
	freeaddrinfo(res);
	p->ev.fd = fd;
	p->ev.cb = portal_accept;
	evloop_add(iscsi_g.loop, &p->ev, EPOLLIN);
	log_info("listening on %s", p->spec);
	return 0;
}

int
iscsi_start(const struct conf *c, struct lunmap *m, struct evloop *loop)
{
	iscsi_g.conf = c;
	iscsi_g.map = m;
	iscsi_g.loop = loop;
	scsi_abort_hook = tmf_pr_abort;
	iscsi_params_offer(&iscsi_g.offer, c);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	iscsi_g.next_tsih = (uint16_t)rand();
	portals = calloc(c->nportals, sizeof *portals);
	if (!portals)
		return -ENOMEM;
	for (size_t i = 0; i < c->nportals; i++) {
		portals[i].spec = c->portals[i];
		portals[i].ev.fd = -1;
		nportals++;
		if (portal_listen(&portals[i]) < 0) {
			iscsi_stop_listening();
			return -1;
		}
	}
	evloop_set_tick(loop, conn_tick, NULL);
	evloop_set_after(loop, conn_after_batch, NULL);
	return 0;
}

void
iscsi_stop_listening(void)
{
	for (size_t i = 0; i < nportals; i++)
		if (portals[i].ev.fd >= 0) {
			evloop_del(iscsi_g.loop, &portals[i].ev);
			close(portals[i].ev.fd);
			portals[i].ev.fd = -1;
		}
	free(portals);
	portals = NULL;
	nportals = 0;
}

/* Shutdown (SIGTERM/SIGINT): stop accepting, stop reading new commands,
 * let what is in flight finish and its responses go out, then close. */
static time_t shutdown_deadline;

void
iscsi_begin_shutdown(unsigned timeout)
{
	iscsi_g.shutting_down = true;
	shutdown_deadline = time(NULL) + timeout;
	iscsi_stop_listening();
	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next) {
		if (c->state == CONN_CLOSED)
			continue;
		if (c->state == CONN_LOGIN) {
			conn_close(c, "shutting down");
			continue;
		}
		c->draining = true;
		conn_update_events(c);
	}
}

/* Called from the tick and after completions: true when all is done. */
bool
iscsi_shutdown_poll(void)
{
	bool late = time(NULL) >= shutdown_deadline;

	for (struct iscsi_conn *c = iscsi_g.conns; c; c = c->next) {
		if (c->state == CONN_CLOSED)
			continue;
		if (late || (c->ntasks == 0 && !c->tx_head))
			conn_close(c, late ? "shutdown timeout" : "shutting down");
	}
	conn_reap();
	return iscsi_g.conns == NULL;
}
