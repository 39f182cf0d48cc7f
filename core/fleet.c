/*
 * fleet: see fleet.h for the phases. The shape of a run:
 *
 *   select -> git -> files (read, split, expand) -> secrets (parallel)
 *     -> [invalid: stop, exit 2]
 *     -> provision (shared part, then one job per database)
 *     -> one job per service -> outcomes -> run outcome -> exit code
 *
 * Every service starts `not_run`; each phase that decides something about a
 * service sets its outcome, and a later phase only works on the services
 * still `not_run`.
 */
#include "fleet.h"
#include "budget.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alembic.h"
#include "indexes.h"
#include "orchestrate.h"
#include "login.h"
#include "pg.h"
#include "provision.h"
#include "shard.h"
#include "source.h"
#include "text.h"

struct fl_fleet_secret {
	const fl_secret_ref *ref;
	char *what;
	const char *role; /* NULL: the admin */
	int timeout_ms;
	fl_secret *value;
	fl_error *err;
	fl_error *warnings;
};

const char *fl_fleet_verb_name(fl_fleet_verb v)
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

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The CPUs this process may run on (a container's cpuset, not the host's count), 1 to 999. */
static int usable_cpus(void)
{
	cpu_set_t set;
	long n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 999 ? 999 : (int)n;
}

fl_fleet *fl_fleet_new(const fl_manifest *m, const fl_fleet_opts *o)
{
	fl_fleet *f = fl_calloc(1, sizeof(*f));
	f->m = m;
	f->opts = *o;
	f->git_dirty = -1;
	pthread_mutex_init(&f->gate.mu, NULL);
	pthread_cond_init(&f->gate.cv, NULL);
	pthread_mutex_init(&f->git_mu, NULL);
	new_uuid(f->run_uuid);
	if (!m)
		return f;
	size_t *sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int nsel = fl_manifest_select(m, o->names, o->nnames, sel, &err);
	if (nsel < 0) {
		fl_fleet_fail(f, err);
		nsel = 0;
	}
	f->n = (size_t)nsel;
	f->services = fl_calloc(f->n ? f->n : 1, sizeof(fl_fleet_service));
	for (size_t i = 0; i < f->n; i++) {
		f->services[i].svc = &m->services[sel[i]];
		f->services[i].outcome = FL_OUTCOME_NOT_RUN;
		fl_buf_init(&f->services[i].sql);
	}
	free(sel);
	return f;
}

void fl_fleet_fail(fl_fleet *f, fl_error *err)
{
	fl_error_append(&f->errors, err);
}

static void wipe_secrets(fl_fleet *f)
{
	for (size_t i = 0; i < f->nsecrets; i++) {
		fl_secret_free(f->secrets[i].value);
		free(f->secrets[i].what);
		fl_error_free(f->secrets[i].err);
		fl_error_free(f->secrets[i].warnings);
	}
	free(f->secrets);
	f->secrets = NULL;
	f->nsecrets = 0;
	f->migrator_password = NULL;
}

/* The deferred part of provisioning and the admin's connection parameters (a secret): gone. */
static void end_provisioning(fl_fleet *f)
{
	fl_provision_dbs_free(f->dbs);
	f->dbs = NULL;
	if (f->admin) {
		fl_provision_admin_clear(f->admin);
		free(f->admin);
		f->admin = NULL;
	}
}

void fl_fleet_free(fl_fleet *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->gate.mu);
	pthread_cond_destroy(&f->gate.cv);
	pthread_mutex_destroy(&f->git_mu);
	free(f->gate.rank);
	free(f->gate.waiting);
	free(f->gate.held);
	free(f->gate.idle);
	free(f->gate.since);
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		fl_plan_free(s->plan);
		fl_history_free(s->history);
		fl_migration_set_free(s->set);
		fl_source_free(s->read_ahead, s->nread_ahead);
		fl_error_free(s->error);
		free(s->reason);
		fl_apply_result_clear(&s->res);
		fl_buf_free(&s->sql);
		for (size_t k = 0; k < s->nnotices; k++)
			free(s->notices[k]);
		free(s->notices);
		fl_error_free(s->prov_warnings);
	}
	free(f->services);
	end_provisioning(f);
	fl_report_free(f->report);
	fl_timeline_free(f->timeline);
	fl_error_free(f->errors);
	fl_error_free(f->warnings);
	fl_git_free(f->git);
	fl_provision_desired_free(f->desired);
	wipe_secrets(f);
	free(f);
}

static void set_outcome(fl_fleet_service *s, fl_outcome o, const char *reason)
{
	s->outcome = o;
	free(s->reason);
	s->reason = reason ? fl_strdup(reason) : NULL;
}

/* The first line of an error's message: a reason short enough for the summary. */
static char *reason_of(const fl_error *e)
{
	if (!e)
		return NULL;
	const char *nl = strchr(e->msg, '\n');
	return nl ? fl_strndup(e->msg, (size_t)(nl - e->msg)) : fl_strdup(e->msg);
}

static void fail_service(fl_fleet_service *s, fl_outcome o, fl_error *err)
{
	char *r = reason_of(err);
	set_outcome(s, o, r);
	free(r);
	fl_error_append(&s->error, err);
}

/* ---- phase 2: preflight ---- */

static fl_apply_opts apply_opts(const fl_fleet *f, const fl_fleet_service *s)
{
	fl_apply_opts ao;
	memset(&ao, 0, sizeof(ao));
	const fl_service *svc = s->svc;
	ao.service = svc->name;
	ao.env = f->m && f->m->env ? f->m->env->name : NULL;
	ao.display_dir = svc->migrations_as_written;
	ao.schema = svc->schema;
	ao.role = svc->owner;
	ao.placeholders = svc->placeholders;
	ao.nplaceholders = svc->nplaceholders;
	const fl_manifest_settings *st = &f->m->settings;
	ao.lock_timeout_ms = st->lock_timeout_ms;
	ao.lock_retries = st->lock_retries > 0 ? st->lock_retries : -1; /* apply: 0 is its default */
	ao.lock_retry_interval_ms = st->lock_retry_interval_ms;
	ao.migration_lock_timeout_ms = st->migration_lock_timeout_ms;
	ao.statement_timeout_ms = st->statement_timeout_ms;
	ao.target = f->opts.target ? f->opts.target : svc->target;
	ao.out_of_order = f->opts.out_of_order || svc->out_of_order;
	ao.table = svc->table;
	ao.baseline_on_migrate = svc->baseline_on_migrate;
	ao.baseline_version = svc->baseline_version;
	ao.more_schemas = (const char *const *)svc->more_schemas;
	ao.nmore_schemas = svc->nmore_schemas;
	ao.keep_alembic_version = svc->keep_alembic_version;
	ao.dry_run = f->opts.dry_run;
	ao.command = fl_fleet_verb_name(f->opts.verb);
	ao.run_uuid = f->run_uuid;
	/* the commit: asked for by apply when it writes a run row (run_service sets git_info) */
	ao.git_commit = NULL;
	ao.git_dirty = -1;
	return ao;
}

/*
 * With --since or --rev git is required and every problem is bad input;
 * without them it only tells the ledger which commit ran, and a manifest
 * outside any repository is fine.
 */
static void preflight_git(fl_fleet *f)
{
	const fl_fleet_opts *o = &f->opts;
	fl_error *err = NULL;
	const char **folders = fl_calloc(f->n + 2, sizeof(char *));
	for (size_t i = 0; i < f->n; i++)
		folders[i] = f->services[i].svc->migrations;
	if (o->since || o->rev) {
		if (fl_git_open(f->m->path, &f->git, &err) < 0 ||
		    (o->rev && fl_git_resolve(f->git, o->rev, f->rev_id, &err) < 0)) {
			fl_fleet_fail(f, err);
			free(folders);
			return;
		}
		if (o->since) {
			char since_id[FL_GIT_ID_LEN];
			fl_git_change *ch = NULL;
			size_t nch = 0;
			if (fl_git_resolve(f->git, o->since, since_id, &err) < 0 ||
			    fl_git_diff(f->git, since_id, o->rev ? f->rev_id : NULL, folders, f->n, &ch, &nch,
			                &err) < 0) {
				fl_fleet_fail(f, err);
				free(folders);
				return;
			}
			char *why = fl_asprintf("no migration changed since %s", o->since);
			for (size_t i = 0; i < f->n; i++)
				set_outcome(&f->services[i], FL_OUTCOME_SKIPPED, why);
			free(why);
			for (size_t k = 0; k < nch; k++)
				set_outcome(&f->services[ch[k].folder], FL_OUTCOME_NOT_RUN, NULL);
			fl_git_changes_free(ch, nch);
		}
	} else if (fl_git_open(f->m->path, &f->git, &err) < 0) {
		fl_error_free(err); /* not in a repository: no commit to record */
		err = NULL;
		f->git = NULL;
	}
	if (o->rev) {
		f->git_commit = f->rev_id;
		f->git_dirty = 0; /* the files come from the commit itself */
	} else if (f->git) {
		/* dirty: the files this run reads differ from HEAD (the manifest included) */
		folders[f->n] = f->m->path;
		bool dirty = false;
		if (fl_git_head(f->git, folders, f->n + 1, f->head_id, &dirty, &err) < 0) {
			fl_error_free(err); /* e.g. no commit yet: unknown */
			f->head_id[0] = '\0';
		} else {
			f->git_commit = f->head_id;
			f->git_dirty = dirty;
		}
	}
	free(folders);
}

