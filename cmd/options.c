/*
 * options: the table of commands and options (see options.h for how to add
 * one), the parser every command calls, and what is written from the table:
 * --help, help CMD, flotilla(1), and the words of `flotilla __complete`.
 */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "cli.h"
#include "text.h"

/* ---- the table ---- */

#define FA struct fl_fleet_args
/* The options every fleet command takes (fl_cli_fleet), one line per command that takes them. */
#define FLEET_JSON                                                                                           \
	FL_OPT_FLAG(FA, json, "json", 0,                                                                     \
	            "one JSON document on stdout (README \"JSON report\"), on every exit")
#define FLEET_JOBS                                                                                           \
	FL_OPT_INT(FA, jobs, "jobs", 'j', "N", 1, FL_BUDGET_MAX_JOBS,                                        \
	           "services at once (1-1000; default one per service, at most 8; with a server on "         \
	           "this machine, one per CPU plus one apply migrations at a time)")
/* the connection budget (core/budget.h): caps -j and provisioning's parallel databases */
#define FLEET_CONNECTIONS                                                                                    \
	FL_OPT_INT(FA, connections, "connections", 0, "N", 1, 100000,                                        \
	           "connections at once, capping -j (default: [settings] connections, else what the server " \
	           "has free)")
#define FLEET_FAIL_FAST                                                                                      \
	FL_OPT_FLAG(FA, fail_fast, "fail-fast", 0, "the first failing service cancels the others")
#define FLEET_REV                                                                                            \
	FL_OPT_STR(FA, rev, "rev", 0, "REV", "read the migration files from REV's tree, not the work tree")
#define FLEET_LIVE_PLAIN                                                                                     \
	FL_OPT_FLAG(FA, plain, "plain", 0, "one timestamped line per event instead of the live view")
/* core/shard.h: I/N, auto (Cloud Run's variables) or auto/N (the index from the environment) */
#define FLEET_SHARD                                                                                          \
	FL_OPT_STR(FA, shard, "shard", 0, "I/N",                                                             \
	           "run shard I of N of the selected services (auto: CLOUD_RUN_TASK_INDEX/COUNT; auto/N: "   \
	           "the index from CLOUD_RUN_TASK_INDEX or JOB_COMPLETION_INDEX)")
/* status, validate and plan take migrate's run options, so that one command line fits every verb */
#define FLEET_READ_ONLY                                                                                      \
	FLEET_JSON, FLEET_REV, FLEET_JOBS, FLEET_CONNECTIONS, FLEET_SHARD,                                   \
	    FL_OPT_FLAG(                                                                                     \
	        FA, out_of_order, "out-of-order", 0,                                                         \
	        "files below the current version are to be applied, as migrate --out-of-order does, "        \
	        "not refused"),                                                                              \
	    FLEET_FAIL_FAST,                                                                                 \
	    FL_OPT_FLAG(FA, no_provision, "no-provision", 0,                                                 \
	                "accepted as for migrate; only migrate provisions"),                                 \
	    FL_OPT_FLAG(FA, plain, "plain", 0, "accepted as for migrate; there is no live view to turn off")
#define FLEET_CHANGE_OTHERS                                                                                  \
	FLEET_JSON, FLEET_JOBS, FLEET_CONNECTIONS, FLEET_FAIL_FAST, FLEET_LIVE_PLAIN,                        \
	    FL_OPT_FLAG(FA, out_of_order, "out-of-order", 0,                                                 \
	                "accepted as for migrate (it changes no plan here)"),                                \
	    FL_OPT_FLAG(FA, no_provision, "no-provision", 0,                                                 \
	                "accepted as for migrate; only migrate provisions")

static const fl_opt migrate_opts[] = {
    FL_OPT_STR(FA, target, "target", 0, "V", "apply up to version V (\"current\": nothing new)"),
    FL_OPT_FLAG(FA, dry_run, "dry-run", 0, "print the SQL that would run; change nothing, provision nothing"),
    FLEET_JSON,
    FLEET_JOBS,
    FLEET_CONNECTIONS,
    FLEET_FAIL_FAST,
    FL_OPT_FLAG(FA, no_provision, "no-provision", 0,
                "skip provisioning (roles, databases and grants exist already)"),
    FL_OPT_STR(FA, since, "since", 0, "REV", "only services whose migration folders changed since REV"),
    FLEET_REV,
    FL_OPT_FLAG(FA, out_of_order, "out-of-order", 0,
                "apply files below the current version instead of refusing them"),
    FLEET_LIVE_PLAIN,
    FLEET_SHARD,
    /* core/timeline.h: written at the end of every run, a failed or interrupted one too */
    FL_OPT_STR_X(FA, html, "html", 0, "FILE",
                 "also write a picture of the run (one bar per service over time, the critical path) "
                 "as one self-contained HTML page to FILE",
                 .complete = FL_COMPLETE_FILES),
    FL_OPT_STR_X(FA, svg, "svg", 0, "FILE", "the same picture as one standalone SVG file",
                 .complete = FL_COMPLETE_FILES),
    /* the bound of a shard's wait for shard 0's roles (default FL_FLEET_SHARD_WAIT_S); for tests */
    FL_OPT_INT_X(FA, shard_wait, "shard-wait", 0, "SECONDS", 1, 3600,
                 "how long a shard other than 0 waits for shard 0's roles", .flags = FL_OPTF_HIDDEN),
    FL_OPT_END,
};
static const fl_opt read_only_opts[] = {FLEET_READ_ONLY, FL_OPT_END};
static const fl_opt repair_opts[] = {
    FL_OPT_FLAG(FA, dry_run, "dry-run", 0, "print the SQL that would run; change nothing"),
    FLEET_CHANGE_OTHERS,
    FL_OPT_END,
};
static const fl_opt undo_opts[] = {
    FL_OPT_STR(FA, to, "to", 0, "V", "undo the versions above V (default: the last one applied)"),
    FL_OPT_FLAG(FA, dry_run, "dry-run", 0, "print the SQL that would run; change nothing"),
    FLEET_CHANGE_OTHERS,
    FL_OPT_END,
};
static const fl_opt baseline_opts[] = {
    FL_OPT_STR(FA, version, "version", 0, "V", "the version the database is at"),
    FL_OPT_FLAG(FA, from_alembic, "from-alembic", 0,
                "the version of the revision alembic_version records (after flotilla import alembic)"),
    FLEET_CHANGE_OTHERS,
    FL_OPT_END,
};
#undef FA

