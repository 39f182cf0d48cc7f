#include "manifest.h"

#include <errno.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "pg.h"
#include "apply.h" /* the defaults of the lock waits */
#include "lint.h"
#include "text.h"
#include "tenants.h"
#include "toml.h"

/*
 * The load runs in two phases. The first walks the TOML tree once: keys,
 * types, required fields, settings; it keeps pointers to the string values
 * (so their places are known) in "raw" records. The second builds the typed
 * manifest for one environment: expansion, names, references, folders,
 * duplicates. Without an environment the second phase runs once per
 * environment of the file only to collect problems, then once more with
 * ${env} left as written; the same problem found twice is reported once.
 */

typedef struct {
	const fl_toml_value *tbl; /* NULL: no password */
	const fl_toml_value *env, *file, *cmd, *json;
	fl_secret_kind kind;
} raw_secret;

typedef struct {
	const fl_toml_value *tbl;
	const fl_toml_value *user;
	raw_secret pw, token, url;
} raw_login;

typedef struct {
	const char *name;
	const fl_toml_value *tbl;
	const fl_toml_value *host, *sslmode, *maintenance_db, *options;
	int port, connect_timeout;
	bool service_passwords;
	raw_login admin, migrator;
} raw_env;

typedef struct {
	const char *name;
	const fl_toml_value *tbl;
	const fl_toml_value *description, *database, *owner, *schema, *sink, *migrations, *reads;
	const fl_toml_value *ph_defaults, *ph_own;
	const fl_toml_value *locations, *schemas; /* Flyway's lists (their first entries are above) */
	raw_secret pw;
	bool keep_alembic_version;
	/* one tenant of a template (tenants.h): name is "tmpl[tenant]"; both NULL otherwise */
	const char *tmpl, *tenant;
} raw_service;

typedef struct {
	const char *name;
	const fl_toml_value *tbl;
	const fl_toml_value *description, *reads;
	bool login;
	raw_secret pw;
} raw_role;

typedef struct {
	const char *path;
	char *dir;
	fl_toml_value *root;
	fl_error *errs;
	char **tmp; /* strings made for messages, freed with the loader */
	size_t ntmp;
	int version;
	const char *project;
	fl_manifest_settings settings;
	fl_manifest_lint lint;
	raw_env *envs;
	size_t nenvs;
	raw_service *svcs;
	size_t nsvcs;
	raw_role *roles;
	size_t nroles;
	const fl_toml_value *d_tbl;
	const fl_toml_value *d_database, *d_owner, *d_schema, *d_sink, *d_migrations, *d_ph;
	raw_secret d_pw;
	const char **svc_names; /* for suggestions */
	const char **pass_env;  /* [settings] pass_env, NULL-terminated (borrowed strings) */
	const fl_toml_value **pass_env_v;
	size_t npass_env;
	fl_tenants *tenant_lists; /* one per template, freed with the loader */
	size_t ntenant_lists;
} loader;

/* ---- messages ---- */

static void add_err(loader *L, fl_error *e)
{
	if (e)
		fl_error_append(&L->errs, e);
}

static void err_at(loader *L, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void err_at(loader *L, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_err(L, fl_error_vat(L->path, line, col, fmt, ap));
	va_end(ap);
}

#define ERR_V(L, v, ...) err_at((L), fl_toml_line(v), fl_toml_col(v), __VA_ARGS__)

static const char *keep(loader *L, char *s)
{
	L->tmp = fl_realloc(L->tmp, (L->ntmp + 1) * sizeof(*L->tmp));
	L->tmp[L->ntmp++] = s;
	return s;
}

/* A value shown in a message: double-quoted, with quotes, backslashes and
 * control characters escaped, so a hostile name stays one visible line. */
static const char *qn(loader *L, const char *s, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			fl_buf_putc(&b, '\\');
			fl_buf_putc(&b, (char)c);
		} else if (c == '\n') {
			fl_buf_puts(&b, "\\n");
		} else if (c == '\t') {
			fl_buf_puts(&b, "\\t");
		} else if (c == '\r') {
			fl_buf_puts(&b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			fl_buf_printf(&b, "\\u%04x", c);
		} else {
			fl_buf_putc(&b, (char)c);
		}
	}
	fl_buf_putc(&b, '"');
	return keep(L, fl_buf_detach(&b));
}

static const char *qs(loader *L, const char *s)
{
	return qn(L, s, strlen(s));
}

/* "an integer", "a string": the type of a value for a message. */
static const char *a_type(const fl_toml_value *v)
{
	return fl_toml_type_phrase(v);
}

/* ---- phase one: structure ---- */

static bool is_bare_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * The IAM database users of Cloud SQL and AlloyDB, as the providers spell
 * them: a user `name@project.iam` or a service account
 * `sa@project.iam.gserviceaccount.com` (Cloud SQL drops the suffix, AlloyDB
 * and older setups keep it). Lower case, as the providers make them.
 */
static bool is_iam_name(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || n > FL_MANIFEST_MAX_NAME)
		return false;
	for (const char *c = s; c < at; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
		      *c == '-' || *c == '+'))
			return false;
	const char *dom = at + 1;
	size_t dl = n - (size_t)(dom - s);
	static const char *const suffixes[] = {".iam", ".iam.gserviceaccount.com"};
	bool ok = false;
	for (size_t i = 0; i < 2 && !ok; i++) {
		size_t sl = strlen(suffixes[i]);
		ok = dl > sl && memcmp(dom + dl - sl, suffixes[i], sl) == 0;
	}
	for (size_t i = 0; ok && i < dl; i++) {
		char c = dom[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
	}
	return ok && dom[0] != '.' && dom[0] != '-';
}

static bool is_ident(const char *s, size_t n)
{
	if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '$'))
			return false;
	}
	return true;
}

/* Every key of `tbl` must be one of `allowed`; `scope` names the table. */
static void check_keys(loader *L, const fl_toml_value *tbl, const char *scope, const char *const *allowed,
                       size_t n)
{
	for (size_t i = 0; i < fl_toml_len(tbl); i++) {
		const char *k = fl_toml_key_at(tbl, i);
		size_t kl = fl_toml_key_len(tbl, i);
		bool ok = false;
		for (size_t j = 0; j < n && !ok; j++)
			ok = kl == strlen(allowed[j]) && memcmp(k, allowed[j], kl) == 0;
		if (ok)
			continue;
		int line = fl_toml_key_line(tbl, i), col = fl_toml_key_col(tbl, i);
		const char *s = kl == strlen(k) ? fl_text_suggest(k, allowed, n) : NULL;
		if (s)
			err_at(L, line, col, "unknown key %s in [%s]; did you mean \"%s\"?", qn(L, k, kl),
			       scope, s);
		else
			err_at(L, line, col, "unknown key %s in [%s]", qn(L, k, kl), scope);
	}
}

/* The typed getters, reporting a wrong type and returning the node (NULL
 * when absent or wrong). */
static const fl_toml_value *get_str(loader *L, const fl_toml_value *tbl, const char *key)
{
	const char *s;
	fl_error *e = NULL;
	int r = fl_toml_get_string(tbl, key, &s, &e);
	add_err(L, e);
	return r == 1 ? fl_toml_get(tbl, key) : NULL;
}

static const fl_toml_value *get_tbl(loader *L, const fl_toml_value *tbl, const char *key)
{
	const fl_toml_value *v = NULL;
	fl_error *e = NULL;
	int r = fl_toml_get_table(tbl, key, &v, &e);
	add_err(L, e);
	return r == 1 ? v : NULL;
}

static const fl_toml_value *get_arr(loader *L, const fl_toml_value *tbl, const char *key)
{
	const fl_toml_value *v = NULL;
	fl_error *e = NULL;
	int r = fl_toml_get_array(tbl, key, &v, &e);
	add_err(L, e);
	return r == 1 ? v : NULL;
}

/* 1 set, 0 absent, -1 wrong type (reported). */
static int get_int(loader *L, const fl_toml_value *tbl, const char *key, int64_t *out)
{
	fl_error *e = NULL;
	int r = fl_toml_get_int(tbl, key, out, &e);
	add_err(L, e);
	return r;
}

/* An integer from lo to hi into *out (untouched when absent or wrong, which is reported at its place). */
static void get_int_between(loader *L, const fl_toml_value *tbl, const char *key, int64_t lo, int64_t hi,
                            int *out)
{
	int64_t v;
	if (get_int(L, tbl, key, &v) != 1)
		return;
	if (v < lo || v > hi)
		ERR_V(L, fl_toml_get(tbl, key), "\"%s\" must be between %lld and %lld, not %lld", key,
		      (long long)lo, (long long)hi, (long long)v);
	else
		*out = (int)v;
}

static int get_bool(loader *L, const fl_toml_value *tbl, const char *key, bool *out)
{
	fl_error *e = NULL;
	int r = fl_toml_get_bool(tbl, key, out, &e);
	add_err(L, e);
	return r;
}

/*
 * A duration as PostgreSQL writes it ("10s", "500ms", "5min", "1h", "1d",
 * optional space before the unit), or an integer of milliseconds. Returns 0
 * (absent, *ms untouched), 1, or -1 (reported).
 */
static int get_duration(loader *L, const fl_toml_value *tbl, const char *key, int *ms)
{
	const fl_toml_value *v = fl_toml_get(tbl, key);
	if (!v)
		return 0;
	if (fl_toml_type_of(v) == FL_TOML_INTEGER) {
		int64_t n = fl_toml_int(v);
		if (n < 0 || n > INT_MAX) {
			ERR_V(L, v, "\"%s\" must be between 0 and %d milliseconds, not %lld", key, INT_MAX,
			      (long long)n);
			return -1;
		}
		*ms = (int)n;
		return 1;
	}
	if (fl_toml_type_of(v) != FL_TOML_STRING) {
		ERR_V(L, v, "\"%s\" must be a duration such as \"10s\", \"500ms\" or \"5min\", not %s", key,
		      a_type(v));
		return -1;
	}
	size_t len;
	const char *s = fl_toml_string(v, &len);
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
	size_t i = 0;
	int64_t n = 0;
	bool ok = len == strlen(s) && len > 0;
	while (ok && i < len && s[i] >= '0' && s[i] <= '9') {
		n = n * 10 + (s[i] - '0');
		if (n > INT_MAX)
			ok = false;
		i++;
	}
	if (i == 0)
		ok = false;
	while (ok && i < len && s[i] == ' ')
		i++;
	int64_t mul = -1;
	if (ok && i == len)
		mul = 1; /* a bare number is milliseconds, as PostgreSQL reads it */
	for (size_t u = 0; ok && mul < 0 && u < sizeof(units) / sizeof(units[0]); u++)
		if (strcmp(s + i, units[u].unit) == 0)
			mul = units[u].ms;
	if (!ok || mul < 0) {
		ERR_V(L, v, "\"%s\" must be a duration such as \"10s\", \"500ms\" or \"5min\", not %s", key,
		      qn(L, s, len));
		return -1;
	}
	if (n * mul > INT_MAX) {
		ERR_V(L, v, "\"%s\" is too long: at most %d ms (about 24 days)", key, INT_MAX);
		return -1;
	}
	*ms = (int)(n * mul);
	return 1;
}

/* The reference under `key` of `parent` ({ env, file, cmd, json }), for a value of `kind`. */
static void parse_secret_key(loader *L, const fl_toml_value *parent, const char *key, const char *scope,
                             fl_secret_kind kind, raw_secret *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	const fl_toml_value *v = fl_toml_get(parent, key);
	if (!v)
		return;
	if (fl_toml_type_of(v) == FL_TOML_STRING) {
		/* the value may be a real password: it is not repeated here */
		ERR_V(L, v,
		      "\"%s\" must say where the %s comes from, such as { env = \"NAME\" }, "
		      "{ file = \"path\" } or { cmd = \"command\" }; never write a %s into the manifest",
		      key, kind == FL_SECRET_URL || kind == FL_SECRET_URL_PASSWORD ? "URL" : key,
		      kind == FL_SECRET_URL || kind == FL_SECRET_URL_PASSWORD ? "connection URL"
		                                                              : "password");
		return;
	}
	v = get_tbl(L, parent, key);
	if (!v)
		return;
	static const char *const keys[] = {"env", "file", "cmd", "json"};
	char *sc = fl_asprintf("%s.%s", scope, key);
	check_keys(L, v, keep(L, sc), keys, 4);
	out->env = get_str(L, v, "env");
	out->file = get_str(L, v, "file");
	out->cmd = get_str(L, v, "cmd");
	out->json = get_str(L, v, "json");
	bool has_env = fl_toml_get(v, "env"), has_file = fl_toml_get(v, "file"),
	     has_cmd = fl_toml_get(v, "cmd");
	if (!has_env && !has_file && !has_cmd) {
		ERR_V(L, v,
		      "\"%s\" names no source: use { env = \"NAME\" }, { file = \"path\" } or "
		      "{ cmd = \"command\" }",
		      key);
		return;
	}
	if (has_file && (has_env || has_cmd)) {
		ERR_V(L, v,
		      "\"%s\" takes file alone; only env and cmd go together (the variable wins when "
		      "set)",
		      key);
		return;
	}
	if (out->json) {
		size_t jl;
		const char *j = fl_toml_string(out->json, &jl);
		bool ok = jl > 0 && jl == strlen(j) && j[0] != '.' && j[jl - 1] != '.' && !strstr(j, "..");
		if (!ok) {
			ERR_V(L, out->json,
			      "\"json\" names the field that holds the value, such as \"password\" or "
			      "\"db.password\" (dots between names)");
			return;
		}
	}
	out->tbl = v;
}

