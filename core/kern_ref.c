/* The plain C reference versions of the per-ISA kernels (kern.h): what the SIMD versions
 * are tested against, and what runs on CPUs without AVX2 (and under valgrind). */
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"
#include "vecmath.h"

#define REF_MR 4
#define REF_NR 8

static void sgemm_ref(size_t kc, const float *a, size_t lda, size_t astep, const float *bp,
                      float *c, size_t ldc, float alpha, float beta, int mode) {
    float acc[REF_MR][REF_NR] = {{0}};
    for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < REF_MR; i++)
            for (size_t j = 0; j < REF_NR; j++)
                acc[i][j] += a[i * lda + k * astep] * bp[k * REF_NR + j];
    for (size_t i = 0; i < REF_MR; i++)
        for (size_t j = 0; j < REF_NR; j++) {
            float *o = c + i * ldc + j;
            float v = alpha * acc[i][j];
            *o = mode == OC_UK_SET ? v : mode == OC_UK_SCALE ? v + beta * *o : *o + v;
        }
}

static void to_bf16_pairs_ref(uint32_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i += 2)
        dst[i / 2] = (uint32_t)oc_f32_to_bf16(src[i]) | (uint32_t)oc_f32_to_bf16(src[i + 1]) << 16;
}

/* Element (r, k) of a weight of K columns in any format, rows ld elements apart (Q8_0:
 * whole rows of blocks). */
static float weight_at(const void *B, oc_dtype dt, size_t ld, size_t K, size_t r, size_t k) {
    switch (dt) {
    case OC_DT_BF16:
        return oc_bf16_to_f32(((const uint16_t *)B)[r * ld + k]);
    case OC_DT_F16:
        return oc_f16_to_f32(((const uint16_t *)B)[r * ld + k]);
    case OC_DT_Q8_0: {
        const uint8_t *blk = (const uint8_t *)B +
                             (r * (K / OC_Q8_BLOCK) + k / OC_Q8_BLOCK) * OC_Q8_BYTES;
        uint16_t d;
        memcpy(&d, blk, 2);
        return oc_f16_to_f32(d) * (float)(int8_t)blk[2 + k % OC_Q8_BLOCK];
    }
    default:
        return ((const float *)B)[r * ld + k];
    }
}

static void pack_bt_ref(float *bp, const void *B, oc_dtype dt, size_t ldb, size_t j0,
                        size_t n, size_t k0, size_t kc, size_t NR) {
    for (size_t k = 0; k < kc; k++)
        for (size_t j = 0; j < NR; j++)
            bp[k * NR + j] = j < n ? weight_at(B, dt, ldb, ldb, j0 + j, k0 + k) : 0.0f;
}

static void pack_bn_ref(float *bp, const float *B, size_t ldb, size_t j0, size_t n,
                        size_t K, size_t NR) {
    for (size_t k = 0; k < K; k++)
        for (size_t j = 0; j < NR; j++)
            bp[k * NR + j] = j < n ? B[k * ldb + j0 + j] : 0.0f;
}

static void gemv_ref(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                     const void *w, oc_dtype dt, size_t ldw, size_t K, size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++)
        for (size_t t = 0; t < T; t++) {
            float s = 0;
            for (size_t k = 0; k < K; k++)
                s += weight_at(w, dt, ldw, K, r, k) * x[t * ldx + k];
            out[t * ldo + r] = s;
        }
}

/* Q8_0 of activations as llama.cpp quantizes them: d = max|x| / 127, q = round(x / d). */
static void quant_q8_ref(int8_t *xq, float *xs, const float *x, size_t K) {
    for (size_t b = 0; b < K / OC_Q8_BLOCK; b++) {
        const float *v = x + b * OC_Q8_BLOCK;
        float amax = 0;
        for (size_t i = 0; i < OC_Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        xs[b] = d;
        for (size_t i = 0; i < OC_Q8_BLOCK; i++)
            xq[b * OC_Q8_BLOCK + i] = (int8_t)lrintf(v[i] * id);
    }
}

static float dot_ref(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_ref(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float exp_sum_ref(float *x, size_t n, float m) {
    float s = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void attn_pv_ref(float *out, size_t ldo, const float *p, size_t ldp, size_t nh,
                        const float *v, size_t ldv, size_t n, size_t D) {
    for (size_t h = 0; h < nh; h++)
        for (size_t d = 0; d < D; d++) {
            float s = 0;
            for (size_t j = 0; j < n; j++)
                s += p[h * ldp + j] * v[j * ldv + d];
            out[h * ldo + d] = s;
        }
}

static float vmax_ref(const float *x, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static void scale_ref(float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] *= a;
}

static void act_ref(float *out, const float *inp, size_t n, int act) {
    for (size_t i = 0; i < n; i++) {
        float v = inp[i];
        switch (act) {
        case OC_ACT_GELU_TANH:
            out[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            break;
        case OC_ACT_GELU:
            out[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
            break;
        case OC_ACT_QUICK_GELU:
            out[i] = v / (1.0f + expf(-1.702f * v));
            break;
        default:
            out[i] = v / (1.0f + expf(-v));
            break;
        }
    }
}

static void swiglu_ref(float *out, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* tanh through one expf (libm's tanhf is several times slower); absolute error ~1e-7,
 * which is what matters next to the 1 it is added to. */
static inline float tanh_exp(float u) {
    float e = expf(-2.0f * fabsf(u)), t = (1.0f - e) / (1.0f + e);
    return copysignf(t, u);
}

static void gelu_tanh_bwd_ref(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float th = tanh_exp(OC_GELU_K0 * (v + OC_GELU_K1 * v * v * v));
        float d = 0.5f * (1.0f + th) +
                  0.5f * v * (1.0f - th * th) * OC_GELU_K0 * (1.0f + 3.0f * OC_GELU_K1 * v * v);
        dx[i] = dy[i] * d;
    }
}

static void swiglu_bwd_ref(float *dg, float *du, const float *dy, const float *g,
                           const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], ui = u[i], d = dy[i];
        float sg = 1.0f / (1.0f + expf(-gi));
        du[i] = d * gi * sg;
        dg[i] = d * ui * sg * (1.0f + gi * (1.0f - sg));
    }
}

static double fma_burn_ref(size_t iters, float *sink) {
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (size_t n = 0; n < iters; n++)
        for (int i = 0; i < 8; i++)
            a[i] = fmaf(a[i], 0.999999f, 1e-7f);
    *sink = a[0] + a[7];
    return (double)iters * 8 * 2;
}

static float read_sum_ref(const float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

const oc_kern oc_kern_ref = {
    .isa = OC_ISA_SCALAR,
    .mr = REF_MR,
    .nr = REF_NR,
    .sgemm = sgemm_ref,
    .to_bf16_pairs = to_bf16_pairs_ref,
    .pack_bt = pack_bt_ref,
    .pack_bn = pack_bn_ref,
    .gemv = gemv_ref,
    .quant_q8 = quant_q8_ref,
    .dot = dot_ref,
    .axpy = axpy_ref,
    .exp_sum = exp_sum_ref,
    .attn_pv = attn_pv_ref,
    .vmax = vmax_ref,
    .scale = scale_ref,
    .act = act_ref,
    .swiglu = swiglu_ref,
    .gelu_tanh_bwd = gelu_tanh_bwd_ref,
    .swiglu_bwd = swiglu_bwd_ref,
    .fma_burn = fma_burn_ref,
    .read_sum = read_sum_ref,
};
