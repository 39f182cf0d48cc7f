/*
 * libFuzzer target for sqlsplit: any bytes must split or fail cleanly, and
 * what comes back must hold together. Checked for every input: statements
 * are in order, inside the text and start on a token; their places agree
 * with fl_sql_position; an error has a place inside the text; character
 * positions map back to the bytes they came from; and the transaction check
 * reads each statement without running off its end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "sqlsplit.h"

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "fuzz_sqlsplit: %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so ASan catches any read past `size` */
	char *sql = malloc(size ? size : 1);
	CHECK(sql);
	if (size)
		memcpy(sql, data, size);
	fl_stmt *st = NULL;
	size_t n = 0;
	fl_error *err = NULL;
	int r = fl_sqlsplit(sql, size, "fuzz.sql", &st, &n, &err);
	if (r != 0) {
		CHECK(r == -1 && err && err->msg && !st && n == 0);
		CHECK(err->line >= 1 && err->col >= 1);
		int last_line, last_col;
		fl_sql_position(sql, size, size, &last_line, &last_col);
		CHECK(err->line < last_line || (err->line == last_line && err->col <= last_col));
		fl_error_free(err);
		free(sql);
		return 0;
	}
	CHECK(st && !err);
	size_t prev_end = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK(st[i].start < st[i].end && st[i].end <= size);
		CHECK(i == 0 || st[i].start > prev_end);
		CHECK(!is_space((unsigned char)sql[st[i].start]) &&
		      !is_space((unsigned char)sql[st[i].end - 1]));
		prev_end = st[i].end;
		int line, col;
		fl_sql_position(sql, size, st[i].start, &line, &col);
		CHECK(line == st[i].line && col == st[i].col);
		/* the server counts characters from 1 within the statement; a sample keeps this linear */
		const char *s = sql + st[i].start;
		size_t len = st[i].end - st[i].start, step = len / 8 + 1;
		int charpos = 0;
		for (size_t b = 0; b < len; b++) {
			if (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80)
				continue;
			charpos++;
			if (b % step == 0 || b + 4 >= len)
				CHECK(fl_sql_char_to_byte(s, len, charpos) == b);
		}
		CHECK(fl_sql_char_to_byte(s, len, charpos + 1) == len);
		(void)fl_sql_refuses_transaction(s, len);
	}
	free(st);
	free(sql);
	return 0;
}
