#include "orchestrate.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fl_orch_worker {
	fl_orch *o;
	size_t job;
};

struct fl_orch {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when an event is queued or a job ends */
	fl_event *queue;   /* ring buffer */
	size_t qhead, qlen, qcap;
	size_t njobs, next_job, finished;
	fl_orch_job_fn fn;
	void *arg;
	const fl_orch_opts *opts;
	int *results;
	PGcancel **cancels; /* per job, guarded by mu */
	atomic_int cancel;
	atomic_int interrupted;
	struct timespec t0;
};

static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Called with o->mu held. */
static void enqueue(fl_orch *o, fl_event ev)
{
	if (o->qlen == o->qcap) {
		size_t ncap = o->qcap ? o->qcap * 2 : 64;
		fl_event *nq = fl_malloc(ncap * sizeof(*nq));
		for (size_t i = 0; i < o->qlen; i++)
			nq[i] = o->queue[(o->qhead + i) % o->qcap];
		free(o->queue);
		o->queue = nq;
		o->qcap = ncap;
		o->qhead = 0;
	}
	o->queue[(o->qhead + o->qlen) % o->qcap] = ev;
	o->qlen++;
	pthread_cond_signal(&o->cv);
}

void fl_orch_post(fl_orch_worker *w, fl_event_kind kind, int index, int total, long ms, const char *text)
{
	fl_orch *o = w->o;
	fl_event ev = {.job = w->job,
	               .kind = kind,
	               .index = index,
	               .total = total,
	               .ms = ms,
	               .text = text ? fl_strdup(text) : NULL,
	               .at = since(&o->t0)};
	pthread_mutex_lock(&o->mu);
	enqueue(o, ev);
	pthread_mutex_unlock(&o->mu);
}

bool fl_orch_cancelled(const fl_orch_worker *w)
{
	return atomic_load(&w->o->cancel) != 0;
}

atomic_int *fl_orch_cancel_flag(fl_orch_worker *w)
{
	return &w->o->cancel;
}

size_t fl_orch_job_index(const fl_orch_worker *w)
{
	return w->job;
}

fl_orch *fl_orch_of(fl_orch_worker *w)
{
	return w->o;
}

void fl_orch_set_conn(fl_orch_worker *w, PGconn *conn)
{
	fl_orch *o = w->o;
	PGcancel *c = conn ? PQgetCancel(conn) : NULL;
	pthread_mutex_lock(&o->mu);
	PGcancel *old = o->cancels[w->job];
	o->cancels[w->job] = c;
	pthread_mutex_unlock(&o->mu);
	if (old)
		PQfreeCancel(old);
	/* a cancel that came before the connection existed must still stop it */
	if (c && atomic_load(&o->cancel)) {
		char buf[256];
		pthread_mutex_lock(&o->mu);
		PQcancel(c, buf, sizeof(buf));
		pthread_mutex_unlock(&o->mu);
	}
}

void fl_orch_cancel(fl_orch *o)
{
	char buf[256];
	pthread_mutex_lock(&o->mu);
	atomic_store(&o->cancel, 1);
	for (size_t i = 0; i < o->njobs; i++)
		if (o->cancels[i])
			PQcancel(o->cancels[i], buf, sizeof(buf));
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void *worker_main(void *p)
{
	fl_orch *o = p;
	for (;;) {
		pthread_mutex_lock(&o->mu);
		if (o->next_job >= o->njobs || atomic_load(&o->cancel)) {
			pthread_mutex_unlock(&o->mu);
			return NULL;
		}
		size_t job = o->opts->order ? o->opts->order[o->next_job] : o->next_job;
		o->next_job++;
		pthread_mutex_unlock(&o->mu);

		fl_orch_worker w = {.o = o, .job = job};
		int rc = o->fn(&w, job, o->arg);
		fl_orch_set_conn(&w, NULL);

		pthread_mutex_lock(&o->mu);
		o->results[job] = rc;
		o->finished++;
		pthread_cond_broadcast(&o->cv);
		pthread_mutex_unlock(&o->mu);
		if (rc == 1 && o->opts->fail_fast)
			fl_orch_cancel(o);
	}
}

/* Waits for SIGINT/SIGTERM (blocked everywhere else); SIGUSR1 ends it. */
static void *signal_main(void *p)
{
	fl_orch *o = p;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1)
			return NULL;
		if (atomic_exchange(&o->interrupted, 1)) {
			static const char msg[] = "\nflotilla: interrupted again; exiting now\n";
			ssize_t r = write(2, msg, sizeof(msg) - 1);
			(void)r;
			_exit(130);
		}
		fl_orch_cancel(o);
	}
}

int fl_orch_run(size_t njobs, fl_orch_job_fn fn, void *arg, const fl_orch_opts *opts, int *results)
{
	fl_orch o;
	memset(&o, 0, sizeof(o));
	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	o.njobs = njobs;
	o.fn = fn;
	o.arg = arg;
	o.opts = opts;
	o.results = results;
	o.cancels = fl_calloc(njobs ? njobs : 1, sizeof(PGcancel *));
	clock_gettime(CLOCK_MONOTONIC, &o.t0);
	for (size_t i = 0; i < njobs; i++)
		results[i] = 130;

	int nthreads = opts->threads;
	if (nthreads <= 0)
		nthreads = njobs < 8 ? (int)njobs : 8;
	if ((size_t)nthreads > njobs)
		nthreads = (int)njobs;

	sigset_t block, old;
	pthread_t sigth;
	if (opts->handle_signals) {
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		pthread_create(&sigth, NULL, signal_main, &o);
	}

	for (size_t i = 0; i < njobs; i++) {
		fl_event ev = {.job = i, .kind = FL_EV_WAITING, .at = 0};
		pthread_mutex_lock(&o.mu);
		enqueue(&o, ev);
		pthread_mutex_unlock(&o.mu);
	}
	pthread_t *th = fl_calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker_main, &o);

	/* the consumer: deliver events in order until every thread is done */
	pthread_mutex_lock(&o.mu);
	for (;;) {
		while (o.qlen > 0) {
			fl_event ev = o.queue[o.qhead];
			o.qhead = (o.qhead + 1) % o.qcap;
			o.qlen--;
			pthread_mutex_unlock(&o.mu);
			if (opts->on_event)
				opts->on_event(opts->event_ctx, &ev);
			free(ev.text);
			pthread_mutex_lock(&o.mu);
		}
		size_t started = o.next_job;
		bool all_done = o.finished == started && (started == njobs || atomic_load(&o.cancel));
		if (all_done)
			break;
		pthread_cond_wait(&o.cv, &o.mu);
	}
	pthread_mutex_unlock(&o.mu);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	/* events posted between the last check and the joins */
	while (o.qlen > 0) {
		fl_event ev = o.queue[o.qhead];
		o.qhead = (o.qhead + 1) % o.qcap;
		o.qlen--;
		if (opts->on_event)
			opts->on_event(opts->event_ctx, &ev);
		free(ev.text);
	}
	free(th);

	if (opts->handle_signals) {
		pthread_kill(sigth, SIGUSR1);
		pthread_join(sigth, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	int rc = atomic_load(&o.interrupted) ? 130 : 0;
	for (size_t i = 0; i < njobs; i++)
		if (o.cancels[i])
			PQfreeCancel(o.cancels[i]);
	free(o.cancels);
	free(o.queue);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	return rc;
}
