#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "orchestrate.h"
#include "pg.h"
#include "secret.h"
#include "source.h"

static const char *verb_name(fl_fleet_verb v)
{
	static const char *names[] = {"migrate", "status", "validate", "plan", "repair", "baseline", "undo"};
	return names[v];
}

static void new_uuid(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		/* no entropy: a time-based id still tells runs apart */
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		memcpy(b, &t, sizeof(b) < sizeof(t) ? sizeof(b) : sizeof(t));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void fl_fleet_pg_params(const fl_environment *env, const fl_login *login, const char *dbname,
                        const char *password, fl_pg_params *p, char portbuf[16], fl_pg_option **opts)
{
	memset(p, 0, sizeof(*p));
	p->host = env->host;
	if (env->port > 0) {
		snprintf(portbuf, 16, "%d", env->port);
		p->port = portbuf;
	}
	p->dbname = dbname;
	p->user = login->user;
	p->password = password;
	p->sslmode = env->sslmode;
	p->connect_timeout = env->connect_timeout;
	*opts = NULL;
	if (env->noptions) {
		*opts = fl_calloc(env->noptions, sizeof(fl_pg_option));
		for (size_t i = 0; i < env->noptions; i++) {
			(*opts)[i].key = env->options[i].key;
			(*opts)[i].value = env->options[i].value;
		}
		p->options = *opts;
		p->noptions = env->noptions;
	}
}

fl_fleet *fl_fleet_new(const fl_manifest *m, const fl_fleet_opts *o, fl_error **err)
{
	fl_fleet *f = fl_calloc(1, sizeof(*f));
	f->m = m;
	f->opts = *o;
	f->n = o->nselected;
	f->services = fl_calloc(f->n ? f->n : 1, sizeof(fl_fleet_service));
	new_uuid(f->run_uuid);
	fl_error *errs = NULL;
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		s->svc = &m->services[o->selected[i]];
		fl_buf_init(&s->sql);
		if (o->skip && o->skip[i])
			continue;
		fl_file *files = NULL;
		size_t nfiles = 0;
		fl_error *e = NULL;
		int rc = o->source ? o->source(o->source_ctx, s->svc, &files, &nfiles, &e)
		                   : fl_source_dir(s->svc->migrations, s->svc->migrations_as_written, &files,
		                                   &nfiles, &e);
		if (rc == 0) {
			s->set = fl_migration_set_new(files, nfiles, &e);
			free(files);
		}
		if (e) {
			for (fl_error *x = e; x; x = x->next)
				if (x->kind == FL_EINPUT && !x->file)
					fl_error_prefix(x, "%s", s->svc->name);
			fl_error_append(&errs, e);
		}
	}
	if (errs) {
		*err = errs;
		fl_fleet_free(f);
		return NULL;
	}
	return f;
}

void fl_fleet_free(fl_fleet *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		fl_plan_free(s->plan);
		fl_history_free(s->history);
		fl_migration_set_free(s->set);
		fl_error_free(s->error);
		fl_apply_result_clear(&s->res);
		fl_buf_free(&s->sql);
		for (size_t k = 0; k < s->nnotices; k++)
			free(s->notices[k]);
		free(s->notices);
	}
	free(f->services);
	fl_report_free(f->report);
	fl_secret_free(f->migrator_password);
	free(f);
}

struct job_ctx {
	fl_orch_worker *w;
	fl_fleet_service *s;
};

/* apply's events -> the pool's events (copied, so the reporter owns them) */
static void on_apply_event(void *ctx, const fl_apply_event *ev)
{
	struct job_ctx *j = ctx;
	char name[256];
	switch (ev->kind) {
	case FL_APPLY_EV_LOCK_WAIT:
		fl_orch_post(j->w, FL_EV_LOCK_WAIT, 0, 0, 0, ev->text);
		break;
	case FL_APPLY_EV_PLAN:
		fl_orch_post(j->w, FL_EV_PLANNED, 0, ev->total, 0, ev->current_version);
		break;
	case FL_APPLY_EV_APPLYING:
	case FL_APPLY_EV_APPLIED: {
		/* "V3__add_sessions" reads better than the file name in a progress line */
		snprintf(name, sizeof(name), "%s", ev->script ? ev->script : "");
		size_t l = strlen(name);
		if (l > 4 && strcasecmp(name + l - 4, ".sql") == 0)
			name[l - 4] = '\0';
		fl_orch_post(j->w, ev->kind == FL_APPLY_EV_APPLYING ? FL_EV_APPLYING : FL_EV_APPLIED,
		             ev->index, ev->total, ev->ms, name);
		break;
	}
	case FL_APPLY_EV_NOTICE:
		fl_orch_post(j->w, FL_EV_MESSAGE, 0, 0, 0, ev->text);
		break;
	default:
		break;
	}
}

