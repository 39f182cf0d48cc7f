/* Migration files: Flyway's names, version order and checksum; sets, directives, placeholders. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "harness.h"
#include "migration.h"
#include "sqlsplit.h"

/* "kind version|description", "ignored", or "ERR " and the formatted error. */
static char *parse(const char *name)
{
	fl_mig_kind kind = FL_MIG_VERSIONED;
	char *version = (char *)"x", *description = (char *)"x";
	fl_error *err = NULL;
	int r = fl_migration_parse_name(name, &kind, &version, &description, &err);
	char *out;
	if (r == 0) {
		cr_assert(!version && !description && !err, "%s: ignored but with results", name);
		out = strdup("ignored");
	} else if (r < 0) {
		cr_assert_eq(r, -1);
		cr_assert(err && !version && !description, "%s", name);
		char *m = fl_error_format(err);
		out = fl_asprintf("ERR %s", m);
		free(m);
		fl_error_free(err);
	} else {
		cr_assert_eq(r, 1);
		cr_assert_null(err);
		const char *k = kind == FL_MIG_VERSIONED ? "V" : kind == FL_MIG_UNDO ? "U" : "R";
		out = fl_asprintf("%s %s|%s", k, version ? version : "(null)", description);
		free(version);
		free(description);
	}
	return out;
}

#define PARSES_TO(name, want)                                                                                \
	do {                                                                                                 \
		char *got_ = parse(name);                                                                    \
		cr_assert_str_eq(got_, want, "%s:\ngot:  %s\nwant: %s", name, got_, want);                   \
		free(got_);                                                                                  \
	} while (0)

Test(migration, names)
{
	PARSES_TO("V1__init.sql", "V 1|init");
	PARSES_TO("V1_1__add_users.sql", "V 1.1|add users");
	PARSES_TO("V2.0.10__x_y.SQL", "V 2.0.10|x y");
	PARSES_TO("V001__lead.Sql", "V 001|lead");
	PARSES_TO("U3__undo_it.sql", "U 3|undo it");
	PARSES_TO("R__views.sql", "R (null)|views");
	PARSES_TO("R__refresh_all_the_views.sql", "R (null)|refresh all the views");
	PARSES_TO("sub/dir/V4__x.sql", "V 4|x");
	/* split at the first "__"; the rest is description */
	PARSES_TO("V1__a__b.sql", "V 1|a  b");
	PARSES_TO("V1___x.sql", "V 1| x");
	/* Flyway takes a name without a description */
	PARSES_TO("V5.sql", "V 5|");
	PARSES_TO("V5__.sql", "V 5|");
	PARSES_TO("V12345678901234567890__big.sql", "V 12345678901234567890|big");
}

