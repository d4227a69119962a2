/* Llama decoder for training: RMSNorm, causal grouped-query attention with RoPE, SwiGLU.
 * The sequences of a micro-batch are packed one after another into T rows; the linear
 * layers see all T rows at once, attention and RoPE positions restart per sequence.
 *
 * Shapes: T packed tokens, E hidden, H/KVH heads, D head dim, HD = H*D, KD = KVH*D,
 * F intermediate, L layers, n_s the length of sequence s, A = sum_s H*n_s^2. */
#ifndef OC_LLAMA_TRAIN_H
#define OC_LLAMA_TRAIN_H
#include "ops.h"
#include "params.h"

typedef struct {
    size_t T, A, maxn;
    float *res;                 /* (L+1, T, E) residual stream; res[0] the input */
    float *rn1, *rstd1;         /* (L, T, E), (L, T) input_layernorm */
    float *q;                   /* (L, T, HD) after RoPE */
    float *k, *v;               /* (L, T, KD), k after RoPE */
    float *att;                 /* (L, A) attention probabilities */
    float *atty;                /* (L, T, HD) attention output before o_proj */
    float *x1;                  /* (L, T, E) residual after attention */
    float *rn2, *rstd2;         /* (L, T, E), (L, T) post_attention_layernorm */
    float *gate, *up, *act;     /* (L, T, F) */
    float *fin, *fin_rstd;      /* (T, E), (T) final norm */
    float *cos_t, *sin_t;       /* (maxn, D/2) RoPE tables */
} oc_llama_acts;

/* A = sum of H * n_s^2 over the sequences. */
void oc_llama_acts_carve(oc_llama_acts *a, oc_carver *c, const oc_llama_config *cfg,
                         size_t T, size_t A, size_t maxn);
size_t oc_llama_scratch_size(const oc_exec *ex, const oc_llama_config *cfg, size_t T,
                              size_t maxn);

/* x (T, E) input embeddings -> a->fin (T, E); sq: the packed sequences (their att_off
 * must match a->att's layout: H * n^2 per sequence, in order). */
void oc_llama_train_forward(oc_exec *ex, oc_llama_acts *a, const oc_llama_config *cfg,
                            const oc_tp_tensors *p, const float *x, const oc_t_seqs *sq);
/* dfin (T, E): gradient of a->fin. dx (T, E) = (overwritten) gradient of the input.
 * Parameter gradients accumulate into g. */
void oc_llama_train_backward(oc_exec *ex, const oc_llama_acts *a,
                             const oc_llama_config *cfg, const oc_tp_tensors *p,
                             oc_tp_tensors *g, const float *dfin, float *dx,
                             const oc_t_seqs *sq, float *scratch);
#endif
