/* conf.c: see conf.h.  Modelled on ctld's conf_verify: parse the whole map
 * fresh, check everything, and only then hand it over.  Messages name the
 * JSON pointer of the bad key, e.g. "/targets/0/luns/1/backend/size".
 *
 * This file reads the top level, the global options, CHAP and the targets,
 * and frees a conf; conf-lun.c reads each LUN, conf-net.c checks names and
 * addresses, conf-json.c holds the helpers they share (conf-internal.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>

#include "log.h"

#include <jansson.h>

#include "conf.h"
#include "conf-internal.h"
#include "util/util.h"

/* The global option table (Redis config.c style): name, bounds, default. */
struct opt {
	const char *name;
	size_t offset;		/* into struct conf_iscsi */
	bool is_bool;
	uint32_t min, max, dflt;
};

#define OPT_U32(n, field, lo, hi, d)                                          \
	{ .name = n, .offset = offsetof(struct conf_iscsi, field),            \
	  .min = lo, .max = hi, .dflt = d }
#define OPT_BOOL(n, field, d)                                                 \
	{ .name = n, .offset = offsetof(struct conf_iscsi, field),            \
	  .is_bool = true, .dflt = d }

static const struct opt iscsi_opts[] = {
	OPT_U32("max_recv_data_segment_length", max_recv_data_segment_length,
		512, 16777215, 262144),
	OPT_U32("max_burst_length", max_burst_length, 512, 16777215, 1048576),
	OPT_U32("first_burst_length", first_burst_length, 512, 16777215, 262144),
	OPT_BOOL("initial_r2t", initial_r2t, false),
	OPT_BOOL("immediate_data", immediate_data, true),
	OPT_U32("max_outstanding_r2t", max_outstanding_r2t, 1, 65535, 16),
	OPT_U32("queue_depth", queue_depth, 1, 1024, 128),
	OPT_U32("nop_interval", nop_interval, 0, 3600, 15),
	OPT_U32("nop_timeout", nop_timeout, 1, 3600, 15),
	OPT_U32("login_timeout", login_timeout, 1, 3600, 30),
	OPT_U32("max_connections", max_connections, 1, 65536, 1024),
	OPT_U32("max_sessions_per_initiator", max_sessions_per_initiator, 1,
		65536, 64),
	OPT_U32("max_buffer_mb", max_buffer_mb, 64, 65536, 512),
};

static void
iscsi_defaults(struct conf_iscsi *ci)
{
	for (size_t i = 0; i < ARRAY_SIZE(iscsi_opts); i++) {
		const struct opt *o = &iscsi_opts[i];
		if (o->is_bool)
			*(bool *)((char *)ci + o->offset) = o->dflt;
		else
			*(uint32_t *)((char *)ci + o->offset) = o->dflt;
	}
}

static const char *const target_keys[] = {
	"name", "alias", "acl", "networks", "luns", "chap", "mutual_chap", NULL
};
static const char *const target_later[] = { NULL };

static const char *const chap_keys[] = { "user", "secret_file", NULL };
static const char *const chap_later[] = { "secret", NULL };

/* "chap": { "user": ..., "secret_file": ... }.  The secret is the first
 * line of the file; inline secrets are refused so maps can be shared. */
