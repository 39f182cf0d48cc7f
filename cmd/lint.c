/*
 * lint: the findings of core/lint.c for the selected services' migrations
 * (all of them, or those added or changed since a revision), as text, JSON,
 * GitHub workflow annotations or SARIF 2.1.0. No database is touched.
 *
 * Exit 0: no error-level finding (warnings allowed); 3: one or more; 2: bad
 * usage, or a file that could not be read or named (the report is then
 * incomplete, which outranks its findings).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gitdiff.h"
#include "lint.h"
#include "manifest.h"
#include "migration.h"
#include "source.h"

/* One file of a folder: a set of its own keeps what the migration module made of it. */
struct lint_file {
	fl_migration_set *set;
	size_t service;
	bool lint; /* false: only there as the versioned migration an undo file undoes */
};

struct fl_cli_lint {
	const fl_manifest *m;
	int pg_version;
	fl_lint_target *targets; /* by service index; service == NULL: not set up */
	struct lint_file *files;
	size_t nfiles;
	fl_lint_job *jobs;
	size_t njobs;
	const fl_migration **context; /* every file's migration, grouped by service: the targets' context */
};

fl_cli_lint *fl_cli_lint_new(const fl_manifest *m, int pg_version)
{
	fl_cli_lint *l = fl_calloc(1, sizeof(*l));
	l->m = m;
	l->pg_version = pg_version;
	l->targets = fl_calloc(m->nservices + 1, sizeof(*l->targets));
	return l;
}

void fl_cli_lint_free(fl_cli_lint *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->m->nservices; i++)
		if (l->targets[i].service)
			fl_lint_target_clear(&l->targets[i]);
	free(l->targets);
	for (size_t i = 0; i < l->nfiles; i++)
		fl_migration_set_free(l->files[i].set);
	free(l->files);
	free(l->jobs);
	free(l->context);
	free(l);
}

static bool wanted(const char *name, const char *const *only, size_t nonly)
{
	if (!only)
		return true;
	for (size_t i = 0; i < nonly; i++)
		if (strcmp(only[i], name) == 0)
			return true;
	return false;
}

int fl_cli_lint_add(fl_cli_lint *l, const fl_service *svc, fl_git *g, const char *rev,
                    const char *const *only, size_t nonly, fl_error **err)
{
	fl_file *files = NULL;
	size_t n = 0;
	int rc =
	    rev ? fl_git_read_folder(g, rev, svc->migrations, svc->migrations_as_written, &files, &n, err)
	        : fl_source_dir(svc->migrations, svc->migrations_as_written, &files, &n, err);
	if (rc < 0)
		return -1;
	size_t si = (size_t)(svc - l->m->services);
	fl_lint_target *t = &l->targets[si];
	if (!t->service)
		fl_lint_target_init(t, l->m, svc, l->pg_version);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		bool want = wanted(files[i].name, only, nonly);
		/* one set per file, so a malformed neighbour does not hide a file's findings */
		fl_error *e = NULL;
		fl_migration_set *set = fl_migration_set_new(&files[i], 1, &e);
		if (!set) {
			bad += want;
			if (want)
				fl_error_append(err, e);
			else
				fl_error_free(e);
			continue;
		}
		if (set->n == 0 || (!want && set->items[0].kind != FL_MIG_VERSIONED)) {
			fl_migration_set_free(set);
			continue;
		}
		l->files = fl_realloc(l->files, (l->nfiles + 1) * sizeof(*l->files));
		l->files[l->nfiles++] = (struct lint_file){.set = set, .service = si, .lint = want};
	}
	free(files);
	return bad ? -1 : 0;
}