static void parse_secret(loader *L, const fl_toml_value *parent, const char *scope, raw_secret *out)
{
	parse_secret_key(L, parent, "password", scope, FL_SECRET_PASSWORD, out);
}

/* A service's (or the defaults') password: `password`, or the password of a `url`. */
static void parse_service_secret(loader *L, const fl_toml_value *parent, const char *scope, raw_secret *out)
{
	const fl_toml_value *u = fl_toml_get(parent, "url");
	if (u && fl_toml_get(parent, "password")) {
		ERR_V(L, u, "[%s] takes \"password\" or \"url\", not both", scope);
		memset(out, 0, sizeof(*out));
		return;
	}
	if (u)
		parse_secret_key(L, parent, "url", scope, FL_SECRET_URL_PASSWORD, out);
	else
		parse_secret(L, parent, scope, out);
}

static void parse_login(loader *L, const fl_toml_value *env, const char *key, const char *scope,
                        raw_login *out)
{
	memset(out, 0, sizeof(*out));
	const fl_toml_value *t = get_tbl(L, env, key);
	if (!t) {
		if (!fl_toml_get(env, key))
			ERR_V(
			    L, env,
			    "missing \"%s\" in [%s]: %s = { user = \"NAME\", password = { env = \"VAR\" } }",
			    key, scope, key);
		return;
	}
	static const char *const keys[] = {"user", "password", "token", "url"};
	const char *sc = keep(L, fl_asprintf("%s.%s", scope, key));
	check_keys(L, t, sc, keys, 4);
	out->tbl = t;
	out->user = get_str(L, t, "user");
	if (!fl_toml_get(t, "user"))
		ERR_V(L, t, "missing \"user\" in [%s]", sc);
	int n = !!fl_toml_get(t, "password") + !!fl_toml_get(t, "token") + !!fl_toml_get(t, "url");
	if (n > 1) {
		ERR_V(L, t, "[%s] takes one of \"password\", \"token\" and \"url\"", sc);
		return;
	}
	parse_secret(L, t, sc, &out->pw);
	parse_secret_key(L, t, "token", sc, FL_SECRET_TOKEN, &out->token);
	parse_secret_key(L, t, "url", sc, FL_SECRET_URL, &out->url);
}

static bool env_var_name_ok(const char *s);

static void parse_settings(loader *L, const fl_toml_value *root)
{
	L->settings.jobs = 0; /* one thread per selected service, at most 8 */
	L->settings.lock_timeout_ms = FL_APPLY_DEFAULT_LOCK_TIMEOUT_MS;
	L->settings.lock_retries = FL_APPLY_DEFAULT_LOCK_RETRIES;
	L->settings.lock_retry_interval_ms = FL_APPLY_DEFAULT_LOCK_RETRY_INTERVAL_MS;
	L->settings.migration_lock_timeout_ms = FL_APPLY_DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
	L->settings.statement_timeout_ms = 0;
	L->settings.secret_timeout_ms = FL_SECRET_DEFAULT_TIMEOUT_MS;
	L->settings.connect_retries = FL_PG_DEFAULT_CONNECT_RETRIES;
	L->settings.connect_retries_interval_s = FL_PG_DEFAULT_CONNECT_RETRIES_INTERVAL;
	const fl_toml_value *t = get_tbl(L, root, "settings");
	if (!t)
		return;
	static const char *const keys[] = {"jobs",
	                                   "lock_timeout",
	                                   "lock_retries",
	                                   "lock_retry_interval",
	                                   "migration_lock_timeout",
	                                   "statement_timeout",
	                                   "secret_timeout",
	                                   "connect_retries",
	                                   "connect_retries_interval",
	                                   "pass_env",
	                                   "connections",
	                                   "local_apply_jobs"};
	check_keys(L, t, "settings", keys, sizeof(keys) / sizeof(keys[0]));
	get_int_between(L, t, "connect_retries", 0, FL_PG_MAX_CONNECT_RETRIES, &L->settings.connect_retries);
	/* Flyway's connectRetriesInterval is in seconds: an integer is seconds here too */
	const fl_toml_value *ri = fl_toml_get(t, "connect_retries_interval");
	int ri_ms = -1;
	if (ri && fl_toml_type_of(ri) == FL_TOML_INTEGER) {
		int64_t n = fl_toml_int(ri);
		ri_ms = n >= 0 && n <= FL_PG_MAX_CONNECT_RETRIES_INTERVAL ? (int)n * 1000 : -2;
	} else if (get_duration(L, t, "connect_retries_interval", &ri_ms) != 1) {
		ri_ms = -1;
	}
	if (ri && (ri_ms == -2 || (ri_ms >= 0 && (ri_ms < 1000 || ri_ms % 1000 ||
	                                          ri_ms > FL_PG_MAX_CONNECT_RETRIES_INTERVAL * 1000))))
		ERR_V(
		    L, ri,
		    "\"connect_retries_interval\" must be whole seconds from 1 to %d (an integer is seconds, "
		    "as in Flyway)",
		    FL_PG_MAX_CONNECT_RETRIES_INTERVAL);
	else if (ri_ms > 0)
		L->settings.connect_retries_interval_s = ri_ms / 1000;
	const fl_toml_value *pe = get_arr(L, t, "pass_env");
	for (size_t i = 0; i < fl_toml_len(pe); i++) {
		const fl_toml_value *v = fl_toml_at(pe, i);
		size_t vl;
		const char *name = fl_toml_type_of(v) == FL_TOML_STRING ? fl_toml_string(v, &vl) : NULL;
		if (!name || vl != strlen(name) || !env_var_name_ok(name)) {
			ERR_V(L, v,
			      "\"pass_env\" holds names of environment variables ([A-Za-z_][A-Za-z0-9_]*)");
			continue;
		}
		L->pass_env = fl_realloc(L->pass_env, (L->npass_env + 2) * sizeof(char *));
		L->pass_env[L->npass_env++] = name;
		L->pass_env[L->npass_env] = NULL;
		L->pass_env_v = fl_realloc(L->pass_env_v, L->npass_env * sizeof(*L->pass_env_v));
		L->pass_env_v[L->npass_env - 1] = v;
	}
	get_int_between(L, t, "connections", 1, 100000, &L->settings.connections);
	get_int_between(L, t, "local_apply_jobs", 1, 1000, &L->settings.local_apply_jobs);
	get_int_between(L, t, "jobs", 1, 1000, &L->settings.jobs);
	/* lock waits: each bounded, none "for ever" (a DDL statement queues the table's traffic behind it) */
	static const struct {
		const char *key, *why;
		size_t off;
	} waits[] = {
	    {"lock_timeout",
	     "0 would let a DDL statement queue every query on its table for as long as a reader lives",
	     offsetof(fl_manifest_settings, lock_timeout_ms)},
	    {"lock_retry_interval", "0 would retry at once",
	     offsetof(fl_manifest_settings, lock_retry_interval_ms)},
	    {"migration_lock_timeout", "0 would wait for ever for another run",
	     offsetof(fl_manifest_settings, migration_lock_timeout_ms)},
	};
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		int ms;
		if (get_duration(L, t, waits[i].key, &ms) != 1)
			continue;
		if (ms <= 0)
			ERR_V(L, fl_toml_get(t, waits[i].key), "\"%s\" must be more than 0: %s", waits[i].key,
			      waits[i].why);
		else
			*(int *)((char *)&L->settings + waits[i].off) = ms;
	}
	get_int_between(L, t, "lock_retries", 0, 1000, &L->settings.lock_retries);
	get_duration(L, t, "statement_timeout", &L->settings.statement_timeout_ms);
	int st = L->settings.secret_timeout_ms;
	if (get_duration(L, t, "secret_timeout", &st) == 1) {
		if (st <= 0)
			ERR_V(L, fl_toml_get(t, "secret_timeout"), "\"secret_timeout\" must be more than 0");
		else
			L->settings.secret_timeout_ms = st;
	}
}

/*
 * [lint]: pg_version and [lint.rules] (rule = "error" | "warning" | "off").
 * The rule names are lint's, so a typo is caught here, at its place, like
 * any other unknown key.
 */
static void parse_lint(loader *L, const fl_toml_value *root)
{
	const fl_toml_value *t = get_tbl(L, root, "lint");
	if (!t)
		return;
	static const char *const keys[] = {"pg_version", "rules"};
	check_keys(L, t, "lint", keys, 2);
	get_int_between(L, t, "pg_version", FL_LINT_MIN_PG_VERSION, FL_LINT_MAX_PG_VERSION,
	                &L->lint.pg_version);
	const fl_toml_value *rules = get_tbl(L, t, "rules");
	if (!rules)
		return;
	size_t nnames;
	const char *const *names = fl_lint_rule_names(&nnames);
	L->lint.rules = fl_calloc(fl_toml_len(rules) + 1, sizeof(*L->lint.rules));
	for (size_t i = 0; i < fl_toml_len(rules); i++) {
		const char *k = fl_toml_key_at(rules, i);
		size_t kl = fl_toml_key_len(rules, i);
		int line = fl_toml_key_line(rules, i), col = fl_toml_key_col(rules, i);
		if (kl != strlen(k) || !fl_lint_rule_find(k)) {
			const char *s = kl == strlen(k) ? fl_text_suggest(k, names, nnames) : NULL;
			err_at(L, line, col, "unknown lint rule %s in [lint.rules]%s%s%s", qn(L, k, kl),
			       s ? "; did you mean \"" : "", s ? s : "", s ? "\"?" : "");
			continue;
		}
		const fl_toml_value *val = fl_toml_value_at(rules, i), *lvv = val, *fromv = NULL;
		if (fl_toml_type_of(val) == FL_TOML_TABLE) {
			static const char *const rkeys[] = {"level", "from_version"};
			check_keys(L, val, keep(L, fl_asprintf("lint.rules.%s", k)), rkeys, 2);
			lvv = fl_toml_get(val, "level");
			fromv = get_str(L, val, "from_version");
			if (!lvv) {
				ERR_V(L, val,
				      "lint rule \"%s\" needs a level: { level = \"error\", from_version = "
				      "\"6\" }",
				      k);
				continue;
			}
		}
		const char *lv = fl_toml_type_of(lvv) == FL_TOML_STRING ? fl_toml_string(lvv, NULL) : NULL;
		if (!lv ||
		    (strcmp(lv, "error") != 0 && strcmp(lv, "warning") != 0 && strcmp(lv, "off") != 0)) {
			ERR_V(L, lvv, "lint rule \"%s\" takes \"error\", \"warning\" or \"off\", not %s", k,
			      lv ? qs(L, lv) : a_type(lvv));
			continue;
		}
		const char *from = fromv ? fl_toml_string(fromv, NULL) : NULL;
		if (from && !fl_migration_version_valid(from)) {
			ERR_V(L, fromv,
			      "\"from_version\" must be a migration version such as \"6\" or \"2.1\", not %s",
			      qs(L, from));
			continue;
		}
		fl_manifest_lint_rule *r = &L->lint.rules[L->lint.nrules++];
		r->rule = fl_strdup(k);
		r->level = fl_strdup(lv);
		r->from_version = from ? fl_strdup(from) : NULL;
		r->line = line;
		r->col = col;
	}
}

/*
 * [drift]: what drift leaves out and what it compares. ignore_schemas
 * replaces the default list (so a service that really owns a schema named
 * like a provider's can take it out); it holds schema names, not patterns.
 */
