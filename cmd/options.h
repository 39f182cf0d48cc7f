/*
 * options: the one table of flotilla's commands and their options, and the
 * one parser. Parsing (fl_cli_parse, getopt_long underneath, so the
 * behaviour stays GNU's: permuted operands, --opt=value, unique prefixes),
 * `CMD --help`, `flotilla help CMD`, the man page flotilla(1) and the
 * completion words of `flotilla __complete` are all written from the table in
 * cmd/options.c, so they cannot disagree (tests/test_cli.c checks it by
 * running the program).
 *
 * HOW TO ADD AN OPTION: one line in the command's table in cmd/options.c,
 * and the field it fills in the command's argument struct below:
 *
 *     FL_OPT_INT(struct fl_fleet_args, connections, "connections", 0, "N", 1, 64,
 *                "connections per service (1-64)"),
 *
 * FL_OPT_FLAG (bool), FL_OPT_INT (int, parsed strictly against [min, max]),
 * FL_OPT_STR (const char *), FL_OPT_LIST (const char *, a comma-separated
 * list the command splits) take (struct, field, long name, short letter or 0,
 * [argument name, ] [min, max, ] help line). The field's type is checked at
 * compile time. A trailing `.complete = FL_COMPLETE_FILES` (services,
 * environments, files, or FL_COMPLETE_WORDS with `.words = "a b c"`, which
 * also restricts a FL_OPT_STR to those words), `.flags = FL_OPTF_REQUIRED` or
 * FL_OPTF_HIDDEN goes after the help line through the _X variants (see the
 * table for examples). Options shared by several commands are macros there
 * (FLEET_JSON, ...): one line per command that takes them.
 *
 * HOW TO ADD A COMMAND: one fl_cli_command entry in fl_cli_commands[] in
 * cmd/options.c (name, function, summary, operands, options, texts), its
 * argument struct here, and `int cmd_NAME(int, char **)` in cli.h. The
 * function starts with
 *
 *     struct fl_NAME_args a = {0};
 *     int first, rc = fl_cli_parse(argc, argv, &a, &first);
 *     if (rc != FL_CLI_GO)
 *             return rc;      (--help printed, or a usage error: exit 2)
 *
 * and finds its operands in argv[first..argc). A check of its own after
 * parsing reports through fl_cli_usage(argc, argv, ...), which prints the
 * same way (and the --json document when --json was given).
 *
 * For the options and commands being added beside this table, the lines
 * would be (field names are the new ones in the structs):
 *
 *   --shard I/N (fleet):   FL_OPT_STR(FA, shard, "shard", 0, "I/N", "this task's share of the services"),
 *   --html FILE (migrate): FL_OPT_STR_X(FA, html, "html", 0, "FILE", "also write the report as HTML",
 *                                       .complete = FL_COMPLETE_FILES),
 *   --connections N:       FL_OPT_INT(FA, connections, "connections", 0, "N", 1, 64, "connections at once"),
 *   baseline --from-alembic:
 *       FL_OPT_FLAG(FA, from_alembic, "from-alembic", 0, "the version alembic recorded"),
 *   init --from-flyway FILE...:
 *       {.name = "init", .run = cmd_init, .summary = "...", .operands = "FILE...",
 *        .operands_complete = FL_COMPLETE_FILES, .opts = init_opts, ...},
 *   import alembic SERVICE, report merge FILE...: an action word first, as
 *       manifest has (.operands = "alembic SERVICE", .operand_words = "alembic",
 *       .operands_complete = FL_COMPLETE_WORDS), the options in the table.
 */
#ifndef FL_CLI_OPTIONS_H
#define FL_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
	FL_OPT_FLAG = 1, /* no value; sets a bool */
	FL_OPT_INT,      /* an int from min to max, all digits, nothing else */
	FL_OPT_STR,      /* a string (with .words: one of them) */
	FL_OPT_LIST,     /* a comma-separated list, kept as written; the command splits it */
	FL_OPT_HELP,     /* -h, --help: prints the command's help, exit 0 */
} fl_opt_kind;

/* What the shell completes for an option's value or a command's operands. */
typedef enum {
	FL_COMPLETE_NONE = 0, /* nothing we know (a revision, a number) */
	FL_COMPLETE_FILES,    /* the shell's own file names */
	FL_COMPLETE_SERVICES, /* the services of the manifest */
	FL_COMPLETE_ENVS,     /* the environments of the manifest */
	FL_COMPLETE_WORDS,    /* .words */
	FL_COMPLETE_COMMANDS, /* flotilla's commands (help CMD) */
} fl_complete;

enum {
	FL_OPTF_REQUIRED = 1, /* the command needs it: "CMD needs --NAME ARG" */
	FL_OPTF_HIDDEN = 2,   /* accepted, not shown (for tests) */
	FL_OPTF_GLOBAL = 4,   /* the value goes into fl_cli (cli.h), not the command's struct */
};

typedef struct fl_opt {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	fl_opt_kind kind;
	const char *arg; /* the value's name in help ("N", "REV"); NULL for a flag */
	size_t offset;   /* of the value in the command's argument struct */
	long min, max;   /* FL_OPT_INT */
	const char *help;
	fl_complete complete;
	const char *words; /* FL_COMPLETE_WORDS: space-separated */
	unsigned flags;
} fl_opt;

