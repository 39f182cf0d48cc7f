/*
 * kill -9 inside a no-transaction migration, through the flotilla binary:
 * the rerun continues from the ledger at the first statement not known to
 * be done, checks the one that was in flight, and runs nothing twice. The
 * flotilla process is the test's own child (th_spawn), killed by its pid.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct svc {
	char *dir;
	char project[48];
	char db[96];
	char manifest[600];
};

/* One service, "auth", on the test server; table waits of a minute, so only the test decides when they end.
 */
static void svc_init(struct svc *s, const char *v2)
{
	static int n;
	s->dir = th_tmpdir();
	snprintf(s->project, sizeof(s->project), "r%d_%d", (int)getpid(), ++n);
	snprintf(s->db, sizeof(s->db), "%s_auth", s->project);
	snprintf(s->manifest, sizeof(s->manifest), "%s/flotilla.toml", s->dir);
	char buf[2048];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[settings]\nlock_timeout = \"60s\"\n\n"
	         "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	         "migrations = \"svc/${service}\"\n\n[services.auth]\n",
	         s->project);
	th_write(s->dir, "flotilla.toml", buf);
	th_write(s->dir, "svc/auth/V1__base.sql",
	         "CREATE TABLE counter (n int PRIMARY KEY);\nCREATE TABLE gate (n int);\n");
	th_write(s->dir, "svc/auth/V2__steps.sql", v2);
}

static void svc_drop(struct svc *s)
{
	PGconn *c = th_connect("postgres");
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", s->db);
	th_exec(c, sql);
	PQfinish(c);
	free(s->dir);
}

static int svc_run(struct svc *s, char **out, char **err, const char *verb)
{
	const char *argv[] = {"flotilla", "-m", s->manifest, "-e", "test", verb, "--no-provision", NULL};
	return th_run(s->dir, NULL, out, err, argv);
}

/* Provisions and applies V1 (the tables), so the test can take its locks before V2 runs. */
static void svc_base(struct svc *s)
{
	char *out, *err;
	const char *argv[] = {"flotilla", "-m", s->manifest, "-e", "test", "migrate", "--target", "1", NULL};
	int rc = th_run(s->dir, NULL, &out, &err, argv);
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
}

static char *value(struct svc *s, const char *sql)
{
	PGconn *c = th_connect(s->db);
	char *v = th_query1(c, sql);
	PQfinish(c);
	return v;
}

static void assert_value(struct svc *s, const char *expect, const char *sql)
{
	char *v = value(s, sql);
	cr_assert(v && strcmp(v, expect) == 0, "%s\n  expected: %s\n  got:      %s", sql, expect,
	          v ? v : "(null)");
	free(v);
}

/* Polls `sql` (on the service's database) every 50 ms for up to 30 s until it gives "t". */
static bool wait_for(struct svc *s, const char *sql)
{
	for (int i = 0; i < 600; i++) {
		char *v = value(s, sql);
		bool yes = v && strcmp(v, "t") == 0;
		free(v);
		if (yes)
			return true;
		usleep(50000);
	}
	return false;
}

/* kill -9 of our child, then the end of the server sessions it left behind, but `keep`'s. */
static void kill_and_clean(struct svc *s, pid_t pid, int keep)
{
	cr_assert_eq(kill(pid, SIGKILL), 0);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	PGconn *c = th_connect("postgres");
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s' AND pid "
	         "<> %d",
	         s->db, keep);
	free(th_query1(c, sql));
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = '%s' AND pid <> %d", s->db, keep);
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		char *v = th_query1(c, sql);
		gone = strcmp(v, "t") == 0;
		free(v);
		if (!gone)
			usleep(50000);
	}
	cr_assert(gone, "the killed run's sessions are still there");
	PQfinish(c);
}

/*
 * Starts migrate in the background (our own child) and returns its pid once a statement starting with
 * `prefix` waits for a lock on the server.
 */
static pid_t migrate_until_blocked(struct svc *s, const char *prefix)
{
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/migrate.out", s->dir);
	snprintf(errp, sizeof(errp), "%s/migrate.err", s->dir);
	pid_t pid = th_spawn(s->dir, NULL, outp, errp,
	                     (const char *const[]){"flotilla", "-m", s->manifest, "-e", "test", "migrate",
	                                           "--no-provision", NULL});
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
	         "wait_event_type = 'Lock' AND query LIKE '%s%%')",
	         prefix);
	if (!wait_for(s, sql)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		char *e = th_read(errp);
		cr_assert_fail("\"%s\" never started waiting: %s", prefix, e);
	}
	return pid;
}

