/*
 * apply: see apply.h for what it promises. The shape of one migrate:
 *
 *   session facts -> lock -> read history + ledger -> plan -> validate ->
 *   prepare every file -> control schema + run row -> history table ->
 *   run each -> run row finished -> unlock
 *
 * Preparing (placeholders, splitting, deciding transaction or not) happens
 * for every file before the first one runs, so a bad file never leaves a
 * service half migrated.
 */
#include "apply.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alembic.h"
#include "control_sql.h"
#include "sha256.h"
#include "sqlsplit.h"

/* Milliseconds since the transaction began: the history row's execution_time, measured by the server. */
#define EXEC_TIME_SQL "floor(extract(epoch FROM clock_timestamp() - now()) * 1000)::int"
#define LEDGER_RUN    "\"" FL_CONTROL_SCHEMA "\".run"
#define LEDGER_EXEC   "\"" FL_CONTROL_SCHEMA "\".execution"

typedef struct {
	fl_pg *pg;
	const fl_apply_opts *o;
	const char *verb;
	const char *schema, *table;
	char *qschema;
	char *history; /* "schema"."table" */
	char *qhistory_lit;
	long long key;
	char *dbuser, *database, *installed_by;
	fl_placeholder *ph;
	size_t nph;
	bool ledger;
	long long run_id;
	bool locked;
	bool control_current; /* flotilla's control schema was read under our lock and needs nothing */
	bool checking;        /* fl_apply_check: only whether files expand and split (no digest) */
	bool adopt_baseline;  /* baseline_on_migrate: the BASELINE row to write is h's last row */
	const fl_migration_set *callbacks; /* migrate: the set whose SQL callbacks run; NULL: none */
	bool versioned_done;               /* afterVersioned has run */
	unsigned long long rng;            /* the jitter of lock retries; 0: not seeded yet */
	bool unfinished_runs; /* (RS_LEDGER) a run row of this service is unfinished: a killed run's? */
	bool server_local;    /* the server runs on the machine it was reached from (SERVER_LOCAL_SQL) */
	bool gated;           /* o->work_gate gave this run a turn: o->work_done gives it back */
	fl_apply_result *res;
	fl_apply_result local_res;
} ctx;

/* One file made ready to run: expanded and split. */
typedef struct {
	const fl_migration *m;
	fl_placeholder *ph;
	size_t nph;
	char *text; /* placeholders replaced */
	size_t len;
	fl_stmt *stmts;
	size_t nstmts;
	bool no_tx;
	const char *no_tx_why; /* "-- flotilla:no-transaction" or the refused statement's words */
	char sha[65];          /* of the raw file */
	fl_history_row hrow;   /* the history row it writes (strings borrowed) */
	int resume_at;         /* 1-based; > 1 continues a no-transaction file */
	int failed_rank;       /* the failed history row this run replaces (0: none) */
	bool in_flight;        /* statement resume_at was running when an earlier run was killed */
} prepared;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool cancelled(const ctx *c)
{
	return c->o->cancel && atomic_load(c->o->cancel) != 0;
}

static void sleep_ms_plain(long long ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The settings as they apply: 0 (an option struct cleared with memset) means the documented default. */
static int lock_timeout(const fl_apply_opts *o)
{
	return o->lock_timeout_ms > 0 ? o->lock_timeout_ms : FL_APPLY_DEFAULT_LOCK_TIMEOUT_MS;
}

static int lock_retries(const fl_apply_opts *o)
{
	return o->lock_retries < 0   ? 0
	       : o->lock_retries > 0 ? o->lock_retries
	                             : FL_APPLY_DEFAULT_LOCK_RETRIES;
}

static int migration_lock_timeout(const fl_apply_opts *o)
{
	return o->migration_lock_timeout_ms > 0 ? o->migration_lock_timeout_ms
	                                        : FL_APPLY_DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
}

static fl_error *interrupted(const char *what)
{
	fl_error *e = fl_error_new("interrupted%s%s", what ? ": " : "", what ? what : "");
	e->kind = FL_EINTR;
	return e;
}

static void emit(const ctx *c, fl_apply_event *ev)
{
	if (!c->o->on_event)
		return;
	ev->service = c->o->service;
	c->o->on_event(c->o->event_ctx, ev);
}

static void emit_notices(const ctx *c, const char *script)
{
	size_t n;
	char **v = fl_pg_take_notices(c->pg, &n);
	for (size_t i = 0; i < n; i++) {
		fl_apply_event ev = {.kind = FL_APPLY_EV_NOTICE, .script = script, .text = v[i]};
		emit(c, &ev);
		free(v[i]);
	}
	free(v);
}

/* Notices our own bookkeeping caused (control schema, history table) are nobody's business. */
static char **drop_notices(fl_pg *pg)
{
	size_t n;
	char **v = fl_pg_take_notices(pg, &n);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	return v;
}

static void ensure_idle(fl_pg *pg)
{
	if (PQpipelineStatus(pg->conn) != PQ_PIPELINE_OFF)
		PQexitPipelineMode(pg->conn);
	PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		PGresult *r = PQexec(pg->conn, "ROLLBACK");
		PQclear(r);
	}
}

void fl_apply_result_clear(fl_apply_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nitems; i++) {
		free(r->items[i].script);
		free(r->items[i].version);
		free(r->items[i].description);
	}
	free(r->items);
	free(r->version_before);
	free(r->version_after);
	fl_pg_diag_clear(&r->diag);
	for (size_t i = 0; i < r->nchanges; i++)
		free(r->changes[i]);
	free(r->changes);
	for (size_t i = 0; i < r->ncallbacks; i++) {
		free(r->callbacks[i].event);
		free(r->callbacks[i].script);
	}
	free(r->callbacks);
	memset(r, 0, sizeof(*r));
}

static void add_change(ctx *c, char *line)
{
	fl_apply_result *r = c->res;
	r->changes = fl_realloc(r->changes, (r->nchanges + 1) * sizeof(char *));
	r->changes[r->nchanges++] = line;
}

static void add_item(ctx *c, const prepared *pm, long ms)
{
	fl_apply_result *r = c->res;
	r->items = fl_realloc(r->items, (r->nitems + 1) * sizeof(*r->items));
	fl_apply_item *it = &r->items[r->nitems++];
	it->kind = pm->m->kind;
	it->script = fl_strdup(pm->m->script);
	it->version = pm->hrow.version ? fl_strdup(pm->hrow.version) : NULL;
	it->description = fl_strdup(pm->m->description);
	it->checksum = pm->hrow.checksum;
	it->ms = ms;
	it->no_transaction = pm->no_tx;
	r->applied++;
}

static void ctx_init(ctx *c, fl_pg *pg, const fl_apply_opts *o, const char *verb, fl_apply_result *res)
{
	memset(c, 0, sizeof(*c));
	c->pg = pg;
	c->o = o;
	c->verb = verb;
	c->schema = o->schema ? o->schema : "public";
	c->table = o->table ? o->table : FL_HISTORY_DEFAULT_TABLE;
	c->qschema = fl_pg_ident_plain(c->schema);
	c->history = fl_history_name(c->schema, c->table);
	c->qhistory_lit = fl_pg_literal_plain(c->history);
	c->key = fl_history_lock_key(c->schema, c->table);
	c->ledger = !o->no_ledger && !o->dry_run;
	c->res = res ? res : &c->local_res;
	memset(c->res, 0, sizeof(*c->res)); /* the caller's struct may be uninitialised */
}

static void ctx_free(ctx *c)
{
	free(c->qschema);
	free(c->history);
	free(c->qhistory_lit);
	free(c->dbuser);
	free(c->database);
	free(c->installed_by);
	free(c->ph);
	fl_apply_result_clear(&c->local_res);
}

/* current_user and current_database(): for installed_by and the flyway:* placeholders. */
static void set_facts(ctx *c, const char *user, const char *database)
{
	free(c->dbuser);
	free(c->database);
	free(c->installed_by);
	free(c->ph);
	c->dbuser = fl_strdup(user);
	c->database = fl_strdup(database);
	c->installed_by = fl_strdup(c->o->installed_by ? c->o->installed_by : c->dbuser);
	c->ph = fl_placeholders_standard(c->o->placeholders, c->o->nplaceholders, c->schema, c->database,
	                                 c->dbuser, c->table, &c->nph);
}

/* ---- the lock ---- */

/* Who holds our advisory key, in words; NULL when nobody (any more). */
static char *lock_holder(ctx *c)
{
	char classid[24], objid[24];
	snprintf(classid, sizeof(classid), "%llu", (unsigned long long)c->key >> 32);
	snprintf(objid, sizeof(objid), "%llu", (unsigned long long)c->key & 0xFFFFFFFFull);
	const char *params[2] = {classid, objid};
	PGresult *r = fl_pg_query(
	    c->pg,
	    "SELECT l.pid, a.application_name, a.usename, a.backend_start, a.state, a.state_change,"
	    " a.client_addr, a.client_hostname FROM pg_catalog.pg_locks l"
	    " LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
	    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
	    " AND l.classid = $1::oid AND l.objid = $2::oid"
	    " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
	    " AND l.pid <> pg_backend_pid() ORDER BY l.pid",
	    2, params, NULL, NULL, NULL);
	if (!r)
		return NULL;
	char *out = NULL;
	if (PQntuples(r) > 0) {
		fl_buf b;
		fl_buf_init(&b);
		const char *app = PQgetvalue(r, 0, 1), *user = PQgetvalue(r, 0, 2);
		fl_buf_printf(&b, "pid %s (application_name \"%s\", user %s", PQgetvalue(r, 0, 0), app,
		              PQgetisnull(r, 0, 2) ? "?" : user);
		if (!PQgetisnull(r, 0, 6))
			fl_buf_printf(&b, ", from %s",
			              PQgetisnull(r, 0, 7) ? PQgetvalue(r, 0, 6) : PQgetvalue(r, 0, 7));
		if (!PQgetisnull(r, 0, 3))
			fl_buf_printf(&b, ", connected since %s", PQgetvalue(r, 0, 3));
		if (!PQgetisnull(r, 0, 4))
			fl_buf_printf(&b, ", %s since %s", PQgetvalue(r, 0, 4),
			              PQgetisnull(r, 0, 5) ? "?" : PQgetvalue(r, 0, 5));
		fl_buf_putc(&b, ')');
		out = fl_buf_detach(&b);
	}
	PQclear(r);
	return out;
}

static int try_lock(ctx *c, bool *got, fl_error **err)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", c->key);
	const char *params[1] = {key};
	char *v = fl_pg_value(c->pg, "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", 1, params, err);
	if (!v && *err) {
		fl_error_prefix(*err, "taking the migration lock on %s", c->history);
		return -1;
	}
	*got = v && v[0] == 't';
	free(v);
	return 0;
}

/*
 * The first try failed (in read_state's round trip): say who holds the
 * lock, then retry every lock_poll_ms until lock_timeout. t0: when the
 * first try was made.
 */
static int lock_wait(ctx *c, long long t0, fl_error **err)
{
	bool got = false;
	*err = NULL;
	char *holder = lock_holder(c);
	char *text = fl_asprintf("waiting for the migration lock on %s, held by %s", c->history,
	                         holder ? holder : "another session");
	fl_apply_event ev = {.kind = FL_APPLY_EV_LOCK_WAIT, .text = text};
	emit(c, &ev);
	free(text);
	free(holder);
	int poll_ms = c->o->lock_poll_ms > 0 ? c->o->lock_poll_ms : 100;
	int limit = migration_lock_timeout(c->o);
	while (!got) {
		if (cancelled(c)) {
			*err = interrupted("while waiting for the migration lock");
			return -1;
		}
		long long waited = now_ms() - t0;
		if (waited >= limit)
			break;
		long long sleep_ms = poll_ms;
		if (waited + sleep_ms > limit)
			sleep_ms = limit - waited;
		sleep_ms_plain(sleep_ms);
		if (try_lock(c, &got, err) != 0)
			return -1;
	}
	if (!got) {
		char *h = lock_holder(c);
		*err = fl_error_kind_new(
		    FL_EDB,
		    "gave up after %d ms (migration_lock_timeout) waiting for the migration lock on %s "
		    "(advisory lock %lld): it is held by %s; another flotilla or Flyway is migrating this "
		    "database: let it finish, or end that session",
		    limit, c->history, c->key, h ? h : "a session that has just ended");
		free(h);
		return -1;
	}
	return 0;
}

/* ---- the ledger ---- */

static void new_uuid(char out[37])
{
	unsigned char b[16];
	size_t got = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, b, sizeof(b));
		got = n > 0 ? (size_t)n : 0;
		close(fd);
	}
	if (got < sizeof(b)) {
		/* no urandom: uniqueness is all the ledger needs */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long x = (unsigned long long)ts.tv_nsec ^
		                       ((unsigned long long)ts.tv_sec << 20) ^
		                       ((unsigned long long)getpid() << 40);
		for (size_t i = 0; i < sizeof(b); i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			b[i] = (unsigned char)(x >> 56);
		}
	}
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int begin_run(ctx *c, fl_error **err)
{
	if (!c->ledger)
		return 0;
	if (!c->control_current && fl_apply_control(c->pg, c->o, err) != 0)
		return -1;
	char uuid[37];
	if (c->o->run_uuid)
		snprintf(uuid, sizeof(uuid), "%s", c->o->run_uuid);
	else
		new_uuid(uuid);
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	/* getpwuid_r: this runs on worker threads */
	const char *os_user = getenv("USER");
	struct passwd pwbuf, *pw = NULL;
	char pwmem[1024];
	if (getpwuid_r(geteuid(), &pwbuf, pwmem, sizeof(pwmem), &pw) == 0 && pw && pw->pw_name)
		os_user = pw->pw_name;
	const char *commit = c->o->git_commit;
	int gd = c->o->git_dirty;
	if (c->o->git_info)
		c->o->git_info(c->o->git_ctx, &commit, &gd);
	const char *dirty = gd < 0 ? NULL : gd ? "true" : "false";
#ifdef FL_VERSION
	const char *version = FL_VERSION;
#else
	const char *version = NULL;
#endif
	const char *params[8] = {uuid,          c->o->command ? c->o->command : c->verb,
	                         c->o->service, host[0] ? host : NULL,
	                         os_user,       commit,
	                         dirty,         version};
	char *v = fl_pg_value(
	    c->pg,
	    /* we hold the service's lock: an unfinished row of it belongs to a process that died */
	    "WITH gone AS (UPDATE " LEDGER_RUN " SET finished = clock_timestamp(), outcome = 'abandoned',"
	    " error = 'the process ended without finishing this run (killed, or its connection was lost)'"
	    " WHERE finished IS NULL AND service IS NOT DISTINCT FROM $3)"
	    " INSERT INTO " LEDGER_RUN " (run_uuid, command, service, host, os_user, git_commit,"
	    " git_dirty, flotilla_version) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::boolean, $8)"
	    " RETURNING id",
	    8, params, err);
	if (!v) {
		fl_error_prefix(*err, "writing flotilla's ledger (%s.run)", FL_CONTROL_SCHEMA);
		return -1;
	}
	c->run_id = atoll(v);
	c->res->run_id = c->run_id;
	free(v);
	return 0;
}

