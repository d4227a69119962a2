/* Exams about images: multiple choice (letter log-probabilities, or generated letters),
 * VQA, captions and POPE. Each line's images are loaded once for the consecutive lines
 * that name them; answers are generated greedily (oc_ask) unless the parameters say
 * otherwise; letters are scored on a cache that keeps the image and the question. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "eval_internal.h"
#include "pytext.h"
#include "score.h"
#include "session.h"
#include "strbuf.h"

/* lmms-eval's post prompt for ScienceQA-IMG, AI2D and MMMU multiple choice. */
static const char LMMS_MCQ_SUFFIX[] = "\nAnswer with the option's letter from the given "
                                      "choices directly.";

/* State of one exam run. */
typedef struct {
    const oc_model *m;
    oc_eval_params p;
    oc_exam exam;
    oc_eval_result r;
    oc_item_images images;
    size_t lo, hi;      /* this rank's items (all of them alone) */
    int merged;         /* the ranks' counts are summed into r already */
} run;

static oc_status run_start(run *x, const oc_model *m, const char *data, oc_exam_kind kind,
                           oc_eval_task task, const oc_eval_params *params) {
    memset(x, 0, sizeof *x);
    if (!m || !data)
        return oc_err(OC_ERR_INVALID_ARG, "eval: NULL argument");
    x->m = m;
    x->p = params ? *params : oc_eval_default_params();
    oc_res_start(&x->r, task);
    OC_TRY(oc_exam_load(data, kind, x->p.limit, &x->exam));
    oc_res_span(&x->p, x->exam.n, &x->lo, &x->hi);
    return OC_OK;
}

/* Ends a run: *out gets the result on success or cancellation. */
static oc_status run_end(run *x, oc_status st, oc_eval_result *out) {
    oc_item_images_free(&x->images);
    oc_exam_free(&x->exam);
    if (!x->merged)
        st = oc_res_merge(&x->r, &x->p, st); /* every rank's counts (collective) */
    oc_res_stop(&x->r);
    oc_res_finish(&x->r);
    if (st != OC_OK && st != OC_ERR_CANCELLED) {
        oc_eval_result_free(&x->r);
        return st;
    }
    *out = x->r;
    return st;
}

/* question + suffix, oc_malloc'd. */
static char *with_suffix(const char *question, const char *suffix) {
    oc_strbuf b = {0};
    oc_sb_puts(&b, question);
    if (suffix)
        oc_sb_puts(&b, suffix);
    if (b.failed)
        oc_sb_free(&b);
    return b.data;
}

/* The greedy (or params.gen) answer to a question about the item's images. */
static oc_status ask(run *x, const oc_exam_item *it, const char *question, char **text) {
    OC_TRY(oc_item_images_get(&x->images, it, &x->p.image_limits));
    oc_answer ans;
    OC_TRY(oc_ask(x->m, (const oc_image *const *)x->images.images, x->images.n, question,
                  &x->p.gen, &ans));
    *text = ans.text;
    ans.text = NULL;
    oc_answer_free(&ans);
    return OC_OK;
}

static oc_status report(run *x, size_t i, const oc_exam_item *it, const char *prompt,
                        const char *pred, const char *want, double score, int correct) {
    char name[4096];
    oc_eval_item item = {i - x->lo, x->hi - x->lo, oc_item_name(&x->exam, it, name, sizeof name),
                         it->group,
                         prompt, pred, want, score, correct, NULL};
    return oc_res_report(&x->r, &x->p, &item);
}

/* ---- VQA ------------------------------------------------------------------------ */

/* The most common of the answers (the first on a tie), to show as the expected one. */
static const char *majority(char *const *answers, size_t n) {
    size_t best = 0, best_count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += strcmp(answers[i], answers[j]) == 0;
        if (c > best_count)
            best = i, best_count = c;
    }
    return answers[best];
}

