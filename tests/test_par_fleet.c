/*
 * The whole fleet in parallel, through the flotilla binary (the TSan build
 * in `make tsan`): seven services at once, failure isolation, --fail-fast,
 * SIGINT, --json, selection, and the live view under a real terminal.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sched.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char *const SEVEN[] = {"auth",           "client",       "user",        "metric_builder",
                                    "metric_tracker", "task_builder", "task_tracker"};

struct fleet {
	char *dir;
	char project[48];
	char manifest[600];
};

/* A manifest with the seven services, each with three trivial migrations, on the test server.
 * Names carry a unique project prefix: roles are cluster-wide and tests run in parallel. */
static void fleet_init(struct fleet *f)
{
	static int n;
	f->dir = th_tmpdir();
	snprintf(f->project, sizeof(f->project), "p%d_%d", (int)getpid(), ++n);
	snprintf(f->manifest, sizeof(f->manifest), "%s/flotilla.toml", f->dir);
	char buf[4096];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[settings]\nlock_timeout = \"5s\"\n\n"
	         "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	         "migrations = \"svc/${service}\"\n\n",
	         f->project);
	char *m = strdup(buf);
	for (size_t i = 0; i < 7; i++) {
		snprintf(buf, sizeof(buf), "%s[services.%s]\n", m, SEVEN[i]);
		free(m);
		m = strdup(buf);
		char rel[256], sql[512];
		for (int v = 1; v <= 3; v++) {
			snprintf(rel, sizeof(rel), "svc/%s/V%d__step_%d.sql", SEVEN[i], v, v);
			snprintf(sql, sizeof(sql),
			         "CREATE TABLE t%d (id int PRIMARY KEY, note text);\nINSERT INTO t%d VALUES "
			         "(%d, 'x');\n",
			         v, v, v);
			th_write(f->dir, rel, sql);
		}
	}
	th_write(f->dir, "flotilla.toml", m);
	free(m);
}

static void fleet_file(struct fleet *f, const char *svc, const char *name, const char *sql)
{
	char rel[512];
	snprintf(rel, sizeof(rel), "svc/%s/%s", svc, name);
	th_write(f->dir, rel, sql);
}

static int fleet_run(struct fleet *f, char **out, char **err, const char *const *args)
{
	const char *argv[32] = {"flotilla", "-m", f->manifest, "-e", "test"};
	size_t n = 5;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return th_run(f->dir, NULL, out, err, argv);
}

static char *db_value(struct fleet *f, const char *svc, const char *sql)
{
	char db[128];
	snprintf(db, sizeof(db), "%s_%s", f->project, svc);
	PGconn *c = th_connect(db);
	char *v = th_query1(c, sql);
	PQfinish(c);
	return v;
}

/* Advisory locks held in this database (pg_locks is cluster-wide: other tests hold theirs).
 * A closed session's backend lets go of its locks a moment after the client is gone. */
#define ADVISORY_LOCKS_HERE                                                                                  \
	"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "                          \
	"(SELECT oid FROM pg_database WHERE datname = current_database()) AND pid <> pg_backend_pid()"

static char *locks_left(struct fleet *f, const char *svc)
{
	char *v = NULL;
	for (int i = 0; i < 40; i++) {
		free(v);
		v = db_value(f, svc, ADVISORY_LOCKS_HERE);
		if (strcmp(v, "0") == 0)
			break;
		usleep(50000);
	}
	return v;
}

static void fleet_drop(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char sql[512];
	for (size_t i = 0; i < 7; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s_%s\" WITH (FORCE)", f->project,
		         SEVEN[i]);
		th_exec(c, sql);
	}
	PQfinish(c);
	free(f->dir);
}

