/*
 * The example migrations in services/: each service's files apply with plain
 * psql to a fresh database in Flyway's order (versioned by version, then
 * repeatables by description), repeatables run again unchanged, nothing is
 * schema-qualified, and undo files take a service back to an empty schema.
 *
 * Files without "-- flotilla:no-transaction" run with --single-transaction,
 * as flotilla runs them, so a statement that cannot run inside a transaction
 * is caught here too. The version order is a small comparator of its own,
 * not core/migration's, so a bug in one cannot hide a bug in the other.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

#define NO_TX_DIRECTIVE "-- flotilla:no-transaction"

static const struct {
	const char *name;
	const char *table; /* one table the migrations must have made */
	const char *view;  /* the view its repeatables make, NULL when it has none */
} services[] = {
    {"auth", "oauth_links", NULL},
    {"client", "client_hierarchy", NULL},
    {"user", "profile_roles", "effective_permissions"},
    {"metric_builder", "metric_formulas", "published_metrics"},
    {"metric_tracker", "metric_values", "latest_metric_values"},
    {"task_builder", "workflow_steps", NULL},
    {"task_tracker", "task_status_history", "open_tasks"},
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

typedef struct {
	char *name;        /* "V2__create_sessions.sql" */
	char *version;     /* "2"; NULL for repeatables */
	char *description; /* "create sessions" */
} mig;

typedef struct {
	mig *items;
	size_t n;
} mig_list;

/*
 * Flyway's order: parts split at '.' or '_', compared as whole numbers of any
 * length (leading zeros ignored, so compared by digit count, then digits); a
 * missing part counts as 0, so 1 = 1.0 = 001.
 */
static int version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		while (*a == '0')
			a++;
		while (*b == '0')
			b++;
		size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
		if (la != lb)
			return la < lb ? -1 : 1;
		int c = strncmp(a, b, la);
		if (c)
			return c < 0 ? -1 : 1;
		a += la;
		b += lb;
		if (*a == '.' || *a == '_')
			a++;
		if (*b == '.' || *b == '_')
			b++;
	}
	return 0;
}

static int by_version(const void *x, const void *y)
{
	return version_cmp(((const mig *)x)->version, ((const mig *)y)->version);
}

static int by_description(const void *x, const void *y)
{
	return strcmp(((const mig *)x)->description, ((const mig *)y)->description);
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	cr_assert(p);
	return p;
}

/* Is `name` a migration of `kind` ('V', 'U' or 'R')? Fills *m when it is. */
static bool classify(const char *name, char kind, mig *m)
{
	size_t len = strlen(name);
	if (name[0] != kind || len < 4 || strcasecmp(name + len - 4, ".sql") != 0)
		return false;
	const char *sep = strstr(name + 1, "__");
	if (!sep)
		return false;
	size_t vlen = (size_t)(sep - (name + 1));
	if ((kind == 'R') != (vlen == 0))
		return false;
	for (size_t i = 1; i <= vlen; i++)
		if (!strchr("0123456789._", name[i]))
			return false;
	m->name = xstrndup(name, len);
	m->version = kind == 'R' ? NULL : xstrndup(name + 1, vlen);
	m->description = xstrndup(sep + 2, (size_t)(name + len - 4 - (sep + 2)));
	for (char *p = m->description; *p; p++)
		if (*p == '_')
			*p = ' ';
	return true;
}

static char *mig_dir(const char *service)
{
	char *dir;
	cr_assert(asprintf(&dir, "%s/services/%s/migrations", th_top(), service) > 0);
	return dir;
}

/* The service's migrations of one kind, in the order Flyway applies them. */
static mig_list list_migs(const char *dir, char kind)
{
	mig_list l = {NULL, 0};
	DIR *d = opendir(dir);
	cr_assert(d, "cannot open %s", dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		mig m;
		if (!classify(e->d_name, kind, &m))
			continue;
		l.items = realloc(l.items, (l.n + 1) * sizeof(mig));
		cr_assert(l.items);
		l.items[l.n++] = m;
	}
	closedir(d);
	if (l.n)
		qsort(l.items, l.n, sizeof(mig), kind == 'R' ? by_description : by_version);
	for (size_t i = 1; i < l.n && kind != 'R'; i++)
		cr_assert_neq(version_cmp(l.items[i - 1].version, l.items[i].version), 0,
		              "%s: %s and %s have the same version", dir, l.items[i - 1].name,
		              l.items[i].name);
	return l;
}

static void mig_list_free(mig_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].version);
		free(l->items[i].description);
	}
	free(l->items);
}

static char *read_mig(const char *dir, const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return th_read(path);
}

static bool is_no_transaction(const char *text)
{
	size_t n = strlen(NO_TX_DIRECTIVE);
	return strncmp(text, NO_TX_DIRECTIVE, n) == 0 &&
	       (text[n] == '\0' || text[n] == '\n' || text[n] == '\r');
}

