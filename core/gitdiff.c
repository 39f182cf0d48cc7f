#include "gitdiff.h"

#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "text.h"

struct fl_git {
	git_repository *repo;
	char *workdir;     /* absolute, trailing '/', NULL when bare */
	char *realworkdir; /* the same through realpath, computed on first need */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libgit2(void)
{
	git_libgit2_init();
}

static const char *git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown libgit2 error";
}

static void oid_hex(const git_oid *oid, char id[FL_GIT_ID_LEN])
{
	git_oid_tostr(id, FL_GIT_ID_LEN, oid);
}

const char *fl_git_status_name(fl_git_status s)
{
	switch (s) {
	case FL_GIT_ADDED:
		return "added";
	case FL_GIT_MODIFIED:
		return "modified";
	case FL_GIT_DELETED:
		return "deleted";
	case FL_GIT_RENAMED:
		return "renamed";
	}
	return "?";
}

/* ---- opening ---- */

int fl_git_open(const char *path_inside, fl_git **out, fl_error **err)
{
	pthread_once(&init_once, init_libgit2);
	*out = NULL;
	char *start = fl_strdup(path_inside);
	struct stat st;
	if (stat(start, &st) == 0 && !S_ISDIR(st.st_mode)) {
		/* a manifest file: its directory is where the search starts */
		char *slash = strrchr(start, '/');
		if (!slash) {
			free(start);
			start = fl_strdup(".");
		} else if (slash == start) {
			slash[1] = '\0';
		} else {
			*slash = '\0';
		}
	}
	git_repository *repo = NULL;
	int rc = git_repository_open_ext(&repo, start, 0, NULL);
	free(start);
	if (rc == GIT_ENOTFOUND) {
		*err = fl_error_new("%s is not inside a git repository; --since and --rev need one",
		                    path_inside);
		return -1;
	}
	if (rc == GIT_EOWNER) {
		/* CI containers often check out as another user */
		*err = fl_error_new(
		    "cannot open the git repository of %s: %s (if it is yours: git config --global "
		    "--add safe.directory <its path>)",
		    path_inside, git_msg());
		return -1;
	}
	if (rc < 0) {
		*err = fl_error_new("cannot open the git repository of %s: %s", path_inside, git_msg());
		return -1;
	}
	fl_git *g = fl_calloc(1, sizeof(*g));
	g->repo = repo;
	const char *wd = git_repository_workdir(repo);
	if (wd) {
		size_t len = strlen(wd);
		g->workdir = (len && wd[len - 1] == '/') ? fl_strdup(wd) : fl_asprintf("%s/", wd);
	}
	*out = g;
	return 0;
}

void fl_git_free(fl_git *g)
{
	if (!g)
		return;
	git_repository_free(g->repo);
	free(g->workdir);
	free(g->realworkdir);
	free(g);
}

const char *fl_git_workdir(const fl_git *g)
{
	return g->workdir;
}

/* ---- paths ---- */

/*
 * Lexically normalises a '/'-separated path: empty and "." components
 * go, ".." removes the one before. Returns NULL when ".." climbs above the
 * start. An absolute path keeps its leading '/'; a relative one comes back
 * without leading or trailing '/' ("" for the top itself).
 */
static char *norm_path(const char *p)
{
	size_t len = strlen(p);
	char *out = fl_malloc(len + 2);
	size_t o = 0;
	bool abs = p[0] == '/';
	if (abs)
		out[o++] = '/';
	size_t base = o;
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 1 && s[0] == '.') {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (o == base) {
				free(out);
				return NULL;
			}
			while (o > base && out[o - 1] != '/')
				o--;
			if (o > base)
				o--; /* the separator before the removed component */
		} else {
			if (o > base)
				out[o++] = '/';
			memcpy(out + o, s, n);
			o += n;
		}
		s += n;
	}
	out[o] = '\0';
	return out;
}

/* realpath of the longest existing prefix of an absolute path, with the rest appended. */
static char *canon_abs(const char *abs)
{
	char *tmp = fl_strdup(abs);
	size_t cut = strlen(tmp);
	for (;;) {
		char save = tmp[cut];
		tmp[cut] = '\0';
		char *real = realpath(cut ? tmp : "/", NULL);
		tmp[cut] = save;
		if (real) {
			char *r = fl_asprintf("%s%s", real, abs + cut);
			free(real);
			free(tmp);
			return r;
		}
		if (cut == 0)
			break;
		do
			cut--;
		while (cut > 0 && tmp[cut] != '/');
	}
	free(tmp);
	return fl_strdup(abs);
}

/* The part of `abs` below `dir` (given with a trailing '/'), or NULL. */
static const char *below(const char *abs, const char *dir)
{
	size_t n = strlen(dir);
	if (strncmp(abs, dir, n) == 0)
		return abs + n;
	if (strlen(abs) == n - 1 && strncmp(abs, dir, n - 1) == 0)
		return abs + n - 1; /* the work tree itself */
	return NULL;
}

/* `path` (repo-relative or absolute in the work tree) -> normalised repo-relative ("" for the top). */
static int repo_rel(fl_git *g, const char *path, char **rel, fl_error **err)
{
	*rel = NULL;
	char *n = norm_path(path);
	if (!n) {
		*err = fl_error_new("%s is outside the repository", path);
		return -1;
	}
	if (n[0] != '/') {
		*rel = n;
		return 0;
	}
	if (!g->workdir) {
		*err = fl_error_new("%s: the repository has no work tree", path);
		free(n);
		return -1;
	}
	const char *r = below(n, g->workdir);
	if (!r) {
		/* symbolic links (/tmp -> /private/tmp ...): compare real paths */
		if (!g->realworkdir) {
			char *c = canon_abs(g->workdir);
			size_t len = strlen(c);
			g->realworkdir = (len && c[len - 1] == '/') ? c : fl_asprintf("%s/", c);
			if (g->realworkdir != c)
				free(c);
		}
		char *c = canon_abs(n);
		r = below(c, g->realworkdir);
		if (r) {
			*rel = fl_strdup(r);
			free(c);
			free(n);
			return 0;
		}
		free(c);
		*err = fl_error_new("%s is outside the repository %s", path, g->workdir);
		free(n);
		return -1;
	}
	*rel = fl_strdup(r);
	free(n);
	return 0;
}

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- revisions ---- */

