/* Normalizers: the string-to-string step before pre-tokenization, as tokenizers'
 * normalizers/ (Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip,
 * StripAccents, BertNormalizer, Nmt, ByteLevel). */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

typedef enum {
    N_SEQUENCE,
    N_PREPEND,
    N_REPLACE,
    N_UNICODE,
    N_LOWERCASE,
    N_STRIP,
    N_STRIP_ACCENTS,
    N_BERT,
    N_NMT,
    N_BYTELEVEL,
} norm_kind;

struct oc_normalizer {
    norm_kind kind;
    oc_normalizer **children; /* Sequence */
    size_t n_children;
    char *text;               /* Prepend: what to prepend; Replace: the replacement */
    size_t text_len;
    oc_pattern pattern;       /* Replace */
    const char *form;         /* "NFC", "NFD", "NFKC", "NFKD" */
    int left, right;          /* Strip */
    int clean_text, chinese, strip_accents, lowercase; /* BertNormalizer */
};

void oc_normalizer_free(oc_normalizer *n) {
    if (!n)
        return;
    for (size_t i = 0; i < n->n_children; i++)
        oc_normalizer_free(n->children[i]);
    oc_free(n->children);
    oc_free(n->text);
    oc_pattern_free(&n->pattern);
    oc_free(n);
}

/* ---- parsing ------------------------------------------------------------------- */

static oc_status parse_sequence(oc_normalizer *n, const cJSON *j, const char *file) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
    if (!cJSON_IsArray(arr))
        return oc_err(OC_ERR_FORMAT, "%s: normalizer Sequence has no \"normalizers\" array",
                      file);
    size_t count = (size_t)cJSON_GetArraySize(arr);
    n->children = oc_calloc(count ? count : 1, sizeof *n->children);
    if (!n->children)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (cJSON_IsNull(c))
            return oc_err(OC_ERR_FORMAT, "%s: null inside normalizer Sequence", file);
        OC_TRY(oc_normalizer_parse(c, file, &n->children[n->n_children]));
        n->n_children++;
    }
    return OC_OK;
}

static oc_status copy_str(const cJSON *j, const char *key, const char *file, const char *what,
                          char **out, size_t *len) {
    const char *s;
    OC_TRY(oc_tok_str(j, key, 1, file, what, &s));
    *len = strlen(s);
    *out = oc_strndup(s, *len);
    return *out ? OC_OK : oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
}

static oc_status parse_bert(oc_normalizer *n, const cJSON *j, const char *file) {
    const char *w = "normalizer BertNormalizer";
    OC_TRY(oc_tok_bool(j, "clean_text", 1, file, w, &n->clean_text));
    OC_TRY(oc_tok_bool(j, "handle_chinese_chars", 1, file, w, &n->chinese));
    OC_TRY(oc_tok_bool(j, "lowercase", 1, file, w, &n->lowercase));
    /* strip_accents: null means "as lowercase" */
    return oc_tok_bool(j, "strip_accents", n->lowercase, file, w, &n->strip_accents);
}

static oc_status parse_body(oc_normalizer *n, const char *type, const cJSON *j,
                            const char *file) {
    if (!strcmp(type, "Sequence")) {
        n->kind = N_SEQUENCE;
        return parse_sequence(n, j, file);
    }
    if (!strcmp(type, "Prepend")) {
        n->kind = N_PREPEND;
        return copy_str(j, "prepend", file, "normalizer Prepend", &n->text, &n->text_len);
    }
    if (!strcmp(type, "Replace")) {
        n->kind = N_REPLACE;
        OC_TRY(copy_str(j, "content", file, "normalizer Replace", &n->text, &n->text_len));
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        char what[600];
        snprintf(what, sizeof what, "%s: normalizer Replace", file);
        return oc_pattern_parse(p, what, &n->pattern);
    }
    static const char *const forms[] = {"NFC", "NFD", "NFKC", "NFKD"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(type, forms[i])) {
            n->kind = N_UNICODE;
            n->form = forms[i];
            return OC_OK;
        }
    }
    if (!strcmp(type, "Lowercase")) {
        n->kind = N_LOWERCASE;
        return OC_OK;
    }
    if (!strcmp(type, "Strip")) {
        n->kind = N_STRIP;
        OC_TRY(oc_tok_bool(j, "strip_left", 1, file, "normalizer Strip", &n->left));
        return oc_tok_bool(j, "strip_right", 1, file, "normalizer Strip", &n->right);
    }
    if (!strcmp(type, "StripAccents")) {
        n->kind = N_STRIP_ACCENTS;
        return OC_OK;
    }
    if (!strcmp(type, "BertNormalizer")) {
        n->kind = N_BERT;
        return parse_bert(n, j, file);
    }
    if (!strcmp(type, "Nmt")) {
        n->kind = N_NMT;
        return OC_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        n->kind = N_BYTELEVEL;
        return OC_OK;
    }
    return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported normalizer type '%s'", file, type);
}

