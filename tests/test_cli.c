/* The `ocellus` command line on the tiny reference model: captions and answers print
 * the text the reference token ids decode to; errors give messages and exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "shapes.h"
#include "testutil.h"

/* Runs the CLI with args (shell words), capturing stdout (and stderr if merge). */
static int run(const char *args, int merge, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s %s", OC_CLI_PATH, args, merge ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *greedy_text(int i) { return ref_greedy_text("smolvlm-tiny", i); }

/* A GGUF pair through the CLI: --model text.gguf --mmproj mmproj.gguf, and the folder
 * holding an F32 pair, caption as the Hugging Face folder does (their logits are identical,
 * test_gguf). */
static void test_gguf_model(void **state) {
    (void)state;
    static char out[1 << 16], args[4096];
    char *want = greedy_text(0);
    snprintf(args, sizeof args, "caption '%s' --model '%s' --mmproj '%s' --max-tokens 12 "
             "--no-stream", td("images/shapes_200x130.png"),
             td("gguf/smolvlm-tiny/smolvlm-tiny-F32.gguf"),
             td("gguf/smolvlm-tiny/mmproj-smolvlm-tiny-F32.gguf"));
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    assert_memory_equal(out, want, strlen(want));
    free(want);
    /* an mmproj that is not there: an error naming it */
    snprintf(args, sizeof args, "caption '%s' --model '%s' --mmproj /nonexistent.gguf",
             td("images/shapes_200x130.png"), td("gguf/smolvlm-tiny/smolvlm-tiny-F32.gguf"));
    assert_int_not_equal(run(args, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "/nonexistent.gguf"));
}

static void test_caption_and_ask(void **state) {
    (void)state;
    static char out[1 << 16], args[2048];
    char *want = greedy_text(0);
    snprintf(args, sizeof args, "caption '%s' --model '%s' --max-tokens 12 --no-stream",
             td("images/shapes_200x130.png"), td("smolvlm-tiny"));
    assert_int_equal(run(args, 0, out, sizeof out), 0);
    assert_int_equal(strlen(out), strlen(want) + 1);
    assert_memory_equal(out, want, strlen(want));
    free(want);

    want = greedy_text(1);
    snprintf(args, sizeof args, "ask '%s' 'What animal is this?' --model '%s' --max-tokens 12",
             td("images/chelsea_451x300.png"), td("smolvlm-tiny"));
    assert_int_equal(run(args, 0, out, sizeof out), 0);
    assert_memory_equal(out, want, strlen(want));
    free(want);

    /* standard input, JSON output with the token ids */
    snprintf(args, sizeof args, "caption - --model '%s' --max-tokens 12 --json < '%s'",
             td("smolvlm-tiny"), td("images/shapes_200x130.png"));
    assert_int_equal(run(args, 0, out, sizeof out), 0);
    cJSON *j;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    const cJSON *toks = oc_json_get(j, "tokens");
    assert_int_equal(cJSON_GetArraySize(toks), 12);
    assert_int_equal(cJSON_GetArrayItem(toks, 0)->valueint, 324);
    cJSON_Delete(j);
}

/* The README's first command: the bundled model (found without --model) captions the
 * example pictures in the shapes world's grammar. */
static void test_bundled_model(void **state) {
    (void)state;
    static char out[1 << 16], args[2048];
    for (int i = 1; i <= 4; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "../../examples/shapes-%d.png", i);
        snprintf(args, sizeof args, "caption '%s' --no-stream", td(rel));
        assert_int_equal(unsetenv("OCELLUS_MODEL"), 0);
        assert_int_equal(run(args, 0, out, sizeof out), 0);
        size_t n = strlen(out);
        assert_true(n > 0 && out[n - 1] == '\n');
        out[n - 1] = 0;
        oc_caption_desc d;
        if (oc_caption_parse(out, &d) != OC_OK)
            fail_msg("shapes-%d.png: \"%s\": %s", i, out, oc_last_error());
        /* the README quotes the first one, which the model gets right: scene 0 of the
         * test split, seed 1 */
        if (i == 1) {
            oc_scene sc;
            char want[OC_SCENE_TEXT_MAX];
            assert_int_equal(oc_scene_generate(OC_SPLIT_TEST, 1, 0, &sc), OC_OK);
            oc_scene_caption(&sc, want);
            assert_string_equal(out, want);
            /* --json's text is the printed text (no leading space); the ids keep it */
            static char js[1 << 16];
            snprintf(args, sizeof args, "caption '%s' --json", td(rel));
            assert_int_equal(run(args, 0, js, sizeof js), 0);
            cJSON *j;
            assert_int_equal(oc_json_parse(js, strlen(js), "stdout", &j), OC_OK);
            assert_string_equal(oc_json_get(j, "text")->valuestring, want);
            cJSON_Delete(j);
        }
    }
}

