/*
 * import: `flotilla import alembic SERVICE [--alembic-dir DIR] [--config FILE]`.
 * Writes the service's migrations folder from its Alembic revisions
 * (core/alembic). Touches no database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alembic.h"
#include "cli.h"
#include "manifest.h"
#include "options.h"

/* The folder that holds `path` ("." for a bare name), new string. */
static char *dir_of(const char *path)
{
	const char *s = strrchr(path, '/');
	if (!s)
		return fl_strdup(".");
	return fl_strndup(path, s == path ? 1 : (size_t)(s - path));
}

int cmd_import(int argc, char **argv)
{
	struct fl_import_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	const char *dir = a.alembic_dir, *config = a.config;
	if (optind >= argc || strcmp(argv[optind], "alembic") != 0)
		return fl_cli_usage(argc, argv,
		                    "import what? flotilla imports from Alembic: "
		                    "'flotilla import alembic SERVICE'");
	if (argc - optind != 2)
		return fl_cli_usage(argc, argv,
		                    "name the one service to import: 'flotilla import alembic SERVICE'");
	fl_manifest *m = fl_cli_load_manifest(false);
	if (!m)
		return FL_EXIT_USAGE;
	const fl_service *svc = fl_manifest_service(m, argv[optind + 1]);
	if (!svc) {
		fl_manifest_free(m);
		return fl_cli_usage_error("import", "no service %s in the manifest", argv[optind + 1]);
	}
	/* defaults: services/auth/migrations beside services/auth/alembic and services/auth/alembic.ini */
	char *svc_dir = dir_of(svc->migrations);
	char *def_dir = fl_asprintf("%s/alembic", svc_dir);
	char *def_cfg = NULL, *def_disp = NULL;
	const char *disp = dir;
	if (!dir) {
		/* named as the manifest names the migrations folder, as every message about its files does */
		char *w = dir_of(svc->migrations_as_written);
		def_disp = fl_asprintf("%s/alembic", w);
		free(w);
		dir = def_dir;
		disp = def_disp;
	}
	if (!config) {
		char *up = dir_of(dir);
		def_cfg = fl_asprintf("%s/alembic.ini", up);
		free(up);
		config = def_cfg;
	}
	fl_alembic_import_opts o = {.script_dir = dir,
	                            .display_dir = disp,
	                            .config = config,
	                            .out_dir = svc->migrations,
	                            .out_display = svc->migrations_as_written};
	fl_alembic_import_result res;
	fl_error *err = NULL;
	rc = FL_EXIT_OK;
	if (fl_alembic_import(&o, &res, &err) != 0) {
		fl_cli_print_errors(err);
		fprintf(stderr, "flotilla: nothing was written; fix the problems above and import again\n");
		rc = fl_cli_exit_code(err);
		fl_error_free(err);
	} else {
		for (size_t i = 0; i < res.nwritten; i++)
			printf("wrote %s/%s\n", svc->migrations_as_written, res.written[i]);
		for (size_t i = 0; i < res.nno_undo; i++)
			printf("note: %s\n", res.no_undo[i]);
		printf("%s: %zu Alembic revisions imported into %s (%zu files written, %zu already there)\n",
		       svc->name, res.nrevs, svc->migrations_as_written, res.nwritten, res.nsame);
		fl_alembic_import_result_clear(&res);
	}
	free(svc_dir);
	free(def_dir);
	free(def_cfg);
	free(def_disp);
	fl_manifest_free(m);
	return rc;
}
