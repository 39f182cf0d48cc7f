/*
 * flotilla: the program. Global options, the command table, help, and
 * dispatch to cmd/<command>.c.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "orchestrate.h"
#include "text.h"

struct fl_cli_globals fl_cli;

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* NULL: not built yet */
	const char *summary;
	const char *usage;
};

static const struct command commands[] = {
    {"migrate", cmd_migrate,
     "provision, then apply pending migrations of every (or the named) service in parallel",
     "flotilla [-m FILE] [-e ENV] migrate [SERVICE...] [--target V] [--dry-run] [--json] [-j N]\n"
     "         [--connections N] [--fail-fast] [--no-provision] [--since REV] [--rev REV]\n"
     "         [--out-of-order] [--plain]\n\n"
     "Checks everything first (the manifest, every secret the run needs, every file of the\n"
     "selected services): any problem exits 2 with nothing sent to any server. Then provisions\n"
     "what the selected services need (their roles, databases and grants; not the whole fleet)\n"
     "and applies each service's pending migrations, services in parallel.\n\n"
     "  --target V        apply up to version V (\"current\": nothing new)\n"
     "  --dry-run         print the SQL that would run; change nothing, provision nothing\n"
     "  --json            one JSON document on stdout (README \"JSON report\"), on every exit\n"
     "  -j, --jobs N      services at once (1-1000; default one per service, at most 8)\n"
     "  --connections N   connections the run may hold at once, capping -j and provisioning\n"
     "                    (default: [settings] connections, else the server's max_connections\n"
     "                    minus those in use, superuser_reserved_connections and 3)\n"
     "  --fail-fast       the first failing service cancels the others\n"
     "  --no-provision    skip provisioning (roles, databases and grants exist already)\n"
     "  --since REV       only services whose migration folders changed since REV\n"
     "  --rev REV         read the migration files from REV's tree, not the work tree\n"
     "  --out-of-order    apply files below the current version instead of refusing them\n"
     "  --plain           one timestamped line per event instead of the live view\n\n"
     "Exit codes: 0 done, 1 a service failed, 2 bad input (nothing sent), 3 a service\n"
     "refused (an applied migration was edited, a file below the current version), 130 interrupted"},
    {"status", cmd_status, "show applied and pending migrations per service (like flyway info)",
     "flotilla [-m FILE] [-e ENV] status [SERVICE...] [--json] [--rev REV] [-j N]\n\n"
     "A service whose database does not exist yet is shown as such (\"database X will be\n"
     "created; N migrations to apply\"). --json: versions and every migration with its state"},
    {"validate", cmd_validate,
     "compare the history of each database with the migration files (exit 3 on mismatch)",
     "flotilla [-m FILE] [-e ENV] validate [SERVICE...] [--json] [--rev REV] [-j N]\n\n"
     "Exit 3 when a service has problems (each listed with its file); --json lists them"},
    {"plan", cmd_plan, "show what migrate would do, per service, without doing it",
     "flotilla [-m FILE] [-e ENV] plan [SERVICE...] [--json] [--rev REV] [-j N]"},
    {"diff", cmd_diff, "which migrations changed between two git revisions; refuse edits to applied ones",
     "flotilla [-m FILE] diff --since REV [--to REV] [--json] [SERVICE...]\n\n"
     "Without --to, the base is the merge base of REV and HEAD, compared with the work tree\n"
     "(index and untracked files included), like 'git diff REV...HEAD': on a branch,\n"
     "--since origin/main shows what the branch changed, not what main did meanwhile;\n"
     "for a tag HEAD descends from, the base is the tag itself. With --to, REV..TO as given.\n"
     "Exit 0: only added migrations and changed repeatables; 3: a versioned or undo migration\n"
     "was modified, deleted or renamed, or two files share a version; 2: bad revision or name"},
    {"lint", cmd_lint,
     "check migrations for statements that lock or break production, with PostgreSQL's parser",
     "flotilla [-m FILE] lint [SERVICE...] [--since REV] [--rev REV] [--json] [--format text|github|sarif]\n"
     "         [--pg-version N]\n\n"
     "Lints every migration of the selected services, or with --since only the files added or changed\n"
     "since REV (the selection 'diff --since' makes; --rev compares with and reads from that revision).\n"
     "Each finding is 'file:line:col: rule: message' with a hint line; rules and their levels: "
     "docs/lint.md,\n"
     "[lint] in the manifest; '-- flotilla:lint-ignore RULE reason' before a statement (or\n"
     "'-- flotilla:lint-ignore-file RULE reason') silences one. --pg-version (default: [lint] pg_version,\n"
     "else 15) is the server version verdicts follow. No database is touched.\n"
     "Exit 0: no error-level finding (warnings allowed); 3: an error-level finding; 2: bad usage or a file\n"
     "that could not be read"},
    {"provision", cmd_provision,
     "create roles, databases, passwords and grants from the manifest (idempotent)",
     "flotilla [-m FILE] [-e ENV] provision [--dry-run] [--reset-passwords] [--prune]"},
    {"drift", cmd_drift, "compare history, live schema and grants with the repository (exit 3 on drift)",
     "flotilla [-m FILE] [-e ENV] drift [SERVICE...] [--json] [--html FILE] [--only history,schema,grants] "
     "[--shadow CONNINFO] [--no-column-order] [--no-comments]"},
    {"baseline", cmd_baseline, "mark an existing database as being at a version",
     "flotilla [-m FILE] [-e ENV] baseline SERVICE --version V"},
    {"repair", cmd_repair, "remove failed history rows and realign checksums and descriptions",
     "flotilla [-m FILE] [-e ENV] repair [SERVICE...]"},
    {"undo", cmd_undo, "apply undo (U) migrations in reverse order",
     "flotilla [-m FILE] [-e ENV] undo SERVICE [--to V]"},
    {"rotate", cmd_rotate, "generate a new password, hand it to the secret manager, then set it",
     "flotilla [-m FILE] [-e ENV] rotate SERVICE..."},
    {"manifest", cmd_manifest, "check the manifest or show it resolved (secrets shown as their source)",
     "flotilla [-m FILE] [-e ENV] manifest check|show [--json]"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *f)
{
	fprintf(f, "usage: flotilla [-m FILE] [-e ENV] COMMAND [ARGS...]\n\n"
	           "Migrates a fleet of PostgreSQL service databases from one TOML manifest.\n\n"
	           "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s%s\n", commands[i].name, commands[i].summary,
		        commands[i].run ? "" : " (not built yet)");
	fprintf(f, "\nOptions:\n"
	           "  -m, --manifest FILE  the manifest (default: flotilla.toml, else manifests/pcc.toml)\n"
	           "  -e, --env ENV        the environment (default: $FLOTILLA_ENV)\n"
	           "  -h, --help           this help; 'flotilla help COMMAND' for one command\n"
	           "  -V, --version        the version\n\n"
	           "Exit codes: 0 done / no drift, 1 a migration or connection failed, 2 bad usage,\n"
	           "manifest or migration files (nothing touched), 3 drift or lint errors found, 130 "
	           "interrupted.\n");
}

static const struct command *find_command(const char *name);

/* Roff for a line of our text: backslashes doubled, a leading dot or quote kept from being a request. */
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

/*
 * flotilla(1), written from the command table: the page, `--help` and
 * `help COMMAND` say the same because they are the same text. man/flotilla.1
 * is this output (a test keeps it so).
 */
static void print_man(FILE *f)
{
	fprintf(f,
	        ".\\\" generated by 'flotilla help --man' from cmd/flotilla.c; do not edit\n"
	        ".TH FLOTILLA 1 \"\" \"flotilla %s\" \"flotilla manual\"\n"
	        ".SH NAME\nflotilla \\- migrate a fleet of PostgreSQL service databases from one TOML "
	        "manifest\n"
	        ".SH SYNOPSIS\n.B flotilla\n[\\-m FILE] [\\-e ENV] COMMAND [ARGS...]\n"
	        ".SH DESCRIPTION\nflotilla reads a manifest (see\n.BR flotilla.toml (5))\nof services, "
	        "databases, owners, secrets and migration folders, provisions roles, databases and\n"
	        "grants, applies each service's Flyway\\-compatible migrations in parallel, and checks "
	        "for drift.\n"
	        ".SH OPTIONS\n"
	        ".TP\n.BR \\-m \", \" \\-\\-manifest \" FILE\"\nthe manifest (default: flotilla.toml, else "
	        "manifests/pcc.toml)\n"
	        ".TP\n.BR \\-e \", \" \\-\\-env \" ENV\"\nthe environment (default: $FLOTILLA_ENV)\n"
	        ".TP\n.BR \\-h \", \" \\-\\-help\nthe commands; \n.B flotilla help COMMAND\nfor one\n"
	        ".TP\n.BR \\-V \", \" \\-\\-version\nthe version\n"
	        ".SH COMMANDS\n",
	        FL_VERSION);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		fprintf(f, ".SS %s\n", commands[i].name);
		roff_line(f, commands[i].summary, strlen(commands[i].summary));
		fputs(".PP\n.nf\n", f);
		roff_text(f, commands[i].usage);
		fputs(".fi\n", f);
	}
	fputs(".SH EXIT STATUS\n0 done / no drift, 1 a migration or connection failed, 2 bad usage, manifest "
	      "or migration files (nothing was sent to any server), 3 problems found (drift, a refused "
	      "migration, validate or lint findings), 130 interrupted.\n"
	      ".SH ENVIRONMENT\n.TP\n.B FLOTILLA_ENV\nthe environment when \\-e is not given\n"
	      ".TP\n.B NO_COLOR\nno colours in the live view\n"
	      ".SH SEE ALSO\n.BR flotilla.toml (5),\n.BR psql (1)\n",
	      f);
}

