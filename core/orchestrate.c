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
	int thread; /* which of the pool's threads runs the job: the timeline's critical path follows it */
};

/* What a pool thread is started with. */
struct thread_arg {
	fl_orch *o;
	int index;
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
	fl_pg **pgs;        /* per job, guarded by mu: severed when a cancel does not land */
	double cancel_at;   /* when the run was cancelled (seconds since t0); < 0: not */
	bool severed;
	atomic_int cancel;
	atomic_int interrupted;
	struct timespec t0;
	fl_orch *next_active; /* the runs the signal thread cancels, guarded by sig_mu */
};

/*
 * The process's SIGINT/SIGTERM handling. main() blocks both signals before
 * any thread exists (so every thread inherits the mask) and one thread waits
 * for them with sigwait for the rest of the process: no code runs in a signal
 * handler, and the first signal reaches a run in any phase. Children start
 * with the default mask (the secret and sink runners reset it).
 */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static fl_orch *sig_active; /* runs under way, guarded by sig_mu */
static int sig_watchers;    /* commands that handle the first interrupt themselves, guarded by sig_mu */
static atomic_int sig_interrupted;
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

void fl_orch_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &until);
}

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
	               .at = since(&o->t0),
	               .worker = w->thread};
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

/* One cancel request, on its own detached thread, which then frees it. */
static void *cancel_main(void *p)
{
	char buf[256];
	PQcancel(p, buf, sizeof(buf));
	PQfreeCancel(p);
	return NULL;
}

/*
 * PQcancel opens a new connection to the server and waits for it: through a
 * stalled proxy that is a wait without end. So no cancel request is sent
 * while a lock is held, and none is waited for: each goes out on a detached
 * thread that owns the PGcancel (the job's slot is emptied, so the job never
 * frees it) and the caller (the signal thread, a worker on --fail-fast)
 * returns at once. A request still hanging when the process exits dies with it.
 */
static void send_cancel(PGcancel *c)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, cancel_main, c) != 0)
		cancel_main(c); /* no thread to be had: send it here rather than not at all */
	pthread_attr_destroy(&at);
}

void fl_orch_set_pg(fl_orch_worker *w, fl_pg *pg)
{
	fl_orch_set_conn(w, pg ? pg->conn : NULL);
	pthread_mutex_lock(&w->o->mu);
	w->o->pgs[w->job] = pg;
	pthread_mutex_unlock(&w->o->mu);
}

void fl_orch_set_conn(fl_orch_worker *w, PGconn *conn)
{
	fl_orch *o = w->o;
	PGcancel *c = conn ? PQgetCancel(conn) : NULL;
	PGcancel *fire = NULL;
	pthread_mutex_lock(&o->mu);
	PGcancel *old = o->cancels[w->job];
	o->cancels[w->job] = c;
	if (!conn)
		o->pgs[w->job] = NULL; /* from here on the job may close it */
	/* a cancel that came before the connection existed must still stop it */
	if (c && atomic_load(&o->cancel)) {
		fire = c;
		o->cancels[w->job] = NULL;
	}
	pthread_mutex_unlock(&o->mu);
	if (old)
		PQfreeCancel(old);
	if (fire)
		send_cancel(fire);
}

void fl_orch_cancel(fl_orch *o)
{
	pthread_mutex_lock(&o->mu);
	if (!atomic_exchange(&o->cancel, 1))
		o->cancel_at = since(&o->t0);
	size_t n = 0;
	PGcancel **fire = fl_calloc(o->njobs ? o->njobs : 1, sizeof(*fire));
	for (size_t i = 0; i < o->njobs; i++)
		if (o->cancels[i]) {
			fire[n++] = o->cancels[i];
			o->cancels[i] = NULL;
		}
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (size_t i = 0; i < n; i++)
		send_cancel(fire[i]);
	free(fire);
}

