#include "drift.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"

/* ---- findings ---- */

static char *dup_or_null(const char *s)
{
	return s ? fl_strdup(s) : NULL;
}

void fl_drift_add(fl_drift_findings *f, const char *service, fl_drift_kind kind, const char *change,
                  const char *object, const char *expected, const char *found, const char *file,
                  const char *fmt, ...)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->items = fl_realloc(f->items, f->cap * sizeof(*f->items));
	}
	fl_drift_finding *d = &f->items[f->n++];
	d->service = dup_or_null(service);
	d->kind = kind;
	d->change = fl_strdup(change);
	d->object = fl_strdup(object);
	d->expected = dup_or_null(expected);
	d->found = dup_or_null(found);
	d->file = dup_or_null(file);
	d->script = NULL;
	d->installed_on = NULL;
	d->commit = NULL;
	va_list ap;
	va_start(ap, fmt);
	d->message = fl_vasprintf(fmt, ap);
	va_end(ap);
}

void fl_drift_set_commit(fl_drift_finding *d, const char *note, fl_git_commit *commit)
{
	if (note && *note) {
		char *m = fl_asprintf("%s%s", d->message, note);
		free(d->message);
		d->message = m;
	}
	if (commit) {
		if (d->commit) {
			fl_git_commit_clear(d->commit);
			free(d->commit);
		}
		d->commit = fl_malloc(sizeof(*d->commit));
		*d->commit = *commit;
		memset(commit, 0, sizeof(*commit));
	}
}

/* what a caller needs to ask git about the last finding */
static void remember_file(fl_drift_findings *out, const fl_plan_item *it)
{
	fl_drift_finding *d = &out->items[out->n - 1];
	d->script = fl_strdup(it->mig->script);
	d->installed_on = dup_or_null(it->row->installed_on);
}

void fl_drift_move(fl_drift_findings *dst, fl_drift_findings *src)
{
	for (size_t i = 0; i < src->n; i++) {
		if (dst->n == dst->cap) {
			dst->cap = dst->cap ? dst->cap * 2 : 16;
			dst->items = fl_realloc(dst->items, dst->cap * sizeof(*dst->items));
		}
		dst->items[dst->n++] = src->items[i];
	}
	free(src->items);
	memset(src, 0, sizeof(*src));
}

void fl_drift_findings_clear(fl_drift_findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		fl_drift_finding *d = &f->items[i];
		free(d->service);
		free(d->change);
		free(d->object);
		free(d->message);
		free(d->expected);
		free(d->found);
		free(d->file);
		free(d->script);
		free(d->installed_on);
		if (d->commit) {
			fl_git_commit_clear(d->commit);
			free(d->commit);
		}
	}
	free(f->items);
	memset(f, 0, sizeof(*f));
}

const char *fl_drift_kind_name(fl_drift_kind k)
{
	switch (k) {
	case FL_DRIFT_HISTORY:
		return "history";
	case FL_DRIFT_SCHEMA:
		return "schema";
	case FL_DRIFT_GRANTS:
		return "grants";
	}
	return "?";
}

