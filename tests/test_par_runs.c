/*
 * Runs that never lie (the fleet-command layer): bad input of any kind
 * exits 2 with the cluster's catalogs byte-identical, the exit code, the
 * summary and the JSON agree, a database that refuses connections fails
 * its service alone, a signal during provisioning exits 130 and leaves
 * nothing behind, and `migrate SERVICE` provisions only what it needs.
 * Through the flotilla binary (the TSan build for the threaded tests).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "faultproxy.h"
#include "harness.h"

static const char *const SEVEN[] = {"auth",           "client",       "user",        "metric_builder",
                                    "metric_tracker", "task_builder", "task_tracker"};

struct fleet {
	char *dir;
	char project[48];
	char manifest[600];
};

/*
 * Seven services with three migrations each; passwords from AUTH_PW,
 * CLIENT_PW, ... (the server trusts local connections, so any value logs
 * in); auth reads user, task_tracker reads task_builder, role analytics
 * reads metric_tracker. `migrator` is the migrator's password line.
 */
static void fleet_init(struct fleet *f, const char *migrator)
{
	static int n;
	f->dir = th_tmpdir();
	snprintf(f->project, sizeof(f->project), "r%d_%d", (int)getpid(), ++n);
	snprintf(f->manifest, sizeof(f->manifest), "%s/flotilla.toml", f->dir);
	char *m = fl_asprintf("version = 1\nproject = \"%s\"\n\n"
	                      "[environments.test]\nadmin = { user = \"postgres\" }\n"
	                      "migrator = { user = \"%s_migrator\"%s }\n\n"
	                      "[settings]\nlock_timeout = \"5s\"\nsecret_timeout = \"3s\"\n\n"
	                      "[defaults]\ndatabase = \"${project}_${service}\"\n"
	                      "owner = \"${project}_${service}_owner\"\nmigrations = \"svc/${service}\"\n\n"
	                      "[roles.analytics]\nreads = [\"metric_tracker\"]\n\n",
	                      f->project, f->project, migrator ? migrator : "");
	for (size_t i = 0; i < 7; i++) {
		char upper[32];
		size_t k = 0;
		for (; SEVEN[i][k]; k++)
			upper[k] =
			    (char)(SEVEN[i][k] >= 'a' && SEVEN[i][k] <= 'z' ? SEVEN[i][k] - 32 : SEVEN[i][k]);
		upper[k] = '\0';
		const char *reads = strcmp(SEVEN[i], "auth") == 0           ? "reads = [\"user\"]\n"
		                    : strcmp(SEVEN[i], "task_tracker") == 0 ? "reads = [\"task_builder\"]\n"
		                                                            : "";
		char *next = fl_asprintf("%s[services.%s]\npassword = { env = \"%s_PW\" }\n%s\n", m, SEVEN[i],
		                         upper, reads);
		free(m);
		m = next;
		for (int v = 1; v <= 3; v++) {
			char rel[256], sql[512];
			snprintf(rel, sizeof(rel), "svc/%s/V%d__step_%d.sql", SEVEN[i], v, v);
			snprintf(sql, sizeof(sql), "CREATE TABLE t%d (id int PRIMARY KEY, note text);\n", v);
			th_write(f->dir, rel, sql);
		}
	}
	th_write(f->dir, "flotilla.toml", m);
	free(m);
}

static const char *const ALL_PW[] = {
    "AUTH_PW=a1",           "CLIENT_PW=c1",       "USER_PW=u1",         "METRIC_BUILDER_PW=m1",
    "METRIC_TRACKER_PW=m2", "TASK_BUILDER_PW=t1", "TASK_TRACKER_PW=t2", NULL};

static int fleet_run_env(struct fleet *f, const char *const *env, char **out, char **err,
                         const char *const *args)
{
	const char *argv[32] = {"flotilla", "-m", f->manifest, "-e", "test"};
	size_t n = 5;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return th_run(f->dir, env, out, err, argv);
}

static int fleet_run(struct fleet *f, char **out, char **err, const char *const *args)
{
	return fleet_run_env(f, ALL_PW, out, err, args);
}

/*
 * What the cluster knows of this test's project: databases (owner, ACL,
 * whether they take connections), roles with their attributes, memberships,
 * and the ACL of schema public in each database. Other tests run at the
 * same time, so only names with the project's prefix count.
 */
