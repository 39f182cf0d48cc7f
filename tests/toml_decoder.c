/*
 * toml_decoder: the toml-test decoder interface over core/toml.
 *
 *   toml_decoder < doc.toml         tagged JSON on stdout, exit 0; or the
 *                                   error on stderr, exit 1
 *   toml_decoder --bench FILE N     parse FILE N times; print the mean and
 *                                   fastest wall-clock ms and the CPU ms per
 *                                   parse (bench/gen-big-toml makes a FILE)
 *
 * See shared/toml-test/README.md for the tagged JSON format.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "toml.h"

static json_t *tagged(const char *type, const char *value)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "value", json_string(value));
	return o;
}

static void format_datetime(const fl_toml_value *v, char *buf, size_t size)
{
	const fl_toml_datetime *dt = fl_toml_datetime_of(v);
	fl_toml_type t = fl_toml_type_of(v);
	size_t n = 0;
	if (t != FL_TOML_TIME_LOCAL)
		n += (size_t)snprintf(buf + n, size - n, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
	if (t == FL_TOML_DATE_LOCAL)
		return;
	if (t != FL_TOML_TIME_LOCAL)
		buf[n++] = 'T';
	n += (size_t)snprintf(buf + n, size - n, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
	if (dt->frac_digits > 0) {
		/* Only nanoseconds are kept; print as many digits as were written. */
		int digits = dt->frac_digits > 9 ? 9 : dt->frac_digits;
		int frac = dt->nanosecond;
		for (int k = digits; k < 9; k++)
			frac /= 10;
		n += (size_t)snprintf(buf + n, size - n, ".%0*d", digits, frac);
	}
	if (t == FL_TOML_DATETIME) {
		int off = dt->offset_minutes;
		if (off == 0)
			snprintf(buf + n, size - n, "Z");
		else
			snprintf(buf + n, size - n, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60,
			         abs(off) % 60);
	}
}

static json_t *to_json(const fl_toml_value *v)
{
	char buf[64];
	switch (fl_toml_type_of(v)) {
	case FL_TOML_TABLE: {
		json_t *o = json_object();
		for (size_t i = 0; i < fl_toml_len(v); i++)
			json_object_setn_new(o, fl_toml_key_at(v, i), fl_toml_key_len(v, i),
			                     to_json(fl_toml_value_at(v, i)));
		return o;
	}
	case FL_TOML_ARRAY: {
		json_t *a = json_array();
		for (size_t i = 0; i < fl_toml_len(v); i++)
			json_array_append_new(a, to_json(fl_toml_at(v, i)));
		return a;
	}
	case FL_TOML_STRING: {
		size_t len;
		const char *s = fl_toml_string(v, &len);
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("string"));
		json_object_set_new(o, "value", json_stringn(s, len));
		return o;
	}
	case FL_TOML_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)fl_toml_int(v));
		return tagged("integer", buf);
	case FL_TOML_FLOAT: {
		double f = fl_toml_float(v);
		if (isnan(f))
			snprintf(buf, sizeof(buf), "nan");
		else if (isinf(f))
			snprintf(buf, sizeof(buf), "%s", f < 0 ? "-inf" : "inf");
		else
			snprintf(buf, sizeof(buf), "%.17g", f);
		return tagged("float", buf);
	}
	case FL_TOML_BOOL:
		return tagged("bool", fl_toml_bool(v) ? "true" : "false");
	case FL_TOML_DATETIME:
		format_datetime(v, buf, sizeof(buf));
		return tagged("datetime", buf);
	case FL_TOML_DATETIME_LOCAL:
		format_datetime(v, buf, sizeof(buf));
		return tagged("datetime-local", buf);
	case FL_TOML_DATE_LOCAL:
		format_datetime(v, buf, sizeof(buf));
		return tagged("date-local", buf);
	case FL_TOML_TIME_LOCAL:
		format_datetime(v, buf, sizeof(buf));
		return tagged("time-local", buf);
	}
	return json_null();
}

static int read_all(FILE *f, fl_buf *b)
{
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fl_buf_add(b, chunk, n);
	return ferror(f) ? -1 : 0;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int bench(const char *path, int times)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	fl_buf b;
	fl_buf_init(&b);
	int r = read_all(f, &b);
	fclose(f);
	if (r < 0 || times < 1) {
		fprintf(stderr, "%s: cannot read, or N < 1\n", path);
		fl_buf_free(&b);
		return 1;
	}
	/* Wall time is what a user waits for, but on a busy machine it also
	 * counts other processes: the fastest run and CPU time are steadier. */
	struct timespec c0, c1;
	double total = 0, best = 0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	for (int i = 0; i < times; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		fl_error *err = NULL;
		fl_toml_value *root = fl_toml_parse(b.data ? b.data : "", b.len, path, &err);
		if (!root) {
			char *m = fl_error_format(err);
			fprintf(stderr, "%s\n", m);
			free(m);
			fl_error_free(err);
			fl_buf_free(&b);
			return 1;
		}
		fl_toml_free(root);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = ms_between(&t0, &t1);
		total += ms;
		if (i == 0 || ms < best)
			best = ms;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	printf("%s: %zu bytes, %d parses: mean %.3f ms, fastest %.3f ms, CPU %.3f ms per parse\n", path,
	       b.len, times, total / times, best, ms_between(&c0, &c1) / times);
	fl_buf_free(&b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--bench") == 0)
		return bench(argv[2], atoi(argv[3]));
	if (argc != 1) {
		fprintf(stderr, "usage: %s < FILE.toml\n       %s --bench FILE N\n", argv[0], argv[0]);
		return 2;
	}
	fl_buf in;
	fl_buf_init(&in);
	if (read_all(stdin, &in) < 0) {
		perror("stdin");
		return 1;
	}
	fl_error *err = NULL;
	fl_toml_value *root = fl_toml_parse(in.data ? in.data : "", in.len, "<stdin>", &err);
	fl_buf_free(&in);
	if (!root) {
		char *m = fl_error_format(err);
		fprintf(stderr, "%s\n", m);
		free(m);
		fl_error_free(err);
		return 1;
	}
	json_t *j = to_json(root);
	fl_toml_free(root);
	char *out = json_dumps(j, JSON_INDENT(1));
	json_decref(j);
	if (!out) {
		fprintf(stderr, "cannot encode the JSON output\n");
		return 1;
	}
	puts(out);
	free(out);
	return 0;
}
