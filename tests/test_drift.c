/*
 * drift through the flotilla binary on the test server: a small fleet (two
 * services, one reading the other) migrated and provisioned, then changed by
 * hand one way at a time; each change must be reported with its service,
 * object and wording, exit 3; the schema findings are cross-checked with
 * pg_dump of the shadow and the live database; no shadow database survives
 * success, failure or SIGINT. --shadow replays on a second private server;
 * in a git repository (built with libgit2) a changed applied file names the
 * commit that changed it.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <git2.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "driftfleet.h"
#include "history.h"
#include "migration.h"

struct fleet {
	char *dir;
	char project[48];
	char manifest[600];
	char auth[32], user[32]; /* service names: unique per test, since shadows are named after them */
	char auth_db[96], user_db[96];
	char auth_owner[128], user_owner[128];
	char admin[64]; /* mini_init with a least-privilege admin: its name; else "" */
};

static const char AUTH_V1[] =
    "CREATE TABLE users (\n"
    "  id int PRIMARY KEY,\n"
    "  email text NOT NULL,\n"
    "  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked')),\n"
    "  score int CONSTRAINT users_score_check CHECK (score >= 0),\n"
    "  created_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE INDEX users_email_idx ON users (email);\n";
static const char AUTH_V2[] =
    "CREATE TABLE sessions (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users (id) ON DELETE "
    "CASCADE,\n"
    "  ts timestamptz);\n"
    "CREATE INDEX sessions_ts_idx ON sessions (ts DESC);\n"
    "CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';\n"
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.ts := now(); RETURN NEW; "
    "END$$;\n";

/* a fresh directory and names no other test uses (shadows are named after the services) */
static void fleet_names(struct fleet *f, const char *project, const char *second, const char *tag)
{
	static int n;
	f->dir = th_tmpdir();
	snprintf(f->project, sizeof(f->project), "%s%d_%d", project, (int)getpid(), ++n);
	snprintf(f->manifest, sizeof(f->manifest), "%s/flotilla.toml", f->dir);
	snprintf(f->auth, sizeof(f->auth), "auth_%s", tag);
	snprintf(f->user, sizeof(f->user), "%s_%s", second, tag);
	snprintf(f->auth_db, sizeof(f->auth_db), "%s_%s", f->project, f->auth);
	snprintf(f->user_db, sizeof(f->user_db), "%s_%s", f->project, f->user);
	snprintf(f->auth_owner, sizeof(f->auth_owner), "%s_%s_owner", f->project, f->auth);
	snprintf(f->user_owner, sizeof(f->user_owner), "%s_%s_owner", f->project, f->user);
}

static void fleet_init(struct fleet *f, const char *tag)
{
	fleet_names(f, "d", "user", tag);
	char buf[4096];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[settings]\nlock_timeout = \"5s\"\n\n"
	         "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	         "migrations = \"svc/${service}\"\n\n"
	         "[services.%s]\nreads = [\"%s\"]\n\n[services.%s]\n",
	         f->project, f->auth, f->user, f->user);
	th_write(f->dir, "flotilla.toml", buf);
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V1__users.sql", f->auth);
	th_write(f->dir, rel, AUTH_V1);
	snprintf(rel, sizeof(rel), "svc/%s/V2__sessions.sql", f->auth);
	th_write(f->dir, rel, AUTH_V2);
	snprintf(rel, sizeof(rel), "svc/%s/V1__profiles.sql", f->user);
	th_write(f->dir, rel, "CREATE TABLE profiles (id int PRIMARY KEY, name text);\n");
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

static void fleet_migrate(struct fleet *f)
{
	char *out, *err;
	int rc = fleet_run(f, &out, &err, (const char *const[]){"migrate", NULL});
	cr_assert_eq(rc, 0, "migrate: %s\n%s", out, err);
	free(out);
	free(err);
}

static char *str_cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *r = malloc(la + lb + 1);
	memcpy(r, a, la);
	memcpy(r + la, b, lb + 1);
	return r;
}

static void db_exec(const char *db, const char *sql)
{
	PGconn *c = th_connect(db);
	th_exec(c, sql);
	PQfinish(c);
}

/* shadow databases of one service on the server */
static int shadows_of(const char *service)
{
	PGconn *c = th_connect("postgres");
	char q[512];
	snprintf(q, sizeof(q),
	         "SELECT count(*) FROM pg_database WHERE datname LIKE 'flotilla\\_shadow\\_%s\\_%%'",
	         service);
	char *v = th_query1(c, q);
	PQfinish(c);
	int n = atoi(v);
	free(v);
	return n;
}

/* shadows of this fleet's services left on the server */
static int shadows_left(struct fleet *f)
{
	return shadows_of(f->auth) + shadows_of(f->user);
}

static void fleet_drop(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char sql[512];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", f->auth_db);
	th_exec(c, sql);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", f->user_db);
	th_exec(c, sql);
	PQfinish(c);
	free(f->dir);
}

/* drift with args; asserts the exit code and that no shadow is left */
static char *drift(struct fleet *f, int want, const char *const *args)
{
	const char *argv[16] = {"drift"};
	size_t n = 1;
	for (; args && *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	char *out, *err;
	int rc = fleet_run(f, &out, &err, argv);
	cr_assert_eq(rc, want, "drift exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s", rc, want, out, err);
	cr_assert_eq(shadows_left(f), 0, "a shadow database was left behind\n%s", err);
	free(err);
	return out;
}

#define ASSERT_LINE(out, line) cr_assert(th_contains(out, line), "missing:\n  %s\nin:\n%s", line, out)

Test(drift, fresh_fleet_is_clean, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "cl");
	fleet_migrate(&f);
	char *out = drift(&f, 0, NULL);
	char line[256];
	snprintf(line, sizeof(line), "%s: clean at version 2\n", f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "%s: clean at version 1\n", f.user);
	ASSERT_LINE(out, line);
	ASSERT_LINE(out, "drift: 0 findings");
	free(out);
	out = drift(&f, 0, (const char *const[]){"--json", NULL});
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "not JSON: %s\n%s", je.text, out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "clean");
	cr_assert_eq(json_integer_value(json_object_get(doc, "exit_code")), 0);
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_eq(json_array_size(svcs), 2);
	json_t *a = json_array_get(svcs, 0);
	cr_assert_str_eq(json_string_value(json_object_get(a, "service")), f.auth);
	cr_assert_str_eq(json_string_value(json_object_get(a, "database")), f.auth_db);
	cr_assert_str_eq(json_string_value(json_object_get(a, "version")), "2");
	cr_assert_str_eq(json_string_value(json_object_get(a, "result")), "clean");
	cr_assert_eq(json_array_size(json_object_get(a, "findings")), 0);
	cr_assert_eq(json_array_size(json_object_get(json_object_get(doc, "cluster"), "findings")), 0);
	json_decref(doc);
	free(out);
	/* usage */
	char *o2, *e2;
	cr_assert_eq(fleet_run(&f, &o2, &e2, (const char *const[]){"drift", "--only", "schemas", NULL}), 2);
	cr_assert(th_contains(e2, "--only: unknown check 'schemas'"), "%s", e2);
	free(o2);
	free(e2);
	cr_assert_eq(fleet_run(&f, &o2, &e2, (const char *const[]){"drift", "nope", NULL}), 2);
	free(o2);
	free(e2);
	fleet_drop(&f);
}

