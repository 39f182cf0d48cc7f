/* The test server harness itself: one server, a fresh database per test. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(harness, fresh_database_per_test)
{
	char *a = th_db_new(), *b = th_db_new();
	cr_assert_str_neq(a, b);
	PGconn *c = th_connect(a);
	th_exec(c, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)");
	char *n = th_query1(c, "SELECT count(*) FROM t");
	cr_assert_str_eq(n, "2");
	free(n);
	PQfinish(c);
	c = th_connect(b);
	n = th_query1(c, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
	cr_assert_str_eq(n, "0", "a new database must be empty");
	free(n);
	PQfinish(c);
	th_db_drop(a);
	th_db_drop(b);
	c = th_connect("postgres");
	char sql[200];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname IN ('%s', '%s')", a, b);
	n = th_query1(c, sql);
	cr_assert_str_eq(n, "0");
	free(n);
	PQfinish(c);
	free(a);
	free(b);
}

Test(harness, server_is_throwaway_on_a_socket)
{
	PGconn *c = th_connect("postgres");
	char *listen = th_query1(c, "SHOW listen_addresses");
	cr_assert_str_eq(listen, "", "the test server must not listen on TCP");
	char *dir = th_query1(c, "SHOW unix_socket_directories");
	const char *tmp = getenv("FLOTILLA_TEST_TMP");
	cr_assert(tmp && strncmp(dir, tmp, strlen(tmp)) == 0, "socket %s is not in %s", dir, tmp);
	free(listen);
	free(dir);
	PQfinish(c);
}

/* ci/pg on its own: start, status, stop, destroy in a directory of its own. */
Test(harness, ci_pg_lifecycle, .timeout = 120)
{
	char *dir = th_tmpdir();
	char cmd[2048], *out;
	snprintf(cmd, sizeof(cmd), "cd '%s' && FLOTILLA_PG_PORT=5499 sh ci/pg start '%s/pg'", th_top(), dir);
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sh ci/pg status '%s/pg'", th_top(), dir);
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	cr_assert(th_contains(out, "running"), "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "psql -X -At -h '%s/pg' -p 5499 -U postgres -d postgres -c 'SELECT 40+2'",
	         dir);
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	cr_assert_str_eq(out, "42\n");
	free(out);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sh ci/pg destroy '%s/pg' && test ! -e '%s/pg'", th_top(), dir,
	         dir);
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "cd '%s' && sh ci/pg status '%s/pg'", th_top(), dir);
	cr_assert_eq(th_sh(cmd, &out), 3, "%s", out);
	free(out);
	free(dir);
}
