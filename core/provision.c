#include "provision.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orchestrate.h"
#include "pg.h"
#include "proc.h"
#include "text.h"

#define MAX_NAME 63

static bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* ---- string vectors ---- */

typedef struct {
	char **v;
	size_t n, cap;
} strvec;

static void sv_push(strvec *sv, char *owned)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = fl_realloc(sv->v, sv->cap * sizeof(char *));
	}
	sv->v[sv->n++] = owned;
}

static void sv_free(strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

/* ---- the desired state ---- */

fl_provision_desired *fl_provision_desired_new(void)
{
	return fl_calloc(1, sizeof(fl_provision_desired));
}

void fl_provision_desired_free(fl_provision_desired *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nroles; i++) {
		free(d->roles[i].name);
		if (d->roles[i].free_ctx)
			free(d->roles[i].password_ctx);
	}
	free(d->roles);
	fl_error_free(d->warnings);
	for (size_t i = 0; i < d->nservices; i++) {
		fl_provision_service *s = &d->services[i];
		free(s->name);
		free(s->database);
		free(s->owner);
		free(s->schema);
		for (size_t j = 0; j < s->nreaders; j++)
			free(s->readers[j]);
		free(s->readers);
	}
	free(d->services);
	free(d->migrator);
	free(d);
}

static const fl_provision_role *find_role(const fl_provision_desired *d, const char *name)
{
	for (size_t i = 0; i < d->nroles; i++)
		if (streq(d->roles[i].name, name))
			return &d->roles[i];
	return NULL;
}

void fl_provision_add_role(fl_provision_desired *d, const char *name, bool login, fl_provision_password_fn pw,
                           void *pw_ctx)
{
	fl_provision_role *r = (fl_provision_role *)find_role(d, name);
	if (!r) {
		d->roles = fl_realloc(d->roles, (d->nroles + 1) * sizeof(*d->roles));
		r = &d->roles[d->nroles++];
		memset(r, 0, sizeof(*r));
		r->name = fl_strdup(name);
	}
	if (r->free_ctx)
		free(r->password_ctx);
	r->free_ctx = false;
	r->login = login;
	r->password = pw;
	r->password_ctx = pw_ctx;
}

void fl_provision_set_migrator(fl_provision_desired *d, const char *role)
{
	free(d->migrator);
	d->migrator = role ? fl_strdup(role) : NULL;
}

size_t fl_provision_add_service(fl_provision_desired *d, const char *name, const char *database,
                                const char *owner, const char *schema)
{
	d->services = fl_realloc(d->services, (d->nservices + 1) * sizeof(*d->services));
	fl_provision_service *s = &d->services[d->nservices];
	memset(s, 0, sizeof(*s));
	s->name = fl_strdup(name);
	s->database = fl_strdup(database);
	s->owner = fl_strdup(owner);
	s->schema = fl_strdup(schema ? schema : "public");
	return d->nservices++;
}

void fl_provision_add_reader(fl_provision_desired *d, size_t service, const char *role)
{
	fl_provision_service *s = &d->services[service];
	for (size_t i = 0; i < s->nreaders; i++)
		if (streq(s->readers[i], role))
			return;
	s->readers = fl_realloc(s->readers, (s->nreaders + 1) * sizeof(char *));
	s->readers[s->nreaders++] = fl_strdup(role);
}

char *fl_provision_ro_group(const char *database)
{
	return fl_asprintf("%s_ro", database);
}

static void check_name(fl_error **errs, const char *what, const char *name)
{
	if (!name || !*name) {
		fl_error_append(errs, fl_error_new("%s: the name is empty", what));
		return;
	}
	size_t n = strlen(name);
	if (n > MAX_NAME)
		fl_error_append(errs, fl_error_new("%s '%s': longer than %d bytes", what, name, MAX_NAME));
	if (!fl_text_utf8_valid(name, n, NULL))
		fl_error_append(errs, fl_error_new("%s: the name is not valid UTF-8", what));
}

fl_error *fl_provision_validate(const fl_provision_desired *d)
{
	fl_error *errs = NULL;
	for (size_t i = 0; i < d->nroles; i++)
		check_name(&errs, "role", d->roles[i].name);
	if (d->migrator && !find_role(d, d->migrator))
		fl_error_append(&errs,
		                fl_error_new("the migrator '%s' is not one of the roles", d->migrator));
	for (size_t i = 0; i < d->nservices; i++) {
		const fl_provision_service *s = &d->services[i];
		check_name(&errs, "database", s->database);
		check_name(&errs, "schema", s->schema);
		if (s->database && strlen(s->database) + 3 > MAX_NAME)
			fl_error_append(&errs,
			                fl_error_new("service %s: database name '%s' leaves no room for "
			                             "its read-only group '%s_ro' (at most %d bytes)",
			                             s->name, s->database, s->database, MAX_NAME));
		if (s->external)
			;
		else if (!find_role(d, s->owner))
			fl_error_append(&errs,
			                fl_error_new("service %s: its owner '%s' is not one of the roles",
			                             s->name, s->owner));
		else if (streq(s->owner, d->migrator))
			fl_error_append(&errs, fl_error_new("service %s: its owner '%s' is also the migrator",
			                                    s->name, s->owner));
		for (size_t j = 0; j < s->nreaders; j++)
			if (!find_role(d, s->readers[j]))
				fl_error_append(
				    &errs, fl_error_new("service %s: reader '%s' is not one of the roles",
				                        s->name, s->readers[j]));
		for (size_t j = 0; j < i; j++)
			if (streq(d->services[j].database, s->database))
				fl_error_append(&errs,
				                fl_error_new("services %s and %s share database '%s'",
				                             d->services[j].name, s->name, s->database));
		char *ro = fl_provision_ro_group(s->database);
		if (find_role(d, ro))
			fl_error_append(&errs, fl_error_new("role '%s' clashes with the read-only group of "
			                                    "service %s",
			                                    ro, s->name));
		free(ro);
	}
	return errs;
}

/* ---- libpq helpers ---- */

static char *trimmed(const char *msg)
{
	char *s = fl_strdup(msg ? msg : "");
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	return s;
}

static fl_pg *connect_to(const fl_provision_target *t, const char *db, fl_error **err)
{
	fl_pg_params p = *t->admin;
	p.dbname = db;
	if (!p.application_name)
		p.application_name = "flotilla provision";
	return fl_pg_connect(&p, err);
}

static PGresult *exec(fl_pg *pg, const char *sql, int nparams, const char *const *params, const char *what,
                      fl_error **err)
{
	return fl_pg_query(pg, sql, nparams, params, what, NULL, err);
}

/* "already exists, skipping" and the like: nobody shows them, do not let them pile up */
static void drop_notices(fl_pg *pg)
{
	size_t n = 0;
	char **notes = fl_pg_take_notices(pg, &n);
	for (size_t i = 0; i < n; i++)
		free(notes[i]);
	free(notes);
}

