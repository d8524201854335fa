/* fuse-view.c: see fuse-view.h.  The life cycle of the FUSE view: the
 * mount (its folder, its options), the request threads, the tables of
 * targets and LUNs (fuse-internal.h) built at start and rebuilt by a
 * reload, and the stop.  The file system operations are in fuse-ops.c.
 *
 * Design notes.
 *
 * - Our own request loop instead of fuse_loop_mt().  fuse_exit() only sets
 *   a flag: threads blocked in read() on /dev/fuse stay blocked until the
 *   next request, and a lazy unmount while a reader holds a file open
 *   sends none, so shutdown could wait for that reader forever.  Here
 *   each of FUSEV_THREADS threads polls the (non-blocking) /dev/fuse fd
 *   and an eventfd; fuse_view_stop() writes the eventfd, joins the
 *   threads, then fuse_unmount() closes /dev/fuse (the kernel aborts the
 *   connection: requests still queued fail with ENOTCONN) and detaches
 *   the mount (MNT_DETACH).  A request being served finishes first.
 *   fuse_session_receive_buf/process_buf are the calls fuse_loop makes.
 */
#define FUSE_USE_VERSION 31

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "fuse-view.h"
#include "conf/conf.h"
#include "lunmap.h"
#include "images.h"
#include "log.h"
#include "fuse-internal.h"

struct fusev_state fv = { .stop_fd = -1,
			  .open_lock = PTHREAD_MUTEX_INITIALIZER,
			  .tables_lock = PTHREAD_RWLOCK_INITIALIZER };

/* One request thread: see the design notes at the top. */
static void *
fusev_thread(void *arg)
{
	struct fuse_session *se = fuse_get_session(fv.fuse);
	struct fuse_buf fbuf = { .mem = NULL };
	struct pollfd p[2] = {
		{ .fd = fuse_session_fd(se), .events = POLLIN },
		{ .fd = fv.stop_fd, .events = POLLIN },
	};

	while (!fuse_session_exited(se)) {
		int r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("fuse: poll: %m");
			break;
		}
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		r = fuse_session_receive_buf(se, &fbuf);
		if (r == -EINTR || r == -EAGAIN)
			continue;	/* another thread took the request */
		if (r <= 0) {
			/* 0: unmounted or aborted from outside (ENODEV). */
			if (!__atomic_load_n(&fv.stopping, __ATOMIC_RELAXED))
				log_warn("fuse: %s: the view was unmounted or its connection aborted%s%s",
					 fv.mountpoint, r < 0 ? ": " : "",
					 r < 0 ? strerror(-r) : "");
			break;
		}
		fuse_session_process_buf(se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

/* Is a view (ours, or another daemon's) mounted on dir?  From the mount
 * table, which unlike stat() answers whoever asks. */
static bool
fusev_mounted(const char *dir)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent me;
	char buf[4096];
	bool found = false;

	if (!f)
		return false;
	while (getmntent_r(f, &me, buf, sizeof buf))
		if (!strcmp(me.mnt_dir, dir) &&
		    !strcmp(me.mnt_type, "fuse.iscsi-gw"))
			found = true;
	endmntent(f);
	return found;
}

/* Make the mountpoint usable: stale FUSE mounts (ENOTCONN: their daemon
 * died) are lazily unmounted, a missing folder created with its
 * parents. */
static int
fusev_prepare_mountpoint(const char *dir)
{
	struct stat st;

	for (int i = 0; i < 16 && stat(dir, &st) < 0 && errno == ENOTCONN;
	     i++) {
		log_warn("fuse_mount %s: a stale FUSE mount (its daemon is gone): unmounting it",
			 dir);
		if (umount2(dir, MNT_DETACH) < 0) {
			log_error("fuse_mount %s: unmounting the stale mount: %m",
				  dir);
			return -1;
		}
	}
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_error("fuse_mount %s: not a folder", dir);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		log_error("fuse_mount %s: %m", dir);
		return -1;
	}
	{
		char *p = strdup(dir);

		if (!p)
			return -1;
		for (char *s = p + 1; *s; s++) {
			if (*s != '/')
				continue;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				log_error("fuse_mount: creating %s: %m", p);
				free(p);
				return -1;
			}
			*s = '/';
		}
		free(p);
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		log_error("fuse_mount: creating %s: %m", dir);
		return -1;
	}
	return 0;
}

