#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RED    "\x1b[31m"
#define GREEN  "\x1b[32m"
#define YELLOW "\x1b[33m"
#define DIM    "\x1b[2m"
#define RESET  "\x1b[0m"

#include "text.h"

/* Columns of the terminal `out` is, read at every draw so that a resize is followed. */
static size_t term_width(FILE *out)
{
	struct winsize ws;
	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	long n = c ? strtol(c, NULL, 10) : 0;
	return n > 0 && n < 10000 ? (size_t)n : 80;
}

fl_report *fl_report_new(FILE *out, fl_report_mode mode, const char *verb, const char *const *names, size_t n)
{
	fl_report *r = fl_calloc(1, sizeof(*r));
	r->out = out;
	r->mode = mode;
	if (mode == FL_REPORT_LIVE && !isatty(fileno(out)))
		r->mode = FL_REPORT_PLAIN;
	/* A view taller than the terminal cannot be redrawn in place (the cursor does not go up
	 * into the scrollback), and redrawing hundreds of rows per finished service would print
	 * O(n^2) lines: a fleet that does not fit gets one line per event instead. */
	struct winsize ws;
	if (r->mode == FL_REPORT_LIVE && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
	    n + 2 > ws.ws_row)
		r->mode = FL_REPORT_PLAIN;
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	r->color = r->mode == FL_REPORT_LIVE && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
	r->verb = verb;
	r->services = fl_calloc(n ? n : 1, sizeof(fl_report_service));
	r->nservices = n;
	for (size_t i = 0; i < n; i++) {
		r->services[i].name = fl_strdup(names[i]);
		r->services[i].started = -1;
		r->services[i].finished = -1;
		r->services[i].outcome = FL_OUTCOME_NOT_RUN;
	}
	r->last_draw = -1;
	return r;
}

void fl_report_free(fl_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nservices; i++) {
		fl_report_service *s = &r->services[i];
		free(s->name);
		free(s->state_text);
		free(s->reason);
		free(s->version_before);
		free(s->version_after);
		for (size_t k = 0; k < s->nmigrations; k++) {
			free(s->migrations[k].version);
			free(s->migrations[k].script);
			free(s->migrations[k].description);
		}
		free(s->migrations);
		fl_error_free(s->error);
	}
	free(r->services);
	free(r);
}

void fl_report_add_migration(fl_report_service *s, const char *version, const char *script,
                             const char *description, int32_t checksum, long ms)
{
	s->migrations = fl_realloc(s->migrations, (s->nmigrations + 1) * sizeof(*s->migrations));
	fl_report_migration *m = &s->migrations[s->nmigrations++];
	m->version = version ? fl_strdup(version) : NULL;
	m->script = fl_strdup(script);
	m->description = fl_strdup(description ? description : "");
	m->checksum = checksum;
	m->ms = ms;
}

/* "applying V3__add_sessions (3/7)" and friends; a new string. */
static char *state_line(const fl_report_service *s)
{
	const char *t = s->state_text ? s->state_text : "";
	switch (s->state) {
	case FL_EV_WAITING:
		return fl_strdup("waiting");
	case FL_EV_CONNECTING:
		return *t ? fl_strdup(t) : fl_strdup("connecting");
	case FL_EV_LOCK_WAIT:
		return fl_strdup("waiting for lock");
	case FL_EV_PLANNED:
		return s->total ? fl_asprintf("%d pending", s->total) : fl_strdup("up to date");
	case FL_EV_APPLYING:
	case FL_EV_APPLIED:
		return fl_asprintf("applying %s (%d/%d)", t, s->index, s->total);
	case FL_EV_MESSAGE:
		return fl_strdup(t);
	case FL_EV_SKIPPED:
		return fl_asprintf("skipped: %s", t);
	case FL_EV_DONE:
		return fl_asprintf("done%s%s", *t ? ": " : "", t);
	case FL_EV_FAILED:
		return *t ? fl_asprintf("failed: %s", t) : fl_strdup("failed");
	case FL_EV_CANCELLED:
		return fl_strdup("cancelled");
	case FL_EV_LOCKED: /* the timeline's: never a state here (fl_report_event) */
	case FL_EV_LOCK_RETRY:
	case FL_EV_TURN_WAIT:
	case FL_EV_TURN:
		break;
	}
	return fl_strdup("");
}

/* Seconds a service has been (or was) at work, as the live view shows it. */
static double elapsed(const fl_report *r, const fl_report_service *s)
{
	if (s->started < 0)
		return -1;
	double end = s->finished >= s->started ? s->finished : r->now;
	return end > s->started ? end - s->started : 0;
}

/*
 * One line per service, each cut to the terminal's width (a wrapped line
 * would throw the cursor-up redraw off by a row), names and messages with
 * their control and invisible characters escaped.
 */