/* pg_dump --schema-only of a database, without privileges, flotilla's schema and the history table */
static char *dump(const char *db)
{
	char cmd[512], *out;
	snprintf(cmd, sizeof(cmd),
	         "pg_dump --schema-only --no-privileges -N flotilla -T public.flyway_schema_history '%s' "
	         "| grep -v -e '^--' -e '^$' -e '^\\\\restrict' -e '^\\\\unrestrict'",
	         db);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "pg_dump %s: %s", db, out);
	return out;
}

struct change {
	const char *sql;    /* makes the drift (%s: the owner, where needed) */
	const char *revert; /* undoes it */
	const char *line;   /* what drift says, after "<service>: " (NULL: no drift expected) */
};

/*
 * Every schema change, one at a time on one fleet: drift finds it with the
 * expected line and exit 3, pg_dump of the kept shadow and of the live
 * database differ exactly then; reverted, drift is clean and the dumps equal.
 */
Test(drift, schema_changes_detected_and_cross_checked_with_pg_dump, .timeout = 600)
{
	struct fleet f;
	fleet_init(&f, "sc");
	fleet_migrate(&f);
	char owner_sql[256], owner_rev[256];
	snprintf(owner_sql, sizeof(owner_sql), "ALTER TABLE sessions OWNER TO postgres");
	snprintf(owner_rev, sizeof(owner_rev), "ALTER TABLE sessions OWNER TO \"%s\"", f.auth_owner);
	char owner_line[256];
	snprintf(owner_line, sizeof(owner_line), "table sessions differs: owner expected %s, found postgres",
	         f.auth_owner);
	const struct change changes[] = {
	    {"ALTER TABLE users ADD COLUMN nickname text", "ALTER TABLE users DROP COLUMN nickname",
	     "column users.nickname (text) exists in the database but not in the migrations"},
	    {"ALTER TABLE users DROP COLUMN created_at",
	     "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
	     "column users.created_at (timestamp with time zone) is in the migrations but not in the "
	     "database"},
	    {"ALTER TABLE users ALTER COLUMN score TYPE bigint",
	     "ALTER TABLE users ALTER COLUMN score TYPE int",
	     "column users.score differs: type expected integer, found bigint"},
	    {"ALTER TABLE users ALTER COLUMN status SET DEFAULT 'locked'",
	     "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'active'",
	     "column users.status differs: default expected 'active'::text, found 'locked'::text"},
	    {"ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
	     "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
	     "column users.email differs: nullability expected NOT NULL, found nullable"},
	    {"CREATE INDEX users_status_idx ON users (status)", "DROP INDEX users_status_idx",
	     "index users_status_idx (status) exists in the database but not in the migrations"},
	    {"DROP INDEX users_email_idx", "CREATE INDEX users_email_idx ON users (email)",
	     "index users_email_idx (email) is in the migrations but not in the database"},
	    {"DROP INDEX sessions_ts_idx; CREATE INDEX sessions_ts_idx ON sessions (ts)",
	     "DROP INDEX sessions_ts_idx; CREATE INDEX sessions_ts_idx ON sessions (ts DESC)",
	     "index sessions_ts_idx differs: expected (ts DESC), found (ts)"},
	    {"CREATE TABLE scratch (id int, note text)", "DROP TABLE scratch",
	     "table scratch exists in the database but not in the migrations"},
	    {"ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey",
	     "ALTER TABLE sessions ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES "
	     "users (id) "
	     "ON DELETE CASCADE",
	     "foreign key sessions.sessions_user_id_fkey (FOREIGN KEY (user_id) REFERENCES public.users(id) "
	     "ON "
	     "DELETE "
	     "CASCADE) is in the migrations but not in the database"},
	    {"ALTER TABLE users DROP CONSTRAINT users_score_check, "
	     "ADD CONSTRAINT users_score_check CHECK (score >= 1)",
	     "ALTER TABLE users DROP CONSTRAINT users_score_check, "
	     "ADD CONSTRAINT users_score_check CHECK (score >= 0)",
	     "check constraint users.users_score_check differs: expected CHECK ((score >= 0)), found CHECK "
	     "((score >= 1))"},
	    {"CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE status = 'locked'",
	     "CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active'",
	     "view active_users differs: line 4: expected \"WHERE (users.status = 'active'::text);\", found "
	     "\"WHERE (users.status = 'locked'::text);\""},
	    {"CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
	     "$$BEGIN NEW.ts := clock_timestamp(); RETURN NEW; END$$",
	     "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
	     "$$BEGIN NEW.ts := now(); RETURN NEW; END$$",
	     "function touch() differs: line 4: expected \"AS $function$BEGIN NEW.ts := now(); RETURN NEW; "
	     "END$function$\", found \"AS $function$BEGIN NEW.ts := clock_timestamp(); RETURN NEW; "
	     "END$function$\""},
	    {"CREATE TRIGGER sessions_touch BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION touch()",
	     "DROP TRIGGER sessions_touch ON sessions",
	     "trigger sessions.sessions_touch exists in the database but not in the migrations"},
	    {owner_sql, owner_rev, owner_line},
	    /* data is not schema: no drift, and pg_dump agrees */
	    {"INSERT INTO users (id, email) VALUES (1, 'a@b.c')", "DELETE FROM users", NULL},
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		const struct change *ch = &changes[i];
		db_exec(f.auth_db, ch->sql);
		char *out, *err;
		int rc = fleet_run(
		    &f, &out, &err,
		    (const char *const[]){"drift", f.auth, "--only", "schema", "--keep-shadow", NULL});
		cr_assert_eq(rc, ch->line ? 3 : 0, "%s: exit %d\n%s\n%s", ch->sql, rc, out, err);
		if (ch->line) {
			char want[1024];
			snprintf(want, sizeof(want), "  %s: %s\n", f.auth, ch->line);
			cr_assert(th_contains(out, want), "%s:\nmissing: %s\nin:\n%s", ch->sql, want, out);
		}
		/* the kept shadow, named on stderr */
		const char *k = strstr(err, "shadow database kept: ");
		cr_assert(k, "%s", err);
		k += strlen("shadow database kept: ");
		char shadow[128];
		snprintf(shadow, sizeof(shadow), "%.*s", (int)strcspn(k, "\n"), k);
		cr_assert(strncmp(shadow, "flotilla_shadow_", 16) == 0, "%s", shadow);
		char *ds = dump(shadow), *dl = dump(f.auth_db);
		bool differ = strcmp(ds, dl) != 0;
		cr_assert_eq(differ, ch->line != NULL,
		             "%s: pg_dump %s, flotilla %s\n--- shadow\n%s\n--- live\n%s", ch->sql,
		             differ ? "differs" : "is equal", ch->line ? "found drift" : "found none", ds,
		             dl);
		free(ds);
		free(dl);
		char drop[256];
		snprintf(drop, sizeof(drop), "DROP DATABASE \"%s\" WITH (FORCE)", shadow);
		db_exec("postgres", drop);
		free(out);
		free(err);
		/* reverted: clean again */
		db_exec(f.auth_db, ch->revert);
		out = drift(&f, 0, (const char *const[]){f.auth, "--only", "schema", NULL});
		free(out);
	}
	fleet_drop(&f);
}

