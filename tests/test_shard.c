/*
 * Shards: the assignment of --shard I/N (core/shard.c: deterministic,
 * balanced, stable when a service is added), the strict parsing of --shard
 * and of the environment, and against the real server the seven services
 * migrated as three shards at once, then `report merge` of their documents
 * (core/reportmerge.c): ok, one failed service (exit 1), a shard missing or
 * given twice (exit 2).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "shard.h"

/* ---- parsing ---- */

static const char *fake[8][2];

static char *fake_env(const char *name)
{
	for (size_t i = 0; i < 8 && fake[i][0]; i++)
		if (strcmp(fake[i][0], name) == 0)
			return (char *)fake[i][1];
	return NULL;
}

static void set_env(const char *const *kv)
{
	memset(fake, 0, sizeof(fake));
	for (size_t i = 0; kv && kv[2 * i]; i++) {
		fake[i][0] = kv[2 * i];
		fake[i][1] = kv[2 * i + 1];
	}
}

static char *parse_error(const char *arg, const char *const *env)
{
	set_env(env);
	fl_shard s;
	fl_error *err = NULL;
	int rc = fl_shard_parse(arg, fake_env, &s, &err);
	cr_assert_eq(rc, -1, "--shard %s was accepted", arg ? arg : "(none)");
	cr_assert(err);
	char *m = fl_strdup(err->msg);
	fl_error_free(err);
	return m;
}

static fl_shard parse_ok(const char *arg, const char *const *env)
{
	set_env(env);
	fl_shard s;
	fl_error *err = NULL;
	int rc = fl_shard_parse(arg, fake_env, &s, &err);
	cr_assert_eq(rc, 0, "--shard %s: %s", arg ? arg : "(none)", err ? err->msg : "");
	return s;
}

Test(shard, parse_accepts_i_of_n_and_the_environment)
{
	fl_shard s = parse_ok("2/3", NULL);
	cr_assert_eq(s.index, 2);
	cr_assert_eq(s.count, 3);
	s = parse_ok(NULL, NULL);
	cr_assert_eq(s.count, 0, "no --shard, no environment: not sharded");
	s = parse_ok(NULL,
	             (const char *const[]){"CLOUD_RUN_TASK_INDEX", "1", "CLOUD_RUN_TASK_COUNT", "4", NULL});
	cr_assert_eq(s.index, 1);
	cr_assert_eq(s.count, 4);
	s = parse_ok("auto",
	             (const char *const[]){"CLOUD_RUN_TASK_INDEX", "0", "CLOUD_RUN_TASK_COUNT", "2", NULL});
	cr_assert_eq(s.index, 0);
	cr_assert_eq(s.count, 2);
	s = parse_ok("auto/5", (const char *const[]){"JOB_COMPLETION_INDEX", "4", NULL});
	cr_assert_eq(s.index, 4);
	cr_assert_eq(s.count, 5);
	cr_assert_str_eq(s.from, "JOB_COMPLETION_INDEX");
	/* --shard wins over the environment */
	s = parse_ok("0/2",
	             (const char *const[]){"CLOUD_RUN_TASK_INDEX", "3", "CLOUD_RUN_TASK_COUNT", "4", NULL});
	cr_assert_eq(s.index, 0);
	cr_assert_eq(s.count, 2);
}

