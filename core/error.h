/*
 * error: the one error type of flotilla.
 *
 * Every function in core/ that can fail returns its failure as an fl_error
 * instead of printing it: cmd/ decides how and where to show it. An error
 * carries a message and, when the problem has a place, the file, line and
 * column (1-based; column counted in characters). Errors chain through
 * `next`, so a validator can return every problem it found at once.
 */
#ifndef FL_ERROR_H
#define FL_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* What kind of failure: decides the exit code (see design.md). */
typedef enum {
	FL_EINPUT = 2,  /* bad usage, manifest or migration file: nothing touched */
	FL_EDB = 1,     /* a migration, a connection or the server failed */
	FL_EDRIFT = 3,  /* validation or drift found a mismatch */
	FL_EINTR = 130, /* interrupted */
} fl_error_kind;

typedef struct fl_error {
	fl_error_kind kind;
	char *msg;  /* never NULL */
	char *file; /* NULL when the error has no place */
	int line;   /* 0 when unknown */
	int col;    /* 0 when unknown */
	struct fl_error *next;
} fl_error;

/* A new error without a place; kind FL_EINPUT unless changed by the caller. */
fl_error *fl_error_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A new error of a given kind, without a place (e.g. FL_EDB for a server failure). */
fl_error *fl_error_kind_new(fl_error_kind kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A new error at file:line:col (file may be NULL, line/col may be 0). */
fl_error *fl_error_at(const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
fl_error *fl_error_vat(const char *file, int line, int col, const char *fmt, va_list ap);
/* Frees the whole chain. NULL is fine. */
void fl_error_free(fl_error *err);
/* Appends `err` (and its chain) to the end of `*list`. */
void fl_error_append(fl_error **list, fl_error *err);
/* Number of errors in the chain. */
int fl_error_count(const fl_error *err);
/* "file:line:col: msg", "file: msg" or "msg"; caller frees. */
char *fl_error_format(const fl_error *err);
/* Prefixes the message with "prefix: " (e.g. the service name). */
void fl_error_prefix(fl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that never returns NULL: flotilla aborts on out-of-memory. */
void *fl_malloc(size_t n);
void *fl_calloc(size_t n, size_t size);
void *fl_realloc(void *p, size_t n);
char *fl_strdup(const char *s);
char *fl_strndup(const char *s, size_t n);
char *fl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *fl_vasprintf(const char *fmt, va_list ap);

/* A growable byte buffer, always NUL-terminated. */
typedef struct {
	char *data;
	size_t len;
	size_t cap;
} fl_buf;

void fl_buf_init(fl_buf *b);
void fl_buf_add(fl_buf *b, const void *data, size_t len);
void fl_buf_puts(fl_buf *b, const char *s);
void fl_buf_putc(fl_buf *b, char c);
void fl_buf_printf(fl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the data (caller frees) and leaves b empty. */
char *fl_buf_detach(fl_buf *b);
void fl_buf_free(fl_buf *b);

#endif
