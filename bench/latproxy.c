/*
 * latproxy: a TCP proxy on 127.0.0.1 that delays every forwarded chunk by a
 * fixed time in each direction, for bench/run's latency mode (the kernel's
 * netem is not available on the bench machine).
 *
 *   latproxy -p PORT -u UNIX_SOCKET -d DELAY_US -s STATS_FILE
 *
 * Accepts on 127.0.0.1:PORT and connects each client to the PostgreSQL Unix
 * socket UNIX_SOCKET. A chunk read at time t from one side is written to the
 * other at t + DELAY_US, in order, so a request/response costs 2 x DELAY_US
 * more than on the socket, as on a network with that one-way latency.
 *
 * It counts round trips: a server chunk that answers client bytes, i.e. the
 * conversation turning from client -> server to server -> client. Connect
 * and authentication are included; a client message that gets no answer
 * (Terminate) is not a round trip. After every connection
 * closes it rewrites STATS_FILE (write + rename, so a reader never sees half
 * a file) with cumulative totals, one "name value" a line:
 *   connections, open, round_trips, bytes_up, bytes_down
 * bench/run reads it before and after a measurement and waits for open 0.
 *
 * Bounded: at most MAX_PAIRS connections (more are refused), at most
 * QUEUE_MAX bytes queued per direction (reading stops until it drains), and
 * it exits on SIGTERM/SIGINT or when its parent dies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 512
#define QUEUE_MAX (4 << 20)
#define CHUNK     65536

typedef struct chunk {
	struct chunk *next;
	int64_t due; /* microseconds, CLOCK_MONOTONIC */
	size_t len, off;
	char data[];
} chunk;

typedef struct {
	chunk *head, *tail;
	size_t bytes;
	int eof; /* the reading side ended: close once drained */
} queue;

typedef struct {
	int fd[2];  /* 0 client, 1 server; -1 unused */
	queue q[2]; /* q[i]: read from fd[i], to be written to fd[1 - i] */
	int last;   /* side that spoke last: -1 none yet */
} pair;

static pair pairs[MAX_PAIRS];
static long long n_conns, n_open, n_rt, n_up, n_down;
static const char *stats_path;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void write_stats(void)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "connections %lld\nopen %lld\nround_trips %lld\nbytes_up %lld\nbytes_down %lld\n", n_conns,
	        n_open, n_rt, n_up, n_down);
	if (fclose(f) == 0)
		rename(tmp, stats_path);
}

static void close_pair(pair *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
		chunk *c = p->q[i].head;
		while (c) {
			chunk *n = c->next;
			free(c);
			c = n;
		}
		p->q[i] = (queue){0};
	}
	n_open--;
	write_stats();
}

static int connect_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* A local socket connects at once or fails: no EINPROGRESS to wait for. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one chunk from side i of p into its queue; -1 when the pair is done. */
static int read_side(pair *p, int i, int64_t delay)
{
	char buf[CHUNK];
	ssize_t n = read(p->fd[i], buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0) {
		p->q[i].eof = 1;
		return 0;
	}
	if (i == 1 && p->last == 0)
		n_rt++;
	p->last = i;
	if (i == 0)
		n_up += n;
	else
		n_down += n;
	chunk *c = malloc(sizeof(*c) + (size_t)n);
	if (!c)
		return -1;
	*c = (chunk){.due = now_us() + delay, .len = (size_t)n};
	memcpy(c->data, buf, (size_t)n);
	queue *q = &p->q[i];
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->bytes += (size_t)n;
	return 0;
}

/* Writes what is due from queue i; -1 when the pair is done. */
static int flush_side(pair *p, int i, int64_t now)
{
	queue *q = &p->q[i];
	while (q->head && q->head->due <= now) {
		chunk *c = q->head;
		ssize_t n = write(p->fd[1 - i], c->data + c->off, c->len - c->off);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->off += (size_t)n;
		if (c->off < c->len)
			return 0;
		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		q->bytes -= c->len;
		free(c);
	}
	/* One side ended and everything it sent has been delivered: done. */
	return q->eof && !q->head ? -1 : 0;
}

int main(int argc, char **argv)
{
	int port = 0, opt;
	const char *unix_path = NULL;
	int64_t delay = 1000;
	while ((opt = getopt(argc, argv, "p:u:d:s:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			unix_path = optarg;
			break;
		case 'd':
			delay = atoll(optarg);
			break;
		case 's':
			stats_path = optarg;
			break;
		default:
			fprintf(stderr, "usage: latproxy -p PORT -u UNIX_SOCKET -d DELAY_US -s STATS_FILE\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || !unix_path || !stats_path || delay < 0) {
		fprintf(stderr, "usage: latproxy -p PORT -u UNIX_SOCKET -d DELAY_US -s STATS_FILE\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 128) != 0) {
		perror("latproxy: listen");
		return 1;
	}
	for (int i = 0; i < MAX_PAIRS; i++)
		pairs[i].fd[0] = pairs[i].fd[1] = -1;
	write_stats();

	static struct pollfd pfd[1 + 2 * MAX_PAIRS];
	static int who[1 + 2 * MAX_PAIRS]; /* pair * 2 + side */
	while (!stop) {
		int64_t now = now_us(), next = -1;
		int n = 0;
		pfd[n++] = (struct pollfd){.fd = ls, .events = POLLIN};
		for (int k = 0; k < MAX_PAIRS; k++) {
			pair *p = &pairs[k];
			if (p->fd[0] < 0)
				continue;
			for (int i = 0; i < 2; i++) {
				short ev = 0;
				if (!p->q[i].eof && p->q[i].bytes < QUEUE_MAX)
					ev |= POLLIN;
				/* queue 1 - i is written to side i */
				chunk *h = p->q[1 - i].head;
				if (h && h->due <= now)
					ev |= POLLOUT;
				else if (h && (next < 0 || h->due < next))
					next = h->due;
				who[n] = k * 2 + i;
				/* an ended side that has nothing to receive would report POLLHUP forever */
				pfd[n++] =
				    (struct pollfd){.fd = ev || !p->q[i].eof ? p->fd[i] : -1, .events = ev};
			}
		}
		/* ppoll, not poll: a millisecond bound would round a 1 ms delay up to 2 */
		struct timespec ts, *tsp = NULL;
		if (next >= 0) {
			int64_t d = next > now ? next - now : 0;
			ts = (struct timespec){.tv_sec = d / 1000000, .tv_nsec = (d % 1000000) * 1000};
			tsp = &ts;
		}
		if (ppoll(pfd, (nfds_t)n, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			perror("latproxy: poll");
			return 1;
		}
		if (pfd[0].revents & POLLIN) {
			int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (c >= 0) {
				int k = 0;
				while (k < MAX_PAIRS && pairs[k].fd[0] >= 0)
					k++;
				int s = k < MAX_PAIRS ? connect_unix(unix_path) : -1;
				if (s < 0) {
					close(c);
				} else {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					pairs[k] = (pair){.fd = {c, s}, .last = -1};
					n_conns++;
					n_open++;
				}
			}
		}
		now = now_us();
		for (int j = 1; j < n; j++) {
			pair *p = &pairs[who[j] / 2];
			int i = who[j] % 2;
			if (p->fd[0] < 0)
				continue;
			int done = 0;
			if (!p->q[i].eof && (pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
				done = read_side(p, i, delay) < 0;
			if (!done)
				done = flush_side(p, 1 - i, now) < 0 || flush_side(p, i, now) < 0;
			if (done)
				close_pair(p);
		}
	}
	write_stats();
	return 0;
}
