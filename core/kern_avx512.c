/* AVX-512 kernels (F, BW, VL, DQ; VNNI for Q8_0 when the CPU has it). Compiled with
 * AVX-512 target flags: only called after oc_cpu() reported the level. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"
#include "vecmath.h"

#define MR 6
#define NR 64

/* acc (6, 64) in 24 registers: per k, 4 loads of B, 6 broadcasts of A, 24 FMAs. */
static void sgemm_6x64(size_t kc, const float *a, size_t lda, size_t astep, const float *bp,
                       float *c, size_t ldc, float alpha, float beta, int mode) {
    __m512 acc[MR][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16),
               b2 = _mm512_load_ps(bp + 32), b3 = _mm512_load_ps(bp + 48);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i * lda]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(av, b3, acc[i][3]);
        }
        a += astep;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 4; j++) {
            float *o = c + i * ldc + 16 * j;
            __m512 v = _mm512_mul_ps(va, acc[i][j]);
            if (mode == OC_UK_SCALE)
                v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(o), v);
            else if (mode == OC_UK_ADD)
                v = _mm512_add_ps(_mm512_loadu_ps(o), v);
            _mm512_storeu_ps(o, v);
        }
}

/* acc (6, 64) += over kc pairs: A and B elements hold BF16 pairs, one vdpbf16ps doing
 * two k at once. */
__attribute__((target("avx512bf16"))) static void sgemm_bf16_6x64(size_t kc, const float *a,
                                                                size_t lda, size_t astep,
                                                                const float *bp, float *c,
                                                                size_t ldc, float alpha,
                                                                float beta, int mode) {
    __m512 acc[MR][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = _mm512_setzero_ps();
    const uint32_t *au = (const uint32_t *)(const void *)a;
    for (size_t k = 0; k < kc; k++) {
        __m512bh b0 = (__m512bh)_mm512_load_ps(bp), b1 = (__m512bh)_mm512_load_ps(bp + 16),
                 b2 = (__m512bh)_mm512_load_ps(bp + 32), b3 = (__m512bh)_mm512_load_ps(bp + 48);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)au[i * lda]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
            acc[i][2] = _mm512_dpbf16_ps(acc[i][2], av, b2);
            acc[i][3] = _mm512_dpbf16_ps(acc[i][3], av, b3);
        }
        au += astep;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < 4; j++) {
            float *o = c + i * ldc + 16 * j;
            __m512 v = _mm512_mul_ps(va, acc[i][j]);
            if (mode == OC_UK_SCALE)
                v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(o), v);
            else if (mode == OC_UK_ADD)
                v = _mm512_add_ps(_mm512_loadu_ps(o), v);
            _mm512_storeu_ps(o, v);
        }
}

/* n floats (n even) to n / 2 BF16 pairs, rounded to nearest even. */
__attribute__((target("avx512bf16"))) static void to_bf16_pairs_avx512(uint32_t *dst,
                                                                     const float *src,
                                                                     size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512(dst + i / 2, (__m512i)v);
    }
    for (; i < n; i += 2)
        dst[i / 2] = (uint32_t)oc_f32_to_bf16(src[i]) | (uint32_t)oc_f32_to_bf16(src[i + 1]) << 16;
}

/* 16 rows of 16 floats, transposed in registers: r[i][j] -> r[j][i]. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int m = 0; m < 4; m++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
        r[m] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[4 + m] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

/* 16 values of row p (F32, F16 or BF16) as floats; masked to the first n. */
static inline __m512 load16(const void *p, oc_dtype dt, __mmask16 m) {
    if (dt == OC_DT_F32)
        return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (dt == OC_DT_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static void pack_bt_avx512(float *bp, const void *B, oc_dtype dt, size_t ldb, size_t j0,
                           size_t n, size_t k0, size_t kc, size_t nr) {
    if (dt == OC_DT_Q8_0) { /* the quants as floats, by the reference (no VNNI: rare) */
        oc_kern_ref.pack_bt(bp, B, dt, ldb, j0, n, k0, kc, nr);
        return;
    }
    size_t es = dt == OC_DT_F32 ? 4 : 2;
    const char *base = (const char *)B;
    for (size_t jb = 0; jb < nr; jb += 16) {
        for (size_t kb = 0; kb < kc; kb += 16) {
            size_t kn = kc - kb < 16 ? kc - kb : 16;
            __mmask16 km = (__mmask16)((1u << kn) - 1);
            __m512 r[16];
            for (size_t j = 0; j < 16; j++)
                r[j] = jb + j < n
                           ? load16(base + ((j0 + jb + j) * ldb + k0 + kb) * es, dt, km)
                           : _mm512_setzero_ps();
            transpose16(r);
            for (size_t k = 0; k < kn; k++)
                _mm512_store_ps(bp + (kb + k) * nr + jb, r[k]);
        }
    }
}

/* Rows of B copied into the panel 16 columns at a time, masked past n. */
static void pack_bn_avx512(float *bp, const float *B, size_t ldb, size_t j0, size_t n,
                           size_t K, size_t nr) {
    for (size_t k = 0; k < K; k++) {
        const float *src = B + k * ldb + j0;
        float *dst = bp + k * nr;
        for (size_t j = 0; j < nr; j += 16) {
            size_t w = n > j ? n - j : 0;
            __mmask16 m = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1);
            _mm512_store_ps(dst + j, _mm512_maskz_loadu_ps(m, src + j));
        }
    }
}

/* Horizontal sums of 4 vectors into one 128-bit vector (s0, s1, s2, s3). */
static inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    __m256 ab = _mm256_hadd_ps(a8, b8), cd = _mm256_hadd_ps(c8, d8);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float q8_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _cvtsh_ss(h);
}

