/* Reaching the server through a proxy that misbehaves (tests/faultproxy.h):
 * every wait ends within its documented bound with a clear message; a server
 * that comes up late is waited for; cancels never block past their bound. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faultproxy.h"
#include "harness.h"
#include "pg.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static fp_proxy proxy_for(fp_mode mode, long arg)
{
	fp_proxy p;
	char *sock = fp_server_socket();
	fp_start(&p, sock, mode, arg);
	free(sock);
	return p;
}

static fl_pg_params via(const fp_proxy *p)
{
	fl_pg_params q = {0};
	q.host = "127.0.0.1";
	q.port = p->port_s;
	q.dbname = "postgres";
	q.user = "postgres";
	q.sslmode = "disable";
	return q;
}

static fl_pg *connect_ok(const fl_pg_params *q)
{
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(q, &err);
	cr_assert_not_null(pg, "connect failed: %s", err ? err->msg : "?");
	return pg;
}

Test(net, pass_through_works_and_sets_keepalives, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	fl_error *err = NULL;
	char *v = fl_pg_value(pg, "SELECT 40 + 2", 0, NULL, &err);
	cr_assert_str_eq(v, "42");
	free(v);
	/* the defaults are in the connection's options */
	PQconninfoOption *o = PQconninfo(pg->conn);
	int seen = 0;
	for (PQconninfoOption *i = o; i->keyword; i++) {
		if (strcmp(i->keyword, "keepalives") == 0 && i->val && strcmp(i->val, "1") == 0)
			seen++;
		if (strcmp(i->keyword, "tcp_user_timeout") == 0 && i->val && atoi(i->val) > 0)
			seen++;
		if (strcmp(i->keyword, "connect_timeout") == 0 && i->val && strcmp(i->val, "10") == 0)
			seen++;
	}
	PQconninfoFree(o);
	cr_assert_eq(seen, 3, "keepalives, tcp_user_timeout and connect_timeout 10 are set by default");
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, two_ms_per_chunk_works, .timeout = 120)
{
	fp_proxy p = proxy_for(FP_DELAY, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	fl_error *err = NULL;
	PGresult *r = fl_pg_query(pg, "SELECT repeat('x', 100) FROM generate_series(1, 5000)", 0, NULL, NULL,
	                          NULL, &err);
	cr_assert_not_null(r, "%s", err ? err->msg : "?");
	cr_assert_eq(PQntuples(r), 5000);
	PQclear(r);
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, stall_before_the_first_byte_fails_within_connect_timeout, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_STALL, 0);
	fl_pg_params q = via(&p);
	q.connect_timeout = 2;
	fl_error *err = NULL;
	double t0 = now_s();
	fl_pg *pg = fl_pg_connect(&q, &err);
	double took = now_s() - t0;
	cr_assert_null(pg);
	cr_assert_eq(err->kind, FL_EDB);
	cr_assert(th_contains(err->msg, "on 127.0.0.1:"), "%s", err->msg);
	cr_assert(th_contains(err->msg, "no answer within 2 s (connect_timeout)"), "%s", err->msg);
	/* the documented bound is the timeout; a little slack for a busy machine */
	cr_log_info("stalled connect, connect_timeout 2 s: failed after %.2f s", took);
	cr_assert(took >= 1.9 && took < 6, "took %.2f s", took);
	fl_error_free(err);
	fp_stop(&p);
}

Test(net, stall_uses_the_default_connect_timeout, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_STALL, 0);
	fl_pg_params q = via(&p);
	/* PGCONNECT_TIMEOUT is the default when the manifest says nothing */
	setenv("PGCONNECT_TIMEOUT", "3", 1);
	fl_error *err = NULL;
	double t0 = now_s();
	fl_pg *pg = fl_pg_connect(&q, &err);
	double took = now_s() - t0;
	unsetenv("PGCONNECT_TIMEOUT");
	cr_assert_null(pg);
	cr_assert(th_contains(err->msg, "no answer within 3 s"), "%s", err->msg);
	cr_assert(took >= 2.9 && took < 8, "took %.2f s", took);
	fl_error_free(err);
	fp_stop(&p);
}

