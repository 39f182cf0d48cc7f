/*
 * provision against the real server, with an admin that has only CREATEROLE
 * and CREATEDB (never the superuser, which only sets up and inspects).
 *
 * Roles are cluster-wide, so every name starts with the test's own database
 * name; .fini drops the databases and roles a test made. The shared server
 * trusts local connections: logging in as a role proves LOGIN and CONNECT.
 * The password tests start a private server where every role but postgres
 * needs its SCRAM password, with log_statement = 'all'.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "provision.h"

/* ---- fixture ---- */

static char *fx_db;         /* the test's database: name prefix and maintenance database */
static char fx_p[64];       /* prefix */
static char *fx_pgdir;      /* a private server, when the test started one */
static const char *fx_host; /* NULL: the shared server */
static int fx_pw_calls;

static void fx_setup(void)
{
	fx_db = th_db_new();
	snprintf(fx_p, sizeof(fx_p), "%s", fx_db);
	PGconn *su = th_connect(fx_db);
	char sql[256];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_admin\" LOGIN CREATEROLE CREATEDB", fx_p);
	th_exec(su, sql);
	PQfinish(su);
}

/* Drops every database and role whose name starts with the prefix, on the server at host. */
static void drop_prefixed(const char *host, const char *maint)
{
	const char *keys[] = {"host", "dbname", "user", NULL};
	const char *vals[] = {host, maint, "postgres", NULL};
	PGconn *su = PQconnectdbParams(host ? keys : keys + 1, host ? vals : vals + 1, 0);
	if (PQstatus(su) != CONNECTION_OK) {
		PQfinish(su);
		return;
	}
	char sql[512];
	snprintf(
	    sql, sizeof(sql),
	    "SELECT format('DROP DATABASE %%I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE "
	    "'%s\\_%%'",
	    fx_p);
	PGresult *r = PQexec(su, sql);
	for (int i = 0; i < PQntuples(r); i++)
		PQclear(PQexec(su, PQgetvalue(r, i, 0)));
	PQclear(r);
	snprintf(
	    sql, sizeof(sql),
	    "SELECT format('DROP ROLE %%I', rolname) FROM pg_roles WHERE rolname LIKE '%s\\_%%' ORDER BY "
	    "rolname DESC",
	    fx_p);
	r = PQexec(su, sql);
	for (int i = 0; i < PQntuples(r); i++)
		PQclear(PQexec(su, PQgetvalue(r, i, 0)));
	PQclear(r);
	PQfinish(su);
}

static void fx_teardown(void)
{
	if (fx_pgdir) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "sh %s/ci/pg destroy %s/pg", th_top(), fx_pgdir);
		th_sh(cmd, NULL);
	}
	drop_prefixed(NULL, "postgres");
	th_db_drop(fx_db);
}

TestSuite(provision, .init = fx_setup, .fini = fx_teardown, .timeout = 120);

/* ---- helpers ---- */

static char name_buf[64][96];
static int name_next;

/* prefix + "_" + suffix, in a static slot (enough for one test). */
static const char *N(const char *suffix)
{
	char *b = name_buf[name_next++ % 64];
	snprintf(b, 96, "%s_%s", fx_p, suffix);
	return b;
}

static fl_error *pw_of_role(void *ctx, const char *role, char **out)
{
	(void)ctx;
	__atomic_add_fetch(&fx_pw_calls, 1, __ATOMIC_SEQ_CST);
	if (asprintf(out, "pw-%s-Zq81Tr", role) < 0)
		abort();
	return NULL;
}

/*
 * Three services: a reads b; b uses schema "app"; c is read by the extra
 * role bq. The migrator is mig.
 */
static fl_provision_desired *desired3(void)
{
	fl_provision_desired *d = fl_provision_desired_new();
	const char *roles[] = {"a_own", "b_own", "c_own", "mig", "bq"};
	for (size_t i = 0; i < 5; i++)
		fl_provision_add_role(d, N(roles[i]), true, pw_of_role, NULL);
	fl_provision_set_migrator(d, N("mig"));
	size_t a = fl_provision_add_service(d, "a", N("a"), N("a_own"), "public");
	size_t b = fl_provision_add_service(d, "b", N("b"), N("b_own"), "app");
	size_t c = fl_provision_add_service(d, "c", N("c"), N("c_own"), NULL);
	(void)a;
	fl_provision_add_reader(d, b, N("a_own"));
	fl_provision_add_reader(d, c, N("bq"));
	return d;
}

static fl_pg_params admin_params(void)
{
	fl_pg_params p = {0};
	p.host = fx_host;
	p.user = N("admin");
	return p;
}

static fl_provision_result *provision(const fl_provision_desired *d, fl_provision_opts o)
{
	fl_pg_params p = admin_params();
	fl_provision_target t = {.admin = &p, .maintenance_db = fx_db};
	fl_provision_result *r = NULL;
	fl_error *err = fl_provision_run(d, &t, &o, &r);
	char *m = err ? fl_error_format(err) : NULL;
	cr_assert_null(err, "provision failed: %s", m);
	cr_assert_not_null(r);
	return r;
}

