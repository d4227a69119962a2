/* Prompt assembly: a conversation in the model family's chat format, with each image
 * expanded into its image tokens, tokenized; labels for training. */
#ifndef OC_PROMPT_H
#define OC_PROMPT_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ocellus.h"
#include "strbuf.h"

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
 * LLaVA ignores it (one image = one fixed run of tokens). Qwen2.5-VL: rows x cols is the
 * image's patch grid (grid_h, grid_w). Gemma 3: rows x cols pan-and-scan crops after the
 * whole image (0 x 0: none). */
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

/* Image tokens one image of that layout becomes in the text stream. */
uint32_t oc_image_tokens(const oc_model_config *cfg, const oc_tile_layout *layout);

/* The chat formats of Qwen2.5-VL and Gemma 3 (prompt_families.c), as prompt.c's render:
 * appends the conversation to b; span_start/span_end as there. */
oc_status oc_prompt_render_family(oc_strbuf *b, const oc_model_config *c, const oc_turn *turns,
                                  size_t n_turns, const oc_tile_layout *layouts,
                                  size_t n_images, int add_generation_prompt,
                                  size_t *span_start, size_t *span_end);
/* Whether the tokenizer spells the family's image tokens with the config's ids (a folder
 * whose tokenizer and config disagree would put features at the wrong tokens). */
oc_status oc_prompt_check_tokens(const oc_model_config *c, const oc_tokenizer *tok,
                                 const char *dir);
#endif
