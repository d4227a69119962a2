/* The tokenizer of a GGUF text model (tokenizer.ggml.*), built as the tokenizer.json that
 * Hugging Face's converters make for the same vocabulary, so that the tokenizer ocellus
 * runs is the one it builds from tokenizer.json (tokenizer.c):
 *  - "gpt2" (byte-level BPE: SmolLM, SmolVLM): the vocabulary, tokenizer.ggml.merges as
 *    they are, a ByteLevel pre-tokenizer after the splits tokenizer.ggml.pre names, the
 *    ByteLevel decoder;
 *  - "llama" (SentencePiece BPE: Llama 2, Vicuna, LLaVA-1.5): the merges are rebuilt
 *    from the scores as transformers' SentencePieceExtractor builds them (every split of a
 *    piece into two pieces, ordered by the piece's score, then its id, then the ids of
 *    the halves), byte fallback, "▁" for spaces (with a prefix when
 *    tokenizer.ggml.add_space_prefix, the default) and the matching decoder.
 * Token types: CONTROL and UNKNOWN tokens become special added tokens, USER_DEFINED ones
 * plain added tokens, UNUSED ones (padding to the embedding's rows) are left out. BOS and
 * EOS are added as tokenizer.ggml.add_bos_token / add_eos_token say (llama's default:
 * BOS only; gpt2's: neither). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "gguf.h"
#include "hashmap.h"
#include "tok_internal.h"
#include "tokenizer.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

#define MAX_VOCAB (1 << 24)

typedef struct {
    const oc_gguf *g;
    const char *file;
    const oc_gguf_kv *tokens, *types, *scores;
    size_t n;
    char **text;       /* n NUL-terminated copies (NULL for unused tokens) */
    int32_t *type;     /* n */
} vocab;

static void vocab_free(vocab *v) {
    for (size_t i = 0; v->text && i < v->n; i++)
        oc_free(v->text[i]);
    oc_free(v->text);
    oc_free(v->type);
}

static oc_status nomem(const vocab *v) {
    return oc_err(OC_ERR_NOMEM, "%s: out of memory building the tokenizer", v->file);
}

static oc_status read_vocab(const oc_gguf *g, vocab *v) {
    v->g = g;
    v->file = oc_gguf_path(g);
    OC_TRY(oc_gguf_get_array(g, "tokenizer.ggml.tokens", 1, OC_GGUF_STRING, &v->tokens));
    OC_TRY(oc_gguf_get_array(g, "tokenizer.ggml.token_type", 0, OC_GGUF_I64, &v->types));
    OC_TRY(oc_gguf_get_array(g, "tokenizer.ggml.scores", 0, OC_GGUF_F64, &v->scores));
    if (v->tokens->n == 0 || v->tokens->n > MAX_VOCAB)
        return oc_err(OC_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens (1 to %d)",
                      v->file, (unsigned long long)v->tokens->n, MAX_VOCAB);
    v->n = (size_t)v->tokens->n;
    if (v->types && v->types->n != v->n)
        return oc_err(OC_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %zu "
                      "tokens", v->file, (unsigned long long)v->types->n, v->n);
    if (v->scores && v->scores->n != v->n)
        return oc_err(OC_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries for %zu "
                      "tokens", v->file, (unsigned long long)v->scores->n, v->n);
    v->text = oc_calloc(v->n, sizeof *v->text);
    v->type = oc_calloc(v->n, sizeof *v->type);
    if (!v->text || !v->type)
        return nomem(v);
    for (size_t i = 0; i < v->n; i++) {
        int64_t t = v->types ? oc_gguf_arr_int(v->types, i) : TT_NORMAL;
        if (t < TT_NORMAL || t > TT_BYTE)
            return oc_err(OC_ERR_FORMAT, "%s: token %zu has type %lld (1 to 6)", v->file, i,
                          (long long)t);
        v->type[i] = (int32_t)t;
        if (t == TT_UNUSED)
            continue;
        size_t len;
        const char *s = oc_gguf_arr_str(v->tokens, i, &len);
        if (len == 0 || memchr(s, 0, len) || oc_utf8_check(s, len) < len)
            return oc_err(OC_ERR_FORMAT, "%s: token %zu is %s", v->file, i,
                          len == 0 ? "empty" : "not valid UTF-8 text");
        if (!(v->text[i] = oc_strndup(s, len)))
            return nomem(v);
    }
    return OC_OK;
}