Test(migration, names_that_are_not_migrations)
{
	const char *names[] = {"README.md",   "notes.txt",  "V1.sql.orig", "v1__lower_prefix.sql",
	                       "Views.sql",   "README.sql", "Undo.sql",    "V1__x.sq",
	                       "x/V1__x.txt", "V.sql",      "sql",         "",
	                       "R.sql",       "V1__x.sql/", "Rx__y.sql",   "docs/V1__x.md"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		PARSES_TO(names[i], "ignored");
}

Test(migration, malformed_names)
{
	PARSES_TO("V2_desc.sql",
	          "ERR V2_desc.sql: a migration name needs two underscores between version and description: "
	          "V2__desc.sql");
	PARSES_TO("sub/V1_1_add_users.sql",
	          "ERR sub/V1_1_add_users.sql: a migration name needs two underscores between version and "
	          "description: V1_1__add_users.sql");
	PARSES_TO("U7.2_fix.SQL",
	          "ERR U7.2_fix.SQL: a migration name needs two underscores between version and "
	          "description: U7.2__fix.SQL");
	PARSES_TO("V1.a__x.sql",
	          "ERR V1.a__x.sql: \"1.a\" is not a version: a version is whole numbers separated "
	          "by . or _ (V1__, V1.2__, V2_10__)");
	PARSES_TO("V1..2__x.sql", "ERR V1..2__x.sql: \"1..2\" is not a version: a version is whole numbers "
	                          "separated by . or _ (V1__, V1.2__, V2_10__)");
	PARSES_TO("V1.__x.sql",
	          "ERR V1.__x.sql: \"1.\" is not a version: a version is whole numbers separated by "
	          ". or _ (V1__, V1.2__, V2_10__)");
	PARSES_TO("U1-2__x.sql",
	          "ERR U1-2__x.sql: \"1-2\" is not a version: a version is whole numbers separated "
	          "by . or _ (U1__, U1.2__, U2_10__)");
	PARSES_TO("V1.sql.sql",
	          "ERR V1.sql.sql: \"1.sql\" is not a version: a version is whole numbers separated "
	          "by . or _ (V1__, V1.2__, V2_10__)");
	PARSES_TO("V__x.sql", "ERR V__x.sql: a migration name needs a version between V and __: V1__x.sql");
	PARSES_TO("U__x.sql", "ERR U__x.sql: a migration name needs a version between U and __: U1__x.sql");
	PARSES_TO("V_1__x.sql",
	          "ERR V_1__x.sql: \"_1\" is not a version: a version is whole numbers separated by "
	          ". or _ (V1__, V1.2__, V2_10__)");
	PARSES_TO("R1__x.sql", "ERR R1__x.sql: a repeatable migration has no version: R__x.sql");
	PARSES_TO("R1_x.sql", "ERR R1_x.sql: a repeatable migration has no version: R__<description>.sql");
	PARSES_TO("R_views.sql", "ERR R_views.sql: a migration name needs two underscores between R and the "
	                         "description: R__views.sql");
	PARSES_TO("R__.sql", "ERR R__.sql: a repeatable migration needs a description: R__<description>.sql");
}

Test(migration, version_order)
{
	/* each is greater than the one before */
	const char *order[] = {"0",   "0.1",  "1",      "1.0.1", "1.1", "1.2",
	                       "1.9", "1.10", "1.10.1", "2",     "10",  "99999999999999999999"};
	size_t n = sizeof(order) / sizeof(order[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = fl_version_compare(order[i], order[j]);
			int want = i < j ? -1 : i > j;
			cr_assert((c > 0) - (c < 0) == want, "%s vs %s: %d", order[i], order[j], c);
		}
	const char *same[][2] = {{"1", "1.0"},         {"1", "001"}, {"1.0", "001.000.0"}, {"1_1", "1.1"},
	                         {"2.0.10", "2_0_10"}, {"0", "0.0"}, {"1.01", "1.1"}};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		cr_assert_eq(fl_version_compare(same[i][0], same[i][1]), 0, "%s vs %s", same[i][0],
		             same[i][1]);
		cr_assert_eq(fl_version_compare(same[i][1], same[i][0]), 0, "%s vs %s", same[i][1],
		             same[i][0]);
	}
	cr_assert_gt(fl_version_compare("1.0.0.1", "1"), 0);
}

Test(migration, checksum_matches_flyway_vectors)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/flyway-compat/checksums.tsv", th_shared());
	char *tsv = th_read(path);
	int count = 0;
	for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
		char *tab = strchr(line, '\t');
		cr_assert(tab, "bad line in checksums.tsv: %s", line);
		*tab = '\0';
		long want = strtol(tab + 1, NULL, 10);
		snprintf(path, sizeof(path), "%s/flyway-compat/vectors/%s", th_shared(), line);
		FILE *f = fopen(path, "rb");
		cr_assert(f, "cannot open %s", path);
		char buf[1 << 16];
		size_t len = fread(buf, 1, sizeof(buf), f);
		cr_assert(feof(f), "%s is larger than the test reads", path);
		fclose(f);
		int32_t got = fl_migration_checksum(buf, len);
		cr_assert_eq(got, want, "%s: checksum %d, Flyway's is %ld", line, got, want);
		count++;
	}
	free(tsv);
	cr_assert_geq(count, 14, "checksums.tsv lists only %d files", count);
}

