/* Fine-tuning datasets: LLaVA and messages JSONL, pre-tokenized lines, labels only on the
 * assistant's text, errors with file:line, the seeded batcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dataset.h"
#include "png_write.h"
#include "preprocess.h"
#include "shapes.h"
#include "testutil.h"

static char dir[256];

/* dir/img/a.png (64x64, a shapes scene) and dir/img/b.png (48x32). */
static void write_images(void) {
    char path[512];
    snprintf(path, sizeof path, "mkdir -p '%s/img'", dir);
    assert_int_equal(system(path), 0);
    const uint32_t sizes[2][2] = {{64, 64}, {48, 32}};
    const char *names[2] = {"a.png", "b.png"};
    for (int k = 0; k < 2; k++) {
        uint32_t w = sizes[k][0], h = sizes[k][1];
        uint8_t *rgb = malloc(64 * 64 * 3);
        oc_scene s;
        assert_int_equal(oc_scene_generate(OC_SPLIT_TRAIN, 1, (uint64_t)k, &s), OC_OK);
        assert_int_equal(oc_scene_render(&s, 64, rgb), OC_OK);
        /* b is the top-left crop of a scene: not square, so it tiles differently */
        for (uint32_t y = 0; y < h; y++)
            memmove(rgb + y * w * 3, rgb + y * 64 * 3, w * 3);
        uint8_t *png;
        size_t n;
        assert_int_equal(oc_png_encode(rgb, w, h, &png, &n), OC_OK);
        snprintf(path, sizeof path, "%s/img/%s", dir, names[k]);
        write_bytes(path, png, n);
        oc_free(png);
        free(rgb);
    }
}

static const char *data_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_text(path, text);
    return path;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s", tmpdir("dataset"));
    write_images();
    return 0;
}

static oc_dataset *open_ok(const char *path, const char *model, const oc_dataset_params *p) {
    oc_dataset *ds = NULL;
    oc_status s = oc_dataset_open(path, model, p, &ds);
    if (s != OC_OK)
        fail_msg("%s", oc_last_error());
    return ds;
}

static void expect_open_error(const char *text, oc_status want, const char *msg) {
    const char *path = data_file("bad.jsonl", text);
    oc_dataset *ds = NULL;
    oc_status s = oc_dataset_open(path, td("smolvlm-tiny"), NULL, &ds);
    assert_null(ds);
    if (s != want || !strstr(oc_last_error(), msg))
        fail_msg("want %s \"%s\", got %s \"%s\"", oc_status_str(want), msg, oc_status_str(s),
                 oc_last_error());
    assert_non_null(strstr(oc_last_error(), "bad.jsonl:"));
}

/* A copy of an example (its arrays are only valid until the next call). */
typedef struct {
    int32_t *ids, *labels;
    size_t n;
    float *pixels;
    uint32_t n_tiles;
} example_copy;

static example_copy get_copy(oc_dataset *ds, size_t i) {
    oc_train_example x;
    oc_status s = oc_dataset_get(ds, i, &x);
    if (s != OC_OK)
        fail_msg("%s", oc_last_error());
    example_copy c = {malloc(x.n_tokens * 4), malloc(x.n_tokens * 4), x.n_tokens, NULL,
                      x.n_tiles};
    memcpy(c.ids, x.input_ids, x.n_tokens * 4);
    memcpy(c.labels, x.labels, x.n_tokens * 4);
    if (x.n_tiles) {
        size_t np = (size_t)x.n_tiles * 3 * 64 * 64;
        c.pixels = malloc(np * 4);
        memcpy(c.pixels, x.pixel_values, np * 4);
    } else {
        assert_null(x.pixel_values);
    }
    return c;
}

static void copy_free(example_copy *c) {
    free(c->ids);
    free(c->labels);
    free(c->pixels);
}

static void assert_same(const example_copy *a, const example_copy *b) {
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->ids, b->ids, a->n * 4);
    assert_memory_equal(a->labels, b->labels, a->n * 4);
    assert_int_equal(a->n_tiles, b->n_tiles);
    if (a->n_tiles)
        assert_memory_equal(a->pixels, b->pixels, (size_t)a->n_tiles * 3 * 64 * 64 * 4);
}