oc_status oc_eval_vqa(const oc_model *m, const char *data, const oc_eval_params *params,
                      oc_eval_result *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_vqa: NULL argument");
    run x;
    oc_status st = run_start(&x, m, data, OC_EXAM_VQA, OC_EVAL_VQA, params);
    for (size_t i = x.lo; st == OC_OK && i < x.hi; i++) {
        const oc_exam_item *it = &x.exam.items[i];
        char *q = with_suffix(it->question, x.p.suffix), *pred = NULL;
        st = q ? ask(&x, it, q, &pred) : oc_err(OC_ERR_NOMEM, "out of memory");
        double acc = 0;
        const char *want = it->n_answers ? majority(it->answers, it->n_answers) : it->answer;
        if (st == OC_OK)
            st = it->n_answers ? oc_vqa_accuracy(pred, (const char *const *)it->answers,
                                                 it->n_answers, &acc)
                               : oc_vqa_accuracy(pred, &want, 1, &acc);
        if (st == OC_OK)
            st = oc_res_add(&x.r, it->group, acc, acc >= 1, -1, -1);
        if (st == OC_OK)
            st = report(&x, i, it, q, pred, want, acc, acc >= 1);
        oc_free(q);
        oc_free(pred);
    }
    return run_end(&x, st, out);
}

/* ---- POPE ----------------------------------------------------------------------- */

oc_status oc_eval_pope(const oc_model *m, const char *data, const oc_eval_params *params,
                       oc_eval_result *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_pope: NULL argument");
    run x;
    oc_status st = run_start(&x, m, data, OC_EXAM_POPE, OC_EVAL_POPE, params);
    for (size_t i = x.lo; st == OC_OK && i < x.hi; i++) {
        const oc_exam_item *it = &x.exam.items[i];
        char *q = with_suffix(it->question, x.p.suffix), *pred = NULL;
        st = q ? ask(&x, it, q, &pred) : oc_err(OC_ERR_NOMEM, "out of memory");
        if (st == OC_OK) {
            int yes = oc_pope_says_yes(pred), label = strcmp(it->answer, "yes") == 0;
            st = oc_res_add(&x.r, it->group, yes == label, yes == label, yes, label);
            if (st == OC_OK)
                st = report(&x, i, it, q, pred, it->answer, yes == label, yes == label);
        }
        oc_free(q);
        oc_free(pred);
    }
    return run_end(&x, st, out);
}

/* ---- captions ------------------------------------------------------------------- */

/* preds[lo, hi) of this rank to every rank: preds[0, n) on all (collective). */
static oc_status gather_captions(char **preds, size_t lo, size_t hi, size_t n) {
    oc_strbuf b = {0};
    for (size_t i = lo; i < hi; i++)
        oc_sb_putn(&b, preds[i], strlen(preds[i]) + 1);
    oc_status s = b.failed ? oc_err(OC_ERR_NOMEM, "out of memory") : OC_OK;
    size_t *sizes = oc_malloc((size_t)oc_dist_get_info().size * sizeof *sizes);
    void *all = NULL;
    if (s == OC_OK && !sizes)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    s = oc_dist_agree(s);
    if (s == OC_OK)
        s = oc_dist_allgather(b.data ? b.data : "", b.len, &all, sizes);
    size_t total = 0;
    for (int r = 0; s == OC_OK && r < oc_dist_get_info().size; r++)
        total += sizes[r];
    const char *at = all, *end = (const char *)all + total;
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        const char *z = at < end ? memchr(at, 0, (size_t)(end - at)) : NULL;
        if (!z) {
            s = oc_err(OC_ERR_INTERNAL, "eval: the ranks' captions are cut short");
            break;
        }
        if (i < lo || i >= hi) {
            oc_free(preds[i]);
            if (!(preds[i] = oc_strdup(at)))
                s = oc_err(OC_ERR_NOMEM, "out of memory");
        }
        at = z + 1;
    }
    oc_sb_free(&b);
    oc_free(sizes);
    oc_free(all);
    return s;
}

