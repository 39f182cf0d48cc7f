#include "history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names, hash, lock key ---- */

char *fl_history_name(const char *schema, const char *table)
{
	char *s = fl_pg_ident_plain(schema), *t = fl_pg_ident_plain(table);
	char *n = fl_asprintf("%s.%s", s, t);
	free(s);
	free(t);
	return n;
}

/* Next code point of UTF-8 text; a byte that does not start a valid sequence counts as itself. */
static uint32_t next_cp(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t c = s[0];
	int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
	if (c < 0x80 || extra == 0) {
		*p = s + 1;
		return c;
	}
	uint32_t v = c & (0x3F >> extra);
	for (int i = 1; i <= extra; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*p = s + 1;
			return c;
		}
		v = (v << 6) | (s[i] & 0x3F);
	}
	*p = s + extra + 1;
	return v;
}

int32_t fl_java_string_hash(const char *utf8)
{
	uint32_t h = 0;
	const unsigned char *p = (const unsigned char *)utf8;
	while (*p) {
		uint32_t cp = next_cp(&p);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			h = h * 31u + (0xD800u + (cp >> 10));
			h = h * 31u + (0xDC00u + (cp & 0x3FF));
		} else {
			h = h * 31u + cp;
		}
	}
	return (int32_t)h;
}

long long fl_history_lock_key(const char *schema, const char *table)
{
	char *name = fl_history_name(schema, table);
	long long key = 0x466C79776179LL + (long long)fl_java_string_hash(name);
	free(name);
	return key;
}

/* Java's String.length(): UTF-16 code units. */
static size_t java_len(const char *s, size_t *bytes_at, size_t limit)
{
	size_t units = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (bytes_at && units >= limit) {
			*bytes_at = (size_t)((const char *)p - s);
			return units;
		}
		uint32_t cp = next_cp(&p);
		units += cp >= 0x10000 ? 2 : 1;
	}
	if (bytes_at)
		*bytes_at = strlen(s);
	return units;
}

char *fl_history_abbreviate_description(const char *s)
{
	if (java_len(s, NULL, 0) <= 200)
		return fl_strdup(s);
	size_t cut;
	java_len(s, &cut, 197);
	char *head = fl_strndup(s, cut);
	char *r = fl_asprintf("%s...", head);
	free(head);
	return r;
}

char *fl_history_abbreviate_script(const char *s)
{
	if (java_len(s, NULL, 0) <= 1000)
		return fl_strdup(s);
	size_t from, to;
	java_len(s, &from, 3);
	java_len(s, &to, 1000);
	char *mid = fl_strndup(s + from, to - from);
	char *r = fl_asprintf("...%s", mid);
	free(mid);
	return r;
}

/* ---- placeholders ---- */

fl_placeholder *fl_placeholders_standard(const fl_placeholder *user, size_t nuser, const char *schema,
                                         const char *database, const char *dbuser, const char *table,
                                         size_t *n)
{
	fl_placeholder *ph = fl_calloc(nuser + 4, sizeof(*ph));
	size_t k = 0;
	for (size_t i = 0; i < nuser; i++)
		ph[k++] = user[i];
	ph[k++] = (fl_placeholder){"flyway:defaultSchema", schema ? schema : "public"};
	ph[k++] = (fl_placeholder){"flyway:user", dbuser ? dbuser : ""};
	ph[k++] = (fl_placeholder){"flyway:database", database ? database : ""};
	ph[k++] = (fl_placeholder){"flyway:table", table ? table : FL_HISTORY_DEFAULT_TABLE};
	*n = k;
	return ph;
}

fl_placeholder *fl_placeholders_for_file(const fl_placeholder *ph, size_t nph, const fl_migration *m,
                                         size_t *n)
{
	fl_placeholder *out = fl_calloc(nph + 1, sizeof(*out));
	for (size_t i = 0; i < nph; i++)
		out[i] = ph[i];
	const char *slash = strrchr(m->script, '/');
	out[nph] = (fl_placeholder){"flyway:filename", slash ? slash + 1 : m->script};
	*n = nph + 1;
	return out;
}

/* ---- DDL, read, append ---- */

char *fl_history_create_sql(const char *schema, const char *table, bool create_schema,
                            const char *installed_by)
{
	char *qs = fl_pg_ident_plain(schema), *qt = fl_pg_ident_plain(table);
	char *pk_name = fl_asprintf("%s_pk", table), *idx_name = fl_asprintf("%s_s_idx", table);
	char *qpk = fl_pg_ident_plain(pk_name), *qidx = fl_pg_ident_plain(idx_name);
	fl_buf b;
	fl_buf_init(&b);
	if (create_schema)
		fl_buf_printf(&b, "CREATE SCHEMA %s;\n", qs);
	fl_buf_printf(&b,
	              "CREATE TABLE %s.%s (\n"
	              "    \"installed_rank\" INT NOT NULL,\n"
	              "    \"version\" VARCHAR(50),\n"
	              "    \"description\" VARCHAR(200) NOT NULL,\n"
	              "    \"type\" VARCHAR(20) NOT NULL,\n"
	              "    \"script\" VARCHAR(1000) NOT NULL,\n"
	              "    \"checksum\" INTEGER,\n"
	              "    \"installed_by\" VARCHAR(100) NOT NULL,\n"
	              "    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n"
	              "    \"execution_time\" INTEGER NOT NULL,\n"
	              "    \"success\" BOOLEAN NOT NULL\n"
	              ");\n"
	              "ALTER TABLE %s.%s ADD CONSTRAINT %s PRIMARY KEY (\"installed_rank\");\n"
	              "CREATE INDEX %s ON %s.%s (\"success\");\n",
	              qs, qt, qs, qt, qpk, qidx, qs, qt);
	if (create_schema) {
		char *by = installed_by ? fl_pg_literal_plain(installed_by) : fl_strdup("current_user");
		char *script = fl_pg_literal_plain(qs);
		fl_buf_printf(
		    &b,
		    "INSERT INTO %s.%s (\"installed_rank\", \"version\", \"description\", \"type\", "
		    "\"script\", \"checksum\", \"installed_by\", \"execution_time\", \"success\")\n"
		    "    VALUES (0, NULL, '" FL_SCHEMA_MARKER_DESCRIPTION
		    "', 'SCHEMA', %s, NULL, %s, 0, true);\n",
		    qs, qt, script, by);
		free(by);
		free(script);
	}
	free(qs);
	free(qt);
	free(pk_name);
	free(idx_name);
	free(qpk);
	free(qidx);
	return fl_buf_detach(&b);
}

