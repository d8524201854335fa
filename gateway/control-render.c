/* control-render.c: the answers of control.c, built whole in memory: the
 * status JSON (jansson) and the Prometheus text format 0.0.4 exposition.
 * Reads the session table and the connections (iscsi.h), the LUN counters
 * (lunmap.h) and metrics.h; writes nothing but the buffer.  Loop thread.
 *
 * Names from the wire (initiator names and aliases) may be anything: in
 * JSON an invalid UTF-8 string is shown escaped as the log escapes it; in
 * a label value the same, and backslash, double quote and line feed are
 * escaped as the text format requires.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "backend.h"
#include "metrics.h"
#include "log.h"
#include "iscsi/iscsi.h"
#include "images.h"

void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->buf ? b->buf + b->len : NULL,
			      b->buf ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->buf && (size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (!nb) {
			b->oom = true;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
}

void
sb_append(struct sbuf *b, const char *data, size_t len)
{
	if (b->oom || !len)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *nb;

		while (cap < b->len + len + 1)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb) {
			b->oom = true;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
}

/* ---- status JSON ---- */

/* Initiator names and aliases come from the wire: when one is not valid
 * UTF-8 it is shown escaped as the log shows it. */
static json_t *
jstr(const char *s)
{
	char esc[1100];
	json_t *j = json_string(s);

	if (j)
		return j;
	log_escape(esc, sizeof esc, s, strlen(s));
	return json_string(esc);
}

/* A LUN's counters, as status shows them. */
static void
lun_counters(json_t *o, const struct lun *l)
{
#define COUNTER(key, field)                                                   \
	json_object_set_new(o, key, json_integer((json_int_t)                 \
		__atomic_load_n(&l->field, __ATOMIC_RELAXED)))
	COUNTER("reads", stat_reads);
	COUNTER("writes", stat_writes);
	COUNTER("read_bytes", stat_read_bytes);
	COUNTER("write_bytes", stat_write_bytes);
	COUNTER("errors", stat_errors);
	/* The IO engine: "async" when reads and writes go the backend's
	 * async way (libaio), with how many did and the most in flight at
	 * once; "workers" when every call holds an IO worker. */
	if (l->be)
		json_object_set_new(o, "io_engine", json_string(
			l->be->can_async ? "async" : "workers"));
	COUNTER("async_commands", stat_async);
	COUNTER("async_in_flight", async_inflight);
	COUNTER("async_in_flight_peak", async_peak);
#undef COUNTER
}

struct images_of {
	const struct lun *tmpl;
	json_t *a;
};

static void
image_row(struct lun *inst, void *opaque)
{
	struct images_of *io = opaque;
	json_t *o;

	if (inst->tmpl != io->tmpl)
		return;
	o = json_object();
	json_object_set_new(o, "initiator", jstr(inst->initiator));
	json_object_set_new(o, "backend", json_string(inst->be->ops.name));
	json_object_set_new(o, "blocks", json_integer((json_int_t)inst->nblocks));
	lun_counters(o, inst);
	json_array_append_new(io->a, o);
}

/* A per-initiator template: its kind and policy, and the images open now
 * (those of initiators logged in). */
static json_t *
status_template(const struct lun *l)
{
	static const char *const kinds[] = { "overlay", "file", "lvm" };
	static const char *const policies[] = { "keep", "reset", "delete" };
	json_t *o = json_object();
	struct images_of io = { l, json_array() };

	json_object_set_new(o, "kind", json_string(kinds[l->pi->kind]));
	json_object_set_new(o, "policy", json_string(policies[l->pi->policy]));
	images_foreach(image_row, &io);
	json_object_set_new(o, "open_images", io.a);
	return o;
}

static json_t *
status_luns(const struct target *t)
{
	json_t *a = json_array();

	for (size_t k = 0; k < t->nluns; k++) {
		const struct lun *l = t->luns[k];
		json_t *o = json_object();

		json_object_set_new(o, "lun", json_integer(l->id));
		json_object_set_new(o, "backend", l->be ?
				    json_string(l->be->ops.name) : json_null());
		json_object_set_new(o, "blocks", json_integer(l->nblocks));
		json_object_set_new(o, "block_size", json_integer(l->block_size));
		json_object_set_new(o, "read_only", json_boolean(l->read_only));
		json_object_set_new(o, "thin", json_boolean(l->thin));
		json_object_set_new(o, "write_cache", json_boolean(
			__atomic_load_n(&l->wce, __ATOMIC_RELAXED)));
		json_object_set_new(o, "removable", json_boolean(l->removable));
		json_object_set_new(o, "medium_ejected", json_boolean(
			__atomic_load_n(&l->medium_out, __ATOMIC_RELAXED)));
		lun_counters(o, l);
		if (l->pi)
			json_object_set_new(o, "per_initiator", status_template(l));
		json_array_append_new(a, o);
	}
	return a;
}

