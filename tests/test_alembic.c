/*
 * import alembic, baseline --from-alembic and keep_alembic_version, with
 * real Alembic projects (Debian's /usr/bin/alembic and SQLAlchemy) made by
 * `alembic init` in each test: the imported folder migrates a fresh
 * database to the schema `alembic upgrade head` builds online (pg_dump -s of
 * both, alembic_version and flotilla's own tables left out), undo matches
 * `alembic downgrade`; a database Alembic brought to revision 3 of 5 is
 * adopted and migrated to 5 with no drift; each broken chain is refused at
 * its file and line with nothing written.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ALEMBIC "/usr/bin/alembic"

struct proj {
	char *dir;    /* the manifest's folder (cwd of every run) */
	char svc[48]; /* the service, unique per test */
	char db[96];  /* flotilla's database of it */
	char owner[128];
	char project[48];
	char manifest[600];
	char home[700];     /* svc/<svc>: alembic.ini, alembic/, migrations/ */
	char versions[800]; /* svc/<svc>/alembic/versions, as messages name it */
};

/* The five revisions every schema test uses: each operation the issue names. */
static const char *const REV_IDS[5] = {"189b1231afd4", "2b5e7c1d9a30", "3c8f2a6e4b71", "4d9a1b3c5e82",
                                       "5e0b2c4d6f93"};