struct refnames {
	char **v;
	size_t n, cap;
};

static void collect_refnames(git_repository *repo, struct refnames *r)
{
	git_reference_iterator *it = NULL;
	if (git_reference_iterator_new(&it, repo) < 0)
		return;
	git_reference *ref;
	while (git_reference_next(&ref, it) == 0) {
		const char *sh = git_reference_shorthand(ref);
		if (sh && *sh) {
			if (r->n == r->cap) {
				r->cap = r->cap ? 2 * r->cap : 16;
				r->v = fl_realloc(r->v, r->cap * sizeof(*r->v));
			}
			r->v[r->n++] = fl_strdup(sh);
		}
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static fl_error *unknown_rev(fl_git *g, const char *rev)
{
	/* suggest for the name part only: "origin/mian~2" -> "origin/main~2" */
	size_t base = strcspn(rev, "~^@:");
	if (base == 0)
		return fl_error_new("unknown revision '%s'", rev);
	char *name = fl_strndup(rev, base);
	struct refnames r = {0};
	collect_refnames(g->repo, &r);
	if (r.n > 1) /* ties go to the first name, the same on every run */
		qsort(r.v, r.n, sizeof(*r.v), str_cmp);
	const char *s = fl_text_suggest(name, (const char *const *)r.v, r.n);
	fl_error *e = s && strcmp(s, name) != 0
	                  ? fl_error_new("unknown revision '%s'; did you mean '%s%s'?", rev, s, rev + base)
	                  : fl_error_new("unknown revision '%s'", rev);
	free_strs(r.v, r.n);
	free(name);
	return e;
}

static fl_error *shallow_error(const char *rev)
{
	return fl_error_new("the base revision %s is not in this clone; fetch full history, e.g. "
	                    "actions/checkout with fetch-depth: 0",
	                    rev);
}

static fl_error *rev_error(fl_git *g, const char *rev, int rc)
{
	if (rc == GIT_ENOTFOUND && git_repository_is_shallow(g->repo) == 1)
		return shallow_error(rev);
	switch (rc) {
	case GIT_ENOTFOUND:
		return unknown_rev(g, rev);
	case GIT_EAMBIGUOUS:
		return fl_error_new(
		    "ambiguous revision '%s': more than one object starts with it; give more digits", rev);
	case GIT_EUNBORNBRANCH:
		return fl_error_new("revision '%s': the branch has no commits yet", rev);
	case GIT_EINVALIDSPEC:
		return fl_error_new("invalid revision '%s'", rev);
	case GIT_EPEEL:
		return fl_error_new("revision '%s' is not a commit", rev);
	default:
		return fl_error_new("cannot resolve revision '%s': %s", rev, git_msg());
	}
}

static int resolve_commit(fl_git *g, const char *rev, git_commit **out, fl_error **err)
{
	*out = NULL;
	git_object *obj = NULL, *peeled = NULL;
	int rc = git_revparse_single(&obj, g->repo, rev);
	if (rc == 0) {
		rc = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
		git_object_free(obj);
		if (rc == 0) {
			*out = (git_commit *)peeled;
			return 0;
		}
		/* a tag pointing at a tree or blob; or an object the clone lacks */
		if (rc == GIT_EINVALIDSPEC)
			rc = GIT_EPEEL;
	}
	*err = rev_error(g, rev, rc);
	return -1;
}

int fl_git_resolve(fl_git *g, const char *rev, char id[FL_GIT_ID_LEN], fl_error **err)
{
	git_commit *c;
	if (resolve_commit(g, rev, &c, err) < 0)
		return -1;
	oid_hex(git_commit_id(c), id);
	git_commit_free(c);
	return 0;
}

int fl_git_merge_base(fl_git *g, const char *a, const char *b, char id[FL_GIT_ID_LEN], fl_error **err)
{
	git_commit *ca, *cb;
	if (resolve_commit(g, a, &ca, err) < 0)
		return -1;
	if (resolve_commit(g, b, &cb, err) < 0) {
		git_commit_free(ca);
		return -1;
	}
	git_oid base;
	int rc = git_merge_base(&base, g->repo, git_commit_id(ca), git_commit_id(cb));
	git_commit_free(ca);
	git_commit_free(cb);
	if (rc == 0) {
		oid_hex(&base, id);
		return 0;
	}
	if (git_repository_is_shallow(g->repo) == 1)
		*err = shallow_error(a);
	else if (rc == GIT_ENOTFOUND)
		*err = fl_error_new("%s and %s have no common history", a, b);
	else
		*err = fl_error_new("cannot find the merge base of %s and %s: %s", a, b, git_msg());
	return -1;
}

int fl_git_since_range(fl_git *g, const char *since, const char *to, char base[FL_GIT_ID_LEN],
                       char to_id[FL_GIT_ID_LEN], bool *merge_base, fl_error **err)
{
	*merge_base = false;
	to_id[0] = '\0';
	if (to)
		return fl_git_resolve(g, since, base, err) < 0 || fl_git_resolve(g, to, to_id, err) < 0 ? -1
		                                                                                        : 0;
	char since_id[FL_GIT_ID_LEN], head[FL_GIT_ID_LEN];
	if (fl_git_resolve(g, since, since_id, err) < 0)
		return -1;
	fl_error *e = NULL;
	bool dirty;
	bool have_head = fl_git_head(g, NULL, 0, head, &dirty, &e) == 0;
	fl_error_free(e);
	e = NULL;
	/* unrelated histories (or no HEAD yet): compare with REV itself */
	if (have_head && fl_git_merge_base(g, since_id, head, base, &e) == 0)
		*merge_base = strcmp(base, since_id) != 0;
	else
		memcpy(base, since_id, FL_GIT_ID_LEN);
	fl_error_free(e);
	return 0;
}

/* ---- diff ---- */

/* Is repo-relative `path` inside `folder` ("" = everything)? */
static bool in_folder(const char *path, const char *folder, size_t flen)
{
	return flen == 0 || (strncmp(path, folder, flen) == 0 && path[flen] == '/');
}

/* The deepest folder holding `path`, or SIZE_MAX. */
static size_t folder_of(const char *path, char **folders, const size_t *lens, size_t n)
{
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		if (in_folder(path, folders[i], lens[i]) && (best == SIZE_MAX || lens[i] > lens[best]))
			best = i;
	return best;
}

/*
 * One change while the diff is being built: the blob ids let renames be
 * paired without reading any file.
 */
struct item {
	fl_git_change c;
	git_oid old_id, new_id;
	bool new_id_known; /* an untracked file's id is computed only when needed */
	bool gone;         /* the added half of a rename: dropped from the result */
};

struct items {
	struct item *v;
	size_t n, cap;
};

static void add_item(struct items *it, size_t folder, fl_git_status st, const git_diff_delta *d)
{
	if (it->n == it->cap) {
		it->cap = it->cap ? 2 * it->cap : 32;
		it->v = fl_realloc(it->v, it->cap * sizeof(*it->v));
	}
	struct item *x = &it->v[it->n++];
	memset(x, 0, sizeof(*x));
	x->c.folder = folder;
	x->c.status = st;
	if (st != FL_GIT_ADDED) {
		x->c.old_path = fl_strdup(d->old_file.path);
		git_oid_cpy(&x->old_id, &d->old_file.id);
	}
	if (st != FL_GIT_DELETED) {
		x->c.new_path = fl_strdup(d->new_file.path);
		git_oid_cpy(&x->new_id, &d->new_file.id);
		x->new_id_known =
		    (d->new_file.flags & GIT_DIFF_FLAG_VALID_ID) && !git_oid_is_zero(&d->new_file.id);
	}
}

static void set_names(fl_git_change *c, size_t flen)
{
	size_t skip = flen ? flen + 1 : 0;
	c->old_name = c->old_path ? c->old_path + skip : NULL;
	c->new_name = c->new_path ? c->new_path + skip : NULL;
}

/* The deleted item d and the added item a are one file, renamed. */
static void pair(struct item *d, struct item *a)
{
	d->c.status = FL_GIT_RENAMED;
	d->c.new_path = a->c.new_path;
	a->c.new_path = NULL;
	a->gone = true;
}

static int change_cmp(const void *pa, const void *pb)
{
	const fl_git_change *a = pa, *b = pb;
	if (a->folder != b->folder)
		return a->folder < b->folder ? -1 : 1;
	const char *ka = a->new_path ? a->new_path : a->old_path;
	const char *kb = b->new_path ? b->new_path : b->old_path;
	int c = strcmp(ka, kb);
	if (c)
		return c;
	return (int)a->status - (int)b->status;
}

void fl_git_changes_free(fl_git_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(changes[i].old_path);
		free(changes[i].new_path);
	}
	free(changes);
}

static int folders_rel(fl_git *g, const char *const *folders, size_t n, char ***out, size_t **lens,
                       bool *whole, fl_error **err)
{
	char **rel = fl_calloc(n ? n : 1, sizeof(*rel));
	size_t *len = fl_calloc(n ? n : 1, sizeof(*len));
	*whole = false;
	for (size_t i = 0; i < n; i++) {
		if (repo_rel(g, folders[i], &rel[i], err) < 0) {
			free_strs(rel, i);
			free(len);
			return -1;
		}
		len[i] = strlen(rel[i]);
		if (len[i] == 0)
			*whole = true;
	}
	*out = rel;
	*lens = len;
	return 0;
}

static int make_diff(fl_git *g, git_tree *from, git_tree *to, char **paths, size_t npaths, git_diff **out)
{
	git_diff_options o;
	git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
	/* folder names are literal paths, never patterns ("[x]" is a folder) */
	o.flags = GIT_DIFF_DISABLE_PATHSPEC_MATCH | GIT_DIFF_INCLUDE_TYPECHANGE;
	if (!to)
		o.flags |= GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS;
	o.pathspec.strings = paths;
	o.pathspec.count = npaths;
	return to ? git_diff_tree_to_tree(out, g->repo, from, to, &o)
	          : git_diff_tree_to_workdir_with_index(out, g->repo, from, &o);
}

/* Does a folder-relative path have a component starting with '.'? (fl_source_dir skips those) */
static bool hidden(const char *name)
{
	for (const char *p = name; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (*p == '.')
			return true;
	}
	return false;
}

static bool is_file(uint16_t mode)
{
	return mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/*
 * Pairs deleted and added files of one folder into renames: same content
 * first (ids compared, nothing read), then libgit2's similarity on what
 * is left. libgit2 alone would read and fingerprint every added file of
 * the whole diff as soon as one file was deleted anywhere: seconds, not
 * milliseconds, on a release that adds thousands of migrations.
 */
static int find_renames(fl_git *g, git_tree *from, git_tree *to, struct items *it, size_t folder,
                        fl_error **err)
{
	size_t nd = 0, na = 0;
	for (size_t i = 0; i < it->n; i++) {
		if (it->v[i].c.folder != folder)
			continue;
		nd += it->v[i].c.status == FL_GIT_DELETED;
		na += it->v[i].c.status == FL_GIT_ADDED;
	}
	if (!nd || !na)
		return 0;

	/* exact: the same blob under another name (the same base name preferred) */
	for (size_t i = 0; i < it->n; i++) {
		struct item *d = &it->v[i];
		if (d->c.folder != folder || d->c.status != FL_GIT_DELETED)
			continue;
		struct item *best = NULL;
		for (size_t j = 0; j < it->n; j++) {
			struct item *a = &it->v[j];
			if (a->c.folder != folder || a->c.status != FL_GIT_ADDED || a->gone)
				continue;
			if (!a->new_id_known && !to) {
				/* an untracked file: libgit2 hashes only what it must */
				char *full = fl_asprintf("%s%s", g->workdir, a->c.new_path);
				int rc = git_odb_hashfile(&a->new_id, full, GIT_OBJECT_BLOB);
				free(full);
				if (rc < 0) /* unreadable: cannot be an exact copy */
					memset(&a->new_id, 0, sizeof(a->new_id));
				a->new_id_known = true;
			}
			if (!a->new_id_known || !git_oid_equal(&a->new_id, &d->old_id))
				continue;
			if (!best || strcmp(base_name(a->c.new_path), base_name(d->c.old_path)) == 0)
				best = a;
			if (strcmp(base_name(best->c.new_path), base_name(d->c.old_path)) == 0)
				break;
		}
		if (best)
			pair(d, best);
	}

	/* similar: only the files still unpaired go to libgit2 */
	char **paths = fl_malloc((nd + na) * sizeof(*paths));
	size_t np = 0, ud = 0, ua = 0;
	for (size_t i = 0; i < it->n; i++) {
		struct item *x = &it->v[i];
		if (x->c.folder != folder || x->gone)
			continue;
		if (x->c.status == FL_GIT_DELETED) {
			paths[np++] = x->c.old_path;
			ud++;
		} else if (x->c.status == FL_GIT_ADDED) {
			paths[np++] = x->c.new_path;
			ua++;
		}
	}
	int ret = 0;
	git_diff *diff = NULL;
	if (ud && ua) {
		git_diff_find_options fo;
		git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
		fo.flags = GIT_DIFF_FIND_RENAMES | (to ? 0 : GIT_DIFF_FIND_FOR_UNTRACKED);
		if (make_diff(g, from, to, paths, np, &diff) < 0 || git_diff_find_similar(diff, &fo) < 0) {
			*err = fl_error_new("cannot detect renames: %s", git_msg());
			ret = -1;
		}
		size_t ndelta = ret == 0 ? git_diff_num_deltas(diff) : 0;
		for (size_t k = 0; k < ndelta; k++) {
			const git_diff_delta *dl = git_diff_get_delta(diff, k);
			if (dl->status != GIT_DELTA_RENAMED)
				continue;
			struct item *d = NULL, *a = NULL;
			for (size_t i = 0; i < it->n && (!d || !a); i++) {
				struct item *x = &it->v[i];
				if (x->c.folder != folder || x->gone)
					continue;
				if (x->c.status == FL_GIT_DELETED &&
				    strcmp(x->c.old_path, dl->old_file.path) == 0)
					d = x;
				else if (x->c.status == FL_GIT_ADDED &&
				         strcmp(x->c.new_path, dl->new_file.path) == 0)
					a = x;
			}
			if (d && a)
				pair(d, a);
		}
	}
	git_diff_free(diff);
	free(paths);
	return ret;
}

int fl_git_diff(fl_git *g, const char *from, const char *to, const char *const *folders, size_t nfolders,
                fl_git_change **out, size_t *n, fl_error **err)
{
	*out = NULL;
	*n = 0;
	if (!to && !g->workdir) {
		*err = fl_error_new("the repository has no work tree to compare %s with", from);
		return -1;
	}
	char **rel;
	size_t *lens;
	bool whole;
	if (folders_rel(g, folders, nfolders, &rel, &lens, &whole, err) < 0)
		return -1;

	int ret = -1;
	git_commit *cf = NULL, *ct = NULL;
	git_tree *tf = NULL, *tt = NULL;
	git_diff *diff = NULL;
	struct items it = {0};
	if (resolve_commit(g, from, &cf, err) < 0)
		goto out;
	if (to && resolve_commit(g, to, &ct, err) < 0)
		goto out;
	if (git_commit_tree(&tf, cf) < 0 || (ct && git_commit_tree(&tt, ct) < 0)) {
		*err = git_repository_is_shallow(g->repo) == 1
		           ? shallow_error(from)
		           : fl_error_new("cannot read the tree of %s: %s", tf ? to : from, git_msg());
		goto out;
	}
	if (nfolders == 0) {
		ret = 0; /* no folder, no change */
		goto out;
	}
	if (make_diff(g, tf, tt, whole ? NULL : rel, whole ? 0 : nfolders, &diff) < 0) {
		*err =
		    fl_error_new("cannot compare %s with %s: %s", from, to ? to : "the work tree", git_msg());
		goto out;
	}
	size_t nd = git_diff_num_deltas(diff);
	for (size_t i = 0; i < nd; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		/* only regular files count, as for fl_git_read_folder: not links, not submodules */
		bool was = is_file(d->old_file.mode), is = is_file(d->new_file.mode);
		fl_git_status st;
		switch (d->status) {
		case GIT_DELTA_ADDED:
		case GIT_DELTA_UNTRACKED:
			if (!is)
				continue;
			st = FL_GIT_ADDED;
			break;
		case GIT_DELTA_DELETED:
			if (!was)
				continue;
			st = FL_GIT_DELETED;
			break;
		case GIT_DELTA_MODIFIED:
		case GIT_DELTA_TYPECHANGE:
			if (!was && !is)
				continue;
			st = was && is ? FL_GIT_MODIFIED : is ? FL_GIT_ADDED : FL_GIT_DELETED;
			break;
		case GIT_DELTA_CONFLICTED:
		case GIT_DELTA_UNREADABLE:
			st = FL_GIT_MODIFIED;
			break;
		default: /* unmodified, ignored; no renames or copies asked for here */
			continue;
		}
		const char *p = st == FL_GIT_DELETED ? d->old_file.path : d->new_file.path;
		size_t f = folder_of(p, rel, lens, nfolders);
		if (f != SIZE_MAX && !hidden(p + (lens[f] ? lens[f] + 1 : 0)))
			add_item(&it, f, st, d);
	}
	/* A rename between two folders stays a deletion in one and an addition in the other. */
	for (size_t f = 0; f < nfolders; f++)
		if (find_renames(g, tf, tt, &it, f, err) < 0)
			goto out;

	size_t k = 0;
	for (size_t i = 0; i < it.n; i++) {
		if (it.v[i].gone)
			continue;
		it.v[k].c = it.v[i].c;
		set_names(&it.v[k].c, lens[it.v[k].c.folder]);
		k++;
	}
	fl_git_change *res = fl_malloc((k ? k : 1) * sizeof(*res));
	for (size_t i = 0; i < k; i++)
		res[i] = it.v[i].c;
	if (k > 1)
		qsort(res, k, sizeof(*res), change_cmp);
	free(it.v);
	it.v = NULL;
	it.n = 0;
	*out = res;
	*n = k;
	ret = 0;
out:
	for (size_t i = 0; i < it.n; i++) {
		free(it.v[i].c.old_path);
		free(it.v[i].c.new_path);
	}
	free(it.v);
	git_diff_free(diff);
	git_tree_free(tf);
	git_tree_free(tt);
	git_commit_free(cf);
	git_commit_free(ct);
	free_strs(rel, nfolders);
	free(lens);
	return ret;
}

/* ---- reading a folder from a tree ---- */

void fl_git_files_free(fl_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(files[i].name);
		free(files[i].path);
		free(files[i].data);
	}
	free(files);
}

struct reader {
	git_repository *repo;
	const char *rev;
	const char *display;
	struct {
		fl_file *v;
		size_t n, cap;
	} files;
	fl_buf name; /* the current directory, relative to the folder, with a trailing '/' */
};

static int read_tree(struct reader *r, const git_tree *tree, fl_error **err)
{
	size_t n = git_tree_entrycount(tree);
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		git_filemode_t mode = git_tree_entry_filemode(e);
		const char *ename = git_tree_entry_name(e);
		if (ename[0] == '.')
			continue; /* hidden, as fl_source_dir skips them: both sources see the same files */
		size_t mark = r->name.len;
		if (mode == GIT_FILEMODE_TREE) {
			git_tree *sub;
			if (git_tree_lookup(&sub, r->repo, git_tree_entry_id(e)) < 0) {
				*err = fl_error_new("%s/%s%s: cannot read it from %s: %s", r->display,
				                    r->name.data, ename, r->rev, git_msg());
				return -1;
			}
			fl_buf_puts(&r->name, ename);
			fl_buf_putc(&r->name, '/');
			int rc = read_tree(r, sub, err);
			git_tree_free(sub);
			r->name.len = mark;
			r->name.data[mark] = '\0';
			if (rc < 0)
				return -1;
			continue;
		}
		if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
			continue; /* symbolic links, submodules */
		git_blob *b;
		if (git_blob_lookup(&b, r->repo, git_tree_entry_id(e)) < 0) {
			*err = fl_error_new("%s/%s%s: cannot read it from %s: %s", r->display, r->name.data,
			                    ename, r->rev, git_msg());
			return -1;
		}
		if (r->files.n == r->files.cap) {
			r->files.cap = r->files.cap ? 2 * r->files.cap : 64;
			r->files.v = fl_realloc(r->files.v, r->files.cap * sizeof(*r->files.v));
		}
		fl_file *f = &r->files.v[r->files.n++];
		size_t len = (size_t)git_blob_rawsize(b);
		f->data = fl_malloc(len + 1);
		memcpy(f->data, git_blob_rawcontent(b), len);
		f->data[len] = '\0';
		f->len = len;
		git_blob_free(b);
		f->name = fl_asprintf("%s%s", r->name.data, ename);
		f->path = r->display[0] ? fl_asprintf("%s/%s", r->display, f->name) : fl_strdup(f->name);
	}
	return 0;
}

