/* A conversation with a model: turns, image features and the KV cache. */
#ifndef OC_SESSION_H
#define OC_SESSION_H
#include "model.h"
#include "prompt.h"
#include "sample.h"

struct oc_session {
    const oc_model *m;
    oc_pool *pool;             /* the model's thread count */
    oc_exec ex;                /* pool, scratch kept between calls, FLOP counter */
    oc_kv_cache kv;
    int32_t *fed;              /* (kv.len) token ids whose keys/values are cached */
    oc_turn *turns;            /* texts owned */
    size_t n_turns;
    oc_tile_layout *layouts;   /* (n_images) */
    size_t n_images;
    size_t n_images_in_turns;  /* images already placed in a turn; the rest are pending */
    float *feats;              /* (n_feat_rows, C_text) features of every image token */
    size_t n_feat_rows;
    oc_rng rng;
};

/* Embeddings of ids[from:to] into x ((to - from), C): token embeddings, with image
 * features at image-token positions (the k-th image token of ids (n) takes feature row k;
 * the count must match the session's features). */
oc_status oc_session_embed(const oc_session *s, const int32_t *ids, size_t n, size_t from,
                           size_t to, float *x);
/* Preprocesses and encodes images, appending their features and layouts; they join the
 * next user turn. */
oc_status oc_session_add_images(oc_session *s, const oc_image *const *images, size_t n,
                                oc_timings *tm, const oc_progress *progress);
/* Same with preprocessed pixels (n_tiles, 3, S, S) of one image tiled as layout, e.g. pixel
 * values from transformers, to reproduce its generation exactly. */
oc_status oc_session_add_pixels(oc_session *s, const float *pixels, uint32_t n_tiles,
                                oc_tile_layout layout);
/* Generation for the session's turns and images as they stand: the prompt with the
 * generation prompt, prefilled (reusing the cached prefix), then decoded. ans receives the
 * tokens and timings, not the text; the turns are left as they were. */
oc_status oc_session_generate(oc_session *s, const oc_gen_params *p, oc_answer *ans);
#endif