Test(shard, parse_is_strict)
{
	char *m = parse_error("3/2", NULL);
	cr_assert_str_eq(m, "shard 3/2 (from --shard): the index must be below the count (0 to 1)");
	free(m);
	m = parse_error("0/0", NULL);
	cr_assert_str_eq(m,
	                 "--shard 0/0: expected I/N with 0 <= I < N <= 10000 (e.g. --shard 0/3), or auto/N");
	free(m);
	m = parse_error("a/b", NULL);
	cr_assert_str_eq(m,
	                 "--shard a/b: expected I/N with 0 <= I < N <= 10000 (e.g. --shard 0/3), or auto/N");
	free(m);
	static const char *const bad[] = {"1",    "/3",   "1/",    " 1/3",    "1/3 ",
	                                  "+1/3", "-1/3", "1/3/4", "1/99999", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = parse_error(bad[i], NULL);
		cr_assert(th_contains(m, "expected I/N"), "%s: %s", bad[i], m);
		free(m);
	}
	m = parse_error(NULL, (const char *const[]){"JOB_COMPLETION_INDEX", "1", NULL});
	cr_assert_str_eq(m, "JOB_COMPLETION_INDEX is set but the number of shards is not known: give it with "
	                    "--shard auto/N (N: the Job's completions)");
	free(m);
	m = parse_error(
	    NULL, (const char *const[]){"CLOUD_RUN_TASK_INDEX", "x", "CLOUD_RUN_TASK_COUNT", "2", NULL});
	cr_assert_str_eq(m, "CLOUD_RUN_TASK_INDEX is \"x\": expected a number from 0 to 10000");
	free(m);
	m = parse_error(
	    NULL, (const char *const[]){"CLOUD_RUN_TASK_INDEX", "2", "CLOUD_RUN_TASK_COUNT", "2", NULL});
	cr_assert_str_eq(
	    m, "shard 2/2 (from CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT): the index must be below "
	       "the count (0 to 1)");
	free(m);
	m = parse_error("auto/3", NULL);
	cr_assert_str_eq(
	    m, "--shard auto/3: neither JOB_COMPLETION_INDEX nor CLOUD_RUN_TASK_INDEX is set; write "
	       "--shard I/N");
	free(m);
	m = parse_error("auto", NULL);
	cr_assert(th_contains(m, "CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT are not set"), "%s", m);
	free(m);
}

/* ---- assignment ---- */

#define NSVC 40

static void make_fleet(char names[][32], size_t *sizes, size_t n)
{
	unsigned x = 12345;
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 32, "svc%02zu", i);
		x = x * 1103515245u + 12345u;
		sizes[i] = 200 + (x >> 16) % 5000;
	}
}

Test(shard, assignment_is_deterministic_and_balanced)
{
	char names[NSVC][32];
	const char *np[NSVC];
	size_t sizes[NSVC];
	make_fleet(names, sizes, NSVC);
	size_t total = 0, largest = 0;
	for (size_t i = 0; i < NSVC; i++) {
		np[i] = names[i];
		total += sizes[i] + 1;
		largest = sizes[i] + 1 > largest ? sizes[i] + 1 : largest;
	}
	for (int count = 1; count <= 7; count++) {
		int a[NSVC], b[NSVC];
		fl_shard_assign(np, sizes, NSVC, count, a);
		/* the same assignment given in another order (every task lists them as its manifest does) */
		const char *rp[NSVC];
		size_t rs[NSVC];
		for (size_t i = 0; i < NSVC; i++) {
			rp[i] = np[NSVC - 1 - i];
			rs[i] = sizes[NSVC - 1 - i];
		}
		fl_shard_assign(rp, rs, NSVC, count, b);
		size_t load[8] = {0};
		for (size_t i = 0; i < NSVC; i++) {
			cr_assert_eq(a[i], b[NSVC - 1 - i], "%s: shard %d, reversed %d", np[i], a[i],
			             b[NSVC - 1 - i]);
			cr_assert(a[i] >= 0 && a[i] < count);
			load[a[i]] += sizes[i] + 1;
		}
		/* the documented bound: no shard above its share plus the largest service */
		for (int s = 0; s < count; s++)
			cr_assert_leq(load[s], total / (size_t)count + largest,
			              "%d shards: shard %d carries %zu of %zu", count, s, load[s], total);
	}
}

