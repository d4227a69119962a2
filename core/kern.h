/* The per-ISA building blocks behind kernels.h: GEMM microkernels and their packing
 * formats, GEMV rows, vector loops. kern_ref.c holds the plain C versions (the reference
 * every other is tested against), kern_avx2.c and kern_avx512.c the SIMD ones, compiled
 * with their own target flags and only called when the CPU has them. */
#ifndef OC_KERN_H
#define OC_KERN_H
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "kernels.h"

/* How a microkernel stores its tile acc (MR, NR): */
enum {
    OC_UK_SET = 0,   /* c = alpha * acc */
    OC_UK_SCALE = 1, /* c = alpha * acc + beta * c */
    OC_UK_ADD = 2,   /* c += alpha * acc */
};

/* F32 microkernel: acc (MR, NR) = sum over k < kc of A(i, k) * bp[k*NR + j], with
 * A(i, k) = a[i*lda + k*astep]; c (MR rows, ldc apart) stored by mode. bp is a B
 * micro-panel (k-major, NR columns). A is either a packed micro-panel (lda 1, astep MR)
 * or MR rows of a row-major matrix read in place (lda its row stride, astep 1). */
typedef void (*oc_sgemm_ukr)(size_t kc, const float *a, size_t lda, size_t astep,
                             const float *bp, float *c, size_t ldc, float alpha, float beta,
                             int mode);

/* Packs columns j0..j0+n (n <= NR, zero-padded to NR) of op(B) for k0..k0+kc into a B
 * micro-panel, from B stored (N, K) row-major ("transposed", like a weight) in dtype
 * F32, F16, BF16 (ldb elements apart) or Q8_0 (whole rows of blocks; ldb ignored, k0
 * and kc multiples of 32): bp[k*NR + j] = B[j0 + j][k0 + k] as a float. */
typedef void (*oc_pack_bt_fn)(float *bp, const void *B, oc_dtype dt, size_t ldb, size_t j0,
                              size_t n, size_t k0, size_t kc, size_t NR);
/* The same from B stored (K, N) (not transposed), F32: bp[k*NR + j] = B[k][j0 + j]. */
typedef void (*oc_pack_bn_fn)(float *bp, const float *B, size_t ldb, size_t j0, size_t n,
                              size_t K, size_t NR);

/* Decode-sized products reading a weight once: for rows r in [r0, r1) of w (K columns,
 * dtype F32, F16, BF16 with rows ldw elements apart, or Q8_0 with rows of whole blocks
 * back to back), out[t*ldo + r] = dot(w row r, x + t*ldx) for t < T (T <= OC_GEMV_MAX_T),
 * in F32: Q8_0 quants are converted, not the activations (decoding is bound by memory, so
 * the exact products cost nothing). Attention's scores use it too, on K's rows. */
#define OC_GEMV_MAX_T 4
typedef void (*oc_gemv_fn)(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                           const void *w, oc_dtype dt, size_t ldw, size_t K, size_t r0,
                           size_t r1);

/* Q8_0 of activations, as llama.cpp quantizes them for its Q8_0 products: per block of 32,
 * xs = max|x| / 127, xq = round(x / xs) (xq: K bytes, xs: K/32 scales). */
typedef void (*oc_quant_q8_fn)(int8_t *xq, float *xs, const float *x, size_t K);

/* Q8_0 GEMM microkernel (gemm_q8.c): c (q8_mr, OC_Q8_PANEL) = sum over nb blocks of
 * scale_a * scale_w * (int32 dot of a row's block (s8) and the panel's column block
 * (u8 = q + 128) - asum); a rows lda bytes apart; as, asum (rows, ls apart); c rows ldc
 * apart, overwritten. */
#define OC_Q8_PANEL 32
typedef void (*oc_q8_ukr)(size_t nb, const int8_t *a, size_t lda, const float *as,
                          const int32_t *asum, size_t ls, const uint8_t *bp, float *c,
                          size_t ldc);

