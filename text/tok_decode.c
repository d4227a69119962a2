/* Decoders: token strings back to text, as tokenizers' decoders/ (ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse, Strip, WordPiece, BPEDecoder, Sequence).
 * Each decoder maps a list of strings to a new list; empty strings are kept, since
 * some decoders treat the first token differently. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

typedef enum {
    D_SEQUENCE,
    D_BYTELEVEL,
    D_METASPACE,
    D_REPLACE,
    D_BYTE_FALLBACK,
    D_FUSE,
    D_STRIP,
    D_WORDPIECE,
    D_BPE,
} dec_kind;

struct oc_decoder {
    dec_kind kind;
    oc_decoder **children;  /* Sequence */
    size_t n_children;
    uint32_t ch;            /* Metaspace replacement; Strip content */
    int prepend_never;      /* Metaspace: prepend_scheme == "never" */
    oc_pattern pattern;     /* Replace */
    char *text;             /* Replace content; WordPiece prefix; BPEDecoder suffix */
    size_t text_len;
    size_t start, stop;     /* Strip */
    int cleanup;            /* WordPiece */
};

void oc_decoder_free(oc_decoder *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n_children; i++)
        oc_decoder_free(d->children[i]);
    oc_free(d->children);
    oc_pattern_free(&d->pattern);
    oc_free(d->text);
    oc_free(d);
}

/* ---- parsing ---------------------------------------------------------------------- */

static oc_status copy_str(const cJSON *j, const char *key, const char *def, const char *file,
                          const char *what, oc_decoder *d) {
    const char *s;
    OC_TRY(oc_tok_str(j, key, def == NULL, file, what, &s));
    if (!s)
        s = def;
    d->text_len = strlen(s);
    d->text = oc_strndup(s, d->text_len);
    return d->text ? OC_OK : oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
}

static oc_status read_count(const cJSON *j, const char *key, const char *file, size_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return oc_err(OC_ERR_FORMAT, "%s: decoder Strip \"%s\" must be a count", file, key);
    *out = (size_t)v->valuedouble;
    return OC_OK;
}

static oc_status parse_metaspace(oc_decoder *d, const cJSON *j, const char *file) {
    const char *w = "decoder Metaspace", *scheme;
    OC_TRY(oc_tok_char(j, "replacement", file, w, &d->ch));
    OC_TRY(oc_tok_str(j, "prepend_scheme", 0, file, w, &scheme));
    if (scheme && strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
        return oc_err(OC_ERR_FORMAT, "%s: %s has unknown prepend_scheme '%s'", file, w, scheme);
    d->prepend_never = scheme && !strcmp(scheme, "never");
    int aps;
    OC_TRY(oc_tok_bool(j, "add_prefix_space", 1, file, w, &aps));
    if (!aps)
        d->prepend_never = 1;
    return OC_OK;
}

static oc_status parse_sequence(oc_decoder *d, const cJSON *j, const char *file) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "decoders");
    if (!cJSON_IsArray(arr))
        return oc_err(OC_ERR_FORMAT, "%s: decoder Sequence has no \"decoders\" array", file);
    size_t count = (size_t)cJSON_GetArraySize(arr);
    d->children = oc_calloc(count ? count : 1, sizeof *d->children);
    if (!d->children)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (cJSON_IsNull(c))
            return oc_err(OC_ERR_FORMAT, "%s: null inside decoder Sequence", file);
        OC_TRY(oc_decoder_parse(c, file, &d->children[d->n_children]));
        d->n_children++;
    }
    return OC_OK;
}

