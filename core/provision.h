/*
 * provision: the roles, databases, memberships, privileges and default
 * privileges a fleet of services needs, and the SQL that gets a cluster
 * there from whatever state it is in; and password rotation.
 *
 * The desired state is a plain struct (fl_provision_desired) that knows
 * nothing of the manifest: roles (LOGIN or not, with a callback that yields
 * a password only when one has to be set), the migrator, and per service its
 * database, owner, schema and readers. Every service database gets a NOLOGIN
 * group "<database>_ro" that holds exactly read access (CONNECT, USAGE on the
 * schema, SELECT on its tables and sequences, and default privileges so that
 * tables the owner creates later are covered); a reader is a member of that
 * group and of nothing else. Nothing grants write access across services.
 *
 * fl_provision_run reads the actual state from the catalogs, computes the
 * steps (one statement and one line for people each) and runs them: first the
 * shared-catalog work (roles, memberships, databases and their privileges) on
 * one admin connection to the maintenance database, one statement at a time
 * under the advisory lock FL_PROVISION_LOCK_KEY there; then, one connection
 * per database and in parallel, each database's work in one transaction under
 * the same advisory lock key taken in that database (the shared lock is
 * released before: those statements touch only that database's catalogs).
 * Concurrent runs
 * therefore queue instead of failing ("tuple concurrently updated") and end
 * in the same state. A second run has no steps.
 *
 * The admin needs no superuser: CREATEROLE and CREATEDB are enough. It makes
 * itself a member of every owner role (needed for CREATE DATABASE ... OWNER on
 * PostgreSQL 15+ and on Cloud SQL / AlloyDB) and runs the work that depends on
 * ownership after SET ROLE <owner>.
 *
 * Privileges the desired state does not ask for (a PUBLIC grant, INSERT for a
 * reader, an extra member of an owner role or of a _ro group, SUPERUSER on a
 * service role, a foreign default privilege...) are never revoked silently:
 * they come back as warnings, or with `prune` as REVOKE steps. PUBLIC's access
 * to a service database and PUBLIC's CREATE on schema public are the
 * exception: taking them away is part of the desired state (a printed step).
 * A table in the service's schema that someone other than the owner owns is
 * reported (its readers cannot be managed by the owner), never changed.
 *
 * PostgreSQL 15 is what the tests run; on 16 and later a membership counts
 * only with SET and INHERIT, and is granted WITH INHERIT TRUE, SET TRUE
 * (a CREATEROLE admin's implicit membership in the roles it creates has
 * neither).
 *
 * Passwords: a verifier is computed on the client (PQencryptPasswordConn,
 * SCRAM-SHA-256) and only the verifier is sent, so no clear-text password
 * reaches the server or its log; a password is asked for only when its role
 * is created or reset_passwords is set, and wiped right after. Steps shown to
 * people carry '<scram-sha-256 verifier>' in place of the verifier. Nothing
 * here prints; errors are returned.
 */
#ifndef FL_PROVISION_H
#define FL_PROVISION_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "login.h"
#include "manifest.h"
#include "orchestrate.h"
#include "pg.h"
#include "secret.h"

/* How long provision and rotate wait for the lock below by default (as migration_lock_timeout). */
#define FL_PROVISION_DEFAULT_LOCK_TIMEOUT_MS (10 * 60 * 1000)

/* pg_advisory_lock key of provision and rotate: the bytes "flotprov". Taken
 * in the maintenance database for the shared part, and in each service
 * database for its part (advisory locks are per database). */
#define FL_PROVISION_LOCK_KEY 0x666c6f7470726f76LL

/* Length of a password made by rotate. */
#define FL_PROVISION_PASSWORD_LEN 40
/* Default time limit of a password sink. */
#define FL_PROVISION_SINK_TIMEOUT_MS 60000

/* Stands for a verifier in the steps shown to people. */
#define FL_PROVISION_VERIFIER_SHOWN "'<scram-sha-256 verifier>'"

/*
 * Yields the password of `role` as a new NUL-terminated string (provision
 * wipes and frees it), or an error. Called only when the password has to be
 * set, from the thread that called fl_provision_run.
 */
typedef fl_error *(*fl_provision_password_fn)(void *ctx, const char *role, char **password);

typedef struct {
	char *name;
	bool login;
	fl_provision_password_fn password; /* NULL: no password is managed */
	void *password_ctx;
	bool free_ctx; /* fl_provision_desired_free frees password_ctx */
	/* where the manifest says its password comes from (fl_provision_desired_for and
	 * _from_manifest; borrowed from the manifest), NULL: none. A run that resolves its
	 * secrets beforehand reads the list of them here, so it is the provisioned set. */
	const fl_secret_ref *secret;
	/* a role this run does not own (another service's owner that reads one of
	 * the selected services): never created or altered; granted what it reads
	 * only when it exists already (its own service's run creates it) */
	bool external;
} fl_provision_role;

typedef struct {
	char *name; /* the service, for messages */
	char *database;
	char *owner; /* one of the roles */
	char *schema;
	char **readers; /* roles (of the desired state) that may read this database */
	size_t nreaders;
	/* a service this run does not provision but that a selected one reads:
	 * only its read-only group is made (and given to its readers here); its
	 * database, owner and grants are its own run's */
	bool external;
} fl_provision_service;