static int file_cmp(const void *pa, const void *pb)
{
	const fl_file *a = pa, *b = pb;
	return strcmp(a->name, b->name);
}

int fl_git_read_folder(fl_git *g, const char *rev, const char *folder, const char *display_dir,
                       fl_file **files, size_t *n, fl_error **err)
{
	*files = NULL;
	*n = 0;
	char *rel;
	if (repo_rel(g, folder, &rel, err) < 0)
		return -1;
	int ret = -1;
	git_commit *c = NULL;
	git_tree *root = NULL, *sub = NULL;
	git_tree_entry *e = NULL;
	struct reader r = {.repo = g->repo, .rev = rev, .display = display_dir ? display_dir : rel};
	fl_buf_init(&r.name);
	fl_buf_puts(&r.name, "");
	if (resolve_commit(g, rev, &c, err) < 0)
		goto out;
	if (git_commit_tree(&root, c) < 0) {
		*err = fl_error_new("cannot read the tree of %s: %s", rev, git_msg());
		goto out;
	}
	if (rel[0]) {
		int rc = git_tree_entry_bypath(&e, root, rel);
		if (rc == GIT_ENOTFOUND) {
			*err = fl_error_new("%s does not exist in %s", rel, rev);
			goto out;
		}
		if (rc < 0 || git_tree_entry_type(e) != GIT_OBJECT_TREE) {
			*err = fl_error_new("%s is not a folder in %s", rel, rev);
			goto out;
		}
		if (git_tree_lookup(&sub, g->repo, git_tree_entry_id(e)) < 0) {
			*err = fl_error_new("cannot read %s from %s: %s", rel, rev, git_msg());
			goto out;
		}
	}
	if (read_tree(&r, sub ? sub : root, err) < 0) {
		fl_git_files_free(r.files.v, r.files.n);
		goto out;
	}
	if (r.files.n > 1)
		qsort(r.files.v, r.files.n, sizeof(*r.files.v), file_cmp);
	*files = r.files.v;
	*n = r.files.n;
	ret = 0;
out:
	fl_buf_free(&r.name);
	git_tree_entry_free(e);
	git_tree_free(sub);
	git_tree_free(root);
	git_commit_free(c);
	free(rel);
	return ret;
}