#define DA struct fl_diff_args
static const fl_opt diff_opts[] = {
    FL_OPT_STR_X(DA, since, "since", 0, "REV", "the revision to compare with (e.g. origin/main)",
                 .flags = FL_OPTF_REQUIRED),
    FL_OPT_STR(DA, to, "to", 0, "REV",
               "compare REV..TO as given, instead of the merge base with the work tree"),
    FL_OPT_FLAG(DA, json, "json", 0, "one JSON document on stdout"),
    FL_OPT_END,
};
#undef DA

#define LA struct fl_lint_args
static const fl_opt lint_opts[] = {
    FL_OPT_STR(LA, since, "since", 0, "REV", "only the files added or changed since REV"),
    FL_OPT_STR(LA, rev, "rev", 0, "REV", "read the files from REV's tree (and compare --since with it)"),
    FL_OPT_FLAG(LA, json, "json", 0, "one JSON document on stdout (the same as --format json)"),
    FL_OPT_STR_X(LA, format, "format", 0, "FORMAT", "text (default), github (annotations), sarif or json",
                 .complete = FL_COMPLETE_WORDS, .words = "text github sarif json"),
    FL_OPT_INT(LA, pg_version, "pg-version", 0, "N", FL_LINT_MIN_PG_VERSION, FL_LINT_MAX_PG_VERSION,
               "the PostgreSQL major version verdicts follow (default: [lint] pg_version, else 15)"),
    FL_OPT_END,
};
#undef LA

#define RA struct fl_drift_args
static const fl_opt drift_opts[] = {
    FL_OPT_FLAG(RA, json, "json", 0, "one JSON document on stdout"),
    FL_OPT_STR_X(RA, html, "html", 0, "FILE", "also write the report as one HTML page to FILE",
                 .complete = FL_COMPLETE_FILES),
    FL_OPT_LIST_X(RA, only, "only", 0, "CHECKS", "only these checks (comma-separated: history,schema,grants)",
                  .complete = FL_COMPLETE_WORDS, .words = "history schema grants"),
    FL_OPT_STR(RA, shadow, "shadow", 0, "CONNINFO",
               "replay migrations for the schema check on this server (default: the environment's)"),
    FL_OPT_FLAG(RA, no_column_order, "no-column-order", 0, "a table's columns in another order is no drift"),
    FL_OPT_FLAG(RA, no_comments, "no-comments", 0, "comments (COMMENT ON) are not compared"),
    FL_OPT_FLAG(RA, plain, "plain", 0, "one timestamped line per event on stderr"),
    FL_OPT_INT(RA, jobs, "jobs", 'j', "N", 1, 64, "services at once (1-64)"),
    FL_OPT_FLAG_X(RA, keep_shadow, "keep-shadow", 0, "keep the shadow databases, print their names (tests)",
                  .flags = FL_OPTF_HIDDEN),
    FL_OPT_END,
};
#undef RA

#define PA struct fl_provision_args
static const fl_opt provision_opts[] = {
    FL_OPT_FLAG(PA, dry_run, "dry-run", 0, "print the SQL it would run (a psql script), change nothing"),
    FL_OPT_FLAG(PA, reset_passwords, "reset-passwords", 0,
                "set every managed password again from its secret"),
    FL_OPT_FLAG(PA, prune, "prune", 0, "revoke privileges the manifest does not ask for (else: warnings)"),
    FL_OPT_END,
};
#undef PA

static const fl_opt manifest_opts[] = {
    FL_OPT_FLAG(struct fl_manifest_args, secrets, "secrets", 0,
                "with check: also resolve every secret of the environment (needs -e), showing none"),
    FL_OPT_FLAG(struct fl_manifest_args, json, "json", 0, "with show: one JSON document"),
    FL_OPT_END,
};
static const fl_opt help_opts[] = {
    FL_OPT_FLAG(struct fl_help_args, man, "man", 0, "the manual page flotilla(1), in roff"),
    FL_OPT_END,
};
#define NA struct fl_init_args
static const fl_opt init_opts[] = {
    FL_OPT_FLAG(NA, from_flyway, "from-flyway", 0,
                "translate the Flyway configuration files named as operands"),
    FL_OPT_STR_X(NA, output, "output", 'o', "FILE", "the manifest to write (default: flotilla.toml)",
                 .complete = FL_COMPLETE_FILES),
    FL_OPT_FLAG(NA, force, "force", 0, "replace FILE if it exists"),
    FL_OPT_END,
};
#undef NA

