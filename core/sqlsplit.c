/*
 * sqlsplit: one forward pass over the text. Every construct that can hide a
 * ';' (strings, quoted identifiers, dollar quotes, comments) is skipped as a
 * whole the moment it opens, so each byte is looked at a bounded number of
 * times and a file of any size splits in linear time. Places (line:col) are
 * computed by a cursor that only moves forward, for the same reason.
 *
 * The splitting rules follow what psql does before it sends a statement: a
 * ';' ends a statement only outside parentheses (CREATE RULE ... DO (a; b))
 * and outside a BEGIN ATOMIC body of CREATE FUNCTION/PROCEDURE, where CASE
 * ... END nests inside BEGIN ... END.
 */
#include "sqlsplit.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A byte offset that no text reaches: "not found". */
#define NOPE SIZE_MAX

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* PostgreSQL's ident_start: every byte of a multibyte character counts as a letter. */
static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* ident_cont includes '$': "a$b$" is one identifier, not a dollar quote. */
static bool is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

/* A dollar-quote tag is an identifier without '$'. */
static bool is_tag_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c);
}

/* ASCII case-insensitive "is this word `kw`?" (kw in upper case). */
static bool word_is(const char *w, size_t n, const char *kw)
{
	size_t i = 0;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		if (kw[i] == '\0' || c != (unsigned char)kw[i])
			return false;
	}
	return kw[i] == '\0';
}

static bool has_bom(const char *s, size_t len)
{
	return len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0;
}

/* A forward-only position cursor: moving it costs the bytes it passes. */
typedef struct {
	size_t off;
	int line, col;
} poscur;

static void pos_advance(const char *sql, size_t len, poscur *p, size_t to)
{
	const unsigned char *s = (const unsigned char *)sql;
	if (to > len)
		to = len;
	size_t from = p->off;
	/* a byte-order mark is invisible in an editor: it takes no column */
	if (from == 0 && has_bom(sql, len))
		from = to < 3 ? to : 3;
	for (size_t i = from; i < to; i++) {
		unsigned char c = s[i];
		if (c == '\n' || (c == '\r' && (i + 1 >= len || s[i + 1] != '\n'))) {
			p->line++;
			p->col = 1;
		} else if ((c & 0xC0) != 0x80) {
			p->col++;
		}
	}
	if (to > p->off)
		p->off = to;
}

void fl_sql_position(const char *sql, size_t len, size_t offset, int *line, int *col)
{
	poscur p = {0, 1, 1};
	pos_advance(sql, len, &p, offset);
	*line = p.line;
	*col = p.col;
}

size_t fl_sql_char_to_byte(const char *sql, size_t len, int charpos)
{
	if (charpos <= 1)
		return 0;
	const unsigned char *s = (const unsigned char *)sql;
	long seen = 0;
	for (size_t i = 0; i < len; i++) {
		/* a stray continuation byte at the start still counts as one */
		if ((i == 0 || (s[i] & 0xC0) != 0x80) && ++seen == charpos)
			return i;
	}
	return len;
}

/* Skips a quoted string or identifier; i is just past the opening quote. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q, bool backslash)
{
	while (i < len) {
		char c = s[i];
		if (backslash && c == '\\') {
			i += 2;
		} else if (c == q) {
			if (i + 1 < len && s[i + 1] == q)
				i += 2;
			else
				return i + 1;
		} else {
			i++;
		}
	}
	return NOPE;
}

/* Skips a block comment, nested ones included; i is at its opening slash. */
static size_t skip_block_comment(const char *s, size_t len, size_t i)
{
	size_t depth = 0;
	while (i + 1 < len) {
		if (s[i] == '/' && s[i + 1] == '*') {
			depth++;
			i += 2;
		} else if (s[i] == '*' && s[i + 1] == '/') {
			i += 2;
			if (--depth == 0)
				return i;
		} else {
			i++;
		}
	}
	return NOPE;
}

static size_t skip_line_comment(const char *s, size_t len, size_t i)
{
	while (i < len && s[i] != '\n' && s[i] != '\r')
		i++;
	return i;
}

size_t fl_sqlsplit_skip_comment(const char *s, size_t len, size_t i)
{
	if (i + 1 >= len)
		return i;
	if (s[i] == '-' && s[i + 1] == '-')
		return skip_line_comment(s, len, i);
	if (s[i] == '/' && s[i + 1] == '*') {
		size_t e = skip_block_comment(s, len, i);
		return e == NOPE ? len : e;
	}
	return i;
}

/*
 * Length of the dollar-quote delimiter ($$ or $tag$) that starts at i, 0 if
 * none does ($1 is a parameter, a lone $ an operator character).
 */
