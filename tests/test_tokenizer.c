/* tokenizer.json: the reference cases from Hugging Face tokenizers 0.23 (llama2, llama3,
 * qwen3, the SmolVLM and LLaVA prompts), cases of our own whose expectations are derived
 * from the tokenizers source (each says how), and malformed files.
 *
 * A derivation often writes the expected ids as the concatenation of the encodings of
 * the pre-tokens: BPE runs on each pre-token alone, so once the regex split is worked
 * out by hand, encode(piece) of each piece (a string the regex keeps whole) gives its
 * ids independently of the surrounding text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "alloc.h"
#include "json.h"
#include "testutil.h"
#include "tok_internal.h"
#include "tokenizer.h"

/* ---- helpers ------------------------------------------------------------------------ */

static oc_tokenizer *load(const char *path) {
    oc_tokenizer *tok = NULL;
    oc_status s = oc_tokenizer_load(path, &tok);
    if (s != OC_OK)
        fail_msg("%s", oc_last_error());
    return tok;
}

/* The big reference tokenizers, loaded once for all tests (freed in teardown). */
static const char *const SHARED_NAMES[] = {"llama2", "llama3", "qwen3"};
static oc_tokenizer *shared_tok[3];

static const oc_tokenizer *shared(const char *name) {
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, SHARED_NAMES[i]))
            continue;
        if (!shared_tok[i]) {
            char rel[64];
            snprintf(rel, sizeof rel, "tokenizers/%s.json", name);
            shared_tok[i] = load(td(rel));
        }
        return shared_tok[i];
    }
    fail_msg("no shared tokenizer %s", name);
    return NULL;
}

static int free_shared(void **state) {
    (void)state;
    for (int i = 0; i < 3; i++) {
        oc_tokenizer_free(shared_tok[i]);
        shared_tok[i] = NULL;
    }
    return 0;
}

typedef struct {
    int32_t *v;
    size_t n;
} idvec;

static idvec enc(const oc_tokenizer *tok, const char *text, size_t len, int special) {
    idvec r = {0};
    oc_status s = oc_tokenize(tok, text, len, special, &r.v, &r.n);
    if (s != OC_OK)
        fail_msg("encode failed: %s", oc_last_error());
    return r;
}

static idvec encs(const oc_tokenizer *tok, const char *text) {
    return enc(tok, text, strlen(text), 0);
}

static char *dec(const oc_tokenizer *tok, const int32_t *ids, size_t n, int keep) {
    char *t = NULL;
    oc_status s = oc_detokenize(tok, ids, n, keep, &t);
    if (s != OC_OK)
        fail_msg("decode failed: %s", oc_last_error());
    return t;
}

static int same(const idvec *a, const int32_t *b, size_t n) {
    return a->n == n && (n == 0 || memcmp(a->v, b, n * sizeof *b) == 0);
}

static void print_ids(const char *what, const int32_t *v, size_t n) {
    printf("  %s:", what);
    for (size_t i = 0; i < n; i++)
        printf(" %d", (int)v[i]);
    printf("\n");
}

/* Asserts that encoding text gives the concatenation of the encodings of parts. */
static void expect_concat(const oc_tokenizer *tok, const char *text, const char *const *parts,
                          size_t n_parts) {
    int32_t want[4096];
    size_t n = 0;
    for (size_t i = 0; i < n_parts; i++) {
        idvec p = encs(tok, parts[i]);
        assert_true(n + p.n <= 4096);
        memcpy(want + n, p.v, p.n * sizeof *want);
        n += p.n;
        oc_free(p.v);
    }
    idvec got = encs(tok, text);
    if (!same(&got, want, n)) {
        printf("text '%s'\n", text);
        print_ids("got", got.v, got.n);
        print_ids("want", want, n);
        fail();
    }
    oc_free(got.v);
}

/* Asserts that text encodes to the ids of the given pieces (vocabulary strings). */
static void expect_pieces(const oc_tokenizer *tok, const char *text, int special,
                          const char *const *pieces, size_t n) {
    int32_t want[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        want[i] = oc_tok_id(tok, pieces[i]);
        if (want[i] < 0)
            fail_msg("'%s' is not in the vocabulary", pieces[i]);
    }
    idvec got = enc(tok, text, strlen(text), special);
    if (!same(&got, want, n)) {
        printf("text '%s'\n", text);
        print_ids("got", got.v, got.n);
        print_ids("want", want, n);
        for (size_t i = 0; i < got.n; i++)
            printf("    %d '%s'\n", (int)got.v[i], oc_token_piece(tok, got.v[i]));
        fail();
    }
    oc_free(got.v);
}

#define PIECES(...) (const char *const[]){__VA_ARGS__}, \
    sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

static void round_trip(const oc_tokenizer *tok, const char *text) {
    idvec v = encs(tok, text);
    char *back = dec(tok, v.v, v.n, 1);
    assert_string_equal(back, text);
    oc_free(back);
    oc_free(v.v);
}

/* ---- reference cases ---------------------------------------------------------------- */

static int32_t *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) v[i++] = (int32_t)e->valuedouble;
    return v;
}

static void run_reference(const char *name) {
    cJSON *root = NULL;
    assert_int_equal(oc_json_load(td("tokenizer_cases.json"), 1 << 24, &root), OC_OK);
    const oc_tokenizer *tok = shared(name);
    const cJSON *cases = cJSON_GetObjectItem(root, name), *c;
    assert_true(cJSON_GetArraySize(cases) > 0);
    int pass[3] = {0, 0, 0}, total = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const char *decoded = cJSON_GetObjectItem(c, "decoded")->valuestring;
        size_t n_ids, n_sp;
        int32_t *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n_ids);
        int32_t *sp = json_ids(cJSON_GetObjectItem(c, "ids_with_special"), &n_sp);
        idvec a = enc(tok, text, strlen(text), 0), b = enc(tok, text, strlen(text), 1);
        /* transformers' decode keeps special tokens by default */
        char *d = dec(tok, ids, n_ids, 1);
        int ok[3] = {same(&a, ids, n_ids), same(&b, sp, n_sp), !strcmp(d, decoded)};
        for (int k = 0; k < 3; k++)
            pass[k] += ok[k];
        if (!ok[0] || !ok[1] || !ok[2]) {
            printf("%s: '%s'\n", name, text);
            print_ids("got ids", a.v, a.n);
            print_ids("want ids", ids, n_ids);
            print_ids("got ids_with_special", b.v, b.n);
            print_ids("want ids_with_special", sp, n_sp);
            printf("  decoded '%s', want '%s'\n", d, decoded);
        }
        total++;
        oc_free(a.v);
        oc_free(b.v);
        oc_free(d);
        free(ids);
        free(sp);
    }
    printf("%s: ids %d/%d, ids_with_special %d/%d, decoded %d/%d\n", name, pass[0], total,
           pass[1], total, pass[2], total);
    cJSON_Delete(root);
    assert_int_equal(pass[0] + pass[1] + pass[2], 3 * total);
}

