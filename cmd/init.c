/*
 * init: `flotilla init --from-flyway FILE... [-o FILE] [--force]` writes a
 * manifest from the services' Flyway configuration files (see
 * core/flywayconf.h) and lists what it could not translate.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flywayconf.h"

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    FL_CLI_GLOBAL_LONGOPTS,
	    {"from-flyway", no_argument, NULL, 'F'},
	    {"output", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool from_flyway = false, force = false;
	const char *output = "flotilla.toml";
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:e:o:h", opts, NULL)) != -1) {
		if (fl_cli_global_opt(c, optarg))
			continue;
		switch (c) {
		case 'F':
			from_flyway = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			printf("usage: flotilla init --from-flyway FILE... [-o FILE] [--force]\n\n"
			       "Writes a manifest (default flotilla.toml) from the services' Flyway "
			       "configuration files\n"
			       "(flyway.conf or flyway.toml, one per service: src/auth-api/flyway.conf is "
			       "service auth),\n"
			       "and lists on stderr every setting it could not translate. Passwords written "
			       "${VAR} become\n"
			       "{ env = \"VAR\" }; no secret is ever copied.\n");
			return FL_EXIT_OK;
		case ':':
			return fl_cli_usage_error("init", "option '%s' needs a value", argv[optind - 1]);
		default:
			return fl_cli_usage_error("init", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!from_flyway)
		return fl_cli_usage_error("init", "say where from: 'flotilla init --from-flyway FILE...'");
	if (optind >= argc)
		return fl_cli_usage_error("init",
		                          "name the Flyway configuration files "
		                          "(e.g. 'flotilla init --from-flyway src/*-api/flyway.conf')");
	fl_flywayconf_result r;
	fl_error *err = NULL;
	if (fl_flywayconf_init((const char *const *)argv + optind, (size_t)(argc - optind), output, force, &r,
	                       &err) != 0) {
		fl_cli_print_errors(err);
		int rc = fl_cli_exit_code(err);
		fl_error_free(err);
		return rc;
	}
	for (size_t i = 0; i < r.nnotes; i++)
		fprintf(stderr, "flotilla: not translated: %s\n", r.notes[i]);
	printf("wrote %s with %d service%s; check it with 'flotilla manifest check'\n", output, argc - optind,
	       argc - optind == 1 ? "" : "s");
	fl_flywayconf_result_clear(&r);
	return FL_EXIT_OK;
}