Test(shard, assignment_is_stable_when_a_service_is_added)
{
	char names[NSVC + 1][32];
	const char *np[NSVC + 1];
	size_t sizes[NSVC + 1];
	make_fleet(names, sizes, NSVC + 1);
	for (size_t i = 0; i <= NSVC; i++)
		np[i] = names[i];
	for (int count = 2; count <= 5; count++) {
		int before[NSVC], after[NSVC + 1];
		fl_shard_assign(np, sizes, NSVC, count, before);
		fl_shard_assign(np, sizes, NSVC + 1, count, after);
		size_t kept = 0;
		for (size_t i = 0; i < NSVC; i++)
			kept += before[i] == after[i];
		/* a least-loaded greedy moves about (count-1)/count of the services smaller than the new one
		 */
		cr_assert_geq(kept, NSVC * 3 / 4, "%d shards: %zu of %d services kept their shard", count,
		              kept, NSVC);
	}
}

/* ---- against the server: three shards at once, then report merge ---- */

static const char *const SEVEN[] = {"auth",           "client",       "user",        "metric_builder",
                                    "metric_tracker", "task_builder", "task_tracker"};

struct fleet {
	char *dir;
	char project[48];
	char manifest[600];
};

/* The seven services of the demo fleet, three small migrations each, under a unique project. */
static void fleet_init(struct fleet *f)
{
	static int n;
	f->dir = th_tmpdir();
	snprintf(f->project, sizeof(f->project), "sh%d_%d", (int)getpid(), ++n);
	snprintf(f->manifest, sizeof(f->manifest), "%s/flotilla.toml", f->dir);
	char *m = fl_asprintf("version = 1\nproject = \"%s\"\n\n"
	                      "[environments.test]\nadmin = { user = \"postgres\" }\n"
	                      "migrator = { user = \"postgres\" }\nservice_passwords = false\n\n"
	                      "[settings]\nlock_timeout = \"5s\"\n\n"
	                      "[defaults]\ndatabase = \"${project}_${service}\"\n"
	                      "owner = \"${project}_${service}_owner\"\nmigrations = \"svc/${service}\"\n\n",
	                      f->project);
	for (size_t i = 0; i < 7; i++) {
		char *next = fl_asprintf("%s[services.%s]\n", m, SEVEN[i]);
		free(m);
		m = next;
		for (int v = 1; v <= 3; v++) {
			char rel[256], sql[512];
			snprintf(rel, sizeof(rel), "svc/%s/V%d__step_%d.sql", SEVEN[i], v, v);
			/* sizes differ per service, so the balance has something to do */
			snprintf(sql, sizeof(sql),
			         "CREATE TABLE t%d (id int PRIMARY KEY, note text);\n-- %*s\n", v,
			         (int)(i * 40), "");
			th_write(f->dir, rel, sql);
		}
	}
	th_write(f->dir, "flotilla.toml", m);
	free(m);
}

static void fleet_drop(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char sql[512];
	for (size_t i = 0; i < 7; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s_%s\" WITH (FORCE)", f->project,
		         SEVEN[i]);
		th_exec(c, sql);
	}
	PQfinish(c);
	free(f->dir);
}

