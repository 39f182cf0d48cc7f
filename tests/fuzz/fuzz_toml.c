/*
 * libFuzzer target for core/toml: any bytes must parse or fail cleanly,
 * without crashes, leaks or undefined behaviour; a tree that parses must be
 * consistent (every key finds its own value, every place is real).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parser refuses nesting deeper than 256, so recursion is bounded. */
static void check(const fl_toml_value *v)
{
	if (fl_toml_line(v) < 1 || fl_toml_col(v) < 1)
		__builtin_trap();
	switch (fl_toml_type_of(v)) {
	case FL_TOML_TABLE:
		for (size_t i = 0; i < fl_toml_len(v); i++) {
			const char *key = fl_toml_key_at(v, i);
			const fl_toml_value *val = fl_toml_value_at(v, i);
			/* Keys holding NUL cannot be looked up through a C string. */
			if (fl_toml_key_len(v, i) == strlen(key) && fl_toml_get(v, key) != val)
				__builtin_trap();
			if (fl_toml_key_line(v, i) < 1 || fl_toml_key_col(v, i) < 1)
				__builtin_trap();
			check(val);
		}
		break;
	case FL_TOML_ARRAY:
		for (size_t i = 0; i < fl_toml_len(v); i++)
			check(fl_toml_at(v, i));
		break;
	case FL_TOML_STRING: {
		size_t len;
		const char *s = fl_toml_string(v, &len);
		if (s[len] != '\0')
			__builtin_trap();
		break;
	}
	case FL_TOML_DATETIME:
	case FL_TOML_DATETIME_LOCAL:
	case FL_TOML_DATE_LOCAL:
	case FL_TOML_TIME_LOCAL:
		if (fl_toml_datetime_of(v)->nanosecond > 999999999)
			__builtin_trap();
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse((const char *)data, size, "fuzz.toml", &err);
	if (root) {
		check(root);
		fl_toml_free(root);
	} else {
		if (!err || err->line < 1 || err->col < 1)
			__builtin_trap(); /* every failure has a place */
		fl_error_free(err);
	}
	return 0;
}