static fl_error *exec_cmd(fl_pg *pg, const char *sql, const char *what)
{
	fl_error *err = NULL;
	fl_pg_exec(pg, sql, what, NULL, &err);
	drop_notices(pg);
	return err;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/*
 * The provision lock (lock) or its release. Taking it polls
 * pg_try_advisory_lock every 100 ms for up to timeout_ms (<= 0: the
 * default), so a run provisioning elsewhere, or a session that died
 * holding the lock, fails this one with a message naming the holder
 * instead of hanging it.
 */
static fl_error *advisory_c(fl_pg *pg, bool lock, int timeout_ms, const atomic_int *cancel);

static fl_error *advisory(fl_pg *pg, bool lock, int timeout_ms)
{
	return advisory_c(pg, lock, timeout_ms, NULL);
}

/* The same, given up as soon as *cancel is set (an interrupt while another run holds it). */
static fl_error *advisory_c(fl_pg *pg, bool lock, int timeout_ms, const atomic_int *cancel)
{
	char sql[160];
	if (!lock) {
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", FL_PROVISION_LOCK_KEY);
		return exec_cmd(pg, sql, "releasing the provision lock");
	}
	int limit = timeout_ms > 0 ? timeout_ms : FL_PROVISION_DEFAULT_LOCK_TIMEOUT_MS;
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", FL_PROVISION_LOCK_KEY);
	double t0 = now_ms();
	for (;;) {
		fl_error *err = NULL;
		char *v = fl_pg_value(pg, sql, 0, NULL, &err);
		bool got = v && v[0] == 't';
		free(v);
		if (err) {
			fl_error_prefix(err, "taking the provision lock");
			return err;
		}
		if (got)
			return NULL;
		if (cancel && atomic_load(cancel))
			return fl_error_kind_new(FL_EINTR,
			                         "interrupted while waiting for the provision lock");
		double left = limit - (now_ms() - t0);
		if (left <= 0)
			break;
		long long ms = left < 100 ? (long long)left + 1 : 100;
		struct timespec ts = {0, ms * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	char who[512];
	snprintf(
	    who, sizeof(who),
	    "SELECT 'pid ' || l.pid || ' (application_name \"' || coalesce(a.application_name, '?') || '\")'"
	    " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
	    " AND l.granted AND l.objsubid = 1 AND l.classid = %lld AND l.objid = %lld"
	    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1",
	    (long long)((unsigned long long)FL_PROVISION_LOCK_KEY >> 32),
	    (long long)((unsigned long long)FL_PROVISION_LOCK_KEY & 0xFFFFFFFFull));
	fl_error *e = NULL;
	char *h = fl_pg_value(pg, who, 0, NULL, &e);
	fl_error_free(e);
	fl_error *err = fl_error_kind_new(
	    FL_EDB,
	    "gave up after %d ms (migration_lock_timeout) waiting for the provision "
	    "lock (advisory lock %lld) in database %s: it is held by %s; another "
	    "flotilla is provisioning: let it finish, or end that session",
	    limit, FL_PROVISION_LOCK_KEY, PQdb(pg->conn), h ? h : "a session that has just ended");
	free(h);
	return err;
}

static char *quote_ident(fl_pg *pg, const char *s)
{
	return pg ? fl_pg_ident(pg, s) : fl_pg_ident_plain(s);
}

static bool val_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static char *val_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : fl_strdup(PQgetvalue(r, row, col));
}

/* ---- the actual state ---- */

/* One privilege on an object; grantee NULL is PUBLIC. */
struct grant {
	char *grantee;
	char *priv;
	bool grantable;
};

/* A database, schema, relation (kind 'S' sequence, 't' the others), or a
 * default-ACL entry (name = schema or NULL, owner = its role, kind = objtype). */
struct object {
	char *name;
	char *owner;
	char kind;
	struct grant *g;
	size_t ng;
};

struct objlist {
	struct object *v;
	size_t n;
};

static void objlist_free(struct objlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct object *o = &l->v[i];
		free(o->name);
		free(o->owner);
		for (size_t j = 0; j < o->ng; j++) {
			free(o->g[j].grantee);
			free(o->g[j].priv);
		}
		free(o->g);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct object *objlist_add(struct objlist *l, const char *name, const char *owner, char kind)
{
	l->v = fl_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	struct object *o = &l->v[l->n++];
	memset(o, 0, sizeof(*o));
	o->name = name ? fl_strdup(name) : NULL;
	o->owner = fl_strdup(owner ? owner : "");
	o->kind = kind;
	return o;
}

static void object_grant(struct object *o, const char *grantee, const char *priv, bool grantable)
{
	o->g = fl_realloc(o->g, (o->ng + 1) * sizeof(*o->g));
	o->g[o->ng].grantee = grantee ? fl_strdup(grantee) : NULL;
	o->g[o->ng].priv = fl_strdup(priv);
	o->g[o->ng].grantable = grantable;
	o->ng++;
}

static struct object *objlist_find(const struct objlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

/* The columns "is_public, grantee, privilege, grantable" of aclexplode rows `a`. */
#define ACL_COLS                                                                                             \
	"a.grantee = 0, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, "             \
	"a.privilege_type, a.is_grantable"

/*
 * Reads rows of (name, owner, kind, is_public, grantee, privilege, grantable),
 * ordered by object, into objects; a row whose privilege is NULL is an
 * object without grants.
 */
static void objects_from(const PGresult *r, struct objlist *out)
{
	struct object *cur = NULL;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetisnull(r, i, 0) ? NULL : PQgetvalue(r, i, 0);
		const char *owner = PQgetvalue(r, i, 1);
		char kind = PQgetvalue(r, i, 2)[0];
		if (!cur || !(name ? streq(cur->name, name) : cur->name == NULL) ||
		    !streq(cur->owner, owner) || cur->kind != kind)
			cur = objlist_add(out, name, owner, kind);
		if (PQgetisnull(r, i, 5))
			continue;
		bool is_public = val_bool(r, i, 3);
		object_grant(cur, is_public ? NULL : PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
		             val_bool(r, i, 6));
	}
}

static fl_error *read_objects(fl_pg *c, const char *sql, int nparams, const char *const *params,
                              const char *what, struct objlist *out)
{
	fl_error *err = NULL;
	PGresult *r = exec(c, sql, nparams, params, what, &err);
	if (!r)
		return err;
	objects_from(r, out);
	PQclear(r);
	return NULL;
}

struct role_state {
	char *name;
	bool login, super, createrole, createdb, replication, bypassrls;
};

struct member {
	char *group, *member;
	/* it lets the member SET ROLE and inherit privileges: always before
	 * PostgreSQL 16; from 16 on, a CREATEROLE admin's implicit membership in
	 * the roles it creates does neither */
	bool effective;
};

struct shared_state {
	char *admin;
	bool admin_super;
	bool pg16; /* GRANT ... WITH INHERIT TRUE, SET TRUE exists */
	struct role_state *roles;
	size_t nroles;
	struct member *members;
	size_t nmembers;
	struct objlist dbs;
};

static void shared_free(struct shared_state *s)
{
	free(s->admin);
	for (size_t i = 0; i < s->nroles; i++)
		free(s->roles[i].name);
	free(s->roles);
	for (size_t i = 0; i < s->nmembers; i++) {
		free(s->members[i].group);
		free(s->members[i].member);
	}
	free(s->members);
	objlist_free(&s->dbs);
}

static const struct role_state *state_role(const struct shared_state *s, const char *name)
{
	for (size_t i = 0; i < s->nroles; i++)
		if (streq(s->roles[i].name, name))
			return &s->roles[i];
	return NULL;
}

/* Is member an effective member of group (see struct member)? */
static bool state_member(const struct shared_state *s, const char *group, const char *member)
{
	for (size_t i = 0; i < s->nmembers; i++)
		if (streq(s->members[i].group, group) && streq(s->members[i].member, member))
			return s->members[i].effective;
	return false;
}

static fl_error *read_shared(fl_pg *c, struct shared_state *s)
{
	fl_error *err = NULL;
	PGresult *r = exec(c, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user", 0,
	                   NULL, "reading the admin role", &err);
	if (!r)
		return err;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return fl_error_kind_new(FL_EDB, "reading the admin role: current_user is not in pg_roles");
	}
	s->admin = val_str(r, 0, 0);
	s->admin_super = val_bool(r, 0, 1);
	PQclear(r);

	r = exec(
	    c,
	    "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
	    "FROM pg_roles",
	    0, NULL, "reading pg_roles", &err);
	if (!r)
		return err;
	s->nroles = (size_t)PQntuples(r);
	s->roles = fl_calloc(s->nroles, sizeof(*s->roles));
	for (int i = 0; i < PQntuples(r); i++) {
		struct role_state *rs = &s->roles[i];
		rs->name = val_str(r, i, 0);
		rs->login = val_bool(r, i, 1);
		rs->super = val_bool(r, i, 2);
		rs->createrole = val_bool(r, i, 3);
		rs->createdb = val_bool(r, i, 4);
		rs->replication = val_bool(r, i, 5);
		rs->bypassrls = val_bool(r, i, 6);
	}
	PQclear(r);

	s->pg16 = PQserverVersion(c->conn) >= 160000;
	r = exec(c,
	         s->pg16
	             ? "SELECT g.rolname, m.rolname, bool_or(a.set_option AND a.inherit_option) FROM "
	               "pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = "
	               "a.member GROUP BY 1, 2 ORDER BY 1, 2"
	             : "SELECT DISTINCT g.rolname, m.rolname, true FROM pg_auth_members a JOIN pg_roles g ON "
	               "g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2",
	         0, NULL, "reading pg_auth_members", &err);
	if (!r)
		return err;
	s->nmembers = (size_t)PQntuples(r);
	s->members = fl_calloc(s->nmembers, sizeof(*s->members));
	for (int i = 0; i < PQntuples(r); i++) {
		s->members[i].group = val_str(r, i, 0);
		s->members[i].member = val_str(r, i, 1);
		s->members[i].effective = val_bool(r, i, 2);
	}
	PQclear(r);

	return read_objects(
	    c,
	    "SELECT d.datname, pg_get_userbyid(d.datdba), 'd', " ACL_COLS " FROM pg_database d "
	    "LEFT JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a ON true "
	    "ORDER BY 1, 4, 5, 6",
	    0, NULL, "reading pg_database", &s->dbs);
}

struct db_state {
	struct objlist schemas;  /* the service's schema and public */
	struct objlist rels;     /* relations of the service's schema */
	struct objlist defaults; /* default ACL entries other than their role's own and the built-in ones */
};

static void db_state_free(struct db_state *s)
{
	objlist_free(&s->schemas);
	objlist_free(&s->rels);
	objlist_free(&s->defaults);
}

/* What read_db reads: the schemas, the relations of the schema, the default privileges. */
static const char *const db_reads[3] = {
    "SELECT n.nspname, pg_get_userbyid(n.nspowner), 'n', " ACL_COLS
    " FROM pg_namespace n LEFT JOIN LATERAL aclexplode(coalesce(n.nspacl, "
    "acldefault('n', n.nspowner))) a ON true WHERE n.nspname IN ($1, 'public') "
    "ORDER BY 1, 4, 5, 6",
    "SELECT c.relname, pg_get_userbyid(c.relowner), CASE WHEN c.relkind = 'S' THEN 'S' ELSE "
    "'t' END, " ACL_COLS " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' "
    "THEN 's' ELSE 'r' END::\"char\", c.relowner))) a ON true WHERE n.nspname = $1 AND "
    "c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY 1, 4, 5, 6",
    /* a global entry repeats the built-in defaults (PUBLIC EXECUTE on functions...): only changes
       count */
    "SELECT n.nspname, pg_get_userbyid(d.defaclrole), d.defaclobjtype, " ACL_COLS
    " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace CROSS JOIN "
    "LATERAL aclexplode(d.defaclacl) a WHERE a.grantee <> d.defaclrole AND NOT "
    "(d.defaclnamespace = 0 AND EXISTS (SELECT 1 FROM aclexplode(acldefault(CASE "
    "d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END::\"char\", d.defaclrole)) b "
    "WHERE b.grantee = a.grantee AND b.privilege_type = a.privilege_type AND b.is_grantable = "
    "a.is_grantable)) ORDER BY 1, 2, 3, 5, 6",
};

/*
 * A database's state: its three reads in one round trip (per database, a
 * fleet of hundreds pays each round trip hundreds of times). With got, one
 * try of the provision lock goes first in the same round trip, so that
 * when it is had the reads are made under it: *got says whether it was.
 */
static fl_error *read_db_lock(fl_pg *c, const char *schema, bool *got, struct db_state *s)
{
	const char *p[1] = {schema};
	char try_sql[80];
	snprintf(try_sql, sizeof(try_sql), "SELECT pg_try_advisory_lock(%lld)", FL_PROVISION_LOCK_KEY);
	fl_pg_batch_query q[4] = {
	    {try_sql, 0, NULL}, {db_reads[0], 1, p}, {db_reads[1], 1, p}, {db_reads[2], 0, NULL}};
	static const char *const what[4] = {"taking the provision lock", "reading pg_namespace",
	                                    "reading pg_class", "reading pg_default_acl"};
	size_t first = got ? 0 : 1;
	PGresult *res[4] = {NULL, NULL, NULL, NULL};
	fl_error *err = NULL;
	if (got)
		*got = false;
	if (fl_pg_batch(c, q + first, 4 - first, res + first, "reading the database's privileges", &err) ==
	    0) {
		for (size_t i = first; i < 4 && !err; i++)
			if (PQresultStatus(res[i]) != PGRES_TUPLES_OK) {
				fl_pg_diag d = {0};
				fl_pg_diag_fill(&d, res[i], c);
				err = fl_pg_diag_error(&d, NULL, 0, 0);
				fl_pg_diag_clear(&d);
				fl_error_prefix(err, "%s", what[i]);
			}
		if (got && PQresultStatus(res[0]) == PGRES_TUPLES_OK && PQntuples(res[0]) == 1)
			*got = PQgetvalue(res[0], 0, 0)[0] == 't';
		if (!err) {
			objects_from(res[1], &s->schemas);
			objects_from(res[2], &s->rels);
			objects_from(res[3], &s->defaults);
		}
	}
	for (size_t i = 0; i < 4; i++)
		PQclear(res[i]);
	return err;
}

static fl_error *read_db(fl_pg *c, const char *schema, struct db_state *s)
{
	return read_db_lock(c, schema, NULL, s);
}

/* ---- plans ---- */

struct pstep {
	fl_provision_step pub;
	char *exec;     /* the statement run when it differs from pub.sql (it holds a verifier): wiped */
	bool attempted; /* it was sent (the databases of the shared part run in parallel: no prefix) */
	char *creates;  /* CREATE DATABASE: the database's name (see run_step) */
};

struct plan {
	struct pstep *v;
	size_t n;
	size_t ran; /* steps started (the others never ran) */
	strvec warnings;
};

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].pub.database);
		free(p->v[i].pub.role);
		free(p->v[i].pub.desc);
		free(p->v[i].pub.sql);
		wipe_free(p->v[i].exec);
		free(p->v[i].creates);
	}
	free(p->v);
	sv_free(&p->warnings);
	memset(p, 0, sizeof(*p));
}

