/* Split/Replace patterns: literal strings, or regexes compiled with PCRE2.
 *
 * tokenizers compiles these regexes with Oniguruma. PCRE2 (UTF + UCP) reads the same
 * syntax for everything tokenizer files use (\p{L}, (?i:...), (?!...), {1,3}); the
 * escapes whose meaning differs are rewritten first:
 *   \s  Oniguruma: White_Space (includes U+0085);  PCRE2: Z categories + \t\n\v\f\r
 *   \w  Oniguruma: L, M, Nd, Pc;                     PCRE2 10.42: L, N, '_'
 *   \h  Oniguruma: a hex digit;                      PCRE2: horizontal space
 * Matches are iterated as the onig crate does: an empty match right where the previous
 * match ended is skipped. Allocations go through oc_malloc (a PCRE2 general context). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

struct oc_regex {
    pcre2_general_context *gctx;
    pcre2_code *code;
};

static void *re_malloc(PCRE2_SIZE n, void *ud) {
    (void)ud;
    return oc_malloc(n);
}

static void re_free(void *p, void *ud) {
    (void)ud;
    oc_free(p);
}

/* Class bodies (without brackets) that give the escapes Oniguruma's meaning. */
static const char *escape_body(char c) {
    switch (c) {
    case 's': case 'S': return "\\s\\x{85}";
    case 'w': case 'W': return "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
    case 'h': case 'H': return "0-9a-fA-F";
    default: return NULL;
    }
}

/* Rewrites the escapes listed above; everything else is copied as is. */
static oc_status translate(const char *pat, oc_buf *out) {
    int in_class = 0;
    size_t n = strlen(pat);
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char e = pat[i + 1];
            const char *body = escape_body(e);
            int negated = e >= 'A' && e <= 'Z';
            if (body && !in_class) {
                OC_TRY(oc_buf_append(out, negated ? "[^" : "[", negated ? 2 : 1));
                OC_TRY(oc_buf_append(out, body, strlen(body)));
                OC_TRY(oc_buf_append(out, "]", 1));
            } else if (body && !negated) {
                OC_TRY(oc_buf_append(out, body, strlen(body)));
            } else {
                /* a negated escape inside a class keeps PCRE2's meaning */
                OC_TRY(oc_buf_append(out, pat + i, 2));
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            OC_TRY(oc_buf_append(out, &c, 1));
            /* a ']' right after '[' or '[^' is a literal */
            if (i + 1 < n && pat[i + 1] == '^')
                OC_TRY(oc_buf_append(out, pat + ++i, 1));
            if (i + 1 < n && pat[i + 1] == ']')
                OC_TRY(oc_buf_append(out, pat + ++i, 1));
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        OC_TRY(oc_buf_append(out, &c, 1));
    }
    return oc_buf_cstr(out);
}

oc_status oc_regex_compile(const char *pattern, const char *what, oc_regex **out) {
    oc_regex *re = oc_calloc(1, sizeof *re);
    if (!re)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", what);
    oc_buf pat = {0};
    oc_status st = translate(pattern, &pat);
    if (st == OC_OK) {
        re->gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
        if (!re->gctx)
            st = oc_err(OC_ERR_NOMEM, "%s: out of memory", what);
    }
    if (st == OC_OK) {
        pcre2_compile_context *cctx = pcre2_compile_context_create(re->gctx);
        int errcode = 0;
        PCRE2_SIZE erroff = 0;
        if (!cctx) {
            st = oc_err(OC_ERR_NOMEM, "%s: out of memory", what);
        } else {
            re->code = pcre2_compile((PCRE2_SPTR)pat.data, pat.len, PCRE2_UTF | PCRE2_UCP,
                                     &errcode, &erroff, cctx);
            pcre2_compile_context_free(cctx);
            if (!re->code) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(errcode, msg, sizeof msg);
                st = oc_err(errcode == PCRE2_ERROR_HEAPLIMIT || errcode == PCRE2_ERROR_NOMEMORY
                                ? OC_ERR_NOMEM
                                : OC_ERR_FORMAT,
                            "%s: regex '%s' does not compile: %s", what, pattern,
                            (const char *)msg);
            }
        }
    }
    oc_buf_free(&pat);
    if (st != OC_OK) {
        oc_regex_free(re);
        return st;
    }
    /* JIT is an optimisation: if it fails (no memory, no JIT), the interpreter runs */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    *out = re;
    return OC_OK;
}