static oc_tokenizer *tiny_tokenizer(void) {
    oc_tokenizer *tok;
    assert_int_equal(oc_tokenizer_load(td("smolvlm-tiny/tokenizer.json"), &tok), OC_OK);
    return tok;
}

/* The text of the labelled tokens, spans joined by '|'. */
static char *labelled_text(const oc_tokenizer *tok, const example_copy *c) {
    static char out[4096];
    out[0] = 0;
    for (size_t i = 0; i < c->n;) {
        if (c->labels[i] == OC_IGNORE_LABEL) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < c->n && c->labels[j] != OC_IGNORE_LABEL) {
            assert_int_equal(c->labels[j], c->ids[j]); /* labels are the ids themselves */
            j++;
        }
        char *t;
        assert_int_equal(oc_detokenize(tok, c->ids + i, j - i, 1, &t), OC_OK);
        if (out[0])
            strcat(out, "|");
        strncat(out, t, sizeof out - strlen(out) - 2);
        oc_free(t);
        i = j;
    }
    return out;
}

static char *full_text(const oc_tokenizer *tok, const example_copy *c) {
    char *t;
    assert_int_equal(oc_detokenize(tok, c->ids, c->n, 1, &t), OC_OK);
    return t;
}

static size_t count_id(const example_copy *c, int32_t id) {
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += c->ids[i] == id;
    return k;
}

/* The same one-image question in every spelling gives the same example. */
static void test_formats_agree(void **state) {
    (void)state;
    const char *path = data_file(
        "chat.jsonl",
        "{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
        "\"<image>\\nWhat is this?\"}, {\"from\": \"gpt\", \"value\": \"A red circle.\"}]}\n"
        "{\"images\": [\"img/a.png\"], \"conversations\": [{\"from\": \"human\", \"value\": "
        "\"What is this?\\n<image>\"}, {\"from\": \"gpt\", \"value\": \"A red circle.\"}]}\n"
        "\n"
        "{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"user\", \"value\": "
        "\"What is this?\"}, {\"from\": \"assistant\", \"value\": \"A red circle.\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": "
        "\"text\", \"text\": \"What is this?\"}]}, {\"role\": \"assistant\", \"content\": "
        "[{\"type\": \"text\", \"text\": \"A red circle.\"}]}], \"images\": [\"img/a.png\"]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": "
        "\"What is \"}, {\"type\": \"image\", \"image\": \"img/a.png\"}, {\"type\": \"text\", "
        "\"text\": \"this?\"}]}, {\"role\": \"assistant\", \"content\": \"A red circle.\"}]}\n");
    oc_dataset *ds = open_ok(path, td("smolvlm-tiny"), NULL);
    assert_int_equal(oc_dataset_size(ds), 5);
    example_copy ref = get_copy(ds, 0);
    for (size_t i = 1; i < 5; i++) {
        example_copy c = get_copy(ds, i);
        assert_same(&ref, &c);
        copy_free(&c);
    }

    /* 64x64 -> longest edge 192 -> 3x3 tiles + the global image, 16 tokens each */
    assert_int_equal(ref.n_tiles, 10);
    assert_int_equal(count_id(&ref, 4), 160);
    oc_tokenizer *tok = tiny_tokenizer();
    char *text = full_text(tok, &ref);
    assert_true(strncmp(text, "<|im_start|>User:<fake_token_around_image><row_1_col_1><image>",
                        62) == 0);
    const char *tail = "<fake_token_around_image>What is this?<end_of_utterance>\n"
                       "Assistant: A red circle.<end_of_utterance>\n";
    assert_string_equal(text + strlen(text) - strlen(tail), tail);
    oc_free(text);
    /* the loss is on the answer (with the space the chat format puts before it, which the
     * tokenizer folds into its first token) and its end-of-turn token only */
    assert_string_equal(labelled_text(tok, &ref), " A red circle.<end_of_utterance>");

    /* the pixels are the processor's */
    oc_data_model m;
    assert_int_equal(oc_data_model_load(td("smolvlm-tiny"), &m), OC_OK);
    char img_path[512];
    snprintf(img_path, sizeof img_path, "%s/img/a.png", dir);
    oc_image *img;
    assert_int_equal(oc_image_load(img_path, NULL, &img), OC_OK);
    float *px;
    uint32_t tiles, rows, cols;
    assert_int_equal(oc_idefics3_preprocess(&m.smol, img, 64, &px, &tiles, &rows, &cols), OC_OK);
    assert_int_equal(tiles, 10);
    assert_memory_equal(px, ref.pixels, (size_t)tiles * 3 * 64 * 64 * 4);
    oc_free(px);
    oc_image_free(img);
    oc_data_model_free(&m);
    oc_tokenizer_free(tok);
    copy_free(&ref);
    oc_dataset_free(ds);
}

