/*
 * tenants: one service template in the manifest that stands for one service
 * per tenant (`tenants = ["acme", "globex"]` or `tenants_file = "tenants.txt"`
 * in [services.NAME]).
 *
 * Each tenant becomes a service named "NAME[TENANT]" (e.g. "billing[acme]"):
 * brackets never occur in a plain service name, so an expansion can never
 * collide with a service written by hand, and "billing" still names the
 * template (fl_tenants_of). In the template's strings ${service} is NAME and
 * ${tenant} is TENANT (manifest.c does the expansion).
 *
 * A tenant name goes into database, role and schema names: it may hold only
 * ASCII letters, digits and _, at most FL_TENANT_MAX_NAME bytes, and no two
 * tenants of one template may differ only in case (PostgreSQL keeps quoted
 * names as written, so they would be two databases a reader cannot tell
 * apart). Every problem is returned, each at its file:line:col: the array
 * element in the manifest, or the line of the tenant file.
 */
#ifndef FL_TENANTS_H
#define FL_TENANTS_H
#include <stdbool.h>
#include <stddef.h>
#include "error.h"
#include "toml.h"

#define FL_TENANT_MAX_NAME 63

typedef struct {
	char *name;
	int line, col; /* in the manifest (array) or the tenant file */
} fl_tenant;

typedef struct {
	fl_tenant *v;
	size_t n;
	char *file; /* where they were written: the manifest path, or the tenant file as shown */
} fl_tenants;

/*
 * `tenants = [...]`: arr is the array value of the manifest at `path`.
 * Returns 0, or -1 with every problem appended to *errs (out holds the good
 * ones either way; clear it with fl_tenants_clear).
 */
int fl_tenants_from_array(const fl_toml_value *arr, const char *path, fl_tenants *out, fl_error **errs);
/*
 * `tenants_file = "..."`: one tenant a line; surrounding blanks are ignored,
 * as are empty lines and lines whose first non-blank is '#'. `path` is opened,
 * `shown` names it in messages. `v` is the tenants_file value, where a file
 * that cannot be read or holds no tenant is reported.
 */
int fl_tenants_from_file(const char *path, const char *shown, const fl_toml_value *v, const char *manifest,
                         fl_tenants *out, fl_error **errs);
void fl_tenants_clear(fl_tenants *t);

/* "billing[acme]". Caller frees. */
char *fl_tenants_service_name(const char *tmpl, const char *tenant);
/* Whether `service` is a tenant of template `tmpl` ("billing[acme]" of "billing"). */
bool fl_tenants_of(const char *service, const char *tmpl);
#endif
