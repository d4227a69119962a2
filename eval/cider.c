/* CIDEr-D as the COCO caption evaluation computes it (pycocoevalcap's cider_scorer.py):
 * n-gram vectors of tf x (log(images) - log(max(1, df))), df the number of images whose
 * references hold the n-gram; per n, the sum over the candidate's n-grams of
 * min(candidate, reference) x reference (the clipping), divided by the two norms, times
 * exp(-(delta^2) / (2 * 6^2)) with delta the difference of their bigram counts (the
 * script's "length" counts bigrams); the mean over n = 1..4 and over the references,
 * times 10. Sums run in the script's order (precook's, numpy's for np.mean). */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "ngrams.h"

#define SIGMA 6.0

typedef struct {
    double *vec;                 /* (n_grams) tf-idf per n-gram of the sentence */
    double norm[OC_NGRAM_MAX];
    long long length;            /* bigram count */
} tfidf;

static void counts2vec(const oc_ngrams *g, const oc_strmap *df, const uint32_t *df_count,
                       double ref_len, tfidf *out) {
    double norm2[OC_NGRAM_MAX] = {0};
    out->length = 0;
    for (size_t i = 0; i < g->n_grams; i++) {
        const oc_ngram *e = &g->v[i];
        int32_t at = oc_strmap_get(df, e->key, strlen(e->key));
        double d = log(at < 0 || df_count[at] < 1 ? 1.0 : (double)df_count[at]);
        double v = (double)e->count * (ref_len - d);
        out->vec[i] = v;
        norm2[e->n - 1] += v * v;
        if (e->n == 2)
            out->length += e->count;
    }
    for (int k = 0; k < OC_NGRAM_MAX; k++)
        out->norm[k] = sqrt(norm2[k]);
}

/* sim(): val[n] for n = 1..4, added into score. */
static void sim(const oc_ngrams *hyp, const tfidf *vh, const oc_ngrams *ref, const tfidf *vr,
                double score[OC_NGRAM_MAX]) {
    double delta = (double)(vh->length - vr->length);
    double val[OC_NGRAM_MAX] = {0};
    for (size_t i = 0; i < hyp->n_grams; i++) {
        const oc_ngram *e = &hyp->v[i];
        int32_t j = oc_strmap_get(&ref->index, e->key, strlen(e->key));
        double r = j < 0 ? 0. : vr->vec[j], h = vh->vec[i];
        val[e->n - 1] += (h < r ? h : r) * r;
    }
    for (int k = 0; k < OC_NGRAM_MAX; k++) {
        if (vh->norm[k] != 0 && vr->norm[k] != 0)
            val[k] /= vh->norm[k] * vr->norm[k];
        val[k] *= pow(M_E, -(delta * delta) / (2 * SIGMA * SIGMA)); /* np.e ** x */
        score[k] += val[k];
    }
}

oc_status oc_cider_d(const oc_ngrams *cands, const oc_ngrams *const *refs,
                     const size_t *n_refs, size_t n, double *per_image, double *mean) {
    if (n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "CIDEr-D: no images");
    /* document frequency: images whose references hold the n-gram */
    oc_strmap df = {0}, seen = {0};
    uint32_t *df_count = NULL;
    size_t n_df = 0, cap = 0, max_grams = 1;
    for (size_t i = 0; i < n; i++) {
        cap += 1;
        for (size_t j = 0; j < n_refs[i]; j++)
            cap += refs[i][j].n_grams;
        max_grams = cands[i].n_grams > max_grams ? cands[i].n_grams : max_grams;
        for (size_t j = 0; j < n_refs[i]; j++)
            max_grams = refs[i][j].n_grams > max_grams ? refs[i][j].n_grams : max_grams;
    }
    oc_status s = oc_strmap_init(&df, cap);
    if (s == OC_OK && !(df_count = oc_calloc(cap, sizeof *df_count)))
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        oc_strmap_free(&seen);
        s = oc_strmap_init(&seen, 64);
        for (size_t j = 0; s == OC_OK && j < n_refs[i]; j++) {
            for (size_t g = 0; s == OC_OK && g < refs[i][j].n_grams; g++) {
                const char *key = refs[i][j].v[g].key;
                size_t len = strlen(key);
                if (oc_strmap_get(&seen, key, len) >= 0)
                    continue;
                s = oc_strmap_put(&seen, key, len, 1, NULL);
                int32_t at = oc_strmap_get(&df, key, len);
                if (s == OC_OK && at < 0) {
                    at = (int32_t)n_df++;
                    s = oc_strmap_put(&df, key, len, at, NULL);
                }
                if (s == OC_OK)
                    df_count[at]++;
            }
        }
    }
    oc_strmap_free(&seen);
    double ref_len = log((double)n);
    tfidf vh = {0}, vr = {0};
    vh.vec = oc_malloc(max_grams * sizeof(double));
    vr.vec = oc_malloc(max_grams * sizeof(double));
    if (s == OC_OK && (!vh.vec || !vr.vec))
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        counts2vec(&cands[i], &df, df_count, ref_len, &vh);
        double score[OC_NGRAM_MAX] = {0};
        for (size_t j = 0; j < n_refs[i]; j++) {
            counts2vec(&refs[i][j], &df, df_count, ref_len, &vr);
            sim(&cands[i], &vh, &refs[i][j], &vr, score);
        }
        double avg = oc_np_sum(score, OC_NGRAM_MAX) / OC_NGRAM_MAX;
        avg /= (double)n_refs[i];
        avg *= 10.0;
        per_image[i] = avg;
    }
    if (s == OC_OK)
        *mean = oc_np_sum(per_image, n) / (double)n;
    oc_free(vh.vec);
    oc_free(vr.vec);
    oc_free(df_count);
    oc_strmap_free(&df);
    return s;
}
