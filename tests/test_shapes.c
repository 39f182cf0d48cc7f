/* Secrets as teams store them (JSON fields, connection URLs), refused
 * shapes with their fix, FIFOs under secret_timeout, parallel resolution,
 * and the child-process runner's promises (clean environment, descriptors,
 * signals). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"
#include "secret.h"

static fl_secret *ok(const fl_secret_ref *ref)
{
	fl_secret *s = NULL;
	fl_error *err = NULL;
	int r = fl_secret_resolve(ref, "password of service auth", &s, NULL, &err);
	cr_assert_eq(r, 0, "resolve failed: %s", err ? err->msg : "?");
	return s;
}

static fl_error *fails(const fl_secret_ref *ref)
{
	fl_secret *s = NULL;
	fl_error *err = NULL;
	cr_assert_eq(fl_secret_resolve(ref, "password of service auth", &s, NULL, &err), -1);
	cr_assert_null(s);
	cr_assert_not_null(err);
	return err;
}

Test(shapes, json_field_and_dotted_path)
{
	setenv("FL_SH_JSON",
	       "{\"username\": \"auth_api_user\", \"password\": \"pa55-word\", \"db\": {\"pw\": "
	       "\"inner\"}, \"n\": 5}",
	       1);
	fl_secret_ref ref = {.env = "FL_SH_JSON", .json = "password"};
	fl_secret *s = ok(&ref);
	cr_assert_str_eq(s->data, "pa55-word");
	fl_secret_free(s);
	ref.json = "db.pw";
	s = ok(&ref);
	cr_assert_str_eq(s->data, "inner");
	fl_secret_free(s);

	ref.json = "secret";
	fl_error *e = fails(&ref);
	cr_assert_str_eq(e->msg,
	                 "password of service auth <env FL_SH_JSON, field secret>: json = \"secret\": no "
	                 "field \"secret\" in the document; it has \"username\", \"password\", \"db\", "
	                 "\"n\"");
	fl_error_free(e);
	ref.json = "n";
	e = fails(&ref);
	cr_assert(th_contains(e->msg, "json = \"n\": the field is a number, not a string"), "%s", e->msg);
	fl_error_free(e);
	ref.json = "username.x";
	e = fails(&ref);
	cr_assert(th_contains(e->msg, "\"username\" is not an object"), "%s", e->msg);
	fl_error_free(e);

	setenv("FL_SH_JSON", "not json pa55-word", 1);
	ref.json = "password";
	e = fails(&ref);
	cr_assert(th_contains(e->msg, "needs a JSON document, and the value is not one"), "%s", e->msg);
	cr_assert_not(th_contains(e->msg, "pa55"), "%s", e->msg);
	fl_error_free(e);
	unsetenv("FL_SH_JSON");
}

Test(shapes, a_multi_line_json_file_with_json_key)
{
	char *dir = th_tmpdir();
	th_write(dir, "creds.json", "{\n  \"username\": \"u\",\n  \"password\": \"from-file\"\n}\n");
	char path[700];
	snprintf(path, sizeof(path), "%s/creds.json", dir);
	chmod(path, 0600);
	fl_secret_ref ref = {.file = path, .json = "password"};
	fl_secret *s = ok(&ref);
	cr_assert_str_eq(s->data, "from-file");
	fl_secret_free(s);
	/* without json = ..., the hint says what to add */
	ref.json = NULL;
	fl_error *e = fails(&ref);
	cr_assert(th_contains(e->msg,
	                      "the value holds a line break, which no password can; it looks like JSON: "
	                      "add json = \"password\" (the field that holds it)"),
	          "%s", e->msg);
	cr_assert_not(th_contains(e->msg, "from-file"), "%s", e->msg);
	fl_error_free(e);
	free(dir);
}

