/* Kernels against plain double-precision versions written here; every SIMD level the CPU
 * has against the library's plain C reference (oc_cpu_force); one thread against
 * several (the same bits); and the paths taken when scratch memory runs out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kern.h"
#include "kernels.h"
#include "sample.h"
#include "testutil.h"

static float frand(oc_rng *r) { return (float)(oc_rng_uniform(r) * 2 - 1); }

static float *rand_vec(oc_rng *r, size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        v[i] = frand(r);
    return v;
}

/* Execution contexts: one thread, three threads, and one with no scratch at all. */
typedef struct {
    oc_pool *pool;
    oc_exec one, many, none;
} execs;

static void execs_init(execs *e) {
    assert_int_equal(oc_pool_new(3, &e->pool), OC_OK);
    oc_exec_init(&e->one, NULL);
    oc_exec_init(&e->many, e->pool);
    oc_exec_init(&e->none, NULL);
    oc_free(e->none.bufs); /* every oc_exec_buf now fails: the no-memory paths */
    e->none.bufs = NULL;
    e->none.n_bufs = 0;
}

static void execs_free(execs *e) {
    oc_exec_release(&e->one);
    oc_exec_release(&e->many);
    oc_exec_release(&e->none);
    oc_pool_free(e->pool);
}

/* The SIMD levels this CPU has, the reference first. */
static int levels(oc_isa *out) {
    oc_cpu_force(OC_ISA_AVX512); /* undoes any cap: the detected level */
    oc_isa best = oc_cpu()->isa;
    int n = 0;
    for (int l = OC_ISA_SCALAR; l <= (int)best; l++)
        out[n++] = (oc_isa)l;
    return n;
}

/* max |a - b| over max |b|: the normwise relative difference. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* C (M, N) = alpha op(A) op(B) + beta C0 in double. */
static void naive_gemm(double *C, int ta, int tb, size_t M, size_t N, size_t K, double alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, double beta,
                       const float *C0, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                     (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * N + j] = alpha * s + (beta != 0 ? beta * C0[i * ldc + j] : 0);
        }
}

/* Every transpose, odd and edge sizes (K past the KC block, M and N not multiples of the
 * tiles), alpha and beta, at every level; beta = 0 must not read C (it holds NaN). */
static void test_gemm(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 11);
    const size_t sizes[][3] = {{1, 1, 1},   {7, 13, 5},    {6, 64, 256}, {13, 130, 257},
                               {65, 70, 3}, {100, 1, 513}, {3, 300, 40}, {200, 129, 96}};
    oc_isa lv[3];
    int nl = levels(lv);
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        size_t M = sizes[c][0], N = sizes[c][1], K = sizes[c][2];
        float *A = rand_vec(&r, M * K), *B = rand_vec(&r, K * N), *C0 = rand_vec(&r, M * N);
        float *C = malloc(M * N * sizeof(float)), *Cm = malloc(M * N * sizeof(float)),
              *Cref = malloc(M * N * sizeof(float)), *Cn = malloc(M * N * sizeof(float));
        double *want = malloc(M * N * sizeof(double));
        float *wantf = malloc(M * N * sizeof(float));
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bz = 0; bz < 2; bz++) {
                    float alpha = 0.75f, beta = bz ? 0.0f : -1.25f;
                    size_t lda = ta ? M : K, ldb = tb ? K : N;
                    naive_gemm(want, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, N);
                    for (size_t i = 0; i < M * N; i++)
                        wantf[i] = (float)want[i];
                    for (int l = 0; l < nl; l++) {
                        oc_cpu_force(lv[l]);
                        oc_exec *xs[3] = {&e.one, &e.many, &e.none};
                        for (int x = 0; x < 3; x++) {
                            float *out = x == 0 ? C : x == 1 ? Cm : Cn;
                            for (size_t i = 0; i < M * N; i++)
                                out[i] = bz ? NAN : C0[i];
                            oc_gemm(xs[x], ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, out, N);
                            if (x == 0 && l == 0)
                                memcpy(Cref, out, M * N * sizeof(float));
                            if (x == 2) /* the unpacked path: its own summation order */
                                assert_true(rel_diff(out, wantf, M * N) < 1e-5);
                        }
                        /* threads never change the bits; levels agree with the reference */
                        assert_memory_equal(C, Cm, M * N * sizeof(float));
                        assert_true(rel_diff(C, Cref, M * N) < 1e-5);
                        assert_true(rel_diff(C, wantf, M * N) < 1e-5);
                    }
                    oc_cpu_force(OC_ISA_AVX512);
                }
        free(A), free(B), free(C0), free(C), free(Cm), free(Cref), free(Cn), free(want);
        free(wantf);
    }
    execs_free(&e);
}

