/*
 * diff: what a branch (or a range of commits) does to the migration folders,
 * for a reviewer or a CI check, from the repository alone (no database).
 *
 * Added migrations are what the next migrate will apply and changed
 * repeatables will run again: both are fine. A versioned or undo migration
 * that was modified, deleted or renamed is refused (exit 3), because some
 * database may already have applied it; so are two files with one version
 * (typically two branches that each added "the next" version). Every entry
 * names the commit that made it, or says it is not committed yet. The lint
 * findings of the listed files follow (they do not change the exit code).
 *
 * Without --to the base is the merge base of REV and HEAD, compared with
 * the work tree: on a feature branch, `--since origin/main` then shows what
 * the branch did, not what main did meanwhile (git diff REV...HEAD). With
 * --to the two revisions are compared as given.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gitdiff.h"
#include "lint.h"
#include "manifest.h"
#include "migration.h"
#include "source.h"

typedef enum {
	E_ADDED,      /* a new migration: to be applied */
	E_REPEATABLE, /* a repeatable added or changed: runs (again) */
	E_MODIFIED,   /* problems from here on */
	E_DELETED,
	E_RENAMED,
	E_COLLISION,
	E_INVALID, /* a new file whose name looks like a migration but is malformed */
} entry_kind;

static const char *const KIND_NAMES[] = {"added",   "repeatable", "modified", "deleted",
                                         "renamed", "collision",  "invalid"};

struct entry {
	entry_kind kind;
	const char *name;     /* relative to the folder (new name; old for a deletion) */
	const char *old_name; /* renamed: the old name; collision: the other file */
	const char *path;     /* repo-relative path of `name` */
	char *version;        /* NULL for repeatables */
	char *message;        /* problems: what is wrong and what to do */
	bool committed;       /* commit is filled */
	fl_git_commit commit;
	bool other_committed; /* collision: the other file's commit */
	fl_git_commit other_commit;
};

struct service_diff {
	const fl_service *svc;
	struct entry *e;
	size_t n;
	fl_git_change *changes; /* the entries point into these */
	size_t nchanges;
	fl_file *files; /* the folder at the compared side (collisions); names are pointed at */
	size_t nfiles;
};

