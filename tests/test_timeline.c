/*
 * timeline (migrate --html, --svg): the spans and the critical path built
 * from a synthetic event stream (exact spans, exact path), the escaping of
 * names and errors, the size of a thousand-service picture; then through
 * the binary on the test server: the page in headless chromium (no network
 * request, no console message, one bar row per service with its migration
 * count, the critical-path mark on the slowest service), the SVG parsed as
 * XML, a failed migration's page, a run refused before it started, and a
 * file that cannot be written.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "timeline.h"

#define EPS 1e-9

static void ev(fl_timeline *t, size_t job, int worker, fl_event_kind kind, double at, int index, long ms,
               const char *text)
{
	fl_event e = {.job = job,
	              .kind = kind,
	              .index = index,
	              .ms = ms,
	              .text = (char *)text,
	              .at = at,
	              .worker = worker};
	fl_timeline_event(t, &e);
}

/*
 * Three services on two workers, the pool's clock starting 1 s into the run:
 *   a on worker 0: connect, lock taken at once, V1 and V2, done at 0.5;
 *   b on worker 1: a connect retry, 0.4 s of migration-lock wait, V1 with a
 *     DDL lock retry, done at 1.0;
 *   c on worker 0 after a (queued until 0.5): V1 fails at 1.2, the last to end.
 */
static fl_timeline *three_on_two(void)
{
	const char *names[] = {"a", "b", "c"};
	fl_timeline *t = fl_timeline_new(names, 3);
	fl_timeline_phase_start(t, FL_TL_PREFLIGHT, 0);
	fl_timeline_phase_end(t, FL_TL_PREFLIGHT, 0.25);
	fl_timeline_phase_start(t, FL_TL_PROVISIONING, 0.25);
	fl_timeline_phase_end(t, FL_TL_PROVISIONING, 1.0);
	fl_timeline_phase_start(t, FL_TL_JOBS, 1.0);
	fl_timeline_set_offset(t, 1.0);
	for (size_t j = 0; j < 3; j++)
		ev(t, j, -1, FL_EV_WAITING, 0, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_CONNECTING, 0.0, 0, 0, NULL);
	ev(t, 1, 1, FL_EV_CONNECTING, 0.0, 0, 0, NULL);
	ev(t, 1, 1, FL_EV_CONNECTING, 0.05, 1, 0, "waiting for the server (attempt 1 of 5): refused");
	ev(t, 0, 0, FL_EV_LOCKED, 0.1, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_PLANNED, 0.1, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_APPLYING, 0.2, 1, 0, "V1__one");
	ev(t, 1, 1, FL_EV_LOCK_WAIT, 0.2, 0, 0, "waiting for the migration lock, held by pid 7");
	ev(t, 0, 0, FL_EV_APPLIED, 0.3, 1, 100, "V1__one");
	ev(t, 0, 0, FL_EV_APPLYING, 0.3, 2, 0, "V2__two");
	ev(t, 0, 0, FL_EV_MESSAGE, 0.4, 0, 0, "NOTICE: ignored");
	ev(t, 0, 0, FL_EV_APPLIED, 0.5, 2, 200, "V2__two");
	ev(t, 0, 0, FL_EV_DONE, 0.5, 0, 0, "2 applied");
	ev(t, 2, 0, FL_EV_CONNECTING, 0.5, 0, 0, NULL);
	ev(t, 1, 1, FL_EV_LOCKED, 0.6, 0, 400, NULL);
	ev(t, 1, 1, FL_EV_APPLYING, 0.6, 1, 0, "V1__one");
	ev(t, 2, 0, FL_EV_APPLYING, 0.6, 1, 0, "V1__bad");
	ev(t, 1, 1, FL_EV_LOCK_RETRY, 0.7, 1, 100, "lock wait on table t, retry 1 of 5 in 0.1 s");
	ev(t, 1, 1, FL_EV_APPLIED, 1.0, 1, 390, "V1__one");
	ev(t, 1, 1, FL_EV_DONE, 1.0, 0, 0, "1 applied");
	ev(t, 2, 0, FL_EV_FAILED, 1.2, 0, 0, "boom");
	fl_timeline_phase_end(t, FL_TL_JOBS, 2.2);
	fl_timeline_set_outcome(t, 0, FL_OUTCOME_OK, NULL, NULL);
	fl_timeline_set_outcome(t, 1, FL_OUTCOME_OK, NULL, NULL);
	fl_timeline_set_outcome(t, 2, FL_OUTCOME_FAILED, "boom", "svc/c/V1__bad.sql:1:8: boom");
	fl_timeline_set_run(t, "migrate p / test", FL_RUN_FAILED, 1, 2.25);
	return t;
}

