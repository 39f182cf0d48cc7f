#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Where commands are looked for when flotilla itself has no PATH. */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Captured output: one block of limit + 1 bytes, never grown, so no copy of a
 * secret is left behind in memory a realloc gave back. */
typedef struct {
	char *p;
	size_t len, limit;
	bool over;
} wbuf;

static void wbuf_alloc(wbuf *b)
{
	if (!b->p)
		b->p = fl_malloc(b->limit + 1);
}

/* Reads what is there; 0 at end of file or error, 1 when more may come. */
static int drain(int fd, wbuf *b)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n <= 0) {
			explicit_bzero(chunk, sizeof(chunk));
			return 0;
		}
		size_t keep = (size_t)n;
		if (b->len + keep > b->limit) {
			keep = b->limit > b->len ? b->limit - b->len : 0;
			b->over = true;
		}
		if (keep) {
			wbuf_alloc(b);
			memcpy(b->p + b->len, chunk, keep);
			b->len += keep;
		}
	}
}

/* PATH, HOME, then the named variables that are set, as "NAME=value" (borrowed from environ). */
static char **child_env(const char *const *pass, char ***owned)
{
	size_t n = 0;
	for (const char *const *v = pass; v && *v; v++)
		n++;
	char **env = fl_calloc(n + 3, sizeof(char *));
	char **mine = fl_calloc(3, sizeof(char *));
	size_t k = 0, m = 0;
	const char *path = getenv("PATH");
	mine[m++] = env[k++] = fl_asprintf("PATH=%s", path && *path ? path : DEFAULT_PATH);
	const char *home = getenv("HOME");
	if (home)
		mine[m++] = env[k++] = fl_asprintf("HOME=%s", home);
	for (const char *const *v = pass; v && *v; v++) {
		if (strcmp(*v, "PATH") == 0 || strcmp(*v, "HOME") == 0)
			continue;
		const char *val = getenv(*v);
		if (!val)
			continue;
		/* the entry itself, so the value is not copied into more memory */
		size_t nl = strlen(*v);
		extern char **environ;
		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, *v, nl) == 0 && (*e)[nl] == '=') {
				env[k++] = *e;
				break;
			}
	}
	*owned = mine;
	return env;
}

static void free_owned(char **owned)
{
	for (char **p = owned; *p; p++)
		free(*p);
	free(owned);
}

int fl_proc_run(fl_proc *p, fl_error **err)
{
	p->out = p->err = NULL;
	p->outlen = p->errlen = 0;
	p->out_over = p->err_over = p->timed_out = p->in_unread = false;
	p->status = 0;
	int timeout = p->timeout_ms > 0 ? p->timeout_ms : 30000;
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, ip[2] = {-1, -1};
	bool feed = p->in != NULL;
	if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 ||
	    (feed && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ip) != 0)) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (op[i] >= 0)
				close(op[i]);
			if (ep[i] >= 0)
				close(ep[i]);
		}
		*err = fl_error_new("cannot make a pipe: %s", strerror(e));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	if (feed)
		posix_spawn_file_actions_adddup2(&fa, ip[1], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	/* descriptors other threads opened without O_CLOEXEC stay out of the child */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	/* its own group, so a timeout kills whatever the shell started too */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	sigset_t none, all;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	sigfillset(&all);
	posix_spawnattr_setsigdefault(&at, &all);
	char **owned;
	char **envp = child_env(p->pass_env, &owned);
	char *argv[] = {"sh", "-c", (char *)p->shell_cmd, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(envp);
	free_owned(owned);
	close(op[1]);
	close(ep[1]);
	if (feed)
		close(ip[1]);
	if (rc != 0) {
		close(op[0]);
		close(ep[0]);
		if (feed)
			close(ip[0]);
		*err = fl_error_new("cannot run /bin/sh: %s", strerror(rc));
		return -1;
	}
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	if (feed)
		fcntl(ip[0], F_SETFL, O_NONBLOCK);

	wbuf o = {.limit = p->out_limit ? p->out_limit : FL_PROC_DEFAULT_LIMIT};
	wbuf e = {.limit = p->err_limit ? p->err_limit : FL_PROC_DEFAULT_LIMIT};
	int in_fd = feed ? ip[0] : -1, out_fd = op[0], err_fd = ep[0];
	size_t written = 0;
	if (in_fd >= 0 && p->inlen == 0) {
		close(in_fd);
		in_fd = -1;
	}
	long long deadline = now_ms() + timeout;
	while (out_fd >= 0 || err_fd >= 0 || in_fd >= 0) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			p->timed_out = true;
			break;
		}
		struct pollfd pf[3];
		int np = 0, ii = -1, oi = -1, ei = -1;
		if (in_fd >= 0) {
			ii = np;
			pf[np++] = (struct pollfd){in_fd, POLLOUT, 0};
		}
		if (out_fd >= 0) {
			oi = np;
			pf[np++] = (struct pollfd){out_fd, POLLIN, 0};
		}
		if (err_fd >= 0) {
			ei = np;
			pf[np++] = (struct pollfd){err_fd, POLLIN, 0};
		}
		int r = poll(pf, (nfds_t)np, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (ii >= 0 && pf[ii].revents) {
			ssize_t w =
			    send(in_fd, (const char *)p->in + written, p->inlen - written, MSG_NOSIGNAL);
			if (w > 0)
				written += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
			    (pf[ii].revents & (POLLERR | POLLHUP)))
				p->in_unread = written < p->inlen;
			if (written == p->inlen || p->in_unread) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (oi >= 0 && pf[oi].revents && drain(out_fd, &o) == 0) {
			close(out_fd);
			out_fd = -1;
		}
		if (ei >= 0 && pf[ei].revents && drain(err_fd, &e) == 0) {
			close(err_fd);
			err_fd = -1;
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	int st = 0;
	if (!p->timed_out) {
		/* the pipes are closed, but the shell may still be running */
		for (;;) {
			pid_t w = waitpid(pid, &st, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR)
				break;
			if (now_ms() >= deadline) {
				p->timed_out = true;
				break;
			}
			struct timespec ts = {0, 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	if (p->timed_out) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	p->status = st;
	wbuf_alloc(&o);
	wbuf_alloc(&e);
	o.p[o.len] = '\0';
	e.p[e.len] = '\0';
	p->out = o.p;
	p->outlen = o.len;
	p->out_over = o.over;
	p->err = e.p;
	p->errlen = e.len;
	p->err_over = e.over;
	return 0;
}

void fl_proc_clear(fl_proc *p)
{
	if (p->out) {
		explicit_bzero(p->out, p->outlen);
		free(p->out);
	}
	if (p->err) {
		explicit_bzero(p->err, p->errlen);
		free(p->err);
	}
	p->out = p->err = NULL;
	p->outlen = p->errlen = 0;
}

char *fl_proc_describe_status(int status)
{
	if (WIFEXITED(status))
		return fl_asprintf("exit status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status)) {
		const char *d = sigdescr_np(WTERMSIG(status));
		return fl_asprintf("signal %d (%s)", WTERMSIG(status), d ? d : "?");
	}
	return fl_strdup("no exit status");
}
