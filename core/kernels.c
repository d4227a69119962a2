#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

/* Rows converted per block when a weight is not F32. */
#define CONVERT_ROWS 256
/* Up to this many input rows, half-precision weights are read directly (gemv-like)
 * instead of being converted for sgemm: decoding is bound by memory, not arithmetic. */
#define DIRECT_MAX_T 4

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/* CPUID.1:ECX.F16C (clang 14's __builtin_cpu_supports does not know "f16c"). */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* sum over i of w[i] * x[i], w in BF16 (AVX2 + FMA). */
__attribute__((target("avx2,fma"))) static float dot_bf16_avx2(const uint16_t *w,
                                                               const float *x, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        acc0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)),
                               _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)),
                               _mm256_loadu_ps(x + i + 8), acc1);
    }
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; i < n; i++)
        sum += oc_bf16_to_f32(w[i]) * x[i];
    return sum;
}

/* sum over i of w[i] * x[i], w in F16 (AVX2 + FMA + F16C). */
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const uint16_t *w,
                                                                   const float *x, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        acc0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(x + i + 8), acc1);
    }
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; i < n; i++)
        sum += oc_f16_to_f32(w[i]) * x[i];
    return sum;
}
#endif

/* The plain reference versions. */
static float dot_half_ref(const uint16_t *w, const float *x, size_t n, oc_dtype dt) {
    float sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (dt == OC_DT_BF16 ? oc_bf16_to_f32(w[i]) : oc_f16_to_f32(w[i])) * x[i];
    return sum;
}

typedef float (*dot_half_fn)(const uint16_t *w, const float *x, size_t n);

static dot_half_fn pick_dot(oc_dtype dt) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        if (dt == OC_DT_BF16)
            return dot_bf16_avx2;
        if (cpu_has_f16c())
            return dot_f16_avx2;
    }
#endif
    (void)dt;
    return NULL;
}

static int force_reference;

void oc_kernels_force_reference(int on) { force_reference = on; }

/* out (T, OC) = inp (T, IC) @ w^T for half-precision w, reading w directly. */
static void matmul_half_direct(float *out, const float *inp, const oc_weight *w, size_t T) {
    size_t OC = (size_t)w->rows, IC = (size_t)w->cols;
    const uint16_t *wd = w->data;
    dot_half_fn dot = force_reference ? NULL : pick_dot(w->dtype);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < OC; r++)
        for (size_t t = 0; t < T; t++)
            out[t * OC + r] = dot ? dot(wd + r * IC, inp + t * IC, IC)
                                  : dot_half_ref(wd + r * IC, inp + t * IC, IC, w->dtype);
}

void oc_weight_row(float *out, const oc_weight *w, size_t r) {
    size_t C = (size_t)w->cols;
    const unsigned char *p = (const unsigned char *)w->data;
    switch (w->dtype) {
    case OC_DT_F32:
        memcpy(out, p + r * C * 4, C * 4);
        break;
    case OC_DT_BF16: {
        const uint16_t *h = (const uint16_t *)(const void *)(p + r * C * 2);
        for (size_t i = 0; i < C; i++)
            out[i] = oc_bf16_to_f32(h[i]);
        break;
    }
    default: {
        const uint16_t *h = (const uint16_t *)(const void *)(p + r * C * 2);
        for (size_t i = 0; i < C; i++)
            out[i] = oc_f16_to_f32(h[i]);
        break;
    }
    }
}

oc_status oc_matmul(float *out, const float *inp, const oc_weight *w, const float *bias,
                    size_t T) {
    size_t OC = (size_t)w->rows, IC = (size_t)w->cols;
    if (w->dtype == OC_DT_F32) {
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OC, (int)IC, 1.0f, w->data, (int)IC,
                        inp, 1, 0.0f, out, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)OC, (int)IC,
                        1.0f, inp, (int)IC, w->data, (int)IC, 0.0f, out, (int)OC);
    } else if (T <= DIRECT_MAX_T) {
        matmul_half_direct(out, inp, w, T);
    } else {
        size_t R = OC < CONVERT_ROWS ? OC : CONVERT_ROWS;
        float *buf = oc_malloc(R * IC * sizeof(float));
        if (!buf)
            return oc_err(OC_ERR_NOMEM, "out of memory converting a %zu x %zu weight", OC, IC);
        for (size_t r0 = 0; r0 < OC; r0 += R) {
            size_t n = OC - r0 < R ? OC - r0 : R;
#pragma omp parallel for schedule(static)
            for (size_t r = 0; r < n; r++)
                oc_weight_row(buf + r * IC, w, r0 + r);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)n, (int)IC,
                        1.0f, inp, (int)IC, buf, (int)IC, 0.0f, out + r0, (int)OC);
        }
        oc_free(buf);
    }
    if (bias)
        for (size_t t = 0; t < T; t++)
            oc_add(out + t * OC, bias, OC);
    return OC_OK;
}