static void *preflight_git_main(void *arg)
{
	preflight_git(arg);
	return NULL;
}

/*
 * A migrate whose document nobody asked for (no --json) needs git only for
 * the run rows of services with work to do: a run with nothing to do never
 * starts libgit2, whose start parses the system's CA bundle (with mbedTLS:
 * 5 to 13 ms of CPU; a 7-service no-op on the bench machine took 44 ms
 * with it and 40 without, medians). A run that applies pays git's time
 * once, in the first job that writes its run row, while the others that
 * need it wait for the same.
 */
static bool git_lazy(const fl_fleet *f)
{
	return f->opts.verb == FL_FLEET_MIGRATE && !f->opts.since && !f->opts.rev && !f->opts.json;
}

/*
 * Without --since and --rev, git only tells the ledger which commit ran:
 * nothing else waits for it, and libgit2's start (it parses the system's
 * CA bundle) and the work tree's status cost about as much as reading every
 * service's files. So it runs beside preflight's reading. It writes only
 * f->git, head_id, git_commit and git_dirty, which nothing reads before
 * fl_fleet_run joins it.
 */
static bool preflight_git_start(fl_fleet *f, pthread_t *t)
{
	if (git_lazy(f))
		return false;
	if (f->opts.since || f->opts.rev || pthread_create(t, NULL, preflight_git_main, f) != 0) {
		preflight_git(f);
		f->git_looked = true;
		return false;
	}
	return true;
}

/* fl_apply_opts.git_info: the commit and work-tree state, looked up by the first job that asks */
static void git_info(void *ctx, const char **commit, int *dirty)
{
	fl_fleet *f = ctx;
	pthread_mutex_lock(&f->git_mu);
	if (!f->git_looked) {
		preflight_git(f); /* without --since or --rev it fails nothing: no commit is recorded */
		f->git_looked = true;
	}
	*commit = f->git_commit;
	*dirty = f->git_dirty;
	pthread_mutex_unlock(&f->git_mu);
}

/* A service's files (its folder, or the --rev tree, or opts.source) with Flyway's further locations. */
static int read_files(fl_fleet *f, const fl_fleet_service *s, fl_file **files_out, size_t *n_out,
                      fl_error **e)
{
	fl_file *files = NULL;
	size_t nfiles = 0;
	int rc;
	if (f->opts.source)
		rc = f->opts.source(f->opts.source_ctx, s->svc, &files, &nfiles, e);
	else if (f->opts.rev)
		rc = fl_git_read_folder(f->git, f->rev_id, s->svc->migrations, s->svc->migrations_as_written,
		                        &files, &nfiles, e);
	else
		rc = fl_source_dir(s->svc->migrations, s->svc->migrations_as_written, &files, &nfiles, e);
	/* Flyway's further locations: their files join the first folder's, as Flyway merges them */
	for (size_t k = 0; rc == 0 && k < s->svc->nmore_locations; k++) {
		fl_file *more = NULL;
		size_t nmore = 0;
		if (f->opts.rev)
			rc = fl_git_read_folder(f->git, f->rev_id, s->svc->more_locations[k],
			                        s->svc->more_locations_as_written[k], &more, &nmore, e);
		else if (!f->opts.source)
			rc = fl_source_dir(s->svc->more_locations[k], s->svc->more_locations_as_written[k],
			                   &more, &nmore, e);
		if (rc != 0) {
			fl_source_free(files, nfiles);
			files = NULL;
			nfiles = 0;
			break;
		}
		files = fl_realloc(files, (nfiles + nmore + 1) * sizeof(*files));
		memcpy(files + nfiles, more, nmore * sizeof(*more));
		nfiles += nmore;
		free(more);
	}
	*files_out = files;
	*n_out = nfiles;
	return rc;
}

/*
 * --shard I/N: every selected service's size (the bytes of its files, read
 * as phase 2 reads them; a folder that cannot be read weighs nothing here
 * and fails in the shard that runs it), the assignment (shard.h), and the
 * services of the other shards skipped. Every task computes the same
 * assignment, --since or not, so each service runs in exactly one shard.
 */
static void preflight_shard(fl_fleet *f)
{
	const fl_fleet_opts *o = &f->opts;
	if (o->shard_count <= 0 || f->n == 0)
		return;
	const char **names = fl_calloc(f->n, sizeof(char *));
	size_t *sizes = fl_calloc(f->n, sizeof(size_t));
	int *owner = fl_calloc(f->n, sizeof(int));
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		fl_file *files = NULL;
		size_t nfiles = 0;
		fl_error *e = NULL;
		/* a folder that cannot be read sizes 0; preflight reads it again and says why */
		if (read_files(f, s, &files, &nfiles, &e) == 0) {
			for (size_t k = 0; k < nfiles; k++)
				s->text_size += files[k].len;
			s->read_ahead = files;
			s->nread_ahead = nfiles;
			s->has_read_ahead = true;
		}
		fl_error_free(e);
		names[i] = s->svc->name;
		sizes[i] = s->text_size;
	}
	fl_shard_assign(names, sizes, f->n, o->shard_count, owner);
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		s->shard = owner[i];
		if (owner[i] != o->shard_index) {
			fl_source_free(s->read_ahead, s->nread_ahead);
			s->read_ahead = NULL;
			s->nread_ahead = 0;
			s->has_read_ahead = false;
			char *why = fl_asprintf("run by shard %d/%d", owner[i], o->shard_count);
			set_outcome(s, FL_OUTCOME_SKIPPED, why);
			free(why);
		}
	}
	free(owner);
	free(sizes);
	free(names);
}

/* Is the service this task's to run (always, unless sharded)? */
static bool own_service(const fl_fleet *f, const fl_fleet_service *s)
{
	return f->opts.shard_count <= 0 || s->shard == f->opts.shard_index;
}

/* One service's files: read, decoded, split and expanded. Touches only that service. */
static void preflight_service(fl_fleet *f, fl_fleet_service *s)
{
	const fl_environment *env = f->m->env;
	if (s->outcome == FL_OUTCOME_SKIPPED)
		return;
	fl_file *files = NULL;
	size_t nfiles = 0;
	fl_error *e = NULL;
	int rc = 0;
	if (s->has_read_ahead) {
		files = s->read_ahead;
		nfiles = s->nread_ahead;
		s->read_ahead = NULL;
		s->nread_ahead = 0;
		s->has_read_ahead = false;
	} else {
		rc = read_files(f, s, &files, &nfiles, &e);
	}
	if (rc == 0) {
		fl_migration_naming nm = {(const char *const *)s->svc->sql_migration_suffixes,
		                          s->svc->nsql_migration_suffixes};
		s->set = fl_migration_set_new_with(files, nfiles, &nm, &e);
		free(files);
	}
	if (!e && s->set) {
		fl_apply_opts ao = apply_opts(f, s);
		e = fl_apply_check(s->set, &ao, env ? env->migrator.user : NULL, s->svc->database);
	}
	if (e) {
		for (fl_error *x = e; x; x = x->next) {
			x->kind = FL_EINPUT;
			if (!x->file)
				fl_error_prefix(x, "%s", s->svc->name);
		}
		fail_service(s, FL_OUTCOME_INVALID, e);
	}
}

static int preflight_job(fl_orch_worker *w, size_t i, void *arg)
{
	(void)w;
	fl_fleet *f = arg;
	preflight_service(f, &f->services[i]);
	return 0;
}

/*
 * Every selected service's files, services in parallel (reading and
 * splitting a large folder is most of a no-op run's own work); from a git
 * tree one after another, since a repository handle is one thread's.
 */
/* Files that look like migrations or callbacks but are none: one warning each, once per run. */
static void preflight_warnings(fl_fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		if (!s->set || !s->set->warnings)
			continue;
		fl_error_append(&f->warnings, s->set->warnings);
		s->set->warnings = NULL;
	}
}

