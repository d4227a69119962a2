/* Pre-tokenizers: split normalized text into the words BPE sees, as tokenizers'
 * pre_tokenizers/ (Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace,
 * WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit).
 * The stages are chained: each piece a stage cuts goes straight on to the next stage and
 * finally to the model, so no list of the whole text's pieces is ever built. Empty
 * pieces are dropped, as PreTokenizedString::split does; added tokens pass through. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

typedef enum { B_REMOVED, B_ISOLATED, B_PREVIOUS, B_NEXT, B_CONTIGUOUS } behavior;

typedef enum {
    P_SEQUENCE,
    P_SPLIT,
    P_BYTELEVEL,
    P_METASPACE,
    P_DIGITS,
    P_WHITESPACE,
    P_WHITESPACE_SPLIT,
    P_PUNCTUATION,
    P_BERT,
    P_CHAR_DELIMITER,
} pretok_kind;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

struct oc_pretok {
    pretok_kind kind;
    oc_pretok **children;      /* Sequence */
    size_t n_children;
    oc_pattern pattern;        /* Split; ByteLevel's GPT-2 regex */
    behavior behavior;         /* Split, Punctuation */
    int invert;                /* Split */
    int add_prefix_space;      /* ByteLevel */
    int use_regex;             /* ByteLevel */
    uint32_t replacement;      /* Metaspace; CharDelimiterSplit's delimiter */
    prepend_scheme scheme;     /* Metaspace */
    int split;                 /* Metaspace */
    int individual_digits;     /* Digits */
    const oc_pretok **flat;    /* the root: every stage in order, Sequences unrolled */
    size_t n_flat;
};

/* GPT-2's word regex, which ByteLevel applies when use_regex is true. */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void oc_pretok_free(oc_pretok *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n_children; i++)
        oc_pretok_free(p->children[i]);
    oc_free(p->children);
    oc_pattern_free(&p->pattern);
    oc_free((void *)p->flat);
    oc_free(p);
}

/* ---- parsing --------------------------------------------------------------------- */

static oc_status parse_behavior(const cJSON *j, const char *file, const char *what, int def,
                                behavior *out) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    const char *s;
    OC_TRY(oc_tok_str(j, "behavior", def < 0, file, what, &s));
    if (!s) {
        *out = (behavior)def;
        return OC_OK;
    }
    for (int i = 0; i < 5; i++) {
        if (!strcmp(s, names[i])) {
            *out = (behavior)i;
            return OC_OK;
        }
    }
    return oc_err(OC_ERR_FORMAT, "%s: %s has unknown behavior '%s'", file, what, s);
}

static oc_status parse_sequence(oc_pretok *p, const cJSON *j, const char *file) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
    if (!cJSON_IsArray(arr))
        return oc_err(OC_ERR_FORMAT,
                      "%s: pre_tokenizer Sequence has no \"pretokenizers\" array", file);
    size_t count = (size_t)cJSON_GetArraySize(arr);
    p->children = oc_calloc(count ? count : 1, sizeof *p->children);
    if (!p->children)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (cJSON_IsNull(c))
            return oc_err(OC_ERR_FORMAT, "%s: null inside pre_tokenizer Sequence", file);
        OC_TRY(oc_pretok_parse(c, file, &p->children[p->n_children]));
        p->n_children++;
    }
    return OC_OK;
}

static oc_status parse_metaspace(oc_pretok *p, const cJSON *j, const char *file) {
    const char *w = "pre_tokenizer Metaspace";
    OC_TRY(oc_tok_char(j, "replacement", file, w, &p->replacement));
    OC_TRY(oc_tok_bool(j, "split", 1, file, w, &p->split));
    const char *scheme;
    OC_TRY(oc_tok_str(j, "prepend_scheme", 0, file, w, &scheme));
    if (!scheme || !strcmp(scheme, "always"))
        p->scheme = PREPEND_ALWAYS;
    else if (!strcmp(scheme, "first"))
        p->scheme = PREPEND_FIRST;
    else if (!strcmp(scheme, "never"))
        p->scheme = PREPEND_NEVER;
    else
        return oc_err(OC_ERR_FORMAT, "%s: %s has unknown prepend_scheme '%s'", file, w, scheme);
    /* older files say add_prefix_space instead; false must agree with "never" */
    int aps;
    OC_TRY(oc_tok_bool(j, "add_prefix_space", 1, file, w, &aps));
    if (!aps) {
        if (scheme && p->scheme != PREPEND_NEVER)
            return oc_err(OC_ERR_FORMAT,
                          "%s: %s add_prefix_space does not match declared prepend_scheme",
                          file, w);
        p->scheme = PREPEND_NEVER;
    }
    return OC_OK;
}