static oc_status parse_body(oc_decoder *d, const char *type, const cJSON *j, const char *file) {
    if (!strcmp(type, "Sequence")) {
        d->kind = D_SEQUENCE;
        return parse_sequence(d, j, file);
    }
    if (!strcmp(type, "ByteLevel")) {
        d->kind = D_BYTELEVEL;
        return OC_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        d->kind = D_METASPACE;
        return parse_metaspace(d, j, file);
    }
    if (!strcmp(type, "Replace")) {
        d->kind = D_REPLACE;
        OC_TRY(copy_str(j, "content", NULL, file, "decoder Replace", d));
        char what[600];
        snprintf(what, sizeof what, "%s: decoder Replace", file);
        return oc_pattern_parse(cJSON_GetObjectItemCaseSensitive(j, "pattern"), what,
                                &d->pattern);
    }
    if (!strcmp(type, "ByteFallback")) {
        d->kind = D_BYTE_FALLBACK;
        return OC_OK;
    }
    if (!strcmp(type, "Fuse")) {
        d->kind = D_FUSE;
        return OC_OK;
    }
    if (!strcmp(type, "Strip")) {
        d->kind = D_STRIP;
        OC_TRY(oc_tok_char(j, "content", file, "decoder Strip", &d->ch));
        OC_TRY(read_count(j, "start", file, &d->start));
        return read_count(j, "stop", file, &d->stop);
    }
    if (!strcmp(type, "WordPiece")) {
        d->kind = D_WORDPIECE;
        OC_TRY(oc_tok_bool(j, "cleanup", 1, file, "decoder WordPiece", &d->cleanup));
        return copy_str(j, "prefix", "##", file, "decoder WordPiece", d);
    }
    if (!strcmp(type, "BPEDecoder")) {
        d->kind = D_BPE;
        return copy_str(j, "suffix", "</w>", file, "decoder BPEDecoder", d);
    }
    return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported decoder type '%s'", file, type);
}

oc_status oc_decoder_parse(const cJSON *j, const char *file, oc_decoder **out) {
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return OC_OK;
    const char *type;
    OC_TRY(oc_tok_type(j, file, "decoder", &type));
    oc_decoder *d = oc_calloc(1, sizeof *d);
    if (!d)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    oc_status st = parse_body(d, type, j, file);
    if (st != OC_OK) {
        oc_decoder_free(d);
        return st;
    }
    *out = d;
    return OC_OK;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* Rust's str::replace: non-overlapping, left to right; an empty `from` inserts `to`
 * at every character boundary. */
static oc_status str_replace(oc_buf *out, const char *s, size_t n, const char *from, size_t fn,
                             const char *to, size_t tn) {
    if (fn == 0) {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = oc_utf8_next(s + i, n - i, &cp);
            OC_TRY(oc_buf_append(out, to, tn));
            OC_TRY(oc_buf_append(out, s + i, k));
            i += k;
        }
        return oc_buf_append(out, to, tn);
    }
    size_t i = 0;
    while (i < n) {
        const char *hit = n - i >= fn ? memmem(s + i, n - i, from, fn) : NULL;
        size_t end = hit ? (size_t)(hit - s) : n;
        OC_TRY(oc_buf_append(out, s + i, end - i));
        if (!hit)
            break;
        OC_TRY(oc_buf_append(out, to, tn));
        i = end + fn;
    }
    return OC_OK;
}

/* ---- decoders ------------------------------------------------------------------------- */

/* All tokens become one string: byte-level characters back to bytes (a token with a
 * character outside the map is taken as is), then lossy UTF-8. */
static oc_status dec_bytelevel(const oc_pieces *in, oc_pieces *out) {
    oc_buf bytes = {0};
    oc_status st = OC_OK;
    for (size_t t = 0; st == OC_OK && t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        size_t n = in->v[t].len, mark = bytes.len;
        int ok = 1;
        for (size_t i = 0; ok && st == OC_OK && i < n;) {
            uint32_t cp;
            i += oc_utf8_next(s + i, n - i, &cp);
            int b = oc_bytelevel_byte(cp);
            if (b < 0) {
                ok = 0;
                break;
            }
            uint8_t byte = (uint8_t)b;
            st = oc_buf_append(&bytes, &byte, 1);
        }
        if (st == OC_OK && !ok) {
            bytes.len = mark;
            st = oc_buf_append(&bytes, s, n);
        }
    }
    if (st == OC_OK)
        st = oc_pieces_open(out, -1, 0);
    if (st == OC_OK)
        st = oc_utf8_lossy(&out->text, (const unsigned char *)bytes.data, bytes.len);
    if (st == OC_OK)
        oc_pieces_close(out);
    oc_buf_free(&bytes);
    return st;
}

