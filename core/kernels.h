/* Math kernels for the forward passes. Outputs first, dimensions last; shapes in the
 * comments. Matrix products go through OpenBLAS; weights may be F32, F16 or BF16 and are
 * computed in F32. */
#ifndef OC_KERNELS_H
#define OC_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"
#include "safetensors.h"

/* A weight matrix (rows, cols) = (out_features, in_features), row-major, any float dtype.
 * data points into a mapped file or into memory owned elsewhere. */
typedef struct {
    const void *data;
    oc_dtype dtype;
    int64_t rows, cols;
} oc_weight;

/* out (T, OC) = inp (T, IC) @ w^T (OC, IC) + bias (OC); bias may be NULL. */
oc_status oc_matmul(float *out, const float *inp, const oc_weight *w, const float *bias,
                    size_t T);
/* Tests: 1 makes the kernels use their plain reference versions. */
void oc_kernels_force_reference(int on);
/* Row r of w as floats: out (cols). */
void oc_weight_row(float *out, const oc_weight *w, size_t r);

/* out (T, C) = layernorm(inp (T, C)) * w (C) + b (C). out may equal inp. */
void oc_layernorm(float *out, const float *inp, const float *w, const float *b, size_t T,
                  size_t C, float eps);
/* out (T, C) = inp / rms(inp) * w (C), as transformers' LlamaRMSNorm. out may equal inp. */
void oc_rmsnorm(float *out, const float *inp, const float *w, size_t T, size_t C, float eps);

typedef enum { OC_ACT_GELU_TANH, OC_ACT_GELU, OC_ACT_QUICK_GELU, OC_ACT_SILU } oc_act;
/* x (n) = act(x) in place. */
void oc_activate(float *x, size_t n, oc_act act);
/* gate (n) = silu(gate) * up (n). */
void oc_swiglu(float *gate, const float *up, size_t n);
/* x (n) += y (n). */
void oc_add(float *x, const float *y, size_t n);

/* RoPE tables: cos, sin (n_pos, D/2) for positions pos0..pos0+n_pos-1, computed in
 * float32 as transformers does (inv_freq = 1 / theta^(2i/D)). */
void oc_rope_tables(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                    float theta);
/* Same with inv_freq rounded to a model dtype (BF16/F16) first, as transformers does for
 * a model loaded in that dtype. */
void oc_rope_tables_dt(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                       float theta, oc_dtype inv_freq_dtype);
/* x (T, H, D) rotated in place with rotate_half pairing (i, i + D/2). */
void oc_rope_apply(float *x, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D);

/* Scaled dot-product attention.
 * out (T, H*D) = softmax(q (T, H*D) @ k^T (S, KVH*D) * scale [+ causal mask]) @ v (S, KVH*D)
 * with head h reading kv head h / (H / KVH). k and v rows are kv_stride floats apart.
 * causal: query t sees keys 0..past+t (past = S - T); otherwise all S keys. */
oc_status oc_attention(float *out, const float *q, const float *k, const float *v,
                       size_t kv_stride, size_t T, size_t S, size_t H, size_t KVH, size_t D,
                       int causal);

/* x (n) = softmax(x) in place. */
void oc_softmax(float *x, size_t n);
#endif
