/* The thread pool on its own: every job runs once, events arrive in order per job, cancels. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchestrate.h"
#include "report.h"
#include "text.h"

struct seen {
	int events[16][16];
	int nevents[16];
	int done[16];
};

static void on_event(void *ctx, const fl_event *ev)
{
	struct seen *s = ctx;
	cr_assert(ev->job < 16);
	s->events[ev->job][s->nevents[ev->job]++] = (int)ev->kind;
	if (ev->kind == FL_EV_DONE)
		s->done[ev->job]++;
}

static int job_ok(fl_orch_worker *w, size_t job, void *arg)
{
	(void)arg;
	fl_orch_post(w, FL_EV_CONNECTING, 0, 0, 0, NULL);
	for (int i = 1; i <= 3; i++)
		fl_orch_post(w, FL_EV_APPLYING, i, 3, 0, "V1__x");
	fl_orch_post(w, FL_EV_DONE, 0, 0, 0, NULL);
	return job == 5 ? 1 : 0;
}

Test(orchestrate, every_job_once_in_order)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	int results[12];
	fl_orch_opts o = {.threads = 3, .on_event = on_event, .event_ctx = &s};
	cr_assert_eq(fl_orch_run(12, job_ok, NULL, &o, results), 0);
	for (int j = 0; j < 12; j++) {
		cr_assert_eq(results[j], j == 5 ? 1 : 0, "job %d", j);
		cr_assert_eq(s.done[j], 1);
		cr_assert_eq(s.nevents[j], 6);
		cr_assert_eq(s.events[j][0], FL_EV_WAITING);
		cr_assert_eq(s.events[j][1], FL_EV_CONNECTING);
		cr_assert_eq(s.events[j][5], FL_EV_DONE);
	}
}

static int job_slow(fl_orch_worker *w, size_t job, void *arg)
{
	atomic_int *started = arg;
	atomic_fetch_add(started, 1);
	if (job == 0)
		return 1; /* the first failure */
	for (int i = 0; i < 200 && !fl_orch_cancelled(w); i++)
		usleep(10000);
	return fl_orch_cancelled(w) ? 130 : 0;
}

Test(orchestrate, fail_fast_cancels_the_others)
{
	atomic_int started = 0;
	int results[6];
	fl_orch_opts o = {.threads = 2, .fail_fast = true};
	cr_assert_eq(fl_orch_run(6, job_slow, &started, &o, results), 0);
	cr_assert_eq(results[0], 1);
	cr_assert_eq(results[1], 130, "the running job must see the cancel");
	for (int j = 2; j < 6; j++)
		cr_assert_eq(results[j], 130, "job %d must not start after a fail-fast cancel", j);
	cr_assert_leq(atomic_load(&started), 3);
}

Test(orchestrate, without_fail_fast_all_finish)
{
	atomic_int started = 0;
	int results[3];
	fl_orch_opts o = {.threads = 3};
	/* job 0 fails; 1 and 2 run their full 2 s unless cancelled: shorten by design of job_slow */
	cr_assert_eq(fl_orch_run(3, job_slow, &started, &o, results), 0);
	cr_assert_eq(results[0], 1);
	cr_assert_eq(results[1], 0);
	cr_assert_eq(results[2], 0);
}

Test(report, plain_lines_have_no_escapes)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *names[] = {"auth", "user"};
	fl_report *r = fl_report_new(f, FL_REPORT_LIVE, "migrate", names, 2);
	cr_assert_eq(r->mode, FL_REPORT_PLAIN, "a memory stream is not a terminal");
	fl_event ev = {.job = 1, .kind = FL_EV_APPLYING, .index = 3, .total = 7, .text = "V3__add_sessions"};
	fl_report_event(r, &ev);
	r->services[1].outcome = FL_OUTCOME_OK;
	fl_report_summary(r, f);
	fl_report_free(r);
	fclose(f);
	cr_assert(strstr(buf, "user: applying V3__add_sessions (3/7)\n"), "got: %s", buf);
	cr_assert(!strchr(buf, '\x1b'), "escape sequence in plain output: %s", buf);
	free(buf);
}

static int job_record(fl_orch_worker *w, size_t job, void *arg)
{
	(void)w;
	size_t *log = arg;
	log[log[0]++ + 1] = job; /* one thread: no race */
	return 0;
}

Test(orchestrate, jobs_start_in_the_given_order)
{
	size_t log[8] = {0};
	const size_t order[] = {3, 0, 2, 1};
	int results[4];
	fl_orch_opts o = {.threads = 1, .order = order};
	cr_assert_eq(fl_orch_run(4, job_record, log, &o, results), 0);
	cr_assert_eq(log[0], 4);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(log[i + 1], order[i], "start %zu", i);
}

Test(report, printable_escapes_what_a_terminal_would_hide)
{
	char *s = fl_text_printable("a\x1b[2Jb\tc\xe2\x80\xae"
	                            "d\xe2\x80\x8b"
	                            "e\xff",
	                            0);
	cr_assert_str_eq(s, "a\\x1b[2Jb c<U+202E>d<U+200B>e\\xff");
	free(s);
	s = fl_text_printable("caf\xc3\xa9 ok", 0);
	cr_assert_str_eq(s, "caf\xc3\xa9 ok", "plain UTF-8 stays as it is");
	free(s);
	s = fl_text_printable("abcdefghij", 5);
	cr_assert_str_eq(s, "abcd\xe2\x80\xa6");
	free(s);
	s = fl_text_printable("abc", 5);
	cr_assert_str_eq(s, "abc");
	free(s);
}
