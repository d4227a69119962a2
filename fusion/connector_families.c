/* Gemma 3's projector (Gemma3MultiModalProjector: the tower's patch grid average-pooled to
 * mm_tokens_per_image tokens, RMSNorm with 1 + w, a matrix product to the text width) and
 * the encoding of one image of any family (Qwen2.5-VL's tower holds its own merger). */
#include <math.h>

#include "alloc.h"
#include "error.h"
#include "model.h"

oc_status oc_gemma_project_tile(oc_exec *ex, const oc_model *m, const float *pixels,
                                float *vis, float *feats, float *tmp) {
    const oc_model_config *c = &m->cfg;
    size_t g = oc_vit_grid(&c->vision), Cv = c->vision.hidden, n = c->mm_tokens;
    size_t side = (size_t)(sqrt((double)n) + 0.5);
    OC_TRY(oc_vit_forward(ex, vis, &c->vision, &m->vit, pixels, -1));
    oc_avg_pool_grid(tmp, vis, g, Cv, g / side);
    /* mm_soft_emb_norm: eps of the vision config's layer_norm_eps */
    oc_rmsnorm(ex, tmp, NULL, tmp, m->gemma_norm, n, Cv, c->vision.ln_eps);
    oc_matmul(ex, feats, tmp, &m->gemma_proj, NULL, n);
    return OC_OK;
}

oc_status oc_model_encode_image(oc_exec *ex, const oc_model *m, const float *pixels,
                                uint32_t n_tiles, uint32_t rows, uint32_t cols, float *feats,
                                float *vision_out, const oc_progress *progress) {
    if (m->cfg.family != OC_FAMILY_QWEN25VL)
        return oc_model_encode_pixels(ex, m, pixels, n_tiles, feats, vision_out, progress);
    (void)vision_out;
    OC_TRY(oc_qvit_forward(ex, feats, &m->cfg.qvit, &m->qvit, pixels, rows, cols));
    return oc_progress_report(progress, OC_PROGRESS_IMAGE, 1, 1);
}