/* A session is listed from the end of its login until its connection
 * closes. */
static bool
session_listed(const struct iscsi_session *s)
{
	return s->conn && (s->conn->state == CONN_FFP ||
			   s->conn->state == CONN_LOGOUT);
}

static json_t *
status_session(const struct iscsi_session *s, time_t now)
{
	const struct iscsi_conn *c = s->conn;
	json_t *o = json_object();
	char isid[13];

	for (int i = 0; i < 6; i++)
		snprintf(isid + 2 * i, 3, "%02x", s->isid[i]);
	json_object_set_new(o, "type", json_string(s->discovery ? "discovery" :
						   "normal"));
	json_object_set_new(o, "initiator", jstr(s->initiator));
	json_object_set_new(o, "initiator_alias", s->initiator_alias[0] ?
			    jstr(s->initiator_alias) : json_null());
	json_object_set_new(o, "target", s->target ?
			    json_string(s->target->name) : json_null());
	json_object_set_new(o, "isid", json_string(isid));
	json_object_set_new(o, "tsih", json_integer(s->tsih));
	json_object_set_new(o, "peer", json_string(c->peer));
	json_object_set_new(o, "cid", json_integer(c->cid));
	json_object_set_new(o, "header_digest", json_string(
		c->params.header_digest ? "CRC32C" : "None"));
	json_object_set_new(o, "data_digest", json_string(
		c->params.data_digest ? "CRC32C" : "None"));
	json_object_set_new(o, "max_burst_length",
			    json_integer(c->params.max_burst_length));
	json_object_set_new(o, "first_burst_length",
			    json_integer(c->params.first_burst_length));
	json_object_set_new(o, "max_recv_data_segment_length",
			    json_integer(c->params.max_recv_dsl));
	json_object_set_new(o, "max_send_data_segment_length",
			    json_integer(c->params.max_send_dsl));
	json_object_set_new(o, "commands",
			    json_integer((json_int_t)s->stat_commands));
	json_object_set_new(o, "read_bytes",
			    json_integer((json_int_t)s->stat_read_bytes));
	json_object_set_new(o, "write_bytes",
			    json_integer((json_int_t)s->stat_write_bytes));
	json_object_set_new(o, "in_flight", json_integer(c->ntasks));
	json_object_set_new(o, "connected_seconds",
			    json_integer(now - c->created));
	return o;
}

