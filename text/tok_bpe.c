/* The BPE model of tokenizer.json, as tokenizers' models/bpe: a vocabulary, ranked
 * merges, byte fallback (<0xNN> tokens), unk fusing, ignore_merges, and the optional
 * continuing_subword_prefix / end_of_word_suffix.
 *
 * A word is split into characters, then the pair with the lowest merge rank (leftmost
 * among equals) is merged until no pair has a merge: a binary heap of candidate pairs
 * over a linked list of symbols, with stale heap entries skipped when popped. Results
 * of short words are kept in a bounded cache, as tokenizers does. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

#define OC_BPE_MAX_ID (1 << 24)   /* vocabulary ids must be below this */
#define CACHE_SLOTS 16384         /* power of two */
#define CACHE_MAX_ENTRIES 10000   /* tokenizers' default capacity */
#define CACHE_MAX_WORD 256        /* longer words are not cached (tokenizers' MAX_LENGTH) */
#define CHAR_TABLE 0x800          /* direct id table for characters below U+0800 */

/* A cache entry is written once, then published by storing key (release); readers load
 * key (acquire) and need no lock. Only writers take the lock, to claim a slot. */
typedef struct {
    _Atomic(char *) key; /* word bytes followed by the ids, one allocation; NULL: empty */
    uint32_t len;
    uint32_t hash;
    const int32_t *ids;
    uint32_t n;
} cache_slot;

struct oc_bpe {
    char *strings;          /* every vocabulary string, NUL-terminated, back to back */
    const char **pieces;    /* id -> string (NULL for ids without a token), n_ids long */
    int32_t n_ids;          /* largest id + 1 */
    oc_strmap vocab;        /* string -> id; keys point into strings */
    oc_u64map merges;       /* left << 32 | right -> rank << 32 | merged id */
    char *unk_token;        /* NULL if none */
    char *prefix, *suffix;  /* continuing_subword_prefix, end_of_word_suffix; NULL if none */
    size_t prefix_len, suffix_len;
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_ids[256];  /* id of "<0xNN>", -1 if absent */
    int32_t char_ids[CHAR_TABLE]; /* id of a one-character token (no prefix/suffix) or -1 */

    pthread_mutex_t lock;   /* serializes cache inserts: a tokenizer is shared by threads */
    cache_slot *cache;
    size_t cache_count;
};

/* ---- loading ---------------------------------------------------------------------- */

void oc_bpe_free(oc_bpe *m) {
    if (!m)
        return;
    if (m->cache) {
        for (size_t i = 0; i < CACHE_SLOTS; i++)
            oc_free(atomic_load_explicit(&m->cache[i].key, memory_order_relaxed));
        oc_free(m->cache);
        pthread_mutex_destroy(&m->lock);
    }
    oc_free(m->strings);
    oc_free((void *)m->pieces);
    oc_strmap_free(&m->vocab);
    oc_u64map_free(&m->merges);
    oc_free(m->unk_token);
    oc_free(m->prefix);
    oc_free(m->suffix);
    oc_free(m);
}

static oc_status load_vocab(oc_bpe *m, const cJSON *vocab, const char *file) {
    if (!cJSON_IsObject(vocab))
        return oc_err(OC_ERR_FORMAT, "%s: model \"vocab\" must be an object", file);
    size_t total = 0, count = 0;
    int64_t max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        double d = e->valuedouble;
        if (!cJSON_IsNumber(e) || !(d >= 0 && d < OC_BPE_MAX_ID) || d != (double)(int64_t)d)
            return oc_err(OC_ERR_FORMAT,
                          "%s: vocab id of token '%s' must be an integer in [0, %d)", file,
                          e->string, OC_BPE_MAX_ID);
        if ((int64_t)d > max_id)
            max_id = (int64_t)d;
        total += strlen(e->string) + 1;
        count++;
    }
    m->n_ids = (int32_t)(max_id + 1);
    m->strings = oc_malloc(total ? total : 1);
    m->pieces = oc_calloc((size_t)m->n_ids + 1, sizeof *m->pieces);
    if (!m->strings || !m->pieces)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory for a vocabulary of %zu tokens", file,
                      count);
    OC_TRY(oc_strmap_init(&m->vocab, count));
    /* insert in batches: hash and prefetch a batch, then insert it */
    enum { B = 32 };
    const cJSON *batch[B];
    uint64_t hash[B];
    size_t len[B], nb = 0;
    char *w = m->strings;
    for (e = vocab->child;; e = e->next) {
        if (e) {
            batch[nb] = e;
            len[nb] = strlen(e->string);
            hash[nb] = oc_hash_bytes(e->string, len[nb]);
            oc_strmap_prefetch(&m->vocab, hash[nb]);
            if (++nb < B)
                continue;
        }
        for (size_t k = 0; k < nb; k++) {
            int32_t id = (int32_t)batch[k]->valuedouble, old;
            memcpy(w, batch[k]->string, len[k] + 1);
            if (m->pieces[id] && strcmp(m->pieces[id], w))
                return oc_err(OC_ERR_FORMAT, "%s: vocab tokens '%s' and '%s' have the same id %d",
                              file, m->pieces[id], w, (int)id);
            OC_TRY(oc_strmap_put_hashed(&m->vocab, w, len[k], hash[k], id, &old));
            if (old >= 0) /* a repeated key: the last one wins, as in a JSON map */
                m->pieces[old] = NULL;
            m->pieces[id] = w;
            w += len[k] + 1;
        }
        nb = 0;
        if (!e)
            break;
    }
    return OC_OK;
}

