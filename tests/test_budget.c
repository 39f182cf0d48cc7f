/* The connection budget (budget.h): what the server allows, and the threads a phase gets. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "budget.h"
#include "harness.h"

Test(budget, threads_never_past_the_jobs_or_the_budget)
{
	cr_assert_eq(fl_budget_threads(0, 3, 0), 3);        /* one per job */
	cr_assert_eq(fl_budget_threads(0, 200, 0), 8);      /* the default stays at most 8 */
	cr_assert_eq(fl_budget_threads(50, 200, 0), 50);    /* -j past 8 */
	cr_assert_eq(fl_budget_threads(50, 200, 7), 7);     /* ... within the budget */
	cr_assert_eq(fl_budget_threads(0, 200, 5), 5);      /* the default too */
	cr_assert_eq(fl_budget_threads(1000, 12, 150), 12); /* never more than the jobs */
	cr_assert_eq(fl_budget_threads(4, 0, 0), 1);
}

static int in_use(PGconn *c)
{
	char *v = th_query1(c, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'");
	int n = atoi(v);
	free(v);
	return n;
}

/* The test server: max_connections = 200, superuser_reserved_connections = 3 (ci/pg). */
Test(budget, from_the_server_minus_what_is_in_use_reserved_and_the_margin)
{
	PGconn *c = th_connect("postgres");
	char *max = th_query1(c, "SHOW max_connections"),
	     *rsv = th_query1(c, "SHOW superuser_reserved_connections");
	cr_assert_str_eq(max, "200");
	cr_assert_str_eq(rsv, "3");
	int before = in_use(c);
	fl_pg_params p = {.dbname = "postgres"};
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&p, &err);
	cr_assert_not_null(pg, "%s", err ? err->msg : "");
	int budget = 0;
	cr_assert_eq(fl_budget_from_server(pg, &budget, &err), 0, "%s", err ? err->msg : "");
	int after = in_use(c); /* counts flotilla's own connection, as the budget did */
	fl_pg_close(pg);
	/* other tests connect and leave meanwhile: the budget lies between the two counts */
	int lo = 200 - 3 - FL_BUDGET_MARGIN - (after > before + 1 ? after : before + 1);
	int hi = 200 - 3 - FL_BUDGET_MARGIN - (after < before + 1 ? after : before + 1);
	cr_assert(budget >= lo - 2 && budget <= hi + 2, "budget %d, in use before %d, after %d", budget,
	          before, after);
	cr_assert(budget < 200 - 3 - FL_BUDGET_MARGIN, "budget %d", budget);
	free(max);
	free(rsv);
	PQfinish(c);
}
