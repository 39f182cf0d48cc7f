/*
 * gitdiff: what git knows about the migration folders, through libgit2 (the
 * `git` program is never run).
 *
 * It owns: finding the repository that holds a manifest; turning whatever a
 * user types (branch, tag, full or short id, origin/main, HEAD~3, v1.4^{})
 * into one commit; the changed files of a set of folders between two commits
 * or between a commit and the work tree (index and untracked files included),
 * each classified and assigned to its folder; the files of a folder as they
 * are in a commit's tree, byte for byte (no CRLF or filter conversion, so a
 * blob checksums exactly like the committed file); the commits that changed a
 * file; the HEAD commit and whether the work tree is dirty.
 *
 * Paths given to it are repo-relative ("services/auth/migrations") or
 * absolute inside the work tree; paths it returns are repo-relative with '/'
 * separators. Revisions are resolved on every call: resolve once with
 * fl_git_resolve and pass the full id on, so that all calls of one run see
 * the same commit even if a branch moves meanwhile.
 *
 * An fl_git is used by one thread at a time (libgit2's rule for a
 * repository handle); open one per thread when needed. Every error is
 * FL_EINPUT: a bad revision or a repository that lacks what was asked for
 * is the caller's input, and nothing was touched.
 */
#ifndef FL_GITDIFF_H
#define FL_GITDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "migration.h"

typedef struct fl_git fl_git;

/* 40 hex digits and a NUL. */
#define FL_GIT_ID_LEN 41

/*
 * Opens the repository containing `path_inside` (a directory or a file,
 * e.g. the manifest), searching upwards. Outside any repository the error
 * reads "<path> is not inside a git repository; --since and --rev need one".
 */
int fl_git_open(const char *path_inside, fl_git **out, fl_error **err);
void fl_git_free(fl_git *g);
/* Absolute work tree with a trailing '/', or NULL for a bare repository. */
const char *fl_git_workdir(const fl_git *g);

/*
 * Resolves `rev` to a commit: branches, remote branches, tags (annotated or
 * not, peeled), full or unique short ids, HEAD~n, rev^{}, anything
 * git_revparse_single knows. Errors: "unknown revision 'origin/mian'; did
 * you mean 'origin/main'?", "ambiguous revision 'ab12'", and in a shallow
 * clone, for anything not found (the history is cut, so a typo cannot be
 * told from a missing base): "the base revision origin/main is not in this
 * clone; fetch full history, e.g. actions/checkout with fetch-depth: 0".
 */
int fl_git_resolve(fl_git *g, const char *rev, char id[FL_GIT_ID_LEN], fl_error **err);

/* The best common ancestor of two revisions (for "what did this branch change"). */
int fl_git_merge_base(fl_git *g, const char *a, const char *b, char id[FL_GIT_ID_LEN], fl_error **err);

/*
 * The two sides a review of `since` compares (diff --since, lint --since).
 * With `to`: since and to, as given. Without: the merge base of since and
 * HEAD (since itself when there is no HEAD or no common history) and the
 * work tree, *to_id then "". *merge_base says the base is not since itself.
 */
int fl_git_since_range(fl_git *g, const char *since, const char *to, char base[FL_GIT_ID_LEN],
                       char to_id[FL_GIT_ID_LEN], bool *merge_base, fl_error **err);

typedef enum {
	FL_GIT_ADDED,    /* new file (also an untracked one in the work tree) */
	FL_GIT_MODIFIED, /* content or mode changed */
	FL_GIT_DELETED,
	FL_GIT_RENAMED /* old_path -> new_path, same folder, content similar */
} fl_git_status;

/* "added", "modified", "deleted", "renamed". */
const char *fl_git_status_name(fl_git_status s);

typedef struct {
	size_t folder; /* index into the folders passed to fl_git_diff */
	fl_git_status status;
	char *old_path; /* repo-relative; NULL for FL_GIT_ADDED */
	char *new_path; /* repo-relative; NULL for FL_GIT_DELETED */
	/* The same paths relative to the folder (what a source calls a file's
	 * name): pointers into old_path/new_path, NULL alongside them. */
	const char *old_name;
	const char *new_name;
} fl_git_change;

