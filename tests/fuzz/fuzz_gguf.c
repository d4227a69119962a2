/* GGUF reader, the tokenizer built from tokenizer.ggml.*, and the model pair.
 * Input: a flag byte, then a GGUF file.
 *  flag % 3 == 0: oc_gguf_open_memory; every key read (each array element), every
 *                 tensor's bytes touched and small ones converted to floats; then the
 *                 tokenizer from its metadata, which encodes and decodes a text;
 *  flag % 3 == 1: the file as the text model beside smolvlm-tiny's real F32 mmproj, and
 *  flag % 3 == 2: as the mmproj beside smolvlm-tiny's real Q4_0 text model, through
 *                 oc_model_load (then a 2-token answer about a small image). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "gguf.h"
#include "tokenizer.h"

static void read_values(const oc_gguf *g) {
    volatile double sink = 0;
    for (size_t i = 0; i < oc_gguf_kv_count(g); i++) {
        const oc_gguf_kv *kv = oc_gguf_kv_at(g, i);
        if (!kv || !kv->key || oc_gguf_find_kv(g, kv->key) != kv)
            abort();
        if (kv->type != OC_GGUF_ARRAY)
            continue;
        for (uint64_t k = 0; k < kv->n; k++) {
            if (kv->elem_type == OC_GGUF_STRING) {
                size_t len;
                const char *s = oc_gguf_arr_str(kv, k, &len);
                for (size_t b = 0; b < len; b++)
                    sink += s[b];
            } else if (kv->elem_type == OC_GGUF_F32 || kv->elem_type == OC_GGUF_F64) {
                sink += oc_gguf_arr_float(kv, k);
            } else if (kv->elem_type != OC_GGUF_BOOL) {
                sink += (double)oc_gguf_arr_int(kv, k);
            }
        }
    }
    for (size_t i = 0; i < oc_gguf_tensor_count(g); i++) {
        const oc_gguf_tensor *t = oc_gguf_tensor_at(g, i);
        if (oc_gguf_find_tensor(g, t->name) != t)
            abort();
        const unsigned char *p = t->data;
        for (size_t b = 0; b < t->nbytes; b++)
            sink += p[b];
        if (t->numel <= (1u << 16) && oc_ggml_can_dequantize(t->type)) {
            float *x = malloc(t->numel * sizeof(float) + 1);
            if (oc_ggml_dequantize(t->type, t->data, x, t->numel) != OC_OK)
                abort();
            free(x);
        }
    }
    (void)sink;
}

static void tokenizer(const oc_gguf *g) {
    oc_tokenizer *tok = NULL;
    oc_status s = oc_tokenizer_load_gguf(g, &tok);
    fz_check_error(s, "oc_tokenizer_load_gguf");
    if (s != OC_OK)
        return;
    static const char text[] = "Hello world! 123 <image> \xc3\xa9t\xc3\xa9\n";
    int32_t *ids;
    size_t n;
    if (oc_tokenize(tok, text, sizeof text - 1, 1, &ids, &n) == OC_OK) {
        char *back;
        if (oc_detokenize(tok, ids, n, 1, &back) == OC_OK)
            oc_free(back);
        oc_free(ids);
    }
    oc_tokenizer_free(tok);
}

static void model(const char *text, const char *mmproj) {
    oc_model_params p = oc_model_default_params();
    p.mmproj = mmproj;
    p.n_threads = 1;
    p.max_context = 512;
    oc_model *m = NULL;
    oc_status s = oc_model_load(text, &p, &m);
    fz_check_error(s, "oc_model_load");
    if (s != OC_OK)
        return;
    uint8_t px[8 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 37);
    oc_image *img = NULL;
    if (oc_image_from_rgb(px, 8, 5, &img) == OC_OK) {
        oc_gen_params gp = oc_gen_default_params();
        gp.max_tokens = 2;
        oc_answer a;
        if (oc_ask(m, (const oc_image *const *)&img, 1, "What?", &gp, &a) == OC_OK)
            oc_answer_free(&a);
        oc_image_free(img);
    }
    oc_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        oc_gguf *g = NULL;
        oc_status s = oc_gguf_open_memory(data, size, "fuzz.gguf", &g);
        fz_check_error(s, "oc_gguf_open_memory");
        if (s == OC_OK) {
            read_values(g);
            tokenizer(g);
            oc_gguf_close(g);
        }
        return 0;
    }
    const char *path = fz_path(0, "fuzz.gguf");
    fz_write(path, data, size);
    if (mode == 1)
        model(path, fz_data(1, "gguf/smolvlm-tiny/mmproj-smolvlm-tiny-F32.gguf"));
    else
        model(fz_data(1, "gguf/smolvlm-tiny/smolvlm-tiny-Q4_0.gguf"), path);
    return 0;
}