static void preflight_files(fl_fleet *f)
{
	if (f->opts.rev || f->opts.source || f->n < 2) {
		for (size_t i = 0; i < f->n; i++)
			preflight_service(f, &f->services[i]);
		preflight_warnings(f);
		return;
	}
	fl_orch_opts oo = {.threads = f->n < 8 ? (int)f->n : 8, .handle_signals = f->opts.handle_signals};
	int *results = fl_calloc(f->n, sizeof(int));
	fl_orch_run(f->n, preflight_job, f, &oo, results);
	free(results); /* an interrupt stops the jobs not started; the run then stops before phase 3 */
	preflight_warnings(f);
}

fl_error *fl_fleet_load_files(fl_fleet *f)
{
	fl_error *all = NULL;
	if (f->errors || !f->m) {
		for (const fl_error *e = f->errors; e; e = e->next)
			fl_error_append(&all, fl_error_at(e->file, e->line, e->col, "%s", e->msg));
		return all ? all : fl_error_new("no manifest");
	}
	preflight_files(f);
	for (size_t i = 0; i < f->n; i++)
		if (f->services[i].outcome == FL_OUTCOME_INVALID)
			for (const fl_error *e = f->services[i].error; e; e = e->next)
				fl_error_append(&all, fl_error_at(e->file, e->line, e->col, "%s", e->msg));
	return all;
}

static bool provisioning(const fl_fleet *f)
{
	return f->opts.verb == FL_FLEET_MIGRATE && f->opts.provision && !f->opts.dry_run;
}

/* What a login logs in with: a URL, a token (checked here, fetched again per connection) or a password. */
static const fl_secret_ref *login_ref(const fl_login *l)
{
	return l->url ? l->url : l->token ? l->token : l->password;
}

static const char *login_word(const fl_login *l)
{
	return l->url ? "connection URL" : l->token ? "login token" : "password";
}

static fl_error *password_of(void *ctx, const char *role, char **password);

static void want_secret(fl_fleet *f, const fl_secret_ref *ref, const char *role, char *what)
{
	for (size_t i = 0; i < f->nsecrets; i++)
		if (f->secrets[i].role && role && strcmp(f->secrets[i].role, role) == 0) {
			free(what); /* a role named twice (the migrator also under [roles]) */
			return;
		}
	f->secrets = fl_realloc(f->secrets, (f->nsecrets + 1) * sizeof(*f->secrets));
	fl_fleet_secret *s = &f->secrets[f->nsecrets++];
	memset(s, 0, sizeof(*s));
	s->ref = ref;
	s->role = role;
	s->what = what;
}

/*
 * --shard, shard 0: the cluster-wide part of the whole selection, so that it
 * runs once: every role any shard's services need joins shard 0's desired
 * state (the databases stay each shard's own). The other shards wait for
 * them (provision_wait) before their own provisioning, whose shared part
 * then finds them made.
 */
static void shard_roles(fl_fleet *f)
{
	size_t *sel = fl_calloc(f->n ? f->n : 1, sizeof(size_t));
	for (size_t i = 0; i < f->n; i++)
		sel[i] = (size_t)(f->services[i].svc - f->m->services);
	fl_provision_desired *all = fl_provision_desired_for(f->m, sel, f->n, password_of, f);
	free(sel);
	fl_provision_desired *d = f->desired;
	for (size_t i = 0; i < all->nroles; i++) {
		const fl_provision_role *r = &all->roles[i];
		bool have = false;
		for (size_t k = 0; k < d->nroles && !have; k++)
			have = strcmp(d->roles[k].name, r->name) == 0;
		if (have || r->external)
			continue;
		fl_provision_add_role(d, r->name, r->login, r->password, r->password_ctx);
		d->roles[d->nroles - 1].secret = r->secret;
	}
	d->partial = true;
	fl_error_append(&f->warnings, all->warnings);
	all->warnings = NULL;
	fl_provision_desired_free(all);
}

/*
 * Every secret the run will need, before anything is sent: the migrator's,
 * and for provisioning the admin's and those of the roles it manages (the
 * same roles fl_provision_desired_for picks). In parallel: a `cmd` secret
 * is a gcloud call of a second or more.
 */
static void preflight_secrets(fl_fleet *f)
{
	const fl_manifest *m = f->m;
	const fl_environment *env = m->env;
	const fl_secret_ref *mref = login_ref(&env->migrator), *aref = login_ref(&env->admin);
	if (mref)
		want_secret(
		    f, mref, env->migrator.user,
		    fl_asprintf("%s of the migrator %s", login_word(&env->migrator), env->migrator.user));
	if (provisioning(f)) {
		if (aref)
			want_secret(
			    f, aref, NULL,
			    fl_asprintf("admin %s of environment %s", login_word(&env->admin), env->name));
		/* exactly the roles provisioning will manage: their secrets, nothing more */
		size_t *sel = fl_calloc(f->n ? f->n : 1, sizeof(size_t));
		size_t nsel = 0;
		for (size_t i = 0; i < f->n; i++)
			if (own_service(f, &f->services[i])) /* --shard: this shard's databases */
				sel[nsel++] = (size_t)(f->services[i].svc - m->services);
		f->desired = fl_provision_desired_for(m, sel, nsel, password_of, f);
		free(sel);
		if (f->opts.shard_count > 1 && f->opts.shard_index == 0)
			shard_roles(f);
		const fl_provision_desired *d = f->desired;
		for (size_t i = 0; i < d->nroles; i++) {
			const fl_provision_role *r = &d->roles[i];
			if (!r->secret || r->external)
				continue;
			const char *svc = NULL;
			for (size_t k = 0; k < d->nservices && !svc; k++)
				if (!d->services[k].external && strcmp(d->services[k].owner, r->name) == 0)
					svc = d->services[k].name;
			want_secret(f, r->secret, r->name,
			            svc ? fl_asprintf("password of service %s", svc)
			                : fl_asprintf("password of role %s", r->name));
		}
	}
	if (f->nsecrets == 0)
		return;
	fl_secret_job *jobs = fl_calloc(f->nsecrets, sizeof(*jobs));
	for (size_t i = 0; i < f->nsecrets; i++)
		jobs[i] = (fl_secret_job){.ref = f->secrets[i].ref, .what = f->secrets[i].what};
	fl_secret_resolve_many(jobs, f->nsecrets);
	for (size_t i = 0; i < f->nsecrets; i++) {
		fl_fleet_secret *s = &f->secrets[i];
		s->value = jobs[i].out;
		s->err = jobs[i].err;
		s->warnings = jobs[i].warnings;
		if (s->err && s->err->kind == FL_EINTR) {
			fl_error_free(s->err); /* the run ends interrupted, not invalid */
			s->err = NULL;
		}
		fl_error_append(&f->warnings, s->warnings);
		s->warnings = NULL;
		if (s->err) {
			for (fl_error *x = s->err; x; x = x->next)
				x->kind = FL_EINPUT;
			fl_fleet_fail(f, s->err);
			s->err = NULL;
		} else if (!s->value && !fl_orch_interrupted()) {
			fl_fleet_fail(f, fl_error_new("%s: not resolved", s->what));
		}
		if (s->role && env->migrator.user && strcmp(s->role, env->migrator.user) == 0)
			f->migrator_password = s->value;
	}
	free(jobs);
}

static const fl_secret *secret_of(const fl_fleet *f, const char *role)
{
	for (size_t i = 0; i < f->nsecrets; i++)
		if (role ? f->secrets[i].role && strcmp(f->secrets[i].role, role) == 0 : !f->secrets[i].role)
			return f->secrets[i].value;
	return NULL;
}

static bool any_outcome(const fl_fleet *f, fl_outcome o)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->services[i].outcome == o)
			return true;
	return false;
}

/* ---- phase 3: provisioning ---- */

static fl_error *password_of(void *ctx, const char *role, char **password)
{
	const fl_secret *s = secret_of(ctx, role);
	if (!s)
		return fl_error_new("the password of role %s was not resolved", role);
	*password = fl_strndup(s->data, s->len);
	return NULL;
}

static char *step_line(const fl_provision_step *step)
{
	return fl_asprintf("provision: %s%s%s", step->desc, step->database ? " in " : "",
	                   step->database ? step->database : "");
}

/* A step of a service's database, from its job: a line of that service in the report. */
static void post_step(void *ctx, const fl_provision_step *step)
{
	char *line = step_line(step);
	fl_orch_post(ctx, FL_EV_MESSAGE, 0, 0, 0, line);
	free(line);
}

