/*
 * manifest: the TOML manifest -> typed, validated environments, services and
 * roles, with ${service}, ${env} and ${project} expanded.
 *
 * A load either returns a manifest in which every name is one PostgreSQL
 * accepts unquoted-safe ([A-Za-z_][A-Za-z0-9_$]*, at most 63 bytes; role
 * names may also be the IAM users of Cloud SQL and AlloyDB, such as
 * `migrator@my-project.iam` or `sa@my-project.iam.gserviceaccount.com`,
 * always sent quoted), no two names differ only in case, every
 * `reads` names another service, every migrations folder exists and no two
 * services share a database or an owner; or it returns NULL and every
 * problem it found (not just the first), each at its file:line:col, sorted
 * by place. Nothing is connected to and no secret is resolved: passwords stay
 * references (see secret.h) until a command asks for one.
 *
 * The environment: with a name, everything is resolved for it (${env} is
 * that name) and an unknown name is an error listing the known ones. With
 * NULL, every environment-dependent rule is checked once for each
 * environment the file defines, and the returned manifest keeps "${env}" as
 * written in the strings that use it (m->env is NULL): good for `manifest
 * check` and `manifest show` without -e; commands that connect need a name.
 *
 * Relative paths (migrations folders, secret files) are relative to the
 * directory of the manifest file. "$${" writes a literal "${".
 */
#ifndef FL_MANIFEST_H
#define FL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "migration.h"
#include "secret.h"

/* PostgreSQL's NAMEDATALEN - 1: a longer name is silently truncated. */
#define FL_MANIFEST_MAX_NAME 63

typedef struct {
	char *key;
	char *value;
} fl_manifest_kv;

/*
 * A role flotilla logs in as (admin or migrator), with at most one of:
 * a password; a token (an IAM login token: fetched again for every new
 * connection, never kept); a URL (the whole connection: host, port, sslmode,
 * user and password come from the secret, see login.h).
 */
typedef struct {
	char *user;
	fl_secret_ref *password; /* NULL: no password (trust, peer, a .pgpass or PGPASSWORD) */
	fl_secret_ref *token;    /* kind FL_SECRET_TOKEN, or NULL */
	fl_secret_ref *url;      /* kind FL_SECRET_URL, or NULL */
} fl_login;

typedef struct {
	char *name;
	char *host;              /* any libpq host (name, address, socket directory); NULL: libpq's default */
	int port;                /* 0: libpq's default */
	char *sslmode;           /* NULL: libpq's default */
	int connect_timeout;     /* seconds; 0: not set */
	char *maintenance_db;    /* where databases are created from; default "postgres" */
	fl_manifest_kv *options; /* further libpq keywords, in document order */
	size_t noptions;
	fl_login admin;    /* creates roles and databases */
	fl_login migrator; /* applies migrations */
	/* false: the server trusts local connections; service and role passwords
	 * are neither resolved nor set (their `password` is NULL) */
	bool service_passwords;
	int line, col;
} fl_environment;

typedef struct {
	char *name;
	char *description; /* NULL when none */
	char *database;
	char *owner;                 /* the service's login role, owner of its database */
	char *schema;                /* default "public" */
	fl_secret_ref *password;     /* NULL: none (or the environment has service_passwords = false) */
	char *password_sink;         /* shell command that stores a new password (rotate); NULL: none */
	char *migrations;            /* absolute, resolved path of the folder */
	char *migrations_as_written; /* expanded, as written: for messages */
	char **reads;                /* names of services whose databases it reads */
	size_t nreads;
	size_t *reads_index; /* their indexes in fl_manifest.services */
	/* defaults first, then the service's, in document order; ready for fl_migration_expand */
	fl_placeholder *placeholders;
	size_t nplaceholders;
	/* migrate and undo also keep Alembic's alembic_version current (imported files, see alembic.h) */
	bool keep_alembic_version;
	/* Flyway's settings, with Flyway's meaning (flotilla.toml(5), README "From Flyway") */
	char *table;                      /* schema history table; NULL: flyway_schema_history */
	char **more_locations;            /* `locations` after the first (which is `migrations`): absolute */
	char **more_locations_as_written; /* the same, as written (expanded): for messages */
	size_t nmore_locations;
	char **sql_migration_suffixes; /* NULL: ".sql" */
	size_t nsql_migration_suffixes;
	bool baseline_on_migrate;
	char *baseline_version; /* NULL: "1" */
	bool out_of_order;
	char **more_schemas; /* `schemas` after the first (which is `schema`) */
	size_t nmore_schemas;
	char *target; /* NULL: latest; a --target on the command line wins */
	int line, col;
	/* a tenant of a template (tenants.h): name is "tmpl[tenant]"; both NULL otherwise */
	char *tmpl, *tenant;
} fl_service;

