#include "driftfleet.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gitdiff.h"
#include "login.h"
#include "provision.h"
#include "secret.h"

struct run {
	fl_drift_fleet *d;
	const fl_drift_fleet_opts *o;
	const fl_pg_params *admin; /* dbname = the maintenance database (or --shadow's) */
	const fl_secret
	    *migrator_secret; /* the migrator's password or URL, resolved once (a token: per connection) */
	bool column_order, comments;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_conn(void *ctx, PGconn *conn)
{
	fl_orch_set_conn(ctx, conn);
}

static int job(fl_orch_worker *w, size_t i, void *arg)
{
	struct run *r = arg;
	fl_drift_fleet_service *st = &r->d->services[i];
	const fl_manifest *m = r->d->m;
	const fl_environment *env = m->env;
	double t0 = now_s();
	fl_orch_post(w, FL_EV_CONNECTING, 0, 0, 0, NULL);
	/* login knows every shape of the migrator's secret (password, token, URL) */
	fl_login_conn lc;
	fl_error *lerr = NULL;
	if (fl_login_conn_init_known(&lc, env, &env->migrator, st->svc->database, &m->settings,
	                             r->migrator_secret, NULL, &lerr) != 0) {
		st->error = lerr;
		st->outcome = FL_OUTCOME_FAILED;
		st->seconds = now_s() - t0;
		char *msg = fl_error_format(lerr);
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, msg);
		free(msg);
		return 1;
	}
	const fl_pg_params live = lc.params;
	fl_drift_service_opts so = {
	    .svc = st->svc,
	    .set = r->d->files->services[i].set,
	    .table = st->svc->table,
	    .checks = r->d->checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA),
	    .live = &live,
	    .shadow_login = r->o->shadow_login ? r->o->shadow_login : &live,
	    .admin = r->admin,
	    .shadow_remote = r->o->shadow_admin != NULL,
	    .lock_timeout_ms = m->settings.lock_timeout_ms,
	    .statement_timeout_ms = m->settings.statement_timeout_ms,
	    .ignore_schemas = m->settings.drift_ignore_schemas,
	    .nignore_schemas = m->settings.ndrift_ignore_schemas,
	    .column_order = r->column_order,
	    .comments = r->comments,
	    .keep_shadow = r->o->keep_shadow,
	    .cancel = fl_orch_cancel_flag(w),
	    .on_conn = on_conn,
	    .conn_ctx = w,
	};
	fl_error *err = NULL;
	int rc = fl_drift_service(&so, &st->res, &err);
	fl_login_conn_clear(&lc);
	st->seconds = now_s() - t0;
	if (rc != 0) {
		st->error = err;
		st->outcome = fl_outcome_of_error(err);
		if (st->outcome == FL_OUTCOME_CANCELLED) {
			fl_orch_post(w, FL_EV_CANCELLED, 0, 0, 0, NULL);
			return 130;
		}
		st->outcome = FL_OUTCOME_FAILED;
		char *msg = err ? fl_error_format(err) : fl_strdup("failed");
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, msg);
		free(msg);
		return 1;
	}
	if (st->res.skipped) {
		st->outcome = FL_OUTCOME_SKIPPED;
		fl_orch_post(w, FL_EV_SKIPPED, 0, 0, 0, st->res.skipped);
		return 0;
	}
	char *done =
	    st->res.findings.n ? fl_asprintf("%zu findings", st->res.findings.n) : fl_strdup("clean");
	fl_orch_post(w, FL_EV_DONE, 0, 0, 0, done);
	free(done);
	return 0;
}

/*
 * Each history finding about a changed applied file names the commit that
 * changed it after it ran, or says the change is not committed, as
 * validate does. Outside a repository nothing is added.
 */
static void name_commits(fl_drift_fleet *d)
{
	bool any = false;
	for (size_t i = 0; i < d->n && !any; i++)
		for (size_t k = 0; k < d->services[i].res.findings.n && !any; k++)
			any = d->services[i].res.findings.items[k].script != NULL;
	if (!any)
		return;
	fl_git *g = NULL;
	fl_error *err = NULL;
	if (fl_git_open(d->m->path, &g, &err) < 0) {
		fl_error_free(err);
		return;
	}
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = 0; k < d->services[i].res.findings.n; k++) {
			fl_drift_finding *f = &d->services[i].res.findings.items[k];
			if (!f->script)
				continue;
			fl_git_commit c;
			char *note = NULL;
			int rc = fl_git_changing_commit(g, NULL, d->services[i].svc->migrations, f->script,
			                                f->installed_on, &c, &note);
			fl_drift_set_commit(f, note, rc == 1 ? &c : NULL);
			free(note);
		}
	fl_git_free(g);
}

