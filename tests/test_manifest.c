/* The manifest: the platform's pcc.toml resolved per environment, expansion,
 * selection, and the corpus of broken manifests with their exact messages. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "manifest.h"

static char *pcc_path(void)
{
	char *p = malloc(strlen(th_top()) + 32);
	sprintf(p, "%s/manifests/pcc.toml", th_top());
	return p;
}

static fl_manifest *load_ok(const char *path, const char *env)
{
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, env, &err);
	if (!m) {
		char *s = fl_error_format(err);
		cr_assert_fail("load of %s failed: %s", path, s);
	}
	cr_assert_null(err);
	return m;
}

/* Loads text written to a fresh directory (with the folders it names). */
static fl_manifest *load_text(const char *text, const char *env, fl_error **err, char **dir_out)
{
	char *dir = th_tmpdir();
	th_write(dir, "m/flotilla.toml", text);
	th_write(dir, "svc/auth/migrations/.keep", "");
	th_write(dir, "svc/user/migrations/.keep", "");
	char path[1024];
	snprintf(path, sizeof(path), "%s/m/flotilla.toml", dir);
	*err = NULL;
	fl_manifest *m = fl_manifest_load(path, env, err);
	if (dir_out)
		*dir_out = dir;
	else
		free(dir);
	return m;
}

static char *errors_text(const fl_error *e)
{
	size_t cap = 1;
	for (const fl_error *x = e; x; x = x->next)
		cap += strlen(x->msg) + 32 + (x->file ? strlen(x->file) : 0);
	char *out = calloc(1, cap);
	for (const fl_error *x = e; x; x = x->next) {
		char line[64];
		snprintf(line, sizeof(line), "%d:%d: ", x->line, x->col);
		strcat(out, line);
		strcat(out, x->msg);
		strcat(out, "\n");
	}
	return out;
}

static const char *const seven[] = {"auth",           "client",       "user",        "metric_builder",
                                    "metric_tracker", "task_builder", "task_tracker"};

Test(manifest, pcc_devtest)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, "devtest");
	cr_assert_str_eq(m->project, "pcc");
	cr_assert_eq(m->version, 1);
	cr_assert_not_null(m->env);
	cr_assert_str_eq(m->env->name, "devtest");
	cr_assert_eq(m->nservices, 7);
	for (size_t i = 0; i < 7; i++) {
		const fl_service *s = &m->services[i];
		char want[128];
		cr_assert_str_eq(s->name, seven[i]);
		snprintf(want, sizeof(want), "%s_db_devtest", seven[i]);
		cr_assert_str_eq(s->database, want);
		snprintf(want, sizeof(want), "%s_api_user", seven[i]);
		cr_assert_str_eq(s->owner, want);
		cr_assert_str_eq(s->schema, "public");
		snprintf(want, sizeof(want), "../services/%s/migrations", seven[i]);
		cr_assert_str_eq(s->migrations_as_written, want);
		cr_assert_eq(s->migrations[0], '/', "not absolute: %s", s->migrations);
		snprintf(want, sizeof(want), "/services/%s/migrations", seven[i]);
		cr_assert(strlen(s->migrations) > strlen(want) &&
		              strcmp(s->migrations + strlen(s->migrations) - strlen(want), want) == 0,
		          "%s", s->migrations);
		struct stat st;
		cr_assert(stat(s->migrations, &st) == 0 && S_ISDIR(st.st_mode));
		cr_assert_not_null(s->password);
		cr_assert_not_null(s->password->env);
		cr_assert_not_null(s->password->cmd);
		cr_assert_eq(s->password->timeout_ms, 30000);
	}
	const fl_service *auth = fl_manifest_service(m, "auth");
	cr_assert_eq(auth, &m->services[0]);
	cr_assert_eq(auth->nreads, 1);
	cr_assert_str_eq(auth->reads[0], "user");
	cr_assert_eq(auth->reads_index[0], 2);
	char *d = fl_secret_describe(auth->password);
	cr_assert_str_eq(d, "<env AUTH_DB_PASSWORD or cmd gcloud secrets versions access latest "
	                    "--secret=auth-db-credentials-devtest>");
	free(d);
	cr_assert_str_eq(auth->password_sink,
	                 "gcloud secrets versions add auth-db-credentials-devtest --data-file=-");
	const fl_service *mt = fl_manifest_service(m, "metric_tracker");
	cr_assert_eq(mt->nreads, 1);
	cr_assert_str_eq(mt->reads[0], "metric_builder");
	const fl_service *tt = fl_manifest_service(m, "task_tracker");
	cr_assert_eq(tt->nreads, 1);
	cr_assert_str_eq(tt->reads[0], "task_builder");
	cr_assert_eq(fl_manifest_service(m, "client")->nreads, 0);
	cr_assert_null(fl_manifest_service(m, "billing"));

	cr_assert_eq(m->nroles, 1);
	cr_assert_str_eq(m->roles[0].name, "bigquery_sync");
	cr_assert_eq(m->roles[0].nreads, 1);
	cr_assert_str_eq(m->roles[0].reads[0], "metric_tracker");
	cr_assert_eq(m->roles[0].reads_index[0], 4);
	cr_assert(m->roles[0].login);
	cr_assert_not_null(m->roles[0].password);

	const fl_environment *e = m->env;
	cr_assert_eq(fl_manifest_env(m, "devtest"), e);
	cr_assert_str_eq(e->host, "127.0.0.1");
	cr_assert_eq(e->port, 5433);
	cr_assert_str_eq(e->sslmode, "disable");
	cr_assert_eq(e->connect_timeout, 10);
	cr_assert_str_eq(e->maintenance_db, "postgres");
	cr_assert_str_eq(e->admin.user, "pcc_admin");
	cr_assert_str_eq(e->migrator.user, "flyway_user");
	cr_assert_str_eq(e->admin.password->env, "PCC_ADMIN_PASSWORD");
	cr_assert_str_eq(e->migrator.password->cmd,
	                 "gcloud secrets versions access latest --secret=alloydb-flyway-credentials-devtest");
	cr_assert_eq(e->noptions, 1);
	cr_assert_str_eq(e->options[0].key, "application_name");
	cr_assert_str_eq(e->options[0].value, "flotilla");
	cr_assert_eq(m->settings.jobs, 0, "jobs is left to the orchestrator");
	cr_assert_eq(m->settings.lock_timeout_ms, 2000);
	cr_assert_eq(m->settings.lock_retries, 10);
	cr_assert_eq(m->settings.lock_retry_interval_ms, 1000);
	cr_assert_eq(m->settings.migration_lock_timeout_ms, 600000);
	cr_assert_eq(m->settings.statement_timeout_ms, 30 * 60000);
	cr_assert_eq(m->settings.secret_timeout_ms, 30000);
	cr_assert_eq(m->nenvs, 3);
	fl_manifest_free(m);
	free(path);
}

