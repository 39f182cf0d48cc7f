/*
 * drift: `flotilla -e ENV drift [SERVICE...] [--json] [--html FILE]
 * [--only history,schema,grants] [--shadow CONNINFO] [--no-column-order]
 * [--no-comments]`. The run itself is core's (driftfleet.h); this file
 * parses the options and renders the result: the text lines, the JSON
 * document (README "Drift JSON") and the HTML page. Exit 0 clean, 3 drift,
 * 1 something could not be checked, 2 bad usage, 130 interrupted.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "drift.h"
#include "driftfleet.h"
#include "fleet.h"
#include "orchestrate.h"
#include "provision.h"
#include "report.h"
#include "secret.h"

/*
 * --shadow CONNINFO: the server the shadows are created on, as libpq
 * parameters. What the conninfo leaves out falls back as for every libpq
 * program (PGHOST, PGUSER, .pgpass ...), never to the manifest's
 * environment. The password, when the conninfo holds one, goes where
 * fl_pg scrubs it from messages, and only host, port and dbname are shown.
 */
struct shadow_server {
	PQconninfoOption *ci;
	fl_pg_option opts[64];
	fl_pg_params admin;      /* dbname: the conninfo's, else postgres */
	fl_pg_params login;      /* the same; drift replaces its dbname by the shadow's */
	const char *host, *port; /* as shown: the conninfo's, else PGHOST/PGPORT, else libpq's defaults */
	char *shown;             /* "host=... port=... dbname=..." */
	bool has_password;
};

static int shadow_parse(const char *conninfo, struct shadow_server *ss)
{
	memset(ss, 0, sizeof(*ss));
	char *msg = NULL;
	ss->ci = PQconninfoParse(conninfo, &msg);
	/* libpq's message may quote a piece of the string, which may be a password: not shown */
	PQfreemem(msg);
	if (!ss->ci)
		return -1;
	const char *host = NULL, *port = NULL, *dbname = NULL;
	size_t n = 0;
	for (const PQconninfoOption *o = ss->ci; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "dbname") == 0) {
			dbname = o->val;
			continue;
		}
		if (strcmp(o->keyword, "password") == 0) {
			ss->admin.password = o->val;
			ss->has_password = true;
			continue;
		}
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		if (n < sizeof(ss->opts) / sizeof(ss->opts[0]))
			ss->opts[n++] = (fl_pg_option){o->keyword, o->val};
	}
	ss->admin.dbname = dbname ? dbname : "postgres";
	ss->admin.options = ss->opts;
	ss->admin.noptions = n;
	ss->login = ss->admin;
	if (!host)
		host = getenv("PGHOST");
	if (!port)
		port = getenv("PGPORT");
	ss->host = host && *host ? host : "localhost";
	ss->port = port && *port ? port : "5432";
	ss->shown = fl_asprintf("host=%s port=%s dbname=%s", ss->host, ss->port, ss->admin.dbname);
	return 0;
}

static void shadow_clear(struct shadow_server *ss)
{
	if (ss->ci)
		PQconninfoFree(ss->ci); /* libpq's copy of the password goes with it */
	free(ss->shown);
	memset(ss, 0, sizeof(*ss));
}

/* "2024-05-01T14:03:10+02:00": the author's own clock, as git log --date=iso-strict */
static json_t *commit_json(const fl_git_commit *c)
{
	if (!c)
		return json_null();
	char date[40];
	time_t t = (time_t)(c->author_time + (int64_t)c->author_offset * 60);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	int off = c->author_offset < 0 ? -c->author_offset : c->author_offset;
	snprintf(date + n, sizeof(date) - n, "%c%02d:%02d", c->author_offset < 0 ? '-' : '+', off / 60,
	         off % 60);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "short", json_string(c->short_id));
	json_object_set_new(o, "summary", json_string(c->summary ? c->summary : ""));
	json_object_set_new(o, "author", json_string(c->author_name ? c->author_name : ""));
	json_object_set_new(o, "date", json_string(date));
	return o;
}

static json_t *finding_json(const fl_drift_finding *f)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string(fl_drift_kind_name(f->kind)));
	json_object_set_new(o, "change", json_string(f->change));
	json_object_set_new(o, "object", json_string(f->object));
	json_object_set_new(o, "message", json_string(f->message));
	json_object_set_new(o, "expected", f->expected ? json_string(f->expected) : json_null());
	json_object_set_new(o, "found", f->found ? json_string(f->found) : json_null());
	json_object_set_new(o, "file", f->file ? json_string(f->file) : json_null());
	json_object_set_new(o, "commit", commit_json(f->commit));
	return o;
}

