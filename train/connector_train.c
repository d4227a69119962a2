#include "connector_train.h"

#include <string.h>

#include "ops.h"

/* transformers' view/permute chain, (bsz, seq, C) with h = w = g:
 *   view (h, w/s, C*s) -> permute -> (w/s, h, C*s) -> reshape (w/s, h/s, C*s*s)
 *   -> permute -> (h/s, w/s, C*s*s)
 * puts patch (y, x) = (iy*s + b, jx*s + a) in token iy*(g/s) + jx at channel
 * (b*s + a)*C: the s patches of a row stay together (a), rows stack outside them (b). */
static void shuffle(float *tok, float *pat, size_t NT, size_t g, size_t C, size_t s,
                    int inverse) {
    size_t gs = g / s, N = g * g, M = gs * gs;
#pragma omp parallel for schedule(static) if (NT * M * s * s * C > OC_T_PAR_ELEMS)
    for (size_t tm = 0; tm < NT * M; tm++) {
        size_t tile = tm / M, m = tm % M, iy = m / gs, jx = m % gs;
        for (size_t b = 0; b < s; b++)
            for (size_t a = 0; a < s; a++) {
                float *tp = tok + tm * s * s * C + (b * s + a) * C;
                float *pp = pat + (tile * N + (iy * s + b) * g + jx * s + a) * C;
                if (inverse)
                    memcpy(pp, tp, C * sizeof(float));
                else
                    memcpy(tp, pp, C * sizeof(float));
            }
    }
}

void oc_pixel_shuffle(float *out, const float *in, size_t NT, size_t g, size_t C, size_t s) {
    shuffle(out, (float *)in, NT, g, C, s, 0);
}

void oc_pixel_unshuffle(float *in, const float *out, size_t NT, size_t g, size_t C, size_t s) {
    shuffle((float *)out, in, NT, g, C, s, 1);
}

void oc_connector_train_forward(double *flops, float *feats, float *shuf, const float *vis,
                                const float *w, size_t NT, size_t g, size_t C, size_t s,
                                size_t E) {
    size_t M = (g / s) * (g / s);
    oc_pixel_shuffle(shuf, vis, NT, g, C, s);
    oc_t_linear_fwd(flops, feats, shuf, w, NULL, NT * M, C * s * s, E);
}

void oc_connector_train_backward(double *flops, float *dvis, float *dw, const float *dfeats,
                                 const float *shuf, const float *w, float *scratch, size_t NT,
                                 size_t g, size_t C, size_t s, size_t E) {
    size_t M = (g / s) * (g / s);
    oc_t_linear_bwd(flops, scratch, 0.0f, dw, NULL, dfeats, shuf, w, NT * M, C * s * s, E);
    oc_pixel_unshuffle(dvis, scratch, NT, g, C, s);
}
