/* config.json + generation_config.json.
 * Input: a flags byte, then config.json, optionally followed by a NUL byte and
 * generation_config.json. flags bit 0 clear: oc_config_load on the folder; set: the
 * whole oc_model_load with the weights, tokenizer and processor of tests/data/smolvlm-tiny
 * (so that configs disagreeing with the weights are exercised), and when that loads, a
 * two-token answer about a small image. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"
#include "ocellus.h"

static void link_model_files(void) {
    static int done;
    if (done)
        return;
    done = 1;
    const char *files[] = {"model.safetensors", "tokenizer.json", "preprocessor_config.json"};
    for (int i = 0; i < 3; i++) {
        char rel[128];
        strcpy(rel, "smolvlm-tiny/");
        strcat(rel, files[i]);
        if (symlink(fz_data(0, rel), fz_path(1, files[i])) != 0)
            abort();
    }
}

static oc_image *small_image(void) {
    static oc_image *img;
    if (!img) {
        uint8_t px[20 * 12 * 3];
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (uint8_t)(i * 37);
        if (oc_image_from_rgb(px, 20, 12, &img) != OC_OK)
            abort();
    }
    return img;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    int full = data[0] & 1;
    data++;
    size--;
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    fz_write(fz_path(0, "config.json"), data, n1);
    if (nul)
        fz_write(fz_path(0, "generation_config.json"), nul + 1, size - n1 - 1);
    else
        fz_unlink(fz_path(0, "generation_config.json"));
    if (!full) {
        oc_model_config cfg;
        fz_check_error(oc_config_load(fz_dir(), &cfg), "oc_config_load");
        return 0;
    }
    link_model_files();
    oc_model_params mp = oc_model_default_params();
    mp.max_context = 512;
    mp.max_tiles = 4;
    oc_model *m = NULL;
    oc_status s = oc_model_load(fz_dir(), &mp, &m);
    fz_check_error(s, "oc_model_load");
    if (s != OC_OK)
        return 0;
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 2;
    oc_answer ans;
    const oc_image *imgs[1] = {small_image()};
    s = oc_ask(m, imgs, 1, "What?", &gp, &ans);
    fz_check_error(s, "oc_ask");
    if (s == OC_OK)
        oc_answer_free(&ans);
    oc_model_free(m);
    return 0;
}
