#include "tenants.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

static bool tenant_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A name shown in a message: quoted, anything outside the alphabet as \xNN. */
static char *shown_name(const char *s, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			fl_buf_printf(&b, "\\x%02x", c);
		else
			fl_buf_putc(&b, (char)c);
	}
	fl_buf_putc(&b, '"');
	return fl_buf_detach(&b);
}

/* Checks one name and appends it to out; false after reporting. */
static bool add(fl_tenants *out, const char *s, size_t n, int line, int col, fl_error **errs)
{
	const char *f = out->file;
	char *q = shown_name(s, n);
	bool ok = false;
	if (n == 0) {
		fl_error_append(errs, fl_error_at(f, line, col, "a tenant name is empty"));
	} else if (n > FL_TENANT_MAX_NAME) {
		fl_error_append(errs, fl_error_at(f, line, col,
		                                  "tenant %s is %zu bytes long; at most %d (it goes into "
		                                  "database and role names, which PostgreSQL truncates)",
		                                  q, n, FL_TENANT_MAX_NAME));
	} else {
		size_t i = 0;
		while (i < n && tenant_char(s[i]))
			i++;
		if (i < n) {
			fl_error_append(errs, fl_error_at(f, line, col,
			                                  "tenant %s may hold only letters, digits and _ (it "
			                                  "goes into database, role and schema names)",
			                                  q));
		} else {
			ok = true;
			/* A linear scan: a template has at most thousands of tenants, checked once per load
			 */
			for (size_t j = 0; j < out->n && ok; j++) {
				const fl_tenant *o = &out->v[j];
				if (strlen(o->name) != n || strncasecmp(o->name, s, n) != 0)
					continue;
				ok = false;
				if (strncmp(o->name, s, n) == 0)
					fl_error_append(errs,
					                fl_error_at(f, line, col,
					                            "tenant %s is listed twice (first at "
					                            "%s:%d:%d); list each tenant once",
					                            q, f, o->line, o->col));
				else
					fl_error_append(errs,
					                fl_error_at(f, line, col,
					                            "tenant %s differs from tenant \"%s\" "
					                            "(%s:%d:%d) only in case; use one "
					                            "spelling",
					                            q, o->name, f, o->line, o->col));
			}
		}
	}
	free(q);
	if (!ok)
		return false;
	out->v = fl_realloc(out->v, (out->n + 1) * sizeof(*out->v));
	out->v[out->n++] = (fl_tenant){fl_strndup(s, n), line, col};
	return true;
}

int fl_tenants_from_array(const fl_toml_value *arr, const char *path, fl_tenants *out, fl_error **errs)
{
	*out = (fl_tenants){.file = fl_strdup(path)};
	int rc = 0;
	size_t n = fl_toml_len(arr);
	if (n == 0) {
		fl_error_append(errs, fl_error_at(path, fl_toml_line(arr), fl_toml_col(arr),
		                                  "\"tenants\" is empty: list at least one tenant, or drop "
		                                  "the key"));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const fl_toml_value *v = fl_toml_at(arr, i);
		size_t len;
		const char *s = fl_toml_string(v, &len);
		if (!s) {
			fl_error_append(errs,
			                fl_error_at(path, fl_toml_line(v), fl_toml_col(v),
			                            "\"tenants\" must hold tenant names (strings), not %s",
			                            fl_toml_type_phrase(v)));
			rc = -1;
		} else if (!add(out, s, len, fl_toml_line(v), fl_toml_col(v), errs)) {
			rc = -1;
		}
	}
	return rc;
}

int fl_tenants_from_file(const char *path, const char *shown, const fl_toml_value *v, const char *manifest,
                         fl_tenants *out, fl_error **errs)
{
	*out = (fl_tenants){.file = fl_strdup(shown)};
	FILE *f = fopen(path, "r");
	if (!f) {
		fl_error_append(errs, fl_error_at(manifest, fl_toml_line(v), fl_toml_col(v),
		                                  "tenants_file \"%s\" cannot be read: %s", shown,
		                                  strerror(errno)));
		return -1;
	}
	int rc = 0, line = 0;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&buf, &cap, f)) >= 0) {
		line++;
		size_t a = 0, e = (size_t)len;
		while (a < e && (buf[a] == ' ' || buf[a] == '\t'))
			a++;
		while (e > a &&
		       (buf[e - 1] == '\n' || buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
		if (a == e || buf[a] == '#')
			continue;
		if (!add(out, buf + a, e - a, line, (int)a + 1, errs))
			rc = -1;
	}
	free(buf);
	fclose(f);
	if (rc == 0 && out->n == 0) {
		fl_error_append(errs, fl_error_at(manifest, fl_toml_line(v), fl_toml_col(v),
		                                  "tenants_file \"%s\" lists no tenant (one a line; # starts "
		                                  "a comment)",
		                                  shown));
		rc = -1;
	}
	return rc;
}

void fl_tenants_clear(fl_tenants *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	free(t->file);
	*t = (fl_tenants){0};
}

char *fl_tenants_service_name(const char *tmpl, const char *tenant)
{
	return fl_asprintf("%s[%s]", tmpl, tenant);
}

bool fl_tenants_of(const char *service, const char *tmpl)
{
	size_t n = strlen(tmpl);
	return strncmp(service, tmpl, n) == 0 && service[n] == '[' && service[strlen(service) - 1] == ']';
}
