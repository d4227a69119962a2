/* ViT image encoders: SigLIP-style (SmolVLM/Idefics3) and CLIP-style (LLaVA). */
#ifndef OC_VIT_H
#define OC_VIT_H
#include <stdint.h>

#include "kernels.h"

typedef enum { OC_VIT_SIGLIP = 0, OC_VIT_CLIP = 1 } oc_vit_kind;

typedef struct {
    oc_vit_kind kind;
    uint32_t hidden;       /* hidden_size */
    uint32_t layers;       /* num_hidden_layers */
    uint32_t heads;        /* num_attention_heads */
    uint32_t intermediate; /* intermediate_size */
    uint32_t patch;        /* patch_size */
    uint32_t image_size;   /* image_size: side of the square input */
    uint32_t channels;     /* num_channels */
    float ln_eps;          /* layer_norm_eps */
    oc_act act;            /* hidden_act */
} oc_vit_config;

/* Patches per side and in all (CLIP adds a class token to the sequence). */
static inline uint32_t oc_vit_grid(const oc_vit_config *c) { return c->image_size / c->patch; }
static inline uint32_t oc_vit_seq(const oc_vit_config *c) {
    uint32_t g = oc_vit_grid(c);
    return g * g + (c->kind == OC_VIT_CLIP);
}

typedef struct {
    const float *ln1_w, *ln1_b;          /* (C) */
    oc_weight q, k, v, o;                /* (C, C) */
    const float *q_b, *k_b, *v_b, *o_b;  /* (C) */
    const float *ln2_w, *ln2_b;          /* (C) */
    oc_weight fc1;                       /* (I, C) */
    const float *fc1_b;                  /* (I) */
    oc_weight fc2;                       /* (C, I) */
    const float *fc2_b;                  /* (C) */
} oc_vit_layer;

typedef struct {
    oc_weight patch_w;        /* (C, channels*patch*patch): conv kernel flattened */
    const float *patch_b;     /* (C) or NULL (CLIP has none) */
    const float *pos_emb;     /* (seq, C) */
    const float *class_emb;   /* (C) CLIP only */
    const float *pre_ln_w, *pre_ln_b;   /* (C) CLIP only ("pre_layrnorm") */
    oc_vit_layer *layers;     /* (layers) */
    const float *post_ln_w, *post_ln_b; /* (C) */
} oc_vit_weights;

/* Runs the encoder on one image.
 * pixels (channels, S, S) -> out (seq, C): the post-layernorm output (SigLIP), or, when
 * out_layer >= 0, the hidden state after that many encoder layers (CLIP: hidden_states
 * index out_layer, where 0 is the pre-layernorm embedding output). */
oc_status oc_vit_forward(oc_exec *ex, float *out, const oc_vit_config *c,
                         const oc_vit_weights *w, const float *pixels, int out_layer);
#endif
