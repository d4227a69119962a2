/* The evaluation metrics on hand-worked cases: each expected value is derived in the
 * comment above it from the reference scripts' formulas (pycocoevalcap's BLEU and
 * CIDEr-D, vqaEval.py's VQA accuracy, POPE's evaluate.py), not taken from the code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "exam.h"
#include "testutil.h"

/* ---- BLEU ----------------------------------------------------------------------- */

static void bleu_of(const char *const *cands, const char *const *const *refs,
                    const size_t *n_refs, size_t n, double bleu[4], double *cider) {
    oc_caption_metrics m;
    assert_int_equal(oc_caption_metrics_compute(cands, refs, n_refs, n, 0, &m, NULL), OC_OK);
    memcpy(bleu, m.bleu, sizeof m.bleu);
    if (cider)
        *cider = m.cider_d;
}

static void test_bleu_equal_candidate(void **state) {
    (void)state;
    /* One image, the candidate equal to its first reference: every n-gram matches, so
     * p_n = (c + 1e-15) / (c + 1e-9) with c = 4, 3, 2, 1 (about 1 - 1e-9 / c), and the
     * closest reference length is 4 = the candidate's, so the ratio (4 + 1e-15) /
     * (4 + 1e-9) is just under 1 and the brevity penalty exp(1 - 1/ratio) about
     * 1 - 2.5e-10. BLEU-1..4 are 1 within 1e-8. */
    const char *cand[] = {"a b c d"};
    const char *r0[] = {"a b c d", "x y"};
    const char *const *refs[] = {r0};
    size_t nr[] = {2};
    double b[4];
    bleu_of(cand, refs, nr, 1, b, NULL);
    for (int k = 0; k < 4; k++)
        assert_true(fabs(b[k] - 1) < 1e-8);
}

static void test_bleu_no_overlap(void **state) {
    (void)state;
    /* No shared word: correct = 0 for every n, so p_1 = 1e-15 / (3 + 1e-9) ~ 3.3e-16,
     * p_2 = 1e-15 / 2, p_3 = 1e-15 / 1, and p_4 = 1e-15 / 1e-9 = 1e-6 (no 4-gram to
     * guess). BLEU-1 = 3.3e-16; BLEU-4 = (3.3e-16 * 5e-16 * 1e-15 * 1e-6)^(1/4) ~ 1.1e-13:
     * all under 1e-12. */
    const char *cand[] = {"p q r"};
    const char *r0[] = {"a b c"};
    const char *const *refs[] = {r0};
    size_t nr[] = {1};
    double b[4];
    bleu_of(cand, refs, nr, 1, b, NULL);
    for (int k = 0; k < 4; k++)
        assert_true(b[k] >= 0 && b[k] < 1e-12);
}

static void test_bleu_empty_candidate(void **state) {
    (void)state;
    /* An empty candidate: testlen 0, so the ratio is 1e-15 / (2 + 1e-9) and the brevity
     * penalty exp(1 - 2e15) underflows to 0: BLEU-n = 0 exactly, and CIDEr-D 0 (no
     * n-gram to match). */
    const char *cand[] = {""};
    const char *r0[] = {"a b"};
    const char *const *refs[] = {r0};
    size_t nr[] = {1};
    double b[4], cider;
    bleu_of(cand, refs, nr, 1, b, &cider);
    for (int k = 0; k < 4; k++)
        assert_true(b[k] == 0.0);
    assert_true(cider == 0.0);
}

