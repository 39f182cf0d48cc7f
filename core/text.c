#include "text.h"

#include <stdlib.h>
#include <string.h>

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