oc_status oc_eval_captions(const oc_model *m, const char *data, const oc_eval_params *params,
                           oc_eval_result *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_captions: NULL argument");
    run x;
    oc_status st = run_start(&x, m, data, OC_EXAM_CAPTIONS, OC_EVAL_CAPTIONS, params);
    const char *request = x.p.prompt ? x.p.prompt : "Describe this image.";
    char **preds = st == OC_OK ? oc_calloc(x.exam.n, sizeof *preds) : NULL;
    if (st == OC_OK && !preds)
        st = oc_err(OC_ERR_NOMEM, "out of memory");
    size_t done = 0;
    for (size_t i = x.lo; st == OC_OK && i < x.hi; i++) {
        const oc_exam_item *it = &x.exam.items[i];
        st = ask(&x, it, request, &preds[i]);
        if (st != OC_OK)
            break;
        done = i + 1;
        int exact = 0;
        for (size_t j = 0; j < it->n_answers && !exact; j++)
            exact = oc_answer_matches(preds[i], it->answers[j]);
        st = oc_res_add(&x.r, it->group, exact, exact, -1, -1);
        if (st == OC_OK)
            st = report(&x, i, it, request, preds[i], it->answers[0], exact, exact);
    }
    if (oc_res_ranks(&x.p) > 1) {
        /* the counts, then every rank's captions in item order: all n on every rank */
        st = oc_res_merge(&x.r, &x.p, st);
        x.merged = 1;
        if (st == OC_OK)
            st = gather_captions(preds, x.lo, x.hi, x.exam.n);
        done = st == OC_OK ? x.exam.n : 0;
    }
    /* BLEU and CIDEr-D of the captions made (all of them, or those before a stop) */
    if ((st == OC_OK || st == OC_ERR_CANCELLED) && done) {
        const char *const **refs = oc_malloc(done * sizeof *refs);
        size_t *n_refs = oc_malloc(done * sizeof *n_refs);
        oc_caption_metrics cm;
        oc_status ms = refs && n_refs ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; ms == OC_OK && i < done; i++) {
            refs[i] = (const char *const *)x.exam.items[i].answers;
            n_refs[i] = x.exam.items[i].n_answers;
        }
        if (ms == OC_OK)
            ms = oc_caption_metrics_compute((const char *const *)preds, refs, n_refs, done, 1,
                                            &cm, NULL);
        if (ms == OC_OK) {
            memcpy(x.r.bleu, cm.bleu, sizeof cm.bleu);
            x.r.cider_d = cm.cider_d;
        }
        oc_free(refs);
        oc_free(n_refs);
        if (ms != OC_OK)
            st = ms;
    }
    for (size_t i = 0; preds && i < x.exam.n; i++)
        oc_free(preds[i]);
    oc_free(preds);
    return run_end(&x, st, out);
}

/* ---- multiple choice about images ----------------------------------------------- */

/* lmms-eval's text: "Context: HINT\n" (when given) + question + "\nA. ..." + suffix. */
static char *mcq_text(const oc_exam_item *it, const char *suffix) {
    oc_strbuf b = {0};
    if (it->hint && *it->hint) {
        oc_sb_puts(&b, "Context: ");
        oc_sb_puts(&b, it->hint);
        oc_sb_puts(&b, "\n");
    }
    oc_sb_puts(&b, it->question);
    oc_sb_puts(&b, "\n");
    for (size_t j = 0; j < it->n_choices; j++)
        oc_sb_printf(&b, "%s%c. %s", j ? "\n" : "", 'A' + (int)j, it->choices[j]);
    oc_sb_puts(&b, suffix);
    if (b.failed)
        oc_sb_free(&b);
    return b.data;
}

/* lmms-eval's ScienceQA rule: the generated text, stripped and lower-cased, is the
 * letter. */
