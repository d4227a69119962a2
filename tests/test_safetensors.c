/* safetensors reader/writer: real files, round trips, shards, malformed headers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "safetensors.h"
#include "testutil.h"

static void test_reads_reference_model(void **state) {
    (void)state;
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("smolvlm-tiny/model.safetensors"), &f), OC_OK);
    const oc_st_tensor *t = oc_st_find(f, "model.text_model.embed_tokens.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, OC_DT_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 360);
    assert_int_equal(t->shape[1], 64);
    assert_null(oc_st_find(f, "lm_head.weight"));
    oc_st_close(f);

    /* BF16 converts exactly: every value has an exact float. */
    assert_int_equal(oc_st_open(td("llava-tiny/model.safetensors"), &f), OC_OK);
    t = oc_st_find(f, "multi_modal_projector.linear_1.bias");
    assert_non_null(t);
    assert_int_equal(t->dtype, OC_DT_BF16);
    float x[48];
    assert_int_equal(oc_st_to_f32(t, x, 48), OC_OK);
    for (int i = 0; i < 48; i++) {
        assert_true(isfinite(x[i]));
        assert_int_equal(oc_f32_to_bf16(x[i]), ((const uint16_t *)t->data)[i]);
    }
    oc_st_close(f);
}

static void test_half_conversions(void **state) {
    (void)state;
    float vals[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f,
                    3.14159f, 1e-3f, 70000.0f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float h = oc_f16_to_f32(oc_f32_to_f16(vals[i]));
        if (vals[i] > 65504.0f)
            assert_true(isinf(h));
        else
            assert_true(fabsf(h - vals[i]) <= fabsf(vals[i]) * 1e-3f);
        float b = oc_bf16_to_f32(oc_f32_to_bf16(vals[i]));
        assert_true(fabsf(b - vals[i]) <= fabsf(vals[i]) * 4e-3f);
    }
    /* round to nearest even at the halfway point: 1 + 2^-8 is halfway in bf16 */
    assert_int_equal(oc_f32_to_bf16(1.00390625f), 0x3f80);
    assert_int_equal(oc_f32_to_bf16(1.01171875f), 0x3f82);
}

static void test_writer_round_trip(void **state) {
    (void)state;
    const char *dir = tmpdir("st-rt");
    char path[512];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6.5f};
    int32_t ids[3] = {7, 8, 9};
    oc_st_writer *w;
    assert_int_equal(oc_st_writer_new(&w), OC_OK);
    assert_int_equal(oc_st_writer_add(w, "b.f32", OC_DT_F32, 2, (int64_t[]){2, 3}, a), OC_OK);
    assert_int_equal(oc_st_writer_add_f32_as(w, "a.bf16", OC_DT_BF16, 1, (int64_t[]){6}, a),
                     OC_OK);
    assert_int_equal(oc_st_writer_add_f32_as(w, "c.f16", OC_DT_F16, 1, (int64_t[]){6}, a),
                     OC_OK);
    assert_int_equal(oc_st_writer_add(w, "ids", OC_DT_I32, 1, (int64_t[]){3}, ids), OC_OK);
    assert_int_equal(oc_st_writer_save(w, path), OC_OK);
    oc_st_writer_free(w);

    oc_st_file *f;
    assert_int_equal(oc_st_open(path, &f), OC_OK);
    assert_int_equal(oc_st_count(f), 4);
    const char *names[] = {"b.f32", "a.bf16", "c.f16"};
    for (int k = 0; k < 3; k++) {
        const oc_st_tensor *t = oc_st_find(f, names[k]);
        assert_non_null(t);
        float back[6];
        assert_int_equal(oc_st_to_f32(t, back, 6), OC_OK);
        for (int i = 0; i < 6; i++)
            assert_true(back[i] == a[i]);
    }
    const oc_st_tensor *t = oc_st_find(f, "ids");
    assert_int_equal(t->dtype, OC_DT_I32);
    assert_memory_equal(t->data, ids, sizeof ids);
    float junk[3];
    assert_int_equal(oc_st_to_f32(t, junk, 3), OC_ERR_UNSUPPORTED);
    oc_st_close(f);
}

