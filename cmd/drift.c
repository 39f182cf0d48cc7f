/*
 * drift: `flotilla -e ENV drift [SERVICE...] [--json] [--only history,schema,grants]
 * [--shadow CONNINFO]`. History and schema run per service on the
 * orchestrate pool; grants is one provision dry run for the cluster, before
 * the pool. After the pool, in this thread (a repository handle is one
 * thread's), git names the commit behind each changed applied file. Exit 0
 * clean, 3 drift, 1 something could not be checked, 2 bad usage, 130
 * interrupted.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "drift.h"
#include "fleet.h"
#include "orchestrate.h"
#include "provision.h"
#include "report.h"
#include "secret.h"

enum { OPT_JSON = 1000, OPT_ONLY, OPT_KEEP_SHADOW, OPT_PLAIN, OPT_SHADOW };

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

struct svc_state {
	const fl_service *svc;
	const fl_migration_set *set;
	fl_drift_service_result res;
	fl_error *error;
	int rc; /* 0 checked, 1 could not check, 130 cancelled */
	double seconds;
};

struct run {
	const fl_manifest *m;
	struct svc_state *s;
	size_t n;
	unsigned checks;
	bool keep_shadow;
	const fl_pg_params *admin;          /* dbname = the maintenance database */
	const struct shadow_server *shadow; /* --shadow; NULL: the shadows go to the cluster itself */
	const char *migrator_password;
};

static void on_conn(void *ctx, PGconn *conn)
{
	fl_orch_set_conn(ctx, conn);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int job(fl_orch_worker *w, size_t i, void *arg)
{
	struct run *r = arg;
	struct svc_state *st = &r->s[i];
	const fl_environment *env = r->m->env;
	double t0 = now_s();
	fl_orch_post(w, FL_EV_CONNECTING, 0, 0, 0, NULL);
	fl_pg_params live;
	char port[16];
	fl_pg_option *popts = NULL;
	fl_fleet_pg_params(env, &env->migrator, st->svc->database, r->migrator_password, &live, port, &popts);
	fl_drift_service_opts o = {
	    .svc = st->svc,
	    .set = st->set,
	    .checks = r->checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA),
	    .live = &live,
	    .shadow_login = r->shadow ? &r->shadow->login : &live,
	    .admin = r->shadow ? &r->shadow->admin : r->admin,
	    .shadow_remote = r->shadow != NULL,
	    .lock_timeout_ms = r->m->settings.lock_timeout_ms,
	    .statement_timeout_ms = r->m->settings.statement_timeout_ms,
	    .keep_shadow = r->keep_shadow,
	    .cancel = fl_orch_cancel_flag(w),
	    .on_conn = on_conn,
	    .conn_ctx = w,
	};
	fl_error *err = NULL;
	int rc = fl_drift_service(&o, &st->res, &err);
	free(popts);
	st->seconds = now_s() - t0;
	if (rc != 0) {
		st->error = err;
		st->rc = err && err->kind == FL_EINTR ? 130 : 1;
		if (st->rc == 130) {
			fl_orch_post(w, FL_EV_CANCELLED, 0, 0, 0, NULL);
			return 130;
		}
		char *msg = err ? fl_error_format(err) : fl_strdup("failed");
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, msg);
		free(msg);
		return 1;
	}
	char *done =
	    st->res.findings.n ? fl_asprintf("%zu findings", st->res.findings.n) : fl_strdup("clean");
	fl_orch_post(w, FL_EV_DONE, 0, 0, 0, done);
	free(done);
	return 0;
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

/*
 * Each history finding about a changed applied file names the commit that
 * changed it after it ran, or says the change is not committed, as
 * validate does. Outside a repository nothing is added.
 */
