/* nbd-internal.h: what the two halves of the nbd backends share: the
 * instance (parsed settings) and the handle pool of nbd.c, and the
 * server child (nbdkit or qemu-nbd) that server.c starts, watches and
 * stops for the "nbdkit" and "qemu-nbd" types.
 */
#ifndef IGW_NBD_INTERNAL_H
#define IGW_NBD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nbd_handle;

#define MAX_CONNS 16

struct nbd_instance {
	bool nbdkit;			/* type nbdkit: we run the server */
	bool qemu;			/* type qemu-nbd: we run qemu-nbd */
	char *uri;
	char *path;			/* qemu-nbd: the image */
	char *format;			/* qemu-nbd: its format */
	char *plugin;
	char **args;			/* plugin key=value */
	size_t nargs;
	char **filters;
	size_t nfilters;
	unsigned connections;
	unsigned reconnect_timeout;
};

struct nbd_handle_pool {
	struct nbd_instance *inst;
	bool readonly;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct nbd_handle *h[MAX_CONNS];	/* NULL: needs connecting */
	bool busy[MAX_CONNS];
	unsigned n;
	/* Server facts from the first connection. */
	int64_t size;
	bool flush, fua, trim, zero, extents, multi_conn, write;
	/* nbdkit child (type nbdkit). */
	pid_t pid;
	char *sockdir;
	char *sock;
	char *conn_uri;
	/* Set before the daemon gives up root (set_owner): the child runs
	 * as them, in a socket folder they own. */
	bool owner_set;
	uid_t owner_uid;
	gid_t owner_gid;
};

/* nbd.c */
const char *nbd_server_name(const struct nbd_instance *ni);

/* server.c: with the pool lock held, or before the pool is shared. */
int nbdkit_start(struct nbd_handle_pool *pl);
void nbdkit_stop(struct nbd_handle_pool *pl);
void nbdkit_check(struct nbd_handle_pool *pl);

#endif
