/* Malformed and hostile input, end to end: model folders built from tests/data/smolvlm-tiny
 * with one thing broken (truncated or corrupt safetensors, configs, tokenizer, processor
 * settings; wrong dtypes, shapes that disagree with the config, offsets past the end,
 * NaN/Inf weights), broken and extreme images, and prompts (invalid UTF-8, literal
 * "<image>", too long for the context). Every case must give a status and a sentence that
 * names the file or the problem; none may crash. Each case prints one line
 * "case | status | sentence" (the table in the hostile-input report). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "file.h"
#include "gguf.h"
#include "json.h"
#include "png_write.h"
#include "safetensors.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------------- */

static const char *MODEL_FILES[] = {"config.json", "generation_config.json",
                                    "preprocessor_config.json", "tokenizer.json",
                                    "model.safetensors"};

static char *slurp(const char *path, size_t *n) {
    char *d = NULL;
    if (oc_read_file(path, (size_t)1 << 28, &d, n) != OC_OK)
        fail_msg("%s", oc_last_error());
    return d;
}

static const char *pj(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A fresh copy of the tiny SmolVLM folder (the five files a model needs). */
static const char *model_copy(const char *tag) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tmpdir(tag));
    for (size_t i = 0; i < sizeof MODEL_FILES / sizeof MODEL_FILES[0]; i++) {
        char src[1024];
        snprintf(src, sizeof src, "smolvlm-tiny/%s", MODEL_FILES[i]);
        size_t n;
        char *d = slurp(td(src), &n);
        write_bytes(pj(dir, MODEL_FILES[i]), d, n);
        oc_free(d);
    }
    return dir;
}

static void truncate_file(const char *path, size_t keep) {
    size_t n;
    char *d = slurp(path, &n);
    assert_true(keep <= n);
    write_bytes(path, d, keep);
    oc_free(d);
}

static cJSON *json_read(const char *path) {
    cJSON *j = NULL;
    if (oc_json_load(path, 64 << 20, &j) != OC_OK)
        fail_msg("%s", oc_last_error());
    return j;
}

static void json_write(const char *path, cJSON *j) {
    char *t = cJSON_Print(j);
    write_text(path, t);
    cJSON_free(t);
    cJSON_Delete(j);
}

/* Sets obj[key] (obj a path of objects: "text_config") to a number. */
static void config_set_num(const char *dir, const char *file, const char *sub,
                           const char *key, double v) {
    cJSON *j = json_read(pj(dir, file));
    cJSON *o = sub ? cJSON_GetObjectItemCaseSensitive(j, sub) : j;
    assert_non_null(o);
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
    json_write(pj(dir, file), j);
}

static void config_set_str(const char *dir, const char *file, const char *key,
                           const char *v) {
    cJSON *j = json_read(pj(dir, file));
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    cJSON_AddStringToObject(j, key, v);
    json_write(pj(dir, file), j);
}

/* Tensor edits: rewrites dir/model.safetensors through the writer with tensor `name`
 * replaced (dtype, shape, data given) or dropped (drop = 1). */
static void weights_edit(const char *dir, const char *name, int drop, oc_dtype dt, int ndim,
                         const int64_t *shape, const void *data) {
    char src[1024];
    snprintf(src, sizeof src, "%s", td("smolvlm-tiny/model.safetensors"));
    oc_st_file *f;
    assert_int_equal(oc_st_open(src, &f), OC_OK);
    oc_st_writer *w;
    assert_int_equal(oc_st_writer_new(&w), OC_OK);
    int found = 0;
    for (size_t i = 0; i < oc_st_count(f); i++) {
        const oc_st_tensor *t = oc_st_at(f, i);
        if (strcmp(t->name, name) == 0) {
            found = 1;
            if (!drop)
                assert_int_equal(oc_st_writer_add(w, name, dt, ndim, shape, data), OC_OK);
            continue;
        }
        assert_int_equal(oc_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data),
                         OC_OK);
    }
    assert_true(found);
    assert_int_equal(oc_st_writer_save(w, pj(dir, "model.safetensors")), OC_OK);
    oc_st_writer_free(w);
    oc_st_close(f);
}

/* A copy of a tensor's F32 data (caller frees). */
static float *tensor_f32(const char *name, size_t *n, int64_t *shape, int *ndim) {
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("smolvlm-tiny/model.safetensors"), &f), OC_OK);
    const oc_st_tensor *t = oc_st_find(f, name);
    assert_non_null(t);
    float *x = malloc(t->numel * sizeof(float));
    assert_int_equal(oc_st_to_f32(t, x, t->numel), OC_OK);
    *n = t->numel;
    *ndim = t->ndim;
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    oc_st_close(f);
    return x;
}

/* The safetensors header of dir/model.safetensors as JSON, and a writer-back that keeps
 * the data bytes as they are. */
static cJSON *st_header(const char *dir, char **data, size_t *n, size_t *data_off) {
    *data = slurp(pj(dir, "model.safetensors"), n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (unsigned char)(*data)[i];
    cJSON *h = NULL;
    assert_int_equal(oc_json_parse(*data + 8, (size_t)hl, "header", &h), OC_OK);
    *data_off = 8 + (size_t)hl;
    return h;
}

static void st_put(const char *dir, cJSON *h, const char *data, size_t n, size_t data_off) {
    char *t = cJSON_PrintUnformatted(h);
    size_t hl = strlen(t);
    size_t total = 8 + hl + (n - data_off);
    unsigned char *out = malloc(total);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, t, hl);
    memcpy(out + 8 + hl, data + data_off, n - data_off);
    write_bytes(pj(dir, "model.safetensors"), out, total);
    free(out);
    cJSON_free(t);
    cJSON_Delete(h);
}

/* Checks a result: status want (-1: any failure, -2: success or failure), and each of the strings (up
 * to 2, NULL to skip) in the sentence. Prints the table line. */
