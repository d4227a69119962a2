/* AVX2 + FMA + F16C kernels. Compiled with those target flags: only called after
 * oc_cpu() reported the level. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"
#include "vecmath.h"

#define MR 6
#define NR 16

/* acc (6, 16) in 12 registers: per k, 2 loads of B, 6 broadcasts of A, 12 FMAs. */
static void sgemm_6x16(size_t kc, const float *a, size_t lda, size_t astep, const float *bp,
                       float *c, size_t ldc, float alpha, float beta, int mode) {
    __m256 acc[MR][2];
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * lda);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        a += astep;
        bp += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 2; j++) {
            float *o = c + i * ldc + 8 * j;
            __m256 v = _mm256_mul_ps(va, acc[i][j]);
            if (mode == OC_UK_SCALE)
                v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(o), v);
            else if (mode == OC_UK_ADD)
                v = _mm256_add_ps(_mm256_loadu_ps(o), v);
            _mm256_storeu_ps(o, v);
        }
}

/* 8 values from p (F32, F16 or BF16) as floats. */
static inline __m256 load8(const void *p, oc_dtype dt) {
    if (dt == OC_DT_F32)
        return _mm256_loadu_ps(p);
    __m128i h = _mm_loadu_si128(p);
    if (dt == OC_DT_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static float to_f32(const void *p, oc_dtype dt, size_t i) {
    if (dt == OC_DT_F32)
        return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return dt == OC_DT_F16 ? _cvtsh_ss(h) : oc_bf16_to_f32(h);
}

static void pack_bt_avx2(float *bp, const void *B, oc_dtype dt, size_t ldb, size_t j0,
                         size_t n, size_t k0, size_t kc, size_t nr) {
    if (dt == OC_DT_Q8_0) { /* the quants as floats, by the reference (no VNNI: rare) */
        oc_kern_ref.pack_bt(bp, B, dt, ldb, j0, n, k0, kc, nr);
        return;
    }
    size_t es = dt == OC_DT_F32 ? 4 : 2;
    const char *base = (const char *)B;
    /* rows read in runs of 8 values, written down the panel's columns */
    for (size_t j = 0; j < nr; j++) {
        if (j >= n) {
            for (size_t k = 0; k < kc; k++)
                bp[k * nr + j] = 0.0f;
            continue;
        }
        const char *row = base + ((j0 + j) * ldb + k0) * es;
        size_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            float v[8];
            _mm256_storeu_ps(v, load8(row + k * es, dt));
            for (int i = 0; i < 8; i++)
                bp[(k + i) * nr + j] = v[i];
        }
        for (; k < kc; k++)
            bp[k * nr + j] = to_f32(row, dt, k);
    }
}

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Q8_0 rows, two at a time, 8 quants per step. */
static void gemv_q8_avx2(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                         const uint8_t *w, size_t K, size_t r0, size_t r1) {
    size_t nb = K / OC_Q8_BLOCK, rb = nb * OC_Q8_BYTES;
    for (size_t r = r0; r < r1; r += 2) {
        size_t nr = r1 - r < 2 ? 1 : 2;
        const uint8_t *row[2] = {w + r * rb, w + (r + nr - 1) * rb};
        __m256 acc[2][OC_GEMV_MAX_T];
        for (size_t i = 0; i < 2; i++)
            for (size_t t = 0; t < OC_GEMV_MAX_T; t++)
                acc[i][t] = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++)
            for (int q = 0; q < 4; q++) {
                __m256 wv[2];
                for (size_t i = 0; i < 2; i++) {
                    const uint8_t *blk = row[i] + b * OC_Q8_BYTES;
                    uint16_t dh;
                    memcpy(&dh, blk, 2);
                    __m128i v = _mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * q));
                    wv[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)),
                                          _mm256_set1_ps(_cvtsh_ss(dh)));
                }
                for (size_t t = 0; t < T; t++) {
                    __m256 xv = _mm256_loadu_ps(x + t * ldx + b * OC_Q8_BLOCK + 8 * q);
                    acc[0][t] = _mm256_fmadd_ps(wv[0], xv, acc[0][t]);
                    acc[1][t] = _mm256_fmadd_ps(wv[1], xv, acc[1][t]);
                }
            }
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < nr; i++)
                out[t * ldo + r + i] = hsum8(acc[i][t]);
    }
}

