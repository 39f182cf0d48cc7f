/* reportmerge: see reportmerge.h. */
#include "reportmerge.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"

struct doc {
	const char *path;
	json_t *j;
	int index;
};

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool same_str(json_t *a, json_t *b, const char *key)
{
	json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
	if (json_is_null(x) || !x)
		return json_is_null(y) || !y;
	return json_is_string(y) && strcmp(json_string_value(x), json_string_value(y)) == 0;
}

static bool outcome_named(const char *name, fl_outcome *out)
{
	for (int o = FL_OUTCOME_OK; o <= FL_OUTCOME_NOT_RUN; o++)
		if (name && strcmp(fl_outcome_name((fl_outcome)o), name) == 0) {
			*out = (fl_outcome)o;
			return true;
		}
	return false;
}

static json_t *named_in(json_t *list, const char *name)
{
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *n = str(json_array_get(list, i), "service");
		if (n && strcmp(n, name) == 0)
			return json_array_get(list, i);
	}
	return NULL;
}

static json_t *service_named(json_t *doc, const char *name)
{
	return named_in(json_object_get(doc, "services"), name);
}

/* The names of a document's services, sorted and joined: two runs of one selection list the same. */
static char *selection(json_t *doc)
{
	json_t *sv = json_object_get(doc, "services");
	size_t n = json_array_size(sv);
	const char **names = fl_calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		names[i] = str(json_array_get(sv, i), "service");
	for (size_t i = 1; i < n; i++) /* insertion sort: a fleet's list is short next to the files */
		for (size_t k = i; k > 0 && names[k] && names[k - 1] && strcmp(names[k - 1], names[k]) > 0;
		     k--) {
			const char *t = names[k];
			names[k] = names[k - 1];
			names[k - 1] = t;
		}
	fl_buf b;
	fl_buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		const char *s = names[i] ? names[i] : "";
		fl_buf_add(&b, s, strlen(s));
		fl_buf_add(&b, "\n", 1);
	}
	fl_buf_add(&b, "", 1);
	free(names);
	return b.data;
}

/* Loads one document and checks it is a shard's; *count is the first document's count (0: none yet). */
static fl_error *load(struct doc *d, int *count)
{
	json_error_t je;
	d->j = json_load_file(d->path, 0, &je);
	if (!d->j)
		return fl_error_at(d->path, je.line > 0 ? je.line : 0, je.column > 0 ? je.column : 0,
		                   "not a JSON document: %s", je.text);
	if (!json_is_object(d->j) || !str(d->j, "command") ||
	    !json_is_array(json_object_get(d->j, "services")))
		return fl_error_at(
		    d->path, 0, 0,
		    "not a flotilla fleet document (no \"command\" and \"services\"): give the "
		    "files `flotilla ... --json` wrote");
	json_t *sh = json_object_get(d->j, "shard");
	json_t *ji = json_object_get(sh, "index"), *jc = json_object_get(sh, "count");
	if (!json_is_integer(ji) || !json_is_integer(jc) || json_integer_value(jc) < 1 ||
	    json_integer_value(ji) < 0 || json_integer_value(ji) >= json_integer_value(jc))
		return fl_error_at(d->path, 0, 0,
		                   "not a shard's document (\"shard\" is not {\"index\": I, \"count\": N}): "
		                   "merge the documents of a run with --shard I/N");
	d->index = (int)json_integer_value(ji);
	int c = (int)json_integer_value(jc);
	if (*count && c != *count)
		return fl_error_at(d->path, 0, 0,
		                   "a run of %d shards, the first document's has %d: another run", c, *count);
	*count = c;
	return NULL;
}

