/*
 * gitdiff_bench: times gitdiff on a repository made by bench/gen-git-repo
 * (a benchmark, not a test; the targets: the diff under 100 ms,
 * the read of all 14,000 files under 300 ms).
 *
 *   gitdiff_bench REPO [FROM [TO]]     (default: c10000 c20000)
 *
 * Each run happens in a fresh child process that opens the repository, as
 * one flotilla command does: libgit2's caches start cold, the OS page
 * cache is warm. The time covers opening, resolving and the operation.
 * Reported: wall and CPU time, median and best of the runs (CPU time is
 * the steadier figure on a busy machine). Operations: the seven-folder
 * diff FROM..TO (`diff --since FROM --to TO`), reading every file of the
 * seven folders from TO's tree (`--rev TO`), TO against the work tree
 * (`--since TO`), the last commit that changed a recent and an old file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gitdiff.h"

static const char *const SERVICES[] = {"auth",           "client",       "user",        "metric_builder",
                                       "metric_tracker", "task_builder", "task_tracker"};
#define NSVC 7
#define RUNS 7

struct ctx {
	const char *repo, *from, *to;
	const char *folders[NSVC];
	char note[200];
};

static void die(fl_error *err)
{
	char *m = fl_error_format(err);
	fprintf(stderr, "gitdiff_bench: %s\n", m);
	exit(1);
}

static fl_git *open_repo(const char *path)
{
	fl_git *g;
	fl_error *err = NULL;
	if (fl_git_open(path, &g, &err) < 0)
		die(err);
	return g;
}

static void op_diff(struct ctx *c)
{
	fl_git *g = open_repo(c->repo);
	fl_error *err = NULL;
	char a[FL_GIT_ID_LEN], b[FL_GIT_ID_LEN];
	if (fl_git_resolve(g, c->from, a, &err) < 0 || fl_git_resolve(g, c->to, b, &err) < 0)
		die(err);
	fl_git_change *ch;
	size_t n;
	if (fl_git_diff(g, a, b, c->folders, NSVC, &ch, &n, &err) < 0)
		die(err);
	size_t st[4] = {0};
	for (size_t i = 0; i < n; i++)
		st[ch[i].status]++;
	snprintf(c->note, sizeof(c->note), "%zu changes: %zu added, %zu modified, %zu deleted, %zu renamed",
	         n, st[0], st[1], st[2], st[3]);
	fl_git_changes_free(ch, n);
	fl_git_free(g);
}

static void op_read(struct ctx *c)
{
	fl_git *g = open_repo(c->repo);
	fl_error *err = NULL;
	char id[FL_GIT_ID_LEN];
	if (fl_git_resolve(g, c->to, id, &err) < 0)
		die(err);
	size_t files = 0, bytes = 0;
	for (int s = 0; s < NSVC; s++) {
		fl_file *fs;
		size_t n;
		if (fl_git_read_folder(g, id, c->folders[s], NULL, &fs, &n, &err) < 0)
			die(err);
		files += n;
		for (size_t i = 0; i < n; i++)
			bytes += fs[i].len;
		fl_git_files_free(fs, n);
	}
	snprintf(c->note, sizeof(c->note), "%zu files, %zu bytes", files, bytes);
	fl_git_free(g);
}

static void op_worktree(struct ctx *c)
{
	fl_git *g = open_repo(c->repo);
	fl_error *err = NULL;
	fl_git_change *ch;
	size_t n;
	if (fl_git_diff(g, c->to, NULL, c->folders, NSVC, &ch, &n, &err) < 0)
		die(err);
	snprintf(c->note, sizeof(c->note), "%zu changes", n);
	fl_git_changes_free(ch, n);
	fl_git_free(g);
}

static void last_change(struct ctx *c, const char *path)
{
	fl_git *g = open_repo(c->repo);
	fl_error *err = NULL;
	fl_git_commit cm;
	int rc = fl_git_last_change_after(g, c->to, path, 0, NULL, &cm, &err);
	if (rc < 0)
		die(err);
	snprintf(c->note, sizeof(c->note), "%s: %s %s", strrchr(path, '/') + 1, rc ? cm.short_id : "-",
	         rc ? cm.summary : "");
	if (rc)
		fl_git_commit_clear(&cm);
	fl_git_free(g);
}

static void op_last_recent(struct ctx *c)
{
	last_change(c, "services/auth/migrations/R__views.sql");
}

/* The first migration of auth: added by one of the first commits, so the walk goes through all history. */
static void op_last_old(struct ctx *c)
{
	fl_git *g = open_repo(c->repo);
	fl_error *err = NULL;
	fl_file *fs;
	size_t n;
	if (fl_git_read_folder(g, c->to, c->folders[0], NULL, &fs, &n, &err) < 0)
		die(err);
	char path[256] = "";
	for (size_t i = 0; i < n; i++)
		if (strncmp(fs[i].name, "V1__", 4) == 0)
			snprintf(path, sizeof(path), "%s", fs[i].path);
	fl_git_files_free(fs, n);
	fl_git_free(g);
	last_change(c, path);
}

