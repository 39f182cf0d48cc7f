/*
 * The engine for one service (source, pg, history, apply, sha256) against
 * the real test server: every test makes its own database and migration
 * folder and checks rows, objects and messages exactly.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "apply.h"
#include "harness.h"
#include "history.h"
#include "pg.h"
#include "sha256.h"
#include "source.h"
#include "sqlsplit.h"

#define DISPLAY "services/auth/migrations"

/* ---- helpers ---- */

static fl_migration_set *load_set(const char *dir)
{
	fl_file *files;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_source_dir(dir, DISPLAY, &files, &n, &err), 0, "%s", err ? err->msg : "");
	fl_migration_set *set = fl_migration_set_new(files, n, &err);
	free(files);
	cr_assert(set, "%s", err ? err->msg : "");
	return set;
}

static fl_pg *pg_open(const char *db)
{
	fl_pg_params p = {.dbname = db};
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&p, &err);
	cr_assert(pg, "%s", err ? err->msg : "");
	return pg;
}

static fl_apply_opts base_opts(const char *dir)
{
	(void)dir;
	fl_apply_opts o = {
	    .service = "auth", .display_dir = DISPLAY, .lock_timeout_ms = 5000, .git_dirty = -1};
	return o;
}

/* Flyway's checksum computed independently: CRC-32 of the bytes minus CR and LF (ASCII files, no BOM). */
static int32_t crc_of(const char *text)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	for (const char *p = text; *p; p++)
		if (*p != '\r' && *p != '\n')
			crc = crc32(crc, (const Bytef *)p, 1);
	return (int32_t)(uint32_t)crc;
}

/* Every history column but installed_on and execution_time, one row per line. */
static char *history_dump(PGconn *c, const char *schema)
{
	char sql[1024];
	snprintf(
	    sql, sizeof(sql),
	    "SELECT concat_ws('|', installed_rank, coalesce(version, 'NULL'), description, type, script, "
	    "coalesce(checksum::text, 'NULL'), installed_by, success) FROM \"%s\".flyway_schema_history "
	    "ORDER BY installed_rank",
	    schema);
	return th_queryall(c, sql, "\n");
}

/* Relations outside the system and flotilla's own schema, the history and the rows of table t1. */
static char *snapshot(PGconn *c)
{
	char *rels =
	    th_queryall(c,
	                "SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c JOIN "
	                "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
	                "'information_schema', 'pg_toast', 'flotilla') ORDER BY 1",
	                ",");
	char *hist = history_dump(c, "public");
	char *rows = th_queryall(c, "SELECT id::text FROM t1 ORDER BY id", ",");
	size_t n = strlen(rels) + strlen(hist) + strlen(rows) + 8;
	char *s = malloc(n);
	snprintf(s, n, "%s\n%s\n%s", rels, hist, rows);
	free(rels);
	free(hist);
	free(rows);
	return s;
}

static char *q1(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *q1(PGconn *c, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return th_query1(c, sql);
}

static void assert_q(PGconn *c, const char *expect, const char *sql)
{
	char *v = th_query1(c, sql);
	cr_assert(v && strcmp(v, expect) == 0, "%s\n  expected: %s\n  got:      %s", sql, expect,
	          v ? v : "(null)");
	free(v);
}

static void assert_str(const char *got, const char *expect)
{
	cr_assert(got && strcmp(got, expect) == 0, "\nexpected:\n%s\ngot:\n%s", expect, got ? got : "(null)");
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = fl_vasprintf(f, ap);
	va_end(ap);
	return s;
}

/* A role that may create in db, to own what migrations make (roles are cluster-wide: named after db). */
static void owner_new(const char *db, char *role, size_t n)
{
	snprintf(role, n, "owner_%s", db);
	PGconn *c = th_connect(db);
	char *sql =
	    fmt("CREATE ROLE \"%s\" NOLOGIN; GRANT CREATE ON DATABASE \"%s\" TO \"%s\"", role, db, role);
	th_exec(c, sql);
	free(sql);
	PQfinish(c);
}

static void owner_drop(const char *role)
{
	PGconn *c = th_connect(NULL);
	char *sql = fmt("DROP ROLE \"%s\"", role);
	th_exec(c, sql);
	free(sql);
	PQfinish(c);
}

/*
 * Migrates dir into schema "app" as `role` (expecting `applied` migrations)
 * and checks that the session is as before: login role, search_path, no
 * lock_timeout left behind.
 */
static void migrate_as(const char *db, const char *dir, const char *role, int applied)
{
	fl_apply_opts o = base_opts(dir);
	o.schema = "app";
	o.role = role;
	fl_pg *pg = pg_open(db);
	fl_migration_set *set = load_set(dir);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_migrate(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.applied, applied);
	fl_apply_result_clear(&res);
	char *who = fl_pg_value(pg,
	                        "SELECT current_user || '|' || current_setting('search_path') || '|' || "
	                        "current_setting('lock_timeout')",
	                        0, NULL, &err);
	cr_assert_str_eq(who, "postgres|\"$user\", public|0");
	free(who);
	fl_migration_set_free(set);
	fl_pg_close(pg);
}

/* Runs migrate and expects success; returns the number applied. */
static int migrate_ok(const char *db, const char *dir, fl_apply_opts *o)
{
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	int rc = fl_apply_migrate(pg, set, o, &res, &err);
	char *msg = err ? fl_error_format(err) : NULL;
	cr_assert_eq(rc, 0, "migrate failed: %s", msg ? msg : "?");
	int n = res.applied;
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	return n;
}

/* Runs migrate and expects failure; returns the formatted error (and its kind). */
static char *migrate_fail(const char *db, const char *dir, fl_apply_opts *o, fl_error_kind *kind)
{
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	int rc = fl_apply_migrate(pg, set, o, &res, &err);
	cr_assert_eq(rc, -1, "migrate should have failed");
	cr_assert(err);
	char *msg = fl_error_format(err);
	if (kind)
		*kind = err->kind;
	fl_error_free(err);
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	return msg;
}

/* Standalone validate: the errors joined by newlines, NULL when clean. */
static char *validate(const char *db, const char *dir, const fl_apply_opts *o)
{
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_history *h;
	fl_plan *plan;
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_info(pg, set, o, &h, &plan, &err), 0, "%s", err ? err->msg : "");
	fl_error *v = fl_plan_validate(plan, true);
	char *out = NULL;
	if (v) {
		fl_buf b;
		fl_buf_init(&b);
		for (fl_error *e = v; e; e = e->next) {
			cr_assert_eq(e->kind, FL_EDRIFT);
			char *s = fl_error_format(e);
			fl_buf_printf(&b, "%s%s", b.len ? "\n" : "", s);
			free(s);
		}
		out = fl_buf_detach(&b);
	}
	fl_error_free(v);
	fl_plan_free(plan);
	fl_history_free(h);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	return out;
}

/* ---- sha256 ---- */