/* Splits merge i into its two tokens: "a b" or ["a", "b"]. */
static oc_status merge_parts(const cJSON *e, size_t i, const char *file, const char **a,
                             size_t *alen, const char **b, size_t *blen) {
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return oc_err(OC_ERR_FORMAT, "%s: merge %zu ('%s') is not two tokens separated by "
                          "one space", file, i, s);
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = strlen(sp + 1);
        return OC_OK;
    }
    if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
        cJSON_IsString(cJSON_GetArrayItem(e, 0)) && cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
        *a = cJSON_GetArrayItem(e, 0)->valuestring;
        *b = cJSON_GetArrayItem(e, 1)->valuestring;
        *alen = strlen(*a);
        *blen = strlen(*b);
        return OC_OK;
    }
    return oc_err(OC_ERR_FORMAT, "%s: merge %zu must be a string \"a b\" or a pair [\"a\", \"b\"]",
                  file, i);
}

/* Merges are resolved in batches: each stage hashes and prefetches a whole batch before
 * looking it up, so that the cache misses on the big tables overlap. */
#define MERGE_BATCH 32

typedef struct {
    const char *a, *b;
    size_t alen, blen, index;  /* index: position in the merges array, for errors */
    uint64_t ha, hb, hj;
    size_t joff, jlen;         /* the merged string in the batch buffer */
    int32_t ia, ib, id;
} pending_merge;

static oc_status merge_error(const oc_bpe *m, const pending_merge *p, const oc_buf *joined,
                             const char *file) {
    if (p->ia < 0 || p->ib < 0)
        return oc_err(OC_ERR_FORMAT, "%s: merge %zu references unknown token '%.*s'", file,
                      p->index, (int)(p->ia < 0 ? p->alen : p->blen), p->ia < 0 ? p->a : p->b);
    if (p->blen < m->prefix_len)
        return oc_err(OC_ERR_FORMAT, "%s: merge %zu: token '%.*s' is shorter than the "
                      "continuing_subword_prefix", file, p->index, (int)p->blen, p->b);
    return oc_err(OC_ERR_FORMAT, "%s: merge %zu makes '%.*s', which is not in the vocab", file,
                  p->index, (int)p->jlen, joined->data + p->joff);
}