/* ---- history of a file ---- */

void fl_git_commit_clear(fl_git_commit *c)
{
	free(c->author_name);
	free(c->author_email);
	free(c->summary);
	memset(c, 0, sizeof(*c));
}

void fl_git_commits_free(fl_git_commit *commits, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fl_git_commit_clear(&commits[i]);
	free(commits);
}

static void commit_info(git_commit *c, fl_git_commit *out)
{
	memset(out, 0, sizeof(*out));
	oid_hex(git_commit_id(c), out->id);
	git_buf b = {0};
	if (git_object_short_id(&b, (const git_object *)c) == 0 && b.ptr) {
		snprintf(out->short_id, sizeof(out->short_id), "%s", b.ptr);
	} else {
		memcpy(out->short_id, out->id, 7);
		out->short_id[7] = '\0';
	}
	git_buf_dispose(&b);
	const git_signature *a = git_commit_author(c);
	out->author_name = fl_strdup(a && a->name ? a->name : "");
	out->author_email = fl_strdup(a && a->email ? a->email : "");
	out->author_time = a ? (int64_t)a->when.time : 0;
	out->author_offset = a ? a->when.offset : 0;
	out->commit_time = (int64_t)git_commit_time(c);
	const char *s = git_commit_summary(c);
	out->summary = fl_strdup(s ? s : "");
}