static char *catalogs(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char q[2048];
	snprintf(q, sizeof(q),
	         "SELECT 'db ' || datname || ' ' || pg_get_userbyid(datdba) || ' ' || "
	         "coalesce(datacl::text, '-') || ' ' || datallowconn FROM pg_database "
	         "WHERE datname LIKE '%s%%' UNION ALL "
	         "SELECT 'role ' || rolname || ' ' || rolcanlogin || rolsuper || rolcreatedb || "
	         "rolcreaterole || coalesce(rolpassword, '-') FROM pg_authid WHERE rolname LIKE '%s%%' "
	         "UNION ALL SELECT 'member ' || r.rolname || ' in ' || g.rolname FROM pg_auth_members a "
	         "JOIN pg_roles r ON r.oid = a.member JOIN pg_roles g ON g.oid = a.roleid "
	         "WHERE r.rolname LIKE '%s%%' OR g.rolname LIKE '%s%%' ORDER BY 1",
	         f->project, f->project, f->project, f->project);
	char *all = th_queryall(c, q, "\n");
	PQfinish(c);
	/* schema ACLs of the databases that exist */
	c = th_connect("postgres");
	snprintf(q, sizeof(q), "SELECT datname FROM pg_database WHERE datname LIKE '%s%%' AND datallowconn",
	         f->project);
	char *dbs = th_queryall(c, q, "\n");
	PQfinish(c);
	for (char *save = NULL, *db = strtok_r(dbs, "\n", &save); db; db = strtok_r(NULL, "\n", &save)) {
		PGconn *d = th_connect(db);
		char *acl = th_queryall(d,
		                        "SELECT nspname || ' ' || coalesce(nspacl::text, '-') FROM "
		                        "pg_namespace ORDER BY 1",
		                        ",");
		PQfinish(d);
		char *next = fl_asprintf("%s\nschemas of %s: %s", all, db, acl);
		free(all);
		free(acl);
		all = next;
	}
	free(dbs);
	return all;
}

static void fleet_drop(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char q[512];
	snprintf(q, sizeof(q), "SELECT datname FROM pg_database WHERE datname LIKE '%s%%'", f->project);
	char *dbs = th_queryall(c, q, "\n");
	for (char *save = NULL, *db = strtok_r(dbs, "\n", &save); db; db = strtok_r(NULL, "\n", &save)) {
		snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
		th_exec(c, q);
	}
	free(dbs);
	PQfinish(c);
	free(f->dir);
}

static json_t *parse(const char *out)
{
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "not a JSON document (%s): %s", je.text, out);
	return doc;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *service_of(json_t *doc, const char *name)
{
	json_t *svcs = json_object_get(doc, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s) if (strcmp(jstr(s, "service"), name) == 0) return s;
	cr_assert_fail("service %s not in the document", name);
	return NULL;
}

/* Bad input of every kind at once: exit 2, every problem listed at its place, nothing created. */
Test(par_runs, bad_input_touches_nothing, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, ", password = { env = \"FLOTILLA_TEST_UNSET_PW\" }");
	th_write(f.dir, "svc/client/V4__latin1.sql", "-- caf\xe9\nSELECT 1;\n");
	th_write(f.dir, "svc/user/V4__quote.sql", "SELECT 1;\nSELECT 'unterminated;\n");
	th_write(f.dir, "svc/task_builder/V3_0__again.sql", "SELECT 1;\n");
	th_write(f.dir, "svc/metric_builder/V4__ph.sql", "SELECT '${nobody_defines_it}';\n");
	char *before = catalogs(&f);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", NULL});
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert(th_contains(err, "FLOTILLA_TEST_UNSET_PW"), "%s", err);
	cr_assert(th_contains(err, "svc/client/V4__latin1.sql:1:"), "%s", err);
	cr_assert(th_contains(err, "svc/user/V4__quote.sql:2:8"), "%s", err);
	cr_assert(th_contains(err, "have the same version 3"), "%s", err);
	cr_assert(th_contains(err, "svc/metric_builder/V4__ph.sql:1:9"), "%s", err);
	cr_assert(th_contains(err, "nothing was sent to any server"), "%s", err);
	cr_assert(!th_contains(err, "provision:"), "%s", err);
	char *after = catalogs(&f);
	cr_assert_str_eq(after, before, "the catalogs changed");
	json_t *doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "invalid");
	cr_assert_eq(json_integer_value(json_object_get(doc, "exit_code")), 2);
	cr_assert(json_is_false(json_object_get(doc, "touched")));
	cr_assert_geq(json_array_size(json_object_get(doc, "errors")), 5, "%s", out);
	cr_assert_eq(json_array_size(json_object_get(doc, "services")), 7);
	cr_assert_str_eq(jstr(service_of(doc, "user"), "result"), "invalid");
	json_t *ue = json_object_get(service_of(doc, "user"), "error");
	cr_assert_str_eq(jstr(ue, "file"), "svc/user/V4__quote.sql");
	cr_assert_eq(json_integer_value(json_object_get(ue, "line")), 2);
	cr_assert_str_eq(jstr(service_of(doc, "auth"), "result"), "not_run");
	json_decref(doc);
	free(out);
	free(err);
	free(before);
	free(after);
	fleet_drop(&f);
}