/* F32, BF16, F16 and Q8_0 weights against the same product done in double on the weights
 * as stored, for the GEMV sizes (1..4 rows) and the GEMM ones, at every level and thread
 * count. The GEMM's BF16 products round the activations to BF16, its Q8_0 ones (VNNI)
 * quantize them as llama.cpp does; elsewhere activations stay F32. */
static void test_matmul_formats(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 1);
    size_t IC = 96, OC = 301; /* odd OC exercises row tails, IC / 32 = 3 an odd block */
    float *w = rand_vec(&r, IC * OC), *inp = rand_vec(&r, 40 * IC), *bias = rand_vec(&r, OC);
    float *wr = malloc(IC * OC * 4), *out = malloc(40 * OC * 4), *out2 = malloc(40 * OC * 4),
          *want[2] = {malloc(40 * OC * 4), malloc(40 * OC * 4)};
    uint16_t *wh = malloc(IC * OC * 2);
    uint8_t *wq = malloc(OC * IC / 32 * OC_Q8_BYTES);
    oc_quantize_q8_0(wq, w, IC * OC);
    /* the fifth: BF16 weights with BF16 products (activations rounded to BF16 by the
     * GEMM where the CPU has AVX512-BF16; the GEMV keeps them F32) */
    oc_dtype dts[] = {OC_DT_F32, OC_DT_BF16, OC_DT_F16, OC_DT_Q8_0, OC_DT_BF16};
    size_t Ts[] = {1, 2, 3, 4, 5, 40};
    oc_isa lv[3];
    int nl = levels(lv);
    for (int d = 0; d < 5; d++) {
        oc_weight W = {.data = w, .dtype = dts[d], .rows = (int64_t)OC, .cols = (int64_t)IC,
                       .bf16_products = d == 4};
        if (dts[d] == OC_DT_BF16 || dts[d] == OC_DT_F16) {
            for (size_t i = 0; i < IC * OC; i++)
                wh[i] = dts[d] == OC_DT_BF16 ? oc_f32_to_bf16(w[i]) : oc_f32_to_f16(w[i]);
            W.data = wh;
        } else if (dts[d] == OC_DT_Q8_0) {
            W.data = wq;
        }
        for (size_t o = 0; o < OC; o++)
            oc_weight_row(wr + o * IC, &W, o);
        for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
            size_t T = Ts[k];
            /* want[0]: F32 activations; want[1]: as the GEMM's low-precision products see
             * them (BF16 rounding, or llama.cpp's Q8_0 quantization) */
            for (size_t t = 0; t < T; t++) {
                const float *x = inp + t * IC;
                float xl[96];
                for (size_t b = 0; b < IC / 32; b++) {
                    float amax = 0;
                    for (size_t i = 0; i < 32; i++)
                        amax = fmaxf(amax, fabsf(x[b * 32 + i]));
                    float dd = amax / 127.0f;
                    for (size_t i = 0; i < 32; i++)
                        xl[b * 32 + i] = d == 3 ? dd * rintf(x[b * 32 + i] / dd)
                                                : oc_bf16_to_f32(oc_f32_to_bf16(x[b * 32 + i]));
                }
                for (size_t o = 0; o < OC; o++) {
                    double s0 = bias[o], s1 = bias[o];
                    for (size_t i = 0; i < IC; i++) {
                        s0 += (double)wr[o * IC + i] * x[i];
                        s1 += (double)wr[o * IC + i] * xl[i];
                    }
                    want[0][t * OC + o] = (float)s0;
                    want[1][t * OC + o] = (float)s1;
                }
            }
            for (int l = 0; l < nl; l++) {
                oc_cpu_force(lv[l]);
                const oc_cpu_caps *cpu = oc_cpu();
                int low = T > OC_GEMV_MAX_T && ((d == 4 && cpu->avx512_bf16) ||
                                                     (d == 3 && cpu->avx512_vnni));
                oc_matmul(&e.one, out, inp, &W, bias, T);
                oc_matmul(&e.many, out2, inp, &W, bias, T);
                assert_true(rel_diff(out, want[low], T * OC) < 2e-5);
                assert_true(rel_diff(out2, out, T * OC) < 1e-6);
                oc_matmul(&e.none, out2, inp, &W, bias, T); /* no scratch: F32 activations */
                assert_true(rel_diff(out2, want[0], T * OC) < 2e-5);
            }
            oc_cpu_force(OC_ISA_AVX512);
        }
    }
    free(w), free(inp), free(bias), free(wr), free(out), free(out2), free(want[0]);
    free(want[1]), free(wh), free(wq);
    execs_free(&e);
}