/* `ocellus data shapes`, then `ocellus train` from the tiny model with flags, a config
 * file and --tokens; the checkpoint is a model folder that `ocellus caption` loads. */
static void test_train(void **state) {
    (void)state;
    static char out[1 << 16], args[4096];
    const char *dir = tmpdir("cli-train");
    char data[512], ck[512], cfg[512];
    snprintf(data, sizeof data, "%s/shapes/conversations.jsonl", dir);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(cfg, sizeof cfg, "%s/train.json", dir);
    snprintf(args, sizeof args, "data shapes --split train --n 3 --size 48 --out '%s/shapes'",
             dir);
    assert_int_equal(run(args, 1, out, sizeof out), 0);

    /* flags */
    snprintf(args, sizeof args,
             "train --init '%s' --data '%s' --out '%s' --steps 2 --batch 2 --lr 1e-3 "
             "--betas 0.9,0.95 --eps 1e-8 --weight-decay 0.1 --warmup 0 --clip 0 --threads 1",
             td("smolvlm-tiny"), data, ck);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "step 2/2"));
    const char *files[] = {"config.json", "model.safetensors", "optimizer.safetensors",
                           "tokenizer.json", "preprocessor_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char f[600];
        snprintf(f, sizeof f, "%s/%s", ck, files[i]);
        if (access(f, R_OK) != 0)
            fail_msg("the checkpoint has no %s", files[i]);
    }
    snprintf(args, sizeof args, "caption '%s/shapes/images/00000.png' --model '%s' "
             "--max-tokens 3 --no-stream", dir, ck);
    assert_int_equal(run(args, 0, out, sizeof out), 0);

    /* a config file, overridden by a flag; --tokens sets the step count */
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{\"steps\": 1, \"lr\": 0.001, \"batch\": 3, \"betas\": \"0.9,0.98\"}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "train --init '%s' --data '%s' --out '%s' --config-file '%s' "
             "--threads 1", td("smolvlm-tiny"), data, ck, cfg);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "step 1/1"));
    snprintf(args, sizeof args, "train --init '%s' --data '%s' --out '%s' --config-file '%s' "
             "--steps 2 --threads 1", td("smolvlm-tiny"), data, ck, cfg);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "step 2/2"));
    snprintf(args, sizeof args, "train --init '%s' --data '%s' --out '%s' --batch 1 "
             "--tokens 1 --threads 1", td("smolvlm-tiny"), data, ck);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    const char *about = strstr(out, "--tokens 1: 1 steps of about ");
    assert_non_null(about);
    long per_step = atol(about + strlen("--tokens 1: 1 steps of about "));
    assert_true(per_step > 10);
    /* 5 steps' worth (the printed mean is rounded: 3 tokens less stays within 5 steps) */
    snprintf(args, sizeof args, "train --init '%s' --data '%s' --out '%s' --batch 1 "
             "--tokens %ld --threads 1", td("smolvlm-tiny"), data, ck, 5 * per_step - 3);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "step 5/5"));
    snprintf(args, sizeof args, "train --init '%s' --data '%s' --out '%s' --batch 1 --steps 1 "
             "--tokens 100", td("smolvlm-tiny"), data, ck);
    assert_int_equal(run(args, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "not both"));
}