Test(resume, kill_9_during_statement_3_continues_there_and_statement_1_ran_once, .timeout = 120)
{
	struct svc s;
	/* (the index comes last: a build would wait for the test's transaction on gate) */
	svc_init(&s, "-- flotilla:no-transaction\n"
	             "INSERT INTO counter VALUES (1);\n"
	             "CREATE TABLE extra (n int);\n"
	             "INSERT INTO gate VALUES (3);\n"
	             "CREATE INDEX CONCURRENTLY counter_idx ON counter (n);\n");
	char *out, *err;
	svc_base(&s);
	/* statement 3 waits behind our lock on gate, for as long as we like */
	PGconn *gate = th_connect(s.db);
	th_exec(gate, "BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
	pid_t pid = migrate_until_blocked(&s, "INSERT INTO gate");
	assert_value(&s, "2||",
	             "SELECT statements_done || '|' || coalesce(in_flight::text, '') || '|' || "
	             "coalesce(success::text, "
	             "'') FROM flotilla.execution WHERE script = 'V2__steps.sql'");
	kill_and_clean(&s, pid, PQbackendPID(gate));
	/* killed: no history row for V2, so only the ledger knows how far it got */
	assert_value(&s, "0", "SELECT count(*) FROM flyway_schema_history WHERE version = '2'");
	th_exec(gate, "COMMIT");
	PQfinish(gate);
	assert_value(&s, "0", "SELECT count(*) FROM gate");

	int rc = svc_run(&s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	assert_value(&s, "1", "SELECT string_agg(n::text, ',' ORDER BY n) FROM counter");
	assert_value(&s, "3", "SELECT string_agg(n::text, ',') FROM gate");
	assert_value(&s, "1", "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'");
	assert_value(&s, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	assert_value(&s, "1:true,2:true",
	             "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	             "flyway_schema_history WHERE type = 'SQL'");
	assert_value(
	    &s, "4|4|true|3",
	    "SELECT statements_done || '|' || statements_total || '|' || success || '|' || resumed_from FROM "
	    "flotilla.execution WHERE script = 'V2__steps.sql' ORDER BY id DESC LIMIT 1");
	/* the killed run's row: abandoned by the run that came after it */
	assert_value(&s, "abandoned,success",
	             "SELECT string_agg(outcome, ',' ORDER BY id) FROM flotilla.run WHERE command = "
	             "'migrate' AND id > "
	             "(SELECT min(id) FROM flotilla.run)");
	svc_drop(&s);
}

Test(resume, kill_9_during_create_index_concurrently_rebuilds_the_invalid_index, .timeout = 120)
{
	struct svc s;
	svc_init(&s, "-- flotilla:no-transaction\n"
	             "INSERT INTO counter VALUES (1);\n"
	             "CREATE INDEX CONCURRENTLY counter_idx ON counter (n);\n"
	             "INSERT INTO counter VALUES (3);\n");
	char *out, *err;
	svc_base(&s);
	/* a writer's open transaction: the build creates the index (INVALID) and waits for it */
	PGconn *writer = th_connect(s.db);
	th_exec(writer, "BEGIN; INSERT INTO counter VALUES (100)");
	pid_t pid = migrate_until_blocked(&s, "CREATE INDEX CONCURRENTLY");
	assert_value(&s, "1|2",
	             "SELECT statements_done || '|' || in_flight FROM flotilla.execution WHERE script = "
	             "'V2__steps.sql'");
	kill_and_clean(&s, pid, PQbackendPID(writer));
	assert_value(&s, "f", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	th_exec(writer, "ROLLBACK");
	PQfinish(writer);

	int rc = svc_run(&s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	cr_assert(th_contains(err,
	                      "index counter_idx is INVALID (an earlier CREATE INDEX CONCURRENTLY was "
	                      "interrupted): dropping it (DROP INDEX CONCURRENTLY) and building it again"),
	          "%s", err);
	free(out);
	free(err);
	assert_value(&s, "1,3", "SELECT string_agg(n::text, ',' ORDER BY n) FROM counter");
	assert_value(&s, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	assert_value(&s, "1:true,2:true",
	             "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	             "flyway_schema_history WHERE type = 'SQL'");
	/* validate agrees: nothing failed, nothing pending */
	rc = svc_run(&s, &out, &err, "validate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	svc_drop(&s);
}

/* Waits for our child to end by itself (at most 60 s) and returns its exit code. */
static int wait_exit(pid_t pid)
{
	for (int i = 0; i < 1200; i++) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("flotilla did not end within 60 s");
	return -1;
}

static const char *const cic_v2 = "-- flotilla:no-transaction\n"
                                  "INSERT INTO counter VALUES (1);\n"
                                  "CREATE INDEX CONCURRENTLY counter_idx ON counter (n);\n"
                                  "INSERT INTO counter VALUES (3);\n";

/* After an interrupted build: the rerun rebuilds the index valid and records V2 once, and validate is clean.
 */
static void assert_rerun_rebuilds(struct svc *s)
{
	char *out, *err;
	int rc = svc_run(s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	cr_assert(th_contains(err,
	                      "index counter_idx is INVALID (an earlier CREATE INDEX CONCURRENTLY was "
	                      "interrupted): dropping it (DROP INDEX CONCURRENTLY) and building it again"),
	          "%s", err);
	free(out);
	free(err);
	assert_value(s, "1,3", "SELECT string_agg(n::text, ',' ORDER BY n) FROM counter");
	assert_value(s, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	assert_value(s, "1:true,2:true",
	             "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	             "flyway_schema_history WHERE type = 'SQL'");
	rc = svc_run(s, &out, &err, "validate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
}

Test(resume, sigint_during_create_index_concurrently_says_what_is_left_and_the_rerun_rebuilds_it,
     .timeout = 120)
{
	struct svc s;
	svc_init(&s, cic_v2);
	svc_base(&s);
	/* a writer's open transaction: the build creates the index (INVALID) and waits for it */
	PGconn *writer = th_connect(s.db);
	th_exec(writer, "BEGIN; INSERT INTO counter VALUES (100)");
	pid_t pid = migrate_until_blocked(&s, "CREATE INDEX CONCURRENTLY");
	cr_assert_eq(kill(pid, SIGINT), 0);
	int rc = wait_exit(pid);
	char path[700];
	snprintf(path, sizeof(path), "%s/migrate.err", s.dir);
	char *err = th_read(path);
	cr_assert_eq(rc, 130, "%s", err);
	/* what was not rolled back is said so: statement 1 is done, the index is INVALID */
	cr_assert(th_contains(err, "auth: V2__steps.sql: statement 2 of 3 interrupted (no transaction; "
	                           "statement 1 done and kept); index counter_idx left INVALID, dropped "
	                           "and built again on the next run"),
	          "%s", err);
	free(err);
	assert_value(&s, "f", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	/* until then validate names it and the migration that builds it */
	char *out;
	rc = svc_run(&s, &out, &err, "validate");
	cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
	cr_assert(th_contains(err, "svc/auth/V2__steps.sql:3:1: index counter_idx on table public.counter is "
	                           "INVALID"),
	          "%s", err);
	free(out);
	free(err);
	th_exec(writer, "ROLLBACK");
	PQfinish(writer);
	assert_rerun_rebuilds(&s);
	svc_drop(&s);
}

Test(resume, terminated_backend_during_create_index_concurrently_is_a_lost_connection_and_rebuilt,
     .timeout = 120)
{
	struct svc s;
	svc_init(&s, cic_v2);
	svc_base(&s);
	PGconn *writer = th_connect(s.db);
	th_exec(writer, "BEGIN; INSERT INTO counter VALUES (100)");
	pid_t pid = migrate_until_blocked(&s, "CREATE INDEX CONCURRENTLY");
	/* another session ends the build's backend, as an operator would */
	assert_value(&s, "t",
	             "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
	             "current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%'");
	int rc = wait_exit(pid);
	char path[700];
	snprintf(path, sizeof(path), "%s/migrate.err", s.dir);
	char *err = th_read(path);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert(th_contains(err, "lost the connection"), "%s", err);
	/* not an error in the file: the statement was fine, the connection went */
	cr_assert(!th_contains(err, "V2__steps.sql:3:1"), "%s", err);
	free(err);
	assert_value(&s, "f", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'counter_idx'::regclass");
	th_exec(writer, "ROLLBACK");
	PQfinish(writer);
	assert_rerun_rebuilds(&s);
	svc_drop(&s);
}

Test(resume, validate_names_every_invalid_index_and_the_migration_that_creates_it, .timeout = 120)
{
	struct svc s;
	svc_init(&s, "-- flotilla:no-transaction\nCREATE INDEX CONCURRENTLY counter_idx ON counter (n);\n");
	char *out, *err;
	const char *migrate[] = {"flotilla", "-m", s.manifest, "-e", "test", "migrate", NULL};
	int rc = th_run(s.dir, NULL, &out, &err, migrate);
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	/* one INVALID index a migration creates, one made by hand (as a cancelled build leaves them) */
	PGconn *c = th_connect(s.db);
	th_exec(c, "CREATE INDEX \"Gate_Idx\" ON gate (n)");
	th_exec(c, "UPDATE pg_index SET indisvalid = false WHERE indexrelid IN ('counter_idx'::regclass, "
	           "'\"Gate_Idx\"'::regclass)");
	PQfinish(c);
	rc = svc_run(&s, &out, &err, "validate");
	cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
	cr_assert(th_contains(err, "svc/auth/V2__steps.sql:2:1: index counter_idx on table public.counter is "
	                           "INVALID (a CREATE INDEX CONCURRENTLY or REINDEX that did not finish); it "
	                           "was created by V2__steps.sql"),
	          "%s", err);
	cr_assert(th_contains(err, "index Gate_Idx on table public.gate is INVALID (a CREATE INDEX "
	                           "CONCURRENTLY or REINDEX that did not finish); no migration of this "
	                           "service creates it"),
	          "%s", err);
	free(out);
	free(err);
	/* the JSON document lists both among the service's problems */
	const char *argv[] = {"flotilla", "-m", s.manifest, "-e", "test", "validate", "--json", NULL};
	rc = th_run(s.dir, NULL, &out, &err, argv);
	cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "not JSON: %s\n%s", je.text, out);
	json_t *probs = json_object_get(json_array_get(json_object_get(doc, "services"), 0), "problems");
	cr_assert(json_is_array(probs), "%s", out);
	char *all = json_dumps(probs, 0);
	cr_assert(th_contains(all, "index counter_idx on table public.counter is INVALID"), "%s", all);
	cr_assert(th_contains(all, "V2__steps.sql"), "%s", all);
	cr_assert(th_contains(all, "index Gate_Idx on table public.gate is INVALID"), "%s", all);
	free(all);
	json_decref(doc);
	free(out);
	free(err);
	svc_drop(&s);
}

/* Found by make test-faults: a run killed after its last migration, before it closed its run row. */
Test(resume, run_killed_after_its_last_migration_is_marked_abandoned_by_a_run_with_nothing_to_do,
     .timeout = 120)
{
	struct svc s;
	svc_init(&s, "INSERT INTO counter VALUES (1);\n");
	char *out, *err;
	svc_base(&s);
	int rc = svc_run(&s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	/* what kill -9 between the last COMMIT and the run row's UPDATE leaves */
	PGconn *c = th_connect(s.db);
	th_exec(c, "UPDATE flotilla.run SET finished = NULL, outcome = NULL WHERE id = (SELECT max(id) FROM "
	           "flotilla.run)");
	PQfinish(c);
	rc = svc_run(&s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	cr_assert(th_contains(out, "up to date") || th_contains(err, "up to date"), "%s%s", out, err);
	free(out);
	free(err);
	assert_value(&s, "0", "SELECT count(*) FROM flotilla.run WHERE finished IS NULL OR outcome IS NULL");
	assert_value(&s, "abandoned,success",
	             "SELECT string_agg(outcome, ',' ORDER BY id) FROM flotilla.run WHERE id > (SELECT "
	             "min(id) FROM flotilla.run WHERE command = 'migrate')");
	assert_value(&s, "1", "SELECT count(*) FROM counter");
	svc_drop(&s);
}

Test(resume, terminated_backend_in_a_transactional_migration_is_a_lost_connection_not_a_file_error,
     .timeout = 120)
{
	struct svc s;
	/* sleeps while gate has a row: the test decides */
	svc_init(&s, "INSERT INTO counter VALUES (1);\n"
	             "SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM gate) THEN 60 ELSE 0 END);\n");
	svc_base(&s);
	PGconn *c = th_connect(s.db);
	th_exec(c, "INSERT INTO gate VALUES (1)");
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/migrate.out", s.dir);
	snprintf(errp, sizeof(errp), "%s/migrate.err", s.dir);
	pid_t pid = th_spawn(s.dir, NULL, outp, errp,
	                     (const char *const[]){"flotilla", "-m", s.manifest, "-e", "test", "migrate",
	                                           "--no-provision", NULL});
	cr_assert(wait_for(&s, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
	                       "current_database() AND wait_event = 'PgSleep')"),
	          "the migration never slept");
	assert_value(&s, "t",
	             "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
	             "current_database() AND wait_event = 'PgSleep'");
	int rc = wait_exit(pid);
	char *err = th_read(errp);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert(th_contains(err,
	                      "auth: V2__steps.sql: lost the connection before its COMMIT was confirmed: "
	                      "the server rolls back what it did not commit, and the next run applies "
	                      "it only if the history table does not record it"),
	          "%s", err);
	cr_assert(!th_contains(err, "V2__steps.sql:2:1"), "%s", err);
	free(err);
	th_exec(c, "DELETE FROM gate");
	PQfinish(c);
	char *out;
	rc = svc_run(&s, &out, &err, "migrate");
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	free(out);
	free(err);
	assert_value(&s, "1", "SELECT string_agg(n::text, ',') FROM counter");
	assert_value(&s, "1:true,2:true",
	             "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	             "flyway_schema_history WHERE type = 'SQL'");
	svc_drop(&s);
}