static void parse_drift(loader *L, const fl_toml_value *root)
{
	static const char *const defaults[] = {FL_DRIFT_DEFAULT_IGNORE_SCHEMAS};
	L->settings.drift_column_order = true;
	L->settings.drift_comments = true;
	const fl_toml_value *t = get_tbl(L, root, "drift");
	const fl_toml_value *arr = NULL;
	if (t) {
		static const char *const keys[] = {"ignore_schemas", "column_order", "comments"};
		check_keys(L, t, "drift", keys, 3);
		get_bool(L, t, "column_order", &L->settings.drift_column_order);
		get_bool(L, t, "comments", &L->settings.drift_comments);
		arr = get_arr(L, t, "ignore_schemas");
	}
	size_t n = arr ? fl_toml_len(arr) : sizeof(defaults) / sizeof(defaults[0]);
	/* the loader's copies (build gives every manifest its own) */
	L->settings.drift_ignore_schemas = (char **)keep(L, fl_calloc(n ? n : 1, sizeof(char *)));
	for (size_t i = 0; i < n; i++) {
		const char *s = defaults[i < sizeof(defaults) / sizeof(defaults[0]) ? i : 0];
		if (arr) {
			const fl_toml_value *v = fl_toml_at(arr, i);
			size_t len = 0;
			if (fl_toml_type_of(v) != FL_TOML_STRING ||
			    strlen(s = fl_toml_string(v, &len)) != len || len == 0) {
				ERR_V(L, v, "\"ignore_schemas\" must hold schema names (non-empty strings)");
				continue;
			}
		}
		L->settings.drift_ignore_schemas[L->settings.ndrift_ignore_schemas++] =
		    (char *)keep(L, fl_strdup(s));
	}
}

static const char *const sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

static void parse_env(loader *L, raw_env *e)
{
	const fl_toml_value *t = e->tbl;
	const char *scope = keep(L, fl_asprintf("environments.%s", e->name));
	static const char *const keys[] = {
	    "host",    "port",  "sslmode",  "connect_timeout",  "maintenance_db",
	    "options", "admin", "migrator", "service_passwords"};
	check_keys(L, t, scope, keys, sizeof(keys) / sizeof(keys[0]));
	e->host = get_str(L, t, "host");
	get_int_between(L, t, "port", 1, 65535, &e->port);
	e->sslmode = get_str(L, t, "sslmode");
	const fl_toml_value *ct = fl_toml_get(t, "connect_timeout");
	if (ct && fl_toml_type_of(ct) == FL_TOML_INTEGER) {
		int64_t n = fl_toml_int(ct);
		if (n < 0 || n > 3600)
			ERR_V(L, ct, "\"connect_timeout\" must be between 0 and 3600 seconds, not %lld",
			      (long long)n);
		else
			e->connect_timeout = (int)n;
	} else {
		int ms = 0;
		if (get_duration(L, t, "connect_timeout", &ms) == 1) {
			if (ms % 1000 || ms > 3600000)
				ERR_V(L, ct, "\"connect_timeout\" must be whole seconds, at most 1h");
			else
				e->connect_timeout = ms / 1000;
		}
	}
	e->maintenance_db = get_str(L, t, "maintenance_db");
	e->options = get_tbl(L, t, "options");
	e->service_passwords = true;
	get_bool(L, t, "service_passwords", &e->service_passwords);
	parse_login(L, t, "admin", scope, &e->admin);
	parse_login(L, t, "migrator", scope, &e->migrator);
}

static void check_placeholders(loader *L, const fl_toml_value *ph, const char *scope)
{
	for (size_t i = 0; i < fl_toml_len(ph); i++) {
		const char *k = fl_toml_key_at(ph, i);
		size_t kl = fl_toml_key_len(ph, i);
		bool ok = kl > 0;
		for (size_t j = 0; j < kl && ok; j++) {
			char c = k[j];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     c == '_' || c == '.' || c == '-';
		}
		if (!ok)
			err_at(L, fl_toml_key_line(ph, i), fl_toml_key_col(ph, i),
			       "placeholder name %s in [%s] may hold only letters, digits, _, . and -",
			       qn(L, k, kl), scope);
		const fl_toml_value *v = fl_toml_value_at(ph, i);
		fl_toml_type ty = fl_toml_type_of(v);
		if (ty != FL_TOML_STRING && ty != FL_TOML_INTEGER && ty != FL_TOML_BOOL)
			ERR_V(L, v, "placeholder %s must be a string, an integer or a boolean, not %s",
			      qn(L, k, kl), a_type(v));
	}
}

static void parse_reads(loader *L, const fl_toml_value *arr)
{
	for (size_t i = 0; i < fl_toml_len(arr); i++) {
		const fl_toml_value *v = fl_toml_at(arr, i);
		if (fl_toml_type_of(v) != FL_TOML_STRING)
			ERR_V(L, v, "\"reads\" must hold service names (strings), not %s", a_type(v));
	}
}

/* The service's own value of `key`, else the default; type errors of the
 * default were reported with [defaults]. */
static const fl_toml_value *own_or_default(loader *L, const fl_toml_value *t, const char *key,
                                           const fl_toml_value *def)
{
	if (fl_toml_get(t, key))
		return get_str(L, t, key);
	return def;
}

/* ---- Flyway's settings (README "From Flyway") ---- */

/* A non-empty list of non-empty strings, or NULL (reported). */
static const fl_toml_value *string_list(loader *L, const fl_toml_value *t, const char *key)
{
	const fl_toml_value *a = get_arr(L, t, key);
	if (!a)
		return NULL;
	if (fl_toml_len(a) == 0) {
		ERR_V(L, a, "\"%s\" is empty; leave it out for the default", key);
		return NULL;
	}
	for (size_t i = 0; i < fl_toml_len(a); i++) {
		const fl_toml_value *v = fl_toml_at(a, i);
		size_t len = 0;
		const char *sv = fl_toml_type_of(v) == FL_TOML_STRING ? fl_toml_string(v, &len) : NULL;
		if (!sv || len == 0 || strlen(sv) != len) {
			ERR_V(L, v, "\"%s\" must hold non-empty strings, not %s", key, a_type(v));
			return NULL;
		}
	}
	return a;
}

/* The types of Flyway's keys in a service or [defaults], and the pairs that exclude each other. */
static void check_flyway(loader *L, const fl_toml_value *t, const char *scope)
{
	get_str(L, t, "table");
	string_list(L, t, "locations");
	string_list(L, t, "sql_migration_suffixes");
	string_list(L, t, "schemas");
	bool b;
	get_bool(L, t, "baseline_on_migrate", &b);
	get_bool(L, t, "out_of_order", &b);
	static const char *const versions[] = {"baseline_version", "target"};
	for (size_t i = 0; i < 2; i++) {
		const fl_toml_value *v = fl_toml_get(t, versions[i]);
		if (v && fl_toml_type_of(v) != FL_TOML_STRING && fl_toml_type_of(v) != FL_TOML_INTEGER)
			ERR_V(L, v, "\"%s\" must be a version (a string like \"1.2\" or an integer), not %s",
			      versions[i], a_type(v));
	}
	static const char *const pairs[][2] = {{"migrations", "locations"}, {"schema", "schemas"}};
	for (size_t i = 0; i < 2; i++) {
		const fl_toml_value *v = fl_toml_get(t, pairs[i][1]);
		if (v && fl_toml_get(t, pairs[i][0]))
			ERR_V(L, v,
			      "[%s] sets both \"%s\" and \"%s\"; \"%s\" is a list whose first entry is "
			      "\"%s\": keep one",
			      scope, pairs[i][0], pairs[i][1], pairs[i][1], pairs[i][0]);
	}
}

/*
 * The service's own list (or single value), else the default's: a service
 * that says `migrations` is not given the default `locations`.
 */
static const fl_toml_value *list_or_default(loader *L, const fl_toml_value *t, const char *list,
                                            const char *single)
{
	/* type errors were reported by check_flyway, here and in [defaults] */
	const fl_toml_value *a = fl_toml_get(t, list);
	if (!a && (fl_toml_get(t, single) || !L->d_tbl || !(a = fl_toml_get(L->d_tbl, list))))
		return NULL;
	if (fl_toml_type_of(a) != FL_TOML_ARRAY || fl_toml_len(a) == 0)
		return NULL;
	for (size_t i = 0; i < fl_toml_len(a); i++) {
		size_t len = 0;
		const fl_toml_value *v = fl_toml_at(a, i);
		if (fl_toml_type_of(v) != FL_TOML_STRING || strlen(fl_toml_string(v, &len)) != len || !len)
			return NULL;
	}
	return a;
}

/* `locations` and `schemas`: their first entries play `migrations` and `schema`. */
static void flyway_lists(loader *L, const fl_toml_value *t, raw_service *s)
{
	s->locations = list_or_default(L, t, "locations", "migrations");
	if (s->locations)
		s->migrations = fl_toml_at(s->locations, 0);
	s->schemas = list_or_default(L, t, "schemas", "schema");
	if (s->schemas)
		s->schema = fl_toml_at(s->schemas, 0);
}

static void parse_service(loader *L, raw_service *s)
{
	const fl_toml_value *t = s->tbl;
	const char *scope = keep(L, fl_asprintf("services.%s", s->name));
	static const char *const keys[] = {"description", "database", "owner", "password", "password_sink",
	                                   "migrations", "schema", "reads", "placeholders", "url",
	                                   /* Flyway's settings (check_flyway) */
	                                   "table", "locations", "sql_migration_suffixes",
	                                   "baseline_on_migrate", "baseline_version", "out_of_order",
	                                   "schemas", "target", "keep_alembic_version",
	                                   /* a template of one service per tenant (tenants.h) */
	                                   "tenants", "tenants_file"};
	check_keys(L, t, scope, keys, sizeof(keys) / sizeof(keys[0]));
	check_flyway(L, t, scope);
	get_bool(L, t, "keep_alembic_version", &s->keep_alembic_version);
	s->description = get_str(L, t, "description");
	s->database = own_or_default(L, t, "database", L->d_database);
	s->owner = own_or_default(L, t, "owner", L->d_owner);
	s->schema = own_or_default(L, t, "schema", L->d_schema);
	s->sink = own_or_default(L, t, "password_sink", L->d_sink);
	s->migrations = own_or_default(L, t, "migrations", L->d_migrations);
	flyway_lists(L, t, s);
	static const char *const required[] = {"database", "owner", "migrations"};
	for (size_t i = 0; i < 3; i++) {
		const fl_toml_value *v = i == 0 ? s->database : i == 1 ? s->owner : s->migrations;
		/* a wrong type, here or in [defaults], was reported as such */
		if (!v && !fl_toml_get(t, required[i]) && !fl_toml_get(L->d_tbl, required[i]) &&
		    !(i == 2 && (fl_toml_get(t, "locations") || fl_toml_get(L->d_tbl, "locations"))))
			ERR_V(L, t, "service %s has no %s: set \"%s\" in [%s] or in [defaults]", s->name,
			      required[i], required[i], scope);
	}
	if (fl_toml_get(t, "password") || fl_toml_get(t, "url"))
		parse_service_secret(L, t, scope, &s->pw);
	else
		s->pw = L->d_pw;
	s->reads = get_arr(L, t, "reads");
	parse_reads(L, s->reads);
	s->ph_defaults = L->d_ph;
	s->ph_own = get_tbl(L, t, "placeholders");
	check_placeholders(L, s->ph_own, keep(L, fl_asprintf("%s.placeholders", scope)));
}

static void parse_role(loader *L, raw_role *r)
{
	const fl_toml_value *t = r->tbl;
	const char *scope = keep(L, fl_asprintf("roles.%s", r->name));
	static const char *const keys[] = {"description", "reads", "login", "password"};
	check_keys(L, t, scope, keys, 4);
	r->description = get_str(L, t, "description");
	r->reads = get_arr(L, t, "reads");
	parse_reads(L, r->reads);
	get_bool(L, t, "login", &r->login);
	parse_secret(L, t, scope, &r->pw);
	if (r->pw.tbl && !r->login)
		ERR_V(L, r->pw.tbl, "a password needs login = true in [%s]", scope);
}

