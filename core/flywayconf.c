/*
 * flywayconf: both file formats become one list of (setting, value, line)
 * with Flyway's own names ("url", "locations", "placeholders.tenant"), and
 * one translation reads that list, so flyway.conf and flyway.toml mean the
 * same thing by construction.
 */
#include "flywayconf.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "source.h"
#include "text.h"
#include "toml.h"

typedef struct {
	char *key; /* without "flyway.": "url", "placeholders.tenant" */
	char *value;
	int line;
} setting;

typedef struct {
	const char *path;
	char *service;
	char *dir; /* the file's folder, absolute */
	setting *s;
	size_t n;
} conf;

static void add_setting(conf *c, const char *key, size_t kl, const char *value, int line)
{
	c->s = fl_realloc(c->s, (c->n + 1) * sizeof(*c->s));
	c->s[c->n++] = (setting){fl_strndup(key, kl), fl_strdup(value), line};
}

static void conf_clear(conf *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->s[i].key);
		free(c->s[i].value);
	}
	free(c->s);
	free(c->service);
	free(c->dir);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\f';
}

/* ---- flyway.conf: Java properties ---- */

/* Appends the logical line starting at *i (continuations joined) to b, unescaped; *i moves past it. */
static void logical_line(const char *d, size_t len, size_t *i, fl_buf *b, int *lines)
{
	size_t p = *i;
	*lines = 1;
	for (;;) {
		size_t e = p;
		while (e < len && d[e] != '\n' && d[e] != '\r')
			e++;
		size_t bs = 0;
		while (bs < e - p && d[e - 1 - bs] == '\\')
			bs++;
		bool more = bs % 2 == 1 && e < len;
		size_t end = more ? e - 1 : e;
		for (size_t k = p; k < end; k++) {
			if (d[k] == '\\' && k + 1 < end) {
				char n = d[++k];
				fl_buf_putc(b, n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n);
			} else {
				fl_buf_putc(b, d[k]);
			}
		}
		if (e < len && d[e] == '\r' && e + 1 < len && d[e + 1] == '\n')
			e++;
		p = e < len ? e + 1 : e;
		if (!more)
			break;
		(*lines)++;
		while (p < len && is_space(d[p]))
			p++;
	}
	*i = p;
}

static void read_properties(conf *c, const char *d, size_t len, fl_flywayconf_result *out)
{
	size_t i = 0;
	int line = 1;
	while (i < len) {
		while (i < len && is_space(d[i]))
			i++;
		int at = line, nl = 1;
		if (i < len && (d[i] == '#' || d[i] == '!' || d[i] == '\n' || d[i] == '\r')) {
			while (i < len && d[i] != '\n')
				i++;
			i++;
			line++;
			continue;
		}
		fl_buf b;
		fl_buf_init(&b);
		fl_buf_puts(&b, "");
		logical_line(d, len, &i, &b, &nl);
		line += nl;
		const char *s = b.data;
		size_t k = 0;
		while (s[k] && s[k] != '=' && s[k] != ':' && !is_space(s[k]))
			k++;
		size_t v = k;
		while (s[v] && is_space(s[v]))
			v++;
		if (s[v] == '=' || s[v] == ':')
			v++;
		while (s[v] && is_space(s[v]))
			v++;
		if (k > 7 && strncmp(s, "flyway.", 7) == 0) {
			add_setting(c, s + 7, k - 7, s + v, at);
		} else if (k > 0) {
			out->notes = fl_realloc(out->notes, (out->nnotes + 1) * sizeof(char *));
			out->notes[out->nnotes++] = fl_asprintf(
			    "%s:%d: %.*s is not a Flyway setting; left out", c->path, at, (int)k, s);
		}
		fl_buf_free(&b);
	}
}

/* ---- flyway.toml ---- */

