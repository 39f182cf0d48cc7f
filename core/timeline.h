/*
 * timeline: a picture of one fleet run (migrate --html FILE, --svg FILE).
 *
 * It records, from the pool's event stream (orchestrate.h), what each
 * service spent its time on: waiting for a worker, connecting (and each
 * connect retry), waiting for the migration lock, each migration, the DDL
 * lock retries inside them; plus the run's phases (preflight,
 * provisioning, jobs) that the fleet stamps. fl_timeline_event is an
 * fl_orch_event_fn: it runs on the pool's consumer thread, beside the
 * report, so nothing here is locked.
 *
 * What a service came to (ok, up to date, failed with which error) is not
 * guessed from the events: the fleet hands in its own outcomes
 * (fl_timeline_set_outcome), the ones the exit code, the summary and the
 * JSON document are read from, so the picture cannot disagree with them.
 *
 * The critical path is the chain of work that set the run's wall time:
 * from the service that ended last back through the service whose end
 * freed the worker it started on (with fewer workers than services a
 * service waits for one), and so on to the first job of that worker; then
 * the provisioning and preflight phases before the jobs.
 *
 * The renderers write one standalone SVG, and one HTML page with that SVG
 * inline and a table; neither refers to anything outside itself (the page
 * carries a Content-Security-Policy that forbids it), and every text is
 * escaped. Above FL_TIMELINE_DETAIL_MAX migration spans in a run, each
 * service's migrations are drawn as one span with their count (the page
 * says so), so that a fleet of a thousand tenants still gives a page of
 * reasonable size.
 */
#ifndef FL_TIMELINE_H
#define FL_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "orchestrate.h"
#include "outcome.h"

typedef enum {
	FL_TL_QUEUED,        /* waiting for a worker */
	FL_TL_CONNECT,       /* opening the connection, reading the history, taking the lock */
	FL_TL_CONNECT_RETRY, /* a failed connect attempt and the wait before the next (overlay) */
	FL_TL_LOCK_WAIT,     /* waiting for the migration lock another session holds */
	FL_TL_PREPARE,       /* planning, between migrations, finishing */
	FL_TL_MIGRATION,     /* one migration; name = script, ms = apply's own time */
	FL_TL_MIGRATIONS,    /* several migrations drawn as one (count), see FL_TIMELINE_DETAIL_MAX */
	FL_TL_LOCK_RETRY,    /* a DDL lock_timeout and the backoff before the retry (overlay) */
	FL_TL_TURN_WAIT,     /* waiting for a turn to apply (a server on this machine, fleet.c) */
} fl_timeline_kind;

/* The span kind's word, for classes and the legend: "queued", "connect", ... */
const char *fl_timeline_kind_name(fl_timeline_kind k);

typedef struct {
	fl_timeline_kind kind;
	double start, end; /* seconds since the run started */
	char *name;        /* migration: the script without .sql; retries: what the event said */
	long ms;           /* migration: apply's time; lock retry: the backoff */
	bool failed;       /* the migration the service failed in */
} fl_timeline_span;

typedef struct {
	char *name;
	int worker;                /* the pool thread that ran it; -1: never started */
	double queued, start, end; /* seconds since the run started; start/end < 0: not */
	fl_timeline_span *spans;   /* in time order, one after another */
	size_t nspans;
	fl_timeline_span *overlays; /* connect and lock retries, drawn over the spans */
	size_t noverlays;
	size_t migrations; /* migrations applied (APPLIED events) */
	double lock_wait;  /* seconds waited for the migration lock */
	double turn_wait;  /* seconds waited for a turn to apply (FL_TL_TURN_WAIT) */
	int connect_retries, lock_retries;
	/* from the fleet (fl_timeline_set_outcome) */
	fl_outcome outcome;
	char *reason;
	char *error; /* the error as the run prints it (file:line:col: ...); NULL: none */
} fl_timeline_service;

typedef struct {
	const char *name;  /* "preflight", "provisioning", "jobs" */
	double start, end; /* < 0: the phase did not run */
} fl_timeline_phase;

enum { FL_TL_PREFLIGHT, FL_TL_PROVISIONING, FL_TL_JOBS, FL_TL_NPHASES };

/* Above this many migration spans in a run, a service's migrations are drawn as one span. */
#define FL_TIMELINE_DETAIL_MAX 2000

typedef struct {
	fl_timeline_service *services;
	size_t n;
	fl_timeline_phase phases[FL_TL_NPHASES];
	double offset; /* added to every event's `at`: when the pool's clock started on the run's */
	/* the run, from the fleet */
	char *title; /* "migrate pcc / devtest" */
	fl_run_outcome outcome;
	int exit_code;
	double wall;
} fl_timeline;

fl_timeline *fl_timeline_new(const char *const *names, size_t n);
void fl_timeline_free(fl_timeline *t);

/* A phase began or ended, in seconds since the run started. */
void fl_timeline_phase_start(fl_timeline *t, int phase, double at);
void fl_timeline_phase_end(fl_timeline *t, int phase, double at);
/* The pool's clock (fl_event.at) starts `offset` seconds after the run's. */
void fl_timeline_set_offset(fl_timeline *t, double offset);
/* The fl_orch_event_fn (ctx: the timeline). Kinds it does not know are ignored. */
void fl_timeline_event(void *ctx, const fl_event *ev);

/* What the fleet decided: a service's outcome, reason and error text (copied). */
void fl_timeline_set_outcome(fl_timeline *t, size_t i, fl_outcome o, const char *reason, const char *error);
/* The run's title ("migrate pcc / devtest"), outcome, exit code and wall time. */
void fl_timeline_set_run(fl_timeline *t, const char *title, fl_run_outcome o, int exit_code, double wall);

/*
 * The critical path: indices of services in time order (new array, *n
 * of them; NULL and 0 when no service started). Ties go to the lower index.
 */
size_t *fl_timeline_critical(const fl_timeline *t, size_t *n);
/* The service that took longest from its start to its end; -1: none started. */
long fl_timeline_slowest(const fl_timeline *t);
/* "critical path: preflight 0.02 s, provisioning 0.30 s, metric_tracker 4.40 s" (new string). */
char *fl_timeline_critical_text(const fl_timeline *t);

/* The renderers (new strings). */
char *fl_timeline_svg(const fl_timeline *t);
char *fl_timeline_html(const fl_timeline *t);

/*
 * Writes the page and/or the picture (NULL: not wanted), each whole or not
 * at all (a temporary file beside it, renamed over). 0, or -1 with *err
 * naming every file that could not be written and why.
 */
int fl_timeline_write(const fl_timeline *t, const char *html_path, const char *svg_path, fl_error **err);

#endif
