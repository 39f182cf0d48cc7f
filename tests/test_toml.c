/*
 * Unit tests for core/toml: the tree, places (line, column in characters),
 * the typed getters, and the exact message and place of each kind of error.
 * Compliance with the whole of TOML 1.0.0 is toml-test's job (tests/run).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toml.h"

static fl_toml_value *parse_ok(const char *src)
{
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse(src, strlen(src), "t.toml", &err);
	if (!root) {
		char *m = fl_error_format(err);
		cr_assert_fail("unexpected parse error: %s", m);
	}
	return root;
}

/* Parses `len` bytes that must fail with exactly `msg` at line:col. */
static void expect_error_n(const char *src, size_t len, int line, int col, const char *msg)
{
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse(src, len, "t.toml", &err);
	cr_assert_null(root, "parse of %s should fail", src);
	cr_assert_not_null(err);
	cr_expect_str_eq(err->msg, msg);
	cr_expect_eq(err->line, line, "line %d, expected %d (%s)", err->line, line, err->msg);
	cr_expect_eq(err->col, col, "column %d, expected %d (%s)", err->col, col, err->msg);
	cr_expect_str_eq(err->file, "t.toml");
	cr_expect_eq(err->kind, FL_EINPUT);
	cr_expect_null(err->next, "one error per parse");
	fl_error_free(err);
}

static void expect_error(const char *src, int line, int col, const char *msg)
{
	expect_error_n(src, strlen(src), line, col, msg);
}

/* ----------------------------------------------------------------- tree */

Test(toml, document_order_and_nesting)
{
	fl_toml_value *root = parse_ok("zeta = 1\n"
	                               "alpha = \"a\"\n"
	                               "[middle]\n"
	                               "y = true\n"
	                               "x = 2.5\n"
	                               "[[list]]\n"
	                               "n = 1\n"
	                               "[[list]]\n"
	                               "n = 2\n");
	cr_assert_eq(fl_toml_type_of(root), FL_TOML_TABLE);
	cr_assert_eq(fl_toml_len(root), 4);
	cr_expect_str_eq(fl_toml_key_at(root, 0), "zeta");
	cr_expect_str_eq(fl_toml_key_at(root, 1), "alpha");
	cr_expect_str_eq(fl_toml_key_at(root, 2), "middle");
	cr_expect_str_eq(fl_toml_key_at(root, 3), "list");
	cr_expect_null(fl_toml_key_at(root, 4));
	const fl_toml_value *middle = fl_toml_value_at(root, 2);
	cr_expect_str_eq(fl_toml_key_at(middle, 0), "y");
	cr_expect_str_eq(fl_toml_key_at(middle, 1), "x");
	cr_expect_float_eq(fl_toml_float(fl_toml_get(middle, "x")), 2.5, 1e-12);
	const fl_toml_value *list = fl_toml_get(root, "list");
	cr_assert_eq(fl_toml_type_of(list), FL_TOML_ARRAY);
	cr_assert_eq(fl_toml_len(list), 2);
	cr_expect_eq(fl_toml_int(fl_toml_get(fl_toml_at(list, 1), "n")), 2);
	cr_expect_null(fl_toml_at(list, 2));
	fl_toml_free(root);
}

Test(toml, order_of_implicit_tables_is_first_mention)
{
	fl_toml_value *root = parse_ok("[b.c]\n[a]\n[b]\nk = 1\n");
	cr_assert_eq(fl_toml_len(root), 2);
	cr_expect_str_eq(fl_toml_key_at(root, 0), "b");
	cr_expect_str_eq(fl_toml_key_at(root, 1), "a");
	const fl_toml_value *b = fl_toml_get(root, "b");
	cr_expect_str_eq(fl_toml_key_at(b, 0), "c");
	cr_expect_str_eq(fl_toml_key_at(b, 1), "k");
	/* Defined by [b] on line 3: its place is that header. */
	cr_expect_eq(fl_toml_line(b), 3);
	cr_expect_eq(fl_toml_col(b), 1);
	fl_toml_free(root);
}

