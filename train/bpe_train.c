/* Byte-level BPE training: corpus -> word counts -> merges (see bpe_train.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe_train.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "hashmap.h"
#include "output.h"

/* GPT-2's split: contractions, letters, numbers, other symbols (each with an optional
 * leading space), then runs of white space (the last one left for the next word). */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *const SMOLVLM_SPECIAL[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>",
    "<image>",       "<end_of_utterance>", "<global-img>"};
#define SMOLVLM_GRID 6 /* <row_R_col_C> for R, C in 1..6 follow the above */

#define MAX_SPECIAL 4096
#define MAX_SPECIAL_LEN 1024
#define MAX_VOCAB (1u << 24)

oc_bpe_train_params oc_bpe_train_default_params(void) {
    oc_bpe_train_params p;
    memset(&p, 0, sizeof p);
    p.vocab_size = 8192;
    p.min_frequency = 2;
    p.max_corpus_bytes = (uint64_t)4 << 30;
    return p;
}

uint32_t oc_bpe_byte_char(uint8_t b) {
    /* printable Latin-1 bytes stand for themselves; the other 68 take 256, 257, ... */
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    uint32_t n = 0;
    for (uint32_t c = 0; c < b; c++)
        n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
    return 256 + n;
}

static size_t put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    /* byte characters are below U+0800: two bytes */
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

void oc_bpe_vocab_free(oc_bpe_vocab *v) {
    if (!v)
        return;
    for (size_t i = 0; i < v->n_tokens; i++)
        oc_free(v->tokens[i]);
    oc_free(v->tokens);
    oc_free(v->merges);
    memset(v, 0, sizeof *v);
}

/* ---- the growing vocabulary ---------------------------------------------------- */

typedef struct {
    oc_bpe_vocab v;
    size_t cap_tokens, cap_merges;
    oc_strmap ids; /* piece -> id; keys are v.tokens[] */
} vocab_builder;

/* The id of piece (added if new). */
static oc_status vocab_add(vocab_builder *b, const char *s, size_t n, int32_t *id) {
    int32_t have = oc_strmap_get(&b->ids, s, n);
    if (have >= 0) {
        *id = have;
        return OC_OK;
    }
    if (b->v.n_tokens == b->cap_tokens) {
        size_t cap = b->cap_tokens ? b->cap_tokens * 2 : 512;
        char **t = oc_realloc(b->v.tokens, cap * sizeof *t);
        if (!t)
            return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
        b->v.tokens = t;
        b->cap_tokens = cap;
    }
    char *copy = oc_strndup(s, n);
    if (!copy)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    *id = (int32_t)b->v.n_tokens;
    if (oc_strmap_put(&b->ids, copy, n, *id, NULL) != OC_OK) {
        oc_free(copy);
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    }
    b->v.tokens[b->v.n_tokens++] = copy;
    return OC_OK;
}

static oc_status vocab_add_merge(vocab_builder *b, int32_t l, int32_t r) {
    if (b->v.n_merges == b->cap_merges) {
        size_t cap = b->cap_merges ? b->cap_merges * 2 : 512;
        int32_t(*m)[2] = oc_realloc(b->v.merges, cap * sizeof *m);
        if (!m)
            return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
        b->v.merges = m;
        b->cap_merges = cap;
    }
    b->v.merges[b->v.n_merges][0] = l;
    b->v.merges[b->v.n_merges][1] = r;
    b->v.n_merges++;
    return OC_OK;
}

