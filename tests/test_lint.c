/*
 * flotilla lint: every rule on a file that triggers it and one that does not
 * (suite lint_rules, through core/lint directly, each finding as
 * "line:col rule"), suppressions, placeholders, versions (lint_core), and the
 * command (lint_cli): exit codes, formats (github line by line, SARIF
 * against the 2.1.0 schema shipped in tests/sarif/), [lint] in the manifest,
 * cross-service readers, --since, diff --since, the services' own files.
 * No database.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lint.h"
#include "migration.h"

struct opts {
	int pg;
	const char *reader; /* one service that reads the database, or NULL */
	const fl_placeholder *ph;
	size_t nph;
};

/* Lints `sql` as V2__t.sql of service "svc" (database "svc_db"). Returns "line:col rule|...";
 * *msgs (if given) gets the messages, one per line. */
static char *lint_with(const char *sql, const struct opts *o, char **msgs)
{
	fl_lint_target t;
	memset(&t, 0, sizeof(t));
	t.service = "svc";
	t.database = "svc_db";
	char *readers[1] = {(char *)o->reader};
	t.readers = readers;
	t.nreaders = o->reader ? 1 : 0;
	t.ph = (fl_placeholder *)o->ph;
	t.nph = o->nph;
	t.pg_version = o->pg ? o->pg : 15;
	t.lock_timeout_ms = 10000;
	size_t n;
	const fl_lint_rule *rules = fl_lint_rules(&n);
	for (size_t i = 0; i < n; i++)
		t.levels[i] = rules[i].level;
	fl_file f = {.name = fl_strdup("V2__t.sql"),
	             .path = fl_strdup("m/V2__t.sql"),
	             .data = fl_strdup(sql),
	             .len = strlen(sql)};
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(&f, 1, &err);
	cr_assert_not_null(set, "%s", err ? err->msg : "?");
	fl_lint_job job = {.target = &t, .mig = &set->items[0]};
	fl_lint_report rep;
	memset(&rep, 0, sizeof(rep));
	cr_assert_eq(fl_lint_run(&job, 1, 1, &rep, &err), 0, "%s", err ? err->msg : "?");
	fl_buf b, m;
	fl_buf_init(&b);
	fl_buf_init(&m);
	for (size_t i = 0; i < rep.n; i++) {
		cr_assert_str_eq(rep.items[i].file, "m/V2__t.sql");
		fl_buf_printf(&b, "%s%d:%d %s", i ? "|" : "", rep.items[i].line, rep.items[i].col,
		              rep.items[i].rule->name);
		fl_buf_printf(&m, "%s\n", rep.items[i].message);
	}
	fl_lint_report_clear(&rep);
	fl_migration_set_free(set);
	if (msgs)
		*msgs = fl_buf_detach(&m);
	fl_buf_free(&m);
	return fl_buf_detach(&b);
}

static char *lint(const char *sql)
{
	struct opts o = {0};
	return lint_with(sql, &o, NULL);
}

#define LINTS_TO(sql, want)                                                                                  \
	do {                                                                                                 \
		char *got_ = lint(sql);                                                                      \
		cr_assert_str_eq(got_, want, "input:\n%s\ngot:  %s\nwant: %s", sql, got_, want);             \
		free(got_);                                                                                  \
	} while (0)