Test(toml, locations_count_characters_not_bytes)
{
	/* "é" is 2 bytes, "€" 3 and "𝄞" 4, but each is one column. */
	fl_toml_value *root = parse_ok("a = \"é€𝄞\"\n"
	                               "\"ключ\" = 'значение' # комментарий\n"
	                               "  [\"é\".t]\n"
	                               "   k = [\"😀\", 3]\n");
	cr_expect_eq(fl_toml_key_line(root, 0), 1);
	cr_expect_eq(fl_toml_key_col(root, 0), 1);
	cr_expect_eq(fl_toml_key_line(root, 1), 2);
	cr_expect_eq(fl_toml_key_col(root, 1), 1);
	const fl_toml_value *v = fl_toml_value_at(root, 1);
	cr_expect_eq(fl_toml_line(v), 2);
	cr_expect_eq(fl_toml_col(v), 10); /* "ключ" is 6 characters with its quotes */
	cr_expect_str_eq(fl_toml_string(v, NULL), "значение");
	const fl_toml_value *e = fl_toml_get(root, "é");
	cr_assert_not_null(e);
	cr_expect_eq(fl_toml_key_line(root, 2), 3);
	cr_expect_eq(fl_toml_key_col(root, 2), 4);
	const fl_toml_value *t = fl_toml_get(e, "t");
	cr_expect_eq(fl_toml_line(t), 3);
	cr_expect_eq(fl_toml_col(t), 3); /* the '[' of its header */
	const fl_toml_value *k = fl_toml_get(t, "k");
	cr_expect_eq(fl_toml_key_col(t, 0), 4);
	cr_expect_eq(fl_toml_col(k), 8);
	cr_expect_eq(fl_toml_col(fl_toml_at(k, 0)), 9);
	cr_expect_eq(fl_toml_col(fl_toml_at(k, 1)), 14); /* after the 1-column emoji */
	fl_toml_free(root);
}

Test(toml, error_column_after_multibyte_characters)
{
	expect_error("s = \"日本語\" x\n", 1, 11, "expected end of line after value, found 'x'");
}

Test(toml, scalar_values)
{
	fl_toml_value *root = parse_ok("max = 9223372036854775807\n"
	                               "min = -9223372036854775808\n"
	                               "hex = 0xDEAD_beef\n"
	                               "oct = 0o755\n"
	                               "bin = 0b1101\n"
	                               "us = 1_000_000\n"
	                               "f = -6.02e+23\n"
	                               "pinf = +inf\n"
	                               "ninf = -inf\n"
	                               "nan = nan\n"
	                               "t = true\n"
	                               "f2 = false\n");
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "max")), INT64_MAX);
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "min")), INT64_MIN);
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "hex")), 0xDEADBEEF);
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "oct")), 0755);
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "bin")), 13);
	cr_expect_eq(fl_toml_int(fl_toml_get(root, "us")), 1000000);
	cr_expect_float_eq(fl_toml_float(fl_toml_get(root, "f")), -6.02e23, 1e10);
	cr_expect(isinf(fl_toml_float(fl_toml_get(root, "pinf"))));
	cr_expect(fl_toml_float(fl_toml_get(root, "ninf")) < 0);
	cr_expect(isnan(fl_toml_float(fl_toml_get(root, "nan"))));
	cr_expect(fl_toml_bool(fl_toml_get(root, "t")));
	cr_expect_not(fl_toml_bool(fl_toml_get(root, "f2")));
	cr_expect_eq(fl_toml_type_of(fl_toml_get(root, "f")), FL_TOML_FLOAT);
	cr_expect_str_eq(fl_toml_type_name(FL_TOML_BOOL), "boolean");
	cr_expect_str_eq(fl_toml_type_name(FL_TOML_DATETIME), "offset date-time");
	fl_toml_free(root);
}