/* A TOML value as the properties file would write it: lists comma-joined. */
static char *toml_text(const fl_toml_value *v)
{
	switch (fl_toml_type_of(v)) {
	case FL_TOML_STRING:
		return fl_strdup(fl_toml_string(v, NULL));
	case FL_TOML_BOOL:
		return fl_strdup(fl_toml_bool(v) ? "true" : "false");
	case FL_TOML_INTEGER:
		return fl_asprintf("%lld", (long long)fl_toml_int(v));
	case FL_TOML_ARRAY: {
		fl_buf b;
		fl_buf_init(&b);
		fl_buf_puts(&b, "");
		for (size_t i = 0; i < fl_toml_len(v); i++) {
			char *e = toml_text(fl_toml_at(v, i));
			fl_buf_printf(&b, "%s%s", i ? "," : "", e ? e : "");
			free(e);
		}
		return fl_buf_detach(&b);
	}
	default:
		return NULL;
	}
}

static void toml_table(conf *c, const fl_toml_value *t, const char *prefix, fl_flywayconf_result *out)
{
	for (size_t i = 0; i < fl_toml_len(t); i++) {
		const char *k = fl_toml_key_at(t, i);
		const fl_toml_value *v = fl_toml_value_at(t, i);
		int line = fl_toml_key_line(t, i);
		char *key = fl_asprintf("%s%s", prefix, k);
		if (fl_toml_type_of(v) == FL_TOML_TABLE && strcmp(key, "placeholders") == 0) {
			toml_table(c, v, "placeholders.", out);
		} else {
			char *text = toml_text(v);
			if (text) {
				add_setting(c, key, strlen(key), text, line);
			} else {
				out->notes = fl_realloc(out->notes, (out->nnotes + 1) * sizeof(char *));
				out->notes[out->nnotes++] = fl_asprintf(
				    "%s:%d: %s (a table) has no counterpart; left out", c->path, line, key);
			}
			free(text);
		}
		free(key);
	}
}

static int read_toml(conf *c, const char *d, size_t len, fl_flywayconf_result *out, fl_error **err)
{
	fl_toml_value *root = fl_toml_parse(d, len, c->path, err);
	if (!root)
		return -1;
	const fl_toml_value *fw = fl_toml_get(root, "flyway");
	if (fw && fl_toml_type_of(fw) == FL_TOML_TABLE)
		toml_table(c, fw, "", out);
	const char *envname = "default";
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->s[i].key, "environment") == 0)
			envname = c->s[i].value;
	const fl_toml_value *envs = fl_toml_get(root, "environments");
	const fl_toml_value *env = envs ? fl_toml_get(envs, envname) : NULL;
	if (env && fl_toml_type_of(env) == FL_TOML_TABLE)
		toml_table(c, env, "", out);
	fl_toml_free(root);
	return 0;
}

/* ---- translation ---- */

static const char *get(const conf *c, const char *key, int *line)
{
	const char *v = NULL;
	for (size_t i = 0; i < c->n; i++) /* the last one wins, as in a properties file */
		if (strcmp(c->s[i].key, key) == 0) {
			v = c->s[i].value;
			if (line)
				*line = c->s[i].line;
		}
	return v;
}

/* A TOML basic string of s; "${" is written "$${" (flotilla expands ${service} and ${env}). */
static void put_str(fl_buf *b, const char *s)
{
	fl_buf_putc(b, '"');
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '"' || ch == '\\')
			fl_buf_printf(b, "\\%c", ch);
		else if (ch == '\n')
			fl_buf_puts(b, "\\n");
		else if (ch == '\t')
			fl_buf_puts(b, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			fl_buf_printf(b, "\\u%04X", ch);
		else if (ch == '$' && p[1] == '{')
			fl_buf_puts(b, "$$");
		else
			fl_buf_putc(b, (char)ch);
	}
	fl_buf_putc(b, '"');
}

