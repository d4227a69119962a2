/* Kernels against plain double-precision versions written here, and the SIMD paths
 * against the library's reference paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "sample.h"
#include "testutil.h"

static float frand(oc_rng *r) { return (float)(oc_rng_uniform(r) * 2 - 1); }

/* out (T, OC) = inp (T, IC) @ w^T in double */
static void naive_matmul(double *out, const float *inp, const float *w, size_t T, size_t IC,
                         size_t OC) {
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (size_t i = 0; i < IC; i++)
                s += (double)inp[t * IC + i] * w[o * IC + i];
            out[t * OC + o] = s;
        }
}

static void test_matmul_dtypes(void **state) {
    (void)state;
    oc_rng r;
    oc_rng_seed(&r, 1);
    size_t IC = 77, OC = 300; /* odd sizes exercise the SIMD tails */
    float *w = malloc(IC * OC * 4), *wr = malloc(IC * OC * 4), *inp = malloc(10 * IC * 4);
    uint16_t *wh = malloc(IC * OC * 2);
    float *out = malloc(10 * OC * 4), *out_ref = malloc(10 * OC * 4), bias[300];
    double *want = malloc(10 * OC * 8);
    for (size_t i = 0; i < IC * OC; i++)
        w[i] = frand(&r);
    for (size_t i = 0; i < 10 * IC; i++)
        inp[i] = frand(&r);
    for (size_t i = 0; i < OC; i++)
        bias[i] = frand(&r);
    oc_dtype dts[] = {OC_DT_F32, OC_DT_BF16, OC_DT_F16};
    size_t Ts[] = {1, 3, 10};
    for (int d = 0; d < 3; d++) {
        oc_weight W = {w, dts[d], (int64_t)OC, (int64_t)IC};
        if (dts[d] != OC_DT_F32) {
            for (size_t i = 0; i < IC * OC; i++) {
                wh[i] = dts[d] == OC_DT_BF16 ? oc_f32_to_bf16(w[i]) : oc_f32_to_f16(w[i]);
                wr[i] = dts[d] == OC_DT_BF16 ? oc_bf16_to_f32(wh[i]) : oc_f16_to_f32(wh[i]);
            }
            W.data = wh;
        } else {
            memcpy(wr, w, IC * OC * 4);
        }
        for (int k = 0; k < 3; k++) {
            size_t T = Ts[k];
            naive_matmul(want, inp, wr, T, IC, OC);
            assert_int_equal(oc_matmul(out, inp, &W, bias, T), OC_OK);
            oc_kernels_force_reference(1);
            assert_int_equal(oc_matmul(out_ref, inp, &W, bias, T), OC_OK);
            oc_kernels_force_reference(0);
            for (size_t i = 0; i < T * OC; i++) {
                double e = want[i] + bias[i % OC];
                assert_true(fabs(out[i] - e) < 1e-4);
                assert_true(fabs(out_ref[i] - e) < 1e-4);
            }
        }
    }
    free(w), free(wr), free(inp), free(wh), free(out), free(out_ref), free(want);
}

static void test_norms(void **state) {
    (void)state;
    oc_rng r;
    oc_rng_seed(&r, 2);
    size_t T = 5, C = 33;
    float x[165], y[165], w[33], b[33];
    for (size_t i = 0; i < T * C; i++)
        x[i] = frand(&r) * 3 + 1;
    for (size_t i = 0; i < C; i++)
        w[i] = frand(&r), b[i] = frand(&r);
    oc_layernorm(y, x, w, b, T, C, 1e-5f);
    for (size_t t = 0; t < T; t++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++)
            m += x[t * C + i];
        m /= C;
        for (size_t i = 0; i < C; i++)
            v += (x[t * C + i] - m) * (x[t * C + i] - m);
        v /= C;
        for (size_t i = 0; i < C; i++)
            assert_true(fabs(y[t * C + i] - ((x[t * C + i] - m) / sqrt(v + 1e-5) * w[i] + b[i])) <
                        1e-5);
    }
    oc_rmsnorm(y, x, w, T, C, 1e-5f);
    for (size_t t = 0; t < T; t++) {
        double ss = 0;
        for (size_t i = 0; i < C; i++)
            ss += (double)x[t * C + i] * x[t * C + i];
        double rr = 1 / sqrt(ss / C + 1e-5);
        for (size_t i = 0; i < C; i++)
            assert_true(fabs(y[t * C + i] - x[t * C + i] * rr * w[i]) < 1e-5);
    }
}

/* Causal GQA attention against the textbook formula. */
static void test_attention(void **state) {
    (void)state;
    oc_rng r;
    oc_rng_seed(&r, 3);
    size_t T = 3, S = 7, H = 4, KVH = 2, D = 8, past = S - T;
    float q[3 * 32], k[7 * 16], v[7 * 16], out[3 * 32];
    for (size_t i = 0; i < sizeof q / 4; i++)
        q[i] = frand(&r);
    for (size_t i = 0; i < sizeof k / 4; i++)
        k[i] = frand(&r), v[i] = frand(&r);
    assert_int_equal(oc_attention(out, q, k, v, KVH * D, T, S, H, KVH, D, 1), OC_OK);
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / (H / KVH), n = past + t + 1;
            double sc[7], mx = -1e30, sum = 0;
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
                assert_true(fabs(out[(t * H + h) * D + i] - o) < 1e-5);
            }
        }
}

/* RoPE rotates pairs (i, i + D/2) by pos * theta^(-2i/D). */
static void test_rope(void **state) {
    (void)state;
    size_t D = 8, half = 4;
    float c[2 * 4], s[2 * 4], x[2 * 8];
    oc_rope_tables(c, s, 5, 2, D, 10000.0f);
    for (size_t i = 0; i < 16; i++)
        x[i] = (float)i + 1;
    float x0[16];
    memcpy(x0, x, sizeof x);
    oc_rope_apply(x, c, s, 2, 1, D);
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < half; i++) {
            double ang = (double)(5 + t) * pow(10000.0, -2.0 * i / D);
            double a = x0[t * D + i], b = x0[t * D + i + half];
            assert_true(fabs(x[t * D + i] - (a * cos(ang) - b * sin(ang))) < 1e-4);
            assert_true(fabs(x[t * D + i + half] - (b * cos(ang) + a * sin(ang))) < 1e-4);
        }
}

static void test_activations(void **state) {
    (void)state;
    float xs[] = {-3, -1, -0.1f, 0, 0.5f, 2};
    for (size_t i = 0; i < 6; i++) {
        double x = xs[i];
        float v[4] = {xs[i], xs[i], xs[i], xs[i]};
        oc_activate(&v[0], 1, OC_ACT_GELU_TANH);
        oc_activate(&v[1], 1, OC_ACT_GELU);
        oc_activate(&v[2], 1, OC_ACT_QUICK_GELU);
        oc_activate(&v[3], 1, OC_ACT_SILU);
        assert_true(fabs(v[0] - 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))) < 1e-6);
        assert_true(fabs(v[1] - 0.5 * x * (1 + erf(x / sqrt(2)))) < 1e-6);
        assert_true(fabs(v[2] - x / (1 + exp(-1.702 * x))) < 1e-6);
        assert_true(fabs(v[3] - x / (1 + exp(-x))) < 1e-6);
    }
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
        cmocka_unit_test(test_matmul_dtypes), cmocka_unit_test(test_norms),
        cmocka_unit_test(test_attention),     cmocka_unit_test(test_rope),
        cmocka_unit_test(test_activations),   cmocka_unit_test(test_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
