/* images-cli.c: `iscsi-gw images list|reset|delete|commit`.  Works on the
 * map's state_dir directly, so it runs with or without a daemon: an image
 * whose metadata file a daemon holds locked is in use (its initiator is
 * logged in) and is never changed under it; while a command holds the
 * lock, that initiator's login is refused with "service unavailable".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "conf/conf.h"
#include "images-store.h"
#include "iscsi/iscsi.h"
#include "util/util.h"

static void
usage_images(FILE *f)
{
	fprintf(f,
"Usage: iscsi-gw images list   --config FILE [--target T] [--lun N] [--initiator I] [--json]\n"
"       iscsi-gw images reset  --config FILE --target T --lun N --initiator I\n"
"       iscsi-gw images delete --config FILE --target T --lun N --initiator I\n"
"       iscsi-gw images commit --config FILE --target T --lun N --initiator I --output FILE\n");
}

/* The per-initiator LUN a command names. */
static int
find_template(const struct conf *c, const struct cli *cli,
	      const struct conf_target **tp, const struct conf_lun **lp)
{
	for (size_t i = 0; i < c->ntargets; i++) {
		if (strcasecmp(c->targets[i].name, cli->target))
			continue;
		for (size_t k = 0; k < c->targets[i].nluns; k++) {
			const struct conf_lun *l = &c->targets[i].luns[k];
			if ((int)l->lun != cli->lun)
				continue;
			if (!l->pi) {
				fprintf(stderr, "iscsi-gw: %s LUN %u is not a per-initiator LUN\n",
					cli->target, l->lun);
				return -1;
			}
			*tp = &c->targets[i];
			*lp = l;
			return 0;
		}
		fprintf(stderr, "iscsi-gw: target %s has no LUN %d\n", cli->target,
			cli->lun);
		return -1;
	}
	fprintf(stderr, "iscsi-gw: the map has no target %s\n", cli->target);
	return -1;
}

struct row {
	const struct conf_target *t;
	const struct conf_lun *l;
	json_t *meta;
	bool in_use;
	int64_t size, allocated;	/* -1: unknown */
	char *device;
};

static void
list_one_lun(const struct conf *c, const struct conf_target *t,
	     const struct conf_lun *l, const struct cli *cli, json_t *out)
{
	struct image_paths ip;
	DIR *d;
	struct dirent *de;

	/* The folder holds every initiator's files: any name gives it. */
	if (image_paths(c->state_dir, t->name, l->lun, l->pi, "x", &ip) < 0)
		return;
	d = opendir(ip.dir);
	if (!d) {
		image_paths_free(&ip);
		return;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char *mpath = NULL, err[512] = "";
		struct image_paths mine;
		const char *initiator;
		json_t *meta, *row;
		json_error_t je;
		struct stat st;
		int fd;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		if (asprintf(&mpath, "%s/%s", ip.dir, de->d_name) < 0)
			continue;
		meta = json_load_file(mpath, 0, &je);
		free(mpath);
		initiator = json_string_value(json_object_get(meta, "initiator"));
		if (!initiator || (cli->initiator &&
				   strcasecmp(cli->initiator, initiator))) {
			json_decref(meta);
			continue;
		}
		if (image_paths(c->state_dir, t->name, l->lun, l->pi, initiator,
				&mine) < 0) {
			json_decref(meta);
			continue;
		}
		row = json_object();
		json_object_set_new(row, "target", json_string(t->name));
		json_object_set_new(row, "lun", json_integer(l->lun));
		json_object_set_new(row, "initiator", json_string(initiator));
		json_object_set_new(row, "kind", json_string(image_kind_name(l->pi)));
		json_object_set_new(row, "image", json_string(mine.image));
		json_object_set(row, "created", json_object_get(meta, "created"));
		if (l->pi->kind != PI_LVM) {
			if (stat(mine.image, &st) == 0) {
				json_object_set_new(row, "size", json_integer(st.st_size));
				json_object_set_new(row, "allocated",
						    json_integer((json_int_t)st.st_blocks * 512));
			} else {
				json_object_set_new(row, "missing", json_true());
			}
		} else if (image_exists(l->pi, &mine, err, sizeof err) == 1) {
			json_object_set_new(row, "device", json_string(mine.device));
		} else {
			json_object_set_new(row, "missing", json_true());
		}
		fd = open(mine.meta, O_RDONLY | O_CLOEXEC);
		json_object_set_new(row, "in_use",
				    json_boolean(fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 &&
						 errno == EWOULDBLOCK));
		if (fd >= 0)
			close(fd);
		json_array_append_new(out, row);
		json_decref(meta);
		image_paths_free(&mine);
	}
	closedir(d);
	image_paths_free(&ip);
}