static struct entry *add_entry(struct service_diff *sd, entry_kind k, const char *name)
{
	sd->e = fl_realloc(sd->e, (sd->n + 1) * sizeof(*sd->e));
	struct entry *e = &sd->e[sd->n++];
	memset(e, 0, sizeof(*e));
	e->kind = k;
	e->name = name;
	return e;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* "2024-05-01" in the author's own time zone, as git log shows it. */
static void commit_date(const fl_git_commit *c, char out[16])
{
	time_t t = (time_t)(c->author_time + (int64_t)c->author_offset * 60);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static char *commit_text(const struct entry *e, bool other)
{
	if (!(other ? e->other_committed : e->committed))
		return fl_strdup("not committed yet");
	const fl_git_commit *c = other ? &e->other_commit : &e->commit;
	char date[16];
	commit_date(c, date);
	return fl_asprintf("%s %s, %s, %s", c->short_id, c->summary ? c->summary : "",
	                   c->author_name ? c->author_name : "?", date);
}

struct run {
	fl_git *g;
	const char *since;
	char base[FL_GIT_ID_LEN]; /* from */
	char to[FL_GIT_ID_LEN];   /* "" : the work tree */
	bool merge_base;
	/* without --to: what differs between HEAD and the work tree (uncommitted) */
	fl_git_change *wt;
	size_t nwt;
	bool have_head;
	char head[FL_GIT_ID_LEN];
};

static bool uncommitted(const struct run *r, size_t folder, const char *path)
{
	for (size_t i = 0; i < r->nwt; i++) {
		const fl_git_change *c = &r->wt[i];
		if (c->folder != folder)
			continue;
		if ((c->new_path && strcmp(c->new_path, path) == 0) ||
		    (c->old_path && strcmp(c->old_path, path) == 0))
			return true;
	}
	return false;
}

/* The commit after the base that last changed `path` (repo-relative); false when
 * the change is only in the work tree or cannot be found. */
static int find_commit(struct run *r, size_t folder, const char *path, fl_git_commit *out, bool *found,
                       fl_error **err)
{
	*found = false;
	if (!r->to[0] && (!r->have_head || uncommitted(r, folder, path)))
		return 0;
	int rc = fl_git_last_change_after(r->g, r->to[0] ? r->to : r->head, path, 0, r->base, out, err);
	if (rc < 0)
		return -1;
	*found = rc == 1;
	return 0;
}

static int classify(struct run *r, size_t folder, struct service_diff *sd, fl_error **err)
{
	for (size_t i = 0; i < sd->nchanges; i++) {
		fl_git_change *c = &sd->changes[i];
		fl_mig_kind okind = FL_MIG_VERSIONED, nkind = FL_MIG_VERSIONED;
		char *over = NULL, *odesc = NULL, *nver = NULL, *ndesc = NULL;
		fl_error *e = NULL;
		int omig = c->old_name
		               ? fl_migration_parse_name(base_name(c->old_name), &okind, &over, &odesc, &e)
		               : 0;
		fl_error_free(e);
		e = NULL;
		int nmig = c->new_name
		               ? fl_migration_parse_name(base_name(c->new_name), &nkind, &nver, &ndesc, &e)
		               : 0;
		struct entry *en = NULL;
		const char *path = c->new_path ? c->new_path : c->old_path;
		bool old_fixed = omig == 1 && okind != FL_MIG_REPEATABLE;
		if (nmig < 0) {
			/* a name that wants to be a migration but is not one Flyway accepts */
			en = add_entry(sd, E_INVALID, c->new_name);
			en->message = fl_strdup(e->msg);
		} else if (old_fixed && (c->status == FL_GIT_MODIFIED || c->status == FL_GIT_DELETED ||
		                         c->status == FL_GIT_RENAMED)) {
			entry_kind k = c->status == FL_GIT_MODIFIED  ? E_MODIFIED
			               : c->status == FL_GIT_DELETED ? E_DELETED
			                                             : E_RENAMED;
			en = add_entry(sd, k, k == E_DELETED ? c->old_name : c->new_name);
			en->version = over;
			over = NULL;
			const char *what = okind == FL_MIG_UNDO ? "undo migration" : "migration";
			if (k == E_MODIFIED)
				en->message = fl_asprintf(
				    "%s %s was modified; a database that applied it keeps the "
				    "old version: revert the change and add a new version instead",
				    what, en->version);
			else if (k == E_DELETED)
				en->message =
				    fl_asprintf("%s %s was deleted; a database that applied it would find it "
				                "missing: restore the file",
				                what, en->version);
			else {
				en->old_name = c->old_name;
				en->message =
				    fl_asprintf("%s %s was renamed from %s; a database that applied it "
				                "knows it by its old name: rename it back",
				                what, en->version, c->old_name);
			}
			path = k == E_DELETED ? c->old_path : c->new_path;
		} else if (omig == 1 && okind == FL_MIG_REPEATABLE && c->status == FL_GIT_DELETED) {
			en = add_entry(sd, E_DELETED, c->old_name);
			en->message =
			    fl_asprintf("repeatable migration \"%s\" was deleted; a database where it ran "
			                "would find it missing",
			                odesc);
			path = c->old_path;
		} else if (nmig == 1 && nkind == FL_MIG_REPEATABLE) {
			/* added, changed, or renamed (then its old name counts as gone only when it
			 * was a repeatable with another description) */
			if (c->status == FL_GIT_RENAMED && omig == 1 && okind == FL_MIG_REPEATABLE &&
			    strcmp(odesc, ndesc) != 0) {
				en = add_entry(sd, E_RENAMED, c->new_name);
				en->old_name = c->old_name;
				en->message =
				    fl_asprintf("repeatable migration \"%s\" was renamed to \"%s\"; a "
				                "database where it ran would find \"%s\" missing",
				                odesc, ndesc, odesc);
			} else {
				en = add_entry(sd, E_REPEATABLE, c->new_name);
			}
		} else if (nmig == 1) {
			/* a new V or U file (or one renamed from a name that was no migration) */
			en = add_entry(sd, E_ADDED, c->new_name);
			en->version = nver;
			nver = NULL;
		}
		fl_error_free(e);
		free(over);
		free(odesc);
		free(nver);
		free(ndesc);
		if (!en)
			continue; /* README.md and friends */
		en->path = path;
		if (find_commit(r, folder, path, &en->commit, &en->committed, err) < 0)
			return -1;
	}
	return 0;
}

/* Two files of one kind with one version, at least one of them new. */
static int collisions(struct run *r, size_t folder, struct service_diff *sd, fl_error **err)
{
	bool any = false;
	for (size_t i = 0; i < sd->n; i++)
		any |= sd->e[i].kind == E_ADDED;
	if (!any)
		return 0;
	const fl_service *svc = sd->svc;
	int rc = r->to[0] ? fl_git_read_folder(r->g, r->to, svc->migrations, svc->migrations_as_written,
	                                       &sd->files, &sd->nfiles, err)
	                  : fl_source_dir(svc->migrations, svc->migrations_as_written, &sd->files,
	                                  &sd->nfiles, err);
	if (rc < 0)
		return -1;
	size_t n0 = sd->n;
	for (size_t i = 0; i < n0; i++) {
		if (sd->e[i].kind != E_ADDED)
			continue;
		fl_mig_kind k;
		char *v = NULL, *d = NULL;
		fl_error *e = NULL;
		if (fl_migration_parse_name(base_name(sd->e[i].name), &k, &v, &d, &e) != 1) {
			fl_error_free(e);
			continue;
		}
		free(d);
		for (size_t j = 0; j < sd->nfiles; j++) {
			const char *other = sd->files[j].name;
			if (strcmp(other, sd->e[i].name) == 0)
				continue;
			fl_mig_kind ok;
			char *ov = NULL, *od = NULL;
			if (fl_migration_parse_name(base_name(other), &ok, &ov, &od, &e) != 1) {
				fl_error_free(e);
				e = NULL;
				continue;
			}
			bool same = ok == k && fl_version_compare(ov, v) == 0;
			free(ov);
			free(od);
			if (!same)
				continue;
			/* both new: report the pair once, from the first name */
			bool other_new = false;
			for (size_t x = 0; x < n0; x++)
				other_new |= sd->e[x].kind == E_ADDED && strcmp(sd->e[x].name, other) == 0;
			if (other_new && strcmp(other, sd->e[i].name) < 0)
				continue;
			const char *other_path = NULL;
			for (size_t x = 0; x < n0; x++)
				if (sd->e[x].kind == E_ADDED && strcmp(sd->e[x].name, other) == 0)
					other_path = sd->e[x].path;
			/* add_entry may move the array: index, do not hold pointers */
			add_entry(sd, E_COLLISION, sd->e[i].name);
			struct entry *c = &sd->e[sd->n - 1], *src = &sd->e[i];
			c->old_name = other;
			c->path = src->path;
			c->version = fl_strdup(v);
			c->message = fl_asprintf(
			    "%s and %s have the same version %s%s; give the newer one the next "
			    "free version",
			    src->name, other, v, other_new ? " (both new: two branches each added it)" : "");
			rc = find_commit(r, folder, src->path, &c->commit, &c->committed, err);
			if (rc == 0 && other_path) {
				rc = find_commit(r, folder, other_path, &c->other_commit, &c->other_committed,
				                 err);
			} else if (rc == 0) {
				/* an older file: the last commit that touched it, whenever that was */
				char *abs = fl_asprintf("%s/%s", svc->migrations, other);
				const char *at = r->to[0] ? r->to : r->have_head ? r->head : NULL;
				int x = at ? fl_git_last_change_after(r->g, at, abs, 0, NULL,
				                                      &c->other_commit, err)
				           : 0;
				free(abs);
				rc = x < 0 ? -1 : 0;
				c->other_committed = x == 1;
			}
			if (rc < 0) {
				free(v);
				return -1;
			}
		}
		free(v);
	}
	return 0;
}

static json_t *commit_json(const fl_git_commit *c, bool committed)
{
	if (!committed)
		return json_null();
	char date[16];
	commit_date(c, date);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "short_id", json_string(c->short_id));
	json_object_set_new(o, "author", json_string(c->author_name ? c->author_name : ""));
	json_object_set_new(o, "email", json_string(c->author_email ? c->author_email : ""));
	json_object_set_new(o, "date", json_string(date));
	json_object_set_new(o, "time", json_integer((json_int_t)c->author_time));
	json_object_set_new(o, "summary", json_string(c->summary ? c->summary : ""));
	return o;
}

static json_t *entry_json(const struct service_diff *sd, const struct entry *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string(KIND_NAMES[e->kind]));
	json_object_set_new(o, "file", json_string(e->name));
	char *p = fl_asprintf("%s/%s", sd->svc->migrations_as_written, e->name);
	json_object_set_new(o, "path", json_string(p));
	free(p);
	if (e->version)
		json_object_set_new(o, "version", json_string(e->version));
	if (e->kind == E_RENAMED)
		json_object_set_new(o, "old_file", json_string(e->old_name));
	if (e->kind == E_COLLISION)
		json_object_set_new(o, "other_file", json_string(e->old_name));
	if (e->message)
		json_object_set_new(o, "message", json_string(e->message));
	json_object_set_new(o, "commit", commit_json(&e->commit, e->committed));
	if (e->kind == E_COLLISION)
		json_object_set_new(o, "other_commit", commit_json(&e->other_commit, e->other_committed));
	return o;
}