static oc_status resolve_batch(oc_bpe *m, pending_merge *pm, size_t n, size_t *rank,
                               oc_buf *joined, const char *file) {
    for (size_t k = 0; k < n; k++) {
        pm[k].ha = oc_hash_bytes(pm[k].a, pm[k].alen);
        pm[k].hb = oc_hash_bytes(pm[k].b, pm[k].blen);
        oc_strmap_prefetch(&m->vocab, pm[k].ha);
        oc_strmap_prefetch(&m->vocab, pm[k].hb);
    }
    joined->len = 0;
    for (size_t k = 0; k < n; k++) {
        pending_merge *p = &pm[k];
        p->ia = oc_strmap_get_hashed(&m->vocab, p->a, p->alen, p->ha);
        p->ib = oc_strmap_get_hashed(&m->vocab, p->b, p->blen, p->hb);
        p->id = -1;
        p->joff = joined->len;
        if (p->ia >= 0 && p->ib >= 0 && p->blen >= m->prefix_len) {
            OC_TRY(oc_buf_append(joined, p->a, p->alen));
            OC_TRY(oc_buf_append(joined, p->b + m->prefix_len, p->blen - m->prefix_len));
        }
        p->jlen = joined->len - p->joff;
    }
    for (size_t k = 0; k < n; k++) {
        if (!pm[k].jlen)
            continue; /* nothing was joined: an error below */
        pm[k].hj = oc_hash_bytes(joined->data + pm[k].joff, pm[k].jlen);
        oc_strmap_prefetch(&m->vocab, pm[k].hj);
    }
    for (size_t k = 0; k < n; k++) {
        pending_merge *p = &pm[k];
        if (p->jlen)
            p->id = oc_strmap_get_hashed(&m->vocab, joined->data + p->joff, p->jlen, p->hj);
        if (p->id < 0)
            return merge_error(m, p, joined, file);
        oc_u64map_prefetch(&m->merges, (uint64_t)p->ia << 32 | (uint32_t)p->ib);
    }
    for (size_t k = 0; k < n; k++) {
        /* a repeated pair takes the later rank, as the HashMap tokenizers builds */
        uint64_t key = (uint64_t)pm[k].ia << 32 | (uint32_t)pm[k].ib;
        OC_TRY(oc_u64map_put(&m->merges, key, (uint64_t)(*rank)++ << 32 | (uint32_t)pm[k].id));
    }
    return OC_OK;
}

static oc_status load_merges(oc_bpe *m, const cJSON *merges, const char *file) {
    if (!cJSON_IsArray(merges))
        return oc_err(OC_ERR_FORMAT, "%s: model \"merges\" must be an array", file);
    OC_TRY(oc_u64map_init(&m->merges, (size_t)cJSON_GetArraySize(merges)));
    pending_merge pm[MERGE_BATCH];
    oc_buf joined = {0};
    oc_status st = OC_OK;
    size_t i = 0, rank = 0, n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, merges) {
        size_t index = i++;
        if (cJSON_IsString(e) && !strncmp(e->valuestring, "#version", 8))
            continue; /* merges.txt header lines take no rank */
        pending_merge *p = &pm[n];
        p->index = index;
        if ((st = merge_parts(e, index, file, &p->a, &p->alen, &p->b, &p->blen)) != OC_OK) {
            oc_status earlier = n ? resolve_batch(m, pm, n, &rank, &joined, file) : OC_OK;
            st = earlier != OC_OK ? earlier : st; /* report the first bad merge */
            break;
        }
        if (++n == MERGE_BATCH) {
            if ((st = resolve_batch(m, pm, n, &rank, &joined, file)) != OC_OK)
                break;
            n = 0;
        }
    }
    if (st == OC_OK && n)
        st = resolve_batch(m, pm, n, &rank, &joined, file);
    oc_buf_free(&joined);
    return st;
}

static oc_status copy_opt_str(const cJSON *model, const char *key, const char *file,
                              char **out, size_t *len) {
    const char *s;
    OC_TRY(oc_tok_str(model, key, 0, file, "model", &s));
    if (!s)
        return OC_OK;
    *len = strlen(s);
    *out = oc_strndup(s, *len);
    return *out ? OC_OK : oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
}

static oc_status load_options(oc_bpe *m, const cJSON *model, const char *file) {
    size_t unk_len = 0;
    OC_TRY(copy_opt_str(model, "unk_token", file, &m->unk_token, &unk_len));
    OC_TRY(copy_opt_str(model, "continuing_subword_prefix", file, &m->prefix, &m->prefix_len));
    OC_TRY(copy_opt_str(model, "end_of_word_suffix", file, &m->suffix, &m->suffix_len));
    /* an empty prefix or suffix (Qwen writes "") changes nothing */
    if (m->prefix && !m->prefix_len) {
        oc_free(m->prefix);
        m->prefix = NULL;
    }
    if (m->suffix && !m->suffix_len) {
        oc_free(m->suffix);
        m->suffix = NULL;
    }
    OC_TRY(oc_tok_bool(model, "fuse_unk", 0, file, "model", &m->fuse_unk));
    OC_TRY(oc_tok_bool(model, "byte_fallback", 0, file, "model", &m->byte_fallback));
    OC_TRY(oc_tok_bool(model, "ignore_merges", 0, file, "model", &m->ignore_merges));
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout)) {
        if (!cJSON_IsNumber(dropout) || dropout->valuedouble < 0 || dropout->valuedouble > 1)
            return oc_err(OC_ERR_FORMAT, "%s: model \"dropout\" must be in [0, 1]", file);
        if (dropout->valuedouble > 0) /* random merges cannot match a reference */
            return oc_err(OC_ERR_UNSUPPORTED, "%s: BPE dropout %g is not supported", file,
                          dropout->valuedouble);
    }
    return OC_OK;
}

