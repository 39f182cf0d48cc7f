/*
 * flywayconf: Flyway's configuration files -> a flotilla manifest, for
 * `flotilla init --from-flyway`.
 *
 * It reads flyway.conf (Java properties: "flyway.url=...", '#' and '!'
 * comments, '\' continuations) and flyway.toml (flotilla's TOML parser:
 * [flyway] and the [environments.NAME] its `environment` names, "default"
 * else), one file per service as a platform keeps them
 * ("src/auth-api/flyway.conf" is service "auth"). What it promises:
 * - every setting with a flotilla counterpart is carried over with
 *   Flyway's meaning (url -> host, port, database; user -> migrator;
 *   locations, schemas / defaultSchema, table, sqlMigrationSuffixes,
 *   baselineOnMigrate, baselineVersion, outOfOrder, target, placeholders);
 * - a secret is never copied: a password written as ${VAR} (or TOML's
 *   ${env.VAR}) becomes { env = "VAR" }; a literal one is left out and
 *   listed;
 * - every setting it cannot translate is listed, with its file:line, so
 *   nothing is dropped silently;
 * - relative locations are taken from the config file's folder (where the
 *   platform runs flyway) and written relative to the manifest's folder.
 * Nothing here touches a database; the caller writes the text.
 */
#ifndef FL_FLYWAYCONF_H
#define FL_FLYWAYCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* One config file: its path and bytes. */
typedef struct {
	const char *path;
	const char *data;
	size_t len;
} fl_flywayconf_file;

typedef struct {
	char *text;   /* the manifest (TOML), NULL on error */
	char **notes; /* what was not translated, "file:line: flyway.cleanDisabled has no counterpart" */
	size_t nnotes;
} fl_flywayconf_result;

/*
 * Translates the files into one manifest to be written in folder
 * manifest_dir (for relative paths; must exist). Returns 0, or -1 with
 * *err (FL_EINPUT, at file:line) for a file flotilla cannot read, two files
 * of one service, or a service without a PostgreSQL url.
 */
int fl_flywayconf_translate(const fl_flywayconf_file *files, size_t n, const char *manifest_dir,
                            fl_flywayconf_result *out, fl_error **err);
void fl_flywayconf_result_clear(fl_flywayconf_result *r);

/*
 * `init --from-flyway`: reads the files at `paths`, translates them for a
 * manifest at out_path, and writes it there (refused when the file exists,
 * unless force; written whole or not at all). Returns 0, or -1 with *err.
 */
int fl_flywayconf_init(const char *const *paths, size_t n, const char *out_path, bool force,
                       fl_flywayconf_result *out, fl_error **err);

#endif
