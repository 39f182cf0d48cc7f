/*
 * migration: names, order, checksum, directives and placeholders of
 * migration files, matching Flyway wherever Flyway has an answer so that a
 * folder written for Flyway and its history table carry over unchanged.
 * Where Flyway silently skips a file whose name is almost right (V2_x.sql),
 * flotilla refuses it instead: a migration that never runs is worse than an
 * error.
 */
#include "migration.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sqlsplit.h"
#include "text.h"

void fl_file_clear(fl_file *f)
{
	free(f->name);
	free(f->path);
	free(f->data);
	f->name = f->path = f->data = NULL;
	f->len = 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

/* Parts separated by '.' or '_', each one or more digits. */
static bool valid_version(const char *v, size_t n)
{
	if (n == 0)
		return false;
	bool digit_seen = false;
	for (size_t i = 0; i < n; i++) {
		if (is_digit(v[i])) {
			digit_seen = true;
		} else if ((v[i] == '.' || v[i] == '_') && digit_seen) {
			digit_seen = false;
		} else {
			return false;
		}
	}
	return digit_seen;
}

bool fl_migration_version_valid(const char *v)
{
	return valid_version(v, strlen(v));
}

static char *replace_char(const char *s, size_t n, char from, char to)
{
	char *r = fl_strndup(s, n);
	for (size_t i = 0; i < n; i++)
		if (r[i] == from)
			r[i] = to;
	return r;
}

static const char *find_sep(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '_' && s[i + 1] == '_')
			return s + i;
	return NULL;
}