int fl_drift_parse_only(const char *list, fl_error **err)
{
	int mask = 0;
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		if (len == 7 && strncmp(p, "history", 7) == 0)
			mask |= FL_DRIFT_HISTORY;
		else if (len == 6 && strncmp(p, "schema", 6) == 0)
			mask |= FL_DRIFT_SCHEMA;
		else if ((len == 6 && strncmp(p, "grants", 6) == 0) ||
		         (len == 5 && strncmp(p, "grant", 5) == 0))
			mask |= FL_DRIFT_GRANTS;
		else {
			*err = fl_error_new(
			    "--only: unknown check '%.*s'; the checks are history, schema, grants", (int)len,
			    p);
			return -1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (!mask) {
		*err = fl_error_new("--only needs at least one of history, schema, grants");
		return -1;
	}
	return mask;
}

/* ---- history ---- */

static char *item_name(const fl_plan_item *it)
{
	const char *version = it->row ? it->row->version : it->mig ? it->mig->version : NULL;
	const char *desc = it->row ? it->row->description : it->mig ? it->mig->description : "";
	if (version)
		return fl_asprintf("migration %s (%s)", version, desc);
	return fl_asprintf("repeatable migration \"%s\"", desc);
}

static char *item_file(const fl_plan *p, const fl_plan_item *it)
{
	if (it->mig)
		return fl_strdup(it->mig->path);
	if (it->row && it->row->script)
		return p->display_dir ? fl_asprintf("%s/%s", p->display_dir, it->row->script)
		                      : fl_strdup(it->row->script);
	return NULL;
}

void fl_drift_history(const fl_plan *p, const char *service, fl_drift_findings *out)
{
	const fl_drift_kind K = FL_DRIFT_HISTORY;
	for (size_t i = 0; i < p->n; i++) {
		const fl_plan_item *it = &p->items[i];
		char *name = item_name(it);
		char *file = item_file(p, it);
		const char *on = it->row && it->row->installed_on ? it->row->installed_on : "?";
		switch (it->state) {
		case FL_ST_FAILED:
		case FL_ST_MISSING_FAILED:
		case FL_ST_FUTURE_FAILED:
			fl_drift_add(out, service, K, "failed", name, NULL, NULL, file,
			             "%s is recorded as failed in %s (%s)%s", name, p->history_name, on,
			             it->resumable ? "; migrate continues it"
			                           : "; undo what it changed, then repair");
			break;
		case FL_ST_MISSING:
			fl_drift_add(out, service, K, "missing", name, NULL, NULL, file,
			             "%s was applied (%s) but its file %s is missing from the repository",
			             name, on, file ? file : it->row->script);
			break;
		case FL_ST_FUTURE:
			fl_drift_add(
			    out, service, K, "ahead", name, p->latest_file_version, it->row->version, file,
			    "%s is applied (%s) but the repository does not know version %s (no file %s; its "
			    "latest is %s): the database is ahead, or the file was deleted",
			    name, on, it->row->version, file ? file : it->row->script,
			    p->latest_file_version ? p->latest_file_version : "none");
			break;
		case FL_ST_PENDING:
		case FL_ST_ABOVE_TARGET:
			fl_drift_add(out, service, K, "pending", name, NULL, NULL, file,
			             "%s is pending (%s): the database is behind the repository", name,
			             file ? file : "");
			break;
		case FL_ST_IGNORED:
			fl_drift_add(out, service, K, "ignored", name, NULL, NULL, file,
			             "%s (%s) is not applied but is below the current version %s", name,
			             file ? file : "", p->current_version ? p->current_version : "");
			break;
		case FL_ST_OUTDATED:
			fl_drift_add(out, service, K, "outdated", name, NULL, NULL, file,
			             "%s (%s) changed since it last ran (%s)", name, file ? file : "", on);
			if (it->mig && it->row)
				remember_file(out, it);
			break;
		default:
			break;
		}
		if (it->mismatch && it->row && it->mig) {
			char exp[32] = "", fnd[32] = "";
			fl_buf what;
			fl_buf_init(&what);
			if (it->mismatch & FL_MISMATCH_CHECKSUM) {
				snprintf(exp, sizeof(exp), "%d", it->row->checksum);
				snprintf(fnd, sizeof(fnd), "%d", it->checksum);
				fl_buf_printf(&what, "checksum %d when applied, %d now", it->row->checksum,
				              it->checksum);
			}
			if (it->mismatch & FL_MISMATCH_DESCRIPTION)
				fl_buf_printf(&what, "%sdescription \"%s\" when applied, \"%s\" now",
				              what.len ? "; " : "", it->row->description,
				              it->mig->description);
			if (it->mismatch & FL_MISMATCH_TYPE)
				fl_buf_printf(&what, "%stype %s when applied", what.len ? "; " : "",
				              it->row->type);
			fl_drift_add(out, service, K, "changed", name, exp[0] ? exp : NULL,
			             fnd[0] ? fnd : NULL, file,
			             "%s (%s) was changed after it was applied: %s", name, file, what.data);
			if (it->mismatch & FL_MISMATCH_CHECKSUM)
				remember_file(out, it);
			fl_buf_free(&what);
		}
		free(name);
		free(file);
	}
}

/* ---- snapshots ---- */

/*
 * One query, one round trip: (kind, name, parent, attr, value) rows.
 * $1 = the service's schema (names in it are written bare), $2 = the
 * history table in it (left out with its indexes and constraints, as is
 * Alembic's alembic_version there),
 * $3 = the ignored schemas (text[]), $4 = read comments, $5 = read the
 * column order. Every catalog name is qualified with pg_catalog, since the
 * session runs with search_path = pg_catalog only.
 */
static const char SNAPSHOT_SQL[] =
    "WITH ns AS ("
    "  SELECT n.oid, n.nspname, n.nspowner,"
    "         CASE WHEN n.nspname = $1 THEN '' ELSE n.nspname || '.' END AS pfx"
    "  FROM pg_namespace n"
    "  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'flotilla')"
    "    AND n.nspname !~ '^pg_(toast|temp_)'"
    "    AND n.nspname <> ALL ($3::text[])"
    "    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass"
    "                    AND d.objid = n.oid AND d.deptype = 'e')),"
    " rel AS ("
    "  SELECT c.oid, c.relname, c.relkind, c.relowner, c.relrowsecurity, c.relforcerowsecurity,"
    "         c.relpersistence, n.pfx || c.relname AS qname"
    "  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace"
    "  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    "    AND NOT (n.nspname = $1 AND c.relname = $2)"
    /* Alembic's bookkeeping, left by a service that Alembic migrated (README "From Alembic") */
    "    AND NOT (n.nspname = $1 AND c.relname = 'alembic_version')"
    "    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    "                    AND d.objid = c.oid AND d.deptype = 'e'))"
    /* schemas */
    /* text, not name, for every column: UNION takes the first branch's types, and name is cut at 63 bytes */
    " SELECT 'schema'::text, nspname::text, ''::text, 'owner'::text, pg_get_userbyid(nspowner)::text FROM ns"
    /* tables */
    " UNION ALL SELECT CASE WHEN r.relkind = 'f' THEN 'foreign table' ELSE 'table' END, r.qname, '', x.k, x.v"
    "  FROM rel r CROSS JOIN LATERAL (VALUES"
    "   ('owner', pg_get_userbyid(r.relowner)),"
    "   ('row level security', CASE WHEN r.relforcerowsecurity THEN 'forced' WHEN r.relrowsecurity"
    "      THEN 'enabled' ELSE 'disabled' END),"
    "   ('kind', CASE r.relkind WHEN 'p' THEN 'partitioned' ELSE 'ordinary' END"
    "      || CASE r.relpersistence WHEN 'u' THEN ', unlogged' ELSE '' END),"
    "   ('comment', CASE WHEN $4::boolean THEN obj_description(r.oid, 'pg_class') END),"
    "   ('column order', CASE WHEN $5::boolean THEN (SELECT string_agg(quote_ident(a.attname), ', '"
    "      ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0"
    "      AND NOT a.attisdropped) END)) x(k, v)"
    "  WHERE r.relkind IN ('r', 'p', 'f')"
    /* columns */
    " UNION ALL SELECT 'column', r.qname || '.' || a.attname, r.qname, x.k, coalesce(x.v, '')"
    "  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped"
    "  LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum"
    "  CROSS JOIN LATERAL (VALUES"
    "   ('type', format_type(a.atttypid, a.atttypmod)"
    "      || CASE WHEN a.attcollation <> 0 AND a.attcollation <> (SELECT t.typcollation FROM pg_type t"
    "         WHERE t.oid = a.atttypid) THEN ' COLLATE ' || (SELECT quote_ident(co.collname)"
    "         FROM pg_collation co WHERE co.oid = a.attcollation) ELSE '' END),"
    "   ('nullability', CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'nullable' END),"
    "   ('default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END),"
    "   ('identity', CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'"
    "      WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END),"
    "   ('generated', CASE WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS ('"
    "      || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED' END),"
    "   ('comment', CASE WHEN $4::boolean THEN col_description(r.oid, a.attnum) END)) x(k, v)"
    "  WHERE r.relkind IN ('r', 'p', 'f')"
    /* table constraints */
    " UNION ALL SELECT CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key'"
    "    WHEN 'u' THEN 'unique constraint' WHEN 'c' THEN 'check constraint'"
    "    WHEN 'x' THEN 'exclusion constraint' WHEN 't' THEN 'constraint trigger' ELSE 'constraint' END,"
    "   r.qname || '.' || c.conname, r.qname, x.k, x.v"
    "  FROM pg_constraint c JOIN rel r ON r.oid = c.conrelid CROSS JOIN LATERAL (VALUES"
    /* NOT VALID is its own attribute: the "invalid" finding, not a changed definition */
    "   ('definition', regexp_replace(pg_get_constraintdef(c.oid), ' NOT VALID$', '')),"
    "   ('validity', CASE WHEN NOT c.convalidated THEN 'NOT VALID' END)) x(k, v)"
    /* indexes, except those a constraint owns (the constraint says it) */
    " UNION ALL SELECT 'index', n.pfx || i.relname, r.qname, v.k, v.v"
    "  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN rel r ON r.oid = x.indrelid"
    "  JOIN ns n ON n.oid = i.relnamespace CROSS JOIN LATERAL (VALUES"
    "   ('definition', pg_get_indexdef(i.oid)),"
    "   ('validity', CASE WHEN NOT x.indisvalid THEN 'INVALID' END)) v(k, v)"
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid"
    "                    AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x'))"
    /* views and materialized views */
    " UNION ALL SELECT CASE r.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, r.qname, '', x.k, "
    "x.v"
    "  FROM rel r CROSS JOIN LATERAL (VALUES ('definition', pg_get_viewdef(r.oid)),"
    "   ('owner', pg_get_userbyid(r.relowner))) x(k, v)"
    "  WHERE r.relkind IN ('v', 'm')"
    /* sequences */
    " UNION ALL SELECT 'sequence', r.qname, '', x.k, x.v"
    "  FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid CROSS JOIN LATERAL (VALUES"
    "   ('type', format_type(s.seqtypid, NULL)), ('start', s.seqstart::text),"
    "   ('increment', s.seqincrement::text), ('minimum', s.seqmin::text), ('maximum', s.seqmax::text),"
    "   ('cycle', CASE WHEN s.seqcycle THEN 'yes' ELSE 'no' END),"
    "   ('owner', pg_get_userbyid(r.relowner))) x(k, v)"
    /* functions, procedures, aggregates */
    " UNION ALL SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'"
    "    WHEN 'w' THEN 'window function' ELSE 'function' END,"
    "   n.pfx || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', '', x.k,"
    "   coalesce(x.v, '')"
    "  FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace CROSS JOIN LATERAL (VALUES"
    "   ('definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END),"
    "   ('owner', pg_get_userbyid(p.proowner))) x(k, v)"
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
    "                    AND d.objid = p.oid AND d.deptype = 'e')"
    /* triggers */
    " UNION ALL SELECT 'trigger', r.qname || '.' || t.tgname, r.qname, 'definition', pg_get_triggerdef(t.oid)"
    "  FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal"
    /* row-level security policies */
    " UNION ALL SELECT 'policy', r.qname || '.' || po.polname, r.qname, x.k, coalesce(x.v, '')"
    "  FROM pg_policy po JOIN rel r ON r.oid = po.polrelid CROSS JOIN LATERAL (VALUES"
    "   ('command', CASE po.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'"
    "      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END),"
    "   ('permissive', CASE WHEN po.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END),"
    "   ('roles', (SELECT string_agg(CASE WHEN ro = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(ro) END, ', '"
    "      ORDER BY 1) FROM unnest(po.polroles) ro)),"
    "   ('using', pg_get_expr(po.polqual, po.polrelid)),"
    "   ('with check', pg_get_expr(po.polwithcheck, po.polrelid))) x(k, v)"
    /* types: enums, domains, composite types, ranges */
    " UNION ALL SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type'"
    "    ELSE 'type' END, n.pfx || t.typname, '', x.k, coalesce(x.v, '')"
    "  FROM pg_type t JOIN ns n ON n.oid = t.typnamespace CROSS JOIN LATERAL (VALUES"
    "   ('owner', pg_get_userbyid(t.typowner)),"
    "   ('labels', CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', '"
    "      ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END),"
    "   ('base type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END),"
    "   ('nullability', CASE WHEN t.typtype = 'd' THEN CASE WHEN t.typnotnull THEN 'NOT NULL'"
    "      ELSE 'nullable' END END),"
    "   ('default', t.typdefault),"
    "   ('constraints', CASE WHEN t.typtype = 'd' THEN (SELECT string_agg(c.conname || ' '"
    "      || pg_get_constraintdef(c.oid), '; ' ORDER BY c.conname) FROM pg_constraint c"
    "      WHERE c.contypid = t.oid) END),"
    "   ('attributes', CASE WHEN t.typtype = 'c' THEN (SELECT string_agg(a.attname || ' '"
    "      || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) FROM pg_attribute a"
    "      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END)) x(k, v)"
    "  WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c"
    "         WHERE c.oid = t.typrelid) = 'c'))"
    "    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass"
    "                    AND d.objid = t.oid AND d.deptype = 'e')"
    /* extensions */
    " UNION ALL SELECT 'extension', e.extname, '', x.k, x.v"
    "  FROM pg_extension e CROSS JOIN LATERAL (VALUES ('version', e.extversion),"
    "   ('schema', (SELECT nspname FROM pg_namespace WHERE oid = e.extnamespace))) x(k, v)"
    /* a provider's extension: in an ignored schema, or owning one (pg_cron's cron) */
    "  WHERE (SELECT nspname FROM pg_namespace WHERE oid = e.extnamespace) <> ALL ($3::text[])"
    "    AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_namespace en ON en.oid = d.objid"
    "                    WHERE d.classid = 'pg_namespace'::regclass AND d.refclassid = "
    "'pg_extension'::regclass"
    "                    AND d.refobjid = e.oid AND d.deptype = 'e' AND en.nspname = ANY ($3::text[]))";