static void parse_defaults(loader *L, const fl_toml_value *root)
{
	const fl_toml_value *t = get_tbl(L, root, "defaults");
	if (!t)
		return;
	L->d_tbl = t;
	for (size_t i = 0; i < fl_toml_len(t); i++) {
		const char *k = fl_toml_key_at(t, i);
		if (strcmp(k, "reads") == 0 || strcmp(k, "description") == 0)
			err_at(L, fl_toml_key_line(t, i), fl_toml_key_col(t, i),
			       "\"%s\" cannot be a default; set it in each [services.NAME]", k);
	}
	/* the two above were reported already, with a better message */
	const char *const all[] = {"database", "owner", "password", "password_sink", "migrations", "schema",
	                           "placeholders", "reads", "description", "url",
	                           /* Flyway's settings (check_flyway) */
	                           "table", "locations", "sql_migration_suffixes", "baseline_on_migrate",
	                           "baseline_version", "out_of_order", "schemas", "target"};
	check_keys(L, t, "defaults", all, sizeof(all) / sizeof(all[0]));
	check_flyway(L, t, "defaults");
	L->d_database = get_str(L, t, "database");
	L->d_owner = get_str(L, t, "owner");
	L->d_schema = get_str(L, t, "schema");
	L->d_sink = get_str(L, t, "password_sink");
	L->d_migrations = get_str(L, t, "migrations");
	parse_service_secret(L, t, "defaults", &L->d_pw);
	L->d_ph = get_tbl(L, t, "placeholders");
	check_placeholders(L, L->d_ph, "defaults.placeholders");
}

/* Entries of [environments], [services] or [roles]: names must be plain,
 * values tables. Returns how many usable entries went into names and tbls. */
static size_t named_tables(loader *L, const fl_toml_value *parent, const char *what, bool identifier,
                           const char ***names, const fl_toml_value ***tbls)
{
	size_t n = fl_toml_len(parent), k = 0;
	*names = fl_calloc(n ? n : 1, sizeof(**names));
	*tbls = fl_calloc(n ? n : 1, sizeof(**tbls));
	for (size_t i = 0; i < n; i++) {
		const char *key = fl_toml_key_at(parent, i);
		size_t kl = fl_toml_key_len(parent, i);
		int line = fl_toml_key_line(parent, i), col = fl_toml_key_col(parent, i);
		/* a role's name is the role: the rules of identifiers hold for it */
		bool ok = (identifier ? is_ident(key, kl) || is_iam_name(key, kl) : is_bare_name(key, kl)) &&
		          kl <= FL_MANIFEST_MAX_NAME;
		if (!ok) {
			if (kl > FL_MANIFEST_MAX_NAME)
				err_at(L, line, col, "%s name %s is %zu bytes long; at most %d", what,
				       qn(L, key, kl), kl, FL_MANIFEST_MAX_NAME);
			else if (identifier)
				err_at(L, line, col,
				       "%s name %s is not a plain name: it must match "
				       "[A-Za-z_][A-Za-z0-9_$]* (or "
				       "be an IAM user, name@project.iam)",
				       what, qn(L, key, kl));
			else
				err_at(L, line, col, "%s name %s may hold only letters, digits, _ and -",
				       what, qn(L, key, kl));
			continue;
		}
		const fl_toml_value *t = get_tbl(L, parent, key);
		if (!t)
			continue;
		(*names)[k] = key;
		(*tbls)[k] = t;
		k++;
	}
	return k;
}

/*
 * Services with "tenants" or "tenants_file" (tenants.h) become one raw
 * service per tenant, in list order, where the template was written. Each
 * keeps the template's parsed values; ${service} and ${tenant} are expanded
 * per tenant in phase two.
 */
static char *join_path(const char *dir, const char *p);

static void expand_tenants(loader *L)
{
	size_t n = 0;
	raw_service *out = NULL;
	for (size_t i = 0; i < L->nsvcs; i++) {
		const raw_service *rs = &L->svcs[i];
		const fl_toml_value *arr = get_arr(L, rs->tbl, "tenants");
		const fl_toml_value *file = get_str(L, rs->tbl, "tenants_file");
		if (!arr && !file) {
			out = fl_realloc(out, (n + 1) * sizeof(*out));
			out[n++] = *rs;
			continue;
		}
		fl_tenants t;
		if (arr && file)
			ERR_V(L, file, "service %s has both \"tenants\" and \"tenants_file\"; keep one",
			      rs->name);
		if (arr) {
			fl_tenants_from_array(arr, L->path, &t, &L->errs);
		} else {
			const char *w = fl_toml_string(file, NULL);
			char *full = join_path(L->dir, w);
			char *mdir = fl_strdup(L->path);
			char *slash = strrchr(mdir, '/');
			char *shown = w[0] == '/' || !slash
			                  ? fl_strdup(w)
			                  : fl_asprintf("%.*s/%s", (int)(slash - mdir), mdir, w);
			fl_tenants_from_file(full, shown, file, L->path, &t, &L->errs);
			free(shown);
			free(mdir);
			free(full);
		}
		L->tenant_lists =
		    fl_realloc(L->tenant_lists, (L->ntenant_lists + 1) * sizeof(*L->tenant_lists));
		L->tenant_lists[L->ntenant_lists++] = t;
		out = fl_realloc(out, (n + t.n + 1) * sizeof(*out));
		for (size_t k = 0; k < t.n; k++) {
			raw_service c = *rs;
			c.tmpl = rs->name;
			c.tenant = t.v[k].name;
			c.name = keep(L, fl_tenants_service_name(rs->name, t.v[k].name));
			out[n++] = c;
		}
	}
	free(L->svcs);
	L->svcs = out ? out : fl_calloc(1, sizeof(*out));
	L->nsvcs = n;
	free(L->svc_names);
	L->svc_names = fl_calloc(n ? n : 1, sizeof(*L->svc_names));
	for (size_t i = 0; i < n; i++)
		L->svc_names[i] = L->svcs[i].name;
}

static void parse_top(loader *L)
{
	const fl_toml_value *root = L->root;
	static const char *const keys[] = {"version",  "project", "settings", "environments", "defaults",
	                                   "services", "roles",   "lint",     "drift"};
	for (size_t i = 0; i < fl_toml_len(root); i++) {
		const char *k = fl_toml_key_at(root, i);
		size_t kl = fl_toml_key_len(root, i);
		bool ok = false;
		size_t nkeys = sizeof(keys) / sizeof(keys[0]);
		for (size_t j = 0; j < nkeys && !ok; j++)
			ok = kl == strlen(keys[j]) && memcmp(k, keys[j], kl) == 0;
		if (ok)
			continue;
		const char *s = kl == strlen(k) ? fl_text_suggest(k, keys, nkeys) : NULL;
		int line = fl_toml_key_line(root, i), col = fl_toml_key_col(root, i);
		if (s)
			err_at(L, line, col, "unknown key %s at the top level; did you mean \"%s\"?",
			       qn(L, k, kl), s);
		else
			err_at(L, line, col, "unknown key %s at the top level", qn(L, k, kl));
	}
	int64_t version;
	int r = get_int(L, root, "version", &version);
	if (r == 0)
		err_at(L, 1, 1, "missing \"version\": the first line of a manifest is version = 1");
	else if (r == 1 && version != 1)
		ERR_V(L, fl_toml_get(root, "version"),
		      "unsupported manifest version %lld; this flotilla reads version 1", (long long)version);
	L->version = 1;
	const fl_toml_value *p = get_str(L, root, "project");
	if (!fl_toml_get(root, "project"))
		err_at(L, 1, 1, "missing \"project\" (the platform's name, for ${project})");
	if (p) {
		size_t len;
		const char *s = fl_toml_string(p, &len);
		if (len == 0)
			ERR_V(L, p, "\"project\" is empty");
		else if (strlen(s) != len)
			ERR_V(L, p, "\"project\" contains a NUL byte");
		else if (strstr(s, "${"))
			ERR_V(L, p, "\"project\" cannot use ${...}: it is what ${project} stands for");
		else
			L->project = s;
	}
	parse_settings(L, root);
	parse_lint(L, root);
	parse_drift(L, root);

	const char **names;
	const fl_toml_value **tbls;
	const fl_toml_value *envs = get_tbl(L, root, "environments");
	if (!fl_toml_get(root, "environments"))
		err_at(L, 1, 1, "no [environments]: add at least one, e.g. [environments.local]");
	else if (envs && fl_toml_len(envs) == 0)
		ERR_V(L, envs, "[environments] is empty: add at least one, e.g. [environments.local]");
	L->nenvs = named_tables(L, envs, "environment", false, &names, &tbls);
	L->envs = fl_calloc(L->nenvs ? L->nenvs : 1, sizeof(*L->envs));
	for (size_t i = 0; i < L->nenvs; i++) {
		L->envs[i].name = names[i];
		L->envs[i].tbl = tbls[i];
		parse_env(L, &L->envs[i]);
	}
	free(names);
	free(tbls);

	parse_defaults(L, root);

	const fl_toml_value *svcs = get_tbl(L, root, "services");
	if (!fl_toml_get(root, "services"))
		err_at(L, 1, 1, "no [services]: add at least one, e.g. [services.auth]");
	else if (svcs && fl_toml_len(svcs) == 0)
		ERR_V(L, svcs, "[services] is empty: add at least one, e.g. [services.auth]");
	L->nsvcs = named_tables(L, svcs, "service", false, &names, &tbls);
	L->svcs = fl_calloc(L->nsvcs ? L->nsvcs : 1, sizeof(*L->svcs));
	L->svc_names = fl_calloc(L->nsvcs ? L->nsvcs : 1, sizeof(*L->svc_names));
	for (size_t i = 0; i < L->nsvcs; i++) {
		L->svcs[i].name = names[i];
		L->svcs[i].tbl = tbls[i];
		L->svc_names[i] = names[i];
		parse_service(L, &L->svcs[i]);
	}
	free(names);
	free(tbls);
	expand_tenants(L);

	const fl_toml_value *roles = get_tbl(L, root, "roles");
	L->nroles = named_tables(L, roles, "role", true, &names, &tbls);
	L->roles = fl_calloc(L->nroles ? L->nroles : 1, sizeof(*L->roles));
	for (size_t i = 0; i < L->nroles; i++) {
		L->roles[i].name = names[i];
		L->roles[i].tbl = tbls[i];
		parse_role(L, &L->roles[i]);
	}
	free(names);
	free(tbls);
}

/* ---- phase two: expansion and meaning ---- */

typedef struct {
	loader *L;
	const char *service; /* NULL: ${service} is not available here */
	const char *env;     /* NULL: ${env} stays as written */
	const char *scope;   /* "[environments.devtest]": where ${service} is missing */
	const char *tenant;  /* NULL: not a tenant of a template (tenants.h) */
} xctx;

static const char *const variables[] = {"service", "env", "project", "tenant"};

/*
 * Expands ${service}, ${env}, ${project} (and "$${" to "${") in string value
 * `v` of `key`. Returns a new string, or NULL after reporting. *lit is set
 * when "${env}" was left as written.
 */
static char *expand(const xctx *x, const fl_toml_value *v, const char *key, bool *lit)
{
	loader *L = x->L;
	size_t len;
	const char *s = fl_toml_string(v, &len);
	if (!s)
		return NULL;
	if (strlen(s) != len) {
		ERR_V(L, v, "\"%s\" contains a NUL byte", key);
		return NULL;
	}
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "");
	bool bad = false;
	for (size_t i = 0; i < len;) {
		if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
			fl_buf_puts(&b, "${");
			i += 3;
			continue;
		}
		if (!(s[i] == '$' && s[i + 1] == '{')) {
			fl_buf_putc(&b, s[i++]);
			continue;
		}
		const char *end = strchr(s + i + 2, '}');
		if (!end) {
			ERR_V(L, v, "unterminated ${ in \"%s\" (write $${ for a literal ${)", key);
			bad = true;
			break;
		}
		size_t nl = (size_t)(end - (s + i + 2));
		char *name = fl_strndup(s + i + 2, nl);
		if (strcmp(name, "service") == 0) {
			if (x->service) {
				fl_buf_puts(&b, x->service);
			} else {
				ERR_V(L, v, "${service} cannot be used in %s: it is not about one service",
				      x->scope);
				bad = true;
			}
		} else if (strcmp(name, "env") == 0) {
			if (x->env) {
				fl_buf_puts(&b, x->env);
			} else {
				fl_buf_puts(&b, "${env}");
				if (lit)
					*lit = true;
			}
		} else if (strcmp(name, "project") == 0) {
			fl_buf_puts(&b, L->project ? L->project : "");
		} else if (strcmp(name, "tenant") == 0) {
			if (x->tenant) {
				fl_buf_puts(&b, x->tenant);
			} else {
				ERR_V(L, v,
				      "${tenant} is only known in a service with \"tenants\" or "
				      "\"tenants_file\"");
				bad = true;
			}
		} else {
			const char *sug = fl_text_suggest(name, variables, 4);
			const char *shown = qs(L, name);
			if (sug)
				ERR_V(L, v, "unknown variable ${%.*s} in \"%s\"; did you mean ${%s}?",
				      (int)(strlen(shown) - 2), shown + 1, key, sug);
			else
				ERR_V(L, v,
				      "unknown variable ${%.*s} in \"%s\"; known: ${service}, ${env}, "
				      "${project}",
				      (int)(strlen(shown) - 2), shown + 1, key);
			bad = true;
		}
		free(name);
		i += 2 + nl + 1;
	}
	if (bad) {
		fl_buf_free(&b);
		return NULL;
	}
	return fl_buf_detach(&b);
}

