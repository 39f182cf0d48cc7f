/*
 * timeline: see timeline.h. The spans of a service follow its events: each
 * event closes the span that was open and opens the next one, so the spans
 * of a row never overlap and nothing between two events goes undrawn.
 * Retries are overlays on top of the span they happened in.
 */
#include "timeline.h"
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *fl_timeline_kind_name(fl_timeline_kind k)
{
	static const char *names[] = {"queued",    "connect",    "connect-retry", "lock-wait", "prepare",
	                              "migration", "migrations", "lock-retry",    "turn-wait"};
	return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

fl_timeline *fl_timeline_new(const char *const *names, size_t n)
{
	fl_timeline *t = fl_calloc(1, sizeof(*t));
	t->n = n;
	t->services = fl_calloc(n ? n : 1, sizeof(*t->services));
	for (size_t i = 0; i < n; i++) {
		fl_timeline_service *s = &t->services[i];
		s->name = fl_strdup(names[i] ? names[i] : "");
		s->worker = -1;
		s->queued = s->start = s->end = -1;
		s->outcome = FL_OUTCOME_NOT_RUN;
	}
	static const char *phase_names[FL_TL_NPHASES] = {"preflight", "provisioning", "jobs"};
	for (int p = 0; p < FL_TL_NPHASES; p++)
		t->phases[p] = (fl_timeline_phase){.name = phase_names[p], .start = -1, .end = -1};
	t->title = fl_strdup("run");
	t->exit_code = -1;
	return t;
}

static void spans_free(fl_timeline_span *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

void fl_timeline_free(fl_timeline *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		fl_timeline_service *s = &t->services[i];
		free(s->name);
		spans_free(s->spans, s->nspans);
		spans_free(s->overlays, s->noverlays);
		free(s->reason);
		free(s->error);
	}
	free(t->services);
	free(t->title);
	free(t);
}

void fl_timeline_phase_start(fl_timeline *t, int phase, double at)
{
	if (t && phase >= 0 && phase < FL_TL_NPHASES)
		t->phases[phase].start = at;
}

void fl_timeline_phase_end(fl_timeline *t, int phase, double at)
{
	if (t && phase >= 0 && phase < FL_TL_NPHASES && t->phases[phase].start >= 0)
		t->phases[phase].end = at;
}

void fl_timeline_set_offset(fl_timeline *t, double offset)
{
	if (t)
		t->offset = offset;
}

/* ---- spans from events ---- */

static fl_timeline_span *push(fl_timeline_span **v, size_t *n, fl_timeline_kind kind, double start,
                              const char *name)
{
	*v = fl_realloc(*v, (*n + 1) * sizeof(**v));
	fl_timeline_span *sp = &(*v)[(*n)++];
	*sp = (fl_timeline_span){
	    .kind = kind, .start = start, .end = -1, .name = name ? fl_strdup(name) : NULL};
	return sp;
}

/* The span still open (end < 0), or NULL. */
static fl_timeline_span *open_span(fl_timeline_service *s)
{
	return s->nspans && s->spans[s->nspans - 1].end < 0 ? &s->spans[s->nspans - 1] : NULL;
}

/* Closes the open span at `at`; a planning step too short to see is dropped. */
static fl_timeline_kind close_span(fl_timeline_service *s, double at)
{
	fl_timeline_span *sp = open_span(s);
	if (!sp)
		return (fl_timeline_kind)-1;
	fl_timeline_kind k = sp->kind;
	sp->end = at < sp->start ? sp->start : at;
	if (k == FL_TL_LOCK_WAIT)
		s->lock_wait += sp->end - sp->start;
	if (k == FL_TL_TURN_WAIT)
		s->turn_wait += sp->end - sp->start;
	if (k == FL_TL_PREPARE && sp->end - sp->start < 1e-6) {
		free(sp->name);
		s->nspans--;
	}
	return k;
}

static void close_overlay(fl_timeline_service *s, double at)
{
	if (s->noverlays && s->overlays[s->noverlays - 1].end < 0)
		s->overlays[s->noverlays - 1].end = at;
}

void fl_timeline_event(void *ctx, const fl_event *ev)
{
	fl_timeline *t = ctx;
	if (!t || ev->job >= t->n)
		return;
	fl_timeline_service *s = &t->services[ev->job];
	double at = ev->at + t->offset;
	if (ev->kind == FL_EV_WAITING) {
		s->queued = at;
		return;
	}
	if (ev->kind == FL_EV_MESSAGE) /* notices: in the log, not in the picture */
		return;
	if (s->start < 0) { /* the first event from a worker: the job began */
		s->start = at;
		s->worker = ev->worker;
		if (s->queued >= 0) {
			fl_timeline_span *q = push(&s->spans, &s->nspans, FL_TL_QUEUED, s->queued, NULL);
			q->end = at < s->queued ? s->queued : at;
		}
	}
	if (ev->kind != FL_EV_LOCK_RETRY)
		close_overlay(s, at);
	switch (ev->kind) {
	case FL_EV_CONNECTING:
		if (ev->index > 0) { /* attempt index of total failed: the wait for the next one */
			s->connect_retries++;
			push(&s->overlays, &s->noverlays, FL_TL_CONNECT_RETRY, at, ev->text);
			if (!open_span(s))
				push(&s->spans, &s->nspans, FL_TL_CONNECT, at, NULL);
			break;
		}
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_CONNECT, at, NULL);
		break;
	case FL_EV_LOCK_WAIT:
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_LOCK_WAIT, at, ev->text);
		break;
	case FL_EV_TURN_WAIT:
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_TURN_WAIT, at, ev->text);
		break;
	case FL_EV_TURN: /* then the lock, the reads again under it, the ledger: preparing */
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_PREPARE, at, NULL);
		break;
	case FL_EV_LOCKED:
	case FL_EV_PLANNED: {
		fl_timeline_span *o = open_span(s);
		if (o && o->kind == FL_TL_PREPARE)
			break;
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_PREPARE, at, NULL);
		break;
	}
	case FL_EV_APPLYING:
		close_span(s, at);
		push(&s->spans, &s->nspans, FL_TL_MIGRATION, at, ev->text);
		break;
	case FL_EV_APPLIED: {
		fl_timeline_span *o = open_span(s);
		if (o && o->kind == FL_TL_MIGRATION)
			o->ms = ev->ms;
		close_span(s, at);
		s->migrations++;
		push(&s->spans, &s->nspans, FL_TL_PREPARE, at, NULL);
		break;
	}
	case FL_EV_LOCK_RETRY: {
		s->lock_retries++;
		fl_timeline_span *r = push(&s->overlays, &s->noverlays, FL_TL_LOCK_RETRY, at, ev->text);
		r->ms = ev->ms;
		r->end = at + (double)(ev->ms > 0 ? ev->ms : 0) / 1000.0;
		break;
	}
	case FL_EV_DONE:
	case FL_EV_FAILED:
	case FL_EV_CANCELLED:
	case FL_EV_SKIPPED: {
		fl_timeline_span *o = open_span(s);
		if (o && o->kind == FL_TL_MIGRATION && ev->kind != FL_EV_DONE)
			o->failed = true;
		close_span(s, at);
		s->end = at;
		break;
	}
	default:
		break;
	}
}

