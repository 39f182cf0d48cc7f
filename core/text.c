#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int fl_text_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	/* three rows are enough for the optimal string alignment distance */
	int *prev2 = calloc(m + 1, sizeof(int)), *prev = calloc(m + 1, sizeof(int)),
	    *cur = calloc(m + 1, sizeof(int));
	if (!prev2 || !prev || !cur)
		abort();
	for (size_t j = 0; j <= m; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = (int)i;
		for (size_t j = 1; j <= m; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
		}
		int *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	int d = prev[m];
	free(prev2);
	free(prev);
	free(cur);
	return d;
}

const char *fl_text_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	int best_d = 3;
	size_t wl = strlen(word);
	for (size_t i = 0; i < n; i++) {
		int d = fl_text_distance(word, candidates[i]);
		if (d < best_d && (size_t)d * 2 < (wl > 1 ? wl : 2)) {
			best = candidates[i];
			best_d = d;
		}
	}
	return best;
}

bool fl_text_utf8_valid(const char *str, size_t len, size_t *bad_offset)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		size_t need;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		for (size_t k = 1; k <= need; k++) {
			if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			goto bad;
		i += need + 1;
	}
	return true;
bad:
	if (bad_offset)
		*bad_offset = i;
	return false;
}

/* Code points a terminal shows as nothing, or that reorder what follows (bidi controls). */
static bool invisible(unsigned cp)
{
	return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF || cp == 0x00AD || cp == 0x061C ||
	       (cp >= 0x80 && cp <= 0x9F);
}

char *fl_text_printable(const char *s, size_t max_chars)
{
	fl_buf b;
	fl_buf_init(&b);
	size_t n = s ? strlen(s) : 0, chars = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		char esc[16] = "";
		if (len == 0 || i + len > n || !fl_text_utf8_valid(s + i, len, NULL)) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			len = 1;
		} else if (len == 1 && (c < 0x20 || c == 0x7f)) {
			snprintf(esc, sizeof(esc), c == '\t' ? " " : "\\x%02x", c);
		} else if (len > 1) {
			unsigned cp = c & (0xFF >> (len + 1));
			for (size_t k = 1; k < len; k++)
				cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
			if (invisible(cp))
				snprintf(esc, sizeof(esc), "<U+%04X>", cp);
		}
		size_t w = *esc ? strlen(esc) : 1;
		if (max_chars && chars + w > max_chars) {
			/* cut: the last column says there was more */
			while (b.len && chars >= max_chars) {
				do
					b.len--;
				while (b.len && ((unsigned char)b.data[b.len] & 0xC0) == 0x80);
				chars--;
			}
			b.data[b.len] = '\0';
			fl_buf_puts(&b, "\xe2\x80\xa6"); /* … */
			return fl_buf_detach(&b);
		}
		if (*esc)
			fl_buf_puts(&b, esc);
		else
			fl_buf_add(&b, s + i, len);
		chars += w;
		i += len;
	}
	if (!b.data)
		fl_buf_puts(&b, "");
	return fl_buf_detach(&b);
}