void
control_render_status(struct sbuf *b, const struct conf *c, time_t uptime)
{
	json_t *root = json_object(), *a;
	time_t now = time(NULL);
	unsigned nconns = 0;
	char *text;

	json_object_set_new(root, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(root, "pid", json_integer(getpid()));
	json_object_set_new(root, "uptime_seconds",
			    json_integer(uptime));
	a = json_array();
	for (size_t i = 0; i < c->nportals; i++)
		json_array_append_new(a, json_string(c->portals[i]));
	json_object_set_new(root, "portals", a);
	json_object_set_new(root, "metrics", c->metrics ?
			    json_string(c->metrics) : json_null());
	json_object_set_new(root, "shutting_down",
			    json_boolean(iscsi_g.shutting_down));
	a = json_array();
	for (size_t i = 0; iscsi_g.map && i < iscsi_g.map->ntargets; i++) {
		const struct target *t = iscsi_g.map->targets[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "alias", t->alias ?
				    jstr(t->alias) : json_null());
		json_object_set_new(o, "luns", status_luns(t));
		json_array_append_new(a, o);
	}
	json_object_set_new(root, "targets", a);
	for (const struct iscsi_conn *cn = iscsi_g.conns; cn; cn = cn->next)
		if (cn->state != CONN_CLOSED)
			nconns++;
	json_object_set_new(root, "connections", json_integer(nconns));
	a = json_array();
	for (const struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
		if (session_listed(s))
			json_array_append_new(a, status_session(s, now));
	json_object_set_new(root, "sessions", a);
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text) {
		b->oom = true;
		return;
	}
	sb_append(b, text, strlen(text));
	sb_append(b, "\n", 1);
	free(text);
}

/* ---- Prometheus text format 0.0.4 ---- */

/* Valid UTF-8 with no control characters: safe to print as it is. */
static bool
utf8_clean(const unsigned char *s)
{
	while (*s) {
		unsigned n, cp;

		if (*s < 0x20 || *s == 0x7f)
			return false;
		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0)
			n = 1, cp = *s & 0x1f;
		else if ((*s & 0xf0) == 0xe0)
			n = 2, cp = *s & 0x0f;
		else if ((*s & 0xf8) == 0xf0)
			n = 3, cp = *s & 0x07;
		else
			return false;
		s++;
		for (unsigned i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* A label value, quoted: backslash, double quote and line feed escaped as
 * the format requires; a value that is not clean UTF-8 is first escaped
 * as the log escapes it. */
static void
prom_label(struct sbuf *b, const char *s)
{
	char esc[1100];

	if (!utf8_clean((const unsigned char *)s))
		s = log_escape(esc, sizeof esc, s, strlen(s));
	sb_append(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '\\')
			sb_append(b, "\\\\", 2);
		else if (*s == '"')
			sb_append(b, "\\\"", 2);
		else if (*s == '\n')
			sb_append(b, "\\n", 2);
		else
			sb_append(b, s, 1);
	}
	sb_append(b, "\"", 1);
}

static void
prom_head(struct sbuf *b, const char *name, const char *type,
	  const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
prom_lun_labels(struct sbuf *b, const struct target *t, const struct lun *l)
{
	sb_printf(b, "target=");
	prom_label(b, t->name);
	sb_printf(b, ",lun=\"%u\"", l->id);
}

/* Per-LUN counters: one family, every LUN. */
static void
prom_lun_counter(struct sbuf *b, const char *name, const char *help,
		 size_t offset)
{
	struct lunmap *m = iscsi_g.map;

	prom_head(b, name, "counter", help);
	for (size_t i = 0; m && i < m->ntargets; i++)
		for (size_t k = 0; k < m->targets[i]->nluns; k++) {
			struct lun *l = m->targets[i]->luns[k];
			uint64_t *p = (uint64_t *)((char *)l + offset);

			sb_printf(b, "%s{", name);
			prom_lun_labels(b, m->targets[i], l);
			sb_printf(b, "} %llu\n", (unsigned long long)
				  __atomic_load_n(p, __ATOMIC_RELAXED));
		}
}

static void
prom_histogram(struct sbuf *b, const struct target *t, const struct lun *l,
	       const char *op, const struct lat_hist *h)
{
	static const char name[] = "iscsi_gw_lun_io_latency_seconds";
	uint64_t cum = 0, sum_ns;

	for (size_t i = 0; i <= METRICS_NBUCKETS; i++) {
		cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		sb_printf(b, "%s_bucket{", name);
		prom_lun_labels(b, t, l);
		sb_printf(b, ",op=\"%s\",le=\"%s\"} %llu\n", op,
			  i < METRICS_NBUCKETS ? metrics_bucket_le[i] : "+Inf",
			  (unsigned long long)cum);
	}
	sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
	sb_printf(b, "%s_sum{", name);
	prom_lun_labels(b, t, l);
	sb_printf(b, ",op=\"%s\"} %llu.%09llu\n", op,
		  (unsigned long long)(sum_ns / 1000000000u),
		  (unsigned long long)(sum_ns % 1000000000u));
	sb_printf(b, "%s_count{", name);
	prom_lun_labels(b, t, l);
	sb_printf(b, ",op=\"%s\"} %llu\n", op, (unsigned long long)cum);
}

/* Ended sessions' totals plus the live ones', by initiator name.  Sessions
 * not yet freed count here even when closed: session_free moves their
 * numbers to the table, so every series only grows. */
static struct initiator_totals *
initiator_totals(size_t *n)
{
	size_t nret, nsess = 0, cnt;
	const struct initiator_totals *ret = metrics_initiators(&nret);
	struct initiator_totals *all;

	for (const struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
		nsess++;
	all = calloc(nret + nsess + 1, sizeof *all);
	if (!all) {
		*n = 0;
		return NULL;
	}
	if (nret)
		memcpy(all, ret, nret * sizeof *all);
	cnt = nret;
	for (const struct iscsi_session *s = iscsi_g.sessions; s; s = s->next) {
		struct initiator_totals *t = NULL;

		if (s->discovery || !s->initiator[0])
			continue;
		for (size_t i = 0; i < cnt && !t; i++)
			if (!strcasecmp(all[i].name, s->initiator))
				t = &all[i];
		if (!t) {
			t = &all[cnt++];
			snprintf(t->name, sizeof t->name, "%s", s->initiator);
		}
		t->commands += s->stat_commands;
		t->read_bytes += s->stat_read_bytes;
		t->write_bytes += s->stat_write_bytes;
	}
	*n = cnt;
	return all;
}

void
control_render_metrics(struct sbuf *b, time_t uptime)
{
	struct lunmap *m = iscsi_g.map;
	struct initiator_totals *it;
	unsigned nsess = 0, nconns = 0;
	size_t nit;

	prom_head(b, "iscsi_gw_info", "gauge",
		  "Always 1; the version label names the running iscsi-gw.");
	sb_printf(b, "iscsi_gw_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	prom_head(b, "iscsi_gw_uptime_seconds", "gauge",
		  "Seconds since the daemon started serving.");
	sb_printf(b, "iscsi_gw_uptime_seconds %lld\n",
		  (long long)uptime);
	for (const struct iscsi_session *s = iscsi_g.sessions; s; s = s->next)
		if (session_listed(s))
			nsess++;
	for (const struct iscsi_conn *c = iscsi_g.conns; c; c = c->next)
		if (c->state != CONN_CLOSED)
			nconns++;
	prom_head(b, "iscsi_gw_sessions", "gauge",
		  "iSCSI sessions past login (normal and discovery).");
	sb_printf(b, "iscsi_gw_sessions %u\n", nsess);
	prom_head(b, "iscsi_gw_connections", "gauge",
		  "Open iSCSI connections, logging in or not.");
	sb_printf(b, "iscsi_gw_connections %u\n", nconns);

	prom_lun_counter(b, "iscsi_gw_lun_reads_total",
			 "READ commands completed on the LUN.",
			 offsetof(struct lun, stat_reads));
	prom_lun_counter(b, "iscsi_gw_lun_writes_total",
			 "WRITE commands completed on the LUN.",
			 offsetof(struct lun, stat_writes));
	prom_lun_counter(b, "iscsi_gw_lun_read_bytes_total",
			 "Bytes read from the LUN.",
			 offsetof(struct lun, stat_read_bytes));
	prom_lun_counter(b, "iscsi_gw_lun_write_bytes_total",
			 "Bytes written to the LUN.",
			 offsetof(struct lun, stat_write_bytes));
	prom_lun_counter(b, "iscsi_gw_lun_async_total",
			 "READ and WRITE commands that went the backend's async way (libaio), holding no IO worker.",
			 offsetof(struct lun, stat_async));
	prom_lun_counter(b, "iscsi_gw_lun_errors_total",
			 "Commands on the LUN that ended in a backend error.",
			 offsetof(struct lun, stat_errors));
	prom_head(b, "iscsi_gw_lun_io_latency_seconds", "histogram",
		  "Read and write latency, from submission to the backend to its completion.");
	for (size_t i = 0; m && i < m->ntargets; i++)
		for (size_t k = 0; k < m->targets[i]->nluns; k++) {
			const struct lun *l = m->targets[i]->luns[k];
			prom_histogram(b, m->targets[i], l, "read",
				       &l->metrics.read);
			prom_histogram(b, m->targets[i], l, "write",
				       &l->metrics.write);
		}

	it = initiator_totals(&nit);
	if (!it)
		b->oom = true;
#define INITIATOR_COUNTER(family, field, help)                                \
	do {                                                                  \
		prom_head(b, family, "counter", help);                        \
		for (size_t i = 0; i < nit; i++) {                            \
			sb_printf(b, family "{initiator=");                   \
			prom_label(b, it[i].name);                            \
			sb_printf(b, "} %llu\n",                              \
				  (unsigned long long)it[i].field);           \
		}                                                             \
	} while (0)
	INITIATOR_COUNTER("iscsi_gw_initiator_commands_total", commands,
			  "SCSI commands answered, by initiator name, over every session.");
	INITIATOR_COUNTER("iscsi_gw_initiator_read_bytes_total", read_bytes,
			  "Data-In bytes, by initiator name, over every session.");
	INITIATOR_COUNTER("iscsi_gw_initiator_write_bytes_total", write_bytes,
			  "Data-Out bytes, by initiator name, over every session.");
#undef INITIATOR_COUNTER
	free(it);
}

void
control_render_error(struct sbuf *b, const char *fmt, ...)
{
	char msg[512];
	json_t *o;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	o = json_object();
	if (o)
		json_object_set_new(o, "error", jstr(msg));
	text = o ? json_dumps(o, 0) : NULL;
	json_decref(o);
	if (text)
		sb_printf(b, "%s\n", text);
	else
		sb_printf(b, "{\"error\": \"bad request\"}\n");
	free(text);
}

void
control_render_result(struct sbuf *b, bool ok, const char *msg)
{
	json_t *o = json_object();
	char *text;

	if (o) {
		json_object_set_new(o, "ok", json_boolean(ok));
		json_object_set_new(o, ok ? "message" : "error", jstr(msg));
	}
	text = o ? json_dumps(o, 0) : NULL;
	json_decref(o);
	sb_printf(b, "%s\n", text ? text : "{\"ok\": false}");
	free(text);
}