void fl_timeline_set_outcome(fl_timeline *t, size_t i, fl_outcome o, const char *reason, const char *error)
{
	if (!t || i >= t->n)
		return;
	fl_timeline_service *s = &t->services[i];
	s->outcome = o;
	free(s->reason);
	free(s->error);
	s->reason = reason ? fl_strdup(reason) : NULL;
	s->error = error ? fl_strdup(error) : NULL;
}

void fl_timeline_set_run(fl_timeline *t, const char *title, fl_run_outcome o, int exit_code, double wall)
{
	if (!t)
		return;
	free(t->title);
	t->title = fl_strdup(title ? title : "run");
	t->outcome = o;
	t->exit_code = exit_code;
	t->wall = wall;
}

/* ---- the critical path ---- */

static bool started(const fl_timeline_service *s)
{
	return s->start >= 0 && s->end >= s->start;
}

size_t *fl_timeline_critical(const fl_timeline *t, size_t *n)
{
	*n = 0;
	long last = -1;
	for (size_t i = 0; i < t->n; i++)
		if (started(&t->services[i]) && (last < 0 || t->services[i].end > t->services[last].end))
			last = (long)i;
	if (last < 0)
		return NULL;
	size_t *path = fl_calloc(t->n, sizeof(size_t));
	for (long cur = last; cur >= 0 && *n < t->n;) {
		path[(*n)++] = (size_t)cur;
		/* the job its worker ran before it: the one whose end let it start */
		const fl_timeline_service *c = &t->services[cur];
		long prev = -1;
		for (size_t i = 0; i < t->n; i++) {
			const fl_timeline_service *s = &t->services[i];
			if ((long)i == cur || !started(s) || s->worker != c->worker || s->start >= c->start)
				continue;
			if (prev < 0 || s->start > t->services[prev].start)
				prev = (long)i;
		}
		cur = prev;
	}
	for (size_t i = 0; i < *n / 2; i++) { /* in time order */
		size_t x = path[i];
		path[i] = path[*n - 1 - i];
		path[*n - 1 - i] = x;
	}
	return path;
}

