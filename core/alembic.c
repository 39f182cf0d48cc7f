#include "alembic.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "source.h"
#include "sqlsplit.h"
#include "text.h"

/* Alembic's offline output of a whole chain is the SQL of every revision: room for big ones. */
#define OUTPUT_LIMIT (16u * 1024 * 1024)

/* ---- small helpers ---- */

/* The file's bytes (NUL-terminated), or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	char *data = NULL;
	return fl_file_read(path, &data, len) == 0 ? data : NULL;
}

static bool is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static void strv_add(char ***v, size_t *n, char *s)
{
	*v = fl_realloc(*v, (*n + 1) * sizeof(char *));
	(*v)[(*n)++] = s;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* 'text' for /bin/sh: proc.c runs every child through it. */
static void sh_quote(fl_buf *b, const char *s)
{
	fl_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			fl_buf_puts(b, "'\\''");
		else
			fl_buf_putc(b, *s);
	}
	fl_buf_putc(b, '\'');
}

/* ---- the scanner of the .py files of versions/ ---- */

typedef struct {
	char *name; /* base name */
	char *file; /* display path */
	char *id;
	int rev_line, rev_col;
	bool has_down;
	char **downs;
	size_t ndowns;
	int down_line, down_col;
	bool usable; /* both assignments read: takes part in the graph */
} pyrev;

/*
 * A string literal at p holding a revision id (letters, digits, '_', '-', '.', as Alembic's ids
 * and every file_template make them): its end past the quote, the text in *out; NULL if not one.
 * Anything else could not be named in a header line or a command.
 */
static const char *str_lit(const char *p, char **out)
{
	char q = *p;
	if (q != '\'' && q != '"')
		return NULL;
	const char *s = p + 1, *e = s;
	while (is_ident_char(*e) || *e == '-' || *e == '.')
		e++;
	if (*e != q || e == s)
		return NULL;
	*out = fl_strndup(s, (size_t)(e - s));
	return e + 1;
}

/* Nothing but an optional comment left on the line? */
static bool line_rest_empty(const char *p)
{
	p = skip_ws(p);
	return *p == '\0' || *p == '\n' || *p == '\r' || *p == '#';
}

/*
 * The value of an assignment: None, a literal, or (for down_revision) a
 * tuple or list of literals. Returns 0, or -1 when it is another form.
 */
static int parse_value(const char *p, bool seq_ok, char ***items, size_t *n)
{
	*items = NULL;
	*n = 0;
	if (strncmp(p, "None", 4) == 0 && !is_ident_char(p[4]))
		return line_rest_empty(p + 4) ? 0 : -1;
	char *s = NULL;
	const char *e = str_lit(p, &s);
	if (e) {
		strv_add(items, n, s);
		if (line_rest_empty(e))
			return 0;
		goto bad;
	}
	if (!seq_ok || (*p != '(' && *p != '['))
		return -1;
	char close = *p == '(' ? ')' : ']';
	p = skip_ws(p + 1);
	while (*p != close) {
		e = str_lit(p, &s);
		if (!e)
			goto bad;
		strv_add(items, n, s);
		p = skip_ws(e);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p != close)
			goto bad;
	}
	if (*n > 0 && line_rest_empty(p + 1))
		return 0;
bad:
	strv_free(*items, *n);
	*items = NULL;
	*n = 0;
	return -1;
}

/* Does the line assign `word` at top level? Returns where the value starts, else NULL. */
static const char *assignment(const char *line, const char *word)
{
	size_t wl = strlen(word);
	if (strncmp(line, word, wl) != 0 || is_ident_char(line[wl]))
		return NULL;
	const char *p = skip_ws(line + wl);
	if (*p == ':') /* an annotation: revision: str = "..." */
		while (*p && *p != '=' && *p != '\n')
			p++;
	if (*p != '=' || p[1] == '=')
		return NULL;
	return skip_ws(p + 1);
}

/* Where a triple-quoted string is open after this line ('\0': none). */
static char triple_state(const char *line, const char *end, char open)
{
	for (const char *p = line; p < end; p++) {
		if ((*p == '"' || *p == '\'') && p + 2 < end && p[1] == *p && p[2] == *p) {
			if (!open)
				open = *p;
			else if (open == *p)
				open = '\0';
			p += 2;
		}
	}
	return open;
}

static void scan_file(pyrev *r, const char *data, fl_error **errs)
{
	bool rev_seen = false, down_seen = false; /* an assignment in another form: reported there */
	char open = '\0';
	int lineno = 0;
	for (const char *line = data; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		lineno++;
		if (!open) {
			const char *v;
			bool down = false;
			if ((v = assignment(line, "revision")) ||
			    (down = true, v = assignment(line, "down_revision"))) {
				int col = (int)(v - line) + 1;
				char **items;
				size_t n;
				int rc = parse_value(v, down, &items, &n);
				*(down ? &down_seen : &rev_seen) = true;
				if (rc != 0 || (!down && n != 1)) {
					fl_error_append(
					    errs, fl_error_at(
					              r->file, lineno, col,
					              "flotilla reads %s only as a plain literal on its line "
					              "(%s; ids of letters, digits, '_', '-' and '.'); write "
					              "it the way Alembic's "
					              "template does",
					              down ? "down_revision" : "revision",
					              down ? "None, \"id\" or (\"a\", \"b\")" : "\"id\""));
				} else if (down ? r->has_down : r->id != NULL) {
					fl_error_append(errs,
					                fl_error_at(r->file, lineno, 1,
					                            "%s is assigned twice (first at line %d)",
					                            down ? "down_revision" : "revision",
					                            down ? r->down_line : r->rev_line));
					strv_free(items, n);
				} else if (down) {
					r->has_down = true;
					r->downs = items;
					r->ndowns = n;
					r->down_line = lineno;
					r->down_col = col;
				} else {
					r->id = items[0];
					free(items);
					r->rev_line = lineno;
					r->rev_col = col;
				}
			}
		}
		open = triple_state(line, end, open);
		line = *end ? end + 1 : end;
	}
	if (!r->id && !rev_seen)
		fl_error_append(
		    errs,
		    fl_error_at(r->file, 1, 1,
		                "no top-level `revision = \"...\"` line: this is not an Alembic "
		                "revision file (or its revision is computed, which flotilla cannot read)"));
	if (!r->has_down && !down_seen)
		fl_error_append(errs,
		                fl_error_at(r->file, r->id ? r->rev_line : 1, 1,
		                            "no top-level `down_revision = ...` line (None for the base)"));
	r->usable = r->id && r->has_down;
}