Test(engine, sha256_fips_vectors)
{
	char hex[65];
	fl_sha256_hex("abc", 3, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	fl_sha256_hex("", 0, hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	fl_sha256_hex(m448, strlen(m448), hex);
	cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *m896 =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
	    "mnopqrstnopqrstu";
	fl_sha256_hex(m896, strlen(m896), hex);
	cr_assert_str_eq(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	/* one million 'a', fed in uneven pieces so buffering across blocks is exercised */
	char chunk[997];
	memset(chunk, 'a', sizeof(chunk));
	fl_sha256_ctx c;
	fl_sha256_init(&c);
	size_t left = 1000000, step = 1;
	while (left) {
		size_t k = step < left ? step : left;
		if (k > sizeof(chunk))
			k = sizeof(chunk);
		fl_sha256_update(&c, chunk, k);
		left -= k;
		step = step % sizeof(chunk) + 61;
	}
	fl_sha256_final_hex(&c, hex);
	cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* ---- names, lock key, placeholders ---- */

Test(engine, lock_key_matches_flyway)
{
	cr_assert_eq(fl_history_lock_key("public", "flyway_schema_history"), 77433833903597LL);
	cr_assert_eq(fl_history_lock_key("app", "flyway_schema_history"), 77431436970681LL);
	cr_assert_eq(fl_java_string_hash(""), 0);
	cr_assert_eq(fl_java_string_hash("a"), 97);
	/* "é" is one UTF-16 unit (233); U+1F600 is two (0xD83D 0xDE00) */
	cr_assert_eq(fl_java_string_hash("\xc3\xa9"), 233);
	cr_assert_eq(fl_java_string_hash("\xf0\x9f\x98\x80"), 0xD83D * 31 + 0xDE00);
	char *n = fl_history_name("a\"b", "t");
	cr_assert_str_eq(n, "\"a\"\"b\".\"t\"");
	free(n);
}

Test(engine, abbreviations_as_flyway)
{
	char long_desc[300];
	memset(long_desc, 'd', 250);
	long_desc[250] = '\0';
	char *d = fl_history_abbreviate_description(long_desc);
	cr_assert_eq(strlen(d), 200);
	cr_assert_str_eq(d + 197, "...");
	free(d);
	char long_script[1200];
	memset(long_script, 's', 1100);
	long_script[1100] = '\0';
	char *s = fl_history_abbreviate_script(long_script);
	cr_assert_eq(strlen(s), 1000);
	cr_assert(strncmp(s, "...s", 4) == 0);
	free(s);
	d = fl_history_abbreviate_description("short");
	cr_assert_str_eq(d, "short");
	free(d);
}

/* ---- source ---- */

Test(engine, source_dir_sorted_recursive_hidden_skipped)
{
	char *dir = th_tmpdir();
	th_write(dir, "V2__b.sql", "SELECT 2;");
	th_write(dir, "V1__a.sql", "SELECT 1;");
	th_write(dir, "sub/V3__c.sql", "SELECT 3;");
	th_write(dir, ".hidden.sql", "x");
	th_write(dir, ".git/V9__no.sql", "x");
	th_write(dir, "README.md", "# notes");
	fl_file *files;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_source_dir(dir, "svc/migrations", &files, &n, &err), 0);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(files[0].name, "README.md");
	cr_assert_str_eq(files[1].name, "V1__a.sql");
	cr_assert_str_eq(files[2].name, "V2__b.sql");
	cr_assert_str_eq(files[3].name, "sub/V3__c.sql");
	cr_assert_str_eq(files[3].path, "svc/migrations/sub/V3__c.sql");
	cr_assert_str_eq(files[3].data, "SELECT 3;");
	cr_assert_eq(files[3].len, 9);
	fl_source_free(files, n);

	char *missing = fmt("%s/nope", dir);
	cr_assert_eq(fl_source_dir(missing, "services/x/migrations", &files, &n, &err), -1);
	cr_assert_str_eq(err->msg, "migrations folder services/x/migrations does not exist");
	cr_assert_eq(err->kind, FL_EINPUT);
	fl_error_free(err);
	free(missing);
	free(dir);
}

Test(engine, duplicate_version_refused_before_connecting)
{
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "SELECT 1;");
	th_write(dir, "V1.0__b.sql", "SELECT 2;");
	fl_file *files;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_source_dir(dir, DISPLAY, &files, &n, &err), 0);
	fl_migration_set *set = fl_migration_set_new(files, n, &err);
	free(files);
	cr_assert_null(set);
	cr_assert(err);
	cr_assert_eq(err->kind, FL_EINPUT);
	char *m = fl_error_format(err);
	cr_assert(th_contains(m, "V1__a.sql") && th_contains(m, "V1.0__b.sql"), "%s", m);
	free(m);
	fl_error_free(err);
	free(dir);
}

/* ---- pg ---- */

Test(engine, pg_errors_carry_sqlstate_detail_hint)
{
	char *db = th_db_new();
	fl_pg *pg = pg_open(db);
	fl_error *err = NULL;
	fl_pg_diag d = {0};
	cr_assert_eq(fl_pg_exec(pg, "SELECT * FROM nosuch", NULL, &d, &err), -1);
	cr_assert_str_eq(err->msg, "ERROR 42P01: relation \"nosuch\" does not exist");
	cr_assert_eq(err->kind, FL_EDB);
	cr_assert_eq(d.position, 15);
	fl_error_free(err);
	fl_pg_diag_clear(&d);
	cr_assert_eq(
	    fl_pg_exec(pg,
	               "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint'; "
	               "END $$",
	               "running", &d, &err),
	    -1);
	cr_assert_str_eq(err->msg, "running: ERROR P0001: boom\nDETAIL: the detail\nHINT: the hint");
	cr_assert(th_contains(d.context, "inline_code_block line 1"));
	fl_error_free(err);
	fl_pg_diag_clear(&d);
	/* notices are collected, not printed */
	cr_assert_eq(fl_pg_exec(pg, "DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$", NULL, NULL, &err), 0);
	size_t n;
	char **notes = fl_pg_take_notices(pg, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(notes[0], "NOTICE: hello 42");
	free(notes[0]);
	free(notes);
	char *q = fl_pg_ident(pg, "we\"ird");
	cr_assert_str_eq(q, "\"we\"\"ird\"");
	free(q);
	char *app = fl_pg_value(pg, "SELECT current_setting('application_name')", 0, NULL, &err);
	cr_assert_str_eq(app, "flotilla");
	free(app);
	fl_pg_close(pg);
	th_db_drop(db);
	free(db);
}

Test(engine, pg_connect_error_names_target_never_password)
{
	fl_pg_params p = {.dbname = "no_such_db_here", .password = "s3cret-pa55"};
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&p, &err);
	cr_assert_null(pg);
	cr_assert_eq(err->kind, FL_EDB);
	cr_assert(th_contains(err->msg, "cannot connect to database \"no_such_db_here\""), "%s", err->msg);
	cr_assert(th_contains(err->msg, "does not exist"), "%s", err->msg);
	cr_assert(!th_contains(err->msg, "s3cret"), "%s", err->msg);
	fl_error_free(err);
}

/* ---- migrate ---- */

static const char *V1 = "CREATE TABLE users (id int PRIMARY KEY, name text);\n";
static const char *V11 = "ALTER TABLE users ADD COLUMN email text;\n";
static const char *V2 = "INSERT INTO users VALUES (1, 'ann', 'ann@example.com');\n";
static const char *V3 = "CREATE TABLE sub_t (id int);\n";
static const char *R1 = "CREATE OR REPLACE VIEW users_view AS SELECT id, name FROM users;\n";

static char *standard_folder(void)
{
	char *dir = th_tmpdir();
	th_write(dir, "V1__create_users.sql", V1);
	th_write(dir, "V1.1__add_email.sql", V11);
	th_write(dir, "V2__seed_data.sql", V2);
	th_write(dir, "sub/V3__in_subfolder.sql", V3);
	th_write(dir, "R__users_view.sql", R1);
	th_write(dir, "U2__seed_data.sql", "DELETE FROM users;\n");
	th_write(dir, "README.md", "not a migration\n");
	return dir;
}

struct events {
	int kinds[64];
	int n;
	char lock_text[512];
	char notices[2048]; /* flotilla's own notices and the server's, one a line */
	char retry[512];    /* the first lock retry's text */
	int retries;
};

static void record(void *ctx, const fl_apply_event *ev)
{
	struct events *e = ctx;
	if (e->n < 64)
		e->kinds[e->n++] = (int)ev->kind;
	if (ev->kind == FL_APPLY_EV_LOCK_WAIT)
		snprintf(e->lock_text, sizeof(e->lock_text), "%s", ev->text);
	if (ev->kind == FL_APPLY_EV_NOTICE) {
		size_t l = strlen(e->notices);
		snprintf(e->notices + l, sizeof(e->notices) - l, "%s\n", ev->text);
	}
	if (ev->kind == FL_APPLY_EV_LOCK_RETRY && e->retries++ == 0)
		snprintf(e->retry, sizeof(e->retry), "%s", ev->text);
}

Test(engine, fresh_database_history_rows_as_flyway_writes_them)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	struct events ev = {0};
	fl_apply_opts o = base_opts(dir);
	o.schema = "app";
	o.on_event = record;
	o.event_ctx = &ev;
	cr_assert_eq(migrate_ok(db, dir, &o), 5);
	PGconn *c = th_connect(db);
	char *h = history_dump(c, "app");
	char *expect = fmt("0|NULL|<< Flyway Schema Creation >>|SCHEMA|\"app\"|NULL|postgres|t\n"
	                   "1|1|create users|SQL|V1__create_users.sql|%d|postgres|t\n"
	                   "2|1.1|add email|SQL|V1.1__add_email.sql|%d|postgres|t\n"
	                   "3|2|seed data|SQL|V2__seed_data.sql|%d|postgres|t\n"
	                   "4|3|in subfolder|SQL|sub/V3__in_subfolder.sql|%d|postgres|t\n"
	                   "5|NULL|users view|SQL|R__users_view.sql|%d|postgres|t",
	                   crc_of(V1), crc_of(V11), crc_of(V2), crc_of(V3), crc_of(R1));
	assert_str(h, expect);
	free(h);
	free(expect);
	assert_q(c, "0", "SELECT count(*) FROM app.flyway_schema_history WHERE execution_time < 0");
	assert_q(c, "ann@example.com", "SELECT email FROM app.users_view JOIN app.users USING (id)");
	/* the table is Flyway's DDL exactly: columns, types, nullability, default, pk, index */
	assert_q(c,
	         "installed_rank:integer:NO:,version:character varying(50):YES:,"
	         "description:character varying(200):NO:,type:character varying(20):NO:,"
	         "script:character varying(1000):NO:,checksum:integer:YES:,"
	         "installed_by:character varying(100):NO:,installed_on:timestamp without time zone:NO:now(),"
	         "execution_time:integer:NO:,success:boolean:NO:",
	         "SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || "
	         "CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END || ':' || "
	         "coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ',' ORDER BY a.attnum) FROM pg_attribute a "
	         "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
	         "WHERE a.attrelid = 'app.flyway_schema_history'::regclass AND a.attnum > 0");
	assert_q(
	    c, "app.flyway_schema_history_pk,app.flyway_schema_history_s_idx",
	    "SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY 1) FROM pg_index WHERE indrelid = "
	    "'app.flyway_schema_history'::regclass");
	/* ledger: one run, one execution per migration with the file's SHA-256 */
	assert_q(c, "migrate|auth|success",
	         "SELECT command || '|' || service || '|' || outcome FROM flotilla.run");
	char sha[65];
	fl_sha256_hex(V1, strlen(V1), sha);
	char *got =
	    q1(c, "SELECT content_sha256 FROM flotilla.execution WHERE script = 'V1__create_users.sql'");
	cr_assert_str_eq(got, sha);
	free(got);
	assert_q(c, "5", "SELECT count(*) FROM flotilla.execution WHERE success AND duration_ms >= 0");
	assert_q(c, "1|V1__ledger.sql,2|V2__statement_in_flight.sql",
	         "SELECT string_agg(version || '|' || script, ',' ORDER BY installed_rank) FROM "
	         "flotilla.flyway_schema_history WHERE type = 'SQL'");
	/* events: locked, plan, 5 x (applying, applied), done */
	cr_assert_eq(ev.n, 13);
	cr_assert_eq(ev.kinds[0], FL_APPLY_EV_LOCKED);
	cr_assert_eq(ev.kinds[1], FL_APPLY_EV_PLAN);
	cr_assert_eq(ev.kinds[2], FL_APPLY_EV_APPLYING);
	cr_assert_eq(ev.kinds[3], FL_APPLY_EV_APPLIED);
	cr_assert_eq(ev.kinds[12], FL_APPLY_EV_DONE);

	/* rerun: nothing to do, nothing written: not the history, not the ledger (no run row) */
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	assert_q(c, "6", "SELECT count(*) FROM app.flyway_schema_history");
	assert_q(c, "1", "SELECT count(*) FROM flotilla.run");
	char *v = validate(db, dir, &o);
	cr_assert_null(v, "%s", v);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, public_schema_gets_no_marker_and_status_reads_it)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 5);
	PGconn *c = th_connect(db);
	assert_q(c, "1|5",
	         "SELECT min(installed_rank) || '|' || max(installed_rank) FROM flyway_schema_history");
	PQfinish(c);
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_history *h;
	fl_plan *plan;
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_info(pg, set, &o, &h, &plan, &err), 0);
	cr_assert_str_eq(plan->current_version, "3");
	cr_assert_eq(plan->npending, 0);
	cr_assert_eq(plan->nrepeatables, 0);
	cr_assert_eq(plan->n, 5);
	for (size_t i = 0; i < plan->n; i++)
		cr_assert_eq(plan->items[i].state, FL_ST_SUCCESS, "item %zu: %s", i,
		             fl_plan_state_name(plan->items[i].state));
	cr_assert_str_eq(fl_plan_item_category(&plan->items[4]), "Repeatable");
	fl_plan_free(plan);
	fl_history_free(h);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	th_db_drop(db);
	free(db);
	free(dir);
}

