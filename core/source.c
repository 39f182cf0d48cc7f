#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	fl_file *items;
	size_t n, cap;
} file_list;

int fl_file_read(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fl_buf b;
	fl_buf_init(&b);
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fl_buf_add(&b, chunk, got);
	int bad = ferror(f);
	int saved = errno;
	fclose(f);
	if (bad) {
		fl_buf_free(&b);
		errno = saved;
		return -1;
	}
	if (!b.data)
		fl_buf_add(&b, "", 0);
	*len = b.len;
	*data = fl_buf_detach(&b);
	return 0;
}

int fl_file_write(const char *path, const char *data, size_t len)
{
	char *tmp = fl_asprintf("%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	int en = 0;
	if (fd < 0) {
		en = errno;
	} else {
		mode_t mask = umask(022); /* read back: umask has no getter */
		umask(mask);
		size_t off = 0;
		while (off < len && !en) {
			ssize_t w = write(fd, data + off, len - off);
			if (w < 0 && errno != EINTR)
				en = errno;
			else if (w > 0)
				off += (size_t)w;
		}
		if (!en && fchmod(fd, 0666 & ~mask) != 0)
			en = errno;
		if (close(fd) != 0 && !en)
			en = errno;
		if (!en && rename(tmp, path) != 0)
			en = errno;
		if (en)
			unlink(tmp);
	}
	free(tmp);
	errno = en;
	return en ? -1 : 0;
}

/* Walks dir/rel ("" at the top); relative names are joined with '/'. */
static int walk(const char *top, const char *rel, const char *display, file_list *out, fl_error **err)
{
	char *full = *rel ? fl_asprintf("%s/%s", top, rel) : fl_strdup(top);
	DIR *d = opendir(full);
	if (!d) {
		char *shown = *rel ? fl_asprintf("%s/%s", display, rel) : fl_strdup(display);
		*err = errno == ENOENT ? fl_error_new("migrations folder %s does not exist", shown)
		                       : fl_error_new("cannot read folder %s: %s", shown, strerror(errno));
		free(shown);
		free(full);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *child_rel = *rel ? fl_asprintf("%s/%s", rel, e->d_name) : fl_strdup(e->d_name);
		char *child = fl_asprintf("%s/%s", full, e->d_name);
		struct stat lst, st;
		if (lstat(child, &lst) != 0 || stat(child, &st) != 0) {
			/* a dangling link is not a file we could mean; skip it like other non-files */
			if (errno != ENOENT) {
				*err = fl_error_new("cannot read %s/%s: %s", display, child_rel,
				                    strerror(errno));
				rc = -1;
			}
		} else if (S_ISDIR(st.st_mode)) {
			if (!S_ISLNK(lst.st_mode))
				rc = walk(top, child_rel, display, out, err);
		} else if (S_ISREG(st.st_mode)) {
			fl_file f = {0};
			if (fl_file_read(child, &f.data, &f.len) != 0) {
				*err = fl_error_new("cannot read %s/%s: %s", display, child_rel,
				                    strerror(errno));
				rc = -1;
			} else {
				f.name = child_rel;
				child_rel = NULL;
				f.path = fl_asprintf("%s/%s", display, f.name);
				if (out->n == out->cap) {
					out->cap = out->cap ? out->cap * 2 : 32;
					out->items = fl_realloc(out->items, out->cap * sizeof(*out->items));
				}
				out->items[out->n++] = f;
			}
		}
		free(child);
		free(child_rel);
	}
	closedir(d);
	free(full);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const fl_file *)a)->name, ((const fl_file *)b)->name);
}

int fl_source_dir(const char *dir, const char *display_dir, fl_file **files, size_t *n, fl_error **err)
{
	file_list out = {0};
	*files = NULL;
	*n = 0;
	fl_error *e = NULL;
	if (walk(dir, "", display_dir ? display_dir : dir, &out, &e) != 0) {
		fl_source_free(out.items, out.n);
		if (err)
			*err = e;
		else
			fl_error_free(e);
		return -1;
	}
	if (out.n > 1)
		qsort(out.items, out.n, sizeof(*out.items), by_name);
	*files = out.items;
	*n = out.n;
	return 0;
}

void fl_source_free(fl_file *files, size_t n)
{
	for (size_t i = 0; files && i < n; i++)
		fl_file_clear(&files[i]);
	free(files);
}