static void name_commits(struct run *r)
{
	bool any = false;
	for (size_t i = 0; i < r->n && !any; i++)
		for (size_t k = 0; k < r->s[i].res.findings.n && !any; k++)
			any = r->s[i].res.findings.items[k].script != NULL;
	if (!any)
		return;
	fl_git *g = NULL;
	fl_error *err = NULL;
	if (fl_git_open(r->m->path, &g, &err) < 0) {
		fl_error_free(err);
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < r->s[i].res.findings.n; k++) {
			fl_drift_finding *d = &r->s[i].res.findings.items[k];
			if (!d->script)
				continue;
			fl_git_commit c;
			char *note = NULL;
			int rc = fl_git_changing_commit(g, NULL, r->s[i].svc->migrations, d->script,
			                                d->installed_on, &c, &note);
			fl_drift_set_commit(d, note, rc == 1 ? &c : NULL);
			free(note);
		}
	fl_git_free(g);
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

int cmd_drift(int argc, char **argv)
{
	const char *cmd = argv[0];
	static const struct option opts[] = {
	    FL_CLI_GLOBAL_LONGOPTS,
	    {"json", no_argument, NULL, OPT_JSON},
	    {"only", required_argument, NULL, OPT_ONLY},
	    {"keep-shadow", no_argument, NULL,
	     OPT_KEEP_SHADOW}, /* tests: keep the shadows, print their names */
	    {"plain", no_argument, NULL, OPT_PLAIN},
	    {"shadow", required_argument, NULL, OPT_SHADOW},
	    {"jobs", required_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool json = false, keep = false, plain = false;
	const char *shadow_conninfo = NULL;
	int checks = FL_DRIFT_ALL, jobs = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:e:j:h", opts, NULL)) != -1) {
		if (fl_cli_global_opt(c, optarg))
			continue;
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_ONLY: {
			fl_error *e = NULL;
			checks = fl_drift_parse_only(optarg, &e);
			if (checks < 0) {
				int rc = fl_cli_usage_error(cmd, "%s", e->msg);
				fl_error_free(e);
				return rc;
			}
			break;
		}
		case OPT_KEEP_SHADOW:
			keep = true;
			break;
		case OPT_PLAIN:
			plain = true;
			break;
		case OPT_SHADOW:
			shadow_conninfo = optarg;
			break;
		case 'j':
			jobs = atoi(optarg);
			if (jobs < 1 || jobs > 64)
				return fl_cli_usage_error(cmd, "-j needs a number from 1 to 64, not '%s'",
				                          optarg);
			break;
		case 'h':
			printf("see 'flotilla help %s'\n", cmd);
			return FL_EXIT_OK;
		case ':':
			return fl_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fl_cli_usage_error(cmd, "unknown option '%s' for %s", argv[optind - 1], cmd);
		}
	}
	struct shadow_server shadow;
	memset(&shadow, 0, sizeof(shadow));
	if (shadow_conninfo && shadow_parse(shadow_conninfo, &shadow) != 0)
		return fl_cli_usage_error(cmd,
		                          "--shadow: not a connection string libpq understands (key=value "
		                          "pairs, or a postgresql:// URI)");
	if (shadow.has_password)
		fprintf(stderr, "flotilla: warning: the --shadow connection string holds a password, which "
		                "other users can see in the process list; use ~/.pgpass or PGPASSWORD\n");
	fl_manifest *m = fl_cli_load_manifest(true);
	if (!m) {
		shadow_clear(&shadow);
		return FL_EXIT_USAGE;
	}
	size_t *sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int nsel = fl_manifest_select(m, argv + optind, (size_t)(argc - optind), sel, &err);
	if (nsel < 0) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		free(sel);
		fl_manifest_free(m);
		shadow_clear(&shadow);
		return FL_EXIT_USAGE;
	}
	bool all_selected = (size_t)nsel == m->nservices;
	double t0 = now_s();

	/* the files first: bad input touches nothing */
	fl_fleet_opts fo;
	memset(&fo, 0, sizeof(fo));
	fo.verb = FL_FLEET_STATUS;
	fo.names = argv + optind;
	fo.nnames = (size_t)(argc - optind);
	fl_fleet *files = fl_fleet_new(m, &fo);
	if ((err = fl_fleet_load_files(files))) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		fl_fleet_free(files);
		free(sel);
		fl_manifest_free(m);
		shadow_clear(&shadow);
		return FL_EXIT_USAGE;
	}

	int rc = FL_EXIT_OK;
	fl_error *warnings = NULL, *cluster_err = NULL;
	fl_provision_admin admin;
	memset(&admin, 0, sizeof(admin));
	bool admin_ok = false;
	fl_secret *mpw = NULL;
	fl_drift_findings grants = {0};
	struct run r = {.m = m,
	                .n = (size_t)nsel,
	                .checks = (unsigned)checks,
	                .keep_shadow = keep,
	                .shadow = shadow_conninfo ? &shadow : NULL};
	r.s = fl_calloc(r.n ? r.n : 1, sizeof(struct svc_state));
	for (size_t i = 0; i < r.n; i++) {
		r.s[i].svc = files->services[i].svc;
		r.s[i].set = files->services[i].set;
	}

	/* the admin creates the shadows, unless they go to another server */
	if ((checks & FL_DRIFT_GRANTS) || ((checks & FL_DRIFT_SCHEMA) && !r.shadow)) {
		cluster_err = fl_provision_admin_init(&admin, m->env, &warnings);
		admin_ok = cluster_err == NULL;
	}
	fl_pg_params admin_params;
	if (admin_ok) {
		admin_params = admin.params;
		admin_params.dbname = m->env->maintenance_db ? m->env->maintenance_db : "postgres";
		r.admin = &admin_params;
	}
	if (!cluster_err && (checks & FL_DRIFT_GRANTS)) {
		cluster_err = fl_drift_grants(m, &admin.target, &grants);
		/* grants of services not asked for are not this run's business */
		if (!all_selected) {
			fl_drift_findings keep_g = {0};
			for (size_t i = 0; i < grants.n; i++) {
				fl_drift_finding *d = &grants.items[i];
				bool wanted = !d->service;
				for (size_t k = 0; k < r.n && !wanted; k++)
					wanted = strcmp(d->service, r.s[k].svc->name) == 0;
				if (wanted)
					fl_drift_add(&keep_g, d->service, d->kind, d->change, d->object,
					             d->expected, d->found, d->file, "%s", d->message);
			}
			fl_drift_findings_clear(&grants);
			grants = keep_g;
		}
	}
	if (!cluster_err && m->env->migrator.password && (checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA))) {
		char what[128];
		snprintf(what, sizeof(what), "password of the migrator %s", m->env->migrator.user);
		if (fl_secret_resolve(m->env->migrator.password, what, &mpw, &warnings, &cluster_err) == 0)
			r.migrator_password = mpw->data;
	}
	for (fl_error *w = warnings; w; w = w->next) {
		char *s = fl_error_format(w);
		fprintf(stderr, "flotilla: warning: %s\n", s);
		free(s);
	}

	bool interrupted = false;
	if ((checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA)) &&
	    !(cluster_err && (checks & FL_DRIFT_SCHEMA) && !r.shadow && !admin_ok) &&
	    !(cluster_err && m->env->migrator.password && !mpw)) {
		const char **names = fl_calloc(r.n ? r.n : 1, sizeof(char *));
		for (size_t i = 0; i < r.n; i++)
			names[i] = r.s[i].svc->name;
		if (r.shadow && (checks & FL_DRIFT_SCHEMA))
			fprintf(stderr, "flotilla: shadow databases on %s\n", r.shadow->shown);
		fl_report *rep =
		    fl_report_new(stderr, plain ? FL_REPORT_PLAIN : FL_REPORT_QUIET, "drift", names, r.n);
		free(names);
		int jn = jobs > 0 ? jobs : m->settings.jobs;
		fl_orch_opts oo = {
		    .threads = jn, .handle_signals = true, .on_event = fl_report_event, .event_ctx = rep};
		int *results = fl_calloc(r.n ? r.n : 1, sizeof(int));
		interrupted = fl_orch_run(r.n, job, &r, &oo, results) == 130;
		for (size_t i = 0; i < r.n; i++)
			if (results[i] == 130 && r.s[i].rc == 0 && !r.s[i].error && r.s[i].seconds == 0)
				r.s[i].rc = 130; /* never started */
		free(results);
		fl_report_finish(rep);
		fl_report_free(rep);
	} else if (checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA)) {
		for (size_t i = 0; i < r.n; i++)
			r.s[i].rc = 1;
	}
	if (checks & FL_DRIFT_HISTORY)
		name_commits(&r);
	double wall = now_s() - t0;

	/* every finding in one list, services in manifest order, cluster last */
	fl_drift_findings all = {0};
	size_t nfind = 0, nsec = 0, nerr = 0, counts[3] = {0, 0, 0};
	for (size_t i = 0; i < r.n; i++) {
		for (size_t k = 0; k < grants.n; k++)
			if (grants.items[k].service && strcmp(grants.items[k].service, r.s[i].svc->name) == 0)
				fl_drift_add(&r.s[i].res.findings, grants.items[k].service,
				             grants.items[k].kind, grants.items[k].change,
				             grants.items[k].object, grants.items[k].expected,
				             grants.items[k].found, grants.items[k].file, "%s",
				             grants.items[k].message);
		nerr += r.s[i].rc != 0;
	}
	for (size_t k = 0; k < grants.n; k++)
		if (!grants.items[k].service)
			fl_drift_add(&all, NULL, grants.items[k].kind, grants.items[k].change,
			             grants.items[k].object, grants.items[k].expected, grants.items[k].found,
			             grants.items[k].file, "%s", grants.items[k].message);
	for (size_t i = 0; i < r.n; i++)
		for (size_t k = 0; k < r.s[i].res.findings.n; k++) {
			const fl_drift_finding *d = &r.s[i].res.findings.items[k];
			nfind++;
			nsec += strcmp(d->change, "security") == 0;
			counts[d->kind == FL_DRIFT_HISTORY ? 0 : d->kind == FL_DRIFT_SCHEMA ? 1 : 2]++;
		}
	for (size_t k = 0; k < all.n; k++) {
		nfind++;
		nsec += strcmp(all.items[k].change, "security") == 0;
		counts[2]++;
	}

	if (interrupted)
		rc = FL_EXIT_INTERRUPTED;
	else if (cluster_err || nerr)
		rc = FL_EXIT_FAILED;
	else if (nfind)
		rc = FL_EXIT_DRIFT;

	if (json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "command", json_string("drift"));
		json_object_set_new(doc, "format", json_integer(1));
		json_object_set_new(doc, "manifest", json_string(m->path));
		json_object_set_new(doc, "project", json_string(m->project ? m->project : ""));
		json_object_set_new(doc, "environment", json_string(m->env->name));
		json_t *ch = json_array();
		for (unsigned k = 1; k <= 4; k <<= 1)
			if ((unsigned)checks & k)
				json_array_append_new(ch, json_string(fl_drift_kind_name((fl_drift_kind)k)));
		json_object_set_new(doc, "checks", ch);
		json_t *sh = json_null();
		if (r.shadow) {
			/* host, port and dbname only: never what else the conninfo holds */
			sh = json_object();
			json_object_set_new(sh, "host", json_string(r.shadow->host));
			json_object_set_new(sh, "port", json_string(r.shadow->port));
			json_object_set_new(sh, "dbname", json_string(r.shadow->admin.dbname));
		}
		json_object_set_new(doc, "shadow_server", sh);
		json_object_set_new(doc, "result",
		                    json_string(rc == FL_EXIT_OK      ? "clean"
		                                : rc == FL_EXIT_DRIFT ? "drift"
		                                : rc == 130           ? "interrupted"
		                                                      : "error"));
		json_object_set_new(doc, "exit_code", json_integer(rc));
		json_t *cnt = json_object();
		json_object_set_new(cnt, "findings", json_integer((json_int_t)nfind));
		json_object_set_new(cnt, "history", json_integer((json_int_t)counts[0]));
		json_object_set_new(cnt, "schema", json_integer((json_int_t)counts[1]));
		json_object_set_new(cnt, "grants", json_integer((json_int_t)counts[2]));
		json_object_set_new(cnt, "security", json_integer((json_int_t)nsec));
		json_object_set_new(cnt, "errors", json_integer((json_int_t)(nerr + (cluster_err != NULL))));
		json_object_set_new(doc, "counts", cnt);
		json_t *svcs = json_array();
		for (size_t i = 0; i < r.n; i++) {
			struct svc_state *st = &r.s[i];
			json_t *o = json_object();
			json_object_set_new(o, "service", json_string(st->svc->name));
			json_object_set_new(o, "database", json_string(st->svc->database));
			json_object_set_new(o, "schema", json_string(st->svc->schema));
			json_object_set_new(o, "version",
			                    st->res.version ? json_string(st->res.version) : json_null());
			json_object_set_new(o, "result",
			                    json_string(st->rc == 130        ? "interrupted"
			                                : st->rc             ? "error"
			                                : st->res.findings.n ? "drift"
			                                                     : "clean"));
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
		for (size_t k = 0; k < all.n; k++)
			json_array_append_new(fa, finding_json(&all.items[k]));
		json_object_set_new(cl, "findings", fa);
		json_object_set_new(cl, "errors", errors_json(cluster_err));
		json_object_set_new(doc, "cluster", cl);
		json_object_set_new(doc, "seconds", json_real(wall));
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(doc);
	} else {
		size_t drifting = 0;
		for (size_t i = 0; i < r.n; i++) {
			struct svc_state *st = &r.s[i];
			if (st->res.findings.n) {
				drifting++;
				print_group(stdout, st->svc->name, &st->res.findings, st->svc->name);
			} else if (st->rc == 0) {
				printf("%s: clean%s%s\n", st->svc->name,
				       st->res.version ? " at version " : "",
				       st->res.version ? st->res.version : "");
			}
		}
		print_group(stdout, "cluster", &all, NULL);
		printf(
		    "drift: %zu finding%s (history %zu, schema %zu, grants %zu; %zu security) in %zu of %zu "
		    "services%s; %.2fs\n",
		    nfind, nfind == 1 ? "" : "s", counts[0], counts[1], counts[2], nsec, drifting, r.n,
		    all.n ? " and the cluster" : "", wall);
	}
	for (size_t i = 0; i < r.n; i++) {
		struct svc_state *st = &r.s[i];
		if (st->res.kept_shadow)
			fprintf(stderr, "%s: shadow database kept: %s\n", st->svc->name, st->res.kept_shadow);
		for (const fl_error *e = st->error; e; e = e->next) {
			char *s = fl_error_format(e);
			fprintf(stderr, "%s: could not check: %s\n", st->svc->name, s);
			free(s);
		}
	}
	for (const fl_error *e = cluster_err; e; e = e->next) {
		char *s = fl_error_format(e);
		fprintf(stderr, "flotilla: could not check: %s\n", s);
		free(s);
	}
	if (interrupted)
		fprintf(stderr, "flotilla: interrupted; shadow databases were dropped\n");

	for (size_t i = 0; i < r.n; i++) {
		fl_drift_service_result_clear(&r.s[i].res);
		fl_error_free(r.s[i].error);
	}
	free(r.s);
	fl_drift_findings_clear(&all);
	fl_drift_findings_clear(&grants);
	fl_secret_free(mpw);
	fl_error_free(cluster_err);
	fl_error_free(warnings);
	if (admin_ok)
		fl_provision_admin_clear(&admin);
	fl_fleet_free(files);
	free(sel);
	fl_manifest_free(m);
	shadow_clear(&shadow);
	return rc;
}