/*
 * Runs one file with psql, unchanged, into `db` (and `schema` through the
 * search_path when not NULL). psql -q prints nothing on success; anything it
 * says (an error, a NOTICE about a truncated name ...) fails the test.
 */
static void psql_file(const char *db, const char *schema, const char *dir, const char *name)
{
	char *text = read_mig(dir, name);
	bool one_tx = !is_no_transaction(text);
	free(text);
	char opts[128] = "";
	if (schema)
		snprintf(opts, sizeof(opts), "PGOPTIONS='-c search_path=%s' ", schema);
	char *cmd, *out;
	cr_assert(asprintf(&cmd, "%spsql -X -q -v ON_ERROR_STOP=1%s -d '%s' -f '%s/%s'", opts,
	                   one_tx ? " --single-transaction" : "", db, dir, name) > 0);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s failed (exit %d):\n%s", name, rc, out);
	cr_assert_str_empty(out, "%s: psql said:\n%s", name, out);
	free(cmd);
	free(out);
}

static void apply_list(const char *db, const char *schema, const char *dir, const mig_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		psql_file(db, schema, dir, l->items[i].name);
}

/* The names of the relations, routines and types in `schema`, one per line. */
static char *schema_objects(PGconn *c, const char *schema)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT kind || ' ' || name FROM ("
	         " SELECT 'relation' AS kind, relname::text AS name FROM pg_class"
	         "  WHERE relnamespace = '%s'::regnamespace"
	         " UNION ALL SELECT 'routine', proname::text FROM pg_proc"
	         "  WHERE pronamespace = '%s'::regnamespace"
	         " UNION ALL SELECT 'type', typname::text FROM pg_type"
	         "  WHERE typnamespace = '%s'::regnamespace) o ORDER BY 1",
	         schema, schema, schema);
	return th_queryall(c, sql, "\n");
}

static void check_service(size_t i)
{
	const char *svc = services[i].name;
	char *dir = mig_dir(svc);
	mig_list v = list_migs(dir, 'V'), r = list_migs(dir, 'R');
	cr_assert_geq(v.n, 3, "%s has %zu versioned migrations, want at least 3", svc, v.n);
	cr_assert_eq(r.n > 0, services[i].view != NULL, "%s: %zu repeatable files, expected view %s", svc,
	             r.n, services[i].view ? services[i].view : "(none)");

	char *db = th_db_new();
	apply_list(db, NULL, dir, &v);
	apply_list(db, NULL, dir, &r);

	PGconn *c = th_connect(db);
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT table_type FROM information_schema.tables"
	         " WHERE table_schema = 'public' AND table_name = '%s'",
	         services[i].table);
	char *type = th_query1(c, sql);
	cr_assert(type && strcmp(type, "BASE TABLE") == 0, "%s: no table public.%s after %s", svc,
	          services[i].table, v.items[v.n - 1].name);
	free(type);
	if (services[i].view) {
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM information_schema.views"
		         " WHERE table_schema = 'public' AND table_name = '%s'",
		         services[i].view);
		char *n = th_query1(c, sql);
		cr_assert_str_eq(n, "1", "%s: no view public.%s", svc, services[i].view);
		free(n);
	}

	/* Flyway runs a repeatable again whenever it changes, over the old object. */
	apply_list(db, NULL, dir, &r);

	/* A concurrent build that failed halfway leaves an invalid index behind. */
	char *invalid = th_queryall(c,
	                            "SELECT indexrelid::regclass::text FROM pg_index i"
	                            " JOIN pg_class t ON t.oid = i.indrelid"
	                            " WHERE t.relnamespace = 'public'::regnamespace AND NOT i.indisvalid",
	                            ", ");
	cr_assert_str_empty(invalid, "%s: invalid indexes: %s", svc, invalid);
	free(invalid);

	/*
	 * The same files into another schema through the search_path alone
	 * must make the same objects there: nothing names public itself.
	 */
	th_exec(c, "CREATE SCHEMA shadow");
	apply_list(db, "shadow", dir, &v);
	apply_list(db, "shadow", dir, &r);
	char *in_public = schema_objects(c, "public"), *in_shadow = schema_objects(c, "shadow");
	cr_assert(strlen(in_public) > 0);
	cr_assert_str_eq(in_shadow, in_public, "%s: objects differ between schemas", svc);
	free(in_public);
	free(in_shadow);

	PQfinish(c);
	th_db_drop(db);
	free(db);
	mig_list_free(&v);
	mig_list_free(&r);
	free(dir);
}

Test(services_sql, version_order)
{
	cr_assert_lt(version_cmp("1.9", "1.10"), 0);
	cr_assert_gt(version_cmp("10", "9"), 0);
	cr_assert_eq(version_cmp("1", "1.0"), 0);
	cr_assert_eq(version_cmp("001", "1"), 0);
	cr_assert_eq(version_cmp("2_1", "2.1"), 0);
	cr_assert_lt(version_cmp("2", "2.0.1"), 0);
	cr_assert_gt(version_cmp("123456789012345678901234567890", "99999999999999999999"), 0);
}

