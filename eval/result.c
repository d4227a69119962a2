/* Result bookkeeping shared by the exams: counts per group, ratios, the item callback. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "eval_internal.h"

double oc_eval_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

oc_eval_params oc_eval_default_params(void) {
    oc_eval_params p;
    memset(&p, 0, sizeof p);
    p.gen = oc_gen_default_params();
    p.gen.max_tokens = 64;
    p.shots = 5;
    p.format = OC_MCQ_ORIGINAL;
    p.split = "test";
    p.image_limits = oc_image_default_limits();
    return p;
}

void oc_eval_result_free(oc_eval_result *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n_groups; i++)
        oc_free(r->groups[i].name);
    oc_free(r->groups);
    memset(r, 0, sizeof *r);
}

void oc_res_start(oc_eval_result *r, oc_eval_task task) {
    memset(r, 0, sizeof *r);
    r->task = task;
    r->seconds = oc_eval_now();
}

void oc_res_stop(oc_eval_result *r) { r->seconds = oc_eval_now() - r->seconds; }

static void count(oc_eval_group *g, double score, int correct, int pred, int label) {
    g->n++;
    g->correct += correct != 0;
    g->score += score;
    if (pred >= 0 && label >= 0) {
        g->tp += pred && label;
        g->fp += pred && !label;
        g->tn += !pred && !label;
        g->fn += !pred && label;
    }
}

oc_status oc_res_add(oc_eval_result *r, const char *group, double score, int correct,
                     int pope_pred, int pope_label) {
    count(&r->all, score, correct, pope_pred, pope_label);
    if (group) {
        size_t i = 0;
        while (i < r->n_groups && strcmp(r->groups[i].name, group) != 0)
            i++;
        if (i == r->n_groups) {
            oc_eval_group *ng = oc_realloc(r->groups, (r->n_groups + 1) * sizeof *ng);
            if (!ng)
                return oc_err(OC_ERR_NOMEM, "out of memory");
            r->groups = ng;
            memset(&ng[i], 0, sizeof ng[i]);
            if (!(ng[i].name = oc_strdup(group)))
                return oc_err(OC_ERR_NOMEM, "out of memory");
            r->n_groups++;
        }
        count(&r->groups[i], score, correct, pope_pred, pope_label);
    }
    oc_res_finish(r);
    return OC_OK;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

void oc_res_finish(oc_eval_result *r) {
    r->accuracy = ratio(r->all.score, (double)r->all.n);
    double macro = 0;
    for (size_t i = 0; i < r->n_groups; i++)
        macro += ratio(r->groups[i].score, (double)r->groups[i].n);
    r->macro_accuracy = r->n_groups ? macro / (double)r->n_groups : r->accuracy;
    if (r->task == OC_EVAL_POPE) {
        const oc_eval_group *g = &r->all;
        /* the POPE script's formulas; 0 where its divisions would fail */
        r->precision = ratio((double)g->tp, (double)(g->tp + g->fp));
        r->recall = ratio((double)g->tp, (double)(g->tp + g->fn));
        r->f1 = ratio(2 * r->precision * r->recall, r->precision + r->recall);
        r->yes_ratio = ratio((double)(g->tp + g->fp), (double)g->n);
    }
}

oc_status oc_res_report(oc_eval_result *r, const oc_eval_params *p, oc_eval_item *item) {
    if (!p->on_item)
        return OC_OK;
    item->so_far = r;
    if (p->on_item(item, p->user_data))
        return oc_err(OC_ERR_CANCELLED, "evaluation stopped after %zu items", item->index + 1);
    return OC_OK;
}

const char *oc_item_name(const oc_exam *e, const oc_exam_item *it, char *buf, size_t cap) {
    if (it->id)
        return it->id;
    snprintf(buf, cap, "%s:%zu", e->path, it->line);
    return buf;
}

void oc_item_images_free(oc_item_images *c) {
    for (size_t i = 0; i < c->n; i++) {
        oc_image_free(c->images[i]);
        oc_free(c->paths[i]);
    }
    oc_free(c->images);
    oc_free(c->paths);
    c->images = NULL;
    c->paths = NULL;
    c->n = 0;
}

oc_status oc_item_images_get(oc_item_images *c, const oc_exam_item *it,
                             const oc_image_limits *limits) {
    int same = c->n == it->n_images && c->n > 0;
    for (size_t i = 0; same && i < c->n; i++)
        same = strcmp(c->paths[i], it->images[i]) == 0;
    if (same)
        return OC_OK;
    uint64_t key = c->key;
    oc_item_images_free(c);
    c->key = key + 1;
    c->images = oc_calloc(it->n_images, sizeof *c->images);
    c->paths = oc_calloc(it->n_images, sizeof *c->paths);
    oc_status s = c->images && c->paths ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == OC_OK && i < it->n_images; i++) {
        c->n = i + 1;
        if (!(c->paths[i] = oc_strdup(it->images[i])))
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        else
            s = oc_image_load(it->images[i], limits, &c->images[i]);
    }
    if (s != OC_OK) /* nothing half-loaded is reused */
        oc_item_images_free(c);
    return s;
}
