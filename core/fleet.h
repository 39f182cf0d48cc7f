/*
 * fleet: one command over the selected services of a manifest, one job per
 * service on the orchestrate pool, each with its own connection.
 *
 * It promises: every service's migration files are read and checked (names,
 * versions, UTF-8) before any connection is opened, so bad input touches
 * nothing; each job connects as the environment's migrator to its service's
 * database and runs the engine (apply.h) as the service's owner; a failure
 * in one service never stops or corrupts another (unless fail_fast); the
 * events go to the report; the outcome of every service is kept for the
 * summary, the JSON document and the exit code.
 */
#ifndef FL_FLEET_H
#define FL_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apply.h"
#include "error.h"
#include "history.h"
#include "manifest.h"
#include "migration.h"
#include "report.h"

typedef enum {
	FL_FLEET_MIGRATE,
	FL_FLEET_STATUS,
	FL_FLEET_VALIDATE,
	FL_FLEET_PLAN,
	FL_FLEET_REPAIR,
	FL_FLEET_BASELINE,
	FL_FLEET_UNDO,
} fl_fleet_verb;

/* Reads a service's files instead of its folder on disk (e.g. from a git revision). */
typedef int (*fl_fleet_source_fn)(void *ctx, const fl_service *svc, fl_file **files, size_t *n,
                                  fl_error **err);

typedef struct {
	fl_fleet_verb verb;
	const size_t *selected; /* indexes into m->services */
	size_t nselected;
	int jobs; /* <= 0: the manifest's setting, else one per service (at most 8) */
	bool fail_fast;
	const char *target;           /* migrate: --target; undo: --to */
	const char *baseline_version; /* baseline: --version */
	bool dry_run;
	bool out_of_order;
	fl_report_mode mode;
	bool handle_signals;
	fl_fleet_source_fn source; /* NULL: the folders on disk */
	void *source_ctx;
	const char *git_commit; /* recorded in the ledger and the report; NULL: unknown */
	int git_dirty;          /* -1 unknown */
	/* services not to touch, with the reason shown ("no migration changed since v1.2") */
	const bool *skip;
	const char *skip_reason;
} fl_fleet_opts;

/* One service's outcome. */
typedef struct {
	const fl_service *svc;
	fl_migration_set *set;
	int rc; /* 0 ok, 1 failed, 2 bad input, 3 validation found problems, 130 cancelled, -1 skipped */
	fl_error *error; /* the failure, or for validate the problems */
	fl_apply_result res;
	fl_history *history; /* status, validate, plan */
	fl_plan *plan;
	fl_buf sql; /* dry run: the SQL */
	char **notices;
	size_t nnotices;
} fl_fleet_service;

typedef struct {
	const fl_manifest *m;
	fl_fleet_opts opts;
	fl_fleet_service *services; /* parallel to opts.selected */
	size_t n;
	fl_report *report;
	bool interrupted;
	char run_uuid[37];
	double wall;
	/* the migrator's password, resolved once for all jobs (a `cmd` secret runs
	 * gcloud: once, not once per service) and wiped when the run ends */
	fl_secret *migrator_password;
} fl_fleet;

/*
 * Reads every selected service's files. Returns NULL with every problem
 * chained in *err (FL_EINPUT) when any file is bad: nothing was connected to.
 */
fl_fleet *fl_fleet_new(const fl_manifest *m, const fl_fleet_opts *o, fl_error **err);
void fl_fleet_free(fl_fleet *f);

/* Runs the jobs; events go to a report on `progress` (stderr). Returns the exit code (0/1/2/3/130). */
int fl_fleet_run(fl_fleet *f, FILE *progress);

/* The JSON document of a run (run id, manifest, environment, commit, per service). */
json_t *fl_fleet_json(const fl_fleet *f);

/* The connection parameters of the environment's migrator for a database (password resolved by the caller).
 */
void fl_fleet_pg_params(const fl_environment *env, const fl_login *login, const char *dbname,
                        const char *password, fl_pg_params *p, char portbuf[16], fl_pg_option **opts);

#endif
