/* Scoring token sequences: log-probabilities of given tokens under the model, with no
 * sampling, for exams (the letter after "Answer:"), perplexity and answer likelihoods.
 *
 * A scorer owns a KV cache and remembers the tokens it holds. Each call shares the longest
 * common prefix with them and runs only the rest, so a few-shot prefix, or an image and
 * its question, is encoded once for every continuation scored after it. Image tokens take
 * the rows of the features set with oc_scorer_set_images; changing the images drops the
 * cache from the first image token on. */
#ifndef OC_SCORE_H
#define OC_SCORE_H
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "prompt.h"

typedef struct {
    const oc_model *m;
    oc_kv_cache kv;
    int32_t *ids;            /* (kv.cap) the tokens whose keys/values are cached */
    float *last_logits;      /* (V) logits after the last cached token */
    int last_valid;          /* last_logits belongs to position kv.len - 1 */
    const float *feats;      /* (n_feat_rows, C) image features, borrowed */
    size_t n_feat_rows;
    uint64_t image_key;      /* names the images those features came from */
    float *x;                /* (OC_SCORE_CHUNK, C) embeddings scratch */
    float *logits;           /* (OC_SCORE_CHUNK, V) logits scratch */
    oc_pool *pool;           /* the model's thread count */
    oc_exec ex;              /* kernels' context: pool, scratch, FLOPs */
} oc_scorer;

/* Positions run per forward call (bounds the logits scratch). */
#define OC_SCORE_CHUNK 64

oc_status oc_scorer_init(oc_scorer *sc, const oc_model *m);
void oc_scorer_free(oc_scorer *sc);

/* Image features for the image tokens of what is scored next: (n_feat_rows, C), rows in
 * order, borrowed (they must stay valid while used). key names the images (0: none); a
 * key other than the last one drops the cache from its first image token on, since the
 * cached keys and values there came from other pictures. */
void oc_scorer_set_images(oc_scorer *sc, const float *feats, size_t n_feat_rows,
                          uint64_t key);

/* Makes the cache hold ids[0:n] (n >= 1) and last_logits the logits after ids[n-1]. */
oc_status oc_scorer_feed(oc_scorer *sc, const int32_t *ids, size_t n);

/* logprob[i - first] = log p(ids[i] | ids[0:i]) for i in [first, n), 1 <= first <= n
 * (natural log, in double). The cache then holds ids[0:n-1] (the last token needs no
 * keys). logprob may be NULL when only *sum is wanted; sum (optional) gets their total. */
oc_status oc_scorer_logprobs(oc_scorer *sc, const int32_t *ids, size_t n, size_t first,
                             double *logprob, double *sum);

/* The tokens of a one-turn chat, [user: question with n_images images laid out as
 * layouts, assistant: answer], in the model's format, and where the assistant's reply is:
 * ids[*first:*end) are its tokens, the last of them the end-of-turn token (the span the
 * trainer's labels cover). *ids: free with oc_free. */
oc_status oc_chat_answer_ids(const oc_model *m, const oc_tile_layout *layouts, size_t n_images,
                             const char *question, const char *answer, int32_t **ids,
                             size_t *n, size_t *first, size_t *end);

/* log softmax(logits)[id] of one row of V logits, in double. */
double oc_logprob_of(const float *logits, size_t V, int32_t id);
#endif
