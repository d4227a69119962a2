/* Image preprocessing against transformers' PIL processors, and PIL-compatible
 * resampling against PIL itself:
 *  - every reference case of smolvlm-tiny (SmolVLMImageProcessorPil) and llava-tiny
 *    (CLIPImageProcessorPil), made by transformers 5.17;
 *  - resample/goldens.safetensors: Image.resize for every filter, up, down, 1xN, tall
 *    (tests/data/resample/make.py);
 *  - preprocess/edges.safetensors: 1x1, 1x10000, 10000x1, tall and wide images through
 *    small processor configs (tests/data/preprocess/make.py, checked there against the
 *    references);
 *  - the tile limit, configuration parsing, allocation failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "preprocess.h"
#include "testutil.h"

/* The tolerances the project promises: SmolVLM within 2/255 of PIL's pixel values
 * before normalisation (std 0.5), CLIP within 0.02. A faithful port gives ~1e-7. */
#define SMOL_TOL (2.0 / 255.0 / 0.5)
#define CLIP_TOL 0.02

static cJSON *load_json(const char *rel) {
    cJSON *j = NULL;
    if (oc_json_load(td(rel), 1 << 20, &j) != OC_OK)
        fail_msg("%s", oc_last_error());
    return j;
}

static oc_image *load_image(const char *rel) {
    oc_image *img = NULL;
    if (oc_image_load(td(rel), NULL, &img) != OC_OK)
        fail_msg("%s", oc_last_error());
    return img;
}

static oc_idefics3_proc smol_proc(const char *rel) {
    cJSON *j = load_json(rel);
    oc_idefics3_proc p;
    if (oc_idefics3_proc_from_json(j, rel, &p) != OC_OK)
        fail_msg("%s", oc_last_error());
    cJSON_Delete(j);
    return p;
}

static oc_clip_proc clip_proc(const char *rel) {
    cJSON *j = load_json(rel);
    oc_clip_proc p;
    if (oc_clip_proc_from_json(j, rel, &p) != OC_OK)
        fail_msg("%s", oc_last_error());
    cJSON_Delete(j);
    return p;
}

/* ---- the references -------------------------------------------------------------- */

static void test_smolvlm_references(void **state) {
    (void)state;
    oc_idefics3_proc p = smol_proc("smolvlm-tiny/preprocessor_config.json");
    assert_int_equal(p.longest_edge, 192);
    assert_int_equal(p.tile, 64);
    assert_int_equal(p.resample, OC_RESAMPLE_LANCZOS);
    cJSON *ref = load_json("smolvlm-tiny/reference.json");
    const cJSON *cases = oc_json_get(ref, "cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 3);
    int i = 0;
    cJSON_ArrayForEach(c, cases) {
        char rel[256];
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetStringValue(oc_json_get(c, "image")));
        oc_image *img = load_image(rel);
        float *px = NULL;
        uint32_t n, rows, cols;
        assert_int_equal(oc_idefics3_preprocess(&p, img, 64, &px, &n, &rows, &cols), OC_OK);
        assert_int_equal(rows, (uint32_t)oc_json_get(c, "rows")->valueint);
        assert_int_equal(cols, (uint32_t)oc_json_get(c, "cols")->valueint);
        assert_int_equal(n, (uint32_t)oc_json_get(c, "n_tiles")->valueint);

        snprintf(rel, sizeof rel, "smolvlm-tiny/%s",
                 cJSON_GetStringValue(oc_json_get(c, "tensors")));
        size_t nref;
        float *want = load_f32(td(rel), "pixel_values.SmolVLMImageProcessorPil", &nref);
        assert_int_equal(nref, (size_t)n * 3 * 64 * 64);
        double d = max_abs_diff(px, want, nref);
        printf("smolvlm-tiny case %d (%s, %u x %u tiles + 1): max |diff| = %.3g\n", i,
               cJSON_GetStringValue(oc_json_get(c, "image")), rows, cols, d);
        assert_true(d <= SMOL_TOL);
        free(want);
        oc_free(px);
        oc_image_free(img);
        i++;
    }
    cJSON_Delete(ref);
}