static oc_status parse_body(oc_pretok *p, const char *type, const cJSON *j, const char *file) {
    if (!strcmp(type, "Sequence")) {
        p->kind = P_SEQUENCE;
        return parse_sequence(p, j, file);
    }
    if (!strcmp(type, "Split")) {
        p->kind = P_SPLIT;
        OC_TRY(parse_behavior(j, file, "pre_tokenizer Split", -1, &p->behavior));
        OC_TRY(oc_tok_bool(j, "invert", 0, file, "pre_tokenizer Split", &p->invert));
        char what[600];
        snprintf(what, sizeof what, "%s: pre_tokenizer Split", file);
        return oc_pattern_parse(cJSON_GetObjectItemCaseSensitive(j, "pattern"), what,
                                &p->pattern);
    }
    if (!strcmp(type, "ByteLevel")) {
        p->kind = P_BYTELEVEL;
        OC_TRY(oc_tok_bool(j, "add_prefix_space", 1, file, "pre_tokenizer ByteLevel",
                           &p->add_prefix_space));
        OC_TRY(oc_tok_bool(j, "use_regex", 1, file, "pre_tokenizer ByteLevel", &p->use_regex));
        if (!p->use_regex)
            return OC_OK;
        char what[600];
        snprintf(what, sizeof what, "%s: pre_tokenizer ByteLevel", file);
        return oc_regex_compile(gpt2_regex, what, &p->pattern.regex);
    }
    if (!strcmp(type, "Metaspace")) {
        p->kind = P_METASPACE;
        return parse_metaspace(p, j, file);
    }
    if (!strcmp(type, "Digits")) {
        p->kind = P_DIGITS;
        return oc_tok_bool(j, "individual_digits", 0, file, "pre_tokenizer Digits",
                           &p->individual_digits);
    }
    if (!strcmp(type, "Whitespace")) {
        p->kind = P_WHITESPACE;
        return OC_OK;
    }
    if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = P_WHITESPACE_SPLIT;
        return OC_OK;
    }
    if (!strcmp(type, "Punctuation")) {
        p->kind = P_PUNCTUATION;
        return parse_behavior(j, file, "pre_tokenizer Punctuation", B_ISOLATED, &p->behavior);
    }
    if (!strcmp(type, "BertPreTokenizer")) {
        /* whitespace split, then punctuation isolated */
        p->kind = P_BERT;
        p->children = oc_calloc(2, sizeof *p->children);
        if (!p->children)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
        for (int i = 0; i < 2; i++) {
            if (!(p->children[i] = oc_calloc(1, sizeof *p->children[i])))
                return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
            p->n_children++;
        }
        p->children[0]->kind = P_WHITESPACE_SPLIT;
        p->children[1]->kind = P_PUNCTUATION;
        p->children[1]->behavior = B_ISOLATED;
        return OC_OK;
    }
    if (!strcmp(type, "CharDelimiterSplit")) {
        p->kind = P_CHAR_DELIMITER;
        return oc_tok_char(j, "delimiter", file, "pre_tokenizer CharDelimiterSplit",
                           &p->replacement);
    }
    return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported pre_tokenizer type '%s'", file, type);
}

/* Appends the stages of p (Sequences and BertPreTokenizer unrolled) to root->flat. */
static oc_status flatten(oc_pretok *root, const oc_pretok *p, const char *file) {
    if (p->kind == P_SEQUENCE || p->kind == P_BERT) {
        for (size_t i = 0; i < p->n_children; i++)
            OC_TRY(flatten(root, p->children[i], file));
        return OC_OK;
    }
    const oc_pretok **f = oc_realloc((void *)root->flat, (root->n_flat + 1) * sizeof *f);
    if (!f)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    f[root->n_flat++] = p;
    root->flat = f;
    return OC_OK;
}

