/* nbd.c: the "nbd" and "nbdkit" backends, clients of an NBD server through
 * libnbd (modelled on nbdkit's plugins/nbd/nbd.c).
 *
 *   nbd:    { "uri": "nbd://host:port/export" | "nbd+unix:///e?socket=P" |
 *             "nbds://..." (TLS, as libnbd allows) }
 *   nbdkit: { "plugin": "memory", "args": ["size=1G"],
 *             "filters": ["delay"] }  -- the gateway starts nbdkit on a
 *             private Unix socket (listening before nbdkit runs: socket
 *             activation), owns it, and restarts it if it dies.
 * Both: "connections" (default 4: used only when the server allows
 * multi-conn, else 1), "reconnect_timeout" (seconds, default 30).
 *
 * Connections: a small pool of libnbd handles shared by every session of
 * the LUN; a data call borrows one (many initiators multiplexed onto few
 * NBD connections).  Without multi-conn there is one handle, so a flush
 * covers every write.  When the server goes away a call reconnects (and
 * for nbdkit restarts the server), retrying until reconnect_timeout, then
 * fails with ENOTCONN (NOT READY to the initiator); nothing hangs longer.
 *
 * Capabilities map straight from NBD: can_flush, can_fua, can_trim,
 * can_zero, base:allocation block status, can_multi_conn.
 * Threads: parallel; the pool has its own lock.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "iscsi-gw-backend.h"
#include "util/util.h"

#include "nbd-internal.h"

static void *
nbd_instance_new_common(bool nbdkit)
{
	struct nbd_instance *ni = calloc(1, sizeof *ni);

	if (ni) {
		ni->nbdkit = nbdkit;
		ni->connections = 4;
		ni->reconnect_timeout = 30;
	}
	return ni;
}

static void *
nbd_instance_new(void)
{
	return nbd_instance_new_common(false);
}

static void *
nbdkit_instance_new(void)
{
	return nbd_instance_new_common(true);
}

static void *
qemu_instance_new(void)
{
	struct nbd_instance *ni = nbd_instance_new_common(false);

	if (ni) {
		ni->qemu = true;
		/* One connection by default ("connections" raises it; the
		 * pool uses more only where qemu-nbd offers multi-conn). */
		ni->connections = 1;
	}
	return ni;
}

/* The name of the server we run, for messages. */
const char *
nbd_server_name(const struct nbd_instance *ni)
{
	return ni->qemu ? "qemu-nbd" : "nbdkit";
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
nbd_instance_free(void *p)
{
	struct nbd_instance *ni = p;

	if (!ni)
		return;
	free(ni->uri);
	free(ni->path);
	free(ni->format);
	free(ni->plugin);
	strv_free(ni->args, ni->nargs);
	strv_free(ni->filters, ni->nfilters);
	free(ni);
}

static int
strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof **v);

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	nv[*n] = NULL;
	return 0;
}

