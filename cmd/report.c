/*
 * report: `flotilla report merge FILE...`, the fleet's document from the
 * documents of the shards of a --shard run (core/reportmerge). Prints the
 * merged document and exits with its exit code; a document that does not
 * fit (another run's, a shard twice, a shard missing) is exit 2, with an
 * "invalid" document on stdout and the error on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "reportmerge.h"

static void print_doc(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	free(s);
}

int cmd_report(int argc, char **argv)
{
	struct fl_none_args a = {0};
	int first, rc = fl_cli_parse(argc, argv, &a, &first);
	if (rc != FL_CLI_GO)
		return rc;
	if (first >= argc || strcmp(argv[first], "merge") != 0)
		return fl_cli_usage(argc, argv, "report what? 'flotilla report merge A.json B.json ...'");
	fl_error *err = NULL;
	json_t *doc =
	    fl_report_merge((const char *const *)argv + first + 1, (size_t)(argc - first - 1), &err);
	if (!doc) {
		json_t *bad = fl_report_merge_error_json(err);
		print_doc(bad);
		json_decref(bad);
		for (const fl_error *e = err; e; e = e->next) {
			char *m = fl_error_format(e);
			fprintf(stderr, "%s%s\n", e->file ? "" : "flotilla: ", m);
			free(m);
		}
		fl_error_free(err);
		return FL_EXIT_USAGE;
	}
	print_doc(doc);
	rc = (int)json_integer_value(json_object_get(doc, "exit_code"));
	json_decref(doc);
	return rc;
}
