/* The command line's option syntax (tools/cli_opts.c, getopt_long): llama.cpp's aliases,
 * --opt=value, abbreviations, --, options after positionals, messages for bad options,
 * and --help for every command and subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "testutil.h"

/* Runs `ocellus ARGS` (shell words, after an optional shell prefix such as "cd DIR &&"),
 * capturing stdout, and stderr into err (unless NULL). Returns the exit status. */
static int run_in(const char *prefix, const char *args, char *out, size_t cap, char *err,
                  size_t err_cap) {
    char errfile[600], cmd[8192];
    snprintf(errfile, sizeof errfile, "%s/stderr", tmpdir("cli-options-err"));
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>'%s'", prefix ? prefix : "", OC_CLI_PATH, args,
             errfile);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    if (err) {
        FILE *f = fopen(errfile, "r");
        assert_non_null(f);
        size_t k = fread(err, 1, err_cap - 1, f);
        err[k] = 0;
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(const char *args, char *out, size_t cap, char *err, size_t err_cap) {
    return run_in(NULL, args, out, cap, err, err_cap);
}

static char *greedy_text(int i) { return ref_greedy_text("smolvlm-tiny", i); }

/* The same caption however the options are spelled: transformers' greedy text. */
static void test_caption_spellings(void **state) {
    (void)state;
    static char out[1 << 16], err[1 << 14], args[4096];
    char *want = greedy_text(0);
    const char *img = td("images/shapes_200x130.png"), *model = td("smolvlm-tiny");
    const char *forms[] = {
        "caption '%s' --model '%s' --max-tokens 12 --threads 1 --no-stream",
        "caption --image '%s' -m '%s' -n 12 -t 1 --no-stream",
        "caption --image='%s' --model='%s' --max-tokens=12 --threads=1 --no-stream",
        "caption --no-stream -n12 -t1 -- '%s' -m '%s'", /* -m after --: a file name */
        "caption '%s' --mod '%s' --max-tok 12 --thr 1 --no-str", /* abbreviations */
        "caption '%s' -m '%s' --n-predict 12 -t 1 --no-stream",  /* llama.cpp's long name */
    };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        snprintf(args, sizeof args, forms[f], img, model);
        int rc = run(args, out, sizeof out, err, sizeof err);
        if (f == 3) {
            /* everything after -- is an image: "-m" is one that is not there */
            assert_int_equal(rc, 2 + OC_ERR_IO);
            assert_non_null(strstr(err, "-m"));
            continue;
        }
        if (rc != 0 || strlen(out) != strlen(want) + 1 || memcmp(out, want, strlen(want)))
            fail_msg("form %zu (%s): exit %d, \"%s\" (want \"%s\"); %s", f, args, rc, out,
                     want, err);
    }
    /* options after the images, also when POSIXLY_CORRECT asks getopt to stop at the
     * first positional */
    snprintf(args, sizeof args, "caption '%s' -m '%s' -n 12 --no-stream", img, model);
    assert_int_equal(run_in("POSIXLY_CORRECT=1", args, out, sizeof out, NULL, 0), 0);
    assert_memory_equal(out, want, strlen(want));
    free(want);
}

/* ask: -p QUESTION with --image, as llama-mtmd-cli is called, and the positional form. */
static void test_ask_prompt(void **state) {
    (void)state;
    static char out[1 << 16], out2[1 << 16], args[4096];
    char *want = greedy_text(1);
    const char *img = td("images/chelsea_451x300.png"), *model = td("smolvlm-tiny");
    snprintf(args, sizeof args, "ask -m '%s' --image '%s' -p 'What animal is this?' -n 12 "
             "--no-stream", model, img);
    assert_int_equal(run(args, out, sizeof out, NULL, 0), 0);
    assert_memory_equal(out, want, strlen(want));
    snprintf(args, sizeof args, "ask '%s' 'What animal is this?' --model '%s' --max-tokens 12 "
             "--no-stream", img, model);
    assert_int_equal(run(args, out2, sizeof out2, NULL, 0), 0);
    assert_string_equal(out, out2);
    /* with -p every positional is an image: the question is not read as one */
    snprintf(args, sizeof args, "ask '%s' -p 'What animal is this?' -m '%s' -n 12 --json",
             img, model);
    assert_int_equal(run(args, out, sizeof out, NULL, 0), 0);
    cJSON *j;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    assert_string_equal(oc_json_get(j, "question")->valuestring, "What animal is this?");
    assert_string_equal(oc_json_get(j, "image")->valuestring, img);
    assert_memory_equal(oc_json_get(j, "text")->valuestring, want, strlen(want));
    cJSON_Delete(j);
    free(want);
}