/* A failing migration: error at file:line:col, and database and history exactly as before it. */
static void failing_case(const char *content, const char *expect_error)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__t1.sql", "CREATE TABLE t1 (id int);\nINSERT INTO t1 VALUES (1), (2);\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	th_write(dir, "V2__bad.sql", content);
	th_write(dir, "V3__after.sql", "CREATE TABLE t3 (id int);\n");
	PGconn *c = th_connect(db);
	char *before = snapshot(c);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	assert_str(msg, expect_error);
	cr_assert_eq(kind, FL_EDB);
	char *after = snapshot(c);
	assert_str(after, before);
	/* the attempt is in the ledger, with the error */
	char *led = q1(
	    c, "SELECT success::text || '|' || error FROM flotilla.execution WHERE script = 'V2__bad.sql'");
	char *want = fmt("false|%s", expect_error);
	assert_str(led, want);
	assert_q(c, "failed", "SELECT outcome FROM flotilla.run ORDER BY id DESC LIMIT 1");
	free(led);
	free(want);
	free(msg);
	free(before);
	free(after);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, failure_on_first_line)
{
	failing_case("INSERT INTO nosuch VALUES (1);\nCREATE TABLE t2 (id int);\n",
	             DISPLAY "/V2__bad.sql:1:13: ERROR 42P01: relation \"nosuch\" does not exist");
}

Test(engine, failure_deep_inside_do_block)
{
	failing_case("CREATE TABLE t2 (id int);\n"
	             "DO $body$\n"
	             "DECLARE\n"
	             "    n int;\n"
	             "BEGIN\n"
	             "    n := 1;\n"
	             "    INSERT INTO t2 VALUES (n);\n"
	             "    INSERT INTO missing_tbl VALUES (n);\n"
	             "END\n"
	             "$body$;\n",
	             DISPLAY "/V2__bad.sql:8:17: ERROR 42P01: relation \"missing_tbl\" does not exist");
}

Test(engine, failure_deep_inside_do_block_perform_and_raise)
{
	failing_case("DO $$\nBEGIN\n    PERFORM * FROM\n      missing2;\nEND\n$$;\n",
	             DISPLAY "/V2__bad.sql:4:7: ERROR 42P01: relation \"missing2\" does not exist");
	failing_case("DO $$\nBEGIN\n  IF true THEN\n    RAISE EXCEPTION 'boom %', 1 USING HINT = 'do not';\n "
	             " END IF;\n"
	             "END $$;\n",
	             DISPLAY "/V2__bad.sql:4:5: ERROR P0001: boom 1\nHINT: do not");
}

Test(engine, failure_inside_function_body_at_creation)
{
	failing_case("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $fn$\n"
	             "  SELECT count(*)::int\n"
	             "  FROM nosuch_f\n"
	             "$fn$;\n",
	             DISPLAY "/V2__bad.sql:3:8: ERROR 42P01: relation \"nosuch_f\" does not exist");
}

Test(engine, failure_after_multiline_comment)
{
	failing_case("/* a comment\n   spanning\n   three lines */ SELECT * FROM\n  nowhere;\n",
	             DISPLAY "/V2__bad.sql:4:3: ERROR 42P01: relation \"nowhere\" does not exist");
}

Test(engine, failure_with_detail_and_placeholders_before_it)
{
	/* ${flyway:defaultSchema} (6 chars: public) is longer in the file: the column is the file's */
	failing_case(
	    "INSERT INTO ${flyway:defaultSchema}.t1 VALUES (1); ALTER TABLE ${flyway:defaultSchema}.t1 "
	    "ADD PRIMARY KEY (id);\nSELECT 1/0;\n",
	    DISPLAY "/V2__bad.sql:1:52: ERROR 23505: could not create unique index \"t1_pkey\"\n"
	            "DETAIL: Key (id)=(1) is duplicated.");
	failing_case("SELECT 1; SELECT '${flyway:defaultSchema}' || x FROM t1;\n",
	             DISPLAY "/V2__bad.sql:1:47: ERROR 42703: column \"x\" does not exist");
}

