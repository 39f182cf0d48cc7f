#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *fl_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *fl_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

void *fl_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *fl_strdup(const char *s)
{
	return fl_strndup(s, strlen(s));
}

char *fl_strndup(const char *s, size_t n)
{
	char *p = fl_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *fl_vasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort();
	char *p = fl_malloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *fl_asprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = fl_vasprintf(fmt, ap);
	va_end(ap);
	return p;
}

fl_error *fl_error_vat(const char *file, int line, int col, const char *fmt, va_list ap)
{
	fl_error *e = fl_calloc(1, sizeof(*e));
	e->kind = FL_EINPUT;
	e->msg = fl_vasprintf(fmt, ap);
	e->file = file ? fl_strdup(file) : NULL;
	e->line = line;
	e->col = col;
	return e;
}

fl_error *fl_error_at(const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fl_error *e = fl_error_vat(file, line, col, fmt, ap);
	va_end(ap);
	return e;
}

fl_error *fl_error_new(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fl_error *e = fl_error_vat(NULL, 0, 0, fmt, ap);
	va_end(ap);
	return e;
}

fl_error *fl_error_kind_new(fl_error_kind kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fl_error *e = fl_error_vat(NULL, 0, 0, fmt, ap);
	va_end(ap);
	e->kind = kind;
	return e;
}

void fl_error_free(fl_error *err)
{
	while (err) {
		fl_error *next = err->next;
		free(err->msg);
		free(err->file);
		free(err);
		err = next;
	}
}

void fl_error_append(fl_error **list, fl_error *err)
{
	while (*list)
		list = &(*list)->next;
	*list = err;
}

int fl_error_count(const fl_error *err)
{
	int n = 0;
	for (; err; err = err->next)
		n++;
	return n;
}

char *fl_error_format(const fl_error *err)
{
	if (!err->file)
		return fl_strdup(err->msg);
	if (err->line <= 0)
		return fl_asprintf("%s: %s", err->file, err->msg);
	if (err->col <= 0)
		return fl_asprintf("%s:%d: %s", err->file, err->line, err->msg);
	return fl_asprintf("%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
}

void fl_error_prefix(fl_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = fl_vasprintf(fmt, ap);
	va_end(ap);
	char *m = fl_asprintf("%s: %s", p, err->msg);
	free(p);
	free(err->msg);
	err->msg = m;
}

void fl_buf_init(fl_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

static void buf_grow(fl_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = fl_realloc(b->data, cap);
	b->cap = cap;
}

void fl_buf_add(fl_buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void fl_buf_puts(fl_buf *b, const char *s)
{
	fl_buf_add(b, s, strlen(s));
}

void fl_buf_putc(fl_buf *b, char c)
{
	fl_buf_add(b, &c, 1);
}

void fl_buf_printf(fl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = fl_vasprintf(fmt, ap);
	va_end(ap);
	fl_buf_puts(b, p);
	free(p);
}

char *fl_buf_detach(fl_buf *b)
{
	char *p = b->data ? b->data : fl_strdup("");
	fl_buf_init(b);
	return p;
}

void fl_buf_free(fl_buf *b)
{
	free(b->data);
	fl_buf_init(b);
}
