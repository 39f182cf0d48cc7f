/* SQL text -> statements: quotes, dollar quotes, comments, BEGIN ATOMIC, psql-only input, places. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "sqlsplit.h"

/*
 * The split of `sql` as "line:col text|line:col text...", or "ERR " and the
 * formatted error. One string per case keeps every expectation readable.
 */
static char *split_len(const char *sql, size_t len)
{
	fl_stmt *st = NULL;
	size_t n = 99;
	fl_error *err = NULL;
	fl_buf b;
	fl_buf_init(&b);
	if (fl_sqlsplit(sql, len, "t.sql", &st, &n, &err) != 0) {
		cr_assert(err, "failure without an error");
		cr_assert_null(st);
		cr_assert_eq(n, 0);
		char *m = fl_error_format(err);
		fl_buf_printf(&b, "ERR %s", m);
		free(m);
		fl_error_free(err);
		return fl_buf_detach(&b);
	}
	cr_assert_not_null(st);
	for (size_t i = 0; i < n; i++) {
		cr_assert(st[i].start <= st[i].end && st[i].end <= len, "bad range %zu..%zu", st[i].start,
		          st[i].end);
		int line, col;
		fl_sql_position(sql, len, st[i].start, &line, &col);
		cr_assert(line == st[i].line && col == st[i].col, "place %d:%d, position says %d:%d",
		          st[i].line, st[i].col, line, col);
		fl_buf_printf(&b, "%s%d:%d %.*s", i ? "|" : "", st[i].line, st[i].col,
		              (int)(st[i].end - st[i].start), sql + st[i].start);
	}
	free(st);
	return fl_buf_detach(&b);
}

static char *split(const char *sql)
{
	return split_len(sql, strlen(sql));
}

#define SPLITS_TO(sql, want)                                                                                 \
	do {                                                                                                 \
		char *got_ = split(sql);                                                                     \
		cr_assert_str_eq(got_, want, "input:\n%s\ngot:\n%s\nwant:\n%s", sql, got_, want);            \
		free(got_);                                                                                  \
	} while (0)

Test(sqlsplit, plain_statements)
{
	SPLITS_TO("SELECT 1; SELECT 2;", "1:1 SELECT 1|1:11 SELECT 2");
	SPLITS_TO("SELECT 1;\nSELECT 2  \n", "1:1 SELECT 1|2:1 SELECT 2");
	SPLITS_TO("  \n\tCREATE TABLE t (a int) ;\n", "2:2 CREATE TABLE t (a int)");
}

Test(sqlsplit, empty_statements_are_dropped)
{
	SPLITS_TO("", "");
	SPLITS_TO(";;  ;\n", "");
	SPLITS_TO("-- only a comment\n/* and another */\n", "");
	SPLITS_TO(";;SELECT 1;;;SELECT 2;;", "1:3 SELECT 1|1:14 SELECT 2");
}

Test(sqlsplit, comments_before_and_after_a_statement)
{
	SPLITS_TO("-- head\n/* block */  SELECT 1;", "2:14 SELECT 1");
	/* a trailing comment is not part of the statement; one in the middle is */
	SPLITS_TO("SELECT 1 -- one\n;SELECT /* x; */ 2 /* y */", "1:1 SELECT 1|2:2 SELECT /* x; */ 2");
	SPLITS_TO("SELECT 1 --; no split\n+ 1;", "1:1 SELECT 1 --; no split\n+ 1");
	/* a comment start ends an operator, as in PostgreSQL */
	SPLITS_TO("SELECT 2 *--;\n3;", "1:1 SELECT 2 *--;\n3");
}

Test(sqlsplit, quotes_inside_comments)
{
	SPLITS_TO("-- it's\nSELECT 1; /* don't ; \" $$ */ SELECT 2;", "2:1 SELECT 1|2:30 SELECT 2");
	SPLITS_TO("SELECT 1 -- it's; $x$\n; SELECT 2", "1:1 SELECT 1|2:3 SELECT 2");
}