int fl_cli_lint_run(fl_cli_lint *l, fl_lint_report *rep, fl_error **err)
{
	free(l->jobs);
	l->jobs = fl_calloc(l->nfiles + 1, sizeof(*l->jobs));
	l->njobs = 0;
	free(l->context);
	l->context = fl_calloc(l->nfiles + 1, sizeof(*l->context));
	size_t nc = 0;
	for (size_t s = 0; s < l->m->nservices; s++) {
		l->targets[s].context = l->context + nc;
		l->targets[s].ncontext = 0;
		for (size_t i = 0; i < l->nfiles; i++)
			if (l->files[i].service == s) {
				l->context[nc++] = &l->files[i].set->items[0];
				l->targets[s].ncontext++;
			}
	}
	for (size_t i = 0; i < l->nfiles; i++) {
		const struct lint_file *f = &l->files[i];
		if (!f->lint)
			continue;
		const fl_migration *mig = &f->set->items[0], *undoes = NULL;
		for (size_t k = 0; k < l->nfiles && mig->kind == FL_MIG_UNDO && !undoes; k++) {
			const fl_migration *v = &l->files[k].set->items[0];
			if (l->files[k].service == f->service && v->kind == FL_MIG_VERSIONED &&
			    fl_version_compare(v->version, mig->version) == 0)
				undoes = v;
		}
		l->jobs[l->njobs++] =
		    (fl_lint_job){.target = &l->targets[f->service], .mig = mig, .undoes = undoes};
	}
	return fl_lint_run(l->jobs, l->njobs, 0, rep, err);
}

void fl_cli_lint_print_text(FILE *f, const fl_lint_report *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		char *s = fl_lint_finding_text(&rep->items[i]);
		fprintf(f, "%s\n", s);
		free(s);
	}
}

/* ---- formats ---- */

/*
 * Annotations and code scanning place a finding by its path from the
 * repository's root, where CI runs; flotilla names files relative to the
 * manifest ("../services/..."). So: the file's real path, relative to the
 * current directory when it lies below it.
 */
static char *ci_path(const fl_manifest *m, const char *path)
{
	char *joined = path[0] == '/' ? fl_strdup(path) : fl_asprintf("%s/%s", m->dir, path);
	char *real = realpath(joined, NULL);
	char cwd[4096];
	if (!real || !getcwd(cwd, sizeof(cwd))) {
		free(real);
		return joined;
	}
	free(joined);
	size_t n = strlen(cwd);
	if (strncmp(real, cwd, n) == 0 && real[n] == '/') {
		char *rel = fl_strdup(real + n + 1);
		free(real);
		return rel;
	}
	return real;
}

/* GitHub's workflow-command escaping: data escapes %, CR, LF; properties also : and ,. */
static void gh_escape(fl_buf *b, const char *s, bool property)
{
	for (; *s; s++) {
		if (*s == '%')
			fl_buf_puts(b, "%25");
		else if (*s == '\r')
			fl_buf_puts(b, "%0D");
		else if (*s == '\n')
			fl_buf_puts(b, "%0A");
		else if (property && *s == ':')
			fl_buf_puts(b, "%3A");
		else if (property && *s == ',')
			fl_buf_puts(b, "%2C");
		else
			fl_buf_putc(b, *s);
	}
}

static void print_github(const fl_lint_report *rep, const fl_manifest *m)
{
	for (size_t i = 0; i < rep->n; i++) {
		const fl_lint_finding *f = &rep->items[i];
		fl_buf b;
		fl_buf_init(&b);
		fl_buf_printf(&b, "::%s file=", f->level == FL_LINT_ERROR ? "error" : "warning");
		char *path = ci_path(m, f->file);
		gh_escape(&b, path, true);
		free(path);
		fl_buf_printf(&b, ",line=%d,col=%d,title=", f->line, f->col);
		gh_escape(&b, f->rule->name, true);
		fl_buf_puts(&b, "::");
		char *text =
		    f->hint ? fl_asprintf("%s\nhint: %s", f->message, f->hint) : fl_strdup(f->message);
		gh_escape(&b, text, false);
		free(text);
		printf("%s\n", b.data);
		fl_buf_free(&b);
	}
}