static void test_shards_with_index(void **state) {
    (void)state;
    const char *dir = tmpdir("st-shards");
    char p1[512], p2[512], idx[512];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    oc_st_writer *w;
    oc_st_writer_new(&w);
    oc_st_writer_add(w, "x", OC_DT_F32, 1, (int64_t[]){2}, a);
    assert_int_equal(oc_st_writer_save(w, p1), OC_OK);
    oc_st_writer_free(w);
    oc_st_writer_new(&w);
    oc_st_writer_add(w, "y", OC_DT_F32, 1, (int64_t[]){3}, b);
    assert_int_equal(oc_st_writer_save(w, p2), OC_OK);
    oc_st_writer_free(w);
    write_text(idx, "{\"metadata\":{},\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                    "\"y\":\"model-00002-of-00002.safetensors\"}}");
    oc_st_set *s;
    assert_int_equal(oc_st_set_open(dir, &s), OC_OK);
    assert_int_equal(oc_st_set_count(s), 2);
    assert_non_null(oc_st_set_find(s, "y"));
    assert_int_equal(oc_st_set_find(s, "y")->shape[0], 3);
    oc_st_set_close(s);

    /* an index naming a file outside the folder, or a tensor no shard has */
    write_text(idx, "{\"weight_map\":{\"x\":\"../evil.safetensors\"}}");
    assert_int_equal(oc_st_set_open(dir, &s), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "bad shard file name"));
    write_text(idx, "{\"weight_map\":{\"z\":\"model-00001-of-00002.safetensors\"}}");
    assert_int_equal(oc_st_set_open(dir, &s), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "'z' is in no shard"));
}

/* Writes an 8-byte length + header + data bytes and expects a format error. */
static void expect_bad(const char *dir, const char *header, size_t data_len, const char *why) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    size_t hl = strlen(header);
    unsigned char *buf = calloc(1, 8 + hl + data_len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    write_bytes(path, buf, 8 + hl + data_len);
    free(buf);
    oc_st_file *f = NULL;
    oc_status s = oc_st_open(path, &f);
    if (s != OC_ERR_FORMAT)
        fail_msg("header %s: status %s, expected format error", header, oc_status_str(s));
    if (!strstr(oc_last_error(), why) || !strstr(oc_last_error(), "bad.safetensors"))
        fail_msg("header %s: message '%s' lacks '%s'", header, oc_last_error(), why);
    assert_null(f);
}

static void test_malformed(void **state) {
    (void)state;
    const char *dir = tmpdir("st-bad");
    char path[512];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    write_bytes(path, "abc", 3);
    oc_st_file *f = NULL;
    assert_int_equal(oc_st_open(path, &f), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "too short"));

    /* header length larger than the file */
    snprintf(path, sizeof path, "%s/len.safetensors", dir);
    write_bytes(path, "\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10);
    assert_int_equal(oc_st_open(path, &f), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "header length"));

    expect_bad(dir, "{\"x\": ", 0, "invalid JSON");
    expect_bad(dir, "[1,2]", 0, "not a JSON object");
    expect_bad(dir, "{\"x\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype");
    expect_bad(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "past the end");
    expect_bad(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "8 bytes of data for 3 elements");
    expect_bad(dir,
               "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,0]}}",
               0, "overflows");
    expect_bad(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "bad dimension");
    expect_bad(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
               "bad data_offsets");
    expect_bad(dir, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
               "data_offsets must be");
    expect_bad(dir,
               "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, "at most 8");
    expect_bad(dir,
               "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "appears twice");

    assert_int_equal(oc_st_open("/nonexistent/model.safetensors", &f), OC_ERR_IO);
    assert_non_null(strstr(oc_last_error(), "/nonexistent/model.safetensors"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_reference_model),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_shards_with_index),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
