/*
 * apply: runs one service's migrations on one connection, and the other
 * commands that change its history (baseline, repair, undo).
 *
 * What it promises:
 * - Flyway's advisory lock (same key, session-level) is held for the whole
 *   command, polled with pg_try_advisory_lock for up to
 *   migration_lock_timeout (its own bound: another pipeline migrating is
 *   normal and may take minutes), and always released; when it cannot be
 *   had, the error names the session holding it (pid, application_name,
 *   user, since when). Flyway and flotilla therefore never run on one
 *   database at the same time.
 * - Every wait for a table lock is short: lock_timeout bounds each attempt
 *   (so a blocked ALTER queues other sessions' queries behind it for at
 *   most that long), and a statement that timed out (55P03) is rolled back
 *   and tried again after a backoff (lock_retry_interval, doubled each
 *   time, at most 30 s, with jitter), lock_retries times, each retry an
 *   FL_APPLY_EV_LOCK_RETRY event naming the table and who holds it. Only
 *   the last failure fails the migration, saying how many attempts were
 *   made and who held the lock.
 *   One exception, which writes nothing: migrate first reads everything it
 *   needs (session, history, ledger progress, control schema version) in
 *   one round trip without the lock; when nothing is pending, validation
 *   passes and the control schema is current it stops there (no lock, no
 *   run row). Otherwise it takes the lock and reads again under it (the
 *   lock's first try rides in the same round trip as that read); the end
 *   of a command (run row finished, unlock) is one round trip too.
 * - Nothing runs unless the whole plan is valid (validate as Flyway's
 *   validateOnMigrate) and every file to run expands (placeholders) and
 *   splits: a bad file stops the command before the first statement.
 * - Each versioned migration commits in one transaction together with its
 *   history row and its ledger row, under search_path (the schema),
 *   lock_timeout, statement_timeout and, when asked, ROLE. It costs
 *   one round trip: BEGIN, the SETs, every statement, the history INSERT,
 *   the ledger INSERT, COMMIT and the RESETs go out in one libpq pipeline
 *   and the results are read once (a failure adds one ROLLBACK). Role,
 *   search_path and the timeouts are set for the session (and reset after
 *   the migration), not SET LOCAL: a file that says COMMIT or BEGIN itself
 *   (as Flyway folders do) still creates everything after it as the role,
 *   in the schema.
 * - A server error rolls back that migration (database and history are as
 *   before it), stops the service, and comes back as an fl_error at the
 *   migration's file:line:col ("ERROR 42P01: relation "user" does not exist"
 *   + DETAIL/HINT lines); the full diagnostics are in the result's diag.
 * - A file that must run outside a transaction (-- flotilla:no-transaction,
 *   or a statement PostgreSQL refuses in one, such as CREATE INDEX
 *   CONCURRENTLY, as Flyway decides it) runs statement by statement, and
 *   every statement runs at most once or is verified done:
 *   - a statement PostgreSQL accepts in a transaction runs in its own, and
 *     that transaction also records in the ledger that it is done (one
 *     round trip): it happened with its record or not at all;
 *   - one it refuses (CREATE/DROP INDEX CONCURRENTLY, VACUUM, REINDEX
 *     CONCURRENTLY ...) is marked in flight in the ledger before it starts
 *     and done after. Before a CREATE INDEX CONCURRENTLY runs, an INVALID
 *     index of its name (left by an interrupted build) is dropped with
 *     DROP INDEX CONCURRENTLY, saying so (an FL_APPLY_EV_NOTICE), and after
 *     it, and after the whole file, every index the file builds must be
 *     valid, or the migration fails instead of being recorded;
 *   - the next run continues at the first statement not known to be done,
 *     whether the earlier one failed (a failed history row, as Flyway
 *     leaves) or was killed (no row), when the statements before it are
 *     unchanged; status says "failed at statement 3 of 5". A statement
 *     that was in flight is checked first: an index built concurrently
 *     that exists and is valid is done (INVALID: dropped and built again),
 *     one dropped concurrently that is gone is done, VACUUM/ANALYZE/REINDEX
 *     run again; anything else stops the command before it changes
 *     anything, saying how to mark the statement done or to run it again.
 *   A lost connection or kill -9 during a refused statement can still leave
 *   its effect without its record: that is what the check is for.
 * - Repeatables run after the versioned migrations, when new or changed.
 * - Flyway's SQL callbacks of the set (migration.h) run in the role and
 *   schema of the migrations, each file in its own transaction (statement
 *   by statement, outside one, when a statement refuses one, as VACUUM
 *   does): beforeMigrate once the plan is valid, beforeEachMigrate and
 *   afterEachMigrate (or afterEachMigrateError) around every migration,
 *   afterVersioned after the versioned ones, beforeRepeatables before the
 *   first repeatable, afterMigrate (and afterMigrateApplied when something
 *   ran) at the end,
 *   afterMigrateError after a failure; beforeMigrate and afterMigrate run
 *   even when nothing is pending, as Flyway's do. Each is an
 *   FL_APPLY_EV_NOTICE and an entry of res->callbacks.
 * - Once a command is known to be valid, before it changes anything,
 *   flotilla's control schema ("flotilla": ledger tables run and
 *   execution, and its own flyway_schema_history) is brought up to date by
 *   this same engine; every command that changes something records a run
 *   row and one execution row per migration (content SHA-256, duration,
 *   outcome). A command refused (bad file, validation, lock, cancel) leaves
 *   the database untouched, ledger included.
 * - dry_run: reads history, plans and writes the exact SQL that would run,
 *   placeholders replaced, into sql_out; nothing is locked or changed.
 * - cancel is checked between migrations and statements; a statement
 *   interrupted by PQcancel (see orchestrate) is rolled back; both give an
 *   FL_EINTR error.
 *
 * Threads: one call works on one fl_pg and touches nothing global, so one
 * thread per service may call it concurrently; on_event is called on the
 * calling thread.
 */