static json_t *errors_json(const fl_error *e)
{
	json_t *a = json_array();
	for (; e; e = e->next) {
		char *s = fl_error_format(e);
		json_array_append_new(a, json_string(s));
		free(s);
	}
	return a;
}

/* grant findings are kept per service in `grants`; service NULL: the cluster */
static void print_group(FILE *out, const char *who, const fl_drift_findings *f, const char *service)
{
	static const fl_drift_kind kinds[] = {FL_DRIFT_HISTORY, FL_DRIFT_SCHEMA, FL_DRIFT_GRANTS};
	for (size_t k = 0; k < 3; k++) {
		size_t n = 0, sec = 0;
		for (size_t i = 0; i < f->n; i++) {
			const fl_drift_finding *d = &f->items[i];
			bool mine = service ? d->service && strcmp(d->service, service) == 0 : !d->service;
			if (mine && d->kind == kinds[k]) {
				n++;
				sec += strcmp(d->change, "security") == 0;
			}
		}
		if (!n)
			continue;
		if (sec)
			fprintf(out, "%s: %s (%zu, %zu security)\n", who, fl_drift_kind_name(kinds[k]), n,
			        sec);
		else
			fprintf(out, "%s: %s (%zu)\n", who, fl_drift_kind_name(kinds[k]), n);
		for (size_t i = 0; i < f->n; i++) {
			const fl_drift_finding *d = &f->items[i];
			bool mine = service ? d->service && strcmp(d->service, service) == 0 : !d->service;
			if (mine && d->kind == kinds[k])
				fprintf(out, "  %s: %s%s\n", who,
				        strcmp(d->change, "security") == 0 ? "SECURITY: " : "", d->message);
		}
	}
}

static const char *run_word(const fl_drift_fleet *d)
{
	switch (d->exit_code) {
	case FL_EXIT_OK:
		return "clean";
	case FL_EXIT_DRIFT:
		return "drift";
	case FL_EXIT_INTERRUPTED:
		return "interrupted";
	default:
		return "error";
	}
}