typedef struct {
    oc_isa isa;
    size_t mr, nr;            /* F32 microkernel tile */
    size_t q8_mr;             /* rows of the Q8_0 microkernel */
    oc_q8_ukr q8_gemm;        /* NULL without AVX512-VNNI */
    oc_sgemm_ukr sgemm;
    /* The same tile with A and B holding BF16 pairs (k = 2p, 2p + 1) in each 32-bit
     * element and kc counting pairs (vdpbf16ps); NULL without AVX512-BF16. */
    oc_sgemm_ukr sgemm_bf16;
    /* dst (n / 2 pairs) = src (n floats, n even) rounded to BF16 pairs */
    void (*to_bf16_pairs)(uint32_t *dst, const float *src, size_t n);
    oc_pack_bt_fn pack_bt;
    oc_pack_bn_fn pack_bn;
    oc_gemv_fn gemv;
    oc_quant_q8_fn quant_q8;
    /* dot (n) and y += a * x (n), for attention's per-query paths */
    float (*dot)(const float *a, const float *b, size_t n);
    void (*axpy)(float *y, float a, const float *x, size_t n);
    /* x (n) = exp(x - m); returns the sum */
    float (*exp_sum)(float *x, size_t n, float m);
    /* decoding attention: out (nh, D) = p (nh, n) @ v (n, D) for nh <= 4 heads; rows of out
     * ldo apart, of p ldp apart, of v ldv apart; out overwritten */
    void (*attn_pv)(float *out, size_t ldo, const float *p, size_t ldp, size_t nh,
                    const float *v, size_t ldv, size_t n, size_t D);
    /* max of x (n >= 1); x (n) *= a */
    float (*vmax)(const float *x, size_t n);
    void (*scale)(float *x, float a, size_t n);
    /* out (n) = act(inp) for an oc_act; out (n) = silu(g) * u */
    void (*act)(float *out, const float *inp, size_t n, int act);
    void (*swiglu)(float *out, const float *g, const float *u, size_t n);
    /* backward passes: dx (n) = dy * gelu_tanh'(x) (dx may equal dy); dg, du (n) of
     * silu(g) * u (dg may equal dy) */
    void (*gelu_tanh_bwd)(float *dx, const float *dy, const float *x, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *dy, const float *g, const float *u,
                       size_t n);
    /* benchmarks: iters rounds of independent FMAs held in registers (returns the FLOPs
     * done and a value that depends on them); the sum of x (n), read once */
    double (*fma_burn)(size_t iters, float *sink);
    float (*read_sum)(const float *x, size_t n);
} oc_kern;

/* Largest microkernel tile and k run oc_ukr_tile takes. */
#define OC_UKR_MAX_MR 8
#define OC_UKR_MAX_NR 64
#define OC_UKR_MAX_KC 1024

/* One microkernel call for an m x n (<= MR x NR) block of C, kc <= OC_UKR_MAX_KC: edge
 * blocks go through a full tile on the stack, and A rows read in place (astep 1) past m
 * are never read. Arguments as oc_sgemm_ukr. */
void oc_ukr_tile(const oc_kern *kr, oc_sgemm_ukr ukr, size_t kc, const float *a, size_t lda,
                 size_t astep, size_t m, const float *bp, size_t n, float *c, size_t ldc,
                 float alpha, float beta, int mode);

/* One B micro-panel over all K: bp[k*NR + jj] = op(B)[k][j + jj] for jj < n (<= NR),
 * zero past n; op(B) is (K, N) = B^T when tb (B stored (N, K), ldb apart). */
void oc_pack_b_panel(const oc_kern *kr, float *bp, const float *B, size_t ldb, int tb,
                     size_t K, size_t j, size_t n);

/* C (M, N) = alpha * A (M, K) @ W^T (W BF16 (N, K), A rounded to BF16) + beta * C on AMX
 * tiles; 0 (nothing done) without AMX or scratch. */
int oc_gemm_bf16_amx(oc_exec *ex, int thread, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const uint16_t *W, float beta, float *C,
                     size_t ldc);

/* out (T, OC) = inp (T, IC) @ w^T for Q8_0 weights through the VNNI GEMM; 0 (nothing
 * done) when the CPU has no VNNI or scratch cannot be had. */
int oc_gemm_q8(oc_exec *ex, int thread, float *out, const float *inp, const oc_weight *w,
               size_t T);

/* out (T, OC) = inp (T, IC) @ w^T through the packed GEMM (F32, F16, BF16 weights; with
 * w->bf16_products, BF16 dot products where the CPU has them). */
void oc_gemm_weight(oc_exec *ex, float *out, const float *inp, const oc_weight *w, size_t T);

/* The table for the level oc_cpu() reports. */
const oc_kern *oc_kern_get(void);

/* Each ISA's table (NULL where not compiled). */
extern const oc_kern oc_kern_ref;
extern const oc_kern oc_kern_avx2;
extern const oc_kern oc_kern_avx512;
#endif