static int bad_name(fl_error **err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad_name(fl_error **err, const char *name, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		*err = fl_error_vat(name, 0, 0, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The length of the suffix (of nm, else ".sql") base ends with, the longest when several do; 0: none. */
static size_t suffix_of(const char *base, size_t n, const fl_migration_naming *nm)
{
	static const char *const sql[] = {".sql"};
	const char *const *sx = nm && nm->nsuffixes ? nm->suffixes : sql;
	size_t nsx = nm && nm->nsuffixes ? nm->nsuffixes : 1, best = 0;
	for (size_t i = 0; i < nsx; i++) {
		size_t sl = strlen(sx[i]);
		if (sl > best && n > sl && ascii_ieq(base + n - sl, sx[i], sl))
			best = sl;
	}
	return best;
}

int fl_migration_parse_name(const char *name, fl_mig_kind *kind, char **version, char **description,
                            fl_error **err)
{
	return fl_migration_parse_name_with(name, NULL, kind, version, description, err);
}

int fl_migration_parse_name_with(const char *name, const fl_migration_naming *nm, fl_mig_kind *kind,
                                 char **version, char **description, fl_error **err)
{
	*version = NULL;
	*description = NULL;
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t n = strlen(base);
	size_t sl = suffix_of(base, n, nm);
	if (sl == 0 || n < sl + 1)
		return 0;
	char prefix = base[0];
	const char *body = base + 1, *ext = base + n - sl;
	size_t bn = n - 1 - sl;
	/* "Views.sql", "README.sql": a word, not a prefix; a digit or '_' after it makes a lookalike */
	if ((prefix != 'V' && prefix != 'U' && prefix != 'R' && prefix != 'B') || bn == 0 ||
	    (body[0] != '_' && !is_digit(body[0])))
		return 0;
	const char *sep = find_sep(body, bn);

	if (prefix == 'R') {
		if (is_digit(body[0]))
			return bad_name(err, name, "a repeatable migration has no version: R__%.*s%s",
			                sep ? (int)(bn - (size_t)(sep + 2 - body)) : 13,
			                sep ? sep + 2 : "<description>", ext);
		if (sep != body)
			return bad_name(
			    err, name,
			    "a migration name needs two underscores between R and the description: "
			    "R_%.*s%s",
			    (int)bn, body, ext);
		if (bn == 2)
			return bad_name(
			    err, name, "a repeatable migration needs a description: R__<description>%s", ext);
		*kind = FL_MIG_REPEATABLE;
		*description = replace_char(body + 2, bn - 2, '_', ' ');
		return 1;
	}

	fl_mig_kind k = prefix == 'V' ? FL_MIG_VERSIONED : prefix == 'U' ? FL_MIG_UNDO : FL_MIG_BASELINE;
	const char *ver = body, *desc = "";
	size_t vn = bn, dn = 0;
	if (sep) {
		vn = (size_t)(sep - body);
		desc = sep + 2;
		dn = bn - vn - 2;
	}
	if (vn == 0)
		return bad_name(err, name, "a migration name needs a version between %c and __: %c1__%.*s%s",
		                prefix, prefix, (int)dn, desc, ext);
	if (!valid_version(ver, vn)) {
		if (!sep) {
			/* "V2_add_users.sql": the version runs up to the first '_' that is not between digits
			 */
			size_t k2 = 0;
			while (k2 < bn) {
				if (is_digit(body[k2]))
					k2++;
				else if ((body[k2] == '.' || body[k2] == '_') && k2 > 0 &&
				         is_digit(body[k2 - 1]) && k2 + 1 < bn && is_digit(body[k2 + 1]))
					k2++;
				else
					break;
			}
			if (k2 > 0 && k2 < bn && body[k2] == '_' && k2 + 1 < bn)
				return bad_name(err, name,
				                "a migration name needs two underscores between version and "
				                "description: %c%.*s__%.*s%s",
				                prefix, (int)k2, body, (int)(bn - k2 - 1), body + k2 + 1,
				                ext);
		}
		return bad_name(err, name,
		                "\"%.*s\" is not a version: a version is whole numbers separated by . or _ "
		                "(%c1__, %c1.2__, %c2_10__)",
		                (int)vn, ver, prefix, prefix, prefix);
	}
	*kind = k;
	*version = replace_char(ver, vn, '_', '.');
	*description = replace_char(desc, dn, '_', ' ');
	return 1;
}

/* Compares two runs of digits as numbers of any size; an empty run is 0. */
static int compare_number(const char *a, size_t an, const char *b, size_t bn)
{
	while (an > 0 && *a == '0')
		a++, an--;
	while (bn > 0 && *b == '0')
		b++, bn--;
	if (an != bn)
		return an < bn ? -1 : 1;
	int c = memcmp(a, b, an);
	return (c > 0) - (c < 0);
}

int fl_version_compare(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	while (*a || *b) {
		size_t an = strcspn(a, "._"), bn = strcspn(b, "._");
		int c = compare_number(a, an, b, bn);
		if (c)
			return c;
		a += an + (a[an] != '\0');
		b += bn + (b[bn] != '\0');
	}
	return 0;
}

int32_t fl_migration_checksum(const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0;
	if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
		i = 3;
	uLong crc = crc32(0L, Z_NULL, 0);
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '\r' && s[j] != '\n' && j - i < 0x40000000u)
			j++;
		if (j > i)
			crc = crc32(crc, s + i, (uInt)(j - i));
		while (j < len && (s[j] == '\r' || s[j] == '\n'))
			j++;
		i = j;
	}
	uint32_t u = (uint32_t)crc;
	/* Java's int: the same 32 bits read as two's complement */
	return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static const char *who(const fl_file *f)
{
	return f->path ? f->path : f->name;
}

static fl_error *error_at_offset(const char *file, const char *data, size_t len, size_t off, const char *fmt,
                                 ...) __attribute__((format(printf, 5, 6)));

static fl_error *error_at_offset(const char *file, const char *data, size_t len, size_t off, const char *fmt,
                                 ...)
{
	int line, col;
	fl_sql_position(data, len, off, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	fl_error *e = fl_error_vat(file, line, col, fmt, ap);
	va_end(ap);
	return e;
}

/*
 * Reads flotilla's directives from the comment lines before the first SQL
 * token. A "flotilla:" word it does not know is an error rather than
 * prose, since a misspelt directive would otherwise change nothing, silently.
 */
static bool leading_directives(const char *s, size_t len, const char *file, fl_error **errs)
{
	/* lint-ignore and lint-ignore-file are flotilla lint's (lint.h); here they only must not be refused
	 */
	static const char *const known[] = {"no-transaction", "lint-ignore", "lint-ignore-file"};
	bool no_tx = false;
	size_t i = 0;
	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			size_t j = i + 2, e = j;
			while (e < len && s[e] != '\n' && s[e] != '\r')
				e++;
			while (j < e && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (e - j > 9 && ascii_ieq(s + j, "flotilla:", 9) && s[j + 9] != ' ' &&
			    s[j + 9] != '\t') {
				size_t w = j + 9, we = w;
				while (we < e && s[we] != ' ' && s[we] != '\t')
					we++;
				size_t k = 0;
				while (k < 3 &&
				       !(we - w == strlen(known[k]) && ascii_ieq(s + w, known[k], we - w)))
					k++;
				if (k == 0) {
					no_tx = true;
				} else if (k == 3) {
					char *word = fl_strndup(s + w, we - w);
					const char *near = fl_text_suggest(word, known, 3);
					fl_error_append(
					    errs,
					    error_at_offset(
					        file, s, len, j,
					        "unknown directive flotilla:%s%s%s%s; "
					        "flotilla knows -- flotilla:no-transaction, "
					        "-- flotilla:lint-ignore and -- flotilla:lint-ignore-file",
					        word, near ? " (did you mean flotilla:" : "",
					        near ? near : "", near ? "?)" : ""));
					free(word);
				}
			}
			i = e;
		} else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
			i = fl_sqlsplit_skip_comment(s, len,
			                             i); /* unterminated: len (the split reports it) */
		} else {
			break;
		}
	}
	return no_tx;
}

static int kind_rank(fl_mig_kind k)
{
	return k == FL_MIG_VERSIONED ? 0 : k == FL_MIG_BASELINE ? 1 : k == FL_MIG_UNDO ? 2 : 3;
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

/*
 * A callback's file name: "<event>.sql" or "<event>__<description>.sql"
 * (any suffix of nm). Returns 1 with *event (new) for a known event, 0 for
 * a name that is no callback, -1 for one that looks like a callback of an
 * event Flyway does not have ("afterMigrat.sql", "beforeClean.sql" in a
 * migrate folder is fine: Flyway knows it, flotilla runs only migrate's).
 */
static int parse_callback(const char *name, const fl_migration_naming *nm, char **event, char **desc)
{
	static const char *const known[] = FL_CALLBACK_EVENTS;
	/* Flyway's other commands' events: not ours to run, nor worth a warning */
	static const char *const other[] = {"beforeClean",
	                                    "afterClean",
	                                    "afterCleanError",
	                                    "beforeValidate",
	                                    "afterValidate",
	                                    "afterValidateError",
	                                    "beforeBaseline",
	                                    "afterBaseline",
	                                    "afterBaselineError",
	                                    "beforeRepair",
	                                    "afterRepair",
	                                    "afterRepairError",
	                                    "beforeInfo",
	                                    "afterInfo",
	                                    "afterInfoError",
	                                    "beforeUndo",
	                                    "beforeEachUndo",
	                                    "afterEachUndo",
	                                    "afterEachUndoError",
	                                    "afterUndo",
	                                    "afterUndoError",
	                                    "beforeConnect",
	                                    "afterConnect",
	                                    "createSchema",
	                                    "beforeEachMigrateStatement",
	                                    "afterEachMigrateStatement",
	                                    "afterEachMigrateStatementError"};
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t n = strlen(base), sl = suffix_of(base, n, nm);
	if (sl == 0)
		return 0;
	size_t bn = n - sl;
	const char *sep = find_sep(base, bn);
	size_t en = sep ? (size_t)(sep - base) : bn;
	bool before = en > 6 && memcmp(base, "before", 6) == 0 && is_upper(base[6]);
	bool after = en > 5 && memcmp(base, "after", 5) == 0 && is_upper(base[5]);
	if (!before && !after && !(en == 12 && memcmp(base, "createSchema", 12) == 0))
		return 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == en && memcmp(base, known[i], en) == 0) {
			*event = fl_strndup(base, en);
			*desc = sep ? replace_char(sep + 2, bn - en - 2, '_', ' ') : fl_strdup("");
			return 1;
		}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (strlen(other[i]) == en && memcmp(base, other[i], en) == 0)
			return 0;
	return -1;
}

/* "X1__a.sql", "V1__a.java": a migration's shape with a prefix or a suffix that is not one. */
static bool migration_lookalike(const char *name)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	size_t n = strlen(base);
	if (n < 4 || !is_upper(base[0]) || !(is_digit(base[1]) || base[1] == '_'))
		return false;
	return find_sep(base + 1, n - 1) != NULL;
}

