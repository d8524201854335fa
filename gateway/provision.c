/* provision.c: `iscsi-gw provision list|create|resize|remove`, for LUNs
 * of backend type "lvm".  Runs LVM's commands (lvm.c); after a resize it
 * asks the running daemon, through the control socket, to rescan the
 * LUN, which then serves the new capacity with a CAPACITY DATA HAS
 * CHANGED unit attention.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#include <jansson.h>

#include "cli.h"
#include "conf/conf.h"
#include "control.h"
#include "lvm.h"
#include "util/util.h"

static const char *
kv_get(const struct conf_lun *l, const char *key)
{
	for (size_t i = 0; i < l->nbkeys; i++)
		if (!strcmp(l->bkeys[i].key, key))
			return l->bkeys[i].value;
	return NULL;
}

static bool
selected(const struct cli *cli, const struct conf_target *t,
	 const struct conf_lun *l)
{
	return l->backend_type && !strcmp(l->backend_type, "lvm") &&
	       (!cli->target || !strcasecmp(cli->target, t->name)) &&
	       (cli->lun < 0 || (int)l->lun == cli->lun);
}

static int
prov_list(const struct conf *c, const struct cli *cli)
{
	json_t *rows = json_array();
	size_t i;
	json_t *r;
	int rc = 0;

	for (size_t ti = 0; ti < c->ntargets; ti++)
		for (size_t k = 0; k < c->targets[ti].nluns; k++) {
			const struct conf_target *t = &c->targets[ti];
			const struct conf_lun *l = &t->luns[k];
			char vglv[300], err[512] = "", *dev = NULL;
			uint64_t size = 0;
			json_t *row;
			int e;

			if (!selected(cli, t, l))
				continue;
			snprintf(vglv, sizeof vglv, "%s/%s", kv_get(l, "vg"),
				 kv_get(l, "lv"));
			e = lvm_report(vglv, &dev, &size, NULL, err, sizeof err);
			row = json_object();
			json_object_set_new(row, "target", json_string(t->name));
			json_object_set_new(row, "lun", json_integer(l->lun));
			json_object_set_new(row, "volume", json_string(vglv));
			json_object_set_new(row, "exists", json_boolean(e == 1));
			if (e == 1) {
				json_object_set_new(row, "device", json_string(dev));
				json_object_set_new(row, "size", json_integer((json_int_t)size));
			}
			if (e < 0) {
				json_object_set_new(row, "error", json_string(err));
				rc = 1;
			}
			if (kv_get(l, "size"))
				json_object_set_new(row, "map_size",
					json_integer(strtoll(kv_get(l, "size"), NULL, 10)));
			json_array_append_new(rows, row);
			free(dev);
		}
	if (cli->json) {
		char *s = json_dumps(rows, JSON_INDENT(2));
		puts(s ? s : "[]");
		free(s);
	} else {
		if (json_array_size(rows) == 0)
			printf("no LUNs of backend type lvm\n");
		json_array_foreach(rows, i, r) {
			printf("%s LUN %" JSON_INTEGER_FORMAT ": %s", 
			       json_string_value(json_object_get(r, "target")),
			       json_integer_value(json_object_get(r, "lun")),
			       json_string_value(json_object_get(r, "volume")));
			if (json_is_true(json_object_get(r, "exists")))
				printf(", %s, %" JSON_INTEGER_FORMAT " bytes\n",
				       json_string_value(json_object_get(r, "device")),
				       json_integer_value(json_object_get(r, "size")));
			else if (json_object_get(r, "error"))
				printf(": %s\n", json_string_value(json_object_get(r, "error")));
			else
				printf(", missing (created at start or by 'provision create')\n");
		}
	}
	json_decref(rows);
	return rc;
}

/* The one LUN --target/--lun name. */
static const struct conf_lun *
one_lun(const struct conf *c, const struct cli *cli, const char *op,
	const struct conf_target **tp)
{
	if (!cli->target || cli->lun < 0) {
		fprintf(stderr, "iscsi-gw: provision %s needs --target and --lun\n", op);
		return NULL;
	}
	for (size_t ti = 0; ti < c->ntargets; ti++)
		for (size_t k = 0; k < c->targets[ti].nluns; k++) {
			const struct conf_lun *l = &c->targets[ti].luns[k];
			if (strcasecmp(cli->target, c->targets[ti].name) ||
			    (int)l->lun != cli->lun)
				continue;
			if (!l->backend_type || strcmp(l->backend_type, "lvm")) {
				fprintf(stderr, "iscsi-gw: %s LUN %d is not of backend type lvm\n",
					cli->target, cli->lun);
				return NULL;
			}
			*tp = &c->targets[ti];
			return l;
		}
	fprintf(stderr, "iscsi-gw: the map has no LUN %d in target %s\n",
		cli->lun, cli->target);
	return NULL;
}

/* Tell a running daemon; a daemon that is not running is not an error. */
static void
rescan(const struct conf *c, const char *target, unsigned lun)
{
	char req[400], *ans = NULL;
	size_t len;

	if (!c->control_socket) {
		printf("the map has no control_socket: a running daemon sees the new size after a restart\n");
		return;
	}
	snprintf(req, sizeof req, "rescan %s %u\n", target, lun);
	if (control_ask(c->control_socket, req, &ans, &len) != 0) {
		printf("no daemon answered: the new size applies at its next start\n");
		return;
	}
	printf("daemon: %s", ans);
	free(ans);
}

