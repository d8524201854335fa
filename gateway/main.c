/* main.c: the iscsi-gw command: serve, check, --version, --help.  Owns the
 * daemon's life cycle: read and verify the map, open the LUNs, start the IO
 * workers and the network loop, and on SIGTERM/SIGINT stop accepting,
 * finish or fail what is in flight, close backends and exit 0; on SIGHUP
 * re-read the map and apply the difference (reload.c).  Signals are read
 * from a signalfd on the loop, never handled asynchronously.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <grp.h>
#include <pwd.h>

#include "conf/conf.h"
#include "lunmap.h"
#include "backend.h"
#include "log.h"
#include "io/io.h"
#include "iscsi/iscsi.h"
#include "control.h"
#include "fuse/fuse-view.h"
#include "cli.h"
#include "scsi/scsi.h"
#include "images.h"
#include "images-store.h"
#include "reload.h"

/* The embedded default: one 1 GiB sparse-file LUN on the loopback portal.
 * "@DIR@" is replaced by the default state folder. */
static const char default_map[] =
	"{\n"
	"  \"portals\": [\"127.0.0.1:3260\"],\n"
	"  \"state_dir\": \"@DIR@\",\n"
	"  \"targets\": [\n"
	"    { \"name\": \"iqn.2026-11.org.iscsi-gw:default\",\n"
	"      \"luns\": [ { \"lun\": 0, \"backend\": { \"type\": \"file\",\n"
	"        \"path\": \"@DIR@/default-lun0.img\", \"size\": \"1G\" } } ] }\n"
	"  ]\n"
	"}\n";

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: iscsi-gw serve [--config FILE] [-D AREA=1]... [--port PORT]\n"
"       iscsi-gw check --config FILE\n"
"       iscsi-gw status --config FILE [--json]\n"
"       iscsi-gw reload --config FILE\n"
"       iscsi-gw images list|reset|delete|commit --config FILE [--target T]\n"
"                [--lun N] [--initiator I] [--output FILE] [--json]\n"
"       iscsi-gw mount --config FILE DIR\n"
"       iscsi-gw provision list|create|resize|remove --config FILE\n"
"                [--target T] [--lun N] [--size SIZE] [--json]\n"
"       iscsi-gw --version | --help\n"
"\n"
"A userspace iSCSI target.  'serve' runs in the foreground and logs to\n"
"stderr until SIGTERM or SIGINT; without --config it serves a built-in map:\n"
"a 1 GiB sparse file LUN on 127.0.0.1:3260 (--port changes the port).\n"
"'check' verifies a map and names the JSON pointer of any bad key.\n"
"'status' asks the running daemon, through the map's control_socket,\n"
"for its sessions and LUN counters (--json: the daemon's JSON as it is).\n"
"'reload' makes the running daemon re-read its map (as SIGHUP does) and\n"
"prints its answer: what was added, removed and changed, or why not.\n"
"'images' lists and manages per-initiator images (state_dir).\n"
"\n"
"Options:\n"
"  -c, --config FILE   the JSON LUN map (see iscsi-gw.json(5))\n"
"  -D, --debug AREA=1  debug output: iscsi.login, iscsi.pdu, scsi, io, conf, all\n"
"  -p, --port PORT     with the built-in map: the port to listen on\n"
"  -v, --verbose       more messages\n"
"      --syslog        serve: log to syslog (daemon facility) instead of stderr\n"
"      --json          status, images list: JSON output\n"
"      --target T, --lun N, --initiator I, --output FILE: see 'images'\n"
"  -V, --version       print the version and exit\n"
"  -h, --help          this text\n"
"\n"
"See iscsi-gw(8).\n");
}

