/*
 * manifest: `flotilla manifest check [--secrets]` and `flotilla manifest show
 * [--json]`. Secrets are shown as where they come from, never as values;
 * --secrets resolves each one the environment uses, to prove it can, and
 * wipes it at once.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "secret.h"

/* Prints s with control characters escaped (descriptions are free text). */
static void put(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void fmt_ms(char *buf, size_t n, int ms)
{
	if (ms == 0)
		snprintf(buf, n, "none");
	else if (ms % 86400000 == 0)
		snprintf(buf, n, "%dd", ms / 86400000);
	else if (ms % 3600000 == 0)
		snprintf(buf, n, "%dh", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, n, "%dmin", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%ds", ms / 1000);
	else
		snprintf(buf, n, "%dms", ms);
}

static void show_secret(FILE *f, const fl_secret_ref *ref)
{
	if (!ref) {
		fputs("none", f);
		return;
	}
	char *d = fl_secret_describe(ref);
	fputs(d, f);
	free(d);
}

/* "password <env X>", "token <cmd gcloud ...>", "url <cmd ...>" */
static void show_login(FILE *f, const fl_login *l)
{
	fputs(l->token ? "token " : l->url ? "url " : "password ", f);
	show_secret(f, l->token ? l->token : l->url ? l->url : l->password);
}

static void show_text(const fl_manifest *m)
{
	FILE *f = stdout;
	char a[32], b[32], c[32];
	fprintf(f, "manifest     ");
	put(f, m->path);
	fprintf(f, "\nproject      ");
	put(f, m->project);
	if (m->env)
		fprintf(f, "\nenvironment  %s\n", m->env->name);
	else
		fprintf(f, "\nenvironment  none (${env} is shown as written; choose one with -e ENV)\n");
	fmt_ms(a, sizeof(a), m->settings.lock_timeout_ms);
	fmt_ms(b, sizeof(b), m->settings.statement_timeout_ms);
	fmt_ms(c, sizeof(c), m->settings.secret_timeout_ms);
	char j[32];
	if (m->settings.jobs)
		snprintf(j, sizeof(j), "%d", m->settings.jobs);
	else
		snprintf(j, sizeof(j), "auto");
	char r[32], w[32];
	fmt_ms(r, sizeof(r), m->settings.lock_retry_interval_ms);
	fmt_ms(w, sizeof(w), m->settings.migration_lock_timeout_ms);
	fprintf(f,
	        "settings     jobs %s, lock_timeout %s, lock_retries %d, lock_retry_interval %s, "
	        "migration_lock_timeout %s, statement_timeout %s, secret_timeout %s\n",
	        j, a, m->settings.lock_retries, r, w, b, c);

	fprintf(f, "\nenvironments\n");
	for (size_t i = 0; i < m->nenvs; i++) {
		const fl_environment *e = &m->envs[i];
		fprintf(f, "  %s%s\n", e->name, m->env == e ? " (selected)" : "");
		fprintf(f, "    host            ");
		put(f, e->host ? e->host : "(libpq default: PGHOST)");
		if (e->port)
			fprintf(f, "\n    port            %d\n", e->port);
		else
			fprintf(f, "\n    port            (libpq default: PGPORT)\n");
		if (e->sslmode)
			fprintf(f, "    sslmode         %s\n", e->sslmode);
		if (e->connect_timeout)
			fprintf(f, "    connect_timeout %ds\n", e->connect_timeout);
		fprintf(f, "    maintenance_db  %s\n", e->maintenance_db);
		for (size_t j = 0; j < e->noptions; j++) {
			fprintf(f, "    option          %s=", e->options[j].key);
			put(f, e->options[j].value);
			fputc('\n', f);
		}
		fprintf(f, "    admin           %s, ", e->admin.user ? e->admin.user : "?");
		show_login(f, &e->admin);
		fprintf(f, "\n    migrator        %s, ", e->migrator.user ? e->migrator.user : "?");
		show_login(f, &e->migrator);
		fputc('\n', f);
		if (!e->service_passwords)
			fprintf(f, "    service passwords are not used (service_passwords = false)\n");
	}

	fprintf(f, "\nservices\n");
	for (size_t i = 0; i < m->nservices; i++) {
		const fl_service *s = &m->services[i];
		fprintf(f, "  %s", s->name);
		if (s->description) {
			fputs(": ", f);
			put(f, s->description);
		}
		fprintf(f, "\n    database        %s\n    owner           %s\n    schema          %s\n",
		        s->database, s->owner, s->schema);
		fprintf(f, "    migrations      ");
		put(f, s->migrations_as_written);
		fprintf(f, "\n    password        ");
		show_secret(f, s->password);
		fputc('\n', f);
		if (s->password_sink) {
			fprintf(f, "    password_sink   ");
			put(f, s->password_sink);
			fputc('\n', f);
		}
		if (s->nreads) {
			fprintf(f, "    reads           ");
			for (size_t j = 0; j < s->nreads; j++)
				fprintf(f, "%s%s", j ? ", " : "", s->reads[j]);
			fputc('\n', f);
		}
		for (size_t j = 0; j < s->nplaceholders; j++) {
			fprintf(f, "    placeholder     %s=", s->placeholders[j].name);
			put(f, s->placeholders[j].value);
			fputc('\n', f);
		}
	}

	if (m->nroles)
		fprintf(f, "\nroles\n");
	for (size_t i = 0; i < m->nroles; i++) {
		const fl_role *r = &m->roles[i];
		fprintf(f, "  %s", r->name);
		if (r->description) {
			fputs(": ", f);
			put(f, r->description);
		}
		fprintf(f, "\n    login           %s\n", r->login ? "yes" : "no");
		if (r->login) {
			fprintf(f, "    password        ");
			show_secret(f, r->password);
			fputc('\n', f);
		}
		if (r->nreads) {
			fprintf(f, "    reads           ");
			for (size_t j = 0; j < r->nreads; j++)
				fprintf(f, "%s%s", j ? ", " : "", r->reads[j]);
			fputc('\n', f);
		}
	}
}

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_null();
}

static json_t *jsecret(const fl_secret_ref *ref)
{
	if (!ref)
		return json_null();
	char *d = fl_secret_describe(ref);
	json_t *j = jstr(d);
	free(d);
	return j;
}

static json_t *jlogin(const fl_login *l)
{
	json_t *o = json_object();
	json_object_set_new(o, "user", jstr(l->user));
	json_object_set_new(o, "password", jsecret(l->password));
	json_object_set_new(o, "token", jsecret(l->token));
	json_object_set_new(o, "url", jsecret(l->url));
	return o;
}

static json_t *jreads(char **reads, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(reads[i]));
	return a;
}