#define IA struct fl_import_args
static const fl_opt import_opts[] = {
    FL_OPT_STR_X(IA, alembic_dir, "alembic-dir", 0, "DIR",
                 "the Alembic script folder (default: 'alembic' beside the migrations folder)",
                 .complete = FL_COMPLETE_FILES),
    FL_OPT_STR_X(IA, config, "config", 0, "FILE",
                 "the Alembic configuration (default: alembic.ini beside DIR)",
                 .complete = FL_COMPLETE_FILES),
    FL_OPT_END,
};
#undef IA

static const fl_opt no_opts[] = {FL_OPT_END};

/* The options before the command, and -m/-e/-h, which every command takes too. */
#define GA struct fl_cli_globals
static const fl_opt program_opts[] = {
    FL_OPT_STR_X(GA, manifest, "manifest", 'm', "FILE",
                 "the manifest (default: flotilla.toml, else manifests/pcc.toml)",
                 .complete = FL_COMPLETE_FILES, .flags = FL_OPTF_GLOBAL),
    FL_OPT_STR_X(GA, env, "env", 'e', "ENV", "the environment (default: $FLOTILLA_ENV)",
                 .complete = FL_COMPLETE_ENVS, .flags = FL_OPTF_GLOBAL),
    {.name = "help",
     .short_name = 'h',
     .kind = FL_OPT_HELP,
     .help = "this help; 'flotilla help COMMAND' for one"},
    FL_OPT_FLAG_X(GA, version, "version", 'V', "the version", .flags = FL_OPTF_GLOBAL),
    FL_OPT_FLAG_X(GA, verbose, "verbose", 'v', "accepted, no effect yet",
                  .flags = FL_OPTF_GLOBAL | FL_OPTF_HIDDEN),
    FL_OPT_END,
};
#undef GA
/* program_opts[0..NCOMMON) are taken after every command as well */
#define NCOMMON 3

static const char FLEET_EXIT[] =
    "Exit codes: 0 done, 1 a service failed, 2 bad input (nothing sent), 3 a service\n"
    "refused (an applied migration was edited, a file below the current version), "
    "130 interrupted";