struct pctx {
	fl_pg *conn; /* for quoting */
	strvec pool; /* quoted names, freed with the context */
	struct plan *plan;
	const char *db;    /* NULL: shared part */
	const char *admin; /* the role provision runs as */
	bool prune;
};

static const char *Q(struct pctx *c, const char *ident)
{
	char *q = quote_ident(c->conn, ident);
	sv_push(&c->pool, q);
	return q;
}

static void add_step(struct pctx *c, const char *as_role, char *sql, char *exec_sql, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_step(struct pctx *c, const char *as_role, char *sql, char *exec_sql, const char *fmt, ...)
{
	struct plan *p = c->plan;
	p->v = fl_realloc(p->v, (p->n + 1) * sizeof(*p->v));
	struct pstep *s = &p->v[p->n++];
	memset(s, 0, sizeof(*s));
	s->pub.database = c->db ? fl_strdup(c->db) : NULL;
	s->pub.role = as_role ? fl_strdup(as_role) : NULL;
	va_list ap;
	va_start(ap, fmt);
	s->pub.desc = fl_vasprintf(fmt, ap);
	va_end(ap);
	s->pub.sql = sql;
	s->exec = exec_sql;
}

/* A privilege the desired state does not ask for: a warning, or with prune a step. */
static void extra(struct pctx *c, const char *as_role, char *prune_sql, const char *fact)
{
	if (c->prune)
		add_step(c, as_role, prune_sql, NULL, "prune: %s", fact);
	else {
		sv_push(&c->plan->warnings,
		        fl_asprintf("%s, which the manifest does not ask for (--prune revokes it)", fact));
		free(prune_sql);
	}
}

static void warn(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct pctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sv_push(&c->plan->warnings, fl_vasprintf(fmt, ap));
	va_end(ap);
}

/* A privilege name from aclexplode, safe to put back into SQL. */
static bool priv_ok(const char *p)
{
	if (!*p)
		return false;
	for (; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || *p == ' '))
			return false;
	return true;
}

enum allow { ALLOW_NO, ALLOW_YES, ALLOW_NO_GRANT_OPTION, ALLOW_SKIP };
typedef enum allow (*allow_fn)(const void *env, const struct object *o, const struct grant *g);

static const char *who(const char *grantee)
{
	return grantee ? grantee : "PUBLIC";
}

/*
 * Compares the grants of object `o` with what `allow` accepts, grantee by
 * grantee: extra privileges and extra grant options become one warning (or
 * REVOKE) each. `what` names the object for people ("table public.t in
 * database d"), `on` for SQL ("TABLE \"public\".\"t\""); `prefix` goes
 * before REVOKE (for ALTER DEFAULT PRIVILEGES).
 */
static void check_grants(struct pctx *c, const struct object *o, allow_fn allow, const void *env,
                         const char *what, const char *prefix, const char *on, const char *as_role)
{
	bool *done = fl_calloc(o->ng ? o->ng : 1, sizeof(bool));
	for (size_t i = 0; i < o->ng; i++) {
		if (done[i])
			continue;
		const char *grantee = o->g[i].grantee;
		fl_buf privs, opts;
		fl_buf_init(&privs);
		fl_buf_init(&opts);
		for (size_t j = i; j < o->ng; j++) {
			const struct grant *g = &o->g[j];
			if (done[j] || !(grantee ? streq(g->grantee, grantee) : g->grantee == NULL))
				continue;
			done[j] = true;
			if (!priv_ok(g->priv))
				continue;
			enum allow a = allow(env, o, g);
			if (a == ALLOW_NO) {
				fl_buf_printf(&privs, "%s%s", privs.len ? ", " : "", g->priv);
			} else if (a == ALLOW_NO_GRANT_OPTION && g->grantable) {
				fl_buf_printf(&opts, "%s%s", opts.len ? ", " : "", g->priv);
			}
		}
		const char *qg = grantee ? Q(c, grantee) : "PUBLIC";
		const char *role_word = grantee ? "role " : "";
		if (privs.len) {
			char *fact =
			    fl_asprintf("%s%s has %s on %s", role_word, who(grantee), privs.data, what);
			extra(c, as_role,
			      fl_asprintf("%sREVOKE %s ON %s FROM %s", prefix, privs.data, on, qg), fact);
			free(fact);
		}
		if (opts.len) {
			char *fact = fl_asprintf("%s%s may grant %s on %s to others", role_word, who(grantee),
			                         opts.data, what);
			extra(c, as_role,
			      fl_asprintf("%sREVOKE GRANT OPTION FOR %s ON %s FROM %s", prefix, opts.data, on,
			                  qg),
			      fact);
			free(fact);
		}
		fl_buf_free(&privs);
		fl_buf_free(&opts);
	}
	free(done);
}

static bool has_grant(const struct object *o, const char *grantee, const char *priv)
{
	for (size_t i = 0; i < o->ng; i++)
		if ((grantee ? streq(o->g[i].grantee, grantee) : o->g[i].grantee == NULL) &&
		    streq(o->g[i].priv, priv))
			return true;
	return false;
}

static bool has_public(const struct object *o)
{
	for (size_t i = 0; i < o->ng; i++)
		if (!o->g[i].grantee)
			return true;
	return false;
}

/* The object as it is after an ALTER ... OWNER: the old owner's grants move to the new one. */
static void object_copy(struct objlist *dst, const struct object *src, const char *new_owner)
{
	struct object *o = objlist_add(dst, src->name, new_owner ? new_owner : src->owner, src->kind);
	for (size_t i = 0; i < src->ng; i++) {
		const struct grant *g = &src->g[i];
		bool moved = new_owner && g->grantee && streq(g->grantee, src->owner);
		if (moved && has_grant(o, new_owner, g->priv))
			continue;
		object_grant(o, moved ? new_owner : g->grantee, g->priv, g->grantable);
	}
}

struct allow_env {
	const char *owner, *migrator, *ro, *admin, *schema;
};

static enum allow allow_database(const void *env, const struct object *o, const struct grant *g)
{
	const struct allow_env *e = env;
	(void)o;
	if (!g->grantee)
		return ALLOW_SKIP; /* PUBLIC loses everything anyway */
	if (streq(g->grantee, e->owner) || streq(g->grantee, e->admin))
		return ALLOW_YES;
	if ((streq(g->grantee, e->migrator) || streq(g->grantee, e->ro)) && streq(g->priv, "CONNECT"))
		return ALLOW_NO_GRANT_OPTION;
	return ALLOW_NO;
}

static enum allow allow_schema(const void *env, const struct object *o, const struct grant *g)
{
	const struct allow_env *e = env;
	if (!g->grantee) {
		/* PostgreSQL's own default, harmless once PUBLIC cannot connect */
		if (streq(o->name, "public") && streq(g->priv, "USAGE"))
			return ALLOW_NO_GRANT_OPTION;
		if (streq(o->name, "public") && streq(g->priv, "CREATE"))
			return ALLOW_SKIP; /* revoked as a step of its own */
		return ALLOW_NO;
	}
	if (streq(g->grantee, e->owner) || streq(g->grantee, e->admin))
		return ALLOW_YES;
	if (streq(g->grantee, e->ro) && streq(g->priv, "USAGE"))
		return ALLOW_NO_GRANT_OPTION;
	return ALLOW_NO;
}

static enum allow allow_relation(const void *env, const struct object *o, const struct grant *g)
{
	const struct allow_env *e = env;
	(void)o;
	if (g->grantee && (streq(g->grantee, e->owner) || streq(g->grantee, e->admin)))
		return ALLOW_YES;
	if (g->grantee && streq(g->grantee, e->ro) && streq(g->priv, "SELECT"))
		return ALLOW_NO_GRANT_OPTION;
	return ALLOW_NO;
}

static bool default_wanted(const struct allow_env *e, const struct object *o)
{
	return streq(o->owner, e->owner) && streq(o->name, e->schema) && (o->kind == 'r' || o->kind == 'S');
}

static enum allow allow_default(const void *env, const struct object *o, const struct grant *g)
{
	const struct allow_env *e = env;
	if (default_wanted(e, o) && g->grantee && streq(g->grantee, e->ro) && streq(g->priv, "SELECT"))
		return ALLOW_NO_GRANT_OPTION;
	return ALLOW_NO;
}

/* ---- the shared part ---- */

/* The password of r as a SQL literal of its verifier (NULL in a dry run). */
static fl_error *verifier_literal(fl_pg *pg, const fl_provision_role *r, bool dry_run, char **lit)
{
	*lit = NULL;
	if (dry_run)
		return NULL;
	char *pw = NULL;
	fl_error *err = r->password(r->password_ctx, r->name, &pw);
	if (err) {
		wipe_free(pw);
		/* cppcheck-suppress returnDanglingLifetime ; err does not point at pw */
		return err;
	}
	if (!pw || !*pw) {
		wipe_free(pw);
		return fl_error_new("the password of role %s is empty", r->name);
	}
	PGconn *c = pg->conn;
	char *v = PQencryptPasswordConn(c, pw, r->name, "scram-sha-256");
	wipe_free(pw);
	if (!v) {
		char *m = trimmed(PQerrorMessage(c));
		fl_error *e =
		    fl_error_kind_new(FL_EDB, "computing the password verifier of role %s: %s", r->name, m);
		free(m);
		return e;
	}
	char *l = PQescapeLiteral(c, v, strlen(v));
	explicit_bzero(v, strlen(v));
	PQfreemem(v);
	if (!l)
		return fl_error_kind_new(FL_EDB, "quoting the password verifier of role %s failed", r->name);
	*lit = fl_strdup(l);
	explicit_bzero(l, strlen(l));
	PQfreemem(l);
	return NULL;
}

