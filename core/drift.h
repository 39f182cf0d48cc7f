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
	 * "order" (a table's column order), "invalid" (an INVALID index, a NOT VALID constraint),
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

typedef struct {
	const char *schema;        /* the service's schema: names in it are written without it */
	const char *history_table; /* NULL: flyway_schema_history */
	const char *rename_from;   /* may be NULL: replaced by rename_to in every value (the shadow's name) */
	const char *rename_to;
	char *const *ignore_schemas; /* schemas left out (providers' own, see manifest.h) */
	size_t nignore_schemas;
	bool column_order; /* a table's "column order" attribute */
	bool comments;     /* "comment" attributes of tables and columns */
} fl_drift_snapshot_opts;

/*
 * Reads every schema object of the connection's database (one query) except
 * those of pg_catalog, information_schema, flotilla's schema, the ignored
 * schemas, extensions' members (pg_depend deptype 'e': an extension's
 * objects are the extension's, not a migration's) and the history table.
 * The session is reset first (DISCARD ALL) and read with fixed settings
 * (search_path = pg_catalog, DateStyle, IntervalStyle, TimeZone,
 * extra_float_digits, bytea_output), so whatever a migration or ALTER
 * DATABASE ... SET left on the connection cannot change how a value is
 * printed: every name outside pg_catalog comes out schema-qualified, the
 * same way on both sides. Indexes that are not valid and constraints that
 * are NOT VALID carry a "validity" attribute. Returns 0 or -1 with *err
 * (FL_EDB).
 */
int fl_drift_snapshot_take(fl_pg *pg, const fl_drift_snapshot_opts *o, fl_drift_snapshot **out,
                           fl_error **err);
void fl_drift_snapshot_free(fl_drift_snapshot *s);

/*
 * expected (the shadow) against actual (the live database) -> schema
 * findings. An object whose table is itself extra or missing is not
 * repeated (one finding for a new table, not one per column). A table
 * whose shared columns come in another order is one "order" finding (columns
 * only one side has are their own findings, not an order change). An index
 * or constraint of the live database that is not valid is an "invalid"
 * finding, whatever the migrations say: it is work a cancelled or failed
 * statement left half done.
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
	char *const *ignore_schemas; /* never compared (fl_drift_snapshot_opts) */
	size_t nignore_schemas;
	bool column_order;  /* compare the order of columns */
	bool comments;      /* compare comments on tables and columns */
	int drop_wait_ms;   /* bound on the wait for the replay's backend to exit before the drop; 0: 10 s */
	bool keep_shadow;   /* tests: leave the shadow (its name in *kept_shadow) */
	atomic_int *cancel; /* may be NULL */
	fl_drift_conn_fn on_conn; /* may be NULL */
	void *conn_ctx;
} fl_drift_service_opts;

typedef struct {
	fl_drift_findings findings;
	char *version;     /* the version the database records; NULL: none */
	char *kept_shadow; /* keep_shadow: the shadow's name */
	/* not checked because a migration holds the service's migration lock:
	 * "a migration is running (pid 4242, since 2026-12-01 23:05:01 UTC)"; NULL: checked */
	char *skipped;
	double history_s, create_s, replay_s, snapshot_s, drop_s; /* where the time went (seconds) */
} fl_drift_service_result;

void fl_drift_service_result_clear(fl_drift_service_result *r);

/*
 * Checks one service. A drift check never holds up a deploy: it only tries
 * the service's migration lock (fl_history_lock_key) and lets go of it in
 * the same statement; when a migration holds it, before the check or when
 * the check ends, or the history table changed meanwhile, the service is skipped (res->skipped, no findings:
 * a schema in the middle of a migration says nothing). A migration therefore never waits for drift. Returns 0
 * (findings, possibly none, in res) or -1 with *err: FL_EDB (could not connect or read, the replay failed),
 * FL_EINTR (cancelled), FL_EINPUT (a file cannot be expanded). Findings
 * found before a failure stay in res.
 */
int fl_drift_service(const fl_drift_service_opts *o, fl_drift_service_result *res, fl_error **err);

/* ---- shadows left behind ---- */

/*
 * A shadow's name says who made it and when: "flotilla_shadow_<service>_
 * <t>_<pid>", t the server's clock in milliseconds (base 36) when it was
 * created, pid the backend of the admin session that created it, which a
 * run keeps open until it has dropped its shadow. A shadow is a leftover
 * of a crashed (SIGKILL) or twice-interrupted run when it was created
 * before now (the server's clock at this call) and no backend with that pid
 * that started before t is alive: the run that made it is gone. Leftovers
 * are dropped without FORCE (the admin needs no right to signal other
 * roles' backends); one still in use (a killed run's replay statement that
 * has not ended) is waited for up to wait_ms in all, then left with a
 * warning. Only the shadows of `services` are looked at (NULL: every
 * service's; a service's name is cut to 27 bytes in a shadow's name, as
 * it is there). Names of another form (older flotilla, or a kept shadow's,
 * which ends in "_k<pid>") are never touched.
 * *dropped receives the dropped names (caller frees each and the array).
 * Returns 0, or -1 with *err when the list could not be read; warnings
 * (a leftover that could not be dropped) are appended to *warnings.
 */
int fl_drift_shadow_cleanup(fl_pg *admin, char *const *services, size_t nservices, int wait_ms,
                            char ***dropped, size_t *ndropped, fl_error **warnings, fl_error **err);

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