static oc_status dec_metaspace(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    for (size_t t = 0; t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        size_t n = in->v[t].len;
        OC_TRY(oc_pieces_open(out, -1, 0));
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = oc_utf8_next(s + i, n - i, &cp);
            if (cp != d->ch)
                OC_TRY(oc_buf_append(&out->text, s + i, k));
            else if (t != 0 || d->prepend_never)
                OC_TRY(oc_buf_append(&out->text, " ", 1));
            i += k;
        }
        oc_pieces_close(out);
    }
    return OC_OK;
}

static oc_status dec_replace(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    oc_spans m = {0};
    oc_status st = OC_OK;
    for (size_t t = 0; st == OC_OK && t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        size_t n = in->v[t].len, prev = 0;
        m.n = 0;
        st = oc_pattern_find(&d->pattern, s, n, &m);
        if (st == OC_OK)
            st = oc_pieces_open(out, -1, 0);
        for (size_t i = 0; st == OC_OK && i < m.n; i++) {
            st = oc_buf_append(&out->text, s + prev, m.v[2 * i] - prev);
            if (st == OC_OK)
                st = oc_buf_append(&out->text, d->text, d->text_len);
            prev = m.v[2 * i + 1];
        }
        if (st == OC_OK)
            st = oc_buf_append(&out->text, s + prev, n - prev);
        if (st == OC_OK)
            oc_pieces_close(out);
    }
    oc_spans_free(&m);
    return st;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "<0xNN>" -> the byte, else -1 (u8::from_str_radix also takes "+N"). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    int hi = hex_value(s[3]), lo = hex_value(s[4]);
    if (s[3] == '+' && lo >= 0)
        return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

/* Pending bytes become their string when valid UTF-8, else one U+FFFD per byte. */
static oc_status flush_bytes(oc_buf *bytes, oc_pieces *out) {
    if (bytes->len == 0)
        return OC_OK;
    if (oc_utf8_check(bytes->data, bytes->len) == bytes->len) {
        OC_TRY(oc_pieces_push(out, bytes->data, bytes->len, -1, 0));
    } else {
        for (size_t i = 0; i < bytes->len; i++)
            OC_TRY(oc_pieces_push(out, "\xEF\xBF\xBD", 3, -1, 0));
    }
    bytes->len = 0;
    return OC_OK;
}

static oc_status dec_byte_fallback(const oc_pieces *in, oc_pieces *out) {
    oc_buf bytes = {0};
    oc_status st = OC_OK;
    for (size_t t = 0; st == OC_OK && t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        int b = byte_token(s, in->v[t].len);
        if (b >= 0) {
            uint8_t byte = (uint8_t)b;
            st = oc_buf_append(&bytes, &byte, 1);
            continue;
        }
        st = flush_bytes(&bytes, out);
        if (st == OC_OK)
            st = oc_pieces_push(out, s, in->v[t].len, -1, 0);
    }
    if (st == OC_OK)
        st = flush_bytes(&bytes, out);
    oc_buf_free(&bytes);
    return st;
}

static oc_status dec_fuse(const oc_pieces *in, oc_pieces *out) {
    OC_TRY(oc_pieces_open(out, -1, 0));
    for (size_t t = 0; t < in->n; t++)
        OC_TRY(oc_buf_append(&out->text, oc_piece_str(in, t), in->v[t].len));
    oc_pieces_close(out);
    return OC_OK;
}

static oc_status dec_strip(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    char c[4];
    size_t cl = oc_utf8_put(d->ch, c);
    for (size_t t = 0; t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        size_t a = 0, b = in->v[t].len;
        for (size_t k = 0; k < d->start && b - a >= cl && !memcmp(s + a, c, cl); k++)
            a += cl;
        /* (tokenizers counts from the end of the whole token, so a token shorter than
         * start + stop may be cut from both sides; the cuts never cross here) */
        for (size_t k = 0; k < d->stop && b - a >= cl && !memcmp(s + b - cl, c, cl); k++)
            b -= cl;
        OC_TRY(oc_pieces_push(out, s + a, b - a, -1, 0));
    }
    return OC_OK;
}

static oc_status wordpiece_cleanup(oc_buf *s) {
    static const char *const from[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm",
                                       " do not", " 's", " 've", " 're"};
    static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m",
                                     " don't", "'s", "'ve", "'re"};
    oc_buf tmp = {0};
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        tmp.len = 0;
        oc_status st = str_replace(&tmp, s->data, s->len, from[i], strlen(from[i]), to[i],
                                   strlen(to[i]));
        if (st != OC_OK) {
            oc_buf_free(&tmp);
            return st;
        }
        oc_buf t = *s;
        *s = tmp;
        tmp = t;
    }
    oc_buf_free(&tmp);
    return OC_OK;
}

