/* Growable arrays and JSON field readers shared by the tokenizer files. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

/* Grows *p (an array of *cap elements of size elem) to hold at least need elements. */
static oc_status grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return OC_OK;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2)
            return oc_err(OC_ERR_LIMIT, "tokenizer: array of %zu elements is too large", need);
        cap2 *= 2;
    }
    size_t bytes;
    if (!oc_mul_ok(cap2, elem, &bytes))
        return oc_err(OC_ERR_LIMIT, "tokenizer: array of %zu elements is too large", need);
    void *q = oc_realloc(*p, bytes);
    if (!q)
        return oc_err(OC_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", bytes);
    *p = q;
    *cap = cap2;
    return OC_OK;
}

static int add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

oc_status oc_buf_reserve(oc_buf *b, size_t extra) {
    size_t need;
    if (!add_ok(b->len, extra, &need) || !add_ok(need, 1, &need))
        return oc_err(OC_ERR_LIMIT, "tokenizer: text too large");
    return grow((void **)&b->data, &b->cap, need, 1);
}

oc_status oc_buf_append(oc_buf *b, const void *p, size_t n) {
    OC_TRY(oc_buf_reserve(b, n));
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return OC_OK;
}

oc_status oc_buf_append_cp(oc_buf *b, uint32_t cp) {
    char tmp[4];
    return oc_buf_append(b, tmp, oc_utf8_put(cp, tmp));
}

oc_status oc_buf_cstr(oc_buf *b) {
    OC_TRY(oc_buf_reserve(b, 0));
    b->data[b->len] = 0;
    return OC_OK;
}

void oc_buf_free(oc_buf *b) {
    oc_free(b->data);
    memset(b, 0, sizeof *b);
}

oc_status oc_ids_push(oc_ids *ids, int32_t id) {
    if (ids->n == ids->cap)
        OC_TRY(grow((void **)&ids->v, &ids->cap, ids->n + 1, sizeof *ids->v));
    ids->v[ids->n++] = id;
    return OC_OK;
}

oc_status oc_ids_append(oc_ids *ids, const int32_t *v, size_t n) {
    size_t need;
    if (!add_ok(ids->n, n, &need))
        return oc_err(OC_ERR_LIMIT, "tokenizer: too many ids");
    OC_TRY(grow((void **)&ids->v, &ids->cap, need, sizeof *ids->v));
    if (n)
        memcpy(ids->v + ids->n, v, n * sizeof *v);
    ids->n = need;
    return OC_OK;
}

void oc_ids_free(oc_ids *ids) {
    oc_free(ids->v);
    memset(ids, 0, sizeof *ids);
}

oc_status oc_spans_push(oc_spans *s, size_t start, size_t end) {
    if (s->n == s->cap)
        OC_TRY(grow((void **)&s->v, &s->cap, s->n + 1, 2 * sizeof *s->v));
    s->v[2 * s->n] = start;
    s->v[2 * s->n + 1] = end;
    s->n++;
    return OC_OK;
}

void oc_spans_free(oc_spans *s) {
    oc_free(s->v);
    memset(s, 0, sizeof *s);
}

oc_status oc_pieces_open(oc_pieces *l, int32_t id, int first) {
    OC_TRY(oc_buf_reserve(&l->text, 0)); /* so that the text has storage even if empty */
    if (l->n == l->cap)
        OC_TRY(grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v));
    l->v[l->n++] = (oc_piece){.off = l->text.len, .len = 0, .id = id, .first = (uint8_t)!!first};
    return OC_OK;
}

void oc_pieces_close(oc_pieces *l) {
    oc_piece *p = &l->v[l->n - 1];
    p->len = l->text.len - p->off;
}

oc_status oc_pieces_push(oc_pieces *l, const char *p, size_t n, int32_t id, int first) {
    OC_TRY(oc_buf_reserve(&l->text, n));
    OC_TRY(oc_pieces_open(l, id, first));
    OC_TRY(oc_buf_append(&l->text, p, n));
    oc_pieces_close(l);
    return OC_OK;
}

void oc_pieces_clear(oc_pieces *l) {
    l->n = 0;
    l->text.len = 0;
}

void oc_pieces_free(oc_pieces *l) {
    oc_buf_free(&l->text);
    oc_free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- JSON ------------------------------------------------------------------------ */

oc_status oc_tok_type(const cJSON *j, const char *file, const char *what, const char **type) {
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: %s must be an object", file, what);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return oc_err(OC_ERR_FORMAT, "%s: %s has no \"type\" string", file, what);
    *type = t->valuestring;
    return OC_OK;
}

oc_status oc_tok_str(const cJSON *j, const char *key, int required, const char *file,
                     const char *what, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: %s has no \"%s\"", file, what, key);
        *out = NULL;
        return OC_OK;
    }
    if (!cJSON_IsString(v))
        return oc_err(OC_ERR_FORMAT, "%s: %s \"%s\" must be a string", file, what, key);
    *out = v->valuestring;
    return OC_OK;
}

oc_status oc_tok_bool(const cJSON *j, const char *key, int def, const char *file,
                      const char *what, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return OC_OK;
    }
    if (!cJSON_IsBool(v))
        return oc_err(OC_ERR_FORMAT, "%s: %s \"%s\" must be true or false", file, what, key);
    *out = cJSON_IsTrue(v);
    return OC_OK;
}

oc_status oc_tok_char(const cJSON *j, const char *key, const char *file, const char *what,
                      uint32_t *cp) {
    const char *s = NULL; /* set when oc_tok_str succeeds (gcc cannot tell) */
    OC_TRY(oc_tok_str(j, key, 1, file, what, &s));
    size_t n = strlen(s);
    if (n == 0 || oc_utf8_next(s, n, cp) != n)
        return oc_err(OC_ERR_FORMAT, "%s: %s \"%s\" must be one character", file, what, key);
    return OC_OK;
}
