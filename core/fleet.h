/*
 * fleet: one fleet command (migrate, status, validate, plan, repair,
 * baseline, undo) from start to end, over the selected services of a
 * manifest.
 *
 * A run goes through phases, and nothing is sent to any server before the
 * third:
 *   1. the manifest (loaded by the caller; its errors are handed in with
 *      fl_fleet_fail) and the selection of services;
 *   2. preflight: git (--since, --rev, the commit and dirtiness recorded),
 *      every selected service's files read, decoded, split and expanded
 *      (fl_apply_check), and every secret the run needs resolved, in
 *      parallel, each under its time limit. Any problem: the run is
 *      `invalid` (exit 2), every problem listed, the cluster untouched;
 *   3. migrate only: the provisioning of what the selected services need
 *      (fl_provision_desired_for): the shared catalogs (roles, memberships,
 *      databases); the part in each database is left to its service's job;
 *   4. the services' jobs in parallel, one connection each: migrate first
 *      checks its database's privileges on that connection and, only when
 *      something is to do, provisions it on the admin's (provision.h
 *      defer_databases), so a database that cannot be provisioned fails its
 *      own service alone.
 * Phases 2 to 4 run on the one orchestrate pool; an interrupt in any phase
 * cancels what runs, and the run ends `interrupted` (130).
 *
 * Every selected service ends with one outcome (outcome.h), the run with
 * one run outcome derived from them; the exit code, the summary and the
 * JSON document (fl_fleet_json, README "JSON report") are all read from
 * those, so they cannot disagree. A run that stops early (bad manifest,
 * bad input, interrupt) still has every service and an outcome, so a
 * document can always be printed.
 */
#ifndef FL_FLEET_H
#define FL_FLEET_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "apply.h"
#include "error.h"
#include "gitdiff.h"
#include "history.h"
#include "manifest.h"
#include "migration.h"
#include "outcome.h"
#include "provision.h"
#include "report.h"
#include "secret.h"
#include "timeline.h"

typedef enum {
	FL_FLEET_MIGRATE,
	FL_FLEET_STATUS,
	FL_FLEET_VALIDATE,
	FL_FLEET_PLAN,
	FL_FLEET_REPAIR,
	FL_FLEET_BASELINE,
	FL_FLEET_UNDO,
} fl_fleet_verb;

/* "migrate", "status", ... */
const char *fl_fleet_verb_name(fl_fleet_verb v);

/* Reads a service's files instead of its folder on disk (tests; --rev is built in). */
typedef int (*fl_fleet_source_fn)(void *ctx, const fl_service *svc, fl_file **files, size_t *n,
                                  fl_error **err);

typedef struct {
	fl_fleet_verb verb;
	char *const *names; /* the services asked for; none: every service */
	size_t nnames;
	const char *since; /* migrate: only services whose migration folders changed since this revision */
	const char *rev;   /* read the migration files from this revision's tree */
	bool provision;    /* migrate: provision the selected services first */
	int jobs;          /* <= 0: the manifest's setting, else one per service (at most 8) */
	int connections;   /* --connections: the budget (budget.h); <= 0: [settings], else the server's */
	bool fail_fast;
	const char *target;           /* migrate: --target; undo: --to */
	const char *baseline_version; /* baseline: --version */
	bool from_alembic;            /* baseline: --from-alembic (the version alembic_version maps to) */
	bool dry_run;
	bool out_of_order;
	fl_report_mode mode;
	bool handle_signals;
	fl_fleet_source_fn source; /* NULL: the folders on disk (or the --rev tree) */
	void *source_ctx;
	/* --shard I/N (shard.h): this task runs the services fl_shard_assign gives shard_index;
	 * the others are skipped ("run by shard K/N"). shard_count 0: not sharded. Provisioning:
	 * shard 0 makes the roles of the whole selection and its own databases; the other shards
	 * wait (at most shard_wait_s, <= 0: FL_FLEET_SHARD_WAIT_S) for the roles they need, then
	 * provision their own databases. */
	int shard_index, shard_count;
	int shard_wait_s;
	/* migrate --html FILE / --svg FILE: the run's picture (timeline.h), written at the end of
	 * every run, failed, refused or interrupted too; a file that cannot be written is a warning */
	const char *html, *svg;
	/* --json: the run's document (fl_fleet_json) is wanted, its git_commit with it */
	bool json;
} fl_fleet_opts;

/* How long a shard other than 0 waits for shard 0's roles (seconds). */
#define FL_FLEET_SHARD_WAIT_S 120

