/* Llama decoder forward pass with a KV cache. */
#include "llama.h"

#include <math.h>
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

void oc_llama_embed(float *out, const oc_llama_config *c, const oc_llama_weights *w,
                    int32_t id) {
    oc_weight_row(out, &w->embed, (size_t)id);
    if (c->embed_scale != 0.0f)
        for (size_t i = 0; i < c->hidden; i++)
            out[i] *= c->embed_scale;
}

#define MAX_HALF 2048 /* head_dim <= 4096 (config.c) */

typedef struct {
    float *h;             /* (T, C) normed input */
    float *q;             /* (T, H*D) */
    float *att;           /* (T, H*D) */
    float *gate, *up;     /* (T, I) */
    float *cos_t, *sin_t; /* (T, D/2) full-attention layers */
    float *cos_l, *sin_l; /* (T, D/2) sliding layers */
    size_t *lo_f, *hi_f;  /* (T) key ranges of the full layers; NULL: causal */
    size_t *lo_s, *hi_s;  /* (T) of the sliding layers; NULL: causal */
} llama_scratch;

/* cos, sin (T, D/2) for one RoPE (theta, linear factor) at the inputs' positions. Plain
 * positions without scaling are oc_rope_tables' (the Llama path, unchanged). */
static void rope_tables(float *cos_t, float *sin_t, const oc_llama_config *c, float theta,
                        float factor, const oc_decoder_inputs *in, size_t pos0, uint32_t T) {
    size_t D = c->head_dim, half = D / 2;
    int scaled = factor != 0.0f && factor != 1.0f;
    if ((!in || !in->pos) && !scaled) {
        oc_rope_tables(cos_t, sin_t, pos0, T, D, theta, c->rope_dtype);
        return;
    }
    float inv[MAX_HALF];
    oc_rope_inv_freq(inv, half, D, theta, scaled ? factor : 1.0f, c->rope_dtype);
    if (in && in->pos) {
        uint32_t one = (uint32_t)half;
        int m = c->mrope[0] + c->mrope[1] + c->mrope[2] > 0;
        oc_rope_tables_pos(cos_t, sin_t, inv, half, in->pos, T, m ? c->mrope : &one, m ? 3 : 1);
        return;
    }
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * inv[i];
            cos_t[t * half + i] = cosf(ang);
            sin_t[t * half + i] = sinf(ang);
        }
}

static int any_sliding(const oc_llama_config *c) {
    for (uint32_t l = 0; l < c->layers; l++)
        if (c->sliding[l])
            return 1;
    return 0;
}

/* Key ranges of the T new queries (cache indices past..past+T-1): causal, widened forward
 * to the end of each bidirectional span, and in sliding layers (window > 0) none of the
 * keys more than window - 1 behind, span or not: transformers 5 masks a sliding layer with
 * window AND (causal OR same image). */
static void key_ranges(size_t *lo, size_t *hi, const oc_decoder_inputs *in, size_t past,
                       uint32_t T, uint32_t window) {
    for (size_t t = 0; t < T; t++) {
        size_t p = past + t;
        lo[t] = window && p + 1 > window ? p + 1 - window : 0;
        hi[t] = p + 1;
        if (in && in->span_end && in->span_end[t] > hi[t])
            hi[t] = in->span_end[t];
    }
}

/* x (T, C) += attention(rmsnorm(x)) for layer l; appends k, v to the cache. */
static void attention_block(oc_exec *ex, const oc_llama_config *c, const oc_llama_layer *L,
                            oc_kv_cache *kv, uint32_t l, float *x, llama_scratch *s,
                            uint32_t T) {
    size_t C = c->hidden, D = c->head_dim, H = c->heads, KVH = c->kv_heads;
    size_t kvd = KVH * D, past = kv->len;
    int sliding = c->sliding[l];
    float *kl = kv->k + (size_t)l * kv->cap * kvd, *vl = kv->v + (size_t)l * kv->cap * kvd;
    float *kn = kl + past * kvd;
    oc_rmsnorm(ex, s->h, NULL, x, L->in_norm, T, C, c->rms_eps);
    oc_matmul(ex, s->q, s->h, &L->q, L->q_b, T);
    oc_matmul(ex, kn, s->h, &L->k, L->k_b, T);
    oc_matmul(ex, vl + past * kvd, s->h, &L->v, L->v_b, T);
    if (L->q_norm) { /* per head: rows of D */
        oc_rmsnorm(ex, s->q, NULL, s->q, L->q_norm, (size_t)T * H, D, c->rms_eps);
        oc_rmsnorm(ex, kn, NULL, kn, L->k_norm, (size_t)T * KVH, D, c->rms_eps);
    }
    const float *ct = sliding ? s->cos_l : s->cos_t, *st = sliding ? s->sin_l : s->sin_t;
    oc_rope_apply(ex, s->q, ct, st, T, H, D, 1.0f);
    oc_rope_apply(ex, kn, ct, st, T, KVH, D, 1.0f);
    oc_attn_shape sh = {.T = T, .S = past + T, .H = H, .KVH = KVH, .D = D, .kv_stride = kvd,
                        .causal = 1, .scale = c->query_scale,
                        .kv_lo = sliding ? s->lo_s : s->lo_f,
                        .kv_hi = sliding ? s->hi_s : s->hi_f};
    oc_attention(ex, s->att, NULL, s->q, kl, vl, &sh);
    oc_matmul(ex, s->h, s->att, &L->o, L->o_b, T);
    if (L->attn_out_norm)
        oc_rmsnorm(ex, s->h, NULL, s->h, L->attn_out_norm, T, C, c->rms_eps);
    oc_add(ex, x, s->h, (size_t)T * C);
}

