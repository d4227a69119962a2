/* The exams on models whose answers are known:
 *  - tests/data/mmlu-tiny, a tiny text model trained (tests/data/mmlu-tiny/make_fixture.py)
 *    to answer tests/data/mmlu-shapes with letters chosen in advance (right except three),
 *    in both prompt formats: the exact per-subject counts, micro and macro averages;
 *  - the bundled model on the shapes world's image MCQ: the letter each question gets
 *    equals the argmax computed by a plain forward pass over the whole sequence (no cache
 *    reuse, no chunks);
 * and the pieces under them: the scorer's reuse of a cached prefix against a fresh
 * forward, fewer shots / a cut context when the prompt does not fit, perplexity's windows,
 * the shapes world's exam files, and `ocellus eval` (every --help; --json that stays valid
 * JSON for paths and types with quotes or bytes that are not UTF-8). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "alloc.h"
#include "exam.h"
#include "json.h"
#include "model.h"
#include "score.h"
#include "session.h"
#include "shapes.h"
#include "testutil.h"

static oc_model *load(const char *dir, uint32_t max_context) {
    oc_model_params p = oc_model_default_params();
    p.n_threads = 1;
    p.max_context = max_context;
    oc_model *m = NULL;
    if (oc_model_load(dir, &p, &m) != OC_OK)
        fail_msg("%s: %s", dir, oc_last_error());
    return m;
}

static const char *bundled(void) { return td("../../models/ocellus-shapes"); }

/* log p(ids[first:n)) by one forward pass over ids[0:n-1] on a fresh cache, log-softmax
 * in double here: the reference for the scorer. Image tokens take feats' rows. */
