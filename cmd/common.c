/*
 * common: what several subcommands do the same way: finding and loading the
 * manifest for the chosen environment, naming the commit that changed an
 * applied migration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

fl_manifest *fl_cli_manifest_try(bool need_env, fl_error **err)
{
	const char *path = fl_cli_manifest_path();
	if (!path) {
		*err = fl_error_new("no manifest: neither flotilla.toml nor manifests/pcc.toml is here; "
		                    "name one with -m FILE");
		return NULL;
	}
	fl_manifest *m = fl_manifest_load(path, fl_cli.env, err);
	if (m && need_env && !m->env) {
		char *known = fl_manifest_env_names(m);
		*err = fl_error_new("no environment: use -e ENV or set FLOTILLA_ENV (%s defines: %s)", path,
		                    known);
		free(known);
		fl_manifest_free(m);
		return NULL;
	}
	return m;
}

fl_manifest *fl_cli_load_manifest(bool need_env)
{
	fl_error *err = NULL;
	fl_manifest *m = fl_cli_manifest_try(need_env, &err);
	if (!m) {
		/* a problem with a place is "file:line:col: ...", for editors; one without says who */
		for (const fl_error *e = err; e; e = e->next) {
			char *s = fl_error_format(e);
			fprintf(stderr, "%s%s\n", e->file ? "" : "flotilla: ", s);
			free(s);
		}
		fl_error_free(err);
	}
	return m;
}
