/* Added tokens (tokenizer.json "added_tokens"), as tokenizers' AddedVocabulary: ids
 * assigned at load, and the splitting of text on them before the model sees it —
 * leftmost-longest matches, with the single_word, lstrip and rstrip rules. Tokens with
 * normalized = false are matched on the raw text, the others on normalized text (as the
 * normalizer writes them). Matching walks a byte trie from each position. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

typedef struct {
    int32_t child;   /* first child (nodes below the root), -1 if none */
    int32_t next;    /* next sibling, -1 if none */
    int32_t token;   /* index of the token ending here, -1 if none */
    uint8_t byte;
} trie_node;

typedef struct {
    trie_node *nodes; /* node 0 is the root; its children are in root[] */
    size_t n, cap;
    int32_t root[256];
} trie;

struct oc_added_vocab {
    oc_added_token *tok;
    size_t n, cap;
    oc_strmap by_content; /* content -> index in tok */
    oc_strmap special;    /* contents of special tokens -> 1 */
    oc_u64map by_id;      /* id -> index in tok */
    trie sets[2];         /* [0]: raw-text tokens, [1]: normalized tokens */
    int has[2];
};

/* ---- trie ---------------------------------------------------------------------------- */

static oc_status trie_node_new(trie *t, uint8_t byte, int32_t *out) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        trie_node *nodes = oc_realloc(t->nodes, cap * sizeof *nodes);
        if (!nodes)
            return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory for added tokens");
        t->nodes = nodes;
        t->cap = cap;
    }
    t->nodes[t->n] = (trie_node){-1, -1, -1, byte};
    *out = (int32_t)t->n++;
    return OC_OK;
}

static oc_status trie_init(trie *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++)
        t->root[i] = -1;
    int32_t root;
    return trie_node_new(t, 0, &root);
}

/* Inserts key (n >= 1 bytes) for token index tok; a later duplicate replaces it. */
static oc_status trie_insert(trie *t, const char *key, size_t n, int32_t tok) {
    const uint8_t *k = (const uint8_t *)key;
    int32_t cur = t->root[k[0]];
    if (cur < 0) {
        OC_TRY(trie_node_new(t, k[0], &cur));
        t->root[k[0]] = cur;
    }
    for (size_t i = 1; i < n; i++) {
        int32_t c = t->nodes[cur].child;
        while (c >= 0 && t->nodes[c].byte != k[i])
            c = t->nodes[c].next;
        if (c < 0) {
            OC_TRY(trie_node_new(t, k[i], &c));
            t->nodes[c].next = t->nodes[cur].child;
            t->nodes[cur].child = c;
        }
        cur = c;
    }
    t->nodes[cur].token = tok;
    return OC_OK;
}

/* The longest key starting at s[0..n): its token index and *len, or -1. */
static int32_t trie_longest(const trie *t, const uint8_t *s, size_t n, size_t *len) {
    int32_t cur = t->root[s[0]], best = -1;
    for (size_t i = 1; cur >= 0; i++) {
        if (t->nodes[cur].token >= 0) {
            best = t->nodes[cur].token;
            *len = i;
        }
        if (i == n)
            break;
        int32_t c = t->nodes[cur].child;
        while (c >= 0 && t->nodes[c].byte != s[i])
            c = t->nodes[c].next;
        cur = c;
    }
    return best;
}

/* ---- loading -------------------------------------------------------------------------- */

void oc_added_free(oc_added_vocab *av) {
    if (!av)
        return;
    for (size_t i = 0; i < av->n; i++) {
        oc_free(av->tok[i].content);
        oc_free(av->tok[i].normalized);
    }
    oc_free(av->tok);
    oc_strmap_free(&av->by_content);
    oc_strmap_free(&av->special);
    oc_u64map_free(&av->by_id);
    oc_free(av->sets[0].nodes);
    oc_free(av->sets[1].nodes);
    oc_free(av);
}

static oc_status read_flags(const cJSON *e, const char *file, oc_added_token *t) {
    const char *w = "added token";
    int v[5];
    OC_TRY(oc_tok_bool(e, "single_word", 0, file, w, &v[0]));
    OC_TRY(oc_tok_bool(e, "lstrip", 0, file, w, &v[1]));
    OC_TRY(oc_tok_bool(e, "rstrip", 0, file, w, &v[2]));
    OC_TRY(oc_tok_bool(e, "special", 0, file, w, &v[4]));
    OC_TRY(oc_tok_bool(e, "normalized", !v[4], file, w, &v[3]));
    t->single_word = (uint8_t)v[0];
    t->lstrip = (uint8_t)v[1];
    t->rstrip = (uint8_t)v[2];
    t->is_normalized = (uint8_t)v[3];
    t->special = (uint8_t)v[4];
    return OC_OK;
}

