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
	/* Finished jobs, newest first: workers push without a lock, the
	 * loop takes the whole stack at once (atomics). */
	struct io_job *done;
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
	struct io_job *job = NULL, *stack;

	if (read(l->wake.fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %m");
	stack = __atomic_exchange_n(&l->done, NULL, __ATOMIC_ACQUIRE);
	/* Oldest first, as they finished. */
	while (stack) {
		struct io_job *next = stack->next;
		stack->next = job;
		job = stack;
		stack = next;
	}
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
	struct io_job *old = __atomic_load_n(&l->done, __ATOMIC_RELAXED);
	uint64_t one = 1;

	do
		job->next = old;
	while (!__atomic_compare_exchange_n(&l->done, &old, job, true,
					    __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
	/* Only the first completion of a batch wakes the loop: the loop
	 * reads the eventfd before it takes the stack, so a job pushed
	 * onto an empty stack after that read finds it written again. */
	if (!old && write(l->wake.fd, &one, sizeof one) < 0 &&
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
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (l->tick && (now.tv_sec > l->last_tick.tv_sec + 1 ||
				(now.tv_sec == l->last_tick.tv_sec + 1 &&
				 now.tv_nsec >= l->last_tick.tv_nsec))) {
			l->last_tick = now;
			l->tick(l->tick_opaque);
		}
		/* No callback of the batch is left to run: what the
		 * callbacks closed can be freed now, what they left to send
		 * sent. */
		if (l->after)
			l->after(l->after_opaque);
	}
	l->stop = false;
}
