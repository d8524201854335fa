/* conf.c: see conf.h.  Modelled on ctld's conf_verify: parse the whole map
 * fresh, check everything, and only then hand it over.  Messages name the
 * JSON pointer of the bad key, e.g. "/targets/0/luns/1/backend/size".
 *
 * Backend keys are not interpreted here: they are turned into strings and
 * handed to the backend's config() so backends never link jansson.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>

#include "log.h"

#include <jansson.h>

#include "conf.h"
#include "backend.h"
#include "util/util.h"

struct ctx {
	char *err;
	size_t errsz;
	const char *label;
	const char *base_dir;
	const char *ptr_prefix;		/* JSON pointer of the object */
	bool has_state_dir;
};

static int __attribute__((format(printf, 3, 4)))
fail(struct ctx *cx, const char *ptr, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(cx->err, cx->errsz, "%s: %s: ", cx->label,
		     ptr[0] ? ptr : "/");
	if (n < 0 || (size_t)n >= cx->errsz)
		return -1;
	va_start(ap, fmt);
	vsnprintf(cx->err + n, cx->errsz - n, fmt, ap);
	va_end(ap);
	return -1;
}

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

static int
check_keys(struct ctx *cx, json_t *obj, const char *ptr,
	   const char *const *allowed, const char *const *later)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		bool ok = false;
		if (key[0] == '#')	/* "#...": a comment, ignored */
			continue;
		for (size_t i = 0; allowed[i]; i++)
			if (!strcmp(allowed[i], key))
				ok = true;
		if (ok)
			continue;
		for (size_t i = 0; later && later[i]; i++)
			if (!strcmp(later[i], key))
				return fail(cx, ptr, "key '%s' is not supported by this version of iscsi-gw",
					    key);
		return fail(cx, ptr, "unknown key '%s'", key);
	}
	return 0;
}