/* Special tokens, then the 256 byte characters by code point. byte_id[b] = id of b. */
static oc_status vocab_start(vocab_builder *b, const oc_bpe_train_params *p,
                             int32_t byte_id[256]) {
    OC_TRY(oc_strmap_init(&b->ids, 1024));
    int32_t id;
    if (p->special) {
        for (size_t i = 0; i < p->n_special; i++)
            OC_TRY(vocab_add(b, p->special[i], strlen(p->special[i]), &id));
    } else {
        for (size_t i = 0; i < sizeof SMOLVLM_SPECIAL / sizeof SMOLVLM_SPECIAL[0]; i++)
            OC_TRY(vocab_add(b, SMOLVLM_SPECIAL[i], strlen(SMOLVLM_SPECIAL[i]), &id));
        for (int r = 1; r <= SMOLVLM_GRID; r++)
            for (int c = 1; c <= SMOLVLM_GRID; c++) {
                char t[32];
                int n = snprintf(t, sizeof t, "<row_%d_col_%d>", r, c);
                OC_TRY(vocab_add(b, t, (size_t)n, &id));
            }
    }
    b->v.n_special = b->v.n_tokens;
    /* code points of the byte characters are distinct and < 324: a counting sort */
    int byte_of_cp[512];
    for (int i = 0; i < 512; i++)
        byte_of_cp[i] = -1;
    for (int x = 0; x < 256; x++)
        byte_of_cp[oc_bpe_byte_char((uint8_t)x)] = x;
    for (uint32_t cp = 0; cp < 512; cp++) {
        if (byte_of_cp[cp] < 0)
            continue;
        char u[4];
        OC_TRY(vocab_add(b, u, put_utf8(cp, u), &byte_id[byte_of_cp[cp]]));
    }
    return OC_OK;
}

/* ---- word counts ------------------------------------------------------------------ */

/* Words are the raw bytes of pre-tokens (the byte-character map is a bijection, so
 * counting raw bytes is the same and cheaper). Keys live in fixed blocks so that the
 * map's borrowed pointers stay valid. */
typedef struct {
    oc_strmap index;     /* bytes -> word number */
    const char **text;   /* word number -> bytes (in a block) */
    uint32_t *len;
    uint64_t *count;
    size_t n, cap;
    char **blocks;
    size_t n_blocks, block_used, block_size;
} word_counts;

#define BLOCK_SIZE ((size_t)1 << 20)

static char *wc_store(word_counts *w, const char *s, size_t n) {
    if (!w->n_blocks || w->block_used + n > w->block_size) {
        size_t size = n > BLOCK_SIZE ? n : BLOCK_SIZE;
        char **bl = oc_realloc(w->blocks, (w->n_blocks + 1) * sizeof *bl);
        if (!bl)
            return NULL;
        w->blocks = bl;
        if (!(bl[w->n_blocks] = oc_malloc(size)))
            return NULL;
        w->n_blocks++;
        w->block_used = 0;
        w->block_size = size;
    }
    char *dst = w->blocks[w->n_blocks - 1] + w->block_used;
    memcpy(dst, s, n);
    w->block_used += n;
    return dst;
}

static oc_status wc_add(word_counts *w, const char *s, size_t n) {
    if (n == 0)
        return OC_OK;
    int32_t k = oc_strmap_get(&w->index, s, n);
    if (k >= 0) {
        w->count[k]++;
        return OC_OK;
    }
    if (n > UINT32_MAX || w->n >= INT32_MAX)
        return oc_err(OC_ERR_LIMIT, "bpe: too many distinct words");
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        const char **t = oc_realloc(w->text, cap * sizeof *t);
        if (t)
            w->text = t;
        uint32_t *l = t ? oc_realloc(w->len, cap * sizeof *l) : NULL;
        if (l)
            w->len = l;
        uint64_t *c = l ? oc_realloc(w->count, cap * sizeof *c) : NULL;
        if (!c)
            return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
        w->count = c;
        w->cap = cap;
    }
    char *key = wc_store(w, s, n);
    if (!key || oc_strmap_put(&w->index, key, n, (int32_t)w->n, NULL) != OC_OK)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    w->text[w->n] = key;
    w->len[w->n] = (uint32_t)n;
    w->count[w->n] = 1;
    w->n++;
    return OC_OK;
}

static void wc_free(word_counts *w) {
    oc_strmap_free(&w->index);
    for (size_t i = 0; i < w->n_blocks; i++)
        oc_free(w->blocks[i]);
    oc_free(w->blocks);
    oc_free(w->text);
    oc_free(w->len);
    oc_free(w->count);
    memset(w, 0, sizeof *w);
}