/*
 * The trees a history walk looked at last, two per depth of the path. A
 * migrations folder of a few thousand files is a tree of some 100 KiB,
 * which libgit2 does not keep (it caches trees up to 4 KiB), and the walk
 * compares each commit with its parent, so each such tree is wanted twice:
 * as the parent's, then as the child's when the next change comes. Per
 * depth, so the many small trees near the root do not push it out.
 */
struct tslot {
	git_oid id;
	git_odb_object *obj;
	uint64_t used;
};

struct trees {
	git_odb *odb;
	size_t depth;
	struct tslot *slot; /* 2 per depth */
	uint64_t clock;
};

static git_odb_object *tree_get(struct trees *tc, size_t level, const git_oid *id)
{
	struct tslot *s = &tc->slot[2 * level];
	size_t victim = s[0].used <= s[1].used ? 0 : 1;
	for (size_t i = 0; i < 2; i++) {
		if (s[i].obj && git_oid_equal(&s[i].id, id)) {
			s[i].used = ++tc->clock;
			return s[i].obj;
		}
	}
	git_odb_object *o;
	if (git_odb_read(&o, tc->odb, id) < 0)
		return NULL;
	if (git_odb_object_type(o) != GIT_OBJECT_TREE) {
		git_odb_object_free(o);
		git_error_set_str(GIT_ERROR_OBJECT, "a tree entry does not point to a tree");
		return NULL;
	}
	git_odb_object_free(s[victim].obj);
	git_oid_cpy(&s[victim].id, id);
	s[victim].obj = o;
	s[victim].used = ++tc->clock;
	return o;
}