static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from);
	if (!fl || !strstr(s, from))
		return fl_strdup(s);
	fl_buf b;
	fl_buf_init(&b);
	const char *p = s, *q;
	while ((q = strstr(p, from))) {
		fl_buf_add(&b, p, (size_t)(q - p));
		fl_buf_puts(&b, to);
		p = q + fl;
	}
	fl_buf_puts(&b, p);
	return fl_buf_detach(&b);
}

static int attr_cmp(const void *a, const void *b)
{
	const fl_drift_attr *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);
	if (!c)
		c = strcmp(x->name, y->name);
	if (!c)
		c = strcmp(x->attr, y->attr);
	return c;
}

/* '{"a","b"}': a text[] literal for the query's parameter */
static char *text_array(char *const *v, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			fl_buf_putc(&b, ',');
		fl_buf_putc(&b, '"');
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				fl_buf_putc(&b, '\\');
			fl_buf_putc(&b, *p);
		}
		fl_buf_putc(&b, '"');
	}
	fl_buf_putc(&b, '}');
	return fl_buf_detach(&b);
}

/*
 * The settings under which both sides are read. DISCARD ALL first: a
 * migration's SET (search_path, role, anything) stays on the replay's
 * session after its transaction; the fixed values then override what ALTER
 * DATABASE / ALTER ROLE ... SET gave the session when it started. Each of
 * them changes how pg_get_expr, pg_get_constraintdef and friends print a
 * value: search_path which names are qualified, the others how constants
 * (dates, intervals, timestamps, floats, bytea) in defaults and checks read.
 */
static const char SNAPSHOT_SESSION_SQL[] =
    "SET search_path = pg_catalog; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = postgres;"
    " SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET bytea_output = hex";