/* Does the schema exist, does the table? One round trip. */
static int probe(fl_pg *pg, const char *schema, const char *table, bool *schema_exists, bool *table_exists,
                 bool *ledger_exists, fl_error **err)
{
	char *name = fl_history_name(schema, table);
	const char *params[3] = {schema, name, "\"" FL_CONTROL_SCHEMA "\".\"execution\""};
	PGresult *r =
	    fl_pg_query(pg,
	                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1), "
	                "pg_catalog.to_regclass($2) IS NOT NULL, pg_catalog.to_regclass($3) IS NOT NULL",
	                3, params, "reading the schema history", NULL, err);
	free(name);
	if (!r)
		return -1;
	*schema_exists = PQgetvalue(r, 0, 0)[0] == 't';
	*table_exists = PQgetvalue(r, 0, 1)[0] == 't';
	if (ledger_exists)
		*ledger_exists = PQgetvalue(r, 0, 2)[0] == 't';
	PQclear(r);
	return 0;
}

int fl_history_create(fl_pg *pg, const char *schema, const char *table, const char *role,
                      const char *installed_by, bool *created, fl_error **err)
{
	bool schema_exists, table_exists;
	if (created)
		*created = false;
	if (probe(pg, schema, table, &schema_exists, &table_exists, NULL, err) != 0)
		return -1;
	if (table_exists)
		return 0;
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "BEGIN;\n");
	if (role) {
		char *qr = fl_pg_ident(pg, role);
		fl_buf_printf(&b, "SET LOCAL ROLE %s;\n", qr);
		free(qr);
	}
	char *ddl = fl_history_create_sql(schema, table, !schema_exists, installed_by);
	fl_buf_puts(&b, ddl);
	free(ddl);
	fl_buf_puts(&b, "COMMIT;\n");
	char *name = fl_history_name(schema, table);
	char *what = fl_asprintf("creating the schema history table %s", name);
	int rc = fl_pg_exec(pg, b.data, what, NULL, err);
	if (rc != 0) {
		PGresult *r = PQexec(pg->conn, "ROLLBACK");
		PQclear(r);
	}
	free(what);
	free(name);
	fl_buf_free(&b);
	if (rc == 0 && created)
		*created = true;
	return rc;
}

static char *dup_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : fl_strdup(PQgetvalue(r, row, col));
}

static void row_clear(fl_history_row *w)
{
	free(w->version);
	free(w->description);
	free(w->type);
	free(w->script);
	free(w->installed_by);
	free(w->installed_on);
}

static void progress_clear(fl_history_progress *p)
{
	free(p->script);
	free(p->version);
	free(p->prefix_sha256);
	free(p->content_sha256);
	free(p->error);
	free(p->started);
}

void fl_history_free(fl_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		row_clear(&h->rows[i]);
	free(h->rows);
	for (size_t i = 0; i < h->nprogress; i++)
		progress_clear(&h->progress[i]);
	free(h->progress);
	free(h->schema);
	free(h->table);
	free(h);
}

char *fl_history_rows_sql(const char *schema, const char *table)
{
	char *name = fl_history_name(schema, table);
	char *sql = fl_asprintf("SELECT \"installed_rank\", \"version\", \"description\", \"type\", "
	                        "\"script\", \"checksum\", \"installed_by\", \"installed_on\", "
	                        "\"execution_time\", \"success\" FROM %s ORDER BY \"installed_rank\"",
	                        name);
	free(name);
	return sql;
}

const char *const fl_history_progress_sql =
    "SELECT id, script, version, no_transaction, statements_done, statements_total, "
    "prefix_sha256, content_sha256, error, started,"
    /* through jsonb: a ledger from before V2 has no such column, and is read before it is brought up
       to date */
    " (to_jsonb(last) ->> 'in_flight')::int FROM ("
    " SELECT DISTINCT ON (script) * FROM \"" FL_CONTROL_SCHEMA "\".execution"
    " WHERE history_table = $1 ORDER BY script, id DESC) last"
    " WHERE success IS NOT TRUE ORDER BY id";

