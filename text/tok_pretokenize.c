/* Pre-tokenizers: split normalized text into the words BPE sees, as tokenizers'
 * pre_tokenizers/ (Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace,
 * WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit).
 * Every stage maps a list of pieces to a new list; empty pieces are dropped, as
 * PreTokenizedString::split does, and added-token pieces pass through. */
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
        p->kind = P_BERT;
        return OC_OK;
    }
    if (!strcmp(type, "CharDelimiterSplit")) {
        p->kind = P_CHAR_DELIMITER;
        return oc_tok_char(j, "delimiter", file, "pre_tokenizer CharDelimiterSplit",
                           &p->replacement);
    }
    return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported pre_tokenizer type '%s'", file, type);
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
    if (st != OC_OK) {
        oc_pretok_free(p);
        return st;
    }
    *out = p;
    return OC_OK;
}

/* ---- splitting --------------------------------------------------------------------- */

/* Appends the non-empty piece s[a..b) of a piece that was `first` at offset 0. */
static oc_status emit(oc_pieces *out, const char *s, size_t a, size_t b, int first) {
    if (a >= b)
        return OC_OK;
    return oc_pieces_push(out, s + a, b - a, -1, first && a == 0);
}

/* NormalizedString::split: the matches m of s[0..n) and the gaps between them form
 * segments covering s; the behavior decides which are kept and what is merged. */
static oc_status split_spans(const char *s, size_t n, const oc_spans *m, behavior bh,
                             int invert, int first, oc_pieces *out) {
    size_t cur_a = 0, cur_b = 0; /* the pending (unemitted) piece for the merging modes */
    int have = 0, prev_match = 0;
    size_t pos = 0, k = 0;
    oc_spans segs = {0};      /* MergedWithNext runs backwards: collect first */
    oc_ids flags = {0};
    oc_status st = OC_OK;
    while (st == OC_OK && pos < n) {
        size_t a, b;
        int is_match;
        if (k < m->n && m->v[2 * k] == pos) {
            a = pos;
            b = m->v[2 * k + 1];
            is_match = 1;
            k++;
        } else {
            a = pos;
            b = k < m->n ? m->v[2 * k] : n;
            is_match = 0;
        }
        if (b == a && is_match) /* empty matches split nothing */
            continue;
        pos = b;
        if (invert)
            is_match = !is_match;
        switch (bh) {
        case B_REMOVED:
            if (!is_match)
                st = emit(out, s, a, b, first);
            break;
        case B_ISOLATED:
            st = emit(out, s, a, b, first);
            break;
        case B_CONTIGUOUS:
            if (have && is_match == prev_match) {
                cur_b = b;
            } else {
                if (have)
                    st = emit(out, s, cur_a, cur_b, first);
                cur_a = a, cur_b = b, have = 1;
            }
            break;
        case B_PREVIOUS:
            if (have && is_match && !prev_match) {
                cur_b = b;
            } else {
                if (have)
                    st = emit(out, s, cur_a, cur_b, first);
                cur_a = a, cur_b = b, have = 1;
            }
            break;
        case B_NEXT:
            st = oc_spans_push(&segs, a, b);
            if (st == OC_OK)
                st = oc_ids_push(&flags, is_match);
            break;
        }
        prev_match = is_match;
    }
    if (st == OC_OK && have)
        st = emit(out, s, cur_a, cur_b, first);
    if (st == OC_OK && bh == B_NEXT) {
        /* walking backwards, a match whose right neighbour is not a match joins it */
        oc_spans merged = {0};
        int prev = 0;
        for (size_t i = segs.n; st == OC_OK && i-- > 0;) {
            size_t a = segs.v[2 * i], b = segs.v[2 * i + 1];
            if (merged.n > 0 && flags.v[i] && !prev)
                merged.v[2 * (merged.n - 1)] = a;
            else
                st = oc_spans_push(&merged, a, b);
            prev = (int)flags.v[i];
        }
        for (size_t i = merged.n; st == OC_OK && i-- > 0;)
            st = emit(out, s, merged.v[2 * i], merged.v[2 * i + 1], first);
        oc_spans_free(&merged);
    }
    oc_spans_free(&segs);
    oc_ids_free(&flags);
    return st;
}