static int
parse_uint(const char *key, const char *v, unsigned lo, unsigned hi,
	   unsigned *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (!*v || *end || n < lo || n > hi) {
		igw_backend_error("'%s' must be an integer from %u to %u", key,
				  lo, hi);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

static int
nbd_config(void *p, const char *key, const char *value)
{
	struct nbd_instance *ni = p;

	if (!strcmp(key, "connections"))
		return parse_uint(key, value, 1, MAX_CONNS, &ni->connections);
	if (!strcmp(key, "reconnect_timeout"))
		return parse_uint(key, value, 0, 3600, &ni->reconnect_timeout);
	if (ni->qemu && !strcmp(key, "path")) {
		free(ni->path);
		ni->path = strdup(value);
		return ni->path ? 0 : -ENOMEM;
	}
	if (ni->qemu && !strcmp(key, "format")) {
		if (!*value || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789") !=
		    strlen(value)) {
			igw_backend_error("'format' must be a qemu image format such as qcow2, raw or vmdk");
			return -EINVAL;
		}
		free(ni->format);
		ni->format = strdup(value);
		return ni->format ? 0 : -ENOMEM;
	}
	if (!ni->nbdkit && !ni->qemu && !strcmp(key, "uri")) {
		if (strncmp(value, "nbd://", 6) && strncmp(value, "nbds://", 7) &&
		    strncmp(value, "nbd+unix://", 11) &&
		    strncmp(value, "nbds+unix://", 12)) {
			igw_backend_error("'uri' must be an NBD URI (nbd://, nbds://, nbd+unix://)");
			return -EINVAL;
		}
		free(ni->uri);
		ni->uri = strdup(value);
		return ni->uri ? 0 : -ENOMEM;
	}
	if (ni->nbdkit && !strcmp(key, "plugin")) {
		free(ni->plugin);
		ni->plugin = strdup(value);
		return ni->plugin ? 0 : -ENOMEM;
	}
	if (ni->nbdkit && !strcmp(key, "args")) {
		if (value[0] == '-') {
			igw_backend_error("'args' are plugin key=value parameters, not options: '%s'",
					  value);
			return -EINVAL;
		}
		return strv_add(&ni->args, &ni->nargs, value);
	}
	if (ni->nbdkit && !strcmp(key, "filters")) {
		if (!*value || strchr(value, '/') || value[0] == '-') {
			igw_backend_error("'filters' entries are filter names: '%s'",
					  value);
			return -EINVAL;
		}
		return strv_add(&ni->filters, &ni->nfilters, value);
	}
	igw_backend_error("unknown key '%s' for backend type %s", key,
			  ni->nbdkit || ni->qemu ? nbd_server_name(ni) : "nbd");
	return -EINVAL;
}

static int
nbd_config_complete(void *p)
{
	struct nbd_instance *ni = p;

	if (ni->qemu) {
		if (!ni->path) {
			igw_backend_error("'path' is required for backend type qemu-nbd");
			return -EINVAL;
		}
		if (!ni->format) {
			igw_backend_error("'format' is required for backend type qemu-nbd (qemu-nbd must not guess it)");
			return -EINVAL;
		}
		return 0;
	}
	if (!ni->nbdkit && !ni->uri) {
		igw_backend_error("'uri' is required for backend type nbd");
		return -EINVAL;
	}
	if (ni->nbdkit && !ni->plugin) {
		igw_backend_error("'plugin' is required for backend type nbdkit");
		return -EINVAL;
	}
	return 0;
}

/* ---- connections ---- */

/* Connect with a bound: libnbd's synchronous connect would wait for ever
 * on a server that accepts and never answers. */
static struct nbd_handle *
connect_one(struct nbd_handle_pool *pl)
{
	struct nbd_handle *h = nbd_create();
	unsigned limit = MAX(1u, MIN(pl->inst->reconnect_timeout, 10u));
	struct timespec start, now;

	if (!h)
		return NULL;
	/* Our own nbdkit is socket-activated: the handshake also waits for
	 * it to start, which takes more than a second on a loaded host. */
	if (pl->inst->nbdkit && pl->pid > 0)
		limit = MAX(limit, 10u);
	nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
	if (nbd_aio_connect_uri(h, pl->conn_uri) == -1)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!nbd_aio_is_ready(h)) {
		struct pollfd pfd;
		unsigned dir;
		int ms, r;

		if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
			goto fail;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (int)(limit * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
			   (now.tv_nsec - start.tv_nsec) / 1000000));
		if (ms <= 0) {
			igw_backend_error("%s: no answer in %u s", pl->conn_uri,
					  limit);
			nbd_close(h);
			return NULL;
		}
		pfd.fd = nbd_aio_get_fd(h);
		dir = nbd_aio_get_direction(h);
		pfd.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
			     ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
		if (pfd.fd < 0)
			goto fail;
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno != EINTR)
			goto fail;
		if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    nbd_aio_notify_read(h) == -1)
			goto fail;
		if (r > 0 && (pfd.revents & POLLOUT) &&
		    nbd_aio_notify_write(h) == -1)
			goto fail;
	}
	return h;
