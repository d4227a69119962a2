/* Steps the image processors share (preprocess.c), for the processors of other files. */
#ifndef OC_PREPROCESS_INTERNAL_H
#define OC_PREPROCESS_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "image.h"
#include "resample.h"

typedef struct {
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    const float *mean, *std; /* (3) */
} pixel_norm;

/* A side from j[key]: an object holding sub_key, or a bare integer (older configs). */
oc_status oc_pp_size_field(const cJSON *j, const char *key, const char *sub_key,
                           uint32_t def, const char *file, uint32_t *out);
/* The fields every processor has: rescale, normalise, resample. */
oc_status oc_pp_common_fields(const cJSON *j, const char *file, int def_resample,
                              const float def_mean[3], const float def_std[3],
                              int *do_rescale, double *rescale_factor, int *do_normalize,
                              float mean[3], float std[3], oc_resample *resample);
/* A byte as transformers makes it: x * factor in float64 cast to float32, then
 * (x - mean) / std in float32. */
float oc_pp_norm_value(const pixel_norm *n, uint8_t u, int c);
/* out (3, h, w) = normalised pixels of img rows y0.., columns x0..; zero bytes outside. */
void oc_pp_write_planar(float *out, const oc_image *img, int64_t x0, int64_t y0, uint32_t w,
                        uint32_t h, const pixel_norm *n);
/* *out = img resized to w x h with PIL's filter. */
oc_status oc_pp_resized(const oc_image *img, uint32_t w, uint32_t h, oc_resample f,
                        oc_image **out);
/* OC_ERR_INVALID_ARG for a NULL or empty image. */
oc_status oc_pp_check_image(const oc_image *img);
#endif
