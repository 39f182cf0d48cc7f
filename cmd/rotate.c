/*
 * rotate: `flotilla rotate SERVICE...`. For each service: a new password
 * (core/provision), handed on stdin to the service's password_sink from the
 * manifest, and set on the server (as a SCRAM verifier) only when the sink
 * succeeded. A failed sink leaves the old password working; the run goes on
 * with the other services and exits 1. The password is never printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "provision.h"

int cmd_rotate(int argc, char **argv)
{
	struct fl_none_args a;
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	if (optind >= argc)
		return fl_cli_usage_error("rotate",
		                          "name the services to rotate (e.g. 'flotilla rotate auth')");

	fl_manifest *m = fl_cli_load_manifest(true);
	if (!m)
		return FL_EXIT_USAGE;
	rc = FL_EXIT_OK;
	size_t *sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int n = fl_manifest_select(m, argv + optind, (size_t)(argc - optind), sel, &err);
	if (n < 0) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		rc = FL_EXIT_USAGE;
		goto out;
	}
	if (!m->env->service_passwords) {
		fprintf(stderr,
		        "flotilla: environment %s sets service_passwords = false: there is no password to "
		        "rotate\n",
		        m->env->name);
		rc = FL_EXIT_USAGE;
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!m->services[sel[i]].password_sink) {
			fprintf(stderr,
			        "flotilla: service %s has no password_sink in %s: nowhere to store a new "
			        "password\n",
			        m->services[sel[i]].name, m->path);
			rc = FL_EXIT_USAGE;
		}
	if (rc != FL_EXIT_OK)
		goto out;

	fl_error *warnings = NULL;
	fl_provision_admin admin;
	err = fl_provision_admin_init(&admin, m->env, &warnings);
	for (fl_error *w = warnings; w; w = w->next)
		fprintf(stderr, "warning: %s\n", w->msg);
	fl_error_free(warnings);
	if (err) {
		fl_cli_print_errors(err);
		rc = fl_cli_exit_code(err);
		fl_error_free(err);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const fl_service *s = &m->services[sel[i]];
		err = fl_provision_rotate(&admin.target, s->owner, s->password_sink, 0);
		if (err) {
			fl_error_prefix(err, "service %s", s->name);
			fl_cli_print_errors(err);
			fl_error_free(err);
			rc = FL_EXIT_FAILED;
			continue;
		}
		printf("%s: new password stored by the sink and set for role %s\n", s->name, s->owner);
		fflush(stdout);
	}
	fl_provision_admin_clear(&admin);
out:
	free(sel);
	fl_manifest_free(m);
	return rc;
}