static void test_llama2_reference(void **state) { (void)state; run_reference("llama2"); }
static void test_llama3_reference(void **state) { (void)state; run_reference("llama3"); }
static void test_qwen3_reference(void **state) { (void)state; run_reference("qwen3"); }

/* Each prompt_text of a model's reference.json encodes (with special tokens, as the
 * processor does) to exactly its input_ids, and decodes back. */
static void run_prompts(const char *dir, int fix_space) {
    char rel[128];
    snprintf(rel, sizeof rel, "%s/reference.json", dir);
    cJSON *root = NULL;
    assert_int_equal(oc_json_load(td(rel), 1 << 24, &root), OC_OK);
    oc_tokenizer *tok = load(td(dir)); /* the folder: finds tokenizer.json */
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *text = cJSON_GetObjectItem(c, "prompt_text")->valuestring;
        size_t n_ids;
        int32_t *ids = json_ids(cJSON_GetObjectItem(c, "input_ids"), &n_ids);
        idvec got = enc(tok, text, strlen(text), 1);
        if (!same(&got, ids, n_ids)) {
            print_ids("got", got.v, got.n);
            print_ids("want", ids, n_ids);
            fail_msg("%s: prompt %d differs", dir, n);
        }
        /* decoding (without the BOS the post-processor adds) gives the text back; for
         * LLaVA's Llama-2 tokenizer with one difference: the Prepend normalizer gave the
         * text after the image tokens a "▁" of its own, which decodes to a space */
        size_t skip = got.n > 0 && got.v[0] == oc_tok_bos(tok) ? 1 : 0;
        char *back = dec(tok, got.v + skip, got.n - skip, 1);
        char want[4096];
        snprintf(want, sizeof want, "%s", text);
        char *nl = strstr(want, "<image>\n");
        if (fix_space && nl) {
            nl += strlen("<image>");
            memmove(nl + 1, nl, strlen(nl) + 1);
            *nl = ' ';
        }
        assert_string_equal(back, want);
        oc_free(back);
        oc_free(got.v);
        free(ids);
        n++;
    }
    printf("%s: %d/%d prompts\n", dir, n, n);
    assert_true(n > 0);
    oc_tokenizer_free(tok);
    cJSON_Delete(root);
}

static void test_smolvlm_prompts(void **state) { (void)state; run_prompts("smolvlm-tiny", 0); }
static void test_llava_prompts(void **state) { (void)state; run_prompts("llava-tiny", 1); }

/* ---- our own cases on the real tokenizers --------------------------------------------- */

static void test_llama3_cases(void **state) {
    (void)state;
    const oc_tokenizer *tok = shared("llama3");
    /* \p{N}{1,3}: digits go in groups of three from the left */
    expect_concat(tok, "1234567", PIECES("123", "456", "7"));
    expect_concat(tok, "x 2024!", PIECES("x", " ", "202", "4", "!"));
    /* (?i:'s|'t|...) matches upper-case contractions as well */
    expect_concat(tok, "I'M HERE", PIECES("I", "'M", " HERE"));
    /* \s+(?!\S) leaves the last space of a run for the next word: "a", 30 spaces, " b" */
    char text[80], run[64];
    memset(run, ' ', 30);
    run[30] = 0;
    snprintf(text, sizeof text, "a%s b", run);
    expect_concat(tok, text, PIECES("a", run, " b"));
    /* \s*[\r\n]+ takes spaces with the newlines after them */
    expect_concat(tok, "a  \n\nb", PIECES("a", "  \n\n", "b"));
    /* ignore_merges: a pre-token that is in the vocabulary is one token, merges or not */
    int32_t id = oc_tok_id(tok, "Ġhello");
    assert_true(id >= 0);
    idvec v = encs(tok, " hello");
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0], id);
    oc_free(v.v);
    /* special tokens split the text before anything else and need no BOS here:
     * the post-processor is ByteLevel, which adds nothing */
    expect_pieces(tok, "<|begin_of_text|>hi", 1, PIECES("<|begin_of_text|>", "hi"));
    assert_int_equal(oc_tok_bos(tok), -1);
    round_trip(tok, "Zahlen 1234567 und Ümläute, 日本語, emoji 🦀!");
}