struct want_role {
	const char *name;
	bool login;
	const fl_provision_role *r; /* NULL: a read-only group */
	const char *group_of;       /* the group's database */
};

static bool is_owner(const fl_provision_desired *d, const char *name)
{
	for (size_t i = 0; i < d->nservices; i++)
		if (streq(d->services[i].owner, name))
			return true;
	return false;
}

static bool wanted_member(const fl_provision_desired *d, const char *admin, char *const *ro,
                          const char *group, const char *member)
{
	for (size_t i = 0; i < d->nservices; i++) {
		const fl_provision_service *s = &d->services[i];
		if (streq(group, s->owner) && (streq(member, d->migrator) || streq(member, admin)))
			return true;
		if (streq(group, ro[i]))
			for (size_t j = 0; j < s->nreaders; j++)
				if (streq(member, s->readers[j]))
					return true;
	}
	return false;
}

static bool managed(const fl_provision_desired *d, char *const *ro, const char *name)
{
	if (find_role(d, name))
		return true;
	for (size_t i = 0; i < d->nservices; i++)
		if (streq(ro[i], name))
			return true;
	return false;
}

/* A partial state knows every member of the groups of its own services (the
 * owners: admin and migrator; the read-only groups: their readers), nothing more. */
static bool judged_group(const fl_provision_desired *d, char *const *ro, const char *group)
{
	for (size_t i = 0; i < d->nservices; i++)
		if (!d->services[i].external && (streq(group, d->services[i].owner) || streq(group, ro[i])))
			return true;
	return false;
}

static fl_error *plan_roles(struct pctx *c, const fl_provision_desired *d, char *const *ro,
                            const struct shared_state *s, const fl_provision_opts *o)
{
	size_t nwant = d->nroles + d->nservices;
	struct want_role *want = fl_calloc(nwant, sizeof(*want));
	for (size_t i = 0; i < d->nroles; i++)
		want[i] = (struct want_role){d->roles[i].name, d->roles[i].login, &d->roles[i], NULL};
	for (size_t i = 0; i < d->nservices; i++)
		want[d->nroles + i] = (struct want_role){ro[i], false, NULL, d->services[i].database};

	fl_error *err = NULL;
	for (size_t i = 0; i < nwant && !err; i++) {
		const struct want_role *w = &want[i];
		if (streq(w->name, s->admin))
			continue; /* provision does not reshape the role it runs as */
		if (w->r && w->r->external)
			continue; /* another service's: its own run creates and shapes it */
		const char *q = Q(c, w->name);
		const char *attr = w->login ? "LOGIN" : "NOLOGIN";
		bool pw = w->r && w->r->password;
		const struct role_state *rs = state_role(s, w->name);
		if (!rs) {
			char *lit = NULL;
			if (pw && (err = verifier_literal(c->conn, w->r, o->dry_run, &lit)))
				break;
			if (w->group_of)
				add_step(c, NULL, fl_asprintf("CREATE ROLE %s NOLOGIN", q), NULL,
				         "create role %s (NOLOGIN), the read-only group of database %s",
				         w->name, w->group_of);
			else if (pw)
				add_step(c, NULL,
				         fl_asprintf("CREATE ROLE %s %s PASSWORD %s", q, attr,
				                     FL_PROVISION_VERIFIER_SHOWN),
				         lit ? fl_asprintf("CREATE ROLE %s %s PASSWORD %s", q, attr, lit)
				             : NULL,
				         "create role %s (%s, with its password)", w->name, attr);
			else
				add_step(c, NULL, fl_asprintf("CREATE ROLE %s %s", q, attr), NULL,
				         "create role %s (%s)", w->name, attr);
			wipe_free(lit);
			continue;
		}
		if (w->login && !rs->login)
			add_step(c, NULL, fl_asprintf("ALTER ROLE %s LOGIN", q), NULL, "let role %s log in",
			         w->name);
		if (!w->login && rs->login) {
			char *fact = fl_asprintf("role %s can log in", w->name);
			extra(c, NULL, fl_asprintf("ALTER ROLE %s NOLOGIN", q), fact);
			free(fact);
		}
		static const struct {
			size_t off;
			const char *attr, *neg;
		} attrs[] = {
		    {offsetof(struct role_state, super), "SUPERUSER", "NOSUPERUSER"},
		    {offsetof(struct role_state, createrole), "CREATEROLE", "NOCREATEROLE"},
		    {offsetof(struct role_state, createdb), "CREATEDB", "NOCREATEDB"},
		    {offsetof(struct role_state, replication), "REPLICATION", "NOREPLICATION"},
		    {offsetof(struct role_state, bypassrls), "BYPASSRLS", "NOBYPASSRLS"},
		};
		for (size_t k = 0; k < sizeof(attrs) / sizeof(attrs[0]); k++) {
			if (!*(const bool *)((const char *)rs + attrs[k].off))
				continue;
			char *fact = fl_asprintf("role %s has %s", w->name, attrs[k].attr);
			extra(c, NULL, fl_asprintf("ALTER ROLE %s %s", q, attrs[k].neg), fact);
			free(fact);
		}
		if (pw && o->reset_passwords) {
			char *lit = NULL;
			if ((err = verifier_literal(c->conn, w->r, o->dry_run, &lit)))
				break;
			add_step(c, NULL,
			         fl_asprintf("ALTER ROLE %s PASSWORD %s", q, FL_PROVISION_VERIFIER_SHOWN),
			         lit ? fl_asprintf("ALTER ROLE %s PASSWORD %s", q, lit) : NULL,
			         "set the password of role %s", w->name);
			wipe_free(lit);
		}
	}
	free(want);
	return err;
}

static void plan_database(struct pctx *c, const fl_provision_desired *d, const fl_provision_service *sv,
                          const char *ro, const struct shared_state *s)
{
	const char *qdb = Q(c, sv->database), *qo = Q(c, sv->owner);
	const struct object *db = objlist_find(&s->dbs, sv->database);
	struct objlist tmp = {0};
	if (!db) {
		add_step(c, NULL, fl_asprintf("CREATE DATABASE %s OWNER %s", qdb, qo), NULL,
		         "create database %s owned by %s", sv->database, sv->owner);
		c->plan->v[c->plan->n - 1].creates = fl_strdup(sv->database);
		struct object *o = objlist_add(&tmp, sv->database, sv->owner, 'd');
		object_grant(o, sv->owner, "CREATE", false);
		object_grant(o, sv->owner, "TEMPORARY", false);
		object_grant(o, sv->owner, "CONNECT", false);
		object_grant(o, NULL, "TEMPORARY", false);
		object_grant(o, NULL, "CONNECT", false);
	} else if (!streq(db->owner, sv->owner)) {
		add_step(c, NULL, fl_asprintf("ALTER DATABASE %s OWNER TO %s", qdb, qo), NULL,
		         "make %s the owner of database %s (was %s)", sv->owner, sv->database, db->owner);
		object_copy(&tmp, db, sv->owner);
	} else {
		object_copy(&tmp, db, NULL);
	}
	const struct object *now = &tmp.v[0];
	if (has_public(now))
		add_step(c, NULL, fl_asprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", qdb), NULL,
		         "take PUBLIC's access to database %s away", sv->database);
	const char *need[3] = {sv->owner, d->migrator, ro};
	for (size_t i = 0; i < 3; i++) {
		/* a migrator that is the admin gets in as a member of the owner (or as superuser) */
		if (!need[i] || (i == 1 && streq(need[i], s->admin)))
			continue;
		if (!has_grant(now, need[i], "CONNECT"))
			add_step(c, NULL,
			         fl_asprintf("GRANT CONNECT ON DATABASE %s TO %s", qdb, Q(c, need[i])), NULL,
			         "let %s connect to database %s", need[i], sv->database);
	}
	struct allow_env env = {sv->owner, d->migrator, ro, s->admin, sv->schema};
	char *what = fl_asprintf("database %s", sv->database);
	char *on = fl_asprintf("DATABASE %s", qdb);
	check_grants(c, now, allow_database, &env, what, "", on, NULL);
	free(what);
	free(on);
	objlist_free(&tmp);
}

/* dbsteps[i]: where service i's database steps end in the shared plan (they start where
 * service i-1's end, or at *db_from); NULL: not wanted */
static fl_error *plan_shared(struct pctx *c, const fl_provision_desired *d, char *const *ro,
                             const struct shared_state *s, const fl_provision_opts *o, size_t *db_from,
                             size_t *dbsteps)
{
	fl_error *err = plan_roles(c, d, ro, s, o);
	if (err)
		return err;
	/* from PostgreSQL 16 a membership may lack SET or INHERIT; these need both */
	const char *opts16 = s->pg16 ? " WITH INHERIT TRUE, SET TRUE" : "";
	/* CREATE DATABASE ... OWNER x, and acting as x later, need the admin to be a member of x */
	for (size_t i = 0; i < d->nservices; i++) {
		const char *owner = d->services[i].owner;
		if (d->services[i].external)
			continue;
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			seen |= streq(d->services[j].owner, owner);
		if (seen || s->admin_super || streq(owner, s->admin) || state_member(s, owner, s->admin))
			continue;
		add_step(c, NULL, fl_asprintf("GRANT %s TO %s%s", Q(c, owner), Q(c, s->admin), opts16), NULL,
		         "grant role %s to the admin %s, so that it can create and manage its database",
		         owner, s->admin);
	}
	*db_from = c->plan->n;
	for (size_t i = 0; i < d->nservices; i++) {
		if (!d->services[i].external)
			plan_database(c, d, &d->services[i], ro[i], s);
		dbsteps[i] = c->plan->n;
	}
	/* a migrator that is the admin is a member already, or a superuser that needs no membership */
	if (d->migrator && !streq(d->migrator, s->admin))
		for (size_t i = 0; i < d->nroles; i++) {
			const char *owner = d->roles[i].name;
			if (d->roles[i].external || !is_owner(d, owner) || streq(owner, d->migrator) ||
			    state_member(s, owner, d->migrator))
				continue;
			add_step(
			    c, NULL, fl_asprintf("GRANT %s TO %s%s", Q(c, owner), Q(c, d->migrator), opts16),
			    NULL, "grant role %s to the migrator %s, so that migrations run as the owner",
			    owner, d->migrator);
		}
	for (size_t i = 0; i < d->nservices; i++) {
		const fl_provision_service *sv = &d->services[i];
		for (size_t j = 0; j < sv->nreaders; j++) {
			if (state_member(s, ro[i], sv->readers[j]))
				continue;
			const fl_provision_role *r = find_role(d, sv->readers[j]);
			if (r && r->external && !state_role(s, r->name))
				continue; /* it gets its membership when its own service runs */
			add_step(c, NULL,
			         fl_asprintf("GRANT %s TO %s%s", Q(c, ro[i]), Q(c, sv->readers[j]), opts16),
			         NULL, "grant role %s to %s, so that it can read database %s", ro[i],
			         sv->readers[j], sv->database);
		}
	}
	for (size_t i = 0; i < s->nmembers; i++) {
		const struct member *m = &s->members[i];
		if (streq(m->member, s->admin) ||
		    !(d->partial ? judged_group(d, ro, m->group)
		                 : managed(d, ro, m->group) || managed(d, ro, m->member)) ||
		    wanted_member(d, s->admin, ro, m->group, m->member))
			continue;
		char *fact = fl_asprintf("role %s is a member of role %s", m->member, m->group);
		extra(c, NULL, fl_asprintf("REVOKE %s FROM %s", Q(c, m->group), Q(c, m->member)), fact);
		free(fact);
	}
	return NULL;
}

