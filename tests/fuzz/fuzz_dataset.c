/* Fine-tuning JSONL (data/dataset*.c): LLaVA "conversations", "messages" and
 * pre-tokenized lines, opened against tests/data/smolvlm-tiny (config, tokenizer,
 * processor), then checked (every example encoded) and a batch drawn.
 * Input: the JSONL text. The scratch folder holds a.png (20 x 12), b.png (8 x 8) and
 * pv.safetensors (tensor "pv", F32 [1, 3, 64, 64]) for lines to refer to. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"
#include "png_write.h"
#include "safetensors.h"

static void make_files(void) {
    static int done;
    if (done)
        return;
    done = 1;
    static const uint32_t sizes[2][2] = {{20, 12}, {8, 8}};
    const char *names[2] = {"a.png", "b.png"};
    for (int k = 0; k < 2; k++) {
        size_t n = (size_t)sizes[k][0] * sizes[k][1] * 3;
        uint8_t *rgb = malloc(n), *png = NULL;
        for (size_t i = 0; i < n; i++)
            rgb[i] = (uint8_t)(i * 31 + k);
        size_t pn;
        if (oc_png_encode(rgb, sizes[k][0], sizes[k][1], &png, &pn) != OC_OK)
            abort();
        fz_write(fz_path(0, names[k]), png, pn);
        oc_free(png);
        free(rgb);
    }
    static float pv[3 * 64 * 64];
    for (size_t i = 0; i < sizeof pv / sizeof pv[0]; i++)
        pv[i] = (float)(i % 255) / 127.5f - 1.0f;
    oc_st_writer *w;
    if (oc_st_writer_new(&w) != OC_OK)
        abort();
    oc_st_writer_add(w, "pv", OC_DT_F32, 4, (int64_t[]){1, 3, 64, 64}, pv);
    if (oc_st_writer_save(w, fz_path(0, "pv.safetensors")) != OC_OK)
        abort();
    oc_st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_files();
    const char *path = fz_path(0, "data.jsonl");
    fz_write(path, data, size);
    oc_dataset_params p = oc_dataset_default_params();
    p.max_tokens = 512;
    p.max_images = 4;
    p.max_tiles = 16;
    p.image_limits.max_pixels = 1 << 16;
    p.image_limits.max_side = 1024;
    oc_dataset *ds = NULL;
    oc_status s = oc_dataset_open(path, fz_data(0, "smolvlm-tiny"), &p, &ds);
    fz_check_error(s, "oc_dataset_open");
    if (s != OC_OK)
        return 0;
    oc_dataset_stats st;
    s = oc_dataset_check(ds, &st);
    fz_check_error(s, "oc_dataset_check");
    size_t n = oc_dataset_size(ds);
    if (n > 0) {
        oc_train_example ex[2];
        s = oc_dataset_get(ds, n - 1, &ex[0]);
        fz_check_error(s, "oc_dataset_get");
        s = oc_dataset_next_batch(ex, 2, ds);
        fz_check_error(s, "oc_dataset_next_batch");
        if (s == OC_OK)
            for (int i = 0; i < 2; i++)
                for (size_t t = 0; t < ex[i].n_tokens; t++)
                    if (ex[i].labels[t] != -100 && ex[i].labels[t] < 0)
                        abort();
    }
    oc_dataset_free(ds);
    return 0;
}
