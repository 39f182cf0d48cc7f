/* Reaching the cluster the way the platform does, end to end: logins whose
 * secrets are JSON documents, URLs or IAM tokens on a SCRAM server; the
 * program through a stalled proxy; IAM role names as migrator and reader;
 * the README's manifest snippets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faultproxy.h"
#include "harness.h"
#include "login.h"
#include "manifest.h"
#include "pg.h"

static char *pgdir;

static char *start_scram(void)
{
	pgdir = th_tmpdir();
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof(cmd), "FLOTILLA_PG_AUTH=scram sh %s/ci/pg start %s/pg", th_top(), pgdir);
	cr_assert_eq(th_sh(cmd, &out), 0, "scram server: %s", out);
	free(out);
	char *host = NULL;
	cr_assert(asprintf(&host, "%s/pg", pgdir) > 0);
	return host;
}

static void stop_scram(char *host)
{
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof(cmd), "sh %s/ci/pg destroy %s", th_top(), host);
	th_sh(cmd, &out);
	free(out);
	free(host);
	free(pgdir);
}

static void su_exec(const char *host, const char *sql)
{
	const char *keys[] = {"host", "dbname", "user", NULL};
	const char *vals[] = {host, "postgres", "postgres", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	th_exec(c, sql);
	PQfinish(c);
}

static fl_manifest *load(const char *dir, const char *text)
{
	th_write(dir, "svc/a/.keep", "");
	th_write(dir, "flotilla.toml", text);
	char path[700];
	snprintf(path, sizeof(path), "%s/flotilla.toml", dir);
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, "t", &err);
	cr_assert_not_null(m, "%s", err ? fl_error_format(err) : "?");
	return m;
}

/* Logs in as `l` of the manifest's environment; returns NULL with *why on failure. */
static fl_pg *log_in(const fl_manifest *m, const fl_login *l, char **why)
{
	fl_login_conn c;
	fl_error *err = NULL;
	*why = NULL;
	if (fl_login_conn_init(&c, m->env, l, "postgres", &m->settings, NULL, &err) != 0) {
		*why = strdup(err->msg);
		fl_error_free(err);
		return NULL;
	}
	fl_pg *pg = fl_pg_connect(&c.params, &err);
	fl_login_conn_clear(&c);
	if (!pg) {
		*why = strdup(err->msg);
		fl_error_free(err);
	}
	return pg;
}

