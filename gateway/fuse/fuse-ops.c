/* fuse-ops.c: the file system operations of the FUSE view (fuse-view.h):
 * paths to targets, LUNs and images, attributes, listings, open files,
 * reads and writes through the backend, fsync and truncate.  The mount,
 * its request threads and the tables live in fuse-view.c; what both
 * share is in fuse-internal.h.  Modelled on libnbd's fuse/ (nbdfuse): a
 * small read-mostly file system whose files are block devices' contents.
 *
 *   <fuse_mount>/
 *     iqn.2026-11.org.example:disk1/      one folder per target (0755)
 *       lun0                               nblocks * block_size bytes,
 *                                          0400, or 0600 if writable
 *       lun0.stats                         text, 0444, a snapshot taken
 *       ...                                at open
 *       lun2.<key>, lun2.<key>.stats       an initiator's open image of
 *                                          per-initiator LUN 2 (images.h)
 *
 * Design notes (the tables and their reload: fuse-internal.h; the request
 * threads: fuse-view.c).
 *
 * - Data goes through backend_pread/backend_pwrite like SCSI commands
 *   (scsi/sbc-io.c), but called on the view's threads rather than the IO
 *   pool: the backend's thread-model lock (backend.c) is what bounds
 *   concurrency, and the view needs no event loop for completions.
 *   Backends opened with O_DIRECT want block-aligned buffers, offsets
 *   and lengths, so every request is widened to whole blocks in an
 *   aligned bounce buffer; a write that covers part of a block reads
 *   that block first (read-modify-write).
 *
 * - Reads and writes hold the LUN's write_lock shared, as SCSI reads and
 *   writes do (sbc-io.c), so that none sees or splits half of a COMPARE AND
 *   WRITE, ORWRITE or WRITE ATOMIC.
 *   A read-modify-write holds it exclusively, as COMPARE AND WRITE does:
 *   a SCSI write to the same block between our read and our write would
 *   otherwise be undone.  With the LUN's write cache off (WCE 0), or the
 *   file opened O_SYNC/O_DSYNC, writes carry IGW_FLAG_FUA; fsync() is a
 *   backend flush.  Reads and writes count in the LUN's counters (the
 *   same ones iSCSI IO counts in).
 *
 * - direct_io on every file: the kernel's page cache never answers a
 *   read, so a read sees what an initiator wrote a moment ago.  Attribute
 *   and entry timeouts are short (FUSEV_TIMEOUT).
 *
 * - Mounted without allow_other: only root (who mounts it) can enter.
 *   default_permissions makes the kernel apply the mode bits; root
 *   bypasses them, so open() checks writability itself: EACCES when the
 *   map does not say "fuse_writable", EROFS when the LUN is read-only
 *   (read_only, a backend that cannot write, or software write protect
 *   set by MODE SELECT).
 *
 * - As on a block device, O_TRUNC is ignored and the size cannot change
 *   (truncate to another size: EPERM); writing at or past the end gives
 *   ENOSPC, a write that crosses the end is cut short.
 */
#define FUSE_USE_VERSION 31

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <fuse.h>

#include "conf/conf.h"
#include "lunmap.h"
#include "images.h"
#include "images-store.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"
#include "fuse-internal.h"

#define FUSEV_TIMEOUT 1.0		/* seconds: attr and entry cache */
#define FUSEV_CHUNK (1u << 20)		/* bytes per backend call */

struct fusev_node {
	enum fusev_kind kind;
	struct fusev_target *t;
	struct fusev_lun *fl;
	/* An initiator's image (images.h): fl points to img, and held is a
	 * reference on the image that fusev_node_done drops (or open
	 * passes to the file). */
	struct fusev_lun img;
	struct lun *held;
};

/* "lun<N>.<key>": the file name of an initiator's image, the key being
 * the one its files in state_dir carry (images-store.h). */
static void
fusev_image_name(const struct lun *inst, char *buf, size_t sz)
{
	char key[80];

	image_key(inst->target->name, inst->id, inst->initiator, key,
		  sizeof key);
	snprintf(buf, sz, "lun%u.%s", inst->id, key);
}

