#include "pg.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

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
	pg->query_timeout_ms = FL_PG_DEFAULT_QUERY_TIMEOUT_MS;
	atomic_init(&pg->sock, PQsocket(conn));
	PQsetNoticeReceiver(conn, on_notice, pg);
	return pg;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fl_pg_query_timeout_for(int statement_timeout_ms, int lock_timeout_ms)
{
	(void)lock_timeout_ms;
	if (statement_timeout_ms <= 0)
		return FL_PG_DEFAULT_QUERY_TIMEOUT_MS;
	if (statement_timeout_ms > INT_MAX - FL_PG_QUERY_MARGIN_MS)
		return INT_MAX;
	return statement_timeout_ms + FL_PG_QUERY_MARGIN_MS;
}

/* The connect timeout in seconds: the caller's, an option's, PGCONNECT_TIMEOUT, else ours. */
static int connect_timeout_s(const fl_pg_params *p)
{
	int t = p->connect_timeout;
	for (size_t i = 0; i < p->noptions; i++)
		if (strcmp(p->options[i].key, "connect_timeout") == 0 && p->options[i].value)
			t = atoi(p->options[i].value);
	if (t <= 0) {
		const char *e = getenv("PGCONNECT_TIMEOUT");
		t = e && *e ? atoi(e) : 0;
	}
	if (t <= 0)
		t = FL_PG_DEFAULT_CONNECT_TIMEOUT_S;
	/* libpq's own rule: less than 2 s is 2 s, since one second may be almost none */
	return t < 2 ? 2 : t;
}

static bool has_option(const fl_pg_params *p, const char *key)
{
	for (size_t i = 0; i < p->noptions; i++)
		if (strcmp(p->options[i].key, key) == 0)
			return true;
	return false;
}

/*
 * Failures that waiting may cure: nothing answers yet (refused, no socket
 * file, a timeout), or the server says it is starting, stopping or full.
 * Anything else the server refuses (FATAL: authentication, no such database
 * or role, pg_hba) and the client's own refusals stay refused. libpq gives
 * no SQLSTATE for a failed connect, so this reads its message (the server's
 * part is in English with ci/pg and with lc_messages = C, the default of the
 * managed clusters).
 */
static bool retryable(const char *why)
{
	static const char *const transient[] = {"the database system is starting up",
	                                        "the database system is shutting down",
	                                        "the database system is not yet accepting connections",
	                                        "the database system is in recovery mode",
	                                        "too many clients already",
	                                        "remaining connection slots are reserved"};
	for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
		if (strstr(why, transient[i]))
			return true;
	static const char *const final[] = {
	    "FATAL", "fe_sendauth", "SSL", "certificate", "GSSAPI", "invalid", "cancelled while connecting"};
	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
		if (strstr(why, final[i]))
			return false;
	return true;
}

/*
 * libpq's asynchronous connect under our own deadline: PQconnectdbParams
 * would enforce connect_timeout too, but could not be stopped by a cancel
 * flag. Returns the connection (maybe not CONNECTION_OK) and sets *why when
 * the deadline or the flag ended it.
 */
static PGconn *connect_async(const char *const *keys, const char *const *vals, int timeout_s,
                             const atomic_int *cancel, const char **why)
{
	*why = NULL;
	PGconn *conn = PQconnectStartParams(keys, vals, 0);
	if (!conn || PQstatus(conn) == CONNECTION_BAD)
		return conn;
	long long deadline = now_ms() + (long long)timeout_s * 1000;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		if (cancel && atomic_load(cancel)) {
			*why = "cancelled while connecting";
			break;
		}
		long long left = deadline - now_ms();
		if (left <= 0) {
			*why = "timeout expired";
			break;
		}
		/* the socket may change between calls (next host, SSL refused and retried) */
		struct pollfd pf = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
		int r = poll(&pf, 1, left < 100 ? (int)left : 100);
		if (r < 0 && errno != EINTR) {
			*why = strerror(errno);
			break;
		}
		if (r > 0)
			st = PQconnectPoll(conn);
	}
	return conn;
}

