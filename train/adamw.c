#include <math.h>

#include "ops.h"
#include "optim.h"

#define GRAIN 65536
#define NORM_BLOCKS 64

typedef struct {
    float *p, *m, *v;
    const float *g;
    float decay, b2, w2, step_size, bc2_sqrt, eps, la, lb;
    int low;
} adamw_job;

static void adamw_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const adamw_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        float gi = j->g[i], mi = j->m[i];
        float pi = j->p[i] * j->decay;
        mi = (j->low ? mi : gi * j->la) + j->lb * (gi - mi);
        float vi = j->v[i] * j->b2 + j->w2 * gi * gi;
        float denom = sqrtf(vi) / j->bc2_sqrt + j->eps;
        j->p[i] = pi + j->step_size * mi / denom;
        j->m[i] = mi;
        j->v[i] = vi;
    }
}

void oc_adamw_update(oc_exec *ex, float *p, const float *g, float *m, float *v, size_t n,
                     const oc_adamw_hparams *h, uint64_t step, double wd) {
    /* torch computes the scalars in double and each tensor op in float32 with the scalar
     * rounded to float; the same roundings are kept here. */
    float decay = (float)(1.0 - h->lr * wd);
    float w1 = (float)(1.0 - h->beta1), b2 = (float)h->beta2, w2 = (float)(1.0 - h->beta2);
    double bc1 = 1.0 - pow(h->beta1, (double)step), bc2 = 1.0 - pow(h->beta2, (double)step);
    float step_size = (float)(-(h->lr / bc1)), bc2_sqrt = (float)sqrt(bc2),
          eps = (float)h->eps;
    /* torch.lerp(start, end, w): start + w * (end - start) when w < 0.5, else
     * end - (end - start) * (1 - w); written as a + b * (end - start) either way */
    int low = w1 < 0.5f;
    adamw_job j = {p, m, v, g, decay, b2, w2, step_size, bc2_sqrt, eps,
                   low ? 0.0f : 1.0f, low ? w1 : -(1.0f - w1), low};
    oc_pool_for(ex->pool, n, GRAIN, adamw_range, &j);
}

typedef struct {
    const float *g;
    size_t n;
    double part[NORM_BLOCKS];
} norm_job;

static void norm_block(void *ctx, size_t b, int thread) {
    (void)thread;
    norm_job *j = ctx;
    size_t lo = j->n * b / NORM_BLOCKS, hi = j->n * (b + 1) / NORM_BLOCKS, i = lo;
    const float *g = j->g;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; i + 4 <= hi; i += 4) {
        s0 += (double)g[i] * g[i];
        s1 += (double)g[i + 1] * g[i + 1];
        s2 += (double)g[i + 2] * g[i + 2];
        s3 += (double)g[i + 3] * g[i + 3];
    }
    for (; i < hi; i++)
        s0 += (double)g[i] * g[i];
    j->part[b] = (s0 + s1) + (s2 + s3);
}

double oc_grad_sumsq(oc_exec *ex, const float *g, size_t n) {
    /* fixed blocks summed in a fixed order: the same value on any number of threads */
    norm_job j = {g, n, {0}};
    oc_pool_run(n > GRAIN ? ex->pool : NULL, NORM_BLOCKS, norm_block, &j);
    double s = 0;
    for (int b = 0; b < NORM_BLOCKS; b++)
        s += j.part[b];
    return s;
}

double oc_grad_norm(oc_exec *ex, const float *g, size_t n) { return sqrt(oc_grad_sumsq(ex, g, n)); }

typedef struct {
    float *g;
    float coef;
} clip_job;

static void clip_range(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const clip_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        j->g[i] *= j->coef;
}

float oc_clip_grads(oc_exec *ex, float *g, size_t n, double norm, double max_norm) {
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (coef >= 1.0f)
        return 1.0f;
    clip_job j = {g, coef};
    oc_pool_for(ex->pool, n, GRAIN, clip_range, &j);
    return coef;
}
