#include "login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "migrator of environment prod", for messages. */
static char *login_what(const fl_environment *env, const fl_login *login)
{
	const char *role = login == &env->admin ? "admin" : login == &env->migrator ? "migrator" : "login";
	const char *kind = login->token ? "token" : login->url ? "connection" : "password";
	return fl_asprintf("%s %s of environment %s", role, kind, env->name);
}

int fl_login_conn_init(fl_login_conn *c, const fl_environment *env, const fl_login *login, const char *dbname,
                       const fl_manifest_settings *settings, fl_error **warnings, fl_error **err)
{
	return fl_login_conn_init_known(c, env, login, dbname, settings, NULL, warnings, err);
}

int fl_login_conn_init_known(fl_login_conn *c, const fl_environment *env, const fl_login *login,
                             const char *dbname, const fl_manifest_settings *settings, const fl_secret *known,
                             fl_error **warnings, fl_error **err)
{
	memset(c, 0, sizeof(*c));
	c->retries = settings ? settings->connect_retries : FL_PG_DEFAULT_CONNECT_RETRIES;
	c->interval_s =
	    settings ? settings->connect_retries_interval_s : FL_PG_DEFAULT_CONNECT_RETRIES_INTERVAL;
	fl_pg_params *p = &c->params;
	p->host = env->host;
	if (env->port > 0) {
		snprintf(c->port, sizeof(c->port), "%d", env->port);
		p->port = c->port;
	}
	p->dbname = dbname;
	p->user = login->user;
	p->sslmode = env->sslmode;
	p->connect_timeout = env->connect_timeout;
	if (settings)
		p->query_timeout_ms =
		    fl_pg_query_timeout_for(settings->statement_timeout_ms, settings->lock_timeout_ms);
	char *what = login_what(env, login);
	int rc = 0;
	/* a token is resolved here, on every call: that is what makes it fresh per connection */
	const fl_secret_ref *ref = login->token ? login->token : login->password;
	if (login->url) {
		rc = known ? fl_conn_url_parse(known->data, known->len, &c->url, err)
		           : fl_secret_resolve_url(login->url, what, &c->url, warnings, err);
		if (rc != 0 && known && *err)
			fl_error_prefix(*err, "%s", what);
		if (rc == 0 && c->url.user && login->user && strcmp(c->url.user, login->user) != 0) {
			*err = fl_error_new("%s: the connection URL is for user \"%s\", not for \"%s\"", what,
			                    c->url.user, login->user);
			rc = -1;
		}
		if (rc == 0) {
			if (c->url.host)
				p->host = c->url.host;
			if (c->url.port)
				p->port = c->url.port;
			if (c->url.sslmode)
				p->sslmode = c->url.sslmode;
			if (!p->dbname)
				p->dbname = c->url.dbname;
			if (!p->user)
				p->user = c->url.user;
			p->password = c->url.password;
		}
	} else if (ref && known && !login->token) {
		/* resolved once for the whole run (preflight): not asked for again */
		c->secret = fl_calloc(1, sizeof(*c->secret));
		c->secret->data = fl_strndup(known->data, known->len);
		c->secret->len = known->len;
		p->password = c->secret->data;
	} else if (ref) {
		rc = fl_secret_resolve(ref, what, &c->secret, warnings, err);
		if (rc == 0)
			p->password = c->secret->data;
	}
	free(what);
	if (rc != 0) {
		fl_login_conn_clear(c);
		return -1;
	}
	size_t n = env->noptions + c->url.nopts;
	if (n) {
		c->options = fl_calloc(n, sizeof(*c->options));
		for (size_t i = 0; i < env->noptions; i++)
			c->options[i] = (fl_pg_option){env->options[i].key, env->options[i].value};
		/* the URL's own keywords come last, so they win */
		for (size_t i = 0; i < c->url.nopts; i++)
			c->options[env->noptions + i] = (fl_pg_option){c->url.keys[i], c->url.values[i]};
		p->options = c->options;
		p->noptions = n;
	}
	return 0;
}

void fl_login_conn_clear(fl_login_conn *c)
{
	fl_secret_free(c->secret);
	fl_conn_url_clear(&c->url);
	free(c->options);
	memset(c, 0, sizeof(*c));
}