static void print_text(const struct run *r, const struct service_diff *sds, size_t n)
{
	char b[12], t[12];
	snprintf(b, sizeof(b), "%.7s", r->base);
	snprintf(t, sizeof(t), "%.7s", r->to);
	printf("diff %s..%s%s\n", b, r->to[0] ? t : "work tree",
	       r->merge_base ? " (base: where HEAD forked from the given revision)" : "");
	for (size_t i = 0; i < n; i++) {
		const struct service_diff *sd = &sds[i];
		size_t na = 0, nr = 0, np = 0;
		for (size_t k = 0; k < sd->n; k++) {
			na += sd->e[k].kind == E_ADDED;
			nr += sd->e[k].kind == E_REPEATABLE;
			np += sd->e[k].kind >= E_MODIFIED;
		}
		if (sd->n == 0) {
			printf("%s: no migration changed\n", sd->svc->name);
			continue;
		}
		printf("%s: %zu to apply, %zu repeatable%s to run again, %zu problem%s\n", sd->svc->name, na,
		       nr, nr == 1 ? "" : "s", np, np == 1 ? "" : "s");
		for (size_t k = 0; k < sd->n; k++) {
			const struct entry *e = &sd->e[k];
			char *ct = commit_text(e, false);
			if (e->kind == E_RENAMED)
				printf("  %-10s  %s -> %s  (%s)\n", KIND_NAMES[e->kind], e->old_name, e->name,
				       ct);
			else if (e->kind == E_COLLISION) {
				char *ot = commit_text(e, true);
				printf("  %-10s  %s (%s) and %s (%s)\n", KIND_NAMES[e->kind], e->name, ct,
				       e->old_name, ot);
				free(ot);
			} else
				printf("  %-10s  %s  (%s)\n", KIND_NAMES[e->kind], e->name, ct);
			free(ct);
		}
	}
}