static size_t dollar_tag_len(const char *s, size_t len, size_t i)
{
	size_t k = i + 1;
	if (k < len && s[k] == '$')
		return 2;
	if (k >= len || !is_ident_start((unsigned char)s[k]))
		return 0;
	while (k < len && is_tag_cont((unsigned char)s[k]))
		k++;
	return k < len && s[k] == '$' ? k - i + 1 : 0;
}

/*
 * Skips a dollar-quoted body after its opening delimiter at i. A closing
 * candidate is compared only up to the next '$' (a tag holds none), so the
 * comparisons sum to the body's length.
 */
static size_t skip_dollar_body(const char *s, size_t len, size_t i, size_t taglen)
{
	const char *tag = s + i;
	size_t p = i + taglen;
	while (p < len) {
		const char *d = memchr(s + p, '$', len - p);
		if (!d)
			return NOPE;
		size_t q = (size_t)(d - s);
		if (len - q >= taglen && memcmp(s + q, tag, taglen) == 0)
			return q + taglen;
		p = q + 1;
	}
	return NOPE;
}

typedef struct {
	const char *s;
	size_t len;
	const char *filename;
	fl_stmt *items;
	size_t n, cap;
	poscur cur;

	/* the statement being read */
	bool started;
	size_t start, last_end;
	int paren;
	long atomic; /* BEGIN ATOMIC / CASE nesting in a routine body */
	int head;    /* progress through CREATE [OR REPLACE] {FUNCTION|PROCEDURE}; -1 when past */
	bool routine;
	bool copy;
	bool prev_begin, prev_from;
} splitter;

static void reset_statement(splitter *sp)
{
	sp->started = false;
	sp->paren = 0;
	sp->atomic = 0;
	sp->head = 0;
	sp->routine = false;
	sp->copy = false;
	sp->prev_begin = false;
	sp->prev_from = false;
}

static void emit(splitter *sp)
{
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? sp->cap * 2 : 16;
		sp->items = fl_realloc(sp->items, sp->cap * sizeof(*sp->items));
	}
	pos_advance(sp->s, sp->len, &sp->cur, sp->start);
	sp->items[sp->n++] = (fl_stmt){sp->start, sp->last_end, sp->cur.line, sp->cur.col};
	reset_statement(sp);
}