/* 16 quants of a Q8_0 block (half 0 or 1) times its scale, as floats. */
static inline __m512 q8_half(const uint8_t *blk, int half, __m512 d) {
    __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2 + 16 * half));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
}

/* How far ahead (bytes) the GEMVs prefetch each weight row's stream. Rows are contiguous,
 * so for short rows (K = 576: 612 bytes in Q8_0) this reaches the next rows. About 5 KB per
 * stream keeps enough lines in flight for the memory's latency: decode measured +27% (Q8_0,
 * 1 thread), +35% (Q8_0, 2 threads), +14% (BF16, 1 thread) against 400-512 bytes, flat
 * between 4 and 9 KB. */
#define GEMV_PREFETCH 5120

/* One input row (decoding): four weight rows at a time, each block's dot product in F32
 * then scaled once. */
static void gemv_q8_one(float *out, const float *x, const uint8_t *w, size_t K, size_t r0,
                        size_t r1) {
    size_t nb = K / OC_Q8_BLOCK, rb = nb * OC_Q8_BYTES;
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *row[4];
        for (size_t i = 0; i < 4; i++)
            row[i] = w + (r + (i < nr ? i : nr - 1)) * rb;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (size_t b = 0; b < nb; b++) {
            __m512 x0 = _mm512_loadu_ps(x + b * OC_Q8_BLOCK),
                   x1 = _mm512_loadu_ps(x + b * OC_Q8_BLOCK + 16);
#define Q8_ROW(i, acc)                                                                     \
    do {                                                                                   \
        const uint8_t *blk = row[i] + b * OC_Q8_BYTES;                                     \
        __m512 q0 = _mm512_cvtepi32_ps(                                                    \
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));            \
        __m512 q1 = _mm512_cvtepi32_ps(                                                    \
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));           \
        __m512 dot = _mm512_fmadd_ps(q1, x1, _mm512_mul_ps(q0, x0));                       \
        acc = _mm512_fmadd_ps(dot, _mm512_set1_ps(q8_scale(blk)), acc);                    \
    } while (0)
            Q8_ROW(0, acc0);
            Q8_ROW(1, acc1);
            Q8_ROW(2, acc2);
            Q8_ROW(3, acc3);
#undef Q8_ROW
            if ((b & 1) == 0)
                for (size_t i = 0; i < 4; i++)
                    _mm_prefetch((const char *)row[i] + b * OC_Q8_BYTES + GEMV_PREFETCH,
                                 _MM_HINT_T0);
        }
        float sum[4];
        _mm_storeu_ps(sum, hsum4(acc0, acc1, acc2, acc3));
        for (size_t i = 0; i < nr; i++)
            out[r + i] = sum[i];
    }
}