static json_t *drift_json(const fl_drift_fleet *d, const struct shadow_server *shadow)
{
	const fl_manifest *m = d->m;
	json_t *doc = json_object();
	json_object_set_new(doc, "command", json_string("drift"));
	json_object_set_new(doc, "format", json_integer(1));
	json_object_set_new(doc, "manifest", json_string(m->path));
	json_object_set_new(doc, "project", json_string(m->project ? m->project : ""));
	json_object_set_new(doc, "environment", json_string(m->env->name));
	json_t *ch = json_array();
	for (unsigned k = 1; k <= 4; k <<= 1)
		if (d->checks & k)
			json_array_append_new(ch, json_string(fl_drift_kind_name((fl_drift_kind)k)));
	json_object_set_new(doc, "checks", ch);
	json_t *sh = json_null();
	if (shadow) {
		/* host, port and dbname only: never what else the conninfo holds */
		sh = json_object();
		json_object_set_new(sh, "host", json_string(shadow->host));
		json_object_set_new(sh, "port", json_string(shadow->port));
		json_object_set_new(sh, "dbname", json_string(shadow->admin.dbname));
	}
	json_object_set_new(doc, "shadow_server", sh);
	json_object_set_new(doc, "result", json_string(run_word(d)));
	json_object_set_new(doc, "exit_code", json_integer(d->exit_code));
	json_t *cnt = json_object();
	json_object_set_new(cnt, "findings", json_integer((json_int_t)d->findings));
	json_object_set_new(cnt, "history", json_integer((json_int_t)d->counts[0]));
	json_object_set_new(cnt, "schema", json_integer((json_int_t)d->counts[1]));
	json_object_set_new(cnt, "grants", json_integer((json_int_t)d->counts[2]));
	json_object_set_new(cnt, "security", json_integer((json_int_t)d->security));
	json_object_set_new(cnt, "errors", json_integer((json_int_t)d->errors));
	json_object_set_new(cnt, "skipped", json_integer((json_int_t)d->skipped));
	json_object_set_new(doc, "counts", cnt);
	json_t *svcs = json_array();
	for (size_t i = 0; i < d->n; i++) {
		const fl_drift_fleet_service *st = &d->services[i];
		json_t *o = json_object();
		json_object_set_new(o, "service", json_string(st->svc->name));
		json_object_set_new(o, "database", json_string(st->svc->database));
		json_object_set_new(o, "schema", json_string(st->svc->schema));
		json_object_set_new(o, "version",
		                    st->res.version ? json_string(st->res.version) : json_null());
		json_object_set_new(o, "result", json_string(fl_drift_fleet_result_word(st)));
		json_object_set_new(o, "skipped",
		                    st->res.skipped ? json_string(st->res.skipped) : json_null());
		json_t *fa = json_array();
		for (size_t k = 0; k < st->res.findings.n; k++)
			json_array_append_new(fa, finding_json(&st->res.findings.items[k]));
		json_object_set_new(o, "findings", fa);
		json_object_set_new(o, "errors", errors_json(st->error));
		json_object_set_new(o, "seconds", json_real(st->seconds));
		json_t *tm = json_object();
		json_object_set_new(tm, "history", json_real(st->res.history_s));
		json_object_set_new(tm, "shadow_create", json_real(st->res.create_s));
		json_object_set_new(tm, "replay", json_real(st->res.replay_s));
		json_object_set_new(tm, "snapshots", json_real(st->res.snapshot_s));
		json_object_set_new(tm, "shadow_drop", json_real(st->res.drop_s));
		json_object_set_new(o, "timing", tm);
		json_array_append_new(svcs, o);
	}
	json_object_set_new(doc, "services", svcs);
	json_t *cl = json_object();
	json_t *fa = json_array();
	for (size_t k = 0; k < d->cluster.n; k++)
		json_array_append_new(fa, finding_json(&d->cluster.items[k]));
	json_object_set_new(cl, "findings", fa);
	json_object_set_new(cl, "errors", errors_json(d->cluster_err));
	json_object_set_new(doc, "cluster", cl);
	json_t *lo = json_array();
	for (size_t i = 0; i < d->nleftovers; i++)
		json_array_append_new(lo, json_string(d->leftovers[i]));
	json_object_set_new(doc, "leftover_shadows_dropped", lo);
	json_object_set_new(doc, "seconds", json_real(d->wall));
	return doc;
}

/* ---- the HTML page ---- */

