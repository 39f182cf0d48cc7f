/*
 * plan: what migrate would do, per service, without doing it.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_plan(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_PLAN);
}