/* The words of a file name's stem, split at '_', '-' and '.'. */
static bool stem_has_word(const char *stem, const char *w)
{
	size_t wl = strlen(w);
	for (const char *p = stem; (p = strstr(p, w)) != NULL; p++) {
		bool before = p == stem || p[-1] == '_' || p[-1] == '-' || p[-1] == '.';
		char after = p[wl];
		if (before && (after == '\0' || after == '_' || after == '-' || after == '.'))
			return true;
	}
	return false;
}

static bool all_of(const char *s, size_t n, const char *set)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]))
			return false;
	return true;
}

/* The revision the file name says (see alembic.h), new string; NULL: it says none. */
static char *name_says(const char *stem, const char *id)
{
	const char *p = stem;
	bool first = true;
	while (*p) {
		size_t n = strcspn(p, "_-.");
		if (n == 12 && all_of(p, n, "0123456789abcdef"))
			return fl_strndup(p, n);
		if (first && id && all_of(id, strlen(id), "0123456789") && all_of(p, n, "0123456789"))
			return fl_strndup(p, n);
		first = false;
		p += n;
		if (*p)
			p++;
	}
	return NULL;
}

static char *stem_of(const char *name)
{
	size_t n = strlen(name);
	return fl_strndup(name, n > 3 ? n - 3 : n);
}

/* The slug of a file: its stem without the revision id, as a Flyway description. */
static char *slug_of(const char *name, const char *id)
{
	char *stem = stem_of(name);
	const char *s = stem;
	char *at = strstr(stem, id);
	if (at && stem_has_word(stem, id))
		s = at + strlen(id);
	fl_buf b;
	fl_buf_init(&b);
	for (; *s; s++) {
		bool keep = is_ident_char(*s) && *s != '_';
		if (keep)
			fl_buf_putc(&b, *s);
		else if (b.len && b.data[b.len - 1] != '_')
			fl_buf_putc(&b, '_');
	}
	while (b.len && b.data[b.len - 1] == '_')
		b.data[--b.len] = '\0';
	if (b.len > 60) {
		b.data[60] = '\0';
		b.len = 60;
	}
	free(stem);
	if (b.len == 0) {
		fl_buf_free(&b);
		return fl_strdup("revision");
	}
	return fl_buf_detach(&b);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_versions(const char *dir, char ***names, size_t *n, fl_error **err)
{
	DIR *d = opendir(dir);
	if (!d) {
		*err = fl_error_new("cannot read the Alembic versions folder %s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 3 && strcmp(e->d_name + l - 3, ".py") == 0 && e->d_name[0] != '.' &&
		    strcmp(e->d_name, "__init__.py") != 0)
			strv_add(names, n, fl_strdup(e->d_name));
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof(char *), name_cmp);
	return 0;
}

/* ---- the graph ---- */

typedef struct {
	pyrev *r;
	size_t n;
	const char *versions_display;
} graph;

/* The first usable revision with that id (duplicates are reported, not used). */
static long find_rev(const graph *g, const char *id)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->r[i].usable && strcmp(g->r[i].id, id) == 0)
			return (long)i;
	return -1;
}

static const char *down_of(const pyrev *r)
{
	return r->ndowns == 1 ? r->downs[0] : NULL;
}

/* Revisions whose only down_revision is r[i]. */
static size_t children(const graph *g, size_t i, size_t *out, size_t max)
{
	size_t k = 0;
	for (size_t j = 0; j < g->n; j++)
		if (g->r[j].usable && j != i && down_of(&g->r[j]) &&
		    strcmp(down_of(&g->r[j]), g->r[i].id) == 0) {
			if (k < max)
				out[k] = j;
			k++;
		}
	return k;
}

/* The head of the line that starts at i: children followed while there is exactly one. */
static size_t head_from(const graph *g, size_t i)
{
	for (size_t steps = 0; steps < g->n; steps++) {
		size_t c[2];
		if (children(g, i, c, 2) != 1)
			break;
		i = c[0];
	}
	return i;
}

static bool is_ancestor_or_self(const graph *g, size_t of, const char *id)
{
	long cur = (long)of;
	for (size_t steps = 0; cur >= 0 && steps <= g->n; steps++) {
		if (strcmp(g->r[cur].id, id) == 0)
			return true;
		const char *d = down_of(&g->r[cur]);
		cur = d ? find_rev(g, d) : -1;
	}
	return false;
}