fl_history *fl_history_from_result(const char *schema, const char *table, bool schema_exists,
                                   const PGresult *r)
{
	fl_history *h = fl_calloc(1, sizeof(*h));
	h->schema = fl_strdup(schema);
	h->table = fl_strdup(table);
	h->schema_exists = schema_exists || r;
	h->exists = r != NULL;
	if (!r)
		return h;
	h->n = (size_t)PQntuples(r);
	h->rows = fl_calloc(h->n ? h->n : 1, sizeof(*h->rows));
	for (size_t i = 0; i < h->n; i++) {
		fl_history_row *w = &h->rows[i];
		int k = (int)i;
		w->installed_rank = atoi(PQgetvalue(r, k, 0));
		w->version = dup_or_null(r, k, 1);
		w->description = fl_strdup(PQgetvalue(r, k, 2));
		w->type = fl_strdup(PQgetvalue(r, k, 3));
		w->script = fl_strdup(PQgetvalue(r, k, 4));
		w->has_checksum = !PQgetisnull(r, k, 5);
		w->checksum = w->has_checksum ? (int32_t)strtol(PQgetvalue(r, k, 5), NULL, 10) : 0;
		w->installed_by = fl_strdup(PQgetvalue(r, k, 6));
		w->installed_on = fl_strdup(PQgetvalue(r, k, 7));
		w->execution_time = atoi(PQgetvalue(r, k, 8));
		w->success = PQgetvalue(r, k, 9)[0] == 't';
	}
	return h;
}

void fl_history_set_progress(fl_history *h, const PGresult *r)
{
	for (size_t i = 0; i < h->nprogress; i++)
		progress_clear(&h->progress[i]);
	free(h->progress);
	h->ledger = true;
	h->nprogress = (size_t)PQntuples(r);
	h->progress = fl_calloc(h->nprogress ? h->nprogress : 1, sizeof(*h->progress));
	for (size_t i = 0; i < h->nprogress; i++) {
		fl_history_progress *p = &h->progress[i];
		int k = (int)i;
		p->id = atoll(PQgetvalue(r, k, 0));
		p->script = fl_strdup(PQgetvalue(r, k, 1));
		p->version = dup_or_null(r, k, 2);
		p->no_transaction = PQgetvalue(r, k, 3)[0] == 't';
		p->statements_done = atoi(PQgetvalue(r, k, 4));
		p->statements_total = PQgetisnull(r, k, 5) ? 0 : atoi(PQgetvalue(r, k, 5));
		p->prefix_sha256 = dup_or_null(r, k, 6);
		p->content_sha256 = dup_or_null(r, k, 7);
		p->error = dup_or_null(r, k, 8);
		p->started = dup_or_null(r, k, 9);
		p->in_flight = PQgetisnull(r, k, 10) ? 0 : atoi(PQgetvalue(r, k, 10));
	}
}

int fl_history_read(fl_pg *pg, const char *schema, const char *table, bool ledger, fl_history **out,
                    fl_error **err)
{
	*out = NULL;
	bool schema_exists = false, exists = false, ledger_exists = false;
	if (probe(pg, schema, table, &schema_exists, &exists, &ledger_exists, err) != 0)
		return -1;
	char *name = fl_history_name(schema, table);
	PGresult *r = NULL;
	if (exists) {
		char *sql = fl_history_rows_sql(schema, table);
		char *what = fl_asprintf("reading %s", name);
		r = fl_pg_query(pg, sql, 0, NULL, what, NULL, err);
		free(sql);
		free(what);
		if (!r) {
			free(name);
			return -1;
		}
	}
	fl_history *h = fl_history_from_result(schema, table, schema_exists, r);
	PQclear(r);
	if (ledger && ledger_exists) {
		const char *params[1] = {name};
		r = fl_pg_query(pg, fl_history_progress_sql, 1, params, "reading flotilla's ledger", NULL,
		                err);
		if (!r) {
			free(name);
			fl_history_free(h);
			return -1;
		}
		fl_history_set_progress(h, r);
		PQclear(r);
	}
	free(name);
	*out = h;
	return 0;
}

static char *lit(fl_pg *pg, const char *s)
{
	return pg ? fl_pg_literal(pg, s) : fl_pg_literal_plain(s);
}

char *fl_history_insert_sql(fl_pg *pg, const char *schema, const char *table, const fl_history_row *row,
                            const char *exec_time_sql)
{
	char *name = fl_history_name(schema, table);
	char *desc = fl_history_abbreviate_description(row->description ? row->description : "");
	char *script = fl_history_abbreviate_script(row->script ? row->script : "");
	char *qversion = row->version ? lit(pg, row->version) : fl_strdup("NULL");
	char *qdesc = lit(pg, desc), *qtype = lit(pg, row->type), *qscript = lit(pg, script);
	char *qby = row->installed_by ? lit(pg, row->installed_by) : fl_strdup("current_user");
	char checksum[16] = "NULL";
	if (row->has_checksum)
		snprintf(checksum, sizeof(checksum), "%d", (int)row->checksum);
	char exec_time[16];
	snprintf(exec_time, sizeof(exec_time), "%d", row->execution_time);
	char *sql =
	    fl_asprintf("INSERT INTO %s (\"installed_rank\", \"version\", \"description\", \"type\", "
	                "\"script\", \"checksum\", \"installed_by\", \"execution_time\", \"success\")"
	                " SELECT COALESCE(MAX(\"installed_rank\"), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s"
	                " FROM %s RETURNING \"installed_rank\", \"execution_time\"",
	                name, qversion, qdesc, qtype, qscript, checksum, qby,
	                exec_time_sql ? exec_time_sql : exec_time, row->success ? "true" : "false", name);
	free(name);
	free(desc);
	free(script);
	free(qversion);
	free(qdesc);
	free(qtype);
	free(qscript);
	free(qby);
	return sql;
}