oc_status oc_pretok_parse(const cJSON *j, const char *file, oc_pretok **out) {
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return OC_OK;
    const char *type;
    OC_TRY(oc_tok_type(j, file, "pre_tokenizer", &type));
    oc_pretok *p = oc_calloc(1, sizeof *p);
    if (!p)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    oc_status st = parse_body(p, type, j, file);
    if (st == OC_OK)
        st = flatten(p, p, file);
    if (st != OC_OK) {
        oc_pretok_free(p);
        return st;
    }
    *out = p;
    return OC_OK;
}

/* ---- running: each stage hands its pieces straight to the next ------------------ */

typedef struct {
    const oc_pretok *const *stages;
    size_t n;
    oc_buf *bufs;        /* two scratch buffers per stage */
    oc_pretok_sink sink;
    void *ctx;
} run_ctx;

static oc_status feed(run_ctx *r, size_t d, const char *s, size_t n, int first);

/* NormalizedString::split, streamed: segments (matches and the gaps between them, in
 * order) come in one at a time; the behavior decides which are kept and what merges.
 * Only the merging modes hold one pending piece. */
typedef struct {
    run_ctx *r;
    size_t d;             /* the stage splitting; pieces go to stage d + 1 */
    const char *s;
    int first;
    behavior bh;
    int invert;
    size_t pa, pb;        /* the pending piece */
    int have, prev_match;
} splitter;

static oc_status sp_emit(splitter *sp, size_t a, size_t b) {
    if (a >= b)
        return OC_OK; /* empty pieces are dropped */
    return feed(sp->r, sp->d + 1, sp->s + a, b - a, sp->first && a == 0);
}

static oc_status sp_hold(splitter *sp, size_t a, size_t b) {
    oc_status st = sp->have ? sp_emit(sp, sp->pa, sp->pb) : OC_OK;
    sp->pa = a, sp->pb = b, sp->have = 1;
    return st;
}

static oc_status sp_segment(splitter *sp, size_t a, size_t b, int is_match) {
    oc_status st = OC_OK;
    if (sp->invert)
        is_match = !is_match;
    switch (sp->bh) {
    case B_REMOVED:
        if (!is_match)
            st = sp_emit(sp, a, b);
        break;
    case B_ISOLATED:
        st = sp_emit(sp, a, b);
        break;
    case B_CONTIGUOUS: /* runs of equal flags join */
        if (sp->have && is_match == sp->prev_match)
            sp->pb = b;
        else
            st = sp_hold(sp, a, b);
        break;
    case B_PREVIOUS: /* a match joins the non-match before it */
        if (sp->have && is_match && !sp->prev_match)
            sp->pb = b;
        else
            st = sp_hold(sp, a, b);
        break;
    case B_NEXT: /* a match joins the non-match after it: hold matches only */
        if (is_match) {
            st = sp_hold(sp, a, b);
        } else if (sp->have) {
            sp->have = 0;
            st = sp_emit(sp, sp->pa, b);
        } else {
            st = sp_emit(sp, a, b);
        }
        break;
    }
    sp->prev_match = is_match;
    return st;
}

static oc_status sp_finish(splitter *sp) {
    return sp->have ? sp_emit(sp, sp->pa, sp->pb) : OC_OK;
}

static splitter sp_new(run_ctx *r, size_t d, const char *s, int first, behavior bh,
                       int invert) {
    return (splitter){.r = r, .d = d, .s = s, .first = first, .bh = bh, .invert = invert};
}