static void span_is(const fl_timeline_span *s, fl_timeline_kind kind, double start, double end,
                    const char *name)
{
	cr_assert_eq(s->kind, kind, "kind %s, not %s", fl_timeline_kind_name(s->kind),
	             fl_timeline_kind_name(kind));
	cr_assert_float_eq(s->start, start, EPS, "%s starts at %f, not %f", fl_timeline_kind_name(kind),
	                   s->start, start);
	cr_assert_float_eq(s->end, end, EPS, "%s ends at %f, not %f", fl_timeline_kind_name(kind), s->end,
	                   end);
	if (name)
		cr_assert_str_eq(s->name, name);
}

/* A wait for a turn to apply (fleet.c work_gate) is its own span, then the turn's preparing. */
Test(timeline, a_wait_for_a_turn_is_a_span_of_its_own)
{
	const char *names[] = {"a"};
	fl_timeline *t = fl_timeline_new(names, 1);
	fl_timeline_phase_start(t, FL_TL_JOBS, 0);
	ev(t, 0, -1, FL_EV_WAITING, 0, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_CONNECTING, 0.0, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_TURN_WAIT, 0.1, 0, 0, "waits for a turn: the server runs on this machine");
	ev(t, 0, 0, FL_EV_TURN, 0.4, 0, 300, NULL);
	ev(t, 0, 0, FL_EV_LOCKED, 0.45, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_PLANNED, 0.45, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_APPLYING, 0.5, 1, 0, "V1__one");
	ev(t, 0, 0, FL_EV_APPLIED, 0.6, 1, 100, "V1__one");
	ev(t, 0, 0, FL_EV_DONE, 0.6, 0, 0, "1 applied");
	fl_timeline_phase_end(t, FL_TL_JOBS, 0.6);
	fl_timeline_set_outcome(t, 0, FL_OUTCOME_OK, NULL, NULL);
	fl_timeline_set_run(t, "migrate p / test", FL_RUN_OK, 0, 0.6);
	const fl_timeline_service *a = &t->services[0];
	cr_assert_eq(a->nspans, 5, "%zu spans", a->nspans);
	span_is(&a->spans[1], FL_TL_CONNECT, 0.0, 0.1, NULL);
	span_is(&a->spans[2], FL_TL_TURN_WAIT, 0.1, 0.4, "waits for a turn: the server runs on this machine");
	span_is(&a->spans[3], FL_TL_PREPARE, 0.4, 0.5, NULL); /* the lock, the reads, then planning */
	span_is(&a->spans[4], FL_TL_MIGRATION, 0.5, 0.6, "V1__one");
	char *why = fl_timeline_critical_text(t);
	cr_assert_str_eq(why, "critical path: a 0.60 s (0.30 s of it waiting for a turn)");
	free(why);
	char *html = fl_timeline_html(t);
	cr_assert(th_contains(html, "<rect class=\"span turn-wait\""), "%s", html);
	cr_assert(th_contains(html, "turn-wait 0.300 s: waits for a turn"), "the tooltip: %s", html);
	cr_assert(th_contains(html, ">turn-wait</text>"), "the legend: %s", html);
	cr_assert(th_contains(html, "<td class=\"turn-wait\">0.300</td><td class=\"lock-wait\">0.000</td>"),
	          "the table: %s", html);
	free(html);
	fl_timeline_free(t);
}

