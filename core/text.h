/*
 * text: small string helpers shared by the modules and the command line:
 * "did you mean" suggestions and UTF-8 checks.
 */
#ifndef FL_TEXT_H
#define FL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Edit distance (insert, delete, substitute, swap of neighbours) of two ASCII words. */
int fl_text_distance(const char *a, const char *b);
/* The candidate closest to `word` when it is close enough to be a likely typo
 * (distance <= 2, and less than half the word), else NULL. */
const char *fl_text_suggest(const char *word, const char *const *candidates, size_t n);
/* Is [s, s+len) valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)?
 * On failure *bad_offset (may be NULL) gets the offset of the first bad byte. */
bool fl_text_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/*
 * s as a terminal may show it: control characters, bytes that are not UTF-8,
 * and invisible or reordering code points (zero-width, bidi controls, soft
 * hyphen) escaped as \xNN or <U+XXXX>, so a name or message cannot hide,
 * reorder or redraw what is printed around it. With max_chars > 0 the result
 * is cut to that many characters, the last one then being an ellipsis.
 * New string.
 */
char *fl_text_printable(const char *s, size_t max_chars);

#endif
