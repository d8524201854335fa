/* control.c: see control.h.  Two listeners on the network loop and one
 * small client type for both; control-render.c builds the answers.
 *
 * A client lives through three states, each bounded:
 *
 *   READ --request complete--> WRITE --all sent, SHUT_WR--> LINGER --EOF--> gone
 *     \__ over size: an error answer     \__ CONTROL_TIMEOUT from accept: gone
 *
 * LINGER reads and drops what the peer still sends until it closes: closing
 * with unread bytes would reset the connection and could cost the peer the
 * end of its answer.  Answers are built whole before the first byte goes
 * out (a status of many sessions is a few hundred KiB at most).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "fuse/fuse-view.h"
#include "reload.h"
#include "lunmap.h"
#include "iscsi/iscsi.h"
#include "conf/conf.h"
#include "metrics.h"
#include "log.h"
#include "io/io.h"
#include "util/util.h"

#define CONTROL_MAX_CLIENTS 64
#define CONTROL_LINE_MAX 256		/* a control request line */
#define CONTROL_HTTP_MAX 8192		/* an HTTP request head */

enum client_kind { CLIENT_CONTROL, CLIENT_HTTP };
enum client_state { CLIENT_READ, CLIENT_WRITE, CLIENT_LINGER };

struct listener {
	struct ev_handler ev;
	enum client_kind kind;
	const char *what;		/* for messages */
};

struct client {
	struct ev_handler ev;
	struct client *next, *prev;
	enum client_kind kind;
	enum client_state state;
	time_t started;			/* monotonic seconds */
	char in[CONTROL_HTTP_MAX + 1];
	size_t in_len;
	struct sbuf out;
	size_t out_off;
};

/* Loop thread only, once control_start has run. */
static struct {
	const struct conf *conf;
	struct evloop *loop;
	struct listener unix_l, http_l;
	struct client *clients;
	unsigned nclients;
	bool full_logged;
	char *sock_path;		/* created by us: removed at stop */
	dev_t sock_dev;
	ino_t sock_ino;
	time_t started;
} ctl = {
	.unix_l = { .ev.fd = -1, .kind = CLIENT_CONTROL, .what = "control_socket" },
	.http_l = { .ev.fd = -1, .kind = CLIENT_HTTP, .what = "metrics" },
};

static time_t
mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- requests ---- */


static void
control_request(struct client *cl)
{
	char *line = cl->in, *end = memchr(cl->in, '\n', cl->in_len);
	char shown[300];
	size_t len = end ? (size_t)(end - line) : cl->in_len;

	if (len && line[len - 1] == '\r')
		len--;
	if (len == 6 && !memcmp(line, "status", 6)) {
		control_render_status(&cl->out, ctl.conf,
				      mono_sec() - ctl.started);
	} else if (len > 7 && !memcmp(line, "rescan ", 7)) {
		/* "rescan TARGET LUN": the LUN's backend changed size
		 * (lunmap.c). */
		char args[CONTROL_LINE_MAX + 1];
		char *ans;

		snprintf(args, sizeof args, "%.*s", (int)(len - 7), line + 7);
		ans = lunmap_rescan_request(iscsi_g.map, args);
		if (ans)
			sb_printf(&cl->out, "%s\n", ans);
		else
			control_render_error(&cl->out, "out of memory");
		free(ans);
	} else if (len == 6 && !memcmp(line, "reload", 6)) {
		/* Re-read the map, as SIGHUP does (reload.c). */
		char *ans = reload_run("control socket");

		if (ans)
			sb_printf(&cl->out, "%s\n", ans);
		else
			control_render_error(&cl->out, "out of memory");
		free(ans);
	} else if (len > 6 && !memcmp(line, "mount ", 6)) {
		/* "mount DIR": the FUSE view on DIR (iscsi-gw mount). */
		char dir[CONTROL_LINE_MAX + 1], msg[600];
		int r;

		snprintf(dir, sizeof dir, "%.*s", (int)(len - 6), line + 6);
		r = fuse_view_mount(iscsi_g.conf, iscsi_g.map, dir, msg,
				    sizeof msg);
		control_render_result(&cl->out, r == 0, msg);
	} else if (len == 7 && !memcmp(line, "metrics", 7)) {
		control_render_metrics(&cl->out, mono_sec() - ctl.started);
	} else if (!end && cl->in_len >= CONTROL_LINE_MAX) {
		control_render_error(&cl->out, "request longer than %d bytes",
				     CONTROL_LINE_MAX);
	} else {
		log_escape(shown, sizeof shown, line, MIN(len, 64u));
		control_render_error(&cl->out,
				     "unknown request '%s' (known: status, metrics, reload, rescan)",
				     shown);
	}
}

static void
http_answer(struct sbuf *b, const char *status, const char *type,
	    const struct sbuf *body, bool head, const char *extra)
{
	sb_printf(b, "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
		  "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
		  status, type, body->len, extra);
	if (!head)
		sb_append(b, body->buf, body->len);
}

