/* Secrets: each source, precedence, failures that name the secret but never
 * show it, the time limit, and no value in any output of `manifest`. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "secret.h"

static fl_secret *ok(const fl_secret_ref *ref, fl_error **warnings)
{
	fl_secret *s = NULL;
	fl_error *err = NULL;
	int r = fl_secret_resolve(ref, "password of service auth", &s, warnings, &err);
	cr_assert_eq(r, 0, "resolve failed: %s", err ? err->msg : "?");
	cr_assert_null(err);
	cr_assert_not_null(s);
	cr_assert_eq(strlen(s->data), s->len);
	return s;
}

static fl_error *fails(const fl_secret_ref *ref)
{
	fl_secret *s = NULL;
	fl_error *err = NULL;
	int r = fl_secret_resolve(ref, "password of service auth", &s, NULL, &err);
	cr_assert_eq(r, -1);
	cr_assert_null(s);
	cr_assert_not_null(err);
	cr_assert_eq(err->kind, FL_EINPUT);
	return err;
}

static char *write_secret(const char *dir, const char *name, const char *content, mode_t mode)
{
	th_write(dir, name, content);
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	cr_assert_eq(chmod(p, mode), 0);
	return p;
}

Test(secret, env_source)
{
	setenv("FL_TEST_PW", "from env ", 1);
	fl_secret_ref ref = {.env = "FL_TEST_PW"};
	fl_secret *s = ok(&ref, NULL);
	/* a variable is taken as it is */
	cr_assert_str_eq(s->data, "from env ");
	fl_secret_free(s);
	/* but a line break is no part of any password */
	setenv("FL_TEST_PW", "from env\n", 1);
	fl_error *e = fails(&ref);
	cr_assert_str_eq(e->msg,
	                 "password of service auth <env FL_TEST_PW>: the value holds a line break, which "
	                 "no password can; if the secret holds more than the password, pick the field "
	                 "with json = \"...\"");
	fl_error_free(e);
	unsetenv("FL_TEST_PW");
	e = fails(&ref);
	cr_assert_str_eq(e->msg, "password of service auth <env FL_TEST_PW>: the variable is not set");
	cr_assert_null(e->file);
	fl_error_free(e);
	setenv("FL_TEST_PW", "", 1);
	e = fails(&ref);
	cr_assert_str_eq(e->msg, "password of service auth <env FL_TEST_PW>: the variable is empty");
	fl_error_free(e);
}

Test(secret, file_source_and_newlines)
{
	char *dir = th_tmpdir();
	char *p = write_secret(dir, "pw", "s3cret\n", 0600);
	fl_secret_ref ref = {.file = p};
	fl_error *warn = NULL;
	fl_secret *s = ok(&ref, &warn);
	cr_assert_str_eq(s->data, "s3cret");
	cr_assert_eq(s->len, 6);
	cr_assert_null(warn, "a 0600 file must not warn");
	fl_secret_free(s);
	/* exactly one trailing newline goes, \n or \r\n */
	free(p);
	p = write_secret(dir, "pw2", "two\n\n", 0600);
	ref.file = p;
	fl_error *e2 = fails(&ref);
	cr_assert(th_contains(e2->msg, "the value holds a line break"), "%s", e2->msg);
	fl_error_free(e2);
	free(p);
	p = write_secret(dir, "pw3", "crlf\r\n", 0600);
	ref.file = p;
	s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "crlf");
	fl_secret_free(s);
	free(p);
	p = write_secret(dir, "empty", "\n", 0600);
	ref.file = p;
	fl_error *e = fails(&ref);
	char want[1200];
	snprintf(want, sizeof(want), "password of service auth <file %s>: the file is empty", p);
	cr_assert_str_eq(e->msg, want);
	fl_error_free(e);
	free(p);
	snprintf(want, sizeof(want), "%s/missing", dir);
	ref.file = want;
	e = fails(&ref);
	cr_assert(th_contains(e->msg, "cannot open the file: No such file or directory"), "%s", e->msg);
	fl_error_free(e);
	free(dir);
}