/* Secrets that fail, print nothing, or are not set: exit 2 and a document, nothing created. */
Test(par_runs, secrets_fail_before_anything_is_sent, .timeout = 240)
{
	static const char *const migrators[] = {
	    ", password = { cmd = \"echo no such secret >&2; exit 4\" }",
	    ", password = { cmd = \"true\" }",
	    ", password = { env = \"FLOTILLA_TEST_UNSET_PW\" }",
	};
	static const char *const says[] = {"no such secret", "printed nothing", "FLOTILLA_TEST_UNSET_PW"};
	for (size_t k = 0; k < 3; k++) {
		struct fleet f;
		fleet_init(&f, migrators[k]);
		char *before = catalogs(&f);
		char *out, *err;
		int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", NULL});
		cr_assert_eq(rc, 2, "%zu: %s", k, err);
		cr_assert(th_contains(err, says[k]), "%zu: %s", k, err);
		char *after = catalogs(&f);
		cr_assert_str_eq(after, before, "%zu: the catalogs changed", k);
		json_t *doc = parse(out);
		cr_assert_str_eq(jstr(doc, "result"), "invalid");
		json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
		cr_assert(th_contains(jstr(e0, "message"), "migrator"), "%s", out);
		json_decref(doc);
		free(out);
		free(err);
		free(before);
		free(after);
		/* a service's unset password counts too, and only for the services selected */
		if (k == 2) {
			fleet_init(&f, NULL);
			before = catalogs(&f);
			rc = fleet_run_env(&f, (const char *const[]){"AUTH_PW=a1", NULL}, &out, &err,
			                   (const char *const[]){"migrate", NULL});
			cr_assert_eq(rc, 2, "%s", err);
			cr_assert(th_contains(err, "CLIENT_PW"), "%s", err);
			after = catalogs(&f);
			cr_assert_str_eq(after, before);
			free(out);
			free(err);
			free(before);
			free(after);
		}
		fleet_drop(&f);
	}
}

/* --rev with a migrations folder outside the repository: exit 2, nothing created. */
Test(par_runs, rev_with_a_folder_outside_the_repository, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *outside = th_tmpdir();
	th_write(outside, "V1__x.sql", "SELECT 1;\n");
	char *cmd = fl_asprintf("cd '%s' && git init -q && git add -A && git -c user.name=t -c "
	                        "user.email=t@t commit -qm init && git tag v1",
	                        f.dir);
	char *o = NULL;
	cr_assert_eq(th_sh(cmd, &o), 0, "%s", o);
	free(o);
	free(cmd);
	/* auth's folder now points outside the work tree */
	char *mf = th_read(f.manifest);
	char *patched = fl_asprintf("%s\n", mf);
	char *at = strstr(patched, "[services.auth]\n");
	cr_assert(at);
	char *fixed = fl_asprintf("%.*s[services.auth]\nmigrations = \"%s\"\n%s", (int)(at - patched),
	                          patched, outside, at + strlen("[services.auth]\n"));
	th_write(f.dir, "flotilla.toml", fixed);
	char *before = catalogs(&f);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--rev", "v1", NULL});
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert(th_contains(err, "auth: "), "%s", err);
	char *after = catalogs(&f);
	cr_assert_str_eq(after, before);
	free(out);
	free(err);
	free(before);
	free(after);
	free(mf);
	free(patched);
	free(fixed);
	free(outside);
	fleet_drop(&f);
}