/* AddedVocabulary::add_tokens for one token: the id is the string's existing id (added
 * or model), else the next one after the model's vocabulary size. */
static oc_status add_one(oc_added_vocab *av, const cJSON *e, const char *file,
                         const oc_bpe *model, const oc_normalizer *norm, int32_t *next_id) {
    const char *content;
    OC_TRY(oc_tok_str(e, "content", 1, file, "added token", &content));
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(e, "id");
    if (!cJSON_IsNumber(jid))
        return oc_err(OC_ERR_FORMAT, "%s: added token '%s' has no numeric \"id\"", file,
                      content);
    /* tokenizers reads the id as a u32 (and then numbers the token itself, as here):
     * anything else is not a tokenizer.json it would load */
    double idv = jid->valuedouble;
    if (!(idv >= 0 && idv <= (double)INT32_MAX) || idv != floor(idv))
        return oc_err(OC_ERR_FORMAT, "%s: added token '%s' has id %.17g; an id is an integer "
                      "from 0 to %d", file, content, idv, INT32_MAX);
    size_t len = strlen(content);
    if (len == 0)
        return OC_OK; /* tokenizers ignores empty tokens */
    oc_added_token t = {0};
    OC_TRY(read_flags(e, file, &t));

    int32_t idx = oc_strmap_get(&av->by_content, content, len);
    if (idx >= 0) { /* the same string again: new flags, same id */
        oc_added_token *old = &av->tok[idx];
        old->single_word = t.single_word, old->lstrip = t.lstrip, old->rstrip = t.rstrip;
        old->is_normalized = t.is_normalized, old->special = t.special;
        t = *old;
    } else {
        int32_t id = oc_bpe_id(model, content, len);
        if (id < 0) {
            if (*next_id >= INT32_MAX)
                return oc_err(OC_ERR_FORMAT, "%s: too many added tokens", file);
            id = (*next_id)++;
        }
        if (av->n == av->cap) {
            size_t cap = av->cap ? 2 * av->cap : 16;
            oc_added_token *tok = oc_realloc(av->tok, cap * sizeof *tok);
            if (!tok)
                return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
            av->tok = tok;
            av->cap = cap;
        }
        t.content = oc_strndup(content, len);
        if (!t.content)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
        t.len = len;
        t.id = id;
        idx = (int32_t)av->n;
        av->tok[av->n++] = t;
        OC_TRY(oc_strmap_put(&av->by_content, t.content, len, idx, NULL));
        OC_TRY(oc_u64map_put(&av->by_id, (uint64_t)id, (uint64_t)idx));
    }
    oc_added_token *dst = &av->tok[idx];
    oc_free(dst->normalized);
    dst->normalized = NULL;
    if (dst->is_normalized && norm) {
        oc_buf b = {0};
        oc_status st = oc_normalize(norm, dst->content, dst->len, &b);
        if (st == OC_OK && (b.len != dst->len || memcmp(b.data, dst->content, b.len))) {
            st = oc_buf_cstr(&b);
            if (st == OC_OK) {
                dst->normalized = b.data;
                dst->normalized_len = b.len;
                b.data = NULL;
            }
        }
        oc_buf_free(&b);
        OC_TRY(st);
    }
    if (dst->special)
        OC_TRY(oc_strmap_put(&av->special, dst->content, dst->len, 1, NULL));
    return OC_OK;
}

static oc_status build_tries(oc_added_vocab *av) {
    OC_TRY(trie_init(&av->sets[0]));
    OC_TRY(trie_init(&av->sets[1]));
    for (size_t i = 0; i < av->n; i++) {
        const oc_added_token *t = &av->tok[i];
        int set = t->is_normalized;
        const char *key = t->normalized ? t->normalized : t->content;
        size_t len = t->normalized ? t->normalized_len : t->len;
        if (len == 0)
            continue; /* normalized to nothing: cannot match */
        OC_TRY(trie_insert(&av->sets[set], key, len, (int32_t)i));
        av->has[set] = 1;
    }
    return OC_OK;
}