Test(net, freeze_mid_result_fails_the_query_within_its_bound, .timeout = 60)
{
	/* the startup exchange is well under 64 KiB; the result is 200 KiB */
	fp_proxy p = proxy_for(FP_FREEZE_AFTER, 65536);
	fl_pg_params q = via(&p);
	q.query_timeout_ms = 1500;
	fl_pg *pg = connect_ok(&q);
	fl_error *err = NULL;
	fl_pg_diag d = {0};
	double t0 = now_s();
	PGresult *r = fl_pg_query(pg, "SELECT repeat('y', 200) FROM generate_series(1, 1000)", 0, NULL,
	                          "reading", &d, &err);
	double took = now_s() - t0;
	cr_assert_null(r);
	cr_assert_str_eq(
	    err->msg, "reading: no answer from the server within 1500 ms (flotilla's bound on one statement: "
	              "statement_timeout + 60 s, or 1 h without one); the connection was closed, nothing "
	              "after this point ran");
	cr_assert_str_eq(d.sqlstate, "");
	cr_log_info("frozen mid-result, bound 1500 ms: failed after %.2f s", took);
	cr_assert(took >= 1.4 && took < 6, "took %.2f s", took);
	fl_error_free(err);
	fl_pg_diag_clear(&d);
	/* the connection is done for: the next call fails at once, not after another bound */
	t0 = now_s();
	cr_assert_eq(fl_pg_exec(pg, "SELECT 1", NULL, NULL, &err), -1);
	cr_assert(now_s() - t0 < 1.0);
	fl_error_free(err);
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, freeze_on_command_fails_exec_within_its_bound, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	q.query_timeout_ms = 1000;
	fl_pg *pg = connect_ok(&q);
	fl_error *err = NULL;
	cr_assert_eq(fl_pg_exec(pg, "SELECT 1", NULL, NULL, &err), 0);
	fp_freeze(&p);
	usleep(300 * 1000);
	double t0 = now_s();
	cr_assert_eq(fl_pg_exec(pg, "CREATE TABLE never_seen (a int)", NULL, NULL, &err), -1);
	double took = now_s() - t0;
	cr_assert(th_contains(err->msg, "no answer from the server within 1 s"), "%s", err->msg);
	cr_assert(took >= 0.9 && took < 5, "took %.2f s", took);
	fl_error_free(err);
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, cut_connections_fail_cleanly, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	fp_cut(&p);
	usleep(300 * 1000);
	fl_error *err = NULL;
	double t0 = now_s();
	cr_assert_eq(fl_pg_exec(pg, "SELECT 1", "checking", NULL, &err), -1);
	cr_assert(now_s() - t0 < 5);
	cr_assert(th_contains(err->msg, "checking: server closed the connection unexpectedly"), "%s",
	          err->msg);
	fl_error_free(err);
	fl_pg_close(pg);
	fp_stop(&p);

	/* a proxy that closes every new connection: the connect fails, it does not hang */
	p = proxy_for(FP_CUT, 0);
	q = via(&p);
	q.connect_timeout = 5;
	t0 = now_s();
	cr_assert_null(fl_pg_connect(&q, &err));
	cr_assert(now_s() - t0 < 4);
	cr_assert(th_contains(err->msg, "cannot connect to database \"postgres\" on 127.0.0.1:"), "%s",
	          err->msg);
	cr_assert(th_contains(err->msg, "server closed the connection unexpectedly"), "%s", err->msg);
	fl_error_free(err);
	fp_stop(&p);
}