static int run_service(fl_fleet *f, fl_orch_worker *w, fl_fleet_service *s)
{
	const fl_environment *env = f->m->env;
	const fl_service *svc = s->svc;
	fl_error *err = NULL;
	fl_orch_post(w, FL_EV_CONNECTING, 0, 0, 0, NULL);

	fl_pg_params p;
	char port[16];
	fl_pg_option *popts;
	fl_fleet_pg_params(env, &env->migrator, svc->database,
	                   f->migrator_password ? f->migrator_password->data : NULL, &p, port, &popts);
	fl_pg *pg = fl_pg_connect(&p, &err);
	free(popts);
	if (!pg) {
		s->error = err;
		return 1;
	}
	fl_orch_set_conn(w, pg->conn);

	struct job_ctx jc = {.w = w, .s = s};
	fl_apply_opts ao;
	memset(&ao, 0, sizeof(ao));
	ao.service = svc->name;
	ao.display_dir = svc->migrations_as_written;
	ao.schema = svc->schema;
	ao.role = svc->owner;
	ao.placeholders = svc->placeholders;
	ao.nplaceholders = svc->nplaceholders;
	ao.lock_timeout_ms = f->m->settings.lock_timeout_ms;
	ao.statement_timeout_ms = f->m->settings.statement_timeout_ms;
	ao.target = f->opts.target;
	ao.out_of_order = f->opts.out_of_order;
	ao.dry_run = f->opts.dry_run;
	ao.sql_out = &s->sql;
	ao.cancel = fl_orch_cancel_flag(w);
	ao.on_event = on_apply_event;
	ao.event_ctx = &jc;
	ao.command = verb_name(f->opts.verb);
	ao.run_uuid = f->run_uuid;
	ao.git_commit = f->opts.git_commit;
	ao.git_dirty = f->opts.git_dirty;

	int rc = 0;
	switch (f->opts.verb) {
	case FL_FLEET_MIGRATE:
		rc = fl_apply_migrate(pg, s->set, &ao, &s->res, &err);
		break;
	case FL_FLEET_UNDO:
		rc = fl_apply_undo(pg, s->set, &ao, &s->res, &err);
		break;
	case FL_FLEET_REPAIR:
		rc = fl_apply_repair(pg, s->set, &ao, &s->res, &err);
		break;
	case FL_FLEET_BASELINE:
		rc = fl_apply_baseline(pg, f->opts.baseline_version, NULL, &ao, &s->res, &err);
		break;
	case FL_FLEET_STATUS:
	case FL_FLEET_VALIDATE:
	case FL_FLEET_PLAN:
		rc = fl_apply_info(pg, s->set, &ao, &s->history, &s->plan, &err);
		if (rc == 0 && f->opts.verb == FL_FLEET_VALIDATE) {
			err = fl_plan_validate(s->plan, true);
			if (err)
				rc = -1;
		}
		break;
	}
	s->notices = fl_pg_take_notices(pg, &s->nnotices);
	fl_orch_set_conn(w, NULL);
	fl_pg_close(pg);
	if (rc == 0)
		return 0;
	s->error = err;
	switch (err ? err->kind : FL_EDB) {
	case FL_EINPUT:
		return 2;
	case FL_EDRIFT:
		return 3;
	case FL_EINTR:
		return 130;
	default:
		return 1;
	}
}

static int job_main(fl_orch_worker *w, size_t i, void *arg)
{
	fl_fleet *f = arg;
	fl_fleet_service *s = &f->services[i];
	if (f->opts.skip && f->opts.skip[i]) {
		s->rc = -1;
		fl_orch_post(w, FL_EV_SKIPPED, 0, 0, 0, f->opts.skip_reason);
		return 0;
	}
	s->rc = run_service(f, w, s);
	if (s->rc == 0) {
		char *done = NULL;
		if (f->opts.verb == FL_FLEET_MIGRATE && s->res.applied == 0 && !f->opts.dry_run)
			done = fl_asprintf("up to date at version %s",
			                   s->res.version_after ? s->res.version_after : "<none>");
		else if (f->opts.verb == FL_FLEET_MIGRATE || f->opts.verb == FL_FLEET_UNDO)
			done = fl_asprintf("%d %s", s->res.applied,
			                   f->opts.verb == FL_FLEET_UNDO ? "undone" : "applied");
		fl_orch_post(w, FL_EV_DONE, 0, 0, 0, done);
		free(done);
	} else if (s->rc == 130) {
		fl_orch_post(w, FL_EV_CANCELLED, 0, 0, 0, NULL);
	} else if (s->rc == 3) {
		fl_orch_post(w, FL_EV_DONE, 0, 0, 0, "problems found");
	} else {
		char *msg = s->error ? fl_error_format(s->error) : fl_strdup("failed");
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, msg);
		free(msg);
	}
	/* the pool's own notion of failure drives --fail-fast */
	return s->rc == 0 || s->rc == 3 ? 0 : s->rc == 130 ? 130 : 1;
}

