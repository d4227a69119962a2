#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define PAR_ELEMS OC_T_PAR_ELEMS
/* 2*M*N*K below which a matrix product runs on one thread (~0.5 ms of work). */
#define PAR_GEMM_FLOPS 1e7

/* One thread pool: training splits matrix products over OpenMP threads itself and
 * keeps OpenBLAS single-threaded, because the pthreads OpenBLAS's workers spin for a
 * long while after each call and starve an OpenMP team on a small machine (and must not
 * be entered from one). When OpenBLAS is multi-threaded (a caller outside the trainer),
 * products are left to it and nothing runs inside OpenMP regions. */
int oc_t_threads_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev > 1)
        openblas_set_num_threads(1);
    return prev;
}

void oc_t_threads_end(int prev) {
    if (prev > 1)
        openblas_set_num_threads(prev);
}

size_t oc_t_team_max(void) {
    int n = omp_get_max_threads();
    return n > 0 ? (size_t)n : 1;
}

static void sgemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void oc_t_gemm(double *flops, int trans_a, int trans_b, size_t M, size_t N, size_t K,
               float alpha, const float *A, size_t lda, const float *B, size_t ldb,
               float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0)
        return;
    double f = 2.0 * (double)M * (double)N * (double)K;
    *flops += f;
    /* Large products are cut into blocks of rows of C whose number depends on the shape
     * only, never on the thread count: every block is the same sgemm call however many
     * threads share them, so training gives the same bits on 1 thread or 16. Blocks of
     * 256 rows or more (each block packs B again), at least two, at most 16. */
    size_t chunks = 1;
    if (f >= PAR_GEMM_FLOPS && M >= 16) {
        chunks = M / 256;
        chunks = chunks < 2 ? 2 : chunks > 16 ? 16 : chunks;
    }
    int team = 1;
    if (chunks > 1 && !omp_in_parallel() && openblas_get_num_threads() <= 1) {
        team = omp_get_max_threads();
        team = (size_t)team > chunks ? (int)chunks : team;
    }
#pragma omp parallel for schedule(static) num_threads(team) if (team > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t m0 = M * c / chunks, m1 = M * (c + 1) / chunks;
        const float *Ab = trans_a ? A + m0 : A + m0 * lda;
        sgemm(trans_a, trans_b, m1 - m0, N, K, alpha, Ab, lda, B, ldb, beta, C + m0 * ldc,
              ldc);
    }
}

void oc_t_zero(float *x, size_t n) {
    enum { NB = 64 };
#pragma omp parallel for schedule(static) if (n > 16 * PAR_ELEMS)
    for (int b = 0; b < NB; b++) {
        size_t lo = n * (size_t)b / NB, hi = n * (size_t)(b + 1) / NB;
        memset(x + lo, 0, (hi - lo) * sizeof(float));
    }
}

/* acc (C) += sum over the T rows of f(t, i): each column summed in row order, blocks of
 * columns shared by the team, so the result does not depend on the thread count. */
#define COLUMN_SUM(T, C, acc, expr)                                                     \
    do {                                                                              \
        size_t nb_ = (C) / 64 ? (C) / 64 : 1;                                          \
        int par_ = (T) * (C) > PAR_ELEMS && nb_ > 1;                                  \
        _Pragma("omp parallel for schedule(static) if (par_)")                        \
        for (size_t b_ = 0; b_ < nb_; b_++) {                                          \
            size_t i0_ = (C) * b_ / nb_, i1_ = (C) * (b_ + 1) / nb_;                   \
            for (size_t t = 0; t < (T); t++)                                           \
                for (size_t i = i0_; i < i1_; i++)                                     \
                    (acc)[i] += (expr);                                                \
        }                                                                             \
    } while (0)

void oc_t_linear_fwd(double *flops, float *out, const float *inp, const float *w,
                     const float *b, size_t T, size_t IC, size_t OC) {
    oc_t_gemm(flops, 0, 1, T, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
    if (!b)
        return;
#pragma omp parallel for schedule(static) if (T * OC > PAR_ELEMS)
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < OC; o++)
            out[t * OC + o] += b[o];
}