static int show_json(const fl_manifest *m)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "manifest", jstr(m->path));
	json_object_set_new(doc, "version", json_integer(m->version));
	json_object_set_new(doc, "project", jstr(m->project));
	json_object_set_new(doc, "environment", m->env ? jstr(m->env->name) : json_null());
	json_t *st = json_object();
	json_object_set_new(st, "jobs", m->settings.jobs ? json_integer(m->settings.jobs) : json_null());
	json_object_set_new(st, "lock_timeout_ms", json_integer(m->settings.lock_timeout_ms));
	json_object_set_new(st, "lock_retries", json_integer(m->settings.lock_retries));
	json_object_set_new(st, "lock_retry_interval_ms", json_integer(m->settings.lock_retry_interval_ms));
	json_object_set_new(st, "migration_lock_timeout_ms",
	                    json_integer(m->settings.migration_lock_timeout_ms));
	json_object_set_new(st, "statement_timeout_ms", json_integer(m->settings.statement_timeout_ms));
	json_object_set_new(st, "secret_timeout_ms", json_integer(m->settings.secret_timeout_ms));
	json_object_set_new(doc, "settings", st);

	json_t *envs = json_array();
	for (size_t i = 0; i < m->nenvs; i++) {
		const fl_environment *e = &m->envs[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(e->name));
		json_object_set_new(o, "host", jstr(e->host));
		json_object_set_new(o, "port", e->port ? json_integer(e->port) : json_null());
		json_object_set_new(o, "sslmode", jstr(e->sslmode));
		json_object_set_new(o, "connect_timeout",
		                    e->connect_timeout ? json_integer(e->connect_timeout) : json_null());
		json_object_set_new(o, "maintenance_db", jstr(e->maintenance_db));
		json_t *opts = json_object();
		for (size_t j = 0; j < e->noptions; j++)
			json_object_set_new(opts, e->options[j].key, jstr(e->options[j].value));
		json_object_set_new(o, "options", opts);
		json_object_set_new(o, "admin", jlogin(&e->admin));
		json_object_set_new(o, "migrator", jlogin(&e->migrator));
		json_object_set_new(o, "service_passwords", json_boolean(e->service_passwords));
		json_array_append_new(envs, o);
	}
	json_object_set_new(doc, "environments", envs);

	json_t *svcs = json_array();
	for (size_t i = 0; i < m->nservices; i++) {
		const fl_service *s = &m->services[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(s->name));
		json_object_set_new(o, "description", jstr(s->description));
		json_object_set_new(o, "database", jstr(s->database));
		json_object_set_new(o, "owner", jstr(s->owner));
		json_object_set_new(o, "schema", jstr(s->schema));
		json_object_set_new(o, "migrations", jstr(s->migrations_as_written));
		json_object_set_new(o, "migrations_path", jstr(s->migrations));
		json_object_set_new(o, "reads", jreads(s->reads, s->nreads));
		json_t *ph = json_object();
		for (size_t j = 0; j < s->nplaceholders; j++)
			json_object_set_new(ph, s->placeholders[j].name, jstr(s->placeholders[j].value));
		json_object_set_new(o, "placeholders", ph);
		json_object_set_new(o, "password", jsecret(s->password));
		json_object_set_new(o, "password_sink", jstr(s->password_sink));
		json_array_append_new(svcs, o);
	}
	json_object_set_new(doc, "services", svcs);

	json_t *roles = json_array();
	for (size_t i = 0; i < m->nroles; i++) {
		const fl_role *r = &m->roles[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(r->name));
		json_object_set_new(o, "description", jstr(r->description));
		json_object_set_new(o, "login", json_boolean(r->login));
		json_object_set_new(o, "password", jsecret(r->password));
		json_object_set_new(o, "reads", jreads(r->reads, r->nreads));
		json_array_append_new(roles, o);
	}
	json_object_set_new(doc, "roles", roles);

	int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(doc);
	return rc == 0 ? FL_EXIT_OK : FL_EXIT_FAILED;
}

