#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orchestrate.h"
#include "proc.h"

/* A password longer than this is a mistake (a whole file, a JSON blob). */
#define MAX_SECRET 65536
/* How much of a failing command's stderr is kept, and how much of it shown. */
#define MAX_STDERR      16384
#define SHOW_LINES      3
#define SHOW_LINE_BYTES 240

/*
 * A byte buffer for secret material: growing it wipes the old block instead
 * of leaving a copy behind in freed memory, as realloc would.
 */
typedef struct {
	char *p;
	size_t len, cap;
} sbuf;

static void sbuf_reserve(sbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *np = fl_malloc(cap);
	if (b->p) {
		memcpy(np, b->p, b->len);
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	b->p = np;
	b->cap = cap;
}

static void sbuf_wipe(sbuf *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = b->cap = 0;
}

void fl_secret_free(fl_secret *s)
{
	if (!s)
		return;
	if (s->data) {
		explicit_bzero(s->data, s->len);
		free(s->data);
	}
	explicit_bzero(s, sizeof(*s));
	free(s);
}

/* Appends `s` with control characters (and backslash) escaped, so a message
 * is always one printable line. */
static void put_escaped(fl_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fl_buf_puts(b, "\\n");
		else if (c == '\r')
			fl_buf_puts(b, "\\r");
		else if (c == '\t')
			fl_buf_puts(b, "\\t");
		else if (c == '\\')
			fl_buf_puts(b, "\\\\");
		else if (c < 0x20 || c == 0x7f)
			fl_buf_printf(b, "\\x%02x", c);
		else
			fl_buf_putc(b, (char)c);
	}
}

char *fl_secret_describe(const fl_secret_ref *ref)
{
	fl_buf b;
	fl_buf_init(&b);
	fl_buf_putc(&b, '<');
	bool any = false;
	if (ref->env) {
		fl_buf_puts(&b, "env ");
		put_escaped(&b, ref->env, strlen(ref->env));
		any = true;
	}
	if (ref->file) {
		fl_buf_puts(&b, any ? " or file " : "file ");
		put_escaped(&b, ref->file, strlen(ref->file));
		any = true;
	}
	if (ref->cmd) {
		fl_buf_puts(&b, any ? " or cmd " : "cmd ");
		put_escaped(&b, ref->cmd, strlen(ref->cmd));
		any = true;
	}
	if (!any)
		fl_buf_puts(&b, "no source");
	if (ref->json) {
		fl_buf_puts(&b, ", field ");
		put_escaped(&b, ref->json, strlen(ref->json));
	}
	fl_buf_putc(&b, '>');
	return fl_buf_detach(&b);
}

static char *dup_or_null(const char *s)
{
	return s ? fl_strdup(s) : NULL;
}

void fl_secret_ref_copy(fl_secret_ref *dst, const fl_secret_ref *src)
{
	dst->env = dup_or_null(src->env);
	dst->file = dup_or_null(src->file);
	dst->cmd = dup_or_null(src->cmd);
	dst->json = dup_or_null(src->json);
	dst->kind = src->kind;
	dst->url_user = dup_or_null(src->url_user);
	dst->pass_env = NULL;
	if (src->pass_env) {
		size_t n = 0;
		while (src->pass_env[n])
			n++;
		dst->pass_env = fl_calloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			dst->pass_env[i] = fl_strdup(src->pass_env[i]);
	}
	dst->timeout_ms = src->timeout_ms;
	dst->origin = dup_or_null(src->origin);
	dst->line = src->line;
	dst->col = src->col;
}

void fl_secret_ref_clear(fl_secret_ref *ref)
{
	free(ref->env);
	free(ref->file);
	free(ref->cmd);
	free(ref->json);
	free(ref->url_user);
	for (char **p = ref->pass_env; p && *p; p++)
		free(*p);
	free(ref->pass_env);
	free(ref->origin);
	memset(ref, 0, sizeof(*ref));
}