static const char *const REV_FILES[5][2] = {
    {"189b1231afd4_bootstrap_tables.py",
     "\"\"\"bootstrap tables\n\nRevision ID: 189b1231afd4\nRevises:\n\"\"\"\n"
     "from alembic import op\nimport sqlalchemy as sa\n\n"
     "revision = '189b1231afd4'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n"
     "def upgrade():\n"
     "    op.create_table('account',\n"
     "        sa.Column('id', sa.Integer, primary_key=True),\n"
     "        sa.Column('name', sa.String(50), nullable=False),\n"
     "        sa.Column('mood', sa.Enum('happy', 'sad', name='mood'), nullable=True))\n\n\n"
     "def downgrade():\n"
     "    op.drop_table('account')\n"
     "    op.execute('DROP TYPE mood')\n"},
    {"2b5e7c1d9a30_add_email.py",
     "\"\"\"add email\n\nRevision ID: 2b5e7c1d9a30\nRevises: 189b1231afd4\n\"\"\"\n"
     "from alembic import op\nimport sqlalchemy as sa\n\n"
     "revision: str = \"2b5e7c1d9a30\"\ndown_revision: str = \"189b1231afd4\"  # the base\n\n\n"
     "def upgrade():\n"
     "    op.add_column('account', sa.Column('email', sa.String(100)))\n"
     "    op.create_index('ix_account_email', 'account', ['email'], unique=True)\n\n\n"
     "def downgrade():\n"
     "    op.drop_index('ix_account_email', 'account')\n"
     "    op.drop_column('account', 'email')\n"},
    {"3c8f2a6e4b71_backfill_email.py",
     "from alembic import op\nimport sqlalchemy as sa\n\n"
     "revision = '3c8f2a6e4b71'\ndown_revision = '2b5e7c1d9a30'\n\n\n"
     "def upgrade():\n"
     "    op.execute(\"INSERT INTO account (name, mood) VALUES ('ada', 'happy'), ('bob', 'sad')\")\n"
     "    op.execute(\"UPDATE account SET email = lower(name) || '@example.com' WHERE email IS NULL\")\n\n\n"
     "def downgrade():\n"
     "    op.execute(\"UPDATE account SET email = NULL\")\n"},
    {"4d9a1b3c5e82_email_required.py",
     "from alembic import op\nimport sqlalchemy as sa\n\n"
     "revision = '4d9a1b3c5e82'\ndown_revision = '3c8f2a6e4b71'\n\n\n"
     "def upgrade():\n"
     "    with op.batch_alter_table('account') as batch:\n"
     "        batch.alter_column('email', existing_type=sa.String(100), nullable=False)\n"
     "        batch.add_column(sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()')))\n\n\n"
     "def downgrade():\n"
     "    with op.batch_alter_table('account') as batch:\n"
     "        batch.drop_column('created_at')\n"
     "        batch.alter_column('email', existing_type=sa.String(100), nullable=True)\n"},
    {"5e0b2c4d6f93_sessions.py",
     "from alembic import op\nimport sqlalchemy as sa\n\n"
     "revision = '5e0b2c4d6f93'\ndown_revision = '4d9a1b3c5e82'\n\n\n"
     "def upgrade():\n"
     "    op.create_table('session',\n"
     "        sa.Column('id', sa.BigInteger, primary_key=True),\n"
     "        sa.Column('account_id', sa.Integer, sa.ForeignKey('account.id', ondelete='CASCADE'), "
     "nullable=False),\n"
     "        sa.Column('state', sa.Enum('open', 'closed', name='session_state'), nullable=False, "
     "server_default='open'))\n"
     "    op.create_index('ix_session_account_state', 'session', ['account_id', 'state'])\n\n\n"
     "def downgrade():\n"
     "    op.drop_index('ix_session_account_state', 'session')\n"
     "    op.drop_table('session')\n"
     "    op.execute('DROP TYPE session_state')\n"},
};

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	cr_assert(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

/*
 * A manifest with one service and, in svc/<svc>, an Alembic project made
 * by `alembic init` whose sqlalchemy.url is `url_db` (libpq finds the test
 * server from PGHOST/PGPORT, as psycopg2 uses libpq), with no revisions yet.
 */
static void proj_init(struct proj *p, const char *tag, const char *url_db, const char *url_user,
                      const char *service_extra)
{
	static int n;
	p->dir = th_tmpdir();
	snprintf(p->project, sizeof(p->project), "al%d_%d", (int)getpid(), ++n);
	snprintf(p->svc, sizeof(p->svc), "svc_%s", tag);
	snprintf(p->db, sizeof(p->db), "%s_%s", p->project, p->svc);
	snprintf(p->owner, sizeof(p->owner), "%s_%s_owner", p->project, p->svc);
	snprintf(p->manifest, sizeof(p->manifest), "%s/flotilla.toml", p->dir);
	snprintf(p->home, sizeof(p->home), "svc/%s", p->svc);
	snprintf(p->versions, sizeof(p->versions), "svc/%s/alembic/versions", p->svc);
	char *m = xasprintf(
	    "version = 1\nproject = \"%s\"\n\n"
	    "[environments.test]\nadmin = { user = \"postgres\" }\nmigrator = { user = \"postgres\" }\n"
	    "service_passwords = false\n\n"
	    "[defaults]\ndatabase = \"${project}_${service}\"\nowner = \"${project}_${service}_owner\"\n"
	    "migrations = \"svc/${service}/migrations\"\n\n"
	    "[services.%s]\n%s",
	    p->project, p->svc, service_extra ? service_extra : "");
	th_write(p->dir, "flotilla.toml", m);
	free(m);
	char *keep = xasprintf("%s/migrations/.keep", p->home);
	th_write(p->dir, keep, "");
	free(keep);
	char *out = NULL;
	char *cmd =
	    xasprintf("cd '%s/%s' && " ALEMBIC " init alembic && rm -f alembic/versions/.keep* && "
	              "sed -i 's|^sqlalchemy.url = .*|sqlalchemy.url = postgresql://%s%s/%s|' alembic.ini",
	              p->dir, p->home, url_user ? url_user : "", url_user ? "@" : "", url_db);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
	free(cmd);
	free(out);
}

static void proj_revision(struct proj *p, const char *name, const char *text)
{
	char *rel = xasprintf("%s/alembic/versions/%s", p->home, name);
	th_write(p->dir, rel, text);
	free(rel);
}

static void proj_five(struct proj *p)
{
	for (size_t i = 0; i < 5; i++)
		proj_revision(p, REV_FILES[i][0], REV_FILES[i][1]);
}

/* `alembic ARGS` online, in the project: asserts it worked. */
static void alembic(struct proj *p, const char *args)
{
	char *out = NULL;
	char *cmd = xasprintf("cd '%s/%s' && " ALEMBIC " %s", p->dir, p->home, args);
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
	free(cmd);
	free(out);
}

static int run(struct proj *p, char **out, char **err, const char *const *args)
{
	const char *argv[32] = {"flotilla", "-m", p->manifest, "-e", "test"};
	size_t n = 5;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return th_run(p->dir, NULL, out, err, argv);
}

static void run_ok(struct proj *p, const char *const *args)
{
	char *out, *err;
	int rc = run(p, &out, &err, args);
	cr_assert_eq(rc, 0, "%s: %s\n%s", args[0], out, err);
	free(out);
	free(err);
}

/* The schema of db as pg_dump -s writes it, without owners, grants, Alembic's and flotilla's tables. */
static char *schema_of(const char *db)
{
	char *file = xasprintf("%s/dump.sql", th_tmpdir());
	char *cmd =
	    xasprintf("pg_dump -s -O -x --exclude-schema=flotilla --exclude-table=public.alembic_version "
	              "--exclude-table=public.flyway_schema_history -f '%s' '%s'",
	              file, db);
	char *out = NULL;
	int rc = th_sh(cmd, &out);
	cr_assert_eq(rc, 0, "%s\n%s", cmd, out);
	char *dump = th_read(file);
	/* pg_dump's \restrict lines carry a random key per run; comments name owners and the public
	 * schema's provisioning (which differs between a database flotilla made and one Alembic used) */
	char *clean = calloc(1, strlen(dump) + 1);
	size_t k = 0;
	for (char *line = dump; *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
		if (strncmp(line, "\\restrict", 9) != 0 && strncmp(line, "\\unrestrict", 11) != 0 &&
		    strncmp(line, "--", 2) != 0 && line[0] != '\n') {
			memcpy(clean + k, line, len);
			k += len;
		}
		line += len;
	}
	free(dump);
	free(out);
	free(cmd);
	free(file);
	return clean;
}

static int count_files(const char *dir, char kind)
{
	DIR *d = opendir(dir);
	cr_assert(d, "%s", dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] == kind || (kind == '*' && e->d_name[0] != '.');
	closedir(d);
	return n;
}

static char *migrations_dir(struct proj *p)
{
	return xasprintf("%s/%s/migrations", p->dir, p->home);
}

static char *q1(const char *db, const char *sql)
{
	PGconn *c = th_connect(db);
	char *v = th_query1(c, sql);
	PQfinish(c);
	return v;
}

static void drop_all(struct proj *p, const char *other_db)
{
	th_db_drop(p->db);
	if (other_db)
		th_db_drop(other_db);
	PGconn *c = th_connect("postgres");
	char *sql = xasprintf("DROP ROLE IF EXISTS \"%s\"", p->owner);
	PGresult *r = PQexec(c, sql);
	PQclear(r);
	free(sql);
	PQfinish(c);
}

Test(alembic, import_migrates_to_the_schema_alembic_builds_and_undo_matches_downgrade, .timeout = 240)
{
	char *adb = th_db_new(); /* where Alembic runs online */
	struct proj p;
	proj_init(&p, "schema", adb, NULL, NULL);
	proj_five(&p);

	char *out, *err;
	int rc = run(&p, &out, &err, (const char *const[]){"import", "alembic", p.svc, NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "5 Alembic revisions imported"), "%s", out);
	char *mig = migrations_dir(&p);
	cr_assert_eq(count_files(mig, 'V'), 5);
	cr_assert_eq(count_files(mig, 'U'), 5);
	char *v1 = xasprintf("%s/V1__bootstrap_tables.sql", mig);
	char *text = th_read(v1);
	cr_assert(strncmp(text,
	                  "-- alembic upgrade: revision 189b1231afd4, down_revision None, file "
	                  "alembic/versions/189b1231afd4_bootstrap_tables.py\n",
	                  strlen("-- alembic upgrade: revision 189b1231afd4, down_revision None, file "
	                         "alembic/versions/189b1231afd4_bootstrap_tables.py\n")) == 0,
	          "%s", text);
	cr_assert(th_contains(text, "CREATE TYPE mood AS ENUM ('happy', 'sad');"), "%s", text);
	cr_assert(!th_contains(text, "INSERT INTO alembic_version"), "%s", text);
	cr_assert(!th_contains(text, "BEGIN;"), "%s", text);
	free(text);
	static const char *const names[] = {"V2__add_email.sql",      "V3__backfill_email.sql",
	                                    "V4__email_required.sql", "V5__sessions.sql",
	                                    "U5__sessions.sql",       "U1__bootstrap_tables.sql"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *f = xasprintf("%s/%s", mig, names[i]);
		char *t = th_read(f);
		cr_assert(!th_contains(t, "alembic_version") || strncmp(t, "-- alembic", 10) == 0, "%s", t);
		cr_assert(!th_contains(t, "alembic_version ("), "%s: %s", names[i], t);
		cr_assert(!th_contains(t, "UPDATE alembic_version"), "%s: %s", names[i], t);
		free(t);
		free(f);
	}
	free(out);
	free(err);

	/* again: nothing new, every file already there */
	rc = run(&p, &out, &err, (const char *const[]){"import", "alembic", p.svc, NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "(0 files written, 10 already there)"), "%s", out);
	free(out);
	free(err);

	alembic(&p, "upgrade head");
	run_ok(&p, (const char *const[]){"migrate", p.svc, "--plain", NULL});
	char *want = schema_of(adb), *got = schema_of(p.db);
	cr_assert(th_contains(want, "CREATE TYPE public.session_state AS ENUM"), "%s", want);
	cr_assert(th_contains(want, "CREATE UNIQUE INDEX ix_account_email"), "%s", want);
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
	static const char rows_sql[] =
	    "SELECT string_agg(name || ' ' || email || ' ' || mood, ', ' ORDER BY id) "
	    "FROM account";
	char *ra = q1(adb, rows_sql), *rf = q1(p.db, rows_sql);
	cr_assert_str_eq(ra, "ada ada@example.com happy, bob bob@example.com sad");
	cr_assert_str_eq(rf, ra);
	free(ra);
	free(rf);
	/* flotilla keeps its own history; alembic_version is not made without keep_alembic_version */
	char *av = q1(p.db, "SELECT pg_catalog.to_regclass('public.alembic_version') IS NULL");
	cr_assert_str_eq(av, "t");
	free(av);

	/* undo to version 1 = alembic downgrade to the first revision */
	run_ok(&p, (const char *const[]){"undo", p.svc, "--to", "1", "--plain", NULL});
	alembic(&p, "downgrade 189b1231afd4");
	want = schema_of(adb);
	got = schema_of(p.db);
	cr_assert(!th_contains(want, "TABLE public.session"), "%s", want);
	cr_assert_str_eq(got, want);
	free(want);
	free(got);

	free(v1);
	free(mig);
	drop_all(&p, adb);
	free(adb);
}

Test(alembic, baseline_from_alembic_then_migrate_applies_the_rest, .timeout = 240)
{
	char name[96];
	struct proj p;
	/* the team's database: provisioned by flotilla (so the owner exists), migrated by Alembic as the
	 * owner */
	proj_init(&p, "adopt", "placeholder", NULL, "keep_alembic_version = true\n");
	snprintf(name, sizeof(name), "%s", p.db);
	char *sed =
	    xasprintf("cd '%s/%s' && sed -i 's|^sqlalchemy.url = .*|sqlalchemy.url = postgresql://%s@/%s|' "
	              "alembic.ini",
	              p.dir, p.home, p.owner, name);
	char *o = NULL;
	cr_assert_eq(th_sh(sed, &o), 0, "%s", o);
	free(o);
	free(sed);
	proj_five(&p);
	run_ok(&p, (const char *const[]){"import", "alembic", p.svc, NULL});
	run_ok(&p, (const char *const[]){"provision", NULL});
	alembic(&p, "upgrade 3c8f2a6e4b71");

	char *out, *err;
	int rc =
	    run(&p, &out, &err, (const char *const[]){"baseline", p.svc, "--from-alembic", "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	cr_assert(th_contains(out, "alembic_version says 3c8f2a6e4b71, which is V3__backfill_email.sql"),
	          "%s", out);
	free(out);
	free(err);

	rc = run(&p, &out, &err, (const char *const[]){"migrate", p.svc, "--plain", NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	free(out);
	free(err);
	char *hist = q1(p.db, "SELECT string_agg(version || ' ' || type || ' ' || script, ', ' ORDER BY "
	                      "installed_rank) FROM flyway_schema_history");
	cr_assert_str_eq(hist, "3 BASELINE << Flyway Baseline >>, 4 SQL V4__email_required.sql, 5 SQL "
	                       "V5__sessions.sql");
	free(hist);
	/* keep_alembic_version: Alembic sees the head flotilla applied */
	char *av = q1(p.db, "SELECT string_agg(version_num, ',') FROM alembic_version");
	cr_assert_str_eq(av, REV_IDS[4]);
	free(av);

	rc = run(&p, &out, &err, (const char *const[]){"drift", p.svc, NULL});
	cr_assert_eq(rc, 0, "drift: %s\n%s", out, err);
	free(out);
	free(err);

	/* and back: undo leaves alembic_version at the revision before */
	run_ok(&p, (const char *const[]){"undo", p.svc, "--plain", NULL});
	av = q1(p.db, "SELECT string_agg(version_num, ',') FROM alembic_version");
	cr_assert_str_eq(av, REV_IDS[3]);
	free(av);
	alembic(&p, "upgrade head"); /* Alembic takes over from there: 5 again */
	av = q1(p.db, "SELECT string_agg(version_num, ',') FROM alembic_version");
	cr_assert_str_eq(av, REV_IDS[4]);
	free(av);
	drop_all(&p, NULL);
}

Test(alembic, baseline_from_alembic_refuses_an_unknown_revision, .timeout = 240)
{
	struct proj p;
	proj_init(&p, "unknown", "placeholder", NULL, NULL);
	proj_five(&p);
	run_ok(&p, (const char *const[]){"import", "alembic", p.svc, NULL});
	run_ok(&p, (const char *const[]){"provision", NULL});
	PGconn *c = th_connect(p.db);
	th_exec(c, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
	           "INSERT INTO alembic_version VALUES ('ffffffffffff')");
	PQfinish(c);
	char *out, *err;
	int rc =
	    run(&p, &out, &err, (const char *const[]){"baseline", p.svc, "--from-alembic", "--plain", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	cr_assert(th_contains(err, "alembic_version says \"ffffffffffff\", a revision no imported file names "
	                           "(the imported ones: 189b1231afd4 (V1), 2b5e7c1d9a30 (V2)"),
	          "%s", err);
	free(out);
	free(err);
	char *h = q1(p.db, "SELECT pg_catalog.to_regclass('public.flyway_schema_history') IS NULL");
	cr_assert_str_eq(h, "t");
	free(h);
	/* two rows: a database at a branch point */
	c = th_connect(p.db);
	th_exec(c, "INSERT INTO alembic_version VALUES ('2b5e7c1d9a30')");
	PQfinish(c);
	rc = run(&p, &out, &err, (const char *const[]){"baseline", p.svc, "--from-alembic", "--plain", NULL});
	cr_assert_eq(rc, 3, "%s\n%s", out, err);
	cr_assert(th_contains(err,
	                      "alembic_version holds 2 revisions (2b5e7c1d9a30, ffffffffffff): the database "
	                      "is at a branch point"),
	          "%s", err);
	free(out);
	free(err);
	drop_all(&p, NULL);
}

/* import of a broken project: exit 2, every expected message, nothing written */
static void refused(struct proj *p, const char *const *want, size_t nwant)
{
	char *out, *err;
	int rc = run(p, &out, &err, (const char *const[]){"import", "alembic", p->svc, NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	for (size_t i = 0; i < nwant; i++)
		cr_assert(th_contains(err, want[i]), "wanted:\n%s\nin:\n%s", want[i], err);
	cr_assert(th_contains(err, "nothing was written"), "%s", err);
	cr_assert_str_eq(out, "");
	char *mig = migrations_dir(p);
	cr_assert_eq(count_files(mig, '*'), 0, "files were written to %s", mig);
	free(mig);
	free(out);
	free(err);
}

static const char REV_HEAD[] = "from alembic import op\nimport sqlalchemy as sa\n\n";

static char *rev_text(const char *id, const char *down, const char *body)
{
	return xasprintf(
	    "%srevision = '%s'\ndown_revision = %s\n\n\ndef upgrade():\n%s\n\ndef downgrade():\n    "
	    "pass\n",
	    REV_HEAD, id, down, body ? body : "    op.execute('SELECT 1')\n");
}

static void add_rev(struct proj *p, const char *file, const char *id, const char *down, const char *body)
{
	char *t = rev_text(id, down, body);
	proj_revision(p, file, t);
	free(t);
}

Test(alembic, a_base_file_that_holds_another_revision_is_refused_at_its_line, .timeout = 120)
{
	struct proj p;
	proj_init(&p, "mislabel", "nowhere", NULL, NULL);
	/* the base was overwritten: its name says 189b1231afd4, it holds 2a3f4c9d1cde */
	add_rev(&p, "189b1231afd4_bootstrap_tables.py", "2a3f4c9d1cde", "None", NULL);
	add_rev(&p, "7c1e2d3f4a5b_add_email.py", "7c1e2d3f4a5b", "'189b1231afd4'", NULL);
	char *a =
	    xasprintf("%s/189b1231afd4_bootstrap_tables.py:4:12: revision \"2a3f4c9d1cde\" does not match "
	              "the file name, which says 189b1231afd4: the file was overwritten or renamed; restore "
	              "revision = \"189b1231afd4\", or rename the file after its revision",
	              p.versions);
	char *b =
	    xasprintf("%s/7c1e2d3f4a5b_add_email.py:5:17: down_revision \"189b1231afd4\" names no revision "
	              "in %s; %s/189b1231afd4_bootstrap_tables.py is named after it but holds revision "
	              "\"2a3f4c9d1cde\" (see there)",
	              p.versions, p.versions, p.versions);
	refused(&p, (const char *const[]){a, b}, 2);
	free(a);
	free(b);
}

Test(alembic, unknown_down_revision_duplicates_and_cycles_are_refused, .timeout = 120)
{
	struct proj p;
	proj_init(&p, "dangling", "nowhere", NULL, NULL);
	add_rev(&p, "aaaaaaaaaaa1_one.py", "aaaaaaaaaaa1", "None", NULL);
	add_rev(&p, "aaaaaaaaaaa2_two.py", "aaaaaaaaaaa2", "'aaaaaaaaaab1'", NULL); /* a typo */
	add_rev(&p, "aaaaaaaaaaa3_three.py", "aaaaaaaaaaa3", "'aaaaaaaaaaa1'", NULL);
	add_rev(&p, "aaaaaaaaaaa3_three_again.py", "aaaaaaaaaaa3", "'aaaaaaaaaaa1'", NULL);
	char *a =
	    xasprintf("%s/aaaaaaaaaaa2_two.py:5:17: down_revision \"aaaaaaaaaab1\" names no revision in %s "
	              "(did you mean \"aaaaaaaaaaa1\"?)",
	              p.versions, p.versions);
	char *b =
	    xasprintf("%s/aaaaaaaaaaa3_three_again.py:4:12: revision \"aaaaaaaaaaa3\" is also the revision "
	              "of %s/aaaaaaaaaaa3_three.py:4; each revision needs an id of its own",
	              p.versions, p.versions);
	refused(&p, (const char *const[]){a, b}, 2);
	free(a);
	free(b);

	struct proj q;
	proj_init(&q, "cycle", "nowhere", NULL, NULL);
	add_rev(&q, "bbbbbbbbbbb0_base.py", "bbbbbbbbbbb0", "None", NULL);
	add_rev(&q, "bbbbbbbbbbb1_one.py", "bbbbbbbbbbb1", "'bbbbbbbbbbb2'", NULL);
	add_rev(&q, "bbbbbbbbbbb2_two.py", "bbbbbbbbbbb2", "'bbbbbbbbbbb1'", NULL);
	char *c =
	    xasprintf("%s/bbbbbbbbbbb1_one.py:5:17: down_revision \"bbbbbbbbbbb2\" closes a cycle: "
	              "\"bbbbbbbbbbb1\" -> \"bbbbbbbbbbb2\" -> \"bbbbbbbbbbb1\" (each revises the next)",
	              q.versions);
	refused(&q, (const char *const[]){c}, 1);
	free(c);
}

Test(alembic, branches_merges_and_two_bases_are_refused_with_the_order_to_choose, .timeout = 120)
{
	struct proj p;
	proj_init(&p, "branch", "nowhere", NULL, NULL);
	add_rev(&p, "ccccccccccc0_base.py", "ccccccccccc0", "None", NULL);
	add_rev(&p, "ccccccccccc1_left.py", "ccccccccccc1", "'ccccccccccc0'", NULL);
	add_rev(&p, "ccccccccccc2_right.py", "ccccccccccc2", "'ccccccccccc0'", NULL);
	add_rev(&p, "ccccccccccc3_right_more.py", "ccccccccccc3", "'ccccccccccc2'", NULL);
	char *a = xasprintf(
	    "%s/ccccccccccc2_right.py:5:17: revisions \"ccccccccccc1\" (%s/ccccccccccc1_left.py:5) "
	    "and \"ccccccccccc2\" both revise \"ccccccccccc0\": a branch, and flotilla runs one line "
	    "of migrations; choose the order: to run \"ccccccccccc1\" .. \"ccccccccccc1\" first, set "
	    "this down_revision to \"ccccccccccc1\"; to run this line first, set the down_revision "
	    "of \"ccccccccccc1\" to \"ccccccccccc3\"",
	    p.versions, p.versions);
	refused(&p, (const char *const[]){a}, 1);
	free(a);

	struct proj q;
	proj_init(&q, "merge", "nowhere", NULL, NULL);
	add_rev(&q, "ddddddddddd0_base.py", "ddddddddddd0", "None", NULL);
	add_rev(&q, "ddddddddddd1_left.py", "ddddddddddd1", "'ddddddddddd0'", NULL);
	add_rev(&q, "ddddddddddd2_right.py", "ddddddddddd2", "'ddddddddddd0'", NULL);
	add_rev(&q, "ddddddddddd3_merge.py", "ddddddddddd3", "('ddddddddddd1', 'ddddddddddd2')", NULL);
	char *b = xasprintf(
	    "%s/ddddddddddd3_merge.py:5:17: revision \"ddddddddddd3\" is a merge of \"ddddddddddd1\" "
	    "and \"ddddddddddd2\", and flotilla runs one line of migrations; choose the order: to "
	    "run \"ddddddddddd1\"'s line first, set the down_revision of \"ddddddddddd2\" "
	    "(%s/ddddddddddd2_right.py) to \"ddddddddddd1\" and this one to \"ddddddddddd2\"",
	    q.versions, q.versions);
	refused(&q, (const char *const[]){b}, 1);
	free(b);

	struct proj r;
	proj_init(&r, "bases", "nowhere", NULL, NULL);
	add_rev(&r, "eeeeeeeeeee0_one.py", "eeeeeeeeeee0", "None", NULL);
	add_rev(&r, "eeeeeeeeeee1_next.py", "eeeeeeeeeee1", "'eeeeeeeeeee0'", NULL);
	add_rev(&r, "eeeeeeeeeee2_other_base.py", "eeeeeeeeeee2", "None", NULL);
	char *c = xasprintf(
	    "%s/eeeeeeeeeee2_other_base.py:5:17: revision \"eeeeeeeeeee2\" is a second base "
	    "(down_revision None) besides \"eeeeeeeeeee0\" (%s/eeeeeeeeeee0_one.py:4): two lines of "
	    "revisions, and flotilla runs one; set this down_revision to \"eeeeeeeeeee1\"",
	    r.versions, r.versions);
	refused(&r, (const char *const[]){c}, 1);
	free(c);
}

Test(alembic, a_revision_that_reads_the_database_is_refused_at_its_line, .timeout = 120)
{
	struct proj p;
	proj_init(&p, "online", "nowhere", NULL, NULL);
	add_rev(&p, "fffffffffff0_base.py", "fffffffffff0", "None",
	        "    op.create_table('t', sa.Column('id', sa.Integer, primary_key=True))\n");
	add_rev(&p, "fffffffffff1_backfill.py", "fffffffffff1", "'fffffffffff0'",
	        "    conn = op.get_bind()\n"
	        "    for row in conn.execute(sa.text('SELECT id FROM t')).fetchall():\n"
	        "        op.execute('UPDATE t SET id = id')\n");
	char *a = xasprintf(
	    "%s/fffffffffff1_backfill.py:10: revision \"fffffffffff1\" cannot be rendered offline "
	    "(alembic upgrade --sql): exit status 1: AttributeError: 'NoneType' object has no "
	    "attribute 'fetchall'; a revision that reads the database (op.get_bind() queries) needs "
	    "a connection",
	    p.versions);
	refused(&p, (const char *const[]){a}, 1);
	free(a);
}

Test(alembic, a_computed_revision_and_a_folder_with_other_migrations_are_refused, .timeout = 120)
{
	struct proj p;
	proj_init(&p, "forms", "nowhere", NULL, NULL);
	proj_revision(&p, "ggggggggggg0_base.py",
	              "from alembic import op\nrevision = 'ggg' + 'ggggggggg0'\ndown_revision = None\n");
	proj_revision(&p, "ggggggggggg1_spaces.py",
	              "from alembic import op\nrevision = 'ggg ggggggggg1'\ndown_revision: Optional[str] = "
	              "'ggggggggggg0'\n");
	char *a =
	    xasprintf("%s/ggggggggggg0_base.py:2:12: flotilla reads revision only as a plain literal on its "
	              "line (\"id\"; ids of letters, digits, '_', '-' and '.')",
	              p.versions);
	char *b =
	    xasprintf("%s/ggggggggggg1_spaces.py:2:12: flotilla reads revision only as a plain literal on "
	              "its line (\"id\"; ids of letters, digits, '_', '-' and '.')",
	              p.versions);
	refused(&p, (const char *const[]){a, b}, 2);
	free(a);
	free(b);

	struct proj q;
	proj_init(&q, "occupied", "nowhere", NULL, NULL);
	add_rev(&q, "hhhhhhhhhhh0_base.py", "hhhhhhhhhhh0", "None", NULL);
	char *rel = xasprintf("%s/migrations/V1__by_hand.sql", q.home);
	th_write(q.dir, rel, "SELECT 1;\n");
	char *out, *err;
	int rc = run(&q, &out, &err, (const char *const[]){"import", "alembic", q.svc, NULL});
	cr_assert_eq(rc, 2, "%s\n%s", out, err);
	cr_assert(
	    th_contains(err, "V1__by_hand.sql is already in the folder and is not one this import writes"),
	    "%s", err);
	char *mig = migrations_dir(&q);
	cr_assert_eq(count_files(mig, 'V'), 1);
	free(mig);
	free(rel);
	free(out);
	free(err);
}

Test(alembic, a_configuration_pointing_elsewhere_and_an_irreversible_downgrade, .timeout = 120)
{
	/* alembic.ini's script_location names another folder than the one flotilla checked */
	struct proj p;
	proj_init(&p, "elsewhere", "nowhere", NULL, NULL);
	add_rev(&p, "aaaaaaaaaaa0_base.py", "aaaaaaaaaaa0", "None", NULL);
	char *o = NULL;
	char *cmd =
	    xasprintf("cd '%s/%s' && " ALEMBIC " init other >/dev/null && rm -f other/versions/.keep* && "
	              "sed -i 's|^script_location = .*|script_location = other|' alembic.ini",
	              p.dir, p.home);
	cr_assert_eq(th_sh(cmd, &o), 0, "%s", o);
	free(o);
	free(cmd);
	char *rel = xasprintf("%s/other/versions/bbbbbbbbbbb0_base.py", p.home);
	char *t = rev_text("bbbbbbbbbbb0", "None", NULL);
	th_write(p.dir, rel, t);
	free(t);
	free(rel);
	char *a = xasprintf(
	    "alembic.ini: with this configuration Alembic renders a chain ending at \"bbbbbbbbbbb0\" "
	    "(1 revisions), but svc/%s/alembic/versions holds one ending at \"aaaaaaaaaaa0\" (1 "
	    "revisions): does its script_location point at svc/%s/alembic?",
	    p.svc, p.svc);
	refused(&p, (const char *const[]){a}, 1);
	free(a);

	/* a downgrade Alembic cannot render costs its revision the U file only */
	struct proj q;
	proj_init(&q, "irreversible", "nowhere", NULL, NULL);
	add_rev(&q, "ccccccccccc0_base.py", "ccccccccccc0", "None",
	        "    op.execute('CREATE TABLE t (id int)')\n");
	proj_revision(
	    &q, "ccccccccccc1_drop.py",
	    "from alembic import op\n\nrevision = 'ccccccccccc1'\ndown_revision = 'ccccccccccc0'\n\n\n"
	    "def upgrade():\n    op.execute('DROP TABLE t')\n\n\n"
	    "def downgrade():\n    raise NotImplementedError('the data is gone')\n");
	proj_revision(
	    &q, "ccccccccccc2_more.py",
	    "from alembic import op\n\nrevision = 'ccccccccccc2'\ndown_revision = 'ccccccccccc1'\n\n\n"
	    "def upgrade():\n    op.execute('CREATE TABLE u (id int)')\n\n\n"
	    "def downgrade():\n    op.execute('DROP TABLE u')\n");
	char *out, *err;
	int rc = run(&q, &out, &err, (const char *const[]){"import", "alembic", q.svc, NULL});
	cr_assert_eq(rc, 0, "%s\n%s", out, err);
	char *note =
	    xasprintf("note: V2 (revision ccccccccccc1): no U file: its downgrade cannot be rendered "
	              "offline (svc/%s/alembic/versions/ccccccccccc1_drop.py:12: exit status 1: "
	              "NotImplementedError: the data is gone)",
	              q.svc);
	cr_assert(th_contains(out, note), "%s", out);
	free(note);
	char *mig = migrations_dir(&q);
	cr_assert_eq(count_files(mig, 'V'), 3);
	/* U1 has "pass" as its downgrade in rev_text: nothing to undo, no file */
	cr_assert_eq(count_files(mig, 'U'), 1, "%s", out);
	char *u3 = xasprintf("%s/U3__more.sql", mig);
	char *u = th_read(u3);
	cr_assert(th_contains(u, "-- alembic downgrade: revision ccccccccccc2, down_revision ccccccccccc1"),
	          "%s", u);
	free(u);
	free(u3);
	free(mig);
	free(out);
	free(err);
}

Test(alembic, keep_alembic_version_outside_a_transaction, .timeout = 180)
{
	/* Alembic's autocommit_block: the import keeps only CREATE INDEX CONCURRENTLY, which flotilla
	 * runs outside a transaction; alembic_version is set with the history row after it */
	struct proj p;
	proj_init(&p, "concurrent", "nowhere", NULL, "keep_alembic_version = true\n");
	proj_revision(
	    &p, "aaaaaaaaaaa0_base.py",
	    "from alembic import op\nimport sqlalchemy as sa\n\nrevision = 'aaaaaaaaaaa0'\n"
	    "down_revision = None\n\n\ndef upgrade():\n"
	    "    op.create_table('t', sa.Column('id', sa.Integer, primary_key=True), sa.Column('n', "
	    "sa.Text))\n\n\ndef downgrade():\n    op.drop_table('t')\n");
	proj_revision(
	    &p, "aaaaaaaaaaa1_index.py",
	    "from alembic import op\n\nrevision = 'aaaaaaaaaaa1'\ndown_revision = 'aaaaaaaaaaa0'\n\n\n"
	    "def upgrade():\n    with op.get_context().autocommit_block():\n"
	    "        op.create_index('ix_t_n', 't', ['n'], postgresql_concurrently=True)\n\n\n"
	    "def downgrade():\n    with op.get_context().autocommit_block():\n"
	    "        op.drop_index('ix_t_n', 't', postgresql_concurrently=True)\n");
	run_ok(&p, (const char *const[]){"import", "alembic", p.svc, NULL});
	char *mig = migrations_dir(&p);
	char *v2 = xasprintf("%s/V2__index.sql", mig);
	char *t = th_read(v2);
	cr_assert(th_contains(t, "\n\nCREATE INDEX CONCURRENTLY ix_t_n ON t (n);\n"), "%s", t);
	cr_assert(!th_contains(t, "COMMIT") && !th_contains(t, "BEGIN"), "%s", t);
	free(t);
	free(v2);
	free(mig);

	run_ok(&p, (const char *const[]){"migrate", p.svc, "--plain", NULL});
	char *v = q1(p.db, "SELECT string_agg(version_num, ',') FROM alembic_version");
	cr_assert_str_eq(v, "aaaaaaaaaaa1");
	free(v);
	v = q1(p.db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t_n'::regclass");
	cr_assert_str_eq(v, "t");
	free(v);
	run_ok(&p, (const char *const[]){"undo", p.svc, "--plain", NULL});
	v = q1(p.db, "SELECT string_agg(version_num, ',') FROM alembic_version");
	cr_assert_str_eq(v, "aaaaaaaaaaa0");
	free(v);
	v = q1(p.db, "SELECT pg_catalog.to_regclass('public.ix_t_n') IS NULL");
	cr_assert_str_eq(v, "t");
	free(v);
	drop_all(&p, NULL);
}
