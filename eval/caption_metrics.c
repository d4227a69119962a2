/* BLEU-1..4 and CIDEr-D of a set of captions (COCOEvalCap: both sides tokenized, then each
 * scorer on the whole set). */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "ngrams.h"
#include "ocellus.h"

oc_status oc_caption_metrics_compute(const char *const *candidates,
                                     const char *const *const *refs, const size_t *n_refs,
                                     size_t n, int tokenize, oc_caption_metrics *out,
                                     double *per_image_cider) {
    if (!candidates || !refs || !n_refs || !out || n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "caption metrics: NULL argument or no captions");
    size_t total_refs = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_refs[i] == 0 || !refs[i] || !candidates[i])
            return oc_err(OC_ERR_INVALID_ARG, "caption metrics: image %zu has no candidate or "
                          "no references", i);
        total_refs += n_refs[i];
    }
    oc_ngrams *cand = oc_calloc(n, sizeof *cand);
    oc_ngrams *all_refs = oc_calloc(total_refs, sizeof *all_refs);
    const oc_ngrams **ref_of = oc_calloc(n, sizeof *ref_of);
    double *cider = per_image_cider ? per_image_cider : oc_malloc(n * sizeof *cider);
    oc_status s = cand && all_refs && ref_of && cider ? OC_OK
                                                      : oc_err(OC_ERR_NOMEM, "out of memory");
    size_t r = 0;
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        ref_of[i] = all_refs + r;
        for (size_t j = 0; s == OC_OK && j <= n_refs[i]; j++) {
            const char *text = j == 0 ? candidates[i] : refs[i][j - 1];
            char *tok = NULL;
            if (tokenize && (s = oc_caption_tokenize(text, &tok)) != OC_OK)
                break;
            s = oc_ngrams_build(tok ? tok : text, j == 0 ? &cand[i] : &all_refs[r++]);
            oc_free(tok);
        }
    }
    if (s == OC_OK) {
        oc_bleu_corpus(cand, ref_of, n_refs, n, out->bleu);
        s = oc_cider_d(cand, ref_of, n_refs, n, cider, &out->cider_d);
    }
    for (size_t i = 0; cand && i < n; i++)
        oc_ngrams_free(&cand[i]);
    for (size_t i = 0; all_refs && i < total_refs; i++)
        oc_ngrams_free(&all_refs[i]);
    oc_free(cand);
    oc_free(all_refs);
    oc_free(ref_of);
    if (cider != per_image_cider)
        oc_free(cider);
    return s;
}
