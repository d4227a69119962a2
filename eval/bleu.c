/* Corpus BLEU as the COCO caption evaluation computes it (pycocoevalcap's bleu_scorer.py,
 * BleuScorer.compute_score(option='closest')): clipped n-gram matches and guesses summed
 * over the corpus, the reference length of each image the one closest to its candidate's
 * (the shorter on a tie), BLEU-n the geometric mean of precisions 1..n with 1e-15 / 1e-9
 * smoothing, times the brevity penalty exp(1 - r/c) when c < r. */
#include <math.h>
#include <stdlib.h>

#include "ngrams.h"

void oc_bleu_corpus(const oc_ngrams *cands, const oc_ngrams *const *refs, const size_t *n_refs,
                    size_t n, double bleu[4]) {
    const double small = 1e-9, tiny = 1e-15;
    /* counts are integers, summed exactly as Python's ints */
    long long correct[OC_NGRAM_MAX] = {0}, guess[OC_NGRAM_MAX] = {0};
    long long testlen = 0, reflen = 0;
    for (size_t i = 0; i < n; i++) {
        const oc_ngrams *c = &cands[i];
        long long t = (long long)c->words;
        testlen += t;
        /* closest reference length: min over (|l - t|, l) */
        long long best = -1, best_d = 0;
        for (size_t j = 0; j < n_refs[i]; j++) {
            long long l = (long long)refs[i][j].words, d = llabs(l - t);
            if (best < 0 || d < best_d || (d == best_d && l < best))
                best = l, best_d = d;
        }
        reflen += best;
        for (int k = 1; k <= OC_NGRAM_MAX; k++)
            guess[k - 1] += t - k + 1 > 0 ? t - k + 1 : 0;
        for (size_t g = 0; g < c->n_grams; g++) {
            uint32_t max_ref = 0;
            for (size_t j = 0; j < n_refs[i]; j++) {
                uint32_t r = oc_ngrams_count(&refs[i][j], c->v[g].key);
                max_ref = r > max_ref ? r : max_ref;
            }
            correct[c->v[g].n - 1] += c->v[g].count < max_ref ? c->v[g].count : max_ref;
        }
    }
    double b = 1.;
    for (int k = 0; k < OC_NGRAM_MAX; k++) {
        b *= ((double)correct[k] + tiny) / ((double)guess[k] + small);
        bleu[k] = pow(b, 1. / (k + 1));
    }
    double ratio = ((double)testlen + tiny) / ((double)reflen + small);
    if (ratio < 1)
        for (int k = 0; k < OC_NGRAM_MAX; k++)
            bleu[k] *= exp(1 - 1 / ratio);
}