#ifndef FL_APPLY_H
#define FL_APPLY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "history.h"
#include "migration.h"
#include "pg.h"

/* The defaults of the manifest's [settings] of the same names (see README, "Settings"). */
#define FL_APPLY_DEFAULT_LOCK_TIMEOUT_MS           2000
#define FL_APPLY_DEFAULT_LOCK_RETRIES              10
#define FL_APPLY_DEFAULT_LOCK_RETRY_INTERVAL_MS    1000
#define FL_APPLY_MAX_LOCK_RETRY_INTERVAL_MS        30000
#define FL_APPLY_DEFAULT_MIGRATION_LOCK_TIMEOUT_MS (10 * 60 * 1000)

typedef enum {
	FL_APPLY_EV_LOCK_WAIT,  /* text: who holds the lock; sent once, when the first try fails */
	FL_APPLY_EV_LOCKED,     /* ms: how long it waited */
	FL_APPLY_EV_PLAN,       /* total: migrations to run; current_version (NULL: empty history) */
	FL_APPLY_EV_APPLYING,   /* script, version, description, index (1-based) of total; resume_at > 1 when
	                           continuing */
	FL_APPLY_EV_STATEMENT,  /* no-transaction files: index = statement about to run, total = statements */
	FL_APPLY_EV_APPLIED,    /* script, version, description, checksum, ms, index of total */
	FL_APPLY_EV_NOTICE,     /* text: a notice the server sent while a migration ran, or flotilla's own
	                           ("dropping the INVALID index ... and building it again") */
	FL_APPLY_EV_LOCK_RETRY, /* text: "lock wait on table "users" (held by pid ...), retry 2 of 5 in 1.2
	                           s"; index = retry, total = lock_retries, ms = the backoff before it */
	FL_APPLY_EV_FAILED,     /* script (NULL when not in a migration), error */
	FL_APPLY_EV_DONE,       /* applied, version_before, version_after */
} fl_apply_event_kind;