Test(manifest, pcc_prod)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, "prod");
	cr_assert_str_eq(m->env->name, "prod");
	cr_assert_eq(m->env->port, 5434);
	cr_assert_str_eq(fl_manifest_service(m, "task_tracker")->database, "task_tracker_db_prod");
	cr_assert_str_eq(fl_manifest_service(m, "metric_builder")->password->cmd,
	                 "gcloud secrets versions access latest --secret=metric-builder-db-credentials-prod");
	cr_assert_str_eq(m->env->admin.password->cmd,
	                 "gcloud secrets versions access latest --secret=alloydb-admin-credentials-prod");
	/* the other environments keep their own ${env} */
	cr_assert_str_eq(fl_manifest_env(m, "devtest")->admin.password->cmd,
	                 "gcloud secrets versions access latest --secret=alloydb-admin-credentials-devtest");
	fl_manifest_free(m);
	free(path);
}

Test(manifest, pcc_local)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, "local");
	const fl_environment *e = m->env;
	cr_assert_str_eq(e->name, "local");
	cr_assert_null(e->host, "local must leave the host to PGHOST");
	cr_assert_eq(e->port, 0);
	cr_assert_null(e->sslmode);
	cr_assert_str_eq(e->admin.user, "postgres");
	cr_assert_null(e->admin.password);
	cr_assert_str_eq(e->migrator.user, "postgres");
	cr_assert_null(e->migrator.password);
	cr_assert(!e->service_passwords);
	for (size_t i = 0; i < m->nservices; i++)
		cr_assert_null(m->services[i].password, "%s has a password on local", m->services[i].name);
	cr_assert_null(m->roles[0].password);
	cr_assert_str_eq(m->services[0].database, "auth_db_local");
	fl_manifest_free(m);
	free(path);
}

Test(manifest, pcc_without_environment)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, NULL);
	cr_assert_null(m->env);
	cr_assert_str_eq(m->services[0].database, "auth_db_${env}");
	cr_assert_str_eq(m->services[0].owner, "auth_api_user");
	cr_assert_str_eq(m->services[0].password->cmd,
	                 "gcloud secrets versions access latest --secret=auth-db-credentials-${env}");
	fl_manifest_free(m);
	free(path);
}

Test(manifest, unknown_environment)
{
	char *path = pcc_path();
	fl_error *err = NULL;
	cr_assert_null(fl_manifest_load(path, "prd", &err));
	cr_assert_eq(fl_error_count(err), 1);
	cr_assert_eq(err->kind, FL_EINPUT);
	cr_assert_str_eq(err->msg,
	                 "unknown environment 'prd'; did you mean 'prod'? known: devtest, prod, local");
	fl_error_free(err);
	cr_assert_null(fl_manifest_load(path, "staging", &err));
	cr_assert_str_eq(err->msg, "unknown environment 'staging'; known: devtest, prod, local");
	fl_error_free(err);
	free(path);
}