static char *
default_map_text(const char *dir, unsigned port)
{
	size_t n = strlen(default_map) + 4 * strlen(dir) + 32;
	char *out = malloc(n), *o = out;

	if (!out)
		return NULL;
	for (const char *p = default_map; *p;) {
		if (!strncmp(p, "@DIR@", 5)) {
			o += sprintf(o, "%s", dir);
			p += 5;
		} else if (port && !strncmp(p, ":3260", 5)) {
			o += sprintf(o, ":%u", port);
			p += 5;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

static struct conf *
load_conf(const char *path, unsigned port)
{
	char err[1024];
	struct conf *c;

	if (path) {
		c = conf_load_file(path, err, sizeof err);
	} else {
		const char *dir = getenv("ISCSI_GW_DEFAULT_DIR");
		char *text;

		if (!dir)
			dir = "/var/tmp/iscsi-gw";
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "iscsi-gw: %s: %s\n", dir, strerror(errno));
			return NULL;
		}
		text = default_map_text(dir, port);
		if (!text)
			return NULL;
		c = conf_load_string(text, NULL, "(built-in map)", err, sizeof err);
		free(text);
	}
	if (!c)
		fprintf(stderr, "iscsi-gw: %s\n", err);
	return c;
}

static int
cmd_check(const char *path)
{
	struct conf *c;
	size_t nluns = 0;

	if (!path) {
		fprintf(stderr, "iscsi-gw: check needs --config FILE\n");
		return 2;
	}
	c = load_conf(path, 0);
	if (!c)
		return 1;
	for (size_t i = 0; i < c->ntargets; i++)
		nluns += c->targets[i].nluns;
	printf("%s: OK (%zu portal%s, %zu target%s, %zu LUN%s)\n", path,
	       c->nportals, c->nportals == 1 ? "" : "s", c->ntargets,
	       c->ntargets == 1 ? "" : "s", nluns, nluns == 1 ? "" : "s");
	conf_free(c);
	return 0;
}

struct sig_handler {
	struct ev_handler ev;
	struct evloop *loop;
	bool stopping;
};

static void
on_signal(struct ev_handler *h, uint32_t events)
{
	struct sig_handler *sh = (struct sig_handler *)h;
	struct signalfd_siginfo si;

	while (read(h->fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			if (sh->stopping)
				log_info("SIGHUP: shutting down, the map is not reloaded");
			else
				free(reload_run("SIGHUP"));
			continue;
		}
		if (!sh->stopping) {
			log_info("signal %s: shutting down", strsignal(si.ssi_signo));
			sh->stopping = true;
			iscsi_begin_shutdown(10);
		} else {
			log_info("second signal: closing every connection now");
			iscsi_begin_shutdown(0);
		}
	}
}

static struct sig_handler *the_sig;

/* Drop root once the portals are bound and the LUNs open: the daemon then
 * runs as "user" with that user's groups, and cannot regain root. */
static int
drop_privileges(const char *user, struct lunmap *m)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		log_error("user '%s': no such user", user);
		return -1;
	}
	/* What the backends create later must be the user's (an nbdkit
	 * restarted after it died). */
	for (size_t i = 0; i < m->ntargets; i++)
		for (size_t k = 0; k < m->targets[i]->nluns; k++) {
			struct lun *l = m->targets[i]->luns[k];
			int r;

			if (!l->be)
				continue;
			backend_clear_error();
			r = backend_set_owner(l->be, (uint32_t)pw->pw_uid,
					      (uint32_t)pw->pw_gid);
			if (r < 0) {
				log_error("%s: handing over to user '%s': %s",
					  l->pointer, user,
					  backend_last_error()[0] ?
					  backend_last_error() : strerror(-r));
				return -1;
			}
		}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("switching to user '%s': %m", user);
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_error("could still regain root after switching to '%s'", user);
		return -1;
	}
	log_info("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static void
tick(void *opaque)
{
	conn_tick(opaque);
	reload_tick();		/* after conn_tick reaped connections */
	control_tick();
	if (the_sig->stopping && iscsi_shutdown_poll())
		evloop_stop(the_sig->loop);
}

static int
cmd_serve(const char *path, unsigned port)
{
	struct conf *c = load_conf(path, port);
	struct lunmap *m = NULL;
	struct evloop *loop = NULL;
	struct sig_handler sh = { 0 };
	sigset_t mask;
	int rc = 1;

	if (!c)
		return 1;
	/* Command buffers (up to 32 MiB) come and go at IO rate: keep them
	 * in the heap rather than mmap/munmap (and page faults) per command,
	 * and do not give the heap back at every free.  Measured: 256 KiB
	 * reads from 120 to ~830 MiB/s on this design's test machine. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Block before any thread starts so every thread inherits it. */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if (c->state_dir && mkdir(c->state_dir, 0700) < 0 && errno != EEXIST) {
		log_error("state_dir %s: %m", c->state_dir);
		goto out;
	}
	m = lunmap_new(c);
	if (!m)
		goto out;
	nexus_seen_load(c->state_dir);
	images_init(m);
	/* Mounting needs root: before any privilege drop. */
	if (fuse_view_start(c, m) < 0)
		goto out;
	loop = evloop_new();
	if (!loop) {
		log_error("event loop: %m");
		goto out;
	}
	sh.ev.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	sh.ev.cb = on_signal;
	sh.loop = loop;
	the_sig = &sh;
	evloop_add(loop, &sh.ev, EPOLLIN);
	scsi_set_lun_worker_limit(c->io_threads);
	scsi_set_lunmap(m);
	if (io_pool_start(c->io_threads) < 0)
		goto out;
	if (iscsi_start(c, m, loop) < 0) {
		io_pool_stop();
		goto out;
	}
	/* The control socket exists before any privilege drop. */
	if (control_start(c, loop) < 0) {
		iscsi_stop_listening();
		io_pool_stop();
		goto out;
	}
	evloop_set_tick(loop, tick, NULL);
	reload_init(path, c, m);
	if (c->user && drop_privileges(c->user, m) < 0) {
		iscsi_stop_listening();
		io_pool_stop();
		goto out;
	}
	for (size_t i = 0; i < c->ntargets; i++) {
		struct target *t = m->targets[i];
		for (size_t k = 0; k < t->nluns; k++) {
			struct lun *l = t->luns[k];
			if (l->pi) {
				log_info("%s LUN %u: per-initiator %s images, policy %s",
					 t->name, l->id, image_kind_name(l->pi),
					 l->pi->policy == PI_KEEP ? "keep" :
					 l->pi->policy == PI_RESET ? "reset" : "delete");
				continue;
			}
			log_info("%s LUN %u: %s, %llu blocks of %u bytes%s%s%s, IO %s",
				 t->name, l->id, l->be->ops.name,
				 (unsigned long long)l->nblocks, l->block_size,
				 l->read_only ? ", read-only" : "",
				 l->thin ? ", thin" : "",
				 l->wce ? ", write cache on" : "",
				 l->be->can_async ? "async" : "on workers");
		}
	}
	if (!path) {
		char host[64];
		unsigned p;
		conf_parse_portal(c->portals[0], host, sizeof host, &p);
		log_info("serving the built-in map.  Connect with:");
		log_info("  iscsi-ls iscsi://%s:%u/", host, p);
		log_info("  iscsi-inq iscsi://%s:%u/%s/0", host, p,
			 m->targets[0]->name);
		log_info("  qemu-img info iscsi://%s:%u/%s/0", host, p,
			 m->targets[0]->name);
		log_info("  iscsiadm -m discovery -t st -p %s:%u && iscsiadm -m node -l",
			 host, p);
	}
	evloop_run(loop);
	/* Every connection is gone: no more completions can arrive. */
	io_pool_stop();
	log_info("stopped");
	rc = 0;
out:
	if (sh.ev.fd > 0)
		close(sh.ev.fd);
	control_stop();		/* its clients are on the loop */
	evloop_free(loop);
	nexus_seen_free();
	fuse_view_stop();	/* before the LUNs it serves are closed, and
				 * before images: it holds some open */
	images_shutdown();	/* after the pool: it ran every release */
	reload_free();		/* what reloads retired, and their confs */
	lunmap_free(m);
	conf_free(c);
	return rc;
}

/* struct cli: see cli.h. */

/* Parse options; returns -1 to go on, else an exit status. */
static int
parse_opts(int argc, char **argv, const char *optstring, struct cli *cli)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", required_argument, NULL, 'D' },
		{ "port", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "syslog", no_argument, NULL, 'Y' },
		{ "target", required_argument, NULL, 'T' },
		{ "lun", required_argument, NULL, 'L' },
		{ "initiator", required_argument, NULL, 'I' },
		{ "output", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			cli->config = optarg;
			break;
		case 'D':
			if (log_set_debug_flag(optarg) < 0)
				return 2;
			break;
		case 'p': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > 65535) {
				fprintf(stderr, "iscsi-gw: --port: '%s' is not a port\n",
					optarg);
				return 2;
			}
			cli->port = v;
			break;
		}
		case 'v':
			log_verbose++;
			break;
		case 'j':
			cli->json = true;
			break;
		case 'Y':
			cli->syslog = true;
			break;
		case 'T':
			cli->target = optarg;
			break;
		case 'L': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v > 16383) {
				fprintf(stderr, "iscsi-gw: --lun: '%s' is not a LUN (0..16383)\n",
					optarg);
				return 2;
			}
			cli->lun = (int)v;
			break;
		}
		case 'I':
			cli->initiator = optarg;
			break;
		case 'o':
			cli->output = optarg;
			break;
		case 's':
			cli->size = optarg;
			break;
		case 'V':
			printf("iscsi-gw %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct cli cli = { .lun = -1 };
	const char *cmd;
	int r;

	log_init(false);
	/* Options may come before and after the subcommand. */
	r = parse_opts(argc, argv, "+c:D:p:vVhjT:L:I:o:s:", &cli);
	if (r >= 0)
		return r;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	/* The rest parsed afresh (optind 0 resets getopt), the command
	 * standing in for argv[0]: options and words may mix. */
	argc -= optind;
	argv += optind;
	optind = 0;
	r = parse_opts(argc, argv, "c:D:p:vVhjT:L:I:o:s:", &cli);
	if (r >= 0)
		return r;
	/* Words after the command (getopt moved them to the end). */
	cli.args = argv + optind;
	cli.nargs = argc - optind;
	if (!strcmp(cmd, "images"))
		return cmd_images(&cli);
	if (!strcmp(cmd, "provision"))
		return cmd_provision(&cli);
	if (!strcmp(cmd, "mount"))
		return cmd_mount(&cli);
	if (cli.nargs) {
		fprintf(stderr, "iscsi-gw: unexpected argument '%s'\n", cli.args[0]);
		return 2;
	}
	if (!strcmp(cmd, "serve")) {
		/* Not in the foreground of a terminal (a service manager
		 * without a journal on stderr): log to syslog. */
		if (cli.syslog)
			log_init(true);
		return cmd_serve(cli.config, cli.port);
	}
	if (!strcmp(cmd, "check"))
		return cmd_check(cli.config);
	if (!strcmp(cmd, "status"))
		return cmd_status(&cli);
	if (!strcmp(cmd, "reload"))
		return cmd_reload(&cli);
	fprintf(stderr, "iscsi-gw: unknown command '%s' (serve, check, status, reload, images, provision, mount)\n", cmd);
	usage(stderr);
	return 2;
}
