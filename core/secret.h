/*
 * secret: where a password comes from, and getting it without leaking it.
 *
 * A reference names a source: an environment variable, a file, a shell
 * command, or a variable and a command together (the variable wins when it is
 * set and not empty, as release pipelines already override secrets that way).
 * Nothing is resolved until a caller asks, and then only that one secret.
 *
 * Promises: a resolved value lives only in the fl_secret it is returned in
 * (buffers that held it on the way are wiped), fl_secret_free wipes it, and no
 * message this module makes (errors, warnings, descriptions) ever contains
 * it: a command's stderr is shown only with any copy of the value cut out.
 * A command runs as `/bin/sh -c CMD` in its own process group with stdin on
 * /dev/null, under a time limit after which the whole group is killed; the
 * value only ever travels through the command's stdout pipe, never argv.
 */
#ifndef FL_SECRET_H
#define FL_SECRET_H

#include <stddef.h>

#include "error.h"

/* The default time limit of a `cmd` source. */
#define FL_SECRET_DEFAULT_TIMEOUT_MS 30000

typedef struct {
	char *env;      /* variable name, or NULL */
	char *file;     /* absolute path, or NULL */
	char *cmd;      /* shell command, or NULL */
	int timeout_ms; /* limit for cmd; <= 0: FL_SECRET_DEFAULT_TIMEOUT_MS */
	/* where the reference was written, so failures point there (file may be NULL) */
	char *origin;
	int line, col;
} fl_secret_ref;

/* A resolved secret. `data` is NUL-terminated and holds no NUL itself. */
typedef struct {
	char *data;
	size_t len;
} fl_secret;

/*
 * Resolves `ref`. `what` names the secret in messages ("password of service
 * auth"; NULL: "secret"). Returns 0 with *out set (the caller frees it with
 * fl_secret_free as soon as it is done), or -1 with *err (FL_EINPUT) that
 * names the secret and its source, and for a command its exit status or
 * signal and the first lines of its stderr. One trailing "\n" or "\r\n" is
 * dropped; an empty value is an error. Problems that do not stop the
 * resolution (a file readable by group or others) are appended to
 * *warnings when warnings is not NULL. A NULL ref is an error. Thread-safe.
 */
int fl_secret_resolve(const fl_secret_ref *ref, const char *what, fl_secret **out, fl_error **warnings,
                      fl_error **err);

/* Wipes the value, then frees. NULL is fine. */
void fl_secret_free(fl_secret *s);

/* Where the secret comes from, for people: "<env AUTH_DB_PASSWORD>",
 * "<file /etc/pcc/auth>", "<cmd gcloud secrets ...>", "<env X or cmd ...>".
 * Control characters are shown escaped. Caller frees. */
char *fl_secret_describe(const fl_secret_ref *ref);

/* Deep copy / free of the members (not of `ref` itself). */
void fl_secret_ref_copy(fl_secret_ref *dst, const fl_secret_ref *src);
void fl_secret_ref_clear(fl_secret_ref *ref);

#endif
