/* Math kernels for inference AND training. Outputs first, dimensions last; shapes in the
 * comments. One implementation of each: the forward passes of vision/, text/ and
 * fusion/ and the training passes of train/ call these (training adds the backward
 * passes in train/ops.c).
 *
 * Every kernel runs on an oc_exec: the thread pool of the session or trainer that calls
 * it, per-thread scratch that grows once and is reused, and a FLOP counter. The work of
 * a kernel is cut into tasks by the shapes alone and every output element is summed in
 * a fixed order, so the results are the same bits on any thread count.
 *
 * CPU dispatch (core/cpu.h) picks AVX-512, AVX2 or the plain C reference versions at run
 * time; tests compare each against the reference (oc_cpu_force). */
#ifndef OC_KERNELS_H
#define OC_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"
#include "pool.h"
#include "safetensors.h"

/* ---- execution context ----------------------------------------------------------- */

/* Kinds of per-thread scratch (each thread has one buffer of each kind). */
enum {
    OC_BUF_PACK_B,   /* GEMM: packed right operand */
    OC_BUF_ATTN,     /* attention: scores of a block of queries */
    OC_BUF_QUANT,    /* activations converted to BF16 / Q8_0 */
    OC_BUF_MODEL,    /* a model's activations for one forward call (thread 0 only) */
    OC_BUF_KINDS
};

typedef struct oc_exec_bufs oc_exec_bufs;

typedef struct {
    oc_pool *pool;            /* may be NULL: everything on the calling thread */
    oc_exec_bufs *bufs;       /* per-thread scratch, owned */
    int n_bufs;
} oc_exec;

/* pool may be NULL; the exec does not own it. Never fails: scratch is made on demand. */
void oc_exec_init(oc_exec *ex, oc_pool *pool);
void oc_exec_release(oc_exec *ex);
/* FLOPs counted since init (2*M*N*K per matrix product, attention included). */
double oc_exec_flops(const oc_exec *ex);
void oc_exec_add_flops(oc_exec *ex, int thread, double flops);
/* Thread t's buffer of a kind with room for n bytes (grown, contents not kept), 64-byte
 * aligned; NULL when out of memory (callers then take a path that needs none). */
void *oc_exec_buf(oc_exec *ex, int thread, int kind, size_t n);
/* Scratch bytes held (for benchmarks). */
size_t oc_exec_scratch_bytes(const oc_exec *ex);

/* ---- weights --------------------------------------------------------------------- */

/* Q8_0 (llama.cpp's block layout): blocks of 32 values, each an F16 scale d followed by
 * 32 int8 q; value = d * q. Rows are whole blocks. */
#define OC_Q8_BLOCK 32
#define OC_Q8_BYTES 34

/* A weight matrix (rows, cols) = (out_features, in_features), row-major. dtype F32, F16,
 * BF16 or OC_DT_Q8_0. data points into a mapped file or into memory owned elsewhere.
 * With bf16_products, a BF16 weight multiplies activations rounded to BF16 (AVX512-BF16
 * dot products, as llama.cpp's BF16 does); without, every weight is computed in F32. */
typedef struct {
    const void *data;
    oc_dtype dtype;
    int64_t rows, cols;
    int bf16_products;
} oc_weight;

/* dst (n / 32 blocks of OC_Q8_BYTES) = src (n) in Q8_0, n a multiple of 32, as llama.cpp
 * quantizes: d = max|x| / 127 (stored as F16), q = round(x / d). */
void oc_quantize_q8_0(uint8_t *dst, const float *src, size_t n);
/* dst (n) = src (n) rounded to BF16 (nearest even). */
void oc_convert_bf16(uint16_t *dst, const float *src, size_t n);

/* Bytes of one row of w. */
size_t oc_weight_row_bytes(const oc_weight *w);
/* Row r of w as floats: out (cols). */
void oc_weight_row(float *out, const oc_weight *w, size_t r);