static void copy_finding(fl_drift_findings *to, const fl_drift_finding *f)
{
	fl_drift_add(to, f->service, f->kind, f->change, f->object, f->expected, f->found, f->file, "%s",
	             f->message);
}

/* Grant findings go to their service (when selected) or to the cluster; the others are not this run's. */
static void place_grants(fl_drift_fleet *d, fl_drift_findings *grants)
{
	for (size_t k = 0; k < grants->n; k++) {
		const fl_drift_finding *f = &grants->items[k];
		if (!f->service) {
			copy_finding(&d->cluster, f);
			continue;
		}
		for (size_t i = 0; i < d->n; i++)
			if (strcmp(f->service, d->services[i].svc->name) == 0 && !d->services[i].res.skipped)
				copy_finding(&d->services[i].res.findings, f);
	}
}

/*
 * Phase 3's first step: the shadows crashed runs left of the selected
 * services (a nightly run over the fleet clears them all; a run for one
 * service touches no other's). A failure to look is
 * a warning, not a failure of the run: it says nothing about drift.
 */
static void drop_leftovers(fl_drift_fleet *d, const fl_pg_params *admin, int wait_ms)
{
	fl_pg_params ap = *admin;
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&ap, &err);
	char **names = fl_calloc(d->n + 1, sizeof(char *));
	for (size_t i = 0; i < d->n; i++)
		names[i] = d->services[i].svc->name;
	int rc = pg ? fl_drift_shadow_cleanup(pg, names, d->n, wait_ms, &d->leftovers, &d->nleftovers,
	                                      &d->warnings, &err)
	            : -1;
	free(names);
	fl_pg_close(pg);
	if (rc == 0)
		return;
	if (err)
		fl_error_prefix(err, "looking for shadow databases left by earlier runs");
	fl_error_append(&d->warnings, err);
}

static void count(fl_drift_fleet *d)
{
	for (size_t i = 0; i < d->n; i++) {
		fl_drift_fleet_service *s = &d->services[i];
		d->errors += s->outcome == FL_OUTCOME_FAILED;
		d->skipped += s->outcome == FL_OUTCOME_SKIPPED;
		if (s->res.findings.n && s->outcome == FL_OUTCOME_OK) {
			s->outcome = FL_OUTCOME_REFUSED;
			d->drifting++;
		}
		for (size_t k = 0; k < s->res.findings.n; k++) {
			const fl_drift_finding *f = &s->res.findings.items[k];
			d->findings++;
			d->security += strcmp(f->change, "security") == 0;
			d->counts[f->kind == FL_DRIFT_HISTORY ? 0 : f->kind == FL_DRIFT_SCHEMA ? 1 : 2]++;
		}
	}
	for (size_t k = 0; k < d->cluster.n; k++) {
		d->findings++;
		d->security += strcmp(d->cluster.items[k].change, "security") == 0;
		d->counts[2]++;
	}
	d->errors += d->cluster_err != NULL;
}