static void show_step(void *ctx, const fl_provision_step *step)
{
	size_t cols = fl_report_width(ctx);
	char *raw = step_line(step);
	char *line = fl_text_printable(raw, cols > 1 ? cols - 1 : 0);
	fprintf(ctx, "%s\n", line);
	free(line);
	free(raw);
}

/*
 * The connection budget of the run (budget.h): --connections, else
 * [settings] connections, else read from the server on the admin's
 * connection. A failed read leaves it unknown (no cap): provisioning
 * reports the connection problem itself.
 */
static void set_budget(fl_fleet *f, const fl_provision_admin *admin)
{
	f->budget = f->opts.connections > 0 ? f->opts.connections : f->m->settings.connections;
	if (f->budget > 0)
		return;
	fl_pg_params p = admin->params;
	p.dbname = admin->target.maintenance_db ? admin->target.maintenance_db : "postgres";
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&p, &err);
	if (pg)
		fl_budget_from_server(pg, &f->budget, &err);
	fl_error_free(err);
	fl_pg_close(pg);
}

/* A text[] literal of the names ({"a","b"}), each quoted with \ and " escaped. */
static char *text_array(const char *const *names, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_add(&b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fl_buf_add(&b, ",", 1);
		fl_buf_add(&b, "\"", 1);
		for (const char *p = names[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				fl_buf_add(&b, "\\", 1);
			fl_buf_add(&b, p, 1);
		}
		fl_buf_add(&b, "\"", 1);
	}
	fl_buf_add(&b, "}", 1);
	return b.data;
}

/*
 * --shard, shards other than 0: waits until every role this shard's
 * provisioning needs (its desired state's own roles: owners, migrator,
 * readers) exists, polled once a second in pg_roles on the admin's
 * connection to the maintenance database, for at most shard_wait_s seconds
 * (FL_FLEET_SHARD_WAIT_S). Shard 0 makes them (shard_roles). An interrupt
 * ends the wait within 100 ms; each poll is one query under the
 * connection's query timeout. NULL when they all exist.
 */
static fl_error *provision_wait(fl_fleet *f, const fl_provision_admin *admin, FILE *progress)
{
	const fl_provision_desired *d = f->desired;
	const char **names = fl_calloc(d->nroles + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < d->nroles; i++)
		if (!d->roles[i].external)
			names[n++] = d->roles[i].name;
	if (n == 0) {
		free(names);
		return NULL;
	}
	char *arr = text_array(names, n);
	free(names);
	int limit = f->opts.shard_wait_s > 0 ? f->opts.shard_wait_s : FL_FLEET_SHARD_WAIT_S;
	fl_pg_params p = admin->params;
	p.dbname = admin->target.maintenance_db ? admin->target.maintenance_db : "postgres";
	fl_error *err = NULL;
	fl_pg *pg = fl_pg_connect(&p, &err);
	const char *params[] = {arr};
	double t0 = now_s();
	bool said = false;
	while (pg) {
		char *missing =
		    fl_pg_value(pg,
		                "SELECT string_agg(n, ', ' ORDER BY n) FROM unnest($1::text[]) AS n "
		                "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = n)",
		                1, params, &err);
		if (err)
			break;
		if (!missing)
			break; /* every role is there */
		if (now_s() - t0 >= limit) {
			err =
			    fl_error_kind_new(FL_EDB,
			                      "shard %d/%d: waited %d s for shard 0 to create the roles %s; "
			                      "is shard 0 running (and did its provisioning succeed)?",
			                      f->opts.shard_index, f->opts.shard_count, limit, missing);
			free(missing);
			break;
		}
		if (!said)
			fprintf(progress, "provision: shard %d/%d waits for shard 0 to create roles %s\n",
			        f->opts.shard_index, f->opts.shard_count, missing);
		said = true;
		free(missing);
		for (int k = 0; k < 10 && !fl_orch_interrupted(); k++)
			nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
		if (fl_orch_interrupted()) {
			err = fl_error_kind_new(FL_EINTR, "interrupted while waiting for shard 0's roles");
			break;
		}
	}
	fl_pg_close(pg);
	free(arr);
	return err;
}

static void provision_phase(fl_fleet *f, FILE *progress)
{
	const fl_manifest *m = f->m;
	fl_provision_desired *d = f->desired; /* preflight's */

	/* the admin's connection, with the secret preflight resolved (not asked for again) */
	f->admin = fl_calloc(1, sizeof(*f->admin));
	fl_provision_admin *admin = f->admin;
	fl_error *err = fl_provision_admin_init_known(admin, m->env, &m->settings, secret_of(f, NULL), NULL);
	if (!err)
		set_budget(f, admin);
	int pjobs = f->opts.jobs > 0 ? f->opts.jobs : m->settings.jobs;
	fl_provision_opts po = {.on_step = show_step,
	                        .ctx = progress,
	                        .handle_signals = f->opts.handle_signals,
	                        .jobs = fl_budget_threads(pjobs, d->nservices, f->budget),
	                        .lock_timeout_ms = m->settings.migration_lock_timeout_ms,
	                        .defer_databases = true};
	fl_provision_result *res = NULL;
	if (!err && f->opts.shard_count > 1 && f->opts.shard_index != 0)
		err = provision_wait(f, admin, progress);
	if (!err) {
		f->touched = true;
		err = fl_provision_run(d, &admin->target, &po, &res);
		if (res) { /* the jobs do the rest, on admin's parameters */
			f->dbs = res->dbs;
			res->dbs = NULL;
		}
	}
	fl_error_append(&f->warnings, d->warnings);
	d->warnings = NULL;
	for (size_t i = 0; res && i < res->nwarnings; i++)
		fl_error_append(&f->warnings, fl_error_new("provision: %s", res->warnings[i]));
	if (res)
		f->provision_steps = res->nsteps;

	bool interrupted = fl_orch_interrupted() || (err && err->kind == FL_EINTR);
	/* defer_databases: only the shared part (roles, memberships, databases) fails here, and then no
	 * service can go on; a database's own part fails its service alone, in its job */
	if (err) {
		char *why = reason_of(err);
		for (size_t i = 0; i < f->n; i++) {
			fl_fleet_service *s = &f->services[i];
			if (s->outcome != FL_OUTCOME_NOT_RUN)
				continue;
			char *r = fl_asprintf("provisioning failed: %s", why);
			set_outcome(s, interrupted ? FL_OUTCOME_CANCELLED : FL_OUTCOME_FAILED, r);
			free(r);
		}
		free(why);
		if (!interrupted)
			f->failed = true;
		fl_error_prefix(err, "provisioning failed");
		fl_fleet_fail(f, err);
		err = NULL;
	}
	fl_provision_result_free(res);
	if (!f->dbs)
		end_provisioning(f);
}

/* ---- phase 4: the services ---- */

struct job_ctx {
	fl_orch_worker *w;
	fl_fleet_service *s;
	fl_fleet *f;
};

/*
 * A turn to apply migrations (fl_apply_opts.work_gate). A server on this
 * machine shares its cores with every service's session, and past a core
 * each the sessions slow each other down: on the 2-core bench machine the
 * seven services took 4.31 s three at a time against 5.33 s all at once
 * (medians, bench/README.md). Turns go in the start order (longest first:
 * the critical path), not in the order the services happened to connect.
 *
 * A turn counts only while its holder works: one that waits (for the
 * migration lock, a DDL lock retry, or anything that keeps one migration
 * running past GATE_SLICE_S (2 s) without a word: a lock wait inside a
 * statement, pg_sleep, a long build) lets the next service in, so no
 * service waits behind a sleeper, and --fail-fast or a lock wait is never
 * held up by more than GATE_SLICE_S. The holder's next migration counts
 * again (the server may then have one session more than the limit for a
 * while: never fewer turns than work to do). Waits poll the cancel flag,
 * so an interrupt ends a wait within 0.1 s.
 */
#define GATE_SLICE_S 2.0

static size_t gate_active(const struct fl_fleet_gate *g, size_t n, double now)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (g->held[i] && !g->idle[i] && now - g->since[i] < GATE_SLICE_S)
			k++;
	return k;
}

static bool first_waiting(const struct fl_fleet_gate *g, size_t rank)
{
	for (size_t r = 0; r < rank; r++)
		if (g->waiting[r])
			return false;
	return true;
}

