#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	cr_assert(p);
	return p;
}

const char *th_top(void)
{
	const char *t = getenv("FLOTILLA_TOP");
	return t ? t : ".";
}

const char *th_shared(void)
{
	const char *s = getenv("FLOTILLA_SHARED");
	return s ? s : "../shared";
}

PGconn *th_connect(const char *db)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {db ? db : "postgres", "flotilla-test", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to test server (db %s): %s",
	          db ? db : "postgres", PQerrorMessage(c));
	PQsetNoticeProcessor(c, NULL, NULL);
	return c;
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

void th_exec(PGconn *c, const char *sql)
{
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "SQL failed: %s\n%s", sql,
	          PQerrorMessage(c));
	PQclear(r);
}

char *th_query1(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "query failed: %s\n%s", sql, PQerrorMessage(c));
	char *v = NULL;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

bool th_wait_statement(const char *db, const char *like)
{
	const char *params[2] = {db, like};
	for (int i = 0; i < 600; i++) {
		usleep(50000);
		PGconn *c = th_connect("postgres");
		PGresult *r =
		    PQexecParams(c,
		                 "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query "
		                 "LIKE $2 AND pid <> pg_backend_pid()",
		                 2, NULL, params, NULL, NULL, 0);
		bool seen = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") != 0;
		PQclear(r);
		PQfinish(c);
		if (seen)
			return true;
	}
	return false;
}

char *th_queryall(PGconn *c, const char *sql, const char *sep)
{
	PGresult *r = PQexec(c, sql);
	cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "query failed: %s\n%s", sql, PQerrorMessage(c));
	size_t cap = 1, len = 0;
	for (int i = 0; i < PQntuples(r); i++)
		cap += strlen(PQgetvalue(r, i, 0)) + strlen(sep);
	char *out = malloc(cap);
	cr_assert(out);
	out[0] = '\0';
	for (int i = 0; i < PQntuples(r); i++) {
		if (i) {
			strcpy(out + len, sep);
			len += strlen(sep);
		}
		strcpy(out + len, PQgetvalue(r, i, 0));
		len += strlen(PQgetvalue(r, i, 0));
	}
	PQclear(r);
	return out;
}

char *th_db_new(void)
{
	static int counter;
	char name[64];
	snprintf(name, sizeof(name), "t_%d_%d_%ld", (int)getpid(), ++counter, (long)random() % 100000);
	PGconn *c = th_connect("postgres");
	char sql[128];
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	th_exec(c, sql);
	PQfinish(c);
	return xstrdup(name);
}

void th_db_drop(const char *name)
{
	PGconn *c = th_connect("postgres");
	char sql[160];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
	th_exec(c, sql);
	PQfinish(c);
}

char *th_tmpdir(void)
{
	const char *base = getenv("FLOTILLA_TEST_TMP");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/t.XXXXXX", base ? base : "/tmp");
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	chmod(tmpl, 0755);
	return xstrdup(tmpl);
}

static void mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
}

void th_write(const char *dir, const char *rel, const char *content)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkdirs(path);
	FILE *f = fopen(path, "wb");
	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	fwrite(content, 1, strlen(content), f);
	fclose(f);
}

char *th_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "cannot read %s: %s", path, strerror(errno));
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static char *slurp_fd(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

pid_t th_spawn(const char *cwd, const char *const *env, const char *out_path, const char *err_path,
               const char *const *argv)
{
	const char *bin = getenv("FLOTILLA_BIN");
	cr_assert(bin, "FLOTILLA_BIN is not set (run through make test)");
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fi = open("/dev/null", O_RDONLY);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		if (cwd && chdir(cwd) != 0)
			_exit(127);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		size_t argc = 0;
		while (argv[argc])
			argc++;
		char **av = calloc(argc + 1, sizeof(char *));
		av[0] = (char *)bin;
		for (size_t i = 1; i < argc; i++)
			av[i] = (char *)argv[i];
		execv(bin, av);
		_exit(127);
	}
	return pid;
}

int th_run(const char *cwd, const char *const *env, char **out, char **err, const char *const *argv)
{
	char outp[512], errp[512];
	const char *base = getenv("FLOTILLA_TEST_TMP");
	static int n;
	snprintf(outp, sizeof(outp), "%s/run-%d-%d.out", base ? base : "/tmp", (int)getpid(), ++n);
	snprintf(errp, sizeof(errp), "%s/run-%d-%d.err", base ? base : "/tmp", (int)getpid(), n);
	pid_t pid = th_spawn(cwd, env, outp, errp, argv);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int fo = open(outp, O_RDONLY), fe = open(errp, O_RDONLY);
	char *o = slurp_fd(fo), *e = slurp_fd(fe);
	close(fo);
	close(fe);
	unlink(outp);
	unlink(errp);
	if (out)
		*out = o;
	else
		free(o);
	if (err)
		*err = e;
	else
		free(e);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int th_sh(const char *cmd, char **out)
{
	int pfd[2];
	cr_assert(pipe(pfd) == 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fi = open("/dev/null", O_RDONLY);
		dup2(fi, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		/* a server started by cmd must not inherit the pipe, or we never see EOF */
		close(pfd[0]);
		close(pfd[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char *o = slurp_fd(pfd[0]);
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (out)
		*out = o;
	else
		free(o);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int th_contains(const char *hay, const char *needle)
{
	return hay && needle && strstr(hay, needle) != NULL;
}

int th_chromium(const char *dir, const char *args, const char *file, const char *stderr_path, char **out)
{
	static int n; /* a profile per run: two runs never share one */
	char cmd[4096];
	snprintf(
	    cmd, sizeof(cmd),
	    "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
	    "--disable-component-update --disable-sync --no-first-run --user-data-dir='%s/profile-%d-%d' "
	    "--window-size=1200,3000 %s 'file://%s' 2>'%s'",
	    dir, (int)getpid(), ++n, args, file, stderr_path ? stderr_path : "/dev/null");
	return th_sh(cmd, out);
}