/* ---- one database ---- */

static const char *objtype_word(char kind)
{
	switch (kind) {
	case 'r':
		return "TABLES";
	case 'S':
		return "SEQUENCES";
	case 'f':
		return "FUNCTIONS";
	case 'T':
		return "TYPES";
	case 'n':
		return "SCHEMAS";
	default:
		return NULL;
	}
}

static void plan_db(struct pctx *c, const fl_provision_service *sv, const char *ro, const struct db_state *st)
{
	const char *o = sv->owner, *sc = sv->schema, *db = sv->database;
	const char *qo = Q(c, o), *qsc = Q(c, sc), *qro = Q(c, ro);
	struct allow_env env = {o, NULL, ro, c->admin, sc};

	struct objlist tmp = {0};
	const struct object *sch = objlist_find(&st->schemas, sc);
	if (!sch) {
		add_step(c, o, fl_asprintf("CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s", qsc, qo), NULL,
		         "create schema %s owned by %s", sc, o);
		struct object *n = objlist_add(&tmp, sc, o, 'n');
		object_grant(n, o, "USAGE", false);
		object_grant(n, o, "CREATE", false);
	} else if (!streq(sch->owner, o)) {
		add_step(c, NULL, fl_asprintf("ALTER SCHEMA %s OWNER TO %s", qsc, qo), NULL,
		         "make %s the owner of schema %s (was %s)", o, sc, sch->owner);
		object_copy(&tmp, sch, o);
	} else {
		object_copy(&tmp, sch, NULL);
	}
	const struct object *now = &tmp.v[0];
	const struct object *pub = streq(sc, "public") ? now : objlist_find(&st->schemas, "public");
	if (pub && has_grant(pub, NULL, "CREATE"))
		add_step(c, NULL, fl_strdup("REVOKE CREATE ON SCHEMA public FROM PUBLIC"), NULL,
		         "stop PUBLIC from creating objects in schema public");
	if (!has_grant(now, ro, "USAGE"))
		add_step(c, o, fl_asprintf("GRANT USAGE ON SCHEMA %s TO %s", qsc, qro), NULL,
		         "let %s use schema %s", ro, sc);
	char *what = fl_asprintf("schema %s in database %s", sc, db);
	char *on = fl_asprintf("SCHEMA %s", qsc);
	check_grants(c, now, allow_schema, &env, what, "", on, NULL);
	free(what);
	free(on);
	objlist_free(&tmp);

	bool need_tables = false, need_seqs = false;
	for (size_t i = 0; i < st->rels.n; i++) {
		const struct object *r = &st->rels.v[i];
		const char *kind = r->kind == 'S' ? "sequence" : "table";
		if (!streq(r->owner, o)) {
			warn(c,
			     "%s %s.%s in database %s is owned by %s, not by %s: its readers are not managed",
			     kind, sc, r->name, db, r->owner, o);
			continue;
		}
		if (!has_grant(r, ro, "SELECT")) {
			if (r->kind == 'S')
				need_seqs = true;
			else
				need_tables = true;
		}
		what = fl_asprintf("%s %s.%s in database %s", kind, sc, r->name, db);
		on = fl_asprintf("%s %s.%s", r->kind == 'S' ? "SEQUENCE" : "TABLE", qsc, Q(c, r->name));
		check_grants(c, r, allow_relation, &env, what, "", on, o);
		free(what);
		free(on);
	}
	if (need_tables)
		add_step(c, o, fl_asprintf("GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s", qsc, qro), NULL,
		         "let %s read every table in schema %s", ro, sc);
	if (need_seqs)
		add_step(c, o, fl_asprintf("GRANT SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s", qsc, qro),
		         NULL, "let %s read every sequence in schema %s", ro, sc);

	bool have_tables = false, have_seqs = false;
	for (size_t i = 0; i < st->defaults.n; i++) {
		const struct object *e = &st->defaults.v[i];
		if (streq(e->owner, c->admin))
			continue;
		if (default_wanted(&env, e) && has_grant(e, ro, "SELECT")) {
			if (e->kind == 'S')
				have_seqs = true;
			else
				have_tables = true;
		}
		const char *type = objtype_word(e->kind);
		if (!type)
			continue;
		char *prefix = e->name ? fl_asprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s ",
		                                     Q(c, e->owner), Q(c, e->name))
		                       : fl_asprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s ", Q(c, e->owner));
		char *lower = fl_strdup(type);
		for (char *p = lower; *p; p++)
			*p = (char)(*p - 'A' + 'a');
		what = e->name ? fl_asprintf("the %s %s creates in schema %s of database %s", lower, e->owner,
		                             e->name, db)
		               : fl_asprintf("the %s %s creates in database %s", lower, e->owner, db);
		check_grants(c, e, allow_default, &env, what, prefix, type, NULL);
		free(prefix);
		free(lower);
		free(what);
	}
	if (!have_tables)
		add_step(c, o,
		         fl_asprintf(
		             "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT ON TABLES TO %s",
		             qo, qsc, qro),
		         NULL, "let %s read the tables %s creates later in schema %s", ro, o, sc);
	if (!have_seqs)
		add_step(
		    c, o,
		    fl_asprintf(
		        "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT ON SEQUENCES TO %s",
		        qo, qsc, qro),
		    NULL, "let %s read the sequences %s creates later in schema %s", ro, o, sc);
}

/* What a database looks like right after CREATE DATABASE from template1 (PostgreSQL 15+). */
static void fresh_db_state(struct db_state *st)
{
	struct object *n = objlist_add(&st->schemas, "public", "pg_database_owner", 'n');
	object_grant(n, "pg_database_owner", "USAGE", false);
	object_grant(n, "pg_database_owner", "CREATE", false);
	object_grant(n, NULL, "USAGE", false);
}

/* ---- running ---- */

/*
 * The shared part and then the databases run as jobs of the orchestrate
 * pool (one job, then one per database), so that an interrupt reaches them
 * as it reaches migrations: the running statement is cancelled, the
 * database's transaction rolled back, and nothing further starts.
 */
struct run {
	const fl_provision_desired *d;
	const fl_provision_target *t;
	const fl_provision_opts *o;
	char **ro;
	const char *admin;
	pthread_mutex_t mu; /* serializes on_step */
	struct dbjob *jobs;
	size_t njobs;
	/* the shared part */
	fl_pg *conn;
	struct shared_state ss;
	struct plan shared;
	fl_error *shared_err;
	/* its database steps (CREATE DATABASE ...): [db_from, dbsteps[0]), [dbsteps[0], dbsteps[1]),
	 * ... one range per service, run in parallel between the roles and the memberships after */
	size_t db_from, *dbsteps;
	bool locked;
	pthread_mutex_t err_mu; /* shared_err, from the parallel database steps */
};

struct dbjob {
	const fl_provision_service *sv;
	const char *ro;
	bool planned; /* dry run: planned on the calling thread, the database does not exist yet */
	bool ran;     /* the job started */
	struct plan plan;
	fl_error *err;
};

static void announce(struct run *R, const struct pstep *s)
{
	if (!R->o->on_step)
		return;
	pthread_mutex_lock(&R->mu);
	R->o->on_step(R->o->ctx, &s->pub);
	pthread_mutex_unlock(&R->mu);
}

/* An error of a statement that a cancel interrupted is the interrupt, not a server failure. */
static fl_error *as_interrupt(fl_orch_worker *w, fl_error *err)
{
	if (err && w && fl_orch_cancelled(w)) {
		fl_error_free(err);
		return fl_error_kind_new(FL_EINTR, "interrupted; the statement running was cancelled");
	}
	return err;
}

static fl_error *run_step(struct run *R, fl_orch_worker *w, fl_pg *c, struct pstep *s)
{
	if (w && fl_orch_cancelled(w))
		return fl_error_kind_new(FL_EINTR, "interrupted before: %s", s->pub.desc);
	announce(R, s);
	s->attempted = true;
	fl_pg_diag d = {0};
	fl_error *err = NULL;
	fl_pg_exec(c, s->exec ? s->exec : s->pub.sql, s->pub.desc, s->creates ? &d : NULL, &err);
	drop_notices(c);
	wipe_free(s->exec);
	s->exec = NULL;
	/*
	 * A killed run's CREATE DATABASE goes on in its backend after the client
	 * died, without the provision lock, which its idle main session let go at
	 * once: ours then meets it (42P04 once it committed, 23505 when ours waited
	 * on its row). Once the database is there, it was made as planned (the
	 * same owner; the steps after this one set the rest), so the step is done.
	 */
	if (err && s->creates && (streq(d.sqlstate, "42P04") || streq(d.sqlstate, "23505"))) {
		const char *params[] = {s->creates};
		fl_error *e2 = NULL;
		char *there = fl_pg_value(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params, &e2);
		if (there && !e2) {
			fl_error_free(err);
			err = NULL;
		}
		free(there);
		fl_error_free(e2);
	}
	fl_pg_diag_clear(&d);
	return as_interrupt(w, err);
}