/* out (T, OC) = inp (T, IC) @ w^T (OC, IC) + bias (OC); bias may be NULL. One row
 * (decoding) reads the weight once (a GEMV); more go through the packed GEMM. */
void oc_matmul(oc_exec *ex, float *out, const float *inp, const oc_weight *w,
               const float *bias, size_t T);

/* C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major F32; op transposes when
 * ta / tb. beta == 0 never reads C. */
void oc_gemm(oc_exec *ex, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
             const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
             size_t ldc);

/* ---- elementwise ----------------------------------------------------------------- */

/* out (T, C) = layernorm(inp (T, C)) * w (C) + b (C); b may be NULL. out may equal inp.
 * mean, rstd (T): saved when not NULL (training). */
void oc_layernorm(oc_exec *ex, float *out, float *mean, float *rstd, const float *inp,
                  const float *w, const float *b, size_t T, size_t C, float eps);
/* out (T, C) = inp / rms(inp) * w (C), as transformers' LlamaRMSNorm; rstd (T) saved when
 * not NULL. out may equal inp. */
void oc_rmsnorm(oc_exec *ex, float *out, float *rstd, const float *inp, const float *w,
                size_t T, size_t C, float eps);

typedef enum { OC_ACT_GELU_TANH, OC_ACT_GELU, OC_ACT_QUICK_GELU, OC_ACT_SILU } oc_act;
/* out (n) = act(inp (n)); out may equal inp. */
void oc_activate(oc_exec *ex, float *out, const float *inp, size_t n, oc_act act);
/* out (n) = silu(gate (n)) * up (n); out may equal gate. */
void oc_swiglu(oc_exec *ex, float *out, const float *gate, const float *up, size_t n);
/* x (n) += y (n). */
void oc_add(oc_exec *ex, float *x, const float *y, size_t n);
/* out (n) = act(gate (n)) * up (n), the gated MLPs (SwiGLU with silu: oc_swiglu's bits;
 * GeGLU with gelu_tanh); out may equal gate. */
void oc_glu(oc_exec *ex, float *out, const float *gate, const float *up, size_t n, oc_act act);
/* x (n) *= a. */
void oc_scale(oc_exec *ex, float *x, float a, size_t n);
/* x (n) = tanh(x / cap) * cap (Gemma's logit soft-capping), in that order as torch does. */
void oc_softcap(oc_exec *ex, float *x, size_t n, float cap);
/* x (T, C) += b (C) on every row. */
void oc_add_rows(oc_exec *ex, float *x, const float *b, size_t T, size_t C);

/* ---- rotary position embedding ---------------------------------------------------- */

/* RoPE tables: cos, sin (n_pos, D/2) for positions pos0..pos0+n_pos-1, computed in
 * float32 as transformers does (inv_freq = 1 / theta^(2i/D)), with inv_freq rounded to
 * inv_freq_dtype (BF16/F16) first when the model was loaded in that dtype. */
void oc_rope_tables(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                    float theta, oc_dtype inv_freq_dtype);
/* inv (half) = 1 / theta^(2i/D) / factor (linear scaling; factor 1: none), computed in
 * float32 and then rounded to dtype (BF16/F16: the model's dtype, as above). The
 * frequencies oc_rope_tables uses, for tables of other positions. */
void oc_rope_inv_freq(float *inv, size_t half, size_t D, float theta, float factor,
                      oc_dtype dtype);
/* Tables of explicit positions: cos, sin (T, half), column i of row t at angle
 * pos[k*T + t] * inv[i], where column i belongs to section k (sections (n_sections) are
 * consecutive column counts summing to half). One section of positions 0..T-1 is plain
 * RoPE; Qwen2.5-VL's M-RoPE has three (temporal, height, width: mrope_section) over its
 * frequencies; its vision tower two (row, column) over the first half of the frequencies
 * repeated (inv holds them twice). */