const fl_cli_command fl_cli_commands[] = {
    {.name = "migrate",
     .run = cmd_migrate,
     .summary = "provision, then apply pending migrations of every (or the named) service in parallel",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = migrate_opts,
     .env = true,
     .about = "Checks everything first (the manifest, every secret the run needs, every file of the\n"
              "selected services): any problem exits 2 with nothing sent to any server. Then provisions\n"
              "what the selected services need (their roles, databases and grants; not the whole fleet)\n"
              "and applies each service's pending migrations, services in parallel.\n"
              "--html and --svg draw the run: one bar per service over time (queued, connect, lock wait,\n"
              "each migration, retries), the phases, the critical path (the chain of work that set the\n"
              "wall time) and the slowest service; written at the end of every run, failed ones too.",
     .more = FLEET_EXIT,
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "status",
     .run = cmd_status,
     .summary = "show applied and pending migrations per service (like flyway info)",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = read_only_opts,
     .env = true,
     .about = "A service whose database does not exist yet is shown as such (\"database X will be\n"
              "created; N migrations to apply\"). --json: versions and every migration with its state.",
     .more = "Exit codes: 0 done, 1 a service could not be read, 2 bad input (nothing sent), 130 interrupted",
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "validate",
     .run = cmd_validate,
     .summary = "compare the history of each database with the migration files (exit 3 on mismatch)",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = read_only_opts,
     .env = true,
     .about = "Each problem is listed with its file; --json lists them in each service's problems.\n"
              "An INVALID index (a CREATE INDEX CONCURRENTLY that did not finish) is a problem,\n"
              "named with the migration that creates it.",
     .more = "Exit codes: 0 valid, 1 a service could not be read, 2 bad input (nothing sent), 3 a service\n"
             "has problems, 130 interrupted",
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "plan",
     .run = cmd_plan,
     .summary = "show what migrate would do, per service, without doing it",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = read_only_opts,
     .env = true,
     .about = "Per service: the files migrate would apply, in order, and which run outside a transaction;\n"
              "--json: the same per service, with each migration's state.",
     .more = "Exit codes: 0 done, 1 a service could not be read, 2 bad input (nothing sent), 130 interrupted",
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "diff",
     .run = cmd_diff,
     .summary = "which migrations changed between two git revisions; refuse edits to applied ones",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = diff_opts,
     .about = "Without --to, the base is the merge base of REV and HEAD, compared with the work tree\n"
              "(index and untracked files included), like 'git diff REV...HEAD': on a branch,\n"
              "--since origin/main shows what the branch changed, not what main did meanwhile;\n"
              "for a tag HEAD descends from, the base is the tag itself. With --to, REV..TO as given.",
     .more = "Exit 0: only added migrations and changed repeatables; 3: a versioned or undo migration\n"
             "was modified, deleted or renamed, or two files share a version; 2: bad revision or name"},
    {.name = "lint",
     .run = cmd_lint,
     .summary = "check migrations for statements that lock or break production, with PostgreSQL's parser",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = lint_opts,
     .about =
         "Lints every migration of the selected services, or with --since only the files added or changed\n"
         "since REV (the selection 'diff --since' makes; --rev compares with and reads from that revision).\n"
         "Each finding is 'file:line:col: rule: message' with a hint line; rules and their levels: "
         "docs/lint.md,\n"
         "[lint] in the manifest; '-- flotilla:lint-ignore RULE reason' before a statement (or\n"
         "'-- flotilla:lint-ignore-file RULE reason') silences one. No database is touched.",
     .more = "Exit 0: no error-level finding (warnings allowed); 3: an error-level finding; 2: bad usage or "
             "a file\n"
             "that could not be read"},
    {.name = "provision",
     .run = cmd_provision,
     .summary = "create roles, databases, passwords and grants from the manifest (idempotent)",
     .opts = provision_opts,
     .env = true,
     .about =
         "Creates the roles, databases, memberships and grants the manifest asks for, for the whole\n"
         "fleet of the environment. Each step is printed as it runs (\"no changes\" when there is none).",
     .more = "Exit codes: 0 done, 1 a step failed, 2 bad input (nothing sent), 130 interrupted"},
    {.name = "drift",
     .run = cmd_drift,
     .summary = "compare history, live schema and grants with the repository (exit 3 on drift)",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = drift_opts,
     .env = true,
     .about = "The schema check replays each service's migrations into a shadow database and compares\n"
              "its catalog with the live one; history compares flyway_schema_history with the files;\n"
              "grants compares roles and privileges with the manifest.",
     .more =
         "Exit codes: 0 no drift, 1 something could not be checked, 2 bad usage, 3 drift, 130 interrupted"},
    {.name = "baseline",
     .run = cmd_baseline,
     .summary = "mark an existing database as being at a version",
     .operands = "SERVICE...",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = baseline_opts,
     .env = true,
     .about = "Writes the baseline row to each named service's history (as flyway baseline does), so\n"
              "migrate applies only the files above V. With --from-alembic, V is the imported V file of\n"
              "the revision the database's alembic_version holds (see 'flotilla import alembic'); an\n"
              "unknown revision is refused. One of --version and --from-alembic is needed.",
     .more = FLEET_EXIT,
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "repair",
     .run = cmd_repair,
     .summary = "remove failed history rows and realign checksums and descriptions",
     .operands = "[SERVICE...]",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = repair_opts,
     .env = true,
     .more = FLEET_EXIT,
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "undo",
     .run = cmd_undo,
     .summary = "apply undo (U) migrations in reverse order",
     .operands = "SERVICE...",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = undo_opts,
     .env = true,
     .more = FLEET_EXIT,
     .usage_json = fl_cli_fleet_usage_json},
    {.name = "rotate",
     .run = cmd_rotate,
     .summary = "generate a new password, hand it to the secret manager, then set it",
     .operands = "SERVICE...",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = no_opts,
     .env = true,
     .about = "Generates a new password for each service's owner, hands it on standard input to the\n"
              "service's password_sink (the secret manager), and sets it once the sink succeeded.\n"
              "A failed sink leaves the old password working.",
     .more = "Exit codes: 0 done, 1 a service failed, 2 bad input"},
    {.name = "init",
     .run = cmd_init,
     .summary = "write a manifest from the services' Flyway configuration files",
     .operands = "FILE...",
     .operands_complete = FL_COMPLETE_FILES,
     .opts = init_opts,
     .about = "With --from-flyway, writes a manifest from the services' Flyway configuration files\n"
              "(flyway.conf or flyway.toml, one per service: src/auth-api/flyway.conf is service auth)\n"
              "and lists on stderr every setting it could not translate, and every value it had to\n"
              "guess. Passwords written ${VAR} become { env = \"VAR\" }; no secret is ever copied.\n"
              "An existing FILE is kept unless --force is given.",
     .more = "Exit codes: 0 written, 2 a problem (nothing written)"},
    {.name = "import",
     .run = cmd_import,
     .summary = "write a service's migrations folder from its Alembic revisions",
     .operands = "alembic SERVICE",
     .operands_complete = FL_COMPLETE_SERVICES,
     .opts = import_opts,
     .about = "Checks the revision chain of DIR/versions/*.py, has Alembic (/usr/bin/alembic, with FILE)\n"
              "render every upgrade and downgrade offline, and writes V<n>__<slug>.sql and\n"
              "U<n>__<slug>.sql in chain order, without the alembic_version bookkeeping. A broken chain\n"
              "(a file holding another revision than its name says, a down_revision naming nothing,\n"
              "duplicate ids, branches, merges, cycles) or a revision that cannot be rendered offline\n"
              "is reported at its file:line; then nothing is written. No database is touched.",
     .more = "Exit codes: 0 written, 2 a problem (nothing written)"},
    {.name = "report",
     .run = cmd_report,
     .summary = "merge the JSON documents of a sharded run's shards into the fleet's",
     .operands = "merge FILE...",
     .operands_complete = FL_COMPLETE_WORDS,
     .operand_words = "merge",
     .opts = no_opts,
     .about = "Reads the JSON documents the shards of a run printed (one per shard, every shard of the\n"
              "run), takes each service from the shard that ran it and prints the fleet's document;\n"
              "its result and exit code come from the merged services' outcomes. A document of\n"
              "another run, a shard given twice or a shard missing is bad input.",
     .more = "Exit codes: the merged run's (0 done, 1 a service failed, 3 a service refused,\n"
             "130 interrupted), 2 bad input (a document that does not fit)"},
    {.name = "manifest",
     .run = cmd_manifest,
     .summary = "check the manifest or show it resolved (secrets shown as their source)",
     .operands = "check|show",
     .operands_complete = FL_COMPLETE_WORDS,
     .operand_words = "check show",
     .opts = manifest_opts,
     .env = true,
     .about = "check  validate the manifest (every environment when no -e is given)\n"
              "show   the resolved manifest, secrets shown as where they come from\n"
              "Every key of the manifest: flotilla.toml(5) (man 5 flotilla.toml), which\n"
              "'flotilla help manifest' prints after this help.",
     .reference = fl_cli_manifest_reference},
    {.name = "help",
     .run = cmd_help,
     .summary = "this list, or one command's usage and options",
     .operands = "[COMMAND]",
     .operands_complete = FL_COMPLETE_COMMANDS,
     .opts = help_opts},
    {.name = "version", .run = cmd_version, .summary = "the version", .opts = no_opts},
};
const size_t fl_cli_ncommands = sizeof(fl_cli_commands) / sizeof(fl_cli_commands[0]);