/* Connects to db as user (password may be NULL); NULL and *why on failure. */
static PGconn *login(const char *db, const char *user, const char *password, char **why)
{
	const char *keys[5] = {"dbname", "user"}, *vals[5] = {db, user};
	int n = 2;
	if (password) {
		keys[n] = "password";
		vals[n++] = password;
	}
	if (fx_host) {
		keys[n] = "host";
		vals[n++] = fx_host;
	}
	keys[n] = vals[n] = NULL;
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(c) != CONNECTION_OK) {
		if (why)
			*why = strdup(PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Runs sql; returns "" on success, else the SQLSTATE (static). */
static const char *try_sql(PGconn *c, const char *sql)
{
	static char state[8];
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		state[0] = '\0';
	else
		snprintf(state, sizeof(state), "%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
	PQclear(r);
	return state;
}

static int count_steps(const fl_provision_result *r, const char *sql_prefix)
{
	int n = 0;
	for (size_t i = 0; i < r->nsteps; i++)
		if (strncmp(r->steps[i].sql, sql_prefix, strlen(sql_prefix)) == 0)
			n++;
	return n;
}

static char *all_warnings(const fl_provision_result *r)
{
	size_t len = 1;
	for (size_t i = 0; i < r->nwarnings; i++)
		len += strlen(r->warnings[i]) + 1;
	char *s = calloc(1, len);
	for (size_t i = 0; i < r->nwarnings; i++) {
		strcat(s, r->warnings[i]);
		strcat(s, "\n");
	}
	return s;
}

static char *all_steps(const fl_provision_result *r)
{
	size_t len = 1;
	for (size_t i = 0; i < r->nsteps; i++)
		len +=
		    strlen(r->steps[i].sql) + strlen(r->steps[i].desc) + (r->steps[i].database ? 100 : 0) + 8;
	char *s = calloc(1, len);
	for (size_t i = 0; i < r->nsteps; i++) {
		if (r->steps[i].database) {
			strcat(s, "[");
			strcat(s, r->steps[i].database + strlen(fx_p));
			strcat(s, "] ");
		}
		strcat(s, r->steps[i].sql);
		strcat(s, "\n");
	}
	return s;
}

/* Replaces the prefix by "P" everywhere, so the expected text can be written down. */
static char *unprefix(const char *s)
{
	size_t n = strlen(fx_p);
	char *o = calloc(1, strlen(s) + 1), *w = o;
	while (*s) {
		if (strncmp(s, fx_p, n) == 0) {
			*w++ = 'P';
			s += n;
		} else {
			*w++ = *s++;
		}
	}
	return o;
}

static char *su_query(const char *db, const char *sql)
{
	PGconn *c = th_connect(db);
	char *v = th_query1(c, sql);
	PQfinish(c);
	return v;
}

/* ---- the tests ---- */

Test(provision, validate_names_every_problem)
{
	fl_provision_desired *d = fl_provision_desired_new();
	fl_provision_add_role(d, "own", true, NULL, NULL);
	fl_provision_add_role(d, "dbx_ro", false, NULL, NULL);
	fl_provision_set_migrator(d, "nobody");
	fl_provision_add_service(d, "s1", "dbx", "own", NULL);
	size_t s2 = fl_provision_add_service(d, "s2", "dbx", "ghost", NULL);
	fl_provision_add_reader(d, s2, "phantom");
	fl_provision_add_service(d, "s3", "a234567890123456789012345678901234567890123456789012345678901",
	                         "own", NULL);
	fl_error *err = fl_provision_validate(d);
	const char *want[] = {
	    "the migrator 'nobody' is not one of the roles",
	    "role 'dbx_ro' clashes with the read-only group of service s1",
	    "service s2: its owner 'ghost' is not one of the roles",
	    "service s2: reader 'phantom' is not one of the roles",
	    "services s1 and s2 share database 'dbx'",
	    "role 'dbx_ro' clashes with the read-only group of service s2",
	    "service s3: database name 'a234567890123456789012345678901234567890123456789012345678901' "
	    "leaves no "
	    "room for its read-only group 'a234567890123456789012345678901234567890123456789012345678901_ro' "
	    "(at "
	    "most 63 bytes)",
	};
	cr_assert_eq(fl_error_count(err), 7);
	size_t i = 0;
	for (fl_error *e = err; e; e = e->next, i++) {
		cr_assert_str_eq(e->msg, want[i]);
		cr_assert_eq(e->kind, FL_EINPUT);
	}
	fl_error_free(err);
	fl_provision_desired_free(d);
}

Test(provision, the_plan_of_an_empty_cluster)
{
	fl_provision_desired *d = fl_provision_desired_new();
	fl_provision_add_role(d, N("a_own"), true, pw_of_role, NULL);
	fl_provision_add_role(d, N("b_own"), true, NULL, NULL);
	fl_provision_add_role(d, N("mig"), true, pw_of_role, NULL);
	fl_provision_set_migrator(d, N("mig"));
	fl_provision_add_service(d, "a", N("a"), N("a_own"), NULL);
	size_t b = fl_provision_add_service(d, "b", N("b"), N("b_own"), "app");
	fl_provision_add_reader(d, b, N("a_own"));
	fl_provision_result *r = provision(d, (fl_provision_opts){.dry_run = true});
	char *got = all_steps(r), *plain = unprefix(got);
	cr_assert_str_eq(
	    plain, "CREATE ROLE \"P_a_own\" LOGIN PASSWORD '<scram-sha-256 verifier>'\n"
	           "CREATE ROLE \"P_b_own\" LOGIN\n"
	           "CREATE ROLE \"P_mig\" LOGIN PASSWORD '<scram-sha-256 verifier>'\n"
	           "CREATE ROLE \"P_a_ro\" NOLOGIN\n"
	           "CREATE ROLE \"P_b_ro\" NOLOGIN\n"
	           "GRANT \"P_a_own\" TO \"P_admin\"\n"
	           "GRANT \"P_b_own\" TO \"P_admin\"\n"
	           "CREATE DATABASE \"P_a\" OWNER \"P_a_own\"\n"
	           "REVOKE ALL ON DATABASE \"P_a\" FROM PUBLIC\n"
	           "GRANT CONNECT ON DATABASE \"P_a\" TO \"P_mig\"\n"
	           "GRANT CONNECT ON DATABASE \"P_a\" TO \"P_a_ro\"\n"
	           "CREATE DATABASE \"P_b\" OWNER \"P_b_own\"\n"
	           "REVOKE ALL ON DATABASE \"P_b\" FROM PUBLIC\n"
	           "GRANT CONNECT ON DATABASE \"P_b\" TO \"P_mig\"\n"
	           "GRANT CONNECT ON DATABASE \"P_b\" TO \"P_b_ro\"\n"
	           "GRANT \"P_a_own\" TO \"P_mig\"\n"
	           "GRANT \"P_b_own\" TO \"P_mig\"\n"
	           "GRANT \"P_b_ro\" TO \"P_a_own\"\n"
	           "[_a] ALTER SCHEMA \"public\" OWNER TO \"P_a_own\"\n"
	           "[_a] GRANT USAGE ON SCHEMA \"public\" TO \"P_a_ro\"\n"
	           "[_a] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_a_own\" IN SCHEMA \"public\" GRANT SELECT ON "
	           "TABLES TO \"P_a_ro\"\n"
	           "[_a] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_a_own\" IN SCHEMA \"public\" GRANT SELECT ON "
	           "SEQUENCES TO \"P_a_ro\"\n"
	           "[_b] CREATE SCHEMA IF NOT EXISTS \"app\" AUTHORIZATION \"P_b_own\"\n"
	           "[_b] GRANT USAGE ON SCHEMA \"app\" TO \"P_b_ro\"\n"
	           "[_b] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_b_own\" IN SCHEMA \"app\" GRANT SELECT ON "
	           "TABLES TO \"P_b_ro\"\n"
	           "[_b] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_b_own\" IN SCHEMA \"app\" GRANT SELECT ON "
	           "SEQUENCES TO \"P_b_ro\"\n");
	/* a dry run neither asks for a password nor changes anything */
	cr_assert_eq(fx_pw_calls, 0);
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname LIKE '%s\\_%%'", fx_p);
	char *n = su_query(fx_db, sql);
	cr_assert_str_eq(n, "1"); /* the admin */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname LIKE '%s\\_%%'", fx_p);
	free(n);
	n = su_query(fx_db, sql);
	cr_assert_str_eq(n, "0");
	/* the descriptions read as sentences */
	char *d0 = unprefix(r->steps[0].desc), *d5 = unprefix(r->steps[5].desc);
	cr_assert_str_eq(d0, "create role P_a_own (LOGIN, with its password)");
	cr_assert_str_eq(
	    d5, "grant role P_a_own to the admin P_admin, so that it can create and manage its database");
	cr_assert_null(r->steps[0].database);
	cr_assert_str_eq(r->steps[22].role, N("b_own"));
	free(d0);
	free(d5);
	free(n);
	free(got);
	free(plain);
	fl_provision_result_free(r);

	/* then for real, and the dry run after it has nothing to do */
	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 26);
	cr_assert_eq(fx_pw_calls, 2);
	fl_provision_result_free(r);
	r = provision(d, (fl_provision_opts){.dry_run = true});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

Test(provision, least_privilege_for_owners_readers_and_public)
{
	fl_provision_desired *d = desired3();
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	cr_assert_gt(r->nsteps, 0);
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	fl_provision_result_free(r);

	/* the owners: log in to their own database and create tables there */
	char *why = NULL;
	PGconn *a = login(N("a"), N("a_own"), NULL, &why);
	cr_assert_not_null(a, "a_own cannot log in to a: %s", why);
	cr_assert_str_eq(try_sql(a, "CREATE TABLE t (id int)"), "");
	cr_assert_str_eq(try_sql(a, "INSERT INTO t VALUES (1)"), "");
	PGconn *b = login(N("b"), N("b_own"), NULL, &why);
	cr_assert_not_null(b, "b_own cannot log in to b: %s", why);
	cr_assert_str_eq(try_sql(b, "CREATE TABLE app.before (v text); INSERT INTO app.before VALUES ('x')"),
	                 "");
	cr_assert_str_eq(try_sql(b, "CREATE SEQUENCE app.s"), "");

	/* a reads b: it can connect and SELECT, nothing more */
	PGconn *ab = login(N("b"), N("a_own"), NULL, &why);
	cr_assert_not_null(ab, "a_own cannot read b: %s", why);
	cr_assert_str_eq(try_sql(ab, "SELECT * FROM app.before"), "");
	cr_assert_str_eq(try_sql(ab, "SELECT nextval('app.s')"), "42501");
	cr_assert_str_eq(try_sql(ab, "SELECT last_value FROM app.s"), "");
	cr_assert_str_eq(try_sql(ab, "INSERT INTO app.before VALUES ('y')"), "42501");
	cr_assert_str_eq(try_sql(ab, "UPDATE app.before SET v = 'z'"), "42501");
	cr_assert_str_eq(try_sql(ab, "DELETE FROM app.before"), "42501");
	cr_assert_str_eq(try_sql(ab, "TRUNCATE app.before"), "42501");
	cr_assert_str_eq(try_sql(ab, "CREATE TABLE app.mine (id int)"), "42501");
	cr_assert_str_eq(try_sql(ab, "CREATE TABLE public.mine (id int)"), "42501");
	cr_assert_str_eq(try_sql(ab, "CREATE TEMP TABLE mine (id int)"), "42501");
	cr_assert_str_eq(try_sql(ab, "CREATE SCHEMA mine"), "42501");

	/* a table b's owner creates later is readable without another provision (default privileges) */
	cr_assert_str_eq(try_sql(b, "CREATE TABLE app.later (v text); INSERT INTO app.later VALUES ('l')"),
	                 "");
	cr_assert_str_eq(try_sql(ab, "SELECT * FROM app.later"), "");
	cr_assert_str_eq(try_sql(ab, "INSERT INTO app.later VALUES ('no')"), "42501");

	/* b does not read a, c and the others do not reach a or b; PUBLIC connects nowhere */
	PGconn *x = login(N("a"), N("b_own"), NULL, &why);
	cr_assert_null(x);
	cr_assert(th_contains(why, "permission denied for database"), "%s", why);
	free(why);
	x = login(N("a"), N("c_own"), NULL, &why);
	cr_assert_null(x);
	free(why);
	x = login(N("b"), N("bq"), NULL, &why);
	cr_assert_null(x);
	free(why);
	PGconn *su = th_connect(fx_db);
	char sql[256];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_nobody\" LOGIN", fx_p);
	th_exec(su, sql);
	PQfinish(su);
	const char *dbs[] = {N("a"), N("b"), N("c")};
	for (size_t i = 0; i < 3; i++) {
		x = login(dbs[i], N("nobody"), NULL, &why);
		cr_assert_null(x, "PUBLIC can connect to %s", dbs[i]);
		cr_assert(th_contains(why, "permission denied for database"), "%s", why);
		free(why);
	}

	/* the extra role reads c */
	PGconn *cown = login(N("c"), N("c_own"), NULL, &why);
	cr_assert_not_null(cown);
	cr_assert_str_eq(try_sql(cown, "CREATE TABLE m (v int); INSERT INTO m VALUES (7)"), "");
	PGconn *bq = login(N("c"), N("bq"), NULL, &why);
	cr_assert_not_null(bq, "%s", why);
	cr_assert_str_eq(try_sql(bq, "SELECT * FROM m"), "");
	cr_assert_str_eq(try_sql(bq, "DELETE FROM m"), "42501");

	/* the migrator: SET ROLE owner, and what it creates belongs to the owner */
	PGconn *mig = login(N("a"), N("mig"), NULL, &why);
	cr_assert_not_null(mig, "%s", why);
	snprintf(sql, sizeof(sql), "SET ROLE \"%s_a_own\"; CREATE TABLE by_migration (id int); RESET ROLE",
	         fx_p);
	cr_assert_str_eq(try_sql(mig, sql), "");
	char *owner = su_query(N("a"), "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = "
	                               "'by_migration'");
	cr_assert_str_eq(owner, N("a_own"));
	free(owner);
	/* password verifiers, never clear text */
	snprintf(
	    sql, sizeof(sql),
	    "SELECT string_agg(rolname || '=' || left(coalesce(rolpassword, '-'), 14), ',' ORDER BY rolname) "
	    "FROM pg_authid WHERE rolname LIKE '%s\\_%%'",
	    fx_p);
	char *pws = su_query(fx_db, sql), *plain = unprefix(pws);
	cr_assert_str_eq(
	    plain, "P_a_own=SCRAM-SHA-256$,P_a_ro=-,P_admin=-,P_b_own=SCRAM-SHA-256$,P_b_ro=-,"
	           "P_bq=SCRAM-SHA-256$,P_c_own=SCRAM-SHA-256$,P_c_ro=-,P_mig=SCRAM-SHA-256$,P_nobody=-");
	free(pws);
	free(plain);

	/* the second run has nothing to do, also with tables, sequences and data in place */
	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "second run:\n%s", all_steps(r));
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	fl_provision_result_free(r);

	PQfinish(a);
	PQfinish(b);
	PQfinish(ab);
	PQfinish(cown);
	PQfinish(bq);
	PQfinish(mig);
	fl_provision_desired_free(d);
}

Test(provision, tables_from_before_are_granted_and_sequences_too)
{
	fl_provision_desired *d = desired3();
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	fl_provision_result_free(r);
	/* objects made while the default privileges were missing (e.g. by an older tool) */
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SET ROLE \"%s_b_own\"; ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE SELECT ON TABLES FROM "
	         "\"%s_b_ro\"; CREATE TABLE app.old (id serial); RESET ROLE",
	         fx_p, fx_p);
	PGconn *su = th_connect(N("b"));
	th_exec(su, sql);
	PQfinish(su);
	r = provision(d, (fl_provision_opts){0});
	char *got = all_steps(r), *plain = unprefix(got);
	cr_assert_str_eq(
	    plain, "[_b] GRANT SELECT ON ALL TABLES IN SCHEMA \"app\" TO \"P_b_ro\"\n"
	           "[_b] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_b_own\" IN SCHEMA \"app\" GRANT SELECT ON "
	           "TABLES TO \"P_b_ro\"\n");
	free(got);
	free(plain);
	fl_provision_result_free(r);
	char *why = NULL;
	PGconn *ab = login(N("b"), N("a_own"), NULL, &why);
	cr_assert_not_null(ab, "%s", why);
	cr_assert_str_eq(try_sql(ab, "SELECT * FROM app.old"), "");
	cr_assert_str_eq(try_sql(ab, "SELECT last_value FROM app.old_id_seq"), "");
	PQfinish(ab);
	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

Test(provision, extra_privileges_are_warnings_until_pruned)
{
	fl_provision_desired *d = desired3();
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	fl_provision_result_free(r);
	PGconn *su = th_connect(fx_db);
	char sql[1024];
	snprintf(
	    sql, sizeof(sql),
	    "CREATE ROLE \"%1$s_nobody\" LOGIN; GRANT \"%1$s_a_own\" TO \"%1$s_nobody\"; "
	    "GRANT \"%1$s_b_ro\" TO \"%1$s_c_own\"; GRANT CONNECT ON DATABASE \"%1$s_b\" TO \"%1$s_nobody\"; "
	    "GRANT TEMPORARY ON DATABASE \"%1$s_b\" TO \"%1$s_b_ro\"; ALTER ROLE \"%1$s_bq\" CREATEDB",
	    fx_p);
	th_exec(su, sql);
	PQfinish(su);
	su = th_connect(N("b"));
	snprintf(
	    sql, sizeof(sql),
	    "SET ROLE \"%1$s_b_own\"; CREATE TABLE app.t (id int); "
	    "GRANT INSERT, UPDATE ON app.t TO \"%1$s_b_ro\"; GRANT SELECT ON app.t TO \"%1$s_b_ro\" WITH "
	    "GRANT OPTION; GRANT SELECT ON app.t TO \"%1$s_mig\"; GRANT CREATE ON SCHEMA app TO "
	    "\"%1$s_b_ro\"; ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT "
	    "DELETE ON TABLES TO \"%1$s_a_own\"; RESET ROLE",
	    fx_p);
	th_exec(su, sql);
	PQfinish(su);

	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	char *w = all_warnings(r), *plain = unprefix(w);
	const char *tail = ", which the manifest does not ask for (--prune revokes it)\n";
	char want[4096];
	snprintf(want, sizeof(want),
	         "role P_bq has CREATEDB%1$s"
	         "role P_b_ro has TEMPORARY on database P_b%1$s"
	         "role P_nobody has CONNECT on database P_b%1$s"
	         "role P_nobody is a member of role P_a_own%1$s"
	         "role P_c_own is a member of role P_b_ro%1$s"
	         "role P_b_ro has CREATE on schema app in database P_b%1$s"
	         "role P_b_ro has INSERT, UPDATE on table app.t in database P_b%1$s"
	         "role P_b_ro may grant SELECT on table app.t in database P_b to others%1$s"
	         "role P_mig has SELECT on table app.t in database P_b%1$s"
	         "role P_a_own has DELETE on the tables P_b_own creates in schema app of database P_b%1$s",
	         tail);
	cr_assert_str_eq(plain, want);
	free(w);
	free(plain);
	fl_provision_result_free(r);
	/* nothing was revoked */
	const char *privs_of =
	    "SELECT string_agg(pg_get_userbyid(a.grantee) || ':' || a.privilege_type || "
	    "CASE WHEN a.is_grantable THEN '*' ELSE '' END, ',' ORDER BY 1) FROM pg_class c, "
	    "aclexplode(c.relacl) a WHERE c.relname = 't' AND a.grantee <> c.relowner";
	char *v = su_query(N("b"), privs_of), *vp = unprefix(v);
	cr_assert_str_eq(vp, "P_b_ro:INSERT,P_b_ro:SELECT*,P_b_ro:UPDATE,P_mig:SELECT");
	free(vp);
	free(v);

	r = provision(d, (fl_provision_opts){.prune = true});
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	char *got = all_steps(r);
	plain = unprefix(got);
	cr_assert_str_eq(
	    plain, "ALTER ROLE \"P_bq\" NOCREATEDB\n"
	           "REVOKE TEMPORARY ON DATABASE \"P_b\" FROM \"P_b_ro\"\n"
	           "REVOKE CONNECT ON DATABASE \"P_b\" FROM \"P_nobody\"\n"
	           "REVOKE \"P_a_own\" FROM \"P_nobody\"\n"
	           "REVOKE \"P_b_ro\" FROM \"P_c_own\"\n"
	           "[_b] REVOKE CREATE ON SCHEMA \"app\" FROM \"P_b_ro\"\n"
	           "[_b] REVOKE INSERT, UPDATE ON TABLE \"app\".\"t\" FROM \"P_b_ro\"\n"
	           "[_b] REVOKE GRANT OPTION FOR SELECT ON TABLE \"app\".\"t\" FROM \"P_b_ro\"\n"
	           "[_b] REVOKE SELECT ON TABLE \"app\".\"t\" FROM \"P_mig\"\n"
	           "[_b] ALTER DEFAULT PRIVILEGES FOR ROLE \"P_b_own\" IN SCHEMA \"app\" REVOKE DELETE ON "
	           "TABLES FROM \"P_a_own\"\n");
	char *d0 = unprefix(r->steps[0].desc);
	cr_assert_str_eq(d0, "prune: role P_bq has CREATEDB");
	free(d0);
	free(got);
	free(plain);
	fl_provision_result_free(r);
	v = su_query(N("b"), privs_of);
	vp = unprefix(v);
	cr_assert_str_eq(vp, "P_b_ro:SELECT");
	free(vp);
	free(v);

	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

Test(provision, public_connect_is_taken_away_and_said_so)
{
	fl_provision_desired *d = desired3();
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	fl_provision_result_free(r);
	char sql[256];
	snprintf(sql, sizeof(sql), "GRANT CONNECT ON DATABASE \"%s_c\" TO PUBLIC", fx_p);
	PGconn *su = th_connect(fx_db);
	th_exec(su, sql);
	PQfinish(su);
	/* databases made before PostgreSQL 15 let PUBLIC create in schema public; so did someone here */
	const char *dbs[] = {N("a"), N("b")};
	for (int i = 0; i < 2; i++) {
		su = th_connect(dbs[i]);
		th_exec(su, "GRANT CREATE ON SCHEMA public TO PUBLIC");
		PQfinish(su);
	}
	r = provision(d, (fl_provision_opts){0});
	char *got = all_steps(r), *plain = unprefix(got);
	cr_assert_str_eq(plain, "REVOKE ALL ON DATABASE \"P_c\" FROM PUBLIC\n"
	                        "[_a] REVOKE CREATE ON SCHEMA public FROM PUBLIC\n"
	                        "[_b] REVOKE CREATE ON SCHEMA public FROM PUBLIC\n");
	char *desc = unprefix(r->steps[0].desc);
	cr_assert_str_eq(desc, "take PUBLIC's access to database P_c away");
	cr_assert_str_eq(r->steps[1].desc, "stop PUBLIC from creating objects in schema public");
	cr_assert_eq(r->nwarnings, 0, "%s", all_warnings(r));
	free(desc);
	free(got);
	free(plain);
	fl_provision_result_free(r);
	char *why = NULL;
	PGconn *c = login(N("c"), N("a_own"), NULL, &why);
	cr_assert_null(c);
	free(why);
	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

Test(provision, reset_passwords_sets_new_verifiers)
{
	fl_provision_desired *d = desired3();
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	fl_provision_result_free(r);
	cr_assert_eq(fx_pw_calls, 5);
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT rolpassword FROM pg_authid WHERE rolname = '%s_a_own'", fx_p);
	char *before = su_query(fx_db, sql);
	r = provision(d, (fl_provision_opts){.reset_passwords = true});
	cr_assert_eq(r->nsteps, 5);
	cr_assert_eq(count_steps(r, "ALTER ROLE "), 5);
	for (size_t i = 0; i < r->nsteps; i++) {
		cr_assert(th_contains(r->steps[i].sql, " PASSWORD '<scram-sha-256 verifier>'"), "%s",
		          r->steps[i].sql);
		cr_assert(th_contains(r->steps[i].desc, "set the password of role"));
	}
	fl_provision_result_free(r);
	cr_assert_eq(fx_pw_calls, 10);
	char *after = su_query(fx_db, sql);
	cr_assert(strncmp(after, "SCRAM-SHA-256$4096:", 19) == 0, "%s", after);
	cr_assert_str_neq(before, after); /* a new salt */
	free(before);
	free(after);
	fl_provision_desired_free(d);
}

static fl_error *pw_fails(void *ctx, const char *role, char **out)
{
	(void)ctx;
	*out = NULL;
	return fl_error_new("password of %s: <env NOPE> is not set", role);
}

Test(provision, a_password_that_cannot_be_had_stops_before_the_role)
{
	fl_provision_desired *d = fl_provision_desired_new();
	fl_provision_add_role(d, N("a_own"), true, pw_fails, NULL);
	fl_provision_add_service(d, "a", N("a"), N("a_own"), NULL);
	fl_pg_params p = admin_params();
	fl_provision_target t = {.admin = &p, .maintenance_db = fx_db};
	fl_provision_result *r = NULL;
	fl_error *err = fl_provision_run(d, &t, NULL, &r);
	cr_assert_not_null(err);
	char *m = unprefix(err->msg);
	cr_assert_str_eq(m, "password of P_a_own: <env NOPE> is not set");
	free(m);
	cr_assert_eq(r->nsteps, 0);
	fl_error_free(err);
	fl_provision_result_free(r);
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = '%s_a_own'", fx_p);
	char *n = su_query(fx_db, sql);
	cr_assert_str_eq(n, "0");
	free(n);
	fl_provision_desired_free(d);
}

Test(provision, a_failing_statement_names_its_step)
{
	fl_provision_desired *d = desired3();
	/* a database of that name owned by someone the admin cannot act for */
	char sql[256];
	PGconn *su = th_connect(fx_db);
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_other\"", fx_p);
	th_exec(su, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%1$s_c\" OWNER \"%1$s_other\"", fx_p);
	th_exec(su, sql);
	PQfinish(su);
	fl_pg_params p = admin_params();
	fl_provision_target t = {.admin = &p, .maintenance_db = fx_db};
	fl_provision_result *r = NULL;
	fl_error *err = fl_provision_run(d, &t, NULL, &r);
	cr_assert_not_null(err);
	char *m = unprefix(err->msg);
	cr_assert_str_eq(
	    m, "make P_c_own the owner of database P_c (was P_other): ERROR 42501: must be owner of "
	       "database P_c");
	cr_assert_eq(err->kind, FL_EDB);
	free(m);
	/* the steps up to the failing one */
	char *last = unprefix(r->steps[r->nsteps - 1].sql);
	cr_assert_str_eq(last, "ALTER DATABASE \"P_c\" OWNER TO \"P_c_own\"");
	free(last);
	fl_error_free(err);
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

/* ---- concurrency ---- */

struct par_arg {
	const fl_provision_desired *d;
	fl_provision_result *r;
	fl_error *err;
};

static void *par_run(void *p)
{
	struct par_arg *a = p;
	fl_pg_params prm = admin_params();
	fl_provision_target t = {.admin = &prm, .maintenance_db = fx_db};
	fl_provision_opts o = {0};
	a->err = fl_provision_run(a->d, &t, &o, &a->r);
	return NULL;
}

Test(provision, twenty_concurrent_runs_converge_without_errors)
{
	fl_provision_desired *d = desired3();
	enum { N_RUNS = 20 };
	struct par_arg args[N_RUNS];
	pthread_t th[N_RUNS];
	for (int i = 0; i < N_RUNS; i++) {
		args[i] = (struct par_arg){.d = d};
		cr_assert_eq(pthread_create(&th[i], NULL, par_run, &args[i]), 0);
	}
	int creates = 0, total = 0;
	for (int i = 0; i < N_RUNS; i++) {
		pthread_join(th[i], NULL);
		char *m = args[i].err ? fl_error_format(args[i].err) : NULL;
		cr_assert_null(args[i].err, "run %d failed: %s", i, m);
		creates += count_steps(args[i].r, "CREATE ");
		total += (int)args[i].r->nsteps;
		cr_assert_eq(args[i].r->nwarnings, 0);
		fl_provision_result_free(args[i].r);
	}
	/* every object was made exactly once: 5 roles, 3 groups, 3 databases, 1 schema */
	cr_assert_eq(creates, 12);
	fl_provision_result *r = provision(d, (fl_provision_opts){0});
	cr_assert_eq(r->nsteps, 0, "%s", all_steps(r));
	fl_provision_result_free(r);
	/* the same total as one run from scratch would have: nothing ran twice */
	drop_prefixed(NULL, "postgres");
	PGconn *su = th_connect(fx_db);
	char sql[256];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_admin\" LOGIN CREATEROLE CREATEDB", fx_p);
	th_exec(su, sql);
	PQfinish(su);
	r = provision(d, (fl_provision_opts){0});
	cr_assert_eq((int)r->nsteps, total);
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
}

/* ---- passwords, rotation, logs: a private server that wants SCRAM passwords ---- */

static char *start_scram_server(void)
{
	fx_pgdir = th_tmpdir();
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof(cmd), "FLOTILLA_PG_AUTH=scram sh %s/ci/pg start %s/pg", th_top(), fx_pgdir);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "private server: %s", out);
	free(out);
	char *host = malloc(strlen(fx_pgdir) + 4);
	sprintf(host, "%s/pg", fx_pgdir);
	return host;
}

