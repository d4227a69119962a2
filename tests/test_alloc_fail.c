/* Allocation-failure injection (SQLite style): for k = 1, 2, ... the k-th allocation of an
 * operation fails (oc_alloc_fail_at), until the operation runs without reaching k. Each
 * failing run must return a status other than OC_OK with a sentence (or succeed when the
 * failure was recoverable), must not crash, and must not leak: LeakSanitizer checks that
 * in the sanitizer build; here the bytes in use (mallinfo2, with glibc's per-thread cache
 * off so that freed blocks count as free) must be the same before and after.
 *
 * Operations: oc_model_load of tests/data/smolvlm-tiny and llava-tiny, and a short
 * answer (max_tokens 3) about an image with each loaded model; also image decoding and
 * tokenizer loading on their own; the trainer (a fresh model, a step, a checkpoint save
 * and a resume); the dataset readers (LLaVA, messages and pre-tokenized lines with an
 * image: open, check, get, a batch); the shapes dataset writer. cJSON is routed through oc_malloc so that its
 * allocations fail too. Where an operation makes many allocations, every k at the start
 * and end of the run is tried and a stride in between, to keep the test short. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "testutil.h"
#include "train_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Every k up to EDGE from either end; at most MIDDLE points in between. The trainer's
 * runs each write a checkpoint (with its fsyncs): it uses a narrower edge. */
#define EDGE 2000
#define MIDDLE 300
static long edge = EDGE;

static int oc_read_file_for_test(const char *path, char **text, size_t *n) {
    *text = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *text = malloc((size_t)len + 1);
    *n = fread(*text, 1, (size_t)len, fp);
    fclose(fp);
    return *n == (size_t)len ? 0 : -1;
}

static size_t in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef oc_status (*op_fn)(void *ctx);

typedef struct {
    const char *what;
    long total;     /* allocations of a run that succeeds */
    long tried, failed, recovered;
} op_stats;

/* Runs op with the k-th allocation failing, for the k described above. */
static void inject(const char *what, op_fn op, void *ctx) {
    op_stats st = {what, 0, 0, 0, 0};
    /* two clean runs: the first warms up lazily allocated library state (thread pools) */
    oc_alloc_fail_at(0);
    assert_int_equal(op(ctx), OC_OK);
    oc_alloc_fail_at(0);
    size_t base = in_use();
    if (op(ctx) != OC_OK)
        fail_msg("%s: %s", what, oc_last_error());
    st.total = oc_alloc_fail_at(0);
    assert_true(st.total > 0);
    if (!UNDER_ASAN && in_use() != base)
        fail_msg("%s: %zd bytes more in use after a clean run", what,
                 (ssize_t)(in_use() - base));
    long stride = 1;
    if (st.total > 2 * edge)
        stride = (st.total - 2 * edge) / MIDDLE + 1;
    for (long k = 1;; k++) {
        if (k > edge && k < st.total - edge && (k - edge) % stride)
            continue;
        size_t before = in_use();
        oc_alloc_fail_at(k);
        oc_status s = op(ctx);
        long n = oc_alloc_fail_at(0);
        st.tried++;
        if (n < k) { /* the k-th allocation was never reached */
            if (s != OC_OK)
                fail_msg("%s: fails with %s without an injected failure: %s", what,
                         oc_status_str(s), oc_last_error());
            break;
        }
        if (s == OC_OK) {
            st.recovered++;
        } else {
            st.failed++;
            if (s == OC_ERR_INTERNAL || !oc_last_error()[0])
                fail_msg("%s: allocation %ld failing gives %s, \"%s\"", what, k,
                         oc_status_str(s), oc_last_error());
        }
        if (!UNDER_ASAN && in_use() != before)
            fail_msg("%s: allocation %ld failing (%s: %s) leaks %zd bytes", what, k,
                     oc_status_str(s), oc_last_error(), (ssize_t)(in_use() - before));
        if (k > st.total + 1000)
            fail_msg("%s: still reaching allocation %ld of %ld", what, k, st.total);
    }
    printf("%-34s %6ld allocations, %5ld injected (%ld failed cleanly, %ld recovered)\n",
           what, st.total, st.tried - 1, st.failed, st.recovered);
}

