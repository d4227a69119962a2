#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static int reserve(oc_strbuf *b, size_t extra) {
    if (b->failed)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = oc_realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void oc_sb_putn(oc_strbuf *b, const char *s, size_t n) {
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void oc_sb_puts(oc_strbuf *b, const char *s) { oc_sb_putn(b, s, strlen(s)); }

void oc_sb_printf(oc_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void oc_sb_json_strn(oc_strbuf *b, const char *s, size_t n) {
    oc_sb_putn(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        oc_sb_putn(b, s + i - run, run);
        run = 0;
        switch (c) {
        case '"': oc_sb_puts(b, "\\\""); break;
        case '\\': oc_sb_puts(b, "\\\\"); break;
        case '\n': oc_sb_puts(b, "\\n"); break;
        case '\r': oc_sb_puts(b, "\\r"); break;
        case '\t': oc_sb_puts(b, "\\t"); break;
        case '\b': oc_sb_puts(b, "\\b"); break;
        case '\f': oc_sb_puts(b, "\\f"); break;
        default: oc_sb_printf(b, "\\u%04x", c); break;
        }
    }
    oc_sb_putn(b, s + n - run, run);
    oc_sb_putn(b, "\"", 1);
}

void oc_sb_json_str(oc_strbuf *b, const char *s) { oc_sb_json_strn(b, s, strlen(s)); }

void oc_sb_clear(oc_strbuf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void oc_sb_free(oc_strbuf *b) {
    oc_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