/* The UPDATE that closes the run row (literals: it goes out in a pipeline beside the unlock). */
static char *finish_run_sql(ctx *c, const fl_error *e)
{
	const char *outcome = !e ? "success" : e->kind == FL_EINTR ? "interrupted" : "failed";
	char *msg = e ? fl_error_format(e) : NULL;
	char *qmsg = msg ? fl_pg_literal(c->pg, msg) : fl_strdup("NULL");
	char *sql =
	    fl_asprintf("UPDATE " LEDGER_RUN " SET finished = clock_timestamp(), outcome = '%s', error = %s"
	                " WHERE id = %lld",
	                outcome, qmsg ? qmsg : "NULL", c->run_id);
	free(qmsg);
	free(msg);
	return sql;
}

static char *lit(ctx *c, const char *s)
{
	return s ? fl_pg_literal(c->pg, s) : fl_strdup("NULL");
}

/*
 * The ledger row of a migration: inserted in its transaction (success and
 * duration computed there), before a no-transaction run (both NULL until
 * it ends), or after a failed transaction (success false, the error).
 */
static char *ledger_insert_sql(ctx *c, const prepared *pm, const char *success, const char *duration,
                               const char *error)
{
	char *script = lit(c, pm->m->script), *version = lit(c, pm->hrow.version),
	     *type = lit(c, pm->hrow.type);
	char *qerror = lit(c, error);
	char checksum[16] = "NULL";
	if (pm->hrow.has_checksum)
		snprintf(checksum, sizeof(checksum), "%d", (int)pm->hrow.checksum);
	bool done_all = strcmp(success, "true") == 0;
	int done = done_all ? (int)pm->nstmts : pm->resume_at - 1;
	char resumed[16] = "NULL";
	if (pm->resume_at > 1)
		snprintf(resumed, sizeof(resumed), "%d", pm->resume_at);
	char *sql =
	    fl_asprintf("INSERT INTO " LEDGER_EXEC " (run_id, history_table, script, version, type, checksum,"
	                " content_sha256, no_transaction, started, duration_ms, success, statements_done,"
	                " statements_total, resumed_from, error) VALUES (%lld, %s, %s, %s, %s, %s, '%s', %s, "
	                "%s, %s, %s, %d,"
	                " %zu, %s, %s) RETURNING id",
	                c->run_id, c->qhistory_lit, script, version, type, checksum, pm->sha,
	                pm->no_tx ? "true" : "false", done_all ? "now()" : "clock_timestamp()", duration,
	                success, done, pm->nstmts, resumed, qerror);
	free(script);
	free(version);
	free(type);
	free(qerror);
	return sql;
}

/* A failed transactional migration leaves no trace in its transaction: record it afterwards. */
static void ledger_failure(ctx *c, const prepared *pm, long ms, const fl_error *e)
{
	if (!c->ledger || !c->run_id || PQstatus(c->pg->conn) != CONNECTION_OK)
		return;
	ensure_idle(c->pg);
	char *msg = fl_error_format(e);
	char duration[24];
	snprintf(duration, sizeof(duration), "%ld", ms);
	char *sql = ledger_insert_sql(c, pm, "false", duration, msg);
	PGresult *r = PQexec(c->pg->conn, sql);
	PQclear(r);
	free(msg);
	free(sql);
}

/* ---- preparing files ---- */

static void prepared_free(prepared *pm)
{
	free(pm->ph);
	free(pm->text);
	free(pm->stmts);
	memset(pm, 0, sizeof(*pm));
}

/* The byte offset of a 1-based line:col (column in characters), as fl_sql_position counts them. */
static size_t offset_of(const char *s, size_t len, int line, int col)
{
	size_t i = 0;
	for (int l = 1; l < line && i < len; i++) {
		if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n')))
			l++;
	}
	for (int k = 1; k < col && i < len; k++) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
	}
	return i;
}

/* Expands and splits; decides whether the file can run in a transaction. */
static int prepare(ctx *c, const fl_migration *m, prepared *pm, fl_error **err)
{
	memset(pm, 0, sizeof(*pm));
	pm->m = m;
	pm->resume_at = 1;
	pm->ph = fl_placeholders_for_file(c->ph, c->nph, m, &pm->nph);
	fl_error *e = NULL;
	pm->text = fl_migration_expand_service(m, c->o->service, pm->ph, pm->nph, &pm->len, &e);
	if (!pm->text) {
		fl_error_append(err, e);
		return -1;
	}
	if (fl_sqlsplit(pm->text, pm->len, m->path, &pm->stmts, &pm->nstmts, &e) != 0) {
		/* the splitter names places in the expanded text: move them to the file */
		for (fl_error *x = e; x; x = x->next) {
			x->kind = FL_EINPUT;
			if (x->line > 0 && pm->len != m->len) {
				size_t raw = fl_migration_unexpand_offset(
				    m, pm->ph, pm->nph, offset_of(pm->text, pm->len, x->line, x->col));
				fl_sql_position(m->data, m->len, raw, &x->line, &x->col);
			}
		}
		fl_error_append(err, e);
		return -1;
	}
	if (!c->checking)
		fl_sha256_hex(m->data, m->len, pm->sha);
	if (m->no_transaction) {
		pm->no_tx = true;
		pm->no_tx_why = "-- flotilla:no-transaction";
	}
	for (size_t i = 0; i < pm->nstmts && !pm->no_tx; i++) {
		if (fl_sql_refuses_transaction(pm->text + pm->stmts[i].start,
		                               pm->stmts[i].end - pm->stmts[i].start)) {
			pm->no_tx = true;
			pm->no_tx_why = "a statement PostgreSQL refuses inside a transaction";
		}
	}
	pm->hrow.version = m->kind == FL_MIG_REPEATABLE ? NULL : m->version;
	pm->hrow.description = m->description;
	pm->hrow.type = m->kind == FL_MIG_UNDO       ? "UNDO_SQL"
	                : m->kind == FL_MIG_BASELINE ? "SQL_BASELINE"
	                                             : "SQL";
	pm->hrow.script = m->script;
	pm->hrow.has_checksum = true;
	pm->hrow.checksum =
	    m->kind == FL_MIG_REPEATABLE ? fl_migration_checksum(pm->text, pm->len) : m->checksum;
	pm->hrow.installed_by = c->installed_by;
	pm->hrow.success = true;
	return 0;
}

/* SHA-256 of the first k statements' text: what a resumed run must find unchanged. */
static void prefix_sha(const prepared *pm, size_t k, char out[65])
{
	fl_sha256_ctx s;
	fl_sha256_init(&s);
	for (size_t i = 0; i < k && i < pm->nstmts; i++) {
		fl_sha256_update(&s, pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start);
		fl_sha256_update(&s, "\0", 1);
	}
	fl_sha256_final_hex(&s, out);
}

/* Can statement i, found in flight after a kill, be checked (or safely run again)? */
static bool in_flight_checkable(const prepared *pm, size_t i)
{
	fl_sql_about a;
	fl_sql_about_of(pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start, &a);
	return a.kind == FL_SQL_RERUNNABLE ||
	       ((a.kind == FL_SQL_CREATE_INDEX_CONCURRENTLY || a.kind == FL_SQL_DROP_INDEX_CONCURRENTLY) &&
	        a.index);
}

/*
 * A no-transaction file that failed or was killed part way continues at
 * its first statement not done, but only when the statements that already
 * ran are the ones in the file now, and when a statement found in flight
 * can be checked; otherwise the error says so, before anything runs.
 */
static void check_resume(ctx *c, prepared *pm, const fl_plan_item *it, fl_error **err)
{
	size_t first = (size_t)it->resume_at - 1;
	/* what follows the verb in the commands suggested: " auth -e prod" */
	char rerun[256];
	snprintf(rerun, sizeof(rerun), "%s%s%s%s", c->o->service ? " " : "",
	         c->o->service ? c->o->service : "", c->o->env ? " -e " : "", c->o->env ? c->o->env : "");
	char have[65];
	prefix_sha(pm, first, have);
	if (first <= pm->nstmts &&
	    (first == 0 || (it->progress->prefix_sha256 && strcmp(have, it->progress->prefix_sha256) == 0))) {
		if (it->in_flight && first < pm->nstmts && !in_flight_checkable(pm, first)) {
			/* what to write for "done": the statements' SHA-256 including this one */
			char done[65];
			prefix_sha(pm, first + 1, done);
			const fl_stmt *s = &pm->stmts[first];
			fl_error *e = fl_error_at(
			    pm->m->path, s->line, s->col,
			    "statement %d of %zu was running outside a transaction when an earlier run "
			    "stopped "
			    "(started %s), and flotilla cannot tell whether it finished; check by hand, then "
			    "either "
			    "mark it done: UPDATE flotilla.execution SET statements_done = %d, prefix_sha256 "
			    "= "
			    "'%s', in_flight = NULL WHERE id = %lld; or have it run again: UPDATE "
			    "flotilla.execution SET in_flight = NULL WHERE id = %lld; and run 'flotilla "
			    "migrate%s%s'",
			    it->resume_at, pm->nstmts, it->progress->started ? it->progress->started : "?",
			    it->resume_at, done, it->progress->id, it->progress->id, rerun, "");
			e->kind = FL_EDB;
			fl_error_append(err, e);
			return;
		}
		pm->resume_at = it->resume_at;
		pm->in_flight = it->in_flight != 0;
		return;
	}
	const char *sp = "", *svc = rerun;
	if (it->state == FL_ST_FAILED)
		fl_error_append(
		    err, fl_error_at(pm->m->path, 0, 0,
		                     "cannot continue this migration at statement %d: statements 1 to %zu "
		                     "ran in an earlier attempt and have changed since; restore them, or "
		                     "undo their effects and run 'flotilla repair%s%s' to start the file "
		                     "afresh",
		                     it->resume_at, first, sp, svc));
	else /* killed: no failed row for repair to remove, only the ledger's unfinished one */
		fl_error_append(
		    err, fl_error_at(pm->m->path, 0, 0,
		                     "cannot continue this migration at statement %d: statements 1 to %zu "
		                     "ran in an earlier run that was stopped, and have changed since; "
		                     "restore them, or undo their effects and start the file afresh: "
		                     "UPDATE flotilla.execution SET success = false, error = 'abandoned' "
		                     "WHERE id = %lld",
		                     it->resume_at, first, it->progress->id));
}

/* ---- error places ---- */

static size_t skip_space(const char *s, size_t i, size_t end)
{
	while (i < end && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static bool word_at(const char *s, size_t len, const char *w)
{
	size_t n = strlen(w);
	if (len < n || strncasecmp(s, w, n) != 0)
		return false;
	return len == n || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '_');
}

static const char *find_in(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	if (!k || k > n)
		return NULL;
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

/*
 * An error raised while a DO block runs has no position, but its context
 * says "PL/pgSQL function inline_code_block line N": find line N of the
 * block's body in the statement, and on it the failing query when the
 * server quotes it. Returns an offset in the statement, or SIZE_MAX.
 */
static size_t locate_in_do(const char *st, size_t len, const fl_pg_diag *d)
{
	const char *tag = "inline_code_block line ";
	const char *m = d->context ? strstr(d->context, tag) : NULL;
	if (!m || !word_at(st, len, "DO"))
		return SIZE_MAX;
	int line = atoi(m + strlen(tag));
	size_t i = 2, body = SIZE_MAX, body_end = len;
	while (i < len && body == SIZE_MAX) {
		if (st[i] == '\'') {
			body = i + 1;
		} else if (st[i] == '$') {
			size_t k = i + 1;
			while (k < len && st[k] != '$' &&
			       ((st[k] >= 'a' && st[k] <= 'z') || (st[k] >= 'A' && st[k] <= 'Z') ||
			        st[k] == '_' || (st[k] >= '0' && st[k] <= '9')))
				k++;
			if (k < len && st[k] == '$') {
				body = k + 1;
				size_t taglen = k + 1 - i;
				for (size_t j = body; j + taglen <= len; j++)
					if (memcmp(st + j, st + i, taglen) == 0) {
						body_end = j;
						break;
					}
			}
		}
		i++;
	}
	if (body == SIZE_MAX || line < 1)
		return SIZE_MAX;
	size_t at = body;
	for (int l = 1; l < line && at < body_end; at++)
		if (st[at] == '\n')
			l++;
	if (at >= body_end)
		return SIZE_MAX;
	size_t eol = at;
	while (eol < body_end && st[eol] != '\n')
		eol++;
	size_t first = skip_space(st, at, eol);
	/* only the innermost context line describes the quoted query */
	if (d->internal_query && !strchr(d->context, '\n')) {
		const char *iq = d->internal_query;
		size_t ipos =
		    d->internal_position > 0 ? fl_sql_char_to_byte(iq, strlen(iq), d->internal_position) : 0;
		const char *hit = find_in(st + at, body_end - at, iq);
		if (hit)
			return (size_t)(hit - st) + ipos;
		/* PERFORM x is run as SELECT x: match what follows the first word */
		const char *rest = strpbrk(iq, " \t\n");
		if (rest) {
			hit = find_in(st + at, body_end - at, rest);
			if (hit)
				return (size_t)(hit - st) +
				       (ipos >= (size_t)(rest - iq) ? ipos - (size_t)(rest - iq) : 0);
		}
	}
	return first;
}

/* file:line:col of a failed statement (stmt index), from the server's position. */
static void locate(const prepared *pm, size_t stmt, const fl_pg_diag *d, int *line, int *col)
{
	const fl_stmt *s = &pm->stmts[stmt];
	const char *st = pm->text + s->start;
	size_t slen = s->end - s->start, off = 0;
	if (d->position > 0) {
		off = fl_sql_char_to_byte(st, slen, d->position);
	} else {
		size_t o = locate_in_do(st, slen, d);
		off = o == SIZE_MAX ? 0 : o;
	}
	size_t raw = fl_migration_unexpand_offset(pm->m, pm->ph, pm->nph, s->start + off);
	fl_sql_position(pm->m->data, pm->m->len, raw, line, col);
}

/* ---- many queries in one round trip ---- */

enum { Q_SETUP, Q_STMT, Q_RESET, Q_HISTORY, Q_LEDGER, Q_COMMIT };

typedef struct {
	char *sql;
	int kind;
	size_t stmt;
} query;

typedef struct {
	query *q;
	size_t n, cap;
} query_list;

static void qadd(query_list *l, char *sql, int kind, size_t stmt)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->q = fl_realloc(l->q, l->cap * sizeof(*l->q));
	}
	l->q[l->n++] = (query){sql, kind, stmt};
}