void oc_rope_tables_pos(float *cos_t, float *sin_t, const float *inv, size_t half,
                        const int32_t *pos, size_t T, const uint32_t *sections,
                        size_t n_sections);
/* x (T, H, D) rotated in place with rotate_half pairing (i, i + D/2); sign -1 applies the
 * transpose (the backward pass). Row t of x uses row t of the tables. */
void oc_rope_apply(oc_exec *ex, float *x, const float *cos_t, const float *sin_t, size_t T,
                   size_t H, size_t D, float sign);

/* ---- layout ---------------------------------------------------------------------- */

/* cols (NT*g*g, ch*p*p) = the p x p patches of pixels (NT, ch, S, S), g = S / p, each
 * flattened in a conv kernel's (channel, row, col) order, patches in row-major order. */
void oc_unfold_patches(float *cols, const float *pixels, size_t NT, size_t ch, size_t S,
                       size_t p);
/* Idefics3Connector.pixel_shuffle on each tile: out (NT, M, C*s*s) from in (NT, N, C) on
 * a g x g grid (N = g*g, M = N / s^2). Output token (iy, jx) of the (g/s) x (g/s) grid
 * holds the s x s block of patches (iy*s + b, jx*s + a) at channels (b*s + a)*C. */
void oc_pixel_shuffle(float *out, const float *in, size_t NT, size_t g, size_t C, size_t s);
/* The inverse permutation: in (NT, N, C) = (overwritten) from out (NT, M, C*s*s). */
void oc_pixel_unshuffle(float *in, const float *out, size_t NT, size_t g, size_t C, size_t s);
/* Groups of rows moved by an index (n) of groups (a permutation of 0..n-1), each group
 * `width` floats: dst[i] = src[idx[i]], or with inverse dst[idx[i]] = src[i]. dst and src
 * must not overlap. Qwen2.5-VL's window order and its inverse. */
void oc_permute_groups(float *dst, const float *src, const size_t *idx, size_t n,
                       size_t width, int inverse);
/* nn.AvgPool2d(k, stride k) over a g x g grid of C channels: out ((g/k)^2, C) from in
 * (g*g, C), positions row-major; each output the sum of its k x k inputs in row-major
 * order divided by k*k (Gemma 3's projector). g must be a multiple of k. */
void oc_avg_pool_grid(float *out, const float *in, size_t g, size_t C, size_t k);

/* ---- softmax and attention --------------------------------------------------------- */

/* x (n) = softmax(x) in place. */
void oc_softmax(float *x, size_t n);

/* Scaled dot-product attention of T queries over S keys, head h reading kv head
 * h / (H / KVH):
 * out (T, H*D) = softmax(q (T, H*D) @ k^T (S, KVH*D) * scale [+ mask]) @ v (S, KVH*D)
 * q rows are H*D floats apart; k and v rows kv_stride floats apart; out rows H*D.
 * causal: query t sees keys 0..S-T+t; otherwise all S. Queries are taken in blocks and
 * the scores never exist for all T x S at once. probs (H, T, S), when not NULL, receives
 * the probabilities (zero where masked): training saves them. */
typedef struct {
    size_t T, S, H, KVH, D;
    size_t kv_stride;
    int causal;
    float scale;            /* 0: 1/sqrt(D) */
    /* Optional, (T) each: query t sees keys kv_lo[t] <= j < kv_hi[t] (0 <= lo < hi <= S)
     * instead of the causal or full range. Every mask the families need is one interval
     * per query: a sliding window, a causal range widened to a bidirectional span (Gemma
     * 3's image tokens), a window of a reordered image (Qwen2.5-VL's vision tower). */
    const size_t *kv_lo, *kv_hi;
} oc_attn_shape;

void oc_attention(oc_exec *ex, float *out, float *probs, const float *q, const float *k,
                  const float *v, const oc_attn_shape *sh);
#endif