Test(timeline, spans_follow_the_events_of_three_services_on_two_workers)
{
	fl_timeline *t = three_on_two();
	const fl_timeline_service *a = &t->services[0], *b = &t->services[1], *c = &t->services[2];

	cr_assert_eq(a->worker, 0);
	cr_assert_float_eq(a->start, 1.0, EPS);
	cr_assert_float_eq(a->end, 1.5, EPS);
	/* the steps too short to see (APPLIED and the next APPLYING at once) are no spans */
	cr_assert_eq(a->nspans, 5);
	span_is(&a->spans[0], FL_TL_QUEUED, 1.0, 1.0, NULL);
	span_is(&a->spans[1], FL_TL_CONNECT, 1.0, 1.1, NULL);
	span_is(&a->spans[2], FL_TL_PREPARE, 1.1, 1.2, NULL);
	span_is(&a->spans[3], FL_TL_MIGRATION, 1.2, 1.3, "V1__one");
	cr_assert_eq(a->spans[3].ms, 100);
	span_is(&a->spans[4], FL_TL_MIGRATION, 1.3, 1.5, "V2__two");
	cr_assert_eq(a->spans[4].ms, 200);
	cr_assert(!a->spans[4].failed);
	cr_assert_eq(a->migrations, 2);
	cr_assert_eq(a->noverlays, 0);

	cr_assert_eq(b->worker, 1);
	cr_assert_eq(b->nspans, 4);
	span_is(&b->spans[0], FL_TL_QUEUED, 1.0, 1.0, NULL);
	span_is(&b->spans[1], FL_TL_CONNECT, 1.0, 1.2, NULL);
	span_is(&b->spans[2], FL_TL_LOCK_WAIT, 1.2, 1.6, "waiting for the migration lock, held by pid 7");
	span_is(&b->spans[3], FL_TL_MIGRATION, 1.6, 2.0, "V1__one");
	cr_assert_float_eq(b->lock_wait, 0.4, EPS);
	cr_assert_eq(b->connect_retries, 1);
	cr_assert_eq(b->lock_retries, 1);
	cr_assert_eq(b->noverlays, 2);
	span_is(&b->overlays[0], FL_TL_CONNECT_RETRY, 1.05, 1.2,
	        "waiting for the server (attempt 1 of 5): refused");
	span_is(&b->overlays[1], FL_TL_LOCK_RETRY, 1.7, 1.8, "lock wait on table t, retry 1 of 5 in 0.1 s");

	cr_assert_eq(c->worker, 0);
	cr_assert_eq(c->nspans, 3);
	span_is(&c->spans[0], FL_TL_QUEUED, 1.0, 1.5, NULL);
	span_is(&c->spans[1], FL_TL_CONNECT, 1.5, 1.6, NULL);
	span_is(&c->spans[2], FL_TL_MIGRATION, 1.6, 2.2, "V1__bad");
	cr_assert(c->spans[2].failed, "the migration it failed in");
	cr_assert_eq(c->migrations, 0);
	cr_assert_eq(c->outcome, FL_OUTCOME_FAILED);
	cr_assert_str_eq(c->error, "svc/c/V1__bad.sql:1:8: boom");
	fl_timeline_free(t);
}

Test(timeline, critical_path_goes_back_through_the_worker_that_freed_it)
{
	fl_timeline *t = three_on_two();
	size_t n;
	size_t *path = fl_timeline_critical(t, &n);
	/* c ended last; it started on worker 0 when a ended: a, then c */
	cr_assert_eq(n, 2);
	cr_assert_eq(path[0], 0);
	cr_assert_eq(path[1], 2);
	free(path);
	/* the slowest is b (1.0 s), which is not on the path */
	cr_assert_eq(fl_timeline_slowest(t), 1);
	char *text = fl_timeline_critical_text(t);
	cr_assert_str_eq(text, "critical path: preflight 0.25 s, provisioning 0.75 s, a 0.50 s, c 0.70 s");
	free(text);

	char *svg = fl_timeline_svg(t);
	cr_assert(th_contains(svg, "<g class=\"row service critical\" data-service=\"a\" data-outcome=\"ok\" "
	                           "data-migrations=\"2\" data-critical=\"true\">"),
	          "%s", svg);
	cr_assert(th_contains(svg, "<g class=\"row service slowest\" data-service=\"b\" data-outcome=\"ok\" "
	                           "data-migrations=\"1\" data-slowest=\"true\">"),
	          "%s", svg);
	cr_assert(th_contains(svg,
	                      "<g class=\"row service critical\" data-service=\"c\" data-outcome=\"failed\" "
	                      "data-migrations=\"0\" data-critical=\"true\">"),
	          "%s", svg);
	cr_assert(th_contains(svg, "<rect class=\"span migration failed\""), "%s", svg);
	cr_assert(th_contains(svg, "<rect class=\"overlay lock-retry\""), "%s", svg);
	cr_assert(th_contains(svg, "<rect class=\"overlay connect-retry\""), "%s", svg);
	free(svg);
	fl_timeline_free(t);
}