Test(toml, strings_escapes_and_nul)
{
	fl_toml_value *root = parse_ok("a = \"tab\\there \\\"q\\\" \\u00e9 \\U0001F600 nul:\\u0000!\"\n"
	                               "b = 'C:\\path\\n'\n"
	                               "c = \"\"\"\nline1\\\n     line2\r\nline3\"\"\"\n"
	                               "d = '''\n''quoted'' '''\n"
	                               "e = \"\"\"two quotes at the end\"\"\"\"\"\n");
	size_t len;
	const char *a = fl_toml_string(fl_toml_get(root, "a"), &len);
	const char want[] = "tab\there \"q\" \xc3\xa9 \xf0\x9f\x98\x80 nul:\0!";
	cr_assert_eq(len, sizeof(want) - 1);
	cr_expect_eq(memcmp(a, want, len), 0);
	cr_expect_eq(a[len], '\0');
	cr_expect_str_eq(fl_toml_string(fl_toml_get(root, "b"), NULL), "C:\\path\\n");
	/* First newline dropped, line-ending backslash trims, CRLF becomes LF. */
	cr_expect_str_eq(fl_toml_string(fl_toml_get(root, "c"), NULL), "line1line2\nline3");
	cr_expect_str_eq(fl_toml_string(fl_toml_get(root, "d"), NULL), "''quoted'' ");
	cr_expect_str_eq(fl_toml_string(fl_toml_get(root, "e"), NULL), "two quotes at the end\"\"");
	fl_toml_free(root);
}

Test(toml, key_with_nul_has_a_length)
{
	fl_toml_value *root = parse_ok("\"a\\u0000b\" = 1\n");
	cr_expect_eq(fl_toml_key_len(root, 0), 3);
	cr_expect_eq(memcmp(fl_toml_key_at(root, 0), "a\0b", 3), 0);
	fl_toml_free(root);
}

Test(toml, datetimes)
{
	fl_toml_value *root = parse_ok("odt = 1979-05-27T00:32:00.999999-07:30\n"
	                               "ldt = 1979-05-27 07:32:00\n"
	                               "ld = 2024-02-29\n"
	                               "lt = 23:59:60.5\n");
	const fl_toml_value *odt = fl_toml_get(root, "odt");
	cr_assert_eq(fl_toml_type_of(odt), FL_TOML_DATETIME);
	const fl_toml_datetime *dt = fl_toml_datetime_of(odt);
	cr_expect_eq(dt->year, 1979);
	cr_expect_eq(dt->month, 5);
	cr_expect_eq(dt->day, 27);
	cr_expect_eq(dt->minute, 32);
	cr_expect_eq(dt->nanosecond, 999999000);
	cr_expect_eq(dt->frac_digits, 6);
	cr_expect_eq(dt->offset_minutes, -450);
	cr_expect_eq(fl_toml_type_of(fl_toml_get(root, "ldt")), FL_TOML_DATETIME_LOCAL);
	cr_expect_eq(fl_toml_datetime_of(fl_toml_get(root, "ldt"))->hour, 7);
	cr_expect_eq(fl_toml_type_of(fl_toml_get(root, "ld")), FL_TOML_DATE_LOCAL);
	const fl_toml_value *lt = fl_toml_get(root, "lt");
	cr_expect_eq(fl_toml_type_of(lt), FL_TOML_TIME_LOCAL);
	cr_expect_eq(fl_toml_datetime_of(lt)->second, 60);
	cr_expect_eq(fl_toml_datetime_of(lt)->nanosecond, 500000000);
	fl_toml_free(root);
	/* Digits past nanoseconds are dropped but counted. */
	root = parse_ok("t = 00:00:01.123456789987\n");
	cr_expect_eq(fl_toml_datetime_of(fl_toml_get(root, "t"))->nanosecond, 123456789);
	cr_expect_eq(fl_toml_datetime_of(fl_toml_get(root, "t"))->frac_digits, 12);
	cr_expect_null(fl_toml_datetime_of(root));
	fl_toml_free(root);
}

Test(toml, dotted_keys_inline_tables_and_bom)
{
	fl_toml_value *root = parse_ok("\xef\xbb\xbf"
	                               "a.b.c = 1\n"
	                               "a.b.d = { x = [1, {y = 2}], z.w = 'deep' }\n"
	                               "[a.e]\n");
	const fl_toml_value *b = fl_toml_get(fl_toml_get(root, "a"), "b");
	cr_expect_eq(fl_toml_int(fl_toml_get(b, "c")), 1);
	const fl_toml_value *d = fl_toml_get(b, "d");
	cr_expect_str_eq(fl_toml_string(fl_toml_get(fl_toml_get(d, "z"), "w"), NULL), "deep");
	cr_expect_eq(fl_toml_int(fl_toml_get(fl_toml_at(fl_toml_get(d, "x"), 1), "y")), 2);
	/* The BOM takes no column. */
	cr_expect_eq(fl_toml_key_col(root, 0), 1);
	cr_expect_eq(fl_toml_line(d), 2);
	cr_expect_eq(fl_toml_col(d), 9);
	fl_toml_free(root);
}

