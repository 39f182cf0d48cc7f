/*
 * The git side of the command line, through the flotilla binary, on real
 * repositories built with libgit2 in a temporary directory: `diff` (its
 * classification, the commits it names, collisions from merged branches,
 * the merge base, exit codes), `migrate --since` (untouched services are
 * not connected to), `--rev` (the tagged files are applied while the work
 * tree holds others), the commit recorded in the ledger and --json, validate
 * naming the commit that changed an applied file, and the errors CI meets.
 * Suite git_cli needs no database; par_git runs migrate (threads).
 */
#include <criterion/criterion.h>
#include <git2.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gitdiff.h"
#include "harness.h"
#include "migration.h"

#define T0 1700000000 /* 2023-11-14 22:13:20 UTC */

static const char *const SVCS[] = {"auth", "user", "task"};

struct repo {
	char *dir;
	git_repository *repo;
	char project[48];
	char manifest[600];
};

static void ok(int rc, const char *what)
{
	const git_error *e = git_error_last();
	cr_assert(rc >= 0, "%s: %s", what, e && e->message ? e->message : "?");
}

static void put(struct repo *r, const char *rel, const char *content)
{
	th_write(r->dir, rel, content);
}

static void rm(struct repo *r, const char *rel)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", r->dir, rel);
	cr_assert(unlink(p) == 0, "unlink %s", p);
}

/* A repository holding a manifest with three services (nothing committed yet). */
static void repo_init(struct repo *r, bool with_git)
{
	static int n;
	git_libgit2_init();
	memset(r, 0, sizeof(*r));
	r->dir = th_tmpdir();
	snprintf(r->project, sizeof(r->project), "g%d_%d", (int)getpid(), ++n);
	snprintf(r->manifest, sizeof(r->manifest), "%s/flotilla.toml", r->dir);
	char buf[2048];
	snprintf(buf, sizeof(buf),
	         "version = 1\nproject = \"%s\"\n\n"
	         "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	         "service_passwords = false\n\n"
	         "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	         "migrations = \"svc/${service}\"\n\n"
	         "[services.auth]\n[services.user]\n[services.task]\n",
	         r->project);
	put(r, "flotilla.toml", buf);
	put(r, "svc/auth/V1__init.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY);\n");
	put(r, "svc/auth/V2__users.sql", "CREATE TABLE users (id bigint);\n");
	put(r, "svc/user/V1__init.sql",
	    "CREATE TABLE profiles (id bigint PRIMARY KEY, name text NOT NULL);\n");
	put(r, "svc/user/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n");
	put(r, "svc/task/V1__init.sql", "CREATE TABLE jobs (id bigint PRIMARY KEY);\n");
	put(r, "svc/task/README.md", "task migrations\n");
	if (!with_git)
		return;
	git_repository_init_options io;
	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_MKPATH;
	io.initial_head = "main";
	ok(git_repository_init_ext(&r->repo, r->dir, &io), "init");
	git_config *cfg;
	ok(git_repository_config(&cfg, r->repo), "config");
	ok(git_config_set_bool(cfg, "core.autocrlf", 0), "autocrlf");
	git_config_free(cfg);
}

