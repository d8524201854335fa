/* lunmap.c: see lunmap.h.  Modelled on CTL's ctl_add_lun: the conf says
 * what a LUN is; here it is opened, measured and given its identity.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lunmap.h"
#include "backend.h"
#include "lvm.h"
#include "scsi/scsi.h"
#include "log.h"
#include "scsi/pr.h"
#include "util/util.h"

/* FNV-1a: a stable hash for identifiers derived from names. */
static uint64_t
fnv1a(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Open l's backend (type, keys) and take its geometry: the part of a
 * LUN's set-up shared by map LUNs and per-initiator instances.  On error
 * the cause is in backend_last_error() or errno. */
static int
lun_open(struct lun *l, const char *type, const struct conf_kv *keys,
	 size_t nkeys, bool read_only, bool block_size_set)
{
	int64_t size;
	int r;

	backend_clear_error();
	l->be = backend_new(type);
	if (!l->be)
		return -1;
	for (size_t i = 0; i < nkeys; i++)
		if (backend_config(l->be, keys[i].key, keys[i].value) < 0)
			return -1;
	if (backend_config_complete(l->be) < 0)
		return -1;
	r = backend_open(l->be, read_only);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	/* A device's own logical block size wins when the map gave none;
	 * a smaller one than the device's cannot work. */
	if (l->be->pref_logical == 4096 && !block_size_set) {
		l->block_size = 4096;
		l->block_shift = 12;
	}
	if (l->be->pref_logical > l->block_size) {
		igw_backend_error("the device has %u-byte logical blocks: block_size %u cannot be served",
				  l->be->pref_logical, l->block_size);
		return -1;
	}
	size = backend_get_size(l->be);
	if (size < 0) {
		igw_backend_error("get_size: %s", strerror((int)-size));
		return -1;
	}
	l->nblocks = (uint64_t)size >> l->block_shift;
	if (l->nblocks == 0) {
		igw_backend_error("backend is smaller than one %u-byte block",
				  l->block_size);
		return -1;
	}
	if ((uint64_t)size % l->block_size)
		log_warn("%s: size %" PRId64 " is not a multiple of %u; the last %"
			 PRIu64 " bytes are not served", l->pointer, size,
			 l->block_size, (uint64_t)size % l->block_size);
	if (!read_only && !l->be->can_write)
		l->read_only = true;
	/* A volatile cache that cannot be flushed is not offered. */
	if (!l->be->can_flush)
		l->wce = 0;
	return 0;
}

/* NAA 3 designator and serial number from a stable name. */
static void
lun_identity(struct lun *l, const char *idname, const char *serial)
{
	/* NAA 3: locally assigned, 60 bits from the name. */
	l->naa = (3ULL << 60) | (fnv1a(idname, 0xcbf29ce484222325ULL) >> 4);
	if (serial)
		snprintf(l->serial, sizeof l->serial, "%s", serial);
	else
		snprintf(l->serial, sizeof l->serial, "%016" PRIx64,
			 fnv1a(idname, 0x84222325cbf29ce4ULL));
}

static struct lun *
lun_new(struct target *t, const struct conf_lun *cl)
{
	struct lun *l = calloc(1, sizeof *l);
	char idbuf[300];

	if (!l)
		return NULL;
	l->id = cl->lun;
	l->target = t;
	l->conf = cl;
	l->pointer = strdup(cl->pointer);
	l->block_size = cl->block_size;
	l->block_shift = cl->block_size == 4096 ? 12 : 9;
	l->read_only = cl->read_only;
	l->thin = cl->thin;
	l->removable = cl->removable;
	l->wce = cl->write_cache;
	pthread_rwlock_init(&l->write_lock, NULL);
	pthread_mutex_init(&l->q_lock, NULL);
	snprintf(idbuf, sizeof idbuf, "%s/%u", t->name, l->id);
	lun_identity(l, idbuf, cl->serial);
	if (cl->pi) {
		/* A template: each initiator's image opens at its login. */
		l->pi = cl->pi;
		return l;
	}
	if (!strcmp(cl->backend_type, "lvm")) {
		/* An LVM volume, created here when missing, served as a
		 * block device. */
		struct conf_kv kv[3];
		size_t nkv = 0;
		char *dev = NULL, err[512];
		int r = lvm_lun_volume(cl->bkeys, cl->nbkeys, !cl->read_only,
				       &dev, err, sizeof err);

		if (r < 0) {
			igw_backend_error("%s", err);
			free(dev);
			goto fail;
		}
		if (r == 1)
			log_info("%s: created logical volume %s", cl->pointer, dev);
		kv[nkv++] = (struct conf_kv){ "path", dev };
		for (size_t i = 0; i < cl->nbkeys; i++)
			if (!strcmp(cl->bkeys[i].key, "direct") ||
			    !strcmp(cl->bkeys[i].key, "aio"))
				kv[nkv++] = cl->bkeys[i];
		r = lun_open(l, "blockdev", kv, nkv, cl->read_only,
			     cl->block_size_set);
		free(dev);
		if (r < 0)
			goto fail;
		return l;
	}
	if (lun_open(l, cl->backend_type, cl->bkeys, cl->nbkeys, cl->read_only,
		     cl->block_size_set) < 0)
		goto fail;
	return l;
fail:
	log_error("%s: %s", cl->pointer,
		  backend_last_error()[0] ? backend_last_error() : strerror(errno));
	if (l->be)
		backend_free(l->be);
	pthread_rwlock_destroy(&l->write_lock);
	pthread_mutex_destroy(&l->q_lock);
	free(l->pointer);
	free(l);
	return NULL;
}

struct lun *
lun_instance_new(struct lun *tmpl, const char *initiator, const char *type,
		 const struct conf_kv *keys, size_t nkeys)
{
	struct lun *l = calloc(1, sizeof *l);
	char idbuf[600];
	int e;

	if (!l)
		return NULL;
	l->id = tmpl->id;
	l->slot = tmpl->slot;
	l->target = tmpl->target;
	l->tmpl = tmpl;
	l->initiator = strdup(initiator);
	if (asprintf(&l->pointer, "%s (image of %s)", tmpl->pointer,
		     initiator) < 0)
		l->pointer = NULL;
	l->block_size = tmpl->block_size;
	l->block_shift = tmpl->block_shift;
	l->read_only = tmpl->read_only;
	l->thin = tmpl->thin;
	l->removable = tmpl->removable;
	l->wce = tmpl->wce;
	pthread_rwlock_init(&l->write_lock, NULL);
	pthread_mutex_init(&l->q_lock, NULL);
	if (!l->initiator || !l->pointer) {
		errno = ENOMEM;
		goto fail;
	}
	/* Each image is a disk of its own to the initiator's OS. */
	snprintf(idbuf, sizeof idbuf, "%s/%u/%s", tmpl->target->name, l->id,
		 initiator);
	for (char *p = idbuf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	lun_identity(l, idbuf, NULL);
	if (lun_open(l, type, keys, nkeys, tmpl->read_only,
		     tmpl->block_size == 4096) < 0)
		goto fail;
	if (pr_lun_init(l, NULL) < 0)
		goto fail;
	return l;
fail:
	e = errno;
	if (l->be)
		backend_free(l->be);
	pthread_rwlock_destroy(&l->write_lock);
	pthread_mutex_destroy(&l->q_lock);
	free(l->initiator);
	free(l->pointer);
	free(l);
	errno = e;
	return NULL;
}

void
lun_free(struct lun *l)
{
	if (!l)
		return;
	if (l->be)
		backend_free(l->be);
	pr_lun_free(l);
	mode_lun_free(l);
	pthread_rwlock_destroy(&l->write_lock);
	pthread_mutex_destroy(&l->q_lock);
	free(l->initiator);
	free(l->pointer);
	free(l);
}

static int
cmp_lun(const void *a, const void *b)
{
	const struct lun *x = *(struct lun *const *)a, *y = *(struct lun *const *)b;

	return (x->id > y->id) - (x->id < y->id);
}

struct lunmap *
lunmap_new(const struct conf *c)
{
	struct lunmap *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	if (c->state_dir && !(m->state_dir = strdup(c->state_dir)))
		goto fail;
	m->targets = calloc(c->ntargets + 1, sizeof *m->targets);
	if (!m->targets)
		goto fail;
	for (size_t i = 0; i < c->ntargets; i++) {
		const struct conf_target *ct = &c->targets[i];
		struct target *t = target_new(ct);

		if (!t)
			goto fail;
		m->targets[m->ntargets++] = t;
		t->luns = calloc(ct->nluns + 1, sizeof *t->luns);
		if (!t->luns)
			goto fail;
		for (size_t k = 0; k < ct->nluns; k++) {
			struct lun *l = lunmap_lun_new(t, &ct->luns[k],
						       c->state_dir);
			if (!l)
				goto fail;
			t->luns[t->nluns++] = l;
			if (l->pi)
				t->npi++;
		}
		qsort(t->luns, t->nluns, sizeof *t->luns, cmp_lun);
		for (size_t k = 0; k < t->nluns; k++)
			t->luns[k]->slot = k;
		t->next_slot = t->nluns;
	}
	return m;
fail:
	lunmap_free(m);
	return NULL;
}

struct lun *
lunmap_lun_new(struct target *t, const struct conf_lun *cl,
	       const char *state_dir)
{
	struct lun *l = lun_new(t, cl);

	if (!l || l->pi)
		return l;
	/* Reservations, restored from state_dir (APTPL). */
	if (pr_lun_init(l, state_dir) < 0) {
		log_error("%s: cannot set up its persistent reservations",
			  cl->pointer);
		lun_free(l);
		return NULL;
	}
	/* Saved mode pages (MODE SELECT with SP), restored from state_dir. */
	if (mode_lun_init(l, state_dir) < 0) {
		log_error("%s: cannot set up its saved mode pages", cl->pointer);
		lun_free(l);
		return NULL;
	}
	return l;
}

int
target_apply_conf(struct target *t, const struct conf_target *ct)
{
	char *alias = NULL, **acl = NULL;

	if (ct->alias && !(alias = strdup(ct->alias)))
		return -1;
	/* No "acl": every initiator (NULL); an empty one: nobody. */
	if (ct->acl) {
		acl = calloc(ct->nacl + 1, sizeof(char *));
		for (size_t k = 0; acl && k < ct->nacl; k++)
			if (!(acl[k] = strdup(ct->acl[k]))) {
				for (size_t j = 0; j < k; j++)
					free(acl[j]);
				free(acl);
				acl = NULL;
			}
		if (!acl) {
			free(alias);
			return -1;
		}
	}
	free(t->alias);
	for (size_t k = 0; k < t->nacl; k++)
		free(t->acl[k]);
	free(t->acl);
	t->alias = alias;
	t->acl = acl;
	t->nacl = acl ? ct->nacl : 0;
	t->chap = ct->chap;
	t->mutual_chap = ct->mutual_chap;
	t->nets = ct->nets;
	t->nnets = ct->nnets;
	return 0;
}

struct target *
target_new(const struct conf_target *ct)
{
	struct target *t = calloc(1, sizeof *t);

	if (!t)
		return NULL;
	t->tpgt = 1;
	if (!(t->name = strdup(ct->name)) || target_apply_conf(t, ct) < 0) {
		target_free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void
target_free(struct target *t)
{
	if (!t)
		return;
	free(t->luns);
	for (size_t k = 0; k < t->nacl; k++)
		free(t->acl[k]);
	free(t->acl);
	free(t->name);
	free(t->alias);
	free(t);
}

void
lunmap_free(struct lunmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ntargets; i++) {
		struct target *t = m->targets[i];
		for (size_t k = 0; k < t->nluns; k++)
			lun_free(t->luns[k]);
		target_free(t);
	}
	free(m->targets);
	free(m->state_dir);
	free(m);
}

struct target *
lunmap_find_target(struct lunmap *m, const char *name)
{
	/* RFC 7143 §4.2.7.1: names compare after stringprep, which for the
	 * ASCII names allowed here is a case-insensitive match. */
	for (size_t i = 0; i < m->ntargets; i++)
		if (!strcasecmp(m->targets[i]->name, name))
			return m->targets[i];
	return NULL;
}

struct lun *
target_find_lun(struct target *t, unsigned id)
{
	size_t lo = 0, hi = t->nluns;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->luns[mid]->id == id)
			return t->luns[mid];
		if (t->luns[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool
target_allows(const struct target *t, const char *initiator)
{
	if (!t->acl)
		return true;
	for (size_t i = 0; i < t->nacl; i++)
		if (!strcasecmp(t->acl[i], initiator))
			return true;
	return false;
}

char *
lunmap_rescan_request(struct lunmap *m, const char *args)
{
	char tname[256], esc[300];
	unsigned id;
	struct target *t;
	struct lun *l;
	int64_t size;
	uint64_t old, nb;
	json_t *o = json_object();
	char *text;

	if (!o)
		return NULL;
	if (sscanf(args, "%255s %u", tname, &id) != 2) {
		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error", json_string("usage: rescan TARGET LUN"));
		goto out;
	}
	t = lunmap_find_target(m, tname);
	l = t ? target_find_lun(t, id) : NULL;
	if (!l || !l->be) {
		log_escape(esc, sizeof esc, tname, strlen(tname));
		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error", json_string(!t ? "no such target" :
			!l ? "no such LUN" : "a per-initiator LUN has no one size"));
		goto out;
	}
	size = backend_get_size(l->be);
	if (size < 0) {
		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error", json_string(strerror((int)-size)));
		goto out;
	}
	old = __atomic_load_n(&l->nblocks, __ATOMIC_RELAXED);
	nb = (uint64_t)size >> l->block_shift;
	if (nb == 0) {
		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error", json_string("the backend is now smaller than one block"));
		goto out;
	}
	if (nb != old) {
		__atomic_store_n(&l->nblocks, nb, __ATOMIC_RELEASE);
		scsi_ua_establish_all(l->target, l, UA_CAPACITY_CHANGED);
		log_info("%s: capacity changed from %" PRIu64 " to %" PRIu64
			 " blocks of %u bytes", l->pointer, old, nb, l->block_size);
	}
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "changed", json_boolean(nb != old));
	json_object_set_new(o, "previous_blocks", json_integer((json_int_t)old));
	json_object_set_new(o, "blocks", json_integer((json_int_t)nb));
	json_object_set_new(o, "block_size", json_integer(l->block_size));
out:
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}
