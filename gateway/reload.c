/* reload.c: see reload.h.  Modelled on ctld's conf_apply: read the new map
 * whole, compare it with the running one object by object, touch only what
 * differs.  Design notes:
 *
 * - All or nothing.  The new map is verified by conf_load_file, then every
 *   LUN that is new or changed is opened; only when all are open does the
 *   switch happen, and it cannot fail (its memory is allocated before).
 *   Until then the running map is untouched: a refused map costs nothing
 *   but the LUNs opened for it, which are closed again.
 *
 * - Matching.  Targets by name; LUNs by number within their target.  A LUN
 *   whose map entry is identical (conf_lun_equal) keeps its struct lun, so
 *   commands, reservations, counters and per-initiator images on it go on
 *   as if nothing happened.  A changed one is a new LUN: opened afresh
 *   while the old one is still open (a blockdev's O_EXCL open then fails
 *   with EBUSY and the map is refused: drop the LUN in one reload, add it
 *   back in the next, once the old one is closed).  Targets that stay keep
 *   their struct target (sessions and nexuses point at it): their LUN table
 *   is swapped and alias, acl and CHAP pointers updated.
 *
 * - Slots, not positions.  Unit attentions (nexus ua[]) and a session's
 *   images (s->pi[]) are indexed by lun->slot, which a target hands out
 *   once and never again (next_slot): a LUN added or dropped shifts no
 *   other LUN's bits.  Those tables are sized at login and grow on demand.
 *
 * - Retiring.  A dropped or replaced LUN leaves its target's table at the
 *   switch, so no new command finds it (LOGICAL UNIT NOT SUPPORTED), and
 *   goes on the retired list.  Tasks (iscsi/cmd.c), open FUSE files and
 *   image provisioning hold references (lun_get); a template stays while
 *   the images registry has an image of it.  The tick closes a retired LUN
 *   with none of those on an IO worker (closing flushes).  A dropped
 *   target's sessions are closed at the switch; the target is freed once
 *   no connection and no retired LUN points at it.
 *
 * - Confs.  LUNs (lun->conf, lun->pi) and targets (CHAP identities) point
 *   into the conf they were made from, so every applied conf is kept until
 *   exit (a few KiB each).  Global settings stay those of the conf the
 *   daemon started with (iscsi_g.conf): a changed top-level key is logged
 *   as needing a restart, once per reload while the file differs.
 *
 * Loop thread only, except close_run on an IO worker.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "reload.h"
#include "cli.h"
#include "conf/conf.h"
#include "control.h"
#include "lunmap.h"
#include "backend.h"
#include "images.h"
#include "images-store.h"
#include "iscsi/iscsi.h"
#include "fuse/fuse-view.h"
#include "io/io.h"
#include "log.h"
#include "util/util.h"

/* A retired LUN being closed on an IO worker. */
struct closing {
	struct io_job job;
	struct lun *l;			/* freed by the worker */
	const struct target *target;	/* its target, for the reaper */
	struct closing *next, *prev;
};

static struct {
	char *path;			/* the map file; NULL: built-in */
	const struct conf *first;	/* start-up conf, main.c owns it */
	const struct conf *cur;		/* the running map's conf */
	struct conf **confs;		/* every conf a reload applied */
	size_t nconfs;
	struct lunmap *map;
	struct lun *retired;		/* waiting for their last user */
	struct target *retired_targets;
	struct closing *closing;	/* close jobs not yet done */
} rl;

void
reload_init(const char *path, const struct conf *c, struct lunmap *m)
{
	if (path) {
		/* Absolute: the reload must find the same file. */
		rl.path = realpath(path, NULL);
		if (!rl.path)
			rl.path = strdup(path);
	}
	rl.first = rl.cur = c;
	rl.map = m;
}

/* ---- the answer and the log ---- */

struct report {
	const char *why;
	json_t *added, *removed, *changed, *targets_added, *targets_removed,
	       *restart;
	size_t nadded, nremoved, nchanged, nunchanged;
};