static double plain_logprob(const oc_model *m, const float *feats, const int32_t *ids, size_t n,
                            size_t first) {
    size_t C = m->cfg.text.hidden, V = m->cfg.text.vocab, T = n - 1, k = 0;
    float *x = malloc(T * C * sizeof(float)), *logits = malloc(T * V * sizeof(float));
    for (size_t i = 0; i < T; i++) {
        if (ids[i] == m->cfg.image_token_id)
            memcpy(x + i * C, feats + k++ * C, C * sizeof(float));
        else
            oc_llama_embed(x + i * C, &m->cfg.text, &m->llm, ids[i]);
    }
    oc_kv_cache kv;
    oc_exec ex;
    oc_exec_init(&ex, NULL);
    assert_int_equal(oc_kv_cache_init(&kv, &m->cfg.text, (uint32_t)T), OC_OK);
    assert_int_equal(oc_llama_forward(&ex, &m->cfg.text, &m->llm, &kv, x, (uint32_t)T, NULL,
                                      logits, (uint32_t)T), OC_OK);
    oc_exec_release(&ex);
    double total = 0;
    for (size_t i = first; i < n; i++) {
        const float *l = logits + (i - 1) * V;
        double mx = l[0], sum = 0;
        for (size_t v = 1; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        for (size_t v = 0; v < V; v++)
            sum += exp(l[v] - mx);
        total += l[ids[i]] - mx - log(sum);
    }
    oc_kv_cache_free(&kv);
    free(x);
    free(logits);
    return total;
}

static int32_t *tokens(const oc_model *m, const char *text, size_t *n) {
    int32_t *ids;
    assert_int_equal(oc_tokenize(oc_model_tokenizer(m), text, strlen(text), 0, &ids, n), OC_OK);
    return ids;
}

/* ---- the scorer ------------------------------------------------------------------- */

static void test_scorer_reuse(void **state) {
    (void)state;
    oc_model *m = load(td("mmlu-tiny"), 0);
    /* two texts sharing a long prefix (over one 64-position chunk), scored one after the
     * other on one scorer: the second reuses the first's cache */
    char a[2048], b[2048];
    snprintf(a, sizeof a, "The following are multiple choice questions (with answers) about  "
             "shapes geometry.\n\nHow many corners does a star of the shapes world have?\n"
             "A. 10\nB. 4\nC. 3\nD. 12\nAnswer: A\n\nHow many straight sides does a cross "
             "of the shapes world have?\nA. 2\nB. 12\nC. 3\nD. 4\nAnswer: B");
    snprintf(b, sizeof b, "%.*s C", (int)(strlen(a) - 2), a);
    size_t na, nb;
    int32_t *ia = tokens(m, a, &na), *ib = tokens(m, b, &nb);
    assert_true(na > 70);
    oc_scorer sc;
    assert_int_equal(oc_scorer_init(&sc, m), OC_OK);
    double la, lb, lb_again, per[4];
    assert_int_equal(oc_scorer_logprobs(&sc, ia, na, 5, NULL, &la), OC_OK);
    assert_int_equal(oc_scorer_logprobs(&sc, ib, nb, nb - 3, per, &lb), OC_OK);
    assert_int_equal(oc_scorer_logprobs(&sc, ib, nb, nb - 3, NULL, &lb_again), OC_OK);
    oc_scorer_free(&sc);
    assert_true(fabs(la - plain_logprob(m, NULL, ia, na, 5)) < 1e-4);
    assert_true(fabs(lb - plain_logprob(m, NULL, ib, nb, nb - 3)) < 1e-4);
    assert_true(fabs(per[0] + per[1] + per[2] - lb) < 1e-9);
    assert_true(lb_again == lb); /* the same cache and tokens: the same numbers */
    oc_free(ia);
    oc_free(ib);
    oc_model_free(m);
}

/* ---- MMLU: a model whose answers are known ---------------------------------------- */

typedef struct {
    char wrong[8][64];  /* ids of the wrong items */
    char got[8];        /* their predicted letters */
    char want[8];
    int n_wrong, n;
    char first_prompt[4096];
    int shots[64];      /* "Answer: X" shots in each prompt */
} mmlu_seen;

static int count_shots(const char *prompt) {
    int k = 0;
    for (const char *p = prompt; (p = strstr(p, "\nAnswer: ")); p++)
        k++;
    return k;
}

static int on_mmlu(const oc_eval_item *it, void *user_data) {
    mmlu_seen *s = user_data;
    if (s->n == 0)
        snprintf(s->first_prompt, sizeof s->first_prompt, "%s", it->prompt);
    if (s->n < 64)
        s->shots[s->n] = count_shots(it->prompt);
    s->n++;
    if (!it->correct && s->n_wrong < 8) {
        snprintf(s->wrong[s->n_wrong], sizeof s->wrong[0], "%s", it->id);
        s->got[s->n_wrong] = it->prediction[0];
        s->want[s->n_wrong++] = it->expected[0];
    }
    return 0;
}

static void check_known_answers(oc_model *m, oc_mcq_format format) {
    oc_eval_params p = oc_eval_default_params();
    p.shots = 1;
    p.format = format;
    mmlu_seen seen = {0};
    p.on_item = on_mmlu;
    p.user_data = &seen;
    oc_eval_result r;
    assert_int_equal(oc_eval_mcq(m, td("mmlu-shapes"), &p, &r), OC_OK);
    /* trained: all right but shapes_rules rows 2 and 4 and shapes_captions row 3, each
     * answered with the letter after the right one */
    const char *names[4] = {"shapes_captions", "shapes_geometry", "shapes_relations",
                            "shapes_rules"};
    const size_t n[4] = {6, 6, 8, 4}, right[4] = {5, 6, 8, 2};
    assert_int_equal(r.n_groups, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(r.groups[i].name, names[i]);
        assert_int_equal(r.groups[i].n, n[i]);
        assert_int_equal(r.groups[i].correct, right[i]);
    }
    assert_int_equal(r.all.n, 24);
    assert_int_equal(r.all.correct, 21);
    assert_true(fabs(r.accuracy - 21.0 / 24) < 1e-12);
    assert_true(fabs(r.macro_accuracy - (5.0 / 6 + 1 + 1 + 0.5) / 4) < 1e-12);
    assert_int_equal(r.fewer_shots, 0);
    assert_int_equal(seen.n_wrong, 3);
    const char *wrong[3] = {"shapes_captions:3", "shapes_rules:2", "shapes_rules:4"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(seen.wrong[i], wrong[i]);
        assert_int_equal(seen.got[i], 'A' + (seen.want[i] - 'A' + 1) % 4);
    }
    oc_eval_result_free(&r);
}

static void test_mmlu_known_answers(void **state) {
    (void)state;
    oc_model *m = load(td("mmlu-tiny"), 0);
    check_known_answers(m, OC_MCQ_ORIGINAL);
    check_known_answers(m, OC_MCQ_HARNESS);
    oc_model_free(m);
}

/* The first prompt is built from the layout's files: the subject's first dev row as the
 * shot, then the first test row (shapes_captions sorts first; its rows are quoted CSV). */
static void test_mmlu_prompt_from_files(void **state) {
    (void)state;
    oc_model *m = load(td("mmlu-tiny"), 0);
    oc_eval_params p = oc_eval_default_params();
    p.shots = 1;
    p.limit = 1;
    mmlu_seen seen = {0};
    p.on_item = on_mmlu;
    p.user_data = &seen;
    oc_eval_result r;
    assert_int_equal(oc_eval_mcq(m, td("mmlu-shapes"), &p, &r), OC_OK);
    assert_int_equal(r.all.n, 1);
    oc_eval_result_free(&r);
    /* the rows as the CSV files hold them (each question one quoted field with doubled
     * quotes), turned into the prompt by hand */
    char line[2][2048];
    const char *files[2] = {"mmlu-shapes/dev/shapes_captions_dev.csv",
                            "mmlu-shapes/test/shapes_captions_test.csv"};
    char want[4096] = "The following are multiple choice questions (with answers) about  shapes "
                      "captions.\n\n";
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(td(files[f]), "r");
        assert_non_null(fp);
        assert_non_null(fgets(line[f], sizeof line[f], fp));
        fclose(fp);
        /* "question with ""quotes""",c1,c2,c3,c4,X */
        char *s = line[f], q[1024], *o = q;
        assert_int_equal(*s++, '"');
        for (; !(s[0] == '"' && s[1] != '"'); s++) {
            *o++ = *s;
            if (s[0] == '"')
                s++;
        }
        *o = 0;
        s += 2; /* the closing quote and comma */
        strcat(want, q);
        for (int c = 0; c < 4; c++) {
            char *comma = strchr(s, ',');
            char field[128];
            snprintf(field, sizeof field, "\n%c. %.*s", 'A' + c, (int)(comma - s), s);
            strcat(want, field);
            s = comma + 1;
        }
        strcat(want, "\nAnswer:");
        if (f == 0) {
            char shot[8];
            snprintf(shot, sizeof shot, " %c\n\n", s[0]);
            strcat(want, shot);
        }
    }
    assert_string_equal(seen.first_prompt, want);
    oc_model_free(m);
}

