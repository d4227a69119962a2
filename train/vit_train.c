#include "vit_train.h"

#include <string.h>

void oc_vit_acts_carve(oc_vit_acts *a, oc_carver *c, const oc_vit_config *cfg, size_t NT) {
    oc_vit_acts dummy;
    if (!a)
        a = &dummy;
    size_t N = (size_t)oc_vit_grid(cfg) * oc_vit_grid(cfg), T = NT * N, C = cfg->hidden,
           I = cfg->intermediate, L = cfg->layers, H = cfg->heads,
           K = (size_t)cfg->channels * cfg->patch * cfg->patch;
    a->NT = NT;
    a->patches = oc_carve(c, T * K);
    a->res = oc_carve(c, (L + 1) * T * C);
    a->ln1 = oc_carve(c, L * T * C);
    a->ln1_mean = oc_carve(c, L * T);
    a->ln1_rstd = oc_carve(c, L * T);
    a->q = oc_carve(c, L * T * C);
    a->k = oc_carve(c, L * T * C);
    a->v = oc_carve(c, L * T * C);
    a->att = oc_carve(c, L * NT * H * N * N);
    a->atty = oc_carve(c, L * T * C);
    a->x1 = oc_carve(c, L * T * C);
    a->ln2 = oc_carve(c, L * T * C);
    a->ln2_mean = oc_carve(c, L * T);
    a->ln2_rstd = oc_carve(c, L * T);
    a->h = oc_carve(c, L * T * I);
    a->a = oc_carve(c, L * T * I);
    a->out = oc_carve(c, T * C);
    a->out_mean = oc_carve(c, T);
    a->out_rstd = oc_carve(c, T);
}

