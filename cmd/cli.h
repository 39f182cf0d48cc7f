/*
 * cli: what the subcommands of the flotilla program share: the global
 * options (-m manifest, -e environment), the exit codes, and one entry point
 * per subcommand, each in cmd/<name>.c. Their options are in one table
 * (options.h).
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "gitdiff.h"
#include "lint.h"
#include "manifest.h"
#include "options.h"

enum {
	FL_EXIT_OK = 0,
	FL_EXIT_FAILED = 1, /* a migration or connection failed */
	FL_EXIT_USAGE = 2,  /* bad usage, manifest or migration files: nothing touched */
	FL_EXIT_DRIFT = 3,
	FL_EXIT_INTERRUPTED = 130,
};

struct fl_cli_globals {
	const char *manifest; /* -m FILE; NULL: flotilla.toml, else manifests/pcc.toml */
	const char *env;      /* -e ENV; NULL: $FLOTILLA_ENV */
	bool version;         /* -V */
	bool verbose;         /* -v: accepted, no effect yet */
};
extern struct fl_cli_globals fl_cli;

/* Prints every error of the chain as "file:line:col: msg" lines on stderr (no prefix:
 * editors and CI annotators read the place at the start of the line). */
void fl_cli_print_errors(const fl_error *err);
/* The exit code for an error chain: the kind of its first error. */
int fl_cli_exit_code(const fl_error *err);
/* "flotilla: " + message on stderr, then a hint line "try 'flotilla help CMD'". */
int fl_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The manifest path: -m, else flotilla.toml, else manifests/pcc.toml when
 * they exist; NULL when there is none. */
const char *fl_cli_manifest_path(void);
/* Loads the manifest for -e (need_env: an environment is required). Prints
 * every problem on stderr and returns NULL; the caller exits FL_EXIT_USAGE. */
fl_manifest *fl_cli_load_manifest(bool need_env);
/* The same, with the problems returned instead of printed (for a --json document). */
fl_manifest *fl_cli_manifest_try(bool need_env, fl_error **err);

/* `flotilla help NAME`: the command's usage and options (options.c writes it from the table). */
int fl_cli_help_command(const char *name);

/* The commands over selected services (cmd/fleetcmd.c); verb is an fl_fleet_verb. */
int fl_cli_fleet(int argc, char **argv, int verb);
/* Their --json document of a usage error (the table's usage_json). */
void fl_cli_fleet_usage_json(const fl_cli_command *c, const char *msg);

/*
 * Lint for cmd/lint.c and cmd/diff.c: collect files per service (from the
 * work tree, or from the tree of `rev` through g; only the names in `only`
 * when it is not NULL), then lint them all at once. A file that cannot be
 * read or named is an error in *err, and add returns -1 after adding the rest.
 */
typedef struct fl_cli_lint fl_cli_lint;
fl_cli_lint *fl_cli_lint_new(const fl_manifest *m, int pg_version);
int fl_cli_lint_add(fl_cli_lint *l, const fl_service *svc, fl_git *g, const char *rev,
                    const char *const *only, size_t nonly, fl_error **err);
/* Returns the number of files that could not be linted (their errors appended to *err). */
int fl_cli_lint_run(fl_cli_lint *l, fl_lint_report *rep, fl_error **err);
void fl_cli_lint_free(fl_cli_lint *l);
/* Each finding as fl_lint_finding_text gives it, one per line (and its hint line). */
void fl_cli_lint_print_text(FILE *f, const fl_lint_report *rep);

/* The subcommands. argv[0] is the command's name. */
int cmd_migrate(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_provision(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_baseline(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_undo(int argc, char **argv);
int cmd_rotate(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