Test(par_fleet, seven_services_migrate_in_parallel, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL});
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	for (size_t i = 0; i < 7; i++) {
		char *v = db_value(&f, SEVEN[i],
		                   "SELECT string_agg(version || ':' || script || ':' || success, ',' ORDER "
		                   "BY installed_rank) "
		                   "FROM flyway_schema_history WHERE type = 'SQL'");
		cr_assert_str_eq(v, "1:V1__step_1.sql:true,2:V2__step_2.sql:true,3:V3__step_3.sql:true", "%s",
		                 SEVEN[i]);
		free(v);
		/* objects belong to the service's owner, not to the migrator */
		char q[256];
		snprintf(q, sizeof(q), "SELECT tableowner FROM pg_tables WHERE tablename = 't3'");
		v = db_value(&f, SEVEN[i], q);
		char owner[128];
		snprintf(owner, sizeof(owner), "%s_%s_owner", f.project, SEVEN[i]);
		cr_assert_str_eq(v, owner);
		free(v);
	}
	cr_assert(th_contains(err, "wall time"), "summary missing: %s", err);
	cr_assert(!strchr(err, '\x1b'), "escape sequences without a terminal: %s", err);
	free(out);
	free(err);
	/* a second run applies nothing */
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "--json is not JSON: %s\n%s", je.text, out);
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_eq(json_array_size(svcs), 7);
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(json_array_size(json_object_get(json_array_get(svcs, i), "migrations")), 0);
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(par_fleet, one_failure_does_not_stop_the_others, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	fleet_file(&f, "user", "V2__step_2.sql",
	           "-- reads a table that is not there\nCREATE TABLE t2 (id int);\nSELECT id FROM nope;\n");
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", NULL});
	cr_assert_eq(rc, 1, "stderr: %s", err);
	cr_assert(
	    th_contains(err,
	                "user: svc/user/V2__step_2.sql:3:16: ERROR 42P01: relation \"nope\" does not exist"),
	    "stderr: %s", err);
	for (size_t i = 0; i < 7; i++) {
		char *v =
		    db_value(&f, SEVEN[i], "SELECT count(*) FROM flyway_schema_history WHERE type = 'SQL'");
		cr_assert_str_eq(v, strcmp(SEVEN[i], "user") == 0 ? "1" : "3", "%s", SEVEN[i]);
		free(v);
	}
	/* the failed migration left nothing behind */
	char *t2 = db_value(&f, "user", "SELECT count(*) FROM pg_tables WHERE tablename = 't2'");
	cr_assert_str_eq(t2, "0");
	free(t2);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	json_t *svcs = json_object_get(doc, "services");
	json_t *user = json_array_get(svcs, 2);
	cr_assert_str_eq(json_string_value(json_object_get(user, "service")), "user");
	cr_assert_str_eq(json_string_value(json_object_get(user, "result")), "failed");
	json_t *e = json_object_get(user, "error");
	cr_assert_str_eq(json_string_value(json_object_get(e, "sqlstate")), "42P01");
	cr_assert_str_eq(json_string_value(json_object_get(e, "file")), "svc/user/V2__step_2.sql");
	cr_assert_eq(json_integer_value(json_object_get(e, "line")), 3);
	cr_assert_eq(json_integer_value(json_object_get(e, "column")), 16);
	json_t *auth = json_array_get(svcs, 0);
	cr_assert_str_eq(json_string_value(json_object_get(auth, "result")), "ok");
	json_t *m0 = json_array_get(json_object_get(auth, "migrations"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(m0, "version")), "1");
	cr_assert_str_eq(json_string_value(json_object_get(m0, "script")), "V1__step_1.sql");
	cr_assert(json_is_integer(json_object_get(m0, "checksum")));
	cr_assert(json_is_integer(json_object_get(m0, "ms")));
	cr_assert(json_is_string(json_object_get(doc, "run_id")));
	cr_assert_str_eq(json_string_value(json_object_get(doc, "environment")), "test");
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(par_fleet, fail_fast_cancels_the_running_services, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	for (size_t i = 0; i < 7; i++)
		fleet_file(&f, SEVEN[i], "V2__step_2.sql", "SELECT pg_sleep(20);\n");
	fleet_file(&f, "auth", "V2__step_2.sql", "SELECT pg_sleep(1);\nSELECT 1/0;\n");
	char *out, *err;
	time_t t0 = time(NULL);
	int rc = fleet_run(&f, &out, &err,
	                   (const char *const[]){"migrate", "--fail-fast", "--no-provision", NULL});
	/* --no-provision needs the roles and databases: provision first */
	if (rc == 1 && th_contains(err, "does not exist")) {
		free(out);
		free(err);
		cr_assert_eq(fleet_run(&f, &out, &err, (const char *const[]){"provision", NULL}), 0, "%s",
		             err);
		free(out);
		free(err);
		t0 = time(NULL);
		rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--fail-fast", NULL});
	}
	cr_assert_eq(rc, 1, "stderr: %s", err);
	cr_assert_lt(time(NULL) - t0, 15, "--fail-fast must not wait for the 20 s migrations");
	cr_assert(th_contains(err, "ERROR 22012: division by zero"), "%s", err);
	for (size_t i = 0; i < 7; i++) {
		/* a service still waiting for its turn (a server on this machine) never made its table */
		char *v =
		    db_value(&f, SEVEN[i],
		             "SELECT CASE WHEN to_regclass('flyway_schema_history') IS NULL THEN '0' ELSE "
		             "(xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM "
		             "flyway_schema_history WHERE version = ''2''', false, true, '')))[1]::text END");
		cr_assert_str_eq(v, "0", "%s: nothing half-applied", SEVEN[i]);
		free(v);
		v = locks_left(&f, SEVEN[i]);
		cr_assert_str_eq(v, "0", "%s: lock left behind", SEVEN[i]);
		free(v);
	}
	free(out);
	free(err);
	fleet_drop(&f);
}

/* [settings] local_apply_jobs = n in the fleet's manifest. */
static void set_local_apply_jobs(struct fleet *f, int n)
{
	char *m = th_read(f->manifest);
	const char *at = strstr(m, "[settings]\n");
	cr_assert_not_null(at);
	char *m2 = NULL;
	cr_assert(asprintf(&m2, "%.*s[settings]\nlocal_apply_jobs = %d\n%s", (int)(at - m), m, n,
	                   at + strlen("[settings]\n")) > 0);
	th_write(f->dir, "flotilla.toml", m2);
	free(m);
	free(m2);
}

/*
 * With a server on this machine and the default -j, services apply their
 * migrations a few at a time ([settings] local_apply_jobs; here 1). A turn
 * whose migration sleeps is not held: the second sleeper starts while the
 * first still sleeps, where a gate that held turns would run them one
 * after the other.
 */
Test(par_fleet, a_sleeping_migration_does_not_hold_its_turn, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	set_local_apply_jobs(&f, 1);
	static const char *const sleepers[] = {"auth", "client"};
	for (size_t i = 0; i < 2; i++)
		fleet_file(&f, sleepers[i], "V2__step_2.sql",
		           "CREATE TABLE span (s timestamptz, e timestamptz);\n"
		           "INSERT INTO span VALUES (clock_timestamp(), NULL);\n"
		           "SELECT pg_sleep(5);\nUPDATE span SET e = clock_timestamp();\n");
	char *out, *err, page[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--plain", "--html", page, NULL});
	cr_assert_eq(rc, 0, "stderr: %s", err);
	cr_assert(th_contains(err, "waits for a turn: the server runs on this machine, where 1 service "
	                           "applies at a time (local_apply_jobs or -j sets it)"),
	          "the gate never held anyone back: %s", err);
	/* the picture draws the waits as what they are, not as connecting */
	char *html = th_read(page);
	cr_assert(th_contains(html, "<rect class=\"span turn-wait\""), "%s", html);
	free(html);
	char *spans[2];
	for (size_t i = 0; i < 2; i++)
		spans[i] = db_value(&f, sleepers[i], "SELECT s::text || '|' || e::text FROM span");
	PGconn *c = th_connect("postgres");
	char q[512];
	/* the two sleeps overlap: each began before the other ended */
	snprintf(q, sizeof(q),
	         "SELECT split_part('%s', '|', 1)::timestamptz < split_part('%s', '|', 2)::timestamptz AND "
	         "split_part('%s', '|', 1)::timestamptz < split_part('%s', '|', 2)::timestamptz",
	         spans[0], spans[1], spans[1], spans[0]);
	char *overlap = th_query1(c, q);
	PQfinish(c);
	cr_assert_str_eq(overlap, "t", "the sleepers ran one after the other: %s and %s\n%s", spans[0],
	                 spans[1], err);
	free(overlap);
	for (size_t i = 0; i < 7; i++) {
		char *v = db_value(&f, SEVEN[i], "SELECT count(*) FROM flyway_schema_history WHERE success");
		cr_assert_str_eq(v, "3", "%s", SEVEN[i]);
		free(v);
	}
	free(spans[0]);
	free(spans[1]);
	free(out);
	free(err);
	fleet_drop(&f);
}

/*
 * --fail-fast stops the services waiting for a turn too: with one service
 * applying at a time, auth (the most text: the first in line) takes its
 * turn and fails a second later; those still waiting are cancelled before
 * they ran anything (no history table, no lock left), where without the
 * cancel they would apply their migrations once auth let go, and the exit
 * code, the summary and the document say so alike.
 */
Test(par_fleet, fail_fast_ends_the_waits_for_a_turn, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	set_local_apply_jobs(&f, 1);
	char pad[2001], big[2100];
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(big, sizeof(big), "-- %s\nSELECT pg_sleep(1);\nSELECT 1/0;\n", pad);
	fleet_file(&f, "auth", "V2__step_2.sql", big);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err,
	                   (const char *const[]){"migrate", "--fail-fast", "--json", "--plain", NULL});
	cr_assert_eq(rc, 1, "%s", err);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert_not_null(doc, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "failed");
	cr_assert_eq(json_integer_value(json_object_get(doc, "exit_code")), 1);
	json_t *svcs = json_object_get(doc, "services");
	int waited_out = 0;
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *s = json_array_get(svcs, i);
		const char *name = json_string_value(json_object_get(s, "service"));
		const char *result = json_string_value(json_object_get(s, "result"));
		if (strcmp(name, "auth") == 0) {
			cr_assert_str_eq(result, "failed", "%s", out);
			continue;
		}
		if (strcmp(result, "cancelled") != 0)
			continue;
		const char *msg = json_string_value(json_object_get(json_object_get(s, "error"), "message"));
		if (!msg || !strstr(msg, "interrupted: before anything ran"))
			continue;
		waited_out++;
		/* it never got past the first read: no history table, no lock */
		char *v = db_value(&f, name, "SELECT to_regclass('flyway_schema_history') IS NULL");
		cr_assert_str_eq(v, "t", "%s", name);
		free(v);
		v = locks_left(&f, name);
		cr_assert_str_eq(v, "0", "%s: lock left behind", name);
		free(v);
	}
	cr_assert_geq(waited_out, 1, "nobody was waiting for a turn when auth failed:\n%s\n%s", err, out);
	cr_assert(th_contains(err, "cancelled"), "the summary: %s", err);
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(par_fleet, sigint_rolls_back_and_exits_130, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	fleet_file(&f, "task_tracker", "V2__step_2.sql",
	           "CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n");
	char *out, *err;
	/* provision first, so the timing below is the migration's */
	cr_assert_eq(fleet_run(&f, &out, &err, (const char *const[]){"provision", NULL}), 0, "%s", err);
	free(out);
	free(err);
	/* flotilla runs as our direct child (no Criterion code in between), output to files */
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/sigint.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/sigint.err", f.dir);
	pid_t pid = th_spawn(f.dir, NULL, outp, errp,
	                     (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate",
	                                           "--no-provision", NULL});
	/* wait until the sleep runs, then interrupt the flotilla process (the child's child) */
	char db[128];
	snprintf(db, sizeof(db), "%s_task_tracker", f.project);
	cr_assert(th_wait_statement(db, "%pg_sleep(30)%"), "the migration never started: %s", th_read(errp));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d: %s", WEXITSTATUS(st),
	          th_read(errp));
	char *errtext = th_read(errp);
	cr_assert(th_contains(errtext, "interrupted"), "%s", errtext);
	/* what the interrupt left, in words: the transaction is gone, not "an error at line 2" */
	cr_assert(th_contains(errtext,
	                      "task_tracker: V2__step_2.sql rolled back (transaction): nothing of "
	                      "it is applied (ERROR 57014: canceling statement due to user request)"),
	          "%s", errtext);
	free(errtext);
	cr_assert_lt(secs, 2.0, "took %.2f s to stop", secs);
	char *v =
	    db_value(&f, "task_tracker", "SELECT count(*) FROM flyway_schema_history WHERE version = '2'");
	cr_assert_str_eq(v, "0");
	free(v);
	v = db_value(&f, "task_tracker", "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'");
	cr_assert_str_eq(v, "0", "the interrupted migration must be rolled back");
	free(v);
	v = locks_left(&f, "task_tracker");
	cr_assert_str_eq(v, "0", "lock left behind");
	free(v);
	fleet_drop(&f);
}