static fl_error *error_at(const splitter *sp, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static fl_error *error_at(const splitter *sp, size_t off, const char *fmt, ...)
{
	int line, col;
	fl_sql_position(sp->s, sp->len, off, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	fl_error *e = fl_error_vat(sp->filename, line, col, fmt, ap);
	va_end(ap);
	return e;
}

/* Shortens a tag for a message, at a character boundary. */
static int shown_len(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return (int)max;
}

/*
 * Keeps the little statement state the split needs: is this a routine
 * definition (for BEGIN ATOMIC), is this COPY ... FROM stdin. `w` is NULL
 * for a token that is not a bare word. False when the token completes
 * COPY ... FROM stdin, which only psql can feed.
 */
static bool note_token(splitter *sp, const char *w, size_t n)
{
	bool was_begin = sp->prev_begin, was_from = sp->prev_from;
	sp->prev_begin = sp->prev_from = false;
	if (sp->head >= 0) {
		int h = sp->head;
		sp->head = -1;
		if (w && h == 0 && word_is(w, n, "CREATE"))
			sp->head = 1;
		else if (w && h == 0 && word_is(w, n, "COPY"))
			sp->copy = true;
		else if (w && h == 1 && word_is(w, n, "OR"))
			sp->head = 2;
		else if (w && h == 2 && word_is(w, n, "REPLACE"))
			sp->head = 3;
		else if (w && (h == 1 || h == 3) && (word_is(w, n, "FUNCTION") || word_is(w, n, "PROCEDURE")))
			sp->routine = true;
		return true;
	}
	if (!w)
		return true;
	if (sp->routine) {
		if (word_is(w, n, "BEGIN"))
			sp->prev_begin = true;
		else if (was_begin && word_is(w, n, "ATOMIC"))
			sp->atomic++;
		else if (sp->atomic > 0 && word_is(w, n, "CASE"))
			sp->atomic++;
		else if (sp->atomic > 0 && word_is(w, n, "END"))
			sp->atomic--;
	}
	if (sp->copy && sp->paren == 0) {
		if (word_is(w, n, "FROM"))
			sp->prev_from = true;
		else if (was_from && word_is(w, n, "STDIN"))
			return false;
	}
	return true;
}

int fl_sqlsplit(const char *sql, size_t len, const char *filename, fl_stmt **out, size_t *n, fl_error **err)
{
	splitter sp = {.s = sql, .len = len, .filename = filename, .cur = {0, 1, 1}};
	reset_statement(&sp);
	const char *s = sql;
	fl_error *e = NULL;
	/* Flyway drops a leading byte-order mark; PostgreSQL would not take it */
	size_t i = has_bom(sql, len) ? 3 : 0;
	*out = NULL;
	*n = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (is_space(c)) {
			i++;
			continue;
		}
		if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			i = skip_line_comment(s, len, i + 2);
			continue;
		}
		if (c == '/' && i + 1 < len && s[i + 1] == '*') {
			size_t j = skip_block_comment(s, len, i);
			if (j == NOPE) {
				e = error_at(&sp, i, "unterminated /* comment (opened here)");
				goto fail;
			}
			i = j;
			continue;
		}
		if (c == '\\') {
			/* SQL has no backslash outside strings; psql reads one as its own command */
			size_t j = i + 1;
			if (j < len &&
			    (is_ident_start((unsigned char)s[j]) || is_digit((unsigned char)s[j]))) {
				while (j < len && j - i < 32 &&
				       (is_ident_start((unsigned char)s[j]) || is_digit((unsigned char)s[j])))
					j++;
				j = i + (size_t)shown_len(s + i, len - i, j - i);
			} else if (j < len && s[j] > ' ' && s[j] < 0x7f) {
				j++;
			}
			e = error_at(&sp, i,
			             "psql meta-command %.*s is not SQL; flotilla sends migrations to the "
			             "server, not to psql",
			             (int)(j - i), s + i);
			goto fail;
		}
		if (!sp.started) {
			if (c == ';') {
				i++;
				continue;
			}
			sp.started = true;
			sp.start = i;
		}

		size_t tok = i;
		const char *word = NULL;
		size_t wlen = 0;
		if (c == ';') {
			i++;
			if (sp.paren == 0 && sp.atomic == 0) {
				emit(&sp);
				continue;
			}
		} else if (c == '\'') {
			i = skip_quoted(s, len, i + 1, '\'', false);
			if (i == NOPE) {
				e = error_at(&sp, tok, "unterminated quoted string (opened here)");
				goto fail;
			}
		} else if (c == '"') {
			i = skip_quoted(s, len, i + 1, '"', false);
			if (i == NOPE) {
				e = error_at(&sp, tok, "unterminated quoted identifier (opened here)");
				goto fail;
			}
		} else if (c == '$') {
			size_t tl = dollar_tag_len(s, len, i);
			if (tl) {
				i = skip_dollar_body(s, len, i, tl);
				if (i == NOPE) {
					e = error_at(&sp, tok,
					             "unterminated dollar-quoted string %.*s%s (opened here)",
					             shown_len(s + tok, tl, 64), s + tok,
					             tl > 64 ? "..." : "");
					goto fail;
				}
			} else {
				i++;
				while (i < len && is_digit((unsigned char)s[i]))
					i++;
			}
		} else if (c == '(') {
			sp.paren++;
			i++;
		} else if (c == ')') {
			if (sp.paren > 0)
				sp.paren--;
			i++;
		} else if (is_ident_start(c)) {
			size_t j = i + 1;
			while (j < len && is_ident_cont((unsigned char)s[j]))
				j++;
			bool one = j == i + 1;
			if (one && (c == 'E' || c == 'e') && j < len && s[j] == '\'') {
				j = skip_quoted(s, len, j + 1, '\'', true);
				if (j == NOPE) {
					e = error_at(
					    &sp, tok,
					    "unterminated quoted string (opened here; in an E'' string a "
					    "backslash escapes the character after it)");
					goto fail;
				}
			} else if (one && (c == 'U' || c == 'u') && j + 1 < len && s[j] == '&' &&
			           (s[j + 1] == '\'' || s[j + 1] == '"')) {
				char q = s[j + 1];
				j = skip_quoted(s, len, j + 2, q, false);
				if (j == NOPE) {
					e = error_at(&sp, tok, "unterminated quoted %s (opened here)",
					             q == '"' ? "identifier" : "string");
					goto fail;
				}
			} else {
				word = s + i;
				wlen = j - i;
			}
			i = j;
		} else if (is_digit(c)) {
			/* 12, 1.5e-3, 0x1F, 1_000: nothing in a number can end a statement */
			i++;
			while (i < len &&
			       (is_digit((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' ||
			        ((unsigned char)s[i] < 0x80 && is_ident_start((unsigned char)s[i]))))
				i++;
		} else {
			i++;
		}
		if (!note_token(&sp, word, wlen)) {
			e = error_at(
			    &sp, sp.start,
			    "COPY ... FROM stdin needs psql to send the rows after it; flotilla sends "
			    "migrations to the server, not to psql: use INSERT, or COPY from a file the "
			    "server can read");
			goto fail;
		}
		sp.last_end = i;
	}
	if (sp.started)
		emit(&sp);
	*out = sp.items ? sp.items : fl_calloc(1, sizeof(fl_stmt));
	*n = sp.n;
	return 0;
fail:
	free(sp.items);
	if (err)
		*err = e;
	else
		fl_error_free(e);
	return -1;
}

/*
 * A reader of the first few tokens of one statement, for the transaction
 * check: words, quoted tokens and single punctuation characters, with
 * whitespace and comments skipped.
 */
typedef struct {
	const char *s;
	size_t len, i;
} toks;

static bool next_tok(toks *t, const char **w, size_t *n)
{
	const char *s = t->s;
	size_t len = t->len, i = t->i;
	for (;;) {
		while (i < len && is_space((unsigned char)s[i]))
			i++;
		if (i + 1 < len && s[i] == '-' && s[i + 1] == '-') {
			i = skip_line_comment(s, len, i + 2);
		} else if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
			i = skip_block_comment(s, len, i);
			if (i == NOPE)
				i = len;
		} else {
			break;
		}
	}
	if (i >= len) {
		t->i = len;
		return false;
	}
	size_t j = i + 1;
	unsigned char c = (unsigned char)s[i];
	if (is_ident_start(c) || is_digit(c)) {
		while (j < len && is_ident_cont((unsigned char)s[j]))
			j++;
	} else if (c == '\'' || c == '"') {
		j = skip_quoted(s, len, i + 1, (char)c, false);
		if (j == NOPE)
			j = len;
	}
	*w = s + i;
	*n = j - i;
	t->i = j;
	return true;
}

static bool next_is(toks *t, const char *kw)
{
	const char *w;
	size_t n;
	return next_tok(t, &w, &n) && word_is(w, n, kw);
}

/* A boolean option value that means false, as PostgreSQL's defGetBoolean reads it. */
static bool is_false(const char *w, size_t n)
{
	return word_is(w, n, "FALSE") || word_is(w, n, "OFF") || word_is(w, n, "0") ||
	       word_is(w, n, "'FALSE'") || word_is(w, n, "'OFF'") || word_is(w, n, "'0'");
}

/* REINDEX [ (options) ] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} [CONCURRENTLY] name */
static bool reindex_refuses(toks *t)
{
	const char *w;
	size_t n;
	if (!next_tok(t, &w, &n))
		return false;
	if (n == 1 && *w == '(') {
		bool concurrently = false, after = false;
		int depth = 1;
		while (depth > 0 && next_tok(t, &w, &n)) {
			bool was = after;
			after = false;
			if (n == 1 && *w == '(') {
				depth++;
			} else if (n == 1 && *w == ')') {
				depth--;
			} else if (word_is(w, n, "CONCURRENTLY")) {
				concurrently = after = true;
			} else if (was && is_false(w, n)) {
				concurrently = false;
			}
		}
		if (concurrently)
			return true;
		if (!next_tok(t, &w, &n))
			return false;
	}
	if (word_is(w, n, "SCHEMA") || word_is(w, n, "DATABASE") || word_is(w, n, "SYSTEM"))
		return true;
	return next_is(t, "CONCURRENTLY");
}

bool fl_sql_refuses_transaction(const char *stmt, size_t len)
{
	toks t = {stmt, len, 0};
	const char *w;
	size_t n;
	if (!next_tok(&t, &w, &n))
		return false;
	if (word_is(w, n, "VACUUM"))
		return true;
	if (word_is(w, n, "DISCARD"))
		return next_is(&t, "ALL");
	if (word_is(w, n, "ALTER"))
		return next_is(&t, "SYSTEM");
	if (word_is(w, n, "REINDEX"))
		return reindex_refuses(&t);
	bool create = word_is(w, n, "CREATE");
	if (!create && !word_is(w, n, "DROP"))
		return false;
	if (!next_tok(&t, &w, &n))
		return false;
	if (word_is(w, n, "DATABASE") || word_is(w, n, "TABLESPACE") || word_is(w, n, "SUBSCRIPTION"))
		return true;
	if (word_is(w, n, "INDEX"))
		return next_is(&t, "CONCURRENTLY");
	if (create && word_is(w, n, "UNIQUE"))
		return next_is(&t, "INDEX") && next_is(&t, "CONCURRENTLY");
	return false;
}

/* A name as written, schema-qualified or not: its first token is w, n; extends over ".name" parts. */
static void read_name(toks *t, const char *w, size_t n, const char **name, size_t *len)
{
	const char *end = w + n;
	for (;;) {
		toks save = *t;
		const char *d, *x;
		size_t dn, xn;
		if (!next_tok(t, &d, &dn) || dn != 1 || *d != '.' || !next_tok(t, &x, &xn)) {
			*t = save;
			break;
		}
		end = x + xn;
	}
	*name = w;
	*len = (size_t)(end - w);
}

/* The next token, skipping the given optional words in order (IF NOT EXISTS, ONLY ...). */
static bool next_skipping(toks *t, const char *const *words, size_t nwords, bool *skipped, const char **w,
                          size_t *n)
{
	if (skipped)
		*skipped = false;
	if (!next_tok(t, w, n))
		return false;
	for (size_t k = 0; k < nwords; k++) {
		if (!word_is(*w, *n, words[k]))
			continue;
		if (skipped && k == 0)
			*skipped = true;
		if (!next_tok(t, w, n))
			return false;
	}
	return true;
}

void fl_sql_about_of(const char *stmt, size_t len, fl_sql_about *out)
{
	memset(out, 0, sizeof(*out));
	toks t = {stmt, len, 0};
	const char *w;
	size_t n;
	if (!next_tok(&t, &w, &n))
		return;
	static const char *const if_exists[] = {"IF", "EXISTS"};
	static const char *const if_not_exists[] = {"IF", "NOT", "EXISTS"};
	static const char *const only[] = {"ONLY"};
	static const char *const if_exists_only[] = {"IF", "EXISTS", "ONLY"};
	if (word_is(w, n, "VACUUM") || word_is(w, n, "ANALYZE") || word_is(w, n, "ANALYSE") ||
	    word_is(w, n, "REINDEX") || word_is(w, n, "CLUSTER")) {
		out->kind = FL_SQL_RERUNNABLE;
		return;
	}
	if (word_is(w, n, "LOCK")) {
		static const char *const table_only[] = {"TABLE", "ONLY"};
		if (next_skipping(&t, table_only, 2, NULL, &w, &n))
			read_name(&t, w, n, &out->table, &out->table_len);
		return;
	}
	if (word_is(w, n, "TRUNCATE")) {
		static const char *const table_only[] = {"TABLE", "ONLY"};
		if (next_skipping(&t, table_only, 2, NULL, &w, &n))
			read_name(&t, w, n, &out->table, &out->table_len);
		return;
	}
	bool create = word_is(w, n, "CREATE"), drop = word_is(w, n, "DROP"), alter = word_is(w, n, "ALTER");
	if (!create && !drop && !alter)
		return;
	if (!next_tok(&t, &w, &n))
		return;
	if ((alter || drop) && word_is(w, n, "TABLE")) {
		if (next_skipping(&t, if_exists_only, 3, &out->if_exists, &w, &n))
			read_name(&t, w, n, &out->table, &out->table_len);
		return;
	}
	if (create && (word_is(w, n, "TRIGGER") || word_is(w, n, "RULE") || word_is(w, n, "POLICY"))) {
		/* CREATE TRIGGER name ... ON table */
		while (next_tok(&t, &w, &n))
			if (word_is(w, n, "ON")) {
				if (next_skipping(&t, only, 1, NULL, &w, &n))
					read_name(&t, w, n, &out->table, &out->table_len);
				return;
			}
		return;
	}
	if (create && word_is(w, n, "UNIQUE") && !next_tok(&t, &w, &n))
		return;
	if (!word_is(w, n, "INDEX"))
		return;
	toks at = t;
	bool concurrently = next_tok(&t, &w, &n) && word_is(w, n, "CONCURRENTLY");
	if (!concurrently)
		t = at;
	if (drop) {
		if (concurrently)
			out->kind = FL_SQL_DROP_INDEX_CONCURRENTLY;
		if (next_skipping(&t, if_exists, 2, &out->if_exists, &w, &n))
			read_name(&t, w, n, &out->index, &out->index_len);
		return;
	}
	if (concurrently)
		out->kind = FL_SQL_CREATE_INDEX_CONCURRENTLY;
	if (!next_skipping(&t, if_not_exists, 3, &out->if_exists, &w, &n))
		return;
	if (!word_is(w, n, "ON")) {
		read_name(&t, w, n, &out->index, &out->index_len);
		if (!next_tok(&t, &w, &n) || !word_is(w, n, "ON"))
			return;
	}
	if (next_skipping(&t, only, 1, NULL, &w, &n))
		read_name(&t, w, n, &out->table, &out->table_len);
}