static void *worker_main(void *p)
{
	const struct thread_arg *ta = p;
	fl_orch *o = ta->o;
	for (;;) {
		pthread_mutex_lock(&o->mu);
		if (o->next_job >= o->njobs || atomic_load(&o->cancel)) {
			pthread_mutex_unlock(&o->mu);
			return NULL;
		}
		size_t job = o->opts->order ? o->opts->order[o->next_job] : o->next_job;
		o->next_job++;
		pthread_mutex_unlock(&o->mu);

		fl_orch_worker w = {.o = o, .job = job, .thread = ta->index};
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

static void say(const char *msg, size_t len)
{
	ssize_t r = write(2, msg, len);
	(void)r;
}

/* The signal thread tells signals_start it runs (see there). */
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;
static bool started;

static void *signal_main(void *p)
{
	(void)p;
	pthread_mutex_lock(&start_mu);
	started = true;
	pthread_cond_signal(&start_cv);
	pthread_mutex_unlock(&start_mu);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (atomic_exchange(&sig_interrupted, 1)) {
			static const char msg[] = "\nflotilla: interrupted again; exiting now\n";
			say(msg, sizeof(msg) - 1);
			_exit(130);
		}
		pthread_mutex_lock(&sig_mu);
		if (!sig_active && sig_watchers == 0) {
			/* nothing to roll back and nobody to report it: stop here */
			static const char msg[] = "\nflotilla: interrupted\n";
			say(msg, sizeof(msg) - 1);
			_exit(130);
		}
		for (fl_orch *o = sig_active; o; o = o->next_active) {
			atomic_store(&o->interrupted, 1);
			fl_orch_cancel(o); /* never blocks: see send_cancel */
		}
		pthread_mutex_unlock(&sig_mu);
	}
}

static void signals_start(void)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	/* wait until it runs: a process that ends while a thread is still being set up
	 * (a quick `flotilla help`) would leave the sanitizers' bookkeeping half made */
	if (pthread_create(&t, &at, signal_main, NULL) == 0) {
		pthread_mutex_lock(&start_mu);
		while (!started)
			pthread_cond_wait(&start_cv, &start_mu);
		pthread_mutex_unlock(&start_mu);
	}
	pthread_attr_destroy(&at);
}

void fl_orch_signals_init(void)
{
	pthread_once(&sig_once, signals_start);
}

void fl_orch_signals_watch(bool on)
{
	fl_orch_signals_init();
	pthread_mutex_lock(&sig_mu);
	sig_watchers += on ? 1 : -1;
	pthread_mutex_unlock(&sig_mu);
}

bool fl_orch_interrupted(void)
{
	return atomic_load(&sig_interrupted) != 0;
}

static void sig_register(fl_orch *o)
{
	fl_orch_signals_init();
	pthread_mutex_lock(&sig_mu);
	o->next_active = sig_active;
	sig_active = o;
	/* an interrupt before the run began stops it before its first job */
	if (atomic_load(&sig_interrupted)) {
		atomic_store(&o->interrupted, 1);
		atomic_store(&o->cancel, 1);
	}
	pthread_mutex_unlock(&sig_mu);
}

static void sig_unregister(fl_orch *o)
{
	pthread_mutex_lock(&sig_mu);
	for (fl_orch **pp = &sig_active; *pp; pp = &(*pp)->next_active)
		if (*pp == o) {
			*pp = o->next_active;
			break;
		}
	pthread_mutex_unlock(&sig_mu);
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
	o.pgs = fl_calloc(njobs ? njobs : 1, sizeof(fl_pg *));
	o.cancel_at = -1;
	clock_gettime(CLOCK_MONOTONIC, &o.t0);
	for (size_t i = 0; i < njobs; i++)
		results[i] = 130;

	int nthreads = opts->threads;
	if (nthreads <= 0)
		nthreads = njobs < 8 ? (int)njobs : 8;
	if ((size_t)nthreads > njobs)
		nthreads = (int)njobs;

	if (opts->handle_signals)
		sig_register(&o);

	for (size_t i = 0; i < njobs; i++) {
		fl_event ev = {.job = i, .kind = FL_EV_WAITING, .at = 0, .worker = -1};
		pthread_mutex_lock(&o.mu);
		enqueue(&o, ev);
		pthread_mutex_unlock(&o.mu);
	}
	pthread_t *th = fl_calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof(pthread_t));
	struct thread_arg *ta = fl_calloc((size_t)(nthreads > 0 ? nthreads : 1), sizeof(*ta));
	for (int i = 0; i < nthreads; i++) {
		ta[i] = (struct thread_arg){.o = &o, .index = i};
		pthread_create(&th[i], NULL, worker_main, &ta[i]);
	}

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
		if (!atomic_load(&o.cancel)) {
			pthread_cond_wait(&o.cv, &o.mu);
			continue;
		}
		/*
		 * Cancelled: a statement the cancel request reached ends at once.
		 * One behind a frozen proxy never hears of it, so once the bound
		 * has passed the connections still registered are severed, and
		 * their jobs fail on the spot instead of waiting out the query
		 * bound.
		 */
		if (!o.severed && o.cancel_at >= 0 && since(&o.t0) - o.cancel_at > FL_ORCH_CANCEL_BOUND_S) {
			o.severed = true;
			for (size_t i = 0; i < njobs; i++)
				if (o.pgs[i])
					fl_pg_sever(o.pgs[i]);
		}
		fl_orch_cond_wait(&o.cv, &o.mu, 100);
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
	free(ta);

	if (opts->handle_signals)
		sig_unregister(&o);
	int rc = atomic_load(&o.interrupted) ? 130 : 0;
	for (size_t i = 0; i < njobs; i++)
		if (o.cancels[i])
			PQfreeCancel(o.cancels[i]);
	free(o.cancels);
	free(o.pgs);
	free(o.queue);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	return rc;
}
