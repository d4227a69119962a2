/* Byte-level BPE training: hand-checked merges, the tokenizer.json layout of the reference
 * model, loading the result with the tokenizer, errors. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bpe_train.h"
#include "file.h"
#include "testutil.h"

static const char *write_corpus(const char *tag, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/corpus.txt", tmpdir(tag));
    write_text(path, text);
    return path;
}

static cJSON *load_json(const char *path) {
    char *text;
    size_t n;
    assert_int_equal(oc_read_file(path, 1 << 26, &text, &n), OC_OK);
    cJSON *j = cJSON_Parse(text);
    oc_free(text);
    assert_non_null(j);
    return j;
}

static void expect_merges(const cJSON *tok, const char *const *want, size_t n_want) {
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(tok, "model"), "merges");
    assert_int_equal(cJSON_GetArraySize(merges), n_want);
    for (size_t i = 0; i < n_want; i++) {
        const cJSON *m = cJSON_GetArrayItem(merges, (int)i);
        char got[128];
        snprintf(got, sizeof got, "%s %s", cJSON_GetArrayItem(m, 0)->valuestring,
                 cJSON_GetArrayItem(m, 1)->valuestring);
        assert_string_equal(got, want[i]);
    }
}

/* Words "aaab", " aab", " ab", "\n": worked out by hand in the comments. */
static void test_hand_checked_merges(void **state) {
    (void)state;
    const char *corpus = write_corpus("bpe-hand", "aaab aab ab\n");
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    oc_bpe_train_params p = oc_bpe_train_default_params();
    p.min_frequency = 1;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_OK);
    cJSON *tok = load_json(out);
    /* (a,a) and (a,b) both occur 3 times: the smaller pair of ids wins; then (a,b) twice;
     * then every pair once: ties by ids, and Ġ (263) sorts before the merged tokens */
    static const char *const want[] = {"a a", "a b", "Ġ aa", "Ġ ab", "aa ab", "Ġaa b"};
    expect_merges(tok, want, 6);
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(tok, "model"), "vocab");
    assert_int_equal(cJSON_GetArraySize(vocab), 43 + 256 + 6);
    assert_int_equal(cJSON_GetObjectItem(vocab, "aa")->valueint, 299);
    assert_int_equal(cJSON_GetObjectItem(vocab, "Ġaab")->valueint, 304);
    cJSON_Delete(tok);

    /* min_frequency 2 stops after the pairs seen twice or more */
    p.min_frequency = 2;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_OK);
    tok = load_json(out);
    expect_merges(tok, want, 2);
    cJSON_Delete(tok);

    /* the vocabulary size bounds the merges */
    p.min_frequency = 1;
    p.vocab_size = 43 + 256 + 3;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_OK);
    tok = load_json(out);
    expect_merges(tok, want, 3);
    cJSON_Delete(tok);
}

/* With SmolVLM's special tokens, everything up to the first merged token is the reference
 * tokenizer.json byte for byte (special tokens, pipeline, the 256 byte characters). */