/* Q8_0 as llama.cpp writes it: scale F16 of max|x|/127, quants round(x / scale). */
static void test_quantize_q8_0(void **state) {
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 20) * 0.25f;
    x[40] = 0; /* block 1's largest magnitude is x[63] = 10.75 */
    uint8_t q[2 * OC_Q8_BYTES];
    oc_quantize_q8_0(q, x, 64);
    uint16_t d0, d1;
    memcpy(&d0, q, 2);
    memcpy(&d1, q + OC_Q8_BYTES, 2);
    /* the scales: max |x| / 127 rounded to F16 (block 0: 5, block 1: 10.75) */
    assert_int_equal(d0, oc_f32_to_f16(5.0f / 127));
    assert_int_equal(d1, oc_f32_to_f16(10.75f / 127));
    assert_int_equal((int8_t)q[2 + 0], -127);                        /* x[0] = -5 */
    assert_int_equal((int8_t)q[2 + 20], 0);
    assert_int_equal((int8_t)q[2 + 22], (int)roundf(0.5f * 127 / 5)); /* x[22] = 0.5 */
    assert_int_equal((int8_t)q[OC_Q8_BYTES + 2 + 31], 127);
}

static void test_norms(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 2);
    size_t T = 37, C = 33;
    float *x = rand_vec(&r, T * C), *y = malloc(T * C * 4), *y2 = malloc(T * C * 4);
    float w[33], b[33], mean[37], rstd[37];
    for (size_t i = 0; i < T * C; i++)
        x[i] = x[i] * 3 + 1;
    for (size_t i = 0; i < C; i++)
        w[i] = frand(&r), b[i] = frand(&r);
    oc_layernorm(&e.one, y, mean, rstd, x, w, b, T, C, 1e-5f);
    oc_layernorm(&e.many, y2, NULL, NULL, x, w, b, T, C, 1e-5f);
    assert_memory_equal(y, y2, T * C * 4);
    for (size_t t = 0; t < T; t++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++)
            m += x[t * C + i];
        m /= C;
        for (size_t i = 0; i < C; i++)
            v += (x[t * C + i] - m) * (x[t * C + i] - m);
        v /= C;
        assert_true(fabs(mean[t] - m) < 1e-6 && fabs(rstd[t] - 1 / sqrt(v + 1e-5)) < 1e-5);
        for (size_t i = 0; i < C; i++)
            assert_true(fabs(y[t * C + i] - ((x[t * C + i] - m) / sqrt(v + 1e-5) * w[i] + b[i])) <
                        1e-5);
    }
    oc_rmsnorm(&e.one, y, rstd, x, w, T, C, 1e-5f);
    oc_rmsnorm(&e.many, y2, NULL, x, w, T, C, 1e-5f);
    assert_memory_equal(y, y2, T * C * 4);
    for (size_t t = 0; t < T; t++) {
        double ss = 0;
        for (size_t i = 0; i < C; i++)
            ss += (double)x[t * C + i] * x[t * C + i];
        double rr = 1 / sqrt(ss / C + 1e-5);
        assert_true(fabs(rstd[t] - rr) < 1e-5);
        for (size_t i = 0; i < C; i++)
            assert_true(fabs(y[t * C + i] - x[t * C + i] * rr * w[i]) < 1e-5);
    }
    free(x), free(y), free(y2);
    execs_free(&e);
}

/* out (T, H*D) of textbook attention in double. */
static void naive_attention(double *out, const float *q, const float *k, const float *v,
                            size_t T, size_t S, size_t H, size_t KVH, size_t D, int causal) {
    double *sc = malloc(S * sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / (H / KVH), n = causal ? S - T + t + 1 : S;
            double mx = -1e300, sum = 0;
            for (size_t j = 0; j < n; j++) {
                double d = 0;
                for (size_t i = 0; i < D; i++)
                    d += (double)q[(t * H + h) * D + i] * k[(j * KVH + kh) * D + i];
                sc[j] = d / sqrt((double)D);
                mx = fmax(mx, sc[j]);
            }
            for (size_t j = 0; j < n; j++)
                sum += (sc[j] = exp(sc[j] - mx));
            for (size_t i = 0; i < D; i++) {
                double o = 0;
                for (size_t j = 0; j < n; j++)
                    o += sc[j] / sum * v[(j * KVH + kh) * D + i];
                out[(t * H + h) * D + i] = o;
            }
        }
    free(sc);
}

/* Causal GQA and full attention, decoding sizes (the per-query path, S past the key
 * chunk) and blocks (past the query block), with and without saved probabilities. */