/* Splits on the matches of a pattern (empty matches split nothing). */
static oc_status split_pattern(run_ctx *r, size_t d, const oc_pattern *pat, const char *s,
                               size_t n, behavior bh, int invert, int first) {
    splitter sp = sp_new(r, d, s, first, bh, invert);
    oc_match_iter it;
    OC_TRY(oc_match_begin(&it, pat, s, n));
    oc_status st = OC_OK;
    size_t pos = 0, a, b;
    while (st == OC_OK && oc_match_next(&it, &a, &b, &st)) {
        if (a == b)
            continue;
        if (a > pos)
            st = sp_segment(&sp, pos, a, 0);
        if (st == OC_OK)
            st = sp_segment(&sp, a, b, 1);
        pos = b;
    }
    oc_match_end(&it);
    if (st == OC_OK && pos < n)
        st = sp_segment(&sp, pos, n, 0);
    return st == OC_OK ? sp_finish(&sp) : st;
}

static int pred_numeric(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_numeric(cp); }
static int pred_space(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_space(cp); }
static int pred_punct(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_punct(cp); }
static int pred_equal(uint32_t cp, uint32_t arg) { return cp == arg; }

/* Splits with every character for which pred() holds as a match of its own. */
static oc_status split_chars(run_ctx *r, size_t d, const char *s, size_t n,
                             int (*pred)(uint32_t, uint32_t), uint32_t arg, behavior bh,
                             int first) {
    splitter sp = sp_new(r, d, s, first, bh, 0);
    oc_status st = OC_OK;
    size_t gap = 0; /* start of the current run of non-matching characters */
    for (size_t i = 0; st == OC_OK && i < n;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        if (pred(cp, arg)) {
            if (gap < i)
                st = sp_segment(&sp, gap, i, 0);
            if (st == OC_OK)
                st = sp_segment(&sp, i, i + k, 1);
            gap = i + k;
        }
        i += k;
    }
    if (st == OC_OK && gap < n)
        st = sp_segment(&sp, gap, n, 0);
    return st == OC_OK ? sp_finish(&sp) : st;
}

/* Whitespace: runs of \w and runs of [^\w\s] (the matches of \w+|[^\w\s]+). */
static oc_status split_whitespace(run_ctx *r, size_t d, const char *s, size_t n, int first) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        int word = oc_uni_is_word(cp);
        if (!word && oc_uni_is_space(cp)) {
            i += k;
            continue;
        }
        size_t j = i + k;
        while (j < n) {
            size_t k2 = oc_utf8_next(s + j, n - j, &cp);
            int w2 = oc_uni_is_word(cp);
            if (w2 != word || (!w2 && oc_uni_is_space(cp)))
                break;
            j += k2;
        }
        OC_TRY(feed(r, d + 1, s + i, j - i, first && i == 0));
        i = j;
    }
    return OC_OK;
}

/* ---- ByteLevel and Metaspace ------------------------------------------------------- */

/* s[0..n) with every byte replaced by its byte-level character, into out. */
static oc_status to_bytelevel(oc_buf *out, const char *s, size_t n) {
    out->len = 0;
    OC_TRY(oc_buf_reserve(out, 2 * n));
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (b >= '!' && b <= '~')
            out->data[out->len++] = (char)b;
        else
            out->len += oc_utf8_put(oc_bytelevel_char(b), out->data + out->len);
    }
    return OC_OK;
}

static oc_status feed_bytelevel(run_ctx *r, size_t d, const char *s, size_t n, int first) {
    oc_buf *out = &r->bufs[2 * d + 1];
    OC_TRY(to_bytelevel(out, s, n));
    return feed(r, d + 1, out->data, out->len, first);
}

static oc_status do_bytelevel(run_ctx *r, size_t d, const char *s, size_t n, int first) {
    const oc_pretok *p = r->stages[d];
    if (p->add_prefix_space && n > 0 && s[0] != ' ') {
        oc_buf *pre = &r->bufs[2 * d];
        pre->len = 0;
        OC_TRY(oc_buf_append(pre, " ", 1));
        OC_TRY(oc_buf_append(pre, s, n));
        s = pre->data;
        n = pre->len;
    }
    if (!p->use_regex)
        return n ? feed_bytelevel(r, d, s, n, first) : OC_OK;
    /* Isolated: matches and the gaps between them are all pieces */
    oc_match_iter it;
    OC_TRY(oc_match_begin(&it, &p->pattern, s, n));
    oc_status st = OC_OK;
    size_t pos = 0, a, b;
    while (st == OC_OK && oc_match_next(&it, &a, &b, &st)) {
        if (a > pos)
            st = feed_bytelevel(r, d, s + pos, a - pos, first && pos == 0);
        if (st == OC_OK && b > a)
            st = feed_bytelevel(r, d, s + a, b - a, first && a == 0);
        pos = b > pos ? b : pos;
    }
    oc_match_end(&it);
    if (st == OC_OK && pos < n)
        st = feed_bytelevel(r, d, s + pos, n - pos, first && pos == 0);
    return st;
}