static void print_warnings(const fl_error *w)
{
	for (; w; w = w->next) {
		if (w->file && w->line > 0)
			fprintf(stderr, "%s:%d:%d: warning: %s\n", w->file, w->line, w->col, w->msg);
		else
			fprintf(stderr, "warning: %s\n", w->msg);
	}
}

/* One secret to prove: its description for messages and whether it is a URL. */
static void add_job(fl_secret_job **jobs, char ***whats, size_t *n, const fl_secret_ref *ref, char *what)
{
	if (!ref) {
		free(what);
		return;
	}
	*jobs = fl_realloc(*jobs, (*n + 1) * sizeof(**jobs));
	*whats = fl_realloc(*whats, (*n + 1) * sizeof(**whats));
	(*jobs)[*n] = (fl_secret_job){.ref = ref, .what = what};
	(*whats)[*n] = what;
	(*n)++;
}

/* Resolves every secret of the environment at once (as a run's preflight does), proving each, and wipes them.
 */
static int check_secrets(const fl_manifest *m)
{
	const fl_environment *e = m->env;
	fl_secret_job *jobs = NULL;
	char **whats = NULL;
	size_t n = 0;
	const fl_login *logins[2] = {&e->admin, &e->migrator};
	const char *names[2] = {"admin", "migrator"};
	for (int i = 0; i < 2; i++) {
		const fl_login *l = logins[i];
		const char *kind = l->token ? "token" : l->url ? "connection URL" : "password";
		add_job(&jobs, &whats, &n,
		        l->token ? l->token
		        : l->url ? l->url
		                 : l->password,
		        fl_asprintf("%s %s of environment %s", names[i], kind, e->name));
	}
	for (size_t i = 0; i < m->nservices; i++)
		add_job(&jobs, &whats, &n, m->services[i].password,
		        fl_asprintf("password of service %s", m->services[i].name));
	for (size_t i = 0; i < m->nroles; i++)
		add_job(&jobs, &whats, &n, m->roles[i].password,
		        fl_asprintf("password of role %s", m->roles[i].name));
	fl_secret_resolve_many(jobs, n);
	int failed = 0, resolved = 0;
	for (size_t i = 0; i < n; i++) {
		fl_secret_job *j = &jobs[i];
		/* a whole URL must also parse */
		if (!j->err && j->ref->kind == FL_SECRET_URL) {
			fl_conn_url u;
			fl_error *pe = NULL;
			if (fl_conn_url_parse(j->out->data, j->out->len, &u, &pe) == 0)
				fl_conn_url_clear(&u);
			else {
				char *d = fl_secret_describe(j->ref);
				j->err = fl_error_new("%s %s: %s", j->what, d, pe->msg);
				free(d);
				fl_error_free(pe);
			}
		}
		print_warnings(j->warnings);
		fl_error_free(j->warnings);
		fl_secret_free(j->out);
		if (j->err) {
			fl_cli_print_errors(j->err);
			fl_error_free(j->err);
			failed++;
		} else {
			resolved++;
		}
		free(whats[i]);
	}
	free(jobs);
	free(whats);
	if (failed)
		return FL_EXIT_USAGE;
	printf("secrets OK: %d resolved for environment %s\n", resolved, e->name);
	return FL_EXIT_OK;
}

int cmd_manifest(int argc, char **argv)
{
	struct fl_manifest_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	bool json = a.json, secrets = a.secrets;
	if (optind >= argc)
		return fl_cli_usage(argc, argv, "'manifest' needs an action: check or show");
	const char *action = argv[optind];
	if (optind + 1 < argc)
		return fl_cli_usage(argc, argv, "unexpected argument '%s'", argv[optind + 1]);
	bool check = strcmp(action, "check") == 0, show = strcmp(action, "show") == 0;
	if (!check && !show)
		return fl_cli_usage(argc, argv, "unknown action '%s'; use check or show", action);
	if (json && !show)
		return fl_cli_usage(argc, argv, "--json goes with 'manifest show'");
	if (secrets && !check)
		return fl_cli_usage(argc, argv, "--secrets goes with 'manifest check'");

	fl_manifest *m = fl_cli_load_manifest(secrets);
	if (!m)
		return FL_EXIT_USAGE;
	rc = FL_EXIT_OK;
	if (check) {
		printf("manifest OK: %zu service%s, %zu environment%s\n", m->nservices,
		       m->nservices == 1 ? "" : "s", m->nenvs, m->nenvs == 1 ? "" : "s");
		if (secrets) {
			fflush(stdout);
			rc = check_secrets(m);
		}
	} else if (json) {
		rc = show_json(m);
	} else {
		show_text(m);
	}
	fl_manifest_free(m);
	return rc;
}