/* Stages the whole work tree and commits on HEAD, authored at `when`. */
static git_oid commit_at(struct repo *r, const char *msg, int64_t when, const git_oid *second_parent)
{
	git_index *idx;
	ok(git_repository_index(&idx, r->repo), "index");
	ok(git_index_add_all(idx, NULL, 0, NULL, NULL), "add_all");
	ok(git_index_update_all(idx, NULL, NULL, NULL), "update_all");
	ok(git_index_write(idx), "index write");
	git_oid tree_id;
	ok(git_index_write_tree(&tree_id, idx), "write_tree");
	git_index_free(idx);
	git_tree *tree;
	ok(git_tree_lookup(&tree, r->repo, &tree_id), "tree");
	git_signature *sig;
	ok(git_signature_new(&sig, "Ann Author", "ann@example.com", (git_time_t)when, 0), "sig");
	const git_commit *parents[2];
	size_t np = 0;
	git_commit *p1 = NULL, *p2 = NULL;
	git_oid head;
	if (git_reference_name_to_id(&head, r->repo, "HEAD") == 0) {
		ok(git_commit_lookup(&p1, r->repo, &head), "parent");
		parents[np++] = p1;
	}
	if (second_parent) {
		ok(git_commit_lookup(&p2, r->repo, second_parent), "parent 2");
		parents[np++] = p2;
	}
	git_oid id;
	ok(git_commit_create(&id, r->repo, "HEAD", sig, sig, NULL, msg, tree, np, parents), "commit");
	git_commit_free(p1);
	git_commit_free(p2);
	git_signature_free(sig);
	git_tree_free(tree);
	return id;
}

static git_oid commit(struct repo *r, const char *msg, int tick, const git_oid *second_parent)
{
	return commit_at(r, msg, T0 + 100 * tick, second_parent);
}

static void tag(struct repo *r, const char *name, const git_oid *id)
{
	git_object *o;
	ok(git_object_lookup(&o, r->repo, id, GIT_OBJECT_COMMIT), "lookup");
	git_oid t;
	ok(git_tag_create_lightweight(&t, r->repo, name, o, 0), name);
	git_object_free(o);
}

static void branch(struct repo *r, const char *name, const git_oid *at)
{
	git_commit *c;
	git_reference *br;
	ok(git_commit_lookup(&c, r->repo, at), "commit");
	ok(git_branch_create(&br, r->repo, name, c, 0), "branch");
	git_reference_free(br);
	git_commit_free(c);
}

static void switch_to(struct repo *r, const char *name)
{
	char ref[128];
	snprintf(ref, sizeof(ref), "refs/heads/%s", name);
	git_oid id;
	ok(git_reference_name_to_id(&id, r->repo, ref), ref);
	git_object *o;
	ok(git_object_lookup(&o, r->repo, &id, GIT_OBJECT_COMMIT), "lookup");
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	ok(git_checkout_tree(r->repo, o, &co), "checkout");
	ok(git_repository_set_head(r->repo, ref), "set_head");
	git_object_free(o);
}

static void hex(const git_oid *id, char out[FL_GIT_ID_LEN])
{
	git_oid_tostr(out, FL_GIT_ID_LEN, id);
}

static void repo_done(struct repo *r)
{
	git_repository_free(r->repo);
	free(r->dir);
	git_libgit2_shutdown();
}

static int run(struct repo *r, bool env, char **out, char **err, const char *const *args)
{
	const char *argv[32] = {"flotilla", "-m", r->manifest};
	size_t n = 3;
	if (env) {
		argv[n++] = "-e";
		argv[n++] = "test";
	}
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return th_run(r->dir, NULL, out, err, argv);
}

/* ---------------------------------------------------------------- diff */

/*
 * c1 (v1.0) - c2 add auth V3 - c3 edit auth V2 - c4 rename user V1, edit R - c5 delete task V1, main
 */