static int
parse_chap(struct ctx *cx, json_t *obj, const char *key, struct conf_chap **out)
{
	json_t *v = json_object_get(obj, key);
	char ptr[256], *file = NULL, line[1024];
	struct conf_chap *ch;
	struct stat st;
	FILE *f;
	size_t n;

	if (!v)
		return 0;
	snprintf(ptr, sizeof ptr, "%s/%s", cx->ptr_prefix, key);
	if (!json_is_object(v))
		return conf_fail(cx, ptr, "must be an object with user and secret_file");
	if (json_object_get(v, "secret"))
		return conf_fail(cx, ptr, "inline 'secret' is not accepted: put the secret in a file and name it with 'secret_file'");
	if (conf_check_keys(cx, v, ptr, chap_keys, chap_later) < 0)
		return -1;
	ch = calloc(1, sizeof *ch);
	if (!ch)
		return conf_fail(cx, ptr, "out of memory");
	*out = ch;
	if (conf_get_string(cx, v, ptr, "user", true, &ch->user) < 0 ||
	    conf_get_string(cx, v, ptr, "secret_file", true, &file) < 0)
		return -1;
	if (strlen(ch->user) > 255) {
		free(file);
		return conf_fail(cx, ptr,
				 "'user' is longer than 255 characters");
	}
	{
		char *abs = conf_resolve_path(cx, file);
		free(file);
		file = abs;
	}
	snprintf(ptr, sizeof ptr, "%s/%s/secret_file", cx->ptr_prefix, key);
	f = file ? fopen(file, "r") : NULL;
	if (!f) {
		conf_fail(cx, ptr, "%s: %s",
			  file ? file : "?", strerror(errno));
		free(file);
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		log_warn("%s: CHAP secret file is readable by group or others (mode %03o)",
			 file, st.st_mode & 0777);
	if (!fgets(line, sizeof line, f))
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		conf_fail(cx, ptr,
			  "%s: the first line (the secret) is empty", file);
		free(file);
		return -1;
	}
	if (n < 12)
		log_warn("%s: CHAP secret is shorter than 12 bytes (96 bits)", file);
	ch->secret = strdup(line);
	ch->secret_len = n;
	memset(line, 0, sizeof line);
	free(file);
	return ch->secret ? 0 : conf_fail(cx, ptr, "out of memory");
}

void
conf_chap_free(struct conf_chap *ch)
{
	if (!ch)
		return;
	free(ch->user);
	if (ch->secret)
		memset(ch->secret, 0, ch->secret_len);
	free(ch->secret);
	free(ch);
}

static int
parse_target(struct ctx *cx, json_t *tj, const char *ptr,
	     struct conf_target *t)
{
	char p[256];
	json_t *v, *item;
	size_t i;