/* x (T, C) += down(act(gate(h)) * up(h)), h = rmsnorm(x) */
static void mlp_block(oc_exec *ex, const oc_llama_config *c, const oc_llama_layer *L,
                      float *x, llama_scratch *s, uint32_t T) {
    size_t C = c->hidden;
    oc_rmsnorm(ex, s->h, NULL, x, L->post_norm, T, C, c->rms_eps);
    oc_matmul(ex, s->gate, s->h, &L->gate, NULL, T);
    oc_matmul(ex, s->up, s->h, &L->up, NULL, T);
    oc_glu(ex, s->gate, s->gate, s->up, (size_t)T * c->intermediate,
           c->mlp_gelu ? OC_ACT_GELU_TANH : OC_ACT_SILU);
    oc_matmul(ex, s->h, s->gate, &L->down, NULL, T);
    if (L->mlp_out_norm)
        oc_rmsnorm(ex, s->h, NULL, s->h, L->mlp_out_norm, T, C, c->rms_eps);
    oc_add(ex, x, s->h, (size_t)T * C);
}

oc_status oc_llama_forward(oc_exec *ex, const oc_llama_config *c, const oc_llama_weights *w,
                           oc_kv_cache *kv, const float *x_in, uint32_t T, float *hidden_out,
                           float *logits, uint32_t n_logits) {
    return oc_decoder_forward(ex, c, w, kv, x_in, T, NULL, hidden_out, logits, n_logits);
}

oc_status oc_decoder_forward(oc_exec *ex, const oc_llama_config *c, const oc_llama_weights *w,
                             oc_kv_cache *kv, const float *x_in, uint32_t T,
                             const oc_decoder_inputs *in, float *hidden_out, float *logits,
                             uint32_t n_logits) {
    if (T == 0 || n_logits > T)
        return oc_err(OC_ERR_INVALID_ARG, "llama forward: %u tokens, %u logits", T, n_logits);
    if ((size_t)kv->len + T > kv->cap)
        return oc_err(OC_ERR_LIMIT, "the prompt and answer need %zu positions, more than the "
                      "context of %u", (size_t)kv->len + T, kv->cap);
    if (c->head_dim / 2 > MAX_HALF)
        return oc_err(OC_ERR_UNSUPPORTED, "head_dim %u is over %d", c->head_dim, 2 * MAX_HALF);
    size_t past = kv->len;
    int spans = 0;
    for (uint32_t t = 0; in && in->span_end && t < T; t++) {
        if (in->span_end[t] && (in->span_end[t] > past + T || in->span_end[t] <= past + t))
            return oc_err(OC_ERR_INVALID_ARG, "llama forward: token %u's span ends at %u, not "
                          "after it within the call", t, in->span_end[t]);
        spans |= in->span_end[t] != 0;
    }
    int sliding = any_sliding(c);
    int ranges_s = sliding && (spans || past + T > c->sliding_window);
    size_t C = c->hidden, HD = (size_t)c->heads * c->head_dim, I = c->intermediate;
    size_t n = (size_t)T * (2 * C + 2 * HD + 2 * I + 2 * (size_t)c->head_dim);
    n += n % 2; /* the ranges (size_t) after the floats */
    size_t bytes = n * sizeof(float) + (size_t)4 * T * sizeof(size_t);
    float *x = oc_exec_buf(ex, 0, OC_BUF_MODEL, bytes);
    if (!x)
        return oc_err(OC_ERR_NOMEM, "out of memory for %u tokens of text model scratch", T);
    llama_scratch s = {.h = x + (size_t)T * C};
    s.q = s.h + (size_t)T * C;
    s.att = s.q + (size_t)T * HD;
    s.gate = s.att + (size_t)T * HD;
    s.up = s.gate + (size_t)T * I;
    s.cos_t = s.up + (size_t)T * I;
    s.sin_t = s.cos_t + (size_t)T * c->head_dim / 2;
    s.cos_l = s.sin_t + (size_t)T * c->head_dim / 2;
    s.sin_l = s.cos_l + (size_t)T * c->head_dim / 2;
    size_t *r = (size_t *)(void *)(x + n);
    if (spans) {
        s.lo_f = r;
        s.hi_f = r + T;
        key_ranges(s.lo_f, s.hi_f, in, past, T, 0);
    }
    if (ranges_s) {
        s.lo_s = r + 2 * (size_t)T;
        s.hi_s = r + 3 * (size_t)T;
        key_ranges(s.lo_s, s.hi_s, in, past, T, c->sliding_window);
    }
    memcpy(x, x_in, (size_t)T * C * sizeof(float));
    rope_tables(s.cos_t, s.sin_t, c, c->rope_theta, c->rope_factor, in, past, T);
    if (sliding)
        rope_tables(s.cos_l, s.sin_l, c, c->rope_theta_local, c->rope_factor_local, in, past,
                    T);
    for (uint32_t l = 0; l < c->layers; l++) {
        attention_block(ex, c, &w->layers[l], kv, l, x, &s, T);
        mlp_block(ex, c, &w->layers[l], x, &s, T);
    }
    kv->len += T;
    oc_rmsnorm(ex, x, NULL, x, w->norm, T, C, c->rms_eps);
    if (hidden_out)
        memcpy(hidden_out, x, (size_t)T * C * sizeof(float));
    if (n_logits) {
        oc_matmul(ex, logits, x + (size_t)(T - n_logits) * C, &w->lm_head, NULL, n_logits);
        if (c->final_softcap != 0.0f)
            oc_softcap(ex, logits, (size_t)n_logits * c->vocab, c->final_softcap);
    }
    return OC_OK;
}