static void
lun_describe(const struct lun *l, char *buf, size_t sz)
{
	if (l->be)
		snprintf(buf, sz, "%s, %llu blocks of %u bytes%s, IO %s",
			 l->be->ops.name, (unsigned long long)l->nblocks, l->block_size,
			 l->read_only ? ", read-only" : "",
			 l->be->can_async ? "async" : "on workers");
	else if (l->pi)
		snprintf(buf, sz, "per-initiator %s images",
			 image_kind_name(l->pi));
	else
		snprintf(buf, sz, "no backend");
}

/* One log line and one answer item per LUN that changed. */
static void
note_lun(struct report *rp, json_t *list, const char *what,
	 const struct target *t, const struct lun *l)
{
	char desc[160];

	lun_describe(l, desc, sizeof desc);
	log_info("reload (%s): %s LUN %u %s: %s (%s)", rp->why, t->name, l->id,
		 what, l->pointer ? l->pointer : "?", desc);
	json_array_append_new(list, json_pack("{s:s,s:i,s:s,s:s}",
		"target", t->name, "lun", (int)l->id,
		"pointer", l->pointer ? l->pointer : "?",
		"backend", l->be ? l->be->ops.name :
			   l->pi ? "per_initiator" : "none"));
}

static void
note_global(const char *key, void *opaque)
{
	struct report *rp = opaque;

	log_warn("reload (%s): top-level \"%s\" changed: not applied while running; a restart applies it",
		 rp->why, key);
	json_array_append_new(rp->restart, json_string(key));
}

static char *
answer_error(const char *msg)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* ---- the plan: the new tables, built before anything changes ---- */

struct plan {
	const struct conf_target *ct;
	struct target *t;		/* running, or new (is_new) */
	bool is_new;
	struct target *settings;	/* running t: ct's alias, acl, CHAP */
	struct lun **luns;		/* the new table, sorted by id */
	size_t nluns;
	struct lun **fresh;		/* LUNs this reload opened */
	size_t nfresh;
};

static bool
is_fresh(const struct plan *pl, const struct lun *l)
{
	for (size_t i = 0; i < pl->nfresh; i++)
		if (pl->fresh[i] == l)
			return true;
	return false;
}

static int
cmp_lun_id(const void *a, const void *b)
{
	const struct lun *x = *(struct lun *const *)a,
			 *y = *(struct lun *const *)b;

	return (x->id > y->id) - (x->id < y->id);
}

/* Free a plan; unless applied, close what it opened. */
static void
plan_free(struct plan *plan, size_t n, bool applied)
{
	for (size_t i = 0; plan && i < n; i++) {
		struct plan *pl = &plan[i];

		if (!applied) {
			for (size_t k = 0; k < pl->nfresh; k++)
				lun_free(pl->fresh[k]);
			if (pl->is_new)
				target_free(pl->t);
		}
		target_free(pl->settings);
		free(pl->luns);
		free(pl->fresh);
	}
	free(plan);
}

/* Open what plan entry pl needs.  0, or -1 with a message in err. */
static int
plan_target(struct plan *pl, const struct conf_target *ct, char *err,
	    size_t errsz)
{
	struct lunmap *m = rl.map;

	pl->ct = ct;
	pl->t = lunmap_find_target(m, ct->name);
	if (!pl->t) {
		pl->is_new = true;
		pl->t = target_new(ct);
	} else {
		pl->settings = target_new(ct);
	}
	pl->luns = calloc(ct->nluns + 1, sizeof *pl->luns);
	pl->fresh = calloc(ct->nluns + 1, sizeof *pl->fresh);
	if (!pl->t || (!pl->is_new && !pl->settings) || !pl->luns ||
	    !pl->fresh) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (size_t k = 0; k < ct->nluns; k++) {
		const struct conf_lun *cl = &ct->luns[k];
		struct lun *old = NULL, *l;

		if (!pl->is_new)
			old = target_find_lun(pl->t, cl->lun);
		if (old && old->conf && conf_lun_equal(old->conf, cl)) {
			pl->luns[pl->nluns++] = old;
			continue;
		}
		/* New or changed: open it now; lunmap_lun_new logs why it
		 * cannot, naming cl->pointer. */
		backend_clear_error();
		errno = 0;
		l = lunmap_lun_new(pl->t, cl, m->state_dir);
		if (!l) {
			const char *why = backend_last_error();

			if (!why[0])
				why = errno ? strerror(errno) : "cannot be opened";
			snprintf(err, errsz, "%s: %s: %s", rl.path, cl->pointer,
				 why);
			return -1;
		}
		pl->luns[pl->nluns++] = l;
		pl->fresh[pl->nfresh++] = l;
	}
	qsort(pl->luns, pl->nluns, sizeof *pl->luns, cmp_lun_id);
	return 0;
}

