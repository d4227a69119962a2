#include "llama_train.h"

#include <string.h>

static size_t seq_start(const oc_t_seqs *sq, size_t s) {
    return sq->off ? sq->off[s] : s * sq->n;
}

/* q (T, H*D) and k (T, KVH*D) rotated (sign -1: the transpose); positions restart in
 * each sequence. */
static void rope_seqs(oc_exec *ex, float *q, float *k, const float *cos_t,
                      const float *sin_t, const oc_t_seqs *sq, size_t H, size_t KVH, size_t D,
                      float sign) {
    for (size_t s = 0; s < sq->n_seq; s++) {
        size_t t0 = seq_start(sq, s), n = seq_start(sq, s + 1) - t0;
        oc_rope_apply(ex, q + t0 * H * D, cos_t, sin_t, n, H, D, sign);
        oc_rope_apply(ex, k + t0 * KVH * D, cos_t, sin_t, n, KVH, D, sign);
    }
}

void oc_llama_acts_carve(oc_llama_acts *a, oc_carver *c, const oc_llama_config *cfg,
                         size_t T, size_t A, size_t maxn) {
    oc_llama_acts dummy;
    if (!a)
        a = &dummy;
    size_t E = cfg->hidden, L = cfg->layers, D = cfg->head_dim, HD = cfg->heads * D,
           KD = cfg->kv_heads * D, F = cfg->intermediate;
    a->T = T;
    a->A = A;
    a->maxn = maxn;
    a->res = oc_carve(c, (L + 1) * T * E);
    a->rn1 = oc_carve(c, L * T * E);
    a->rstd1 = oc_carve(c, L * T);
    a->q = oc_carve(c, L * T * HD);
    a->k = oc_carve(c, L * T * KD);
    a->v = oc_carve(c, L * T * KD);
    a->att = oc_carve(c, L * A);
    a->atty = oc_carve(c, L * T * HD);
    a->x1 = oc_carve(c, L * T * E);
    a->rn2 = oc_carve(c, L * T * E);
    a->rstd2 = oc_carve(c, L * T);
    a->gate = oc_carve(c, L * T * F);
    a->up = oc_carve(c, L * T * F);
    a->act = oc_carve(c, L * T * F);
    a->fin = oc_carve(c, T * E);
    a->fin_rstd = oc_carve(c, T);
    a->cos_t = oc_carve(c, maxn * D / 2);
    a->sin_t = oc_carve(c, maxn * D / 2);
}