/* A file whose name starts with '-' is an option unless it comes after --. */
static void test_double_dash(void **state) {
    (void)state;
    static char out[1 << 16], err[1 << 14], args[4096], prefix[1024];
    const char *dir = tmpdir("cli-options-dash");
    snprintf(prefix, sizeof prefix, "cp '%s' '%s/-dash.png' && cd '%s' &&",
             td("images/shapes_200x130.png"), dir, dir);
    snprintf(args, sizeof args, "caption -m '%s' -n 3 --json -- -dash.png", td("smolvlm-tiny"));
    assert_int_equal(run_in(prefix, args, out, sizeof out, err, sizeof err), 0);
    cJSON *j;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    assert_string_equal(oc_json_get(j, "image")->valuestring, "-dash.png");
    assert_int_equal(cJSON_GetArraySize(oc_json_get(j, "tokens")), 3);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "caption -m '%s' -n 3 -dash.png", td("smolvlm-tiny"));
    assert_int_equal(run_in(prefix, args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "unknown option -d"));

    /* tokenize: a text that starts with '-' after --, as the library encodes it */
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --no-special --json -- '-5 or 6'",
             td("smolvlm-tiny"));
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    oc_tokenizer *tok;
    assert_int_equal(oc_tokenizer_load(td("smolvlm-tiny"), &tok), OC_OK);
    int32_t *ids;
    size_t n;
    assert_int_equal(oc_tokenize(tok, "-5 or 6", 7, 0, &ids, &n), OC_OK);
    const cJSON *got = oc_json_get(j, "ids");
    assert_int_equal((size_t)cJSON_GetArraySize(got), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cJSON_GetArrayItem(got, (int)i)->valueint, ids[i]);
    cJSON_Delete(j);
    /* --decode takes what follows as ids, as typed */
    char want[256];
    char *text;
    assert_int_equal(oc_detokenize(tok, ids, n, 1, &text), OC_OK);
    snprintf(want, sizeof want, "%s\n", text);
    oc_free(text);
    size_t used = (size_t)snprintf(args, sizeof args, "tokenize --tokenizer='%s' --decode",
                                   td("smolvlm-tiny"));
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(args + used, sizeof args - used, " %d", ids[i]);
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, want);
    oc_free(ids);
    oc_tokenizer_free(tok);
}

/* Bad options: the message names the option, exit code 2, nothing on stdout. */
static void test_bad_options(void **state) {
    (void)state;
    static char out[1 << 16], err[1 << 14], args[4096];
    const char *img = td("images/shapes_200x130.png"), *model = td("smolvlm-tiny");
    /* each line's %s are the image, then the model */
    static const struct {
        const char *args, *words;
    } cases[] = {
        {"caption '%s' -m '%s' --bogus", "unknown option --bogus"},
        {"caption '%s' -m '%s' --bogus=1", "unknown option --bogus"},
        {"caption '%s' -m '%s' -q", "unknown option -q"},
        {"caption '%s' -m '%s' --s 1", "ambiguous option --s (--seed, --stream)"},
        {"caption '%s' -m '%s' --json=yes", "--json takes no value"},
        {"caption '%s' -m '%s' -n", "-n needs a value"},
        {"caption '%s' -m '%s' --max-tokens", "--max-tokens needs a value"},
        {"caption '%s' -m '%s' -n lots", "--max-tokens expects a non-negative integer, not 'lots'"},
        {"caption '%s' -m '%s' --max-tokens=-3", "--max-tokens expects a non-negative integer"},
        {"ask --image '%s' -m '%s'", "no question given"}, /* an --image is never the question */
        {"eval vqa --data '%s' --model '%s' --shots", "--shots needs a value"},
        {"train --data '%s' --init '%s' --lr=fast", "--lr expects a number, not 'fast'"},
        {"serve '%s' --model '%s'", "unexpected argument"},
        {"data shapes --split val --n 1 --out '%s' '%s'", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, cases[i].args, img, model);
        int rc = run(args, out, sizeof out, err, sizeof err);
        if (rc != 2 || !strstr(err, cases[i].words) || out[0])
            fail_msg("%s: exit %d, stderr \"%s\" (want \"%s\"), stdout \"%s\"", args, rc, err,
                     cases[i].words, out);
    }
}

/* --help (and -h, and `ocellus help COMMAND`) for every command and subcommand: the
 * usage on stdout, exit 0, nothing on stderr; --version prints the header's version. */
static void test_help_everywhere(void **state) {
    (void)state;
    static char out[1 << 16], out2[1 << 16], err[1 << 14], args[512];
    static const char *const cmds[] = {
        "caption", "ask", "inspect", "bench", "make-model", "tokenize", "train",
        "train-tokenizer", "data", "data shapes", "data check", "data preferences", "eval",
        "eval mcq", "eval vqa", "eval captions", "eval pope", "eval perplexity",
        "eval score", "chat", "serve", "scale", "scale run", "scale fit", "scale report",
        "plot"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        for (int form = 0; form < 3; form++) {
            snprintf(args, sizeof args, form == 0 ? "%s --help" : form == 1 ? "%s -h"
                                                                          : "%s --he", cmds[i]);
            int rc = run(args, out, sizeof out, err, sizeof err);
            if (rc != 0 || strncmp(out, "usage: ocellus ", 15) || err[0])
                fail_msg("ocellus %s: exit %d, stdout \"%.60s\", stderr \"%s\"", args, rc, out,
                         err);
        }
    /* help after other options, and options of the generation set listed */
    assert_int_equal(run("eval vqa --data x.jsonl --help", out, sizeof out, NULL, 0), 0);
    assert_non_null(strstr(out, "-n, --max-tokens N"));
    assert_non_null(strstr(out, "-m, --model DIR"));
    assert_int_equal(run("help caption", out, sizeof out, NULL, 0), 0);
    assert_int_equal(run("caption --help", out2, sizeof out2, NULL, 0), 0);
    assert_string_equal(out, out2);
    assert_int_equal(run("--version", out, sizeof out, NULL, 0), 0);
    assert_string_equal(out, "ocellus " OCELLUS_VERSION "\n");
    assert_int_equal(run("-V", out2, sizeof out2, NULL, 0), 0);
    assert_string_equal(out, out2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caption_spellings),
        cmocka_unit_test(test_ask_prompt),
        cmocka_unit_test(test_double_dash),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_help_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
