/* Golden tests against transformers on the tiny SmolVLM reference model
 * (tests/data/smolvlm-tiny, see tests/data/REFERENCE-README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "model.h"
#include "session.h"
#include "testutil.h"

static oc_model *model;
static cJSON *ref;

static int setup(void **state) {
    (void)state;
    if (oc_model_load(td("smolvlm-tiny"), NULL, &model) != OC_OK) {
        fprintf(stderr, "load: %s\n", oc_last_error());
        return -1;
    }
    return oc_json_load(td("smolvlm-tiny/reference.json"), 1 << 20, &ref) == OC_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    oc_model_free(model);
    cJSON_Delete(ref);
    return 0;
}

static const cJSON *ref_case(int i) {
    return cJSON_GetArrayItem(oc_json_get(ref, "cases"), i);
}

static const char *case_str(const cJSON *c, const char *key) {
    const cJSON *v = oc_json_get(c, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static int case_int(const cJSON *c, const char *key) {
    const cJSON *v = oc_json_get(c, key);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static char *case_file(const cJSON *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "smolvlm-tiny/%s", case_str(c, "tensors"));
    return strdup(td(rel));
}

static oc_image *case_image(const cJSON *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", case_str(c, "image"));
    oc_image *img = NULL;
    if (oc_image_load(td(rel), NULL, &img) != OC_OK)
        fail_msg("%s", oc_last_error());
    return img;
}

/* Preprocessing within 2/255 of PIL's pixel values (0.0157 after normalisation). */
static void test_preprocessing(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = case_image(c);
        float *px;
        uint32_t tiles, rows, cols;
        assert_int_equal(oc_model_preprocess(model, img, &px, &tiles, &rows, &cols), OC_OK);
        assert_int_equal(rows, case_int(c, "rows"));
        assert_int_equal(cols, case_int(c, "cols"));
        assert_int_equal(tiles, case_int(c, "n_tiles"));
        char *f = case_file(c);
        size_t n;
        float *want = load_f32(f, "pixel_values.SmolVLMImageProcessorPil", &n);
        assert_int_equal(n, (size_t)tiles * 3 * 64 * 64);
        double d = max_abs_diff(px, want, n);
        printf("case %d: preprocessing max |diff| %.3g\n", i, d);
        assert_true(d <= 2.0 / 255 * 2 + 1e-6);
        free(want);
        free(f);
        oc_free(px);
        oc_image_free(img);
    }
}

/* The prompt's token ids as the SmolVLM processor makes them. */
static void test_input_ids(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_turn turn = {.text = case_str(c, "question"), .n_images = 1};
        oc_tile_layout lay = {(uint32_t)case_int(c, "rows"), (uint32_t)case_int(c, "cols")};
        char *text;
        assert_int_equal(oc_prompt_text(&model->cfg, &turn, 1, &lay, 1, 1, &text), OC_OK);
        assert_string_equal(text, case_str(c, "prompt_text"));
        oc_free(text);
        int32_t *ids;
        size_t n;
        assert_int_equal(
            oc_prompt_encode(&model->cfg, model->tok, &turn, 1, &lay, 1, 1, &ids, NULL, &n),
            OC_OK);
        const cJSON *want = oc_json_get(c, "input_ids");
        assert_int_equal(n, (size_t)cJSON_GetArraySize(want));
        for (size_t k = 0; k < n; k++)
            assert_int_equal(ids[k], cJSON_GetArrayItem(want, (int)k)->valueint);
        oc_free(ids);
    }
}

static void expect_close(const char *dump, const char *ref_file, const char *name,
                         const char *ref_name, double tol) {
    size_t n1, n2;
    float *a = load_f32(dump, name, &n1), *b = load_f32(ref_file, ref_name, &n2);
    assert_int_equal(n1, n2);
    double e = rel_err(a, b, n1);
    printf("  %-26s rel err %.3g\n", name, e);
    if (!(e <= tol))
        fail_msg("%s: relative error %g > %g", name, e, tol);
    free(a);
    free(b);
}

/* With the reference pixel values fed in: vision output, connector output and logits
 * within 1e-4 relative, input ids identical. */
static void test_forward_with_reference_pixels(void **state) {
    (void)state;
    const char *dir = tmpdir("smol-inspect");
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = case_image(c);
        char *f = case_file(c), dump[512];
        snprintf(dump, sizeof dump, "%s/dump%d.safetensors", dir, i);
        oc_inspect_params ip = {f, "pixel_values.SmolVLMImageProcessorPil"};
        if (oc_inspect(model, (const oc_image *const *)&img, 1, case_str(c, "question"), &ip,
                       dump) != OC_OK)
            fail_msg("%s", oc_last_error());
        printf("case %d\n", i);
        expect_close(dump, f, "vision_last_hidden_state", "vision_last_hidden_state", 1e-4);
        expect_close(dump, f, "image_hidden_states", "image_hidden_states", 1e-4);
        expect_close(dump, f, "text_hidden_states_last", "text_hidden_states_last", 1e-4);
        expect_close(dump, f, "logits", "logits", 1e-4);
        size_t n1, n2;
        float *a = load_f32(dump, "input_ids", &n1), *b = load_f32(f, "input_ids", &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1 * sizeof(float));
        free(a);
        free(b);
        free(f);
        oc_image_free(img);
    }
}

/* 12 greedy tokens with the KV cache equal transformers' (computed without one). */
static void test_greedy_generation(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        char *f = case_file(c);
        size_t n;
        float *px = load_f32(f, "pixel_values.SmolVLMImageProcessorPil", &n);
        oc_session *s;
        assert_int_equal(oc_session_new(model, &s), OC_OK);
        oc_tile_layout lay = {(uint32_t)case_int(c, "rows"), (uint32_t)case_int(c, "cols")};
        assert_int_equal(oc_session_add_pixels(s, px, (uint32_t)case_int(c, "n_tiles"), lay),
                         OC_OK);
        oc_gen_params gp = oc_gen_default_params();
        gp.max_tokens = 12;
        gp.ignore_eos = 1;
        oc_answer a;
        if (oc_session_ask(s, NULL, 0, case_str(c, "question"), &gp, &a) != OC_OK)
            fail_msg("%s", oc_last_error());
        const cJSON *want = oc_json_get(c, "greedy_new_tokens");
        assert_int_equal(a.n_tokens, (size_t)cJSON_GetArraySize(want));
        for (size_t k = 0; k < a.n_tokens; k++)
            assert_int_equal(a.tokens[k], cJSON_GetArrayItem(want, (int)k)->valueint);
        assert_string_equal(a.text, case_str(c, "greedy_text"));
        oc_answer_free(&a);
        oc_session_free(s);
        free(px);
        free(f);
    }
}

/* The whole path from the image file: our preprocessing then generation. */
static void test_ask_from_image_file(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = case_image(c);
        oc_gen_params gp = oc_gen_default_params();
        gp.max_tokens = 12;
        oc_answer a;
        if (oc_ask(model, (const oc_image *const *)&img, 1, case_str(c, "question"), &gp, &a) !=
            OC_OK)
            fail_msg("%s", oc_last_error());
        assert_string_equal(a.text, case_str(c, "greedy_text"));
        oc_answer_free(&a);
        oc_image_free(img);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocessing),
        cmocka_unit_test(test_input_ids),
        cmocka_unit_test(test_forward_with_reference_pixels),
        cmocka_unit_test(test_greedy_generation),
        cmocka_unit_test(test_ask_from_image_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