long fl_timeline_slowest(const fl_timeline *t)
{
	long best = -1;
	for (size_t i = 0; i < t->n; i++) {
		const fl_timeline_service *s = &t->services[i];
		if (started(s) &&
		    (best < 0 || s->end - s->start > t->services[best].end - t->services[best].start))
			best = (long)i;
	}
	return best;
}

static bool phase_ran(const fl_timeline_phase *p)
{
	return p->start >= 0 && p->end >= p->start;
}

/* The path's services named in the text: a chain through a thousand tenants is summed up. */
#define CRITICAL_NAMED 12

char *fl_timeline_critical_text(const fl_timeline *t)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "critical path:");
	const char *sep = " ";
	for (int p = FL_TL_PREFLIGHT; p <= FL_TL_PROVISIONING; p++)
		if (phase_ran(&t->phases[p])) {
			fl_buf_printf(&b, "%s%s %.2f s", sep, t->phases[p].name,
			              t->phases[p].end - t->phases[p].start);
			sep = ", ";
		}
	size_t n;
	size_t *path = fl_timeline_critical(t, &n);
	double rest = 0;
	for (size_t k = 0; k < n; k++) {
		const fl_timeline_service *s = &t->services[path[k]];
		if (k < CRITICAL_NAMED) {
			fl_buf_printf(&b, "%s%s %.2f s", sep, s->name, s->end - s->start);
			/* the path goes back through workers, not turns: a wait for one is said */
			if (s->turn_wait >= 0.005)
				fl_buf_printf(&b, " (%.2f s of it waiting for a turn)", s->turn_wait);
			sep = ", ";
		} else {
			rest += s->end - s->start;
		}
	}
	if (n > CRITICAL_NAMED)
		fl_buf_printf(&b, "%sand %zu more services %.2f s", sep, n - CRITICAL_NAMED, rest);
	if (!n && !strcmp(sep, " "))
		fl_buf_puts(&b, " nothing ran");
	free(path);
	return fl_buf_detach(&b);
}

/* ---- text for XML and HTML ---- */

/* Length of a well-formed UTF-8 sequence at s that XML allows, or 0. */
static size_t utf8_char(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return c >= 0x20 || c == '\t' || c == '\n' || c == '\r' ? 1 : 0;
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	if (c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
		return 0; /* U+FFFE, U+FFFF are no characters of XML */
	return len;
}

/* s escaped for text and attribute values of XML and HTML; what XML cannot carry becomes U+FFFD. */
static void esc(fl_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		switch (*p) {
		case '<':
			fl_buf_puts(b, "&lt;");
			break;
		case '>':
			fl_buf_puts(b, "&gt;");
			break;
		case '&':
			fl_buf_puts(b, "&amp;");
			break;
		case '"':
			fl_buf_puts(b, "&quot;");
			break;
		case '\'':
			fl_buf_puts(b, "&#39;");
			break;
		default: {
			size_t len = utf8_char(p);
			if (!len) {
				fl_buf_puts(b, "\xEF\xBF\xBD");
				p++;
				continue;
			}
			fl_buf_add(b, p, len);
			p += len;
			continue;
		}
		}
		p++;
	}
}

