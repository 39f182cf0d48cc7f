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

/*
 * For every command, the options the parser takes (found by running the program with each
 * candidate option) are those --help, help CMD, the man page and the completion list:
 * tests/options_check.py says which differ.
 */
Test(cli, every_command_documents_exactly_the_options_it_takes, .timeout = 600)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "cd '%s' && /usr/bin/python3 tests/options_check.py 2>&1", th_top());
	char *out = NULL;
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "options_check:\n%s", out);
	cr_assert(th_contains(out, "options_check: ok ("), "%s", out);
	free(out);
}

/* Numbers are whole numbers in range, nothing else: a usage error, exit 2, the --json document. */
Test(cli, numbers_are_parsed_strictly)
{
	static const char *const bad[] = {"3x", "0", "", "1001", "-1", " 3", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out, *err;
		cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "status", "-j", bad[i]), 2, "-j '%s'",
		             bad[i]);
		char want[160];
		snprintf(want, sizeof(want),
		         "flotilla: -j needs a number from 1 to 1000, not '%s'\ntry 'flotilla help status'\n",
		         bad[i]);
		cr_assert_str_eq(err, want);
		cr_assert_str_empty(out);
		free(out);
		free(err);
	}
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "migrate", "--json", "--jobs=3x"), 2);
	cr_assert(th_contains(err, "flotilla: --jobs needs a number from 1 to 1000, not '3x'\n"), "%s", err);
	cr_assert(th_contains(out, "\"result\": \"invalid\""), "%s", out);
	cr_assert(th_contains(out, "\"message\": \"--jobs needs a number from 1 to 1000, not '3x'\""), "%s",
	          out);
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "drift", "--json", "-j", "2x"), 2);
	cr_assert(th_contains(out, "\"command\": \"drift\",\n  \"result\": \"invalid\""), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "lint", "--pg-version", "15x"), 2);
	cr_assert(th_contains(err, "flotilla: --pg-version needs a number from "), "%s", err);
	free(out);
	free(err);
	/* and a good one goes on to the next problem */
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "status", "-j", "1000"), 2);
	cr_assert(!th_contains(err, "needs a number"), "%s", err);
	free(out);
	free(err);
}

/* An option of another command is refused by name, with the commands that take it. */
Test(cli, another_commands_option_says_whose_it_is)
{
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "status", "--target", "3"), 2);
	cr_assert_str_eq(err, "flotilla: --target is for migrate, not status\ntry 'flotilla help status'\n");
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "provision", "--frob"), 2);
	cr_assert_str_eq(err,
	                 "flotilla: unknown option '--frob' for provision\ntry 'flotilla help provision'\n");
	free(out);
	free(err);
	cr_assert_eq(RUN(&out, &err, "-m", "/nonexistent.toml", "baseline", "auth"), 2);
	cr_assert_str_eq(
	    err,
	    "flotilla: baseline needs either --version V or --from-alembic\ntry 'flotilla help baseline'\n");
	free(out);
	free(err);
}

/* CMD --help is the whole help (not a pointer to it), the same as help CMD. */
Test(cli, command_help_is_complete_and_the_same_both_ways)
{
	static const char *const want[][2] = {
	    {"migrate", "  --out-of-order   apply files below the current version instead of refusing\n      "
	                "             them\n"},
	    {"migrate", "  --plain          one timestamped line per event instead of the live view\n"},
	    {"migrate", "  -j, --jobs N     services at once (1-1000; default one per service, at most 8;\n"},
	    {"plan", "  --json "},
	    {"validate", "  --json "},
	    {"provision", "  --reset-passwords  set every managed password again from its secret\n"},
	    {"manifest", "  --secrets  with check: also resolve every secret of the environment"},
	    {"lint", "  --format FORMAT  "},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char *o1, *e1, *o2, *e2;
		cr_assert_eq(RUN(&o1, &e1, want[i][0], "--help"), 0);
		cr_assert_eq(RUN(&o2, &e2, "help", want[i][0]), 0);
		cr_assert_str_eq(o1, o2);
		cr_assert(th_contains(o1, want[i][1]), "%s --help lacks '%s':\n%s", want[i][0], want[i][1],
		          o1);
		free(o1);
		free(e1);
		free(o2);
		free(e2);
	}
}

/* Completion of option values: fixed sets from the table, environments, nothing for a file. */
Test(cli, completion_of_option_values)
{
	char *o = complete_words("lint --format \"\"", 3);
	cr_assert_str_eq(o, "text github sarif json ");
	free(o);
	o = complete_words("-m manifests/pcc.toml drift --only \"\"", 5);
	cr_assert_str_eq(o, "history schema grants ");
	free(o);
	o = complete_words("-m manifests/pcc.toml manifest ch", 4);
	cr_assert_str_eq(o, "check ");
	free(o);
	o = complete_words("-m manifests/pcc.toml migrate --env de", 5);
	cr_assert_str_eq(o, "devtest ");
	free(o);
	o = complete_words("help dri", 2);
	cr_assert_str_eq(o, "drift ");
	free(o);
}

/* `help manifest` ends with flotilla.toml(5) as text: the reference is written once, in the page. */
Test(cli, help_manifest_shows_the_manifest_reference)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "cd '%s' && groff -man -Tascii -P-cbou -rHY=0 man/flotilla.toml.5",
	         th_top());
	char *page = NULL;
	cr_assert_eq(th_sh(cmd, &page), 0, "%s", page);
	cr_assert(th_contains(page, "[environments.NAME]") || th_contains(page, "environments"), "%s", page);
	char *out, *err;
	cr_assert_eq(RUN(&out, &err, "help", "manifest"), 0);
	size_t n = strlen(out), k = strlen(page);
	cr_assert(n > k && strcmp(out + n - k, page) == 0,
	          "help manifest does not end with flotilla.toml(5) as text: run 'make man'\n%s", out);
	cr_assert(strncmp(out, "usage: flotilla [-m FILE] [-e ENV] manifest check|show", 54) == 0, "%s", out);
	free(out);
	free(err);
	free(page);
}
