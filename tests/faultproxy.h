/*
 * faultproxy: a TCP proxy for the tests that misbehaves on purpose.
 *
 * It listens on 127.0.0.1 (an ephemeral port, never another address) and
 * forwards every accepted connection to a Unix socket (the test server of
 * ci/pg listens on nothing else), misbehaving as its mode says, the way a
 * Cloud SQL / AlloyDB Auth Proxy does when its backend goes away:
 *
 *   FP_PASS          forwards faithfully (the baseline);
 *   FP_STALL         accepts and never forwards a byte, either way (a proxy
 *                    whose backend is unreachable);
 *   FP_FREEZE_AFTER  forwards `arg` bytes from the server, then stops
 *                    forwarding in both directions but keeps every socket
 *                    open (a frozen path: TCP still acknowledges, so only a
 *                    client-side deadline can notice);
 *   FP_CUT           closes each connection as soon as it is accepted;
 *   FP_DELAY         forwards, sleeping 2 ms before every chunk.
 *
 * The proxy runs in a forked child that runs no Criterion code and exits on
 * its own: after FP_MAX_LIFE_S seconds, when its parent is gone, or when
 * fp_stop() signals it by pid. fp_freeze() and fp_cut() change a running
 * proxy's behaviour (SIGUSR1, SIGUSR2): freeze every connection now (and each one accepted later), close
 * every connection now. Every loop is bounded: at most FP_MAX_CONNS
 * connections, 100 ms polls.
 */
#ifndef FL_FAULTPROXY_H
#define FL_FAULTPROXY_H

#include <sys/types.h>

typedef enum { FP_PASS, FP_STALL, FP_FREEZE_AFTER, FP_CUT, FP_DELAY } fp_mode;

#define FP_MAX_CONNS  32
#define FP_MAX_LIFE_S 300

typedef struct {
	pid_t pid;
	int port;
	char port_s[8];
} fp_proxy;

/* Starts a proxy to the Unix socket at `unix_path`; asserts it listens. */
void fp_start(fp_proxy *p, const char *unix_path, fp_mode mode, long arg);
/* The socket of the test server ($PGHOST/.s.PGSQL.$PGPORT), new string. */
char *fp_server_socket(void);
void fp_freeze(const fp_proxy *p);
void fp_cut(const fp_proxy *p);
/* Stops the proxy (SIGTERM to its pid, then waits for it). */
void fp_stop(fp_proxy *p);

#endif