Test(manifest, select)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, "devtest");
	size_t out[7];
	fl_error *err = NULL;
	cr_assert_eq(fl_manifest_select(m, NULL, 0, out, &err), 7);
	for (size_t i = 0; i < 7; i++)
		cr_assert_eq(out[i], i);
	char *some[] = {"task_tracker", "auth", "task_tracker"};
	cr_assert_eq(fl_manifest_select(m, some, 3, out, &err), 2);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 6);
	char *bad[] = {"auht", "auth", "billing"};
	cr_assert_eq(fl_manifest_select(m, bad, 3, out, &err), -1);
	cr_assert_eq(fl_error_count(err), 2);
	cr_assert_str_eq(err->msg, "unknown service 'auht'; did you mean 'auth'? known: auth, client, user, "
	                           "metric_builder, metric_tracker, task_builder, task_tracker");
	cr_assert_str_eq(err->next->msg,
	                 "unknown service 'billing'; known: auth, client, user, metric_builder, "
	                 "metric_tracker, task_builder, task_tracker");
	fl_error_free(err);
	char *names = fl_manifest_env_names(m);
	cr_assert_str_eq(names, "devtest, prod, local");
	free(names);
	fl_manifest_free(m);
	free(path);
}

static const char *mini = "version = 1\n"
                          "project = \"demo\"\n"
                          "[settings]\n"
                          "jobs = 2\n"
                          "local_apply_jobs = 3\n"
                          "lock_timeout = \"1500ms\"\n"
                          "lock_retries = 0\n"
                          "lock_retry_interval = \"250ms\"\n"
                          "migration_lock_timeout = \"2min\"\n"
                          "statement_timeout = \"2 min\"\n"
                          "secret_timeout = 2500\n"
                          "[environments.test]\n"
                          "host = \"/run/${project}-${env}\"\n"
                          "admin = { user = \"admin\", password = { file = \"secrets/admin\" } }\n"
                          "migrator = { user = \"mig\", password = { env = \"MIG_PASSWORD\" } }\n"
                          "[defaults]\n"
                          "database = \"${project}_${service}_${env}\"\n"
                          "owner = \"${service}_owner\"\n"
                          "migrations = \"../svc/${service}/migrations\"\n"
                          "placeholders = { region = \"eu\", tenant = \"t_${service}\", n = 3 }\n"
                          "[services.auth]\n"
                          "description = \"costs $$5, keeps $${literal}\"\n"
                          "placeholders = { region = \"us\", flag = true }\n"
                          "[services.user]\n"
                          "schema = \"users\"\n";

Test(manifest, expansion_defaults_and_paths)
{
	fl_error *err = NULL;
	char *dir;
	fl_manifest *m = load_text(mini, "test", &err, &dir);
	cr_assert_not_null(m, "%s", err ? err->msg : "");
	cr_assert_str_eq(m->env->host, "/run/demo-test");
	const fl_service *a = &m->services[0], *u = &m->services[1];
	cr_assert_str_eq(a->database, "demo_auth_test");
	cr_assert_str_eq(u->database, "demo_user_test");
	cr_assert_str_eq(u->schema, "users");
	cr_assert_str_eq(a->description, "costs $$5, keeps ${literal}");
	char want[1200];
	snprintf(want, sizeof(want), "%s/svc/auth/migrations", dir);
	char *real = realpath(want, NULL);
	cr_assert_str_eq(a->migrations, real);
	free(real);
	cr_assert_str_eq(a->migrations_as_written, "../svc/auth/migrations");
	/* defaults first, the service's own override in place, new ones after */
	cr_assert_eq(a->nplaceholders, 4);
	cr_assert_str_eq(a->placeholders[0].name, "region");
	cr_assert_str_eq(a->placeholders[0].value, "us");
	cr_assert_str_eq(a->placeholders[1].name, "tenant");
	cr_assert_str_eq(a->placeholders[1].value, "t_auth");
	cr_assert_str_eq(a->placeholders[2].name, "n");
	cr_assert_str_eq(a->placeholders[2].value, "3");
	cr_assert_str_eq(a->placeholders[3].name, "flag");
	cr_assert_str_eq(a->placeholders[3].value, "true");
	cr_assert_eq(u->nplaceholders, 3);
	cr_assert_str_eq(u->placeholders[1].value, "t_user");
	/* a secret file is relative to the manifest's folder too */
	snprintf(want, sizeof(want), "%s/m/secrets/admin", dir);
	cr_assert_str_eq(m->env->admin.password->file, want);
	cr_assert_eq(m->env->admin.password->timeout_ms, 2500);
	cr_assert_eq(m->settings.jobs, 2);
	cr_assert_eq(m->settings.local_apply_jobs, 3);
	cr_assert_eq(m->settings.lock_timeout_ms, 1500);
	cr_assert_eq(m->settings.lock_retries, 0);
	cr_assert_eq(m->settings.lock_retry_interval_ms, 250);
	cr_assert_eq(m->settings.migration_lock_timeout_ms, 120000);
	cr_assert_eq(m->settings.statement_timeout_ms, 120000);
	cr_assert_eq(m->settings.secret_timeout_ms, 2500);
	fl_manifest_free(m);
	free(dir);
}

