/*
 * history: Flyway's schema history table, and what it says when compared
 * with the files (the plan).
 *
 * The table is exactly Flyway's (../shared/flyway-compat/README.md): the
 * same DDL, the same row shapes, ranks and types, so Flyway and flotilla
 * can take turns on one database. It lives in the service's schema, which
 * is created when absent, and then (as Flyway does) a "<< Flyway Schema
 * Creation >>" SCHEMA row at rank 0 records that the schema is ours.
 * Nothing flotilla-specific is ever written into it; flotilla's own ledger
 * (schema "flotilla", tables run and execution) is read here too, only to
 * know how far an unfinished no-transaction migration got.
 *
 * A plan is the comparison, the way `flyway info` and `flyway validate`
 * see it: one item per history row and per file not yet applied, each in
 * a state; the current version; the versioned migrations to apply (in
 * order, up to a target) and the repeatables to run again; and, on
 * request, the validate errors, each naming the file and saying how to fix
 * it. Building a plan never touches the database.
 */
#ifndef FL_HISTORY_H
#define FL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "migration.h"
#include "pg.h"

#define FL_HISTORY_DEFAULT_TABLE "flyway_schema_history"
/* flotilla's control schema (ledger and its own history table), in every service database */
#define FL_CONTROL_SCHEMA            "flotilla"
#define FL_BASELINE_DESCRIPTION      "<< Flyway Baseline >>"
#define FL_SCHEMA_MARKER_DESCRIPTION "<< Flyway Schema Creation >>"

/* One row of the history table, as stored. */
typedef struct {
	int installed_rank;
	char *version; /* NULL: repeatable or schema marker */
	char *description;
	char *type; /* SQL, BASELINE, SCHEMA, UNDO_SQL, DELETE, JDBC ... */
	char *script;
	bool has_checksum;
	int32_t checksum;
	char *installed_by; /* NULL when appending: current_user */
	char *installed_on; /* as the server prints it; ignored when appending */
	int execution_time; /* ms */
	bool success;
} fl_history_row;

/*
 * From flotilla's ledger: the latest execution of a script that did not
 * succeed (a transactional migration that failed and rolled back, or a
 * no-transaction migration stopped part way).
 */
typedef struct {
	long long id;
	char *script;
	char *version;
	bool no_transaction;
	int statements_done; /* no-transaction: statements that completed, in order */
	int statements_total;
	char *prefix_sha256; /* SHA-256 of those statements' text (see apply.c) */
	char *content_sha256;
	int in_flight; /* no-transaction: a statement outside any transaction had started and was not
	                  known to have ended (1-based); 0: none */
	char *error;   /* NULL while it is still running (or was killed) */
	char *started; /* as the server prints it */
} fl_history_progress;

typedef struct {
	char *schema;
	char *table;
	bool schema_exists;
	bool exists;          /* the table exists; false: rows is empty */
	fl_history_row *rows; /* by installed_rank */
	size_t n;
	bool ledger; /* flotilla's ledger was found (progress is meaningful) */
	fl_history_progress *progress;
	size_t nprogress;
} fl_history;

/* "\"schema\".\"table\"", the way Flyway names the table (and hashes it for the lock). */
char *fl_history_name(const char *schema, const char *table);
/* Java's String.hashCode() of UTF-8 text (over UTF-16 code units, signed 32-bit). */
int32_t fl_java_string_hash(const char *utf8);
/* Flyway's advisory lock key: 0x466C79776179 + hash of fl_history_name(schema, table). */
long long fl_history_lock_key(const char *schema, const char *table);

/*
 * The DDL that creates the table (and, with create_schema, the schema and
 * its marker row), as one SQL text. installed_by NULL: current_user.
 */
char *fl_history_create_sql(const char *schema, const char *table, bool create_schema,
                            const char *installed_by);
/*
 * Creates the schema (when absent, with the marker row) and the table (when
 * absent), in one transaction, as `role` when not NULL (SET LOCAL ROLE, so
 * the role owns them). *created (may be NULL) tells whether the table was
 * made. Call it holding the advisory lock.
 */
int fl_history_create(fl_pg *pg, const char *schema, const char *table, const char *role,
                      const char *installed_by, bool *created, fl_error **err);
