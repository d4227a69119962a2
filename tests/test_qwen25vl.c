/* Golden tests against transformers on the tiny Qwen2.5-VL reference model
 * (tests/data/qwen25vl-tiny: windowed ViT with 2D RoPE, patch merger, Qwen2 with M-RoPE),
 * and checks of what the reference does not pin: M-RoPE positions against a transcription
 * of transformers' get_rope_index, the KV cache against full recomputation, other window
 * and merge sizes, both config layouts, both tensor spellings, BF16 weights.
 *
 * The reference's logits were computed by calling the model without mm_token_type_ids, for
 * which transformers 5 gives every token the positions 0, 1, 2, ... (no M-RoPE); ocellus
 * reproduces them with the session's text_positions switch, and checks M-RoPE, what
 * transformers computes from its processor's inputs, against get_rope_index itself. */
#include "family_fixture.h"
#include "model_internal.h"
#include "positions.h"
#include "preprocess.h"

static int setup(void **state) {
    (void)state;
    return fx_setup("qwen25vl-tiny");
}

static int case_int(const cJSON *c, const char *key, int i) {
    const cJSON *v = cJSON_GetArrayItem(oc_json_get(c, key), i);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static const char *case_file(const cJSON *c) { return fx_case_file("qwen25vl-tiny", c); }

static oc_tile_layout case_layout(const cJSON *c) {
    return (oc_tile_layout){(uint32_t)case_int(c, "grid_thw", 1),
                            (uint32_t)case_int(c, "grid_thw", 2)};
}

/* smart_resize's branches, worked by hand from transformers' formula (factor 28). */
static void test_smart_resize(void **state) {
    (void)state;
    static const uint32_t cases[][6] = {
        /* h, w, min, max, want h, want w */
        {300, 451, 3136, 12544, 84, 112},        /* over max: floor(h / beta / 28) * 28 */
        {9, 17, 3136, 12544, 56, 84},            /* under min: ceil(h * beta / 28) * 28 */
        {42, 70, 1, 1u << 30, 56, 56},           /* round(1.5) = 2, round(2.5) = 2 */
        {1080, 1920, 3136, 12845056, 1092, 1932} /* within: round(h / 28) * 28 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t h, w;
        assert_int_equal(oc_qwen_smart_resize(cases[i][0], cases[i][1], 28, cases[i][2],
                                              cases[i][3], &h, &w),
                         OC_OK);
        assert_int_equal(h, cases[i][4]);
        assert_int_equal(w, cases[i][5]);
    }
    uint32_t h, w; /* an aspect ratio over 200, refused as transformers does */
    assert_int_equal(oc_qwen_smart_resize(1, 201, 28, 3136, 12544, &h, &w),
                     OC_ERR_UNSUPPORTED);
    assert_non_null(strstr(oc_last_error(), "200"));
}

/* The PIL processor's patches within 2/255 (in 8-bit levels: 2 / (255 * std) after
 * normalisation) and the same grid. */
static void test_preprocessing(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_image *img = load_image(case_str(c, "image"));
        float *px;
        uint32_t tiles, rows, cols;
        assert_int_equal(oc_model_preprocess(model, img, &px, &tiles, &rows, &cols), OC_OK);
        assert_int_equal(tiles, 1);
        assert_int_equal(case_int(c, "grid_thw", 0), 1);
        assert_int_equal(rows, case_int(c, "grid_thw", 1));
        assert_int_equal(cols, case_int(c, "grid_thw", 2));
        size_t n;
        float *want = load_f32(case_file(c), "pixel_values", &n);
        size_t dim = oc_qvit_patch_dim(&model->cfg.qvit), per_channel = dim / 3;
        assert_int_equal(n, (size_t)rows * cols * dim);
        double worst = 0; /* in 8-bit levels */
        for (size_t k = 0; k < n; k++) {
            int ch = (int)(k % dim / per_channel);
            double d = fabs((double)px[k] - want[k]) * model->qwen_proc.std[ch] * 255.0;
            worst = d > worst ? d : worst;
        }
        printf("case %d: grid %ux%u, pixels within %.3g of 8-bit levels\n", i, rows, cols,
               worst);
        assert_true(worst <= 2.0);
        free(want);
        oc_free(px);
        oc_image_free(img);
    }
}

static void test_input_ids(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        oc_turn turn = {.text = case_str(c, "question"), .n_images = 1};
        oc_tile_layout lay = case_layout(c);
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

/* With the reference pixel values: the merger's output and the logits within 1e-4, the
 * logits with transformers' positions when called without mm_token_type_ids; with M-RoPE
 * the same up to the image's second token (the first where the rows differ) and not after
 * it. */
static void test_forward_with_reference_pixels(void **state) {
    (void)state;
    size_t V = model->cfg.text.vocab;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        printf("case %d\n", i);
        size_t n, T;
        float *px = load_f32(case_file(c), "pixel_values", &n);
        oc_session *s = fx_session(model, px, 1, case_layout(c), 1);
        float *want = load_f32(case_file(c), "image_embeds", &n);
        assert_int_equal(n, s->n_feat_rows * model->cfg.text.hidden);
        fx_rel_check("image_embeds", s->feats, want, n, 1e-4);
        free(want);
        int32_t *ids = fx_prompt(s, case_str(c, "question"), &T);
        float *rid = load_f32(case_file(c), "input_ids", &n);
        assert_int_equal(n, T);
        for (size_t k = 0; k < T; k++)
            assert_int_equal(ids[k], (int32_t)rid[k]);
        float *logits = fx_logits(s, ids, T), *rl = load_f32(case_file(c), "logits", &n);
        assert_int_equal(n, T * V);
        fx_rel_check("logits (positions 0, 1, ...)", logits, rl, n, 1e-4);
        free(logits);
        s->text_positions = 0;
        logits = fx_logits(s, ids, T);
        size_t first_img = 0;
        while (ids[first_img] != model->cfg.image_token_id)
            first_img++;
        fx_rel_check("logits up to the image", logits, rl, (first_img + 1) * V, 1e-4);
        double after = rel_err(logits + (first_img + 1) * V, rl + (first_img + 1) * V,
                               (T - first_img - 1) * V);
        printf("  M-RoPE logits after it differ by %.3g\n", after);
        assert_true(after > 1e-2);
        free(logits), free(rl), free(rid), free(px);
        oc_free(ids);
        oc_session_free(s);
    }
}

/* The reference's 8 greedy tokens (full recomputation in transformers) from the session
 * with its KV cache; with M-RoPE, the cached tokens equal ocellus's full recomputation. */
static void test_greedy_generation(void **state) {
    (void)state;
    for (int i = 0; ref_case(i); i++) {
        const cJSON *c = ref_case(i);
        size_t n;
        float *px = load_f32(case_file(c), "pixel_values", &n);
        int32_t got[8], nocache[8];
        oc_session *s = fx_session(model, px, 1, case_layout(c), 1);
        fx_greedy_cached(s, case_str(c, "question"), 8, got);
        for (int k = 0; k < 8; k++)
            assert_int_equal(got[k], case_int(c, "greedy_new_tokens", k));
        oc_session_free(s);
        s = fx_session(model, px, 1, case_layout(c), 0);
        fx_greedy_nocache(s, case_str(c, "question"), 8, nocache);
        oc_session_free(s);
        s = fx_session(model, px, 1, case_layout(c), 0);
        fx_greedy_cached(s, case_str(c, "question"), 8, got);
        assert_memory_equal(got, nocache, sizeof got);
        oc_session_free(s);
        free(px);
    }
}

/* transformers' get_rope_index, transcribed loop for loop: chunks of text then image,
 * each starting one past the previous chunk's largest position. */
static void rope_index_reference(const int32_t *ids, size_t n, int32_t image_id,
                                 const uint32_t (*grid)[2], size_t n_images, int merge,
                                 int32_t *pos) {
    size_t st = 0, image_index = 0, filled = 0;
    int64_t prev_max = -1;
    for (size_t k = 0; k < n_images; k++) {
        size_t ed = st;
        while (ed < n && ids[ed] != image_id)
            ed++;
        size_t lh = grid[image_index][0] / merge, lw = grid[image_index][1] / merge;
        image_index++;
        size_t text_len = ed - st;
        int64_t st_idx = prev_max + 1;
        for (size_t j = 0; j < text_len; j++, filled++)
            pos[filled] = pos[n + filled] = pos[2 * n + filled] = (int32_t)(st_idx + j);
        int64_t mx = st_idx + (int64_t)text_len - 1;
        for (size_t hh = 0; hh < lh; hh++)
            for (size_t ww = 0; ww < lw; ww++, filled++) {
                pos[filled] = (int32_t)(text_len + st_idx);
                pos[n + filled] = (int32_t)(hh + text_len + st_idx);
                pos[2 * n + filled] = (int32_t)(ww + text_len + st_idx);
                for (int r = 0; r < 3; r++)
                    mx = pos[r * n + filled] > mx ? pos[r * n + filled] : mx;
            }
        prev_max = mx;
        st = ed + lh * lw;
    }
    int64_t st_idx = prev_max + 1;
    for (size_t j = 0; st + j < n; j++, filled++)
        pos[filled] = pos[n + filled] = pos[2 * n + filled] = (int32_t)(st_idx + j);
}

/* M-RoPE positions of a two-turn conversation with three images of different grids (one
 * taller than wide, two adjacent) against the transcription. */
static void test_mrope_positions(void **state) {
    (void)state;
    oc_turn turns[3] = {{.text = "Compare.", .n_images = 2},
                        {.is_assistant = 1, .text = "Both cats."},
                        {.text = "And this?", .n_images = 1}};
    oc_tile_layout lay[3] = {{6, 8}, {10, 4}, {2, 2}};
    uint32_t grid[3][2] = {{6, 8}, {10, 4}, {2, 2}};
    int32_t *ids;
    size_t n;
    assert_int_equal(
        oc_prompt_encode(&model->cfg, model->tok, turns, 3, lay, 3, 1, &ids, NULL, &n), OC_OK);
    int32_t *got = malloc(3 * n * sizeof *got), *want = malloc(3 * n * sizeof *want), next;
    assert_int_equal(oc_mrope_positions(&model->cfg, ids, n, lay, 3, got, &next), OC_OK);
    rope_index_reference(ids, n, model->cfg.image_token_id, grid, 3, 2, want);
    assert_memory_equal(got, want, 3 * n * sizeof *got);
    int32_t mx = 0;
    for (size_t i = 0; i < 3 * n; i++)
        mx = got[i] > mx ? got[i] : mx;
    assert_int_equal(next, mx + 1);
    /* a prompt cut inside the first image (12 tokens): an error, not a read past it */
    size_t first = 0;
    while (ids[first] != model->cfg.image_token_id)
        first++;
    assert_int_equal(oc_mrope_positions(&model->cfg, ids, first + 5, lay, 3, got, &next),
                     OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "needs 12 tokens"));
    free(got), free(want);
    oc_free(ids);
}