typedef struct {
	char *migrator; /* one of the roles, member of every owner; NULL: none */
	fl_provision_role *roles;
	size_t nroles;
	fl_provision_service *services;
	size_t nservices;
	/* problems met while the manifest adapter resolved passwords that did not
	 * stop it (a secret file readable by others); the caller shows them */
	fl_error *warnings;
	/* the state covers some of the services (migrate SERVICE...): memberships are
	 * judged (warned about, pruned) only in groups whose members it fully knows */
	bool partial;
} fl_provision_desired;

fl_provision_desired *fl_provision_desired_new(void);
void fl_provision_desired_free(fl_provision_desired *d);
/* Adds a role (names are copied). Adding a name again updates it. */
void fl_provision_add_role(fl_provision_desired *d, const char *name, bool login, fl_provision_password_fn pw,
                           void *pw_ctx);
void fl_provision_set_migrator(fl_provision_desired *d, const char *role);
/* Adds a service and returns its index. */
size_t fl_provision_add_service(fl_provision_desired *d, const char *name, const char *database,
                                const char *owner, const char *schema);
/* Lets `role` read service `service` (an index from fl_provision_add_service). */
void fl_provision_add_reader(fl_provision_desired *d, size_t service, const char *role);
/* Every problem of the desired state (unknown owner or reader, a name that is
 * empty, too long or not UTF-8, two services on one database, a _ro group
 * that clashes with a role), FL_EINPUT; NULL when fine. */
fl_error *fl_provision_validate(const fl_provision_desired *d);
/* "<database>_ro", new string. */
char *fl_provision_ro_group(const char *database);

/* Where to connect: the admin's connection parameters (their dbname is
 * replaced by the database each connection is for). */
typedef struct {
	const fl_pg_params *admin;
	const char *maintenance_db; /* NULL: "postgres" */
} fl_provision_target;

typedef struct {
	char *database; /* NULL: the shared part, on the maintenance database */
	char *role;     /* runs after SET ROLE role; NULL: as the admin */
	char *desc;     /* one line for people */
	char *sql;      /* the statement, verifiers shown as FL_PROVISION_VERIFIER_SHOWN */
} fl_provision_step;

typedef void (*fl_provision_step_fn)(void *ctx, const fl_provision_step *step);

/* The part in each database, left to the caller (fl_provision_opts.defer_databases). */
typedef struct fl_provision_dbs fl_provision_dbs;

typedef struct {
	bool dry_run;         /* plan only: nothing is locked, changed or resolved */
	bool reset_passwords; /* set the password of every existing role that has one */
	bool prune;           /* revoke extra privileges instead of warning */
	int jobs;             /* databases worked on at once; <= 0: all, at most 8 */
	/* run on the orchestrate pool with its signal handling: an interrupt cancels the
	 * running statement, rolls back the database being worked on and stops */
	bool handle_signals;
	/* the wait for FL_PROVISION_LOCK_KEY (another run provisioning), polled; <= 0:
	 * FL_PROVISION_DEFAULT_LOCK_TIMEOUT_MS (the manifest's migration_lock_timeout) */
	int lock_timeout_ms;
	/* called once per step as it starts (dry run: once per planned step, in
	 * order, at the end); calls never overlap, but may come from worker threads */
	fl_provision_step_fn on_step;
	void *ctx;
	/*
	 * Do the shared part only and leave the part in each database to the
	 * caller (res->dbs, fl_provision_db_clean and fl_provision_db_run). A
	 * fleet run connects to every database anyway: on that connection it
	 * checks whether the database is as desired, and only when it is not
	 * opens the admin's. A fleet with nothing to change then opens one
	 * connection per database instead of two. Ignored with dry_run.
	 */
	bool defer_databases;
} fl_provision_opts;

typedef struct {
	fl_provision_step *steps; /* run (dry run: to run), shared part first, then per service */
	size_t nsteps;
	char **warnings; /* extra privileges left in place, and the like */
	size_t nwarnings;
	/* where it failed: the shared part (roles, memberships, databases: then no
	 * database was worked on), or per service (parallel to d->services; owned)
	 * the work in its database */
	bool shared_failed;
	fl_error **service_errors;
	size_t nservices;
	/* defer_databases: the part in each database, when the shared part succeeded (else NULL); the
	 * caller takes it (and sets it NULL) and frees it with fl_provision_dbs_free after every
	 * fl_provision_db_* call; fl_provision_result_free frees one not taken */
	fl_provision_dbs *dbs;
} fl_provision_result;

/*
 * Provisions `d` (validated first). *out (when out is not NULL) always gets a
 * result, also on failure: the steps up to the failing one. A failure in the
 * shared part stops the run; a failure in one database rolls that database's
 * transaction back and the others go on; every failure is in the returned
 * chain (FL_EDB, FL_EINPUT for an invalid desired state or a password that
 * could not be had). nsteps == 0 and no error: "no changes".
 */