static void test_layout_matches_reference(void **state) {
    (void)state;
    const char *corpus = write_corpus("bpe-layout", "the theme of the thesis\nthe end\n");
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    assert_int_equal(oc_bpe_train(files, 1, NULL, out), OC_OK);
    char *ours, *ref;
    size_t n_ours, n_ref;
    assert_int_equal(oc_read_file(out, 1 << 24, &ours, &n_ours), OC_OK);
    assert_int_equal(oc_read_file(td("smolvlm-tiny/tokenizer.json"), 1 << 24, &ref, &n_ref),
                     OC_OK);
    const char *cut = strstr(ref, "      \"Ġt\": 299");
    assert_non_null(cut);
    size_t k = (size_t)(cut - ref);
    assert_true(n_ours > k);
    assert_memory_equal(ours, ref, k);
    assert_int_equal(ours[n_ours - 1], '}'); /* no final newline, as tokenizers writes */

    /* and as JSON: every field but the learned vocab and merges is the reference's */
    cJSON *a = cJSON_Parse(ours), *b = cJSON_Parse(ref);
    assert_non_null(a);
    assert_non_null(b);
    for (cJSON *x = a->child, *y = b->child; x || y; x = x->next, y = y->next) {
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(x->string, y->string); /* same keys in the same order */
        if (strcmp(x->string, "model") == 0) {
            for (cJSON *u = x->child, *v = y->child; u || v; u = u->next, v = v->next) {
                assert_non_null(u);
                assert_non_null(v);
                assert_string_equal(u->string, v->string);
                if (strcmp(u->string, "vocab") && strcmp(u->string, "merges"))
                    assert_true(cJSON_Compare(u, v, 1));
            }
        } else {
            assert_true(cJSON_Compare(x, y, 1));
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    oc_free(ours);
    oc_free(ref);
}

static void round_trip(const oc_tokenizer *tok, const char *text) {
    int32_t *ids;
    size_t n;
    assert_int_equal(oc_tokenize(tok, text, strlen(text), 0, &ids, &n), OC_OK);
    char *back;
    assert_int_equal(oc_detokenize(tok, ids, n, 1, &back), OC_OK);
    assert_string_equal(back, text);
    oc_free(back);
    oc_free(ids);
}

static size_t count_tokens(const oc_tokenizer *tok, const char *text) {
    int32_t *ids;
    size_t n;
    assert_int_equal(oc_tokenize(tok, text, strlen(text), 0, &ids, &n), OC_OK);
    oc_free(ids);
    return n;
}

/* Trains on a small generated corpus and loads the result with the tokenizer. */
static void test_load_and_round_trip(void **state) {
    (void)state;
    char *text = malloc(1 << 16);
    size_t k = 0;
    static const char *const words[] = {"the", "shape", "circle", "square", "red", "blue",
                                        "is", "to", "left", "of", "a", "large", "small"};
    unsigned r = 1;
    for (int line = 0; line < 400; line++) {
        for (int w = 0; w < 8; w++) {
            r = r * 1103515245u + 12345u;
            k += (size_t)snprintf(text + k, 64, "%s%s", w ? " " : "", words[(r >> 16) % 13]);
        }
        k += (size_t)snprintf(text + k, 64, "%s", line % 50 ? ".\n" : " <image> ünïcödé 🙂\n");
    }
    const char *corpus = write_corpus("bpe-load", text);
    free(text);
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    oc_bpe_train_params p = oc_bpe_train_default_params();
    p.vocab_size = 420;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_OK);

    oc_tokenizer *tok;
    oc_status s = oc_tokenizer_load(out, &tok);
    if (s != OC_OK)
        fail_msg("%s", oc_last_error());
    /* the corpus has few distinct words: merging stops (min frequency 2) before 420 */
    size_t vs = oc_tokenizer_vocab_size(tok);
    assert_true(vs > 43 + 256 + 40 && vs <= 420);
    /* frequent words became single tokens, with their leading space */
    assert_int_equal(count_tokens(tok, " circle"), 1);
    assert_int_equal(count_tokens(tok, "the square is to the left of a large red circle."), 12);
    assert_int_equal(count_tokens(tok, "<image>"), 1);
    int32_t *ids;
    size_t n;
    assert_int_equal(oc_tokenize(tok, " square", 7, 0, &ids, &n), OC_OK);
    assert_string_equal(oc_token_piece(tok, ids[0]), "Ġsquare");
    oc_free(ids);
    const char *texts[] = {
        "the red circle",
        "  leading spaces and trailing  ",
        "new\nlines\n\n and tabs\t!",
        "numbers 12345 and punctuation?!...",
        "unseen: zebra xylophone quartz",
        "ünïcödé, 日本語, emoji 🙂🙃",
        "<|im_start|>User:<image>what?<end_of_utterance>\nAssistant:",
        "it's they're we've I'm you'll he'd",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        round_trip(tok, texts[i]);
    oc_tokenizer_free(tok);
}

static void test_custom_special_tokens(void **state) {
    (void)state;
    const char *corpus = write_corpus("bpe-special", "<s>hello world</s>\n<s>hello there</s>\n"
                                                     "<s>hello world</s>\n");
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    const char *special[] = {"<s>", "</s>", "<pad>"};
    oc_bpe_train_params p = oc_bpe_train_default_params();
    p.special = special;
    p.n_special = 3;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_OK);
    cJSON *tok = load_json(out);
    const cJSON *added = cJSON_GetObjectItem(tok, "added_tokens");
    assert_int_equal(cJSON_GetArraySize(added), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(added, 1), "content")->valuestring,
                        "</s>");
    const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(tok, "model"), "vocab");
    assert_int_equal(cJSON_GetObjectItem(vocab, "<pad>")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(vocab, "!")->valueint, 3);
    /* the special tokens were cut out of the text: no merge ever involves '<' or '/' */
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(tok, "model"), "merges");
    assert_true(cJSON_GetArraySize(merges) > 0);
    for (const cJSON *m = merges->child; m; m = m->next)
        for (int i = 0; i < 2; i++) {
            const char *piece = cJSON_GetArrayItem(m, i)->valuestring;
            assert_null(strchr(piece, '<'));
            assert_null(strchr(piece, '/'));
        }
    assert_non_null(cJSON_GetObjectItem(vocab, "hello"));
    cJSON_Delete(tok);
}

