/* An image's features in text space, computed once and shared (ocellus.h). */
#ifndef OC_ENCODED_IMAGE_H
#define OC_ENCODED_IMAGE_H
#include <stdatomic.h>

#include "prompt.h"

struct oc_encoded_image {
    const oc_model *m;       /* the model whose encoder made it */
    float *feats;            /* (n_rows, C_text): one row per image token, in order */
    size_t n_rows;
    uint32_t n_tiles;
    oc_tile_layout layout;   /* SmolVLM's tiling */
    double ms;               /* preprocessing + encoding time */
    atomic_uint refs;
};

/* Bytes held by its features. */
size_t oc_encoded_image_bytes(const oc_encoded_image *e);
#endif
