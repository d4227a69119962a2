/* The library pieces of serving, on the tiny models: chat-template rendering of system
 * prompts and interleaved images (the Hugging Face templates' output), stop strings over
 * streamed text, oc_session_reply against oc_caption (same text, KV cache reuse, images
 * that change), the encoded-image cache, base64, request parsing, and /save read back as
 * training data. The HTTP server and the chat loop are tested end to end in tests/serve/. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "encoded_image.h"
#include "model.h"
#include "prompt.h"
#include "request.h"
#include "stop.h"
#include "testutil.h"

static oc_model *smol, *llava;

static int setup(void **state) {
    (void)state;
    if (oc_model_load(td("smolvlm-tiny"), NULL, &smol) != OC_OK ||
        oc_model_load(td("llava-tiny"), NULL, &llava) != OC_OK) {
        fprintf(stderr, "load: %s\n", oc_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    oc_model_free(smol);
    oc_model_free(llava);
    return 0;
}

static oc_image *load(const char *rel) {
    oc_image *img = NULL;
    if (oc_image_load(td(rel), NULL, &img) != OC_OK)
        fail_msg("%s", oc_last_error());
    return img;
}

/* SmolVLM's template: "System: ...", the colon without a space when a message starts
 * with an image, images where their parts are. */
static void test_render_smolvlm(void **state) {
    (void)state;
    oc_model_config c = smol->cfg;
    size_t at[1] = {8};
    oc_tile_layout lay[2] = {{0, 0}, {0, 0}};
    oc_turn turns[4] = {{.text = "Be brief.", .is_system = 1},
                        {.text = "Look at this:", .n_images = 1, .image_at = at},
                        {.is_assistant = 1, .text = "A cat."},
                        {.text = "And this?", .n_images = 1}};
    at[0] = strlen("Look at ");
    char *text;
    assert_int_equal(oc_prompt_text(&c, turns, 4, lay, 2, 1, &text), OC_OK);
    uint32_t seq = oc_config_image_seq(&c);
    char img[4096] = "<fake_token_around_image><global-img>";
    for (uint32_t i = 0; i < seq; i++)
        strcat(img, "<image>");
    strcat(img, "<fake_token_around_image>");
    char want[16384];
    snprintf(want, sizeof want, "<|im_start|>System: Be brief.<end_of_utterance>\nUser: Look at "
             "%sthis:<end_of_utterance>\nAssistant: A cat.<end_of_utterance>\nUser:%sAnd "
             "this?<end_of_utterance>\nAssistant:", img, img);
    assert_string_equal(text, want);
    oc_free(text);
    /* images out of order are refused */
    size_t bad[1] = {100};
    oc_turn t1 = {.text = "short", .n_images = 1, .image_at = bad};
    assert_int_equal(oc_prompt_text(&c, &t1, 1, lay, 1, 1, &text), OC_ERR_INVALID_ARG);
    oc_turn sys_img = {.text = "x", .n_images = 1, .is_system = 1};
    assert_int_equal(oc_prompt_text(&c, &sys_img, 1, lay, 1, 1, &text), OC_ERR_INVALID_ARG);
}

/* llava-1.5-hf's template: a system prompt is its text and a space; images first. */
static void test_render_llava(void **state) {
    (void)state;
    oc_model_config c = llava->cfg;
    size_t at[1] = {5};
    oc_tile_layout lay[1] = {{0, 0}};
    oc_turn turns[2] = {{.text = "Be brief.", .is_system = 1},
                        {.text = "What is it?", .n_images = 1, .image_at = at}};
    char *text;
    assert_int_equal(oc_prompt_text(&c, turns, 2, lay, 1, 1, &text), OC_OK);
    assert_true(strncmp(text, "Be brief. USER: <image>", 23) == 0);
    const char *tail = "\nWhat is it? ASSISTANT:";
    assert_string_equal(text + strlen(text) - strlen(tail), tail);
    oc_free(text);
}