int fl_history_append(fl_pg *pg, const char *schema, const char *table, const fl_history_row *row,
                      fl_error **err)
{
	char *sql = fl_history_insert_sql(pg, schema, table, row, NULL);
	int rc = fl_pg_exec(pg, sql, "writing the schema history", NULL, err);
	free(sql);
	return rc;
}

/* ---- the plan ---- */

const char *fl_plan_state_name(fl_plan_state s)
{
	switch (s) {
	case FL_ST_PENDING:
		return "Pending";
	case FL_ST_ABOVE_TARGET:
		return "Above Target";
	case FL_ST_IGNORED:
		return "Ignored";
	case FL_ST_BELOW_BASELINE:
		return "Below Baseline";
	case FL_ST_SUCCESS:
		return "Success";
	case FL_ST_FAILED:
		return "Failed";
	case FL_ST_MISSING:
		return "Missing";
	case FL_ST_MISSING_FAILED:
		return "Failed (Missing)";
	case FL_ST_FUTURE:
		return "Future";
	case FL_ST_FUTURE_FAILED:
		return "Failed (Future)";
	case FL_ST_OUTDATED:
		return "Outdated";
	case FL_ST_SUPERSEDED:
		return "Superseded";
	case FL_ST_BASELINE:
		return "Baseline";
	case FL_ST_UNDONE:
		return "Undone";
	case FL_ST_DELETED:
		return "Deleted";
	case FL_ST_SCHEMA:
		return "Success";
	case FL_ST_UNDO_APPLIED:
		return "Success";
	}
	return "?";
}

const char *fl_plan_item_category(const fl_plan_item *it)
{
	const char *type = it->row ? it->row->type : NULL;
	if (type && strcmp(type, "SCHEMA") == 0)
		return "Schema";
	if (type && (strcmp(type, "BASELINE") == 0 || strcmp(type, "SQL_BASELINE") == 0))
		return "Baseline";
	if (type && strcmp(type, "UNDO_SQL") == 0)
		return "Undo";
	if (type && strcmp(type, "DELETE") == 0)
		return "Delete";
	if (it->mig)
		return it->mig->kind == FL_MIG_REPEATABLE ? "Repeatable"
		       : it->mig->kind == FL_MIG_BASELINE ? "Baseline"
		                                          : "Versioned";
	return it->row && it->row->version ? "Versioned" : "Repeatable";
}

static bool is_type(const fl_history_row *w, const char *t)
{
	return strcmp(w->type, t) == 0;
}

/* A row that applies (or tried to apply) a migration, as opposed to bookkeeping rows. */
static bool is_migration_row(const fl_history_row *w)
{
	return !is_type(w, "SCHEMA") && !is_type(w, "BASELINE") && !is_type(w, "UNDO_SQL") &&
	       !is_type(w, "DELETE");
}

static bool valid_version_text(const char *v)
{
	if (!*v)
		return false;
	bool digit = false;
	for (const char *p = v; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digit = true;
		else if (*p == '.' || *p == '_') {
			if (!digit)
				return false;
			digit = false;
		} else
			return false;
	}
	return digit;
}

typedef struct {
	fl_plan *p;
	size_t cap;
} builder;

static fl_plan_item *add_item(builder *b, fl_plan_state st, const fl_migration *m, const fl_history_row *w)
{
	fl_plan *p = b->p;
	if (p->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		p->items = fl_realloc(p->items, b->cap * sizeof(*p->items));
	}
	fl_plan_item *it = &p->items[p->n++];
	memset(it, 0, sizeof(*it));
	it->state = st;
	it->mig = m;
	it->row = w;
	if (m)
		it->checksum = m->checksum;
	return it;
}

static const fl_history_progress *find_progress(const fl_history *h, const char *script)
{
	for (size_t i = 0; i < h->nprogress; i++)
		if (strcmp(h->progress[i].script, script) == 0)
			return &h->progress[i];
	return NULL;
}

/* The versioned (or undo) file of a version; NULL when none. */
static const fl_migration *file_of(const fl_migration_set *set, fl_mig_kind kind, const char *version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->items[i].kind == kind && fl_version_compare(set->items[i].version, version) == 0)
			return &set->items[i];
	return NULL;
}

static const fl_migration *repeatable_of(const fl_migration_set *set, const char *description)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->items[i].kind == FL_MIG_REPEATABLE &&
		    strcmp(set->items[i].description, description) == 0)
			return &set->items[i];
	return NULL;
}

/* The file a migration row records: an SQL_BASELINE row's is the B file of its version. */
static const fl_migration *row_file(const fl_migration_set *set, const fl_history_row *w)
{
	if (!w->version)
		return repeatable_of(set, w->description);
	return file_of(set, is_type(w, "SQL_BASELINE") ? FL_MIG_BASELINE : FL_MIG_VERSIONED, w->version);
}

