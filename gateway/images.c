/* images.c: see images.h.  The registry of open images (the daemon):
 * which initiator's image of which LUN is open, provisioning one at login
 * and releasing it after the last logout.  The store it uses (names,
 * metadata, creating and removing images of each kind: shared with the
 * `images` command) is images-store.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include <jansson.h>

#include "images.h"
#include "images-store.h"
#include "lvm.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "io/io.h"
#include "iscsi/iscsi.h"
#include "util/util.h"

static char *state_dir;

/* ---- the registry (daemon) ---- */

enum img_state { IMG_OPENING, IMG_OPEN, IMG_CLOSING };

struct image {
	struct image *next;
	struct lun *tmpl;
	char *initiator;
	enum img_state state;
	unsigned refs;
	int lock_fd;
	struct image_paths ip;
	struct lun *inst;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER;
static struct image *reg;			/* reg_lock */

struct release_job {
	struct io_job job;
	struct lun *inst;
	struct release_job *next, *prev;	/* reg_lock */
};
static struct release_job *releases;	/* reg_lock: done not yet run */

void
images_init(const struct lunmap *m)
{
	free(state_dir);
	state_dir = m->state_dir ? strdup(m->state_dir) : NULL;
}

static struct image *
find(struct lun *tmpl, const char *initiator)
{
	for (struct image *e = reg; e; e = e->next)
		if (e->tmpl == tmpl && !strcasecmp(e->initiator, initiator))
			return e;
	return NULL;
}

static void
unlink_entry(struct image *e)
{
	for (struct image **pp = &reg; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
}

static void
free_entry(struct image *e)
{
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	image_paths_free(&e->ip);
	free(e->initiator);
	free(e);
}

/* Create or find the image and open it (no registry lock held). */
static int
provision(struct image *e, uint16_t *status, char *err, size_t errsz)
{
	const struct conf_pi *pi = e->tmpl->pi;
	const char *tname = e->tmpl->target->name;
	struct conf_kv kv[2];
	size_t nkv = 0;
	int r;

	*status = LOGIN_TARGET_ERROR;
	if (!state_dir)
		return image_set_err(err, errsz, status, "no state_dir");
	if (image_paths(state_dir, tname, e->tmpl->id, pi, e->initiator,
			&e->ip) < 0)
		return image_set_err(err, errsz, status, "out of memory");
	e->lock_fd = image_lock(&e->ip, false);
	if (e->lock_fd < 0 && errno == EWOULDBLOCK) {
		*status = LOGIN_SERVICE_UNAVAILABLE;
		return image_set_err(err, errsz, status,
			       "image %s is busy: an `iscsi-gw images` command (or another gateway) is using it",
			       e->ip.image);
	}
	if (e->lock_fd < 0)
		return image_set_err(err, errsz, status, "%s: %s", e->ip.meta,
			       strerror(errno));
	r = image_exists(pi, &e->ip, err, errsz);
	if (r < 0)
		return -1;
	if (r == 1 && pi->policy == PI_RESET) {
		log_info("%s: policy reset: a fresh image for %s", e->tmpl->pointer,
			 e->initiator);
		if (image_remove(pi, &e->ip, err, errsz) < 0)
			return -1;
		r = 0;
	}
	if (r == 0) {
		if (image_create(pi, &e->ip, status, err, errsz) < 0)
			return -1;
		log_info("%s: created %s image %s for %s", e->tmpl->pointer,
			 image_kind_name(pi), e->ip.image, e->initiator);
	}
	/* The metadata names the initiator as it first logged in; a later
	 * login may spell it in another case. */
	if ((r == 0 || lseek(e->lock_fd, 0, SEEK_END) == 0) &&
	    image_write_meta(e->lock_fd, tname, e->tmpl->id, pi, e->initiator,
			     &e->ip) < 0)
		return image_set_err(err, errsz, status, "%s: %s", e->ip.meta,
			       strerror(errno));
	switch (pi->kind) {
	case PI_OVERLAY:
		kv[nkv++] = (struct conf_kv){ "path", e->ip.image };
		kv[nkv++] = (struct conf_kv){ "format", "qcow2" };
		e->inst = lun_instance_new(e->tmpl, e->initiator, "qemu-nbd",
					   kv, nkv);
		break;
	case PI_FILE:
		kv[nkv++] = (struct conf_kv){ "path", e->ip.image };
		e->inst = lun_instance_new(e->tmpl, e->initiator, "file", kv,
					   nkv);
		break;
	case PI_LVM:
		kv[nkv++] = (struct conf_kv){ "path", e->ip.device };
		e->inst = lun_instance_new(e->tmpl, e->initiator, "blockdev",
					   kv, nkv);
		break;
	}
	if (!e->inst) {
		const char *why = backend_last_error()[0] ? backend_last_error() :
			strerror(errno);
		return image_set_err(err, errsz, status, "opening %s: %s", e->ip.image,
			       why);
	}
	return 0;
}

int
images_acquire(struct lun *tmpl, const char *initiator, struct lun **out,
	       uint16_t *status, char *err, size_t errsz)
{
	struct image *e;
	int r;

	err[0] = '\0';
	*status = LOGIN_OK;
	pthread_mutex_lock(&reg_lock);
	for (;;) {
		e = find(tmpl, initiator);
		if (!e)
			break;
		if (e->state == IMG_OPEN) {
			e->refs++;
			*out = e->inst;
			pthread_mutex_unlock(&reg_lock);
			return 0;
		}
		pthread_cond_wait(&reg_cond, &reg_lock);
	}
	e = calloc(1, sizeof *e);
	if (!e || !(e->initiator = strdup(initiator))) {
		free(e);
		pthread_mutex_unlock(&reg_lock);
		*status = LOGIN_OUT_OF_RESOURCES;
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	e->tmpl = tmpl;
	e->state = IMG_OPENING;
	e->refs = 1;
	e->lock_fd = -1;
	e->next = reg;
	reg = e;
	pthread_mutex_unlock(&reg_lock);

	r = provision(e, status, err, errsz);

	pthread_mutex_lock(&reg_lock);
	if (r < 0) {
		unlink_entry(e);
		if (*status == LOGIN_OK)
			*status = LOGIN_TARGET_ERROR;
	} else {
		e->state = IMG_OPEN;
		*out = e->inst;
	}
	pthread_cond_broadcast(&reg_cond);
	pthread_mutex_unlock(&reg_lock);
	if (r < 0)
		free_entry(e);
	return r;
}

void
images_release(struct lun *inst)
{
	struct image *e;
	char err[512] = "";

	pthread_mutex_lock(&reg_lock);
	for (e = reg; e && e->inst != inst; e = e->next)
		;
	if (!e || --e->refs > 0) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	e->state = IMG_CLOSING;
	pthread_mutex_unlock(&reg_lock);

	/* Closing flushes: a file backend syncs, qemu-nbd closes the
	 * qcow2 cleanly. */
	lun_free(e->inst);
	e->inst = NULL;
	if (e->tmpl->pi->policy == PI_DELETE) {
		if (image_remove(e->tmpl->pi, &e->ip, err, sizeof err) < 0)
			log_error("%s: policy delete: %s", e->tmpl->pointer, err);
		else
			log_info("%s: policy delete: removed the image of %s",
				 e->tmpl->pointer, e->initiator);
		unlink(e->ip.meta);
	}
	/* Unlocked before the entry goes, so the next login finds it free. */
	close(e->lock_fd);
	e->lock_fd = -1;
	pthread_mutex_lock(&reg_lock);
	unlink_entry(e);
	pthread_cond_broadcast(&reg_cond);
	pthread_mutex_unlock(&reg_lock);
	free_entry(e);
}

static void
release_run(struct io_job *job)
{
	struct release_job *rj = container_of(job, struct release_job, job);

	images_release(rj->inst);
}

static void
release_done(struct io_job *job)
{
	struct release_job *rj = container_of(job, struct release_job, job);

	pthread_mutex_lock(&reg_lock);
	if (rj->prev)
		rj->prev->next = rj->next;
	else
		releases = rj->next;
	if (rj->next)
		rj->next->prev = rj->prev;
	pthread_mutex_unlock(&reg_lock);
	free(rj);
}

void
images_release_async(struct lun *inst, struct evloop *loop)
{
	struct release_job *rj = calloc(1, sizeof *rj);

	if (!rj) {
		images_release(inst);
		return;
	}
	rj->inst = inst;
	rj->job.fn = release_run;
	rj->job.done = release_done;
	rj->job.loop = loop;
	pthread_mutex_lock(&reg_lock);
	rj->next = releases;
	if (releases)
		releases->prev = rj;
	releases = rj;
	pthread_mutex_unlock(&reg_lock);
	io_submit(&rj->job);
}

void
images_shutdown(void)
{
	/* The pool ran every job; only completions the stopped loop never
	 * delivered are left. */
	while (releases) {
		struct release_job *rj = releases;
		releases = rj->next;
		free(rj);
	}
	while (reg) {
		struct image *e = reg;
		log_warn("%s: image of %s still open at exit: closing it",
			 e->tmpl->pointer, e->initiator);
		reg = e->next;
		lun_free(e->inst);
		free_entry(e);
	}
	free(state_dir);
	state_dir = NULL;
}

struct lun *
images_hold_match(bool (*match)(struct lun *inst, void *opaque), void *opaque)
{
	struct lun *found = NULL;

	pthread_mutex_lock(&reg_lock);
	for (struct image *e = reg; e && !found; e = e->next)
		if (e->state == IMG_OPEN && match(e->inst, opaque)) {
			e->refs++;
			found = e->inst;
		}
	pthread_mutex_unlock(&reg_lock);
	return found;
}

void
images_foreach(void (*fn)(struct lun *inst, void *opaque), void *opaque)
{
	pthread_mutex_lock(&reg_lock);
	for (struct image *e = reg; e; e = e->next)
		if (e->state == IMG_OPEN)
			fn(e->inst, opaque);
	pthread_mutex_unlock(&reg_lock);
}

bool
images_template_busy(const struct lun *tmpl)
{
	bool busy = false;

	pthread_mutex_lock(&reg_lock);
	for (struct image *e = reg; e && !busy; e = e->next)
		busy = e->tmpl == tmpl;
	pthread_mutex_unlock(&reg_lock);
	return busy;
}