/* An applied migration edited: exit 3, summary and JSON say refused and name the file. */
Test(par_runs, edited_migration_is_refused_everywhere, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	th_write(f.dir, "svc/auth/V2__step_2.sql", "CREATE TABLE t2 (id bigint PRIMARY KEY);\n");
	th_write(f.dir, "svc/auth/V4__more.sql", "CREATE TABLE t4 (id int);\n");
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--plain", NULL});
	cr_assert_eq(rc, 3, "%s", err);
	cr_assert(th_contains(err, "REFUSED: "), "summary: %s", err);
	cr_assert(th_contains(err, "svc/auth/V2__step_2.sql"), "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--json", NULL});
	cr_assert_eq(rc, 3, "%s", err);
	json_t *doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "refused");
	cr_assert_eq(json_integer_value(json_object_get(doc, "exit_code")), 3);
	json_t *a = service_of(doc, "auth");
	cr_assert_str_eq(jstr(a, "result"), "refused");
	cr_assert_str_eq(jstr(json_object_get(a, "error"), "file"), "svc/auth/V2__step_2.sql");
	json_decref(doc);
	free(out);
	free(err);
	/* V4 was not applied */
	char *db = fl_asprintf("%s_auth", f.project);
	PGconn *c = th_connect(db);
	char *v = th_query1(c, "SELECT max(version::int) FROM flyway_schema_history");
	cr_assert_str_eq(v, "3");
	free(v);
	PQfinish(c);
	free(db);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"validate", "auth", "--json", NULL});
	cr_assert_eq(rc, 3, "%s", err);
	doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "refused");
	a = service_of(doc, "auth");
	cr_assert_str_eq(jstr(a, "result"), "refused");
	json_t *probs = json_object_get(a, "problems");
	cr_assert_geq(json_array_size(probs), 2, "%s", out); /* the checksum and the pending V4 */
	bool named = false;
	size_t i;
	json_t *p;
	json_array_foreach(probs, i, p) named |=
	    jstr(p, "file") && strcmp(jstr(p, "file"), "svc/auth/V2__step_2.sql") == 0;
	cr_assert(named, "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

/* status, plan and validate documents carry versions and migrations; a database not made yet is pending. */
Test(par_runs, status_plan_validate_documents, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	/* the migrator exists (another service was migrated), auth's database does not yet */
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "client", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"status", "auth", "--json", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	json_t *doc = parse(out);
	json_t *a = service_of(doc, "auth");
	cr_assert_str_eq(jstr(a, "result"), "pending");
	cr_assert(json_is_false(json_object_get(a, "database_exists")));
	cr_assert_eq(json_integer_value(json_object_get(a, "pending")), 3);
	char *want = fl_asprintf("database %s_auth will be created; 3 migrations to apply", f.project);
	cr_assert_str_eq(jstr(a, "reason"), want);
	free(want);
	json_decref(doc);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"plan", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(th_contains(out, "will be created; 3 migrations to apply"), "%s", out);
	free(out);
	free(err);

	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--target", "2", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	const char *verbs[] = {"status", "plan", "validate"};
	for (size_t k = 0; k < 3; k++) {
		rc = fleet_run(&f, &out, &err, (const char *const[]){verbs[k], "auth", "--json", NULL});
		cr_assert_eq(rc, k == 2 ? 3 : 0, "%s: %s", verbs[k], err); /* validate: V3 is pending */
		doc = parse(out);
		cr_assert_str_eq(jstr(doc, "command"), verbs[k]);
		a = service_of(doc, "auth");
		cr_assert_str_eq(jstr(a, "version"), "2");
		cr_assert_str_eq(jstr(a, "version_before"), "2");
		cr_assert_eq(json_integer_value(json_object_get(a, "pending")), 1);
		cr_assert_str_eq(jstr(a, "result"), k == 2 ? "refused" : "pending");
		json_t *migs = json_object_get(a, "migrations");
		cr_assert_eq(json_array_size(migs), 3, "%s", out);
		json_t *m1 = json_array_get(migs, 0), *m3 = json_array_get(migs, 2);
		cr_assert_str_eq(jstr(m1, "version"), "1");
		cr_assert_str_eq(jstr(m1, "script"), "V1__step_1.sql");
		cr_assert_str_eq(jstr(m1, "state"), "Success");
		cr_assert(json_is_integer(json_object_get(m1, "checksum")));
		cr_assert(jstr(m1, "installed_on"));
		cr_assert_str_eq(jstr(m3, "version"), "3");
		cr_assert_str_eq(jstr(m3, "state"), "Pending");
		if (k == 2)
			cr_assert_eq(json_array_size(json_object_get(a, "problems")), 1, "%s", out);
		json_decref(doc);
		free(out);
		free(err);
	}
	fleet_drop(&f);
}

/* A database that takes no connections fails its service; the other six are migrated; exit 1. */
Test(par_runs, one_unreachable_database_fails_alone, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	PGconn *c = th_connect("postgres");
	char *q = fl_asprintf("CREATE DATABASE \"%s_client\" ALLOW_CONNECTIONS false", f.project);
	th_exec(c, q);
	free(q);
	PQfinish(c);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", NULL});
	cr_assert_eq(rc, 1, "%s", err);
	json_t *doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "failed");
	for (size_t i = 0; i < 7; i++) {
		json_t *s = service_of(doc, SEVEN[i]);
		bool client = strcmp(SEVEN[i], "client") == 0;
		cr_assert_str_eq(jstr(s, "result"), client ? "failed" : "ok", "%s: %s", SEVEN[i], out);
		if (client) {
			cr_assert(th_contains(jstr(json_object_get(s, "error"), "message"),
			                      "not currently accepting connections"),
			          "%s", out);
			continue;
		}
		char *db = fl_asprintf("%s_%s", f.project, SEVEN[i]);
		PGconn *d = th_connect(db);
		char *v = th_query1(d, "SELECT count(*) FROM flyway_schema_history WHERE success");
		cr_assert_str_eq(v, "3", "%s", SEVEN[i]);
		free(v);
		PQfinish(d);
		free(db);
	}
	json_decref(doc);
	free(out);
	free(err);
	c = th_connect("postgres");
	q = fl_asprintf("ALTER DATABASE \"%s_client\" ALLOW_CONNECTIONS true", f.project);
	th_exec(c, q);
	free(q);
	PQfinish(c);
	fleet_drop(&f);
}

