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
 * Every wait has an end. A connect gives up after connect_timeout (the
 * manifest's, else PGCONNECT_TIMEOUT, else FL_PG_DEFAULT_CONNECT_TIMEOUT_S),
 * counted by flotilla around libpq's asynchronous connect, so a proxy that
 * accepts and then says nothing fails in that time, and a cancel flag ends
 * the wait within 100 ms. TCP keepalives and tcp_user_timeout are on unless
 * the options say otherwise, so a dead peer is noticed by the kernel. But a
 * proxy that is frozen still acknowledges every packet: only a deadline of
 * the client can see that, so every wait for a result in fl_pg_exec,
 * fl_pg_query and fl_pg_value is bounded (query_timeout_ms; see
 * fl_pg_query_timeout_for) and on expiry the connection is shut down (later
 * calls on it fail at once) and the error says so. Code that drives libpq
 * itself waits with fl_pg_wait_result.
 *
 * Cancel requests: PQcancel opens a new connection with no time limit, and
 * through a frozen proxy it never returns. PostgreSQL 15's libpq has neither
 * a non-blocking cancel (PQcancelCreate came in 17) nor a way to read the
 * cancel key to send the CancelRequest ourselves, so fl_pg_cancel_bounded
 * runs PQcancel on a detached helper thread and stops waiting for it after
 * a bound; a helper stuck on a dead path ends with the process. fl_pg_sever
 * ends a connection from any thread when even the cancel cannot get through.
 *
 * One fl_pg belongs to one thread at a time (libpq's rule); fl_pg_sever and
 * fl_pg_cancel_bounded are the exceptions, meant for other threads.
 */
#ifndef FL_PG_H
#define FL_PG_H

#include <libpq-fe.h>
#include <stdatomic.h>
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
	int connect_timeout; /* seconds; 0: PGCONNECT_TIMEOUT, else FL_PG_DEFAULT_CONNECT_TIMEOUT_S */
	const char *application_name; /* NULL: "flotilla" */
	const fl_pg_option *options;  /* further keywords, applied last (they win) */
	size_t noptions;
	/* the client's bound on one wait for a result (see fl_pg_query_timeout_for);
	 * 0: FL_PG_DEFAULT_QUERY_TIMEOUT_MS */
	int query_timeout_ms;
	/* when not NULL and set, a connect in progress gives up within 100 ms */
	const atomic_int *cancel;
} fl_pg_params;

/* connect_timeout when neither the caller nor PGCONNECT_TIMEOUT sets one. */
#define FL_PG_DEFAULT_CONNECT_TIMEOUT_S 10
/* TCP keepalives: first probe after 30 s idle, then every 10 s, dead after 3
 * unanswered; unacknowledged data is given up after tcp_user_timeout. A
 * keyword in the options replaces each. Unix sockets ignore them. */
#define FL_PG_KEEPALIVES_IDLE_S     30
#define FL_PG_KEEPALIVES_INTERVAL_S 10
#define FL_PG_KEEPALIVES_COUNT      3
#define FL_PG_TCP_USER_TIMEOUT_MS   60000
/* How long past the server's own limit the client still waits for an answer. */
#define FL_PG_QUERY_MARGIN_MS 60000
/* The wait when the server has no limit (statement_timeout = 0): a statement
 * that may run longer needs statement_timeout, which moves this bound too. */
#define FL_PG_DEFAULT_QUERY_TIMEOUT_MS (3600 * 1000)
/* How long fl_pg_cancel waits for the server to take a cancel request. */
#define FL_PG_CANCEL_TIMEOUT_MS 5000

/*
 * The client's bound for one statement: statement_timeout + 60 s when the
 * server has one (it ends the statement first, lock waits included, so the
 * margin covers only the round trip and a slow rollback); lock_timeout + 60
 * s is no bound, since a statement runs on once it has its locks; with no
 * statement_timeout, FL_PG_DEFAULT_QUERY_TIMEOUT_MS.
 */
int fl_pg_query_timeout_for(int statement_timeout_ms, int lock_timeout_ms);

/* The notices kept at most; later ones are counted in `notices_dropped`. */
#define FL_PG_MAX_NOTICES 200

typedef struct {
	PGconn *conn;
	char **notices; /* "NOTICE: relation \"t\" already exists, skipping" */
	size_t nnotices;
	size_t notices_dropped;
	char *password; /* a copy, only to scrub libpq messages; wiped on close */
	int query_timeout_ms;
	atomic_int sock; /* the socket, for fl_pg_sever from other threads; -1 once severed */
	/* fl_pg_watch: the deadline (guarded by the watchdog's lock) and, once it
	 * fired, the bound that expired, for the message */
	long long watch_deadline;
	int watch_ms;
	atomic_int watch_fired_ms;
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
 * password authentication failed ..."); the password never shows. Ends
 * within the connect timeout (see above), or soon after p->cancel is set.
 */
fl_pg *fl_pg_connect(const fl_pg_params *p, fl_error **err);

/*
 * Told before each retry of fl_pg_connect_retry: the attempt about to be made
 * (2 for the first retry), how many there are in all, and why the last one
 * failed (borrowed for the call). For "waiting for the server (attempt 3 of 10)".
 */
typedef void (*fl_pg_attempt_fn)(void *ctx, int attempt, int max, const fl_error *why);

/* Flyway's connectRetries and connectRetriesInterval: retries after the first
 * attempt, and the cap of the wait between two (1 s, doubling up to the cap).
 * The defaults wait 1+2+4+5+5+5+5+5 = 32 s: a proxy that takes 30 s to start. */
#define FL_PG_DEFAULT_CONNECT_RETRIES          8
#define FL_PG_DEFAULT_CONNECT_RETRIES_INTERVAL 5
#define FL_PG_MAX_CONNECT_RETRIES              1000
#define FL_PG_MAX_CONNECT_RETRIES_INTERVAL     3600

/*
 * fl_pg_connect, tried again up to `retries` times while the failure is one
 * that waiting may cure (nothing listening yet, a timeout, "the database
 * system is starting up", too many clients); a refusal (authentication, no
 * such database or role, pg_hba, SSL) fails at once. on_attempt (may be
 * NULL) is called before each retry. `cancel` (may be NULL) is checked
 * during every wait and connect: once set, the call returns within about
 * 100 ms with an error saying so. Only for the first connection of a run:
 * never reconnect this way after work started on a server.
 */
fl_pg *fl_pg_connect_retry(const fl_pg_params *p, int retries, int interval_s, fl_pg_attempt_fn on_attempt,
                           void *ctx, const atomic_int *cancel, fl_error **err);
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

/* Asks the server to cancel the running statement, waiting at most
 * FL_PG_CANCEL_TIMEOUT_MS (see fl_pg_cancel_bounded). */
int fl_pg_cancel(fl_pg *pg, fl_error **err);

/*
 * Sends the cancel request `c` (from PQgetCancel) and waits at most
 * timeout_ms for the server to take it: 0 when it did, -1 with *err (FL_EDB;
 * err may be NULL) when it failed or did not answer in time. Takes `c`: it
 * is freed here, or by the helper thread when a late PQcancel returns, so
 * the caller must not use or free it afterwards. Thread-safe; never holds a
 * lock of the caller's, so call it with none held.
 */
int fl_pg_cancel_bounded(PGcancel *c, int timeout_ms, fl_error **err);

/*
 * Ends the connection's traffic at once (shutdown of its socket), from any
 * thread: the owner's wait returns and its next call fails. For a frozen
 * path, where even a cancel request cannot get through. Safe to call twice.
 */
void fl_pg_sever(fl_pg *pg);

/*
 * A deadline for code that calls libpq itself (PQexec, a pipeline): unless
 * fl_pg_unwatch comes first, after `ms` a watchdog thread severs the
 * connection, and whatever libpq call is blocked on it returns with "server
 * closed the connection unexpectedly". Then fl_pg_watch_fired tells the bound
 * that expired, for a clear message (fl_pg_watch_error). One deadline per
 * connection; a new fl_pg_watch replaces the old. fl_pg_close unwatches.
 */
void fl_pg_watch(fl_pg *pg, int ms);
void fl_pg_unwatch(fl_pg *pg);
/* 0, or the bound (ms) after which the watchdog severed the connection. */
int fl_pg_watch_fired(fl_pg *pg);
/* "no answer from the server within 90 s (...); the connection was closed": new FL_EDB error. */
fl_error *fl_pg_watch_error(fl_pg *pg);

/* One query of a batch (fl_pg_batch). */
typedef struct {
	const char *sql;
	int nparams;
	const char *const *params;
} fl_pg_batch_query;

/*
 * Independent queries in one libpq pipeline, each followed by its own sync
 * so that one that fails (a table that does not exist yet) does not abort
 * the others: one round trip for all, where a query at a time costs one
 * each (what counts behind a proxy or across a network). res[i] is each
 * query's result, failed ones included (the caller PQclear()s them).
 * Bounded like fl_pg_query: n times the connection's bound, after which the
 * watchdog severs it. Returns 0, or -1 when the connection failed (*err,
 * prefixed by `what`; the results read so far are in res, the rest NULL).
 */
int fl_pg_batch(fl_pg *pg, const fl_pg_batch_query *q, size_t n, PGresult **res, const char *what,
                fl_error **err);

/* The client's bound for the waits of fl_pg_exec/_query/_value (<= 0: the default). */
void fl_pg_set_query_timeout(fl_pg *pg, int ms);

/*
 * For callers that drive libpq's asynchronous API themselves: flushes what
 * is queued and returns the next result as PQgetResult would (NULL when
 * there is none), waiting at most until the connection's bound from now.
 * On expiry returns NULL with *err saying so (FL_EDB) and severs the
 * connection; with no result and no error, *err stays NULL.
 */
PGresult *fl_pg_wait_result(fl_pg *pg, fl_error **err);

#endif
