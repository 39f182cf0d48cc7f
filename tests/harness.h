/*
 * harness: what the Criterion tests share.
 *
 * tests/run starts one throwaway PostgreSQL per run and exports PGHOST,
 * PGPORT, PGUSER (the superuser); each test makes its own fresh database with
 * th_db_new() and drops it at the end. Integration tests run the flotilla
 * binary named by $FLOTILLA_BIN (the ASan build, or the TSan build for the
 * threaded suites, whose names start with "par_") with th_run().
 */
#ifndef FL_HARNESS_H
#define FL_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A fresh database with a unique name (caller frees the name). */
char *th_db_new(void);
void th_db_drop(const char *name);
/* A connection to `db` as the superuser; asserts it works. */
PGconn *th_connect(const char *db);
/* Runs `sql` and asserts success. */
void th_exec(PGconn *c, const char *sql);
/* First column of the first row as a new string, NULL for SQL NULL or no rows; asserts success. */
char *th_query1(PGconn *c, const char *sql);
/* The first column of every row joined with `sep`, new string. */
char *th_queryall(PGconn *c, const char *sql, const char *sep);
/* Waits (at most 30 s, polling every 50 ms) until a session in `db` runs a statement LIKE `like`
 * (e.g. "%pg_sleep(30)%"): a flotilla child is at that point. Whether one was seen. */
bool th_wait_statement(const char *db, const char *like);

/* A fresh temporary directory (caller frees the name); removed by tests/run at the end. */
char *th_tmpdir(void);
/* Writes `content` to dir/rel, creating directories. */
void th_write(const char *dir, const char *rel, const char *content);
/* Reads a whole file, new string. */
char *th_read(const char *path);
/* Root of the source tree ($FLOTILLA_TOP). */
const char *th_top(void);
/* /work/shared or wherever $FLOTILLA_SHARED points. */
const char *th_shared(void);

/*
 * Runs $FLOTILLA_BIN with argv (argv[0] is ignored and replaced), in `cwd`
 * (NULL: current), with `env` extra "NAME=value" entries (NULL-terminated,
 * may be NULL), stdin from /dev/null. Captures stdout and stderr (new
 * strings) and returns the exit status (128+signal when killed).
 */
int th_run(const char *cwd, const char *const *env, char **out, char **err, const char *const *argv);
/*
 * Starts $FLOTILLA_BIN in the background as th_run does, stdout and stderr
 * into the files out_path and err_path, and returns its pid (the caller
 * waits). The child runs no Criterion code, so tests can signal it.
 */
pid_t th_spawn(const char *cwd, const char *const *env, const char *out_path, const char *err_path,
               const char *const *argv);
/* Runs `sh -c cmd`, capturing both streams together into *out; returns the exit status. */
int th_sh(const char *cmd, char **out);

/*
 * Runs Debian's chromium headless on the local file `file` (an absolute
 * path) with `args` (e.g. "--dump-dom", "--screenshot=PATH"), a fresh
 * profile under `dir`, background networking off, at most 120 s. stdout
 * into *out (new string); chromium's stderr into `stderr_path` (NULL: dropped:
 * add --enable-logging=stderr to see the page's console there). Returns the exit status.
 */
int th_chromium(const char *dir, const char *args, const char *file, const char *stderr_path, char **out);

/* Does `hay` contain `needle`? (for cr_assert messages that show both) */
int th_contains(const char *hay, const char *needle);

#endif
