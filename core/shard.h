/*
 * shard: which of a fleet's selected services one task of a distributed job
 * runs (`--shard I/N`), so that N tasks of a Cloud Run Job or a Kubernetes
 * Indexed Job share a fleet without a coordinator of our own.
 *
 * The assignment (fl_shard_assign) is a pure function of the services'
 * names and sizes (the bytes of their migration files) and N, so every task
 * computes the same one without talking to the others:
 *   - the services are taken largest first (ties: by name);
 *   - each goes to the shard that ranks it highest by a hash of (service
 *     name, shard number) (rendezvous hashing) among the shards whose load
 *     stays within total / N + the largest size once it is added; the least
 *     loaded shard always qualifies, so the bound always holds.
 * So no shard carries more than its share plus one service, and a service
 * keeps its shard when others come and go unless the bound pushes it off
 * its first choice (a new service moves few others, where a least-loaded
 * greedy reshuffles everything smaller than the newcomer).
 */
#ifndef FL_SHARD_H
#define FL_SHARD_H

#include <stddef.h>

#include "error.h"

#define FL_SHARD_MAX 10000

typedef struct {
	int index;        /* 0 .. count-1 */
	int count;        /* 0: not sharded (the whole selection) */
	const char *from; /* where it came from: "--shard", "CLOUD_RUN_TASK_INDEX", ... (static) */
} fl_shard;

/* Reads an environment variable (getenv; tests pass their own). */
typedef char *(*fl_shard_env_fn)(const char *name);

/*
 * The shard of this task: `arg` is --shard's value (NULL: not given):
 *   "I/N"      task I of N (0 <= I < N <= FL_SHARD_MAX, digits only);
 *   "auto"     I and N from Cloud Run Jobs' CLOUD_RUN_TASK_INDEX and
 *              CLOUD_RUN_TASK_COUNT;
 *   "auto/N"   I from CLOUD_RUN_TASK_INDEX or Kubernetes Indexed Jobs'
 *              JOB_COMPLETION_INDEX, N given (Kubernetes does not tell the
 *              pod the number of completions).
 * Without --shard: CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT both set
 * shard the run; JOB_COMPLETION_INDEX alone is an error (the count is
 * unknown: give --shard auto/N); neither: not sharded. Returns 0, or -1 with
 * *err (FL_EINPUT) saying what is wrong and what to write instead.
 */
int fl_shard_parse(const char *arg, fl_shard_env_fn env, fl_shard *out, fl_error **err);

/* A 64-bit FNV-1a hash of s, then of the shard number: the rendezvous rank. */
unsigned long long fl_shard_rank(const char *name, int shard);

/*
 * Assigns n services (names, sizes in bytes) to count shards (see above):
 * out[i] is service i's shard. Deterministic; independent of the order the
 * services are given in.
 */
void fl_shard_assign(const char *const *names, const size_t *sizes, size_t n, int count, int *out);

#endif