Test(sqlsplit, comments_inside_quotes)
{
	SPLITS_TO("SELECT '--;', '/*;' ;SELECT 2", "1:1 SELECT '--;', '/*;'|1:22 SELECT 2");
	SPLITS_TO("SELECT \"--;/*\" FROM t;SELECT 2", "1:1 SELECT \"--;/*\" FROM t|1:23 SELECT 2");
	SPLITS_TO("SELECT $$ -- ; /* $$; SELECT 2", "1:1 SELECT $$ -- ; /* $$|1:23 SELECT 2");
}

Test(sqlsplit, single_quotes)
{
	SPLITS_TO("SELECT 'a;b', 'it''s;';SELECT 2", "1:1 SELECT 'a;b', 'it''s;'|1:24 SELECT 2");
	SPLITS_TO("SELECT '';SELECT ''''", "1:1 SELECT ''|1:11 SELECT ''''");
	/* standard_conforming_strings: a backslash is only a backslash */
	SPLITS_TO("SELECT 'C:\\'; SELECT 2", "1:1 SELECT 'C:\\'|1:15 SELECT 2");
	SPLITS_TO("SELECT 'multi\nline;';\nSELECT 2", "1:1 SELECT 'multi\nline;'|3:1 SELECT 2");
	SPLITS_TO("SELECT B'101', X'1F', N'n;';SELECT 2", "1:1 SELECT B'101', X'1F', N'n;'|1:29 SELECT 2");
}

Test(sqlsplit, escape_strings)
{
	SPLITS_TO("SELECT E'it\\'s;'; SELECT 2", "1:1 SELECT E'it\\'s;'|1:19 SELECT 2");
	SPLITS_TO("SELECT e'\\\\'; SELECT 2", "1:1 SELECT e'\\\\'|1:15 SELECT 2");
	SPLITS_TO("SELECT E'\\''';'; SELECT 2", "1:1 SELECT E'\\''';'|1:18 SELECT 2");
	/* only a lone E is a prefix: "some" is a word and its string is a standard one */
	SPLITS_TO("SELECT some'\\'; SELECT 2", "1:1 SELECT some'\\'|1:17 SELECT 2");
	SPLITS_TO("SELECT E'\\n' AS e, e ; SELECT 2", "1:1 SELECT E'\\n' AS e, e|1:24 SELECT 2");
}

Test(sqlsplit, unicode_strings_and_identifiers)
{
	SPLITS_TO("SELECT U&'d\\0061t\\+000061;' UESCAPE '!'; SELECT 2",
	          "1:1 SELECT U&'d\\0061t\\+000061;' UESCAPE '!'|1:42 SELECT 2");
	SPLITS_TO("SELECT u&'\\';SELECT 2", "1:1 SELECT u&'\\'|1:14 SELECT 2");
	SPLITS_TO("SELECT 1 AS U&\"d\\0061;\"; SELECT 2", "1:1 SELECT 1 AS U&\"d\\0061;\"|1:26 SELECT 2");
}

Test(sqlsplit, quoted_identifiers)
{
	SPLITS_TO("SELECT \"a;\"\"b\" FROM \"it's\"; SELECT 2",
	          "1:1 SELECT \"a;\"\"b\" FROM \"it's\"|1:29 SELECT 2");
	SPLITS_TO("CREATE TABLE \"$$\" (\"--\" int);SELECT 2",
	          "1:1 CREATE TABLE \"$$\" (\"--\" int)|1:30 SELECT 2");
}

Test(sqlsplit, dollar_quotes)
{
	SPLITS_TO("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 2",
	          "1:1 CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql|1:66 SELECT 2");
	/* another tag inside: only the opening tag closes */
	SPLITS_TO("DO $fn$ BEGIN EXECUTE $$SELECT ';'$$; END $fn$; SELECT 2",
	          "1:1 DO $fn$ BEGIN EXECUTE $$SELECT ';'$$; END $fn$|1:49 SELECT 2");
	SPLITS_TO("SELECT $$ a $x$ ; ' $$; SELECT 2", "1:1 SELECT $$ a $x$ ; ' $$|1:25 SELECT 2");
	SPLITS_TO("SELECT $a$ $A$; $b$a$; SELECT 2", "1:1 SELECT $a$ $A$; $b$a$|1:24 SELECT 2");
	SPLITS_TO("SELECT $_1$;$_1$; SELECT $ü$;$ü$", "1:1 SELECT $_1$;$_1$|1:19 SELECT $ü$;$ü$");
	SPLITS_TO("SELECT $$$$;SELECT 2", "1:1 SELECT $$$$|1:13 SELECT 2");
}

