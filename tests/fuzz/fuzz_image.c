/* Image decoding (stb_image for JPEG, PNG, BMP, GIF, TGA; PNM here) with small limits,
 * then both image processors (SmolVLM tiles, CLIP crop) on what decodes.
 * Input: the file's bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"
#include "preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    oc_image_limits lim = oc_image_default_limits();
    lim.max_pixels = 1 << 20;
    lim.max_side = 4096;
    lim.max_file_bytes = 1 << 20;
    oc_image *img = NULL;
    oc_status s = oc_image_load_memory(data, size, "fuzz.img", &lim, &img);
    fz_check_error(s, "oc_image_load_memory");
    if (s != OC_OK)
        return 0;
    uint32_t w = oc_image_width(img), h = oc_image_height(img);
    if (w == 0 || h == 0 || w > lim.max_side || h > lim.max_side ||
        (uint64_t)w * h > lim.max_pixels)
        abort();
    const uint8_t *px = oc_image_rgb(img);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i += 61)
        sink ^= px[i];
    sink ^= px[(size_t)w * h * 3 - 1];
    (void)sink;

    /* Both processors, small (the sizes and tiling logic are what matter here; full-size
     * Lanczos on every input would make the target too slow to explore decoders), with
     * the filter picked by the input's size. */
    oc_resample f = (oc_resample)(size % 6);
    oc_idefics3_proc sp = {
        .do_resize = 1, .longest_edge = 96, .tile = 32, .do_split = 1, .do_rescale = 1,
        .rescale_factor = 1.0 / 255.0, .do_normalize = 1, .mean = {0.5f, 0.5f, 0.5f},
        .std = {0.5f, 0.5f, 0.5f}, .resample = f};
    float *pv = NULL;
    uint32_t n, rows, cols;
    s = oc_idefics3_preprocess(&sp, img, 10, &pv, &n, &rows, &cols);
    fz_check_error(s, "oc_idefics3_preprocess");
    if (s == OC_OK)
        oc_free(pv);
    oc_clip_proc cp = {
        .do_resize = 1, .shortest_edge = 24, .do_center_crop = 1, .crop_h = 24, .crop_w = 20,
        .do_rescale = 1, .rescale_factor = 1.0 / 255.0, .do_normalize = 1,
        .mean = {0.48145466f, 0.4578275f, 0.40821073f},
        .std = {0.26862954f, 0.26130258f, 0.27577711f}, .resample = f};
    s = oc_clip_preprocess(&cp, img, &pv);
    fz_check_error(s, "oc_clip_preprocess");
    if (s == OC_OK)
        oc_free(pv);
    oc_image_free(img);
    return 0;
}
