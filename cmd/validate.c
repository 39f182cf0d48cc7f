/*
 * validate: history against files per service; exit 3 on any mismatch.
 * The options and output shared with the other fleet commands are in fleetcmd.c.
 */
#include "cli.h"
#include "fleet.h"

int cmd_validate(int argc, char **argv)
{
	return fl_cli_fleet(argc, argv, FL_FLEET_VALIDATE);
}