Test(par_fleet, selection_by_name, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "zz", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "unknown service 'zz'"), "%s", err);
	cr_assert(th_contains(
	              err, "auth, client, user, metric_builder, metric_tracker, task_builder, task_tracker"),
	          "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "auth", "task_builder", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	free(out);
	free(err);
	/* only what the two services need: the other databases are not even created */
	PGconn *pc = th_connect("postgres");
	for (size_t i = 0; i < 7; i++) {
		bool picked = strcmp(SEVEN[i], "auth") == 0 || strcmp(SEVEN[i], "task_builder") == 0;
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname = '%s_%s'",
		         f.project, SEVEN[i]);
		char *n = th_query1(pc, sql);
		cr_assert_str_eq(n, picked ? "1" : "0", "%s", SEVEN[i]);
		free(n);
		if (!picked)
			continue;
		char *v = db_value(&f, SEVEN[i],
		                   "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename "
		                   "= 'flyway_schema_history'");
		cr_assert_str_eq(v, "1", "%s", SEVEN[i]);
		free(v);
	}
	PQfinish(pc);
	fleet_drop(&f);
}

Test(par_fleet, live_view_under_a_terminal, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char cmd[2048], *out;
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && TERM=xterm script -qec \"'%s' -m '%s' -e test migrate\" /dev/null", f.dir,
	         getenv("FLOTILLA_BIN"), f.manifest);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(th_contains(out, "\x1b["), "no redraw under a terminal: %s", out);
	for (size_t i = 0; i < 7; i++)
		cr_assert(th_contains(out, SEVEN[i]), "%s missing", SEVEN[i]);
	cr_assert(th_contains(out, "done: 3 applied"), "%s", out);
	cr_assert(th_contains(out, "wall time"), "%s", out);
	free(out);
	fleet_drop(&f);
}