static void expect(const char *what, oc_status got, int want, const char *s1, const char *s2) {
    const char *e = oc_last_error();
    printf("MALFORMED | %-44s | %-18s | %s\n", what, oc_status_str(got), got ? e : "");
    if (want == -1)
        assert_int_not_equal(got, OC_OK);
    else if (want == -2)
        ;
    else if ((int)got != want)
        fail_msg("%s: got %s (%s), expected %s", what, oc_status_str(got), e,
                 oc_status_str((oc_status)want));
    if (got != OC_OK) {
        assert_true(strlen(e) > 0);
        assert_int_not_equal(got, OC_ERR_INTERNAL);
    }
    if (s1 && !strstr(e, s1))
        fail_msg("%s: the sentence \"%s\" does not mention \"%s\"", what, e, s1);
    if (s2 && !strstr(e, s2))
        fail_msg("%s: the sentence \"%s\" does not mention \"%s\"", what, e, s2);
}

static oc_status load(const char *dir, const oc_model_params *p) {
    oc_model *m = NULL;
    oc_status s = oc_model_load(dir, p, &m);
    if (s == OC_OK) {
        /* a folder that loads must also answer */
        oc_gen_params gp = oc_gen_default_params();
        gp.max_tokens = 2;
        oc_answer a;
        oc_status g = oc_ask(m, NULL, 0, "Hi", &gp, &a);
        if (g == OC_OK)
            oc_answer_free(&a);
        oc_model_free(m);
        return g;
    }
    assert_null(m);
    return s;
}

/* ---- safetensors ---------------------------------------------------------------- */

static void test_truncated_weights(void **state) {
    (void)state;
    const char *dir = model_copy("mf-trunc");
    truncate_file(pj(dir, "model.safetensors"), 843888 / 2);
    expect("safetensors truncated to half", load(dir, NULL), OC_ERR_FORMAT,
           "model.safetensors", "past the end");
    truncate_file(pj(dir, "model.safetensors"), 5);
    expect("safetensors of 5 bytes", load(dir, NULL), OC_ERR_FORMAT, "model.safetensors",
           "too short");
    truncate_file(pj(dir, "model.safetensors"), 0);
    expect("safetensors empty", load(dir, NULL), OC_ERR_FORMAT, "model.safetensors", NULL);
    /* header length says more than the file holds */
    dir = model_copy("mf-hlen");
    size_t n;
    char *d = slurp(pj(dir, "model.safetensors"), &n);
    d[5] = 0x7f;
    write_bytes(pj(dir, "model.safetensors"), d, n);
    oc_free(d);
    expect("safetensors header length 2^47", load(dir, NULL), OC_ERR_FORMAT,
           "model.safetensors", "header length");
    /* a header that is not JSON */
    dir = model_copy("mf-hjson");
    d = slurp(pj(dir, "model.safetensors"), &n);
    memcpy(d + 8, "{\"a\":[", 6);
    memset(d + 14, '}', 10);
    write_bytes(pj(dir, "model.safetensors"), d, n);
    oc_free(d);
    expect("safetensors header not JSON", load(dir, NULL), OC_ERR_FORMAT, "model.safetensors",
           "invalid JSON");
}

static void test_bad_offsets(void **state) {
    (void)state;
    const char *dir = model_copy("mf-offs");
    char *d;
    size_t n, off;
    cJSON *h = st_header(dir, &d, &n, &off);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, "model.text_model.norm.weight");
    cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    double end = cJSON_GetArrayItem(o, 1)->valuedouble;
    cJSON_ReplaceItemInArray(o, 0, cJSON_CreateNumber((double)(n - off) + 64));
    cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber((double)(n - off) + 320));
    st_put(dir, h, d, n, off);
    oc_free(d);
    expect("tensor offsets past the end", load(dir, NULL), OC_ERR_FORMAT,
           "model.text_model.norm.weight", "past the end");

    dir = model_copy("mf-offs2");
    h = st_header(dir, &d, &n, &off);
    t = cJSON_GetObjectItemCaseSensitive(h, "model.text_model.norm.weight");
    o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(end - 4));
    st_put(dir, h, d, n, off);
    oc_free(d);
    expect("tensor byte count != shape", load(dir, NULL), OC_ERR_FORMAT,
           "model.text_model.norm.weight", "bytes of data");

    dir = model_copy("mf-offs3");
    h = st_header(dir, &d, &n, &off);
    t = cJSON_GetObjectItemCaseSensitive(h, "model.text_model.norm.weight");
    cJSON_ReplaceItemInObjectCaseSensitive(t, "shape", cJSON_CreateIntArray(
        (const int[]){65536, 65536, 65536, 65536, 65536}, 5));
    st_put(dir, h, d, n, off);
    oc_free(d);
    expect("shape whose element count overflows", load(dir, NULL), OC_ERR_FORMAT,
           "model.text_model.norm.weight", "overflow");

    dir = model_copy("mf-dtype");
    h = st_header(dir, &d, &n, &off);
    t = cJSON_GetObjectItemCaseSensitive(h, "model.text_model.norm.weight");
    cJSON_ReplaceItemInObjectCaseSensitive(t, "dtype", cJSON_CreateString("Q4_K"));
    st_put(dir, h, d, n, off);
    oc_free(d);
    expect("unknown dtype", load(dir, NULL), OC_ERR_FORMAT, "model.text_model.norm.weight",
           "dtype");
}

static void test_wrong_dtype_and_shape(void **state) {
    (void)state;
    size_t n;
    int64_t shape[OC_MAX_DIMS];
    int nd;
    const char *name = "model.text_model.layers.0.self_attn.q_proj.weight";
    float *x = tensor_f32(name, &n, shape, &nd);
    const char *dir = model_copy("mf-i32");
    weights_edit(dir, name, 0, OC_DT_I32, nd, shape, x);
    expect("I32 weights", load(dir, NULL), OC_ERR_UNSUPPORTED, name, "I32");

    dir = model_copy("mf-shape");
    int64_t other[2] = {shape[1], shape[0]}; /* (64, 64) stays square: use a 1-D view */
    other[0] = shape[0] * shape[1];
    weights_edit(dir, name, 0, OC_DT_F32, 1, other, x);
    expect("weight shape disagrees with config", load(dir, NULL), OC_ERR_FORMAT, name,
           "expected [64, 64]");
    free(x);

    dir = model_copy("mf-missing");
    weights_edit(dir, "model.text_model.layers.1.mlp.down_proj.weight", 1, OC_DT_F32, 0, NULL,
                 NULL);
    expect("missing tensor", load(dir, NULL), OC_ERR_FORMAT,
           "model.text_model.layers.1.mlp.down_proj.weight", "no tensor");

    /* config says a wider text model than the weights hold */
    dir = model_copy("mf-cfgshape");
    config_set_num(dir, "config.json", "text_config", "intermediate_size", 192);
    expect("config intermediate_size != weights", load(dir, NULL), OC_ERR_FORMAT,
           "mlp.gate_proj.weight", "expected [192, 64]");
}