static void test_bleu_corpus(void **state) {
    (void)state;
    /* Two images, counts summed over the corpus.
     * Image 1: "the the the the" vs "the cat" / "the the dog". "the" x4 is clipped to its
     * most in one reference, 2; "the the" x3 to 1; "the the the" x2 and the 4-gram to 0.
     * Guesses 4, 3, 2, 1. Reference lengths 2 and 3: the closest to 4 is 3.
     * Image 2: "a cat sat" vs "a cat sat down": 3, 2, 1 correct of 3, 2, 1 guessed, no
     * 4-gram; reference length 4.
     * Totals: correct 5, 3, 1, 0 of 7, 5, 3, 1; c = 7, r = 3 + 4 = 7 (penalty ~1).
     * BLEU-1 = 5/7; BLEU-2 = sqrt(5/7 * 3/5) = sqrt(3/7); BLEU-3 = (1/7)^(1/3);
     * BLEU-4 = (1/7 * 1e-15 / (1 + 1e-9))^(1/4) ~ 1.0933e-4 (the 1e-15 smoothing). */
    const char *cand[] = {"the the the the", "a cat sat"};
    const char *r0[] = {"the cat", "the the dog"}, *r1[] = {"a cat sat down"};
    const char *const *refs[] = {r0, r1};
    size_t nr[] = {2, 1};
    double b[4];
    bleu_of(cand, refs, nr, 2, b, NULL);
    assert_true(fabs(b[0] - 5.0 / 7) < 1e-9);
    assert_true(fabs(b[1] - sqrt(3.0 / 7)) < 1e-9);
    assert_true(fabs(b[2] - cbrt(1.0 / 7)) < 1e-9);
    assert_true(fabs(b[3] - pow(1.0 / 7 * 1e-15 / (1 + 1e-9), 0.25)) < 1e-12);
}

/* ---- CIDEr-D -------------------------------------------------------------------- */

static double cider_of(const char *const *cands, const char *const *const *refs,
                       const size_t *n_refs, size_t n, double *per) {
    oc_caption_metrics m;
    assert_int_equal(oc_caption_metrics_compute(cands, refs, n_refs, n, 0, &m, per), OC_OK);
    return m.cider_d;
}

static void test_cider_single_image(void **state) {
    (void)state;
    /* One image: idf = log(images) - log(max(1, df)) = log 1 - log 1 = 0 for every
     * n-gram, so every vector is 0 and CIDEr-D is 0 whatever the candidate. */
    const char *cand[] = {"a large red circle"};
    const char *r0[] = {"a large red circle", "a red circle"};
    const char *const *refs[] = {r0};
    size_t nr[] = {2};
    assert_true(cider_of(cand, refs, nr, 1, NULL) == 0.0);
}

