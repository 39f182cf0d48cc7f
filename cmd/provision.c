/*
 * provision: `flotilla provision [--dry-run] [--reset-passwords] [--prune]`.
 * Roles, databases, memberships and grants of the manifest's environment,
 * made so by core/provision. Each step's description is printed as it runs
 * ("no changes" when there is none); --dry-run prints the steps as a psql
 * script instead, verifiers shown as '<scram-sha-256 verifier>'. Extra
 * privileges are warnings on stderr unless --prune revokes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "orchestrate.h"
#include "manifest.h"
#include "provision.h"

struct printer {
	bool dry_run;
	const char *db; /* the database and role the script is in (dry run) */
	const char *role;
	char *db_own, *role_own;
};

static void on_step(void *ctx, const fl_provision_step *s)
{
	struct printer *p = ctx;
	if (!p->dry_run) {
		if (s->database)
			printf("%s: %s\n", s->database, s->desc);
		else
			printf("%s\n", s->desc);
		fflush(stdout);
		return;
	}
	bool same_db = s->database ? (p->db && strcmp(p->db, s->database) == 0) : p->db == NULL;
	if (!same_db) {
		char *q = fl_pg_ident_plain(s->database ? s->database : "postgres");
		printf("\n\\connect %s\n", q);
		free(q);
		free(p->db_own);
		p->db_own = s->database ? fl_strdup(s->database) : NULL;
		p->db = p->db_own;
		free(p->role_own);
		p->role = p->role_own = NULL;
	}
	bool same_role = s->role ? (p->role && strcmp(p->role, s->role) == 0) : p->role == NULL;
	if (!same_role) {
		if (s->role) {
			char *q = fl_pg_ident_plain(s->role);
			printf("SET ROLE %s;\n", q);
			free(q);
		} else {
			printf("RESET ROLE;\n");
		}
		free(p->role_own);
		p->role_own = s->role ? fl_strdup(s->role) : NULL;
		p->role = p->role_own;
	}
	printf("-- %s\n%s;\n", s->desc, s->sql);
}

static void print_warnings(const fl_error *w)
{
	for (; w; w = w->next)
		fprintf(stderr, "warning: %s\n", w->msg);
}

int cmd_provision(int argc, char **argv)
{
	struct fl_provision_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	fl_provision_opts o = {.dry_run = a.dry_run, .reset_passwords = a.reset_passwords, .prune = a.prune};

	fl_manifest *m = fl_cli_load_manifest(true);
	if (!m)
		return FL_EXIT_USAGE;
	fl_error *warnings = NULL;
	fl_provision_admin admin;
	fl_error *err = fl_provision_admin_init(&admin, m->env, &warnings);
	print_warnings(warnings);
	fl_error_free(warnings);
	if (err) {
		fl_cli_print_errors(err);
		int rc = fl_cli_exit_code(err);
		fl_error_free(err);
		fl_manifest_free(m);
		return rc;
	}
	fl_provision_desired *d = fl_provision_desired_from_manifest(m);
	struct printer pr = {.dry_run = o.dry_run};
	o.on_step = on_step;
	o.ctx = &pr;
	o.jobs = m->settings.jobs;
	o.handle_signals = true;
	fl_provision_result *res = NULL;
	fl_orch_signals_watch(true); /* between the shared part and the databases too */
	err = fl_provision_run(d, &admin.target, &o, &res);
	fl_orch_signals_watch(false);
	fl_provision_admin_clear(&admin);
	print_warnings(d->warnings);
	for (size_t i = 0; i < res->nwarnings; i++)
		fprintf(stderr, "warning: %s\n", res->warnings[i]);
	if (!err && res->nsteps == 0)
		printf("no changes\n");
	rc = FL_EXIT_OK;
	if (err) {
		fl_cli_print_errors(err);
		rc = fl_orch_interrupted() ? FL_EXIT_INTERRUPTED : fl_cli_exit_code(err);
		fl_error_free(err);
	}
	free(pr.db_own);
	free(pr.role_own);
	fl_provision_result_free(res);
	fl_provision_desired_free(d);
	fl_manifest_free(m);
	return rc;
}
