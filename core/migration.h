/*
 * migration: migration files -> versioned, undo and repeatable migrations,
 * exactly as Flyway names, orders and checksums them (see
 * ../shared/flyway-compat/README.md), plus flotilla's directives and
 * Flyway-style placeholders.
 *
 * Files arrive as bytes from a source (a directory or a git tree, see
 * source.h), so nothing here reads the disk.
 */
#ifndef FL_MIGRATION_H
#define FL_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
	FL_MIG_VERSIONED,  /* V<version>__<description>.sql */
	FL_MIG_UNDO,       /* U<version>__<description>.sql */
	FL_MIG_REPEATABLE, /* R__<description>.sql */
	FL_MIG_BASELINE,   /* B<version>__<description>.sql: Flyway's baseline migration (the state at
	                      that version, run only on an empty schema, recorded as SQL_BASELINE) */
	FL_MIG_CALLBACK    /* beforeMigrate.sql, afterEachMigrate__grants.sql ...: only in set->callbacks */
} fl_mig_kind;

/*
 * How a folder names its files: Flyway's sqlMigrationSuffixes (NULL or
 * none: ".sql"; the longest suffix a name ends with counts, so
 * "V1__init___POSTGRESQL.sql" is version 1 "init" with suffix
 * "___POSTGRESQL.sql").
 */
typedef struct {
	const char *const *suffixes;
	size_t nsuffixes;
} fl_migration_naming;

/* Flyway Community's migrate callbacks, in the order of a run's life. */
#define FL_CALLBACK_EVENTS                                                                                   \
	{                                                                                                    \
		"beforeMigrate", "beforeEachMigrate", "afterEachMigrate", "afterEachMigrateError",           \
		    "afterMigrate", "afterMigrateError", "afterMigrateApplied", "afterVersioned",            \
		    "beforeRepeatables"                                                                      \
	}

/* One file handed over by a source. */
typedef struct {
	char *name; /* path relative to the migrations folder: "V3__add_sessions.sql", "sub/V4__x.sql" */
	char *path; /* how to name it to a person: "services/auth/migrations/V3__add_sessions.sql" */
	char *data; /* raw bytes, NUL-terminated */
	size_t len;
} fl_file;

void fl_file_clear(fl_file *f);

typedef struct {
	fl_mig_kind kind;
	char *version;     /* as Flyway writes it in history: "_" -> "."; NULL for repeatables */
	char *description; /* "_" -> " " */
	char *script;      /* = file name relative to the folder (history's `script`) */
	char *path;        /* for messages */
	char *data;        /* raw bytes (UTF-8 validated), NUL-terminated */
	size_t len;
	int32_t checksum;    /* Flyway's CRC-32 of the raw file */
	bool no_transaction; /* "-- flotilla:no-transaction" in the leading comment lines */
	char *event;         /* FL_MIG_CALLBACK: the event ("afterMigrate"); NULL otherwise */
} fl_migration;

/*
 * All migrations of one service, sorted: versioned by version, then undo by
 * version, then repeatables by description. Owns its migrations.
 */
typedef struct {
	fl_migration *items;
	size_t n;
	/* SQL callbacks (FL_MIG_CALLBACK), by event then file name; version NULL, description as written */
	fl_migration *callbacks;
	size_t ncallbacks;
	/* files that look like a migration or callback but are none (an unknown prefix or event): one
	 * warning each, naming the file; they never run */
	fl_error *warnings;
} fl_migration_set;

/*
 * Classifies a file name (the base name is what counts). Returns 1 for a
 * migration (*kind, *version normalised with "." and *description set;
 * caller frees), 0 for a file that is not a migration (README.md, notes.txt,
 * V1.sql.orig ...: ignored), -1 for a name that looks like a migration but
 * is malformed ("V1.a__x.sql", "V2_desc.sql", "V__x.sql") with *err naming
 * the file and what is wrong.
 */
int fl_migration_parse_name(const char *name, fl_mig_kind *kind, char **version, char **description,
                            fl_error **err);
/* The same with a folder's naming (suffixes); nm may be NULL. */
int fl_migration_parse_name_with(const char *name, const fl_migration_naming *nm, fl_mig_kind *kind,
                                 char **version, char **description, fl_error **err);

/* Is v a version as a file name writes it: digit groups separated by '.' or '_' ("4", "2.1", "2_1")? */
bool fl_migration_version_valid(const char *v);

/* Flyway's version order: negative, 0 (same version: 1 = 1.0 = 001) or positive. */
int fl_version_compare(const char *a, const char *b);

/* Flyway's checksum of a file's bytes (see the compat notes). */
int32_t fl_migration_checksum(const char *data, size_t len);

/*
 * Files -> a sorted set. Every problem is reported, chained in *err, each
 * naming its file: malformed names, invalid UTF-8 (with line:col), two files
 * with the same version ("V1__a.sql and V1.0__b.sql have the same version
 * 1"), two repeatables with the same description. The files are consumed
 * (their buffers move into the set) even on failure.
 */
fl_migration_set *fl_migration_set_new(fl_file *files, size_t n, fl_error **err);
/* The same with a folder's naming; nm may be NULL. Callbacks and warnings are filled in too. */
fl_migration_set *fl_migration_set_new_with(fl_file *files, size_t n, const fl_migration_naming *nm,
                                            fl_error **err);
void fl_migration_set_free(fl_migration_set *set);
/* The versioned migration with that version, or NULL. */
const fl_migration *fl_migration_find(const fl_migration_set *set, fl_mig_kind kind, const char *version);

/* Placeholder values, by name: "schema", "flyway:defaultSchema", ... */
typedef struct {
	const char *name;
	const char *value;
} fl_placeholder;

/*
 * Replaces every ${name} in the migration's text with its value, as Flyway
 * does (in the raw text, comments and strings included). An unknown
 * placeholder is an error at its file:line:col ("no value for placeholder
 * ${tenant}; define it under [services.auth.placeholders]"). Returns the
 * new text (caller frees) and its length in *len.
 */
char *fl_migration_expand(const fl_migration *m, const fl_placeholder *ph, size_t nph, size_t *len,
                          fl_error **err);
/* The same, naming the service's manifest table in the message; service may be NULL. */
char *fl_migration_expand_service(const fl_migration *m, const char *service, const fl_placeholder *ph,
                                  size_t nph, size_t *len, fl_error **err);

/*
 * Maps a byte offset in the expanded text back to the raw file, so an error
 * position reported by the server lands on the right column of the file.
 */
size_t fl_migration_unexpand_offset(const fl_migration *m, const fl_placeholder *ph, size_t nph,
                                    size_t expanded_offset);

#endif