Test(migration, checksum_details)
{
	cr_assert_eq(fl_migration_checksum("", 0), 0);
	cr_assert_eq(fl_migration_checksum("\xEF\xBB\xBF", 3), 0);
	cr_assert_eq(fl_migration_checksum("\r\n\r\n\n\r", 6), 0);
	/* zlib's crc32 of "SELECT 1", as a signed int */
	cr_assert_eq(fl_migration_checksum("SELECT 1", 8), 1719613851);
	cr_assert_eq(fl_migration_checksum("SELECT\r\n 1\r", 11), fl_migration_checksum("SELECT 1", 8));
	/* only a leading BOM is dropped */
	cr_assert_neq(fl_migration_checksum("a\xEF\xBB\xBF", 4), fl_migration_checksum("a", 1));
	cr_assert_eq(fl_migration_checksum("\xEF\xBB\xBF"
	                                   "a",
	                                   4),
	             fl_migration_checksum("a", 1));
	/* values above 2^31-1 wrap to negative, like Java's int: crc32("a") = 0xE8B7BE43 */
	cr_assert_eq(fl_migration_checksum("a", 1), (int32_t)(0xE8B7BE43u - 0x100000000ull));
	/* spaces count */
	cr_assert_neq(fl_migration_checksum("SELECT 1 ", 9), fl_migration_checksum("SELECT 1", 8));
}

static fl_file mkfile(const char *name, const char *data)
{
	fl_file f;
	f.name = strdup(name);
	f.path = fl_asprintf("services/auth/migrations/%s", name);
	f.data = strdup(data);
	f.len = strlen(data);
	return f;
}

/* Every error of a chain, formatted, one per line. */
static char *errors(const fl_error *err)
{
	fl_buf b;
	fl_buf_init(&b);
	for (; err; err = err->next) {
		char *m = fl_error_format(err);
		fl_buf_printf(&b, "%s\n", m);
		free(m);
	}
	return fl_buf_detach(&b);
}