/* One service's part of a run. */
typedef struct {
	const fl_service *svc;
	fl_outcome outcome;
	char *reason; /* why, in a few words: skipped, refused, failed, pending ("database ... will be
	                 created") */
	fl_error
	    *error; /* what went wrong (failed, refused, invalid, cancelled); for validate every problem */
	fl_migration_set *set;
	fl_apply_result res;
	fl_history *history; /* status, validate, plan */
	fl_plan *plan;
	bool db_missing; /* status, plan, validate: its database does not exist yet */
	size_t to_apply; /* what migrate would apply: with db_missing every migration; a dry run's plan */
	fl_buf sql;      /* dry run: the SQL */
	char **notices;
	size_t nnotices;
	int shard;        /* --shard: the shard that runs it (fl_shard_assign); 0 when not sharded */
	size_t text_size; /* --shard: the bytes of its migration files, what shards balance */
	/* --shard: the files read to size it, kept so that preflight reads a service of this shard once */
	fl_file *read_ahead;
	size_t nread_ahead;
	bool has_read_ahead;
	/* migrate: the provisioning of its database, done in its job (provision.h defer_databases) */
	size_t prov_steps;
	fl_error *prov_warnings;
	bool prov_failed;
} fl_fleet_service;

typedef struct fl_fleet_secret fl_fleet_secret;

typedef struct {
	const fl_manifest *m; /* NULL when the manifest did not load */
	fl_fleet_opts opts;
	fl_fleet_service *services;
	size_t n;
	fl_report *report; /* phase 4's live view and summary; NULL when the run stopped before */
	fl_error *errors;  /* the run's own problems (manifest, selection, git, secrets, provisioning) */
	fl_error *warnings;
	bool touched;     /* something was sent to a server */
	bool interrupted; /* SIGINT/SIGTERM */
	bool failed;      /* a run-level failure (the shared part of provisioning) */
	fl_run_outcome outcome;
	int exit_code;
	char run_uuid[37];
	double wall;
	size_t provision_steps;
	/* git: the commit the run applies and whether the work tree differed */
	fl_git *git;
	char rev_id[FL_GIT_ID_LEN];
	char head_id[FL_GIT_ID_LEN];
	const char *git_commit; /* rev_id, head_id or NULL */
	int git_dirty;          /* -1 unknown */
	/* git_looked: the fields above are final. A migrate whose document nobody asked for looks
	 * them up when a job first writes a run row (fleet.c git_info), under git_mu */
	pthread_mutex_t git_mu;
	bool git_looked;
	/* secrets of the run, resolved in preflight, wiped when the run ends */
	fl_fleet_secret *secrets;
	size_t nsecrets;
	const fl_secret *migrator_password;
	/* migrate: what provisioning makes (built in preflight: its roles say which secrets to resolve) */
	fl_provision_desired *desired;
	/* migrate: the part of provisioning in each database, left to the services' jobs (the first
	 * connection of a job checks its database; the admin's is opened only when there is work) */
	fl_provision_dbs *dbs;
	fl_provision_admin *admin; /* what dbs connects with; wiped when the run ends */
	int budget;                /* connections the run may hold at once (budget.h); 0: unknown, no cap */
	/* --html/--svg: the spans of the run (NULL when neither was asked for); t0 is the run's start
	 * (CLOCK_MONOTONIC seconds), the zero of its clock */
	fl_timeline *timeline;
	double t0;
	/* migrate with the default -j: a server on this very machine shares its cores with flotilla
	 * and every other client here, so at most `limit` services apply migrations at once
	 * (fleet.c work_gate); connecting and reading what to do are never held back */
	struct fl_fleet_gate {
		pthread_mutex_t mu;
		pthread_cond_t cv;
		int limit;     /* limit 0: no gate */
		size_t *rank;  /* per service: its place in the start order (longest first) */
		bool *waiting; /* per place in that order: a service waits for a turn */
		/* per service: it holds a turn, it waits (a lock), the time (now_s) of its last progress */
		bool *held, *idle;
		double *since;
	} gate;
} fl_fleet;

/* A run of m (NULL: the manifest did not load; say why with fl_fleet_fail). */
fl_fleet *fl_fleet_new(const fl_manifest *m, const fl_fleet_opts *o);
void fl_fleet_free(fl_fleet *f);
/* Records a problem found before the run (the manifest's errors): the run is invalid. Takes err. */
void fl_fleet_fail(fl_fleet *f, fl_error *err);

/*
 * Runs the phases (see above); progress (provisioning steps, the live view
 * or the plain lines) goes to `progress`. Returns the exit code, which is
 * also f->exit_code; f->outcome and every service's outcome are set. Call
 * once.
 */
int fl_fleet_run(fl_fleet *f, FILE *progress);

/*
 * Phase 2's reading of the files alone, for commands that are not fleet
 * runs yet (drift): every selected service's set, or a copy of every
 * problem (FL_EINPUT) when a file is bad.
 */
fl_error *fl_fleet_load_files(fl_fleet *f);

/* The JSON document of the run (README "JSON report"): on every exit, even before phase 2. */
json_t *fl_fleet_json(const fl_fleet *f);

#endif