/* Ids of the byte tokens and of one-character tokens, for the fast paths. */
static void build_tables(oc_bpe *m) {
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = oc_strmap_get(&m->vocab, name, 6);
    }
    for (size_t i = 0; i < CHAR_TABLE; i++)
        m->char_ids[i] = -1;
    if (m->prefix_len || m->suffix_len)
        return; /* lookups then add the prefix/suffix: no shortcut */
    for (int32_t id = 0; id < m->n_ids; id++) {
        const char *s = m->pieces[id];
        if (!s || !s[0])
            continue;
        size_t len = strlen(s);
        uint32_t cp;
        if (oc_utf8_next(s, len, &cp) == len && cp < CHAR_TABLE &&
            oc_strmap_get(&m->vocab, s, len) == id)
            m->char_ids[cp] = id;
    }
}

oc_status oc_bpe_load(const cJSON *model, const char *file, oc_bpe **out) {
    if (!cJSON_IsObject(model))
        return oc_err(OC_ERR_FORMAT, "%s: \"model\" must be an object", file);
    const char *type;
    OC_TRY(oc_tok_str(model, "type", 0, file, "model", &type));
    if (!type && !cJSON_GetObjectItemCaseSensitive(model, "merges"))
        return oc_err(OC_ERR_FORMAT, "%s: model has no \"type\"", file);
    if (type && strcmp(type, "BPE"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported model type '%s' (only BPE)", file,
                      type);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!vocab || !merges)
        return oc_err(OC_ERR_FORMAT, "%s: BPE model needs \"vocab\" and \"merges\"", file);

    oc_bpe *m = oc_calloc(1, sizeof *m);
    if (!m)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    oc_status st = load_options(m, model, file);
    if (st == OC_OK)
        st = load_vocab(m, vocab, file);
    if (st == OC_OK)
        st = load_merges(m, merges, file);
    if (st == OC_OK) {
        m->cache = oc_calloc(CACHE_SLOTS, sizeof *m->cache);
        if (!m->cache)
            st = oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
        else if (pthread_mutex_init(&m->lock, NULL) != 0) {
            oc_free(m->cache);
            m->cache = NULL;
            st = oc_err(OC_ERR_INTERNAL, "%s: cannot create a mutex", file);
        }
    }
    if (st != OC_OK) {
        oc_bpe_free(m);
        return st;
    }
    build_tables(m);
    *out = m;
    return OC_OK;
}

int32_t oc_bpe_id(const oc_bpe *m, const char *s, size_t n) {
    return oc_strmap_get(&m->vocab, s, n);
}

const char *oc_bpe_piece(const oc_bpe *m, int32_t id) {
    return id >= 0 && id < m->n_ids ? m->pieces[id] : NULL;
}

size_t oc_bpe_size(const oc_bpe *m) { return m->vocab.count; }
int32_t oc_bpe_max_id(const oc_bpe *m) { return m->n_ids - 1; }

/* ---- the cache ------------------------------------------------------------------------ */