/* Runs the three shards of `migrate --json` at once; their documents in dir/sK.json. */
static void three_shards(struct fleet *f, int rcs[3])
{
	pid_t pids[3];
	for (int k = 0; k < 3; k++) {
		char shard[24], out[700], err[700];
		snprintf(shard, sizeof(shard), "%d/3", k);
		snprintf(out, sizeof(out), "%s/s%d.json", f->dir, k);
		snprintf(err, sizeof(err), "%s/s%d.err", f->dir, k);
		pids[k] = th_spawn(f->dir, NULL, out, err,
		                   (const char *const[]){"flotilla", "-m", f->manifest, "-e", "test",
		                                         "migrate", "--shard", shard, "--json", NULL});
		cr_assert(pids[k] > 0);
	}
	for (int k = 0; k < 3; k++) {
		int st;
		cr_assert_eq(waitpid(pids[k], &st, 0), pids[k]);
		rcs[k] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

static json_t *load_doc(const char *dir, const char *name)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	char *s = th_read(p);
	json_error_t je;
	json_t *d = json_loads(s, 0, &je);
	cr_assert(d, "%s is not JSON (%s): %s", name, je.text, s);
	free(s);
	return d;
}

static int merge(struct fleet *f, char **out, char **err, const char *const *files)
{
	const char *argv[16] = {"flotilla", "report", "merge"};
	size_t n = 3;
	for (; *files; files++)
		argv[n++] = *files;
	argv[n] = NULL;
	return th_run(f->dir, NULL, out, err, argv);
}

static char *history(struct fleet *f, const char *svc)
{
	char db[128];
	snprintf(db, sizeof(db), "%s_%s", f->project, svc);
	PGconn *c = th_connect(db);
	char *v = th_query1(c, "SELECT string_agg(version || ':' || success, ',' ORDER BY installed_rank) "
	                       "FROM flyway_schema_history WHERE type = 'SQL'");
	PQfinish(c);
	return v;
}

Test(shard, three_shards_at_once_then_merge, .timeout = 300)
{
	struct fleet f;
	fleet_init(&f);
	int rcs[3];
	three_shards(&f, rcs);
	int ran[7] = {0};
	for (int k = 0; k < 3; k++) {
		char name[32];
		snprintf(name, sizeof(name), "s%d.json", k);
		json_t *d = load_doc(f.dir, name);
		snprintf(name, sizeof(name), "s%d.err", k);
		char ep[700];
		snprintf(ep, sizeof(ep), "%s/%s", f.dir, name);
		char *e = th_read(ep);
		cr_assert_eq(rcs[k], 0, "shard %d: %s", k, e);
		free(e);
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(d, "shard"), "index")), k);
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(d, "shard"), "count")), 3);
		json_t *svcs = json_object_get(d, "services");
		cr_assert_eq(json_array_size(svcs), 7);
		for (size_t i = 0; i < 7; i++) {
			json_t *s = json_array_get(svcs, i);
			const char *res = json_string_value(json_object_get(s, "result"));
			int owner = (int)json_integer_value(json_object_get(s, "shard"));
			if (owner == k) {
				cr_assert_str_eq(res, "ok", "%s in shard %d", SEVEN[i], k);
				ran[i]++;
			} else {
				char why[32];
				snprintf(why, sizeof(why), "run by shard %d/3", owner);
				cr_assert_str_eq(res, "skipped");
				cr_assert_str_eq(json_string_value(json_object_get(s, "reason")), why);
			}
		}
		json_decref(d);
	}
	for (size_t i = 0; i < 7; i++) {
		cr_assert_eq(ran[i], 1, "%s ran in %d shards", SEVEN[i], ran[i]);
		char *h = history(&f, SEVEN[i]);
		cr_assert_str_eq(h, "1:true,2:true,3:true", "%s", SEVEN[i]);
		free(h);
	}

	char *out, *err;
	int rc = merge(&f, &out, &err, (const char *const[]){"s2.json", "s0.json", "s1.json", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	json_error_t je;
	json_t *m = json_loads(out, 0, &je);
	cr_assert(m, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(m, "result")), "ok");
	cr_assert_eq(json_integer_value(json_object_get(m, "exit_code")), 0);
	json_t *svcs = json_object_get(m, "services");
	cr_assert_eq(json_array_size(svcs), 7, "%s", out);
	for (size_t i = 0; i < 7; i++) {
		cr_assert_str_eq(json_string_value(json_object_get(json_array_get(svcs, i), "service")),
		                 SEVEN[i]);
		cr_assert_str_eq(json_string_value(json_object_get(json_array_get(svcs, i), "result")), "ok");
		cr_assert_eq(json_array_size(json_object_get(json_array_get(svcs, i), "migrations")), 3);
	}
	cr_assert_eq(json_array_size(json_object_get(m, "shards")), 3);
	json_decref(m);
	free(out);
	free(err);

	/* a shard missing, a shard twice: bad input, exit 2, said at the file */
	rc = merge(&f, &out, &err, (const char *const[]){"s0.json", "s1.json", NULL});
	cr_assert_eq(rc, 2, "%s", out);
	cr_assert(th_contains(err, "shard 2/3 is missing: 2 of 3 documents given"), "%s", err);
	m = json_loads(out, 0, &je);
	cr_assert(m, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(m, "result")), "invalid");
	json_decref(m);
	free(out);
	free(err);
	rc = merge(&f, &out, &err, (const char *const[]){"s0.json", "s1.json", "s1.json", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "s1.json: shard 1/3 again: s1.json is that shard's document already"),
	          "%s", err);
	free(out);
	free(err);

	/* a document of another run (another command) */
	char *st_out, *st_err;
	rc = th_run(f.dir, NULL, &st_out, &st_err,
	            (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "status", "--shard",
	                                  "2/3", "--json", NULL});
	cr_assert_eq(rc, 0, "%s", st_err);
	th_write(f.dir, "status2.json", st_out);
	free(st_out);
	free(st_err);
	rc = merge(&f, &out, &err, (const char *const[]){"s0.json", "s1.json", "status2.json", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err,
	                      "status2.json: a document of another run: its command is status, s0.json's is "
	                      "migrate"),
	          "%s", err);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(shard, merge_of_a_run_with_a_failed_service_exits_1, .timeout = 300)
{
	struct fleet f;
	fleet_init(&f);
	/* one service's new migration fails on the server */
	th_write(f.dir, "svc/user/V4__broken.sql", "SELECT no_such_function();\n");
	int rcs[3];
	three_shards(&f, rcs);
	json_t *d[3];
	int failed_in = -1;
	for (int k = 0; k < 3; k++) {
		char name[32];
		snprintf(name, sizeof(name), "s%d.json", k);
		d[k] = load_doc(f.dir, name);
		json_t *s = NULL;
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(d[k], "services"), i,
		                   x) if (strcmp(json_string_value(json_object_get(x, "service")), "user") ==
		                          0) s = x;
		cr_assert(s);
		if (json_integer_value(json_object_get(s, "shard")) == k) {
			failed_in = k;
			cr_assert_str_eq(json_string_value(json_object_get(s, "result")), "failed");
			cr_assert_eq(rcs[k], 1);
		} else {
			cr_assert_eq(rcs[k], 0, "shard %d", k);
		}
		json_decref(d[k]);
	}
	cr_assert_geq(failed_in, 0);
	char *out, *err;
	int rc = merge(&f, &out, &err, (const char *const[]){"s0.json", "s1.json", "s2.json", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	json_error_t je;
	json_t *m = json_loads(out, 0, &je);
	cr_assert(m, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(m, "result")), "failed");
	cr_assert_eq(json_integer_value(json_object_get(m, "exit_code")), 1);
	size_t nfailed = 0, nok = 0, i;
	json_t *s;
	json_array_foreach(json_object_get(m, "services"), i, s)
	{
		const char *r = json_string_value(json_object_get(s, "result"));
		nfailed += strcmp(r, "failed") == 0;
		nok += strcmp(r, "ok") == 0;
	}
	cr_assert_eq(nfailed, 1);
	cr_assert_eq(nok, 6);
	json_decref(m);
	free(out);
	free(err);
	fleet_drop(&f);
}