/* ---- operations -------------------------------------------------------------------- */

static oc_status op_load(void *ctx) {
    oc_model *m = NULL;
    oc_status s = oc_model_load((const char *)ctx, NULL, &m);
    if (s == OC_OK)
        assert_non_null(m);
    else
        assert_null(m);
    oc_model_free(m);
    return s;
}

typedef struct {
    const oc_model *m;
    const oc_image *img;
    int turns;
} ask_ctx;

static oc_status op_ask(void *ctx) {
    ask_ctx *c = ctx;
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 3;
    gp.ignore_eos = 1;
    oc_session *s = NULL;
    oc_status st = oc_session_new(c->m, &s);
    if (st != OC_OK)
        return st;
    const oc_image *imgs[1] = {c->img};
    for (int t = 0; t < c->turns && st == OC_OK; t++) {
        oc_answer a;
        memset(&a, 0x55, sizeof a);
        st = oc_session_ask(s, imgs, t == 0, t == 0 ? "What is in the image?" : "Why?", &gp,
                            &a);
        if (st == OC_OK) {
            assert_non_null(a.text);
            oc_answer_free(&a);
        }
    }
    oc_session_free(s);
    return st;
}

static oc_status op_image(void *ctx) {
    oc_image *img = NULL;
    oc_status s = oc_image_load((const char *)ctx, NULL, &img);
    oc_image_free(img);
    return s;
}

static oc_status op_tokenizer(void *ctx) {
    oc_tokenizer *tok = NULL;
    oc_status s = oc_tokenizer_load((const char *)ctx, &tok);
    if (s == OC_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        const char *text = "Hello <image> world, caf\xc3\xa9 123!";
        s = oc_tokenize(tok, text, strlen(text), 1, &ids, &n);
        if (s == OC_OK) {
            char *back = NULL;
            s = oc_detokenize(tok, ids, n, 1, &back);
            oc_free(back);
        }
        oc_free(ids);
    }
    oc_tokenizer_free(tok);
    return s;
}

typedef struct {
    const char *cfg, *ck;
} train_ctx;

/* A fresh model, one step, a checkpoint save, a resume and a step from it. */
static oc_status op_train(void *ctx) {
    train_ctx *c = ctx;
    oc_train_params tp = oc_train_default_params();
    tp.steps = 3;
    fixture_batch fb;
    fixture_examples(&fb, 4, 0);
    oc_trainer *tr = NULL, *r = NULL;
    oc_status s = oc_trainer_new_from_config(c->cfg, &tp, &tr);
    if (s == OC_OK)
        s = oc_trainer_step(tr, fb.ex, 4, NULL);
    if (s == OC_OK)
        s = oc_trainer_save(tr, c->ck);
    if (s == OC_OK)
        s = oc_trainer_resume(c->ck, &tp, &r);
    if (s == OC_OK)
        s = oc_trainer_step(r, fb.ex, 4, NULL);
    oc_trainer_free(tr);
    oc_trainer_free(r);
    free(fb.pixels);
    return s;
}

typedef struct {
    const char *jsonl, *model;
} data_ctx;

static oc_status op_dataset(void *ctx) {
    data_ctx *c = ctx;
    oc_dataset_params p = oc_dataset_default_params();
    oc_dataset *ds = NULL;
    oc_status s = oc_dataset_open(c->jsonl, c->model, &p, &ds);
    oc_dataset_stats st;
    if (s == OC_OK)
        s = oc_dataset_check(ds, &st);
    oc_train_example ex[2];
    if (s == OC_OK)
        s = oc_dataset_get(ds, 1, &ex[0]);
    if (s == OC_OK)
        s = oc_dataset_next_batch(ex, 2, ds);
    oc_dataset_free(ds);
    return s;
}

