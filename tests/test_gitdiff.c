/*
 * gitdiff against real repositories built with libgit2 in a temporary
 * directory: three service folders, tags, a branch merged back with an
 * evil merge, a rename, a deletion, a CRLF file; and a shallow clone made
 * with the git program (libgit2 1.5 cannot make one).
 */
#include <criterion/criterion.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gitdiff.h"
#include "harness.h"
#include "migration.h"
#include "source.h"

#define T0 1700000000

static const char *const AUTH = "services/auth/migrations";
static const char *const USER = "services/user/migrations";
static const char *const TASK = "services/task/migrations";

static const char CRLF_SQL[] = "CREATE TABLE jobs (\r\n  id bigint PRIMARY KEY,\r\n  state text\r\n);\r\n";
static const char USER_V1[] = "CREATE TABLE profiles (id bigint PRIMARY KEY, name text NOT NULL,\n"
                              "  created timestamptz NOT NULL DEFAULT now());\n";

/* The repository every test starts from; commits by their role. */
struct fx {
	char *dir;
	git_repository *repo;
	git_oid c1, c2, c3, c4, c5, m;
	char c1h[FL_GIT_ID_LEN], c2h[FL_GIT_ID_LEN], c3h[FL_GIT_ID_LEN], c4h[FL_GIT_ID_LEN],
	    c5h[FL_GIT_ID_LEN], mh[FL_GIT_ID_LEN];
};

static void ok(int rc, const char *what)
{
	const git_error *e = git_error_last();
	cr_assert(rc >= 0, "%s: %s", what, e && e->message ? e->message : "?");
}

static void put(struct fx *f, const char *rel, const char *content)
{
	th_write(f->dir, rel, content);
}

static void rm(struct fx *f, const char *rel)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	cr_assert(unlink(p) == 0, "unlink %s", p);
}

/* Stages the whole work tree (new, changed and deleted files) and commits on HEAD. */
static git_oid commit(struct fx *f, const char *msg, int tick, const git_oid *second_parent)
{
	git_index *idx;
	ok(git_repository_index(&idx, f->repo), "index");
	ok(git_index_add_all(idx, NULL, 0, NULL, NULL), "add_all");
	ok(git_index_update_all(idx, NULL, NULL, NULL), "update_all");
	ok(git_index_write(idx), "index write");
	git_oid tree_id;
	ok(git_index_write_tree(&tree_id, idx), "write_tree");
	git_index_free(idx);
	git_tree *tree;
	ok(git_tree_lookup(&tree, f->repo, &tree_id), "tree");
	git_signature *sig;
	ok(git_signature_new(&sig, "Ann Author", "ann@example.com", T0 + 100 * tick, 60), "sig");
	const git_commit *parents[2];
	size_t np = 0;
	git_commit *p1 = NULL, *p2 = NULL;
	git_oid head;
	if (git_reference_name_to_id(&head, f->repo, "HEAD") == 0) {
		ok(git_commit_lookup(&p1, f->repo, &head), "parent");
		parents[np++] = p1;
	}
	if (second_parent) {
		ok(git_commit_lookup(&p2, f->repo, second_parent), "parent 2");
		parents[np++] = p2;
	}
	git_oid id;
	ok(git_commit_create(&id, f->repo, "HEAD", sig, sig, NULL, msg, tree, np, parents), "commit");
	git_commit_free(p1);
	git_commit_free(p2);
	git_signature_free(sig);
	git_tree_free(tree);
	return id;
}

static void switch_to(struct fx *f, const char *branch)
{
	char ref[128];
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	git_oid id;
	ok(git_reference_name_to_id(&id, f->repo, ref), ref);
	git_object *o;
	ok(git_object_lookup(&o, f->repo, &id, GIT_OBJECT_COMMIT), "lookup");
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE;
	ok(git_checkout_tree(f->repo, o, &co), "checkout");
	ok(git_repository_set_head(f->repo, ref), "set_head");
	git_object_free(o);
}

/*
 *  c1 (tag v1.0, lightweight) - c2 (tag v1.1, annotated) - c3 - c5 - m (main, HEAD)
 *                                                            \       /
 *                                                             c4 ---   (feature)
 */