void oc_t_linear_bwd(double *flops, float *dinp, float beta, float *dw, float *db,
                     const float *dout, const float *inp, const float *w, size_t T,
                     size_t IC, size_t OC) {
    if (dinp)
        oc_t_gemm(flops, 0, 0, T, IC, OC, 1.0f, dout, OC, w, IC, beta, dinp, IC);
    /* dw (OC, IC) += dout^T (OC, T) @ inp (T, IC) */
    oc_t_gemm(flops, 1, 0, OC, IC, T, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
    if (db)
        COLUMN_SUM(T, OC, db, dout[t * OC + i]);
}

void oc_t_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                        const float *w, const float *b, size_t T, size_t C, float eps) {
#pragma omp parallel for schedule(static) if (T * C > PAR_ELEMS)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C;
        float *y = out + t * C;
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++)
            m += x[i];
        m /= (double)C;
        for (size_t i = 0; i < C; i++)
            v += ((double)x[i] - m) * ((double)x[i] - m);
        v /= (double)C;
        float mf = (float)m, r = (float)(1.0 / sqrt(v + (double)eps));
        for (size_t i = 0; i < C; i++)
            y[i] = (x[i] - mf) * r * w[i] + b[i];
        mean[t] = mf;
        rstd[t] = r;
    }
}

void oc_t_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *w, size_t T, size_t C) {
#pragma omp parallel for schedule(static) if (T * C > PAR_ELEMS)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C, *dy = dout + t * C;
        float *dx = dinp + t * C;
        float m = mean[t], r = rstd[t];
        /* dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
        double sg = 0, sgx = 0;
        for (size_t i = 0; i < C; i++) {
            float g = dy[i] * w[i], xh = (x[i] - m) * r;
            sg += g;
            sgx += (double)g * xh;
        }
        float mg = (float)(sg / (double)C), mgx = (float)(sgx / (double)C);
        for (size_t i = 0; i < C; i++) {
            float xh = (x[i] - m) * r;
            dx[i] += r * (dy[i] * w[i] - mg - xh * mgx);
        }
    }
    COLUMN_SUM(T, C, dw, dout[t * C + i] * ((inp[t * C + i] - mean[t]) * rstd[t]));
    COLUMN_SUM(T, C, db, dout[t * C + i]);
}

void oc_t_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, size_t T,
                      size_t C, float eps) {
#pragma omp parallel for schedule(static) if (T * C > PAR_ELEMS)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C;
        float *y = out + t * C;
        double ss = 0;
        for (size_t i = 0; i < C; i++)
            ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        for (size_t i = 0; i < C; i++)
            y[i] = w[i] * (x[i] * r);
        rstd[t] = r;
    }
}

void oc_t_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *rstd, const float *w, size_t T, size_t C) {
#pragma omp parallel for schedule(static) if (T * C > PAR_ELEMS)
    for (size_t t = 0; t < T; t++) {
        const float *x = inp + t * C, *dy = dout + t * C;
        float *dx = dinp + t * C;
        float r = rstd[t];
        /* dx = r * (g - xhat * mean(g * xhat)), g = dy * w */
        double sgx = 0;
        for (size_t i = 0; i < C; i++)
            sgx += (double)(dy[i] * w[i]) * (x[i] * r);
        float mgx = (float)(sgx / (double)C);
        for (size_t i = 0; i < C; i++)
            dx[i] += r * (dy[i] * w[i] - (x[i] * r) * mgx);
    }
    COLUMN_SUM(T, C, dw, dout[t * C + i] * (inp[t * C + i] * rstd[t]));
}

#define GELU_K0 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_K1 0.044715f

/* tanh through one expf (libm's tanhf is several times slower); absolute error ~1e-7,
 * which is what matters next to the 1 it is added to. */
static inline float tanh_exp(float u) {
    float e = expf(-2.0f * fabsf(u)), t = (1.0f - e) / (1.0f + e);
    return copysignf(t, u);
}

void oc_t_gelu_tanh_fwd(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_exp(GELU_K0 * (x + GELU_K1 * x * x * x)));
    }
}

