/* status.c: `iscsi-gw status --config FILE [--json]`, the client side of
 * the control socket (control.c owns the daemon side).  Reads the map to
 * find control_socket, sends "status\n", reads one JSON object until the
 * daemon closes, within CONTROL_TIMEOUT seconds in all, and prints it as
 * it is (--json) or as tables.  Runs in its own short-lived process.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "control.h"
#include "conf/conf.h"

#define STATUS_REPLY_MAX (64u << 20)

static long long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000LL +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for events on fd until the deadline: 1 ready, 0 timed out. */
static int
wait_fd(int fd, short events, const struct timespec *deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		long long left = ms_left(deadline);
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return 1;	/* let read/write report it */
	}
}

/* Send req to the daemon at path and read its whole answer.  Returns 0,
 * or 1 with a message printed. */
int
control_ask(const char *path, const char *req, char **out, size_t *outlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec deadline;
	size_t len = 0, cap = 65536, sent = 0, reqlen = strlen(req);
	char *buf = NULL;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += CONTROL_TIMEOUT;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "iscsi-gw: cannot reach the daemon at %s: path too long\n",
			path);
		return 1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		/* A full backlog (EAGAIN) is a daemon too busy to answer. */
		fprintf(stderr, "iscsi-gw: cannot reach the daemon at %s: %s\n",
			path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	while (sent < reqlen) {
		ssize_t r;

		if (!wait_fd(fd, POLLOUT, &deadline))
			goto timeout;
		r = write(fd, req + sent, reqlen - sent);
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			goto io_error;
		if (r > 0)
			sent += r;
	}
	buf = malloc(cap);
	if (!buf)
		goto io_error;
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			char *nb;

			if (cap >= STATUS_REPLY_MAX) {
				fprintf(stderr, "iscsi-gw: the daemon at %s answered more than %u bytes\n",
					path, STATUS_REPLY_MAX);
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				goto io_error;
			buf = nb;
			cap *= 2;
		}
		if (!wait_fd(fd, POLLIN, &deadline))
			goto timeout;
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			goto io_error;
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
timeout:
	fprintf(stderr, "iscsi-gw: the daemon at %s did not answer within %d seconds\n",
		path, CONTROL_TIMEOUT);
	goto fail;
io_error:
	fprintf(stderr, "iscsi-gw: talking to the daemon at %s: %s\n", path,
		strerror(errno));
fail:
	free(buf);
	close(fd);
	return 1;
}

/* ---- text output ---- */

/* A table of strings printed in aligned columns. */
struct table {
	size_t ncols, nrows;
	char **cells;			/* nrows * ncols, owned */
};

static void
table_row(struct table *t, ...)
{
	char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *nc);
	va_list ap;

	if (!nc)
		return;
	t->cells = nc;
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		nc[t->nrows * t->ncols + i] = strdup(s ? s : "-");
	}
	va_end(ap);
	t->nrows++;
}

static void
table_print(struct table *t, const char *indent)
{
	size_t w[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (s && strlen(s) > w[c])
				w[c] = strlen(s);
		}
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(indent, stdout);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s  ", (int)w[c], s ? s : "");
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

static const char *
jtext(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static char *
jnum(json_t *o, const char *key, char *buf, size_t sz)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		snprintf(buf, sz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		snprintf(buf, sz, "-");
	return buf;
}

/* 1536 -> "1.5 KiB". */
static char *
fmt_bytes(double x, char *buf, size_t sz)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	int u = 0;

	while (x >= 1024 && u < 6) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, sz, "%.0f B", x);
	else
		snprintf(buf, sz, "%.1f %s", x, unit[u]);
	return buf;
}

static char *
human_bytes(json_t *o, const char *key, char *buf, size_t sz)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v)) {
		snprintf(buf, sz, "-");
		return buf;
	}
	return fmt_bytes((double)json_integer_value(v), buf, sz);
}

static char *
duration(json_int_t s, char *buf, size_t sz)
{
	if (s >= 86400)
		snprintf(buf, sz, "%" JSON_INTEGER_FORMAT "d%02dh%02dm",
			 s / 86400, (int)(s % 86400 / 3600),
			 (int)(s % 3600 / 60));
	else if (s >= 3600)
		snprintf(buf, sz, "%dh%02dm%02ds", (int)(s / 3600),
			 (int)(s % 3600 / 60), (int)(s % 60));
	else if (s >= 60)
		snprintf(buf, sz, "%dm%02ds", (int)(s / 60), (int)(s % 60));
	else
		snprintf(buf, sz, "%ds", (int)s);
	return buf;
}

static void
print_sessions(json_t *sessions)
{
	struct table t = { .ncols = 9 };
	size_t i;
	json_t *s;

	printf("Sessions: %zu\n", json_array_size(sessions));
	if (!json_array_size(sessions))
		return;
	table_row(&t, "INITIATOR", "TARGET", "PEER", "TSIH", "DIGESTS",
		  "COMMANDS", "READ", "WRITTEN", "CONNECTED");
	json_array_foreach(sessions, i, s) {
		char tsih[16], dig[32], cmds[32], rd[32], wr[32], up[32];
		const char *target = jtext(s, "target");
		const char *hd = jtext(s, "header_digest");
		const char *dd = jtext(s, "data_digest");
		json_t *cs = json_object_get(s, "connected_seconds");

		snprintf(dig, sizeof dig, "%s/%s", hd ? hd : "?",
			 dd ? dd : "?");
		snprintf(tsih, sizeof tsih, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(json_object_get(s, "tsih")));
		table_row(&t, jtext(s, "initiator"),
			  target ? target : "(discovery)", jtext(s, "peer"),
			  tsih, dig, jnum(s, "commands", cmds, sizeof cmds),
			  human_bytes(s, "read_bytes", rd, sizeof rd),
			  human_bytes(s, "write_bytes", wr, sizeof wr),
			  json_is_integer(cs) ?
			  duration(json_integer_value(cs), up, sizeof up) : "-");
	}
	table_print(&t, "  ");
}

