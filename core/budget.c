#include "budget.h"

#include <libpq-fe.h>
#include <stdlib.h>

int fl_budget_from_server(fl_pg *pg, int *out, fl_error **err)
{
	/* max_connections counts client backends only: background workers, autovacuum
	 * and walsenders have slots of their own */
	char *v = fl_pg_value(
	    pg,
	    "SELECT current_setting('max_connections')::int"
	    " - current_setting('superuser_reserved_connections')::int"
	    " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int",
	    0, NULL, err);
	if (!v)
		return -1;
	int n = atoi(v) - FL_BUDGET_MARGIN;
	free(v);
	*out = n < 1 ? 1 : n;
	return 0;
}

int fl_budget_threads(int jobs, size_t njobs, int budget)
{
	size_t t = jobs > 0 ? (size_t)jobs : njobs < 8 ? njobs : 8;
	if (t > njobs)
		t = njobs;
	if (budget > 0 && t > (size_t)budget)
		t = (size_t)budget;
	return t < 1 ? 1 : (int)t;
}