void oc_t_gelu_tanh_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float th = tanh_exp(GELU_K0 * (x + GELU_K1 * x * x * x));
        float d = 0.5f * (1.0f + th) +
                  0.5f * x * (1.0f - th * th) * GELU_K0 * (1.0f + 3.0f * GELU_K1 * x * x);
        dinp[i] = dout[i] * d;
    }
}

void oc_t_swiglu_fwd(float *out, const float *gate, const float *up, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void oc_t_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], u = up[i], dy = dout[i];
        float sg = 1.0f / (1.0f + expf(-g));
        dup[i] = dy * g * sg;
        dgate[i] = dy * u * sg * (1.0f + g * (1.0f - sg));
    }
}

/* sign +1: forward rotation; -1: its transpose (the backward pass). */
static void rope(float *x, const float *cos_t, const float *sin_t, size_t T, size_t H,
                 size_t D, float sign) {
    size_t half = D / 2;
#pragma omp parallel for schedule(static) if (T * H * D > PAR_ELEMS)
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            float *v = x + (t * H + h) * D;
            const float *c = cos_t + t * half, *s = sin_t + t * half;
            for (size_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], si = sign * s[i];
                v[i] = a * c[i] - b * si;
                v[i + half] = b * c[i] + a * si;
            }
        }
}

void oc_t_rope_fwd(float *x, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D) {
    rope(x, cos_t, sin_t, T, H, D, 1.0f);
}

void oc_t_rope_bwd(float *dx, const float *cos_t, const float *sin_t, size_t T, size_t H,
                   size_t D) {
    rope(dx, cos_t, sin_t, T, H, D, -1.0f);
}

/* Sequence s of a packed batch: rows [row0, row0 + n) and its probabilities at att0. */
static void seq_span(const oc_t_seqs *sq, size_t s, size_t H, size_t *row0, size_t *n,
                     size_t *att0) {
    if (sq->off) {
        *row0 = sq->off[s];
        *n = sq->off[s + 1] - sq->off[s];
        *att0 = sq->att_off[s];
    } else {
        *row0 = s * sq->n;
        *n = sq->n;
        *att0 = s * H * sq->n * sq->n;
    }
}

static double seqs_flops(const oc_t_seqs *sq, size_t H, size_t D) {
    double f = 0;
    for (size_t s = 0; s < sq->n_seq; s++) {
        size_t r, n, a;
        seq_span(sq, s, H, &r, &n, &a);
        f += 4.0 * (double)n * (double)n * (double)D * (double)H;
    }
    return f;
}

/* Teams over (sequence, KV group) items: the heads of a group share dk, dv. */
static int attention_team(double flops, size_t items) {
    if (omp_in_parallel() || openblas_get_num_threads() > 1 || flops < PAR_GEMM_FLOPS)
        return 1;
    int t = omp_get_max_threads();
    return (size_t)t > items ? (int)items : t;
}