/* The live view under tmux at 80 and at 40 columns: no line wraps, the summary is there. */
Test(par_fleet, live_view_fits_the_terminal, .timeout = 240)
{
	static const int widths[] = {80, 40};
	for (size_t k = 0; k < 2; k++) {
		struct fleet f;
		fleet_init(&f);
		fleet_file(&f, "user", "V2__step_2.sql",
		           "SELECT id FROM a_table_that_is_not_there_at_all;\n");
		char cmd[4096], *out = NULL;
		snprintf(cmd, sizeof(cmd),
		         "cd '%s' && tmux -S '%s/tmux.sock' new-session -d -x %d -y 24 "
		         "\"TERM=xterm '%s' -m '%s' -e test migrate; echo EXIT=\\$?; sleep 60\"",
		         f.dir, f.dir, widths[k], getenv("FLOTILLA_BIN"), f.manifest);
		int rc = th_sh(cmd, &out);
		cr_assert_eq(rc, 0, "%s", out);
		free(out);
		out = NULL;
		char cap[1024];
		snprintf(cap, sizeof(cap), "tmux -S '%s/tmux.sock' capture-pane -p -J -S -200", f.dir);
		for (int i = 0; i < 400; i++) {
			free(out);
			out = NULL;
			th_sh(cap, &out);
			if (th_contains(out, "EXIT="))
				break;
			usleep(50000);
		}
		char kill[1024];
		snprintf(kill, sizeof(kill), "tmux -S '%s/tmux.sock' kill-server", f.dir);
		char *ko = NULL;
		th_sh(kill, &ko);
		free(ko);
		cr_assert(th_contains(out, "EXIT=1"), "%d columns: %s", widths[k], out);
		cr_assert(th_contains(out, "wall time"), "%d columns: %s", widths[k], out);
		cr_assert(th_contains(out, "FAILED"), "%d columns: %s", widths[k], out);
		/* -J joins wrapped lines: a line longer than the pane wrapped. The live view, the
		 * provisioning lines and the summary fit; the errors after it are whole. */
		char *wall = strstr(out, "wall time");
		char *eol = strchr(wall, '\n');
		if (eol)
			*eol = '\0';
		for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			size_t chars = 0;
			for (const char *p = l; *p; p++)
				chars += ((unsigned char)*p & 0xC0) != 0x80;
			cr_assert_leq(chars, (size_t)widths[k], "%d columns: a line of %zu wrapped: %s",
			              widths[k], chars, l);
		}
		free(out);
		fleet_drop(&f);
	}
}

