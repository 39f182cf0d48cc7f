/*
 * report: events from the jobs -> what a person or a dashboard reads.
 *
 * Three forms: a live view when stderr is a terminal (one line per
 * service, redrawn in place, colours unless NO_COLOR is set); plain
 * timestamped lines otherwise (CI logs: never redrawn, no escape
 * sequences); and at the end a summary table. The JSON document is the
 * fleet's (fleet.h), read from the same outcomes. The report is only touched from the
 * thread that runs fl_orch_run (its consumer), so it needs no locking.
 */
#ifndef FL_REPORT_H
#define FL_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "orchestrate.h"
#include "outcome.h"

typedef enum {
	FL_REPORT_LIVE,  /* terminal: redraw in place */
	FL_REPORT_PLAIN, /* one timestamped line per event */
	FL_REPORT_QUIET, /* nothing while running */
} fl_report_mode;

typedef struct {
	char *version; /* NULL for repeatables */
	char *script;
	char *description;
	int32_t checksum;
	long ms;
} fl_report_migration;

/* What a job leaves for the summary; filled by the job's owner after the run. */
typedef struct {
	char *name;
	/* live state, from events */
	fl_event_kind state;
	char *state_text;
	int index, total;
	double started, finished; /* seconds since the run started; < 0 when not */
	/* the outcome, as the fleet decided it (outcome.h) */
	fl_outcome outcome;
	char *reason;         /* why: skipped, refused, failed */
	char *version_before; /* NULL: empty history */
	char *version_after;
	fl_report_migration *migrations;
	size_t nmigrations;
	fl_error *error; /* owned */
	char sqlstate[6];
} fl_report_service;

typedef struct {
	fl_report_mode mode;
	FILE *out; /* the live view and the plain lines: stderr */
	bool color;
	const char *verb; /* "migrate", "status", ... for the summary heading */
	fl_report_service *services;
	size_t nservices;
	int drawn_lines; /* live view: lines on screen to redraw */
	double last_draw;
	double now;  /* the latest event's time: the live view's clock for elapsed times */
	double wall; /* seconds, set by the caller at the end */
} fl_report;

/* mode FL_REPORT_LIVE is downgraded to PLAIN when `out` is not a terminal. */
fl_report *fl_report_new(FILE *out, fl_report_mode mode, const char *verb, const char *const *names,
                         size_t n);
void fl_report_free(fl_report *r);
/* The fl_orch_event_fn: updates state and draws. */
void fl_report_event(void *ctx, const fl_event *ev);
/* Final redraw of the live view (so it shows the end state). */
void fl_report_finish(fl_report *r);
/* Adds a migration to a service's outcome. */
void fl_report_add_migration(fl_report_service *s, const char *version, const char *script,
                             const char *description, int32_t checksum, long ms);
/* The width to cut lines to when f is a terminal (a wrapped line breaks the live
 * view's redraw); 0 when it is not (a log keeps every line whole). */
size_t fl_report_width(FILE *f);
/* The summary table: service, version before -> after, applied, time, outcome and why; wall time;
 * slowest. */
void fl_report_summary(const fl_report *r, FILE *f);

#endif