static void check_graph(graph *g, fl_error **errs)
{
	/* two revisions with one id */
	for (size_t i = 0; i < g->n; i++)
		for (size_t j = 0; j < i && g->r[i].usable; j++)
			if (g->r[j].usable && strcmp(g->r[i].id, g->r[j].id) == 0) {
				fl_error_append(
				    errs, fl_error_at(g->r[i].file, g->r[i].rev_line, g->r[i].rev_col,
				                      "revision \"%s\" is also the revision of %s:%d; each "
				                      "revision needs an id of its own",
				                      g->r[i].id, g->r[j].file, g->r[j].rev_line));
				g->r[i].usable = false;
			}
	const char **ids = fl_calloc(g->n + 1, sizeof(char *));
	size_t nids = 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->r[i].usable)
			ids[nids++] = g->r[i].id;
	/* down_revisions that name nothing */
	bool dangling = false;
	for (size_t i = 0; i < g->n; i++) {
		pyrev *r = &g->r[i];
		if (!r->usable)
			continue;
		for (size_t k = 0; k < r->ndowns; k++) {
			if (find_rev(g, r->downs[k]) >= 0)
				continue;
			dangling = true;
			fl_buf why;
			fl_buf_init(&why);
			for (size_t j = 0; j < g->n; j++) {
				char *stem = stem_of(g->r[j].name);
				char *says = name_says(stem, g->r[j].id);
				if (says && g->r[j].id && strcmp(says, r->downs[k]) == 0 &&
				    strcmp(says, g->r[j].id) != 0)
					fl_buf_printf(
					    &why,
					    "; %s is named after it but holds revision \"%s\" (see there)",
					    g->r[j].file, g->r[j].id);
				free(says);
				free(stem);
			}
			if (why.len == 0) {
				const char *near = fl_text_suggest(r->downs[k], ids, nids);
				if (near)
					fl_buf_printf(&why, " (did you mean \"%s\"?)", near);
			}
			fl_error_append(errs, fl_error_at(r->file, r->down_line, r->down_col,
			                                  "down_revision \"%s\" names no revision in %s%s",
			                                  r->downs[k], g->versions_display,
			                                  why.len ? why.data : ""));
			fl_buf_free(&why);
		}
	}
	/* merges */
	for (size_t i = 0; i < g->n; i++) {
		pyrev *r = &g->r[i];
		if (!r->usable || r->ndowns < 2)
			continue;
		long a = find_rev(g, r->downs[0]), b = find_rev(g, r->downs[1]);
		fl_buf how;
		fl_buf_init(&how);
		if (a >= 0 && b >= 0 && r->ndowns == 2) {
			/* the first revision of b's line that a's line does not share */
			size_t first = (size_t)b;
			for (size_t steps = 0; steps < g->n; steps++) {
				const char *d = down_of(&g->r[first]);
				long dn = d ? find_rev(g, d) : -1;
				if (dn < 0 || is_ancestor_or_self(g, (size_t)a, d))
					break;
				first = (size_t)dn;
			}
			fl_buf_printf(&how,
			              "choose the order: to run \"%s\"'s line first, set the down_revision "
			              "of \"%s\" (%s) to "
			              "\"%s\" and this one to \"%s\"",
			              r->downs[0], g->r[first].id, g->r[first].file, r->downs[0],
			              r->downs[1]);
		} else {
			fl_buf_puts(
			    &how,
			    "choose the order of the lines it merges and make each revise the one before");
		}
		fl_buf ids_b;
		fl_buf_init(&ids_b);
		for (size_t k = 0; k < r->ndowns; k++)
			fl_buf_printf(&ids_b, "%s\"%s\"",
			              k == 0               ? ""
			              : k + 1 == r->ndowns ? " and "
			                                   : ", ",
			              r->downs[k]);
		fl_error_append(errs,
		                fl_error_at(r->file, r->down_line, r->down_col,
		                            "revision \"%s\" is a merge of %s, and flotilla runs one line of "
		                            "migrations; %s",
		                            r->id, ids_b.data, how.data));
		fl_buf_free(&how);
		fl_buf_free(&ids_b);
	}
	/* cycles: each once, reported at its first member in file order */
	bool *in_cycle = fl_calloc(g->n + 1, sizeof(bool));
	bool cycles = false;
	for (size_t i = 0; i < g->n; i++) {
		if (!g->r[i].usable || in_cycle[i] || !down_of(&g->r[i]))
			continue;
		long cur = find_rev(g, down_of(&g->r[i]));
		for (size_t steps = 0; cur >= 0 && steps < g->n && (size_t)cur != i; steps++) {
			const char *d = down_of(&g->r[cur]);
			cur = d ? find_rev(g, d) : -1;
		}
		if (cur < 0 || (size_t)cur != i)
			continue;
		cycles = true;
		fl_buf path;
		fl_buf_init(&path);
		fl_buf_printf(&path, "\"%s\"", g->r[i].id);
		cur = find_rev(g, down_of(&g->r[i]));
		for (size_t steps = 0; cur >= 0 && steps < g->n; steps++) {
			in_cycle[cur] = true;
			fl_buf_printf(&path, " -> \"%s\"", g->r[cur].id);
			if ((size_t)cur == i)
				break;
			cur = find_rev(g, down_of(&g->r[cur]));
		}
		fl_error_append(
		    errs, fl_error_at(g->r[i].file, g->r[i].down_line, g->r[i].down_col,
		                      "down_revision \"%s\" closes a cycle: %s (each revises the next); "
		                      "one of them must revise a revision outside it, the first one None",
		                      down_of(&g->r[i]), path.data));
		fl_buf_free(&path);
	}
	/* more than one base */
	long first_base = -1;
	for (size_t i = 0; i < g->n; i++) {
		pyrev *r = &g->r[i];
		if (!r->usable || r->ndowns != 0)
			continue;
		if (first_base < 0) {
			first_base = (long)i;
			continue;
		}
		const pyrev *b = &g->r[first_base];
		size_t h = head_from(g, (size_t)first_base);
		fl_error_append(
		    errs, fl_error_at(r->file, r->down_line, r->down_col,
		                      "revision \"%s\" is a second base (down_revision None) besides \"%s\" "
		                      "(%s:%d): two lines of revisions, and flotilla runs one; set this "
		                      "down_revision to \"%s\" (the head of the other line) to run it after, "
		                      "or remove the file",
		                      r->id, b->id, b->file, b->rev_line, g->r[h].id));
	}
	if (first_base < 0 && !cycles && !dangling && nids > 0)
		fl_error_append(errs, fl_error_new("%s has no base revision (one with down_revision None)",
		                                   g->versions_display));
	/* branches: two revisions revising one */
	for (size_t i = 0; i < g->n; i++) {
		if (!g->r[i].usable)
			continue;
		size_t c[64];
		size_t k = children(g, i, c, 64);
		for (size_t x = 1; x < k && x < 64; x++) {
			const pyrev *a = &g->r[c[0]], *b = &g->r[c[x]];
			size_t ha = head_from(g, c[0]), hb = head_from(g, c[x]);
			fl_error_append(
			    errs,
			    fl_error_at(
			        b->file, b->down_line, b->down_col,
			        "revisions \"%s\" (%s:%d) and \"%s\" both revise \"%s\": a branch, and "
			        "flotilla runs one line of migrations; choose the order: to run \"%s\" .. "
			        "\"%s\" first, set this down_revision to \"%s\"; to run this line first, set "
			        "the down_revision of \"%s\" to \"%s\"",
			        a->id, a->file, a->down_line, b->id, g->r[i].id, a->id, g->r[ha].id,
			        g->r[ha].id, a->id, g->r[hb].id));
		}
	}
	free(in_cycle);
	free(ids);
}

