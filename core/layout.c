/* Data movement shared by inference and training: patch unfolding (a stride-p conv as a
 * matrix product), Idefics3's pixel shuffle, Qwen2.5-VL's window reordering and Gemma 3's
 * average pooling of the patch grid. */
#include <string.h>

#include "kernels.h"

void oc_unfold_patches(float *cols, const float *pixels, size_t NT, size_t ch, size_t S,
                       size_t p) {
    size_t g = S / p, K = ch * p * p;
    for (size_t tile = 0; tile < NT; tile++)
        for (size_t gy = 0; gy < g; gy++)
            for (size_t gx = 0; gx < g; gx++) {
                float *row = cols + ((tile * g + gy) * g + gx) * K;
                for (size_t c = 0; c < ch; c++)
                    for (size_t y = 0; y < p; y++)
                        memcpy(row + (c * p + y) * p,
                               pixels + ((tile * ch + c) * S + gy * p + y) * S + gx * p,
                               p * sizeof(float));
            }
}

/* transformers' view/permute chain, (bsz, seq, C) with h = w = g:
 *   view (h, w/s, C*s) -> permute -> (w/s, h, C*s) -> reshape (w/s, h/s, C*s*s)
 *   -> permute -> (h/s, w/s, C*s*s)
 * puts patch (y, x) = (iy*s + b, jx*s + a) in token iy*(g/s) + jx at channel
 * (b*s + a)*C: the s patches of a row stay together (a), rows stack outside them (b). */
static void shuffle(float *tok, float *pat, size_t NT, size_t g, size_t C, size_t s,
                    int inverse) {
    size_t gs = g / s, N = g * g, M = gs * gs;
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

void oc_permute_groups(float *dst, const float *src, const size_t *idx, size_t n,
                       size_t width, int inverse) {
    for (size_t i = 0; i < n; i++) {
        float *d = dst + (inverse ? idx[i] : i) * width;
        const float *s = src + (inverse ? i : idx[i]) * width;
        memcpy(d, s, width * sizeof(float));
    }
}

void oc_avg_pool_grid(float *out, const float *in, size_t g, size_t C, size_t k) {
    size_t go = g / k;
    float div = (float)(k * k);
    for (size_t oy = 0; oy < go; oy++)
        for (size_t ox = 0; ox < go; ox++) {
            float *o = out + (oy * go + ox) * C;
            for (size_t c = 0; c < C; c++) {
                float s = 0.0f;
                for (size_t y = 0; y < k; y++)
                    for (size_t x = 0; x < k; x++)
                        s += in[((oy * k + y) * g + ox * k + x) * C + c];
                o[c] = s / div;
            }
        }
}