/* One transaction; SET ROLE as each step asks. */
static fl_error *run_db_steps(struct run *R, fl_orch_worker *w, fl_pg *c, struct plan *p)
{
	fl_error *err = exec_cmd(c, "BEGIN", "starting a transaction");
	if (err)
		return err;
	const char *as = NULL;
	for (size_t i = 0; i < p->n && !err; i++) {
		struct pstep *s = &p->v[i];
		if (!(s->pub.role ? streq(s->pub.role, as) : as == NULL)) {
			char *q = s->pub.role ? quote_ident(c, s->pub.role) : NULL;
			char *sql =
			    q ? fl_asprintf("SET LOCAL ROLE %s", q) : fl_strdup("SET LOCAL ROLE NONE");
			char *what = fl_asprintf("SET ROLE %s", s->pub.role ? s->pub.role : "NONE");
			err = as_interrupt(w, exec_cmd(c, sql, what));
			free(q);
			free(sql);
			free(what);
			if (err)
				break;
			as = s->pub.role;
		}
		p->ran++;
		err = run_step(R, w, c, s);
	}
	if (err) {
		fl_error_free(exec_cmd(c, "ROLLBACK", "rolling back"));
		return err;
	}
	return as_interrupt(w, exec_cmd(c, "COMMIT", "committing"));
}

static void db_job(struct run *R, fl_orch_worker *w, struct dbjob *j)
{
	const fl_provision_service *sv = j->sv;
	bool dry = R->o->dry_run;
	fl_error *err = NULL;
	fl_pg *c = connect_to(R->t, sv->database, &err);
	if (!c) {
		if (dry) {
			/* e.g. the admin is not a member of the owner yet: the shared part would fix that */
			char *m = fl_error_format(err);
			sv_push(&j->plan.warnings,
			        fl_asprintf("database %s: not planned: %s", sv->database, m));
			free(m);
			fl_error_free(err);
			err = NULL;
		}
		if (err)
			fl_error_prefix(err, "database %s", sv->database);
		j->err = err;
		return;
	}
	if (w)
		fl_orch_set_pg(w, c);
	bool locked = false;
	struct db_state st = {0};
	if (dry) {
		err = as_interrupt(w, read_db(c, sv->schema, &st));
	} else {
		/* the common case, the lock free: taken and the state read in one round trip */
		err = as_interrupt(w, read_db_lock(c, sv->schema, &locked, &st));
		if (!err && !locked) {
			/* read without the lock: not ours to trust; read again once it is had */
			db_state_free(&st);
			memset(&st, 0, sizeof(st));
			err = as_interrupt(
			    w, advisory_c(c, true, R->o->lock_timeout_ms, w ? fl_orch_cancel_flag(w) : NULL));
			locked = !err;
			if (!err)
				err = as_interrupt(w, read_db(c, sv->schema, &st));
		}
	}
	if (!err) {
		struct pctx pc = {
		    .conn = c, .plan = &j->plan, .db = sv->database, .admin = R->admin, .prune = R->o->prune};
		plan_db(&pc, sv, j->ro, &st);
		sv_free(&pc.pool);
	}
	db_state_free(&st);
	if (!err && !dry && j->plan.n)
		err = run_db_steps(R, w, c, &j->plan);
	if (locked) {
		fl_error *e = advisory(c, false, 0);
		if (err)
			fl_error_free(e);
		else
			err = e;
	}
	if (w)
		fl_orch_set_conn(w, NULL);
	if (err && err->kind != FL_EINTR)
		fl_error_prefix(err, "database %s", sv->database);
	j->err = err;
	fl_pg_close(c);
}

static int db_job_main(fl_orch_worker *w, size_t i, void *arg)
{
	struct run *R = arg;
	struct dbjob *j = &R->jobs[i];
	if (j->planned || j->sv->external)
		return 0;
	j->ran = true;
	db_job(R, w, j);
	return j->err ? (j->err->kind == FL_EINTR ? 130 : 1) : 0;
}

/* The shared catalogs: roles, memberships, databases, on the maintenance database. */
static int shared_job_main(fl_orch_worker *w, size_t i, void *arg)
{
	(void)i;
	struct run *R = arg;
	const fl_provision_target *t = R->t;
	const fl_provision_opts *o = R->o;
	fl_error *err = NULL;
	bool locked = false;
	R->conn = connect_to(t, t->maintenance_db ? t->maintenance_db : "postgres", &err);
	if (!R->conn)
		goto done;
	if (w)
		fl_orch_set_pg(w, R->conn);
	if (!o->dry_run) {
		if ((err = as_interrupt(w, advisory_c(R->conn, true, o->lock_timeout_ms,
		                                      w ? fl_orch_cancel_flag(w) : NULL))))
			goto done;
		locked = true;
	}
	if ((err = as_interrupt(w, read_shared(R->conn, &R->ss))))
		goto done;
	R->admin = R->ss.admin;
	struct pctx pc = {
	    .conn = R->conn, .plan = &R->shared, .db = NULL, .admin = R->ss.admin, .prune = o->prune};
	err = plan_shared(&pc, R->d, R->ro, &R->ss, o, &R->db_from, R->dbsteps);
	sv_free(&pc.pool);
	if (err)
		goto done;
	if (!o->dry_run)
		for (size_t k = 0; k < R->db_from && !err; k++) {
			R->shared.ran++;
			err = run_step(R, w, R->conn, &R->shared.v[k]);
		}
done:
	if (w && R->conn)
		fl_orch_set_conn(w, NULL);
	/* the lock stays for the databases and the rest of the shared part (shared_tail_main) */
	R->locked = locked && !err && !o->dry_run;
	if (locked && !R->locked) {
		/* the per-database part locks each database; the shared catalogs are done */
		fl_error *e = advisory(R->conn, false, 0);
		if (err)
			fl_error_free(e);
		else
			err = e;
	}
	R->shared_err = err;
	return err ? (err->kind == FL_EINTR ? 130 : 1) : 0;
}

/*
 * One database's steps of the shared part (CREATE DATABASE, its owner, its
 * privileges), on a connection of its own: hundreds of databases are created
 * in parallel, as many at once as the run's threads (the connection budget).
 */
static int shared_db_main(fl_orch_worker *w, size_t i, void *arg)
{
	struct run *R = arg;
	size_t from = i == 0 ? R->db_from : R->dbsteps[i - 1], to = R->dbsteps[i];
	if (from == to)
		return 0;
	fl_error *err = NULL;
	fl_pg *c = connect_to(R->t, R->t->maintenance_db ? R->t->maintenance_db : "postgres", &err);
	if (c && w)
		fl_orch_set_pg(w, c);
	for (size_t k = from; c && k < to && !err; k++)
		err = run_step(R, w, c, &R->shared.v[k]);
	if (c && w)
		fl_orch_set_conn(w, NULL);
	fl_pg_close(c);
	if (!err)
		return 0;
	pthread_mutex_lock(&R->err_mu);
	fl_error_append(&R->shared_err, err);
	pthread_mutex_unlock(&R->err_mu);
	return err->kind == FL_EINTR ? 130 : 1;
}

/* The shared part after the databases (memberships that need them), then the lock goes. */
static int shared_tail_main(fl_orch_worker *w, size_t i, void *arg)
{
	(void)i;
	struct run *R = arg;
	fl_error *err = NULL;
	if (w)
		fl_orch_set_pg(w, R->conn);
	size_t from = R->d->nservices ? R->dbsteps[R->d->nservices - 1] : R->db_from;
	for (size_t k = from; k < R->shared.n && !err; k++)
		err = run_step(R, w, R->conn, &R->shared.v[k]);
	if (w)
		fl_orch_set_conn(w, NULL);
	fl_error *e = advisory(R->conn, false, 0);
	R->locked = false;
	if (err)
		fl_error_free(e);
	else
		err = e;
	R->shared_err = err;
	return err ? (err->kind == FL_EINTR ? 130 : 1) : 0;
}

/* Runs njobs of fn on the pool (or here, for the one shared job without signals). */
static void run_jobs(struct run *R, size_t njobs, fl_orch_job_fn fn, int threads)
{
	if (njobs == 0)
		return;
	fl_orch_opts oo = {.threads = threads, .handle_signals = R->o->handle_signals};
	int *results = fl_calloc(njobs, sizeof(int));
	fl_orch_run(njobs, fn, R, &oo, results);
	free(results);
}

/* Moves the steps (all of them in a dry run, else those that started) and warnings of p into r. */
static void take_plan(fl_provision_result *r, struct plan *p, bool dry_run)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += dry_run || p->v[i].attempted;
	if (n) {
		r->steps = fl_realloc(r->steps, (r->nsteps + n) * sizeof(*r->steps));
		for (size_t i = 0; i < p->n; i++) {
			if (!dry_run && !p->v[i].attempted)
				continue;
			r->steps[r->nsteps++] = p->v[i].pub;
			memset(&p->v[i].pub, 0, sizeof(p->v[i].pub));
		}
	}
	if (p->warnings.n) {
		r->warnings = fl_realloc(r->warnings, (r->nwarnings + p->warnings.n) * sizeof(char *));
		for (size_t i = 0; i < p->warnings.n; i++)
			r->warnings[r->nwarnings++] = p->warnings.v[i];
		p->warnings.n = 0;
	}
	plan_free(p);
}

/* A copy of a chain (the result keeps one per service, the caller gets the whole). */
static fl_error *error_copy(const fl_error *e)
{
	fl_error *out = NULL;
	for (; e; e = e->next) {
		fl_error *c = fl_error_at(e->file, e->line, e->col, "%s", e->msg);
		c->kind = e->kind;
		fl_error_append(&out, c);
	}
	return out;
}

/* ---- the part in each database, done by the caller (defer_databases) ---- */

struct fl_provision_dbs {
	const fl_provision_desired *d;
	const fl_provision_target *t;
	fl_provision_opts o;
	char *admin;
	char **ro; /* parallel to d->services */
};

/* What the part in each database needs of the run R, which ends when fl_provision_run returns. */
static fl_provision_dbs *dbs_new(struct run *R)
{
	fl_provision_dbs *p = fl_calloc(1, sizeof(*p));
	p->d = R->d;
	p->t = R->t;
	p->o = *R->o;
	p->o.on_step = NULL;
	p->o.ctx = NULL;
	p->admin = fl_strdup(R->ss.admin ? R->ss.admin : "");
	p->ro = R->ro; /* taken */
	R->ro = NULL;
	return p;
}

void fl_provision_dbs_free(fl_provision_dbs *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->ro && i < p->d->nservices; i++)
		free(p->ro[i]);
	free(p->ro);
	free(p->admin);
	free(p);
}

long fl_provision_db_index(const fl_provision_dbs *p, const char *name)
{
	for (size_t k = 0; p && k < p->d->nservices; k++)
		if (!p->d->services[k].external && streq(p->d->services[k].name, name))
			return (long)k;
	return -1;
}