/* Qwen's chat format over turns and images, and the default system turn that the
 * published chat template adds (a chat_template.json saying so). */
static void test_multi_turn_prompt(void **state) {
    (void)state;
    oc_turn turns[3] = {{.text = "Compare.", .n_images = 2},
                        {.is_assistant = 1, .text = "Both cats."},
                        {.text = "Which?"}};
    oc_tile_layout lay[2] = {{2, 2}, {2, 4}};
    char *text;
    assert_int_equal(oc_prompt_text(&model->cfg, turns, 3, lay, 2, 1, &text), OC_OK);
    const char *want = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
                       "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Compare."
                       "<|im_end|>\n<|im_start|>assistant\nBoth cats.<|im_end|>\n"
                       "<|im_start|>user\nWhich?<|im_end|>\n<|im_start|>assistant\n";
    assert_string_equal(text, want);
    oc_free(text);
    const char *dir = fx_copy("qwen25vl-tiny", "qwen-template");
    write_text(fx_pj(dir, "chat_template.json"),
               "{\"chat_template\": \"{% if loop.first and message['role'] != 'system' %}"
               "<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n{% endif %}\"}");
    oc_model *m = fx_load(dir);
    assert_int_equal(oc_prompt_text(&m->cfg, turns + 2, 1, NULL, 0, 1, &text), OC_OK);
    assert_string_equal(text, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                              "<|im_start|>user\nWhich?<|im_end|>\n<|im_start|>assistant\n");
    oc_free(text);
    oc_model_free(m);
}