Test(manifest, every_problem_sorted_by_place)
{
	const char *text = "version = 1\n"
	                   "project = \"demo\"\n"
	                   "[environments.test]\n"
	                   "admin = { user = \"admin\" }\n"
	                   "migrator = { user = \"mig\" }\n"
	                   "[services.user]\n"
	                   "database = \"same\"\n"
	                   "owner = \"u\"\n"
	                   "migrations = \"../svc/user/migrations\"\n"
	                   "reads = [\"auth\", \"nobody\"]\n"
	                   "[services.auth]\n"
	                   "database = \"same\"\n"
	                   "owner = \"a\"\n"
	                   "ownr = \"b\"\n"
	                   "migrations = \"../svc/auth/nowhere\"\n";
	fl_error *err = NULL;
	char *dir;
	fl_manifest *m = load_text(text, "test", &err, &dir);
	cr_assert_null(m);
	char *got = errors_text(err);
	char want[2000];
	snprintf(want, sizeof(want),
	         "10:18: service user reads unknown service \"nobody\"\n"
	         "12:12: database \"same\" of service auth is also the database of service user "
	         "(%s/m/flotilla.toml:7:12)\n"
	         "14:1: unknown key \"ownr\" in [services.auth]; did you mean \"owner\"?\n"
	         "15:14: migrations folder \"../svc/auth/nowhere\" of service auth does not exist "
	         "(relative to the manifest's folder)\n",
	         dir);
	cr_assert_str_eq(got, want, "got:\n%s", got);
	free(dir);
	for (fl_error *e = err; e; e = e->next) {
		cr_assert_eq(e->kind, FL_EINPUT);
		cr_assert_not_null(e->file);
	}
	free(got);
	fl_error_free(err);
}

Test(manifest, duplicate_names_the_other_place)
{
	const char *text =
	    "version = 1\nproject = \"d\"\n[environments.test]\nadmin = { user = \"a\" }\n"
	    "migrator = { user = \"m\" }\n[defaults]\nmigrations = \"../svc/auth/migrations\"\n"
	    "database = \"x_${service}\"\n"
	    "[services.auth]\nowner = \"o\"\n[services.user]\nowner = \"o\"\n";
	fl_error *err = NULL;
	char *dir;
	cr_assert_null(load_text(text, "test", &err, &dir));
	char want[1400];
	snprintf(want, sizeof(want),
	         "owner \"o\" of service user is also the owner of service auth (%s/m/flotilla.toml:10:9)",
	         dir);
	cr_assert_str_eq(err->msg, want);
	cr_assert_eq(err->line, 12);
	cr_assert_eq(err->col, 9);
	cr_assert_null(err->next);
	fl_error_free(err);
	free(dir);
}

Test(manifest, without_environment_checks_each_one)
{
	const char *text =
	    "version = 1\nproject = \"d\"\n"
	    "[environments.a]\nadmin = { user = \"a\" }\nmigrator = { user = \"m\" }\n"
	    "[environments.an_environment_with_a_long_name]\nadmin = { user = \"a\" }\n"
	    "migrator = { user = \"m\" }\n"
	    "[defaults]\nmigrations = \"../svc/auth/migrations\"\n"
	    "database = \"${service}_database_of_the_environment_${env}\"\nowner = \"${service}_${envv}\"\n"
	    "[services.auth]\n";
	fl_error *err = NULL;
	cr_assert_null(load_text(text, NULL, &err, NULL));
	char *got = errors_text(err);
	/* the long environment's name is too long; the typo is reported once, not per environment */
	cr_assert_str_eq(
	    got,
	    "11:12: database \"auth_database_of_the_environment_an_environment_with_a_long_name\" of "
	    "service auth is 64 bytes long; PostgreSQL truncates names to 63 bytes\n"
	    "12:9: unknown variable ${envv} in \"owner\"; did you mean ${env}?\n",
	    "got:\n%s", got);
	free(got);
	fl_error_free(err);
	/* environment "a" alone is fine apart from the typo */
	cr_assert_null(load_text(text, "a", &err, NULL));
	cr_assert_eq(fl_error_count(err), 1);
	fl_error_free(err);
}

