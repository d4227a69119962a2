/* Trainable parameters of a SmolVLM-family model (SigLIP-style ViT + pixel-shuffle
 * connector + Llama decoder): one F32 allocation, a table of its tensors under their
 * Hugging Face names, and a struct of pointers into any buffer of the same layout, so
 * that gradients and optimizer moments mirror the parameters (as in llm.c).
 *
 * Shape legend: C vision hidden, I vision intermediate, N patches per tile, K = 3*P*P
 * (one unfolded patch), E text hidden, H/KVH heads, D head dim, F text intermediate,
 * V vocabulary, s pixel-shuffle scale. */
#ifndef OC_TRAIN_PARAMS_H
#define OC_TRAIN_PARAMS_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct {
    float *ln1_w, *ln1_b;            /* (C) layer_norm1 */
    float *q_w, *k_w, *v_w, *o_w;    /* (C, C) q/k/v/out_proj */
    float *q_b, *k_b, *v_b, *o_b;    /* (C) */
    float *ln2_w, *ln2_b;            /* (C) layer_norm2 */
    float *fc1_w, *fc1_b;            /* (I, C), (I) */
    float *fc2_w, *fc2_b;            /* (C, I), (C) */
} oc_tp_vit_layer;

typedef struct {
    float *in_norm;                  /* (E) input_layernorm */
    float *q_w;                      /* (H*D, E) */
    float *k_w, *v_w;                /* (KVH*D, E) */
    float *o_w;                      /* (E, H*D) */
    float *post_norm;                /* (E) post_attention_layernorm */
    float *gate_w, *up_w;            /* (F, E) */
    float *down_w;                   /* (E, F) */
} oc_tp_llama_layer;

/* Pointers into one buffer laid out as the parameter table says. */
typedef struct {
    float *patch_w;                  /* (C, K): the conv kernel (C, 3, P, P) flattened */
    float *patch_b;                  /* (C) */
    float *pos_emb;                  /* (N, C) */
    oc_tp_vit_layer *vit;            /* (vision layers), owned */
    float *post_w, *post_b;          /* (C) post_layernorm */
    float *proj_w;                   /* (E, C*s*s) connector, no bias */
    float *embed;                    /* (V, E) */
    oc_tp_llama_layer *llm;          /* (text layers), owned */
    float *norm;                     /* (E) final norm */
    float *lm_head;                  /* (V, E); == embed when tied */
} oc_tp_tensors;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    size_t offset, numel;            /* in floats, into the buffer */
} oc_tp_info;

typedef struct {
    oc_model_config cfg;
    oc_tp_info *info;                /* (n_tensors), owned */
    size_t n_tensors;
    size_t numel;                    /* floats in all */
    float *mem;                      /* (numel) the parameters, owned */
    oc_tp_tensors t;                 /* pointers into mem */
} oc_params;

/* Checks that training supports cfg (SmolVLM family, no attention bias). */
oc_status oc_params_check_config(const oc_model_config *cfg);
/* Builds the table for cfg and allocates the parameters, zeroed. */
oc_status oc_params_new(oc_params *p, const oc_model_config *cfg);
void oc_params_free(oc_params *p);

/* Fills t with pointers into base (numel floats, laid out as p's table). Caller frees
 * t with oc_tp_tensors_free. */
oc_status oc_tp_tensors_point(oc_tp_tensors *t, const oc_params *p, float *base);
void oc_tp_tensors_free(oc_tp_tensors *t);

/* Reads every tensor from a model folder's safetensors (F32, F16, BF16), checking
 * shapes; an untied lm_head.weight is required when the config says so. */
oc_status oc_params_load(oc_params *p, const char *dir);
/* Transformers' _init_weights: linear, conv and embedding weights ~ N(0, std), biases
 * 0, norm weights 1; the text embedding's padding row (pad_id >= 0) is zeroed. */
void oc_params_init_random(oc_params *p, uint64_t seed, float std, int32_t pad_id);
/* Adds base (laid out as p's table) to w as F32 tensors named prefix + name (prefix may
 * be ""). base must outlive the save. */
oc_status oc_params_add_to_writer(const oc_params *p, const float *base, const char *prefix,
                                  oc_st_writer *w);
#endif
