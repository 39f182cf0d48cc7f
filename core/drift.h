/*
 * drift: how far a service database has moved away from what the repository
 * says, in three parts, each a list of findings a person reads on one line.
 *
 * - History: the plan (history.h) seen with more context than validate:
 *   applied migrations whose file changed, applied ones whose file is gone,
 *   failed rows, pending files (the database is behind), applied versions
 *   the repository does not know (ahead), files skipped below the current
 *   version, repeatables that changed since they ran.
 * - Schema: the expected schema is what the service's migrations produce up
 *   to the version the database records. It is built by replaying them
 *   (apply.h, as the service's owner) into a shadow database created on the
 *   same cluster under a unique name "flotilla_shadow_<service>_<random>",
 *   owned by the service's owner, and dropped afterwards whatever happens
 *   (success, a failing migration, a cancel: the replay's connection is
 *   handed to the caller's cancel hook, and the drop runs on a connection
 *   the cancel never touches). Both databases are then read into a catalog
 *   snapshot (objects with attributes, see fl_drift_snapshot_take) that
 *   leaves out the history table and flotilla's own schema, and the two are
 *   compared. The shadow's name never shows in a snapshot: it is replaced by
 *   the live database's name (flyway:database placeholders).
 *   The shadow may instead live on another server (shadow_remote: a spare
 *   server for the replay's load, or one where the cluster's admin cannot
 *   create databases). The service's owner role usually does not exist
 *   there: when the connecting user cannot become it, the shadow belongs to
 *   the connecting user and nothing runs under SET ROLE. Owners are then
 *   not compared at all (an owner found on another server says nothing
 *   about the live one), whatever roles that server has.
 * - Grants: role attributes, memberships, database, schema, table and
 *   default privileges against what provision would create: a dry run of
 *   fl_provision_run with prune. Each planned step is a gap (something to
 *   grant or create) or, when it takes something away, a security finding
 *   (an extra privilege); provision's warnings are findings too.
 *
 * Nothing here prints. Findings belong to the caller; one call works on its
 * own connections, so one thread per service may call fl_drift_service.
 */
#ifndef FL_DRIFT_H
#define FL_DRIFT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "error.h"
#include "gitdiff.h"
#include "history.h"
#include "manifest.h"
#include "migration.h"
#include "pg.h"
#include "provision.h"

typedef enum {
	FL_DRIFT_HISTORY = 1,
	FL_DRIFT_SCHEMA = 2,
	FL_DRIFT_GRANTS = 4,
} fl_drift_kind;
#define FL_DRIFT_ALL (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA | FL_DRIFT_GRANTS)

/* Prefix of every shadow database's name. */
#define FL_DRIFT_SHADOW_PREFIX "flotilla_shadow_"

typedef struct {
	char *service; /* NULL: a cluster finding (a role, not one service's database) */
	fl_drift_kind kind;
	/* "extra" (in the database, not in the repository), "missing", "changed",
	 * "failed", "pending", "ahead", "ignored", "outdated" (history),
	 * "gap" and "security" and "warning" (grants) */
	char *change;
	char *object;   /* "column users.nickname", "migration 3 (add sessions)", a provision step's object */
	char *message;  /* the whole line, without the service: "column users.nickname (text) exists ..." */
	char *expected; /* NULL when not meaningful */
	char *found;    /* NULL when not meaningful */
	char *file;     /* history: the migration file as people see it; else NULL */
	/* history "changed" (checksum) and "outdated": the file's name in its folder and
	 * history's installed_on, so that a caller who knows git can name the commit that
	 * changed the file after it ran (fl_drift_set_commit); else NULL */
	char *script;
	char *installed_on;
	fl_git_commit *commit; /* that commit, once named; NULL: unknown, or not in git */
} fl_drift_finding;

typedef struct {
	fl_drift_finding *items;
	size_t n, cap;
} fl_drift_findings;

/* Appends a finding (strings copied; NULLs allowed except change, object, message). */
void fl_drift_add(fl_drift_findings *f, const char *service, fl_drift_kind kind, const char *change,
                  const char *object, const char *expected, const char *found, const char *file,
                  const char *fmt, ...) __attribute__((format(printf, 9, 10)));
/* Names the commit behind a history finding: appends note to its message and takes
 * *commit (NULL: none; *commit is left cleared). */