const fl_cli_command fl_cli_program = {.name = "flotilla",
                                       .summary = "migrate a fleet of PostgreSQL service databases",
                                       .operands = "COMMAND [ARGS...]",
                                       .operands_complete = FL_COMPLETE_COMMANDS,
                                       .opts = program_opts,
                                       .env = true};

const fl_cli_command *fl_cli_command_find(const char *name)
{
	for (size_t i = 0; i < fl_cli_ncommands; i++)
		if (strcmp(fl_cli_commands[i].name, name) == 0)
			return &fl_cli_commands[i];
	return NULL;
}

/* ---- the parser ---- */

/* The options a command takes, in the order help shows them: its own, then -m, -e, -h. */
static size_t command_opts(const fl_cli_command *c, const fl_opt **out, size_t cap)
{
	size_t n = 0;
	for (const fl_opt *o = c->opts; o->name && n < cap; o++)
		out[n++] = o;
	if (c != &fl_cli_program)
		for (size_t i = 0; i < NCOMMON && n < cap; i++)
			out[n++] = &program_opts[i];
	return n;
}
#define MAXOPTS 64

static bool json_asked(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}

static bool takes_json(const fl_cli_command *c)
{
	for (const fl_opt *o = c->opts; o->name; o++)
		if (strcmp(o->name, "json") == 0)
			return true;
	return false;
}

static void generic_usage_json(const fl_cli_command *c, const char *msg)
{
	json_t *doc = json_pack("{s:s, s:s, s:i, s:b, s:[{s:s}]}", "command", c->name, "result", "invalid",
	                        "exit_code", FL_EXIT_USAGE, "touched", 0, "errors", "message", msg);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	free(s);
	json_decref(doc);
}

static int usage_v(const fl_cli_command *c, int argc, char **argv, const char *fmt, va_list ap)
{
	char *msg = fl_vasprintf(fmt, ap);
	int rc = fl_cli_usage_error(c == &fl_cli_program ? NULL : c->name, "%s", msg);
	if (c != &fl_cli_program && takes_json(c) && json_asked(argc, argv))
		(c->usage_json ? c->usage_json : generic_usage_json)(c, msg);
	free(msg);
	return rc;
}