/* ocellus inspect dumps with transformers' names and shapes. */
static void test_inspect_dump(void **state) {
    (void)state;
    const cJSON *c = ref_case(0);
    oc_image *img = load_image(case_str(c, "image"));
    const char *dump = fx_pj(tmpdir("qwen-inspect"), "dump.safetensors");
    oc_inspect_params ip = {case_file(c), "pixel_values"};
    if (oc_inspect(model, (const oc_image *const *)&img, 1, case_str(c, "question"), &ip,
                   dump) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_st_file *f;
    assert_int_equal(oc_st_open(dump, &f), OC_OK);
    const oc_st_tensor *t = oc_st_find(f, "pixel_values");
    assert_non_null(t);
    assert_int_equal(oc_st_check_shape(t, 2, (int64_t[]){48, 1176}), OC_OK);
    assert_non_null(t = oc_st_find(f, "image_grid_thw"));
    float g[3];
    assert_int_equal(oc_st_to_f32(t, g, 3), OC_OK);
    assert_true(g[0] == 1 && g[1] == 6 && g[2] == 8);
    assert_non_null(t = oc_st_find(f, "image_hidden_states"));
    assert_int_equal(oc_st_check_shape(t, 2, (int64_t[]){12, 64}), OC_OK);
    assert_non_null(oc_st_find(f, "image_embeds"));
    assert_non_null(oc_st_find(f, "logits"));
    assert_non_null(oc_st_find(f, "input_ids"));
    oc_st_close(f);
    size_t n1, n2;
    float *a = load_f32(dump, "image_hidden_states", &n1);
    float *b = load_f32(case_file(c), "image_embeds", &n2);
    assert_int_equal(n1, n2);
    fx_rel_check("inspect image_hidden_states", a, b, n1, 1e-4);
    free(a), free(b);
    oc_image_free(img);
}

/* The merged features of the first case's pixels under another config. */
static float *feats_with(const char *dir, size_t *n) {
    oc_model *m = fx_load(dir);
    size_t np;
    float *px = load_f32(case_file(ref_case(0)), "pixel_values", &np);
    oc_session *s = fx_session(m, px, 1, case_layout(ref_case(0)), 0);
    *n = s->n_feat_rows * m->cfg.text.hidden;
    float *f = malloc(*n * sizeof(float));
    memcpy(f, s->feats, *n * sizeof(float));
    oc_session_free(s);
    oc_model_free(m);
    free(px);
    return f;
}

/* Window settings read from the files: a window holding the whole 3 x 4 merged grid is
 * full attention (whatever fullatt_block_indexes says), windows of one merged patch are
 * not, and the reference's own setting is neither. */
static void test_window_variants(void **state) {
    (void)state;
    size_t n;
    const char *d = fx_copy("qwen25vl-tiny", "qwen-win-full");
    int both[2] = {0, 1};
    fx_set(d, "config.json", "vision_config.fullatt_block_indexes", cJSON_CreateIntArray(both, 2));
    float *full = feats_with(d, &n);
    d = fx_copy("qwen25vl-tiny", "qwen-win-big");
    fx_set(d, "config.json", "vision_config.window_size", cJSON_CreateNumber(112));
    fx_set(d, "config.json", "vision_config.fullatt_block_indexes", cJSON_CreateArray());
    float *big = feats_with(d, &n);
    double e = rel_err(big, full, n);
    printf("one window over the image vs full attention: %.3g\n", e);
    assert_true(e < 1e-6);
    d = fx_copy("qwen25vl-tiny", "qwen-win-small");
    fx_set(d, "config.json", "vision_config.window_size", cJSON_CreateNumber(28));
    float *small = feats_with(d, &n);
    float *base = feats_with(td("qwen25vl-tiny"), &n);
    printf("28-pixel windows vs full: %.3g; the reference's 56 vs full: %.3g\n",
           rel_err(small, full, n), rel_err(base, full, n));
    assert_true(rel_err(small, full, n) > 1e-3 && rel_err(base, full, n) > 1e-3 &&
                rel_err(small, base, n) > 1e-3);
    free(full), free(big), free(small), free(base);
}

/* Random models of other shapes through the tensor table: merge size 1 and 3 (the merger
 * over 1 and 9 patches), other head counts, sliding-window text layers; each captions an
 * image, has the image tokens its grid says, and decodes with the cache as without. */
static void test_shape_variants(void **state) {
    (void)state;
    static const struct {
        int merge, heads, kv, depth, window, sliding;
    } v[] = {{1, 2, 1, 3, 28, 0}, {3, 8, 4, 1, 84, 0}, {2, 4, 2, 2, 56, 3}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "qwen-shape%zu", i);
        const char *d = tmpdir(tag);
        assert_int_equal(oc_write_random_model("qwen2.5-vl-tiny", "F32", 7, d), OC_OK);
        fx_set(d, "config.json", "vision_config.spatial_merge_size",
               cJSON_CreateNumber(v[i].merge));
        fx_set(d, "preprocessor_config.json", "merge_size", cJSON_CreateNumber(v[i].merge));
        fx_set(d, "config.json", "vision_config.depth", cJSON_CreateNumber(v[i].depth));
        fx_set(d, "config.json", "vision_config.window_size", cJSON_CreateNumber(v[i].window));
        fx_set(d, "config.json", "vision_config.fullatt_block_indexes", cJSON_CreateArray());
        fx_set(d, "config.json", "vision_config.num_heads", cJSON_CreateNumber(v[i].heads));
        fx_set(d, "config.json", "text_config.num_attention_heads", cJSON_CreateNumber(8));
        fx_set(d, "config.json", "text_config.num_key_value_heads", cJSON_CreateNumber(v[i].kv));
        int sec[3] = {0, 2, 2}; /* head size 8: 4 frequencies */
        fx_set(d, "config.json", "text_config.rope_parameters.mrope_section",
               cJSON_CreateIntArray(sec, 3));
        if (v[i].sliding) {
            fx_set(d, "config.json", "text_config.use_sliding_window", cJSON_CreateTrue());
            fx_set(d, "config.json", "text_config.max_window_layers", cJSON_CreateNumber(1));
            fx_set(d, "config.json", "text_config.sliding_window",
                   cJSON_CreateNumber(v[i].sliding));
        }
        assert_int_equal(oc_write_random_family_weights(d, OC_DT_F32, 7), OC_OK);
        oc_model *m = fx_load(d);
        oc_image *img = load_image("chelsea_451x300.png");
        float *px;
        uint32_t tiles, rows, cols;
        assert_int_equal(oc_model_preprocess(m, img, &px, &tiles, &rows, &cols), OC_OK);
        assert_int_equal(rows % v[i].merge, 0);
        oc_tile_layout lay = {rows, cols};
        assert_int_equal(oc_image_tokens(&m->cfg, &lay), rows * cols / (v[i].merge * v[i].merge));
        int32_t a[6], b[6];
        oc_session *s = fx_session(m, px, 1, lay, 0);
        for (size_t k = 0; k < s->n_feat_rows * m->cfg.text.hidden; k++)
            assert_true(isfinite(s->feats[k]));
        fx_greedy_nocache(s, "Describe this image.", 6, a);
        oc_session_free(s);
        s = fx_session(m, px, 1, lay, 0);
        fx_greedy_cached(s, "Describe this image.", 6, b);
        assert_memory_equal(a, b, sizeof a);
        printf("merge %d, %d heads: grid %ux%u, %u image tokens\n", v[i].merge, v[i].heads,
               rows, cols, oc_image_tokens(&m->cfg, &lay));
        oc_session_free(s);
        oc_free(px);
        oc_image_free(img);
        oc_model_free(m);
    }
}

