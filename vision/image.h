/* Decoded images: 8-bit RGB, rows top to bottom, no padding. */
#ifndef OC_IMAGE_H
#define OC_IMAGE_H
#include <stdint.h>

#include "ocellus.h"

struct oc_image {
    uint32_t w, h;
    uint8_t *rgb; /* (h, w, 3) */
};

/* A new w x h image with uninitialised pixels. */
oc_status oc_image_alloc(uint32_t w, uint32_t h, oc_image **out);
#endif
