/* Thread safety: one oc_model shared by 4 threads, each with its own session asking its
 * own questions (greedy, two turns, with and without images), gives the same tokens as
 * running the same conversations one after another. Also tokenization and image loading
 * from several threads at once. scripts/test-sanitize.sh runs this under ThreadSanitizer:
 * the threads of this file and each session's own pool (core/pool.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N_THREADS 4
#define MAX_TOK 6

typedef struct {
    const oc_model *m;
    const oc_image *img;   /* NULL: no image */
    const char *q1, *q2;   /* two turns */
    int32_t tokens[2][MAX_TOK];
    size_t n_tokens[2];
    char *text[2];
    oc_status status;
    char error[256];
} job;

static void run_job(job *j) {
    oc_session *s = NULL;
    j->status = oc_session_new(j->m, &s);
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = MAX_TOK;
    for (int t = 0; t < 2 && j->status == OC_OK; t++) {
        oc_answer a;
        const oc_image *imgs[1] = {j->img};
        j->status = oc_session_ask(s, imgs, t == 0 && j->img ? 1 : 0, t ? j->q2 : j->q1, &gp,
                                   &a);
        if (j->status != OC_OK)
            break;
        j->n_tokens[t] = a.n_tokens;
        memcpy(j->tokens[t], a.tokens, a.n_tokens * sizeof(int32_t));
        j->text[t] = strdup(a.text);
        oc_answer_free(&a);
    }
    if (j->status != OC_OK)
        snprintf(j->error, sizeof j->error, "%s", oc_last_error());
    oc_session_free(s);
}

static void *thread_main(void *arg) {
    run_job(arg);
    return NULL;
}

static void free_job(job *j) {
    for (int t = 0; t < 2; t++) {
        free(j->text[t]);
        j->text[t] = NULL;
    }
}

static void check_model(const char *name) {
    oc_model *m = NULL;
    if (oc_model_load(td(name), NULL, &m) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_image *a = NULL, *b = NULL;
    assert_int_equal(oc_image_load(td("images/shapes_200x130.png"), NULL, &a), OC_OK);
    assert_int_equal(oc_image_load(td("images/tiny_17x9.png"), NULL, &b), OC_OK);
    job proto[N_THREADS] = {
        {.m = m, .img = a, .q1 = "Describe this image.", .q2 = "What else?"},
        {.m = m, .img = NULL, .q1 = "Hello, who are you?", .q2 = "Tell me more."},
        {.m = m, .img = b, .q1 = "What color is it?", .q2 = "Are you sure?"},
        {.m = m, .img = a, .q1 = "How many shapes are there?", .q2 = "Count again."},
    };
    job serial[N_THREADS], par[N_THREADS];
    memcpy(serial, proto, sizeof proto);
    for (int i = 0; i < N_THREADS; i++) {
        run_job(&serial[i]);
        if (serial[i].status != OC_OK)
            fail_msg("%s: job %d: %s", name, i, serial[i].error);
    }
    for (int round = 0; round < 2; round++) {
        memcpy(par, proto, sizeof proto);
        pthread_t th[N_THREADS];
        for (int i = 0; i < N_THREADS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, thread_main, &par[i]), 0);
        for (int i = 0; i < N_THREADS; i++)
            assert_int_equal(pthread_join(th[i], NULL), 0);
        for (int i = 0; i < N_THREADS; i++) {
            if (par[i].status != OC_OK)
                fail_msg("%s: thread %d: %s", name, i, par[i].error);
            for (int t = 0; t < 2; t++) {
                assert_int_equal(par[i].n_tokens[t], serial[i].n_tokens[t]);
                assert_memory_equal(par[i].tokens[t], serial[i].tokens[t],
                                    serial[i].n_tokens[t] * sizeof(int32_t));
                assert_string_equal(par[i].text[t], serial[i].text[t]);
            }
            free_job(&par[i]);
        }
    }
    for (int i = 0; i < N_THREADS; i++) {
        printf("%s job %d: \"%s\" / \"%s\"\n", name, i, serial[i].text[0], serial[i].text[1]);
        free_job(&serial[i]);
    }
    oc_image_free(a);
    oc_image_free(b);
    oc_model_free(m);
}

static void test_shared_smolvlm(void **state) {
    (void)state;
    check_model("smolvlm-tiny");
}

static void test_shared_llava(void **state) {
    (void)state;
    check_model("llava-tiny");
}

/* ---- tokenizer and images from several threads ------------------------------------ */

typedef struct {
    const oc_tokenizer *tok;
    const char *text;
    int32_t *ids;
    size_t n;
    oc_status status;
    oc_image *img;
    const char *image_path;
} tok_job;

static void *tok_main(void *arg) {
    tok_job *j = arg;
    for (int rep = 0; rep < 20 && j->status == OC_OK; rep++) {
        oc_free(j->ids);
        j->ids = NULL;
        j->status = oc_tokenize(j->tok, j->text, strlen(j->text), 1, &j->ids, &j->n);
        char *back = NULL;
        if (j->status == OC_OK)
            j->status = oc_detokenize(j->tok, j->ids, j->n, 0, &back);
        oc_free(back);
    }
    /* a failing call leaves its sentence in this thread only */
    oc_image *none = NULL;
    if (j->status == OC_OK && oc_image_load(j->image_path, NULL, &none) != OC_ERR_IO)
        j->status = OC_ERR_INTERNAL;
    if (j->status == OC_OK && !strstr(oc_last_error(), j->image_path))
        j->status = OC_ERR_INTERNAL;
    if (j->status == OC_OK)
        j->status = oc_image_load(td("images/shapes_200x130.png"), NULL, &j->img);
    return NULL;
}

static void test_tokenizer_threads(void **state) {
    (void)state;
    oc_tokenizer *tok = NULL;
    assert_int_equal(oc_tokenizer_load(td("tokenizers/llama2.json"), &tok), OC_OK);
    const char *texts[N_THREADS] = {"Hello world", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87",
                                    "  spaces and\ttabs\n", "1234 + 5678 = 6912"};
    const char *missing[N_THREADS] = {"/nonexistent/a.png", "/nonexistent/b.png",
                                      "/nonexistent/c.png", "/nonexistent/d.png"};
    tok_job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (tok_job){.tok = tok, .text = texts[i], .image_path = missing[i]};
        assert_int_equal(pthread_create(&th[i], NULL, tok_main, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(jobs[i].status, OC_OK);
        int32_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(oc_tokenize(tok, texts[i], strlen(texts[i]), 1, &ids, &n), OC_OK);
        assert_int_equal(n, jobs[i].n);
        assert_memory_equal(ids, jobs[i].ids, n * sizeof *ids);
        oc_free(ids);
        oc_free(jobs[i].ids);
        assert_int_equal(oc_image_width(jobs[i].img), 200);
        oc_image_free(jobs[i].img);
    }
    oc_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_smolvlm),
        cmocka_unit_test(test_shared_llava),
        cmocka_unit_test(test_tokenizer_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