static void qfree(query_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->q[i].sql);
	free(l->q);
}

/*
 * Sends every query in one pipeline and reads all results once. Writes are
 * non-blocking and input is consumed while the output drains, as libpq's
 * documentation advises for pipelines, so a file of any size cannot
 * deadlock against the server's replies. Returns 0, or -1 with *failed =
 * the first failing query (SIZE_MAX: the connection failed) and diag filled.
 */
/*
 * apply drives libpq itself (pipelines, PQexec), so the client-side bound of
 * pg.h is set here: a watchdog severs the connection when a call outlives n
 * statements' bounds (each statement_timeout + a margin, or pg.h's default),
 * which only a frozen path to the server makes it do.
 */
static void watch_n(fl_pg *pg, size_t n)
{
	long long ms = (long long)pg->query_timeout_ms * (long long)(n ? n : 1);
	fl_pg_watch(pg, ms > INT_MAX ? INT_MAX : (int)ms);
}

static int pipeline_raw(fl_pg *pg, query_list *l, size_t *failed, fl_pg_diag *diag, long *hist_ms);

static int pipeline(fl_pg *pg, query_list *l, size_t *failed, fl_pg_diag *diag, long *hist_ms)
{
	watch_n(pg, l->n);
	int rc = pipeline_raw(pg, l, failed, diag, hist_ms);
	fl_pg_unwatch(pg);
	return rc;
}

static int pipeline_raw(fl_pg *pg, query_list *l, size_t *failed, fl_pg_diag *diag, long *hist_ms)
{
	PGconn *conn = pg->conn;
	*failed = SIZE_MAX;
	if (!PQenterPipelineMode(conn)) {
		fl_pg_diag_fill(diag, NULL, pg);
		return -1;
	}
	PQsetnonblocking(conn, 1);
	bool ok = true;
	for (size_t i = 0; i < l->n && ok; i++)
		ok = PQsendQueryParams(conn, l->q[i].sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
	ok = ok && PQpipelineSync(conn) == 1;
	int f;
	while (ok && (f = PQflush(conn)) != 0) {
		if (f < 0) {
			ok = false;
			break;
		}
		struct pollfd pfd = {PQsocket(conn), POLLIN | POLLOUT, 0};
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			ok = false;
			break;
		}
		if ((pfd.revents & POLLIN) && !PQconsumeInput(conn))
			ok = false;
	}
	PQsetnonblocking(conn, 0);
	if (!ok) {
		fl_pg_diag_fill(diag, NULL, pg);
		PQexitPipelineMode(conn);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < l->n; i++) {
		PGresult *r;
		while ((r = PQgetResult(conn)) != NULL) {
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
			    st == PGRES_BAD_RESPONSE) {
				if (rc == 0) {
					*failed = i;
					fl_pg_diag_fill(diag, r, pg);
					rc = -1;
				}
			} else if (st == PGRES_COPY_OUT) {
				char *buf;
				while (PQgetCopyData(conn, &buf, 0) > 0)
					PQfreemem(buf);
			} else if (st == PGRES_COPY_IN) {
				PQputCopyEnd(conn, "flotilla does not feed COPY FROM STDIN");
			} else if (st == PGRES_TUPLES_OK && l->q[i].kind == Q_HISTORY && PQntuples(r) == 1 &&
			           hist_ms) {
				*hist_ms = atol(PQgetvalue(r, 0, 1));
			}
			PQclear(r);
		}
		if (PQstatus(conn) != CONNECTION_OK)
			break;
	}
	PGresult *r = PQstatus(conn) == CONNECTION_OK ? PQgetResult(conn) : NULL;
	if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
		if (rc == 0) {
			fl_pg_diag_fill(diag, r, pg);
			*failed = SIZE_MAX;
			rc = -1;
		}
	}
	PQclear(r);
	if (PQstatus(conn) == CONNECTION_OK) {
		/* a stray NULL may sit between the sync and the end of the pipeline */
		while (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn)) {
			PGresult *x = PQgetResult(conn);
			if (!x)
				break;
			PQclear(x);
		}
	}
	return rc;
}

static void dry(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dry(ctx *c, const char *fmt, ...)
{
	if (!c->o->sql_out)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *s = fl_vasprintf(fmt, ap);
	va_end(ap);
	fl_buf_puts(c->o->sql_out, s);
	free(s);
}

static void dry_header(ctx *c, const prepared *pm)
{
	dry(c, "\n-- %s", pm->m->script);
	if (pm->hrow.version)
		dry(c, ": %s %s", pm->m->kind == FL_MIG_UNDO ? "undo of version" : "version",
		    pm->hrow.version);
	dry(c, ", checksum %d", (int)pm->hrow.checksum);
	if (pm->no_tx)
		dry(c, "; outside a transaction (%s), statement by statement", pm->no_tx_why);
	if (pm->resume_at > 1)
		dry(c, "; continuing at statement %d of %zu", pm->resume_at, pm->nstmts);
	dry(c, "\n");
}

/* The error of a failed migration, at its place, with what we were doing when it was not a statement. */
static fl_error *migration_error(ctx *c, const prepared *pm, const query *q, fl_pg_diag *d)
{
	fl_error *e;
	if (q && q->kind == Q_STMT) {
		int line, col;
		locate(pm, q->stmt, d, &line, &col);
		e = fl_pg_diag_error(d, pm->m->path, line, col);
	} else {
		e = fl_pg_diag_error(d, pm->m->path, 0, 0);
		const char *what = !q                     ? "the connection failed"
		                   : q->kind == Q_HISTORY ? "writing its row in the history table"
		                   : q->kind == Q_LEDGER  ? "writing flotilla's ledger"
		                   : q->kind == Q_COMMIT  ? "at COMMIT"
		                                          : "preparing the transaction";
		if (q && q->kind == Q_SETUP)
			fl_error_prefix(e, "%s (%s)", what, q->sql);
		else
			fl_error_prefix(e, "%s", what);
	}
	/* cancelled, or a lock wait whose retry the cancel cut short */
	if ((strcmp(d->sqlstate, "57014") == 0 || strcmp(d->sqlstate, "55P03") == 0) && cancelled(c))
		e->kind = FL_EINTR;
	return e;
}

/* ---- sessions: role, schema and timeouts ---- */

/*
 * The SETs a migration runs under, one per entry (for a pipeline or a dry
 * run). They are session SETs, not SET LOCAL: a COMMIT or BEGIN inside a
 * file ends flotilla's transaction, and what follows must still run as the
 * role, in the schema, under the same bounds. session_leave() undoes them.
 */
static size_t session_enter(ctx *c, char *out[4])
{
	size_t n = 0;
	out[n++] = fl_asprintf("SET search_path TO %s", c->qschema);
	out[n++] = fl_asprintf("SET lock_timeout = '%dms'", lock_timeout(c->o));
	if (c->o->statement_timeout_ms > 0)
		out[n++] = fl_asprintf("SET statement_timeout = '%dms'", c->o->statement_timeout_ms);
	if (c->o->role) {
		char *qr = fl_pg_ident(c->pg, c->o->role);
		out[n++] = fl_asprintf("SET ROLE %s", qr);
		free(qr);
	}
	return n;
}

/* Back to the session's own values (those it had when it connected: flotilla SETs nothing else). */
static size_t session_leave(ctx *c, const char *out[4])
{
	size_t n = 0;
	if (c->o->role)
		out[n++] = "RESET ROLE";
	out[n++] = "RESET search_path";
	out[n++] = "RESET lock_timeout";
	if (c->o->statement_timeout_ms > 0)
		out[n++] = "RESET statement_timeout";
	return n;
}

static char *joined(char *const *v, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	for (size_t i = 0; i < n; i++)
		fl_buf_printf(&b, "%s%s", i ? "; " : "", v[i]);
	return fl_buf_detach(&b);
}

/* After a failure: the transaction rolled back and the session as it was (one round trip). */
static void session_restore(ctx *c)
{
	if (PQstatus(c->pg->conn) != CONNECTION_OK)
		return;
	ensure_idle(c->pg);
	const char *v[4];
	size_t n = session_leave(c, v);
	char *sql = joined((char *const *)v, n);
	PGresult *r = PQexec(c->pg->conn, sql);
	PQclear(r);
	free(sql);
}

/* ---- waits for table locks: short attempts, retried ---- */

/* Sleeps ms, looking at the cancel flag every 100 ms; false when cancelled. */
static bool nap(const ctx *c, long long ms)
{
	long long end = now_ms() + ms;
	for (;;) {
		if (cancelled(c))
			return false;
		long long left = end - now_ms();
		if (left <= 0)
			return true;
		sleep_ms_plain(left < 100 ? left : 100);
	}
}

/* The backoff before retry number `retry` (1-based): interval * 2^(retry-1), at most 30 s, +-25 % jitter. */
static long long backoff_ms(ctx *c, int retry)
{
	long long base = c->o->lock_retry_interval_ms > 0 ? c->o->lock_retry_interval_ms
	                                                  : FL_APPLY_DEFAULT_LOCK_RETRY_INTERVAL_MS;
	for (int i = 1; i < retry && base < FL_APPLY_MAX_LOCK_RETRY_INTERVAL_MS; i++)
		base *= 2;
	if (base > FL_APPLY_MAX_LOCK_RETRY_INTERVAL_MS)
		base = FL_APPLY_MAX_LOCK_RETRY_INTERVAL_MS;
	/* jitter, so that pipelines blocked by one reader do not all come back at the same instant */
	if (!c->rng)
		c->rng = (unsigned long long)now_ms() ^ ((unsigned long long)getpid() << 32) ^
		         (unsigned long long)c->key;
	c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
	long long r = (long long)((c->rng >> 33) % 501); /* 0 .. 500 */
	return base * (750 + r) / 1000;
}

/*
 * Who holds a lock on `table` (as the statement wrote it, in the
 * migration's schema unless qualified), in words; NULL when nobody (any
 * more) or it cannot be told.
 */
static char *table_lock_holders(ctx *c, const char *table)
{
	char *name = strchr(table, '.') ? fl_strdup(table) : fl_asprintf("%s.%s", c->qschema, table);
	const char *params[1] = {name};
	PGresult *r = PQexecParams(
	    c->pg->conn,
	    "SELECT l.pid, a.application_name, l.mode, a.state, a.xact_start, a.query_start"
	    " FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
	    " WHERE l.locktype = 'relation' AND l.granted AND l.relation = pg_catalog.to_regclass($1)"
	    " AND l.pid <> pg_catalog.pg_backend_pid() ORDER BY l.pid LIMIT 3",
	    1, NULL, params, NULL, NULL, 0);
	free(name);
	char *out = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
		fl_buf b;
		fl_buf_init(&b);
		for (int i = 0; i < PQntuples(r); i++) {
			fl_buf_printf(&b, "%spid %s (application_name \"%s\", %s", i ? ", " : "",
			              PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
			if (!PQgetisnull(r, i, 3))
				fl_buf_printf(&b, ", %s", PQgetvalue(r, i, 3));
			if (!PQgetisnull(r, i, 4))
				fl_buf_printf(&b, ", transaction started %s", PQgetvalue(r, i, 4));
			if (!PQgetisnull(r, i, 5))
				fl_buf_printf(&b, ", query started %s", PQgetvalue(r, i, 5));
			fl_buf_putc(&b, ')');
		}
		out = fl_buf_detach(&b);
	}
	PQclear(r);
	return out;
}

/* "lock wait on table "users", held by pid 42 (...)": what a statement that timed out was waiting for. */
static char *lock_wait_words(ctx *c, const prepared *pm, size_t stmt)
{
	const fl_stmt *s = &pm->stmts[stmt];
	fl_sql_about a;
	fl_sql_about_of(pm->text + s->start, s->end - s->start, &a);
	char *table = a.table ? fl_strndup(a.table, a.table_len) : NULL;
	char *holders = table && PQstatus(c->pg->conn) == CONNECTION_OK ? table_lock_holders(c, table) : NULL;
	char *out =
	    table ? fl_asprintf("lock wait on table %s (%s:%d:%d)%s%s", table, pm->m->script, s->line, s->col,
	                        holders ? ", held by " : "", holders ? holders : "")
	          : fl_asprintf("lock wait of the statement at %s:%d:%d", pm->m->script, s->line, s->col);
	free(table);
	free(holders);
	return out;
}

/*
 * A statement timed out waiting for a lock (55P03) and was rolled back:
 * when retries are left, says so (FL_APPLY_EV_LOCK_RETRY) and sleeps the
 * backoff. *attempts counts the attempts made so far. true: try again.
 */
static bool retry_lock(ctx *c, const prepared *pm, size_t stmt, int *attempts)
{
	int retries = lock_retries(c->o);
	if (*attempts > retries)
		return false;
	long long wait = backoff_ms(c, *attempts);
	char *what = lock_wait_words(c, pm, stmt);
	char *text =
	    fl_asprintf("%s: retry %d of %d in %.1f s", what, *attempts, retries, (double)wait / 1000.0);
	fl_apply_event ev = {.kind = FL_APPLY_EV_LOCK_RETRY,
	                     .script = pm->m->script,
	                     .version = pm->hrow.version,
	                     .index = *attempts,
	                     .total = retries,
	                     .ms = (long)wait,
	                     .text = text};
	emit(c, &ev);
	free(text);
	free(what);
	if (!nap(c, wait))
		return false;
	(*attempts)++;
	return true;
}

static bool is_lock_timeout(const fl_pg_diag *d)
{
	return strcmp(d->sqlstate, "55P03") == 0;
}

/* The final lock timeout: how many attempts, how long, and who held the lock, after the server's words. */
static void lock_gave_up(ctx *c, const prepared *pm, size_t stmt, int attempts, long long since, fl_error *e)
{
	char *what = lock_wait_words(c, pm, stmt);
	char *msg = fl_asprintf(
	    "%s; gave up after %d attempt%s in %.1f s (lock_timeout %d ms each, lock_retries %d): "
	    "%s; run it when the table is quiet, or raise lock_retries",
	    e->msg, attempts, attempts == 1 ? "" : "s", (double)(now_ms() - since) / 1000.0,
	    lock_timeout(c->o), lock_retries(c->o), what);
	free(e->msg);
	e->msg = msg;
	free(what);
}

/* A COMMIT, BEGIN ... in the file: what ran before it may be committed, so nothing is retried. */
static bool has_transaction_control(const prepared *pm)
{
	static const char *const words[] = {"COMMIT", "END", "BEGIN", "START", "ROLLBACK", "ABORT"};
	for (size_t i = 0; i < pm->nstmts; i++) {
		const char *st = pm->text + pm->stmts[i].start;
		size_t len = pm->stmts[i].end - pm->stmts[i].start;
		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (word_at(st, len, words[k]))
				return true;
	}
	return false;
}

/* ---- running one migration in a transaction, in one round trip ---- */

static void say_what_is_left(ctx *c, const prepared *pm, size_t at, bool at_commit, fl_error *e);

static int run_in_transaction(ctx *c, prepared *pm, long *ms, fl_error **err)
{
	query_list l = {0};
	qadd(&l, fl_strdup("BEGIN"), Q_SETUP, 0);
	char *enter[4];
	size_t nenter = session_enter(c, enter);
	for (size_t i = 0; i < nenter; i++)
		qadd(&l, enter[i], Q_SETUP, 0);
	for (size_t i = 0; i < pm->nstmts; i++)
		qadd(&l, fl_strndup(pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start),
		     Q_STMT, i);
	/* history and ledger are written as the login user, whatever the migration did to the role */
	if (c->o->role)
		qadd(&l, fl_strdup("RESET ROLE"), Q_RESET, 0);
	/* an earlier attempt that failed outside a transaction left a failed row: this one replaces it */
	if (pm->failed_rank)
		qadd(&l,
		     fl_asprintf("DELETE FROM %s WHERE \"installed_rank\" = %d AND NOT \"success\"",
		                 c->history, pm->failed_rank),
		     Q_HISTORY, 0);
	qadd(&l, fl_history_insert_sql(c->pg, c->schema, c->table, &pm->hrow, EXEC_TIME_SQL), Q_HISTORY, 0);
	/* bookkeeping like the history row: as the login user, in the migration's transaction */
	if (c->o->keep_alembic_version) {
		char *av[3];
		size_t nav = fl_alembic_version_sql(pm->m, c->schema, av);
		for (size_t i = 0; i < nav; i++)
			qadd(&l, av[i], Q_HISTORY, 0);
	}
	if (c->ledger && c->run_id)
		qadd(&l, ledger_insert_sql(c, pm, "true", EXEC_TIME_SQL, NULL), Q_LEDGER, 0);
	qadd(&l, fl_strdup("COMMIT"), Q_COMMIT, 0);
	const char *leave[4];
	size_t nleave = session_leave(c, leave);
	for (size_t i = c->o->role ? 1 : 0; i < nleave; i++)
		qadd(&l, fl_strdup(leave[i]), Q_RESET, 0);

	if (c->o->dry_run) {
		dry_header(c, pm);
		for (size_t i = 0; i < l.n; i++)
			dry(c, "%s;\n", l.q[i].sql);
		qfree(&l);
		*ms = 0;
		return 0;
	}
	long long t0 = now_ms();
	bool may_retry = !has_transaction_control(pm);
	int attempts = 1;
	int rc;
	for (;;) {
		size_t failed;
		long hist_ms = -1;
		fl_pg_diag d = {0};
		long long ta = now_ms();
		rc = pipeline(c->pg, &l, &failed, &d, &hist_ms);
		*ms = hist_ms >= 0 ? hist_ms : (long)(now_ms() - ta);
		if (rc == 0) {
			fl_pg_diag_clear(&d);
			break;
		}
		session_restore(c);
		bool in_stmt = failed != SIZE_MAX && l.q[failed].kind == Q_STMT;
		if (in_stmt && may_retry && is_lock_timeout(&d) && !cancelled(c) &&
		    retry_lock(c, pm, l.q[failed].stmt, &attempts)) {
			fl_pg_diag_clear(&d);
			continue;
		}
		fl_error *e = migration_error(c, pm, failed == SIZE_MAX ? NULL : &l.q[failed], &d);
		if (in_stmt && is_lock_timeout(&d) && e->kind != FL_EINTR)
			lock_gave_up(c, pm, l.q[failed].stmt, attempts, t0, e);
		say_what_is_left(c, pm, 0, failed != SIZE_MAX && l.q[failed].kind == Q_COMMIT, e);
		*ms = (long)(now_ms() - t0);
		ledger_failure(c, pm, *ms, e);
		fl_pg_diag_move(&c->res->diag, &d);
		fl_pg_diag_clear(&d);
		*err = e;
		break;
	}
	qfree(&l);
	return rc;
}

/* ---- running one migration outside a transaction, statement by statement ---- */

static int exec_simple(ctx *c, const char *sql, fl_pg_diag *d)
{
	watch_n(c->pg, 1);
	PGresult *r = PQexec(c->pg->conn, sql);
	fl_pg_unwatch(c->pg);
	ExecStatusType st = PQresultStatus(r);
	int rc = (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)) ? 0 : -1;
	if (rc != 0 && d)
		fl_pg_diag_fill(d, r, c->pg);
	PQclear(r);
	return rc;
}