int fl_drift_snapshot_take(fl_pg *pg, const fl_drift_snapshot_opts *o, fl_drift_snapshot **out,
                           fl_error **err)
{
	/* DISCARD ALL refuses to run inside a transaction block, so it goes alone */
	if (fl_pg_exec(pg, "DISCARD ALL", "resetting the session before reading the catalog", NULL, err) !=
	        0 ||
	    fl_pg_exec(pg, SNAPSHOT_SESSION_SQL, "fixing the session's settings before reading the catalog",
	               NULL, err) != 0)
		return -1;
	char *ignored = text_array(o->ignore_schemas, o->nignore_schemas);
	const char *params[5] = {o->schema ? o->schema : "public",
	                         o->history_table ? o->history_table : FL_HISTORY_DEFAULT_TABLE, ignored,
	                         o->comments ? "true" : "false", o->column_order ? "true" : "false"};
	PGresult *r = fl_pg_query(pg, SNAPSHOT_SQL, 5, params, "reading the catalog", NULL, err);
	free(ignored);
	if (!r)
		return -1;
	const char *rename_from = o->rename_from, *rename_to = o->rename_to;
	fl_drift_snapshot *s = fl_calloc(1, sizeof(*s));
	int n = PQntuples(r);
	s->items = fl_calloc(n ? (size_t)n : 1, sizeof(fl_drift_attr));
	for (int i = 0; i < n; i++) {
		fl_drift_attr *a = &s->items[s->n++];
		a->kind = fl_strdup(PQgetvalue(r, i, 0));
		a->name = fl_strdup(PQgetvalue(r, i, 1));
		a->parent = fl_strdup(PQgetvalue(r, i, 2));
		a->attr = fl_strdup(PQgetvalue(r, i, 3));
		const char *v = PQgetisnull(r, i, 4) ? "" : PQgetvalue(r, i, 4);
		a->value = rename_from && rename_to ? replace_all(v, rename_from, rename_to) : fl_strdup(v);
	}
	PQclear(r);
	qsort(s->items, s->n, sizeof(fl_drift_attr), attr_cmp);
	*out = s;
	return 0;
}

void fl_drift_snapshot_free(fl_drift_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->items[i].kind);
		free(s->items[i].name);
		free(s->items[i].parent);
		free(s->items[i].attr);
		free(s->items[i].value);
	}
	free(s->items);
	free(s);
}

/* ---- comparison ---- */

/* [i, end) of the rows of one object */
static size_t object_end(const fl_drift_snapshot *s, size_t i)
{
	size_t j = i + 1;
	while (j < s->n && strcmp(s->items[j].kind, s->items[i].kind) == 0 &&
	       strcmp(s->items[j].name, s->items[i].name) == 0)
		j++;
	return j;
}

static int object_cmp(const fl_drift_attr *a, const fl_drift_attr *b)
{
	int c = strcmp(a->kind, b->kind);
	return c ? c : strcmp(a->name, b->name);
}

static const char *attr_value(const fl_drift_snapshot *s, size_t i, size_t end, const char *attr)
{
	for (; i < end; i++)
		if (strcmp(s->items[i].attr, attr) == 0)
			return s->items[i].value;
	return NULL;
}

/* "(ts DESC)" from "CREATE INDEX x ON public.t USING btree (ts DESC)": what a person compares */
static char *index_shown(const char *def)
{
	const char *u = strstr(def, " USING ");
	if (!u)
		return fl_strdup(def);
	u += 7;
	if (strncmp(u, "btree ", 6) == 0)
		u += 6;
	return fl_asprintf("%s%s", strncmp(def, "CREATE UNIQUE", 13) == 0 ? "UNIQUE " : "", u);
}

/* A short note on what the object is, for "exists in the database but not in the migrations". */
static char *object_summary(const fl_drift_snapshot *s, size_t i, size_t end)
{
	const char *kind = s->items[i].kind;
	const char *v;
	if (strcmp(kind, "column") == 0 && (v = attr_value(s, i, end, "type")))
		return fl_asprintf(" (%s)", v);
	if (strcmp(kind, "index") == 0 && (v = attr_value(s, i, end, "definition"))) {
		char *x = index_shown(v);
		char *r = fl_asprintf(" %s", x);
		free(x);
		return r;
	}
	if (strstr(kind, "constraint") || strcmp(kind, "primary key") == 0 ||
	    strcmp(kind, "foreign key") == 0) {
		if ((v = attr_value(s, i, end, "definition")))
			return fl_asprintf(" (%s)", v);
	}
	return fl_strdup("");
}

static bool multiline(const char *s)
{
	return strchr(s, '\n') || strlen(s) > 100;
}

/* The first line where a and b differ, trimmed, into la / lb (new strings); returns its number. */
static int first_diff_line(const char *a, const char *b, char **la, char **lb)
{
	int line = 1;
	for (;;) {
		size_t na = strcspn(a, "\n"), nb = strcspn(b, "\n");
		if (na != nb || memcmp(a, b, na) != 0 || (!a[na]) != (!b[nb])) {
			const char *x = a, *y = b;
			while (*x == ' ' || *x == '\t')
				x++, na--;
			while (*y == ' ' || *y == '\t')
				y++, nb--;
			*la = na ? fl_strndup(x, na) : fl_strdup("(nothing)");
			*lb = nb ? fl_strndup(y, nb) : fl_strdup("(nothing)");
			return line;
		}
		if (!a[na])
			break;
		a += na + 1;
		b += nb + 1;
		line++;
	}
	*la = fl_strdup("");
	*lb = fl_strdup("");
	return line;
}

static bool in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool is_relation_kind(const char *k)
{
	return strcmp(k, "table") == 0 || strcmp(k, "foreign table") == 0 || strcmp(k, "view") == 0 ||
	       strcmp(k, "materialized view") == 0;
}