/* Q8_0 rows: four at a time, a block (two halves of 16) per step. */
static void gemv_q8_avx512(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                           const uint8_t *w, size_t K, size_t r0, size_t r1) {
    if (T == 1) {
        gemv_q8_one(out, x, w, K, r0, r1);
        return;
    }
    size_t nb = K / OC_Q8_BLOCK, rb = nb * OC_Q8_BYTES;
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *row[4];
        for (size_t i = 0; i < 4; i++)
            row[i] = w + (r + (i < nr ? i : nr - 1)) * rb;
        __m512 acc[4][OC_GEMV_MAX_T];
        for (size_t i = 0; i < 4; i++)
            for (size_t t = 0; t < OC_GEMV_MAX_T; t++)
                acc[i][t] = _mm512_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            for (int h = 0; h < 2; h++) {
                __m512 wv[4];
                for (size_t i = 0; i < 4; i++) {
                    const uint8_t *blk = row[i] + b * OC_Q8_BYTES;
                    wv[i] = q8_half(blk, h, _mm512_set1_ps(q8_scale(blk)));
                }
                for (size_t t = 0; t < T; t++) {
                    __m512 xv = _mm512_loadu_ps(x + t * ldx + b * OC_Q8_BLOCK + 16 * h);
                    for (size_t i = 0; i < 4; i++)
                        acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
                }
            }
            for (size_t i = 0; i < 4; i++)
                _mm_prefetch((const char *)row[i] + b * OC_Q8_BYTES + GEMV_PREFETCH, _MM_HINT_T0);
        }
        for (size_t t = 0; t < T; t++) {
            float sum[4];
            _mm_storeu_ps(sum, hsum4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
            for (size_t i = 0; i < nr; i++)
                out[t * ldo + r + i] = sum[i];
        }
    }
}

/* Four weight rows against T <= 4 input rows; partial rows (r1 - r < 4) repeat the last. */
static void gemv_avx512(float *out, size_t ldo, const float *x, size_t ldx, size_t T,
                        const void *w, oc_dtype dt, size_t ldw, size_t K, size_t r0,
                        size_t r1) {
    if (dt == OC_DT_Q8_0) {
        gemv_q8_avx512(out, ldo, x, ldx, T, w, K, r0, r1);
        return;
    }
    size_t es = dt == OC_DT_F32 ? 4 : 2;
    const char *wb = (const char *)w;
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        const char *row[4];
        for (size_t i = 0; i < 4; i++)
            row[i] = wb + (r + (i < nr ? i : nr - 1)) * ldw * es;
        __m512 acc[4][OC_GEMV_MAX_T];
        for (size_t i = 0; i < 4; i++)
            for (size_t t = 0; t < OC_GEMV_MAX_T; t++)
                acc[i][t] = _mm512_setzero_ps();
        for (size_t k = 0; k < K; k += 16) {
            __mmask16 m = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
            __m512 wv[4];
            for (size_t i = 0; i < 4; i++) {
                wv[i] = load16(row[i] + k * es, dt, m);
                _mm_prefetch(row[i] + k * es + GEMV_PREFETCH, _MM_HINT_T0);
            }
            for (size_t t = 0; t < T; t++) {
                __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
                for (size_t i = 0; i < 4; i++)
                    acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
            }
        }
        for (size_t t = 0; t < T; t++) {
            float s[4];
            _mm_storeu_ps(s, hsum4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
            for (size_t i = 0; i < nr; i++)
                out[t * ldo + r + i] = s[i];
        }
    }
}

static void quant_q8_avx512(int8_t *xq, float *xs, const float *x, size_t K) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (size_t b = 0; b < K / OC_Q8_BLOCK; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a = _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1));
        float amax = _mm512_reduce_max_ps(a);
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        xs[b] = d;
        __m512 vid = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(xq + 32 * b), _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(xq + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    }
}

/* c (6, 32) of the Q8_0 GEMM (kern.h): per block, 8 groups of 4 quants, vpdpbusd with
 * the panel's unsigned bytes and a row's signed ones broadcast. */
__attribute__((target("avx512vnni"))) static void q8_gemm_6x32(size_t nb, const int8_t *a,
                                                               size_t lda, const float *as,
                                                               const int32_t *asum, size_t ls,
                                                               const uint8_t *bp, float *c,
                                                               size_t ldc) {
    enum { R = 6, P = OC_Q8_PANEL, BLOCK_BYTES = P * OC_Q8_BLOCK + P * 4 };
    __m512 facc[R][2];
    for (int i = 0; i < R; i++)
        facc[i][0] = facc[i][1] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *qb = bp + b * BLOCK_BYTES;
        __m512i iacc[R][2];
        for (int i = 0; i < R; i++)
            iacc[i][0] = iacc[i][1] = _mm512_setzero_si512();
        _mm_prefetch((const char *)qb + 2 * BLOCK_BYTES, _MM_HINT_T0);
        for (int kq = 0; kq < 8; kq++) {
            __m512i b0 = _mm512_loadu_si512(qb + kq * 128), b1 = _mm512_loadu_si512(qb + kq * 128 + 64);
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                int32_t v;
                memcpy(&v, a + i * lda + b * OC_Q8_BLOCK + kq * 4, 4);
                __m512i av = _mm512_set1_epi32(v);
                iacc[i][0] = _mm512_dpbusd_epi32(iacc[i][0], b0, av);
                iacc[i][1] = _mm512_dpbusd_epi32(iacc[i][1], b1, av);
            }
        }
        __m512 sw0 = _mm512_loadu_ps(qb + P * OC_Q8_BLOCK),
               sw1 = _mm512_loadu_ps(qb + P * OC_Q8_BLOCK + 64);
        for (int i = 0; i < R; i++) {
            __m512i corr = _mm512_set1_epi32(asum[i * ls + b]);
            __m512 sa = _mm512_set1_ps(as[i * ls + b]);
            facc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(iacc[i][0], corr)),
                                         _mm512_mul_ps(sw0, sa), facc[i][0]);
            facc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(iacc[i][1], corr)),
                                         _mm512_mul_ps(sw1, sa), facc[i][1]);
        }
    }
    for (int i = 0; i < R; i++) {
        _mm512_storeu_ps(c + i * ldc, facc[i][0]);
        _mm512_storeu_ps(c + i * ldc + 16, facc[i][1]);
    }
}