oc_status oc_normalizer_parse(const cJSON *j, const char *file, oc_normalizer **out) {
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return OC_OK;
    const char *type;
    OC_TRY(oc_tok_type(j, file, "normalizer", &type));
    oc_normalizer *n = oc_calloc(1, sizeof *n);
    if (!n)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    oc_status st = parse_body(n, type, j, file);
    if (st != OC_OK) {
        oc_normalizer_free(n);
        return st;
    }
    *out = n;
    return OC_OK;
}

/* ---- applying -------------------------------------------------------------------- */

static oc_status do_replace(const oc_normalizer *n, const char *s, size_t len, oc_buf *out) {
    oc_spans m = {0};
    oc_status st = oc_pattern_find(&n->pattern, s, len, &m);
    size_t prev = 0;
    for (size_t i = 0; st == OC_OK && i < m.n; i++) {
        size_t a = m.v[2 * i], b = m.v[2 * i + 1];
        st = oc_buf_append(out, s + prev, a - prev);
        if (st == OC_OK)
            st = oc_buf_append(out, n->text, n->text_len);
        prev = b;
    }
    if (st == OC_OK)
        st = oc_buf_append(out, s + prev, len - prev);
    oc_spans_free(&m);
    return st;
}

static oc_status do_lowercase(const char *s, size_t len, oc_buf *out) {
    OC_TRY(oc_buf_reserve(out, len));
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            char lc = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            OC_TRY(oc_buf_append(out, &lc, 1));
            i++;
            continue;
        }
        uint32_t cp;
        i += oc_utf8_next(s + i, len - i, &cp);
        OC_TRY(oc_uni_lower(out, cp));
    }
    return OC_OK;
}

static oc_status do_strip(const oc_normalizer *n, const char *s, size_t len, oc_buf *out) {
    size_t a = 0, b = len;
    while (n->left && a < len) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + a, len - a, &cp);
        if (!oc_uni_is_space(cp))
            break;
        a += k;
    }
    while (n->right && b > a) {
        size_t k = 1; /* back up to the start of the last character */
        while (k < b - a && ((unsigned char)s[b - k] & 0xC0) == 0x80)
            k++;
        uint32_t cp;
        oc_utf8_next(s + b - k, k, &cp);
        if (!oc_uni_is_space(cp))
            break;
        b -= k;
    }
    return oc_buf_append(out, s + a, b - a);
}

/* Drops the characters for which drop() is true (StripAccents, Bert's strip_accents). */
static oc_status filter_chars(const char *s, size_t len, int (*drop)(uint32_t), oc_buf *out) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, len - i, &cp);
        if (!drop(cp))
            OC_TRY(oc_buf_append(out, s + i, k));
        i += k;
    }
    return OC_OK;
}

