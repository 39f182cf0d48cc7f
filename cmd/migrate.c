/*
 * migrate: provision, then apply every selected service's pending migrations in parallel.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_migrate(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_MIGRATE);
}