/* ---- the picture ---- */

#define W       1100.0
#define LABEL_W 230.0
#define X0      (LABEL_W + 10.0)
#define RIGHT   30.0
#define TOP     78.0

struct layout {
	double tmax, cw, rh, bar, font;
	bool merged; /* migrations drawn one span per service */
	size_t *path, npath;
	long slowest;
};

static double xof(const struct layout *l, double t)
{
	if (t < 0)
		t = 0;
	return X0 + t / l->tmax * l->cw;
}

static const char *fill_of(fl_timeline_kind k, bool failed, size_t nth)
{
	if (failed)
		return "#d93025";
	switch (k) {
	case FL_TL_QUEUED:
		return "#e8eaed";
	case FL_TL_CONNECT:
		return "#8ab4f8";
	case FL_TL_CONNECT_RETRY:
		return "#f9ab00";
	case FL_TL_LOCK_WAIT:
		return "#e8710a";
	case FL_TL_PREPARE:
		return "#bdc1c6";
	case FL_TL_MIGRATION:
		return nth % 2 ? "#2d8f47" : "#34a853"; /* neighbours told apart */
	case FL_TL_MIGRATIONS:
		return "#00897b"; /* not a shade of the single ones: a legend entry of its own */
	case FL_TL_LOCK_RETRY:
		return "#a50e0e";
	case FL_TL_TURN_WAIT:
		return "#c58af9";
	}
	return "#999";
}

static const char *outcome_fill(fl_outcome o)
{
	switch (o) {
	case FL_OUTCOME_OK:
		return "#188038";
	case FL_OUTCOME_UP_TO_DATE:
	case FL_OUTCOME_PENDING:
		return "#1a73e8";
	case FL_OUTCOME_SKIPPED:
	case FL_OUTCOME_NOT_RUN:
	case FL_OUTCOME_CANCELLED:
		return "#80868b";
	default:
		return "#d93025";
	}
}