Test(sqlsplit, dollar_digits_and_identifiers_are_not_tags)
{
	SPLITS_TO("PREPARE p AS SELECT $1;SELECT $2", "1:1 PREPARE p AS SELECT $1|1:24 SELECT $2");
	SPLITS_TO("SELECT $1$;SELECT 2", "1:1 SELECT $1$|1:12 SELECT 2");
	/* "a$b$" is one identifier: no dollar quote opens inside it */
	SPLITS_TO("SELECT a$b$; SELECT x$$", "1:1 SELECT a$b$|1:14 SELECT x$$");
	SPLITS_TO("SELECT 1$a$;$a$", "1:1 SELECT 1$a$;$a$");
}

Test(sqlsplit, nested_block_comments)
{
	SPLITS_TO("/* a /* b */ ; */ SELECT 1; SELECT 2", "1:19 SELECT 1|1:29 SELECT 2");
	SPLITS_TO("SELECT /* 1 /* 2 /* 3 */ */ ; */ 1;", "1:1 SELECT /* 1 /* 2 /* 3 */ */ ; */ 1");
	SPLITS_TO("SELECT 1 /**/; SELECT /*/ ; */ 2", "1:1 SELECT 1|1:16 SELECT /*/ ; */ 2");
}

Test(sqlsplit, parentheses_keep_semicolons)
{
	SPLITS_TO(
	    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); "
	    "SELECT 2",
	    "1:1 CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES "
	    "(2))|1:95 SELECT 2");
	/* a stray ')' does not swallow the next statement */
	SPLITS_TO("SELECT 1); SELECT 2", "1:1 SELECT 1)|1:12 SELECT 2");
}

Test(sqlsplit, begin_atomic_bodies)
{
	const char *sql = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\n"
	                  "BEGIN ATOMIC\n"
	                  "  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n"
	                  "  SELECT 2;\n"
	                  "END;\n"
	                  "SELECT 3;";
	SPLITS_TO(sql, "1:1 CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
	               "  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND|6:1 SELECT 3");
	SPLITS_TO(
	    "create or replace procedure p() /* x */ begin  atomic insert into t values (1); "
	    "insert into t values (case 1 when 1 then 2 end); end; call p()",
	    "1:1 create or replace procedure p() /* x */ begin  atomic insert into t values (1); insert into "
	    "t values (case 1 when 1 then 2 end); end|1:135 call p()");
	SPLITS_TO("CREATE OR REPLACE FUNCTION g() RETURNS int BEGIN ATOMIC; END; SELECT 1",
	          "1:1 CREATE OR REPLACE FUNCTION g() RETURNS int BEGIN ATOMIC; END|1:63 SELECT 1");
	/* outside a routine definition BEGIN and END are transaction commands */
	SPLITS_TO("BEGIN; SELECT 1; END;", "1:1 BEGIN|1:8 SELECT 1|1:18 END");
	SPLITS_TO("CREATE TABLE atomic (begin int); SELECT 1",
	          "1:1 CREATE TABLE atomic (begin int)|1:34 SELECT 1");
	/* plpgsql bodies are dollar-quoted; their BEGIN/END are inside the quote */
	SPLITS_TO("CREATE FUNCTION h() RETURNS void AS $$BEGIN END$$ LANGUAGE plpgsql; SELECT 1",
	          "1:1 CREATE FUNCTION h() RETURNS void AS $$BEGIN END$$ LANGUAGE plpgsql|1:69 SELECT 1");
}