/* `migrate auth` on a fresh cluster: only what auth needs, with only auth's secret set. */
Test(par_runs, one_service_provisions_only_its_own, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	int rc = fleet_run_env(&f, (const char *const[]){"AUTH_PW=a1", NULL}, &out, &err,
	                       (const char *const[]){"migrate", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	char *cat = catalogs(&f);
	char *p = f.project;
	char *dbline = fl_asprintf("db %s_auth %s_auth_owner", p, p);
	cr_assert(th_contains(cat, dbline), "%s", cat);
	char *other = fl_asprintf("db %s_user", p);
	cr_assert(!th_contains(cat, other), "user's database was made: %s", cat);
	char *owner = fl_asprintf("role %s_user_owner", p);
	cr_assert(!th_contains(cat, owner), "user's owner was made: %s", cat);
	/* auth reads user: it is in user's read-only group already, made for it */
	char *member = fl_asprintf("member %s_auth_owner in %s_user_ro", p, p);
	cr_assert(th_contains(cat, member), "%s", cat);
	char *client = fl_asprintf("%s_client", p);
	cr_assert(!th_contains(cat, client), "%s", cat);
	free(dbline);
	free(other);
	free(owner);
	free(member);
	free(client);
	free(cat);
	/* then user, and the whole fleet: the reading is complete and a rerun has nothing to do */
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "user", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(!th_contains(err, "warning"), "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(th_contains(err, "provision: no changes"), "%s", err);
	free(out);
	free(err);
	fleet_drop(&f);
}

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* SIGINT and SIGTERM while a fresh fleet is provisioned: 130, a message, nothing left, a rerun converges. */
Test(par_runs, signal_during_provisioning, .timeout = 600)
{
	srand((unsigned)getpid());
	int interrupted = 0;
	double slowest = 0;
	for (int round = 0; round < 10; round++) {
		struct fleet f;
		fleet_init(&f, NULL);
		char outp[700], errp[700];
		snprintf(outp, sizeof(outp), "%s/sig.out", f.dir);
		snprintf(errp, sizeof(errp), "%s/sig.err", f.dir);
		const char *argv[] = {"flotilla", "-m", f.manifest, "-e", "test", "migrate", "--plain", NULL};
		pid_t pid = th_spawn(f.dir, ALL_PW, outp, errp, argv);
		/* wait for provisioning to begin, then a random moment into it */
		for (int i = 0; i < 400; i++) {
			if (access(errp, R_OK) != 0) {
				usleep(5000);
				continue;
			}
			char *e = th_read(errp);
			bool started = th_contains(e, "provision: ");
			free(e);
			if (started)
				break;
			usleep(5000);
		}
		usleep((useconds_t)(rand() % 150) * 1000);
		double t0 = mono();
		kill(pid, round % 2 ? SIGTERM : SIGINT);
		int st = 0;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		double took = mono() - t0;
		cr_assert(WIFEXITED(st), "round %d: killed by a signal", round);
		char *e = th_read(errp);
		if (WEXITSTATUS(st) == 130) {
			interrupted++;
			if (took > slowest)
				slowest = took;
			cr_assert(th_contains(e, "flotilla: interrupted"), "round %d: %s", round, e);
			cr_assert_lt(took, 10.0, "round %d: took %.2f s to exit", round, took);
		} else {
			cr_assert_eq(WEXITSTATUS(st), 0, "round %d: %s", round, e);
		}
		free(e);
		/* no session of this run is left holding a lock */
		PGconn *c = th_connect("postgres");
		char *q = fl_asprintf("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
		                      "'flotilla%%' AND datname LIKE '%s%%'",
		                      f.project);
		char *left = NULL;
		for (int i = 0; i < 60; i++) {
			free(left);
			left = th_query1(c, q);
			if (strcmp(left, "0") == 0)
				break;
			usleep(50000);
		}
		cr_assert_str_eq(left, "0", "round %d: sessions left", round);
		free(left);
		free(q);
		PQfinish(c);
		/* whatever was made is whole: the rerun converges */
		char *out, *err;
		int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL});
		cr_assert_eq(rc, 0, "round %d rerun: %s", round, err);
		free(out);
		free(err);
		for (size_t i = 0; i < 7; i++) {
			char *db = fl_asprintf("%s_%s", f.project, SEVEN[i]);
			PGconn *d = th_connect(db);
			char *v = th_query1(d, "SELECT count(*) FROM flyway_schema_history WHERE success");
			cr_assert_str_eq(v, "3", "round %d %s", round, SEVEN[i]);
			free(v);
			PQfinish(d);
			free(db);
		}
		fleet_drop(&f);
	}
	cr_assert_geq(interrupted, 3, "only %d of 10 signals landed during the run", interrupted);
	cr_log_info("signal during provisioning: %d of 10 interrupted, slowest exit %.2f s", interrupted,
	            slowest);
}

/* The JSON blocks of README's "JSON report" section, in order. */
static json_t *readme_block(size_t which)
{
	char *path = fl_asprintf("%s/README.md", th_top());
	char *readme = th_read(path);
	free(path);
	char *sec = strstr(readme, "\n## JSON report\n");
	cr_assert(sec, "README has no JSON report section");
	char *end = strstr(sec + 5, "\n## ");
	if (end)
		*end = '\0';
	char *p = sec;
	json_t *doc = NULL;
	for (size_t i = 0; i <= which; i++) {
		p = strstr(p, "```json\n");
		cr_assert(p, "README's JSON report has no block %zu", which);
		p += 8;
		char *close = strstr(p, "```");
		cr_assert(close);
		if (i == which) {
			json_error_t je;
			doc = json_loadb(p, (size_t)(close - p), 0, &je);
			cr_assert(doc, "README block %zu is not JSON: %s", which, je.text);
		}
		p = close + 3;
	}
	free(readme);
	return doc;
}

/* The same keys, in any order: what the README documents is what the program prints. */
static void same_keys(json_t *documented, json_t *real, const char *what)
{
	const char *k;
	json_t *v;
	json_object_foreach(documented, k, v)
	    cr_assert(json_object_get(real, k), "%s: documented '%s' is not printed", what, k);
	json_object_foreach(real, k, v)
	    cr_assert(json_object_get(documented, k), "%s: printed '%s' is not documented", what, k);
}

Test(par_runs, readme_documents_the_real_documents, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--json", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	json_t *mig = parse(out);
	free(out);
	free(err);
	th_write(f.dir, "svc/auth/V1__step_1.sql", "CREATE TABLE t1 (id bigint);\n");
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--json", NULL});
	cr_assert_eq(rc, 3, "%s", err);
	json_t *bad = parse(out);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"validate", "auth", "--json", NULL});
	json_t *val = parse(out);
	free(out);
	free(err);

	json_t *doc = readme_block(0);
	same_keys(doc, mig, "migrate document");
	json_t *ds = json_array_get(json_object_get(doc, "services"), 0);
	json_t *rs = json_array_get(json_object_get(mig, "services"), 0);
	same_keys(ds, rs, "migrate service");
	same_keys(json_array_get(json_object_get(ds, "migrations"), 0),
	          json_array_get(json_object_get(rs, "migrations"), 0), "applied migration");
	same_keys(json_array_get(json_object_get(doc, "errors"), 0),
	          json_array_get(json_object_get(bad, "errors"), 0), "error");
	json_decref(doc);

	doc = readme_block(1);
	rs = json_array_get(json_object_get(val, "services"), 0);
	same_keys(doc, rs, "validate service");
	same_keys(json_array_get(json_object_get(doc, "migrations"), 0),
	          json_array_get(json_object_get(rs, "migrations"), 0), "history item");
	json_decref(doc);
	json_decref(mig);
	json_decref(bad);
	json_decref(val);
	fleet_drop(&f);
}