Test(drift, grant_changes, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "gr");
	fleet_migrate(&f);
	char sql[512], line[512];
	/* a reader (auth's owner reads user) gets INSERT */
	snprintf(sql, sizeof(sql), "GRANT INSERT ON profiles TO \"%s\"", f.auth_owner);
	db_exec(f.user_db, sql);
	/* PUBLIC may connect to auth's database */
	snprintf(sql, sizeof(sql), "GRANT CONNECT ON DATABASE \"%s\" TO PUBLIC", f.auth_db);
	db_exec("postgres", sql);
	/* a role joins the owner's group */
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s_intruder\"; GRANT \"%s\" TO \"%s_intruder\"", f.project,
	         f.user_owner, f.project);
	db_exec("postgres", sql);
	char *out = drift(&f, 3, (const char *const[]){"--only", "grants", NULL});
	snprintf(line, sizeof(line),
	         "  %s: SECURITY: extra privilege in %s: prune: role %s has INSERT on table public.profiles",
	         f.user, f.user_db, f.auth_owner);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line),
	         "  %s: SECURITY: extra privilege: take PUBLIC's access to database %s away", f.auth,
	         f.auth_db);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "%s_intruder", f.project);
	ASSERT_LINE(out, line);
	/* the membership line is the user service's (it names its owner) and a security finding */
	const char *p = strstr(out, line);
	const char *bol = p;
	while (bol > out && bol[-1] != '\n')
		bol--;
	char head[256];
	snprintf(head, sizeof(head), "  %s: SECURITY: ", f.user);
	cr_assert(strncmp(bol, head, strlen(head)) == 0, "membership line: %.*s", (int)strcspn(bol, "\n"),
	          bol);
	free(out);
	/* JSON: kind, change and object of each */
	out = drift(&f, 3, (const char *const[]){"--only", "grants", "--json", NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "drift");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "counts"), "security")), 3, "%s",
	             out);
	json_t *fa = json_object_get(json_array_get(json_object_get(doc, "services"), 0), "findings");
	cr_assert_eq(json_array_size(fa), 1, "%s", out);
	json_t *f0 = json_array_get(fa, 0);
	cr_assert_str_eq(json_string_value(json_object_get(f0, "kind")), "grants");
	cr_assert_str_eq(json_string_value(json_object_get(f0, "change")), "security");
	json_decref(doc);
	free(out);
	snprintf(sql, sizeof(sql), "DROP ROLE \"%s_intruder\"", f.project);
	db_exec("postgres", sql);
	fleet_drop(&f);
}

Test(drift, history_changes, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "hi");
	char rel[256], line[512];
	snprintf(rel, sizeof(rel), "svc/%s/V2__prefs.sql", f.user);
	th_write(f.dir, rel, "CREATE TABLE prefs (id int);\n");
	snprintf(rel, sizeof(rel), "svc/%s/V3__prefs2.sql", f.user);
	th_write(f.dir, rel, "CREATE TABLE prefs2 (id int);\n");
	fleet_migrate(&f);
	/* an applied file edited (a comment: the schema stays the same) */
	snprintf(rel, sizeof(rel), "svc/%s/V1__users.sql", f.auth);
	char *edited = str_cat(AUTH_V1, "-- edited after it was applied\n");
	th_write(f.dir, rel, edited);
	free(edited);
	/* an applied file deleted */
	char path[1024];
	snprintf(path, sizeof(path), "%s/svc/%s/V2__prefs.sql", f.dir, f.user);
	cr_assert_eq(unlink(path), 0);
	/* a history row inserted by hand */
	db_exec(f.auth_db,
	        "INSERT INTO flyway_schema_history VALUES (100, '7', 'hotfix', 'SQL', 'V7__hotfix.sql', 1, "
	        "'someone', now(), 1, true)");
	char *out = drift(&f, 3, (const char *const[]){"--only", "history", NULL});
	snprintf(
	    line, sizeof(line),
	    "  %s: migration 1 (users) (svc/%s/V1__users.sql) was changed after it was applied: checksum ",
	    f.auth, f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "  %s: migration 2 (prefs) was applied (", f.user);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), ") but its file svc/%s/V2__prefs.sql is missing from the repository\n",
	         f.user);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "  %s: migration 7 (hotfix) is applied (", f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line),
	         "but the repository does not know version 7 (no file svc/%s/V7__hotfix.sql; its latest "
	         "is 2): the database is ahead, or the file was deleted\n",
	         f.auth);
	ASSERT_LINE(out, line);
	/* a pending file: the database is behind */
	snprintf(rel, sizeof(rel), "svc/%s/V4__more.sql", f.user);
	th_write(f.dir, rel, "CREATE TABLE more (id int);\n");
	free(out);
	out = drift(&f, 3, (const char *const[]){f.user, "--only", "history", NULL});
	snprintf(line, sizeof(line),
	         "  %s: migration 4 (more) is pending (svc/%s/V4__more.sql): the database is behind the "
	         "repository\n",
	         f.user, f.user);
	ASSERT_LINE(out, line);
	cr_assert(!th_contains(out, f.auth), "only the named service: %s", out);
	free(out);
	/* a failed row */
	db_exec(f.user_db,
	        "INSERT INTO flyway_schema_history VALUES (101, '4', 'more', 'SQL', 'V4__more.sql', 1, "
	        "'someone', now(), 1, false)");
	out = drift(&f, 3, (const char *const[]){f.user, "--only", "history", "--json", NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	json_t *fa = json_object_get(json_array_get(json_object_get(doc, "services"), 0), "findings");
	bool failed = false;
	for (size_t i = 0; i < json_array_size(fa); i++) {
		json_t *x = json_array_get(fa, i);
		if (strcmp(json_string_value(json_object_get(x, "change")), "failed") == 0) {
			failed = true;
			cr_assert_str_eq(json_string_value(json_object_get(x, "kind")), "history");
			cr_assert_str_eq(json_string_value(json_object_get(x, "object")),
			                 "migration 4 (more)");
			snprintf(line, sizeof(line), "svc/%s/V4__more.sql", f.user);
			cr_assert_str_eq(json_string_value(json_object_get(x, "file")), line);
		}
	}
	cr_assert(failed, "%s", out);
	json_decref(doc);
	free(out);
	fleet_drop(&f);
}

/* The replay fails in the shadow (an edited migration): could not check, exit 1, no shadow left. */
Test(drift, replay_failure_leaves_no_shadow, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "fa");
	fleet_migrate(&f);
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V2__sessions.sql", f.auth);
	th_write(f.dir, rel, "SELECT 1/0;\n");
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"drift", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	char line[512];
	snprintf(line, sizeof(line), "%s: could not check: ", f.auth);
	cr_assert(th_contains(err, line), "%s", err);
	cr_assert(th_contains(err, "ERROR 22012: division by zero"), "%s", err);
	cr_assert(th_contains(err, "replaying the migrations into the shadow database flotilla_shadow_"),
	          "%s", err);
	/* the history part still reports what it found */
	snprintf(line, sizeof(line),
	         "  %s: migration 2 (sessions) (svc/%s/V2__sessions.sql) was changed after it was applied",
	         f.auth, f.auth);
	cr_assert(th_contains(out, line), "%s", out);
	cr_assert_eq(shadows_left(&f), 0);
	free(out);
	free(err);
	fleet_drop(&f);
}