static void test_attention(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 3);
    const size_t cases[][6] = {
        /* T, S, H, KVH, D, causal */
        {1, 7, 4, 2, 8, 1},   {3, 7, 4, 2, 8, 1},     {4, 600, 6, 2, 16, 1},
        {70, 70, 2, 1, 24, 0}, {130, 150, 4, 4, 8, 1}, {9, 9, 3, 3, 64, 0},
        {2, 300, 10, 2, 24, 1}, /* decoding: 5 heads per KV head, runs of keys, D % 16 */
        {3, 513, 4, 1, 72, 0},  /* decoding without a mask, D past one register block */
    };
    oc_isa lv[3];
    int nl = levels(lv);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t T = cases[c][0], S = cases[c][1], H = cases[c][2], KVH = cases[c][3],
               D = cases[c][4];
        int causal = (int)cases[c][5];
        float *q = rand_vec(&r, T * H * D), *k = rand_vec(&r, S * KVH * D),
              *v = rand_vec(&r, S * KVH * D);
        float *out = malloc(T * H * D * 4), *out2 = malloc(T * H * D * 4),
              *wantf = malloc(T * H * D * 4), *probs = malloc(H * T * S * 4);
        double *want = malloc(T * H * D * 8);
        naive_attention(want, q, k, v, T, S, H, KVH, D, causal);
        for (size_t i = 0; i < T * H * D; i++)
            wantf[i] = (float)want[i];
        oc_attn_shape sh = {.T = T, .S = S, .H = H, .KVH = KVH, .D = D, .kv_stride = KVH * D,
                            .causal = causal};
        for (int l = 0; l < nl; l++) {
            oc_cpu_force(lv[l]);
            oc_attention(&e.one, out, NULL, q, k, v, &sh);
            assert_true(rel_diff(out, wantf, T * H * D) < 1e-5);
            oc_attention(&e.many, out2, NULL, q, k, v, &sh);
            assert_memory_equal(out, out2, T * H * D * 4);
            oc_attention(&e.none, out2, NULL, q, k, v, &sh);
            assert_true(rel_diff(out2, wantf, T * H * D) < 1e-5);
            oc_attention(&e.many, out2, probs, q, k, v, &sh);
            assert_true(rel_diff(out2, wantf, T * H * D) < 1e-5);
            for (size_t h = 0; h < H; h++) /* rows of probabilities sum to 1, zero past */
                for (size_t t = 0; t < T; t++) {
                    double s = 0;
                    size_t n = causal ? S - T + t + 1 : S;
                    for (size_t j = 0; j < S; j++) {
                        float p = probs[(h * T + t) * S + j];
                        s += p;
                        if (j >= n)
                            assert_true(p == 0.0f);
                    }
                    assert_true(fabs(s - 1) < 1e-5);
                }
        }
        oc_cpu_force(OC_ISA_AVX512);
        free(q), free(k), free(v), free(out), free(out2), free(wantf), free(probs), free(want);
    }
    execs_free(&e);
}

/* RoPE rotates pairs (i, i + D/2) by pos * theta^(-2i/D); sign -1 undoes it. */
static void test_rope(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    size_t D = 8, half = 4;
    float c[2 * 4], s[2 * 4], x[2 * 8];
    oc_rope_tables(c, s, 5, 2, D, 10000.0f, OC_DT_F32);
    for (size_t i = 0; i < 16; i++)
        x[i] = (float)i + 1;
    float x0[16];
    memcpy(x0, x, sizeof x);
    oc_rope_apply(&e.many, x, c, s, 2, 1, D, 1.0f);
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < half; i++) {
            double ang = (double)(5 + t) * pow(10000.0, -2.0 * i / D);
            double a = x0[t * D + i], b = x0[t * D + i + half];
            assert_true(fabs(x[t * D + i] - (a * cos(ang) - b * sin(ang))) < 1e-4);
            assert_true(fabs(x[t * D + i + half] - (b * cos(ang) + a * sin(ang))) < 1e-4);
        }
    oc_rope_apply(&e.one, x, c, s, 2, 1, D, -1.0f);
    for (size_t i = 0; i < 16; i++)
        assert_true(fabsf(x[i] - x0[i]) < 1e-5f);
    execs_free(&e);
}

static double act_exact(double x, int a) {
    switch (a) {
    case OC_ACT_GELU_TANH:
        return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case OC_ACT_GELU:
        return 0.5 * x * (1 + erf(x / sqrt(2)));
    case OC_ACT_QUICK_GELU:
        return x / (1 + exp(-1.702 * x));
    default:
        return x / (1 + exp(-x));
    }
}

/* Every activation and the backward passes training uses, at every level, over a range
 * that reaches exp's clamps, against double precision: within 1e-6 of the value's scale
 * (|x| + 1) (derivatives: 1e-5, against central differences). */
