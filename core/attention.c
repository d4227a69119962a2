/* Scaled dot-product attention (kernels.h).
 *
 * K^T and V of each KV head are packed once into the GEMM's B micro-panels; then blocks
 * of BQ queries of one head are the tasks. A block's scores against the keys it may see
 * are (BQ, S) microkernel tiles over the query rows read in place, softmaxed row by row
 * and multiplied by V the same way: the scores never exist for all T x S at once (the
 * memory of a flash-style kernel, with exact two-pass softmax rows). A causal block sees
 * only the keys up to its last query, so half the square is never computed; a block under
 * a mask of key ranges (kv_lo, kv_hi) computes only the keys its queries see.
 *
 * Decoding (a few queries) splits the keys into runs of SPLIT_KEYS: a task is one run of
 * one KV head for one query, its heads together (K and V read once for the group): the
 * scores as GEMV rows over K, their exponentials, p @ V in registers; the runs' partial
 * sums are then joined with their maxima (flash-decoding), in run order. Without scratch
 * memory, a per-query online softmax over keys on the stack. */
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"

#define BQ 64           /* queries per block */
#define FEW_QUERIES 4   /* up to this many queries: the per-query path */
#define KEY_CHUNK 256   /* keys per step of the online softmax */
#define MAX_HEAD_DIM 1024  /* <= OC_UKR_MAX_KC */
#define KEY_RUN 256         /* keys per microkernel call of p @ v */
#define SPLIT_KEYS 256      /* keys per decoding task */
#define HEADS_AT_ONCE 4     /* query heads of one KV head per GEMV (OC_GEMV_MAX_T) */

typedef struct {
    const oc_attn_shape *sh;
    float *out, *probs;
    const float *q, *k, *v;
    float scale;
    size_t n_blocks;
    oc_exec *ex;
    const oc_kern *kr;
    float *kp, *vp;         /* per KV head: K^T panels (kpn, D, NR), V panels (vpn, S, NR) */
    size_t kpn, vpn;
    float *part;            /* decoding: per (query, head, run) the max, the sum, then D */
    size_t n_runs;
} attn_job;

/* The keys query t sees: [lo, hi). */
static void key_range(const oc_attn_shape *sh, size_t t, size_t *lo, size_t *hi) {
    if (sh->kv_lo) {
        *lo = sh->kv_lo[t];
        *hi = sh->kv_hi[t];
        return;
    }
    *lo = 0;
    *hi = sh->causal ? sh->S - sh->T + t + 1 : sh->S;
}

/* Query t of head h over its keys, exactly: the scores in row (S), softmaxed (the
 * probabilities kept there, zero outside the keys seen), then out_h (D) = row . v. */
static void one_query_row(const attn_job *j, size_t h, size_t t, float *row) {
    const oc_attn_shape *sh = j->sh;
    size_t D = sh->D, g = h / (sh->H / sh->KVH), lo, hi;
    key_range(sh, t, &lo, &hi);
    const float *qv = j->q + t * sh->H * D + h * D;
    const float *kg = j->k + g * D, *vg = j->v + g * D;
    float *o = j->out + t * sh->H * D + h * D;
    memset(row, 0, sh->S * sizeof(float));
    for (size_t c = lo; c < hi; c++)
        row[c] = j->kr->dot(qv, kg + c * sh->kv_stride, D) * j->scale;
    float inv = 1.0f / j->kr->exp_sum(row + lo, hi - lo, j->kr->vmax(row + lo, hi - lo));
    memset(o, 0, D * sizeof(float));
    for (size_t c = lo; c < hi; c++) {
        row[c] *= inv;
        j->kr->axpy(o, row[c], vg + c * sh->kv_stride, D);
    }
}