static double now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct sample {
	double wall, cpu;
	char note[200];
};

static void bench(const char *what, void (*fn)(struct ctx *), struct ctx *c, int runs)
{
	double wall[RUNS], cpu[RUNS];
	char note[200] = "";
	for (int i = 0; i < runs; i++) {
		int fd[2];
		if (pipe(fd) < 0)
			exit(1);
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[0]);
			struct sample s;
			memset(&s, 0, sizeof(s));
			double w = now(CLOCK_MONOTONIC), u = now(CLOCK_PROCESS_CPUTIME_ID);
			fn(c);
			s.wall = now(CLOCK_MONOTONIC) - w;
			s.cpu = now(CLOCK_PROCESS_CPUTIME_ID) - u;
			memcpy(s.note, c->note, sizeof(s.note));
			if (write(fd[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
				_exit(1);
			_exit(0);
		}
		close(fd[1]);
		struct sample s;
		int st;
		if (read(fd[0], &s, sizeof(s)) != (ssize_t)sizeof(s) || waitpid(pid, &st, 0) < 0 || st != 0) {
			fprintf(stderr, "gitdiff_bench: %s: the run failed\n", what);
			exit(1);
		}
		close(fd[0]);
		wall[i] = s.wall;
		cpu[i] = s.cpu;
		memcpy(note, s.note, sizeof(note));
	}
	qsort(wall, (size_t)runs, sizeof(double), cmp_double);
	qsort(cpu, (size_t)runs, sizeof(double), cmp_double);
	printf("%-30s wall %7.1f ms (best %7.1f)  cpu %7.1f ms (best %7.1f)  [%s]\n", what, wall[runs / 2],
	       wall[0], cpu[runs / 2], cpu[0], note);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: gitdiff_bench REPO [FROM [TO]]\n");
		return 2;
	}
	struct ctx c = {
	    .repo = argv[1], .from = argc > 2 ? argv[2] : "c10000", .to = argc > 3 ? argv[3] : "c20000"};
	char paths[NSVC][64];
	for (int s = 0; s < NSVC; s++) {
		snprintf(paths[s], sizeof(paths[s]), "services/%s/migrations", SERVICES[s]);
		c.folders[s] = paths[s];
	}
	printf("%s, %s..%s, median and best of %d fresh processes\n", c.repo, c.from, c.to, RUNS);
	bench("diff FROM..TO (7 folders)", op_diff, &c, RUNS);
	bench("read TO (all files, 7 folders)", op_read, &c, RUNS);
	bench("diff TO..work tree", op_worktree, &c, RUNS);
	bench("last change, recent file", op_last_recent, &c, RUNS);
	bench("last change, oldest file", op_last_old, &c, 3);
	return 0;
}