static void build(struct fx *f)
{
	git_libgit2_init();
	memset(f, 0, sizeof(*f));
	f->dir = th_tmpdir();
	git_repository_init_options io;
	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_MKPATH;
	io.initial_head = "main";
	ok(git_repository_init_ext(&f->repo, f->dir, &io), "init");
	git_config *cfg;
	ok(git_repository_config(&cfg, f->repo), "config");
	ok(git_config_set_bool(cfg, "core.autocrlf", 0), "autocrlf"); /* bytes stay bytes */
	git_config_free(cfg);

	put(f, "README.md", "flotilla test repository\n");
	put(f, ".gitignore", "*.bak\n");
	put(f, "services/auth/migrations/V1__init.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY);\n");
	put(f, "services/auth/migrations/V2__users.sql", "CREATE TABLE users (id bigint);\n");
	put(f, "services/user/migrations/V1__init.sql", USER_V1);
	put(f, "services/user/migrations/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n");
	put(f, "services/task/migrations/V1__init.sql", CRLF_SQL);
	put(f, "services/task/migrations/sub/V1_1__more.sql", "ALTER TABLE jobs ADD COLUMN owner text;\n");
	put(f, "services/task/migrations/.gitkeep", "");
	f->c1 = commit(f, "initial schema", 1, NULL);
	git_object *o;
	ok(git_object_lookup(&o, f->repo, &f->c1, GIT_OBJECT_COMMIT), "c1");
	git_oid tag;
	ok(git_tag_create_lightweight(&tag, f->repo, "v1.0", o, 0), "v1.0");
	git_object_free(o);

	put(f, "services/auth/migrations/V3__sessions.sql", "CREATE TABLE sessions (token text);\n");
	put(f, "services/user/migrations/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 2 AS two;\n");
	f->c2 = commit(f, "auth: add sessions\n\nAnd a second paragraph that is not the summary.\n", 2, NULL);
	ok(git_object_lookup(&o, f->repo, &f->c2, GIT_OBJECT_COMMIT), "c2");
	git_signature *tagger;
	ok(git_signature_new(&tagger, "Rel Eng", "rel@example.com", T0 + 250, 0), "tagger");
	ok(git_tag_create(&tag, f->repo, "v1.1", o, tagger, "release 1.1\n", 0), "v1.1");
	git_signature_free(tagger);
	git_object_free(o);

	put(f, "services/auth/migrations/V2__users.sql",
	    "CREATE TABLE users (id bigint);\nCREATE INDEX users_id ON users (id);\n");
	rm(f, "services/user/migrations/V1__init.sql");
	put(f, "services/user/migrations/V1__initial.sql", USER_V1);
	rm(f, "services/task/migrations/sub/V1_1__more.sql");
	put(f, "README.md", "flotilla test repository, edited\n");
	f->c3 = commit(f, "fix index in V2", 3, NULL);

	git_commit *c3;
	git_reference *br;
	ok(git_commit_lookup(&c3, f->repo, &f->c3), "c3");
	ok(git_branch_create(&br, f->repo, "feature", c3, 0), "branch");
	git_reference_free(br);
	git_commit_free(c3);
	switch_to(f, "feature");
	put(f, "services/task/migrations/V2__jobs.sql",
	    "CREATE TABLE job_runs (job bigint, at timestamptz);\n");
	f->c4 = commit(f, "task: add V2 jobs", 4, NULL);

	switch_to(f, "main");
	put(f, "services/user/migrations/V2__profiles.sql", "ALTER TABLE profiles ADD COLUMN bio text;\n");
	f->c5 = commit(f, "user: add profiles V2", 5, NULL);

	/* the merge takes feature's file and also edits R__views itself */
	put(f, "services/task/migrations/V2__jobs.sql",
	    "CREATE TABLE job_runs (job bigint, at timestamptz);\n");
	put(f, "services/user/migrations/R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 3 AS three;\n");
	f->m = commit(f, "Merge branch 'feature'", 6, &f->c4);

	git_oid_tostr(f->c1h, FL_GIT_ID_LEN, &f->c1);
	git_oid_tostr(f->c2h, FL_GIT_ID_LEN, &f->c2);
	git_oid_tostr(f->c3h, FL_GIT_ID_LEN, &f->c3);
	git_oid_tostr(f->c4h, FL_GIT_ID_LEN, &f->c4);
	git_oid_tostr(f->c5h, FL_GIT_ID_LEN, &f->c5);
	git_oid_tostr(f->mh, FL_GIT_ID_LEN, &f->m);
}

static void done(struct fx *f)
{
	git_repository_free(f->repo);
	free(f->dir);
	git_libgit2_shutdown();
}

static fl_git *open_ok(const char *path)
{
	fl_git *g = NULL;
	fl_error *err = NULL;
	int rc = fl_git_open(path, &g, &err);
	cr_assert_eq(rc, 0, "open %s: %s", path, err ? err->msg : "");
	return g;
}

static char *err_msg(fl_error *err)
{
	cr_assert(err);
	char *m = strdup(err->msg);
	cr_assert_eq(err->next, NULL);
	fl_error_free(err);
	return m;
}

/* Every change rendered "folder status old -> new", one per line. */
static char *render(const fl_git_change *c, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		fl_buf_printf(&b, "%zu %s %s -> %s [%s -> %s]\n", c[i].folder,
		              fl_git_status_name(c[i].status), c[i].old_path ? c[i].old_path : "-",
		              c[i].new_path ? c[i].new_path : "-", c[i].old_name ? c[i].old_name : "-",
		              c[i].new_name ? c[i].new_name : "-");
	}
	return fl_buf_detach(&b);
}