/* The slot holding the word, or the empty slot where it would go. */
static size_t cache_find(const oc_bpe *m, const char *s, uint32_t n, uint32_t hash) {
    size_t i = hash & (CACHE_SLOTS - 1);
    for (;;) {
        cache_slot *c = &m->cache[i];
        const char *key = atomic_load_explicit(&c->key, memory_order_acquire);
        if (!key || (c->hash == hash && c->len == n && !memcmp(key, s, n)))
            return i;
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

/* 1 (and the ids appended to out) on a hit. */
static int cache_get(const oc_bpe *m, const char *s, size_t n, uint32_t hash, oc_ids *out,
                     oc_status *st) {
    cache_slot *c = &m->cache[cache_find(m, s, (uint32_t)n, hash)];
    if (!atomic_load_explicit(&c->key, memory_order_acquire))
        return 0;
    *st = oc_ids_append(out, c->ids, c->n);
    return 1;
}

/* Remembers a result; silently does nothing when full or out of memory. */
static void cache_put(oc_bpe *m, const char *s, size_t n, uint32_t hash, const int32_t *ids,
                      size_t n_ids) {
    size_t off = (n + 3) & ~(size_t)3; /* the ids follow the word, 4-byte aligned */
    char *mem = oc_malloc(off + n_ids * sizeof *ids + 1);
    if (!mem)
        return;
    memcpy(mem, s, n);
    if (n_ids)
        memcpy(mem + off, ids, n_ids * sizeof *ids);
    pthread_mutex_lock(&m->lock);
    cache_slot *c = &m->cache[cache_find(m, s, (uint32_t)n, hash)];
    if (atomic_load_explicit(&c->key, memory_order_relaxed) ||
        m->cache_count >= CACHE_MAX_ENTRIES) {
        oc_free(mem);
    } else {
        c->len = (uint32_t)n;
        c->hash = hash;
        c->ids = (const int32_t *)(void *)(mem + off);
        c->n = (uint32_t)n_ids;
        atomic_store_explicit(&c->key, mem, memory_order_release);
        m->cache_count++;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- merging ------------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    int32_t prev, next; /* indices into the symbol array, -1 at the ends */
    uint32_t len;       /* bytes covered; 0 once merged into the symbol on its left */
} symbol;

typedef struct {
    uint32_t rank, pos;
    int32_t id; /* the merged token */
} cand;

static int cand_less(const cand *a, const cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best))
            s = l, best = &h[l];
        if (r < *n && cand_less(&h[r], best))
            s = r;
        if (s == i)
            break;
        h[i] = h[s];
        i = s;
    }
    if (*n)
        h[i] = last;
    return top;
}

static int find_merge(const oc_bpe *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    uint64_t v;
    if (!oc_u64map_get(&m->merges, (uint64_t)a << 32 | (uint32_t)b, &v))
        return 0;
    *rank = (uint32_t)(v >> 32);
    *id = (int32_t)(uint32_t)v;
    return 1;
}

typedef struct {
    symbol *sym;
    size_t n, cap;
} word;

static oc_status word_add(word *w, int32_t id, size_t len) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        symbol *s = oc_realloc(w->sym, cap * sizeof *s);
        if (!s)
            return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory");
        w->sym = s;
        w->cap = cap;
    }
    int32_t i = (int32_t)w->n++;
    w->sym[i] = (symbol){id, i - 1, -1, (uint32_t)len};
    if (i > 0)
        w->sym[i - 1].next = i;
    return OC_OK;
}

/* The id of one character of the word (with the prefix/suffix it takes), or -1. */
static int32_t char_id(const oc_bpe *m, const char *c, size_t k, int is_first, int is_last,
                       oc_buf *tmp, const char **str, size_t *len, oc_status *st) {
    *str = c;
    *len = k;
    if ((is_first || !m->prefix) && (!is_last || !m->suffix)) {
        uint32_t cp;
        oc_utf8_next(c, k, &cp);
        if (cp < CHAR_TABLE && !m->prefix_len && !m->suffix_len)
            return m->char_ids[cp];
        return oc_strmap_get(&m->vocab, c, k);
    }
    tmp->len = 0;
    if (!is_first && m->prefix)
        *st = oc_buf_append(tmp, m->prefix, m->prefix_len);
    if (*st == OC_OK)
        *st = oc_buf_append(tmp, c, k);
    if (*st == OC_OK && is_last && m->suffix)
        *st = oc_buf_append(tmp, m->suffix, m->suffix_len);
    if (*st != OC_OK)
        return -1;
    *str = tmp->data;
    *len = tmp->len;
    return oc_strmap_get(&m->vocab, tmp->data, tmp->len);
}

