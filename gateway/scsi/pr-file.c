/* pr-file.c: the APTPL state file (SPC-4 §5.13.5).  With a state_dir,
 * a LUN's reservations are kept in state_dir/pr-<hash of the target
 * name>-<LUN> while the last APTPL received is one, and restored when the
 * LUN is built.  A save runs on the IO workers: temp file, fsync, rename,
 * fsync of the folder, so a crash leaves the old state or the new one.
 *
 * Each save carries a sequence number taken under pr_lock; the writer
 * skips a state older than the one on disk, so commands racing to the
 * workers never leave an old state behind.  A failed save fails the
 * command with HARDWARE ERROR; the state in memory stays (other nexuses
 * may have seen it already) and the next save writes all of it.
 * Restoring runs on the main thread before any session exists.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scsi.h"
#include "pr.h"
#include "lunmap.h"
#include "log.h"
#include "util/util.h"

uint64_t
state_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The state as text, one registration a line (pr_lock held):
 *
 *   iscsi-gw persistent reservations 1
 *   target <name>
 *   lun <id>
 *   type <type, 0: none>
 *   reg <key hex> <flags> <ISID hex, *: any ISID> <initiator name>
 *
 * flags: h holder, a ALL_TG_PT, - neither.
 */
char *
pr_state_text(const struct lun *l, size_t *len)
{
	const struct pr_state *pr = l->pr;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	fprintf(f, "iscsi-gw persistent reservations 1\ntarget %s\nlun %u\ntype %u\n",
		l->target->name, l->id, pr->type);
	for (size_t i = 0; i < pr->nregs; i++) {
		const struct pr_reg *r = &pr->regs[i];
		char isid[13] = "*";

		if (!r->any_isid)
			snprintf(isid, sizeof isid, "%02x%02x%02x%02x%02x%02x",
				 r->isid[0], r->isid[1], r->isid[2], r->isid[3],
				 r->isid[4], r->isid[5]);
		fprintf(f, "reg %016" PRIx64 " %s%s%s %s %s\n", r->key,
			r->holder ? "h" : "", r->all_tg_pt ? "a" : "",
			!r->holder && !r->all_tg_pt ? "-" : "", isid,
			r->initiator);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0 || fsync(fd) < 0) {
		r = -errno;
		log_error("fsync %s: %m", dir);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/* Replace path with text: a crash leaves the old file or the new one. */
int
state_file_replace(const char *path, const char *dir, const char *text, size_t len)
{
	CLEANUP_FREE char *tmp = NULL;
	int fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	while (len) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail_close;
		text += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail_close;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) < 0)
		goto fail;
	return sync_dir(dir);
fail_close:
	r = -errno;
	close(fd);
	errno = -r;
fail:
	r = -errno;
	log_error("%s: %m", tmp);
	unlink(tmp);
	return r;
}

static int
file_remove(const char *path, const char *dir)
{
	if (unlink(path) < 0 && errno != ENOENT) {
		int r = -errno;
		log_error("%s: %m", path);
		return r;
	}
	return sync_dir(dir);
}

static int
load_fail(const char *path, unsigned line, const char *what)
{
	log_error("%s:%u: %s; remove the file to start without the saved "
		  "persistent reservations", path, line, what);
	return -1;
}

