/* Llama-family decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU, KV cache. */
#ifndef OC_LLAMA_H
#define OC_LLAMA_H
#include <stdint.h>

#include "kernels.h"

typedef struct {
    uint32_t hidden;       /* hidden_size */
    uint32_t layers;       /* num_hidden_layers */
    uint32_t heads;        /* num_attention_heads */
    uint32_t kv_heads;     /* num_key_value_heads */
    uint32_t head_dim;     /* head_dim (default hidden / heads) */
    uint32_t intermediate; /* intermediate_size */
    uint32_t vocab;        /* vocab_size */
    uint32_t max_pos;      /* max_position_embeddings */
    float rms_eps;         /* rms_norm_eps */
    float rope_theta;      /* rope_theta or rope_parameters.rope_theta */
    oc_dtype rope_dtype;   /* the model's dtype ("dtype"/"torch_dtype"): RoPE frequencies
                              are rounded to it as transformers does */
    int tied;              /* tie_word_embeddings */
    int attn_bias;         /* attention_bias */
    int mlp_bias;          /* mlp_bias */
} oc_llama_config;

typedef struct {
    const float *in_norm;                /* (C) input_layernorm */
    oc_weight q, k, v, o;                /* q (H*D, C), k/v (KVH*D, C), o (C, H*D) */
    const float *q_b, *k_b, *v_b, *o_b;  /* attention_bias only */
    const float *post_norm;              /* (C) post_attention_layernorm */
    oc_weight gate, up, down;            /* gate/up (I, C), down (C, I) */
} oc_llama_layer;

typedef struct {
    oc_weight embed;          /* (V, C) */
    oc_llama_layer *layers;
    const float *norm;        /* (C) */
    oc_weight lm_head;        /* (V, C); the embedding when tied */
} oc_llama_weights;

/* KV cache for one sequence: k, v (layers, cap, KVH*D). */
typedef struct {
    float *k, *v;
    uint32_t cap;   /* positions allocated */
    uint32_t len;   /* positions filled */
} oc_kv_cache;

oc_status oc_kv_cache_init(oc_kv_cache *kv, const oc_llama_config *c, uint32_t cap);
void oc_kv_cache_free(oc_kv_cache *kv);

/* Runs T new tokens after the kv->len cached ones and appends them to the cache.
 * x (T, C): input embeddings (token embeddings with image features placed in).
 * hidden_out (T, C): optional, the final-norm hidden states.
 * logits (n_logits, V): logits of the last n_logits positions (n_logits <= T; may be 0). */
oc_status oc_llama_forward(oc_exec *ex, const oc_llama_config *c, const oc_llama_weights *w,
                           oc_kv_cache *kv, const float *x, uint32_t T, float *hidden_out,
                           float *logits, uint32_t n_logits);
/* out (C) = embedding row of token id. */
void oc_llama_embed(float *out, const oc_llama_weights *w, int32_t id);
#endif
