/*
 * pg: the thin libpq layer every module that talks to PostgreSQL uses.
 *
 * It owns a connection (fl_pg), opened from plain parameters with
 * PQconnectdbParams and expand_dbname = 0, so a parameter left NULL falls
 * back exactly as for every libpq program (PGHOST, PGPORT, PGSERVICE,
 * .pgpass, PGSSLMODE ...) and no value is ever parsed as a connection
 * string. application_name is "flotilla" unless the caller says otherwise,
 * so a lock holder or a long query is recognisable in pg_stat_activity.
 *
 * Server errors become fl_error values "ERROR 42P01: relation "x" does not
 * exist" plus "\nDETAIL: ..." and "\nHINT: ..." lines, kind FL_EDB; the
 * full diagnostics (position, context, internal query) are kept in an
 * fl_pg_diag for callers that map positions to files. A password never
 * appears in any message: it is not part of what is formatted, and libpq's
 * own messages are scrubbed of it as well.
 *
 * Notices (RAISE NOTICE, "relation already exists, skipping") are collected
 * in the fl_pg instead of being printed on stderr, where they would tear
 * the live progress view; the owner takes them when it wants to show them.
 *
 * One fl_pg belongs to one thread at a time (libpq's rule).
 */
#ifndef FL_PG_H
#define FL_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* One extra libpq keyword (e.g. "sslrootcert", "target_session_attrs"). */
typedef struct {
	const char *key;
	const char *value;
} fl_pg_option;

/* Everything NULL / 0 is left to libpq and its environment variables. */
typedef struct {
	const char *host;   /* host name, address or socket directory */
	const char *port;   /* as text, like libpq */
	const char *dbname; /* never expanded as a connection string */
	const char *user;
	const char *password; /* NULL: libpq finds one (.pgpass, PGPASSWORD) or needs none */
	const char *sslmode;
	int connect_timeout;          /* seconds; 0: libpq's default (PGCONNECT_TIMEOUT or none) */
	const char *application_name; /* NULL: "flotilla" */
	const fl_pg_option *options;  /* further keywords, applied last (they win) */
	size_t noptions;
} fl_pg_params;

/* The notices kept at most; later ones are counted in `notices_dropped`. */
#define FL_PG_MAX_NOTICES 200

typedef struct {
	PGconn *conn;
	char **notices; /* "NOTICE: relation \"t\" already exists, skipping" */
	size_t nnotices;
	size_t notices_dropped;
	char *password; /* a copy, only to scrub libpq messages; wiped on close */
} fl_pg;

/* What the server said about a failed statement. Strings are NULL when absent. */
typedef struct {
	char sqlstate[6]; /* "" when the failure was not the server's (connection lost) */
	char *severity;   /* "ERROR", "FATAL" (not localised) */
	char *message;
	char *detail;
	char *hint;
	char *context;         /* "PL/pgSQL function inline_code_block line 4 at RAISE" */
	int position;          /* 1-based character in the statement; 0: none */
	int internal_position; /* 1-based character in internal_query; 0: none */
	char *internal_query;
	char *schema, *table, *column, *constraint;
} fl_pg_diag;

/*
 * Opens a connection. Returns NULL with *err (FL_EDB) saying where it tried
 * ("cannot connect to database "auth_db" on 10.0.0.5:5432 as flyway_user:
 * password authentication failed ..."); the password never shows.
 */
fl_pg *fl_pg_connect(const fl_pg_params *p, fl_error **err);
/* Wraps a connection someone else opened (it must be CONNECTION_OK); takes ownership. */
fl_pg *fl_pg_adopt(PGconn *conn);
/* Closes the connection and frees everything. NULL is fine. */
void fl_pg_close(fl_pg *pg);

/* Fills d from a failed result (r may be NULL: then from the connection's message). */
void fl_pg_diag_fill(fl_pg_diag *d, const PGresult *r, const fl_pg *pg);
void fl_pg_diag_clear(fl_pg_diag *d);
/* Moves src into dst (dst cleared first). */
void fl_pg_diag_move(fl_pg_diag *dst, fl_pg_diag *src);
/* "ERROR 42P01: msg" + "\nDETAIL: ..." + "\nHINT: ..."; new string. */
char *fl_pg_diag_format(const fl_pg_diag *d);
/* A new FL_EDB error carrying fl_pg_diag_format(d), at file:line:col when file is given. */
fl_error *fl_pg_diag_error(const fl_pg_diag *d, const char *file, int line, int col);

/*
 * Runs one SQL text (may hold several statements; simple protocol) and
 * returns 0, or -1 with *err (FL_EDB), prefixed by `what` when not NULL
 * ("creating the history table: ERROR 42501: ..."). When diag is not NULL
 * it receives the diagnostics of the failure.
 */
int fl_pg_exec(fl_pg *pg, const char *sql, const char *what, fl_pg_diag *diag, fl_error **err);
/*
 * Runs one statement with text parameters (NULL entries are SQL NULL) and
 * returns its result (PGRES_TUPLES_OK or PGRES_COMMAND_OK; caller PQclear()s),
 * or NULL with *err as for fl_pg_exec.
 */
PGresult *fl_pg_query(fl_pg *pg, const char *sql, int nparams, const char *const *params, const char *what,
                      fl_pg_diag *diag, fl_error **err);
/* The first column of the first row of a query, new string; NULL for SQL NULL or no row (check *err). */
char *fl_pg_value(fl_pg *pg, const char *sql, int nparams, const char *const *params, fl_error **err);

/* "name" quoted for the connection's encoding (PQescapeIdentifier); new string. */
char *fl_pg_ident(fl_pg *pg, const char *name);
/* 'text' quoted as a literal (PQescapeLiteral); new string. */
char *fl_pg_literal(fl_pg *pg, const char *text);
/* The same without a connection, for UTF-8 servers with standard_conforming_strings (all we support). */
char *fl_pg_ident_plain(const char *name);
char *fl_pg_literal_plain(const char *text);

/* Takes the collected notices (caller frees each and the array) and empties the list. */
char **fl_pg_take_notices(fl_pg *pg, size_t *n);

/* Asks the server to cancel the running statement (thread-safe, as PQcancel). */
int fl_pg_cancel(fl_pg *pg, fl_error **err);

#endif