/* Problems also go to stderr as "path: message (commit)" lines, for CI annotators. */
static void print_problems(const struct service_diff *sds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sds[i].n; k++) {
			const struct entry *e = &sds[i].e[k];
			if (e->kind < E_MODIFIED)
				continue;
			char *ct = commit_text(e, false);
			fprintf(stderr, "%s/%s: %s (%s%s)\n", sds[i].svc->migrations_as_written, e->name,
			        e->message, e->committed ? "by " : "", ct);
			free(ct);
		}
}

static void service_diff_clear(struct service_diff *sd)
{
	for (size_t k = 0; k < sd->n; k++) {
		free(sd->e[k].version);
		free(sd->e[k].message);
		if (sd->e[k].committed)
			fl_git_commit_clear(&sd->e[k].commit);
		if (sd->e[k].other_committed)
			fl_git_commit_clear(&sd->e[k].other_commit);
	}
	free(sd->e);
	fl_git_changes_free(sd->changes, sd->nchanges);
	fl_source_free(sd->files, sd->nfiles);
}

/*
 * The lint findings of the files the diff lists (added, changed, renamed, colliding), as
 * `lint --since` gives them. They inform the reviewer; the exit code stays the diff's. A file
 * lint cannot read was already judged above (invalid), so its error is not repeated.
 */