int
cmd_provision(const struct cli *cli)
{
	char err[1024];
	struct conf *c;
	const struct conf_target *t;
	const struct conf_lun *l;
	const char *op;
	char vglv[300];
	int rc = 1;

	if (cli->nargs != 1) {
		fprintf(stderr,
"Usage: iscsi-gw provision list   --config FILE [--target T] [--lun N] [--json]\n"
"       iscsi-gw provision create --config FILE [--target T] [--lun N]\n"
"       iscsi-gw provision resize --config FILE --target T --lun N --size SIZE\n"
"       iscsi-gw provision remove --config FILE --target T --lun N\n");
		return 2;
	}
	op = cli->args[0];
	if (!cli->config) {
		fprintf(stderr, "iscsi-gw: provision needs --config FILE\n");
		return 2;
	}
	c = conf_load_file(cli->config, err, sizeof err);
	if (!c) {
		fprintf(stderr, "iscsi-gw: %s\n", err);
		return 1;
	}
	if (!strcmp(op, "list")) {
		rc = prov_list(c, cli);
	} else if (!strcmp(op, "create")) {
		rc = 0;
		for (size_t ti = 0; ti < c->ntargets; ti++)
			for (size_t k = 0; k < c->targets[ti].nluns; k++) {
				const struct conf_lun *cl = &c->targets[ti].luns[k];
				char *dev = NULL;
				int r;

				if (!selected(cli, &c->targets[ti], cl))
					continue;
				r = lvm_lun_volume(cl->bkeys, cl->nbkeys, true, &dev,
						   err, sizeof err);
				if (r < 0) {
					fprintf(stderr, "iscsi-gw: %s: %s\n", cl->pointer, err);
					rc = 1;
				} else {
					printf("%s/%s: %s (%s)\n", kv_get(cl, "vg"),
					       kv_get(cl, "lv"), r ? "created" : "exists", dev);
				}
				free(dev);
			}
	} else if (!strcmp(op, "resize")) {
		uint64_t want, have = 0;
		bool no_space;
		CLEANUP_FREE char *dev = NULL;
		CLEANUP_FREE char *pool = NULL;

		if (!(l = one_lun(c, cli, op, &t)))
			goto out;
		if (!cli->size || parse_size(cli->size, &want) < 0 || want % 4096) {
			fprintf(stderr, "iscsi-gw: provision resize needs --size SIZE (a multiple of 4096 bytes, e.g. 20G)\n");
			rc = 2;
			goto out;
		}
		snprintf(vglv, sizeof vglv, "%s/%s", kv_get(l, "vg"), kv_get(l, "lv"));
		if (lvm_report(vglv, &dev, &have, &pool, err, sizeof err) != 1) {
			fprintf(stderr, "iscsi-gw: %s\n", err[0] ? err : "the volume does not exist");
			goto out;
		}
		if (want < have) {
			fprintf(stderr, "iscsi-gw: %s is %" PRIu64 " bytes: shrinking it to %" PRIu64
				" would cut off data the initiator has; only growing is supported\n",
				vglv, have, want);
			goto out;
		}
		if (want > have && lvm_extend(vglv, want, &no_space, err, sizeof err) < 0) {
			fprintf(stderr, "iscsi-gw: %s\n", err);
			goto out;
		}
		if (want > have && (!pool || !*pool)) {
			/* New extents of a thick volume hold what they held
			 * before: zeroed before the initiator sees them. */
			uint64_t range[2] = { have, want - have };
			int fd = dev ? open(dev, O_WRONLY | O_CLOEXEC) : -1;

			if (fd < 0 || ioctl(fd, BLKZEROOUT, range) < 0) {
				fprintf(stderr, "iscsi-gw: zeroing the new space of %s: %s\n",
					vglv, strerror(errno));
				if (fd >= 0)
					close(fd);
				goto out;
			}
			close(fd);
		}
		printf("%s: %" PRIu64 " bytes\n", vglv, want);
		rescan(c, t->name, l->lun);
		rc = 0;
	} else if (!strcmp(op, "remove")) {
		char *dev = NULL;
		int fd;

		if (!(l = one_lun(c, cli, op, &t)))
			goto out;
		snprintf(vglv, sizeof vglv, "%s/%s", kv_get(l, "vg"), kv_get(l, "lv"));
		if (lvm_report(vglv, &dev, NULL, NULL, err, sizeof err) != 1) {
			fprintf(stderr, "iscsi-gw: %s\n", err[0] ? err : "the volume does not exist");
			free(dev);
			goto out;
		}
		/* The gateway opens its devices O_EXCL: so does this check. */
		fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "iscsi-gw: %s (%s) is in use%s: not removed\n", vglv,
				dev, errno == EBUSY ? " (a running gateway serves it?)" : "");
			free(dev);
			goto out;
		}
		close(fd);
		free(dev);
		if (lvm_remove(vglv, err, sizeof err) < 0) {
			fprintf(stderr, "iscsi-gw: %s\n", err);
			goto out;
		}
		printf("%s: removed%s\n", vglv, kv_get(l, "size") ?
		       " (the map still names it with a size: the next start creates it again, empty)" : "");
		rc = 0;
	} else {
		fprintf(stderr, "iscsi-gw: unknown provision command '%s' (list, create, resize, remove)\n", op);
		rc = 2;
	}
out:
	conf_free(c);
	return rc;
}