static PGconn *scram_su(const char *host, const char *db)
{
	const char *keys[] = {"host", "dbname", "user", NULL};
	const char *vals[] = {host, db, "postgres", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	return c;
}

static fl_error *pw_known(void *ctx, const char *role, char **out)
{
	(void)ctx;
	char *p;
	if (asprintf(&p, "Known-%s-secret-8Hq2", role + strlen(fx_p) + 1) < 0)
		abort();
	*out = p;
	return NULL;
}

static bool can_login(const char *db, const char *user, const char *password)
{
	char *why = NULL;
	PGconn *c = login(db, user, password, &why);
	free(why);
	if (!c)
		return false;
	PQfinish(c);
	return true;
}

Test(provision, scram_passwords_rotate_and_never_reach_the_log)
{
	char *host = start_scram_server();
	fx_host = host;
	PGconn *su = scram_su(host, "postgres");
	/* the admin's own password, also only as a verifier */
	const char *admin_pw = "Admin-pw-Xk29dd";
	char *v = PQencryptPasswordConn(su, admin_pw, N("admin"), "scram-sha-256");
	char sql[512];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_admin\" LOGIN CREATEROLE CREATEDB PASSWORD '%s'", fx_p,
	         v);
	PQfreemem(v);
	th_exec(su, sql);
	th_exec(su, "ALTER SYSTEM SET log_statement = 'all'");
	th_exec(su, "SELECT pg_reload_conf()");
	PQfinish(su);
	/* the reload reaches new backends once the postmaster has read it */
	char *ls = NULL;
	for (int i = 0; i < 50; i++) {
		free(ls);
		su = scram_su(host, "postgres");
		ls = th_query1(su, "SHOW log_statement");
		PQfinish(su);
		if (strcmp(ls, "all") == 0)
			break;
		usleep(100000);
	}
	cr_assert_str_eq(ls, "all");
	free(ls);

	fl_provision_desired *d = fl_provision_desired_new();
	fl_provision_add_role(d, N("a_own"), true, pw_known, NULL);
	fl_provision_add_role(d, N("mig"), true, pw_known, NULL);
	fl_provision_set_migrator(d, N("mig"));
	fl_provision_add_service(d, "a", N("a"), N("a_own"), NULL);
	fl_pg_params p = {.host = host, .user = N("admin"), .password = admin_pw};
	fl_provision_target t = {.admin = &p, .maintenance_db = "postgres"};
	fl_provision_result *r = NULL;
	fl_error *err = fl_provision_run(d, &t, NULL, &r);
	char *m = err ? fl_error_format(err) : NULL;
	cr_assert_null(err, "%s", m);
	fl_provision_result_free(r);
	err = fl_provision_run(d, &t, &(fl_provision_opts){.reset_passwords = true}, &r);
	cr_assert_null(err);
	cr_assert_eq(r->nsteps, 2);
	fl_provision_result_free(r);

	char pw_a[128], pw_mig[128];
	snprintf(pw_a, sizeof(pw_a), "Known-a_own-secret-8Hq2");
	snprintf(pw_mig, sizeof(pw_mig), "Known-mig-secret-8Hq2");
	cr_assert(can_login(N("a"), N("a_own"), pw_a));
	cr_assert(can_login(N("a"), N("mig"), pw_mig));
	cr_assert_not(can_login(N("a"), N("a_own"), "wrong"));

	/* a sink that fails: the old password keeps working, the error says why */
	char sink[2048];
	snprintf(sink, sizeof(sink), "cat >/dev/null; echo 'secret manager says no' >&2; exit 3");
	err = fl_provision_rotate(&t, N("a_own"), sink, 0);
	cr_assert_not_null(err);
	m = unprefix(err->msg);
	cr_assert_str_eq(m, "role P_a_own keeps its old password: password sink exited with status 3: secret "
	                    "manager says no");
	cr_assert_eq(err->kind, FL_EDB);
	free(m);
	fl_error_free(err);
	cr_assert(can_login(N("a"), N("a_own"), pw_a));

	/* a sink that echoes what it got to stderr and fails: the password is cut out of the message */
	err = fl_provision_rotate(&t, N("a_own"), "cat >&2; exit 1", 0);
	cr_assert_not_null(err);
	cr_assert(th_contains(err->msg, "password sink exited with status 1: <password>"), "%s", err->msg);
	fl_error_free(err);
	cr_assert(can_login(N("a"), N("a_own"), pw_a));

	/* a sink that works: the new password works, the old one does not; argv and env never see it */
	char file[512], envfile[512];
	snprintf(file, sizeof(file), "%s/new-password", fx_pgdir);
	snprintf(envfile, sizeof(envfile), "%s/sink-env", fx_pgdir);
	snprintf(sink, sizeof(sink), "cat > '%s'; { env; echo \"args: $0 $*\"; } > '%s'", file, envfile);
	err = fl_provision_rotate(&t, N("a_own"), sink, 0);
	m = err ? fl_error_format(err) : NULL;
	cr_assert_null(err, "%s", m);
	char *newpw = th_read(file);
	cr_assert_eq(strlen(newpw), FL_PROVISION_PASSWORD_LEN, "%s", newpw);
	cr_assert(can_login(N("a"), N("a_own"), newpw));
	cr_assert_not(can_login(N("a"), N("a_own"), pw_a));
	char *env = th_read(envfile);
	cr_assert_not(th_contains(env, newpw));
	free(env);

	/* a sink that hangs is killed at its time limit, and nothing changes */
	err = fl_provision_rotate(&t, N("a_own"), "cat >/dev/null; sleep 30", 300);
	cr_assert_not_null(err);
	m = unprefix(err->msg);
	cr_assert_str_eq(
	    m, "role P_a_own keeps its old password: password sink did not finish within 300 ms and "
	       "was killed");
	free(m);
	fl_error_free(err);
	cr_assert(can_login(N("a"), N("a_own"), newpw));

	/* rotating a role that is not there asks for provision first */
	err = fl_provision_rotate(&t, N("ghost"), "cat", 0);
	cr_assert_not_null(err);
	m = unprefix(err->msg);
	cr_assert_str_eq(m, "role P_ghost does not exist (run 'flotilla provision' first)");
	free(m);
	fl_error_free(err);

	/* the server log saw every statement, verifiers, but never a password */
	char logpath[512];
	snprintf(logpath, sizeof(logpath), "%s/pg/server.log", fx_pgdir);
	char *log = th_read(logpath);
	cr_assert(th_contains(log, "PASSWORD 'SCRAM-SHA-256$4096:"),
	          "log_statement did not log the ALTER ROLE");
	const char *secrets[] = {pw_a, pw_mig, admin_pw, newpw};
	for (size_t i = 0; i < 4; i++)
		cr_assert_not(th_contains(log, secrets[i]), "the server log holds password %zu", i);
	free(log);
	free(newpw);
	fl_provision_desired_free(d);
	drop_prefixed(host, "postgres");
	fx_host = NULL;
	free(host);
}

