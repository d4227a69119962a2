/* Backward passes against finite differences.
 *
 * Per op: a plain double-precision reference of the forward pass, central differences
 * in double (h = 1e-5, error ~1e-10) of loss = sum(out * R) for random R, against the
 * float32 backward kernel on the same (float-representable) inputs. Tolerance 1e-4 of
 * max |gradient|: float32 rounding in the kernel is ~1e-6.
 *
 * Whole model: a tiny random SmolVLM through the trainer (vision tower, pixel shuffle,
 * image features scattered into the token stream, GQA decoder, tied and untied heads,
 * packed micro-batches, gradient accumulation): directional derivatives of every tensor,
 * along its gradient and along a random direction, by a five-point stencil (h = 2e-2,
 * truncation O(h^4)) through the float32 forward pass. Float32 loss noise (~1e-7) limits
 * this to ~5e-4 relative (measured 3.6e-4); wiring mistakes show as O(1) errors, so
 * 2e-3 is the bar. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector_train.h"
#include "kernels.h"
#include "ops.h"
#include "params.h"
#include "testutil.h"
#include "train_fixture.h"
#include "trainer_internal.h"

#define H_FD 1e-5

static uint64_t rng_state = 12345;
/* the kernels' execution context: two threads, so the parallel paths are checked too */
static oc_exec X;

static double urand(void) { return fixture_uniform(&rng_state); }

/* Random floats in [lo, hi), stored as doubles (exactly representable in float). */
static void fill(double *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(float)(lo + (hi - lo) * urand());
}

static float *to_f(const double *x, size_t n) {
    float *f = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

typedef double (*loss_fn)(const double *in, const void *ctx);

/* g (n) = d loss / d in by central differences. */
static void numgrad(double *g, double *in, size_t n, loss_fn f, const void *ctx) {
    for (size_t i = 0; i < n; i++) {
        double v = in[i];
        in[i] = v + H_FD;
        double lp = f(in, ctx);
        in[i] = v - H_FD;
        double lm = f(in, ctx);
        in[i] = v;
        g[i] = (lp - lm) / (2 * H_FD);
    }
}

/* max |a - b| / max |b| of float a against double b; prints and checks tol. */
static void expect_close(const char *what, const float *a, const double *b, size_t n,
                         double tol) {
    double mb = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mb = fmax(mb, fabs(b[i]));
        double d = fabs((double)a[i] - b[i]);
        md = isnan(d) ? INFINITY : fmax(md, d);
    }
    double e = md / (mb > 0 ? mb : 1);
    print_message("  %-28s rel err %.2e (max |g| %.3g)\n", what, e, mb);
    if (!(e < tol))
        fail_msg("%s: gradient differs from finite differences (%.3g)", what, e);
}

/* ---- linear --------------------------------------------------------------------- */

typedef struct {
    size_t T, IC, OC;
    const double *R;
} lin_ctx;

static double linear_loss(const double *in, const void *vc) {
    const lin_ctx *c = vc;
    const double *x = in, *w = in + c->T * c->IC, *b = w + c->OC * c->IC;
    double L = 0;
    for (size_t t = 0; t < c->T; t++)
        for (size_t o = 0; o < c->OC; o++) {
            double y = b[o];
            for (size_t i = 0; i < c->IC; i++)
                y += x[t * c->IC + i] * w[o * c->IC + i];
            L += y * c->R[t * c->OC + o];
        }
    return L;
}