static void test_clip_references(void **state) {
    (void)state;
    oc_clip_proc p = clip_proc("llava-tiny/preprocessor_config.json");
    assert_int_equal(p.shortest_edge, 32);
    assert_int_equal(p.crop_h, 32);
    assert_int_equal(p.crop_w, 32);
    assert_int_equal(p.resample, OC_RESAMPLE_BICUBIC);
    cJSON *ref = load_json("llava-tiny/reference.json");
    const cJSON *cases = oc_json_get(ref, "cases"), *c;
    assert_true(cJSON_GetArraySize(cases) >= 2);
    int i = 0;
    cJSON_ArrayForEach(c, cases) {
        char rel[256];
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetStringValue(oc_json_get(c, "image")));
        oc_image *img = load_image(rel);
        float *px = NULL;
        assert_int_equal(oc_clip_preprocess(&p, img, &px), OC_OK);
        snprintf(rel, sizeof rel, "llava-tiny/%s",
                 cJSON_GetStringValue(oc_json_get(c, "tensors")));
        size_t nref;
        float *want = load_f32(td(rel), "pixel_values", &nref);
        assert_int_equal(nref, (size_t)3 * 32 * 32);
        double d = max_abs_diff(px, want, nref);
        printf("llava-tiny case %d (%s): max |diff| = %.3g\n", i,
               cJSON_GetStringValue(oc_json_get(c, "image")), d);
        assert_true(d <= CLIP_TOL);
        free(want);
        oc_free(px);
        oc_image_free(img);
        i++;
    }
    cJSON_Delete(ref);
}

/* ---- resampling against PIL ------------------------------------------------------- */

static const char *filter_names[] = {"NEAREST", "LANCZOS", "BILINEAR",
                                     "BICUBIC", "BOX",     "HAMMING"};

static void test_resample_goldens(void **state) {
    (void)state;
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("resample/goldens.safetensors"), &f), OC_OK);
    int checked[6] = {0}, up[6] = {0}, down[6] = {0};
    for (size_t i = 0; i < oc_st_count(f); i++) {
        const oc_st_tensor *t = oc_st_at(f, i);
        char src_name[64];
        int filter, dw, dh;
        if (sscanf(t->name, "out.%63[^.].%d.%dx%d", src_name, &filter, &dw, &dh) != 4)
            continue;
        char key[80];
        snprintf(key, sizeof key, "src.%s", src_name);
        const oc_st_tensor *s = oc_st_find(f, key);
        assert_non_null(s);
        assert_int_equal(s->dtype, OC_DT_U8);
        int sw = (int)s->shape[1], sh = (int)s->shape[0];
        assert_int_equal(t->shape[0], dh);
        assert_int_equal(t->shape[1], dw);
        uint8_t *out = malloc((size_t)dw * dh * 3);
        assert_int_equal(oc_resize_rgb8(out, (uint32_t)dw, (uint32_t)dh, s->data,
                                        (uint32_t)sw, (uint32_t)sh, (oc_resample)filter),
                         OC_OK);
        size_t bad = 0;
        for (size_t k = 0; k < t->nbytes; k++)
            bad += out[k] != ((const uint8_t *)t->data)[k];
        if (bad)
            fail_msg("%s: %zu bytes differ from PIL", t->name, bad);
        checked[filter]++;
        up[filter] += dw > sw || dh > sh;
        down[filter] += dw < sw || dh < sh;
        free(out);
    }
    for (int k = 0; k < 6; k++) {
        printf("resample %-8s: %d goldens equal to PIL (%d enlarge, %d shrink)\n",
               filter_names[k], checked[k], up[k], down[k]);
        assert_true(checked[k] >= 15 && up[k] > 0 && down[k] > 0);
    }
    oc_st_close(f);
}