Test(migration, set_is_sorted_and_owns_the_files)
{
	fl_file files[] = {
	    mkfile("R__b.sql", "SELECT 'b'"),
	    mkfile("V1.10__ten.sql", "SELECT 10"),
	    mkfile("U2__undo_two.sql", "DROP TABLE two"),
	    mkfile("V1.2__two.sql", "SELECT 2"),
	    mkfile("README.md", "# notes"),
	    mkfile("R__a.sql", "SELECT 'a'"),
	    mkfile("V2__z.sql", "CREATE TABLE two ()"),
	    mkfile("sub/V1_1__one_one.sql", "SELECT 1.1"),
	    mkfile("U1.10__undo_ten.sql", "SELECT 0"),
	};
	size_t n = sizeof(files) / sizeof(files[0]);
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(files, n, &err);
	cr_assert_not_null(set, "%s", err ? err->msg : "");
	cr_assert_null(err);
	for (size_t i = 0; i < n; i++)
		cr_assert(!files[i].name && !files[i].path && !files[i].data && !files[i].len,
		          "file %zu not consumed", i);
	const char *want[][3] = {
	    {"1.1", "one one", "sub/V1_1__one_one.sql"},
	    {"1.2", "two", "V1.2__two.sql"},
	    {"1.10", "ten", "V1.10__ten.sql"},
	    {"2", "z", "V2__z.sql"},
	    {"1.10", "undo ten", "U1.10__undo_ten.sql"},
	    {"2", "undo two", "U2__undo_two.sql"},
	    {NULL, "a", "R__a.sql"},
	    {NULL, "b", "R__b.sql"},
	};
	fl_mig_kind kinds[] = {FL_MIG_VERSIONED, FL_MIG_VERSIONED, FL_MIG_VERSIONED,  FL_MIG_VERSIONED,
	                       FL_MIG_UNDO,      FL_MIG_UNDO,      FL_MIG_REPEATABLE, FL_MIG_REPEATABLE};
	cr_assert_eq(set->n, 8);
	for (size_t i = 0; i < set->n; i++) {
		const fl_migration *m = &set->items[i];
		cr_assert_eq(m->kind, kinds[i], "item %zu", i);
		if (want[i][0])
			cr_assert_str_eq(m->version, want[i][0], "item %zu", i);
		else
			cr_assert_null(m->version, "item %zu", i);
		cr_assert_str_eq(m->description, want[i][1]);
		cr_assert_str_eq(m->script, want[i][2]);
		char *path = fl_asprintf("services/auth/migrations/%s", want[i][2]);
		cr_assert_str_eq(m->path, path);
		free(path);
		cr_assert_eq(m->len, strlen(m->data));
		cr_assert_eq(m->checksum, fl_migration_checksum(m->data, m->len));
		cr_assert(!m->no_transaction);
	}
	cr_assert_str_eq(set->items[3].data, "CREATE TABLE two ()");

	const fl_migration *m = fl_migration_find(set, FL_MIG_VERSIONED, "1.01");
	cr_assert(m && strcmp(m->script, "sub/V1_1__one_one.sql") == 0);
	m = fl_migration_find(set, FL_MIG_UNDO, "2.0");
	cr_assert(m && strcmp(m->script, "U2__undo_two.sql") == 0);
	cr_assert_null(fl_migration_find(set, FL_MIG_UNDO, "1.2"));
	cr_assert_null(fl_migration_find(set, FL_MIG_VERSIONED, "3"));
	m = fl_migration_find(set, FL_MIG_REPEATABLE, "b");
	cr_assert(m && strcmp(m->script, "R__b.sql") == 0);
	fl_migration_set_free(set);
}

Test(migration, empty_set)
{
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(NULL, 0, &err);
	cr_assert_not_null(set);
	cr_assert_eq(set->n, 0);
	fl_migration_set_free(set);
	fl_migration_set_free(NULL);
}

Test(migration, duplicate_versions_name_both_files)
{
	fl_file files[] = {
	    mkfile("V1__a.sql", "SELECT 1"),   mkfile("V1.0__b.sql", "SELECT 1"),
	    mkfile("V001__c.sql", "SELECT 1"), mkfile("V2__ok.sql", "SELECT 2"),
	    mkfile("U2__u.sql", "SELECT 2"),   mkfile("U2.0.0__v.sql", "SELECT 2"),
	    mkfile("R__a_b.sql", "SELECT 2"),  mkfile("x/R__a b.sql", "SELECT 2"),
	    mkfile("V3_oops.sql", "SELECT 3"),
	};
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(files, sizeof(files) / sizeof(files[0]), &err);
	cr_assert_null(set);
	char *got = errors(err);
	cr_assert_str_eq(
	    got, "services/auth/migrations/V3_oops.sql: a migration name needs two underscores "
	         "between version and description: V3__oops.sql\n"
	         "services/auth/migrations/V1.0__b.sql: V001__c.sql and V1.0__b.sql have the same version "
	         "001\n"
	         "services/auth/migrations/V1__a.sql: V001__c.sql and V1__a.sql have the same version 001\n"
	         "services/auth/migrations/U2__u.sql: U2.0.0__v.sql and U2__u.sql have the same version "
	         "2.0.0\n"
	         "services/auth/migrations/x/R__a b.sql: R__a_b.sql and x/R__a b.sql have the same "
	         "description \"a b\"\n");
	cr_assert_eq(err->kind, FL_EINPUT);
	free(got);
	fl_error_free(err);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		cr_assert(!files[i].name && !files[i].data, "file %zu not consumed", i);
}

