/* PIL-compatible resampling of 8-bit RGB images (Pillow's Resample.c semantics:
 * separable convolution, horizontal pass then vertical, 8-bit rounding between passes,
 * support scaled by the downsampling factor). */
#ifndef OC_RESAMPLE_H
#define OC_RESAMPLE_H
#include <stdint.h>

#include "ocellus.h"

/* PIL's numbering of Image.Resampling. */
typedef enum {
    OC_RESAMPLE_NEAREST = 0,
    OC_RESAMPLE_LANCZOS = 1,
    OC_RESAMPLE_BILINEAR = 2,
    OC_RESAMPLE_BICUBIC = 3,
    OC_RESAMPLE_BOX = 4,
    OC_RESAMPLE_HAMMING = 5,
} oc_resample;

/* dst (dh, dw, 3) = resize(src (sh, sw, 3)) as PIL's Image.resize((dw, dh), filter). */
oc_status oc_resize_rgb8(uint8_t *dst, uint32_t dw, uint32_t dh, const uint8_t *src,
                         uint32_t sw, uint32_t sh, oc_resample filter);

/* dst (ch, cw, 3) = the window of cw x ch pixels at (x0, y0) of that same resize, without
 * making the rest: the same bytes as resizing and then cropping. The window must lie
 * inside dw x dh. */
oc_status oc_resize_rgb8_window(uint8_t *dst, uint32_t dw, uint32_t dh, uint32_t x0,
                                uint32_t y0, uint32_t cw, uint32_t ch, const uint8_t *src,
                                uint32_t sw, uint32_t sh, oc_resample filter);
#endif