typedef struct {
	char *name;
	char *description;
	char **reads;
	size_t nreads;
	size_t *reads_index;
	bool login;
	fl_secret_ref *password; /* only with login; NULL: none */
	int line, col;
} fl_role;

/* [settings]; the defaults are in README ("Settings") and, for the lock waits, in apply.h. */
typedef struct {
	int jobs;        /* parallel services; 0 (default): one per selected service, at most 8 */
	int connections; /* the run's connection budget (budget.h); 0 (default): read from the server */
	/* migrate with the default jobs and a server on this machine: services applying at a time
	 * (fleet.c work_gate); 0 (default): one per CPU this process may use, plus one */
	int local_apply_jobs;
	int lock_timeout_ms; /* each attempt's wait for a table lock; default 2 s; never 0 (unbounded) */
	int lock_retries;    /* attempts after the first when it times out; default 10; 0: none */
	int lock_retry_interval_ms;    /* the first backoff, doubled each retry (at most 30 s); default 1 s */
	int migration_lock_timeout_ms; /* wait for another run's migration or provision lock; default 10 min
	                                */
	int statement_timeout_ms;      /* default 0: none */
	int secret_timeout_ms;         /* limit of a secret's cmd or file; default 30 s */
	/* Flyway's connectRetries / connectRetriesInterval, for the first connection of a
	 * run (fl_pg_connect_retry): defaults FL_PG_DEFAULT_CONNECT_RETRIES (8) and
	 * FL_PG_DEFAULT_CONNECT_RETRIES_INTERVAL (5 s); at most 1000 and 3600 s */
	int connect_retries;
	int connect_retries_interval_s;
	/* variables a secret command may see besides PATH and HOME (NULL-terminated; never NULL) */
	char **pass_env;
	/* [drift]: what drift compares (README "Drift") */
	char **drift_ignore_schemas; /* schemas never compared; default FL_DRIFT_DEFAULT_IGNORE_SCHEMAS */
	size_t ndrift_ignore_schemas;
	bool drift_column_order; /* column order is a finding; default true */
	bool drift_comments;     /* comments on tables and columns are findings; default true */
} fl_manifest_settings;

/* One entry of [lint.rules]: a rule lint knows (see lint.h) and its level. */
typedef struct {
	char *rule;
	char *level; /* "error", "warning" or "off" */
	char
	    *from_version; /* { level = ..., from_version = "6" }: older versions are not judged; NULL: all */
	int line, col;
} fl_manifest_lint_rule;

/* [lint]: what flotilla lint judges against. */
typedef struct {
	int pg_version; /* pg_version = N; 0: not set */
	fl_manifest_lint_rule *rules;
	size_t nrules;
} fl_manifest_lint;

/*
 * The schemas drift leaves out unless [drift] ignore_schemas says otherwise:
 * those the managed services and common extensions create themselves, which
 * no migration owns (Cloud SQL, AlloyDB, RDS/Aurora, pg_cron, pglogical).
 */
#define FL_DRIFT_DEFAULT_IGNORE_SCHEMAS                                                                      \
	"google_vacuum_mgmt", "cloudsqladmin", "google_ml", "alloydb_admin", "rds_tools", "aws_commons",     \
	    "aws_s3", "aws_lambda", "cron", "pglogical"

typedef struct {
	char *path; /* as given to the load */
	char *dir;  /* absolute directory of the manifest */
	int version;
	char *project;
	const fl_environment *env; /* the selected environment; NULL when loaded without one */
	fl_environment *envs;
	size_t nenvs;
	fl_manifest_settings settings;
	fl_manifest_lint lint;
	fl_service *services; /* in document order */
	size_t nservices;
	fl_role *roles;
	size_t nroles;
} fl_manifest;

/* Loads, expands and validates; see above. Errors are FL_EINPUT. */
fl_manifest *fl_manifest_load(const char *path, const char *env, fl_error **err);
void fl_manifest_free(fl_manifest *m);

/* Lookups by name; NULL when there is none. */
const fl_service *fl_manifest_service(const fl_manifest *m, const char *name);
const fl_environment *fl_manifest_env(const fl_manifest *m, const char *name);

/*
 * The services a command works on: names[0..n) (n == 0: all of them).
 * Writes their indexes into out (room for m->nservices) in manifest order,
 * each once, and returns how many; or returns -1 with one error per unknown
 * name: "unknown service 'auht'; did you mean 'auth'? known: auth, client, ...".
 */
int fl_manifest_select(const fl_manifest *m, char *const *names, size_t n, size_t *out, fl_error **err);

/* "auth, client, user": the known names, for messages. Caller frees. */
char *fl_manifest_service_names(const fl_manifest *m);
char *fl_manifest_env_names(const fl_manifest *m);

#endif
