/* Golden tests against transformers on the tiny LLaVA-1.5 reference model
 * (tests/data/llava-tiny: CLIP tower, MLP projector, Llama-2 tokenizer, BF16 weights). */
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
    if (oc_model_load(td("llava-tiny"), NULL, &model) != OC_OK) {
        fprintf(stderr, "load: %s\n", oc_last_error());
        return -1;
    }
    return oc_json_load(td("llava-tiny/reference.json"), 1 << 20, &ref) == OC_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    oc_model_free(model);
    cJSON_Delete(ref);
    return 0;
}

static const cJSON *ref_case(int i) { return cJSON_GetArrayItem(oc_json_get(ref, "cases"), i); }

static const char *case_str(const cJSON *c, const char *key) {
    const cJSON *v = oc_json_get(c, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static char *case_file(const cJSON *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "llava-tiny/%s", case_str(c, "tensors"));
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

/* CLIP preprocessing within 0.02 of PIL's (one 8-bit level is about 0.015). */
static void test_preprocessing(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = case_image(c);
        float *px;
        uint32_t tiles, rows, cols;
        assert_int_equal(oc_model_preprocess(model, img, &px, &tiles, &rows, &cols), OC_OK);
        assert_int_equal(tiles, 1);
        char *f = case_file(c);
        size_t n;
        float *want = load_f32(f, "pixel_values", &n);
        assert_int_equal(n, 3 * 32 * 32);
        double d = max_abs_diff(px, want, n);
        printf("case %d: preprocessing max |diff| %.3g\n", i, d);
        assert_true(d <= 0.02);
        free(want);
        free(f);
        oc_free(px);
        oc_image_free(img);
    }
}

static void test_input_ids(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_turn turn = {.text = case_str(c, "question"), .n_images = 1};
        oc_tile_layout lay = {0, 0};
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

static double rel_check(const char *what, const float *a, const float *b, size_t n) {
    double e = rel_err(a, b, n);
    printf("  %-24s rel err %.3g\n", what, e);
    if (!(e <= 1e-4))
        fail_msg("%s: relative error %g > 1e-4", what, e);
    return e;
}

static void test_forward_with_reference_pixels(void **state) {
    (void)state;
    const char *dir = tmpdir("llava-inspect");
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = case_image(c);
        char *f = case_file(c), dump[512];
        snprintf(dump, sizeof dump, "%s/dump%d.safetensors", dir, i);
        oc_inspect_params ip = {f, "pixel_values"};
        if (oc_inspect(model, (const oc_image *const *)&img, 1, case_str(c, "question"), &ip,
                       dump) != OC_OK)
            fail_msg("%s", oc_last_error());
        printf("case %d\n", i);
        size_t n1, n2;
        float *a = load_f32(dump, "vision_hidden_states_m2", &n1);
        float *b = load_f32(f, "vision_hidden_states_m2", &n2);
        assert_int_equal(n1, n2);
        rel_check("vision_hidden_states_m2", a, b, n1);
        free(a), free(b);
        a = load_f32(dump, "image_hidden_states", &n1);
        b = load_f32(f, "image_hidden_states", &n2);
        assert_int_equal(n1, n2);
        rel_check("image_hidden_states", a, b, n1);
        free(a), free(b);

        float *ids = load_f32(dump, "input_ids", &n1), *rids = load_f32(f, "input_ids", &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(ids, rids, n1 * sizeof(float));
        size_t T = n1, V = model->cfg.text.vocab;
        float *logits = load_f32(dump, "logits", &n1);
        assert_int_equal(n1, T * V);
        float *last4 = load_f32(f, "logits_last4", &n2);
        assert_int_equal(n2, 4 * V);
        rel_check("logits_last4", logits + (T - 4) * V, last4, 4 * V);
        float *first = load_f32(f, "logits_first512", &n2), *mine = malloc(T * 512 * 4);
        for (size_t t = 0; t < T; t++)
            memcpy(mine + t * 512, logits + t * V, 512 * 4);
        rel_check("logits_first512", mine, first, T * 512);
        float *am = load_f32(f, "logits_argmax", &n2);
        for (size_t t = 0; t < T; t++) {
            size_t best = 0;
            for (size_t v = 1; v < V; v++)
                if (logits[t * V + v] > logits[t * V + best])
                    best = v;
            assert_int_equal(best, (size_t)am[t]);
        }
        free(am), free(first), free(mine), free(last4), free(logits), free(ids), free(rids);
        free(f);
        oc_image_free(img);
    }
}

static void test_greedy_generation(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        char *f = case_file(c);
        size_t n;
        float *px = load_f32(f, "pixel_values", &n);
        oc_session *s;
        assert_int_equal(oc_session_new(model, &s), OC_OK);
        assert_int_equal(oc_session_add_pixels(s, px, 1, (oc_tile_layout){0, 0}), OC_OK);
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


/* Several turns and images, as llava-1.5-hf's chat template renders them. */
static void test_multi_turn_prompt(void **state) {
    (void)state;
    oc_turn turns[3] = {{.text = "Compare.", .n_images = 2},
                         {.is_assistant = 1, .text = "Both cats."},
                         {.text = "Which is bigger?"}};
    oc_tile_layout lay[2] = {{0, 0}, {0, 0}};
    char *text;
    assert_int_equal(oc_prompt_text(&model->cfg, turns, 3, lay, 2, 1, &text), OC_OK);
    char want[4096] = "USER: ";
    for (int img = 0; img < 2; img++) {
        for (int i = 0; i < 16; i++)
            strcat(want, "<image>");
        strcat(want, "\n");
    }
    strcat(want, "Compare. ASSISTANT: Both cats. USER: Which is bigger? ASSISTANT:");
    assert_string_equal(text, want);
    oc_free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocessing),
        cmocka_unit_test(test_input_ids),
        cmocka_unit_test(test_multi_turn_prompt),
        cmocka_unit_test(test_forward_with_reference_pixels),
        cmocka_unit_test(test_greedy_generation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