Test(git_cli, diff_classifies_each_change_and_names_its_commit)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	tag(&r, "v1.0", &c1);
	put(&r, "svc/auth/V3__tokens.sql", "CREATE TABLE tokens (t text);\n");
	git_oid c2 = commit(&r, "auth: add tokens", 2, NULL);
	put(&r, "svc/auth/V2__users.sql", "CREATE TABLE users (id bigint);\nCREATE INDEX ON users (id);\n");
	git_oid c3 = commit(&r, "auth: index users\n\nbody text\n", 3, NULL);
	rm(&r, "svc/user/V1__init.sql");
	put(&r, "svc/user/V1__initial.sql",
	    "CREATE TABLE profiles (id bigint PRIMARY KEY, name text NOT NULL);\n");
	put(&r, "svc/user/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 2 AS two;\n");
	git_oid c4 = commit(&r, "user: rename V1, views", 4, NULL);
	rm(&r, "svc/task/V1__init.sql");
	put(&r, "svc/task/README.md", "task migrations, edited\n");
	git_oid c5 = commit(&r, "task: drop V1", 5, NULL);
	char h1[FL_GIT_ID_LEN], h2[FL_GIT_ID_LEN], h3[FL_GIT_ID_LEN], h4[FL_GIT_ID_LEN], h5[FL_GIT_ID_LEN];
	hex(&c1, h1);
	hex(&c2, h2);
	hex(&c3, h3);
	hex(&c4, h4);
	hex(&c5, h5);

	char *out, *err;
	int rc = run(&r, false, &out, &err,
	             (const char *const[]){"diff", "--since", "v1.0", "--to", "main", NULL});
	cr_assert_eq(rc, 3, "stdout: %s\nstderr: %s", out, err);
	char want[4096];
	/* dates: T0 + 100 * tick, UTC: all 2023-11-14 */
	snprintf(want, sizeof(want),
	         "diff %.7s..%.7s\n"
	         "auth: 1 to apply, 0 repeatables to run again, 1 problem\n"
	         "  modified    V2__users.sql  (%.7s auth: index users, Ann Author, 2023-11-14)\n"
	         "  added       V3__tokens.sql  (%.7s auth: add tokens, Ann Author, 2023-11-14)\n"
	         "user: 0 to apply, 1 repeatable to run again, 1 problem\n"
	         "  repeatable  R__views.sql  (%.7s user: rename V1, views, Ann Author, 2023-11-14)\n"
	         "  renamed     V1__init.sql -> V1__initial.sql  (%.7s user: rename V1, views, Ann Author, "
	         "2023-11-14)\n"
	         "task: 0 to apply, 0 repeatables to run again, 1 problem\n"
	         "  deleted     V1__init.sql  (%.7s task: drop V1, Ann Author, 2023-11-14)\n",
	         h1, h5, h3, h2, h4, h4, h5);
	cr_assert_str_eq(out, want);
	char line[1024];
	snprintf(line, sizeof(line),
	         "svc/auth/V2__users.sql: migration 2 was modified; a database that applied it keeps the old "
	         "version: "
	         "revert the change and add a new version instead (by %.7s auth: index users, Ann Author, "
	         "2023-11-14)\n",
	         h3);
	cr_assert(th_contains(err, line), "%s", err);
	snprintf(line, sizeof(line),
	         "svc/task/V1__init.sql: migration 1 was deleted; a database that applied it would find it "
	         "missing: "
	         "restore the file (by %.7s task: drop V1, Ann Author, 2023-11-14)\n",
	         h5);
	cr_assert(th_contains(err, line), "%s", err);
	free(out);
	free(err);

	/* JSON: the same, with full ids; one service selected */
	rc = run(&r, false, &out, &err,
	         (const char *const[]){"diff", "--since", "v1.0", "--to", "main", "--json", "user", NULL});
	cr_assert_eq(rc, 3, "%s", err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "%s: %s", je.text, out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "base")), h1);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "to")), h5);
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_eq(json_array_size(svcs), 1);
	json_t *u = json_array_get(svcs, 0);
	cr_assert_str_eq(json_string_value(json_object_get(u, "name")), "user");
	cr_assert_eq(json_array_size(json_object_get(u, "added")), 0);
	json_t *rep = json_array_get(json_object_get(u, "repeatables"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(rep, "file")), "R__views.sql");
	json_t *p = json_array_get(json_object_get(u, "problems"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(p, "kind")), "renamed");
	cr_assert_str_eq(json_string_value(json_object_get(p, "old_file")), "V1__init.sql");
	cr_assert_str_eq(json_string_value(json_object_get(p, "file")), "V1__initial.sql");
	cr_assert_str_eq(json_string_value(json_object_get(p, "version")), "1");
	json_t *pc = json_object_get(p, "commit");
	cr_assert_str_eq(json_string_value(json_object_get(pc, "id")), h4);
	cr_assert_str_eq(json_string_value(json_object_get(pc, "summary")), "user: rename V1, views");
	cr_assert_str_eq(json_string_value(json_object_get(pc, "author")), "Ann Author");
	cr_assert_eq(json_integer_value(json_object_get(doc, "exit")), 3);
	json_decref(doc);
	free(out);
	free(err);

	/* additions only: exit 0 */
	rc = run(&r, false, &out, &err, (const char *const[]){"diff", "--since", "v1.0", "--to", h2, NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "auth: 1 to apply, 0 repeatables to run again, 0 problems\n"), "%s", out);
	cr_assert(th_contains(out, "user: no migration changed\ntask: no migration changed\n"), "%s", out);
	cr_assert_str_eq(err, "");
	free(out);
	free(err);
	repo_done(&r);
}