/* A context too small for 5 shots: the original format drops shots until the prompt
 * fits (each question gets the most that fit); the harness cuts the context's left. */
static void test_mmlu_fewer_shots(void **state) {
    (void)state;
    const uint32_t ctx = 600;
    oc_model *m = load(td("mmlu-tiny"), ctx);
    oc_eval_params p = oc_eval_default_params();
    p.limit = 12; /* shapes_captions (long) and shapes_geometry (short) */
    mmlu_seen seen = {0};
    p.on_item = on_mmlu;
    p.user_data = &seen;
    oc_eval_result r;
    assert_int_equal(oc_eval_mcq(m, td("mmlu-shapes"), &p, &r), OC_OK);
    assert_int_equal(r.all.n, 12);
    oc_mmlu_set set;
    assert_int_equal(oc_mmlu_load(td("mmlu-shapes"), "test", &set), OC_OK);
    size_t fewer = 0;
    for (int i = 0; i < 12; i++) {
        const oc_mmlu_subject *s = &set.subjects[i / 6];
        const oc_mmlu_question *q = &s->items[i % 6];
        int k = seen.shots[i];
        fewer += k < 5;
        /* k shots fit (prompt + " X" minus its last token within the context) and k + 1
         * would not */
        for (int kk = k; kk <= k + 1 && kk <= 5; kk++) {
            const char *sq[5];
            const char **sc[5];
            int sa[5];
            const char *chs[5][5];
            for (int j = 0; j < kk; j++) {
                sq[j] = s->dev[j].question;
                for (int c = 0; c < 4; c++)
                    chs[j][c] = s->dev[j].choices[c];
                chs[j][4] = NULL;
                sc[j] = chs[j];
                sa[j] = s->dev[j].answer;
            }
            char *prompt, with[8192];
            assert_int_equal(oc_mmlu_prompt(OC_MCQ_ORIGINAL, s->name, sq,
                                            (const char *const *const *)sc, sa, (size_t)kk,
                                            q->question, (const char *const *)q->choices, 4,
                                            &prompt), OC_OK);
            snprintf(with, sizeof with, "%s A", prompt);
            size_t n_p, n_w;
            oc_free(tokens(m, prompt, &n_p));
            oc_free(tokens(m, with, &n_w));
            int fits = n_w - 1 <= ctx;
            assert_int_equal(fits, kk == k);
            oc_free(prompt);
        }
    }
    assert_true(fewer > 0);
    assert_int_equal(r.fewer_shots, fewer);
    oc_eval_result_free(&r);
    /* the harness keeps 5 shots and cuts */
    p.format = OC_MCQ_HARNESS;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(oc_eval_mcq(m, td("mmlu-shapes"), &p, &r), OC_OK);
    assert_int_equal(r.fewer_shots, 0);
    assert_true(r.truncated > 0);
    for (int i = 0; i < 12; i++)
        assert_int_equal(seen.shots[i], 5);
    oc_eval_result_free(&r);
    oc_mmlu_free(&set);
    oc_model_free(m);
}