Test(net, cancel_through_a_working_path_cancels, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	cr_assert_eq(PQsendQuery(pg->conn, "SELECT pg_sleep(30)"), 1);
	usleep(200 * 1000);
	fl_error *err = NULL;
	cr_assert_eq(fl_pg_cancel_bounded(PQgetCancel(pg->conn), 5000, &err), 0, "%s", err ? err->msg : "");
	PGresult *r = fl_pg_wait_result(pg, &err);
	cr_assert_null(err);
	cr_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "57014");
	PQclear(r);
	while ((r = PQgetResult(pg->conn)))
		PQclear(r);
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, cancel_through_a_frozen_path_gives_up_at_its_bound, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	cr_assert_eq(PQsendQuery(pg->conn, "SELECT pg_sleep(20)"), 1);
	fp_freeze(&p);
	usleep(200 * 1000);
	fl_error *err = NULL;
	double t0 = now_s();
	cr_assert_eq(fl_pg_cancel_bounded(PQgetCancel(pg->conn), 700, &err), -1);
	double took = now_s() - t0;
	cr_log_info("cancel through a frozen path, bound 700 ms: gave up after %.2f s", took);
	cr_assert(took >= 0.6 && took < 3, "took %.2f s", took);
	cr_assert_str_eq(
	    err->msg,
	    "the cancel request got no answer within 700 ms (the path to the server may be frozen)");
	fl_error_free(err);
	/* severing from another thread ends the owner's wait at once */
	fl_pg_sever(pg);
	fl_pg_sever(pg);
	fl_pg_set_query_timeout(pg, 30000);
	t0 = now_s();
	PGresult *r = fl_pg_wait_result(pg, &err);
	cr_assert(now_s() - t0 < 3);
	PQclear(r);
	fl_error_free(err);
	fl_pg_close(pg);
	fp_stop(&p);
}

Test(net, query_timeout_follows_statement_timeout, .timeout = 10)
{
	cr_assert_eq(fl_pg_query_timeout_for(0, 10000), FL_PG_DEFAULT_QUERY_TIMEOUT_MS);
	cr_assert_eq(fl_pg_query_timeout_for(30000, 10000), 90000);
	cr_assert_eq(fl_pg_query_timeout_for(2147483000, 0), 2147483647);
}

/* ---- retries ---- */

typedef struct {
	int calls, last_attempt, last_max;
	char why[512];
} attempts;

static void count_attempt(void *ctx, int attempt, int max, const fl_error *why)
{
	attempts *a = ctx;
	a->calls++;
	a->last_attempt = attempt;
	a->last_max = max;
	snprintf(a->why, sizeof(a->why), "%s", why->msg);
}

static int sh_quiet(const char *fmt, const char *arg)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), fmt, arg, arg);
	char *out = NULL;
	int st = th_sh(cmd, &out);
	free(out);
	return st;
}

Test(net, a_server_that_starts_5_s_late_is_waited_for, .timeout = 180)
{
	char *dir = th_tmpdir();
	char pgdir[600];
	snprintf(pgdir, sizeof(pgdir), "%s/late", dir);
	/* the cluster made (and stopped) first, so only the start is late */
	cr_assert_eq(sh_quiet("cd \"$FLOTILLA_TOP\" && sh ci/pg start %s && sh ci/pg stop %s", pgdir), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd),
		         "sleep 5; cd \"$FLOTILLA_TOP\" && exec sh ci/pg start %s >/dev/null 2>&1", pgdir);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	fl_pg_params q = {0};
	q.host = pgdir;
	q.dbname = "postgres";
	q.user = "postgres";
	attempts a = {0};
	fl_error *err = NULL;
	double t0 = now_s();
	fl_pg *pg = fl_pg_connect_retry(&q, 8, 2, count_attempt, &a, NULL, &err);
	double took = now_s() - t0;
	int st;
	waitpid(pid, &st, 0);
	cr_assert_not_null(pg, "%s", err ? err->msg : "?");
	cr_assert(a.calls >= 2, "calls %d", a.calls);
	cr_assert_eq(a.last_max, 9);
	cr_assert_eq(a.last_attempt, a.calls + 1);
	cr_assert(th_contains(a.why, "cannot connect to database \"postgres\""), "%s", a.why);
	cr_log_info("server started 5 s late: connected after %.2f s and %d retries", took, a.calls);
	cr_assert(took >= 4.5, "took %.2f s", took);
	fl_pg_close(pg);
	sh_quiet("cd \"$FLOTILLA_TOP\" && sh ci/pg destroy %s", pgdir);
	free(dir);
}