Test(reach, scram_logins_from_json_url_and_token, .timeout = 120)
{
	char *host = start_scram();
	su_exec(host, "CREATE ROLE app_login LOGIN PASSWORD 'Js0n-pw-1'; "
	              "CREATE ROLE \"migrator@my-project.iam\" LOGIN PASSWORD 'tok-1'");
	char *dir = th_tmpdir();
	char text[4096];
	/* a JSON secret (a field picked), a URL secret, a token that changes on every call */
	snprintf(
	    text, sizeof(text),
	    "version = 1\nproject = \"t\"\n[environments.t]\nhost = \"%s\"\nconnect_timeout = 5\n"
	    "admin = { user = \"app_login\", password = { cmd = \"printf '{\\\"username\\\": "
	    "\\\"app_login\\\", \\\"password\\\": \\\"Js0n-pw-1\\\"}'\", json = \"password\" } }\n"
	    "migrator = { user = \"migrator@my-project.iam\", token = { cmd = \"n=$(cat %s/n 2>/dev/null "
	    "|| echo 0); n=$((n+1)); echo $n > %s/n; echo tok-$n\" } }\n"
	    "[environments.u]\n"
	    "admin = { user = \"app_login\", url = { cmd = \"echo "
	    "'postgresql+asyncpg://app_login:Js0n-pw-1@/postgres?host=%s'\" } }\n"
	    "migrator = { user = \"app_login\", url = { cmd = \"echo "
	    "'jdbc:postgresql:///postgres?host=%s&user=app_login&password=Js0n-pw-1'\" } }\n"
	    "[environments.w]\nhost = \"%s\"\n"
	    "admin = { user = \"app_login\", password = { cmd = \"printf '{\\\"password\\\": \\\"x\\\"}'\" } "
	    "}\n"
	    "migrator = { user = \"app_login\" }\n"
	    "[services.a]\ndatabase = \"a_db\"\nowner = \"a_own\"\nmigrations = \"svc/a\"\n",
	    host, dir, dir, host, host, host);
	fl_manifest *m = load(dir, text);
	char *why;
	fl_pg *pg = log_in(m, &m->env->admin, &why);
	cr_assert_not_null(pg, "JSON secret: %s", why);
	fl_pg_close(pg);

	/* the token: fetched for each connection, so a rotated one still logs in */
	pg = log_in(m, &m->env->migrator, &why);
	cr_assert_not_null(pg, "token 1: %s", why);
	char *who = fl_pg_value(pg, "SELECT current_user", 0, NULL, NULL);
	cr_assert_str_eq(who, "migrator@my-project.iam");
	free(who);
	fl_pg_close(pg);
	su_exec(host, "ALTER ROLE \"migrator@my-project.iam\" PASSWORD 'tok-2'");
	pg = log_in(m, &m->env->migrator, &why);
	cr_assert_not_null(pg, "token 2: %s", why);
	fl_pg_close(pg);
	fl_manifest_free(m);

	/* URL secrets, SQLAlchemy's and JDBC's forms: host, user and password from the URL */
	char path[700];
	snprintf(path, sizeof(path), "%s/flotilla.toml", dir);
	fl_error *err = NULL;
	m = fl_manifest_load(path, "u", &err);
	cr_assert_not_null(m);
	pg = log_in(m, &m->env->admin, &why);
	cr_assert_not_null(pg, "URL secret: %s", why);
	fl_pg_close(pg);
	pg = log_in(m, &m->env->migrator, &why);
	cr_assert_not_null(pg, "JDBC URL secret: %s", why);
	fl_pg_close(pg);
	fl_manifest_free(m);

	/* the wrong shape: refused before any connection, with the fix */
	m = fl_manifest_load(path, "w", &err);
	cr_assert_not_null(m);
	cr_assert_null(log_in(m, &m->env->admin, &why));
	cr_assert(th_contains(why, "it looks like JSON: add json = \"password\""), "%s", why);
	free(why);
	fl_manifest_free(m);

	/* and the program's own secrets check says the same */
	char *out = NULL, *errs = NULL;
	int rc = th_run(dir, NULL, &out, &errs,
	                (const char *const[]){"flotilla", "-e", "w", "manifest", "check", "--secrets", NULL});
	cr_assert_eq(rc, 2, "%s%s", out, errs);
	cr_assert(th_contains(errs, "looks like JSON: add json = \"password\""), "%s", errs);
	free(out);
	free(errs);
	free(dir);
	stop_scram(host);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(reach, the_program_through_a_stalled_proxy_ends_with_a_clear_message, .timeout = 120)
{
	fp_proxy p;
	char *sock = fp_server_socket();
	fp_start(&p, sock, FP_STALL, 0);
	free(sock);
	char *dir = th_tmpdir();
	char text[2048];
	snprintf(
	    text, sizeof(text),
	    "version = 1\nproject = \"t\"\n[settings]\nconnect_retries = 0\n"
	    "[environments.t]\nhost = \"127.0.0.1\"\nport = %d\nsslmode = \"disable\"\nconnect_timeout = 2\n"
	    "admin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	    "service_passwords = false\n"
	    "[services.a]\ndatabase = \"a_db\"\nowner = \"a_own\"\nmigrations = \"svc/a\"\n",
	    p.port);
	th_write(dir, "svc/a/.keep", "");
	th_write(dir, "flotilla.toml", text);
	char *out = NULL, *err = NULL;
	double t0 = now_s();
	int rc = th_run(dir, NULL, &out, &err,
	                (const char *const[]){"flotilla", "-e", "t", "status", "--plain", NULL});
	double took = now_s() - t0;
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	cr_assert(th_contains(err, "no answer within 2 s (connect_timeout)") ||
	              th_contains(out, "no answer within 2 s (connect_timeout)"),
	          "%s\n%s", out, err);
	cr_log_info("flotilla status through a stalled proxy, connect_timeout 2 s: exit %d after %.2f s", rc,
	            took);
	cr_assert(took < 30, "took %.1f s", took);
	free(out);
	free(err);
	free(dir);
	fp_stop(&p);
}

Test(reach, iam_role_names_as_migrator_and_reader, .timeout = 180)
{
	char *dir = th_tmpdir();
	char pfx[32];
	snprintf(pfx, sizeof(pfx), "r%d", (int)getpid());
	char text[4096];
	snprintf(text, sizeof(text),
	         "version = 1\nproject = \"t\"\n"
	         "[environments.t]\nadmin = { user = \"postgres\" }\n"
	         "migrator = { user = \"%s-migrator@my-project.iam\" }\nservice_passwords = false\n"
	         "[services.a]\ndatabase = \"%s_a\"\nowner = \"%s_a_own\"\nmigrations = \"svc/a\"\n"
	         "[roles.\"%s-reader@my-project.iam\"]\nlogin = true\nreads = [\"a\"]\n"
	         "[roles.\"%s-sa@my-project.iam.gserviceaccount.com\"]\nlogin = true\nreads = [\"a\"]\n",
	         pfx, pfx, pfx, pfx, pfx);
	th_write(dir, "svc/a/V1__t.sql", "CREATE TABLE t (id int); INSERT INTO t VALUES (1);\n");
	th_write(dir, "flotilla.toml", text);
	char *out = NULL, *err = NULL;
	int rc =
	    th_run(dir, NULL, &out, &err, (const char *const[]){"flotilla", "-e", "t", "provision", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	rc = th_run(dir, NULL, &out, &err,
	            (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	/* the reader, an IAM user, reads the table; the migrator was the one who applied it */
	char db[64], reader[128], sql[512];
	snprintf(db, sizeof(db), "%s_a", pfx);
	snprintf(reader, sizeof(reader), "%s-reader@my-project.iam", pfx);
	const char *keys[] = {"dbname", "user", NULL};
	const char *vals[] = {db, reader, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	char *v = th_query1(c, "SELECT count(*) FROM t");
	cr_assert_str_eq(v, "1");
	free(v);
	PQfinish(c);
	c = th_connect(db);
	snprintf(sql, sizeof(sql), "SELECT installed_by FROM flyway_schema_history WHERE version = '1'");
	v = th_query1(c, sql);
	char want[128];
	snprintf(want, sizeof(want), "%s-migrator@my-project.iam", pfx);
	cr_assert_str_eq(v, want);
	free(v);
	PQfinish(c);
	th_db_drop(db);
	c = th_connect("postgres");
	const char *roles[] = {"-reader@my-project.iam", "-sa@my-project.iam.gserviceaccount.com", "_a_own",
	                       "-migrator@my-project.iam"};
	for (int i = 0; i < 4; i++) {
		snprintf(sql, sizeof(sql), "DROP OWNED BY \"%s%s\"; DROP ROLE IF EXISTS \"%s%s\"", pfx,
		         roles[i], pfx, roles[i]);
		PGresult *r = PQexec(c, sql);
		PQclear(r);
	}
	PQfinish(c);
	free(dir);
}

Test(reach, the_readme_snippets_load_and_are_the_example_files)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/README.md", th_top());
	char *readme = th_read(path);
	const char *files[] = {"auth-proxy-tcp", "cloud-run-socket", "iam-users"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/manifests/examples/%s.toml", th_top(), files[i]);
		char *text = th_read(path);
		char *block = NULL;
		cr_assert(asprintf(&block, "```toml\n%s```\n", text) > 0);
		cr_assert(th_contains(readme, block), "README.md does not hold %s as it is", path);
		free(block);
		free(text);
		fl_error *err = NULL;
		fl_manifest *m = fl_manifest_load(path, "prod", &err);
		cr_assert_not_null(m, "%s: %s", path, err ? fl_error_format(err) : "?");
		fl_manifest_free(m);
	}
	/* what each one promises */
	snprintf(path, sizeof(path), "%s/manifests/examples/iam-users.toml", th_top());
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, "prod", &err);
	cr_assert_not_null(m->env->migrator.token);
	cr_assert_eq(m->env->migrator.token->kind, FL_SECRET_TOKEN);
	cr_assert_str_eq(m->roles[1].name, "bigquery-sync@pcc-prod.iam.gserviceaccount.com");
	fl_manifest_free(m);
	snprintf(path, sizeof(path), "%s/manifests/examples/cloud-run-socket.toml", th_top());
	m = fl_manifest_load(path, "prod", &err);
	cr_assert_eq(m->env->migrator.url->kind, FL_SECRET_URL);
	cr_assert_eq(m->services[0].password->kind, FL_SECRET_URL_PASSWORD);
	cr_assert_str_eq(m->services[0].password->url_user, "auth_api_user");
	fl_manifest_free(m);
	snprintf(path, sizeof(path), "%s/manifests/examples/auth-proxy-tcp.toml", th_top());
	m = fl_manifest_load(path, "prod", &err);
	cr_assert_eq(m->settings.connect_retries, 8);
	cr_assert_eq(m->settings.connect_retries_interval_s, 5);
	cr_assert_str_eq(m->settings.pass_env[0], "CLOUDSDK_CONFIG");
	cr_assert_str_eq(m->env->admin.password->json, "password");
	fl_manifest_free(m);
	free(readme);
}

/* Under the TSan build (par_*): the program resolves a run's secrets on several threads at once. */
Test(par_reach, manifest_check_resolves_the_secrets_in_parallel, .timeout = 120)
{
	char *dir = th_tmpdir();
	th_write(dir, "svc/a/.keep", "");
	th_write(
	    dir, "flotilla.toml",
	    "version = 1\nproject = \"t\"\n[settings]\npass_env = [\"T_PASSED\"]\n"
	    "[environments.t]\n"
	    "admin = { user = \"postgres\", password = { cmd = \"sleep 0.2; echo admin-pw\" } }\n"
	    "migrator = { user = \"m\", token = { cmd = \"sleep 0.2; echo tok\" } }\n"
	    "[defaults]\nmigrations = \"svc/a\"\ndatabase = \"${service}_db\"\nowner = \"${service}_own\"\n"
	    "password = { cmd = \"sleep 0.2; printf '{\\\"password\\\": \\\"%s\\\"}' \\\"$T_PASSED\\\"\", "
	    "json = \"password\" }\n"
	    "[services.a]\n[services.b]\n[services.c]\n[services.d]\n"
	    "[services.e]\nurl = { cmd = \"echo postgresql://e_own:pw@h:5432/e_db\" }\n");
	char *out = NULL, *err = NULL;
	int rc = th_run(dir, (const char *const[]){"T_PASSED=from-pass-env", NULL}, &out, &err,
	                (const char *const[]){"flotilla", "-e", "t", "manifest", "check", "--secrets", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "secrets OK: 7 resolved for environment t"), "%s", out);
	free(out);
	free(err);
	free(dir);
}