/* One attempt; on failure *err, and *again says whether waiting may help. */
static fl_pg *connect_once(const fl_pg_params *p, bool *again, fl_error **err)
{
	const char *keys[24 + 64], *vals[24 + 64];
	size_t n = 0;
	char timeout_buf[16], idle[16], intvl[16], count[16], tut[16];
	int timeout_s = connect_timeout_s(p);
	snprintf(timeout_buf, sizeof(timeout_buf), "%d", timeout_s);
	snprintf(idle, sizeof(idle), "%d", FL_PG_KEEPALIVES_IDLE_S);
	snprintf(intvl, sizeof(intvl), "%d", FL_PG_KEEPALIVES_INTERVAL_S);
	snprintf(count, sizeof(count), "%d", FL_PG_KEEPALIVES_COUNT);
	snprintf(tut, sizeof(tut), "%d", FL_PG_TCP_USER_TIMEOUT_MS);
	*again = false;
#define PARAM(k, v)                                                                                          \
	do {                                                                                                 \
		if ((v) && *(v)) {                                                                           \
			keys[n] = (k);                                                                       \
			vals[n++] = (v);                                                                     \
		}                                                                                            \
	} while (0)
#define SET(k, v)                                                                                            \
	do {                                                                                                 \
		keys[n] = (k);                                                                               \
		vals[n++] = (v);                                                                             \
	} while (0)
	PARAM("host", p->host);
	PARAM("port", p->port);
	PARAM("dbname", p->dbname);
	PARAM("user", p->user);
	PARAM("password", p->password);
	PARAM("sslmode", p->sslmode);
	SET("connect_timeout", timeout_buf);
	/* defaults that an option of the same name replaces (later keywords win) */
	PARAM("keepalives", "1");
	SET("keepalives_idle", idle);
	SET("keepalives_interval", intvl);
	SET("keepalives_count", count);
	SET("tcp_user_timeout", tut);
	PARAM("application_name", p->application_name ? p->application_name : "flotilla");
	for (size_t i = 0; i < p->noptions && n < sizeof(keys) / sizeof(keys[0]) - 1; i++)
		PARAM(p->options[i].key, p->options[i].value);
#undef PARAM
#undef SET
	keys[n] = vals[n] = NULL;
	if (has_option(p, "connect_timeout"))
		timeout_s = connect_timeout_s(p);
	const char *why_ours = NULL;
	PGconn *conn = connect_async(keys, vals, timeout_s, p->cancel, &why_ours);
	if (!conn) {
		*err = fl_error_new("cannot connect: out of memory in libpq");
		(*err)->kind = FL_EDB;
		return NULL;
	}
	if (!why_ours && PQstatus(conn) == CONNECTION_OK) {
		fl_pg *pg = fl_pg_adopt(conn);
		if (p->password)
			pg->password = fl_strdup(p->password);
		if (p->query_timeout_ms > 0)
			pg->query_timeout_ms = p->query_timeout_ms;
		return pg;
	}
	char *why;
	if (why_ours && strcmp(why_ours, "timeout expired") == 0)
		why =
		    fl_asprintf("no answer within %d s (connect_timeout): the server or a proxy in front of "
		                "it accepted the connection but did not reply",
		                timeout_s);
	else if (why_ours)
		why = fl_strdup(why_ours);
	else
		why = trimmed(PQerrorMessage(conn));
	scrub(why, p->password);
	*again = retryable(why) && !(p->cancel && atomic_load(p->cancel));
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

fl_pg *fl_pg_connect(const fl_pg_params *p, fl_error **err)
{
	bool again;
	return connect_once(p, &again, err);
}

/* Sleeps ms, in slices, returning early (false) once *cancel is set. */
static bool nap(long long ms, const atomic_int *cancel)
{
	long long end = now_ms() + ms;
	for (long long left = ms; left > 0; left = end - now_ms()) {
		if (cancel && atomic_load(cancel))
			return false;
		long long step = left < 100 ? left : 100;
		struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !(cancel && atomic_load(cancel));
}

fl_pg *fl_pg_connect_retry(const fl_pg_params *p, int retries, int interval_s, fl_pg_attempt_fn on_attempt,
                           void *ctx, const atomic_int *cancel, fl_error **err)
{
	if (retries < 0)
		retries = 0;
	if (retries > FL_PG_MAX_CONNECT_RETRIES)
		retries = FL_PG_MAX_CONNECT_RETRIES;
	if (interval_s <= 0)
		interval_s = 1;
	fl_pg_params q = *p;
	if (cancel)
		q.cancel = cancel;
	long long start = now_ms();
	int wait_s = 1;
	for (int attempt = 1;; attempt++) {
		bool again = false;
		fl_error *e = NULL;
		fl_pg *pg = connect_once(&q, &again, &e);
		if (pg)
			return pg;
		if (!again || attempt > retries) {
			if (attempt > 1)
				fl_error_prefix(e, "gave up after %d attempts in %lld s", attempt,
				                (now_ms() - start + 500) / 1000);
			*err = e;
			return NULL;
		}
		if (on_attempt)
			on_attempt(ctx, attempt + 1, retries + 1, e);
		if (!nap((long long)wait_s * 1000, q.cancel)) {
			fl_error_free(e);
			*err = fl_error_kind_new(FL_EDB,
			                         "cancelled while waiting for the server (attempt %d of %d)",
			                         attempt + 1, retries + 1);
			return NULL;
		}
		fl_error_free(e);
		wait_s = wait_s * 2 > interval_s ? interval_s : wait_s * 2;
	}
}

void fl_pg_close(fl_pg *pg)
{
	if (!pg)
		return;
	fl_pg_unwatch(pg);
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

void fl_pg_set_query_timeout(fl_pg *pg, int ms)
{
	pg->query_timeout_ms = ms > 0 ? ms : FL_PG_DEFAULT_QUERY_TIMEOUT_MS;
}

void fl_pg_sever(fl_pg *pg)
{
	if (!pg)
		return;
	/* shutdown, not close: the descriptor stays libpq's until PQfinish */
	int fd = atomic_exchange(&pg->sock, -1);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void format_ms(char *buf, size_t n, int ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, n, "%d s", ms / 1000);
	else
		snprintf(buf, n, "%d ms", ms);
}

static fl_error *bound_error(int ms)
{
	char t[32];
	format_ms(t, sizeof(t), ms);
	return fl_error_kind_new(FL_EDB,
	                         "no answer from the server within %s (flotilla's bound on one statement: "
	                         "statement_timeout + 60 s, or 1 h without one); the connection was closed, "
	                         "nothing after this point ran",
	                         t);
}

static fl_error *timeout_error(fl_pg *pg)
{
	return bound_error(pg->query_timeout_ms);
}

/*
 * The watchdog: one thread for the process, started with the first watch,
 * sleeping until the nearest deadline of the watched connections. It only
 * severs (an atomic shutdown of the socket), so it never touches a PGconn
 * its owner is using.
 */
static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static pthread_once_t wd_once = PTHREAD_ONCE_INIT;
static fl_pg **wd_list;
static size_t wd_n, wd_cap;
static bool wd_running;

static void *wd_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wd_mu);
	for (;;) {
		long long now = now_ms(), next = -1;
		for (size_t i = 0; i < wd_n;) {
			fl_pg *pg = wd_list[i];
			if (pg->watch_deadline <= now) {
				atomic_store(&pg->watch_fired_ms, pg->watch_ms);
				fl_pg_sever(pg);
				wd_list[i] = wd_list[--wd_n];
				continue;
			}
			if (next < 0 || pg->watch_deadline < next)
				next = pg->watch_deadline;
			i++;
		}
		if (next < 0) {
			pthread_cond_wait(&wd_cv, &wd_mu);
			continue;
		}
		struct timespec until = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
		pthread_cond_timedwait(&wd_cv, &wd_mu, &until);
	}
	return NULL;
}

static void wd_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	wd_running = pthread_create(&t, &at, wd_main, NULL) == 0;
	pthread_attr_destroy(&at);
}