	if (!json_is_object(tj))
		return conf_fail(cx, ptr, "must be an object");
	if (conf_check_keys(cx, tj, ptr, target_keys, target_later) < 0)
		return -1;
	if (conf_get_string(cx, tj, ptr, "name", true, &t->name) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/name", ptr);
	if (!conf_valid_iscsi_name(t->name))
		return conf_fail(cx, p, "'%s' is not a valid iSCSI name (iqn.yyyy-mm.reversed.domain[:id], eui.16HEX or naa.16/32HEX, lower case)",
				 t->name);
	if (conf_get_string(cx, tj, ptr, "alias", false, &t->alias) < 0)
		return -1;
	if (t->alias && strlen(t->alias) > 255)
		return conf_fail(cx, ptr,
				 "'alias' is longer than 255 characters");
	cx->ptr_prefix = ptr;
	if (parse_chap(cx, tj, "chap", &t->chap) < 0 ||
	    parse_chap(cx, tj, "mutual_chap", &t->mutual_chap) < 0)
		return -1;
	if (t->mutual_chap && !t->chap)
		return conf_fail(cx, ptr, "'mutual_chap' needs 'chap' (the initiator authenticates first)");
	v = json_object_get(tj, "acl");
	if (v) {
		snprintf(p, sizeof p, "%s/acl", ptr);
		if (!json_is_array(v))
			return conf_fail(cx, p, "must be an array of initiator names");
		t->acl = calloc(json_array_size(v) + 1, sizeof(char *));
		json_array_foreach(v, i, item) {
			snprintf(p, sizeof p, "%s/acl/%zu", ptr, i);
			if (!json_is_string(item) ||
			    !conf_valid_iscsi_name(json_string_value(item)))
				return conf_fail(cx, p, "must be a valid iSCSI initiator name");
			t->acl[t->nacl++] = strdup(json_string_value(item));
		}
	}
	v = json_object_get(tj, "networks");
	if (v) {
		snprintf(p, sizeof p, "%s/networks", ptr);
		if (!json_is_array(v) || json_array_size(v) == 0)
			return conf_fail(cx, p, "must be a non-empty array of addresses or networks (\"10.0.0.0/8\", \"2001:db8::/32\")");
		t->nets = calloc(json_array_size(v), sizeof *t->nets);
		if (!t->nets)
			return conf_fail(cx, p, "out of memory");
		json_array_foreach(v, i, item) {
			snprintf(p, sizeof p, "%s/networks/%zu", ptr, i);
			if (!json_is_string(item) ||
			    conf_parse_net(json_string_value(item),
					   &t->nets[t->nnets]) < 0)
				return conf_fail(cx, p, "must be an IPv4 or IPv6 address, optionally /PREFIX (\"10.0.0.0/8\", \"::1\")");
			t->nnets++;
		}
	}
	v = json_object_get(tj, "luns");
	snprintf(p, sizeof p, "%s/luns", ptr);
	if (!v)
		return conf_fail(cx, ptr, "'luns' is required");
	if (!json_is_array(v))
		return conf_fail(cx, p, "must be an array");
	t->luns = calloc(json_array_size(v) + 1, sizeof *t->luns);
	json_array_foreach(v, i, item) {
		snprintf(p, sizeof p, "%s/luns/%zu", ptr, i);
		if (conf_parse_lun(cx, item, p, &t->luns[t->nluns++]) < 0)
			return -1;
		for (size_t j = 0; j + 1 < t->nluns; j++)
			if (t->luns[j].lun == t->luns[i].lun) {
				snprintf(p, sizeof p, "%s/luns/%zu/lun", ptr, i);
				return conf_fail(cx, p, "LUN %u is already used by %s",
						 t->luns[i].lun,
						 t->luns[j].pointer);
			}
	}
	return 0;
}

static const char *const top_keys[] = {
	"portals", "state_dir", "targets", "iscsi", "io_threads",
	"discovery_chap", "discovery_mutual_chap", "user", "control_socket",
	"metrics", "fuse_mount", NULL
};
static const char *const top_later[] = { NULL };

/* "control_socket": a Unix socket path (relative to the map's folder);
 * "metrics": "HOST:PORT" of the Prometheus endpoint (control.c). */
static int
parse_control(struct ctx *cx, json_t *root, struct conf *c)
{
	char host[256];
	unsigned port;
	json_t *v;

	if (conf_get_string(cx, root, "", "control_socket", false,
			    &c->control_socket) < 0)
		return -1;
	if (c->control_socket) {
		char *r = conf_resolve_path(cx, c->control_socket);

		free(c->control_socket);
		c->control_socket = r;
		if (!r)
			return conf_fail(cx, "/control_socket",
					 "out of memory");
		/* sockaddr_un.sun_path holds 108 bytes with the NUL. */
		if (strlen(r) > 107)
			return conf_fail(cx, "/control_socket",
					 "'%s' is longer than a Unix socket path may be (107 bytes)",
					 r);
	}
	v = json_object_get(root, "metrics");
	if (!v)
		return 0;
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    conf_parse_portal(json_string_value(v), host, sizeof host,
			      &port) < 0)
		return conf_fail(cx, "/metrics",
				 "must be \"HOST:PORT\" or \"[IPV6]:PORT\" (the Prometheus endpoint)");
	c->metrics = strdup(json_string_value(v));
	return c->metrics ? 0 : conf_fail(cx, "/metrics", "out of memory");
}

/* "fuse_mount": the folder of the FUSE view (fuse/fuse-view.c), relative
 * to the map's folder.  A build without libfuse3 refuses it here, so that
 * `check` says so too. */
static int
parse_fuse_mount(struct ctx *cx, json_t *root, struct conf *c)
{
	if (conf_get_string(cx, root, "", "fuse_mount", false,
			    &c->fuse_mount) < 0)
		return -1;
	if (!c->fuse_mount)
		return 0;
#ifndef HAVE_FUSE3
	return conf_fail(cx, "/fuse_mount", "the FUSE view needs libfuse3, which this build of iscsi-gw lacks");
#else
	{
		char *r = conf_resolve_path(cx, c->fuse_mount);

		free(c->fuse_mount);
		c->fuse_mount = r;
		if (!r)
			return conf_fail(cx, "/fuse_mount", "out of memory");
	}
	return 0;
#endif
}

