/* A model folder in the spellings published checkpoints use gives the same numbers:
 * model_type idefics3 with rope_theta at the top of text_config (SmolVLM-256M/500M/2B),
 * sharded weights with an index, an untied lm_head, processor_config.json, BF16 weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "file.h"
#include "json.h"
#include "safetensors.h"
#include "testutil.h"

static void copy_file(const char *from, const char *to) {
    char *data;
    size_t n;
    assert_int_equal(oc_read_file(from, 1u << 30, &data, &n), OC_OK);
    write_bytes(to, data, n);
    oc_free(data);
}

/* A copy of smolvlm-tiny's files except the weights and config.json. */
static const char *base_folder(const char *tag) {
    const char *dir = tmpdir(tag);
    const char *files[] = {"tokenizer.json", "preprocessor_config.json",
                           "generation_config.json"};
    char src[512], dst[512];
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/%s", td("smolvlm-tiny"), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        copy_file(src, dst);
    }
    return dir;
}

static cJSON *ref_config(void) {
    cJSON *j;
    assert_int_equal(oc_json_load(td("smolvlm-tiny/config.json"), 1 << 20, &j), OC_OK);
    return j;
}

static void write_json(const char *dir, const char *name, cJSON *j) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    write_text(path, text);
    cJSON_free(text);
    cJSON_Delete(j);
}

/* Logits of one image and prompt for the model in dir, through oc_inspect (ip: optional
 * reference pixel values). */