Test(secret, readable_file_warns)
{
	char *dir = th_tmpdir();
	char *p = write_secret(dir, "pw", "value-in-readable-file\n", 0644);
	fl_secret_ref ref = {.file = p, .origin = "m.toml", .line = 7, .col = 12};
	fl_error *warn = NULL;
	fl_secret *s = ok(&ref, &warn);
	cr_assert_str_eq(s->data, "value-in-readable-file");
	cr_assert_not_null(warn);
	cr_assert_null(warn->next);
	char want[1200];
	snprintf(
	    want, sizeof(want),
	    "password of service auth <file %s>: the file is readable by others (mode 0644); chmod 600 it",
	    p);
	cr_assert_str_eq(warn->msg, want);
	cr_assert_str_eq(warn->file, "m.toml");
	cr_assert_eq(warn->line, 7);
	cr_assert_eq(warn->col, 12);
	cr_assert(!th_contains(warn->msg, "value-in-readable-file"));
	fl_error_free(warn);
	fl_secret_free(s);
	cr_assert_eq(chmod(p, 0640), 0);
	warn = NULL;
	s = ok(&ref, &warn);
	cr_assert(warn && th_contains(warn->msg, "readable by its group (mode 0640)"), "%s",
	          warn ? warn->msg : "");
	fl_error_free(warn);
	fl_secret_free(s);
	free(p);
	free(dir);
}

Test(secret, cmd_source)
{
	fl_secret_ref ref = {.cmd = "printf 'from cmd\\r\\n'"};
	fl_secret *s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "from cmd");
	fl_secret_free(s);
	ref.cmd = "printf 'a\\n\\n'";
	fl_error *e2 = fails(&ref);
	cr_assert(th_contains(e2->msg, "the value holds a line break"), "%s", e2->msg);
	fl_error_free(e2);
	ref.cmd = "printf 'no newline'";
	s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "no newline");
	fl_secret_free(s);
	/* stdin is /dev/null: cat ends at once and prints nothing */
	ref.cmd = "cat";
	fl_error *e = fails(&ref);
	cr_assert_str_eq(e->msg, "password of service auth <cmd cat>: the command printed nothing on stdout");
	fl_error_free(e);
}

Test(secret, env_wins_over_cmd)
{
	char *dir = th_tmpdir();
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "touch %s/ran; echo from-cmd", dir);
	char ran[1200];
	snprintf(ran, sizeof(ran), "%s/ran", dir);
	fl_secret_ref ref = {.env = "FL_TEST_PW2", .cmd = cmd};
	setenv("FL_TEST_PW2", "from-env", 1);
	fl_secret *s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "from-env");
	fl_secret_free(s);
	cr_assert(access(ran, F_OK) != 0, "the command ran although the variable was set");
	setenv("FL_TEST_PW2", "", 1);
	s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "from-cmd");
	fl_secret_free(s);
	cr_assert(access(ran, F_OK) == 0);
	unsetenv("FL_TEST_PW2");
	s = ok(&ref, NULL);
	cr_assert_str_eq(s->data, "from-cmd");
	fl_secret_free(s);
	char *d = fl_secret_describe(&ref);
	char want[1400];
	snprintf(want, sizeof(want), "<env FL_TEST_PW2 or cmd %s>", cmd);
	cr_assert_str_eq(d, want);
	free(d);
	free(dir);
}