static void test_nonfinite_weights(void **state) {
    (void)state;
    size_t n;
    int64_t shape[OC_MAX_DIMS];
    int nd;
    const char *name = "model.text_model.layers.1.input_layernorm.weight";
    float *x = tensor_f32(name, &n, shape, &nd);
    x[7] = NAN;
    const char *dir = model_copy("mf-nan");
    weights_edit(dir, name, 0, OC_DT_F32, nd, shape, x);
    expect("NaN in a norm weight", load(dir, NULL), OC_ERR_FORMAT, name, "NaN");
    free(x);

    name = "model.vision_model.encoder.layers.0.mlp.fc1.bias";
    x = tensor_f32(name, &n, shape, &nd);
    x[0] = -INFINITY;
    dir = model_copy("mf-inf");
    weights_edit(dir, name, 0, OC_DT_F32, nd, shape, x);
    expect("-Inf in a bias", load(dir, NULL), OC_ERR_FORMAT, name, "NaN");
    free(x);
}

static void test_shard_index(void **state) {
    (void)state;
    const char *dir = model_copy("mf-index");
    /* the weights renamed to a shard, and an index naming one that is not there */
    size_t n;
    char *d = slurp(pj(dir, "model.safetensors"), &n);
    write_bytes(pj(dir, "model-00001-of-00002.safetensors"), d, n);
    oc_free(d);
    remove(pj(dir, "model.safetensors"));
    write_text(pj(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"model.text_model.norm.weight\": "
               "\"model-00001-of-00002.safetensors\", \"lm_head.weight\": "
               "\"model-00002-of-00002.safetensors\"}}");
    expect("index names a missing shard", load(dir, NULL), OC_ERR_IO,
           "model-00002-of-00002.safetensors", NULL);
    write_text(pj(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"model.text_model.norm.weight\": \"../../etc/passwd\"}}");
    expect("index shard outside the folder", load(dir, NULL), OC_ERR_FORMAT,
           "model.safetensors.index.json", "shard");
    write_text(pj(dir, "model.safetensors.index.json"),
               "{\"weight_map\": {\"model.text_model.nonexistent\": "
               "\"model-00001-of-00002.safetensors\"}}");
    expect("index names a tensor the shard lacks", load(dir, NULL), OC_ERR_FORMAT,
           "model.text_model.nonexistent", "no shard");
    write_text(pj(dir, "model.safetensors.index.json"), "{\"weight_map\": ");
    expect("index truncated", load(dir, NULL), OC_ERR_FORMAT,
           "model.safetensors.index.json", NULL);
}

/* ---- JSON files ------------------------------------------------------------------- */

static void test_configs(void **state) {
    (void)state;
    const char *dir = model_copy("mf-cfg");
    truncate_file(pj(dir, "config.json"), 300);
    expect("config.json truncated", load(dir, NULL), OC_ERR_FORMAT, "config.json",
           "invalid JSON");
    truncate_file(pj(dir, "config.json"), 0);
    expect("config.json empty", load(dir, NULL), OC_ERR_FORMAT, "config.json", NULL);
    remove(pj(dir, "config.json"));
    expect("config.json missing", load(dir, NULL), OC_ERR_IO, "config.json", NULL);

    dir = model_copy("mf-cfg2");
    config_set_str(dir, "config.json", "model_type", "gpt2");
    expect("config model_type gpt2", load(dir, NULL), OC_ERR_UNSUPPORTED, "config.json",
           "gpt2");
    dir = model_copy("mf-cfg3");
    config_set_num(dir, "config.json", "text_config", "eos_token_id", 1e30);
    expect("config eos_token_id 1e30", load(dir, NULL), OC_ERR_FORMAT, "config.json",
           "eos_token_id");
    dir = model_copy("mf-cfg4");
    config_set_num(dir, "config.json", "text_config", "num_attention_heads", 4096);
    expect("config num_attention_heads 4096", load(dir, NULL), OC_ERR_FORMAT, "config.json",
           "num_attention_heads");
    dir = model_copy("mf-cfg5");
    config_set_num(dir, "config.json", "vision_config", "patch_size", 7);
    expect("config patch_size 7 (64 % 7 != 0)", load(dir, NULL), OC_ERR_FORMAT,
           "config.json", "patch_size");
    dir = model_copy("mf-cfg6");
    config_set_num(dir, "config.json", NULL, "image_token_id", 360);
    expect("config image_token_id = vocab", load(dir, NULL), OC_ERR_FORMAT, "config.json",
           "image_token_id");
    dir = model_copy("mf-cfg7");
    config_set_num(dir, "config.json", "text_config", "hidden_size", -64);
    expect("config hidden_size -64", load(dir, NULL), OC_ERR_FORMAT, "config.json",
           "hidden_size");

    dir = model_copy("mf-gen");
    truncate_file(pj(dir, "generation_config.json"), 40);
    expect("generation_config.json truncated", load(dir, NULL), OC_ERR_FORMAT,
           "generation_config.json", NULL);
    write_text(pj(dir, "generation_config.json"), "{\"eos_token_id\": [2, 99999]}");
    expect("generation_config eos outside vocab", load(dir, NULL), OC_ERR_FORMAT,
           "generation_config.json", "eos_token_id");
    write_text(pj(dir, "generation_config.json"), "{\"eos_token_id\": \"2\"}");
    expect("generation_config eos a string", load(dir, NULL), OC_ERR_FORMAT,
           "generation_config.json", "eos_token_id");
}

static void test_tokenizer_files(void **state) {
    (void)state;
    const char *dir = model_copy("mf-tok");
    truncate_file(pj(dir, "tokenizer.json"), 5000);
    expect("tokenizer.json truncated", load(dir, NULL), OC_ERR_FORMAT, "tokenizer.json",
           NULL);
    truncate_file(pj(dir, "tokenizer.json"), 0);
    expect("tokenizer.json empty", load(dir, NULL), OC_ERR_FORMAT, "tokenizer.json", NULL);
    remove(pj(dir, "tokenizer.json"));
    expect("tokenizer.json missing", load(dir, NULL), -1, "tokenizer.json", NULL);

    dir = model_copy("mf-tok2");
    cJSON *j = json_read(pj(dir, "tokenizer.json"));
    cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON_ReplaceItemInObjectCaseSensitive(m, "type", cJSON_CreateString("Unigram"));
    json_write(pj(dir, "tokenizer.json"), j);
    expect("tokenizer model Unigram", load(dir, NULL), OC_ERR_UNSUPPORTED, "tokenizer.json",
           "Unigram");

    dir = model_copy("mf-tok3");
    j = json_read(pj(dir, "tokenizer.json"));
    m = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("nonexistent piece"));
    json_write(pj(dir, "tokenizer.json"), j);
    expect("tokenizer merge of unknown pieces", load(dir, NULL), OC_ERR_FORMAT,
           "tokenizer.json", NULL);

    dir = model_copy("mf-tok4");
    j = json_read(pj(dir, "tokenizer.json"));
    cJSON *pre = cJSON_CreateObject();
    cJSON_AddStringToObject(pre, "type", "Split");
    cJSON *pat = cJSON_AddObjectToObject(pre, "pattern");
    cJSON_AddStringToObject(pat, "Regex", "(unclosed[");
    cJSON_AddStringToObject(pre, "behavior", "Isolated");
    cJSON_AddBoolToObject(pre, "invert", 0);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "pre_tokenizer", pre);
    json_write(pj(dir, "tokenizer.json"), j);
    expect("tokenizer regex that does not compile", load(dir, NULL), OC_ERR_FORMAT,
           "tokenizer.json", NULL);
}