Test(manifest, missing_file)
{
	fl_error *err = NULL;
	cr_assert_null(fl_manifest_load("/nonexistent/flotilla.toml", "x", &err));
	cr_assert_str_eq(err->file, "/nonexistent/flotilla.toml");
	cr_assert(th_contains(err->msg, "No such file"), "%s", err->msg);
	fl_error_free(err);
}

/* ---- the command ---- */

#define RUN_IN(dir, env, out, err, ...)                                                                      \
	th_run((dir), (env), (out), (err), (const char *const[]){"flotilla", __VA_ARGS__, NULL})

Test(manifest, cli_check_pcc)
{
	char *out, *err;
	cr_assert_eq(RUN_IN(th_top(), NULL, &out, &err, "-m", "manifests/pcc.toml", "-e", "devtest",
	                    "manifest", "check"),
	             0, "stderr: %s", err);
	cr_assert_str_eq(out, "manifest OK: 7 services, 3 environments\n");
	cr_assert_str_empty(err);
	free(out);
	free(err);
	/* no -m: manifests/pcc.toml when there is no flotilla.toml; -e from $FLOTILLA_ENV; options after the
	 * action */
	const char *env[] = {"FLOTILLA_ENV=prod", NULL};
	cr_assert_eq(RUN_IN(th_top(), env, &out, &err, "manifest", "show", "--json"), 0, "stderr: %s", err);
	json_error_t je;
	json_t *doc = json_loads(out, 0, &je);
	cr_assert_not_null(doc, "not JSON: %s\n%s", je.text, out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "environment")), "prod");
	cr_assert_str_eq(json_string_value(json_object_get(doc, "project")), "pcc");
	json_t *svcs = json_object_get(doc, "services");
	cr_assert_eq(json_array_size(svcs), 7);
	for (size_t i = 0; i < 7; i++) {
		json_t *s = json_array_get(svcs, i);
		char want[128];
		cr_assert_str_eq(json_string_value(json_object_get(s, "name")), seven[i]);
		snprintf(want, sizeof(want), "%s_db_prod", seven[i]);
		cr_assert_str_eq(json_string_value(json_object_get(s, "database")), want);
		snprintf(want, sizeof(want), "%s_api_user", seven[i]);
		cr_assert_str_eq(json_string_value(json_object_get(s, "owner")), want);
		cr_assert_str_eq(json_string_value(json_object_get(s, "schema")), "public");
		const char *pw = json_string_value(json_object_get(s, "password"));
		cr_assert(pw && strncmp(pw, "<env ", 5) == 0, "%s", pw ? pw : "null");
	}
	json_t *auth = json_array_get(svcs, 0);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(auth, "reads"), 0)), "user");
	cr_assert_str_eq(json_string_value(json_object_get(auth, "migrations")),
	                 "../services/auth/migrations");
	json_t *envs = json_object_get(doc, "environments");
	cr_assert_eq(json_array_size(envs), 3);
	json_t *prod = json_array_get(envs, 1);
	cr_assert_eq(json_integer_value(json_object_get(prod, "port")), 5434);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(prod, "admin"), "user")),
	                 "pcc_admin");
	json_t *roles = json_object_get(doc, "roles");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(roles, 0), "name")),
	                 "bigquery_sync");
	json_decref(doc);
	free(out);
	free(err);
}

Test(manifest, cli_show_text)
{
	char *out, *err;
	cr_assert_eq(RUN_IN(th_top(), NULL, &out, &err, "-e", "local", "manifest", "show"), 0, "%s", err);
	cr_assert(th_contains(out, "environment  local\n"), "%s", out);
	cr_assert(th_contains(out, "  auth: Authentication"), "%s", out);
	cr_assert(th_contains(out, "    database        metric_tracker_db_local\n"), "%s", out);
	cr_assert(th_contains(out, "    reads           task_builder\n"), "%s", out);
	cr_assert(th_contains(out, "    host            (libpq default: PGHOST)\n"), "%s", out);
	cr_assert(th_contains(out,
	                      "    admin           pcc_admin, password <env PCC_ADMIN_PASSWORD or cmd gcloud "
	                      "secrets versions access latest --secret=alloydb-admin-credentials-devtest>\n"),
	          "%s", out);
	free(out);
	free(err);
}

