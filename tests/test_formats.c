/* Weight formats and threads on the tiny reference models (SmolVLM and LLaVA): logits with
 * one thread and with three are the same bits; BF16 and Q8_0 weights (--dtype) give logits
 * within 2e-2 of the stored weights' (||diff|| / ||logits|| over every position, for the
 * prompt and for each decoding step) and the same greedy tokens as transformers up to a
 * near-tie that error tips; converting to F32 changes nothing. */
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

/* A greedy run of a case with the reference's pixel values, through the KV cache. */
typedef struct {
    oc_answer a;
    oc_session *s; /* s->fed: the prompt and every generated token but the last */
    float *px;
    uint32_t tiles;
    oc_tile_layout lay;
} greedy_run;

static void greedy(const family *f, const oc_model *m, const cJSON *c, greedy_run *g) {
    size_t n;
    g->px = load_f32(case_tensors(f, c), f->pixels, &n);
    uint32_t S = m->cfg.vision.image_size;
    g->tiles = (uint32_t)(n / (3 * (size_t)S * S));
    g->lay = (oc_tile_layout){0, 0};
    if (f->smolvlm)
        g->lay = (oc_tile_layout){(uint32_t)oc_json_get(c, "rows")->valueint,
                                  (uint32_t)oc_json_get(c, "cols")->valueint};
    assert_int_equal(oc_session_new(m, &g->s), OC_OK);
    assert_int_equal(oc_session_add_pixels(g->s, g->px, g->tiles, g->lay), OC_OK);
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = (uint32_t)cJSON_GetArraySize(oc_json_get(c, "greedy_new_tokens"));
    gp.ignore_eos = 1;
    if (oc_session_ask(g->s, NULL, 0, str(c, "question"), &gp, &g->a) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(g->a.n_tokens, gp.max_tokens);
}

static void greedy_free(greedy_run *g) {
    oc_answer_free(&g->a);
    oc_session_free(g->s);
    free(g->px);
}

/* Logits (G, V) of the G steps of a run, teacher-forced on its ids (n = prompt + G - 1: the
 * session's fed tokens) one token at a time through the KV cache, as decoding computes them. */
static float *step_logits(const oc_model *m, const greedy_run *g, const int32_t *ids, size_t n,
                          size_t G) {
    size_t V = m->cfg.text.vocab, P = n + 1 - G;
    oc_session *s;
    assert_int_equal(oc_session_new(m, &s), OC_OK);
    assert_int_equal(oc_session_add_pixels(s, g->px, g->tiles, g->lay), OC_OK);
    assert_int_equal(oc_kv_cache_init(&s->kv, &m->cfg.text, (uint32_t)n), OC_OK);
    float *x = malloc(P * m->cfg.text.hidden * sizeof(float)), *lg = malloc(G * V * sizeof(float));
    assert_non_null(x), assert_non_null(lg);
    assert_int_equal(oc_session_forward(s, ids, n, 0, P, x, NULL, lg, 1), OC_OK);
    for (size_t k = 1; k < G; k++)
        assert_int_equal(oc_session_forward(s, ids, n, P + k - 1, P + k, x, NULL, lg + k * V, 1),
                         OC_OK);
    free(x);
    oc_session_free(s);
    return lg;
}

/* The same logits from one forward pass over ids, as prefill computes them. */
static float *full_logits(const oc_model *m, const greedy_run *g, const int32_t *ids, size_t n,
                          size_t G) {
    size_t V = m->cfg.text.vocab;
    oc_session *s;
    assert_int_equal(oc_session_new(m, &s), OC_OK);
    assert_int_equal(oc_session_add_pixels(s, g->px, g->tiles, g->lay), OC_OK);
    assert_int_equal(oc_kv_cache_init(&s->kv, &m->cfg.text, (uint32_t)n), OC_OK);
    float *x = malloc(n * m->cfg.text.hidden * sizeof(float)), *lg = malloc(G * V * sizeof(float));
    assert_non_null(x), assert_non_null(lg);
    assert_int_equal(oc_session_forward(s, ids, n, 0, n, x, NULL, lg, (uint32_t)G), OC_OK);
    free(x);
    oc_session_free(s);
    return lg;
}

static size_t argmax(const float *l, size_t V) {
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
        if (l[v] > l[best])
            best = v;
    return best;
}

/* Converted weights against the stored weights' run ref (which gave the reference's
 * tokens; lref its step logits). Decoding's logits, teacher-forced on ref's tokens: within
 * max_err of lref (||diff|| / ||logits||) when max_err > 0, and within 1e-5 of the same
 * model's prefill over those tokens when same_as_prefill (Q8_0: both quantize activations
 * alike). Its own greedy tokens: the reference's up to the first step where those logits
 * choose otherwise, a near-tie the format's error tips (printed). */
static void expect_greedy(const family *f, const oc_model *m, const cJSON *c,
                          const greedy_run *ref, const float *lref, const char *dt,
                          double max_err, int same_as_prefill) {
    size_t G = ref->a.n_tokens, n = ref->s->kv.len, V = m->cfg.text.vocab;
    float *lg = step_logits(m, ref, ref->s->fed, n, G), *lp = full_logits(m, ref, ref->s->fed, n, G);
    double err = l2_rel(lg, lref, G * V), err_p = l2_rel(lg, lp, G * V);
    free(lp);
    if (max_err > 0)
        assert_true(err < max_err);
    if (same_as_prefill)
        assert_true(err_p < 1e-5);
    greedy_run g;
    greedy(f, m, c, &g);
    size_t k = 0;
    for (; k < G && argmax(lg + k * V, V) == (size_t)ref->a.tokens[k]; k++)
        assert_int_equal(g.a.tokens[k], ref->a.tokens[k]);
    printf("  %s decoding: logits %.4f from the stored weights', %.2g from prefill's; ", dt, err,
           err_p);
    if (k < G) {
        size_t alt = argmax(lg + k * V, V);
        printf("greedy as the reference to step %zu, where the stored weights' logits of "
               "tokens %d and %zu differ by %.3g\n", k, ref->a.tokens[k], alt,
               (double)(lref[k * V + (size_t)ref->a.tokens[k]] - lref[k * V + alt]));
    } else {
        printf("greedy as the reference\n");
    }
    free(lg);
    greedy_free(&g);
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
        greedy_run run;
        greedy(f, one, c, &run);
        const cJSON *want = oc_json_get(c, "greedy_new_tokens");
        for (size_t k = 0; k < run.a.n_tokens; k++)
            assert_int_equal(run.a.tokens[k], cJSON_GetArrayItem(want, (int)k)->valueint);
        float *lref = step_logits(one, &run, run.s->fed, run.s->kv.len, run.a.n_tokens);
        /* BF16's prefill rounds activations (BF16 products), its decoding keeps them F32 */
        expect_greedy(f, bf16, c, &run, lref, "bf16", 2e-2, 0);
        expect_greedy(f, q8, c, &run, lref, "q8_0", 0, 1);
        free(lref);
        greedy_free(&run);
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