/* "a, b, c" -> the names, in order (new array of new strings, *n set) */
static char **split_list(const char *s, size_t *n)
{
	char **v = fl_calloc(strlen(s) / 2 + 2, sizeof(char *));
	*n = 0;
	while (*s) {
		const char *e = strstr(s, ", ");
		size_t len = e ? (size_t)(e - s) : strlen(s);
		v[(*n)++] = fl_strndup(s, len);
		s += len;
		if (*s)
			s += 2;
	}
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* the names of a that b has too, in a's order, as "x, y" */
static char *shared_order(char **a, size_t na, char **b, size_t nb)
{
	fl_buf out;
	fl_buf_init(&out);
	for (size_t i = 0; i < na; i++) {
		bool both = false;
		for (size_t k = 0; k < nb && !both; k++)
			both = strcmp(a[i], b[k]) == 0;
		if (!both)
			continue;
		if (out.len)
			fl_buf_puts(&out, ", ");
		fl_buf_puts(&out, a[i]);
	}
	return fl_buf_detach(&out);
}

/*
 * Column order, told apart from columns added or dropped: only the columns
 * both sides have are compared, so a column added by hand at the end is one
 * "extra" finding and not also an order change.
 */
static void compare_order(const char *label, const char *ev, const char *av, const char *service,
                          fl_drift_findings *out)
{
	size_t ne, na;
	char **le = split_list(ev, &ne), **la = split_list(av, &na);
	char *se = shared_order(le, ne, la, na), *sa = shared_order(la, na, le, ne);
	if (strcmp(se, sa) != 0)
		fl_drift_add(out, service, FL_DRIFT_SCHEMA, "order", label, ev, av, NULL,
		             "%s has its columns in another order (SELECT * and COPY see it): expected %s; "
		             "found %s",
		             label, se, sa);
	free(se);
	free(sa);
	free_list(le, ne);
	free_list(la, na);
}

static void compare_attrs(const fl_drift_snapshot *e, size_t i, size_t ie, const fl_drift_snapshot *a,
                          size_t j, size_t je, const char *service, fl_drift_findings *out)
{
	const fl_drift_attr *o = &e->items[i];
	char *label = fl_asprintf("%s %s", o->kind, o->name);
	/* attribute lists come from one query, so both have the same names in the same order */
	while (i < ie || j < je) {
		int c = i >= ie ? 1 : j >= je ? -1 : strcmp(e->items[i].attr, a->items[j].attr);
		const char *attr = c <= 0 ? e->items[i].attr : a->items[j].attr;
		const char *ev = c <= 0 ? e->items[i].value : "";
		const char *av = c >= 0 ? a->items[j].value : "";
		if (strcmp(attr, "validity") == 0) {
			/* fl_drift_compare reports it for the live side alone */
		} else if (strcmp(attr, "column order") == 0) {
			compare_order(label, ev, av, service, out);
		} else if (strcmp(ev, av) != 0) {
			bool one = strcmp(attr, "definition") == 0;
			const char *evs = *ev ? ev : "none", *avs = *av ? av : "none";
			char *ex = NULL, *fx = NULL;
			if (strcmp(o->kind, "index") == 0 && one) {
				ex = index_shown(evs);
				fx = index_shown(avs);
			}
			if (!ex && (multiline(evs) || multiline(avs))) {
				char *la, *lb;
				int line = first_diff_line(evs, avs, &la, &lb);
				fl_drift_add(out, service, FL_DRIFT_SCHEMA, "changed", label, ev, av, NULL,
				             "%s differs: %s%sline %d: expected \"%s\", found \"%s\"", label,
				             one ? "" : attr, one ? "" : " ", line, la, lb);
				free(la);
				free(lb);
			} else {
				fl_drift_add(out, service, FL_DRIFT_SCHEMA, "changed", label, ev, av, NULL,
				             "%s differs: %s%sexpected %s, found %s", label, one ? "" : attr,
				             one ? "" : " ", ex ? ex : evs, fx ? fx : avs);
			}
			free(ex);
			free(fx);
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	free(label);
}

void fl_drift_compare(const fl_drift_snapshot *e, const fl_drift_snapshot *a, const char *service,
                      fl_drift_findings *out)
{
	/* relations on one side only: their columns, indexes ... are not repeated */
	char **only_e = fl_calloc(e->n + 1, sizeof(char *)), **only_a = fl_calloc(a->n + 1, sizeof(char *));
	size_t ne = 0, na = 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t i = 0, j = 0;
		while (i < e->n || j < a->n) {
			int c = i >= e->n ? 1 : j >= a->n ? -1 : object_cmp(&e->items[i], &a->items[j]);
			size_t ie = i < e->n ? object_end(e, i) : i, je = j < a->n ? object_end(a, j) : j;
			if (pass == 0) {
				if (c < 0 && is_relation_kind(e->items[i].kind))
					only_e[ne++] = e->items[i].name;
				else if (c > 0 && is_relation_kind(a->items[j].kind))
					only_a[na++] = a->items[j].name;
			} else if (c < 0) {
				const fl_drift_attr *o = &e->items[i];
				if (!(*o->parent && in_list(only_e, ne, o->parent))) {
					char *label = fl_asprintf("%s %s", o->kind, o->name);
					char *sum = object_summary(e, i, ie);
					fl_drift_add(
					    out, service, FL_DRIFT_SCHEMA, "missing", label, NULL, NULL, NULL,
					    "%s%s is in the migrations but not in the database", label, sum);
					free(sum);
					free(label);
				}
			} else if (c > 0) {
				const fl_drift_attr *o = &a->items[j];
				if (!(*o->parent && in_list(only_a, na, o->parent))) {
					char *label = fl_asprintf("%s %s", o->kind, o->name);
					char *sum = object_summary(a, j, je);
					fl_drift_add(out, service, FL_DRIFT_SCHEMA, "extra", label, NULL,
					             NULL, NULL,
					             "%s%s exists in the database but not in the migrations",
					             label, sum);
					free(sum);
					free(label);
				}
			} else {
				compare_attrs(e, i, ie, a, j, je, service, out);
			}
			if (c <= 0)
				i = ie;
			if (c >= 0)
				j = je;
		}
	}
	free(only_e);
	free(only_a);
	/* half-done work in the live database, whatever the migrations say */
	for (size_t j = 0; j < a->n; j++) {
		const fl_drift_attr *o = &a->items[j];
		if (strcmp(o->attr, "validity") != 0 || !*o->value)
			continue;
		char *label = fl_asprintf("%s %s", o->kind, o->name);
		if (strcmp(o->kind, "index") == 0)
			fl_drift_add(
			    out, service, FL_DRIFT_SCHEMA, "invalid", label, NULL, o->value, NULL,
			    "%s is INVALID in the database (a CREATE INDEX CONCURRENTLY or REINDEX that "
			    "failed or was cancelled): queries do not use it; drop it and build it again",
			    label);
		else
			fl_drift_add(
			    out, service, FL_DRIFT_SCHEMA, "invalid", label, NULL, o->value, NULL,
			    "%s is NOT VALID in the database: rows that were there before it was added "
			    "were never checked; ALTER TABLE %s VALIDATE CONSTRAINT it",
			    label, o->parent);
		free(label);
	}
}

/* ---- one service ---- */

void fl_drift_service_result_clear(fl_drift_service_result *r)
{
	fl_drift_findings_clear(&r->findings);
	free(r->version);
	free(r->kept_shadow);
	free(r->skipped);
	memset(r, 0, sizeof(*r));
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void set_conn(const fl_drift_service_opts *o, fl_pg *pg)
{
	if (o->on_conn)
		o->on_conn(o->conn_ctx, pg ? pg->conn : NULL);
}

static bool cancelled(const fl_drift_service_opts *o)
{
	return o->cancel && atomic_load(o->cancel);
}

static fl_error *cancel_error(void)
{
	fl_error *e = fl_error_new("cancelled");
	e->kind = FL_EINTR;
	return e;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * "flotilla_shadow_<service>_<t>_<pid>" (see fl_drift_shadow_cleanup): the
 * server's clock and the admin session's backend, so that a later run can
 * tell a leftover from a shadow another run is still using. 63 bytes at
 * most: prefix (16) + service (<= 27) + "_" + t (8 in base 36 until 2059)
 * + "_" + pid (<= 10).
 */
static char *shadow_name(fl_pg *admin, const char *service, bool kept, fl_error **err)
{
	PGresult *r = fl_pg_query(admin,
	                          "SELECT pg_catalog.pg_backend_pid(), (extract(epoch FROM "
	                          "pg_catalog.clock_timestamp()) * 1000)::bigint",
	                          0, NULL, "naming the shadow database", NULL, err);
	if (!r)
		return NULL;
	unsigned long long ms = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	char t[16], *p = t + sizeof(t) - 1;
	*p = '\0';
	do {
		*--p = "0123456789abcdefghijklmnopqrstuvwxyz"[ms % 36];
		ms /= 36;
	} while (ms && p > t);
	/* a kept shadow (tests) ends in k<pid>, which no cleanup takes for a leftover */
	char *name = fl_asprintf("%s%.27s_%s_%s%s", FL_DRIFT_SHADOW_PREFIX, service, p, kept ? "k" : "",
	                         PQgetvalue(r, 0, 0));
	PQclear(r);
	return name;
}

/* -1 when name is not of shadow_name's form; else its time (ms), creator's pid and service (<= 27 bytes) */
static int shadow_parse(const char *name, unsigned long long *ms, long *pid, char svc[32])
{
	size_t plen = strlen(FL_DRIFT_SHADOW_PREFIX);
	if (strncmp(name, FL_DRIFT_SHADOW_PREFIX, plen) != 0)
		return -1;
	const char *u2 = strrchr(name, '_');
	if (!u2 || u2 - name <= (ptrdiff_t)plen || !u2[1] || strspn(u2 + 1, "0123456789") != strlen(u2 + 1))
		return -1;
	const char *u1 = u2 - 1;
	while (u1 > name + plen && *u1 != '_')
		u1--;
	size_t tl = (size_t)(u2 - u1 - 1);
	if (*u1 != '_' || tl == 0 || tl > 12 || strspn(u1 + 1, "0123456789abcdefghijklmnopqrstuvwxyz") < tl)
		return -1;
	*ms = 0;
	for (const char *q = u1 + 1; q < u2; q++)
		*ms = *ms * 36 + (unsigned long long)(*q <= '9' ? *q - '0' : *q - 'a' + 10);
	*pid = strtol(u2 + 1, NULL, 10);
	snprintf(svc, 32, "%.*s", (int)(u1 - name - (ptrdiff_t)plen), name + plen);
	return 0;
}

/* Backends connected to database `name` (-1 with *err). */
static int backends_on(fl_pg *admin, const char *name, fl_error **err)
{
	const char *params[1] = {name};
	char *v = fl_pg_value(admin, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1", 1,
	                      params, err);
	if (!v)
		return -1;
	int n = atoi(v);
	free(v);
	return n;
}

/*
 * DROP DATABASE without FORCE, once nobody is connected: FORCE would have to
 * signal the replay's backend, which belongs to the service's owner, and
 * the documented admin (CREATEDB, CREATEROLE) may not do that. The replay's
 * connection is already closed; its backend exits a moment later, so wait
 * for it (and retry a drop that still meets a session, 55006) up to
 * wait_ms.
 */
static int shadow_drop(fl_pg *admin, const char *name, int wait_ms, fl_error **err)
{
	char *q = fl_pg_ident_plain(name);
	char *sql = fl_asprintf("DROP DATABASE IF EXISTS %s", q);
	free(q);
	double until = now_s() + wait_ms / 1000.0;
	int rc;
	for (;;) {
		int n = backends_on(admin, name, err);
		if (n < 0) {
			rc = -1;
			break;
		}
		if (n > 0 && now_s() < until) {
			sleep_ms(20);
			continue;
		}
		fl_pg_diag d;
		memset(&d, 0, sizeof(d));
		rc = fl_pg_exec(admin, sql, "dropping the shadow database", &d, err);
		bool busy = rc != 0 && strcmp(d.sqlstate, "55006") == 0;
		fl_pg_diag_clear(&d);
		if (rc == 0 || !busy || now_s() >= until)
			break;
		fl_error_free(*err);
		*err = NULL;
		sleep_ms(50);
	}
	free(sql);
	return rc;
}

int fl_drift_shadow_cleanup(fl_pg *admin, char *const *services, size_t nservices, int wait_ms,
                            char ***dropped, size_t *ndropped, fl_error **warnings, fl_error **err)
{
	*dropped = NULL;
	*ndropped = 0;
	/* the run's start on the server's clock, and who is alive to own a shadow */
	PGresult *r = fl_pg_query(
	    admin,
	    "SELECT d.datname, (extract(epoch FROM pg_catalog.now()) * 1000)::bigint,"
	    " (SELECT string_agg(a.pid || ':' || (extract(epoch FROM a.backend_start) * 1000)::bigint, ',')"
	    "  FROM pg_catalog.pg_stat_activity a)"
	    " FROM pg_catalog.pg_database d WHERE d.datname LIKE 'flotilla\\_shadow\\_%' ORDER BY 1",
	    0, NULL, "looking for shadow databases left by earlier runs", NULL, err);
	if (!r)
		return -1;
	int n = PQntuples(r);
	char **cand = fl_calloc((size_t)n + 1, sizeof(char *));
	size_t nc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = PQgetvalue(r, i, 0);
		unsigned long long ms, start = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		long pid;
		char svc[32];
		if (shadow_parse(name, &ms, &pid, svc) != 0 || ms >= start)
			continue;
		bool mine = !services;
		for (size_t k = 0; k < nservices && !mine; k++)
			mine = strncmp(services[k], svc, 27) == 0 && strlen(svc) == strnlen(services[k], 27);
		if (!mine)
			continue;
		/* its creator alive: a backend with its pid that started before the shadow */
		bool alive = false;
		const char *p = PQgetvalue(r, i, 2);
		while (*p && !alive) {
			long bp = strtol(p, (char **)&p, 10);
			unsigned long long bs = *p == ':' ? strtoull(p + 1, (char **)&p, 10) : 0;
			alive = bp == pid && bs <= ms;
			p += strcspn(p, ",");
			if (*p == ',')
				p++;
		}
		if (!alive)
			cand[nc++] = fl_strdup(name);
	}
	PQclear(r);
	double until = now_s() + wait_ms / 1000.0;
	for (size_t i = 0; i < nc; i++) {
		int left = (int)((until - now_s()) * 1000);
		fl_error *e = NULL;
		if (shadow_drop(admin, cand[i], left > 0 ? left : 0, &e) == 0) {
			*dropped = fl_realloc(*dropped, (*ndropped + 1) * sizeof(char *));
			(*dropped)[(*ndropped)++] = cand[i];
			continue;
		}
		fl_error_prefix(e, "shadow database %s left by an earlier run is still there", cand[i]);
		fl_error_append(warnings, e);
		free(cand[i]);
	}
	free(cand);
	return 0;
}

/* Blanks every owner: on another server they say nothing about the live database's. */
static void forget_owners(fl_drift_snapshot *s)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->items[i].attr, "owner") == 0)
			s->items[i].value[0] = '\0';
}

