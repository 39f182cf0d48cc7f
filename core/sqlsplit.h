/*
 * sqlsplit: SQL text -> statements, the way PostgreSQL's own lexer sees them.
 *
 * Knows single-quoted strings (with '' escapes), E'' strings (with
 * backslash escapes), standard_conforming_strings on, double-quoted
 * identifiers, dollar quotes with tags ($$, $fn$), -- comments and nested
 * block comments, and BEGIN ATOMIC ... END bodies of SQL-standard
 * functions. psql meta-commands (a backslash command at the start of a
 * statement: \i, \set, \connect ...) and COPY ... FROM stdin are refused,
 * since they are psql's, not the server's. Offsets are bytes; places are
 * 1-based line and column, the column counted in characters.
 */
#ifndef FL_SQLSPLIT_H
#define FL_SQLSPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct {
	size_t start; /* byte offset of the statement's first token (comments before it skipped) */
	size_t end;   /* byte offset just past its last token, before the ';' */
	int line;     /* place of `start` */
	int col;
} fl_stmt;

/*
 * Splits `len` bytes of `sql`. Empty statements (";;", comment-only text)
 * are dropped. Returns 0 and a new array in *out (caller frees) with *n
 * statements, or -1 with *err at filename:line:col (an unterminated
 * quote or comment is reported where it starts).
 */
int fl_sqlsplit(const char *sql, size_t len, const char *filename, fl_stmt **out, size_t *n, fl_error **err);

/*
 * The offset just past the comment that starts at i: a -- comment ends at its
 * line's end, a block comment (nested ones included) after its closing slash,
 * an unterminated one at len. i itself when no comment starts there.
 */
size_t fl_sqlsplit_skip_comment(const char *s, size_t len, size_t i);

/* Byte offset -> 1-based line and column (characters) in `sql`. \r\n, \n and a lone \r end a line. */
void fl_sql_position(const char *sql, size_t len, size_t offset, int *line, int *col);
/* PostgreSQL reports error positions as 1-based character indexes: -> byte offset. */
size_t fl_sql_char_to_byte(const char *sql, size_t len, int charpos);

/*
 * Would PostgreSQL refuse this statement inside a transaction block?
 * CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, CREATE/DROP SUBSCRIPTION,
 * ALTER SYSTEM, CREATE/DROP [UNIQUE] INDEX CONCURRENTLY, REINDEX
 * SCHEMA/DATABASE/SYSTEM (and REINDEX ... CONCURRENTLY), VACUUM, DISCARD ALL.
 * Comments and case do not matter.
 */
bool fl_sql_refuses_transaction(const char *stmt, size_t len);

typedef enum {
	FL_SQL_OTHER,
	FL_SQL_CREATE_INDEX_CONCURRENTLY, /* CREATE [UNIQUE] INDEX CONCURRENTLY */
	FL_SQL_DROP_INDEX_CONCURRENTLY,   /* DROP INDEX CONCURRENTLY */
	FL_SQL_RERUNNABLE, /* VACUUM, ANALYZE, REINDEX, CLUSTER: running it twice is harmless */
} fl_sql_kind;

/*
 * What a statement works on, as far as the engine needs it to check a
 * statement that cannot be rolled back, and to name the table a lock wait
 * is about. Names point into the statement, as written (quotes and schema
 * kept: ready for to_regclass); NULL when the statement does not name one.
 */
typedef struct {
	fl_sql_kind kind;
	bool if_exists;    /* IF [NOT] EXISTS */
	const char *index; /* CREATE/DROP INDEX: the index (DROP: the first one) */
	size_t index_len;
	const char *table; /* the table the statement locks first: ALTER TABLE, LOCK, DROP TABLE,
	                      TRUNCATE, CREATE INDEX ... ON, CREATE TRIGGER ... ON */
	size_t table_len;
} fl_sql_about;

void fl_sql_about_of(const char *stmt, size_t len, fl_sql_about *out);

#endif
