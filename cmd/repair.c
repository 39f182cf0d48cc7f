/*
 * repair: drop failed history rows, realign checksums and descriptions.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_repair(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_REPAIR);
}