/* The reference's logits from the same weights in transformers 4's config layout (text
 * settings at the top level, rope_scaling), with transformers 5's tensor names
 * (model.visual., model.language_model.), and within 2e-2 from BF16 weights. */
static float *case0_logits(oc_model *m) {
    const cJSON *c = ref_case(0);
    size_t n, T;
    float *px = load_f32(case_file(c), "pixel_values", &n);
    oc_session *s = fx_session(m, px, 1, case_layout(c), 1);
    int32_t *ids = fx_prompt(s, case_str(c, "question"), &T);
    float *logits = fx_logits(s, ids, T);
    oc_free(ids);
    oc_session_free(s);
    free(px);
    return logits;
}

/* dir's weights rewritten: names through rename (NULL: kept), values in dtype. */
static void rewrite_weights(const char *dir, const char *(*rename)(const char *, char *),
                            oc_dtype dtype) {
    oc_st_file *f;
    char *src = strdup(fx_pj(dir, "model.safetensors"));
    assert_int_equal(oc_st_open(td("qwen25vl-tiny/model.safetensors"), &f), OC_OK);
    oc_st_writer *w;
    assert_int_equal(oc_st_writer_new(&w), OC_OK);
    float **bufs = calloc(oc_st_count(f), sizeof *bufs);
    for (size_t i = 0; i < oc_st_count(f); i++) {
        const oc_st_tensor *t = oc_st_at(f, i);
        bufs[i] = malloc(t->numel * sizeof(float));
        assert_int_equal(oc_st_to_f32(t, bufs[i], t->numel), OC_OK);
        char buf[256];
        const char *name = rename ? rename(t->name, buf) : t->name;
        assert_int_equal(oc_st_writer_add_f32_as(w, name, dtype, t->ndim, t->shape, bufs[i]),
                         OC_OK);
    }
    assert_int_equal(oc_st_writer_save(w, src), OC_OK);
    oc_st_writer_free(w);
    for (size_t i = 0; i < oc_st_count(f); i++)
        free(bufs[i]);
    free(bufs);
    oc_st_close(f);
    free(src);
}