Test(shapes, wrong_shapes_get_the_fix)
{
	/* the value is made by the command, so the command (shown in messages) does not hold it */
	fl_secret_ref ref = {.cmd = "printf '{\"password\": \"zz-%s\"}' top-secret"};
	fl_error *e = fails(&ref);
	cr_assert(th_contains(e->msg,
	                      "the value is a JSON document, not a bare password; it looks like JSON: add "
	                      "json = \"password\""),
	          "%s", e->msg);
	cr_assert_not(th_contains(e->msg, "zz-top"), "%s", e->msg);
	fl_error_free(e);
	ref.cmd = "printf 'postgresql+asyncpg://u:zz-%s@/db?host=/cloudsql/p:r:i' top-secret";
	e = fails(&ref);
	cr_assert(th_contains(e->msg,
	                      "the value is a connection URL, not a bare password; it looks like a URL: "
	                      "use url = { ... } in place of password"),
	          "%s", e->msg);
	cr_assert_not(th_contains(e->msg, "zz-top"), "%s", e->msg);
	fl_error_free(e);
	ref.cmd = "printf 'ab\\000cd'";
	e = fails(&ref);
	cr_assert(th_contains(e->msg, "NUL byte"), "%s", e->msg);
	fl_error_free(e);
	/* a password that merely starts with a brace is a password */
	ref.cmd = "echo '{not-json'";
	fl_secret *s = ok(&ref);
	cr_assert_str_eq(s->data, "{not-json");
	fl_secret_free(s);
}

static void url_ok(const char *url, fl_conn_url *u)
{
	fl_error *err = NULL;
	cr_assert_eq(fl_conn_url_parse(url, strlen(url), u, &err), 0, "%s: %s", url, err ? err->msg : "?");
}

static void url_bad(const char *url, const char *want)
{
	fl_conn_url u;
	fl_error *err = NULL;
	cr_assert_eq(fl_conn_url_parse(url, strlen(url), &u, &err), -1, "%s parsed", url);
	cr_assert(th_contains(err->msg, want), "%s: %s", url, err->msg);
	cr_assert_not(th_contains(err->msg, "hunter2"), "%s", err->msg);
	cr_assert_eq(err->kind, FL_EINPUT);
	fl_error_free(err);
}

Test(shapes, url_forms)
{
	fl_conn_url u;
	url_ok("postgresql://flyway_user:p%40ss%3Aword@10.0.0.5:5433/auth_db?sslmode=require", &u);
	cr_assert_str_eq(u.host, "10.0.0.5");
	cr_assert_str_eq(u.port, "5433");
	cr_assert_str_eq(u.user, "flyway_user");
	cr_assert_str_eq(u.password, "p@ss:word");
	cr_assert_str_eq(u.dbname, "auth_db");
	cr_assert_str_eq(u.sslmode, "require");
	fl_conn_url_clear(&u);

	url_ok("postgres://u@localhost/db", &u);
	cr_assert_str_eq(u.host, "localhost");
	cr_assert_null(u.password);
	cr_assert_null(u.port);
	fl_conn_url_clear(&u);

	url_ok("postgresql+asyncpg://svc:pw@/auth_db?host=/cloudsql/my-project:europe-west1:main", &u);
	cr_assert_str_eq(u.host, "/cloudsql/my-project:europe-west1:main");
	cr_assert_str_eq(u.user, "svc");
	cr_assert_str_eq(u.password, "pw");
	fl_conn_url_clear(&u);

	url_ok(
	    "jdbc:postgresql://127.0.0.1:5433/auth_db?user=flyway_user&password=pw%26x&application_name=ci",
	    &u);
	cr_assert_str_eq(u.user, "flyway_user");
	cr_assert_str_eq(u.password, "pw&x");
	cr_assert_eq(u.nopts, 1);
	cr_assert_str_eq(u.keys[0], "application_name");
	fl_conn_url_clear(&u);

	url_ok("postgresql://[::1]:5432/db", &u);
	cr_assert_str_eq(u.host, "::1");
	fl_conn_url_clear(&u);

	/* a password with an unencoded @: the last @ ends the userinfo */
	url_ok("postgresql://u:a@b@host/db", &u);
	cr_assert_str_eq(u.password, "a@b");
	cr_assert_str_eq(u.host, "host");
	fl_conn_url_clear(&u);
}

