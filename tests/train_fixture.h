/* A tiny SmolVLM-shaped model and a few examples for the training tests (gradcheck,
 * resume): 16x16 tiles of 4x4 patches (16 patches, 4 <image> tokens per tile after the
 * pixel shuffle), vision and text hidden 8, GQA with 2 heads over 1 KV head, vocab 20. */
#ifndef OC_TRAIN_FIXTURE_H
#define OC_TRAIN_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define FIX_IMAGE_TOKEN 3
#define FIX_TILE_FLOATS (3 * 16 * 16)

/* Writes dir/config.json; tied: tie_word_embeddings. */
static inline void fixture_config(const char *dir, int tied) {
    char path[1024], text[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(text, sizeof text,
             "{\"model_type\": \"smolvlm\", \"image_token_id\": %d, \"scale_factor\": 2,"
             " \"tie_word_embeddings\": %s, \"pad_token_id\": 0,"
             " \"vision_config\": {\"hidden_size\": 8, \"intermediate_size\": 12,"
             "  \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"image_size\": 16,"
             "  \"patch_size\": 4, \"num_channels\": 3, \"layer_norm_eps\": 1e-6,"
             "  \"hidden_act\": \"gelu_pytorch_tanh\", \"initializer_range\": 0.02},"
             " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 8,"
             "  \"intermediate_size\": 12, \"num_hidden_layers\": 2,"
             "  \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 4,"
             "  \"vocab_size\": 20, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,"
             "  \"max_position_embeddings\": 128, \"tie_word_embeddings\": %s,"
             "  \"pad_token_id\": 0, \"initializer_range\": 0.02}}",
             FIX_IMAGE_TOKEN, tied ? "true" : "false", tied ? "true" : "false");
    write_text(path, text);
}

/* Deterministic pseudo-random numbers for test data. */
static inline double fixture_uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    oc_train_example ex[4];
    int32_t ids[4][40], labels[4][40];
    float *pixels;
} fixture_batch;

/* Four examples: 2 tiles, none, 1 tile, 1 tile; text tokens 5..19, some labels -100
 * (the image tokens, and the prompt of the first example). variant shifts the tokens so
 * that successive steps see different data. */
static inline void fixture_examples(fixture_batch *b, uint64_t seed, int variant) {
    static const uint32_t tiles[4] = {2, 0, 1, 1};
    static const size_t lens[4] = {17, 9, 12, 30};
    uint64_t s = seed;
    size_t total_tiles = 0;
    for (int e = 0; e < 4; e++)
        total_tiles += tiles[e];
    b->pixels = malloc(total_tiles * FIX_TILE_FLOATS * sizeof(float));
    for (size_t i = 0; i < total_tiles * FIX_TILE_FLOATS; i++)
        b->pixels[i] = (float)(2 * fixture_uniform(&s) - 1);
    size_t tile = 0;
    for (int e = 0; e < 4; e++) {
        size_t n = lens[e], img = tiles[e] * 4, t = 0;
        b->ids[e][t++] = 1;                           /* bos */
        for (size_t k = 0; k < img; k++)
            b->ids[e][t++] = FIX_IMAGE_TOKEN;
        for (; t < n; t++)
            b->ids[e][t] = 5 + (int32_t)((t * 7 + (size_t)e * 3 + (size_t)variant * 5) % 15);
        for (size_t k = 0; k < n; k++)
            b->labels[e][k] = b->ids[e][k] == FIX_IMAGE_TOKEN || (e == 0 && k < img + 3)
                                  ? -100 : b->ids[e][k];
        b->ex[e] = (oc_train_example){b->ids[e], b->labels[e], n,
                                      tiles[e] ? b->pixels + tile * FIX_TILE_FLOATS : NULL,
                                      tiles[e]};
        tile += tiles[e];
    }
}
#endif