static int
images_list(const struct conf *c, const struct cli *cli)
{
	json_t *rows = json_array();
	size_t i;
	json_t *r;

	for (size_t ti = 0; ti < c->ntargets; ti++) {
		const struct conf_target *t = &c->targets[ti];
		if (cli->target && strcasecmp(cli->target, t->name))
			continue;
		for (size_t k = 0; k < t->nluns; k++) {
			const struct conf_lun *l = &t->luns[k];
			if (!l->pi || (cli->lun >= 0 && (int)l->lun != cli->lun))
				continue;
			list_one_lun(c, t, l, cli, rows);
		}
	}
	if (cli->json) {
		char *s = json_dumps(rows, JSON_INDENT(2));
		puts(s ? s : "[]");
		free(s);
		json_decref(rows);
		return 0;
	}
	if (json_array_size(rows) == 0)
		printf("no per-initiator images\n");
	json_array_foreach(rows, i, r) {
		json_t *sz = json_object_get(r, "size");
		printf("%s LUN %" JSON_INTEGER_FORMAT " %s\n  %s %s%s%s\n",
		       json_string_value(json_object_get(r, "target")),
		       json_integer_value(json_object_get(r, "lun")),
		       json_string_value(json_object_get(r, "initiator")),
		       json_string_value(json_object_get(r, "kind")),
		       json_string_value(json_object_get(r, "image")),
		       json_is_true(json_object_get(r, "in_use")) ? "  [in use]" : "",
		       json_is_true(json_object_get(r, "missing")) ? "  [missing]" : "");
		if (sz)
			printf("  size %" JSON_INTEGER_FORMAT ", allocated %"
			       JSON_INTEGER_FORMAT "\n", json_integer_value(sz),
			       json_integer_value(json_object_get(r, "allocated")));
		if (json_object_get(r, "created"))
			printf("  created %s\n",
			       json_string_value(json_object_get(r, "created")));
	}
	json_decref(rows);
	return 0;
}