static int same_key(const fl_migration *a, const fl_migration *b)
{
	if (a->kind == FL_MIG_REPEATABLE)
		return strcmp(a->description, b->description);
	return fl_version_compare(a->version, b->version);
}

static int migration_order(const void *x, const void *y)
{
	const fl_migration *a = x, *b = y;
	int c = kind_rank(a->kind) - kind_rank(b->kind);
	if (c)
		return c;
	c = same_key(a, b);
	if (c)
		return c;
	/* duplicates: a fixed order, so the error names them the same way every time */
	return strcmp(a->script, b->script);
}

static void migration_clear(fl_migration *m)
{
	free(m->version);
	free(m->description);
	free(m->script);
	free(m->path);
	free(m->data);
	free(m->event);
}

fl_migration_set *fl_migration_set_new(fl_file *files, size_t n, fl_error **err)
{
	return fl_migration_set_new_with(files, n, NULL, err);
}

/* Do the two come from one folder (location)? Their paths are that folder + "/" + script. */
static bool same_folder(const fl_migration *a, const fl_migration *b)
{
	size_t pa = strlen(a->path), sa = strlen(a->script), pb = strlen(b->path), sb = strlen(b->script);
	if (pa < sa || pb < sb)
		return true;
	return pa - sa == pb - sb && memcmp(a->path, b->path, pa - sa) == 0;
}