/*
 * Reads the table (absent: exists = false, no rows) and, with ledger, the
 * unfinished executions recorded for it in flotilla's ledger (when the
 * ledger exists). Returns 0 or -1 with *err (FL_EDB).
 */
int fl_history_read(fl_pg *pg, const char *schema, const char *table, bool ledger, fl_history **out,
                    fl_error **err);
void fl_history_free(fl_history *h);
/*
 * The pieces of fl_history_read, for a caller that sends the queries in its
 * own pipeline (apply reads everything a command needs in one round trip):
 * the SELECT of a table's rows (new string); the SELECT of the ledger's
 * unfinished executions, $1 = fl_history_name(schema, table); a new history
 * from a result of the first (NULL: the table does not exist); progress
 * from a result of the second (sets h->ledger).
 */
char *fl_history_rows_sql(const char *schema, const char *table);
extern const char *const fl_history_progress_sql;
fl_history *fl_history_from_result(const char *schema, const char *table, bool schema_exists,
                                   const PGresult *rows);
void fl_history_set_progress(fl_history *h, const PGresult *progress);

/*
 * The INSERT that appends `row` with rank max + 1 (row->installed_rank is
 * ignored), installed_by = current_user when row->installed_by is NULL, and
 * execution_time = exec_time_sql when not NULL (an SQL expression, e.g. the
 * time since the transaction began) else row->execution_time. Description
 * and script are shortened as Flyway does (200 and 1000 characters).
 * Values are quoted for pg's connection (pg may be NULL: plain quoting).
 * RETURNING installed_rank, execution_time.
 */
char *fl_history_insert_sql(fl_pg *pg, const char *schema, const char *table, const fl_history_row *row,
                            const char *exec_time_sql);
int fl_history_append(fl_pg *pg, const char *schema, const char *table, const fl_history_row *row,
                      fl_error **err);
/* Flyway's shortening of descriptions (200) and scripts (1000 characters); new strings. */
char *fl_history_abbreviate_description(const char *s);
char *fl_history_abbreviate_script(const char *s);

/*
 * Placeholders: the manifest's (user) ones followed by Flyway's built-ins
 * flyway:defaultSchema, flyway:user, flyway:database, flyway:table.
 * Returns a new array of *n entries whose strings are borrowed (free only
 * the array). flyway:filename depends on the file: see below.
 */
fl_placeholder *fl_placeholders_standard(const fl_placeholder *user, size_t nuser, const char *schema,
                                         const char *database, const char *dbuser, const char *table,
                                         size_t *n);
/* ph plus flyway:filename = the migration's file name (no folders); new array, strings borrowed. */
fl_placeholder *fl_placeholders_for_file(const fl_placeholder *ph, size_t nph, const fl_migration *m,
                                         size_t *n);

/* ---- the plan ---- */

typedef enum {
	FL_ST_PENDING,        /* to apply */
	FL_ST_ABOVE_TARGET,   /* not applied, above the target version */
	FL_ST_IGNORED,        /* not applied, below the current version (out of order) */
	FL_ST_BELOW_BASELINE, /* not applied, at or below the baseline: never will be */
	FL_ST_SUCCESS,        /* applied, file matches (or mismatch flags set) */
	FL_ST_FAILED,         /* a failed row with its file */
	FL_ST_MISSING,        /* applied, no file */
	FL_ST_MISSING_FAILED, /* failed row, no file */
	FL_ST_FUTURE,         /* applied, version above every file */
	FL_ST_FUTURE_FAILED,
	FL_ST_OUTDATED,    /* repeatable's latest row: the file changed since (it runs again) */
	FL_ST_SUPERSEDED,  /* an earlier row of a repeatable */
	FL_ST_BASELINE,    /* the BASELINE row */
	FL_ST_UNDONE,      /* applied, later undone by an UNDO_SQL row */
	FL_ST_DELETED,     /* a row a DELETE row cancelled, or the DELETE row */
	FL_ST_SCHEMA,      /* the schema creation marker */
	FL_ST_UNDO_APPLIED /* an UNDO_SQL row */
} fl_plan_state;

enum {
	FL_MISMATCH_CHECKSUM = 1,
	FL_MISMATCH_DESCRIPTION = 2,
	FL_MISMATCH_TYPE = 4,
};