static float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                              acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static void axpy_avx512(float *y, float a, const float *x, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i),
                                                _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                                        _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* The vector math of vecmath.h at 16 lanes. */
static inline __m512 exp16(__m512 x) {
    /* exp(x) = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2; p a degree-6 polynomial */
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(OC_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(OC_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(OC_LN2_LO), r);
    __m512 p = _mm512_set1_ps(OC_EXP_C6);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OC_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OC_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OC_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(OC_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* tanh(u) = sign(u) (1 - e) / (1 + e), e = exp(-2|u|) */
static inline __m512 tanh16(__m512 u) {
    const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_andnot_ps(sign, u);
    __m512 e = exp16(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
    __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    return _mm512_or_ps(t, _mm512_and_ps(u, sign));
}

static inline __m512 sigmoid16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

static float exp_sum_avx512(float *x, size_t n, float m) {
    __m512 vm = _mm512_set1_ps(m), acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(acc);
}

/* 64 columns of V at a time: per key, 4 loads and nh x 4 FMAs into 16 registers. */
static void attn_pv_avx512(float *out, size_t ldo, const float *p, size_t ldp, size_t nh,
                           const float *v, size_t ldv, size_t n, size_t D) {
    for (size_t d0 = 0; d0 < D; d0 += 64) {
        __mmask16 m[4];
        for (int c = 0; c < 4; c++) {
            size_t lo = d0 + 16 * (size_t)c, w = D > lo ? D - lo : 0;
            m[c] = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1);
        }
        __m512 acc[4][4];
        for (int h = 0; h < 4; h++)
            for (int c = 0; c < 4; c++)
                acc[h][c] = _mm512_setzero_ps();
        for (size_t j = 0; j < n; j++) {
            const float *vj = v + j * ldv + d0;
            __m512 vv[4];
            for (int c = 0; c < 4; c++)
                vv[c] = _mm512_maskz_loadu_ps(m[c], vj + 16 * c);
            for (size_t h = 0; h < nh; h++) {
                __m512 ph = _mm512_set1_ps(p[h * ldp + j]);
                for (int c = 0; c < 4; c++)
                    acc[h][c] = _mm512_fmadd_ps(ph, vv[c], acc[h][c]);
            }
        }
        for (size_t h = 0; h < nh; h++)
            for (int c = 0; c < 4; c++)
                _mm512_mask_storeu_ps(out + h * ldo + d0 + 16 * c, m[c], acc[h][c]);
    }
}

static float vmax_avx512(const float *x, size_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    return _mm512_reduce_max_ps(m);
}

static void scale_avx512(float *x, float a, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(va, _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(k, x + i)));
    }
}

static inline __m512 act16(__m512 v, int act) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    switch (act) {
    case OC_ACT_GELU_TANH: {
        __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
        __m512 u = _mm512_mul_ps(_mm512_set1_ps(OC_GELU_K0),
                                 _mm512_fmadd_ps(_mm512_set1_ps(OC_GELU_K1), v3, v));
        return _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, tanh16(u)));
    }
    case OC_ACT_QUICK_GELU:
        return _mm512_mul_ps(v, sigmoid16(_mm512_mul_ps(_mm512_set1_ps(1.702f), v)));
    default: /* SILU */
        return _mm512_mul_ps(v, sigmoid16(v));
    }
}

static void act_avx512(float *out, const float *inp, size_t n, int act) {
    if (act == OC_ACT_GELU) { /* erf: libm's, through the reference */
        oc_kern_ref.act(out, inp, n, act);
        return;
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, act16(_mm512_loadu_ps(inp + i), act));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, k, act16(_mm512_maskz_loadu_ps(k, inp + i), act));
    }
}