/* ---- pre-tokenization ------------------------------------------------------------- */

typedef struct {
    pcre2_general_context *gcx;
    pcre2_code *re;
    pcre2_match_data *md;
} splitter;

static void *pcre_alloc(PCRE2_SIZE n, void *data) {
    (void)data;
    return oc_malloc(n);
}

static void pcre_free(void *p, void *data) {
    (void)data;
    oc_free(p);
}

static oc_status splitter_init(splitter *sp) {
    memset(sp, 0, sizeof *sp);
    sp->gcx = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
    pcre2_compile_context *ccx = sp->gcx ? pcre2_compile_context_create(sp->gcx) : NULL;
    int err = 0;
    PCRE2_SIZE off = 0;
    if (ccx)
        sp->re = pcre2_compile((PCRE2_SPTR)GPT2_REGEX, PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_UCP, &err, &off, ccx);
    pcre2_compile_context_free(ccx);
    if (!sp->re)
        return oc_err(OC_ERR_NOMEM, "bpe: cannot compile the GPT-2 regex (%d)", err);
    pcre2_jit_compile(sp->re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    sp->md = pcre2_match_data_create_from_pattern(sp->re, sp->gcx);
    if (!sp->md)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    return OC_OK;
}

static void splitter_free(splitter *sp) {
    pcre2_match_data_free(sp->md);
    pcre2_code_free(sp->re);
    pcre2_general_context_free(sp->gcx);
    memset(sp, 0, sizeof *sp);
}

/* Counts the regex pieces of s[0..n) (text between special tokens). */
static oc_status split_text(const splitter *sp, const char *s, size_t n, word_counts *w,
                            const char *name, size_t line) {
    size_t pos = 0;
    uint32_t opts = 0; /* validate the UTF-8 once, on the first match */
    while (pos < n) {
        int rc = pcre2_match(sp->re, (PCRE2_SPTR)s, n, pos, opts, sp->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
                return oc_err(OC_ERR_FORMAT, "%s:%zu: invalid UTF-8", name, line);
            return oc_err(OC_ERR_INTERNAL, "%s:%zu: regex match failed (%d)", name, line, rc);
        }
        opts = PCRE2_NO_UTF_CHECK;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sp->md);
        if (ov[1] <= ov[0]) { /* the pattern never matches empty; guard anyway */
            pos = ov[0] + 1;
            continue;
        }
        OC_TRY(wc_add(w, s + ov[0], ov[1] - ov[0]));
        pos = ov[1];
    }
    return OC_OK;
}

/* The first special token in s[0..n): leftmost, then longest. */
static int find_special(const char *const *sp, size_t n_sp, const char *s, size_t n,
                        size_t *at, size_t *len) {
    int found = 0;
    for (size_t i = 0; i < n_sp; i++) {
        size_t l = strlen(sp[i]);
        const char *p = memmem(s, n, sp[i], l);
        if (!p)
            continue;
        size_t a = (size_t)(p - s);
        if (!found || a < *at || (a == *at && l > *len)) {
            *at = a;
            *len = l;
            found = 1;
        }
    }
    return found;
}

static oc_status count_text(const splitter *sp, const char *text, size_t size,
                            const char *name, const char *const *special, size_t n_special,
                            word_counts *w) {
    if (size == 0)
        return OC_OK;
    /* only the special tokens that occur in this text need looking for per line */
    const char **here = oc_calloc(n_special + 1, sizeof *here);
    if (!here)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    size_t n_here = 0;
    for (size_t i = 0; i < n_special; i++)
        if (memmem(text, size, special[i], strlen(special[i])))
            here[n_here++] = special[i];
    oc_status s = OC_OK;
    size_t line = 1;
    for (size_t pos = 0; pos < size && s == OC_OK; line++) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : size; /* the line keeps its ending */
        const char *p = text + pos;
        size_t n = end - pos, at = 0, len = 0;
        while (s == OC_OK && n_here && find_special(here, n_here, p, n, &at, &len)) {
            s = split_text(sp, p, at, w, name, line);
            p += at + len;
            n -= at + len;
        }
        if (s == OC_OK)
            s = split_text(sp, p, n, w, name, line);
        pos = end;
    }
    oc_free(here);
    return s;
}