static void test_qwen3_cases(void **state) {
    (void)state;
    const oc_tokenizer *tok = shared("qwen3");
    /* \p{N}: every digit alone */
    expect_concat(tok, "2024", PIECES("2", "0", "2", "4"));
    /* NFC: e + U+0301 composes to é before splitting */
    idvec a = encs(tok, "caf\x65\xCC\x81"), b = encs(tok, "caf\xC3\xA9");
    assert_true(same(&a, b.v, b.n));
    oc_free(a.v);
    oc_free(b.v);
    /* Oniguruma's \s includes U+0085 (PCRE2's does not): at the first U+0085 of
     * "a\u0085\u0085b" the alternatives [^\s\p{L}\p{N}]+ fail and \s+(?!\S) keeps one;
     * the second U+0085 is the optional prefix of \p{L}+ */
    expect_concat(tok, "a\xC2\x85\xC2\x85" "b", PIECES("a", "\xC2\x85", "\xC2\x85" "b"));
    /* a long run of spaces: 299 spaces as one pre-token, then " b" */
    char text[400], spaces[300];
    memset(spaces, ' ', 299);
    spaces[299] = 0;
    snprintf(text, sizeof text, "a%s b", spaces);
    expect_concat(tok, text, PIECES("a", spaces, " b"));
    /* <think> is an added token with normalized = false and special = false: split off,
     * and kept by a decode that drops special tokens; <|im_end|> is special and dropped */
    idvec v = encs(tok, "<think>x<|im_end|>");
    assert_int_equal(v.n, 3);
    assert_int_equal(v.v[0], oc_tok_id(tok, "<think>"));
    assert_int_equal(v.v[2], oc_tok_id(tok, "<|im_end|>"));
    char *t = dec(tok, v.v, v.n, 0);
    assert_string_equal(t, "<think>x");
    oc_free(t);
    oc_free(v.v);
    /* ByteLevel decoding of a lone lead byte: from_utf8_lossy gives U+FFFD
     * ("ð" is the byte-level character of 0xF0) */
    int32_t f0 = oc_tok_id(tok, "ð");
    assert_true(f0 >= 0);
    t = dec(tok, &f0, 1, 1);
    assert_string_equal(t, "\xEF\xBF\xBD");
    oc_free(t);
    /* ids outside the vocabulary are skipped, as tokenizers' decode does */
    int32_t odd[] = {-5, 9707, 999999999};
    t = dec(tok, odd, 3, 1);
    assert_string_equal(t, "Hello");
    oc_free(t);
    round_trip(tok, "中文分词测试：你好，世界！ Ünïcödé ＦＵＬＬＷＩＤＴＨ");
}

static void test_llama2_cases(void **state) {
    (void)state;
    const oc_tokenizer *tok = shared("llama2");
    /* empty text: nothing, and only BOS with special tokens (Prepend skips empty text) */
    idvec v = enc(tok, "", 0, 0);
    assert_int_equal(v.n, 0);
    oc_free(v.v);
    v = enc(tok, "", 0, 1);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0], oc_tok_bos(tok));
    assert_string_equal(oc_token_piece(tok, v.v[0]), "<s>");
    oc_free(v.v);
    /* byte fallback: U+10FFFD (private use) is not in the vocabulary, so its four UTF-8
     * bytes become <0xF4><0x8F><0xBF><0xBD> after the "▁" the normalizer prepends */
    expect_pieces(tok, "\xF4\x8F\xBF\xBD", 0,
                  PIECES("\xE2\x96\x81", "<0xF4>", "<0x8F>", "<0xBF>", "<0xBD>"));
    round_trip(tok, "\xF4\x8F\xBF\xBD");
    /* ByteFallback decoding of bytes that are not UTF-8: one U+FFFD per byte */
    int32_t bad[] = {oc_tok_id(tok, "<0xF4>"), oc_tok_id(tok, "<0x8F>")};
    char *t = dec(tok, bad, 2, 1);
    assert_string_equal(t, "\xEF\xBF\xBD\xEF\xBF\xBD");
    oc_free(t);
    /* special tokens in the text are matched before the normalizer: "<s>" is one id and
     * the text after it gets its own "▁" (Prepend runs per piece) */
    expect_pieces(tok, "<s>Hello", 0, PIECES("<s>", "\xE2\x96\x81Hello"));
    /* keep_special = 0 drops <s> */
    v = enc(tok, "Hello", 5, 1);
    t = dec(tok, v.v, v.n, 0);
    assert_string_equal(t, "Hello");
    oc_free(t);
    t = dec(tok, v.v, v.n, 1);
    assert_string_equal(t, "<s> Hello"); /* tokenizers: "<s>" + "▁Hello", Strip once */
    oc_free(t);
    oc_free(v.v);
    round_trip(tok, "Grüße aus Köln — 東京 🙂 \t tabs");
}

static void test_invalid_input(void **state) {
    (void)state;
    const oc_tokenizer *tok = shared("qwen3");
    int32_t *ids = NULL;
    size_t n = 0;
    /* a stray continuation byte, an overlong '/', a surrogate, a truncated sequence */
    const char *bad[] = {"ab\x80", "\xC0\xAF", "\xED\xA0\x80", "ok\xE2\x82"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(oc_tokenize(tok, bad[i], strlen(bad[i]), 1, &ids, &n),
                         OC_ERR_INVALID_ARG);
        assert_non_null(strstr(oc_last_error(), "not valid UTF-8"));
    }
    assert_int_equal(oc_tokenize(tok, NULL, 3, 1, &ids, &n), OC_ERR_INVALID_ARG);
    /* NUL bytes are text like any other (the length says where it ends) */
    idvec v = enc(tok, "a\0b", 3, 0);
    assert_true(v.n >= 2);
    oc_free(v.v);
    assert_null(oc_token_piece(tok, -1));
    assert_null(oc_token_piece(tok, 1 << 30));
    assert_int_equal(oc_tokenizer_vocab_size(tok), 151669);
    oc_tokenizer_free(NULL);
}

/* Several threads share one tokenizer (its BPE cache is locked). */
typedef struct {
    const oc_tokenizer *tok;
    int ok;
} thread_arg;

static void *encode_many(void *p) {
    thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 200 && a->ok; i++) {
        char text[64];
        snprintf(text, sizeof text, "word%d and more words %d", i % 37, i);
        int32_t *ids;
        size_t n;
        char *back;
        if (oc_tokenize(a->tok, text, strlen(text), 0, &ids, &n) != OC_OK) {
            a->ok = 0;
            break;
        }
        if (oc_detokenize(a->tok, ids, n, 1, &back) != OC_OK || strcmp(back, text))
            a->ok = 0;
        else
            oc_free(back);
        oc_free(ids);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    oc_tokenizer *tok = load(td("smolvlm-tiny/tokenizer.json"));
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].tok = tok;
        assert_int_equal(pthread_create(&th[i], NULL, encode_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].ok);
    }
    oc_tokenizer_free(tok);
}

/* ---- synthetic tokenizers for the features the real files do not use ------------------ */