Test(engine, checksum_mismatch_and_missing_file_fail_validate)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 5);
	th_write(dir, "V1.1__add_email.sql", "ALTER TABLE users ADD COLUMN email varchar(200);\n");
	char *path = fmt("%s/V2__seed_data.sql", dir);
	cr_assert_eq(unlink(path), 0);
	free(path);
	char *v = validate(db, dir, &o);
	cr_assert(v);
	char *lines[3] = {0};
	int n = 0;
	for (char *p = strtok(v, "\n"); p && n < 3; p = strtok(NULL, "\n"))
		lines[n++] = p;
	cr_assert_eq(n, 2, "%s", v);
	char *want =
	    fmt(DISPLAY "/V1.1__add_email.sql: checksum mismatch for migration 1.1 (add email): applied "
	                "with %d (",
	        crc_of(V11));
	cr_assert(strncmp(lines[0], want, strlen(want)) == 0, "%s", lines[0]);
	cr_assert(th_contains(lines[0], "run 'flotilla repair auth' to realign checksums"), "%s", lines[0]);
	free(want);
	cr_assert(
	    strncmp(lines[1], DISPLAY "/V2__seed_data.sql: migration 2 (seed data) was applied (", 60) == 0,
	    "%s", lines[1]);
	cr_assert(th_contains(lines[1], "but its file is missing; restore the file"), "%s", lines[1]);
	free(v);
	/* and migrate refuses to run anything (validate on migrate), touching nothing */
	th_write(dir, "V4__more.sql", "CREATE TABLE more_t (id int);\n");
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EDRIFT);
	cr_assert(th_contains(msg, "checksum mismatch"), "%s", msg);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "5", "SELECT count(*) FROM flyway_schema_history");
	assert_q(c, "1", "SELECT count(*) FROM flotilla.run");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, pending_is_a_validate_error_only_standalone)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	char *v = validate(db, dir, &o);
	assert_str(v,
	           DISPLAY "/V2__b.sql: migration 2 (b) is pending; run 'flotilla migrate auth' to apply it");
	free(v);
	th_write(dir, "V1.5__between.sql", "SELECT 1;\n");
	cr_assert_eq(migrate_ok(db, dir, &o), 2); /* 1.5 is above the current 1: it simply runs */
	PGconn *c = th_connect(db);
	assert_q(c, "1,1.5,2",
	         "SELECT string_agg(version, ',' ORDER BY installed_rank) FROM flyway_schema_history");
	PQfinish(c);
	th_write(dir, "V1.2__late.sql", "SELECT 1;\n");
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	assert_str(
	    msg, DISPLAY
	    "/V1.2__late.sql: migration 1.2 (late) is not applied but its version is below the "
	    "current version 2; give it a version above 2, or run 'flotilla migrate auth --out-of-order' to "
	    "apply it anyway");
	cr_assert_eq(kind, FL_EDRIFT);
	free(msg);
	o.out_of_order = true;
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, flyway_written_history_validates_clean)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	char *tsv = fmt("%s/flyway-compat/checksums.tsv", th_shared());
	char *list = th_read(tsv);
	PGconn *c = th_connect(db);
	th_exec(
	    c,
	    "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL, version VARCHAR(50), "
	    "description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, "
	    "checksum INTEGER, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT "
	    "now(), execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL);"
	    "ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk PRIMARY KEY "
	    "(installed_rank)");
	int rank = 0, version = 1, files = 0;
	for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
		char name[128];
		long sum;
		cr_assert_eq(sscanf(line, "%127s %ld", name, &sum), 2);
		char *src = fmt("%s/flyway-compat/vectors/%s", th_shared(), name);
		char *data = th_read(src);
		char *file, *ver, *desc;
		if (strncmp(name, "flyway_", 7) == 0) {
			file = fl_strdup(name + 7); /* V1.1__View.sql */
			ver = fl_strdup("1.1");
			desc = fl_strdup("View");
		} else {
			version++;
			char stem[64];
			snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(name) - 4), name);
			file = fmt("V%d__%s.sql", version, stem);
			ver = fmt("%d", version);
			desc = fl_strdup(stem);
			for (char *p = desc; *p; p++)
				if (*p == '_')
					*p = ' ';
		}
		/* byte-exact copy: th_write stops at NUL, the vectors have none */
		th_write(dir, file, data);
		char *sql = fmt(
		    "INSERT INTO flyway_schema_history (installed_rank, version, description, type, "
		    "script, checksum, installed_by, execution_time, success) VALUES (%d, '%s', '%s', 'SQL', "
		    "'%s', %ld, 'flyway', 12, true)",
		    ++rank, ver, desc, file, sum);
		th_exec(c, sql);
		free(sql);
		free(file);
		free(ver);
		free(desc);
		free(data);
		free(src);
		files++;
	}
	cr_assert_eq(files, 14);
	/* a repeatable with a placeholder: Flyway stores the checksum after replacement (t13's) */
	char *t12 = fmt("%s/flyway-compat/vectors/t12_placeholder.sql", th_shared());
	char *t12data = th_read(t12);
	th_write(dir, "R__make_schema.sql", t12data);
	char *sql =
	    fmt("INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
	        "checksum, installed_by, execution_time, success) VALUES (%d, NULL, 'make schema', 'SQL', "
	        "'R__make_schema.sql', -242689986, 'flyway', 3, true)",
	        ++rank);
	th_exec(c, sql);
	free(sql);
	fl_apply_opts o = base_opts(dir);
	fl_placeholder ph[] = {{"schema", "app"}};
	o.placeholders = ph;
	o.nplaceholders = 1;
	char *v = validate(db, dir, &o);
	cr_assert_null(v, "%s", v);
	/* and migrate has nothing to do on it */
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	/* with another value the repeatable is outdated (and would run again) */
	ph[0].value = "other";
	v = validate(db, dir, &o);
	cr_assert(
	    th_contains(v,
	                "R__make_schema.sql: repeatable migration \"make schema\" changed since it last ran"),
	    "%s", v);
	free(v);
	free(t12);
	free(t12data);
	free(tsv);
	free(list);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, baseline_then_migrate_above_it)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	fl_apply_opts o = base_opts(dir);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_baseline(pg, "2", NULL, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.nchanges, 1);
	cr_assert_str_eq(res.changes[0], "baselined \"public\".\"flyway_schema_history\" at version 2");
	fl_apply_result_clear(&res);
	PGconn *c = th_connect(db);
	char *h = history_dump(c, "public");
	assert_str(h, "1|2|<< Flyway Baseline >>|BASELINE|<< Flyway Baseline >>|NULL|postgres|t");
	free(h);
	assert_q(c, "0", "SELECT execution_time FROM flyway_schema_history");
	/* again at the same version: nothing changes */
	cr_assert_eq(fl_apply_baseline(pg, "2", NULL, &o, &res, &err), 0);
	cr_assert(th_contains(res.changes[0], "already baselined at version 2"));
	fl_apply_result_clear(&res);
	/* at another version: refused */
	cr_assert_eq(fl_apply_baseline(pg, "5", NULL, &o, &res, &err), -1);
	cr_assert_eq(err->kind, FL_EINPUT);
	cr_assert(th_contains(err->msg,
	                      "cannot baseline \"public\".\"flyway_schema_history\" at version 5: it "
	                      "already holds migrations"),
	          "%s", err->msg);
	fl_error_free(err);
	fl_pg_close(pg);
	fl_migration_set *set = load_set(dir);
	pg = pg_open(db);
	fl_history *hh;
	fl_plan *plan;
	cr_assert_eq(fl_apply_info(pg, set, &o, &hh, &plan, &err), 0);
	cr_assert_str_eq(plan->current_version, "2");
	cr_assert_eq(plan->npending, 1);
	int below = 0;
	for (size_t i = 0; i < plan->n; i++)
		below += plan->items[i].state == FL_ST_BELOW_BASELINE;
	cr_assert_eq(below, 2);
	fl_plan_free(plan);
	fl_history_free(hh);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	h = history_dump(c, "public");
	char *expect = fmt("1|2|<< Flyway Baseline >>|BASELINE|<< Flyway Baseline >>|NULL|postgres|t\n"
	                   "2|3|c|SQL|V3__c.sql|%d|postgres|t",
	                   crc_of("CREATE TABLE c (id int);\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	assert_q(c, "c",
	         "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public' AND "
	         "tablename IN ('a', 'b', 'c')");
	/* a history with migrations refuses a baseline */
	pg = pg_open(db);
	cr_assert_eq(fl_apply_baseline(pg, "1", NULL, &o, NULL, &err), -1);
	fl_error_free(err);
	fl_pg_close(pg);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, repair_removes_failed_rows_and_realigns)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 2);
	PGconn *c = th_connect(db);
	/* as Flyway leaves a failed non-transactional migration */
	th_exec(
	    c,
	    "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
	    "checksum, "
	    "installed_by, execution_time, success) VALUES (3, '3', 'c', 'SQL', 'V3__c.sql', 7, 'flyway', 5, "
	    "false)");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int, x int);\n");
	char *p = fmt("%s/V2__b.sql", dir), *p2 = fmt("%s/V2__bee.sql", dir);
	cr_assert_eq(rename(p, p2), 0);
	free(p);
	free(p2);
	char *v = validate(db, dir, &o);
	cr_assert(
	    th_contains(v, DISPLAY
	                "/V3__c.sql: migration 3 (c) is recorded as failed in "
	                "\"public\".\"flyway_schema_history\"; undo whatever it changed, then run 'flotilla "
	                "repair auth' to remove the failed row"),
	    "%s", v);
	cr_assert(th_contains(v, DISPLAY
	                      "/V2__bee.sql: description mismatch for migration 2: applied as \"b\", the "
	                      "file says \"bee\""),
	          "%s", v);
	free(v);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EDRIFT);
	free(msg);

	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_repair(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.nchanges, 3);
	char *want = fmt("realigned the checksum of migration 1 (V1__a.sql): %d -> %d",
	                 crc_of("CREATE TABLE a (id int);\n"), crc_of("CREATE TABLE a (id int, x int);\n"));
	cr_assert_str_eq(res.changes[0], want);
	free(want);
	cr_assert_str_eq(res.changes[1],
	                 "realigned the description of migration 2 (V2__bee.sql): \"b\" -> \"bee\"");
	cr_assert_str_eq(res.changes[2], "removed the failed row of migration 3 (V3__c.sql, rank 3)");
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	char *h = history_dump(c, "public");
	char *expect = fmt("1|1|a|SQL|V1__a.sql|%d|postgres|t\n2|2|bee|SQL|V2__b.sql|%d|postgres|t",
	                   crc_of("CREATE TABLE a (id int, x int);\n"), crc_of("CREATE TABLE b (id int);\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	/* now clean apart from the pending V3, which migrate applies */
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	v = validate(db, dir, &o);
	cr_assert_null(v, "%s", v);
	assert_q(c, "repair|success",
	         "SELECT command || '|' || outcome FROM flotilla.run WHERE command = 'repair'");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, undo_in_reverse_recorded_as_undo_sql)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	th_write(dir, "U2__b.sql", "DROP TABLE b;\n");
	th_write(dir, "U3__c.sql", "DROP TABLE c;\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 3);
	PGconn *c = th_connect(db);

	/* down to 0 needs U1, which does not exist: refused before anything runs */
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	o.target = "0";
	cr_assert_eq(fl_apply_undo(pg, set, &o, &res, &err), -1);
	char *m = fl_error_format(err);
	cr_assert_str_eq(m, DISPLAY
	                 "/V1__a.sql: cannot undo migration 1 (a): there is no U1__*.sql file beside it");
	free(m);
	fl_error_free(err);
	fl_apply_result_clear(&res);
	assert_q(c, "3",
	         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('a','b','c')");

	o.target = "1";
	cr_assert_eq(fl_apply_undo(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.applied, 2);
	cr_assert_str_eq(res.version_before, "3");
	cr_assert_str_eq(res.version_after, "1");
	fl_apply_result_clear(&res);
	char *h = history_dump(c, "public");
	char *expect =
	    fmt("1|1|a|SQL|V1__a.sql|%d|postgres|t\n2|2|b|SQL|V2__b.sql|%d|postgres|t\n"
	        "3|3|c|SQL|V3__c.sql|%d|postgres|t\n4|3|c|UNDO_SQL|U3__c.sql|%d|postgres|t\n"
	        "5|2|b|UNDO_SQL|U2__b.sql|%d|postgres|t",
	        crc_of("CREATE TABLE a (id int);\n"), crc_of("CREATE TABLE b (id int);\n"),
	        crc_of("CREATE TABLE c (id int);\n"), crc_of("DROP TABLE c;\n"), crc_of("DROP TABLE b;\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	assert_q(c, "a",
	         "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public' AND "
	         "tablename IN ('a','b','c')");
	/* status: V2 and V3 undone and pending again; migrate reapplies them */
	fl_history *hh;
	fl_plan *plan;
	o.target = NULL;
	cr_assert_eq(fl_apply_info(pg, set, &o, &hh, &plan, &err), 0);
	cr_assert_str_eq(plan->current_version, "1");
	cr_assert_eq(plan->npending, 2);
	cr_assert_eq(plan->items[1].state, FL_ST_UNDONE);
	cr_assert_eq(plan->items[2].state, FL_ST_UNDONE);
	cr_assert_eq(plan->items[3].state, FL_ST_UNDO_APPLIED);
	fl_plan_free(plan);
	fl_history_free(hh);
	fl_pg_close(pg);
	cr_assert_eq(migrate_ok(db, dir, &o), 2);
	/* no target: only the latest */
	pg = pg_open(db);
	cr_assert_eq(fl_apply_undo(pg, set, &o, &res, &err), 0);
	cr_assert_eq(res.applied, 1);
	cr_assert_str_eq(res.items[0].script, "U3__c.sql");
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	assert_q(c, "a,b",
	         "SELECT string_agg(tablename, ',' ORDER BY 1) FROM pg_tables WHERE schemaname = 'public' "
	         "AND tablename IN ('a','b','c')");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, target_stops_at_version)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	th_write(dir, "R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n");
	fl_apply_opts o = base_opts(dir);
	o.target = "2";
	cr_assert_eq(migrate_ok(db, dir, &o), 3); /* V1, V2 and the repeatable */
	PGconn *c = th_connect(db);
	assert_q(c, "1,2",
	         "SELECT string_agg(version, ',' ORDER BY installed_rank) FROM flyway_schema_history");
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_history *hh;
	fl_plan *plan;
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_info(pg, set, &o, &hh, &plan, &err), 0);
	cr_assert_eq(plan->items[plan->n - 1].state, FL_ST_ABOVE_TARGET);
	cr_assert_str_eq(plan->items[plan->n - 1].mig->script, "V3__c.sql");
	fl_plan_free(plan);
	fl_history_free(hh);
	o.target = "x1";
	cr_assert_eq(fl_apply_info(pg, set, &o, &hh, &plan, &err), -1);
	cr_assert_str_eq(err->msg, "target 'x1' is not a version (like 3 or 1.2.1), 'current' or 'latest'");
	fl_error_free(err);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	o.target = "current";
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	o.target = NULL;
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, repeatable_runs_again_when_changed)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__t.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 2);
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	const char *r2 = "CREATE OR REPLACE VIEW v AS SELECT id, id + 1 AS next FROM t;\n";
	th_write(dir, "R__v.sql", r2);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	PGconn *c = th_connect(db);
	char *got =
	    q1(c, "SELECT string_agg(installed_rank || ':' || checksum, ',' ORDER BY installed_rank) FROM "
	          "flyway_schema_history WHERE version IS NULL");
	char *want = fmt("2:%d,3:%d", crc_of("CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n"), crc_of(r2));
	assert_str(got, want);
	free(got);
	free(want);
	assert_q(c, "next", "SELECT attname FROM pg_attribute WHERE attrelid = 'v'::regclass AND attnum = 2");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, unknown_placeholder_stops_before_anything_runs)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n-- owner ${tenant}\n");
	fl_apply_opts o = base_opts(dir);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EINPUT);
	cr_assert(strncmp(msg, DISPLAY "/V2__b.sql:2:10: no value for placeholder ${tenant}", 60) == 0, "%s",
	          msg);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "0", "SELECT count(*) FROM pg_namespace WHERE nspname = 'flotilla'");
	assert_q(c, "0", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, held_lock_waits_then_names_the_holder)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	PGconn *holder = th_connect(db); /* application_name flotilla-test */
	th_exec(holder, "SELECT pg_advisory_lock(77433833903597)");
	struct events ev = {0};
	fl_apply_opts o = base_opts(dir);
	o.migration_lock_timeout_ms = 600;
	o.lock_poll_ms = 50;
	o.on_event = record;
	o.event_ctx = &ev;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert_geq(ms, 600);
	cr_assert_eq(kind, FL_EDB);
	char *pid =
	    fmt("held by pid %d (application_name \"flotilla-test\", user postgres", PQbackendPID(holder));
	cr_assert(
	    th_contains(msg,
	                "gave up after 600 ms (migration_lock_timeout) waiting for the migration lock on "
	                "\"public\".\"flyway_schema_history\" (advisory lock 77433833903597): it is held by"),
	    "%s", msg);
	cr_assert(th_contains(msg, pid + 8), "%s\n%s", msg, pid);
	cr_assert(th_contains(msg, "connected since "), "%s", msg);
	cr_assert_eq(ev.kinds[0], FL_APPLY_EV_LOCK_WAIT);
	cr_assert(th_contains(ev.lock_text, pid), "%s", ev.lock_text);
	free(pid);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "0", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	PQfinish(c);
	/* released: it migrates, and the lock is free again afterwards */
	th_exec(holder, "SELECT pg_advisory_unlock(77433833903597)");
	cr_assert_eq(migrate_ok(db, dir, &o), 5);
	assert_q(holder, "t", "SELECT pg_try_advisory_lock(77433833903597)");
	PQfinish(holder);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, flyway_folder_with_create_index_concurrently)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__table.sql",
	         "CREATE TABLE big (id int, v text);\nINSERT INTO big SELECT g, g::text FROM "
	         "generate_series(1, 1000) g;\n");
	th_write(dir, "V2__index.sql",
	         "-- written for Flyway: no directive\nCREATE INDEX CONCURRENTLY big_v_idx ON "
	         "big (v);\n");
	th_write(dir, "V3__after.sql", "CREATE TABLE after_t (id int);\n");
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 3);
	PGconn *c = th_connect(db);
	assert_q(c, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass");
	assert_q(c, "1:true,2:true,3:true",
	         "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	         "flyway_schema_history");
	assert_q(c, "true|1|1",
	         "SELECT no_transaction || '|' || statements_done || '|' || statements_total FROM "
	         "flotilla.execution WHERE script = 'V2__index.sql'");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, no_transaction_failure_resumes_at_the_failed_statement)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__base.sql", "CREATE TABLE log (n int);\n");
	const char *steps = "-- flotilla:no-transaction\n"
	                    "INSERT INTO log VALUES (1);\n"
	                    "INSERT INTO log VALUES (2);\n"
	                    "INSERT INTO later VALUES (3);\n"
	                    "INSERT INTO log VALUES (4);\n"
	                    "CREATE INDEX CONCURRENTLY log_n_idx ON log (n);\n";
	th_write(dir, "V2__steps.sql", steps);
	fl_apply_opts o = base_opts(dir);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	assert_str(msg, DISPLAY "/V2__steps.sql:4:13: ERROR 42P01: relation \"later\" does not exist");
	cr_assert_eq(kind, FL_EDB);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "1,2", "SELECT string_agg(n::text, ',' ORDER BY n) FROM log");
	char *h = history_dump(c, "public");
	char *expect =
	    fmt("1|1|base|SQL|V1__base.sql|%d|postgres|t\n2|2|steps|SQL|V2__steps.sql|%d|postgres|f",
	        crc_of("CREATE TABLE log (n int);\n"), crc_of(steps));
	assert_str(h, expect);
	free(h);
	free(expect);
	assert_q(c, "2|5|false",
	         "SELECT statements_done || '|' || statements_total || '|' || success FROM "
	         "flotilla.execution WHERE script = 'V2__steps.sql' ORDER BY id DESC LIMIT 1");

	/* status in between: failed at statement 3 of 5, resumable */
	fl_migration_set *set = load_set(dir);
	fl_pg *pg = pg_open(db);
	fl_history *hh;
	fl_plan *plan;
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_info(pg, set, &o, &hh, &plan, &err), 0);
	const fl_plan_item *it = &plan->items[1];
	cr_assert_eq(it->state, FL_ST_FAILED);
	cr_assert(it->resumable);
	cr_assert_eq(it->resume_at, 3);
	char *note = fl_plan_item_note(it);
	assert_str(note, "failed at statement 3 of 5: " DISPLAY
	                 "/V2__steps.sql:4:13: ERROR 42P01: relation \"later\" does not exist");
	free(note);
	fl_error *v = fl_plan_validate(plan, true);
	cr_assert(v && th_contains(v->msg, "fix the cause, then run 'flotilla migrate auth' to continue from "
	                                   "statement 3"),
	          "%s", v ? v->msg : "clean");
	fl_error_free(v);
	cr_assert_null(fl_plan_validate(plan, false)); /* migrate may go on */
	fl_plan_free(plan);
	fl_history_free(hh);
	fl_pg_close(pg);
	fl_migration_set_free(set);

	/* statements already run must not change under a resume */
	th_write(
	    dir, "V2__steps.sql",
	    "-- flotilla:no-transaction\nINSERT INTO log VALUES (10);\nINSERT INTO log VALUES (2);\nINSERT "
	    "INTO later VALUES (3);\nINSERT INTO log VALUES (4);\nCREATE INDEX CONCURRENTLY log_n_idx ON log "
	    "(n);\n");
	msg = migrate_fail(db, dir, &o, &kind);
	cr_assert(th_contains(msg,
	                      "cannot continue this migration at statement 3: statements 1 to 2 ran in an "
	                      "earlier attempt and have changed since"),
	          "%s", msg);
	free(msg);
	th_write(dir, "V2__steps.sql", steps);

	/* fix the cause; the rerun continues at statement 3 (statements 1 and 2 do not run twice) */
	th_exec(c, "CREATE TABLE later (n int)");
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	assert_q(c, "1,2,4", "SELECT string_agg(n::text, ',' ORDER BY n) FROM log");
	assert_q(c, "3", "SELECT string_agg(n::text, ',') FROM later");
	assert_q(c, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'log_n_idx'::regclass");
	h = history_dump(c, "public");
	expect = fmt("1|1|base|SQL|V1__base.sql|%d|postgres|t\n2|2|steps|SQL|V2__steps.sql|%d|postgres|t",
	             crc_of("CREATE TABLE log (n int);\n"), crc_of(steps));
	assert_str(h, expect);
	free(h);
	free(expect);
	assert_q(c, "5|5|true|3",
	         "SELECT statements_done || '|' || statements_total || '|' || success || '|' || "
	         "resumed_from FROM flotilla.execution WHERE script = 'V2__steps.sql' ORDER BY id DESC "
	         "LIMIT 1");
	char *val = validate(db, dir, &o);
	cr_assert_null(val, "%s", val);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, dry_run_prints_the_exact_sql_and_changes_nothing)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	const char *v1 =
	    "CREATE TABLE ${flyway:defaultSchema}.t (id int);\nCOMMENT ON TABLE t IS '${note} in "
	    "${flyway:filename}';\n";
	th_write(dir, "V1__t.sql", v1);
	fl_apply_opts o = base_opts(dir);
	fl_placeholder ph[] = {{"note", "made by flotilla"}};
	o.placeholders = ph;
	o.nplaceholders = 1;
	o.statement_timeout_ms = 60000;
	fl_buf out;
	fl_buf_init(&out);
	o.dry_run = true;
	o.sql_out = &out;
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	char *expect = fmt(
	    "BEGIN;\n"
	    "SET search_path TO \"public\";\n"
	    "SET lock_timeout = '5000ms';\n"
	    "SET statement_timeout = '60000ms';\n"
	    "CREATE TABLE public.t (id int);\n"
	    "COMMENT ON TABLE t IS 'made by flotilla in V1__t.sql';\n"
	    "INSERT INTO \"public\".\"flyway_schema_history\" (\"installed_rank\", \"version\", "
	    "\"description\", "
	    "\"type\", \"script\", \"checksum\", \"installed_by\", \"execution_time\", \"success\") SELECT "
	    "COALESCE(MAX(\"installed_rank\"), 0) + 1, '1', 't', 'SQL', 'V1__t.sql', %d, 'postgres', "
	    "floor(extract(epoch FROM clock_timestamp() - now()) * 1000)::int, true FROM "
	    "\"public\".\"flyway_schema_history\" RETURNING \"installed_rank\", \"execution_time\";\n"
	    "COMMIT;\n"
	    "RESET search_path;\n"
	    "RESET lock_timeout;\n"
	    "RESET statement_timeout;\n",
	    crc_of(v1));
	cr_assert(th_contains(out.data, expect), "\n%s\n--- expected to contain ---\n%s", out.data, expect);
	cr_assert(th_contains(out.data, "CREATE TABLE \"public\".\"flyway_schema_history\" ("), "%s",
	          out.data);
	PGconn *c = th_connect(db);
	assert_q(c, "0", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	assert_q(c, "0", "SELECT count(*) FROM pg_namespace WHERE nspname = 'flotilla'");
	/* the SQL printed is the SQL that runs: executed as it is, it leaves what a migrate leaves */
	char *sql = fmt("%s", out.data);
	th_exec(c, sql);
	free(sql);
	char *h = history_dump(c, "public");
	char *want = fmt("1|1|t|SQL|V1__t.sql|%d|postgres|t", crc_of(v1));
	assert_str(h, want);
	free(h);
	free(want);
	assert_q(c, "made by flotilla in V1__t.sql", "SELECT obj_description('public.t'::regclass)");
	o.dry_run = false;
	o.sql_out = NULL;
	cr_assert_eq(migrate_ok(db, dir, &o), 0);
	free(expect);
	fl_buf_free(&out);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, set_role_owns_the_objects)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__things.sql",
	         "CREATE TABLE things (id int);\nCREATE VIEW things_v AS SELECT * FROM things;\n");
	th_write(dir, "V2__idx.sql", "CREATE INDEX CONCURRENTLY things_idx ON things (id);\n");
	char role[64];
	owner_new(db, role, sizeof(role));
	PGconn *c = th_connect(db);
	migrate_as(db, dir, role, 2);
	char *expect = fmt("%s,%s,%s,%s", role, role, role, role);
	assert_q(
	    c, expect,
	    "SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'app') || ',' || "
	    "(SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'things') || ',' "
	    "|| (SELECT viewowner FROM pg_views WHERE schemaname = 'app' AND viewname = 'things_v') || ',' "
	    "|| (SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = "
	    "'flyway_schema_history')");
	free(expect);
	assert_q(c, "postgres",
	         "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'flotilla'");
	assert_q(c, "postgres,postgres",
	         "SELECT string_agg(installed_by, ',') FROM app.flyway_schema_history WHERE "
	         "type = 'SQL'");
	PQfinish(c);
	th_db_drop(db);
	owner_drop(role);
	free(db);
	free(dir);
}