/* ---- merging ----------------------------------------------------------------------- */

/* A pair of adjacent symbols: its count over all words and the words it occurs in (a
 * linked list through `nodes`, possibly with repeats and stale entries). */
typedef struct {
    int32_t a, b;
    int64_t count;
    int64_t head;    /* first node, or -1 */
    uint64_t stamp;  /* merge step that last touched it */
} pair_info;

typedef struct {
    uint32_t word;
    int64_t next;
} where_node;

typedef struct {
    int64_t count;
    int32_t a, b;
} heap_entry;

typedef struct {
    /* words as symbol ids: word i is sym[off[i] .. off[i] + len[i]) */
    int32_t *sym;
    size_t *off;
    uint32_t *len;
    uint64_t *count;
    size_t n_words;
    uint64_t *seen; /* merge step that last visited each word */
    oc_u64map pair_index; /* (a << 32 | b) -> index in pairs */
    pair_info *pairs;
    size_t n_pairs, cap_pairs;
    where_node *nodes;
    size_t n_nodes, cap_nodes;
    heap_entry *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched; /* pairs that gained occurrences in this step */
    size_t n_touched, cap_touched;
} merger;

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 1024, bytes;
    while (c < need)
        c *= 2;
    if (!oc_mul_ok(c, elem, &bytes))
        return 0;
    void *q = oc_realloc(*p, bytes);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* Heap order: higher count first, then the smaller (a, b). */
static int heap_before(const heap_entry *x, const heap_entry *y) {
    if (x->count != y->count)
        return x->count > y->count;
    if (x->a != y->a)
        return x->a < y->a;
    return x->b < y->b;
}

static oc_status heap_push(merger *m, int64_t count, int32_t a, int32_t b) {
    if (!grow((void **)&m->heap, &m->cap_heap, m->n_heap + 1, sizeof *m->heap))
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    size_t i = m->n_heap++;
    heap_entry e = {count, a, b};
    while (i > 0 && heap_before(&e, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = e;
    return OC_OK;
}

static heap_entry heap_pop(merger *m) {
    heap_entry top = m->heap[0], last = m->heap[--m->n_heap];
    size_t i = 0, n = m->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_before(&m->heap[c + 1], &m->heap[c]))
            c++;
        if (!heap_before(&m->heap[c], &last))
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n)
        m->heap[i] = last;
    return top;
}

/* The pair's index, created with count 0 if new; -1 on allocation failure. */
static int64_t pair_get(merger *m, int32_t a, int32_t b) {
    uint64_t k = pair_key(a, b), idx;
    if (oc_u64map_get(&m->pair_index, k, &idx))
        return (int64_t)idx;
    if (!grow((void **)&m->pairs, &m->cap_pairs, m->n_pairs + 1, sizeof *m->pairs))
        return -1;
    if (oc_u64map_put(&m->pair_index, k, m->n_pairs) != OC_OK)
        return -1;
    pair_info *p = &m->pairs[m->n_pairs];
    p->a = a;
    p->b = b;
    p->count = 0;
    p->head = -1;
    p->stamp = 0;
    return (int64_t)m->n_pairs++;
}

/* Adds delta occurrences (times the word's count) of (a, b); a gain also records the
 * word in the pair's list and marks the pair for the heap. */
static oc_status pair_change(merger *m, int32_t a, int32_t b, int delta, uint32_t word,
                             uint64_t step) {
    int64_t i = pair_get(m, a, b);
    if (i < 0)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    pair_info *p = &m->pairs[i];
    p->count += delta * (int64_t)m->count[word];
    if (delta <= 0)
        return OC_OK;
    if (!grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes))
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    m->nodes[m->n_nodes].word = word;
    m->nodes[m->n_nodes].next = p->head;
    p->head = (int64_t)m->n_nodes++;
    if (p->stamp != step) {
        p->stamp = step;
        if (!grow((void **)&m->touched, &m->cap_touched, m->n_touched + 1, sizeof *m->touched))
            return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
        m->touched[m->n_touched++] = (uint32_t)i;
    }
    return OC_OK;
}