/* Every character for which pred() is true, as a match of its own. */
static oc_status char_spans(const char *s, size_t n, int (*pred)(uint32_t, uint32_t),
                            uint32_t arg, oc_spans *m) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        if (pred(cp, arg))
            OC_TRY(oc_spans_push(m, i, i + k));
        i += k;
    }
    return OC_OK;
}

static int pred_numeric(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_numeric(cp); }
static int pred_space(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_space(cp); }
static int pred_punct(uint32_t cp, uint32_t arg) { return (void)arg, oc_uni_is_punct(cp); }
static int pred_equal(uint32_t cp, uint32_t arg) { return cp == arg; }

static oc_status split_chars(const char *s, size_t n, int (*pred)(uint32_t, uint32_t),
                             uint32_t arg, behavior bh, int first, oc_pieces *out) {
    oc_spans m = {0};
    oc_status st = char_spans(s, n, pred, arg, &m);
    if (st == OC_OK)
        st = split_spans(s, n, &m, bh, 0, first, out);
    oc_spans_free(&m);
    return st;
}

static oc_status split_pattern(const oc_pattern *pat, const char *s, size_t n, behavior bh,
                               int invert, int first, oc_pieces *out) {
    oc_spans m = {0};
    oc_status st = oc_pattern_find(pat, s, n, &m);
    if (st == OC_OK)
        st = split_spans(s, n, &m, bh, invert, first, out);
    oc_spans_free(&m);
    return st;
}

/* Whitespace: runs of \w and runs of [^\w\s] (the matches of \w+|[^\w\s]+). */
static oc_status split_whitespace(const char *s, size_t n, int first, oc_pieces *out) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        if (oc_uni_is_space(cp) && !oc_uni_is_word(cp)) {
            i += k;
            continue;
        }
        int word = oc_uni_is_word(cp);
        size_t j = i + k;
        while (j < n) {
            size_t k2 = oc_utf8_next(s + j, n - j, &cp);
            int w2 = oc_uni_is_word(cp);
            if (w2 != word || (!w2 && oc_uni_is_space(cp)))
                break;
            j += k2;
        }
        OC_TRY(emit(out, s, i, j, first));
        i = j;
    }
    return OC_OK;
}

/* ---- ByteLevel and Metaspace ------------------------------------------------------- */

/* Appends s[0..n) with every byte replaced by its byte-level character. */
static oc_status push_bytelevel(oc_pieces *out, const char *s, size_t n, int first) {
    OC_TRY(oc_buf_reserve(&out->text, 2 * n));
    OC_TRY(oc_pieces_open(out, -1, first));
    oc_buf *t = &out->text;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (b >= '!' && b <= '~')
            t->data[t->len++] = (char)b;
        else
            t->len += oc_utf8_put(oc_bytelevel_char(b), t->data + t->len);
    }
    oc_pieces_close(out);
    return OC_OK;
}

static oc_status do_bytelevel(const oc_pretok *p, const char *s, size_t n, int first,
                              oc_pieces *out, oc_buf *scratch) {
    if (p->add_prefix_space && n > 0 && s[0] != ' ') {
        scratch->len = 0;
        OC_TRY(oc_buf_append(scratch, " ", 1));
        OC_TRY(oc_buf_append(scratch, s, n));
        s = scratch->data;
        n = scratch->len;
    }
    if (!p->use_regex)
        return n ? push_bytelevel(out, s, n, first) : OC_OK;
    oc_spans m = {0};
    oc_status st = oc_pattern_find(&p->pattern, s, n, &m);
    /* Isolated: matches and the gaps between them are all pieces */
    size_t pos = 0;
    for (size_t i = 0; st == OC_OK && i <= m.n; i++) {
        size_t a = i < m.n ? m.v[2 * i] : n, b = i < m.n ? m.v[2 * i + 1] : n;
        if (a > pos)
            st = push_bytelevel(out, s + pos, a - pos, first && pos == 0);
        if (st == OC_OK && b > a)
            st = push_bytelevel(out, s + a, b - a, first && a == 0);
        pos = b;
    }
    oc_spans_free(&m);
    return st;
}