void fl_alembic_chain_free(fl_alembic_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->revs[i].id);
		free(c->revs[i].down);
		free(c->revs[i].file);
		free(c->revs[i].slug);
	}
	free(c->revs);
	free(c);
}

int fl_alembic_chain_read(const char *script_dir, const char *display_dir, fl_alembic_chain **out,
                          fl_error **err)
{
	*out = NULL;
	if (!display_dir)
		display_dir = script_dir;
	char *vdir = fl_asprintf("%s/versions", script_dir);
	char *vdisp = fl_asprintf("%s/versions", display_dir);
	char **names = NULL;
	size_t nnames = 0;
	fl_error *errs = NULL;
	if (list_versions(vdir, &names, &nnames, &errs) != 0) {
		free(vdir);
		free(vdisp);
		*err = errs;
		return -1;
	}
	graph g = {.r = fl_calloc(nnames + 1, sizeof(pyrev)), .n = nnames, .versions_display = vdisp};
	for (size_t i = 0; i < nnames; i++) {
		pyrev *r = &g.r[i];
		r->name = names[i];
		r->file = fl_asprintf("%s/%s", vdisp, names[i]);
		char *path = fl_asprintf("%s/%s", vdir, names[i]);
		size_t len = 0;
		char *data = read_file(path, &len);
		free(path);
		if (!data) {
			fl_error_append(&errs,
			                fl_error_at(r->file, 0, 0, "cannot read: %s", strerror(errno)));
			continue;
		}
		if (memchr(data, '\0', len))
			fl_error_append(&errs,
			                fl_error_at(r->file, 0, 0, "holds a NUL byte: not a Python file"));
		else
			scan_file(r, data, &errs);
		free(data);
		if (!r->usable)
			continue;
		char *stem = stem_of(r->name);
		char *says = stem_has_word(stem, r->id) ? NULL : name_says(stem, r->id);
		if (says)
			fl_error_append(
			    &errs,
			    fl_error_at(r->file, r->rev_line, r->rev_col,
			                "revision \"%s\" does not match the file name, which says %s: the "
			                "file was overwritten or renamed; restore revision = \"%s\", or "
			                "rename the file after its revision (and fix every down_revision "
			                "that names the other)",
			                r->id, says, says));
		free(says);
		free(stem);
	}
	if (nnames == 0)
		fl_error_append(&errs, fl_error_new("%s holds no revision files (*.py)", vdisp));
	check_graph(&g, &errs);

	fl_alembic_chain *c = NULL;
	if (!errs) {
		c = fl_calloc(1, sizeof(*c));
		c->revs = fl_calloc(g.n + 1, sizeof(fl_alembic_rev));
		long cur = -1;
		for (size_t i = 0; i < g.n && cur < 0; i++)
			if (g.r[i].ndowns == 0)
				cur = (long)i;
		while (cur >= 0 && c->n < g.n) {
			const pyrev *r = &g.r[cur];
			fl_alembic_rev *x = &c->revs[c->n++];
			x->id = fl_strdup(r->id);
			x->down = down_of(r) ? fl_strdup(down_of(r)) : NULL;
			x->file = fl_strdup(r->file);
			x->slug = slug_of(r->name, r->id);
			x->rev_line = r->rev_line;
			x->rev_col = r->rev_col;
			x->down_line = r->down_line;
			x->down_col = r->down_col;
			size_t ch[1];
			cur = children(&g, (size_t)cur, ch, 1) == 1 ? (long)ch[0] : -1;
		}
	}
	for (size_t i = 0; i < g.n; i++) {
		free(g.r[i].name);
		free(g.r[i].file);
		free(g.r[i].id);
		strv_free(g.r[i].downs, g.r[i].ndowns);
	}
	free(g.r);
	free(names);
	free(vdir);
	free(vdisp);
	if (errs) {
		*err = errs;
		return -1;
	}
	*out = c;
	return 0;
}

/* ---- running Alembic ---- */

typedef struct {
	const fl_alembic_import_opts *o;
	const fl_alembic_chain *c;
	char *cfg_dir, *cfg_base;
} runner;

/* Runs `alembic -c CONFIG <args>` in the config's folder. Returns 0 when it ran (see p->status). */
static int run_alembic(const runner *r, const char *args, fl_proc *p, fl_error **err)
{
	const char *prog = r->o->program ? r->o->program : FL_ALEMBIC_PROGRAM;
	if (access(prog, X_OK) != 0) {
		*err =
		    fl_error_new("Alembic is not installed at %s: install Debian's alembic and "
		                 "python3-sqlalchemy packages (apt-get install alembic python3-sqlalchemy)",
		                 prog);
		return -1;
	}
	fl_buf cmd;
	fl_buf_init(&cmd);
	fl_buf_puts(&cmd, "cd ");
	sh_quote(&cmd, r->cfg_dir);
	fl_buf_puts(&cmd, " && exec ");
	sh_quote(&cmd, prog);
	fl_buf_puts(&cmd, " -c ");
	sh_quote(&cmd, r->cfg_base);
	fl_buf_printf(&cmd, " %s", args);
	memset(p, 0, sizeof(*p));
	p->shell_cmd = cmd.data;
	p->timeout_ms = r->o->timeout_ms > 0 ? r->o->timeout_ms : FL_ALEMBIC_TIMEOUT_MS;
	p->out_limit = OUTPUT_LIMIT;
	p->err_limit = 1024 * 1024;
	int rc = fl_proc_run(p, err);
	p->shell_cmd = NULL;
	fl_buf_free(&cmd);
	return rc;
}