/* Pushes pieces; returns what was released, joined with '|' between pushes. */
static void stop_run(const char *const *stop, size_t n, const char *const *pieces, size_t np,
                     const char *want, int want_match) {
    oc_stop_filter f;
    oc_stop_init(&f, stop, n);
    char out[512] = "";
    int matched = 0;
    for (size_t i = 0; i < np && !matched; i++) {
        size_t a, b;
        matched = oc_stop_push(&f, pieces[i], strlen(pieces[i]), &a, &b);
        strncat(out, f.text.data + a, b - a);
        strcat(out, "|");
    }
    if (!matched) {
        size_t a, b;
        oc_stop_flush(&f, &a, &b);
        strncat(out, f.text.data + a, b - a);
    }
    assert_string_equal(out, want);
    assert_int_equal(matched, want_match);
    oc_stop_free(&f);
}

static void test_stop_strings(void **state) {
    (void)state;
    const char *s1[] = {"STOP"};
    /* a possible start is held back until ruled out; a match ends the text before it */
    stop_run(s1, 1, (const char *[]){"ab", "cS", "T", "x", "yz"}, 5, "ab|c||STx|yz|", 0);
    stop_run(s1, 1, (const char *[]){"ab", "cS", "TO", "P!"}, 4, "ab|c|||", 1);
    stop_run(s1, 1, (const char *[]){"xxSTOPyy"}, 1, "xx|", 1);
    /* the earliest of several; an empty string is ignored */
    const char *s2[] = {"", "world", "lo w"};
    stop_run(s2, 3, (const char *[]){"hel", "lo world"}, 2, "he|l|", 1);
    /* none at all: everything flows */
    stop_run(NULL, 0, (const char *[]){"a", "b"}, 2, "a|b|", 0);
}

typedef struct {
    char text[1024];
    int calls, stop_after;
} collected;

static int collect(const char *piece, int32_t id, void *user) {
    (void)id;
    collected *c = user;
    strncat(c->text, piece, sizeof c->text - strlen(c->text) - 1);
    return c->stop_after && ++c->calls >= c->stop_after;
}

static oc_conversation *one_question(const oc_model *m, oc_encoded_image *img, const char *q) {
    oc_conversation *c;
    assert_int_equal(oc_conversation_new(&c), OC_OK);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_USER), OC_OK);
    if (img)
        assert_int_equal(oc_conversation_add_image(c, img, NULL), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, q), OC_OK);
    (void)m;
    return c;
}

/* oc_session_reply gives oc_caption's text; the same conversation again reuses the whole
 * KV cache; another image with the same token ids is not answered from the cache. */