Test(timeline, no_service_started_gives_phases_only)
{
	const char *names[] = {"a"};
	fl_timeline *t = fl_timeline_new(names, 1);
	fl_timeline_phase_start(t, FL_TL_PREFLIGHT, 0);
	fl_timeline_phase_end(t, FL_TL_PREFLIGHT, 0.01);
	size_t n = 7;
	size_t *path = fl_timeline_critical(t, &n);
	cr_assert_null(path);
	cr_assert_eq(n, 0);
	cr_assert_eq(fl_timeline_slowest(t), -1);
	char *text = fl_timeline_critical_text(t);
	cr_assert_str_eq(text, "critical path: preflight 0.01 s");
	free(text);
	fl_timeline_free(t);
}

/* python3's XML parser on `path`: each service row's data-service, one a line */
static char *svg_services(const char *path)
{
	char cmd[1024], *out;
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E\n"
	         "r = E.parse(sys.argv[1]).getroot()\n"
	         "for g in r.iter(\"{http://www.w3.org/2000/svg}g\"):\n"
	         "    s = g.get(\"data-service\")\n"
	         "    if s is not None: print(s)' '%s'",
	         path);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "not XML: %s", out);
	return out;
}

Test(timeline, names_and_errors_are_escaped_for_xml_and_html)
{
	const char *names[] = {"x<&\"'>y", "ok"};
	fl_timeline *t = fl_timeline_new(names, 2);
	ev(t, 0, -1, FL_EV_WAITING, 0, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_CONNECTING, 0.1, 0, 0, NULL);
	ev(t, 0, 0, FL_EV_APPLYING, 0.2, 1, 0, "V1__<b>&");
	ev(t, 0, 0, FL_EV_FAILED, 0.3, 0, 0, NULL);
	/* an error can carry anything a server or a file said: markup, control bytes, bad UTF-8 */
	fl_timeline_set_outcome(t, 0, FL_OUTCOME_FAILED, "why",
	                        "dir/<i>.sql:1:1: <script>alert(1)</script> \x01 \xff end");
	fl_timeline_set_run(t, "migrate <p> & \"q\"", FL_RUN_FAILED, 1, 0.3);
	char *dir = th_tmpdir(), svg_path[600], html_path[600];
	snprintf(svg_path, sizeof(svg_path), "%s/a&b.svg", dir);
	snprintf(html_path, sizeof(html_path), "%s/a'b.html", dir);
	fl_error *err = NULL;
	cr_assert_eq(fl_timeline_write(t, html_path, svg_path, &err), 0, "%s", err ? err->msg : "");
	char *svg = th_read(svg_path), *html = th_read(html_path);
	for (int k = 0; k < 2; k++) {
		const char *doc = k ? html : svg;
		cr_assert(th_contains(doc, "data-service=\"x&lt;&amp;&quot;&#39;&gt;y\""), "%s", doc);
		cr_assert(
		    th_contains(doc, "&lt;script&gt;alert(1)&lt;/script&gt; \xEF\xBF\xBD \xEF\xBF\xBD end"),
		    "%s", doc);
		cr_assert(!th_contains(doc, "<script") && !th_contains(doc, "<i>") &&
		              !th_contains(doc, "<p>") && !th_contains(doc, "<b>"),
		          "%s", doc);
		cr_assert(th_contains(doc, "migrate &lt;p&gt; &amp; &quot;q&quot;"), "%s", doc);
	}
	cr_assert(th_contains(svg, "V1__&lt;b&gt;&amp;"), "%s", svg);
	/* and a parser reads the names back as they were */
	char *got = svg_services(svg_path);
	cr_assert_str_eq(got, "x<&\"'>y\nok\n");
	/* no temporary left beside the files */
	char cmd[700], *ls;
	snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
	th_sh(cmd, &ls);
	cr_assert_str_eq(ls, "a&b.svg\na'b.html\n");
	free(ls);
	free(got);
	free(svg);
	free(html);
	free(dir);
	fl_timeline_free(t);
}

Test(timeline, a_file_that_cannot_be_written_is_an_error_naming_it)
{
	const char *names[] = {"a"};
	fl_timeline *t = fl_timeline_new(names, 1);
	fl_error *err = NULL;
	cr_assert_eq(fl_timeline_write(t, "/nonexistent-dir/x.html", "/nonexistent-dir/x.svg", &err), -1);
	cr_assert_str_eq(err->msg, "--html: cannot write /nonexistent-dir/x.html: No such file or directory");
	cr_assert_str_eq(err->next->msg,
	                 "--svg: cannot write /nonexistent-dir/x.svg: No such file or directory");
	fl_error_free(err);
	fl_timeline_free(t);
}