static void test_multi_turn_and_text_only(void **state) {
    (void)state;
    const char *path = data_file(
        "multi.jsonl",
        "{\"images\": [\"img/a.png\", \"img/b.png\"], \"conversations\": ["
        "{\"from\": \"human\", \"value\": \"<image>\\nFirst?\"}, {\"from\": \"gpt\", \"value\": "
        "\"One.\"}, {\"from\": \"human\", \"value\": \"<image>\\nSecond?\"}, {\"from\": \"gpt\", "
        "\"value\": \"Two.\"}]}\n"
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"gpt\", "
        "\"value\": \"Hello.\"}]}\n");
    oc_dataset *ds = open_ok(path, td("smolvlm-tiny"), NULL);
    oc_tokenizer *tok = tiny_tokenizer();
    example_copy a = get_copy(ds, 0);
    assert_string_equal(labelled_text(tok, &a), " One.<end_of_utterance>| Two.<end_of_utterance>");
    /* a: 10 tiles; b (48x32 -> 192x128 -> 3x2 + global): 7 tiles */
    assert_int_equal(a.n_tiles, 17);
    assert_int_equal(count_id(&a, 4), 17 * 16);
    char *text = full_text(tok, &a);
    assert_non_null(strstr(text, "<fake_token_around_image>First?<end_of_utterance>\nAssistant: "
                                 "One.<end_of_utterance>\nUser:<fake_token_around_image>"));
    oc_free(text);
    example_copy b = get_copy(ds, 1);
    assert_int_equal(b.n_tiles, 0);
    text = full_text(tok, &b);
    assert_string_equal(text, "<|im_start|>User: Hi<end_of_utterance>\nAssistant: "
                              "Hello.<end_of_utterance>\n");
    oc_free(text);
    assert_string_equal(labelled_text(tok, &b), " Hello.<end_of_utterance>");
    copy_free(&a);
    copy_free(&b);
    oc_tokenizer_free(tok);
    oc_dataset_free(ds);

    /* the model may also be named by its config.json (as a training run from a config is) */
    ds = open_ok(path, td("smolvlm-tiny/config.json"), NULL);
    assert_int_equal(oc_dataset_size(ds), 2);
    oc_dataset_free(ds);
}

/* Writes one example as a pre-tokenized line. */
static void token_line(char *buf, size_t cap, const example_copy *c, const char *extra) {
    size_t k = (size_t)snprintf(buf, cap, "{\"input_ids\": [");
    for (size_t i = 0; i < c->n; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? ", " : "", c->ids[i]);
    k += (size_t)snprintf(buf + k, cap - k, "], \"labels\": [");
    for (size_t i = 0; i < c->n; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? ", " : "", c->labels[i]);
    snprintf(buf + k, cap - k, "]%s}\n", extra);
}

