/* fuse-internal.h: what the two halves of the FUSE view share: the
 * view's state (fv) and the tables of targets and LUNs it shows, which
 * the life cycle (fuse-view.c: the mount, the request threads, the
 * tables' building and reload) sets up and the file system operations
 * (fuse-ops.c) read, and the open files both know.
 *
 * Design notes.
 *
 * - libfuse's high-level API (paths), FUSE_USE_VERSION 31.  The tables
 *   below are built at start and rebuilt by a reload of the map
 *   (fuse_view_reload, on the loop thread): fv.tables_lock guards them.
 *   Request threads hold it shared while they resolve a path and use
 *   what it names; an open file keeps a copy of its LUN's entry and a
 *   reference on the LUN (lun_get), so a LUN a reload drops stays open,
 *   and is not freed, until the file is closed.
 */
#ifndef IGW_FUSE_INTERNAL_H
#define IGW_FUSE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct fuse;
struct fuse_operations;
struct lun;
struct target;

#define FUSEV_THREADS 4

struct fusev_lun {
	struct lun *lun;
	bool fuse_writable;		/* "fuse_writable" in the map */
	char name[128];			/* "lun<N>", or "lun<N>.<key>" */
	char stats_name[136];		/* the same and ".stats" */
};

struct fusev_target {
	struct target *t;
	struct fusev_lun *luns;
	size_t nluns;
};

/* Set up by fuse_view_start, read-only while the threads run. */
struct fusev_state {
	struct fuse *fuse;
	char *mountpoint;
	bool mounted;
	int stop_fd;			/* eventfd: readable once stopping */
	pthread_t threads[FUSEV_THREADS];
	size_t nthreads;
	struct fusev_target *targets;	/* tables_lock */
	size_t ntargets;		/* tables_lock */
	pthread_rwlock_t tables_lock;	/* reload: see the design notes */
	struct timespec start;		/* times of every file */
	bool stopping;			/* atomic */
	pthread_mutex_t open_lock;
	struct fusev_handle *open;	/* open files, open_lock */
};

extern struct fusev_state fv;

enum fusev_kind { FV_ROOT, FV_TARGET, FV_LUN, FV_STATS };

/* An open file, in fuse_file_info.fh.  Also on the list of open files
 * (fv.open, under fv.open_lock): a file still open when the view stops
 * gets no release call, and is freed by fuse_view_stop. */
struct fusev_handle {
	struct fusev_handle *prev, *next;	/* fv.open_lock */
	enum fusev_kind kind;
	struct fusev_lun *fl;		/* &flc: the tables may be rebuilt */
	struct fusev_lun flc;		/* holds a reference on flc.lun */
	struct lun *image;		/* an image: its registry reference */
	bool sync;			/* opened O_SYNC or O_DSYNC */
	size_t len;			/* FV_STATS: the snapshot */
	char text[];
};

/* fuse-ops.c */
/* The file system operations, for fuse_new. */
extern const struct fuse_operations fusev_ops;

#endif