/* Query t of head h over its keys: out_h (D) = softmax(q . k_j * scale) . v_j. */
static void one_query(const attn_job *j, size_t h, size_t t) {
    const oc_attn_shape *sh = j->sh;
    size_t D = sh->D, g = h / (sh->H / sh->KVH), lo, hi;
    key_range(sh, t, &lo, &hi);
    const float *qv = j->q + t * sh->H * D + h * D;
    const float *kg = j->k + g * D, *vg = j->v + g * D;
    float acc[MAX_HEAD_DIM], s[KEY_CHUNK], m = -INFINITY, l = 0;
    memset(acc, 0, D * sizeof(float));
    for (size_t c0 = lo; c0 < hi; c0 += KEY_CHUNK) {
        size_t c = hi - c0 < KEY_CHUNK ? hi - c0 : KEY_CHUNK;
        for (size_t i = 0; i < c; i++)
            s[i] = j->kr->dot(qv, kg + (c0 + i) * sh->kv_stride, D) * j->scale;
        float cm = j->kr->vmax(s, c);
        if (cm > m) { /* rescale what was summed under the old maximum */
            float f = expf(m - cm);
            for (size_t d = 0; d < D; d++)
                acc[d] *= f;
            l *= f;
            m = cm;
        }
        l += j->kr->exp_sum(s, c, m);
        for (size_t i = 0; i < c; i++)
            j->kr->axpy(acc, s[i], vg + (c0 + i) * sh->kv_stride, D);
    }
    float inv = 1.0f / l, *o = j->out + t * sh->H * D + h * D;
    for (size_t d = 0; d < D; d++)
        o[d] = acc[d] * inv;
}

/* Packing task p: K^T panel (g, jp) for p < KVH * kpn, then V panel (g, dp). */
static void pack_task(void *ctx, size_t p, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    const oc_attn_shape *sh = j->sh;
    size_t NR = j->kr->nr, D = sh->D, S = sh->S;
    if (p < sh->KVH * j->kpn) {
        size_t g = p / j->kpn, jp = p % j->kpn, n = S - jp * NR < NR ? S - jp * NR : NR;
        oc_pack_b_panel(j->kr, j->kp + (g * j->kpn + jp) * D * NR, j->k + g * D, sh->kv_stride,
                        1, D, jp * NR, n);
        return;
    }
    p -= sh->KVH * j->kpn;
    size_t g = p / j->vpn, dp = p % j->vpn, n = D - dp * NR < NR ? D - dp * NR : NR;
    oc_pack_b_panel(j->kr, j->vp + (g * j->vpn + dp) * S * NR, j->v + g * D, sh->kv_stride, 0,
                    S, dp * NR, n);
}

static void block_task(void *ctx, size_t task, int thread) {
    const attn_job *j = ctx;
    const oc_attn_shape *sh = j->sh;
    const oc_kern *kr = j->kr;
    size_t MR = kr->mr, NR = kr->nr;
    size_t h = task / j->n_blocks, b = task % j->n_blocks;
    size_t t0 = b * BQ, t1 = t0 + BQ > sh->T ? sh->T : t0 + BQ, n = t1 - t0;
    size_t D = sh->D, HD = sh->H * D, g = h / (sh->H / sh->KVH);
    /* keys any query of the block sees: [c_lo, c_hi), c_lo at a panel's first key */
    size_t c_lo = sh->S, c_hi = 0;
    for (size_t t = t0; t < t1; t++) {
        size_t lo, hi;
        key_range(sh, t, &lo, &hi);
        c_lo = lo < c_lo ? lo : c_lo;
        c_hi = hi > c_hi ? hi : c_hi;
    }
    c_lo -= c_lo % NR;
    size_t Sv = c_hi - c_lo;
    float *sc;
    size_t ld;
    if (j->probs) {
        sc = j->probs + (h * sh->T + t0) * sh->S + c_lo;
        ld = sh->S;
    } else {
        sc = oc_exec_buf(j->ex, thread, OC_BUF_ATTN, n * Sv * sizeof(float));
        ld = Sv;
        if (!sc) { /* no scratch: query by query */
            for (size_t t = t0; t < t1; t++)
                one_query(j, h, t);
            return;
        }
    }
    oc_exec_add_flops(j->ex, thread, 4.0 * (double)n * (double)Sv * (double)D);
    /* sc (n, Sv) = q_h (n, D) @ k_g^T (D, Sv) * scale, keys from c_lo */
    const float *kp = j->kp + g * j->kpn * D * NR;
    for (size_t i0 = 0; i0 < n; i0 += MR) {
        size_t m = n - i0 < MR ? n - i0 : MR;
        const float *qr = j->q + (t0 + i0) * HD + h * D;
        for (size_t c0 = 0; c0 < Sv; c0 += NR)
            oc_ukr_tile(kr, kr->sgemm, D, qr, HD, 1, m, kp + (c_lo + c0) * D,
                        Sv - c0 < NR ? Sv - c0 : NR, sc + i0 * ld + c0, ld, j->scale, 0.0f,
                        OC_UK_SET);
    }
    /* exponentials; rows normalised here only when the probabilities are kept (training),
     * else the output rows are divided by their sums after p @ v (one pass less) */
    float inv[BQ];
    for (size_t i = 0; i < n; i++) {
        float *row = sc + i * ld;
        size_t lo, hi;
        key_range(sh, t0 + i, &lo, &hi);
        size_t a = lo - c_lo, m = hi - lo;
        inv[i] = 1.0f / kr->exp_sum(row + a, m, kr->vmax(row + a, m));
        if (j->probs)
            kr->scale(row + a, inv[i], m);
        memset(row, 0, a * sizeof(float));
        memset(row + a + m, 0, (Sv - a - m) * sizeof(float));
        if (j->probs) { /* the rest of the saved row, outside the block's keys */
            memset(row - c_lo, 0, c_lo * sizeof(float));
            memset(row + Sv, 0, (sh->S - c_hi) * sizeof(float));
        }
    }
    /* out_h (n, D) = p (n, Sv) @ v_g (Sv, D), in runs of keys that keep a panel in L1 */
    const float *vp = j->vp + g * j->vpn * sh->S * NR;
    for (size_t i0 = 0; i0 < n; i0 += MR) {
        size_t m = n - i0 < MR ? n - i0 : MR;
        float *o = j->out + (t0 + i0) * HD + h * D;
        for (size_t d0 = 0; d0 < D; d0 += NR)
            for (size_t c0 = 0; c0 < Sv; c0 += KEY_RUN) {
                size_t kc = Sv - c0 < KEY_RUN ? Sv - c0 : KEY_RUN;
                oc_ukr_tile(kr, kr->sgemm, kc, sc + i0 * ld + c0, ld, 1, m,
                            vp + d0 * sh->S + (c_lo + c0) * NR, D - d0 < NR ? D - d0 : NR,
                            o + d0, HD, 1.0f, 0.0f, c0 == 0 ? OC_UK_SET : OC_UK_ADD);
            }
        if (!j->probs)
            for (size_t r = 0; r < m; r++)
                kr->scale(o + r * HD, inv[i0 + r], D);
    }
}