/* One statement on its own (simple protocol; COPY TO STDOUT drained). 0, or -1 with d filled. */
static int exec_statement(ctx *c, const prepared *pm, size_t i, fl_pg_diag *d)
{
	const fl_stmt *s = &pm->stmts[i];
	char *stmt = fl_strndup(pm->text + s->start, s->end - s->start);
	PGresult *r = PQexecParams(c->pg->conn, stmt, 0, NULL, NULL, NULL, NULL, 0);
	free(stmt);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COPY_OUT) {
		char *buf;
		while (PQgetCopyData(c->pg->conn, &buf, 0) > 0)
			PQfreemem(buf);
		PQclear(r);
		r = PQgetResult(c->pg->conn);
		st = PQresultStatus(r);
		PGresult *x;
		while ((x = PQgetResult(c->pg->conn)) != NULL)
			PQclear(x);
	}
	int rc = 0;
	if (!r || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)) {
		fl_pg_diag_fill(d, r, c->pg);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

/* What one no-transaction file's run carries from statement to statement. */
typedef struct {
	long long exec_id;    /* the ledger row; 0: no ledger */
	fl_sha256_ctx prefix; /* of the statements done so far */
	char *qrole;          /* NULL: no role */
} steps;

/* SHA-256 of the statements done and statement i. */
static void prefix_with(const steps *st, const prepared *pm, size_t i, char hex[65])
{
	fl_sha256_ctx copy = st->prefix;
	fl_sha256_update(&copy, pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start);
	fl_sha256_update(&copy, "\0", 1);
	fl_sha256_final_hex(&copy, hex);
}

static void prefix_add(steps *st, const prepared *pm, size_t i)
{
	fl_sha256_update(&st->prefix, pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start);
	fl_sha256_update(&st->prefix, "\0", 1);
}

/* The ledger's UPDATE of this file's row, as the login user (the role cannot write flotilla's schema). */
static char *ledger_update_sql(const steps *st, const char *set)
{
	return fl_asprintf("%sUPDATE " LEDGER_EXEC " SET %s WHERE id = %lld%s%s",
	                   st->qrole ? "RESET ROLE; " : "", set, st->exec_id, st->qrole ? "; SET ROLE " : "",
	                   st->qrole ? st->qrole : "");
}

static int ledger_update(ctx *c, const steps *st, const prepared *pm, size_t i, const char *set,
                         fl_error **err)
{
	if (!st->exec_id)
		return 0;
	char *sql = ledger_update_sql(st, set);
	fl_pg_diag d = {0};
	int rc = exec_simple(c, sql, &d);
	free(sql);
	if (rc != 0) {
		*err = fl_pg_diag_error(&d, pm->m->path, 0, 0);
		fl_error_prefix(*err, "statement %zu of %zu: recording it in flotilla's ledger failed", i + 1,
		                pm->nstmts);
	}
	fl_pg_diag_clear(&d);
	return rc;
}

/* Statement i is done: the ledger says so (statements_done, their SHA-256, nothing in flight). */
static int step_done(ctx *c, steps *st, const prepared *pm, size_t i, fl_error **err)
{
	char hex[65];
	prefix_with(st, pm, i, hex);
	char *set = fl_asprintf("statements_done = %zu, prefix_sha256 = '%s', in_flight = NULL", i + 1, hex);
	int rc = ledger_update(c, st, pm, i, set, err);
	free(set);
	if (rc == 0)
		prefix_add(st, pm, i);
	return rc;
}

/*
 * A statement PostgreSQL runs in a transaction: in its own, which also
 * records it done in the ledger (one round trip), so it runs with its
 * record or not at all. Returns 0, -1 with *err, or 1 when the server says
 * it cannot run in a transaction block after all (25001; nothing ran).
 */
static int run_step(ctx *c, steps *st, const prepared *pm, size_t i, fl_error **err)
{
	query_list l = {0};
	qadd(&l, fl_strdup("BEGIN"), Q_SETUP, 0);
	qadd(&l, fl_strndup(pm->text + pm->stmts[i].start, pm->stmts[i].end - pm->stmts[i].start), Q_STMT, i);
	if (st->exec_id) {
		char hex[65];
		prefix_with(st, pm, i, hex);
		if (st->qrole)
			qadd(&l, fl_strdup("RESET ROLE"), Q_RESET, 0);
		qadd(&l,
		     fl_asprintf("UPDATE " LEDGER_EXEC " SET statements_done = %zu, prefix_sha256 = '%s',"
		                 " in_flight = NULL WHERE id = %lld",
		                 i + 1, hex, st->exec_id),
		     Q_LEDGER, 0);
		if (st->qrole)
			qadd(&l, fl_asprintf("SET ROLE %s", st->qrole), Q_RESET, 0);
	}
	qadd(&l, fl_strdup("COMMIT"), Q_COMMIT, 0);
	long long t0 = now_ms();
	int attempts = 1, rc;
	for (;;) {
		size_t failed;
		fl_pg_diag d = {0};
		rc = pipeline(c->pg, &l, &failed, &d, NULL);
		if (rc == 0) {
			prefix_add(st, pm, i);
			fl_pg_diag_clear(&d);
			break;
		}
		ensure_idle(c->pg); /* the role set before BEGIN comes back with the rollback */
		bool in_stmt = failed != SIZE_MAX && l.q[failed].kind == Q_STMT;
		if (in_stmt && strcmp(d.sqlstate, "25001") == 0) {
			fl_pg_diag_clear(&d);
			rc = 1;
			break;
		}
		if (in_stmt && is_lock_timeout(&d) && !cancelled(c) && retry_lock(c, pm, i, &attempts)) {
			fl_pg_diag_clear(&d);
			continue;
		}
		fl_error *e = migration_error(c, pm, failed == SIZE_MAX ? NULL : &l.q[failed], &d);
		if (in_stmt && is_lock_timeout(&d) && e->kind != FL_EINTR)
			lock_gave_up(c, pm, i, attempts, t0, e);
		fl_pg_diag_move(&c->res->diag, &d);
		fl_pg_diag_clear(&d);
		*err = e;
		break;
	}
	qfree(&l);
	return rc;
}

/* The state of the index a statement names (as written, resolved on the session's search_path). */
enum { IDX_ERROR = -1, IDX_ABSENT, IDX_VALID, IDX_INVALID };

static int index_state(ctx *c, const char *name, fl_error **err)
{
	const char *params[1] = {name};
	PGresult *r = fl_pg_query(c->pg,
	                          "SELECT indisvalid FROM pg_catalog.pg_index"
	                          " WHERE indexrelid = pg_catalog.to_regclass($1)",
	                          1, params, "checking the index", NULL, err);
	if (!r)
		return IDX_ERROR;
	int s = PQntuples(r) == 0 ? IDX_ABSENT : PQgetvalue(r, 0, 0)[0] == 't' ? IDX_VALID : IDX_INVALID;
	PQclear(r);
	return s;
}

static void notice(ctx *c, const prepared *pm, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notice(ctx *c, const prepared *pm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = fl_vasprintf(fmt, ap);
	va_end(ap);
	fl_apply_event ev = {.kind = FL_APPLY_EV_NOTICE, .script = pm->m->script, .text = text};
	emit(c, &ev);
	free(text);
}

/*
 * A statement PostgreSQL refuses in a transaction (or that the server
 * refused in one): marked in flight in the ledger, run, marked done. Only
 * statements whose effect can be checked are retried after a lock timeout:
 * an index built concurrently (an INVALID one left by the failed attempt
 * is dropped first), an index dropped concurrently, VACUUM and the like.
 * in_flight: an earlier run was killed while this statement ran.
 */
static int run_refused(ctx *c, steps *st, const prepared *pm, size_t i, bool in_flight, fl_error **err)
{
	const fl_stmt *s = &pm->stmts[i];
	fl_sql_about a;
	fl_sql_about_of(pm->text + s->start, s->end - s->start, &a);
	char *index = a.index ? fl_strndup(a.index, a.index_len) : NULL;
	bool cic = a.kind == FL_SQL_CREATE_INDEX_CONCURRENTLY && index;
	bool dic = a.kind == FL_SQL_DROP_INDEX_CONCURRENTLY && index;
	bool retryable = cic || dic || a.kind == FL_SQL_RERUNNABLE;
	int rc = -1;
	if (in_flight && (cic || dic)) {
		int is = index_state(c, index, err);
		if (is == IDX_ERROR)
			goto out;
		if ((cic && is == IDX_VALID) || (dic && is == IDX_ABSENT)) {
			notice(c, pm,
			       "statement %zu of %zu (%s:%d:%d) was running when an earlier run stopped; "
			       "index %s %s: "
			       "it is done",
			       i + 1, pm->nstmts, pm->m->path, s->line, s->col, index,
			       cic ? "exists and is valid" : "is gone");
			rc = step_done(c, st, pm, i, err);
			goto out;
		}
	}
	long long t0 = now_ms();
	int attempts = 1;
	char flight[48];
	snprintf(flight, sizeof(flight), "in_flight = %zu", i + 1);
	for (;;) {
		fl_pg_diag d = {0};
		bool failed = false;
		if (cic) {
			int is = index_state(c, index, err);
			if (is == IDX_ERROR)
				goto out;
			if (is == IDX_INVALID) {
				notice(c, pm,
				       "index %s is INVALID (an earlier CREATE INDEX CONCURRENTLY was "
				       "interrupted): dropping "
				       "it (DROP INDEX CONCURRENTLY) and building it again",
				       index);
				char *drop = fl_asprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", index);
				failed = exec_simple(c, drop, &d) != 0;
				free(drop);
			}
		}
		if (!failed) {
			if (ledger_update(c, st, pm, i, flight, err) != 0)
				goto out;
			failed = exec_statement(c, pm, i, &d) != 0;
		}
		if (!failed) {
			fl_pg_diag_clear(&d);
			if (cic) {
				int is = index_state(c, index, err);
				if (is == IDX_ERROR)
					goto out;
				if (is != IDX_VALID) {
					*err = fl_error_at(pm->m->path, s->line, s->col,
					                   "index %s is %s after statement %zu of %zu ran; "
					                   "it is not counted "
					                   "as done",
					                   index, is == IDX_ABSENT ? "missing" : "INVALID",
					                   i + 1, pm->nstmts);
					(*err)->kind = FL_EDB;
					goto out;
				}
			}
			rc = step_done(c, st, pm, i, err);
			goto out;
		}
		/* it failed: the server said so, so it is not in flight any more (an INVALID index it left
		 * is dealt with before the next attempt) */
		bool connected = PQstatus(c->pg->conn) == CONNECTION_OK;
		fl_error *le = NULL;
		if (connected && ledger_update(c, st, pm, i, "in_flight = NULL", &le) != 0)
			fl_error_free(le);
		if (connected && retryable && is_lock_timeout(&d) && !cancelled(c) &&
		    retry_lock(c, pm, i, &attempts)) {
			fl_pg_diag_clear(&d);
			continue;
		}
		query q = {NULL, Q_STMT, i};
		fl_error *e = migration_error(c, pm, &q, &d);
		if (is_lock_timeout(&d) && e->kind != FL_EINTR) {
			if (retryable)
				lock_gave_up(c, pm, i, attempts, t0, e);
			else {
				char *m = fl_asprintf(
				    "%s; not retried: it cannot run in a transaction, and flotilla cannot "
				    "check what an interrupted attempt left",
				    e->msg);
				free(e->msg);
				e->msg = m;
			}
		}
		if (cic && connected && e->kind != FL_EINTR) { /* interrupted: say_what_is_left says it */
			int is = index_state(c, index, &le);
			fl_error_free(le);
			if (is == IDX_INVALID) {
				char *m = fl_asprintf("%s; index %s is left INVALID (a build that failed is "
				                      "not rolled back): the "
				                      "next run drops it and builds it again",
				                      e->msg, index);
				free(e->msg);
				e->msg = m;
			}
		}
		fl_pg_diag_move(&c->res->diag, &d);
		fl_pg_diag_clear(&d);
		*err = e;
		goto out;
	}
out:
	free(index);
	return rc;
}

/* After the file: every index it builds concurrently must be valid, or it is not done. */
static int verify_indexes(ctx *c, const prepared *pm, fl_error **err)
{
	for (size_t i = 0; i < pm->nstmts; i++) {
		const fl_stmt *s = &pm->stmts[i];
		fl_sql_about a;
		fl_sql_about_of(pm->text + s->start, s->end - s->start, &a);
		if (a.kind != FL_SQL_CREATE_INDEX_CONCURRENTLY || !a.index)
			continue;
		char *index = fl_strndup(a.index, a.index_len);
		int is = index_state(c, index, err);
		if (is == IDX_INVALID) {
			*err = fl_error_at(pm->m->path, s->line, s->col,
			                   "index %s is INVALID after the migration ran; drop it (DROP INDEX "
			                   "CONCURRENTLY) and run migrate again",
			                   index);
			(*err)->kind = FL_EDB;
		}
		free(index);
		if (is == IDX_INVALID || is == IDX_ERROR)
			return -1;
	}
	return 0;
}

/* ---- what an interrupt or a lost connection left (issue 13) ---- */

static bool connection_lost(const ctx *c)
{
	return PQstatus(c->pg->conn) != CONNECTION_OK;
}

/*
 * Rewrites the error of a migration that was interrupted or lost its
 * connection into what it left behind, without a place in the file (the
 * statement was not at fault): a transaction is rolled back by the server,
 * unless the connection went at COMMIT (then the next run sees from the
 * history whether it committed); a no-transaction file keeps the statements
 * before `at` (1-based, 0 when none ran) and an index its build left INVALID.
 */
static void say_what_is_left(ctx *c, const prepared *pm, size_t at, bool at_commit, fl_error *e)
{
	bool lost = connection_lost(c);
	if (!e || (e->kind != FL_EINTR && !lost))
		return;
	fl_buf b;
	fl_buf_init(&b);
	const char *script = pm->m->script;
	if (!pm->no_tx) {
		/* results of a pipeline can be lost after the server committed it: never claim a rollback */
		if (lost)
			fl_buf_printf(
			    &b,
			    "%s: lost the connection before its COMMIT was confirmed%s: the server "
			    "rolls back what it did not commit, and the next run applies it only if "
			    "the history table does not record it",
			    script, at_commit ? " (at COMMIT)" : "");
		else
			fl_buf_printf(&b, "%s rolled back (transaction): nothing of it is applied", script);
	} else {
		if (lost)
			fl_buf_printf(&b, "%s: lost the connection during statement %zu of %zu", script, at,
			              pm->nstmts);
		else if (at)
			fl_buf_printf(&b, "%s: statement %zu of %zu interrupted", script, at, pm->nstmts);
		else
			fl_buf_printf(&b, "%s: interrupted", script);
		if (at <= 1)
			fl_buf_puts(&b, " (no transaction; no statement of it done)");
		else if (at == 2)
			fl_buf_puts(&b, " (no transaction; statement 1 done and kept)");
		else
			fl_buf_printf(&b, " (no transaction; statements 1 to %zu done and kept)", at - 1);
		const fl_stmt *s = at ? &pm->stmts[at - 1] : NULL;
		fl_sql_about a = {0};
		if (s)
			fl_sql_about_of(pm->text + s->start, s->end - s->start, &a);
		if (a.kind == FL_SQL_CREATE_INDEX_CONCURRENTLY && a.index) {
			char *index = fl_strndup(a.index, a.index_len);
			fl_error *le = NULL;
			int is = lost ? IDX_ERROR : index_state(c, index, &le);
			fl_error_free(le);
			if (is == IDX_INVALID)
				fl_buf_printf(
				    &b, "; index %s left INVALID, dropped and built again on the next run",
				    index);
			else if (is == IDX_ERROR)
				fl_buf_printf(
				    &b,
				    "; index %s may be left INVALID: the next run checks it and, if so, "
				    "drops it and builds it again",
				    index);
			free(index);
		} else if (lost && at) {
			fl_buf_printf(&b,
			              "; the ledger says whether statement %zu committed: the next run "
			              "continues at the first statement not done",
			              at);
		}
	}
	fl_buf_printf(&b, " (%s)", e->msg);
	free(e->msg);
	e->msg = fl_buf_detach(&b);
	free(e->file);
	e->file = NULL;
	e->line = e->col = 0;
}

static int run_outside_transaction(ctx *c, prepared *pm, long *ms, fl_error **err)
{
	char *enter[4];
	size_t nenter = session_enter(c, enter);
	char *setup = joined(enter, nenter);
	for (size_t i = 0; i < nenter; i++)
		free(enter[i]);
	const char *leave[4];
	size_t nleave = session_leave(c, leave);
	char *reset = joined((char *const *)leave, nleave);
	size_t first = (size_t)pm->resume_at - 1;
	steps st = {.qrole = c->o->role ? fl_pg_ident(c->pg, c->o->role) : NULL};
	fl_sha256_init(&st.prefix);

	if (c->o->dry_run) {
		dry_header(c, pm);
		dry(c, "%s;\n", setup);
		for (size_t i = first; i < pm->nstmts; i++)
			dry(c, "%.*s;\n", (int)(pm->stmts[i].end - pm->stmts[i].start),
			    pm->text + pm->stmts[i].start);
		if (st.qrole)
			dry(c, "RESET ROLE;\n");
		char *ins = fl_history_insert_sql(c->pg, c->schema, c->table, &pm->hrow, NULL);
		dry(c, "%s;\n%s;\n", ins, reset);
		free(ins);
		free(setup);
		free(reset);
		free(st.qrole);
		*ms = 0;
		return 0;
	}

	long long t0 = now_ms();
	fl_pg_diag d = {0};
	fl_error *e = NULL;
	size_t at = 0; /* the statement running (1-based) */
	if (c->ledger && c->run_id) {
		char *sql = ledger_insert_sql(c, pm, "NULL", "NULL", NULL);
		char *v = fl_pg_value(c->pg, sql, 0, NULL, &e);
		free(sql);
		if (!v) {
			fl_error_prefix(e, "writing flotilla's ledger");
			goto out;
		}
		st.exec_id = atoll(v);
		free(v);
	}
	if (exec_simple(c, setup, &d) != 0) {
		e = fl_pg_diag_error(&d, pm->m->path, 0, 0);
		fl_error_prefix(e, "preparing the session (%s)", setup);
		goto restore;
	}
	for (size_t i = 0; i < first; i++)
		prefix_add(&st, pm, i);
	for (size_t i = first; i < pm->nstmts; i++) {
		at = i + 1;
		if (cancelled(c)) {
			e = interrupted(NULL);
			fl_error_prefix(e, "%s: stopped before statement %zu of %zu", pm->m->path, i + 1,
			                pm->nstmts);
			goto restore;
		}
		fl_apply_event ev = {.kind = FL_APPLY_EV_STATEMENT,
		                     .script = pm->m->script,
		                     .version = pm->hrow.version,
		                     .index = (int)i + 1,
		                     .total = (int)pm->nstmts};
		emit(c, &ev);
		const fl_stmt *s = &pm->stmts[i];
		int rc = 1;
		if (!fl_sql_refuses_transaction(pm->text + s->start, s->end - s->start))
			rc = run_step(c, &st, pm, i, &e);
		if (rc == 1)
			rc = run_refused(c, &st, pm, i, i == first && pm->in_flight, &e);
		if (rc != 0)
			goto restore;
	}
	verify_indexes(c, pm, &e);
restore:
	say_what_is_left(c, pm, at, false, e);
	if (PQstatus(c->pg->conn) == CONNECTION_OK) {
		ensure_idle(c->pg);
		PGresult *r = PQexec(c->pg->conn, reset);
		PQclear(r);
	}
	*ms = (long)(now_ms() - t0);
	if (!e) {
		/* done: history row (replacing the failed one of an earlier attempt) and ledger, atomically
		 */
		fl_history_row row = pm->hrow;
		row.execution_time = (int)*ms;
		char *ins = fl_history_insert_sql(c->pg, c->schema, c->table, &row, NULL);
		fl_buf fin;
		fl_buf_init(&fin);
		fl_buf_puts(&fin, "BEGIN; ");
		if (pm->failed_rank)
			fl_buf_printf(&fin,
			              "DELETE FROM %s WHERE \"installed_rank\" = %d AND NOT \"success\"; ",
			              c->history, pm->failed_rank);
		fl_buf_printf(&fin, "%s; ", ins);
		if (c->o->keep_alembic_version) {
			char *av[3];
			size_t nav = fl_alembic_version_sql(pm->m, c->schema, av);
			for (size_t i = 0; i < nav; i++) {
				fl_buf_printf(&fin, "%s; ", av[i]);
				free(av[i]);
			}
		}
		if (st.exec_id)
			fl_buf_printf(&fin,
			              "UPDATE " LEDGER_EXEC
			              " SET success = true, duration_ms = %ld WHERE id = %lld; ",
			              *ms, st.exec_id);
		fl_buf_puts(&fin, "COMMIT");
		free(ins);
		if (exec_simple(c, fin.data, &d) != 0) {
			ensure_idle(c->pg);
			e = fl_pg_diag_error(&d, pm->m->path, 0, 0);
			fl_error_prefix(e, "every statement ran, but writing the history row failed");
		}
		fl_buf_free(&fin);
	} else if (PQstatus(c->pg->conn) == CONNECTION_OK) {
		/* as Flyway: a failed no-transaction migration leaves a failed row (once) */
		if (!pm->failed_rank) {
			fl_history_row row = pm->hrow;
			row.success = false;
			row.execution_time = (int)*ms;
			char *ins = fl_history_insert_sql(c->pg, c->schema, c->table, &row, NULL);
			exec_simple(c, ins, NULL);
			free(ins);
		}
		if (st.exec_id) {
			char *msg = fl_error_format(e);
			char *qmsg = fl_pg_literal(c->pg, msg);
			char *up = fl_asprintf("UPDATE " LEDGER_EXEC
			                       " SET success = false, duration_ms = %ld, error = %s"
			                       " WHERE id = %lld",
			                       *ms, qmsg, st.exec_id);
			exec_simple(c, up, NULL);
			free(up);
			free(qmsg);
			free(msg);
		}
	}
out:
	if (e) {
		if (d.sqlstate[0] || d.message)
			fl_pg_diag_move(&c->res->diag, &d);
		*err = e;
	}
	fl_pg_diag_clear(&d);
	free(setup);
	free(reset);
	free(st.qrole);
	return e ? -1 : 0;
}

/* Runs prepared migrations in order; stops at the first failure. */
/* Does the set have a callback for the event? */
static bool has_callback(const fl_migration_set *set, const char *event)
{
	for (size_t i = 0; set && i < set->ncallbacks; i++)
		if (strcmp(set->callbacks[i].event, event) == 0)
			return true;
	return false;
}

/* One callback file: expanded, in the role and schema, in a transaction unless it refuses one. */
static int run_callback(ctx *c, const fl_migration *cb, long *ms, fl_error **err)
{
	prepared pm;
	if (prepare(c, cb, &pm, err) != 0) {
		prepared_free(&pm);
		return -1;
	}
	/* LOCAL inside the callback's transaction; for one outside, the session's, reset after */
	const char *local = pm.no_tx ? "" : "LOCAL ";
	fl_buf enter;
	fl_buf_init(&enter);
	if (!pm.no_tx)
		fl_buf_puts(&enter, "BEGIN; ");
	if (c->o->role) {
		char *role = fl_pg_ident_plain(c->o->role);
		fl_buf_printf(&enter, "SET %sROLE %s; ", local, role);
		free(role);
	}
	fl_buf_printf(&enter, "SET %ssearch_path = %s", local, c->qschema);
	long long t0 = now_ms();
	fl_pg_diag d = {0};
	int rc = fl_pg_exec(c->pg, enter.data, "preparing a callback", NULL, err);
	for (size_t i = 0; rc == 0 && i < pm.nstmts; i++) {
		char *st = fl_strndup(pm.text + pm.stmts[i].start, pm.stmts[i].end - pm.stmts[i].start);
		fl_error *e = NULL;
		if (fl_pg_exec(c->pg, st, cb->path, &d, &e) != 0) {
			int line = 0, col = 0;
			size_t off = pm.stmts[i].start;
			size_t raw = fl_migration_unexpand_offset(cb, pm.ph, pm.nph, off);
			fl_sql_position(cb->data, cb->len, raw, &line, &col);
			fl_error *x =
			    fl_error_at(cb->path, line, col, "callback %s failed: %s", cb->event, e->msg);
			x->kind = e->kind == FL_EINTR ? FL_EINTR : FL_EDB;
			fl_error_free(e);
			*err = x;
			rc = -1;
		}
		free(st);
		fl_pg_diag_clear(&d);
	}
	if (rc == 0)
		rc = fl_pg_exec(c->pg, pm.no_tx ? "RESET ROLE; RESET search_path" : "COMMIT",
		                "ending a callback", NULL, err);
	else
		ensure_idle(c->pg);
	if (rc != 0 && pm.no_tx) {
		PGresult *r = PQexec(c->pg->conn, "RESET ROLE; RESET search_path");
		PQclear(r);
	}
	*ms = (long)(now_ms() - t0);
	fl_buf_free(&enter);
	prepared_free(&pm);
	return rc;
}

/*
 * Runs the event's callbacks, in file-name order. A dry run prints them.
 * Returns 0, or -1 with *err (the first that failed; the rest do not run).
 */
static int run_event(ctx *c, const char *event, fl_error **err)
{
	const fl_migration_set *set = c->callbacks;
	for (size_t i = 0; set && i < set->ncallbacks; i++) {
		const fl_migration *cb = &set->callbacks[i];
		if (strcmp(cb->event, event) != 0)
			continue;
		if (c->o->dry_run) {
			prepared pm;
			if (prepare(c, cb, &pm, err) == 0)
				dry(c, "\n-- callback %s: %s\n%.*s\n", event, cb->script, (int)pm.len,
				    pm.text);
			prepared_free(&pm);
			if (*err)
				return -1;
			continue;
		}
		long ms = 0;
		int rc = run_callback(c, cb, &ms, err);
		fl_apply_result *r = c->res;
		r->callbacks = fl_realloc(r->callbacks, (r->ncallbacks + 1) * sizeof(*r->callbacks));
		r->callbacks[r->ncallbacks++] =
		    (struct fl_apply_callback){fl_strdup(event), fl_strdup(cb->script), ms, rc == 0};
		char *text = rc == 0 ? fl_asprintf("callback %s ran (%ld ms)", cb->script, ms)
		                     : fl_asprintf("callback %s failed", cb->script);
		fl_apply_event ev = {
		    .kind = FL_APPLY_EV_NOTICE, .script = cb->script, .text = text, .ms = ms};
		emit(c, &ev);
		free(text);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int run_all(ctx *c, prepared *pms, size_t n, bool undo, fl_error **err)
{
	for (size_t i = 0; i < n; i++) {
		prepared *pm = &pms[i];
		if (cancelled(c)) {
			*err = interrupted(NULL);
			fl_error_prefix(*err, "stopped before %s", pm->m->path);
			return -1;
		}
		fl_apply_event ev = {.kind = FL_APPLY_EV_APPLYING,
		                     .script = pm->m->script,
		                     .version = pm->hrow.version,
		                     .description = pm->m->description,
		                     .checksum = pm->hrow.checksum,
		                     .index = (int)i + 1,
		                     .total = (int)n,
		                     .resume_at = pm->resume_at,
		                     .undo = undo};
		emit(c, &ev);
		long ms = 0;
		if (pm->m->kind == FL_MIG_REPEATABLE && !c->versioned_done) {
			c->versioned_done = true;
			if (run_event(c, "afterVersioned", err) != 0 ||
			    run_event(c, "beforeRepeatables", err) != 0)
				return -1;
		}
		if (run_event(c, "beforeEachMigrate", err) != 0)
			return -1;
		int rc = pm->no_tx ? run_outside_transaction(c, pm, &ms, err)
		                   : run_in_transaction(c, pm, &ms, err);
		emit_notices(c, pm->m->script);
		if (rc != 0) {
			fl_error *ce = NULL; /* the migration's error is the one to report */
			run_event(c, "afterEachMigrateError", &ce);
			fl_error_append(err, ce);
			fl_apply_event f = {.kind = FL_APPLY_EV_FAILED,
			                    .script = pm->m->script,
			                    .version = pm->hrow.version,
			                    .description = pm->m->description,
			                    .index = (int)i + 1,
			                    .total = (int)n,
			                    .undo = undo,
			                    .error = *err};
			emit(c, &f);
			return -1;
		}
		if (run_event(c, "afterEachMigrate", err) != 0)
			return -1;
		if (c->o->dry_run)
			continue;
		add_item(c, pm, ms);
		ev.kind = FL_APPLY_EV_APPLIED;
		ev.ms = ms;
		emit(c, &ev);
	}
	return 0;
}

/* ---- reading what a command needs, in one round trip ---- */

/* flotilla's own migrations (control_sql.h) as a set, or NULL with *err. */
static fl_migration_set *control_set(fl_error **err)
{
	fl_file *files = fl_calloc(fl_control_sql_count ? fl_control_sql_count : 1, sizeof(*files));
	for (size_t i = 0; i < fl_control_sql_count; i++) {
		files[i].name = fl_strdup(fl_control_sql[i].name);
		files[i].path = fl_asprintf("flotilla/migrations/%s", fl_control_sql[i].name);
		files[i].data = fl_strdup(fl_control_sql[i].sql);
		files[i].len = strlen(fl_control_sql[i].sql);
	}
	fl_error *e = NULL;
	fl_migration_set *set = fl_migration_set_new(files, fl_control_sql_count, &e);
	free(files);
	if (!set) {
		fl_error_prefix(e, "flotilla's own control schema");
		*err = e;
	}
	return set;
}

/* Does the control schema's history say every embedded migration is applied, and nothing is off? */
static bool control_is_current(const fl_migration_set *set, const fl_history *h, const char *service)
{
	fl_plan_opts po = {.service = service};
	fl_error *e = NULL;
	fl_plan *p = fl_plan_new(h, set, &po, &e);
	fl_error *v = p ? fl_plan_validate(p, true) : NULL;
	bool ok = p && !v;
	fl_error_free(v);
	fl_error_free(e);
	fl_plan_free(p);
	return ok;
}

static bool result_ok(const PGresult *r)
{
	return r && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
}

/* A failed query of the batch, 42P01: the table is not there (yet). */
static bool undefined_table(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return st && strcmp(st, "42P01") == 0;
}

static fl_error *result_error(fl_pg *pg, const PGresult *r, const char *what)
{
	fl_pg_diag d = {0};
	fl_pg_diag_fill(&d, r, pg);
	fl_error *e = fl_pg_diag_error(&d, NULL, 0, 0);
	fl_pg_diag_clear(&d);
	fl_error_prefix(e, "%s", what);
	return e;
}

/*
 * RS_NO_PROGRESS: without the ledger's unfinished executions, the costliest
 * read of a fresh backend. The no-op shortcut needs no such row: they only
 * say where a failed or pending file would resume, and a failed or pending
 * file is not nothing to do, which is read again, in full, under the lock.
 */
enum { RS_LEDGER = 1, RS_CONTROL = 2, RS_TRY_LOCK = 4, RS_NO_PROGRESS = 8 };

/*
 * Does the server run on the machine it was reached from? It got the
 * connection on a Unix socket, or on a loopback address. (A Cloud SQL or
 * AlloyDB Auth Proxy, even on a Unix socket here, reaches its instance over
 * TCP: the instance sees that.) Its cores are then the ones everything on
 * that machine shares (fl_apply_opts.work_gate).
 */
#define SERVER_LOCAL_SQL                                                                                     \
	"(pg_catalog.inet_server_addr() IS NULL OR pg_catalog.inet_server_addr() <<= '127.0.0.0/8' OR "      \
	"pg_catalog.inet_server_addr() = '::1')"

/*
 * Session facts, (with RS_TRY_LOCK) one try of the advisory lock, the
 * history table, (RS_LEDGER) the ledger's unfinished executions and
 * (RS_CONTROL) whether flotilla's control schema is current: one round
 * trip. The lock is tried before the reads, so when it is had they are
 * made under it. *got (may be NULL without RS_TRY_LOCK) says whether it
 * was. Sets c's session facts; *h is new.
 */
static int read_state(ctx *c, unsigned what, bool *got, fl_history **h, bool *control_current, fl_error **err)
{
	*h = NULL;
	if (control_current)
		*control_current = false;
	char key[24];
	snprintf(key, sizeof(key), "%lld", c->key);
	const char *p0[2] = {c->schema, key};
	const char *p2[1] = {c->history};
	const char *p4[1] = {c->o->service};
	char *rows_sql = fl_history_rows_sql(c->schema, c->table);
	char *ctl_sql = fl_history_rows_sql(FL_CONTROL_SCHEMA, FL_HISTORY_DEFAULT_TABLE);
	fl_pg_batch_query q[5] = {
	    {what & RS_TRY_LOCK
	         ? "SELECT current_user, current_database(), EXISTS (SELECT 1 FROM pg_catalog.pg_namespace"
	           " WHERE nspname = $1), pg_catalog.pg_try_advisory_lock($2::bigint), " SERVER_LOCAL_SQL
	         : "SELECT current_user, current_database(), EXISTS (SELECT 1 FROM pg_catalog.pg_namespace"
	           " WHERE nspname = $1), NULL, " SERVER_LOCAL_SQL,
	     what & RS_TRY_LOCK ? 2 : 1, p0},
	    {rows_sql, 0, NULL},
	    {fl_history_progress_sql, 1, p2},
	    {ctl_sql, 0, NULL},
	    /* a run killed after its last migration leaves its row unfinished, and a next run with
	     * nothing to do would never take the lock that lets it mark the row abandoned */
	    {"SELECT EXISTS (SELECT 1 FROM " LEDGER_RUN
	     " WHERE finished IS NULL AND service IS NOT DISTINCT FROM $1)",
	     1, p4},
	};
	/* the ledger's and control schema's queries go only when asked for; keep their slots */
	fl_pg_batch_query send[5] = {
	    {NULL, 0, NULL}, {NULL, 0, NULL}, {NULL, 0, NULL}, {NULL, 0, NULL}, {NULL, 0, NULL}};
	int slot[5] = {-1, -1, -1, -1, -1};
	size_t n = 0;
	for (int i = 0; i < 5; i++) {
		if (((i == 2 || i == 4) && !(what & RS_LEDGER)) || (i == 3 && !(what & RS_CONTROL)) ||
		    (i == 2 && (what & RS_NO_PROGRESS)))
			continue;
		slot[i] = (int)n;
		send[n++] = q[i];
	}
	PGresult *res[5] = {NULL, NULL, NULL, NULL, NULL};
	char *rd = fl_asprintf("reading %s", c->history);
	int rc = fl_pg_batch(c->pg, send, n, res, rd, err);
	PGresult *r0 = res[0], *r1 = res[1], *r2 = slot[2] >= 0 ? res[slot[2]] : NULL,
	         *r3 = slot[3] >= 0 ? res[slot[3]] : NULL, *r4 = slot[4] >= 0 ? res[slot[4]] : NULL;
	if (rc != 0)
		goto out;
	rc = -1;
	if (!result_ok(r0) || PQntuples(r0) != 1) {
		*err = result_error(c->pg, r0, "reading the session");
		goto out;
	}
	set_facts(c, PQgetvalue(r0, 0, 0), PQgetvalue(r0, 0, 1));
	c->server_local = PQnfields(r0) > 4 && PQgetvalue(r0, 0, 4)[0] == 't';
	bool schema_exists = PQgetvalue(r0, 0, 2)[0] == 't';
	if (got)
		*got = (what & RS_TRY_LOCK) && PQgetvalue(r0, 0, 3)[0] == 't';
	if (!result_ok(r1) && !undefined_table(r1)) {
		*err = result_error(c->pg, r1, rd);
		goto out;
	}
	*h = fl_history_from_result(c->schema, c->table, schema_exists, result_ok(r1) ? r1 : NULL);
	if (r2 && result_ok(r2)) {
		fl_history_set_progress(*h, r2);
	} else if (r2 && !undefined_table(r2)) {
		*err = result_error(c->pg, r2, "reading flotilla's ledger");
		goto out;
	}
	/* no ledger yet (undefined table): nothing unfinished */
	c->unfinished_runs = r4 && result_ok(r4) && PQntuples(r4) == 1 && PQgetvalue(r4, 0, 0)[0] == 't';
	if (r3 && result_ok(r3) && control_current) {
		fl_error *e = NULL;
		fl_migration_set *set = control_set(&e);
		fl_history *ch =
		    fl_history_from_result(FL_CONTROL_SCHEMA, FL_HISTORY_DEFAULT_TABLE, true, r3);
		*control_current = set && control_is_current(set, ch, c->o->service);
		fl_history_free(ch);
		fl_migration_set_free(set);
		fl_error_free(e);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		PQclear(res[i]);
	free(rows_sql);
	free(ctl_sql);
	free(rd);
	if (rc != 0 && got && *got) {
		/* the lock was had but the reads failed: let it go (the caller never marks it held) */
		const char *pk[1] = {key};
		PGresult *u = PQexecParams(c->pg->conn, "SELECT pg_catalog.pg_advisory_unlock($1::bigint)", 1,
		                           NULL, pk, NULL, NULL, 0);
		PQclear(u);
		*got = false;
	}
	if (rc != 0) {
		fl_history_free(*h);
		*h = NULL;
	}
	return rc;
}

/* ---- commands ---- */

/* The plan of history *h and the files. */
static int plan_of(ctx *c, const fl_migration_set *set, const fl_history *h, fl_plan **plan, fl_error **err)
{
	fl_plan_opts po = {.service = c->o->service,
	                   .env = c->o->env,
	                   .display_dir = c->o->display_dir,
	                   .target = c->o->target,
	                   .out_of_order = c->o->out_of_order,
	                   .placeholders = c->ph,
	                   .nplaceholders = c->nph};
	*plan = fl_plan_new(h, set, &po, err);
	return *plan ? 0 : -1;
}

/* Reads history (and ledger) and plans, without the lock; creates nothing. */
static int load_plan(ctx *c, const fl_migration_set *set, fl_history **h, fl_plan **plan, fl_error **err)
{
	*plan = NULL;
	if (read_state(c, c->o->no_ledger ? 0 : RS_LEDGER, NULL, h, NULL, err) != 0)
		return -1;
	return plan_of(c, set, *h, plan, err);
}

/*
 * The start of a command that may change something: the lock (unless a
 * dry run), then, under it, session facts, history, ledger and the control
 * schema's state, all in the lock's round trip when the lock is free.
 */
static int start(ctx *c, bool ledger, fl_history **h, fl_error **err)
{
	unsigned what = (ledger && !c->o->no_ledger ? RS_LEDGER : 0) | (c->ledger ? RS_CONTROL : 0);
	if (c->o->dry_run)
		return read_state(c, what, NULL, h, NULL, err);
	long long t0 = now_ms();
	bool got = false;
	if (read_state(c, what | RS_TRY_LOCK, &got, h, &c->control_current, err) != 0)
		return -1;
	if (!got) {
		/* what was read is not ours to trust: read again once the lock is had */
		fl_history_free(*h);
		*h = NULL;
		if (lock_wait(c, t0, err) != 0)
			return -1;
		c->locked = true;
		if (read_state(c, what, NULL, h, &c->control_current, err) != 0)
			return -1;
	}
	c->locked = true;
	fl_apply_event ev = {.kind = FL_APPLY_EV_LOCKED, .ms = (long)(now_ms() - t0)};
	emit(c, &ev);
	return 0;
}

/* Flyway's `schemas` after the first: created when missing, owned by the role. */
static int create_more_schemas(ctx *c, fl_error **err)
{
	if (!c->o->nmore_schemas)
		return 0;
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "BEGIN;\n");
	if (c->o->role) {
		char *r = fl_pg_ident_plain(c->o->role);
		fl_buf_printf(&b, "SET LOCAL ROLE %s;\n", r);
		free(r);
	}
	for (size_t i = 0; i < c->o->nmore_schemas; i++) {
		char *q = fl_pg_ident_plain(c->o->more_schemas[i]);
		fl_buf_printf(&b, "CREATE SCHEMA IF NOT EXISTS %s;\n", q);
		free(q);
	}
	fl_buf_puts(&b, "COMMIT;\n");
	int rc = fl_pg_exec(c->pg, b.data, "creating the schemas", NULL, err);
	if (rc != 0)
		ensure_idle(c->pg);
	fl_buf_free(&b);
	return rc;
}

/*
 * Flyway's "Found non-empty schema(s) ... but no schema history table":
 * objects (not an extension's) in the schema or in one of `schemas`, and
 * no history table. Refused unless baseline_on_migrate, which adds the
 * BASELINE row to *h (written by begin_changes, so the plan sees it).
 */
static int adopt_check(ctx *c, fl_history *h, fl_error **err)
{
	if (h->exists)
		return 0;
	static const char *const q =
	    "SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY ($1::text[]) AND ("
	    " EXISTS (SELECT 1 FROM pg_catalog.pg_class o WHERE o.relnamespace = n.oid AND NOT EXISTS"
	    "  (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass"
	    "   AND d.objid = o.oid AND d.deptype = 'e'))"
	    " OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc o WHERE o.pronamespace = n.oid AND NOT EXISTS"
	    "  (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass"
	    "   AND d.objid = o.oid AND d.deptype = 'e'))"
	    " OR EXISTS (SELECT 1 FROM pg_catalog.pg_type o WHERE o.typnamespace = n.oid"
	    "  AND o.typtype IN ('e', 'd', 'r', 'm') AND NOT EXISTS"
	    "  (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::regclass"
	    "   AND d.objid = o.oid AND d.deptype = 'e'))) ORDER BY 1";
	fl_buf arr;
	fl_buf_init(&arr);
	fl_buf_putc(&arr, '{');
	for (size_t i = 0; i <= c->o->nmore_schemas; i++) {
		const char *sn = i == 0 ? c->schema : c->o->more_schemas[i - 1];
		fl_buf_puts(&arr, i ? ",\"" : "\"");
		for (const char *p = sn; *p; p++) {
			if (*p == '"' || *p == '\\')
				fl_buf_putc(&arr, '\\');
			fl_buf_putc(&arr, *p);
		}
		fl_buf_putc(&arr, '"');
	}
	fl_buf_putc(&arr, '}');
	const char *pv[1] = {arr.data};
	watch_n(c->pg, 1);
	PGresult *r = PQexecParams(c->pg->conn, q, 1, NULL, pv, NULL, NULL, 0);
	fl_pg_unwatch(c->pg);
	fl_buf_free(&arr);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*err = result_error(c->pg, r, "checking whether the schema is empty");
		PQclear(r);
		return -1;
	}
	int n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return 0;
	}
	fl_buf names;
	fl_buf_init(&names);
	for (int i = 0; i < n; i++)
		fl_buf_printf(&names, "%s\"%s\"", i ? ", " : "", PQgetvalue(r, i, 0));
	PQclear(r);
	if (!c->o->baseline_on_migrate) {
		const char *svc = c->o->service ? c->o->service : "SERVICE";
		*err = fl_error_kind_new(
		    FL_EDB,
		    "found non-empty schema%s %s but no schema history table %s; nothing was "
		    "run. Mark the version the database is at with 'flotilla baseline %s "
		    "--version V', or set baseline_on_migrate = true (and baseline_version) "
		    "for the service in the manifest",
		    n > 1 ? "s" : "", names.data, c->history, svc);
		fl_buf_free(&names);
		return -1;
	}
	fl_buf_free(&names);
	const char *v = c->o->baseline_version ? c->o->baseline_version : "1";
	h->rows = fl_realloc(h->rows, (h->n + 1) * sizeof(*h->rows));
	fl_history_row *w = &h->rows[h->n++];
	memset(w, 0, sizeof(*w));
	w->installed_rank = (int)h->n;
	w->version = fl_strdup(v);
	for (char *p = w->version; *p; p++)
		if (*p == '_')
			*p = '.';
	w->description = fl_strdup(FL_BASELINE_DESCRIPTION);
	w->type = fl_strdup("BASELINE");
	w->script = fl_strdup(FL_BASELINE_DESCRIPTION);
	w->installed_by = c->installed_by ? fl_strdup(c->installed_by) : NULL;
	w->installed_on = fl_strdup("(now)");
	w->success = true;
	c->adopt_baseline = true;
	return 0;
}

/*
 * Once the command is known to be valid and about to change something: the
 * control schema and run row, then the history table when absent (or, in a
 * dry run, its DDL).
 */
static int begin_changes(ctx *c, const fl_history *h, fl_error **err)
{
	if (c->o->dry_run) {
		if (!h->exists) {
			char *ddl =
			    fl_history_create_sql(c->schema, c->table, !h->schema_exists, c->installed_by);
			dry(c, "\n-- the schema history table does not exist yet\n%s", ddl);
			free(ddl);
		}
		for (size_t i = 0; i < c->o->nmore_schemas; i++) {
			char *q = fl_pg_ident_plain(c->o->more_schemas[i]);
			dry(c, "CREATE SCHEMA IF NOT EXISTS %s;\n", q);
			free(q);
		}
		if (c->adopt_baseline) {
			char *sql =
			    fl_history_insert_sql(c->pg, c->schema, c->table, &h->rows[h->n - 1], NULL);
			dry(c, "-- baseline_on_migrate: the schema holds objects but no history\n%s;\n", sql);
			free(sql);
		}
		return 0;
	}
	if (begin_run(c, err) != 0)
		return -1;
	if (!h->exists &&
	    fl_history_create(c->pg, c->schema, c->table, c->o->role, c->installed_by, NULL, err) != 0)
		return -1;
	if (create_more_schemas(c, err) != 0)
		return -1;
	if (c->adopt_baseline && fl_history_append(c->pg, c->schema, c->table, &h->rows[h->n - 1], err) != 0)
		return -1;
	return 0;
}

/* The end of every command: run row finished and unlock, in one round trip; error out. */
static int finish(ctx *c, fl_error *e, fl_error **err)
{
	if (PQstatus(c->pg->conn) == CONNECTION_OK && (c->run_id || c->locked)) {
		ensure_idle(c->pg);
		char key[24];
		snprintf(key, sizeof(key), "%lld", c->key);
		const char *pk[1] = {key};
		char *upd = c->run_id ? finish_run_sql(c, e) : NULL;
		fl_pg_batch_query q[2] = {{NULL, 0, NULL}, {NULL, 0, NULL}};
		size_t n = 0;
		if (upd)
			q[n++] = (fl_pg_batch_query){upd, 0, NULL};
		if (c->locked)
			q[n++] =
			    (fl_pg_batch_query){"SELECT pg_catalog.pg_advisory_unlock($1::bigint)", 1, pk};
		PGresult *res[2];
		fl_error *be = NULL;
		fl_pg_batch(c->pg, q, n, res, "finishing", &be);
		fl_error_free(be); /* the lock goes with the session anyway */
		for (size_t i = 0; i < n; i++)
			PQclear(res[i]);
		free(upd);
	}
	c->locked = false;
	if (e) {
		if (err)
			*err = e;
		else
			fl_error_free(e);
		return -1;
	}
	return 0;
}

int fl_apply_migrate(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                     fl_error **err)
{
	ctx c;
	ctx_init(&c, pg, o, "migrate", res);
	fl_error *e = NULL;
	fl_history *h = NULL;
	fl_plan *plan = NULL;
	prepared *pms = NULL;
	size_t npms = 0;
	if (o->dry_run && !o->sql_out) {
		e = fl_error_new("a dry run needs somewhere to write its SQL");
		goto done;
	}
	if (!o->dry_run) {
		/*
		 * The common case, nothing to do, is decided without the lock and
		 * writes nothing (no run row either: the ledger records commands
		 * that change something): one round trip. Anything else (work, a
		 * validation problem, a control schema to bring up to date, no
		 * history table yet) is decided again under the lock below.
		 */
		bool ctl = false;
		unsigned what = (o->no_ledger ? 0 : RS_LEDGER) | (c.ledger ? RS_CONTROL : 0) | RS_NO_PROGRESS;
		if (read_state(&c, what, NULL, &h, &ctl, &e) != 0 || plan_of(&c, set, h, &plan, &e) != 0)
			goto done;
		fl_error *v = NULL;
		bool cbs = has_callback(set, "beforeMigrate") || has_callback(set, "afterMigrate");
		if (h->exists && (ctl || !c.ledger) && plan->npending + plan->nrepeatables == 0 && !cbs &&
		    !c.unfinished_runs && !(v = fl_plan_validate(plan, false)) && !cancelled(&c)) {
			c.res->version_before =
			    plan->current_version ? fl_strdup(plan->current_version) : NULL;
			c.res->version_after =
			    plan->current_version ? fl_strdup(plan->current_version) : NULL;
			fl_apply_event pe = {.kind = FL_APPLY_EV_PLAN,
			                     .current_version = plan->current_version};
			emit(&c, &pe);
			fl_apply_event de = {.kind = FL_APPLY_EV_DONE,
			                     .version_before = c.res->version_before,
			                     .version_after = c.res->version_after};
			emit(&c, &de);
			goto done;
		}
		fl_error_free(v);
		fl_plan_free(plan);
		fl_history_free(h);
		plan = NULL;
		h = NULL;
		/* there is work: wait for a turn, before the lock is taken */
		int g = o->work_gate ? o->work_gate(o->gate_ctx, c.server_local) : 0;
		if (g < 0) {
			e = interrupted("before anything ran");
			goto done;
		}
		c.gated = g > 0;
	}
	if (start(&c, true, &h, &e) != 0 || adopt_check(&c, h, &e) != 0 ||
	    plan_of(&c, set, h, &plan, &e) != 0)
		goto done;
	c.res->version_before =
	    plan->current_version && !c.adopt_baseline ? fl_strdup(plan->current_version) : NULL;
	e = fl_plan_validate(plan, false);
	if (e)
		goto done; /* nothing touched: the kinds stay (EINPUT for files, EDRIFT for history) */
	size_t total = plan->npending + plan->nrepeatables;
	pms = fl_calloc(total ? total : 1, sizeof(*pms));
	for (size_t i = 0; i < total; i++) {
		fl_plan_item *it =
		    i < plan->npending ? plan->pending[i] : plan->repeatables[i - plan->npending];
		if (prepare(&c, it->mig, &pms[npms], &e) != 0) {
			prepared_free(&pms[npms]);
			continue;
		}
		prepared *pm = &pms[npms++];
		if (it->state == FL_ST_FAILED && it->row)
			pm->failed_rank = it->row->installed_rank;
		/* failed, or killed part way (then no history row says so: the ledger does) */
		if (it->resumable && pm->no_tx && (it->resume_at > 1 || it->in_flight))
			check_resume(&c, pm, it, &e);
	}
	if (e)
		goto done;
	if (cancelled(&c)) {
		e = interrupted("before anything ran");
		goto done;
	}
	if (o->dry_run)
		dry(&c, "-- flotilla migrate%s%s: %s, current version %s, %zu to run\n",
		    o->service ? " " : "", o->service ? o->service : "", c.history,
		    plan->current_version ? plan->current_version : "none", total);
	c.callbacks = set;
	if (run_event(&c, "beforeMigrate", &e) != 0)
		goto migrate_error;
	if (begin_changes(&c, h, &e) != 0)
		goto done;
	free(drop_notices(pg));
	fl_apply_event ev = {
	    .kind = FL_APPLY_EV_PLAN, .total = (int)total, .current_version = plan->current_version};
	emit(&c, &ev);
	int ran = run_all(&c, pms, npms, false, &e);
	/* also after a failure: what the migrations before it reached */
	char *after = plan->current_version ? fl_strdup(plan->current_version) : NULL;
	for (size_t i = 0; i < c.res->nitems; i++) {
		const char *v = c.res->items[i].version;
		if (v && (!after || fl_version_compare(v, after) > 0)) {
			free(after);
			after = fl_strdup(v);
		}
	}
	c.res->version_after = after;
	if (ran == 0 && !c.versioned_done)
		ran = run_event(&c, "afterVersioned", &e);
	if (ran != 0)
		goto migrate_error;
	if (run_event(&c, "afterMigrate", &e) != 0 ||
	    (c.res->applied > 0 && run_event(&c, "afterMigrateApplied", &e) != 0))
		goto migrate_error;
	fl_apply_event d = {.kind = FL_APPLY_EV_DONE,
	                    .applied = c.res->applied,
	                    .version_before = c.res->version_before,
	                    .version_after = c.res->version_after};
	emit(&c, &d);
	goto done;
migrate_error:
	if (e && e->kind != FL_EINTR && has_callback(set, "afterMigrateError")) {
		fl_error *ce = NULL; /* the failure is what the run reports; the callback's own adds to it */
		run_event(&c, "afterMigrateError", &ce);
		fl_error_append(&e, ce);
	}
done:
	for (size_t i = 0; i < npms; i++)
		prepared_free(&pms[i]);
	free(pms);
	fl_plan_free(plan);
	fl_history_free(h);
	int rc = finish(&c, e, err);
	if (c.gated)
		o->work_done(o->gate_ctx);
	ctx_free(&c);
	return rc;
}

int fl_apply_undo(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                  fl_error **err)
{
	ctx c;
	ctx_init(&c, pg, o, "undo", res);
	fl_error *e = NULL;
	fl_history *h = NULL, *h2 = NULL;
	fl_plan *plan = NULL, *plan2 = NULL;
	fl_undo_step *steps = NULL;
	prepared *pms = NULL;
	size_t nsteps = 0, npms = 0;
	if (o->dry_run && !o->sql_out) {
		e = fl_error_new("a dry run needs somewhere to write its SQL");
		goto done;
	}
	fl_apply_opts po = *o;
	po.target = NULL; /* the undo target is not a migrate target */
	c.o = &po;
	if (start(&c, true, &h, &e) != 0 || plan_of(&c, set, h, &plan, &e) != 0)
		goto done;
	c.res->version_before = plan->current_version ? fl_strdup(plan->current_version) : NULL;
	e = fl_plan_validate(plan, false);
	if (e)
		goto done;
	steps = fl_plan_undo(plan, set, o->target, &nsteps, &e);
	if (!steps)
		goto done;
	pms = fl_calloc(nsteps ? nsteps : 1, sizeof(*pms));
	for (size_t i = 0; i < nsteps; i++) {
		if (prepare(&c, steps[i].undo, &pms[npms], &e) != 0)
			prepared_free(&pms[npms]);
		else
			npms++;
	}
	if (e)
		goto done;
	if (cancelled(&c)) {
		e = interrupted("before anything ran");
		goto done;
	}
	if (begin_changes(&c, h, &e) != 0)
		goto done;
	fl_apply_event ev = {
	    .kind = FL_APPLY_EV_PLAN, .total = (int)npms, .current_version = plan->current_version};
	emit(&c, &ev);
	if (run_all(&c, pms, npms, true, &e) != 0)
		goto done;
	if (!o->dry_run) {
		if (load_plan(&c, set, &h2, &plan2, &e) != 0)
			goto done;
		c.res->version_after = plan2->current_version ? fl_strdup(plan2->current_version) : NULL;
	}
	fl_apply_event d = {.kind = FL_APPLY_EV_DONE,
	                    .applied = c.res->applied,
	                    .version_before = c.res->version_before,
	                    .version_after = c.res->version_after};
	emit(&c, &d);
done:
	for (size_t i = 0; i < npms; i++)
		prepared_free(&pms[i]);
	free(pms);
	free(steps);
	fl_plan_free(plan2);
	fl_history_free(h2);
	fl_plan_free(plan);
	fl_history_free(h);
	int rc = finish(&c, e, err);
	c.o = o;
	ctx_free(&c);
	return rc;
}

static bool valid_version(const char *v)
{
	bool digit = false;
	for (const char *p = v; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digit = true;
		else if ((*p == '.' || *p == '_') && digit)
			digit = false;
		else
			return false;
	}
	return digit;
}

int fl_apply_baseline(fl_pg *pg, const char *version, const char *description, const fl_apply_opts *o,
                      fl_apply_result *res, fl_error **err)
{
	ctx c;
	ctx_init(&c, pg, o, "baseline", res);
	fl_error *e = NULL;
	fl_history *h = NULL;
	char *v = fl_strdup(version ? version : "1");
	for (char *p = v; *p; p++)
		if (*p == '_')
			*p = '.';
	const char *desc = description ? description : FL_BASELINE_DESCRIPTION;
	if (!valid_version(v)) {
		e = fl_error_new("baseline version '%s' is not a version (like 1 or 2.1)", version);
		goto done;
	}
	if (o->dry_run && !o->sql_out) {
		e = fl_error_new("a dry run needs somewhere to write its SQL");
		goto done;
	}
	if (start(&c, false, &h, &e) != 0)
		goto done;
	for (size_t i = 0; i < h->n; i++) {
		const fl_history_row *w = &h->rows[i];
		if (strcmp(w->type, "SCHEMA") == 0)
			continue;
		if (strcmp(w->type, "BASELINE") == 0 && w->version &&
		    fl_version_compare(w->version, v) == 0 && h->n <= 2) {
			add_change(&c, fl_asprintf("%s is already baselined at version %s; nothing changed",
			                           c.history, w->version));
			goto done;
		}
		e = fl_error_new(
		    "cannot baseline %s at version %s: it already holds migrations (rank %d: %s %s "
		    "\"%s\"); baseline only a database that has none",
		    c.history, v, w->installed_rank, w->type, w->version ? w->version : "", w->description);
		goto done;
	}
	fl_history_row row = {.version = v,
	                      .description = (char *)desc,
	                      .type = "BASELINE",
	                      .script = (char *)desc,
	                      .installed_by = c.installed_by,
	                      .success = true};
	if (begin_changes(&c, h, &e) != 0)
		goto done;
	if (o->dry_run) {
		char *sql = fl_history_insert_sql(pg, c.schema, c.table, &row, NULL);
		dry(&c, "%s;\n", sql);
		free(sql);
		goto done;
	}
	if (fl_history_append(pg, c.schema, c.table, &row, &e) != 0)
		goto done;
	add_change(&c, fl_asprintf("baselined %s at version %s", c.history, v));
	c.res->version_after = fl_strdup(v);
done:
	fl_history_free(h);
	free(v);
	int rc = finish(&c, e, err);
	ctx_free(&c);
	return rc;
}

/*
 * A migration applied whose file is gone: Flyway 9+'s repair marks it
 * deleted with a DELETE row (same version, description, script and
 * checksum), so the history keeps what happened and validate passes.
 */
static void repair_deleted(ctx *c, fl_buf *sql, const fl_history_row *w)
{
	fl_history_row del = *w;
	del.type = "DELETE";
	del.installed_by = c->installed_by;
	del.execution_time = 0;
	del.success = true;
	char *ins = fl_history_insert_sql(c->pg, c->schema, c->table, &del, NULL);
	fl_buf_printf(sql, "%s;\n", ins);
	free(ins);
	if (w->version)
		add_change(c, fl_asprintf("marked migration %s (%s) as deleted: its file %s is gone",
		                          w->version, w->description, w->script));
	else
		add_change(c,
		           fl_asprintf("marked repeatable migration \"%s\" as deleted: its file %s is gone",
		                       w->description, w->script));
}

int fl_apply_repair(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                    fl_error **err)
{
	ctx c;
	ctx_init(&c, pg, o, "repair", res);
	fl_error *e = NULL;
	fl_history *h = NULL;
	fl_plan *plan = NULL;
	fl_buf sql;
	fl_buf_init(&sql);
	if (o->dry_run && !o->sql_out) {
		e = fl_error_new("a dry run needs somewhere to write its SQL");
		goto done;
	}
	fl_apply_opts po = *o;
	po.target = NULL;
	c.o = &po;
	if (start(&c, true, &h, &e) != 0 || plan_of(&c, set, h, &plan, &e) != 0)
		goto done;
	if (!h->exists)
		goto done;
	fl_buf_puts(&sql, "BEGIN;\n");
	for (size_t i = 0; i < plan->n; i++) {
		const fl_plan_item *it = &plan->items[i];
		const fl_history_row *w = it->row;
		if (!w)
			continue;
		const char *what = w->version ? "migration" : "repeatable migration";
		const char *name = w->version ? w->version : w->description;
		if (!w->success) {
			fl_buf_printf(&sql, "DELETE FROM %s WHERE \"installed_rank\" = %d;\n", c.history,
			              w->installed_rank);
			add_change(&c, fl_asprintf("removed the failed row of %s %s (%s, rank %d)", what,
			                           name, w->script, w->installed_rank));
			continue;
		}
		if (it->state == FL_ST_MISSING) {
			repair_deleted(&c, &sql, w);
			continue;
		}
		if (!it->mismatch)
			continue;
		char *desc = fl_history_abbreviate_description(it->mig->description);
		char *qdesc = fl_pg_literal(pg, desc);
		/* the type follows the file (SQL, or SQL_BASELINE for a B file); a BASELINE row has none */
		const char *type = it->mig->kind == FL_MIG_BASELINE ? "SQL_BASELINE" : "SQL";
		fl_buf_printf(&sql,
		              "UPDATE %s SET \"description\" = %s, \"type\" = '%s', \"checksum\" = %d"
		              " WHERE \"installed_rank\" = %d;\n",
		              c.history, qdesc, type, (int)it->mig->checksum, w->installed_rank);
		if (it->mismatch & FL_MISMATCH_CHECKSUM)
			add_change(&c, fl_asprintf("realigned the checksum of migration %s (%s): %d -> %d",
			                           w->version, it->mig->script, (int)w->checksum,
			                           (int)it->mig->checksum));
		if (it->mismatch & FL_MISMATCH_DESCRIPTION)
			add_change(&c, fl_asprintf(
			                   "realigned the description of migration %s (%s): \"%s\" -> \"%s\"",
			                   w->version, it->mig->script, w->description, desc));
		if (it->mismatch & FL_MISMATCH_TYPE)
			add_change(&c, fl_asprintf("realigned the type of migration %s (%s): %s -> %s",
			                           w->version, it->mig->script, w->type, type));
		free(desc);
		free(qdesc);
	}
	fl_buf_puts(&sql, "COMMIT;\n");
	if (!c.res->nchanges || begin_changes(&c, h, &e) != 0)
		goto done;
	if (o->dry_run) {
		dry(&c, "%s", sql.data);
		goto done;
	}
	if (fl_pg_exec(pg, sql.data, "repairing the schema history", &c.res->diag, &e) != 0)
		ensure_idle(pg);
done:
	fl_buf_free(&sql);
	fl_plan_free(plan);
	fl_history_free(h);
	int rc = finish(&c, e, err);
	c.o = o;
	ctx_free(&c);
	return rc;
}

int fl_apply_info(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_history **h,
                  fl_plan **plan, fl_error **err)
{
	ctx c;
	fl_apply_opts ro = *o;
	ro.dry_run = false;
	ctx_init(&c, pg, &ro, "status", NULL);
	c.ledger = false;
	fl_error *e = NULL;
	*h = NULL;
	*plan = NULL;
	int rc = -1;
	if (load_plan(&c, set, h, plan, &e) == 0)
		rc = 0;
	if (rc != 0) {
		fl_plan_free(*plan);
		fl_history_free(*h);
		*plan = NULL;
		*h = NULL;
		if (err)
			*err = e;
		else
			fl_error_free(e);
	}
	ctx_free(&c);
	return rc;
}

int fl_apply_control(fl_pg *pg, const fl_apply_opts *o, fl_error **err)
{
	fl_error *e = NULL;
	fl_migration_set *set = control_set(&e);
	if (!set) {
		*err = e;
		return -1;
	}
	/* when it is current, migrate's first read says so: one round trip, no lock */
	fl_apply_opts co = {.service = o->service,
	                    .display_dir = "flotilla/migrations",
	                    .schema = FL_CONTROL_SCHEMA,
	                    .installed_by = o->installed_by,
	                    .lock_timeout_ms = o->lock_timeout_ms,
	                    .lock_retries = o->lock_retries,
	                    .lock_retry_interval_ms = o->lock_retry_interval_ms,
	                    .migration_lock_timeout_ms = o->migration_lock_timeout_ms,
	                    .cancel = o->cancel,
	                    .no_ledger = true,
	                    .lock_poll_ms = o->lock_poll_ms};
	int rc = fl_apply_migrate(pg, set, &co, NULL, &e);
	if (rc != 0) {
		fl_error_prefix(e, "bringing flotilla's control schema \"%s\" up to date", FL_CONTROL_SCHEMA);
		*err = e;
	}
	fl_migration_set_free(set);
	return rc;
}

fl_error *fl_apply_check(const fl_migration_set *set, const fl_apply_opts *o, const char *user,
                         const char *database)
{
	ctx c;
	ctx_init(&c, NULL, o, "check", NULL);
	c.checking = true;
	set_facts(&c, user ? user : "", database ? database : "");
	fl_error *errs = NULL;
	for (size_t i = 0; set && i < set->n; i++) {
		prepared pm;
		(void)prepare(&c, &set->items[i], &pm, &errs); /* errors go to the chain */
		prepared_free(&pm);
	}
	for (size_t i = 0; set && i < set->ncallbacks; i++) { /* a bad callback, too, stops a run early */
		prepared pm;
		(void)prepare(&c, &set->callbacks[i], &pm, &errs);
		prepared_free(&pm);
	}
	ctx_free(&c);
	return errs;
}
