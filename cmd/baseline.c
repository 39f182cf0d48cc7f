/*
 * baseline: mark an existing database as being at a version.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_baseline(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_BASELINE);
}