oc_status oc_added_load(const cJSON *arr, const char *file, const oc_bpe *model,
                        const oc_normalizer *norm, oc_added_vocab **out) {
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr))
        return oc_err(OC_ERR_FORMAT, "%s: \"added_tokens\" must be an array", file);
    oc_added_vocab *av = oc_calloc(1, sizeof *av);
    if (!av)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    int32_t next_id = (int32_t)oc_bpe_size(model);
    oc_status st = oc_strmap_init(&av->by_content, 16);
    if (st == OC_OK)
        st = oc_strmap_init(&av->special, 16);
    if (st == OC_OK)
        st = oc_u64map_init(&av->by_id, 16);
    const cJSON *e;
    if (cJSON_IsArray(arr)) {
        cJSON_ArrayForEach(e, arr) {
            if (st != OC_OK)
                break;
            if (!cJSON_IsObject(e))
                st = oc_err(OC_ERR_FORMAT, "%s: every added token must be an object", file);
            else
                st = add_one(av, e, file, model, norm, &next_id);
        }
    }
    if (st == OC_OK)
        st = build_tries(av);
    if (st != OC_OK) {
        oc_added_free(av);
        return st;
    }
    *out = av;
    return OC_OK;
}

size_t oc_added_count(const oc_added_vocab *av) { return av->n; }
const oc_added_token *oc_added_at(const oc_added_vocab *av, size_t i) { return &av->tok[i]; }

const oc_added_token *oc_added_by_id(const oc_added_vocab *av, int32_t id) {
    uint64_t idx;
    if (id < 0 || !oc_u64map_get(&av->by_id, (uint64_t)id, &idx))
        return NULL;
    return &av->tok[idx];
}

int32_t oc_added_id(const oc_added_vocab *av, const char *s, size_t n) {
    int32_t idx = oc_strmap_get(&av->by_content, s, n);
    return idx >= 0 ? av->tok[idx].id : -1;
}

int oc_added_is_special(const oc_added_vocab *av, const char *s, size_t n) {
    return oc_strmap_get(&av->special, s, n) >= 0;
}

int oc_added_has(const oc_added_vocab *av, int normalized) { return av->has[!!normalized]; }

/* ---- splitting -------------------------------------------------------------------------- */

static uint32_t last_char(const char *s, size_t n) {
    size_t k = 1;
    while (k < n && ((unsigned char)s[n - k] & 0xC0) == 0x80)
        k++;
    uint32_t cp;
    oc_utf8_next(s + n - k, k, &cp);
    return cp;
}

static uint32_t first_char(const char *s, size_t n) {
    uint32_t cp;
    oc_utf8_next(s, n, &cp);
    return cp;
}

/* Start of the whitespace run that ends at s + n (the match of \s*$). */
static size_t trailing_space_start(const char *s, size_t n) {
    while (n > 0) {
        size_t k = 1;
        while (k < n && ((unsigned char)s[n - k] & 0xC0) == 0x80)
            k++;
        uint32_t cp;
        oc_utf8_next(s + n - k, k, &cp);
        if (!oc_uni_is_space(cp))
            break;
        n -= k;
    }
    return n;
}

/* Length of the whitespace run at the start of s (the match of ^\s*). */
static size_t leading_space_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = oc_utf8_next(s + i, n - i, &cp);
        if (!oc_uni_is_space(cp))
            break;
        i += k;
    }
    return i;
}

oc_status oc_added_split(const oc_added_vocab *av, int normalized, const char *s, size_t n,
                         oc_spans *m, oc_ids *ids) {
    const trie *t = &av->sets[!!normalized];
    const uint8_t *u = (const uint8_t *)s;
    size_t pos = 0, done = 0; /* next search position; end of the last emitted span */
    while (av->has[!!normalized] && pos < n) {
        size_t len = 0;
        int32_t idx = -1;
        size_t start = pos;
        for (; start < n; start++) {
            if (t->root[u[start]] >= 0 && (idx = trie_longest(t, u + start, n - start, &len)) >= 0)
                break;
        }
        if (idx < 0)
            break;
        size_t stop = start + len;
        pos = stop; /* the search goes on after this match even if it is discarded */
        const oc_added_token *tok = &av->tok[idx];
        if (tok->single_word) {
            int start_space = start == 0 || !oc_uni_is_word(last_char(s, start));
            int stop_space = stop == n || !oc_uni_is_word(first_char(s + stop, n - stop));
            if (!start_space || !stop_space)
                continue;
        }
        if (tok->lstrip) {
            size_t ns = trailing_space_start(s, start);
            start = ns > done ? ns : done;
        }
        if (tok->rstrip)
            stop += leading_space_len(s + stop, n - stop);
        if (start < done) /* (only for tokens that begin with spaces) */
            start = done;
        if (done < start) {
            OC_TRY(oc_spans_push(m, done, start));
            OC_TRY(oc_ids_push(ids, -1));
        }
        OC_TRY(oc_spans_push(m, start, stop));
        OC_TRY(oc_ids_push(ids, tok->id));
        done = stop;
        if (pos < done)
            pos = done;
    }
    if (done < n) {
        OC_TRY(oc_spans_push(m, done, n));
        OC_TRY(oc_ids_push(ids, -1));
    }
    return OC_OK;
}