/*
 * On another server: may the connecting user become the service's owner
 * there (the role exists and it is a member)? 1 yes, 0 no, -1 with *err.
 */
static int can_be_owner(fl_pg *admin, const char *owner, fl_error **err)
{
	const char *params[1] = {owner};
	PGresult *r = fl_pg_query(
	    admin, "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", 1,
	    params, "looking for the owner role on the shadow server", NULL, err);
	if (!r)
		return -1;
	int yes = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return yes;
}

/* Replays the migrations into a new shadow database and snapshots it; the shadow is dropped unless kept. */
static int schema_check(const fl_drift_service_opts *o, fl_pg *live, const char *target,
                        fl_drift_service_result *res, fl_error **err)
{
	const fl_service *svc = o->svc;
	fl_pg_params ap = *o->admin;
	fl_pg *admin = fl_pg_connect(&ap, err);
	if (!admin)
		return -1;
	/* on another server the owner role is usually missing: the connecting user owns the shadow */
	int as_owner = o->shadow_remote ? can_be_owner(admin, svc->owner, err) : 1;
	if (as_owner < 0) {
		fl_pg_close(admin);
		return -1;
	}
	char *name = shadow_name(admin, svc->name, o->keep_shadow, err);
	if (!name) {
		fl_pg_close(admin);
		return -1;
	}
	char *qn = fl_pg_ident_plain(name), *qo = fl_pg_ident_plain(svc->owner);
	char *sql = as_owner ? fl_asprintf("CREATE DATABASE %s OWNER %s", qn, qo)
	                     : fl_asprintf("CREATE DATABASE %s", qn);
	free(qn);
	free(qo);
	int rc = -1;
	fl_drift_snapshot *exp = NULL, *act = NULL;
	double t0 = now_s();
	if (cancelled(o)) {
		*err = cancel_error();
		free(sql);
		free(name);
		fl_pg_close(admin);
		return -1;
	}
	/* from here on the shadow exists (or the CREATE failed): every path below drops it */
	if (fl_pg_exec(admin, sql, "creating the shadow database", NULL, err) != 0) {
		free(sql);
		free(name);
		fl_pg_close(admin);
		return -1;
	}
	free(sql);
	res->create_s = now_s() - t0;
	t0 = now_s();

	fl_pg_params sp = *o->shadow_login;
	sp.dbname = name;
	fl_pg *shadow = fl_pg_connect(&sp, err);
	if (shadow) {
		set_conn(o, shadow);
		/* provision makes the service's schema exist and belong to the owner: so does the shadow
		 * (whether that still holds live is grant drift's business) */
		char *qs = fl_pg_ident_plain(svc->schema ? svc->schema : "public");
		char *qr = fl_pg_ident_plain(svc->owner);
		char *prep =
		    as_owner
		        ? fl_asprintf("SET ROLE %s; CREATE SCHEMA IF NOT EXISTS %s; ALTER SCHEMA %s OWNER "
		                      "TO %s; RESET ROLE",
		                      qr, qs, qs, qr)
		        : fl_asprintf("CREATE SCHEMA IF NOT EXISTS %s", qs);
		free(qs);
		free(qr);
		int prc = fl_pg_exec(shadow, prep, "preparing the shadow database", NULL, err);
		free(prep);
		fl_apply_opts ao;
		memset(&ao, 0, sizeof(ao));
		ao.service = svc->name;
		ao.display_dir = svc->migrations_as_written;
		ao.schema = svc->schema;
		ao.table = o->table;
		ao.role = as_owner ? svc->owner : NULL;
		ao.placeholders = svc->placeholders;
		ao.nplaceholders = svc->nplaceholders;
		ao.lock_timeout_ms = o->lock_timeout_ms;
		ao.statement_timeout_ms = o->statement_timeout_ms;
		ao.target = target;
		ao.out_of_order = true; /* the shadow replays what the database has, in file order */
		ao.cancel = o->cancel;
		ao.no_ledger = true;
		ao.command = "drift";
		fl_apply_result ar;
		memset(&ar, 0, sizeof(ar));
		if (prc != 0) {
			/* *err says why */
		} else if (fl_apply_migrate(shadow, o->set, &ao, &ar, err) != 0) {
			if (*err && (*err)->kind != FL_EINTR)
				fl_error_prefix(*err, "replaying the migrations into the shadow database %s",
				                name);
		} else {
			res->replay_s = now_s() - t0;
			double t1 = now_s();
			fl_drift_snapshot_opts so = {
			    .schema = svc->schema,
			    .history_table = o->table,
			    .rename_from = name,
			    .rename_to = svc->database,
			    .ignore_schemas = o->ignore_schemas,
			    .nignore_schemas = o->nignore_schemas,
			    .column_order = o->column_order,
			    .comments = o->comments,
			};
			fl_drift_snapshot_opts lo = so;
			lo.rename_from = lo.rename_to = NULL;
			if (fl_drift_snapshot_take(shadow, &so, &exp, err) == 0 &&
			    fl_drift_snapshot_take(live, &lo, &act, err) == 0) {
				res->snapshot_s = now_s() - t1;
				if (o->shadow_remote) {
					forget_owners(exp);
					forget_owners(act);
				}
				fl_drift_compare(exp, act, svc->name, &res->findings);
				rc = 0;
			}
		}
		fl_apply_result_clear(&ar);
		set_conn(o, live);
		fl_pg_close(shadow);
	}
	if (o->keep_shadow) {
		res->kept_shadow = name;
		name = NULL;
	} else {
		fl_error *derr = NULL;
		double td = now_s();
		int drc = shadow_drop(admin, name, o->drop_wait_ms > 0 ? o->drop_wait_ms : 10000, &derr);
		res->drop_s = now_s() - td;
		if (drc != 0) {
			fl_error_prefix(derr, "%s left behind", name);
			fl_error_append(err, derr);
			rc = -1;
		}
	}
	free(name);
	fl_pg_close(admin);
	fl_drift_snapshot_free(exp);
	fl_drift_snapshot_free(act);
	return rc;
}

