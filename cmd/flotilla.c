/*
 * flotilla: the program: the global options, dispatch to cmd/<command>.c,
 * and the messages every command prints the same way. The command table and
 * the help written from it are in options.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "orchestrate.h"
#include "text.h"

struct fl_cli_globals fl_cli;

static int unknown_command(const char *name)
{
	const char *names[64];
	size_t n = 0;
	for (; n < fl_cli_ncommands && n < 64; n++)
		names[n] = fl_cli_commands[n].name;
	const char *s = fl_text_suggest(name, names, n);
	if (s)
		fprintf(stderr, "flotilla: unknown command '%s'; did you mean '%s'?\n", name, s);
	else
		fprintf(stderr, "flotilla: unknown command '%s'; see 'flotilla --help'\n", name);
	return FL_EXIT_USAGE;
}

int fl_cli_help_command(const char *name)
{
	const fl_cli_command *c = fl_cli_command_find(name);
	if (!c)
		return unknown_command(name);
	fl_cli_print_command_help(stdout, c);
	return FL_EXIT_OK;
}

/* `flotilla help [COMMAND] [--man]` */
int cmd_help(int argc, char **argv)
{
	struct fl_help_args a = {0};
	int first, rc = fl_cli_parse(argc, argv, &a, &first);
	if (rc != FL_CLI_GO)
		return rc;
	if (a.man) {
		fl_cli_print_man(stdout);
		return FL_EXIT_OK;
	}
	if (first + 1 < argc)
		return fl_cli_usage(argc, argv, "unexpected argument '%s'", argv[first + 1]);
	if (first < argc)
		return fl_cli_help_command(argv[first]);
	fl_cli_print_help(stdout);
	return FL_EXIT_OK;
}

int cmd_version(int argc, char **argv)
{
	struct fl_none_args a;
	int first, rc = fl_cli_parse(argc, argv, &a, &first);
	if (rc != FL_CLI_GO)
		return rc;
	printf("flotilla %s\n", FL_VERSION);
	return FL_EXIT_OK;
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
	/* before any thread exists, so that every thread inherits the blocked mask */
	fl_orch_signals_init();
	fl_cli.env = getenv("FLOTILLA_ENV");
	if (fl_cli.env && !*fl_cli.env)
		fl_cli.env = NULL;
	int first, rc = fl_cli_parse_program(argc, argv, &first);
	if (rc != FL_CLI_GO)
		return rc;
	if (fl_cli.version) {
		printf("flotilla %s\n", FL_VERSION);
		return FL_EXIT_OK;
	}
	if (first >= argc) {
		fl_cli_print_help(stderr);
		return FL_EXIT_USAGE;
	}
	const char *name = argv[first];
	if (strcmp(name, "__complete") == 0)
		return fl_cli_complete(argc - first - 1, argv + first + 1);
	const fl_cli_command *cmd = fl_cli_command_find(name);
	if (!cmd)
		return unknown_command(name);
	/* each command parses from its own name on (fl_cli_parse starts getopt over) */
	return cmd->run(argc - first, argv + first);
}
