/*
 * control_sql: flotilla's own control schema (the SQL files of migrations/), embedded at
 * build time by ci/embed-sql, in file-name order.
 */
#ifndef FL_CONTROL_SQL_H
#define FL_CONTROL_SQL_H

#include <stddef.h>

struct fl_control_sql {
	const char *name; /* e.g. "V1__ledger.sql" */
	const char *sql;
};

extern const struct fl_control_sql fl_control_sql[];
extern const size_t fl_control_sql_count;

#endif