Test(sqlsplit, psql_meta_commands_are_refused)
{
	SPLITS_TO("SELECT 1;\n  \\i other.sql\n",
	          "ERR t.sql:2:3: psql meta-command \\i is not SQL; flotilla sends "
	          "migrations to the server, not to psql");
	SPLITS_TO("/* x */ \\set ON_ERROR_STOP on\n",
	          "ERR t.sql:1:9: psql meta-command \\set is not SQL; flotilla "
	          "sends migrations to the server, not to psql");
	SPLITS_TO("SELECT 1 \\gset", "ERR t.sql:1:10: psql meta-command \\gset is not SQL; flotilla sends "
	                             "migrations to the server, not to psql");
	SPLITS_TO("CREATE TABLE a (x int)\n\\connect other",
	          "ERR t.sql:2:1: psql meta-command \\connect is not "
	          "SQL; flotilla sends migrations to the server, not to psql");
	SPLITS_TO("\\! rm -rf /",
	          "ERR t.sql:1:1: psql meta-command \\! is not SQL; flotilla sends migrations to "
	          "the server, not to psql");
	/* backslashes in strings, identifiers and comments are text */
	SPLITS_TO("SELECT '\\i', \"\\x\", $$\\q$$ -- \\i\n;", "1:1 SELECT '\\i', \"\\x\", $$\\q$$");
}

Test(sqlsplit, copy_from_stdin_is_refused)
{
	const char *want =
	    "ERR t.sql:2:1: COPY ... FROM stdin needs psql to send the rows after it; flotilla "
	    "sends migrations to the server, not to psql: use INSERT, or COPY from a file the server "
	    "can read";
	SPLITS_TO("SELECT 1;\nCOPY t (a, b) FROM stdin;\n1\t2\n\\.\n", want);
	SPLITS_TO("SELECT 1;\ncopy t from /* rows: */ STDIN with (format csv);\n", want);
	SPLITS_TO(
	    "COPY t FROM '/srv/t.csv'; COPY t TO STDOUT; COPY (SELECT * FROM stdin) TO '/tmp/x'",
	    "1:1 COPY t FROM '/srv/t.csv'|1:27 COPY t TO STDOUT|1:45 COPY (SELECT * FROM stdin) TO '/tmp/x'");
	SPLITS_TO("SELECT * FROM stdin; COPY t FROM \"stdin\"",
	          "1:1 SELECT * FROM stdin|1:22 COPY t FROM \"stdin\"");
}

Test(sqlsplit, unterminated_is_reported_where_it_opens)
{
	SPLITS_TO("SELECT 1;\nSELECT 'abc;\nSELECT 2;",
	          "ERR t.sql:2:8: unterminated quoted string (opened here)");
	SPLITS_TO("SELECT \"abc", "ERR t.sql:1:8: unterminated quoted identifier (opened here)");
	SPLITS_TO("SELECT 1;\n  DO $fn$ BEGIN END $fn;",
	          "ERR t.sql:2:6: unterminated dollar-quoted string $fn$ (opened here)");
	SPLITS_TO("SELECT $$ x $ $", "ERR t.sql:1:8: unterminated dollar-quoted string $$ (opened here)");
	SPLITS_TO("SELECT 1; /* a /* b */ c", "ERR t.sql:1:11: unterminated /* comment (opened here)");
	SPLITS_TO("SELECT E'C:\\';",
	          "ERR t.sql:1:8: unterminated quoted string (opened here; in an E'' string a "
	          "backslash escapes the character after it)");
	SPLITS_TO("SELECT U&'abc", "ERR t.sql:1:8: unterminated quoted string (opened here)");
	SPLITS_TO("SELECT 'é', 'ü", "ERR t.sql:1:13: unterminated quoted string (opened here)");
	SPLITS_TO("SELECT 1;\r\n\r\n  'x", "ERR t.sql:3:3: unterminated quoted string (opened here)");
}

Test(sqlsplit, error_without_a_file_name)
{
	fl_stmt *st;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_sqlsplit("SELECT 'x", 9, NULL, &st, &n, &err), -1);
	char *m = fl_error_format(err);
	cr_assert_str_eq(m, "unterminated quoted string (opened here)");
	cr_assert_eq(err->line, 1);
	cr_assert_eq(err->col, 8);
	free(m);
	fl_error_free(err);
}