static void test_cider_equal_candidates(void **state) {
    (void)state;
    /* Two images, each candidate equal to its only reference of two words ("a b", "c d").
     * Every n-gram has df 1, so each vector entry is 1 x (log 2 - log 1) = L: the cosine
     * of unigrams is 2L^2 / (sqrt(2)L)^2 = 1 and of bigrams L^2 / L^2 = 1; no 3- or
     * 4-grams (0); equal bigram counts, so no length penalty. Mean over n = 2/4, over 1
     * reference, x 10: 5 for each image, CIDEr-D 5. */
    const char *cand[] = {"a b", "c d"};
    const char *r0[] = {"a b"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    size_t nr[] = {1, 1};
    double per[2];
    assert_true(fabs(cider_of(cand, refs, nr, 2, per) - 5.0) < 1e-12);
    assert_true(fabs(per[0] - 5.0) < 1e-12 && fabs(per[1] - 5.0) < 1e-12);
}

static void test_cider_penalty_and_clipping(void **state) {
    (void)state;
    /* Image 1: "a b" against "a b" and "a b c"; image 2: "x y" against "x y". All df 1,
     * so entries are tf x L with L = log 2.
     * vs "a b": cosines 1, 1, 0, 0.
     * vs "a b c": unigrams 2L^2 / (sqrt(2)L sqrt(3)L) = 2/sqrt(6); bigrams (only "a b"
     * shared) L^2 / (L sqrt(2)L) = 1/sqrt(2); the candidate has no trigram: 0. Its bigram
     * count 1 against 2: delta -1, penalty e^(-1/72).
     * Image 1 = 10 x (2 + (2/sqrt(6) + 1/sqrt(2)) e^(-1/72)) / 4 / 2 refs; image 2 = 5. */
    const char *cand[] = {"a b", "x y"};
    const char *r0[] = {"a b", "a b c"}, *r1[] = {"x y"};
    const char *const *refs[] = {r0, r1};
    size_t nr[] = {2, 1};
    double per[2];
    double c = cider_of(cand, refs, nr, 2, per);
    double want1 = 10 * (2 + (2 / sqrt(6) + 1 / sqrt(2)) * exp(-1.0 / 72)) / 4 / 2;
    assert_true(fabs(per[0] - want1) < 1e-12);
    assert_true(fabs(per[1] - 5.0) < 1e-12);
    assert_true(fabs(c - (want1 + 5) / 2) < 1e-12);
}

static void test_cider_document_frequency(void **state) {
    (void)state;
    /* Three images: (1) "a b" vs "a c", (2) "a c" vs "a c", (3) "d e" vs "d e". L = log 3.
     * "a", "c", "a c" are in two images' references (df 2): their weight is
     * A = L - log 2 = log 1.5; "b" and "a b" are in none (df 0 -> log max(1, 0) = 0):
     * weight L; the rest df 1: weight L.
     * Image 1: unigrams {a: A, b: L} vs {a: A, c: A}: sum of min(h, r) r = A^2 (b has no
     * reference entry), norms sqrt(A^2 + L^2) and sqrt(2) A: cosine
     * A / (sqrt(2) sqrt(A^2 + L^2)); the bigram "a b" is not in the reference: 0.
     * Image 1 = 10 x that / 4; images 2 and 3 are equal pairs: 5 each. */
    const char *cand[] = {"a b", "a c", "d e"};
    const char *r0[] = {"a c"}, *r1[] = {"a c"}, *r2[] = {"d e"};
    const char *const *refs[] = {r0, r1, r2};
    size_t nr[] = {1, 1, 1};
    double per[3];
    double c = cider_of(cand, refs, nr, 3, per);
    double A = log(1.5), L = log(3.0);
    double want1 = 10 * (A / (sqrt(2) * sqrt(A * A + L * L))) / 4;
    assert_true(fabs(per[0] - want1) < 1e-12);
    assert_true(fabs(per[1] - 5.0) < 1e-12 && fabs(per[2] - 5.0) < 1e-12);
    assert_true(fabs(c - (want1 + 10) / 3) < 1e-12);
}

static void test_cider_no_overlap(void **state) {
    (void)state;
    /* No candidate n-gram in its references: every sum of min(h, r) r is 0. */
    const char *cand[] = {"p q", "c d"};
    const char *r0[] = {"a b"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    size_t nr[] = {1, 1};
    double per[2];
    cider_of(cand, refs, nr, 2, per);
    assert_true(per[0] == 0.0);
    assert_true(fabs(per[1] - 5.0) < 1e-12);
}

/* ---- the COCO tokenization ------------------------------------------------------- */

static void expect_tok(const char *in, const char *want) {
    char *got;
    assert_int_equal(oc_caption_tokenize(in, &got), OC_OK);
    if (strcmp(got, want))
        fail_msg("tokenize(\"%s\") = \"%s\", expected \"%s\"", in, got, want);
    oc_free(got);
}

static void test_caption_tokenize(void **state) {
    (void)state;
    /* PTB rules, then lower case, then pycocoevalcap's punctuation tokens dropped */
    expect_tok("A man riding a horse.", "a man riding a horse");
    expect_tok("Two dogs, playing (outside)!", "two dogs playing -lrb- outside -rrb-");
    expect_tok("The dog's toy isn't red.", "the dog 's toy is n't red");
    expect_tok("I can't see; it won't go", "i ca n't see it wo n't go");
    expect_tok("\"Quoted\" text", "quoted text");
    expect_tok("a t-shirt -- nice...", "a t-shirt nice");
    expect_tok("The U.S. flag at 3.5 p.m., 1,000 feet", "the u.s. flag at 3.5 p.m. 1,000 feet");
    expect_tok("and/or 2*3", "and\\/or 2\\*3");
    expect_tok("cannot pay $5 (50%)", "can not pay $ 5 -lrb- 50 % -rrb-");
    expect_tok("Line\nbreak", "line break");
    expect_tok("  ", "");
    expect_tok("it's 'quoted'", "it 's quoted");
}

/* ---- VQA -------------------------------------------------------------------------- */

static void expect_norm(const char *in, const char *want) {
    char *got;
    assert_int_equal(oc_vqa_normalize(in, &got), OC_OK);
    if (strcmp(got, want))
        fail_msg("normalize(\"%s\") = \"%s\", expected \"%s\"", in, got, want);
    oc_free(got);
}

static void test_vqa_normalisation(void **state) {
    (void)state;
    /* punctuation: a mark next to a space is removed, else it becomes a space */
    expect_norm("yes!", "yes");
    expect_norm("hello, world", "hello world");
    expect_norm("black-and-white", "black and white");
    expect_norm("black - white", "black white");
    /* a digit,digit comma anywhere: every mark removed, none spaced */
    expect_norm("1,000-2", "10002");
    /* periods: removed unless a digit follows */
    expect_norm("3.5", "3.5");
    expect_norm("a.m.", "am");
    /* ... at most 32 of them (vqaEval passes re.UNICODE = 32 as sub()'s count): 40
     * periods before an x keep 8 */
    expect_norm("........................................x", "........x");
    /* number words, articles, contractions, case, whitespace */
    expect_norm("Two", "2");
    expect_norm("none", "0");
    expect_norm("TEN", "10");
    expect_norm("a dog", "dog");
    expect_norm("the cat and an apple", "cat and apple");
    expect_norm("dont", "don't");
    expect_norm("isnt it", "isn't it");
    expect_norm("\tRed\n", "red");
    expect_norm("  yes  ", "yes");
}

static double vqa(const char *pred, const char *const *answers, size_t n) {
    double acc;
    assert_int_equal(oc_vqa_accuracy(pred, answers, n, &acc), OC_OK);
    return acc;
}

static void test_vqa_accuracy_matches(void **state) {
    (void)state;
    /* k of the 10 answers are "2", the rest "3"; the prediction "2". Leaving out a "2"
     * leaves k - 1 matches, leaving out a "3" leaves k: accuracy =
     * (k min(1, (k-1)/3) + (10-k) min(1, k/3)) / 10:
     * k=0: 0; k=1: (0 + 9/3)/10 = 0.3; k=2: (2/3 + 16/3)/10 = 0.6; k=3: (2 + 7)/10 = 0.9;
     * k>=4: 1. */
    const double want[11] = {0, 0.3, 0.6, 0.9, 1, 1, 1, 1, 1, 1, 1};
    for (int k = 0; k <= 10; k++) {
        const char *a[10];
        for (int i = 0; i < 10; i++)
            a[i] = i < k ? "2" : "3";
        double got = vqa("2", a, 10);
        if (fabs(got - want[k]) > 1e-12)
            fail_msg("%d matching answers: %g, expected %g", k, got, want[k]);
    }
}

static void test_vqa_accuracy_rules(void **state) {
    (void)state;
    /* the prediction is normalised: "Two." -> "2" matches ten "2"s */
    const char *twos[10] = {"2", "2", "2", "2", "2", "2", "2", "2", "2", "2"};
    assert_true(vqa("Two.", twos, 10) == 1.0);
    /* ... the answers are not: ten identical "Two" are left as they are (no processing
     * when they agree), so the normalised prediction "2" matches none */
    const char *Two[10] = {"Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two", "Two"};
    assert_true(vqa("Two", Two, 10) == 0.0);
    /* differing answers get the punctuation rule: "yes." -> "yes": 3 matches of 10,
     * (3 x 2/3 + 7 x 1) / 10 = 0.9 */
    const char *mixed[10] = {"yes.", "yes.", "yes.", "no", "no", "no", "no", "no", "no", "no"};
    assert_true(fabs(vqa("yes", mixed, 10) - 0.9) < 1e-12);
    /* ... but not the digit rule: "two" stays "two", so of "2" x2 and "two" x8 the
     * prediction "2" matches 2: (2 x 1/3 + 8 x 2/3) / 10 = 0.6 */
    const char *words[10] = {"2", "2", "two", "two", "two", "two", "two", "two", "two", "two"};
    assert_true(fabs(vqa("2", words, 10) - 0.6) < 1e-12);
    /* one answer: ocellus's exact match (trimmed, final period, ASCII case) */
    const char *red[1] = {"red"};
    assert_true(vqa("Red.", red, 1) == 1.0);
    assert_true(vqa(" red ", red, 1) == 1.0);
    assert_true(vqa("reds", red, 1) == 0.0);
    assert_int_equal(oc_answer_matches("A large red circle.", "a large red circle"), 1);
    assert_int_equal(oc_answer_matches("circle", "a circle"), 0);
}

/* ---- POPE ------------------------------------------------------------------------- */

static void test_pope_reading(void **state) {
    (void)state;
    /* evaluate.py: first sentence, commas dropped, "No"/"no"/"not" among the
     * space-separated words */
    assert_int_equal(oc_pope_says_yes("Yes, there is a dog."), 1);
    assert_int_equal(oc_pope_says_yes("No."), 0);
    assert_int_equal(oc_pope_says_yes("no, there is none"), 0);
    assert_int_equal(oc_pope_says_yes("There is not a dog"), 0);
    assert_int_equal(oc_pope_says_yes("Yes. No dog is there"), 1); /* only the first sentence */
    assert_int_equal(oc_pope_says_yes("NO"), 1);                   /* the script's words */
    assert_int_equal(oc_pope_says_yes("Nope"), 1);
    assert_int_equal(oc_pope_says_yes(""), 1);
    assert_int_equal(oc_pope_says_yes(" no"), 0);
}

/* Writes predictions and references files for eval score. */
static void write_pair(const char *dir, const char *pred, const char *ref, char *p, char *r) {
    sprintf(p, "%s/p.jsonl", dir);
    sprintf(r, "%s/r.jsonl", dir);
    write_text(p, pred);
    write_text(r, ref);
}

static void test_pope_counts(void **state) {
    (void)state;
    /* labels yes yes yes no no no, answers yes no yes yes no no (the second read as no,
     * "Yes" and "yes, ..." as yes):
     * TP 2 (1, 3), FN 1 (2), FP 1 (4), TN 2 (5, 6): accuracy 4/6, precision 2/3,
     * recall 2/3, F1 2/3, yes-ratio 3/6. Category "random" holds items 1, 2, 4:
     * TP 1, FN 1, FP 1. */
    const char *dir = tmpdir("pope");
    char p[512], r[512];
    write_pair(dir,
               "{\"id\": 1, \"prediction\": \"Yes\"}\n{\"id\": 2, \"prediction\": \"No, none.\"}\n"
               "{\"id\": 3, \"prediction\": \"yes, there is\"}\n{\"id\": 4, \"prediction\": \"yes\"}\n"
               "{\"id\": 5, \"prediction\": \"no\"}\n{\"id\": 6, \"prediction\": \"There is not\"}\n",
               "{\"id\": 1, \"answer\": \"yes\", \"category\": \"random\"}\n"
               "{\"id\": 2, \"answer\": \"yes\", \"category\": \"random\"}\n"
               "{\"id\": \"3\", \"answer\": \"yes\"}\n"
               "{\"id\": 4, \"answer\": \"no\", \"category\": \"random\"}\n"
               "{\"id\": 5, \"answer\": \"no\"}\n{\"id\": 6, \"answer\": \"no\"}\n",
               p, r);
    oc_eval_result res;
    assert_int_equal(oc_eval_score(OC_METRIC_POPE, p, r, NULL, &res), OC_OK);
    assert_int_equal(res.all.n, 6);
    assert_int_equal(res.all.tp, 2);
    assert_int_equal(res.all.fn, 1);
    assert_int_equal(res.all.fp, 1);
    assert_int_equal(res.all.tn, 2);
    assert_true(fabs(res.accuracy - 4.0 / 6) < 1e-12);
    assert_true(fabs(res.precision - 2.0 / 3) < 1e-12);
    assert_true(fabs(res.recall - 2.0 / 3) < 1e-12);
    assert_true(fabs(res.f1 - 2.0 / 3) < 1e-12);
    assert_true(fabs(res.yes_ratio - 0.5) < 1e-12);
    assert_int_equal(res.n_groups, 1);
    assert_string_equal(res.groups[0].name, "random");
    assert_int_equal(res.groups[0].tp, 1);
    assert_int_equal(res.groups[0].fn, 1);
    assert_int_equal(res.groups[0].fp, 1);
    oc_eval_result_free(&res);
}

/* ---- eval score --------------------------------------------------------------------- */

static void test_score_files(void **state) {
    (void)state;
    const char *dir = tmpdir("score");
    char p[512], r[512];
    oc_eval_result res;
    /* VQA: "two" -> "2" against "2" x4 + "3" x6 gives 1 (4 matches); "blue" against one
     * "blue": exact match; mean (1 + 1) / 2 */
    write_pair(dir, "{\"id\": \"q1\", \"prediction\": \"two\"}\n{\"id\": \"q2\", \"prediction\": \"Blue\"}\n",
               "{\"id\": \"q1\", \"answers\": [\"2\", \"2\", \"2\", \"2\", \"3\", \"3\", \"3\", \"3\", \"3\", \"3\"]}\n"
               "{\"id\": \"q2\", \"answer\": \"blue\"}\n",
               p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_VQA, p, r, NULL, &res), OC_OK);
    assert_int_equal(res.all.n, 2);
    assert_true(res.accuracy == 1.0);
    oc_eval_result_free(&res);
    /* MCQ: " b " is B (stripped, any case); "C." is not C (lmms-eval's rule) */
    write_pair(dir, "{\"id\": 1, \"prediction\": \" b \"}\n{\"id\": 2, \"prediction\": \"C.\"}\n",
               "{\"id\": 1, \"answer\": \"B\"}\n{\"id\": 2, \"answer\": \"C\"}\n", p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_MCQ, p, r, NULL, &res), OC_OK);
    assert_int_equal(res.all.correct, 1);
    oc_eval_result_free(&res);
    /* captions: tokenized as COCO does ("A B." -> "a b"), then the 2-image case of
     * test_cider_equal_candidates: CIDEr-D 5, BLEU-1 = 1 */
    write_pair(dir, "{\"id\": \"i1\", \"prediction\": \"A B.\"}\n{\"id\": \"i2\", \"prediction\": \"c d\"}\n",
               "{\"id\": \"i1\", \"references\": [\"a b\"]}\n{\"id\": \"i2\", \"references\": [\"C D\"]}\n",
               p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_CIDER, p, r, NULL, &res), OC_OK);
    assert_true(fabs(res.cider_d - 5.0) < 1e-12);
    assert_true(fabs(res.bleu[0] - 1.0) < 1e-8);
    oc_eval_result_free(&res);
    /* a reference without a prediction, and a prediction without a reference */
    write_pair(dir, "{\"id\": 1, \"prediction\": \"a\"}\n",
               "{\"id\": 1, \"answer\": \"A\"}\n{\"id\": 2, \"answer\": \"B\"}\n", p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_MCQ, p, r, NULL, &res), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "no prediction for id '2'"));
    write_pair(dir, "{\"id\": 1, \"prediction\": \"a\"}\n{\"id\": 3, \"prediction\": \"a\"}\n",
               "{\"id\": 1, \"answer\": \"A\"}\n", p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_MCQ, p, r, NULL, &res), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "id '3' is not in"));
    /* duplicate ids */
    write_pair(dir, "{\"id\": 1, \"prediction\": \"a\"}\n{\"id\": 1, \"prediction\": \"b\"}\n",
               "{\"id\": 1, \"answer\": \"A\"}\n", p, r);
    assert_int_equal(oc_eval_score(OC_METRIC_MCQ, p, r, NULL, &res), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "p.jsonl:2: id '1' already on line 1"));
}