static void test_processor_files(void **state) {
    (void)state;
    const char *dir = model_copy("mf-proc");
    truncate_file(pj(dir, "preprocessor_config.json"), 100);
    expect("preprocessor_config.json truncated", load(dir, NULL), OC_ERR_FORMAT,
           "preprocessor_config.json", NULL);
    dir = model_copy("mf-proc2");
    write_text(pj(dir, "preprocessor_config.json"),
               "{\"image_std\": [0.5, 0, 0.5], \"max_image_size\": {\"longest_edge\": 64}}");
    expect("preprocessor image_std 0", load(dir, NULL), OC_ERR_FORMAT,
           "preprocessor_config.json", "image_std");
    write_text(pj(dir, "preprocessor_config.json"),
               "{\"max_image_size\": {\"longest_edge\": 96}}");
    expect("preprocessor tile != vision image_size", load(dir, NULL), OC_ERR_FORMAT,
           "longest_edge", "96");
    write_text(pj(dir, "preprocessor_config.json"),
               "{\"max_image_size\": {\"longest_edge\": 64}, \"size\": {\"longest_edge\": 1e9}}");
    expect("preprocessor size 1e9", load(dir, NULL), OC_ERR_FORMAT,
           "preprocessor_config.json", "longest_edge");
}

/* ---- images ---------------------------------------------------------------------- */

/* smolvlm-tiny with max_images 2 (every image but very thin ones becomes 3 x 3 + 1
 * tiles); small: the same with max_tiles 4 and a context of 64 */
static oc_model *model, *small;