/* The last frame of Python's traceback that is in one of the chain's files: its index and line. */
static long traceback_place(const fl_alembic_chain *c, const char *err, int *line)
{
	long found = -1;
	for (const char *p = err; (p = strstr(p, "File \"")) != NULL;) {
		p += 6;
		const char *q = strchr(p, '"');
		if (!q)
			break;
		const char *slash = p;
		for (const char *s = p; s < q; s++)
			if (*s == '/')
				slash = s + 1;
		size_t bl = (size_t)(q - slash);
		int ln = 0;
		if (sscanf(q, "\", line %d", &ln) != 1)
			continue;
		for (size_t i = 0; i < c->n; i++) {
			const char *b = strrchr(c->revs[i].file, '/');
			b = b ? b + 1 : c->revs[i].file;
			if (strlen(b) == bl && strncmp(b, slash, bl) == 0 && bl > 0) {
				found = (long)i;
				*line = ln;
			}
		}
	}
	return found;
}

/* The last non-empty line of Python's stderr: the exception. */
static char *last_line(const char *s)
{
	const char *best = NULL, *best_end = NULL;
	for (const char *p = s; *p;) {
		const char *e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		const char *t = skip_ws(p);
		if (t < e && *t != '\r')
			best = t, best_end = e;
		p = *e ? e + 1 : e;
	}
	if (!best)
		return fl_strdup("no message");
	while (best_end > best && (best_end[-1] == '\r' || best_end[-1] == ' '))
		best_end--;
	return fl_strndup(best, (size_t)(best_end - best));
}

static char *proc_why(const fl_proc *p)
{
	if (p->timed_out)
		return fl_asprintf("it did not finish within %d s and was stopped", p->timeout_ms / 1000);
	char *st = fl_proc_describe_status(p->status);
	char *ll = last_line(p->err);
	char *s = fl_asprintf("%s: %s", st, ll);
	free(st);
	free(ll);
	return s;
}

typedef struct {
	char *from, *to; /* "" for the base */
	const char *body;
	size_t len;
} section;

/* Alembic's "-- Running upgrade A -> B" lines cut the output into one section per revision. */
static size_t sections(const char *out, const char *verb, section **s)
{
	char *mark = fl_asprintf("-- Running %s ", verb);
	size_t ml = strlen(mark), n = 0;
	*s = NULL;
	for (const char *p = out; *p;) {
		const char *e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		if ((size_t)(e - p) > ml && strncmp(p, mark, ml) == 0) {
			const char *arrow = strstr(p + ml, " -> ");
			if (arrow && arrow < e) {
				if (n)
					(*s)[n - 1].len = (size_t)(p - (*s)[n - 1].body);
				*s = fl_realloc(*s, (n + 1) * sizeof(section));
				section *x = &(*s)[n++];
				const char *a = p + ml, *ae = arrow;
				while (a < ae && *a == ' ')
					a++;
				while (ae > a && ae[-1] == ' ')
					ae--;
				x->from = fl_strndup(a, (size_t)(ae - a));
				const char *b = skip_ws(arrow + 4), *be = e;
				while (be > b && (be[-1] == ' ' || be[-1] == '\r'))
					be--;
				/* "B, message" in some versions' log lines: the id is the first word */
				const char *comma = memchr(b, ',', (size_t)(be - b));
				x->to = fl_strndup(b, (size_t)((comma ? comma : be) - b));
				x->body = *e ? e + 1 : e;
				x->len = strlen(x->body);
			}
		}
		p = *e ? e + 1 : e;
	}
	free(mark);
	return n;
}

static void sections_free(section *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].from);
		free(s[i].to);
	}
	free(s);
}

/* Is the word at *p (case-insensitive) w? Moves *p past it and the blanks after. */
static bool take_word(const char **p, const char *end, const char *w)
{
	const char *s = *p;
	size_t wl = strlen(w);
	if ((size_t)(end - s) < wl || strncasecmp(s, w, wl) != 0 || (s + wl < end && is_ident_char(s[wl])))
		return false;
	s += wl;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	*p = s;
	return true;
}

/* Is the next name ([schema.]alembic_version, quoted or not) Alembic's table? */
static bool is_version_table(const char *p, const char *end)
{
	const char *s = p;
	while (s < end && (is_ident_char(*s) || *s == '"' || *s == '.'))
		s++;
	size_t n = (size_t)(s - p);
	static const char t[] = "alembic_version";
	for (size_t k = 0; k < 2; k++) {
		size_t tl = sizeof(t) - 1 + (k ? 2 : 0);
		if (n < tl)
			continue;
		const char *tail = s - tl;
		bool ok =
		    k ? (tail[0] == '"' && strncmp(tail + 1, t, sizeof(t) - 1) == 0 && tail[tl - 1] == '"')
		      : strncmp(tail, t, sizeof(t) - 1) == 0;
		if (ok && (tail == p || tail[-1] == '.'))
			return true;
	}
	return false;
}

/* Alembic's bookkeeping, or the transaction around it: left out of the imported files. */
static bool bookkeeping(const char *st, size_t len)
{
	const char *p = st, *end = st + len;
	if (take_word(&p, end, "BEGIN") || take_word(&p, end, "COMMIT"))
		return p == end;
	if ((take_word(&p, end, "CREATE") && take_word(&p, end, "TABLE")) ||
	    (p = st, take_word(&p, end, "DROP") && take_word(&p, end, "TABLE")) ||
	    (p = st, take_word(&p, end, "INSERT") && take_word(&p, end, "INTO")) ||
	    (p = st, take_word(&p, end, "DELETE") && take_word(&p, end, "FROM")) ||
	    (p = st, take_word(&p, end, "UPDATE")))
		return is_version_table(p, end);
	return false;
}