typedef struct {
	fl_apply_event_kind kind;
	const char *service;
	const char *script;
	const char *version; /* NULL for repeatables */
	const char *description;
	int32_t checksum;
	long ms;
	int index, total;
	int resume_at;
	bool undo; /* the migration is an undo (U file) */
	const char *current_version;
	int applied;
	const char *version_before, *version_after;
	const char *text;
	const fl_error *error;
} fl_apply_event;

typedef void (*fl_apply_event_fn)(void *ctx, const fl_apply_event *ev);

typedef struct {
	const char *service;      /* for messages and the ledger; may be NULL */
	const char *env;          /* for messages: suggested commands say -e ENV; may be NULL */
	const char *display_dir;  /* the migrations folder as people see it (names missing files) */
	const char *schema;       /* NULL: "public" */
	const char *table;        /* NULL: "flyway_schema_history" */
	const char *installed_by; /* NULL: the connection's current_user */
	const char *role; /* NULL: no SET ROLE; else migrations run as this role (it owns what they create) */
	/* the manifest's placeholders; flyway:defaultSchema, :user, :database, :table, :filename are added */
	const fl_placeholder *placeholders;
	size_t nplaceholders;
	/* lock_timeout of each attempt of a statement; <= 0: FL_APPLY_DEFAULT_LOCK_TIMEOUT_MS (never none) */
	int lock_timeout_ms;
	int lock_retries; /* attempts after the first on 55P03; 0: FL_APPLY_DEFAULT_LOCK_RETRIES; < 0: none */
	int lock_retry_interval_ms; /* the first backoff, doubled each retry; <= 0: the default */
	/* the wait for the migration advisory lock; <= 0: FL_APPLY_DEFAULT_MIGRATION_LOCK_TIMEOUT_MS */
	int migration_lock_timeout_ms;
	int statement_timeout_ms; /* statement_timeout while migrations run; <= 0: none */
	const char
	    *target; /* migrate: highest version to apply ("current", "latest"); undo: version to keep */
	bool out_of_order; /* apply files below the current version */
	/*
	 * Flyway's rule for a schema that holds objects but no history table:
	 * migrate refuses (FL_EDB, nothing run), unless baseline_on_migrate,
	 * which first records a BASELINE row at baseline_version (NULL: "1"),
	 * so only the files above it run. An empty schema needs neither.
	 */
	bool baseline_on_migrate;
	const char *baseline_version;
	/* Flyway's further `schemas`: checked for objects with the schema, and created when missing (as
	 * role) by a command that changes something */
	const char *const *more_schemas;
	size_t nmore_schemas;
	bool dry_run;               /* plan and print, change nothing */
	fl_buf *sql_out;            /* dry_run: where the SQL goes (required then) */
	atomic_int *cancel;         /* may be NULL; non-zero: stop */
	fl_apply_event_fn on_event; /* may be NULL */
	void *event_ctx;
	/* flotilla's ledger */
	bool no_ledger;         /* do not create or write the control schema */
	const char *command;    /* recorded in flotilla.run: "migrate", "undo", ... (NULL: the call's verb) */
	const char *run_uuid;   /* one id for every service of a run; NULL: a new one per call */
	const char *git_commit; /* NULL: unknown */
	int git_dirty;          /* -1 unknown, 0 clean, 1 dirty */
	/* when set, asked for the two above the first time a run row is written, instead of
	 * them: a run with nothing to do never looks (fleet.c git_info) */
	void (*git_info)(void *git_ctx, const char **commit, int *dirty);
	void *git_ctx;
	int lock_poll_ms; /* how often to retry the lock; <= 0: 100 */
	/* files imported from Alembic also set alembic_version, in their own transaction (alembic.h) */
	bool keep_alembic_version;
	/*
	 * migrate: called once there is work (not for a run with nothing to do),
	 * before the migration lock is taken, with whether the server runs on
	 * the machine it was reached from. It may wait for a turn (the fleet
	 * keeps a server that shares this machine's cores from being
	 * oversubscribed): 1, a turn was taken and work_done(gate_ctx) gives it
	 * back when the run ends; 0, no turn needed; -1, cancelled while waiting.
	 * NULL: no gate.
	 */
	int (*work_gate)(void *gate_ctx, bool server_local);
	void (*work_done)(void *gate_ctx);
	void *gate_ctx;
} fl_apply_opts;