/* Usage errors through the binary: exit 2 and, with --json, a document. */
Test(shard, bad_shard_is_a_usage_error_with_a_document)
{
	char *out, *err;
	char mp[700];
	snprintf(mp, sizeof(mp), "%s/manifests/pcc.toml", th_top());
	static const char *const bad[] = {"3/2", "0/0", "a/b"};
	for (size_t i = 0; i < 3; i++) {
		int rc = th_run(NULL, NULL, &out, &err,
		                (const char *const[]){"flotilla", "-m", mp, "migrate", "--shard", bad[i],
		                                      "--json", NULL});
		cr_assert_eq(rc, 2, "%s: %s", bad[i], err);
		json_error_t je;
		json_t *d = json_loads(out, 0, &je);
		cr_assert(d, "%s: no document: %s", bad[i], out);
		cr_assert_str_eq(json_string_value(json_object_get(d, "result")), "invalid");
		cr_assert_eq(json_integer_value(json_object_get(d, "exit_code")), 2);
		json_decref(d);
		free(out);
		free(err);
	}
	int rc = th_run(NULL, (const char *const[]){"JOB_COMPLETION_INDEX=1", NULL}, &out, &err,
	                (const char *const[]){"flotilla", "-m", mp, "status", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "JOB_COMPLETION_INDEX is set but the number of shards is not known"), "%s",
	          err);
	free(out);
	free(err);
}