static unsigned versioned_mismatch(const fl_history_row *w, const fl_migration *m)
{
	unsigned mm = 0;
	if (w->has_checksum && w->checksum != m->checksum)
		mm |= FL_MISMATCH_CHECKSUM;
	char *desc = fl_history_abbreviate_description(m->description);
	if (strcmp(w->description, desc) != 0)
		mm |= FL_MISMATCH_DESCRIPTION;
	free(desc);
	if (!is_type(w, m->kind == FL_MIG_BASELINE ? "SQL_BASELINE" : "SQL"))
		mm |= FL_MISMATCH_TYPE;
	return mm;
}

static void set_resume(fl_plan_item *it, const fl_history *h)
{
	const char *script = it->row ? it->row->script : it->mig ? it->mig->script : NULL;
	if (!script)
		return;
	it->progress = find_progress(h, script);
	const fl_history_progress *p = it->progress;
	if (!it->mig || !p || !p->no_transaction)
		return;
	/* killed: the row never got its outcome (no error), and a failed history row was never written */
	bool killed = it->state == FL_ST_PENDING && !p->error && (p->statements_done > 0 || p->in_flight > 0);
	if (it->state == FL_ST_FAILED || killed) {
		it->resumable = true;
		it->resume_at = p->statements_done + 1;
		it->in_flight = p->in_flight == it->resume_at ? p->in_flight : 0;
	}
}

static int cmp_item_version(const void *a, const void *b)
{
	const fl_plan_item *x = *(fl_plan_item *const *)a, *y = *(fl_plan_item *const *)b;
	return fl_version_compare(x->mig->version, y->mig->version);
}

