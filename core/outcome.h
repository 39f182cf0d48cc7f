/*
 * outcome: what became of a service in a fleet command, and of the whole run,
 * and the one mapping from a run's outcome to the exit code.
 *
 * The exit code, the summary line of every service and the JSON `result`
 * are all derived from these values and nowhere else, so they cannot
 * disagree. An outcome is not an error kind (error.h says what went wrong;
 * an outcome says what the run did about it): a checksum mismatch is an
 * FL_EDRIFT error that leaves its service `refused`; a cancelled run leaves
 * the services that were stopped `cancelled`.
 */
#ifndef FL_OUTCOME_H
#define FL_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef enum {
	FL_OUTCOME_OK,         /* did what was asked (migrations applied, history changed, checked clean) */
	FL_OUTCOME_UP_TO_DATE, /* nothing to do */
	FL_OUTCOME_PENDING,    /* status / plan: migrations (or the database itself) still to come */
	FL_OUTCOME_SKIPPED,    /* not worked on, by request (--since) */
	FL_OUTCOME_REFUSED,    /* problems found, nothing changed: an edited applied file, validate */
	FL_OUTCOME_INVALID,    /* its input is bad (files, secrets): nothing was sent to any server */
	FL_OUTCOME_FAILED,     /* a connection, provisioning or a migration failed */
	FL_OUTCOME_CANCELLED,  /* stopped by an interrupt or --fail-fast; running work rolled back */
	FL_OUTCOME_NOT_RUN,    /* never started: the run stopped before it (bad input elsewhere) */
} fl_outcome;

typedef enum {
	FL_RUN_OK,          /* exit 0 */
	FL_RUN_REFUSED,     /* exit 3 */
	FL_RUN_FAILED,      /* exit 1 */
	FL_RUN_INVALID,     /* exit 2: nothing was sent to any server */
	FL_RUN_INTERRUPTED, /* exit 130 */
} fl_run_outcome;

/* The JSON word: "ok", "up_to_date", "pending", "skipped", "refused", "invalid", "failed",
 * "cancelled", "not_run". */
const char *fl_outcome_name(fl_outcome o);
/* The summary's words: "ok", "up to date", "pending", "skipped", "REFUSED", "INVALID", "FAILED",
 * "cancelled", "not run". */
const char *fl_outcome_words(fl_outcome o);
/* Is it a failure of the run (refused, invalid, failed, cancelled)? */
bool fl_outcome_is_problem(fl_outcome o);

/*
 * The run's outcome from its services' and from what happened to the run
 * itself: input_error (a problem found before anything was sent, e.g. the
 * manifest or a secret), failed (a run-level failure such as the
 * provisioning of the shared catalogs), interrupted (SIGINT/SIGTERM).
 * Precedence: interrupted, invalid, failed (a cancelled service counts: it
 * was stopped because another failed), refused, ok.
 */
fl_run_outcome fl_run_outcome_of(const fl_outcome *services, size_t n, bool input_error, bool failed,
                                 bool interrupted);
/* "ok", "refused", "failed", "invalid", "interrupted". */
const char *fl_run_outcome_name(fl_run_outcome r);
/* 0, 3, 1, 2, 130: design.md's exit codes. */
int fl_run_exit_code(fl_run_outcome r);

/* The outcome a service gets for an error of this kind met while it ran. */
fl_outcome fl_outcome_of_error(const fl_error *err);

#endif