int fl_drift_fleet_run(const fl_manifest *m, const fl_drift_fleet_opts *o, fl_drift_fleet **out)
{
	fl_drift_fleet *d = fl_calloc(1, sizeof(*d));
	*out = d;
	d->m = m;
	d->checks = o->checks ? o->checks : FL_DRIFT_ALL;
	double t0 = now_s();
	fl_orch_signals_watch(true);

	/* phase 2: the files first: bad input touches nothing */
	fl_fleet_opts fo = {.verb = FL_FLEET_STATUS, .names = o->names, .nnames = o->nnames};
	d->files = fl_fleet_new(m, &fo);
	d->input_err = fl_fleet_load_files(d->files);
	d->n = d->files->n;
	d->services = fl_calloc(d->n ? d->n : 1, sizeof(*d->services));
	for (size_t i = 0; i < d->n; i++) {
		d->services[i].svc = d->files->services[i].svc;
		d->services[i].outcome = d->input_err ? FL_OUTCOME_NOT_RUN : FL_OUTCOME_OK;
	}
	bool per_service = (d->checks & (FL_DRIFT_HISTORY | FL_DRIFT_SCHEMA)) != 0;
	bool on_cluster =
	    (d->checks & FL_DRIFT_GRANTS) || ((d->checks & FL_DRIFT_SCHEMA) && !o->shadow_admin);
	fl_provision_admin admin;
	memset(&admin, 0, sizeof(admin));
	bool admin_ok = false;
	fl_secret *mpw = NULL;
	fl_drift_findings grants = {0};
	fl_pg_params admin_params;
	struct run r = {
	    .d = d,
	    .o = o,
	    .column_order = m->settings.drift_column_order && !o->no_column_order,
	    .comments = m->settings.drift_comments && !o->no_comments,
	};
	if (d->input_err)
		goto out;

	/* phase 3: the admin creates the shadows, unless they go to another server */
	if (on_cluster) {
		d->cluster_err = fl_provision_admin_init(&admin, m->env, &d->warnings);
		admin_ok = d->cluster_err == NULL;
	}
	if (admin_ok) {
		admin_params = admin.params;
		admin_params.dbname = m->env->maintenance_db ? m->env->maintenance_db : "postgres";
	}
	r.admin = o->shadow_admin ? o->shadow_admin : admin_ok ? &admin_params : NULL;
	if ((d->checks & FL_DRIFT_SCHEMA) && r.admin && !fl_orch_interrupted())
		drop_leftovers(d, r.admin, o->cleanup_wait_ms > 0 ? o->cleanup_wait_ms : 10000);
	if (!d->cluster_err && (d->checks & FL_DRIFT_GRANTS) && !fl_orch_interrupted())
		d->cluster_err = fl_drift_grants(m, &admin.target, &grants);
	const fl_login *ml = &m->env->migrator;
	const fl_secret_ref *mref = ml->url ? ml->url : ml->password; /* a token is fetched per connection */
	if (!d->cluster_err && mref && per_service) {
		char what[128];
		snprintf(what, sizeof(what), "%s of the migrator %s", ml->url ? "connection URL" : "password",
		         ml->user);
		if (fl_secret_resolve(mref, what, &mpw, &d->warnings, &d->cluster_err) == 0)
			r.migrator_secret = mpw;
	}

	/* phase 4: the services, unless what they need is missing */
	bool can_run = !(d->cluster_err && (d->checks & FL_DRIFT_SCHEMA) && !r.admin) &&
	               !(d->cluster_err && mref && !mpw);
	if (per_service && can_run && !fl_orch_interrupted()) {
		fl_orch_opts oo = {.threads = o->jobs > 0 ? o->jobs : m->settings.jobs,
		                   .handle_signals = true,
		                   .on_event = o->on_event,
		                   .event_ctx = o->event_ctx};
		int *results = fl_calloc(d->n ? d->n : 1, sizeof(int));
		d->interrupted = fl_orch_run(d->n, job, &r, &oo, results) == 130;
		for (size_t i = 0; i < d->n; i++)
			if (results[i] == 130 && !d->services[i].error && d->services[i].seconds == 0)
				d->services[i].outcome = FL_OUTCOME_CANCELLED; /* never started */
		free(results);
	} else if (per_service) {
		for (size_t i = 0; i < d->n; i++)
			d->services[i].outcome =
			    fl_orch_interrupted() ? FL_OUTCOME_CANCELLED : FL_OUTCOME_FAILED;
	}
	if (d->checks & FL_DRIFT_HISTORY)
		name_commits(d);
	place_grants(d, &grants);

out:
	d->interrupted |= fl_orch_interrupted();
	fl_orch_signals_watch(false);
	count(d);
	fl_outcome *oc = fl_calloc(d->n ? d->n : 1, sizeof(fl_outcome));
	for (size_t i = 0; i < d->n; i++)
		oc[i] = d->services[i].outcome;
	d->outcome =
	    fl_run_outcome_of(oc, d->n, d->input_err != NULL, d->cluster_err != NULL, d->interrupted);
	free(oc);
	d->exit_code = fl_run_exit_code(d->outcome);
	d->wall = now_s() - t0;
	fl_drift_findings_clear(&grants);
	fl_secret_free(mpw);
	if (admin_ok)
		fl_provision_admin_clear(&admin);
	return d->exit_code;
}

const char *fl_drift_fleet_result_word(const fl_drift_fleet_service *s)
{
	switch (s->outcome) {
	case FL_OUTCOME_OK:
		return "clean";
	case FL_OUTCOME_REFUSED:
		return "drift";
	case FL_OUTCOME_SKIPPED:
		return "skipped";
	case FL_OUTCOME_CANCELLED:
		return "interrupted";
	case FL_OUTCOME_NOT_RUN:
		return "not_run";
	default:
		return "error";
	}
}

void fl_drift_fleet_free(fl_drift_fleet *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		fl_drift_service_result_clear(&d->services[i].res);
		fl_error_free(d->services[i].error);
	}
	free(d->services);
	fl_drift_findings_clear(&d->cluster);
	fl_error_free(d->cluster_err);
	fl_error_free(d->input_err);
	fl_error_free(d->warnings);
	for (size_t i = 0; i < d->nleftovers; i++)
		free(d->leftovers[i]);
	free(d->leftovers);
	fl_fleet_free(d->files);
	free(d);
}