/* Three tenants of one template: one database, owner and schema each, from one folder. */
Test(par_fleet, tenants_each_get_their_database, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char buf[4096];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[services.billing]\ntenants = [\"acme\", \"globex\", \"initech\"]\n"
	         "database = \"${project}_${service}_${tenant}\"\nowner = \"${project}_${tenant}_owner\"\n"
	         "schema = \"t_${tenant}\"\nmigrations = \"svc/auth\"\n",
	         f.project);
	th_write(f.dir, "flotilla.toml", buf);
	char *out, *err;
	/* by the tenant's name: only that one */
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "billing[globex]", NULL});
	cr_assert_eq(rc, 0, "%s%s", out, err);
	free(out);
	free(err);
	PGconn *pc = th_connect("postgres");
	snprintf(buf, sizeof(buf),
	         "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM "
	         "pg_database WHERE datname LIKE '%s\\_billing\\_%%'",
	         f.project);
	char *v = th_query1(pc, buf);
	char want[512];
	snprintf(want, sizeof(want), "%s_billing_globex:%s_globex_owner", f.project, f.project);
	cr_assert_str_eq(v, want);
	free(v);
	/* by the template's name: all of them */
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "billing", "--json", NULL});
	cr_assert_eq(rc, 0, "%s%s", out, err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert_not_null(doc, "%s", out);
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_eq(json_array_size(svcs), 3, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(svcs, 0), "service")),
	                 "billing[acme]", "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	const char *const t[] = {"acme", "globex", "initech"};
	for (size_t i = 0; i < 3; i++) {
		char db[128];
		snprintf(db, sizeof(db), "%s_billing_%s", f.project, t[i]);
		PGconn *c = th_connect(db);
		snprintf(
		    buf, sizeof(buf),
		    "SELECT count(*) || ':' || string_agg(DISTINCT schemaname, ',') FROM pg_tables WHERE "
		    "tablename IN ('t1', 't2', 't3')");
		v = th_query1(c, buf);
		snprintf(want, sizeof(want), "3:t_%s", t[i]);
		cr_assert_str_eq(v, want, "%s", db);
		free(v);
		PQfinish(c);
		snprintf(buf, sizeof(buf), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
		th_exec(pc, buf);
	}
	PQfinish(pc);
	fleet_drop(&f);
}