static void test_reply_matches_caption(void **state) {
    (void)state;
    oc_image *a = load("images/shapes_200x130.png"), *b = load("images/chelsea_451x300.png");
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 12;
    oc_answer ca, cb;
    assert_int_equal(oc_caption(smol, a, &gp, &ca), OC_OK);
    assert_int_equal(oc_caption(smol, b, &gp, &cb), OC_OK);
    oc_encoded_image *ea, *eb;
    assert_int_equal(oc_image_encode(smol, a, &ea), OC_OK);
    assert_int_equal(oc_image_encode(smol, b, &eb), OC_OK);
    assert_true(oc_encoded_image_tiles(ea) >= 1 && oc_encoded_image_tokens(ea) > 0);

    oc_session *s;
    assert_int_equal(oc_session_new(smol, &s), OC_OK);
    oc_reply_params rp = oc_reply_default_params();
    rp.gen = gp;
    collected col = {0};
    rp.gen.on_token = collect;
    rp.gen.user_data = &col;
    oc_conversation *qa = one_question(smol, ea, "Describe this image.");
    oc_reply r;
    assert_int_equal(oc_session_reply(s, qa, &rp, &r), OC_OK);
    const char *want = ca.text[0] == ' ' ? ca.text + 1 : ca.text;
    assert_string_equal(r.text, want);
    assert_string_equal(col.text, want); /* streamed == returned */
    assert_int_equal(r.completion_tokens, ca.n_tokens);
    assert_int_equal(r.prompt_tokens, ca.timings.prompt_tokens);
    assert_int_equal(r.cached_tokens, 0);
    assert_int_equal(r.finish, ca.stopped_by_eos ? OC_FINISH_STOP : OC_FINISH_LENGTH);
    oc_reply_free(&r);

    assert_int_equal(oc_session_reply(s, qa, &rp, &r), OC_OK);
    assert_string_equal(r.text, want);
    assert_int_equal(r.cached_tokens, r.prompt_tokens - 1);
    oc_reply_free(&r);

    /* another image: the token ids are the same, the features are not */
    oc_conversation *qb = one_question(smol, eb, "Describe this image.");
    assert_int_equal(oc_session_reply(s, qb, &rp, &r), OC_OK);
    assert_string_equal(r.text, cb.text[0] == ' ' ? cb.text + 1 : cb.text);
    assert_true(r.cached_tokens < r.prompt_tokens - oc_encoded_image_tokens(eb));
    oc_reply_free(&r);

    /* a stop string, a cancel, max_tokens */
    char stop_at[64];
    snprintf(stop_at, sizeof stop_at, "%.3s", want + 4);
    const char *stops[] = {stop_at};
    rp.stop = stops;
    rp.n_stop = 1;
    col.text[0] = 0;
    assert_int_equal(oc_session_reply(s, qa, &rp, &r), OC_OK);
    assert_int_equal(r.finish, OC_FINISH_STOP);
    assert_string_equal(r.text, col.text);
    assert_int_equal(strncmp(r.text, want, strlen(r.text)), 0);
    assert_non_null(strstr(want + strlen(r.text), stop_at));
    assert_null(strstr(r.text, stop_at));
    oc_reply_free(&r);
    rp.n_stop = 0;
    col = (collected){.stop_after = 2};
    assert_int_equal(oc_session_reply(s, qa, &rp, &r), OC_OK);
    assert_int_equal(r.finish, OC_FINISH_CANCELLED);
    oc_reply_free(&r);
    rp.gen.on_token = NULL;
    rp.gen.max_tokens = 2;
    assert_int_equal(oc_session_reply(s, qa, &rp, &r), OC_OK);
    assert_int_equal(r.finish, OC_FINISH_LENGTH);
    assert_int_equal(r.completion_tokens, 2);
    oc_reply_free(&r);

    /* errors: empty, an image of another model */
    oc_conversation *empty;
    assert_int_equal(oc_conversation_new(&empty), OC_OK);
    assert_int_equal(oc_session_reply(s, empty, &rp, &r), OC_ERR_INVALID_ARG);
    assert_int_equal(oc_conversation_add_image(empty, ea, NULL), OC_ERR_INVALID_ARG);
    oc_session *ls;
    assert_int_equal(oc_session_new(llava, &ls), OC_OK);
    assert_int_equal(oc_session_reply(ls, qa, &rp, &r), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "another model"));
    oc_session_free(ls);

    oc_conversation_free(empty);
    oc_conversation_free(qa);
    oc_conversation_free(qb);
    oc_session_free(s);
    oc_encoded_image_free(ea);
    oc_encoded_image_free(eb);
    oc_answer_free(&ca);
    oc_answer_free(&cb);
    oc_image_free(a);
    oc_image_free(b);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

typedef struct {
    oc_image_cache *c;
    const unsigned char *png;
    size_t n;
    oc_encoded_image *out;
} cache_arg;

static void *cache_thread(void *arg) {
    cache_arg *a = arg;
    if (oc_image_cache_get(a->c, a->png, a->n, "png", NULL, &a->out, NULL) != OC_OK)
        a->out = NULL;
    return NULL;
}

