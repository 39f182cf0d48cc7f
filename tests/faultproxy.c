#include "faultproxy.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_freeze, want_cut, want_stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_freeze = 1;
	else if (sig == SIGUSR2)
		want_cut = 1;
	else
		want_stop = 1;
}

typedef struct {
	int client, server; /* -1: closed */
	long from_server;   /* bytes forwarded server -> client */
	bool frozen;
} pair;

static int connect_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_pair(pair *c)
{
	if (c->client >= 0)
		close(c->client);
	if (c->server >= 0)
		close(c->server);
	c->client = c->server = -1;
}

/* Moves one chunk from `from` to `to`; false when either side is done. */
static bool forward(int from, int to, fp_mode mode, long *count, long limit)
{
	char buf[8192];
	size_t room = sizeof(buf);
	/* a freeze after N bytes forwards exactly N, so the cut falls mid-message */
	if (limit >= 0 && *count + (long)room > limit)
		room = (size_t)(limit - *count);
	if (room == 0)
		return true;
	ssize_t n = read(from, buf, room);
	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN);
	if (mode == FP_DELAY) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += w;
	}
	if (count)
		*count += n;
	return true;
}

static void run(int lfd, const char *path, fp_mode mode, long arg, pid_t parent)
{
	pair conns[FP_MAX_CONNS];
	for (int i = 0; i < FP_MAX_CONNS; i++)
		conns[i] = (pair){-1, -1, 0, false};
	time_t end = time(NULL) + FP_MAX_LIFE_S;
	bool frozen_all = false;
	while (!want_stop && time(NULL) < end && getppid() == parent) {
		if (want_cut) {
			want_cut = 0;
			for (int i = 0; i < FP_MAX_CONNS; i++)
				close_pair(&conns[i]);
		}
		if (want_freeze) {
			/* sticky: connections made later (a cancel request) freeze too */
			want_freeze = 0;
			frozen_all = true;
			for (int i = 0; i < FP_MAX_CONNS; i++)
				conns[i].frozen = true;
		}
		struct pollfd pf[1 + 2 * FP_MAX_CONNS];
		int who[1 + 2 * FP_MAX_CONNS];
		int np = 0;
		pf[np] = (struct pollfd){.fd = lfd, .events = POLLIN};
		who[np++] = -1;
		for (int i = 0; i < FP_MAX_CONNS; i++) {
			pair *c = &conns[i];
			if (c->client < 0 || c->frozen || mode == FP_STALL)
				continue;
			pf[np] = (struct pollfd){.fd = c->client, .events = POLLIN};
			who[np++] = 2 * i;
			pf[np] = (struct pollfd){.fd = c->server, .events = POLLIN};
			who[np++] = 2 * i + 1;
		}
		int r = poll(pf, (nfds_t)np, 100);
		if (r <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			int slot = -1;
			for (int i = 0; i < FP_MAX_CONNS && slot < 0 && fd >= 0; i++)
				if (conns[i].client < 0)
					slot = i;
			if (fd >= 0 && (mode == FP_CUT || slot < 0)) {
				close(fd);
			} else if (fd >= 0) {
				int up = mode == FP_STALL ? -1 : connect_unix(path);
				if (mode != FP_STALL && up < 0) {
					close(fd);
				} else {
					conns[slot] = (pair){fd, up, 0, frozen_all};
					/* a stalled pair is kept open, forwarding nothing */
					if (mode == FP_STALL)
						conns[slot].server = -1;
				}
			}
		}
		for (int k = 1; k < np; k++) {
			if (!pf[k].revents)
				continue;
			pair *c = &conns[who[k] / 2];
			if (c->client < 0 || c->frozen)
				continue;
			bool to_client = who[k] % 2 == 1;
			long limit = mode == FP_FREEZE_AFTER && to_client ? arg : -1;
			bool ok = to_client ? forward(c->server, c->client, mode, &c->from_server, limit)
			                    : forward(c->client, c->server, mode, NULL, -1);
			if (!ok)
				close_pair(c);
			else if (mode == FP_FREEZE_AFTER && c->from_server >= arg)
				c->frozen = true;
		}
	}
	for (int i = 0; i < FP_MAX_CONNS; i++)
		close_pair(&conns[i]);
}

void fp_start(fp_proxy *p, const char *unix_path, fp_mode mode, long arg)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(lfd >= 0, "socket: %s", strerror(errno));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(lfd, 16), 0);
	socklen_t al = sizeof(a);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	p->port = ntohs(a.sin_port);
	snprintf(p->port_s, sizeof(p->port_s), "%d", p->port);
	pid_t parent = getpid();
	/* the handlers are in place before the parent can signal the child */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct sigaction sa = {0};
		sa.sa_handler = on_signal;
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGUSR2, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		sigprocmask(SIG_SETMASK, &old, NULL);
		run(lfd, unix_path, mode, arg, parent);
		_exit(0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(lfd);
	p->pid = pid;
}

char *fp_server_socket(void)
{
	const char *h = getenv("PGHOST"), *port = getenv("PGPORT");
	cr_assert(h && *h == '/', "PGHOST must be the test server's socket directory");
	char *s = NULL;
	cr_assert(asprintf(&s, "%s/.s.PGSQL.%s", h, port ? port : "5432") > 0);
	return s;
}

void fp_freeze(const fp_proxy *p)
{
	kill(p->pid, SIGUSR1);
}

void fp_cut(const fp_proxy *p)
{
	kill(p->pid, SIGUSR2);
}

void fp_stop(fp_proxy *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	int st;
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
}