static char *diff_ok(fl_git *g, const char *from, const char *to, const char *const *folders, size_t nf)
{
	fl_git_change *c = NULL;
	size_t n = 0;
	fl_error *err = NULL;
	int rc = fl_git_diff(g, from, to, folders, nf, &c, &n, &err);
	cr_assert_eq(rc, 0, "diff %s..%s: %s", from, to ? to : "(work tree)", err ? err->msg : "");
	char *s = render(c, n);
	fl_git_changes_free(c, n);
	return s;
}

static char *resolve_ok(fl_git *g, const char *rev)
{
	char id[FL_GIT_ID_LEN];
	fl_error *err = NULL;
	int rc = fl_git_resolve(g, rev, id, &err);
	cr_assert_eq(rc, 0, "resolve %s: %s", rev, err ? err->msg : "");
	return strdup(id);
}

static char *resolve_err(fl_git *g, const char *rev)
{
	char id[FL_GIT_ID_LEN];
	fl_error *err = NULL;
	cr_assert_eq(fl_git_resolve(g, rev, id, &err), -1, "%s resolved", rev);
	cr_assert_eq(err->kind, FL_EINPUT);
	return err_msg(err);
}

Test(gitdiff, open_finds_repository_and_refuses_outside)
{
	struct fx f;
	build(&f);
	char *real = realpath(f.dir, NULL);
	char want[1024];
	snprintf(want, sizeof(want), "%s/", real);

	char sub[1024];
	snprintf(sub, sizeof(sub), "%s/services/auth", f.dir);
	fl_git *g = open_ok(sub);
	cr_assert_str_eq(fl_git_workdir(g), want);
	fl_git_free(g);
	/* a manifest file: its directory is where the search starts */
	snprintf(sub, sizeof(sub), "%s/README.md", f.dir);
	g = open_ok(sub);
	cr_assert_str_eq(fl_git_workdir(g), want);
	fl_git_free(g);

	char *outside = th_tmpdir();
	fl_error *err = NULL;
	cr_assert_eq(fl_git_open(outside, &g, &err), -1);
	cr_assert_null(g);
	char *m = err_msg(err);
	snprintf(want, sizeof(want), "%s is not inside a git repository; --since and --rev need one",
	         outside);
	cr_assert_str_eq(m, want);
	free(m);
	free(outside);
	free(real);
	done(&f);
}