static void test_activations(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    size_t n = 1001;
    float *x = malloc(n * 4), *y = malloc(n * 4), *u = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        x[i] = -100.0f + 0.2f * (float)i; /* -100 .. 100 */
        u[i] = 0.5f + 0.001f * (float)i;
    }
    oc_isa lv[3];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        oc_cpu_force(lv[l]);
        for (int a = OC_ACT_GELU_TANH; a <= OC_ACT_SILU; a++) {
            oc_activate(&e.many, y, x, n, (oc_act)a);
            for (size_t i = 0; i < n; i++)
                assert_true(fabs(y[i] - act_exact(x[i], a)) <= 1e-6 * (fabs(x[i]) + 1));
        }
        oc_swiglu(&e.many, y, x, u, n);
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(y[i] - act_exact(x[i], OC_ACT_SILU) * u[i]) <=
                        1e-6 * (fabs(x[i]) + 1) * u[i]);
        /* the backward passes against central differences of the double versions */
        const oc_kern *kr = oc_kern_get();
        float *d1 = malloc(n * 4), *d2 = malloc(n * 4);
        kr->gelu_tanh_bwd(d1, u, x, n);
        for (size_t i = 0; i < n; i++) {
            double h = 1e-4 * (fabs(x[i]) + 1);
            double g = (act_exact(x[i] + h, OC_ACT_GELU_TANH) -
                        act_exact(x[i] - h, OC_ACT_GELU_TANH)) / (2 * h);
            assert_true(fabs(d1[i] - u[i] * g) <= 1e-5 * u[i] * (fabs(g) + 1));
        }
        kr->swiglu_bwd(d1, d2, u, x, u, n); /* dy = u, up = u */
        for (size_t i = 0; i < n; i++) {
            double g = x[i], sg = 1 / (1 + exp(-g));
            assert_true(fabs(d2[i] - u[i] * g * sg) <= 1e-5 * (fabs(u[i] * g) + 1));
            assert_true(fabs(d1[i] - u[i] * u[i] * sg * (1 + g * (1 - sg))) <=
                        1e-5 * (fabs(u[i] * u[i] * g) + 1));
        }
        free(d1), free(d2);
    }
    oc_cpu_force(OC_ISA_AVX512);
    free(x), free(y), free(u);
    execs_free(&e);
}

/* ---- masks of key ranges, gated MLPs, soft-capping, RoPE at positions, layouts --------- */

/* out (T, H*D) of attention over keys [lo[t], hi[t]) in double. */
static void naive_attention_ranges(double *out, const float *q, const float *k, const float *v,
                                   size_t T, size_t H, size_t KVH, size_t D, const size_t *lo,
                                   const size_t *hi, double scale) {
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / (H / KVH);
            double mx = -1e300, sum = 0, *sc = malloc((hi[t] - lo[t]) * sizeof(double));
            for (size_t j = lo[t]; j < hi[t]; j++) {
                double d = 0;
                for (size_t i = 0; i < D; i++)
                    d += (double)q[(t * H + h) * D + i] * k[(j * KVH + kh) * D + i];
                sc[j - lo[t]] = d * scale;
                mx = fmax(mx, sc[j - lo[t]]);
            }
            for (size_t j = lo[t]; j < hi[t]; j++)
                sum += (sc[j - lo[t]] = exp(sc[j - lo[t]] - mx));
            for (size_t i = 0; i < D; i++) {
                double o = 0;
                for (size_t j = lo[t]; j < hi[t]; j++)
                    o += sc[j - lo[t]] / sum * v[(j * KVH + kh) * D + i];
                out[(t * H + h) * D + i] = o;
            }
            free(sc);
        }
}

/* The masks the families use, as key ranges per query: a sliding window over a cache,
 * causal rows widened to bidirectional spans, windows of a reordered image (full rows
 * inside each window), and random ranges; at every level, on one and three threads, with
 * no scratch, with saved probabilities (zero outside each range), and an explicit scale. */