/* Restore the state saved with APTPL (main thread, before any nexus). */
static int
state_load(struct lun *l)
{
	struct pr_state *pr = l->pr;
	char line[512], name[300], flags[8], isid[16], ini[300];
	unsigned lineno = 0, lun_id, type = 0, nholders = 0;
	bool seen_target = false, seen_lun = false;
	uint64_t key;
	FILE *f;

	f = fopen(pr->path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		log_error("%s: %m", pr->path);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (lineno == 1) {
			if (strcmp(line, "iscsi-gw persistent reservations 1"))
				goto bad_header;
		} else if (sscanf(line, "target %299s", name) == 1) {
			if (strcmp(name, l->target->name))
				goto other_lun;
			seen_target = true;
		} else if (sscanf(line, "lun %u", &lun_id) == 1) {
			if (lun_id != l->id)
				goto other_lun;
			seen_lun = true;
		} else if (sscanf(line, "type %u", &type) == 1) {
			if (type && !pr_type_valid(type))
				goto bad_line;
		} else if (sscanf(line, "reg %" SCNx64 " %7s %15s %299s", &key,
				  flags, isid, ini) == 4) {
			struct pr_reg id = { 0 }, *r;

			if (!key || strlen(ini) >= sizeof id.initiator ||
			    strspn(flags, "ha-") != strlen(flags))
				goto bad_line;
			snprintf(id.initiator, sizeof id.initiator, "%s", ini);
			if (!strcmp(isid, "*")) {
				id.any_isid = true;
			} else {
				if (strlen(isid) != 12)
					goto bad_line;
				for (int i = 0; i < 6; i++) {
					int hi = pr_hexval(isid[2 * i]);
					int lo = pr_hexval(isid[2 * i + 1]);
					if (hi < 0 || lo < 0)
						goto bad_line;
					id.isid[i] = (uint8_t)(hi << 4 | lo);
				}
			}
			if (pr_reg_find(pr, &id))
				goto bad_line;
			if (!pr_reg_reserve(pr, 1)) {
				fclose(f);
				return load_fail(pr->path, lineno,
						 "too many registrations");
			}
			r = pr_reg_add(pr, &id, key, strchr(flags, 'a') != NULL);
			r->holder = strchr(flags, 'h') != NULL;
			nholders += r->holder;
		} else if (line[0]) {
			goto bad_line;
		}
	}
	if (ferror(f)) {
		log_error("%s: %m", pr->path);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (!seen_target || !seen_lun)
		return load_fail(pr->path, lineno, "target or lun line missing");
	/* One holder for the holder types; none otherwise. */
	if (nholders != (type && !pr_type_all_reg(type) ? 1u : 0u) ||
	    (type && !pr->nregs))
		return load_fail(pr->path, lineno,
				 "reservation and holder do not agree");
	pr->type = (uint8_t)type;
	pr->aptpl = true;
	pr_active_update(pr);
	log_info("%s: restored %zu persistent reservation registration%s%s",
		 l->pointer, pr->nregs, pr->nregs == 1 ? "" : "s",
		 type ? " and the reservation" : "");
	return 0;
bad_header:
	fclose(f);
	return load_fail(pr->path, lineno, "not an iscsi-gw reservation file");
bad_line:
	fclose(f);
	return load_fail(pr->path, lineno, "unreadable line");
other_lun:
	fclose(f);
	return load_fail(pr->path, lineno, "saved for another target or LUN");
}

int
pr_lun_init(struct lun *l, const char *state_dir)
{
	struct pr_state *pr = calloc(1, sizeof *pr);
	CLEANUP_FREE char *tmp = NULL;

	if (!pr) {
		log_error("%s: %m", l->pointer);
		return -1;
	}
	pthread_mutex_init(&l->pr_lock, NULL);
	pthread_mutex_init(&pr->save_lock, NULL);
	l->pr = pr;
	if (!state_dir)
		return 0;
	if (asprintf(&pr->path, "%s/pr-%016" PRIx64 "-%u", state_dir,
		     state_hash(l->target->name), l->id) < 0) {
		pr->path = NULL;
		goto fail;
	}
	pr->dir = strdup(state_dir);
	if (!pr->dir)
		goto fail;
	/* A temp file left by a crash during a save is not the state. */
	if (asprintf(&tmp, "%s.tmp", pr->path) >= 0)
		unlink(tmp);
	else
		tmp = NULL;
	if (state_load(l) < 0)
		goto fail_quiet;
	return 0;
fail:
	log_error("%s: %m", l->pointer);
fail_quiet:
	pr_lun_free(l);
	return -1;
}

void
pr_lun_free(struct lun *l)
{
	struct pr_state *pr = l->pr;

	if (!pr)
		return;
	free(pr->regs);
	free(pr->path);
	free(pr->dir);
	pthread_mutex_destroy(&pr->save_lock);
	pthread_mutex_destroy(&l->pr_lock);
	free(pr);
	l->pr = NULL;
}

/* A save on the IO workers; the command completes when it is done. */
struct pr_save {
	struct io_job job;
	struct scsi_cmd *cmd;
	struct pr_state *pr;
	char *text;		/* NULL: APTPL went off, remove the file */
	size_t len;
	uint64_t seq;
	int result;
};

static void
save_run(struct io_job *job)
{
	struct pr_save *s = container_of(job, struct pr_save, job);
	struct pr_state *pr = s->pr;

	pthread_mutex_lock(&pr->save_lock);
	if (s->seq > pr->saved_seq) {
		s->result = s->text ? state_file_replace(pr->path, pr->dir, s->text,
						   s->len) :
				      file_remove(pr->path, pr->dir);
		if (s->result == 0)
			pr->saved_seq = s->seq;
	}
	/* else a newer state, which includes this one, is on disk */
	pthread_mutex_unlock(&pr->save_lock);
}

static void
save_done(struct io_job *job)
{
	struct pr_save *s = container_of(job, struct pr_save, job);
	struct scsi_cmd *cmd = s->cmd;

	if (s->result < 0)
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
	free(s->text);
	free(s);
	scsi_cmd_complete(cmd);
}

int
pr_save(struct scsi_cmd *cmd, struct pr_state *pr, char *text, size_t len,
	uint64_t seq)
{
	struct pr_save *s = calloc(1, sizeof *s);

	if (!s) {
		log_error("cannot save the persistent reservations: %m");
		free(text);
		scsi_set_sense(cmd, SK_HARDWARE_ERROR,
			       ASC_INTERNAL_TARGET_FAILURE);
		return SCSI_DONE;
	}
	s->cmd = cmd;
	s->pr = pr;
	s->text = text;
	s->len = len;
	s->seq = seq;
	s->job.fn = save_run;
	s->job.done = save_done;
	s->job.loop = cmd->loop;
	io_submit(&s->job);
	return SCSI_ASYNC;
}
