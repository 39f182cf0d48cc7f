/*
 * reportmerge: `flotilla report merge A.json B.json ...`, the fleet's one
 * document from the documents the shards of a `--shard I/N` run wrote
 * (fl_fleet_json, README "JSON report" and "Shards").
 *
 * Every document must be a shard's (its "shard" says {index, count}), all of
 * one run (the same command, project, environment, git commit and
 * selection of services), one per shard, every shard present. Each service
 * is taken once, from the document of the shard that ran it (its "shard");
 * the run's result and exit code are computed again from the merged
 * outcomes and each document's run-level state (invalid, failed,
 * interrupted) with outcome.c's rules (fl_run_outcome_of), never from the
 * documents' exit codes.
 */
#ifndef FL_REPORTMERGE_H
#define FL_REPORTMERGE_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/*
 * Reads and merges the documents at paths[0..n). Returns the merged
 * document (its "exit_code" is the run's), or NULL with *err (FL_EINPUT) at
 * the file that is wrong: unreadable, not JSON, not a shard's document,
 * another run's, a shard given twice, or (at no file) a shard missing.
 */
json_t *fl_report_merge(const char *const *paths, size_t n, fl_error **err);

/* The document of a merge that could not be made: result "invalid", exit_code 2, the error. */
json_t *fl_report_merge_error_json(const fl_error *err);

#endif
