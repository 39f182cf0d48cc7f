/*
 * lint: migration files -> findings, each a rule, a place (file:line:col),
 * a message and a hint with the safe form, judged the way production will
 * feel them.
 *
 * Files are parsed by PostgreSQL's own parser (libpg_query), never matched
 * with patterns: a file the server would refuse is one finding with the
 * server's message and cursor, and every other finding sits at the place the
 * parse tree gives (a column, a type, a constraint) or else at the start of
 * its statement. Placeholders are replaced first, as migrate does, and every
 * place is mapped back to the raw file.
 *
 * It knows what a generic linter cannot: whether flotilla will run the file
 * in one transaction or statement by statement (the same decision migrate
 * makes), the lock_timeout flotilla sets, the server version judged for, and
 * which services and roles read the database (a drop or rename there names
 * them). Rules' levels come from the rule table, then the manifest's
 * [lint.rules]; `-- flotilla:lint-ignore RULE reason` (before a statement, or
 * on the line where it ends) and `-- flotilla:lint-ignore-file RULE reason`
 * silence a rule, and an unknown, unreasoned or unused one is a finding of
 * its own.
 *
 * Nothing here touches a database, the disk or a terminal: files arrive as
 * migrations, findings leave as values, and text is made, not printed.
 * fl_lint_run may use several threads; its output does not depend on them.
 */
#ifndef FL_LINT_H
#define FL_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "manifest.h"
#include "migration.h"

/* The server versions a verdict can be asked for, and the default one. */
#define FL_LINT_MIN_PG_VERSION     9
#define FL_LINT_MAX_PG_VERSION     18
#define FL_LINT_DEFAULT_PG_VERSION 15

typedef enum { FL_LINT_OFF = 0, FL_LINT_WARNING = 1, FL_LINT_ERROR = 2 } fl_lint_level;

typedef struct {
	const char *name;    /* "create-index-concurrently" */
	fl_lint_level level; /* unless the manifest says otherwise */
	const char *summary; /* one line: what it flags */
} fl_lint_rule;

/* Every rule, in the order of docs/lint.md. */
const fl_lint_rule *fl_lint_rules(size_t *n);
const fl_lint_rule *fl_lint_rule_find(const char *name);
/* The rules' names, for suggestions ("did you mean ..."). */
const char *const *fl_lint_rule_names(size_t *n);
/* "error", "warning", "off". */
const char *fl_lint_level_name(fl_lint_level l);

typedef struct {
	const fl_lint_rule *rule;
	fl_lint_level level; /* never OFF */
	const char *service; /* borrowed from the target */
	char *file;          /* the migration's path */
	int line, col;       /* 1-based, column in characters, in the raw file */
	char *message;
	char *hint; /* the safe form; NULL when there is nothing better to say */
} fl_lint_finding;

/* What lint needs to know about the service whose files it judges. */
typedef struct {
	char *service;
	char *database; /* for messages: "user_db" (an unexpanded ${env} left out) */
	char **readers; /* services and roles that read this database, by name */
	size_t nreaders;
	fl_placeholder *ph; /* the standard placeholders (history.h), strings borrowed from the manifest */
	size_t nph;
	int pg_version;
	int lock_timeout_ms;          /* what flotilla sets (manifest [settings]); 0: none */
	fl_lint_level levels[64];     /* per rule, in fl_lint_rules order */
	const char *from_version[64]; /* per rule: judge only versions from this one on (NULL: all) */
	/* the service's other migrations (borrowed; may be none): what a file relies on from an
	 * earlier one, such as a NOT VALID CHECK (col IS NOT NULL) it validates before SET NOT NULL */
	const fl_migration *const *context;
	size_t ncontext;
} fl_lint_target;

/*
 * The target of one service of a loaded manifest, judged for pg_version
 * (0: the manifest's [lint] pg_version, else FL_LINT_DEFAULT_PG_VERSION).
 * The target borrows from the manifest; clear it before freeing that.
 */
void fl_lint_target_init(fl_lint_target *t, const fl_manifest *m, const fl_service *svc, int pg_version);
void fl_lint_target_clear(fl_lint_target *t);

typedef struct {
	const fl_lint_target *target;
	const fl_migration *mig;
	/* for an undo migration, the versioned one it undoes (NULL: none): what that one
	 * created, the undo may drop, as a file may drop what it created itself */
	const fl_migration *undoes;
} fl_lint_job;

typedef struct {
	fl_lint_finding *items; /* in job order, then by place */
	size_t n;
	size_t files;
	size_t errors, warnings;
} fl_lint_report;

/*
 * Lints every job's file into *out (appending; start from a zeroed report).
 * threads 0: as many as the machine has, at most 8. A file whose
 * placeholders cannot be replaced is not a finding but an input error,
 * appended to *err (FL_EINPUT, at its place); the other files are still
 * linted. Returns the number of such errors.
 */
int fl_lint_run(const fl_lint_job *jobs, size_t n, int threads, fl_lint_report *out, fl_error **err);
void fl_lint_report_clear(fl_lint_report *r);

/* "lock_timeout 10s", "lock_timeout 1500ms", "no lock_timeout": what flotilla sets, for messages. */
void fl_lint_lock_timeout_text(int ms, char out[64]);

/* "file:line:col: rule: message" and, with a hint, "\n  hint: ..."; caller frees. */
char *fl_lint_finding_text(const fl_lint_finding *f);

#endif