static int work_gate(void *ctx, bool server_local)
{
	struct job_ctx *j = ctx;
	struct fl_fleet_gate *g = &j->f->gate;
	if (!server_local || g->limit <= 0)
		return 0;
	bool said = false;
	double waited_from = 0;
	size_t si = (size_t)(j->s - j->f->services), rank = g->rank[si];
	pthread_mutex_lock(&g->mu);
	g->waiting[rank] = true;
	while (gate_active(g, j->f->n, now_s()) >= (size_t)g->limit || !first_waiting(g, rank)) {
		if (fl_orch_cancelled(j->w)) {
			g->waiting[rank] = false;
			pthread_cond_broadcast(&g->cv);
			pthread_mutex_unlock(&g->mu);
			return -1;
		}
		if (!said) { /* a line in the log, a span in the picture */
			char *m = fl_asprintf("waits for a turn: the server runs on this machine, where %d "
			                      "service%s at a time (local_apply_jobs or -j sets it)",
			                      g->limit, g->limit == 1 ? " applies" : "s apply");
			fl_orch_post(j->w, FL_EV_TURN_WAIT, 0, 0, 0, m);
			free(m);
			said = true;
			waited_from = now_s();
		}
		fl_orch_cond_wait(&g->cv, &g->mu, 100);
	}
	g->waiting[rank] = false;
	g->held[si] = true;
	g->idle[si] = false;
	g->since[si] = now_s();
	pthread_cond_broadcast(&g->cv); /* the next in order may be free to go too */
	pthread_mutex_unlock(&g->mu);
	if (said)
		fl_orch_post(j->w, FL_EV_TURN, 0, 0, (long)((now_s() - waited_from) * 1000), NULL);
	return 1;
}

static void work_done(void *ctx)
{
	struct job_ctx *j = ctx;
	struct fl_fleet_gate *g = &j->f->gate;
	pthread_mutex_lock(&g->mu);
	g->held[j->s - j->f->services] = false;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* The holder of a turn is at work again (idle false), or begins to wait (true). */
static void gate_progress(struct job_ctx *j, bool idle)
{
	struct fl_fleet_gate *g = &j->f->gate;
	if (g->limit <= 0)
		return;
	size_t si = (size_t)(j->s - j->f->services);
	pthread_mutex_lock(&g->mu);
	if (g->held[si]) {
		g->idle[si] = idle;
		g->since[si] = now_s();
		if (idle)
			pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
}

/* apply's events -> the pool's events (copied, so the reporter owns them) */
static void on_apply_event(void *ctx, const fl_apply_event *ev)
{
	struct job_ctx *j = ctx;
	char name[256];
	switch (ev->kind) {
	case FL_APPLY_EV_LOCK_WAIT:
		gate_progress(j, true);
		fl_orch_post(j->w, FL_EV_LOCK_WAIT, 0, 0, 0, ev->text);
		break;
	case FL_APPLY_EV_PLAN:
		j->s->to_apply = ev->total > 0 ? (size_t)ev->total : 0;
		fl_orch_post(j->w, FL_EV_PLANNED, 0, ev->total, 0, ev->current_version);
		break;
	case FL_APPLY_EV_APPLYING:
	case FL_APPLY_EV_APPLIED: {
		gate_progress(j, false);
		/* "V3__add_sessions" reads better than the file name in a progress line */
		snprintf(name, sizeof(name), "%s", ev->script ? ev->script : "");
		size_t l = strlen(name);
		if (l > 4 && strcasecmp(name + l - 4, ".sql") == 0)
			name[l - 4] = '\0';
		fl_orch_post(j->w, ev->kind == FL_APPLY_EV_APPLYING ? FL_EV_APPLYING : FL_EV_APPLIED,
		             ev->index, ev->total, ev->ms, name);
		break;
	}
	case FL_APPLY_EV_LOCKED: /* the end of a lock wait, for the timeline */
		gate_progress(j, false);
		fl_orch_post(j->w, FL_EV_LOCKED, 0, 0, ev->ms, NULL);
		break;
	case FL_APPLY_EV_NOTICE:
		fl_orch_post(j->w, FL_EV_MESSAGE, ev->index, ev->total, ev->ms, ev->text);
		break;
	case FL_APPLY_EV_LOCK_RETRY: /* "lock wait on table t (held by pid ...), retry 2 of 5 in 1.2 s" */
		gate_progress(j, true);
		fl_orch_post(j->w, FL_EV_LOCK_RETRY, ev->index, ev->total, ev->ms, ev->text);
		break;
	default:
		break;
	}
}

static void on_attempt(void *ctx, int attempt, int max, const fl_error *why)
{
	struct job_ctx *j = ctx;
	char *m = fl_asprintf("waiting for the server (attempt %d of %d): %s", attempt, max,
	                      why ? why->msg : "no answer");
	fl_orch_post(j->w, FL_EV_CONNECTING, attempt, max, 0, m);
	free(m);
}

/* libpq's words for a database that is not there (the server's FATAL 3D000). */
static bool no_such_database(const fl_error *e, const char *db)
{
	char *want = fl_asprintf("database \"%s\" does not exist", db);
	bool yes = e && strstr(e->msg, want) != NULL;
	free(want);
	return yes;
}

static size_t migrations_to_apply(const fl_migration_set *set)
{
	size_t n = 0;
	for (size_t i = 0; set && i < set->n; i++)
		n += set->items[i].kind != FL_MIG_UNDO;
	return n;
}

static fl_outcome info_outcome(fl_fleet *f, fl_fleet_service *s)
{
	const fl_plan *p = s->plan;
	size_t n = p->npending + p->nrepeatables;
	if (f->opts.verb == FL_FLEET_VALIDATE)
		return s->error ? FL_OUTCOME_REFUSED : FL_OUTCOME_OK;
	return n ? FL_OUTCOME_PENDING : FL_OUTCOME_UP_TO_DATE;
}

/* The migrator's connection to the service's database. */
static fl_pg *connect_service(fl_fleet *f, fl_orch_worker *w, fl_fleet_service *s, fl_error **err)
{
	const fl_environment *env = f->m->env;
	/* a token is fetched for this connection; a password or URL is preflight's */
	fl_login_conn lc;
	fl_pg *pg = NULL;
	if (fl_login_conn_init_known(&lc, env, &env->migrator, s->svc->database, &f->m->settings,
	                             f->migrator_password, NULL, err) == 0) {
		struct job_ctx rc = {.w = w, .s = s};
		/* the first connection of the run: a proxy still starting is waited for */
		lc.params.cancel = fl_orch_cancel_flag(w);
		pg = fl_pg_connect_retry(&lc.params, lc.retries, lc.interval_s, on_attempt, &rc,
		                         fl_orch_cancel_flag(w), err);
		fl_login_conn_clear(&lc);
	}
	return pg;
}

/* The part of provisioning in the database of d->services[k], on the admin's connection. */
static fl_error *provision_with_admin(fl_fleet *f, fl_orch_worker *w, fl_fleet_service *s, size_t k)
{
	fl_error *e = fl_provision_db_run(f->dbs, k, w, post_step, w, &s->prov_steps, &s->prov_warnings);
	if (e) {
		fl_error_prefix(e, "provisioning");
		s->prov_failed = true;
	}
	return e;
}

/*
 * migrate: the provisioning of the service's database (provision.h
 * defer_databases), before its migrations, as a phase of its own would do
 * it. Its own connection *pg reads whether there is anything to do; only
 * then is that connection closed (a job holds one connection of the
 * budget at a time), the admin's opened for the work, under the provision
 * lock, and *pg opened again. 0, or -1 with *err ("provisioning ...").
 */
static int provision_database(fl_fleet *f, fl_orch_worker *w, fl_fleet_service *s, fl_pg **pg, fl_error **err)
{
	long k = fl_provision_db_index(f->dbs, s->svc->name);
	if (k < 0)
		return 0;
	fl_error *e = NULL;
	int clean = fl_provision_db_clean(f->dbs, (size_t)k, *pg, &s->prov_warnings, &e);
	fl_error_free(e); /* a read that failed: the admin reads again, and says what is wrong */
	if (clean == 1)
		return 0;
	fl_orch_set_conn(w, NULL);
	fl_pg_close(*pg);
	*pg = NULL;
	if ((*err = provision_with_admin(f, w, s, (size_t)k)))
		return -1;
	*pg = connect_service(f, w, s, err);
	return 0;
}

static void run_service(fl_fleet *f, fl_orch_worker *w, fl_fleet_service *s)
{
	const fl_service *svc = s->svc;
	fl_error *err = NULL;
	fl_orch_post(w, FL_EV_CONNECTING, 0, 0, 0, NULL);
	fl_pg *pg = connect_service(f, w, s, &err);
	if (pg && f->dbs && provision_database(f, w, s, &pg, &err) < 0) {
		fail_service(s, err->kind == FL_EINTR ? FL_OUTCOME_CANCELLED : FL_OUTCOME_FAILED, err);
		return;
	}
	if (!pg && fl_orch_cancelled(w)) {
		fl_error_free(err);
		fail_service(s, FL_OUTCOME_CANCELLED,
		             fl_error_kind_new(FL_EINTR, "interrupted while connecting"));
		return;
	}
	if (!pg) {
		fl_fleet_verb v = f->opts.verb;
		bool reads_only = v == FL_FLEET_STATUS || v == FL_FLEET_PLAN || v == FL_FLEET_VALIDATE ||
		                  (v == FL_FLEET_MIGRATE && f->opts.dry_run);
		if (reads_only && no_such_database(err, svc->database)) {
			/* nothing wrong: the next migrate creates it */
			fl_error_free(err);
			s->db_missing = true;
			s->to_apply = migrations_to_apply(s->set);
			const char *plural = s->to_apply == 1 ? "" : "s";
			if (v == FL_FLEET_VALIDATE) {
				fail_service(s, FL_OUTCOME_REFUSED,
				             fl_error_kind_new(
				                 FL_EDRIFT,
				                 "database %s does not exist yet; %zu migration%s to apply",
				                 svc->database, s->to_apply, plural));
			} else {
				char *r = fl_asprintf("database %s will be created; %zu migration%s to apply",
				                      svc->database, s->to_apply, plural);
				set_outcome(s, FL_OUTCOME_PENDING, r);
				free(r);
			}
			return;
		}
		fail_service(s, FL_OUTCOME_FAILED, err);
		return;
	}
	fl_orch_set_pg(w, pg);

	struct job_ctx jc = {.w = w, .s = s, .f = f};
	fl_apply_opts ao = apply_opts(f, s);
	ao.work_gate = work_gate;
	ao.work_done = work_done;
	ao.gate_ctx = &jc;
	ao.git_info = git_info;
	ao.git_ctx = f;
	ao.sql_out = &s->sql;
	ao.cancel = fl_orch_cancel_flag(w);
	ao.on_event = on_apply_event;
	ao.event_ctx = &jc;

	int rc = 0;
	fl_outcome done = FL_OUTCOME_OK;
	switch (f->opts.verb) {
	case FL_FLEET_MIGRATE:
		rc = fl_apply_migrate(pg, s->set, &ao, &s->res, &err);
		/* a dry run's SQL always has its header: what it would run is the plan's count */
		done = f->opts.dry_run  ? (s->to_apply ? FL_OUTCOME_PENDING : FL_OUTCOME_UP_TO_DATE)
		       : s->res.applied ? FL_OUTCOME_OK
		                        : FL_OUTCOME_UP_TO_DATE;
		break;
	case FL_FLEET_UNDO:
		rc = fl_apply_undo(pg, s->set, &ao, &s->res, &err);
		done = s->res.applied || f->opts.dry_run ? FL_OUTCOME_OK : FL_OUTCOME_UP_TO_DATE;
		break;
	case FL_FLEET_REPAIR:
		rc = fl_apply_repair(pg, s->set, &ao, &s->res, &err);
		done = s->res.nchanges ? FL_OUTCOME_OK : FL_OUTCOME_UP_TO_DATE;
		break;
	case FL_FLEET_BASELINE:
		rc = f->opts.from_alembic
		         ? fl_alembic_baseline(pg, s->set, &ao, &s->res, &err)
		         : fl_apply_baseline(pg, f->opts.baseline_version, NULL, &ao, &s->res, &err);
		done = s->res.nchanges ? FL_OUTCOME_OK : FL_OUTCOME_UP_TO_DATE;
		break;
	case FL_FLEET_STATUS:
	case FL_FLEET_VALIDATE:
	case FL_FLEET_PLAN:
		rc = fl_apply_info(pg, s->set, &ao, &s->history, &s->plan, &err);
		if (rc == 0 && f->opts.verb == FL_FLEET_VALIDATE) {
			s->error = fl_plan_validate(s->plan, true);
			/* an index a cancelled build left INVALID is never used: a problem */
			if (fl_indexes_invalid(pg, svc->schema, s->set, &s->error, &err) < 0)
				rc = -1;
		}
		if (rc == 0)
			done = info_outcome(f, s);
		break;
	}
	if (rc != 0 && fl_pg_watch_fired(pg)) {
		/* the path froze: say so, not "server closed the connection" */
		fl_error *why = fl_pg_watch_error(pg);
		fl_error_prefix(why, "%s", err ? err->msg : "lost the connection");
		fl_error_free(err);
		err = why;
	}
	s->notices = fl_pg_take_notices(pg, &s->nnotices);
	fl_orch_set_conn(w, NULL);
	fl_pg_close(pg);
	if (rc != 0) {
		fail_service(s, fl_outcome_of_error(err), err);
		return;
	}
	char *r = done == FL_OUTCOME_REFUSED ? reason_of(s->error) : NULL;
	if (r && fl_error_count(s->error) > 1) {
		char *more = fl_asprintf("%s (and %d more)", r, fl_error_count(s->error) - 1);
		free(r);
		r = more;
	}
	set_outcome(s, done, r);
	free(r);
}

static int job_main(fl_orch_worker *w, size_t i, void *arg)
{
	fl_fleet *f = arg;
	fl_fleet_service *s = &f->services[i];
	if (s->outcome == FL_OUTCOME_SKIPPED) {
		/* --since leaves its migrations, not its database's provisioning */
		long k = f->dbs ? fl_provision_db_index(f->dbs, s->svc->name) : -1;
		fl_error *e = k < 0 ? NULL : provision_with_admin(f, w, s, (size_t)k);
		if (e) {
			fail_service(s, e->kind == FL_EINTR ? FL_OUTCOME_CANCELLED : FL_OUTCOME_FAILED, e);
			fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, s->reason);
			return s->outcome == FL_OUTCOME_CANCELLED ? 130 : 1;
		}
		fl_orch_post(w, FL_EV_SKIPPED, 0, 0, 0, s->reason);
		return 0;
	}
	if (s->outcome != FL_OUTCOME_NOT_RUN) { /* provisioning failed it */
		fl_orch_post(w, s->outcome == FL_OUTCOME_CANCELLED ? FL_EV_CANCELLED : FL_EV_FAILED, 0, 0, 0,
		             s->reason);
		return s->outcome == FL_OUTCOME_CANCELLED ? 130 : 1;
	}
	run_service(f, w, s);
	switch (s->outcome) {
	case FL_OUTCOME_CANCELLED:
		fl_orch_post(w, FL_EV_CANCELLED, 0, 0, 0, NULL);
		return 130;
	case FL_OUTCOME_FAILED:
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, s->reason);
		return 1; /* the pool's notion of failure drives --fail-fast */
	case FL_OUTCOME_REFUSED:
		fl_orch_post(w, FL_EV_FAILED, 0, 0, 0, s->reason ? s->reason : "refused");
		return 0;
	default: {
		char *done = NULL;
		if (f->opts.verb == FL_FLEET_MIGRATE && s->outcome == FL_OUTCOME_UP_TO_DATE)
			done = fl_asprintf("up to date at version %s",
			                   s->res.version_after ? s->res.version_after : "<none>");
		else if ((f->opts.verb == FL_FLEET_MIGRATE || f->opts.verb == FL_FLEET_UNDO) &&
		         !f->opts.dry_run)
			done = fl_asprintf("%d %s", s->res.applied,
			                   f->opts.verb == FL_FLEET_UNDO ? "undone" : "applied");
		fl_orch_post(w, FL_EV_DONE, 0, 0, 0, done);
		free(done);
		return 0;
	}
	}
}