/* ---- MMLU prompts and files ------------------------------------------------------- */

static void test_mmlu_prompt_bytes(void **state) {
    (void)state;
    const char *q1c[] = {"1", "2", "3", "4", NULL}, *q2c[] = {"x", "y", "z", "w", NULL};
    const char *sq[] = {"What is 1+1?", "Pick x."};
    const char *const *sc[] = {q1c, q2c};
    int sa[] = {1, 0};
    const char *tc[] = {"red", "green", "blue", "grey"};
    char *got;
    /* the original: a space before each word of the subject (so two after "about"), each
     * shot ending in " X\n\n" */
    assert_int_equal(oc_mmlu_prompt(OC_MCQ_ORIGINAL, "abstract_algebra", sq, sc, sa, 2,
                                    " Which colour? ", tc, 4, &got), OC_OK);
    assert_string_equal(got,
        "The following are multiple choice questions (with answers) about  abstract algebra.\n\n"
        "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
        "Pick x.\nA. x\nB. y\nC. z\nD. w\nAnswer: A\n\n"
        " Which colour? \nA. red\nB. green\nC. blue\nD. grey\nAnswer:");
    oc_free(got);
    /* lm-evaluation-harness: one space, "_" as " ", the question stripped, shots joined
     * by "\n\n" after " X" */
    assert_int_equal(oc_mmlu_prompt(OC_MCQ_HARNESS, "abstract_algebra", sq, sc, sa, 2,
                                    " Which colour? ", tc, 4, &got), OC_OK);
    assert_string_equal(got,
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
        "Pick x.\nA. x\nB. y\nC. z\nD. w\nAnswer: A\n\n"
        "Which colour?\nA. red\nB. green\nC. blue\nD. grey\nAnswer:");
    oc_free(got);
    /* no shots */
    assert_int_equal(oc_mmlu_prompt(OC_MCQ_ORIGINAL, "x", NULL, NULL, NULL, 0, "Q", tc, 2,
                                    &got), OC_OK);
    assert_string_equal(got, "The following are multiple choice questions (with answers) "
                             "about  x.\n\nQ\nA. red\nB. green\nAnswer:");
    oc_free(got);
}