Test(engine, cancel_stops_between_migrations)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	atomic_int cancel = 1;
	fl_apply_opts o = base_opts(dir);
	o.cancel = &cancel;
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EINTR);
	cr_assert(th_contains(msg, "interrupted"), "%s", msg);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "0", "SELECT count(*) FROM pg_namespace WHERE nspname = 'flotilla'");
	assert_q(c, "0", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, failed_no_transaction_file_can_be_fixed_and_rerun)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__fix_me.sql", "-- flotilla:no-transaction\nINSERT INTO nosuch VALUES (1);\n");
	fl_apply_opts o = base_opts(dir);
	char *msg = migrate_fail(db, dir, &o, NULL);
	assert_str(msg, DISPLAY "/V1__fix_me.sql:2:13: ERROR 42P01: relation \"nosuch\" does not exist");
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "1|false", "SELECT installed_rank || '|' || success FROM flyway_schema_history");
	/* fixed, and now transactional: the failed row is replaced in the same transaction */
	const char *fixed = "CREATE TABLE fixed (id int);\n";
	th_write(dir, "V1__fix_me.sql", fixed);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	char *h = history_dump(c, "public");
	char *want = fmt("1|1|fix me|SQL|V1__fix_me.sql|%d|postgres|t", crc_of(fixed));
	assert_str(h, want);
	free(h);
	free(want);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, large_file_in_one_pipeline_does_not_deadlock)
{
	/* 30,000 statements whose replies (a row each) far exceed the socket buffers both ways */
	char *db = th_db_new();
	char *dir = th_tmpdir();
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "CREATE TABLE big (n int, pad text);\n");
	for (int i = 1; i <= 30000; i++)
		fl_buf_printf(&b, "SELECT %d AS n, repeat('x', 40) AS pad;\n", i);
	fl_buf_puts(&b, "INSERT INTO big SELECT g, 'y' FROM generate_series(1, 3) g;\n");
	th_write(dir, "V1__big.sql", b.data);
	fl_buf_free(&b);
	fl_apply_opts o = base_opts(dir);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	PGconn *c = th_connect(db);
	assert_q(c, "3", "SELECT count(*) FROM big");
	assert_q(c, "1|true", "SELECT installed_rank || '|' || success FROM flyway_schema_history");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