/* The pool's events go to the report and, with --html/--svg, to the timeline (same thread). */
static void on_event(void *ctx, const fl_event *ev)
{
	fl_fleet *f = ctx;
	fl_report_event(f->report, ev);
	fl_timeline_event(f->timeline, ev);
}

static void jobs_phase(fl_fleet *f, FILE *progress)
{
	const char **names = fl_calloc(f->n ? f->n : 1, sizeof(char *));
	for (size_t i = 0; i < f->n; i++)
		names[i] = f->services[i].svc->name;
	f->report = fl_report_new(progress, f->opts.mode, fl_fleet_verb_name(f->opts.verb), names, f->n);
	free(names);

	int jobs = f->opts.jobs;
	if (jobs <= 0)
		jobs = f->m->settings.jobs > 0 ? f->m->settings.jobs : 0;
	/* the default -j of a migrate: a server found on this machine gets a service per core, and one */
	if (jobs <= 0 && f->opts.verb == FL_FLEET_MIGRATE)
		f->gate.limit =
		    f->m->settings.local_apply_jobs > 0 ? f->m->settings.local_apply_jobs : usable_cpus() + 1;
	if (f->budget <= 0)
		f->budget = f->opts.connections > 0 ? f->opts.connections : f->m->settings.connections;
	fl_orch_opts oo = {.threads = fl_budget_threads(jobs, f->n, f->budget),
	                   .fail_fast = f->opts.fail_fast,
	                   .handle_signals = f->opts.handle_signals,
	                   .on_event = on_event,
	                   .event_ctx = f};
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
	f->gate.rank = fl_calloc(f->n ? f->n : 1, sizeof(size_t));
	f->gate.waiting = fl_calloc(f->n ? f->n : 1, sizeof(bool));
	f->gate.held = fl_calloc(f->n ? f->n : 1, sizeof(bool));
	f->gate.idle = fl_calloc(f->n ? f->n : 1, sizeof(bool));
	f->gate.since = fl_calloc(f->n ? f->n : 1, sizeof(double));
	for (size_t k = 0; k < f->n; k++)
		f->gate.rank[order[k]] = k;
	int *results = fl_calloc(f->n ? f->n : 1, sizeof(int));
	f->touched = true;
	fl_timeline_set_offset(f->timeline, now_s() - f->t0); /* the pool's clock starts now */
	if (fl_orch_run(f->n, job_main, f, &oo, results) == 130)
		f->interrupted = true;
	free(order);
	free(weight);
	fl_report_finish(f->report);
	for (size_t i = 0; i < f->n; i++)
		if (f->services[i].outcome == FL_OUTCOME_NOT_RUN && results[i] == 130)
			set_outcome(&f->services[i], FL_OUTCOME_CANCELLED,
			            "not started: the run was cancelled");
	free(results);
}