/* Run r of the keys query t sees, for the heads of KV head g: each head's max, sum of
 * exponentials and unnormalised p @ V into its partial slot. */
static void run_task(void *ctx, size_t task, int thread) {
    const attn_job *j = ctx;
    const oc_attn_shape *sh = j->sh;
    const oc_kern *kr = j->kr;
    size_t r = task % j->n_runs, g = task / j->n_runs % sh->KVH, t = task / j->n_runs / sh->KVH;
    size_t D = sh->D, group = sh->H / sh->KVH, lo, hi;
    key_range(sh, t, &lo, &hi);
    size_t s0 = lo + r * SPLIT_KEYS, s1 = s0 + SPLIT_KEYS < hi ? s0 + SPLIT_KEYS : hi;
    size_t len = s1 > s0 ? s1 - s0 : 0, slot = D + 2;
    float sc[HEADS_AT_ONCE * SPLIT_KEYS];
    for (size_t h0 = g * group; h0 < (g + 1) * group; h0 += HEADS_AT_ONCE) {
        size_t nh = (g + 1) * group - h0 < HEADS_AT_ONCE ? (g + 1) * group - h0 : HEADS_AT_ONCE;
        if (len == 0) { /* a query's last runs may be empty (causal, or a key range) */
            for (size_t i = 0; i < nh; i++) {
                float *pt = j->part + ((t * sh->H + h0 + i) * j->n_runs + r) * slot;
                pt[0] = -INFINITY;
                pt[1] = 0;
            }
            continue;
        }
        oc_exec_add_flops(j->ex, thread, 4.0 * (double)nh * (double)len * (double)D);
        /* sc (nh, len) = q_h (nh, D) . k_j (D) for the run's keys */
        kr->gemv(sc, SPLIT_KEYS, j->q + t * sh->H * D + h0 * D, D, nh, j->k + s0 * sh->kv_stride + g * D,
                 OC_DT_F32, sh->kv_stride, D, 0, len);
        for (size_t i = 0; i < nh; i++) {
            float *row = sc + i * SPLIT_KEYS, *pt = j->part + ((t * sh->H + h0 + i) * j->n_runs + r) * slot;
            kr->scale(row, j->scale, len);
            pt[0] = kr->vmax(row, len);
            pt[1] = kr->exp_sum(row, len, pt[0]);
        }
        kr->attn_pv(j->part + ((t * sh->H + h0) * j->n_runs + r) * slot + 2, j->n_runs * slot, sc,
                    SPLIT_KEYS, nh, j->v + s0 * sh->kv_stride + g * D, sh->kv_stride, len, D);
    }
}