Test(toml, huge_table_lookups)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "[big]\n");
	for (int i = 0; i < 20000; i++)
		fl_buf_printf(&b, "key_%d = %d\n", i, i * 3);
	fl_toml_value *root = parse_ok(b.data);
	fl_buf_free(&b);
	const fl_toml_value *big = fl_toml_get(root, "big");
	cr_assert_eq(fl_toml_len(big), 20000);
	for (int i = 0; i < 20000; i += 997) {
		char key[32];
		snprintf(key, sizeof(key), "key_%d", i);
		cr_expect_eq(fl_toml_int(fl_toml_get(big, key)), i * 3);
		cr_expect_str_eq(fl_toml_key_at(big, (size_t)i), key);
		cr_expect_eq(fl_toml_key_line(big, (size_t)i), i + 2);
	}
	cr_expect_null(fl_toml_get(big, "key_20000"));
	cr_expect_null(fl_toml_get(big, "key_"));
	fl_toml_free(root);
}

Test(toml, lookups_on_wrong_kinds_are_null)
{
	fl_toml_value *root = parse_ok("s = 'x'\narr = [1]\n");
	cr_expect_null(fl_toml_get(fl_toml_get(root, "s"), "x"));
	cr_expect_null(fl_toml_at(root, 0));
	cr_expect_eq(fl_toml_len(fl_toml_get(root, "s")), 0);
	cr_expect_null(fl_toml_get(root, "missing"));
	cr_expect_null(fl_toml_key_at(fl_toml_get(root, "arr"), 0));
	fl_toml_free(NULL);
	fl_toml_free(root);
}

Test(toml, filename_is_kept)
{
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse("a = 1", 5, NULL, &err);
	cr_assert_not_null(root);
	cr_expect_str_eq(fl_toml_filename(root), "<input>");
	cr_expect_str_eq(fl_toml_filename(fl_toml_get(root, "a")), "<input>");
	fl_toml_free(root);
	root = fl_toml_parse("a = [", 5, NULL, &err);
	cr_assert_null(root);
	char *m = fl_error_format(err);
	cr_expect_str_eq(m, "<input>:1:5: unterminated array");
	free(m);
	fl_error_free(err);
}

Test(toml, empty_documents)
{
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse(NULL, 0, "t.toml", &err);
	cr_assert_not_null(root);
	cr_expect_eq(fl_toml_len(root), 0);
	cr_expect_eq(fl_toml_line(root), 1);
	fl_toml_free(root);
	root = parse_ok("# only a comment\r\n\r\n   \t\n");
	cr_expect_eq(fl_toml_len(root), 0);
	fl_toml_free(root);
}

Test(toml, parse_file)
{
	char path[] = "/tmp/test_toml_XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char *src = "port = 5432\nbad = \n";
	cr_assert_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
	close(fd);
	fl_error *err = NULL;
	cr_expect_null(fl_toml_parse_file(path, &err));
	cr_assert_not_null(err);
	cr_expect_str_eq(err->file, path);
	cr_expect_eq(err->line, 2);
	cr_expect_eq(err->col, 7);
	cr_expect_str_eq(err->msg, "expected a value after '=', found end of line");
	fl_error_free(err);
	unlink(path);
	err = NULL;
	cr_expect_null(fl_toml_parse_file(path, &err));
	cr_assert_not_null(err);
	char *m = fl_error_format(err);
	char want[128];
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	cr_expect_str_eq(m, want);
	free(m);
	fl_error_free(err);
}

/* ---------------------------------------------------------- typed getters */