/* A step of 1, 2 or 5 times a power of ten giving about eight ticks. */
static double tick_step(double tmax)
{
	double raw = tmax / 8.0, p = 1; /* the power of ten at or below raw, without libm */
	while (p > raw && p > 1e-9)
		p /= 10;
	while (p * 10 <= raw)
		p *= 10;
	double m = raw / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void rect(fl_buf *b, const struct layout *l, double y, double start, double end, const char *cls,
                 const char *fill)
{
	double x = xof(l, start), w = xof(l, end) - x;
	if (w < 0.5)
		w = 0.5; /* an instant still shows */
	fl_buf_printf(b,
	              "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">",
	              cls, x, y, w, l->bar, fill);
}

static void span_title(fl_buf *b, const fl_timeline_service *s, const fl_timeline_span *sp, size_t count)
{
	fl_buf_puts(b, "<title>");
	esc(b, s->name);
	fl_buf_puts(b, ": ");
	switch (sp->kind) {
	case FL_TL_MIGRATION:
		esc(b, sp->name);
		fl_buf_printf(b, " %.3f s", sp->end - sp->start);
		if (sp->ms)
			fl_buf_printf(b, " (apply %ld ms)", sp->ms);
		if (sp->failed)
			fl_buf_puts(b, ", failed");
		break;
	case FL_TL_MIGRATIONS:
		fl_buf_printf(b, "%zu migrations, %.3f s%s", count, sp->end - sp->start,
		              sp->failed ? ", the last failed" : "");
		break;
	case FL_TL_LOCK_RETRY:
	case FL_TL_CONNECT_RETRY:
	case FL_TL_LOCK_WAIT:
	case FL_TL_TURN_WAIT:
		fl_buf_printf(b, "%s %.3f s", fl_timeline_kind_name(sp->kind), sp->end - sp->start);
		if (sp->name) {
			fl_buf_puts(b, ": ");
			esc(b, sp->name);
		}
		break;
	default:
		fl_buf_printf(b, "%s %.3f s", fl_timeline_kind_name(sp->kind), sp->end - sp->start);
	}
	fl_buf_puts(b, "</title></rect>");
}

static bool on_path(const struct layout *l, size_t i)
{
	for (size_t k = 0; k < l->npath; k++)
		if (l->path[k] == i)
			return true;
	return false;
}

static void service_row(fl_buf *b, const fl_timeline *t, const struct layout *l, size_t i, double y)
{
	const fl_timeline_service *s = &t->services[i];
	bool crit = on_path(l, i), slow = (long)i == l->slowest;
	fl_buf_puts(b, "<g class=\"row service");
	if (crit)
		fl_buf_puts(b, " critical");
	if (slow)
		fl_buf_puts(b, " slowest");
	fl_buf_puts(b, "\" data-service=\"");
	esc(b, s->name);
	fl_buf_printf(b, "\" data-outcome=\"%s\" data-migrations=\"%zu\"%s%s>", fl_outcome_name(s->outcome),
	              s->migrations, crit ? " data-critical=\"true\"" : "",
	              slow ? " data-slowest=\"true\"" : "");
	fl_buf_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", LABEL_W,
	              y + l->bar - 1);
	esc(b, s->name);
	if (slow)
		fl_buf_puts(b, " (slowest)");
	fl_buf_puts(b, "<title>");
	esc(b, s->name);
	fl_buf_printf(b, ": %s", fl_outcome_words(s->outcome));
	if (started(s))
		fl_buf_printf(b, ", %.3f s, %zu migration%s", s->end - s->start, s->migrations,
		              s->migrations == 1 ? "" : "s");
	if (s->error || s->reason) {
		fl_buf_puts(b, ": ");
		esc(b, s->error ? s->error : s->reason);
	}
	fl_buf_puts(b, "</title></text>");
	size_t nth = 0;
	for (size_t k = 0; k < s->nspans; k++) {
		const fl_timeline_span *sp = &s->spans[k];
		if (sp->end < 0)
			continue;
		if (l->merged && sp->kind == FL_TL_MIGRATION) {
			/* a run of migrations (and the steps between them): one span with their count */
			size_t e = k, count = 0;
			bool failed = false;
			while (e < s->nspans && (s->spans[e].kind == FL_TL_MIGRATION ||
			                         (s->spans[e].kind == FL_TL_PREPARE && e + 1 < s->nspans &&
			                          s->spans[e + 1].kind == FL_TL_MIGRATION))) {
				count += s->spans[e].kind == FL_TL_MIGRATION;
				failed |= s->spans[e].failed;
				e++;
			}
			fl_timeline_span m = {.kind = FL_TL_MIGRATIONS,
			                      .start = sp->start,
			                      .end = s->spans[e - 1].end,
			                      .failed = failed};
			rect(b, l, y, m.start, m.end, "span migrations",
			     fill_of(FL_TL_MIGRATIONS, failed, 0));
			span_title(b, s, &m, count);
			k = e - 1;
			continue;
		}
		char cls[64];
		snprintf(cls, sizeof(cls), "span %s%s", fl_timeline_kind_name(sp->kind),
		         sp->failed ? " failed" : "");
		rect(b, l, y, sp->start, sp->end, cls, fill_of(sp->kind, sp->failed, nth));
		nth += sp->kind == FL_TL_MIGRATION;
		span_title(b, s, sp, 0);
	}
	for (size_t k = 0; k < s->noverlays; k++) {
		const fl_timeline_span *sp = &s->overlays[k];
		double end = sp->end >= 0 ? sp->end : s->end;
		fl_timeline_span shown = *sp;
		shown.end = end;
		char cls[64];
		snprintf(cls, sizeof(cls), "overlay %s", fl_timeline_kind_name(sp->kind));
		double x = xof(l, sp->start), w = xof(l, end) - x;
		fl_buf_printf(
		    b,
		    "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
		    "fill-opacity=\"0.85\">",
		    cls, x, y + l->bar / 2, w < 1 ? 1 : w, l->bar / 2, fill_of(sp->kind, false, 0));
		span_title(b, s, &shown, 0);
	}
	if (started(s)) { /* the end, in the outcome's colour */
		fl_buf_printf(
		    b,
		    "<rect class=\"end %s\" x=\"%.1f\" y=\"%.1f\" width=\"3\" height=\"%.1f\" fill=\"%s\">",
		    fl_outcome_name(s->outcome), xof(l, s->end), y, l->bar, outcome_fill(s->outcome));
		fl_buf_puts(b, "<title>");
		esc(b, s->name);
		fl_buf_printf(b, ": %s at %.3f s", fl_outcome_words(s->outcome), s->end);
		fl_buf_puts(b, "</title></rect>");
		if (crit) /* the critical path: an outline around the service's work */
			fl_buf_printf(b,
			              "<rect class=\"critical-mark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			              "height=\"%.1f\" "
			              "fill=\"none\" stroke=\"#c5221f\" stroke-width=\"2\"/>",
			              xof(l, s->start) - 1, y - 1, xof(l, s->end) - xof(l, s->start) + 5,
			              l->bar + 2);
	}
	fl_buf_puts(b, "</g>\n");
}