Test(timeline, a_thousand_services_merge_their_migrations_and_stay_small)
{
	enum { N = 1000, MIGS = 40 };
	char **names = calloc(N, sizeof(char *));
	for (size_t i = 0; i < N; i++) {
		names[i] = malloc(32);
		snprintf(names[i], 32, "tenant_%04zu", i);
	}
	fl_timeline *t = fl_timeline_new((const char *const *)names, N);
	for (size_t i = 0; i < N; i++)
		ev(t, i, -1, FL_EV_WAITING, 0, 0, 0, NULL);
	double clock[8] = {0};
	for (size_t i = 0; i < N; i++) { /* round robin over 8 workers */
		int w = (int)(i % 8);
		double at = clock[w];
		ev(t, i, w, FL_EV_CONNECTING, at, 0, 0, NULL);
		at += 0.01;
		for (int k = 0; k < MIGS; k++) {
			ev(t, i, w, FL_EV_APPLYING, at, k + 1, 0, "V1__x");
			at += 0.001;
			ev(t, i, w, FL_EV_APPLIED, at, k + 1, 1, "V1__x");
		}
		ev(t, i, w, FL_EV_DONE, at, 0, 0, NULL);
		clock[w] = at;
	}
	fl_timeline_set_run(t, "migrate tenants", FL_RUN_OK, 0, clock[0]);
	char *svg = fl_timeline_svg(t), *html = fl_timeline_html(t);
	cr_assert(
	    th_contains(svg, "more than 2000 migrations: each service's migrations are drawn as one span"));
	cr_assert(th_contains(svg, "<title>tenant_0000: 40 migrations, "), "one span with the count");
	cr_assert(!th_contains(svg, "class=\"span migration\""), "no single migration drawn");
	/* a page a browser opens at once: well under 2 MB for 1,000 services and 40,000 migrations */
	cr_assert_lt(strlen(svg), 2u << 20, "%zu bytes", strlen(svg));
	cr_assert_lt(strlen(html), 3u << 20, "%zu bytes", strlen(html));
	size_t rows = 0;
	for (const char *p = html; (p = strstr(p, "<tr class=")); p++)
		rows++;
	cr_assert_eq(rows, N);
	/* 125 services a worker, the last worker's chain; the text names 12 and sums the rest */
	size_t n;
	size_t *path = fl_timeline_critical(t, &n);
	cr_assert_eq(n, 125);
	free(path);
	char *text = fl_timeline_critical_text(t);
	cr_assert(th_contains(text, ", and 113 more services "), "%s", text);
	free(text);
	free(svg);
	free(html);
	fl_timeline_free(t);
	for (size_t i = 0; i < N; i++)
		free(names[i]);
	free(names);
}

/* ---- through the binary ---- */

struct fleet {
	char *dir;
	char project[48];
	char manifest[600];
	char names[3][32];
};

/* Three services: slow (one migration of 1 s, the biggest files, so it starts first), quick, third. */
static void fleet_init(struct fleet *f, const char *tag)
{
	static int n;
	f->dir = th_tmpdir();
	snprintf(f->project, sizeof(f->project), "tl%d_%d", (int)getpid(), ++n);
	snprintf(f->manifest, sizeof(f->manifest), "%s/flotilla.toml", f->dir);
	const char *base[] = {"slow", "quick", "third"};
	char buf[4096];
	int len = snprintf(
	    buf, sizeof(buf),
	    "version = 1\nproject = \"%s\"\n\n"
	    "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	    "service_passwords = false\n\n"
	    "[settings]\nlock_timeout = \"5s\"\n\n"
	    "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	    "migrations = \"svc/${service}\"\n\n",
	    f->project);
	for (int i = 0; i < 3; i++) {
		snprintf(f->names[i], sizeof(f->names[i]), "%s_%s", base[i], tag);
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "[services.%s]\n", f->names[i]);
		char rel[256];
		snprintf(rel, sizeof(rel), "svc/%s/V1__first.sql", f->names[i]);
		th_write(f->dir, rel, "CREATE TABLE t1 (id int PRIMARY KEY);\n");
		snprintf(rel, sizeof(rel), "svc/%s/V2__second.sql", f->names[i]);
		th_write(f->dir, rel,
		         i == 0 ? "-- the slow one: the longest files start first\n"
		                  "-- ..............................................................\n"
		                  "SELECT pg_sleep(1.0);\nCREATE TABLE t2 (id int);\n"
		                : "CREATE TABLE t2 (id int);\n");
	}
	th_write(f->dir, "flotilla.toml", buf);
}