static void test_mmlu_files(void **state) {
    (void)state;
    const char *dir = tmpdir("mmlu");
    char path[512];
    sprintf(path, "%s/dev", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    sprintf(path, "%s/test", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    /* quoted fields with commas, quotes and a line break; a BOM; a blank line; spaces
     * kept around unquoted fields (pandas does not trim) */
    sprintf(path, "%s/test/b_subject_test.csv", dir);
    write_text(path, "\xEF\xBB\xBF\"Say \"\"hi\"\", then\nwave\", yes ,no,maybe,never,A\n\n"
                     "Q2,1,2,3,4,D\r\n");
    sprintf(path, "%s/test/a_subject_test.csv", dir);
    write_text(path, "Only,x,y,B");
    sprintf(path, "%s/dev/b_subject_dev.csv", dir);
    write_text(path, "D1,a,b,c,d,C\n");
    oc_mmlu_set set;
    assert_int_equal(oc_mmlu_load(dir, "test", &set), OC_OK);
    assert_int_equal(set.n, 2);
    assert_string_equal(set.subjects[0].name, "a_subject"); /* sorted */
    assert_int_equal(set.subjects[0].n_dev, 0);
    assert_int_equal(set.subjects[0].items[0].n_choices, 2);
    assert_int_equal(set.subjects[0].items[0].answer, 1);
    const oc_mmlu_subject *b = &set.subjects[1];
    assert_int_equal(b->n_items, 2);
    assert_string_equal(b->items[0].question, "Say \"hi\", then\nwave");
    assert_string_equal(b->items[0].choices[0], " yes ");
    assert_int_equal(b->items[1].answer, 3);
    assert_int_equal(b->items[1].row, 2);
    assert_int_equal(b->n_dev, 1);
    assert_int_equal(b->dev[0].answer, 2);
    oc_mmlu_free(&set);
    /* one file: its shots from ../dev */
    sprintf(path, "%s/test/b_subject_test.csv", dir);
    assert_int_equal(oc_mmlu_load(path, "test", &set), OC_OK);
    assert_int_equal(set.n, 1);
    assert_string_equal(set.subjects[0].name, "b_subject");
    assert_int_equal(set.subjects[0].n_dev, 1);
    oc_mmlu_free(&set);
    /* errors name the file and the row */
    const char *bad[][2] = {{"Q,a,b,c,d,E\n", "row 1: the answer is 'E'"},
                            {"Q,a,b,c,d,A\nQ,a,b,A\n", "row 2 has 4 fields, the first row 6"},
                            {"Q,a,b,c,d,A\n\"open,a,b,c,d,A\n", "a quoted field is not closed"},
                            {"Q,A\n", "row 1 has 2 fields"},
                            {"Q,\xFF,b,c,d,A\n", "not valid UTF-8"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i][0]);
        assert_int_equal(oc_mmlu_load(path, "test", &set), OC_ERR_FORMAT);
        if (!strstr(oc_last_error(), bad[i][1]) || !strstr(oc_last_error(), "b_subject_test.csv"))
            fail_msg("case %zu: %s", i, oc_last_error());
    }
    assert_int_equal(oc_mmlu_load(dir, "val", &set), OC_ERR_IO);
}

/* ---- exam files ------------------------------------------------------------------- */

static void test_exam_files(void **state) {
    (void)state;
    const char *dir = tmpdir("exam");
    char path[512];
    sprintf(path, "%s/v.jsonl", dir);
    write_text(path, "{\"image\": \"a.png\", \"question\": \"Q?\", \"answers\": "
                     "[{\"answer\": \"x\", \"answer_id\": 1}, \"y\"], \"question_id\": 7, "
                     "\"question_type\": \"what\"}\n\n"
                     "{\"images\": [\"/abs/b.png\", \"c.png\"], \"question\": \"R?\", "
                     "\"answer\": \"z\"}\n");
    oc_exam e;
    assert_int_equal(oc_exam_load(path, OC_EXAM_VQA, 0, &e), OC_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.items[0].id, "7");
    assert_string_equal(e.items[0].group, "what");
    assert_int_equal(e.items[0].n_answers, 2);
    assert_string_equal(e.items[0].answers[0], "x");
    char want[600];
    sprintf(want, "%s/a.png", dir);
    assert_string_equal(e.items[0].images[0], want);
    assert_string_equal(e.items[1].images[0], "/abs/b.png");
    assert_int_equal(e.items[1].line, 3);
    assert_string_equal(e.items[1].answer, "z");
    oc_exam_free(&e);
    const char *bad[][3] = {
        {"{\"image\": \"a\", \"question\": 3, \"answer\": \"x\"}", "0", ":1: \"question\" must be a string"},
        {"{\"image\": \"a\"}", "0", ":1: expected \"question\""},
        {"not json", "0", ":1: not valid JSON"},
        {"{\"image\": \"a\", \"question\": \"\xFF\", \"answer\": \"x\"}", "0", "\"question\" is not valid UTF-8"},
        {"{\"image\": \"a\", \"question\": \"q\", \"choices\": [\"x\", \"y\"], \"answer\": \"C\"}", "2",
         "\"answer\" must be a letter A..B"},
        {"{\"image\": \"a\", \"question\": \"q\", \"answer\": \"maybe\"}", "3", "\"yes\" or \"no\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i][0]);
        assert_int_equal(oc_exam_load(path, (oc_exam_kind)atoi(bad[i][1]), 0, &e), OC_ERR_FORMAT);
        if (!strstr(oc_last_error(), bad[i][2]) || !strstr(oc_last_error(), "v.jsonl"))
            fail_msg("case %zu: %s", i, oc_last_error());
    }
    assert_int_equal(oc_exam_load("/nonexistent/x.jsonl", OC_EXAM_VQA, 0, &e), OC_ERR_IO);
    /* plain text for perplexity: one text a line */
    sprintf(path, "%s/t.txt", dir);
    write_text(path, "first line\n\nsecond\r\n");
    assert_int_equal(oc_exam_load(path, OC_EXAM_TEXTS, 0, &e), OC_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.items[1].question, "second");
    oc_exam_free(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bleu_equal_candidate),
        cmocka_unit_test(test_bleu_no_overlap),
        cmocka_unit_test(test_bleu_empty_candidate),
        cmocka_unit_test(test_bleu_corpus),
        cmocka_unit_test(test_cider_single_image),
        cmocka_unit_test(test_cider_equal_candidates),
        cmocka_unit_test(test_cider_penalty_and_clipping),
        cmocka_unit_test(test_cider_document_frequency),
        cmocka_unit_test(test_cider_no_overlap),
        cmocka_unit_test(test_caption_tokenize),
        cmocka_unit_test(test_vqa_normalisation),
        cmocka_unit_test(test_vqa_accuracy_matches),
        cmocka_unit_test(test_vqa_accuracy_rules),
        cmocka_unit_test(test_pope_reading),
        cmocka_unit_test(test_pope_counts),
        cmocka_unit_test(test_score_files),
        cmocka_unit_test(test_mmlu_prompt_bytes),
        cmocka_unit_test(test_mmlu_files),
        cmocka_unit_test(test_exam_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
