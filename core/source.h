/*
 * source: where migration files come from, as fl_file values (see
 * migration.h) that the migration module turns into a set.
 *
 * fl_source_dir reads a directory of the work tree. It promises a stable
 * order (sorted by relative path, byte-wise), skips hidden files and
 * directories (a name starting with '.': editors' swap files, .git), reads
 * regular files only (symbolic links to files count; symbolic links to
 * directories are not followed, so a link loop cannot hang it), and names
 * every file the way a person should see it: display_dir + "/" + name.
 * Nothing is interpreted here: which files are migrations is for
 * fl_migration_set_new to decide.
 */
#ifndef FL_SOURCE_H
#define FL_SOURCE_H

#include <stddef.h>

#include "error.h"
#include "migration.h"

/*
 * Reads every regular file under `dir` (recursively) into a new array
 * *files of *n entries: name = path relative to dir ("V1__a.sql",
 * "sub/V2__b.sql"), path = display_dir + "/" + name (display_dir NULL:
 * dir), data = the bytes, NUL-terminated. Returns 0, or -1 with *err
 * (FL_EINPUT) naming the directory or file that could not be read; a missing
 * directory is such an error. An empty directory gives 0 files.
 * Free with fl_source_free (or hand the files to fl_migration_set_new, which
 * takes their buffers, and then free(*files)).
 */
int fl_source_dir(const char *dir, const char *display_dir, fl_file **files, size_t *n, fl_error **err);

/*
 * The whole file at path into *data (NUL-terminated, the NUL not counted in
 * *len; an empty file gives ""): 0, or -1 with errno saying why. The one
 * reader of whole files (manifests, tenant lists, Flyway and Alembic files).
 */
int fl_file_read(const char *path, char **data, size_t *len);

/*
 * Writes data (len bytes) as the whole file at path, all or nothing: into a
 * temporary beside it (mkstemp), renamed over it, so a reader never sees
 * half a file and a failed write leaves the old one. The mode is what a
 * plain fopen would give (0666 less the umask). 0, or -1 with errno; the
 * temporary is gone either way. The one writer of whole files (generated
 * migrations and manifests, --html pages).
 */
int fl_file_write(const char *path, const char *data, size_t len);

/* Clears each file and frees the array. NULL is fine. */
void fl_source_free(fl_file *files, size_t n);

#endif