static void warnings_to(strvec *sv, fl_error **warnings)
{
	for (size_t i = 0; i < sv->n; i++)
		fl_error_append(warnings, fl_error_new("provision: %s", sv->v[i]));
}

int fl_provision_db_clean(fl_provision_dbs *p, size_t k, fl_pg *conn, fl_error **warnings, fl_error **err)
{
	const fl_provision_service *sv = &p->d->services[k];
	struct db_state st = {0};
	fl_error *e = read_db(conn, sv->schema, &st);
	if (e) {
		db_state_free(&st);
		fl_error_prefix(e, "database %s", sv->database);
		*err = e;
		return -1;
	}
	struct plan plan = {0};
	struct pctx pc = {
	    .conn = conn, .plan = &plan, .db = sv->database, .admin = p->admin, .prune = p->o.prune};
	plan_db(&pc, sv, p->ro[k], &st);
	sv_free(&pc.pool);
	db_state_free(&st);
	int clean = plan.n == 0;
	if (clean) /* otherwise fl_provision_db_run plans again and says them */
		warnings_to(&plan.warnings, warnings);
	plan_free(&plan);
	return clean;
}

fl_error *fl_provision_db_run(fl_provision_dbs *p, size_t k, fl_orch_worker *w, fl_provision_step_fn on_step,
                              void *ctx, size_t *nsteps, fl_error **warnings)
{
	fl_provision_opts o = p->o;
	o.on_step = on_step;
	o.ctx = ctx;
	struct run R = {.d = p->d, .t = p->t, .o = &o, .ro = p->ro, .admin = p->admin};
	pthread_mutex_init(&R.mu, NULL);
	pthread_mutex_init(&R.err_mu, NULL);
	struct dbjob j = {.sv = &p->d->services[k], .ro = p->ro[k], .ran = true};
	db_job(&R, w, &j);
	if (nsteps)
		*nsteps += j.plan.ran;
	warnings_to(&j.plan.warnings, warnings);
	plan_free(&j.plan);
	pthread_mutex_destroy(&R.mu);
	pthread_mutex_destroy(&R.err_mu);
	return j.err;
}

fl_error *fl_provision_run(const fl_provision_desired *d, const fl_provision_target *t,
                           const fl_provision_opts *opts, fl_provision_result **out)
{
	static const fl_provision_opts no_opts;
	const fl_provision_opts *o = opts ? opts : &no_opts;
	fl_provision_result *res = fl_calloc(1, sizeof(*res));
	res->nservices = d->nservices;
	res->service_errors = fl_calloc(d->nservices ? d->nservices : 1, sizeof(fl_error *));
	struct run R = {.d = d, .t = t, .o = o};
	pthread_mutex_init(&R.mu, NULL);
	pthread_mutex_init(&R.err_mu, NULL);

	fl_error *err = fl_provision_validate(d);
	if (err) {
		res->shared_failed = true;
		goto done;
	}
	R.ro = fl_calloc(d->nservices ? d->nservices : 1, sizeof(char *));
	for (size_t i = 0; i < d->nservices; i++)
		R.ro[i] = fl_provision_ro_group(d->services[i].database);

	R.dbsteps = fl_calloc(d->nservices ? d->nservices : 1, sizeof(size_t));
	run_jobs(&R, 1, shared_job_main, 1);
	if (!R.shared_err && R.locked) {
		size_t nthreads = o->jobs > 0 ? (size_t)o->jobs : 8;
		run_jobs(&R, d->nservices, shared_db_main,
		         (int)(nthreads < d->nservices ? nthreads : d->nservices));
		if (!R.shared_err && o->handle_signals && fl_orch_interrupted())
			R.shared_err =
			    fl_error_kind_new(FL_EINTR, "interrupted while creating the databases");
		if (!R.shared_err) {
			run_jobs(&R, 1, shared_tail_main, 1);
		} else {
			fl_error *e = advisory(R.conn, false, 0);
			fl_error_free(e);
			R.locked = false;
		}
	}
	if (!R.shared_err && o->handle_signals && fl_orch_interrupted())
		R.shared_err = fl_error_kind_new(FL_EINTR, "interrupted before provisioning began");
	if ((err = R.shared_err)) {
		res->shared_failed = true;
		goto done;
	}

	if (o->defer_databases && !o->dry_run) {
		res->dbs = dbs_new(&R);
		goto done;
	}
	R.njobs = d->nservices;
	R.jobs = fl_calloc(R.njobs ? R.njobs : 1, sizeof(*R.jobs));
	size_t todo = 0;
	for (size_t i = 0; i < R.njobs; i++) {
		struct dbjob *j = &R.jobs[i];
		j->sv = &d->services[i];
		j->ro = R.ro[i];
		if (j->sv->external)
			continue;
		if (o->dry_run && !objlist_find(&R.ss.dbs, j->sv->database)) {
			struct db_state st = {0};
			fresh_db_state(&st);
			struct pctx dc = {.conn = R.conn,
			                  .plan = &j->plan,
			                  .db = j->sv->database,
			                  .admin = R.ss.admin,
			                  .prune = o->prune};
			plan_db(&dc, j->sv, j->ro, &st);
			sv_free(&dc.pool);
			db_state_free(&st);
			j->planned = true;
		} else {
			todo++;
		}
	}
	size_t nthreads = o->jobs > 0 ? (size_t)o->jobs : 8;
	if (nthreads > todo)
		nthreads = todo;
	if (todo)
		run_jobs(&R, R.njobs, db_job_main, (int)nthreads);

done:
	take_plan(res, &R.shared, o->dry_run);
	for (size_t i = 0; i < R.njobs; i++) {
		struct dbjob *j = &R.jobs[i];
		take_plan(res, &j->plan, o->dry_run);
		if (!j->err && !j->ran && !j->planned && !j->sv->external)
			j->err = fl_error_kind_new(FL_EINTR, "database %s: not provisioned: interrupted",
			                           j->sv->database);
		if (j->err) {
			res->service_errors[i] = error_copy(j->err);
			fl_error_append(&err, j->err);
		}
	}
	if (o->dry_run && o->on_step)
		for (size_t i = 0; i < res->nsteps; i++)
			o->on_step(o->ctx, &res->steps[i]);
	free(R.jobs);
	if (R.ro)
		for (size_t i = 0; i < d->nservices; i++)
			free(R.ro[i]);
	free(R.ro);
	shared_free(&R.ss);
	fl_pg_close(R.conn);
	free(R.dbsteps);
	pthread_mutex_destroy(&R.mu);
	pthread_mutex_destroy(&R.err_mu);
	if (out)
		*out = res;
	else
		fl_provision_result_free(res);
	return err;
}

void fl_provision_result_free(fl_provision_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nsteps; i++) {
		free(r->steps[i].database);
		free(r->steps[i].role);
		free(r->steps[i].desc);
		free(r->steps[i].sql);
	}
	free(r->steps);
	for (size_t i = 0; i < r->nwarnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	for (size_t i = 0; i < r->nservices; i++)
		fl_error_free(r->service_errors[i]);
	free(r->service_errors);
	fl_provision_dbs_free(r->dbs); /* when the caller did not take it */
	free(r);
}

/* ---- passwords and rotation ---- */

fl_error *fl_provision_password_new(char **out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned n = sizeof(alphabet) - 1;
	/* bytes at or above the largest multiple of n would favour the first letters */
	const unsigned limit = 256 - 256 % n;
	char *pw = fl_malloc(FL_PROVISION_PASSWORD_LEN + 1);
	unsigned char buf[64];
	size_t have = 0, used = 0, len = 0;
	while (len < FL_PROVISION_PASSWORD_LEN) {
		if (used == have) {
			ssize_t got = getrandom(buf, sizeof(buf), 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				int e = errno;
				explicit_bzero(buf, sizeof(buf));
				wipe_free(pw);
				*out = NULL;
				return fl_error_new("getrandom: %s", strerror(e));
			}
			have = (size_t)got;
			used = 0;
		}
		unsigned b = buf[used++];
		if (b < limit)
			pw[len++] = alphabet[b % n];
	}
	pw[len] = '\0';
	explicit_bzero(buf, sizeof(buf));
	*out = pw;
	return NULL;
}

/* Replaces every copy of secret[0..len) in b by "<password>"; wipes what it drops. */
static char *scrub(const fl_buf *b, const char *secret, size_t len)
{
	fl_buf o;
	fl_buf_init(&o);
	for (size_t i = 0; i < b->len;) {
		if (len && i + len <= b->len && memcmp(b->data + i, secret, len) == 0) {
			fl_buf_puts(&o, "<password>");
			i += len;
		} else {
			fl_buf_putc(&o, b->data[i++]);
		}
	}
	return fl_buf_detach(&o);
}

/* The start of a command's stderr on one line: at most 5 lines, 600 bytes. */
static char *excerpt(const char *text)
{
	fl_buf o;
	fl_buf_init(&o);
	int lines = 0;
	const char *p = text;
	while (*p && lines < 5 && o.len < 600) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n) {
			if (o.len)
				fl_buf_puts(&o, "; ");
			for (size_t i = 0; i < n && o.len < 600; i++)
				fl_buf_putc(&o, (unsigned char)p[i] < 0x20 ? '?' : p[i]);
			lines++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return fl_buf_detach(&o);
}

fl_error *fl_provision_sink_run(const char *sink, const char *data, size_t len, int timeout_ms)
{
	if (!sink || !*sink)
		return fl_error_new("no password sink command");
	if (timeout_ms <= 0)
		timeout_ms = FL_PROVISION_SINK_TIMEOUT_MS;
	/* proc gives the sink a clean environment, no inherited descriptors and default signals */
	fl_proc p = {.shell_cmd = sink, .in = data ? data : "", .inlen = len, .timeout_ms = timeout_ms};
	fl_error *perr = NULL;
	if (fl_proc_run(&p, &perr) != 0) {
		fl_error *e = fl_error_kind_new(FL_EDB, "password sink: %s", perr->msg);
		fl_error_free(perr);
		return e;
	}
	fl_buf errb = {.data = p.err, .len = p.errlen, .cap = p.errlen + 1};
	char *clean = scrub(&errb, data, len);
	char *ex = excerpt(clean);
	explicit_bzero(clean, strlen(clean));
	free(clean);
	int st = p.status;
	bool timed_out = p.timed_out, unread = p.in_unread;
	fl_proc_clear(&p);
	fl_error *err = NULL;
	const char *sep = *ex ? ": " : "";
	if (timed_out)
		err =
		    fl_error_kind_new(FL_EDB, "password sink did not finish within %d ms and was killed%s%s",
		                      timeout_ms, sep, ex);
	else if (WIFSIGNALED(st))
		err = fl_error_kind_new(FL_EDB, "password sink was killed by signal %d%s%s", WTERMSIG(st),
		                        sep, ex);
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		err = fl_error_kind_new(FL_EDB, "password sink exited with status %d%s%s", WEXITSTATUS(st),
		                        sep, ex);
	else if (unread)
		err = fl_error_kind_new(
		    FL_EDB, "password sink exited without reading the password from its standard input");
	free(ex);
	return err;
}