static oc_status do_metaspace(const oc_pretok *p, const char *s, size_t n, int first,
                              oc_pieces *out, oc_buf *scratch) {
    char rep[4];
    size_t rep_len = oc_utf8_put(p->replacement, rep);
    scratch->len = 0;
    /* spaces are replaced first, so a leading space counts as a leading replacement */
    int starts = (n >= rep_len && memcmp(s, rep, rep_len) == 0) || (n > 0 && s[0] == ' ');
    if (n > 0 && !starts && (p->scheme == PREPEND_ALWAYS || (p->scheme == PREPEND_FIRST && first)))
        OC_TRY(oc_buf_append(scratch, rep, rep_len));
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            OC_TRY(oc_buf_append(scratch, rep, rep_len));
        else
            OC_TRY(oc_buf_append(scratch, s + i, 1));
    }
    if (!p->split)
        return emit(out, scratch->data, 0, scratch->len, first);
    return split_chars(scratch->data, scratch->len, pred_equal, p->replacement, B_NEXT, first,
                       out);
}

/* One pre-tokenizer (not a Sequence) on one text piece. */
static oc_status apply_one(const oc_pretok *p, const char *s, size_t n, int first,
                           oc_pieces *out, oc_buf *scratch) {
    switch (p->kind) {
    case P_SPLIT: return split_pattern(&p->pattern, s, n, p->behavior, p->invert, first, out);
    case P_BYTELEVEL: return do_bytelevel(p, s, n, first, out, scratch);
    case P_METASPACE: return do_metaspace(p, s, n, first, out, scratch);
    case P_DIGITS:
        return split_chars(s, n, pred_numeric, 0,
                           p->individual_digits ? B_ISOLATED : B_CONTIGUOUS, first, out);
    case P_WHITESPACE: return split_whitespace(s, n, first, out);
    case P_WHITESPACE_SPLIT: return split_chars(s, n, pred_space, 0, B_REMOVED, first, out);
    case P_PUNCTUATION: return split_chars(s, n, pred_punct, 0, p->behavior, first, out);
    case P_CHAR_DELIMITER:
        return split_chars(s, n, pred_equal, p->replacement, B_REMOVED, first, out);
    case P_SEQUENCE:
    case P_BERT:
        break;
    }
    return oc_err(OC_ERR_INTERNAL, "tokenizer: pre-tokenizer kind %d applied alone",
                  (int)p->kind);
}

/* Runs p over every text piece of *io into *tmp, then swaps them. */
static oc_status run_stage(const oc_pretok *p, oc_pieces *io, oc_pieces *tmp,
                           oc_buf *scratch) {
    oc_pieces_clear(tmp);
    for (size_t i = 0; i < io->n; i++) {
        const oc_piece *pc = &io->v[i];
        const char *s = oc_piece_str(io, i);
        oc_status st = pc->id >= 0 ? oc_pieces_push(tmp, s, pc->len, pc->id, pc->first)
                                   : apply_one(p, s, pc->len, pc->first, tmp, scratch);
        if (st != OC_OK)
            return st;
    }
    oc_pieces t = *io;
    *io = *tmp;
    *tmp = t;
    return OC_OK;
}

static oc_status run(const oc_pretok *p, oc_pieces *io, oc_pieces *tmp, oc_buf *scratch) {
    if (p->kind == P_SEQUENCE) {
        for (size_t i = 0; i < p->n_children; i++)
            OC_TRY(run(p->children[i], io, tmp, scratch));
        return OC_OK;
    }
    if (p->kind == P_BERT) {
        oc_pretok ws = {.kind = P_WHITESPACE_SPLIT};
        oc_pretok punct = {.kind = P_PUNCTUATION, .behavior = B_ISOLATED};
        OC_TRY(run_stage(&ws, io, tmp, scratch));
        return run_stage(&punct, io, tmp, scratch);
    }
    return run_stage(p, io, tmp, scratch);
}

oc_status oc_pretokenize(const oc_pretok *p, oc_pieces *io, oc_pieces *tmp) {
    if (!p)
        return OC_OK;
    oc_buf scratch = {0};
    oc_status st = run(p, io, tmp, &scratch);
    oc_buf_free(&scratch);
    return st;
}
