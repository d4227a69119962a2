/* ViT encoders: patch embedding, position embeddings, pre-LN transformer blocks.
 * SigLIP-style (SmolVLM): conv with bias, no class token, post-layernorm.
 * CLIP-style (LLaVA): conv without bias, class token, pre-layernorm, features taken from
 * an intermediate layer. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "vit.h"

/* cols (N, channels*p*p) = the patches of pixels (channels, S, S), each flattened in the
 * conv weight's order (channel, row, col); patches in row-major grid order. */
static void unfold_patches(float *cols, const float *pixels, uint32_t channels, uint32_t S,
                           uint32_t p) {
    uint32_t g = S / p;
    size_t K = (size_t)channels * p * p;
    for (uint32_t gy = 0; gy < g; gy++)
        for (uint32_t gx = 0; gx < g; gx++) {
            float *dst = cols + ((size_t)gy * g + gx) * K;
            for (uint32_t c = 0; c < channels; c++)
                for (uint32_t y = 0; y < p; y++) {
                    const float *src =
                        pixels + ((size_t)c * S + (size_t)gy * p + y) * S + (size_t)gx * p;
                    memcpy(dst + ((size_t)c * p + y) * p, src, p * sizeof(float));
                }
        }
}

typedef struct {
    float *ln;   /* (N, C) */
    float *q, *k, *v, *att; /* (N, C) */
    float *mlp;  /* (N, I) */
} vit_scratch;

/* x (N, C) = x + attn(ln1(x)); x = x + mlp(ln2(x)) */
static oc_status vit_layer(float *x, const oc_vit_config *c, const oc_vit_layer *L,
                           vit_scratch *s, size_t N) {
    size_t C = c->hidden;
    oc_layernorm(s->ln, x, L->ln1_w, L->ln1_b, N, C, c->ln_eps);
    OC_TRY(oc_matmul(s->q, s->ln, &L->q, L->q_b, N));
    OC_TRY(oc_matmul(s->k, s->ln, &L->k, L->k_b, N));
    OC_TRY(oc_matmul(s->v, s->ln, &L->v, L->v_b, N));
    OC_TRY(oc_attention(s->att, s->q, s->k, s->v, C, N, N, c->heads, c->heads,
                        C / c->heads, 0));
    OC_TRY(oc_matmul(s->ln, s->att, &L->o, L->o_b, N));
    oc_add(x, s->ln, N * C);
    oc_layernorm(s->ln, x, L->ln2_w, L->ln2_b, N, C, c->ln_eps);
    OC_TRY(oc_matmul(s->mlp, s->ln, &L->fc1, L->fc1_b, N));
    oc_activate(s->mlp, N * c->intermediate, c->act);
    OC_TRY(oc_matmul(s->ln, s->mlp, &L->fc2, L->fc2_b, N));
    oc_add(x, s->ln, N * C);
    return OC_OK;
}

/* out (seq, C) = embeddings of pixels (+ class token and pre-layernorm for CLIP). */
static oc_status vit_embed(float *out, const oc_vit_config *c, const oc_vit_weights *w,
                           const float *pixels, float *cols) {
    uint32_t g = oc_vit_grid(c), np = g * g, C = c->hidden;
    int cls = c->kind == OC_VIT_CLIP;
    unfold_patches(cols, pixels, c->channels, c->image_size, c->patch);
    OC_TRY(oc_matmul(out + (size_t)cls * C, cols, &w->patch_w, w->patch_b, np));
    if (cls)
        memcpy(out, w->class_emb, C * sizeof(float));
    size_t seq = np + (size_t)cls;
    oc_add(out, w->pos_emb, seq * C);
    if (cls)
        oc_layernorm(out, out, w->pre_ln_w, w->pre_ln_b, seq, C, c->ln_eps);
    return OC_OK;
}

oc_status oc_vit_forward(float *out, const oc_vit_config *c, const oc_vit_weights *w,
                         const float *pixels, int out_layer) {
    size_t seq = oc_vit_seq(c), C = c->hidden, I = c->intermediate;
    size_t K = (size_t)c->channels * c->patch * c->patch;
    size_t np = seq - (c->kind == OC_VIT_CLIP);
    size_t n_buf = 5 * seq * C + seq * I + np * K;
    float *buf = oc_malloc(n_buf * sizeof(float));
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory for the vision encoder (%zu floats)", n_buf);
    vit_scratch s = {.ln = buf, .q = buf + seq * C, .k = buf + 2 * seq * C,
                     .v = buf + 3 * seq * C, .att = buf + 4 * seq * C, .mlp = buf + 5 * seq * C};
    oc_status st = vit_embed(out, c, w, pixels, s.mlp + seq * I);
    uint32_t n_layers = out_layer >= 0 ? (uint32_t)out_layer : c->layers;
    for (uint32_t l = 0; st == OC_OK && l < n_layers && l < c->layers; l++)
        st = vit_layer(out, c, &w->layers[l], &s, seq);
    if (st == OC_OK && out_layer < 0 && w->post_ln_w)
        oc_layernorm(out, out, w->post_ln_w, w->post_ln_b, seq, C, c->ln_eps);
    oc_free(buf);
    return st;
}
