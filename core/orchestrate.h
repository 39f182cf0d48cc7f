/*
 * orchestrate: the thread pool that runs one job per service.
 *
 * N worker threads take jobs in order; each job owns whatever it connects
 * (a worker thread owns its PGconn). The only state the threads share is
 * the event queue (mutex + condition variable), read by one consumer on
 * the calling thread, and an atomic cancel flag. Cancellation: the first
 * SIGINT/SIGTERM (or fl_orch_cancel(), e.g. for --fail-fast) sets the flag
 * and sends PQcancel to every running statement a job has registered; jobs
 * roll back and return. Cancel requests go out on threads of their own,
 * never under a lock and never waited for, so a stalled server cannot hold
 * up the cancel of the others or the reading of the next signal.
 *
 * Signals belong to the process: fl_orch_signals_init(), the first line of
 * main, blocks SIGINT and SIGTERM in every thread and starts the one thread
 * that takes them. The first one cancels every run under way (those started
 * with handle_signals); when none is and no command watches
 * (fl_orch_signals_watch), it exits 130 at once. A second one always exits
 * at once (130).
 */
#ifndef FL_ORCHESTRATE_H
#define FL_ORCHESTRATE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "pg.h"

typedef enum {
	FL_EV_WAITING,    /* queued */
	FL_EV_CONNECTING, /* opening its connection */
	FL_EV_LOCK_WAIT,  /* waiting for the migration lock */
	FL_EV_PLANNED,    /* total = pending migrations, text = current version */
	FL_EV_APPLYING,   /* text = script, index/total */
	FL_EV_APPLIED,    /* text = script, ms */
	FL_EV_MESSAGE,    /* text = a line worth logging */
	FL_EV_SKIPPED,    /* text = why */
	FL_EV_DONE,       /* success; text = summary */
	FL_EV_FAILED,     /* text = the error */
	FL_EV_CANCELLED,  /* stopped by a cancel */
	/* Kinds after FL_EV_CANCELLED are for the timeline (timeline.h); a consumer that does
	 * not know one ignores it, and report.c shows a LOCK_RETRY or TURN_WAIT as a MESSAGE line. */
	FL_EV_LOCKED,     /* the migration lock is held; ms = how long taking it took */
	FL_EV_LOCK_RETRY, /* a DDL statement's lock_timeout fired; text, index of total retries, ms = backoff
	                   */
	FL_EV_TURN_WAIT,  /* waits for a turn to apply (a server on this machine); text = why */
	FL_EV_TURN,       /* the turn is taken; ms = how long the wait was */
} fl_event_kind;

typedef struct {
	size_t job; /* index of the job (service) */
	fl_event_kind kind;
	int index, total; /* progress, when meaningful */
	long ms;          /* duration, when meaningful */
	char *text;       /* owned by the event; may be NULL */
	double at;        /* seconds since the run started */
	int worker;       /* the pool thread that posted it (0-based); -1: the pool itself (WAITING) */
} fl_event;

typedef struct fl_orch fl_orch;
typedef struct fl_orch_worker fl_orch_worker;

/* A job: runs on a worker thread; returns 0 on success, 1 on failure, 130 when cancelled. */
typedef int (*fl_orch_job_fn)(fl_orch_worker *w, size_t job, void *arg);
/* The consumer: called on the thread that called fl_orch_run, once per event, in order. */
typedef void (*fl_orch_event_fn)(void *ctx, const fl_event *ev);

typedef struct {
	int threads;               /* <= 0: one per job, at most 8 */
	bool fail_fast;            /* the first failure cancels the others */
	bool handle_signals;       /* install the SIGINT/SIGTERM handling described above */
	fl_orch_event_fn on_event; /* may be NULL */
	void *event_ctx;
	/* the order in which jobs start (a permutation of 0..njobs-1); NULL: 0, 1, ...
	 * With fewer threads than jobs, starting the longest first shortens the run. */
	const size_t *order;
} fl_orch_opts;

/*
 * Runs jobs 0..njobs-1 with fn(w, i, arg) and returns when all are done.
 * results[i] receives each job's return value (jobs never started because
 * of a cancel get 130). Returns 130 if the run was interrupted by a signal,
 * else 0.
 */
int fl_orch_run(size_t njobs, fl_orch_job_fn fn, void *arg, const fl_orch_opts *opts, int *results);

/* From a job: posts an event (text is copied; may be NULL). Thread-safe. */
void fl_orch_post(fl_orch_worker *w, fl_event_kind kind, int index, int total, long ms, const char *text);
/* Has the run been cancelled? */
bool fl_orch_cancelled(const fl_orch_worker *w);
/* The flag itself, for code that polls it (apply checks it between statements). */
atomic_int *fl_orch_cancel_flag(fl_orch_worker *w);
/* Registers the connection whose running statement a cancel must interrupt (NULL: none). */
void fl_orch_set_conn(fl_orch_worker *w, PGconn *conn);
/* The same for an fl_pg, which the pool may also sever (fl_pg_sever) when a cancel has not
 * ended its statement within FL_ORCH_CANCEL_BOUND_S (a frozen proxy). NULL before closing it. */
void fl_orch_set_pg(fl_orch_worker *w, fl_pg *pg);

/* Seconds a cancelled statement has to end before its connection is severed. */
#define FL_ORCH_CANCEL_BOUND_S 1.0
/* The job's index. */
size_t fl_orch_job_index(const fl_orch_worker *w);
/* The process's signal handling (see above); idempotent. */
void fl_orch_signals_init(void);
/* A command that handles the first interrupt itself (it polls fl_orch_interrupted
 * between its phases) says so for as long as it does. */
void fl_orch_signals_watch(bool on);
/* Has a SIGINT or SIGTERM arrived? */
bool fl_orch_interrupted(void);

/* Waits on cv (mu held) for at most ms: every wait of the pool polls a flag as well. */
void fl_orch_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, long ms);

/* Cancels the whole run from any thread. */
void fl_orch_cancel(fl_orch *o);
fl_orch *fl_orch_of(fl_orch_worker *w);

#endif