/* A section's statements without the bookkeeping, each ended by ";\n\n". */
static int clean_sql(const section *s, const char *what, fl_buf *out, fl_error **err)
{
	fl_stmt *st = NULL;
	size_t n = 0;
	if (fl_sqlsplit(s->body, s->len, what, &st, &n, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *t = s->body + st[i].start;
		size_t len = st[i].end - st[i].start;
		if (bookkeeping(t, len))
			continue;
		fl_buf_add(out, t, len);
		fl_buf_puts(out, ";\n\n");
	}
	free(st);
	return 0;
}

typedef struct {
	char *up, *down;   /* the cleaned SQL; down NULL: no U file */
	char *no_undo_why; /* when down is NULL */
} rendered;

static int render_upgrades(const runner *r, rendered *out, fl_error **err)
{
	const fl_alembic_chain *c = r->c;
	fl_proc p;
	if (run_alembic(r, "upgrade base:head --sql", &p, err) != 0)
		return -1;
	int rc = -1;
	section *s = NULL;
	size_t n = 0;
	if (p.timed_out || !WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
		int line = 0;
		long at = p.timed_out ? -1 : traceback_place(c, p.err, &line);
		char *why = proc_why(&p);
		if (at >= 0)
			*err = fl_error_at(
			    c->revs[at].file, line, 0,
			    "revision \"%s\" cannot be rendered offline (alembic upgrade --sql): %s; a "
			    "revision that reads the database (op.get_bind() queries) needs a connection, "
			    "which offline SQL cannot have: write it as SQL (op.execute) or apply it with "
			    "Alembic before switching",
			    c->revs[at].id, why);
		else
			*err = fl_error_at(r->o->config, 0, 0, "alembic upgrade base:head --sql failed (%s)",
			                   why);
		free(why);
		goto out;
	}
	n = sections(p.out, "upgrade", &s);
	bool same = n == c->n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(s[i].to, c->revs[i].id) == 0 &&
		       strcmp(s[i].from, c->revs[i].down ? c->revs[i].down : "") == 0;
	if (!same) {
		const char *dir = r->o->display_dir ? r->o->display_dir : r->o->script_dir;
		*err = fl_error_at(
		    r->o->config, 0, 0,
		    "with this configuration Alembic renders a chain ending at \"%s\" (%zu revisions), "
		    "but %s/versions holds one ending at \"%s\" (%zu revisions): does its "
		    "script_location point at %s?",
		    n ? s[n - 1].to : "", n, dir, c->revs[c->n - 1].id, c->n, dir);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		fl_buf b;
		fl_buf_init(&b);
		if (clean_sql(&s[i], c->revs[i].file, &b, err) != 0) {
			fl_buf_free(&b);
			fl_error_prefix(*err, "Alembic's offline SQL of revision \"%s\"", c->revs[i].id);
			goto out;
		}
		out[i].up = fl_buf_detach(&b);
	}
	rc = 0;
out:
	sections_free(s, n);
	fl_proc_clear(&p);
	return rc;
}

static long chain_index(const fl_alembic_chain *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->revs[i].id, id) == 0)
			return (long)i;
	return -1;
}

/*
 * Downgrades from the head down. A downgrade that cannot be rendered
 * (NotImplementedError, a query) costs that revision its U file only: the
 * rest are rendered from its down_revision on.
 */
static int render_downgrades(const runner *r, rendered *out, fl_error **err)
{
	const fl_alembic_chain *c = r->c;
	char *start = fl_strdup("head");
	int rc = 0;
	for (size_t round = 0; start && round <= c->n; round++) {
		/* ids are checked words (scan_file), quoted all the same: they come from files */
		fl_buf args;
		fl_buf_init(&args);
		fl_buf_puts(&args, "downgrade ");
		char *range = fl_asprintf("%s:base", start);
		sh_quote(&args, range);
		free(range);
		fl_buf_puts(&args, " --sql");
		fl_proc p;
		int ran = run_alembic(r, args.data, &p, err);
		fl_buf_free(&args);
		free(start);
		start = NULL;
		if (ran != 0) {
			rc = -1;
			break;
		}
		section *s = NULL;
		size_t n = sections(p.out, "downgrade", &s);
		bool ok = !p.timed_out && WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0;
		long failed = -1;
		if (!ok) {
			int line = 0;
			failed = p.timed_out ? -1 : traceback_place(c, p.err, &line);
			if (failed < 0 && n)
				failed = chain_index(c, s[n - 1].from);
			if (failed < 0) {
				char *why = proc_why(&p);
				*err = fl_error_at(r->o->config, 0, 0, "alembic downgrade --sql failed (%s)",
				                   why);
				free(why);
				sections_free(s, n);
				fl_proc_clear(&p);
				rc = -1;
				break;
			}
			char *why = proc_why(&p);
			out[failed].no_undo_why =
			    fl_asprintf("its downgrade cannot be rendered offline (%s:%d: %s)",
			                c->revs[failed].file, line, why);
			free(why);
		}
		for (size_t i = 0; i < n; i++) {
			long k = chain_index(c, s[i].from);
			if (k < 0 || k == failed || out[k].down || out[k].no_undo_why)
				continue;
			fl_buf b;
			fl_buf_init(&b);
			if (clean_sql(&s[i], c->revs[k].file, &b, err) != 0) {
				fl_buf_free(&b);
				fl_error_prefix(*err, "Alembic's offline downgrade SQL of revision \"%s\"",
				                c->revs[k].id);
				rc = -1;
				break;
			}
			if (b.len == 0) {
				fl_buf_free(&b);
				out[k].no_undo_why = fl_strdup("its downgrade() does nothing");
			} else {
				out[k].down = fl_buf_detach(&b);
			}
		}
		if (rc == 0 && failed >= 0 && c->revs[failed].down)
			start = fl_strdup(c->revs[failed].down);
		sections_free(s, n);
		fl_proc_clear(&p);
		if (rc != 0)
			break;
	}
	free(start);
	for (size_t i = 0; rc == 0 && i < c->n; i++)
		if (!out[i].down && !out[i].no_undo_why)
			out[i].no_undo_why = fl_strdup("Alembic rendered no downgrade for it");
	return rc;
}

/* ---- writing the folder ---- */

/*
 * The file is named from the script directory's own name on ("alembic/versions/x.py"), not as
 * given on the command line: the header is part of the checksum, so it must not depend on where
 * the import ran.
 */