/*
 * Is a migration running? The lock is tried and let go of in one
 * statement, so a migrate that tries it meanwhile (apply polls every
 * 100 ms) can at worst miss one try: it never waits for the whole check.
 * 0 free, 1 held (*holder: "pid 4242, since ..."), -1 with *err.
 */
static int migration_running(fl_pg *live, const fl_drift_service_opts *o, char **holder, fl_error **err)
{
	long long key = fl_history_lock_key(o->svc->schema ? o->svc->schema : "public",
	                                    o->table ? o->table : FL_HISTORY_DEFAULT_TABLE);
	char k[24], classid[24], objid[24];
	snprintf(k, sizeof(k), "%lld", key);
	snprintf(classid, sizeof(classid), "%llu", (unsigned long long)key >> 32);
	snprintf(objid, sizeof(objid), "%llu", (unsigned long long)key & 0xFFFFFFFFull);
	const char *params[3] = {k, classid, objid};
	PGresult *r = fl_pg_query(
	    live,
	    "SELECT CASE WHEN pg_catalog.pg_try_advisory_lock($1::bigint)"
	    " THEN pg_catalog.pg_advisory_unlock($1::bigint) ELSE false END,"
	    " (SELECT l.pid || coalesce(', since ' || pg_catalog.to_char(a.backend_start AT TIME ZONE 'UTC',"
	    "   'YYYY-MM-DD HH24:MI:SS') || ' UTC', '')"
	    "  FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
	    "  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
	    "  AND l.classid = $2::oid AND l.objid = $3::oid AND l.pid <> pg_catalog.pg_backend_pid()"
	    "  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
	    "pg_catalog.current_database())"
	    "  ORDER BY l.pid LIMIT 1)",
	    3, params, "trying the migration lock", NULL, err);
	if (!r)
		return -1;
	int held = strcmp(PQgetvalue(r, 0, 0), "t") != 0;
	if (held)
		*holder =
		    fl_strdup(PQgetisnull(r, 0, 1) ? "a session that has just ended" : PQgetvalue(r, 0, 1));
	PQclear(r);
	return held;
}

