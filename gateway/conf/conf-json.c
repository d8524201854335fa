/* conf-json.c: the helpers every file of the map reader uses (declared in
 * conf-internal.h): the error message that names the JSON pointer of the
 * bad key, the check for unknown keys, and the readers of one boolean,
 * integer, string or path.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf-internal.h"

int __attribute__((format(printf, 3, 4)))
conf_fail(struct ctx *cx, const char *ptr, const char *fmt, ...)
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

int
conf_check_keys(struct ctx *cx, json_t *obj, const char *ptr,
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
				return conf_fail(cx, ptr, "key '%s' is not supported by this version of iscsi-gw",
						 key);
		return conf_fail(cx, ptr, "unknown key '%s'", key);
	}
	return 0;
}

int
conf_get_bool(struct ctx *cx, json_t *obj, const char *ptr, const char *key,
	      bool *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return conf_fail(cx, ptr, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int
conf_get_u32(struct ctx *cx, json_t *v, const char *ptr, uint32_t lo,
	     uint32_t hi,
	     uint32_t *out)
{
	json_int_t n;

	if (!json_is_integer(v))
		return conf_fail(cx, ptr, "must be an integer");
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return conf_fail(cx, ptr, "%" JSON_INTEGER_FORMAT
				 " is out of range (%u..%u)", n, lo, hi);
	*out = (uint32_t)n;
	return 0;
}

int
conf_get_string(struct ctx *cx, json_t *obj, const char *ptr, const char *key,
		bool required, char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		if (required)
			return conf_fail(cx, ptr, "'%s' is required", key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return conf_fail(cx, ptr,
				 "'%s' must be a non-empty string", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : conf_fail(cx, ptr, "out of memory");
}

/* Resolve a relative path against the map's folder. */
char *
conf_resolve_path(struct ctx *cx, const char *p)
{
	char *r;

	if (p[0] == '/' || !cx->base_dir)
		return strdup(p);
	if (asprintf(&r, "%s/%s", cx->base_dir, p) < 0)
		return NULL;
	return r;
}