Test(shapes, url_parts_validated_without_the_password)
{
	url_bad("mysql://u:hunter2@h/db", "does not start with postgresql://");
	url_bad("postgresql://u:hunter2@h:99999/db", "has a port that is not a number from 1 to 65535");
	url_bad("postgresql://u:hunter2@h:54x/db", "has a port that is not a number");
	url_bad("postgresql://u:hunter2@h1,h2/db", "names several hosts");
	url_bad("postgresql://u:hunter2@h/db?ssl=true", "has a query parameter flotilla does not know");
	url_bad("postgresql://u:hunter2@h/db?sslmode=sometimes", "has an unknown sslmode");
	url_bad("postgresql://u:hunter2%zz@h/db", "has a bad %-escape in its user or password");
	url_bad("postgresql://u:hunter2@h/db#frag", "#fragment");
	url_bad("postgresql://u:hunter2@h/db\n", "a line break");
	url_bad("postgresql+://u:hunter2@h/db", "postgresql+DRIVER://");
}

Test(shapes, url_secret_resolves_and_never_shows_the_password)
{
	fl_secret_ref ref = {.cmd = "echo 'postgresql://u:hunter2@h:70000/db'", .kind = FL_SECRET_URL};
	fl_conn_url u;
	fl_error *err = NULL;
	cr_assert_eq(fl_secret_resolve_url(&ref, "connection of environment prod", &u, NULL, &err), -1);
	cr_assert_str_eq(err->msg,
	                 "connection of environment prod <cmd echo 'postgresql://u:hunter2@h:70000/db'>: "
	                 "the connection URL has a port that is not a number from 1 to 65535");
	fl_error_free(err);
	/* the reference's description shows the command, as written in the manifest, never its output */
	ref.cmd = "printf 'postgresql+psycopg2://u:%s@h/db?host=/sock' \"$(echo hunter2)\"";
	cr_assert_eq(fl_secret_resolve_url(&ref, "x", &u, NULL, &err), 0, "%s", err ? err->msg : "");
	cr_assert_str_eq(u.password, "hunter2");
	cr_assert_str_eq(u.host, "/sock");
	fl_conn_url_clear(&u);
}

Test(shapes, fifo_secret_ends_at_secret_timeout, .timeout = 30)
{
	char *dir = th_tmpdir();
	char path[700];
	snprintf(path, sizeof(path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	fl_secret_ref ref = {.file = path, .timeout_ms = 700};
	fl_error *e = fails(&ref);
	char want[1000];
	snprintf(want, sizeof(want),
	         "password of service auth <file %s>: the file (a FIFO) gave no end of data within 700 ms "
	         "(secret_timeout); is anything writing to it?",
	         path);
	cr_assert_str_eq(e->msg, want);
	fl_error_free(e);
	/* with a writer, the FIFO works like a file */
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = fopen(path, "w");
		if (f) {
			fputs("from-fifo\n", f);
			fclose(f);
		}
		_exit(0);
	}
	ref.timeout_ms = 10000;
	fl_secret *s = ok(&ref);
	cr_assert_str_eq(s->data, "from-fifo");
	fl_secret_free(s);
	int st;
	waitpid(pid, &st, 0);
	free(dir);
}

Test(shapes, a_cmd_sees_no_other_secret)
{
	char *dir = th_tmpdir();
	setenv("FL_SH_OTHER_SECRET", "other-service-password-123", 1);
	setenv("FL_SH_PASSED", "passed-on", 1);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "env > %s/env; echo pw-ok", dir);
	char *pass[] = {"FL_SH_PASSED", NULL};
	fl_secret_ref ref = {.cmd = cmd, .pass_env = pass};
	fl_secret *s = ok(&ref);
	cr_assert_str_eq(s->data, "pw-ok");
	fl_secret_free(s);
	char path[700];
	snprintf(path, sizeof(path), "%s/env", dir);
	char *env = th_read(path);
	cr_assert_not(th_contains(env, "other-service-password-123"), "%s", env);
	cr_assert_not(th_contains(env, "FL_SH_OTHER_SECRET"), "%s", env);
	cr_assert(th_contains(env, "FL_SH_PASSED=passed-on"), "%s", env);
	cr_assert(th_contains(env, "PATH="), "%s", env);
	free(env);
	unsetenv("FL_SH_OTHER_SECRET");
	unsetenv("FL_SH_PASSED");
	free(dir);
}