Test(manifest, cli_default_manifest_and_usage)
{
	char *dir = th_tmpdir();
	char *out, *err;
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest", "check"), 2);
	cr_assert_str_eq(err, "flotilla: no manifest: neither flotilla.toml nor manifests/pcc.toml is here; "
	                      "name one with -m FILE\n");
	free(out);
	free(err);
	th_write(dir, "flotilla.toml",
	         "version = 1\nproject = \"x\"\n[environments.only]\nadmin = { user = \"a\" }\n"
	         "migrator = { user = \"m\" }\n[services.s]\ndatabase = \"s_db\"\nowner = \"s_owner\"\n"
	         "migrations = \".\"\n");
	th_write(dir, "manifests/pcc.toml", "this is not TOML\n");
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest", "check"), 0, "%s", err);
	cr_assert_str_eq(out, "manifest OK: 1 service, 1 environment\n");
	free(out);
	free(err);
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest", "check", "--secrets"), 2);
	cr_assert_str_eq(err,
	                 "flotilla: no environment: use -e ENV or set FLOTILLA_ENV (flotilla.toml defines: "
	                 "only)\n");
	free(out);
	free(err);
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest"), 2);
	cr_assert(th_contains(err, "'manifest' needs an action: check or show"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest", "shwo"), 2);
	cr_assert(th_contains(err, "unknown action 'shwo'; use check or show"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "manifest", "check", "--json"), 2);
	free(out);
	free(err);
	cr_assert_eq(RUN_IN(dir, NULL, &out, &err, "-e", "nope", "manifest", "show"), 2);
	cr_assert_str_eq(err, "flotilla.toml: unknown environment 'nope'; known: only\n");
	cr_assert_str_empty(out);
	free(out);
	free(err);
	free(dir);
}

/*
 * The corpus: tests/manifests/bad/NAME.toml with NAME.expected holding the
 * exact stderr of `flotilla -m NAME.toml -e devtest manifest check` run in
 * that folder. Every mismatch is listed, not just the first.
 */
Test(manifest, bad_corpus, .timeout = 120)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/manifests/bad", th_top());
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s", dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".toml") == 0) {
			names = realloc(names, (n + 1) * sizeof(*names));
			names[n++] = strndup(de->d_name, l - 5);
		}
	}
	closedir(d);
	cr_assert_geq(n, 30, "only %zu broken manifests", n);
	size_t failures = 0;
	char *report = calloc(1, 1);
	for (size_t i = 0; i < n; i++) {
		char file[300], exp_path[1400];
		snprintf(file, sizeof(file), "%s.toml", names[i]);
		snprintf(exp_path, sizeof(exp_path), "%s/%s.expected", dir, names[i]);
		struct stat st;
		cr_assert(stat(exp_path, &st) == 0, "%s has no .expected file", file);
		char *want = th_read(exp_path);
		char *out, *err;
		int rc = RUN_IN(dir, NULL, &out, &err, "-m", file, "-e", "devtest", "manifest", "check");
		if (rc != 2 || strcmp(err, want) != 0 || *out || !*want) {
			failures++;
			size_t need = strlen(report) + strlen(want) + strlen(err) + strlen(out) + 400;
			report = realloc(report, need);
			sprintf(report + strlen(report), "--- %s: exit %d (want 2)\nwant:\n%sgot:\n%s%s%s",
			        file, rc, want, err, *out ? "stdout: " : "", out);
		}
		free(want);
		free(out);
		free(err);
		free(names[i]);
	}
	free(names);
	cr_assert_eq(failures, 0, "%zu of %zu broken manifests differ:\n%s", failures, n, report);
	free(report);
}

Test(manifest, unused_passwords_are_still_checked)
{
	const char *text =
	    "version = 1\nproject = \"d\"\n"
	    "[environments.local]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	    "service_passwords = false\n"
	    "[services.auth]\ndatabase = \"auth_db\"\nowner = \"auth_owner\"\n"
	    "migrations = \"../svc/auth/migrations\"\npassword = { env = \"AUTH-PW\" }\n";
	fl_error *err = NULL;
	cr_assert_null(load_text(text, "local", &err, NULL));
	char *got = errors_text(err);
	cr_assert_str_eq(got,
	                 "11:20: environment variable name \"AUTH-PW\" is not valid: it must match "
	                 "[A-Za-z_][A-Za-z0-9_]*\n",
	                 "got:\n%s", got);
	free(got);
	fl_error_free(err);
}

