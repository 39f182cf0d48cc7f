/*
 * indexes: the INVALID indexes of a service's schema, each traced to the
 * migration that creates it.
 *
 * A CREATE INDEX CONCURRENTLY (or REINDEX CONCURRENTLY) that was cancelled,
 * timed out, lost its connection or was killed leaves its index behind with
 * pg_index.indisvalid = false: it is kept up to date on every write and
 * never used by a query. validate reports each one as a problem, naming the
 * index, its table and the migration file whose CREATE INDEX names it (found
 * by reading the service's own files, not the history), or saying that no
 * migration creates it.
 */
#ifndef FL_INDEXES_H
#define FL_INDEXES_H

#include "error.h"
#include "migration.h"
#include "pg.h"

/*
 * Appends one FL_EDRIFT problem per INVALID index in `schema` to *found
 * (at the migration's file:line:col when one creates it). Returns the number
 * of INVALID indexes, or -1 with *err when the catalog could not be read.
 */
int fl_indexes_invalid(fl_pg *pg, const char *schema, const fl_migration_set *set, fl_error **found,
                       fl_error **err);

/*
 * The migration of `set` (versioned or repeatable, not undo) whose CREATE
 * INDEX statement names `index` (unquoted, without its schema), and that
 * statement's line and column; NULL when none does. The last one in the
 * set's order wins (a later file may build it again).
 */
const fl_migration *fl_indexes_creator(const fl_migration_set *set, const char *index, int *line, int *col);

#endif