static int usage(const fl_cli_command *c, int argc, char **argv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int usage(const fl_cli_command *c, int argc, char **argv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = usage_v(c, argc, argv, fmt, ap);
	va_end(ap);
	return rc;
}

int fl_cli_usage(int argc, char **argv, const char *fmt, ...)
{
	const fl_cli_command *c = fl_cli_command_find(argv[0]);
	va_list ap;
	va_start(ap, fmt);
	int rc = c ? usage_v(c, argc, argv, fmt, ap) : FL_EXIT_USAGE;
	va_end(ap);
	return rc;
}

/* "a, b or c" of a space-separated list */
static char *words_or(const char *words)
{
	fl_buf b;
	fl_buf_init(&b);
	size_t n = 0;
	for (const char *p = words; *p;) {
		size_t len = strcspn(p, " ");
		const char *next = p + len + (p[len] ? 1 : 0);
		if (n++)
			fl_buf_puts(&b, *next ? ", " : " or ");
		fl_buf_add(&b, p, len);
		p = next;
	}
	return fl_buf_detach(&b);
}

static bool in_words(const char *words, const char *s)
{
	size_t n = strlen(s);
	for (const char *p = words; *p;) {
		size_t len = strcspn(p, " ");
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		p += len + (p[len] ? 1 : 0);
	}
	return false;
}

/* A number, strictly: digits only (a leading '-' for negative bounds), in range, no overflow. */
static bool parse_int(const char *s, long min, long max, int *out)
{
	const char *p = s + (*s == '-');
	if (!isdigit((unsigned char)*p))
		return false;
	for (const char *q = p; *q; q++)
		if (!isdigit((unsigned char)*q))
			return false;
	errno = 0;
	long v = strtol(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

/* The commands whose table has this long name (or short letter), "a, b and c"; NULL: none. */
static char *taken_by(const char *lng, char sh)
{
	fl_buf b;
	fl_buf_init(&b);
	size_t n = 0, total = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < fl_cli_ncommands; i++)
			for (const fl_opt *o = fl_cli_commands[i].opts; o->name; o++) {
				if (o->flags & FL_OPTF_HIDDEN)
					continue;
				if (!(lng ? strcmp(o->name, lng) == 0 : (sh && o->short_name == sh)))
					continue;
				if (pass == 0) {
					total++;
				} else {
					if (n++)
						fl_buf_puts(&b, n == total ? " and " : ", ");
					fl_buf_puts(&b, fl_cli_commands[i].name);
				}
				break;
			}
	if (!n || total > 4) { /* an option most commands take says little about where it belongs */
		fl_buf_free(&b);
		return NULL;
	}
	return fl_buf_detach(&b);
}

static int unknown_option(const fl_cli_command *c, int argc, char **argv, const char *word)
{
	if (c == &fl_cli_program)
		return usage(c, argc, argv, "unknown option '%s'", word);
	/* an option of another command: say whose */
	char name[64] = "";
	char sh = 0;
	if (word[0] == '-' && word[1] == '-')
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(word + 2, "="), word + 2);
	else if (word[0] == '-' && word[1])
		sh = word[1];
	char *who = taken_by(name[0] ? name : NULL, sh);
	if (!who)
		return usage(c, argc, argv, "unknown option '%s' for %s", word, c->name);
	int rc = usage(c, argc, argv, "%s is for %s, not %s", word, who, c->name);
	free(who);
	return rc;
}

/* What argv holds for the option just parsed, as the user wrote it: "-j" or "--jobs". */
static void spelled(const fl_opt *o, const char *word, char *out, size_t n)
{
	if (word && word[0] == '-' && word[1] == '-')
		snprintf(out, n, "--%s", o->name);
	else if (o->short_name)
		snprintf(out, n, "-%c", o->short_name);
	else
		snprintf(out, n, "--%s", o->name);
}

static int parse(const fl_cli_command *c, int argc, char **argv, void *args, int *first)
{
	const fl_opt *opts[MAXOPTS];
	size_t n = command_opts(c, opts, MAXOPTS);
	struct option longs[MAXOPTS + 1];
	char shorts[2 * MAXOPTS + 4];
	size_t ns = 0;
	if (c == &fl_cli_program)
		shorts[ns++] = '+'; /* stop at the command: its options are its own */
	shorts[ns++] = ':';
	for (size_t i = 0; i < n; i++) {
		longs[i] = (struct option){opts[i]->name, opts[i]->arg ? required_argument : no_argument,
		                           NULL, 1000 + (int)i};
		if (opts[i]->short_name) {
			shorts[ns++] = opts[i]->short_name;
			if (opts[i]->arg)
				shorts[ns++] = ':';
		}
	}
	longs[n] = (struct option){NULL, 0, NULL, 0};
	shorts[ns] = '\0';
	bool seen[MAXOPTS] = {false};
	opterr = 0;
	optind = 0; /* getopt starts over (and finds argv[0] to be the name) */
	int ch;
	while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		/* the option as written: "-j 3x" leaves optind past the value */
		const char *word =
		    optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
		if (ch == ':')
			return usage(c, argc, argv, "option '%s' needs a value", word);
		size_t k = n;
		if (ch >= 1000 && ch < 1000 + (int)n)
			k = (size_t)(ch - 1000);
		else if (ch != '?')
			for (k = 0; k < n && opts[k]->short_name != ch; k++)
				;
		if (k == n) {
			char w[3] = {'-', (char)optopt, 0};
			return unknown_option(c, argc, argv, optopt && word[1] != '-' ? w : word);
		}
		const fl_opt *o = opts[k];
		seen[k] = true;
		char *dst = (char *)((o->flags & FL_OPTF_GLOBAL) ? (void *)&fl_cli : args) + o->offset;
		char as[80];
		spelled(o, word, as, sizeof(as));
		switch (o->kind) {
		case FL_OPT_HELP:
			if (c == &fl_cli_program)
				fl_cli_print_help(stdout);
			else
				fl_cli_print_command_help(stdout, c);
			return FL_EXIT_OK;
		case FL_OPT_FLAG:
			*(bool *)dst = true;
			break;
		case FL_OPT_INT:
			if (!parse_int(optarg, o->min, o->max, (int *)dst))
				return usage(c, argc, argv, "%s needs a number from %ld to %ld, not '%s'", as,
				             o->min, o->max, optarg);
			break;
		case FL_OPT_STR:
			if (o->complete == FL_COMPLETE_WORDS && !in_words(o->words, optarg)) {
				char *w = words_or(o->words);
				int rc = usage(c, argc, argv, "%s takes %s, not '%s'", as, w, optarg);
				free(w);
				return rc;
			}
			*(const char **)dst = optarg;
			break;
		case FL_OPT_LIST:
			*(const char **)dst = optarg;
			break;
		}
	}
	for (size_t k = 0; k < n; k++)
		if ((opts[k]->flags & FL_OPTF_REQUIRED) && !seen[k])
			return usage(c, argc, argv, "%s needs --%s %s", c->name, opts[k]->name, opts[k]->arg);
	if (!c->operands && optind < argc)
		return usage(c, argc, argv, "unexpected argument '%s'", argv[optind]);
	*first = optind;
	return FL_CLI_GO;
}

int fl_cli_parse(int argc, char **argv, void *args, int *first)
{
	const fl_cli_command *c = fl_cli_command_find(argv[0]);
	if (!c) /* a command not in the table: a programming error, said plainly */
		return fl_cli_usage_error(NULL, "'%s' has no entry in the option table", argv[0]);
	return parse(c, argc, argv, args, first);
}

int fl_cli_parse_program(int argc, char **argv, int *first)
{
	return parse(&fl_cli_program, argc, argv, &fl_cli, first);
}

/* ---- help ---- */