void oc_regex_free(oc_regex *re) {
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_general_context_free(re->gctx);
    oc_free(re);
}

oc_status oc_match_begin(oc_match_iter *it, const oc_pattern *p, const char *s, size_t n) {
    *it = (oc_match_iter){.p = p, .s = s ? s : "", .n = n, .last_end = SIZE_MAX};
    if (p->regex && !(it->md = pcre2_match_data_create(1, p->regex->gctx)))
        return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory for regex matching");
    return OC_OK;
}

void oc_match_end(oc_match_iter *it) {
    pcre2_match_data_free(it->md);
    it->md = NULL;
}

static int literal_next(oc_match_iter *it, size_t *start, size_t *end) {
    size_t ln = it->p->literal_len;
    if (ln == 0 || it->pos + ln > it->n)
        return 0; /* an empty pattern matches nothing */
    const char *hit = memmem(it->s + it->pos, it->n - it->pos, it->p->literal, ln);
    if (!hit)
        return 0;
    *start = (size_t)(hit - it->s);
    *end = it->pos = *start + ln;
    return 1;
}

int oc_match_next(oc_match_iter *it, size_t *start, size_t *end, oc_status *st) {
    if (!it->p->regex)
        return literal_next(it, start, end);
    while (it->pos <= it->n) {
        int rc = pcre2_match(it->p->regex->code, (PCRE2_SPTR)it->s, it->n, it->pos,
                             PCRE2_NO_UTF_CHECK, it->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            *st = oc_err(rc == PCRE2_ERROR_NOMEMORY ? OC_ERR_NOMEM : OC_ERR_LIMIT,
                         "tokenizer: regex matching failed at byte %zu: %s", it->pos,
                         (const char *)msg);
            return 0;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(it->md);
        if (ov[0] == ov[1] && ov[1] == it->last_end) {
            /* an empty match where the last one ended: move on one character */
            if (it->pos >= it->n)
                return 0;
            uint32_t cp;
            it->pos += oc_utf8_next(it->s + it->pos, it->n - it->pos, &cp);
            continue;
        }
        *start = ov[0];
        *end = it->pos = it->last_end = ov[1];
        return 1;
    }
    return 0;
}

oc_status oc_pattern_find(const oc_pattern *p, const char *s, size_t n, oc_spans *m) {
    oc_match_iter it;
    OC_TRY(oc_match_begin(&it, p, s, n));
    oc_status st = OC_OK;
    size_t a, b;
    while (st == OC_OK && oc_match_next(&it, &a, &b, &st))
        st = oc_spans_push(m, a, b);
    oc_match_end(&it);
    return st;
}

oc_status oc_pattern_parse(const cJSON *j, const char *what, oc_pattern *out) {
    memset(out, 0, sizeof *out);
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(j, "String");
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(j, "Regex");
    if (cJSON_IsString(str)) {
        out->literal_len = strlen(str->valuestring);
        out->literal = oc_strndup(str->valuestring, out->literal_len);
        return out->literal ? OC_OK : oc_err(OC_ERR_NOMEM, "%s: out of memory", what);
    }
    if (cJSON_IsString(rx))
        return oc_regex_compile(rx->valuestring, what, &out->regex);
    return oc_err(OC_ERR_FORMAT, "%s: pattern must be {\"String\": ...} or {\"Regex\": ...}",
                  what);
}

void oc_pattern_free(oc_pattern *p) {
    oc_free(p->literal);
    oc_regex_free(p->regex);
    memset(p, 0, sizeof *p);
}