static fl_error *fail(const fl_secret_ref *ref, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static fl_error *fail(const fl_secret_ref *ref, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = fl_vasprintf(fmt, ap);
	va_end(ap);
	char *src = fl_secret_describe(ref);
	fl_error *e = fl_error_at(ref->origin, ref->origin ? ref->line : 0, ref->origin ? ref->col : 0,
	                          "%s %s: %s", what, src, m);
	free(src);
	free(m);
	return e;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && strncasecmp(s, prefix, k) == 0;
}

/* postgresql://, postgres://, postgresql+DRIVER://, jdbc:postgresql: */
static bool looks_like_url(const char *s, size_t n)
{
	return starts_with(s, n, "postgresql://") || starts_with(s, n, "postgres://") ||
	       starts_with(s, n, "postgresql+") || starts_with(s, n, "jdbc:postgresql:");
}

static bool looks_like_json(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i < n && s[i] == '{';
}

/* The fix for a value of the wrong shape, or "" when it has none to offer. */
static const char *shape_hint(const fl_secret_ref *ref, const char *v, size_t n)
{
	if (ref->kind != FL_SECRET_URL && looks_like_url(v, n))
		return "; it looks like a URL: use url = { ... } in place of password";
	if (!ref->json && looks_like_json(v, n))
		return "; it looks like JSON: add json = \"password\" (the field that holds it)";
	return "";
}

/* The rules every value meets, whatever its source; copies it into *out. */
static int accept(const char *v, size_t n, const fl_secret_ref *ref, const char *what, fl_secret **out,
                  fl_error **err)
{
	if (memchr(v, '\0', n)) {
		*err =
		    fail(ref, what, "the value contains a NUL byte, which no PostgreSQL password can hold%s",
		         shape_hint(ref, v, n));
		return -1;
	}
	if (memchr(v, '\n', n) || memchr(v, '\r', n)) {
		const char *h = shape_hint(ref, v, n);
		*err = fail(
		    ref, what, "the value holds a line break, which no password can%s",
		    *h ? h
		       : "; if the secret holds more than the password, pick the field with json = \"...\"");
		return -1;
	}
	if (ref->kind != FL_SECRET_URL && looks_like_url(v, n)) {
		*err = fail(ref, what, "the value is a connection URL, not a bare %s%s",
		            ref->kind == FL_SECRET_TOKEN ? "token" : "password", shape_hint(ref, v, n));
		return -1;
	}
	if (!ref->json && ref->kind != FL_SECRET_URL && looks_like_json(v, n)) {
		json_t *j = json_loadb(v, n, 0, NULL);
		bool obj = j && json_is_object(j);
		json_decref(j);
		if (obj) {
			*err = fail(ref, what, "the value is a JSON document, not a bare password%s",
			            shape_hint(ref, v, n));
			return -1;
		}
	}
	fl_secret *s = fl_calloc(1, sizeof(*s));
	/* an exact-size copy, so the spare capacity of the buffer is wiped with it */
	s->data = fl_malloc(n + 1);
	memcpy(s->data, v, n);
	s->data[n] = '\0';
	s->len = n;
	*out = s;
	return 0;
}

/* jansson's strings are copies of the secret: they are wiped when freed. */
static void wiping_free(void *p)
{
	if (p)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static pthread_once_t json_once = PTHREAD_ONCE_INIT;

static void json_setup(void)
{
	json_set_alloc_funcs(malloc, wiping_free);
}

/* The field at ref->json (a dotted path) of the JSON document in v. */
static int pick_json(const char *v, size_t n, const fl_secret_ref *ref, const char *what, fl_secret **out,
                     fl_error **err)
{
	pthread_once(&json_once, json_setup);
	json_error_t je;
	json_t *root = json_loadb(v, n, 0, &je);
	if (!root) {
		/* jansson's text quotes the input near the error: only the place is shown */
		*err = fail(ref, what,
		            "json = \"%s\" needs a JSON document, and the value is not one (line %d, "
		            "column %d)",
		            ref->json, je.line, je.column);
		return -1;
	}
	json_t *cur = root;
	const char *path = ref->json;
	int rc = -1;
	for (const char *p = path;;) {
		const char *dot = strchr(p, '.');
		size_t kl = dot ? (size_t)(dot - p) : strlen(p);
		char *key = fl_strndup(p, kl);
		json_t *next = json_is_object(cur) ? json_object_get(cur, key) : NULL;
		if (!next) {
			fl_buf b;
			fl_buf_init(&b);
			fl_buf_puts(&b, "");
			if (json_is_object(cur)) {
				const char *k;
				json_t *x;
				int i = 0;
				json_object_foreach(cur, k, x)
				{
					if (i++ < 10)
						fl_buf_printf(&b, "%s\"%s\"", i > 1 ? ", " : "", k);
				}
			}
			char *keys = fl_buf_detach(&b);
			if (!json_is_object(cur) && p == path)
				*err =
				    fail(ref, what, "json = \"%s\": the document is not a JSON object", path);
			else if (!json_is_object(cur))
				*err = fail(ref, what, "json = \"%s\": \"%.*s\" is not an object", path,
				            (int)(p - path - 1), path);
			else
				*err = fail(ref, what, "json = \"%s\": no field \"%s\" in the document%s%s",
				            path, key, *keys ? "; it has " : "", keys);
			free(keys);
			free(key);
			goto out;
		}
		free(key);
		cur = next;
		if (!dot)
			break;
		p = dot + 1;
	}
	if (!json_is_string(cur)) {
		*err = fail(ref, what, "json = \"%s\": the field is %s, not a string", path,
		            json_is_object(cur)   ? "an object"
		            : json_is_array(cur)  ? "an array"
		            : json_is_number(cur) ? "a number"
		            : json_is_null(cur)   ? "null"
		                                  : "a boolean");
		goto out;
	}
	size_t sl = json_string_length(cur);
	if (sl == 0) {
		*err = fail(ref, what, "json = \"%s\": the field is empty", path);
		goto out;
	}
	rc = accept(json_string_value(cur), sl, ref, what, out, err);
out:
	json_decref(root);
	return rc;
}

/* Drops one trailing "\n" or "\r\n", then insists on a usable value. */
static int finish(sbuf *b, const fl_secret_ref *ref, const char *what, const char *empty_msg, fl_secret **out,
                  fl_error **err)
{
	if (b->len && b->p[b->len - 1] == '\n') {
		b->len--;
		if (b->len && b->p[b->len - 1] == '\r')
			b->len--;
	}
	if (b->len == 0) {
		*err = fail(ref, what, "%s", empty_msg);
		return -1;
	}
	if (ref->json)
		return pick_json(b->p, b->len, ref, what, out, err);
	return accept(b->p, b->len, ref, what, out, err);
}

static int from_env(const fl_secret_ref *ref, const char *val, const char *what, fl_secret **out,
                    fl_error **err)
{
	/* a variable is taken as it is: no newline to drop, it was not printed */
	size_t n = strlen(val);
	if (n == 0) {
		*err = fail(ref, what, "the variable is empty");
		return -1;
	}
	if (ref->json)
		return pick_json(val, n, ref, what, out, err);
	return accept(val, n, ref, what, out, err);
}

static long long now_ms(void);

static void format_ms(char *buf, size_t n, int ms);

/*
 * A file, a FIFO or a character device, read under the secret's time limit:
 * opened without blocking (a FIFO's open waits for a writer otherwise), then
 * read only when poll says so, so a writer that never comes or never
 * finishes costs secret_timeout, not the run.
 */
static int from_file(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                     fl_error **err)
{
	int timeout = ref->timeout_ms > 0 ? ref->timeout_ms : FL_SECRET_DEFAULT_TIMEOUT_MS;
	int fd = open(ref->file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		*err = fail(ref, what, "cannot open the file: %s", strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		*err = fail(ref, what, "cannot stat the file: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		*err = fail(ref, what, "not a regular file");
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)) && warnings) {
		fl_error *w =
		    fail(ref, what, "the file is readable by %s (mode %04o); chmod 600 it",
		         (st.st_mode & S_IROTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		fl_error_append(warnings, w);
	}
	sbuf b = {0};
	long long deadline = now_ms() + timeout;
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			char t[32];
			format_ms(t, sizeof(t), timeout);
			*err = fail(
			    ref, what,
			    "the file (a %s) gave no end of data within %s (secret_timeout); is anything "
			    "writing to it?",
			    S_ISFIFO(st.st_mode)  ? "FIFO"
			    : S_ISCHR(st.st_mode) ? "device"
			                          : "file",
			    t);
			close(fd);
			sbuf_wipe(&b);
			return -1;
		}
		struct pollfd pf = {fd, POLLIN, 0};
		int pr = poll(&pf, 1, left > 1000 ? 1000 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			continue;
		sbuf_reserve(&b, 4096);
		ssize_t n = read(fd, b.p + b.len, 4096);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			*err = fail(ref, what, "cannot read the file: %s", strerror(errno));
			close(fd);
			sbuf_wipe(&b);
			return -1;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > MAX_SECRET) {
			*err = fail(ref, what, "the file is larger than %d bytes; that is not a password",
			            MAX_SECRET);
			close(fd);
			sbuf_wipe(&b);
			return -1;
		}
	}
	close(fd);
	int r = finish(&b, ref, what, "the file is empty", out, err);
	sbuf_wipe(&b);
	return r;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_ms(char *buf, size_t n, int ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, n, "%d s", ms / 1000);
	else
		snprintf(buf, n, "%d ms", ms);
}

/* Cuts every copy of the command's output lines (what might be the secret)
 * out of its stderr before any of it is shown. */
static void redact(sbuf *err, const sbuf *out)
{
	size_t i = 0;
	while (i < out->len) {
		size_t j = i;
		while (j < out->len && out->p[j] != '\n')
			j++;
		size_t n = j - i;
		if (n && out->p[j - 1] == '\r')
			n--;
		/* shorter lines would blank out ordinary words, and leak little */
		if (n >= 4 && err->len >= n) {
			const char *needle = out->p + i;
			for (size_t k = 0; k + n <= err->len;) {
				if (memcmp(err->p + k, needle, n) == 0) {
					memset(err->p + k, '*', n);
					k += n;
				} else {
					k++;
				}
			}
		}
		i = j + 1;
	}
}

/* The first few non-empty lines of stderr as one printable line. */
static char *stderr_summary(const sbuf *e, bool truncated)
{
	fl_buf b;
	fl_buf_init(&b);
	int shown = 0;
	size_t i = 0;
	while (i < e->len && shown < SHOW_LINES) {
		size_t j = i;
		while (j < e->len && e->p[j] != '\n')
			j++;
		size_t n = j - i;
		if (n && e->p[i + n - 1] == '\r')
			n--;
		if (n) {
			if (shown)
				fl_buf_puts(&b, " | ");
			put_escaped(&b, e->p + i, n > SHOW_LINE_BYTES ? SHOW_LINE_BYTES : n);
			if (n > SHOW_LINE_BYTES)
				fl_buf_puts(&b, "...");
			shown++;
		}
		i = j + 1;
	}
	if (!shown)
		fl_buf_puts(&b, "(nothing on stderr)");
	else if (i < e->len || truncated)
		fl_buf_puts(&b, " | ...");
	return fl_buf_detach(&b);
}

static int from_cmd(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **err)
{
	int timeout = ref->timeout_ms > 0 ? ref->timeout_ms : FL_SECRET_DEFAULT_TIMEOUT_MS;
	fl_proc p = {.shell_cmd = ref->cmd,
	             .timeout_ms = timeout,
	             .pass_env = (const char *const *)ref->pass_env,
	             .out_limit = MAX_SECRET + 2,
	             .err_limit = MAX_STDERR};
	fl_error *perr = NULL;
	if (fl_proc_run(&p, &perr) != 0) {
		*err = fail(ref, what, "%s", perr->msg);
		fl_error_free(perr);
		return -1;
	}
	/* views of the captured output, for the helpers that take sbufs */
	sbuf o = {p.out, p.outlen, p.outlen + 1}, e = {p.err, p.errlen, p.errlen + 1};
	int st = p.status, r = -1;
	if (p.timed_out) {
		char t[32];
		format_ms(t, sizeof(t), timeout);
		*err =
		    fail(ref, what, "the command did not finish within %s; its process group was killed", t);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		redact(&e, &o);
		char *msg = stderr_summary(&e, p.err_over);
		if (WIFSIGNALED(st))
			*err = fail(ref, what, "the command was killed by signal %d (%s): %s", WTERMSIG(st),
			            sigdescr_np(WTERMSIG(st)) ? sigdescr_np(WTERMSIG(st)) : "?", msg);
		else
			*err = fail(ref, what, "the command failed with exit status %d: %s", WEXITSTATUS(st),
			            msg);
		free(msg);
	} else if (p.out_over) {
		*err = fail(ref, what, "the command printed more than %d bytes; that is not a password",
		            MAX_SECRET);
	} else {
		r = finish(&o, ref, what, "the command printed nothing on stdout", out, err);
	}
	fl_proc_clear(&p);
	return r;
}

static int url_password(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                        fl_error **err);

int fl_secret_resolve(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                      fl_error **err)
{
	if (!what)
		what = "secret";
	*out = NULL;
	pthread_once(&json_once, json_setup);
	if (ref && ref->kind == FL_SECRET_URL_PASSWORD)
		return url_password(ref, what, out, warnings, err);
	if (!ref) {
		*err = fl_error_new("%s: no source is configured", what);
		return -1;
	}
	if (ref->env) {
		const char *v = getenv(ref->env);
		if (v && *v)
			return from_env(ref, v, what, out, err);
		if (!ref->cmd && !ref->file) {
			*err = fail(ref, what, "%s", v ? "the variable is empty" : "the variable is not set");
			return -1;
		}
	}
	if (ref->file)
		return from_file(ref, what, out, warnings, err);
	if (ref->cmd)
		return from_cmd(ref, what, out, err);
	*err = fail(ref, what, "the reference names no source (env, file or cmd)");
	return -1;
}

static int many_job(fl_orch_worker *w, size_t i, void *arg)
{
	(void)w;
	fl_secret_job *j = &((fl_secret_job *)arg)[i];
	if (fl_secret_resolve(j->ref, j->what, &j->out, &j->warnings, &j->err) != 0 && !j->err)
		j->err = fl_error_new("%s: cannot be resolved", j->what ? j->what : "secret");
	return j->err ? 1 : 0;
}

size_t fl_secret_resolve_many(fl_secret_job *jobs, size_t n)
{
	pthread_once(&json_once, json_setup);
	for (size_t i = 0; i < n; i++) {
		jobs[i].out = NULL;
		jobs[i].err = jobs[i].warnings = NULL;
	}
	if (n == 0)
		return 0;
	/* only secrets with a command or a file wait on anything; one thread does for all when there are none
	 */
	bool any_wait = false;
	for (size_t i = 0; i < n && !any_wait; i++)
		any_wait = jobs[i].ref && (jobs[i].ref->cmd || jobs[i].ref->file);
	/* the one pool of the program (orchestrate), with its handling of interrupts */
	fl_orch_opts oo = {.threads = !any_wait                    ? 1
	                              : n < FL_SECRET_MAX_PARALLEL ? (int)n
	                                                           : FL_SECRET_MAX_PARALLEL,
	                   .handle_signals = true};
	int *results = fl_calloc(n, sizeof(int));
	fl_orch_run(n, many_job, jobs, &oo, results);
	free(results);
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!jobs[i].out && !jobs[i].err)
			jobs[i].err = fl_error_kind_new(FL_EINTR, "%s: not resolved: interrupted",
			                                jobs[i].what ? jobs[i].what : "secret");
		failed += jobs[i].err != NULL;
	}
	return failed;
}