/*
 * The files under `folders` that differ between `from` and `to`; `to` NULL
 * means the work tree with its index, untracked files included (ignored
 * files are not). Only what fl_git_read_folder would read counts: regular
 * files, not symbolic links, submodules or hidden names. Renames inside a folder are
 * detected, by identical content first, then by libgit2's similarity (50%),
 * also to untracked files; a rename across two folders is reported as a
 * deletion in one and an addition in the other, so each folder's list
 * stands on its own.
 * Changes are sorted by folder index, then path (new path, or old for a
 * deletion). Each change lies in the deepest folder that contains it.
 * Folders are repo-relative or absolute inside the work tree; "" or the
 * work tree itself means the whole repository.
 */
int fl_git_diff(fl_git *g, const char *from, const char *to, const char *const *folders, size_t nfolders,
                fl_git_change **out, size_t *n, fl_error **err);
void fl_git_changes_free(fl_git_change *changes, size_t n);

/*
 * Every regular file under `folder` (recursively) in the tree of `rev`,
 * sorted by name: name relative to the folder, path = display_dir + "/" +
 * name (display_dir NULL: the repo-relative folder), data the blob's bytes
 * (NUL-terminated). Symbolic links, submodules and hidden files and
 * folders (".gitkeep", ".draft/": fl_source_dir skips them too) are
 * skipped, so a revision and its checkout give the same files. A folder
 * missing from that revision is an error ("services/auth/migrations does
 * not exist in v1.4.0").
 */
int fl_git_read_folder(fl_git *g, const char *rev, const char *folder, const char *display_dir,
                       fl_file **files, size_t *n, fl_error **err);
/* Frees what fl_git_read_folder returned when the caller keeps the files. */
void fl_git_files_free(fl_file *files, size_t n);

typedef struct {
	char id[FL_GIT_ID_LEN];
	char short_id[FL_GIT_ID_LEN]; /* shortest unique abbreviation, at least core.abbrev (7) */
	char *author_name;
	char *author_email;
	int64_t author_time; /* seconds since the epoch */
	int author_offset;   /* minutes east of UTC */
	int64_t commit_time; /* committer time: what history is ordered by */
	char *summary;       /* first paragraph of the message, on one line */
} fl_git_commit;

void fl_git_commit_clear(fl_git_commit *c);
void fl_git_commits_free(fl_git_commit *commits, size_t n);

/*
 * The commits reachable from `rev` (NULL: HEAD) that changed `path` (its
 * content, mode, or existence; for a folder, anything under it), newest
 * first by commit time, at most `max` (0: all). Simplified like `git log -- path`: a merge counts only when
 * the file differs from every parent, and when it equals one parent only
 * that parent's side is followed, so a change is named by the commit that
 * made it. At the edge of a shallow clone the oldest commit present counts
 * as having added the file.
 */
int fl_git_file_history(fl_git *g, const char *rev, const char *path, size_t max, fl_git_commit **out,
                        size_t *n, fl_error **err);

/*
 * The most recent commit reachable from `rev` (NULL: HEAD) that changed
 * `path`, if it is later than the given point: commit time > since_time (0: no bound)
 * and not `since_rev` or one of its ancestors (NULL: no bound). Returns 1
 * with *out filled (clear it with fl_git_commit_clear), 0 when the file
 * did not change after that point, -1 on error. For validate: "V3 was
 * changed after it was applied, by 1a2b3c4 (Ann, 2024-05-01): fix index".
 */
int fl_git_last_change_after(fl_git *g, const char *rev, const char *path, int64_t since_time,
                             const char *since_rev, fl_git_commit *out, fl_error **err);

/*
 * HEAD's commit id and whether the work tree differs from it: staged,
 * unstaged or untracked (not ignored) files, limited to `folders` when
 * nfolders > 0. Submodules are not inspected.
 */
int fl_git_head(fl_git *g, const char *const *folders, size_t nfolders, char id[FL_GIT_ID_LEN], bool *dirty,
                fl_error **err);

/*
 * Why an applied migration's file no longer matches its history row, as git
 * tells it (validate, drift): the latest commit reachable from rev (NULL:
 * HEAD) that changed `folder`'s `script` after `installed_on` (history's
 * timestamp, read as local time). Returns 1 with *commit filled (clear it
 * with fl_git_commit_clear) and *note " (changed by <short> <summary>,
 * <author>, <date>)"; 0 with *note " (changed in the work tree, not
 * committed)" when rev is NULL and only the work tree differs from HEAD;
 * 0 with *note NULL when git cannot tell. Git errors count as "cannot tell".
 */
int fl_git_changing_commit(fl_git *g, const char *rev, const char *folder, const char *script,
                           const char *installed_on, fl_git_commit *commit, char **note);

#endif
