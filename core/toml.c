/*
 * toml: a TOML 1.0.0 parser (see toml.h).
 *
 * A hand-written recursive-descent parser over the raw bytes. Every node,
 * key and string of a tree lives in one arena owned by the root, so freeing
 * a tree is freeing a few chunks, and a failed parse can bail out from any
 * depth (longjmp) without leaking: the arena simply goes away with it.
 */
#include "toml.h"
#include "source.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

/* Containers nested deeper than this are refused: the parser recurses on
 * arrays and inline tables, and consumers recurse on the tree. */
#define MAX_DEPTH 256
/* Tables with more entries than this get a hash index. */
#define INDEX_MIN 8

/* How a table or array came to be; decides what may extend it later. */
enum {
	T_IMPLICIT = 1, /* created as a parent in a [header]; may be defined once later */
	T_DEFINED = 2,  /* defined by a [header], [[header]] element, or the root */
	T_DOTTED = 4,   /* created by a dotted key; only dotted keys may extend it */
	T_FROZEN = 8,   /* an inline table: closed once its '}' is read */
	A_TABLES = 16,  /* an array of tables ([[header]]) */
	A_STATIC = 32,  /* an array written as [ ... ] */
};

typedef struct {
	const char *key; /* NUL-terminated copy in the arena; may hold NUL itself */
	fl_toml_value *val;
	uint32_t klen;
	uint32_t hash;
	int line, col;
} entry;

struct fl_toml_value {
	unsigned char type;
	unsigned char flags;
	unsigned short depth;
	int line, col;
	const char *file;
	union {
		struct {
			entry *e;
			uint32_t *slot; /* entry index + 1, 0 = empty; NULL below INDEX_MIN */
			uint32_t len, cap, nslot;
		} tab;
		struct {
			fl_toml_value **v;
			size_t len, cap;
		} arr;
		struct {
			char *s;
			size_t len;
		} str;
		int64_t i;
		double f;
		bool b;
		fl_toml_datetime dt;
	} u;
};

/* Entries, items and slots are grown by block_grow(): powers of two. */
_Static_assert((sizeof(entry) & (sizeof(entry) - 1)) == 0, "entry size must be a power of two");

/* ---------------------------------------------------------------- arena */

typedef struct chunk {
	struct chunk *next;
	size_t cap, used;
	double data[]; /* double-aligned: nothing stored needs more */
} chunk;

typedef struct {
	chunk *head;
	size_t next_cap;
} arena;

/* The root owns the arena; the root value comes first so a root pointer is
 * a doc pointer. */
typedef struct {
	fl_toml_value root;
	arena mem;
} doc;

/*
 * Faults a fresh chunk in with one call instead of one page fault per page.
 * Under virtualisation a fault can cost ~10 us: without this, faulting in
 * the tree took two thirds of the time to parse a 1 MiB document. Best
 * effort: kernels before 5.14 answer EINVAL and the pages fault as usual.
 */
static void prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
	if (n < 65536)
		return;
	const uintptr_t page = 4096;
	uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t end = ((uintptr_t)p + n) & ~(page - 1);
	if (end > start)
		(void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
	(void)p;
	(void)n;
#endif
}

static void *arena_alloc(arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	chunk *c = a->head;
	if (c && c->cap - c->used >= n) {
		void *p = (char *)c->data + c->used;
		c->used += n;
		return p;
	}
	if (n > a->next_cap / 4) {
		/* A big block gets a chunk of its own behind the current one, so the
		 * free space in the current chunk is not thrown away. */
		chunk *big = fl_malloc(sizeof(chunk) + n);
		prefault(big->data, n);
		big->cap = big->used = n;
		if (c) {
			big->next = c->next;
			c->next = big;
		} else {
			big->next = NULL;
			a->head = big;
		}
		return big->data;
	}
	chunk *fresh = fl_malloc(sizeof(chunk) + a->next_cap);
	prefault(fresh->data, a->next_cap);
	fresh->cap = a->next_cap;
	fresh->used = n;
	fresh->next = c;
	a->head = fresh;
	if (a->next_cap < ((size_t)1 << 20))
		a->next_cap *= 2;
	return fresh->data;
}