Test(migration, invalid_utf8_and_nul_bytes)
{
	fl_file files[] = {
	    mkfile("V1__latin1.sql", "SELECT 1;\nSELECT 'caf\xE9';"),
	    mkfile("V2__bad_later.sql", "-- é\r\n  SELECT '\xC3\x28'"),
	    mkfile("V3__surrogate.sql", "\xED\xA0\x80"),
	    mkfile("V4__ok.sql", "SELECT 'é'"),
	};
	fl_file nul = {strdup("V5__nul.sql"), NULL, malloc(12), 11};
	memcpy(nul.data, "SELECT 1;\n\0x", 12);
	fl_file all[] = {files[0], files[1], files[2], files[3], nul};
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(all, 5, &err);
	cr_assert_null(set);
	char *got = errors(err);
	cr_assert_str_eq(
	    got, "services/auth/migrations/V1__latin1.sql:2:12: invalid UTF-8 (byte 0xE9): a migration "
	         "must be UTF-8 text\n"
	         "services/auth/migrations/V2__bad_later.sql:2:11: invalid UTF-8 (byte 0xC3): a migration "
	         "must be UTF-8 text\n"
	         "services/auth/migrations/V3__surrogate.sql:1:1: invalid UTF-8 (byte 0xED): a migration "
	         "must be UTF-8 text\n"
	         "V5__nul.sql:2:1: a NUL byte: PostgreSQL cannot take one in SQL text\n");
	free(got);
	fl_error_free(err);
}

static bool no_tx(const char *sql, char **errmsg)
{
	fl_file f = mkfile("V1__x.sql", sql);
	fl_error *err = NULL;
	fl_migration_set *set = fl_migration_set_new(&f, 1, &err);
	*errmsg = err ? errors(err) : NULL;
	fl_error_free(err);
	if (!set)
		return false;
	bool r = set->items[0].no_transaction;
	fl_migration_set_free(set);
	return r;
}