Test(manifest, drift_defaults)
{
	char *path = pcc_path();
	fl_manifest *m = load_ok(path, "devtest");
	/* the providers' own schemas are left out unless [drift] says otherwise */
	bool vacuum = false, cron = false;
	for (size_t i = 0; i < m->settings.ndrift_ignore_schemas; i++) {
		vacuum |= strcmp(m->settings.drift_ignore_schemas[i], "google_vacuum_mgmt") == 0;
		cron |= strcmp(m->settings.drift_ignore_schemas[i], "cron") == 0;
	}
	cr_assert(vacuum && cron);
	cr_assert(m->settings.drift_column_order);
	cr_assert(m->settings.drift_comments);
	fl_manifest_free(m);
	free(path);
	fl_error *err = NULL;
	m = load_text(
	    "version = 1\nproject = \"p\"\n[environments.e]\nadmin = { user = \"a\" }\n"
	    "migrator = { user = \"m\" }\n[defaults]\nmigrations = \"../svc/${service}/migrations\"\n"
	    "database = \"${service}_db\"\nowner = \"${service}_owner\"\n"
	    "[drift]\nignore_schemas = [\"x\"]\ncomments = false\n[services.auth]\n",
	    "e", &err, NULL);
	cr_assert(m, "%s", err ? err->msg : "");
	cr_assert_eq(m->settings.ndrift_ignore_schemas, 1);
	cr_assert_str_eq(m->settings.drift_ignore_schemas[0], "x");
	cr_assert(!m->settings.drift_comments);
	cr_assert(m->settings.drift_column_order);
	fl_manifest_free(m);
}

/* ---- tenants (tenants.h): one service per tenant of a template ---- */

static const char *tenants_text = "version = 1\n"
                                  "project = \"demo\"\n"
                                  "[environments.test]\n"
                                  "admin = { user = \"admin\" }\n"
                                  "migrator = { user = \"mig\" }\n"
                                  "[defaults]\n"
                                  "database = \"${service}_${env}\"\n"
                                  "owner = \"${service}_owner\"\n"
                                  "migrations = \"../svc/${service}/migrations\"\n"
                                  "[services.auth]\n"
                                  "[services.user]\n"
                                  "tenants = [\"acme\", \"globex\", \"initech_2\"]\n"
                                  "database = \"${service}_${tenant}_${env}\"\n"
                                  "owner = \"${tenant}_owner\"\n"
                                  "schema = \"t_${tenant}\"\n"
                                  "description = \"users of ${tenant}\"\n"
                                  "reads = [\"auth\"]\n";

Test(manifest, tenants_expand_into_one_service_each)
{
	fl_error *err = NULL;
	char *dir;
	fl_manifest *m = load_text(tenants_text, "test", &err, &dir);
	cr_assert_not_null(m, "%s", err ? err->msg : "");
	cr_assert_eq(m->nservices, 4);
	cr_assert_str_eq(m->services[0].name, "auth");
	cr_assert_null(m->services[0].tmpl);
	const char *const t[] = {"acme", "globex", "initech_2"};
	for (size_t i = 0; i < 3; i++) {
		const fl_service *s = &m->services[1 + i];
		char want[128];
		snprintf(want, sizeof(want), "user[%s]", t[i]);
		cr_assert_str_eq(s->name, want);
		cr_assert_str_eq(s->tmpl, "user");
		cr_assert_str_eq(s->tenant, t[i]);
		snprintf(want, sizeof(want), "user_%s_test", t[i]);
		cr_assert_str_eq(s->database, want);
		snprintf(want, sizeof(want), "%s_owner", t[i]);
		cr_assert_str_eq(s->owner, want);
		snprintf(want, sizeof(want), "t_%s", t[i]);
		cr_assert_str_eq(s->schema, want);
		snprintf(want, sizeof(want), "users of %s", t[i]);
		cr_assert_str_eq(s->description, want);
		/* ${service} is the template: every tenant migrates the one folder */
		cr_assert_str_eq(s->migrations_as_written, "../svc/user/migrations");
		cr_assert_eq(s->nreads, 1);
		cr_assert_str_eq(s->reads[0], "auth");
	}
	size_t out[4];
	char *by_tmpl[] = {"user"};
	cr_assert_eq(fl_manifest_select(m, by_tmpl, 1, out, &err), 3);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[2], 3);
	char *by_name[] = {"user[globex]", "auth"};
	cr_assert_eq(fl_manifest_select(m, by_name, 2, out, &err), 2);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 2);
	char *bad[] = {"user[umbrella]"};
	cr_assert_eq(fl_manifest_select(m, bad, 1, out, &err), -1);
	cr_assert_str_eq(err->msg, "unknown service 'user[umbrella]'; known: auth, "
	                           "user[acme], user[globex], user[initech_2]");
	fl_error_free(err);
	fl_manifest_free(m);
	free(dir);
}