/* Two branches each add "the next" version of task; after the merge both files exist. */
Test(git_cli, diff_reports_a_version_collision_from_merged_branches)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	tag(&r, "base", &c1);
	branch(&r, "feature", &c1);
	switch_to(&r, "feature");
	put(&r, "svc/task/V2__jobs.sql", "CREATE TABLE job_runs (job bigint);\n");
	git_oid cf = commit(&r, "task: V2 jobs", 2, NULL);
	switch_to(&r, "main");
	put(&r, "svc/task/V2__queue.sql", "CREATE TABLE queue (id bigint);\n");
	git_oid cm = commit(&r, "task: V2 queue", 3, NULL);
	put(&r, "svc/task/V2__jobs.sql", "CREATE TABLE job_runs (job bigint);\n");
	git_oid merge = commit(&r, "Merge branch 'feature'", 4, &cf);
	char hf[FL_GIT_ID_LEN], hm[FL_GIT_ID_LEN], hmerge[FL_GIT_ID_LEN];
	hex(&cf, hf);
	hex(&cm, hm);
	hex(&merge, hmerge);

	char *out, *err;
	int rc = run(&r, false, &out, &err,
	             (const char *const[]){"diff", "--since", "base", "--to", "HEAD", "task", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	char want[2048];
	snprintf(want, sizeof(want),
	         "task: 2 to apply, 0 repeatables to run again, 1 problem\n"
	         "  added       V2__jobs.sql  (%.7s task: V2 jobs, Ann Author, 2023-11-14)\n"
	         "  added       V2__queue.sql  (%.7s task: V2 queue, Ann Author, 2023-11-14)\n"
	         "  collision   V2__jobs.sql (%.7s task: V2 jobs, Ann Author, 2023-11-14) and V2__queue.sql "
	         "(%.7s task: V2 queue, Ann Author, 2023-11-14)\n",
	         hf, hm, hf, hm);
	cr_assert(th_contains(out, want), "want:\n%s\ngot:\n%s", want, out);
	cr_assert(
	    th_contains(err,
	                "svc/task/V2__jobs.sql: V2__jobs.sql and V2__queue.sql have the same version 2 "
	                "(both new: two branches each added it); give the newer one the next free version"),
	    "%s", err);
	free(out);
	free(err);

	/* a new file that takes a version an existing file already has */
	put(&r, "svc/auth/V1_0__again.sql", "SELECT 1;\n");
	rc = run(&r, false, &out, &err, (const char *const[]){"diff", "--since", "HEAD", "auth", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	char hc1[FL_GIT_ID_LEN];
	hex(&c1, hc1);
	snprintf(
	    want, sizeof(want),
	    "  added       V1_0__again.sql  (not committed yet)\n"
	    "  collision   V1_0__again.sql (not committed yet) and V1__init.sql (%.7s initial schema, Ann "
	    "Author, 2023-11-14)\n",
	    hc1);
	cr_assert(th_contains(out, want), "want:\n%s\ngot:\n%s", want, out);
	free(out);
	free(err);
	repo_done(&r);
}

/* Without --to the base is the merge base: what main did meanwhile is not the branch's change. */
Test(git_cli, diff_without_to_uses_the_merge_base_and_the_work_tree)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	branch(&r, "feature", &c1);
	/* main moves on: user gets V2, auth's V2 is edited (someone else's problem) */
	put(&r, "svc/user/V2__bio.sql", "ALTER TABLE profiles ADD COLUMN bio text;\n");
	put(&r, "svc/auth/V2__users.sql", "CREATE TABLE users (id bigint, name text);\n");
	commit(&r, "main: user V2, auth edit", 2, NULL);
	switch_to(&r, "feature");
	put(&r, "svc/task/V2__jobs.sql", "CREATE TABLE job_runs (job bigint);\n");
	git_oid cf = commit(&r, "task: V2 jobs", 3, NULL);
	put(&r, "svc/task/V3__more.sql", "ALTER TABLE job_runs ADD COLUMN at timestamptz;\n"); /* untracked */
	put(&r, "svc/user/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 5 AS five;\n");   /* unstaged */
	char hf[FL_GIT_ID_LEN], h1[FL_GIT_ID_LEN];
	hex(&cf, hf);
	hex(&c1, h1);

	char *out, *err;
	int rc = run(&r, false, &out, &err, (const char *const[]){"diff", "--since", "main", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	char want[2048];
	snprintf(want, sizeof(want),
	         "diff %.7s..work tree (base: where HEAD forked from the given revision)\n"
	         "auth: no migration changed\n"
	         "user: 0 to apply, 1 repeatable to run again, 0 problems\n"
	         "  repeatable  R__views.sql  (not committed yet)\n"
	         "task: 2 to apply, 0 repeatables to run again, 0 problems\n"
	         "  added       V2__jobs.sql  (%.7s task: V2 jobs, Ann Author, 2023-11-14)\n"
	         "  added       V3__more.sql  (not committed yet)\n",
	         h1, hf);
	cr_assert_str_eq(out, want);
	free(out);
	free(err);

	/* the same revisions compared as given: main's work looks undone by the branch */
	rc = run(&r, false, &out, &err,
	         (const char *const[]){"diff", "--since", "main", "--to", "feature", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	cr_assert(
	    th_contains(
	        out, "auth: 0 to apply, 0 repeatables to run again, 1 problem\n  modified    V2__users.sql"),
	    "%s", out);
	free(out);
	free(err);
	repo_done(&r);
}

Test(git_cli, errors_where_ci_trips)
{
	struct repo r;
	repo_init(&r, true);
	commit(&r, "initial schema", 1, NULL);
	put(&r, "svc/auth/V3__tokens.sql", "CREATE TABLE tokens (t text);\n");
	commit(&r, "auth: tokens", 2, NULL);
	char *out, *err;
	int rc = run(&r, false, &out, &err, (const char *const[]){"diff", "--since", "mian", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err, "flotilla: unknown revision 'mian'; did you mean 'main'?\n");
	free(out);
	free(err);
	rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--rev", "v9.9", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err, "flotilla: unknown revision 'v9.9'\n");
	free(out);
	free(err);
	rc = run(&r, true, &out, &err, (const char *const[]){"status", "--since", "main", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "flotilla: --since is for migrate"), "%s", err);
	free(out);
	free(err);
	rc = run(&r, false, &out, &err, (const char *const[]){"diff", NULL});
	cr_assert_eq(rc, 2);
	cr_assert(th_contains(err, "flotilla: diff needs --since REV"), "%s", err);
	free(out);
	free(err);

	/* a shallow clone lacks the base */
	if (th_sh("command -v git", &out) == 0) {
		free(out);
		char *clone = th_tmpdir();
		char cmd[2048];
		snprintf(cmd, sizeof(cmd), "rmdir '%s' && git clone -q --depth 1 'file://%s' '%s'", clone,
		         r.dir, clone);
		cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
		free(out);
		char m[1024];
		snprintf(m, sizeof(m), "%s/flotilla.toml", clone);
		rc = th_run(
		    clone, NULL, &out, &err,
		    (const char *const[]){"flotilla", "-m", m, "diff", "--since", "origin/main~1", NULL});
		cr_assert_eq(rc, 2, "%s", err);
		cr_assert_str_eq(err,
		                 "flotilla: the base revision origin/main~1 is not in this clone; fetch full "
		                 "history, e.g. actions/checkout with fetch-depth: 0\n");
		free(out);
		free(err);
		free(clone);
	} else {
		free(out);
	}
	repo_done(&r);

	/* outside any repository: --since and --rev refuse, naming the manifest */
	struct repo plain;
	repo_init(&plain, false);
	rc = run(&plain, false, &out, &err, (const char *const[]){"diff", "--since", "HEAD", NULL});
	cr_assert_eq(rc, 2);
	char want[1024];
	snprintf(want, sizeof(want),
	         "flotilla: %s is not inside a git repository; --since and --rev need one\n", plain.manifest);
	cr_assert_str_eq(err, want);
	free(out);
	free(err);
	rc = run(&plain, true, &out, &err, (const char *const[]){"plan", "--rev", "HEAD", NULL});
	cr_assert_eq(rc, 2);
	cr_assert_str_eq(err, want);
	free(out);
	free(err);
	repo_done(&plain);
}

/* ---------------------------------------------------------------- with a database */

static char *db_value(struct repo *r, const char *svc, const char *sql)
{
	char db[128];
	snprintf(db, sizeof(db), "%s_%s", r->project, svc);
	PGconn *c = th_connect(db);
	char *v = th_query1(c, sql);
	PQfinish(c);
	return v;
}

static void drop_dbs(struct repo *r)
{
	PGconn *c = th_connect("postgres");
	char sql[512];
	for (size_t i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s_%s\" WITH (FORCE)", r->project,
		         SVCS[i]);
		th_exec(c, sql);
	}
	PQfinish(c);
}

static json_t *json_of(const char *out)
{
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert(doc, "not JSON: %s\n%s", je.text, out);
	return doc;
}

Test(par_git, migrate_since_touches_only_changed_services, .timeout = 240)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	tag(&r, "v1", &c1);
	put(&r, "svc/auth/V3__tokens.sql", "CREATE TABLE tokens (t text);\n");
	git_oid c2 = commit(&r, "auth: tokens", 2, NULL);
	char h2[FL_GIT_ID_LEN];
	hex(&c2, h2);

	char *out, *err;
	int rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--since", "v1", "--json", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	json_t *doc = json_of(out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "git_commit")), h2);
	cr_assert(json_is_false(json_object_get(doc, "git_dirty")), "%s", out);
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(svcs, 0), "result")), "ok");
	for (size_t i = 1; i < 3; i++) {
		json_t *s = json_array_get(svcs, i);
		cr_assert_str_eq(json_string_value(json_object_get(s, "result")), "skipped", "%s", SVCS[i]);
		cr_assert_str_eq(json_string_value(json_object_get(s, "skip_reason")),
		                 "no migration changed since v1");
	}
	json_decref(doc);
	free(out);
	free(err);

	char *v =
	    db_value(&r, "auth",
	             "SELECT string_agg(script, ',' ORDER BY installed_rank) FROM flyway_schema_history "
	             "WHERE type = 'SQL'");
	cr_assert_str_eq(v, "V1__init.sql,V2__users.sql,V3__tokens.sql");
	free(v);
	v = db_value(&r, "auth",
	             "SELECT git_commit || ' ' || git_dirty FROM flotilla.run ORDER BY id DESC LIMIT 1");
	char want[128];
	snprintf(want, sizeof(want), "%s false", h2);
	cr_assert_str_eq(v, want);
	free(v);
	/* the skipped services were provisioned, but never migrated: no history, no ledger */
	for (size_t i = 1; i < 3; i++) {
		v = db_value(
		    &r, SVCS[i],
		    "SELECT count(*) FROM pg_class WHERE relname IN ('flyway_schema_history', 'run')");
		cr_assert_str_eq(v, "0", "%s was touched", SVCS[i]);
		free(v);
	}

	/* plain lines name the reason; an uncommitted file in task selects task and marks the run dirty */
	put(&r, "svc/task/V2__jobs.sql", "CREATE TABLE job_runs (job bigint);\n");
	rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--since", "HEAD", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(err, "auth: skipped: no migration changed since HEAD"), "%s", err);
	cr_assert(th_contains(err, "user: skipped: no migration changed since HEAD"), "%s", err);
	free(out);
	free(err);
	v = db_value(&r, "task",
	             "SELECT git_commit || ' ' || git_dirty FROM flotilla.run ORDER BY id DESC LIMIT 1");
	snprintf(want, sizeof(want), "%s true", h2);
	cr_assert_str_eq(v, want);
	free(v);
	v = db_value(&r, "user",
	             "SELECT count(*) FROM pg_class WHERE relname IN ('flyway_schema_history', 'run')");
	cr_assert_str_eq(v, "0");
	free(v);
	drop_dbs(&r);
	repo_done(&r);
}

static const char V2_TAGGED[] = "CREATE TABLE users (id bigint);\n";
static const char V2_EDITED[] = "CREATE TABLE users (id bigint, email text);\n";

Test(par_git, rev_applies_the_tagged_files_and_validate_names_the_commit, .timeout = 240)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	tag(&r, "v1", &c1);
	char h1[FL_GIT_ID_LEN];
	hex(&c1, h1);
	/* the work tree holds other content: an edited V2 and a stray file */
	put(&r, "svc/auth/V2__users.sql", V2_EDITED);
	put(&r, "svc/auth/V3__stray.sql", "CREATE TABLE stray (id int);\n");

	char *out, *err;
	int rc = run(&r, true, &out, &err,
	             (const char *const[]){"migrate", "--rev", "v1", "--json", "auth", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	json_t *doc = json_of(out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "git_commit")), h1);
	cr_assert(json_is_false(json_object_get(doc, "git_dirty")), "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	char *v = db_value(&r, "auth",
	                   "SELECT string_agg(script || ':' || checksum, ',' ORDER BY installed_rank) "
	                   "FROM flyway_schema_history WHERE type = 'SQL'");
	char want[512];
	snprintf(want, sizeof(want), "V1__init.sql:%d,V2__users.sql:%d",
	         (int)fl_migration_checksum("CREATE TABLE accounts (id bigint PRIMARY KEY);\n", 47),
	         (int)fl_migration_checksum(V2_TAGGED, strlen(V2_TAGGED)));
	cr_assert_str_eq(v, want);
	free(v);
	v = db_value(&r, "auth", "SELECT count(*) FROM pg_class WHERE relname = 'stray'");
	cr_assert_str_eq(v, "0");
	free(v);

	/* plan and validate from the tag: nothing to do, valid */
	rc = run(&r, true, &out, &err, (const char *const[]){"validate", "--rev", "v1", "auth", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert_str_eq(out, "auth: valid\n");
	free(out);
	free(err);

	/* the work tree's edit is not committed: validate says so */
	rm(&r, "svc/auth/V3__stray.sql");
	rc = run(&r, true, &out, &err, (const char *const[]){"validate", "auth", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	cr_assert(
	    th_contains(err, "realign checksums with the files (changed in the work tree, not committed)\n"),
	    "%s", err);
	free(out);
	free(err);

	/* committed after it was applied: validate names that commit */
	git_oid c2 = commit_at(&r, "auth: add email to users", (int64_t)time(NULL) + 120, NULL);
	char h2[FL_GIT_ID_LEN];
	hex(&c2, h2);
	time_t when = time(NULL) + 120;
	struct tm tm;
	char date[16];
	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	rc = run(&r, true, &out, &err, (const char *const[]){"validate", "auth", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	snprintf(want, sizeof(want),
	         "auth: svc/auth/V2__users.sql: checksum mismatch for migration 2 (users): applied with %d (",
	         (int)fl_migration_checksum(V2_TAGGED, strlen(V2_TAGGED)));
	cr_assert(th_contains(err, want), "%s", err);
	snprintf(
	    want, sizeof(want),
	    "run 'flotilla repair auth -e test' to realign checksums with the files (changed by %.7s auth: "
	    "add "
	    "email to "
	    "users, Ann Author, %s)\n",
	    h2, date);
	cr_assert(th_contains(err, want), "want %s\ngot %s", want, err);
	free(out);
	free(err);

	/* a migrate without --rev records HEAD, clean */
	rc = run(&r, true, &out, &err, (const char *const[]){"status", "--json", "auth", NULL});
	cr_assert_eq(rc, 0, "%s", err);
	doc = json_of(out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "git_commit")), h2);
	cr_assert(json_is_false(json_object_get(doc, "git_dirty")), "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	drop_dbs(&r);
	repo_done(&r);
}

/*
 * A migrate without --json looks git up only when a service has work (fleet.c
 * git_lazy): the three services asking at once all record HEAD; a no-op
 * writes no run row; an uncommitted file is recorded as dirty.
 */
Test(par_git, a_plain_migrate_records_the_commit_it_looks_up_when_it_has_work, .timeout = 240)
{
	struct repo r;
	repo_init(&r, true);
	git_oid c1 = commit(&r, "initial schema", 1, NULL);
	char h1[FL_GIT_ID_LEN], want[128];
	hex(&c1, h1);
	char *out, *err;
	int rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	snprintf(want, sizeof(want), "1 %s false", h1);
	for (size_t i = 0; i < 3; i++) {
		char *v =
		    db_value(&r, SVCS[i],
		             "SELECT count(*) || ' ' || max(git_commit) || ' ' || bool_or(git_dirty) FROM "
		             "flotilla.run");
		cr_assert_str_eq(v, want, "%s", SVCS[i]);
		free(v);
	}
	rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	put(&r, "svc/auth/V3__tokens.sql", "CREATE TABLE tokens (t text);\n");
	rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	char *v = db_value(&r, "auth",
	                   "SELECT count(*) || ' ' || (array_agg(git_commit || ' ' || git_dirty ORDER BY id "
	                   "DESC))[1] FROM flotilla.run");
	snprintf(want, sizeof(want), "2 %s true", h1);
	cr_assert_str_eq(v, want, "the no-op wrote no run row, the third run is dirty");
	free(v);
	v = db_value(&r, "user", "SELECT count(*) FROM flotilla.run");
	cr_assert_str_eq(v, "1");
	free(v);
	drop_dbs(&r);
	repo_done(&r);
}

Test(par_git, without_git_everything_works_and_no_commit_is_recorded, .timeout = 240)
{
	struct repo r;
	repo_init(&r, false);
	char *out, *err;
	int rc = run(&r, true, &out, &err, (const char *const[]){"migrate", "--json", "user", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	json_t *doc = json_of(out);
	cr_assert(json_is_null(json_object_get(doc, "git_commit")), "%s", out);
	cr_assert(json_is_null(json_object_get(doc, "git_dirty")), "%s", out);
	json_decref(doc);
	free(out);
	free(err);
	char *v = db_value(&r, "user",
	                   "SELECT coalesce(git_commit, 'null') || ' ' || coalesce(git_dirty::text, 'null') "
	                   "FROM flotilla.run ORDER BY id DESC LIMIT 1");
	cr_assert_str_eq(v, "null null");
	free(v);
	drop_dbs(&r);
	repo_done(&r);
}