/* Writes a tokenizer.json from its parts (JSON texts; NULL = null) and loads it. */
static oc_status make(const char *normalizer, const char *pre, const char *model,
                      const char *added, const char *post, const char *decoder,
                      oc_tokenizer **out, char *path_out) {
    static int counter;
    static char dir[256];
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s", tmpdir("tok"));
    char path[512], *json = malloc(1 << 16);
    snprintf(path, sizeof path, "%s/t%d.json", dir, counter++);
    snprintf(json, 1 << 16,
             "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,"
             " \"added_tokens\": %s, \"normalizer\": %s, \"pre_tokenizer\": %s,"
             " \"post_processor\": %s, \"decoder\": %s, \"model\": %s}",
             added ? added : "[]", normalizer ? normalizer : "null", pre ? pre : "null",
             post ? post : "null", decoder ? decoder : "null", model ? model : "null");
    write_text(path, json);
    free(json);
    if (path_out)
        strcpy(path_out, path);
    return oc_tokenizer_load(path, out);
}

static oc_tokenizer *make_ok(const char *normalizer, const char *pre, const char *model,
                             const char *added, const char *post, const char *decoder) {
    oc_tokenizer *tok = NULL;
    if (make(normalizer, pre, model, added, post, decoder, &tok, NULL) != OC_OK)
        fail_msg("%s", oc_last_error());
    return tok;
}

/* An added_tokens entry: content and the flags single_word, lstrip, rstrip, normalized,
 * special (the id is recomputed by the loader, as tokenizers does). */
#define ADDED(content, sw, l, r, norm, sp)                                                 \
    "{\"id\": 0, \"content\": \"" content "\", \"single_word\": " #sw ", \"lstrip\": " #l \
    ", \"rstrip\": " #r ", \"normalized\": " #norm ", \"special\": " #sp "}"

/* A character-level model: the letters, space and a few words, no merges. */
static const char CHAR_MODEL[] =
    "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"ignore_merges\": true,"
    " \"vocab\": {\"<unk>\": 0, \" \": 1, \"a\": 2, \"b\": 3, \"c\": 4, \"t\": 5, \"x\": 6,"
    " \"y\": 7, \"d\": 8, \"o\": 9, \"g\": 10, \"-\": 11, \"The\": 12, \"final\": 13,"
    " \"countdown\": 14, \"The-\": 15, \"final-\": 16, \"-final\": 17, \"-countdown\": 18,"
    " \"--\": 19, \"ab\": 20, \"123\": 21, \"cd\": 22, \"1\": 23, \"2\": 24, \"3\": 25},"
    " \"merges\": []}";

/* AddedVocabulary::find_matches: lstrip takes the spaces before the token, rstrip the
 * spaces after it; single_word needs non-word characters (or the ends) around it;
 * the longest token wins at a position. Ids: the model has 26 entries, so the added
 * tokens get 26, 27, ... in order (AddedVocabulary::add_tokens). */
static void test_added_token_flags(void **state) {
    (void)state;
    const char *added =
        "[" ADDED("<unk>", false, false, false, false, true) ","
        ADDED("<L>", false, true, false, false, true) ","
        ADDED("<R>", false, false, true, false, true) ","
        ADDED("cat", true, false, false, false, false) ","
        ADDED("<x>", false, false, false, false, true) ","
        ADDED("<x>y", false, false, false, false, true) ","
        ADDED("dog", false, false, false, true, false) "]";
    oc_tokenizer *tok =
        make_ok("{\"type\": \"Lowercase\"}", NULL, CHAR_MODEL, added, NULL, NULL);
    assert_int_equal(oc_tok_id(tok, "<unk>"), 0); /* in the model: keeps its id */
    assert_int_equal(oc_tok_id(tok, "<L>"), 26);
    assert_int_equal(oc_tok_id(tok, "<x>y"), 30);
    assert_int_equal(oc_tokenizer_vocab_size(tok), 32);
    /* "x <L> y": the split starts at the space before <L> */
    expect_pieces(tok, "x <L> y", 0, PIECES("x", "<L>", " ", "y"));
    expect_pieces(tok, "x <R> y", 0, PIECES("x", " ", "<R>", "y"));
    expect_pieces(tok, "x   <L><R>   y", 0, PIECES("x", "<L>", "<R>", "y"));
    /* single_word: "a cat b" matches; in "acat" the 'a' before is a word character, so
     * the match is dropped and the model spells it out */
    expect_pieces(tok, "a cat b", 0, PIECES("a", " ", "cat", " ", "b"));
    expect_pieces(tok, "acat", 0, PIECES("a", "c", "a", "t"));
    expect_pieces(tok, "cat.", 0, PIECES("cat", "<unk>"));
    /* leftmost-longest: "<x>y" beats "<x>" */
    expect_pieces(tok, "<x>y<x>", 0, PIECES("<x>y", "<x>"));
    /* normalized = true: matched on the lowercased text; "DOG" is found after the
     * normalizer, "<X>" (normalized = false) is not matched before it and is lowercased
     * into plain text */
    expect_pieces(tok, "DOG", 0, PIECES("dog"));
    expect_pieces(tok, "D<X>", 0, PIECES("d", "<unk>", "x", "<unk>"));
    oc_tokenizer_free(tok);
}

/* BPE::merge_word: unknown characters become <unk>, fused into one when fuse_unk;
 * byte_fallback spells them as <0xNN> tokens instead. */
static void test_unk_and_byte_fallback(void **state) {
    (void)state;
    oc_tokenizer *tok = make_ok(NULL, NULL, CHAR_MODEL, NULL, NULL, NULL);
    expect_pieces(tok, "xzzy", 0, PIECES("x", "<unk>", "y"));
    oc_tokenizer_free(tok);
    tok = make_ok(NULL, NULL,
                  "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": false,"
                  " \"vocab\": {\"<unk>\": 0, \"x\": 1, \"y\": 2}, \"merges\": []}",
                  NULL, NULL, NULL);
    expect_pieces(tok, "xzzy", 0, PIECES("x", "<unk>", "<unk>", "y"));
    oc_tokenizer_free(tok);
    tok = make_ok(NULL, NULL,
                  "{\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true,"
                  " \"vocab\": {\"<unk>\": 0, \"x\": 1, \"<0xC3>\": 2, \"<0xA9>\": 3,"
                  " \"<0xE2>\": 4}, \"merges\": []}",
                  NULL, NULL,
                  "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"},"
                  " {\"type\": \"Fuse\"}]}");
    /* é = C3 A9: both bytes have tokens; € = E2 82 AC does not (82, AC missing): <unk> */
    expect_pieces(tok, "x\xC3\xA9\xE2\x82\xACx", 0, PIECES("x", "<0xC3>", "<0xA9>", "<unk>", "x"));
    int32_t ids[] = {1, 2, 3, 1};
    char *t = dec(tok, ids, 4, 1);
    assert_string_equal(t, "x\xC3\xA9x");
    oc_free(t);
    oc_tokenizer_free(tok);
}

