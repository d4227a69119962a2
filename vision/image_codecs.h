/* The decoders image.c dispatches to besides stb_image: JPEG through libjpeg(-turbo) and
 * WebP through libwebp, each set up as Pillow sets it up, and EXIF orientation. Each
 * decoder checks the size against the limits before it allocates pixels. */
#ifndef OC_IMAGE_CODECS_H
#define OC_IMAGE_CODECS_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Checks w x h against the limits (OC_ERR_LIMIT / OC_ERR_FORMAT naming the file). */
oc_status oc_image_check_limits(const char *name, int64_t w, int64_t h,
                                const oc_image_limits *lim);

/* JPEG as Pillow decodes it and converts it to RGB. *orientation: the EXIF orientation
 * (1 when there is none). */
oc_status oc_jpeg_decode(const char *name, const uint8_t *d, size_t n,
                         const oc_image_limits *lim, oc_image **out, int *orientation);
/* 1 if the bytes look like a WebP file (RIFF....WEBP). */
int oc_webp_sniff(const uint8_t *d, size_t n);
/* WebP (the first frame of an animation), as Pillow's WebPAnimDecoder-based plugin. */
oc_status oc_webp_decode(const char *name, const uint8_t *d, size_t n,
                         const oc_image_limits *lim, oc_image **out, int *orientation);

/* The orientation (tag 0x0112 of IFD0, 1..8) in EXIF data: a TIFF structure, optionally
 * after "Exif\0\0". 1 when absent or unreadable: Pillow ignores broken EXIF too. */
int oc_exif_orientation(const uint8_t *d, size_t n);
/* Applies an EXIF orientation as PIL.ImageOps.exif_transpose does (2: mirror, 3: 180°,
 * 4: flip, 5: transpose, 6: 90° clockwise, 7: transverse, 8: 90° counter-clockwise);
 * *img may be replaced. */
oc_status oc_image_orient(oc_image **img, int orientation);
#endif