static void test_linear(void **state) {
    (void)state;
    lin_ctx c = {3, 5, 4, NULL};
    size_t nx = c.T * c.IC, nw = c.OC * c.IC, n = nx + nw + c.OC;
    double *in = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double)),
           *R = malloc(c.T * c.OC * sizeof(double));
    fill(in, n, -1, 1);
    fill(R, c.T * c.OC, -1, 1);
    c.R = R;
    numgrad(g, in, n, linear_loss, &c);
    float *f = to_f(in, n), *fR = to_f(R, c.T * c.OC);
    float *dx = calloc(nx, sizeof(float)), *dw = calloc(nw, sizeof(float)),
          *db = calloc(c.OC, sizeof(float)), *out = malloc(c.T * c.OC * sizeof(float));
    double fl0 = oc_exec_flops(&X);
    oc_t_linear_fwd(&X, out, f, f + nx, f + nx + nw, c.T, c.IC, c.OC);
    double Lf = 0;
    for (size_t i = 0; i < c.T * c.OC; i++)
        Lf += out[i] * R[i];
    assert_true(fabs(Lf - linear_loss(in, &c)) < 1e-5);
    oc_t_linear_bwd(&X, dx, 0.0f, dw, db, fR, f, f + nx, c.T, c.IC, c.OC);
    expect_close("linear dinp", dx, g, nx, 1e-4);
    expect_close("linear dw", dw, g + nx, nw, 1e-4);
    expect_close("linear db", db, g + nx + nw, c.OC, 1e-4);
    /* beta = 1 accumulates into dinp, and dw/db accumulate too */
    float *dx2 = malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++)
        dx2[i] = 1.0f;
    oc_t_linear_bwd(&X, dx2, 1.0f, dw, db, fR, f, f + nx, c.T, c.IC, c.OC);
    for (size_t i = 0; i < nx; i++)
        assert_true(fabsf(dx2[i] - (1.0f + dx[i])) < 1e-5f);
    for (size_t i = 0; i < nw; i++)
        assert_true(fabs(dw[i] - 2 * g[nx + i]) < 1e-4);
    assert_true(oc_exec_flops(&X) > fl0);
    free(dx2);
    free(in), free(g), free(R), free(f), free(fR), free(dx), free(dw), free(db), free(out);
}

/* ---- layernorm, rmsnorm ----------------------------------------------------------- */

typedef struct {
    size_t T, C;
    double eps;
    int rms;
    const double *R;
} norm_ctx;

static double norm_loss(const double *in, const void *vc) {
    const norm_ctx *c = vc;
    const double *x = in, *w = in + c->T * c->C, *b = w + c->C;
    double L = 0;
    for (size_t t = 0; t < c->T; t++) {
        const double *r = x + t * c->C;
        double m = 0, v = 0;
        for (size_t i = 0; i < c->C; i++)
            m += r[i];
        m = c->rms ? 0 : m / (double)c->C;
        for (size_t i = 0; i < c->C; i++)
            v += (r[i] - m) * (r[i] - m);
        double rs = 1 / sqrt(v / (double)c->C + c->eps);
        for (size_t i = 0; i < c->C; i++) {
            double y = (r[i] - m) * rs * w[i] + (c->rms ? 0 : b[i]);
            L += y * c->R[t * c->C + i];
        }
    }
    return L;
}

static void check_norm(int rms) {
    norm_ctx c = {4, 7, 1e-5, rms, NULL};
    size_t nx = c.T * c.C, n = nx + 2 * c.C;
    double *in = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double)),
           *R = malloc(nx * sizeof(double));
    fill(in, nx, -1, 2); /* a mean away from 0 exercises the centring */
    fill(in + nx, c.C, 0.5, 1.5);
    fill(in + nx + c.C, c.C, -0.5, 0.5);
    fill(R, nx, -1, 1);
    c.R = R;
    numgrad(g, in, n, norm_loss, &c);
    float *f = to_f(in, n), *fR = to_f(R, nx), *out = malloc(nx * sizeof(float)),
          *mean = malloc(c.T * sizeof(float)), *rstd = malloc(c.T * sizeof(float)),
          *dx = calloc(nx, sizeof(float)), *dw = calloc(c.C, sizeof(float)),
          *db = calloc(c.C, sizeof(float));
    if (rms) {
        oc_rmsnorm(&X, out, rstd, f, f + nx, c.T, c.C, (float)c.eps);
        oc_t_rmsnorm_bwd(&X, dx, dw, fR, f, rstd, f + nx, c.T, c.C);
        expect_close("rmsnorm dinp", dx, g, nx, 1e-4);
        expect_close("rmsnorm dw", dw, g + nx, c.C, 1e-4);
    } else {
        oc_layernorm(&X, out, mean, rstd, f, f + nx, f + nx + c.C, c.T, c.C, (float)c.eps);
        oc_t_layernorm_bwd(&X, dx, dw, db, fR, f, mean, rstd, f + nx, c.T, c.C);
        expect_close("layernorm dinp", dx, g, nx, 1e-4);
        expect_close("layernorm dw", dw, g + nx, c.C, 1e-4);
        expect_close("layernorm db", db, g + nx + c.C, c.C, 1e-4);
    }
    double Lf = 0;
    for (size_t i = 0; i < nx; i++)
        Lf += out[i] * R[i];
    assert_true(fabs(Lf - norm_loss(in, &c)) < 1e-4);
    free(in), free(g), free(R), free(f), free(fR), free(out), free(mean), free(rstd);
    free(dx), free(dw), free(db);
}