fl_plan *fl_plan_new(const fl_history *h, const fl_migration_set *set, const fl_plan_opts *o, fl_error **err)
{
	const char *target = o->target;
	if (target && (strcmp(target, "latest") == 0 || !*target))
		target = NULL;
	bool target_current = target && strcmp(target, "current") == 0;
	if (target && !target_current && !valid_version_text(target)) {
		*err = fl_error_new("target '%s' is not a version (like 3 or 1.2.1), 'current' or 'latest'",
		                    target);
		return NULL;
	}
	fl_plan *p = fl_calloc(1, sizeof(*p));
	builder b = {p, 0};
	p->service = o->service ? fl_strdup(o->service) : NULL;
	p->rerun = fl_asprintf("%s%s%s%s", o->service ? " " : "", o->service ? o->service : "",
	                       o->env ? " -e " : "", o->env ? o->env : "");
	p->display_dir = o->display_dir ? fl_strdup(o->display_dir) : NULL;
	p->history_name = fl_history_name(h->schema, h->table);

	for (size_t i = 0; i < set->n; i++) {
		const fl_migration *m = &set->items[i];
		if (m->kind == FL_MIG_VERSIONED &&
		    (!p->latest_file_version || fl_version_compare(m->version, p->latest_file_version) > 0)) {
			free(p->latest_file_version);
			p->latest_file_version = fl_strdup(m->version);
		}
	}

	/* Which row is the last word on each version / repeatable description. */
	const fl_history_row **effective = fl_calloc(h->n ? h->n : 1, sizeof(*effective));
	fl_plan_state *row_state = fl_calloc(h->n ? h->n : 1, sizeof(*row_state));
	for (size_t i = 0; i < h->n; i++) {
		const fl_history_row *w = &h->rows[i];
		/* Flyway's baseline command writes BASELINE; a B file that migrate ran, SQL_BASELINE */
		if ((is_type(w, "BASELINE") || is_type(w, "SQL_BASELINE")) && w->success) {
			free(p->baseline_version);
			p->baseline_version = w->version ? fl_strdup(w->version) : NULL;
		}
	}
	for (size_t i = 0; i < h->n; i++) {
		const fl_history_row *w = &h->rows[i];
		if (is_type(w, "SCHEMA")) {
			row_state[i] = FL_ST_SCHEMA;
			continue;
		}
		if (is_type(w, "BASELINE")) {
			row_state[i] = FL_ST_BASELINE;
			continue;
		}
		if (is_type(w, "UNDO_SQL") || is_type(w, "DELETE")) {
			row_state[i] = is_type(w, "DELETE") ? FL_ST_DELETED : FL_ST_UNDO_APPLIED;
			if (!w->success) {
				row_state[i] = FL_ST_FAILED;
				continue;
			}
			/* it cancels the latest migration row of its version */
			for (size_t j = i; j-- > 0;) {
				const fl_history_row *v = &h->rows[j];
				if (!is_migration_row(v) || effective[j] == NULL)
					continue;
				bool same = w->version && v->version
				                ? fl_version_compare(w->version, v->version) == 0
				                : !w->version && !v->version &&
				                      strcmp(w->description, v->description) == 0;
				if (same) {
					row_state[j] = is_type(w, "DELETE") ? FL_ST_DELETED : FL_ST_UNDONE;
					effective[j] = NULL;
					break;
				}
			}
			continue;
		}
		/* a migration row: it supersedes earlier rows of the same version / description */
		for (size_t j = 0; j < i; j++) {
			const fl_history_row *v = &h->rows[j];
			if (!effective[j])
				continue;
			bool same =
			    w->version && v->version
			        ? fl_version_compare(w->version, v->version) == 0
			        : !w->version && !v->version && strcmp(w->description, v->description) == 0;
			if (same) {
				effective[j] = NULL;
				row_state[j] = FL_ST_SUPERSEDED;
			}
		}
		effective[i] = w;
	}
	for (size_t i = 0; i < h->n; i++) {
		const fl_history_row *w = effective[i];
		if (w && w->version && w->success &&
		    (!p->current_version || fl_version_compare(w->version, p->current_version) > 0)) {
			free(p->current_version);
			p->current_version = fl_strdup(w->version);
		}
	}
	if (p->baseline_version &&
	    (!p->current_version || fl_version_compare(p->baseline_version, p->current_version) > 0)) {
		free(p->current_version);
		p->current_version = fl_strdup(p->baseline_version);
	}

	/* One item per row. */
	bool *file_taken = fl_calloc(set->n ? set->n : 1, sizeof(bool));
	for (size_t i = 0; i < h->n; i++) {
		const fl_history_row *w = &h->rows[i];
		if (!effective[i]) {
			const fl_migration *m = NULL;
			if (is_type(w, "UNDO_SQL") && w->version)
				m = file_of(set, FL_MIG_UNDO, w->version);
			else if (is_migration_row(w))
				m = row_file(set, w);
			add_item(&b, row_state[i], m, w);
			continue;
		}
		const fl_migration *m = row_file(set, w);
		if (m)
			file_taken[m - set->items] = true;
		fl_plan_state st;
		if (!m) {
			bool future =
			    w->version && (!p->latest_file_version ||
			                   fl_version_compare(w->version, p->latest_file_version) > 0);
			st = future ? (w->success ? FL_ST_FUTURE : FL_ST_FUTURE_FAILED)
			            : (w->success ? FL_ST_MISSING : FL_ST_MISSING_FAILED);
		} else if (!w->success) {
			st = FL_ST_FAILED;
		} else {
			st = FL_ST_SUCCESS;
		}
		fl_plan_item *it = add_item(&b, st, m, w);
		if (m && m->kind == FL_MIG_VERSIONED && w->success &&
		    !(p->baseline_version && fl_version_compare(w->version, p->baseline_version) <= 0))
			it->mismatch = versioned_mismatch(w, m);
		if (m && m->kind == FL_MIG_BASELINE && w->success)
			it->mismatch = versioned_mismatch(w, m);
		if (m && m->kind == FL_MIG_REPEATABLE) {
			size_t nph;
			fl_placeholder *ph =
			    fl_placeholders_for_file(o->placeholders, o->nplaceholders, m, &nph);
			size_t len;
			fl_error *e = NULL;
			char *text = fl_migration_expand_service(m, o->service, ph, nph, &len, &e);
			free(ph);
			if (text) {
				it->checksum = fl_migration_checksum(text, len);
				free(text);
			} else {
				fl_error_append(&p->input_errors, e);
			}
			if (w->success && w->has_checksum && w->checksum != it->checksum &&
			    w->checksum != m->checksum)
				it->state = FL_ST_OUTDATED;
		}
		set_resume(it, h);
	}

	/*
	 * A B file starts an empty history (nothing but the schema marker), as
	 * Flyway's baseline migrations do: the highest one at or below the
	 * target runs first, and the V files at or below it never run.
	 */
	const fl_migration *start_b = NULL;
	bool empty = true;
	for (size_t i = 0; i < h->n && empty; i++)
		empty = is_type(&h->rows[i], "SCHEMA");
	for (size_t i = 0; i < set->n && empty && !target_current; i++) {
		const fl_migration *m = &set->items[i];
		if (m->kind == FL_MIG_BASELINE && !(target && fl_version_compare(m->version, target) > 0) &&
		    (!start_b || fl_version_compare(m->version, start_b->version) > 0))
			start_b = m;
	}

	/* Files not applied. */
	for (size_t i = 0; i < set->n; i++) {
		const fl_migration *m = &set->items[i];
		if (file_taken[i] || m->kind == FL_MIG_UNDO)
			continue;
		if (m->kind == FL_MIG_REPEATABLE)
			continue; /* below, after the versioned ones */
		if (m->kind == FL_MIG_BASELINE && m != start_b)
			continue; /* only ever the start of an empty history */
		fl_plan_state st = FL_ST_PENDING;
		if (p->baseline_version && fl_version_compare(m->version, p->baseline_version) <= 0)
			st = FL_ST_BELOW_BASELINE;
		else if (start_b && m != start_b && fl_version_compare(m->version, start_b->version) <= 0)
			st = FL_ST_BELOW_BASELINE;
		else if (target_current || (target && fl_version_compare(m->version, target) > 0))
			st = FL_ST_ABOVE_TARGET;
		else if (!o->out_of_order && p->current_version &&
		         fl_version_compare(m->version, p->current_version) < 0)
			st = FL_ST_IGNORED;
		fl_plan_item *it = add_item(&b, st, m, NULL);
		set_resume(it, h);
	}
	for (size_t i = 0; i < set->n; i++) {
		const fl_migration *m = &set->items[i];
		if (m->kind != FL_MIG_REPEATABLE)
			continue;
		/* a repeatable gets a pending item when new, or when its latest row is outdated */
		bool outdated = false, taken = file_taken[i];
		for (size_t k = 0; k < p->n; k++)
			if (p->items[k].mig == m && p->items[k].row && effective[p->items[k].row - h->rows])
				outdated = p->items[k].state == FL_ST_OUTDATED;
		if (taken && !outdated)
			continue;
		fl_plan_item *it = add_item(&b, FL_ST_PENDING, m, NULL);
		size_t nph, len;
		fl_placeholder *ph = fl_placeholders_for_file(o->placeholders, o->nplaceholders, m, &nph);
		fl_error *e = NULL;
		char *text = fl_migration_expand_service(m, o->service, ph, nph, &len, &e);
		free(ph);
		if (text) {
			it->checksum = fl_migration_checksum(text, len);
			free(text);
		} else if (taken) {
			fl_error_free(e); /* already reported with its history row */
		} else {
			fl_error_append(&p->input_errors, e);
		}
		set_resume(it, h);
	}

	/* What migrate runs. */
	p->pending = fl_calloc(p->n ? p->n : 1, sizeof(*p->pending));
	p->repeatables = fl_calloc(p->n ? p->n : 1, sizeof(*p->repeatables));
	for (size_t i = 0; i < p->n; i++) {
		fl_plan_item *it = &p->items[i];
		if (!it->mig)
			continue;
		bool versioned = it->mig->kind == FL_MIG_VERSIONED || it->mig->kind == FL_MIG_BASELINE;
		bool go = it->state == FL_ST_PENDING || (it->state == FL_ST_IGNORED && o->out_of_order) ||
		          (it->state == FL_ST_FAILED && it->resumable);
		if (versioned && it->state == FL_ST_FAILED && it->resumable &&
		    (target_current || (target && fl_version_compare(it->mig->version, target) > 0)))
			go = false;
		if (!go)
			continue;
		if (versioned)
			p->pending[p->npending++] = it;
		else if (it->mig->kind == FL_MIG_REPEATABLE)
			p->repeatables[p->nrepeatables++] = it;
	}
	if (p->npending > 1)
		qsort(p->pending, p->npending, sizeof(*p->pending), cmp_item_version);
	free(file_taken);
	free(effective);
	free(row_state);
	return p;
}