/* ---- the switch ---- */

static void
retire(struct lun *l)
{
	l->retired = true;
	l->retired_next = rl.retired;
	rl.retired = l;
}

static struct lun *
find_id(struct lun **luns, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (luns[i]->id == id)
			return luns[i];
	return NULL;
}

static const struct conf_target *
conf_target_named(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->ntargets; i++)
		if (!strcasecmp(c->targets[i].name, name))
			return &c->targets[i];
	return NULL;
}

/* A target the new map no longer has. */
static void
drop_target(struct report *rp, struct target *t)
{
	log_info("reload (%s): target %s removed: closing its sessions",
		 rp->why, t->name);
	json_array_append_new(rp->targets_removed, json_string(t->name));
	for (size_t k = 0; k < t->nluns; k++) {
		note_lun(rp, rp->removed, "removed", t, t->luns[k]);
		rp->nremoved++;
		retire(t->luns[k]);
	}
	free(t->luns);
	t->luns = NULL;
	t->nluns = t->npi = 0;
	t->removed = true;
	session_close_target(t, "its target was removed from the map");
	log_set_prefix(NULL);
	t->retired_next = rl.retired_targets;
	rl.retired_targets = t;
}

/* A target that stays or arrives: its new table goes in. */
static void
switch_target(struct report *rp, struct plan *pl)
{
	struct target *t = pl->t;
	size_t changes = 0;

	if (pl->is_new) {
		log_info("reload (%s): target %s added", rp->why, t->name);
		json_array_append_new(rp->targets_added, json_string(t->name));
	}
	/* Dropped or replaced: in the old table, not in the new one. */
	for (size_t k = 0; k < t->nluns; k++) {
		struct lun *ol = t->luns[k];
		struct lun *nl = find_id(pl->luns, pl->nluns, ol->id);

		if (nl == ol)
			continue;
		if (!nl) {
			note_lun(rp, rp->removed, "removed", t, ol);
			rp->nremoved++;
		}
		retire(ol);
		changes++;
	}
	for (size_t k = 0; k < pl->nluns; k++) {
		struct lun *l = pl->luns[k];
		bool replaces;

		if (!is_fresh(pl, l)) {
			rp->nunchanged++;
			continue;
		}
		replaces = target_find_lun(t, l->id) != NULL;
		l->slot = t->next_slot++;
		note_lun(rp, replaces ? rp->changed : rp->added,
			 replaces ? "changed" : "added", t, l);
		if (replaces)
			rp->nchanged++;
		else
			rp->nadded++;
		changes++;
	}
	if (!pl->is_new) {
		const struct conf_target *oct =
			conf_target_named(rl.cur, t->name);
		struct target *s = pl->settings;
		char *alias = t->alias, **acl = t->acl;
		size_t nacl = t->nacl;

		if (oct && !conf_target_settings_equal(oct, pl->ct))
			log_info("reload (%s): target %s: alias, acl, networks or CHAP changed; new logins use them",
				 rp->why, t->name);
		/* Swapped, so plan_free frees the old ones. */
		t->alias = s->alias;
		t->acl = s->acl;
		t->nacl = s->nacl;
		t->chap = s->chap;
		t->mutual_chap = s->mutual_chap;
		t->nets = s->nets;	/* point into the new conf */
		t->nnets = s->nnets;
		s->alias = alias;
		s->acl = acl;
		s->nacl = nacl;
		free(t->luns);
	}
	t->luns = pl->luns;
	t->nluns = pl->nluns;
	pl->luns = NULL;
	t->npi = 0;
	for (size_t k = 0; k < t->nluns; k++)
		if (t->luns[k]->pi)
			t->npi++;
	if (!pl->is_new) {
		/* SPC-4 §6.33: the LUN inventory changed; every LUN of
		 * every nexus reports it once. */
		if (changes)
			scsi_ua_establish_all(t, NULL, UA_LUNS_CHANGED);
		session_recheck_acl(t);
		log_set_prefix(NULL);
	}
}