struct fusev_image_find {
	const struct target *t;
	const char *name;
	bool stats;			/* out: the ".stats" file */
};

/* Registry locked: no blocking. */
static bool
fusev_image_match(struct lun *inst, void *opaque)
{
	struct fusev_image_find *f = opaque;
	char nm[128];
	size_t len;

	if (inst->target != f->t)
		return false;
	fusev_image_name(inst, nm, sizeof nm);
	len = strlen(nm);
	if (strncmp(f->name, nm, len))
		return false;
	if (!f->name[len])
		return true;
	if (!strcmp(f->name + len, ".stats")) {
		f->stats = true;
		return true;
	}
	return false;
}

/* Path to node.  Names compare exactly (this is a file system), though
 * iSCSI compares target names without case.  Call fusev_node_done when
 * done with the node. */
static int
fusev_resolve(const char *path, struct fusev_node *n)
{
	const char *name, *slash;
	size_t len;

	memset(n, 0, sizeof *n);
	if (path[0] != '/')
		return -ENOENT;
	path++;
	if (!*path) {
		n->kind = FV_ROOT;
		return 0;
	}
	slash = strchr(path, '/');
	len = slash ? (size_t)(slash - path) : strlen(path);
	for (size_t i = 0; i < fv.ntargets && !n->t; i++) {
		const char *tn = fv.targets[i].t->name;
		if (strlen(tn) == len && !memcmp(tn, path, len))
			n->t = &fv.targets[i];
	}
	if (!n->t)
		return -ENOENT;
	if (!slash || !slash[1]) {
		n->kind = FV_TARGET;
		return 0;
	}
	name = slash + 1;
	for (size_t k = 0; k < n->t->nluns; k++) {
		struct fusev_lun *fl = &n->t->luns[k];
		if (!strcmp(name, fl->name)) {
			n->kind = FV_LUN;
			n->fl = fl;
			return 0;
		}
		if (!strcmp(name, fl->stats_name)) {
			n->kind = FV_STATS;
			n->fl = fl;
			return 0;
		}
	}
	/* Per-initiator images: "lun<N>.<key>" is the open image of an
	 * initiator logged in now (templates are not in the tables). */
	{
		struct fusev_image_find f = { n->t->t, name, false };
		struct lun *inst = images_hold_match(fusev_image_match, &f);

		if (!inst)
			return -ENOENT;
		n->held = inst;
		n->img.lun = inst;
		n->img.fuse_writable = inst->tmpl && inst->tmpl->conf &&
				       inst->tmpl->conf->fuse_writable;
		fusev_image_name(inst, n->img.name, sizeof n->img.name);
		snprintf(n->img.stats_name, sizeof n->img.stats_name,
			 "%s.stats", n->img.name);
		n->fl = &n->img;
		n->kind = f.stats ? FV_STATS : FV_LUN;
		return 0;
	}
}

/* Drop what fusev_resolve took for an image. */
static void
fusev_node_done(struct fusev_node *n)
{
	if (n->held)
		images_release(n->held);
	n->held = NULL;
}

static uint64_t
fusev_lun_bytes(const struct lun *l)
{
	return l->nblocks << l->block_shift;
}

/* Writes are refused now (EROFS), whatever the map said. */
static bool
fusev_write_protected(struct lun *l)
{
	return l->read_only || !l->be->can_write ||
	       __atomic_load_n(&l->swp, __ATOMIC_RELAXED);
}