static int setup(void **state) {
    (void)state;
    oc_model_params p = oc_model_default_params();
    p.max_tiles = 10;
    p.max_images = 2;
    if (oc_model_load(td("smolvlm-tiny"), &p, &model) != OC_OK) {
        fprintf(stderr, "%s\n", oc_last_error());
        return -1;
    }
    p.max_context = 64;
    p.max_tiles = 4;
    if (oc_model_load(td("smolvlm-tiny"), &p, &small) != OC_OK) {
        fprintf(stderr, "%s\n", oc_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    oc_model_free(model);
    oc_model_free(small);
    return 0;
}

static oc_status caption_with(const oc_model *m, const char *path, const oc_image_limits *lim) {
    oc_image *img = NULL;
    oc_status s = oc_image_load(path, lim, &img);
    if (s != OC_OK) {
        assert_null(img);
        return s;
    }
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 2;
    oc_answer a;
    s = oc_caption(m, img, &gp, &a);
    if (s == OC_OK)
        oc_answer_free(&a);
    oc_image_free(img);
    return s;
}

static oc_status caption_file(const char *path, const oc_image_limits *lim) {
    return caption_with(model, path, lim);
}

static const char *png_file(const char *dir, const char *name, uint32_t w, uint32_t h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 7);
    uint8_t *png;
    size_t n;
    assert_int_equal(oc_png_encode(rgb, w, h, &png, &n), OC_OK);
    write_bytes(pj(dir, name), png, n);
    oc_free(png);
    free(rgb);
    return pj(dir, name);
}

static void test_images(void **state) {
    (void)state;
    const char *dir = tmpdir("mf-img");
    write_bytes(pj(dir, "empty.png"), "", 0);
    expect("image file of 0 bytes", caption_file(pj(dir, "empty.png"), NULL), OC_ERR_FORMAT,
           "empty.png", "empty");
    size_t n;
    char *d = slurp(td("images/shapes_200x130.png"), &n);
    write_bytes(pj(dir, "trunc.png"), d, n / 2);
    expect("PNG truncated", caption_file(pj(dir, "trunc.png"), NULL), OC_ERR_FORMAT,
           "trunc.png", NULL);
    /* an IHDR claiming 100000 x 100000 pixels */
    memcpy(d + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8);
    write_bytes(pj(dir, "huge.png"), d, n);
    expect("PNG header 100000 x 100000", caption_file(pj(dir, "huge.png"), NULL), OC_ERR_LIMIT,
           "huge.png", "limit");
    oc_free(d);
    write_text(pj(dir, "text.png"), "this is not an image at all, just some text.");
    expect("not an image", caption_file(pj(dir, "text.png"), NULL), OC_ERR_UNSUPPORTED,
           "text.png", "not a supported image");

    expect("PNG 1 x 1", caption_file(png_file(dir, "1x1.png", 1, 1), NULL), OC_OK, NULL, NULL);
    /* extreme aspect ratios: captioned, or refused with the sizes named */
    oc_status s = caption_file(png_file(dir, "1x10000.png", 1, 10000), NULL);
    expect("PNG 1 x 10000", s, -2, s ? "1 x 10000" : NULL, NULL);
    s = caption_file(png_file(dir, "10000x1.png", 10000, 1), NULL);
    expect("PNG 10000 x 1", s, -2, s ? "10000 x 1" : NULL, NULL);
    oc_image_limits lim = oc_image_default_limits();
    lim.max_side = 5000;
    expect("PNG 1 x 10000, max_side 5000",
           caption_file(png_file(dir, "1x10000.png", 1, 10000), &lim), OC_ERR_LIMIT,
           "1x10000.png", "5000");
    expect("PNG 2000 x 2000 (10 tiles, max_tiles 4)",
           caption_with(small, png_file(dir, "big.png", 2000, 2000), NULL), OC_ERR_LIMIT,
           "tiles", "limit");
    expect("PNG 192 x 64: 4 tiles, over context 64",
           caption_with(small, png_file(dir, "wide.png", 192, 64), NULL), OC_ERR_LIMIT,
           "context", NULL);

    expect("16-bit grey PNG", caption_file(td("images-formats/grey16.png"), NULL), OC_OK,
           NULL, NULL);
    expect("16-bit RGBA PNG", caption_file(td("images-formats/rgba16.png"), NULL), OC_OK,
           NULL, NULL);
    expect("animated GIF (first frame)", caption_file(td("images-formats/anim.gif"), NULL),
           OC_OK, NULL, NULL);
    expect("CMYK JPEG with Adobe marker", caption_file(td("images-formats/cmyk.jpg"), NULL),
           OC_OK, NULL, NULL);
    /* the same CMYK JPEG with its Adobe APP14 marker renamed to APP13 */
    d = slurp(td("images-formats/cmyk.jpg"), &n);
    for (size_t i = 0; i + 9 < n; i++)
        if ((unsigned char)d[i] == 0xFF && (unsigned char)d[i + 1] == 0xEE &&
            memcmp(d + i + 4, "Adobe", 5) == 0)
            d[i + 1] = (char)0xED;
    write_bytes(pj(dir, "cmyk-noadobe.jpg"), d, n);
    oc_free(d);
    /* read as Pillow reads any 4-component JPEG: CMYK with Adobe's inverted convention */
    expect("CMYK JPEG without Adobe marker", caption_file(pj(dir, "cmyk-noadobe.jpg"), NULL),
           OC_OK, NULL, NULL);
    d = slurp(td("images-formats/anim.gif"), &n);
    write_bytes(pj(dir, "trunc.gif"), d, 40);
    oc_free(d);
    expect("GIF truncated", caption_file(pj(dir, "trunc.gif"), NULL), -1, "trunc.gif", NULL);
    write_text(pj(dir, "bad.ppm"), "P6\n99999 99999\n255\n\x01\x02");
    expect("PPM header 99999 x 99999", caption_file(pj(dir, "bad.ppm"), NULL), OC_ERR_LIMIT,
           "bad.ppm", NULL);
    write_text(pj(dir, "short.ppm"), "P6\n4 4\n255\n\x01\x02\x03");
    expect("PPM truncated", caption_file(pj(dir, "short.ppm"), NULL), OC_ERR_FORMAT,
           "short.ppm", "truncated");
    expect("image file missing", caption_file(pj(dir, "nope.png"), NULL), OC_ERR_IO,
           "nope.png", NULL);
}

/* ---- prompts --------------------------------------------------------------------- */

static oc_status ask(const oc_model *m, const oc_image *img, const char *q,
                     uint32_t max_tokens) {
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = max_tokens;
    oc_answer a;
    const oc_image *imgs[1] = {img};
    oc_status s = oc_ask(m, imgs, img ? 1 : 0, q, &gp, &a);
    if (s == OC_OK) {
        assert_non_null(a.text);
        oc_answer_free(&a);
    }
    return s;
}

static void test_prompts(void **state) {
    (void)state;
    oc_image *img = NULL;
    assert_int_equal(oc_image_load(td("images/tiny_17x9.png"), NULL, &img), OC_OK);
    oc_status s = ask(model, NULL, "caf\xc3\xa9 \xff\xfe broken \xc3 utf-8 \xed\xa0\x80", 2);
    /* refused with a sentence (Hugging Face tokenizers only ever sees valid str) */
    expect("question with invalid UTF-8", s, -1, "UTF-8", NULL);
    expect("literal <image> in a question, no image", ask(model, NULL, "what is <image>?", 2),
           OC_ERR_INVALID_ARG, "image", NULL);
    expect("literal <image> in a question, one image", ask(model, img, "<image><image>", 2),
           OC_ERR_INVALID_ARG, "image", NULL);
    char long_q[2000];
    for (size_t i = 0; i + 1 < sizeof long_q; i++)
        long_q[i] = "ab "[i % 3];
    long_q[sizeof long_q - 1] = 0;
    expect("prompt longer than max_context 64", ask(small, NULL, long_q, 2), OC_ERR_LIMIT,
           "context", NULL);
    /* an answer longer than the room left stops at the context, successfully */
    expect("max_tokens past the context", ask(small, NULL, "Hi", 1000), OC_OK, NULL, NULL);
    expect("empty question", ask(model, NULL, "", 2), OC_OK, NULL, NULL);

    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 1;
    oc_answer a;
    const oc_image *three[3] = {img, img, img};
    expect("3 images, max_images 2", oc_ask(model, three, 3, "?", &gp, &a), OC_ERR_LIMIT,
           "images", "limit");
    gp.temperature = NAN;
    expect("temperature NaN", oc_ask(model, NULL, 0, "?", &gp, &a), OC_ERR_INVALID_ARG,
           "temperature", NULL);
    gp = oc_gen_default_params();
    gp.max_tokens = 1;
    const oc_image *null_img[1] = {NULL};
    expect("NULL image", oc_ask(model, null_img, 1, "?", &gp, &a), OC_ERR_INVALID_ARG,
           "NULL", NULL);
    expect("NULL question", oc_ask(model, NULL, 0, NULL, &gp, &a), OC_ERR_INVALID_ARG, "NULL",
           NULL);
    oc_image_free(img);
}

/* ---- GGUF ------------------------------------------------------------------------------ */

/* A byte buffer that GGUF files are written into. */
typedef struct {
    unsigned char *d;
    size_t n, cap;
} gbuf;

static void gb_put(gbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->d = realloc(b->d, b->cap);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gbuf *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_str(gbuf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
static void gb_pad(gbuf *b, size_t a) {
    static const unsigned char z[64];
    while (b->n % a)
        gb_put(b, z, 1);
}

/* An edit of a real GGUF file rewritten by gguf_rewrite: a key whose value is replaced
 * (with an integer of type u32, or a string) or dropped, and a tensor whose dims change. */
typedef struct {
    const char *key;        /* NULL: none */
    int drop;
    int is_str;
    uint32_t u32;
    const char *str;
    const char *tensor;     /* NULL: none */
    int64_t ne0, ne1;       /* the tensor's new first two dims (its data is cut or kept) */
} gguf_edit;

/* The raw bytes of a key's value (everything after the type) in the file. */
static size_t kv_value_bytes(const oc_gguf_kv *kv) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (kv->type == OC_GGUF_STRING)
        return kv->str_len;
    if (kv->type != OC_GGUF_ARRAY)
        return sz[kv->type];
    if (kv->elem_type != OC_GGUF_STRING)
        return kv->n * sz[kv->elem_type];
    if (kv->n == 0)
        return 0;
    size_t len;
    const char *last = oc_gguf_arr_str(kv, kv->n - 1, &len);
    return (size_t)(last + len - (const char *)kv->data);
}

/* Rewrites rel (under tests/data) with one edit into dir/name. */
static const char *gguf_rewrite(const char *rel, const gguf_edit *e, const char *dir,
                                const char *name) {
    oc_gguf *g;
    if (oc_gguf_open(td(rel), &g) != OC_OK)
        fail_msg("%s", oc_last_error());
    gbuf b = {0};
    gb_put(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, oc_gguf_tensor_count(g));
    size_t nkv = oc_gguf_kv_count(g);
    int found = 0;
    for (size_t i = 0; i < nkv; i++)
        found |= e->key && !strcmp(oc_gguf_kv_at(g, i)->key, e->key);
    gb_u64(&b, nkv - (found && e->drop) + (e->key && !found && !e->drop));
    for (size_t i = 0; i < nkv; i++) {
        const oc_gguf_kv *kv = oc_gguf_kv_at(g, i);
        if (e->key && !strcmp(kv->key, e->key))
            continue;
        gb_str(&b, kv->key);
        gb_u32(&b, kv->type);
        if (kv->type == OC_GGUF_STRING) {
            gb_u64(&b, kv->str_len);
        } else if (kv->type == OC_GGUF_ARRAY) {
            gb_u32(&b, kv->elem_type);
            gb_u64(&b, kv->n);
        }
        gb_put(&b, kv->data, kv_value_bytes(kv));
    }
    if (e->key && !e->drop) {
        gb_str(&b, e->key);
        gb_u32(&b, e->is_str ? OC_GGUF_STRING : OC_GGUF_U32);
        if (e->is_str)
            gb_str(&b, e->str);
        else
            gb_u32(&b, e->u32);
    }
    size_t nt = oc_gguf_tensor_count(g), off = 0;
    size_t *sizes = calloc(nt + 1, sizeof *sizes);
    for (size_t i = 0; i < nt; i++) {
        const oc_gguf_tensor *t = oc_gguf_tensor_at(g, i);
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        sizes[i] = t->nbytes;
        if (e->tensor && !strcmp(t->name, e->tensor)) {
            ne[0] = e->ne0;
            ne[1] = e->ne1;
            size_t elems = (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
            size_t nb = elems / oc_ggml_block_elems(t->type) * oc_ggml_block_bytes(t->type);
            sizes[i] = nb < t->nbytes ? nb : t->nbytes;
        }
        gb_str(&b, t->name);
        gb_u32(&b, (uint32_t)t->ndim);
        for (int k = 0; k < t->ndim; k++)
            gb_u64(&b, (uint64_t)ne[k]);
        gb_u32(&b, t->type);
        gb_u64(&b, off);
        off += (sizes[i] + 31) / 32 * 32;
    }
    gb_pad(&b, 32);
    for (size_t i = 0; i < nt; i++) {
        gb_put(&b, oc_gguf_tensor_at(g, i)->data, sizes[i]);
        gb_pad(&b, 32);
    }
    const char *path = pj(dir, name);
    write_bytes(path, b.d, b.n);
    free(b.d);
    free(sizes);
    oc_gguf_close(g);
    return path;
}

#define SMOL_TEXT "gguf/smolvlm-tiny/smolvlm-tiny-Q4_0.gguf"
#define SMOL_MMPROJ "gguf/smolvlm-tiny/mmproj-smolvlm-tiny-F32.gguf"

static oc_status load_gguf_pair(const char *text, const char *mmproj) {
    oc_model_params p = oc_model_default_params();
    p.mmproj = mmproj;
    return load(text, &p);
}

/* A GGUF file of a header and raw bytes, loaded as the text model. */
static oc_status load_bytes(const char *dir, const gbuf *b) {
    write_bytes(pj(dir, "t.gguf"), b->d, b->n);
    return load_gguf_pair(pj(dir, "t.gguf"), td(SMOL_MMPROJ));
}

static void gb_header(gbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b->n = 0;
    gb_put(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

/* One tensor info (1-D unless ne1 > 0) after a header of 1 tensor and 0 keys. */
static void gb_tensor(gbuf *b, const char *name, uint32_t ndim, uint64_t ne0, uint64_t ne1,
                      uint32_t type, uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, ndim);
    gb_u64(b, ne0);
    for (uint32_t k = 1; k < ndim && k < 8; k++)
        gb_u64(b, k == 1 ? ne1 : 1);
    gb_u32(b, type);
    gb_u64(b, offset);
}

static void test_gguf_structure(void **state) {
    (void)state;
    const char *dir = tmpdir("mf-gguf");
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    gbuf b = {0};
    static const unsigned char zeros[4096];

    gb_header(&b, 1, 0, 0);
    expect("GGUF version 1", load_bytes(d, &b), OC_ERR_UNSUPPORTED, "t.gguf", "version 1");
    gb_header(&b, 0x03000000, 0, 0);
    expect("GGUF big-endian", load_bytes(d, &b), OC_ERR_UNSUPPORTED, "t.gguf", "big-endian");
    gb_header(&b, 9, 0, 0);
    expect("GGUF version 9", load_bytes(d, &b), OC_ERR_UNSUPPORTED, "t.gguf", "version 9");
    b.n = 0;
    gb_put(&b, "GGUF\3\0", 6);
    expect("GGUF cut in the header", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf", "truncated");
    gb_header(&b, 3, 0, (uint64_t)1 << 60);
    gb_put(&b, zeros, 64);
    expect("GGUF 2^60 key-value pairs", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf",
           "more than");
    gb_header(&b, 3, UINT64_MAX, 1);
    gb_put(&b, zeros, 64);
    expect("GGUF 2^64-1 tensors", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf", "more than");

    /* keys */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_MAX - 3); /* a key length that wraps a 64-bit sum */
    gb_put(&b, zeros, 32);
    expect("GGUF key length 2^64-4", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf",
           "past the end");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.name");
    gb_u32(&b, OC_GGUF_STRING);
    gb_u64(&b, (uint64_t)1 << 40);
    gb_put(&b, zeros, 32);
    expect("GGUF string length 2^40", load_bytes(d, &b), OC_ERR_FORMAT, "general.name",
           "past the end");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "tokenizer.ggml.token_type");
    gb_u32(&b, OC_GGUF_ARRAY);
    gb_u32(&b, OC_GGUF_I32);
    gb_u64(&b, (uint64_t)1 << 62); /* * 4 overflows */
    gb_put(&b, zeros, 32);
    expect("GGUF array of 2^62 i32", load_bytes(d, &b), OC_ERR_FORMAT, "token_type",
           "cannot fit");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, OC_GGUF_ARRAY);
    gb_u32(&b, OC_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "a");
    gb_u64(&b, 1000);
    gb_put(&b, zeros, 16);
    expect("GGUF array string past the end", load_bytes(d, &b), OC_ERR_FORMAT,
           "tokenizer.ggml.tokens", "past the end");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, OC_GGUF_ARRAY);
    gb_u32(&b, OC_GGUF_ARRAY);
    gb_u64(&b, 1);
    gb_put(&b, zeros, 32);
    expect("GGUF array of arrays", load_bytes(d, &b), OC_ERR_UNSUPPORTED, "t.gguf", "arrays");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "x");
    gb_u32(&b, 99);
    gb_put(&b, zeros, 32);
    expect("GGUF value type 99", load_bytes(d, &b), OC_ERR_FORMAT, "'x'", "type 99");
    gb_header(&b, 3, 0, 2);
    for (int i = 0; i < 2; i++) {
        gb_str(&b, "general.alignment");
        gb_u32(&b, OC_GGUF_U32);
        gb_u32(&b, 32);
    }
    expect("GGUF key twice", load_bytes(d, &b), OC_ERR_FORMAT, "general.alignment", "twice");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.alignment");
    gb_u32(&b, OC_GGUF_U32);
    gb_u32(&b, 24);
    expect("GGUF alignment 24", load_bytes(d, &b), OC_ERR_FORMAT, "alignment",
           "power of two");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.alignment");
    gb_u32(&b, OC_GGUF_BOOL);
    gb_put(&b, "\x07", 1);
    expect("GGUF bool of value 7", load_bytes(d, &b), OC_ERR_FORMAT, "general.alignment",
           "bool");

    /* tensor infos */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 5, 4, 4, OC_GGML_F32, 0);
    expect("GGUF tensor of 5 dims", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "5 dimensions");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 2, 0, 4, OC_GGML_F32, 0);
    expect("GGUF dimension 0", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "dimension 0");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 2, (uint64_t)1 << 40, (uint64_t)1 << 40, OC_GGML_F32, 0);
    gb_put(&b, zeros, 64);
    expect("GGUF dims whose product overflows", load_bytes(d, &b), OC_ERR_FORMAT,
           "token_embd.weight", "overflow");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 1, 256, 0, 99, 0);
    expect("GGUF ggml type 99", load_bytes(d, &b), OC_ERR_UNSUPPORTED, "token_embd.weight",
           "type 99");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 2, 33, 2, OC_GGML_Q4_0, 0);
    expect("GGUF Q4_0 row of 33", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "blocks");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 1, 8, 0, OC_GGML_F32, 4);
    gb_pad(&b, 32);
    gb_put(&b, zeros, 64);
    expect("GGUF offset not aligned", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "alignment");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 1, 64, 0, OC_GGML_F32, 0);
    gb_pad(&b, 32);
    gb_put(&b, zeros, 100);
    expect("GGUF tensor past the end", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "past the end");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "token_embd.weight", 1, 8, 0, OC_GGML_F32, UINT64_MAX - 31);
    gb_pad(&b, 32);
    gb_put(&b, zeros, 64);
    expect("GGUF offset 2^64-32", load_bytes(d, &b), OC_ERR_FORMAT, "token_embd.weight",
           "past the end");
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "a", 1, 16, 0, OC_GGML_F32, 0);
    gb_tensor(&b, "b", 1, 16, 0, OC_GGML_F32, 32);
    gb_pad(&b, 32);
    gb_put(&b, zeros, 128);
    expect("GGUF tensors overlap", load_bytes(d, &b), OC_ERR_FORMAT, "overlap", NULL);
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "a", 1, 8, 0, OC_GGML_F32, 0);
    gb_tensor(&b, "a", 1, 8, 0, OC_GGML_F32, 32);
    gb_pad(&b, 32);
    gb_put(&b, zeros, 128);
    expect("GGUF tensor name twice", load_bytes(d, &b), OC_ERR_FORMAT, "'a'", "twice");
    gb_header(&b, 3, 1, 0);
    gb_str(&b, "");
    gb_put(&b, zeros, 64);
    expect("GGUF empty tensor name", load_bytes(d, &b), OC_ERR_FORMAT, "empty name", NULL);

    /* a real file cut short */
    size_t n;
    char *real = slurp(td(SMOL_TEXT), &n);
    b.n = 0;
    gb_put(&b, real, n / 2);
    expect("GGUF text model cut in half", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf",
           "past the end");
    b.n = 0;
    gb_put(&b, real, 3000);
    expect("GGUF cut in the token list", load_bytes(d, &b), OC_ERR_FORMAT, "t.gguf",
           "tokenizer.ggml.tokens");
    oc_free(real);
    free(b.d);
}