/* "-j, --jobs N" / "--dry-run" */
static void opt_label(const fl_opt *o, char *out, size_t n)
{
	char sh[8] = "";
	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	snprintf(out, n, "%s--%s%s%s", sh, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* "[-j N]" / "--since REV" */
static void opt_synopsis(const fl_opt *o, char *out, size_t n)
{
	bool req = o->flags & FL_OPTF_REQUIRED;
	if (o->short_name)
		snprintf(out, n, "%s-%c%s%s%s", req ? "" : "[", o->short_name, o->arg ? " " : "",
		         o->arg ? o->arg : "", req ? "" : "]");
	else
		snprintf(out, n, "%s--%s%s%s%s", req ? "" : "[", o->name, o->arg ? " " : "",
		         o->arg ? o->arg : "", req ? "" : "]");
}

/* "flotilla [-m FILE] [-e ENV] migrate [SERVICE...] [--target V] ...", wrapped under the command */
static char *synopsis(const fl_cli_command *c)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_printf(&b, "flotilla [-m FILE]%s %s", c->env ? " [-e ENV]" : "", c->name);
	size_t line = b.len, indent = 9;
	if (c->operands) {
		fl_buf_printf(&b, " %s", c->operands);
		line += 1 + strlen(c->operands);
	}
	for (const fl_opt *o = c->opts; o->name; o++) {
		if (o->flags & FL_OPTF_HIDDEN)
			continue;
		char s[128];
		opt_synopsis(o, s, sizeof(s));
		if (line + 1 + strlen(s) > 96) {
			fl_buf_printf(&b, "\n%*s", (int)indent, "");
			line = indent;
		} else {
			fl_buf_putc(&b, ' ');
			line++;
		}
		fl_buf_puts(&b, s);
		line += strlen(s);
	}
	return fl_buf_detach(&b);
}

/* Help lines fit 80 columns: the words after the first line go on lines indented to the help column. */
#define HELP_COLUMNS 80
static void print_wrapped(FILE *f, const char *text, int indent)
{
	int col = indent;
	const char *p = text;
	bool first = true;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (!n)
			break;
		if (!first && col + 1 + (int)n > HELP_COLUMNS) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else {
			fputs(first ? "  " : " ", f);
			col += first ? 0 : 1;
		}
		fwrite(p, 1, n, f);
		col += (int)n;
		first = false;
		p += n;
	}
	fputc('\n', f);
}

static void print_opts(FILE *f, const fl_opt *const *opts, size_t n)
{
	int w = 0;
	for (size_t i = 0; i < n; i++) {
		char l[128];
		opt_label(opts[i], l, sizeof(l));
		if (!(opts[i]->flags & FL_OPTF_HIDDEN) && (int)strlen(l) > w)
			w = (int)strlen(l);
	}
	for (size_t i = 0; i < n; i++) {
		if (opts[i]->flags & FL_OPTF_HIDDEN)
			continue;
		char l[128];
		opt_label(opts[i], l, sizeof(l));
		fprintf(f, "  %-*s", w, l);
		print_wrapped(f, opts[i]->help, 2 + w + 2);
	}
}

void fl_cli_print_command_help(FILE *f, const fl_cli_command *c)
{
	char *syn = synopsis(c);
	fprintf(f, "usage: %s\n\n%s.\n", syn, c->summary);
	free(syn);
	if (c->about)
		fprintf(f, "\n%s\n", c->about);
	const fl_opt *opts[MAXOPTS];
	size_t n = 0;
	for (const fl_opt *o = c->opts; o->name && n < MAXOPTS; o++)
		opts[n++] = o;
	if (n) {
		fprintf(f, "\nOptions:\n");
		print_opts(f, opts, n);
	}
	const fl_opt *common[NCOMMON];
	for (size_t i = 0; i < NCOMMON; i++)
		common[i] = &program_opts[i];
	fprintf(f, "\nOptions of every command:\n");
	print_opts(f, common, NCOMMON);
	if (c->more)
		fprintf(f, "\n%s\n", c->more);
	if (c->reference)
		fprintf(f, "\n%s", c->reference);
}

void fl_cli_print_help(FILE *f)
{
	fprintf(f, "usage: flotilla [-m FILE] [-e ENV] COMMAND [ARGS...]\n\n"
	           "Migrates a fleet of PostgreSQL service databases from one TOML manifest.\n\n"
	           "Commands:\n");
	for (size_t i = 0; i < fl_cli_ncommands; i++)
		fprintf(f, "  %-10s %s\n", fl_cli_commands[i].name, fl_cli_commands[i].summary);
	const fl_opt *opts[MAXOPTS];
	size_t n = command_opts(&fl_cli_program, opts, MAXOPTS);
	fprintf(f, "\nOptions:\n");
	print_opts(f, opts, n);
	fprintf(f, "\nExit codes: 0 done / no drift, 1 a migration or connection failed, 2 bad usage,\n"
	           "manifest or migration files (nothing touched), 3 drift or lint errors found, 130 "
	           "interrupted.\n");
}

/* ---- flotilla(1) ---- */

/* Roff for a line of our text: backslashes and dashes escaped, a leading dot or quote kept from being a
 * request. */
static void roff_line(FILE *f, const char *s, size_t n)
{
	if (n && (s[0] == '.' || s[0] == '\''))
		fputs("\\&", f);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\e", f);
		else if (s[i] == '-')
			fputs("\\-", f);
		else
			fputc(s[i], f);
	}
	fputc('\n', f);
}

static void roff_text(FILE *f, const char *s)
{
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		if (n == 0)
			fputs(".PP\n", f);
		else
			roff_line(f, s, n);
		s += n + (nl ? 1 : 0);
	}
}

static void roff_opts(FILE *f, const fl_opt *o)
{
	for (; o->name; o++) {
		if (o->flags & FL_OPTF_HIDDEN)
			continue;
		char l[128];
		opt_label(o, l, sizeof(l));
		fputs(".TP\n.B ", f);
		roff_line(f, l, strlen(l));
		roff_line(f, o->help, strlen(o->help));
	}
}

/*
 * flotilla(1), written from the table: the page, --help and help COMMAND say
 * the same because they are written from the same entries. man/flotilla.1 is
 * this output (`make man`; a test keeps it so).
 */
