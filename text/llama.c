/* Llama decoder forward pass with a KV cache. */
#include "llama.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

oc_status oc_kv_cache_init(oc_kv_cache *kv, const oc_llama_config *c, uint32_t cap) {
    memset(kv, 0, sizeof *kv);
    size_t n = 1;
    int ok = oc_mul_ok(n, c->layers, &n) && oc_mul_ok(n, cap, &n) &&
             oc_mul_ok(n, (size_t)c->kv_heads * c->head_dim, &n) && oc_mul_ok(n, 4, &n);
    if (!ok)
        return oc_err(OC_ERR_LIMIT, "KV cache of %u positions is too large", cap);
    kv->k = oc_malloc(n);
    kv->v = oc_malloc(n);
    if (!kv->k || !kv->v) {
        oc_kv_cache_free(kv);
        return oc_err(OC_ERR_NOMEM, "out of memory for a KV cache of %u positions (%zu MiB)",
                      cap, 2 * n >> 20);
    }
    kv->cap = cap;
    return OC_OK;
}

void oc_kv_cache_free(oc_kv_cache *kv) {
    oc_free(kv->k);
    oc_free(kv->v);
    memset(kv, 0, sizeof *kv);
}

void oc_llama_embed(float *out, const oc_llama_weights *w, int32_t id) {
    oc_weight_row(out, &w->embed, (size_t)id);
}

typedef struct {
    float *h;          /* (T, C) normed input */
    float *q;          /* (T, H*D) */
    float *att;        /* (T, H*D) */
    float *gate, *up;  /* (T, I) */
    float *cos_t, *sin_t; /* (T, D/2) */
} llama_scratch;

/* x (T, C) += attention(rmsnorm(x)) for layer l; appends k, v to the cache. */
static void attention_block(oc_exec *ex, const oc_llama_config *c, const oc_llama_layer *L,
                            oc_kv_cache *kv, uint32_t l, float *x, llama_scratch *s,
                            uint32_t T) {
    size_t C = c->hidden, D = c->head_dim, H = c->heads, KVH = c->kv_heads;
    size_t kvd = KVH * D, past = kv->len;
    float *kl = kv->k + (size_t)l * kv->cap * kvd, *vl = kv->v + (size_t)l * kv->cap * kvd;
    oc_rmsnorm(ex, s->h, NULL, x, L->in_norm, T, C, c->rms_eps);
    oc_matmul(ex, s->q, s->h, &L->q, L->q_b, T);
    oc_matmul(ex, kl + past * kvd, s->h, &L->k, L->k_b, T);
    oc_matmul(ex, vl + past * kvd, s->h, &L->v, L->v_b, T);
    oc_rope_apply(ex, s->q, s->cos_t, s->sin_t, T, H, D, 1.0f);
    oc_rope_apply(ex, kl + past * kvd, s->cos_t, s->sin_t, T, KVH, D, 1.0f);
    oc_attn_shape sh = {.T = T, .S = past + T, .H = H, .KVH = KVH, .D = D, .kv_stride = kvd,
                        .causal = 1};
    oc_attention(ex, s->att, NULL, s->q, kl, vl, &sh);
    oc_matmul(ex, s->h, s->att, &L->o, L->o_b, T);
    oc_add(ex, x, s->h, (size_t)T * C);
}

/* x (T, C) += down(silu(gate(h)) * up(h)), h = rmsnorm(x) */
static void mlp_block(oc_exec *ex, const oc_llama_config *c, const oc_llama_layer *L,
                      float *x, llama_scratch *s, uint32_t T) {
    size_t C = c->hidden;
    oc_rmsnorm(ex, s->h, NULL, x, L->post_norm, T, C, c->rms_eps);
    oc_matmul(ex, s->gate, s->h, &L->gate, NULL, T);
    oc_matmul(ex, s->up, s->h, &L->up, NULL, T);
    oc_swiglu(ex, s->gate, s->gate, s->up, (size_t)T * c->intermediate);
    oc_matmul(ex, s->h, s->gate, &L->down, NULL, T);
    oc_add(ex, x, s->h, (size_t)T * C);
}

oc_status oc_llama_forward(oc_exec *ex, const oc_llama_config *c, const oc_llama_weights *w,
                           oc_kv_cache *kv, const float *x_in, uint32_t T, float *hidden_out,
                           float *logits, uint32_t n_logits) {
    if (T == 0 || n_logits > T)
        return oc_err(OC_ERR_INVALID_ARG, "llama forward: %u tokens, %u logits", T, n_logits);
    if ((size_t)kv->len + T > kv->cap)
        return oc_err(OC_ERR_LIMIT, "the prompt and answer need %zu positions, more than the "
                      "context of %u", (size_t)kv->len + T, kv->cap);
    size_t C = c->hidden, HD = (size_t)c->heads * c->head_dim, I = c->intermediate;
    size_t n = (size_t)T * (2 * C + 2 * HD + 2 * I + c->head_dim);
    float *x = oc_exec_buf(ex, 0, OC_BUF_MODEL, n * sizeof(float));
    if (!x)
        return oc_err(OC_ERR_NOMEM, "out of memory for %u tokens of text model scratch", T);
    llama_scratch s = {.h = x + (size_t)T * C};
    s.q = s.h + (size_t)T * C;
    s.att = s.q + (size_t)T * HD;
    s.gate = s.att + (size_t)T * HD;
    s.up = s.gate + (size_t)T * I;
    s.cos_t = s.up + (size_t)T * I;
    s.sin_t = s.cos_t + (size_t)T * c->head_dim / 2;
    memcpy(x, x_in, (size_t)T * C * sizeof(float));
    oc_rope_tables(s.cos_t, s.sin_t, kv->len, T, c->head_dim, c->rope_theta, c->rope_dtype);
    for (uint32_t l = 0; l < c->layers; l++) {
        attention_block(ex, c, &w->layers[l], kv, l, x, &s, T);
        mlp_block(ex, c, &w->layers[l], x, &s, T);
    }
    kv->len += T;
    oc_rmsnorm(ex, x, NULL, x, w->norm, T, C, c->rms_eps);
    if (hidden_out)
        memcpy(hidden_out, x, (size_t)T * C * sizeof(float));
    if (n_logits)
        oc_matmul(ex, logits, x + (size_t)(T - n_logits) * C, &w->lm_head, NULL, n_logits);
    return OC_OK;
}
