#include "lint.h"

#include <jansson.h>
#include <pg_query.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "history.h"
#include "sqlsplit.h"
#include "text.h"

/* ---- the rules ---- */

enum {
	R_PARSE,
	R_IGNORE,
	R_VOLATILE_DEFAULT,
	R_REQUIRED_COLUMN,
	R_SET_NOT_NULL,
	R_NOT_VALID,
	R_VALIDATE_SAME_TX,
	R_ADD_UNIQUE,
	R_CREATE_INDEX,
	R_DROP_INDEX,
	R_REINDEX,
	R_DETACH,
	R_TYPE_CHANGE,
	R_RENAME_TABLE,
	R_RENAME_COLUMN,
	R_DROP_TABLE,
	R_DROP_COLUMN,
	R_DROP_SCHEMA,
	R_DROP_DATABASE,
	R_DROP_NOT_NULL,
	R_TRUNCATE_CASCADE,
	R_VACUUM_FULL,
	R_CLUSTER,
	R_ENUM_ADD_VALUE,
	R_PREFER_TEXT,
	R_PREFER_TSTZ,
	R_PREFER_IDENTITY,
	R_BIGINT_ID,
	R_IDENT_LONG,
	R_DUP_ASSIGN,
	R_TX_UNBALANCED,
	R_TX_NESTED,
	R_IDEMPOTENT,
	R_READERS,
	R_LOCK_TIMEOUT,
	R_AUTOCOMMIT,
	R_COUNT
};

#define E FL_LINT_ERROR
#define W FL_LINT_WARNING
static const fl_lint_rule RULES[R_COUNT] = {
    {"parse-error", E, "the file does not parse: PostgreSQL would refuse it"},
    {"lint-ignore", W, "a suppression comment names an unknown rule, gives no reason, or silences nothing"},
    {"add-column-volatile-default", E,
     "ADD COLUMN with a volatile default (or any default before PostgreSQL 11) rewrites the table"},
    {"add-column-required", E, "ADD COLUMN ... NOT NULL without a default fails on a table with rows"},
    {"set-not-null", E, "SET NOT NULL scans the table under ACCESS EXCLUSIVE without a validated CHECK"},
    {"constraint-not-valid", E, "a foreign key or CHECK added without NOT VALID scans the table under lock"},
    {"validate-same-transaction", W, "VALIDATE CONSTRAINT in the transaction that added it keeps the lock"},
    {"add-unique-using-index", E, "ADD PRIMARY KEY / UNIQUE without USING INDEX builds the index under lock"},
    {"create-index-concurrently", E, "CREATE INDEX without CONCURRENTLY blocks writes while it builds"},
    {"drop-index-concurrently", W, "DROP INDEX without CONCURRENTLY waits for, then blocks, every query"},
    {"reindex-concurrently", E, "REINDEX without CONCURRENTLY blocks writes (and reads using the index)"},
    {"detach-partition-concurrently", W, "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE"},
    {"alter-column-type", E, "a column type change can rewrite the table and its indexes under lock"},
    {"rename-table", E, "renaming a table or view breaks every client still running the old code"},
    {"rename-column", E, "renaming a column breaks every client still running the old code"},
    {"drop-table", W, "dropping a table breaks clients that still read it"},
    {"drop-column", W, "dropping a column breaks clients that still read it"},
    {"drop-schema", E, "dropping a schema drops everything in it"},
    {"drop-database", E, "dropping a database from a migration"},
    {"drop-not-null", W, "DROP NOT NULL lets NULLs reach clients that assume there are none"},
    {"truncate-cascade", E, "TRUNCATE ... CASCADE empties every table that references it"},
    {"vacuum-full", E, "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE"},
    {"cluster", E, "CLUSTER rewrites the table under ACCESS EXCLUSIVE"},
    {"enum-add-value", W, "ALTER TYPE ... ADD VALUE without BEFORE/AFTER, or in a transaction before 12"},
    {"prefer-text", W, "char(n) and varchar(n): text (with a CHECK when the limit is a rule)"},
    {"prefer-timestamptz", W, "timestamp without time zone: timestamptz"},
    {"prefer-identity", W, "serial types: GENERATED ... AS IDENTITY"},
    {"prefer-bigint-id", W, "integer ids run out: bigint"},
    {"identifier-too-long", E, "an identifier over 63 bytes, which PostgreSQL silently truncates"},
    {"duplicate-column-assignment", E, "one column assigned twice in an INSERT or UPDATE"},
    {"unbalanced-transaction", E, "BEGIN without COMMIT, or COMMIT without BEGIN, in a no-transaction file"},
    {"nested-transaction", E,
     "BEGIN/COMMIT inside the transaction flotilla runs the file in, or nested BEGIN"},
    {"no-transaction-idempotent", W, "a statement of a no-transaction file that cannot run twice"},
    {"cross-service-readers", E, "a drop or rename in a database another service or role reads"},
    {"lock-timeout", W, "SET lock_timeout in a file: flotilla already sets it from the manifest"},
    {"autocommit-file", W, "one statement makes flotilla run the whole file outside a transaction"},
};
#undef E
#undef W

_Static_assert(R_COUNT <= 64, "fl_lint_target.levels has room for 64 rules");

static const char *RULE_NAMES[R_COUNT];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void init_names(void)
{
	for (size_t i = 0; i < R_COUNT; i++)
		RULE_NAMES[i] = RULES[i].name;
}

const fl_lint_rule *fl_lint_rules(size_t *n)
{
	*n = R_COUNT;
	return RULES;
}

const char *const *fl_lint_rule_names(size_t *n)
{
	pthread_once(&names_once, init_names);
	*n = R_COUNT;
	return RULE_NAMES;
}

const fl_lint_rule *fl_lint_rule_find(const char *name)
{
	for (size_t i = 0; i < R_COUNT; i++)
		if (strcmp(RULES[i].name, name) == 0)
			return &RULES[i];
	return NULL;
}

const char *fl_lint_level_name(fl_lint_level l)
{
	return l == FL_LINT_ERROR ? "error" : l == FL_LINT_WARNING ? "warning" : "off";
}

/* ---- the target ---- */

/* "user_db_${env}" -> "user_db": without an environment, the name every environment shares. */
static char *database_shown(const char *db)
{
	fl_buf b;
	fl_buf_init(&b);
	for (const char *p = db; *p;) {
		if (strncmp(p, "${env}", 6) == 0) {
			if (b.len && (b.data[b.len - 1] == '_' || b.data[b.len - 1] == '-'))
				b.data[--b.len] = '\0';
			p += 6;
			continue;
		}
		fl_buf_putc(&b, *p++);
	}
	return fl_buf_detach(&b);
}

static void add_reader(fl_lint_target *t, const char *name, char *const *reads, size_t nreads)
{
	for (size_t i = 0; i < nreads; i++)
		if (strcmp(reads[i], t->service) == 0) {
			t->readers = fl_realloc(t->readers, (t->nreaders + 1) * sizeof(char *));
			t->readers[t->nreaders++] = fl_strdup(name);
			return;
		}
}

void fl_lint_target_init(fl_lint_target *t, const fl_manifest *m, const fl_service *svc, int pg_version)
{
	memset(t, 0, sizeof(*t));
	t->service = fl_strdup(svc->name);
	t->database = m->env ? fl_strdup(svc->database) : database_shown(svc->database);
	for (size_t i = 0; i < m->nservices; i++)
		add_reader(t, m->services[i].name, m->services[i].reads, m->services[i].nreads);
	for (size_t i = 0; i < m->nroles; i++)
		add_reader(t, m->roles[i].name, m->roles[i].reads, m->roles[i].nreads);
	const char *user = m->env && m->env->migrator.user ? m->env->migrator.user : svc->owner;
	t->ph = fl_placeholders_standard(svc->placeholders, svc->nplaceholders, svc->schema, svc->database,
	                                 user, FL_HISTORY_DEFAULT_TABLE, &t->nph);
	t->pg_version = pg_version           ? pg_version
	                : m->lint.pg_version ? m->lint.pg_version
	                                     : FL_LINT_DEFAULT_PG_VERSION;
	t->lock_timeout_ms = m->settings.lock_timeout_ms;
	for (size_t i = 0; i < R_COUNT; i++)
		t->levels[i] = RULES[i].level;
	for (size_t i = 0; i < m->lint.nrules; i++) {
		const fl_lint_rule *r = fl_lint_rule_find(m->lint.rules[i].rule);
		const char *lv = m->lint.rules[i].level;
		if (!r)
			continue;
		t->levels[r - RULES] = strcmp(lv, "error") == 0     ? FL_LINT_ERROR
		                       : strcmp(lv, "warning") == 0 ? FL_LINT_WARNING
		                                                    : FL_LINT_OFF;
		t->from_version[r - RULES] = m->lint.rules[i].from_version;
	}
}

void fl_lint_target_clear(fl_lint_target *t)
{
	free(t->service);
	free(t->database);
	for (size_t i = 0; i < t->nreaders; i++)
		free(t->readers[i]);
	free(t->readers);
	free(t->ph);
	memset(t, 0, sizeof(*t));
}

/* ---- one file ---- */