Test(gitdiff, revision_forms_resolve)
{
	struct fx f;
	build(&f);
	/* a remote-tracking branch, as a CI checkout has it */
	git_reference *r;
	ok(git_reference_create(&r, f.repo, "refs/remotes/origin/main", &f.c5, 0, "test"), "origin/main");
	git_reference_free(r);
	fl_git *g = open_ok(f.dir);
	char shortid[8];
	memcpy(shortid, f.c3h, 7);
	shortid[7] = '\0';
	struct {
		const char *rev;
		const char *want;
	} cases[] = {
	    {"main", f.mh},    {"HEAD", f.mh},         {"feature", f.c4h}, {"refs/heads/feature", f.c4h},
	    {"v1.0", f.c1h},   {"v1.1", f.c2h},        {"v1.1^{}", f.c2h}, {"v1.1^{commit}", f.c2h},
	    {f.c3h, f.c3h},    {shortid, f.c3h},       {"HEAD~1", f.c5h},  {"HEAD^2", f.c4h},
	    {"HEAD~3", f.c2h}, {"origin/main", f.c5h}, {"main^1^", f.c3h},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *id = resolve_ok(g, cases[i].rev);
		cr_assert_str_eq(id, cases[i].want, "%s", cases[i].rev);
		free(id);
	}
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, unknown_revisions_are_named)
{
	struct fx f;
	build(&f);
	git_reference *r;
	ok(git_reference_create(&r, f.repo, "refs/remotes/origin/main", &f.c5, 0, "test"), "origin/main");
	git_reference_free(r);
	fl_git *g = open_ok(f.dir);
	struct {
		const char *rev, *msg;
	} cases[] = {
	    {"origin/mian", "unknown revision 'origin/mian'; did you mean 'origin/main'?"},
	    {"featrue~1", "unknown revision 'featrue~1'; did you mean 'feature~1'?"},
	    {"v1.2", "unknown revision 'v1.2'; did you mean 'v1.0'?"},
	    {"no-such-thing", "unknown revision 'no-such-thing'"},
	    {"HEAD~9", "unknown revision 'HEAD~9'"},
	    {"0123456789abcdef0123456789abcdef01234567",
	     "unknown revision '0123456789abcdef0123456789abcdef01234567'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *m = resolve_err(g, cases[i].rev);
		cr_assert_str_eq(m, cases[i].msg);
		free(m);
	}
	/* a tree is not a commit */
	char tree[FL_GIT_ID_LEN + 8];
	git_commit *c;
	ok(git_commit_lookup(&c, f.repo, &f.c1), "c1");
	git_oid_tostr(tree, FL_GIT_ID_LEN, git_commit_tree_id(c));
	git_commit_free(c);
	char *m = resolve_err(g, tree);
	char want[128];
	snprintf(want, sizeof(want), "revision '%s' is not a commit", tree);
	cr_assert_str_eq(m, want);
	free(m);
	/* and the diff says the same about its base */
	const char *folders[] = {AUTH};
	fl_git_change *ch;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_diff(g, "origin/mian", NULL, folders, 1, &ch, &n, &err), -1);
	m = err_msg(err);
	cr_assert_str_eq(m, "unknown revision 'origin/mian'; did you mean 'origin/main'?");
	free(m);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, classifies_changes_between_commits)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	const char *folders[] = {AUTH, USER, TASK};
	char *s = diff_ok(g, "v1.0", "v1.1", folders, 3);
	cr_assert_str_eq(
	    s, "0 added - -> services/auth/migrations/V3__sessions.sql [- -> V3__sessions.sql]\n"
	       "1 modified services/user/migrations/R__views.sql -> services/user/migrations/R__views.sql "
	       "[R__views.sql -> R__views.sql]\n");
	free(s);

	s = diff_ok(g, "v1.1", "main", folders, 3);
	cr_assert_str_eq(
	    s, "0 modified services/auth/migrations/V2__users.sql -> services/auth/migrations/V2__users.sql "
	       "[V2__users.sql -> V2__users.sql]\n"
	       "1 modified services/user/migrations/R__views.sql -> services/user/migrations/R__views.sql "
	       "[R__views.sql -> R__views.sql]\n"
	       "1 renamed services/user/migrations/V1__init.sql -> services/user/migrations/V1__initial.sql "
	       "[V1__init.sql -> V1__initial.sql]\n"
	       "1 added - -> services/user/migrations/V2__profiles.sql [- -> V2__profiles.sql]\n"
	       "2 added - -> services/task/migrations/V2__jobs.sql [- -> V2__jobs.sql]\n"
	       "2 deleted services/task/migrations/sub/V1_1__more.sql -> - [sub/V1_1__more.sql -> -]\n");
	free(s);

	/* folder order is the caller's; other forms of the same folders; a service with no change */
	char abs[1024];
	snprintf(abs, sizeof(abs), "%s/./services/task/migrations/", f.dir);
	const char *other[] = {abs, "services/user/../auth/migrations", "services/user/migrations/"};
	s = diff_ok(g, "HEAD~1", "HEAD", other, 3);
	cr_assert_str_eq(
	    s, "0 added - -> services/task/migrations/V2__jobs.sql [- -> V2__jobs.sql]\n"
	       "2 modified services/user/migrations/R__views.sql -> services/user/migrations/R__views.sql "
	       "[R__views.sql -> R__views.sql]\n");
	free(s);
	s = diff_ok(g, "feature", "main", (const char *[]){AUTH}, 1);
	cr_assert_str_eq(s, "");
	free(s);
	/* the whole repository is a folder too */
	s = diff_ok(g, "v1.1", "HEAD~2", (const char *[]){""}, 1);
	cr_assert(th_contains(s, "0 modified README.md -> README.md [README.md -> README.md]\n"), "%s", s);
	free(s);

	/* a folder outside the repository */
	fl_git_change *ch;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_diff(g, "v1.0", "v1.1", (const char *[]){"../elsewhere"}, 1, &ch, &n, &err), -1);
	char *m = err_msg(err);
	cr_assert_str_eq(m, "../elsewhere is outside the repository");
	free(m);
	err = NULL;
	cr_assert_eq(fl_git_diff(g, "v1.0", "v1.1", (const char *[]){"/etc"}, 1, &ch, &n, &err), -1);
	m = err_msg(err);
	char want[1200];
	snprintf(want, sizeof(want), "/etc is outside the repository %s", fl_git_workdir(g));
	cr_assert_str_eq(m, want);
	free(m);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, work_tree_changes_include_index_and_untracked)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	const char *folders[] = {AUTH, USER, TASK};
	char *s = diff_ok(g, "HEAD", NULL, folders, 3);
	cr_assert_str_eq(s, "", "a fresh checkout has no change");
	free(s);

	put(&f, "services/auth/migrations/V4__tokens.sql",
	    "CREATE TABLE tokens (t text, expires timestamptz);\n");
	put(&f, "services/task/migrations/deep/er/V3__deep.sql", "CREATE TABLE deep (level int);\n");
	put(&f, "services/user/migrations/V2__profiles.sql",
	    "ALTER TABLE profiles ADD COLUMN bio varchar(200);\n");
	/* staged, never committed */
	put(&f, "services/user/migrations/V3__staged.sql", "CREATE TABLE staged (s int);\n");
	git_index *idx;
	ok(git_repository_index(&idx, f.repo), "index");
	ok(git_index_add_bypath(idx, "services/user/migrations/V3__staged.sql"), "add");
	ok(git_index_write(idx), "write");
	git_index_free(idx);
	/* moved without telling git: a rename inside a folder and a move between two */
	rm(&f, "services/user/migrations/V1__initial.sql");
	put(&f, "services/user/migrations/V1__renamed.sql", USER_V1);
	rm(&f, "services/auth/migrations/V1__init.sql");
	put(&f, "services/task/migrations/V1_5__moved.sql",
	    "CREATE TABLE accounts (id bigint PRIMARY KEY);\n");
	/* none counts: an ignored file, hidden ones, a file outside the folders */
	put(&f, "services/auth/migrations/V5__x.sql.bak", "old\n");
	put(&f, "services/auth/migrations/.draft/V8__wip.sql", "-- hidden\n");
	put(&f, "services/task/migrations/.gitkeep", "now with content\n");
	put(&f, "README.md", "changed outside the folders\n");

	s = diff_ok(g, "HEAD", NULL, folders, 3);
	cr_assert_str_eq(
	    s,
	    "0 deleted services/auth/migrations/V1__init.sql -> - [V1__init.sql -> -]\n"
	    "0 added - -> services/auth/migrations/V4__tokens.sql [- -> V4__tokens.sql]\n"
	    "1 renamed services/user/migrations/V1__initial.sql -> services/user/migrations/V1__renamed.sql "
	    "[V1__initial.sql -> V1__renamed.sql]\n"
	    "1 modified services/user/migrations/V2__profiles.sql -> "
	    "services/user/migrations/V2__profiles.sql "
	    "[V2__profiles.sql -> V2__profiles.sql]\n"
	    "1 added - -> services/user/migrations/V3__staged.sql [- -> V3__staged.sql]\n"
	    "2 added - -> services/task/migrations/V1_5__moved.sql [- -> V1_5__moved.sql]\n"
	    "2 added - -> services/task/migrations/deep/er/V3__deep.sql [- -> deep/er/V3__deep.sql]\n");
	free(s);

	/* against an older base the work tree adds up with the commits since */
	s = diff_ok(g, "v1.1", NULL, (const char *[]){AUTH}, 1);
	cr_assert_str_eq(
	    s, "0 deleted services/auth/migrations/V1__init.sql -> - [V1__init.sql -> -]\n"
	       "0 modified services/auth/migrations/V2__users.sql -> services/auth/migrations/V2__users.sql "
	       "[V2__users.sql -> V2__users.sql]\n"
	       "0 added - -> services/auth/migrations/V4__tokens.sql [- -> V4__tokens.sql]\n");
	free(s);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, commits_that_changed_a_file)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	fl_git_commit *c;
	size_t n;
	fl_error *err = NULL;

	cr_assert_eq(fl_git_file_history(g, NULL, "services/auth/migrations/V2__users.sql", 0, &c, &n, &err),
	             0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(c[0].id, f.c3h);
	cr_assert_str_eq(c[0].summary, "fix index in V2");
	cr_assert_str_eq(c[1].id, f.c1h);
	cr_assert_str_eq(c[1].summary, "initial schema");
	cr_assert_str_eq(c[0].author_name, "Ann Author");
	cr_assert_str_eq(c[0].author_email, "ann@example.com");
	cr_assert_eq(c[0].author_time, T0 + 300);
	cr_assert_eq(c[0].author_offset, 60);
	cr_assert_eq(c[0].commit_time, T0 + 300);
	cr_assert_eq(strlen(c[0].short_id), 7);
	cr_assert_eq(strncmp(c[0].short_id, f.c3h, 7), 0);
	fl_git_commits_free(c, n);

	/* the merge edited R__views itself: it is named, and so are the commits on both sides */
	cr_assert_eq(fl_git_file_history(g, "main", "services/user/migrations/R__views.sql", 0, &c, &n, &err),
	             0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(c[0].id, f.mh);
	cr_assert_str_eq(c[0].summary, "Merge branch 'feature'");
	cr_assert_str_eq(c[1].id, f.c2h);
	cr_assert_str_eq(c[1].summary, "auth: add sessions", "the summary is the first paragraph");
	cr_assert_str_eq(c[2].id, f.c1h);
	fl_git_commits_free(c, n);

	/* brought in by a merge: named by the commit that made it, not by the merge */
	char abs[1024];
	snprintf(abs, sizeof(abs), "%s/services/task/migrations/V2__jobs.sql", f.dir);
	cr_assert_eq(fl_git_file_history(g, NULL, abs, 0, &c, &n, &err), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].id, f.c4h);
	cr_assert_str_eq(c[0].summary, "task: add V2 jobs");
	fl_git_commits_free(c, n);

	/* renamed into existence; max; a path never there; an older starting point */
	cr_assert_eq(
	    fl_git_file_history(g, NULL, "services/user/migrations/V1__initial.sql", 0, &c, &n, &err), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].id, f.c3h);
	fl_git_commits_free(c, n);
	cr_assert_eq(fl_git_file_history(g, NULL, "services/user/migrations/R__views.sql", 1, &c, &n, &err),
	             0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].id, f.mh);
	fl_git_commits_free(c, n);
	cr_assert_eq(fl_git_file_history(g, NULL, "services/none/V1__x.sql", 0, &c, &n, &err), 0);
	cr_assert_eq(n, 0);
	free(c);
	cr_assert_eq(
	    fl_git_file_history(g, "v1.1", "services/auth/migrations/V2__users.sql", 0, &c, &n, &err), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].id, f.c1h);
	fl_git_commits_free(c, n);
	cr_assert_null(err);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, last_change_after_a_point)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	const char *p = "services/auth/migrations/V2__users.sql";
	fl_git_commit c;
	fl_error *err = NULL;
	/* applied after c2 was made: c3 changed it since */
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, T0 + 200, NULL, &c, &err), 1);
	cr_assert_str_eq(c.id, f.c3h);
	cr_assert_str_eq(c.summary, "fix index in V2");
	fl_git_commit_clear(&c);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, T0 + 300, NULL, &c, &err), 0);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, 0, "v1.1", &c, &err), 1);
	cr_assert_str_eq(c.id, f.c3h);
	fl_git_commit_clear(&c);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, 0, "main", &c, &err), 0);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, 0, "feature", &c, &err), 0);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, 0, f.c3h, &c, &err), 0);
	cr_assert_eq(fl_git_last_change_after(g, "v1.1", p, 0, NULL, &c, &err), 1);
	cr_assert_str_eq(c.id, f.c1h);
	fl_git_commit_clear(&c);
	cr_assert_null(err);
	cr_assert_eq(fl_git_last_change_after(g, NULL, p, 0, "v9", &c, &err), -1);
	char *m = err_msg(err);
	cr_assert_str_eq(m, "unknown revision 'v9'");
	free(m);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, reads_a_folder_from_a_revision)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	/* the work tree holds other content: the revision's bytes are what is read */
	put(&f, "services/task/migrations/V1__init.sql", "-- edited locally\n");
	put(&f, "services/task/migrations/V7__local.sql", "-- never committed\n");
	fl_file *fs;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_read_folder(g, "v1.0", TASK, "svc/task", &fs, &n, &err), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(fs[0].name, "V1__init.sql");
	cr_assert_str_eq(fs[0].path, "svc/task/V1__init.sql");
	cr_assert_eq(fs[0].len, strlen(CRLF_SQL));
	cr_assert_eq(memcmp(fs[0].data, CRLF_SQL, fs[0].len), 0, "CRLF bytes kept");
	cr_assert_eq(fs[0].data[fs[0].len], '\0');
	cr_assert_str_eq(fs[1].name, "sub/V1_1__more.sql");
	cr_assert_str_eq(fs[1].path, "svc/task/sub/V1_1__more.sql");
	cr_assert_str_eq(fs[1].data, "ALTER TABLE jobs ADD COLUMN owner text;\n");
	fl_git_files_free(fs, n);

	/* HEAD's blobs equal the files as checked out */
	ok(git_checkout_head(f.repo, &(git_checkout_options){.version = GIT_CHECKOUT_OPTIONS_VERSION,
	                                                     .checkout_strategy = GIT_CHECKOUT_FORCE}),
	   "checkout");
	char abs[1024];
	snprintf(abs, sizeof(abs), "%s/%s", f.dir, TASK);
	cr_assert_eq(fl_git_read_folder(g, "HEAD", abs, NULL, &fs, &n, &err), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(fs[0].name, "V1__init.sql");
	cr_assert_str_eq(fs[0].path, "services/task/migrations/V1__init.sql");
	cr_assert_str_eq(fs[1].name, "V2__jobs.sql");
	for (size_t i = 0; i < n; i++) {
		char p[1200];
		snprintf(p, sizeof(p), "%s/%s", abs, fs[i].name);
		char *disk = th_read(p);
		cr_assert_eq(fs[i].len, strlen(disk), "%s", p);
		cr_assert_eq(memcmp(fs[i].data, disk, fs[i].len), 0, "%s", p);
		cr_assert_eq(fl_migration_checksum(fs[i].data, fs[i].len),
		             fl_migration_checksum(disk, strlen(disk)));
		free(disk);
	}
	fl_git_files_free(fs, n);

	/* the same files as the directory source reads from the checkout, named alike */
	rm(&f, "services/task/migrations/V7__local.sql");
	fl_file *ds;
	size_t dn;
	cr_assert_eq(fl_source_dir(abs, "svc/task", &ds, &dn, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(fl_git_read_folder(g, "HEAD", TASK, "svc/task", &fs, &n, &err), 0);
	cr_assert_eq(n, dn);
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(fs[i].name, ds[i].name);
		cr_assert_str_eq(fs[i].path, ds[i].path);
		cr_assert_eq(fs[i].len, ds[i].len);
		cr_assert_eq(memcmp(fs[i].data, ds[i].data, fs[i].len), 0);
	}
	fl_git_files_free(fs, n);
	fl_source_free(ds, dn);

	cr_assert_eq(fl_git_read_folder(g, "v1.0", "services/nope/migrations", NULL, &fs, &n, &err), -1);
	char *m = err_msg(err);
	cr_assert_str_eq(m, "services/nope/migrations does not exist in v1.0");
	free(m);
	err = NULL;
	cr_assert_eq(fl_git_read_folder(g, "v1.0", "README.md", NULL, &fs, &n, &err), -1);
	m = err_msg(err);
	cr_assert_str_eq(m, "README.md is not a folder in v1.0");
	free(m);
	err = NULL;
	cr_assert_eq(fl_git_read_folder(g, "v2.0", TASK, NULL, &fs, &n, &err), -1);
	m = err_msg(err);
	cr_assert_str_eq(m, "unknown revision 'v2.0'; did you mean 'v1.0'?");
	free(m);
	fl_git_free(g);
	done(&f);
}

Test(gitdiff, head_and_dirty_work_tree)
{
	struct fx f;
	build(&f);
	fl_git *g = open_ok(f.dir);
	char id[FL_GIT_ID_LEN];
	bool dirty = true;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_head(g, NULL, 0, id, &dirty, &err), 0);
	cr_assert_str_eq(id, f.mh);
	cr_assert_not(dirty);
	put(&f, "services/auth/migrations/V9__x.sql.bak", "ignored\n");
	cr_assert_eq(fl_git_head(g, NULL, 0, id, &dirty, &err), 0);
	cr_assert_not(dirty, "ignored files do not count");
	put(&f, "services/auth/migrations/V9__x.sql", "untracked\n");
	cr_assert_eq(fl_git_head(g, NULL, 0, id, &dirty, &err), 0);
	cr_assert(dirty, "an untracked file counts");
	const char *folders[] = {USER, TASK};
	cr_assert_eq(fl_git_head(g, folders, 2, id, &dirty, &err), 0);
	cr_assert_not(dirty, "limited to other folders");
	put(&f, "services/user/migrations/R__views.sql", "-- edited\n");
	cr_assert_eq(fl_git_head(g, folders, 2, id, &dirty, &err), 0);
	cr_assert(dirty, "a modified file counts");
	cr_assert_null(err);
	fl_git_free(g);

	/* a repository without commits */
	char *empty = th_tmpdir();
	git_repository *r;
	ok(git_repository_init(&r, empty, 0), "init");
	git_repository_free(r);
	g = open_ok(empty);
	cr_assert_eq(fl_git_head(g, NULL, 0, id, &dirty, &err), -1);
	char *m = err_msg(err);
	cr_assert_str_eq(m, "the repository has no commits yet");
	free(m);
	fl_git_free(g);
	free(empty);
	done(&f);
}