/* The services' part of provisioning: counted and warned about with the shared part's. */
static void finish_provisioning(fl_fleet *f, FILE *progress)
{
	bool failed = false;
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		f->provision_steps += s->prov_steps;
		fl_error_append(&f->warnings, s->prov_warnings);
		s->prov_warnings = NULL;
		failed |= s->prov_failed;
	}
	/* every database was checked (a service stopped before its check leaves it unsaid) */
	bool checked = !f->interrupted;
	for (size_t i = 0; i < f->n && checked; i++)
		checked = f->services[i].outcome == FL_OUTCOME_OK ||
		          f->services[i].outcome == FL_OUTCOME_UP_TO_DATE ||
		          f->services[i].outcome == FL_OUTCOME_SKIPPED;
	if (!failed && checked && f->provision_steps == 0)
		fprintf(progress, "provision: no changes\n");
	end_provisioning(f);
}

/* validate: a checksum mismatch names the commit that changed the file after it was applied */
static void name_changing_commits(fl_fleet *f)
{
	const char *rev = f->opts.rev ? f->rev_id : NULL;
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		for (size_t k = 0; s->plan && k < s->plan->n; k++) {
			const fl_plan_item *it = &s->plan->items[k];
			if (!(it->mismatch & FL_MISMATCH_CHECKSUM) || !it->mig || !it->row)
				continue;
			fl_error *e = s->error;
			while (e && !(e->file && strcmp(e->file, it->mig->path) == 0 &&
			              strncmp(e->msg, "checksum mismatch", 17) == 0))
				e = e->next;
			if (!e)
				continue;
			fl_git_commit c;
			char *note = NULL;
			if (fl_git_changing_commit(f->git, rev, s->svc->migrations, it->mig->script,
			                           it->row->installed_on, &c, &note) == 1)
				fl_git_commit_clear(&c);
			if (note) {
				char *m = fl_asprintf("%s%s", e->msg, note);
				free(e->msg);
				e->msg = m;
				free(note);
			}
		}
	}
}

/* The report's copy of the outcomes, for the summary table. */
static void fill_report(fl_fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		fl_report_service *rs = &f->report->services[i];
		rs->outcome = s->outcome;
		rs->reason = s->reason ? fl_strdup(s->reason) : NULL;
		if (s->res.version_before)
			rs->version_before = fl_strdup(s->res.version_before);
		if (s->res.version_after)
			rs->version_after = fl_strdup(s->res.version_after);
		for (size_t k = 0; k < s->res.nitems; k++) {
			const fl_apply_item *it = &s->res.items[k];
			fl_report_add_migration(rs, it->version, it->script, it->description, it->checksum,
			                        it->ms);
		}
	}
	f->report->wall = f->wall;
}

/* --html/--svg: the spans are recorded from the start; the phases are stamped as they run. */
static void timeline_start(fl_fleet *f)
{
	if (!f->opts.html && !f->opts.svg)
		return;
	const char **names = fl_calloc(f->n ? f->n : 1, sizeof(char *));
	for (size_t i = 0; i < f->n; i++)
		names[i] = f->services[i].svc->name;
	f->timeline = fl_timeline_new(names, f->n);
	free(names);
	fl_timeline_phase_start(f->timeline, FL_TL_PREFLIGHT, 0);
}

/* The picture from the run's own outcomes, written once they are final; a file that cannot be
 * written is the run's warning (stderr, the JSON document), never its exit code. */
static void timeline_write(fl_fleet *f)
{
	if (!f->timeline)
		return;
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		char *e = s->error && fl_outcome_is_problem(s->outcome) ? fl_error_format(s->error) : NULL;
		fl_timeline_set_outcome(f->timeline, i, s->outcome, s->reason, e);
		free(e);
	}
	const fl_manifest *m = f->m;
	char *title = fl_asprintf("%s%s%s%s%s", fl_fleet_verb_name(f->opts.verb), m && m->project ? " " : "",
	                          m && m->project ? m->project : "", m && m->env ? " / " : "",
	                          m && m->env ? m->env->name : "");
	fl_timeline_set_run(f->timeline, title, f->outcome, f->exit_code, f->wall);
	free(title);
	fl_error *err = NULL;
	if (fl_timeline_write(f->timeline, f->opts.html, f->opts.svg, &err) != 0)
		fl_error_append(&f->warnings, err);
}

int fl_fleet_run(fl_fleet *f, FILE *progress)
{
	double t0 = now_s();
	f->t0 = t0;
	timeline_start(f);
	if (f->opts.handle_signals)
		fl_orch_signals_watch(true);
	bool stop = f->errors != NULL || !f->m;
	pthread_t git_thread;
	bool git_running = false;
	if (!stop) {
		git_running = preflight_git_start(f, &git_thread);
		stop = f->errors != NULL;
	}
	if (!stop)
		preflight_shard(f);
	if (!stop) {
		preflight_files(f);
		preflight_secrets(f);
	}
	if (git_running) {
		pthread_join(git_thread, NULL);
		f->git_looked = true;
	}
	if (!stop)
		stop = f->errors != NULL || any_outcome(f, FL_OUTCOME_INVALID) || fl_orch_interrupted();
	fl_timeline_phase_end(f->timeline, FL_TL_PREFLIGHT, now_s() - t0);
	if (!stop && provisioning(f)) {
		fl_timeline_phase_start(f->timeline, FL_TL_PROVISIONING, now_s() - t0);
		provision_phase(f, progress);
		fl_timeline_phase_end(f->timeline, FL_TL_PROVISIONING, now_s() - t0);
		stop = fl_orch_interrupted();
	}
	if (!stop) {
		fl_timeline_phase_start(f->timeline, FL_TL_JOBS, now_s() - t0);
		jobs_phase(f, progress);
		fl_timeline_phase_end(f->timeline, FL_TL_JOBS, now_s() - t0);
	}
	f->interrupted |= fl_orch_interrupted(); /* before "provision: no changes" is said or not */
	if (f->dbs)
		finish_provisioning(f, progress);
	if (f->opts.verb == FL_FLEET_VALIDATE && f->git)
		name_changing_commits(f);
	f->wall = now_s() - t0;
	if (f->report)
		fill_report(f);
	wipe_secrets(f);
	if (f->opts.handle_signals)
		fl_orch_signals_watch(false);

	fl_outcome *outs = fl_calloc(f->n ? f->n : 1, sizeof(fl_outcome));
	for (size_t i = 0; i < f->n; i++)
		outs[i] = f->services[i].outcome;
	bool input_error = false;
	for (const fl_error *e = f->errors; e; e = e->next)
		input_error |= e->kind == FL_EINPUT;
	f->outcome = fl_run_outcome_of(outs, f->n, input_error, f->failed, f->interrupted);
	free(outs);
	f->exit_code = fl_run_exit_code(f->outcome);
	timeline_write(f);
	return f->exit_code;
}