/* NOT VALID CHECK (col IS NOT NULL) constraints of a target's files: "table.constraint:column". */
struct learned {
	const fl_lint_target **t;
	char **key;
	size_t n;
};

typedef struct {
	int rule;
	size_t off;  /* in the expanded text */
	size_t stmt; /* the statement it belongs to (suppressions); SIZE_MAX: the file */
	char *msg;
	char *hint;
} raw_finding;

#define WHOLE_FILE SIZE_MAX
/* a finding a later statement of the file made moot */
#define R_WITHDRAWN (-1)

typedef struct {
	char *rule;
	size_t off;
	size_t stmt; /* WHOLE_FILE for lint-ignore-file; nstmts: no statement follows */
	bool used;
} suppression;

typedef struct {
	const fl_lint_target *t;
	const fl_migration *m;
	const char *text; /* placeholders replaced */
	size_t len;
	const fl_placeholder *ph;
	size_t nph;
	bool in_tx; /* flotilla runs the file in one transaction */
	fl_stmt *st;
	size_t nst;
	size_t cur;     /* the statement being judged */
	size_t cur_end; /* where its text ends */
	/* what this file has done so far: "t:table", "i:index", "v:table.constraint" (NOT VALID),
	 * "k:table.constraint:column" (a NOT VALID IS NOT NULL check), "n:table.column" (validated) */
	char **names;
	size_t nnames;
	int tx_depth;
	size_t begin_off;
	raw_finding *f;
	size_t nf;
	suppression *sup;
	size_t nsup;
	const struct learned *learned; /* from the service's other files */
} file_ctx;

