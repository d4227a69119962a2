/* safetensors reader: header length, JSON header, dtypes, shapes, offsets; and the shard
 * index of a model folder.
 * Input: first byte even -> the rest is one .safetensors file, opened, every tensor
 * looked up, shape-checked and converted to floats when it is a float type;
 * first byte odd -> the rest is model.safetensors.index.json, next to two valid shards
 * (a.safetensors, b.safetensors) and opened with oc_st_set_open. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "safetensors.h"

static void exercise(const oc_st_tensor *t) {
    if (!t || !t->name || t->ndim < 0 || t->ndim > OC_MAX_DIMS)
        abort();
    oc_st_check_shape(t, t->ndim, t->shape);
    if (t->dtype == OC_DT_F32 || t->dtype == OC_DT_F16 || t->dtype == OC_DT_BF16 ||
        t->dtype == OC_DT_F64) {
        if (t->numel > (1u << 20))
            return;
        float *x = malloc(t->numel * sizeof(float) + 1);
        if (oc_st_to_f32(t, x, t->numel) != OC_OK)
            abort();
        volatile float sink = 0;
        for (size_t i = 0; i < t->numel; i++)
            sink += x[i];
        (void)sink;
        free(x);
    } else {
        /* every byte of the tensor must be inside the mapping */
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < t->nbytes; i++)
            sink ^= ((const unsigned char *)t->data)[i];
        (void)sink;
    }
}

static void write_shards(void) {
    static int done;
    if (done)
        return;
    done = 1;
    static const float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {7, 8};
    oc_st_writer *w;
    if (oc_st_writer_new(&w) != OC_OK)
        abort();
    oc_st_writer_add(w, "x.weight", OC_DT_F32, 2, (int64_t[]){2, 3}, a);
    oc_st_writer_add(w, "x.bias", OC_DT_F32, 1, (int64_t[]){2}, b);
    if (oc_st_writer_save(w, fz_path(0, "a.safetensors")) != OC_OK)
        abort();
    oc_st_writer_free(w);
    if (oc_st_writer_new(&w) != OC_OK)
        abort();
    oc_st_writer_add(w, "y", OC_DT_BF16, 1, (int64_t[]){1}, b);
    if (oc_st_writer_save(w, fz_path(0, "b.safetensors")) != OC_OK)
        abort();
    oc_st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    int mode = data[0] & 1;
    data++;
    size--;
    if (mode == 0) {
        const char *path = fz_path(0, "t.safetensors");
        fz_write(path, data, size);
        oc_st_file *f = NULL;
        oc_status s = oc_st_open(path, &f);
        fz_check_error(s, "oc_st_open");
        if (s == OC_OK) {
            for (size_t i = 0; i < oc_st_count(f); i++) {
                const oc_st_tensor *t = oc_st_at(f, i);
                exercise(t);
                if (oc_st_find(f, t->name) != t)
                    abort();
            }
            oc_st_find(f, "");
            oc_st_close(f);
        }
        return 0;
    }
    write_shards();
    fz_write(fz_path(0, "model.safetensors.index.json"), data, size);
    oc_st_set *set = NULL;
    oc_status s = oc_st_set_open(fz_dir(), &set);
    fz_check_error(s, "oc_st_set_open");
    if (s == OC_OK) {
        for (size_t i = 0; i < oc_st_set_count(set); i++) {
            const oc_st_tensor *t = oc_st_set_at(set, i);
            exercise(t);
            if (oc_st_set_find(set, t->name) != t)
                abort();
        }
        oc_st_set_close(set);
    }
    return 0;
}