static const char *to_v5_names(const char *name, char *buf) {
    if (!strncmp(name, "visual.", 7))
        snprintf(buf, 256, "model.%s", name);
    else if (!strncmp(name, "model.", 6))
        snprintf(buf, 256, "model.language_model.%s", name + 6);
    else
        snprintf(buf, 256, "%s", name);
    return buf;
}

static void test_layouts_names_dtypes(void **state) {
    (void)state;
    float *want = case0_logits(model);
    size_t T = (size_t)cJSON_GetArraySize(oc_json_get(ref_case(0), "input_ids"));
    size_t n = T * model->cfg.text.vocab;
    /* transformers 4's layout */
    const char *d = fx_copy("qwen25vl-tiny", "qwen-v4");
    cJSON *j = fx_json_read(fx_pj(d, "config.json"));
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(j, "text_config");
    for (cJSON *x = t->child; x; x = x->next)
        if (strcmp(x->string, "rope_parameters") && strcmp(x->string, "layer_types"))
            cJSON_AddItemToObject(j, x->string, cJSON_Duplicate(x, 1));
    cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
    cJSON_AddStringToObject(rs, "type", "mrope");
    int sec[3] = {2, 3, 3};
    cJSON_AddItemToObject(rs, "mrope_section", cJSON_CreateIntArray(sec, 3));
    cJSON_AddNumberToObject(j, "rope_theta", 1000000.0);
    cJSON_Delete(t);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "vision_config");
    cJSON_DeleteItemFromObjectCaseSensitive(v, "in_channels");
    cJSON_AddNumberToObject(v, "in_chans", 3);
    cJSON_DeleteItemFromObjectCaseSensitive(v, "rope_parameters");
    fx_json_write(fx_pj(d, "config.json"), j);
    oc_model *m = fx_load(d);
    float *got = case0_logits(m);
    assert_memory_equal(got, want, n * sizeof(float));
    free(got);
    oc_model_free(m);
    /* transformers 5's tensor names */
    d = fx_copy("qwen25vl-tiny", "qwen-v5names");
    rewrite_weights(d, to_v5_names, OC_DT_F32);
    m = fx_load(d);
    got = case0_logits(m);
    assert_memory_equal(got, want, n * sizeof(float));
    free(got);
    oc_model_free(m);
    /* BF16 weights, dtype bfloat16 */
    d = fx_copy("qwen25vl-tiny", "qwen-bf16");
    rewrite_weights(d, NULL, OC_DT_BF16);
    fx_set(d, "config.json", "dtype", cJSON_CreateString("bfloat16"));
    m = fx_load(d);
    got = case0_logits(m);
    double e = rel_err(got, want, n);
    printf("BF16 weights: logits within %.3g of F32\n", e);
    assert_true(e < 2e-2);
    free(got);
    oc_model_free(m);
    free(want);
}