static void
http_request(struct client *cl)
{
	struct sbuf body = { 0 };
	char method[16], path[512];
	bool head;

	cl->in[cl->in_len] = '\0';
	if (!memmem(cl->in, cl->in_len, "\r\n\r\n", 4) &&
	    !memmem(cl->in, cl->in_len, "\n\n", 2)) {
		sb_printf(&body, "request head over %d bytes\n",
			  CONTROL_HTTP_MAX);
		http_answer(&cl->out, "431 Request Header Fields Too Large",
			    "text/plain; charset=utf-8", &body, false, "");
		goto out;
	}
	if (sscanf(cl->in, "%15s %511s", method, path) != 2) {
		sb_printf(&body, "bad request\n");
		http_answer(&cl->out, "400 Bad Request",
			    "text/plain; charset=utf-8", &body, false, "");
		goto out;
	}
	head = !strcmp(method, "HEAD");
	path[strcspn(path, "?#")] = '\0';
	if (strcmp(method, "GET") && !head) {
		sb_printf(&body, "only GET and HEAD\n");
		http_answer(&cl->out, "405 Method Not Allowed",
			    "text/plain; charset=utf-8", &body, false,
			    "Allow: GET, HEAD\r\n");
	} else if (strcmp(path, "/metrics")) {
		sb_printf(&body, "not found: the metrics are at /metrics\n");
		http_answer(&cl->out, "404 Not Found",
			    "text/plain; charset=utf-8", &body, head, "");
	} else {
		control_render_metrics(&body, mono_sec() - ctl.started);
		if (body.oom) {
			cl->out.oom = true;
			goto out;
		}
		http_answer(&cl->out, "200 OK",
			    "text/plain; version=0.0.4; charset=utf-8", &body,
			    head, "");
	}
out:
	free(body.buf);
}

/* ---- clients ---- */

static void
client_close(struct client *cl)
{
	evloop_del(ctl.loop, &cl->ev);
	close(cl->ev.fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		ctl.clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	ctl.nclients--;
	free(cl->out.buf);
	free(cl);
}

/* Send what is left; false when the client is gone. */
static bool
client_write(struct client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t r = write(cl->ev.fd, cl->out.buf + cl->out_off,
				  cl->out.len - cl->out_off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			client_close(cl);	/* the peer went away */
			return false;
		}
		cl->out_off += r;
	}
	/* All sent: half-close, then wait for the peer's EOF. */
	shutdown(cl->ev.fd, SHUT_WR);
	cl->state = CLIENT_LINGER;
	evloop_mod(ctl.loop, &cl->ev, EPOLLIN | EPOLLRDHUP);
	return true;
}

static void
client_respond(struct client *cl)
{
	if (cl->kind == CLIENT_CONTROL)
		control_request(cl);
	else
		http_request(cl);
	if (cl->out.oom) {
		log_warn("%s: out of memory for an answer",
			 cl->kind == CLIENT_CONTROL ? "control_socket" :
			 "metrics");
		client_close(cl);
		return;
	}
	cl->state = CLIENT_WRITE;
	evloop_mod(ctl.loop, &cl->ev, EPOLLOUT);
	client_write(cl);
}

static bool
request_complete(const struct client *cl)
{
	if (cl->kind == CLIENT_CONTROL)
		return memchr(cl->in, '\n', cl->in_len) != NULL;
	return memmem(cl->in, cl->in_len, "\r\n\r\n", 4) ||
	       memmem(cl->in, cl->in_len, "\n\n", 2);
}

static void
client_read(struct client *cl)
{
	size_t max = cl->kind == CLIENT_CONTROL ? CONTROL_LINE_MAX :
		     CONTROL_HTTP_MAX;

	for (;;) {
		ssize_t r;

		if (cl->in_len >= max) {
			client_respond(cl);	/* answers "too long" */
			return;
		}
		r = read(cl->ev.fd, cl->in + cl->in_len, max - cl->in_len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				client_close(cl);
			return;
		}
		if (r == 0) {
			/* "status" with no newline, then EOF, is a request
			 * too; an HTTP head must be complete. */
			if (cl->kind == CLIENT_CONTROL && cl->in_len)
				client_respond(cl);
			else
				client_close(cl);
			return;
		}
		cl->in_len += r;
		if (request_complete(cl)) {
			client_respond(cl);
			return;
		}
	}
}