static void fleet_drop(struct fleet *f)
{
	PGconn *c = th_connect("postgres");
	char sql[512];
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s_%s\" WITH (FORCE)", f->project,
		         f->names[i]);
		th_exec(c, sql);
	}
	PQfinish(c);
	free(f->dir);
}

static int fleet_run(struct fleet *f, char **out, char **err, const char *const *args)
{
	const char *argv[32] = {"flotilla", "-m", f->manifest, "-e", "test"};
	size_t n = 5;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return th_run(f->dir, NULL, out, err, argv);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * Requests the page itself made, from chromium's net log: the browser's own
 * (update checks and the like, which no flag fully silences) send no
 * User-Agent, a page's requests do.
 */
static char *page_requests(const char *netlog)
{
	char cmd[1024], *out;
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 -c 'import json, sys\n"
	         "d = json.load(open(sys.argv[1]))\n"
	         "for e in d[\"events\"]:\n"
	         "    p = e.get(\"params\", {})\n"
	         "    h = p.get(\"request_headers\", {})\n"
	         "    h = h.get(\"headers\", []) if isinstance(h, dict) else h\n"
	         "    if \"url\" in p and any(\"HeadlessChrome\" in x for x in h): print(p[\"url\"])' '%s'",
	         netlog);
	cr_assert_eq(th_sh(cmd, &out), 0, "%s", out);
	return out;
}

/* chromium on page: the DOM; the page's console and its requests into *console and *requests */
static char *browse(const char *dir, const char *page, char **console, char **requests)
{
	char args[1024], errf[700], netlog[700], *dom;
	static int n;
	snprintf(errf, sizeof(errf), "%s/chromium-%d.err", dir, ++n);
	snprintf(netlog, sizeof(netlog), "%s/chromium-%d.netlog", dir, n);
	snprintf(args, sizeof(args), "--enable-logging=stderr --v=0 --log-net-log='%s' --dump-dom", netlog);
	cr_assert_eq(th_chromium(dir, args, page, errf, &dom), 0, "%s", dom);
	char *log = th_read(errf);
	/* the page's console lines (a blocked load is one: the policy says so there) */
	size_t cap = strlen(log) + 1, len = 0;
	*console = calloc(1, cap);
	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, ":CONSOLE")) {
			len += (size_t)snprintf(*console + len, cap - len, "%s\n", line);
		}
	free(log);
	*requests = page_requests(netlog);
	return dom;
}