Test(services_sql, auth, .timeout = 120)
{
	check_service(0);
}

Test(services_sql, client, .timeout = 120)
{
	check_service(1);
}

Test(services_sql, user, .timeout = 120)
{
	check_service(2);
}

Test(services_sql, metric_builder, .timeout = 120)
{
	check_service(3);
}

Test(services_sql, metric_tracker, .timeout = 120)
{
	check_service(4);
}

Test(services_sql, task_builder, .timeout = 120)
{
	check_service(5);
}

Test(services_sql, task_tracker, .timeout = 120)
{
	check_service(6);
}

/*
 * Where a service has undo files, all of them, newest first, after all its
 * versions leave the schema as empty as a new database's.
 */
Test(services_sql, undo_reverses_every_version, .timeout = 180)
{
	size_t with_undo = 0;
	for (size_t i = 0; i < NSERVICES; i++) {
		const char *svc = services[i].name;
		char *dir = mig_dir(svc);
		mig_list v = list_migs(dir, 'V'), u = list_migs(dir, 'U');
		if (u.n == 0) {
			mig_list_free(&v);
			mig_list_free(&u);
			free(dir);
			continue;
		}
		with_undo++;
		for (size_t k = 0; k < u.n; k++) {
			bool found = false;
			for (size_t j = 0; j < v.n && !found; j++)
				found = version_cmp(u.items[k].version, v.items[j].version) == 0;
			cr_assert(found, "%s: %s undoes a version that does not exist", svc, u.items[k].name);
		}

		char *db = th_db_new();
		apply_list(db, NULL, dir, &v);
		PGconn *c = th_connect(db);
		char *n = th_query1(
		    c, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'");
		cr_assert_neq(strcmp(n, "0"), 0, "%s: its versions made no tables", svc);
		free(n);
		for (size_t k = u.n; k-- > 0;)
			psql_file(db, NULL, dir, u.items[k].name);
		n = th_query1(c,
		              "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'");
		cr_assert_str_eq(n, "0", "%s: tables left after undoing every version", svc);
		free(n);
		char *left = schema_objects(c, "public");
		cr_assert_str_empty(left, "%s: left after undoing every version:\n%s", svc, left);
		free(left);
		PQfinish(c);
		th_db_drop(db);
		free(db);
		mig_list_free(&v);
		mig_list_free(&u);
		free(dir);
	}
	cr_assert_geq(with_undo, 2, "only %zu services have undo files", with_undo);
}

/* Does every statement line of a no-transaction file build one index concurrently? */
static void check_no_transaction_file(const char *name, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	cr_assert(copy);
	size_t statements = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || strncmp(line, "--", 2) == 0)
			continue;
		cr_assert(strncmp(line, "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 40) == 0 &&
		              line[len - 1] == ';',
		          "%s: not one CREATE INDEX CONCURRENTLY IF NOT EXISTS per line: %s", name, line);
		statements++;
	}
	cr_assert_gt(statements, 0, "%s: no statements", name);
	free(copy);
}

Test(services_sql, layout_follows_the_conventions)
{
	size_t no_tx = 0, with_view = 0;
	for (size_t i = 0; i < NSERVICES; i++) {
		const char *svc = services[i].name;
		char *dir = mig_dir(svc);
		mig_list v = list_migs(dir, 'V'), u = list_migs(dir, 'U'), r = list_migs(dir, 'R');
		bool indexes = false, service_no_tx = false, view = false;
		const mig_list *all[] = {&v, &u, &r};
		for (size_t k = 0; k < 3; k++) {
			for (size_t j = 0; j < all[k]->n; j++) {
				const char *name = all[k]->items[j].name;
				char *text = read_mig(dir, name);
				/* psql would send a placeholder to the server as it is */
				cr_assert(!th_contains(text, "${"), "%s/%s holds a placeholder", svc, name);
				if (k == 0 && (th_contains(text, "CREATE INDEX") ||
				               th_contains(text, "CREATE UNIQUE INDEX")))
					indexes = true;
				if (is_no_transaction(text)) {
					check_no_transaction_file(name, text);
					service_no_tx = true;
				}
				if (k == 2 && th_contains(text, "CREATE OR REPLACE VIEW"))
					view = true;
				free(text);
			}
		}
		cr_assert(indexes, "%s: no migration adds indexes", svc);
		no_tx += service_no_tx;
		with_view += view;
		mig_list_free(&v);
		mig_list_free(&u);
		mig_list_free(&r);
		free(dir);
	}
	cr_assert_geq(no_tx, 3, "only %zu services build indexes concurrently", no_tx);
	cr_assert_geq(with_view, 3, "only %zu services have a repeatable view", with_view);
}