static void test_errors(void **state) {
    (void)state;
    const char *corpus = write_corpus("bpe-err", "fine line\nbad \xff\xfe line\n");
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    assert_int_equal(oc_bpe_train(files, 1, NULL, out), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "corpus.txt:2: invalid UTF-8"));
    assert_false(oc_file_exists(out));

    write_text(corpus, "hello\n");
    oc_bpe_train_params p = oc_bpe_train_default_params();
    p.vocab_size = 100; /* below 43 special + 256 bytes */
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "vocabulary size 100"));

    const char *dup[] = {"<a>", "<b>", "<a>"};
    p = oc_bpe_train_default_params();
    p.special = dup;
    p.n_special = 3;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_ERR_INVALID_ARG);

    const char *missing[] = {"/nonexistent/corpus.txt"};
    assert_int_equal(oc_bpe_train(missing, 1, NULL, out), OC_ERR_IO);
    assert_int_equal(oc_bpe_train(files, 0, NULL, out), OC_ERR_INVALID_ARG);

    p = oc_bpe_train_default_params();
    p.max_corpus_bytes = 3;
    assert_int_equal(oc_bpe_train(files, 1, &p, out), OC_ERR_LIMIT);

    /* an empty corpus still gives a valid tokenizer: bytes only */
    write_text(corpus, "");
    assert_int_equal(oc_bpe_train(files, 1, NULL, out), OC_OK);
    cJSON *tok = load_json(out);
    expect_merges(tok, NULL, 0);
    cJSON_Delete(tok);
}

static void test_allocation_failures(void **state) {
    (void)state;
    const char *corpus = write_corpus("bpe-oom", "aaab aab ab\nthe theme of the thesis\n");
    char out[600];
    snprintf(out, sizeof out, "%s.json", corpus);
    const char *files[] = {corpus};
    for (long k = 1; k < 5000; k++) {
        oc_alloc_fail_at(k);
        oc_status s = oc_bpe_train(files, 1, NULL, out);
        long used = oc_alloc_fail_at(0);
        if (s == OC_OK && used < k)
            return;
        /* PCRE2's JIT compiler may fail to allocate: the interpreter then runs, fine */
        if (s != OC_OK)
            assert_int_equal(s, OC_ERR_NOMEM);
    }
    fail_msg("still failing after 5000 allocations");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_checked_merges),
        cmocka_unit_test(test_layout_matches_reference),
        cmocka_unit_test(test_load_and_round_trip),
        cmocka_unit_test(test_custom_special_tokens),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