static int
parse_top(struct ctx *cx, json_t *root, struct conf *c)
{
	char p[256];
	json_t *v, *item;
	size_t i;
	const char *key;

	if (!json_is_object(root))
		return conf_fail(cx, "", "the map must be a JSON object");
	if (conf_check_keys(cx, root, "", top_keys, top_later) < 0)
		return -1;

	v = json_object_get(root, "portals");
	if (!v)
		return conf_fail(cx, "", "'portals' is required");
	if (!json_is_array(v) || json_array_size(v) == 0)
		return conf_fail(cx, "/portals", "must be a non-empty array of \"HOST:PORT\"");
	c->portals = calloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, i, item) {
		char host[256];
		unsigned port;

		snprintf(p, sizeof p, "/portals/%zu", i);
		if (!json_is_string(item) ||
		    conf_parse_portal(json_string_value(item), host, sizeof host,
				      &port) < 0)
			return conf_fail(cx, p, "must be \"HOST:PORT\" or \"[IPV6]:PORT\"");
		c->portals[c->nportals++] = strdup(json_string_value(item));
	}

	if (conf_get_string(cx, root, "", "state_dir", false,
			    &c->state_dir) < 0)
		return -1;
	if (c->state_dir) {
		char *r = conf_resolve_path(cx, c->state_dir);
		free(c->state_dir);
		c->state_dir = r;
		cx->has_state_dir = true;
	}
	if (parse_fuse_mount(cx, root, c) < 0)
		return -1;

	if (conf_get_string(cx, root, "", "user", false, &c->user) < 0)
		return -1;
	if (parse_control(cx, root, c) < 0)
		return -1;
	cx->ptr_prefix = "";
	if (parse_chap(cx, root, "discovery_chap", &c->discovery_chap) < 0 ||
	    parse_chap(cx, root, "discovery_mutual_chap",
		       &c->discovery_mutual_chap) < 0)
		return -1;
	if (c->discovery_mutual_chap && !c->discovery_chap)
		return conf_fail(cx, "", "'discovery_mutual_chap' needs 'discovery_chap'");

	c->io_threads = 16;
	v = json_object_get(root, "io_threads");
	if (v && conf_get_u32(cx, v, "/io_threads", 1, 256, &c->io_threads) < 0)
		return -1;

	iscsi_defaults(&c->iscsi);
	v = json_object_get(root, "iscsi");
	if (v) {
		if (!json_is_object(v))
			return conf_fail(cx, "/iscsi", "must be an object");
		json_object_foreach(v, key, item) {
			const struct opt *o = NULL;
			if (key[0] == '#')
				continue;
			for (size_t k = 0; k < ARRAY_SIZE(iscsi_opts); k++)
				if (!strcmp(iscsi_opts[k].name, key))
					o = &iscsi_opts[k];
			snprintf(p, sizeof p, "/iscsi/%s", key);
			if (!strcmp(key, "digests") ||
			    !strcmp(key, "header_digest") ||
			    !strcmp(key, "data_digest")) {
				const char *dv = json_string_value(item);
				int d;
				if (dv && !strcmp(dv, "offer"))
					d = DIGESTS_OFFER;
				else if (dv && !strcmp(dv, "require"))
					d = DIGESTS_REQUIRE;
				else if (dv && !strcmp(dv, "off"))
					d = DIGESTS_OFF;
				else
					return conf_fail(cx, p, "must be \"offer\", \"require\" or \"off\"");
				if (key[0] != 'd' || key[1] == 'i')
					c->iscsi.header_digest = d;
				if (key[0] == 'd')
					c->iscsi.data_digest = d;
				continue;
			}
			if (!o)
				return conf_fail(cx, "/iscsi", "unknown key '%s'", key);
			if (o->is_bool) {
				if (!json_is_boolean(item))
					return conf_fail(cx, p, "must be true or false");
				*(bool *)((char *)&c->iscsi + o->offset) =
					json_is_true(item);
			} else if (conf_get_u32(cx, item, p, o->min, o->max,
						(uint32_t *)((char *)&c->iscsi +
							     o->offset)) < 0) {
				return -1;
			}
		}
		if (c->iscsi.first_burst_length > c->iscsi.max_burst_length)
			return conf_fail(cx, "/iscsi/first_burst_length",
					 "must not exceed max_burst_length (%u)",
					 c->iscsi.max_burst_length);
	}

	v = json_object_get(root, "targets");
	if (!v)
		return conf_fail(cx, "", "'targets' is required");
	if (!json_is_array(v))
		return conf_fail(cx, "/targets", "must be an array");
	c->targets = calloc(json_array_size(v) + 1, sizeof *c->targets);
	json_array_foreach(v, i, item) {
		snprintf(p, sizeof p, "/targets/%zu", i);
		if (parse_target(cx, item, p, &c->targets[c->ntargets++]) < 0)
			return -1;
		for (size_t j = 0; j + 1 < c->ntargets; j++)
			if (!strcmp(c->targets[j].name, c->targets[i].name)) {
				snprintf(p, sizeof p, "/targets/%zu/name", i);
				return conf_fail(cx, p, "target '%s' is defined twice",
						 c->targets[i].name);
			}
	}
	return 0;
}