/*
 * Did the history table gain or lose rows since h was read? A migration
 * that ran and finished while the shadow replayed leaves no lock to see,
 * only its row. 1 yes, 0 no, -1 with *err.
 */
static int history_moved(fl_pg *live, const fl_history *h, fl_error **err)
{
	if (!h->exists)
		return 0;
	char *name = fl_history_name(h->schema, h->table);
	char *sql = fl_asprintf("SELECT count(*) FROM %s", name);
	free(name);
	char *v = fl_pg_value(live, sql, 0, NULL, err);
	free(sql);
	if (!v)
		return -1;
	int moved = strtoull(v, NULL, 10) != (unsigned long long)h->n;
	free(v);
	return moved;
}

int fl_drift_service(const fl_drift_service_opts *o, fl_drift_service_result *res, fl_error **err)
{
	const fl_service *svc = o->svc;
	double t0 = now_s();
	fl_pg *live = fl_pg_connect(o->live, err);
	if (!live)
		return -1;
	set_conn(o, live);
	char *holder = NULL;
	int held = migration_running(live, o, &holder, err);
	if (held != 0) {
		if (held > 0) {
			res->skipped = fl_asprintf("a migration is running (pid %s)", holder);
			free(holder);
		}
		set_conn(o, NULL);
		fl_pg_close(live);
		return held > 0 ? 0 : -1;
	}
	fl_apply_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.service = svc->name;
	ao.display_dir = svc->migrations_as_written;
	ao.schema = svc->schema;
	ao.table = o->table;
	ao.placeholders = svc->placeholders;
	ao.nplaceholders = svc->nplaceholders;
	fl_history *h = NULL;
	fl_plan *plan = NULL;
	int rc = fl_apply_info(live, o->set, &ao, &h, &plan, err);
	if (rc == 0) {
		res->version = plan->current_version ? fl_strdup(plan->current_version) : NULL;
		if (o->checks & FL_DRIFT_HISTORY) {
			fl_drift_history(plan, svc->name, &res->findings);
			for (fl_error *e = plan->input_errors; e; e = e->next)
				fl_drift_add(&res->findings, svc->name, FL_DRIFT_HISTORY, "failed",
				             e->file ? e->file : "input", NULL, NULL, e->file, "%s", e->msg);
		}
		res->history_s = now_s() - t0;
		if (o->checks & FL_DRIFT_SCHEMA) {
			if (cancelled(o)) {
				*err = cancel_error();
				rc = -1;
			} else {
				rc = schema_check(o, live,
				                  plan->current_version ? plan->current_version : "current",
				                  res, err);
			}
		}
		/* a migration that began (or even ended) meanwhile makes the comparison meaningless */
		if (rc == 0 && (held = migration_running(live, o, &holder, err)) != 0) {
			if (held > 0) {
				res->skipped =
				    fl_asprintf("a migration started during the check (pid %s)", holder);
				free(holder);
				fl_drift_findings_clear(&res->findings);
			} else {
				rc = -1;
			}
		} else if (rc == 0 && (held = history_moved(live, h, err)) != 0) {
			if (held > 0) {
				res->skipped =
				    fl_strdup("a migration ran during the check (the history table "
				              "changed)");
				fl_drift_findings_clear(&res->findings);
			} else {
				rc = -1;
			}
		}
	}
	fl_plan_free(plan);
	fl_history_free(h);
	set_conn(o, NULL);
	fl_pg_close(live);
	if (rc != 0 && cancelled(o) && *err && (*err)->kind != FL_EINTR)
		(*err)->kind = FL_EINTR;
	return rc;
}

/* ---- grants ---- */

static bool names_ident(const char *sql, const char *name)
{
	char *q = fl_pg_ident_plain(name);
	bool r = strstr(sql, q) != NULL;
	free(q);
	return r;
}

/* REVOKE, NO<attribute>, dropping a member: taking away is what a security finding looks like */
static bool takes_away(const char *sql)
{
	return strncmp(sql, "REVOKE", 6) == 0 || strstr(sql, " REVOKE ") ||
	       (strncmp(sql, "ALTER ROLE", 10) == 0 && strstr(sql, " NO"));
}

fl_error *fl_drift_grants(const fl_manifest *m, const fl_provision_target *t, fl_drift_findings *out)
{
	fl_provision_desired *d = fl_provision_desired_from_manifest(m);
	fl_provision_opts po = {.dry_run = true, .prune = true};
	fl_provision_result *res = NULL;
	fl_error *err = fl_provision_run(d, t, &po, &res);
	for (size_t i = 0; !err && res && i < res->nsteps; i++) {
		const fl_provision_step *s = &res->steps[i];
		const fl_service *owner = NULL;
		for (size_t k = 0; k < m->nservices && !owner; k++) {
			const fl_service *svc = &m->services[k];
			if ((s->database && strcmp(s->database, svc->database) == 0) ||
			    (!s->database &&
			     (names_ident(s->sql, svc->database) || names_ident(s->sql, svc->owner))))
				owner = svc;
		}
		bool sec = takes_away(s->sql);
		char *where = s->database ? fl_asprintf(" in %s", s->database) : fl_strdup("");
		if (sec)
			fl_drift_add(out, owner ? owner->name : NULL, FL_DRIFT_GRANTS, "security", s->desc,
			             NULL, s->sql, NULL, "extra privilege%s: %s (fix: %s)", where, s->desc,
			             s->sql);
		else
			fl_drift_add(out, owner ? owner->name : NULL, FL_DRIFT_GRANTS, "gap", s->desc, s->sql,
			             NULL, NULL, "missing%s: %s (fix: %s)", where, s->desc, s->sql);
		free(where);
	}
	for (size_t i = 0; !err && res && i < res->nwarnings; i++) {
		const char *w = res->warnings[i];
		const fl_service *owner = NULL;
		for (size_t k = 0; k < m->nservices && !owner; k++)
			if (strstr(w, m->services[k].database))
				owner = &m->services[k];
		fl_drift_add(out, owner ? owner->name : NULL, FL_DRIFT_GRANTS, "warning", w, NULL, NULL, NULL,
		             "%s", w);
	}
	fl_provision_result_free(res);
	fl_error_free(d->warnings);
	d->warnings = NULL;
	fl_provision_desired_free(d);
	return err;
}