static void swiglu_avx512(float *out, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid16(gv)),
                                                _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* gelu_tanh'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) K0 (1 + 3 K1 x^2), t = tanh(K0 (x + K1 x^3)) */
static void gelu_tanh_bwd_avx512(float *dx, const float *dy, const float *x, size_t n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f), k0 = _mm512_set1_ps(OC_GELU_K0),
                 k1 = _mm512_set1_ps(OC_GELU_K1), k13 = _mm512_set1_ps(3.0f * OC_GELU_K1),
                 sign = _mm512_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i), v2 = _mm512_mul_ps(v, v);
        __m512 u = _mm512_mul_ps(k0, _mm512_fmadd_ps(_mm512_mul_ps(k1, v2), v, v));
        __m512 e = exp16(_mm512_mul_ps(_mm512_andnot_ps(sign, u), _mm512_set1_ps(-2.0f)));
        __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
        t = _mm512_or_ps(t, _mm512_and_ps(u, sign));
        __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_fnmadd_ps(t, t, one)),
                              _mm512_mul_ps(k0, _mm512_fmadd_ps(k13, v2, one)),
                              _mm512_mul_ps(half, _mm512_add_ps(one, t)));
        _mm512_storeu_ps(dx + i, _mm512_mul_ps(_mm512_loadu_ps(dy + i), d));
    }
    if (i < n)
        oc_kern_ref.gelu_tanh_bwd(dx + i, dy + i, x + i, n - i);
}

static void swiglu_bwd_avx512(float *dg, float *du, const float *dy, const float *g,
                           const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i), uv = _mm512_loadu_ps(u + i), d = _mm512_loadu_ps(dy + i);
        __m512 sg = sigmoid16(gv), dsg = _mm512_mul_ps(d, sg);
        _mm512_storeu_ps(du + i, _mm512_mul_ps(dsg, gv));
        _mm512_storeu_ps(dg + i, _mm512_mul_ps(_mm512_mul_ps(dsg, uv),
                                          _mm512_fmadd_ps(gv, _mm512_sub_ps(one, sg), one)));
    }
    if (i < n)
        oc_kern_ref.swiglu_bwd(dg + i, du + i, dy + i, g + i, u + i, n - i);
}

/* 12 chains of FMAs: enough in flight to fill every FMA unit. */
static double fma_burn_avx512(size_t iters, float *sink) {
    __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (size_t n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    __m512 acc0 = a[0];
    for (int i = 1; i < 12; i++)
        acc0 = _mm512_add_ps(acc0, a[i]);
    *sink = _mm512_reduce_add_ps(acc0);
    return (double)iters * 12 * 16 * 2;
}

static float read_sum_avx512(const float *x, size_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 4 * 16 <= n; i += 4 * 16) {
        acc0 = _mm512_add_ps(acc0, _mm512_loadu_ps(x + i));
        acc1 = _mm512_add_ps(acc1, _mm512_loadu_ps(x + i + 16));
        acc2 = _mm512_add_ps(acc2, _mm512_loadu_ps(x + i + 2 * 16));
        acc3 = _mm512_add_ps(acc3, _mm512_loadu_ps(x + i + 3 * 16));
    }
    acc0 = _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3));
    float s = _mm512_reduce_add_ps(acc0);
    for (; i < n; i++)
        s += x[i];
    return s;
}

const oc_kern oc_kern_avx512 = {
    .isa = OC_ISA_AVX512,
    .mr = MR,
    .nr = NR,
    .sgemm = sgemm_6x64,
    .q8_mr = 6,
    .q8_gemm = q8_gemm_6x32,
    .sgemm_bf16 = sgemm_bf16_6x64,
    .to_bf16_pairs = to_bf16_pairs_avx512,
    .pack_bt = pack_bt_avx512,
    .pack_bn = pack_bn_avx512,
    .gemv = gemv_avx512,
    .quant_q8 = quant_q8_avx512,
    .dot = dot_avx512,
    .axpy = axpy_avx512,
    .exp_sum = exp_sum_avx512,
    .attn_pv = attn_pv_avx512,
    .vmax = vmax_avx512,
    .scale = scale_avx512,
    .act = act_avx512,
    .swiglu = swiglu_avx512,
    .gelu_tanh_bwd = gelu_tanh_bwd_avx512,
    .swiglu_bwd = swiglu_bwd_avx512,
    .fma_burn = fma_burn_avx512,
    .read_sum = read_sum_avx512,
};
