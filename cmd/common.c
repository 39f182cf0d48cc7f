/*
 * common: what several subcommands do the same way: finding and loading the
 * manifest for the chosen environment, naming the commit that changed an
 * applied migration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "manifest.h"

const char *fl_cli_manifest_path(void)
{
	if (fl_cli.manifest)
		return fl_cli.manifest;
	if (access("flotilla.toml", F_OK) == 0)
		return "flotilla.toml";
	if (access("manifests/pcc.toml", F_OK) == 0)
		return "manifests/pcc.toml";
	return NULL;
}

fl_manifest *fl_cli_manifest_try(bool need_env, fl_error **err)
{
	const char *path = fl_cli_manifest_path();
	if (!path) {
		*err = fl_error_new("no manifest: neither flotilla.toml nor manifests/pcc.toml is here; "
		                    "name one with -m FILE");
		return NULL;
	}
	fl_manifest *m = fl_manifest_load(path, fl_cli.env, err);
	if (m && need_env && !m->env) {
		char *known = fl_manifest_env_names(m);
		*err = fl_error_new("no environment: use -e ENV or set FLOTILLA_ENV (%s defines: %s)", path,
		                    known);
		free(known);
		fl_manifest_free(m);
		return NULL;
	}
	return m;
}

fl_manifest *fl_cli_load_manifest(bool need_env)
{
	fl_error *err = NULL;
	fl_manifest *m = fl_cli_manifest_try(need_env, &err);
	if (!m) {
		/* a problem with a place is "file:line:col: ...", for editors; one without says who */
		for (const fl_error *e = err; e; e = e->next) {
			char *s = fl_error_format(e);
			fprintf(stderr, "%s%s\n", e->file ? "" : "flotilla: ", s);
			free(s);
		}
		fl_error_free(err);
	}
	return m;
}

/*
 * history's installed_on (a timestamp without time zone, as the server
 * prints it in its own zone) -> seconds since the epoch, read as local time:
 * right when flotilla and the server share a time zone (UTC in most CI).
 */
static int64_t installed_epoch(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	return t < 0 ? 0 : (int64_t)t;
}

static bool in_work_tree_changes(fl_git *g, const fl_service *svc, const char *script)
{
	fl_git_change *ch = NULL;
	size_t n = 0;
	fl_error *err = NULL;
	const char *folder = svc->migrations;
	bool found = false;
	if (fl_git_diff(g, "HEAD", NULL, &folder, 1, &ch, &n, &err) == 0)
		for (size_t i = 0; i < n && !found; i++)
			found = ch[i].new_name && strcmp(ch[i].new_name, script) == 0;
	fl_error_free(err);
	fl_git_changes_free(ch, n);
	return found;
}

int fl_cli_changing_commit(fl_git *g, const char *rev, const fl_service *svc, const char *script,
                           const char *installed_on, fl_git_commit *commit, char **note)
{
	*note = NULL;
	char *path = fl_asprintf("%s/%s", svc->migrations, script);
	fl_git_commit c;
	fl_error *gerr = NULL;
	int rc = fl_git_last_change_after(g, rev, path, installed_epoch(installed_on), NULL, &c, &gerr);
	free(path);
	fl_error_free(gerr);
	if (rc == 1) {
		/* the author's own calendar day, as git log shows it */
		char date[16];
		time_t t = (time_t)(c.author_time + (int64_t)c.author_offset * 60);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		*note = fl_asprintf(" (changed by %s %s, %s, %s)", c.short_id, c.summary ? c.summary : "",
		                    c.author_name ? c.author_name : "?", date);
		*commit = c;
		return 1;
	}
	if (rc == 0 && !rev && in_work_tree_changes(g, svc, script))
		*note = fl_strdup(" (changed in the work tree, not committed)");
	return 0;
}