/* ---- connection URLs ---- */

static fl_error *url_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static fl_error *url_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = fl_vasprintf(fmt, ap);
	va_end(ap);
	fl_error *e = fl_error_new("the connection URL %s", m);
	free(m);
	return e;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into a new string; NULL on a bad escape or a NUL. */
static char *pct_decode(const char *s, size_t n)
{
	char *o = fl_malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 1 < n ? hexval(s[i + 1]) : -1, b = i + 2 < n ? hexval(s[i + 2]) : -1;
			int h = a >= 0 && b >= 0 ? a * 16 + b : -1;
			/* h == 0: %00, a NUL no C string can carry */
			if (h <= 0) {
				explicit_bzero(o, n + 1);
				free(o);
				return NULL;
			}
			o[k++] = (char)h;
			i += 2;
		} else {
			o[k++] = s[i];
		}
	}
	o[k] = '\0';
	return o;
}

static bool valid_port(const char *p)
{
	if (!*p || strlen(p) > 5)
		return false;
	for (const char *c = p; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	long v = strtol(p, NULL, 10);
	return v >= 1 && v <= 65535;
}

static bool valid_host(const char *h)
{
	if (!*h)
		return false;
	for (const char *c = h; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == ',' || *c == '@' || *c == '?' ||
		    *c == '#')
			return false;
	return true;
}

static void set_part(char **slot, char *v)
{
	if (*slot) {
		explicit_bzero(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = v;
}

void fl_conn_url_clear(fl_conn_url *u)
{
	set_part(&u->host, NULL);
	set_part(&u->port, NULL);
	set_part(&u->dbname, NULL);
	set_part(&u->user, NULL);
	set_part(&u->password, NULL);
	set_part(&u->sslmode, NULL);
	for (size_t i = 0; i < u->nopts; i++) {
		free(u->keys[i]);
		set_part(&u->values[i], NULL);
	}
	free(u->keys);
	free(u->values);
	memset(u, 0, sizeof(*u));
}

/* One query parameter; the value is already decoded. */
static fl_error *url_param(fl_conn_url *u, const char *k, char *v)
{
	static const char *const sslmodes[] = {"disable", "allow",     "prefer",
	                                       "require", "verify-ca", "verify-full"};
	if (strcmp(k, "host") == 0) {
		if (!valid_host(v))
			return url_fail(
			    "has a host parameter that is empty or holds spaces, commas or control "
			    "characters");
		set_part(&u->host, v);
	} else if (strcmp(k, "port") == 0) {
		if (!valid_port(v))
			return url_fail("has a port parameter that is not a number from 1 to 65535");
		set_part(&u->port, v);
	} else if (strcmp(k, "user") == 0) {
		set_part(&u->user, v);
	} else if (strcmp(k, "password") == 0) {
		set_part(&u->password, v);
	} else if (strcmp(k, "dbname") == 0) {
		set_part(&u->dbname, v);
	} else if (strcmp(k, "sslmode") == 0) {
		bool ok = false;
		for (size_t i = 0; i < 6 && !ok; i++)
			ok = strcmp(v, sslmodes[i]) == 0;
		if (!ok)
			return url_fail("has an unknown sslmode; one of disable, allow, prefer, require, "
			                "verify-ca, verify-full");
		set_part(&u->sslmode, v);
	} else if (strcmp(k, "application_name") == 0 || strcmp(k, "connect_timeout") == 0 ||
	           strcmp(k, "target_session_attrs") == 0 || strcmp(k, "sslrootcert") == 0 ||
	           strcmp(k, "sslcert") == 0 || strcmp(k, "sslkey") == 0 || strcmp(k, "options") == 0) {
		u->keys = fl_realloc(u->keys, (u->nopts + 1) * sizeof(char *));
		u->values = fl_realloc(u->values, (u->nopts + 1) * sizeof(char *));
		u->keys[u->nopts] = fl_strdup(k);
		u->values[u->nopts++] = v;
	} else {
		return url_fail(
		    "has a query parameter flotilla does not know; known: host, port, user, password, "
		    "dbname, sslmode, application_name, connect_timeout, target_session_attrs, "
		    "sslrootcert, sslcert, sslkey, options");
	}
	return NULL;
}

int fl_conn_url_parse(const char *url, size_t len, fl_conn_url *u, fl_error **err)
{
	memset(u, 0, sizeof(*u));
	const char *s = url, *end = url + len;
	size_t skip = 0;
	if (memchr(url, '\0', len) || memchr(url, '\n', len) || memchr(url, ' ', len)) {
		*err = url_fail("holds a space, a line break or a NUL; a URL has none (percent-encode them)");
		return -1;
	}
	if (starts_with(s, len, "postgresql://"))
		skip = 13;
	else if (starts_with(s, len, "postgres://"))
		skip = 11;
	else if (starts_with(s, len, "jdbc:postgresql://"))
		skip = 18;
	else if (starts_with(s, len, "postgresql+")) {
		size_t i = 11;
		while (i < len &&
		       ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			i++;
		if (i == 11 || len - i < 3 || memcmp(s + i, "://", 3) != 0) {
			*err = url_fail("does not start with postgresql+DRIVER:// (SQLAlchemy's form)");
			return -1;
		}
		skip = i + 3;
	} else {
		*err = url_fail("does not start with postgresql://, postgres://, postgresql+DRIVER:// or "
		                "jdbc:postgresql://");
		return -1;
	}
	s += skip;
	const char *q = memchr(s, '?', (size_t)(end - s));
	const char *frag = memchr(s, '#', (size_t)(end - s));
	if (frag) {
		*err = url_fail("has a #fragment, which a connection URL cannot have");
		return -1;
	}
	const char *auth_end = memchr(s, '/', (size_t)((q ? q : end) - s));
	if (!auth_end)
		auth_end = q ? q : end;
	/* userinfo: the last '@' of the authority, as a password may hold an unencoded '@' */
	const char *at = NULL;
	for (const char *c = s; c < auth_end; c++)
		if (*c == '@')
			at = c;
	fl_error *e = NULL;
	if (at) {
		const char *colon = memchr(s, ':', (size_t)(at - s));
		char *user = pct_decode(s, (size_t)((colon ? colon : at) - s));
		char *pw = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : NULL;
		if (!user || (colon && !pw)) {
			set_part(&user, NULL);
			set_part(&pw, NULL);
			e = url_fail("has a bad %%-escape in its user or password");
			goto fail;
		}
		if (*user)
			set_part(&u->user, user);
		else
			free(user);
		if (pw && *pw)
			set_part(&u->password, pw);
		else
			set_part(&pw, NULL);
		s = at + 1;
	}
	/* host[:port]; [v6]:port; empty for a socket given by ?host= */
	if (s < auth_end) {
		const char *hend = auth_end, *port = NULL;
		if (*s == '[') {
			const char *rb = memchr(s, ']', (size_t)(auth_end - s));
			if (!rb) {
				e = url_fail("has an IPv6 host without its closing ]");
				goto fail;
			}
			set_part(&u->host, fl_strndup(s + 1, (size_t)(rb - s - 1)));
			if (rb + 1 < auth_end) {
				if (rb[1] != ':') {
					e = url_fail("has text after its IPv6 host");
					goto fail;
				}
				port = rb + 2;
			}
		} else {
			const char *colon = memchr(s, ':', (size_t)(auth_end - s));
			if (colon) {
				hend = colon;
				port = colon + 1;
			}
			char *h = pct_decode(s, (size_t)(hend - s));
			if (!h || (*h && !valid_host(h))) {
				set_part(&h, NULL);
				e = url_fail("names several hosts or a host with a bad character; flotilla "
				             "connects to "
				             "one host");
				goto fail;
			}
			if (*h)
				set_part(&u->host, h);
			else
				free(h);
		}
		if (port) {
			char *p = fl_strndup(port, (size_t)(auth_end - port));
			if (!valid_port(p)) {
				free(p);
				e = url_fail("has a port that is not a number from 1 to 65535");
				goto fail;
			}
			set_part(&u->port, p);
		}
	}
	s = auth_end;
	if (s < end && *s == '/') {
		s++;
		const char *dend = q ? q : end;
		if (dend > s) {
			char *d = pct_decode(s, (size_t)(dend - s));
			if (!d || strchr(d, '/')) {
				set_part(&d, NULL);
				e = url_fail("has a bad database name");
				goto fail;
			}
			set_part(&u->dbname, d);
		}
	}
	if (q) {
		for (const char *p = q + 1; p < end;) {
			const char *amp = memchr(p, '&', (size_t)(end - p));
			const char *pend = amp ? amp : end;
			const char *eq = memchr(p, '=', (size_t)(pend - p));
			if (pend > p) {
				if (!eq) {
					e = url_fail("has a query parameter without a value");
					goto fail;
				}
				char *k = pct_decode(p, (size_t)(eq - p));
				char *v = pct_decode(eq + 1, (size_t)(pend - eq - 1));
				if (!k || !v) {
					free(k);
					set_part(&v, NULL);
					e = url_fail("has a bad %%-escape in its query");
					goto fail;
				}
				e = url_param(u, k, v);
				if (e)
					set_part(&v, NULL);
				free(k);
				if (e)
					goto fail;
			}
			p = pend + 1;
		}
	}
	return 0;
fail:
	fl_conn_url_clear(u);
	e->kind = FL_EINPUT;
	*err = e;
	return -1;
}

int fl_secret_resolve_url(const fl_secret_ref *ref, const char *what, fl_conn_url *u, fl_error **warnings,
                          fl_error **err)
{
	fl_secret_ref r = *ref;
	r.kind = FL_SECRET_URL;
	fl_secret *s = NULL;
	memset(u, 0, sizeof(*u));
	if (fl_secret_resolve(&r, what, &s, warnings, err) != 0)
		return -1;
	fl_error *e = NULL;
	int rc = fl_conn_url_parse(s->data, s->len, u, &e);
	fl_secret_free(s);
	if (rc != 0) {
		*err = fail(ref, what ? what : "secret", "%s", e->msg);
		fl_error_free(e);
		return -1;
	}
	return 0;
}

/* A service's `url`: the password out of the URL, which must name the service's own role. */
static int url_password(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                        fl_error **err)
{
	fl_conn_url u;
	if (fl_secret_resolve_url(ref, what, &u, warnings, err) != 0)
		return -1;
	int rc = -1;
	if (!u.password) {
		*err = fail(ref, what, "the connection URL holds no password");
	} else if (ref->url_user && u.user && strcmp(u.user, ref->url_user) != 0) {
		*err = fail(ref, what, "the connection URL is for user \"%s\", not for \"%s\"", u.user,
		            ref->url_user);
	} else {
		fl_secret *s = fl_calloc(1, sizeof(*s));
		s->len = strlen(u.password);
		s->data = fl_strdup(u.password);
		*out = s;
		rc = 0;
	}
	fl_conn_url_clear(&u);
	return rc;
}
