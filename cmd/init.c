/*
 * init: `flotilla init --from-flyway FILE... [-o FILE] [--force]` writes a
 * manifest from the services' Flyway configuration files (see
 * core/flywayconf.h) and lists what it could not translate.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flywayconf.h"
#include "options.h"

int cmd_init(int argc, char **argv)
{
	struct fl_init_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	bool from_flyway = a.from_flyway, force = a.force;
	const char *output = a.output ? a.output : "flotilla.toml";
	if (!from_flyway)
		return fl_cli_usage(argc, argv, "say where from: 'flotilla init --from-flyway FILE...'");
	if (optind >= argc)
		return fl_cli_usage(argc, argv,
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
