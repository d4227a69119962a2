/* Forward and backward kernels for training. Outputs first, dimensions last, shapes in
 * the comments. Conventions:
 *  - parameter gradients (dw, db) always accumulate (+=);
 *  - activation gradients say in each comment whether they are overwritten (=) or
 *    accumulated (+=);
 *  - the forward passes are core/'s kernels (kernels.h), the same code inference runs;
 *    this file adds what training needs beside them: saved statistics, backward passes;
 *  - work runs on the exec's thread pool and matrix products count their FLOPs there;
 *    every result is the same bits on any thread count.
 * Every kernel has a plain scalar reference in tests/test_gradcheck.c through finite
 * differences. */
#ifndef OC_TRAIN_OPS_H
#define OC_TRAIN_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "ocellus.h"

/* Bump allocation of float arrays from one buffer; with base == NULL it only measures. */
typedef struct {
    float *base;
    size_t off;  /* floats used so far */
} oc_carver;

static inline float *oc_carve(oc_carver *c, size_t n) {
    float *p = c->base ? c->base + c->off : NULL;
    c->off += (n + 15) & ~(size_t)15; /* 64-byte steps keep rows aligned for SIMD */
    return p;
}

/* x (n) = 0, shared by the pool when large. */
void oc_t_zero(oc_exec *ex, float *x, size_t n);

/* out (T, OC) = inp (T, IC) @ w^T (OC, IC) + b (OC); b may be NULL. */
void oc_t_linear_fwd(oc_exec *ex, float *out, const float *inp, const float *w,
                     const float *b, size_t T, size_t IC, size_t OC);
/* dinp (T, IC) = dout (T, OC) @ w (OC, IC) + beta * dinp   (dinp may be NULL: skipped)
 * dw (OC, IC) += dout^T @ inp (T, IC);  db (OC) += sum over T of dout (db may be NULL) */
void oc_t_linear_bwd(oc_exec *ex, float *dinp, float beta, float *dw, float *db,
                     const float *dout, const float *inp, const float *w, size_t T,
                     size_t IC, size_t OC);

/* Forward norms: oc_layernorm and oc_rmsnorm with their statistics saved. */
/* dinp (T, C) +=; dw, db (C) += */
void oc_t_layernorm_bwd(oc_exec *ex, float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *w, size_t T, size_t C);

/* dinp (T, C) +=; dw (C) += of oc_rmsnorm */
void oc_t_rmsnorm_bwd(oc_exec *ex, float *dinp, float *dw, const float *dout, const float *inp,
                      const float *rstd, const float *w, size_t T, size_t C);

/* dinp (n) = dout * gelu_tanh'(inp) (the forward: oc_activate); dinp may equal dout. */
void oc_t_gelu_tanh_bwd(oc_exec *ex, float *dinp, const float *dout, const float *inp, size_t n);

/* dgate, dup (n) = (overwritten) for oc_swiglu; dgate may equal dout. */
void oc_t_swiglu_bwd(oc_exec *ex, float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n);

/* RoPE forward and backward: oc_rope_apply with sign +1 and -1. */

/* Packed sequences: sequence s is rows off[s] .. off[s+1] and its probabilities start
 * at att_off[s] (= H * sum of the earlier n^2); with off == NULL, n_seq sequences of n
 * rows each. */
typedef struct {
    size_t n_seq;
    const size_t *off, *att_off;   /* (n_seq + 1) each, or NULL */
    size_t n;                      /* the common length when off == NULL */
} oc_t_seqs;

/* Attention within each sequence, head h reading kv head h / (H / KVH):
 * y (rows, H*D) = softmax(q (rows, H*D) @ k^T (rows, KVH*D) / sqrt(D) [causal]) @ v
 * att: per sequence (H, n, n) probabilities, saved (zero above the diagonal when causal).
 * Each sequence is oc_attention's work. */
void oc_t_attention_fwd(oc_exec *ex, float *y, float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH, size_t D,
                        int causal);
/* dq (rows, H*D), dk, dv (rows, KVH*D) = (overwritten);
 * scratch: oc_t_attention_scratch(longest n) floats (n x n per thread). */
size_t oc_t_attention_scratch(const oc_exec *ex, size_t maxn);
void oc_t_attention_bwd(oc_exec *ex, float *dq, float *dk, float *dv, float *scratch,
                        const float *dy, const float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH,
                        size_t D);

/* Cross-entropy through the LM head, in chunks of rows so that the logits never exist
 * for all rows at once:
 *   logits (R, V) = x (R, E) @ w^T (V, E);  *loss_sum += sum_r (logsumexp - logit[y_r])
 * and, when dx != NULL, with g = scale * (softmax(logits) - onehot(y)):
 *   dx (R, E) = g @ w (overwritten);  dw (V, E) += g^T @ x
 * scratch: oc_t_ce_scratch(R, V) floats. */
size_t oc_t_ce_scratch(size_t R, size_t V);
void oc_t_lmhead_ce(oc_exec *ex, double *loss_sum, float *dx, float *dw, const float *x,
                    const int32_t *y, const float *w, size_t R, size_t E, size_t V,
                    float scale, float *scratch);
/* The same with a scale per row: row_loss (R) = each row's cross-entropy (overwritten;
 * may be NULL), and when dx != NULL, g_r = row_scale[r] * (softmax - onehot): the
 * gradient of sum_r row_scale[r] * loss_r (preference losses weigh each sequence's
 * log-probability by its own derivative). */
void oc_t_lmhead_ce_rows(oc_exec *ex, float *row_loss, float *dx, float *dw, const float *x,
                         const int32_t *y, const float *w, size_t R, size_t E, size_t V,
                         const float *row_scale, float *scratch);
#endif