Test(sqlsplit, long_dollar_tag_is_shortened_in_the_message)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, '$');
	for (int i = 0; i < 100; i++)
		fl_buf_puts(&b, "é");
	fl_buf_puts(&b, "$ no end");
	/* 64 bytes at most, cut before a character, never inside one: '$' and 31 of the two-byte é */
	fl_buf want;
	fl_buf_init(&want);
	fl_buf_puts(&want, "ERR t.sql:1:1: unterminated dollar-quoted string $");
	for (int i = 0; i < 31; i++)
		fl_buf_puts(&want, "é");
	fl_buf_puts(&want, "... (opened here)");
	char *got = split(b.data);
	cr_assert_str_eq(got, want.data);
	fl_buf_free(&want);
	free(got);
	fl_buf_free(&b);
}

Test(sqlsplit, crlf_and_lone_cr_places)
{
	SPLITS_TO("SELECT 1;\r\nSELECT 2;\r\n\r\n  SELECT 3", "1:1 SELECT 1|2:1 SELECT 2|4:3 SELECT 3");
	SPLITS_TO("SELECT 1;\rSELECT 2;\r\rSELECT 3", "1:1 SELECT 1|2:1 SELECT 2|4:1 SELECT 3");
	SPLITS_TO("SELECT 1 -- c\r;SELECT 2", "1:1 SELECT 1|2:2 SELECT 2");
}

Test(sqlsplit, byte_order_mark_is_skipped)
{
	SPLITS_TO("\xEF\xBB\xBFSELECT 1; SELECT 2", "1:1 SELECT 1|1:11 SELECT 2");
	SPLITS_TO("\xEF\xBB\xBF-- c\nSELECT 1", "2:1 SELECT 1");
	SPLITS_TO("\xEF\xBB\xBF  'x", "ERR t.sql:1:3: unterminated quoted string (opened here)");
	/* only at the start */
	SPLITS_TO("SELECT 1;\xEF\xBB\xBF", "1:1 SELECT 1|1:10 \xEF\xBB\xBF");
	int line, col;
	fl_sql_position("\xEF\xBB\xBF"
	                "ab",
	                5, 4, &line, &col);
	cr_assert(line == 1 && col == 2, "%d:%d", line, col);
	fl_sql_position("\xEF\xBB\xBF"
	                "ab",
	                5, 1, &line, &col);
	cr_assert(line == 1 && col == 1, "%d:%d", line, col);
}

