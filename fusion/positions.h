/* Where the tokens of a prompt sit for the text model, beyond 0, 1, 2, ...: Qwen2.5-VL's
 * multimodal RoPE positions and Gemma 3's bidirectional image spans. */
#ifndef OC_POSITIONS_H
#define OC_POSITIONS_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "prompt.h"

/* Qwen2.5-VL's get_rope_index for ids (n) holding the images of layouts (n_images) in
 * order: pos (3, n), rows temporal, height, width. A text token is one past the largest
 * position before it (all three rows alike); an image's k-th token sits at (s, s + y, s + x)
 * for its merged patch (y, x), s the position a text token there would have had. *next:
 * the position of a text token after ids. */
oc_status oc_mrope_positions(const oc_model_config *c, const int32_t *ids, size_t n,
                             const oc_tile_layout *layouts, size_t n_images, int32_t *pos,
                             int32_t *next);

/* The run of image tokens of ids (n) holding position i: [*begin, *end); 0, 0 when ids[i]
 * is not an image token. The tokens of one image (Gemma 3: a run) see each other. */
void oc_image_run(const oc_model_config *c, const int32_t *ids, size_t n, size_t i,
                  size_t *begin, size_t *end);
#endif
