/* tokenizer.json: loading and the public encode/decode calls. The stages live in
 * tok_normalize.c, tok_pretokenize.c, tok_bpe.c, tok_added.c, tok_post.c and
 * tok_decode.c; this file wires them in the order Hugging Face tokenizers runs them. */
#include "tokenizer.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "tok_internal.h"

#define MAX_TOKENIZER_FILE ((size_t)512 << 20)

struct oc_tokenizer {
    char *path;               /* the tokenizer.json read, for errors */
    oc_normalizer *normalizer;
    oc_pretok *pretok;
    oc_bpe *model;
    oc_added_vocab *added;
    oc_post *post;
    oc_decoder *decoder;
    int32_t n_ids;            /* largest id + 1 */
    uint8_t *special;         /* n_ids flags: dropped by oc_detokenize unless keep_special */
    int32_t bos;
};

void oc_tokenizer_free(oc_tokenizer *tok) {
    if (!tok)
        return;
    oc_normalizer_free(tok->normalizer);
    oc_pretok_free(tok->pretok);
    oc_bpe_free(tok->model);
    oc_added_free(tok->added);
    oc_post_free(tok->post);
    oc_decoder_free(tok->decoder);
    oc_free(tok->special);
    oc_free(tok->path);
    oc_free(tok);
}

/* ---- loading ------------------------------------------------------------------------ */

/* The string decoding gives an id (tokenizers' simple_id_to_token / id_to_token). */
static const char *decode_string(const oc_tokenizer *tok, int32_t id, size_t *len) {
    const oc_added_token *a = oc_added_by_id(tok->added, id);
    if (a) {
        *len = a->normalized ? a->normalized_len : a->len;
        return a->normalized ? a->normalized : a->content;
    }
    const char *s = oc_bpe_piece(tok->model, id);
    if (s)
        *len = strlen(s);
    return s;
}

/* Marks the ids decoding skips: those whose string is a special token's content.
 * Only added ids and the model ids of special contents can qualify. */
static oc_status mark_special(oc_tokenizer *tok) {
    tok->special = oc_calloc((size_t)tok->n_ids + 1, 1);
    if (!tok->special)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", tok->path);
    for (size_t i = 0; i < oc_added_count(tok->added); i++) {
        const oc_added_token *a = oc_added_at(tok->added, i);
        int32_t cand[2] = {a->id, a->special ? oc_bpe_id(tok->model, a->content, a->len) : -1};
        for (int k = 0; k < 2; k++) {
            size_t len;
            const char *s = cand[k] >= 0 ? decode_string(tok, cand[k], &len) : NULL;
            if (s && oc_added_is_special(tok->added, s, len))
                tok->special[cand[k]] = 1;
        }
    }
    return OC_OK;
}

static oc_status load_parts(oc_tokenizer *tok, const cJSON *root) {
    const char *file = tok->path;
    if (!cJSON_IsObject(root))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (cJSON_IsString(version) && strcmp(version->valuestring, "1.0"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: unknown tokenizer version '%s'", file,
                      version->valuestring);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model || cJSON_IsNull(model))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"model\"", file);
    OC_TRY(oc_bpe_load(model, file, &tok->model));
    OC_TRY(oc_normalizer_parse(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), file,
                               &tok->normalizer));
    OC_TRY(oc_pretok_parse(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), file,
                           &tok->pretok));
    OC_TRY(oc_post_parse(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), file,
                         &tok->post));
    OC_TRY(oc_decoder_parse(cJSON_GetObjectItemCaseSensitive(root, "decoder"), file,
                            &tok->decoder));
    OC_TRY(oc_added_load(cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), file,
                         tok->model, tok->normalizer, &tok->added));

    int32_t max_id = oc_bpe_max_id(tok->model);
    for (size_t i = 0; i < oc_added_count(tok->added); i++)
        if (oc_added_at(tok->added, i)->id > max_id)
            max_id = oc_added_at(tok->added, i)->id;
    tok->n_ids = max_id + 1;
    int32_t post_max = oc_post_max_id(tok->post);
    if (post_max >= tok->n_ids)
        return oc_err(OC_ERR_FORMAT, "%s: post_processor adds id %d, beyond the vocabulary "
                      "(%d ids)", file, (int)post_max, (int)tok->n_ids);
    tok->bos = oc_post_bos(tok->post);
    return mark_special(tok);
}