/*
 * `flotilla __complete WORD...`: the words that may follow, one per line,
 * for the shell completions in completion/. Commands and their options come
 * from this table (an option is any --word in a command's usage), services
 * and environments from the manifest the words name (-m) or the default one.
 */
static int complete(int argc, char **argv)
{
	const char *manifest = NULL, *cmd = NULL, *prev = argc > 0 ? argv[argc - 1] : "";
	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--manifest") == 0) && i + 1 < argc)
			manifest = argv[++i];
		else if ((strcmp(argv[i], "-e") == 0 || strcmp(argv[i], "--env") == 0) && i + 1 < argc)
			i++;
		else if (!cmd && argv[i][0] != '-')
			cmd = argv[i];
	}
	if (strcmp(prev, "-m") == 0 || strcmp(prev, "--manifest") == 0)
		return FL_EXIT_OK; /* a file: the shell's own completion */
	if (manifest)
		fl_cli.manifest = manifest;
	bool want_envs = strcmp(prev, "-e") == 0 || strcmp(prev, "--env") == 0;
	const struct command *c = cmd ? find_command(cmd) : NULL;
	if (!want_envs && !c) {
		for (size_t i = 0; i < NCOMMANDS; i++)
			printf("%s\n", commands[i].name);
		printf("help\nversion\n-m\n--manifest\n-e\n--env\n--help\n--version\n");
		if (!(cmd && strcmp(cmd, "help") == 0))
			return FL_EXIT_OK;
	}
	if (c && !want_envs) {
		/* options: every --word of the usage, once */
		const char *u = c->usage;
		char seen[4096] = " ";
		for (const char *p = strstr(u, "--"); p; p = strstr(p + 2, "--")) {
			size_t n = 2;
			while (p[n] && (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z')))
				n++;
			char word[64];
			if (n <= 2 || n >= sizeof(word) - 2)
				continue;
			snprintf(word, sizeof(word), " %.*s ", (int)n, p);
			if (strstr(seen, word) || strlen(seen) + n + 2 >= sizeof(seen))
				continue;
			strcat(seen, word + 1);
			printf("%.*s\n", (int)n, p);
		}
		printf("--help\n");
	}
	/* services and environments of the manifest, when there is one that loads */
	const char *path = fl_cli_manifest_path();
	if (!path)
		return FL_EXIT_OK;
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, NULL, &err);
	fl_error_free(err);
	if (!m)
		return FL_EXIT_OK;
	if (want_envs)
		for (size_t i = 0; i < m->nenvs; i++)
			printf("%s\n", m->envs[i].name);
	else if (c)
		for (size_t i = 0; i < m->nservices; i++)
			printf("%s\n", m->services[i].name);
	fl_manifest_free(m);
	return FL_EXIT_OK;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int unknown_command(const char *name)
{
	const char *names[NCOMMANDS + 1];
	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	names[NCOMMANDS] = "help";
	const char *s = fl_text_suggest(name, names, NCOMMANDS + 1);
	if (s)
		fprintf(stderr, "flotilla: unknown command '%s'; did you mean '%s'?\n", name, s);
	else
		fprintf(stderr, "flotilla: unknown command '%s'; see 'flotilla --help'\n", name);
	return FL_EXIT_USAGE;
}

int fl_cli_help_command(const char *name)
{
	const struct command *c = find_command(name);
	if (!c)
		return unknown_command(name);
	printf("usage: %s\n\n%s.\n", c->usage, c->summary);
	if (!c->run)
		printf("\n'%s' is not built yet.\n", c->name);
	return FL_EXIT_OK;
}

int fl_cli_global_opt(int opt, const char *arg)
{
	switch (opt) {
	case 'm':
		fl_cli.manifest = arg;
		return 1;
	case 'e':
		fl_cli.env = arg;
		return 1;
	default:
		return 0;
	}
}

void fl_cli_print_errors(const fl_error *err)
{
	for (; err; err = err->next) {
		char *s = fl_error_format(err);
		fprintf(stderr, "%s\n", s);
		free(s);
	}
}

int fl_cli_exit_code(const fl_error *err)
{
	return err ? (int)err->kind : FL_EXIT_OK;
}

int fl_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "flotilla: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (cmd)
		fprintf(stderr, "try 'flotilla help %s'\n", cmd);
	else
		fprintf(stderr, "try 'flotilla --help'\n");
	return FL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    FL_CLI_GLOBAL_LONGOPTS,
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"verbose", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	/* before any thread exists, so that every thread inherits the blocked mask */
	fl_orch_signals_init();
	fl_cli.env = getenv("FLOTILLA_ENV");
	if (fl_cli.env && !*fl_cli.env)
		fl_cli.env = NULL;
	opterr = 0;
	int c;
	/* '+': stop at the command; its own options are its business */
	while ((c = getopt_long(argc, argv, "+:m:e:hVv", opts, NULL)) != -1) {
		if (fl_cli_global_opt(c, optarg))
			continue;
		switch (c) {
		case 'h':
			print_help(stdout);
			return FL_EXIT_OK;
		case 'V':
			printf("flotilla %s\n", FL_VERSION);
			return FL_EXIT_OK;
		case 'v':
			fl_cli.verbose++;
			break;
		case ':':
			return fl_cli_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fl_cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		print_help(stderr);
		return FL_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		if (optind + 1 >= argc) {
			print_help(stdout);
			return FL_EXIT_OK;
		}
		if (strcmp(argv[optind + 1], "--man") == 0) {
			print_man(stdout);
			return FL_EXIT_OK;
		}
		return fl_cli_help_command(argv[optind + 1]);
	}
	if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
		printf("flotilla %s\n", FL_VERSION);
		return FL_EXIT_OK;
	}
	if (strcmp(name, "__complete") == 0)
		return complete(argc - optind - 1, argv + optind + 1);
	const struct command *cmd = find_command(name);
	if (!cmd)
		return unknown_command(name);
	if (!cmd->run) {
		fprintf(stderr, "flotilla: '%s' is not built yet in flotilla %s\n", name, FL_VERSION);
		return FL_EXIT_USAGE;
	}
	/* each command parses from its own name on; optind = 0 resets getopt */
	int first = optind;
	optind = 0;
	return cmd->run(argc - first, argv + first);
}