static void test_layernorm(void **state) {
    (void)state;
    check_norm(0);
}

static void test_rmsnorm(void **state) {
    (void)state;
    check_norm(1);
}

/* ---- activations ------------------------------------------------------------------- */

typedef struct {
    size_t n;
    int swiglu;
    const double *R;
} act_ctx;

static double act_loss(const double *in, const void *vc) {
    const act_ctx *c = vc;
    double L = 0;
    for (size_t i = 0; i < c->n; i++) {
        double x = in[i], y;
        if (c->swiglu)
            y = x / (1 + exp(-x)) * in[c->n + i];
        else
            y = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        L += y * c->R[i];
    }
    return L;
}

static void test_activations(void **state) {
    (void)state;
    for (int sw = 0; sw < 2; sw++) {
        act_ctx c = {64, sw, NULL};
        size_t n = c.n * (sw ? 2 : 1);
        double *in = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double)),
               *R = malloc(c.n * sizeof(double));
        fill(in, n, -5, 5);
        fill(R, c.n, -1, 1);
        c.R = R;
        numgrad(g, in, n, act_loss, &c);
        float *f = to_f(in, n), *fR = to_f(R, c.n), *out = malloc(c.n * sizeof(float)),
              *d1 = malloc(c.n * sizeof(float)), *d2 = malloc(c.n * sizeof(float));
        if (sw) {
            oc_swiglu(&X, out, f, f + c.n, c.n);
            oc_t_swiglu_bwd(&X, d1, d2, fR, f, f + c.n, c.n);
            expect_close("swiglu dgate", d1, g, c.n, 1e-4);
            expect_close("swiglu dup", d2, g + c.n, c.n, 1e-4);
        } else {
            oc_activate(&X, out, f, c.n, OC_ACT_GELU_TANH);
            oc_t_gelu_tanh_bwd(&X, d1, fR, f, c.n);
            expect_close("gelu_tanh", d1, g, c.n, 1e-4);
        }
        double Lf = 0;
        for (size_t i = 0; i < c.n; i++)
            Lf += out[i] * R[i];
        assert_true(fabs(Lf - act_loss(in, &c)) < 1e-4);
        free(in), free(g), free(R), free(f), free(fR), free(out), free(d1), free(d2);
    }
}

/* ---- RoPE -------------------------------------------------------------------------- */

typedef struct {
    size_t T, H, D;
    const float *cs, *sn;
    const double *R;
} rope_ctx;

static double rope_loss(const double *in, const void *vc) {
    const rope_ctx *c = vc;
    size_t half = c->D / 2;
    double L = 0;
    for (size_t t = 0; t < c->T; t++)
        for (size_t h = 0; h < c->H; h++)
            for (size_t i = 0; i < half; i++) {
                size_t o = (t * c->H + h) * c->D;
                double a = in[o + i], b = in[o + i + half], co = c->cs[t * half + i],
                       si = c->sn[t * half + i];
                L += (a * co - b * si) * c->R[o + i] + (b * co + a * si) * c->R[o + i + half];
            }
    return L;
}

