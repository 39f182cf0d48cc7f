/*
 * fleetcmd: the option parsing and output shared by the commands that run
 * over the selected services (migrate, status, validate, plan, repair,
 * baseline, undo). Each command's own file only names its verb.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "gitdiff.h"
#include "history.h"
#include "manifest.h"
#include "provision.h"

enum {
	OPT_TARGET = 1000,
	OPT_DRY_RUN,
	OPT_JSON,
	OPT_FAIL_FAST,
	OPT_NO_PROVISION,
	OPT_SINCE,
	OPT_REV,
	OPT_OUT_OF_ORDER,
	OPT_VERSION,
	OPT_TO,
	OPT_PLAIN
};

struct fleet_args {
	const char *target, *since, *rev, *to, *version;
	bool dry_run, json, fail_fast, no_provision, out_of_order, plain;
	int jobs;
};

static void print_status(const fl_fleet *f, FILE *out)
{
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		if (!s->plan) {
			if (s->error) {
				char *e = fl_error_format(s->error);
				fprintf(out, "%s: %s\n\n", s->svc->name, e);
				free(e);
			}
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

static void print_errors(const fl_fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const fl_fleet_service *s = &f->services[i];
		for (const fl_error *e = s->error; e; e = e->next) {
			char *m = fl_error_format(e);
			fprintf(stderr, "%s: %s\n", s->svc->name, m);
			free(m);
		}
	}
}

/* --rev: a service's files as they are in that commit's tree, never the disk's */
struct rev_source {
	fl_git *g;
	const char *id;
};

static int read_rev(void *ctx, const fl_service *svc, fl_file **files, size_t *n, fl_error **err)
{
	struct rev_source *rs = ctx;
	return fl_git_read_folder(rs->g, rs->id, svc->migrations, svc->migrations_as_written, files, n, err);
}

static int git_fail(fl_error *err)
{
	for (fl_error *e = err; e; e = e->next) {
		char *s = fl_error_format(e);
		fprintf(stderr, "flotilla: %s\n", s);
		free(s);
	}
	fl_error_free(err);
	return FL_EXIT_USAGE;
}

/* validate: a checksum mismatch names the commit that changed the file after it was applied */
static void name_changing_commits(fl_fleet *f, fl_git *g, const char *rev)
{
	for (size_t i = 0; i < f->n; i++) {
		fl_fleet_service *s = &f->services[i];
		for (size_t k = 0; s->plan && k < s->plan->n; k++) {
			const fl_plan_item *it = &s->plan->items[k];
			if (!(it->mismatch & FL_MISMATCH_CHECKSUM) || !it->mig || !it->row)
				continue;
			fl_error *e = s->error;
			while (e && !(e->file && strcmp(e->file, it->mig->path) == 0 &&
			              strncmp(e->msg, "checksum mismatch", 17) == 0))
				e = e->next;
			if (!e)
				continue;
			fl_git_commit c;
			char *note = NULL;
			if (fl_cli_changing_commit(g, rev, s->svc, it->mig->script, it->row->installed_on, &c,
			                           &note) == 1)
				fl_git_commit_clear(&c);
			if (note) {
				char *m = fl_asprintf("%s%s", e->msg, note);
				free(e->msg);
				e->msg = m;
				free(note);
			}
		}
	}
}

static void show_step(void *ctx, const fl_provision_step *step)
{
	(void)ctx;
	fprintf(stderr, "provision: %s%s%s\n", step->desc, step->database ? " in " : "",
	        step->database ? step->database : "");
}

/* migrate provisions first (roles, databases, grants: the serialised,
 * cluster-wide phase), so a new service's database exists before its job. */