static int callback_order(const void *x, const void *y)
{
	const fl_migration *a = x, *b = y;
	int c = strcmp(a->event, b->event);
	return c ? c : strcmp(a->script, b->script);
}

fl_migration_set *fl_migration_set_new_with(fl_file *files, size_t n, const fl_migration_naming *nm,
                                            fl_error **err)
{
	fl_error *errs = NULL, *warnings = NULL;
	fl_migration_set *set = fl_calloc(1, sizeof(*set));
	set->items = fl_calloc(n ? n : 1, sizeof(*set->items));
	set->callbacks = fl_calloc(n ? n : 1, sizeof(*set->callbacks));
	for (size_t i = 0; i < n; i++) {
		fl_file *f = &files[i];
		fl_mig_kind kind;
		char *version, *description, *event = NULL;
		fl_error *e = NULL;
		int r = f->name ? fl_migration_parse_name_with(f->name, nm, &kind, &version, &description, &e)
		                : 0;
		if (r < 0) {
			free(e->file);
			e->file = fl_strdup(who(f));
			fl_error_append(&errs, e);
		}
		if (r == 0 && f->name) {
			int cb = parse_callback(f->name, nm, &event, &description);
			if (cb > 0) {
				kind = FL_MIG_CALLBACK;
				version = NULL;
				r = 1;
			} else if (cb < 0) {
				fl_error_append(
				    &warnings,
				    fl_error_at(who(f), 0, 0,
				                "not run: it looks like an SQL callback, but Flyway "
				                "has no such event (migrate's are beforeMigrate, "
				                "beforeEachMigrate, afterEachMigrate, "
				                "afterEachMigrateError, afterMigrate, "
				                "afterMigrateError)"));
			} else if (migration_lookalike(f->name)) {
				fl_error_append(
				    &warnings,
				    fl_error_at(who(f), 0, 0,
				                "not run: it looks like a migration, but a migration "
				                "is V, U, R or B<version>__<description> with a "
				                "suffix of sql_migration_suffixes (default .sql)"));
			}
		}
		if (r <= 0) {
			fl_file_clear(f);
			continue;
		}
		const char *data = f->data ? f->data : "";
		size_t len = f->data ? f->len : 0;
		size_t bad;
		const char *nul = memchr(data, '\0', len);
		if (!fl_text_utf8_valid(data, len, &bad)) {
			fl_error_append(
			    &errs,
			    error_at_offset(who(f), data, len, bad,
			                    "invalid UTF-8 (byte 0x%02X): a migration must be UTF-8 text",
			                    (unsigned char)data[bad]));
		} else if (nul) {
			fl_error_append(
			    &errs, error_at_offset(who(f), data, len, (size_t)(nul - data),
			                           "a NUL byte: PostgreSQL cannot take one in SQL text"));
		}
		fl_migration *m =
		    kind == FL_MIG_CALLBACK ? &set->callbacks[set->ncallbacks++] : &set->items[set->n++];
		m->kind = kind;
		m->event = event;
		m->version = version;
		m->description = description;
		m->no_transaction = leading_directives(data, len, who(f), &errs);
		m->checksum = fl_migration_checksum(data, len);
		m->path = fl_strdup(who(f));
		m->script = f->name;
		m->data = f->data ? f->data : fl_strdup("");
		m->len = len;
		f->name = f->data = NULL;
		fl_file_clear(f);
	}
	qsort(set->items, set->n, sizeof(*set->items), migration_order);
	qsort(set->callbacks, set->ncallbacks, sizeof(*set->callbacks), callback_order);
	set->warnings = warnings;
	for (size_t i = 1, first = 0; i < set->n; i++) {
		const fl_migration *a = &set->items[first], *b = &set->items[i];
		if (a->kind != b->kind || same_key(a, b) != 0) {
			first = i;
			continue;
		}
		if (a->kind == FL_MIG_REPEATABLE)
			fl_error_append(&errs, fl_error_at(b->path, 0, 0,
			                                   "%s and %s have the same description \"%s\"",
			                                   a->script, b->script, a->description));
		else if (!same_folder(a, b))
			/* two locations: the script names alone could be the same */
			fl_error_append(&errs,
			                fl_error_at(b->path, 0, 0,
			                            "%s and %s have the same version %s (two locations "
			                            "of one service hold it; keep one)",
			                            a->path, b->path, a->version));
		else
			fl_error_append(&errs,
			                fl_error_at(b->path, 0, 0, "%s and %s have the same version %s",
			                            a->script, b->script, a->version));
	}
	if (errs) {
		fl_migration_set_free(set);
		if (err)
			*err = errs;
		else
			fl_error_free(errs);
		return NULL;
	}
	return set;
}