/* --question-weights: only the types with a weight are asked; bad lists are usage errors. */
static void test_data_question_weights(void **state) {
    (void)state;
    static char out[1 << 16], args[4096], line[1024];
    const char *dir = tmpdir("cli-qw");
    snprintf(args, sizeof args,
             "data shapes --split val --n 20 --size 32 --questions 3 --out '%s' "
             "--question-weights count=0,count_colour=0,count_shape=0,colour_of=0,shape_of=0 "
             "--question-weights exists=0,left_of=0,above=0,size_of=0,background=7",
             dir);
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/vqa.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        assert_non_null(strstr(line, "\"type\": \"background\""));
    }
    fclose(f);
    assert_int_equal(lines, 20); /* a scene has one background question */

    snprintf(args, sizeof args, "data shapes --split val --n 2 --out '%s' "
             "--question-weights colour=2", dir);
    assert_int_equal(run(args, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "no question type 'colour'"));
    snprintf(args, sizeof args, "data shapes --split val --n 2 --out '%s' "
             "--question-weights count=0,count_colour=0,count_shape=0,colour_of=0,shape_of=0,"
             "exists=0,left_of=0,above=0,size_of=0,background=0", dir);
    assert_int_equal(run(args, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "leaves no question type"));
}

static void test_errors(void **state) {
    (void)state;
    static char out[1 << 16], args[2048];
    snprintf(args, sizeof args, "caption /nonexistent.png --model '%s'", td("smolvlm-tiny"));
    assert_int_equal(run(args, 1, out, sizeof out), 2 + OC_ERR_IO);
    assert_non_null(strstr(out, "/nonexistent.png"));

    snprintf(args, sizeof args, "caption '%s' --model /nonexistent-model",
             td("images/tiny_17x9.png"));
    assert_int_equal(run(args, 1, out, sizeof out), 2 + OC_ERR_IO);
    assert_non_null(strstr(out, "/nonexistent-model"));

    snprintf(args, sizeof args, "caption '%s' --model '%s' --max-tokens lots",
             td("images/tiny_17x9.png"), td("smolvlm-tiny"));
    assert_int_equal(run(args, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "--max-tokens"));

    assert_int_equal(run("frobnicate", 1, out, sizeof out), 2);
    assert_int_equal(run("caption --help", 0, out, sizeof out), 0);
    assert_non_null(strstr(out, "--max-tokens"));

    /* a file that is not an image */
    snprintf(args, sizeof args, "caption '%s' --model '%s'", td("smolvlm-tiny/config.json"),
             td("smolvlm-tiny"));
    assert_int_equal(run(args, 1, out, sizeof out), 2 + OC_ERR_UNSUPPORTED);
    assert_non_null(strstr(out, "config.json"));
}

static void test_inspect(void **state) {
    (void)state;
    static char out[1 << 16], args[4096];
    const char *dir = tmpdir("cli-inspect");
    snprintf(args, sizeof args,
             "inspect --model '%s' --image '%s' --prompt 'Describe this image.' --dump "
             "'%s/d.safetensors' --pixel-values '%s:pixel_values.SmolVLMImageProcessorPil'",
             td("smolvlm-tiny"), td("images/shapes_200x130.png"), dir,
             td("smolvlm-tiny/case0.safetensors"));
    assert_int_equal(run(args, 1, out, sizeof out), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/d.safetensors", dir);
    size_t n1, n2;
    float *a = load_f32(path, "logits", &n1);
    float *b = load_f32(td("smolvlm-tiny/case0.safetensors"), "logits", &n2);
    assert_int_equal(n1, n2);
    assert_true(rel_err(a, b, n1) <= 1e-4);
    free(a);
    free(b);
    /* a tensor of the wrong size */
    snprintf(args, sizeof args,
             "inspect --model '%s' --image '%s' --prompt 'x' --dump '%s/e.safetensors' "
             "--pixel-values '%s:logits'",
             td("smolvlm-tiny"), td("images/shapes_200x130.png"), dir,
             td("smolvlm-tiny/case0.safetensors"));
    assert_int_equal(run(args, 1, out, sizeof out), 2 + OC_ERR_FORMAT);
    assert_non_null(strstr(out, "logits"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caption_and_ask),
        cmocka_unit_test(test_gguf_model),
        cmocka_unit_test(test_bundled_model),
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_data_question_weights),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_inspect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
