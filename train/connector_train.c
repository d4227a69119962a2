#include "connector_train.h"

#include <string.h>

#include "ops.h"

void oc_connector_train_forward(oc_exec *ex, float *feats, float *shuf, const float *vis,
                                const float *w, size_t NT, size_t g, size_t C, size_t s,
                                size_t E) {
    size_t M = (g / s) * (g / s);
    oc_pixel_shuffle(shuf, vis, NT, g, C, s);
    oc_t_linear_fwd(ex, feats, shuf, w, NULL, NT * M, C * s * s, E);
}

void oc_connector_train_backward(oc_exec *ex, float *dvis, float *dw, const float *dfeats,
                                 const float *shuf, const float *w, float *scratch, size_t NT,
                                 size_t g, size_t C, size_t s, size_t E) {
    size_t M = (g / s) * (g / s);
    oc_t_linear_bwd(ex, scratch, 0.0f, dw, NULL, dfeats, shuf, w, NT * M, C * s * s, E);
    oc_pixel_unshuffle(dvis, scratch, NT, g, C, s);
}