static void html_text(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

static void html_findings(FILE *out, const fl_drift_findings *f)
{
	static const fl_drift_kind kinds[] = {FL_DRIFT_HISTORY, FL_DRIFT_SCHEMA, FL_DRIFT_GRANTS};
	for (size_t k = 0; k < 3; k++) {
		size_t n = 0;
		for (size_t i = 0; i < f->n; i++)
			n += f->items[i].kind == kinds[k];
		if (!n)
			continue;
		fprintf(out, "<h3 class=\"kind\">%s (%zu)</h3>\n<ul>\n", fl_drift_kind_name(kinds[k]), n);
		for (size_t i = 0; i < f->n; i++) {
			const fl_drift_finding *d = &f->items[i];
			if (d->kind != kinds[k])
				continue;
			bool sec = strcmp(d->change, "security") == 0;
			fprintf(out, "<li class=\"finding %s\"><span class=\"change\">%s</span> ",
			        sec ? "security" : "", d->change);
			html_text(out, d->message);
			/* grants: the statement that fixes it */
			const char *fix =
			    d->kind == FL_DRIFT_GRANTS ? (d->expected ? d->expected : d->found) : NULL;
			if (fix) {
				fputs("<pre class=\"fix\">", out);
				html_text(out, fix);
				fputs("</pre>", out);
			}
			if (d->commit) {
				fputs("<div class=\"commit\">commit <code>", out);
				html_text(out, d->commit->short_id);
				fputs("</code> ", out);
				html_text(out, d->commit->summary);
				fputs(" (", out);
				html_text(out, d->commit->author_name);
				fputs(")</div>", out);
			}
			fputs("</li>\n", out);
		}
		fputs("</ul>\n", out);
	}
}

static void html_errors(FILE *out, const fl_error *e)
{
	for (; e; e = e->next) {
		char *s = fl_error_format(e);
		fputs("<p class=\"error\">could not check: ", out);
		html_text(out, s);
		fputs("</p>\n", out);
		free(s);
	}
}

/* One self-contained page (inline style, no script, nothing fetched) for the nightly artifact. */
static void drift_html(FILE *out, const fl_drift_fleet *d)
{
	const fl_manifest *m = d->m;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>flotilla drift: ",
	      out);
	html_text(out, m->project);
	fputs(" ", out);
	html_text(out, m->env->name);
	fputs(
	    "</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:2em;color:#222}\n"
	    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}\n"
	    ".service{border-top:2px solid #888;margin-top:1.5em}\n"
	    ".clean{color:#176317}.drift,.error,.security{color:#a31515}.skipped{color:#8a6d00}\n"
	    ".change{font-weight:bold;margin-right:.4em}\n"
	    "pre.fix{background:#f3f3f3;padding:.3em;margin:.2em 0;white-space:pre-wrap}\n"
	    ".commit{font-size:90%;color:#555}\n"
	    "</style></head><body>\n<h1>drift: ",
	    out);
	html_text(out, m->project);
	fputs(" / ", out);
	html_text(out, m->env->name);
	fprintf(out, " <span class=\"%s\">%s</span></h1>\n", run_word(d), run_word(d));
	fprintf(out,
	        "<table id=\"counts\"><tr><th>findings</th><th>history</th><th>schema</th><th>grants</th>"
	        "<th>security</th><th>errors</th><th>skipped</th><th>services</th><th>seconds</th></tr>\n"
	        "<tr><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td>"
	        "<td>%zu</td><td>%.2f</td></tr></table>\n",
	        d->findings, d->counts[0], d->counts[1], d->counts[2], d->security, d->errors, d->skipped,
	        d->n, d->wall);
	for (size_t i = 0; i < d->n; i++) {
		const fl_drift_fleet_service *st = &d->services[i];
		const char *w = fl_drift_fleet_result_word(st);
		fputs("<section class=\"service\"><h2>", out);
		html_text(out, st->svc->name);
		fprintf(out, " <span class=\"%s\">%s</span></h2>\n<p>database <code>", w, w);
		html_text(out, st->svc->database);
		fputs("</code>", out);
		if (st->res.version) {
			fputs(", version ", out);
			html_text(out, st->res.version);
		}
		fputs("</p>\n", out);
		if (st->res.skipped) {
			fputs("<p class=\"skipped\">skipped: ", out);
			html_text(out, st->res.skipped);
			fputs("</p>\n", out);
		}
		html_findings(out, &st->res.findings);
		html_errors(out, st->error);
		fputs("</section>\n", out);
	}
	if (d->cluster.n || d->cluster_err) {
		fputs("<section class=\"service\"><h2>cluster</h2>\n", out);
		html_findings(out, &d->cluster);
		html_errors(out, d->cluster_err);
		fputs("</section>\n", out);
	}
	fputs("</body></html>\n", out);
}

static void print_text(const fl_drift_fleet *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const fl_drift_fleet_service *st = &d->services[i];
		if (st->res.findings.n)
			print_group(stdout, st->svc->name, &st->res.findings, st->svc->name);
		else if (st->res.skipped)
			printf("%s: skipped: %s\n", st->svc->name, st->res.skipped);
		else if (st->outcome == FL_OUTCOME_OK)
			printf("%s: clean%s%s\n", st->svc->name, st->res.version ? " at version " : "",
			       st->res.version ? st->res.version : "");
	}
	print_group(stdout, "cluster", &d->cluster, NULL);
	printf("drift: %zu finding%s (history %zu, schema %zu, grants %zu; %zu security) in %zu of %zu "
	       "services%s",
	       d->findings, d->findings == 1 ? "" : "s", d->counts[0], d->counts[1], d->counts[2],
	       d->security, d->drifting, d->n, d->cluster.n ? " and the cluster" : "");
	if (d->skipped)
		printf(", %zu skipped", d->skipped);
	printf("; %.2fs\n", d->wall);
}

static void print_stderr(const fl_drift_fleet *d)
{
	for (const fl_error *w = d->warnings; w; w = w->next) {
		char *s = fl_error_format(w);
		fprintf(stderr, "flotilla: warning: %s\n", s);
		free(s);
	}
	for (size_t i = 0; i < d->nleftovers; i++)
		fprintf(stderr, "flotilla: dropped %s, a shadow database left by an earlier run\n",
		        d->leftovers[i]);
	for (size_t i = 0; i < d->n; i++) {
		const fl_drift_fleet_service *st = &d->services[i];
		if (st->res.kept_shadow)
			fprintf(stderr, "%s: shadow database kept: %s\n", st->svc->name, st->res.kept_shadow);
		for (const fl_error *e = st->error; e; e = e->next) {
			char *s = fl_error_format(e);
			fprintf(stderr, "%s: could not check: %s\n", st->svc->name, s);
			free(s);
		}
	}
	for (const fl_error *e = d->cluster_err; e; e = e->next) {
		char *s = fl_error_format(e);
		fprintf(stderr, "flotilla: could not check: %s\n", s);
		free(s);
	}
	if (d->interrupted)
		fprintf(stderr, "flotilla: interrupted; shadow databases were dropped\n");
}

