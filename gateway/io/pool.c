/* pool.c: the IO worker pool (Redis bio.c shape).  A FIFO of jobs under
 * one mutex; workers sleep on a condition variable.  Jobs never block the
 * loop that submitted them: the loop only links the job in.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct io_job *head, *tail;	/* lock */
static unsigned queued;			/* lock: jobs in the queue */
static unsigned idle;			/* lock: workers in cond_wait */
static unsigned waking;			/* lock: signalled, not yet up */
static bool stopping;			/* lock */
static pthread_t *threads;
static unsigned nthreads;

static void *
worker(void *arg)
{
	log_set_prefix("io");
	for (;;) {
		struct io_job *job;
		bool wake;

		pthread_mutex_lock(&lock);
		while (!head && !stopping) {
			idle++;
			pthread_cond_wait(&cond, &lock);
			idle--;
			if (waking)
				waking--;
		}
		if (!head) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		job = head;
		head = job->next;
		if (!head)
			tail = NULL;
		queued--;
		/* More work than hands: wake the next one (see io_submit). */
		wake = queued && idle > waking && !waking;
		if (wake)
			waking++;
		pthread_mutex_unlock(&lock);
		if (wake)
			pthread_cond_signal(&cond);

		job->next = NULL;
		job->fn(job);
		evloop_complete(job);
	}
}

int
io_pool_start(unsigned n)
{
	threads = calloc(n, sizeof *threads);
	if (!threads)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		int r = pthread_create(&threads[i], NULL, worker, NULL);
		if (r) {
			log_error("pthread_create: %s", strerror(r));
			io_pool_stop();
			return -r;
		}
		nthreads++;
	}
	return 0;
}

void
io_pool_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
	nthreads = 0;
	stopping = false;
}

/* Wake-ups are chained: a sleeping worker is woken only when no other
 * is on its way up, and each worker that takes a job and still sees some
 * queued wakes the next.  Busy workers take the next job before they
 * sleep again.  So a burst of quick jobs (page-cache writes) is served
 * by a few workers that stay up rather than by one wake-up per job, and
 * slow ones (a disk) still bring up every worker, one wake-up latency
 * apart.  The signal goes after the unlock, so the woken worker does not
 * run into the mutex still held here.  (The futex hand-offs were a third
 * of the CPU time of 4 KB random writes.) */
void
io_submit(struct io_job *job)
{
	bool wake;

	job->next = NULL;
	pthread_mutex_lock(&lock);
	if (tail)
		tail->next = job;
	else
		head = job;
	tail = job;
	queued++;
	wake = idle > waking && !waking;
	if (wake)
		waking++;
	pthread_mutex_unlock(&lock);
	if (wake)
		pthread_cond_signal(&cond);
}
