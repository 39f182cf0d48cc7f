/* The program's front door: help, version, dispatch, exit codes, hints. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RUN(out, err, ...) th_run(NULL, NULL, out, err, (const char *const[]){"flotilla", __VA_ARGS__, NULL})

Test(cli, version)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "--version"), 0);
	cr_assert(strncmp(out, "flotilla ", 9) == 0, "got: %s", out);
	cr_assert_str_empty(err);
	free(out);
	free(err);
}

Test(cli, help_lists_every_command)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "--help"), 0);
	const char *cmds[] = {"migrate", "status",   "validate", "plan", "diff",   "provision",
	                      "drift",   "baseline", "repair",   "undo", "rotate", "manifest"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "\n  %-10s ", cmds[i]);
		cr_assert(th_contains(out, line), "help lacks %s:\n%s", cmds[i], out);
	}
	free(out);
	free(err);
}

Test(cli, no_command_is_usage_error)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "-e", "devtest"), 2);
	cr_assert(th_contains(err, "usage: flotilla"), "got: %s", err);
	free(out);
	free(err);
}

Test(cli, unknown_command_hint)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "migrat"), 2);
	cr_assert_str_eq(err, "flotilla: unknown command 'migrat'; did you mean 'migrate'?\n");
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "frobnicate"), 2);
	cr_assert_str_eq(err, "flotilla: unknown command 'frobnicate'; see 'flotilla --help'\n");
	free(out);
	free(err);
}

Test(cli, unknown_option)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "--frob", "status"), 2);
	cr_assert(th_contains(err, "flotilla: unknown option '--frob'"), "got: %s", err);
	free(out);
	free(err);
}

Test(cli, option_needs_value)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "-m"), 2);
	cr_assert(th_contains(err, "option '-m' needs a value"), "got: %s", err);
	free(out);
	free(err);
}

Test(cli, help_command)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "help", "migrate"), 0);
	cr_assert(th_contains(out, "usage: flotilla [-m FILE] [-e ENV] migrate"), "got: %s", out);
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "help", "drif"), 2);
	cr_assert(th_contains(err, "did you mean 'drift'?"), "got: %s", err);
	free(out);
	free(err);
}