json_t *fl_report_merge(const char *const *paths, size_t n, fl_error **err)
{
	*err = NULL;
	if (n == 0) {
		*err = fl_error_new(
		    "report merge needs the shards' documents: flotilla report merge A.json B.json ...");
		return NULL;
	}
	struct doc *docs = fl_calloc(n, sizeof(*docs));
	int count = 0;
	json_t *out = NULL;
	char *sel0 = NULL;
	struct doc **by_index = NULL;
	for (size_t i = 0; i < n && !*err; i++) {
		docs[i].path = paths[i];
		*err = load(&docs[i], &count);
	}
	if (*err)
		goto done;
	/* one run: the first document is the reference */
	static const char *const RUN_KEYS[] = {"command", "project", "environment", "git_commit"};
	sel0 = selection(docs[0].j);
	for (size_t i = 1; i < n && !*err; i++) {
		for (size_t k = 0; k < sizeof(RUN_KEYS) / sizeof(RUN_KEYS[0]) && !*err; k++)
			if (!same_str(docs[0].j, docs[i].j, RUN_KEYS[k])) {
				const char *a = str(docs[i].j, RUN_KEYS[k]), *b = str(docs[0].j, RUN_KEYS[k]);
				*err = fl_error_at(docs[i].path, 0, 0,
				                   "a document of another run: its %s is %s, %s's is %s",
				                   RUN_KEYS[k], a ? a : "null", docs[0].path, b ? b : "null");
			}
		if (*err)
			break;
		char *sel = selection(docs[i].j);
		/* a run that stopped before reading the manifest lists no services: nothing to compare */
		if (*sel && *sel0 && strcmp(sel, sel0) != 0)
			*err = fl_error_at(docs[i].path, 0, 0,
			                   "a document of another run: it lists other services than %s",
			                   docs[0].path);
		free(sel);
	}
	if (*err)
		goto done;
	by_index = fl_calloc((size_t)count, sizeof(*by_index));
	for (size_t i = 0; i < n && !*err; i++) {
		struct doc **slot = &by_index[docs[i].index];
		if (*slot)
			*err = fl_error_at(docs[i].path, 0, 0,
			                   "shard %d/%d again: %s is that shard's document already",
			                   docs[i].index, count, (*slot)->path);
		else
			*slot = &docs[i];
	}
	for (int k = 0; k < count && !*err; k++)
		if (!by_index[k])
			*err = fl_error_new(
			    "shard %d/%d is missing: %zu of %d documents given; every shard's document "
			    "is needed (a shard that did not run leaves its services unaccounted for)",
			    k, count, n, count);
	if (*err)
		goto done;

	/* the header: shard 0's, with what the shards did together */
	json_t *first = by_index[0]->j;
	out = json_object();
	json_object_set(out, "run_id", json_object_get(first, "run_id"));
	json_object_set_new(out, "command", json_string(str(first, "command")));
	static const char *const COPY[] = {"manifest", "project", "environment", "git_commit"};
	for (size_t k = 0; k < sizeof(COPY) / sizeof(COPY[0]); k++) {
		json_t *v = json_object_get(first, COPY[k]);
		json_object_set(out, COPY[k], v ? v : json_null());
	}
	bool dirty = false, dirty_known = false, interrupted = false, touched = false, input_error = false,
	     failed = false;
	json_int_t wall = 0;
	json_t *errors = json_array(), *warnings = json_array(), *shards = json_array();
	for (int k = 0; k < count; k++) {
		json_t *d = by_index[k]->j;
		json_t *gd = json_object_get(d, "git_dirty");
		if (json_is_boolean(gd)) {
			dirty_known = true;
			dirty |= json_is_true(gd);
		}
		interrupted |= json_is_true(json_object_get(d, "interrupted"));
		touched |= json_is_true(json_object_get(d, "touched"));
		const char *r = str(d, "result");
		input_error |= r && strcmp(r, "invalid") == 0;
		failed |= r && strcmp(r, "failed") == 0;
		json_int_t w = json_integer_value(json_object_get(d, "wall_ms"));
		wall = w > wall ? w : wall;
		json_t *derr = json_object_get(d, "errors"), *dwarn = json_object_get(d, "warnings");
		for (size_t i = 0; i < json_array_size(derr); i++)
			json_array_append(errors, json_array_get(derr, i));
		for (size_t i = 0; i < json_array_size(dwarn); i++) {
			/* every shard reads the same manifest: its warnings once */
			json_t *e = json_array_get(dwarn, i);
			bool seen = false;
			for (size_t x = 0; x < json_array_size(warnings) && !seen; x++)
				seen = json_equal(json_array_get(warnings, x), e);
			if (!seen)
				json_array_append(warnings, e);
		}
		json_array_append_new(
		    shards,
		    json_pack(
		        "{s:i, s:s, s:O, s:O, s:O}", "index", k, "file", by_index[k]->path, "run_id",
		        json_object_get(d, "run_id") ? json_object_get(d, "run_id") : json_null(), "result",
		        json_object_get(d, "result") ? json_object_get(d, "result") : json_null(),
		        "exit_code",
		        json_object_get(d, "exit_code") ? json_object_get(d, "exit_code") : json_null()));
	}

	/* every service once, from the shard that ran it, in the order the documents list them */
	json_t *services = json_array();
	size_t cap = 16, nouts = 0;
	fl_outcome *outs = fl_calloc(cap, sizeof(*outs));
	for (int k = 0; k < count && !*err; k++) {
		json_t *list = json_object_get(by_index[k]->j, "services");
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *s = json_array_get(list, i);
			const char *name = str(s, "service");
			if (!name || named_in(services, name))
				continue;
			json_t *owner_j = json_object_get(s, "shard");
			int owner = json_is_integer(owner_j) ? (int)json_integer_value(owner_j) : -1;
			if (owner < 0 || owner >= count) {
				*err = fl_error_at(by_index[k]->path, 0, 0,
				                   "service %s has no shard of 0 to %d", name, count - 1);
				break;
			}
			json_t *run = service_named(by_index[owner]->j, name);
			json_t *copy;
			if (run) {
				json_t *ro = json_object_get(run, "shard");
				if (!json_is_integer(ro) || json_integer_value(ro) != owner) {
					*err = fl_error_at(
					    by_index[owner]->path, 0, 0,
					    "service %s: %s says shard %d runs it, this document disagrees: "
					    "documents of different assignments",
					    name, by_index[k]->path, owner);
					break;
				}
				copy = json_deep_copy(run);
			} else {
				/* its shard stopped before listing it (e.g. a manifest it could not read) */
				copy = json_deep_copy(s);
				json_object_set_new(copy, "result", json_string("not_run"));
				char *why =
				    fl_asprintf("shard %d/%d's document does not list it", owner, count);
				json_object_set_new(copy, "reason", json_string(why));
				free(why);
				json_object_del(copy, "skip_reason");
			}
			fl_outcome o;
			if (!outcome_named(str(copy, "result"), &o)) {
				*err =
				    fl_error_at(by_index[owner]->path, 0, 0, "service %s: unknown result %s",
				                name, str(copy, "result") ? str(copy, "result") : "null");
				json_decref(copy);
				break;
			}
			if (nouts == cap)
				outs = fl_realloc(outs, (cap *= 2) * sizeof(*outs));
			outs[nouts++] = o;
			json_array_append_new(services, copy);
		}
	}
	fl_run_outcome ro = fl_run_outcome_of(outs, nouts, input_error, failed, interrupted);
	free(outs);
	json_object_set_new(out, "git_dirty", dirty_known ? json_boolean(dirty) : json_null());
	json_object_set_new(out, "result", json_string(fl_run_outcome_name(ro)));
	json_object_set_new(out, "exit_code", json_integer(fl_run_exit_code(ro)));
	json_object_set_new(out, "interrupted", json_boolean(interrupted));
	json_object_set_new(out, "touched", json_boolean(touched));
	json_object_set_new(out, "wall_ms", json_integer(wall));
	json_object_set_new(out, "shard", json_null());
	json_object_set_new(out, "errors", errors);
	json_object_set_new(out, "warnings", warnings);
	json_object_set_new(out, "services", services);
	json_object_set_new(out, "shards", shards);
	if (*err) {
		json_decref(out);
		out = NULL;
	}
done:
	free(by_index);
	free(sel0);
	for (size_t i = 0; i < n; i++)
		json_decref(docs[i].j);
	free(docs);
	return out;
}

json_t *fl_report_merge_error_json(const fl_error *err)
{
	json_t *errors = json_array();
	for (const fl_error *e = err; e; e = e->next)
		json_array_append_new(errors,
		                      json_pack("{s:s, s:o, s:o, s:o}", "message", e->msg, "file",
		                                e->file ? json_string(e->file) : json_null(), "line",
		                                e->line ? json_integer(e->line) : json_null(), "column",
		                                e->col ? json_integer(e->col) : json_null()));
	return json_pack("{s:s, s:s, s:i, s:o, s:[]}", "command", "report merge", "result", "invalid",
	                 "exit_code", 2, "errors", errors, "services");
}