/* Replaces the occurrences of (a, b) in word w by id, left to right, recording how the
 * counts of the neighbouring pairs change as tokenizers' Word::merge does. */
static oc_status merge_word(merger *m, uint32_t w, int32_t a, int32_t b, int32_t id,
                            uint64_t step) {
    int32_t *s = m->sym + m->off[w];
    uint32_t n = m->len[w], out = 0;
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (out > 0) {
                OC_TRY(pair_change(m, s[out - 1], a, -1, w, step));
                OC_TRY(pair_change(m, s[out - 1], id, 1, w, step));
            }
            if (i + 2 < n) {
                OC_TRY(pair_change(m, b, s[i + 2], -1, w, step));
                OC_TRY(pair_change(m, id, s[i + 2], 1, w, step));
            }
            s[out++] = id;
            i += 2;
        } else {
            s[out++] = s[i++];
        }
    }
    m->len[w] = out;
    return OC_OK;
}

static void merger_free(merger *m) {
    oc_free(m->sym);
    oc_free(m->off);
    oc_free(m->len);
    oc_free(m->count);
    oc_free(m->seen);
    oc_u64map_free(&m->pair_index);
    oc_free(m->pairs);
    oc_free(m->nodes);
    oc_free(m->heap);
    oc_free(m->touched);
    memset(m, 0, sizeof *m);
}

/* Words as byte-character ids, and the initial pair counts and heap. */
static oc_status merger_init(merger *m, const word_counts *wc, const int32_t byte_id[256]) {
    memset(m, 0, sizeof *m);
    size_t total = 0;
    for (size_t i = 0; i < wc->n; i++)
        total += wc->len[i];
    m->n_words = wc->n;
    m->sym = oc_calloc(total + 1, sizeof *m->sym);
    m->off = oc_calloc(wc->n + 1, sizeof *m->off);
    m->len = oc_calloc(wc->n + 1, sizeof *m->len);
    m->count = oc_calloc(wc->n + 1, sizeof *m->count);
    m->seen = oc_calloc(wc->n + 1, sizeof *m->seen);
    if (!m->sym || !m->off || !m->len || !m->count || !m->seen ||
        oc_u64map_init(&m->pair_index, 4096) != OC_OK)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < wc->n; i++) {
        m->off[i] = k;
        m->len[i] = wc->len[i];
        m->count[i] = wc->count[i];
        for (uint32_t j = 0; j < wc->len[i]; j++)
            m->sym[k++] = byte_id[(uint8_t)wc->text[i][j]];
    }
    /* step 1 marks every pair seen, so that each is pushed once below */
    for (size_t i = 0; i < m->n_words; i++) {
        const int32_t *s = m->sym + m->off[i];
        for (uint32_t j = 0; j + 1 < m->len[i]; j++)
            OC_TRY(pair_change(m, s[j], s[j + 1], 1, (uint32_t)i, 1));
    }
    for (size_t t = 0; t < m->n_touched; t++) {
        const pair_info *p = &m->pairs[m->touched[t]];
        OC_TRY(heap_push(m, p->count, p->a, p->b));
    }
    m->n_touched = 0;
    return OC_OK;
}

/* Pops the best pair with an up-to-date count into *best; 0 when none qualifies. */
static int best_pair(merger *m, uint32_t min_freq, heap_entry *best, oc_status *st) {
    *st = OC_OK;
    while (m->n_heap > 0) {
        heap_entry top = heap_pop(m);
        uint64_t idx = 0;
        oc_u64map_get(&m->pair_index, pair_key(top.a, top.b), &idx);
        const pair_info *p = &m->pairs[idx];
        if (top.count != p->count) { /* stale: counts only fall, so re-queue and retry */
            if (p->count > 0 && (*st = heap_push(m, p->count, p->a, p->b)) != OC_OK)
                return 0;
            continue;
        }
        if (top.count < 1 || top.count < (int64_t)min_freq)
            return 0;
        *best = top;
        return 1;
    }
    return 0;
}

