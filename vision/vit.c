/* ViT encoders: patch embedding, position embeddings, pre-LN transformer blocks.
 * SigLIP-style (SmolVLM): conv with bias, no class token, post-layernorm.
 * CLIP-style (LLaVA): conv without bias, class token, pre-layernorm, features taken from
 * an intermediate layer. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "vit.h"

typedef struct {
    float *ln;   /* (N, C) */
    float *q, *k, *v, *att; /* (N, C) */
    float *mlp;  /* (N, I) */
} vit_scratch;

/* x (N, C) = x + attn(ln1(x)); x = x + mlp(ln2(x)) */
static void vit_layer(oc_exec *ex, float *x, const oc_vit_config *c, const oc_vit_layer *L,
                      vit_scratch *s, size_t N) {
    size_t C = c->hidden;
    oc_layernorm(ex, s->ln, NULL, NULL, x, L->ln1_w, L->ln1_b, N, C, c->ln_eps);
    oc_matmul(ex, s->q, s->ln, &L->q, L->q_b, N);
    oc_matmul(ex, s->k, s->ln, &L->k, L->k_b, N);
    oc_matmul(ex, s->v, s->ln, &L->v, L->v_b, N);
    oc_attn_shape sh = {.T = N, .S = N, .H = c->heads, .KVH = c->heads, .D = C / c->heads,
                        .kv_stride = C};
    oc_attention(ex, s->att, NULL, s->q, s->k, s->v, &sh);
    oc_matmul(ex, s->ln, s->att, &L->o, L->o_b, N);
    oc_add(ex, x, s->ln, N * C);
    oc_layernorm(ex, s->ln, NULL, NULL, x, L->ln2_w, L->ln2_b, N, C, c->ln_eps);
    oc_matmul(ex, s->mlp, s->ln, &L->fc1, L->fc1_b, N);
    oc_activate(ex, s->mlp, s->mlp, N * c->intermediate, c->act);
    oc_matmul(ex, s->ln, s->mlp, &L->fc2, L->fc2_b, N);
    oc_add(ex, x, s->ln, N * C);
}

/* out (seq, C) = embeddings of pixels (+ class token and pre-layernorm for CLIP). */
static void vit_embed(oc_exec *ex, float *out, const oc_vit_config *c, const oc_vit_weights *w,
                      const float *pixels, float *cols) {
    uint32_t g = oc_vit_grid(c), np = g * g, C = c->hidden;
    int cls = c->kind == OC_VIT_CLIP;
    oc_unfold_patches(cols, pixels, 1, c->channels, c->image_size, c->patch);
    oc_matmul(ex, out + (size_t)cls * C, cols, &w->patch_w, w->patch_b, np);
    if (cls)
        memcpy(out, w->class_emb, C * sizeof(float));
    size_t seq = np + (size_t)cls;
    oc_add(ex, out, w->pos_emb, seq * C);
    if (cls)
        oc_layernorm(ex, out, NULL, NULL, out, w->pre_ln_w, w->pre_ln_b, seq, C, c->ln_eps);
}

oc_status oc_vit_forward(oc_exec *ex, float *out, const oc_vit_config *c,
                         const oc_vit_weights *w, const float *pixels, int out_layer) {
    size_t seq = oc_vit_seq(c), C = c->hidden, I = c->intermediate;
    size_t K = (size_t)c->channels * c->patch * c->patch;
    size_t np = seq - (c->kind == OC_VIT_CLIP);
    size_t n_buf = 5 * seq * C + seq * I + np * K;
    float *buf = oc_exec_buf(ex, 0, OC_BUF_MODEL, n_buf * sizeof(float));
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory for the vision encoder (%zu floats)", n_buf);
    vit_scratch s = {.ln = buf, .q = buf + seq * C, .k = buf + 2 * seq * C,
                     .v = buf + 3 * seq * C, .att = buf + 4 * seq * C, .mlp = buf + 5 * seq * C};
    vit_embed(ex, out, c, w, pixels, s.mlp + seq * I);
    uint32_t n_layers = out_layer >= 0 ? (uint32_t)out_layer : c->layers;
    for (uint32_t l = 0; l < n_layers && l < c->layers; l++)
        vit_layer(ex, out, c, &w->layers[l], &s, seq);
    if (out_layer < 0 && w->post_ln_w)
        oc_layernorm(ex, out, NULL, NULL, out, w->post_ln_w, w->post_ln_b, seq, C, c->ln_eps);
    return OC_OK;
}