static void test_pre_tokenized(void **state) {
    (void)state;
    const char *chat = data_file(
        "one.jsonl",
        "{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
        "\"<image>\\nWhat is this?\"}, {\"from\": \"gpt\", \"value\": \"A red circle.\"}]}\n");
    oc_dataset *ds = open_ok(chat, td("smolvlm-tiny"), NULL);
    example_copy ref = get_copy(ds, 0);
    oc_dataset_free(ds);

    /* the same ids with the image, and with its pixels from a safetensors file */
    char pv[512];
    snprintf(pv, sizeof pv, "%s/pv.safetensors", dir);
    oc_st_writer *w;
    assert_int_equal(oc_st_writer_new(&w), OC_OK);
    assert_int_equal(oc_st_writer_add(w, "pixel_values", OC_DT_F32, 4,
                                      (int64_t[]){ref.n_tiles, 3, 64, 64}, ref.pixels),
                     OC_OK);
    assert_int_equal(oc_st_writer_save(w, pv), OC_OK);
    oc_st_writer_free(w);
    size_t cap = 1 << 16;
    char *text = malloc(3 * cap), *line = malloc(cap);
    text[0] = 0;
    token_line(line, cap, &ref, ", \"images\": [\"img/a.png\"]");
    strcat(text, line);
    token_line(line, cap, &ref, ", \"pixel_values\": \"pv.safetensors:pixel_values\"");
    strcat(text, line);
    strcat(text, "{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n");
    ds = open_ok(data_file("tok.jsonl", text), td("smolvlm-tiny"), NULL);
    for (size_t i = 0; i < 2; i++) {
        example_copy c = get_copy(ds, i);
        assert_same(&ref, &c);
        copy_free(&c);
    }
    example_copy c = get_copy(ds, 2);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.labels[0], -100);
    assert_int_equal(c.ids[2], 3);
    assert_int_equal(c.n_tiles, 0);
    copy_free(&c);
    oc_dataset_stats st;
    assert_int_equal(oc_dataset_check(ds, &st), OC_OK);
    assert_int_equal(st.examples, 3);
    assert_int_equal(st.tiles, 20);
    assert_int_equal(st.images, 1);
    assert_int_equal(st.tokens, 2 * ref.n + 3);
    oc_dataset_free(ds);

    /* mismatches between ids and pixels */
    line[0] = 0;
    example_copy cut = ref;
    cut.n -= 20; /* drops the last tokens: the image tokens stay */
    token_line(line, cap, &cut, ", \"pixel_values\": \"pv.safetensors:nope\"");
    expect_open_error(line, OC_ERR_FORMAT, "no tensor 'nope'");
    expect_open_error("{\"input_ids\": [4, 4, 4], \"labels\": [-100, -100, -100], "
                      "\"images\": [\"img/a.png\"]}\n",
                      OC_ERR_FORMAT, "not a whole number of tiles of 16");
    expect_open_error("{\"input_ids\": [1, 2, 360], \"labels\": [1, 2, 3]}\n", OC_ERR_FORMAT,
                      "bad.jsonl:1: \"input_ids\"[2] = 360 is outside the vocabulary of 360");
    expect_open_error("{\"input_ids\": [1, 2], \"labels\": [1, 2, 3]}\n", OC_ERR_FORMAT,
                      "\"labels\" has 3 entries but \"input_ids\" 2");
    expect_open_error("{\"input_ids\": [1, 2], \"labels\": [1, -5]}\n", OC_ERR_FORMAT,
                      "\"labels\"[1] must be an integer");
    expect_open_error("{\"input_ids\": [1, 2.5], \"labels\": [1, 2]}\n", OC_ERR_FORMAT,
                      "\"input_ids\"[1] must be an integer");
    expect_open_error("{\"input_ids\": [1, 2], \"labels\": [1, 2], \"images\": "
                      "[\"img/a.png\"]}\n",
                      OC_ERR_FORMAT, "no image token");
    free(text);
    free(line);
    copy_free(&ref);
}

