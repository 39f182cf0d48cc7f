/*
 * fleetcmd: the option parsing and output shared by the commands that run
 * over the selected services (migrate, status, validate, plan, repair,
 * baseline, undo). Each command's own file only names its verb.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "gitdiff.h"
#include "history.h"
#include "shard.h"

#include "manifest.h"

static void print_status(const fl_fleet *f, FILE *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		if (!s->plan) {
			if (s->db_missing)
				fprintf(out, "%s (database %s, schema %s): %s\n\n", s->svc->name,
				        s->svc->database, s->svc->schema, s->reason);
			continue;
		}
		const fl_plan *p = s->plan;
		fprintf(out, "%s (database %s, schema %s): version %s, %zu pending\n", s->svc->name,
		        s->svc->database, s->svc->schema, p->current_version ? p->current_version : "<none>",
		        p->npending + p->nrepeatables);
		fprintf(out, "  %-10s  %-8s  %-32s  %-8s  %-19s  %s\n", "Category", "Version", "Description",
		        "Type", "Installed On", "State");
		for (size_t k = 0; k < p->n; k++) {
			const fl_plan_item *it = &p->items[k];
			const char *ver = it->row ? it->row->version : it->mig ? it->mig->version : NULL;
			const char *desc = it->row   ? it->row->description
			                   : it->mig ? it->mig->description
			                             : "";
			const char *type = it->row ? it->row->type : "SQL";
			char on[20] = "";
			if (it->row && it->row->installed_on)
				snprintf(on, sizeof(on), "%s", it->row->installed_on);
			char *note = fl_plan_item_note(it);
			fprintf(out, "  %-10s  %-8s  %-32.32s  %-8s  %-19s  %s%s%s\n",
			        fl_plan_item_category(it), ver ? ver : "", desc ? desc : "", type, on,
			        fl_plan_state_name(it->state), note ? ": " : "", note ? note : "");
			free(note);
		}
		fprintf(out, "\n");
	}
}

static void print_plan(const fl_fleet *f, FILE *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		if (s->db_missing)
			fprintf(out, "%s: %s\n", s->svc->name, s->reason);
		if (!s->plan)
			continue;
		const fl_plan *p = s->plan;
		size_t n = p->npending + p->nrepeatables;
		if (n == 0) {
			fprintf(out, "%s: up to date at version %s\n", s->svc->name,
			        p->current_version ? p->current_version : "<none>");
			continue;
		}
		fprintf(out, "%s: %zu to apply (version %s -> %s)\n", s->svc->name, n,
		        p->current_version ? p->current_version : "<none>",
		        p->npending ? p->pending[p->npending - 1]->mig->version
		                    : (p->current_version ? p->current_version : "<none>"));
		for (size_t k = 0; k < p->npending; k++) {
			const fl_plan_item *it = p->pending[k];
			fprintf(out, "  %s%s\n", it->mig->path,
			        it->mig->no_transaction ? "  (outside a transaction)" : "");
		}
		for (size_t k = 0; k < p->nrepeatables; k++)
			fprintf(out, "  %s  (repeatable)\n", p->repeatables[k]->mig->path);
	}
}

/* Every problem, once: the run's own, then each service's. */
static void print_errors(const fl_fleet *f)
{
	for (const fl_error *e = f->errors; e; e = e->next) {
		char *m = fl_error_format(e);
		fprintf(stderr, "%s%s\n", e->file ? "" : "flotilla: ", m);
		free(m);
	}
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		if (!fl_outcome_is_problem(s->outcome))
			continue;
		for (const fl_error *e = s->error; e; e = e->next) {
			char *m = fl_error_format(e);
			fprintf(stderr, "%s: %s\n", s->svc->name, m);
			free(m);
		}
	}
}

static void print_warnings(const fl_fleet *f)
{
	for (const fl_error *w = f->warnings; w; w = w->next) {
		char *s = fl_error_format(w);
		fprintf(stderr, "flotilla: warning: %s\n", s);
		free(s);
	}
}

static void print_result(const fl_fleet *f, fl_fleet_verb verb)
{
	switch (verb) {
	case FL_FLEET_STATUS:
		print_status(f, stdout);
		break;
	case FL_FLEET_PLAN:
		print_plan(f, stdout);
		break;
	case FL_FLEET_VALIDATE:
		for (size_t i = 0; i < f->n; i++)
			if (f->services[i].outcome == FL_OUTCOME_OK)
				printf("%s: valid\n", f->services[i].svc->name);
			else if (f->services[i].outcome == FL_OUTCOME_REFUSED)
				printf("%s: %s\n", f->services[i].svc->name, f->services[i].reason);
		break;
	case FL_FLEET_REPAIR:
	case FL_FLEET_BASELINE:
		for (size_t i = 0; i < f->n; i++) {
			const fl_fleet_service *s = &f->services[i];
			if (s->outcome != FL_OUTCOME_OK && s->outcome != FL_OUTCOME_UP_TO_DATE)
				continue;
			if (s->res.nchanges == 0)
				printf("%s: no changes\n", s->svc->name);
			for (size_t k = 0; k < s->res.nchanges; k++)
				printf("%s: %s\n", s->svc->name, s->res.changes[k]);
		}
		break;
	default:
		break;
	}
}