static int
get_bool(struct ctx *cx, json_t *obj, const char *ptr, const char *key,
	 bool *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail(cx, ptr, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int
get_u32(struct ctx *cx, json_t *v, const char *ptr, uint32_t lo, uint32_t hi,
	uint32_t *out)
{
	json_int_t n;

	if (!json_is_integer(v))
		return fail(cx, ptr, "must be an integer");
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return fail(cx, ptr, "%" JSON_INTEGER_FORMAT
			    " is out of range (%u..%u)", n, lo, hi);
	*out = (uint32_t)n;
	return 0;
}

static int
get_string(struct ctx *cx, json_t *obj, const char *ptr, const char *key,
	   bool required, char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (required)
			return fail(cx, ptr, "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(cx, ptr, "'%s' must be a non-empty string", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : fail(cx, ptr, "out of memory");
}

/* Resolve a relative path against the map's folder. */
static char *
resolve_path(struct ctx *cx, const char *p)
{
	char *r;

	if (p[0] == '/' || !cx->base_dir)
		return strdup(p);
	if (asprintf(&r, "%s/%s", cx->base_dir, p) < 0)
		return NULL;
	return r;
}

bool
conf_valid_iscsi_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 223)
		return false;
	if (!strncmp(n, "iqn.", 4)) {
		/* iqn.yyyy-mm.reversed.domain[:anything] */
		if (len < 12 || !isdigit((unsigned char)n[4]) ||
		    !isdigit((unsigned char)n[5]) || !isdigit((unsigned char)n[6]) ||
		    !isdigit((unsigned char)n[7]) || n[8] != '-' ||
		    !isdigit((unsigned char)n[9]) || !isdigit((unsigned char)n[10]) ||
		    n[11] != '.')
			return false;
		if ((n[9] - '0') * 10 + (n[10] - '0') < 1 ||
		    (n[9] - '0') * 10 + (n[10] - '0') > 12)
			return false;	/* month 01..12 */
		for (size_t i = 12; i < len; i++) {
			unsigned char c = n[i];
			if (!(islower(c) || isdigit(c) || c == '.' || c == '-' ||
			      c == ':'))
				return false;
		}
		return len > 12;
	}
	if (!strncmp(n, "eui.", 4) || !strncmp(n, "naa.", 4)) {
		size_t hex = len - 4;
		if (n[0] == 'e' && hex != 16)
			return false;
		if (n[0] == 'n' && hex != 16 && hex != 32)
			return false;
		for (size_t i = 4; i < len; i++)
			if (!isxdigit((unsigned char)n[i]) ||
			    islower((unsigned char)n[i]))
				return false;
		return true;
	}
	return false;
}

int
conf_parse_portal(const char *s, char *host, size_t hostsz, unsigned *port)
{
	const char *colon;
	size_t hlen;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hlen = rb - s - 1;
		if (hlen == 0 || hlen >= hostsz)
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hlen = colon - s;
		if (hlen == 0 || hlen >= hostsz || memchr(s, ':', hlen))
			return -1;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

static bool lvm_name_ok(const char *s, size_t max);

/* "type": "lvm": a logical volume that the gateway creates when missing
 * (with "size") and serves through the blockdev backend; `iscsi-gw
 * provision` creates, grows and removes it. */
static const char *const lvm_backend_keys[] = {
	"type", "vg", "lv", "size", "thin_pool", "direct", "aio", NULL
};

static int
parse_lvm_backend(struct ctx *cx, json_t *bj, const char *ptr,
		  struct conf_lun *l)
{
	static const char *const names[] = { "vg", "lv", "thin_pool" };
	char kptr[300];
	json_t *v;
	uint64_t size;

	if (check_keys(cx, bj, ptr, lvm_backend_keys, NULL) < 0)
		return -1;
	l->bkeys = calloc(6, sizeof *l->bkeys);
	if (!l->bkeys)
		return fail(cx, ptr, "out of memory");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *val = NULL;

		snprintf(kptr, sizeof kptr, "%s/%s", ptr, names[i]);
		if (get_string(cx, bj, ptr, names[i], i < 2, &val) < 0)
			return -1;
		if (!val)
			continue;
		if (!lvm_name_ok(val, 127)) {
			free(val);
			return fail(cx, kptr, "must be an LVM name: up to 127 characters of A-Z a-z 0-9 + _ . -, not starting with -");
		}
		l->bkeys[l->nbkeys].key = strdup(names[i]);
		l->bkeys[l->nbkeys++].value = val;
	}
	v = json_object_get(bj, "size");
	if (v) {
		char buf[40];

		snprintf(kptr, sizeof kptr, "%s/size", ptr);
		if (json_is_integer(v) && json_integer_value(v) > 0)
			size = (uint64_t)json_integer_value(v);
		else if (!json_is_string(v) ||
			 parse_size(json_string_value(v), &size) < 0 || !size)
			return fail(cx, kptr, "must be a size such as \"10G\"");
		if (size % 4096)
			return fail(cx, kptr, "must be a multiple of 4096 bytes");
		snprintf(buf, sizeof buf, "%" PRIu64, size);
		l->bkeys[l->nbkeys].key = strdup("size");
		l->bkeys[l->nbkeys++].value = strdup(buf);
	}
	/* Passed on to the blockdev backend. */
	for (size_t i = 0; i < 2; i++) {
		const char *k = i ? "aio" : "direct";

		v = json_object_get(bj, k);
		if (!v)
			continue;
		if (!json_is_boolean(v)) {
			snprintf(kptr, sizeof kptr, "%s/%s", ptr, k);
			return fail(cx, kptr, "must be true or false");
		}
		l->bkeys[l->nbkeys].key = strdup(k);
		l->bkeys[l->nbkeys++].value = strdup(json_is_true(v) ? "true" : "false");
	}
	return 0;
}

static int
parse_backend(struct ctx *cx, json_t *bj, const char *ptr,
	      struct conf_lun *l)
{
	const char *key;
	json_t *v;
	char kptr[256];
	struct backend *b;
	int r;

	if (!json_is_object(bj))
		return fail(cx, ptr, "must be an object");
	if (get_string(cx, bj, ptr, "type", true, &l->backend_type) < 0)
		return -1;
	if (!strcmp(l->backend_type, "lvm"))
		return parse_lvm_backend(cx, bj, ptr, l);
	if (!backend_lookup(l->backend_type)) {
		if (!strcmp(l->backend_type, "nbd") ||
		    !strcmp(l->backend_type, "nbdkit") ||
		    !strcmp(l->backend_type, "qemu-nbd"))
			return fail(cx, ptr, "backend type '%s' needs libnbd, which this build of iscsi-gw lacks",
				    l->backend_type);
		return fail(cx, ptr, "unknown backend type '%s' (known: file, memory, blockdev, nbd, nbdkit, qemu-nbd)",
			    l->backend_type);
	}
	l->bkeys = calloc(json_object_size(bj), sizeof *l->bkeys);
	if (!l->bkeys)
		return fail(cx, ptr, "out of memory");
	json_object_foreach(bj, key, v) {
		char *val = NULL;

		if (!strcmp(key, "type") || key[0] == '#')
			continue;
		snprintf(kptr, sizeof kptr, "%s/%s", ptr, key);
		if (json_is_string(v)) {
			if (strlen(json_string_value(v)) != json_string_length(v))
				return fail(cx, kptr, "contains a NUL byte");
			val = !strcmp(key, "path") ?
				resolve_path(cx, json_string_value(v)) :
				strdup(json_string_value(v));
		} else if (json_is_integer(v)) {
			if (json_integer_value(v) < 0)
				return fail(cx, kptr, "must not be negative");
			if (asprintf(&val, "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v)) < 0)
				val = NULL;
		} else if (json_is_boolean(v)) {
			val = strdup(json_is_true(v) ? "true" : "false");
		} else if (json_is_array(v)) {
			/* An array of strings reaches config() once per
			 * element, in order (nbdkit's "args", "filters"). */
			size_t ai;
			json_t *el;
			struct conf_kv *nk = realloc(l->bkeys,
				(l->nbkeys + json_object_size(bj) +
				 json_array_size(v) + 1) *
				sizeof *l->bkeys);
			if (!nk)
				return fail(cx, kptr, "out of memory");
			l->bkeys = nk;
			json_array_foreach(v, ai, el) {
				char eptr[300];
				snprintf(eptr, sizeof eptr, "%s/%zu", kptr, ai);
				if (!json_is_string(el) ||
				    strlen(json_string_value(el)) != json_string_length(el))
					return fail(cx, eptr, "must be a string");
				l->bkeys[l->nbkeys].key = strdup(key);
				l->bkeys[l->nbkeys].value = strdup(json_string_value(el));
				l->nbkeys++;
			}
			continue;
		} else {
			return fail(cx, kptr, "must be a string, a number, a boolean or an array of strings");
		}
		if (!val)
			return fail(cx, kptr, "out of memory");
		l->bkeys[l->nbkeys].key = strdup(key);
		l->bkeys[l->nbkeys].value = val;
		l->nbkeys++;
	}
	/* Let the backend check its keys now, so `check` catches them. */
	b = backend_new(l->backend_type);
	if (!b)
		return fail(cx, ptr, "%s", backend_last_error());
	for (size_t i = 0; i < l->nbkeys; i++) {
		backend_clear_error();
		r = backend_config(b, l->bkeys[i].key, l->bkeys[i].value);
		if (r < 0) {
			snprintf(kptr, sizeof kptr, "%s/%s", ptr, l->bkeys[i].key);
			fail(cx, kptr, "%s", backend_last_error()[0] ?
			     backend_last_error() : strerror(-r));
			backend_free(b);
			return -1;
		}
	}
	backend_clear_error();
	r = backend_config_complete(b);
	if (r < 0) {
		fail(cx, ptr, "%s", backend_last_error()[0] ?
		     backend_last_error() : strerror(-r));
		backend_free(b);
		return -1;
	}
	backend_free(b);
	return 0;
}

static const char *const lun_keys[] = {
	"lun", "backend", "per_initiator", "block_size", "read_only", "thin",
	"write_cache", "serial", "fuse_writable", "removable", NULL
};
static const char *const lun_later[] = { NULL };

static const char *const pi_keys[] = {
	"kind", "golden", "golden_format", "size", "vg", "origin", "thin_pool",
	"prefix", "policy", NULL
};

/* LVM's rule for VG and LV names: [A-Za-z0-9+_.-], not starting with
 * '-', and never "." or "..". */
static bool
lvm_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '-' || !strcmp(s, ".") ||
	    !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("+_.-", *s))
			return false;
	return true;
}

/* "per_initiator": { "kind": "overlay"|"file"|"lvm", ... } */
static int
parse_per_initiator(struct ctx *cx, json_t *pj, const char *ptr,
		    struct conf_lun *l)
{
	struct conf_pi *pi;
	char *kind = NULL, *policy = NULL;
	char kp[300];
	json_t *v;
	int r = -1;

	if (!json_is_object(pj))
		return fail(cx, ptr, "must be an object with 'kind'");
	if (check_keys(cx, pj, ptr, pi_keys, NULL) < 0)
		return -1;
	pi = l->pi = calloc(1, sizeof *pi);
	if (!pi)
		return fail(cx, ptr, "out of memory");
	snprintf(kp, sizeof kp, "%s/kind", ptr);
	if (get_string(cx, pj, ptr, "kind", true, &kind) < 0)
		goto out;
	if (!strcmp(kind, "overlay"))
		pi->kind = PI_OVERLAY;
	else if (!strcmp(kind, "file"))
		pi->kind = PI_FILE;
	else if (!strcmp(kind, "lvm"))
		pi->kind = PI_LVM;
	else {
		fail(cx, kp, "unknown kind '%s' (overlay, file, lvm)", kind);
		goto out;
	}
	snprintf(kp, sizeof kp, "%s/policy", ptr);
	if (get_string(cx, pj, ptr, "policy", false, &policy) < 0)
		goto out;
	if (!policy || !strcmp(policy, "keep"))
		pi->policy = PI_KEEP;
	else if (!strcmp(policy, "reset"))
		pi->policy = PI_RESET;
	else if (!strcmp(policy, "delete"))
		pi->policy = PI_DELETE;
	else {
		fail(cx, kp, "unknown policy '%s' (keep, reset, delete)", policy);
		goto out;
	}
	v = json_object_get(pj, "size");
	snprintf(kp, sizeof kp, "%s/size", ptr);
	if (v) {
		if (json_is_integer(v) && json_integer_value(v) > 0)
			pi->size = (uint64_t)json_integer_value(v);
		else if (!json_is_string(v) ||
			 parse_size(json_string_value(v), &pi->size) < 0 ||
			 pi->size == 0) {
			fail(cx, kp, "must be a size such as \"10G\" (K, M, G, T: powers of 1024)");
			goto out;
		}
		if (pi->size % 4096) {
			fail(cx, kp, "must be a multiple of 4096 bytes");
			goto out;
		}
	}
	if (get_string(cx, pj, ptr, "golden", false, &pi->golden) < 0 ||
	    get_string(cx, pj, ptr, "golden_format", false, &pi->golden_format) < 0 ||
	    get_string(cx, pj, ptr, "vg", false, &pi->vg) < 0 ||
	    get_string(cx, pj, ptr, "origin", false, &pi->origin) < 0 ||
	    get_string(cx, pj, ptr, "thin_pool", false, &pi->thin_pool) < 0 ||
	    get_string(cx, pj, ptr, "prefix", false, &pi->prefix) < 0)
		goto out;
	switch (pi->kind) {
	case PI_OVERLAY:
		if (!pi->golden) {
			fail(cx, ptr, "'golden' is required for kind overlay");
			goto out;
		}
		{
			char *abs = resolve_path(cx, pi->golden);
			free(pi->golden);
			pi->golden = abs;
		}
		if (!pi->golden_format)
			pi->golden_format = strdup("raw");
		if (strspn(pi->golden_format, "abcdefghijklmnopqrstuvwxyz0123456789") !=
		    strlen(pi->golden_format)) {
			snprintf(kp, sizeof kp, "%s/golden_format", ptr);
			fail(cx, kp, "must be a qemu-img format name such as raw or qcow2");
			goto out;
		}
		if (pi->size || pi->vg || pi->origin || pi->thin_pool || pi->prefix) {
			fail(cx, ptr, "kind overlay takes 'golden' (and 'golden_format', 'policy') only: its size is the golden image's");
			goto out;
		}
		break;
	case PI_FILE:
		if (!pi->size) {
			fail(cx, ptr, "'size' is required for kind file");
			goto out;
		}
		if (pi->golden || pi->golden_format || pi->vg || pi->origin ||
		    pi->thin_pool || pi->prefix) {
			fail(cx, ptr, "kind file takes 'size' (and 'policy') only");
			goto out;
		}
		break;
	case PI_LVM:
		snprintf(kp, sizeof kp, "%s/vg", ptr);
		if (!pi->vg) {
			fail(cx, ptr, "'vg' is required for kind lvm");
			goto out;
		}
		if (!lvm_name_ok(pi->vg, 127)) {
			fail(cx, kp, "'%s' is not a volume group name", pi->vg);
			goto out;
		}
		if (pi->origin && !lvm_name_ok(pi->origin, 127)) {
			snprintf(kp, sizeof kp, "%s/origin", ptr);
			fail(cx, kp, "'%s' is not a logical volume name", pi->origin);
			goto out;
		}
		if (pi->thin_pool && !lvm_name_ok(pi->thin_pool, 127)) {
			snprintf(kp, sizeof kp, "%s/thin_pool", ptr);
			fail(cx, kp, "'%s' is not a logical volume name", pi->thin_pool);
			goto out;
		}
		if (!pi->prefix)
			pi->prefix = strdup("igw");
		if (!lvm_name_ok(pi->prefix, 32)) {
			snprintf(kp, sizeof kp, "%s/prefix", ptr);
			fail(cx, kp, "must be up to 32 characters of A-Z a-z 0-9 + _ . -");
			goto out;
		}
		if (pi->origin && pi->size) {
			fail(cx, ptr, "kind lvm takes 'origin' (a thin snapshot) or 'size' (a fresh volume), not both");
			goto out;
		}
		if (!pi->origin && !pi->size) {
			fail(cx, ptr, "kind lvm needs 'origin' (with 'thin_pool') or 'size'");
			goto out;
		}
		if (pi->origin && !pi->thin_pool) {
			fail(cx, ptr, "'thin_pool' is required with 'origin': snapshots are thin snapshots");
			goto out;
		}
		if (pi->golden || pi->golden_format) {
			fail(cx, ptr, "kind lvm takes 'vg', 'origin', 'thin_pool', 'size', 'prefix' and 'policy'");
			goto out;
		}
		break;
	}
	r = 0;
out:
	free(kind);
	free(policy);
	return r;
}

static int
parse_lun(struct ctx *cx, json_t *lj, const char *ptr, struct conf_lun *l)
{
	char p[256];
	json_t *v;

	l->pointer = strdup(ptr);
	if (!json_is_object(lj))
		return fail(cx, ptr, "must be an object");
	if (check_keys(cx, lj, ptr, lun_keys, lun_later) < 0)
		return -1;
	v = json_object_get(lj, "lun");
	snprintf(p, sizeof p, "%s/lun", ptr);
	if (!v)
		return fail(cx, ptr, "'lun' is required");
	if (get_u32(cx, v, p, 0, 16383, &l->lun) < 0)
		return -1;
	l->block_size = 512;
	v = json_object_get(lj, "block_size");
	if (v) {
		snprintf(p, sizeof p, "%s/block_size", ptr);
		if (get_u32(cx, v, p, 512, 4096, &l->block_size) < 0)
			return -1;
		if (l->block_size != 512 && l->block_size != 4096)
			return fail(cx, p, "must be 512 or 4096");
		l->block_size_set = true;
	}
	if (get_bool(cx, lj, ptr, "read_only", &l->read_only) < 0 ||
	    get_bool(cx, lj, ptr, "thin", &l->thin) < 0 ||
	    get_bool(cx, lj, ptr, "write_cache", &l->write_cache) < 0 ||
	    get_bool(cx, lj, ptr, "fuse_writable", &l->fuse_writable) < 0 ||
	    get_bool(cx, lj, ptr, "removable", &l->removable) < 0 ||
	    get_string(cx, lj, ptr, "serial", false, &l->serial) < 0)
		return -1;
	if (l->serial && strlen(l->serial) > 64)
		return fail(cx, ptr, "'serial' is longer than 64 characters");
	v = json_object_get(lj, "per_initiator");
	if (v) {
		if (json_object_get(lj, "backend"))
			return fail(cx, ptr, "a LUN has 'backend' or 'per_initiator', not both");
		if (!cx->has_state_dir)
			return fail(cx, ptr, "'per_initiator' keeps images under 'state_dir', which the map does not set");
		snprintf(p, sizeof p, "%s/per_initiator", ptr);
		return parse_per_initiator(cx, v, p, l);
	}
	v = json_object_get(lj, "backend");
	snprintf(p, sizeof p, "%s/backend", ptr);
	if (!v)
		return fail(cx, ptr, "'backend' (or 'per_initiator') is required");
	return parse_backend(cx, v, p, l);
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
		return fail(cx, ptr, "must be an object with user and secret_file");
	if (json_object_get(v, "secret"))
		return fail(cx, ptr, "inline 'secret' is not accepted: put the secret in a file and name it with 'secret_file'");
	if (check_keys(cx, v, ptr, chap_keys, chap_later) < 0)
		return -1;
	ch = calloc(1, sizeof *ch);
	if (!ch)
		return fail(cx, ptr, "out of memory");
	*out = ch;
	if (get_string(cx, v, ptr, "user", true, &ch->user) < 0 ||
	    get_string(cx, v, ptr, "secret_file", true, &file) < 0)
		return -1;
	if (strlen(ch->user) > 255) {
		free(file);
		return fail(cx, ptr, "'user' is longer than 255 characters");
	}
	{
		char *abs = resolve_path(cx, file);
		free(file);
		file = abs;
	}
	snprintf(ptr, sizeof ptr, "%s/%s/secret_file", cx->ptr_prefix, key);
	f = file ? fopen(file, "r") : NULL;
	if (!f) {
		fail(cx, ptr, "%s: %s", file ? file : "?", strerror(errno));
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
		fail(cx, ptr, "%s: the first line (the secret) is empty", file);
		free(file);
		return -1;
	}
	if (n < 12)
		log_warn("%s: CHAP secret is shorter than 12 bytes (96 bits)", file);
	ch->secret = strdup(line);
	ch->secret_len = n;
	memset(line, 0, sizeof line);
	free(file);
	return ch->secret ? 0 : fail(cx, ptr, "out of memory");
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
		return fail(cx, ptr, "must be an object");
	if (check_keys(cx, tj, ptr, target_keys, target_later) < 0)
		return -1;
	if (get_string(cx, tj, ptr, "name", true, &t->name) < 0)
		return -1;
	snprintf(p, sizeof p, "%s/name", ptr);
	if (!conf_valid_iscsi_name(t->name))
		return fail(cx, p, "'%s' is not a valid iSCSI name (iqn.yyyy-mm.reversed.domain[:id], eui.16HEX or naa.16/32HEX, lower case)",
			    t->name);
	if (get_string(cx, tj, ptr, "alias", false, &t->alias) < 0)
		return -1;
	if (t->alias && strlen(t->alias) > 255)
		return fail(cx, ptr, "'alias' is longer than 255 characters");
	cx->ptr_prefix = ptr;
	if (parse_chap(cx, tj, "chap", &t->chap) < 0 ||
	    parse_chap(cx, tj, "mutual_chap", &t->mutual_chap) < 0)
		return -1;
	if (t->mutual_chap && !t->chap)
		return fail(cx, ptr, "'mutual_chap' needs 'chap' (the initiator authenticates first)");
	v = json_object_get(tj, "acl");
	if (v) {
		snprintf(p, sizeof p, "%s/acl", ptr);
		if (!json_is_array(v))
			return fail(cx, p, "must be an array of initiator names");
		t->acl = calloc(json_array_size(v) + 1, sizeof(char *));
		json_array_foreach(v, i, item) {
			snprintf(p, sizeof p, "%s/acl/%zu", ptr, i);
			if (!json_is_string(item) ||
			    !conf_valid_iscsi_name(json_string_value(item)))
				return fail(cx, p, "must be a valid iSCSI initiator name");
			t->acl[t->nacl++] = strdup(json_string_value(item));
		}
	}
	v = json_object_get(tj, "networks");
	if (v) {
		snprintf(p, sizeof p, "%s/networks", ptr);
		if (!json_is_array(v) || json_array_size(v) == 0)
			return fail(cx, p, "must be a non-empty array of addresses or networks (\"10.0.0.0/8\", \"2001:db8::/32\")");
		t->nets = calloc(json_array_size(v), sizeof *t->nets);
		if (!t->nets)
			return fail(cx, p, "out of memory");
		json_array_foreach(v, i, item) {
			snprintf(p, sizeof p, "%s/networks/%zu", ptr, i);
			if (!json_is_string(item) ||
			    conf_parse_net(json_string_value(item),
					   &t->nets[t->nnets]) < 0)
				return fail(cx, p, "must be an IPv4 or IPv6 address, optionally /PREFIX (\"10.0.0.0/8\", \"::1\")");
			t->nnets++;
		}
	}
	v = json_object_get(tj, "luns");
	snprintf(p, sizeof p, "%s/luns", ptr);
	if (!v)
		return fail(cx, ptr, "'luns' is required");
	if (!json_is_array(v))
		return fail(cx, p, "must be an array");
	t->luns = calloc(json_array_size(v) + 1, sizeof *t->luns);
	json_array_foreach(v, i, item) {
		snprintf(p, sizeof p, "%s/luns/%zu", ptr, i);
		if (parse_lun(cx, item, p, &t->luns[t->nluns++]) < 0)
			return -1;
		for (size_t j = 0; j + 1 < t->nluns; j++)
			if (t->luns[j].lun == t->luns[i].lun) {
				snprintf(p, sizeof p, "%s/luns/%zu/lun", ptr, i);
				return fail(cx, p, "LUN %u is already used by %s",
					    t->luns[i].lun, t->luns[j].pointer);
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

	if (get_string(cx, root, "", "control_socket", false,
		       &c->control_socket) < 0)
		return -1;
	if (c->control_socket) {
		char *r = resolve_path(cx, c->control_socket);

		free(c->control_socket);
		c->control_socket = r;
		if (!r)
			return fail(cx, "/control_socket", "out of memory");
		/* sockaddr_un.sun_path holds 108 bytes with the NUL. */
		if (strlen(r) > 107)
			return fail(cx, "/control_socket",
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
		return fail(cx, "/metrics",
			    "must be \"HOST:PORT\" or \"[IPV6]:PORT\" (the Prometheus endpoint)");
	c->metrics = strdup(json_string_value(v));
	return c->metrics ? 0 : fail(cx, "/metrics", "out of memory");
}

/* "fuse_mount": the folder of the FUSE view (fuse/fuse-view.c), relative
 * to the map's folder.  A build without libfuse3 refuses it here, so that
 * `check` says so too. */
static int
parse_fuse_mount(struct ctx *cx, json_t *root, struct conf *c)
{
	if (get_string(cx, root, "", "fuse_mount", false, &c->fuse_mount) < 0)
		return -1;
	if (!c->fuse_mount)
		return 0;
#ifndef HAVE_FUSE3
	return fail(cx, "/fuse_mount", "the FUSE view needs libfuse3, which this build of iscsi-gw lacks");
#else
	{
		char *r = resolve_path(cx, c->fuse_mount);

		free(c->fuse_mount);
		c->fuse_mount = r;
		if (!r)
			return fail(cx, "/fuse_mount", "out of memory");
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
		return fail(cx, "", "the map must be a JSON object");
	if (check_keys(cx, root, "", top_keys, top_later) < 0)
		return -1;

	v = json_object_get(root, "portals");
	if (!v)
		return fail(cx, "", "'portals' is required");
	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(cx, "/portals", "must be a non-empty array of \"HOST:PORT\"");
	c->portals = calloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, i, item) {
		char host[256];
		unsigned port;

		snprintf(p, sizeof p, "/portals/%zu", i);
		if (!json_is_string(item) ||
		    conf_parse_portal(json_string_value(item), host, sizeof host,
				      &port) < 0)
			return fail(cx, p, "must be \"HOST:PORT\" or \"[IPV6]:PORT\"");
		c->portals[c->nportals++] = strdup(json_string_value(item));
	}

	if (get_string(cx, root, "", "state_dir", false, &c->state_dir) < 0)
		return -1;
	if (c->state_dir) {
		char *r = resolve_path(cx, c->state_dir);
		free(c->state_dir);
		c->state_dir = r;
		cx->has_state_dir = true;
	}
	if (parse_fuse_mount(cx, root, c) < 0)
		return -1;

	if (get_string(cx, root, "", "user", false, &c->user) < 0)
		return -1;
	if (parse_control(cx, root, c) < 0)
		return -1;
	cx->ptr_prefix = "";
	if (parse_chap(cx, root, "discovery_chap", &c->discovery_chap) < 0 ||
	    parse_chap(cx, root, "discovery_mutual_chap",
		       &c->discovery_mutual_chap) < 0)
		return -1;
	if (c->discovery_mutual_chap && !c->discovery_chap)
		return fail(cx, "", "'discovery_mutual_chap' needs 'discovery_chap'");

	c->io_threads = 16;
	v = json_object_get(root, "io_threads");
	if (v && get_u32(cx, v, "/io_threads", 1, 256, &c->io_threads) < 0)
		return -1;

	iscsi_defaults(&c->iscsi);
	v = json_object_get(root, "iscsi");
	if (v) {
		if (!json_is_object(v))
			return fail(cx, "/iscsi", "must be an object");
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
					return fail(cx, p, "must be \"offer\", \"require\" or \"off\"");
				if (key[0] != 'd' || key[1] == 'i')
					c->iscsi.header_digest = d;
				if (key[0] == 'd')
					c->iscsi.data_digest = d;
				continue;
			}
			if (!o)
				return fail(cx, "/iscsi", "unknown key '%s'", key);
			if (o->is_bool) {
				if (!json_is_boolean(item))
					return fail(cx, p, "must be true or false");
				*(bool *)((char *)&c->iscsi + o->offset) =
					json_is_true(item);
			} else if (get_u32(cx, item, p, o->min, o->max,
					   (uint32_t *)((char *)&c->iscsi +
							o->offset)) < 0) {
				return -1;
			}
		}
		if (c->iscsi.first_burst_length > c->iscsi.max_burst_length)
			return fail(cx, "/iscsi/first_burst_length",
				    "must not exceed max_burst_length (%u)",
				    c->iscsi.max_burst_length);
	}

	v = json_object_get(root, "targets");
	if (!v)
		return fail(cx, "", "'targets' is required");
	if (!json_is_array(v))
		return fail(cx, "/targets", "must be an array");
	c->targets = calloc(json_array_size(v) + 1, sizeof *c->targets);
	json_array_foreach(v, i, item) {
		snprintf(p, sizeof p, "/targets/%zu", i);
		if (parse_target(cx, item, p, &c->targets[c->ntargets++]) < 0)
			return -1;
		for (size_t j = 0; j + 1 < c->ntargets; j++)
			if (!strcmp(c->targets[j].name, c->targets[i].name)) {
				snprintf(p, sizeof p, "/targets/%zu/name", i);
				return fail(cx, p, "target '%s' is defined twice",
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

int
conf_parse_net(const char *s, struct conf_net *net)
{
	char buf[64], *slash, *end;
	unsigned long prefix;
	unsigned max;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(net, 0, sizeof *net);
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	prefix = max;
	if (slash) {
		prefix = strtoul(slash, &end, 10);
		if (!*slash || *end || prefix > max)
			return -1;
	}
	net->prefix = (unsigned)prefix;
	/* Clear the host bits: "10.1.2.3/8" is 10.0.0.0/8. */
	for (unsigned bit = net->prefix; bit < max; bit++)
		net->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return 0;
}

bool
conf_net_match(const struct conf_net *nets, size_t n, const struct sockaddr *sa)
{
	uint8_t a[16];
	int family;

	if (!nets)
		return true;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		/* An IPv4 peer on an IPv6 socket: ::ffff:a.b.c.d. */
		if (!memcmp(b, mapped, 12)) {
			family = AF_INET;
			memcpy(a, b + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, b, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct conf_net *net = &nets[i];
		unsigned full = net->prefix / 8, rest = net->prefix % 8;

		if (net->family != family || memcmp(a, net->addr, full))
			continue;
		if (rest && ((a[full] ^ net->addr[full]) & (uint8_t)(0xff << (8 - rest))))
			continue;
		return true;
	}
	return false;
}