char *
reload_run(const char *why)
{
	struct report rp = { .why = why };
	struct lunmap *m = rl.map;
	struct plan *plan = NULL;
	struct target **nt = NULL;
	struct conf *nc, **confs;
	size_t nplanned = 0, ntadd = 0, ntrem = 0;
	char err[1024];
	json_t *ans;
	char *text;

	log_set_prefix(NULL);	/* not a connection's doing */
	if (!m) {
		log_warn("reload (%s): not serving yet", why);
		return answer_error("the daemon is not serving yet");
	}
	if (!rl.path) {
		log_warn("reload (%s): the built-in map cannot be reloaded (start with --config FILE)",
			 why);
		return answer_error("the built-in map cannot be reloaded: start the daemon with --config FILE");
	}
	log_info("reload (%s): reading %s", why, rl.path);
	nc = conf_load_file(rl.path, err, sizeof err);
	if (!nc)
		goto refuse;
	plan = calloc(nc->ntargets + 1, sizeof *plan);
	nt = calloc(nc->ntargets + 1, sizeof *nt);
	confs = realloc(rl.confs, (rl.nconfs + 1) * sizeof *rl.confs);
	if (confs)
		rl.confs = confs;
	if (!plan || !nt || !confs) {
		snprintf(err, sizeof err, "out of memory");
		goto refuse;
	}
	for (size_t i = 0; i < nc->ntargets; i++) {
		nplanned++;
		if (plan_target(&plan[i], &nc->targets[i], err, sizeof err) < 0)
			goto refuse;
	}

	/* Everything is open: switch.  Nothing below can fail. */
	rp.added = json_array();
	rp.removed = json_array();
	rp.changed = json_array();
	rp.targets_added = json_array();
	rp.targets_removed = json_array();
	rp.restart = json_array();
	conf_global_changes(rl.first, nc, note_global, &rp);
	for (size_t i = 0; i < m->ntargets; i++) {
		bool kept = false;

		for (size_t k = 0; k < nc->ntargets && !kept; k++)
			kept = plan[k].t == m->targets[i];
		if (!kept) {
			drop_target(&rp, m->targets[i]);
			ntrem++;
		}
	}
	for (size_t i = 0; i < nc->ntargets; i++) {
		switch_target(&rp, &plan[i]);
		ntadd += plan[i].is_new;
		nt[i] = plan[i].t;
	}
	free(m->targets);
	m->targets = nt;
	m->ntargets = nc->ntargets;
	/* The FUSE view lets go of what was dropped before this returns,
	 * so the tick cannot free a LUN one of its threads is reading. */
	fuse_view_reload(nc, m);
	rl.confs[rl.nconfs++] = nc;
	rl.cur = nc;
	plan_free(plan, nplanned, true);

	log_info("reload (%s): %s applied: %zu LUN%s added, %zu removed, %zu changed, %zu unchanged; %zu target%s added, %zu removed",
		 why, rl.path, rp.nadded, rp.nadded == 1 ? "" : "s",
		 rp.nremoved, rp.nchanged, rp.nunchanged, ntadd,
		 ntadd == 1 ? "" : "s", ntrem);
	ans = json_pack("{s:b,s:o,s:o,s:o,s:I,s:o,s:o,s:o}", "ok", 1,
			"added", rp.added, "removed", rp.removed,
			"changed", rp.changed,
			"unchanged", (json_int_t)rp.nunchanged,
			"targets_added", rp.targets_added,
			"targets_removed", rp.targets_removed,
			"restart_needed", rp.restart);
	text = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
	json_decref(ans);
	return text;

refuse:
	log_error("reload (%s): %s; the running map is unchanged", why, err);
	plan_free(plan, nplanned, false);
	free(nt);
	conf_free(nc);
	return answer_error(err);
}