static void gemv_avx2(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                      const void *w, oc_dtype dt, size_t ldw, size_t K, size_t r0, size_t r1) {
    if (dt == OC_DT_Q8_0) {
        gemv_q8_avx2(out, ldo, x, ldx, T, w, K, r0, r1);
        return;
    }
    size_t es = dt == OC_DT_F32 ? 4 : 2;
    const char *wb = (const char *)w;
    for (size_t r = r0; r < r1; r += 2) {
        size_t nr = r1 - r < 2 ? 1 : 2;
        const char *row[2] = {wb + r * ldw * es, wb + (r + nr - 1) * ldw * es};
        __m256 acc[2][OC_GEMV_MAX_T];
        for (size_t i = 0; i < 2; i++)
            for (size_t t = 0; t < OC_GEMV_MAX_T; t++)
                acc[i][t] = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 8 <= K; k += 8) {
            __m256 w0 = load8(row[0] + k * es, dt), w1 = load8(row[1] + k * es, dt);
            for (size_t t = 0; t < T; t++) {
                __m256 xv = _mm256_loadu_ps(x + t * ldx + k);
                acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);
                acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);
            }
        }
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < nr; i++) {
                float s = hsum8(acc[i][t]);
                for (size_t kk = k; kk < K; kk++)
                    s += to_f32(row[i], dt, kk) * x[t * ldx + kk];
                out[t * ldo + r + i] = s;
            }
    }
}

static void quant_q8_avx2(int8_t *xq, float *xs, const float *x, size_t K) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < K / OC_Q8_BLOCK; b++) {
        const float *v = x + 32 * b;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++)
            a = _mm256_max_ps(a, _mm256_andnot_ps(sign, _mm256_loadu_ps(v + 8 * i)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float d = _mm_cvtss_f32(h) / 127.0f, id = d ? 1.0f / d : 0.0f;
        xs[b] = d;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 8 * i), vid));
        /* pack 32 int32 to 32 int8 in order */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(xq + 32 * b), p);
    }
}

static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum8(acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_avx2(float *y, float a, const float *x, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(OC_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(OC_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(OC_LN2_LO), r);
    __m256 p = _mm256_set1_ps(OC_EXP_C6);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(OC_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(OC_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(OC_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(OC_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^n through the exponent field: n is in [-127, 127] after the clamp */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

static inline __m256 act8(__m256 v, int act) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 sign = _mm256_set1_ps(-0.0f);
    switch (act) {
    case OC_ACT_GELU_TANH: {
        __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
        __m256 u = _mm256_mul_ps(_mm256_set1_ps(OC_GELU_K0),
                                 _mm256_fmadd_ps(_mm256_set1_ps(OC_GELU_K1), v3, v));
        __m256 e = exp8(_mm256_mul_ps(_mm256_andnot_ps(sign, u), _mm256_set1_ps(-2.0f)));
        __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        t = _mm256_or_ps(t, _mm256_and_ps(u, sign));
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t));
    }
    case OC_ACT_QUICK_GELU:
        return _mm256_mul_ps(v, sigmoid8(_mm256_mul_ps(_mm256_set1_ps(1.702f), v)));
    default:
        return _mm256_mul_ps(v, sigmoid8(v));
    }
}

static float exp_sum_avx2(float *x, size_t n, float m) {
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum8(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

/* 16 columns of V at a time (2 registers per head), the tail by the reference. */
static void attn_pv_avx2(float *out, size_t ldo, const float *p, size_t ldp, size_t nh,
                         const float *v, size_t ldv, size_t n, size_t D) {
    size_t d0 = 0;
    for (; d0 + 16 <= D; d0 += 16) {
        __m256 acc[4][2];
        for (int h = 0; h < 4; h++)
            acc[h][0] = acc[h][1] = _mm256_setzero_ps();
        for (size_t j = 0; j < n; j++) {
            const float *vj = v + j * ldv + d0;
            __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8);
            for (size_t h = 0; h < nh; h++) {
                __m256 ph = _mm256_set1_ps(p[h * ldp + j]);
                acc[h][0] = _mm256_fmadd_ps(ph, v0, acc[h][0]);
                acc[h][1] = _mm256_fmadd_ps(ph, v1, acc[h][1]);
            }
        }
        for (size_t h = 0; h < nh; h++) {
            _mm256_storeu_ps(out + h * ldo + d0, acc[h][0]);
            _mm256_storeu_ps(out + h * ldo + d0 + 8, acc[h][1]);
        }
    }
    if (d0 < D)
        oc_kern_ref.attn_pv(out + d0, ldo, p, ldp, nh, v + d0, ldv, n, D - d0);
}

static float vmax_avx2(const float *x, size_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

static void scale_avx2(float *x, float a, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        x[i] *= a;
}

static void act_avx2(float *out, const float *inp, size_t n, int act) {
    if (act == OC_ACT_GELU) {
        oc_kern_ref.act(out, inp, n, act);
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, act8(_mm256_loadu_ps(inp + i), act));
    if (i < n)
        oc_kern_ref.act(out + i, inp + i, n - i, act);
}

static void swiglu_avx2(float *out, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)),
                                                _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* gelu_tanh'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) K0 (1 + 3 K1 x^2), t = tanh(K0 (x + K1 x^3)) */
static void gelu_tanh_bwd_avx2(float *dx, const float *dy, const float *x, size_t n) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), k0 = _mm256_set1_ps(OC_GELU_K0),
                 k1 = _mm256_set1_ps(OC_GELU_K1), k13 = _mm256_set1_ps(3.0f * OC_GELU_K1),
                 sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
        __m256 u = _mm256_mul_ps(k0, _mm256_fmadd_ps(_mm256_mul_ps(k1, v2), v, v));
        __m256 e = exp8(_mm256_mul_ps(_mm256_andnot_ps(sign, u), _mm256_set1_ps(-2.0f)));
        __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
        t = _mm256_or_ps(t, _mm256_and_ps(u, sign));
        __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_fnmadd_ps(t, t, one)),
                              _mm256_mul_ps(k0, _mm256_fmadd_ps(k13, v2, one)),
                              _mm256_mul_ps(half, _mm256_add_ps(one, t)));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), d));
    }
    if (i < n)
        oc_kern_ref.gelu_tanh_bwd(dx + i, dy + i, x + i, n - i);
}

