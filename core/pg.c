#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Overwrites every occurrence of the password in s (in place), so no message can carry it. */
static void scrub(char *s, const char *password)
{
	if (!s || !password || !*password)
		return;
	size_t n = strlen(password);
	for (char *p = strstr(s, password); p; p = strstr(p + n, password))
		memset(p, '*', n);
}

static char *trimmed(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return fl_strndup(s, n);
}

static void on_notice(void *arg, const PGresult *r)
{
	fl_pg *pg = arg;
	if (pg->nnotices >= FL_PG_MAX_NOTICES) {
		pg->notices_dropped++;
		return;
	}
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char *line =
	    msg ? fl_asprintf("%s: %s", sev ? sev : "NOTICE", msg) : trimmed(PQresultErrorMessage(r));
	scrub(line, pg->password);
	pg->notices = fl_realloc(pg->notices, (pg->nnotices + 1) * sizeof(char *));
	pg->notices[pg->nnotices++] = line;
}

fl_pg *fl_pg_adopt(PGconn *conn)
{
	fl_pg *pg = fl_calloc(1, sizeof(*pg));
	pg->conn = conn;
	PQsetNoticeReceiver(conn, on_notice, pg);
	return pg;
}

fl_pg *fl_pg_connect(const fl_pg_params *p, fl_error **err)
{
	const char *keys[16 + 64], *vals[16 + 64];
	size_t n = 0;
	char timeout_buf[16];
	const char *timeout = timeout_buf;
#define PARAM(k, v)                                                                                          \
	do {                                                                                                 \
		if ((v) && *(v)) {                                                                           \
			keys[n] = (k);                                                                       \
			vals[n++] = (v);                                                                     \
		}                                                                                            \
	} while (0)
	PARAM("host", p->host);
	PARAM("port", p->port);
	PARAM("dbname", p->dbname);
	PARAM("user", p->user);
	PARAM("password", p->password);
	PARAM("sslmode", p->sslmode);
	if (p->connect_timeout > 0) {
		snprintf(timeout_buf, sizeof(timeout_buf), "%d", p->connect_timeout);
		PARAM("connect_timeout", timeout);
	}
	PARAM("application_name", p->application_name ? p->application_name : "flotilla");
	for (size_t i = 0; i < p->noptions && n < sizeof(keys) / sizeof(keys[0]) - 1; i++)
		PARAM(p->options[i].key, p->options[i].value);
#undef PARAM
	keys[n] = vals[n] = NULL;
	PGconn *conn = PQconnectdbParams(keys, vals, 0);
	if (!conn) {
		*err = fl_error_new("cannot connect: out of memory in libpq");
		(*err)->kind = FL_EDB;
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char *why = trimmed(PQerrorMessage(conn));
		scrub(why, p->password);
		const char *db = p->dbname ? p->dbname : PQdb(conn);
		const char *host = PQhost(conn), *port = PQport(conn), *user = PQuser(conn);
		fl_buf b;
		fl_buf_init(&b);
		fl_buf_printf(&b, "cannot connect to database \"%s\"", db ? db : "");
		if (host && *host)
			fl_buf_printf(&b, " on %s%s%s", host, port && *port ? ":" : "", port ? port : "");
		if (user && *user)
			fl_buf_printf(&b, " as %s", user);
		fl_buf_printf(&b, ": %s", why);
		free(why);
		char *msg = fl_buf_detach(&b);
		scrub(msg, p->password);
		*err = fl_error_new("%s", msg);
		(*err)->kind = FL_EDB;
		free(msg);
		PQfinish(conn);
		return NULL;
	}
	fl_pg *pg = fl_pg_adopt(conn);
	if (p->password)
		pg->password = fl_strdup(p->password);
	return pg;
}

void fl_pg_close(fl_pg *pg)
{
	if (!pg)
		return;
	if (pg->conn)
		PQfinish(pg->conn);
	for (size_t i = 0; i < pg->nnotices; i++)
		free(pg->notices[i]);
	free(pg->notices);
	if (pg->password) {
		volatile char *p = pg->password;
		while (*p)
			*p++ = 0;
		free(pg->password);
	}
	free(pg);
}

static char *field(const PGresult *r, int code, const char *password)
{
	const char *v = r ? PQresultErrorField(r, code) : NULL;
	if (!v)
		return NULL;
	char *s = fl_strdup(v);
	scrub(s, password);
	return s;
}

void fl_pg_diag_clear(fl_pg_diag *d)
{
	free(d->severity);
	free(d->message);
	free(d->detail);
	free(d->hint);
	free(d->context);
	free(d->internal_query);
	free(d->schema);
	free(d->table);
	free(d->column);
	free(d->constraint);
	memset(d, 0, sizeof(*d));
}