static void test_rope(void **state) {
    (void)state;
    rope_ctx c = {6, 2, 8, NULL, NULL, NULL};
    size_t n = c.T * c.H * c.D;
    float *cs = malloc(c.T * c.D / 2 * sizeof(float)), *sn = malloc(c.T * c.D / 2 * sizeof(float));
    oc_rope_tables(cs, sn, 0, c.T, c.D, 10000.0f, OC_DT_F32);
    double *in = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double)),
           *R = malloc(n * sizeof(double));
    fill(in, n, -1, 1);
    fill(R, n, -1, 1);
    c.cs = cs;
    c.sn = sn;
    c.R = R;
    numgrad(g, in, n, rope_loss, &c);
    float *f = to_f(in, n), *d = to_f(R, n);
    oc_rope_apply(&X, f, cs, sn, c.T, c.H, c.D, 1.0f);
    double Lf = 0;
    for (size_t i = 0; i < n; i++)
        Lf += f[i] * R[i];
    assert_true(fabs(Lf - rope_loss(in, &c)) < 1e-5);
    oc_rope_apply(&X, d, cs, sn, c.T, c.H, c.D, -1.0f);
    expect_close("rope", d, g, n, 1e-4);
    free(cs), free(sn), free(in), free(g), free(R), free(f), free(d);
}

/* ---- attention --------------------------------------------------------------------- */

typedef struct {
    size_t n, H, KVH, D;
    int causal;
    const double *R;
} att_ctx;

static double att_loss(const double *in, const void *vc) {
    const att_ctx *c = vc;
    size_t n = c->n, H = c->H, KVH = c->KVH, D = c->D, HD = H * D, KD = KVH * D;
    const double *q = in, *k = q + n * HD, *v = k + n * KD;
    double L = 0, sc[64];
    for (size_t h = 0; h < H; h++) {
        size_t g = h / (H / KVH);
        for (size_t i = 0; i < n; i++) {
            size_t m = c->causal ? i + 1 : n;
            double mx = -INFINITY, sum = 0;
            for (size_t j = 0; j < m; j++) {
                double s = 0;
                for (size_t d = 0; d < D; d++)
                    s += q[i * HD + h * D + d] * k[j * KD + g * D + d];
                sc[j] = s / sqrt((double)D);
                mx = fmax(mx, sc[j]);
            }
            for (size_t j = 0; j < m; j++)
                sum += (sc[j] = exp(sc[j] - mx));
            for (size_t d = 0; d < D; d++) {
                double y = 0;
                for (size_t j = 0; j < m; j++)
                    y += sc[j] / sum * v[j * KD + g * D + d];
                L += y * c->R[i * HD + h * D + d];
            }
        }
    }
    return L;
}

static void check_attention(size_t n, size_t H, size_t KVH, size_t D, int causal) {
    att_ctx c = {n, H, KVH, D, causal, NULL};
    size_t nq = n * H * D, nk = n * KVH * D, tot = nq + 2 * nk;
    double *in = malloc(tot * sizeof(double)), *g = malloc(tot * sizeof(double)),
           *R = malloc(nq * sizeof(double));
    fill(in, tot, -1.5, 1.5);
    fill(R, nq, -1, 1);
    c.R = R;
    numgrad(g, in, tot, att_loss, &c);
    float *f = to_f(in, tot), *fR = to_f(R, nq), *y = malloc(nq * sizeof(float)),
          *att = malloc(H * n * n * sizeof(float)), *dq = malloc(nq * sizeof(float)),
          *dk = malloc(nk * sizeof(float)), *dv = malloc(nk * sizeof(float)),
          *scr = malloc(oc_t_attention_scratch(&X, n) * sizeof(float));
    oc_t_seqs one = {1, NULL, NULL, n};
    oc_t_attention_fwd(&X, y, att, f, f + nq, f + nq + nk, &one, H, KVH, D, causal);
    double Lf = 0;
    for (size_t i = 0; i < nq; i++)
        Lf += y[i] * R[i];
    assert_true(fabs(Lf - att_loss(in, &c)) < 1e-4);
    oc_t_attention_bwd(&X, dq, dk, dv, scr, fR, att, f, f + nq, f + nq + nk, &one, H, KVH, D);
    char what[64];
    snprintf(what, sizeof what, "attention%s %zu/%zu dq", causal ? " causal" : "", H, KVH);
    expect_close(what, dq, g, nq, 1e-4);
    what[strlen(what) - 1] = 'k';
    expect_close(what, dk, g + nq, nk, 1e-4);
    what[strlen(what) - 1] = 'v';
    expect_close(what, dv, g + nq + nk, nk, 1e-4);
    free(in), free(g), free(R), free(f), free(fR), free(y), free(att), free(dq), free(dk);
    free(dv), free(scr);
}