/* The tables: every target of m in map order, every LUN with a backend
 * (per-initiator templates have none) with its "fuse_writable". */
static int
fusev_build_tables(const struct conf *c, struct lunmap *m)
{
	fv.targets = calloc(m->ntargets + 1, sizeof *fv.targets);
	if (!fv.targets)
		return -1;
	for (size_t i = 0; i < m->ntargets; i++) {
		struct target *t = m->targets[i];
		const struct conf_target *ct = NULL;
		struct fusev_target *ft = &fv.targets[fv.ntargets++];

		for (size_t j = 0; j < c->ntargets && !ct; j++)
			if (!strcmp(c->targets[j].name, t->name))
				ct = &c->targets[j];
		ft->t = t;
		ft->luns = calloc(t->nluns + 1, sizeof *ft->luns);
		if (!ft->luns)
			return -1;
		for (size_t k = 0; k < t->nluns; k++) {
			struct lun *l = t->luns[k];
			struct fusev_lun *fl;

			if (!l->be)
				continue;
			fl = &ft->luns[ft->nluns++];
			fl->lun = l;
			for (size_t j = 0; ct && j < ct->nluns; j++)
				if (ct->luns[j].lun == l->id)
					fl->fuse_writable = ct->luns[j].fuse_writable;
			snprintf(fl->name, sizeof fl->name, "lun%u", l->id);
			snprintf(fl->stats_name, sizeof fl->stats_name,
				 "lun%u.stats", l->id);
		}
	}
	return 0;
}

static int fusev_start_at(const struct conf *c, struct lunmap *m,
			  const char *dir);

int
fuse_view_start(const struct conf *c, struct lunmap *m)
{
	if (!c->fuse_mount)
		return 0;
	return fusev_start_at(c, m, c->fuse_mount);
}

int
fuse_view_mount(const struct conf *c, struct lunmap *m, const char *dir,
		char *msg, size_t msgsz)
{
	if (fv.mountpoint || fv.fuse) {
		snprintf(msg, msgsz, "the FUSE view is already mounted on %s",
			 fv.mountpoint ? fv.mountpoint : "?");
		return -1;
	}
	if (dir[0] != '/') {
		snprintf(msg, msgsz, "%s: the folder must be an absolute path", dir);
		return -1;
	}
	if (fusev_start_at(c, m, dir) < 0) {
		snprintf(msg, msgsz, "cannot mount the FUSE view on %s (the daemon's log says why; mounting needs root)",
			 dir);
		return -1;
	}
	snprintf(msg, msgsz, "FUSE view mounted on %s", fv.mountpoint);
	return 0;
}

static int
fusev_start_at(const struct conf *c, struct lunmap *m, const char *dir)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int fd, fl;

	clock_gettime(CLOCK_REALTIME, &fv.start);
	__atomic_store_n(&fv.stopping, false, __ATOMIC_RELAXED);
	fv.mountpoint = strdup(dir);
	if (!fv.mountpoint || fusev_build_tables(c, m) < 0) {
		log_error("fuse: out of memory");
		goto fail;
	}
	if (fusev_prepare_mountpoint(fv.mountpoint) < 0)
		goto fail;
	{
		/* The name the mount table will show (libfuse resolves it
		 * too). */
		char real[PATH_MAX];

		if (!realpath(fv.mountpoint, real)) {
			log_error("fuse_mount %s: %m", fv.mountpoint);
			goto fail;
		}
		free(fv.mountpoint);
		fv.mountpoint = strdup(real);
		if (!fv.mountpoint) {
			log_error("fuse: out of memory");
			goto fail;
		}
	}
	if (fusev_mounted(fv.mountpoint)) {
		log_error("fuse_mount %s: another iscsi-gw view is mounted there (is another daemon running with this map?)",
			  fv.mountpoint);
		goto fail;
	}
	if (fuse_opt_add_arg(&args, "iscsi-gw") < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args,
			     "fsname=iscsi-gw,subtype=iscsi-gw,default_permissions") < 0) {
		log_error("fuse: out of memory");
		fuse_opt_free_args(&args);
		goto fail;
	}
	fv.fuse = fuse_new(&args, &fusev_ops, sizeof fusev_ops, NULL);
	fuse_opt_free_args(&args);
	if (!fv.fuse) {
		log_error("fuse: cannot set up the FUSE view");
		goto fail;
	}
	if (fuse_mount(fv.fuse, fv.mountpoint) < 0) {
		log_error("fuse_mount %s: cannot mount the FUSE view (is /dev/fuse there, and are we root?)",
			  fv.mountpoint);
		goto fail;
	}
	fv.mounted = true;
	/* Non-blocking, so a thread that lost the race for a request goes
	 * back to poll() where it sees the stop eventfd; close-on-exec, so
	 * no child (nbdkit...) keeps the connection alive. */
	fd = fuse_session_fd(fuse_get_session(fv.fuse));
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("fuse: /dev/fuse: %m");
		goto fail;
	}
	fv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fv.stop_fd < 0) {
		log_error("fuse: eventfd: %m");
		goto fail;
	}
	for (size_t i = 0; i < FUSEV_THREADS; i++) {
		int r = pthread_create(&fv.threads[i], NULL, fusev_thread, NULL);
		if (r) {
			log_error("fuse: starting a thread: %s", strerror(r));
			goto fail;
		}
		fv.nthreads++;
	}
	log_info("FUSE view of %zu target%s mounted on %s", fv.ntargets,
		 fv.ntargets == 1 ? "" : "s", fv.mountpoint);
	return 0;
