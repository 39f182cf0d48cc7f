/*
 * budget: how many connections one run may hold open at once.
 *
 * A run opens one connection per service it works on at a time (phase 4),
 * one per database it provisions at a time (phase 3), and the admin's. The
 * budget caps both phases' threads, so -j past 8 (and provisioning hundreds
 * of databases) never takes more connections than the server can give:
 * without a setting it is the server's max_connections, minus the client
 * connections in use, minus superuser_reserved_connections, minus
 * FL_BUDGET_MARGIN (left for the admin's own connection and other clients),
 * read once with one query on the admin's connection.
 */
#ifndef FL_BUDGET_H
#define FL_BUDGET_H
#include <stddef.h>
#include "error.h"
#include "pg.h"

/* connections left to others when the budget is read from the server */
#define FL_BUDGET_MARGIN 3
/* -j and [settings] jobs: the most threads a phase runs */
#define FL_BUDGET_MAX_JOBS 1000

/* The server's budget (see above), at least 1, into *out; -1 with *err when the query fails. */
int fl_budget_from_server(fl_pg *pg, int *out, fl_error **err);
/*
 * Threads for a phase of njobs jobs: `jobs` asked for (<= 0: one per job, at
 * most 8), never more than njobs, nor than `budget` (<= 0: no budget known).
 */
int fl_budget_threads(int jobs, size_t njobs, int budget);
#endif