fl_error *fl_provision_run(const fl_provision_desired *d, const fl_provision_target *t,
                           const fl_provision_opts *opts, fl_provision_result **out);
void fl_provision_result_free(fl_provision_result *r);

/*
 * defer_databases: is the database of d->services[k] as desired? Reads its
 * schemas', relations' and default privileges on conn, any role's
 * connection to it (the catalogs are readable by all), in one round trip,
 * without the provision lock, and plans as fl_provision_run would. 1:
 * nothing to do (the plan's warnings, extra privileges left in place, are
 * appended to *warnings, one "provision: ..." error each); 0: something
 * (fl_provision_db_run does it, under the lock, reading again); -1: *err.
 * Thread-safe for different k.
 */
int fl_provision_db_clean(fl_provision_dbs *p, size_t k, fl_pg *conn, fl_error **warnings, fl_error **err);

/*
 * defer_databases: the part in the database of d->services[k], as
 * fl_provision_run does it: on an admin connection of its own, under the
 * provision lock, in one transaction. Each step is passed to on_step(ctx)
 * (may be NULL) as it starts and counted in *nsteps; warnings are appended
 * to *warnings. w (may be NULL): the worker whose cancel interrupts it.
 * Returns NULL or the error ("database D: ..."; FL_EINTR when interrupted).
 * Thread-safe for different k.
 */
fl_error *fl_provision_db_run(fl_provision_dbs *p, size_t k, fl_orch_worker *w, fl_provision_step_fn on_step,
                              void *ctx, size_t *nsteps, fl_error **warnings);
/* The index in d->services of the service named `name` that is not external, or -1. */
long fl_provision_db_index(const fl_provision_dbs *p, const char *name);
void fl_provision_dbs_free(fl_provision_dbs *p);

/*
 * Rotates the password of `role`: checks the role exists, makes a new
 * password (fl_provision_password_new), hands it to `sink` on its standard
 * input (fl_provision_sink_run) and, only when the sink succeeded, sets its
 * verifier, under FL_PROVISION_LOCK_KEY in the maintenance database. When the
 * sink fails nothing is changed and the error names the sink's exit status
 * and its stderr (any copy of the password cut out).
 */
fl_error *fl_provision_rotate(const fl_provision_target *t, const char *role, const char *sink,
                              int timeout_ms);

/*
 * The manifest, for an environment (m->env set): every service's owner
 * (LOGIN, the service's password), the environment's migrator (LOGIN, its
 * password), the roles of [roles] other than the admin, and each `reads` as
 * a reader. Passwords stay secret references until provision needs one
 * (fl_secret_resolve; warnings go to d->warnings). The manifest must outlive
 * the result.
 */
fl_provision_desired *fl_provision_desired_from_manifest(const fl_manifest *m);

/*
 * What a run over some services needs (partial unless every service is
 * selected): the selected services (sel[0..n) index m->services), their
 * owners, the migrator, the [roles] that read one of them (with the
 * services they read among the selection), the read-only groups of the
 * services a selected one reads (external services) with the selected
 * owners as their readers, and the owners of unselected services that read
 * a selected one (external roles). Passwords come from pw(pw_ctx, role)
 * when pw is not NULL (a run that resolved its secrets beforehand), else
 * from the manifest's references as fl_provision_desired_from_manifest does.
 */
fl_provision_desired *fl_provision_desired_for(const fl_manifest *m, const size_t *sel, size_t n,
                                               fl_provision_password_fn pw, void *pw_ctx);

/* The admin's connection to the environment of a manifest: parameters with
 * the admin password resolved (wiped by _clear), and the target built on them. */
typedef struct {
	fl_provision_target target;
	fl_pg_params params;
	fl_login_conn conn; /* owns what params point to */
} fl_provision_admin;

/* Fills a from env; warnings of the password resolution are appended to *warnings. */
fl_error *fl_provision_admin_init(fl_provision_admin *a, const fl_environment *env, fl_error **warnings);
/* The same with the admin's secret resolved already (NULL: resolve it) and the run's settings
 * (timeouts; NULL: pg.h's defaults). */
fl_error *fl_provision_admin_init_known(fl_provision_admin *a, const fl_environment *env,
                                        const fl_manifest_settings *settings, const fl_secret *known,
                                        fl_error **warnings);
void fl_provision_admin_clear(fl_provision_admin *a);

/* A new password: FL_PROVISION_PASSWORD_LEN characters of A-Z a-z 0-9 - _
 * drawn with getrandom() without bias. The caller wipes and frees it. */
fl_error *fl_provision_password_new(char **out);

/*
 * Runs `/bin/sh -c sink` in its own process group with data[0..len) on its
 * standard input (never in argv or the environment), its stdout and stderr
 * captured, under a time limit (<= 0: FL_PROVISION_SINK_TIMEOUT_MS) after
 * which the group is killed. NULL when it exited 0; else an error (FL_EDB)
 * with its exit status or signal and the start of its stderr, with any copy
 * of data replaced by "<password>".
 */
fl_error *fl_provision_sink_run(const char *sink, const char *data, size_t len, int timeout_ms);

#endif
