#include "ops.h"

#include <math.h>
#include <string.h>

#include "kern.h"

/* Elements per task of the loops here. */
#define GRAIN 16384

static size_t rows_grain(size_t C) {
    size_t g = GRAIN / (C ? C : 1);
    return g ? g : 1;
}

/* ---- zeroing and column sums ------------------------------------------------------ */

typedef struct {
    float *x;
} zero_job;

static void zero_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    memset(((zero_job *)ctx)->x + i0, 0, (i1 - i0) * sizeof(float));
}

void oc_t_zero(oc_exec *ex, float *x, size_t n) {
    zero_job j = {x};
    oc_pool_for(ex->pool, n, 16 * GRAIN, zero_range, &j);
}

/* acc (C) += sum over the T rows of a (T, C) [times b (T, C) when b != NULL]: each
 * column summed in row order, blocks of columns as tasks. For layernorm's weight
 * gradient, the product is dout * xhat with xhat = (inp - mean) * rstd. */
typedef struct {
    float *acc;
    const float *a, *inp, *mean, *rstd;
    size_t T, C;
} colsum_job;

static void colsum_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const colsum_job *j = ctx;
    for (size_t t = 0; t < j->T; t++) {
        const float *a = j->a + t * j->C, *x = j->inp ? j->inp + t * j->C : NULL;
        float m = j->mean ? j->mean[t] : 0.0f, r = j->rstd ? j->rstd[t] : 1.0f;
        for (size_t i = i0; i < i1; i++)
            j->acc[i] += x ? a[i] * ((x[i] - m) * r) : a[i];
    }
}

static void column_sum(oc_exec *ex, float *acc, const float *a, const float *inp,
                       const float *mean, const float *rstd, size_t T, size_t C) {
    colsum_job j = {acc, a, inp, mean, rstd, T, C};
    oc_pool_for(T * C > GRAIN ? ex->pool : NULL, C, 64, colsum_range, &j);
}

/* ---- linear layers ------------------------------------------------------------------ */

