/* mode-save.c: saved mode pages (SPC-4 §6.11, §7.5.2).  The changeable
 * fields (the caching page's WCE, the control page's SWP) can be saved
 * with MODE SELECT's SP bit when the map has a state_dir: they go to
 * state_dir/mode-<hash of the target name>-<LUN>, written on an IO worker
 * (temp file, fsync, rename, fsync of the folder) before the status, and
 * they are the LUN's current values when the daemon starts again, as
 * saved values are at power on.  MODE SENSE reports them with PC 11b.
 *
 *   iscsi-gw saved mode pages 1
 *   target <name>
 *   lun <id>
 *   wce <0|1>
 *   swp <0|1>
 *
 * Saves carry a sequence number taken on the loop thread; the writer
 * skips a state older than the one on disk.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scsi.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "util/util.h"

struct mode_save {
	char *path, *dir;
	int wce, swp;		/* saved values: loop thread */
	uint64_t seq;		/* last save asked: loop thread */
	pthread_mutex_t lock;
	uint64_t saved_seq;	/* last save on disk: lock */
};

static int
load(struct lun *l, struct mode_save *ms)
{
	FILE *f = fopen(ms->path, "re");
	char line[1100], target[1025];
	unsigned lineno = 0, id, v;
	bool head = false, tgt = false, lun = false;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		log_error("%s: %m", ms->path);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (lineno == 1) {
			head = !strcmp(line, "iscsi-gw saved mode pages 1\n");
			if (!head)
				break;
		} else if (sscanf(line, "target %1024s", target) == 1) {
			tgt = !strcmp(target, l->target->name);
		} else if (sscanf(line, "lun %u", &id) == 1) {
			lun = id == l->id;
		} else if (sscanf(line, "wce %u", &v) == 1 && v <= 1) {
			ms->wce = (int)v;
		} else if (sscanf(line, "swp %u", &v) == 1 && v <= 1) {
			ms->swp = (int)v;
		} else {
			fclose(f);
			log_error("%s:%u: unreadable line; remove the file to "
				  "start with the map's settings", ms->path,
				  lineno);
			return -1;
		}
	}
	fclose(f);
	if (!head || !tgt || !lun) {
		log_error("%s: not the saved mode pages of %s LUN %u; remove "
			  "the file to start with the map's settings",
			  ms->path, l->target->name, l->id);
		return -1;
	}
	if (ms->wce && !l->be->can_flush) {
		log_error("%s: a write cache was saved, and the backend now "
			  "cannot flush; remove the file", ms->path);
		return -1;
	}
	l->wce = ms->wce;
	l->swp = ms->swp;
	log_info("%s: saved mode pages restored (write cache %s%s)",
		 l->pointer, ms->wce ? "on" : "off",
		 ms->swp ? ", software write protect on" : "");
	return 0;
}

int
mode_lun_init(struct lun *l, const char *state_dir)
{
	struct mode_save *ms;

	if (!state_dir)
		return 0;
	ms = calloc(1, sizeof *ms);
	if (!ms)
		goto oom;
	pthread_mutex_init(&ms->lock, NULL);
	ms->wce = l->wce;
	ms->swp = l->swp;
	l->ms = ms;
	if (asprintf(&ms->path, "%s/mode-%016" PRIx64 "-%u", state_dir,
		     state_hash(l->target->name), l->id) < 0) {
		ms->path = NULL;
		goto oom;
	}
	ms->dir = strdup(state_dir);
	if (!ms->dir)
		goto oom;
	if (load(l, ms) < 0) {
		mode_lun_free(l);
		return -1;
	}
	return 0;
oom:
	log_error("%s: %m", l->pointer);
	mode_lun_free(l);
	return -1;
}

void
mode_lun_free(struct lun *l)
{
	struct mode_save *ms = l->ms;

	if (!ms)
		return;
	free(ms->path);
	free(ms->dir);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
	l->ms = NULL;
}

bool
mode_can_save(const struct lun *l)
{
	return l->ms != NULL;
}

void
mode_saved(const struct lun *l, int *wce, int *swp)
{
	*wce = l->ms ? l->ms->wce : 0;
	*swp = l->ms ? l->ms->swp : 0;
}

struct save_job {
	struct io_job job;
	struct scsi_cmd *cmd;
	struct mode_save *ms;
	char *text;
	uint64_t seq;
	int result;
};

static void
save_run(struct io_job *job)
{
	struct save_job *s = container_of(job, struct save_job, job);
	struct mode_save *ms = s->ms;

	pthread_mutex_lock(&ms->lock);
	if (s->seq > ms->saved_seq) {
		s->result = state_file_replace(ms->path, ms->dir, s->text,
					       strlen(s->text));
		if (s->result == 0)
			ms->saved_seq = s->seq;
	}
	pthread_mutex_unlock(&ms->lock);
}

static void
save_done(struct io_job *job)
{
	struct save_job *s = container_of(job, struct save_job, job);

	if (s->result < 0)
		scsi_set_sense(s->cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
	scsi_cmd_complete(s->cmd);
	free(s->text);
	free(s);
}

int
mode_save(struct scsi_cmd *cmd, int wce, int swp)
{
	struct lun *l = cmd->lun;
	struct mode_save *ms = l->ms;
	struct save_job *s = calloc(1, sizeof *s);

	if (wce >= 0)
		ms->wce = wce;
	if (swp >= 0)
		ms->swp = swp;
	if (!s || asprintf(&s->text, "iscsi-gw saved mode pages 1\n"
			   "target %s\nlun %u\nwce %d\nswp %d\n",
			   l->target->name, l->id, ms->wce, ms->swp) < 0) {
		log_error("%s: cannot save the mode pages: %m", l->pointer);
		free(s);
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
		return SCSI_DONE;
	}
	s->cmd = cmd;
	s->ms = ms;
	s->seq = ++ms->seq;
	s->job.fn = save_run;
	s->job.done = save_done;
	s->job.loop = cmd->loop;
	io_submit(&s->job);
	return SCSI_ASYNC;
}