/* ---- the password generator and the sink on their own ---- */

Test(provision, forty_url_safe_characters_without_bias)
{
	int counts[256] = {0};
	char *prev = NULL;
	for (int i = 0; i < 2000; i++) {
		char *pw = NULL;
		cr_assert_null(fl_provision_password_new(&pw));
		cr_assert_eq(strlen(pw), 40);
		for (const char *c = pw; *c; c++) {
			cr_assert(
			    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c),
			    "bad character %c", *c);
			counts[(unsigned char)*c]++;
		}
		if (prev)
			cr_assert_str_neq(prev, pw);
		free(prev);
		prev = pw;
	}
	free(prev);
	/* 80000 draws over 64 symbols: 1250 each; a biased generator lands far outside +-20 % */
	for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"; *c; c++)
		cr_assert(counts[(unsigned char)*c] > 1000 && counts[(unsigned char)*c] < 1500, "%c: %d", *c,
		          counts[(unsigned char)*c]);
}

Test(provision, sink_gets_the_data_on_stdin_only)
{
	char *dir = th_tmpdir();
	char sink[1024];
	snprintf(sink, sizeof(sink), "cat > %s/got; echo \"$0|$*\" > %s/args; echo to-stdout", dir, dir);
	cr_assert_null(fl_provision_sink_run(sink, "s3cr3t-value", 12, 0));
	char path[600];
	snprintf(path, sizeof(path), "%s/got", dir);
	char *got = th_read(path);
	cr_assert_str_eq(got, "s3cr3t-value");
	free(got);
	snprintf(path, sizeof(path), "%s/args", dir);
	got = th_read(path);
	cr_assert_str_eq(got, "sh|\n");
	free(got);
	free(dir);
}