static void test_errors_name_file_and_line(void **state) {
    (void)state;
    const char *good = "{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, "
                       "{\"from\": \"gpt\", \"value\": \"Yo.\"}]}\n";
    char text[2048];
    snprintf(text, sizeof text, "%s\n%s{\"conversations\": 5}\n", good, good);
    expect_open_error(text, OC_ERR_FORMAT, "bad.jsonl:4: \"conversations\" must be a list");
    snprintf(text, sizeof text, "%s{\"conversations\": [}\n", good);
    expect_open_error(text, OC_ERR_FORMAT, "bad.jsonl:2: invalid JSON");
    expect_open_error("[1, 2]\n", OC_ERR_FORMAT, "bad.jsonl:1: expected a JSON object");
    expect_open_error("{\"text\": \"hello\"}\n", OC_ERR_FORMAT,
                      "expected \"conversations\", \"messages\" or \"input_ids\"");
    expect_open_error("\n\n", OC_ERR_FORMAT, "no examples");
    expect_open_error("{\"image\": \"img/missing.png\", \"conversations\": [{\"from\": "
                      "\"human\", \"value\": \"<image>\"}, {\"from\": \"gpt\", \"value\": "
                      "\"x\"}]}\n",
                      OC_ERR_IO, "img/missing.png' not found");
    expect_open_error("{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", "
                      "\"value\": \"<image><image>\"}, {\"from\": \"gpt\", \"value\": "
                      "\"x\"}]}\n",
                      OC_ERR_FORMAT, "2 \"<image>\" markers but 1 images");
    expect_open_error("{\"conversations\": [{\"from\": \"human\", \"value\": \"x\"}, "
                      "{\"from\": \"gpt\", \"value\": \"<image>\"}]}\n",
                      OC_ERR_FORMAT, "turn 2: an assistant or system turn cannot hold \"<image>\"");
    expect_open_error("{\"conversations\": [{\"from\": \"tool\", \"value\": \"x\"}]}\n",
                      OC_ERR_UNSUPPORTED, "turn 1: unknown \"from\" \"tool\"");
    expect_open_error("{\"conversations\": [{\"from\": \"system\", \"value\": \"<image>\"}, "
                      "{\"from\": \"gpt\", \"value\": \"x\"}]}\n",
                      OC_ERR_FORMAT, "turn 1: an assistant or system turn cannot hold");
    expect_open_error("{\"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]}\n",
                      OC_ERR_FORMAT, "no assistant turn");
    expect_open_error("{\"conversations\": [{\"from\": \"human\"}]}\n", OC_ERR_FORMAT,
                      "turn 1 of \"conversations\" must be");
    expect_open_error("{\"image\": \"a.png\", \"images\": [\"b.png\"], \"conversations\": []}\n",
                      OC_ERR_FORMAT, "not both");
    expect_open_error("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": "
                      "\"image\"}]}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n",
                      OC_ERR_FORMAT, "1 {\"type\": \"image\"} parts without a path but 0");
    expect_open_error("{\"messages\": [{\"role\": \"user\", \"content\": \"<image> hi\"}, "
                      "{\"role\": \"assistant\", \"content\": \"x\"}]}\n",
                      OC_ERR_FORMAT, "mark images with");
    expect_open_error("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": "
                      "\"video\"}]}]}\n",
                      OC_ERR_UNSUPPORTED, "content type \"video\"");
    expect_open_error("{\"messages\": \"hi\"}\n", OC_ERR_FORMAT, "\"messages\" must be a list");

    /* too many images for the limit */
    oc_dataset_params p = oc_dataset_default_params();
    p.max_images = 1;
    oc_dataset *ds = NULL;
    const char *path =
        data_file("limit.jsonl",
                  "{\"images\": [\"img/a.png\", \"img/b.png\"], \"conversations\": [{\"from\": "
                  "\"human\", \"value\": \"x\"}, {\"from\": \"gpt\", \"value\": \"y\"}]}\n");
    assert_int_equal(oc_dataset_open(path, td("smolvlm-tiny"), &p, &ds), OC_ERR_LIMIT);
    assert_non_null(strstr(oc_last_error(), "limit.jsonl:1: more than 1 images"));

    /* too many tokens: found when the example is encoded */
    p = oc_dataset_default_params();
    p.max_tokens = 100;
    path = data_file("long.jsonl",
                     "{\"conversations\": [{\"from\": \"human\", \"value\": \"x\"}, {\"from\": "
                     "\"gpt\", \"value\": \"y\"}]}\n"
                     "{\"image\": \"img/a.png\", \"conversations\": [{\"from\": \"human\", "
                     "\"value\": \"x\"}, {\"from\": \"gpt\", \"value\": \"y\"}]}\n");
    ds = open_ok(path, td("smolvlm-tiny"), &p);
    oc_train_example x;
    assert_int_equal(oc_dataset_get(ds, 0, &x), OC_OK);
    assert_int_equal(oc_dataset_get(ds, 1, &x), OC_ERR_LIMIT);
    assert_non_null(strstr(oc_last_error(), "long.jsonl:2: "));
    assert_non_null(strstr(oc_last_error(), "over the limit of 100"));
    assert_int_equal(oc_dataset_check(ds, NULL), OC_ERR_LIMIT);
    oc_dataset_free(ds);

    /* a corrupt image is found when encoded, and named */
    char bad_png[512];
    snprintf(bad_png, sizeof bad_png, "%s/img/corrupt.png", dir);
    write_text(bad_png, "not a png");
    path = data_file("corrupt.jsonl",
                     "{\"image\": \"img/corrupt.png\", \"conversations\": [{\"from\": "
                     "\"human\", \"value\": \"x\"}, {\"from\": \"gpt\", \"value\": \"y\"}]}\n");
    ds = open_ok(path, td("smolvlm-tiny"), NULL);
    assert_int_not_equal(oc_dataset_get(ds, 0, &x), OC_OK);
    assert_non_null(strstr(oc_last_error(), "corrupt.jsonl:1: "));
    assert_non_null(strstr(oc_last_error(), "corrupt.png"));
    oc_dataset_free(ds);

    assert_int_equal(oc_dataset_open(path, "/nonexistent-model", NULL, &ds), OC_ERR_IO);
    assert_int_equal(oc_dataset_open("/nonexistent.jsonl", td("smolvlm-tiny"), NULL, &ds),
                     OC_ERR_IO);
}