void fl_migration_set_free(fl_migration_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		migration_clear(&set->items[i]);
	free(set->items);
	for (size_t i = 0; i < set->ncallbacks; i++)
		migration_clear(&set->callbacks[i]);
	free(set->callbacks);
	fl_error_free(set->warnings);
	free(set);
}

/* For FL_MIG_REPEATABLE, `version` is matched against the description. */
const fl_migration *fl_migration_find(const fl_migration_set *set, fl_mig_kind kind, const char *version)
{
	for (size_t i = 0; i < set->n; i++) {
		const fl_migration *m = &set->items[i];
		if (m->kind != kind)
			continue;
		if (kind == FL_MIG_REPEATABLE ? strcmp(m->description, version) == 0
		                              : fl_version_compare(m->version, version) == 0)
			return m;
	}
	return NULL;
}

/* One ${name} in a text. */
typedef struct {
	size_t at, len;        /* the whole ${name} */
	size_t name, name_len; /* the name inside */
} ph_ref;

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == ':' ||
	       c == '.' || c == '-';
}

/* The next ${name} at or after `from`; the name scan never passes a '$', so the search stays linear. */
static bool next_ref(const char *s, size_t len, size_t from, ph_ref *r)
{
	size_t i = from;
	while (i + 1 < len) {
		const char *d = memchr(s + i, '$', len - i - 1);
		if (!d)
			return false;
		size_t q = (size_t)(d - s);
		if (s[q + 1] == '{') {
			size_t k = q + 2;
			while (k < len && is_name_char(s[k]))
				k++;
			if (k > q + 2 && k < len && s[k] == '}') {
				*r = (ph_ref){q, k + 1 - q, q + 2, k - q - 2};
				return true;
			}
		}
		i = q + 1;
	}
	return false;
}

