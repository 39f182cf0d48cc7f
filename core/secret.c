#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

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
	if (memchr(b->p, '\0', b->len)) {
		*err =
		    fail(ref, what, "the value contains a NUL byte, which no PostgreSQL password can hold");
		return -1;
	}
	fl_secret *s = fl_calloc(1, sizeof(*s));
	/* an exact-size copy, so the spare capacity of the buffer is wiped with it */
	s->data = fl_malloc(b->len + 1);
	memcpy(s->data, b->p, b->len);
	s->data[b->len] = '\0';
	s->len = b->len;
	*out = s;
	return 0;
}

static int from_env(const fl_secret_ref *ref, const char *val, const char *what, fl_secret **out,
                    fl_error **err)
{
	sbuf b = {0};
	size_t n = strlen(val);
	sbuf_reserve(&b, n);
	memcpy(b.p, val, n);
	b.len = n;
	/* a variable is taken as it is: no newline to drop, it was not printed */
	if (b.len == 0) {
		*err = fail(ref, what, "the variable is empty");
		sbuf_wipe(&b);
		return -1;
	}
	fl_secret *s = fl_calloc(1, sizeof(*s));
	s->data = fl_malloc(n + 1);
	memcpy(s->data, b.p, n);
	s->data[n] = '\0';
	s->len = n;
	sbuf_wipe(&b);
	*out = s;
	return 0;
}

static int from_file(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                     fl_error **err)
{
	int fd = open(ref->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
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
	if (!S_ISREG(st.st_mode)) {
		*err = fail(ref, what, "not a regular file");
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IRGRP | S_IROTH)) && warnings) {
		fl_error *w =
		    fail(ref, what, "the file is readable by %s (mode %04o); chmod 600 it",
		         (st.st_mode & S_IROTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		fl_error_append(warnings, w);
	}
	sbuf b = {0};
	for (;;) {
		sbuf_reserve(&b, 4096);
		ssize_t n = read(fd, b.p + b.len, 4096);
		if (n < 0 && errno == EINTR)
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

/* Reads what is available on fd into b (up to `limit` kept bytes; the rest
 * is drained and dropped). Returns 0 at EOF, 1 when more may come. */
static int pump(int fd, sbuf *b, size_t limit, bool *over)
{
	char junk[4096];
	for (;;) {
		ssize_t n;
		if (b->len < limit) {
			sbuf_reserve(b, 4096);
			n = read(fd, b->p + b->len, 4096);
		} else {
			n = read(fd, junk, sizeof(junk));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n <= 0)
			return 0;
		if (b->len < limit) {
			b->len += (size_t)n;
			if (b->len > limit) {
				*over = true;
				b->len = limit;
			}
		} else {
			*over = true;
			explicit_bzero(junk, sizeof(junk));
		}
	}
}

static int from_cmd(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **err)
{
	int timeout = ref->timeout_ms > 0 ? ref->timeout_ms : FL_SECRET_DEFAULT_TIMEOUT_MS;
	int op[2], ep[2];
	if (pipe2(op, O_CLOEXEC) != 0) {
		*err = fail(ref, what, "cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC) != 0) {
		*err = fail(ref, what, "cannot make a pipe: %s", strerror(errno));
		close(op[0]);
		close(op[1]);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	/* descriptors other threads opened without O_CLOEXEC stay out of the child */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	/* its own process group, so a timeout kills whatever the shell started too */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	sigset_t none, def;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	sigaddset(&def, SIGQUIT);
	posix_spawnattr_setsigdefault(&at, &def);
	char *argv[] = {"sh", "-c", ref->cmd, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(op[1]);
	close(ep[1]);
	if (rc != 0) {
		*err = fail(ref, what, "cannot run /bin/sh: %s", strerror(rc));
		close(op[0]);
		close(ep[0]);
		return -1;
	}
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);

	sbuf o = {0}, e = {0};
	bool o_over = false, e_over = false, timed_out = false;
	bool o_open = true, e_open = true;
	long long deadline = now_ms() + timeout;
	while (o_open || e_open) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pf[2];
		int np = 0, oi = -1, ei = -1;
		if (o_open) {
			oi = np;
			pf[np].fd = op[0];
			pf[np++].events = POLLIN;
		}
		if (e_open) {
			ei = np;
			pf[np].fd = ep[0];
			pf[np++].events = POLLIN;
		}
		int pr = poll(pf, (nfds_t)np, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			break;
		if (oi >= 0 && pf[oi].revents && pump(op[0], &o, MAX_SECRET + 2, &o_over) == 0)
			o_open = false;
		if (ei >= 0 && pf[ei].revents && pump(ep[0], &e, MAX_STDERR, &e_over) == 0)
			e_open = false;
	}
	close(op[0]);
	close(ep[0]);
	int st = 0;
	if (!timed_out) {
		/* the pipes are closed, but the shell may still be running */
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR)
				break;
			if (now_ms() >= deadline) {
				timed_out = true;
				break;
			}
			struct timespec ts = {0, 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		char t[32];
		format_ms(t, sizeof(t), timeout);
		*err =
		    fail(ref, what, "the command did not finish within %s; its process group was killed", t);
		sbuf_wipe(&o);
		sbuf_wipe(&e);
		return -1;
	}
	int r = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		redact(&e, &o);
		char *msg = stderr_summary(&e, e_over);
		if (WIFSIGNALED(st))
			*err = fail(ref, what, "the command was killed by signal %d (%s): %s", WTERMSIG(st),
			            sigdescr_np(WTERMSIG(st)) ? sigdescr_np(WTERMSIG(st)) : "?", msg);
		else
			*err = fail(ref, what, "the command failed with exit status %d: %s", WEXITSTATUS(st),
			            msg);
		free(msg);
	} else if (o_over || o.len > MAX_SECRET + 2) {
		*err = fail(ref, what, "the command printed more than %d bytes; that is not a password",
		            MAX_SECRET);
	} else {
		r = finish(&o, ref, what, "the command printed nothing on stdout", out, err);
	}
	sbuf_wipe(&o);
	sbuf_wipe(&e);
	return r;
}

int fl_secret_resolve(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                      fl_error **err)
{
	if (!what)
		what = "secret";
	*out = NULL;
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