/* ---- interrupted work: INVALID indexes, lock waits, kills, transaction control ---- */

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A session that ends its transaction after `ms` (the thread owns the connection meanwhile). */
struct release {
	PGconn *conn;
	int ms;
	pthread_t th;
};

static void *release_later(void *arg)
{
	struct release *r = arg;
	usleep((useconds_t)r->ms * 1000);
	PGresult *x = PQexec(r->conn, "COMMIT");
	PQclear(x);
	return NULL;
}

static void release_start(struct release *r, PGconn *c, int ms)
{
	r->conn = c;
	r->ms = ms;
	cr_assert_eq(pthread_create(&r->th, NULL, release_later, r), 0);
}

Test(engine, cic_cancelled_by_lock_timeout_is_rebuilt_valid_on_rerun)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__big.sql",
	         "CREATE TABLE big (id int, v text);\nINSERT INTO big SELECT g, g::text FROM "
	         "generate_series(1, 1000) g;\n");
	th_write(dir, "V2__index.sql", "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_v_idx ON big (v);\n");
	fl_apply_opts o = base_opts(dir);
	o.target = "1";
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	o.target = NULL;
	/* a writer's open transaction: the build waits for it after creating the (INVALID) index */
	PGconn *writer = th_connect(db);
	th_exec(writer, "BEGIN; INSERT INTO big VALUES (0, 'w')");
	o.lock_timeout_ms = 300;
	o.lock_retries = -1;
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EDB);
	cr_assert(th_contains(msg, DISPLAY "/V2__index.sql:1:1: ERROR 55P03: canceling statement due to lock "
	                                   "timeout; gave up after 1 attempt in "),
	          "%s", msg);
	cr_assert(th_contains(msg,
	                      "index big_v_idx is left INVALID (a build that failed is not rolled back): "
	                      "the next run drops it and builds it again"),
	          "%s", msg);
	free(msg);
	PGconn *c = th_connect(db);
	assert_q(c, "f", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass");
	assert_q(c, "1:true,2:false",
	         "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	         "flyway_schema_history WHERE type = 'SQL'");
	/* IF NOT EXISTS would skip the INVALID index: the rerun drops it and builds it again */
	th_exec(writer, "COMMIT");
	struct events ev = {0};
	o.on_event = record;
	o.event_ctx = &ev;
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	cr_assert(th_contains(ev.notices,
	                      "index big_v_idx is INVALID (an earlier CREATE INDEX CONCURRENTLY was "
	                      "interrupted): dropping it (DROP INDEX CONCURRENTLY) and building it "
	                      "again\n"),
	          "%s", ev.notices);
	assert_q(c, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass");
	assert_q(c, "1", "SELECT count(*) FROM pg_indexes WHERE tablename = 'big'");
	assert_q(c, "1:true,2:true",
	         "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	         "flyway_schema_history WHERE type = 'SQL'");
	assert_q(c, "1",
	         "SELECT count(*) FROM flotilla.execution WHERE script = 'V2__index.sql' AND success");
	char *v = validate(db, dir, &o);
	cr_assert_null(v, "%s", v);
	PQfinish(writer);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, cic_lock_timeout_is_retried_until_the_writer_is_gone)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__big.sql", "CREATE TABLE big (id int, v text);\n");
	th_write(dir, "V2__index.sql",
	         "-- flotilla:no-transaction\nINSERT INTO big VALUES (1, 'one');\nCREATE INDEX CONCURRENTLY "
	         "big_v_idx ON big (v);\n");
	fl_apply_opts o = base_opts(dir);
	o.target = "1";
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	o.target = NULL;
	PGconn *writer = th_connect(db);
	th_exec(writer, "BEGIN; INSERT INTO big VALUES (0, 'w')");
	struct release rel;
	release_start(&rel, writer, 1200);
	struct events ev = {0};
	o.on_event = record;
	o.event_ctx = &ev;
	o.lock_timeout_ms = 300;
	o.lock_retries = 8;
	o.lock_retry_interval_ms = 200;
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	pthread_join(rel.th, NULL);
	cr_assert_geq(ev.retries, 1);
	char *want = fmt("lock wait on table big (V2__index.sql:3:1), held by pid %d (application_name "
	                 "\"flotilla-test\", RowExclusiveLock, idle in transaction",
	                 PQbackendPID(writer));
	cr_assert(th_contains(ev.retry, want), "%s\n%s", ev.retry, want);
	free(want);
	cr_assert(th_contains(ev.retry, ": retry 1 of 8 in 0."), "%s", ev.retry);
	/* each failed attempt left an INVALID index, dropped before the next one */
	cr_assert(th_contains(ev.notices, "index big_v_idx is INVALID"), "%s", ev.notices);
	PGconn *c = th_connect(db);
	assert_q(c, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_v_idx'::regclass");
	assert_q(c, "0:w,1:one", "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM big");
	assert_q(
	    c, "2|2|true",
	    "SELECT statements_done || '|' || statements_total || '|' || success FROM flotilla.execution "
	    "WHERE script = 'V2__index.sql'");
	PQfinish(writer);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

/* Queries the table every 100 ms while the migration runs, and keeps the longest wait. */
struct probe {
	const char *db;
	atomic_int stop;
	long worst_ms;
	int n;
	pthread_t th;
};

static void *probe_run(void *arg)
{
	struct probe *p = arg;
	PGconn *c = th_connect(p->db);
	while (!atomic_load(&p->stop)) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		PGresult *r = PQexec(c, "SELECT count(*) FROM t");
		PQclear(r);
		long ms = elapsed_ms(&t0);
		if (ms > p->worst_ms)
			p->worst_ms = ms;
		p->n++;
		usleep(100000);
	}
	PQfinish(c);
	return NULL;
}

/* Table t made by V1, an ALTER of it pending in V2, and a reader holding ACCESS SHARE on it. */
static PGconn *reader_of_t(const char *db, const char *dir, fl_apply_opts *o)
{
	th_write(dir, "V1__t.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "V2__alter.sql", "ALTER TABLE t ADD COLUMN c int;\n");
	o->target = "1";
	cr_assert_eq(migrate_ok(db, dir, o), 1);
	o->target = NULL;
	PGconn *reader = th_connect(db);
	th_exec(reader, "BEGIN; SELECT * FROM t");
	return reader;
}

Test(engine, alter_behind_a_reader_retries_and_traffic_waits_one_attempt_at_most)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	fl_apply_opts o = base_opts(dir);
	PGconn *reader = reader_of_t(db, dir, &o);
	char *holder = fmt("held by pid %d (application_name \"flotilla-test\", AccessShareLock, idle in "
	                   "transaction, transaction started ",
	                   PQbackendPID(reader));
	struct release rel;
	release_start(&rel, reader, 2500);
	struct probe pr = {.db = db};
	cr_assert_eq(pthread_create(&pr.th, NULL, probe_run, &pr), 0);
	struct events ev = {0};
	o.on_event = record;
	o.event_ctx = &ev;
	o.lock_timeout_ms = 400;
	o.lock_retries = 10;
	o.lock_retry_interval_ms = 200;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	long took = elapsed_ms(&t0);
	atomic_store(&pr.stop, 1);
	pthread_join(pr.th, NULL);
	pthread_join(rel.th, NULL);
	cr_assert_geq(ev.retries, 2, "%d retries", ev.retries);
	cr_assert(th_contains(ev.retry, "lock wait on table t (V2__alter.sql:1:1), "), "%s", ev.retry);
	cr_assert(th_contains(ev.retry, holder), "%s\n%s", ev.retry, holder);
	cr_assert(th_contains(ev.retry, ": retry 1 of 10 in "), "%s", ev.retry);
	/* the probe queued behind the ALTER at most one attempt (400 ms) plus a margin */
	cr_assert_gt(pr.n, 5);
	cr_assert_lt(pr.worst_ms, 400 + 500, "a query on t waited %ld ms", pr.worst_ms);
	cr_log_info(
	    "reader held ACCESS SHARE for 2.5 s: migrated after %ld ms, %d retries; %d probe queries, "
	    "longest wait %ld ms",
	    took, ev.retries, pr.n, pr.worst_ms);
	PGconn *c = th_connect(db);
	assert_q(
	    c, "1",
	    "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'c'");
	PQfinish(c);
	free(holder);
	PQfinish(reader);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, alter_gives_up_after_the_retries_naming_the_holder)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	fl_apply_opts o = base_opts(dir);
	PGconn *reader = reader_of_t(db, dir, &o);
	o.lock_timeout_ms = 200;
	o.lock_retries = 2;
	o.lock_retry_interval_ms = 100;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	long took = elapsed_ms(&t0);
	cr_assert_eq(kind, FL_EDB);
	cr_assert(th_contains(msg, DISPLAY "/V2__alter.sql:1:1: ERROR 55P03: canceling statement due to lock "
	                                   "timeout; gave up after 3 attempts in "),
	          "%s", msg);
	char *holder =
	    fmt("(lock_timeout 200 ms each, lock_retries 2): lock wait on table t (V2__alter.sql:1:1), "
	        "held by pid %d (application_name \"flotilla-test\", AccessShareLock",
	        PQbackendPID(reader));
	cr_assert(th_contains(msg, holder), "%s\n%s", msg, holder);
	cr_assert(th_contains(msg, "; run it when the table is quiet, or raise lock_retries"), "%s", msg);
	/* 3 attempts of 200 ms and backoffs of about 100 and 200 ms (+25 % jitter at most) */
	cr_assert_lt(took, 600 + 375 + 1000, "took %ld ms", took);
	PGconn *c = th_connect(db);
	assert_q(c, "1:true",
	         "SELECT string_agg(version || ':' || success, ',') FROM flyway_schema_history WHERE type = "
	         "'SQL'");
	assert_q(
	    c, "0",
	    "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'c'");
	assert_q(c, "f", "SELECT success FROM flotilla.execution WHERE script = 'V2__alter.sql'");
	PQfinish(c);
	free(holder);
	free(msg);
	PQfinish(reader);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, migration_lock_has_its_own_bound_apart_from_lock_timeout)
{
	char *db = th_db_new();
	char *dir = standard_folder();
	PGconn *holder = th_connect(db);
	th_exec(holder, "BEGIN; SELECT pg_advisory_xact_lock(77433833903597)");
	struct release rel;
	release_start(&rel, holder, 1000);
	fl_apply_opts o = base_opts(dir);
	o.lock_timeout_ms = 100; /* short DDL waits do not cut the wait for another pipeline short */
	o.migration_lock_timeout_ms = 20000;
	o.lock_poll_ms = 50;
	cr_assert_eq(migrate_ok(db, dir, &o), 5);
	pthread_join(rel.th, NULL);
	PQfinish(holder);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, commit_inside_a_file_keeps_the_role_and_schema)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	/* as Flyway folders have them: a file that commits, and a START TRANSACTION ... COMMIT pair */
	th_write(dir, "V1__commits.sql",
	         "CREATE TABLE before_commit (id int);\nCOMMIT;\nCREATE TABLE after_commit (id int);\n"
	         "START TRANSACTION;\nCREATE TABLE in_pair (id int);\nCOMMIT;\nCREATE VIEW last_v AS SELECT "
	         "1 AS one;\n");
	th_write(dir, "V2__next.sql", "CREATE TABLE next_t (id int);\n");
	char role[64];
	owner_new(db, role, sizeof(role));
	PGconn *c = th_connect(db);
	migrate_as(db, dir, role, 2);
	char *expect =
	    fmt("app.after_commit:%s,app.before_commit:%s,app.in_pair:%s,app.last_v:%s,app.next_t:%s", role,
	        role, role, role, role);
	assert_q(
	    c, expect,
	    "SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relowner::regrole::text, ',' ORDER "
	    "BY "
	    "c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN "
	    "('before_commit', 'after_commit', 'in_pair', 'last_v', 'next_t')");
	free(expect);
	assert_q(c, "0", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	assert_q(c, "1:true,2:true",
	         "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	         "app.flyway_schema_history WHERE type = 'SQL'");
	PQfinish(c);
	th_db_drop(db);
	owner_drop(role);
	free(db);
	free(dir);
}

/* SHA-256 of a file's first k statements, as the ledger records them. */
static void statements_sha(const char *text, size_t k, char out[65])
{
	fl_stmt *st;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_sqlsplit(text, strlen(text), "x.sql", &st, &n, &err), 0);
	fl_sha256_ctx s;
	fl_sha256_init(&s);
	for (size_t i = 0; i < k && i < n; i++) {
		fl_sha256_update(&s, text + st[i].start, st[i].end - st[i].start);
		fl_sha256_update(&s, "\0", 1);
	}
	fl_sha256_final_hex(&s, out);
	free(st);
}

/*
 * The ledger as a run killed during statement `in_flight` of V2__steps.sql
 * (text v2, `total` statements) leaves it: `done` statements recorded, one
 * in flight, the run row unfinished, no history row.
 */
static void killed_in_flight(PGconn *c, const char *v2, int done, int total, int in_flight)
{
	char sha[65];
	statements_sha(v2, (size_t)done, sha);
	char *sql = fmt("INSERT INTO flotilla.run (run_uuid, command, service) VALUES (gen_random_uuid(), "
	                "'migrate', 'auth'); INSERT INTO flotilla.execution (run_id, history_table, script, "
	                "version, type, content_sha256, no_transaction, statements_done, statements_total, "
	                "prefix_sha256, in_flight) SELECT max(id), '\"public\".\"flyway_schema_history\"', "
	                "'V2__steps.sql', '2', 'SQL', 'x', true, %d, %d, '%s', %d FROM flotilla.run",
	                done, total, sha, in_flight);
	th_exec(c, sql);
	free(sql);
}

Test(engine, in_flight_statement_that_cannot_be_checked_stops_with_instructions)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (n int PRIMARY KEY);\n");
	const char *v2 = "-- flotilla:no-transaction\nINSERT INTO a VALUES (1);\nDISCARD ALL;\n";
	th_write(dir, "V2__steps.sql", v2);
	fl_apply_opts o = base_opts(dir);
	o.target = "1";
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	o.target = NULL;
	/* what a run killed during statement 2 leaves: statement 1 done with its row, 2 in flight, no history
	 * row */
	PGconn *c = th_connect(db);
	char sha2[65];
	statements_sha(v2, 2, sha2);
	th_exec(c, "INSERT INTO a VALUES (1)");
	killed_in_flight(c, v2, 1, 2, 2);
	char *id = th_query1(c, "SELECT max(id) FROM flotilla.execution");
	fl_error_kind kind;
	char *msg = migrate_fail(db, dir, &o, &kind);
	cr_assert_eq(kind, FL_EDB);
	char *want =
	    fmt(DISPLAY "/V2__steps.sql:3:1: statement 2 of 2 was running outside a transaction when an "
	                "earlier run stopped (started ");
	cr_assert(th_contains(msg, want), "%s\n%s", msg, want);
	free(want);
	want = fmt(
	    "and flotilla cannot tell whether it finished; check by hand, then either mark it done: UPDATE "
	    "flotilla.execution SET statements_done = 2, prefix_sha256 = '%s', in_flight = NULL WHERE id = "
	    "%s; "
	    "or have it run again: UPDATE flotilla.execution SET in_flight = NULL WHERE id = %s; and run "
	    "'flotilla migrate auth'",
	    sha2, id, id);
	cr_assert(th_contains(msg, want), "%s\n%s", msg, want);
	free(want);
	free(msg);
	/* nothing ran: statement 1 is still there once, no new ledger row, no history row */
	assert_q(c, "1", "SELECT count(*) FROM a");
	assert_q(c, "1", "SELECT count(*) FROM flotilla.execution WHERE script = 'V2__steps.sql'");
	/* marked done as the message says: the file completes without running either statement again */
	char *sql = fmt(
	    "UPDATE flotilla.execution SET statements_done = 2, prefix_sha256 = '%s', in_flight = NULL WHERE "
	    "id = %s",
	    sha2, id);
	th_exec(c, sql);
	free(sql);
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	assert_q(c, "1", "SELECT count(*) FROM a");
	assert_q(c, "1:true,2:true",
	         "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) FROM "
	         "flyway_schema_history WHERE type = 'SQL'");
	/* the run row the "killed" run left is abandoned by the next run */
	assert_q(c, "abandoned", "SELECT outcome FROM flotilla.run ORDER BY id LIMIT 1 OFFSET 1");
	free(id);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(engine, in_flight_index_build_that_finished_is_counted_done_not_run_again)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (n int PRIMARY KEY);\n");
	/* no IF NOT EXISTS: running it a second time would fail */
	const char *v2 =
	    "-- flotilla:no-transaction\nINSERT INTO a VALUES (1);\nCREATE INDEX CONCURRENTLY a_n_idx ON a "
	    "(n);\nINSERT INTO a VALUES (3);\n";
	th_write(dir, "V2__steps.sql", v2);
	fl_apply_opts o = base_opts(dir);
	o.target = "1";
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	o.target = NULL;
	/* killed after the build finished, before the ledger heard of it */
	PGconn *c = th_connect(db);
	th_exec(c, "INSERT INTO a VALUES (1); CREATE INDEX a_n_idx ON a (n)");
	killed_in_flight(c, v2, 1, 3, 2);
	struct events ev = {0};
	o.on_event = record;
	o.event_ctx = &ev;
	cr_assert_eq(migrate_ok(db, dir, &o), 1);
	cr_assert(th_contains(ev.notices,
	                      "statement 2 of 3 (" DISPLAY "/V2__steps.sql:3:1) was running when an "
	                      "earlier run stopped; index a_n_idx exists and is valid: it is done\n"),
	          "%s", ev.notices);
	assert_q(c, "1,3", "SELECT string_agg(n::text, ',' ORDER BY n) FROM a");
	assert_q(
	    c, "3|3|true|2",
	    "SELECT statements_done || '|' || statements_total || '|' || success || '|' || resumed_from FROM "
	    "flotilla.execution WHERE script = 'V2__steps.sql' ORDER BY id DESC LIMIT 1");
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}