oc_status oc_tokenizer_load_file(const char *path, oc_tokenizer **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenizer_load: NULL argument");
    char *text = NULL;
    size_t n = 0;
    OC_TRY(oc_read_file(path, MAX_TOKENIZER_FILE, &text, &n));
    size_t bad = oc_utf8_check(text, n);
    if (bad < n) {
        oc_free(text);
        return oc_err(OC_ERR_FORMAT, "%s: not valid UTF-8 at byte %zu", path, bad);
    }
    cJSON *root = NULL;
    oc_status st = oc_json_parse(text, n, path, &root);
    oc_free(text);
    if (st != OC_OK)
        return st;
    st = oc_tokenizer_from_json(root, path, out);
    cJSON_Delete(root);
    return st;
}

oc_status oc_tokenizer_from_json(const cJSON *root, const char *name, oc_tokenizer **out) {
    if (!root || !name || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenizer_from_json: NULL argument");
    oc_tokenizer *tok = oc_calloc(1, sizeof *tok);
    if (!tok || !(tok->path = oc_strdup(name))) {
        oc_free(tok);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    }
    oc_status st = load_parts(tok, root);
    if (st != OC_OK) {
        oc_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return OC_OK;
}

oc_status oc_tokenizer_load(const char *path, oc_tokenizer **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenizer_load: NULL argument");
    if (!oc_is_dir(path))
        return oc_tokenizer_load_file(path, out);
    char *file = oc_path_join(path, "tokenizer.json");
    if (!file)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    oc_status st = oc_file_exists(file)
                       ? oc_tokenizer_load_file(file, out)
                       : oc_err(OC_ERR_IO, "%s: no tokenizer.json in this folder", path);
    oc_free(file);
    return st;
}

/* ---- lookups -------------------------------------------------------------------------- */

int32_t oc_tok_id(const oc_tokenizer *tok, const char *piece) {
    if (!tok || !piece)
        return -1;
    size_t n = strlen(piece);
    int32_t id = oc_added_id(tok->added, piece, n);
    return id >= 0 ? id : oc_bpe_id(tok->model, piece, n);
}

int32_t oc_tok_bos(const oc_tokenizer *tok) { return tok ? tok->bos : -1; }

int oc_tok_is_special(const oc_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_ids && tok->special[id];
}

const char *oc_token_piece(const oc_tokenizer *tok, int32_t id) {
    if (!tok)
        return NULL;
    const oc_added_token *a = oc_added_by_id(tok->added, id);
    return a ? a->content : oc_bpe_piece(tok->model, id);
}

size_t oc_tokenizer_vocab_size(const oc_tokenizer *tok) {
    return tok ? (size_t)tok->n_ids : 0;
}

/* ---- encoding -------------------------------------------------------------------------- */

/* Normalizes the text between raw added tokens and splits it on normalized ones. */
static oc_status add_segment(const oc_tokenizer *tok, const char *s, size_t n, int first,
                             oc_pieces *out, oc_buf *norm) {
    OC_TRY(oc_normalize(tok->normalizer, s, n, norm));
    if (!oc_added_has(tok->added, 1))
        return norm->len ? oc_pieces_push(out, norm->data, norm->len, -1, first) : OC_OK;
    oc_spans m = {0};
    oc_ids ids = {0};
    oc_status st = oc_added_split(tok->added, 1, norm->data ? norm->data : "", norm->len, &m,
                                  &ids);
    for (size_t i = 0; st == OC_OK && i < m.n; i++) {
        size_t a = m.v[2 * i], b = m.v[2 * i + 1];
        if (b > a)
            st = oc_pieces_push(out, norm->data + a, b - a, ids.v[i], first && a == 0);
    }
    oc_spans_free(&m);
    oc_ids_free(&ids);
    return st;
}

/* AddedVocabulary::extract_and_normalize: the pieces before pre-tokenization. */
static oc_status extract_and_normalize(const oc_tokenizer *tok, const char *text, size_t len,
                                       oc_pieces *out) {
    oc_buf norm = {0};
    oc_status st = OC_OK;
    if (!oc_added_has(tok->added, 0)) {
        st = add_segment(tok, text, len, 1, out, &norm);
    } else {
        oc_spans m = {0};
        oc_ids ids = {0};
        st = oc_added_split(tok->added, 0, text, len, &m, &ids);
        for (size_t i = 0; st == OC_OK && i < m.n; i++) {
            size_t a = m.v[2 * i], b = m.v[2 * i + 1];
            if (ids.v[i] >= 0)
                st = oc_pieces_push(out, text + a, b - a, ids.v[i], a == 0);
            else
                st = add_segment(tok, text + a, b - a, a == 0, out, &norm);
        }
        oc_spans_free(&m);
        oc_ids_free(&ids);
    }
    oc_buf_free(&norm);
    return st;
}

typedef struct {
    const oc_tokenizer *tok;
    oc_ids *out;
} model_sink;

/* Each pre-token goes through the BPE model as soon as it is complete. */
static oc_status to_model(void *ctx, const char *s, size_t n, int32_t id) {
    model_sink *m = ctx;
    return id >= 0 ? oc_ids_push(m->out, id) : oc_bpe_encode(m->tok->model, s, n, m->out);
}

static oc_status encode(const oc_tokenizer *tok, const char *text, size_t len, int add_special,
                        oc_ids *out) {
    oc_pieces pieces = {0};
    model_sink sink = {tok, out};
    oc_status st = extract_and_normalize(tok, text, len, &pieces);
    if (st == OC_OK)
        st = oc_pretokenize(tok->pretok, &pieces, to_model, &sink);
    if (st == OC_OK && add_special)
        st = oc_post_apply(tok->post, out);
    oc_pieces_free(&pieces);
    return st;
}

oc_status oc_tokenize(const oc_tokenizer *tok, const char *text, size_t len, int add_special,
                      int32_t **ids, size_t *n_ids) {
    if (!tok || (!text && len) || !ids || !n_ids)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenize: NULL argument");
    if (!text)
        text = "";
    size_t bad = oc_utf8_check(text, len);
    if (bad < len)
        return oc_err(OC_ERR_INVALID_ARG, "oc_tokenize: text is not valid UTF-8 at byte %zu",
                      bad);
    oc_ids out = {0};
    oc_status st = encode(tok, text, len, add_special, &out);
    if (st == OC_OK && !out.v && !(out.v = oc_malloc(sizeof *out.v)))
        st = oc_err(OC_ERR_NOMEM, "oc_tokenize: out of memory");
    if (st != OC_OK) {
        oc_ids_free(&out);
        return oc_err_prefix(st, "%s: ", tok->path);
    }
    *ids = out.v;
    *n_ids = out.n;
    return OC_OK;
}

/* ---- decoding ---------------------------------------------------------------------------- */

oc_status oc_detokenize(const oc_tokenizer *tok, const int32_t *ids, size_t n_ids,
                        int keep_special, char **text) {
    size_t len;
    return oc_detokenize_bytes(tok, ids, n_ids, keep_special, text, &len);
}

oc_status oc_detokenize_bytes(const oc_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              int keep_special, char **text, size_t *len) {
    if (!tok || (!ids && n_ids) || !text || !len)
        return oc_err(OC_ERR_INVALID_ARG, "oc_detokenize: NULL argument");
    oc_pieces a = {0}, b = {0};
    oc_buf out = {0};
    oc_status st = OC_OK;
    /* ids without a token are skipped, as tokenizers' decode does */
    for (size_t i = 0; st == OC_OK && i < n_ids; i++) {
        size_t k;
        const char *s = decode_string(tok, ids[i], &k);
        if (s && (keep_special || !oc_tok_is_special(tok, ids[i])))
            st = oc_pieces_push(&a, s, k, -1, 0);
    }
    if (st == OC_OK)
        st = oc_decode_chain(tok->decoder, &a, &b);
    /* without a decoder, tokenizers joins the pieces with spaces */
    for (size_t i = 0; st == OC_OK && i < a.n; i++) {
        if (!tok->decoder && i > 0)
            st = oc_buf_append(&out, " ", 1);
        if (st == OC_OK)
            st = oc_buf_append(&out, oc_piece_str(&a, i), a.v[i].len);
    }
    if (st == OC_OK)
        st = oc_buf_cstr(&out);
    oc_pieces_free(&a);
    oc_pieces_free(&b);
    if (st != OC_OK) {
        oc_buf_free(&out);
        return oc_err_prefix(st, "%s: ", tok->path);
    }
    *len = out.len;
    *text = out.data;
    return OC_OK;
}