static char *header(const fl_alembic_rev *r, const char *script_dir, bool up)
{
	size_t l = strlen(script_dir);
	while (l > 1 && script_dir[l - 1] == '/')
		l--;
	size_t b = l;
	while (b > 0 && script_dir[b - 1] != '/')
		b--;
	const char *name = strrchr(r->file, '/');
	char *file = fl_asprintf("%.*s/versions/%s", (int)(l - b), script_dir + b, name ? name + 1 : r->file);
	char *h = fl_asprintf(
	    "-- alembic %s: revision %s, down_revision %s, file %s\n"
	    "-- written by flotilla import alembic from Alembic's offline SQL (alembic %s --sql), "
	    "without the alembic_version bookkeeping\n\n",
	    up ? "upgrade" : "downgrade", r->id, r->down ? r->down : "None", file,
	    up ? "upgrade" : "downgrade");
	free(file);
	return h;
}

static int mkdirs(const char *dir)
{
	char *p = fl_strdup(dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
	free(p);
	return rc;
}

typedef struct {
	char *name;
	char *data;
	bool same; /* already there, identical */
} outfile;

static int write_folder(const fl_alembic_import_opts *o, outfile *f, size_t n, fl_alembic_import_result *res,
                        fl_error **err)
{
	const char *disp = o->out_display ? o->out_display : o->out_dir;
	fl_error *errs = NULL;
	DIR *d = opendir(o->out_dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			fl_mig_kind kind;
			char *ver = NULL, *desc = NULL;
			fl_error *pe = NULL;
			int is = fl_migration_parse_name(e->d_name, &kind, &ver, &desc, &pe);
			free(ver);
			free(desc);
			fl_error_free(pe);
			if (is == 0)
				continue;
			long k = -1;
			for (size_t i = 0; i < n && k < 0; i++)
				if (strcmp(f[i].name, e->d_name) == 0)
					k = (long)i;
			char *path = fl_asprintf("%s/%s", o->out_dir, e->d_name);
			size_t len = 0;
			char *have = k >= 0 ? read_file(path, &len) : NULL;
			free(path);
			if (have && len == strlen(f[k].data) && memcmp(have, f[k].data, len) == 0)
				f[k].same = true;
			else if (k >= 0)
				fl_error_append(
				    &errs,
				    fl_error_new("%s/%s is already there with other content; an import "
				                 "never overwrites a migration (it may have been applied): "
				                 "remove it to write it again",
				                 disp, e->d_name));
			else
				fl_error_append(
				    &errs,
				    fl_error_new("%s/%s is already in the folder and is not one this "
				                 "import writes: import alembic writes a folder of its own; "
				                 "move the service's other migrations away first",
				                 disp, e->d_name));
			free(have);
		}
		closedir(d);
	}
	if (errs) {
		*err = errs;
		return -1;
	}
	if (mkdirs(o->out_dir) != 0) {
		*err = fl_error_new("cannot make %s: %s", disp, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (f[i].same) {
			res->nsame++;
			continue;
		}
		char *path = fl_asprintf("%s/%s", o->out_dir, f[i].name);
		if (fl_file_write(path, f[i].data, strlen(f[i].data)) != 0) {
			int en = errno;
			*err = fl_error_new("cannot write %s/%s: %s", disp, f[i].name, strerror(en));
			/* all or nothing: what this import wrote goes again */
			for (size_t k = 0; k < res->nwritten; k++) {
				char *w = fl_asprintf("%s/%s", o->out_dir, res->written[k]);
				unlink(w);
				free(w);
			}
			free(path);
			return -1;
		}
		strv_add(&res->written, &res->nwritten, fl_strdup(f[i].name));
		free(path);
	}
	return 0;
}

void fl_alembic_import_result_clear(fl_alembic_import_result *r)
{
	if (!r)
		return;
	strv_free(r->written, r->nwritten);
	strv_free(r->no_undo, r->nno_undo);
	memset(r, 0, sizeof(*r));
}

int fl_alembic_import(const fl_alembic_import_opts *o, fl_alembic_import_result *res, fl_error **err)
{
	memset(res, 0, sizeof(*res));
	fl_alembic_chain *c = NULL;
	if (fl_alembic_chain_read(o->script_dir, o->display_dir, &c, err) != 0)
		return -1;
	struct stat st;
	if (stat(o->config, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = fl_error_new("no Alembic configuration at %s: give it with --config", o->config);
		fl_alembic_chain_free(c);
		return -1;
	}
	runner r = {.o = o, .c = c};
	const char *slash = strrchr(o->config, '/');
	r.cfg_dir = slash ? fl_strndup(o->config, (size_t)(slash - o->config) + (slash == o->config))
	                  : fl_strdup(".");
	r.cfg_base = fl_strdup(slash ? slash + 1 : o->config);
	rendered *rd = fl_calloc(c->n + 1, sizeof(rendered));
	int rc = -1;
	outfile *f = fl_calloc(2 * c->n + 1, sizeof(outfile));
	size_t nf = 0;
	if (render_upgrades(&r, rd, err) != 0 || render_downgrades(&r, rd, err) != 0)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		const fl_alembic_rev *x = &c->revs[i];
		char *h = header(x, o->script_dir, true);
		f[nf].name = fl_asprintf("V%zu__%s.sql", i + 1, x->slug);
		f[nf++].data = fl_asprintf("%s%s", h, rd[i].up);
		free(h);
		if (rd[i].down) {
			h = header(x, o->script_dir, false);
			f[nf].name = fl_asprintf("U%zu__%s.sql", i + 1, x->slug);
			f[nf++].data = fl_asprintf("%s%s", h, rd[i].down);
			free(h);
		} else {
			strv_add(&res->no_undo, &res->nno_undo,
			         fl_asprintf("V%zu (revision %s): no U file: %s", i + 1, x->id,
			                     rd[i].no_undo_why));
		}
	}
	res->nrevs = c->n;
	rc = write_folder(o, f, nf, res, err);
out:
	for (size_t i = 0; i < nf; i++) {
		free(f[i].name);
		free(f[i].data);
	}
	free(f);
	for (size_t i = 0; i < c->n; i++) {
		free(rd[i].up);
		free(rd[i].down);
		free(rd[i].no_undo_why);
	}
	free(rd);
	free(r.cfg_dir);
	free(r.cfg_base);
	fl_alembic_chain_free(c);
	if (rc != 0) {
		strv_free(res->no_undo, res->nno_undo);
		res->no_undo = NULL;
		res->nno_undo = 0;
	}
	return rc;
}

/* ---- the headers, keep_alembic_version and baseline ---- */

void fl_alembic_header_clear(fl_alembic_header *h)
{
	free(h->id);
	free(h->down);
	free(h->file);
	memset(h, 0, sizeof(*h));
}

int fl_alembic_header_read(const char *data, size_t len, fl_alembic_header *h)
{
	memset(h, 0, sizeof(*h));
	const char *nl = memchr(data, '\n', len);
	size_t ll = nl ? (size_t)(nl - data) : len;
	char *line = fl_strndup(data, ll);
	const char *p = line;
	static const char up[] = "-- alembic upgrade: revision ", down[] = "-- alembic downgrade: revision ";
	if (strncmp(p, up, sizeof(up) - 1) == 0) {
		h->upgrade = true;
		p += sizeof(up) - 1;
	} else if (strncmp(p, down, sizeof(down) - 1) == 0) {
		p += sizeof(down) - 1;
	} else {
		free(line);
		return 0;
	}
	const char *d = strstr(p, ", down_revision "), *f = d ? strstr(d, ", file ") : NULL;
	if (!d || !f || d == p) {
		free(line);
		return 0;
	}
	h->id = fl_strndup(p, (size_t)(d - p));
	const char *dv = d + strlen(", down_revision ");
	h->down = strncmp(dv, "None,", 5) == 0 ? NULL : fl_strndup(dv, (size_t)(f - dv));
	h->file = fl_strdup(f + strlen(", file "));
	free(line);
	return 1;
}

size_t fl_alembic_version_sql(const fl_migration *m, const char *schema, char *out[3])
{
	fl_alembic_header h;
	if (m->kind == FL_MIG_REPEATABLE || fl_alembic_header_read(m->data, m->len, &h) != 1)
		return 0;
	const char *now = h.upgrade ? h.id : h.down; /* after an undo: the revision before */
	char *qs = fl_pg_ident_plain(schema ? schema : "public");
	size_t n = 0;
	/* Alembic's own definition of the table, so that Alembic reads it as its own */
	out[n++] =
	    fl_asprintf("CREATE TABLE IF NOT EXISTS %s.alembic_version (version_num varchar(32) NOT NULL, "
	                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
	                qs);
	out[n++] = fl_asprintf("DELETE FROM %s.alembic_version", qs);
	if (now) {
		char *lit = fl_pg_literal_plain(now);
		out[n++] = fl_asprintf("INSERT INTO %s.alembic_version (version_num) VALUES (%s)", qs, lit);
		free(lit);
	}
	free(qs);
	fl_alembic_header_clear(&h);
	return n;
}

int fl_alembic_baseline(fl_pg *pg, const fl_migration_set *set, const fl_apply_opts *o, fl_apply_result *res,
                        fl_error **err)
{
	const char *schema = o->schema ? o->schema : "public";
	const char *params[1] = {schema};
	char *there =
	    fl_pg_value(pg,
	                "SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.alembic_version') "
	                "IS NOT NULL",
	                1, params, err);
	if (!there)
		return -1;
	bool exists = strcmp(there, "t") == 0;
	free(there);
	if (!exists) {
		*err = fl_error_new(
		    "baseline --from-alembic: schema %s has no alembic_version table: Alembic has not "
		    "run on this database (migrate it from the start, or baseline --version V)",
		    schema);
		return -1;
	}
	char *qs = fl_pg_ident(pg, schema);
	char *sql = fl_asprintf("SELECT version_num FROM %s.alembic_version ORDER BY 1", qs);
	free(qs);
	PGresult *r = fl_pg_query(pg, sql, 0, NULL, "reading alembic_version", NULL, err);
	free(sql);
	if (!r)
		return -1;
	int rows = PQntuples(r);
	if (rows != 1) {
		fl_buf all;
		fl_buf_init(&all);
		for (int i = 0; i < rows; i++)
			fl_buf_printf(&all, "%s%s", i ? ", " : "", PQgetvalue(r, i, 0));
		*err = rows == 0
		           ? fl_error_new(
		                 "baseline --from-alembic: alembic_version is empty (the database is at "
		                 "Alembic's base): there is nothing to baseline; migrate applies every "
		                 "revision")
		           : fl_error_new(
		                 "baseline --from-alembic: alembic_version holds %d revisions (%s): the "
		                 "database is at a branch point, and flotilla runs one line; bring it to "
		                 "one revision with Alembic first",
		                 rows, all.data);
		fl_buf_free(&all);
		PQclear(r);
		return -1;
	}
	char *rev = fl_strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	const fl_migration *hit = NULL;
	fl_buf known;
	fl_buf_init(&known);
	for (size_t i = 0; i < set->n && !hit; i++) {
		const fl_migration *m = &set->items[i];
		fl_alembic_header h;
		if (m->kind != FL_MIG_VERSIONED || fl_alembic_header_read(m->data, m->len, &h) != 1)
			continue;
		if (h.upgrade && strcmp(h.id, rev) == 0)
			hit = m;
		else if (h.upgrade)
			fl_buf_printf(&known, "%s%s (V%s)", known.len ? ", " : "", h.id, m->version);
		fl_alembic_header_clear(&h);
	}
	if (!hit) {
		*err = fl_error_new(
		    "baseline --from-alembic: alembic_version says \"%s\", a revision no imported file "
		    "names (%s%s); import the service's Alembic revisions again (flotilla import "
		    "alembic), or baseline --version V by hand",
		    rev, known.len ? "the imported ones: " : "no file of the folder was imported",
		    known.len ? known.data : "");
		fl_buf_free(&known);
		free(rev);
		return -1;
	}
	fl_buf_free(&known);
	int rc = fl_apply_baseline(pg, hit->version, NULL, o, res, err);
	if (rc == 0) {
		res->changes = fl_realloc(res->changes, (res->nchanges + 1) * sizeof(char *));
		res->changes[res->nchanges++] =
		    fl_asprintf("alembic_version says %s, which is %s", rev, hit->script);
	}
	free(rev);
	return rc;
}
