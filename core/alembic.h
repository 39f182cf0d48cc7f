/*
 * alembic: taking over a service that Alembic migrates.
 *
 * It owns three things:
 * - the revision chain of an Alembic script directory (the .py files of versions/), read
 *   by a small scanner of its own so that every problem has a file and a
 *   line, and checked before anything else happens: a revision id that is
 *   not the one the file name says, a down_revision that names no revision,
 *   two revisions with one id, a second base, a branch (two revisions
 *   revising one), a merge, a cycle. Branches and merges are refused with
 *   the order to choose; flotilla runs one line of migrations;
 * - the import: Alembic itself (Debian's /usr/bin/alembic, run through
 *   proc.c like every child, with no secret in its argv or environment)
 *   renders the whole chain offline (`upgrade base:head --sql`,
 *   `downgrade head:base --sql`); its output is cut at Alembic's
 *   "-- Running upgrade A -> B" lines, and the alembic_version bookkeeping
 *   and the BEGIN/COMMIT around it are left out (flotilla keeps its own
 *   history and runs each file in its own transaction). Each revision
 *   becomes V<n>__<slug>.sql (and U<n>__<slug>.sql from its downgrade),
 *   opening with a header that names the revision, its down_revision and
 *   its file. Nothing is written unless every check passes and every
 *   revision renders; a revision that cannot be rendered offline (it reads
 *   the database) is reported at the line of its file Python's traceback
 *   names;
 * - adopting a database Alembic has run (baseline from alembic_version)
 *   and keeping alembic_version current while both tools are in use, both
 *   through the headers of the imported files.
 *
 * The scanner reads only top-level lines (no indentation) of the forms
 * Alembic's templates write:
 *     revision = "ID"                  (or 'ID'; with an annotation:
 *     revision: str = "ID")
 *     down_revision = None | "ID" | ("A", "B") | ["A", "B"]
 *     down_revision: Union[str, None] = ...
 * each value a plain literal on its one line, an optional # comment after
 * it. Lines inside triple-quoted strings (the docstring) are skipped. Any
 * other form of these two assignments is an error at its line.
 *
 * The file name "says" a revision when it holds a 12-character lowercase
 * hexadecimal word (Alembic's ids), or, for all-digit ids ("0003_x.py"),
 * an all-digit first word; a name that holds the revision's own id as a
 * word is always fine, and names that say nothing (a custom file_template)
 * are not checked.
 */
#ifndef FL_ALEMBIC_H
#define FL_ALEMBIC_H

#include <stdbool.h>
#include <stddef.h>

#include "apply.h"
#include "error.h"
#include "migration.h"
#include "pg.h"

/* The Alembic program: Debian's, never the first python3 on PATH. */
#define FL_ALEMBIC_PROGRAM "/usr/bin/alembic"
/* The bound of each run of it (python starting, env.py, rendering the chain). */
#define FL_ALEMBIC_TIMEOUT_MS (120 * 1000)

typedef struct {
	char *id;
	char *down; /* NULL: the base */
	char *file; /* as people see it: "<dir>/versions/<name>.py" */
	char *slug; /* the file name without its id: "bootstrap_tables" */
	int rev_line, rev_col, down_line, down_col;
} fl_alembic_rev;

/* One line of revisions, base first. */
typedef struct {
	fl_alembic_rev *revs;
	size_t n;
} fl_alembic_chain;

/*
 * Reads and checks the .py files of <script_dir>/versions (display_dir names script_dir
 * in messages; NULL: script_dir). Returns 0 and the chain, or -1 with every
 * problem (FL_EINPUT, each at its file:line:col) in *err.
 */
int fl_alembic_chain_read(const char *script_dir, const char *display_dir, fl_alembic_chain **out,
                          fl_error **err);
void fl_alembic_chain_free(fl_alembic_chain *c);

typedef struct {
	const char *script_dir;  /* Alembic's script directory (env.py, versions/) */
	const char *display_dir; /* how to name it; NULL: script_dir */
	const char *config;      /* alembic.ini; Alembic runs in its folder */
	const char *out_dir;     /* the service's migrations folder (made when missing) */
	const char *out_display; /* NULL: out_dir */
	const char *program;     /* NULL: FL_ALEMBIC_PROGRAM (tests) */
	int timeout_ms;          /* <= 0: FL_ALEMBIC_TIMEOUT_MS */
} fl_alembic_import_opts;

typedef struct {
	size_t nrevs;
	char **written; /* file names written (new or changed: never, see below) */
	size_t nwritten;
	size_t nsame;   /* files already there with the same content */
	char **no_undo; /* revisions without a U file, each with why */
	size_t nno_undo;
} fl_alembic_import_result;

void fl_alembic_import_result_clear(fl_alembic_import_result *r);

/*
 * The import. A file already in out_dir with the same content is left;
 * one with other content, or any other V/U/R file there, stops the import
 * before anything is written (an import writes a folder of its own).
 * Returns 0, or -1 with *err (FL_EINPUT: nothing written).
 */
int fl_alembic_import(const fl_alembic_import_opts *o, fl_alembic_import_result *res, fl_error **err);

/* What the header of an imported file says. */
typedef struct {
	bool upgrade; /* a V file (else a U file) */
	char *id;     /* the revision */
	char *down;   /* its down_revision; NULL: the base */
	char *file;   /* the .py it came from */
} fl_alembic_header;

/* Reads the header of an imported file: 1 when there is one (clear h after), 0 when not. */
int fl_alembic_header_read(const char *data, size_t len, fl_alembic_header *h);
void fl_alembic_header_clear(fl_alembic_header *h);

/*
 * keep_alembic_version: the statements that leave alembic_version saying
 * what the migration m did (its revision after a V file, the down_revision
 * after a U file, empty after undoing the base), made when missing, in
 * `schema` (NULL: public). They run in m's transaction. Returns how many (0: m was not imported; at most
 * 3), each a new string in out.
 */
size_t fl_alembic_version_sql(const fl_migration *m, const char *schema, char *out[3]);

/*
 * baseline --from-alembic: reads <schema>.alembic_version, finds the
 * imported V file of that revision in set, and records the baseline at its
 * version (fl_apply_baseline), so the next migrate applies only the files
 * after it. Refused (FL_EINPUT: no table, no row, several rows (a database
 * at a branch point), a revision no imported file names) with nothing
 * changed.
 */
int fl_alembic_baseline(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                        fl_error **err);

#endif