fail:
	fuse_view_stop();
	return -1;
}

void
fuse_view_stop(void)
{
	uint64_t one = 1;

	__atomic_store_n(&fv.stopping, true, __ATOMIC_RELAXED);
	if (fv.fuse)
		fuse_exit(fv.fuse);
	if (fv.stop_fd >= 0 && write(fv.stop_fd, &one, sizeof one) < 0)
		log_warn("fuse: waking the threads: %m");
	for (size_t i = 0; i < fv.nthreads; i++)
		pthread_join(fv.threads[i], NULL);
	fv.nthreads = 0;
	if (fv.mounted) {
		/* Closes /dev/fuse (the connection ends), then unmounts with
		 * MNT_DETACH: root only, so after "user" the dead mount stays
		 * until the next start or an umount -l. */
		fuse_unmount(fv.fuse);
		fv.mounted = false;
		if (fusev_mounted(fv.mountpoint))
			log_warn("fuse: %s is still mounted (unmounting needs root): the next start, or umount -l, removes it",
				 fv.mountpoint);
		else
			log_info("FUSE view unmounted from %s", fv.mountpoint);
	}
	if (fv.fuse)
		fuse_destroy(fv.fuse);
	fv.fuse = NULL;
	/* Files still open when the connection ended: no release came. */
	while (fv.open) {
		struct fusev_handle *h = fv.open;
		fv.open = h->next;
		lun_put(h->flc.lun);
		if (h->image)
			images_release(h->image);
		free(h);
	}
	if (fv.stop_fd >= 0)
		close(fv.stop_fd);
	fv.stop_fd = -1;
	for (size_t i = 0; i < fv.ntargets; i++)
		free(fv.targets[i].luns);
	free(fv.targets);
	fv.targets = NULL;
	fv.ntargets = 0;
	free(fv.mountpoint);
	fv.mountpoint = NULL;
}

/* A reload changed the map (reload.c, loop thread): new tables from the
 * new conf (for "fuse_writable"), swapped in under the write lock, so no
 * request sees a LUN the reload dropped once this returns; files open on
 * such a LUN hold their own reference (fusev_open). */
void
fuse_view_reload(const struct conf *c, struct lunmap *m)
{
	struct fusev_target *old;
	size_t nold;

	if (!fv.mountpoint)
		return;		/* no view */
	pthread_rwlock_wrlock(&fv.tables_lock);
	old = fv.targets;
	nold = fv.ntargets;
	fv.targets = NULL;
	fv.ntargets = 0;
	if (fusev_build_tables(c, m) < 0)
		log_error("fuse: out of memory rebuilding the view: some LUNs are missing from it");
	pthread_rwlock_unlock(&fv.tables_lock);
	for (size_t i = 0; i < nold; i++)
		free(old[i].luns);
	free(old);
}