Test(secret, cmd_failure_names_status_and_stderr_not_value)
{
	fl_secret_ref ref = {
	    .cmd =
	        "printf 'MARK%s' ER-4711; echo; echo \"denied for MARK\"ER-4711 >&2; echo second >&2; exit 3",
	    .origin = "pcc.toml",
	    .line = 3,
	    .col = 20,
	};
	fl_error *e = fails(&ref);
	cr_assert(!th_contains(e->msg, "MARKER-4711"), "the value leaked: %s", e->msg);
	cr_assert(th_contains(e->msg, "password of service auth <cmd "), "%s", e->msg);
	cr_assert(
	    th_contains(e->msg, ">: the command failed with exit status 3: denied for *********** | second"),
	    "%s", e->msg);
	cr_assert_str_eq(e->file, "pcc.toml");
	cr_assert_eq(e->line, 3);
	cr_assert_eq(e->col, 20);
	fl_error_free(e);

	fl_secret_ref sig = {.cmd = "kill -9 $$"};
	e = fails(&sig);
	cr_assert(th_contains(e->msg, "the command was killed by signal 9 (Killed): (nothing on stderr)"),
	          "%s", e->msg);
	fl_error_free(e);

	fl_secret_ref nf = {.cmd = "/nonexistent/gcloud secrets versions access latest"};
	e = fails(&nf);
	cr_assert(th_contains(e->msg, "failed with exit status 127: "), "%s", e->msg);
	cr_assert(th_contains(e->msg, "/nonexistent/gcloud"), "%s", e->msg);
	fl_error_free(e);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool gone(pid_t pid)
{
	if (kill(pid, 0) != 0)
		return errno == ESRCH;
	/* reparented and not reaped yet: a zombie is dead too */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	char buf[512] = {0};
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

Test(secret, timeout_kills_the_process_group, .timeout = 30)
{
	char *dir = th_tmpdir();
	char cmd[1200];
	/* the background sleep keeps the pipes open: only killing the group ends it */
	snprintf(cmd, sizeof(cmd), "sleep 20 & echo $! > %s/bg; sleep 20; echo late", dir);
	fl_secret_ref ref = {.cmd = cmd, .timeout_ms = 700};
	long long t0 = now_ms();
	fl_error *e = fails(&ref);
	long long took = now_ms() - t0;
	cr_assert(took >= 650 && took < 5000, "took %lld ms", took);
	cr_assert(
	    th_contains(e->msg, ">: the command did not finish within 700 ms; its process group was killed"),
	    "%s", e->msg);
	fl_error_free(e);
	char bgp[1200];
	snprintf(bgp, sizeof(bgp), "%s/bg", dir);
	char *bg = th_read(bgp);
	pid_t pid = (pid_t)atoi(bg);
	cr_assert_gt(pid, 1);
	bool dead = false;
	for (int i = 0; i < 100 && !dead; i++) {
		dead = gone(pid);
		if (!dead)
			usleep(20000);
	}
	cr_assert(dead, "the background process %d survived the timeout", (int)pid);
	free(bg);
	free(dir);

	fl_secret_ref whole = {.cmd = "sleep 5", .timeout_ms = 1000};
	e = fails(&whole);
	cr_assert(th_contains(e->msg, "did not finish within 1 s;"), "%s", e->msg);
	fl_error_free(e);
}

Test(secret, describe)
{
	fl_secret_ref a = {.env = "AUTH_DB_PASSWORD"};
	fl_secret_ref b = {.file = "/etc/pcc/auth"};
	fl_secret_ref c = {.cmd = "gcloud secrets versions access latest --secret=x\necho"};
	const fl_secret_ref *refs[] = {&a, &b, &c};
	const char *want[] = {"<env AUTH_DB_PASSWORD>", "<file /etc/pcc/auth>",
	                      "<cmd gcloud secrets versions access latest --secret=x\\necho>"};
	for (int i = 0; i < 3; i++) {
		char *d = fl_secret_describe(refs[i]);
		cr_assert_str_eq(d, want[i]);
		free(d);
	}
	fl_secret_ref copy = {0};
	fl_secret_ref_copy(&copy, &c);
	cr_assert_str_eq(copy.cmd, c.cmd);
	cr_assert_neq(copy.cmd, c.cmd);
	fl_secret_ref_clear(&copy);
	cr_assert_null(copy.cmd);
}

/* ---- no value in any output of the command ---- */

#define MARKER "Xq7-SECRET-MARKER-9fz"

static void write_manifest(const char *dir, const char *admin_pw, const char *svc_pw)
{
	char text[4096];
	snprintf(text, sizeof(text),
	         "version = 1\nproject = \"leak\"\n"
	         "[environments.t]\n"
	         "admin = { user = \"admin\", password = %s }\n"
	         "migrator = { user = \"mig\" }\n"
	         "[services.auth]\n"
	         "database = \"auth_db\"\nowner = \"auth_owner\"\nmigrations = \".\"\n"
	         "password = %s\n",
	         admin_pw, svc_pw);
	th_write(dir, "flotilla.toml", text);
}

/* Runs every manifest command; asserts the marker is in none of the outputs
 * and returns the exit status of `check --secrets`. */
static int run_all(const char *dir, const char *const *env, int want_check, char **secrets_err)
{
	static const char *const cmds[][4] = {
	    {"manifest", "check", NULL, NULL},
	    {"manifest", "show", NULL, NULL},
	    {"manifest", "show", "--json", NULL},
	    {"manifest", "check", "--secrets", NULL},
	};
	int rc_secrets = -1;
	for (size_t i = 0; i < 4; i++) {
		const char *argv[] = {"flotilla", "-e", "t", cmds[i][0], cmds[i][1], cmds[i][2], NULL};
		char *out, *err;
		int rc = th_run(dir, env, &out, &err, argv);
		cr_assert(!th_contains(out, MARKER), "the secret is in the stdout of %s %s %s:\n%s",
		          cmds[i][0], cmds[i][1], cmds[i][2] ? cmds[i][2] : "", out);
		cr_assert(!th_contains(err, MARKER), "the secret is in the stderr of %s %s %s:\n%s",
		          cmds[i][0], cmds[i][1], cmds[i][2] ? cmds[i][2] : "", err);
		if (i < 3)
			cr_assert_eq(rc, want_check, "%s %s: exit %d\n%s", cmds[i][0], cmds[i][1], rc, err);
		if (i == 3) {
			rc_secrets = rc;
			if (secrets_err)
				*secrets_err = strdup(err);
		}
		free(out);
		free(err);
	}
	return rc_secrets;
}

Test(secret, never_in_output_env)
{
	char *dir = th_tmpdir();
	write_manifest(dir, "{ env = \"FL_LEAK_ADMIN\" }", "{ env = \"FL_LEAK_AUTH\", cmd = \"exit 9\" }");
	const char *env[] = {"FL_LEAK_ADMIN=" MARKER, "FL_LEAK_AUTH=" MARKER "-auth", NULL};
	char *err = NULL;
	cr_assert_eq(run_all(dir, env, 0, &err), 0, "%s", err);
	free(err);
	/* the variable unset: the cmd runs and fails, the message names the variable */
	const char *env2[] = {"FL_LEAK_ADMIN=" MARKER, NULL};
	cr_assert_eq(run_all(dir, env2, 0, &err), 2);
	cr_assert_str_eq(err,
	                 "flotilla.toml:10:12: password of service auth <env FL_LEAK_AUTH or cmd exit 9>: "
	                 "the command failed with exit status 9: (nothing on stderr)\n");
	free(err);
	free(dir);
}

Test(secret, never_in_output_file)
{
	char *dir = th_tmpdir();
	char *p = write_secret(dir, "admin.pw", MARKER "\n", 0600);
	free(p);
	p = write_secret(dir, "auth.pw", MARKER "-auth\n", 0644);
	free(p);
	write_manifest(dir, "{ file = \"admin.pw\" }", "{ file = \"auth.pw\" }");
	char *err = NULL;
	cr_assert_eq(run_all(dir, NULL, 0, &err), 0, "%s", err);
	char want[2000];
	snprintf(
	    want, sizeof(want),
	    "flotilla.toml:10:12: warning: password of service auth <file %s/auth.pw>: the file is readable "
	    "by others (mode 0644); chmod 600 it\n",
	    dir);
	cr_assert_str_eq(err, want);
	free(err);
	/* unreadable: the failure names the file, not its content */
	cr_assert_eq(chmod(strcat(strcpy(want, dir), "/auth.pw"), 0), 0);
	if (geteuid() != 0) {
		cr_assert_eq(run_all(dir, NULL, 0, &err), 2);
		cr_assert(th_contains(err, "cannot open the file: Permission denied"), "%s", err);
		free(err);
	}
	free(dir);
}

Test(secret, never_in_output_cmd)
{
	char *dir = th_tmpdir();
	/* the command prints the marker without holding it, so that showing the command is fair */
	write_manifest(dir, "{ cmd = \"printf '%s%s' Xq7-SECRET- MARKER-9fz\" }",
	               "{ cmd = \"printf '%s%s\\\\n' Xq7-SECRET- MARKER-9fz-auth\" }");
	char *err = NULL;
	cr_assert_eq(run_all(dir, NULL, 0, &err), 0, "%s", err);
	cr_assert_str_empty(err);
	free(err);
	/* a failing command that printed the value, also on stderr */
	write_manifest(dir, "{ cmd = \"printf '%s%s' Xq7-SECRET- MARKER-9fz\" }",
	               "{ cmd = \"printf '%s%s\\\\n' Xq7-SECRET- MARKER-9fz; printf 'oops: %s%s\\\\n' "
	               "Xq7-SECRET- MARKER-9fz >&2; exit 4\" }");
	cr_assert_eq(run_all(dir, NULL, 0, &err), 2);
	cr_assert(th_contains(err, "the command failed with exit status 4: oops: *********************"),
	          "%s", err);
	free(err);
	free(dir);
}

Test(secret, never_in_output_when_written_into_the_manifest)
{
	char *dir = th_tmpdir();
	write_manifest(dir, "\"" MARKER "\"", "{ env = \"X\" }");
	char *err = NULL;
	/* every command refuses the manifest, without repeating the value */
	cr_assert_eq(run_all(dir, NULL, 2, &err), 2);
	cr_assert_str_eq(err,
	                 "flotilla.toml:4:38: \"password\" must say where the password comes from, such as "
	                 "{ env = \"NAME\" }, { file = \"path\" } or { cmd = \"command\" }; never write a "
	                 "password into the manifest\n");
	free(err);
	th_write(dir, "flotilla.toml",
	         "version = 1\nproject = \"leak\"\n[environments.t]\nadmin = { user = \"admin\" }\n"
	         "migrator = { user = \"mig\" }\noptions = { password = \"" MARKER "\" }\n"
	         "[services.auth]\ndatabase = \"auth_db\"\nowner = \"auth_owner\"\nmigrations = \".\"\n"
	         "password = { value = \"" MARKER "\" }\n");
	cr_assert_eq(run_all(dir, NULL, 2, &err), 2);
	cr_assert(th_contains(err, "\"password\" cannot be a libpq option"), "%s", err);
	cr_assert(th_contains(err, "unknown key \"value\" in [services.auth.password]"), "%s", err);
	free(err);
	free(dir);
}