/* --connections caps -j: a migrator the server lets open only four connections migrates six
 * tenants with -j 8 and --connections 2 (six at once would be refused by the server). Four, not
 * two: a closed session's backend still counts for a moment after the client let go of it. */
Test(par_fleet, connections_budget_caps_jobs, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char buf[4096];
	PGconn *pc = th_connect("postgres");
	snprintf(buf, sizeof(buf), "CREATE ROLE \"%s_mig\" LOGIN CONNECTION LIMIT 4", f.project);
	th_exec(pc, buf);
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"%s_mig\" }\n"
	         "service_passwords = false\n\n"
	         "[services.shop]\ntenants = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]\n"
	         "database = \"${project}_${service}_${tenant}\"\nowner = \"${project}_${tenant}_owner\"\n"
	         "migrations = \"svc/auth\"\n",
	         f.project, f.project);
	th_write(f.dir, "flotilla.toml", buf);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err,
	                   (const char *const[]){"migrate", "-j", "8", "--connections", "x", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "--connections needs a number from 1 to 100000, not 'x'"), "%s", err);
	free(out);
	free(err);
	rc = fleet_run(&f, &out, &err,
	               (const char *const[]){"migrate", "-j", "8", "--connections", "2", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s%s", out, err);
	free(out);
	free(err);
	const char *const t[] = {"a", "b", "c", "d", "e", "f"};
	for (size_t i = 0; i < 6; i++) {
		char db[128];
		snprintf(db, sizeof(db), "%s_shop_%s", f.project, t[i]);
		PGconn *c = th_connect(db);
		char *v = th_query1(c, "SELECT count(*) FROM flyway_schema_history WHERE success");
		cr_assert_str_eq(v, "3", "%s", db);
		free(v);
		PQfinish(c);
		snprintf(buf, sizeof(buf), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
		th_exec(pc, buf);
	}
	PQfinish(pc);
	fleet_drop(&f);
}

/* Seven services in a five-row terminal: the live view would not fit, one line per event instead. */
Test(par_fleet, live_view_taller_than_the_terminal_turns_plain, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	char cmd[4096], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && tmux -S '%s/tmux.sock' new-session -d -x 100 -y 5 "
	         "\"TERM=xterm '%s' -m '%s' -e test migrate; echo EXIT=\\$?; sleep 60\"",
	         f.dir, f.dir, getenv("FLOTILLA_BIN"), f.manifest);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s", out);
	free(out);
	out = NULL;
	char cap[1024];
	snprintf(cap, sizeof(cap), "tmux -S '%s/tmux.sock' capture-pane -p -J -S -400", f.dir);
	for (int i = 0; i < 400; i++) {
		free(out);
		out = NULL;
		th_sh(cap, &out);
		if (th_contains(out, "EXIT="))
			break;
		usleep(50000);
	}
	char kill[1024];
	snprintf(kill, sizeof(kill), "tmux -S '%s/tmux.sock' kill-server", f.dir);
	char *ko = NULL;
	th_sh(kill, &ko);
	free(ko);
	cr_assert(th_contains(out, "EXIT=0"), "%s", out);
	/* plain lines: "<time>Z task_tracker: connecting", no cursor movement */
	cr_assert(th_contains(out, "Z task_tracker: connecting"), "%s", out);
	cr_assert(th_contains(out, "Z auth: connecting"), "%s", out);
	free(out);
	fleet_drop(&f);
}

/* Seconds of the day of a plain line's timestamp ("2026-12-02T05:38:09.089Z ..."). */
static double line_time(const char *line)
{
	int h, m, s, ms;
	if (sscanf(line + 11, "%d:%d:%d.%dZ", &h, &m, &s, &ms) != 4)
		return -1;
	return h * 3600.0 + m * 60.0 + s + ms / 1000.0;
}

/*
 * The most services of the plain log that were applying migrations at one
 * moment: each from its first "applying" line to its "done" line.
 */
static int most_at_once(const char *log, int *waits)
{
	double start[7], end[7];
	for (size_t i = 0; i < 7; i++)
		start[i] = end[i] = -1;
	*waits = 0;
	for (const char *l = log; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char line[512];
		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), l);
		for (size_t i = 0; i < 7; i++) {
			char who[64];
			snprintf(who, sizeof(who), "Z %s: ", SEVEN[i]);
			const char *p = strstr(line, who);
			if (!p)
				continue;
			p += strlen(who);
			if (strncmp(p, "applying ", 9) == 0 && start[i] < 0)
				start[i] = line_time(line);
			else if (strncmp(p, "done", 4) == 0)
				end[i] = line_time(line);
			else if (strncmp(p, "waits for a turn", 16) == 0)
				(*waits)++;
		}
		l = nl ? nl + 1 : NULL;
	}
	int most = 0;
	for (size_t i = 0; i < 7; i++) {
		cr_assert(start[i] >= 0 && end[i] >= start[i], "%s: no applying/done lines in\n%s", SEVEN[i],
		          log);
		int n = 0; /* the services applying when service i began */
		for (size_t k = 0; k < 7; k++)
			n += start[k] <= start[i] && end[k] > start[i];
		if (n > most)
			most = n;
	}
	return most;
}