/* "${VAR}" or "${env.VAR}": VAR (new); else NULL. */
static char *env_ref(const char *v)
{
	size_t n = strlen(v);
	if (n < 4 || v[0] != '$' || v[1] != '{' || v[n - 1] != '}')
		return NULL;
	const char *s = v + 2;
	size_t l = n - 3;
	if (l > 4 && strncmp(s, "env.", 4) == 0)
		s += 4, l -= 4;
	for (size_t i = 0; i < l; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
		      (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return NULL;
	return l ? fl_strndup(s, l) : NULL;
}

/* Comma-separated items, trimmed, empty ones dropped. */
static char **split_list(const char *v, size_t *n)
{
	char **out = NULL;
	*n = 0;
	const char *p = v;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		const char *a = p, *z = p + l;
		while (a < z && is_space(*a))
			a++;
		while (z > a && is_space(z[-1]))
			z--;
		if (z > a) {
			out = fl_realloc(out, (*n + 1) * sizeof(char *));
			out[(*n)++] = fl_strndup(a, (size_t)(z - a));
		}
		if (!e)
			break;
		p = e + 1;
	}
	return out;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The path `to` (absolute) as seen from folder `from` (absolute): "../db/sql". */
static char *relative(const char *from, const char *to)
{
	size_t common = 0, i = 0;
	while (from[i] && from[i] == to[i]) {
		if (from[i] == '/')
			common = i;
		i++;
	}
	if (!from[i] && (to[i] == '/' || !to[i]))
		common = i;
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "");
	for (const char *p = from + common; *p; p++)
		if (*p == '/')
			fl_buf_puts(&b, "../");
	const char *rest = to + common + (to[common] == '/');
	fl_buf_puts(&b, *rest ? rest : ".");
	char *r = fl_buf_detach(&b);
	size_t rl = strlen(r);
	if (rl > 1 && r[rl - 1] == '/')
		r[rl - 1] = '\0';
	return r;
}

/* A location as a folder relative to the manifest; classpath ones are mapped to a Maven layout. */
static char *location_path(const conf *c, const char *loc, const char *mdir, int line,
                           fl_flywayconf_result *out)
{
	const char *p = loc;
	if (strncmp(p, "filesystem:", 11) == 0)
		p += 11;
	char *abs;
	if (strncmp(p, "classpath:", 10) == 0) {
		const char *cp = p + 10 + (p[10] == '/');
		abs = fl_asprintf("%s/src/main/resources/%s", c->dir, cp);
		out->notes = fl_realloc(out->notes, (out->nnotes + 1) * sizeof(char *));
		out->notes[out->nnotes++] =
		    fl_asprintf("%s:%d: location %s is on the Java classpath; written as the Maven folder "
		                "src/main/resources/%s beside the file (check it)",
		                c->path, line, loc, cp);
	} else {
		abs = p[0] == '/' ? fl_strdup(p) : fl_asprintf("%s/%s", c->dir, p);
	}
	char *real = realpath(abs, NULL);
	char *r = relative(mdir, real ? real : abs);
	free(real);
	free(abs);
	return r;
}

static void note(fl_flywayconf_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(fl_flywayconf_result *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = fl_vasprintf(fmt, ap);
	va_end(ap);
	out->notes = fl_realloc(out->notes, (out->nnotes + 1) * sizeof(char *));
	out->notes[out->nnotes++] = s;
}

/* Settings whose value at Flyway's default means nothing to translate. */
static bool at_default(const char *key, const char *v)
{
	static const char *const defaults[][2] = {{"validateOnMigrate", "true"},
	                                          {"sqlMigrationPrefix", "V"},
	                                          {"sqlMigrationSeparator", "__"},
	                                          {"repeatableSqlMigrationPrefix", "R"},
	                                          {"undoSqlMigrationPrefix", "U"},
	                                          {"encoding", "UTF-8"},
	                                          {"placeholderReplacement", "true"},
	                                          {"placeholderPrefix", "${"},
	                                          {"placeholderSuffix", "}"},
	                                          {"createSchemas", "true"},
	                                          {"cleanDisabled", "true"},
	                                          {"baselineDescription", "<< Flyway Baseline >>"},
	                                          {"environment", NULL},
	                                          {"mixed", "false"},
	                                          {"group", "false"},
	                                          {"ignoreMigrationPatterns", "*:future"}};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (strcmp(key, defaults[i][0]) == 0 &&
		    (!defaults[i][1] || strcasecmp(v, defaults[i][1]) == 0))
			return true;
	return false;
}

static const char *const translated[] = {"url",
                                         "user",
                                         "password",
                                         "locations",
                                         "schemas",
                                         "defaultSchema",
                                         "table",
                                         "sqlMigrationSuffixes",
                                         "baselineOnMigrate",
                                         "baselineVersion",
                                         "outOfOrder",
                                         "target",
                                         "driver"};

static bool is_translated(const char *key)
{
	if (strncmp(key, "placeholders.", 13) == 0)
		return true;
	for (size_t i = 0; i < sizeof(translated) / sizeof(translated[0]); i++)
		if (strcmp(key, translated[i]) == 0)
			return true;
	return false;
}

typedef struct {
	char *host, *database;
	int port;
} jdbc;

/* jdbc:postgresql://host[:port]/database[?...]; 0 or -1 */
static int parse_url(const char *u, jdbc *j)
{
	memset(j, 0, sizeof(*j));
	const char *pfx = "jdbc:postgresql:";
	if (strncmp(u, pfx, strlen(pfx)) != 0)
		return -1;
	const char *h = u + strlen(pfx);
	if (strncmp(h, "//", 2) != 0) { /* jdbc:postgresql:database: the driver's default host and port */
		size_t dl = strcspn(h, "?;");
		j->host = fl_strdup("");
		j->database = fl_strndup(h, dl);
		return dl && h[0] != '/' ? 0 : -1;
	}
	h += 2;
	const char *slash = strchr(h, '/');
	if (!slash)
		return -1;
	const char *colon = memchr(h, ':', (size_t)(slash - h));
	j->host = fl_strndup(h, (size_t)((colon ? colon : slash) - h));
	if (colon)
		j->port = atoi(colon + 1);
	size_t dl = strcspn(slash + 1, "?;");
	j->database = fl_strndup(slash + 1, dl);
	return dl ? 0 : -1;
}

/* "src/auth-api/flyway.conf" -> "auth"; the folder's name, with "-api" dropped. */
static char *service_of(const char *dir)
{
	const char *b = strrchr(dir, '/');
	b = b ? b + 1 : dir;
	size_t n = strlen(b);
	if (n > 4 && strcmp(b + n - 4, "-api") == 0)
		n -= 4;
	char *s = fl_strndup(b, n);
	for (char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			*p = '_';
	return s;
}

static void put_list(fl_buf *b, char **v, size_t n)
{
	fl_buf_puts(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			fl_buf_puts(b, ", ");
		put_str(b, v[i]);
	}
	fl_buf_puts(b, "]\n");
}

static void write_service(fl_buf *b, const conf *c, const jdbc *j, const char *mdir, const char *migrator,
                          fl_flywayconf_result *out)
{
	fl_buf_printf(b, "\n[services.%s]\ndatabase = ", c->service);
	put_str(b, j->database);
	/* Flyway has no owner: the platform's convention, as a literal the person can change */
	fl_buf_printf(b, "\nowner = ");
	char *owner = fl_asprintf("%s_api_user", c->service);
	put_str(b, owner);
	fl_buf_puts(b, "\n");
	const char *user = get(c, "user", NULL);
	if (user && migrator && strcmp(user, migrator) != 0)
		note(out,
		     "%s: Flyway's user %s differs from the migrator %s of the first file; the manifest has "
		     "one migrator per environment",
		     c->path, user, migrator);
	free(owner);
	int line = 0;
	const char *locs = get(c, "locations", &line);
	size_t nl = 0;
	char **l = locs ? split_list(locs, &nl) : NULL;
	if (nl == 0) {
		/* Flyway's command line reads filesystem:sql by default */
		char *p = location_path(c, "sql", mdir, 0, out);
		fl_buf_puts(b, "migrations = ");
		put_str(b, p);
		fl_buf_puts(b, "\n");
		note(out, "%s: no flyway.locations; written as its folder's sql (Flyway's default)", c->path);
		free(p);
	} else {
		for (size_t i = 0; i < nl; i++) {
			char *p = location_path(c, l[i], mdir, line, out);
			free(l[i]);
			l[i] = p;
		}
		if (nl == 1) {
			fl_buf_puts(b, "migrations = ");
			put_str(b, l[0]);
			fl_buf_puts(b, "\n");
		} else {
			fl_buf_puts(b, "locations = ");
			put_list(b, l, nl);
		}
	}
	free_list(l, nl);
	size_t ns = 0;
	const char *sch = get(c, "schemas", NULL), *def = get(c, "defaultSchema", NULL);
	char **sv = sch ? split_list(sch, &ns) : NULL;
	if (def) { /* the default schema first */
		size_t k = 0;
		while (k < ns && strcmp(sv[k], def) != 0)
			k++;
		if (k == ns) {
			sv = fl_realloc(sv, (ns + 1) * sizeof(char *));
			sv[ns++] = fl_strdup(def);
		}
		char *d = sv[k];
		memmove(sv + 1, sv, k * sizeof(char *));
		sv[0] = d;
	}
	if (ns == 1) {
		fl_buf_puts(b, "schema = ");
		put_str(b, sv[0]);
		fl_buf_puts(b, "\n");
	} else if (ns > 1) {
		fl_buf_puts(b, "schemas = ");
		put_list(b, sv, ns);
	}
	free_list(sv, ns);
	const char *v;
	if ((v = get(c, "table", NULL))) {
		fl_buf_puts(b, "table = ");
		put_str(b, v);
		fl_buf_puts(b, "\n");
	}
	if ((v = get(c, "sqlMigrationSuffixes", NULL))) {
		size_t nx;
		char **x = split_list(v, &nx);
		if (nx) {
			fl_buf_puts(b, "sql_migration_suffixes = ");
			put_list(b, x, nx);
		}
		free_list(x, nx);
	}
	static const char *const bools[][2] = {{"baselineOnMigrate", "baseline_on_migrate"},
	                                       {"outOfOrder", "out_of_order"}};
	for (size_t i = 0; i < 2; i++)
		if ((v = get(c, bools[i][0], &line))) {
			bool t = strcasecmp(v, "true") == 0;
			if (!t && strcasecmp(v, "false") != 0)
				note(out, "%s:%d: flyway.%s = %s is not true or false; left out", c->path,
				     line, bools[i][0], v);
			else
				fl_buf_printf(b, "%s = %s\n", bools[i][1], t ? "true" : "false");
		}
	static const char *const versions[][2] = {{"baselineVersion", "baseline_version"},
	                                          {"target", "target"}};
	for (size_t i = 0; i < 2; i++)
		if ((v = get(c, versions[i][0], NULL))) {
			fl_buf_printf(b, "%s = ", versions[i][1]);
			put_str(b, v);
			fl_buf_puts(b, "\n");
		}
	bool any = false;
	for (size_t i = 0; i < c->n; i++) {
		if (strncmp(c->s[i].key, "placeholders.", 13) != 0)
			continue;
		/* the last value of a name wins */
		if (get(c, c->s[i].key, NULL) != c->s[i].value)
			continue;
		fl_buf_puts(b, any ? ", " : "placeholders = { ");
		put_str(b, c->s[i].key + 13);
		fl_buf_puts(b, " = ");
		put_str(b, c->s[i].value);
		any = true;
	}
	if (any)
		fl_buf_puts(b, " }\n");
}

int fl_flywayconf_translate(const fl_flywayconf_file *files, size_t n, const char *manifest_dir,
                            fl_flywayconf_result *out, fl_error **err)
{
	memset(out, 0, sizeof(*out));
	*err = NULL;
	char *mdir = realpath(manifest_dir, NULL);
	if (!mdir) {
		*err = fl_error_new("%s: not a folder", manifest_dir);
		return -1;
	}
	conf *cs = fl_calloc(n ? n : 1, sizeof(*cs));
	jdbc *js = fl_calloc(n ? n : 1, sizeof(*js));
	fl_error *errs = NULL;
	for (size_t i = 0; i < n; i++) {
		conf *c = &cs[i];
		c->path = files[i].path;
		char *copy = fl_strdup(files[i].path);
		char *real = realpath(dirname(copy), NULL);
		c->dir = real ? real : fl_strdup(dirname(copy));
		free(copy);
		c->service = service_of(c->dir);
		size_t pl = strlen(c->path);
		fl_error *e = NULL;
		if (pl > 5 && strcmp(c->path + pl - 5, ".toml") == 0) {
			if (read_toml(c, files[i].data, files[i].len, out, &e) != 0) {
				fl_error_append(&errs, e);
				continue;
			}
		} else {
			read_properties(c, files[i].data, files[i].len, out);
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(cs[k].service, c->service) == 0)
				fl_error_append(&errs,
				                fl_error_at(c->path, 0, 0,
				                            "service %s comes from %s already; give each "
				                            "service's file in its own folder",
				                            c->service, cs[k].path));
		int line = 0;
		const char *url = get(c, "url", &line);
		if (!url)
			fl_error_append(&errs,
			                fl_error_at(c->path, 0, 0,
			                            "no flyway.url: flotilla needs the service's database "
			                            "(jdbc:postgresql://host:port/database)"));
		else if (parse_url(url, &js[i]) != 0)
			fl_error_append(&errs,
			                fl_error_at(c->path, line, 0,
			                            "flyway.url %s is not jdbc:postgresql://host[:port]/"
			                            "database",
			                            url));
		for (size_t k = 0; k < c->n; k++) {
			const setting *s = &c->s[k];
			if (is_translated(s->key) || at_default(s->key, s->value))
				continue;
			note(out, "%s:%d: flyway.%s = %s has no counterpart in flotilla; left out", c->path,
			     s->line, s->key, strncmp(s->key, "password", 8) == 0 ? "(hidden)" : s->value);
		}
	}
	if (errs) {
		*err = errs;
		for (size_t i = 0; i < n; i++) {
			conf_clear(&cs[i]);
			free(js[i].host);
			free(js[i].database);
		}
		free(cs);
		free(js);
		free(mdir);
		fl_flywayconf_result_clear(out);
		return -1;
	}
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "# Written by 'flotilla init --from-flyway' from");
	for (size_t i = 0; i < n; i++)
		fl_buf_printf(&b, " %s", cs[i].path);
	fl_buf_puts(&b, ".\n# See flotilla.toml(5); what could not be translated was listed when it was "
	                "written.\nversion = 1\nproject = ");
	const char *proj = strrchr(mdir, '/');
	put_str(&b, proj && proj[1] ? proj + 1 : "flotilla");
	fl_buf_puts(&b, "\n\n[environments.default]\n");
	const conf *c0 = &cs[0];
	if (n && js[0].host && !*js[0].host)
		note(out,
		     "%s: its url names no host: none written, so libpq's defaults (PGHOST, PGPORT) "
		     "apply",
		     c0->path);
	if (n && js[0].host && *js[0].host) {
		fl_buf_puts(&b, "host = ");
		put_str(&b, js[0].host);
		fl_buf_puts(&b, "\n");
	}
	if (n && js[0].port > 0)
		fl_buf_printf(&b, "port = %d\n", js[0].port);
	for (size_t i = 1; i < n; i++)
		if (strcmp(js[i].host, js[0].host) != 0 || js[i].port != js[0].port)
			note(out,
			     "%s: its server (%s:%d) differs from the first file's; the manifest has one "
			     "environment, on the first",
			     cs[i].path, js[i].host, js[i].port);
	/* Flyway has no admin: the role that creates roles and databases is the person's to name */
	fl_buf_puts(&b, "admin = { user = \"postgres\" }\n");
	note(out, "Flyway's configuration names no admin (who creates roles and databases): admin = "
	          "postgres written; change [environments.default] admin");
	const char *user = n ? get(c0, "user", NULL) : NULL;
	fl_buf_puts(&b, "migrator = { user = ");
	put_str(&b, user ? user : "flyway_user");
	if (!user)
		note(out, "%s: no flyway.user; migrator flyway_user written", c0->path);
	const char *pw = n ? get(c0, "password", NULL) : NULL;
	char *var = pw ? env_ref(pw) : NULL;
	if (var) {
		fl_buf_puts(&b, ", password = { env = ");
		put_str(&b, var);
		fl_buf_puts(&b, " }");
	} else if (pw) {
		note(out,
		     "%s: flyway.password is written in the file; it is not copied: give the migrator "
		     "password = { env = \"...\" } (or file/cmd) in the manifest",
		     c0->path);
	}
	free(var);
	fl_buf_puts(&b, " }\n");
	for (size_t i = 0; i < n; i++)
		write_service(&b, &cs[i], &js[i], mdir, user, out);
	out->text = fl_buf_detach(&b);
	for (size_t i = 0; i < n; i++) {
		conf_clear(&cs[i]);
		free(js[i].host);
		free(js[i].database);
	}
	free(cs);
	free(js);
	free(mdir);
	return 0;
}

void fl_flywayconf_result_clear(fl_flywayconf_result *r)
{
	free(r->text);
	for (size_t i = 0; i < r->nnotes; i++)
		free(r->notes[i]);
	free(r->notes);
	memset(r, 0, sizeof(*r));
}

static char *slurp(const char *path, size_t *len, fl_error **err)
{
	char *data = NULL;
	if (fl_file_read(path, &data, len) != 0) {
		*err = fl_error_at(path, 0, 0, "cannot read it: %s", strerror(errno));
		return NULL;
	}
	return data;
}

int fl_flywayconf_init(const char *const *paths, size_t n, const char *out_path, bool force,
                       fl_flywayconf_result *out, fl_error **err)
{
	memset(out, 0, sizeof(*out));
	*err = NULL;
	fl_flywayconf_file *files = fl_calloc(n ? n : 1, sizeof(*files));
	fl_error *errs = NULL;
	for (size_t i = 0; i < n; i++) {
		fl_error *e = NULL;
		files[i].path = paths[i];
		files[i].data = slurp(paths[i], &files[i].len, &e);
		fl_error_append(&errs, e);
	}
	int rc = -1;
	char *copy = fl_strdup(out_path);
	if (errs) {
		*err = errs;
	} else if (!force && access(out_path, F_OK) == 0) {
		*err = fl_error_at(out_path, 0, 0,
		                   "exists already; give another -o FILE, or --force to replace it");
	} else if (fl_flywayconf_translate(files, n, dirname(copy), out, err) == 0) {
		if (fl_file_write(out_path, out->text, strlen(out->text)) == 0) {
			rc = 0;
		} else {
			*err = fl_error_at(out_path, 0, 0, "cannot write it: %s", strerror(errno));
			fl_flywayconf_result_clear(out);
		}
	}
	free(copy);
	for (size_t i = 0; i < n; i++)
		free((char *)files[i].data);
	free(files);
	return rc;
}