/* ---- perplexity ---------------------------------------------------------------------- */

static void test_perplexity_windows(void **state) {
    (void)state;
    const char *dir = tmpdir("ppl");
    char path[512];
    snprintf(path, sizeof path, "%s/texts.txt", dir);
    const char *text = "How many straight sides does a cross of the shapes world have?";
    write_text(path, "How many straight sides does a cross of the shapes world have?\n");
    for (int small = 0; small < 2; small++) {
        /* context 10: windows predict 10 tokens each, from the 10 before (the first from
         * BOS); otherwise one window [BOS] + text */
        uint32_t L = small ? 10 : 0;
        oc_model *m = load(td("mmlu-tiny"), L);
        oc_eval_result r;
        assert_int_equal(oc_eval_perplexity(m, path, NULL, &r), OC_OK);
        size_t n;
        int32_t *ids = tokens(m, text, &n), *full = malloc((n + 1) * sizeof *full);
        full[0] = m->cfg.bos_id;
        memcpy(full + 1, ids, n * sizeof *ids);
        double lp = 0;
        if (!small) {
            lp = plain_logprob(m, NULL, full, n + 1, 1);
        } else {
            for (size_t done = 0; done < n;) {
                size_t pred = n - done < L ? n - done : L, end = done + pred;
                size_t start = end + 1 > L + 1 ? end - L : 0;
                lp += plain_logprob(m, NULL, full + start, end + 1 - start, end + 1 - start - pred);
                done = end;
            }
        }
        assert_int_equal(r.tokens, n);
        assert_int_equal(r.bytes, strlen(text));
        assert_true(fabs(r.nll + lp) < 1e-3);
        assert_true(fabs(r.perplexity - exp(-lp / (double)n)) < 1e-3 * r.perplexity);
        assert_true(fabs(r.bits_per_byte - (-lp / (double)strlen(text) / log(2))) < 1e-5);
        free(full);
        oc_free(ids);
        oc_eval_result_free(&r);
        oc_model_free(m);
    }
}

/* ---- the bundled model on the shapes world's exams ---------------------------------- */

static const char *shapes_exams(void) {
    static char dir[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", tmpdir("exams"));
        oc_shapes_params p = oc_shapes_default_params();
        p.split = OC_SPLIT_TEST;
        p.seed = 99;
        p.n = 6;
        p.image_size = 48;
        p.questions_per_image = 2;
        p.mmlu_per_subject = 4;
        assert_int_equal(oc_shapes_write_dataset(&p, dir), OC_OK);
    }
    return dir;
}

typedef struct {
    char pred[64];
    int correct[64];
    char prompt[8][2048];
    int n;
} picks;

static int on_pick(const oc_eval_item *it, void *user_data) {
    picks *p = user_data;
    if (p->n < 8)
        snprintf(p->prompt[p->n], sizeof p->prompt[0], "%s", it->prompt);
    p->pred[p->n] = it->prediction[0];
    p->correct[p->n++] = it->correct;
    return 0;
}

