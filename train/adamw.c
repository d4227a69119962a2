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
#pragma omp parallel for schedule(static) if (n > OC_T_PAR_ELEMS)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], mi = m[i];
        p[i] *= decay;
        /* torch.lerp: start + w * (end - start) for w < 0.5 */
        mi = w1 < 0.5f ? mi + w1 * (gi - mi) : gi - (gi - mi) * (1.0f - w1);
        float vi = v[i] * b2 + w2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] += step_size * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

double oc_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
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