/* NormalizedString::split with each behavior, on tokenizers' own example
 * "The-final--countdown" split on "-" (normalizer.rs, test `split`). ignore_merges makes
 * each piece one token, so the ids show the pieces. */
static void test_split_behaviors(void **state) {
    (void)state;
    static const struct {
        const char *kind, *pattern, *behavior;
        int invert;
        const char *pieces[6];
        size_t n;
    } cases[] = {
        {"String", "-", "Removed", 0, {"The", "final", "countdown"}, 3},
        {"String", "-", "Isolated", 0, {"The", "-", "final", "-", "-", "countdown"}, 6},
        {"String", "-", "MergedWithPrevious", 0, {"The-", "final-", "-", "countdown"}, 4},
        {"String", "-", "MergedWithNext", 0, {"The", "-final", "-", "-countdown"}, 4},
        {"String", "-", "Contiguous", 0, {"The", "-", "final", "--", "countdown"}, 5},
        /* with the words as matches, Removed keeps the gaps ("-" and "--") ... */
        {"Regex", "\\\\w+", "Removed", 0, {"-", "--"}, 2},
        /* ... and inverted, the gaps are the matches: it keeps the words */
        {"Regex", "\\\\w+", "Removed", 1, {"The", "final", "countdown"}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pre[256];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Split\", \"pattern\": {\"%s\": \"%s\"}, \"behavior\": \"%s\","
                 " \"invert\": %s}",
                 cases[i].kind, cases[i].pattern, cases[i].behavior,
                 cases[i].invert ? "true" : "false");
        oc_tokenizer *tok = make_ok(NULL, pre, CHAR_MODEL, NULL, NULL, NULL);
        expect_pieces(tok, "The-final--countdown", 0, cases[i].pieces, cases[i].n);
        oc_tokenizer_free(tok);
    }
}

/* Digits (Contiguous runs, or Isolated digits), Whitespace (\w+|[^\w\s]+) and
 * Punctuation, in a pre-tokenizer Sequence. */
static void test_other_pretokenizers(void **state) {
    (void)state;
    oc_tokenizer *tok = make_ok(NULL, "{\"type\": \"Digits\", \"individual_digits\": false}",
                                CHAR_MODEL, NULL, NULL, NULL);
    expect_pieces(tok, "ab123cd", 0, PIECES("ab", "123", "cd"));
    oc_tokenizer_free(tok);
    tok = make_ok(NULL, "{\"type\": \"Digits\", \"individual_digits\": true}", CHAR_MODEL,
                  NULL, NULL, NULL);
    expect_pieces(tok, "ab123cd", 0, PIECES("ab", "1", "2", "3", "cd"));
    oc_tokenizer_free(tok);
    tok = make_ok(NULL,
                  "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"},"
                  " {\"type\": \"Punctuation\", \"behavior\": \"Isolated\"}]}",
                  CHAR_MODEL, NULL, NULL, NULL);
    /* Whitespace keeps "The", "--", "final"; Punctuation then isolates each '-' */
    expect_pieces(tok, "  The --final ", 0, PIECES("The", "-", "-", "final"));
    oc_tokenizer_free(tok);
}

/* Metaspace: spaces become ▁, "always" prepends ▁ to every piece, "first" only to the
 * piece at the start of the input (not to one after an added token); split on ▁ with
 * MergedWithNext. The Metaspace decoder turns ▁ back into spaces and drops the first. */
static void test_metaspace(void **state) {
    (void)state;
    const char *model =
        "{\"type\": \"BPE\", \"vocab\": {\"\xE2\x96\x81\": 0, \"h\": 1, \"i\": 2, \"hi\": 3,"
        " \"\xE2\x96\x81hi\": 4, \"<s>\": 5},"
        " \"merges\": [\"h i\", \"\xE2\x96\x81 hi\"]}";
    const char *added = "[" ADDED("<s>", false, false, false, false, true) "]";
    const char *dec_json = "{\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\","
                           " \"prepend_scheme\": \"always\", \"split\": true}";
    oc_tokenizer *tok = make_ok(NULL,
                                "{\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\","
                                " \"prepend_scheme\": \"first\", \"split\": true}",
                                model, added, NULL, dec_json);
    expect_pieces(tok, "hi hi", 0, PIECES("\xE2\x96\x81hi", "\xE2\x96\x81hi"));
    expect_pieces(tok, "<s>hi", 0, PIECES("<s>", "hi"));
    idvec v = encs(tok, "hi hi");
    char *t = dec(tok, v.v, v.n, 1);
    assert_string_equal(t, "hi hi");
    oc_free(t);
    oc_free(v.v);
    oc_tokenizer_free(tok);
    tok = make_ok(NULL,
                  "{\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\","
                  " \"prepend_scheme\": \"always\", \"split\": true}",
                  model, added, NULL, dec_json);
    expect_pieces(tok, "<s>hi", 0, PIECES("<s>", "\xE2\x96\x81hi"));
    oc_tokenizer_free(tok);
}

/* BPE merges in rank order (leftmost first among equal ranks), merges given as pairs,
 * continuing_subword_prefix / end_of_word_suffix, Bert/Roberta/Sequence post-processors,
 * and the WordPiece, BPEDecoder, Strip and Replace (regex) decoders. */