static void test_attention(void **state) {
    (void)state;
    check_attention(5, 4, 4, 4, 0); /* vision: multi-head, not causal */
    check_attention(7, 4, 2, 4, 1); /* text: grouped-query, causal */
    check_attention(6, 3, 1, 2, 1); /* one kv head */
}

/* ---- LM head + cross-entropy ------------------------------------------------------- */

typedef struct {
    size_t R, E, V;
    const int32_t *y;
    double scale;
} ce_ctx;

static double ce_loss(const double *in, const void *vc) {
    const ce_ctx *c = vc;
    const double *x = in, *w = in + c->R * c->E;
    double L = 0, z[64];
    for (size_t r = 0; r < c->R; r++) {
        double mx = -INFINITY, s = 0;
        for (size_t v = 0; v < c->V; v++) {
            z[v] = 0;
            for (size_t e = 0; e < c->E; e++)
                z[v] += x[r * c->E + e] * w[v * c->E + e];
            mx = fmax(mx, z[v]);
        }
        for (size_t v = 0; v < c->V; v++)
            s += exp(z[v] - mx);
        L += mx + log(s) - z[c->y[r]];
    }
    return L * c->scale;
}

static void test_cross_entropy(void **state) {
    (void)state;
    int32_t y[5] = {3, 0, 10, 7, 3};
    ce_ctx c = {5, 6, 11, y, 1.0 / 5};
    size_t nx = c.R * c.E, nw = c.V * c.E, n = nx + nw;
    double *in = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
    fill(in, n, -1, 1);
    numgrad(g, in, n, ce_loss, &c);
    float *f = to_f(in, n), *dx = malloc(nx * sizeof(float)), *dw = calloc(nw, sizeof(float)),
          *scr = malloc(oc_t_ce_scratch(c.R, c.V) * sizeof(float));
    double sum = 0;
    oc_t_lmhead_ce(&X, &sum, dx, dw, f, y, f + nx, c.R, c.E, c.V, (float)c.scale, scr);
    assert_true(fabs(sum * c.scale - ce_loss(in, &c)) < 1e-5);
    expect_close("cross-entropy dx", dx, g, nx, 1e-4);
    expect_close("cross-entropy dw", dw, g + nx, nw, 1e-4);
    free(in), free(g), free(f), free(dx), free(dw), free(scr);
}

/* ---- pixel shuffle: transformers' view/permute chain, step by step ------------------ */

/* Idefics3Connector.pixel_shuffle, one op at a time on a contiguous (seq, C) tile:
 * view (h, w/s, C*s); permute(1, 0, 2) [batch dim dropped]; reshape (w/s, h/s, C*s*s);
 * permute(1, 0, 2); reshape (seq/s^2, C*s*s). A reshape of a permuted tensor copies it
 * in its logical order first, which is what the explicit loops below do. */