/* A window of a resize is the same bytes as the crop of the whole resize. */
static void test_resample_window(void **state) {
    (void)state;
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("resample/goldens.safetensors"), &f), OC_OK);
    const char *srcs[] = {"src.noise", "src.tall", "src.column"};
    const uint32_t sizes[][2] = {{61, 41}, {2, 50}, {5, 50}};
    for (int si = 0; si < 3; si++) {
        const oc_st_tensor *s = oc_st_find(f, srcs[si]);
        uint32_t sw = (uint32_t)s->shape[1], sh = (uint32_t)s->shape[0];
        uint32_t dw = sizes[si][0], dh = sizes[si][1];
        uint8_t *full = malloc((size_t)dw * dh * 3), *win = malloc((size_t)dw * dh * 3);
        for (int filter = 0; filter < 6; filter++) {
            assert_int_equal(oc_resize_rgb8(full, dw, dh, s->data, sw, sh, filter), OC_OK);
            for (uint32_t trial = 0; trial < 20; trial++) {
                uint32_t x0 = (trial * 7) % dw, y0 = (trial * 13) % dh;
                uint32_t cw = 1 + (trial * 5) % (dw - x0), ch = 1 + (trial * 3) % (dh - y0);
                assert_int_equal(oc_resize_rgb8_window(win, dw, dh, x0, y0, cw, ch, s->data,
                                                       sw, sh, filter),
                                 OC_OK);
                for (uint32_t y = 0; y < ch; y++)
                    assert_memory_equal(win + (size_t)y * cw * 3,
                                        full + ((size_t)(y0 + y) * dw + x0) * 3,
                                        (size_t)cw * 3);
            }
        }
        free(full);
        free(win);
    }
    oc_st_close(f);
}

static void test_resample_bad_args(void **state) {
    (void)state;
    uint8_t src[12] = {0}, dst[12];
    assert_int_equal(oc_resize_rgb8(dst, 0, 1, src, 2, 2, OC_RESAMPLE_BICUBIC),
                     OC_ERR_INVALID_ARG);
    assert_int_equal(oc_resize_rgb8(dst, 2, 2, src, 2, 2, (oc_resample)9), OC_ERR_INVALID_ARG);
    assert_int_equal(oc_resize_rgb8_window(dst, 2, 2, 1, 0, 2, 1, src, 2, 2, 1),
                     OC_ERR_INVALID_ARG);
    assert_int_equal(oc_resize_rgb8(NULL, 2, 2, src, 2, 2, 1), OC_ERR_INVALID_ARG);
    /* identity: a copy */
    for (int k = 0; k < 12; k++)
        src[k] = (uint8_t)(k * 20);
    assert_int_equal(oc_resize_rgb8(dst, 2, 2, src, 2, 2, OC_RESAMPLE_LANCZOS), OC_OK);
    assert_memory_equal(dst, src, 12);
}

/* ---- edge cases against the Python port of the processors ---------------------------- */

/* The source image of tests/data/preprocess/make.py. */
static oc_image *edge_source(uint32_t w, uint32_t h) {
    oc_image *img;
    assert_int_equal(oc_image_alloc(w, h, &img), OC_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < 3; c++)
                img->rgb[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)((x * 131 + y * 71 + c * 29 + ((x * y) % 11) * 17) & 255);
    return img;
}

static const uint32_t edge_sizes[][2] = {{1, 1},  {1, 10000}, {10000, 1}, {3, 1000},
                                         {7, 900}, {640, 20},  {5, 3}};
#define N_EDGES (sizeof edge_sizes / sizeof edge_sizes[0])

/* Outputs of a processor that neither rescales nor normalises are the bytes themselves. */
static void expect_bytes(const oc_st_file *f, const char *name, const float *px, size_t n) {
    const oc_st_tensor *t = oc_st_find(f, name);
    if (!t)
        fail_msg("edges.safetensors: no %s", name);
    assert_int_equal(t->numel, n);
    for (size_t i = 0; i < n; i++)
        if (px[i] != (float)((const uint8_t *)t->data)[i])
            fail_msg("%s: value %zu is %g, transformers gives %d", name, i, px[i],
                     ((const uint8_t *)t->data)[i]);
}