/* Takes pg off the list; the caller holds wd_mu. */
static void wd_remove(fl_pg *pg)
{
	for (size_t i = 0; i < wd_n; i++)
		if (wd_list[i] == pg) {
			wd_list[i] = wd_list[--wd_n];
			return;
		}
}

void fl_pg_watch(fl_pg *pg, int ms)
{
	pthread_once(&wd_once, wd_init);
	pthread_mutex_lock(&wd_mu);
	wd_remove(pg);
	pg->watch_ms = ms > 0 ? ms : pg->query_timeout_ms;
	pg->watch_deadline = now_ms() + pg->watch_ms;
	if (wd_n == wd_cap) {
		wd_cap = wd_cap ? wd_cap * 2 : 16;
		wd_list = fl_realloc(wd_list, wd_cap * sizeof(*wd_list));
	}
	wd_list[wd_n++] = pg;
	pthread_cond_signal(&wd_cv);
	bool running = wd_running;
	pthread_mutex_unlock(&wd_mu);
	/* no watchdog could start: failing now is better than a wait nothing would end */
	if (!running) {
		atomic_store(&pg->watch_fired_ms, pg->watch_ms);
		fl_pg_sever(pg);
	}
}

void fl_pg_unwatch(fl_pg *pg)
{
	/* nothing was ever watched: no need to start the watchdog to say so */
	pthread_mutex_lock(&wd_mu);
	wd_remove(pg);
	pthread_mutex_unlock(&wd_mu);
}

