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

/* The shell completions: commands, a command's options, services and environments of the manifest. */
static char *complete_words(const char *words, int cword)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && bash -c 'source completion/flotilla.bash; COMP_WORDS=(%s %s); COMP_CWORD=%d; "
	         "_flotilla; printf \"%%s \" \"${COMPREPLY[@]}\"'",
	         th_top(), getenv("FLOTILLA_BIN"), words, cword);
	char *out = NULL;
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	return out;
}

Test(cli, bash_completion_from_the_command_table)
{
	char *o = complete_words("mig", 1);
	cr_assert_str_eq(o, "migrate ");
	free(o);
	o = complete_words("-m manifests/pcc.toml migrate au", 4);
	cr_assert_str_eq(o, "auth ");
	free(o);
	o = complete_words("-m manifests/pcc.toml migrate --fail", 4);
	cr_assert_str_eq(o, "--fail-fast ");
	free(o);
	o = complete_words("-m manifests/pcc.toml -e \"\"", 4);
	cr_assert(th_contains(o, "devtest") && th_contains(o, "prod") && th_contains(o, "local"), "%s", o);
	free(o);
}

/* flotilla(1) is what `flotilla help --man` writes from the command table, and it renders. */
Test(cli, man_page_is_the_command_table)
{
	char *out = NULL, *err = NULL;
	int rc = th_run(NULL, NULL, &out, &err, (const char *const[]){"flotilla", "help", "--man", NULL});
	cr_assert_eq(rc, 0);
	char path[1024];
	snprintf(path, sizeof(path), "%s/man/flotilla.1", th_top());
	char *page = th_read(path);
	cr_assert_str_eq(page, out, "man/flotilla.1 is stale: run 'make man'");
	free(page);
	free(out);
	free(err);
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "cd '%s' && MANWIDTH=80 man -l man/flotilla.1 2>/dev/null | col -b",
	         th_top());
	char *shown = NULL;
	cr_assert_eq(th_sh(cmd, &shown), 0, "%s", shown);
	cr_assert(th_contains(shown, "--fail-fast"), "%s", shown);
	cr_assert(th_contains(shown, "EXIT STATUS"), "%s", shown);
	free(shown);
	/* groff's own warnings: none */
	snprintf(cmd, sizeof(cmd), "cd '%s' && groff -man -Tutf8 -ww -z man/flotilla.1 2>&1", th_top());
	char *warn = NULL;
	cr_assert_eq(th_sh(cmd, &warn), 0, "%s", warn);
	cr_assert_str_eq(warn, "", "groff warns: %s", warn);
	free(warn);
}

/* Every option a fleet command's help names is one its parser takes. */
Test(cli, help_names_only_options_the_parser_takes)
{
	static const char *const cmds[] = {"migrate", "status", "validate", "plan"};
	for (size_t k = 0; k < 4; k++) {
		char *out = NULL, *err = NULL;
		th_run(NULL, NULL, &out, &err, (const char *const[]){"flotilla", "help", cmds[k], NULL});
		for (const char *p = strstr(out, "--"); p; p = strstr(p + 2, "--")) {
			char opt[64];
			size_t n = 2;
			while (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z'))
				n++;
			if (n <= 2 || n >= sizeof(opt))
				continue;
			snprintf(opt, sizeof(opt), "%.*s", (int)n, p);
			char *o2 = NULL, *e2 = NULL;
			th_run(NULL, NULL, &o2, &e2,
			       (const char *const[]){"flotilla", cmds[k], opt, "x", NULL});
			cr_assert(!th_contains(e2, "unknown option"), "%s %s: %s", cmds[k], opt, e2);
			free(o2);
			free(e2);
		}
		free(out);
		free(err);
	}
}
