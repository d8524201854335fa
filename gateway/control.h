/* control.h: the daemon's control socket and its Prometheus endpoint.
 * Owns both listeners, their clients, the status JSON and the metrics
 * exposition; the numbers come from the LUN counters (lunmap.h), the
 * session table (iscsi.h) and metrics.h.  The `iscsi-gw status` command,
 * the client side, is status.c.
 *
 * Threads: everything runs on the network loop as ev_handlers, so the
 * session table and the connections are read without a lock.  Clients are
 * non-blocking, their requests bounded and their whole exchange limited
 * to CONTROL_TIMEOUT seconds (control_tick), so a client that never sends
 * or never reads costs one small buffer for a few seconds.  control.c has
 * the sockets and clients, control-render.c builds the answers.
 *
 *   control_socket (Unix, 0600): "status\n" -> one JSON object, close
 *                                "metrics\n" -> the exposition, close
 *                                "reload\n" -> re-read the map (reload.h):
 *                                  {"ok":...} as JSON, close
 *   metrics (TCP):  GET /metrics -> 200, text format 0.0.4; else 404
 */
#ifndef IGW_CONTROL_H
#define IGW_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct conf;
struct evloop;

#define CONTROL_TIMEOUT 5	/* seconds for one request and its answer */

/* Start the listeners the map asks for (none: nothing to do).  Main
 * thread, before privileges are dropped; after iscsi_start.  A
 * control_socket left by a daemon that is gone is replaced; one that
 * answers makes this fail.  Returns 0 or -1 (logged). */
int control_start(const struct conf *c, struct evloop *loop);
/* Once a second on the loop thread: drop clients past their time. */
void control_tick(void);
/* Close every client and listener and remove the socket file.  Loop
 * thread, before the loop is freed.  Idempotent. */
void control_stop(void);

/* status.c: the client side.  Send req (a line) to the daemon at path,
 * read its whole answer (NUL-terminated, caller frees).  Returns 0, or 1
 * with a message printed. */
int control_ask(const char *path, const char *req, char **out,
		size_t *outlen);

/* control-render.c: the answers, for control.c.  Loop thread. */

/* A growing output buffer; oom latches and the answer is dropped. */
struct sbuf {
	char *buf;
	size_t len, cap;
	bool oom;
};
void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_append(struct sbuf *b, const char *data, size_t len);
/* "status": one JSON object and a newline. */
void control_render_status(struct sbuf *b, const struct conf *c,
			   time_t uptime);
/* "metrics" and GET /metrics: the text format 0.0.4 exposition. */
void control_render_metrics(struct sbuf *b, time_t uptime);
/* {"ok": true, "message": msg} or {"ok": false, "error": msg}. */
void control_render_result(struct sbuf *b, bool ok, const char *msg);
/* {"error": "..."} and a newline. */
void control_render_error(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