fl_error *fl_provision_rotate(const fl_provision_target *t, const char *role, const char *sink,
                              int timeout_ms)
{
	if (!role || !*role)
		return fl_error_new("rotate: no role");
	if (!sink || !*sink)
		return fl_error_new("role %s: no password sink to hand a new password to", role);
	fl_error *err = NULL;
	fl_pg *c = connect_to(t, t->maintenance_db ? t->maintenance_db : "postgres", &err);
	if (!c)
		return err;
	char *pw = NULL, *lit = NULL, *sql = NULL;
	if ((err = advisory(c, true, 0))) {
		fl_pg_close(c);
		return err;
	}
	const char *p[1] = {role};
	PGresult *r = exec(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p, "reading pg_roles", &err);
	if (!r)
		goto out;
	bool exists = PQntuples(r) == 1;
	PQclear(r);
	if (!exists) {
		err = fl_error_new("role %s does not exist (run 'flotilla provision' first)", role);
		goto out;
	}
	if ((err = fl_provision_password_new(&pw)))
		goto out;
	char *v = PQencryptPasswordConn(c->conn, pw, role, "scram-sha-256");
	if (!v) {
		char *m = trimmed(PQerrorMessage(c->conn));
		err = fl_error_kind_new(FL_EDB, "computing the password verifier of role %s: %s", role, m);
		free(m);
		goto out;
	}
	char *l = PQescapeLiteral(c->conn, v, strlen(v));
	explicit_bzero(v, strlen(v));
	PQfreemem(v);
	if (!l) {
		err = fl_error_kind_new(FL_EDB, "quoting the password verifier of role %s failed", role);
		goto out;
	}
	lit = fl_strdup(l);
	explicit_bzero(l, strlen(l));
	PQfreemem(l);

	if ((err = fl_provision_sink_run(sink, pw, strlen(pw), timeout_ms))) {
		fl_error_prefix(err, "role %s keeps its old password", role);
		goto out;
	}
	char *q = quote_ident(c, role);
	sql = fl_asprintf("ALTER ROLE %s PASSWORD %s", q, lit);
	free(q);
	char *what =
	    fl_asprintf("setting the new password of role %s (the sink already stored it; the old one "
	                "still works: run rotate again)",
	                role);
	err = exec_cmd(c, sql, what);
	free(what);
out:
	wipe_free(pw);
	wipe_free(lit);
	wipe_free(sql);
	fl_error *e = advisory(c, false, 0);
	if (err)
		fl_error_free(e);
	else
		err = e;
	fl_pg_close(c);
	return err;
}

/* ---- from the manifest ---- */

struct secret_ctx {
	const fl_secret_ref *ref;
	fl_error **warnings;
};

static fl_error *password_from_secret(void *ctx, const char *role, char **out)
{
	const struct secret_ctx *c = ctx;
	char *what = fl_asprintf("password of role %s", role);
	fl_secret *sec = NULL;
	fl_error *err = NULL;
	int rc = fl_secret_resolve(c->ref, what, &sec, c->warnings, &err);
	free(what);
	if (rc != 0)
		return err;
	*out = fl_strndup(sec->data, sec->len);
	fl_secret_free(sec);
	return NULL;
}

static void add_secret_role(fl_provision_desired *d, const char *name, bool login, const fl_secret_ref *ref)
{
	if (!ref) {
		const fl_provision_role *r = find_role(d, name);
		/* a role named twice (the migrator also under [roles]) keeps the password it has */
		if (r && r->password)
			return;
		fl_provision_add_role(d, name, login, NULL, NULL);
		return;
	}
	struct secret_ctx *c = fl_calloc(1, sizeof(*c));
	c->ref = ref;
	c->warnings = &d->warnings;
	fl_provision_add_role(d, name, login, password_from_secret, c);
	fl_provision_role *r = (fl_provision_role *)find_role(d, name);
	r->free_ctx = true;
	r->secret = ref;
}

fl_provision_desired *fl_provision_desired_from_manifest(const fl_manifest *m)
{
	fl_provision_desired *d = fl_provision_desired_new();
	const fl_environment *env = m->env;
	const char *admin = env ? env->admin.user : NULL;
	if (env && env->migrator.user) {
		add_secret_role(d, env->migrator.user, true, env->migrator.password);
		fl_provision_set_migrator(d, env->migrator.user);
	}
	for (size_t i = 0; i < m->nservices; i++) {
		const fl_service *s = &m->services[i];
		add_secret_role(d, s->owner, true, s->password);
		fl_provision_add_service(d, s->name, s->database, s->owner, s->schema);
	}
	for (size_t i = 0; i < m->nroles; i++) {
		const fl_role *r = &m->roles[i];
		if (streq(r->name, admin))
			continue;
		add_secret_role(d, r->name, r->login, r->password);
	}
	for (size_t i = 0; i < m->nservices; i++) {
		const fl_service *s = &m->services[i];
		for (size_t j = 0; j < s->nreads; j++)
			fl_provision_add_reader(d, s->reads_index[j], s->owner);
	}
	for (size_t i = 0; i < m->nroles; i++) {
		const fl_role *r = &m->roles[i];
		for (size_t j = 0; j < r->nreads; j++)
			fl_provision_add_reader(d, r->reads_index[j], r->name);
	}
	return d;
}

/* A role of a run that resolved its passwords beforehand (pw), else the manifest's reference. */
static void add_role_for(fl_provision_desired *d, const char *name, bool login, const fl_secret_ref *ref,
                         fl_provision_password_fn pw, void *pw_ctx)
{
	if (pw && ref)
		fl_provision_add_role(d, name, login, pw, pw_ctx);
	else
		add_secret_role(d, name, login, pw ? NULL : ref);
	fl_provision_role *r = (fl_provision_role *)find_role(d, name);
	if (ref)
		r->secret = ref;
}

fl_provision_desired *fl_provision_desired_for(const fl_manifest *m, const size_t *sel, size_t n,
                                               fl_provision_password_fn pw, void *pw_ctx)
{
	fl_provision_desired *d = fl_provision_desired_new();
	const fl_environment *env = m->env;
	const char *admin = env ? env->admin.user : NULL;
	/* index in d->services of each manifest service, or SIZE_MAX */
	size_t *at = fl_malloc((m->nservices ? m->nservices : 1) * sizeof(size_t));
	bool *chosen = fl_calloc(m->nservices ? m->nservices : 1, sizeof(bool));
	for (size_t i = 0; i < m->nservices; i++)
		at[i] = SIZE_MAX;
	for (size_t k = 0; k < n; k++)
		chosen[sel[k]] = true;
	d->partial = false;
	for (size_t i = 0; i < m->nservices; i++)
		d->partial |= !chosen[i];
	if (env && env->migrator.user) {
		add_role_for(d, env->migrator.user, true, env->migrator.password, pw, pw_ctx);
		fl_provision_set_migrator(d, env->migrator.user);
	}
	for (size_t i = 0; i < m->nservices; i++) {
		if (!chosen[i])
			continue;
		const fl_service *s = &m->services[i];
		add_role_for(d, s->owner, true, s->password, pw, pw_ctx);
		at[i] = fl_provision_add_service(d, s->name, s->database, s->owner, s->schema);
	}
	/* the groups of what the selected services read, made here so that they can join them */
	for (size_t i = 0; i < m->nservices; i++) {
		if (!chosen[i])
			continue;
		const fl_service *s = &m->services[i];
		for (size_t j = 0; j < s->nreads; j++) {
			size_t t = s->reads_index[j];
			if (at[t] == SIZE_MAX) {
				const fl_service *ts = &m->services[t];
				at[t] = fl_provision_add_service(d, ts->name, ts->database, ts->owner,
				                                 ts->schema);
				d->services[at[t]].external = true;
			}
			fl_provision_add_reader(d, at[t], s->owner);
		}
	}
	/* who else reads a selected service: other services' owners, and [roles] */
	for (size_t i = 0; i < m->nservices; i++) {
		const fl_service *u = &m->services[i];
		if (chosen[i])
			continue;
		for (size_t j = 0; j < u->nreads; j++) {
			size_t t = u->reads_index[j];
			if (!chosen[t])
				continue;
			if (!find_role(d, u->owner)) {
				fl_provision_add_role(d, u->owner, true, NULL, NULL);
				((fl_provision_role *)find_role(d, u->owner))->external = true;
			}
			fl_provision_add_reader(d, at[t], u->owner);
		}
	}
	for (size_t i = 0; i < m->nroles; i++) {
		const fl_role *r = &m->roles[i];
		bool wanted = !d->partial;
		for (size_t j = 0; j < r->nreads; j++)
			wanted |= chosen[r->reads_index[j]];
		if (!wanted || streq(r->name, admin))
			continue;
		add_role_for(d, r->name, r->login, r->password, pw, pw_ctx);
		for (size_t j = 0; j < r->nreads; j++)
			if (chosen[r->reads_index[j]])
				fl_provision_add_reader(d, at[r->reads_index[j]], r->name);
	}
	free(at);
	free(chosen);
	return d;
}

fl_error *fl_provision_admin_init(fl_provision_admin *a, const fl_environment *env, fl_error **warnings)
{
	return fl_provision_admin_init_known(a, env, NULL, NULL, warnings);
}

fl_error *fl_provision_admin_init_known(fl_provision_admin *a, const fl_environment *env,
                                        const fl_manifest_settings *settings, const fl_secret *known,
                                        fl_error **warnings)
{
	memset(a, 0, sizeof(*a));
	/* a password, a token or a URL: login knows each shape */
	fl_error *err = NULL;
	if (fl_login_conn_init_known(&a->conn, env, &env->admin, NULL, settings, known, warnings, &err) != 0)
		return err;
	a->params = a->conn.params;
	a->target.admin = &a->params;
	a->target.maintenance_db = env->maintenance_db;
	return NULL;
}

void fl_provision_admin_clear(fl_provision_admin *a)
{
	fl_login_conn_clear(&a->conn);
	memset(a, 0, sizeof(*a));
}