void fl_pg_diag_move(fl_pg_diag *dst, fl_pg_diag *src)
{
	if (dst == src)
		return;
	fl_pg_diag_clear(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void fl_pg_diag_fill(fl_pg_diag *d, const PGresult *r, const fl_pg *pg)
{
	const char *password = pg ? pg->password : NULL;
	fl_pg_diag_clear(d);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state)
		snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", state);
	d->severity = field(r, PG_DIAG_SEVERITY_NONLOCALIZED, password);
	if (!d->severity)
		d->severity = field(r, PG_DIAG_SEVERITY, password);
	d->message = field(r, PG_DIAG_MESSAGE_PRIMARY, password);
	if (!d->message) {
		/* not the server's error: libpq's own (connection lost, protocol) */
		const char *m = r ? PQresultErrorMessage(r) : NULL;
		if ((!m || !*m) && pg && pg->conn)
			m = PQerrorMessage(pg->conn);
		d->message = trimmed(m && *m ? m : "unknown error (no message from libpq)");
		scrub(d->message, password);
	}
	d->detail = field(r, PG_DIAG_MESSAGE_DETAIL, password);
	d->hint = field(r, PG_DIAG_MESSAGE_HINT, password);
	d->context = field(r, PG_DIAG_CONTEXT, password);
	d->internal_query = field(r, PG_DIAG_INTERNAL_QUERY, password);
	d->schema = field(r, PG_DIAG_SCHEMA_NAME, password);
	d->table = field(r, PG_DIAG_TABLE_NAME, password);
	d->column = field(r, PG_DIAG_COLUMN_NAME, password);
	d->constraint = field(r, PG_DIAG_CONSTRAINT_NAME, password);
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	d->position = pos ? atoi(pos) : 0;
	pos = r ? PQresultErrorField(r, PG_DIAG_INTERNAL_POSITION) : NULL;
	d->internal_position = pos ? atoi(pos) : 0;
}

char *fl_pg_diag_format(const fl_pg_diag *d)
{
	fl_buf b;
	fl_buf_init(&b);
	if (d->sqlstate[0])
		fl_buf_printf(&b, "%s %s: ", d->severity ? d->severity : "ERROR", d->sqlstate);
	fl_buf_puts(&b, d->message ? d->message : "unknown error");
	if (d->detail)
		fl_buf_printf(&b, "\nDETAIL: %s", d->detail);
	if (d->hint)
		fl_buf_printf(&b, "\nHINT: %s", d->hint);
	return fl_buf_detach(&b);
}

fl_error *fl_pg_diag_error(const fl_pg_diag *d, const char *file, int line, int col)
{
	char *msg = fl_pg_diag_format(d);
	fl_error *e = fl_error_at(file, line, col, "%s", msg);
	free(msg);
	e->kind = FL_EDB;
	return e;
}

/* The error for a failed result, prefixed with what was being done. */
static fl_error *result_error(fl_pg *pg, const PGresult *r, const char *what, fl_pg_diag *diag)
{
	fl_pg_diag local = {0};
	fl_pg_diag *d = diag ? diag : &local;
	fl_pg_diag_fill(d, r, pg);
	fl_error *e = fl_pg_diag_error(d, NULL, 0, 0);
	if (what)
		fl_error_prefix(e, "%s", what);
	fl_pg_diag_clear(&local);
	return e;
}

static bool result_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

int fl_pg_exec(fl_pg *pg, const char *sql, const char *what, fl_pg_diag *diag, fl_error **err)
{
	PGresult *r = PQexec(pg->conn, sql);
	if (r && result_ok(r)) {
		PQclear(r);
		return 0;
	}
	fl_error *e = result_error(pg, r, what, diag);
	PQclear(r);
	if (err)
		*err = e;
	else
		fl_error_free(e);
	return -1;
}

PGresult *fl_pg_query(fl_pg *pg, const char *sql, int nparams, const char *const *params, const char *what,
                      fl_pg_diag *diag, fl_error **err)
{
	PGresult *r = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (r && result_ok(r))
		return r;
	fl_error *e = result_error(pg, r, what, diag);
	PQclear(r);
	if (err)
		*err = e;
	else
		fl_error_free(e);
	return NULL;
}

char *fl_pg_value(fl_pg *pg, const char *sql, int nparams, const char *const *params, fl_error **err)
{
	PGresult *r = fl_pg_query(pg, sql, nparams, params, NULL, NULL, err);
	if (!r)
		return NULL;
	char *v = NULL;
	if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
		v = fl_strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

char *fl_pg_ident(fl_pg *pg, const char *name)
{
	char *q = PQescapeIdentifier(pg->conn, name, strlen(name));
	if (!q)
		return fl_pg_ident_plain(name);
	char *s = fl_strdup(q);
	PQfreemem(q);
	return s;
}

char *fl_pg_literal(fl_pg *pg, const char *text)
{
	char *q = PQescapeLiteral(pg->conn, text, strlen(text));
	if (!q)
		return fl_pg_literal_plain(text);
	char *s = fl_strdup(q);
	PQfreemem(q);
	return s;
}

static char *quote_with(const char *s, char q)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, q);
	for (; *s; s++) {
		if (*s == q)
			fl_buf_putc(&b, q);
		fl_buf_putc(&b, *s);
	}
	fl_buf_putc(&b, q);
	return fl_buf_detach(&b);
}

char *fl_pg_ident_plain(const char *name)
{
	return quote_with(name, '"');
}

char *fl_pg_literal_plain(const char *text)
{
	/* E'' is needed only when backslashes must be escaped; with standard strings they are literal */
	return quote_with(text, '\'');
}

char **fl_pg_take_notices(fl_pg *pg, size_t *n)
{
	char **v = pg->notices;
	*n = pg->nnotices;
	pg->notices = NULL;
	pg->nnotices = 0;
	pg->notices_dropped = 0;
	return v;
}

int fl_pg_cancel(fl_pg *pg, fl_error **err)
{
	PGcancel *c = PQgetCancel(pg->conn);
	char buf[256] = "";
	int ok = c && PQcancel(c, buf, sizeof(buf));
	if (c)
		PQfreeCancel(c);
	if (ok)
		return 0;
	if (err) {
		*err =
		    fl_error_new("cannot cancel the running statement: %s", buf[0] ? buf : "no connection");
		(*err)->kind = FL_EDB;
	}
	return -1;
}
