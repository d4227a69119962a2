#include "sample.h"

#include <math.h>
#include <stdlib.h>

static size_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Sorting ids by logit, descending; ties by id for determinism. */
static int cmp_desc(const void *a, const void *b, void *keys) {
    int32_t ia = *(const int32_t *)a, ib = *(const int32_t *)b;
    float fa = ((const float *)keys)[ia], fb = ((const float *)keys)[ib];
    if (fa != fb)
        return fa > fb ? -1 : 1;
    return ia < ib ? -1 : 1;
}

/* RepetitionPenaltyLogitsProcessor: each id seen once, score / p if > 0 else * p. */
static void repetition_penalty(float *logits, size_t V, const int32_t *hist, size_t n,
                               float p, float *mark) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = hist[i];
        if (id < 0 || (size_t)id >= V || mark[id] != 0)
            continue;
        mark[id] = 1;
        logits[id] = logits[id] > 0 ? logits[id] / p : logits[id] * p;
    }
    for (size_t i = 0; i < n; i++)
        if (hist[i] >= 0 && (size_t)hist[i] < V)
            mark[hist[i]] = 0;
}

int32_t oc_sample(const oc_sampler *s, float *logits, size_t V, const int32_t *history,
                  size_t n_hist, oc_rng *rng, float *scratch_f, int32_t *scratch_i) {
    if (s->repetition_penalty > 0 && s->repetition_penalty != 1.0f) {
        for (size_t i = 0; i < V; i++)
            scratch_f[i] = 0;
        repetition_penalty(logits, V, history, n_hist, s->repetition_penalty, scratch_f);
    }
    if (s->temperature <= 0)
        return (int32_t)argmax(logits, V);
    for (size_t i = 0; i < V; i++) {
        logits[i] /= s->temperature;
        scratch_i[i] = (int32_t)i;
    }
    /* The candidates in descending order of logit. */
    size_t n = V;
    qsort_r(scratch_i, V, sizeof *scratch_i, cmp_desc, logits);
    if (s->top_k > 0 && s->top_k < n)
        n = s->top_k;
    float mx = logits[scratch_i[0]];
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        scratch_f[i] = expf(logits[scratch_i[i]] - mx);
        sum += scratch_f[i];
    }
    if (s->top_p > 0 && s->top_p < 1) {
        /* TopPLogitsWarper keeps the smallest prefix whose probability reaches top_p. */
        double cum = 0;
        size_t keep = 0;
        while (keep < n) {
            cum += scratch_f[keep] / sum;
            keep++;
            if (cum >= s->top_p)
                break;
        }
        n = keep;
        sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += scratch_f[i];
    }
    double u = oc_rng_uniform(rng) * sum, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += scratch_f[i];
        if (u < acc)
            return scratch_i[i];
    }
    return scratch_i[n - 1];
}