enum { ID_DATABASE, ID_ROLE, ID_SCHEMA, ID_LOGIN };

/*
 * The second wall: every name is quoted when it is sent, but a name outside
 * the plain identifier alphabet is refused anyway. `what` and `of` build the
 * message ("owner", "of service auth").
 */
static bool check_ident(loader *L, const fl_toml_value *v, const char *name, const char *what, const char *of,
                        int kind)
{
	size_t n = strlen(name);
	if (n == 0) {
		ERR_V(L, v, "%s %s is empty", what, of);
		return false;
	}
	if (n > FL_MANIFEST_MAX_NAME) {
		ERR_V(L, v, "%s %s %s is %zu bytes long; PostgreSQL truncates names to %d bytes", what,
		      qs(L, name), of, n, FL_MANIFEST_MAX_NAME);
		return false;
	}
	if ((kind == ID_ROLE || kind == ID_LOGIN) && is_iam_name(name, n))
		return true;
	if (!is_ident(name, n)) {
		ERR_V(L, v,
		      "%s %s %s is not a plain name: it must match [A-Za-z_][A-Za-z0-9_$]* (letters, digits, "
		      "_ and $, "
		      "not starting with a digit or $)",
		      what, qs(L, name), of);
		return false;
	}
	if ((kind == ID_ROLE || kind == ID_SCHEMA) && strncmp(name, "pg_", 3) == 0) {
		ERR_V(L, v, "%s %s %s starts with \"pg_\", which PostgreSQL reserves for system %s", what,
		      qs(L, name), of, kind == ID_ROLE ? "roles" : "schemas");
		return false;
	}
	if (kind == ID_ROLE) {
		static const char *const reserved[] = {"public", "none", "current_user", "session_user",
		                                       "current_role"};
		for (size_t i = 0; i < 5; i++)
			if (strcmp(name, reserved[i]) == 0) {
				ERR_V(L, v, "%s %s %s is a name PostgreSQL reserves", what, qs(L, name), of);
				return false;
			}
	}
	return true;
}

static char *join_path(const char *dir, const char *p)
{
	if (p[0] == '/')
		return fl_strdup(p);
	return fl_asprintf("%s/%s", dir, p);
}