void oc_t_linear_fwd(oc_exec *ex, float *out, const float *inp, const float *w,
                     const float *b, size_t T, size_t IC, size_t OC) {
    oc_gemm(ex, 0, 1, T, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
    if (b)
        oc_add_rows(ex, out, b, T, OC);
}

void oc_t_linear_bwd(oc_exec *ex, float *dinp, float beta, float *dw, float *db,
                     const float *dout, const float *inp, const float *w, size_t T,
                     size_t IC, size_t OC) {
    if (dinp)
        oc_gemm(ex, 0, 0, T, IC, OC, 1.0f, dout, OC, w, IC, beta, dinp, IC);
    /* dw (OC, IC) += dout^T (OC, T) @ inp (T, IC) */
    oc_gemm(ex, 1, 0, OC, IC, T, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
    if (db)
        column_sum(ex, db, dout, NULL, NULL, NULL, T, OC);
}

/* ---- norms ---------------------------------------------------------------------------- */

typedef struct {
    float *dinp;
    const float *dout, *inp, *mean, *rstd, *w;
    size_t C;
} norm_bwd_job;

static void layernorm_bwd_rows(void *ctx, size_t t0, size_t t1, int thread) {
    (void)thread;
    const norm_bwd_job *j = ctx;
    size_t C = j->C;
    for (size_t t = t0; t < t1; t++) {
        const float *x = j->inp + t * C, *dy = j->dout + t * C;
        float *dx = j->dinp + t * C;
        float m = j->mean[t], r = j->rstd[t];
        /* dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
        double sg = 0, sgx = 0;
        for (size_t i = 0; i < C; i++) {
            float g = dy[i] * j->w[i], xh = (x[i] - m) * r;
            sg += g;
            sgx += (double)g * xh;
        }
        float mg = (float)(sg / (double)C), mgx = (float)(sgx / (double)C);
        for (size_t i = 0; i < C; i++) {
            float xh = (x[i] - m) * r;
            dx[i] += r * (dy[i] * j->w[i] - mg - xh * mgx);
        }
    }
}

void oc_t_layernorm_bwd(oc_exec *ex, float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *mean, const float *rstd,
                        const float *w, size_t T, size_t C) {
    norm_bwd_job j = {dinp, dout, inp, mean, rstd, w, C};
    oc_pool_for(ex->pool, T, rows_grain(C), layernorm_bwd_rows, &j);
    column_sum(ex, dw, dout, inp, mean, rstd, T, C);
    column_sum(ex, db, dout, NULL, NULL, NULL, T, C);
}

static void rmsnorm_bwd_rows(void *ctx, size_t t0, size_t t1, int thread) {
    (void)thread;
    const norm_bwd_job *j = ctx;
    size_t C = j->C;
    for (size_t t = t0; t < t1; t++) {
        const float *x = j->inp + t * C, *dy = j->dout + t * C;
        float *dx = j->dinp + t * C;
        float r = j->rstd[t];
        /* dx = r * (g - xhat * mean(g * xhat)), g = dy * w */
        double sgx = 0;
        for (size_t i = 0; i < C; i++)
            sgx += (double)(dy[i] * j->w[i]) * (x[i] * r);
        float mgx = (float)(sgx / (double)C);
        for (size_t i = 0; i < C; i++)
            dx[i] += r * (dy[i] * j->w[i] - (x[i] * r) * mgx);
    }
}

void oc_t_rmsnorm_bwd(oc_exec *ex, float *dinp, float *dw, const float *dout,
                      const float *inp, const float *rstd, const float *w, size_t T,
                      size_t C) {
    norm_bwd_job j = {dinp, dout, inp, NULL, rstd, w, C};
    oc_pool_for(ex->pool, T, rows_grain(C), rmsnorm_bwd_rows, &j);
    column_sum(ex, dw, dout, inp, NULL, rstd, T, C);
}

/* ---- activations ---------------------------------------------------------------------- */

typedef struct {
    const oc_kern *kr;
    float *d1, *d2;
    const float *dout, *a, *b;
} act_bwd_job;

static void gelu_bwd_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const act_bwd_job *j = ctx;
    j->kr->gelu_tanh_bwd(j->d1 + i0, j->dout + i0, j->a + i0, i1 - i0);
}

void oc_t_gelu_tanh_bwd(oc_exec *ex, float *dinp, const float *dout, const float *inp,
                        size_t n) {
    act_bwd_job j = {oc_kern_get(), dinp, NULL, dout, inp, NULL};
    oc_pool_for(ex->pool, n, GRAIN, gelu_bwd_range, &j);
}

static void swiglu_bwd_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const act_bwd_job *j = ctx;
    j->kr->swiglu_bwd(j->d1 + i0, j->d2 + i0, j->dout + i0, j->a + i0, j->b + i0, i1 - i0);
}

void oc_t_swiglu_bwd(oc_exec *ex, float *dgate, float *dup, const float *dout,
                     const float *gate, const float *up, size_t n) {
    act_bwd_job j = {oc_kern_get(), dgate, dup, dout, gate, up};
    oc_pool_for(ex->pool, n, GRAIN, swiglu_bwd_range, &j);
}

/* ---- attention -------------------------------------------------------------------------- */

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

typedef struct {
    oc_exec *ex;
    float *y, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dy, *p;
    const oc_t_seqs *sq;
    size_t H, KVH, D, maxn;
    int causal;
} attn_job;

static void seq_fwd(void *ctx, size_t s, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    size_t r, n, a, HD = j->H * j->D, KD = j->KVH * j->D;
    seq_span(j->sq, s, j->H, &r, &n, &a);
    oc_attn_shape sh = {.T = n, .S = n, .H = j->H, .KVH = j->KVH, .D = j->D, .kv_stride = KD,
                        .causal = j->causal};
    oc_attention(j->ex, j->y + r * HD, j->att + a, j->q + r * HD, j->k + r * KD,
                 j->v + r * KD, &sh);
}