static void draw_live(fl_report *r, bool force)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	double wall = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	/* a redraw per event would flood a slow terminal on 1,000 small migrations */
	if (!force && r->last_draw >= 0 && wall - r->last_draw < 0.05)
		return;
	r->last_draw = wall;
	size_t cols = term_width(r->out);
	size_t width = 0;
	char **names = fl_calloc(r->nservices ? r->nservices : 1, sizeof(char *));
	for (size_t i = 0; i < r->nservices; i++) {
		names[i] = fl_text_printable(r->services[i].name, 0);
		if (strlen(names[i]) > width)
			width = strlen(names[i]);
	}
	if (r->drawn_lines > 0)
		fprintf(r->out, "\x1b[%dA", r->drawn_lines);
	for (size_t i = 0; i < r->nservices; i++) {
		fl_report_service *s = &r->services[i];
		char *state = state_line(s);
		const char *col = "", *end = "";
		if (r->color) {
			end = RESET;
			if (s->state == FL_EV_DONE)
				col = GREEN;
			else if (s->state == FL_EV_FAILED || s->state == FL_EV_CANCELLED)
				col = RED;
			else if (s->state == FL_EV_LOCK_WAIT)
				col = YELLOW;
			else if (s->state == FL_EV_WAITING || s->state == FL_EV_SKIPPED)
				col = DIM;
			else
				end = "";
		}
		char bar[24] = "";
		if ((s->state == FL_EV_APPLYING || s->state == FL_EV_APPLIED) && s->total > 0) {
			int filled = s->index * 20 / s->total;
			bar[0] = '[';
			for (int k = 0; k < 20; k++)
				bar[k + 1] = k < filled ? '#' : ' ';
			bar[21] = ']';
			bar[22] = ' ';
			bar[23] = '\0';
		}
		char secs[32] = "";
		double e = elapsed(r, s);
		if (e >= 0)
			snprintf(secs, sizeof(secs), " (%.1fs)", e);
		char *raw = fl_asprintf("  %-*s  %s%s%s", (int)width, names[i], bar, state, secs);
		char *line = fl_text_printable(raw, cols > 1 ? cols - 1 : 1);
		fprintf(r->out, "\r\x1b[2K%s%s%s\n", col, line, end);
		free(raw);
		free(line);
		free(state);
	}
	for (size_t i = 0; i < r->nservices; i++)
		free(names[i]);
	free(names);
	r->drawn_lines = (int)r->nservices;
	fflush(r->out);
}

static void plain_print(fl_report *r, const fl_event *ev, const char *name, const char *t);

static void plain_line(fl_report *r, const fl_event *ev)
{
	fl_report_service *s = &r->services[ev->job];
	if (ev->kind == FL_EV_WAITING)
		return; /* every service starts so: no news */
	char *name = fl_text_printable(s->name, 0), *text = fl_text_printable(ev->text, 0);
	plain_print(r, ev, name, text);
	free(name);
	free(text);
}

static void plain_print(fl_report *r, const fl_event *ev, const char *name, const char *t)
{
	char ts[32];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	switch (ev->kind) {
	case FL_EV_WAITING:
	case FL_EV_LOCKED: /* the timeline's (fl_report_event) */
	case FL_EV_LOCK_RETRY:
	case FL_EV_TURN_WAIT:
	case FL_EV_TURN:
		return;
	case FL_EV_CONNECTING:
		fprintf(r->out, "%s.%03dZ %s: %s\n", ts, (int)(tv.tv_usec / 1000), name,
		        *t ? t : "connecting");
		break;
	case FL_EV_LOCK_WAIT:
		fprintf(r->out, "%s.%03dZ %s: waiting for lock%s%s\n", ts, (int)(tv.tv_usec / 1000), name,
		        *t ? ": " : "", t);
		break;
	case FL_EV_PLANNED:
		fprintf(r->out, "%s.%03dZ %s: at version %s, %d pending\n", ts, (int)(tv.tv_usec / 1000),
		        name, *t ? t : "<none>", ev->total);
		break;
	case FL_EV_APPLYING:
		fprintf(r->out, "%s.%03dZ %s: applying %s (%d/%d)\n", ts, (int)(tv.tv_usec / 1000), name, t,
		        ev->index, ev->total);
		break;
	case FL_EV_APPLIED:
		fprintf(r->out, "%s.%03dZ %s: applied %s in %ld ms\n", ts, (int)(tv.tv_usec / 1000), name, t,
		        ev->ms);
		break;
	case FL_EV_MESSAGE:
		fprintf(r->out, "%s.%03dZ %s: %s\n", ts, (int)(tv.tv_usec / 1000), name, t);
		break;
	case FL_EV_SKIPPED:
		fprintf(r->out, "%s.%03dZ %s: skipped: %s\n", ts, (int)(tv.tv_usec / 1000), name, t);
		break;
	case FL_EV_DONE:
		fprintf(r->out, "%s.%03dZ %s: done%s%s\n", ts, (int)(tv.tv_usec / 1000), name, *t ? ": " : "",
		        t);
		break;
	case FL_EV_FAILED:
		fprintf(r->out, "%s.%03dZ %s: failed: %s\n", ts, (int)(tv.tv_usec / 1000), name, t);
		break;
	case FL_EV_CANCELLED:
		fprintf(r->out, "%s.%03dZ %s: cancelled%s%s\n", ts, (int)(tv.tv_usec / 1000), name,
		        *t ? ": " : "", t);
		break;
	}
	fflush(r->out);
}