int fl_cli_provision_before_migrate(const fl_manifest *m, const size_t *sel, size_t nsel)
{
	(void)sel;
	(void)nsel;
	fl_error *warnings = NULL;
	fl_provision_admin admin;
	fl_error *err = fl_provision_admin_init(&admin, m->env, &warnings);
	if (err) {
		fl_cli_print_errors(err);
		int rc = fl_cli_exit_code(err);
		fl_error_free(err);
		fl_error_free(warnings);
		return rc;
	}
	fl_provision_desired *d = fl_provision_desired_from_manifest(m);
	fl_provision_opts po = {.on_step = show_step};
	fl_provision_result *res = NULL;
	err = fl_provision_run(d, &admin.target, &po, &res);
	fl_error_append(&warnings, d->warnings);
	d->warnings = NULL;
	for (fl_error *w = warnings; w; w = w->next) {
		char *s = fl_error_format(w);
		fprintf(stderr, "flotilla: warning: %s\n", s);
		free(s);
	}
	for (size_t i = 0; res && i < res->nwarnings; i++)
		fprintf(stderr, "provision: warning: %s\n", res->warnings[i]);
	int rc = 0;
	if (!err && res && res->nsteps == 0)
		fprintf(stderr, "provision: no changes\n");
	if (err) {
		fl_cli_print_errors(err);
		fprintf(stderr, "flotilla: provisioning failed; no migration was run\n");
		rc = err->kind == FL_EINPUT ? FL_EXIT_USAGE : FL_EXIT_FAILED;
	}
	fl_error_free(err);
	fl_error_free(warnings);
	fl_provision_result_free(res);
	fl_provision_desired_free(d);
	fl_provision_admin_clear(&admin);
	return rc;
}

