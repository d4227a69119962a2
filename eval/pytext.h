/* Python's str semantics where the reference evaluation scripts rely on them: what
 * str.isspace() calls whitespace (so strip() and split()), and str.lower(). */
#ifndef OC_PYTEXT_H
#define OC_PYTEXT_H
#include <stddef.h>

/* Bytes of the whitespace character at s[0:n), or 0 if s does not start with one. */
size_t oc_py_space_len(const char *s, size_t n);
/* Copies (oc_malloc'd; NULL when out of memory). */
char *oc_py_strip(const char *s);
char *oc_py_lower(const char *s); /* per code point (utf8proc's simple lower case) */
/* s.split(): words between runs of whitespace; *words and each word oc_malloc'd, free
 * with oc_py_words_free. Returns the count, or (size_t)-1 when out of memory. */
size_t oc_py_split(const char *s, char ***words);
void oc_py_words_free(char **words, size_t n);
#endif