/* out (D) of query t, head h: the runs' partial sums joined under their common maximum. */
static void join_runs(const attn_job *j, size_t t, size_t h) {
    const oc_attn_shape *sh = j->sh;
    size_t D = sh->D, slot = D + 2;
    const float *pt = j->part + (t * sh->H + h) * j->n_runs * slot;
    float m = -INFINITY, l = 0, *o = j->out + t * sh->H * D + h * D;
    for (size_t r = 0; r < j->n_runs; r++)
        m = pt[r * slot] > m ? pt[r * slot] : m;
    memset(o, 0, D * sizeof(float));
    for (size_t r = 0; r < j->n_runs; r++) {
        if (pt[r * slot + 1] == 0)
            continue;
        float f = expf(pt[r * slot] - m);
        l += pt[r * slot + 1] * f;
        j->kr->axpy(o, f, pt + r * slot + 2, D);
    }
    j->kr->scale(o, 1.0f / l, D);
}

static void query_task(void *ctx, size_t task, int thread) {
    const attn_job *j = ctx;
    size_t h = task % j->sh->H, t = task / j->sh->H, lo, hi;
    key_range(j->sh, t, &lo, &hi);
    oc_exec_add_flops(j->ex, thread, 4.0 * (double)(hi - lo) * (double)j->sh->D);
    one_query(j, h, t);
}

static int self_thread(void) {
    int t = oc_pool_current_thread();
    return t < 0 ? 0 : t;
}

void oc_attention(oc_exec *ex, float *out, float *probs, const float *q, const float *k,
                  const float *v, const oc_attn_shape *sh) {
    attn_job j = {.sh = sh, .out = out, .probs = probs, .q = q, .k = k, .v = v,
                  .scale = sh->scale, .ex = ex, .kr = oc_kern_get()};
    if (j.scale == 0.0f)
        j.scale = 1.0f / sqrtf((float)sh->D);
    if (sh->T == 0)
        return;
    if (!probs && sh->T <= FEW_QUERIES && sh->D <= MAX_HEAD_DIM) {
        j.n_runs = (sh->S + SPLIT_KEYS - 1) / SPLIT_KEYS;
        j.part = oc_exec_buf(ex, self_thread(), OC_BUF_ATTN,
                             sh->T * sh->H * j.n_runs * (sh->D + 2) * sizeof(float));
        if (!j.part) { /* no scratch: query by query, online */
            oc_pool_run(ex->pool, sh->T * sh->H, query_task, &j);
            return;
        }
        oc_pool_run(ex->pool, sh->T * sh->KVH * j.n_runs, run_task, &j);
        for (size_t t = 0; t < sh->T; t++)
            for (size_t h = 0; h < sh->H; h++)
                join_runs(&j, t, h);
        return;
    }
    size_t NR = j.kr->nr, D = sh->D, S = sh->S;
    j.kpn = (S + NR - 1) / NR;
    j.vpn = (D + NR - 1) / NR;
    size_t per_head = j.kpn * D * NR + j.vpn * S * NR;
    j.kp = D <= MAX_HEAD_DIM ? oc_exec_buf(ex, self_thread(), OC_BUF_PACK_B,
                                           sh->KVH * per_head * sizeof(float))
                             : NULL;
    if (!j.kp) { /* no scratch: query by query, exactly */
        for (size_t h = 0; h < sh->H; h++)
            for (size_t t = 0; t < sh->T; t++) {
                if (probs)
                    one_query_row(&j, h, t, probs + (h * sh->T + t) * S);
                else
                    one_query(&j, h, t);
            }
        return;
    }
    j.vp = j.kp + sh->KVH * j.kpn * D * NR;
    oc_pool_run(ex->pool, sh->KVH * (j.kpn + j.vpn), pack_task, &j);
    j.n_blocks = (sh->T + BQ - 1) / BQ;
    oc_pool_run(ex->pool, sh->H * j.n_blocks, block_task, &j);
}