void oc_t_attention_fwd(oc_exec *ex, float *y, float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH, size_t D,
                        int causal) {
    attn_job j = {.ex = ex, .y = y, .att = att, .q = q, .k = k, .v = v, .sq = sq, .H = H,
                  .KVH = KVH, .D = D, .causal = causal};
    /* many sequences: one per task (attention then runs inline); few: attention's own
     * blocks share the threads */
    if (sq->n_seq >= (size_t)oc_pool_size(ex->pool))
        oc_pool_run(ex->pool, sq->n_seq, seq_fwd, &j);
    else
        for (size_t s = 0; s < sq->n_seq; s++)
            seq_fwd(&j, s, 0);
}

size_t oc_t_attention_scratch(const oc_exec *ex, size_t maxn) {
    return (size_t)oc_pool_size(ex->pool) * maxn * maxn;
}

/* The heads of KV group g over one sequence of n rows; ds (n, n) is scratch. */
static void group_bwd(oc_exec *ex, float *dq, float *dk, float *dv, float *ds, const float *dy,
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
        oc_gemm(ex, 1, 0, n, D, n, 1.0f, p, n, dyh, ldq, 1.0f, dv + g * D, ldk);
        /* dp (n, n) = dy_h (n, D) @ v_g^T (D, n) */
        oc_gemm(ex, 0, 1, n, n, D, 1.0f, dyh, ldq, v + g * D, ldk, 0.0f, ds, n);
        /* ds = p * (dp - sum_j dp * p) * scale; masked entries have p = 0 */
        for (size_t i = 0; i < n; i++) {
            const float *pr = p + i * n;
            float *dr = ds + i * n;
            float dot = 0;
            for (size_t c = 0; c < n; c++)
                dot += pr[c] * dr[c];
            for (size_t c = 0; c < n; c++)
                dr[c] = pr[c] * (dr[c] - dot) * scale;
        }
        /* dq_h (n, D) = ds (n, n) @ k_g (n, D);  dk_g (n, D) += ds^T @ q_h */
        oc_gemm(ex, 0, 0, n, D, n, 1.0f, ds, n, k + g * D, ldk, 0.0f, dq + h * D, ldq);
        oc_gemm(ex, 1, 0, n, D, n, 1.0f, ds, n, q + h * D, ldq, 1.0f, dk + g * D, ldk);
    }
}

static void item_bwd(void *ctx, size_t it, int thread) {
    const attn_job *j = ctx;
    size_t s = it / j->KVH, g = it % j->KVH, r, n, a, HD = j->H * j->D, KD = j->KVH * j->D;
    seq_span(j->sq, s, j->H, &r, &n, &a);
    float *ds = j->scratch + (size_t)thread * j->maxn * j->maxn;
    group_bwd(j->ex, j->dq + r * HD, j->dk + r * KD, j->dv + r * KD, ds, j->dy + r * HD,
              j->p + a, j->q + r * HD, j->k + r * KD, j->v + r * KD, n, j->H, j->KVH, j->D, g);
}

void oc_t_attention_bwd(oc_exec *ex, float *dq, float *dk, float *dv, float *scratch,
                        const float *dy, const float *att, const float *q, const float *k,
                        const float *v, const oc_t_seqs *sq, size_t H, size_t KVH,
                        size_t D) {
    size_t maxn = 0;
    for (size_t s = 0; s < sq->n_seq; s++) {
        size_t r, n, a;
        seq_span(sq, s, H, &r, &n, &a);
        maxn = n > maxn ? n : maxn;
    }
    attn_job j = {.ex = ex, .dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k,
                  .v = v, .dy = dy, .p = att, .sq = sq, .H = H, .KVH = KVH, .D = D,
                  .maxn = maxn};
    /* every item writes its own rows and heads: the result does not depend on the pool */
    oc_pool_run(ex->pool, sq->n_seq * KVH, item_bwd, &j);
}