static float *inspect_logits(const char *dir, const char *image, const char *prompt,
                             const oc_inspect_params *ip, size_t *n) {
    oc_model *m = NULL;
    if (oc_model_load(dir, NULL, &m) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_image *img;
    assert_int_equal(oc_image_load(td(image), NULL, &img), OC_OK);
    /* the dump goes to /tmp, never next to the (source-tree) reference folder */
    char dump[512];
    const char *base = strrchr(dir, '/');
    snprintf(dump, sizeof dump, "/tmp/oc-test-dump-%ld-%s.safetensors", (long)getpid(),
             base ? base + 1 : dir);
    if (oc_inspect(m, (const oc_image *const *)&img, 1, prompt, ip, dump) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_image_free(img);
    oc_model_free(m);
    float *out = load_f32(dump, "logits", n);
    unlink(dump);
    return out;
}

/* Logits of case 0's prompt with the reference pixel values, for the model in dir. */
static float *logits_of(const char *dir, size_t *n) {
    oc_inspect_params ip = {td("smolvlm-tiny/case0.safetensors"),
                            "pixel_values.SmolVLMImageProcessorPil"};
    return inspect_logits(dir, "images/shapes_200x130.png", "Describe this image.", &ip, n);
}

/* Writes tensors of the reference model (optionally renamed/converted) as shards. */
static void write_weights(const char *dir, int n_shards, oc_dtype dtype, int add_lm_head) {
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("smolvlm-tiny/model.safetensors"), &f), OC_OK);
    size_t n = oc_st_count(f);
    float **bufs = calloc(n + 1, sizeof *bufs);
    cJSON *idx = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(idx, "weight_map");
    for (int s = 0; s < n_shards; s++) {
        oc_st_writer *w;
        oc_st_writer_new(&w);
        char name[64], path[512];
        if (n_shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        for (size_t i = 0; i < n; i++) {
            if ((int)(i % (size_t)n_shards) != s)
                continue;
            const oc_st_tensor *t = oc_st_at(f, i);
            bufs[i] = malloc(t->numel * 4);
            assert_int_equal(oc_st_to_f32(t, bufs[i], t->numel), OC_OK);
            assert_int_equal(oc_st_writer_add_f32_as(w, t->name, dtype, t->ndim, t->shape,
                                                     bufs[i]), OC_OK);
            cJSON_AddStringToObject(wm, t->name, name);
            if (add_lm_head && !strcmp(t->name, "model.text_model.embed_tokens.weight")) {
                oc_st_writer_add_f32_as(w, "lm_head.weight", dtype, t->ndim, t->shape, bufs[i]);
                cJSON_AddStringToObject(wm, "lm_head.weight", name);
            }
        }
        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert_int_equal(oc_st_writer_save(w, path), OC_OK);
        oc_st_writer_free(w);
    }
    if (n_shards > 1)
        write_json(dir, "model.safetensors.index.json", idx);
    else
        cJSON_Delete(idx);
    for (size_t i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    oc_st_close(f);
}

static float *reference_logits(size_t *n) {
    return logits_of(td("smolvlm-tiny"), n);
}

static void test_idefics3_config_and_shards(void **state) {
    (void)state;
    size_t n0, n1;
    float *want = reference_logits(&n0);
    const char *dir = base_folder("variant-idefics3");
    cJSON *c = ref_config();
    cJSON_ReplaceItemInObject(c, "model_type", cJSON_CreateString("idefics3"));
    cJSON *text = cJSON_GetObjectItem(c, "text_config");
    cJSON_DeleteItemFromObject(text, "rope_parameters");
    cJSON_AddNumberToObject(text, "rope_theta", 100000.0);
    write_json(dir, "config.json", c);
    write_weights(dir, 3, OC_DT_F32, 0);
    float *got = logits_of(dir, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(got, want, n0 * sizeof(float));
    free(got);
    free(want);
}

static void test_untied_head_and_processor_config(void **state) {
    (void)state;
    size_t n0, n1;
    float *want = reference_logits(&n0);
    const char *dir = base_folder("variant-untied");
    cJSON *c = ref_config();
    cJSON_ReplaceItemInObject(c, "tie_word_embeddings", cJSON_CreateFalse());
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "text_config"), "tie_word_embeddings",
                              cJSON_CreateFalse());
    write_json(dir, "config.json", c);
    /* processor_config.json with the settings under "image_processor" */
    cJSON *p;
    assert_int_equal(oc_json_load(td("smolvlm-tiny/preprocessor_config.json"), 1 << 20, &p),
                     OC_OK);
    cJSON *pc = cJSON_CreateObject();
    cJSON_AddItemToObject(pc, "image_processor", p);
    write_json(dir, "processor_config.json", pc);
    char path[512];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    remove(path);
    /* untied without lm_head.weight: an error naming it */
    write_weights(dir, 1, OC_DT_F32, 0);
    oc_model *m = NULL;
    assert_int_equal(oc_model_load(dir, NULL, &m), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "lm_head.weight"));
    write_weights(dir, 1, OC_DT_F32, 1);
    float *got = logits_of(dir, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(got, want, n0 * sizeof(float));
    free(got);
    free(want);
}

/* BF16 and F16 copies of the weights: computed in F32 from the rounded weights, so the
 * logits move by about the rounding (bf16 has 8 bits of mantissa). */
static void test_half_precision_weights(void **state) {
    (void)state;
    size_t n0, n1;
    float *want = reference_logits(&n0);
    oc_dtype dts[] = {OC_DT_BF16, OC_DT_F16};
    double tol[] = {0.05, 0.01};
    for (int k = 0; k < 2; k++) {
        const char *dir = base_folder(k ? "variant-f16" : "variant-bf16");
        write_json(dir, "config.json", ref_config());
        write_weights(dir, 2, dts[k], 0);
        float *got = logits_of(dir, &n1);
        assert_int_equal(n0, n1);
        double e = rel_err(got, want, n0);
        printf("%s weights: logits rel err %.3g\n", oc_dtype_name(dts[k]), e);
        assert_true(e > 0 && e < tol[k]);
        free(got);
    }
    free(want);
}


/* LLaVA: the tensor names of published llava-hf checkpoints (vision_tower.vision_model.*)
 * and of the newer layout (model.vision_tower.*, model.language_model.*, lm_head.weight)
 * give the same logits as transformers 5's names in the reference folder. */
static const char *llava_rename(const char *name, int layout, char *buf, size_t n) {
    const char *rest;
    if (!strncmp(name, "vision_tower.", 13)) {
        rest = name + 13;
        snprintf(buf, n, layout == 0 ? "vision_tower.vision_model.%s"
                                     : "model.vision_tower.vision_model.%s", rest);
    } else if (!strncmp(name, "language_model.model.", 21)) {
        rest = name + 21;
        snprintf(buf, n, layout == 0 ? "language_model.model.%s" : "model.language_model.%s",
                 rest);
    } else if (!strcmp(name, "language_model.lm_head.weight")) {
        snprintf(buf, n, layout == 0 ? "language_model.lm_head.weight" : "lm_head.weight");
    } else {
        snprintf(buf, n, layout == 0 ? "%s" : "model.%s", name);
    }
    return buf;
}

static float *llava_logits(const char *dir, size_t *n) {
    return inspect_logits(dir, "images/chelsea_451x300.png", "What is shown in this image?",
                          NULL, n);
}

static void test_llava_tensor_name_spellings(void **state) {
    (void)state;
    size_t n0, n1;
    float *want = llava_logits(td("llava-tiny"), &n0);
    for (int layout = 0; layout < 2; layout++) {
        const char *dir = tmpdir(layout ? "variant-llava-new" : "variant-llava-hf");
        const char *files[] = {"config.json", "tokenizer.json", "preprocessor_config.json",
                               "generation_config.json"};
        char src[512], dst[512];
        for (int i = 0; i < 4; i++) {
            snprintf(src, sizeof src, "%s/%s", td("llava-tiny"), files[i]);
            snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
            copy_file(src, dst);
        }
        oc_st_file *f;
        assert_int_equal(oc_st_open(td("llava-tiny/model.safetensors"), &f), OC_OK);
        oc_st_writer *w;
        oc_st_writer_new(&w);
        for (size_t i = 0; i < oc_st_count(f); i++) {
            const oc_st_tensor *t = oc_st_at(f, i);
            char name[256];
            assert_int_equal(oc_st_writer_add(w, llava_rename(t->name, layout, name, sizeof name),
                                              t->dtype, t->ndim, t->shape, t->data), OC_OK);
        }
        snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
        assert_int_equal(oc_st_writer_save(w, dst), OC_OK);
        oc_st_writer_free(w);
        oc_st_close(f);
        float *got = llava_logits(dir, &n1);
        assert_int_equal(n0, n1);
        assert_memory_equal(got, want, n0 * sizeof(float));
        free(got);
    }
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idefics3_config_and_shards),
        cmocka_unit_test(test_untied_head_and_processor_config),
        cmocka_unit_test(test_half_precision_weights),
        cmocka_unit_test(test_llava_tensor_name_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