static void test_edges_smolvlm(void **state) {
    (void)state;
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("preprocess/edges.safetensors"), &f), OC_OK);
    cJSON *meta = load_json("preprocess/edges.json");
    oc_idefics3_proc small = smol_proc("preprocess/smol_edges.json");
    oc_idefics3_proc nosplit = small;
    nosplit.do_split = 0;
    oc_idefics3_proc real = smol_proc("smolvlm-tiny/preprocessor_config.json");
    for (size_t e = 0; e < N_EDGES; e++) {
        uint32_t w = edge_sizes[e][0], h = edge_sizes[e][1];
        oc_image *img = edge_source(w, h);
        char name[64];
        float *px;
        uint32_t n, rows, cols;

        assert_int_equal(oc_idefics3_preprocess(&small, img, 64, &px, &n, &rows, &cols), OC_OK);
        snprintf(name, sizeof name, "smol.%ux%u", w, h);
        const cJSON *rc = oc_json_get(meta, name);
        assert_int_equal(rows, (uint32_t)cJSON_GetArrayItem(rc, 0)->valueint);
        assert_int_equal(cols, (uint32_t)cJSON_GetArrayItem(rc, 1)->valueint);
        assert_int_equal(n, rows * cols + 1);
        expect_bytes(f, name, px, (size_t)n * 3 * 16 * 16);
        oc_free(px);

        assert_int_equal(oc_idefics3_preprocess(&nosplit, img, 64, &px, &n, &rows, &cols),
                         OC_OK);
        assert_int_equal(n, 1);
        assert_int_equal(rows, 0);
        assert_int_equal(cols, 0);
        snprintf(name, sizeof name, "smol_nosplit.%ux%u", w, h);
        expect_bytes(f, name, px, (size_t)3 * 16 * 16);
        oc_free(px);

        /* the real processor: its tile layout, finite values in [-1, 1] */
        assert_int_equal(oc_idefics3_preprocess(&real, img, 64, &px, &n, &rows, &cols), OC_OK);
        snprintf(name, sizeof name, "smolvlm-tiny.%ux%u", w, h);
        rc = oc_json_get(meta, name);
        assert_int_equal(rows, (uint32_t)cJSON_GetArrayItem(rc, 0)->valueint);
        assert_int_equal(cols, (uint32_t)cJSON_GetArrayItem(rc, 1)->valueint);
        for (size_t i = 0; i < (size_t)n * 3 * 64 * 64; i++)
            assert_true(px[i] >= -1.0f && px[i] <= 1.0f);
        oc_free(px);
        oc_image_free(img);
    }
    printf("smolvlm edge images: %zu sizes equal to transformers\n", N_EDGES);
    cJSON_Delete(meta);
    oc_st_close(f);
}

static void test_edges_clip(void **state) {
    (void)state;
    oc_st_file *f;
    assert_int_equal(oc_st_open(td("preprocess/edges.safetensors"), &f), OC_OK);
    oc_clip_proc small = clip_proc("preprocess/clip_edges.json");
    oc_clip_proc pad = clip_proc("preprocess/clip_pad.json");
    oc_clip_proc real = clip_proc("llava-tiny/preprocessor_config.json");
    assert_int_equal(small.crop_h, 10);
    assert_int_equal(small.crop_w, 8);
    for (size_t e = 0; e < N_EDGES; e++) {
        uint32_t w = edge_sizes[e][0], h = edge_sizes[e][1];
        oc_image *img = edge_source(w, h);
        char name[64];
        float *px;
        assert_int_equal(oc_clip_preprocess(&small, img, &px), OC_OK);
        snprintf(name, sizeof name, "clip.%ux%u", w, h);
        expect_bytes(f, name, px, 3 * 10 * 8);
        oc_free(px);
        assert_int_equal(oc_clip_preprocess(&pad, img, &px), OC_OK);
        snprintf(name, sizeof name, "clip_pad.%ux%u", w, h);
        expect_bytes(f, name, px, 3 * 9 * 7);
        oc_free(px);
        /* the real processor: 1x10000 becomes 32 x 320000 before the crop */
        assert_int_equal(oc_clip_preprocess(&real, img, &px), OC_OK);
        for (size_t i = 0; i < 3 * 32 * 32; i++)
            assert_true(isfinite(px[i]) && fabsf(px[i]) < 3.0f);
        oc_free(px);
        oc_image_free(img);
    }
    printf("clip edge images: %zu sizes equal to transformers (crop inside and padded)\n",
           N_EDGES);
    oc_st_close(f);
}