Test(toml, typed_getters)
{
	fl_toml_value *root = parse_ok("[db]\n"
	                               "host = \"localhost\"\n"
	                               "port = 5432\n"
	                               "tls = true\n"
	                               "opts = { a = 1 }\n"
	                               "roles = ['x', 'y']\n");
	const fl_toml_value *db;
	fl_error *err = NULL;
	cr_assert_eq(fl_toml_get_table(root, "db", &db, &err), 1);
	const char *s;
	int64_t i;
	bool b;
	const fl_toml_value *t, *a;
	cr_expect_eq(fl_toml_get_string(db, "host", &s, &err), 1);
	cr_expect_str_eq(s, "localhost");
	cr_expect_eq(fl_toml_get_int(db, "port", &i, &err), 1);
	cr_expect_eq(i, 5432);
	cr_expect_eq(fl_toml_get_bool(db, "tls", &b, &err), 1);
	cr_expect(b);
	cr_expect_eq(fl_toml_get_table(db, "opts", &t, &err), 1);
	cr_expect_eq(fl_toml_len(t), 1);
	cr_expect_eq(fl_toml_get_array(db, "roles", &a, &err), 1);
	cr_expect_eq(fl_toml_len(a), 2);
	/* Absent: 0, *out untouched, no error. */
	i = 77;
	cr_expect_eq(fl_toml_get_int(db, "timeout", &i, &err), 0);
	cr_expect_eq(i, 77);
	cr_expect_null(err);
	fl_toml_free(root);
}

Test(toml, typed_getter_errors)
{
	fl_toml_value *root =
	    parse_ok("[db]\nport = \"5432\"\nhost = 1\n  tls = 'yes'\nroles = {}\nopts = [1]\n");
	const fl_toml_value *db = fl_toml_get(root, "db");
	fl_error *err = NULL;
	int64_t i = 5;
	cr_expect_eq(fl_toml_get_int(db, "port", &i, &err), -1);
	cr_expect_eq(i, 5);
	cr_assert_not_null(err);
	char *m = fl_error_format(err);
	cr_expect_str_eq(m, "t.toml:2:8: \"port\" must be an integer, not a string");
	free(m);
	fl_error_free(err);

	const char *s;
	err = NULL;
	cr_expect_eq(fl_toml_get_string(db, "host", &s, &err), -1);
	cr_expect_str_eq(err->msg, "\"host\" must be a string, not an integer");
	cr_expect_eq(err->line, 3);
	cr_expect_eq(err->col, 8);
	fl_error_free(err);

	bool b;
	err = NULL;
	cr_expect_eq(fl_toml_get_bool(db, "tls", &b, &err), -1);
	cr_expect_str_eq(err->msg, "\"tls\" must be a boolean, not a string");
	cr_expect_eq(err->line, 4);
	cr_expect_eq(err->col, 9);
	fl_error_free(err);

	const fl_toml_value *v;
	err = NULL;
	cr_expect_eq(fl_toml_get_array(db, "roles", &v, &err), -1);
	cr_expect_str_eq(err->msg, "\"roles\" must be an array, not a table");
	fl_error_free(err);
	err = NULL;
	cr_expect_eq(fl_toml_get_table(db, "opts", &v, &err), -1);
	cr_expect_str_eq(err->msg, "\"opts\" must be a table, not an array");
	cr_expect_eq(err->line, 6);
	cr_expect_eq(err->col, 8);
	fl_error_free(err);
	fl_toml_free(root);
}

/* ----------------------------------------------------------------- errors */

Test(toml, error_expected_equals)
{
	expect_error("[project]\nowner \"me\"\n", 2, 7, "expected '=' after key \"owner\", found '\"'");
	expect_error("a.b\n", 1, 4, "expected '=' after key \"a.b\", found end of line");
}

Test(toml, error_missing_value)
{
	expect_error("x = # nothing\n", 1, 5, "expected a value after '=', found '#'");
	expect_error("arr = [1,,2]\n", 1, 10, "expected a value, found ','");
}

Test(toml, error_invalid_escape)
{
	expect_error("a = \"x\\qy\"\n", 1, 7, "invalid escape sequence '\\q' in string");
	expect_error("a = \"\\e\"\n", 1, 6, "invalid escape sequence '\\e' in string");
}