/* ---- the JSON document ---- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *error_json(const fl_error *e, const char *service, const char *sqlstate)
{
	json_t *o = json_object();
	if (service)
		json_object_set_new(o, "service", json_string(service));
	json_object_set_new(o, "message", json_string(e->msg));
	json_object_set_new(o, "sqlstate", sqlstate && *sqlstate ? json_string(sqlstate) : json_null());
	json_object_set_new(o, "file", str_or_null(e->file));
	json_object_set_new(o, "line", e->line ? json_integer(e->line) : json_null());
	json_object_set_new(o, "column", e->col ? json_integer(e->col) : json_null());
	return o;
}

static json_t *plan_json(const fl_plan *p)
{
	json_t *a = json_array();
	for (size_t k = 0; k < p->n; k++) {
		const fl_plan_item *it = &p->items[k];
		const char *ver = it->row ? it->row->version : it->mig ? it->mig->version : NULL;
		const char *desc = it->row ? it->row->description : it->mig ? it->mig->description : "";
		const char *script = it->row ? it->row->script : it->mig ? it->mig->script : NULL;
		json_t *o = json_object();
		json_object_set_new(o, "category", json_string(fl_plan_item_category(it)));
		json_object_set_new(o, "version", str_or_null(ver));
		json_object_set_new(o, "description", json_string(desc ? desc : ""));
		json_object_set_new(o, "type", json_string(it->row && it->row->type ? it->row->type : "SQL"));
		json_object_set_new(o, "script", str_or_null(script));
		json_object_set_new(o, "checksum",
		                    it->row && it->row->has_checksum ? json_integer(it->row->checksum)
		                    : it->mig                        ? json_integer(it->checksum)
		                                                     : json_null());
		json_object_set_new(o, "installed_on", str_or_null(it->row ? it->row->installed_on : NULL));
		json_object_set_new(o, "state", json_string(fl_plan_state_name(it->state)));
		json_object_set_new(o, "file", str_or_null(it->mig ? it->mig->path : NULL));
		char *note = fl_plan_item_note(it);
		json_object_set_new(o, "note", str_or_null(note));
		free(note);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *service_json(const fl_fleet *f, size_t i)
{
	const fl_fleet_service *s = &f->services[i];
	const fl_report_service *rs = f->report ? &f->report->services[i] : NULL;
	json_t *o = json_object();
	json_object_set_new(o, "service", json_string(s->svc->name));
	json_object_set_new(o, "database", json_string(s->svc->database));
	json_object_set_new(o, "schema", json_string(s->svc->schema));
	json_object_set_new(o, "result", json_string(fl_outcome_name(s->outcome)));
	json_object_set_new(o, "reason", str_or_null(s->reason));
	if (s->outcome == FL_OUTCOME_SKIPPED)
		json_object_set_new(o, "skip_reason", str_or_null(s->reason));
	if (f->opts.shard_count > 0)
		json_object_set_new(o, "shard", json_integer(s->shard));
	const char *before = s->res.version_before, *after = s->res.version_after;
	if (s->plan)
		before = after = s->plan->current_version;
	json_object_set_new(o, "version_before", str_or_null(before));
	json_object_set_new(o, "version_after", str_or_null(after ? after : before));
	double secs = rs && rs->started >= 0 && rs->finished >= rs->started ? rs->finished - rs->started : 0;
	json_object_set_new(o, "ms", json_integer((json_int_t)(secs * 1000)));
	fl_fleet_verb v = f->opts.verb;
	if (v == FL_FLEET_STATUS || v == FL_FLEET_PLAN || v == FL_FLEET_VALIDATE) {
		json_object_set_new(o, "database_exists",
		                    s->plan         ? json_true()
		                    : s->db_missing ? json_false()
		                                    : json_null());
		json_object_set_new(o, "version", str_or_null(s->plan ? s->plan->current_version : NULL));
		size_t pending = s->plan ? s->plan->npending + s->plan->nrepeatables : s->to_apply;
		json_object_set_new(o, "pending", json_integer((json_int_t)pending));
		json_object_set_new(o, "migrations", s->plan ? plan_json(s->plan) : json_array());
		if (v == FL_FLEET_VALIDATE) {
			json_t *probs = json_array();
			if (s->outcome == FL_OUTCOME_REFUSED || s->outcome == FL_OUTCOME_OK)
				for (const fl_error *e = s->error; e; e = e->next)
					json_array_append_new(probs, error_json(e, NULL, NULL));
			json_object_set_new(o, "problems", probs);
		}
	} else {
		json_t *migs = json_array();
		for (size_t k = 0; k < s->res.nitems; k++) {
			const fl_apply_item *it = &s->res.items[k];
			json_t *mo = json_object();
			json_object_set_new(mo, "version", str_or_null(it->version));
			json_object_set_new(mo, "script", json_string(it->script));
			json_object_set_new(mo, "description",
			                    json_string(it->description ? it->description : ""));
			json_object_set_new(mo, "checksum", json_integer(it->checksum));
			json_object_set_new(mo, "ms", json_integer(it->ms));
			json_array_append_new(migs, mo);
		}
		json_object_set_new(o, "migrations", migs);
		if (s->res.ncallbacks) { /* Flyway's SQL callbacks that ran */
			json_t *cbs = json_array();
			for (size_t k = 0; k < s->res.ncallbacks; k++) {
				const struct fl_apply_callback *cb = &s->res.callbacks[k];
				json_t *co = json_object();
				json_object_set_new(co, "event", json_string(cb->event));
				json_object_set_new(co, "script", json_string(cb->script));
				json_object_set_new(co, "ms", json_integer(cb->ms));
				json_object_set_new(co, "ok", json_boolean(cb->ok));
				json_array_append_new(cbs, co);
			}
			json_object_set_new(o, "callbacks", cbs);
		}
		if (f->opts.dry_run) /* the exact SQL a run would send: stdout holds only the document */
			json_object_set_new(o, "sql", json_string(s->sql.data ? s->sql.data : ""));
		if (v == FL_FLEET_REPAIR || v == FL_FLEET_BASELINE) {
			json_t *ch = json_array();
			for (size_t k = 0; k < s->res.nchanges; k++)
				json_array_append_new(ch, json_string(s->res.changes[k]));
			json_object_set_new(o, "changes", ch);
		}
	}
	json_object_set_new(o, "error",
	                    s->error && fl_outcome_is_problem(s->outcome)
	                        ? error_json(s->error, NULL, s->res.diag.sqlstate)
	                        : json_null());
	return o;
}

json_t *fl_fleet_json(const fl_fleet *f)
{
	const fl_manifest *m = f->m;
	json_t *doc = json_object();
	json_object_set_new(doc, "run_id", json_string(f->run_uuid));
	json_object_set_new(doc, "command", json_string(fl_fleet_verb_name(f->opts.verb)));
	json_object_set_new(doc, "manifest", str_or_null(m ? m->path : NULL));
	json_object_set_new(doc, "project", str_or_null(m ? m->project : NULL));
	json_object_set_new(doc, "environment", str_or_null(m && m->env ? m->env->name : NULL));
	json_object_set_new(doc, "git_commit", str_or_null(f->git_commit));
	json_object_set_new(doc, "git_dirty", f->git_dirty < 0 ? json_null() : json_boolean(f->git_dirty));
	json_object_set_new(doc, "result", json_string(fl_run_outcome_name(f->outcome)));
	json_object_set_new(doc, "exit_code", json_integer(f->exit_code));
	json_object_set_new(doc, "interrupted", json_boolean(f->interrupted));
	json_object_set_new(doc, "touched", json_boolean(f->touched));
	json_object_set_new(doc, "wall_ms", json_integer((json_int_t)(f->wall * 1000)));
	/* --shard: which share of the selection this document is (report merge puts them together) */
	json_object_set_new(doc, "shard",
	                    f->opts.shard_count > 0 ? json_pack("{s:i, s:i}", "index", f->opts.shard_index,
	                                                        "count", f->opts.shard_count)
	                                            : json_null());
	json_t *errors = json_array();
	for (const fl_error *e = f->errors; e; e = e->next)
		json_array_append_new(errors, error_json(e, NULL, NULL));
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		if (!fl_outcome_is_problem(s->outcome))
			continue;
		for (const fl_error *e = s->error; e; e = e->next)
			json_array_append_new(
			    errors, error_json(e, s->svc->name, e == s->error ? s->res.diag.sqlstate : NULL));
	}
	json_object_set_new(doc, "errors", errors);
	json_t *warnings = json_array();
	for (const fl_error *e = f->warnings; e; e = e->next) {
		char *w = fl_error_format(e);
		json_array_append_new(warnings, json_string(w));
		free(w);
	}
	json_object_set_new(doc, "warnings", warnings);
	json_t *services = json_array();
	for (size_t i = 0; i < f->n; i++)
		json_array_append_new(services, service_json(f, i));
	json_object_set_new(doc, "services", services);
	return doc;
}
