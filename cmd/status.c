/*
 * status: applied and pending migrations per service, like flyway info.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_status(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_STATUS);
}