int fl_pg_watch_fired(fl_pg *pg)
{
	return atomic_load(&pg->watch_fired_ms);
}

fl_error *fl_pg_watch_error(fl_pg *pg)
{
	int ms = fl_pg_watch_fired(pg);
	return bound_error(ms > 0 ? ms : pg->query_timeout_ms);
}

/* Waits until the socket is ready for `events` or the deadline; 1 ready, 0 expired, -1 error. */
static int wait_sock(fl_pg *pg, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pf = {PQsocket(pg->conn), events, 0};
		if (pf.fd < 0)
			return -1;
		int r = poll(&pf, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* The expiry of a wait: the connection is of no more use (its state is unknown). */
static void expire(fl_pg *pg, fl_error **err)
{
	fl_pg_sever(pg);
	/* let libpq see the end, so that later calls on it fail at once */
	PQconsumeInput(pg->conn);
	if (err)
		*err = timeout_error(pg);
}

PGresult *fl_pg_wait_result(fl_pg *pg, fl_error **err)
{
	if (err)
		*err = NULL;
	long long deadline = now_ms() + pg->query_timeout_ms;
	int f;
	while ((f = PQflush(pg->conn)) == 1) {
		int w = wait_sock(pg, POLLOUT | POLLIN, deadline);
		if (w == 0) {
			expire(pg, err);
			return NULL;
		}
		/* the server may be sending while we send: read, or it stops reading us */
		if (w < 0 || !PQconsumeInput(pg->conn))
			break;
	}
	while (PQisBusy(pg->conn)) {
		int w = wait_sock(pg, POLLIN, deadline);
		if (w == 0) {
			expire(pg, err);
			return NULL;
		}
		if (w < 0 || !PQconsumeInput(pg->conn))
			break; /* PQgetResult now reports the lost connection */
	}
	return PQgetResult(pg->conn);
}

/*
 * PQexec's rule over the asynchronous API, each wait bounded: the results
 * of every statement are read, the first failure is the answer, else the
 * last result. A COPY is refused (these calls feed no data).
 */
static PGresult *run_bounded(fl_pg *pg, bool sent, fl_error **timed_out)
{
	*timed_out = NULL;
	if (!sent)
		return NULL;
	PGresult *keep = NULL;
	for (;;) {
		fl_error *e = NULL;
		PGresult *r = fl_pg_wait_result(pg, &e);
		if (e) {
			PQclear(keep);
			*timed_out = e;
			return NULL;
		}
		if (!r)
			break;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COPY_IN) {
			PQputCopyEnd(pg->conn, "flotilla sends no COPY data here");
			PQclear(r);
			continue;
		}
		if (st == PGRES_COPY_OUT) {
			PQclear(r);
			long long deadline = now_ms() + pg->query_timeout_ms;
			for (;;) {
				char *buf;
				int n = PQgetCopyData(pg->conn, &buf, 1);
				if (n > 0) {
					PQfreemem(buf);
					continue;
				}
				if (n < 0)
					break;
				int w = wait_sock(pg, POLLIN, deadline);
				if (w == 0) {
					PQclear(keep);
					expire(pg, timed_out);
					return NULL;
				}
				if (w < 0 || !PQconsumeInput(pg->conn))
					break;
			}
			continue;
		}
		if (keep && !result_ok(keep)) {
			PQclear(r);
			continue;
		}
		PQclear(keep);
		keep = r;
		if (PQstatus(pg->conn) == CONNECTION_BAD)
			break;
	}
	return keep;
}

static PGresult *bounded_call(fl_pg *pg, const char *sql, int nparams, const char *const *params, bool simple,
                              const char *what, fl_pg_diag *diag, fl_error **err)
{
	/* nonblocking only here, so a full send buffer cannot block the send itself */
	int was = PQisnonblocking(pg->conn);
	PQsetnonblocking(pg->conn, 1);
	bool sent = simple ? PQsendQuery(pg->conn, sql) == 1
	                   : PQsendQueryParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0) == 1;
	fl_error *late = NULL;
	PGresult *r = run_bounded(pg, sent, &late);
	PQsetnonblocking(pg->conn, was);
	if (late) {
		if (diag) {
			fl_pg_diag_clear(diag);
			diag->message = fl_strdup(late->msg);
		}
		if (what)
			fl_error_prefix(late, "%s", what);
		if (err)
			*err = late;
		else
			fl_error_free(late);
		return NULL;
	}
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

int fl_pg_exec(fl_pg *pg, const char *sql, const char *what, fl_pg_diag *diag, fl_error **err)
{
	PGresult *r = bounded_call(pg, sql, 0, NULL, true, what, diag, err);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

PGresult *fl_pg_query(fl_pg *pg, const char *sql, int nparams, const char *const *params, const char *what,
                      fl_pg_diag *diag, fl_error **err)
{
	return bounded_call(pg, sql, nparams, params, false, what, diag, err);
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

/*
 * A cancel request on its own thread. Two owners, the waiting caller and the
 * helper; whichever lets go last frees it, so a caller that stopped waiting
 * leaves nothing behind for a helper that comes back late.
 */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
	int ok;
	char msg[256];
	PGcancel *c;
} cancel_job;

static void cancel_job_unref(cancel_job *j)
{
	pthread_mutex_lock(&j->mu);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (!last)
		return;
	PQfreeCancel(j->c);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void *cancel_main(void *arg)
{
	cancel_job *j = arg;
	char msg[256] = "";
	int ok = PQcancel(j->c, msg, sizeof(msg));
	pthread_mutex_lock(&j->mu);
	j->ok = ok;
	memcpy(j->msg, msg, sizeof(msg));
	j->done = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	cancel_job_unref(j);
	return NULL;
}

int fl_pg_cancel_bounded(PGcancel *c, int timeout_ms, fl_error **err)
{
	if (!c) {
		if (err)
			*err =
			    fl_error_kind_new(FL_EDB, "cannot cancel the running statement: no connection");
		return -1;
	}
	if (timeout_ms <= 0)
		timeout_ms = FL_PG_CANCEL_TIMEOUT_MS;
	cancel_job *j = fl_calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&j->mu, NULL);
	j->c = c;
	j->refs = 2;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = pthread_create(&t, &at, cancel_main, j);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		j->refs = 1;
		cancel_job_unref(j);
		if (err)
			*err = fl_error_kind_new(FL_EDB, "cannot cancel the running statement: %s",
			                         strerror(rc));
		return -1;
	}
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->mu);
	while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &until) != ETIMEDOUT)
		;
	bool done = j->done;
	int ok = j->ok;
	char msg[256];
	memcpy(msg, j->msg, sizeof(msg));
	pthread_mutex_unlock(&j->mu);
	cancel_job_unref(j);
	if (done && ok)
		return 0;
	if (err) {
		char t[32];
		format_ms(t, sizeof(t), timeout_ms);
		if (done)
			*err = fl_error_kind_new(FL_EDB, "cannot cancel the running statement: %s",
			                         msg[0] ? msg : "unknown error");
		else
			*err =
			    fl_error_kind_new(FL_EDB,
			                      "the cancel request got no answer within %s (the path to the "
			                      "server may be frozen)",
			                      t);
	}
	return -1;
}