/* ---- limits, configuration, failures ----------------------------------------------- */

static void test_tile_limit(void **state) {
    (void)state;
    oc_idefics3_proc p = smol_proc("smolvlm-tiny/preprocessor_config.json");
    oc_image *img = load_image("images/shapes_200x130.png"); /* 2 x 3 tiles + 1 */
    float *px = NULL;
    uint32_t n = 99, rows = 99, cols = 99;
    assert_int_equal(oc_idefics3_preprocess(&p, img, 6, &px, &n, &rows, &cols), OC_ERR_LIMIT);
    assert_null(px);
    assert_int_equal(n, 99); /* outputs untouched on failure */
    assert_non_null(strstr(oc_last_error(), "7 tiles"));
    assert_int_equal(oc_idefics3_preprocess(&p, img, 7, &px, &n, &rows, &cols), OC_OK);
    assert_int_equal(n, 7);
    oc_free(px);
    /* without splitting there is one tile */
    p.do_split = 0;
    assert_int_equal(oc_idefics3_preprocess(&p, img, 1, &px, &n, &rows, &cols), OC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows, 0);
    oc_free(px);
    assert_int_equal(oc_idefics3_preprocess(&p, img, 0, &px, &n, &rows, &cols), OC_ERR_LIMIT);
    /* a large image without the first resize: refused before any work */
    p.do_split = 1;
    p.do_resize = 0;
    oc_image *big;
    assert_int_equal(oc_image_alloc(4000, 3000, &big), OC_OK);
    oc_alloc_fail_at(0); /* restarts the allocation count */
    assert_int_equal(oc_idefics3_preprocess(&p, big, 64, &px, &n, &rows, &cols), OC_ERR_LIMIT);
    assert_int_equal(oc_alloc_fail_at(0), 0); /* nothing was allocated */
    oc_image_free(big);
    oc_image_free(img);
}

static oc_status parse_smol(const char *text, oc_idefics3_proc *p) {
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    oc_status s = oc_idefics3_proc_from_json(j, "cfg.json", p);
    cJSON_Delete(j);
    return s;
}

static oc_status parse_clip(const char *text, oc_clip_proc *p) {
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    oc_status s = oc_clip_proc_from_json(j, "cfg.json", p);
    cJSON_Delete(j);
    return s;
}

