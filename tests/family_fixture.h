/* Helpers of the Qwen2.5-VL and Gemma 3 tests: model folders copied with a changed
 * setting, one forward pass of a prompt over given pixel values, greedy decoding without
 * the KV cache (full recomputation, as the references were made). */
#ifndef OC_FAMILY_FIXTURE_H
#define OC_FAMILY_FIXTURE_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "file.h"
#include "json.h"
#include "model.h"
#include "session.h"
#include "testutil.h"

static const char *const FX_FILES[] = {"config.json", "generation_config.json",
                                       "preprocessor_config.json", "tokenizer.json",
                                       "model.safetensors"};

static char *fx_slurp(const char *path, size_t *n) {
    char *d = NULL;
    if (oc_read_file(path, (size_t)1 << 28, &d, n) != OC_OK)
        fail_msg("%s", oc_last_error());
    return d;
}

static const char *fx_pj(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A copy of tests/data/<src> in a fresh folder (static buffer). */
static const char *fx_copy(const char *src, const char *tag) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tmpdir(tag));
    for (size_t i = 0; i < sizeof FX_FILES / sizeof FX_FILES[0]; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", src, FX_FILES[i]);
        size_t n;
        char *d = fx_slurp(td(rel), &n);
        write_bytes(fx_pj(dir, FX_FILES[i]), d, n);
        oc_free(d);
    }
    return dir;
}

static cJSON *fx_json_read(const char *path) {
    cJSON *j = NULL;
    if (oc_json_load(path, 64 << 20, &j) != OC_OK)
        fail_msg("%s", oc_last_error());
    return j;
}

static void fx_json_write(const char *path, cJSON *j) {
    char *t = cJSON_Print(j);
    write_text(path, t);
    cJSON_free(t);
    cJSON_Delete(j);
}

/* file's keypath ("text_config.sliding_window": objects separated by dots) = value, which
 * it takes; NULL value deletes the key. */
static void fx_set(const char *dir, const char *file, const char *keypath, cJSON *value) {
    cJSON *root = fx_json_read(fx_pj(dir, file)), *o = root;
    char path[256];
    snprintf(path, sizeof path, "%s", keypath);
    char *key = path, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = 0;
        cJSON *next = cJSON_GetObjectItemCaseSensitive(o, key);
        assert_non_null(next);
        o = next;
        key = dot + 1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (value)
        cJSON_AddItemToObject(o, key, value);
    fx_json_write(fx_pj(dir, file), root);
}

static oc_model *fx_load(const char *dir) {
    oc_model *m = NULL;
    if (oc_model_load(dir, NULL, &m) != OC_OK)
        fail_msg("%s: %s", dir, oc_last_error());
    return m;
}

/* A session holding one image given as pixel values. */
static oc_session *fx_session(const oc_model *m, const float *px, uint32_t tiles,
                              oc_tile_layout lay, int text_positions) {
    oc_session *s;
    assert_int_equal(oc_session_new(m, &s), OC_OK);
    s->text_positions = text_positions;
    if (oc_session_add_pixels(s, px, tiles, lay) != OC_OK)
        fail_msg("%s", oc_last_error());
    return s;
}

/* The prompt of one question about the session's images. */
static int32_t *fx_prompt(const oc_session *s, const char *question, size_t *n) {
    oc_turn turn = {.text = question, .n_images = (uint32_t)s->n_images};
    int32_t *ids;
    if (oc_prompt_encode(&s->m->cfg, s->m->tok, &turn, 1, s->layouts, s->n_images, 1, &ids,
                         NULL, n) != OC_OK)
        fail_msg("%s", oc_last_error());
    return ids;
}

/* logits (n, V) of ids (n) in one forward pass from an empty cache. */
static float *fx_logits(oc_session *s, const int32_t *ids, size_t n) {
    const oc_model_config *c = &s->m->cfg;
    oc_kv_cache_free(&s->kv);
    assert_int_equal(oc_kv_cache_init(&s->kv, &c->text, (uint32_t)n), OC_OK);
    float *x = malloc(n * c->text.hidden * sizeof(float));
    float *logits = malloc(n * c->text.vocab * sizeof(float));
    if (oc_session_forward(s, ids, n, 0, n, x, NULL, logits, (uint32_t)n) != OC_OK)
        fail_msg("%s", oc_last_error());
    free(x);
    return logits;
}

static int32_t fx_argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

/* k greedy tokens after the prompt, each from a full recomputation (no cache). */
static void fx_greedy_nocache(oc_session *s, const char *question, size_t k, int32_t *out) {
    size_t n;
    int32_t *ids = fx_prompt(s, question, &n);
    size_t V = s->m->cfg.text.vocab;
    ids = realloc(ids, (n + k) * sizeof *ids);
    for (size_t i = 0; i < k; i++) {
        float *logits = fx_logits(s, ids, n + i);
        out[i] = ids[n + i] = fx_argmax(logits + (n + i - 1) * V, V);
        free(logits);
    }
    oc_kv_cache_free(&s->kv);
    free(ids);
}

/* k greedy tokens through oc_session_ask (the KV cache), ignoring end tokens. */
static void fx_greedy_cached(oc_session *s, const char *question, size_t k, int32_t *out) {
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = (uint32_t)k;
    gp.ignore_eos = 1;
    oc_answer a;
    if (oc_session_ask(s, NULL, 0, question, &gp, &a) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(a.n_tokens, k);
    memcpy(out, a.tokens, k * sizeof *out);
    oc_answer_free(&a);
}

static double fx_rel_check(const char *what, const float *a, const float *b, size_t n,
                           double tol) {
    double e = rel_err(a, b, n);
    printf("  %-28s rel err %.3g\n", what, e);
    if (!(e <= tol))
        fail_msg("%s: relative error %g > %g", what, e, tol);
    return e;
}
/* ---- the reference model of a test: tests/data/<FX_DIR> and its reference.json ---- */

static oc_model *model;
static cJSON *ref;

static int fx_setup(const char *dir) {
    char rel[256];
    if (oc_model_load(td(dir), NULL, &model) != OC_OK) {
        fprintf(stderr, "load: %s\n", oc_last_error());
        return -1;
    }
    snprintf(rel, sizeof rel, "%s/reference.json", dir);
    return oc_json_load(td(rel), 1 << 20, &ref) == OC_OK ? 0 : -1;
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

/* the case's tensors file, in tests/data/dir */
static const char *fx_case_file(const char *dir, const cJSON *c) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", dir, case_str(c, "tensors"));
    return td(rel);
}

static oc_image *load_image(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    oc_image *img = NULL;
    if (oc_image_load(td(rel), NULL, &img) != OC_OK)
        fail_msg("%s", oc_last_error());
    return img;
}
#endif