static void test_image_mcq_bundled(void **state) {
    (void)state;
    oc_model *m = load(bundled(), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/mcq_images.jsonl", shapes_exams());
    picks seen = {0};
    oc_eval_params p = oc_eval_default_params();
    p.on_item = on_pick;
    p.user_data = &seen;
    oc_eval_result r;
    assert_int_equal(oc_eval_image_mcq(m, path, &p, &r), OC_OK);
    assert_int_equal(r.all.n, 6);
    /* the reference: lmms-eval's text, each letter as the assistant's reply, scored by one
     * plain forward pass over the whole sequence; the answer is the best letter */
    oc_exam e;
    assert_int_equal(oc_exam_load(path, OC_EXAM_IMAGE_MCQ, 0, &e), OC_OK);
    size_t right = 0;
    for (size_t i = 0; i < e.n; i++) {
        const oc_exam_item *it = &e.items[i];
        char text[2048];
        int k = snprintf(text, sizeof text, "%s\n", it->question);
        for (size_t c = 0; c < it->n_choices; c++)
            k += snprintf(text + k, sizeof text - k, "%s%c. %s", c ? "\n" : "", 'A' + (int)c,
                          it->choices[c]);
        snprintf(text + k, sizeof text - k, "\nAnswer with the option's letter from the "
                 "given choices directly.");
        assert_string_equal(seen.prompt[i], text); /* lmms-eval's text, byte for byte */
        oc_image *img;
        assert_int_equal(oc_image_load(it->images[0], NULL, &img), OC_OK);
        oc_session *s;
        assert_int_equal(oc_session_new(m, &s), OC_OK);
        oc_timings tm = {0};
        assert_int_equal(oc_session_add_images(s, (const oc_image *const *)&img, 1, &tm, NULL),
                         OC_OK);
        int best = -1;
        double best_lp = 0;
        for (int l = 0; l < 4; l++) {
            char letter[2] = {(char)('A' + l), 0};
            int32_t *ids;
            size_t n, first, end;
            assert_int_equal(oc_chat_answer_ids(m, s->layouts, 1, text, letter, &ids, &n,
                                                &first, &end), OC_OK);
            double lp = plain_logprob(m, s->feats, ids, end - 1, first); /* no end token */
            if (best < 0 || lp > best_lp)
                best = l, best_lp = lp;
            oc_free(ids);
        }
        assert_int_equal(seen.pred[i], 'A' + best);
        assert_int_equal(seen.correct[i], 'A' + best == it->answer[0]);
        right += 'A' + best == it->answer[0];
        oc_session_free(s);
        oc_image_free(img);
    }
    assert_int_equal(r.all.correct, right);
    oc_eval_result_free(&r);
    /* generated: lmms-eval's rule on what oc_ask answers */
    p.generate = 1;
    p.limit = 2;
    p.gen.max_tokens = 6;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(oc_eval_image_mcq(m, path, &p, &r), OC_OK);
    assert_int_equal(r.all.n, 2);
    oc_eval_result_free(&r);
    oc_exam_free(&e);
    oc_model_free(m);
}

typedef struct {
    double score[64];
    char pred[64][256];
    int n;
} seen_items;

static int on_seen(const oc_eval_item *it, void *user_data) {
    seen_items *s = user_data;
    s->score[s->n] = it->score;
    snprintf(s->pred[s->n++], sizeof s->pred[0], "%s", it->prediction);
    return 0;
}

/* VQA, captions and POPE on the bundled model: each item's score is the metric of what
 * oc_ask answers; BLEU and CIDEr-D those of the captions made. */
static void test_generated_exams_bundled(void **state) {
    (void)state;
    oc_model *m = load(bundled(), 0);
    const char *dir = shapes_exams();
    char path[600];
    oc_eval_params p = oc_eval_default_params();
    p.gen.max_tokens = 48;
    seen_items seen = {0};
    p.on_item = on_seen;
    p.user_data = &seen;
    oc_eval_result r;
    oc_exam e;

    snprintf(path, sizeof path, "%s/vqa10.jsonl", dir);
    assert_int_equal(oc_eval_vqa(m, path, &p, &r), OC_OK);
    assert_int_equal(oc_exam_load(path, OC_EXAM_VQA, 0, &e), OC_OK);
    assert_int_equal(r.all.n, e.n);
    double sum = 0;
    for (size_t i = 0; i < e.n; i++) {
        oc_image *img;
        oc_answer ans;
        assert_int_equal(oc_image_load(e.items[i].images[0], NULL, &img), OC_OK);
        assert_int_equal(oc_ask(m, (const oc_image *const *)&img, 1, e.items[i].question,
                                &p.gen, &ans), OC_OK);
        assert_string_equal(seen.pred[i], ans.text);
        double acc;
        assert_int_equal(oc_vqa_accuracy(ans.text, (const char *const *)e.items[i].answers,
                                         e.items[i].n_answers, &acc), OC_OK);
        assert_true(seen.score[i] == acc);
        sum += acc;
        oc_answer_free(&ans);
        oc_image_free(img);
    }
    assert_true(fabs(r.accuracy - sum / (double)e.n) < 1e-12);
    assert_true(r.accuracy > 0.5); /* the bundled model reads these scenes */
    oc_exam_free(&e);
    oc_eval_result_free(&r);

    memset(&seen, 0, sizeof seen);
    snprintf(path, sizeof path, "%s/captions5.jsonl", dir);
    assert_int_equal(oc_eval_captions(m, path, &p, &r), OC_OK);
    assert_int_equal(oc_exam_load(path, OC_EXAM_CAPTIONS, 0, &e), OC_OK);
    const char *cands[64];
    const char *const *refs[64];
    size_t nr[64];
    for (size_t i = 0; i < e.n; i++) {
        cands[i] = seen.pred[i];
        refs[i] = (const char *const *)e.items[i].answers;
        nr[i] = e.items[i].n_answers;
        assert_int_equal(nr[i], 5);
    }
    oc_caption_metrics cm;
    assert_int_equal(oc_caption_metrics_compute(cands, refs, nr, e.n, 1, &cm, NULL), OC_OK);
    for (int k = 0; k < 4; k++)
        assert_true(r.bleu[k] == cm.bleu[k]);
    assert_true(r.cider_d == cm.cider_d);
    assert_true(r.bleu[3] > 0.5);
    oc_exam_free(&e);
    oc_eval_result_free(&r);

    memset(&seen, 0, sizeof seen);
    snprintf(path, sizeof path, "%s/pope.jsonl", dir);
    p.limit = 24;
    assert_int_equal(oc_eval_pope(m, path, &p, &r), OC_OK);
    assert_int_equal(oc_exam_load(path, OC_EXAM_POPE, 24, &e), OC_OK);
    size_t tp = 0, fp = 0, tn = 0, fn = 0;
    for (size_t i = 0; i < e.n; i++) {
        int yes = oc_pope_says_yes(seen.pred[i]), label = !strcmp(e.items[i].answer, "yes");
        tp += yes && label, fp += yes && !label, tn += !yes && !label, fn += !yes && label;
    }
    assert_int_equal(r.all.tp, tp);
    assert_int_equal(r.all.fp, fp);
    assert_int_equal(r.all.tn, tn);
    assert_int_equal(r.all.fn, fn);
    assert_true(fabs(r.f1 - (2.0 * tp / (2.0 * tp + fp + fn))) < 1e-12);
    oc_exam_free(&e);
    oc_eval_result_free(&r);
    oc_model_free(m);
}

/* ---- the shapes world's exam files ---------------------------------------------------- */

static void test_shapes_exam_files(void **state) {
    (void)state;
    const char *dir = shapes_exams();
    char path[600];
    oc_exam e;
    /* vqa10: vqa.jsonl's questions, ten answers, the canonical one in the majority */
    oc_exam plain;
    snprintf(path, sizeof path, "%s/vqa.jsonl", dir);
    assert_int_equal(oc_exam_load(path, OC_EXAM_VQA, 0, &plain), OC_OK);
    snprintf(path, sizeof path, "%s/vqa10.jsonl", dir);
    assert_int_equal(oc_exam_load(path, OC_EXAM_VQA, 0, &e), OC_OK);
    assert_int_equal(e.n, plain.n);
    for (size_t i = 0; i < e.n; i++) {
        assert_string_equal(e.items[i].question, plain.items[i].question);
        assert_int_equal(e.items[i].n_answers, 10);
        int same = 0;
        for (int k = 0; k < 10; k++)
            same += !strcmp(e.items[i].answers[k], plain.items[i].answer);
        assert_true(same >= 4);
        double acc;
        assert_int_equal(oc_vqa_accuracy(plain.items[i].answer,
                                         (const char *const *)e.items[i].answers, 10, &acc),
                         OC_OK);
        assert_true(acc >= 0.9);
    }
    oc_exam_free(&plain);
    oc_exam_free(&e);
    /* captions5: the caption first and the four other forms */
    oc_scene sc;
    assert_int_equal(oc_scene_generate(OC_SPLIT_TEST, 99, 0, &sc), OC_OK);
    char cap[OC_SCENE_TEXT_MAX];
    oc_scene_caption(&sc, cap);
    snprintf(path, sizeof path, "%s/captions5.jsonl", dir);
    assert_int_equal(oc_exam_load(path, OC_EXAM_CAPTIONS, 0, &e), OC_OK);
    assert_string_equal(e.items[0].answers[0], cap);
    char there[300];
    snprintf(there, sizeof there, "there is %s", cap);
    assert_string_equal(e.items[0].answers[4], there);
    assert_non_null(strstr(e.items[0].answers[2], "background, a "));
    oc_exam_free(&e);
    /* a hand-made scene: red circle left of a blue square, white background */
    oc_scene two = {.background = OC_BG_WHITE, .n = 2};
    two.obj[0] = (oc_shape_obj){OC_SHAPE_CIRCLE, OC_COLOUR_RED, OC_SIZE_LARGE, 0, 1, 0, 0};
    two.obj[1] = (oc_shape_obj){OC_SHAPE_SQUARE, OC_COLOUR_BLUE, OC_SIZE_SMALL, 2, 1, 0, 0};
    assert_int_equal(oc_scene_canonicalize(&two), OC_OK);
    char five[OC_SCENE_CAPTIONS][OC_SCENE_TEXT_MAX];
    oc_scene_captions5(&two, five);
    assert_string_equal(five[0], "a large red circle to the left of a small blue square on a "
                                 "white background");
    assert_string_equal(five[1], "a small blue square to the right of a large red circle on a "
                                 "white background");
    assert_string_equal(five[3], "on a white background, a small blue square to the right of a "
                                 "large red circle");
    /* POPE: per category as many absent objects as present ones (up to 3); popular
     * negatives are the top-ranked absent ones; adversarial ones share a colour or a
     * shape with a present object */
    uint8_t rank[30];
    for (int i = 0; i < 30; i++)
        rank[i] = (uint8_t)(29 - i);
    oc_stream rng = oc_stream_derive(1, 2, 3, 4);
    oc_pope_q q[OC_POPE_PER_SCENE];
    size_t n = oc_scene_pope(&two, rank, &rng, q);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(q[i].category, (int)i / 4);
        assert_int_equal(q[i].yes, i % 4 < 2);
        int has_red_circle = strstr(q[i].question, "red circle") != NULL;
        int has_blue_square = strstr(q[i].question, "blue square") != NULL;
        assert_int_equal(q[i].yes, has_red_circle || has_blue_square);
        if (q[i].category == 2 && !q[i].yes)
            assert_true(strstr(q[i].question, "red ") || strstr(q[i].question, "circle") ||
                        strstr(q[i].question, "blue ") || strstr(q[i].question, "square"));
    }
    /* rank 29, 28 first: object 29 = orange cross, 28 = orange star */
    assert_string_equal(q[6].question, "Is there a orange cross?");
    assert_string_equal(q[7].question, "Is there a orange star?");
    /* the files: balanced yes / no, categories named */
    snprintf(path, sizeof path, "%s/pope.jsonl", dir);
    assert_int_equal(oc_exam_load(path, OC_EXAM_POPE, 0, &e), OC_OK);
    size_t yes = 0;
    for (size_t i = 0; i < e.n; i++)
        yes += !strcmp(e.items[i].answer, "yes");
    assert_int_equal(2 * yes, e.n);
    assert_string_equal(e.items[0].group, "random");
    oc_exam_free(&e);
    /* the MMLU folder reads back; its rule questions have the world's answers */
    snprintf(path, sizeof path, "%s/mmlu", dir);
    oc_mmlu_set set;
    assert_int_equal(oc_mmlu_load(path, "test", &set), OC_OK);
    assert_int_equal(set.n, 4);
    for (size_t s = 0; s < set.n; s++) {
        assert_int_equal(set.subjects[s].n_items, 4);
        assert_int_equal(set.subjects[s].n_dev, 5);
        for (size_t i = 0; i < set.subjects[s].n_items; i++) {
            const oc_mmlu_question *mq = &set.subjects[s].items[i];
            const char *a = mq->choices[mq->answer];
            if (strstr(mq->question, "sides does a triangle"))
                assert_string_equal(a, "3");
            if (strstr(mq->question, "sides does a cross"))
                assert_string_equal(a, "12");
            if (strstr(mq->question, "largest number of objects"))
                assert_string_equal(a, "4");
        }
    }
    oc_mmlu_free(&set);
}

