#include <math.h>

#include "ops.h"
#include "optim.h"

void oc_adamw_update(float *p, const float *g, float *m, float *v, size_t n,
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
    float la = low ? 0.0f : 1.0f, lb = low ? w1 : -(1.0f - w1);
#pragma omp parallel for schedule(static) if (n > OC_T_PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], mi = m[i];
        float pi = p[i] * decay;
        mi = (low ? mi : gi * la) + lb * (gi - mi);
        float vi = v[i] * b2 + w2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

double oc_grad_norm(const float *g, size_t n) {
    /* fixed blocks summed in a fixed order: the same value on any number of threads */
    enum { NB = 64 };
    double part[NB];
#pragma omp parallel for schedule(static) if (n > OC_T_PAR_ELEMS)
    for (int b = 0; b < NB; b++) {
        size_t lo = n * (size_t)b / NB, hi = n * (size_t)(b + 1) / NB, i = lo;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; i + 4 <= hi; i += 4) {
            s0 += (double)g[i] * g[i];
            s1 += (double)g[i + 1] * g[i + 1];
            s2 += (double)g[i + 2] * g[i + 2];
            s3 += (double)g[i + 3] * g[i + 3];
        }
        for (; i < hi; i++)
            s0 += (double)g[i] * g[i];
        part[b] = (s0 + s1) + (s2 + s3);
    }
    double s = 0;
    for (int b = 0; b < NB; b++)
        s += part[b];
    return sqrt(s);
}

float oc_clip_grads(float *g, size_t n, double norm, double max_norm) {
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (coef >= 1.0f)
        return 1.0f;
#pragma omp parallel for schedule(static) if (n > OC_T_PAR_ELEMS)
    for (size_t i = 0; i < n; i++)
        g[i] *= coef;
    return coef;
}