/* The --json document of a usage error (options.c calls it): result "invalid", the message in errors. */
void fl_cli_fleet_usage_json(const fl_cli_command *c, const char *msg)
{
	fl_fleet_verb verb = FL_FLEET_MIGRATE;
	for (int v = FL_FLEET_MIGRATE; v <= FL_FLEET_UNDO; v++)
		if (strcmp(fl_fleet_verb_name((fl_fleet_verb)v), c->name) == 0)
			verb = (fl_fleet_verb)v;
	fl_fleet_opts fo = {.verb = verb};
	fl_fleet *f = fl_fleet_new(NULL, &fo);
	fl_fleet_fail(f, fl_error_new("%s", msg));
	fl_fleet_run(f, stderr);
	json_t *doc = fl_fleet_json(f);
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	free(s);
	json_decref(doc);
	fl_fleet_free(f);
}

int fl_cli_fleet(int argc, char **argv, int verb_)
{
	fl_fleet_verb verb = (fl_fleet_verb)verb_;
	const char *cmd = argv[0];
	/* each verb's table (options.c) has only its options: another verb's is refused there */
	struct fl_fleet_args a = {0};
	int optind, rc = fl_cli_parse(argc, argv, &a, &optind);
	if (rc != FL_CLI_GO)
		return rc;
	size_t nnames = (size_t)(argc - optind);
	if ((verb == FL_FLEET_UNDO || verb == FL_FLEET_BASELINE) && nnames == 0)
		return fl_cli_usage(argc, argv, "%s needs the service(s) to work on: %s SERVICE...", cmd,
		                    cmd);
	if (verb == FL_FLEET_BASELINE && !a.version == !a.from_alembic)
		return fl_cli_usage(argc, argv, "baseline needs either --version V or --from-alembic");

	fl_shard shard;
	fl_error *serr = NULL;
	bool shardable = verb == FL_FLEET_MIGRATE || verb == FL_FLEET_STATUS || verb == FL_FLEET_VALIDATE ||
	                 verb == FL_FLEET_PLAN;
	memset(&shard, 0, sizeof(shard));
	if (shardable && fl_shard_parse(a.shard, getenv, &shard, &serr) < 0) {
		char *msg = fl_error_format(serr);
		fl_error_free(serr);
		rc = fl_cli_usage(argc, argv, "%s", msg);
		free(msg);
		return rc;
	}

	fl_fleet_opts fo;
	memset(&fo, 0, sizeof(fo));
	fo.shard_index = shard.index;
	fo.shard_count = shard.count;
	fo.shard_wait_s = a.shard_wait;
	fo.verb = verb;
	fo.names = argv + optind;
	fo.nnames = nnames;
	fo.since = a.since;
	fo.rev = a.rev;
	fo.provision = !a.no_provision;
	fo.jobs = a.jobs;
	fo.connections = a.connections;
	fo.fail_fast = a.fail_fast;
	fo.target = verb == FL_FLEET_UNDO ? a.to : a.target;
	fo.baseline_version = a.version;
	fo.from_alembic = a.from_alembic;
	fo.dry_run = a.dry_run;
	fo.out_of_order = a.out_of_order;
	fo.html = a.html;
	fo.json = a.json;
	fo.svg = a.svg;
	bool progress = verb == FL_FLEET_MIGRATE || verb == FL_FLEET_UNDO || verb == FL_FLEET_REPAIR ||
	                verb == FL_FLEET_BASELINE;
	fo.mode = !progress || a.dry_run ? FL_REPORT_QUIET : a.plain ? FL_REPORT_PLAIN : FL_REPORT_LIVE;
	fo.handle_signals = true;

	fl_error *merr = NULL;
	fl_manifest *m = fl_cli_manifest_try(true, &merr);
	fl_fleet *f = fl_fleet_new(m, &fo);
	if (!m)
		fl_fleet_fail(f, merr);
	rc = fl_fleet_run(f, stderr);

	if (a.dry_run && !a.json) { /* with --json the SQL is in the document */
		for (size_t i = 0; i < f->n; i++) {
			if (f->services[i].sql.len == 0)
				continue;
			printf("-- %s (database %s)\n%s\n", f->services[i].svc->name,
			       f->services[i].svc->database, f->services[i].sql.data);
		}
	}
	if (a.json) {
		json_t *doc = fl_fleet_json(f);
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(doc);
	} else {
		print_result(f, verb);
	}
	print_warnings(f);
	if (progress && !a.dry_run && !a.json && f->report)
		fl_report_summary(f->report, stderr);
	print_errors(f);
	bool invalid_files = false;
	for (size_t i = 0; i < f->n; i++)
		invalid_files |= f->services[i].outcome == FL_OUTCOME_INVALID;
	/* one bad revision or manifest speaks for itself; a list of problems gets the reassurance */
	if (f->outcome == FL_RUN_INVALID && (invalid_files || fl_error_count(f->errors) > 1))
		fprintf(stderr,
		        "flotilla: nothing was sent to any server; fix the problems above and run again\n");
	if (f->interrupted)
		fprintf(stderr, "flotilla: interrupted: %s\n",
		        f->touched
		            ? "running transactions were rolled back; what ran outside a transaction is "
		              "kept (each service above says what)"
		            : "nothing was sent to any server");
	fl_fleet_free(f);
	fl_manifest_free(m);
	return rc;
}