static void test_gguf_metadata(void **state) {
    (void)state;
    const char *tmp = tmpdir("mf-ggmeta");
    char d[512];
    snprintf(d, sizeof d, "%s", tmp);
    char mm[1024]; /* td's buffers are reused */
    snprintf(mm, sizeof mm, "%s", td(SMOL_MMPROJ));
    struct {
        const char *what;
        gguf_edit e;
        int status;
        const char *s1, *s2;
    } cases[] = {
        {"GGUF no block_count", {.key = "llama.block_count", .drop = 1}, OC_ERR_FORMAT,
         "llama.block_count", "missing"},
        {"GGUF block_count 0", {.key = "llama.block_count", .u32 = 0}, OC_ERR_FORMAT,
         "llama.block_count", "outside"},
        {"GGUF block_count 3 (file has 2)", {.key = "llama.block_count", .u32 = 3},
         OC_ERR_FORMAT, "layers.2.", "no tensor"},
        {"GGUF head_count 5 (64 wide)", {.key = "llama.attention.head_count", .u32 = 5},
         OC_ERR_FORMAT, "t.gguf", NULL},
        {"GGUF block_count as a string",
         {.key = "llama.block_count", .is_str = 1, .str = "2"}, OC_ERR_FORMAT,
         "llama.block_count", "string"},
        {"GGUF architecture qwen2",
         {.key = "general.architecture", .is_str = 1, .str = "qwen2"}, OC_ERR_UNSUPPORTED,
         "qwen2", NULL},
        {"GGUF rope scaling yarn",
         {.key = "llama.rope.scaling.type", .is_str = 1, .str = "yarn"}, OC_ERR_UNSUPPORTED,
         "yarn", NULL},
        {"GGUF vocab_size 361 for 360 tokens", {.key = "llama.vocab_size", .u32 = 361},
         OC_ERR_FORMAT, "vocab_size", NULL},
        {"GGUF tokenizer model bert",
         {.key = "tokenizer.ggml.model", .is_str = 1, .str = "bert"}, OC_ERR_UNSUPPORTED,
         "bert", NULL},
        {"GGUF tokenizer pre unknown",
         {.key = "tokenizer.ggml.pre", .is_str = 1, .str = "martian"}, OC_ERR_UNSUPPORTED,
         "martian", NULL},
        {"GGUF no merges", {.key = "tokenizer.ggml.merges", .drop = 1}, OC_ERR_FORMAT,
         "tokenizer.ggml.merges", NULL},
        {"GGUF bos id 999", {.key = "tokenizer.ggml.bos_token_id", .u32 = 999}, OC_ERR_FORMAT,
         "bos_token_id", NULL},
        {"GGUF no token list", {.key = "tokenizer.ggml.tokens", .drop = 1}, OC_ERR_FORMAT,
         "tokenizer.ggml.tokens", NULL},
        {"GGUF attn_q of 64 x 48", {.tensor = "blk.0.attn_q.weight", .ne0 = 64, .ne1 = 48},
         OC_ERR_FORMAT, "q_proj", "shape"},
        {"GGUF token_embd of 64 x 100", {.tensor = "token_embd.weight", .ne0 = 64, .ne1 = 100},
         OC_ERR_FORMAT, "embed_tokens", "shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = gguf_rewrite(SMOL_TEXT, &cases[i].e, d, "t.gguf");
        expect(cases[i].what, load_gguf_pair(p, mm), cases[i].status, cases[i].s1,
               cases[i].s2);
    }
    /* the mmproj's */
    struct {
        const char *what;
        gguf_edit e;
        int status;
        const char *s1, *s2;
    } mcases[] = {
        {"mmproj projector ldp",
         {.key = "clip.projector_type", .is_str = 1, .str = "ldp"}, OC_ERR_UNSUPPORTED, "ldp",
         NULL},
        {"mmproj no image_mean", {.key = "clip.vision.image_mean", .drop = 1}, OC_ERR_FORMAT,
         "image_mean", NULL},
        {"mmproj image_size 60 (patch 8)", {.key = "clip.vision.image_size", .u32 = 60},
         OC_ERR_FORMAT, "image_size", NULL},
        {"mmproj patch_size 0", {.key = "clip.vision.patch_size", .u32 = 0}, OC_ERR_FORMAT,
         "patch_size", NULL},
        {"mmproj as the text model", {.key = NULL}, OC_ERR_INVALID_ARG, "mmproj", NULL},
    };
    for (size_t i = 0; i < sizeof mcases / sizeof mcases[0]; i++) {
        const char *p = gguf_rewrite(SMOL_MMPROJ, &mcases[i].e, d, "m.gguf");
        char text[1024];
        snprintf(text, sizeof text, "%s", td(SMOL_TEXT));
        oc_status s = mcases[i].e.key ? load_gguf_pair(text, p) : load_gguf_pair(p, text);
        expect(mcases[i].what, s, mcases[i].status, mcases[i].s1, mcases[i].s2);
    }
    /* a text GGUF alone, with no mmproj beside it */
    const char *p = gguf_rewrite(SMOL_TEXT, &(gguf_edit){0}, d, "t.gguf");
    unlink(pj(d, "m.gguf"));
    expect("GGUF without an mmproj", load_gguf_pair(p, NULL), OC_ERR_IO, "--mmproj", NULL);
    /* the same file unchanged loads and answers (the rewriter is faithful) */
    expect("GGUF rewritten unchanged", load_gguf_pair(p, mm), OC_OK, NULL, NULL);
}

int main(void) {
    const struct CMUnitTest load_tests[] = {
        cmocka_unit_test(test_truncated_weights),
        cmocka_unit_test(test_bad_offsets),
        cmocka_unit_test(test_wrong_dtype_and_shape),
        cmocka_unit_test(test_nonfinite_weights),
        cmocka_unit_test(test_shard_index),
        cmocka_unit_test(test_configs),
        cmocka_unit_test(test_tokenizer_files),
        cmocka_unit_test(test_processor_files),
        cmocka_unit_test(test_gguf_structure),
        cmocka_unit_test(test_gguf_metadata),
    };
    const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_prompts),
    };
    int fails = cmocka_run_group_tests_name("malformed model folders", load_tests, NULL, NULL);
    fails += cmocka_run_group_tests_name("malformed images and prompts", model_tests, setup,
                                         teardown);
    char cmd[128]; /* the copies made by model_copy and tmpdir */
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/oc-test-mf-*-%ld", (long)getpid());
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove the test folders\n");
    return fails;
}
