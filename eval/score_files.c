/* Scoring another system's outputs with no model: predictions and references matched by
 * id, then the same metrics the exams use. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "eval_internal.h"
#include "hashmap.h"
#include "pytext.h"

/* Index of every prediction by id; duplicates are an error. */
static oc_status index_ids(const oc_exam *e, oc_strmap *map) {
    OC_TRY(oc_strmap_init(map, e->n));
    for (size_t i = 0; i < e->n; i++) {
        const char *id = e->items[i].id;
        int32_t old;
        OC_TRY(oc_strmap_put(map, id, strlen(id), (int32_t)i, &old));
        if (old >= 0)
            return oc_err(OC_ERR_FORMAT, "%s:%zu: id '%s' already on line %zu", e->path,
                          e->items[i].line, id, e->items[old].line);
    }
    return OC_OK;
}

/* lmms-eval's multiple-choice rule (ScienceQA): stripped, lower-cased, the letter. */
static int letter_matches(const char *pred, const char *letter) {
    char *s = oc_py_strip(pred), *ls = s ? oc_py_lower(s) : NULL, *lw = oc_py_lower(letter);
    int ok = ls && lw && strcmp(ls, lw) == 0;
    oc_free(s);
    oc_free(ls);
    oc_free(lw);
    return ok;
}

static oc_status score_item(oc_metric metric, const oc_exam *refs, const oc_exam_item *ref,
                            const char *pred, oc_eval_result *r, double *score, int *ok) {
    const char *want = ref->answers[0];
    *score = 0;
    *ok = 0;
    switch (metric) {
    case OC_METRIC_VQA:
        OC_TRY(oc_vqa_accuracy(pred, (const char *const *)ref->answers, ref->n_answers, score));
        *ok = *score >= 1;
        return oc_res_add(r, ref->group, *score, *ok, -1, -1);
    case OC_METRIC_POPE: {
        if (ref->n_answers != 1 || (strcmp(want, "yes") && strcmp(want, "no")))
            return oc_err(OC_ERR_FORMAT, "%s:%zu: a POPE reference is \"yes\" or \"no\"",
                          refs->path, ref->line);
        int yes = oc_pope_says_yes(pred), label = strcmp(want, "yes") == 0;
        *ok = yes == label;
        *score = *ok;
        return oc_res_add(r, ref->group, *score, *ok, yes, label);
    }
    case OC_METRIC_MCQ:
        if (ref->n_answers != 1)
            return oc_err(OC_ERR_FORMAT, "%s:%zu: an MCQ reference is one \"answer\" letter",
                          refs->path, ref->line);
        *ok = letter_matches(pred, want);
        *score = *ok;
        return oc_res_add(r, ref->group, *score, *ok, -1, -1);
    case OC_METRIC_BLEU:
    case OC_METRIC_CIDER:
        for (size_t j = 0; j < ref->n_answers && !*ok; j++)
            *ok = oc_answer_matches(pred, ref->answers[j]);
        *score = *ok;
        return oc_res_add(r, ref->group, *score, *ok, -1, -1);
    }
    return oc_err(OC_ERR_INVALID_ARG, "eval score: unknown metric %d", (int)metric);
}

static oc_eval_task task_of(oc_metric m) {
    switch (m) {
    case OC_METRIC_VQA: return OC_EVAL_VQA;
    case OC_METRIC_POPE: return OC_EVAL_POPE;
    case OC_METRIC_MCQ: return OC_EVAL_IMAGE_MCQ;
    default: return OC_EVAL_CAPTIONS;
    }
}

/* BLEU and CIDEr-D over the scored items. */
static oc_status caption_scores(const oc_exam *refs, const char *const *preds, size_t n,
                                oc_eval_result *r) {
    const char *const **rv = oc_malloc(n * sizeof *rv);
    size_t *nr = oc_malloc(n * sizeof *nr);
    oc_status s = rv && nr ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        rv[i] = (const char *const *)refs->items[i].answers;
        nr[i] = refs->items[i].n_answers;
    }
    oc_caption_metrics cm;
    if (s == OC_OK)
        s = oc_caption_metrics_compute(preds, rv, nr, n, 1, &cm, NULL);
    if (s == OC_OK) {
        memcpy(r->bleu, cm.bleu, sizeof cm.bleu);
        r->cider_d = cm.cider_d;
    }
    oc_free(rv);
    oc_free(nr);
    return s;
}

oc_status oc_eval_score(oc_metric metric, const char *predictions, const char *references,
                        const oc_eval_params *params, oc_eval_result *out) {
    if (!predictions || !references || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_score: NULL argument");
    if ((int)metric < OC_METRIC_VQA || metric > OC_METRIC_MCQ)
        return oc_err(OC_ERR_INVALID_ARG, "eval score: unknown metric %d", (int)metric);
    oc_eval_params p = params ? *params : oc_eval_default_params();
    oc_exam pe = {0}, re = {0};
    oc_strmap by_id = {0};
    oc_eval_result r;
    oc_res_start(&r, task_of(metric));
    const char **preds = NULL;
    unsigned char *used = NULL;
    oc_status s = oc_exam_load(predictions, OC_EXAM_PREDICTIONS, 0, &pe);
    if (s == OC_OK)
        s = oc_exam_load(references, OC_EXAM_REFERENCES, p.limit, &re);
    if (s == OC_OK)
        s = index_ids(&pe, &by_id);
    if (s == OC_OK) {
        preds = oc_calloc(re.n, sizeof *preds);
        used = oc_calloc(pe.n, 1);
        if (!preds || !used)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; s == OC_OK && i < re.n; i++) {
        const oc_exam_item *ref = &re.items[i];
        int32_t k = oc_strmap_get(&by_id, ref->id, strlen(ref->id));
        if (k < 0) {
            s = oc_err(OC_ERR_FORMAT, "%s:%zu: no prediction for id '%s' in %s", re.path,
                       ref->line, ref->id, pe.path);
            break;
        }
        used[k] = 1;
        preds[i] = pe.items[k].answer;
        double score;
        int ok;
        s = score_item(metric, &re, ref, preds[i], &r, &score, &ok);
        if (s == OC_OK) {
            oc_eval_item item = {i, re.n, ref->id, ref->group, NULL, preds[i],
                                 ref->answers[0], score, ok, NULL};
            s = oc_res_report(&r, &p, &item);
        }
    }
    /* every prediction must have been asked for (unless a limit cut the references) */
    for (size_t k = 0; s == OC_OK && !p.limit && k < pe.n; k++)
        if (!used[k])
            s = oc_err(OC_ERR_FORMAT, "%s:%zu: id '%s' is not in %s", pe.path,
                       pe.items[k].line, pe.items[k].id, re.path);
    if (s == OC_OK && (metric == OC_METRIC_BLEU || metric == OC_METRIC_CIDER))
        s = caption_scores(&re, preds, re.n, &r);
    oc_free(preds);
    oc_free(used);
    oc_strmap_free(&by_id);
    oc_exam_free(&pe);
    oc_exam_free(&re);
    oc_res_stop(&r);
    oc_res_finish(&r);
    if (s != OC_OK && s != OC_ERR_CANCELLED) {
        oc_eval_result_free(&r);
        return s;
    }
    *out = r;
    return s;
}