Test(net, a_refusal_is_not_retried, .timeout = 60)
{
	fl_pg_params q = {0};
	q.dbname = "no_such_database_here";
	attempts a = {0};
	fl_error *err = NULL;
	cr_assert_null(fl_pg_connect_retry(&q, 5, 1, count_attempt, &a, NULL, &err));
	cr_assert_eq(a.calls, 0);
	cr_assert(th_contains(err->msg, "database \"no_such_database_here\" does not exist"), "%s", err->msg);
	cr_assert_not(th_contains(err->msg, "gave up"), "%s", err->msg);
	fl_error_free(err);
}

static atomic_int flag;

static void *set_flag_soon(void *arg)
{
	(void)arg;
	usleep(400 * 1000);
	atomic_store(&flag, 1);
	return NULL;
}

Test(net, the_retry_loop_ends_promptly_when_cancelled, .timeout = 60)
{
	char *dir = th_tmpdir(); /* no server here: every attempt fails and is retried */
	fl_pg_params q = {0};
	q.host = dir;
	q.dbname = "postgres";
	attempts a = {0};
	fl_error *err = NULL;
	atomic_store(&flag, 0);
	pthread_t t;
	pthread_create(&t, NULL, set_flag_soon, NULL);
	double t0 = now_s();
	cr_assert_null(fl_pg_connect_retry(&q, 100, 30, count_attempt, &a, &flag, &err));
	double took = now_s() - t0;
	pthread_join(t, NULL);
	cr_assert(took < 2.5, "took %.2f s", took);
	cr_assert(th_contains(err->msg, "cancelled while waiting for the server (attempt 2 of 101)"), "%s",
	          err->msg);
	fl_error_free(err);
	free(dir);
}

Test(net, a_cancel_flag_ends_a_stalled_connect, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_STALL, 0);
	fl_pg_params q = via(&p);
	q.connect_timeout = 30;
	atomic_store(&flag, 0);
	q.cancel = &flag;
	pthread_t t;
	pthread_create(&t, NULL, set_flag_soon, NULL);
	fl_error *err = NULL;
	double t0 = now_s();
	cr_assert_null(fl_pg_connect(&q, &err));
	double took = now_s() - t0;
	pthread_join(t, NULL);
	cr_assert(took < 2.5, "took %.2f s", took);
	cr_assert(th_contains(err->msg, "cancelled while connecting"), "%s", err->msg);
	fl_error_free(err);
	fp_stop(&p);
}

Test(net, the_watchdog_bounds_raw_libpq_calls, .timeout = 60)
{
	fp_proxy p = proxy_for(FP_PASS, 0);
	fl_pg_params q = via(&p);
	fl_pg *pg = connect_ok(&q);
	/* a watch that is taken back in time never fires */
	fl_pg_watch(pg, 300);
	fl_pg_unwatch(pg);
	usleep(600 * 1000);
	PGresult *r = PQexec(pg->conn, "SELECT 1");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	cr_assert_eq(fl_pg_watch_fired(pg), 0);
	/* a blocking PQexec on a frozen path returns once the watch expires */
	fp_freeze(&p);
	usleep(200 * 1000);
	fl_pg_watch(pg, 1000);
	double t0 = now_s();
	r = PQexec(pg->conn, "SELECT 2");
	double took = now_s() - t0;
	cr_assert(PQresultStatus(r) != PGRES_TUPLES_OK);
	PQclear(r);
	cr_log_info("raw PQexec on a frozen path, watch 1 s: returned after %.2f s", took);
	cr_assert(took >= 0.9 && took < 5, "took %.2f s", took);
	cr_assert_eq(fl_pg_watch_fired(pg), 1000);
	fl_error *e = fl_pg_watch_error(pg);
	cr_assert(th_contains(e->msg, "no answer from the server within 1 s"), "%s", e->msg);
	fl_error_free(e);
	fl_pg_close(pg);
	fp_stop(&p);
}