Test(toml, error_unicode_escapes)
{
	expect_error("a = \"\\uD800\"\n", 1, 6,
	             "invalid unicode escape '\\uD800': U+D800 is a surrogate, not a character");
	expect_error("a = \"\\U00110000\"\n", 1, 6, "invalid unicode escape '\\U00110000': beyond U+10FFFF");
	expect_error("a = \"\\u12x4\"\n", 1, 6, "invalid unicode escape '\\u12': expected 4 hex digits");
}

Test(toml, error_integer_overflow)
{
	expect_error("n = 9223372036854775808\n", 1, 5,
	             "integer 9223372036854775808 does not fit in 64 bits");
	expect_error("n = -9_223_372_036_854_775_809\n", 1, 5,
	             "integer -9_223_372_036_854_775_809 does not fit in 64 bits");
	expect_error("n = 0x8000000000000000\n", 1, 5, "integer 0x8000000000000000 does not fit in 64 bits");
}

Test(toml, error_number_syntax)
{
	expect_error("n = 012\n", 1, 5, "leading zeros are not allowed in '012'");
	expect_error("n = 1__0\n", 1, 5,
	             "misplaced underscore in number '1__0': underscores must be between digits");
	expect_error("n = -0x1\n", 1, 5, "a sign is not allowed on hexadecimal integer '-0x1'");
	expect_error("n = 1.\n", 1, 5, "invalid float '1.': expected digits after '.'");
	expect_error("n = 1e999\n", 1, 5, "float '1e999' is out of range");
}

Test(toml, error_table_redefined)
{
	expect_error("[a]\nx = 1\n\n[a]\n", 4, 2, "table \"a\" is already defined at line 1");
	expect_error("[fruit]\napple.color = 'red'\n[fruit.apple]\n", 3, 8,
	             "table \"fruit.apple\" is already defined at line 2 (by dotted keys)");
	expect_error("a = {}\n[a]\n", 2, 2, "table \"a\" is already defined at line 1 (as an inline table)");
}

Test(toml, error_duplicate_key)
{
	expect_error("a = 1\nx = 2\nx = 3\n", 3, 1,
	             "duplicate key \"x\" (first defined at line 2, column 1)");
	/* Both places are those of the last part, the key that is repeated. */
	expect_error("t = { a.b = 1, 'a'.\"b\" = 2 }\n", 1, 20,
	             "duplicate key \"a.b\" (first defined at line 1, column 9)");
}

Test(toml, error_invalid_dates_and_times)
{
	expect_error("d = 2021-02-29\n", 1, 5, "invalid date 2021-02-29");
	expect_error("d = 2021-04-31T00:00:00Z\n", 1, 5, "invalid date 2021-04-31");
	expect_error("t = 24:00:00\n", 1, 5, "invalid time 24:00:00");
	expect_error("t = 1979-05-27T07:32\n", 1, 5,
	             "invalid time in '1979-05-27T07:32': seconds are required");
	expect_error("t = 1979-05-27T07:32:00+24:00\n", 1, 5, "invalid time offset +24:00");
	expect_error("t = 07:32:00Z\n", 1, 5, "invalid time '07:32:00Z'");
}

Test(toml, error_leap_year_rules)
{
	fl_toml_value *root = parse_ok("a = 2000-02-29\nb = 2024-02-29\n");
	fl_toml_free(root);
	expect_error("a = 1900-02-29\n", 1, 5, "invalid date 1900-02-29");
}

Test(toml, error_unterminated_strings)
{
	expect_error("a = 1\nb = \"open\n", 2, 5,
	             "unterminated string (a single-line string must end on its line)");
	expect_error("a = '''never closed\n\n", 1, 5, "unterminated string");
	expect_error("a = \"\"\"x\"\"\"\"\"\"\n", 1, 14, "too many quotes at the end of a multi-line string");
}

Test(toml, error_control_characters)
{
	expect_error("a = \"bell\x07\"\n", 1, 10, "control character U+0007 is not allowed in a string");
	expect_error("a = 'del\x7f'\n", 1, 9, "control character U+007F is not allowed in a string");
	expect_error("# ok\n# bad\x01\n", 2, 6, "control character U+0001 is not allowed in a comment");
	expect_error("a = \"\"\"x\ry\"\"\"\n", 1, 9, "control character U+000D is not allowed in a string");
	expect_error_n("a = 1\0\n", 7, 1, 6,
	               "expected end of line after value, found control character U+0000");
}

