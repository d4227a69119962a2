/* Prompt assembly: a conversation in the model family's chat format, with each image
 * expanded into its image tokens, tokenized; labels for training. */
#ifndef OC_PROMPT_H
#define OC_PROMPT_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ocellus.h"

#define OC_IGNORE_LABEL (-100)

typedef struct {
    int is_assistant;   /* 0: user (or system) turn, 1: assistant turn */
    const char *text;   /* UTF-8 */
    uint32_t n_images;  /* images of this (user) turn, placed at the start unless image_at */
    int is_system;      /* 1: a system prompt (is_assistant 0, no images) */
    const size_t *image_at; /* optional (n_images): byte offset in text of each image,
                               ascending, for text before an image (SmolVLM renders parts in
                               order; LLaVA's template puts images first anyway) */
} oc_turn;

/* How one image was tiled (SmolVLM): rows x cols tiles + global; 0 x 0 = global only.
 * LLaVA ignores it (one image = one fixed run of tokens). */
typedef struct {
    uint32_t rows, cols;
} oc_tile_layout;

/* The prompt text of a conversation, images expanded, e.g. for SmolVLM:
 * "<|im_start|>User:<fake_token_around_image>...Question<end_of_utterance>\nAssistant:".
 * layouts has one entry per image, in order. *text: free with oc_free. */
oc_status oc_prompt_text(const oc_model_config *cfg, const oc_turn *turns, size_t n_turns,
                         const oc_tile_layout *layouts, size_t n_images,
                         int add_generation_prompt, char **text);

/* Tokenized prompt. labels (optional, may be NULL): OC_IGNORE_LABEL everywhere except the
 * tokens of assistant turns (their text and end-of-turn token), as used for fine-tuning.
 * *ids and *labels: free with oc_free. */
oc_status oc_prompt_encode(const oc_model_config *cfg, const oc_tokenizer *tok,
                           const oc_turn *turns, size_t n_turns, const oc_tile_layout *layouts,
                           size_t n_images, int add_generation_prompt, int32_t **ids,
                           int32_t **labels, size_t *n);
#endif