/* A manifest that does not load, under --json: still a document, exit 2. */
Test(par_runs, json_even_when_the_manifest_is_bad, .timeout = 60)
{
	char *dir = th_tmpdir();
	th_write(dir, "flotilla.toml", "version = 1\nproject = \"x\"\n[services.a\n");
	char *m = fl_asprintf("%s/flotilla.toml", dir);
	char *out, *err;
	int rc = th_run(dir, NULL, &out, &err,
	                (const char *const[]){"flotilla", "-m", m, "-e", "test", "migrate", "--json", NULL});
	cr_assert_eq(rc, 2, "%s", err);
	json_t *doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "invalid");
	json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
	cr_assert(th_contains(jstr(e0, "file"), "flotilla.toml"), "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(e0, "line")), 3);
	json_decref(doc);
	free(out);
	free(err);
	free(m);
	free(dir);
}

/*
 * A proxy that freezes mid-migration (TCP still acknowledges, nothing is
 * forwarded): the first SIGINT ends the run with 130 within the cancel
 * bound (the cancel request cannot get through, so the connection is
 * severed), a second SIGINT at once; a rerun on a working path converges.
 */
Test(par_runs, sigint_after_a_frozen_proxy, .timeout = 240)
{
	for (int twice = 0; twice < 2; twice++) {
		struct fleet f;
		fleet_init(&f, NULL);
		th_write(f.dir, "svc/auth/V4__slow.sql", "SELECT pg_sleep(6);\nCREATE TABLE t4 (id int);\n");
		char *sock = fp_server_socket();
		fp_proxy px;
		fp_start(&px, sock, FP_PASS, 0);
		/* the manifest reaches the server through the proxy on 127.0.0.1 */
		char *mf = th_read(f.manifest);
		char *at = strstr(mf, "[environments.test]\n");
		cr_assert(at);
		char *m2 = fl_asprintf("%.*s[environments.test]\nhost = \"127.0.0.1\"\nport = %d\n%s",
		                       (int)(at - mf), mf, px.port, at + strlen("[environments.test]\n"));
		th_write(f.dir, "flotilla.toml", m2);
		char outp[700], errp[700];
		snprintf(outp, sizeof(outp), "%s/frz.out", f.dir);
		snprintf(errp, sizeof(errp), "%s/frz.err", f.dir);
		const char *argv[] = {"flotilla", "-m",   f.manifest, "-e", "test",
		                      "migrate",  "auth", "--plain",  NULL};
		pid_t pid = th_spawn(f.dir, ALL_PW, outp, errp, argv);
		bool applying = false;
		for (int i = 0; i < 600 && !applying; i++) {
			usleep(20000);
			if (access(errp, R_OK) != 0)
				continue;
			char *e = th_read(errp);
			applying = th_contains(e, "applying V4__slow");
			free(e);
		}
		cr_assert(applying, "the slow migration never started");
		usleep(200000);
		fp_freeze(&px);
		usleep(200000);
		double t0 = mono();
		kill(pid, SIGINT);
		if (twice) {
			usleep(100000);
			kill(pid, SIGINT);
		}
		int st = 0;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		double took = mono() - t0;
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit %d",
		          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		char *e = th_read(errp);
		cr_assert(th_contains(e, twice ? "interrupted again" : "flotilla: interrupted"), "%s", e);
		/* the bound: FL_ORCH_CANCEL_BOUND_S (1 s) and the roll-back; generous for TSan */
		cr_assert_lt(took, twice ? 2.0 : 8.0, "took %.2f s", took);
		cr_log_info("frozen proxy, %s SIGINT: exit 130 after %.2f s", twice ? "second" : "first",
		            took);
		free(e);
		fp_stop(&px);
		/*
		 * A working path: the rerun converges. The frozen path kept the cancel from the
		 * server, which had the whole transaction (the migration, its history row, COMMIT)
		 * and may finish it after flotilla let go: then V4 is applied and recorded by that
		 * session, atomically; else the rerun applies it (after waiting for that session's
		 * migration lock). Either way exactly once.
		 */
		fp_start(&px, sock, FP_PASS, 0);
		char *m3 = fl_asprintf("%.*s[environments.test]\nhost = \"127.0.0.1\"\nport = %d\n%s",
		                       (int)(at - mf), mf, px.port, at + strlen("[environments.test]\n"));
		th_write(f.dir, "flotilla.toml", m3);
		char *out, *err;
		int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", NULL});
		cr_assert_eq(rc, 0, "%s", err);
		free(out);
		free(err);
		fp_stop(&px);
		char *db = fl_asprintf("%s_auth", f.project);
		PGconn *c = th_connect(db);
		char *v = th_query1(
		    c,
		    "SELECT string_agg(success::text, ',') FROM flyway_schema_history WHERE version = '4'");
		cr_assert_str_eq(v, "true", "V4 exactly once, applied and recorded together");
		free(v);
		PQfinish(c);
		free(db);
		free(mf);
		free(m2);
		free(m3);
		free(sock);
		fleet_drop(&f);
	}
}