/* SIGINT while the shadow replays a slow migration: exit 130 quickly, shadow dropped. */
Test(par_drift, sigint_drops_the_shadow, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "si");
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V3__slow.sql", f.auth);
	th_write(f.dir, rel, "SELECT pg_sleep(0.01);\n");
	fleet_migrate(&f);
	/* now the file sleeps: only the shadow's replay runs it */
	th_write(f.dir, rel, "SELECT pg_sleep(60);\n");
	/* flotilla is our direct child (no Criterion code in between), so we can signal it */
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/sigint.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/sigint.err", f.dir);
	pid_t pid =
	    th_spawn(f.dir, NULL, outp, errp,
	             (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "drift", NULL});
	bool replaying = false;
	for (int i = 0; i < 600 && !replaying; i++) {
		usleep(50000);
		PGconn *c = th_connect("postgres");
		char q[512];
		snprintf(
		    q, sizeof(q),
		    "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'flotilla\\_shadow\\_%s\\_%%' "
		    "AND query LIKE '%%pg_sleep(60)%%'",
		    f.auth);
		char *n = th_query1(c, q);
		replaying = strcmp(n, "0") != 0;
		free(n);
		PQfinish(c);
	}
	cr_assert(replaying, "the shadow replay never started: %s", th_read(errp));
	cr_assert_eq(shadows_of(f.auth), 1, "the shadow exists while it replays");
	time_t t0 = time(NULL);
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d: %s", WEXITSTATUS(st),
	          th_read(errp));
	cr_assert_lt(time(NULL) - t0, 10);
	cr_assert_eq(shadows_left(&f), 0, "the shadow must be dropped after SIGINT");
	fleet_drop(&f);
}

/* ---- --shadow: the replay on another server ---- */

#define SECOND_PORT "5491"
static char *second_dir; /* the second server's directory; destroyed by the fixture's fini */

static void second_server_destroy(void)
{
	if (!second_dir)
		return;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "FLOTILLA_PG_PORT=%s sh %s/ci/pg destroy %s/pg", SECOND_PORT, th_top(),
	         second_dir);
	th_sh(cmd, NULL);
	free(second_dir);
	second_dir = NULL;
}