int fl_fleet_run(fl_fleet *f, FILE *progress)
{
	const fl_environment *env = f->m->env;
	if (env->migrator.password && !f->migrator_password) {
		char what[128];
		fl_error *err = NULL;
		snprintf(what, sizeof(what), "password of the migrator %s", env->migrator.user);
		if (fl_secret_resolve(env->migrator.password, what, &f->migrator_password, NULL, &err) != 0) {
			char *msg = fl_error_format(err);
			fprintf(progress, "%s\n", msg);
			free(msg);
			fl_error_free(err);
			return 2;
		}
	}
	const char **names = fl_calloc(f->n ? f->n : 1, sizeof(char *));
	for (size_t i = 0; i < f->n; i++)
		names[i] = f->services[i].svc->name;
	f->report = fl_report_new(progress, f->opts.mode, verb_name(f->opts.verb), names, f->n);
	free(names);

	int jobs = f->opts.jobs;
	if (jobs <= 0)
		jobs = f->m->settings.jobs > 0 ? f->m->settings.jobs : 0;
	fl_orch_opts oo = {.threads = jobs,
	                   .fail_fast = f->opts.fail_fast,
	                   .handle_signals = f->opts.handle_signals,
	                   .on_event = fl_report_event,
	                   .event_ctx = f->report};
	/* longest first: the bytes of its migration files stand for a service's work */
	size_t *order = fl_calloc(f->n ? f->n : 1, sizeof(size_t));
	size_t *weight = fl_calloc(f->n ? f->n : 1, sizeof(size_t));
	for (size_t i = 0; i < f->n; i++) {
		order[i] = i;
		for (size_t k = 0; f->services[i].set && k < f->services[i].set->n; k++)
			weight[i] += f->services[i].set->items[k].len;
	}
	for (size_t i = 1; i < f->n; i++) /* insertion sort, stable: a handful of services */
		for (size_t k = i; k > 0 && weight[order[k]] > weight[order[k - 1]]; k--) {
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	oo.order = order;
	int *results = fl_calloc(f->n ? f->n : 1, sizeof(int));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int orc = fl_orch_run(f->n, job_main, f, &oo, results);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	f->wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	f->interrupted = orc == 130;
	free(order);
	free(weight);
	fl_report_finish(f->report);
	f->report->wall = f->wall;

	bool failed = false, bad_input = false, problems = false, cancelled = false;
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		if (results[i] == 130 && s->rc == 0 && !(f->opts.skip && f->opts.skip[i]))
			s->rc = 130; /* never started */
		fl_report_service *rs = &f->report->services[i];
		rs->result = s->rc == 0 || s->rc == 3 ? 0 : s->rc == -1 ? -1 : s->rc == 130 ? 130 : 1;
		if (s->rc == -1 && f->opts.skip_reason)
			rs->skip_reason = fl_strdup(f->opts.skip_reason);
		if (s->res.version_before)
			rs->version_before = fl_strdup(s->res.version_before);
		if (s->res.version_after)
			rs->version_after = fl_strdup(s->res.version_after);
		for (size_t k = 0; k < s->res.nitems; k++) {
			const fl_apply_item *it = &s->res.items[k];
			fl_report_add_migration(rs, it->version, it->script, it->description, it->checksum,
			                        it->ms);
		}
		if (s->error && s->rc != 3) {
			rs->error =
			    fl_error_at(s->error->file, s->error->line, s->error->col, "%s", s->error->msg);
			rs->error->kind = s->error->kind;
		}
		snprintf(rs->sqlstate, sizeof(rs->sqlstate), "%s", s->res.diag.sqlstate);
		failed |= s->rc == 1;
		bad_input |= s->rc == 2;
		problems |= s->rc == 3;
		cancelled |= s->rc == 130;
	}
	free(results);
	fl_secret_free(f->migrator_password);
	f->migrator_password = NULL;
	if (f->interrupted)
		return 130;
	if (failed)
		return 1;
	if (cancelled)
		return 1; /* --fail-fast: the others were stopped because one failed */
	if (bad_input)
		return 2;
	if (problems)
		return 3;
	return 0;
}

json_t *fl_fleet_json(const fl_fleet *f)
{
	json_t *doc = fl_report_json(f->report);
	json_object_set_new(doc, "run_id", json_string(f->run_uuid));
	json_object_set_new(doc, "command", json_string(verb_name(f->opts.verb)));
	json_object_set_new(doc, "manifest", json_string(f->m->path));
	json_object_set_new(doc, "project", json_string(f->m->project ? f->m->project : ""));
	json_object_set_new(doc, "environment", f->m->env ? json_string(f->m->env->name) : json_null());
	json_object_set_new(doc, "git_commit",
	                    f->opts.git_commit ? json_string(f->opts.git_commit) : json_null());
	json_object_set_new(doc, "git_dirty",
	                    f->opts.git_dirty < 0 ? json_null() : json_boolean(f->opts.git_dirty));
	json_object_set_new(doc, "interrupted", json_boolean(f->interrupted));
	/* the database each service lives in: a dashboard joins on it */
	json_t *services = json_object_get(doc, "services");
	for (size_t i = 0; i < f->n; i++) {
		json_t *o = json_array_get(services, i);
		json_object_set_new(o, "database", json_string(f->services[i].svc->database));
		json_object_set_new(o, "schema", json_string(f->services[i].svc->schema));
	}
	return doc;
}
