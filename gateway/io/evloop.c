/* evloop.c: an epoll loop (Redis ae.c shape).  Owns the epoll set, the
 * completion list that workers fill, and the once-a-second tick.  Only the
 * loop's own thread touches handlers; evloop_complete is the one entry
 * point for other threads.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "log.h"

struct evloop {
	int epfd;
	struct ev_handler wake;		/* eventfd, completions pending */
	pthread_mutex_t lock;
	struct io_job *done_head, *done_tail;	/* lock */
	bool stop;
	void (*tick)(void *);
	void *tick_opaque;
	void (*after)(void *);		/* after each batch of events */
	void *after_opaque;
	struct timespec last_tick;
};

static void
drain_completions(struct ev_handler *h, uint32_t events)
{
	struct evloop *l = (struct evloop *)((char *)h -
					     offsetof(struct evloop, wake));
	uint64_t v;
	struct io_job *job;

	if (read(l->wake.fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %m");
	pthread_mutex_lock(&l->lock);
	job = l->done_head;
	l->done_head = l->done_tail = NULL;
	pthread_mutex_unlock(&l->lock);
	while (job) {
		struct io_job *next = job->next;
		job->next = NULL;
		job->done(job);
		job = next;
	}
}

struct evloop *
evloop_new(void)
{
	struct evloop *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->wake.fd < 0) {
		int e = errno;
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wake.fd >= 0)
			close(l->wake.fd);
		free(l);
		errno = e;
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	l->wake.cb = drain_completions;
	evloop_add(l, &l->wake, EPOLLIN);
	return l;
}

void
evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	close(l->wake.fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int
evloop_add(struct evloop *l, struct ev_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0 ? -errno : 0;
}

int
evloop_mod(struct evloop *l, struct ev_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, h->fd, &ev) < 0 ? -errno : 0;
}

void
evloop_del(struct evloop *l, struct ev_handler *h)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

void
evloop_set_after(struct evloop *l, void (*after)(void *), void *opaque)
{
	l->after = after;
	l->after_opaque = opaque;
}

void
evloop_set_tick(struct evloop *l, void (*tick)(void *), void *opaque)
{
	l->tick = tick;
	l->tick_opaque = opaque;
}

void
evloop_stop(struct evloop *l)
{
	l->stop = true;
}

void
evloop_complete(struct io_job *job)
{
	struct evloop *l = job->loop;
	bool was_empty;
	uint64_t one = 1;

	job->next = NULL;
	pthread_mutex_lock(&l->lock);
	was_empty = !l->done_head;
	if (l->done_tail)
		l->done_tail->next = job;
	else
		l->done_head = job;
	l->done_tail = job;
	pthread_mutex_unlock(&l->lock);
	/* Only the first completion of a batch wakes the loop. */
	if (was_empty && write(l->wake.fd, &one, sizeof one) < 0 &&
	    errno != EAGAIN)
		log_warn("eventfd write: %m");
}

void
evloop_run(struct evloop *l)
{
	struct epoll_event evs[64];

	clock_gettime(CLOCK_MONOTONIC, &l->last_tick);
	while (!l->stop) {
		struct timespec now;
		int n = epoll_wait(l->epfd, evs, 64, 250);

		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %m");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev_handler *h = evs[i].data.ptr;
			h->cb(h, evs[i].events);
		}
		/* No callback of the batch is left to run: what the
		 * callbacks closed can be freed now. */
		if (n > 0 && l->after)
			l->after(l->after_opaque);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (l->tick && (now.tv_sec > l->last_tick.tv_sec + 1 ||
				(now.tv_sec == l->last_tick.tv_sec + 1 &&
				 now.tv_nsec >= l->last_tick.tv_nsec))) {
			l->last_tick = now;
			l->tick(l->tick_opaque);
		}
	}
	l->stop = false;
}
