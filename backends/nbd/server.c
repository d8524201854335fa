/* server.c: the server child of the "nbdkit" and "qemu-nbd" backends.
 * nbdkit runs socket-activated on a private Unix socket the gateway
 * listens on before nbdkit runs, as the map's user when one is set;
 * qemu-nbd creates its own socket.  nbdkit_check restarts a child that
 * died; nbdkit_stop ends it (SIGTERM, then SIGKILL after 2 s).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iscsi-gw-backend.h"
#include "nbd-internal.h"

/* A listening Unix socket at path, for nbdkit's socket activation: it is
 * listening before nbdkit runs, so our first connection can never come
 * between nbdkit's bind and its listen (ECONNREFUSED on a loaded host). */
static int
listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

extern char **environ;

/* The environment for a socket-activated child (parent, before fork):
 * ours without LISTEN_*, then pidenv (LISTEN_PID=, which the child
 * completes) and LISTEN_FDS=1.  NULL when out of memory. */
static char **
activation_env(char *pidenv)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof *envp);
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LISTEN_", 7))
			envp[k++] = environ[i];
	strcpy(pidenv, "LISTEN_PID=");
	envp[k++] = pidenv;
	envp[k++] = (char *)"LISTEN_FDS=1";
	envp[k] = NULL;
	return envp;
}

/* In the child, between fork and exec (async-signal-safe calls only):
 * the listening socket as fd 3, its pid in LISTEN_PID (systemd's socket
 * activation protocol, which nbdkit speaks), then exec. */
