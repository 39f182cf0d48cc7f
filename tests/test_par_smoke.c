/* The threaded suite runner: runs the flotilla build it is given. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(par_smoke, binary_runs)
{
	char *out, *err;
	int rc = th_run(NULL, NULL, &out, &err, (const char *const[]){"flotilla", "--version", NULL});
	cr_assert_eq(rc, 0, "stderr: %s", err);
	cr_assert(strncmp(out, "flotilla ", 9) == 0);
	free(out);
	free(err);
}