/* Merges (a, b) into a token everywhere; the new pairs go on the heap. */
static oc_status apply_merge(merger *m, vocab_builder *vb, int32_t a, int32_t b,
                             uint64_t step) {
    const char *ta = vb->v.tokens[a], *tb = vb->v.tokens[b];
    size_t la = strlen(ta), lb = strlen(tb);
    char *joined = oc_malloc(la + lb + 1);
    if (!joined)
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    memcpy(joined, ta, la);
    memcpy(joined + la, tb, lb + 1);
    int32_t id;
    oc_status s = vocab_add(vb, joined, la + lb, &id);
    oc_free(joined);
    OC_TRY(s);
    OC_TRY(vocab_add_merge(vb, a, b));
    uint64_t idx = 0;
    oc_u64map_get(&m->pair_index, pair_key(a, b), &idx);
    int64_t head = m->pairs[idx].head;
    /* merged away: leftover heap entries of the pair are now stale and dropped */
    m->pairs[idx].count = 0;
    for (int64_t k = head; k >= 0; k = m->nodes[k].next) {
        uint32_t w = m->nodes[k].word;
        if (m->seen[w] == step)
            continue;
        m->seen[w] = step;
        OC_TRY(merge_word(m, w, a, b, id, step));
    }
    for (size_t t = 0; t < m->n_touched; t++) {
        const pair_info *p = &m->pairs[m->touched[t]];
        if (p->count > 0)
            OC_TRY(heap_push(m, p->count, p->a, p->b));
    }
    m->n_touched = 0;
    return OC_OK;
}

/* ---- the whole training ------------------------------------------------------------- */

static oc_status check_params(const oc_bpe_train_params *p) {
    if (p->special) {
        if (p->n_special > MAX_SPECIAL)
            return oc_err(OC_ERR_LIMIT, "bpe: %zu special tokens, at most %d", p->n_special,
                          MAX_SPECIAL);
        for (size_t i = 0; i < p->n_special; i++) {
            size_t n = p->special[i] ? strlen(p->special[i]) : 0;
            if (n == 0 || n > MAX_SPECIAL_LEN)
                return oc_err(OC_ERR_INVALID_ARG, "bpe: special token %zu is empty or longer "
                                                  "than %d bytes", i, MAX_SPECIAL_LEN);
            for (size_t j = 0; j < i; j++)
                if (strcmp(p->special[i], p->special[j]) == 0)
                    return oc_err(OC_ERR_INVALID_ARG, "bpe: special token \"%s\" given twice",
                                  p->special[i]);
        }
    }
    if (p->vocab_size > MAX_VOCAB)
        return oc_err(OC_ERR_LIMIT, "bpe: vocabulary size %u is over %u", p->vocab_size,
                      MAX_VOCAB);
    return OC_OK;
}

static oc_status train_words(const word_counts *wc, const oc_bpe_train_params *p,
                             oc_bpe_vocab *out) {
    vocab_builder vb;
    memset(&vb, 0, sizeof vb);
    merger m;
    memset(&m, 0, sizeof m);
    int32_t byte_id[256];
    oc_status s = vocab_start(&vb, p, byte_id);
    if (s == OC_OK && p->vocab_size < vb.v.n_tokens)
        s = oc_err(OC_ERR_INVALID_ARG,
                   "bpe: vocabulary size %u is below the %zu special tokens + 256 bytes",
                   p->vocab_size, vb.v.n_special);
    if (s == OC_OK)
        s = merger_init(&m, wc, byte_id);
    for (uint64_t step = 2; s == OC_OK && vb.v.n_tokens < p->vocab_size; step++) {
        heap_entry best;
        if (!best_pair(&m, p->min_frequency, &best, &s))
            break;
        s = apply_merge(&m, &vb, best.a, best.b, step);
    }
    merger_free(&m);
    oc_strmap_free(&vb.ids);
    if (s != OC_OK) {
        oc_bpe_vocab_free(&vb.v);
        return s;
    }
    oc_log(OC_LOG_INFO, "bpe: %zu words, %zu merges, vocabulary %zu", wc->n, vb.v.n_merges,
           vb.v.n_tokens);
    *out = vb.v;
    return OC_OK;
}