/* Fine-tuning says clearly that this family is not supported, from the trainer and from
 * the dataset loader that `ocellus train` opens first. */
static void test_train_refused(void **state) {
    (void)state;
    oc_trainer *tr = NULL;
    assert_int_equal(oc_trainer_new(td("qwen25vl-tiny"), NULL, &tr), OC_ERR_UNSUPPORTED);
    assert_non_null(strstr(oc_last_error(), "qwen2_5_vl"));
    assert_non_null(strstr(oc_last_error(), "not supported"));
    const char *d = tmpdir("qwen-train");
    write_text(fx_pj(d, "data.jsonl"), "{\"messages\": []}\n");
    oc_dataset *ds = NULL;
    assert_int_equal(oc_dataset_open(fx_pj(d, "data.jsonl"), td("qwen25vl-tiny"), NULL, &ds),
                     OC_ERR_UNSUPPORTED);
    assert_non_null(strstr(oc_last_error(), "fine-tuning qwen2_5_vl"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smart_resize),
        cmocka_unit_test(test_preprocessing),
        cmocka_unit_test(test_input_ids),
        cmocka_unit_test(test_forward_with_reference_pixels),
        cmocka_unit_test(test_greedy_generation),
        cmocka_unit_test(test_mrope_positions),
        cmocka_unit_test(test_multi_turn_prompt),
        cmocka_unit_test(test_inspect_dump),
        cmocka_unit_test(test_window_variants),
        cmocka_unit_test(test_shape_variants),
        cmocka_unit_test(test_layouts_names_dtypes),
        cmocka_unit_test(test_train_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