/* 40 lines: enough text for a rename with an edit to stay similar */
static char *long_sql(const char *table, int edited)
{
	fl_buf b;
	fl_buf_init(&b);
	for (int i = 0; i < 40; i++)
		fl_buf_printf(&b, "ALTER TABLE %s ADD COLUMN c%d text; -- %s\n", table, i,
		              edited && i == 7 ? "edited" : "column");
	return fl_buf_detach(&b);
}

Test(gitdiff, renames_with_edits_and_links)
{
	struct fx f;
	build(&f);
	char *a = long_sql("accounts", 0), *b = long_sql("accounts", 1), *other = long_sql("other", 0);
	put(&f, "services/auth/migrations/V6__wide.sql", a);
	char link[1024];
	snprintf(link, sizeof(link), "%s/services/auth/migrations/latest.sql", f.dir);
	cr_assert_eq(symlink("V2__users.sql", link), 0);
	git_oid base = commit(&f, "wide table and a link", 7, NULL);
	char baseh[FL_GIT_ID_LEN];
	git_oid_tostr(baseh, FL_GIT_ID_LEN, &base);
	fl_git *g = open_ok(f.dir);
	const char *folders[] = {AUTH, USER, TASK};

	/* the link is not a migration: neither read nor listed */
	fl_file *fs;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_read_folder(g, "HEAD", AUTH, NULL, &fs, &n, &err), 0);
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_neq(fs[i].name, "latest.sql");
	fl_git_files_free(fs, n);
	char *s = diff_ok(g, "HEAD~1", "HEAD", folders, 3);
	cr_assert_str_eq(s, "0 added - -> services/auth/migrations/V6__wide.sql [- -> V6__wide.sql]\n");
	free(s);

	/* renamed and edited in the work tree, untracked */
	rm(&f, "services/auth/migrations/V6__wide.sql");
	put(&f, "services/auth/migrations/V6__wide_table.sql", b);
	put(&f, "services/auth/migrations/V7__other.sql", other);
	s = diff_ok(g, "HEAD", NULL, folders, 3);
	cr_assert_str_eq(
	    s,
	    "0 renamed services/auth/migrations/V6__wide.sql -> services/auth/migrations/V6__wide_table.sql "
	    "[V6__wide.sql -> V6__wide_table.sql]\n"
	    "0 added - -> services/auth/migrations/V7__other.sql [- -> V7__other.sql]\n");
	free(s);
	/* and committed */
	commit(&f, "rename with an edit", 8, NULL);
	s = diff_ok(g, baseh, "HEAD", folders, 3);
	cr_assert_str_eq(
	    s,
	    "0 renamed services/auth/migrations/V6__wide.sql -> services/auth/migrations/V6__wide_table.sql "
	    "[V6__wide.sql -> V6__wide_table.sql]\n"
	    "0 added - -> services/auth/migrations/V7__other.sql [- -> V7__other.sql]\n");
	free(s);
	/* a link replaced by a file is an added file */
	cr_assert_eq(unlink(link), 0);
	put(&f, "services/auth/migrations/latest.sql", "SELECT 'now a file';\n");
	s = diff_ok(g, "HEAD", NULL, folders, 3);
	cr_assert_str_eq(s, "0 added - -> services/auth/migrations/latest.sql [- -> latest.sql]\n");
	free(s);
	free(a);
	free(b);
	free(other);
	fl_git_free(g);
	done(&f);
}