Test(timeline, migrate_html_page_in_headless_chromium, .timeout = 300)
{
	struct fleet f;
	fleet_init(&f, "ch");
	char page[700], pic[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	snprintf(pic, sizeof(pic), "%s/run.svg", f.dir);
	char *out, *err;
	int rc = fleet_run(
	    &f, &out, &err,
	    (const char *const[]){"migrate", "-j", "2", "--plain", "--html", page, "--svg", pic, NULL});
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	char *html = th_read(page);
	cr_assert(th_contains(html,
	                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	                      "style-src 'unsafe-inline'\">"),
	          "%s", html);

	char *console, *requests;
	char *dom = browse(f.dir, page, &console, &requests);
	cr_assert_str_eq(console, "", "the page's console");
	cr_assert_str_eq(requests, "", "requests the page made");
	/* one bar row per service, each with its migrations; the slow one is slowest and critical */
	cr_assert_eq(count(dom, "<g class=\"row service"), 3, "%s", dom);
	char want[512];
	snprintf(want, sizeof(want),
	         "<g class=\"row service critical slowest\" data-service=\"%s\" data-outcome=\"ok\" "
	         "data-migrations=\"2\" data-critical=\"true\" data-slowest=\"true\">",
	         f.names[0]);
	cr_assert(th_contains(dom, want), "%s\n%s", want, dom);
	for (int i = 1; i < 3; i++) {
		snprintf(want, sizeof(want), "data-service=\"%s\" data-outcome=\"ok\" data-migrations=\"2\">",
		         f.names[i]);
		cr_assert(th_contains(dom, want), "%s\n%s", want, dom);
	}
	/* the line that says what the path is: the phases, then the slow service alone */
	snprintf(want, sizeof(want), ", %s ", f.names[0]);
	cr_assert(th_contains(dom, "<p id=\"critical\" class=\"critical-text\">critical path: preflight "),
	          "%s", dom);
	cr_assert(th_contains(dom, "provisioning ") && th_contains(dom, want), "%s", dom);
	snprintf(want, sizeof(want), "<tr class=\"ok critical slowest\" data-service=\"%s\">", f.names[0]);
	cr_assert(th_contains(dom, want), "%s", dom);

	/* the checker sees a page that does reach out: the same browser, a page with a remote image */
	char bad[700];
	snprintf(bad, sizeof(bad), "%s/bad.html", f.dir);
	th_write(f.dir, "bad.html",
	         "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>");
	char *bc, *br, *bdom = browse(f.dir, bad, &bc, &br);
	cr_assert(th_contains(br, "http://127.0.0.1:9/x.png"), "the check finds a request: %s", br);
	free(bdom);
	free(bc);
	free(br);

	/* the SVG: XML, every service a row */
	char *names = svg_services(pic);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "%s\n", f.names[i]);
		cr_assert(th_contains(names, want), "%s", names);
	}
	free(names);
	free(dom);
	free(console);
	free(requests);
	free(html);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(timeline, a_failed_migration_shows_its_service_failed_with_the_error, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "fa");
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V2__second.sql", f.names[1]);
	th_write(f.dir, rel, "CREATE TABLE t2 (id int);\nSELECT nope FROM no_such_table;\n");
	char page[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", "--html", page, NULL});
	cr_assert_eq(rc, 1, "stdout: %s\nstderr: %s", out, err);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	char *html = th_read(page);
	cr_assert(th_contains(html, "<h1>migrate "), "%s", html);
	cr_assert(th_contains(html, ": <span class=\"result failed\">failed</span></h1>"), "%s", html);
	char want[1024];
	snprintf(want, sizeof(want),
	         "<tr class=\"failed\" data-service=\"%s\"><td class=\"service\">%s</td><td "
	         "class=\"outcome\">FAILED"
	         "</td><td class=\"migrations\">1</td>",
	         f.names[1], f.names[1]);
	cr_assert(th_contains(html, want), "%s\n%s", want, html);
	/* the error as the JSON document has it, escaped */
	json_t *errs = json_object_get(doc, "errors");
	const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
	cr_assert(msg && th_contains(msg, "relation \"no_such_table\" does not exist"), "%s", out);
	cr_assert(th_contains(html, "relation &quot;no_such_table&quot; does not exist"), "%s", html);
	snprintf(want, sizeof(want), "svc/%s/V2__second.sql:2:", f.names[1]);
	cr_assert(th_contains(html, want), "the file:line:col: %s", html);
	snprintf(want, sizeof(want), "data-service=\"%s\" data-outcome=\"failed\" data-migrations=\"1\"",
	         f.names[1]);
	cr_assert(th_contains(html, want), "%s", html);
	cr_assert(th_contains(html, "<rect class=\"span migration failed\""), "%s", html);
	json_decref(doc);
	free(html);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(timeline, a_run_refused_before_it_started_still_writes_its_page, .timeout = 120)
{
	struct fleet f;
	fleet_init(&f, "in");
	char page[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err,
	                   (const char *const[]){"migrate", "no_such_service", "--html", page, NULL});
	cr_assert_eq(rc, 2, "stdout: %s\nstderr: %s", out, err);
	char *html = th_read(page);
	cr_assert(th_contains(html, ": <span class=\"result invalid\">invalid</span></h1>"), "%s", html);
	cr_assert(th_contains(html, "<p id=\"summary\">exit code 2, "), "%s", html);
	cr_assert(th_contains(html, "critical path: preflight "), "%s", html);
	cr_assert_eq(count(html, "<g class=\"row service"), 0, "%s", html);
	free(html);
	free(out);
	free(err);
	free(f.dir);
}

Test(timeline, an_unwritable_page_is_a_warning_and_the_run_keeps_its_exit_code, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "uw");
	char page[700];
	snprintf(page, sizeof(page), "%s/no/such/dir/run.html", f.dir);
	char *out, *err;
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--json", "--html", page, NULL});
	cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
	char want[1024];
	snprintf(want, sizeof(want),
	         "flotilla: warning: --html: cannot write %s: No such file or directory\n", page);
	cr_assert(th_contains(err, want), "%s", err);
	json_t *doc = json_loads(out, 0, NULL);
	cr_assert(doc, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "result")), "ok");
	json_t *w = json_object_get(doc, "warnings");
	snprintf(want, sizeof(want), "--html: cannot write %s: No such file or directory", page);
	cr_assert_eq(json_array_size(w), 1, "%s", out);
	cr_assert_str_eq(json_string_value(json_array_get(w, 0)), want);
	json_decref(doc);
	free(out);
	free(err);
	fleet_drop(&f);
}