static void test_attention_ranges(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 11);
    enum { SLIDING, SPANS, WINDOWS, RANDOM };
    const size_t cases[][7] = {
        /* kind, T, S, H, KVH, D, param */
        {SLIDING, 1, 40, 4, 2, 16, 8},   {SLIDING, 3, 40, 4, 2, 16, 8},
        {SLIDING, 150, 170, 4, 2, 16, 24}, {SPANS, 90, 100, 2, 1, 8, 16},
        {WINDOWS, 130, 130, 4, 4, 8, 20}, {WINDOWS, 64, 64, 2, 2, 32, 64},
        {RANDOM, 77, 120, 3, 1, 24, 0},  {RANDOM, 2, 300, 2, 2, 8, 0},
    };
    oc_isa lv[3];
    int nl = levels(lv);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t kind = cases[c][0], T = cases[c][1], S = cases[c][2], H = cases[c][3],
               KVH = cases[c][4], D = cases[c][5], P = cases[c][6];
        size_t *lo = malloc(T * sizeof *lo), *hi = malloc(T * sizeof *hi);
        for (size_t t = 0; t < T; t++) {
            size_t pos = S - T + t; /* the query's position among the keys */
            if (kind == SLIDING) {
                lo[t] = pos + 1 > P ? pos + 1 - P : 0;
                hi[t] = pos + 1;
            } else if (kind == SPANS) { /* spans of P keys at queries 20, 50, 80 */
                lo[t] = 0;
                hi[t] = pos + 1;
                for (size_t a = S - T + 20; a + P <= S; a += 30)
                    if (pos >= a && pos < a + P)
                        hi[t] = a + P;
            } else if (kind == WINDOWS) {
                lo[t] = t / P * P;
                hi[t] = lo[t] + P < S ? lo[t] + P : S;
            } else {
                size_t x = (size_t)(oc_rng_uniform(&r) * (double)S),
                       y = (size_t)(oc_rng_uniform(&r) * (double)S);
                lo[t] = x < y ? x : y;
                hi[t] = (x < y ? y : x) + 1;
                hi[t] = hi[t] > S ? S : hi[t];
            }
        }
        float *q = rand_vec(&r, T * H * D), *k = rand_vec(&r, S * KVH * D),
              *v = rand_vec(&r, S * KVH * D);
        float *out = malloc(T * H * D * 4), *out2 = malloc(T * H * D * 4),
              *wantf = malloc(T * H * D * 4), *probs = malloc(H * T * S * 4);
        double *want = malloc(T * H * D * 8);
        float scale = c % 2 ? 0.3f : 0.0f;
        naive_attention_ranges(want, q, k, v, T, H, KVH, D, lo, hi,
                               scale ? scale : 1 / sqrt((double)D));
        for (size_t i = 0; i < T * H * D; i++)
            wantf[i] = (float)want[i];
        oc_attn_shape sh = {.T = T, .S = S, .H = H, .KVH = KVH, .D = D, .kv_stride = KVH * D,
                            .causal = 1, .scale = scale, .kv_lo = lo, .kv_hi = hi};
        for (int l = 0; l < nl; l++) {
            oc_cpu_force(lv[l]);
            oc_attention(&e.one, out, NULL, q, k, v, &sh);
            assert_true(rel_diff(out, wantf, T * H * D) < 1e-5);
            oc_attention(&e.many, out2, NULL, q, k, v, &sh);
            assert_memory_equal(out, out2, T * H * D * 4);
            oc_attention(&e.none, out2, NULL, q, k, v, &sh);
            assert_true(rel_diff(out2, wantf, T * H * D) < 1e-5);
            oc_attention(&e.none, out2, probs, q, k, v, &sh);
            assert_true(rel_diff(out2, wantf, T * H * D) < 1e-5);
            memset(probs, 0x7f, H * T * S * 4); /* every entry must be written */
            oc_attention(&e.many, out2, probs, q, k, v, &sh);
            assert_true(rel_diff(out2, wantf, T * H * D) < 1e-5);
            for (size_t h = 0; h < H; h++)
                for (size_t t = 0; t < T; t++) {
                    double sum = 0;
                    for (size_t j = 0; j < S; j++) {
                        float p = probs[(h * T + t) * S + j];
                        sum += p;
                        if (j < lo[t] || j >= hi[t])
                            assert_true(p == 0.0f);
                    }
                    assert_true(fabs(sum - 1) < 1e-5);
                }
        }
        oc_cpu_force(OC_ISA_AVX512);
        free(q), free(k), free(v), free(out), free(out2), free(wantf), free(probs), free(want);
        free(lo), free(hi);
    }
    execs_free(&e);
}