static json_t *finding_json(const fl_lint_finding *f)
{
	json_t *o = json_object();
	json_object_set_new(o, "service", json_string(f->service));
	json_object_set_new(o, "file", json_string(f->file));
	json_object_set_new(o, "line", json_integer(f->line));
	json_object_set_new(o, "column", json_integer(f->col));
	json_object_set_new(o, "rule", json_string(f->rule->name));
	json_object_set_new(o, "level", json_string(fl_lint_level_name(f->level)));
	json_object_set_new(o, "message", json_string(f->message));
	json_object_set_new(o, "hint", f->hint ? json_string(f->hint) : json_null());
	return o;
}

static json_t *errors_json(const fl_error *err)
{
	json_t *a = json_array();
	for (const fl_error *e = err; e; e = e->next) {
		char *s = fl_error_format(e);
		json_array_append_new(a, json_string(s));
		free(s);
	}
	return a;
}

static void print_doc(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	free(s);
	json_decref(doc);
}

static void print_json(const fl_lint_report *rep, const fl_error *err, int pg_version, int lock_ms, int rc)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "command", json_string("lint"));
	json_object_set_new(doc, "format", json_integer(1));
	json_object_set_new(doc, "pg_version", json_integer(pg_version));
	json_object_set_new(doc, "lock_timeout_ms", json_integer(lock_ms));
	json_object_set_new(doc, "files", json_integer((json_int_t)rep->files));
	json_t *counts = json_object();
	json_object_set_new(counts, "errors", json_integer((json_int_t)rep->errors));
	json_object_set_new(counts, "warnings", json_integer((json_int_t)rep->warnings));
	json_object_set_new(doc, "counts", counts);
	json_t *a = json_array();
	for (size_t i = 0; i < rep->n; i++)
		json_array_append_new(a, finding_json(&rep->items[i]));
	json_object_set_new(doc, "findings", a);
	json_object_set_new(doc, "errors", errors_json(err));
	json_object_set_new(doc, "exit_code", json_integer(rc));
	print_doc(doc);
}

/* SARIF 2.1.0 (OASIS): one run, every rule in the driver, one result per finding. */
static void print_sarif(const fl_lint_report *rep, const fl_manifest *m)
{
	size_t nrules;
	const fl_lint_rule *rules = fl_lint_rules(&nrules);
	json_t *rj = json_array();
	for (size_t i = 0; i < nrules; i++) {
		json_t *r = json_object();
		json_object_set_new(r, "id", json_string(rules[i].name));
		json_object_set_new(r, "shortDescription", json_pack("{s:s}", "text", rules[i].summary));
		char *help = fl_asprintf("see docs/lint.md, section %s", rules[i].name);
		json_object_set_new(r, "help", json_pack("{s:s}", "text", help));
		free(help);
		json_object_set_new(r, "defaultConfiguration",
		                    json_pack("{s:s}", "level", fl_lint_level_name(rules[i].level)));
		json_array_append_new(rj, r);
	}
	json_t *results = json_array();
	for (size_t i = 0; i < rep->n; i++) {
		const fl_lint_finding *f = &rep->items[i];
		char *text =
		    f->hint ? fl_asprintf("%s\nhint: %s", f->message, f->hint) : fl_strdup(f->message);
		json_t *loc =
		    json_pack("{s:{s:{s:s},s:{s:i,s:i}}}", "physicalLocation", "artifactLocation", "uri",
		              f->file, "region", "startLine", f->line, "startColumn", f->col);
		json_t *res = json_pack("{s:s,s:i,s:s,s:{s:s},s:[o]}", "ruleId", f->rule->name, "ruleIndex",
		                        (int)(f->rule - rules), "level", fl_lint_level_name(f->level),
		                        "message", "text", text, "locations", loc);
		free(text);
		json_array_append_new(results, res);
	}
	json_t *driver = json_pack("{s:s,s:s,s:o}", "name", "flotilla", "version", FL_VERSION, "rules", rj);
	json_t *doc = json_pack("{s:s,s:s,s:[{s:{s:o},s:o}]}", "$schema",
	                        "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs",
	                        "tool", "driver", driver, "results", results);
	print_doc(doc);
}