static uint64_t
fusev_ld(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* The text of lun<N>.stats, "key value" per line.  Caller frees. */
static char *
fusev_stats_text(const struct fusev_lun *fl, size_t *len)
{
	struct lun *l = fl->lun;
	char *s = NULL;
	int n;

	n = asprintf(&s,
		     "target %s\n"
		     "lun %u\n"
		     "size %" PRIu64 "\n"
		     "block_size %u\n"
		     "backend %s\n"
		     "read_only %s\n"
		     "write_cache %s\n"
		     "fuse_writable %s\n"
		     "reads %" PRIu64 "\n"
		     "writes %" PRIu64 "\n"
		     "read_bytes %" PRIu64 "\n"
		     "write_bytes %" PRIu64 "\n"
		     "errors %" PRIu64 "\n"
		     "%s%s%s",
		     l->target->name, l->id, fusev_lun_bytes(l), l->block_size,
		     l->be->ops.name,
		     fusev_write_protected(l) ? "true" : "false",
		     __atomic_load_n(&l->wce, __ATOMIC_RELAXED) ? "true" : "false",
		     fl->fuse_writable ? "true" : "false",
		     fusev_ld(&l->stat_reads), fusev_ld(&l->stat_writes),
		     fusev_ld(&l->stat_read_bytes), fusev_ld(&l->stat_write_bytes),
		     fusev_ld(&l->stat_errors),
		     l->initiator ? "initiator " : "",
		     l->initiator ? l->initiator : "",
		     l->initiator ? "\n" : "");
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return s;
}

/* Per-IO errors: at most one log line a second for the whole view. */
static void __attribute__((format(printf, 1, 2)))
fusev_log_io_error(const char *fmt, ...)
{
	static time_t last;
	time_t now = time(NULL), prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	char msg[512];
	va_list ap;

	if (now == prev ||
	    !__atomic_compare_exchange_n(&last, &prev, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("fuse: %s", msg);
}

static void
fusev_fill_stat(const struct fusev_node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_uid = 0;
	st->st_gid = 0;
	st->st_atim = st->st_mtim = st->st_ctim = fv.start;
	switch (n->kind) {
	case FV_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + fv.ntargets;
		break;
	case FV_TARGET:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case FV_LUN: {
		struct lun *l = n->fl->lun;
		bool w = n->fl->fuse_writable && !fusev_write_protected(l);
		st->st_mode = S_IFREG | (w ? 0600 : 0400);
		st->st_nlink = 1;
		st->st_size = (off_t)fusev_lun_bytes(l);
		/* The preferred IO size: tools (cat, cmp, cp) read this
		 * much at once; one FUSE request carries up to 128 KiB. */
		st->st_blksize = 128 * 1024;
		st->st_blocks = (blkcnt_t)(fusev_lun_bytes(l) / 512);
		break;
	}
	case FV_STATS: {
		size_t len = 0;
		char *s = fusev_stats_text(n->fl, &len);
		free(s);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		break;
	}
	}
}

static int
fusev_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fusev_node n;
	int r;

	pthread_rwlock_rdlock(&fv.tables_lock);		/* reload */
	r = fusev_resolve(path, &n);
	if (r == 0)
		fusev_fill_stat(&n, st);
	pthread_rwlock_unlock(&fv.tables_lock);
	fusev_node_done(&n);
	return r;
}

static int fusev_readdir_unlocked(const char *path, void *buf,
				  fuse_fill_dir_t filler);

struct fusev_image_list {
	const struct target *t;
	void *buf;
	fuse_fill_dir_t filler;
};

/* Registry locked: filler only copies the name. */
static void
fusev_image_list_one(struct lun *inst, void *opaque)
{
	struct fusev_image_list *il = opaque;
	char nm[128], st[136];

	if (inst->target != il->t)
		return;
	fusev_image_name(inst, nm, sizeof nm);
	snprintf(st, sizeof st, "%s.stats", nm);
	il->filler(il->buf, nm, NULL, 0, 0);
	il->filler(il->buf, st, NULL, 0, 0);
}

static int
fusev_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
	      off_t offset, struct fuse_file_info *fi,
	      enum fuse_readdir_flags flags)
{
	int r;

	/* The whole listing under the tables lock (reload). */
	pthread_rwlock_rdlock(&fv.tables_lock);
	r = fusev_readdir_unlocked(path, buf, filler);
	pthread_rwlock_unlock(&fv.tables_lock);
	return r;
}

static int
fusev_readdir_unlocked(const char *path, void *buf, fuse_fill_dir_t filler)
{
	struct fusev_node n;
	int r = fusev_resolve(path, &n);

	if (r < 0)
		return r;
	if (n.kind != FV_ROOT && n.kind != FV_TARGET) {
		fusev_node_done(&n);
		return -ENOTDIR;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (n.kind == FV_ROOT) {
		for (size_t i = 0; i < fv.ntargets; i++)
			if (filler(buf, fv.targets[i].t->name, NULL, 0, 0))
				break;
		return 0;
	}
	for (size_t k = 0; k < n.t->nluns; k++) {
		if (filler(buf, n.t->luns[k].name, NULL, 0, 0) ||
		    filler(buf, n.t->luns[k].stats_name, NULL, 0, 0))
			break;
	}
	/* The open images of this target's per-initiator LUNs. */
	{
		struct fusev_image_list il = { n.t->t, buf, filler };
		images_foreach(fusev_image_list_one, &il);
	}
	return 0;
}

static int fusev_open_unlocked(const char *path, struct fuse_file_info *fi);

static int
fusev_open(const char *path, struct fuse_file_info *fi)
{
	int r;

	pthread_rwlock_rdlock(&fv.tables_lock);		/* reload */
	r = fusev_open_unlocked(path, fi);
	pthread_rwlock_unlock(&fv.tables_lock);
	return r;
}

static int
fusev_open_unlocked(const char *path, struct fuse_file_info *fi)
{
	struct fusev_node n;
	struct fusev_handle *h = NULL;
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY;
	int r = fusev_resolve(path, &n);

	if (r < 0)
		return r;
	switch (n.kind) {
	case FV_ROOT:
	case FV_TARGET:
		r = -EISDIR;
		break;
	case FV_STATS: {
		size_t len = 0;
		char *s;

		if (wr) {
			r = -EACCES;
			break;
		}
		s = fusev_stats_text(n.fl, &len);
		if (!s || !(h = malloc(sizeof *h + len + 1))) {
			free(s);
			r = -ENOMEM;
			break;
		}
		memcpy(h->text, s, len + 1);
		free(s);
		h->len = len;
		break;
	}
	case FV_LUN:
		if (wr && !n.fl->fuse_writable)
			r = -EACCES;
		else if (wr && fusev_write_protected(n.fl->lun))
			r = -EROFS;
		else if (!(h = malloc(sizeof *h)))
			r = -ENOMEM;
		else
			h->len = 0;
		break;
	default:
		r = -ENOENT;
	}
	if (r < 0) {
		fusev_node_done(&n);
		return r;
	}
	h->kind = n.kind;
	/* A copy of the table entry, which a reload may free, and a
	 * reference that keeps the LUN itself until release; an image's
	 * file keeps its registry reference (the image stays open). */
	h->flc = *n.fl;
	h->fl = &h->flc;
	lun_get(h->flc.lun);
	h->image = NULL;
	if (n.kind == FV_LUN) {
		h->image = n.held;
		n.held = NULL;
	}
	fusev_node_done(&n);
	h->sync = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
	pthread_mutex_lock(&fv.open_lock);
	h->prev = NULL;
	h->next = fv.open;
	if (fv.open)
		fv.open->prev = h;
	fv.open = h;
	pthread_mutex_unlock(&fv.open_lock);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int
fusev_release(const char *path, struct fuse_file_info *fi)
{
	struct fusev_handle *h = (struct fusev_handle *)(uintptr_t)fi->fh;

	pthread_mutex_lock(&fv.open_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fv.open = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fv.open_lock);
	lun_put(h->flc.lun);
	if (h->image)
		images_release(h->image);
	free(h);
	return 0;
}

/* Bounce buffers are page-aligned for O_DIRECT backends. */
static void *
fusev_aligned(size_t n)
{
	void *p;

	return posix_memalign(&p, 4096, (n + 4095) & ~(size_t)4095) ? NULL : p;
}

/* Read [off, off+size) of l, which lies inside the LUN and spans at most
 * FUSEV_CHUNK bytes once widened to whole blocks. */
static int
fusev_read_span(struct lun *l, char *out, uint32_t size, uint64_t off)
{
	uint64_t bs = l->block_size;
	uint64_t first = off & ~(bs - 1);
	uint64_t end = (off + size + bs - 1) & ~(bs - 1);
	uint8_t *b = fusev_aligned(end - first);
	int r;

	if (!b)
		return -ENOMEM;
	/* Shared, as SCSI reads: never half of an exclusive command. */
	pthread_rwlock_rdlock(&l->write_lock);
	r = backend_pread(l->be, b, (uint32_t)(end - first), first);
	pthread_rwlock_unlock(&l->write_lock);
	if (r == 0)
		memcpy(out, b + (off - first), size);
	free(b);
	return r;
}

static int
fusev_write_span(struct fusev_handle *h, const char *in, uint32_t size,
	       uint64_t off)
{
	struct lun *l = h->fl->lun;
	uint64_t bs = l->block_size;
	uint64_t first = off & ~(bs - 1);
	uint64_t end = (off + size + bs - 1) & ~(bs - 1);
	bool head = off != first, tail = off + size != end;
	uint32_t flags = 0;
	uint8_t *b = fusev_aligned(end - first);
	int r = 0;

	if (!b)
		return -ENOMEM;
	/* WCE off: stable before we answer, as SCSI writes (sbc.c). */
	if (h->sync || !__atomic_load_n(&l->wce, __ATOMIC_RELAXED))
		flags |= IGW_FLAG_FUA;
	if (head || tail)
		pthread_rwlock_wrlock(&l->write_lock);
	else
		pthread_rwlock_rdlock(&l->write_lock);
	if (head)
		r = backend_pread(l->be, b, (uint32_t)bs, first);
	if (r == 0 && tail && (end - bs != first || !head))
		r = backend_pread(l->be, b + (end - bs - first), (uint32_t)bs,
				  end - bs);
	if (r == 0) {
		memcpy(b + (off - first), in, size);
		r = backend_pwrite(l->be, b, (uint32_t)(end - first), first,
				   flags);
	}
	pthread_rwlock_unlock(&l->write_lock);
	free(b);
	return r;
}

/* What a SCSI medium access command would be refused for, as an errno:
 * a SANITIZE running (EBUSY: NOT READY, SANITIZE IN PROGRESS), the
 * failure mode of a failed one (EIO: MEDIUM ERROR, SANITIZE COMMAND
 * FAILED), a removable LUN's medium ejected (ENOMEDIUM: NOT READY,
 * MEDIUM NOT PRESENT); 0 when none applies.  The view must not show a
 * LUN half erased or let a write slip into an erase. */
static int
fusev_medium_error(struct lun *l)
{
	if (__atomic_load_n(&l->sanitizing, __ATOMIC_ACQUIRE))
		return -EBUSY;
	if (__atomic_load_n(&l->sanitize_failed, __ATOMIC_ACQUIRE))
		return -EIO;
	if (__atomic_load_n(&l->medium_out, __ATOMIC_ACQUIRE))
		return -ENOMEDIUM;
	return 0;
}

/* The largest piece starting at off whose block-widened span fits
 * FUSEV_CHUNK. */
static uint32_t
fusev_piece(const struct lun *l, uint64_t off, size_t left)
{
	uint64_t head = off & (l->block_size - 1);

	return (uint32_t)MIN(left, FUSEV_CHUNK - head - l->block_size);
}

static int
fusev_read(const char *path, char *buf, size_t size, off_t offset,
	   struct fuse_file_info *fi)
{
	struct fusev_handle *h = (struct fusev_handle *)(uintptr_t)fi->fh;
	struct lun *l;
	uint64_t devsz, off = (uint64_t)offset;
	size_t done = 0;
	int r;

	if (offset < 0)
		return -EINVAL;
	if (h->kind == FV_STATS) {
		if (off >= h->len)
			return 0;
		size = MIN(size, h->len - off);
		memcpy(buf, h->text + off, size);
		return (int)size;
	}
	l = h->fl->lun;
	devsz = fusev_lun_bytes(l);
	if (off >= devsz || size == 0)
		return 0;
	r = fusev_medium_error(l);
	if (r < 0)
		return r;
	size = MIN(size, devsz - off);
	while (done < size) {
		uint32_t n = fusev_piece(l, off + done, size - done);

		r = fusev_read_span(l, buf + done, n, off + done);
		if (r < 0) {
			__atomic_add_fetch(&l->stat_errors, 1, __ATOMIC_RELAXED);
			fusev_log_io_error("%s: read at byte %" PRIu64 ": %s",
					   l->pointer, off + done, strerror(-r));
			return r;
		}
		done += n;
	}
	__atomic_add_fetch(&l->stat_reads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->stat_read_bytes, size, __ATOMIC_RELAXED);
	return (int)size;
}

static int
fusev_write(const char *path, const char *buf, size_t size, off_t offset,
	    struct fuse_file_info *fi)
{
	struct fusev_handle *h = (struct fusev_handle *)(uintptr_t)fi->fh;
	struct lun *l;
	uint64_t devsz, off = (uint64_t)offset;
	size_t done = 0;
	int r;

	if (offset < 0)
		return -EINVAL;
	if (h->kind != FV_LUN || !h->fl->fuse_writable)
		return -EACCES;
	l = h->fl->lun;
	/* Write protection may have been set since open (MODE SELECT). */
	if (fusev_write_protected(l))
		return -EROFS;
	r = fusev_medium_error(l);
	if (r < 0)
		return r;
	devsz = fusev_lun_bytes(l);
	if (size == 0)
		return 0;
	if (off >= devsz)
		return -ENOSPC;
	size = MIN(size, devsz - off);
	while (done < size) {
		uint32_t n = fusev_piece(l, off + done, size - done);

		r = fusev_write_span(h, buf + done, n, off + done);
		if (r < 0) {
			__atomic_add_fetch(&l->stat_errors, 1, __ATOMIC_RELAXED);
			fusev_log_io_error("%s: write at byte %" PRIu64 ": %s",
					   l->pointer, off + done, strerror(-r));
			return r;
		}
		done += n;
	}
	__atomic_add_fetch(&l->stat_writes, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->stat_write_bytes, size, __ATOMIC_RELAXED);
	return (int)size;
}

static int
fusev_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fusev_handle *h = (struct fusev_handle *)(uintptr_t)fi->fh;
	struct lun *l;
	int r;

	if (h->kind != FV_LUN)
		return 0;
	l = h->fl->lun;
	r = backend_flush(l->be, fusev_lun_bytes(l), 0);
	if (r < 0) {
		__atomic_add_fetch(&l->stat_errors, 1, __ATOMIC_RELAXED);
		fusev_log_io_error("%s: flush: %s", l->pointer, strerror(-r));
	}
	return r;
}

/* A disk keeps its size; truncating to the size it has is harmless
 * (shells open with O_TRUNC where the kernel has no atomic O_TRUNC). */
static int
fusev_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fusev_node n;
	int r;

	pthread_rwlock_rdlock(&fv.tables_lock);		/* reload */
	r = fusev_resolve(path, &n);
	if (r == 0) {
		if (n.kind == FV_ROOT || n.kind == FV_TARGET)
			r = -EISDIR;
		else if (n.kind == FV_STATS || !n.fl->fuse_writable)
			r = -EACCES;
		else if (size < 0 ||
			 (uint64_t)size != fusev_lun_bytes(n.fl->lun))
			r = -EPERM;
	}
	pthread_rwlock_unlock(&fv.tables_lock);
	fusev_node_done(&n);
	return r;
}

static void *
fusev_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->entry_timeout = FUSEV_TIMEOUT;
	cfg->attr_timeout = FUSEV_TIMEOUT;
	cfg->negative_timeout = 0;
	/* Requests are read into memory: the write path copies anyway. */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	return NULL;
}

const struct fuse_operations fusev_ops = {
	.init = fusev_init,
	.getattr = fusev_getattr,
	.readdir = fusev_readdir,
	.open = fusev_open,
	.release = fusev_release,
	.read = fusev_read,
	.write = fusev_write,
	.fsync = fusev_fsync,
	.truncate = fusev_truncate,
};