static void phase_row(fl_buf *b, const fl_timeline *t, const struct layout *l, int p, double y)
{
	const fl_timeline_phase *ph = &t->phases[p];
	bool crit = p != FL_TL_JOBS && phase_ran(ph);
	fl_buf_printf(b, "<g class=\"row phase%s\" data-phase=\"%s\">", crit ? " critical" : "", ph->name);
	fl_buf_printf(b, "<text class=\"label phase\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
	              LABEL_W, y + l->bar - 1, ph->name);
	if (phase_ran(ph)) {
		rect(b, l, y, ph->start, ph->end, "span phase", "#9aa0a6");
		fl_buf_printf(b, "<title>%s %.3f s (%.3f to %.3f)</title></rect>", ph->name,
		              ph->end - ph->start, ph->start, ph->end);
		if (crit)
			fl_buf_printf(b,
			              "<rect class=\"critical-mark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			              "height=\"%.1f\" "
			              "fill=\"none\" stroke=\"#c5221f\" stroke-width=\"2\"/>",
			              xof(l, ph->start) - 1, y - 1, xof(l, ph->end) - xof(l, ph->start) + 2,
			              l->bar + 2);
	}
	fl_buf_puts(b, "</g>\n");
}

static void layout_of(const fl_timeline *t, struct layout *l)
{
	memset(l, 0, sizeof(*l));
	l->tmax = t->wall;
	size_t nmig = 0;
	for (int p = 0; p < FL_TL_NPHASES; p++)
		if (t->phases[p].end > l->tmax)
			l->tmax = t->phases[p].end;
	for (size_t i = 0; i < t->n; i++) {
		const fl_timeline_service *s = &t->services[i];
		if (s->end > l->tmax)
			l->tmax = s->end;
		for (size_t k = 0; k < s->noverlays; k++)
			if (s->overlays[k].end > l->tmax)
				l->tmax = s->overlays[k].end;
		for (size_t k = 0; k < s->nspans; k++)
			nmig += s->spans[k].kind == FL_TL_MIGRATION;
	}
	if (l->tmax < 0.001)
		l->tmax = 0.001;
	l->cw = W - X0 - RIGHT;
	l->rh = t->n <= 60 ? 22 : t->n <= 250 ? 13 : 8;
	l->bar = l->rh - (l->rh > 10 ? 6 : 2);
	l->font = t->n <= 60 ? 12 : t->n <= 250 ? 10 : 7;
	l->merged = nmig > FL_TIMELINE_DETAIL_MAX;
	l->path = fl_timeline_critical(t, &l->npath);
	l->slowest = fl_timeline_slowest(t);
}

static const fl_timeline_kind legend_kinds[] = {FL_TL_QUEUED,     FL_TL_CONNECT,    FL_TL_TURN_WAIT,
                                                FL_TL_LOCK_WAIT,  FL_TL_PREPARE,    FL_TL_MIGRATION,
                                                FL_TL_MIGRATIONS, FL_TL_LOCK_RETRY, FL_TL_CONNECT_RETRY};