static int
images_change(const struct conf *c, const struct cli *cli, const char *op)
{
	const struct conf_target *t;
	const struct conf_lun *l;
	struct image_paths ip;
	char err[1024] = "";
	uint16_t status;
	int fd, r, rc = 1;
	struct stat st;

	if (!cli->target || cli->lun < 0 || !cli->initiator) {
		fprintf(stderr, "iscsi-gw: images %s needs --target, --lun and --initiator\n",
			op);
		return 2;
	}
	if (!strcmp(op, "commit") && !cli->output) {
		fprintf(stderr, "iscsi-gw: images commit needs --output FILE (the new golden image)\n");
		return 2;
	}
	if (find_template(c, cli, &t, &l) < 0)
		return 1;
	if (image_paths(c->state_dir, t->name, l->lun, l->pi, cli->initiator,
			&ip) < 0) {
		fprintf(stderr, "iscsi-gw: out of memory\n");
		return 1;
	}
	if (stat(ip.meta, &st) < 0 && errno == ENOENT) {
		fprintf(stderr, "iscsi-gw: %s has no image of %s LUN %u\n",
			cli->initiator, t->name, l->lun);
		image_paths_free(&ip);
		return 1;
	}
	fd = image_lock(&ip, false);
	if (fd < 0) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "iscsi-gw: the image of %s is in use (the initiator is logged in, or another command works on it): log it out first\n",
				cli->initiator);
		else
			fprintf(stderr, "iscsi-gw: %s: %s\n", ip.meta, strerror(errno));
		image_paths_free(&ip);
		return 1;
	}
	r = image_exists(l->pi, &ip, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "iscsi-gw: %s\n", err);
		goto out;
	}
	if (!strcmp(op, "delete")) {
		if (r == 1 && image_remove(l->pi, &ip, err, sizeof err) < 0) {
			fprintf(stderr, "iscsi-gw: %s\n", err);
			goto out;
		}
		unlink(ip.meta);
		printf("deleted the image of %s (%s)\n", cli->initiator, ip.image);
		rc = 0;
	} else if (!strcmp(op, "reset")) {
		if ((r == 1 && image_remove(l->pi, &ip, err, sizeof err) < 0) ||
		    image_create(l->pi, &ip, &status, err, sizeof err) < 0 ||
		    image_write_meta(fd, t->name, l->lun, l->pi, cli->initiator,
				     &ip) < 0) {
			fprintf(stderr, "iscsi-gw: %s\n", err[0] ? err : strerror(errno));
			goto out;
		}
		printf("reset the image of %s (%s)\n", cli->initiator, ip.image);
		rc = 0;
	} else {	/* commit */
		const char *src = l->pi->kind == PI_LVM ? ip.device : ip.image;
		const char *ofmt = l->pi->kind == PI_OVERLAY ?
			l->pi->golden_format : "raw";
		char *argv[] = { "qemu-img", "convert", "-p", "-f",
				 l->pi->kind == PI_OVERLAY ? "qcow2" : "raw",
				 "-O", (char *)ofmt, (char *)src,
				 (char *)cli->output, NULL };
		int qst;

		if (r != 1) {
			fprintf(stderr, "iscsi-gw: the image %s is missing\n", ip.image);
			goto out;
		}
		if (access(cli->output, F_OK) == 0) {
			fprintf(stderr, "iscsi-gw: %s exists: commit writes a new golden image and never overwrites one\n",
				cli->output);
			goto out;
		}
		/* qemu-img shows its progress on our terminal. */
		fflush(stdout);
		qst = image_run(argv, NULL, NULL, true);
		if (qst != 0) {
			fprintf(stderr, "iscsi-gw: qemu-img convert failed (%s)\n",
				qst < 0 ? strerror(errno) : "see its message above");
			unlink(cli->output);
			goto out;
		}
		printf("\ncommitted the image of %s to %s (format %s)\n",
		       cli->initiator, cli->output, ofmt);
		rc = 0;
	}
out:
	close(fd);
	image_paths_free(&ip);
	return rc;
}

int
cmd_images(const struct cli *cli)
{
	char err[1024];
	struct conf *c;
	const char *op;
	int rc;

	if (cli->nargs != 1) {
		usage_images(stderr);
		return 2;
	}
	op = cli->args[0];
	if (strcmp(op, "list") && strcmp(op, "reset") && strcmp(op, "delete") &&
	    strcmp(op, "commit")) {
		fprintf(stderr, "iscsi-gw: unknown images command '%s'\n", op);
		usage_images(stderr);
		return 2;
	}
	if (!cli->config) {
		fprintf(stderr, "iscsi-gw: images needs --config FILE\n");
		return 2;
	}
	c = conf_load_file(cli->config, err, sizeof err);
	if (!c) {
		fprintf(stderr, "iscsi-gw: %s\n", err);
		return 1;
	}
	if (!c->state_dir) {
		fprintf(stderr, "iscsi-gw: the map sets no state_dir: it has no per-initiator images\n");
		conf_free(c);
		return 1;
	}
	rc = !strcmp(op, "list") ? images_list(c, cli) : images_change(c, cli, op);
	conf_free(c);
	return rc;
}