Test(manifest, tenants_file_one_a_line)
{
	char *dir = th_tmpdir();
	th_write(dir, "m/tenants.txt", "# tenants of user\nacme\n\n  globex  \n");
	th_write(dir, "svc/user/migrations/.keep", "");
	th_write(dir, "m/flotilla.toml",
	         "version = 1\nproject = \"d\"\n[environments.test]\nadmin = { user = \"a\" }\n"
	         "migrator = { user = \"b\" }\n"
	         "[services.user]\ntenants_file = \"tenants.txt\"\ndatabase = \"db_${tenant}\"\n"
	         "owner = \"o_${tenant}\"\nmigrations = \"../svc/user/migrations\"\n");
	char path[1024];
	snprintf(path, sizeof(path), "%s/m/flotilla.toml", dir);
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, "test", &err);
	cr_assert_not_null(m, "%s", err ? err->msg : "");
	cr_assert_eq(m->nservices, 2);
	cr_assert_str_eq(m->services[0].name, "user[acme]");
	cr_assert_str_eq(m->services[1].name, "user[globex]");
	cr_assert_str_eq(m->services[1].database, "db_globex");
	fl_manifest_free(m);

	/* problems in the file are reported at the file's line and column */
	th_write(dir, "m/tenants.txt", "acme\n  bad-name\nAcme\nacme\n");
	m = fl_manifest_load(path, "test", &err);
	cr_assert_null(m);
	char *got = fl_error_format(err);
	char want[4096];
	snprintf(want, sizeof(want),
	         "%s/m/tenants.txt:2:3: tenant \"bad-name\" may hold only letters, digits "
	         "and _ (it goes into database, role and schema names)",
	         dir);
	cr_assert(th_contains(got, want), "%s", got);
	fl_error *e3 = err->next, *e4 = e3 ? e3->next : NULL;
	cr_assert_not_null(e4);
	cr_assert_eq(e3->line, 3);
	snprintf(want, sizeof(want),
	         "tenant \"Acme\" differs from tenant \"acme\" (%s/m/tenants.txt:1:1) only in case; use one "
	         "spelling",
	         dir);
	cr_assert_str_eq(e3->msg, want);
	snprintf(want, sizeof(want),
	         "tenant \"acme\" is listed twice (first at %s/m/tenants.txt:1:1); list "
	         "each tenant once",
	         dir);
	cr_assert_str_eq(e4->msg, want);
	cr_assert_eq(e4->line, 4);
	cr_assert_eq(e4->col, 1);
	free(got);
	fl_error_free(err);

	/* a missing file is reported where the manifest names it */
	snprintf(path, sizeof(path), "%s/m/tenants.txt", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/m/flotilla.toml", dir);
	m = fl_manifest_load(path, "test", &err);
	cr_assert_null(m);
	cr_assert_eq(err->line, 7);
	cr_assert_eq(err->col, 16);
	snprintf(want, sizeof(want),
	         "tenants_file \"%s/m/tenants.txt\" cannot be read: No such file or directory", dir);
	cr_assert_str_eq(err->msg, want);
	fl_error_free(err);
	free(dir);
}

Test(manifest, tenants_problems_at_their_place)
{
	const char *text = "version = 1\n"
	                   "project = \"d\"\n"
	                   "[environments.test]\n"
	                   "admin = { user = \"a\" }\n"
	                   "migrator = { user = \"b\" }\n"
	                   "[defaults]\n"
	                   "migrations = \"../svc/${service}/migrations\"\n"
	                   "[services.auth]\n"
	                   "database = \"auth_${tenant}\"\n"
	                   "owner = \"auth_owner\"\n"
	                   "[services.user]\n"
	                   "tenants = [\"acme\", \"ac me\", 3, \"acme\", \"globex\"]\n"
	                   "database = \"user_db\"\n"
	                   "owner = \"${tenant}_owner\"\n"
	                   "[services.empty]\n"
	                   "tenants = []\n"
	                   "tenants_file = \"t.txt\"\n"
	                   "database = \"e_${tenant}\"\n"
	                   "owner = \"e_${tenant}\"\n";
	fl_error *err = NULL;
	char *dir;
	fl_manifest *m = load_text(text, "test", &err, &dir);
	cr_assert_null(m);
	char *got = errors_text(err);
	char first[1100], want[4096];
	snprintf(first, sizeof(first), "%s/m/flotilla.toml:12:12", dir);
	snprintf(want, sizeof(want),
	         "9:12: ${tenant} is only known in a service with \"tenants\" or \"tenants_file\"\n"
	         "12:20: tenant \"ac me\" may hold only letters, digits and _ (it goes into database, "
	         "role and schema names)\n"
	         "12:29: \"tenants\" must hold tenant names (strings), not an integer\n"
	         "12:32: tenant \"acme\" is listed twice (first at "
	         "%s); list each tenant once\n"
	         "13:12: database \"user_db\" of service user[globex] is also the database of service "
	         "user[acme] (both from this one value: make it differ per tenant with ${tenant})\n"
	         "16:11: \"tenants\" is empty: list at least one tenant, or drop the key\n"
	         "17:16: service empty has both \"tenants\" and \"tenants_file\"; keep one\n",
	         first);
	cr_assert_str_eq(got, want, "got:\n%s", got);
	free(dir);
	free(got);
	fl_error_free(err);
}