/* BPE::merge_word: characters to initial symbols (with byte fallback and unk). */
static oc_status split_word(const oc_bpe *m, const char *s, size_t n, word *w) {
    oc_buf tmp = {0};
    oc_status st = OC_OK;
    int32_t unk_id = -1;
    size_t unk_len = 0; /* pending unknown run (unk_id >= 0) */
    for (size_t i = 0; st == OC_OK && i < n;) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        const char *str;
        size_t len;
        int32_t id = char_id(m, s + i, k, i == 0, i + k == n, &tmp, &str, &len, &st);
        i += k;
        if (st != OC_OK)
            break;
        if (id >= 0) {
            if (unk_id >= 0 && (st = word_add(w, unk_id, unk_len)) != OC_OK)
                break;
            unk_id = -1;
            st = word_add(w, id, k);
            continue;
        }
        if (m->byte_fallback) {
            int all = 1;
            for (size_t b = 0; b < len; b++)
                all &= m->byte_ids[(uint8_t)str[b]] >= 0;
            if (all) {
                /* (a pending unk stays pending, as in tokenizers) */
                for (size_t b = 0; st == OC_OK && b < len; b++)
                    st = word_add(w, m->byte_ids[(uint8_t)str[b]], 1);
                continue;
            }
        }
        if (!m->unk_token)
            continue; /* no unk token: the character is dropped */
        if (unk_id >= 0 && m->fuse_unk) {
            unk_len += k;
            continue;
        }
        if (unk_id >= 0 && (st = word_add(w, unk_id, unk_len)) != OC_OK)
            break;
        unk_id = oc_strmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
        if (unk_id < 0)
            st = oc_err(OC_ERR_FORMAT, "tokenizer: unk_token '%s' is not in the vocabulary",
                        m->unk_token);
        unk_len = k;
    }
    if (st == OC_OK && unk_id >= 0)
        st = word_add(w, unk_id, unk_len);
    oc_buf_free(&tmp);
    return st;
}

/* Word::merge_all. */
static oc_status merge_all(const oc_bpe *m, word *w) {
    if (w->n < 2)
        return OC_OK;
    size_t cap = w->n, nh = 0;
    cand *heap = oc_malloc(cap * sizeof *heap);
    if (!heap)
        return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory");
    symbol *sym = w->sym;
    for (size_t i = 0; i + 1 < w->n; i++) {
        uint32_t rank;
        int32_t id;
        if (find_merge(m, sym[i].id, sym[i + 1].id, &rank, &id))
            heap_push(heap, &nh, (cand){rank, (uint32_t)i, id});
    }
    while (nh > 0) {
        cand top = heap_pop(heap, &nh);
        symbol *cur = &sym[top.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        symbol right = sym[cur->next];
        uint32_t rank;
        int32_t id;
        if (!find_merge(m, cur->id, right.id, &rank, &id) || id != top.id)
            continue; /* stale: one side changed since this entry was pushed */
        int32_t right_pos = cur->next;
        cur->id = top.id;
        cur->len += right.len;
        cur->next = right.next;
        sym[right_pos].len = 0;
        if (right.next >= 0)
            sym[right.next].prev = (int32_t)top.pos;
        /* at most two new candidates per merge, and merges shrink the word: the heap
         * never holds more than 2n entries in total over the loop's pops */
        if (nh + 2 > cap) {
            cand *h2 = oc_realloc(heap, 2 * cap * sizeof *heap);
            if (!h2) {
                oc_free(heap);
                return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory");
            }
            heap = h2;
            cap *= 2;
        }
        if (cur->prev >= 0 && find_merge(m, sym[cur->prev].id, cur->id, &rank, &id))
            heap_push(heap, &nh, (cand){rank, (uint32_t)cur->prev, id});
        if (cur->next >= 0 && find_merge(m, cur->id, sym[cur->next].id, &rank, &id))
            heap_push(heap, &nh, (cand){rank, top.pos, id});
    }
    oc_free(heap);
    return OC_OK;
}

oc_status oc_bpe_encode(const oc_bpe *cm, const char *s, size_t n, oc_ids *out) {
    oc_bpe *m = (oc_bpe *)cm; /* only the cache is written, see cache_slot */
    if (n == 0)
        return OC_OK;
    if (m->ignore_merges) {
        int32_t id = oc_strmap_get(&m->vocab, s, n);
        if (id >= 0)
            return oc_ids_push(out, id);
    }
    uint32_t hash = 0;
    int cacheable = n < CACHE_MAX_WORD;
    if (cacheable) {
        oc_status st = OC_OK;
        hash = (uint32_t)oc_hash_bytes(s, n);
        if (cache_get(m, s, n, hash, out, &st))
            return st;
    }
    word w = {0};
    oc_status st = split_word(m, s, n, &w);
    if (st == OC_OK)
        st = merge_all(m, &w);
    size_t first = out->n;
    for (int32_t i = 0; st == OC_OK && w.n > 0 && i >= 0; i = w.sym[i].next)
        st = oc_ids_push(out, w.sym[i].id);
    if (st == OC_OK && cacheable) /* (a word of dropped characters has no ids) */
        cache_put(m, s, n, hash, out->n > first ? out->v + first : NULL, out->n - first);
    oc_free(w.sym);
    return st;
}