/* --dry-run --json: stdout is one document, the SQL inside it; pending or up to date from the plan. */
Test(par_runs, dry_run_document, .timeout = 120)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	th_write(f.dir, "svc/auth/V4__four.sql", "CREATE TABLE t4 (id int);\n");
	rc = fleet_run(&f, &out, &err,
	               (const char *const[]){"migrate", "auth", "client", "--dry-run", "--json", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	json_t *doc = parse(out);
	json_t *a = service_of(doc, "auth"), *c = service_of(doc, "client");
	cr_assert_str_eq(jstr(a, "result"), "pending");
	cr_assert(th_contains(jstr(a, "sql"), "CREATE TABLE t4 (id int);"), "%s", out);
	cr_assert_str_eq(jstr(c, "result"), "pending", "client's database is not made by a dry run");
	cr_assert(th_contains(jstr(c, "reason"), "will be created; 3 migrations to apply"), "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	/* V4 was not applied: the next dry run still has it, and a real run applies it */
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--dry-run", "--json", NULL});
	doc = parse(out);
	cr_assert_str_eq(jstr(service_of(doc, "auth"), "result"), "up_to_date", "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

/*
 * A release pipeline starts while another one's migration runs for 20 s: the second
 * waits for the migration lock (its own bound, minutes, not lock_timeout's 5 s), then
 * finds the migration applied by the first and says up to date, exit 0.
 */
Test(par_runs, second_pipeline_waits_for_a_20_s_migration_then_is_up_to_date, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, NULL);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL});
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	th_write(f.dir, "svc/auth/V4__slow.sql", "SELECT pg_sleep(20);\nCREATE TABLE t4 (id int);\n");

	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/first.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/first.err", f.dir);
	pid_t first = th_spawn(
	    f.dir, ALL_PW, outp, errp,
	    (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate", "auth", NULL});
	char db[128], q[512];
	snprintf(db, sizeof(db), "%s_auth", f.project);
	PGconn *c = th_connect(db);
	bool sleeping = false;
	for (int i = 0; i < 600 && !sleeping; i++) {
		char *v = th_query1(c, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
		                       "current_database() AND query LIKE 'SELECT pg_sleep(20)%')");
		sleeping = strcmp(v, "t") == 0;
		free(v);
		if (!sleeping)
			usleep(50000);
	}
	cr_assert(sleeping, "the first pipeline's migration never started: %s", th_read(errp));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "--json", NULL});
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	/* it waited for the first one's lock, well past lock_timeout */
	cr_assert_gt(t1.tv_sec - t0.tv_sec, 10, "it did not wait: %s", err);
	json_t *doc = parse(out);
	cr_assert_str_eq(jstr(doc, "result"), "ok", "%s", out);
	json_t *auth = service_of(doc, "auth");
	cr_assert_str_eq(jstr(auth, "result"), "up_to_date", "%s", out);
	cr_assert_str_eq(jstr(auth, "version_after"), "4", "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	int st;
	cr_assert_eq(waitpid(first, &st, 0), first);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the first pipeline: %s", th_read(errp));
	snprintf(q, sizeof(q),
	         "SELECT count(*) || '|' || bool_and(success) FROM flyway_schema_history WHERE "
	         "version = '4'");
	char *v = th_query1(c, q);
	cr_assert_str_eq(v, "1|true");
	free(v);
	PQfinish(c);
	fleet_drop(&f);
}
