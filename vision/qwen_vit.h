/* Qwen2.5-VL's vision tower: patches of a variable-size image (Conv3d over repeated frames
 * as one matrix product), RMSNorm blocks with SwiGLU, 2D rotary position embedding,
 * attention within windows of the image (reordered so that windows are contiguous) except
 * in the full-attention blocks, and the patch merger (RMSNorm, groups of merge x merge
 * patches through a two-layer MLP), whose output is put back in the image's order. */
#ifndef OC_QWEN_VIT_H
#define OC_QWEN_VIT_H
#include <stdint.h>

#include "kernels.h"

#define OC_QVIT_MAX_DEPTH 1024

typedef struct {
    uint32_t hidden;        /* hidden_size */
    uint32_t depth;         /* depth */
    uint32_t heads;         /* num_heads */
    uint32_t intermediate;  /* intermediate_size */
    uint32_t patch;         /* patch_size */
    uint32_t temporal;      /* temporal_patch_size: frames per patch (an image is repeated) */
    uint32_t merge;         /* spatial_merge_size */
    uint32_t window;        /* window_size in pixels */
    uint32_t out_hidden;    /* out_hidden_size: the text model's width */
    uint32_t channels;      /* in_channels ("in_chans" in older configs) */
    float rope_theta;       /* rope_parameters.rope_theta (10000) */
    oc_dtype rope_dtype;    /* the model's dtype: RoPE frequencies rounded to it */
    oc_act act;             /* hidden_act (silu) */
    uint8_t full[OC_QVIT_MAX_DEPTH]; /* block b attends over the whole image
                                        (fullatt_block_indexes) */
} oc_qvit_config;

/* Values per patch: channels * temporal * patch * patch (1176 for the published models). */
static inline uint32_t oc_qvit_patch_dim(const oc_qvit_config *c) {
    return c->channels * c->temporal * c->patch * c->patch;
}

typedef struct {
    const float *norm1, *norm2;  /* (C) RMSNorm, eps 1e-6 */
    oc_weight q, k, v;           /* (C, C): the rows of the fused qkv (3C, C) */
    const float *q_b, *k_b, *v_b;/* (C) */
    oc_weight proj;              /* (C, C) */
    const float *proj_b;         /* (C) */
    oc_weight gate, up;          /* (I, C) */
    const float *gate_b, *up_b;  /* (I) */
    oc_weight down;              /* (C, I) */
    const float *down_b;         /* (C) */
} oc_qvit_block;

typedef struct {
    oc_weight patch_w;           /* (C, channels*temporal*patch*patch): Conv3d flattened */
    oc_qvit_block *blocks;       /* (depth) */
    const float *merger_norm;    /* (C) ln_q */
    oc_weight mlp0;              /* (C*m*m, C*m*m) */
    const float *mlp0_b;         /* (C*m*m) */
    oc_weight mlp2;              /* (out_hidden, C*m*m) */
    const float *mlp2_b;         /* (out_hidden) */
} oc_qvit_weights;

/* Bytes of scratch oc_qvit_forward takes from OC_BUF_MODEL for a grid_h x grid_w image. */
size_t oc_qvit_scratch_bytes(const oc_qvit_config *c, uint32_t grid_h, uint32_t grid_w);

/* out (grid_h*grid_w / m^2, out_hidden) = the merged features of one image, rows in the
 * order of its merged patches (row-major over the (grid_h/m) x (grid_w/m) grid), from
 * pixels (grid_h*grid_w, patch_dim): the processor's flattened patches, grouped m x m.
 * grid_h and grid_w are multiples of m. */
oc_status oc_qvit_forward(oc_exec *ex, float *out, const oc_qvit_config *c,
                          const oc_qvit_weights *w, const float *pixels, uint32_t grid_h,
                          uint32_t grid_w);
#endif