Test(provision, sink_failures_are_named)
{
	fl_error *err = fl_provision_sink_run("exit 7", "x", 1, 0);
	cr_assert_not_null(err);
	/* the sink may exit before reading: either way it failed with its status */
	cr_assert_str_eq(err->msg, "password sink exited with status 7");
	fl_error_free(err);
	err = fl_provision_sink_run("cat >/dev/null; kill -TERM $$", "x", 1, 0);
	cr_assert_not_null(err);
	cr_assert_str_eq(err->msg, "password sink was killed by signal 15");
	fl_error_free(err);
	err = fl_provision_sink_run(
	    "cat >/dev/null; printf 'line one\\n\\nline two with pw-XYZ\\n' >&2; exit 1", "pw-XYZ", 6, 0);
	cr_assert_str_eq(err->msg, "password sink exited with status 1: line one; line two with <password>");
	fl_error_free(err);
	err = fl_provision_sink_run("", "x", 1, 0);
	cr_assert_str_eq(err->msg, "no password sink command");
	fl_error_free(err);
}

/* ---- the program: provision and rotate from a manifest ---- */

/*
 * A manifest with services a (reads b, sink sink_a) and b (schema app,
 * sink sink_b), the test's admin and migrator; host NULL: libpq's
 * environment (the shared server). With passwords, every secret comes from
 * an environment variable T_*_PW.
 */