typedef struct {
	fl_plan_state state;
	const fl_migration *mig;   /* the file; NULL when there is none */
	const fl_history_row *row; /* the history row; NULL for a file not applied */
	unsigned mismatch;         /* FL_MISMATCH_* (only above the baseline) */
	int32_t checksum;          /* the file's checksum as history records it (R: after placeholders) */
	const fl_history_progress *progress; /* the ledger's last unfinished run of this script, or NULL */
	/* a no-transaction migration that failed (FAILED) or whose run was killed part way (PENDING, the
	 * ledger's row never finished): flotilla continues at resume_at */
	bool resumable;
	int resume_at; /* 1-based statement */
	int in_flight; /* resume_at was running outside a transaction when the earlier run stopped: it is
	                  checked before it runs again (see apply.h); 0: not */
} fl_plan_item;

typedef struct {
	const char *service;     /* for messages ("run 'flotilla repair auth'"); may be NULL */
	const char *env;         /* for messages: suggested commands say -e ENV; may be NULL */
	const char *display_dir; /* the migrations folder as shown to people, to name missing files */
	const char *target;      /* NULL or "latest": everything; "current": nothing new; else a version */
	bool out_of_order;       /* apply files below the current version instead of refusing them */
	/* for the checksums of repeatables: fl_placeholders_standard(...) (flyway:filename is added per file)
	 */
	const fl_placeholder *placeholders;
	size_t nplaceholders;
} fl_plan_opts;

typedef struct {
	fl_plan_item *items; /* history rows by rank, then files not applied (versioned, then repeatables) */
	size_t n;
	char *current_version;     /* highest applied version (baseline included); NULL: none */
	char *baseline_version;    /* NULL: no baseline */
	char *latest_file_version; /* highest versioned file; NULL: none */
	/* what migrate runs, in order: versioned (incl. resumable failed ones), then repeatables */
	fl_plan_item **pending;
	size_t npending;
	fl_plan_item **repeatables;
	size_t nrepeatables;
	fl_error *input_errors; /* placeholders a repeatable uses but nobody defines (FL_EINPUT) */
	char *service;
	char *rerun; /* what follows the verb in a suggested command: " auth -e prod", or "" */
	char *display_dir;
	char *history_name; /* "\"public\".\"flyway_schema_history\"" */
} fl_plan;

/*
 * Compares history with the files. Returns NULL with *err (FL_EINPUT) only
 * for a target that is not a version. The plan points into h and set: it
 * must not outlive them.
 */
fl_plan *fl_plan_new(const fl_history *h, const fl_migration_set *set, const fl_plan_opts *o, fl_error **err);
void fl_plan_free(fl_plan *p);

/*
 * Flyway's validate: failed rows, applied migrations whose file is missing,
 * files below the current version not applied (unless out_of_order),
 * checksum / description / type mismatches above the baseline (a NULL
 * checksum matches anything), input errors; with standalone (the `validate`
 * command) also pending and outdated migrations. Failed no-transaction
 * migrations that flotilla can resume are errors only when standalone.
 * Returns the chain (FL_EDRIFT, each at the file's path) or NULL when clean.
 */
fl_error *fl_plan_validate(const fl_plan *p, bool standalone);

/* "Pending", "Success", "Failed", "Missing", ... (Flyway's words). */
const char *fl_plan_state_name(fl_plan_state s);
/* "Versioned", "Repeatable", "Baseline", "Schema", "Undo", "Delete" for the item. */
const char *fl_plan_item_category(const fl_plan_item *it);
/*
 * A short note for `status` or NULL (new string): "failed at statement 3 of
 * 5: ERROR 42P01: ...", "checksum differs from the file", "last attempt
 * failed: ...".
 */
char *fl_plan_item_note(const fl_plan_item *it);

/* One step of an undo: the U file and the applied item it reverses. */
typedef struct {
	const fl_migration *undo;
	const fl_plan_item *applied;
} fl_undo_step;

/*
 * What `undo` runs: with `to` NULL the latest applied versioned migration,
 * else every applied one above version `to`, newest first. Every one needs
 * its U file, and none may be at or below the baseline; otherwise NULL with
 * *err (FL_EINPUT) naming what is missing, before anything runs. An empty
 * result (nothing applied above `to`) is *n == 0 with a non-NULL array.
 */
fl_undo_step *fl_plan_undo(const fl_plan *p, const fl_migration_set *set, const char *to, size_t *n,
                           fl_error **err);

#endif
