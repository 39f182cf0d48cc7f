/*
 * indexes: see indexes.h. The creator is found with the splitter and the
 * statement classifier the engine uses for no-transaction files, so a
 * name in a comment or a string is never taken for an index.
 */
#include "indexes.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlsplit.h"

/* A name as written ("s"."Idx", s.idx, idx) -> its last part as the catalog spells it. */
static char *catalog_name(const char *w, size_t n)
{
	/* the last dot outside double quotes starts the relation's own name */
	size_t start = 0;
	bool quoted = false;
	for (size_t i = 0; i < n; i++) {
		if (w[i] == '"')
			quoted = !quoted;
		else if (w[i] == '.' && !quoted)
			start = i + 1;
	}
	fl_buf b;
	fl_buf_init(&b);
	quoted = false;
	for (size_t i = start; i < n; i++) {
		if (w[i] == '"') {
			if (quoted && i + 1 < n && w[i + 1] == '"') {
				fl_buf_putc(&b, '"');
				i++;
			} else {
				quoted = !quoted;
			}
			continue;
		}
		/* PostgreSQL folds unquoted names to lower case (ASCII only) */
		fl_buf_putc(&b, quoted ? w[i] : (char)tolower((unsigned char)w[i]));
	}
	return fl_buf_detach(&b);
}

const fl_migration *fl_indexes_creator(const fl_migration_set *set, const char *index, int *line, int *col)
{
	const fl_migration *found = NULL;
	for (size_t k = 0; set && k < set->n; k++) {
		const fl_migration *m = &set->items[k];
		if (m->kind == FL_MIG_UNDO)
			continue;
		fl_stmt *st = NULL;
		size_t n = 0;
		fl_error *e = NULL;
		if (fl_sqlsplit(m->data, m->len, m->path, &st, &n, &e) != 0) {
			fl_error_free(e); /* validate reports a file that does not split elsewhere */
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			fl_sql_about a;
			fl_sql_about_of(m->data + st[i].start, st[i].end - st[i].start, &a);
			if (!a.index || a.kind == FL_SQL_DROP_INDEX_CONCURRENTLY)
				continue;
			/* a CREATE INDEX: the classifier names the index of DROP INDEX too */
			const char *s = m->data + st[i].start;
			if (strncasecmp(s, "CREATE", 6) != 0)
				continue;
			char *name = catalog_name(a.index, a.index_len);
			if (strcmp(name, index) == 0) {
				found = m;
				*line = st[i].line;
				*col = st[i].col;
			}
			free(name);
		}
		free(st);
	}
	return found;
}

int fl_indexes_invalid(fl_pg *pg, const char *schema, const fl_migration_set *set, fl_error **found,
                       fl_error **err)
{
	const char *params[] = {schema};
	PGresult *r = fl_pg_query(pg,
	                          "SELECT c.relname, t.relname FROM pg_catalog.pg_index i"
	                          " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
	                          " JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
	                          " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	                          " WHERE NOT i.indisvalid AND n.nspname = $1 ORDER BY c.relname",
	                          1, params, "reading the indexes", NULL, err);
	if (!r)
		return -1;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *index = PQgetvalue(r, i, 0), *table = PQgetvalue(r, i, 1);
		int line = 0, col = 0;
		const fl_migration *m = fl_indexes_creator(set, index, &line, &col);
		fl_error *e;
		if (m)
			e = fl_error_at(
			    m->path, line, col,
			    "index %s on table %s.%s is INVALID (a CREATE INDEX CONCURRENTLY or "
			    "REINDEX that did not finish); it was created by %s; migrate drops and "
			    "builds it again when that migration is pending, otherwise drop it (DROP "
			    "INDEX CONCURRENTLY) and build it again",
			    index, schema, table, m->script);
		else
			e = fl_error_new(
			    "index %s on table %s.%s is INVALID (a CREATE INDEX CONCURRENTLY or "
			    "REINDEX that did not finish); no migration of this service creates it; "
			    "drop it (DROP INDEX CONCURRENTLY) or build it again (REINDEX INDEX "
			    "CONCURRENTLY)",
			    index, schema, table);
		e->kind = FL_EDRIFT;
		fl_error_append(found, e);
	}
	PQclear(r);
	return n;
}