static char *write_manifest(const char *host, bool passwords, const char *sink_a, const char *sink_b)
{
	char *dir = th_tmpdir();
	th_write(dir, "svc/a/.keep", "");
	th_write(dir, "svc/b/.keep", "");
	char *text = NULL;
	char hostline[600] = "";
	if (host)
		snprintf(hostline, sizeof(hostline), "host = \"%s\"\n", host);
	int n = asprintf(&text,
	                 "version = 1\nproject = \"t\"\n\n[environments.t]\n%s"
	                 "maintenance_db = \"%s\"\n"
	                 "admin = { user = \"%s_admin\"%s }\n"
	                 "migrator = { user = \"%s_mig\"%s }\n"
	                 "service_passwords = %s\n\n"
	                 "[defaults]\ndatabase = \"%s_${service}\"\nowner = \"%s_${service}_own\"\n"
	                 "migrations = \"svc/${service}\"\n\n"
	                 "[services.a]\nreads = [\"b\"]\n%s%s%s\n"
	                 "[services.b]\nschema = \"app\"\n%s%s%s\n",
	                 hostline, host ? "postgres" : fx_db, fx_p,
	                 passwords ? ", password = { env = \"T_ADMIN_PW\" }" : "", fx_p,
	                 passwords ? ", password = { env = \"T_MIG_PW\" }" : "", passwords ? "true" : "false",
	                 fx_p, fx_p, passwords ? "password = { env = \"T_A_PW\" }\n" : "",
	                 sink_a ? "password_sink = \"" : "", sink_a ? sink_a : "",
	                 passwords ? "password = { env = \"T_B_PW\" }\n" : "",
	                 sink_b ? "password_sink = \"" : "", sink_b ? sink_b : "");
	cr_assert_gt(n, 0);
	/* close the sink strings */
	char *fixed = calloc(1, strlen(text) + 8);
	const char *src = text;
	char *w = fixed;
	while (*src) {
		if (strncmp(src, "password_sink = \"", 17) == 0) {
			memcpy(w, src, 17);
			w += 17;
			src += 17;
			while (*src && *src != '\n')
				*w++ = *src++;
			*w++ = '"';
			continue;
		}
		*w++ = *src++;
	}
	th_write(dir, "flotilla.toml", fixed);
	free(text);
	free(fixed);
	return dir;
}

static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

TestSuite(par_provision, .init = fx_setup, .fini = fx_teardown, .timeout = 300);

Test(par_provision, twenty_programs_at_once_end_in_one_state)
{
	char *dir = write_manifest(NULL, false, NULL, NULL);
	char mpath[600];
	snprintf(mpath, sizeof(mpath), "%s/flotilla.toml", dir);
	enum { N_RUNS = 20 };
	pid_t pids[N_RUNS];
	char outs[N_RUNS][700], errs[N_RUNS][700];
	for (int i = 0; i < N_RUNS; i++) {
		snprintf(outs[i], sizeof(outs[i]), "%s/out-%d", dir, i);
		snprintf(errs[i], sizeof(errs[i]), "%s/err-%d", dir, i);
		pids[i] =
		    th_spawn(NULL, NULL, outs[i], errs[i],
		             (const char *const[]){"flotilla", "-m", mpath, "-e", "t", "provision", NULL});
	}
	int created = 0, no_changes = 0;
	for (int i = 0; i < N_RUNS; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) < 0)
			;
		char *o = th_read(outs[i]), *e = th_read(errs[i]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run %d: status %d\n%s\n%s", i, st, o, e);
		cr_assert_str_empty(e, "run %d said on stderr: %s", i, e);
		created += count_lines_with(o, "create role ");
		no_changes += strcmp(o, "no changes\n") == 0;
		free(o);
		free(e);
	}
	/* mig, a_own, b_own, a_ro, b_ro: each created by exactly one of the runs */
	cr_assert_eq(created, 5);
	cr_assert_geq(no_changes, 1);
	char *out = NULL, *err = NULL;
	int rc =
	    th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "provision", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "no changes\n");
	cr_assert_str_empty(err);
	free(out);
	free(err);
	/* and the state is the one asked for */
	char *why = NULL;
	PGconn *c = login(N("b"), N("a_own"), NULL, &why);
	cr_assert_not_null(c, "%s", why);
	PQfinish(c);
	c = login(N("a"), N("b_own"), NULL, &why);
	cr_assert_null(c);
	free(why);
	free(dir);
}

