/* shard: see shard.h. */
#include "shard.h"

#include <stdlib.h>
#include <string.h>

/* digits only, no sign, no spaces; at most FL_SHARD_MAX */
static int number(const char *s, size_t len, int *out)
{
	if (len == 0 || len > 5)
		return -1;
	long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > FL_SHARD_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

static fl_error *bad_env(const char *var, const char *val)
{
	return fl_error_new("%s is \"%s\": expected a number from 0 to %d", var, val, FL_SHARD_MAX);
}

int fl_shard_parse(const char *arg, fl_shard_env_fn env, fl_shard *out, fl_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *cr_index = env("CLOUD_RUN_TASK_INDEX"), *cr_count = env("CLOUD_RUN_TASK_COUNT");
	const char *k8s_index = env("JOB_COMPLETION_INDEX");
	int index = 0, count = 0;
	if (!arg || strcmp(arg, "auto") == 0) {
		if (cr_index && cr_count) {
			if (number(cr_index, strlen(cr_index), &index) < 0) {
				*err = bad_env("CLOUD_RUN_TASK_INDEX", cr_index);
				return -1;
			}
			if (number(cr_count, strlen(cr_count), &count) < 0 || count == 0) {
				*err = bad_env("CLOUD_RUN_TASK_COUNT", cr_count);
				return -1;
			}
			out->from = "CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT";
		} else if (k8s_index) {
			*err =
			    fl_error_new("JOB_COMPLETION_INDEX is set but the number of shards is not known: "
			                 "give it with --shard auto/N (N: the Job's completions)");
			return -1;
		} else if (arg) {
			*err = fl_error_new(
			    "--shard auto: CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT are not "
			    "set; write --shard I/N (e.g. --shard 0/3)");
			return -1;
		} else {
			return 0; /* not sharded */
		}
	} else {
		const char *slash = strchr(arg, '/');
		if (!slash || number(slash + 1, strlen(slash + 1), &count) < 0 || count == 0) {
			*err =
			    fl_error_new("--shard %s: expected I/N with 0 <= I < N <= %d (e.g. --shard 0/3), "
			                 "or auto/N",
			                 arg, FL_SHARD_MAX);
			return -1;
		}
		size_t ilen = (size_t)(slash - arg);
		if (ilen == 4 && strncmp(arg, "auto", 4) == 0) {
			const char *var = cr_index ? "CLOUD_RUN_TASK_INDEX" : "JOB_COMPLETION_INDEX";
			const char *val = cr_index ? cr_index : k8s_index;
			if (!val) {
				*err = fl_error_new(
				    "--shard %s: neither JOB_COMPLETION_INDEX nor CLOUD_RUN_TASK_INDEX "
				    "is set; write --shard I/N",
				    arg);
				return -1;
			}
			if (number(val, strlen(val), &index) < 0) {
				*err = bad_env(var, val);
				return -1;
			}
			out->from = cr_index ? "CLOUD_RUN_TASK_INDEX" : "JOB_COMPLETION_INDEX";
		} else if (number(arg, ilen, &index) < 0) {
			*err =
			    fl_error_new("--shard %s: expected I/N with 0 <= I < N <= %d (e.g. --shard 0/3), "
			                 "or auto/N",
			                 arg, FL_SHARD_MAX);
			return -1;
		} else {
			out->from = "--shard";
		}
	}
	if (index >= count) {
		*err = fl_error_new("shard %d/%d (from %s): the index must be below the count (0 to %d)",
		                    index, count, out->from, count - 1);
		return -1;
	}
	out->index = index;
	out->count = count;
	return 0;
}

unsigned long long fl_shard_rank(const char *name, int shard)
{
	unsigned long long h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	for (int k = 0; k < 4; k++)
		h = (h ^ (unsigned char)((unsigned)shard >> (8 * k))) * 1099511628211ULL;
	/* FNV's low bits mix poorly: a final avalanche (splitmix64's) spreads them */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

struct item {
	const char *name;
	size_t size, i;
};

static int by_size(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->name, y->name);
}

void fl_shard_assign(const char *const *names, const size_t *sizes, size_t n, int count, int *out)
{
	if (count <= 1) {
		for (size_t i = 0; i < n; i++)
			out[i] = 0;
		return;
	}
	struct item *it = fl_calloc(n ? n : 1, sizeof(*it));
	size_t total = 0, largest = 0;
	for (size_t i = 0; i < n; i++) {
		/* a service weighs at least 1: empty folders still spread */
		it[i] = (struct item){names[i], sizes[i] + 1, i};
		total += it[i].size;
		largest = it[i].size > largest ? it[i].size : largest;
	}
	qsort(it, n, sizeof(*it), by_size);
	size_t cap = total / (size_t)count + largest;
	size_t *load = fl_calloc((size_t)count, sizeof(size_t));
	for (size_t k = 0; k < n; k++) {
		int best = -1, least = 0;
		unsigned long long best_rank = 0;
		for (int s = 0; s < count; s++) {
			if (load[s] < load[least])
				least = s;
			if (load[s] + it[k].size > cap)
				continue;
			unsigned long long r = fl_shard_rank(it[k].name, s);
			if (best < 0 || r > best_rank) {
				best = s;
				best_rank = r;
			}
		}
		if (best < 0) /* cannot happen (the least loaded is below total / count); kept as a guard */
			best = least;
		load[best] += it[k].size;
		out[it[k].i] = best;
	}
	free(load);
	free(it);
}
