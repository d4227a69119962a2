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
    int32_t next_pos;          /* M-RoPE (Qwen2.5-VL): the position of the next text token */
    int text_positions;        /* Qwen2.5-VL: positions 0, 1, 2, ... for every token, as
                                  transformers 5 computes them when the model is called
                                  without mm_token_type_ids (to reproduce such references);
                                  0 (default): M-RoPE, as with its processor's inputs */
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
 * values from transformers, to reproduce its generation exactly (Qwen2.5-VL: one tile of
 * (rows * cols, patch values) patches, layout the patch grid). */
oc_status oc_session_add_pixels(oc_session *s, const float *pixels, uint32_t n_tiles,
                                oc_tile_layout layout);
/* Runs ids[from:to] of a prompt ids (n) through the text model after the cached ids[0:from]
 * (kv.len == from): embeddings with image features, the family's positions (M-RoPE) and
 * image spans (Gemma 3: an image's tokens see each other; to must not cut an image).
 * x: scratch of (to - from, C); hidden_out, logits as oc_llama_forward. */
oc_status oc_session_forward(oc_session *s, const int32_t *ids, size_t n, size_t from,
                             size_t to, float *x, float *hidden_out, float *logits,
                             uint32_t n_logits);
/* Generation for the session's turns and images as they stand: the prompt with the
 * generation prompt, prefilled (reusing the cached prefix), then decoded. ans receives the
 * tokens and timings, not the text; the turns are left as they were. */
oc_status oc_session_generate(oc_session *s, const oc_gen_params *p, oc_answer *ans);
#endif