Test(provision, program_usage_and_dry_run)
{
	char *dir = write_manifest(NULL, false, NULL, NULL);
	char *out = NULL, *err = NULL;
	int rc = th_run(dir, NULL, &out, &err,
	                (const char *const[]){"flotilla", "-e", "t", "provision", "--dry-run", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	char *plain = unprefix(out);
	cr_assert(strncmp(plain,
	                  "-- create role P_mig (LOGIN)\nCREATE ROLE \"P_mig\" LOGIN;\n"
	                  "-- create role P_a_own (LOGIN)\nCREATE ROLE \"P_a_own\" LOGIN;\n",
	                  strlen("-- create role P_mig (LOGIN)\nCREATE ROLE \"P_mig\" LOGIN;\n"
	                         "-- create role P_a_own (LOGIN)\nCREATE ROLE \"P_a_own\" LOGIN;\n")) == 0,
	          "%s", plain);
	cr_assert(th_contains(plain,
	                      "\n\\connect \"P_b\"\nSET ROLE \"P_b_own\";\n-- create schema app owned by "
	                      "P_b_own\nCREATE SCHEMA IF NOT EXISTS \"app\" AUTHORIZATION \"P_b_own\";\n"),
	          "%s", plain);
	cr_assert_str_empty(err);
	free(plain);
	free(out);
	free(err);
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname LIKE '%s\\_%%'", fx_p);
	char *n = su_query(fx_db, sql);
	cr_assert_str_eq(n, "1");
	free(n);

	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "provision", "extra", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err, "flotilla: unexpected argument 'extra'\ntry 'flotilla help provision'\n");
	free(out);
	free(err);
	rc = th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "rotate", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err, "flotilla: name the services to rotate (e.g. 'flotilla rotate auth')\n"
	                      "try 'flotilla help rotate'\n");
	free(out);
	free(err);
	rc = th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "rotate", "a", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err,
	                 "flotilla: environment t sets service_passwords = false: there is no password to "
	                 "rotate\n");
	free(out);
	free(err);

	/* for real: descriptions as they run, then "no changes" */
	rc = th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "provision", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	plain = unprefix(out);
	cr_assert(strncmp(plain, "create role P_mig (LOGIN)\ncreate role P_a_own (LOGIN)\n", 52) == 0, "%s",
	          plain);
	cr_assert(th_contains(plain, "\nP_b: create schema app owned by P_b_own\n"), "%s", plain);
	free(plain);
	free(out);
	free(err);
	/* an extra privilege: a warning on stderr, and still no changes */
	PGconn *su = th_connect(fx_db);
	snprintf(sql, sizeof(sql), "GRANT TEMPORARY ON DATABASE \"%s_a\" TO \"%s_mig\"", fx_p, fx_p);
	th_exec(su, sql);
	PQfinish(su);
	rc = th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "provision", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "no changes\n");
	plain = unprefix(err);
	cr_assert_str_eq(plain,
	                 "warning: role P_mig has TEMPORARY on database P_a, which the manifest does not ask "
	                 "for (--prune revokes it)\n");
	free(plain);
	free(out);
	free(err);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "provision", "--prune", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	plain = unprefix(out);
	cr_assert_str_eq(plain, "prune: role P_mig has TEMPORARY on database P_a\n");
	cr_assert_str_empty(err);
	free(plain);
	free(out);
	free(err);
	free(dir);
}

Test(provision, program_leaves_no_password_in_output_or_log)
{
	char *host = start_scram_server();
	fx_host = host;
	PGconn *su = scram_su(host, "postgres");
	const char *admin_pw = "T-admin-pw-3kd8Wq";
	char *v = PQencryptPasswordConn(su, admin_pw, N("admin"), "scram-sha-256");
	char sql[512];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_admin\" LOGIN CREATEROLE CREATEDB PASSWORD '%s'", fx_p,
	         v);
	PQfreemem(v);
	th_exec(su, sql);
	th_exec(su, "ALTER SYSTEM SET log_statement = 'all'");
	th_exec(su, "SELECT pg_reload_conf()");
	PQfinish(su);
	char *ls = NULL;
	for (int i = 0; i < 50; i++) {
		free(ls);
		su = scram_su(host, "postgres");
		ls = th_query1(su, "SHOW log_statement");
		PQfinish(su);
		if (strcmp(ls, "all") == 0)
			break;
		usleep(100000);
	}
	cr_assert_str_eq(ls, "all");
	free(ls);

	char sink_a[700];
	snprintf(sink_a, sizeof(sink_a), "cat > %s/sink-a", fx_pgdir);
	char *dir = write_manifest(host, true, sink_a, "cat >/dev/null; echo vault sealed >&2; exit 4");
	const char *pws[] = {"T-a-pw-Hy72kQ", "T-b-pw-Lm20xZ", "T-mig-pw-Pq83cV", NULL, NULL};
	const char *env[] = {"T_ADMIN_PW=T-admin-pw-3kd8Wq", "T_A_PW=T-a-pw-Hy72kQ", "T_B_PW=T-b-pw-Lm20xZ",
	                     "T_MIG_PW=T-mig-pw-Pq83cV", NULL};
	fl_buf seen;
	fl_buf_init(&seen);
	char *out = NULL, *err = NULL;
	const char *const runs[][8] = {
	    {"flotilla", "-e", "t", "provision", NULL},
	    {"flotilla", "-e", "t", "provision", "--dry-run", "--reset-passwords", NULL},
	    {"flotilla", "-e", "t", "provision", "--reset-passwords", NULL},
	    {"flotilla", "-e", "t", "rotate", "a", NULL},
	    {"flotilla", "-e", "t", "rotate", "b", NULL},
	};
	const int want_rc[] = {0, 0, 0, 0, 1};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		int rc = th_run(dir, env, &out, &err, runs[i]);
		cr_assert_eq(rc, want_rc[i], "run %zu: %s\n%s", i, out, err);
		fl_buf_puts(&seen, out);
		fl_buf_puts(&seen, err);
		if (i == 2)
			cr_assert_eq(count_lines_with(out, "set the password of role"), 3, "%s", out);
		if (i == 3) {
			char *plain = unprefix(out);
			cr_assert_str_eq(plain,
			                 "a: new password stored by the sink and set for role P_a_own\n");
			free(plain);
		}
		if (i == 4) {
			char *plain = unprefix(err);
			cr_assert_str_eq(
			    plain, "service b: role P_b_own keeps its old password: password sink exited "
			           "with status 4: vault sealed\n");
			free(plain);
		}
		free(out);
		free(err);
	}
	char path[700];
	snprintf(path, sizeof(path), "%s/sink-a", fx_pgdir);
	char *rotated = th_read(path);
	cr_assert_eq(strlen(rotated), 40);
	pws[3] = rotated;
	pws[4] = admin_pw;
	cr_assert(can_login(N("a"), N("a_own"), rotated));
	cr_assert_not(can_login(N("a"), N("a_own"), pws[0]));
	cr_assert(can_login(N("b"), N("b_own"), pws[1]));
	cr_assert(can_login(N("b"), N("a_own"), rotated)); /* a reads b */
	cr_assert(can_login(N("a"), N("mig"), pws[2]));

	snprintf(path, sizeof(path), "%s/pg/server.log", fx_pgdir);
	char *log = th_read(path);
	cr_assert(th_contains(log, "PASSWORD 'SCRAM-SHA-256$4096:"));
	for (size_t i = 0; i < 5; i++) {
		cr_assert_not(th_contains(log, pws[i]), "the server log holds password %zu", i);
		cr_assert_not(th_contains(seen.data, pws[i]), "stdout/stderr hold password %zu", i);
	}
	free(log);
	free(rotated);
	fl_buf_free(&seen);
	free(dir);
	drop_prefixed(host, "postgres");
	fx_host = NULL;
	free(host);
}