size_t oc_vit_scratch_size(const oc_exec *ex, const oc_vit_config *cfg, size_t NT) {
    size_t N = (size_t)oc_vit_grid(cfg) * oc_vit_grid(cfg), T = NT * N, C = cfg->hidden;
    /* the same carves, in the same order, as oc_vit_train_backward */
    const size_t sizes[] = {T * C, T * C, T * C, T * C, T * C, T * C,
                            T * cfg->intermediate, oc_t_attention_scratch(ex, N)};
    oc_carver c = {0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        oc_carve(&c, sizes[i]);
    return c.off;
}

void oc_vit_train_forward(oc_exec *ex, oc_vit_acts *a, const oc_vit_config *cfg,
                          const oc_tp_tensors *p, const float *pixels, size_t NT) {
    size_t N = (size_t)oc_vit_grid(cfg) * oc_vit_grid(cfg), T = NT * N, C = cfg->hidden,
           I = cfg->intermediate, H = cfg->heads, D = C / H,
           K = (size_t)cfg->channels * cfg->patch * cfg->patch;
    float eps = cfg->ln_eps;
    oc_t_seqs tiles = {NT, NULL, NULL, N}; /* attention within each tile */

    /* Embeddings: conv with stride = kernel is a matmul on unfolded patches. All tiles
     * are full (no padding mask), so the position ids are 0..N-1. */
    oc_unfold_patches(a->patches, pixels, NT, cfg->channels, cfg->image_size, cfg->patch);
    float *x = a->res;
    oc_t_linear_fwd(ex, x, a->patches, p->patch_w, p->patch_b, T, K, C);
    for (size_t tile = 0; tile < NT; tile++)
        oc_add(ex, x + tile * N * C, p->pos_emb, N * C);

    for (size_t l = 0; l < cfg->layers; l++) {
        const oc_tp_vit_layer *w = &p->vit[l];
        float *res = a->res + l * T * C, *next = a->res + (l + 1) * T * C;
        float *ln1 = a->ln1 + l * T * C, *q = a->q + l * T * C, *k = a->k + l * T * C,
              *v = a->v + l * T * C, *att = a->att + l * NT * H * N * N,
              *atty = a->atty + l * T * C, *x1 = a->x1 + l * T * C, *ln2 = a->ln2 + l * T * C,
              *h = a->h + l * T * I, *act = a->a + l * T * I;

        oc_layernorm(ex, ln1, a->ln1_mean + l * T, a->ln1_rstd + l * T, res, w->ln1_w,
                     w->ln1_b, T, C, eps);
        oc_t_linear_fwd(ex, q, ln1, w->q_w, w->q_b, T, C, C);
        oc_t_linear_fwd(ex, k, ln1, w->k_w, w->k_b, T, C, C);
        oc_t_linear_fwd(ex, v, ln1, w->v_w, w->v_b, T, C, C);
        oc_t_attention_fwd(ex, atty, att, q, k, v, &tiles, H, H, D, 0);
        /* x1 = res + out_proj(atty); out_proj writes x1 then the residual is added */
        oc_t_linear_fwd(ex, x1, atty, w->o_w, w->o_b, T, C, C);
        oc_add(ex, x1, res, T * C);

        oc_layernorm(ex, ln2, a->ln2_mean + l * T, a->ln2_rstd + l * T, x1, w->ln2_w,
                     w->ln2_b, T, C, eps);
        oc_t_linear_fwd(ex, h, ln2, w->fc1_w, w->fc1_b, T, C, I);
        oc_activate(ex, act, h, T * I, OC_ACT_GELU_TANH);
        oc_t_linear_fwd(ex, next, act, w->fc2_w, w->fc2_b, T, I, C);
        oc_add(ex, next, x1, T * C);
    }
    oc_layernorm(ex, a->out, a->out_mean, a->out_rstd, a->res + cfg->layers * T * C,
                 p->post_w, p->post_b, T, C, eps);
}

void oc_vit_train_backward(oc_exec *ex, const oc_vit_acts *a, const oc_vit_config *cfg,
                           const oc_tp_tensors *p, oc_tp_tensors *g, float *dout, size_t NT,
                           float *scratch) {
    size_t N = (size_t)oc_vit_grid(cfg) * oc_vit_grid(cfg), T = NT * N, C = cfg->hidden,
           I = cfg->intermediate, H = cfg->heads, D = C / H, L = cfg->layers,
           K = (size_t)cfg->channels * cfg->patch * cfg->patch;
    oc_carver cv = {scratch, 0};
    float *dres = oc_carve(&cv, T * C), *dln = oc_carve(&cv, T * C),
          *dq = oc_carve(&cv, T * C), *dk = oc_carve(&cv, T * C), *dv = oc_carve(&cv, T * C),
          *datty = oc_carve(&cv, T * C), *dh = oc_carve(&cv, T * I),
          *dsc = oc_carve(&cv, oc_t_attention_scratch(ex, N));
    oc_t_seqs tiles = {NT, NULL, NULL, N};

    /* dres: gradient of the residual stream, carried down through the layers */
    memset(dres, 0, T * C * sizeof(float));
    oc_t_layernorm_bwd(ex, dres, g->post_w, g->post_b, dout, a->res + L * T * C, a->out_mean,
                       a->out_rstd, p->post_w, T, C);

    for (size_t l = L; l-- > 0;) {
        const oc_tp_vit_layer *w = &p->vit[l];
        oc_tp_vit_layer *gw = &g->vit[l];
        const float *res = a->res + l * T * C, *ln1 = a->ln1 + l * T * C,
                    *q = a->q + l * T * C, *k = a->k + l * T * C, *v = a->v + l * T * C,
                    *att = a->att + l * NT * H * N * N, *atty = a->atty + l * T * C,
                    *x1 = a->x1 + l * T * C, *ln2 = a->ln2 + l * T * C,
                    *h = a->h + l * T * I, *act = a->a + l * T * I;

        /* MLP: next = x1 + fc2(gelu(fc1(ln2(x1)))) */
        oc_t_linear_bwd(ex, dh, 0.0f, gw->fc2_w, gw->fc2_b, dres, act, w->fc2_w, T, I, C);
        oc_t_gelu_tanh_bwd(ex, dh, dh, h, T * I);
        oc_t_linear_bwd(ex, dln, 0.0f, gw->fc1_w, gw->fc1_b, dh, ln2, w->fc1_w, T, C, I);
        oc_t_layernorm_bwd(ex, dres, gw->ln2_w, gw->ln2_b, dln, x1, a->ln2_mean + l * T,
                           a->ln2_rstd + l * T, w->ln2_w, T, C);

        /* attention: x1 = res + out_proj(attn(q, k, v of ln1(res))) */
        oc_t_linear_bwd(ex, datty, 0.0f, gw->o_w, gw->o_b, dres, atty, w->o_w, T, C, C);
        oc_t_attention_bwd(ex, dq, dk, dv, dsc, datty, att, q, k, v, &tiles, H, H, D);
        oc_t_linear_bwd(ex, dln, 0.0f, gw->q_w, gw->q_b, dq, ln1, w->q_w, T, C, C);
        oc_t_linear_bwd(ex, dln, 1.0f, gw->k_w, gw->k_b, dk, ln1, w->k_w, T, C, C);
        oc_t_linear_bwd(ex, dln, 1.0f, gw->v_w, gw->v_b, dv, ln1, w->v_w, T, C, C);
        oc_t_layernorm_bwd(ex, dres, gw->ln1_w, gw->ln1_b, dln, res, a->ln1_mean + l * T,
                           a->ln1_rstd + l * T, w->ln1_w, T, C);
    }

    /* embeddings: x = patches @ patch_w^T + patch_b + pos_emb[n]; pixels need no grad */
    oc_t_linear_bwd(ex, NULL, 0.0f, g->patch_w, g->patch_b, dres, a->patches, p->patch_w,
                    T, K, C);
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < C; i++)
            g->pos_emb[(t % N) * C + i] += dres[t * C + i];
}