/*
 * A server on this machine shares its cores: with the default -j, at most
 * a service per core and one apply migrations at once (the others wait for
 * a turn, and say so); an explicit -j is taken as it is.
 */
Test(par_fleet, a_server_on_this_machine_is_not_oversubscribed, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f);
	for (size_t i = 0; i < 7; i++)
		fleet_file(&f, SEVEN[i], "V4__slow.sql", "SELECT pg_sleep(0.4);\n");
	cpu_set_t cpus;
	cr_assert_eq(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
	int limit = CPU_COUNT(&cpus) + 1;
	if (limit >= 7) { /* a machine with 6 CPUs or more would hold nobody back: ask for 3 */
		limit = 3;
		set_local_apply_jobs(&f, limit);
	}
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	int waits = 0, most = most_at_once(err, &waits);
	cr_assert_leq(most, limit, "%d services applied at once, limit %d:\n%s", most, limit, err);
	cr_assert_geq(waits, 7 - limit, "%d waits:\n%s", waits, err);
	char want[160];
	snprintf(want, sizeof(want),
	         "waits for a turn: the server runs on this machine, where %d services apply at a time "
	         "(local_apply_jobs or -j sets it)\n",
	         limit);
	cr_assert(th_contains(err, want), "%s", err);
	for (size_t i = 0; i < 7; i++) {
		char *v = db_value(&f, SEVEN[i], "SELECT count(*) FROM flyway_schema_history WHERE success");
		cr_assert_str_eq(v, "4", "%s", SEVEN[i]);
		free(v);
	}
	free(out);
	free(err);
	/* -j given: no turns */
	for (size_t i = 0; i < 7; i++)
		fleet_file(&f, SEVEN[i], "V5__slow.sql", "SELECT pg_sleep(0.2);\n");
	rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--plain", "-j", "7", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(!th_contains(err, "waits for a turn"), "%s", err);
	free(out);
	free(err);
	fleet_drop(&f);
}