static void trees_free(struct trees *tc)
{
	for (size_t i = 0; i < 2 * tc->depth; i++)
		git_odb_object_free(tc->slot[i].obj);
	free(tc->slot);
}

/*
 * One level down: the entry `name` of tree `id`. Returns 1 found, 0 not
 * there, -1 error. Reads the raw tree ("<octal mode> <name>\0<20-byte id>"
 * per entry) instead of having libgit2 parse every entry of a big folder
 * into objects only to look at one.
 */
static int entry_in(struct trees *tc, size_t level, const git_oid *tree_id, const char *name, git_oid *id,
                    git_filemode_t *mode)
{
	git_odb_object *o = tree_get(tc, level, tree_id);
	if (!o)
		return -1;
	const unsigned char *p = git_odb_object_data(o), *end = p + git_odb_object_size(o);
	size_t nlen = strlen(name);
	while (p < end) {
		unsigned m = 0;
		while (p < end && *p >= '0' && *p <= '7')
			m = (m << 3) | (unsigned)(*p++ - '0');
		if (p >= end || *p++ != ' ')
			break;
		const unsigned char *nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul || end - nul < 21)
			break;
		if ((size_t)(nul - p) == nlen && memcmp(p, name, nlen) == 0) {
			git_oid_fromraw(id, nul + 1);
			*mode = (git_filemode_t)m;
			return 1;
		}
		p = nul + 21;
	}
	if (p < end) {
		git_error_set_str(GIT_ERROR_OBJECT, "corrupt tree object");
		return -1;
	}
	return 0;
}

/*
 * Does the path (split in components) have the same entry in trees a and
 * b? Descends both at once and stops at the first equal subtree, so a
 * commit that changed another service costs two small tree lookups.
 * 1 same, 0 different, -1 error.
 */
static int same_path(struct trees *tc, const git_oid *tree_a, const git_oid *tree_b, char **comp,
                     size_t ncomp)
{
	git_oid a = *tree_a, b = *tree_b;
	git_filemode_t ma = GIT_FILEMODE_TREE, mb = GIT_FILEMODE_TREE;
	bool ha = true, hb = true;
	for (size_t i = 0; i < ncomp; i++) {
		if (!ha && !hb)
			return 1;
		if (ha && hb && git_oid_equal(&a, &b))
			return 1;
		if (ha) {
			if (ma != GIT_FILEMODE_TREE) {
				ha = false;
			} else {
				int rc = entry_in(tc, i, &a, comp[i], &a, &ma);
				if (rc < 0)
					return -1;
				ha = rc == 1;
			}
		}
		if (hb) {
			if (mb != GIT_FILEMODE_TREE) {
				hb = false;
			} else {
				int rc = entry_in(tc, i, &b, comp[i], &b, &mb);
				if (rc < 0)
					return -1;
				hb = rc == 1;
			}
		}
	}
	if (ha != hb)
		return 0;
	return !ha || (ma == mb && git_oid_equal(&a, &b));
}

/* Is the path there at all in tree t? 1 yes, 0 no, -1 error. */
static int path_exists(struct trees *tc, const git_oid *tree, char **comp, size_t ncomp)
{
	git_oid id = *tree;
	git_filemode_t mode = GIT_FILEMODE_TREE;
	for (size_t i = 0; i < ncomp; i++) {
		if (mode != GIT_FILEMODE_TREE)
			return 0;
		int rc = entry_in(tc, i, &id, comp[i], &id, &mode);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* Commits waiting to be visited: a max-heap on commit time, FIFO among equals. */
struct qitem {
	git_commit *c;
	int64_t time;
	uint64_t seq;
};
struct queue {
	struct qitem *v;
	size_t n, cap;
	uint64_t seq;
};

static bool q_before(const struct qitem *a, const struct qitem *b)
{
	return a->time != b->time ? a->time > b->time : a->seq < b->seq;
}

static void q_push(struct queue *q, git_commit *c)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 16;
		q->v = fl_realloc(q->v, q->cap * sizeof(*q->v));
	}
	size_t i = q->n++;
	struct qitem it = {c, (int64_t)git_commit_time(c), q->seq++};
	while (i > 0 && q_before(&it, &q->v[(i - 1) / 2])) {
		q->v[i] = q->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->v[i] = it;
}

static git_commit *q_pop(struct queue *q)
{
	if (q->n == 0)
		return NULL;
	git_commit *top = q->v[0].c;
	struct qitem last = q->v[--q->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct qitem *best = &last;
		if (l < q->n && q_before(&q->v[l], best)) {
			m = l;
			best = &q->v[l];
		}
		if (r < q->n && q_before(&q->v[r], best))
			m = r;
		if (m == i)
			break;
		q->v[i] = q->v[m];
		i = m;
	}
	if (q->n)
		q->v[i] = last;
	return top;
}

/* Commits already queued: an open-addressing set of object ids. */
struct oidset {
	git_oid *v;
	unsigned char *used;
	size_t cap, n;
};

static size_t oid_hash(const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h));
	return h;
}

