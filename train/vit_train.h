/* SigLIP-style vision tower for training (SmolVLM): patch embedding as a matmul on
 * unfolded patches, learned position embeddings, pre-LN encoder layers (non-causal
 * multi-head attention, gelu_tanh MLP), post-layernorm. All tiles of a micro-batch are
 * packed into one (NT*N, C) matrix so that the linear layers are single large sgemms;
 * attention runs per tile.
 *
 * Shapes: NT tiles, N = (S/P)^2 patches per tile, K = 3*P*P, C hidden, I intermediate,
 * H heads, D = C/H, L layers, T = NT*N. */
#ifndef OC_VIT_TRAIN_H
#define OC_VIT_TRAIN_H
#include "ops.h"
#include "params.h"

/* Saved activations (pointers into one buffer). */
typedef struct {
    size_t NT;
    float *patches;                    /* (T, K) unfolded pixels */
    float *res;                        /* (L+1, T, C) residual stream; res[0] embeddings */
    float *ln1, *ln1_mean, *ln1_rstd;  /* (L, T, C), (L, T), (L, T) */
    float *q, *k, *v;                  /* (L, T, C) */
    float *att;                        /* (L, NT, H, N, N) attention probabilities */
    float *atty;                       /* (L, T, C) attention output before out_proj */
    float *x1;                         /* (L, T, C) residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;  /* (L, T, C), (L, T), (L, T) */
    float *h, *a;                      /* (L, T, I) fc1 output, its gelu */
    float *out, *out_mean, *out_rstd;  /* (T, C), (T), (T) post-layernorm output */
} oc_vit_acts;

/* Floats needed for the activations of NT tiles (a == NULL) or carve them from c. */
void oc_vit_acts_carve(oc_vit_acts *a, oc_carver *c, const oc_vit_config *cfg, size_t NT);
/* Floats of scratch the backward pass needs for NT tiles. */
size_t oc_vit_scratch_size(const oc_exec *ex, const oc_vit_config *cfg, size_t NT);

/* pixels (NT, 3, S, S) -> a->out (T, C). */
void oc_vit_train_forward(oc_exec *ex, oc_vit_acts *a, const oc_vit_config *cfg,
                          const oc_tp_tensors *p, const float *pixels, size_t NT);
/* dout (T, C): gradient of a->out (destroyed). Parameter gradients accumulate into g. */
void oc_vit_train_backward(oc_exec *ex, const oc_vit_acts *a, const oc_vit_config *cfg,
                           const oc_tp_tensors *p, oc_tp_tensors *g, float *dout, size_t NT,
                           float *scratch);
#endif
