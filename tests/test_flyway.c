/*
 * Taking over from Flyway: a schema with objects but no history, baseline
 * on migrate, B files (SQL_BASELINE), a history Flyway wrote (in a table
 * named schema_version), repair of deleted files, suffixes, locations and
 * SQL callbacks, each against the real test server with rows and catalogs
 * checked exactly.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "apply.h"
#include "harness.h"
#include "history.h"
#include "pg.h"
#include "source.h"

#define DISPLAY "services/auth/migrations"

static fl_migration_set *load_set_with(const char *dir, const fl_migration_naming *nm)
{
	fl_file *files;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_source_dir(dir, DISPLAY, &files, &n, &err), 0, "%s", err ? err->msg : "");
	fl_migration_set *set = fl_migration_set_new_with(files, n, nm, &err);
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

static fl_apply_opts base_opts(void)
{
	fl_apply_opts o = {
	    .service = "auth", .display_dir = DISPLAY, .lock_timeout_ms = 5000, .git_dirty = -1};
	return o;
}

static int32_t crc_of(const char *text)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	for (const char *p = text; *p; p++)
		if (*p != '\r' && *p != '\n')
			crc = crc32(crc, (const Bytef *)p, 1);
	return (int32_t)(uint32_t)crc;
}

static char *history_of(PGconn *c, const char *table)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT concat_ws('|', installed_rank, coalesce(version, 'NULL'), description, type, "
	         "script, coalesce(checksum::text, 'NULL'), success) FROM public.\"%s\" ORDER BY "
	         "installed_rank",
	         table);
	return th_queryall(c, sql, "\n");
}

static void assert_str(const char *got, const char *expect)
{
	cr_assert(got && strcmp(got, expect) == 0, "\nexpected:\n%s\ngot:\n%s", expect, got ? got : "(null)");
}

static char *tables(PGconn *c)
{
	return th_queryall(c,
	                   "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE "
	                   "schemaname = 'public'",
	                   ",");
}

/* migrate with the naming nm; returns rc, the result in *res and the error (formatted) in *msg */
static int migrate(const char *db, const char *dir, const fl_migration_naming *nm, const fl_apply_opts *o,
                   fl_apply_result *res, char **msg, fl_error_kind *kind)
{
	fl_migration_set *set = load_set_with(dir, nm);
	fl_pg *pg = pg_open(db);
	fl_error *err = NULL;
	int rc = fl_apply_migrate(pg, set, o, res, &err);
	*msg = err ? fl_error_format(err) : NULL;
	if (kind)
		*kind = err ? err->kind : 0;
	fl_error_free(err);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	return rc;
}

