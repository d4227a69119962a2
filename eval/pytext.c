/* Python str semantics (see pytext.h). */
#include "pytext.h"

#include <string.h>

#include <utf8proc.h>

#include "alloc.h"

/* str.isspace(): the C0 separators and controls Python counts, and Unicode's spaces. */
static int py_space_cp(utf8proc_int32_t c) {
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
        c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
        c == 0x202F || c == 0x205F || c == 0x3000)
        return 1;
    return 0;
}

size_t oc_py_space_len(const char *s, size_t n) {
    if (n == 0)
        return 0;
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    return k > 0 && py_space_cp(c) ? (size_t)k : 0;
}

/* Byte length of the character at s[0:n) (1 for a byte that is not UTF-8). */
static size_t char_len(const char *s, size_t n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    return k > 0 ? (size_t)k : 1;
}

char *oc_py_strip(const char *s) {
    size_t n = strlen(s), a = 0, k;
    while (a < n && (k = oc_py_space_len(s + a, n - a)))
        a += k;
    /* the end: scan forward, remembering where the last non-space character ended */
    size_t end = a;
    for (size_t i = a; i < n;) {
        size_t sp = oc_py_space_len(s + i, n - i);
        size_t len = sp ? sp : char_len(s + i, n - i);
        i += len;
        if (!sp)
            end = i;
    }
    return oc_strndup(s + a, end - a);
}

char *oc_py_lower(const char *s) {
    size_t n = strlen(s);
    char *out = oc_malloc(4 * n + 1); /* a lower-case code point takes at most 4 bytes */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) {
            out[o++] = s[i++];
            continue;
        }
        o += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t *)out + o);
        i += (size_t)k;
    }
    out[o] = 0;
    return out;
}

void oc_py_words_free(char **words, size_t n) {
    for (size_t i = 0; words && i < n; i++)
        oc_free(words[i]);
    oc_free(words);
}

size_t oc_py_split(const char *s, char ***words) {
    size_t n = strlen(s), count = 0, cap = 0;
    char **v = NULL;
    for (size_t i = 0; i < n;) {
        size_t sp = oc_py_space_len(s + i, n - i);
        if (sp) {
            i += sp;
            continue;
        }
        size_t j = i;
        while (j < n && !oc_py_space_len(s + j, n - j))
            j += char_len(s + j, n - j);
        if (count == cap) {
            size_t nc = cap ? 2 * cap : 8;
            char **nv = oc_realloc(v, nc * sizeof *nv);
            if (!nv)
                goto fail;
            v = nv;
            cap = nc;
        }
        if (!(v[count] = oc_strndup(s + i, j - i)))
            goto fail;
        count++;
        i = j;
    }
    *words = v;
    return count;
fail:
    oc_py_words_free(v, count);
    *words = NULL;
    return (size_t)-1;
}