Test(provision, lock_held_elsewhere_is_waited_for_with_a_bound)
{
	/* another provisioning run holds the lock in the maintenance database */
	PGconn *other = th_connect(fx_db);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", FL_PROVISION_LOCK_KEY);
	th_exec(other, sql);
	fl_provision_desired *d = desired3();
	fl_pg_params p = admin_params();
	fl_provision_target t = {.admin = &p, .maintenance_db = fx_db};
	fl_provision_opts o = {.lock_timeout_ms = 300};
	fl_provision_result *r = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fl_error *err = fl_provision_run(d, &t, &o, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert_not_null(err);
	char *want =
	    fl_asprintf("gave up after 300 ms (migration_lock_timeout) waiting for the provision lock "
	                "(advisory lock %lld) in database %s: it is held by pid %d (application_name "
	                "\"flotilla-test\"); another flotilla is provisioning",
	                FL_PROVISION_LOCK_KEY, fx_db, PQbackendPID(other));
	cr_assert(th_contains(err->msg, want), "%s\n%s", err->msg, want);
	cr_assert_geq(ms, 300);
	cr_assert_lt(ms, 3000);
	cr_assert_eq(r->nsteps, 0, "nothing ran without the lock");
	free(want);
	fl_error_free(err);
	fl_provision_result_free(r);
	fl_provision_desired_free(d);
	PQfinish(other);
}

/* pg_stat_database.sessions of a database (counted as each session starts), read from fx_db */
static long sessions_of(const char *db)
{
	char sql[300];
	snprintf(sql, sizeof(sql), "SELECT sessions FROM pg_stat_database WHERE datname = '%s'", db);
	char *v = su_query(fx_db, sql);
	long n = v ? atol(v) : -1;
	free(v);
	return n;
}

/*
 * migrate provisions each database in that service's job: its own
 * connection reads whether the database is as desired, and only when it is
 * not is the admin's opened. With nothing to change, one session per
 * database, not two.
 */
Test(provision, migrate_checks_each_database_on_its_own_connection)
{
	char *dir = write_manifest(NULL, false, NULL, NULL);
	th_write(dir, "svc/a/V1__t.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "svc/b/V1__t.sql", "CREATE TABLE t (id int);\n");
	char *out = NULL, *err = NULL;
	int rc = th_run(dir, NULL, &out, &err,
	                (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	char *plain = unprefix(err);
	/* the database's steps are the service's lines, before its migrations */
	cr_assert(th_contains(plain, " b: provision: create schema app owned by P_b_own in P_b\n"), "%s",
	          plain);
	cr_assert(!th_contains(plain, "provision: no changes"), "%s", plain);
	free(plain);
	free(out);
	free(err);
	char db_a[96], db_b[96], sql[400];
	snprintf(db_a, sizeof(db_a), "%s_a", fx_p);
	snprintf(db_b, sizeof(db_b), "%s_b", fx_p);
	char *v = su_query(db_b, "SELECT count(*) FROM app.flyway_schema_history WHERE success");
	cr_assert_str_eq(v, "1");
	free(v);

	long a0 = sessions_of(db_a), b0 = sessions_of(db_b);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(th_contains(err, "provision: no changes\n"), "%s", err);
	cr_assert(!th_contains(err, ": provision: "), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(sessions_of(db_a) - a0, 1, "sessions in %s: %ld -> %ld", db_a, a0, sessions_of(db_a));
	cr_assert_eq(sessions_of(db_b) - b0, 1, "sessions in %s: %ld -> %ld", db_b, b0, sessions_of(db_b));

	/* a grant taken away by hand: the job opens the admin's connection, puts it back, migrates */
	PGconn *su = th_connect(db_b);
	snprintf(sql, sizeof(sql), "REVOKE USAGE ON SCHEMA app FROM \"%s_b_ro\"", fx_p);
	th_exec(su, sql);
	PQfinish(su);
	th_write(dir, "svc/b/V2__u.sql", "CREATE TABLE u (id int);\n");
	a0 = sessions_of(db_a);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	plain = unprefix(err);
	cr_assert(th_contains(plain, " b: provision: "), "%s", plain);
	cr_assert(th_contains(plain, " b: provision: let P_b_ro use schema app in P_b\n"), "%s", plain);
	cr_assert(!th_contains(plain, "provision: no changes"), "%s", plain);
	free(plain);
	free(out);
	free(err);
	snprintf(sql, sizeof(sql), "SELECT has_schema_privilege('%s_b_ro', 'app', 'USAGE')", fx_p);
	v = su_query(db_b, sql);
	cr_assert_str_eq(v, "t");
	free(v);
	v = su_query(db_b, "SELECT max(version) FROM app.flyway_schema_history WHERE success");
	cr_assert_str_eq(v, "2");
	free(v);
	cr_assert_eq(sessions_of(db_a) - a0, 1);

	/* an extra privilege: warned about once, still no changes */
	su = th_connect(db_b);
	snprintf(sql, sizeof(sql), "GRANT CREATE ON SCHEMA app TO \"%s_b_ro\"", fx_p);
	th_exec(su, sql);
	PQfinish(su);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	plain = unprefix(err);
	cr_assert(th_contains(plain, "provision: no changes\n"), "%s", plain);
	const char *w = strstr(plain, "warning: provision: ");
	cr_assert_not_null(w, "%s", plain);
	cr_assert_null(strstr(w + 1, "warning: provision: "), "%s", plain);
	cr_assert(th_contains(w, "CREATE on schema app"), "%s", plain);
	free(plain);
	free(out);
	free(err);

	/* a database whose provisioning fails fails its own service alone, and says so everywhere */
	su = th_connect(db_b);
	th_exec(su, "ALTER SCHEMA app OWNER TO postgres");
	PQfinish(su);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "migrate", "--json", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert_not_null(doc, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "failed");
	json_t *svcs = json_object_get(doc, "services");
	size_t i;
	json_t *sv;
	int seen = 0;
	json_array_foreach(svcs, i, sv)
	{
		const char *name = json_string_value(json_object_get(sv, "service"));
		const char *outcome = json_string_value(json_object_get(sv, "result"));
		if (strcmp(name, "a") == 0) {
			cr_assert_str_eq(outcome, "up_to_date", "%s", out);
			seen++;
		} else if (strcmp(name, "b") == 0) {
			cr_assert_str_eq(outcome, "failed", "%s", out);
			seen++;
		}
	}
	cr_assert_eq(seen, 2, "%s", out);
	plain = unprefix(out);
	cr_assert(th_contains(plain, "provisioning: database P_b: "), "%s", plain);
	free(plain);
	json_decref(doc);
	free(out);
	free(err);

	/* --since skips both services' migrations, not their databases' provisioning: b still fails */
	char *cmd = fl_asprintf("cd '%s' && git init -q && git add -A && git -c user.name=t -c "
	                        "user.email=t@t commit -qm init",
	                        dir);
	char *o = NULL;
	cr_assert_eq(th_sh(cmd, &o), 0, "%s", o);
	free(o);
	free(cmd);
	rc = th_run(
	    dir, NULL, &out, &err,
	    (const char *const[]){"flotilla", "-e", "t", "migrate", "--since", "HEAD", "--json", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	doc = json_loads(out, 0, &je);
	cr_assert_not_null(doc, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "failed");
	seen = 0;
	json_array_foreach(json_object_get(doc, "services"), i, sv)
	{
		const char *name = json_string_value(json_object_get(sv, "service"));
		const char *outcome = json_string_value(json_object_get(sv, "result"));
		if (strcmp(name, "a") == 0) {
			cr_assert_str_eq(outcome, "skipped", "%s", out);
			seen++;
		} else if (strcmp(name, "b") == 0) {
			cr_assert_str_eq(outcome, "failed", "%s", out);
			const char *m =
			    json_string_value(json_object_get(json_object_get(sv, "error"), "message"));
			char *msg = unprefix(m ? m : "");
			cr_assert(
			    th_contains(msg,
			                "provisioning: database P_b: make P_b_own the owner of schema app"),
			    "%s", msg);
			free(msg);
			seen++;
		}
	}
	cr_assert_eq(seen, 2, "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	free(dir);
}