static void arena_free(arena *a)
{
	chunk *c = a->head;
	while (c) {
		chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}

/* --------------------------------------------------------------- parser */

typedef struct {
	const char *s; /* NUL-terminated copy in the arena when owned */
	size_t len;
	uint32_t hash;
	bool owned;
	size_t off;
	int line, col;
} keypart;

typedef struct {
	const unsigned char *s;
	size_t n, i;
	const char *file;
	doc *d;
	fl_error *err;
	jmp_buf fail;
	/* Location cache: positions are asked for in increasing order almost
	 * always, so counting lines and characters resumes from the last one. */
	size_t loc_off, loc_start, bom; /* loc_start: where loc_off's line starts */
	int loc_line, loc_col;
	fl_buf scratch; /* string contents being decoded */
	keypart *keys;  /* a stack: nested inline tables push above their parent */
	size_t nkeys, capkeys;
	fl_toml_value *cur; /* the table that key/value lines go into */
	/* Blocks left behind by growing tables and arrays, by log2 of their
	 * size: the next table reuses them, which halves the memory touched. */
	void *spare[64];
} parser;

static int count_chars(const unsigned char *s, size_t n)
{
	int c = 0;
	for (size_t k = 0; k < n; k++)
		if ((s[k] & 0xC0) != 0x80)
			c++;
	return c;
}

static void locate(parser *p, size_t off, int *line, int *col)
{
	if (off > p->n)
		off = p->n;
	if (off < p->bom)
		off = p->bom;
	size_t i = p->loc_off, start = p->loc_start;
	int ln = p->loc_line, cl = p->loc_col;
	if (off < start) {
		/* Backwards past the cached line (a table placed at its '[' after its
		 * keys, an error at a string's opening quote): walk back only as far
		 * as needed. */
		for (size_t k = start - 1; k > off; k--)
			if (p->s[k - 1] == '\n')
				ln--;
		ln--;
		start = off;
		while (start > p->bom && p->s[start - 1] != '\n')
			start--;
		i = start;
		cl = 1;
	} else if (off < i) {
		i = start;
		cl = 1;
	}
	while (i < off) {
		const unsigned char *nl = memchr(p->s + i, '\n', off - i);
		if (!nl) {
			cl += count_chars(p->s + i, off - i);
			break;
		}
		ln++;
		cl = 1;
		i = (size_t)(nl - p->s) + 1;
		start = i;
	}
	p->loc_off = off;
	p->loc_start = start;
	p->loc_line = ln;
	p->loc_col = cl;
	*line = ln;
	*col = cl;
}

static _Noreturn void fail_at(parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void fail_at(parser *p, size_t off, const char *fmt, ...)
{
	int line, col;
	locate(p, off, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	p->err = fl_error_vat(p->file, line, col, fmt, ap);
	va_end(ap);
	longjmp(p->fail, 1);
}

static void *alloc(parser *p, size_t n)
{
	return arena_alloc(&p->d->mem, n);
}

static unsigned log2_ceil(size_t n)
{
	unsigned k = 0;
	while (((size_t)1 << k) < n)
		k++;
	return k;
}

/* A block of `bytes` (a power of two), recycled when one is spare: the
 * smallest spare block that is big enough, halved down to size. */
static void *block_alloc(parser *p, size_t bytes)
{
	unsigned want = log2_ceil(bytes), k = want;
	while (k < 64 && !p->spare[k])
		k++;
	if (k == 64)
		return alloc(p, bytes);
	char *b = p->spare[k];
	p->spare[k] = *(void **)b;
	while (k > want) {
		k--;
		void *half = b + ((size_t)1 << k);
		*(void **)half = p->spare[k];
		p->spare[k] = half;
	}
	return b;
}

static void block_release(parser *p, void *b, size_t bytes)
{
	void **head = &p->spare[log2_ceil(bytes)];
	*(void **)b = *head;
	*head = b;
}

/* Doubles an array of `len` elements of `size` bytes, both powers of two. */
static void *block_grow(parser *p, void *old, size_t len, size_t size, size_t *cap)
{
	size_t ncap = len ? len * 2 : 4;
	void *b = block_alloc(p, ncap * size);
	if (len) {
		memcpy(b, old, len * size);
		block_release(p, old, len * size);
	}
	*cap = ncap;
	return b;
}

static char *copy_str(parser *p, const void *s, size_t n)
{
	char *c = alloc(p, n + 1);
	if (n)
		memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

static int peek(const parser *p)
{
	return p->i < p->n ? p->s[p->i] : -1;
}

static int peek_at(const parser *p, size_t k)
{
	return p->i + k < p->n ? p->s[p->i + k] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* ----------------------------------------------------------------- UTF-8 */

/* Length of the well-formed UTF-8 sequence at s (1-4), 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		n = 2, v = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, v = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

/* Checks the sequence at off, which starts with a byte >= 0x80. */
static size_t utf8_check(parser *p, size_t off)
{
	uint32_t cp;
	size_t k = utf8_seq(p->s + off, p->n - off, &cp);
	if (k)
		return k;
	unsigned char c = p->s[off];
	if (c < 0xC2 || c > 0xF4)
		fail_at(p, off, "invalid UTF-8 byte 0x%02x", c);
	fail_at(p, off, "invalid UTF-8 sequence starting with byte 0x%02x", c);
}

static void utf8_put(fl_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	fl_buf_add(b, u, n);
}

/* What is at off, for "expected X, found Y" messages. */
static const char *describe(parser *p, size_t off, char *buf, size_t size)
{
	if (off >= p->n)
		return "end of file";
	unsigned char c = p->s[off];
	if (c == '\n' || (c == '\r' && off + 1 < p->n && p->s[off + 1] == '\n'))
		return "end of line";
	if (c < 0x20 || c == 0x7F)
		snprintf(buf, size, "control character U+%04X", c);
	else if (c < 0x80)
		snprintf(buf, size, "'%c'", c);
	else {
		uint32_t cp = 0;
		size_t k = utf8_seq(p->s + off, p->n - off, &cp);
		/* The code point too: the character may be invisible (a BOM). */
		snprintf(buf, size, "'%.*s' (U+%04X)", (int)k, (const char *)p->s + off, (unsigned)cp);
	}
	return buf;
}

static _Noreturn void fail_found(parser *p, size_t off, const char *expected)
{
	char buf[48];
	/* An invalid byte is the real problem, whatever was expected there. */
	if (off < p->n && p->s[off] >= 0x80)
		utf8_check(p, off);
	const char *found = describe(p, off, buf, sizeof(buf));
	fail_at(p, off, "%s, found %s", expected, found);
}

/* -------------------------------------------------------- blanks, comments */

static void skip_ws(parser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
		p->i++;
}

static bool at_newline(const parser *p)
{
	int c = peek(p);
	return c == '\n' || (c == '\r' && peek_at(p, 1) == '\n');
}

/* From '#' up to (not including) the end of the line. */
static void skip_comment(parser *p)
{
	p->i++;
	while (p->i < p->n) {
		unsigned char c = p->s[p->i];
		if ((c >= 0x20 && c < 0x7F) || c == '\t') {
			p->i++;
		} else if (c >= 0x80) {
			p->i += utf8_check(p, p->i);
		} else if (c == '\n' || (c == '\r' && p->i + 1 < p->n && p->s[p->i + 1] == '\n')) {
			return;
		} else {
			fail_at(p, p->i, "control character U+%04X is not allowed in a comment", c);
		}
	}
}

/* Blanks, comments and newlines: what may sit between array elements. */
static void skip_wcn(parser *p)
{
	for (;;) {
		skip_ws(p);
		int c = peek(p);
		if (c == '#')
			skip_comment(p);
		else if (c == '\n')
			p->i++;
		else if (c == '\r' && peek_at(p, 1) == '\n')
			p->i += 2;
		else
			return;
	}
}

/* After a key/value or a header: blanks, an optional comment, then the end
 * of the line or of the file. */
static void end_of_line(parser *p, const char *after)
{
	skip_ws(p);
	if (peek(p) == '#')
		skip_comment(p);
	if (p->i >= p->n)
		return;
	if (p->s[p->i] == '\n') {
		p->i++;
		return;
	}
	if (p->s[p->i] == '\r' && peek_at(p, 1) == '\n') {
		p->i += 2;
		return;
	}
	char what[80];
	snprintf(what, sizeof(what), "expected end of line after %s", after);
	fail_found(p, p->i, what);
}

/* ---------------------------------------------------------------- strings */

/* The decoded string goes to p->scratch. `start` is the opening quote. */
static void parse_escape(parser *p, size_t start, bool ml)
{
	size_t at = p->i; /* the backslash */
	if (at + 1 >= p->n)
		fail_at(p, start, "unterminated string");
	unsigned char c = p->s[at + 1];
	char e;
	switch (c) {
	case 'b':
		e = '\b';
		break;
	case 't':
		e = '\t';
		break;
	case 'n':
		e = '\n';
		break;
	case 'f':
		e = '\f';
		break;
	case 'r':
		e = '\r';
		break;
	case '"':
		e = '"';
		break;
	case '\\':
		e = '\\';
		break;
	case 'u':
	case 'U': {
		size_t need = c == 'u' ? 4 : 8, k;
		uint32_t cp = 0;
		for (k = 0; k < need; k++) {
			size_t j = at + 2 + k;
			if (j >= p->n || !is_hex(p->s[j]))
				break;
			int h = p->s[j];
			cp = cp * 16 + (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
		}
		const char *hex = (const char *)p->s + at + 2;
		if (k < need)
			fail_at(p, at, "invalid unicode escape '\\%c%.*s': expected %zu hex digits", c,
			        (int)k, hex, need);
		if (cp >= 0xD800 && cp <= 0xDFFF)
			fail_at(p, at,
			        "invalid unicode escape '\\%c%.*s': U+%04X is a surrogate, not a character",
			        c, (int)k, hex, (unsigned)cp);
		if (cp > 0x10FFFF)
			fail_at(p, at, "invalid unicode escape '\\%c%.*s': beyond U+10FFFF", c, (int)k, hex);
		utf8_put(&p->scratch, cp);
		p->i = at + 2 + need;
		return;
	}
	default:
		if (ml && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
			/* A line-ending backslash: it and every blank and newline after
			 * it vanish. Only blanks may follow it on its line. */
			size_t j = at + 1;
			while (j < p->n && (p->s[j] == ' ' || p->s[j] == '\t'))
				j++;
			bool nl = j < p->n && (p->s[j] == '\n' ||
			                       (p->s[j] == '\r' && j + 1 < p->n && p->s[j + 1] == '\n'));
			if (nl) {
				for (;;) {
					if (j < p->n &&
					    (p->s[j] == ' ' || p->s[j] == '\t' || p->s[j] == '\n'))
						j++;
					else if (j + 1 < p->n && p->s[j] == '\r' && p->s[j + 1] == '\n')
						j += 2;
					else
						break;
				}
				p->i = j;
				return;
			}
		}
		if (c >= 0x20 && c < 0x7F)
			fail_at(p, at, "invalid escape sequence '\\%c' in string", c);
		if (c >= 0x80)
			fail_at(p, at, "invalid escape sequence '\\%.*s' in string",
			        (int)utf8_check(p, at + 1), (const char *)p->s + at + 1);
		fail_at(p, at, "invalid escape sequence: '\\' followed by U+%04X in string", c);
	}
	fl_buf_putc(&p->scratch, e);
	p->i = at + 2;
}

/*
 * Any of the four kinds of string, starting at its opening quote; the
 * contents land in p->scratch. A newline right after an opening """ or '''
 * is dropped, and CRLF inside a multi-line string becomes LF so a value does
 * not depend on how the file was checked out.
 */
static void parse_string_into_scratch(parser *p, bool allow_ml)
{
	size_t start = p->i;
	unsigned char q = p->s[start];
	bool basic = q == '"';
	bool ml = peek_at(p, 1) == q && peek_at(p, 2) == q;
	if (ml && !allow_ml)
		fail_at(p, start, "a multi-line string cannot be used as a key");
	fl_buf *b = &p->scratch;
	b->len = 0;
	fl_buf_add(b, "", 0);
	p->i += ml ? 3 : 1;
	if (ml) {
		if (peek(p) == '\n')
			p->i++;
		else if (peek(p) == '\r' && peek_at(p, 1) == '\n')
			p->i += 2;
	}
	for (;;) {
		size_t run = p->i;
		while (p->i < p->n) {
			unsigned char c = p->s[p->i];
			if ((c >= 0x20 && c < 0x7F && c != q && !(basic && c == '\\')) || c == '\t')
				p->i++;
			else
				break;
		}
		if (p->i > run)
			fl_buf_add(b, p->s + run, p->i - run);
		if (p->i >= p->n)
			fail_at(p, start, "unterminated string");
		unsigned char c = p->s[p->i];
		if (c == q) {
			if (!ml) {
				p->i++;
				return;
			}
			size_t k = 0;
			while (p->i + k < p->n && p->s[p->i + k] == q)
				k++;
			if (k >= 3) {
				if (k > 5)
					fail_at(p, p->i + 5,
					        "too many quotes at the end of a multi-line string");
				fl_buf_add(b, p->s + p->i, k - 3);
				p->i += k;
				return;
			}
			fl_buf_add(b, p->s + p->i, k);
			p->i += k;
		} else if (c == '\\') {
			parse_escape(p, start, ml);
		} else if (c >= 0x80) {
			size_t k = utf8_check(p, p->i);
			fl_buf_add(b, p->s + p->i, k);
			p->i += k;
		} else if (c == '\n' || (c == '\r' && peek_at(p, 1) == '\n')) {
			if (!ml)
				fail_at(p, start,
				        "unterminated string (a single-line string must end on its line)");
			fl_buf_putc(b, '\n');
			p->i += c == '\n' ? 1 : 2;
		} else {
			fail_at(p, p->i, "control character U+%04X is not allowed in a string", c);
		}
	}
}

/* ------------------------------------------------------------------- keys */

static uint32_t hash_key(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t k = 0; k < n; k++) {
		h ^= (unsigned char)s[k];
		h *= 16777619u;
	}
	return h;
}

static keypart *push_key(parser *p)
{
	if (p->nkeys == p->capkeys) {
		p->capkeys = p->capkeys ? p->capkeys * 2 : 16;
		p->keys = fl_realloc(p->keys, p->capkeys * sizeof(*p->keys));
	}
	return &p->keys[p->nkeys++];
}

/* A dotted key; its parts are pushed on p->keys. `what` names it in errors. */
static void parse_key(parser *p, const char *what)
{
	bool after_dot = false;
	for (;;) {
		keypart k = {0};
		k.off = p->i;
		int c = peek(p);
		if (c == '"' || c == '\'') {
			parse_string_into_scratch(p, false);
			k.s = copy_str(p, p->scratch.data, p->scratch.len);
			k.len = p->scratch.len;
			k.owned = true;
		} else if (c >= 0 && is_bare(c)) {
			size_t st = p->i;
			while (p->i < p->n && is_bare(p->s[p->i]))
				p->i++;
			k.s = (const char *)p->s + st;
			k.len = p->i - st;
		} else {
			char msg[64];
			snprintf(msg, sizeof(msg), "expected %s%s", after_dot ? "a key" : what,
			         after_dot ? " after '.'" : "");
			fail_found(p, p->i, msg);
		}
		if (k.len > UINT32_MAX)
			fail_at(p, k.off, "key longer than 4 GiB");
		k.hash = hash_key(k.s, k.len);
		locate(p, k.off, &k.line, &k.col);
		*push_key(p) = k;
		skip_ws(p);
		if (peek(p) != '.')
			return;
		p->i++;
		skip_ws(p);
		after_dot = true;
	}
}

/* Key parts [from, to] joined for messages, quoting the parts that need it. */
static const char *key_path(parser *p, size_t from, size_t to)
{
	fl_buf b;
	fl_buf_init(&b);
	for (size_t k = from; k <= to; k++) {
		const keypart *kp = &p->keys[k];
		if (k > from)
			fl_buf_putc(&b, '.');
		bool bare = kp->len > 0;
		for (size_t j = 0; j < kp->len && bare; j++)
			bare = is_bare((unsigned char)kp->s[j]);
		if (bare) {
			fl_buf_add(&b, kp->s, kp->len);
			continue;
		}
		fl_buf_putc(&b, '\'');
		for (size_t j = 0; j < kp->len; j++) {
			unsigned char c = (unsigned char)kp->s[j];
			if (c < 0x20 || c == 0x7F)
				fl_buf_printf(&b, "\\u%04X", c);
			else
				fl_buf_putc(&b, (char)c);
		}
		fl_buf_putc(&b, '\'');
	}
	/* In the arena: the message is built just before a longjmp. */
	char *s = copy_str(p, b.data ? b.data : "", b.len);
	fl_buf_free(&b);
	return s;
}

/* ----------------------------------------------------------------- values */

static fl_toml_value *new_value(parser *p, fl_toml_type type, size_t off, int depth)
{
	if (depth > MAX_DEPTH && (type == FL_TOML_TABLE || type == FL_TOML_ARRAY))
		fail_at(p, off, "nesting deeper than %d levels", MAX_DEPTH);
	/* Only as big as its type needs: most values are scalars, and a big
	 * document is mostly the memory its values take. Only the union member
	 * of the value's type is ever accessed. */
	size_t size = offsetof(fl_toml_value, u);
	switch (type) {
	case FL_TOML_TABLE:
		size += sizeof(((fl_toml_value *)0)->u.tab);
		break;
	case FL_TOML_ARRAY:
		size += sizeof(((fl_toml_value *)0)->u.arr);
		break;
	case FL_TOML_STRING:
		size += sizeof(((fl_toml_value *)0)->u.str);
		break;
	case FL_TOML_INTEGER:
	case FL_TOML_FLOAT:
	case FL_TOML_BOOL:
		size += sizeof(int64_t);
		break;
	default:
		size += sizeof(fl_toml_datetime);
		break;
	}
	fl_toml_value *v = alloc(p, size);
	memset(v, 0, size);
	v->type = (unsigned char)type;
	v->depth = (unsigned short)depth;
	v->file = p->d->root.file;
	locate(p, off, &v->line, &v->col);
	return v;
}

static entry *table_find(const fl_toml_value *t, const char *key, size_t len, uint32_t h)
{
	entry *e = t->u.tab.e;
	if (!t->u.tab.slot) {
		for (size_t k = 0; k < t->u.tab.len; k++)
			if (e[k].hash == h && e[k].klen == len && memcmp(e[k].key, key, len) == 0)
				return &e[k];
		return NULL;
	}
	size_t mask = t->u.tab.nslot - 1;
	for (size_t j = h & mask; t->u.tab.slot[j]; j = (j + 1) & mask) {
		entry *x = &e[t->u.tab.slot[j] - 1];
		if (x->hash == h && x->klen == len && memcmp(x->key, key, len) == 0)
			return x;
	}
	return NULL;
}

static void index_entry(fl_toml_value *t, size_t k)
{
	size_t mask = t->u.tab.nslot - 1;
	size_t j = t->u.tab.e[k].hash & mask;
	while (t->u.tab.slot[j])
		j = (j + 1) & mask;
	t->u.tab.slot[j] = (uint32_t)(k + 1);
}

static void table_add(parser *p, fl_toml_value *t, const keypart *k, fl_toml_value *v)
{
	size_t len = t->u.tab.len;
	if (len == t->u.tab.cap) {
		if (len >= ((size_t)1 << 28))
			fail_at(p, k->off, "too many keys in one table");
		size_t cap;
		t->u.tab.e = block_grow(p, t->u.tab.e, len, sizeof(entry), &cap);
		t->u.tab.cap = (uint32_t)cap;
	}
	entry *e = &t->u.tab.e[len];
	e->key = k->owned ? k->s : copy_str(p, k->s, k->len);
	e->klen = (uint32_t)k->len;
	e->hash = k->hash;
	e->line = k->line;
	e->col = k->col;
	e->val = v;
	t->u.tab.len = (uint32_t)++len;
	if (len <= INDEX_MIN)
		return;
	if (len * 2 > t->u.tab.nslot) {
		size_t n = 32;
		while (n < len * 4)
			n *= 2;
		if (t->u.tab.slot)
			block_release(p, t->u.tab.slot, t->u.tab.nslot * sizeof(uint32_t));
		t->u.tab.slot = block_alloc(p, n * sizeof(uint32_t));
		memset(t->u.tab.slot, 0, n * sizeof(uint32_t));
		t->u.tab.nslot = (uint32_t)n;
		for (size_t j = 0; j < len; j++)
			index_entry(t, j);
	} else {
		index_entry(t, len - 1);
	}
}

static void array_push(parser *p, fl_toml_value *a, fl_toml_value *v)
{
	size_t len = a->u.arr.len;
	if (len == a->u.arr.cap)
		a->u.arr.v = block_grow(p, a->u.arr.v, len, sizeof(fl_toml_value *), &a->u.arr.cap);
	a->u.arr.v[a->u.arr.len++] = v;
}

const char *fl_toml_type_phrase(const fl_toml_value *v)
{
	switch (v->type) {
	case FL_TOML_TABLE:
		return "a table";
	case FL_TOML_ARRAY:
		return v->flags & A_TABLES ? "an array of tables" : "an array";
	case FL_TOML_STRING:
		return "a string";
	case FL_TOML_INTEGER:
		return "an integer";
	case FL_TOML_FLOAT:
		return "a float";
	case FL_TOML_BOOL:
		return "a boolean";
	case FL_TOML_DATETIME:
		return "an offset date-time";
	case FL_TOML_DATETIME_LOCAL:
		return "a local date-time";
	case FL_TOML_DATE_LOCAL:
		return "a local date";
	case FL_TOML_TIME_LOCAL:
		return "a local time";
	}
	return "a value";
}

/* A word: the run of characters a number, boolean or date-time is made of. */
static bool is_word(int c)
{
	return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static int digits2(const char *w)
{
	return (w[0] - '0') * 10 + (w[1] - '0');
}

static bool all_digits(const char *w, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!is_digit((unsigned char)w[k]))
			return false;
	return true;
}

static bool looks_date(const char *w, size_t n)
{
	return n >= 10 && all_digits(w, 4) && w[4] == '-' && all_digits(w + 5, 2) && w[7] == '-' &&
	       all_digits(w + 8, 2);
}

static bool looks_time(const char *w, size_t n)
{
	return n >= 8 && all_digits(w, 2) && w[2] == ':' && all_digits(w + 3, 2) && w[5] == ':' &&
	       all_digits(w + 6, 2);
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* Long words are cut in messages. */
#define WORD_FMT        "'%.*s%s'"
#define WORD_ARGS(w, n) (int)((n) > 40 ? 40 : (n)), (w), ((n) > 40 ? "..." : "")

static fl_toml_value *parse_datetime(parser *p, size_t at, const char *w, size_t n, int depth)
{
	fl_toml_datetime dt = {0};
	size_t k = 0;
	bool has_date = false, has_off = false;
	if (n >= 5 && all_digits(w, 4) && w[4] == '-') {
		if (!looks_date(w, n))
			fail_at(p, at, "invalid date " WORD_FMT ": expected YYYY-MM-DD", WORD_ARGS(w, n));
		dt.year = digits2(w) * 100 + digits2(w + 2);
		dt.month = digits2(w + 5);
		dt.day = digits2(w + 8);
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.day > days_in_month(dt.year, dt.month))
			fail_at(p, at, "invalid date %.10s", w);
		has_date = true;
		k = 10;
		if (k < n) {
			if (w[k] != 'T' && w[k] != 't' && w[k] != ' ')
				fail_at(p, at, "invalid date-time " WORD_FMT, WORD_ARGS(w, n));
			k++;
		}
	}
	if (!has_date || k > 10) {
		const char *t = w + k;
		size_t tn = n - k;
		if (!looks_time(t, tn)) {
			if (tn >= 5 && all_digits(t, 2) && t[2] == ':' && all_digits(t + 3, 2) &&
			    (tn == 5 || t[5] != ':'))
				fail_at(p, at, "invalid time in " WORD_FMT ": seconds are required",
				        WORD_ARGS(w, n));
			fail_at(p, at, "invalid %s " WORD_FMT ": expected HH:MM:SS",
			        has_date ? "date-time" : "time", WORD_ARGS(w, n));
		}
		dt.hour = digits2(t);
		dt.minute = digits2(t + 3);
		dt.second = digits2(t + 6);
		/* Second 60 is RFC 3339's leap second. */
		if (dt.hour > 23 || dt.minute > 59 || dt.second > 60)
			fail_at(p, at, "invalid time %.8s", t);
		k += 8;
		if (k < n && w[k] == '.') {
			size_t f = ++k;
			while (k < n && is_digit((unsigned char)w[k]))
				k++;
			if (k == f)
				fail_at(p, at, "invalid time in " WORD_FMT ": expected digits after '.'",
				        WORD_ARGS(w, n));
			size_t digits = k - f;
			for (size_t z = 0; z < 9; z++)
				dt.nanosecond = dt.nanosecond * 10 + (z < digits ? w[f + z] - '0' : 0);
			dt.frac_digits = digits > INT_MAX ? INT_MAX : (int)digits;
		}
		if (has_date && k < n) {
			if (w[k] == 'Z' || w[k] == 'z') {
				k++;
				has_off = true;
			} else if ((w[k] == '+' || w[k] == '-') && n - k >= 6 && all_digits(w + k + 1, 2) &&
			           w[k + 3] == ':' && all_digits(w + k + 4, 2)) {
				int oh = digits2(w + k + 1), om = digits2(w + k + 4);
				if (oh > 23 || om > 59)
					fail_at(p, at, "invalid time offset %.6s", w + k);
				dt.offset_minutes = (w[k] == '-' ? -1 : 1) * (oh * 60 + om);
				k += 6;
				has_off = true;
			}
		}
		if (k != n)
			fail_at(p, at, "invalid %s " WORD_FMT, has_date ? "date-time" : "time",
			        WORD_ARGS(w, n));
	}
	fl_toml_type type = !has_date ? FL_TOML_TIME_LOCAL
	                    : k == 10 ? FL_TOML_DATE_LOCAL
	                    : has_off ? FL_TOML_DATETIME
	                              : FL_TOML_DATETIME_LOCAL;
	fl_toml_value *v = new_value(p, type, at, depth);
	v->u.dt = dt;
	return v;
}

/* Digits with single underscores between them, from w[*k]; false when the
 * first character is not a digit. */
static bool scan_digits(parser *p, size_t at, const char *w, size_t n, size_t *k, bool (*ok)(int))
{
	if (*k >= n || !ok((unsigned char)w[*k]))
		return false;
	while (*k < n) {
		if (ok((unsigned char)w[*k])) {
			(*k)++;
		} else if (w[*k] == '_') {
			if (*k + 1 >= n || !ok((unsigned char)w[*k + 1]))
				fail_at(p, at,
				        "misplaced underscore in number " WORD_FMT
				        ": underscores must be between digits",
				        WORD_ARGS(w, n));
			(*k)++;
		} else {
			break;
		}
	}
	return true;
}

static bool is_oct(int c)
{
	return c >= '0' && c <= '7';
}

static bool is_bin(int c)
{
	return c == '0' || c == '1';
}

static fl_toml_value *parse_number(parser *p, size_t at, const char *w, size_t n, int depth)
{
	size_t k = 0;
	bool neg = false;
	if (w[0] == '+' || w[0] == '-') {
		neg = w[0] == '-';
		k = 1;
	}
	if ((n - k == 3 && memcmp(w + k, "inf", 3) == 0) || (n - k == 3 && memcmp(w + k, "nan", 3) == 0)) {
		fl_toml_value *v = new_value(p, FL_TOML_FLOAT, at, depth);
		v->u.f = w[k] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
		return v;
	}
	if (n - k >= 2 && w[k] == '0' && (w[k + 1] == 'x' || w[k + 1] == 'o' || w[k + 1] == 'b')) {
		char kind = w[k + 1];
		const char *name = kind == 'x' ? "hexadecimal" : kind == 'o' ? "octal" : "binary";
		if (k)
			fail_at(p, at, "a sign is not allowed on %s integer " WORD_FMT, name,
			        WORD_ARGS(w, n));
		unsigned shift = kind == 'x' ? 4 : kind == 'o' ? 3 : 1;
		bool (*ok)(int) = kind == 'x' ? is_hex : kind == 'o' ? is_oct : is_bin;
		size_t d = k + 2;
		if (!scan_digits(p, at, w, n, &d, ok) || d != n)
			fail_at(p, at, "invalid %s integer " WORD_FMT, name, WORD_ARGS(w, n));
		uint64_t u = 0;
		for (size_t j = k + 2; j < n; j++) {
			if (w[j] == '_')
				continue;
			int h = (unsigned char)w[j];
			unsigned dv = (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
			if (u > ((uint64_t)INT64_MAX - dv) >> shift)
				fail_at(p, at, "integer %.*s%s does not fit in 64 bits", WORD_ARGS(w, n));
			u = (u << shift) | dv;
		}
		fl_toml_value *v = new_value(p, FL_TOML_INTEGER, at, depth);
		v->u.i = (int64_t)u;
		return v;
	}
	size_t d = k;
	if (!scan_digits(p, at, w, n, &d, is_digit))
		fail_at(p, at, "invalid number " WORD_FMT, WORD_ARGS(w, n));
	if (w[k] == '0' && d - k > 1)
		fail_at(p, at, "leading zeros are not allowed in " WORD_FMT, WORD_ARGS(w, n));
	size_t int_end = d;
	bool is_float = false;
	if (d < n && w[d] == '.') {
		d++;
		if (!scan_digits(p, at, w, n, &d, is_digit))
			fail_at(p, at, "invalid float " WORD_FMT ": expected digits after '.'",
			        WORD_ARGS(w, n));
		is_float = true;
	}
	if (d < n && (w[d] == 'e' || w[d] == 'E')) {
		d++;
		if (d < n && (w[d] == '+' || w[d] == '-'))
			d++;
		if (!scan_digits(p, at, w, n, &d, is_digit))
			fail_at(p, at, "invalid float " WORD_FMT ": expected digits in the exponent",
			        WORD_ARGS(w, n));
		is_float = true;
	}
	if (d != n)
		fail_at(p, at, "invalid number " WORD_FMT, WORD_ARGS(w, n));
	if (!is_float) {
		uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		for (size_t j = k; j < int_end; j++) {
			if (w[j] == '_')
				continue;
			unsigned dv = (unsigned)(w[j] - '0');
			if (u > (lim - dv) / 10)
				fail_at(p, at, "integer %.*s%s does not fit in 64 bits", WORD_ARGS(w, n));
			u = u * 10 + dv;
		}
		fl_toml_value *v = new_value(p, FL_TOML_INTEGER, at, depth);
		v->u.i = neg ? (int64_t)(0 - u) : (int64_t)u;
		return v;
	}
	fl_buf *b = &p->scratch;
	b->len = 0;
	for (size_t j = 0; j < n; j++)
		if (w[j] != '_')
			fl_buf_putc(b, w[j]);
	/* Only TOML's decimal syntax gets here. strtod follows LC_NUMERIC, which
	 * flotilla leaves at "C" (it never calls setlocale). */
	errno = 0;
	double f = strtod(b->data, NULL);
	if (errno == ERANGE && isinf(f))
		fail_at(p, at, "float " WORD_FMT " is out of range", WORD_ARGS(w, n));
	fl_toml_value *v = new_value(p, FL_TOML_FLOAT, at, depth);
	v->u.f = f;
	return v;
}

/* Booleans, numbers and date-times. */
static fl_toml_value *parse_word(parser *p, int depth)
{
	size_t at = p->i, end = at;
	while (end < p->n && is_word(p->s[end]))
		end++;
	const char *w = (const char *)p->s + at;
	/* A date and a time may be separated by one space. */
	if (end - at == 10 && looks_date(w, 10) && end + 3 < p->n && p->s[end] == ' ' &&
	    is_digit(p->s[end + 1]) && is_digit(p->s[end + 2]) && p->s[end + 3] == ':') {
		end++;
		while (end < p->n && is_word(p->s[end]))
			end++;
	}
	size_t n = end - at;
	if (n == 0)
		fail_found(p, at, "expected a value");
	p->i = end;
	if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0)) {
		fl_toml_value *v = new_value(p, FL_TOML_BOOL, at, depth);
		v->u.b = n == 4;
		return v;
	}
	if (n >= 5 && all_digits(w, 4) && w[4] == '-')
		return parse_datetime(p, at, w, n, depth);
	if (n >= 3 && all_digits(w, 2) && w[2] == ':')
		return parse_datetime(p, at, w, n, depth);
	if (is_digit((unsigned char)w[0]) || w[0] == '+' || w[0] == '-' || w[0] == '.' ||
	    (n == 3 && (memcmp(w, "inf", 3) == 0 || memcmp(w, "nan", 3) == 0)))
		return parse_number(p, at, w, n, depth);
	if ((n == 4 && strncasecmp(w, "true", 4) == 0) || (n == 5 && strncasecmp(w, "false", 5) == 0))
		fail_at(p, at, "invalid value " WORD_FMT ": booleans are lowercase true and false",
		        WORD_ARGS(w, n));
	fail_at(p, at, "invalid value " WORD_FMT " (a string must be quoted)", WORD_ARGS(w, n));
}

static fl_toml_value *parse_value(parser *p, int depth);
static void parse_keyval(parser *p, fl_toml_value *table);

static fl_toml_value *parse_array(parser *p, int depth)
{
	size_t at = p->i;
	fl_toml_value *a = new_value(p, FL_TOML_ARRAY, at, depth);
	a->flags = A_STATIC;
	p->i++;
	for (;;) {
		skip_wcn(p);
		if (p->i >= p->n)
			fail_at(p, at, "unterminated array");
		if (p->s[p->i] == ']')
			break;
		array_push(p, a, parse_value(p, depth + 1));
		skip_wcn(p);
		if (p->i >= p->n)
			fail_at(p, at, "unterminated array");
		if (p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->s[p->i] == ']')
			break;
		fail_found(p, p->i, "expected ',' or ']' after an array element");
	}
	p->i++;
	return a;
}

static fl_toml_value *parse_inline_table(parser *p, int depth)
{
	size_t at = p->i;
	fl_toml_value *t = new_value(p, FL_TOML_TABLE, at, depth);
	t->flags = T_DEFINED;
	p->i++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->i++;
		t->flags |= T_FROZEN;
		return t;
	}
	for (;;) {
		if (p->i >= p->n)
			fail_at(p, at, "unterminated inline table");
		if (at_newline(p))
			fail_at(p, p->i,
			        "expected a key, found end of line (an inline table must be on one line)");
		parse_keyval(p, t);
		skip_ws(p);
		int c = peek(p);
		if (c == ',') {
			size_t comma = p->i++;
			skip_ws(p);
			if (peek(p) == '}')
				fail_at(p, comma, "trailing comma is not allowed in an inline table");
			continue;
		}
		if (c == '}')
			break;
		if (c < 0)
			fail_at(p, at, "unterminated inline table");
		if (at_newline(p))
			fail_at(
			    p, p->i,
			    "expected ',' or '}', found end of line (an inline table must be on one line)");
		fail_found(p, p->i, "expected ',' or '}' in an inline table");
	}
	p->i++;
	t->flags |= T_FROZEN;
	return t;
}

static fl_toml_value *parse_value(parser *p, int depth)
{
	size_t at = p->i;
	int c = peek(p);
	if (c == '"' || c == '\'') {
		fl_toml_value *v = new_value(p, FL_TOML_STRING, at, depth);
		parse_string_into_scratch(p, true);
		v->u.str.s = copy_str(p, p->scratch.data, p->scratch.len);
		v->u.str.len = p->scratch.len;
		return v;
	}
	if (c == '[')
		return parse_array(p, depth);
	if (c == '{')
		return parse_inline_table(p, depth);
	return parse_word(p, depth);
}

/* ------------------------------------------------------ tables and keys */

static fl_toml_value *new_table(parser *p, size_t off, int depth, unsigned char flags)
{
	fl_toml_value *t = new_value(p, FL_TOML_TABLE, off, depth);
	t->flags = flags;
	return t;
}

/* The existing value e is in the way of key part k being a table. */
static _Noreturn void fail_not_table(parser *p, size_t base, size_t k, const entry *e)
{
	const keypart *kp = &p->keys[k];
	const char *path = key_path(p, base, k);
	if (e->val->type == FL_TOML_TABLE && (e->val->flags & T_FROZEN))
		fail_at(p, kp->off,
		        "cannot add to \"%s\": inline tables are closed (defined at line %d, column %d)",
		        path, e->val->line, e->val->col);
	fail_at(p, kp->off, "\"%s\" is already defined as %s at line %d, column %d", path,
	        fl_toml_type_phrase(e->val), e->line, e->col);
}

/* key = value, into `table` (the current [table] or an inline table). */
static void parse_keyval(parser *p, fl_toml_value *table)
{
	size_t base = p->nkeys;
	parse_key(p, "a key");
	size_t last = p->nkeys - 1;
	skip_ws(p);
	if (peek(p) != '=') {
		char msg[128];
		snprintf(msg, sizeof(msg), "expected '=' after key \"%s\"", key_path(p, base, last));
		fail_found(p, p->i, msg);
	}
	p->i++;
	skip_ws(p);
	if (p->i >= p->n || at_newline(p) || peek(p) == '#')
		fail_found(p, p->i, "expected a value after '='");
	fl_toml_value *t = table;
	for (size_t k = base; k < last; k++) {
		const keypart *kp = &p->keys[k];
		entry *e = table_find(t, kp->s, kp->len, kp->hash);
		if (!e) {
			fl_toml_value *sub = new_table(p, kp->off, t->depth + 1, T_DOTTED);
			table_add(p, t, kp, sub);
			t = sub;
			continue;
		}
		fl_toml_value *v = e->val;
		if (v->type == FL_TOML_TABLE && !(v->flags & (T_FROZEN | T_DEFINED))) {
			/* A dotted key defines the tables it goes through, so an implicit
			 * one can no longer get a [header] of its own. */
			v->flags = T_DOTTED;
			t = v;
			continue;
		}
		if (v->type == FL_TOML_TABLE && !(v->flags & T_FROZEN))
			fail_at(
			    p, kp->off,
			    "cannot add to table \"%s\" with a dotted key: it is already defined at line %d",
			    key_path(p, base, k), v->line);
		fail_not_table(p, base, k, e);
	}
	const keypart *kp = &p->keys[last];
	entry *e = table_find(t, kp->s, kp->len, kp->hash);
	if (e)
		fail_at(p, kp->off, "duplicate key \"%s\" (first defined at line %d, column %d)",
		        key_path(p, base, last), e->line, e->col);
	fl_toml_value *v = parse_value(p, t->depth + 1);
	/* Nested inline tables may have moved the key stack. */
	table_add(p, t, &p->keys[last], v);
	p->nkeys = base;
}

static fl_toml_value *last_table(fl_toml_value *arr)
{
	return arr->u.arr.v[arr->u.arr.len - 1];
}

/* [a.b.c] or [[a.b.c]]: makes the table that the following lines fill. */
static void parse_header(parser *p)
{
	size_t at = p->i;
	bool aot = peek_at(p, 1) == '[';
	p->i += aot ? 2 : 1;
	skip_ws(p);
	size_t base = p->nkeys;
	parse_key(p, "a table name");
	size_t last = p->nkeys - 1;
	skip_ws(p);
	if (aot) {
		if (peek(p) != ']' || peek_at(p, 1) != ']') {
			char msg[128];
			snprintf(msg, sizeof(msg), "expected ']]' after table name \"%s\"",
			         key_path(p, base, last));
			fail_found(p, p->i, msg);
		}
		p->i += 2;
	} else {
		if (peek(p) != ']') {
			char msg[128];
			snprintf(msg, sizeof(msg), "expected ']' after table name \"%s\"",
			         key_path(p, base, last));
			fail_found(p, p->i, msg);
		}
		p->i++;
	}
	fl_toml_value *t = &p->d->root;
	for (size_t k = base; k < last; k++) {
		const keypart *kp = &p->keys[k];
		entry *e = table_find(t, kp->s, kp->len, kp->hash);
		if (!e) {
			fl_toml_value *sub = new_table(p, kp->off, t->depth + 1, T_IMPLICIT);
			table_add(p, t, kp, sub);
			t = sub;
			continue;
		}
		fl_toml_value *v = e->val;
		if (v->type == FL_TOML_TABLE && !(v->flags & T_FROZEN))
			t = v;
		else if (v->type == FL_TOML_ARRAY && (v->flags & A_TABLES))
			t = last_table(v);
		else
			fail_not_table(p, base, k, e);
	}
	const keypart *kp = &p->keys[last];
	entry *e = table_find(t, kp->s, kp->len, kp->hash);
	fl_toml_value *tbl;
	if (aot) {
		fl_toml_value *arr;
		if (!e) {
			arr = new_value(p, FL_TOML_ARRAY, at, t->depth + 1);
			arr->flags = A_TABLES;
			table_add(p, t, kp, arr);
		} else if (e->val->type == FL_TOML_ARRAY && (e->val->flags & A_TABLES)) {
			arr = e->val;
		} else if (e->val->type == FL_TOML_ARRAY) {
			const char *path = key_path(p, base, last);
			fail_at(
			    p, kp->off,
			    "cannot append to \"%s\" with [[%s]]: it is a static array (line %d, column %d)",
			    path, path, e->line, e->col);
		} else if (e->val->type == FL_TOML_TABLE) {
			fail_at(p, kp->off, "\"%s\" is already defined as a table at line %d",
			        key_path(p, base, last), e->val->line);
		} else {
			fail_at(p, kp->off, "\"%s\" is already defined as %s at line %d, column %d",
			        key_path(p, base, last), fl_toml_type_phrase(e->val), e->line, e->col);
		}
		tbl = new_table(p, at, arr->depth + 1, T_DEFINED);
		array_push(p, arr, tbl);
	} else if (!e) {
		tbl = new_table(p, at, t->depth + 1, T_DEFINED);
		table_add(p, t, kp, tbl);
	} else {
		tbl = e->val;
		if (tbl->type == FL_TOML_ARRAY && (tbl->flags & A_TABLES))
			fail_at(p, kp->off, "\"%s\" is already defined as an array of tables at line %d",
			        key_path(p, base, last), tbl->line);
		if (tbl->type != FL_TOML_TABLE)
			fail_at(p, kp->off, "\"%s\" is already defined as %s at line %d, column %d",
			        key_path(p, base, last), fl_toml_type_phrase(tbl), e->line, e->col);
		if (tbl->flags != T_IMPLICIT)
			fail_at(p, kp->off, "table \"%s\" is already defined at line %d%s",
			        key_path(p, base, last), tbl->line,
			        tbl->flags & T_FROZEN   ? " (as an inline table)"
			        : tbl->flags & T_DOTTED ? " (by dotted keys)"
			                                : "");
		tbl->flags = T_DEFINED;
		locate(p, at, &tbl->line, &tbl->col);
	}
	p->nkeys = base;
	p->cur = tbl;
	end_of_line(p, "table header");
}

static void parse_document(parser *p)
{
	p->cur = &p->d->root;
	for (;;) {
		skip_ws(p);
		if (p->i >= p->n)
			return;
		unsigned char c = p->s[p->i];
		if (c == '#') {
			skip_comment(p);
			end_of_line(p, "comment");
		} else if (c == '\n') {
			p->i++;
		} else if (c == '\r' && peek_at(p, 1) == '\n') {
			p->i += 2;
		} else if (c == '[') {
			parse_header(p);
		} else {
			parse_keyval(p, p->cur);
			end_of_line(p, "value");
		}
	}
}

/* ------------------------------------------------------------ public API */

fl_toml_value *fl_toml_parse(const char *text, size_t len, const char *filename, fl_error **err)
{
	parser *p = fl_calloc(1, sizeof(*p));
	doc *d = fl_calloc(1, sizeof(*d));
	d->mem.next_cap = 16384;
	d->root.type = FL_TOML_TABLE;
	d->root.flags = T_DEFINED;
	d->root.line = d->root.col = 1;
	if (!filename)
		filename = "<input>";
	size_t fn = strlen(filename);
	char *file = arena_alloc(&d->mem, fn + 1);
	memcpy(file, filename, fn + 1);
	d->root.file = file;
	p->s = (const unsigned char *)(text ? text : "");
	p->n = text ? len : 0;
	p->file = d->root.file;
	p->d = d;
	if (p->n >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
		p->bom = p->i = 3;
	p->loc_off = p->loc_start = p->bom;
	p->loc_line = p->loc_col = 1;
	fl_buf_init(&p->scratch);
	fl_toml_value *root = &d->root;
	if (setjmp(p->fail) == 0) {
		parse_document(p);
	} else {
		if (err)
			*err = p->err;
		else
			fl_error_free(p->err);
		arena_free(&d->mem);
		free(d);
		root = NULL;
	}
	fl_buf_free(&p->scratch);
	free(p->keys);
	free(p);
	return root;
}

fl_toml_value *fl_toml_parse_file(const char *path, fl_error **err)
{
	char *data = NULL;
	size_t len = 0;
	if (fl_file_read(path, &data, &len) != 0) {
		if (err)
			*err = fl_error_at(path, 0, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	fl_toml_value *root = fl_toml_parse(data, len, path, err);
	free(data);
	return root;
}

void fl_toml_free(fl_toml_value *root)
{
	if (!root)
		return;
	doc *d = (doc *)root;
	arena_free(&d->mem);
	free(d);
}

fl_toml_type fl_toml_type_of(const fl_toml_value *v)
{
	return (fl_toml_type)v->type;
}

const char *fl_toml_type_name(fl_toml_type t)
{
	switch (t) {
	case FL_TOML_TABLE:
		return "table";
	case FL_TOML_ARRAY:
		return "array";
	case FL_TOML_STRING:
		return "string";
	case FL_TOML_INTEGER:
		return "integer";
	case FL_TOML_FLOAT:
		return "float";
	case FL_TOML_BOOL:
		return "boolean";
	case FL_TOML_DATETIME:
		return "offset date-time";
	case FL_TOML_DATETIME_LOCAL:
		return "local date-time";
	case FL_TOML_DATE_LOCAL:
		return "local date";
	case FL_TOML_TIME_LOCAL:
		return "local time";
	}
	return "value";
}

int fl_toml_line(const fl_toml_value *v)
{
	return v->line;
}

int fl_toml_col(const fl_toml_value *v)
{
	return v->col;
}

const char *fl_toml_filename(const fl_toml_value *v)
{
	return v->file;
}

size_t fl_toml_len(const fl_toml_value *v)
{
	if (!v)
		return 0;
	if (v->type == FL_TOML_TABLE)
		return v->u.tab.len;
	if (v->type == FL_TOML_ARRAY)
		return v->u.arr.len;
	return 0;
}

static const entry *entry_at(const fl_toml_value *t, size_t i)
{
	if (!t || t->type != FL_TOML_TABLE || i >= t->u.tab.len)
		return NULL;
	return &t->u.tab.e[i];
}

const fl_toml_value *fl_toml_get(const fl_toml_value *table, const char *key)
{
	if (!table || table->type != FL_TOML_TABLE || !key)
		return NULL;
	size_t n = strlen(key);
	const entry *e = table_find(table, key, n, hash_key(key, n));
	return e ? e->val : NULL;
}

const char *fl_toml_key_at(const fl_toml_value *table, size_t i)
{
	const entry *e = entry_at(table, i);
	return e ? e->key : NULL;
}

size_t fl_toml_key_len(const fl_toml_value *table, size_t i)
{
	const entry *e = entry_at(table, i);
	return e ? e->klen : 0;
}

int fl_toml_key_line(const fl_toml_value *table, size_t i)
{
	const entry *e = entry_at(table, i);
	return e ? e->line : 0;
}

int fl_toml_key_col(const fl_toml_value *table, size_t i)
{
	const entry *e = entry_at(table, i);
	return e ? e->col : 0;
}

const fl_toml_value *fl_toml_value_at(const fl_toml_value *table, size_t i)
{
	const entry *e = entry_at(table, i);
	return e ? e->val : NULL;
}

const fl_toml_value *fl_toml_at(const fl_toml_value *array, size_t i)
{
	if (!array || array->type != FL_TOML_ARRAY || i >= array->u.arr.len)
		return NULL;
	return array->u.arr.v[i];
}

const char *fl_toml_string(const fl_toml_value *v, size_t *len)
{
	if (v->type != FL_TOML_STRING) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = v->u.str.len;
	return v->u.str.s;
}

int64_t fl_toml_int(const fl_toml_value *v)
{
	return v->type == FL_TOML_INTEGER ? v->u.i : 0;
}

double fl_toml_float(const fl_toml_value *v)
{
	return v->type == FL_TOML_FLOAT ? v->u.f : 0.0;
}

bool fl_toml_bool(const fl_toml_value *v)
{
	return v->type == FL_TOML_BOOL ? v->u.b : false;
}

const fl_toml_datetime *fl_toml_datetime_of(const fl_toml_value *v)
{
	switch (v->type) {
	case FL_TOML_DATETIME:
	case FL_TOML_DATETIME_LOCAL:
	case FL_TOML_DATE_LOCAL:
	case FL_TOML_TIME_LOCAL:
		return &v->u.dt;
	default:
		return NULL;
	}
}

/* The lookup shared by the typed getters: 1 found with the right type, 0
 * absent, -1 wrong type (with *err). */
static int get_typed(const fl_toml_value *table, const char *key, fl_toml_type want,
                     const fl_toml_value **out, fl_error **err)
{
	const fl_toml_value *v = fl_toml_get(table, key);
	if (!v)
		return 0;
	if (v->type != want) {
		if (err) {
			const char *name = fl_toml_type_name(want);
			bool an = name[0] == 'a' || name[0] == 'i' || name[0] == 'o';
			*err = fl_error_at(v->file, v->line, v->col, "\"%s\" must be %s %s, not %s", key,
			                   an ? "an" : "a", name, fl_toml_type_phrase(v));
		}
		return -1;
	}
	*out = v;
	return 1;
}

int fl_toml_get_string(const fl_toml_value *table, const char *key, const char **out, fl_error **err)
{
	const fl_toml_value *v;
	int r = get_typed(table, key, FL_TOML_STRING, &v, err);
	if (r == 1)
		*out = v->u.str.s;
	return r;
}

int fl_toml_get_int(const fl_toml_value *table, const char *key, int64_t *out, fl_error **err)
{
	const fl_toml_value *v;
	int r = get_typed(table, key, FL_TOML_INTEGER, &v, err);
	if (r == 1)
		*out = v->u.i;
	return r;
}

int fl_toml_get_bool(const fl_toml_value *table, const char *key, bool *out, fl_error **err)
{
	const fl_toml_value *v;
	int r = get_typed(table, key, FL_TOML_BOOL, &v, err);
	if (r == 1)
		*out = v->u.b;
	return r;
}

int fl_toml_get_table(const fl_toml_value *table, const char *key, const fl_toml_value **out, fl_error **err)
{
	return get_typed(table, key, FL_TOML_TABLE, out, err);
}

int fl_toml_get_array(const fl_toml_value *table, const char *key, const fl_toml_value **out, fl_error **err)
{
	return get_typed(table, key, FL_TOML_ARRAY, out, err);
}