/* A rule's two tests: a file that triggers it (exactly these findings) and one that does not. */
#define RULE(id, bad, want, good, want_good)                                                                 \
	Test(lint_rules, id##_flags)                                                                         \
	{                                                                                                    \
		LINTS_TO(bad, want);                                                                         \
	}                                                                                                    \
	Test(lint_rules, id##_passes)                                                                        \
	{                                                                                                    \
		LINTS_TO(good, want_good);                                                                   \
	}

RULE(parse_error, "SELECT 1;\n  SELEC 2;", "2:3 parse-error", "SELECT 1;", "")
RULE(volatile_default, "ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();",
     "1:26 add-column-volatile-default", "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();", "")
RULE(required_column, "ALTER TABLE t ADD COLUMN n int NOT NULL;", "1:26 add-column-required",
     "ALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 0;", "")
RULE(set_not_null, "SELECT 1;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;", "2:15 set-not-null",
     "-- flotilla:no-transaction\n"
     "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
     "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\n"
     "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
     "")
RULE(constraint_not_valid, "ALTER TABLE t ADD CONSTRAINT t_u_fk FOREIGN KEY (u) REFERENCES u (id);",
     "1:19 constraint-not-valid",
     "ALTER TABLE t ADD CONSTRAINT t_u_fk FOREIGN KEY (u) REFERENCES u (id) NOT VALID;", "")
RULE(validate_same_transaction,
     "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;",
     "2:15 validate-same-transaction",
     "-- flotilla:no-transaction\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
     "ALTER TABLE t VALIDATE CONSTRAINT c;",
     "")
RULE(add_unique_using_index, "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a);",
     "1:19 add-unique-using-index", "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_idx;", "")
RULE(create_index_concurrently, "-- the lookup\nCREATE INDEX t_a_idx ON t (a);",
     "2:1 create-index-concurrently", "CREATE TABLE t (a text);\nCREATE INDEX t_a_idx ON t (a);", "")
RULE(drop_index_concurrently, "DROP INDEX t_a_idx;", "1:1 drop-index-concurrently",
     "-- flotilla:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_a_idx;", "")
RULE(reindex_concurrently, "REINDEX INDEX t_a_idx;", "1:1 reindex-concurrently",
     "REINDEX INDEX CONCURRENTLY t_a_idx;", "")
RULE(detach_partition_concurrently, "ALTER TABLE m DETACH PARTITION m_2024;",
     "1:32 detach-partition-concurrently",
     "-- flotilla:no-transaction\nALTER TABLE m DETACH PARTITION m_2024 CONCURRENTLY;", "")
RULE(alter_column_type, "ALTER TABLE t ALTER COLUMN a TYPE bigint;", "1:15 alter-column-type",
     "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;", "")
RULE(rename_table, "ALTER TABLE t RENAME TO u;", "1:13 rename-table",
     "CREATE TABLE t (a text);\nALTER TABLE t RENAME TO u;", "")
RULE(rename_column, "ALTER TABLE t RENAME COLUMN a TO b;", "1:13 rename-column",
     "CREATE TABLE t (a text);\nALTER TABLE t RENAME COLUMN a TO b;", "")
RULE(drop_table, "DROP TABLE t;", "1:1 drop-table", "CREATE TABLE t (a text);\nDROP TABLE t;", "")
RULE(drop_column, "ALTER TABLE t DROP COLUMN a;", "1:15 drop-column", "ALTER TABLE t ADD COLUMN b text;", "")
RULE(drop_schema, "DROP SCHEMA s CASCADE;", "1:1 drop-schema", "CREATE SCHEMA s;", "")
RULE(drop_database, "DROP DATABASE d;", "1:1 drop-database", "CREATE DATABASE d;", "")
RULE(drop_not_null, "ALTER TABLE t ALTER COLUMN a DROP NOT NULL;", "1:15 drop-not-null",
     "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;", "")
RULE(truncate_cascade, "TRUNCATE t CASCADE;", "1:1 truncate-cascade", "TRUNCATE t;", "")
RULE(vacuum_full, "VACUUM FULL t;", "1:8 vacuum-full", "VACUUM t;", "")
RULE(cluster, "CLUSTER t USING t_pkey;", "1:1 cluster", "ANALYZE t;", "")
RULE(enum_add_value, "ALTER TYPE mood ADD VALUE 'meh';", "1:1 enum-add-value",
     "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';", "")
RULE(prefer_text, "CREATE TABLE t (code varchar(10));", "1:22 prefer-text", "CREATE TABLE t (code text);", "")
RULE(prefer_timestamptz, "CREATE TABLE t (at timestamp);", "1:20 prefer-timestamptz",
     "CREATE TABLE t (at timestamptz);", "")
RULE(prefer_identity, "CREATE TABLE t (n serial);", "1:19 prefer-identity",
     "CREATE TABLE t (n bigint GENERATED ALWAYS AS IDENTITY);", "")
RULE(prefer_bigint_id, "CREATE TABLE t (user_id integer);", "1:25 prefer-bigint-id",
     "CREATE TABLE t (user_id bigint);", "")
RULE(identifier_too_long,
     "CREATE TABLE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa (b text);",
     "1:14 identifier-too-long",
     "CREATE TABLE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa (b text);", "")
RULE(duplicate_column_assignment, "UPDATE t SET a = 1, b = 2, a = 3;", "1:28 duplicate-column-assignment",
     "UPDATE t SET a = 1, b = 2;", "")
RULE(unbalanced_transaction, "-- flotilla:no-transaction\nBEGIN;\nUPDATE t SET a = 1;",
     "2:1 unbalanced-transaction", "-- flotilla:no-transaction\nBEGIN;\nUPDATE t SET a = 1;\nCOMMIT;", "")
RULE(nested_transaction, "BEGIN;\nUPDATE t SET a = 1;\nCOMMIT;",
     "1:1 nested-transaction|3:1 nested-transaction", "UPDATE t SET a = 1;", "")
RULE(no_transaction_idempotent, "-- flotilla:no-transaction\nCREATE TABLE t (a text);",
     "2:14 no-transaction-idempotent", "-- flotilla:no-transaction\nCREATE TABLE IF NOT EXISTS t (a text);",
     "")
RULE(lock_timeout, "SET lock_timeout = 0;", "1:1 lock-timeout", "SET statement_timeout = '1min';", "")
RULE(autocommit_file, "UPDATE t SET a = 1;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);",
     "2:1 autocommit-file",
     "-- flotilla:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);", "")
RULE(lint_ignore, "-- flotilla:lint-ignore drop-table reason\nSELECT 1;", "1:25 lint-ignore",
     "-- flotilla:lint-ignore drop-table nobody has read it since v3\nDROP TABLE t;", "")

Test(lint_rules, cross_service_readers_flags)
{
	struct opts o = {.reader = "auth"};
	char *msgs;
	char *got = lint_with("ALTER TABLE profiles DROP COLUMN nickname;", &o, &msgs);
	cr_assert_str_eq(got, "1:22 cross-service-readers");
	cr_assert_str_eq(msgs,
	                 "auth reads svc_db: dropping column profiles.nickname breaks its queries until it "
	                 "ships; expand first, contract in a later release\n");
	free(got);
	free(msgs);
}

Test(lint_rules, cross_service_readers_passes)
{
	struct opts o = {.reader = "auth"};
	char *got = lint_with(
	    "ALTER TABLE profiles ADD COLUMN nickname2 text;\nCREATE TABLE x (a text);\nDROP TABLE x;", &o,
	    NULL);
	cr_assert_str_eq(got, "");
	free(got);
	/* a view dropped and created again in one transaction: readers never miss it */
	got = lint_with("DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT 1;", &o, NULL);
	cr_assert_str_eq(got, "");
	free(got);
	got = lint_with("DROP VIEW IF EXISTS v;", &o, NULL);
	cr_assert_str_eq(got, "1:1 cross-service-readers");
	free(got);
}

Test(lint_core, parse_error_is_postgres_own_message)
{
	struct opts o = {0};
	char *msgs;
	char *got = lint_with("SELECT 1;\n  SELEC 2;", &o, &msgs);
	cr_assert_str_eq(msgs, "syntax error at or near \"SELEC\"\n");
	free(got);
	free(msgs);
}

Test(lint_core, suppressions)
{
	/* the same line as the statement's end, and the whole file */
	LINTS_TO("DROP TABLE t; -- flotilla:lint-ignore drop-table gone since v2\nDROP TABLE u;",
	         "2:1 drop-table");
	LINTS_TO("-- flotilla:lint-ignore-file prefer-text fixed-width codes\nCREATE TABLE t (a char(2));\n"
	         "CREATE TABLE u (b varchar(3));",
	         "");
	/* unknown, without a reason, unused for the whole file */
	struct opts o = {0};
	char *msgs;
	char *got = lint_with("-- flotilla:lint-ignore drop-tabel reason\nDROP TABLE t;", &o, &msgs);
	cr_assert_str_eq(got, "1:25 lint-ignore|2:1 drop-table");
	cr_assert_str_eq(msgs, "lint-ignore names an unknown rule 'drop-tabel'; did you mean 'drop-table'?\n"
	                       "dropping table t breaks clients still running the old code\n");
	free(got);
	free(msgs);
	LINTS_TO("-- flotilla:lint-ignore drop-table\nDROP TABLE t;", "1:1 lint-ignore");
	LINTS_TO("-- flotilla:lint-ignore-file cluster not needed\nSELECT 1;", "1:30 lint-ignore");
}

Test(lint_core, each_alter_table_subcommand_has_its_place)
{
	LINTS_TO(
	    "ALTER TABLE \"T\" ADD COLUMN b text DEFAULT 'x, y (z)',\n  ALTER COLUMN a SET NOT NULL, -- one\n"
	    "  DROP COLUMN c;",
	    "2:3 set-not-null|3:3 drop-column");
}

Test(lint_core, placeholders_map_back_to_the_file)
{
	fl_placeholder ph[] = {{"tbl", "a_much_longer_table_name"}};
	struct opts o = {.ph = ph, .nph = 1};
	char *got = lint_with("ALTER TABLE ${tbl} ADD COLUMN n int NOT NULL;", &o, NULL);
	cr_assert_str_eq(got, "1:31 add-column-required");
	free(got);
}

Test(lint_core, columns_count_characters)
{
	LINTS_TO("CREATE TABLE t (é_name varchar(3));", "1:24 prefer-text");
}

Test(lint_core, verdicts_follow_the_server_version)
{
	struct opts v10 = {.pg = 10}, v11 = {.pg = 11};
	const char *def = "ALTER TABLE t ADD COLUMN n int DEFAULT 0;";
	char *a = lint_with(def, &v10, NULL), *b = lint_with(def, &v11, NULL);
	cr_assert_str_eq(a, "1:26 add-column-volatile-default");
	cr_assert_str_eq(b, "");
	free(a);
	free(b);
	char *c = lint_with("ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';", &v11, NULL);
	cr_assert_str_eq(c, "1:1 enum-add-value");
	free(c);
	/* before 12 a validated CHECK does not spare SET NOT NULL its scan */
	const char *nn = "-- flotilla:no-transaction\n"
	                 "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
	                 "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\n"
	                 "ALTER TABLE t ALTER COLUMN a SET NOT NULL;";
	char *d = lint_with(nn, &v11, NULL);
	cr_assert_str_eq(d, "4:15 set-not-null");
	free(d);
}

Test(lint_core, detach_concurrently_needs_a_no_transaction_file)
{
	LINTS_TO("ALTER TABLE m DETACH PARTITION m_2024 CONCURRENTLY;", "1:32 detach-partition-concurrently");
}

Test(lint_core, autocommit_lists_the_statements)
{
	struct opts o = {0};
	char *msgs;
	char *got =
	    lint_with("UPDATE t SET a = 1;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n"
	              "UPDATE t SET b = 2;",
	              &o, &msgs);
	cr_assert_str_eq(got, "2:1 autocommit-file");
	cr_assert(th_contains(msgs, "the 2 other statements (lines 1 and 3) then commit one by one"), "%s",
	          msgs);
	free(got);
	free(msgs);
}

/* ---- the command ---- */

/* A project: services user and auth (auth reads user), a role reading user, files per test. */
static char *project(const char *lint_toml)
{
	char *dir = th_tmpdir();
	char *m =
	    fl_asprintf("version = 1\nproject = \"p\"\n"
	                "[environments.local]\nadmin = { user = \"postgres\" }\n"
	                "migrator = { user = \"postgres\" }\nservice_passwords = false\n"
	                "[defaults]\ndatabase = \"${service}_db_${env}\"\nowner = \"${service}_owner\"\n"
	                "migrations = \"services/${service}/migrations\"\n"
	                "[services.user]\n[services.auth]\nreads = [\"user\"]\n"
	                "[roles.bigquery_sync]\nreads = [\"user\"]\n%s",
	                lint_toml ? lint_toml : "");
	th_write(dir, "flotilla.toml", m);
	free(m);
	th_write(dir, "services/user/migrations/V1__create.sql",
	         "CREATE TABLE profiles (id bigint, nick text);\n");
	th_write(dir, "services/auth/migrations/V1__create.sql", "CREATE TABLE users (id bigint);\n");
	return dir;
}

static int run_lint(const char *dir, char **out, char **err, const char *a1, const char *a2, const char *a3)
{
	const char *argv[] = {"flotilla", "lint", a1, a2, a3, NULL};
	return th_run(dir, NULL, out, err, argv);
}

Test(lint_cli, clean_project_exits_0)
{
	char *dir = project(NULL), *out, *err;
	cr_assert_eq(run_lint(dir, &out, &err, NULL, NULL, NULL), 0, "%s", err);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err,
	                 "lint: 2 files of 2 services, 0 errors, 0 warnings (PostgreSQL 15; flotilla runs "
	                 "them with lock_timeout 2s, from [settings])\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, cross_service_drop_names_the_readers_and_exits_3)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/user/migrations/V2__drop_nick.sql",
	         "ALTER TABLE profiles DROP COLUMN nick;\n");
	cr_assert_eq(run_lint(dir, &out, &err, "user", NULL, NULL), 3, "%s", err);
	cr_assert_str_eq(out,
	                 "services/user/migrations/V2__drop_nick.sql:1:22: cross-service-readers: auth and "
	                 "bigquery_sync read user_db: dropping column profiles.nick breaks their queries "
	                 "until they ship; expand first, contract in a later release\n"
	                 "  hint: add the new shape beside the old one now, ship the readers, and drop the "
	                 "old one in a later release\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, warnings_exit_0_and_github_annotations)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/auth/migrations/V2__codes.sql",
	         "CREATE TABLE codes (c varchar(8), at timestamp);\n");
	cr_assert_eq(run_lint(dir, &out, &err, "--format", "github", NULL), 0, "%s", err);
	cr_assert_str_eq(
	    out,
	    "::warning file=services/auth/migrations/V2__codes.sql,line=1,col=23,title=prefer-text::column c "
	    "is "
	    "varchar(n): raising the limit later takes an ACCESS EXCLUSIVE lock and lowering it rewrites the "
	    "table%0Ahint: text (with CHECK (length(col) <= n) if the limit is a rule)\n"
	    "::warning "
	    "file=services/auth/migrations/V2__codes.sql,line=1,col=38,title=prefer-timestamptz::column at "
	    "is timestamp without time zone: the values mean whatever time zone each writer happened to "
	    "use%0Ahint: timestamptz (timestamp with time zone)\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, sarif_validates_against_the_2_1_0_schema)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/auth/migrations/V2__idx.sql", "CREATE INDEX users_id_idx ON users (id);\n");
	cr_assert_eq(run_lint(dir, &out, &err, "--format", "sarif", NULL), 3, "%s", err);
	th_write(dir, "out.sarif", out);
	cr_assert(th_contains(out, "\"ruleId\": \"create-index-concurrently\""), "%s", out);
	cr_assert(th_contains(out, "\"startLine\": 1"), "%s", out);
	char *cmd =
	    fl_asprintf("/usr/bin/python3 -c 'import json, sys, jsonschema; "
	                "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); "
	                "print(\"valid\")' %s/out.sarif %s/tests/sarif/sarif-2.1.0-rtm.5.json",
	                dir, th_top());
	char *v;
	int rc = th_sh(cmd, &v);
	cr_assert_eq(rc, 0, "%s", v);
	cr_assert_str_eq(v, "valid\n");
	free(v);
	free(cmd);
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, json_document)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/auth/migrations/V2__idx.sql", "CREATE INDEX users_id_idx ON users (id);\n");
	cr_assert_eq(run_lint(dir, &out, &err, "--json", "--pg-version", "13"), 3, "%s", err);
	cr_assert(th_contains(out, "\"pg_version\": 13,\n  \"lock_timeout_ms\": 2000,\n  \"files\": 3,\n"
	                           "  \"counts\": {\n    \"errors\": 1,\n    \"warnings\": 0\n  },"),
	          "%s", out);
	cr_assert(th_contains(out, "\"file\": \"services/auth/migrations/V2__idx.sql\",\n      \"line\": 1,\n"
	                           "      \"column\": 1,\n      \"rule\": \"create-index-concurrently\",\n"
	                           "      \"level\": \"error\""),
	          "%s", out);
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, manifest_sets_levels_and_version)
{
	char *dir = project("[lint]\npg_version = 10\n[lint.rules]\ndrop-table = \"error\"\n"
	                    "create-index-concurrently = { level = \"off\" }\n"
	                    "prefer-text = { level = \"warning\", from_version = \"3\" }\n"),
	     *out, *err;
	th_write(dir, "services/auth/migrations/V2__x.sql",
	         "CREATE INDEX users_id_idx ON users (id);\nCREATE TABLE c (a varchar(3));\n"
	         "ALTER TABLE users ADD COLUMN n int DEFAULT 0;\n");
	th_write(dir, "services/auth/migrations/V3__y.sql", "CREATE TABLE d (a varchar(3));\n");
	th_write(dir, "services/auth/migrations/U3__y.sql", "DROP TABLE d;\nDROP TABLE c;\n");
	cr_assert_eq(run_lint(dir, &out, &err, "auth", NULL, NULL), 3, "%s", err);
	cr_assert_str_eq(
	    out, "services/auth/migrations/U3__y.sql:2:1: drop-table: dropping table c breaks clients "
	         "still running the old code\n"
	         "  hint: stop reading it in every client first; drop it in a later release\n"
	         "services/auth/migrations/V2__x.sql:3:30: add-column-volatile-default: ADD COLUMN n "
	         "rewrites users under ACCESS EXCLUSIVE: before PostgreSQL 11 any default is written "
	         "into every row\n"
	         "  hint: add the column without a default (or with a constant one), set the default, "
	         "then backfill existing rows in batches\n"
	         "services/auth/migrations/V3__y.sql:1:19: prefer-text: column a is varchar(n): raising "
	         "the limit later takes an ACCESS EXCLUSIVE lock and lowering it rewrites the table\n"
	         "  hint: text (with CHECK (length(col) <= n) if the limit is a rule)\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, manifest_lint_errors_have_places)
{
	char *dir = project(
	         "[lint]\npg_versoin = 14\n[lint.rules]\ndrop-tabel = \"error\"\ncluster = \"fatal\"\n"),
	     *out, *err;
	cr_assert_eq(run_lint(dir, &out, &err, NULL, NULL, NULL), 2);
	cr_assert(th_contains(err, "flotilla.toml:17:1: unknown key \"pg_versoin\" in [lint]; did you mean "
	                           "\"pg_version\"?\n"),
	          "%s", err);
	cr_assert(th_contains(err,
	                      "flotilla.toml:19:1: unknown lint rule \"drop-tabel\" in [lint.rules]; did you "
	                      "mean \"drop-table\"?\n"),
	          "%s", err);
	cr_assert(th_contains(err,
	                      "flotilla.toml:20:11: lint rule \"cluster\" takes \"error\", \"warning\" or "
	                      "\"off\", not \"fatal\"\n"),
	          "%s", err);
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, bad_usage_and_unreadable_files_exit_2)
{
	char *dir = project(NULL), *out, *err;
	cr_assert_eq(run_lint(dir, &out, &err, "--format", "xml", NULL), 2);
	cr_assert(th_contains(err, "flotilla: --format takes text, github, sarif or json, not 'xml'"), "%s",
	          err);
	free(out);
	free(err);
	cr_assert_eq(run_lint(dir, &out, &err, "--pg-version", "99", NULL), 2);
	free(out);
	free(err);
	th_write(dir, "services/auth/migrations/V2_missing_underscore.sql", "SELECT 1;\n");
	cr_assert_eq(run_lint(dir, &out, &err, NULL, NULL, NULL), 2);
	cr_assert(th_contains(err, "services/auth/migrations/V2_missing_underscore.sql"), "%s", err);
	free(out);
	free(err);
	free(dir);
}

static void git(const char *dir, const char *args)
{
	char *cmd = fl_asprintf("cd %s && git -c user.name=T -c user.email=t@example.com %s", dir, args);
	char *out;
	cr_assert_eq(th_sh(cmd, &out), 0, "%s: %s", cmd, out);
	free(out);
	free(cmd);
}

Test(lint_cli, since_lints_only_what_changed_and_diff_shows_it)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/auth/migrations/V2__old.sql", "CREATE INDEX users_id_idx ON users (id);\n");
	git(dir,
	    "init -q -b main && git add -A && git -c user.name=T -c user.email=t@example.com commit -qm one");
	th_write(dir, "services/auth/migrations/V3__new.sql", "ALTER TABLE users RENAME TO accounts;\n");
	cr_assert_eq(run_lint(dir, &out, &err, "--since", "main", NULL), 3, "%s", err);
	cr_assert_str_eq(out,
	                 "services/auth/migrations/V3__new.sql:1:13: rename-table: renaming table users to "
	                 "accounts breaks clients still running the old code\n"
	                 "  hint: create the new name beside the old (a view on the old name), move the "
	                 "clients, then drop the old name in a later release\n");
	cr_assert(th_contains(err, "lint: 1 file of 2 services"), "%s", err);
	free(out);
	free(err);
	const char *argv[] = {"flotilla", "diff", "--since", "main", NULL};
	cr_assert_eq(th_run(dir, NULL, &out, &err, argv), 0, "%s", err);
	cr_assert(th_contains(out,
	                      "lint: 1 error, 0 warnings in the files listed (flotilla lint --since main)\n"
	                      "services/auth/migrations/V3__new.sql:1:13: rename-table: "),
	          "%s", out);
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, the_services_own_migrations_lint_clean)
{
	char *out, *err;
	const char *argv[] = {"flotilla", "-m", "manifests/pcc.toml", "lint", NULL};
	cr_assert_eq(th_run(th_top(), NULL, &out, &err, argv), 0, "%s%s", out, err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
}

Test(lint_cli, set_not_null_after_validating_a_check_added_earlier)
{
	char *dir = project(NULL), *out, *err;
	th_write(dir, "services/auth/migrations/V1__create.sql",
	         "CREATE TABLE users (id bigint, email text);\n");
	th_write(dir, "services/auth/migrations/V2__check.sql",
	         "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n");
	th_write(dir, "services/auth/migrations/V3__not_null.sql",
	         "-- flotilla:no-transaction\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
	         "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users ALTER COLUMN id SET "
	         "NOT NULL;\n");
	cr_assert_eq(run_lint(dir, &out, &err, "auth", NULL, NULL), 3, "%s", err);
	cr_assert_str_eq(out,
	                 "services/auth/migrations/V3__not_null.sql:4:19: set-not-null: SET NOT NULL on "
	                 "users.id scans the whole table under ACCESS EXCLUSIVE\n"
	                 "  hint: ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; "
	                 "then SET NOT NULL (no scan) and DROP CONSTRAINT c\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, github_paths_are_from_where_ci_runs)
{
	char *dir = th_tmpdir(), *out, *err;
	th_write(dir, "manifests/m.toml",
	         "version = 1\nproject = \"p\"\n[environments.local]\nadmin = { user = \"postgres\" }\n"
	         "migrator = { user = \"postgres\" }\n[defaults]\ndatabase = \"${service}_db\"\n"
	         "owner = \"${service}_owner\"\nmigrations = \"../services/${service}/migrations\"\n"
	         "[services.user]\n");
	th_write(dir, "services/user/migrations/V1__t.sql", "TRUNCATE t CASCADE;\n");
	const char *argv[] = {"flotilla", "-m", "manifests/m.toml", "lint", "--format", "github", NULL};
	cr_assert_eq(th_run(dir, NULL, &out, &err, argv), 3, "%s", err);
	cr_assert_str_eq(
	    out, "::error file=services/user/migrations/V1__t.sql,line=1,col=1,title=truncate-cascade::"
	         "TRUNCATE ... CASCADE also empties every table with a foreign key to these, whatever "
	         "service's data they hold%0Ahint: TRUNCATE only the tables you name (without "
	         "CASCADE)\n");
	free(out);
	free(err);
	free(dir);
}

Test(lint_cli, rev_reads_the_committed_files)
{
	char *dir = project(NULL), *out, *err;
	git(dir,
	    "init -q -b main && git add -A && git -c user.name=T -c user.email=t@example.com commit -qm one");
	th_write(dir, "services/auth/migrations/V2__wip.sql", "VACUUM FULL users;\n");
	cr_assert_eq(run_lint(dir, &out, &err, "--rev", "main", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
	cr_assert_eq(run_lint(dir, &out, &err, NULL, NULL, NULL), 3, "%s", err);
	cr_assert(th_contains(out, "services/auth/migrations/V2__wip.sql:1:8: vacuum-full: "), "%s", out);
	free(out);
	free(err);
	free(dir);
}
