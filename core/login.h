/*
 * login: how flotilla logs in as one of a manifest's logins (the admin or
 * the migrator of an environment), whatever the secret's shape.
 *
 * It owns the step from "environment + login + database" to connection
 * parameters: the host, port, sslmode and options of the environment; the
 * login's password, or its token (an IAM login token, fetched again on every
 * call, so each new connection has a fresh one and none is kept past the
 * call's owner), or its URL (whose host, port, sslmode and password replace
 * the environment's; its user must be the login's); the default timeouts of
 * pg.h, with the per-statement bound of the manifest's settings.
 *
 * Call fl_login_conn_init for every new connection, connect with c->params
 * (fl_pg_connect, or fl_pg_connect_retry with c->retries and c->interval_s
 * for the first connection of a run), then fl_login_conn_clear, which wipes
 * the secret. Nothing here prints.
 */
#ifndef FL_LOGIN_H
#define FL_LOGIN_H

#include "manifest.h"
#include "pg.h"
#include "secret.h"

typedef struct {
	fl_pg_params params;
	int retries, interval_s; /* from [settings] connect_retries / connect_retries_interval */
	/* owned by the struct: */
	char port[16];
	fl_pg_option *options;
	fl_secret *secret;
	fl_conn_url url;
} fl_login_conn;

/*
 * Fills c for `login` of `env` and `dbname` (NULL: the URL's, else libpq's
 * default); `settings` may be NULL (pg.h's defaults). Returns 0, or -1 with
 * *err naming the login ("migrator of environment prod <cmd ...>: ...").
 * Warnings of the secret's resolution are appended to *warnings (may be NULL).
 */
int fl_login_conn_init(fl_login_conn *c, const fl_environment *env, const fl_login *login, const char *dbname,
                       const fl_manifest_settings *settings, fl_error **warnings, fl_error **err);
/* The same with the login's password or URL resolved already (a run's preflight resolves
 * each secret once); a token is still fetched anew. known NULL: as fl_login_conn_init. */
int fl_login_conn_init_known(fl_login_conn *c, const fl_environment *env, const fl_login *login,
                             const char *dbname, const fl_manifest_settings *settings, const fl_secret *known,
                             fl_error **warnings, fl_error **err);
void fl_login_conn_clear(fl_login_conn *c);

#endif