/* The field's type is checked: a mismatch is a _Generic error at compile time. */
#define FL_OPT__AT(T, f, type) (offsetof(T, f) + 0 * sizeof(_Generic(((T *)0)->f, type : 1)))
#define FL_OPT_FLAG_X(T, f, lng, sh, hlp, ...)                                                               \
	{                                                                                                    \
		.name = lng, .short_name = sh, .kind = FL_OPT_FLAG, .offset = FL_OPT__AT(T, f, bool),        \
		.help = hlp, __VA_ARGS__                                                                     \
	}
#define FL_OPT_INT_X(T, f, lng, sh, argname, lo, hi, hlp, ...)                                               \
	{                                                                                                    \
		.name = lng, .short_name = sh, .kind = FL_OPT_INT, .arg = argname,                           \
		.offset = FL_OPT__AT(T, f, int), .min = lo, .max = hi, .help = hlp, __VA_ARGS__              \
	}
#define FL_OPT_STR_X(T, f, lng, sh, argname, hlp, ...)                                                       \
	{                                                                                                    \
		.name = lng, .short_name = sh, .kind = FL_OPT_STR, .arg = argname,                           \
		.offset = FL_OPT__AT(T, f, const char *), .help = hlp, __VA_ARGS__                           \
	}
#define FL_OPT_LIST_X(T, f, lng, sh, argname, hlp, ...)                                                      \
	{                                                                                                    \
		.name = lng, .short_name = sh, .kind = FL_OPT_LIST, .arg = argname,                          \
		.offset = FL_OPT__AT(T, f, const char *), .help = hlp, __VA_ARGS__                           \
	}
#define FL_OPT_FLAG(T, f, lng, sh, hlp)           FL_OPT_FLAG_X(T, f, lng, sh, hlp, .flags = 0)
#define FL_OPT_INT(T, f, lng, sh, a, lo, hi, hlp) FL_OPT_INT_X(T, f, lng, sh, a, lo, hi, hlp, .flags = 0)
#define FL_OPT_STR(T, f, lng, sh, a, hlp)         FL_OPT_STR_X(T, f, lng, sh, a, hlp, .flags = 0)
#define FL_OPT_LIST(T, f, lng, sh, a, hlp)        FL_OPT_LIST_X(T, f, lng, sh, a, hlp, .flags = 0)
#define FL_OPT_END                                                                                           \
	{                                                                                                    \
		.name = NULL                                                                                 \
	}

typedef struct fl_cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;  /* one line, no final period */
	const char *operands; /* synopsis of the operands ("[SERVICE...]"); NULL: none taken */
	fl_complete operands_complete;
	const char *operand_words; /* FL_COMPLETE_WORDS */
	const fl_opt *opts;        /* FL_OPT_END-terminated; -m, -e and -h are added to every command */
	bool env;                  /* the synopsis shows [-e ENV] (the command reads an environment) */
	const char *about;         /* paragraphs between the synopsis and the options */
	const char *more;          /* paragraphs after the options (exit codes) */
	/* The --json document of a usage error (NULL: {"command", "result": "invalid", ...}). */
	void (*usage_json)(const struct fl_cli_command *c, const char *msg);
	const char *reference; /* printed after the help (not in flotilla(1)): help manifest's keys */
} fl_cli_command;

/* flotilla.toml(5) as plain text (cmd/manifest_ref.c, written by `make man`). */
extern const char fl_cli_manifest_reference[];

extern const fl_cli_command fl_cli_commands[];
extern const size_t fl_cli_ncommands;
/* The program itself: the global options before the command. */
extern const fl_cli_command fl_cli_program;

const fl_cli_command *fl_cli_command_find(const char *name);

#define FL_CLI_GO (-1)
/*
 * Parses argv (argv[0]: the command's name; for fl_cli_program, "flotilla",
 * stopping at the first operand) into args, the command's struct, and the
 * global options into fl_cli. Returns FL_CLI_GO with *first set to the first
 * operand, or the exit code to return now: FL_EXIT_OK after --help,
 * FL_EXIT_USAGE after a usage error (printed, and under --json the command's
 * document on stdout).
 */
int fl_cli_parse(int argc, char **argv, void *args, int *first);
/* The same for the program's own options (argv[0]: its path), into fl_cli. */
int fl_cli_parse_program(int argc, char **argv, int *first);
/* A usage error found by the command after parsing: as the parser reports its own. */
int fl_cli_usage(int argc, char **argv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Help, man page and completion words, all from the table. */
void fl_cli_print_help(FILE *f);
void fl_cli_print_command_help(FILE *f, const fl_cli_command *c);
void fl_cli_print_man(FILE *f);
int fl_cli_complete(int argc, char **argv);

/* The argument structs, one per command (the fleet commands share one). */
struct fl_fleet_args {
	const char *target, *since, *rev, *to, *version, *shard;
	const char *html, *svg; /* migrate: the run's picture (core/timeline.h) */
	bool dry_run, json, fail_fast, no_provision, out_of_order, plain, from_alembic;
	int jobs, connections, shard_wait;
};
struct fl_init_args {
	const char *output;
	bool from_flyway, force;
};
struct fl_import_args {
	const char *alembic_dir, *config;
};
struct fl_diff_args {
	const char *since, *to;
	bool json;
};
struct fl_lint_args {
	const char *since, *rev, *format;
	bool json;
	int pg_version;
};
struct fl_drift_args {
	const char *html, *only, *shadow;
	bool json, keep_shadow, plain, no_column_order, no_comments;
	int jobs;
};
struct fl_provision_args {
	bool dry_run, reset_passwords, prune;
};
struct fl_manifest_args {
	bool json, secrets;
};
struct fl_help_args {
	bool man;
};
struct fl_none_args {
	char unused;
};

#endif