static void test_image_cache(void **state) {
    (void)state;
    size_t na, nb;
    unsigned char *pa = read_all(td("images/shapes_200x130.png"), &na);
    unsigned char *pb = read_all(td("images/chelsea_451x300.png"), &nb);
    oc_image_cache *c;
    assert_int_equal(oc_image_cache_new(smol, 64u << 20, &c), OC_OK);
    oc_encoded_image *e1, *e2, *e3;
    int hit = -1;
    assert_int_equal(oc_image_cache_get(c, pa, na, "a.png", NULL, &e1, &hit), OC_OK);
    assert_int_equal(hit, 0);
    assert_int_equal(oc_image_cache_get(c, pa, na, "a.png", NULL, &e2, &hit), OC_OK);
    assert_int_equal(hit, 1);
    assert_ptr_equal(e1, e2);
    assert_int_equal(oc_image_cache_get(c, pb, nb, "b.png", NULL, &e3, &hit), OC_OK);
    assert_int_equal(hit, 0);
    oc_image_cache_stats st = oc_image_cache_get_stats(c);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.entries, 2);
    /* not an image: an error naming it, nothing cached */
    assert_int_equal(oc_image_cache_get(c, "nope", 4, "x.bin", NULL, &e2, &hit),
                     OC_ERR_UNSUPPORTED);
    assert_non_null(strstr(oc_last_error(), "x.bin"));
    assert_int_equal(oc_image_cache_get_stats(c).entries, 2);
    oc_image_cache_free(c); /* references handed out outlive the cache */
    assert_true(oc_encoded_image_tokens(e1) > 0);
    size_t bytes_a = oc_encoded_image_bytes(e1), bytes_b = oc_encoded_image_bytes(e3);
    oc_encoded_image_free(e1);
    oc_encoded_image_free(e1);
    oc_encoded_image_free(e3);

    /* a budget of one image: the older goes */
    size_t budget = (bytes_a > bytes_b ? bytes_a : bytes_b) + 16;
    assert_true(budget < bytes_a + bytes_b);
    assert_int_equal(oc_image_cache_new(smol, budget, &c), OC_OK);
    assert_int_equal(oc_image_cache_get(c, pb, nb, "b", NULL, &e1, &hit), OC_OK);
    oc_encoded_image_free(e1);
    assert_int_equal(oc_image_cache_get(c, pa, na, "a", NULL, &e1, &hit), OC_OK);
    oc_encoded_image_free(e1);
    st = oc_image_cache_get_stats(c);
    assert_true(st.entries == 1 && st.bytes == bytes_a);
    assert_int_equal(oc_image_cache_get(c, pb, nb, "b", NULL, &e1, &hit), OC_OK);
    assert_int_equal(hit, 0);
    oc_encoded_image_free(e1);
    oc_image_cache_free(c);

    /* four threads asking for one new image: one encoding */
    assert_int_equal(oc_image_cache_new(smol, 64u << 20, &c), OC_OK);
    pthread_t t[4];
    cache_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (cache_arg){c, pb, nb, NULL};
        pthread_create(&t[i], NULL, cache_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_ptr_equal(args[i].out, args[0].out);
    }
    st = oc_image_cache_get_stats(c);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 3);
    for (int i = 0; i < 4; i++)
        oc_encoded_image_free(args[i].out);
    oc_image_cache_free(c);
    free(pa);
    free(pb);
}

static void test_base64(void **state) {
    (void)state;
    unsigned char *out;
    size_t n;
    int big;
    assert_int_equal(srv_base64_decode("aGVsbG8=", 8, 100, &out, &n, &big), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    oc_free(out);
    assert_int_equal(srv_base64_decode("aGVs\nbG8h", 9, 100, &out, &n, &big), 0);
    assert_memory_equal(out, "hello!", 6);
    oc_free(out);
    assert_int_equal(srv_base64_decode("", 0, 100, &out, &n, &big), 0);
    assert_int_equal(n, 0);
    oc_free(out);
    assert_int_equal(srv_base64_decode("aGVsbG8=x", 9, 100, &out, &n, &big), -1);
    assert_int_equal(srv_base64_decode("a!==", 4, 100, &out, &n, &big), -1);
    assert_int_equal(srv_base64_decode("aGVsbG8", 7, 100, &out, &n, &big), -1); /* cut short */
    assert_int_equal(big, 0);
    assert_int_equal(srv_base64_decode("aGVsbG8h", 8, 5, &out, &n, &big), -1);
    assert_int_equal(big, 1);
}

static void test_request_parse(void **state) {
    (void)state;
    srv_limits lim = {.max_images = 2, .max_tokens = 100};
    srv_request r;
    srv_error e;
    const char *ok = "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"S\"},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
                     "AA==\"}},{\"type\":\"image_url\",\"image_url\":\"file:///x.png\"}]},"
                     "{\"role\":\"assistant\",\"content\":null}],\"max_tokens\":null,"
                     "\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"seed\":-3,"
                     "\"stop\":[\"x\",\"y\"],\"stream\":true,\"stream_options\":{\"include_usage\":"
                     "true},\"frequency_penalty\":0,\"user\":\"u\",\"n\":1}";
    assert_int_equal(srv_request_parse(ok, strlen(ok), &lim, &r, &e), 0);
    assert_int_equal(r.n_msgs, 3);
    assert_int_equal(r.msgs[0].role, OC_ROLE_SYSTEM);
    assert_int_equal(r.msgs[1].n_parts, 3);
    assert_string_equal(r.msgs[1].parts[2].url, "file:///x.png");
    assert_int_equal(r.msgs[2].n_parts, 0);
    assert_int_equal(r.n_images, 2);
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.has_seed && r.seed == (uint64_t)-3);
    assert_int_equal(r.n_stop, 2);
    assert_true(r.stream && r.include_usage);
    assert_string_equal(r.model, "m");
    srv_request_free(&r);
    const char *three = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                        "\"image_url\":{\"url\":\"a\"}},{\"type\":\"image_url\",\"image_url\":"
                        "{\"url\":\"b\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"c\"}}]}]}";
    assert_int_equal(srv_request_parse(three, strlen(three), &lim, &r, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.message, "3 images in the request; the limit is 2");
    assert_string_equal(e.code, "too_many_images");
    const char *trunc = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}";
    assert_int_equal(srv_request_parse(trunc, strlen(trunc), &lim, &r, &e), -1);
    assert_non_null(strstr(e.message, "not valid JSON"));
}

