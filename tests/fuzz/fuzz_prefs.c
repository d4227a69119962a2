/* Preference JSONL (data/prefs.c): TRL's prompt/chosen/rejected as strings or messages,
 * the implicit prompt, images, opened against tests/data/smolvlm-tiny, then every pair
 * encoded and a batch drawn. Input: the JSONL text. The scratch folder holds a.png
 * (20 x 12) for lines to refer to. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"
#include "png_write.h"

static void make_files(void) {
    static int done;
    if (done)
        return;
    done = 1;
    size_t n = 20 * 12 * 3;
    uint8_t *rgb = malloc(n), *png = NULL;
    for (size_t i = 0; i < n; i++)
        rgb[i] = (uint8_t)(i * 29);
    size_t pn;
    if (oc_png_encode(rgb, 20, 12, &png, &pn) != OC_OK)
        abort();
    fz_write(fz_path(0, "a.png"), png, pn);
    oc_free(png);
    free(rgb);
}

/* Labels on one run only (the reply), never on the prompt's first token. */
static void check_labels(const oc_train_example *x) {
    size_t t = 0, runs = 0;
    while (t < x->n_tokens) {
        while (t < x->n_tokens && x->labels[t] == -100)
            t++;
        if (t < x->n_tokens)
            runs++;
        while (t < x->n_tokens && x->labels[t] != -100)
            t++;
    }
    if (runs > 1 || (x->n_tokens && x->labels[0] != -100))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_files();
    const char *path = fz_path(0, "prefs.jsonl");
    fz_write(path, data, size);
    oc_dataset_params p = oc_dataset_default_params();
    p.max_tokens = 512;
    p.max_images = 4;
    p.max_tiles = 16;
    p.image_limits.max_pixels = 1 << 16;
    p.image_limits.max_side = 1024;
    oc_pref_dataset *ds = NULL;
    oc_status s = oc_pref_dataset_open(path, fz_data(0, "smolvlm-tiny"), &p, &ds);
    fz_check_error(s, "oc_pref_dataset_open");
    if (s != OC_OK)
        return 0;
    size_t n = oc_pref_dataset_size(ds);
    for (size_t i = 0; i < n; i++) {
        oc_pref_example e;
        s = oc_pref_dataset_get(ds, i, &e);
        fz_check_error(s, "oc_pref_dataset_get");
        if (s == OC_OK) {
            check_labels(&e.chosen);
            check_labels(&e.rejected);
        }
    }
    oc_pref_example two[2];
    s = oc_pref_dataset_next_batch(two, 2, ds);
    fz_check_error(s, "oc_pref_dataset_next_batch");
    oc_pref_dataset_free(ds);
    return 0;
}