Test(shapes, proc_closes_descriptors_and_resets_signals)
{
	/* a descriptor without O_CLOEXEC and a blocked, ignored signal: none reach the child */
	int fd = dup(2);
	cr_assert(fd > 2);
	sigset_t b, old;
	sigemptyset(&b);
	sigaddset(&b, SIGUSR1);
	sigprocmask(SIG_BLOCK, &b, &old);
	signal(SIGUSR2, SIG_IGN);
	fl_proc p = {.shell_cmd = "ls /proc/self/fd | sort -n | tr '\\n' ' '; grep -E '^(SigBlk|SigIgn)' "
	                          "/proc/self/status >&2; cat",
	             .in = "fed-in",
	             .inlen = 6,
	             .timeout_ms = 10000};
	fl_error *err = NULL;
	cr_assert_eq(fl_proc_run(&p, &err), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGUSR2, SIG_DFL);
	close(fd);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0);
	/* ls's own directory descriptor is 3 */
	cr_assert_str_eq(p.out, "0 1 2 3 fed-in", "%s", p.out);
	cr_assert(th_contains(p.err, "SigBlk:\t0000000000000000"), "%s", p.err);
	/* glibc keeps its two internal signals (32, 33) as they are; every other is default */
	const char *ign = strstr(p.err, "SigIgn:\t");
	cr_assert_not_null(ign);
	unsigned long long mask = strtoull(ign + 8, NULL, 16);
	cr_assert_eq(mask & 0x7fffffffULL, 0, "%s", p.err);
	fl_proc_clear(&p);
}

Test(shapes, proc_kills_the_group_at_its_limit, .timeout = 30)
{
	char *dir = th_tmpdir();
	char cmd[1200];
	/* a grandchild that would outlive the shell if only the shell were killed */
	snprintf(cmd, sizeof(cmd), "(sleep 30; touch %s/survived) & sleep 30", dir);
	fl_proc p = {.shell_cmd = cmd, .timeout_ms = 500};
	fl_error *err = NULL;
	cr_assert_eq(fl_proc_run(&p, &err), 0);
	cr_assert(p.timed_out);
	fl_proc_clear(&p);
	char *d = fl_proc_describe_status(0);
	cr_assert_str_eq(d, "exit status 0");
	free(d);
	free(dir);
}

Test(shapes, ten_cmd_secrets_run_at_once, .timeout = 60)
{
	char *dir = th_tmpdir();
	enum { N = 10 };
	fl_secret_ref refs[N];
	fl_secret_job jobs[N];
	char cmds[N][1200];
	for (int i = 0; i < N; i++) {
		snprintf(cmds[i], sizeof(cmds[i]),
		         "date +%%s.%%N > %s/start%d; sleep 1; date +%%s.%%N > %s/end%d; echo pw-%d", dir, i,
		         dir, i, i);
		refs[i] = (fl_secret_ref){.cmd = cmds[i]};
		jobs[i] = (fl_secret_job){.ref = &refs[i], .what = "password"};
	}
	cr_assert_eq(fl_secret_resolve_many(jobs, N), 0);
	double latest_start = 0, earliest_end = 1e300;
	for (int i = 0; i < N; i++) {
		char want[16];
		snprintf(want, sizeof(want), "pw-%d", i);
		cr_assert_str_eq(jobs[i].out->data, want);
		fl_secret_free(jobs[i].out);
		char path[800];
		snprintf(path, sizeof(path), "%s/start%d", dir, i);
		char *t = th_read(path);
		double st = atof(t);
		free(t);
		snprintf(path, sizeof(path), "%s/end%d", dir, i);
		t = th_read(path);
		double en = atof(t);
		free(t);
		if (st > latest_start)
			latest_start = st;
		if (en < earliest_end)
			earliest_end = en;
	}
	/* every command had started before any had finished: they ran at the same time */
	cr_assert(latest_start < earliest_end, "latest start %.3f, earliest end %.3f", latest_start,
	          earliest_end);
	free(dir);
}

Test(shapes, resolve_many_reports_each_failure)
{
	fl_secret_ref good = {.cmd = "echo fine"}, bad = {.env = "FL_SH_SURELY_UNSET"};
	fl_secret_job jobs[2] = {{.ref = &good, .what = "a"}, {.ref = &bad, .what = "b"}};
	cr_assert_eq(fl_secret_resolve_many(jobs, 2), 1);
	cr_assert_str_eq(jobs[0].out->data, "fine");
	cr_assert_str_eq(jobs[1].err->msg, "b <env FL_SH_SURELY_UNSET>: the variable is not set");
	fl_secret_free(jobs[0].out);
	fl_error_free(jobs[1].err);
}