static void remember(file_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void remember(file_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = fl_vasprintf(fmt, ap);
	va_end(ap);
	c->names = fl_realloc(c->names, (c->nnames + 1) * sizeof(char *));
	c->names[c->nnames++] = s;
}

/* The remembered name starting with prefix (exactly it when whole), or NULL. */
static const char *recall(const file_ctx *c, bool whole, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *recall(const file_ctx *c, bool whole, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = fl_vasprintf(fmt, ap);
	va_end(ap);
	size_t n = strlen(s);
	const char *hit = NULL;
	for (size_t i = 0; i < c->nnames && !hit; i++)
		if (whole ? strcmp(c->names[i], s) == 0 : strncmp(c->names[i], s, n) == 0)
			hit = c->names[i] + n;
	free(s);
	return hit;
}

static bool created(const file_ctx *c, const char *table)
{
	return table && recall(c, true, "t:%s", table);
}

static void finding(file_ctx *c, int rule, size_t off, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void finding(file_ctx *c, int rule, size_t off, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	c->f = fl_realloc(c->f, (c->nf + 1) * sizeof(*c->f));
	raw_finding *r = &c->f[c->nf++];
	r->rule = rule;
	r->off = off;
	r->stmt = c->cur;
	r->msg = fl_vasprintf(fmt, ap);
	r->hint = hint ? fl_strdup(hint) : NULL;
	va_end(ap);
}

/* ---- the parse tree (libpg_query's JSON) ---- */

static json_t *jget(json_t *o, const char *k)
{
	return json_is_object(o) ? json_object_get(o, k) : NULL;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = jget(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jtrue(json_t *o, const char *k)
{
	return json_is_true(jget(o, k));
}

static bool jis(json_t *o, const char *k, const char *want)
{
	const char *s = jstr(o, k);
	return s && strcmp(s, want) == 0;
}

/* A node is {"Type": {...}}: its type and fields. */
static const char *node(json_t *n, json_t **fields)
{
	*fields = NULL;
	if (!json_is_object(n) || json_object_size(n) != 1)
		return NULL;
	void *it = json_object_iter(n);
	*fields = json_object_iter_value(it);
	return json_object_iter_key(it);
}

/* The fields of n when it is a node of that type. */
static json_t *as(json_t *n, const char *type)
{
	json_t *f;
	const char *t = node(n, &f);
	return t && strcmp(t, type) == 0 ? f : NULL;
}

/* A parse-tree location (a byte offset) or the current statement's start. */
static size_t at(const file_ctx *c, json_t *o)
{
	json_t *v = jget(o, "location");
	if (json_is_integer(v) && json_integer_value(v) >= 0 && (size_t)json_integer_value(v) < c->len)
		return (size_t)json_integer_value(v);
	return c->cur < c->nst ? c->st[c->cur].start : 0;
}

static size_t stmt_start(const file_ctx *c)
{
	return c->cur < c->nst ? c->st[c->cur].start : 0;
}

/* The last name of a list of String nodes ("pg_catalog"."varchar" -> "varchar"). */
static const char *last_name(json_t *list)
{
	size_t n = json_array_size(list);
	return n ? jstr(as(json_array_get(list, n - 1), "String"), "sval") : NULL;
}

/* "schema.table" from a list of String nodes; caller frees. */
static char *dotted(json_t *list)
{
	fl_buf b;
	fl_buf_init(&b);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *s = jstr(as(json_array_get(list, i), "String"), "sval");
		if (s)
			fl_buf_printf(&b, "%s%s", b.len ? "." : "", s);
	}
	return fl_buf_detach(&b);
}

/* ---- shared phrases ---- */

static char *readers_phrase(const fl_lint_target *t)
{
	fl_buf b;
	fl_buf_init(&b);
	for (size_t i = 0; i < t->nreaders; i++)
		fl_buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == t->nreaders ? " and " : ", ", t->readers[i]);
	fl_buf_printf(&b, " read%s %s", t->nreaders == 1 ? "s" : "", t->database);
	return fl_buf_detach(&b);
}

/* A drop or rename other services see: the cross-service rule when someone reads the
 * database, else the generic rule. */
static void breaking(file_ctx *c, int generic, size_t off, const char *hint, const char *what)
{
	if (c->t->nreaders) {
		char *who = readers_phrase(c->t);
		finding(
		    c, R_READERS, off,
		    "add the new shape beside the old one now, ship the readers, and drop the old one in a "
		    "later release",
		    "%s: %s breaks %s queries until %s; expand first, contract in a later release", who, what,
		    c->t->nreaders == 1 ? "its" : "their", c->t->nreaders == 1 ? "it ships" : "they ship");
		free(who);
		return;
	}
	finding(c, generic, off, hint, "%s breaks clients still running the old code", what);
}

void fl_lint_lock_timeout_text(int ms, char out[64])
{
	if (ms == 0)
		snprintf(out, 64, "no lock_timeout");
	else if (ms % 60000 == 0)
		snprintf(out, 64, "lock_timeout %dmin", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(out, 64, "lock_timeout %ds", ms / 1000);
	else
		snprintf(out, 64, "lock_timeout %dms", ms);
}

/* ---- column definitions ---- */

static bool is_int_type(const char *t)
{
	return strcmp(t, "int4") == 0 || strcmp(t, "int2") == 0 || strcmp(t, "serial") == 0 ||
	       strcmp(t, "serial4") == 0 || strcmp(t, "smallserial") == 0 || strcmp(t, "serial2") == 0;
}

static bool is_serial(const char *t)
{
	static const char *const s[] = {"serial",  "serial4",     "bigserial",
	                                "serial8", "smallserial", "serial2"};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (strcmp(t, s[i]) == 0)
			return true;
	return false;
}

static void column_type(file_ctx *c, const char *col, json_t *tn)
{
	if (!tn)
		return;
	const char *ty = last_name(jget(tn, "names"));
	if (!ty)
		return;
	size_t off = at(c, tn);
	bool qualified = json_array_size(jget(tn, "names")) == 2;
	bool len = json_array_size(jget(tn, "typmods")) > 0;
	if (qualified && strcmp(ty, "bpchar") == 0)
		finding(c, R_PREFER_TEXT, off, "text (with CHECK (length(col) = n) if the length is a rule)",
		        "column %s is char(n): it pads with spaces, compares oddly, and its length is a "
		        "rewrite to change",
		        col);
	else if (qualified && strcmp(ty, "varchar") == 0 && len)
		finding(c, R_PREFER_TEXT, off, "text (with CHECK (length(col) <= n) if the limit is a rule)",
		        "column %s is varchar(n): raising the limit later takes an ACCESS EXCLUSIVE lock and "
		        "lowering it rewrites the table",
		        col);
	else if (qualified && strcmp(ty, "timestamp") == 0)
		finding(c, R_PREFER_TSTZ, off, "timestamptz (timestamp with time zone)",
		        "column %s is timestamp without time zone: the values mean whatever time zone each "
		        "writer happened to use",
		        col);
	if (is_serial(ty))
		finding(
		    c, R_PREFER_IDENTITY, off, "bigint GENERATED ALWAYS AS IDENTITY",
		    "column %s is %s: its sequence is a separate object with its own owner and grants, and "
		    "copying the table does not carry it",
		    col, ty);
	if (is_int_type(ty) &&
	    (strcmp(col, "id") == 0 || (strlen(col) > 3 && !strcmp(col + strlen(col) - 3, "_id"))))
		finding(
		    c, R_BIGINT_ID, off, "bigint (bigint GENERATED ALWAYS AS IDENTITY for a key)",
		    "id column %s is %s: 2^31 values run out, and widening it later rewrites the table and "
		    "every table that references it",
		    col, strcmp(ty, "int2") == 0 ? "smallint" : "integer");
}

/* Functions PostgreSQL marks volatile that defaults commonly use; an unknown function is
 * given the benefit of the doubt (lint cannot see its definition). */
static bool volatile_expr(json_t *e)
{
	static const char *const fns[] = {
	    "random",           "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
	    "uuid_generate_v4", "clock_timestamp", "timeofday",        "nextval",
	    "txid_current",     "random_normal"};
	if (json_is_array(e)) {
		for (size_t i = 0; i < json_array_size(e); i++)
			if (volatile_expr(json_array_get(e, i)))
				return true;
		return false;
	}
	if (!json_is_object(e))
		return false;
	json_t *fc = as(e, "FuncCall");
	if (fc) {
		const char *name = last_name(jget(fc, "funcname"));
		for (size_t i = 0; name && i < sizeof(fns) / sizeof(fns[0]); i++)
			if (strcmp(name, fns[i]) == 0)
				return true;
	}
	for (void *it = json_object_iter(e); it; it = json_object_iter_next(e, it))
		if (volatile_expr(json_object_iter_value(it)))
			return true;
	return false;
}

static bool is_null_const(json_t *e)
{
	json_t *a = as(e, "A_Const");
	return a && jtrue(a, "isnull");
}

static void add_column(file_ctx *c, const char *table, json_t *cmd, json_t *cd)
{
	const char *col = jstr(cd, "colname");
	if (!col)
		return;
	const char *ty = last_name(jget(jget(cd, "typeName"), "names"));
	column_type(c, col, jget(cd, "typeName"));
	size_t off = at(c, cd);
	if (!c->in_tx && !jtrue(cmd, "missing_ok"))
		finding(c, R_IDEMPOTENT, off, "ADD COLUMN IF NOT EXISTS",
		        "ADD COLUMN %s runs outside a transaction here: run again after a later statement "
		        "failed, it fails because the column exists",
		        col);
	if (created(c, table))
		return;
	bool not_null = false, has_default = false, rewrites = false;
	const char *why = NULL;
	json_t *cons = jget(cd, "constraints");
	for (size_t i = 0; i < json_array_size(cons); i++) {
		json_t *k = as(json_array_get(cons, i), "Constraint");
		if (jis(k, "contype", "CONSTR_NOTNULL") || jis(k, "contype", "CONSTR_PRIMARY"))
			not_null = true;
		if (jis(k, "contype", "CONSTR_DEFAULT") && !is_null_const(jget(k, "raw_expr"))) {
			has_default = true;
			if (c->t->pg_version < 11) {
				rewrites = true;
				why = "before PostgreSQL 11 any default is written into every row";
			} else if (volatile_expr(jget(k, "raw_expr"))) {
				rewrites = true;
				why = "its default is volatile, so every row gets its own value";
			}
		}
		if (jis(k, "contype", "CONSTR_IDENTITY")) {
			has_default = rewrites = true;
			why = "an identity column gives every existing row a value from its sequence";
		}
		if (jis(k, "contype", "CONSTR_GENERATED")) {
			has_default = rewrites = true;
			why = "a stored generated column is computed for every existing row";
		}
	}
	if (ty && is_serial(ty)) {
		has_default = rewrites = true;
		why = "a serial column's default is nextval(), volatile, so every row gets its own value";
	}
	if (rewrites)
		finding(c, R_VOLATILE_DEFAULT, off,
		        "add the column without a default (or with a constant one), set the default, then "
		        "backfill existing rows in batches",
		        "ADD COLUMN %s rewrites %s under ACCESS EXCLUSIVE: %s", col, table, why);
	if (not_null && !has_default)
		finding(
		    c, R_REQUIRED_COLUMN, off,
		    "add it nullable (or with a constant DEFAULT), backfill, then add NOT NULL in a later "
		    "migration",
		    "ADD COLUMN %s NOT NULL without a default fails as soon as %s has a row", col, table);
}

/* CHECK (col IS NOT NULL): the column, or NULL. */
static const char *not_null_check(json_t *k)
{
	json_t *nt = as(jget(k, "raw_expr"), "NullTest");
	if (!nt || !jis(nt, "nulltesttype", "IS_NOT_NULL"))
		return NULL;
	json_t *cr = as(jget(nt, "arg"), "ColumnRef");
	json_t *fields = jget(cr, "fields");
	return json_array_size(fields) == 1 ? last_name(fields) : NULL;
}

static void add_constraint(file_ctx *c, const char *table, json_t *k)
{
	size_t off = at(c, k);
	const char *name = jstr(k, "conname");
	bool fresh = created(c, table);
	if (jis(k, "contype", "CONSTR_FOREIGN") || jis(k, "contype", "CONSTR_CHECK")) {
		bool fk = jis(k, "contype", "CONSTR_FOREIGN");
		const char *nn = fk ? NULL : not_null_check(k);
		if (jtrue(k, "skip_validation")) {
			if (name) {
				remember(c, "v:%s.%s", table, name);
				if (nn)
					remember(c, "k:%s.%s:%s", table, name, nn);
			}
		} else {
			if (nn)
				remember(c, "n:%s.%s", table, nn);
			if (!fresh)
				finding(
				    c, R_NOT_VALID, off,
				    "ADD CONSTRAINT ... NOT VALID here, then VALIDATE CONSTRAINT in a later "
				    "migration",
				    "%s %s is checked against every row of %s while %s",
				    fk ? "FOREIGN KEY" : "CHECK", name ? name : "", table,
				    fk ? "both tables are locked against writes" : "writes to it wait");
		}
	} else if (jis(k, "contype", "CONSTR_PRIMARY") || jis(k, "contype", "CONSTR_UNIQUE")) {
		bool pk = jis(k, "contype", "CONSTR_PRIMARY");
		if (!fresh && !jstr(k, "indexname"))
			finding(c, R_ADD_UNIQUE, off,
			        "CREATE UNIQUE INDEX CONCURRENTLY first (its own migration), then ADD "
			        "CONSTRAINT ... "
			        "USING INDEX",
			        "ADD %s on %s builds its index while holding ACCESS EXCLUSIVE: no reads or "
			        "writes "
			        "until it is done",
			        pk ? "PRIMARY KEY" : "UNIQUE", table);
	}
}

static void validate_constraint(file_ctx *c, const char *table, const char *name, size_t here)
{
	if (c->in_tx && recall(c, true, "v:%s.%s", table, name))
		finding(c, R_VALIDATE_SAME_TX, here,
		        "validate in a later migration, so the lock of ADD CONSTRAINT is released first",
		        "VALIDATE CONSTRAINT %s runs in the transaction that added it NOT VALID: the lock "
		        "taken by the ADD is held for the whole scan",
		        name);
	const char *col = recall(c, false, "k:%s.%s:", table, name);
	char *key = fl_asprintf("%s.%s:", table, name);
	for (size_t i = 0; !col && c->learned && i < c->learned->n; i++)
		if (c->learned->t[i] == c->t && strncmp(c->learned->key[i], key, strlen(key)) == 0)
			col = c->learned->key[i] + strlen(key);
	free(key);
	if (col)
		remember(c, "n:%s.%s", table, col);
}

/*
 * Where each of ALTER TABLE's subcommands starts: the parse tree gives most
 * of them no place, but they stand in the text in the tree's order,
 * separated by commas outside parentheses, quotes and comments.
 */
static size_t *cmd_starts(const file_ctx *c, json_t *rel, size_t ncmds)
{
	size_t *at_ = fl_calloc(ncmds + 1, sizeof(size_t));
	size_t i = at(c, rel), end = c->cur_end, k = 0;
	for (size_t j = 0; j <= ncmds; j++)
		at_[j] = stmt_start(c);
	/* past the table's name ("s"."t", s.t) and the blanks after it */
	while (i < end && (c->text[i] == '"' || c->text[i] == '.' || c->text[i] == '_' || c->text[i] == '$' ||
	                   (unsigned char)c->text[i] >= 0x80 || (c->text[i] >= '0' && c->text[i] <= '9') ||
	                   ((c->text[i] | 0x20) >= 'a' && (c->text[i] | 0x20) <= 'z'))) {
		if (c->text[i] == '"')
			for (i++; i < end && c->text[i] != '"'; i++)
				;
		i++;
	}
	int depth = 0;
	bool want = true;
	for (; i < end && k < ncmds; i++) {
		char ch = c->text[i];
		size_t past = fl_sqlsplit_skip_comment(c->text, end, i);
		if (past > i) {
			i = past - 1;
			continue;
		}
		if (want && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '*') {
			at_[k++] = i;
			want = false;
		}
		if (ch == '\'' || ch == '"') {
			for (i++; i < end && c->text[i] != ch; i++)
				;
		} else if (ch == '(') {
			depth++;
		} else if (ch == ')') {
			depth--;
		} else if (ch == ',' && depth == 0) {
			want = true;
		}
	}
	return at_;
}

static void alter_table(file_ctx *c, json_t *s)
{
	if (!jis(s, "objtype", "OBJECT_TABLE"))
		return;
	json_t *rel = jget(s, "relation");
	const char *table = jstr(rel, "relname");
	if (!table)
		return;
	bool fresh = created(c, table);
	json_t *cmds = jget(s, "cmds");
	size_t *starts = cmd_starts(c, rel, json_array_size(cmds));
	for (size_t i = 0; i < json_array_size(cmds); i++) {
		json_t *cmd = as(json_array_get(cmds, i), "AlterTableCmd");
		const char *sub = jstr(cmd, "subtype"), *name = jstr(cmd, "name");
		size_t here = starts[i];
		if (!sub)
			continue;
		json_t *def = jget(cmd, "def");
		if (strcmp(sub, "AT_AddColumn") == 0) {
			add_column(c, table, cmd, as(def, "ColumnDef"));
		} else if (strcmp(sub, "AT_AddConstraint") == 0) {
			add_constraint(c, table, as(def, "Constraint"));
		} else if (strcmp(sub, "AT_ValidateConstraint") == 0 && name) {
			validate_constraint(c, table, name, here);
		} else if (strcmp(sub, "AT_SetNotNull") == 0 && name && !fresh) {
			if (c->t->pg_version >= 12 && recall(c, true, "n:%s.%s", table, name))
				continue;
			if (c->t->pg_version >= 12)
				finding(c, R_SET_NOT_NULL, here,
				        "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE "
				        "CONSTRAINT c; "
				        "then SET NOT NULL (no scan) and DROP CONSTRAINT c",
				        "SET NOT NULL on %s.%s scans the whole table under ACCESS EXCLUSIVE",
				        table, name);
			else
				finding(c, R_SET_NOT_NULL, here,
				        "keep a validated CHECK (col IS NOT NULL) instead (PostgreSQL 12 and "
				        "later use "
				        "it to skip the scan)",
				        "SET NOT NULL on %s.%s scans the whole table under ACCESS EXCLUSIVE "
				        "(before "
				        "PostgreSQL 12 no CHECK spares the scan)",
				        table, name);
		} else if (strcmp(sub, "AT_DropNotNull") == 0 && name && !fresh) {
			finding(c, R_DROP_NOT_NULL, here,
			        "ship readers that handle NULL in %s first, then drop NOT NULL",
			        "DROP NOT NULL on %s.%s lets NULLs reach code that assumes there are none",
			        table, name);
		} else if (strcmp(sub, "AT_AlterColumnType") == 0 && name) {
			json_t *cd = as(def, "ColumnDef");
			column_type(c, name, jget(cd, "typeName"));
			if (!fresh)
				finding(c, R_TYPE_CHANGE, here,
				        "add a column of the new type, backfill it in batches, switch "
				        "readers, drop the "
				        "old one later",
				        "changing the type of %s.%s rewrites %s and its indexes under ACCESS "
				        "EXCLUSIVE "
				        "unless the types are binary-compatible (varchar(n) to a longer "
				        "varchar or text)",
				        table, name, table);
		} else if (strcmp(sub, "AT_DropColumn") == 0 && name) {
			if (!c->in_tx && !jtrue(cmd, "missing_ok"))
				finding(
				    c, R_IDEMPOTENT, here, "DROP COLUMN IF EXISTS",
				    "DROP COLUMN %s runs outside a transaction here: run again after a later "
				    "statement failed, it fails because the column is gone",
				    name);
			if (!fresh) {
				char *what = fl_asprintf("dropping column %s.%s", table, name);
				breaking(c, R_DROP_COLUMN, here,
				         "stop reading the column in every client first; drop it in a later "
				         "release",
				         what);
				free(what);
			}
		} else if (strcmp(sub, "AT_DetachPartition") == 0) {
			json_t *pc = as(def, "PartitionCmd");
			if (pc && jtrue(pc, "concurrent") && c->in_tx)
				finding(c, R_DETACH, at(c, jget(pc, "name")),
				        "mark the file -- flotilla:no-transaction (flotilla does not see "
				        "this form as "
				        "one that refuses a transaction)",
				        "DETACH PARTITION %s CONCURRENTLY cannot run inside a transaction "
				        "block, and "
				        "flotilla runs this file in one",
				        jstr(jget(pc, "name"), "relname"));
			else if (pc && !jtrue(pc, "concurrent"))
				finding(c, R_DETACH, at(c, jget(pc, "name")),
				        c->t->pg_version >= 14 ? "ALTER TABLE ... DETACH PARTITION ... "
				                                 "CONCURRENTLY, in a no-transaction file"
				                               : "there is no concurrent form before "
				                                 "PostgreSQL 14: detach when the table is "
				                                 "quiet",
				        "DETACH PARTITION %s takes ACCESS EXCLUSIVE on %s",
				        jstr(jget(pc, "name"), "relname"), table);
		}
	}
	free(starts);
}

static void create_table(file_ctx *c, json_t *s)
{
	json_t *rel = jget(s, "relation");
	const char *table = jstr(rel, "relname");
	if (!table)
		return;
	if (!c->in_tx && !jtrue(s, "if_not_exists"))
		finding(c, R_IDEMPOTENT, at(c, rel), "CREATE TABLE IF NOT EXISTS",
		        "CREATE TABLE %s runs outside a transaction here: run again after a later statement "
		        "failed, it fails because the table exists",
		        table);
	remember(c, "t:%s", table);
	json_t *elts = jget(s, "tableElts");
	for (size_t i = 0; i < json_array_size(elts); i++) {
		json_t *cd = as(json_array_get(elts, i), "ColumnDef");
		if (cd && jstr(cd, "colname"))
			column_type(c, jstr(cd, "colname"), jget(cd, "typeName"));
	}
}

static void create_index(file_ctx *c, json_t *s)
{
	json_t *rel = jget(s, "relation");
	const char *table = jstr(rel, "relname"), *idx = jstr(s, "idxname");
	if (idx)
		remember(c, "i:%s", idx);
	if (!c->in_tx && !jtrue(s, "if_not_exists") && idx)
		finding(
		    c, R_IDEMPOTENT, stmt_start(c), "CREATE INDEX CONCURRENTLY IF NOT EXISTS",
		    "CREATE INDEX %s runs outside a transaction here: run again after it failed, it fails "
		    "because the index exists",
		    idx);
	if (!jtrue(s, "concurrent") && table && !created(c, table))
		finding(c, R_CREATE_INDEX, stmt_start(c),
		        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ..., in a migration of its own (flotilla "
		        "then runs "
		        "it outside a transaction)",
		        "CREATE INDEX%s%s on %s blocks every write to %s until the index is built",
		        idx ? " " : "", idx ? idx : "", table, table);
}

static void drop(file_ctx *c, json_t *s)
{
	const char *type = jstr(s, "removeType");
	json_t *objs = jget(s, "objects");
	if (!type)
		return;
	bool missing_ok = jtrue(s, "missing_ok");
	for (size_t i = 0; i < json_array_size(objs); i++) {
		json_t *o = json_array_get(objs, i);
		json_t *list = jget(as(o, "List"), "items");
		char *name =
		    list ? dotted(list)
		         : fl_strdup(jstr(as(o, "String"), "sval") ? jstr(as(o, "String"), "sval") : "?");
		const char *base = list ? last_name(list) : name;
		const char *kind = NULL;
		if (strcmp(type, "OBJECT_INDEX") == 0) {
			kind = "index";
			if (!jtrue(s, "concurrent") && !recall(c, true, "i:%s", base))
				finding(c, R_DROP_INDEX, stmt_start(c),
				        "DROP INDEX CONCURRENTLY IF EXISTS, in a migration of its own",
				        "DROP INDEX %s waits for every query on its table, and every query "
				        "after it waits "
				        "for the drop",
				        name);
		} else if (strcmp(type, "OBJECT_TABLE") == 0 || strcmp(type, "OBJECT_VIEW") == 0 ||
		           strcmp(type, "OBJECT_MATVIEW") == 0) {
			kind = strcmp(type, "OBJECT_TABLE") == 0  ? "table"
			       : strcmp(type, "OBJECT_VIEW") == 0 ? "view"
			                                          : "materialized view";
			if (!created(c, base)) {
				char *what = fl_asprintf("dropping %s %s", kind, name);
				if (strcmp(kind, "table") == 0 || c->t->nreaders)
					breaking(c, R_DROP_TABLE, stmt_start(c),
					         "stop reading it in every client first; drop it in a later "
					         "release",
					         what);
				/* a view dropped to be created again (a repeatable migration): readers see
				 * neither step when both commit together, so the CREATE withdraws it */
				if (strcmp(kind, "table") != 0 && c->t->nreaders)
					remember(c, "dv:%s=%zu", base, c->nf - 1);
				free(what);
			}
		} else if (strcmp(type, "OBJECT_SCHEMA") == 0) {
			kind = "schema";
			finding(c, R_DROP_SCHEMA, stmt_start(c),
			        "drop the objects one by one, each once nothing uses it",
			        "DROP SCHEMA %s%s drops the schema%s", name,
			        jis(s, "behavior", "DROP_CASCADE") ? " CASCADE" : "",
			        jis(s, "behavior", "DROP_CASCADE") ? " and everything in it" : "");
		} else if (strcmp(type, "OBJECT_SEQUENCE") == 0) {
			kind = "sequence";
		} else if (strcmp(type, "OBJECT_TYPE") == 0) {
			kind = "type";
		} else if (strcmp(type, "OBJECT_FUNCTION") == 0) {
			kind = "function";
		}
		if (kind && !c->in_tx && !missing_ok)
			finding(c, R_IDEMPOTENT, stmt_start(c), "DROP ... IF EXISTS",
			        "DROP %s %s runs outside a transaction here: run again after a later "
			        "statement failed, "
			        "it fails because the %s is gone",
			        kind, name, kind);
		free(name);
	}
}

static void rename_stmt(file_ctx *c, json_t *s)
{
	const char *type = jstr(s, "renameType"), *nn = jstr(s, "newname");
	json_t *rel = jget(s, "relation");
	const char *table = jstr(rel, "relname");
	if (!type || !table || !nn || created(c, table))
		return;
	if (strcmp(type, "OBJECT_TABLE") == 0 || strcmp(type, "OBJECT_VIEW") == 0 ||
	    strcmp(type, "OBJECT_MATVIEW") == 0) {
		char *what = fl_asprintf("renaming %s %s to %s",
		                         strcmp(type, "OBJECT_TABLE") == 0 ? "table" : "view", table, nn);
		breaking(c, R_RENAME_TABLE, at(c, rel),
		         "create the new name beside the old (a view on the old name), move the clients, "
		         "then drop "
		         "the old name in a later release",
		         what);
		free(what);
	} else if (strcmp(type, "OBJECT_COLUMN") == 0 && jstr(s, "subname")) {
		char *what = fl_asprintf("renaming column %s.%s to %s", table, jstr(s, "subname"), nn);
		breaking(
		    c, R_RENAME_COLUMN, at(c, rel),
		    "add the new column, write both, backfill, move the readers, then drop the old column in "
		    "a later release",
		    what);
		free(what);
	}
}

static bool has_option(json_t *opts, const char *name, json_t **where)
{
	for (size_t i = 0; i < json_array_size(opts); i++) {
		json_t *d = as(json_array_get(opts, i), "DefElem");
		if (d && jis(d, "defname", name)) {
			*where = d;
			return true;
		}
	}
	return false;
}

static void reindex(file_ctx *c, json_t *s)
{
	json_t *d;
	if (has_option(jget(s, "params"), "concurrently", &d))
		return;
	const char *name = jstr(jget(s, "relation"), "relname");
	if (name && (created(c, name) || recall(c, true, "i:%s", name)))
		return;
	finding(
	    c, R_REINDEX, stmt_start(c),
	    c->t->pg_version >= 12
	        ? "REINDEX ... CONCURRENTLY, in a no-transaction file"
	        : "before PostgreSQL 12: CREATE INDEX CONCURRENTLY a copy, then DROP INDEX CONCURRENTLY the "
	          "old one",
	    "REINDEX %s blocks writes to the table, and reads that would use the index, until it is done",
	    name ? name : "");
}

static void alter_enum(file_ctx *c, json_t *s)
{
	const char *val = jstr(s, "newVal");
	if (!val || jstr(s, "oldVal"))
		return; /* RENAME VALUE */
	char *type = dotted(jget(s, "typeName"));
	if (c->t->pg_version < 12 && c->in_tx)
		finding(
		    c, R_ENUM_ADD_VALUE, stmt_start(c),
		    "put it in a -- flotilla:no-transaction file of its own",
		    "ALTER TYPE %s ADD VALUE cannot run inside a transaction block before PostgreSQL 12, and "
		    "flotilla runs this file in one",
		    type);
	else if (!jstr(s, "newValNeighbor"))
		finding(
		    c, R_ENUM_ADD_VALUE, stmt_start(c),
		    "ALTER TYPE ... ADD VALUE 'v' BEFORE 'x' (or AFTER 'y')",
		    "ALTER TYPE %s ADD VALUE '%s' says nothing of where the value goes: it sorts after every "
		    "existing value, which ORDER BY and comparisons on the column then follow",
		    type, val);
	if (!c->in_tx && !jtrue(s, "skipIfNewValExists"))
		finding(c, R_IDEMPOTENT, stmt_start(c), "ALTER TYPE ... ADD VALUE IF NOT EXISTS",
		        "ADD VALUE '%s' runs outside a transaction here: run again after a later statement "
		        "failed, "
		        "it fails because the value exists",
		        val);
	free(type);
}

static void transaction(file_ctx *c, json_t *s)
{
	const char *k = jstr(s, "kind");
	if (!k)
		return;
	bool begin = strcmp(k, "TRANS_STMT_BEGIN") == 0 || strcmp(k, "TRANS_STMT_START") == 0;
	bool end = strcmp(k, "TRANS_STMT_COMMIT") == 0 || strcmp(k, "TRANS_STMT_ROLLBACK") == 0 ||
	           strcmp(k, "TRANS_STMT_PREPARE") == 0;
	if (!begin && !end)
		return;
	if (c->in_tx) {
		finding(
		    c, R_TX_NESTED, stmt_start(c),
		    "leave transaction control to flotilla: take BEGIN/COMMIT out, or mark the file -- "
		    "flotilla:no-transaction",
		    "%s inside the transaction flotilla runs this file in: %s", begin ? "BEGIN" : "COMMIT",
		    begin ? "PostgreSQL ignores it with a warning, and the COMMIT that goes with it ends "
		            "flotilla's transaction before the history row is written"
		          : "it ends flotilla's transaction early, so the rest of the file and its history "
		            "row no longer commit together");
		return;
	}
	if (begin) {
		if (c->tx_depth > 0)
			finding(c, R_TX_NESTED, stmt_start(c), "COMMIT the open transaction first",
			        "BEGIN inside a transaction that is still open: PostgreSQL ignores it, and "
			        "the first "
			        "COMMIT ends both");
		else
			c->begin_off = stmt_start(c);
		c->tx_depth = 1;
	} else {
		if (c->tx_depth == 0)
			finding(c, R_TX_UNBALANCED, stmt_start(c),
			        "take it out, or add the BEGIN it belongs to",
			        "%s without BEGIN: there is no transaction to end here",
			        strcmp(k, "TRANS_STMT_ROLLBACK") == 0 ? "ROLLBACK" : "COMMIT");
		c->tx_depth = 0;
	}
}

static void set_var(file_ctx *c, json_t *s)
{
	if (!jis(s, "name", "lock_timeout"))
		return;
	char lt[64];
	fl_lint_lock_timeout_text(c->t->lock_timeout_ms, lt);
	json_t *args = jget(s, "args");
	json_t *a = as(json_array_get(args, 0), "A_Const");
	bool zero =
	    a && ((jget(a, "ival") && !json_integer_value(jget(jget(a, "ival"), "ival"))) ||
	          (jget(a, "sval") &&
	           strcmp(jstr(jget(a, "sval"), "sval") ? jstr(jget(a, "sval"), "sval") : "", "0") == 0));
	finding(c, R_LOCK_TIMEOUT, stmt_start(c),
	        "take it out: set lock_timeout in the manifest's [settings] if another value is needed",
	        "flotilla already runs every statement of this service with %s (manifest [settings]); "
	        "this SET overrides that for the rest of the file%s",
	        lt,
	        zero ? ", and 0 turns it off: a blocked statement then waits forever while every query "
	               "behind it queues"
	             : "");
}

static void dup_targets(file_ctx *c, json_t *list, const char *what)
{
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *r = as(json_array_get(list, i), "ResTarget");
		const char *n = jstr(r, "name");
		if (!n)
			continue;
		for (size_t j = 0; j < i; j++)
			if (jis(as(json_array_get(list, j), "ResTarget"), "name", n)) {
				finding(c, R_DUP_ASSIGN, at(c, r), "assign each column once",
				        "column %s is assigned twice in this %s: PostgreSQL refuses the "
				        "statement "
				        "(multiple assignments to same column)",
				        n, what);
				break;
			}
	}
}

/* Statements of a no-transaction file that fail when run a second time. */
static void idempotent_create(file_ctx *c, const char *type, json_t *s)
{
	if (c->in_tx)
		return;
	const char *what = NULL, *hint = NULL;
	if (strcmp(type, "CreateSchemaStmt") == 0 && !jtrue(s, "if_not_exists"))
		what = "CREATE SCHEMA", hint = "CREATE SCHEMA IF NOT EXISTS";
	else if (strcmp(type, "CreateSeqStmt") == 0 && !jtrue(s, "if_not_exists"))
		what = "CREATE SEQUENCE", hint = "CREATE SEQUENCE IF NOT EXISTS";
	else if (strcmp(type, "CreateExtensionStmt") == 0 && !jtrue(s, "if_not_exists"))
		what = "CREATE EXTENSION", hint = "CREATE EXTENSION IF NOT EXISTS";
	else if (strcmp(type, "ViewStmt") == 0 && !jtrue(s, "replace"))
		what = "CREATE VIEW", hint = "CREATE OR REPLACE VIEW";
	else if (strcmp(type, "CreateFunctionStmt") == 0 && !jtrue(s, "replace"))
		what = "CREATE FUNCTION", hint = "CREATE OR REPLACE FUNCTION";
	else if (strcmp(type, "CreateEnumStmt") == 0)
		what = "CREATE TYPE",
		hint = "DO $$ BEGIN CREATE TYPE ...; EXCEPTION WHEN duplicate_object THEN NULL; END $$";
	if (what)
		finding(
		    c, R_IDEMPOTENT, stmt_start(c), hint,
		    "%s runs outside a transaction here: run again after a later statement failed, it fails "
		    "because the object exists",
		    what);
}

/*
 * PostgreSQL cuts identifiers to 63 bytes while parsing, so the tree holds
 * the cut name: a 63-byte name whose text goes on is one that was longer.
 */
static void long_identifiers(file_ctx *c, json_t *v, size_t from, size_t to)
{
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			long_identifiers(c, json_array_get(v, i), from, to);
		return;
	}
	if (json_is_object(v)) {
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
			long_identifiers(c, json_object_iter_value(it), from, to);
		return;
	}
	if (!json_is_string(v) || json_string_length(v) != FL_MANIFEST_MAX_NAME)
		return;
	const char *id = json_string_value(v);
	for (size_t p = from; p + FL_MANIFEST_MAX_NAME < to; p++) {
		if (strncasecmp(c->text + p, id, FL_MANIFEST_MAX_NAME) != 0)
			continue;
		unsigned char nx = (unsigned char)c->text[p + FL_MANIFEST_MAX_NAME];
		bool quoted = p > 0 && c->text[p - 1] == '"';
		bool goes_on = quoted ? nx != '"'
		                      : (nx == '_' || nx == '$' || nx >= 0x80 || (nx >= '0' && nx <= '9') ||
		                         ((nx | 0x20) >= 'a' && (nx | 0x20) <= 'z'));
		if (!goes_on)
			continue;
		size_t e = p + FL_MANIFEST_MAX_NAME;
		while (e < to && (quoted ? c->text[e] != '"'
		                         : (c->text[e] == '_' || c->text[e] == '$' ||
		                            (unsigned char)c->text[e] >= 0x80 ||
		                            (c->text[e] >= '0' && c->text[e] <= '9') ||
		                            ((c->text[e] | 0x20) >= 'a' && (c->text[e] | 0x20) <= 'z'))))
			e++;
		finding(
		    c, R_IDENT_LONG, p, "a name of at most 63 bytes",
		    "identifier %.*s... is %zu bytes: PostgreSQL silently cuts it to its first 63, so the "
		    "catalog's name differs from the file's and two long names can collide",
		    20, c->text + p, e - p);
		return;
	}
}

static void judge(file_ctx *c, json_t *stmt, size_t end)
{
	c->cur_end = end;
	json_t *s;
	const char *type = node(stmt, &s);
	if (!type)
		return;
	if (strcmp(type, "CreateStmt") == 0)
		create_table(c, s);
	else if (strcmp(type, "AlterTableStmt") == 0)
		alter_table(c, s);
	else if (strcmp(type, "IndexStmt") == 0)
		create_index(c, s);
	else if (strcmp(type, "DropStmt") == 0)
		drop(c, s);
	else if (strcmp(type, "DropdbStmt") == 0)
		finding(c, R_DROP_DATABASE, stmt_start(c), "drop databases by hand, never from a migration",
		        "DROP DATABASE %s from a migration", jstr(s, "dbname") ? jstr(s, "dbname") : "");
	else if (strcmp(type, "RenameStmt") == 0)
		rename_stmt(c, s);
	else if (strcmp(type, "TruncateStmt") == 0 && jis(s, "behavior", "DROP_CASCADE"))
		finding(c, R_TRUNCATE_CASCADE, stmt_start(c),
		        "TRUNCATE only the tables you name (without CASCADE)",
		        "TRUNCATE ... CASCADE also empties every table with a foreign key to these, whatever "
		        "service's data they hold");
	else if (strcmp(type, "VacuumStmt") == 0 && jtrue(s, "is_vacuumcmd")) {
		json_t *d;
		if (has_option(jget(s, "options"), "full", &d))
			finding(c, R_VACUUM_FULL, at(c, d), "plain VACUUM (or pg_repack) outside migrations",
			        "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE: no reads or writes "
			        "until it "
			        "is done");
	} else if (strcmp(type, "ClusterStmt") == 0)
		finding(
		    c, R_CLUSTER, stmt_start(c), "pg_repack, or leave the physical order alone",
		    "CLUSTER rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it is done");
	else if (strcmp(type, "ReindexStmt") == 0)
		reindex(c, s);
	else if (strcmp(type, "AlterEnumStmt") == 0)
		alter_enum(c, s);
	else if (strcmp(type, "TransactionStmt") == 0)
		transaction(c, s);
	else if (strcmp(type, "VariableSetStmt") == 0)
		set_var(c, s);
	else if (strcmp(type, "UpdateStmt") == 0)
		dup_targets(c, jget(s, "targetList"), "UPDATE");
	else if (strcmp(type, "ViewStmt") == 0 || strcmp(type, "CreateTableAsStmt") == 0) {
		json_t *rel = jget(s, "view") ? jget(s, "view") : jget(jget(s, "into"), "rel");
		const char *name = jstr(rel, "relname");
		const char *dropped = name && c->in_tx ? recall(c, false, "dv:%s=", name) : NULL;
		if (dropped)
			c->f[strtoul(dropped, NULL, 10)].rule = R_WITHDRAWN;
		idempotent_create(c, type, s);
	} else if (strcmp(type, "InsertStmt") == 0) {
		dup_targets(c, jget(s, "cols"), "INSERT");
		dup_targets(c, jget(jget(s, "onConflictClause"), "targetList"), "ON CONFLICT DO UPDATE");
	} else
		idempotent_create(c, type, s);
	long_identifiers(c, s, stmt_start(c), end);
}

/* ---- suppressions ---- */

static bool word_char(char ch)
{
	return ch && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != ',';
}

/* One "-- flotilla:lint-ignore[-file] RULE[,RULE] reason" comment at off..e. */
static void suppression_comment(file_ctx *c, size_t off, size_t e, size_t stmt)
{
	size_t i = off + 2;
	while (i < e && (c->text[i] == ' ' || c->text[i] == '\t'))
		i++;
	static const char tag[] = "flotilla:lint-ignore";
	size_t tl = sizeof(tag) - 1;
	if (e - i < tl || strncasecmp(c->text + i, tag, tl) != 0)
		return;
	i += tl;
	if (e - i >= 5 && strncasecmp(c->text + i, "-file", 5) == 0) {
		stmt = WHOLE_FILE;
		i += 5;
	}
	if (i < e && c->text[i] != ' ' && c->text[i] != '\t')
		return; /* another directive; migration.c judges those */
	size_t save = c->cur;
	c->cur = stmt == WHOLE_FILE ? WHOLE_FILE : stmt;
	size_t nrules = 0, first = c->nsup;
	for (;;) {
		while (i < e && (c->text[i] == ' ' || c->text[i] == '\t' || c->text[i] == ','))
			i++;
		size_t w = i;
		while (i < e && word_char(c->text[i]))
			i++;
		if (i == w)
			break;
		char *name = fl_strndup(c->text + w, i - w);
		nrules++;
		if (!fl_lint_rule_find(name)) {
			size_t n;
			const char *const *names = fl_lint_rule_names(&n);
			const char *near = fl_text_suggest(name, names, n);
			finding(c, R_IGNORE, w, "see docs/lint.md for the rules' names",
			        "lint-ignore names an unknown rule '%s'%s%s%s", name,
			        near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
			free(name);
		} else {
			c->sup = fl_realloc(c->sup, (c->nsup + 1) * sizeof(*c->sup));
			c->sup[c->nsup++] = (suppression){.rule = name, .off = w, .stmt = stmt};
		}
		if (i >= e || c->text[i] != ',')
			break;
	}
	while (i < e && (c->text[i] == ' ' || c->text[i] == '\t'))
		i++;
	if (nrules == 0)
		finding(c, R_IGNORE, off, "-- flotilla:lint-ignore RULE why it is safe here",
		        "lint-ignore names no rule");
	else if (i >= e)
		finding(c, R_IGNORE, off, "-- flotilla:lint-ignore RULE why it is safe here",
		        "lint-ignore gives no reason: say why the statement is safe here");
	if (nrules && i >= e)
		for (size_t k = first; k < c->nsup; k++)
			c->sup[k].used = true; /* reported once, as unreasoned */
	c->cur = save;
}

/* Comments between statements (and before the first, after the last). */
static void find_suppressions(file_ctx *c)
{
	for (size_t g = 0; g <= c->nst; g++) {
		size_t a = g == 0 ? 0 : c->st[g - 1].end, b = g < c->nst ? c->st[g].start : c->len;
		for (size_t i = a; i < b;) {
			if (c->text[i] == '-' && i + 1 < b && c->text[i + 1] == '-') {
				size_t e = fl_sqlsplit_skip_comment(c->text, b, i);
				/* on the line where the previous statement ends: that statement's */
				bool same_line = g > 0;
				for (size_t k = a; k < i && same_line; k++)
					same_line = c->text[k] != '\n' && c->text[k] != '\r';
				suppression_comment(c, i, e, same_line ? g - 1 : g);
				i = e;
			} else if (c->text[i] == '/' && i + 1 < b && c->text[i + 1] == '*') {
				size_t e = fl_sqlsplit_skip_comment(c->text, b, i);
				i = e > i ? e : i + 1;
			} else {
				i++;
			}
		}
	}
}

static bool suppressed(file_ctx *c, const raw_finding *f)
{
	if (f->rule == R_IGNORE || f->rule == R_PARSE)
		return false;
	bool hit = false;
	for (size_t i = 0; i < c->nsup; i++) {
		suppression *s = &c->sup[i];
		if (strcmp(s->rule, RULES[f->rule].name) == 0 &&
		    (s->stmt == WHOLE_FILE || s->stmt == f->stmt)) {
			s->used = true;
			hit = true;
		}
	}
	return hit;
}

/* ---- how flotilla will run the file ---- */

static void raw_place(const file_ctx *c, size_t off, int *line, int *col)
{
	size_t raw = off;
	if (c->text != c->m->data)
		raw = fl_migration_unexpand_offset(c->m, c->ph, c->nph, off);
	fl_sql_position(c->m->data, c->m->len, raw, line, col);
}

static void run_mode(file_ctx *c)
{
	size_t first = SIZE_MAX, nother = 0;
	bool *refuses = fl_calloc(c->nst + 1, sizeof(bool));
	for (size_t i = 0; i < c->nst; i++) {
		refuses[i] =
		    fl_sql_refuses_transaction(c->text + c->st[i].start, c->st[i].end - c->st[i].start);
		if (refuses[i] && first == SIZE_MAX)
			first = i;
		nother += !refuses[i];
	}
	c->in_tx = !c->m->no_transaction && first == SIZE_MAX;
	if (c->m->no_transaction || first == SIZE_MAX || nother == 0) {
		free(refuses);
		return;
	}
	fl_buf lines;
	fl_buf_init(&lines);
	size_t k = 0;
	for (size_t i = 0; i < c->nst; i++) {
		if (refuses[i])
			continue;
		int line, col;
		raw_place(c, c->st[i].start, &line, &col);
		k++;
		if (k <= 10)
			fl_buf_printf(&lines, "%s%d", k == 1 ? "" : k == nother ? " and " : ", ", line);
		else if (k == 11)
			fl_buf_printf(&lines, " and %zu more", nother - 10);
	}
	const char *s = c->text + c->st[first].start;
	size_t n = c->st[first].end - c->st[first].start, w = 0;
	while (w < n && w < 40 && s[w] != '\n' && s[w] != '\r')
		w++;
	c->cur = first;
	finding(c, R_AUTOCOMMIT, c->st[first].start,
	        "move the other statements into a migration of their own, or mark this file -- "
	        "flotilla:no-transaction if running it statement by statement is meant",
	        "PostgreSQL refuses %.*s%s inside a transaction, so flotilla runs this whole file statement "
	        "by statement: the %zu other statement%s (line%s %s) then commit one by one, and a failure "
	        "leaves the ones before it applied",
	        (int)w, s, w < n ? "..." : "", nother, nother == 1 ? "" : "s", nother == 1 ? "" : "s",
	        lines.data);
	fl_buf_free(&lines);
	free(refuses);
}

/* ---- one file, start to end ---- */

typedef struct {
	fl_lint_finding *items;
	size_t n;
	fl_error *err;
} file_result;

static int by_place(const void *x, const void *y)
{
	const fl_lint_finding *a = x, *b = y;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return strcmp(a->rule->name, b->rule->name);
}

static void parse_failure(file_ctx *c, const char *msg, size_t off)
{
	c->cur = WHOLE_FILE;
	finding(c, R_PARSE, off, NULL, "%s", msg);
}

/*
 * The parse tree arrives as one JSON text, and building it into values is
 * most of lint's time. Data statements (INSERT ... SELECT of a seed or a
 * backfill) are most of a typical file and need only their column lists, so
 * the text is cut into its statements and those get only the fields a rule
 * reads. The cut is a bracket count that skips strings: the text is
 * libpg_query's, so it is well formed.
 */
static const char *json_end(const char *p, const char *end)
{
	int depth = 0;
	for (; p < end; p++) {
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return end;
}

/* Could the statement hold an identifier of 63 bytes or more? (Runs of name characters.) */
static bool maybe_long_name(const file_ctx *c, size_t from, size_t to)
{
	size_t run = 0;
	for (size_t i = from; i < to; i++) {
		unsigned char ch = (unsigned char)c->text[i];
		bool name = ch == '_' || ch == '$' || ch >= 0x80 || (ch >= '0' && ch <= '9') ||
		            ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') || ch == '"' || ch == ' ';
		run = name ? run + 1 : 0;
		if (run >= FL_MANIFEST_MAX_NAME)
			return true;
	}
	return false;
}

/* {"Type": {only the fields named}} out of a statement's JSON text. */
static json_t *load_some(const char *type, const char *p, const char *end, const char *const *keys)
{
	json_t *fields = json_object();
	/* p is just inside the Type's object: "key":value,... */
	while (p < end && *p != '}') {
		if (*p == ',' || *p == ' ') {
			p++;
			continue;
		}
		const char *k = p + 1, *ke = memchr(k, '"', (size_t)(end - k));
		if (!ke)
			break;
		const char *v = ke + 2, *ve = v;
		if (*v == '{' || *v == '[')
			ve = json_end(v, end);
		else if (*v == '"') {
			for (ve = v + 1; ve < end && *ve != '"'; ve++)
				if (*ve == '\\')
					ve++;
			ve++;
		} else
			while (ve < end && *ve != ',' && *ve != '}')
				ve++;
		for (size_t i = 0; keys[i]; i++)
			if (strlen(keys[i]) == (size_t)(ke - k) && memcmp(keys[i], k, (size_t)(ke - k)) == 0)
				json_object_set_new(fields, keys[i],
				                    json_loadb(v, (size_t)(ve - v), JSON_DECODE_ANY, NULL));
		p = ve;
	}
	json_t *n = json_object();
	json_object_set_new(n, type, fields);
	return n;
}

static long json_field_int(const char *p, const char *end, const char *key)
{
	size_t kl = strlen(key);
	for (; p + kl < end; p++)
		if (*p == '"' && memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"')
			return strtol(p + kl + 3, NULL, 10);
	return 0;
}

static void lint_parsed(file_ctx *c, const char *tree)
{
	static const char *const insert_keys[] = {"relation", "cols", "onConflictClause", NULL};
	static const char *const update_keys[] = {"relation", "targetList", NULL};
	static const char *const no_keys[] = {NULL};
	const char *end = tree + strlen(tree);
	const char *p = strstr(tree, "\"stmts\":[");
	size_t si = 0;
	for (p = p ? p + 9 : end; p < end && *p != ']';) {
		if (*p != '{') {
			p++;
			continue;
		}
		const char *ee = json_end(p, end);
		/* ...}},"stmt_location":N,"stmt_len":M}: both follow the statement, at the element's end */
		const char *tail = ee - p > 64 ? ee - 64 : p;
		size_t from = (size_t)json_field_int(tail, ee, "stmt_location");
		long sl = json_field_int(tail, ee, "stmt_len");
		size_t to = sl > 0 ? from + (size_t)sl : c->len;
		if (to > c->len)
			to = c->len;
		/* the splitter's statement that starts in this range: its start skips comments */
		while (si < c->nst && c->st[si].start < from)
			si++;
		c->cur = si < c->nst && c->st[si].start < (to > from ? to : from + 1) ? si : c->nst;
		/* p: {"stmt":{"Type":{ */
		const char *ts = p + 10, *te = memchr(ts, '"', (size_t)(ee - ts));
		char type[40] = "";
		if (te && te - ts < (ptrdiff_t)sizeof(type))
			memcpy(type, ts, (size_t)(te - ts)), type[te - ts] = '\0';
		const char *const *keys = strcmp(type, "InsertStmt") == 0   ? insert_keys
		                          : strcmp(type, "UpdateStmt") == 0 ? update_keys
		                          : strcmp(type, "SelectStmt") == 0 || strcmp(type, "DeleteStmt") == 0
		                              ? no_keys
		                              : NULL;
		json_t *stmt;
		if (keys && te && !maybe_long_name(c, from, to)) {
			stmt = load_some(type, te + 3, ee, keys);
		} else {
			json_t *el = json_loadb(p, (size_t)(ee - p), 0, NULL);
			stmt = json_incref(jget(el, "stmt"));
			json_decref(el);
		}
		judge(c, stmt, to);
		json_decref(stmt);
		p = ee;
	}
	if (c->tx_depth > 0) {
		c->cur = WHOLE_FILE;
		finding(
		    c, R_TX_UNBALANCED, c->begin_off, "COMMIT at the end of the file",
		    "BEGIN without COMMIT: the transaction is still open when the file ends, and flotilla "
		    "rolls it back");
	}
}

/* A rule's level for this file: off below the rule's from_version (files that predate it). */
static fl_lint_level level_for(const fl_lint_target *t, const fl_migration *m, int rule)
{
	const char *from = t->from_version[rule];
	if (from && m->version && fl_version_compare(m->version, from) < 0)
		return FL_LINT_OFF;
	return t->levels[rule];
}

/* What the migration an undo file undoes created: the undo may drop it. */
static void created_by(file_ctx *c, const fl_migration *v)
{
	PgQueryParseResult pr = pg_query_parse(v->data);
	json_t *tree = pr.error ? NULL : json_loads(pr.parse_tree, 0, NULL);
	json_t *stmts = jget(tree, "stmts");
	for (size_t i = 0; i < json_array_size(stmts); i++) {
		json_t *s;
		const char *type = node(jget(json_array_get(stmts, i), "stmt"), &s);
		if (!type)
			continue;
		const char *name = strcmp(type, "CreateStmt") == 0 ? jstr(jget(s, "relation"), "relname")
		                   : strcmp(type, "ViewStmt") == 0 ? jstr(jget(s, "view"), "relname")
		                                                   : NULL;
		if (name)
			remember(c, "t:%s", name);
		if (strcmp(type, "IndexStmt") == 0 && jstr(s, "idxname"))
			remember(c, "i:%s", jstr(s, "idxname"));
	}
	json_decref(tree);
	pg_query_free_parse_result(pr);
}

static void lint_file(const fl_lint_target *t, const fl_migration *m, const fl_migration *undoes,
                      const struct learned *learned, file_result *out)
{
	memset(out, 0, sizeof(*out));
	file_ctx c;
	memset(&c, 0, sizeof(c));
	c.t = t;
	c.m = m;
	c.learned = learned;
	size_t nph = 0;
	fl_placeholder *ph = fl_placeholders_for_file(t->ph, t->nph, m, &nph);
	c.ph = ph;
	c.nph = nph;
	fl_error *e = NULL;
	size_t len = 0;
	char *text = fl_migration_expand_service(m, t->service, ph, nph, &len, &e);
	if (!text) {
		out->err = e;
		free(ph);
		return;
	}
	bool same = len == m->len && memcmp(text, m->data, len) == 0;
	c.text = same ? m->data : text;
	c.len = len;
	if (undoes)
		created_by(&c, undoes);
	PgQueryParseResult pr = pg_query_parse(c.text);
	if (pr.error) {
		size_t off =
		    pr.error->cursorpos > 0 ? fl_sql_char_to_byte(c.text, c.len, pr.error->cursorpos) : 0;
		parse_failure(&c, pr.error->message, off);
	} else if (fl_sqlsplit(c.text, c.len, m->path, &c.st, &c.nst, &e) != 0) {
		/* psql's input that the server's parser happens to accept (COPY ... FROM stdin) */
		parse_failure(&c, e->msg, 0);
		fl_error_free(e);
	} else {
		run_mode(&c);
		find_suppressions(&c);
		lint_parsed(&c, pr.parse_tree);
	}
	pg_query_free_parse_result(pr);

	out->items = fl_calloc(c.nf + c.nsup + 1, sizeof(*out->items));
	for (size_t i = 0; i < c.nf; i++) {
		raw_finding *f = &c.f[i];
		if (f->rule != R_WITHDRAWN && !suppressed(&c, f) && level_for(t, m, f->rule) != FL_LINT_OFF) {
			fl_lint_finding *o = &out->items[out->n++];
			o->rule = &RULES[f->rule];
			o->level = level_for(t, m, f->rule);
			o->service = t->service;
			o->file = fl_strdup(m->path);
			raw_place(&c, f->off, &o->line, &o->col);
			o->message = f->msg;
			o->hint = f->hint;
			f->msg = f->hint = NULL;
		}
		free(f->msg);
		free(f->hint);
	}
	for (size_t i = 0; i < c.nsup; i++) {
		suppression *s = &c.sup[i];
		if (!s->used && level_for(t, m, R_IGNORE) != FL_LINT_OFF) {
			fl_lint_finding *o = &out->items[out->n++];
			o->rule = &RULES[R_IGNORE];
			o->level = level_for(t, m, R_IGNORE);
			o->service = t->service;
			o->file = fl_strdup(m->path);
			raw_place(&c, s->off, &o->line, &o->col);
			o->message =
			    fl_asprintf("lint-ignore %s silences nothing: %s has no %s finding", s->rule,
			                s->stmt == WHOLE_FILE ? "the file"
			                : s->stmt < c.nst     ? "the statement it stands before"
			                                      : "no statement follows it, so it",
			                s->rule);
			o->hint = fl_strdup("remove the comment");
		}
		free(s->rule);
	}
	qsort(out->items, out->n, sizeof(*out->items), by_place);
	free(c.sup);
	free(c.f);
	for (size_t i = 0; i < c.nnames; i++)
		free(c.names[i]);
	free(c.names);
	free(c.st);
	free(text);
	free(ph);
}

/* ---- many files ---- */

typedef struct {
	const fl_lint_job *jobs;
	size_t n;
	file_result *res;
	atomic_size_t next;
	struct learned learned;
} pool;

/* ADD CONSTRAINT name CHECK (col IS NOT NULL) NOT VALID in the targets' other files. */
static void *learn(void *arg)
{
	pool *p = arg;
	for (size_t j = 0; j < p->n; j++) {
		const fl_lint_target *t = p->jobs[j].target;
		bool seen = false;
		for (size_t k = 0; k < j && !seen; k++)
			seen = p->jobs[k].target == t;
		for (size_t i = 0; !seen && i < t->ncontext; i++) {
			const fl_migration *m = t->context[i];
			if (!strcasestr(m->data, "NOT VALID") || !strcasestr(m->data, "IS NOT NULL"))
				continue;
			PgQueryParseResult pr = pg_query_parse(m->data);
			json_t *tree = pr.error ? NULL : json_loads(pr.parse_tree, 0, NULL);
			json_t *stmts = jget(tree, "stmts");
			for (size_t k = 0; k < json_array_size(stmts); k++) {
				json_t *a = as(jget(json_array_get(stmts, k), "stmt"), "AlterTableStmt");
				const char *table = jstr(jget(a, "relation"), "relname");
				json_t *cmds = jget(a, "cmds");
				for (size_t x = 0; table && x < json_array_size(cmds); x++) {
					json_t *con =
					    as(jget(as(json_array_get(cmds, x), "AlterTableCmd"), "def"),
					       "Constraint");
					const char *col =
					    con && jtrue(con, "skip_validation") ? not_null_check(con) : NULL;
					if (!col || !jstr(con, "conname"))
						continue;
					struct learned *l = &p->learned;
					l->t = fl_realloc(l->t, (l->n + 1) * sizeof(*l->t));
					l->key = fl_realloc(l->key, (l->n + 1) * sizeof(*l->key));
					l->t[l->n] = t;
					l->key[l->n++] =
					    fl_asprintf("%s.%s:%s", table, jstr(con, "conname"), col);
				}
			}
			json_decref(tree);
			pg_query_free_parse_result(pr);
		}
	}
	return NULL;
}

static void *worker(void *arg)
{
	pool *p = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		lint_file(p->jobs[i].target, p->jobs[i].mig, p->jobs[i].undoes, &p->learned, &p->res[i]);
	}
	return NULL;
}

int fl_lint_run(const fl_lint_job *jobs, size_t n, int threads, fl_lint_report *out, fl_error **err)
{
	if (threads <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
	}
	if ((size_t)threads > n)
		threads = n ? (int)n : 1;
	pool p = {.jobs = jobs, .n = n, .res = fl_calloc(n + 1, sizeof(file_result))};
	atomic_init(&p.next, 0);
	/* Every parse runs on a thread of its own: libpg_query keeps its memory per thread and
	 * frees it when the thread ends, while pg_query_exit() on a thread that parses again
	 * leaves it dangling. */
	pthread_t tid[8];
	int started = 0;
	if (pthread_create(&tid[0], NULL, learn, &p) == 0)
		pthread_join(tid[0], NULL);
	else
		learn(&p);
	for (int i = 0; i < threads && i < 8; i++)
		if (pthread_create(&tid[started], NULL, worker, &p) == 0)
			started++;
	if (started == 0)
		worker(&p); /* no thread to be had: the caller's, and its parser memory stays */
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		file_result *r = &p.res[i];
		out->files++;
		if (r->err) {
			bad += fl_error_count(r->err);
			fl_error_append(err, r->err);
		}
		out->items = fl_realloc(out->items, (out->n + r->n + 1) * sizeof(*out->items));
		for (size_t k = 0; k < r->n; k++) {
			out->items[out->n++] = r->items[k];
			if (r->items[k].level == FL_LINT_ERROR)
				out->errors++;
			else
				out->warnings++;
		}
		free(r->items);
	}
	free(p.res);
	for (size_t i = 0; i < p.learned.n; i++)
		free(p.learned.key[i]);
	free(p.learned.key);
	free(p.learned.t);
	return bad;
}

void fl_lint_report_clear(fl_lint_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].file);
		free(r->items[i].message);
		free(r->items[i].hint);
	}
	free(r->items);
	memset(r, 0, sizeof(*r));
}

char *fl_lint_finding_text(const fl_lint_finding *f)
{
	if (f->hint)
		return fl_asprintf("%s:%d:%d: %s: %s\n  hint: %s", f->file, f->line, f->col, f->rule->name,
		                   f->message, f->hint);
	return fl_asprintf("%s:%d:%d: %s: %s", f->file, f->line, f->col, f->rule->name, f->message);
}
