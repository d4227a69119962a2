/* Projectors from vision features to the text model's embedding space:
 * SmolVLM's pixel shuffle + linear, LLaVA's two-layer MLP (Gemma 3's and Qwen2.5-VL's in
 * connector_families.c). */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "model.h"

/* Index into CLIP's hidden_states (0 = embeddings) that LLaVA takes features from. */
static int llava_feature_index(const oc_model_config *c) {
    int fl = c->vision_feature_layer;
    return fl < 0 ? (int)c->vision.layers + 1 + fl : fl;
}

/* feats (image_seq, C_text) of one tile; vis (seq, C_vision) is scratch / output. */
static oc_status encode_tile(oc_exec *ex, const oc_model *m, const float *pixels, float *vis,
                             float *feats, float *tmp) {
    const oc_model_config *c = &m->cfg;
    uint32_t seq = oc_vit_seq(&c->vision), Cv = c->vision.hidden;
    if (c->family == OC_FAMILY_GEMMA3)
        return oc_gemma_project_tile(ex, m, pixels, vis, feats, tmp);
    if (c->family == OC_FAMILY_SMOLVLM) {
        OC_TRY(oc_vit_forward(ex, vis, &c->vision, &m->vit, pixels, -1));
        uint32_t s = c->scale_factor;
        oc_pixel_shuffle(tmp, vis, 1, oc_vit_grid(&c->vision), Cv, s);
        oc_matmul(ex, feats, tmp, &m->proj, NULL, seq / (s * s));
        return OC_OK;
    }
    OC_TRY(oc_vit_forward(ex, vis, &c->vision, &m->vit, pixels, llava_feature_index(c)));
    uint32_t n = oc_config_image_seq(c);
    const float *sel = vis + (size_t)(seq - n) * Cv; /* "default" drops the class token */
    oc_matmul(ex, tmp, sel, &m->mm1, m->mm1_b, n);
    oc_activate(ex, tmp, tmp, (size_t)n * c->text.hidden, c->projector_act);
    oc_matmul(ex, feats, tmp, &m->mm2, m->mm2_b, n);
    return OC_OK;
}

oc_status oc_model_encode_pixels(oc_exec *ex, const oc_model *m, const float *pixels,
                                 uint32_t n_tiles, float *feats, float *vision_out,
                                 const oc_progress *progress) {
    const oc_model_config *c = &m->cfg;
    size_t S = c->vision.image_size, tile_px = 3 * S * S;
    size_t seq = oc_vit_seq(&c->vision), Cv = c->vision.hidden, Ct = c->text.hidden;
    size_t n_img = oc_config_image_seq(c);
    if (c->family == OC_FAMILY_QWEN25VL)
        return oc_err(OC_ERR_INTERNAL, "oc_model_encode_pixels: Qwen2.5-VL images need their "
                      "grid (oc_model_encode_image)");
    size_t tmp_n = seq * Cv > n_img * Ct ? seq * Cv : n_img * Ct;
    float *vis = oc_malloc(seq * Cv * sizeof(float)), *tmp = oc_malloc(tmp_n * sizeof(float));
    oc_status s = vis && tmp ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory for image features");
    for (uint32_t t = 0; s == OC_OK && t < n_tiles; t++) {
        s = encode_tile(ex, m, pixels + t * tile_px, vis, feats + t * n_img * Ct, tmp);
        if (s == OC_OK && vision_out)
            memcpy(vision_out + t * seq * Cv, vis, seq * Cv * sizeof(float));
        if (s == OC_OK)
            s = oc_progress_report(progress, OC_PROGRESS_IMAGE, t + 1, n_tiles);
    }
    oc_free(vis);
    oc_free(tmp);
    return s;
}