int fl_cli_fleet(int argc, char **argv, int verb_)
{
	fl_fleet_verb verb = (fl_fleet_verb)verb_;
	const char *cmd = argv[0];
	static const struct option opts[] = {
	    FL_CLI_GLOBAL_LONGOPTS,
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"jobs", required_argument, NULL, 'j'},
	    {"fail-fast", no_argument, NULL, OPT_FAIL_FAST},
	    {"no-provision", no_argument, NULL, OPT_NO_PROVISION},
	    {"since", required_argument, NULL, OPT_SINCE},
	    {"rev", required_argument, NULL, OPT_REV},
	    {"out-of-order", no_argument, NULL, OPT_OUT_OF_ORDER},
	    {"version", required_argument, NULL, OPT_VERSION},
	    {"to", required_argument, NULL, OPT_TO},
	    {"plain", no_argument, NULL, OPT_PLAIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct fleet_args a;
	memset(&a, 0, sizeof(a));
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:e:j:h", opts, NULL)) != -1) {
		if (fl_cli_global_opt(c, optarg))
			continue;
		switch (c) {
		case OPT_TARGET:
			a.target = optarg;
			break;
		case OPT_DRY_RUN:
			a.dry_run = true;
			break;
		case OPT_JSON:
			a.json = true;
			break;
		case 'j':
			a.jobs = atoi(optarg);
			if (a.jobs < 1 || a.jobs > 64)
				return fl_cli_usage_error(cmd, "-j needs a number from 1 to 64, not '%s'",
				                          optarg);
			break;
		case OPT_FAIL_FAST:
			a.fail_fast = true;
			break;
		case OPT_NO_PROVISION:
			a.no_provision = true;
			break;
		case OPT_SINCE:
			a.since = optarg;
			break;
		case OPT_REV:
			a.rev = optarg;
			break;
		case OPT_OUT_OF_ORDER:
			a.out_of_order = true;
			break;
		case OPT_VERSION:
			a.version = optarg;
			break;
		case OPT_TO:
			a.to = optarg;
			break;
		case OPT_PLAIN:
			a.plain = true;
			break;
		case 'h': {
			char *hv[] = {"flotilla", "help", (char *)cmd, NULL};
			(void)hv;
			printf("see 'flotilla help %s'\n", cmd);
			return FL_EXIT_OK;
		}
		case ':':
			return fl_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fl_cli_usage_error(cmd, "unknown option '%s' for %s", argv[optind - 1], cmd);
		}
	}
	/* options that belong to other verbs are refused, not ignored */
	if (a.target && verb != FL_FLEET_MIGRATE)
		return fl_cli_usage_error(cmd, "--target is for migrate (undo takes --to)");
	if (a.to && verb != FL_FLEET_UNDO)
		return fl_cli_usage_error(cmd, "--to is for undo");
	if (a.version && verb != FL_FLEET_BASELINE)
		return fl_cli_usage_error(cmd, "--version is for baseline");
	if (verb == FL_FLEET_BASELINE && !a.version)
		return fl_cli_usage_error(cmd, "baseline needs --version V");
	if (a.dry_run && verb != FL_FLEET_MIGRATE && verb != FL_FLEET_REPAIR && verb != FL_FLEET_UNDO)
		return fl_cli_usage_error(cmd, "--dry-run is for migrate, repair and undo");
	if (a.since && verb != FL_FLEET_MIGRATE)
		return fl_cli_usage_error(
		    cmd, "--since is for migrate (to review a change: flotilla diff --since REV)");
	if (a.rev && verb != FL_FLEET_MIGRATE && verb != FL_FLEET_STATUS && verb != FL_FLEET_VALIDATE &&
	    verb != FL_FLEET_PLAN)
		return fl_cli_usage_error(cmd, "--rev is for migrate, status, validate and plan");

	fl_manifest *m = fl_cli_load_manifest(true);
	if (!m)
		return FL_EXIT_USAGE;
	size_t nnames = (size_t)(argc - optind);
	if ((verb == FL_FLEET_UNDO || verb == FL_FLEET_BASELINE) && nnames == 0) {
		fl_manifest_free(m);
		return fl_cli_usage_error(cmd, "%s needs the service(s) to work on: %s SERVICE...", cmd, cmd);
	}
	size_t *sel = fl_calloc(m->nservices ? m->nservices : 1, sizeof(size_t));
	fl_error *err = NULL;
	int nsel = fl_manifest_select(m, argv + optind, nnames, sel, &err);
	if (nsel < 0) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		free(sel);
		fl_manifest_free(m);
		return FL_EXIT_USAGE;
	}

	/*
	 * git, before anything is touched. With --since or --rev it is required
	 * and every problem is bad input; without them it only tells the ledger
	 * which commit ran, and a manifest outside any repository is fine.
	 */
	fl_git *g = NULL;
	char rev_id[FL_GIT_ID_LEN] = "", head_id[FL_GIT_ID_LEN] = "";
	bool head_dirty = false, *skip = NULL;
	char *skip_reason = NULL;
	const char **folders = fl_calloc((size_t)nsel + 2, sizeof(char *));
	for (int i = 0; i < nsel; i++)
		folders[i] = m->services[sel[i]].migrations;
	if (a.since || a.rev) {
		int grc = 0;
		if (fl_git_open(m->path, &g, &err) < 0 ||
		    (a.rev && fl_git_resolve(g, a.rev, rev_id, &err) < 0))
			grc = git_fail(err);
		char since_id[FL_GIT_ID_LEN];
		fl_git_change *ch = NULL;
		size_t nch = 0;
		if (grc == 0 && a.since &&
		    (fl_git_resolve(g, a.since, since_id, &err) < 0 ||
		     fl_git_diff(g, since_id, a.rev ? rev_id : NULL, folders, (size_t)nsel, &ch, &nch, &err) <
		         0))
			grc = git_fail(err);
		if (grc == 0 && a.since) {
			skip = fl_calloc((size_t)nsel + 1, sizeof(bool));
			for (int i = 0; i < nsel; i++)
				skip[i] = true;
			for (size_t k = 0; k < nch; k++)
				skip[ch[k].folder] = false;
			skip_reason = fl_asprintf("no migration changed since %s", a.since);
		}
		fl_git_changes_free(ch, nch);
		if (grc != 0) {
			fl_git_free(g);
			free(folders);
			free(sel);
			fl_manifest_free(m);
			return grc;
		}
	} else if (fl_git_open(m->path, &g, &err) < 0) {
		fl_error_free(err); /* not in a repository: no commit to record */
		err = NULL;
		g = NULL;
	}
	if (g && !a.rev) {
		/* dirty: the files this run reads differ from HEAD (the manifest included) */
		folders[nsel] = m->path;
		if (fl_git_head(g, folders, (size_t)nsel + 1, head_id, &head_dirty, &err) < 0) {
			fl_error_free(err); /* e.g. no commit yet: unknown */
			err = NULL;
			head_id[0] = '\0';
		}
	}
	free(folders);

	if (verb == FL_FLEET_MIGRATE && !a.no_provision && !a.dry_run) {
		int prc = fl_cli_provision_before_migrate(m, sel, (size_t)nsel);
		if (prc != 0) {
			fl_git_free(g);
			free(skip);
			free(skip_reason);
			free(sel);
			fl_manifest_free(m);
			return prc;
		}
	}

	fl_fleet_opts fo;
	memset(&fo, 0, sizeof(fo));
	fo.verb = verb;
	fo.selected = sel;
	fo.nselected = (size_t)nsel;
	fo.jobs = a.jobs;
	fo.fail_fast = a.fail_fast;
	fo.target = verb == FL_FLEET_UNDO ? a.to : a.target;
	fo.baseline_version = a.version;
	fo.dry_run = a.dry_run;
	fo.out_of_order = a.out_of_order;
	bool progress = verb == FL_FLEET_MIGRATE || verb == FL_FLEET_UNDO || verb == FL_FLEET_REPAIR ||
	                verb == FL_FLEET_BASELINE;
	fo.mode = !progress || a.dry_run ? FL_REPORT_QUIET : a.plain ? FL_REPORT_PLAIN : FL_REPORT_LIVE;
	fo.handle_signals = true;
	fo.git_dirty = -1;
	struct rev_source rs = {.g = g, .id = rev_id};
	if (a.rev) {
		fo.source = read_rev;
		fo.source_ctx = &rs;
		fo.git_commit = rev_id;
		fo.git_dirty = 0; /* the files come from the commit itself */
	} else if (head_id[0]) {
		fo.git_commit = head_id;
		fo.git_dirty = head_dirty;
	}
	fo.skip = skip;
	fo.skip_reason = skip_reason;

	fl_fleet *f = fl_fleet_new(m, &fo, &err);
	if (!f) {
		fl_cli_print_errors(err);
		fl_error_free(err);
		fl_git_free(g);
		free(skip);
		free(skip_reason);
		free(sel);
		fl_manifest_free(m);
		return FL_EXIT_USAGE;
	}
	int rc = fl_fleet_run(f, stderr);
	if (!f->report) { /* stopped before any job: the reason is printed */
		fl_fleet_free(f);
		fl_git_free(g);
		free(skip);
		free(skip_reason);
		free(sel);
		fl_manifest_free(m);
		return rc;
	}

	if (verb == FL_FLEET_VALIDATE && g)
		name_changing_commits(f, g, a.rev ? rev_id : NULL);

	if (a.dry_run) {
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
	} else if (verb == FL_FLEET_STATUS) {
		print_status(f, stdout);
	} else if (verb == FL_FLEET_PLAN) {
		print_plan(f, stdout);
	} else if (verb == FL_FLEET_VALIDATE) {
		for (size_t i = 0; i < f->n; i++)
			if (f->services[i].rc == 0)
				printf("%s: valid\n", f->services[i].svc->name);
	} else if (verb == FL_FLEET_REPAIR || verb == FL_FLEET_BASELINE) {
		for (size_t i = 0; i < f->n; i++) {
			const fl_fleet_service *s = &f->services[i];
			if (s->rc != 0)
				continue;
			if (s->res.nchanges == 0)
				printf("%s: no changes\n", s->svc->name);
			for (size_t k = 0; k < s->res.nchanges; k++)
				printf("%s: %s\n", s->svc->name, s->res.changes[k]);
		}
	}
	if (progress && !a.dry_run && !a.json)
		fl_report_summary(f->report, stderr);
	print_errors(f);
	if (f->interrupted)
		fprintf(stderr,
		        "flotilla: interrupted: running migrations were rolled back; see above for what "
		        "was done\n");
	fl_fleet_free(f);
	fl_git_free(g);
	free(skip);
	free(skip_reason);
	free(sel);
	fl_manifest_free(m);
	return rc;
}