Test(timeline, an_interrupted_run_writes_the_page_of_what_it_stopped, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "si");
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V2__second.sql", f.names[0]);
	th_write(f.dir, rel, "SELECT pg_sleep(30);\n");
	char page[700], outp[700], errp[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	snprintf(outp, sizeof(outp), "%s/run.out", f.dir);
	snprintf(errp, sizeof(errp), "%s/run.err", f.dir);
	pid_t pid = th_spawn(f.dir, NULL, outp, errp,
	                     (const char *const[]){"flotilla", "-m", f.manifest, "-e", "test", "migrate",
	                                           "--plain", "--html", page, NULL});
	/* the sleep runs: interrupt flotilla (our direct child) once */
	char db[128];
	snprintf(db, sizeof(db), "%s_%s", f.project, f.names[0]);
	cr_assert(th_wait_statement(db, "%pg_sleep(30)%"), "the migration never started: %s", th_read(errp));
	kill(pid, SIGINT);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d: %s", WEXITSTATUS(st),
	          th_read(errp));
	char *html = th_read(page);
	cr_assert(th_contains(html, ": <span class=\"result interrupted\">interrupted</span></h1>"), "%s",
	          html);
	cr_assert(th_contains(html, "<p id=\"summary\">exit code 130, "), "%s", html);
	/* the service stopped in its migration: cancelled, the span it was in marked */
	char want[512];
	snprintf(want, sizeof(want), "data-service=\"%s\" data-outcome=\"cancelled\" data-migrations=\"1\"",
	         f.names[0]);
	cr_assert(th_contains(html, want), "%s\n%s", want, html);
	cr_assert(th_contains(html, "V2__second"), "%s", html);
	free(html);
	fleet_drop(&f);
}

Test(timeline, ddl_lock_retries_are_drawn_and_counted, .timeout = 240)
{
	struct fleet f;
	fleet_init(&f, "lr");
	char *out, *err;
	cr_assert_eq(fleet_run(&f, &out, &err, (const char *const[]){"migrate", NULL}), 0, "%s", err);
	free(out);
	free(err);
	/* short lock waits, two retries */
	char *m = th_read(f.manifest);
	char *at = strstr(m, "lock_timeout = \"5s\"\n");
	cr_assert(at);
	*at = '\0';
	char manifest[8192];
	snprintf(manifest, sizeof(manifest),
	         "%slock_timeout = \"100ms\"\nlock_retries = 2\nlock_retry_interval = \"100ms\"\n%s", m,
	         at + strlen("lock_timeout = \"5s\"\n"));
	th_write(f.dir, "flotilla.toml", manifest);
	free(m);
	char rel[256];
	snprintf(rel, sizeof(rel), "svc/%s/V3__alter.sql", f.names[1]);
	th_write(f.dir, rel, "ALTER TABLE t1 ADD COLUMN x int;\n");
	/* a reader holds the table for the whole run */
	char db[128];
	snprintf(db, sizeof(db), "%s_%s", f.project, f.names[1]);
	PGconn *reader = th_connect(db);
	th_exec(reader, "BEGIN; LOCK TABLE t1 IN ACCESS SHARE MODE");
	char page[700];
	snprintf(page, sizeof(page), "%s/run.html", f.dir);
	int rc = fleet_run(&f, &out, &err, (const char *const[]){"migrate", "--plain", "--html", page, NULL});
	PQfinish(reader);
	cr_assert_eq(rc, 1, "stdout: %s\nstderr: %s", out, err);
	/* the plain log still says it, as before the timeline had its own kind for it */
	cr_assert(th_contains(err, ": retry 1 of 2 in ") && th_contains(err, ": retry 2 of 2 in "), "%s",
	          err);
	char *html = th_read(page);
	cr_assert_eq(count(html, "<rect class=\"overlay lock-retry\""), 2, "%s", html);
	char want[512];
	snprintf(want, sizeof(want),
	         "data-service=\"%s\"><td class=\"service\">%s</td><td class=\"outcome\">FAILED", f.names[1],
	         f.names[1]);
	cr_assert(th_contains(html, want), "%s\n%s", want, html);
	cr_assert(th_contains(html, "<td class=\"retries\">2</td>"), "%s", html);
	cr_assert(th_contains(html, ": lock-retry "), "the tooltip: %s", html);
	free(html);
	free(out);
	free(err);
	fleet_drop(&f);
}