/* ---- the command line ------------------------------------------------------------------ */

static int run(const char *args, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", OC_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_help(void **state) {
    (void)state;
    static char out[1 << 16];
    const char *subs[] = {"mcq", "vqa", "captions", "pope", "perplexity", "score"};
    for (int i = 0; i < 6; i++) {
        char args[128];
        snprintf(args, sizeof args, "eval %s --help", subs[i]);
        assert_int_equal(run(args, out, sizeof out), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: ocellus eval %s", subs[i]);
        assert_non_null(strstr(out, want));
    }
    assert_int_equal(run("eval --help", out, sizeof out), 0);
    assert_int_equal(run("eval vqa", out, sizeof out), 2);        /* no --data */
    assert_int_equal(run("eval nothing --data x", out, sizeof out), 2);
}

static int valid_utf8(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3
                                                      : (*s & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || (n == 2 && *s < 0xC2))
            return 0;
        for (int k = 1; k < n; k++)
            if ((s[k] & 0xC0) != 0x80)
                return 0;
        s += n;
    }
    return 1;
}

/* --json stays valid JSON (and UTF-8) when the data path holds a quote and a byte that
 * is not UTF-8, and "type" values hold quotes, braces or such bytes (the reliability
 * issue's item 3: they were printed raw). */