static void lint_listed(const struct run *r, const fl_manifest *m, const struct service_diff *sds, size_t n,
                        fl_lint_report *rep)
{
	fl_cli_lint *l = fl_cli_lint_new(m, 0);
	fl_error *err = NULL;
	for (size_t i = 0; i < n; i++) {
		const char **names = fl_calloc(sds[i].n + 1, sizeof(char *));
		size_t k = 0;
		for (size_t e = 0; e < sds[i].n; e++)
			if (sds[i].e[e].kind != E_DELETED && sds[i].e[e].kind != E_INVALID)
				names[k++] = sds[i].e[e].name;
		if (k)
			fl_cli_lint_add(l, sds[i].svc, r->g, r->to[0] ? r->to : NULL, names, k, &err);
		free(names);
	}
	fl_cli_lint_run(l, rep, &err);
	fl_error_free(err);
	fl_cli_lint_free(l);
}

static int fail(fl_error *err, int code)
{
	for (fl_error *e = err; e; e = e->next) {
		char *s = fl_error_format(e);
		fprintf(stderr, "flotilla: %s\n", s);
		free(s);
	}
	fl_error_free(err);
	return code;
}

int cmd_diff(int argc, char **argv)
{
	struct fl_diff_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	const char *since = a.since, *to = a.to;
	bool json = a.json;

	fl_manifest *m = fl_cli_load_manifest(false);
	if (!m)
		return FL_EXIT_USAGE;
	size_t *sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int nsel = fl_manifest_select(m, argv + optind, (size_t)(argc - optind), sel, &err);
	struct run r;
	memset(&r, 0, sizeof(r));
	r.since = since;
	struct service_diff *sds = NULL;
	const char **folders = NULL;
	fl_git_change *all = NULL;
	size_t nall = 0;
	fl_lint_report lint;
	memset(&lint, 0, sizeof(lint));
	rc = FL_EXIT_USAGE;
	if (nsel < 0) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		goto out;
	}
	if (fl_git_open(m->path, &r.g, &err) < 0) {
		rc = fail(err, FL_EXIT_USAGE);
		goto out;
	}
	if (fl_git_since_range(r.g, since, to, r.base, r.to, &r.merge_base, &err) < 0) {
		rc = fail(err, FL_EXIT_USAGE);
		goto out;
	}
	if (!to) {
		fl_error *e = NULL;
		bool dirty;
		r.have_head = fl_git_head(r.g, NULL, 0, r.head, &dirty, &e) == 0;
		fl_error_free(e);
	}

	sds = fl_calloc((size_t)nsel + 1, sizeof(*sds));
	folders = fl_calloc((size_t)nsel + 1, sizeof(char *));
	for (int i = 0; i < nsel; i++) {
		sds[i].svc = &m->services[sel[i]];
		folders[i] = sds[i].svc->migrations;
	}
	if (fl_git_diff(r.g, r.base, r.to[0] ? r.to : NULL, folders, (size_t)nsel, &all, &nall, &err) < 0) {
		rc = fail(err, FL_EXIT_USAGE);
		goto out;
	}
	if (!r.to[0] && r.have_head &&
	    fl_git_diff(r.g, r.head, NULL, folders, (size_t)nsel, &r.wt, &r.nwt, &err) < 0) {
		rc = fail(err, FL_EXIT_USAGE);
		goto out;
	}
	/* hand each service its own changes (they come sorted by folder) */
	for (size_t k = 0; k < nall;) {
		size_t f = all[k].folder, end = k;
		while (end < nall && all[end].folder == f)
			end++;
		sds[f].changes = fl_calloc(end - k, sizeof(fl_git_change));
		memcpy(sds[f].changes, &all[k], (end - k) * sizeof(fl_git_change));
		sds[f].nchanges = end - k;
		k = end;
	}
	free(all);
	all = NULL;
	nall = 0;
	for (int i = 0; i < nsel; i++) {
		if (classify(&r, (size_t)i, &sds[i], &err) < 0 ||
		    collisions(&r, (size_t)i, &sds[i], &err) < 0) {
			rc = fail(err, FL_EXIT_USAGE);
			goto out;
		}
	}

	bool problems = false, invalid = false;
	for (int i = 0; i < nsel; i++)
		for (size_t k = 0; k < sds[i].n; k++) {
			problems |= sds[i].e[k].kind >= E_MODIFIED && sds[i].e[k].kind != E_INVALID;
			invalid |= sds[i].e[k].kind == E_INVALID;
		}
	rc = problems ? FL_EXIT_DRIFT : invalid ? FL_EXIT_USAGE : FL_EXIT_OK;
	lint_listed(&r, m, sds, (size_t)nsel, &lint);
	if (json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "since", json_string(since));
		json_object_set_new(doc, "base", json_string(r.base));
		json_object_set_new(doc, "merge_base", json_boolean(r.merge_base));
		json_object_set_new(doc, "to", r.to[0] ? json_string(r.to) : json_null());
		json_t *svcs = json_array();
		for (int i = 0; i < nsel; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(sds[i].svc->name));
			json_object_set_new(o, "migrations", json_string(sds[i].svc->migrations_as_written));
			json_t *added = json_array(), *rep = json_array(), *prob = json_array();
			for (size_t k = 0; k < sds[i].n; k++) {
				const struct entry *e = &sds[i].e[k];
				json_array_append_new(e->kind == E_ADDED        ? added
				                      : e->kind == E_REPEATABLE ? rep
				                                                : prob,
				                      entry_json(&sds[i], e));
			}
			json_object_set_new(o, "changed", json_boolean(sds[i].n > 0));
			json_object_set_new(o, "added", added);
			json_object_set_new(o, "repeatables", rep);
			json_object_set_new(o, "problems", prob);
			json_array_append_new(svcs, o);
		}
		json_object_set_new(doc, "services", svcs);
		json_t *lj = json_array();
		for (size_t k = 0; k < lint.n; k++) {
			char *t = fl_lint_finding_text(&lint.items[k]);
			json_array_append_new(lj, json_string(t));
			free(t);
		}
		json_object_set_new(doc, "lint", lj);
		json_object_set_new(doc, "exit", json_integer(rc));
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(doc);
	} else {
		print_text(&r, sds, (size_t)nsel);
		if (lint.n)
			printf("lint: %zu error%s, %zu warning%s in the files listed (flotilla lint --since "
			       "%s)\n",
			       lint.errors, lint.errors == 1 ? "" : "s", lint.warnings,
			       lint.warnings == 1 ? "" : "s", since);
		fl_cli_lint_print_text(stdout, &lint);
	}
	print_problems(sds, (size_t)nsel);

out:
	fl_lint_report_clear(&lint);
	if (sds)
		for (int i = 0; i < nsel; i++)
			service_diff_clear(&sds[i]);
	free(sds);
	free(folders);
	fl_git_changes_free(all, nall);
	fl_git_changes_free(r.wt, r.nwt);
	fl_git_free(r.g);
	free(sel);
	fl_manifest_free(m);
	return rc;
}