/* ---- the JSON ------------------------------------------------------------------------ */

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "type", type)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* {"type": "Replace", "pattern": {"String": from}, "content": to} */
static cJSON *replace(const char *from, const char *to) {
    cJSON *o = obj_type("Replace"), *p = cJSON_CreateObject();
    if (!o || !p || !cJSON_AddStringToObject(p, "String", from) ||
        !cJSON_AddItemToObject(o, "pattern", p) || !cJSON_AddStringToObject(o, "content", to)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *sequence(const char *key, cJSON *const *items, int n) {
    cJSON *o = obj_type("Sequence"), *a = cJSON_CreateArray();
    int ok = o && a && cJSON_AddItemToObject(o, key, a);
    if (!ok)
        cJSON_Delete(a);
    for (int i = 0; i < n; i++) {
        if (ok && items[i])
            ok = cJSON_AddItemToArray(a, items[i]);
        else
            cJSON_Delete(items[i]);
        ok = ok && items[i];
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *byte_level(int use_regex) {
    cJSON *o = obj_type("ByteLevel");
    if (o && (!cJSON_AddBoolToObject(o, "add_prefix_space", 0) ||
              !cJSON_AddBoolToObject(o, "trim_offsets", 1) ||
              !cJSON_AddBoolToObject(o, "use_regex", use_regex))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The pre-tokenizer of a byte-level vocabulary, by llama.cpp's tokenizer.ggml.pre. */
static oc_status gpt2_pretokenizer(const vocab *v, const char *pre, cJSON **out) {
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2")) {
        *out = byte_level(1);
    } else if (!strcmp(pre, "smollm")) { /* Digits(individual_digits) + ByteLevel */
        cJSON *d = obj_type("Digits");
        if (d && !cJSON_AddBoolToObject(d, "individual_digits", 1)) {
            cJSON_Delete(d);
            d = NULL;
        }
        cJSON *items[2] = {d, byte_level(1)};
        *out = sequence("pretokenizers", items, 2);
    } else {
        return oc_err(OC_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre \"%s\" is not supported "
                      "(gpt-2, smollm, default)", v->file, pre);
    }
    return *out ? OC_OK : nomem(v);
}

static int add_template_item(cJSON *arr, const char *kind, const char *id, int type_id) {
    cJSON *item = cJSON_CreateObject();
    if (!item || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return 0;
    }
    cJSON *in = cJSON_AddObjectToObject(item, kind);
    return in && cJSON_AddStringToObject(in, "id", id) &&
           cJSON_AddNumberToObject(in, "type_id", type_id);
}

/* "TemplateProcessing" adding BOS and/or EOS (-1: not added) around each sequence. */
static cJSON *template_post(const vocab *v, int32_t bos, int32_t eos) {
    cJSON *o = obj_type("TemplateProcessing");
    cJSON *arrs[2] = {cJSON_AddArrayToObject(o, "single"), cJSON_AddArrayToObject(o, "pair")};
    cJSON *specials = cJSON_AddObjectToObject(o, "special_tokens");
    int ok = arrs[0] && arrs[1] && specials;
    for (int k = 0; ok && k < 2; k++)
        for (int part = 0; ok && part <= k; part++) {
            if (bos >= 0)
                ok = add_template_item(arrs[k], "SpecialToken", v->text[bos], part);
            ok = ok && add_template_item(arrs[k], "Sequence", part ? "B" : "A", part);
            if (ok && eos >= 0)
                ok = add_template_item(arrs[k], "SpecialToken", v->text[eos], part);
        }
    int32_t ids[2] = {bos, eos};
    for (int e = 0; ok && e < 2; e++) {
        if (ids[e] < 0 || cJSON_GetObjectItemCaseSensitive(specials, v->text[ids[e]]))
            continue;
        cJSON *st = cJSON_AddObjectToObject(specials, v->text[ids[e]]);
        cJSON *a = st ? cJSON_AddArrayToObject(st, "ids") : NULL;
        cJSON *t = st ? cJSON_AddArrayToObject(st, "tokens") : NULL;
        ok = a && t && cJSON_AddStringToObject(st, "id", v->text[ids[e]]) &&
             cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[e])) &&
             cJSON_AddItemToArray(t, cJSON_CreateString(v->text[ids[e]]));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A special-token id from tokenizer.ggml.KEY_token_id, -1 when absent; one that names no
 * token is an error. */
static oc_status special_id(const vocab *v, const char *key, int32_t *out) {
    char k[64];
    snprintf(k, sizeof k, "tokenizer.ggml.%s_token_id", key);
    int64_t id;
    OC_TRY(oc_gguf_get_int(v->g, k, 0, -1, -1, (int64_t)v->n - 1, &id));
    if (id >= 0 && !v->text[id])
        return oc_err(OC_ERR_FORMAT, "%s: %s %lld is an unused token", v->file, k,
                      (long long)id);
    *out = (int32_t)id;
    return OC_OK;
}

static oc_status add_post(const vocab *v, cJSON *root, int def_bos) {
    int add_bos, add_eos;
    OC_TRY(oc_gguf_get_bool(v->g, "tokenizer.ggml.add_bos_token", def_bos, &add_bos));
    OC_TRY(oc_gguf_get_bool(v->g, "tokenizer.ggml.add_eos_token", 0, &add_eos));
    int32_t bos, eos;
    OC_TRY(special_id(v, "bos", &bos));
    OC_TRY(special_id(v, "eos", &eos));
    bos = add_bos ? bos : -1;
    eos = add_eos ? eos : -1;
    cJSON *post = bos >= 0 || eos >= 0 ? template_post(v, bos, eos) : cJSON_CreateNull();
    if (!post || !cJSON_AddItemToObject(root, "post_processor", post)) {
        cJSON_Delete(post);
        return nomem(v);
    }
    return OC_OK;
}

/* model.vocab (every token but the unused ones; a repeated text keeps its first id, as a
 * JSON object can hold it once) and added_tokens. */
static oc_status add_vocab(const vocab *v, cJSON *model, cJSON *root) {
    cJSON *voc = cJSON_AddObjectToObject(model, "vocab");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    if (!voc || !added)
        return nomem(v);
    oc_strmap seen = {0};
    OC_TRY(oc_strmap_init(&seen, v->n));
    oc_status s = OC_OK;
    for (size_t i = 0; s == OC_OK && i < v->n; i++) {
        if (!v->text[i])
            continue;
        int32_t old;
        s = oc_strmap_put(&seen, v->text[i], strlen(v->text[i]), (int32_t)i, &old);
        if (s == OC_OK && old >= 0) /* put overwrote: restore the first id */
            s = oc_strmap_put(&seen, v->text[i], strlen(v->text[i]), old, NULL);
        else if (s == OC_OK && !cJSON_AddNumberToObject(voc, v->text[i], (double)i))
            s = nomem(v);
        int t = v->type[i];
        if (s != OC_OK || (t != TT_CONTROL && t != TT_UNKNOWN && t != TT_USER))
            continue;
        cJSON *a = cJSON_CreateObject();
        if (!a || !cJSON_AddItemToArray(added, a) ||
            !cJSON_AddNumberToObject(a, "id", (double)i) ||
            !cJSON_AddStringToObject(a, "content", v->text[i]) ||
            !cJSON_AddBoolToObject(a, "single_word", 0) || !cJSON_AddBoolToObject(a, "lstrip", 0) ||
            !cJSON_AddBoolToObject(a, "rstrip", 0) ||
            !cJSON_AddBoolToObject(a, "normalized", t == TT_USER) ||
            !cJSON_AddBoolToObject(a, "special", t != TT_USER))
            s = nomem(v);
    }
    oc_strmap_free(&seen);
    return s;
}

/* ---- gpt2: merges as stored ---------------------------------------------------------------- */

static oc_status gpt2_merges(const vocab *v, cJSON *model) {
    const oc_gguf_kv *m;
    OC_TRY(oc_gguf_get_array(v->g, "tokenizer.ggml.merges", 1, OC_GGUF_STRING, &m));
    cJSON *arr = cJSON_AddArrayToObject(model, "merges");
    if (!arr)
        return nomem(v);
    for (uint64_t i = 0; i < m->n; i++) {
        size_t len;
        const char *s = oc_gguf_arr_str(m, i, &len);
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp || memchr(s, 0, len) || oc_utf8_check(s, len) < len)
            return oc_err(OC_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not \"left "
                          "right\" text", v->file, (unsigned long long)i);
        char *a = oc_strndup(s, (size_t)(sp - s)), *b = oc_strndup(sp + 1, len - (size_t)(sp - s) - 1);
        cJSON *pair = cJSON_CreateArray();
        int ok = a && b && pair && cJSON_AddItemToArray(arr, pair) &&
                 cJSON_AddItemToArray(pair, cJSON_CreateString(a)) &&
                 cJSON_AddItemToArray(pair, cJSON_CreateString(b));
        if (!ok && pair && !pair->prev)
            cJSON_Delete(pair);
        oc_free(a);
        oc_free(b);
        if (!ok)
            return nomem(v);
    }
    return OC_OK;
}

static oc_status build_gpt2(const vocab *v, cJSON *root) {
    const char *pre;
    OC_TRY(oc_gguf_get_str(v->g, "tokenizer.ggml.pre", 0, &pre));
    cJSON *pt = NULL;
    OC_TRY(gpt2_pretokenizer(v, pre, &pt));
    if (!cJSON_AddItemToObject(root, "pre_tokenizer", pt)) {
        cJSON_Delete(pt);
        return nomem(v);
    }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON *dec = byte_level(1);
    if (!model || !dec || !cJSON_AddItemToObject(root, "decoder", dec) ||
        !cJSON_AddNullToObject(root, "normalizer") ||
        !cJSON_AddStringToObject(model, "type", "BPE") ||
        !cJSON_AddBoolToObject(model, "byte_fallback", 0) ||
        !cJSON_AddBoolToObject(model, "fuse_unk", 0)) {
        if (dec && !dec->prev)
            cJSON_Delete(dec);
        return nomem(v);
    }
    OC_TRY(add_vocab(v, model, root));
    OC_TRY(gpt2_merges(v, model));
    return add_post(v, root, 0);
}

/* ---- llama (SentencePiece): merges from the scores ----------------------------------------- */

typedef struct {
    float score;
    int32_t id, left, right;
} spm_merge;

static int cmp_spm(const void *pa, const void *pb) {
    const spm_merge *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    if (a->left != b->left)
        return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

static oc_status spm_merges(const vocab *v, cJSON *model) {
    if (!v->scores)
        return oc_err(OC_ERR_FORMAT, "%s: a \"llama\" tokenizer needs tokenizer.ggml.scores",
                      v->file);
    oc_strmap ids = {0};
    OC_TRY(oc_strmap_init(&ids, v->n));
    oc_status s = OC_OK;
    for (size_t i = v->n; s == OC_OK && i-- > 0;) /* the first id of a text wins */
        if (v->text[i])
            s = oc_strmap_put(&ids, v->text[i], strlen(v->text[i]), (int32_t)i, NULL);
    spm_merge *mg = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; s == OC_OK && i < v->n; i++) {
        if (v->type[i] != TT_NORMAL || !v->text[i])
            continue;
        double sc = oc_gguf_arr_float(v->scores, i);
        if (!(sc == sc)) {
            s = oc_err(OC_ERR_FORMAT, "%s: token %zu has score NaN", v->file, i);
            break;
        }
        const char *t = v->text[i];
        size_t len = strlen(t);
        for (size_t k = 1; s == OC_OK && k < len; k++) {
            if (((unsigned char)t[k] & 0xC0) == 0x80) /* inside a code point */
                continue;
            int32_t l = oc_strmap_get(&ids, t, k), r = oc_strmap_get(&ids, t + k, len - k);
            if (l < 0 || r < 0)
                continue;
            if (n == cap) {
                size_t nc = cap ? 2 * cap : 1024;
                spm_merge *nm = oc_realloc(mg, nc * sizeof *nm);
                if (!nm) {
                    s = nomem(v);
                    break;
                }
                mg = nm;
                cap = nc;
            }
            mg[n++] = (spm_merge){(float)sc, (int32_t)i, l, r};
        }
    }
    if (s == OC_OK)
        qsort(mg, n, sizeof *mg, cmp_spm);
    cJSON *arr = s == OC_OK ? cJSON_AddArrayToObject(model, "merges") : NULL;
    if (s == OC_OK && !arr)
        s = nomem(v);
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        cJSON *pair = cJSON_CreateArray();
        if (!pair || !cJSON_AddItemToArray(arr, pair) ||
            !cJSON_AddItemToArray(pair, cJSON_CreateString(v->text[mg[i].left])) ||
            !cJSON_AddItemToArray(pair, cJSON_CreateString(v->text[mg[i].right]))) {
            if (pair && !pair->prev)
                cJSON_Delete(pair);
            s = nomem(v);
        }
    }
    oc_free(mg);
    oc_strmap_free(&ids);
    return s;
}

static oc_status build_llama(const vocab *v, cJSON *root) {
    int prefix;
    OC_TRY(oc_gguf_get_bool(v->g, "tokenizer.ggml.add_space_prefix", 1, &prefix));
    int32_t unk;
    OC_TRY(special_id(v, "unknown", &unk));
    for (size_t i = 0; unk < 0 && i < v->n; i++)
        if (v->type[i] == TT_UNKNOWN)
            unk = (int32_t)i;
    cJSON *norm_items[2] = {NULL, replace(" ", "\xE2\x96\x81")};
    if (prefix) {
        norm_items[0] = obj_type("Prepend");
        if (norm_items[0] && !cJSON_AddStringToObject(norm_items[0], "prepend", "\xE2\x96\x81")) {
            cJSON_Delete(norm_items[0]);
            norm_items[0] = NULL;
        }
    }
    cJSON *norm = prefix ? sequence("normalizers", norm_items, 2) : norm_items[1];
    cJSON *strip = obj_type("Strip");
    if (strip && (!cJSON_AddStringToObject(strip, "content", " ") ||
                  !cJSON_AddNumberToObject(strip, "start", prefix) ||
                  !cJSON_AddNumberToObject(strip, "stop", 0))) {
        cJSON_Delete(strip);
        strip = NULL;
    }
    cJSON *dec_items[4] = {replace("\xE2\x96\x81", " "), obj_type("ByteFallback"),
                           obj_type("Fuse"), strip};
    cJSON *dec = sequence("decoders", dec_items, 4);
    int ok = norm && dec;
    if (ok)
        ok = cJSON_AddItemToObject(root, "normalizer", norm) != 0;
    else
        cJSON_Delete(norm);
    if (ok)
        ok = cJSON_AddItemToObject(root, "decoder", dec) != 0;
    else
        cJSON_Delete(dec);
    cJSON *model = ok ? cJSON_AddObjectToObject(root, "model") : NULL;
    if (!model || !cJSON_AddNullToObject(root, "pre_tokenizer") ||
        !cJSON_AddStringToObject(model, "type", "BPE") ||
        !cJSON_AddBoolToObject(model, "byte_fallback", 1) ||
        !cJSON_AddBoolToObject(model, "fuse_unk", 1) ||
        !(unk >= 0 ? cJSON_AddStringToObject(model, "unk_token", v->text[unk])
                   : cJSON_AddNullToObject(model, "unk_token")))
        return nomem(v);
    OC_TRY(add_vocab(v, model, root));
    OC_TRY(spm_merges(v, model));
    return add_post(v, root, 1);
}

oc_status oc_tokenizer_load_gguf(const oc_gguf *g, oc_tokenizer **out) {
    if (!g || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenizer_load_gguf: NULL argument");
    const char *kind;
    OC_TRY(oc_gguf_get_str(g, "tokenizer.ggml.model", 1, &kind));
    int gpt2 = !strcmp(kind, "gpt2"), llama = !strcmp(kind, "llama");
    if (!gpt2 && !llama)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model \"%s\" is not supported "
                      "(gpt2, llama)", oc_gguf_path(g), kind);
    vocab v = {0};
    cJSON *root = NULL;
    oc_status s = read_vocab(g, &v);
    if (s == OC_OK && !(root = cJSON_CreateObject()))
        s = nomem(&v);
    if (s == OC_OK)
        s = gpt2 ? build_gpt2(&v, root) : build_llama(&v, root);
    if (s == OC_OK)
        s = oc_tokenizer_from_json(root, oc_gguf_path(g), out);
    cJSON_Delete(root);
    vocab_free(&v);
    return s;
}