static void
exec_activated(char **argv, int lfd, char **envp, char *pidenv)
{
	char digits[16];
	unsigned pid = (unsigned)getpid(), nd = 0;
	size_t i = 11;

	if (lfd == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			return;
	} else if (dup2(lfd, 3) < 0) {
		return;
	}
	do {
		digits[nd++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (nd)
		pidenv[i++] = digits[--nd];
	pidenv[i] = '\0';
	execvpe(argv[0], argv, envp);
}

int
nbdkit_start(struct nbd_handle_pool *pl)
{
	struct nbd_instance *ni = pl->inst;
	size_t argc = 0, max = 12 + 2 * ni->nfilters + ni->nargs;
	char **argv = calloc(max, sizeof *argv);
	char *sockopt = NULL, *fmtopt = NULL;
	pid_t pid;
	int lfd = -1;		/* nbdkit: the socket we listen on for it */
	char **envp = NULL, pidenv[32];

	if (!argv)
		return -ENOMEM;
	unlink(pl->sock);
	if (ni->qemu) {
		/* One qemu-nbd owns the image; our connections share it.
		 * cache=writeback: NBD flush and FUA reach the disk with
		 * fdatasync, so write_cache/SYNCHRONIZE CACHE keep their
		 * meaning. */
		if (asprintf(&sockopt, "--socket=%s", pl->sock) < 0 ||
		    asprintf(&fmtopt, "--format=%s", ni->format) < 0) {
			free(argv);
			free(sockopt);
			return -ENOMEM;
		}
		argv[argc++] = "qemu-nbd";
		argv[argc++] = sockopt;
		argv[argc++] = fmtopt;
		argv[argc++] = "--persistent";
		argv[argc++] = "--shared=16";
		argv[argc++] = "--cache=writeback";
		argv[argc++] = "--aio=threads";
		argv[argc++] = "--discard=unmap";
		if (pl->readonly)
			argv[argc++] = "--read-only";
		argv[argc++] = ni->path;
		argv[argc] = NULL;
		goto spawn;
	}
	envp = activation_env(pidenv);
	if (!envp) {
		free(argv);
		return -ENOMEM;
	}
	lfd = listen_unix(pl->sock);
	if (lfd < 0) {
		igw_backend_error("socket %s: %s", pl->sock, strerror(-lfd));
		free(argv);
		free(envp);
		return lfd;
	}
	/* Made as root for the map's user (set_owner): the daemon, once it
	 * runs as that user, must still be able to connect to it. */
	if (pl->owner_set && geteuid() == 0 &&
	    chown(pl->sock, pl->owner_uid, pl->owner_gid) < 0) {
		int e = errno;
		igw_backend_error("%s: chown: %s", pl->sock, strerror(e));
		close(lfd);
		free(argv);
		free(envp);
		return -e;
	}
	argv[argc++] = "nbdkit";
	argv[argc++] = "--exit-with-parent";
	argv[argc++] = "--foreground";
	if (pl->readonly)
		argv[argc++] = "--readonly";
	for (size_t i = 0; i < ni->nfilters; i++) {
		argv[argc++] = "--filter";
		argv[argc++] = ni->filters[i];
	}
	argv[argc++] = ni->plugin;
	for (size_t i = 0; i < ni->nargs; i++)
		argv[argc++] = ni->args[i];
	argv[argc] = NULL;
spawn:
	pid = fork();
	if (pid < 0) {
		int e = errno;
		free(argv);
		free(sockopt);
		free(fmtopt);
		if (lfd >= 0)
			close(lfd);
		free(envp);
		return -e;
	}
	if (pid == 0) {
		sigset_t all;
		int devnull = open("/dev/null", O_RDONLY);
		sigemptyset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
		if (devnull >= 0)
			dup2(devnull, 0);
		/* qemu-nbd has no --exit-with-parent: the kernel tells it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (pl->owner_set && geteuid() == 0 &&
		    (setgroups(1, &pl->owner_gid) < 0 ||
		     setgid(pl->owner_gid) < 0 || setuid(pl->owner_uid) < 0)) {
			fprintf(stderr, "iscsi-gw: %s: switching to uid %u: %m\n",
				argv[0], (unsigned)pl->owner_uid);
			_exit(126);
		}
		if (lfd >= 0)
			exec_activated(argv, lfd, envp, pidenv);
		else
			execvp(argv[0], argv);
		fprintf(stderr, "iscsi-gw: exec %s: %m\n", argv[0]);
		_exit(127);
	}
	free(argv);
	free(sockopt);
	free(fmtopt);
	if (lfd >= 0)
		close(lfd);	/* nbdkit has it */
	free(envp);
	pl->pid = pid;
	/* Wait for the socket to appear (nbdkit creates it when ready). */
	for (int i = 0; i < 200; i++) {
		struct stat st;
		int status;
		if (stat(pl->sock, &st) == 0)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pl->pid = 0;
			igw_backend_error("%s %s exited at start (status %d)",
					  nbd_server_name(ni),
					  ni->qemu ? ni->path : ni->plugin, status);
			return -EIO;
		}
		usleep(25000);
	}
	igw_backend_error("%s %s did not create its socket", nbd_server_name(ni),
			  ni->qemu ? ni->path : ni->plugin);
	return -ETIMEDOUT;
}

void
nbdkit_stop(struct nbd_handle_pool *pl)
{
	int status;

	if (pl->pid > 0) {
		kill(pl->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			if (waitpid(pl->pid, &status, WNOHANG) == pl->pid) {
				pl->pid = 0;
				return;
			}
			usleep(20000);
		}
		kill(pl->pid, SIGKILL);
		waitpid(pl->pid, &status, 0);
		pl->pid = 0;
	}
}

/* The child died: restart it (pool lock held). */
void
nbdkit_check(struct nbd_handle_pool *pl)
{
	int status;

	if (!pl->inst->nbdkit && !pl->inst->qemu)
		return;
	if (pl->pid > 0 && waitpid(pl->pid, &status, WNOHANG) != pl->pid)
		return;
	pl->pid = 0;
	if (nbdkit_start(pl) == 0)
		fprintf(stderr, "iscsi-gw: %s %s restarted\n",
			nbd_server_name(pl->inst),
			pl->inst->qemu ? pl->inst->path : pl->inst->plugin);
}