static void
print_targets(json_t *targets)
{
	size_t i, k;
	json_t *tg, *l;

	printf("Targets: %zu\n", json_array_size(targets));
	json_array_foreach(targets, i, tg) {
		struct table t = { .ncols = 10 };
		json_t *luns = json_object_get(tg, "luns");

		printf("  %s\n", jtext(tg, "name") ? jtext(tg, "name") : "?");
		table_row(&t, "LUN", "BACKEND", "SIZE", "BLOCK", "FLAGS",
			  "READS", "WRITES", "READ", "WRITTEN", "ERRORS");
		json_array_foreach(luns, k, l) {
			char lun[16], size[32], bs[16], flags[32], r[32], w[32];
			char rb[32], wb[32], e[32];
			json_int_t blocks = json_integer_value(
				json_object_get(l, "blocks"));
			json_int_t bsz = json_integer_value(
				json_object_get(l, "block_size"));

			snprintf(flags, sizeof flags, "%s%s%s%s%s",
				 json_is_true(json_object_get(l, "read_only")) ?
				 "ro" : "rw",
				 json_is_true(json_object_get(l, "thin")) ?
				 ",thin" : "",
				 json_is_true(json_object_get(l, "write_cache")) ?
				 ",wce" : "",
				 json_is_true(json_object_get(l, "removable")) ?
				 ",rmb" : "",
				 json_is_true(json_object_get(
					 l, "medium_ejected")) ?
				 ",ejected" : "");
			table_row(&t, jnum(l, "lun", lun, sizeof lun),
				  jtext(l, "backend"),
				  fmt_bytes((double)blocks * (double)bsz, size,
					    sizeof size),
				  jnum(l, "block_size", bs, sizeof bs), flags,
				  jnum(l, "reads", r, sizeof r),
				  jnum(l, "writes", w, sizeof w),
				  human_bytes(l, "read_bytes", rb, sizeof rb),
				  human_bytes(l, "write_bytes", wb, sizeof wb),
				  jnum(l, "errors", e, sizeof e));
		}
		table_print(&t, "    ");
	}
}

static int
print_text(const char *reply, const char *path)
{
	json_error_t je;
	json_t *root = json_loads(reply, 0, &je), *a;
	char up[32];
	size_t i;

	if (!json_is_object(root)) {
		fprintf(stderr, "iscsi-gw: the daemon at %s answered something that is not a JSON object: %s\n",
			path, je.text);
		json_decref(root);
		return 1;
	}
	if (jtext(root, "error")) {
		fprintf(stderr, "iscsi-gw: the daemon at %s: %s\n", path,
			jtext(root, "error"));
		json_decref(root);
		return 1;
	}
	printf("iscsi-gw %s, pid %" JSON_INTEGER_FORMAT ", up %s%s\n",
	       jtext(root, "version") ? jtext(root, "version") : "?",
	       json_integer_value(json_object_get(root, "pid")),
	       duration(json_integer_value(json_object_get(root,
							   "uptime_seconds")),
			up, sizeof up),
	       json_is_true(json_object_get(root, "shutting_down")) ?
	       ", shutting down" : "");
	printf("Portals:");
	json_array_foreach(json_object_get(root, "portals"), i, a)
		printf(" %s", json_string_value(a));
	printf("\n");
	if (jtext(root, "metrics"))
		printf("Metrics: http://%s/metrics\n", jtext(root, "metrics"));
	printf("Connections: %" JSON_INTEGER_FORMAT "\n",
	       json_integer_value(json_object_get(root, "connections")));
	print_sessions(json_object_get(root, "sessions"));
	print_targets(json_object_get(root, "targets"));
	json_decref(root);
	return 0;
}

int
cmd_status(const struct cli *cli)
{
	char err[1024], *reply = NULL;
	size_t len;
	struct conf *c;
	int rc;

	if (!cli->config) {
		fprintf(stderr, "iscsi-gw: status needs --config FILE\n");
		return 2;
	}
	c = conf_load_file(cli->config, err, sizeof err);
	if (!c) {
		fprintf(stderr, "iscsi-gw: %s\n", err);
		return 1;
	}
	if (!c->control_socket) {
		fprintf(stderr, "iscsi-gw: %s has no control_socket: the running daemon cannot be asked (see iscsi-gw.json(5))\n",
			cli->config);
		conf_free(c);
		return 1;
	}
	rc = control_ask(c->control_socket, "status\n", &reply, &len);
	if (rc == 0) {
		if (cli->json) {
			json_t *j = json_loads(reply, 0, NULL);

			fwrite(reply, 1, len, stdout);
			if (len && reply[len - 1] != '\n')
				putchar('\n');
			/* Printed as it is, but an error is still a failure. */
			if (!json_is_object(j) || json_object_get(j, "error"))
				rc = 1;
			json_decref(j);
		} else {
			rc = print_text(reply, c->control_socket);
		}
	}
	free(reply);
	conf_free(c);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "iscsi-gw: writing the status: %s\n",
			strerror(errno));
		rc = 1;
	}
	return rc;
}