void oc_layernorm(float *out, const float *inp, const float *w, const float *b, size_t T,
                  size_t C, float eps) {
#pragma omp parallel for schedule(static) if (T > 16)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C;
        float *y = out + t * C;
        double mean = 0, var = 0;
        for (size_t i = 0; i < C; i++)
            mean += x[i];
        mean /= (double)C;
        for (size_t i = 0; i < C; i++)
            var += ((double)x[i] - mean) * ((double)x[i] - mean);
        var /= (double)C;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (size_t i = 0; i < C; i++)
            y[i] = ((x[i] - (float)mean) * rstd) * w[i] + (b ? b[i] : 0.0f);
    }
}

void oc_rmsnorm(float *out, const float *inp, const float *w, size_t T, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (T > 16)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C;
        float *y = out + t * C;
        double ss = 0;
        for (size_t i = 0; i < C; i++)
            ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / (double)C + eps));
        for (size_t i = 0; i < C; i++)
            y[i] = w[i] * (x[i] * r);
    }
}

void oc_activate(float *x, size_t n, oc_act act) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case OC_ACT_GELU_TANH:
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            break;
        case OC_ACT_GELU:
            x[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
            break;
        case OC_ACT_QUICK_GELU:
            x[i] = v / (1.0f + expf(-1.702f * v));
            break;
        case OC_ACT_SILU:
            x[i] = v / (1.0f + expf(-v));
            break;
        }
    }
}

void oc_swiglu(float *gate, const float *up, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void oc_add(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

void oc_rope_tables(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                    float theta) {
    oc_rope_tables_dt(cos_t, sin_t, pos0, n_pos, D, theta, OC_DT_F32);
}

void oc_rope_tables_dt(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                       float theta, oc_dtype inv_freq_dtype) {
    size_t half = D / 2;
    for (size_t i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)D);
        /* transformers keeps inv_freq as a buffer that follows the model's dtype, so a
         * model loaded in BF16/F16 rotates by rounded frequencies. */
        if (inv_freq_dtype == OC_DT_BF16)
            inv_freq = oc_bf16_to_f32(oc_f32_to_bf16(inv_freq));
        else if (inv_freq_dtype == OC_DT_F16)
            inv_freq = oc_f16_to_f32(oc_f32_to_f16(inv_freq));
        for (size_t p = 0; p < n_pos; p++) {
            float ang = (float)(pos0 + p) * inv_freq;
            cos_t[p * half + i] = cosf(ang);
            sin_t[p * half + i] = sinf(ang);
        }
    }
}

void oc_rope_apply(float *x, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D) {
    size_t half = D / 2;
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            float *v = x + (t * H + h) * D;
            const float *c = cos_t + t * half, *s = sin_t + t * half;
            for (size_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
}

void oc_softmax(float *x, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}

oc_status oc_attention(float *out, const float *q, const float *k, const float *v,
                       size_t kv_stride, size_t T, size_t S, size_t H, size_t KVH, size_t D,
                       int causal) {
    size_t n_sc;
    if (!oc_mul_ok(T, S, &n_sc))
        return oc_err(OC_ERR_LIMIT, "attention of %zu x %zu is too large", T, S);
    float *sc = oc_malloc(n_sc * sizeof(float));
    if (!sc)
        return oc_err(OC_ERR_NOMEM, "out of memory for attention scores (%zu x %zu)", T, S);
    size_t group = H / KVH, past = S - T;
    float scale = 1.0f / sqrtf((float)D);
    for (size_t h = 0; h < H; h++) {
        const float *kh = k + (h / group) * D, *vh = v + (h / group) * D;
        /* sc (T, S) = q_h (T, D) @ k_h^T (D, S) * scale */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)S, (int)D, scale,
                    q + h * D, (int)(H * D), kh, (int)kv_stride, 0.0f, sc, (int)S);
#pragma omp parallel for schedule(static) if (T > 8)
        for (size_t t = 0; t < T; t++) {
            size_t n = causal ? past + t + 1 : S;
            float *row = sc + t * S;
            oc_softmax(row, n);
            memset(row + n, 0, (S - n) * sizeof(float));
        }
        /* out_h (T, D) = sc (T, S) @ v_h (S, D) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)D, (int)S, 1.0f,
                    sc, (int)S, vh, (int)kv_stride, 0.0f, out + h * D, (int)(H * D));
    }
    oc_free(sc);
    return OC_OK;
}
