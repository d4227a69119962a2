/* PNG encoding of 8-bit RGB images (zlib deflate), for the synthetic datasets. */
#ifndef OC_PNG_WRITE_H
#define OC_PNG_WRITE_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"

/* *png (size *n, free with oc_free) = rgb (h, w, 3) as a PNG file's bytes. */
oc_status oc_png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t **png, size_t *n);
#endif
