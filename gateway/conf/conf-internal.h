/* conf-internal.h: what the files of the map reader share, and nothing
 * outside gateway/conf/ includes: the parse context, the helpers of
 * conf-json.c that read one value and, when it is wrong, write a message
 * naming its JSON pointer, and the LUN reader of conf-lun.c that conf.c
 * calls for each element of a target's "luns".
 */
#ifndef IGW_CONF_INTERNAL_H
#define IGW_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"

struct ctx {
	char *err;
	size_t errsz;
	const char *label;
	const char *base_dir;
	const char *ptr_prefix;		/* JSON pointer of the object */
	bool has_state_dir;
};

/* conf-json.c */
/* Write "LABEL: POINTER: message" into cx->err; returns -1. */
int conf_fail(struct ctx *cx, const char *ptr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Refuse a key of obj that is not in allowed ("#..." keys are comments);
 * a key in later gets "not supported by this version". */
int conf_check_keys(struct ctx *cx, json_t *obj, const char *ptr,
		    const char *const *allowed, const char *const *later);
/* obj[key], when there, must be a boolean. */
int conf_get_bool(struct ctx *cx, json_t *obj, const char *ptr, const char *key,
		  bool *out);
/* v must be an integer in lo..hi. */
int conf_get_u32(struct ctx *cx, json_t *v, const char *ptr, uint32_t lo,
		 uint32_t hi, uint32_t *out);
/* obj[key], when there (or required), must be a non-empty string without
 * NUL bytes; *out is a copy. */
int conf_get_string(struct ctx *cx, json_t *obj, const char *ptr,
		    const char *key,
		    bool required, char **out);
/* Resolve a relative path against the map's folder; NULL: out of memory. */
char *conf_resolve_path(struct ctx *cx, const char *p);

/* conf-lun.c */
/* One element of a target's "luns", at JSON pointer ptr, into l. */
int conf_parse_lun(struct ctx *cx, json_t *lj, const char *ptr,
		   struct conf_lun *l);

#endif
