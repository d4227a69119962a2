/* Log-probability of an answer to a question about images, as the model's chat format
 * lays them out: the probability of the exact answer that a capability measure (and the
 * letter of a multiple-choice question) reads. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "score.h"
#include "session.h"

oc_status oc_chat_answer_ids(const oc_model *m, const oc_tile_layout *layouts, size_t n_images,
                             const char *question, const char *answer, int32_t **ids,
                             size_t *n, size_t *first, size_t *end) {
    oc_turn turns[2] = {{.is_assistant = 0, .text = question, .n_images = (uint32_t)n_images},
                        {.is_assistant = 1, .text = answer}};
    int32_t *labels = NULL;
    OC_TRY(oc_prompt_encode(&m->cfg, m->tok, turns, 2, layouts, n_images, 0, ids, &labels, n));
    size_t a = 0, b = *n;
    while (a < *n && labels[a] == OC_IGNORE_LABEL)
        a++;
    while (b > a && labels[b - 1] == OC_IGNORE_LABEL)
        b--;
    oc_free(labels);
    if (a == b || a == 0) {
        oc_free(*ids);
        *ids = NULL;
        return oc_err(OC_ERR_INTERNAL, "the chat format gave the answer no tokens");
    }
    *first = a;
    *end = b;
    return OC_OK;
}

oc_status oc_answer_logprob(const oc_model *model, const oc_image *const *images,
                            size_t n_images, const char *question, const char *answer,
                            double *logprob, size_t *n_tokens) {
    if (!model || !question || !answer || !logprob || (n_images && !images))
        return oc_err(OC_ERR_INVALID_ARG, "oc_answer_logprob: NULL argument");
    oc_session *s;
    OC_TRY(oc_session_new(model, &s));
    oc_timings tm = {0};
    oc_scorer sc;
    int32_t *ids = NULL;
    size_t n = 0, first = 0, end = 0;
    oc_status st = oc_session_add_images(s, images, n_images, &tm, NULL);
    if (st == OC_OK)
        st = oc_chat_answer_ids(model, s->layouts, s->n_images, question, answer, &ids, &n,
                                &first, &end);
    int have_scorer = st == OC_OK && (st = oc_scorer_init(&sc, model)) == OC_OK;
    if (have_scorer) {
        oc_scorer_set_images(&sc, s->feats, s->n_feat_rows, 1);
        st = oc_scorer_logprobs(&sc, ids, end, first, NULL, logprob);
        oc_scorer_free(&sc);
    }
    if (st == OC_OK && n_tokens)
        *n_tokens = end - first;
    oc_free(ids);
    oc_session_free(s);
    return st;
}