/* The placeholder a name refers to: the exact name, else one that differs only in case. */
static const fl_placeholder *lookup(const fl_placeholder *ph, size_t nph, const char *name, size_t n)
{
	const fl_placeholder *loose = NULL;
	for (size_t i = 0; i < nph; i++) {
		if (strlen(ph[i].name) != n)
			continue;
		if (memcmp(ph[i].name, name, n) == 0)
			return &ph[i];
		if (!loose && ascii_ieq(ph[i].name, name, n))
			loose = &ph[i];
	}
	return loose;
}

/* Unknown names reported per file: enough to fix them, few enough to keep a broken file cheap. */
#define MAX_UNKNOWN 20

char *fl_migration_expand_service(const fl_migration *m, const char *service, const fl_placeholder *ph,
                                  size_t nph, size_t *len, fl_error **err)
{
	fl_buf out;
	fl_buf_init(&out);
	fl_error *errs = NULL;
	const char *s = m->data;
	size_t n = m->len, copied = 0, from = 0;
	char *unknown[MAX_UNKNOWN];
	size_t nunknown = 0;
	ph_ref r;
	while (next_ref(s, n, from, &r)) {
		from = r.at + r.len;
		const fl_placeholder *p = lookup(ph, nph, s + r.name, r.name_len);
		if (p) {
			fl_buf_add(&out, s + copied, r.at - copied);
			fl_buf_puts(&out, p->value ? p->value : "");
			copied = from;
			continue;
		}
		bool seen = false;
		for (size_t i = 0; i < nunknown && !seen; i++)
			seen = strlen(unknown[i]) == r.name_len &&
			       memcmp(unknown[i], s + r.name, r.name_len) == 0;
		if (seen || nunknown == MAX_UNKNOWN)
			continue;
		char *name = unknown[nunknown++] = fl_strndup(s + r.name, r.name_len);
		const char **names = fl_calloc(nph ? nph : 1, sizeof(*names));
		for (size_t i = 0; i < nph; i++)
			names[i] = ph[i].name;
		const char *near = fl_text_suggest(name, names, nph);
		char *where = service ? fl_asprintf("[services.%s.placeholders]", service)
		                      : fl_strdup("the service's placeholders in the manifest");
		fl_error_append(&errs,
		                error_at_offset(m->path, s, n, r.at,
		                                "no value for placeholder ${%s}%s%s%s; define it under %s",
		                                name, near ? " (did you mean ${" : "", near ? near : "",
		                                near ? "}?)" : "", where));
		free(where);
		free(names);
	}
	for (size_t i = 0; i < nunknown; i++)
		free(unknown[i]);
	if (errs) {
		fl_buf_free(&out);
		if (err)
			*err = errs;
		else
			fl_error_free(errs);
		return NULL;
	}
	fl_buf_add(&out, s + copied, n - copied);
	*len = out.len;
	return fl_buf_detach(&out);
}

char *fl_migration_expand(const fl_migration *m, const fl_placeholder *ph, size_t nph, size_t *len,
                          fl_error **err)
{
	return fl_migration_expand_service(m, NULL, ph, nph, len, err);
}

size_t fl_migration_unexpand_offset(const fl_migration *m, const fl_placeholder *ph, size_t nph,
                                    size_t expanded_offset)
{
	const char *s = m->data;
	size_t n = m->len, raw = 0, exp = 0;
	ph_ref r;
	while (next_ref(s, n, raw, &r)) {
		const fl_placeholder *p = lookup(ph, nph, s + r.name, r.name_len);
		if (!p) {
			/* left as it is: it maps one to one like the text around it */
			size_t upto = r.at + r.len;
			if (expanded_offset < exp + (upto - raw))
				return raw + (expanded_offset - exp);
			exp += upto - raw;
			raw = upto;
			continue;
		}
		if (expanded_offset < exp + (r.at - raw))
			return raw + (expanded_offset - exp);
		exp += r.at - raw;
		size_t vlen = p->value ? strlen(p->value) : 0;
		/* inside a replaced value: the placeholder itself is the place to show */
		if (expanded_offset < exp + vlen)
			return r.at;
		exp += vlen;
		raw = r.at + r.len;
	}
	size_t off = raw + (expanded_offset - exp);
	return off < n ? off : n;
}
