/* Image processors as transformers' PIL processors: SmolVLM/Idefics3 (resize to the
 * longest edge, split into tiles + a global image) and CLIP (shortest edge, center crop). */
#ifndef OC_PREPROCESS_H
#define OC_PREPROCESS_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "image.h"
#include "resample.h"

typedef struct {
    int do_resize;
    uint32_t longest_edge;   /* size.longest_edge */
    uint32_t tile;           /* max_image_size.longest_edge: the vision encoder's input */
    int do_split;            /* do_image_splitting */
    int do_rescale;
    double rescale_factor;   /* double: transformers multiplies in float64 */
    int do_normalize;
    float mean[3], std[3];
    oc_resample resample;
} oc_idefics3_proc;

/* Reads preprocessor_config.json (j); missing keys take the SmolVLM defaults. */
oc_status oc_idefics3_proc_from_json(const cJSON *j, const char *file, oc_idefics3_proc *out);

/* pixels (n_tiles, 3, tile, tile): the rows x cols tiles in row-major order, then the
 * global image; rows = cols = 0 when the image is not split (one tile). Fails with
 * OC_ERR_LIMIT if more than max_tiles would be made. Caller frees *pixels with oc_free. */
oc_status oc_idefics3_preprocess(const oc_idefics3_proc *p, const oc_image *img,
                                 uint32_t max_tiles, float **pixels, uint32_t *n_tiles,
                                 uint32_t *rows, uint32_t *cols);

typedef struct {
    int do_resize;
    uint32_t shortest_edge;  /* size.shortest_edge */
    int do_center_crop;
    uint32_t crop_h, crop_w;
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    float mean[3], std[3];
    oc_resample resample;
} oc_clip_proc;

oc_status oc_clip_proc_from_json(const cJSON *j, const char *file, oc_clip_proc *out);
/* pixels (3, crop_h, crop_w). Caller frees with oc_free. */
oc_status oc_clip_preprocess(const oc_clip_proc *p, const oc_image *img, float **pixels);
#endif