void fl_drift_set_commit(fl_drift_finding *d, const char *note, fl_git_commit *commit);
/* Moves every finding of src to the end of dst (src left empty). */
void fl_drift_move(fl_drift_findings *dst, fl_drift_findings *src);
void fl_drift_findings_clear(fl_drift_findings *f);
/* "history", "schema", "grants". */
const char *fl_drift_kind_name(fl_drift_kind k);
/* "history,schema" -> mask; -1 with *err (FL_EINPUT) naming an unknown word. */
int fl_drift_parse_only(const char *list, fl_error **err);

/* ---- history ---- */

/* The plan's drift, one finding per item that is not as it should be. */
void fl_drift_history(const fl_plan *p, const char *service, fl_drift_findings *out);

/* ---- catalog snapshots ---- */

/* One attribute of one object: (kind, name) is the object, parent the table it hangs on ("" for none). */
typedef struct {
	char *kind; /* "table", "column", "index", "check constraint", "function", ... */
	char *name; /* "users", "users.nickname", "touch()"; objects outside `schema` are schema-qualified */
	char *parent; /* "users" for a column, index, constraint, trigger, policy; "" otherwise */
	char *attr;   /* "owner", "type", "definition", ... */
	char *value;  /* "" for none */
} fl_drift_attr;

typedef struct {
	fl_drift_attr *items; /* sorted by kind, name, attr */
	size_t n;
} fl_drift_snapshot;

/*
 * Reads every schema object of the connection's database (one query) except
 * those of pg_catalog, information_schema, flotilla's schema, extensions'
 * members and the history table schema.table. Names in `schema` are written
 * without it. rename_from (may be NULL) is replaced by rename_to in every
 * value. Returns 0 or -1 with *err (FL_EDB).
 */
int fl_drift_snapshot_take(fl_pg *pg, const char *schema, const char *history_table, const char *rename_from,
                           const char *rename_to, fl_drift_snapshot **out, fl_error **err);
void fl_drift_snapshot_free(fl_drift_snapshot *s);

/*
 * expected (the shadow) against actual (the live database) -> schema
 * findings. An object whose table is itself extra or missing is not
 * repeated (one finding for a new table, not one per column).
 */
void fl_drift_compare(const fl_drift_snapshot *expected, const fl_drift_snapshot *actual, const char *service,
                      fl_drift_findings *out);

/* ---- one service: history and schema ---- */

/* Hands the connection whose statements a cancel must interrupt (NULL: none) to the caller. */
typedef void (*fl_drift_conn_fn)(void *ctx, PGconn *conn);

typedef struct {
	const fl_service *svc;
	const fl_migration_set *set;
	unsigned checks;                  /* FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA */
	const fl_pg_params *live;         /* the migrator, to the service's database */
	const fl_pg_params *shadow_login; /* the migrator again; its dbname is replaced by the shadow's */
	const fl_pg_params *admin; /* creates and drops the shadow; its dbname: the maintenance database */
	bool shadow_remote;        /* admin and shadow_login reach another server: owners are not compared */
	const char *table;         /* history table; NULL: flyway_schema_history */
	int lock_timeout_ms;
	int statement_timeout_ms;
	bool keep_shadow;         /* tests: leave the shadow (its name in *kept_shadow) */
	atomic_int *cancel;       /* may be NULL */
	fl_drift_conn_fn on_conn; /* may be NULL */
	void *conn_ctx;
} fl_drift_service_opts;

typedef struct {
	fl_drift_findings findings;
	char *version;     /* the version the database records; NULL: none */
	char *kept_shadow; /* keep_shadow: the shadow's name */
	double history_s, create_s, replay_s, snapshot_s, drop_s; /* where the time went (seconds) */
} fl_drift_service_result;

void fl_drift_service_result_clear(fl_drift_service_result *r);

/*
 * Checks one service. Returns 0 (findings, possibly none, in res) or -1
 * with *err: FL_EDB (could not connect or read, the replay failed),
 * FL_EINTR (cancelled), FL_EINPUT (a file cannot be expanded). Findings
 * found before a failure stay in res.
 */
int fl_drift_service(const fl_drift_service_opts *o, fl_drift_service_result *res, fl_error **err);

/* ---- grants ---- */

/*
 * The grant drift of a manifest's environment: a provision dry run with
 * prune. A step whose database is a service's, or whose SQL names a
 * service's database or owner, is that service's finding; the others are
 * cluster findings (service NULL). Returns NULL or the error that stopped
 * the reading (FL_EDB).
 */
fl_error *fl_drift_grants(const fl_manifest *m, const fl_provision_target *t, fl_drift_findings *out);

#endif
