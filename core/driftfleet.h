/*
 * driftfleet: one drift run over the selected services of a manifest, from
 * the files to the run's outcome; cmd/drift.c only parses options and
 * renders what this returns (text, JSON, HTML).
 *
 * The run, in the fleet layer's phases (fleet.h):
 *   1. the manifest (the caller's) and the selection;
 *   2. every selected service's files read and checked (fl_fleet_load_files):
 *      a bad file ends the run `invalid` (exit 2) before any connection;
 *   3. on the server that gets the shadows (the cluster, or --shadow's),
 *      the shadows left by crashed runs are dropped
 *      (fl_drift_shadow_cleanup), then the grant check, one provision dry
 *      run for the cluster;
 *   4. history and schema per service on the orchestrate pool; after it, on
 *      this thread (a repository handle is one thread's), git names the
 *      commit behind each changed applied file.
 * Interrupts are watched in every phase (fl_orch_signals_watch): the first
 * SIGINT/SIGTERM cancels what runs, the shadows are dropped, the run ends
 * `interrupted`.
 *
 * Each service ends with one outcome (outcome.h): ok (clean), refused
 * (drift found), skipped (a migration holds its lock), failed (could not
 * check), cancelled; the run's outcome and exit code come from those with
 * fl_run_outcome_of (0 clean, 3 drift, 1 could not check, 2 bad input,
 * 130 interrupted). Nothing here prints.
 */
#ifndef FL_DRIFTFLEET_H
#define FL_DRIFTFLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "drift.h"
#include "fleet.h"
#include "manifest.h"
#include "orchestrate.h"
#include "outcome.h"
#include "pg.h"

typedef struct {
	char *const *names; /* the services asked for; none: every service */
	size_t nnames;
	unsigned checks; /* FL_DRIFT_* mask; 0: all */
	int jobs;        /* <= 0: the manifest's setting */
	bool keep_shadow;
	/* --shadow: the server the shadows go to (admin: its maintenance database;
	 * login: the same, its dbname replaced by the shadow's); NULL: the cluster */
	const fl_pg_params *shadow_admin, *shadow_login;
	/* turn off what the manifest's [drift] turns on (--no-column-order, --no-comments) */
	bool no_column_order, no_comments;
	int cleanup_wait_ms;       /* bound on waiting for leftover shadows still in use; 0: 10 s */
	fl_orch_event_fn on_event; /* the live view (may be NULL) */
	void *event_ctx;
} fl_drift_fleet_opts;

typedef struct {
	const fl_service *svc;
	fl_drift_service_result res; /* findings: history and schema, then the service's grants */
	fl_outcome outcome;
	fl_error *error; /* failed or cancelled: why */
	double seconds;
} fl_drift_fleet_service;

typedef struct {
	const fl_manifest *m;
	unsigned checks;
	fl_drift_fleet_service *services; /* in manifest order */
	size_t n;
	fl_drift_findings cluster; /* grant findings that belong to no service */
	fl_error *cluster_err;     /* why the cluster part could not be checked */
	fl_error *input_err;       /* bad files (the run is invalid, nothing was sent) */
	fl_error *warnings;
	char **leftovers; /* shadows of earlier runs this run dropped */
	size_t nleftovers;
	size_t findings, counts[3], security, errors, drifting, skipped; /* counts: history, schema, grants */
	bool interrupted;
	fl_run_outcome outcome;
	int exit_code;
	double wall;
	fl_fleet *files; /* the services' migration sets */
} fl_drift_fleet;

/* Runs the phases above; returns the exit code (also (*out)->exit_code). *out is always set. */
int fl_drift_fleet_run(const fl_manifest *m, const fl_drift_fleet_opts *o, fl_drift_fleet **out);
void fl_drift_fleet_free(fl_drift_fleet *d);

/* "clean", "drift", "skipped", "error", "interrupted": the JSON's word for a service. */
const char *fl_drift_fleet_result_word(const fl_drift_fleet_service *s);

#endif
