/* Forward and backward kernels for training. Outputs first, dimensions last, shapes in
 * the comments. Conventions:
 *  - parameter gradients (dw, db) always accumulate (+=);
 *  - activation gradients say in each comment whether they are overwritten (=) or
 *    accumulated (+=);
 *  - matrix products go through OpenBLAS sgemm and are counted in *flops (2*M*N*K each);
 *    sgemm is entered from OpenMP threads only while OpenBLAS is single-threaded.
 * Every kernel has a plain scalar reference in tests/test_gradcheck.c through finite
 * differences. */
#ifndef OC_TRAIN_OPS_H
#define OC_TRAIN_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"

/* Loops over more elements than this are shared by the OpenMP team; smaller ones run
 * on the calling thread (a team costs more than it saves there, and its idle threads
 * spin). */
#define OC_T_PAR_ELEMS 65536

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

/* The trainer runs with OpenBLAS single-threaded and splits work over OpenMP threads
 * itself (see ops.c); begin returns the previous OpenBLAS thread count for end. */
int oc_t_threads_begin(void);
void oc_t_threads_end(int prev);
/* The most OpenMP threads a team may have (sizes per-thread scratch). */
size_t oc_t_team_max(void);

/* x (n) = 0, shared by the team when large. */
void oc_t_zero(float *x, size_t n);

/* C (M, N) = alpha * op(A) @ op(B) + beta * C, row-major; counts 2*M*N*K flops. Rows of
 * C are split over the OpenMP threads when the product is large. */
void oc_t_gemm(double *flops, int trans_a, int trans_b, size_t M, size_t N, size_t K,
               float alpha, const float *A, size_t lda, const float *B, size_t ldb,
               float beta, float *C, size_t ldc);

/* out (T, OC) = inp (T, IC) @ w^T (OC, IC) + b (OC); b may be NULL. */
void oc_t_linear_fwd(double *flops, float *out, const float *inp, const float *w,
                     const float *b, size_t T, size_t IC, size_t OC);
/* dinp (T, IC) = dout (T, OC) @ w (OC, IC) + beta * dinp   (dinp may be NULL: skipped)
 * dw (OC, IC) += dout^T @ inp (T, IC);  db (OC) += sum over T of dout (db may be NULL) */
void oc_t_linear_bwd(double *flops, float *dinp, float beta, float *dw, float *db,
                     const float *dout, const float *inp, const float *w, size_t T,
                     size_t IC, size_t OC);

/* out (T, C) = (inp - mean) * rstd * w (C) + b (C); mean, rstd (T) saved. */
void oc_t_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                        const float *w, const float *b, size_t T, size_t C, float eps);
/* dinp (T, C) +=; dw, db (C) += */
void oc_t_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *w, size_t T, size_t C);

/* out (T, C) = w (C) * (inp * rstd), rstd = 1/sqrt(mean(inp^2) + eps) (T) saved:
 * transformers' LlamaRMSNorm in float32. */
void oc_t_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, size_t T,
                      size_t C, float eps);
/* dinp (T, C) +=; dw (C) += */
void oc_t_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *rstd, const float *w, size_t T, size_t C);

/* out (n) = gelu_tanh(inp (n)) */
void oc_t_gelu_tanh_fwd(float *out, const float *inp, size_t n);
/* dinp (n) = dout * gelu_tanh'(inp); dinp may equal dout. */
void oc_t_gelu_tanh_bwd(float *dinp, const float *dout, const float *inp, size_t n);

/* out (n) = silu(gate) * up */
void oc_t_swiglu_fwd(float *out, const float *gate, const float *up, size_t n);
/* dgate, dup (n) = (overwritten); dgate may equal dout. */
void oc_t_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n);

/* x (T, H, D) rotated in place for positions 0..T-1 (rotate_half pairing i, i + D/2);
 * cos_t, sin_t (T, D/2) from oc_rope_tables. */
void oc_t_rope_fwd(float *x, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D);
/* dx (T, H, D) = R^T dx in place: the gradient through the rotation. */
void oc_t_rope_bwd(float *dx, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D);

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
 * Sequences and KV groups are shared by the OpenMP team. */
void oc_t_attention_fwd(double *flops, float *y, float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH, size_t D,
                        int causal);
/* dq (rows, H*D), dk, dv (rows, KVH*D) = (overwritten);
 * scratch: oc_t_attention_scratch(longest n) floats (n x n per thread). */
size_t oc_t_attention_scratch(size_t maxn);
void oc_t_attention_bwd(double *flops, float *dq, float *dk, float *dv, float *scratch,
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
void oc_t_lmhead_ce(double *flops, double *loss_sum, float *dx, float *dw, const float *x,
                    const int32_t *y, const float *w, size_t R, size_t E, size_t V,
                    float scale, float *scratch);
#endif