static oc_status dec_wordpiece(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    oc_buf tok = {0};
    oc_status st = OC_OK;
    for (size_t t = 0; st == OC_OK && t < in->n; t++) {
        const char *s = oc_piece_str(in, t);
        size_t n = in->v[t].len;
        tok.len = 0;
        if (t != 0) {
            if (n >= d->text_len && !memcmp(s, d->text, d->text_len)) {
                s += d->text_len;
                n -= d->text_len;
            } else {
                st = oc_buf_append(&tok, " ", 1);
            }
        }
        if (st == OC_OK)
            st = oc_buf_append(&tok, s, n);
        if (st == OC_OK && d->cleanup)
            st = wordpiece_cleanup(&tok);
        if (st == OC_OK)
            st = oc_pieces_push(out, tok.data, tok.len, -1, 0);
    }
    oc_buf_free(&tok);
    return st;
}

static oc_status dec_bpe(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    for (size_t t = 0; t < in->n; t++) {
        const char *rep = t + 1 == in->n ? "" : " ";
        OC_TRY(oc_pieces_open(out, -1, 0));
        OC_TRY(str_replace(&out->text, oc_piece_str(in, t), in->v[t].len, d->text, d->text_len,
                           rep, strlen(rep)));
        oc_pieces_close(out);
    }
    return OC_OK;
}

static oc_status run_one(const oc_decoder *d, const oc_pieces *in, oc_pieces *out) {
    switch (d->kind) {
    case D_BYTELEVEL: return dec_bytelevel(in, out);
    case D_METASPACE: return dec_metaspace(d, in, out);
    case D_REPLACE: return dec_replace(d, in, out);
    case D_BYTE_FALLBACK: return dec_byte_fallback(in, out);
    case D_FUSE: return dec_fuse(in, out);
    case D_STRIP: return dec_strip(d, in, out);
    case D_WORDPIECE: return dec_wordpiece(d, in, out);
    case D_BPE: return dec_bpe(d, in, out);
    case D_SEQUENCE: break;
    }
    return oc_err(OC_ERR_INTERNAL, "tokenizer: decoder kind %d applied alone", (int)d->kind);
}

oc_status oc_decode_chain(const oc_decoder *d, oc_pieces *io, oc_pieces *tmp) {
    if (!d)
        return OC_OK;
    if (d->kind == D_SEQUENCE) {
        for (size_t i = 0; i < d->n_children; i++)
            OC_TRY(oc_decode_chain(d->children[i], io, tmp));
        return OC_OK;
    }
    oc_pieces_clear(tmp);
    OC_TRY(run_one(d, io, tmp));
    oc_pieces t = *io;
    *io = *tmp;
    *tmp = t;
    return OC_OK;
}