fail:
	igw_backend_error("%s: %s", pl->conn_uri, nbd_get_error());
	nbd_close(h);
	return NULL;
}

static bool
dead(struct nbd_handle *h)
{
	return nbd_aio_is_closed(h) || nbd_aio_is_dead(h);
}

/* Borrow a connected handle; reconnects as needed within the timeout. */
static int
borrow(struct nbd_handle_pool *pl, unsigned *slot)
{
	struct timespec start, now;
	bool failed = false;	/* a connection attempt failed */

	pthread_mutex_lock(&pl->lock);
	for (;;) {
		for (unsigned i = 0; i < pl->n; i++) {
			if (pl->busy[i])
				continue;
			if (pl->h[i] && dead(pl->h[i])) {
				nbd_close(pl->h[i]);
				pl->h[i] = NULL;
			}
			if (!pl->h[i]) {
				struct nbd_handle *nh;
				nbdkit_check(pl);
				/* Connect without holding the pool. */
				pl->busy[i] = true;
				pthread_mutex_unlock(&pl->lock);
				nh = connect_one(pl);
				pthread_mutex_lock(&pl->lock);
				pl->busy[i] = false;
				pl->h[i] = nh;
			}
			if (pl->h[i]) {
				pl->busy[i] = true;
				*slot = i;
				pthread_mutex_unlock(&pl->lock);
				return 0;
			}
			/* Cannot connect now: wait and retry, for at most
			 * reconnect_timeout from the first failure. */
			if (!failed) {
				failed = true;
				clock_gettime(CLOCK_MONOTONIC, &start);
			}
			break;
		}
		/* Every connection busy with other commands is not a
		 * server that is away: only failed connects time out. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (failed &&
		    now.tv_sec - start.tv_sec >= (time_t)pl->inst->reconnect_timeout) {
			pthread_mutex_unlock(&pl->lock);
			return -ENOTCONN;
		}
		{
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 200000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&pl->cond, &pl->lock, &until);
		}
	}
}

static void
give_back(struct nbd_handle_pool *pl, unsigned slot)
{
	pthread_mutex_lock(&pl->lock);
	pl->busy[slot] = false;
	pthread_cond_signal(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
}

/* Errors that mean the connection, not the request, failed. */
static bool
conn_errno(int e)
{
	return e == ENOTCONN || e == ESHUTDOWN || e == EPIPE ||
	       e == ECONNRESET || e == ECONNREFUSED || e == ETIMEDOUT;
}

/* Close a broken connection; the next borrow reconnects. */
static void
drop_handle(struct nbd_handle_pool *pl, unsigned slot)
{
	pthread_mutex_lock(&pl->lock);
	if (pl->h[slot]) {
		nbd_close(pl->h[slot]);
		pl->h[slot] = NULL;
	}
	pthread_mutex_unlock(&pl->lock);
}

static void *
nbd_open(void *p, int readonly)
{
	struct nbd_instance *ni = p;
	struct nbd_handle_pool *pl = calloc(1, sizeof *pl);
	struct nbd_handle *h;

	if (!pl)
		return NULL;
	pl->inst = ni;
	pl->readonly = readonly;
	pthread_mutex_init(&pl->lock, NULL);
	pthread_cond_init(&pl->cond, NULL);
	if (ni->nbdkit || ni->qemu) {
		char tmpl[] = "/tmp/iscsi-gw-nbdkit.XXXXXX";
		int r;
		if (!mkdtemp(tmpl))
			goto err;
		pl->sockdir = strdup(tmpl);
		if (asprintf(&pl->sock, "%s/sock", tmpl) < 0 ||
		    asprintf(&pl->conn_uri, "nbd+unix:///?socket=%s", pl->sock) < 0)
			goto err;
		r = nbdkit_start(pl);
		if (r < 0) {
			errno = -r;
			goto err;
		}
	} else {
		pl->conn_uri = strdup(ni->uri);
	}
	h = connect_one(pl);
	if (!h) {
		int status;
		/* Say so when our nbdkit is the reason (a plugin that
		 * cannot load, bad arguments). */
		for (int i = 0; ni->nbdkit && pl->pid > 0 && i < 50; i++) {
			if (waitpid(pl->pid, &status, WNOHANG) == pl->pid) {
				pl->pid = 0;
				igw_backend_error("nbdkit %s exited at start "
						  "(status %d)", ni->plugin,
						  status);
				break;
			}
			usleep(20000);
		}
		errno = ENOTCONN;
		goto err;
	}
	pl->size = nbd_get_size(h);
	pl->write = !readonly && nbd_is_read_only(h) == 0;
	pl->flush = nbd_can_flush(h) == 1;
	pl->fua = nbd_can_fua(h) == 1;
	pl->trim = nbd_can_trim(h) == 1;
	pl->zero = nbd_can_zero(h) == 1;
	pl->extents = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	pl->multi_conn = nbd_can_multi_conn(h) == 1;
	if (pl->size < 0) {
		igw_backend_error("%s: %s", pl->conn_uri, nbd_get_error());
		nbd_close(h);
		errno = EIO;
		goto err;
	}
	/* Without multi-conn a flush on one connection need not cover the
	 * writes of another: one connection then. */
	pl->n = pl->multi_conn ? ni->connections : 1;
	pl->h[0] = h;
	return pl;
err:
	{
		int e = errno ? errno : EIO;
		nbdkit_stop(pl);
		if (pl->sock)
			unlink(pl->sock);
		if (pl->sockdir)
			rmdir(pl->sockdir);
		free(pl->sock);
		free(pl->sockdir);
		free(pl->conn_uri);
		free(pl);
		errno = e;
	}
	return NULL;
}

static void
nbd_close_pool(void *p)
{
	struct nbd_handle_pool *pl = p;

	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (pl->h[i]) {
			if (!dead(pl->h[i]))
				nbd_shutdown(pl->h[i], 0);
			nbd_close(pl->h[i]);
		}
	nbdkit_stop(pl);
	if (pl->sock)
		unlink(pl->sock);
	if (pl->sockdir)
		rmdir(pl->sockdir);
	free(pl->sock);
	free(pl->sockdir);
	free(pl->conn_uri);
	pthread_mutex_destroy(&pl->lock);
	pthread_cond_destroy(&pl->cond);
	free(pl);
}

static int64_t
nbd_get_size_cb(void *p)
{
	return ((struct nbd_handle_pool *)p)->size;
}

#define CAN(name, field)                                                      \
	static int name(void *p)                                              \
	{                                                                     \
		return ((struct nbd_handle_pool *)p)->field;                  \
	}
CAN(nbd_can_write_cb, write)
CAN(nbd_can_flush_cb, flush)
CAN(nbd_can_fua_cb, fua)
CAN(nbd_can_trim_cb, trim)
CAN(nbd_can_zero_cb, zero)
CAN(nbd_can_extents_cb, extents)
CAN(nbd_can_multi_conn_cb, multi_conn)

/* Run one NBD call with a borrowed handle; a connection that died during
 * the call is retried on a fresh one until reconnect_timeout. */
#define WITH_HANDLE(pl, call)                                                 \
	({                                                                    \
		int _r;                                                       \
		struct timespec _t0, _t1;                                     \
		clock_gettime(CLOCK_MONOTONIC, &_t0);                         \
		for (;;) {                                                    \
			unsigned slot;                                        \
			struct nbd_handle *h;                                 \
			_r = borrow(pl, &slot);                               \
			if (_r < 0)                                           \
				break;                                        \
			h = (pl)->h[slot];                                    \
			_r = (call);                                          \
			if (_r == -1) {                                       \
				int e = nbd_get_errno();                      \
				bool gone = dead(h) || conn_errno(e);         \
				igw_backend_error("%s", nbd_get_error());     \
				if (gone)                                     \
					drop_handle(pl, slot);                \
				give_back(pl, slot);                          \
				clock_gettime(CLOCK_MONOTONIC, &_t1);         \
				if (gone && _t1.tv_sec - _t0.tv_sec <         \
				    (time_t)(pl)->inst->reconnect_timeout)    \
					continue;                             \
				_r = gone ? -ENOTCONN : -(e ? e : EIO);       \
				break;                                        \
			}                                                     \
			give_back(pl, slot);                                  \
			_r = 0;                                               \
			break;                                                \
		}                                                             \
		_r;                                                           \
	})

static int
nbd_pread_cb(void *p, void *buf, uint32_t count, uint64_t offset,
	     uint32_t flags)
{
	struct nbd_handle_pool *pl = p;

	return WITH_HANDLE(pl, nbd_pread(h, buf, count, offset, 0));
}

static int
nbd_pwrite_cb(void *p, const void *buf, uint32_t count, uint64_t offset,
	      uint32_t flags)
{
	struct nbd_handle_pool *pl = p;
	uint32_t f = (flags & IGW_FLAG_FUA) ? LIBNBD_CMD_FLAG_FUA : 0;

	return WITH_HANDLE(pl, nbd_pwrite(h, buf, count, offset, f));
}

static int
nbd_flush_cb(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct nbd_handle_pool *pl = p;

	return WITH_HANDLE(pl, nbd_flush(h, 0));
}

static int
nbd_trim_cb(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct nbd_handle_pool *pl = p;
	uint32_t f = (flags & IGW_FLAG_FUA) && pl->fua ? LIBNBD_CMD_FLAG_FUA : 0;
	int r = 0;

	while (count > 0 && r == 0) {
		uint64_t n = MIN(count, 1u << 30);
		r = WITH_HANDLE(pl, nbd_trim(h, n, offset, f));
		count -= n;
		offset += n;
	}
	return r;
}

static int
nbd_zero_cb(void *p, uint64_t count, uint64_t offset, uint32_t flags)
{
	struct nbd_handle_pool *pl = p;
	uint32_t f = ((flags & IGW_FLAG_FUA) && pl->fua ? LIBNBD_CMD_FLAG_FUA : 0) |
		     ((flags & IGW_FLAG_MAY_TRIM) ? 0 : LIBNBD_CMD_FLAG_NO_HOLE);
	int r = 0;

	while (count > 0 && r == 0) {
		uint64_t n = MIN(count, 1u << 30);
		r = WITH_HANDLE(pl, nbd_zero(h, n, offset, f));
		count -= n;
		offset += n;
	}
	return r;
}

struct extent_ctx {
	uint64_t run;
	int allocated;
	bool got;
};

static int
extent_cb(void *user_data, const char *metacontext, uint64_t offset,
	  uint32_t *entries, size_t nr_entries, int *error)
{
	struct extent_ctx *x = user_data;

	if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) || x->got ||
	    nr_entries < 2)
		return 0;
	x->run = entries[0];
	/* NBD_STATE_HOLE (1): not allocated. */
	x->allocated = !(entries[1] & LIBNBD_STATE_HOLE);
	x->got = true;
	return 0;
}