static void
client_drain(struct client *cl)
{
	char scratch[4096];

	for (int i = 0; i < 16; i++) {
		ssize_t r = read(cl->ev.fd, scratch, sizeof scratch);

		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	client_close(cl);	/* EOF, error, or a peer that keeps talking */
}

static void
client_event(struct ev_handler *h, uint32_t events)
{
	struct client *cl = container_of(h, struct client, ev);

	switch (cl->state) {
	case CLIENT_READ:
		client_read(cl);
		break;
	case CLIENT_WRITE:
		if (events & (EPOLLERR | EPOLLHUP))
			client_close(cl);
		else
			client_write(cl);
		break;
	case CLIENT_LINGER:
		client_drain(cl);
		break;
	}
}

static void
listener_accept(struct ev_handler *h, uint32_t events)
{
	struct listener *ls = container_of(h, struct listener, ev);

	for (int i = 0; i < 16; i++) {
		struct client *cl;
		int fd = accept4(h->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("%s: accept: %m", ls->what);
			return;
		}
		if (ctl.nclients >= CONTROL_MAX_CLIENTS) {
			if (!ctl.full_logged)
				log_warn("%s: %d clients already: refusing more",
					 ls->what, CONTROL_MAX_CLIENTS);
			ctl.full_logged = true;
			close(fd);
			continue;
		}
		ctl.full_logged = false;
		cl = calloc(1, sizeof *cl);
		if (!cl) {
			close(fd);
			continue;
		}
		cl->ev.fd = fd;
		cl->ev.cb = client_event;
		cl->kind = ls->kind;
		cl->state = CLIENT_READ;
		cl->started = mono_sec();
		if (evloop_add(ctl.loop, &cl->ev, EPOLLIN | EPOLLRDHUP) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = ctl.clients;
		if (cl->next)
			cl->next->prev = cl;
		ctl.clients = cl;
		ctl.nclients++;
	}
}

void
control_tick(void)
{
	time_t now = mono_sec();
	struct client *cl, *next;

	for (cl = ctl.clients; cl; cl = next) {
		next = cl->next;
		if (now - cl->started >= CONTROL_TIMEOUT)
			client_close(cl);
	}
}

/* ---- listeners ---- */

/* A socket file at path: replace it when nothing answers there, refuse
 * to start when something does, and never remove anything else. */
static int
unix_path_free(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r, e;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_error("control_socket %s: %m", path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("control_socket %s: exists and is not a socket; not replacing it",
			  path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("control_socket: socket: %m");
		return -1;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
		log_error("control_socket %s: another process is listening on it (is iscsi-gw already running with this map?)",
			  path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		log_error("control_socket %s: %s", path, strerror(e));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("control_socket %s: removing the stale socket: %m",
			  path);
		return -1;
	}
	log_info("control_socket %s: replaced a stale socket", path);
	return 0;
}

static int
unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof sa.sun_path) {
		log_error("control_socket %s: path too long", path);
		return -1;
	}
	if (unix_path_free(path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("control_socket: socket: %m");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Created 0600: status shows initiator names and addresses. */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		log_error("control_socket %s: %m", path);
		close(fd);
		return -1;
	}
	if (stat(path, &st) == 0) {
		ctl.sock_dev = st.st_dev;
		ctl.sock_ino = st.st_ino;
	}
	ctl.sock_path = strdup(path);
	ctl.unix_l.ev.fd = fd;
	ctl.unix_l.ev.cb = listener_accept;
	if (evloop_add(ctl.loop, &ctl.unix_l.ev, EPOLLIN) < 0) {
		log_error("control_socket %s: epoll: %m", path);
		return -1;
	}
	log_info("control socket on %s", path);
	return 0;
}

static int
http_listen(const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	char host[256], portstr[16];
	unsigned port;
	int fd, one = 1, r;

	if (conf_parse_portal(spec, host, sizeof host, &port) < 0) {
		log_error("metrics %s: not HOST:PORT", spec);
		return -1;
	}
	snprintf(portstr, sizeof portstr, "%u", port);
	r = getaddrinfo(!strcmp(host, "*") ? NULL : host, portstr, &hints,
			&res);
	if (r) {
		log_error("metrics %s: %s", spec, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_error("metrics %s: socket: %m", spec);
		freeaddrinfo(res);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 16) < 0) {
		log_error("metrics %s: %m", spec);
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	ctl.http_l.ev.fd = fd;
	ctl.http_l.ev.cb = listener_accept;
	if (evloop_add(ctl.loop, &ctl.http_l.ev, EPOLLIN) < 0) {
		log_error("metrics %s: epoll: %m", spec);
		return -1;
	}
	log_info("metrics on http://%s/metrics", spec);
	return 0;
}

int
control_start(const struct conf *c, struct evloop *loop)
{
	ctl.conf = c;
	ctl.loop = loop;
	ctl.started = mono_sec();
	if (c->control_socket && unix_listen(c->control_socket) < 0)
		goto fail;
	if (c->metrics && http_listen(c->metrics) < 0)
		goto fail;
	return 0;
fail:
	control_stop();
	return -1;
}

static void
listener_close(struct listener *ls)
{
	if (ls->ev.fd < 0)
		return;
	evloop_del(ctl.loop, &ls->ev);
	close(ls->ev.fd);
	ls->ev.fd = -1;
}

void
control_stop(void)
{
	struct stat st;

	while (ctl.clients)
		client_close(ctl.clients);
	listener_close(&ctl.unix_l);
	listener_close(&ctl.http_l);
	if (ctl.sock_path) {
		/* Only our own socket: a successor may have replaced it. */
		if (stat(ctl.sock_path, &st) == 0 && st.st_dev == ctl.sock_dev &&
		    st.st_ino == ctl.sock_ino && unlink(ctl.sock_path) < 0)
			log_warn("control_socket %s: removing it: %m (the next start replaces it)",
				 ctl.sock_path);
		free(ctl.sock_path);
		ctl.sock_path = NULL;
	}
	metrics_initiators_free();
}
