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
 * A command runs through proc (see proc.h): `/bin/sh -c CMD` in its own
 * process group with stdin on /dev/null and a clean environment (PATH, HOME
 * and the reference's pass_env: no other secret), under a time limit after
 * which the whole group is killed; the value only ever travels through the
 * command's stdout pipe, never argv. A file is read under the same limit,
 * so a FIFO nobody writes to, or a device, cannot hang a run.
 *
 * Shapes: a secret may hold a JSON document (`json = "password"` picks a
 * field, a dotted path for nested ones) or a whole connection URL (a
 * reference of kind FL_SECRET_URL, parsed by fl_secret_resolve_url). A value
 * that still holds a line break or a NUL is refused, and one that looks like
 * JSON or a URL where a bare password is expected is refused with the fix
 * ("looks like JSON: add json = \"password\"").
 */
#ifndef FL_SECRET_H
#define FL_SECRET_H

#include <stddef.h>

#include "error.h"

/* The default time limit of a `cmd` source. */
#define FL_SECRET_DEFAULT_TIMEOUT_MS 30000

/* What a reference holds: a password, a login token (fetched for every new
 * connection, never kept), or a connection URL. */
typedef enum {
	FL_SECRET_PASSWORD,
	FL_SECRET_TOKEN,
	FL_SECRET_URL,
	/* a URL of which fl_secret_resolve returns the password alone (a service's
	 * `url`); when url_user is set, the URL's user must be that role */
	FL_SECRET_URL_PASSWORD
} fl_secret_kind;

typedef struct {
	char *env;  /* variable name, or NULL */
	char *file; /* absolute path, or NULL */
	char *cmd;  /* shell command, or NULL */
	char *json; /* dotted path of the field that holds the value ("password", "db.password"), or NULL */
	fl_secret_kind kind;
	char *url_user;  /* FL_SECRET_URL_PASSWORD: the user the URL must name, or NULL */
	char **pass_env; /* NULL-terminated names a cmd may see besides PATH and HOME, or NULL */
	int timeout_ms;  /* limit for cmd and file; <= 0: FL_SECRET_DEFAULT_TIMEOUT_MS */
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

/* One resolution of fl_secret_resolve_many: ref and what in, the rest out. */
typedef struct {
	const fl_secret_ref *ref;
	const char *what;
	fl_secret *out;     /* set on success; the caller frees */
	fl_error *err;      /* set on failure */
	fl_error *warnings; /* as fl_secret_resolve's */
} fl_secret_job;

/* At most this many secrets are fetched at once. */
#define FL_SECRET_MAX_PARALLEL 16

/*
 * Resolves jobs[0..n) at the same time (up to FL_SECRET_MAX_PARALLEL
 * threads), each under its own time limit, so ten `gcloud` calls take about
 * as long as the slowest one. Returns how many failed.
 */
size_t fl_secret_resolve_many(fl_secret_job *jobs, size_t n);

/* A connection URL, parsed: every member NULL when the URL does not say. */
typedef struct {
	char *
	    host; /* a name, an address (IPv6 without brackets) or a socket directory (?host=/cloudsql/...) */
	char *port;
	char *dbname;
	char *user;
	char *password; /* wiped by fl_conn_url_clear */
	char *sslmode;
	char **keys, **values; /* further libpq keywords from the query (application_name, ...) */
	size_t nopts;
} fl_conn_url;

/*
 * Parses postgresql://, postgres://, SQLAlchemy's postgresql+DRIVER:// and
 * jdbc:postgresql:// URLs (userinfo and query parameters percent-decoded;
 * JDBC's user and password query parameters). Every part is validated: a
 * port of digits in range, one host, known query parameters only. Returns 0,
 * or -1 with *err (FL_EINPUT) that names the part at fault but never shows
 * the URL (it holds the password).
 */
int fl_conn_url_parse(const char *url, size_t len, fl_conn_url *u, fl_error **err);
void fl_conn_url_clear(fl_conn_url *u);

/* Resolves `ref` (any kind) and parses its value as a URL; messages as for fl_secret_resolve. */
int fl_secret_resolve_url(const fl_secret_ref *ref, const char *what, fl_conn_url *u, fl_error **warnings,
                          fl_error **err);

/* Where the secret comes from, for people: "<env AUTH_DB_PASSWORD>",
 * "<file /etc/pcc/auth>", "<cmd gcloud secrets ...>", "<env X or cmd ...>".
 * Control characters are shown escaped. Caller frees. */
char *fl_secret_describe(const fl_secret_ref *ref);

/* Deep copy / free of the members (not of `ref` itself). */
void fl_secret_ref_copy(fl_secret_ref *dst, const fl_secret_ref *src);
void fl_secret_ref_clear(fl_secret_ref *ref);

#endif