void fl_cli_print_man(FILE *f)
{
	fprintf(f,
	        ".\\\" generated by 'flotilla help --man' from cmd/options.c; do not edit\n"
	        ".TH FLOTILLA 1 \"\" \"flotilla %s\" \"flotilla manual\"\n"
	        ".SH NAME\nflotilla \\- migrate a fleet of PostgreSQL service databases from one TOML "
	        "manifest\n"
	        ".SH SYNOPSIS\n.B flotilla\n[\\-m FILE] [\\-e ENV] COMMAND [ARGS...]\n"
	        ".SH DESCRIPTION\nflotilla reads a manifest (see\n.BR flotilla.toml (5))\nof services, "
	        "databases, owners, secrets and migration folders, provisions roles, databases and\n"
	        "grants, applies each service's Flyway\\-compatible migrations in parallel, and checks "
	        "for drift.\n"
	        ".SH OPTIONS\n"
	        "These come before the command; \\-m, \\-e and \\-h are taken after every command as well.\n",
	        FL_VERSION);
	roff_opts(f, program_opts);
	fputs(".SH COMMANDS\n", f);
	for (size_t i = 0; i < fl_cli_ncommands; i++) {
		const fl_cli_command *c = &fl_cli_commands[i];
		fprintf(f, ".SS %s\n", c->name);
		roff_line(f, c->summary, strlen(c->summary));
		fputs(".PP\n.nf\n", f);
		char *syn = synopsis(c);
		roff_text(f, syn);
		free(syn);
		fputs(".fi\n", f);
		if (c->about) {
			fputs(".PP\n", f);
			roff_text(f, c->about);
		}
		roff_opts(f, c->opts);
		if (c->more) {
			fputs(".PP\n", f);
			roff_text(f, c->more);
		}
	}
	fputs(".SH EXIT STATUS\n0 done / no drift, 1 a migration or connection failed, 2 bad usage, manifest "
	      "or migration files (nothing was sent to any server), 3 problems found (drift, a refused "
	      "migration, validate or lint findings), 130 interrupted.\n"
	      ".SH ENVIRONMENT\n.TP\n.B FLOTILLA_ENV\nthe environment when \\-e is not given\n"
	      ".TP\n.B NO_COLOR\nno colours in the live view\n"
	      ".SH SEE ALSO\n.BR flotilla.toml (5),\n.BR psql (1)\n",
	      f);
}

/* ---- completion ---- */

static void print_words(const char *words)
{
	for (const char *p = words; *p;) {
		size_t len = strcspn(p, " ");
		printf("%.*s\n", (int)len, p);
		p += len + (p[len] ? 1 : 0);
	}
}

/* The option of c (or of the program's) that word names, when it takes a value. */
static const fl_opt *value_opt(const fl_cli_command *c, const char *word)
{
	if (word[0] != '-' || !word[1])
		return NULL;
	const fl_opt *opts[MAXOPTS];
	size_t n = command_opts(c, opts, MAXOPTS);
	for (size_t i = 0; i < n; i++) {
		if (!opts[i]->arg)
			continue;
		if (word[1] == '-' ? strcmp(word + 2, opts[i]->name) == 0
		                   : (word[1] == opts[i]->short_name && !word[2]))
			return opts[i];
	}
	return NULL;
}

static void complete_from(fl_complete what, const char *words)
{
	if (what == FL_COMPLETE_WORDS) {
		print_words(words);
		return;
	}
	if (what == FL_COMPLETE_COMMANDS) {
		for (size_t i = 0; i < fl_cli_ncommands; i++)
			printf("%s\n", fl_cli_commands[i].name);
		return;
	}
	if (what != FL_COMPLETE_SERVICES && what != FL_COMPLETE_ENVS)
		return; /* files: the shell's own; a revision or number: nothing */
	const char *path = fl_cli_manifest_path();
	if (!path)
		return;
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, NULL, &err);
	fl_error_free(err);
	if (!m)
		return;
	if (what == FL_COMPLETE_ENVS)
		for (size_t i = 0; i < m->nenvs; i++)
			printf("%s\n", m->envs[i].name);
	else
		for (size_t i = 0; i < m->nservices; i++)
			printf("%s\n", m->services[i].name);
	fl_manifest_free(m);
}

/*
 * `flotilla __complete WORD...`: the words that may follow WORD..., one per
 * line, for completion/flotilla.bash and completion/_flotilla: commands,
 * a command's options, and what an option's value or an operand completes
 * to (services and environments from the manifest -m names, or the default).
 */
int fl_cli_complete(int argc, char **argv)
{
	const fl_cli_command *c = &fl_cli_program;
	for (int i = 0; i < argc; i++) {
		const fl_opt *o = value_opt(c, argv[i]);
		if (o && i + 1 < argc) {
			if (o->flags & FL_OPTF_GLOBAL && strcmp(o->name, "manifest") == 0)
				fl_cli.manifest = argv[i + 1];
			i++;
		} else if (c == &fl_cli_program && argv[i][0] != '-') {
			const fl_cli_command *k = fl_cli_command_find(argv[i]);
			if (k)
				c = k;
		}
	}
	const fl_opt *prev = argc > 0 ? value_opt(c, argv[argc - 1]) : NULL;
	if (prev) {
		complete_from(prev->complete, prev->words);
		return FL_EXIT_OK;
	}
	const fl_opt *opts[MAXOPTS];
	size_t n = command_opts(c, opts, MAXOPTS);
	complete_from(c->operands_complete, c->operand_words);
	for (size_t i = 0; i < n; i++) {
		if (opts[i]->flags & FL_OPTF_HIDDEN)
			continue;
		if (opts[i]->short_name)
			printf("-%c\n", opts[i]->short_name);
		printf("--%s\n", opts[i]->name);
	}
	return FL_EXIT_OK;
}