static void test_merges_and_processors(void **state) {
    (void)state;
    /* "aaa": the pair (a, a) at 0 merges first (leftmost), then (aa, a);
     * "abab": (b, a) has the best rank, giving "a" "ba" "b", and (a, ba) has no merge */
    const char *model =
        "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"aa\": 2, \"aaa\": 3, \"ba\": 4,"
        " \"ab\": 5, \"[CLS]\": 6, \"[SEP]\": 7},"
        " \"merges\": [[\"b\", \"a\"], [\"a\", \"a\"], [\"aa\", \"a\"], [\"a\", \"b\"]]}";
    oc_tokenizer *tok = make_ok(NULL, NULL, model, NULL,
                                "{\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 7],"
                                " \"cls\": [\"[CLS]\", 6]}", NULL);
    expect_pieces(tok, "aaa", 0, PIECES("aaa"));
    /* "aaaa": both (a, a) pairs (rank 1) merge before any (aa, a) (rank 2) is tried,
     * and (aa, aa) has no merge */
    expect_pieces(tok, "aaaa", 0, PIECES("aa", "aa"));
    expect_pieces(tok, "abab", 0, PIECES("a", "ba", "b"));
    expect_pieces(tok, "ab", 1, PIECES("[CLS]", "ab", "[SEP]"));
    assert_int_equal(oc_tok_bos(tok), 6);
    /* no decoder: tokens joined with spaces */
    idvec v = enc(tok, "abab", 4, 1);
    char *t = dec(tok, v.v, v.n, 1);
    assert_string_equal(t, "[CLS] a ba b [SEP]");
    oc_free(t);
    oc_free(v.v);
    oc_tokenizer_free(tok);

    /* prefix "##" on non-initial characters, suffix "</w>" on the last; the merge
     * ("a", "##b") makes "ab" (the prefix of the right side is dropped) */
    const char *wp_model =
        "{\"type\": \"BPE\", \"continuing_subword_prefix\": \"##\","
        " \"end_of_word_suffix\": \"</w>\", \"vocab\": {\"a\": 0, \"##b\": 1, \"##c</w>\": 2,"
        " \"ab\": 3, \"<s>\": 4, \"</s>\": 5}, \"merges\": [\"a ##b\"]}";
    tok = make_ok(NULL, "{\"type\": \"WhitespaceSplit\"}", wp_model, NULL,
                  "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"},"
                  " {\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 5],"
                  " \"cls\": [\"<s>\", 4]}]}",
                  "{\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true}");
    expect_pieces(tok, "abc", 1, PIECES("<s>", "ab", "##c</w>", "</s>"));
    int32_t ids[] = {3, 1, 0};
    t = dec(tok, ids, 3, 1);
    assert_string_equal(t, "abb a"); /* "ab" + "##b" -> "abb", " a" */
    oc_free(t);
    oc_tokenizer_free(tok);

    tok = make_ok(NULL, NULL, wp_model, NULL, NULL, "{\"type\": \"BPEDecoder\", \"suffix\": \"##\"}");
    int32_t ids2[] = {1, 0, 1};
    t = dec(tok, ids2, 3, 1);
    assert_string_equal(t, " bab"); /* "##" -> " " in " b", "a", and "" in the last: "b" */
    oc_free(t);
    oc_tokenizer_free(tok);

    tok = make_ok(NULL, NULL, model, NULL, NULL,
                  "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\","
                  " \"pattern\": {\"Regex\": \"a+\"}, \"content\": \"<A>\"}, {\"type\": \"Fuse\"},"
                  " {\"type\": \"Strip\", \"content\": \"<\", \"start\": 1, \"stop\": 0}]}");
    int32_t ids3[] = {3, 1, 0};
    t = dec(tok, ids3, 3, 1);
    assert_string_equal(t, "A>b<A>");
    oc_free(t);
    oc_tokenizer_free(tok);
}

/* GPT-2's ByteLevel with add_prefix_space: every piece between added tokens gets a
 * leading space, the GPT-2 regex splits words, bytes map to printable characters (space
 * is Ġ, the bytes C3 A9 of é are Ã ©); the ByteLevel decoder maps them back and keeps the
 * added space (tokenizers' ByteLevel decoder does not strip it). */
static void test_gpt2_bytelevel(void **state) {
    (void)state;
    const char *model =
        "{\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": {\"\xC4\xA0hello\": 0,"
        " \"\xC4\xA0world\": 1, \"!\": 2, \"\xC4\xA0\": 3, \"\xC3\x83\": 4, \"\xC2\xA9\": 5,"
        " \"<sep>\": 6}, \"merges\": []}";
    oc_tokenizer *tok = make_ok(NULL,
                                "{\"type\": \"ByteLevel\", \"add_prefix_space\": true,"
                                " \"trim_offsets\": true, \"use_regex\": true}",
                                model, "[" ADDED("<sep>", false, false, false, false, true) "]",
                                NULL, "{\"type\": \"ByteLevel\"}");
    expect_pieces(tok, "hello world!", 0, PIECES("\xC4\xA0hello", "\xC4\xA0world", "!"));
    expect_pieces(tok, " hello", 0, PIECES("\xC4\xA0hello"));
    expect_pieces(tok, "hello<sep>world", 0, PIECES("\xC4\xA0hello", "<sep>", "\xC4\xA0world"));
    expect_pieces(tok, "\xC3\xA9", 0, PIECES("\xC4\xA0", "\xC3\x83", "\xC2\xA9"));
    idvec v = encs(tok, "hello world!");
    char *t = dec(tok, v.v, v.n, 1);
    assert_string_equal(t, " hello world!");
    oc_free(t);
    oc_free(v.v);
    oc_tokenizer_free(tok);
}

/* Lowercase is Rust's char::to_lowercase: U+0130 (İ) becomes "i" + U+0307. */
static void test_lowercase(void **state) {
    (void)state;
    oc_tokenizer *tok = make_ok("{\"type\": \"Lowercase\"}", NULL,
                                "{\"type\": \"BPE\", \"vocab\": {\"i\": 0, \"\xCC\x87\": 1,"
                                " \"\xC3\xA4\": 2}, \"merges\": []}",
                                NULL, NULL, NULL);
    expect_pieces(tok, "\xC4\xB0\xC3\x84I", 0, PIECES("i", "\xCC\x87", "\xC3\xA4", "i"));
    oc_tokenizer_free(tok);
}

/* Normalizers: Replace with a regex, Strip, NFKC, Prepend, in a Sequence. */
static void test_normalizers(void **state) {
    (void)state;
    const char *norm =
        "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"},"
        " {\"type\": \"Strip\", \"strip_left\": true, \"strip_right\": true},"
        " {\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"content\": \" \"},"
        " {\"type\": \"Prepend\", \"prepend\": \"x\"}]}";
    oc_tokenizer *tok = make_ok(norm, NULL, CHAR_MODEL, NULL, NULL, NULL);
    /* NFKC folds fullwidth ａ (U+FF41) to "a" and the ideographic space U+3000 to " ";
     * Strip drops the outer whitespace, Replace squeezes the inner run, Prepend adds x */
    expect_pieces(tok, " \t\xEF\xBD\x81\xE3\x80\x80\t b \n", 0, PIECES("x", "a", " ", "b"));
    oc_tokenizer_free(tok);
}