size_t oc_llama_scratch_size(const oc_exec *ex, const oc_llama_config *cfg, size_t T,
                              size_t maxn) {
    size_t E = cfg->hidden, D = cfg->head_dim, HD = cfg->heads * D, KD = cfg->kv_heads * D,
           F = cfg->intermediate;
    /* the same carves, in the same order, as oc_llama_train_backward */
    const size_t sizes[] = {T * E, T * E, T * HD, T * HD, T * KD, T * KD, T * F, T * F,
                            oc_t_attention_scratch(ex, maxn)};
    oc_carver c = {0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        oc_carve(&c, sizes[i]);
    return c.off;
}

void oc_llama_train_forward(oc_exec *ex, oc_llama_acts *a, const oc_llama_config *cfg,
                            const oc_tp_tensors *p, const float *x, const oc_t_seqs *sq) {
    size_t T = a->T, E = cfg->hidden, H = cfg->heads, KVH = cfg->kv_heads, D = cfg->head_dim,
           HD = H * D, KD = KVH * D, F = cfg->intermediate, A = a->A;
    float eps = cfg->rms_eps;
    oc_rope_tables(a->cos_t, a->sin_t, 0, a->maxn, D, cfg->rope_theta, cfg->rope_dtype);
    memcpy(a->res, x, T * E * sizeof(float));

    for (size_t l = 0; l < cfg->layers; l++) {
        const oc_tp_llama_layer *w = &p->llm[l];
        float *res = a->res + l * T * E, *next = a->res + (l + 1) * T * E;
        float *rn1 = a->rn1 + l * T * E, *q = a->q + l * T * HD, *k = a->k + l * T * KD,
              *v = a->v + l * T * KD, *att = a->att + l * A, *atty = a->atty + l * T * HD,
              *x1 = a->x1 + l * T * E, *rn2 = a->rn2 + l * T * E, *gate = a->gate + l * T * F,
              *up = a->up + l * T * F, *act = a->act + l * T * F;

        oc_rmsnorm(ex, rn1, a->rstd1 + l * T, res, w->in_norm, T, E, eps);
        oc_t_linear_fwd(ex, q, rn1, w->q_w, NULL, T, E, HD);
        oc_t_linear_fwd(ex, k, rn1, w->k_w, NULL, T, E, KD);
        oc_t_linear_fwd(ex, v, rn1, w->v_w, NULL, T, E, KD);
        rope_seqs(ex, q, k, a->cos_t, a->sin_t, sq, H, KVH, D, 1.0f);
        oc_t_attention_fwd(ex, atty, att, q, k, v, sq, H, KVH, D, 1);
        oc_t_linear_fwd(ex, x1, atty, w->o_w, NULL, T, HD, E);
        oc_add(ex, x1, res, T * E);

        oc_rmsnorm(ex, rn2, a->rstd2 + l * T, x1, w->post_norm, T, E, eps);
        oc_t_linear_fwd(ex, gate, rn2, w->gate_w, NULL, T, E, F);
        oc_t_linear_fwd(ex, up, rn2, w->up_w, NULL, T, E, F);
        oc_swiglu(ex, act, gate, up, T * F);
        oc_t_linear_fwd(ex, next, act, w->down_w, NULL, T, F, E);
        oc_add(ex, next, x1, T * E);
    }
    oc_rmsnorm(ex, a->fin, a->fin_rstd, a->res + cfg->layers * T * E, p->norm, T, E, eps);
}

void oc_llama_train_backward(oc_exec *ex, const oc_llama_acts *a,
                             const oc_llama_config *cfg, const oc_tp_tensors *p,
                             oc_tp_tensors *g, const float *dfin, float *dx,
                             const oc_t_seqs *sq, float *scratch) {
    size_t T = a->T, E = cfg->hidden, H = cfg->heads, KVH = cfg->kv_heads, D = cfg->head_dim,
           HD = H * D, KD = KVH * D, F = cfg->intermediate, A = a->A, L = cfg->layers;
    oc_carver cv = {scratch, 0};
    float *dres = oc_carve(&cv, T * E), *dln = oc_carve(&cv, T * E),
          *dq = oc_carve(&cv, T * HD), *datty = oc_carve(&cv, T * HD),
          *dk = oc_carve(&cv, T * KD), *dv = oc_carve(&cv, T * KD),
          *dact = oc_carve(&cv, T * F), *dup = oc_carve(&cv, T * F),
          *dsc = oc_carve(&cv, oc_t_attention_scratch(ex, a->maxn));

    memset(dres, 0, T * E * sizeof(float));
    oc_t_rmsnorm_bwd(ex, dres, g->norm, dfin, a->res + L * T * E, a->fin_rstd, p->norm, T, E);

    for (size_t l = L; l-- > 0;) {
        const oc_tp_llama_layer *w = &p->llm[l];
        oc_tp_llama_layer *gw = &g->llm[l];
        const float *res = a->res + l * T * E, *rn1 = a->rn1 + l * T * E,
                    *q = a->q + l * T * HD, *k = a->k + l * T * KD, *v = a->v + l * T * KD,
                    *att = a->att + l * A, *atty = a->atty + l * T * HD,
                    *x1 = a->x1 + l * T * E, *rn2 = a->rn2 + l * T * E,
                    *gate = a->gate + l * T * F, *up = a->up + l * T * F,
                    *act = a->act + l * T * F;

        /* MLP: next = x1 + down(silu(gate(rn2)) * up(rn2)) */
        oc_t_linear_bwd(ex, dact, 0.0f, gw->down_w, NULL, dres, act, w->down_w, T, F, E);
        oc_t_swiglu_bwd(ex, dact, dup, dact, gate, up, T * F);
        oc_t_linear_bwd(ex, dln, 0.0f, gw->gate_w, NULL, dact, rn2, w->gate_w, T, E, F);
        oc_t_linear_bwd(ex, dln, 1.0f, gw->up_w, NULL, dup, rn2, w->up_w, T, E, F);
        oc_t_rmsnorm_bwd(ex, dres, gw->post_norm, dln, x1, a->rstd2 + l * T, w->post_norm, T, E);

        /* attention: x1 = res + o(attn(rope(q), rope(k), v)) */
        oc_t_linear_bwd(ex, datty, 0.0f, gw->o_w, NULL, dres, atty, w->o_w, T, HD, E);
        oc_t_attention_bwd(ex, dq, dk, dv, dsc, datty, att, q, k, v, sq, H, KVH, D);
        rope_seqs(ex, dq, dk, a->cos_t, a->sin_t, sq, H, KVH, D, -1.0f);
        oc_t_linear_bwd(ex, dln, 0.0f, gw->q_w, NULL, dq, rn1, w->q_w, T, E, HD);
        oc_t_linear_bwd(ex, dln, 1.0f, gw->k_w, NULL, dk, rn1, w->k_w, T, E, KD);
        oc_t_linear_bwd(ex, dln, 1.0f, gw->v_w, NULL, dv, rn1, w->v_w, T, E, KD);
        oc_t_rmsnorm_bwd(ex, dres, gw->in_norm, dln, res, a->rstd1 + l * T, w->in_norm, T, E);
    }
    memcpy(dx, dres, T * E * sizeof(float));
}