static void svg_into(fl_buf *b, const fl_timeline *t, bool standalone)
{
	struct layout l;
	layout_of(t, &l);
	double rows_y = TOP + (FL_TL_NPHASES + 0.5) * l.rh;
	double h = rows_y + (double)t->n * l.rh + 60;
	if (standalone)
		fl_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fl_buf_printf(
	    b,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"%.0f\" height=\"%.0f\" "
	    "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"%.0f\">\n",
	    W, h, W, h, l.font);
	fl_buf_puts(b, "<title>flotilla ");
	esc(b, t->title);
	fl_buf_puts(
	    b, "</title>\n<text class=\"heading\" x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">");
	esc(b, t->title);
	fl_buf_printf(b, ": %s (exit %d), %.2f s, %zu service%s</text>\n", fl_run_outcome_name(t->outcome),
	              t->exit_code, t->wall, t->n, t->n == 1 ? "" : "s");
	char *crit = fl_timeline_critical_text(t);
	fl_buf_puts(b, "<text class=\"critical-text\" x=\"10\" y=\"40\" fill=\"#c5221f\" font-size=\"12\">");
	esc(b, crit);
	fl_buf_puts(b, "</text>\n");
	free(crit);
	if (l.merged)
		fl_buf_printf(
		    b,
		    "<text class=\"merged-note\" x=\"10\" y=\"56\" font-size=\"11\">more than %d migrations: "
		    "each service's migrations are drawn as one span with their count</text>\n",
		    FL_TIMELINE_DETAIL_MAX);
	/* the axis: seconds, with a light line per tick across the rows */
	double step = tick_step(l.tmax), axis_y = TOP - 8;
	fl_buf_printf(b, "<g class=\"axis\" font-size=\"10\" fill=\"#5f6368\">");
	for (int k = 0; k * step <= l.tmax * 1.0001 && k < 100; k++) {
		double x = xof(&l, k * step);
		fl_buf_printf(b,
		              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
		              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g s</text>",
		              x, axis_y + 2, x, h - 50, x, axis_y - 2, k * step);
	}
	fl_buf_puts(b, "</g>\n");
	for (int p = 0; p < FL_TL_NPHASES; p++)
		phase_row(b, t, &l, p, TOP + p * l.rh);
	for (size_t i = 0; i < t->n; i++)
		service_row(b, t, &l, i, rows_y + (double)i * l.rh);
	/* the legend */
	double ly = h - 30, lx = 10;
	fl_buf_puts(b, "<g class=\"legend\" font-size=\"11\">");
	for (size_t k = 0; k < sizeof(legend_kinds) / sizeof(legend_kinds[0]); k++) {
		fl_buf_printf(b,
		              "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
		              "<text x=\"%.1f\" y=\"%.1f\">%s</text>",
		              lx, ly, fill_of(legend_kinds[k], false, 0), lx + 16, ly + 10,
		              fl_timeline_kind_name(legend_kinds[k]));
		lx += 26 + 7.0 * (double)strlen(fl_timeline_kind_name(legend_kinds[k]));
	}
	fl_buf_printf(
	    b,
	    "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"#d93025\"/>"
	    "<text x=\"%.1f\" y=\"%.1f\">failed</text>"
	    "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"#c5221f\" "
	    "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">critical path</text>",
	    lx, ly, lx + 16, ly + 10, lx + 70, ly, lx + 86, ly + 10);
	fl_buf_puts(b, "</g>\n</svg>\n");
	free(l.path);
}

char *fl_timeline_svg(const fl_timeline *t)
{
	fl_buf b;
	fl_buf_init(&b);
	svg_into(&b, t, true);
	return fl_buf_detach(&b);
}

/* ---- the page ---- */

char *fl_timeline_html(const fl_timeline *t)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	                /* nothing from anywhere: a page that tried would show it as a console error */
	                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	                "style-src 'unsafe-inline'\">\n<title>flotilla ");
	esc(&b, t->title);
	fl_buf_puts(&b, "</title>\n<style>\n"
	                "body{font-family:sans-serif;margin:1.5em;color:#202124}\n"
	                "table{border-collapse:collapse;margin-top:1em}\n"
	                "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right;vertical-align:top}\n"
	                "th:first-child,td.service,td.outcome,td.why{text-align:left}\n"
	                "td.why{max-width:40em;white-space:pre-wrap;font-family:monospace;font-size:90%}\n"
	                "tr.failed td.outcome,tr.refused td.outcome,tr.invalid td.outcome{color:#d93025;"
	                "font-weight:bold}\n"
	                "tr.critical td.service{border-left:4px solid #c5221f}\n"
	                ".critical-text{color:#c5221f}\n"
	                "svg .service:hover text.label{font-weight:bold}\n"
	                "</style></head><body>\n<h1>");
	esc(&b, t->title);
	fl_buf_printf(&b, ": <span class=\"result %s\">%s</span></h1>\n", fl_run_outcome_name(t->outcome),
	              fl_run_outcome_name(t->outcome));
	fl_buf_printf(&b, "<p id=\"summary\">exit code %d, wall time %.2f s, %zu service%s.</p>\n",
	              t->exit_code, t->wall, t->n, t->n == 1 ? "" : "s");
	char *crit = fl_timeline_critical_text(t);
	fl_buf_puts(&b, "<p id=\"critical\" class=\"critical-text\">");
	esc(&b, crit);
	fl_buf_puts(&b,
	            "</p>\n<p class=\"about\">The critical path is the chain of work that set the wall time: "
	            "the service that ended last, the service whose end freed the worker it started on, "
	            "and so on, after the preflight and provisioning phases. It is outlined in red.</p>\n");
	free(crit);
	svg_into(&b, t, false);
	struct layout l;
	layout_of(t, &l);
	fl_buf_puts(&b, "<table id=\"services\"><tr><th>service</th><th>outcome</th><th>migrations</th>"
	                "<th>seconds</th><th>turn wait (s)</th><th>lock wait (s)</th><th>retries</th>"
	                "<th>reason or error</th></tr>\n");
	for (size_t i = 0; i < t->n; i++) {
		const fl_timeline_service *s = &t->services[i];
		bool c = on_path(&l, i);
		fl_buf_printf(&b, "<tr class=\"%s%s%s\" data-service=\"", fl_outcome_name(s->outcome),
		              c ? " critical" : "", (long)i == l.slowest ? " slowest" : "");
		esc(&b, s->name);
		fl_buf_puts(&b, "\"><td class=\"service\">");
		esc(&b, s->name);
		fl_buf_printf(&b, "</td><td class=\"outcome\">%s</td><td class=\"migrations\">%zu</td>",
		              fl_outcome_words(s->outcome), s->migrations);
		if (started(s))
			fl_buf_printf(&b, "<td class=\"seconds\">%.3f</td>", s->end - s->start);
		else
			fl_buf_puts(&b, "<td class=\"seconds\"></td>");
		fl_buf_printf(&b,
		              "<td class=\"turn-wait\">%.3f</td><td class=\"lock-wait\">%.3f</td><td "
		              "class=\"retries\">%d</td><td class=\"why\">",
		              s->turn_wait, s->lock_wait, s->connect_retries + s->lock_retries);
		esc(&b, s->error ? s->error : s->reason);
		fl_buf_puts(&b, "</td></tr>\n");
	}
	fl_buf_puts(&b, "</table>\n</body></html>\n");
	free(l.path);
	return fl_buf_detach(&b);
}

/* ---- the files ---- */

/* data to path, whole or not at all: a temporary beside it, renamed over. */
static fl_error *write_whole(const char *what, const char *path, const char *data)
{
	if (fl_file_write(path, data, strlen(data)) == 0)
		return NULL;
	return fl_error_new("%s: cannot write %s: %s", what, path, strerror(errno));
}

int fl_timeline_write(const fl_timeline *t, const char *html_path, const char *svg_path, fl_error **err)
{
	*err = NULL;
	if (html_path) {
		char *page = fl_timeline_html(t);
		fl_error_append(err, write_whole("--html", html_path, page));
		free(page);
	}
	if (svg_path) {
		char *pic = fl_timeline_svg(t);
		fl_error_append(err, write_whole("--svg", svg_path, pic));
		free(pic);
	}
	return *err ? -1 : 0;
}