/* ---- retired LUNs and targets ---- */

static void
close_run(struct io_job *job)
{
	struct closing *c = container_of(job, struct closing, job);

	lun_free(c->l);		/* flushes and closes the backend */
}

static void
close_done(struct io_job *job)
{
	struct closing *c = container_of(job, struct closing, job);

	if (c->prev)
		c->prev->next = c->next;
	else
		rl.closing = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void
close_retired(struct lun *l)
{
	struct closing *c;

	log_info("%s: LUN %u of %s, dropped by a reload, is no longer in use: closing it",
		 l->pointer ? l->pointer : "?", l->id, l->target->name);
	if (!l->be || !(c = calloc(1, sizeof *c))) {
		lun_free(l);	/* a template: nothing to flush */
		return;
	}
	c->l = l;
	c->target = l->target;
	c->job.fn = close_run;
	c->job.done = close_done;
	c->job.loop = iscsi_g.loop;
	c->next = rl.closing;
	if (c->next)
		c->next->prev = c;
	rl.closing = c;
	io_submit(&c->job);
}

static bool
target_has_retired(const struct target *t)
{
	for (struct lun *l = rl.retired; l; l = l->retired_next)
		if (l->target == t)
			return true;
	for (struct closing *c = rl.closing; c; c = c->next)
		if (c->target == t)
			return true;
	return false;
}

void
reload_tick(void)
{
	struct lun **pp = &rl.retired;
	struct target **tp = &rl.retired_targets;

	while (*pp) {
		struct lun *l = *pp;

		if (__atomic_load_n(&l->refs, __ATOMIC_ACQUIRE) ||
		    (l->pi && images_template_busy(l))) {
			pp = &l->retired_next;
			continue;
		}
		*pp = l->retired_next;
		close_retired(l);
	}
	while (*tp) {
		struct target *t = *tp;

		if (session_target_in_use(t) || target_has_retired(t)) {
			tp = &t->retired_next;
			continue;
		}
		*tp = t->retired_next;
		log_debug(LOG_AREA_CONF, "target %s, dropped by a reload, freed",
			  t->name);
		target_free(t);
	}
}

void
reload_free(void)
{
	/* The pool has run every close job: only their structs are left. */
	while (rl.closing) {
		struct closing *c = rl.closing;
		rl.closing = c->next;
		free(c);
	}
	while (rl.retired) {
		struct lun *l = rl.retired;
		rl.retired = l->retired_next;
		lun_free(l);
	}
	while (rl.retired_targets) {
		struct target *t = rl.retired_targets;
		rl.retired_targets = t->retired_next;
		target_free(t);
	}
	for (size_t i = 0; i < rl.nconfs; i++)
		conf_free(rl.confs[i]);
	free(rl.confs);
	free(rl.path);
	memset(&rl, 0, sizeof rl);
}

/* ---- iscsi-gw reload: the client side ---- */

/* The map's control_socket, read with no more checks than that: a map
 * the daemon will refuse still reaches it, which says why.  NULL after a
 * message. */
static char *
control_socket_of(const char *path)
{
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je), *v;
	char *dup, *dir, absdir[PATH_MAX], *out = NULL;
	const char *s;

	if (!root) {
		if (je.line < 0 || je.position == 0)
			fprintf(stderr, "iscsi-gw: %s: %s\n", path, je.text);
		else
			fprintf(stderr, "iscsi-gw: %s:%d:%d: %s\n", path,
				je.line, je.column, je.text);
		fprintf(stderr, "iscsi-gw: cannot find control_socket in it: the daemon was not asked\n");
		return NULL;
	}
	v = json_object_get(root, "control_socket");
	s = json_string_value(v);
	if (!s || !*s) {
		fprintf(stderr, "iscsi-gw: %s has no control_socket: send the daemon SIGHUP instead\n",
			path);
		json_decref(root);
		return NULL;
	}
	if (s[0] == '/') {
		out = strdup(s);
	} else {
		/* Relative to the map's folder, as the daemon resolves it. */
		dup = strdup(path);
		dir = dup ? dirname(dup) : ".";
		if (asprintf(&out, "%s/%s",
			     realpath(dir, absdir) ? absdir : dir, s) < 0)
			out = NULL;
		free(dup);
	}
	json_decref(root);
	if (!out)
		fprintf(stderr, "iscsi-gw: out of memory\n");
	return out;
}

