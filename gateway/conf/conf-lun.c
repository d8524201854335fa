/* conf-lun.c: one element of a target's "luns" (parse_lun, for conf.c):
 * its settings, then either its backend or its "per_initiator" template.
 *
 * Backend keys are not interpreted here: they are turned into strings and
 * handed to the backend's config() so backends never link jansson.  The
 * backend still checks them now, so `iscsi-gw check` catches a bad key.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "conf-internal.h"
#include "backend.h"
#include "util/util.h"

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

	if (conf_check_keys(cx, bj, ptr, lvm_backend_keys, NULL) < 0)
		return -1;
	l->bkeys = calloc(6, sizeof *l->bkeys);
	if (!l->bkeys)
		return conf_fail(cx, ptr, "out of memory");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *val = NULL;

		snprintf(kptr, sizeof kptr, "%s/%s", ptr, names[i]);
		if (conf_get_string(cx, bj, ptr, names[i], i < 2, &val) < 0)
			return -1;
		if (!val)
			continue;
		if (!lvm_name_ok(val, 127)) {
			free(val);
			return conf_fail(cx, kptr, "must be an LVM name: up to 127 characters of A-Z a-z 0-9 + _ . -, not starting with -");
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
			return conf_fail(cx, kptr,
					 "must be a size such as \"10G\"");
		if (size % 4096)
			return conf_fail(cx, kptr, "must be a multiple of 4096 bytes");
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
			return conf_fail(cx, kptr, "must be true or false");
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
		return conf_fail(cx, ptr, "must be an object");
	if (conf_get_string(cx, bj, ptr, "type", true, &l->backend_type) < 0)
		return -1;
	if (!strcmp(l->backend_type, "lvm"))
		return parse_lvm_backend(cx, bj, ptr, l);
	if (!backend_lookup(l->backend_type)) {
		if (!strcmp(l->backend_type, "nbd") ||
		    !strcmp(l->backend_type, "nbdkit") ||
		    !strcmp(l->backend_type, "qemu-nbd"))
			return conf_fail(cx, ptr, "backend type '%s' needs libnbd, which this build of iscsi-gw lacks",
					 l->backend_type);
		return conf_fail(cx, ptr, "unknown backend type '%s' (known: file, memory, blockdev, nbd, nbdkit, qemu-nbd)",
				 l->backend_type);
	}
	l->bkeys = calloc(json_object_size(bj), sizeof *l->bkeys);
	if (!l->bkeys)
		return conf_fail(cx, ptr, "out of memory");
	json_object_foreach(bj, key, v) {
		char *val = NULL;

		if (!strcmp(key, "type") || key[0] == '#')
			continue;
		snprintf(kptr, sizeof kptr, "%s/%s", ptr, key);
		if (json_is_string(v)) {
			if (strlen(json_string_value(v)) != json_string_length(v))
				return conf_fail(cx, kptr,
						 "contains a NUL byte");
			val = !strcmp(key, "path") ?
				conf_resolve_path(cx, json_string_value(v)) :
				strdup(json_string_value(v));
		} else if (json_is_integer(v)) {
			if (json_integer_value(v) < 0)
				return conf_fail(cx, kptr,
						 "must not be negative");
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
				return conf_fail(cx, kptr, "out of memory");
			l->bkeys = nk;
			json_array_foreach(v, ai, el) {
				char eptr[300];
				snprintf(eptr, sizeof eptr, "%s/%zu", kptr, ai);
				if (!json_is_string(el) ||
				    strlen(json_string_value(el)) != json_string_length(el))
					return conf_fail(cx, eptr, "must be a string");
				l->bkeys[l->nbkeys].key = strdup(key);
				l->bkeys[l->nbkeys].value = strdup(json_string_value(el));
				l->nbkeys++;
			}
			continue;
		} else {
			return conf_fail(cx, kptr, "must be a string, a number, a boolean or an array of strings");
		}
		if (!val)
			return conf_fail(cx, kptr, "out of memory");
		l->bkeys[l->nbkeys].key = strdup(key);
		l->bkeys[l->nbkeys].value = val;
		l->nbkeys++;
	}
	/* Let the backend check its keys now, so `check` catches them. */
	b = backend_new(l->backend_type);
	if (!b)
		return conf_fail(cx, ptr, "%s", backend_last_error());
	for (size_t i = 0; i < l->nbkeys; i++) {
		backend_clear_error();
		r = backend_config(b, l->bkeys[i].key, l->bkeys[i].value);
		if (r < 0) {
			snprintf(kptr, sizeof kptr, "%s/%s", ptr, l->bkeys[i].key);
			conf_fail(cx, kptr, "%s", backend_last_error()[0] ?
				  backend_last_error() : strerror(-r));
			backend_free(b);
			return -1;
		}
	}
	backend_clear_error();
	r = backend_config_complete(b);
	if (r < 0) {
		conf_fail(cx, ptr, "%s", backend_last_error()[0] ?
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
		return conf_fail(cx, ptr, "must be an object with 'kind'");
	if (conf_check_keys(cx, pj, ptr, pi_keys, NULL) < 0)
		return -1;
	pi = l->pi = calloc(1, sizeof *pi);
	if (!pi)
		return conf_fail(cx, ptr, "out of memory");
	snprintf(kp, sizeof kp, "%s/kind", ptr);
	if (conf_get_string(cx, pj, ptr, "kind", true, &kind) < 0)
		goto out;
	if (!strcmp(kind, "overlay"))
		pi->kind = PI_OVERLAY;
	else if (!strcmp(kind, "file"))
		pi->kind = PI_FILE;
	else if (!strcmp(kind, "lvm"))
		pi->kind = PI_LVM;
	else {
		conf_fail(cx, kp,
			  "unknown kind '%s' (overlay, file, lvm)", kind);
		goto out;
	}
	snprintf(kp, sizeof kp, "%s/policy", ptr);
	if (conf_get_string(cx, pj, ptr, "policy", false, &policy) < 0)
		goto out;
	if (!policy || !strcmp(policy, "keep"))
		pi->policy = PI_KEEP;
	else if (!strcmp(policy, "reset"))
		pi->policy = PI_RESET;
	else if (!strcmp(policy, "delete"))
		pi->policy = PI_DELETE;
	else {
		conf_fail(cx, kp, "unknown policy '%s' (keep, reset, delete)", policy);
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
			conf_fail(cx, kp, "must be a size such as \"10G\" (K, M, G, T: powers of 1024)");
			goto out;
		}
		if (pi->size % 4096) {
			conf_fail(cx, kp, "must be a multiple of 4096 bytes");
			goto out;
		}
	}
	if (conf_get_string(cx, pj, ptr, "golden", false, &pi->golden) < 0 ||
	    conf_get_string(cx, pj, ptr, "golden_format", false, &pi->golden_format) < 0 ||
	    conf_get_string(cx, pj, ptr, "vg", false, &pi->vg) < 0 ||
	    conf_get_string(cx, pj, ptr, "origin", false, &pi->origin) < 0 ||
	    conf_get_string(cx, pj, ptr, "thin_pool", false,
			    &pi->thin_pool) < 0 ||
	    conf_get_string(cx, pj, ptr, "prefix", false, &pi->prefix) < 0)
		goto out;
	switch (pi->kind) {
	case PI_OVERLAY:
		if (!pi->golden) {
			conf_fail(cx, ptr,
				  "'golden' is required for kind overlay");
			goto out;
		}
		{
			char *abs = conf_resolve_path(cx, pi->golden);
			free(pi->golden);
			pi->golden = abs;
		}
		if (!pi->golden_format)
			pi->golden_format = strdup("raw");
		if (strspn(pi->golden_format, "abcdefghijklmnopqrstuvwxyz0123456789") !=
		    strlen(pi->golden_format)) {
			snprintf(kp, sizeof kp, "%s/golden_format", ptr);
			conf_fail(cx, kp, "must be a qemu-img format name such as raw or qcow2");
			goto out;
		}
		if (pi->size || pi->vg || pi->origin || pi->thin_pool || pi->prefix) {
			conf_fail(cx, ptr, "kind overlay takes 'golden' (and 'golden_format', 'policy') only: its size is the golden image's");
			goto out;
		}
		break;
	case PI_FILE:
		if (!pi->size) {
			conf_fail(cx, ptr, "'size' is required for kind file");
			goto out;
		}
		if (pi->golden || pi->golden_format || pi->vg || pi->origin ||
		    pi->thin_pool || pi->prefix) {
			conf_fail(cx, ptr, "kind file takes 'size' (and 'policy') only");
			goto out;
		}
		break;
	case PI_LVM:
		snprintf(kp, sizeof kp, "%s/vg", ptr);
		if (!pi->vg) {
			conf_fail(cx, ptr, "'vg' is required for kind lvm");
			goto out;
		}
		if (!lvm_name_ok(pi->vg, 127)) {
			conf_fail(cx, kp,
				  "'%s' is not a volume group name", pi->vg);
			goto out;
		}
		if (pi->origin && !lvm_name_ok(pi->origin, 127)) {
			snprintf(kp, sizeof kp, "%s/origin", ptr);
			conf_fail(cx, kp, "'%s' is not a logical volume name", pi->origin);
			goto out;
		}
		if (pi->thin_pool && !lvm_name_ok(pi->thin_pool, 127)) {
			snprintf(kp, sizeof kp, "%s/thin_pool", ptr);
			conf_fail(cx, kp, "'%s' is not a logical volume name", pi->thin_pool);
			goto out;
		}
		if (!pi->prefix)
			pi->prefix = strdup("igw");
		if (!lvm_name_ok(pi->prefix, 32)) {
			snprintf(kp, sizeof kp, "%s/prefix", ptr);
			conf_fail(cx, kp, "must be up to 32 characters of A-Z a-z 0-9 + _ . -");
			goto out;
		}
		if (pi->origin && pi->size) {
			conf_fail(cx, ptr, "kind lvm takes 'origin' (a thin snapshot) or 'size' (a fresh volume), not both");
			goto out;
		}
		if (!pi->origin && !pi->size) {
			conf_fail(cx, ptr, "kind lvm needs 'origin' (with 'thin_pool') or 'size'");
			goto out;
		}
		if (pi->origin && !pi->thin_pool) {
			conf_fail(cx, ptr, "'thin_pool' is required with 'origin': snapshots are thin snapshots");
			goto out;
		}
		if (pi->golden || pi->golden_format) {
			conf_fail(cx, ptr, "kind lvm takes 'vg', 'origin', 'thin_pool', 'size', 'prefix' and 'policy'");
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

int
conf_parse_lun(struct ctx *cx, json_t *lj, const char *ptr, struct conf_lun *l)
{
	char p[256];
	json_t *v;

	l->pointer = strdup(ptr);
	if (!json_is_object(lj))
		return conf_fail(cx, ptr, "must be an object");
	if (conf_check_keys(cx, lj, ptr, lun_keys, lun_later) < 0)
		return -1;
	v = json_object_get(lj, "lun");
	snprintf(p, sizeof p, "%s/lun", ptr);
	if (!v)
		return conf_fail(cx, ptr, "'lun' is required");
	if (conf_get_u32(cx, v, p, 0, 16383, &l->lun) < 0)
		return -1;
	l->block_size = 512;
	v = json_object_get(lj, "block_size");
	if (v) {
		snprintf(p, sizeof p, "%s/block_size", ptr);
		if (conf_get_u32(cx, v, p, 512, 4096, &l->block_size) < 0)
			return -1;
		if (l->block_size != 512 && l->block_size != 4096)
			return conf_fail(cx, p, "must be 512 or 4096");
		l->block_size_set = true;
	}
	if (conf_get_bool(cx, lj, ptr, "read_only", &l->read_only) < 0 ||
	    conf_get_bool(cx, lj, ptr, "thin", &l->thin) < 0 ||
	    conf_get_bool(cx, lj, ptr, "write_cache", &l->write_cache) < 0 ||
	    conf_get_bool(cx, lj, ptr, "fuse_writable",
			  &l->fuse_writable) < 0 ||
	    conf_get_bool(cx, lj, ptr, "removable", &l->removable) < 0 ||
	    conf_get_string(cx, lj, ptr, "serial", false, &l->serial) < 0)
		return -1;
	if (l->serial && strlen(l->serial) > 64)
		return conf_fail(cx, ptr,
				 "'serial' is longer than 64 characters");
	v = json_object_get(lj, "per_initiator");
	if (v) {
		if (json_object_get(lj, "backend"))
			return conf_fail(cx, ptr, "a LUN has 'backend' or 'per_initiator', not both");
		if (!cx->has_state_dir)
			return conf_fail(cx, ptr, "'per_initiator' keeps images under 'state_dir', which the map does not set");
		snprintf(p, sizeof p, "%s/per_initiator", ptr);
		return parse_per_initiator(cx, v, p, l);
	}
	v = json_object_get(lj, "backend");
	snprintf(p, sizeof p, "%s/backend", ptr);
	if (!v)
		return conf_fail(cx, ptr, "'backend' (or 'per_initiator') is required");
	return parse_backend(cx, v, p, l);
}