Test(toml, error_invalid_utf8)
{
	expect_error("a = \"ok\xff\"\n", 1, 8, "invalid UTF-8 byte 0xff");
	expect_error("# \xc0\xaf\n", 1, 3, "invalid UTF-8 byte 0xc0");
	expect_error("a = 'é\xed\xa0\x80'\n", 1, 7, "invalid UTF-8 sequence starting with byte 0xed");
	expect_error("\xfe = 1\n", 1, 1, "invalid UTF-8 byte 0xfe");
}

Test(toml, error_trailing_garbage)
{
	expect_error("a = 1 2\n", 1, 7, "expected end of line after value, found '2'");
	expect_error("[t] x = 1\n", 1, 5, "expected end of line after table header, found 'x'");
}

Test(toml, error_unquoted_and_bad_words)
{
	expect_error("a = hello\n", 1, 5, "invalid value 'hello' (a string must be quoted)");
	expect_error("a = True\n", 1, 5, "invalid value 'True': booleans are lowercase true and false");
}

Test(toml, error_arrays)
{
	expect_error("a = [1, 2\n# no end\n", 1, 5, "unterminated array");
	expect_error("a = [1, 2\n\nb = 3\n", 3, 1, "expected ',' or ']' after an array element, found 'b'");
	expect_error("a = [1 2]\n", 1, 8, "expected ',' or ']' after an array element, found '2'");
	expect_error("a = [1]\n[[a]]\n", 2, 3,
	             "cannot append to \"a\" with [[a]]: it is a static array (line 1, column 1)");
	expect_error("[[a]]\n[a]\n", 2, 2, "\"a\" is already defined as an array of tables at line 1");
	expect_error("a = 1\n[[a]]\n", 2, 3, "\"a\" is already defined as an integer at line 1, column 1");
	expect_error("[a]\n[[a]]\n", 2, 3, "\"a\" is already defined as a table at line 1");
}

Test(toml, error_inline_tables)
{
	expect_error("a = { x = 1, }\n", 1, 12, "trailing comma is not allowed in an inline table");
	expect_error("a = { x = 1\n  }\n", 1, 12,
	             "expected ',' or '}', found end of line (an inline table must be on one line)");
	expect_error("a = { x = 1 }\na.y = 2\n", 2, 1,
	             "cannot add to \"a\": inline tables are closed (defined at line 1, column 5)");
}

Test(toml, error_dotted_key_conflicts)
{
	expect_error("a = 1\na.b = 2\n", 2, 1, "\"a\" is already defined as an integer at line 1, column 1");
	expect_error("[a.b]\n[a]\nb.c = 1\n", 3, 1,
	             "cannot add to table \"b\" with a dotted key: it is already defined at line 1");
	expect_error("x = 'str'\n[x.y]\n", 2, 2, "\"x\" is already defined as a string at line 1, column 1");
}

Test(toml, error_headers)
{
	expect_error("[a\n", 1, 3, "expected ']' after table name \"a\", found end of line");
	expect_error("[[a]\n", 1, 4, "expected ']]' after table name \"a\", found ']'");
	expect_error("[]\n", 1, 2, "expected a table name, found ']'");
	expect_error("[a.]\n", 1, 4, "expected a key after '.', found ']'");
	expect_error("[\"\"\"a\"\"\"]\n", 1, 2, "a multi-line string cannot be used as a key");
}

Test(toml, error_nesting_too_deep)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "a = ");
	for (int i = 0; i < 300; i++)
		fl_buf_putc(&b, '[');
	/* The first '[' is at depth 1, column 5. */
	expect_error(b.data, 1, 4 + 257, "nesting deeper than 256 levels");
	fl_buf_free(&b);
}

Test(toml, error_bare_cr_and_bom_inside)
{
	expect_error("a = 1\rb = 2\n", 1, 6,
	             "expected end of line after value, found control character U+000D");
	expect_error("a = \xef\xbb\xbf"
	             "1\n",
	             1, 5, "expected a value, found '\xef\xbb\xbf' (U+FEFF)");
}
