/* conf-diff.c: what differs between two maps, for a reload (reload.c
 * applies it).  Modelled on ctld's conf_apply, which compares the old and
 * the new conf object by object.  Pure functions on read-only confs; the
 * loop thread calls them.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "conf.h"

static bool
str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool
pi_equal(const struct conf_pi *a, const struct conf_pi *b)
{
	if (!a || !b)
		return a == b;
	return a->kind == b->kind && a->policy == b->policy &&
	       a->size == b->size && str_eq(a->golden, b->golden) &&
	       str_eq(a->golden_format, b->golden_format) &&
	       str_eq(a->vg, b->vg) && str_eq(a->origin, b->origin) &&
	       str_eq(a->thin_pool, b->thin_pool) &&
	       str_eq(a->prefix, b->prefix);
}

bool
conf_lun_equal(const struct conf_lun *a, const struct conf_lun *b)
{
	if (a->lun != b->lun || a->block_size != b->block_size ||
	    a->block_size_set != b->block_size_set ||
	    a->read_only != b->read_only || a->thin != b->thin ||
	    a->write_cache != b->write_cache ||
	    a->fuse_writable != b->fuse_writable ||
	    a->removable != b->removable ||
	    !str_eq(a->serial, b->serial) ||
	    !str_eq(a->backend_type, b->backend_type) ||
	    !pi_equal(a->pi, b->pi) || a->nbkeys != b->nbkeys)
		return false;
	/* Keys reach the backend's config() in this order: a new order is
	 * a new configuration (nbdkit "args" are positional). */
	for (size_t i = 0; i < a->nbkeys; i++)
		if (!str_eq(a->bkeys[i].key, b->bkeys[i].key) ||
		    !str_eq(a->bkeys[i].value, b->bkeys[i].value))
			return false;
	return true;
}

static bool
chap_equal(const struct conf_chap *a, const struct conf_chap *b)
{
	if (!a || !b)
		return a == b;
	return str_eq(a->user, b->user) && a->secret_len == b->secret_len &&
	       !memcmp(a->secret, b->secret, a->secret_len);
}

bool
conf_target_settings_equal(const struct conf_target *a,
			   const struct conf_target *b)
{
	if (!str_eq(a->alias, b->alias) || !chap_equal(a->chap, b->chap) ||
	    !chap_equal(a->mutual_chap, b->mutual_chap) ||
	    !a->acl != !b->acl || a->nacl != b->nacl ||
	    !a->nets != !b->nets || a->nnets != b->nnets ||
	    (a->nnets && memcmp(a->nets, b->nets, a->nnets * sizeof *a->nets)))
		return false;
	for (size_t i = 0; i < a->nacl; i++)
		if (strcmp(a->acl[i], b->acl[i]))
			return false;
	return true;
}

static bool
iscsi_equal(const struct conf_iscsi *a, const struct conf_iscsi *b)
{
	return a->max_recv_data_segment_length ==
		       b->max_recv_data_segment_length &&
	       a->max_burst_length == b->max_burst_length &&
	       a->first_burst_length == b->first_burst_length &&
	       a->initial_r2t == b->initial_r2t &&
	       a->immediate_data == b->immediate_data &&
	       a->max_outstanding_r2t == b->max_outstanding_r2t &&
	       a->queue_depth == b->queue_depth &&
	       a->nop_interval == b->nop_interval &&
	       a->nop_timeout == b->nop_timeout &&
	       a->login_timeout == b->login_timeout &&
	       a->max_connections == b->max_connections &&
	       a->max_sessions_per_initiator == b->max_sessions_per_initiator &&
	       a->max_buffer_mb == b->max_buffer_mb &&
	       a->header_digest == b->header_digest &&
	       a->data_digest == b->data_digest;
}

size_t
conf_global_changes(const struct conf *a, const struct conf *b,
		    void (*fn)(const char *key, void *opaque), void *opaque)
{
	bool portals = a->nportals == b->nportals;
	size_t n = 0;

	for (size_t i = 0; portals && i < a->nportals; i++)
		portals = str_eq(a->portals[i], b->portals[i]);
	/* Every top-level key but "targets", in the map's documented order
	 * (iscsi-gw.json(5)). */
	const struct {
		const char *key;
		bool same;
	} keys[] = {
		{ "portals", portals },
		{ "state_dir", str_eq(a->state_dir, b->state_dir) },
		{ "iscsi", iscsi_equal(&a->iscsi, &b->iscsi) },
		{ "io_threads", a->io_threads == b->io_threads },
		{ "discovery_chap",
		  chap_equal(a->discovery_chap, b->discovery_chap) },
		{ "discovery_mutual_chap", chap_equal(a->discovery_mutual_chap,
						      b->discovery_mutual_chap) },
		{ "user", str_eq(a->user, b->user) },
		{ "control_socket",
		  str_eq(a->control_socket, b->control_socket) },
		{ "metrics", str_eq(a->metrics, b->metrics) },
		{ "fuse_mount", str_eq(a->fuse_mount, b->fuse_mount) },
	};

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!keys[i].same) {
			fn(keys[i].key, opaque);
			n++;
		}
	return n;
}