static void torch_pixel_shuffle(float *out, const float *x, size_t g, size_t C, size_t s) {
    size_t h = g, w = g, a = w / s, c1 = C * s, b = h / s, c2 = C * s * s;
    float *x2 = malloc(h * w * C * sizeof(float)), *x4 = malloc(h * w * C * sizeof(float));
    /* x1 = view(x) as (h, a, c1); x2 = permute -> (a, h, c1), materialised */
    for (size_t j = 0; j < a; j++)
        for (size_t i = 0; i < h; i++)
            for (size_t c = 0; c < c1; c++)
                x2[(j * h + i) * c1 + c] = x[(i * a + j) * c1 + c];
    /* x3 = x2 reshaped (a, b, c2); x4 = permute -> (b, a, c2), materialised */
    for (size_t i2 = 0; i2 < b; i2++)
        for (size_t j = 0; j < a; j++)
            for (size_t c = 0; c < c2; c++)
                x4[(i2 * a + j) * c2 + c] = x2[(j * b + i2) * c2 + c];
    memcpy(out, x4, h * w * C * sizeof(float)); /* reshape (b*a, c2) */
    free(x2);
    free(x4);
}

static void test_pixel_shuffle(void **state) {
    (void)state;
    const size_t cases[][4] = {{2, 4, 3, 2}, {1, 6, 2, 3}, {3, 8, 5, 2}, {1, 8, 4, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t NT = cases[k][0], g = cases[k][1], C = cases[k][2], s = cases[k][3];
        size_t n = NT * g * g * C;
        float *x = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)),
              *b = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            x[i] = (float)i;
        oc_pixel_shuffle(a, x, NT, g, C, s);
        for (size_t t = 0; t < NT; t++)
            torch_pixel_shuffle(b + t * g * g * C, x + t * g * g * C, g, C, s);
        assert_memory_equal(a, b, n * sizeof(float));
        /* the backward is the inverse permutation */
        oc_pixel_unshuffle(back, a, NT, g, C, s);
        assert_memory_equal(back, x, n * sizeof(float));
        free(x), free(a), free(b), free(back);
    }
}

/* ---- the whole model through the trainer ------------------------------------------- */

static void randomize(oc_params *p, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        int norm = e->ndim == 1 && strstr(e->name, "norm") && strstr(e->name, "weight");
        for (size_t k = 0; k < e->numel; k++) {
            double u = 2 * fixture_uniform(&s) - 1;
            p->mem[e->offset + k] = (float)(norm ? 1 + 0.3 * u : 0.6 * u);
        }
    }
}