static void test_cli_json_hostile_names(void **state) {
    (void)state;
    static char out[1 << 16], args[4096];
    char dir[600], img[700], data[800];
    snprintf(dir, sizeof dir, "%s/we\"ird\xFF", tmpdir("cli-json"));
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(img, sizeof img, "%s/images/00000.png", shapes_exams());
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    char lines[2048];
    snprintf(lines, sizeof lines,
             "{\"image\": \"%s\", \"question\": \"How many objects are there?\", "
             "\"answer\": \"2\", \"type\": \"a\\\"b}, {\\\"accuracy\\\": 100\"}\n"
             "{\"image\": \"%s\", \"question\": \"What colour is the background?\", "
             "\"answer\": \"white\", \"type\": \"bad \xFF byte\"}\n",
             img, img);
    write_text(data, lines);
    snprintf(args, sizeof args, "eval vqa --data '%s' --json --quiet --max-tokens 4 "
             "--threads 1", data);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_true(valid_utf8((const unsigned char *)out));
    cJSON *j;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    char want[900];
    snprintf(want, sizeof want, "%.*s\xEF\xBF\xBD/q.jsonl", (int)(strlen(dir) - 1), dir);
    assert_string_equal(oc_json_get(j, "data")->valuestring, want);
    assert_int_equal(oc_json_get(j, "n")->valueint, 2);
    assert_null(oc_json_get(j, "accuracy")); /* no key injected */
    const cJSON *g = oc_json_get(j, "groups");
    assert_int_equal(cJSON_GetArraySize(g), 2);
    assert_string_equal(oc_json_get(cJSON_GetArrayItem(g, 0), "name")->valuestring,
                        "a\"b}, {\"accuracy\": 100");
    assert_string_equal(oc_json_get(cJSON_GetArrayItem(g, 1), "name")->valuestring,
                        "bad \xEF\xBF\xBD byte");
    cJSON_Delete(j);
    /* the table too, and eval score's JSON keys */
    snprintf(args, sizeof args, "eval vqa --data '%s' --quiet --max-tokens 4 --threads 1",
             data);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "VQA accuracy"));
    char p[700], r[700];
    snprintf(p, sizeof p, "%s/p.jsonl", dir);
    snprintf(r, sizeof r, "%s/r.jsonl", dir);
    write_text(p, "{\"id\": \"x\", \"prediction\": \"a red circle\"}\n");
    write_text(r, "{\"id\": \"x\", \"references\": [\"a red circle\", \"a circle\"]}\n");
    snprintf(args, sizeof args, "eval score --metric bleu --predictions '%s' --references "
             "'%s' --json", p, r);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    const char *keys[] = {"bleu1", "bleu2", "bleu3", "bleu4", "cider_d", "n"};
    for (int k = 0; k < 6; k++)
        assert_non_null(oc_json_get(j, keys[k]));
    assert_true(fabs(oc_json_get(j, "bleu1")->valuedouble - 1) < 1e-8);
    cJSON_Delete(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scorer_reuse),
        cmocka_unit_test(test_mmlu_known_answers),
        cmocka_unit_test(test_mmlu_prompt_from_files),
        cmocka_unit_test(test_mmlu_fewer_shots),
        cmocka_unit_test(test_perplexity_windows),
        cmocka_unit_test(test_image_mcq_bundled),
        cmocka_unit_test(test_generated_exams_bundled),
        cmocka_unit_test(test_shapes_exam_files),
        cmocka_unit_test(test_cli_help),
        cmocka_unit_test(test_cli_json_hostile_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
