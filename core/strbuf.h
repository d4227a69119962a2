/* A growable text buffer for writing JSON and JSONL. Appends never fail loudly: the
 * first allocation failure sets `failed`, later appends do nothing, and the caller checks
 * once at the end. */
#ifndef OC_STRBUF_H
#define OC_STRBUF_H
#include <stddef.h>

typedef struct {
    char *data; /* len bytes + a NUL */
    size_t len, cap;
    int failed;
} oc_strbuf;

void oc_sb_putn(oc_strbuf *b, const char *s, size_t n);
void oc_sb_puts(oc_strbuf *b, const char *s);
void oc_sb_printf(oc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string with its quotes; UTF-8 is written as is, control characters,
 * '"' and '\\' escaped as serde_json (and so Hugging Face tokenizers) writes them. */
void oc_sb_json_strn(oc_strbuf *b, const char *s, size_t n);
void oc_sb_json_str(oc_strbuf *b, const char *s);
void oc_sb_clear(oc_strbuf *b); /* keeps the memory */
void oc_sb_free(oc_strbuf *b);
#endif