static void swiglu_bwd_avx2(float *dg, float *du, const float *dy, const float *g,
                           const float *u, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i), uv = _mm256_loadu_ps(u + i), d = _mm256_loadu_ps(dy + i);
        __m256 sg = sigmoid8(gv), dsg = _mm256_mul_ps(d, sg);
        _mm256_storeu_ps(du + i, _mm256_mul_ps(dsg, gv));
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(dsg, uv),
                                          _mm256_fmadd_ps(gv, _mm256_sub_ps(one, sg), one)));
    }
    if (i < n)
        oc_kern_ref.swiglu_bwd(dg + i, du + i, dy + i, g + i, u + i, n - i);
}

/* 12 chains of FMAs: enough in flight to fill every FMA unit. */
static double fma_burn_avx2(size_t iters, float *sink) {
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (size_t n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 acc0 = a[0];
    for (int i = 1; i < 12; i++)
        acc0 = _mm256_add_ps(acc0, a[i]);
    *sink = hsum8(acc0);
    return (double)iters * 12 * 8 * 2;
}

static float read_sum_avx2(const float *x, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 4 * 8 <= n; i += 4 * 8) {
        acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + i));
        acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(x + i + 8));
        acc2 = _mm256_add_ps(acc2, _mm256_loadu_ps(x + i + 2 * 8));
        acc3 = _mm256_add_ps(acc3, _mm256_loadu_ps(x + i + 3 * 8));
    }
    acc0 = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    float s = hsum8(acc0);
    for (; i < n; i++)
        s += x[i];
    return s;
}

const oc_kern oc_kern_avx2 = {
    .isa = OC_ISA_AVX2,
    .mr = MR,
    .nr = NR,
    .sgemm = sgemm_6x16,
    .to_bf16_pairs = NULL,
    .pack_bt = pack_bt_avx2,
    .pack_bn = NULL, /* the reference loop vectorizes well enough at this level */
    .gemv = gemv_avx2,
    .quant_q8 = quant_q8_avx2,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .exp_sum = exp_sum_avx2,
    .attn_pv = attn_pv_avx2,
    .vmax = vmax_avx2,
    .scale = scale_avx2,
    .act = act_avx2,
    .swiglu = swiglu_avx2,
    .gelu_tanh_bwd = gelu_tanh_bwd_avx2,
    .swiglu_bwd = swiglu_bwd_avx2,
    .fma_burn = fma_burn_avx2,
    .read_sum = read_sum_avx2,
};