static bool env_var_name_ok(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (const char *p = s + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	return true;
}

static const char *place(loader *L, const fl_toml_value *v);

static fl_secret_ref *build_secret(const xctx *x, const raw_secret *rs)
{
	loader *L = x->L;
	if (!rs->tbl)
		return NULL;
	fl_secret_ref *ref = fl_calloc(1, sizeof(*ref));
	bool bad = false;
	if (rs->env) {
		bool lit = false;
		ref->env = expand(x, rs->env, "env", &lit);
		if (!ref->env) {
			bad = true;
		} else if (!lit && !env_var_name_ok(ref->env)) {
			ERR_V(
			    L, rs->env,
			    "environment variable name %s is not valid: it must match [A-Za-z_][A-Za-z0-9_]*",
			    qs(L, ref->env));
			bad = true;
		}
		for (size_t i = 0; ref->env && i < L->npass_env; i++)
			if (strcmp(L->pass_env[i], ref->env) == 0)
				ERR_V(L, L->pass_env_v[i],
				      "\"pass_env\" names %s, which holds a secret (%s): every secret "
				      "command would "
				      "see it; pass only what the commands need",
				      ref->env, place(L, rs->env));
	}
	if (rs->file) {
		char *f = expand(x, rs->file, "file", NULL);
		if (!f) {
			bad = true;
		} else if (!*f) {
			ERR_V(L, rs->file, "\"file\" is empty");
			bad = true;
		} else {
			ref->file = join_path(L->dir, f);
		}
		free(f);
	}
	if (rs->cmd) {
		ref->cmd = expand(x, rs->cmd, "cmd", NULL);
		if (!ref->cmd) {
			bad = true;
		} else if (!ref->cmd[strspn(ref->cmd, " \t\n")]) {
			ERR_V(L, rs->cmd, "\"cmd\" is empty");
			bad = true;
		}
	}
	if (rs->json) {
		ref->json = expand(x, rs->json, "json", NULL);
		if (!ref->json)
			bad = true;
	}
	if (bad) {
		fl_secret_ref_clear(ref);
		free(ref);
		return NULL;
	}
	ref->kind = rs->kind;
	if (L->npass_env) {
		ref->pass_env = fl_calloc(L->npass_env + 1, sizeof(char *));
		for (size_t i = 0; i < L->npass_env; i++)
			ref->pass_env[i] = fl_strdup(L->pass_env[i]);
	}
	ref->timeout_ms = L->settings.secret_timeout_ms;
	ref->origin = fl_strdup(L->path);
	ref->line = fl_toml_line(rs->tbl);
	ref->col = fl_toml_col(rs->tbl);
	return ref;
}

static void free_secret(fl_secret_ref *r)
{
	if (r) {
		fl_secret_ref_clear(r);
		free(r);
	}
}

/* libpq's own keywords, so a typo in [environments.X.options] is caught here
 * rather than by a connection failure. */
static void check_options(const xctx *x, const raw_env *re, fl_environment *e)
{
	loader *L = x->L;
	const fl_toml_value *t = re->options;
	size_t n = fl_toml_len(t);
	if (!n)
		return;
	PQconninfoOption *defs = PQconndefaults();
	size_t nk = 0;
	const char **kw = NULL;
	for (PQconninfoOption *o = defs; o && o->keyword; o++) {
		kw = fl_realloc(kw, (nk + 1) * sizeof(*kw));
		kw[nk++] = o->keyword;
	}
	e->options = fl_calloc(n, sizeof(*e->options));
	const char *scope = qs(L, re->name);
	for (size_t i = 0; i < n; i++) {
		const char *k = fl_toml_key_at(t, i);
		size_t kl = fl_toml_key_len(t, i);
		int line = fl_toml_key_line(t, i), col = fl_toml_key_col(t, i);
		const fl_toml_value *v = fl_toml_value_at(t, i);
		if (kl != strlen(k)) {
			err_at(L, line, col, "unknown libpq option %s in [environments.%s.options]",
			       qn(L, k, kl), re->name);
			continue;
		}
		if (strcmp(k, "password") == 0) {
			err_at(L, line, col,
			       "\"password\" cannot be a libpq option: never write a password into the "
			       "manifest; "
			       "use admin.password and migrator.password");
			continue;
		}
		if (strcmp(k, "host") == 0 || strcmp(k, "port") == 0 || strcmp(k, "sslmode") == 0 ||
		    strcmp(k, "connect_timeout") == 0) {
			err_at(L, line, col, "set \"%s\" in [environments.%s] itself, not in its options", k,
			       re->name);
			continue;
		}
		if (strcmp(k, "dbname") == 0 || strcmp(k, "user") == 0) {
			err_at(L, line, col,
			       "\"%s\" cannot be a libpq option: flotilla picks the database and the user "
			       "per task",
			       k);
			continue;
		}
		bool known = nk == 0;
		for (size_t j = 0; j < nk && !known; j++)
			known = strcmp(kw[j], k) == 0;
		if (!known) {
			const char *s = fl_text_suggest(k, kw, nk);
			if (s)
				err_at(L, line, col,
				       "unknown libpq option %s in [environments.%s.options]; did you mean "
				       "\"%s\"?",
				       qs(L, k), re->name, s);
			else
				err_at(L, line, col, "unknown libpq option %s in [environments.%s.options]",
				       qs(L, k), re->name);
			continue;
		}
		char *val = NULL;
		switch (fl_toml_type_of(v)) {
		case FL_TOML_STRING:
			val = expand(x, v, k, NULL);
			break;
		case FL_TOML_INTEGER:
			val = fl_asprintf("%lld", (long long)fl_toml_int(v));
			break;
		case FL_TOML_BOOL:
			val = fl_strdup(fl_toml_bool(v) ? "1" : "0");
			break;
		default:
			ERR_V(L, v, "libpq option \"%s\" must be a string, an integer or a boolean, not %s",
			      k, a_type(v));
			break;
		}
		if (!val)
			continue;
		e->options[e->noptions].key = fl_strdup(k);
		e->options[e->noptions].value = val;
		e->noptions++;
	}
	(void)scope;
	free(kw);
	PQconninfoFree(defs);
}

static void build_login(const xctx *x, const raw_login *rl, fl_login *out, const char *what, const char *of)
{
	if (!rl->tbl)
		return;
	if (rl->user) {
		out->user = expand(x, rl->user, "user", NULL);
		/* existing roles ("postgres" is fine): only the plain-name rules, no reserved names */
		if (out->user)
			check_ident(x->L, rl->user, out->user, what, of, ID_LOGIN);
	}
	out->password = build_secret(x, &rl->pw);
	out->token = build_secret(x, &rl->token);
	out->url = build_secret(x, &rl->url);
}

/*
 * A host is what libpq takes as one: a name, an address or a socket
 * directory. The common slips (a port glued on, a URL, a space) would
 * otherwise fail only at connect time, with an error that echoes the host.
 * A URL is not shown back: it may hold a password.
 */
static void check_host(loader *L, const fl_toml_value *v, const char *h)
{
	if (strstr(h, "://") || strncasecmp(h, "jdbc:", 5) == 0) {
		ERR_V(L, v,
		      "\"host\" is a URL, not a host; write its parts as host = \"10.0.0.5\", port = 5432 "
		      "(sslmode and the users in their own keys), or take the whole connection from a "
		      "secret with migrator = { user = \"...\", url = { cmd = \"...\" } }");
		return;
	}
	if (strpbrk(h, " \t\r\n")) {
		ERR_V(L, v,
		      "\"host\" %s holds a space; a host is one name, address or socket directory (several "
		      "hosts are separated by commas, without spaces)",
		      qs(L, h));
		return;
	}
	if (h[0] == '/' || h[0] == '@')
		return; /* a socket directory may hold ':' (/cloudsql/project:region:instance) */
	if (h[0] == '[') {
		ERR_V(L, v,
		      "\"host\" %s is written in brackets; write the IPv6 address bare, and the port in "
		      "\"port\"",
		      qs(L, h));
		return;
	}
	const char *colon = strchr(h, ':');
	if (colon && !strchr(colon + 1, ':')) {
		const char *p = colon + 1;
		bool digits = *p != '\0';
		for (const char *c = p; *c && digits; c++)
			digits = *c >= '0' && *c <= '9';
		char *hostpart = fl_strndup(h, (size_t)(colon - h));
		if (digits)
			ERR_V(L, v, "\"host\" %s holds a port; write host = %s and port = %s", qs(L, h),
			      qs(L, hostpart), p);
		else
			ERR_V(L, v,
			      "\"host\" %s holds a ':'; a host name has none (the port goes in \"port\")",
			      qs(L, h));
		free(hostpart);
	}
}

static void build_env(loader *L, const raw_env *re, fl_environment *e)
{
	xctx x = {L, NULL, re->name, keep(L, fl_asprintf("[environments.%s]", re->name)), NULL};
	e->name = fl_strdup(re->name);
	e->line = fl_toml_line(re->tbl);
	e->col = fl_toml_col(re->tbl);
	e->port = re->port;
	e->connect_timeout = re->connect_timeout;
	e->service_passwords = re->service_passwords;
	if (re->host) {
		e->host = expand(&x, re->host, "host", NULL);
		if (e->host && !*e->host) {
			ERR_V(L, re->host, "\"host\" is empty; leave it out to use libpq's default (PGHOST)");
		}
		if (e->host && *e->host)
			check_host(L, re->host, e->host);
	}
	if (re->sslmode) {
		e->sslmode = expand(&x, re->sslmode, "sslmode", NULL);
		if (e->sslmode) {
			bool ok = false;
			for (size_t i = 0; i < 6 && !ok; i++)
				ok = strcmp(e->sslmode, sslmodes[i]) == 0;
			if (!ok) {
				const char *s = fl_text_suggest(e->sslmode, sslmodes, 6);
				if (s)
					ERR_V(L, re->sslmode, "unknown sslmode %s; did you mean \"%s\"?",
					      qs(L, e->sslmode), s);
				else
					ERR_V(L, re->sslmode,
					      "unknown sslmode %s; one of disable, allow, prefer, require, "
					      "verify-ca, "
					      "verify-full",
					      qs(L, e->sslmode));
			}
		}
	}
	const char *of = keep(L, fl_asprintf("of environment %s", re->name));
	if (re->maintenance_db) {
		e->maintenance_db = expand(&x, re->maintenance_db, "maintenance_db", NULL);
		if (e->maintenance_db)
			check_ident(L, re->maintenance_db, e->maintenance_db, "maintenance_db", of,
			            ID_DATABASE);
	} else {
		e->maintenance_db = fl_strdup("postgres");
	}
	check_options(&x, re, e);
	build_login(&x, &re->admin, &e->admin, "admin user", of);
	build_login(&x, &re->migrator, &e->migrator, "migrator user", of);
}

static void add_placeholders(const xctx *x, const fl_toml_value *ph, fl_service *s)
{
	size_t n = fl_toml_len(ph);
	for (size_t i = 0; i < n; i++) {
		const char *k = fl_toml_key_at(ph, i);
		const fl_toml_value *v = fl_toml_value_at(ph, i);
		if (fl_toml_key_len(ph, i) != strlen(k))
			continue; /* reported in phase one */
		char *val = NULL;
		switch (fl_toml_type_of(v)) {
		case FL_TOML_STRING:
			val = expand(x, v, k, NULL);
			break;
		case FL_TOML_INTEGER:
			val = fl_asprintf("%lld", (long long)fl_toml_int(v));
			break;
		case FL_TOML_BOOL:
			val = fl_strdup(fl_toml_bool(v) ? "true" : "false");
			break;
		default:
			break;
		}
		if (!val)
			continue;
		size_t j = 0;
		while (j < s->nplaceholders && strcmp(s->placeholders[j].name, k) != 0)
			j++;
		if (j < s->nplaceholders) {
			free((char *)s->placeholders[j].value);
			s->placeholders[j].value = val;
			continue;
		}
		s->placeholders =
		    fl_realloc(s->placeholders, (s->nplaceholders + 1) * sizeof(*s->placeholders));
		s->placeholders[s->nplaceholders].name = fl_strdup(k);
		s->placeholders[s->nplaceholders].value = val;
		s->nplaceholders++;
	}
}

static ssize_t svc_index(const loader *L, const char *name)
{
	for (size_t i = 0; i < L->nsvcs; i++)
		if (strcmp(L->svcs[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* reads = [...] of a service (self: its index) or a role (self: -1). */
static void build_reads(const xctx *x, const fl_toml_value *arr, const char *who, ssize_t self, char ***names,
                        size_t **idx, size_t *n)
{
	loader *L = x->L;
	size_t len = fl_toml_len(arr);
	*names = fl_calloc(len ? len : 1, sizeof(**names));
	*idx = fl_calloc(len ? len : 1, sizeof(**idx));
	*n = 0;
	for (size_t i = 0; i < len; i++) {
		const fl_toml_value *v = fl_toml_at(arr, i);
		if (fl_toml_type_of(v) != FL_TOML_STRING)
			continue;
		char *name = expand(x, v, "reads", NULL);
		if (!name)
			continue;
		ssize_t k = svc_index(L, name);
		bool dup = false;
		for (size_t j = 0; j < *n && !dup; j++)
			dup = strcmp((*names)[j], name) == 0;
		if (k < 0) {
			const char *s = fl_text_suggest(name, L->svc_names, L->nsvcs);
			if (s)
				ERR_V(L, v, "%s reads unknown service %s; did you mean \"%s\"?", who,
				      qs(L, name), s);
			else
				ERR_V(L, v, "%s reads unknown service %s", who, qs(L, name));
		} else if (k == self) {
			ERR_V(L, v, "%s reads itself; \"reads\" names other services", who);
		} else if (dup) {
			ERR_V(L, v, "%s reads %s twice", who, qs(L, name));
		} else {
			(*names)[*n] = name;
			(*idx)[*n] = (size_t)k;
			(*n)++;
			continue;
		}
		free(name);
	}
}

/*
 * A Flyway location as a folder: "filesystem:" is dropped (in place);
 * "classpath:" (inside a Java build) has no folder flotilla can know.
 * Returns 0, or -1 (reported).
 */
static int flyway_location(loader *L, const fl_toml_value *v, char *m)
{
	if (strncmp(m, "filesystem:", 11) == 0) {
		memmove(m, m + 11, strlen(m + 11) + 1);
		return 0;
	}
	if (strncmp(m, "classpath:", 10) == 0) {
		ERR_V(L, v,
		      "location %s is on the Java classpath; give its folder instead (for Maven and "
		      "Gradle projects src/main/resources/%s)",
		      qs(L, m), m + 10 + (m[10] == '/'));
		return -1;
	}
	return 0;
}

/* The service's own value of a Flyway key, else the default's (any type). */
static const fl_toml_value *fw_get(loader *L, const fl_toml_value *t, const char *key)
{
	const fl_toml_value *v = fl_toml_get(t, key);
	return v ? v : L->d_tbl ? fl_toml_get(L->d_tbl, key) : NULL;
}

/* A version key (string or integer) as text, checked; NULL when absent or bad (reported). */
static char *fw_version(const xctx *x, const fl_toml_value *v, const char *key, bool words)
{
	if (!v)
		return NULL;
	char *s = NULL;
	if (fl_toml_type_of(v) == FL_TOML_INTEGER)
		s = fl_asprintf("%lld", (long long)fl_toml_int(v));
	else if (fl_toml_type_of(v) == FL_TOML_STRING)
		s = expand(x, v, key, NULL);
	if (!s)
		return NULL;
	if (words && (strcmp(s, "latest") == 0 || strcmp(s, "current") == 0))
		return s;
	if (!fl_migration_version_valid(s)) {
		ERR_V(x->L, v, "\"%s\" %s is not a version (like 1 or 2.1)%s", key, qs(x->L, s),
		      words ? ", \"latest\" or \"current\"" : "");
		free(s);
		return NULL;
	}
	for (char *p = s; *p; p++)
		if (*p == '_')
			*p = '.';
	return s;
}

/* Folder `m` (expanded, as written) of a service: absolute, or NULL (reported). */
static char *fw_folder(loader *L, const fl_toml_value *v, const char *m, const char *of)
{
	char *full = join_path(L->dir, m);
	struct stat st;
	if (stat(full, &st) != 0) {
		ERR_V(L, v, "location %s %s does not exist%s", qs(L, m), of,
		      m[0] == '/' ? "" : " (relative to the manifest's folder)");
	} else if (!S_ISDIR(st.st_mode)) {
		ERR_V(L, v, "location %s %s is not a folder", qs(L, m), of);
	} else {
		char *r = realpath(full, NULL);
		if (r) {
			free(full);
			return r;
		}
		return full;
	}
	free(full);
	return NULL;
}

static void build_flyway(const xctx *x, const raw_service *rs, fl_service *s)
{
	loader *L = x->L;
	const fl_toml_value *t = rs->tbl;
	const char *of = keep(L, fl_asprintf("of service %s", rs->name));
	const fl_toml_value *v = fw_get(L, t, "table");
	if (v && fl_toml_type_of(v) == FL_TOML_STRING) {
		s->table = expand(x, v, "table", NULL);
		if (s->table)
			check_ident(L, v, s->table, "table", of, ID_SCHEMA);
	}
	size_t nl = rs->locations ? fl_toml_len(rs->locations) : 0;
	for (size_t i = 1; i < nl; i++) {
		const fl_toml_value *lv = fl_toml_at(rs->locations, i);
		bool lit = false;
		char *m = expand(x, lv, "locations", &lit);
		if (!m || flyway_location(L, lv, m) != 0) {
			free(m);
			continue;
		}
		char *full = lit ? join_path(L->dir, m) : fw_folder(L, lv, m, of);
		if (!full) {
			free(m);
			continue;
		}
		s->more_locations = fl_realloc(s->more_locations, (s->nmore_locations + 1) * sizeof(char *));
		s->more_locations_as_written =
		    fl_realloc(s->more_locations_as_written, (s->nmore_locations + 1) * sizeof(char *));
		s->more_locations[s->nmore_locations] = full;
		s->more_locations_as_written[s->nmore_locations++] = m;
	}
	v = fw_get(L, t, "sql_migration_suffixes");
	if (v && fl_toml_type_of(v) == FL_TOML_ARRAY) {
		for (size_t i = 0; i < fl_toml_len(v); i++) {
			const fl_toml_value *e = fl_toml_at(v, i);
			size_t len = 0;
			const char *sv =
			    fl_toml_type_of(e) == FL_TOML_STRING ? fl_toml_string(e, &len) : NULL;
			if (!sv || !len)
				continue;
			s->sql_migration_suffixes = fl_realloc(
			    s->sql_migration_suffixes, (s->nsql_migration_suffixes + 1) * sizeof(char *));
			s->sql_migration_suffixes[s->nsql_migration_suffixes++] = fl_strdup(sv);
		}
	}
	v = fw_get(L, t, "baseline_on_migrate");
	if (v && fl_toml_type_of(v) == FL_TOML_BOOL)
		s->baseline_on_migrate = fl_toml_bool(v);
	v = fw_get(L, t, "out_of_order");
	if (v && fl_toml_type_of(v) == FL_TOML_BOOL)
		s->out_of_order = fl_toml_bool(v);
	s->baseline_version = fw_version(x, fw_get(L, t, "baseline_version"), "baseline_version", false);
	s->target = fw_version(x, fw_get(L, t, "target"), "target", true);
	size_t ns = rs->schemas ? fl_toml_len(rs->schemas) : 0;
	for (size_t i = 1; i < ns; i++) {
		const fl_toml_value *sv = fl_toml_at(rs->schemas, i);
		bool lit = false;
		char *name = expand(x, sv, "schemas", &lit);
		if (!name)
			continue;
		if (!lit)
			check_ident(L, sv, name, "schemas", of, ID_SCHEMA);
		s->more_schemas = fl_realloc(s->more_schemas, (s->nmore_schemas + 1) * sizeof(char *));
		s->more_schemas[s->nmore_schemas++] = name;
	}
}

static void build_service(loader *L, const raw_service *rs, const char *env, const fl_environment *sel,
                          fl_service *s)
{
	/* a tenant's ${service} is its template's name: one folder, one naming rule for all */
	xctx x = {L, rs->tmpl ? rs->tmpl : rs->name, env, NULL, rs->tenant};
	const char *of = keep(L, fl_asprintf("of service %s", rs->name));
	s->name = fl_strdup(rs->name);
	s->keep_alembic_version = rs->keep_alembic_version;
	if (rs->tmpl) {
		s->tmpl = fl_strdup(rs->tmpl);
		s->tenant = fl_strdup(rs->tenant);
	}
	s->line = fl_toml_line(rs->tbl);
	s->col = fl_toml_col(rs->tbl);
	if (rs->description)
		s->description = expand(&x, rs->description, "description", NULL);
	bool lit = false;
	if (rs->database) {
		s->database = expand(&x, rs->database, "database", &lit);
		if (s->database && !lit)
			check_ident(L, rs->database, s->database, "database", of, ID_DATABASE);
	}
	lit = false;
	if (rs->owner) {
		s->owner = expand(&x, rs->owner, "owner", &lit);
		if (s->owner && !lit)
			check_ident(L, rs->owner, s->owner, "owner", of, ID_ROLE);
	}
	lit = false;
	if (rs->schema) {
		s->schema = expand(&x, rs->schema, "schema", &lit);
		if (s->schema && !lit)
			check_ident(L, rs->schema, s->schema, "schema", of, ID_SCHEMA);
	} else {
		s->schema = fl_strdup("public");
	}
	/* checked even where it is not used, so every environment sees the same problems */
	s->password = build_secret(&x, &rs->pw);
	if (s->password && s->password->kind == FL_SECRET_URL_PASSWORD && s->owner)
		s->password->url_user = fl_strdup(s->owner);
	if (sel && !sel->service_passwords) {
		free_secret(s->password);
		s->password = NULL;
	}
	if (rs->sink)
		s->password_sink = expand(&x, rs->sink, "password_sink", NULL);
	lit = false;
	if (rs->migrations) {
		char *m = expand(&x, rs->migrations, "migrations", &lit);
		if (m && flyway_location(L, rs->migrations, m) != 0) {
			free(m);
			m = NULL;
		}
		if (m && !*m) {
			ERR_V(L, rs->migrations, "migrations folder %s is empty", of);
		} else if (m) {
			s->migrations_as_written = m;
			m = NULL;
			char *full = join_path(L->dir, s->migrations_as_written);
			struct stat st;
			if (lit) {
				s->migrations = full;
				full = NULL;
			} else if (stat(full, &st) != 0) {
				ERR_V(L, rs->migrations, "migrations folder %s %s does not exist%s",
				      qs(L, s->migrations_as_written), of,
				      s->migrations_as_written[0] == '/'
				          ? ""
				          : " (relative to the manifest's folder)");
			} else if (!S_ISDIR(st.st_mode)) {
				ERR_V(L, rs->migrations, "migrations folder %s %s is not a folder",
				      qs(L, s->migrations_as_written), of);
			} else {
				s->migrations = realpath(full, NULL);
				if (!s->migrations) {
					s->migrations = full;
					full = NULL;
				}
			}
			free(full);
		}
		free(m);
	}
	const char *who = keep(L, fl_asprintf("service %s", rs->name));
	build_reads(&x, rs->reads, who, svc_index(L, rs->name), &s->reads, &s->reads_index, &s->nreads);
	add_placeholders(&x, rs->ph_defaults, s);
	add_placeholders(&x, rs->ph_own, s);
	build_flyway(&x, rs, s);
}

static void build_role(loader *L, const raw_role *rr, const char *env, const fl_environment *sel, fl_role *r)
{
	const char *scope = keep(L, fl_asprintf("[roles.%s]", rr->name));
	xctx x = {L, NULL, env, scope, NULL};
	r->name = fl_strdup(rr->name);
	r->line = fl_toml_line(rr->tbl);
	r->col = fl_toml_col(rr->tbl);
	r->login = rr->login;
	/* the key was held to the name rules in phase one; the reserved names remain */
	int kl = 0, kc = 0;
	const fl_toml_value *roles = fl_toml_get(L->root, "roles");
	for (size_t i = 0; i < fl_toml_len(roles); i++)
		if (strcmp(fl_toml_key_at(roles, i), rr->name) == 0) {
			kl = fl_toml_key_line(roles, i);
			kc = fl_toml_key_col(roles, i);
		}
	if (strncmp(rr->name, "pg_", 3) == 0)
		err_at(L, kl, kc, "role %s starts with \"pg_\", which PostgreSQL reserves for system roles",
		       qs(L, rr->name));
	static const char *const reserved[] = {"public", "none", "current_user", "session_user",
	                                       "current_role"};
	for (size_t i = 0; i < 5; i++)
		if (strcmp(rr->name, reserved[i]) == 0)
			err_at(L, kl, kc, "role %s is a name PostgreSQL reserves", qs(L, rr->name));
	if (rr->description)
		r->description = expand(&x, rr->description, "description", NULL);
	const char *who = keep(L, fl_asprintf("role %s", rr->name));
	build_reads(&x, rr->reads, who, -1, &r->reads, &r->reads_index, &r->nreads);
	r->password = build_secret(&x, &rr->pw);
	if (sel && !sel->service_passwords) {
		free_secret(r->password);
		r->password = NULL;
	}
}

static const char *place(loader *L, const fl_toml_value *v)
{
	return keep(L, fl_asprintf("%s:%d:%d", L->path, fl_toml_line(v), fl_toml_col(v)));
}

/* Where the other one of a pair was written; both may come from one default. */
static const char *same_place(loader *L, const fl_toml_value *mine, const fl_toml_value *other)
{
	if (mine == other)
		return "both from this one value: make it differ per service with ${service}";
	return place(L, other);
}

/* same_place, for two services: tenants of one template need ${tenant} to differ. */
static const char *pair_place(loader *L, const raw_service *a, const raw_service *b,
                              const fl_toml_value *mine, const fl_toml_value *other)
{
	if (mine == other && a->tmpl && b->tmpl && strcmp(a->tmpl, b->tmpl) == 0)
		return "both from this one value: make it differ per tenant with ${tenant}";
	return same_place(L, mine, other);
}

/* The cross-checks of one resolved environment (sel NULL: those that need none). */
static const char *svc_key(const fl_service *s, int k)
{
	return k == 0 ? s->name : k == 1 ? s->database : s->owner;
}

static int cmp_key(const void *a, const void *b, void *arg)
{
	const fl_manifest *m = ((const void **)arg)[0];
	int k = *(const int *)((const void **)arg)[1];
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcasecmp(svc_key(&m->services[x], k), svc_key(&m->services[y], k));
	return c ? c : x < y ? -1 : x > y;
}

static int cmp_pair(const void *a, const void *b)
{
	const size_t *x = a, *y = b;
	return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : x[1] != y[1] ? (x[1] < y[1] ? -1 : 1) : 0;
}

/*
 * The pairs cross_check compares: every check of two services needs their
 * names, databases or owners to be equal ignoring case, so only services
 * that share one are paired (sorted per key), not all n^2/2 of a fleet of
 * thousands of tenants. Returns the earlier service j of each pair (i, j),
 * grouped by i: start[i] .. start[i + 1] (start has n + 1 entries).
 */
static size_t *pair_candidates(const fl_manifest *m, size_t **start)
{
	size_t n = m->nservices, np = 0, cap = 16;
	size_t *pairs = fl_malloc(cap * 2 * sizeof(size_t));
	size_t *idx = fl_malloc((n ? n : 1) * sizeof(size_t));
	for (int k = 0; k < 3; k++) {
		size_t ni = 0;
		for (size_t i = 0; i < n; i++)
			if (svc_key(&m->services[i], k))
				idx[ni++] = i;
		const void *arg[2] = {m, &k};
		qsort_r(idx, ni, sizeof(size_t), cmp_key, arg);
		for (size_t g = 0; g < ni;) {
			size_t e = g + 1;
			while (e < ni && strcasecmp(svc_key(&m->services[idx[g]], k),
			                            svc_key(&m->services[idx[e]], k)) == 0)
				e++;
			for (size_t a = g; a < e; a++)
				for (size_t b = g; b < a;
				     b++) { /* sorted by index within the group: idx[b] < idx[a] */
					if (np == cap)
						pairs = fl_realloc(pairs, (cap *= 2) * 2 * sizeof(size_t));
					pairs[2 * np] = idx[a];
					pairs[2 * np + 1] = idx[b];
					np++;
				}
			g = e;
		}
	}
	free(idx);
	qsort(pairs, np, 2 * sizeof(size_t), cmp_pair);
	size_t *out = fl_malloc((np ? np : 1) * sizeof(size_t));
	*start = fl_calloc(n + 1, sizeof(size_t));
	size_t no = 0;
	for (size_t p = 0; p < np; p++) {
		if (p > 0 && cmp_pair(&pairs[2 * p], &pairs[2 * (p - 1)]) == 0)
			continue;
		out[no++] = pairs[2 * p + 1];
		(*start)[pairs[2 * p] + 1]++;
	}
	for (size_t i = 0; i < n; i++)
		(*start)[i + 1] += (*start)[i];
	free(pairs);
	return out;
}

static void cross_check(loader *L, fl_manifest *m, const fl_environment *sel)
{
	size_t *start, *cand = pair_candidates(m, &start);
	for (size_t i = 0; i < m->nservices; i++) {
		fl_service *s = &m->services[i];
		const raw_service *rs = &L->svcs[i];
		for (size_t q = start[i]; q < start[i + 1]; q++) {
			size_t j = cand[q];
			fl_service *o = &m->services[j];
			const raw_service *ro = &L->svcs[j];
			if (s->database && o->database && strcmp(s->database, o->database) == 0)
				ERR_V(L, rs->database,
				      "database %s of service %s is also the database of service %s (%s)",
				      qs(L, s->database), s->name, o->name,
				      pair_place(L, rs, ro, rs->database, ro->database));
			if (s->owner && o->owner && strcmp(s->owner, o->owner) == 0)
				ERR_V(L, rs->owner,
				      "owner %s of service %s is also the owner of service %s (%s)",
				      qs(L, s->owner), s->name, o->name,
				      pair_place(L, rs, ro, rs->owner, ro->owner));
			/* quoted names keep their case: two spellings would be two databases */
			if (strcasecmp(s->name, o->name) == 0)
				ERR_V(
				    L, rs->tbl,
				    "service %s differs from service %s (%s) only in case; use one spelling",
				    s->name, o->name, place(L, ro->tbl));
			if (s->database && o->database && strcmp(s->database, o->database) != 0 &&
			    strcasecmp(s->database, o->database) == 0)
				ERR_V(L, rs->database,
				      "database %s of service %s differs from database %s of service %s (%s) "
				      "only "
				      "in case; PostgreSQL would keep both (flotilla quotes names): use one "
				      "spelling",
				      qs(L, s->database), s->name, qs(L, o->database), o->name,
				      place(L, ro->database));
			if (s->owner && o->owner && strcmp(s->owner, o->owner) != 0 &&
			    strcasecmp(s->owner, o->owner) == 0)
				ERR_V(
				    L, rs->owner,
				    "owner %s of service %s differs from owner %s of service %s (%s) only in "
				    "case; PostgreSQL would keep both roles: use one spelling",
				    qs(L, s->owner), s->name, qs(L, o->owner), o->name, place(L, ro->owner));
		}
		if (!sel)
			continue;
		if (s->owner && sel->admin.user && strcmp(s->owner, sel->admin.user) == 0)
			ERR_V(L, rs->owner, "owner %s of service %s is the admin user of environment %s",
			      qs(L, s->owner), s->name, sel->name);
		if (s->owner && sel->migrator.user && strcmp(s->owner, sel->migrator.user) == 0)
			ERR_V(L, rs->owner, "owner %s of service %s is the migrator user of environment %s",
			      qs(L, s->owner), s->name, sel->name);
		if (s->database && sel->maintenance_db && strcmp(s->database, sel->maintenance_db) == 0)
			ERR_V(L, rs->database,
			      "database %s of service %s is the maintenance database of environment %s",
			      qs(L, s->database), s->name, sel->name);
	}
	free(cand);
	free(start);
	for (size_t i = 0; i < m->nroles; i++) {
		fl_role *r = &m->roles[i];
		const raw_role *rr = &L->roles[i];
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(r->name, m->roles[j].name) == 0)
				ERR_V(L, rr->tbl,
				      "role %s differs from role %s (%s) only in case; use one spelling",
				      r->name, m->roles[j].name, place(L, L->roles[j].tbl));
		for (size_t j = 0; j < m->nservices; j++) {
			fl_service *s = &m->services[j];
			if (s->owner && strcmp(s->owner, r->name) == 0)
				ERR_V(L, rr->tbl, "role %s is also the owner of service %s (%s)", r->name,
				      s->name, place(L, L->svcs[j].owner));
			else if (s->owner && strcasecmp(s->owner, r->name) == 0)
				ERR_V(
				    L, rr->tbl,
				    "role %s differs from owner %s of service %s (%s) only in case; use one "
				    "spelling",
				    r->name, qs(L, s->owner), s->name, place(L, L->svcs[j].owner));
		}
		if (!sel)
			continue;
		if (sel->admin.user && strcmp(r->name, sel->admin.user) == 0)
			ERR_V(L, rr->tbl, "role %s is the admin user of environment %s", r->name, sel->name);
		if (sel->migrator.user && strcmp(r->name, sel->migrator.user) == 0)
			ERR_V(L, rr->tbl, "role %s is the migrator user of environment %s", r->name,
			      sel->name);
	}
}

/* Builds the whole manifest for `env` (an index into L->envs; -1: ${env} as written). */
static fl_manifest *build(loader *L, ssize_t env)
{
	fl_manifest *m = fl_calloc(1, sizeof(*m));
	m->path = fl_strdup(L->path);
	m->dir = fl_strdup(L->dir);
	m->version = L->version;
	m->project = fl_strdup(L->project ? L->project : "");
	m->settings = L->settings;
	m->settings.pass_env = fl_calloc(L->npass_env + 1, sizeof(char *));
	for (size_t i = 0; i < L->npass_env; i++)
		m->settings.pass_env[i] = fl_strdup(L->pass_env[i]);
	m->lint.pg_version = L->lint.pg_version;
	m->lint.nrules = L->lint.nrules;
	m->lint.rules = fl_calloc(L->lint.nrules + 1, sizeof(*m->lint.rules));
	for (size_t i = 0; i < L->lint.nrules; i++) {
		m->lint.rules[i] = L->lint.rules[i];
		m->lint.rules[i].rule = fl_strdup(L->lint.rules[i].rule);
		m->lint.rules[i].level = fl_strdup(L->lint.rules[i].level);
		if (L->lint.rules[i].from_version)
			m->lint.rules[i].from_version = fl_strdup(L->lint.rules[i].from_version);
	}
	m->settings.drift_ignore_schemas = fl_calloc(L->settings.ndrift_ignore_schemas + 1, sizeof(char *));
	for (size_t i = 0; i < L->settings.ndrift_ignore_schemas; i++)
		m->settings.drift_ignore_schemas[i] = fl_strdup(L->settings.drift_ignore_schemas[i]);
	m->nenvs = L->nenvs;
	m->envs = fl_calloc(L->nenvs ? L->nenvs : 1, sizeof(*m->envs));
	for (size_t i = 0; i < L->nenvs; i++)
		build_env(L, &L->envs[i], &m->envs[i]);
	const fl_environment *sel = env >= 0 ? &m->envs[env] : NULL;
	const char *env_name = sel ? sel->name : NULL;
	m->env = sel;
	m->nservices = L->nsvcs;
	m->services = fl_calloc(L->nsvcs ? L->nsvcs : 1, sizeof(*m->services));
	for (size_t i = 0; i < L->nsvcs; i++)
		build_service(L, &L->svcs[i], env_name, sel, &m->services[i]);
	m->nroles = L->nroles;
	m->roles = fl_calloc(L->nroles ? L->nroles : 1, sizeof(*m->roles));
	for (size_t i = 0; i < L->nroles; i++)
		build_role(L, &L->roles[i], env_name, sel, &m->roles[i]);
	/* names still holding "${env}" are not compared: each environment's pass did that */
	if (sel) {
		cross_check(L, m, sel);
	} else {
		fl_manifest tmp = *m;
		fl_service *svcs = fl_calloc(m->nservices ? m->nservices : 1, sizeof(*svcs));
		for (size_t i = 0; i < m->nservices; i++) {
			svcs[i] = m->services[i];
			if (svcs[i].database && strstr(svcs[i].database, "${env}"))
				svcs[i].database = NULL;
			if (svcs[i].owner && strstr(svcs[i].owner, "${env}"))
				svcs[i].owner = NULL;
		}
		tmp.services = svcs;
		cross_check(L, &tmp, NULL);
		free(svcs);
	}
	return m;
}

/* ---- freeing, sorting, public API ---- */

static void free_login(fl_login *l)
{
	free(l->user);
	free_secret(l->password);
	free_secret(l->token);
	free_secret(l->url);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_lint(fl_manifest_lint *l)
{
	for (size_t i = 0; i < l->nrules; i++) {
		free(l->rules[i].rule);
		free(l->rules[i].level);
		free(l->rules[i].from_version);
	}
	free(l->rules);
}

void fl_manifest_free(fl_manifest *m)
{
	if (!m)
		return;
	free_strv(m->settings.drift_ignore_schemas, m->settings.ndrift_ignore_schemas);
	for (size_t i = 0; i < m->nenvs; i++) {
		fl_environment *e = &m->envs[i];
		free(e->name);
		free(e->host);
		free(e->sslmode);
		free(e->maintenance_db);
		for (size_t j = 0; j < e->noptions; j++) {
			free(e->options[j].key);
			free(e->options[j].value);
		}
		free(e->options);
		free_login(&e->admin);
		free_login(&e->migrator);
	}
	free(m->envs);
	for (size_t i = 0; i < m->nservices; i++) {
		fl_service *s = &m->services[i];
		free(s->name);
		free(s->description);
		free(s->database);
		free(s->owner);
		free(s->schema);
		free_secret(s->password);
		free(s->password_sink);
		free(s->migrations);
		free(s->migrations_as_written);
		free(s->tmpl);
		free(s->tenant);
		free_strv(s->reads, s->nreads);
		free(s->reads_index);
		for (size_t j = 0; j < s->nplaceholders; j++) {
			free((char *)s->placeholders[j].name);
			free((char *)s->placeholders[j].value);
		}
		free(s->placeholders);
		free(s->table);
		free_strv(s->more_locations, s->nmore_locations);
		free_strv(s->more_locations_as_written, s->nmore_locations);
		free_strv(s->sql_migration_suffixes, s->nsql_migration_suffixes);
		free(s->baseline_version);
		free_strv(s->more_schemas, s->nmore_schemas);
		free(s->target);
	}
	free(m->services);
	for (size_t i = 0; i < m->nroles; i++) {
		fl_role *r = &m->roles[i];
		free(r->name);
		free(r->description);
		free_strv(r->reads, r->nreads);
		free(r->reads_index);
		free_secret(r->password);
	}
	free(m->roles);
	for (char **p = m->settings.pass_env; p && *p; p++)
		free(*p);
	free(m->settings.pass_env);
	free_lint(&m->lint);
	free(m->path);
	free(m->dir);
	free(m->project);
	free(m);
}

typedef struct {
	fl_error *e;
	size_t seq;
} sortable;

static int cmp_err(const void *a, const void *b)
{
	const sortable *x = a, *y = b;
	if (x->e->line != y->e->line)
		return x->e->line < y->e->line ? -1 : 1;
	if (x->e->col != y->e->col)
		return x->e->col < y->e->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_err(const fl_error *a, const fl_error *b)
{
	return a->line == b->line && a->col == b->col && strcmp(a->msg, b->msg) == 0 &&
	       ((!a->file && !b->file) || (a->file && b->file && strcmp(a->file, b->file) == 0));
}

/* Sorted by place (problems without a line first), each problem once. */
static fl_error *tidy(fl_error *list)
{
	size_t n = (size_t)fl_error_count(list);
	if (n < 2)
		return list;
	sortable *v = fl_calloc(n, sizeof(*v));
	size_t k = 0;
	for (fl_error *e = list; e;) {
		fl_error *next = e->next;
		e->next = NULL;
		v[k].e = e;
		v[k].seq = k;
		k++;
		e = next;
	}
	qsort(v, n, sizeof(*v), cmp_err);
	bool *dup = fl_calloc(n, sizeof(*dup));
	fl_error *head = NULL, **tail = &head;
	for (size_t i = 0; i < n; i++) {
		/* after sorting, a repeat sits among the problems of the same place */
		for (size_t j = i;
		     j-- > 0 && v[j].e->line == v[i].e->line && v[j].e->col == v[i].e->col && !dup[i];)
			dup[i] = same_err(v[j].e, v[i].e);
		if (!dup[i]) {
			*tail = v[i].e;
			tail = &v[i].e->next;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (dup[i])
			fl_error_free(v[i].e);
	free(dup);
	free(v);
	return head;
}

static char *join_names(const char *const *names, size_t n)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (i)
			fl_buf_puts(&b, ", ");
		fl_buf_puts(&b, names[i]);
	}
	return fl_buf_detach(&b);
}

fl_manifest *fl_manifest_load(const char *path, const char *env, fl_error **err)
{
	*err = NULL;
	fl_error *perr = NULL;
	fl_toml_value *root = fl_toml_parse_file(path, &perr);
	if (!root) {
		*err = perr;
		return NULL;
	}
	loader L;
	memset(&L, 0, sizeof(L));
	L.path = path;
	L.root = root;
	char *copy = fl_strdup(path);
	char *d = realpath(dirname(copy), NULL);
	L.dir = d ? d : fl_strdup(".");
	free(copy);
	if (fl_toml_type_of(root) == FL_TOML_TABLE)
		parse_top(&L);

	ssize_t sel = -1;
	if (env) {
		for (size_t i = 0; i < L.nenvs && sel < 0; i++)
			if (strcmp(L.envs[i].name, env) == 0)
				sel = (ssize_t)i;
		/* with no usable environment at all, that problem was reported already */
		if (sel < 0 && L.nenvs) {
			const char **names = fl_calloc(L.nenvs ? L.nenvs : 1, sizeof(*names));
			for (size_t i = 0; i < L.nenvs; i++)
				names[i] = L.envs[i].name;
			char *known = join_names(names, L.nenvs);
			const char *s = fl_text_suggest(env, names, L.nenvs);
			const char *shown = qs(&L, env);
			/* shown in single quotes like every name given on the command line */
			char *name = fl_asprintf("'%.*s'", (int)(strlen(shown) - 2), shown + 1);
			fl_error *e;
			if (s)
				e = fl_error_at(path, 0, 0,
				                "unknown environment %s; did you mean '%s'? known: %s", name,
				                s, known);
			else
				e = fl_error_at(path, 0, 0, "unknown environment %s; known: %s", name, known);
			add_err(&L, e);
			free(name);
			free(known);
			free(names);
		}
	}
	fl_manifest *m;
	if (sel >= 0) {
		m = build(&L, sel);
	} else {
		for (size_t i = 0; i < L.nenvs; i++)
			fl_manifest_free(build(&L, (ssize_t)i));
		m = build(&L, -1);
	}
	fl_error *errs = tidy(L.errs);
	for (size_t i = 0; i < L.ntmp; i++)
		free(L.tmp[i]);
	free(L.tmp);
	free_lint(&L.lint);
	free(L.envs);
	free(L.svcs);
	free(L.svc_names);
	for (size_t i = 0; i < L.ntenant_lists; i++)
		fl_tenants_clear(&L.tenant_lists[i]);
	free(L.tenant_lists);
	free(L.roles);
	free(L.pass_env);
	free(L.pass_env_v);
	free(L.dir);
	fl_toml_free(root);
	if (errs) {
		fl_manifest_free(m);
		*err = errs;
		return NULL;
	}
	return m;
}

const fl_service *fl_manifest_service(const fl_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->nservices; i++)
		if (strcmp(m->services[i].name, name) == 0)
			return &m->services[i];
	return NULL;
}

const fl_environment *fl_manifest_env(const fl_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->nenvs; i++)
		if (strcmp(m->envs[i].name, name) == 0)
			return &m->envs[i];
	return NULL;
}

char *fl_manifest_service_names(const fl_manifest *m)
{
	const char **names = fl_calloc(m->nservices ? m->nservices : 1, sizeof(*names));
	for (size_t i = 0; i < m->nservices; i++)
		names[i] = m->services[i].name;
	char *s = join_names(names, m->nservices);
	free(names);
	return s;
}

char *fl_manifest_env_names(const fl_manifest *m)
{
	const char **names = fl_calloc(m->nenvs ? m->nenvs : 1, sizeof(*names));
	for (size_t i = 0; i < m->nenvs; i++)
		names[i] = m->envs[i].name;
	char *s = join_names(names, m->nenvs);
	free(names);
	return s;
}

int fl_manifest_select(const fl_manifest *m, char *const *names, size_t n, size_t *out, fl_error **err)
{
	*err = NULL;
	bool *want = fl_calloc(m->nservices ? m->nservices : 1, sizeof(*want));
	const char **known = fl_calloc(m->nservices ? m->nservices : 1, sizeof(*known));
	for (size_t i = 0; i < m->nservices; i++)
		known[i] = m->services[i].name;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < m->nservices && strcmp(m->services[j].name, names[i]) != 0)
			j++;
		if (j < m->nservices) {
			want[j] = true;
			continue;
		}
		/* a template's name selects all of its tenants (tenants.h) */
		bool tmpl = false;
		for (j = 0; j < m->nservices; j++)
			if (m->services[j].tmpl && strcmp(m->services[j].tmpl, names[i]) == 0)
				want[j] = tmpl = true;
		if (tmpl)
			continue;
		char *list = join_names(known, m->nservices);
		const char *s = fl_text_suggest(names[i], known, m->nservices);
		fl_buf b;
		fl_buf_init(&b);
		for (const char *p = names[i]; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
				fl_buf_printf(&b, "\\x%02x", c);
			else
				fl_buf_putc(&b, (char)c);
		}
		char *shown = fl_buf_detach(&b);
		if (s)
			fl_error_append(err,
			                fl_error_new("unknown service '%s'; did you mean '%s'? known: %s",
			                             shown, s, list));
		else
			fl_error_append(err, fl_error_new("unknown service '%s'; known: %s", shown, list));
		free(shown);
		free(list);
	}
	int k = 0;
	for (size_t i = 0; i < m->nservices; i++)
		if (n == 0 || want[i])
			out[k++] = i;
	free(want);
	free(known);
	return *err ? -1 : k;
}
