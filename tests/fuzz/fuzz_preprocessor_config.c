/* preprocessor_config.json for both processors (Idefics3/SmolVLM and CLIP), then
 * preprocessing of a few small images with the settings read, when their sizes are
 * moderate (a hostile model can ask for a 16384-pixel tile; that is a large allocation
 * that fails cleanly, not something to do thousands of times a second).
 * Input: the JSON text. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "json.h"
#include "ocellus.h"
#include "preprocess.h"

static oc_image *images[4];

static void make_images(void) {
    static const uint32_t sizes[4][2] = {{17, 9}, {1, 40}, {40, 1}, {3, 3}};
    for (int k = 0; k < 4; k++) {
        if (images[k])
            continue;
        size_t n = (size_t)sizes[k][0] * sizes[k][1] * 3;
        uint8_t *px = malloc(n);
        for (size_t i = 0; i < n; i++)
            px[i] = (uint8_t)(i * 29 + k);
        if (oc_image_from_rgb(px, sizes[k][0], sizes[k][1], &images[k]) != OC_OK)
            abort();
        free(px);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_images();
    cJSON *j = NULL;
    oc_status s = oc_json_parse((const char *)data, size, "preprocessor_config.json", &j);
    fz_check_error(s, "oc_json_parse");
    if (s != OC_OK)
        return 0;
    const cJSON *ip = oc_json_get(j, "image_processor");
    const cJSON *src = cJSON_IsObject(ip) ? ip : j;
    oc_idefics3_proc sp;
    s = oc_idefics3_proc_from_json(src, "preprocessor_config.json", &sp);
    fz_check_error(s, "oc_idefics3_proc_from_json");
    if (s == OC_OK && sp.tile <= 256 && sp.longest_edge <= 1024) {
        for (int k = 0; k < 4; k++) {
            float *px = NULL;
            uint32_t n, rows, cols;
            s = oc_idefics3_preprocess(&sp, images[k], 8, &px, &n, &rows, &cols);
            fz_check_error(s, "oc_idefics3_preprocess");
            if (s == OC_OK) {
                if (n < 1 || n > 8 || (rows ? rows * cols + 1 : 1) != n)
                    abort();
                oc_free(px);
            }
        }
    }
    oc_clip_proc cp;
    s = oc_clip_proc_from_json(src, "preprocessor_config.json", &cp);
    fz_check_error(s, "oc_clip_proc_from_json");
    if (s == OC_OK && cp.crop_h <= 256 && cp.crop_w <= 256 && cp.shortest_edge <= 256) {
        for (int k = 0; k < 4; k++) {
            float *px = NULL;
            s = oc_clip_preprocess(&cp, images[k], &px);
            fz_check_error(s, "oc_clip_preprocess");
            if (s == OC_OK)
                oc_free(px);
        }
    }
    cJSON_Delete(j);
    return 0;
}