static PGconn *second_connect(void)
{
	char host[600];
	snprintf(host, sizeof(host), "%s/pg", second_dir);
	const char *keys[] = {"host", "port", "dbname", "user", NULL};
	const char *vals[] = {host, SECOND_PORT, "postgres", "postgres", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	cr_assert(PQstatus(c) == CONNECTION_OK, "second server: %s", PQerrorMessage(c));
	return c;
}

/* shadows (of any service) on the second server */
static int second_shadows(void)
{
	PGconn *c = second_connect();
	char *v = th_query1(c, "SELECT count(*) FROM pg_database WHERE datname LIKE 'flotilla\\_shadow\\_%'");
	PQfinish(c);
	int n = atoi(v);
	free(v);
	return n;
}

/*
 * A fleet on the test server, its shadows on a second one that has none of
 * the owner roles: clean (owners are not compared there), then one column
 * added by hand is found; the shadows are created on the second server only
 * and dropped; the password of the conninfo is never shown.
 */
Test(drift, shadow_on_another_server, .timeout = 300, .fini = second_server_destroy)
{
	struct fleet f;
	fleet_init(&f, "ss");
	fleet_migrate(&f);
	second_dir = th_tmpdir();
	char cmd[1024], *sout = NULL;
	snprintf(cmd, sizeof(cmd), "FLOTILLA_PG_PORT=%s sh %s/ci/pg start %s/pg", SECOND_PORT, th_top(),
	         second_dir);
	int src = th_sh(cmd, &sout);
	cr_assert_eq(src, 0, "second server: %s", sout);
	free(sout);
	PGconn *c2 = second_connect();
	char q[512];
	snprintf(q, sizeof(q), "SELECT count(*) FROM pg_roles WHERE rolname = '%s'", f.auth_owner);
	char *v = th_query1(c2, q);
	cr_assert_str_eq(v, "0", "the second server must lack the owner roles");
	free(v);
	PQfinish(c2);

	char conninfo[800], shown[800];
	snprintf(conninfo, sizeof(conninfo), "host=%s/pg port=%s dbname=postgres user=postgres", second_dir,
	         SECOND_PORT);
	snprintf(shown, sizeof(shown), "flotilla: shadow databases on host=%s/pg port=%s dbname=postgres\n",
	         second_dir, SECOND_PORT);

	/* kept: they are on the second server, not on the first */
	char *out, *err;
	int rc = fleet_run(
	    &f, &out, &err,
	    (const char *const[]){"drift", "--only", "schema", "--shadow", conninfo, "--keep-shadow", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(err, shown), "want %s\nin:\n%s", shown, err);
	cr_assert_eq(second_shadows(), 2, "%s", err);
	cr_assert_eq(shadows_left(&f), 0);
	c2 = second_connect();
	snprintf(q, sizeof(q),
	         "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE "
	         "'flotilla\\_shadow\\_%s\\_%%'",
	         f.auth);
	v = th_query1(c2, q);
	cr_assert_str_eq(v, "postgres", "without the owner role the connecting user owns the shadow");
	free(v);
	char *drop; /* DROP DATABASE runs alone, outside a transaction block */
	while ((drop = th_query1(c2, "SELECT format('DROP DATABASE %I', datname) FROM pg_database WHERE "
	                             "datname LIKE 'flotilla\\_shadow\\_%' LIMIT 1"))) {
		th_exec(c2, drop);
		free(drop);
	}
	PQfinish(c2);
	free(out);
	free(err);

	/* clean: the live tables belong to the owners, the shadow's to postgres, and that is no drift */
	out = drift(&f, 0, (const char *const[]){"--only", "schema", "--shadow", conninfo, NULL});
	char line[512];
	snprintf(line, sizeof(line), "%s: clean at version 2\n", f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "%s: clean at version 1\n", f.user);
	ASSERT_LINE(out, line);
	free(out);
	cr_assert_eq(second_shadows(), 0);

	/* one schema change is found */
	db_exec(f.auth_db, "ALTER TABLE users ADD COLUMN nickname text");
	out = drift(&f, 3, (const char *const[]){"--only", "schema", "--shadow", conninfo, NULL});
	snprintf(line, sizeof(line),
	         "  %s: column users.nickname (text) exists in the database but not in the migrations\n",
	         f.auth);
	ASSERT_LINE(out, line);
	ASSERT_LINE(out, "drift: 1 finding (history 0, schema 1, grants 0; 0 security) in 1 of 2 services");
	free(out);
	cr_assert_eq(second_shadows(), 0);

	/* JSON names the shadow server by host, port and dbname */
	out = drift(&f, 3, (const char *const[]){"--only", "schema", "--shadow", conninfo, "--json", NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	json_t *ss = json_object_get(doc, "shadow_server");
	char host[700];
	snprintf(host, sizeof(host), "%s/pg", second_dir);
	cr_assert_str_eq(json_string_value(json_object_get(ss, "host")), host);
	cr_assert_str_eq(json_string_value(json_object_get(ss, "port")), SECOND_PORT);
	cr_assert_str_eq(json_string_value(json_object_get(ss, "dbname")), "postgres");
	cr_assert_eq(json_object_size(ss), 3);
	json_decref(doc);
	free(out);
	cr_assert_eq(second_shadows(), 0);

	/* a password in the conninfo is used, warned about, and never shown, not even on failure */
	char with_pw[900];
	snprintf(with_pw, sizeof(with_pw), "%s password=Sh4dowSecret", conninfo);
	rc = fleet_run(&f, &out, &err,
	               (const char *const[]){"drift", f.auth, "--only", "schema", "--shadow", with_pw, NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	cr_assert(th_contains(err, "warning: the --shadow connection string holds a password"), "%s", err);
	cr_assert(!th_contains(out, "Sh4dowSecret") && !th_contains(err, "Sh4dowSecret"), "%s\n%s", out, err);
	free(out);
	free(err);
	snprintf(with_pw, sizeof(with_pw), "host=%s/pg port=5492 user=postgres password=Sh4dowSecret",
	         second_dir);
	rc = fleet_run(&f, &out, &err,
	               (const char *const[]){"drift", f.auth, "--only", "schema", "--shadow", with_pw, NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	snprintf(line, sizeof(line),
	         "%s: could not check: cannot connect to database \"postgres\" on %s/pg:5492", f.auth,
	         second_dir);
	cr_assert(th_contains(err, line), "want %s\nin:\n%s", line, err);
	cr_assert(!th_contains(out, "Sh4dowSecret") && !th_contains(err, "Sh4dowSecret"), "%s\n%s", out, err);
	free(out);
	free(err);
	/* not a conninfo: bad usage, and libpq's message (it may quote the string) is not repeated */
	rc = fleet_run(&f, &out, &err,
	               (const char *const[]){"drift", "--shadow", "host=x passwordSh4dowSecret", NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	cr_assert(th_contains(err, "flotilla: --shadow: not a connection string libpq understands"), "%s",
	          err);
	cr_assert(!th_contains(err, "Sh4dowSecret"), "%s", err);
	free(out);
	free(err);

	cr_assert_eq(second_shadows(), 0);
	cr_assert_eq(shadows_left(&f), 0);
	fleet_drop(&f);
}

/* ---- history in git: the commit that changed an applied file ---- */

static void git_ok(int rc, const char *what)
{
	const git_error *e = git_error_last();
	cr_assert(rc >= 0, "%s: %s", what, e && e->message ? e->message : "?");
}

/* Stages the whole work tree and commits it on HEAD, authored by Ann Author at `when` (UTC). */
static void git_commit_all(git_repository *repo, const char *msg, int64_t when, char id[GIT_OID_HEXSZ + 1])
{
	git_index *idx;
	git_ok(git_repository_index(&idx, repo), "index");
	git_ok(git_index_add_all(idx, NULL, 0, NULL, NULL), "add_all");
	git_ok(git_index_write(idx), "index write");
	git_oid tree_id, head, oid;
	git_ok(git_index_write_tree(&tree_id, idx), "write_tree");
	git_index_free(idx);
	git_tree *tree;
	git_ok(git_tree_lookup(&tree, repo, &tree_id), "tree");
	git_signature *sig;
	git_ok(git_signature_new(&sig, "Ann Author", "ann@example.com", (git_time_t)when, 0), "signature");
	git_commit *parent = NULL;
	if (git_reference_name_to_id(&head, repo, "HEAD") == 0)
		git_ok(git_commit_lookup(&parent, repo, &head), "parent");
	const git_commit *parents[1] = {parent};
	git_ok(git_commit_create(&oid, repo, "HEAD", sig, sig, NULL, msg, tree, parent ? 1 : 0, parents),
	       "commit");
	git_oid_tostr(id, GIT_OID_HEXSZ + 1, &oid);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(tree);
}

Test(drift, history_in_git_names_the_commit, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "gi");
	git_libgit2_init();
	git_repository *repo;
	git_repository_init_options io;
	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_MKPATH;
	io.initial_head = "main";
	git_ok(git_repository_init_ext(&repo, f.dir, &io), "init");
	char first[GIT_OID_HEXSZ + 1], second[GIT_OID_HEXSZ + 1];
	git_commit_all(repo, "initial migrations", (int64_t)time(NULL) - 3600, first);
	fleet_migrate(&f);

	/* edited in the work tree, not committed */
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V1__users.sql", f.auth);
	char *edited = str_cat(AUTH_V1, "-- edited after it was applied\n");
	th_write(f.dir, rel, edited);
	char head[512];
	snprintf(
	    head, sizeof(head),
	    "  %s: migration 1 (users) (svc/%s/V1__users.sql) was changed after it was applied: checksum "
	    "%d when applied, %d now",
	    f.auth, f.auth, (int)fl_migration_checksum(AUTH_V1, strlen(AUTH_V1)),
	    (int)fl_migration_checksum(edited, strlen(edited)));
	free(edited);
	char *out = drift(&f, 3, (const char *const[]){"--only", "history", NULL});
	char line[1024];
	snprintf(line, sizeof(line), "%s (changed in the work tree, not committed)\n", head);
	ASSERT_LINE(out, line);
	free(out);
	out = drift(&f, 3, (const char *const[]){f.auth, "--only", "history", "--json", NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	json_t *fa = json_object_get(json_array_get(json_object_get(doc, "services"), 0), "findings");
	cr_assert_eq(json_array_size(fa), 1, "%s", out);
	json_t *f0 = json_array_get(fa, 0);
	cr_assert_str_eq(json_string_value(json_object_get(f0, "change")), "changed");
	cr_assert(th_contains(json_string_value(json_object_get(f0, "message")),
	                      "(changed in the work tree, not committed)"),
	          "%s", out);
	cr_assert(json_is_null(json_object_get(f0, "commit")), "%s", out);
	json_decref(doc);
	free(out);

	/* committed after it was applied: that commit is named */
	int64_t when = (int64_t)time(NULL) + 120;
	git_commit_all(repo, "auth: note on users\n\nwhy the comment\n", when, second);
	time_t tw = (time_t)when;
	struct tm tm;
	gmtime_r(&tw, &tm);
	char date[16], iso[40];
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	out = drift(&f, 3, (const char *const[]){"--only", "history", NULL});
	snprintf(line, sizeof(line), "%s (changed by %.7s auth: note on users, Ann Author, %s)\n", head,
	         second, date);
	ASSERT_LINE(out, line);
	free(out);
	out = drift(&f, 3, (const char *const[]){f.auth, "--only", "history", "--json", NULL});
	doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	fa = json_object_get(json_array_get(json_object_get(doc, "services"), 0), "findings");
	cr_assert_eq(json_array_size(fa), 1, "%s", out);
	f0 = json_array_get(fa, 0);
	snprintf(line, sizeof(line), "%s (changed by %.7s auth: note on users, Ann Author, %s)",
	         head + 4 + strlen(f.auth), second, date);
	cr_assert_str_eq(json_string_value(json_object_get(f0, "message")), line);
	json_t *c = json_object_get(f0, "commit");
	cr_assert(json_is_object(c), "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(c, "id")), second);
	char short_id[8];
	snprintf(short_id, sizeof(short_id), "%.7s", second);
	cr_assert_str_eq(json_string_value(json_object_get(c, "short")), short_id);
	cr_assert_str_eq(json_string_value(json_object_get(c, "summary")), "auth: note on users");
	cr_assert_str_eq(json_string_value(json_object_get(c, "author")), "Ann Author");
	cr_assert_str_eq(json_string_value(json_object_get(c, "date")), iso);
	json_decref(doc);
	free(out);
	cr_assert_neq(strcmp(first, second), 0);

	git_repository_free(repo);
	git_libgit2_shutdown();
	fleet_drop(&f);
}

/* ---- nightly: right every night ---- */

static void least_privilege_admin(const char *name);

/*
 * One service, auth_<tag>, in schema `schema`, with the given migrations
 * (V1, V2, ... in order). With least, the environment's admin is a new
 * role made like a managed cluster's (f->admin); the migrator stays the
 * superuser, so the shadow's replay backend belongs to another role than
 * the admin.
 */
static void mini_init(struct fleet *f, const char *tag, bool least, const char *schema,
                      const char *const *migrations)
{
	fleet_names(f, "n", "none", tag);
	f->admin[0] = '\0';
	if (least) {
		snprintf(f->admin, sizeof(f->admin), "%s_admin", f->project);
		least_privilege_admin(f->admin);
	}
	char buf[4096];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"%s\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[settings]\nlock_timeout = \"5s\"\n\n"
	         "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	         "migrations = \"svc/${service}\"\n\n"
	         "[services.%s]\nschema = \"%s\"\n",
	         f->project, least ? f->admin : "postgres", f->auth, schema);
	th_write(f->dir, "flotilla.toml", buf);
	for (int i = 0; migrations[i]; i++) {
		char rel[256];
		snprintf(rel, sizeof(rel), "svc/%s/V%d__m%d.sql", f->auth, i + 1, i + 1);
		th_write(f->dir, rel, migrations[i]);
	}
}

/* A role like the one a managed cluster gives: CREATEDB CREATEROLE, no superuser, no pg_signal_backend. */
static void least_privilege_admin(const char *name)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "CREATE ROLE \"%s\" LOGIN CREATEDB CREATEROLE", name);
	db_exec("postgres", sql);
}

static void drop_role(const char *name)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "DROP OWNED BY \"%s\"; DROP ROLE \"%s\"", name, name);
	PGconn *c = th_connect("postgres");
	PGresult *r = PQexec(c, sql);
	PQclear(r);
	PQfinish(c);
}

static const char APP_V1[] =
    "SET search_path = app, public;\n"
    "CREATE SEQUENCE order_seq;\n"
    "CREATE TYPE order_state AS ENUM ('new', 'paid');\n"
    "CREATE TABLE accounts (id int PRIMARY KEY, name text);\n"
    "CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT nextval('order_seq'),\n"
    "  account_id int NOT NULL REFERENCES accounts (id), state order_state NOT NULL DEFAULT 'new',\n"
    "  placed date DEFAULT '2024-01-31', total numeric CHECK (total >= 0));\n"
    "CREATE FUNCTION order_total(o orders) RETURNS numeric LANGUAGE sql AS 'SELECT o.total';\n"
    "CREATE VIEW open_orders AS SELECT o.id, a.name FROM orders o JOIN accounts a ON a.id = o.account_id;\n";

Test(drift, search_path_set_by_migration_or_database_is_not_drift, .timeout = 240)
{
	struct fleet f;
	mini_init(&f, "sp", false, "app", (const char *const[]){APP_V1, NULL});
	fleet_migrate(&f);
	char *out = drift(&f, 0, NULL);
	char line[256];
	snprintf(line, sizeof(line), "%s: clean at version 1\n", f.auth);
	ASSERT_LINE(out, line);
	free(out);
	/* a database-level search_path and a DateStyle change what a new session prints by default */
	char sql[512];
	snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" SET search_path = app, public", f.auth_db);
	db_exec("postgres", sql);
	snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" SET DateStyle = 'SQL, DMY'", f.auth_db);
	db_exec("postgres", sql);
	out = drift(&f, 0, NULL);
	ASSERT_LINE(out, line);
	free(out);
	/* and a real change is still found, named the same way */
	db_exec(f.auth_db, "ALTER TABLE app.orders ADD COLUMN note text");
	out = drift(&f, 3, NULL);
	snprintf(line, sizeof(line),
	         "  %s: column orders.note (text) exists in the database but not in the migrations\n",
	         f.auth);
	ASSERT_LINE(out, line);
	ASSERT_LINE(out, "drift: 1 finding ");
	free(out);
	fleet_drop(&f);
}

static const char T_V1[] = "CREATE TABLE t (id int PRIMARY KEY, a text, b text);\n";

Test(drift, least_privilege_admin_leaves_no_shadow_in_20_runs, .timeout = 300)
{
	struct fleet f;
	mini_init(&f, "lp", true, "public", (const char *const[]){T_V1, NULL});
	fleet_migrate(&f);
	for (int i = 0; i < 20; i++) {
		char *out = drift(&f, 0, NULL); /* asserts exit 0 and no shadow left */
		free(out);
	}
	fleet_drop(&f);
	drop_role(f.admin);
}

/* the backends connected to this service's shadows */
static int shadow_backends(struct fleet *f, const char *like)
{
	PGconn *c = th_connect("postgres");
	char q[512];
	snprintf(q, sizeof(q),
	         "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'flotilla\\_shadow\\_%s\\_%%' "
	         "AND query LIKE '%s'",
	         f->auth, like);
	char *n = th_query1(c, q);
	PQfinish(c);
	int r = atoi(n);
	free(n);
	return r;
}

Test(drift, sigkill_during_replay_leaves_a_shadow_the_next_run_drops, .timeout = 300)
{
	struct fleet f;
	mini_init(&f, "kl", true, "public", (const char *const[]){T_V1, "SELECT pg_sleep(0.01);\n", NULL});
	fleet_migrate(&f);
	/* only the shadow's replay sleeps */
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V2__m2.sql", f.auth);
	th_write(f.dir, rel, "SELECT pg_sleep(3);\n");
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/kill.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/kill.err", f.dir);
	pid_t pid =
	    th_spawn(f.dir, NULL, outp, errp,
	             (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "drift", NULL});
	bool replaying = false;
	for (int i = 0; i < 600 && !replaying; i++) {
		usleep(20000);
		replaying = shadow_backends(&f, "%pg_sleep(3)%") > 0;
	}
	cr_assert(replaying, "the shadow replay never started: %s", th_read(errp));
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	cr_assert_eq(shadows_of(f.auth), 1, "a killed run leaves its shadow");
	/* the file as it was applied: the next run is clean, and drops the leftover first */
	th_write(f.dir, rel, "SELECT pg_sleep(0.01);\n");
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"drift", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	char want[256];
	snprintf(want, sizeof(want), "flotilla: dropped flotilla_shadow_%s_", f.auth);
	cr_assert(th_contains(err, want), "%s", err);
	cr_assert(th_contains(err, "a shadow database left by an earlier run"), "%s", err);
	cr_assert_eq(shadows_left(&f), 0, "%s", err);
	free(out);
	free(err);
	fleet_drop(&f);
	drop_role(f.admin);
}

/* the key flotilla and Flyway lock a service's migrations with */
static char *lock_sql(const char *fn)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "SELECT %s(%lld)", fn,
	         fl_history_lock_key("public", "flyway_schema_history"));
	return strdup(buf);
}

Test(drift, a_running_migration_is_skipped_and_never_waits, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "lk");
	char rel[256];
	fleet_migrate(&f);
	/* a deploy in flight: auth's migrate holds the lock for 3 s */
	snprintf(rel, sizeof(rel), "svc/%s/V3__slow.sql", f.auth);
	th_write(f.dir, rel, "SELECT pg_sleep(3);\n");
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/migrate.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/migrate.err", f.dir);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = th_spawn(
	    f.dir, NULL, outp, errp,
	    (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate", f.auth, NULL});
	bool locked = false;
	for (int i = 0; i < 500 && !locked; i++) {
		usleep(20000);
		PGconn *c = th_connect(f.auth_db);
		char *n =
		    th_query1(c, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%'"
		                 " AND pid <> pg_backend_pid()");
		locked = strcmp(n, "0") != 0;
		free(n);
		PQfinish(c);
	}
	cr_assert(locked, "the migration never started: %s", th_read(errp));
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"drift", "--json", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	json_t *a = json_array_get(json_object_get(doc, "services"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(a, "result")), "skipped", "%s", out);
	const char *why = json_string_value(json_object_get(a, "skipped"));
	cr_assert(why && strncmp(why, "a migration is running (pid ", 28) == 0 &&
	              th_contains(why, ", since "),
	          "%s", out);
	cr_assert_eq(json_array_size(json_object_get(a, "findings")), 0);
	json_t *u = json_array_get(json_object_get(doc, "services"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(u, "result")), "clean", "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "counts"), "skipped")), 1);
	json_decref(doc);
	free(out);
	free(err);
	/* the migration did its work without one wait on the lock */
	int st;
	waitpid(pid, &st, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char *merr = th_read(errp), *mout = th_read(outp);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s\n%s", mout, merr);
	cr_assert(!th_contains(merr, "waiting for the migration lock") &&
	              !th_contains(mout, "waiting for the migration lock"),
	          "%s\n%s", mout, merr);
	free(merr);
	free(mout);
	/* a lock held by hand: the text report says it */
	PGconn *c = th_connect(f.auth_db);
	char *l = lock_sql("pg_advisory_lock");
	th_exec(c, l);
	free(l);
	out = drift(&f, 0, NULL);
	char line[256];
	snprintf(line, sizeof(line), "%s: skipped: a migration is running (pid ", f.auth);
	ASSERT_LINE(out, line);
	ASSERT_LINE(out, ", 1 skipped;");
	free(out);
	PQfinish(c);
	fleet_drop(&f);
}

static size_t findings_of(json_t *doc)
{
	return (size_t)json_integer_value(json_object_get(json_object_get(doc, "counts"), "findings"));
}

Test(drift, provider_schemas_and_extension_objects_are_not_findings, .timeout = 240)
{
	struct fleet f;
	mini_init(&f, "px", false, "public",
	          (const char *const[]){T_V1,
	                                "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
	                                "CREATE INDEX t_a_trgm ON t USING gin (a gin_trgm_ops);\n",
	                                NULL});
	fleet_migrate(&f);
	/* what Cloud SQL and pg_cron would make: a provider schema, an extension in its own schema */
	db_exec(f.auth_db, "CREATE SCHEMA google_vacuum_mgmt; CREATE TABLE google_vacuum_mgmt.runs (id int);"
	                   " CREATE SCHEMA cron; CREATE EXTENSION hstore WITH SCHEMA cron");
	char *out = drift(&f, 0, NULL);
	free(out);
	/* an extension installed by hand is one finding: none for its functions, types, operators */
	db_exec(f.auth_db, "CREATE EXTENSION cube");
	out = drift(&f, 3, (const char *const[]){"--json", NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	cr_assert_eq(findings_of(doc), 1, "%s", out);
	json_t *f0 = json_array_get(
	    json_object_get(json_array_get(json_object_get(doc, "services"), 0), "findings"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(f0, "object")), "extension cube");
	json_decref(doc);
	free(out);
	/* ignore_schemas replaces the defaults: the provider's schema is then compared */
	char *m = th_read(f.manifest);
	char *m2 = str_cat(m, "\n[drift]\nignore_schemas = [\"cron\"]\n");
	th_write(f.dir, "flotilla.toml", m2);
	out = drift(&f, 3, NULL);
	ASSERT_LINE(out, "table google_vacuum_mgmt.runs exists in the database but not in the migrations");
	free(out);
	free(m);
	free(m2);
	fleet_drop(&f);
}

Test(drift, column_order_and_comments_are_findings_unless_turned_off, .timeout = 240)
{
	struct fleet f;
	mini_init(&f, "oc", false, "public", (const char *const[]){T_V1, NULL});
	fleet_migrate(&f);
	/* a dropped and re-added column lands at the end */
	db_exec(f.auth_db, "ALTER TABLE t DROP COLUMN a; ALTER TABLE t ADD COLUMN a text;"
	                   " COMMENT ON TABLE t IS 'by hand'; COMMENT ON COLUMN t.b IS 'also'");
	char *out = drift(&f, 3, NULL);
	char line[512];
	snprintf(
	    line, sizeof(line),
	    "  %s: table t has its columns in another order (SELECT * and COPY see it): expected id, a, b; "
	    "found id, b, a\n",
	    f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "  %s: table t differs: comment expected none, found by hand\n", f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line), "  %s: column t.b differs: comment expected none, found also\n", f.auth);
	ASSERT_LINE(out, line);
	ASSERT_LINE(out, "drift: 3 findings");
	free(out);
	out = drift(&f, 3, (const char *const[]){"--json", NULL});
	cr_assert(th_contains(out, "\"change\": \"order\""), "%s", out);
	free(out);
	out = drift(&f, 0, (const char *const[]){"--no-column-order", "--no-comments", NULL});
	free(out);
	/* the same from the manifest */
	char *m = th_read(f.manifest);
	char *m2 = str_cat(m, "\n[drift]\ncolumn_order = false\ncomments = false\n");
	th_write(f.dir, "flotilla.toml", m2);
	out = drift(&f, 0, NULL);
	free(out);
	free(m);
	free(m2);
	fleet_drop(&f);
}

Test(drift, invalid_index_and_not_valid_constraint_are_findings, .timeout = 240)
{
	struct fleet f;
	mini_init(&f, "iv", false, "public", (const char *const[]){T_V1, NULL});
	fleet_migrate(&f);
	db_exec(f.auth_db, "INSERT INTO t VALUES (1, 'x', 'y'), (2, 'x', 'y')");
	/* a CONCURRENTLY build that fails leaves its index INVALID */
	PGconn *c = th_connect(f.auth_db);
	PGresult *r = PQexec(c, "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a)");
	cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	th_exec(c, "ALTER TABLE t ADD CONSTRAINT t_id_check CHECK (id > 1) NOT VALID");
	PQfinish(c);
	char *out = drift(&f, 3, NULL);
	char line[512];
	snprintf(line, sizeof(line), "  %s: index t_a_key is INVALID in the database (", f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line),
	         "  %s: check constraint t.t_id_check is NOT VALID in the database: rows that were there "
	         "before it was added were never checked; ALTER TABLE t VALIDATE CONSTRAINT it\n",
	         f.auth);
	ASSERT_LINE(out, line);
	snprintf(line, sizeof(line),
	         "  %s: check constraint t.t_id_check (CHECK ((id > 1))) exists in the database but not in "
	         "the migrations\n",
	         f.auth);
	ASSERT_LINE(out, line);
	free(out);
	fleet_drop(&f);
}

/* text as it reads in a serialised DOM: <, > and & escaped, quotes not */
static char *dom_text(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == '<' || *p == '>' ? 4 : *p == '&' ? 5 : 1;
	char *r = malloc(n + 1), *q = r;
	for (const char *p = s; *p; p++) {
		const char *e = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : NULL;
		if (e) {
			memcpy(q, e, strlen(e));
			q += strlen(e);
		} else {
			*q++ = *p;
		}
	}
	*q = '\0';
	return r;
}

Test(drift, html_page_renders_every_finding_in_headless_chromium, .timeout = 300)
{
	struct fleet f;
	fleet_init(&f, "ht");
	fleet_migrate(&f);
	char sql[512], rel[256];
	db_exec(f.auth_db,
	        "ALTER TABLE users ADD COLUMN nickname text; COMMENT ON TABLE users IS 'a <b> & c'");
	snprintf(sql, sizeof(sql), "GRANT CONNECT ON DATABASE \"%s\" TO PUBLIC", f.auth_db);
	db_exec("postgres", sql);
	snprintf(rel, sizeof(rel), "svc/%s/V1__profiles.sql", f.user);
	th_write(f.dir, rel, "CREATE TABLE profiles (id int PRIMARY KEY, name text); -- edited\n");
	char page[700];
	snprintf(page, sizeof(page), "%s/drift.html", f.dir);
	char *out = drift(&f, 3, (const char *const[]){"--json", "--html", page, NULL});
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	cr_assert_geq(findings_of(doc), 4, "%s", out);
	char *html = th_read(page);
	cr_assert(!th_contains(html, "<script") && !th_contains(html, "http://") &&
	              !th_contains(html, "https://"),
	          "the page is self-contained:\n%s", html);
	char *dom;
	cr_assert_eq(th_chromium(f.dir, "--dump-dom", page, NULL, &dom), 0, "%s", dom);
	char *shot_opt = malloc(strlen(f.dir) + 32), *shot_out;
	sprintf(shot_opt, "--screenshot=%s/drift.png", f.dir);
	cr_assert_eq(th_chromium(f.dir, shot_opt, page, NULL, &shot_out), 0, "%s", shot_out);
	char shot[700];
	snprintf(shot, sizeof(shot), "%s/drift.png", f.dir);
	FILE *sf = fopen(shot, "rb");
	cr_assert(sf, "no screenshot");
	fseek(sf, 0, SEEK_END);
	cr_assert_gt(ftell(sf), 1000, "an empty screenshot");
	fclose(sf);
	/* every service and every finding, as the browser built the page */
	cr_assert(th_contains(dom, f.auth) && th_contains(dom, f.user), "%s", dom);
	json_t *svcs = json_object_get(doc, "services");
	size_t seen = 0;
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *fa = json_object_get(json_array_get(svcs, i), "findings");
		for (size_t k = 0; k < json_array_size(fa); k++) {
			json_t *fi = json_array_get(fa, k);
			char *want = dom_text(json_string_value(json_object_get(fi, "message")));
			cr_assert(th_contains(dom, want), "missing in the page: %s\n%s", want, dom);
			free(want);
			/* grants: the fix SQL */
			if (strcmp(json_string_value(json_object_get(fi, "kind")), "grants") == 0) {
				json_t *fix = json_object_get(fi, "found");
				if (json_is_null(fix))
					fix = json_object_get(fi, "expected");
				char *pre = dom_text(json_string_value(fix));
				char *el = str_cat("<pre class=\"fix\">", pre);
				cr_assert(th_contains(dom, el), "fix SQL missing: %s\n%s", el, dom);
				free(el);
				free(pre);
			}
			seen++;
		}
	}
	cr_assert_geq(seen, 4);
	cr_assert(th_contains(dom, "<h3 class=\"kind\">history (1)</h3>"), "%s", dom);
	cr_assert(th_contains(dom, "<h3 class=\"kind\">grants (1)</h3>"), "%s", dom);
	free(shot_opt);
	free(shot_out);
	free(dom);
	free(html);
	json_decref(doc);
	free(out);
	fleet_drop(&f);
}

/* The library's own drift run, without the binary: outcomes and counts, not printed lines. */
Test(drift, fleet_run_in_core_reports_outcomes_and_counts, .timeout = 240)
{
	struct fleet f;
	mini_init(&f, "co", false, "public", (const char *const[]){T_V1, NULL});
	fleet_migrate(&f);
	db_exec(f.auth_db, "ALTER TABLE t DROP COLUMN a; ALTER TABLE t ADD COLUMN a text");
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(f.manifest, "test", &err);
	cr_assert(m, "%s", err ? err->msg : "");
	fl_drift_fleet_opts o = {.checks = FL_DRIFT_SCHEMA};
	fl_drift_fleet *d = NULL;
	int rc = fl_drift_fleet_run(m, &o, &d);
	cr_assert_eq(rc, 3);
	cr_assert_eq(d->outcome, FL_RUN_REFUSED);
	cr_assert_eq(d->n, 1);
	cr_assert_eq(d->services[0].outcome, FL_OUTCOME_REFUSED);
	cr_assert_str_eq(fl_drift_fleet_result_word(&d->services[0]), "drift");
	cr_assert_eq(d->counts[1], 1);
	cr_assert_eq(d->findings, 1);
	cr_assert_str_eq(d->services[0].res.findings.items[0].change, "order");
	cr_assert_str_eq(d->services[0].res.findings.items[0].object, "table t");
	fl_drift_fleet_free(d);
	/* turned off: clean */
	o.no_column_order = true;
	rc = fl_drift_fleet_run(m, &o, &d);
	cr_assert_eq(rc, 0);
	cr_assert_eq(d->services[0].outcome, FL_OUTCOME_OK);
	fl_drift_fleet_free(d);
	fl_manifest_free(m);
	cr_assert_eq(shadows_left(&f), 0);
	fleet_drop(&f);
}