static oc_status op_shapes(void *ctx) {
    oc_shapes_params p = oc_shapes_default_params();
    p.n = 2;
    p.image_size = 32;
    p.questions_per_image = 2;
    return oc_shapes_write_dataset(&p, (const char *)ctx);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_trainer(void **state) {
    (void)state;
    char cfg[600], ck[700];
    snprintf(cfg, sizeof cfg, "%s", tmpdir("af-train"));
    fixture_config(cfg, 0);
    snprintf(ck, sizeof ck, "%s/ck", cfg);
    train_ctx c = {cfg, ck};
    edge = 400;
    inject("trainer: new, step, save, resume, step", op_train, &c);
    edge = EDGE;
}

static void test_dataset_readers(void **state) {
    (void)state;
    char dir[600], jsonl[1600], img[700];
    snprintf(dir, sizeof dir, "%s", tmpdir("af-data"));
    snprintf(img, sizeof img, "%s/a.png", dir);
    snprintf(jsonl, sizeof jsonl, "cp '%s' '%s'", td("images/tiny_17x9.png"), img);
    assert_int_equal(system(jsonl), 0);
    snprintf(jsonl, sizeof jsonl, "%s/data.jsonl", dir);
    write_text(jsonl,
               "{\"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
               "\"<image>\\nWhat is this?\"}, {\"from\": \"gpt\", \"value\": \"A cat.\"}]}\n"
               "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, "
               "{\"type\": \"text\", \"text\": \"And this?\"}]}, {\"role\": \"assistant\", "
               "\"content\": \"A dog.\"}], \"images\": [\"a.png\"]}\n"
               "\n"
               "{\"input_ids\": [1, 20, 21, 22], \"labels\": [-100, 20, 21, 22]}\n");
    data_ctx c = {jsonl, td("smolvlm-tiny")};
    inject("dataset: open, check, get, batch", op_dataset, &c);
}

static void test_shapes_writer(void **state) {
    (void)state;
    char out[700];
    snprintf(out, sizeof out, "%s/ds", tmpdir("af-shapes"));
    inject("shapes dataset writer (2 scenes)", op_shapes, out);
}


static void test_images(void **state) {
    (void)state;
    const char *files[] = {"images/shapes_200x130.png", "images-formats/baseline.jpg",
                           "images-formats/progressive.jpg", "images-formats/anim.gif",
                           "images-formats/rgb.bmp", "images-formats/rle.tga",
                           "images-formats/grey16.pgm", "images-formats/rgb16.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024], what[128];
        snprintf(path, sizeof path, "%s", td(files[i]));
        snprintf(what, sizeof what, "image %s", strchr(files[i], '/') + 1);
        inject(what, op_image, path);
    }
}

/* A cut-down Llama 2 tokenizer.json (ids < 400: specials, byte fallback pieces, the first
 * merges) in dir: the same code paths as the full one at a fraction of the allocations. */
static void write_mini_llama2(const char *path) {
    size_t n = 0;
    char *text = NULL;
    assert_int_equal(oc_read_file_for_test(td("tokenizers/llama2.json"), &text, &n), 0);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    assert_non_null(j);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *nv = cJSON_CreateObject(), *nm = cJSON_CreateArray();
    for (cJSON *e = vocab->child; e; e = e->next)
        if (e->valuedouble < 400)
            cJSON_AddNumberToObject(nv, e->string, e->valuedouble);
    for (cJSON *e = merges->child; e; e = e->next) {
        char a[256], b[256], ab[512];
        const char *sp = cJSON_IsString(e) ? strchr(e->valuestring, ' ') : NULL;
        if (!sp || (size_t)(sp - e->valuestring) >= sizeof a || strlen(sp + 1) >= sizeof b)
            continue;
        memcpy(a, e->valuestring, (size_t)(sp - e->valuestring));
        a[sp - e->valuestring] = 0;
        strcpy(b, sp + 1);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        if (cJSON_GetObjectItemCaseSensitive(nv, a) && cJSON_GetObjectItemCaseSensitive(nv, b) &&
            cJSON_GetObjectItemCaseSensitive(nv, ab))
            cJSON_AddItemToArray(nm, cJSON_CreateString(e->valuestring));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(model, "vocab", nv);
    cJSON_ReplaceItemInObjectCaseSensitive(model, "merges", nm);
    char *out = cJSON_PrintUnformatted(j);
    write_text(path, out);
    cJSON_free(out);
    cJSON_Delete(j);
}

static void test_tokenizers(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s", td("smolvlm-tiny/tokenizer.json"));
    inject("tokenizer smolvlm-tiny", op_tokenizer, path);
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir("af-llama2"));
    write_mini_llama2(path);
    inject("tokenizer llama2 (ids < 400)", op_tokenizer, path);
}

/* Loading: the tiny model folder, with the tokenizer.json of smolvlm-tiny (the LLaVA one
 * is 3.5 MB, whose allocations would make every injected load slow; tokenizers are
 * covered above). Then answering with the real folder. */
static void model_and_ask(const char *name, int turns) {
    char dir[1024], what[128];
    snprintf(dir, sizeof dir, "%s", tmpdir(name));
    const char *files[] = {"config.json", "generation_config.json", "preprocessor_config.json",
                           "model.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char from[1024], to[1200];
        snprintf(from, sizeof from, "%s/%s", name, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        assert_int_equal(symlink(td(from), to), 0);
    }
    char to[1200];
    snprintf(to, sizeof to, "%s/tokenizer.json", dir);
    assert_int_equal(symlink(td("smolvlm-tiny/tokenizer.json"), to), 0);
    snprintf(what, sizeof what, "load %s", name);
    inject(what, op_load, dir);

    oc_model *m = NULL;
    assert_int_equal(oc_model_load(td(name), NULL, &m), OC_OK);
    oc_image *img = NULL;
    assert_int_equal(oc_image_load(td("images/tiny_17x9.png"), NULL, &img), OC_OK);
    ask_ctx c = {m, img, turns};
    snprintf(what, sizeof what, "ask %s (%d turns, 3 tokens)", name, turns);
    inject(what, op_ask, &c);
    oc_image_free(img);
    oc_model_free(m);
}

static void test_smolvlm(void **state) {
    (void)state;
    model_and_ask("smolvlm-tiny", 2);
}

static void test_llava(void **state) {
    (void)state;
    model_and_ask("llava-tiny", 2);
}

int main(int argc, char **argv) {
    /* glibc's per-thread cache keeps freed blocks counted as in use: turn it off (once,
     * by running again with the tunable set) so that the byte balance is exact. */
    const char *tun = getenv("GLIBC_TUNABLES");
    if (!UNDER_ASAN && argc >= 1 && (!tun || !strstr(tun, "tcache_count=0"))) {
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    /* one kernel thread: the loops below count every allocation in a fixed order */
    oc_set_threads(1);
    cJSON_Hooks hooks = {oc_malloc, oc_free};
    cJSON_InitHooks(&hooks);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_tokenizers),
        cmocka_unit_test(test_smolvlm),
        cmocka_unit_test(test_llava),
        cmocka_unit_test(test_trainer),
        cmocka_unit_test(test_dataset_readers),
        cmocka_unit_test(test_shapes_writer),
    };
    int fails = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/oc-test-af-llama2-%ld /tmp/oc-test-smolvlm-tiny-%ld "
             "/tmp/oc-test-llava-tiny-%ld /tmp/oc-test-af-train-%ld /tmp/oc-test-af-data-%ld "
             "/tmp/oc-test-af-shapes-%ld", (long)getpid(), (long)getpid(), (long)getpid(),
             (long)getpid(), (long)getpid(), (long)getpid());
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove the test folders\n");
    return fails;
}