static int
nbd_extents_cb(void *p, uint64_t count, uint64_t offset, uint64_t *run_len,
	       int *allocated)
{
	struct nbd_handle_pool *pl = p;
	struct extent_ctx x = { 0 };
	int r;

	count = MIN(count, (uint64_t)1 << 31);
	r = WITH_HANDLE(pl, nbd_block_status(h, count, offset,
			(nbd_extent_callback){ .callback = extent_cb,
					       .user_data = &x }, 0));
	if (r < 0)
		return r;
	*run_len = x.got ? MIN(x.run, count) : count;
	*allocated = x.got ? x.allocated : 1;
	return 0;
}

/* Main thread, before the daemon gives up root: once it has, a server
 * started as root could neither be stopped (kill: EPERM) nor replaced in
 * its root-owned 0700 socket folder when it dies.  So the folder becomes
 * the user's and the server is started again as the user; no command has
 * run yet.  A server that the user cannot run (an image only root can
 * read) fails here, at start, rather than at its first restart. */
static int
nbd_set_owner(void *p, uint32_t uid, uint32_t gid)
{
	struct nbd_handle_pool *pl = p;
	int r;

	if (!pl->sockdir)
		return 0;	/* type nbd: a server of someone else's */
	if (chown(pl->sockdir, uid, gid) < 0) {
		r = -errno;
		igw_backend_error("%s: chown: %s", pl->sockdir, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&pl->lock);
	pl->owner_set = true;
	pl->owner_uid = uid;
	pl->owner_gid = gid;
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (pl->h[i]) {
			if (!dead(pl->h[i]))
				nbd_shutdown(pl->h[i], 0);
			nbd_close(pl->h[i]);
			pl->h[i] = NULL;
		}
	nbdkit_stop(pl);
	r = nbdkit_start(pl);
	pthread_mutex_unlock(&pl->lock);
	return r;
}

static struct igw_backend nbd_backend = {
	.name = "nbd",
	.description = "an NBD export, through libnbd",
	.instance_new = nbd_instance_new,
	.config = nbd_config,
	.config_complete = nbd_config_complete,
	.open = nbd_open,
	.close = nbd_close_pool,
	.instance_free = nbd_instance_free,
	.get_size = nbd_get_size_cb,
	.can_write = nbd_can_write_cb,
	.can_flush = nbd_can_flush_cb,
	.can_fua = nbd_can_fua_cb,
	.can_trim = nbd_can_trim_cb,
	.can_zero = nbd_can_zero_cb,
	.can_extents = nbd_can_extents_cb,
	.can_multi_conn = nbd_can_multi_conn_cb,
	.pread = nbd_pread_cb,
	.pwrite = nbd_pwrite_cb,
	.flush = nbd_flush_cb,
	.trim = nbd_trim_cb,
	.zero = nbd_zero_cb,
	.extents = nbd_extents_cb,
	.set_owner = nbd_set_owner,
};

IGW_REGISTER_BACKEND(nbd_backend, IGW_THREAD_MODEL_PARALLEL)

/* "nbdkit" is "nbd" with a server of its own: the same calls, another
 * name and an instance that starts nbdkit. */
const struct igw_backend *igw_backend_get_nbdkit_backend(void);
const struct igw_backend *
igw_backend_get_nbdkit_backend(void)
{
	static struct igw_backend b;

	b = *igw_backend_get_nbd_backend();
	b.name = "nbdkit";
	b.description = "an nbdkit plugin chain run by the gateway";
	b.instance_new = nbdkit_instance_new;
	return &b;
}

/* "qemu-nbd": an image in any format qemu reads (qcow2, vmdk, vhdx...)
 * served by a qemu-nbd the gateway runs.  Per-initiator overlays use it. */
const struct igw_backend *igw_backend_get_qemu_nbd_backend(void);
const struct igw_backend *
igw_backend_get_qemu_nbd_backend(void)
{
	static struct igw_backend b;

	b = *igw_backend_get_nbd_backend();
	b.name = "qemu-nbd";
	b.description = "a disk image (qcow2, vmdk...) served by a qemu-nbd the gateway runs";
	b.instance_new = qemu_instance_new;
	return &b;
}