/* The special tokens to keep whole in the text (the defaults when p has none). */
static oc_status special_list(const oc_bpe_train_params *p, vocab_builder *tmp,
                              const char *const **list, size_t *n) {
    if (p->special) {
        *list = p->special;
        *n = p->n_special;
        return OC_OK;
    }
    int32_t byte_id[256];
    OC_TRY(vocab_start(tmp, p, byte_id));
    *list = (const char *const *)tmp->v.tokens;
    *n = tmp->v.n_special;
    return OC_OK;
}

oc_status oc_bpe_train_texts(const char *const *texts, const size_t *lens,
                             const char *const *names, size_t n,
                             const oc_bpe_train_params *params, oc_bpe_vocab *out) {
    oc_bpe_train_params p = params ? *params : oc_bpe_train_default_params();
    if (!out || (n && (!texts || !lens || !names)))
        return oc_err(OC_ERR_INVALID_ARG, "bpe: NULL argument");
    OC_TRY(check_params(&p));
    vocab_builder specials;
    memset(&specials, 0, sizeof specials);
    word_counts wc;
    memset(&wc, 0, sizeof wc);
    splitter sp;
    const char *const *special = NULL;
    size_t n_special = 0;
    oc_status s = splitter_init(&sp);
    if (s == OC_OK)
        s = oc_strmap_init(&wc.index, 4096);
    if (s == OC_OK)
        s = special_list(&p, &specials, &special, &n_special);
    for (size_t i = 0; i < n && s == OC_OK; i++)
        s = count_text(&sp, texts[i], lens[i], names[i], special, n_special, &wc);
    if (s == OC_OK)
        s = train_words(&wc, &p, out);
    splitter_free(&sp);
    wc_free(&wc);
    oc_strmap_free(&specials.ids);
    oc_bpe_vocab_free(&specials.v);
    return s;
}

oc_status oc_bpe_train(const char *const *files, size_t n_files,
                       const oc_bpe_train_params *params, const char *out_path) {
    oc_bpe_train_params p = params ? *params : oc_bpe_train_default_params();
    if (!out_path || (n_files && !files))
        return oc_err(OC_ERR_INVALID_ARG, "bpe: NULL argument");
    if (n_files == 0)
        return oc_err(OC_ERR_INVALID_ARG, "bpe: no corpus files");
    oc_mapped_file *maps = oc_calloc(n_files, sizeof *maps);
    const char **texts = oc_calloc(n_files, sizeof *texts);
    size_t *lens = oc_calloc(n_files, sizeof *lens);
    oc_status s = maps && texts && lens ? OC_OK : oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    uint64_t total = 0;
    for (size_t i = 0; i < n_files && s == OC_OK; i++) {
        s = oc_map_file(files[i], &maps[i]);
        if (s != OC_OK)
            break;
        texts[i] = (const char *)maps[i].data;
        lens[i] = maps[i].size;
        total += maps[i].size;
        if (total > p.max_corpus_bytes)
            s = oc_err(OC_ERR_LIMIT, "%s: the corpus is over the limit of %llu bytes",
                       files[i], (unsigned long long)p.max_corpus_bytes);
    }
    oc_bpe_vocab v;
    memset(&v, 0, sizeof v);
    if (s == OC_OK)
        s = oc_bpe_train_texts(texts, lens, files, n_files, &p, &v);
    char *json = NULL;
    size_t len = 0;
    if (s == OC_OK)
        s = oc_bpe_to_json(&v, &json, &len);
    if (s == OC_OK)
        s = oc_write_file_atomic(out_path, json, len);
    oc_free(json);
    oc_bpe_vocab_free(&v);
    for (size_t i = 0; maps && i < n_files; i++)
        oc_unmap_file(&maps[i]);
    oc_free(maps);
    oc_free(texts);
    oc_free(lens);
    return s;
}