/* One migration that ran. */
typedef struct {
	fl_mig_kind kind;
	char *script;
	char *version; /* NULL for repeatables */
	char *description;
	int32_t checksum;
	long ms;
	bool no_transaction;
} fl_apply_item;

typedef struct {
	int applied; /* migrations that ran (undo: undone) */
	fl_apply_item *items;
	size_t nitems;
	char *version_before; /* NULL: nothing applied */
	char *version_after;
	fl_pg_diag diag;  /* the server's diagnostics of a failed statement (sqlstate "" otherwise) */
	long long run_id; /* flotilla.run id; 0 when none was written */
	char **changes;   /* repair and baseline: what changed, one line each */
	size_t nchanges;
	/* migrate: the SQL callbacks that ran, in order (event "afterMigrate", script, ms, ok) */
	struct fl_apply_callback {
		char *event, *script;
		long ms;
		bool ok;
	} * callbacks;
	size_t ncallbacks;
} fl_apply_result;

/* Frees what a result holds. The calls below overwrite *res: clear a used one before reusing it. */
void fl_apply_result_clear(fl_apply_result *r);

/*
 * migrate: lock, plan, validate, prepare every file, then control schema,
 * run row, history table (created when absent, with its schema), and the
 * pending versioned migrations up to o->target followed by the repeatables. Returns 0, or -1 with *err:
 * FL_EINPUT (a file cannot run: nothing touched), FL_EDRIFT (validation failed: nothing touched), FL_EDB
 * (connection, lock or a migration failed: the migrations before it stay applied), FL_EINTR (cancelled). res
 * may be NULL.
 */
int fl_apply_migrate(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                     fl_error **err);

/*
 * undo: reverses the latest applied versioned migration, or with o->target
 * every one above that version, newest first, each with its U file in its
 * own transaction, recorded as Flyway records it (an UNDO_SQL row with the
 * undone version and the U file's description, script and checksum).
 */
int fl_apply_undo(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                  fl_error **err);

/*
 * baseline: a BASELINE row at `version` (NULL: "1"), description and script
 * `description` (NULL: "<< Flyway Baseline >>"). Refused (FL_EINPUT) when
 * the history has rows other than the schema marker; a baseline at the same
 * version already there is not an error (nothing changes).
 */
int fl_apply_baseline(fl_pg *pg, const char *version, const char *description, const fl_apply_opts *o,
                      fl_apply_result *res, fl_error **err);

/*
 * repair: deletes failed rows and realigns checksum, description and type
 * of applied versioned rows with their files (above the baseline), in one
 * transaction; res->changes lists every change ("removed failed row of
 * migration 3 (add sessions)", "realigned checksum of migration 2 ...:
 * 123 -> 456"). With dry_run the SQL goes to sql_out and nothing changes.
 */
int fl_apply_repair(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                    fl_error **err);

/*
 * status and validate: reads history and ledger (no lock, no writes) and
 * plans; *h and *plan are new (free the plan before the history). For
 * validate: fl_plan_validate(*plan, true).
 */
int fl_apply_info(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_history **h,
                  fl_plan **plan, fl_error **err);

/*
 * The checks a run makes before its first statement, without a connection:
 * every file of the set expands (placeholders, with flyway:user = user and
 * flyway:database = database) and splits. Returns every problem (FL_EINPUT,
 * at the file's line:col), or NULL. For a fleet's preflight: a bad file is
 * found before anything is sent to any server.
 */
fl_error *fl_apply_check(const fl_migration_set *set, const fl_apply_opts *o, const char *user,
                         const char *database);

/*
 * Brings flotilla's control schema up to date (the embedded migrations of
 * control_sql.h, applied by this engine into schema "flotilla" with its own
 * history table). Cheap when it is current (one read, no lock). Called by
 * migrate, undo, baseline and repair unless no_ledger or dry_run.
 */
int fl_apply_control(fl_pg *pg, const fl_apply_opts *o, fl_error **err);

#endif