/* Standalone validate errors joined by newlines; NULL when clean. pending_ok: leave out pending ones. */
static char *validate(const char *db, const char *dir, const fl_apply_opts *o, bool standalone)
{
	fl_migration_set *set = load_set_with(dir, NULL);
	fl_pg *pg = pg_open(db);
	fl_history *h;
	fl_plan *plan;
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_info(pg, set, o, &h, &plan, &err), 0, "%s", err ? err->msg : "");
	fl_error *v = fl_plan_validate(plan, standalone);
	char *out = NULL;
	if (v) {
		fl_buf b;
		fl_buf_init(&b);
		for (fl_error *e = v; e; e = e->next) {
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

Test(flyway, non_empty_schema_without_history_is_refused_and_nothing_runs)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	PGconn *c = th_connect(db);
	th_exec(c, "CREATE TABLE legacy (id int)");
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	fl_error_kind kind;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, &kind), -1);
	cr_assert_eq(kind, FL_EDB);
	assert_str(msg, "found non-empty schema \"public\" but no schema history table "
	                "\"public\".\"flyway_schema_history\"; nothing was run. Mark the version the "
	                "database is at with 'flotilla baseline auth --version V', or set "
	                "baseline_on_migrate = true (and baseline_version) for the service in the manifest");
	free(msg);
	fl_apply_result_clear(&res);
	char *t = tables(c);
	assert_str(t, "legacy");
	free(t);
	/* nothing else either: no control schema, no run row */
	char *ns = th_query1(c, "SELECT count(*)::text FROM pg_namespace WHERE nspname = 'flotilla'");
	assert_str(ns, "0");
	free(ns);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, extension_objects_and_empty_schemas_do_not_count)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	PGconn *c = th_connect(db);
	th_exec(c, "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public");
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	cr_assert_eq(res.applied, 1);
	fl_apply_result_clear(&res);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, baseline_on_migrate_baselines_then_applies_above_it)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	PGconn *c = th_connect(db);
	th_exec(c, "CREATE TABLE a (id int); CREATE TABLE b (id int)");
	fl_apply_opts o = base_opts();
	o.baseline_on_migrate = true;
	o.baseline_version = "2";
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	cr_assert_eq(res.applied, 1);
	cr_assert_str_eq(res.version_after, "3");
	fl_apply_result_clear(&res);
	char *h = history_of(c, "flyway_schema_history");
	char *expect = fl_asprintf("1|2|<< Flyway Baseline >>|BASELINE|<< Flyway Baseline >>|NULL|t\n"
	                           "2|3|c|SQL|V3__c.sql|%d|t",
	                           crc_of("CREATE TABLE c (id int);\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	char *t = tables(c);
	assert_str(t, "a,b,c,flyway_schema_history");
	free(t);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, b_file_starts_an_empty_database_as_sql_baseline)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	const char *b2 = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "B2__base.sql", b2);
	th_write(dir, "B9__later.sql", "CREATE TABLE never (id int);\n");
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	fl_apply_opts o = base_opts();
	o.target = "3"; /* B9 is above the target: B2 is the start */
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	cr_assert_eq(res.applied, 2);
	fl_apply_result_clear(&res);
	PGconn *c = th_connect(db);
	char *h = history_of(c, "flyway_schema_history");
	char *expect = fl_asprintf("1|2|base|SQL_BASELINE|B2__base.sql|%d|t\n"
	                           "2|3|c|SQL|V3__c.sql|%d|t",
	                           crc_of(b2), crc_of("CREATE TABLE c (id int);\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	/* validate clean, undo below the baseline refused by the plan */
	o.target = "3";
	char *v = validate(db, dir, &o, true);
	cr_assert_null(v, "%s", v);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

/*
 * What a Flyway 9 run leaves: its history table (here named schema_version,
 * as Flyway 4 and many projects have it), a SQL_BASELINE row from a B file
 * and SQL rows above it. flotilla validates it clean and applies only the
 * new file.
 */
Test(flyway, history_flyway_wrote_in_schema_version_is_taken_over)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	const char *b2 = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
	const char *v3 = "CREATE TABLE c (id int);\n";
	const char *v4 = "CREATE TABLE d (id int);\n";
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "B2__base.sql", b2);
	th_write(dir, "V3__c.sql", v3);
	PGconn *c = th_connect(db);
	char *ddl = fl_history_create_sql("public", "schema_version", false, NULL);
	th_exec(c, ddl);
	free(ddl);
	th_exec(c, b2);
	th_exec(c, v3);
	char *rows = fl_asprintf(
	    "INSERT INTO public.schema_version (installed_rank, version, description, type, script, "
	    "checksum, installed_by, execution_time, success) VALUES "
	    "(1, '2', 'base', 'SQL_BASELINE', 'B2__base.sql', %d, 'postgres', 12, true), "
	    "(2, '3', 'c', 'SQL', 'V3__c.sql', %d, 'postgres', 5, true)",
	    crc_of(b2), crc_of(v3));
	th_exec(c, rows);
	free(rows);
	fl_apply_opts o = base_opts();
	o.table = "schema_version";
	char *v = validate(db, dir, &o, true);
	cr_assert_null(v, "%s", v);
	th_write(dir, "V4__d.sql", v4);
	v = validate(db, dir, &o, false);
	cr_assert_null(v, "%s", v);
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	cr_assert_eq(res.applied, 1);
	cr_assert_str_eq(res.items[0].script, "V4__d.sql");
	fl_apply_result_clear(&res);
	char *h = history_of(c, "schema_version");
	char *expect = fl_asprintf("1|2|base|SQL_BASELINE|B2__base.sql|%d|t\n"
	                           "2|3|c|SQL|V3__c.sql|%d|t\n"
	                           "3|4|d|SQL|V4__d.sql|%d|t",
	                           crc_of(b2), crc_of(v3), crc_of(v4));
	assert_str(h, expect);
	free(h);
	free(expect);
	v = validate(db, dir, &o, true);
	cr_assert_null(v, "%s", v);
	char *t = tables(c);
	assert_str(t, "a,b,c,d,schema_version");
	free(t);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, repair_realigns_a_b_file_checksum_and_keeps_the_baseline_type)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	const char *b2 = "CREATE TABLE a (id int);\n";
	th_write(dir, "B2__base.sql", b2);
	th_write(dir, "V3__c.sql", "CREATE TABLE c (id int);\n");
	PGconn *c = th_connect(db);
	char *ddl = fl_history_create_sql("public", "flyway_schema_history", false, NULL);
	th_exec(c, ddl);
	free(ddl);
	th_exec(c, "INSERT INTO flyway_schema_history (installed_rank, version, description, type, "
	           "script, checksum, installed_by, execution_time, success) VALUES "
	           "(1, '1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, "
	           "'postgres', 0, true), "
	           "(2, '2', 'base', 'SQL_BASELINE', 'B2__base.sql', 42, 'postgres', 12, true)");
	fl_apply_opts o = base_opts();
	char *v = validate(db, dir, &o, false);
	cr_assert(v && th_contains(v, "checksum mismatch for migration 2 (base)"), "%s", v);
	free(v);
	fl_migration_set *set = load_set_with(dir, NULL);
	fl_pg *pg = pg_open(db);
	fl_apply_result res = {0};
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_repair(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.nchanges, 1);
	char *want =
	    fl_asprintf("realigned the checksum of migration 2 (B2__base.sql): 42 -> %d", crc_of(b2));
	assert_str(res.changes[0], want);
	free(want);
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	char *h = history_of(c, "flyway_schema_history");
	char *expect = fl_asprintf("1|1|<< Flyway Baseline >>|BASELINE|<< Flyway Baseline >>|NULL|t\n"
	                           "2|2|base|SQL_BASELINE|B2__base.sql|%d|t",
	                           crc_of(b2));
	assert_str(h, expect);
	free(h);
	free(expect);
	v = validate(db, dir, &o, false);
	cr_assert_null(v, "%s", v);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, repair_marks_a_deleted_file_with_a_delete_row_and_validate_passes)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	fl_apply_result_clear(&res);
	char *path = fl_asprintf("%s/V1__a.sql", dir);
	cr_assert_eq(unlink(path), 0);
	free(path);
	char *v = validate(db, dir, &o, false);
	cr_assert(v && th_contains(v, "migration 1 (a) was applied") &&
	              th_contains(v, "run 'flotilla repair auth' to mark it deleted"),
	          "%s", v);
	free(v);
	fl_migration_set *set = load_set_with(dir, NULL);
	fl_pg *pg = pg_open(db);
	fl_error *err = NULL;
	cr_assert_eq(fl_apply_repair(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.nchanges, 1);
	assert_str(res.changes[0], "marked migration 1 (a) as deleted: its file V1__a.sql is gone");
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	PGconn *c = th_connect(db);
	char *h = history_of(c, "flyway_schema_history");
	int32_t a = crc_of("CREATE TABLE a (id int);\n"), b = crc_of("CREATE TABLE b (id int);\n");
	char *expect = fl_asprintf("1|1|a|SQL|V1__a.sql|%d|t\n2|2|b|SQL|V2__b.sql|%d|t\n"
	                           "3|1|a|DELETE|V1__a.sql|%d|t",
	                           a, b, a);
	assert_str(h, expect);
	free(h);
	free(expect);
	v = validate(db, dir, &o, true);
	cr_assert_null(v, "%s", v);
	/* and a second repair has nothing to do */
	set = load_set_with(dir, NULL);
	pg = pg_open(db);
	cr_assert_eq(fl_apply_repair(pg, set, &o, &res, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(res.nchanges, 0);
	fl_apply_result_clear(&res);
	fl_pg_close(pg);
	fl_migration_set_free(set);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

Test(flyway, postgresql_suffix_folder_migrates)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__init___POSTGRESQL.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__more___POSTGRESQL.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "V2__more___H2.sql", "this is not for PostgreSQL;\n");
	static const char *const sx[] = {"___POSTGRESQL.sql"};
	fl_migration_naming nm = {sx, 1};
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, &nm, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	cr_assert_eq(res.applied, 2);
	fl_apply_result_clear(&res);
	PGconn *c = th_connect(db);
	char *h = history_of(c, "flyway_schema_history");
	char *expect =
	    fl_asprintf("1|1|init|SQL|V1__init___POSTGRESQL.sql|%d|t\n"
	                "2|2|more|SQL|V2__more___POSTGRESQL.sql|%d|t",
	                crc_of("CREATE TABLE a (id int);\n"), crc_of("CREATE TABLE b (id int);\n"));
	assert_str(h, expect);
	free(h);
	free(expect);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

/* ---- through the manifest and the command line ---- */

static int run_cli(const char *dir, char **out, char **err, const char *const *argv)
{
	*out = *err = NULL;
	return th_run(dir, NULL, out, err, argv);
}

/* Drops the database and the owner role a fleet test made. */
static void fleet_cleanup(const char *db, const char *owner)
{
	th_db_drop(db);
	PGconn *c = th_connect("postgres");
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP OWNED BY \"%s\"; DROP ROLE IF EXISTS \"%s\"", owner, owner);
	PQclear(PQexec(c, sql));
	PQfinish(c);
}

#define FLEET_HEAD                                                                                           \
	"version = 1\nproject = \"t\"\n[environments.t]\nadmin = { user = \"postgres\" }\n"                  \
	"migrator = { user = \"postgres\" }\nservice_passwords = false\n"

Test(flyway, locations_table_schemas_and_suffixes_from_the_manifest, .timeout = 120)
{
	char *dir = th_tmpdir();
	char db[64], owner[64];
	snprintf(db, sizeof(db), "fw%d_a", (int)getpid());
	snprintf(owner, sizeof(owner), "fw%d_a_own", (int)getpid());
	char *text = fl_asprintf(FLEET_HEAD "[defaults]\ntable = \"schema_version\"\n"
	                                    "sql_migration_suffixes = [\".sql\", \"___POSTGRESQL.sql\"]\n"
	                                    "[services.a]\ndatabase = \"%s\"\nowner = \"%s\"\n"
	                                    "locations = [\"filesystem:db/common\", \"db/postgres\"]\n"
	                                    "schemas = [\"app\", \"audit\"]\n",
	                         db, owner);
	th_write(dir, "flotilla.toml", text);
	free(text);
	th_write(dir, "db/common/V1__t.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "db/postgres/V2__u___POSTGRESQL.sql", "CREATE TABLE u (id int);\n");
	th_write(dir, "db/postgres/V3_oops.txt", "not a migration\n");
	th_write(dir, "db/postgres/X4__nope.sql", "SELECT 1;\n");
	char *out, *err;
	int rc = run_cli(dir, &out, &err,
	                 (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(err, "warning: db/postgres/X4__nope.sql: not run: it looks like a migration"),
	          "%s", err);
	free(out);
	free(err);
	PGconn *c = th_connect(db);
	char *h = th_queryall(c,
	                      "SELECT version || ':' || script FROM app.schema_version WHERE version IS NOT "
	                      "NULL ORDER BY installed_rank",
	                      ",");
	assert_str(h, "1:V1__t.sql,2:V2__u___POSTGRESQL.sql");
	free(h);
	char *t = th_queryall(c,
	                      "SELECT n.nspname || '.' || c.relname || ':' || pg_get_userbyid(c.relowner) "
	                      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	                      "c.relname IN ('t', 'u') ORDER BY 1",
	                      ",");
	char *want = fl_asprintf("app.t:%s,app.u:%s", owner, owner);
	assert_str(t, want);
	free(t);
	free(want);
	char *audit =
	    th_query1(c, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'audit'");
	assert_str(audit, owner);
	free(audit);
	PQfinish(c);
	/* one version in both locations: refused before anything runs, naming both files */
	th_write(dir, "db/postgres/V1__again.sql", "CREATE TABLE again (id int);\n");
	rc = run_cli(dir, &out, &err,
	             (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	cr_assert(th_contains(err, "db/common/V1__t.sql: db/postgres/V1__again.sql and "
	                           "db/common/V1__t.sql have the same version 1 (two locations of one "
	                           "service hold it; keep one)"),
	          "%s", err);
	free(out);
	free(err);
	fleet_cleanup(db, owner);
	free(dir);
}

Test(flyway, manifest_refuses_migrations_with_locations_and_classpath)
{
	char *dir = th_tmpdir();
	th_write(dir, "db/a/V1__t.sql", "SELECT 1;\n");
	th_write(dir, "flotilla.toml",
	         FLEET_HEAD "[services.a]\ndatabase = \"a\"\nowner = \"a_own\"\nmigrations = \"db/a\"\n"
	                    "locations = [\"db/a\"]\n"
	                    "[services.b]\ndatabase = \"b\"\nowner = \"b_own\"\n"
	                    "locations = [\"classpath:db/migration\"]\nbaseline_version = \"x1\"\n"
	                    "out_of_order = \"yes\"\n");
	char *out, *err;
	int rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "manifest", "check", NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	cr_assert(th_contains(err, "flotilla.toml:11:13: [services.a] sets both \"migrations\" and "
	                           "\"locations\"; \"locations\" is a list whose first entry is "
	                           "\"migrations\": keep one"),
	          "%s", err);
	cr_assert(th_contains(err, "flotilla.toml:15:14: location \"classpath:db/migration\" is on the Java "
	                           "classpath; give its folder instead (for Maven and Gradle projects "
	                           "src/main/resources/db/migration)"),
	          "%s", err);
	cr_assert(th_contains(err, "flotilla.toml:16:20: \"baseline_version\" \"x1\" is not a version"), "%s",
	          err);
	cr_assert(th_contains(err, "flotilla.toml:17:16: \"out_of_order\" must be a boolean, not a string"),
	          "%s", err);
	free(out);
	free(err);
	free(dir);
}

/*
 * The day a team switches: a database Flyway built (B file, SQL_BASELINE
 * row, history table schema_version) is taken over through the command
 * line: validate clean, migrate applies only the new file, drift clean;
 * and a hand-made database without history is refused with exit 1.
 */
Test(flyway, cli_takes_over_a_flyway_database_and_refuses_a_hand_made_one, .timeout = 180)
{
	char *dir = th_tmpdir();
	char db[64], owner[64], db2[64], owner2[64];
	snprintf(db, sizeof(db), "fw%d_o", (int)getpid());
	snprintf(owner, sizeof(owner), "fw%d_o_own", (int)getpid());
	snprintf(db2, sizeof(db2), "fw%d_h", (int)getpid());
	snprintf(owner2, sizeof(owner2), "fw%d_h_own", (int)getpid());
	char *text = fl_asprintf(FLEET_HEAD "[defaults]\ntable = \"schema_version\"\n"
	                                    "[services.o]\ndatabase = \"%s\"\nowner = \"%s\"\n"
	                                    "migrations = \"db/o\"\n"
	                                    "[services.h]\ndatabase = \"%s\"\nowner = \"%s\"\n"
	                                    "migrations = \"db/h\"\n",
	                         db, owner, db2, owner2);
	th_write(dir, "flotilla.toml", text);
	free(text);
	const char *b2 = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
	const char *v3 = "CREATE TABLE c (id int);\n";
	th_write(dir, "db/o/V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "db/o/V2__b.sql", "CREATE TABLE b (id int);\n");
	th_write(dir, "db/o/B2__base.sql", b2);
	th_write(dir, "db/o/V3__c.sql", v3);
	th_write(dir, "db/h/V1__a.sql", "CREATE TABLE a (id int);\n");
	char *out, *err;
	int rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "-e", "t", "provision", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	/* what Flyway left, as the owner (Flyway ran as the service's user) */
	PGconn *c = th_connect(db);
	char *sql = fl_asprintf("SET ROLE \"%s\"", owner);
	th_exec(c, sql);
	free(sql);
	char *ddl = fl_history_create_sql("public", "schema_version", false, NULL);
	th_exec(c, ddl);
	free(ddl);
	th_exec(c, b2);
	th_exec(c, v3);
	char *rows = fl_asprintf(
	    "INSERT INTO public.schema_version (installed_rank, version, description, type, script, "
	    "checksum, installed_by, execution_time, success) VALUES "
	    "(1, '2', 'base', 'SQL_BASELINE', 'B2__base.sql', %d, 'flyway', 12, true), "
	    "(2, '3', 'c', 'SQL', 'V3__c.sql', %d, 'flyway', 5, true)",
	    crc_of(b2), crc_of(v3));
	th_exec(c, rows);
	free(rows);
	th_exec(c, "RESET ROLE");
	PGconn *c2 = th_connect(db2);
	sql = fl_asprintf("SET ROLE \"%s\"; CREATE TABLE a (id int); RESET ROLE", owner2);
	th_exec(c2, sql);
	free(sql);
	rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "-e", "t", "validate", "o", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	th_write(dir, "db/o/V4__d.sql", "CREATE TABLE d (id int);\n");
	rc = run_cli(dir, &out, &err,
	             (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", "o", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	char *h =
	    th_queryall(c, "SELECT version || ':' || type FROM schema_version ORDER BY installed_rank", ",");
	assert_str(h, "2:SQL_BASELINE,3:SQL,4:SQL");
	free(h);
	rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "-e", "t", "validate", "o", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "-e", "t", "drift", "o", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	/* the hand-made one: exit 1, nothing run, the hint */
	rc = run_cli(dir, &out, &err,
	             (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", "h", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	cr_assert(th_contains(out, "flotilla baseline h --version V") ||
	              th_contains(err, "flotilla baseline h --version V"),
	          "%s\n%s", out, err);
	free(out);
	free(err);
	char *n = th_query1(c2, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'schema_version'");
	assert_str(n, "0");
	free(n);
	/* with baseline_on_migrate it baselines and continues */
	text = fl_asprintf(FLEET_HEAD "[defaults]\ntable = \"schema_version\"\n"
	                              "[services.h]\ndatabase = \"%s\"\nowner = \"%s\"\n"
	                              "migrations = \"db/h\"\nbaseline_on_migrate = true\n",
	                   db2, owner2);
	th_write(dir, "flotilla.toml", text);
	free(text);
	th_write(dir, "db/h/V2__b.sql", "CREATE TABLE b (id int);\n");
	rc = run_cli(dir, &out, &err,
	             (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	h = th_queryall(c2, "SELECT version || ':' || type FROM schema_version ORDER BY installed_rank", ",");
	assert_str(h, "1:BASELINE,2:SQL");
	free(h);
	PQfinish(c);
	PQfinish(c2);
	fleet_cleanup(db, owner);
	fleet_cleanup(db2, owner2);
	free(dir);
}

/* afterMigrate grants to a reader role, as the callbacks of Flyway folders do; shown in progress and JSON. */
Test(flyway, sql_callbacks_run_in_the_role_and_schema_and_grant, .timeout = 120)
{
	char *dir = th_tmpdir();
	char db[64], owner[64], reader[64];
	snprintf(db, sizeof(db), "fw%d_c", (int)getpid());
	snprintf(owner, sizeof(owner), "fw%d_c_own", (int)getpid());
	snprintf(reader, sizeof(reader), "fw%d_reader", (int)getpid());
	PGconn *pc = th_connect("postgres");
	char *sql = fl_asprintf("CREATE ROLE \"%s\" NOLOGIN", reader);
	th_exec(pc, sql);
	free(sql);
	char *text = fl_asprintf(FLEET_HEAD "[services.c]\ndatabase = \"%s\"\nowner = \"%s\"\n"
	                                    "migrations = \"db/c\"\nschema = \"app\"\n"
	                                    "placeholders = { reader = \"%s\" }\n",
	                         db, owner, reader);
	th_write(dir, "flotilla.toml", text);
	free(text);
	th_write(dir, "db/c/V1__t.sql", "CREATE TABLE t (id int);\n");
	th_write(dir, "db/c/V2__u.sql", "CREATE TABLE u (id int);\n");
	th_write(dir, "db/c/afterMigrate__grants.sql",
	         "GRANT USAGE ON SCHEMA app TO \"${reader}\";\n"
	         "GRANT SELECT ON ALL TABLES IN SCHEMA app TO \"${reader}\";\n");
	th_write(dir, "db/c/beforeEachMigrate.sql",
	         "CREATE TABLE IF NOT EXISTS seen (n int);\nINSERT INTO seen VALUES (1);\n");
	th_write(dir, "db/c/afterMigrat.sql", "SELECT 1;\n");
	char *out, *err;
	int rc =
	    run_cli(dir, &out, &err, (const char *const[]){"flotilla", "-e", "t", "migrate", "--json", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "\"event\": \"afterMigrate\"") &&
	              th_contains(out, "\"script\": \"afterMigrate__grants.sql\""),
	          "%s", out);
	cr_assert(th_contains(out, "afterMigrat.sql: not run: it looks like an SQL callback"), "%s", out);
	free(out);
	free(err);
	PGconn *c = th_connect(db);
	char *g =
	    th_queryall(c,
	                "SELECT table_name || ':' || privilege_type FROM "
	                "information_schema.role_table_grants WHERE grantee LIKE 'fw%_reader' ORDER BY 1",
	                ",");
	assert_str(g, "flyway_schema_history:SELECT,seen:SELECT,t:SELECT,u:SELECT");
	free(g);
	/* beforeEachMigrate ran twice, in the schema, as the owner */
	sql = fl_asprintf("SELECT count(*)::text || ':' || pg_get_userbyid(c.relowner) FROM app.seen, "
	                  "pg_class c WHERE c.oid = 'app.seen'::regclass GROUP BY c.relowner");
	char *seen = th_query1(c, sql);
	free(sql);
	char *want = fl_asprintf("2:%s", owner);
	assert_str(seen, want);
	free(seen);
	free(want);
	/* nothing pending: afterMigrate runs again, as Flyway's does; the progress says so */
	rc = run_cli(dir, &out, &err,
	             (const char *const[]){"flotilla", "-e", "t", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "callback afterMigrate__grants.sql ran") ||
	              th_contains(err, "callback afterMigrate__grants.sql ran"),
	          "%s\n%s", out, err);
	free(out);
	free(err);
	PQfinish(c);
	fleet_cleanup(db, owner);
	sql = fl_asprintf("DROP ROLE IF EXISTS \"%s\"", reader);
	th_exec(pc, sql);
	free(sql);
	PQfinish(pc);
	free(dir);
}

/* init --from-flyway: a flyway.conf and a flyway.toml become a manifest that checks and migrates. */
Test(flyway, init_from_flyway_round_trip, .timeout = 180)
{
	char *dir = th_tmpdir();
	char db1[64], db2[64];
	int pid = (int)getpid();
	snprintf(db1, sizeof(db1), "fwi%d_auth", pid);
	snprintf(db2, sizeof(db2), "fwi%d_user", pid);
	char *conf = fl_asprintf("# the auth service\n"
	                         "flyway.url=jdbc:postgresql:%s\n"
	                         "flyway.user=postgres\n"
	                         "flyway.password=${FWI_PASSWORD}\n"
	                         "flyway.locations=filesystem:sql/common,\\\n"
	                         "    filesystem:sql/postgres\n"
	                         "flyway.table=schema_version\n"
	                         "flyway.placeholders.tenant=pcc\n"
	                         "flyway.cleanDisabled=false\n",
	                         db1);
	th_write(dir, "src/fwi1-api/flyway.conf", conf);
	free(conf);
	char *toml = fl_asprintf("[environments.default]\nurl = \"jdbc:postgresql:%s\"\nuser = \"postgres\"\n"
	                         "password = \"${env.FWI_PASSWORD}\"\nschemas = [\"app\", \"audit\"]\n\n"
	                         "[flyway]\nlocations = [\"filesystem:db\"]\n"
	                         "sqlMigrationSuffixes = [\"___POSTGRESQL.sql\"]\n"
	                         "mixed = true\n",
	                         db2);
	th_write(dir, "src/fwi2-api/flyway.toml", toml);
	free(toml);
	th_write(dir, "src/fwi1-api/sql/common/V1__t.sql",
	         "CREATE TABLE t (tenant text DEFAULT '${tenant}');\n");
	th_write(dir, "src/fwi1-api/sql/postgres/V2__u.sql", "CREATE TABLE u (id int);\n");
	th_write(dir, "src/fwi2-api/db/V1__a___POSTGRESQL.sql", "CREATE TABLE a (id int);\n");
	char *out, *err;
	int rc = run_cli(dir, &out, &err,
	                 (const char *const[]){"flotilla", "init", "--from-flyway",
	                                       "src/fwi1-api/flyway.conf", "src/fwi2-api/flyway.toml", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(err, "not translated: src/fwi1-api/flyway.conf:9: flyway.cleanDisabled = false "
	                           "has no counterpart in flotilla; left out"),
	          "%s", err);
	cr_assert(th_contains(err, "not translated: src/fwi2-api/flyway.toml:10: flyway.mixed = true"), "%s",
	          err);
	free(out);
	free(err);
	char *mpath = fl_asprintf("%s/flotilla.toml", dir);
	char *m = th_read(mpath);
	free(mpath);
	cr_assert(th_contains(m, "migrator = { user = \"postgres\", password = { env = \"FWI_PASSWORD\" } }"),
	          "%s", m);
	cr_assert(th_contains(m, "[services.fwi1]\n"), "%s", m);
	cr_assert(th_contains(m, "locations = [\"src/fwi1-api/sql/common\", \"src/fwi1-api/sql/postgres\"]"),
	          "%s", m);
	cr_assert(th_contains(m, "schemas = [\"app\", \"audit\"]"), "%s", m);
	free(m);
	/* a second init does not overwrite it */
	rc = run_cli(
	    dir, &out, &err,
	    (const char *const[]){"flotilla", "init", "--from-flyway", "src/fwi1-api/flyway.conf", NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	cr_assert(th_contains(err, "flotilla.toml: exists already"), "%s", err);
	free(out);
	free(err);
	rc = run_cli(dir, &out, &err, (const char *const[]){"flotilla", "manifest", "check", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	const char *env[] = {"FWI_PASSWORD=unused-by-trust", NULL};
	out = err = NULL;
	rc = th_run(dir, env, &out, &err,
	            (const char *const[]){"flotilla", "-e", "default", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	PGconn *c = th_connect(db1);
	char *h = th_queryall(
	    c, "SELECT script FROM public.schema_version WHERE version IS NOT NULL ORDER BY 1", ",");
	assert_str(h, "V1__t.sql,V2__u.sql");
	free(h);
	char *d =
	    th_query1(c, "SELECT column_default FROM information_schema.columns WHERE table_name = 't'");
	assert_str(d, "'pcc'::text");
	free(d);
	PQfinish(c);
	c = th_connect(db2);
	h = th_queryall(c, "SELECT script FROM app.flyway_schema_history WHERE version IS NOT NULL", ",");
	assert_str(h, "V1__a___POSTGRESQL.sql");
	free(h);
	PQfinish(c);
	fleet_cleanup(db1, "fwi1_api_user");
	fleet_cleanup(db2, "fwi2_api_user");
	free(dir);
}

/* The platform's seven services, one flyway.conf each as src/<service>-api keeps it: init, then migrate. */
Test(flyway, init_from_the_seven_services_flyway_configs_migrates_the_fleet, .timeout = 300)
{
	static const char *const svcs[] = {"auth",           "client",       "user",        "metric_builder",
	                                   "metric_tracker", "task_builder", "task_tracker"};
	char *dir = th_tmpdir();
	int pid = (int)getpid();
	const char *argv[16] = {"flotilla", "init", "--from-flyway"};
	char *paths[7];
	for (int i = 0; i < 7; i++) {
		char *conf = fl_asprintf("flyway.url=jdbc:postgresql:fw7%d_%s\nflyway.user=postgres\n"
		                         "flyway.password=${FW7_PASSWORD}\n"
		                         "flyway.locations=filesystem:%s/services/%s/migrations\n",
		                         pid, svcs[i], th_top(), svcs[i]);
		/* named after the run: roles are cluster-wide and other tests make auth_api_user */
		paths[i] = fl_asprintf("src/fw7%d_%s-api/flyway.conf", pid, svcs[i]);
		th_write(dir, paths[i], conf);
		free(conf);
		argv[3 + i] = paths[i];
	}
	argv[10] = NULL;
	char *out, *err;
	int rc = run_cli(dir, &out, &err, argv);
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	const char *env[] = {"FW7_PASSWORD=unused-by-trust", NULL};
	out = err = NULL;
	rc = th_run(dir, env, &out, &err,
	            (const char *const[]){"flotilla", "-e", "default", "migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	out = err = NULL;
	rc = th_run(dir, env, &out, &err,
	            (const char *const[]){"flotilla", "-e", "default", "validate", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	for (int i = 0; i < 7; i++) {
		char db[64];
		snprintf(db, sizeof(db), "fw7%d_%s", pid, svcs[i]);
		PGconn *c = th_connect(db);
		char *n =
		    th_query1(c, "SELECT (count(*) > 0)::text FROM flyway_schema_history WHERE success");
		assert_str(n, "true");
		free(n);
		PQfinish(c);
		th_db_drop(db);
		free(paths[i]);
	}
	PGconn *c = th_connect("postgres");
	for (int i = 0; i < 7; i++) {
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "DROP OWNED BY \"fw7%d_%s_api_user\"; DROP ROLE IF EXISTS \"fw7%d_%s_api_user\"",
		         pid, svcs[i], pid, svcs[i]);
		PQclear(PQexec(c, sql));
	}
	PQfinish(c);
	free(dir);
}

/* afterEachMigrateError and afterMigrateError run after a failure; the migration's error is what is reported.
 */
Test(flyway, error_callbacks_run_after_a_failed_migration)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
	th_write(dir, "V2__bad.sql", "SELECT * FROM nowhere;\n");
	th_write(dir, "beforeMigrate.sql", "CREATE TABLE IF NOT EXISTS log (what text);\n");
	th_write(dir, "afterEachMigrateError.sql", "INSERT INTO log VALUES ('each');\n");
	th_write(dir, "afterMigrateError__note.sql", "INSERT INTO log VALUES ('migrate');\n");
	th_write(dir, "afterMigrate.sql", "INSERT INTO log VALUES ('never');\n");
	th_write(dir, "afterVersioned.sql", "INSERT INTO log VALUES ('never either');\n");
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	fl_error_kind kind;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, &kind), -1);
	cr_assert_eq(kind, FL_EDB);
	cr_assert(th_contains(msg, "services/auth/migrations/V2__bad.sql:1:15: ERROR 42P01"), "%s", msg);
	cr_assert_eq(res.ncallbacks, 3);
	assert_str(res.callbacks[0].event, "beforeMigrate");
	assert_str(res.callbacks[1].event, "afterEachMigrateError");
	assert_str(res.callbacks[2].script, "afterMigrateError__note.sql");
	fl_apply_result_clear(&res);
	free(msg);
	PGconn *c = th_connect(db);
	char *l = th_queryall(c, "SELECT what FROM log ORDER BY what", ",");
	assert_str(l, "each,migrate");
	free(l);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}

/* afterVersioned after the versioned migrations, beforeRepeatables before the first repeatable. */
Test(flyway, versioned_and_repeatable_callbacks_in_flyway_order)
{
	char *db = th_db_new();
	char *dir = th_tmpdir();
	th_write(dir, "V1__a.sql", "CREATE TABLE log (n serial, what text);\n");
	th_write(dir, "R__v.sql", "INSERT INTO log (what) VALUES ('repeatable');\n");
	th_write(dir, "afterVersioned.sql", "INSERT INTO log (what) VALUES ('afterVersioned');\n");
	th_write(dir, "beforeRepeatables.sql", "INSERT INTO log (what) VALUES ('beforeRepeatables');\n");
	th_write(dir, "afterMigrateApplied.sql", "INSERT INTO log (what) VALUES ('applied');\n");
	fl_apply_opts o = base_opts();
	fl_apply_result res = {0};
	char *msg;
	cr_assert_eq(migrate(db, dir, NULL, &o, &res, &msg, NULL), 0, "%s", msg ? msg : "");
	fl_apply_result_clear(&res);
	PGconn *c = th_connect(db);
	char *l = th_queryall(c, "SELECT what FROM log ORDER BY n", ",");
	assert_str(l, "afterVersioned,beforeRepeatables,repeatable,applied");
	free(l);
	PQfinish(c);
	th_db_drop(db);
	free(db);
	free(dir);
}