/* GeGLU and SwiGLU through oc_glu (silu: oc_swiglu's bits), oc_scale, oc_softcap. */
static void test_glu_softcap(void **state) {
    (void)state;
    execs e;
    execs_init(&e);
    oc_rng r;
    oc_rng_seed(&r, 5);
    size_t n = 40000; /* several tasks */
    float *g = rand_vec(&r, n), *u = rand_vec(&r, n), *y = malloc(n * 4), *y2 = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        g[i] *= 8;
    oc_isa lv[3];
    int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        oc_cpu_force(lv[l]);
        oc_glu(&e.many, y, g, u, n, OC_ACT_GELU_TANH);
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(y[i] - act_exact(g[i], OC_ACT_GELU_TANH) * u[i]) <=
                        1e-6 * (fabs(g[i]) + 1));
        oc_glu(&e.one, y2, g, u, n, OC_ACT_SILU);
        oc_swiglu(&e.one, y, g, u, n);
        assert_memory_equal(y, y2, n * 4);
        memcpy(y, g, n * 4);
        oc_glu(&e.many, y, y, u, n, OC_ACT_GELU); /* out == gate */
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(y[i] - act_exact(g[i], OC_ACT_GELU) * u[i]) <=
                        1e-6 * (fabs(g[i]) + 1));
        memcpy(y, g, n * 4);
        oc_scale(&e.many, y, 0.25f, n);
        for (size_t i = 0; i < n; i++)
            assert_true(y[i] == g[i] * 0.25f);
    }
    oc_cpu_force(OC_ISA_AVX512);
    memcpy(y, g, n * 4);
    oc_softcap(&e.many, y, n, 3.0f);
    for (size_t i = 0; i < n; i++) {
        assert_true(fabs(y[i] - tanh(g[i] / 3.0) * 3.0) < 1e-6);
        assert_true(fabsf(y[i]) <= 3.0f);
    }
    free(g), free(u), free(y), free(y2);
    execs_free(&e);
}

/* Tables at explicit positions: one section of consecutive positions is oc_rope_tables
 * bit for bit; sections take their positions' rows; linear scaling divides the
 * frequencies; BF16 rounds them. */
static void test_rope_positions(void **state) {
    (void)state;
    size_t D = 16, half = 8, T = 5;
    float inv[8], c1[5 * 8], s1[5 * 8], c2[5 * 8], s2[5 * 8];
    oc_rope_inv_freq(inv, half, D, 10000.0f, 1.0f, OC_DT_F32);
    int32_t pos[3 * 5] = {7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 20, 30, 40, 50, 60};
    uint32_t one[1] = {8};
    oc_rope_tables_pos(c1, s1, inv, half, pos, T, one, 1);
    oc_rope_tables(c2, s2, 7, T, D, 10000.0f, OC_DT_F32);
    assert_memory_equal(c1, c2, sizeof c1);
    assert_memory_equal(s1, s2, sizeof s1);
    uint32_t three[3] = {2, 3, 3};
    oc_rope_tables_pos(c1, s1, inv, half, pos, T, three, 3);
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < half; i++) {
            size_t sec = i < 2 ? 0 : i < 5 ? 1 : 2;
            assert_true(c1[t * half + i] == cosf((float)pos[sec * T + t] * inv[i]));
            assert_true(s1[t * half + i] == sinf((float)pos[sec * T + t] * inv[i]));
        }
    float inv8[8], invb[8];
    oc_rope_inv_freq(inv8, half, D, 10000.0f, 8.0f, OC_DT_F32);
    oc_rope_inv_freq(invb, half, D, 10000.0f, 1.0f, OC_DT_BF16);
    for (size_t i = 0; i < half; i++) {
        assert_true(inv8[i] == inv[i] / 8.0f);
        assert_true(fabsf(invb[i] - inv[i]) <= inv[i] / 128);
        assert_true(invb[i] == oc_bf16_to_f32(oc_f32_to_bf16(invb[i])));
    }
}

/* Group permutations and their inverse; average pooling against its definition. */
static void test_layouts(void **state) {
    (void)state;
    oc_rng r;
    oc_rng_seed(&r, 9);
    size_t n = 6, w = 5, idx[6] = {3, 0, 5, 1, 4, 2};
    float *src = rand_vec(&r, n * w), *dst = malloc(n * w * 4), *back = malloc(n * w * 4);
    oc_permute_groups(dst, src, idx, n, w, 0);
    for (size_t i = 0; i < n; i++)
        assert_memory_equal(dst + i * w, src + idx[i] * w, w * 4);
    oc_permute_groups(back, dst, idx, n, w, 1);
    assert_memory_equal(back, src, n * w * 4);
    size_t g = 8, C = 3, k = 4;
    float *in = rand_vec(&r, g * g * C), out[4 * 3];
    oc_avg_pool_grid(out, in, g, C, k);
    for (size_t oy = 0; oy < 2; oy++)
        for (size_t ox = 0; ox < 2; ox++)
            for (size_t c = 0; c < C; c++) {
                double s = 0;
                for (size_t y = 0; y < k; y++)
                    for (size_t x = 0; x < k; x++)
                        s += in[((oy * k + y) * g + ox * k + x) * C + c];
                assert_true(fabs(out[(oy * 2 + ox) * C + c] - s / 16) < 1e-6);
            }
    free(src), free(dst), free(back), free(in);
}

/* ---- the thread pool ---------------------------------------------------------------- */

