/* Projectors from vision features to the text model's embedding space:
 * SmolVLM's pixel shuffle + linear, LLaVA's two-layer MLP. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "model.h"

/* out (seq/s^2, E*s^2) = pixel_shuffle(x (seq, E)) as Idefics3Connector.pixel_shuffle:
 * out[i2*(w/s) + j][(a*s + b)*E + e] = x[(i2*s + a)*w + j*s + b][e] on a w x w grid. */
static void pixel_shuffle(float *out, const float *x, uint32_t w, uint32_t s, size_t E) {
    uint32_t ws = w / s;
    for (uint32_t i2 = 0; i2 < ws; i2++)
        for (uint32_t j = 0; j < ws; j++) {
            float *dst = out + ((size_t)i2 * ws + j) * E * s * s;
            for (uint32_t a = 0; a < s; a++)
                for (uint32_t b = 0; b < s; b++)
                    memcpy(dst + ((size_t)a * s + b) * E,
                           x + ((size_t)(i2 * s + a) * w + j * s + b) * E, E * sizeof(float));
        }
}

/* Index into CLIP's hidden_states (0 = embeddings) that LLaVA takes features from. */
static int llava_feature_index(const oc_model_config *c) {
    int fl = c->vision_feature_layer;
    return fl < 0 ? (int)c->vision.layers + 1 + fl : fl;
}

/* feats (image_seq, C_text) of one tile; vis (seq, C_vision) is scratch / output. */
static oc_status encode_tile(const oc_model *m, const float *pixels, float *vis, float *feats,
                             float *tmp) {
    const oc_model_config *c = &m->cfg;
    uint32_t seq = oc_vit_seq(&c->vision), Cv = c->vision.hidden;
    if (c->family == OC_FAMILY_SMOLVLM) {
        OC_TRY(oc_vit_forward(vis, &c->vision, &m->vit, pixels, -1));
        uint32_t s = c->scale_factor;
        pixel_shuffle(tmp, vis, oc_vit_grid(&c->vision), s, Cv);
        return oc_matmul(feats, tmp, &m->proj, NULL, seq / (s * s));
    }
    OC_TRY(oc_vit_forward(vis, &c->vision, &m->vit, pixels, llava_feature_index(c)));
    uint32_t n = oc_config_image_seq(c);
    const float *sel = vis + (size_t)(seq - n) * Cv; /* "default" drops the class token */
    OC_TRY(oc_matmul(tmp, sel, &m->mm1, m->mm1_b, n));
    oc_activate(tmp, (size_t)n * c->text.hidden, c->projector_act);
    return oc_matmul(feats, tmp, &m->mm2, m->mm2_b, n);
}

oc_status oc_model_encode_pixels(const oc_model *m, const float *pixels, uint32_t n_tiles,
                                 float *feats, float *vision_out) {
    const oc_model_config *c = &m->cfg;
    size_t S = c->vision.image_size, tile_px = 3 * S * S;
    size_t seq = oc_vit_seq(&c->vision), Cv = c->vision.hidden, Ct = c->text.hidden;
    size_t n_img = oc_config_image_seq(c);
    size_t tmp_n = seq * Cv > n_img * Ct ? seq * Cv : n_img * Ct;
    float *vis = oc_malloc(seq * Cv * sizeof(float)), *tmp = oc_malloc(tmp_n * sizeof(float));
    oc_status s = vis && tmp ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory for image features");
    for (uint32_t t = 0; s == OC_OK && t < n_tiles; t++) {
        s = encode_tile(m, pixels + t * tile_px, vis, feats + t * n_img * Ct, tmp);
        if (s == OC_OK && vision_out)
            memcpy(vision_out + t * seq * Cv, vis, seq * Cv * sizeof(float));
    }
    oc_free(vis);
    oc_free(tmp);
    return s;
}
