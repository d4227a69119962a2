/* Image processors as transformers' PIL processors: SmolVLM/Idefics3 (resize to the
 * longest edge, split into tiles + a global image), CLIP (shortest edge, center crop),
 * Qwen2-VL (smart resize, flattened patches) and Gemma 3 (fixed size, pan and scan). */
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

/* Qwen2VLImageProcessor (preprocess_families.c). */
typedef struct {
    int do_resize;
    uint32_t min_pixels, max_pixels; /* size.shortest_edge / longest_edge, or min_pixels /
                                        max_pixels (which win, as in transformers) */
    uint32_t patch, merge, temporal; /* patch_size, merge_size, temporal_patch_size */
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    float mean[3], std[3];
    oc_resample resample;
} oc_qwen_proc;

oc_status oc_qwen_proc_from_json(const cJSON *j, const char *file, oc_qwen_proc *out);

/* transformers' smart_resize: height and width multiples of factor, their product within
 * [min_pixels, max_pixels], the aspect ratio kept as closely as possible. Fails for an
 * aspect ratio over 200, as transformers does. */
oc_status oc_qwen_smart_resize(uint32_t height, uint32_t width, uint32_t factor,
                               uint32_t min_pixels, uint32_t max_pixels, uint32_t *out_h,
                               uint32_t *out_w);

/* pixels (grid_h * grid_w, 3 * temporal * patch * patch): the image resized, normalised and
 * cut into patches in the processor's order (merge x merge groups of patches, each patch
 * the frame repeated temporal times, channel-major). Fails with OC_ERR_LIMIT over
 * max_patches patches. Caller frees *pixels with oc_free. */
oc_status oc_qwen_preprocess(const oc_qwen_proc *p, const oc_image *img, uint64_t max_patches,
                             float **pixels, uint32_t *grid_h, uint32_t *grid_w);

/* Gemma3ImageProcessor. */
typedef struct {
    int do_resize;
    uint32_t height, width;          /* size */
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    float mean[3], std[3];
    oc_resample resample;
    int do_pan_and_scan;             /* crops of a wide or tall image, each its own tile */
    uint32_t pas_min_crop;           /* pan_and_scan_min_crop_size (256) */
    uint32_t pas_max_crops;          /* pan_and_scan_max_num_crops (4) */
    double pas_min_ratio;            /* pan_and_scan_min_ratio_to_activate (1.2) */
} oc_gemma_proc;

oc_status oc_gemma_proc_from_json(const cJSON *j, const char *file, oc_gemma_proc *out);

/* pixels (n_tiles, 3, height, width): the whole image, then its rows x cols pan-and-scan
 * crops row by row (n_tiles = 1 + rows * cols; 0 x 0 without pan and scan). Fails with
 * OC_ERR_LIMIT over max_tiles. Caller frees *pixels with oc_free. */
oc_status oc_gemma_preprocess(const oc_gemma_proc *p, const oc_image *img, uint32_t max_tiles,
                              float **pixels, uint32_t *n_tiles, uint32_t *rows,
                              uint32_t *cols);
#endif