int cmd_drift(int argc, char **argv)
{
	struct fl_drift_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	bool json = a.json, keep = a.keep_shadow, plain = a.plain, no_order = a.no_column_order,
	     no_comments = a.no_comments;
	const char *shadow_conninfo = a.shadow, *html = a.html;
	int checks = FL_DRIFT_ALL, jobs = a.jobs;
	if (a.only) {
		fl_error *e = NULL;
		checks = fl_drift_parse_only(a.only, &e);
		if (checks < 0) {
			rc = fl_cli_usage(argc, argv, "%s", e->msg);
			fl_error_free(e);
			return rc;
		}
	}
	struct shadow_server shadow;
	memset(&shadow, 0, sizeof(shadow));
	if (shadow_conninfo && shadow_parse(shadow_conninfo, &shadow) != 0)
		return fl_cli_usage(argc, argv,
		                    "--shadow: not a connection string libpq understands (key=value "
		                    "pairs, or a postgresql:// URI)");
	if (shadow.has_password)
		fprintf(stderr, "flotilla: warning: the --shadow connection string holds a password, which "
		                "other users can see in the process list; use ~/.pgpass or PGPASSWORD\n");
	/* the page's file is opened first: a path that cannot be written is bad usage, found before any work
	 */
	FILE *hf = NULL;
	if (html && !(hf = fopen(html, "w"))) {
		shadow_clear(&shadow);
		return fl_cli_usage(argc, argv, "--html: cannot write %s", html);
	}
	rc = FL_EXIT_USAGE;
	fl_manifest *m = fl_cli_load_manifest(true);
	size_t *sel = NULL;
	fl_drift_fleet *d = NULL;
	if (!m)
		goto out;
	sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int nsel = fl_manifest_select(m, argv + optind, (size_t)(argc - optind), sel, &err);
	if (nsel < 0) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		goto out;
	}
	const char **names = fl_calloc((size_t)nsel + 1, sizeof(char *));
	for (int i = 0; i < nsel; i++)
		names[i] = m->services[sel[i]].name;
	if (shadow_conninfo && (checks & FL_DRIFT_SCHEMA))
		fprintf(stderr, "flotilla: shadow databases on %s\n", shadow.shown);
	fl_report *rep =
	    fl_report_new(stderr, plain ? FL_REPORT_PLAIN : FL_REPORT_QUIET, "drift", names, (size_t)nsel);
	free(names);
	fl_drift_fleet_opts o = {
	    .names = argv + optind,
	    .nnames = (size_t)(argc - optind),
	    .checks = (unsigned)checks,
	    .jobs = jobs,
	    .keep_shadow = keep,
	    .shadow_admin = shadow_conninfo ? &shadow.admin : NULL,
	    .shadow_login = shadow_conninfo ? &shadow.login : NULL,
	    .no_column_order = no_order,
	    .no_comments = no_comments,
	    .on_event = fl_report_event,
	    .event_ctx = rep,
	};
	rc = fl_drift_fleet_run(m, &o, &d);
	fl_report_finish(rep);
	fl_report_free(rep);
	if (d->input_err) {
		/* bad files: nothing was sent; the problems, as every fleet command lists them */
		fl_cli_print_errors(d->input_err);
		goto out;
	}
	if (json) {
		json_t *doc = drift_json(d, shadow_conninfo ? &shadow : NULL);
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(doc);
	} else {
		print_text(d);
	}
	if (hf)
		drift_html(hf, d);
	print_stderr(d);
out:
	if (hf && fclose(hf) != 0) {
		fprintf(stderr, "flotilla: could not write %s\n", html);
		if (rc == FL_EXIT_OK || rc == FL_EXIT_DRIFT)
			rc = FL_EXIT_FAILED;
	}
	fl_drift_fleet_free(d);
	free(sel);
	fl_manifest_free(m);
	shadow_clear(&shadow);
	return rc;
}