static void print_summary(const fl_lint_report *rep, size_t nservices, int pg_version, const fl_manifest *m)
{
	char lt[64];
	fl_lint_lock_timeout_text(m->settings.lock_timeout_ms, lt);
	fprintf(stderr,
	        "lint: %zu file%s of %zu service%s, %zu error%s, %zu warning%s (PostgreSQL %d; flotilla runs "
	        "them with %s, from [settings])\n",
	        rep->files, rep->files == 1 ? "" : "s", nservices, nservices == 1 ? "" : "s", rep->errors,
	        rep->errors == 1 ? "" : "s", rep->warnings, rep->warnings == 1 ? "" : "s", pg_version, lt);
}

int cmd_lint(int argc, char **argv)
{
	struct fl_lint_args a = {.format = "text"};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	const char *since = a.since, *rev = a.rev, *format = a.json ? "json" : a.format;
	int pg_version = a.pg_version;
	fl_manifest *m = fl_cli_load_manifest(false);
	if (!m)
		return FL_EXIT_USAGE;
	size_t *sel = fl_calloc(m->nservices + 1, sizeof(size_t));
	fl_error *err = NULL;
	fl_git *g = NULL;
	fl_cli_lint *l = NULL;
	fl_git_change *changes = NULL;
	size_t nchanges = 0;
	const char **folders = NULL;
	fl_lint_report rep;
	memset(&rep, 0, sizeof(rep));
	rc = FL_EXIT_USAGE;
	int nsel = fl_manifest_select(m, argv + optind, (size_t)(argc - optind), sel, &err);
	if (nsel < 0)
		goto out;
	char base[FL_GIT_ID_LEN], to[FL_GIT_ID_LEN] = "";
	if (since || rev) {
		if (fl_git_open(m->path, &g, &err) < 0)
			goto out;
	}
	if (since) {
		bool mb;
		if (fl_git_since_range(g, since, rev, base, to, &mb, &err) < 0)
			goto out;
		folders = fl_calloc((size_t)nsel + 1, sizeof(char *));
		for (int i = 0; i < nsel; i++)
			folders[i] = m->services[sel[i]].migrations;
		if (fl_git_diff(g, base, to[0] ? to : NULL, folders, (size_t)nsel, &changes, &nchanges,
		                &err) < 0)
			goto out;
	} else if (rev && fl_git_resolve(g, rev, to, &err) < 0) {
		goto out;
	}
	l = fl_cli_lint_new(m, pg_version);
	bool bad_input = false;
	for (int i = 0; i < nsel; i++) {
		const char **only = NULL;
		size_t nonly = 0;
		if (since) {
			only = fl_calloc(nchanges + 1, sizeof(char *));
			for (size_t k = 0; k < nchanges; k++)
				if (changes[k].folder == (size_t)i && changes[k].new_name)
					only[nonly++] = changes[k].new_name;
		}
		if (!since || nonly)
			bad_input |= fl_cli_lint_add(l, &m->services[sel[i]], g, to[0] ? to : NULL, only,
			                             nonly, &err) < 0;
		free(only);
	}
	bad_input |= fl_cli_lint_run(l, &rep, &err) > 0;
	int pgv = pg_version           ? pg_version
	          : m->lint.pg_version ? m->lint.pg_version
	                               : FL_LINT_DEFAULT_PG_VERSION;
	rc = bad_input ? FL_EXIT_USAGE : rep.errors ? FL_EXIT_DRIFT : FL_EXIT_OK;
	if (strcmp(format, "json") == 0)
		print_json(&rep, err, pgv, m->settings.lock_timeout_ms, rc);
	else if (strcmp(format, "sarif") == 0)
		print_sarif(&rep, m);
	else if (strcmp(format, "github") == 0)
		print_github(&rep, m);
	else
		fl_cli_lint_print_text(stdout, &rep);
	print_summary(&rep, (size_t)nsel, pgv, m);

out:
	fl_cli_print_errors(err);
	fl_error_free(err);
	fl_lint_report_clear(&rep);
	fl_cli_lint_free(l);
	fl_git_changes_free(changes, nchanges);
	free(folders);
	fl_git_free(g);
	free(sel);
	fl_manifest_free(m);
	return rc;
}