/* Which file line (0..n-1) an example came from: its last answer token encodes it. */
static int example_tag(const oc_train_example *x, const oc_tokenizer *tok) {
    char *t;
    assert_int_equal(oc_detokenize(tok, x->input_ids, x->n_tokens, 0, &t), OC_OK);
    const char *p = strstr(t, "Answer ");
    assert_non_null(p);
    int tag = atoi(p + 7);
    oc_free(t);
    return tag;
}

static void test_batcher(void **state) {
    (void)state;
    enum { N = 7 };
    char text[4096];
    size_t k = 0;
    for (int i = 0; i < N; i++)
        k += (size_t)snprintf(text + k, sizeof text - k,
                              "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, "
                              "{\"from\": \"gpt\", \"value\": \"Answer %d\"}]}\n", i);
    const char *path = data_file("batch.jsonl", text);
    oc_tokenizer *tok = tiny_tokenizer();
    oc_dataset_params p = oc_dataset_default_params();
    p.seed = 3;
    oc_dataset *ds = open_ok(path, td("smolvlm-tiny"), &p);
    oc_dataset *again = open_ok(path, td("smolvlm-tiny"), &p);
    int seq[3 * N], epochs_differ = 0;
    oc_train_example b[3];
    for (int pos = 0; pos < 3 * N; pos += 3) { /* batches straddle epoch ends */
        size_t n = pos + 3 <= 3 * N ? 3 : (size_t)(3 * N - pos);
        assert_int_equal(oc_dataset_next_batch(b, n, ds), OC_OK);
        for (size_t j = 0; j < n; j++)
            seq[pos + (int)j] = example_tag(&b[j], tok);
        oc_train_example c[3];
        assert_int_equal(oc_dataset_next_batch(c, n, again), OC_OK);
        for (size_t j = 0; j < n; j++) { /* same seed, same order */
            assert_int_equal(example_tag(&c[j], tok), seq[pos + (int)j]);
            assert_int_equal(example_tag(&b[j], tok), seq[pos + (int)j]); /* b still valid */
        }
    }
    assert_int_equal(oc_dataset_position(ds), 3 * N);
    for (int e = 0; e < 3; e++) { /* each epoch is a permutation */
        int seen[N] = {0};
        for (int i = 0; i < N; i++)
            seen[seq[e * N + i]]++;
        for (int i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
        if (e > 0)
            epochs_differ += memcmp(seq, seq + e * N, sizeof(int) * N) != 0;
    }
    assert_true(epochs_differ > 0);
    /* seek back into the second epoch and get the same examples */
    oc_dataset_seek(ds, N + 2);
    assert_int_equal(oc_dataset_next_batch(b, 3, ds), OC_OK);
    for (int j = 0; j < 3; j++)
        assert_int_equal(example_tag(&b[j], tok), seq[N + 2 + j]);
    oc_dataset_free(ds);
    oc_dataset_free(again);

    /* no shuffle: file order */
    p.shuffle = 0;
    ds = open_ok(path, td("smolvlm-tiny"), &p);
    for (int i = 0; i < 2 * N; i++) {
        assert_int_equal(oc_dataset_next_batch(b, 1, ds), OC_OK);
        assert_int_equal(example_tag(&b[0], tok), i % N);
    }
    oc_dataset_free(ds);
    oc_tokenizer_free(tok);
}

/* LLaVA-1.5's chat format and CLIP processor: one fixed run of image tokens. */
static void test_llava_family(void **state) {
    (void)state;
    const char *path = data_file(
        "llava.jsonl",
        "{\"image\": \"img/b.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
        "\"<image>\\nWhat is this?\"}, {\"from\": \"gpt\", \"value\": \"A shape.\"}]}\n");
    oc_dataset *ds = open_ok(path, td("llava-tiny"), NULL);
    oc_train_example x;
    assert_int_equal(oc_dataset_get(ds, 0, &x), OC_OK);
    assert_int_equal(x.n_tiles, 1);
    size_t images = 0, labelled = 0;
    for (size_t i = 0; i < x.n_tokens; i++) {
        images += x.input_ids[i] == 32000;
        labelled += x.labels[i] != OC_IGNORE_LABEL;
        if (x.input_ids[i] == 32000)
            assert_int_equal(x.labels[i], OC_IGNORE_LABEL);
    }
    assert_int_equal(images, 16);
    /* Exactly the answer's tokens and the EOS that ends it (LLaVA's training format),
     * as one contiguous run. */
    oc_tokenizer *tok;
    assert_int_equal(oc_tokenizer_load(td("llava-tiny/tokenizer.json"), &tok), OC_OK);
    size_t first = 0;
    while (x.labels[first] == OC_IGNORE_LABEL)
        first++;
    for (size_t i = first; i < first + labelled; i++)
        assert_int_equal(x.labels[i], x.input_ids[i]);
    assert_int_equal(x.labels[first + labelled - 1], 2); /* </s> */
    char *t;
    assert_int_equal(oc_detokenize(tok, x.input_ids + first, labelled, 1, &t), OC_OK);
    assert_string_equal(t, "A shape.</s>");
    oc_free(t);
    oc_tokenizer_free(tok);
    oc_dataset_free(ds);
}

static void test_allocation_failures(void **state) {
    (void)state;
    const char *path = data_file(
        "oom.jsonl",
        "{\"image\": \"img/b.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
        "\"<image>\\nWhat?\"}, {\"from\": \"gpt\", \"value\": \"A.\"}]}\n"
        "{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n");
    for (long k = 1; k < 20000; k++) {
        oc_alloc_fail_at(k);
        oc_dataset *ds = NULL;
        oc_status s = oc_dataset_open(path, td("smolvlm-tiny"), NULL, &ds);
        oc_train_example x[2];
        if (s == OC_OK)
            s = oc_dataset_next_batch(x, 2, ds);
        long used = oc_alloc_fail_at(0);
        oc_dataset_free(ds);
        if (s == OC_OK && used < k)
            return;
        /* a failed allocation must fail the call cleanly (ASan checks for leaks); the
         * status is usually OC_ERR_NOMEM, but a library may report it as its own error */
        if (s != OC_OK && !oc_last_error()[0])
            fail_msg("allocation %ld: %s with no message", k, oc_status_str(s));
    }
    fail_msg("still failing after 20000 allocations");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_multi_turn_and_text_only),
        cmocka_unit_test(test_pre_tokenized),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_batcher),
        cmocka_unit_test(test_llava_family),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