static struct conf *
load(json_t *root, struct ctx *cx, const char *label)
{
	struct conf *c = calloc(1, sizeof *c);

	if (!c) {
		snprintf(cx->err, cx->errsz, "out of memory");
		return NULL;
	}
	c->path = strdup(label);
	if (parse_top(cx, root, c) < 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_load_string(const char *json, const char *base_dir, const char *label,
		 char *err, size_t errsz)
{
	struct ctx cx = { .err = err, .errsz = errsz, .label = label,
			  .base_dir = base_dir };
	json_error_t je;
	json_t *root;
	struct conf *c;

	root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errsz, "%s:%d:%d: %s", label, je.line, je.column,
			 je.text);
		return NULL;
	}
	c = load(root, &cx, label);
	json_decref(root);
	return c;
}

struct conf *
conf_load_file(const char *path, char *err, size_t errsz)
{
	char *dup = strdup(path), *dir;
	char absdir[PATH_MAX];
	struct ctx cx = { .err = err, .errsz = errsz, .label = path };
	json_error_t je;
	json_t *root;
	struct conf *c;

	if (!dup) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	dir = dirname(dup);
	cx.base_dir = realpath(dir, absdir) ? absdir : dir;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (je.line < 0 || je.position == 0)
			snprintf(err, errsz, "%s: %s", path, je.text);
		else
			snprintf(err, errsz, "%s:%d:%d: %s", path, je.line,
				 je.column, je.text);
		free(dup);
		return NULL;
	}
	c = load(root, &cx, path);
	json_decref(root);
	free(dup);
	return c;
}

void
conf_free(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nportals; i++)
		free(c->portals[i]);
	free(c->portals);
	for (size_t t = 0; t < c->ntargets; t++) {
		struct conf_target *ct = &c->targets[t];
		free(ct->name);
		free(ct->alias);
		conf_chap_free(ct->chap);
		conf_chap_free(ct->mutual_chap);
		for (size_t i = 0; i < ct->nacl; i++)
			free(ct->acl[i]);
		free(ct->acl);
		free(ct->nets);
		for (size_t l = 0; l < ct->nluns; l++) {
			struct conf_lun *cl = &ct->luns[l];
			free(cl->serial);
			free(cl->backend_type);
			if (cl->pi) {
				free(cl->pi->golden);
				free(cl->pi->golden_format);
				free(cl->pi->vg);
				free(cl->pi->origin);
				free(cl->pi->thin_pool);
				free(cl->pi->prefix);
				free(cl->pi);
			}
			free(cl->pointer);
			for (size_t k = 0; k < cl->nbkeys; k++) {
				free(cl->bkeys[k].key);
				free(cl->bkeys[k].value);
			}
			free(cl->bkeys);
		}
		free(ct->luns);
	}
	free(c->targets);
	free(c->user);
	free(c->control_socket);
	free(c->metrics);
	conf_chap_free(c->discovery_chap);
	conf_chap_free(c->discovery_mutual_chap);
	free(c->state_dir);
	free(c->fuse_mount);
	free(c->path);
	free(c);
}