static bool oidset_has(const struct oidset *s, const git_oid *id)
{
	if (!s->cap)
		return false;
	for (size_t i = oid_hash(id) & (s->cap - 1); s->used[i]; i = (i + 1) & (s->cap - 1))
		if (git_oid_equal(&s->v[i], id))
			return true;
	return false;
}

/* Adds id; returns false when it was there already. */
static bool oidset_add(struct oidset *s, const git_oid *id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct oidset t = {0};
		t.cap = s->cap ? 2 * s->cap : 256;
		t.v = fl_malloc(t.cap * sizeof(*t.v));
		t.used = fl_calloc(t.cap, 1);
		for (size_t i = 0; i < s->cap; i++)
			if (s->used[i])
				oidset_add(&t, &s->v[i]);
		free(s->v);
		free(s->used);
		*s = t;
	}
	size_t i = oid_hash(id) & (s->cap - 1);
	while (s->used[i]) {
		if (git_oid_equal(&s->v[i], id))
			return false;
		i = (i + 1) & (s->cap - 1);
	}
	s->used[i] = 1;
	git_oid_cpy(&s->v[i], id);
	s->n++;
	return true;
}

static void split_path(char *rel, char ***comp, size_t *n)
{
	size_t cap = 1;
	for (const char *p = rel; *p; p++)
		cap += *p == '/';
	*comp = fl_malloc(cap * sizeof(**comp));
	*n = 0;
	for (char *tok = strtok(rel, "/"); tok; tok = strtok(NULL, "/"))
		(*comp)[(*n)++] = tok;
}

/* The commits reachable from start but not from since (git's since..start), into *set. */
static int range_set(fl_git *g, const git_oid *start, const git_oid *since, struct oidset *set)
{
	git_revwalk *w;
	if (git_revwalk_new(&w, g->repo) < 0)
		return -1;
	int rc = git_revwalk_push(w, start);
	if (rc == 0)
		rc = git_revwalk_hide(w, since);
	git_oid id;
	while (rc == 0 && (rc = git_revwalk_next(&id, w)) == 0)
		oidset_add(set, &id);
	git_revwalk_free(w);
	if (rc == GIT_ITEROVER || (rc == GIT_ENOTFOUND && git_repository_is_shallow(g->repo) == 1))
		return 0; /* the end, or the edge of a shallow clone */
	return -1;
}

/*
 * The walk behind fl_git_file_history and fl_git_last_change_after: stops
 * after `max` commits (0: never), at the first commit not later than
 * since_time (> 0), and does not go past commits outside `range` (NULL:
 * everything).
 */
static int history(fl_git *g, git_commit *start, const char *rel, size_t max, int64_t since_time,
                   const struct oidset *range, fl_git_commit **out, size_t *n, fl_error **err)
{
	char *relc = fl_strdup(rel);
	char **comp;
	size_t ncomp;
	split_path(relc, &comp, &ncomp);
	struct trees tc = {.depth = ncomp, .slot = fl_calloc(2 * ncomp, sizeof(*tc.slot))};
	struct queue q = {0};
	struct oidset seen = {0};
	struct {
		fl_git_commit *v;
		size_t n, cap;
	} res = {0};
	int ret = git_repository_odb(&tc.odb, g->repo) < 0 ? -1 : 0;
	oidset_add(&seen, git_commit_id(start));
	if (ret == 0 && (!range || oidset_has(range, git_commit_id(start))))
		q_push(&q, start);
	else
		git_commit_free(start);
	git_commit *c;
	while (ret == 0 && (max == 0 || res.n < max) && (c = q_pop(&q))) {
		if (since_time > 0 && git_commit_time(c) <= since_time) {
			git_commit_free(c);
			break; /* the queue is in time order: the rest is older still */
		}
		unsigned np = git_commit_parentcount(c);
		git_commit **par = fl_calloc(np ? np : 1, sizeof(*par));
		unsigned present = 0;
		for (unsigned i = 0; i < np; i++) {
			int rc = git_commit_parent(&par[i], c, i);
			if (rc == 0)
				present++;
			else if (rc != GIT_ENOTFOUND)
				ret = -1;
			/* not found: the edge of a shallow clone */
		}
		int changed = 0;
		if (ret == 0 && present == 0) {
			changed = path_exists(&tc, git_commit_tree_id(c), comp, ncomp);
		} else if (ret == 0) {
			unsigned same = np;
			for (unsigned i = 0; i < np && same == np; i++) {
				if (!par[i])
					continue;
				int rc = same_path(&tc, git_commit_tree_id(c), git_commit_tree_id(par[i]),
				                   comp, ncomp);
				if (rc < 0)
					ret = -1;
				else if (rc == 1)
					same = i;
			}
			changed = same == np;
			for (unsigned i = 0; i < np; i++) {
				if (!par[i])
					continue;
				/* when the file equals one parent's, its story lies on that side only */
				if ((same == np || i == same) && oidset_add(&seen, git_commit_id(par[i])) &&
				    (!range || oidset_has(range, git_commit_id(par[i])))) {
					q_push(&q, par[i]);
					par[i] = NULL;
				}
			}
		}
		if (changed < 0)
			ret = -1;
		if (ret == 0 && changed == 1) {
			if (res.n == res.cap) {
				res.cap = res.cap ? 2 * res.cap : 8;
				res.v = fl_realloc(res.v, res.cap * sizeof(*res.v));
			}
			commit_info(c, &res.v[res.n++]);
		}
		for (unsigned i = 0; i < np; i++)
			git_commit_free(par[i]);
		free(par);
		git_commit_free(c);
	}
	if (ret < 0)
		*err = fl_error_new("cannot read the history of %s: %s", rel, git_msg());
	while ((c = q_pop(&q)))
		git_commit_free(c);
	trees_free(&tc);
	git_odb_free(tc.odb);
	free(q.v);
	free(seen.v);
	free(seen.used);
	free(comp);
	free(relc);
	if (ret < 0) {
		fl_git_commits_free(res.v, res.n);
		return -1;
	}
	*out = res.v;
	*n = res.n;
	return 0;
}