/* /save's JSONL, system prompt included, is training data: the system turn is rendered
 * and not trained on. */
static void test_save_and_train_format(void **state) {
    (void)state;
    const char *dir = tmpdir("serve-save");
    char path[512], img_path[512];
    snprintf(path, sizeof path, "%s/chat.jsonl", dir);
    snprintf(img_path, sizeof img_path, "%s", td("images/shapes_200x130.png"));
    oc_image *a = load("images/shapes_200x130.png");
    oc_encoded_image *ea;
    assert_int_equal(oc_image_encode(smol, a, &ea), OC_OK);
    oc_conversation *c;
    assert_int_equal(oc_conversation_new(&c), OC_OK);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_SYSTEM), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, "Be brief."), OC_OK);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_USER), OC_OK);
    assert_int_equal(oc_conversation_add_image(c, ea, NULL), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, "What is it?"), OC_OK);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_ASSISTANT), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, "Shapes."), OC_OK);
    assert_int_equal(oc_conversation_save_jsonl(c, path), OC_ERR_INVALID_ARG); /* no file */
    assert_non_null(strstr(oc_last_error(), "no file"));
    oc_conversation_pop(c);
    oc_conversation_pop(c);
    assert_int_equal(oc_conversation_length(c), 1);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_USER), OC_OK);
    assert_int_equal(oc_conversation_add_image(c, ea, img_path), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, "What is it?"), OC_OK);
    assert_int_equal(oc_conversation_add_message(c, OC_ROLE_ASSISTANT), OC_OK);
    assert_int_equal(oc_conversation_add_text(c, "Shapes."), OC_OK);
    assert_int_equal(oc_conversation_save_jsonl(c, path), OC_OK);

    oc_dataset *ds;
    if (oc_dataset_open(path, td("smolvlm-tiny"), NULL, &ds) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_train_example ex;
    assert_int_equal(oc_dataset_get(ds, 0, &ex), OC_OK);
    char *text;
    assert_int_equal(oc_detokenize(oc_model_tokenizer(smol), ex.input_ids, ex.n_tokens, 1, &text),
                     OC_OK);
    assert_true(strncmp(text, "<|im_start|>System: Be brief.<end_of_utterance>\nUser:<fake", 58)
                == 0);
    oc_free(text);
    size_t labelled = 0;
    for (size_t i = 0; i < ex.n_tokens; i++)
        labelled += ex.labels[i] != OC_IGNORE_LABEL;
    int32_t *ids;
    size_t n;
    assert_int_equal(oc_tokenize(oc_model_tokenizer(smol), " Shapes.<end_of_utterance>", 26, 0,
                                 &ids, &n), OC_OK);
    assert_int_equal(labelled, n); /* the answer and its end, not the system prompt */
    oc_free(ids);
    oc_dataset_free(ds);
    oc_conversation_free(c);
    oc_encoded_image_free(ea);
    oc_image_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_smolvlm),
        cmocka_unit_test(test_render_llava),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_reply_matches_caption),
        cmocka_unit_test(test_image_cache),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_save_and_train_format),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