/* The heads of KV group g over one sequence of n rows; runs on the calling thread. */
static void group_fwd(float *y, float *att, const float *q, const float *k, const float *v,
                      size_t n, size_t H, size_t KVH, size_t D, size_t g, int causal) {
    size_t group = H / KVH, ldq = H * D, ldk = KVH * D;
    float scale = 1.0f / sqrtf((float)D);
    for (size_t h = g * group; h < (g + 1) * group; h++) {
        float *p = att + h * n * n;
        /* p (n, n) = q_h (n, D) @ k_g^T (D, n) * scale */
        sgemm(0, 1, n, n, D, scale, q + h * D, ldq, k + g * D, ldk, 0.0f, p, n);
        for (size_t i = 0; i < n; i++) {
            float *row = p + i * n;
            size_t m = causal ? i + 1 : n;
            float mx = -INFINITY;
            for (size_t j = 0; j < m; j++)
                mx = row[j] > mx ? row[j] : mx;
            float sum = 0;
            for (size_t j = 0; j < m; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            float inv = 1.0f / sum;
            for (size_t j = 0; j < m; j++)
                row[j] *= inv;
            for (size_t j = m; j < n; j++)
                row[j] = 0.0f;
        }
        /* y_h (n, D) = p (n, n) @ v_g (n, D) */
        sgemm(0, 0, n, D, n, 1.0f, p, n, v + g * D, ldk, 0.0f, y + h * D, ldq);
    }
}

static void group_bwd(float *dq, float *dk, float *dv, float *ds, const float *dy,
                      const float *att, const float *q, const float *k, const float *v,
                      size_t n, size_t H, size_t KVH, size_t D, size_t g) {
    size_t group = H / KVH, ldq = H * D, ldk = KVH * D;
    float scale = 1.0f / sqrtf((float)D);
    for (size_t t = 0; t < n; t++) {
        memset(dk + t * ldk + g * D, 0, D * sizeof(float));
        memset(dv + t * ldk + g * D, 0, D * sizeof(float));
    }
    for (size_t h = g * group; h < (g + 1) * group; h++) {
        const float *p = att + h * n * n, *dyh = dy + h * D;
        /* dv_g (n, D) += p^T (n, n) @ dy_h (n, D) */
        sgemm(1, 0, n, D, n, 1.0f, p, n, dyh, ldq, 1.0f, dv + g * D, ldk);
        /* dp (n, n) = dy_h (n, D) @ v_g^T (D, n) */
        sgemm(0, 1, n, n, D, 1.0f, dyh, ldq, v + g * D, ldk, 0.0f, ds, n);
        /* ds = p * (dp - sum_j dp * p) * scale; masked entries have p = 0 */
        for (size_t i = 0; i < n; i++) {
            const float *pr = p + i * n;
            float *dr = ds + i * n;
            float dot = 0;
            for (size_t j = 0; j < n; j++)
                dot += pr[j] * dr[j];
            for (size_t j = 0; j < n; j++)
                dr[j] = pr[j] * (dr[j] - dot) * scale;
        }
        /* dq_h (n, D) = ds (n, n) @ k_g (n, D);  dk_g (n, D) += ds^T @ q_h */
        sgemm(0, 0, n, D, n, 1.0f, ds, n, k + g * D, ldk, 0.0f, dq + h * D, ldq);
        sgemm(1, 0, n, D, n, 1.0f, ds, n, q + h * D, ldq, 1.0f, dk + g * D, ldk);
    }
}

void oc_t_attention_fwd(double *flops, float *y, float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH, size_t D,
                        int causal) {
    size_t HD = H * D, KD = KVH * D, items = sq->n_seq * KVH;
    double f = seqs_flops(sq, H, D);
    *flops += f;
    int team = attention_team(f, items);
    /* every item writes its own rows and heads: the result does not depend on the team */
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
    for (size_t it = 0; it < items; it++) {
        size_t s = it / KVH, g = it % KVH, r, n, a;
        seq_span(sq, s, H, &r, &n, &a);
        group_fwd(y + r * HD, att + a, q + r * HD, k + r * KD, v + r * KD, n, H, KVH, D, g,
                  causal);
    }
}

size_t oc_t_attention_scratch(size_t maxn) { return oc_t_team_max() * maxn * maxn; }

void oc_t_attention_bwd(double *flops, float *dq, float *dk, float *dv, float *scratch,
                        const float *dy, const float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH,
                        size_t D) {
    size_t HD = H * D, KD = KVH * D, items = sq->n_seq * KVH, maxn = 0;
    for (size_t s = 0; s < sq->n_seq; s++) {
        size_t r, n, a;
        seq_span(sq, s, H, &r, &n, &a);
        maxn = n > maxn ? n : maxn;
    }
    double f = 2 * seqs_flops(sq, H, D);
    *flops += f;
    int team = attention_team(f, items);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
    for (size_t it = 0; it < items; it++) {
        size_t s = it / KVH, g = it % KVH, r, n, a;
        seq_span(sq, s, H, &r, &n, &a);
        float *ds = scratch + (size_t)omp_get_thread_num() * maxn * maxn;
        group_bwd(dq + r * HD, dk + r * KD, dv + r * KD, ds, dy + r * HD, att + a, q + r * HD,
                  k + r * KD, v + r * KD, n, H, KVH, D, g);
    }
}