/* A shard other than 0 without shard 0: its wait for the roles is bounded, then its services fail. */
Test(shard, a_shard_without_shard_0_waits_a_bounded_time, .timeout = 120)
{
	struct fleet f;
	fleet_init(&f);
	char *out, *err;
	int rc = th_run(f.dir, NULL, &out, &err,
	                (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate",
	                                      "--shard", "1/3", "--shard-wait", "2", "--json", NULL});
	cr_assert_eq(rc, 1, "%s\n%s", out, err);
	cr_assert(th_contains(err, "shard 1/3 waits for shard 0 to create roles"), "%s", err);
	cr_assert(th_contains(err, "shard 1/3: waited 2 s for shard 0 to create the roles"), "%s", err);
	json_error_t je;
	json_t *d = json_loads(out, 0, &je);
	cr_assert(d, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(d, "result")), "failed");
	size_t nfailed = 0;
	json_t *list = json_object_get(d, "services");
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *s = json_array_get(list, i);
		const char *r = json_string_value(json_object_get(s, "result"));
		if (json_integer_value(json_object_get(s, "shard")) == 1) {
			cr_assert_str_eq(r, "failed");
			nfailed++;
		} else {
			cr_assert_str_eq(r, "skipped");
		}
	}
	cr_assert_gt(nfailed, 0);
	json_decref(d);
	free(out);
	free(err);
	/* it created nothing: no database of the project */
	PGconn *c = th_connect("postgres");
	char q[256];
	snprintf(q, sizeof(q), "SELECT count(*) FROM pg_database WHERE datname LIKE '%s%%'", f.project);
	char *n = th_query1(c, q);
	cr_assert_str_eq(n, "0");
	free(n);
	PQfinish(c);
	fleet_drop(&f);
}

/* Ctrl-C during the wait for shard 0's roles: the wait ends, exit 130, nothing sent. */
Test(shard, interrupt_ends_the_wait_for_shard_0, .timeout = 120)
{
	struct fleet f;
	fleet_init(&f);
	char outp[700], errp[700];
	snprintf(outp, sizeof(outp), "%s/w.json", f.dir);
	snprintf(errp, sizeof(errp), "%s/w.err", f.dir);
	pid_t pid = th_spawn(f.dir, NULL, outp, errp,
	                     (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate",
	                                           "--shard", "2/3", "--json", NULL});
	cr_assert(pid > 0);
	bool waiting = false;
	for (int i = 0; i < 600 && !waiting; i++) { /* at most 60 s for the run to reach its wait */
		if (access(errp, R_OK) == 0) {      /* the child may not have opened it yet */
			char *e = th_read(errp);
			waiting = th_contains(e, "waits for shard 0 to create roles");
			free(e);
		}
		if (!waiting)
			nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	cr_assert(waiting, "the shard never reported its wait");
	kill(pid, SIGINT);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), 130);
	char *e = th_read(errp);
	cr_assert(th_contains(e, "interrupted while waiting for shard 0's roles"), "%s", e);
	free(e);
	json_t *d = load_doc(f.dir, "w.json");
	cr_assert_str_eq(json_string_value(json_object_get(d, "result")), "interrupted");
	cr_assert(json_is_false(json_object_get(d, "touched")));
	json_decref(d);
	fleet_drop(&f);
}
