/* Next-token cross-entropy through the LM head (the loss transformers' ForCausalLMLoss
 * computes: float32 logits, mean over labelled positions; the mean's 1/count is the
 * caller's scale). */
#include <math.h>
#include <stdlib.h>

#include "ops.h"

/* Rows of logits alive at once: bounds memory at CE_CHUNK * V floats. */
#define CE_CHUNK 256

size_t oc_t_ce_scratch(size_t R, size_t V) {
    size_t r = R < CE_CHUNK ? R : CE_CHUNK;
    return r * V + r; /* logits (r, V) + per-row losses (r) */
}

typedef struct {
    float *z, *lrow;
    const int32_t *y;
    const float *row_scale; /* (rows) or NULL: scale for every row */
    size_t V;
    float scale;
    int grad;
} ce_job;

static void ce_rows(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const ce_job *j = ctx;
    size_t V = j->V;
    for (size_t i = i0; i < i1; i++) {
        float *zi = j->z + i * V;
        float mx = -INFINITY;
        for (size_t c = 0; c < V; c++)
            mx = zi[c] > mx ? zi[c] : mx;
        double sum = 0;
        for (size_t c = 0; c < V; c++)
            sum += exp((double)(zi[c] - mx));
        double lse = (double)mx + log(sum);
        int32_t yi = j->y[i];
        j->lrow[i] = (float)(lse - (double)zi[yi]);
        if (j->grad) {
            /* g = scale * (softmax - onehot), written over the logits */
            float inv = (float)(1.0 / sum), sc = j->row_scale ? j->row_scale[i] : j->scale;
            for (size_t c = 0; c < V; c++)
                zi[c] = expf(zi[c] - mx) * inv * sc;
            zi[yi] -= sc;
        }
    }
}

/* Both entry points: per-row losses to row_loss (when given) or their sum to *loss_sum,
 * gradients scaled by row_scale[r] (when given) or scale. */
static void lmhead_ce(oc_exec *ex, double *loss_sum, float *row_loss, float *dx, float *dw,
                      const float *x, const int32_t *y, const float *w, size_t R, size_t E,
                      size_t V, float scale, const float *row_scale, float *scratch) {
    for (size_t r0 = 0; r0 < R; r0 += CE_CHUNK) {
        size_t n = R - r0 < CE_CHUNK ? R - r0 : CE_CHUNK;
        float *z = scratch, *lrow = scratch + n * V;
        /* z (n, V) = x_rows (n, E) @ w^T (V, E) */
        oc_gemm(ex, 0, 1, n, V, E, 1.0f, x + r0 * E, E, w, E, 0.0f, z, V);
        ce_job j = {z, lrow, y + r0, row_scale ? row_scale + r0 : NULL, V, scale, dx != NULL};
        oc_pool_for(ex->pool, n, 1, ce_rows, &j);
        for (size_t i = 0; i < n; i++) {
            if (row_loss)
                row_loss[r0 + i] = lrow[i];
            if (loss_sum)
                *loss_sum += lrow[i];
        }
        if (dx) {
            /* dx_rows (n, E) = g (n, V) @ w (V, E);  dw (V, E) += g^T (V, n) @ x_rows */
            oc_gemm(ex, 0, 0, n, E, V, 1.0f, z, V, w, E, 0.0f, dx + r0 * E, E);
            oc_gemm(ex, 1, 0, V, E, n, 1.0f, z, V, x + r0 * E, E, 1.0f, dw, E);
        }
    }
}

void oc_t_lmhead_ce(oc_exec *ex, double *loss_sum, float *dx, float *dw, const float *x,
                    const int32_t *y, const float *w, size_t R, size_t E, size_t V,
                    float scale, float *scratch) {
    lmhead_ce(ex, loss_sum, NULL, dx, dw, x, y, w, R, E, V, scale, NULL, scratch);
}

void oc_t_lmhead_ce_rows(oc_exec *ex, float *row_loss, float *dx, float *dw, const float *x,
                         const int32_t *y, const float *w, size_t R, size_t E, size_t V,
                         const float *row_scale, float *scratch) {
    lmhead_ce(ex, NULL, row_loss, dx, dw, x, y, w, R, E, V, 0.0f, row_scale, scratch);
}
