/*
 * common: what several subcommands do the same way: finding and loading the
 * manifest for the chosen environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "manifest.h"

const char *fl_cli_manifest_path(void)
{
	if (fl_cli.manifest)
		return fl_cli.manifest;
	if (access("flotilla.toml", F_OK) == 0)
		return "flotilla.toml";
	if (access("manifests/pcc.toml", F_OK) == 0)
		return "manifests/pcc.toml";
	return NULL;
}

fl_manifest *fl_cli_load_manifest(bool need_env)
{
	const char *path = fl_cli_manifest_path();
	if (!path) {
		fprintf(stderr,
		        "flotilla: no manifest: neither flotilla.toml nor manifests/pcc.toml is here; "
		        "name one with -m FILE\n");
		return NULL;
	}
	fl_error *err = NULL;
	fl_manifest *m = fl_manifest_load(path, fl_cli.env, &err);
	if (!m) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		return NULL;
	}
	if (need_env && !m->env) {
		char *known = fl_manifest_env_names(m);
		fprintf(stderr, "flotilla: no environment: use -e ENV or set FLOTILLA_ENV (%s defines: %s)\n",
		        path, known);
		free(known);
		fl_manifest_free(m);
		return NULL;
	}
	return m;
}