int
cmd_reload(const struct cli *cli)
{
	char *sock, *reply = NULL;
	size_t len = 0;
	json_t *j;
	bool ok;
	int rc;

	if (!cli->config) {
		fprintf(stderr, "iscsi-gw: reload needs --config FILE (the map the daemon serves)\n");
		return 2;
	}
	sock = control_socket_of(cli->config);
	if (!sock)
		return 1;
	rc = control_ask(sock, "reload\n", &reply, &len);
	free(sock);
	if (rc)
		return 1;
	j = json_loads(reply, 0, NULL);
	ok = j && json_is_true(json_object_get(j, "ok"));
	fputs(reply, stdout);
	if (len && reply[len - 1] != '\n')
		putchar('\n');
	if (!j)
		fprintf(stderr, "iscsi-gw: the daemon's answer is not JSON\n");
	else if (!ok)
		fprintf(stderr, "iscsi-gw: reload refused: %s\n",
			json_string_value(json_object_get(j, "error")) ?
			json_string_value(json_object_get(j, "error")) :
			"(no reason given)");
	json_decref(j);
	free(reply);
	return ok ? 0 : 1;
}

int
cmd_mount(const struct cli *cli)
{
	char *sock, *reply = NULL, *req = NULL, dir[PATH_MAX];
	size_t len = 0;
	json_t *j;
	bool ok;
	int rc;

	if (!cli->config || cli->nargs != 1) {
		fprintf(stderr, "Usage: iscsi-gw mount --config FILE DIR\n");
		return 2;
	}
	/* The daemon's working folder is not ours: an absolute path. */
	if (cli->args[0][0] == '/')
		snprintf(dir, sizeof dir, "%s", cli->args[0]);
	else if (!getcwd(dir, sizeof dir) ||
		 strlen(dir) + 1 + strlen(cli->args[0]) >= sizeof dir) {
		fprintf(stderr, "iscsi-gw: %s: path too long\n", cli->args[0]);
		return 1;
	} else {
		strcat(dir, "/");
		strcat(dir, cli->args[0]);
	}
	if (strchr(dir, '\n')) {
		fprintf(stderr, "iscsi-gw: a folder name with a newline is not accepted\n");
		return 2;
	}
	sock = control_socket_of(cli->config);
	if (!sock)
		return 1;
	if (asprintf(&req, "mount %s\n", dir) < 0) {
		free(sock);
		return 1;
	}
	rc = control_ask(sock, req, &reply, &len);
	free(sock);
	free(req);
	if (rc)
		return 1;
	j = json_loads(reply, 0, NULL);
	ok = j && json_is_true(json_object_get(j, "ok"));
	if (ok)
		printf("%s\n", json_string_value(json_object_get(j, "message")));
	else
		fprintf(stderr, "iscsi-gw: mount: %s\n",
			j && json_string_value(json_object_get(j, "error")) ?
			json_string_value(json_object_get(j, "error")) : reply);
	json_decref(j);
	free(reply);
	return ok ? 0 : 1;
}
