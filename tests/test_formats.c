/* Weight formats and threads on the tiny reference models (SmolVLM and LLaVA): logits with
 * one thread and with three are the same bits; BF16 and Q8_0 weights (--dtype) give logits
 * within 2e-2 of the stored weights' (||diff|| / ||logits|| over every position) and the
 * same greedy tokens as transformers; converting to F32 changes nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "model.h"
#include "session.h"
#include "testutil.h"

typedef struct {
    const char *dir;        /* under tests/data */
    const char *pixels;     /* the reference pixel values' tensor name */
    int smolvlm;
} family;

static const family FAMILIES[] = {
    {"smolvlm-tiny", "pixel_values.SmolVLMImageProcessorPil", 1},
    {"llava-tiny", "pixel_values", 0},
};

/* ||a - b|| / ||b|| over all the logits */
static double l2_rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static oc_model *load(const family *f, oc_weight_format wf, int threads) {
    oc_model_params p = oc_model_default_params();
    p.weights = wf;
    p.n_threads = threads;
    oc_model *m = NULL;
    if (oc_model_load(td(f->dir), &p, &m) != OC_OK)
        fail_msg("%s: %s", f->dir, oc_last_error());
    return m;
}

static cJSON *reference(const family *f) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/reference.json", f->dir);
    cJSON *j;
    assert_int_equal(oc_json_load(td(rel), 1 << 20, &j), OC_OK);
    return j;
}

static const char *str(const cJSON *c, const char *key) {
    const cJSON *v = oc_json_get(c, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static const char *case_tensors(const family *f, const cJSON *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", f->dir, str(c, "tensors"));
    return td(rel);
}

/* Logits of a case's prompt with the reference pixel values. */
static float *logits(const family *f, const oc_model *m, const cJSON *c, size_t *n) {
    char img_rel[256], dump[256];
    snprintf(img_rel, sizeof img_rel, "images/%s", str(c, "image"));
    oc_image *img;
    assert_int_equal(oc_image_load(td(img_rel), NULL, &img), OC_OK);
    snprintf(dump, sizeof dump, "/tmp/oc-test-formats-%ld.safetensors", (long)getpid());
    oc_inspect_params ip = {case_tensors(f, c), f->pixels};
    if (oc_inspect(m, (const oc_image *const *)&img, 1, str(c, "question"), &ip, dump) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_image_free(img);
    float *out = load_f32(dump, "logits", n);
    unlink(dump);
    return out;
}

/* The reference's greedy tokens, with its pixel values, through the KV cache. */
static void expect_greedy(const family *f, const oc_model *m, const cJSON *c) {
    size_t n;
    float *px = load_f32(case_tensors(f, c), f->pixels, &n);
    const oc_model_config *cfg = &m->cfg;
    uint32_t S = cfg->vision.image_size, tiles = (uint32_t)(n / (3 * (size_t)S * S));
    oc_tile_layout lay = {0, 0};
    if (f->smolvlm)
        lay = (oc_tile_layout){(uint32_t)oc_json_get(c, "rows")->valueint,
                               (uint32_t)oc_json_get(c, "cols")->valueint};
    oc_session *s;
    assert_int_equal(oc_session_new(m, &s), OC_OK);
    assert_int_equal(oc_session_add_pixels(s, px, tiles, lay), OC_OK);
    oc_gen_params gp = oc_gen_default_params();
    const cJSON *want = oc_json_get(c, "greedy_new_tokens");
    gp.max_tokens = (uint32_t)cJSON_GetArraySize(want);
    gp.ignore_eos = 1;
    oc_answer a;
    if (oc_session_ask(s, NULL, 0, str(c, "question"), &gp, &a) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(a.n_tokens, (size_t)cJSON_GetArraySize(want));
    for (size_t k = 0; k < a.n_tokens; k++)
        assert_int_equal(a.tokens[k], cJSON_GetArrayItem(want, (int)k)->valueint);
    oc_answer_free(&a);
    oc_session_free(s);
    free(px);
}

static void check_family(const family *f) {
    oc_model *one = load(f, OC_WEIGHTS_AUTO, 1), *three = load(f, OC_WEIGHTS_AUTO, 3);
    oc_model *f32 = load(f, OC_WEIGHTS_F32, 2), *bf16 = load(f, OC_WEIGHTS_BF16, 2),
             *q8 = load(f, OC_WEIGHTS_Q8_0, 2);
    cJSON *ref = reference(f);
    const cJSON *cases = oc_json_get(ref, "cases");
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        size_t n, n2;
        float *a = logits(f, one, c, &n), *b = logits(f, three, c, &n2);
        assert_int_equal(n, n2);
        assert_memory_equal(a, b, n * sizeof(float)); /* threads never change the bits */
        free(b);
        b = logits(f, f32, c, &n2);
        double e32 = rel_err(b, a, n);
        free(b);
        b = logits(f, bf16, c, &n2);
        double ebf = l2_rel(b, a, n);
        free(b);
        b = logits(f, q8, c, &n2);
        double eq8 = l2_rel(b, a, n);
        free(b);

        printf("%s case %d: logits vs stored dtype: f32 %.2g, bf16 %.4f, q8_0 %.4f\n", f->dir,
               i, e32, ebf, eq8);
        assert_true(e32 < 1e-5);
        assert_true(ebf < 2e-2);
        assert_true(eq8 < 2e-2);
        free(a);
        expect_greedy(f, bf16, c);
        expect_greedy(f, q8, c);
    }
    cJSON_Delete(ref);
    oc_model_free(one);
    oc_model_free(three);
    oc_model_free(f32);
    oc_model_free(bf16);
    oc_model_free(q8);
}

static void test_smolvlm(void **state) {
    (void)state;
    check_family(&FAMILIES[0]);
}

static void test_llava(void **state) {
    (void)state;
    check_family(&FAMILIES[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smolvlm),
        cmocka_unit_test(test_llava),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