static void check_model(int tied, uint32_t batch) {
    const char *dir = tmpdir(tied ? "gc-tied" : "gc-untied");
    fixture_config(dir, tied);
    oc_train_params tp = oc_train_default_params();
    tp.lr = 0; /* the step only computes gradients */
    tp.clip = 0;
    tp.weight_decay = 0;
    tp.batch = batch;
    oc_trainer *tr = NULL;
    if (oc_trainer_new_from_config(dir, &tp, &tr) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_params *p = oc_trainer_params_internal(tr);
    randomize(p, 99);
    fixture_batch fb;
    fixture_examples(&fb, 7, 0);
    oc_train_stats st;
    if (oc_trainer_step(tr, fb.ex, 4, &st) != OC_OK)
        fail_msg("%s", oc_last_error());
    const float *g = oc_trainer_grads_internal(tr);
    double L0;
    assert_int_equal(oc_trainer_eval(tr, fb.ex, 4, &L0), OC_OK);
    assert_true(fabs(L0 - st.loss) < 1e-6 * fabs(L0));

    const double h = 2e-2;
    double worst = 0;
    const char *worst_name = "";
    uint64_t s = 4242;
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        float *w = p->mem + e->offset;
        /* two directions: the gradient's own (largest signal) and a random one */
        for (int dir_kind = 0; dir_kind < 2; dir_kind++) {
            double *v = malloc(e->numel * sizeof(double)), gn = 0;
            for (size_t k = 0; k < e->numel; k++)
                gn += (double)g[e->offset + k] * g[e->offset + k];
            gn = sqrt(gn);
            for (size_t k = 0; k < e->numel; k++)
                v[k] = dir_kind == 0 && gn > 0 ? g[e->offset + k] / gn
                                               : (fixture_uniform(&s) < 0.5 ? -1.0 : 1.0) /
                                                     sqrt((double)e->numel);
            float *saved = malloc(e->numel * sizeof(float));
            memcpy(saved, w, e->numel * sizeof(float));
            double analytic = 0, L[4];
            for (size_t k = 0; k < e->numel; k++)
                analytic += g[e->offset + k] * v[k];
            const double steps[4] = {2 * h, h, -h, -2 * h};
            for (int j = 0; j < 4; j++) {
                for (size_t k = 0; k < e->numel; k++)
                    w[k] = (float)(saved[k] + steps[j] * v[k]);
                assert_int_equal(oc_trainer_eval(tr, fb.ex, 4, &L[j]), OC_OK);
            }
            memcpy(w, saved, e->numel * sizeof(float));
            /* five-point stencil: truncation error O(h^4) */
            double numeric = (8 * (L[1] - L[2]) - (L[0] - L[3])) / (12 * h);
            /* relative to the whole model's gradient scale: tensors with a near-zero
             * gradient (the vision key biases) are judged in absolute terms */
            double err = fabs(numeric - analytic) / fmax(fabs(analytic), 1e-2);
            if (err > worst) {
                worst = err;
                worst_name = e->name;
            }
            if (err > 2e-3)
                print_message("  %s (%s direction): analytic %.6g numeric %.6g\n", e->name,
                              dir_kind ? "random" : "gradient", analytic, numeric);
            free(v);
            free(saved);
        }
    }
    print_message("  whole model (%s, batch %u): %zu tensors, worst directional error %.2e "
                  "(%s)\n", tied ? "tied" : "untied", batch, p->n_tensors, worst, worst_name);
    assert_true(worst < 2e-3);
    free(fb.pixels);
    oc_trainer_free(tr);
}

static void test_whole_model(void **state) {
    (void)state;
    check_model(1, 2); /* tied head, micro-batches of 2 packed examples + accumulation */
    check_model(0, 4); /* untied head, one micro-batch of all four */
}

/* Packing examples into one micro-batch must equal one example at a time. */
static void test_packing_equivalence(void **state) {
    (void)state;
    const char *dir = tmpdir("gc-pack");
    fixture_config(dir, 1);
    float *grads[2];
    double loss[2];
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        oc_train_params tp = oc_train_default_params();
        tp.lr = 0;
        tp.clip = 0;
        tp.batch = k ? 4 : 1;
        oc_trainer *tr = NULL;
        assert_int_equal(oc_trainer_new_from_config(dir, &tp, &tr), OC_OK);
        oc_params *p = oc_trainer_params_internal(tr);
        randomize(p, 5);
        fixture_batch fb;
        fixture_examples(&fb, 3, 1);
        oc_train_stats st;
        assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_OK);
        n = p->numel;
        grads[k] = malloc(n * sizeof(float));
        memcpy(grads[k], oc_trainer_grads_internal(tr), n * sizeof(float));
        loss[k] = st.loss;
        free(fb.pixels);
        oc_trainer_free(tr);
    }
    double ge = rel_err(grads[1], grads[0], n);
    print_message("  packed vs one at a time: loss %.9g vs %.9g, gradient rel err %.2e\n",
                  loss[1], loss[0], ge);
    assert_true(fabs(loss[0] - loss[1]) < 1e-6 * loss[0]);
    assert_true(ge < 1e-5);
    free(grads[0]);
    free(grads[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_pixel_shuffle),
        cmocka_unit_test(test_whole_model),
        cmocka_unit_test(test_packing_equivalence),
    };
    oc_pool *pool;
    if (oc_pool_new(2, &pool) != OC_OK)
        return 1;
    oc_exec_init(&X, pool);
    int fails = cmocka_run_group_tests(tests, NULL, NULL);
    oc_exec_release(&X);
    oc_pool_free(pool);
    return fails;
}