int fl_pg_cancel(fl_pg *pg, fl_error **err)
{
	return fl_pg_cancel_bounded(PQgetCancel(pg->conn), FL_PG_CANCEL_TIMEOUT_MS, err);
}

/* ---- batches ---- */

static int batch_raw(fl_pg *pg, const fl_pg_batch_query *q, size_t n, PGresult **res, const char *what,
                     fl_error **err)
{
	PGconn *conn = pg->conn;
	for (size_t i = 0; i < n; i++)
		res[i] = NULL;
	bool ok = PQenterPipelineMode(conn) == 1;
	for (size_t i = 0; i < n && ok; i++)
		ok = PQsendQueryParams(conn, q[i].sql, q[i].nparams, NULL, q[i].params, NULL, NULL, 0) == 1 &&
		     PQpipelineSync(conn) == 1;
	for (size_t i = 0; i < n && ok; i++) {
		PGresult *r;
		while ((r = PQgetResult(conn)) != NULL) {
			if (!res[i])
				res[i] = r;
			else
				PQclear(r);
		}
		r = PQgetResult(conn);
		ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		ok = ok && res[i] && PQstatus(conn) == CONNECTION_OK;
	}
	if (!ok) {
		fl_pg_diag d = {0};
		fl_pg_diag_fill(&d, NULL, pg);
		*err = fl_pg_diag_error(&d, NULL, 0, 0);
		fl_error_prefix(*err, "%s", what);
		fl_pg_diag_clear(&d);
	}
	if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn) &&
	    PQstatus(conn) == CONNECTION_OK) {
		PGresult *x;
		while ((x = PQgetResult(conn)) != NULL)
			PQclear(x);
		PQexitPipelineMode(conn);
	}
	return ok ? 0 : -1;
}

int fl_pg_batch(fl_pg *pg, const fl_pg_batch_query *q, size_t n, PGresult **res, const char *what,
                fl_error **err)
{
	/* libpq's blocking calls here wait without a bound of their own: the watchdog is it */
	long long ms = (long long)pg->query_timeout_ms * (long long)(n ? n : 1);
	fl_pg_watch(pg, ms > INT_MAX ? INT_MAX : (int)ms);
	int rc = batch_raw(pg, q, n, res, what, err);
	fl_pg_unwatch(pg);
	return rc;
}