typedef struct {
    int *hits;
    oc_pool *pool;
    int nested_ok;
} pool_ctx;

static void count_task(void *ctx, size_t t, int thread) {
    pool_ctx *c = ctx;
    assert_true(thread >= 0 && thread < oc_pool_size(c->pool));
    __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
}

static void nested_task(void *ctx, size_t t, int thread) {
    pool_ctx *c = ctx;
    int inner[5] = {0};
    pool_ctx ic = {inner, c->pool, 0};
    oc_pool_run(c->pool, 5, count_task, &ic); /* inline, on this thread */
    for (int i = 0; i < 5; i++)
        if (inner[i] != 1)
            __atomic_store_n(&c->nested_ok, 0, __ATOMIC_RELAXED);
    assert_int_equal(oc_pool_current_thread(), thread);
    __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
}

typedef struct {
    size_t *seen;
} range_ctx;

static void range_task(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    range_ctx *c = ctx;
    for (size_t i = i0; i < i1; i++)
        __atomic_fetch_add(&c->seen[i], 1, __ATOMIC_RELAXED);
}

/* Every task runs exactly once, on a valid thread, over many jobs in a row (the handover
 * between jobs), nested runs run inline, ranges cover [0, n) once. */
static void test_pool(void **state) {
    (void)state;
    for (int nt = 1; nt <= 4; nt++) {
        oc_pool *p;
        assert_int_equal(oc_pool_new(nt, &p), OC_OK);
        assert_int_equal(oc_pool_size(p), nt);
        int hits[97];
        for (int job = 0; job < 200; job++) {
            size_t n = (size_t)(job % 97) + 1;
            memset(hits, 0, sizeof hits);
            pool_ctx c = {hits, p, 1};
            oc_pool_run(p, n, job % 10 == 0 ? nested_task : count_task, &c);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(hits[i], 1);
            assert_int_equal(c.nested_ok, 1);
        }
        size_t seen[1000] = {0};
        range_ctx rc = {seen};
        oc_pool_for(p, 1000, 7, range_task, &rc);
        for (size_t i = 0; i < 1000; i++)
            assert_int_equal(seen[i], 1);
        assert_int_equal(oc_pool_current_thread(), -1);
        oc_pool_free(p);
    }
    oc_pool_free(NULL);
    assert_int_equal(oc_pool_size(NULL), 1);
}

/* Greedy picks the argmax; top-k 1 is greedy whatever the temperature; the same seed
 * gives the same draws; the repetition penalty divides positive logits. */
static void test_sampling(void **state) {
    (void)state;
    float logits[6] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f, -3.0f}, l[6], sf[6];
    int32_t si[6];
    oc_rng r1, r2;
    oc_rng_seed(&r1, 7);
    oc_rng_seed(&r2, 7);
    oc_sampler greedy = {0, 0, 1, 1};
    memcpy(l, logits, sizeof l);
    assert_int_equal(oc_sample(&greedy, l, 6, NULL, 0, &r1, sf, si), 1);
    oc_sampler top1 = {5.0f, 1, 1, 1};
    memcpy(l, logits, sizeof l);
    assert_int_equal(oc_sample(&top1, l, 6, NULL, 0, &r1, sf, si), 1);
    oc_sampler pen = {0, 0, 1, 2.0f};
    int32_t hist[] = {1};
    memcpy(l, logits, sizeof l);
    assert_int_equal(oc_sample(&pen, l, 6, hist, 1, &r1, sf, si), 3); /* 2.0/2 < 1.9 */
    oc_sampler hot = {1.0f, 0, 0.9f, 1};
    oc_rng_seed(&r1, 9);
    oc_rng_seed(&r2, 9);
    for (int k = 0; k < 50; k++) {
        memcpy(l, logits, sizeof l);
        int32_t a = oc_sample(&hot, l, 6, NULL, 0, &r1, sf, si);
        memcpy(l, logits, sizeof l);
        int32_t b = oc_sample(&hot, l, 6, NULL, 0, &r2, sf, si);
        assert_int_equal(a, b);
        assert_true(a != 5); /* outside the top-p nucleus */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),        cmocka_unit_test(test_matmul_formats),
        cmocka_unit_test(test_quantize_q8_0), cmocka_unit_test(test_norms),
        cmocka_unit_test(test_attention),   cmocka_unit_test(test_rope),
        cmocka_unit_test(test_activations), cmocka_unit_test(test_pool),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_attention_ranges), cmocka_unit_test(test_glu_softcap),
        cmocka_unit_test(test_rope_positions), cmocka_unit_test(test_layouts),
    };
    printf("kernels: CPU %s\n", oc_cpu()->name);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