Test(sqlsplit, multibyte_columns)
{
	SPLITS_TO("SELECT 'ü';  SELECT '日本';SELECT 3", "1:1 SELECT 'ü'|1:14 SELECT '日本'|1:26 SELECT 3");
	SPLITS_TO("SELECT 1 AS café; SELECT 2", "1:1 SELECT 1 AS café|1:19 SELECT 2");
	/* offsets are bytes, columns characters: the second statement starts at byte 14, column 14 */
	fl_stmt *st;
	size_t n;
	fl_error *err = NULL;
	const char *sql = "SELECT 'ü';  SELECT 2";
	cr_assert_eq(fl_sqlsplit(sql, strlen(sql), "t.sql", &st, &n, &err), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(st[1].start, 14);
	cr_assert_eq(st[1].end, strlen(sql));
	cr_assert_eq(st[0].end, 11);
	free(st);
}

Test(sqlsplit, input_without_a_terminating_nul)
{
	/* only len bytes count: the "; SELECT 2" after them is not read */
	char *got = split_len("SELECT 'a'; SELECT 2", 10);
	cr_assert_str_eq(got, "1:1 SELECT 'a'");
	free(got);
	got = split_len("SELECT 'a'; SELECT 2", 9);
	cr_assert_str_eq(got, "ERR t.sql:1:8: unterminated quoted string (opened here)");
	free(got);
}

Test(sqlsplit, position)
{
	const char *s = "aé\r\nb\rc\nd€x";
	size_t len = strlen(s);
	int line, col;
	struct {
		size_t off;
		int line, col;
	} cases[] = {
	    {0, 1, 1},  {1, 1, 2}, /* é starts at byte 1 */
	    {3, 1, 3},             /* \r of \r\n */
	    {5, 2, 1},             /* b */
	    {7, 3, 1},             /* c */
	    {9, 4, 1},             /* d */
	    {10, 4, 2},            /* € */
	    {13, 4, 3},            /* x */
	    {14, 4, 4},            /* the end */
	    {99, 4, 4},            /* past the end: the end */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fl_sql_position(s, len, cases[i].off, &line, &col);
		cr_assert(line == cases[i].line && col == cases[i].col, "offset %zu: %d:%d, want %d:%d",
		          cases[i].off, line, col, cases[i].line, cases[i].col);
	}
}

Test(sqlsplit, char_to_byte)
{
	const char *s = "é€x日";
	size_t len = strlen(s); /* 2 + 3 + 1 + 3 bytes */
	cr_assert_eq(fl_sql_char_to_byte(s, len, 1), 0);
	cr_assert_eq(fl_sql_char_to_byte(s, len, 2), 2);
	cr_assert_eq(fl_sql_char_to_byte(s, len, 3), 5);
	cr_assert_eq(fl_sql_char_to_byte(s, len, 4), 6);
	cr_assert_eq(fl_sql_char_to_byte(s, len, 5), len);
	cr_assert_eq(fl_sql_char_to_byte(s, len, 0), 0);
	cr_assert_eq(fl_sql_char_to_byte(s, len, -3), 0);
	/* a server position inside a statement: SELECT 1 + 'é' + x, error at x (char 18) */
	const char *q = "SELECT 1 + 'é' + x";
	size_t b = fl_sql_char_to_byte(q, strlen(q), 18);
	cr_assert_eq(q[b], 'x');
	int line, col;
	fl_sql_position(q, strlen(q), b, &line, &col);
	cr_assert_eq(col, 18);
}

Test(sqlsplit, refuses_transaction)
{
	const char *yes[] = {
	    "CREATE DATABASE x",
	    "drop database if exists x",
	    "CREATE TABLESPACE t LOCATION '/x'",
	    "DROP TABLESPACE t",
	    "CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION p",
	    "drop subscription s",
	    "ALTER SYSTEM SET work_mem = '8MB'",
	    "CREATE INDEX CONCURRENTLY i ON t (a)",
	    "create unique index concurrently if not exists i on t (a)",
	    "CREATE /* why */ UNIQUE -- not now\n INDEX\tCONCURRENTLY i ON t (a)",
	    "DROP INDEX CONCURRENTLY IF EXISTS i",
	    "  \n-- lead\nVACUUM",
	    "vacuum (verbose, analyze) t",
	    "DISCARD ALL",
	    "REINDEX SCHEMA public",
	    "REINDEX DATABASE d",
	    "reindex system d",
	    "REINDEX (VERBOSE) SCHEMA public",
	    "REINDEX TABLE CONCURRENTLY t",
	    "REINDEX (VERBOSE) INDEX CONCURRENTLY i",
	    "REINDEX (CONCURRENTLY) TABLE t",
	    "REINDEX (CONCURRENTLY true, VERBOSE) TABLE t",
	};
	const char *no[] = {
	    "",
	    "-- VACUUM",
	    "CREATE TABLE t (a int)",
	    "CREATE INDEX i ON t (a)",
	    "CREATE INDEX concurrently_named ON t (a)",
	    "CREATE UNIQUE INDEX i ON t (a)",
	    "DROP INDEX i",
	    "DROP UNIQUE INDEX CONCURRENTLY i",
	    "ALTER DATABASE d SET work_mem = '8MB'",
	    "ALTER TABLE t ADD COLUMN b int",
	    "REINDEX TABLE t",
	    "REINDEX (VERBOSE) INDEX i",
	    "REINDEX (CONCURRENTLY false) TABLE t",
	    "REINDEX (CONCURRENTLY off, VERBOSE) TABLE t",
	    "DISCARD PLANS",
	    "SELECT 'VACUUM'",
	    "\"VACUUM\"",
	    "DO $$BEGIN VACUUM; END$$",
	    "ANALYZE t",
	    "CREATE DATABASE_LIKE x",
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(fl_sql_refuses_transaction(yes[i], strlen(yes[i])), "should refuse: %s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert(!fl_sql_refuses_transaction(no[i], strlen(no[i])), "should not refuse: %s", no[i]);
	/* only len bytes count */
	cr_assert(!fl_sql_refuses_transaction("CREATE INDEX CONCURRENTLY", 12));
}

static double seconds_since(struct timespec t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Inputs that would take minutes to a quadratic splitter; each is about 1 MB. */
Test(sqlsplit, linear_on_pathological_megabytes, .timeout = 60)
{
	const size_t mb = 1 << 20;
	struct {
		const char *name, *head, *unit;
		int ok;
		size_t want;
	} cases[] = {
	    {"one line of statements", "", "SELECT 'é';", 1, mb / 12},
	    {"semicolons only", "", ";", 1, 0},
	    {"dollar signs after an open tag", "$abcdefghijklmnop$", "$abcdefghijklmno", 0, 0},
	    {"many dollar signs", "$a$", "$", 0, 0},
	    {"nested comment openers", "", "/*", 0, 0},
	    {"parentheses", "", "(;", 1, 1},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		fl_buf b;
		fl_buf_init(&b);
		fl_buf_puts(&b, cases[c].head);
		size_t ul = strlen(cases[c].unit);
		while (b.len + ul <= mb)
			fl_buf_add(&b, cases[c].unit, ul);
		fl_stmt *st = NULL;
		size_t n = 0;
		fl_error *err = NULL;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = fl_sqlsplit(b.data, b.len, "big.sql", &st, &n, &err);
		double dt = seconds_since(t0);
		cr_assert_eq(r, cases[c].ok ? 0 : -1, "%s", cases[c].name);
		if (cases[c].ok)
			cr_assert_eq(n, cases[c].want, "%s: %zu statements", cases[c].name, n);
		cr_assert_lt(dt, 3.0, "%s took %.2f s", cases[c].name, dt);
		free(st);
		fl_error_free(err);
		fl_buf_free(&b);
	}
}

/* kind|if_exists|index|table, as the engine reads a statement before running it */
static char *about(const char *stmt)
{
	fl_sql_about a;
	fl_sql_about_of(stmt, strlen(stmt), &a);
	static const char *const kinds[] = {"other", "cic", "dic", "rerun"};
	char buf[512];
	snprintf(buf, sizeof(buf), "%s|%d|%.*s|%.*s", kinds[a.kind], (int)a.if_exists, (int)a.index_len,
	         a.index ? a.index : "", (int)a.table_len, a.table ? a.table : "");
	return strdup(buf);
}

Test(sqlsplit, what_a_statement_names)
{
	const char *cases[][2] = {
	    {"CREATE INDEX CONCURRENTLY IF NOT EXISTS metric_values_series_idx ON metric_values (a, b DESC)",
	     "cic|1|metric_values_series_idx|metric_values"},
	    {"create unique index concurrently \"Odd Name\" on only app.\"T\" (a)",
	     "cic|0|\"Odd Name\"|app.\"T\""},
	    {"CREATE INDEX CONCURRENTLY ON t USING brin (ts)", "cic|0||t"},
	    {"CREATE INDEX i ON s . t (a)", "other|0|i|s . t"},
	    {"CREATE INDEX concurrently_named ON t (a)", "other|0|concurrently_named|t"},
	    {"-- why\nDROP INDEX CONCURRENTLY IF EXISTS app.i_old", "dic|1|app.i_old|"},
	    {"DROP INDEX i, j", "other|0|i|"},
	    {"ALTER TABLE IF EXISTS ONLY public.users ADD COLUMN c int", "other|1||public.users"},
	    {"alter table users alter column c set not null", "other|0||users"},
	    {"LOCK TABLE accounts IN SHARE MODE", "other|0||accounts"},
	    {"lock only accounts", "other|0||accounts"},
	    {"TRUNCATE TABLE ONLY t1", "other|0||t1"},
	    {"DROP TABLE IF EXISTS t2", "other|1||t2"},
	    {"CREATE TRIGGER trg BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION f()",
	     "other|0||events"},
	    {"VACUUM (ANALYZE) t", "rerun|0||"},
	    {"REINDEX INDEX CONCURRENTLY i", "rerun|0||"},
	    {"INSERT INTO t VALUES (1)", "other|0||"},
	    {"", "other|0||"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = about(cases[i][0]);
		cr_expect_str_eq(got, cases[i][1], "%s", cases[i][0]);
		free(got);
	}
}
