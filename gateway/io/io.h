/* io.h: the IO engine.  Owns the worker pool that runs blocking backend
 * calls and the event loop that owns network connections.
 *
 *   loop thread --io_submit(job)--> queue --> worker: job->fn()
 *   worker --evloop_complete(job)--> loop's completion list + eventfd
 *   loop thread: job->done()
 *
 *   or, for a backend's async read or write (scsi/sbc-io.c), no worker:
 *   backend reaper thread --evloop_complete(job)--> the same list
 *
 * A job is submitted from a loop thread and completed on the same loop
 * thread, so the connection state a completion touches needs no lock.
 * Workers wake the loop only when its completion list was empty (batching).
 */
#ifndef IGW_IO_H
#define IGW_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

struct evloop;

struct io_job {
	void (*fn)(struct io_job *);	/* worker thread */
	void (*done)(struct io_job *);	/* loop thread */
	struct evloop *loop;
	struct io_job *next;		/* queue link, owned by the queue */
};

int io_pool_start(unsigned nthreads);
void io_pool_stop(void);
void io_submit(struct io_job *job);

/* Event loop: one per network thread. */
struct ev_handler {
	int fd;
	void (*cb)(struct ev_handler *h, uint32_t events);
};

struct evloop *evloop_new(void);
void evloop_free(struct evloop *l);
int evloop_add(struct evloop *l, struct ev_handler *h, uint32_t events);
int evloop_mod(struct evloop *l, struct ev_handler *h, uint32_t events);
void evloop_del(struct evloop *l, struct ev_handler *h);
/* Called on the loop thread after each batch of events (and tick), when
 * no event callback is running. */
void evloop_set_after(struct evloop *l, void (*after)(void *), void *opaque);
/* Called once a second on the loop thread. */
void evloop_set_tick(struct evloop *l, void (*tick)(void *), void *opaque);
/* Run until evloop_stop. */
void evloop_run(struct evloop *l);
void evloop_stop(struct evloop *l);
/* Any thread: hand a finished job back to its loop. */
void evloop_complete(struct io_job *job);

#endif