/* NFC only runs utf8proc around characters that can change (tok_unicode.c): the result
 * must equal utf8proc's NFC of the whole string. Expected values from Python's
 * unicodedata.normalize("NFC", ...) (Unicode 14). */
static void test_nfc(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"e\xCC\x81", "\xC3\xA9"},                                  /* e + acute */
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"}, /* jamo L V T */
        {"\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81"},              /* LV + T */
        {"\xC3\xA9\xCC\xA3", "\xE1\xBA\xB9\xCC\x81"},              /* reordered marks */
        {"\xE2\x84\xAB", "\xC3\x85"},                                  /* Angstrom sign */
        {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},              /* excluded */
        {"x\xCC\x81\xCC\x81y", "x\xCC\x81\xCC\x81y"},
        {"A\xCC\x8A\xCC\x81", "\xC7\xBA"},
        {"q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"},
        {"\xF0\x9D\x85\x9E", "\xF0\x9D\x85\x97\xF0\x9D\x85\xA5"}, /* U+1D15E */
        {"caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC", "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC"},
    };
    oc_buf out = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(oc_uni_normalize(&out, cases[i][0], strlen(cases[i][0]), "NFC"), OC_OK);
        assert_int_equal(out.len, strlen(cases[i][1]));
        assert_memory_equal(out.data, cases[i][1], out.len);
    }
    /* random strings over characters that compose, decompose, reorder or stay */
    static const uint32_t pool[] = {'a', 'e', 'A', ' ', 0x301, 0x323, 0x308, 0x327, 0x345,
                                    0x1100, 0x1161, 0x11A8, 0xAC00, 0xE9, 0x212B, 0x958,
                                    0x3A9, 0x313, 0x4E2D, 0x1F600, 0x200D, 0xF73, 0xF71,
                                    0xF72, 0x1D15E, 0x0B47, 0x0B3E, 0x0CC6, 0x0CD5};
    uint64_t seed = 7;
    for (int t = 0; t < 3000; t++) {
        char in[80];
        size_t n = 0;
        int len = 1 + (int)(seed >> 60);
        for (int k = 0; k < len; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            n += oc_utf8_put(pool[(seed >> 33) % (sizeof pool / sizeof *pool)], in + n);
        }
        in[n] = 0;
        utf8proc_uint8_t *want = utf8proc_NFC((const utf8proc_uint8_t *)in);
        assert_non_null(want);
        assert_int_equal(oc_uni_normalize(&out, in, n, "NFC"), OC_OK);
        if (out.len != strlen((char *)want) || memcmp(out.data, want, out.len))
            fail_msg("NFC differs from utf8proc on case %d", t);
        free(want);
    }
    oc_buf_free(&out);
}

/* ---- malformed files -------------------------------------------------------------- */

static void expect_bad(const char *normalizer, const char *pre, const char *model,
                       const char *added, const char *post, const char *decoder,
                       oc_status want, const char *phrase) {
    oc_tokenizer *tok = NULL;
    char path[512];
    oc_status s = make(normalizer, pre, model, added, post, decoder, &tok, path);
    if (s != want || !strstr(oc_last_error(), phrase) || !strstr(oc_last_error(), path))
        fail_msg("got %s '%s', want %s with '%s'", oc_status_str(s), oc_last_error(),
                 oc_status_str(want), phrase);
    assert_null(tok);
}