/* The file's repo-relative path and the commit to start from. */
static int history_start(fl_git *g, const char *rev, const char *path, char **rel, git_commit **start,
                         fl_error **err)
{
	if (repo_rel(g, path, rel, err) < 0)
		return -1;
	if (!(*rel)[0]) {
		*err = fl_error_new("%s is the repository itself, not a file", path);
		free(*rel);
		return -1;
	}
	if (resolve_commit(g, rev ? rev : "HEAD", start, err) < 0) {
		free(*rel);
		return -1;
	}
	return 0;
}

int fl_git_file_history(fl_git *g, const char *rev, const char *path, size_t max, fl_git_commit **out,
                        size_t *n, fl_error **err)
{
	*out = NULL;
	*n = 0;
	char *rel;
	git_commit *start;
	if (history_start(g, rev, path, &rel, &start, err) < 0)
		return -1;
	int rc = history(g, start, rel, max, 0, NULL, out, n, err);
	free(rel);
	return rc;
}

int fl_git_last_change_after(fl_git *g, const char *rev, const char *path, int64_t since_time,
                             const char *since_rev, fl_git_commit *out, fl_error **err)
{
	memset(out, 0, sizeof(*out));
	char *rel;
	git_commit *start;
	if (history_start(g, rev, path, &rel, &start, err) < 0)
		return -1;
	struct oidset range = {0};
	if (since_rev) {
		git_commit *s;
		if (resolve_commit(g, since_rev, &s, err) < 0) {
			git_commit_free(start);
			free(rel);
			return -1;
		}
		int rc = range_set(g, git_commit_id(start), git_commit_id(s), &range);
		git_commit_free(s);
		if (rc < 0) {
			*err = fl_error_new("cannot list the commits since %s: %s", since_rev, git_msg());
			git_commit_free(start);
			free(rel);
			free(range.v);
			free(range.used);
			return -1;
		}
	}
	fl_git_commit *h;
	size_t n;
	int rc = history(g, start, rel, 1, since_time, since_rev ? &range : NULL, &h, &n, err);
	free(rel);
	free(range.v);
	free(range.used);
	if (rc < 0)
		return -1;
	if (n == 1)
		*out = h[0];
	free(h);
	return n == 1;
}

/* ---- HEAD and the work tree ---- */

static int dirty_cb(const char *path, unsigned int flags, void *payload)
{
	(void)path;
	(void)flags;
	*(bool *)payload = true;
	return 1; /* one is enough */
}

int fl_git_head(fl_git *g, const char *const *folders, size_t nfolders, char id[FL_GIT_ID_LEN], bool *dirty,
                fl_error **err)
{
	*dirty = false;
	git_oid head;
	int rc = git_reference_name_to_id(&head, g->repo, "HEAD");
	if (rc < 0) {
		*err = rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH
		           ? fl_error_new("the repository has no commits yet")
		           : fl_error_new("cannot read HEAD: %s", git_msg());
		return -1;
	}
	oid_hex(&head, id);
	if (!g->workdir)
		return 0;
	char **rel = NULL;
	size_t *lens = NULL;
	bool whole = true;
	if (nfolders && folders_rel(g, folders, nfolders, &rel, &lens, &whole, err) < 0)
		return -1;
	git_status_options so;
	git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES |
	           GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH;
	if (!whole) {
		so.pathspec.strings = rel;
		so.pathspec.count = nfolders;
	}
	rc = git_status_foreach_ext(g->repo, &so, dirty_cb, dirty);
	free_strs(rel, nfolders);
	free(lens);
	if (rc < 0) {
		*err = fl_error_new("cannot read the state of the work tree: %s", git_msg());
		return -1;
	}
	return 0;
}

/*
 * history's installed_on (a timestamp without time zone, as the server
 * prints it in its own zone) -> seconds since the epoch, read as local time:
 * right when flotilla and the server share a time zone (UTC in most CI).
 */
static int64_t installed_epoch(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	return t < 0 ? 0 : (int64_t)t;
}

static bool in_work_tree_changes(fl_git *g, const char *folder, const char *script)
{
	fl_git_change *ch = NULL;
	size_t n = 0;
	fl_error *err = NULL;
	bool found = false;
	if (fl_git_diff(g, "HEAD", NULL, &folder, 1, &ch, &n, &err) == 0)
		for (size_t i = 0; i < n && !found; i++)
			found = ch[i].new_name && strcmp(ch[i].new_name, script) == 0;
	fl_error_free(err);
	fl_git_changes_free(ch, n);
	return found;
}

int fl_git_changing_commit(fl_git *g, const char *rev, const char *folder, const char *script,
                           const char *installed_on, fl_git_commit *commit, char **note)
{
	*note = NULL;
	char *path = fl_asprintf("%s/%s", folder, script);
	fl_git_commit c;
	fl_error *gerr = NULL;
	int rc = fl_git_last_change_after(g, rev, path, installed_epoch(installed_on), NULL, &c, &gerr);
	free(path);
	fl_error_free(gerr);
	if (rc == 1) {
		/* the author's own calendar day, as git log shows it */
		char date[16];
		time_t t = (time_t)(c.author_time + (int64_t)c.author_offset * 60);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		*note = fl_asprintf(" (changed by %s %s, %s, %s)", c.short_id, c.summary ? c.summary : "",
		                    c.author_name ? c.author_name : "?", date);
		*commit = c;
		return 1;
	}
	if (rc == 0 && !rev && in_work_tree_changes(g, folder, script))
		*note = fl_strdup(" (changed in the work tree, not committed)");
	return 0;
}
