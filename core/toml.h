/*
 * toml: TOML 1.0.0 text -> a tree of values.
 *
 * The whole of TOML 1.0.0 as judged by the official toml-test suite. The
 * tree keeps document order (tables iterate in the order their keys were
 * first defined) and gives every key and every value its 1-based line and
 * column, the column counted in characters (UTF-8 code points), not bytes.
 * A parse stops at the first problem and returns one error at its place.
 * One call, fl_toml_free(), frees a whole tree; every pointer handed out by
 * the accessors lives as long as the tree.
 */
#ifndef FL_TOML_H
#define FL_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
	FL_TOML_TABLE,
	FL_TOML_ARRAY,
	FL_TOML_STRING,
	FL_TOML_INTEGER,
	FL_TOML_FLOAT,
	FL_TOML_BOOL,
	FL_TOML_DATETIME,       /* offset date-time */
	FL_TOML_DATETIME_LOCAL, /* local date-time */
	FL_TOML_DATE_LOCAL,
	FL_TOML_TIME_LOCAL,
} fl_toml_type;

typedef struct {
	int year, month, day;     /* unused for a local time */
	int hour, minute, second; /* unused for a local date */
	int nanosecond;           /* fraction, truncated to nanoseconds */
	int frac_digits;          /* digits written after '.', 0 if none */
	int offset_minutes;       /* only for FL_TOML_DATETIME; Z is 0 */
} fl_toml_datetime;

typedef struct fl_toml_value fl_toml_value;

/*
 * Parses `len` bytes of `text` (need not be NUL-terminated). `filename` is
 * used in error messages and kept in the tree (may be NULL: "<input>").
 * Returns the root table, or NULL with *err set:
 *   "manifest.toml:12:9: expected '=' after key \"owner\""
 */
fl_toml_value *fl_toml_parse(const char *text, size_t len, const char *filename, fl_error **err);
/* Reads and parses a file; a read failure is an error naming the file. */
fl_toml_value *fl_toml_parse_file(const char *path, fl_error **err);
/* Frees the tree from its root. NULL is fine. */
void fl_toml_free(fl_toml_value *root);

fl_toml_type fl_toml_type_of(const fl_toml_value *v);
/* "table", "array", "string", "integer", "float", "boolean", "offset date-time",
 * "local date-time", "local date", "local time". */
const char *fl_toml_type_name(fl_toml_type t);
/* "an integer", "an array of tables": the value's type with its article, for messages. */
const char *fl_toml_type_phrase(const fl_toml_value *v);
/* Where the value starts (for a table: its header, or the first key that made it). */
int fl_toml_line(const fl_toml_value *v);
int fl_toml_col(const fl_toml_value *v);
/* The file name given to the parser ("<input>" when none). */
const char *fl_toml_filename(const fl_toml_value *v);

/* Tables and arrays: number of entries / elements (0 for scalars). */
size_t fl_toml_len(const fl_toml_value *v);
/* Table lookup by key (exact bytes); NULL when absent or v is not a table. */
const fl_toml_value *fl_toml_get(const fl_toml_value *table, const char *key);
/* Table entry i in document order: its key, the key's place, the value. */
const char *fl_toml_key_at(const fl_toml_value *table, size_t i);
/* Byte length of key i: a quoted key may hold NUL ("\u0000" = 1). */
size_t fl_toml_key_len(const fl_toml_value *table, size_t i);
int fl_toml_key_line(const fl_toml_value *table, size_t i);
int fl_toml_key_col(const fl_toml_value *table, size_t i);
const fl_toml_value *fl_toml_value_at(const fl_toml_value *table, size_t i);
/* Array element i; NULL when out of range. */
const fl_toml_value *fl_toml_at(const fl_toml_value *array, size_t i);

/* Scalar accessors; the caller checks the type first. Strings may hold NUL:
 * `len` (may be NULL) receives the byte length; the data is NUL-terminated. */
const char *fl_toml_string(const fl_toml_value *v, size_t *len);
int64_t fl_toml_int(const fl_toml_value *v);
double fl_toml_float(const fl_toml_value *v);
bool fl_toml_bool(const fl_toml_value *v);
const fl_toml_datetime *fl_toml_datetime_of(const fl_toml_value *v);

/*
 * Typed getters for the manifest code. Each returns 1 when the key is there
 * with the right type (*out set), 0 when it is absent (*out untouched, no
 * error), -1 when it is there with another type: *err gets
 *   "file:line:col: \"port\" must be an integer, not a string"
 * at the value's place.
 */
int fl_toml_get_string(const fl_toml_value *table, const char *key, const char **out, fl_error **err);
int fl_toml_get_int(const fl_toml_value *table, const char *key, int64_t *out, fl_error **err);
int fl_toml_get_bool(const fl_toml_value *table, const char *key, bool *out, fl_error **err);
int fl_toml_get_table(const fl_toml_value *table, const char *key, const fl_toml_value **out, fl_error **err);
int fl_toml_get_array(const fl_toml_value *table, const char *key, const fl_toml_value **out, fl_error **err);

#endif