static int generated_letter_matches(const char *text, char letter) {
    char *s = oc_py_strip(text), *low = s ? oc_py_lower(s) : NULL;
    int ok = low && low[0] == letter + ('a' - 'A') && low[1] == 0;
    oc_free(s);
    oc_free(low);
    return ok;
}

/* The images' features, encoded once per set of images. */
typedef struct {
    oc_session *s;
    uint64_t key;
} feats_cache;

static oc_status feats_for(run *x, feats_cache *fc) {
    if (fc->s && fc->key == x->images.key)
        return OC_OK;
    oc_session_free(fc->s);
    fc->s = NULL;
    OC_TRY(oc_session_new(x->m, &fc->s));
    oc_timings tm = {0};
    OC_TRY(oc_session_add_images(fc->s, (const oc_image *const *)x->images.images,
                                 x->images.n, &tm, NULL));
    fc->key = x->images.key;
    return OC_OK;
}

/* The letter whose reply the model finds most likely (without the end-of-turn token). */
static oc_status best_letter(run *x, oc_scorer *sc, feats_cache *fc, const oc_exam_item *it,
                             const char *text, int *best) {
    OC_TRY(feats_for(x, fc));
    oc_scorer_set_images(sc, fc->s->feats, fc->s->n_feat_rows, fc->key);
    double best_lp = 0;
    for (size_t l = 0; l < it->n_choices; l++) {
        char letter[2] = {(char)('A' + l), 0};
        int32_t *ids;
        size_t n, first, end;
        OC_TRY(oc_chat_answer_ids(x->m, fc->s->layouts, fc->s->n_images, text, letter, &ids,
                                  &n, &first, &end));
        double lp = 0;
        oc_status s = end - 1 > first ? oc_scorer_logprobs(sc, ids, end - 1, first, NULL, &lp)
                                      : oc_err(OC_ERR_INTERNAL, "a letter gave no token");
        oc_free(ids);
        OC_TRY(s);
        if (l == 0 || lp > best_lp)
            best_lp = lp, *best = (int)l;
    }
    return OC_OK;
}

oc_status oc_eval_image_mcq(const oc_model *m, const char *data,
                            const oc_eval_params *params, oc_eval_result *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_image_mcq: NULL argument");
    run x;
    oc_status st = run_start(&x, m, data, OC_EXAM_IMAGE_MCQ, OC_EVAL_IMAGE_MCQ, params);
    const char *suffix = x.p.suffix ? x.p.suffix : LMMS_MCQ_SUFFIX;
    oc_scorer sc;
    int have_scorer = 0;
    if (st == OC_OK && !x.p.generate)
        have_scorer = (st = oc_scorer_init(&sc, m)) == OC_OK;
    feats_cache fc = {0};
    for (size_t i = x.lo; st == OC_OK && i < x.hi; i++) {
        const oc_exam_item *it = &x.exam.items[i];
        char *text = mcq_text(it, suffix), *pred = NULL, got[2] = {0};
        if (!text) {
            st = oc_err(OC_ERR_NOMEM, "out of memory");
            break;
        }
        int ok = 0;
        if (x.p.generate) {
            st = ask(&x, it, text, &pred);
            ok = st == OC_OK && generated_letter_matches(pred, it->answer[0]);
        } else {
            int best = 0;
            st = oc_item_images_get(&x.images, it, &x.p.image_limits);
            if (st == OC_OK)
                st = best_letter(&x, &sc, &fc, it, text, &best);
            got[0] = (char)('A' + best);
            ok = got[0] == it->answer[0];
        }
        if (st == OC_OK)
            st = oc_res_add(&x.r, it->group, ok, ok, -1, -1);
        if (st == OC_OK)
            st = report(&x, i, it, text, pred ? pred : got, it->answer, ok, ok);
        oc_free(text);
        oc_free(pred);
    }
    oc_session_free(fc.s);
    if (have_scorer)
        oc_scorer_free(&sc);
    return run_end(&x, st, out);
}