static oc_status do_metaspace(run_ctx *r, size_t d, const char *s, size_t n, int first) {
    const oc_pretok *p = r->stages[d];
    oc_buf *out = &r->bufs[2 * d];
    char rep[4];
    size_t rep_len = oc_utf8_put(p->replacement, rep);
    out->len = 0;
    /* spaces are replaced first, so a leading space counts as a leading replacement */
    int starts = (n >= rep_len && memcmp(s, rep, rep_len) == 0) || (n > 0 && s[0] == ' ');
    if (n > 0 && !starts && (p->scheme == PREPEND_ALWAYS || (p->scheme == PREPEND_FIRST && first)))
        OC_TRY(oc_buf_append(out, rep, rep_len));
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        OC_TRY(oc_buf_append(out, s + i, j - i));
        if (j < n)
            OC_TRY(oc_buf_append(out, rep, rep_len));
        i = j + 1;
    }
    if (!p->split)
        return out->len ? feed(r, d + 1, out->data, out->len, first) : OC_OK;
    return split_chars(r, d, out->data, out->len, pred_equal, p->replacement, B_NEXT, first);
}

/* Stage d on one piece, its pieces going on to stage d + 1 (or to the sink). */
static oc_status feed(run_ctx *r, size_t d, const char *s, size_t n, int first) {
    if (d == r->n)
        return r->sink(r->ctx, s, n, -1);
    const oc_pretok *p = r->stages[d];
    switch (p->kind) {
    case P_SPLIT: return split_pattern(r, d, &p->pattern, s, n, p->behavior, p->invert, first);
    case P_BYTELEVEL: return do_bytelevel(r, d, s, n, first);
    case P_METASPACE: return do_metaspace(r, d, s, n, first);
    case P_DIGITS:
        return split_chars(r, d, s, n, pred_numeric, 0,
                           p->individual_digits ? B_ISOLATED : B_CONTIGUOUS, first);
    case P_WHITESPACE: return split_whitespace(r, d, s, n, first);
    case P_WHITESPACE_SPLIT: return split_chars(r, d, s, n, pred_space, 0, B_REMOVED, first);
    case P_PUNCTUATION: return split_chars(r, d, s, n, pred_punct, 0, p->behavior, first);
    case P_CHAR_DELIMITER:
        return split_chars(r, d, s, n, pred_equal, p->replacement, B_REMOVED, first);
    case P_SEQUENCE:
    case P_BERT:
        break; /* unrolled at load */
    }
    return oc_err(OC_ERR_INTERNAL, "tokenizer: pre-tokenizer kind %d in a flat list",
                  (int)p->kind);
}

oc_status oc_pretokenize(const oc_pretok *p, const oc_pieces *in, oc_pretok_sink sink,
                         void *ctx) {
    run_ctx r = {.stages = p ? p->flat : NULL, .n = p ? p->n_flat : 0, .sink = sink,
                 .ctx = ctx};
    r.bufs = oc_calloc(2 * r.n + 1, sizeof *r.bufs);
    if (!r.bufs)
        return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory");
    oc_status st = OC_OK;
    for (size_t i = 0; st == OC_OK && i < in->n; i++) {
        const oc_piece *pc = &in->v[i];
        const char *s = oc_piece_str(in, i);
        st = pc->id >= 0 ? sink(ctx, s, pc->len, pc->id) : feed(&r, 0, s, pc->len, pc->first);
    }
    for (size_t i = 0; i < 2 * r.n; i++)
        oc_buf_free(&r.bufs[i]);
    oc_free(r.bufs);
    return st;
}