Test(migration, no_transaction_directive)
{
	struct {
		const char *sql;
		bool want;
	} cases[] = {
	    {"-- flotilla:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);", true},
	    {"/* header\n * more */\n-- some text\n--flotilla:no-transaction   because of "
	     "CONCURRENTLY\nSELECT 1",
	     true},
	    {"\xEF\xBB\xBF-- flotilla:no-transaction\r\nSELECT 1", true},
	    {"\n\n\t-- FLOTILLA:No-Transaction\n", true},
	    {"SELECT 1;\n-- flotilla:no-transaction\nSELECT 2", false},
	    {"SELECT '\n-- flotilla:no-transaction\n'", false},
	    {"/* -- flotilla:no-transaction */ SELECT 1", false},
	    {"-- a note about flotilla:no-transaction\nSELECT 1", false},
	    {"-- flotilla: this comment is prose\nSELECT 1", false},
	    {"CREATE INDEX CONCURRENTLY i ON t (a)", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e;
		cr_assert_eq(no_tx(cases[i].sql, &e), cases[i].want, "%s", cases[i].sql);
		cr_assert_null(e, "%s: %s", cases[i].sql, e);
	}
}

Test(migration, misspelt_directive_is_an_error)
{
	char *e;
	cr_assert(!no_tx("-- intro\n   -- flotilla:no-transactions\nSELECT 1", &e));
	cr_assert_str_eq(e,
	                 "services/auth/migrations/V1__x.sql:2:7: unknown directive flotilla:no-transactions "
	                 "(did you mean flotilla:no-transaction?); flotilla knows -- "
	                 "flotilla:no-transaction, -- flotilla:lint-ignore and "
	                 "-- flotilla:lint-ignore-file\n");
	free(e);
	cr_assert(!no_tx("-- flotilla:transactional\nSELECT 1", &e));
	cr_assert_str_eq(e,
	                 "services/auth/migrations/V1__x.sql:1:4: unknown directive flotilla:transactional; "
	                 "flotilla knows -- flotilla:no-transaction, -- flotilla:lint-ignore and "
	                 "-- flotilla:lint-ignore-file\n");
	free(e);
}

/* A migration built by hand, for the placeholder functions (no set needed). */
static fl_migration mig(const char *data)
{
	fl_migration m = {0};
	m.kind = FL_MIG_VERSIONED;
	m.path = (char *)"services/auth/migrations/V1__x.sql";
	m.data = (char *)data;
	m.len = strlen(data);
	return m;
}

static const fl_placeholder PH[] = {
    {"schema", "app"},       {"flyway:defaultSchema", "public"}, {"a.b-c_d:9", "[dots]"}, {"empty", ""},
    {"tenant_name", "acme"},
};
#define NPH (sizeof(PH) / sizeof(PH[0]))

static char *expand(const char *raw, const char *service, char **errmsg)
{
	fl_migration m = mig(raw);
	fl_error *err = NULL;
	size_t len = 12345;
	char *out = fl_migration_expand_service(&m, service, PH, NPH, &len, &err);
	*errmsg = err ? errors(err) : NULL;
	fl_error_free(err);
	if (out)
		cr_assert_eq(len, strlen(out));
	return out;
}

Test(migration, placeholders_are_replaced_everywhere)
{
	char *e;
	char *out = expand(
	    "CREATE SCHEMA ${schema}; -- in ${schema}\n"
	    "SELECT '${flyway:defaultSchema}', \"${a.b-c_d:9}\", $$${empty}$$, $${schema}, ${SCHEMA};\n"
	    "SELECT '${ not one }', '${}', '${schema', '$ {schema}', '${a b}'",
	    NULL, &e);
	cr_assert_null(e, "%s", e);
	cr_assert_str_eq(out, "CREATE SCHEMA app; -- in app\n"
	                      "SELECT 'public', \"[dots]\", $$$$, $app, app;\n"
	                      "SELECT '${ not one }', '${}', '${schema', '$ {schema}', '${a b}'");
	free(out);
	/* a value is not expanded again */
	fl_placeholder loop[] = {{"a", "${b}"}, {"b", "x"}};
	fl_migration m = mig("${a}${b}");
	size_t len;
	fl_error *err = NULL;
	out = fl_migration_expand(&m, loop, 2, &len, &err);
	cr_assert_str_eq(out, "${b}x");
	free(out);
}

Test(migration, unknown_placeholder_is_an_error_at_its_place)
{
	char *e;
	char *out = expand("SELECT 1;\n  SELECT 'é${tenant}', ${tenant}, ${tenant_nme};", "auth", &e);
	cr_assert_null(out);
	cr_assert_str_eq(
	    e, "services/auth/migrations/V1__x.sql:2:12: no value for placeholder ${tenant}; define it "
	       "under [services.auth.placeholders]\n"
	       "services/auth/migrations/V1__x.sql:2:35: no value for placeholder ${tenant_nme} (did you "
	       "mean ${tenant_name}?); define it under [services.auth.placeholders]\n");
	free(e);
	fl_migration m = mig("SELECT ${nope}");
	size_t len;
	fl_error *err = NULL;
	cr_assert_null(fl_migration_expand(&m, PH, NPH, &len, &err));
	char *msg = fl_error_format(err);
	cr_assert_str_eq(
	    msg, "services/auth/migrations/V1__x.sql:1:8: no value for placeholder ${nope}; define it "
	         "under the service's placeholders in the manifest");
	free(msg);
	fl_error_free(err);
}

Test(migration, repeatable_checksum_after_placeholders)
{
	/* t12 with schema = app is t13, whose checksum checksums.tsv gives */
	char path[4096];
	snprintf(path, sizeof(path), "%s/flyway-compat/vectors/t12_placeholder.sql", th_shared());
	char *raw = th_read(path);
	fl_migration m = mig(raw);
	size_t len;
	fl_error *err = NULL;
	char *out = fl_migration_expand(&m, PH, NPH, &len, &err);
	cr_assert_not_null(out);
	snprintf(path, sizeof(path), "%s/flyway-compat/vectors/t13_placeholder_replaced.sql", th_shared());
	char *replaced = th_read(path);
	cr_assert_str_eq(out, replaced);
	cr_assert_eq(fl_migration_checksum(out, len), -242689986);
	cr_assert_eq(fl_migration_checksum(raw, strlen(raw)), -803630205);
	free(out);
	free(replaced);
	free(raw);
}

Test(migration, unexpand_offset)
{
	/* raw:      "SELECT ${schema}.t, ${empty}x, ${tenant_name} ${zzz} y" */
	/* expanded: "SELECT app.t, x, acme ${zzz} y" (${zzz} has no value: kept as it is) */
	const char *raw = "SELECT ${schema}.t, ${empty}x, ${tenant_name} ${zzz} y";
	fl_migration m = mig(raw);
	const char *exp = "SELECT app.t, x, acme ${zzz} y";
	struct {
		const char *at; /* a unique piece of the expanded text */
		const char *raw_at;
	} cases[] = {
	    {"SELECT", "SELECT"},
	    {"app", "${schema}"},
	    {"pp.t", "${schema}"},
	    {".t,", ".t,"},
	    {"x,", "x,"},
	    {"acme", "${tenant_name}"},
	    {"me ", "${tenant_name}"},
	    {" ${zzz}", " ${zzz}"},
	    {"zzz", "zzz"},
	    {" y", " y"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t eo = (size_t)(strstr(exp, cases[i].at) - exp);
		size_t want = (size_t)(strstr(raw, cases[i].raw_at) - raw);
		cr_assert_eq(fl_migration_unexpand_offset(&m, PH, NPH, eo), want, "%s: %zu", cases[i].at,
		             fl_migration_unexpand_offset(&m, PH, NPH, eo));
	}
	cr_assert_eq(fl_migration_unexpand_offset(&m, PH, NPH, strlen(exp)), strlen(raw));
	cr_assert_eq(fl_migration_unexpand_offset(&m, PH, NPH, strlen(exp) + 50), strlen(raw));
}

/*
 * The whole path of a server error: expand, split, the server's 1-based
 * character position in the statement, back to line:col in the raw file.
 */
Test(migration, server_error_position_lands_on_the_raw_file)
{
	const char *raw =
	    "-- é\nCREATE TABLE ${schema}.t (a int);\nINSERT INTO ${schema}.t VALUES ('日本', boom);\n";
	fl_migration m = mig(raw);
	size_t len;
	fl_error *err = NULL;
	char *exp = fl_migration_expand(&m, PH, NPH, &len, &err);
	cr_assert_not_null(exp);
	fl_stmt *st;
	size_t n;
	cr_assert_eq(fl_sqlsplit(exp, len, m.path, &st, &n, &err), 0);
	cr_assert_eq(n, 2);
	/* what the server would say about "boom" in statement 2 */
	const char *stmt = exp + st[1].start;
	size_t stmt_len = st[1].end - st[1].start;
	int charpos = 0;
	for (const char *p = stmt; p < strstr(stmt, "boom"); p++)
		charpos += ((unsigned char)*p & 0xC0) != 0x80;
	charpos += 1;
	size_t off = st[1].start + fl_sql_char_to_byte(stmt, stmt_len, charpos);
	size_t raw_off = fl_migration_unexpand_offset(&m, PH, NPH, off);
	int line, col;
	fl_sql_position(raw, strlen(raw), raw_off, &line, &col);
	cr_assert_eq(line, 3);
	cr_assert_eq(col, 39, "col %d",
	             col); /* "INSERT INTO ${schema}.t VALUES ('日本', " is 38 characters */
	free(st);
	free(exp);
}
