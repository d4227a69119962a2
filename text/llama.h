/* Llama-family decoders: RMSNorm, RoPE, grouped-query attention, gated MLP, KV cache.
 * The same code runs Llama, Qwen2 (QKV biases, multimodal RoPE positions) and Gemma 3
 * (scaled embeddings, norms before and after attention and MLP, QK-norm, GeGLU, sliding
 * window layers with their own RoPE, bidirectional spans, logit soft-capping): the
 * differences are settings of oc_llama_config and inputs of oc_decoder_forward. */
#ifndef OC_LLAMA_H
#define OC_LLAMA_H
#include <stdint.h>

#include "kernels.h"

#define OC_MAX_LAYERS 1024

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
    /* Qwen2 and Gemma 3; all zero for Llama */
    int mlp_gelu;          /* the gate's activation is gelu_tanh (GeGLU) instead of silu */
    float query_scale;     /* attention scale; 0: 1/sqrt(head_dim) (Gemma:
                              query_pre_attn_scalar^-0.5) */
    float embed_scale;     /* token embeddings multiplied by it; 0: not (Gemma: sqrt(hidden)
                              in the model's dtype) */
    float final_softcap;   /* logits = tanh(logits / cap) * cap; 0: none */
    float rope_factor;     /* linear RoPE scaling of the full-attention layers; 0 or 1: none */
    uint32_t sliding_window;     /* keys a sliding layer's query sees, itself included */
    float rope_theta_local;      /* RoPE of the sliding layers (Gemma 3) */
    float rope_factor_local;
    uint32_t mrope[3];     /* M-RoPE (Qwen2.5-VL mrope_section): frequencies per position
                              row (temporal, height, width); all 0: one row of positions */
    int qk_norm;           /* RMSNorm of each head's query and key (Gemma 3) */
    int sandwich_norm;     /* norms of the attention and MLP outputs (Gemma 3) */
    uint8_t sliding[OC_MAX_LAYERS]; /* layer l uses the sliding window (layer_types) */
} oc_llama_config;

typedef struct {
    const float *in_norm;                /* (C) input_layernorm */
    oc_weight q, k, v, o;                /* q (H*D, C), k/v (KVH*D, C), o (C, H*D) */
    const float *q_b, *k_b, *v_b, *o_b;  /* attention_bias only */
    const float *post_norm;              /* (C) post_attention_layernorm */
    oc_weight gate, up, down;            /* gate/up (I, C), down (C, I) */
    /* Gemma 3 (NULL for Llama): q_norm, k_norm (D) and the norms of the attention and MLP
     * outputs (C); its RMSNorm weights w are held as 1 + w. in_norm is input_layernorm,
     * post_norm the MLP's input norm (pre_feedforward_layernorm). */
    const float *q_norm, *k_norm;
    const float *attn_out_norm, *mlp_out_norm;
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
/* out (C) = embedding row of token id (times embed_scale when set). */
void oc_llama_embed(float *out, const oc_llama_config *c, const oc_llama_weights *w,
                    int32_t id);

/* Inputs beyond the embeddings, for the families whose positions and masks are not those
 * of plain causal text. Either pointer may be NULL. */
typedef struct {
    /* (R, T) position ids of the new tokens, R = 3 with M-RoPE (temporal, height, width
     * rows) else 1; NULL: kv->len + t. */
    const int32_t *pos;
    /* (T) bidirectional spans: token t (cache index kv->len + t) also sees the keys after
     * it up to span_end[t] (exclusive, within this call), so that the tokens of one image
     * see each other (Gemma 3); a sliding layer still sees no key more than
     * sliding_window - 1 behind. 0: none. */
    const uint32_t *span_end;
} oc_decoder_inputs;

/* oc_llama_forward with inputs (NULL: plain causal text at positions kv->len..). */
oc_status oc_decoder_forward(oc_exec *ex, const oc_llama_config *c, const oc_llama_weights *w,
                             oc_kv_cache *kv, const float *x, uint32_t T,
                             const oc_decoder_inputs *in, float *hidden_out, float *logits,
                             uint32_t n_logits);
#endif