void fl_plan_free(fl_plan *p)
{
	if (!p)
		return;
	free(p->items);
	free(p->pending);
	free(p->repeatables);
	free(p->current_version);
	free(p->baseline_version);
	free(p->latest_file_version);
	fl_error_free(p->input_errors);
	free(p->service);
	free(p->rerun);
	free(p->display_dir);
	free(p->history_name);
	free(p);
}

/* The file to name: its path, else where it should be. */
static char *where(const fl_plan *p, const fl_plan_item *it)
{
	if (it->mig)
		return fl_strdup(it->mig->path);
	const char *script = it->row ? it->row->script : "?";
	return p->display_dir ? fl_asprintf("%s/%s", p->display_dir, script) : fl_strdup(script);
}

static char *what_name(const fl_plan_item *it)
{
	const char *version = it->row ? it->row->version : it->mig ? it->mig->version : NULL;
	const char *desc = it->row ? it->row->description : it->mig ? it->mig->description : "";
	if (version)
		return fl_asprintf("migration %s (%s)", version, desc);
	return fl_asprintf("repeatable migration \"%s\"", desc);
}

static void verr(fl_error **list, const fl_plan *p, const fl_plan_item *it, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr(fl_error **list, const fl_plan *p, const fl_plan_item *it, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *file = where(p, it);
	fl_error *e = fl_error_vat(file, 0, 0, fmt, ap);
	va_end(ap);
	free(file);
	e->kind = FL_EDRIFT;
	fl_error_append(list, e);
}

fl_error *fl_plan_validate(const fl_plan *p, bool standalone)
{
	fl_error *errs = NULL;
	/* suggested commands run as written: 'flotilla migrate auth -e prod' */
	const char *svc = p->rerun;
	const char *sp = "";
	for (fl_error *e = p->input_errors; e; e = e->next) {
		fl_error *c = fl_error_at(e->file, e->line, e->col, "%s", e->msg);
		c->kind = e->kind;
		fl_error_append(&errs, c);
	}
	for (size_t i = 0; i < p->n; i++) {
		const fl_plan_item *it = &p->items[i];
		char *name = what_name(it);
		switch (it->state) {
		case FL_ST_FAILED:
		case FL_ST_MISSING_FAILED:
		case FL_ST_FUTURE_FAILED:
			if (it->resumable) {
				if (standalone)
					verr(&errs, p, it,
					     "%s failed at statement %d of %d%s%s; fix the cause, then run "
					     "'flotilla migrate%s%s' to continue from statement %d",
					     name, it->resume_at, it->progress->statements_total,
					     it->progress->error ? ": " : "",
					     it->progress->error ? it->progress->error : "", sp, svc,
					     it->resume_at);
			} else {
				verr(&errs, p, it,
				     "%s is recorded as failed in %s; undo whatever it changed, then run "
				     "'flotilla repair%s%s' to remove the failed row",
				     name, p->history_name, sp, svc);
			}
			break;
		case FL_ST_MISSING:
			verr(&errs, p, it,
			     "%s was applied (%s) but its file is missing; restore the file from version "
			     "control, or run 'flotilla repair%s%s' to mark it deleted (as Flyway's repair "
			     "does)",
			     name, it->row->installed_on, sp, svc);
			break;
		case FL_ST_IGNORED:
			verr(
			    &errs, p, it,
			    "%s is not applied but its version is below the current version %s; give it a "
			    "version above %s, or run 'flotilla migrate%s --out-of-order' to apply it anyway",
			    name, p->current_version, p->current_version, p->rerun);
			break;
		case FL_ST_PENDING:
			if (standalone)
				verr(&errs, p, it, "%s is pending; run 'flotilla migrate%s%s' to apply it",
				     name, sp, svc);
			break;
		case FL_ST_OUTDATED:
			if (standalone)
				verr(&errs, p, it,
				     "%s changed since it last ran (%s); run 'flotilla migrate%s%s' to run "
				     "it again",
				     name, it->row->installed_on, sp, svc);
			break;
		default:
			break;
		}
		if (it->mismatch & FL_MISMATCH_CHECKSUM)
			verr(&errs, p, it,
			     "checksum mismatch for %s: applied with %d (%s), the file now gives %d; revert "
			     "the "
			     "change to the file, or run 'flotilla repair%s%s' to realign checksums with the "
			     "files",
			     name, (int)it->row->checksum, it->row->installed_on, (int)it->mig->checksum, sp,
			     svc);
		if (it->mismatch & FL_MISMATCH_DESCRIPTION)
			verr(
			    &errs, p, it,
			    "description mismatch for migration %s: applied as \"%s\", the file says \"%s\"; "
			    "rename the file back, or run 'flotilla repair%s%s' to realign descriptions",
			    it->row->version, it->row->description, it->mig->description, sp, svc);
		if (it->mismatch & FL_MISMATCH_TYPE)
			verr(&errs, p, it,
			     "type mismatch for %s: applied as %s, the file is SQL; run 'flotilla "
			     "repair%s%s' to "
			     "realign types",
			     name, it->row->type, sp, svc);
		free(name);
	}
	return errs;
}

char *fl_plan_item_note(const fl_plan_item *it)
{
	fl_buf b;
	fl_buf_init(&b);
	if (it->resumable && it->progress && it->state == FL_ST_FAILED)
		fl_buf_printf(&b, "failed at statement %d of %d%s%s", it->resume_at,
		              it->progress->statements_total, it->progress->error ? ": " : "",
		              it->progress->error ? it->progress->error : "");
	else if (it->state == FL_ST_PENDING && it->progress && it->progress->error)
		fl_buf_printf(&b, "last attempt failed: %s", it->progress->error);
	else if (it->state == FL_ST_PENDING && it->progress && !it->progress->error)
		fl_buf_printf(&b, "an earlier run stopped part way (statement %d of %d done)",
		              it->progress->statements_done, it->progress->statements_total);
	if (it->mismatch & FL_MISMATCH_CHECKSUM)
		fl_buf_printf(&b, "%schecksum differs from the file", b.len ? "; " : "");
	if (it->mismatch & FL_MISMATCH_DESCRIPTION)
		fl_buf_printf(&b, "%sdescription differs from the file", b.len ? "; " : "");
	if (it->mismatch & FL_MISMATCH_TYPE)
		fl_buf_printf(&b, "%stype differs from the file", b.len ? "; " : "");
	if (!b.len) {
		fl_buf_free(&b);
		return NULL;
	}
	return fl_buf_detach(&b);
}

static int cmp_step_desc(const void *a, const void *b)
{
	const fl_undo_step *x = a, *y = b;
	return -fl_version_compare(x->applied->row->version, y->applied->row->version);
}

fl_undo_step *fl_plan_undo(const fl_plan *p, const fl_migration_set *set, const char *to, size_t *n,
                           fl_error **err)
{
	*n = 0;
	if (to && !valid_version_text(to)) {
		*err = fl_error_new("undo target '%s' is not a version (like 3 or 1.2.1)", to);
		return NULL;
	}
	fl_undo_step *steps = fl_calloc(p->n ? p->n : 1, sizeof(*steps));
	size_t k = 0;
	for (size_t i = 0; i < p->n; i++) {
		const fl_plan_item *it = &p->items[i];
		if (it->state != FL_ST_SUCCESS || !it->row || !it->row->version || !is_migration_row(it->row))
			continue;
		if (to && fl_version_compare(it->row->version, to) <= 0)
			continue;
		steps[k++] = (fl_undo_step){NULL, it};
	}
	if (k > 1)
		qsort(steps, k, sizeof(*steps), cmp_step_desc);
	if (!to && k > 1)
		k = 1; /* without a target, only the latest one */
	fl_error *errs = NULL;
	for (size_t i = 0; i < k; i++) {
		const fl_history_row *w = steps[i].applied->row;
		if (p->baseline_version && fl_version_compare(w->version, p->baseline_version) <= 0) {
			fl_error_append(
			    &errs, fl_error_new("cannot undo migration %s: it is at or below the baseline %s",
			                        w->version, p->baseline_version));
			continue;
		}
		steps[i].undo = file_of(set, FL_MIG_UNDO, w->version);
		if (!steps[i].undo) {
			char *file = p->display_dir ? fl_asprintf("%s/%s", p->display_dir, w->script)
			                            : fl_strdup(w->script);
			fl_error_append(&errs,
			                fl_error_at(file, 0, 0,
			                            "cannot undo migration %s (%s): there is no U%s__*.sql "
			                            "file beside it",
			                            w->version, w->description, w->version));
			free(file);
		}
	}
	if (errs) {
		free(steps);
		*err = errs;
		return NULL;
	}
	*n = k;
	return steps;
}
