/*
 * proc: the one way flotilla runs another program (secret commands,
 * password sinks).
 *
 * A child runs as `/bin/sh -c CMD`, in its own process group, with a clean
 * environment: PATH, HOME and only the variables the caller names (the
 * manifest's `pass_env`), never the parent's whole environment, where other
 * services' passwords may sit in variables. Every descriptor but its three
 * standard ones is closed, its signal mask is empty and every signal has its
 * default action (flotilla's SIGINT handling and blocked signals stay
 * flotilla's). Its stdin is the caller's bytes (a socket, so a child that
 * exits without reading is no SIGPIPE for us) or /dev/null; stdout and
 * stderr are captured up to a limit each (the rest is read and dropped, so
 * the child never blocks on a full pipe). After timeout_ms the whole
 * process group is killed, so `gcloud` and whatever it started end with it.
 *
 * Captured output may be a secret: the buffers never leave a copy behind
 * when they grow, and fl_proc_clear wipes them. Nothing here prints.
 * Thread-safe: any number of threads may run children at once.
 */
#ifndef FL_PROC_H
#define FL_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The default cap of what is kept of stdout and of stderr. */
#define FL_PROC_DEFAULT_LIMIT 65536

typedef struct {
	/* in */
	const char *shell_cmd;
	const void *in; /* stdin bytes; NULL: /dev/null */
	size_t inlen;
	int timeout_ms;              /* > 0 */
	const char *const *pass_env; /* names of variables passed on (NULL-terminated; may be NULL) */
	size_t out_limit, err_limit; /* 0: FL_PROC_DEFAULT_LIMIT */
	/* out */
	char *out, *err; /* NUL-terminated (may hold NULs before); never NULL after a run */
	size_t outlen, errlen;
	bool out_over, err_over; /* more was printed than kept */
	bool timed_out;          /* the group was killed at the limit */
	bool in_unread;          /* the child ended before taking all of `in` */
	int status;              /* waitpid's status (when not timed out) */
} fl_proc;

/*
 * Runs p->shell_cmd and waits for it (at most timeout_ms, then kills the
 * group). Returns 0 when it ran (whatever its exit status: see p->status,
 * p->timed_out), or -1 with *err when it could not be started.
 */
int fl_proc_run(fl_proc *p, fl_error **err);
/* Wipes and frees the captured output; the inputs are left. */
void fl_proc_clear(fl_proc *p);

/* "exit status 3", "signal 15 (Terminated)", "no exit status": for messages. */
char *fl_proc_describe_status(int status);

#endif