static void shallow_clone(const char *src, const char *branch, const char *dst)
{
	char *out = NULL;
	if (th_sh("command -v git", &out) != 0)
		cr_assert_fail(
		    "this test needs the git program to make a shallow clone (libgit2 1.5 cannot); "
		    "`make deps` installs it");
	free(out);
	char cmd[3000];
	snprintf(cmd, sizeof(cmd), "git clone -q --depth 1 --branch %s 'file://%s' '%s'", branch, src, dst);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s:\n%s", cmd, out);
	free(out);
}

Test(gitdiff, shallow_clone_lacking_the_base)
{
	struct fx f;
	build(&f);
	char *tmp = th_tmpdir();
	char clone[1200];
	snprintf(clone, sizeof(clone), "%s/clone", tmp);
	shallow_clone(f.dir, "feature", clone);
	fl_git *g = open_ok(clone);
	char *id = resolve_ok(g, "HEAD");
	cr_assert_str_eq(id, f.c4h);
	free(id);
	id = resolve_ok(g, "origin/feature");
	cr_assert_str_eq(id, f.c4h);
	free(id);

	const char *revs[] = {"origin/main", "HEAD~1", "v1.0", f.c2h};
	for (size_t i = 0; i < sizeof(revs) / sizeof(revs[0]); i++) {
		char *m = resolve_err(g, revs[i]);
		char want[300];
		snprintf(
		    want, sizeof(want),
		    "the base revision %s is not in this clone; fetch full history, e.g. actions/checkout "
		    "with fetch-depth: 0",
		    revs[i]);
		cr_assert_str_eq(m, want);
		free(m);
	}
	fl_git_change *ch;
	size_t n;
	fl_error *err = NULL;
	cr_assert_eq(fl_git_diff(g, "origin/main", NULL, (const char *[]){TASK}, 1, &ch, &n, &err), -1);
	char *m = err_msg(err);
	cr_assert_str_eq(m, "the base revision origin/main is not in this clone; fetch full history, e.g. "
	                    "actions/checkout with fetch-depth: 0");
	free(m);

	/* what is there still works; history stops at the clone's edge */
	char *s = diff_ok(g, "HEAD", NULL, (const char *[]){TASK}, 1);
	cr_assert_str_eq(s, "");
	free(s);
	fl_git_commit *c;
	err = NULL;
	cr_assert_eq(fl_git_file_history(g, NULL, "services/auth/migrations/V2__users.sql", 0, &c, &n, &err),
	             0, "%s", err ? err->msg : "");
	cr_assert_eq(n, 1);
	cr_assert_str_eq(c[0].id, f.c4h, "the oldest commit present counts as having added it");
	fl_git_commits_free(c, n);
	fl_git_free(g);
	free(tmp);
	done(&f);
}