void fl_report_event(void *ctx, const fl_event *ev)
{
	fl_report *r = ctx;
	if (ev->job >= r->nservices)
		return;
	if (ev->kind == FL_EV_LOCK_RETRY ||
	    ev->kind == FL_EV_TURN_WAIT) { /* the timeline's kinds; a line here */
		fl_event m = *ev;
		m.kind = FL_EV_MESSAGE;
		fl_report_event(ctx, &m);
		return;
	}
	if (ev->kind > FL_EV_CANCELLED) /* the timeline's kinds (orchestrate.h) */
		return;
	fl_report_service *s = &r->services[ev->job];
	if (ev->at > r->now)
		r->now = ev->at;
	if (ev->kind != FL_EV_MESSAGE) {
		s->state = ev->kind;
		free(s->state_text);
		s->state_text = ev->text ? fl_strdup(ev->text) : NULL;
	}
	switch (ev->kind) {
	case FL_EV_CONNECTING:
		if (s->started < 0)
			s->started = ev->at;
		break;
	case FL_EV_PLANNED:
		s->total = ev->total;
		s->index = 0;
		break;
	case FL_EV_APPLYING:
		s->index = ev->index;
		s->total = ev->total;
		break;
	case FL_EV_DONE:
	case FL_EV_FAILED:
	case FL_EV_CANCELLED:
	case FL_EV_SKIPPED:
		s->finished = ev->at;
		break;
	default:
		break;
	}
	if (r->mode == FL_REPORT_LIVE)
		draw_live(r, ev->kind >= FL_EV_SKIPPED && ev->kind != FL_EV_MESSAGE);
	else if (r->mode == FL_REPORT_PLAIN)
		plain_line(r, ev);
}

void fl_report_finish(fl_report *r)
{
	if (r->mode == FL_REPORT_LIVE)
		draw_live(r, true);
}

size_t fl_report_width(FILE *f)
{
	return isatty(fileno(f)) ? term_width(f) : 0;
}

void fl_report_summary(const fl_report *r, FILE *f)
{
	/* on a terminal every line fits it; in a log nothing is cut */
	size_t cols = fl_report_width(f);
	size_t w = strlen("service"), vw = strlen("version");
	size_t n = r->nservices;
	char **names = fl_calloc(n ? n : 1, sizeof(char *));
	char **vers = fl_calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const fl_report_service *s = &r->services[i];
		names[i] = fl_text_printable(s->name, 0);
		const char *b = s->version_before ? s->version_before : "-";
		const char *a = s->version_after ? s->version_after : b;
		vers[i] = strcmp(a, b) == 0 ? fl_text_printable(b, 0) : fl_asprintf("%s -> %s", b, a);
		if (strlen(names[i]) > w)
			w = strlen(names[i]);
		if (strlen(vers[i]) > vw)
			vw = strlen(vers[i]);
	}
	/* a narrow terminal drops the counts, never the result */
	bool compact = cols && w + vw + 2 + 9 + 10 + 12 > cols;
	char *head = compact ? fl_asprintf("%-*s  %-*s  %s", (int)w, "service", (int)vw, "version", "result")
	                     : fl_asprintf("%-*s  %-*s  %7s  %8s  %s", (int)w, "service", (int)vw, "version",
	                                   "applied", "time", "result");
	char *hl = fl_text_printable(head, cols > 1 ? cols - 1 : 0);
	fprintf(f, "\n%s\n", hl);
	free(head);
	free(hl);
	const fl_report_service *slowest = NULL;
	for (size_t i = 0; i < n; i++) {
		const fl_report_service *s = &r->services[i];
		double secs = s->started >= 0 && s->finished >= s->started ? s->finished - s->started : 0;
		if (s->started >= 0 && (!slowest || secs > slowest->finished - slowest->started))
			slowest = s;
		const char *sep = s->reason ? ": " : "", *why = s->reason ? s->reason : "";
		char *raw = compact ? fl_asprintf("%-*s  %-*s  %s%s%s", (int)w, names[i], (int)vw, vers[i],
		                                  fl_outcome_words(s->outcome), sep, why)
		                    : fl_asprintf("%-*s  %-*s  %7zu  %7.2fs  %s%s%s", (int)w, names[i],
		                                  (int)vw, vers[i], s->nmigrations, secs,
		                                  fl_outcome_words(s->outcome), sep, why);
		char *line = fl_text_printable(raw, cols > 1 ? cols - 1 : 0);
		fprintf(f, "%s\n", line);
		free(raw);
		free(line);
	}
	char *tail = slowest && n > 1 ? fl_asprintf("wall time %.2fs; slowest: %s (%.2fs)", r->wall,
	                                            slowest->name, slowest->finished - slowest->started)
	                              : fl_asprintf("wall time %.2fs", r->wall);
	char *tl = fl_text_printable(tail, cols > 1 ? cols - 1 : 0);
	fprintf(f, "\n%s\n", tl);
	free(tail);
	free(tl);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(vers[i]);
	}
	free(names);
	free(vers);
}