static void test_config_parsing(void **state) {
    (void)state;
    oc_idefics3_proc s;
    assert_int_equal(parse_smol("{}", &s), OC_OK); /* SmolVLM / Idefics3 defaults */
    assert_int_equal(s.longest_edge, 4 * 364);
    assert_int_equal(s.tile, 364);
    assert_true(s.do_resize && s.do_split && s.do_rescale && s.do_normalize);
    assert_int_equal(s.resample, OC_RESAMPLE_LANCZOS);
    assert_true(s.mean[1] == 0.5f && s.std[2] == 0.5f);
    assert_true(s.rescale_factor == 1.0 / 255.0);
    assert_int_equal(parse_smol("{\"image_mean\": 0.25, \"resample\": 3}", &s), OC_OK);
    assert_true(s.mean[0] == 0.25f && s.mean[2] == 0.25f);
    assert_int_equal(s.resample, OC_RESAMPLE_BICUBIC);
    assert_int_equal(parse_smol("{\"resample\": 9}", &s), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "cfg.json"));
    assert_int_equal(parse_smol("{\"image_std\": [0.5, 0, 0.5]}", &s), OC_ERR_FORMAT);
    assert_int_equal(parse_smol("{\"image_std\": [0.5, 0.5]}", &s), OC_ERR_FORMAT);
    assert_int_equal(parse_smol("{\"size\": {\"height\": 3, \"width\": 4}}", &s),
                     OC_ERR_UNSUPPORTED);
    assert_int_equal(parse_smol("{\"max_image_size\": {\"longest_edge\": 0}}", &s),
                     OC_ERR_FORMAT);
    assert_int_equal(parse_smol("[]", &s), OC_ERR_FORMAT);

    oc_clip_proc c;
    assert_int_equal(parse_clip("{}", &c), OC_OK); /* CLIP defaults */
    assert_int_equal(c.shortest_edge, 224);
    assert_int_equal(c.crop_h, 224);
    assert_int_equal(c.crop_w, 224);
    assert_int_equal(c.resample, OC_RESAMPLE_BICUBIC);
    assert_true(c.mean[0] == 0.48145466f && c.std[2] == 0.27577711f);
    /* older configs: plain integers */
    assert_int_equal(parse_clip("{\"size\": 336, \"crop_size\": 336}", &c), OC_OK);
    assert_int_equal(c.shortest_edge, 336);
    assert_int_equal(c.crop_h, 336);
    assert_int_equal(c.crop_w, 336);
    assert_int_equal(parse_clip("{\"crop_size\": {\"height\": 20, \"width\": 30}}", &c), OC_OK);
    assert_int_equal(c.crop_h, 20);
    assert_int_equal(c.crop_w, 30);
    assert_int_equal(parse_clip("{\"size\": \"big\"}", &c), OC_ERR_FORMAT);
}

/* Without a center crop, the output must already be the model's size. */
static void test_clip_without_crop(void **state) {
    (void)state;
    oc_clip_proc c;
    assert_int_equal(parse_clip("{\"size\": {\"shortest_edge\": 8}, \"do_center_crop\": false,"
                                "\"crop_size\": 8}", &c), OC_OK);
    oc_image *img = edge_source(8, 8);
    float *px;
    assert_int_equal(oc_clip_preprocess(&c, img, &px), OC_OK);
    oc_free(px);
    oc_image_free(img);
    img = edge_source(16, 8);
    assert_int_equal(oc_clip_preprocess(&c, img, &px), OC_ERR_UNSUPPORTED);
    oc_image_free(img);
}

/* Every allocation may fail: the call then fails cleanly (ASan builds check leaks). */
static void test_allocation_failures(void **state) {
    (void)state;
    oc_idefics3_proc p = smol_proc("smolvlm-tiny/preprocessor_config.json");
    oc_clip_proc c = clip_proc("llava-tiny/preprocessor_config.json");
    oc_image *img = edge_source(40, 26);
    int ok_smol = 0, ok_clip = 0;
    for (long k = 1; k < 200 && !(ok_smol && ok_clip); k++) {
        float *px = NULL;
        uint32_t n, rows, cols;
        if (!ok_smol) {
            oc_alloc_fail_at(k);
            oc_status s = oc_idefics3_preprocess(&p, img, 64, &px, &n, &rows, &cols);
            oc_alloc_fail_at(0);
            assert_true(s == OC_OK || s == OC_ERR_NOMEM);
            ok_smol = s == OC_OK;
            oc_free(px);
            px = NULL;
        }
        if (!ok_clip) {
            oc_alloc_fail_at(k);
            oc_status s = oc_clip_preprocess(&c, img, &px);
            oc_alloc_fail_at(0);
            assert_true(s == OC_OK || s == OC_ERR_NOMEM);
            ok_clip = s == OC_OK;
            oc_free(px);
        }
    }
    assert_true(ok_smol && ok_clip);
    oc_image_free(img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smolvlm_references),
        cmocka_unit_test(test_clip_references),
        cmocka_unit_test(test_resample_goldens),
        cmocka_unit_test(test_resample_window),
        cmocka_unit_test(test_resample_bad_args),
        cmocka_unit_test(test_edges_smolvlm),
        cmocka_unit_test(test_edges_clip),
        cmocka_unit_test(test_tile_limit),
        cmocka_unit_test(test_config_parsing),
        cmocka_unit_test(test_clip_without_crop),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