static void test_malformed(void **state) {
    (void)state;
    const char *m = CHAR_MODEL;
    expect_bad(NULL, NULL, NULL, NULL, NULL, NULL, OC_ERR_FORMAT, "missing \"model\"");
    expect_bad(NULL, NULL, "{\"type\": \"WordPiece\", \"vocab\": {}}", NULL, NULL, NULL,
               OC_ERR_UNSUPPORTED, "unsupported model type 'WordPiece'");
    expect_bad("{\"type\": \"Foo\"}", NULL, m, NULL, NULL, NULL, OC_ERR_UNSUPPORTED,
               "unsupported normalizer type 'Foo'");
    expect_bad("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Precompiled\"}]}",
               NULL, m, NULL, NULL, NULL, OC_ERR_UNSUPPORTED,
               "unsupported normalizer type 'Precompiled'");
    expect_bad(NULL, "{\"type\": \"Bar\"}", m, NULL, NULL, NULL, OC_ERR_UNSUPPORTED,
               "unsupported pre_tokenizer type 'Bar'");
    expect_bad(NULL, NULL, m, NULL, NULL, "{\"type\": \"Baz\"}", OC_ERR_UNSUPPORTED,
               "unsupported decoder type 'Baz'");
    expect_bad(NULL, NULL, m, NULL, "{\"type\": \"Qux\"}", NULL, OC_ERR_UNSUPPORTED,
               "unsupported post_processor type 'Qux'");
    expect_bad(NULL, NULL, "{\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}", NULL,
               NULL, NULL, OC_ERR_FORMAT, "vocab id of token 'a'");
    expect_bad(NULL, NULL, "{\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}",
               NULL, NULL, NULL, OC_ERR_FORMAT, "vocab id of token 'a'");
    expect_bad(NULL, NULL, "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}",
               NULL, NULL, NULL, OC_ERR_FORMAT, "have the same id 0");
    expect_bad(NULL, NULL,
               "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a z\"]}",
               NULL, NULL, NULL, OC_ERR_FORMAT, "merge 0 references unknown token 'z'");
    expect_bad(NULL, NULL,
               "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}",
               NULL, NULL, NULL, OC_ERR_FORMAT, "makes 'ab', which is not in the vocab");
    expect_bad(NULL, NULL,
               "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a  a\"]}",
               NULL, NULL, NULL, OC_ERR_FORMAT, "merge 0");
    expect_bad(NULL, NULL, "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}}", NULL, NULL, NULL,
               OC_ERR_FORMAT, "needs \"vocab\" and \"merges\"");
    expect_bad(NULL,
               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"},"
               " \"behavior\": \"Isolated\", \"invert\": false}",
               m, NULL, NULL, NULL, OC_ERR_FORMAT, "does not compile");
    expect_bad(NULL,
               "{\"type\": \"Split\", \"pattern\": {\"String\": \"x\"}, \"behavior\": \"Sideways\"}",
               m, NULL, NULL, NULL, OC_ERR_FORMAT, "unknown behavior 'Sideways'");
    expect_bad(NULL, NULL, m, "[{\"id\": 0}]", NULL, NULL, OC_ERR_FORMAT, "\"content\"");
    expect_bad(NULL, NULL, m, NULL,
               "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\":"
               " {\"id\": \"<s>\", \"type_id\": 0}}], \"special_tokens\": {}}",
               NULL, OC_ERR_FORMAT, "missing special token '<s>'");

    /* whole-file problems */
    const char *dir = tmpdir("tokbad");
    char path[512];
    oc_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, "{\"model\": {\"type\": \"BPE\", ");
    assert_int_equal(oc_tokenizer_load(path, &tok), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "invalid JSON"));
    assert_non_null(strstr(oc_last_error(), path));
    write_text(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xFF\": 0}, \"merges\": []}}");
    assert_int_equal(oc_tokenizer_load(path, &tok), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "not valid UTF-8"));
    write_text(path, "[1, 2]");
    assert_int_equal(oc_tokenizer_load(dir, &tok), OC_ERR_FORMAT); /* the folder form */
    assert_non_null(strstr(oc_last_error(), "not a JSON object"));
    assert_int_equal(oc_tokenizer_load("/nonexistent/tokenizer.json", &tok), OC_ERR_IO);
    assert_non_null(strstr(oc_last_error(), "/nonexistent/tokenizer.json"));
    snprintf(path, sizeof path, "%s/empty", dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(oc_tokenizer_load(path, &tok), OC_ERR_IO);
    assert_non_null(strstr(oc_last_error(), "no tokenizer.json"));
    assert_null(tok);
    assert_int_equal(oc_tokenizer_load(NULL, &tok), OC_ERR_INVALID_ARG);
}

/* Every allocation failure during load, encode and decode is reported, never a crash
 * (and, under ASan, never a leak). */
static void test_allocation_failures(void **state) {
    (void)state;
    const char *path = td("smolvlm-tiny/tokenizer.json");
    const char *text = "<|im_start|>User: Hello  world 123!<end_of_utterance>\n";
    int loaded = 0;
    for (long k = 1; k < 100000 && !loaded; k++) {
        oc_tokenizer *tok = NULL;
        oc_alloc_fail_at(k);
        oc_status s = oc_tokenizer_load(path, &tok);
        oc_alloc_fail_at(0);
        if (s != OC_OK) {
            assert_null(tok);
            continue;
        }
        loaded = 1;
        int done = 0;
        for (long j = 1; j < 100000 && !done; j++) {
            int32_t *ids = NULL;
            size_t n = 0;
            char *back = NULL;
            oc_alloc_fail_at(j);
            s = oc_tokenize(tok, text, strlen(text), 1, &ids, &n);
            if (s == OC_OK) {
                s = oc_detokenize(tok, ids, n, 1, &back);
                done = s == OC_OK;
            }
            oc_alloc_fail_at(0);
            if (done)
                assert_string_equal(back, text);
            else
                assert_int_equal(s, OC_ERR_NOMEM);
            oc_free(back);
            oc_free(ids);
        }
        assert_true(done);
        oc_tokenizer_free(tok);
    }
    assert_true(loaded);
}

/* Decoding bytes with their length: a byte-level tokenizer's token for byte 0 stays in the
 * text (oc_detokenize's NUL-terminated string alone would cut it there). */
static void test_decode_bytes(void **state) {
    (void)state;
    oc_tokenizer *tok = NULL;
    assert_int_equal(oc_tokenizer_load(td("smolvlm-tiny/tokenizer.json"), &tok), OC_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(oc_tokenize(tok, "a\0b\0", 4, 0, &ids, &n), OC_OK);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(oc_detokenize_bytes(tok, ids, n, 0, &text, &len), OC_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(text, "a\0b\0", 5); /* and NUL-terminated */
    oc_free(text);
    assert_int_equal(oc_detokenize_bytes(tok, ids, 0, 0, &text, &len), OC_OK);
    assert_int_equal(len, 0);
    assert_int_equal(text[0], 0);
    oc_free(text);
    assert_int_equal(oc_detokenize_bytes(tok, ids, n, 0, &text, NULL), OC_ERR_INVALID_ARG);
    oc_free(ids);
    oc_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2_reference),
        cmocka_unit_test(test_llama3_reference),
        cmocka_unit_test(test_qwen3_reference),
        cmocka_unit_test(test_smolvlm_prompts),
        cmocka_unit_test(test_llava_prompts),
        cmocka_unit_test(test_llama3_cases),
        cmocka_unit_test(test_qwen3_cases),
        cmocka_unit_test(test_llama2_cases),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_added_token_flags),
        cmocka_unit_test(test_unk_and_byte_fallback),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_other_pretokenizers),
        cmocka_unit_test(test_metaspace),
        cmocka_unit_test(test_merges_and_processors),
        cmocka_unit_test(test_gpt2_bytelevel),
        cmocka_unit_test(test_lowercase),
        cmocka_unit_test(test_normalizers),
        cmocka_unit_test(test_nfc),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_decode_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, free_shared);
}