static oc_status do_nmt(const char *s, size_t len, oc_buf *out) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, len - i, &cp);
        i += k;
        if ((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) ||
            cp == 0x7F || cp == 0x8F || cp == 0x9F)
            continue; /* ASCII control characters are dropped */
        if (cp == 0x09 || cp == 0x0A || cp == 0x0C || cp == 0x0D || cp == 0x1680 ||
            (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x2581 ||
            cp == 0xFEFF || cp == 0xFFFD)
            cp = ' '; /* other code points count as spaces */
        OC_TRY(oc_buf_append_cp(out, cp));
    }
    return OC_OK;
}

static int is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static oc_status bert_clean_and_split(const oc_normalizer *n, const char *s, size_t len,
                                      oc_buf *out) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, len - i, &cp);
        i += k;
        if (n->clean_text) {
            int tnr = cp == '\t' || cp == '\n' || cp == '\r';
            if (cp == 0 || cp == 0xFFFD || (!tnr && oc_uni_is_other(cp)))
                continue;
            if (tnr || oc_uni_is_space(cp))
                cp = ' ';
        }
        int pad = n->chinese && is_chinese(cp);
        if (pad)
            OC_TRY(oc_buf_append(out, " ", 1));
        OC_TRY(oc_buf_append_cp(out, cp));
        if (pad)
            OC_TRY(oc_buf_append(out, " ", 1));
    }
    return OC_OK;
}

static oc_status do_bert(const oc_normalizer *n, const char *s, size_t len, oc_buf *out) {
    oc_buf a = {0}, b = {0};
    oc_status st = bert_clean_and_split(n, s, len, &a);
    if (st == OC_OK && n->strip_accents) {
        st = oc_uni_normalize(&b, a.data, a.len, "NFD");
        a.len = 0;
        if (st == OC_OK)
            st = filter_chars(b.data, b.len, oc_uni_is_mark_nonspacing, &a);
    }
    if (st == OC_OK)
        st = n->lowercase ? do_lowercase(a.data, a.len, out) : oc_buf_append(out, a.data, a.len);
    oc_buf_free(&a);
    oc_buf_free(&b);
    return st;
}

static oc_status do_bytelevel(const char *s, size_t len, oc_buf *out) {
    OC_TRY(oc_buf_reserve(out, 2 * len));
    for (size_t i = 0; i < len; i++)
        out->len += oc_utf8_put(oc_bytelevel_char((uint8_t)s[i]), out->data + out->len);
    return OC_OK;
}

static oc_status do_sequence(const oc_normalizer *n, const char *s, size_t len, oc_buf *out) {
    oc_buf cur = {0}, next = {0};
    oc_status st = oc_buf_append(&cur, s, len);
    for (size_t i = 0; st == OC_OK && i < n->n_children; i++) {
        st = oc_normalize(n->children[i], cur.data, cur.len, &next);
        oc_buf t = cur;
        cur = next;
        next = t;
    }
    out->len = 0;
    if (st == OC_OK)
        st = oc_buf_append(out, cur.data, cur.len);
    oc_buf_free(&cur);
    oc_buf_free(&next);
    return st;
}

oc_status oc_normalize(const oc_normalizer *n, const char *s, size_t len, oc_buf *out) {
    out->len = 0;
    if (!n)
        return oc_buf_append(out, s, len);
    switch (n->kind) {
    case N_SEQUENCE: return do_sequence(n, s, len, out);
    case N_PREPEND:
        if (len)
            OC_TRY(oc_buf_append(out, n->text, n->text_len));
        return oc_buf_append(out, s, len);
    case N_REPLACE: return do_replace(n, s, len, out);
    case N_UNICODE: return oc_uni_normalize(out, s, len, n->form);
    case N_LOWERCASE: return do_lowercase(s, len, out);
    case N_STRIP: return do_strip(n, s, len, out);
    case N_STRIP_ACCENTS: return filter_chars(s, len, oc_uni_is_mark, out);
    case N_BERT: return do_bert(n, s, len, out);
    case N_NMT: return do_nmt(s, len, out);
    case N_BYTELEVEL: return do_bytelevel(s, len, out);
    }
    return oc_err(OC_ERR_INTERNAL, "tokenizer: bad normalizer kind %d", (int)n->kind);
}
