/* Result bookkeeping shared by the exams: counts per group, ratios, the item callback. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "dist.h"
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

/* The group named name (n bytes), added at the end when new. */
static oc_status group_of(oc_eval_result *r, const char *name, size_t n, oc_eval_group **g) {
    size_t i = 0;
    while (i < r->n_groups &&
           !(strlen(r->groups[i].name) == n && memcmp(r->groups[i].name, name, n) == 0))
        i++;
    if (i == r->n_groups) {
        oc_eval_group *ng = oc_realloc(r->groups, (r->n_groups + 1) * sizeof *ng);
        if (!ng)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        r->groups = ng;
        memset(&ng[i], 0, sizeof ng[i]);
        if (!(ng[i].name = oc_strndup(name, n)))
            return oc_err(OC_ERR_NOMEM, "out of memory");
        r->n_groups++;
    }
    *g = &r->groups[i];
    return OC_OK;
}

oc_status oc_res_add(oc_eval_result *r, const char *group, double score, int correct,
                     int pope_pred, int pope_label) {
    count(&r->all, score, correct, pope_pred, pope_label);
    if (group) {
        oc_eval_group *g;
        OC_TRY(group_of(r, group, strlen(group), &g));
        count(g, score, correct, pope_pred, pope_label);
    }
    oc_res_finish(r);
    return OC_OK;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

/* ---- a job of several ranks: each scores its block of the items ---------------------- */

int oc_res_ranks(const oc_eval_params *p) { return p && p->dist ? oc_dist_size_() : 1; }

void oc_res_span(const oc_eval_params *p, size_t n, size_t *lo, size_t *hi) {
    *lo = 0;
    *hi = n;
    if (oc_res_ranks(p) > 1)
        oc_dist_span(n, lo, hi);
}

oc_status oc_res_agree(const oc_eval_params *p, oc_status st) {
    return oc_res_ranks(p) > 1 ? oc_dist_agree(st) : st;
}

/* A group's counts as 8 words (n, correct, tp, fp, tn, fn, score bits, name length) and
 * its name; the whole (NULL name) first. */
#define GROUP_WORDS 8
#define HEAD_WORDS 6 /* cancelled, tokens, bytes, fewer_shots, truncated, nll bits */

static size_t put_group(uint8_t *at, const oc_eval_group *g) {
    uint64_t w[GROUP_WORDS] = {g->n, g->correct, g->tp, g->fp, g->tn, g->fn, 0,
                               g->name ? strlen(g->name) : 0};
    memcpy(&w[6], &g->score, 8);
    if (at) {
        memcpy(at, w, sizeof w);
        if (g->name)
            memcpy(at + sizeof w, g->name, (size_t)w[7]);
    }
    return sizeof w + (size_t)w[7];
}

static size_t put_result(uint8_t *at, const oc_eval_result *r, int cancelled) {
    uint64_t h[HEAD_WORDS] = {(uint64_t)cancelled, r->tokens, r->bytes, r->fewer_shots,
                              r->truncated, 0};
    memcpy(&h[5], &r->nll, 8);
    if (at)
        memcpy(at, h, sizeof h);
    size_t k = sizeof h;
    k += put_group(at ? at + k : NULL, &r->all);
    for (size_t i = 0; i < r->n_groups; i++)
        k += put_group(at ? at + k : NULL, &r->groups[i]);
    return k;
}

static void add_counts(oc_eval_group *g, const uint64_t *w) {
    double score;
    memcpy(&score, &w[6], 8);
    g->n += (size_t)w[0];
    g->correct += (size_t)w[1];
    g->tp += (size_t)w[2];
    g->fp += (size_t)w[3];
    g->tn += (size_t)w[4];
    g->fn += (size_t)w[5];
    g->score += score;
}

/* Adds one rank's counts (n bytes at p) to m; *cancelled |= its flag. */
static oc_status add_rank(oc_eval_result *m, const uint8_t *p, size_t n, int *cancelled) {
    uint64_t h[HEAD_WORDS], w[GROUP_WORDS];
    if (n < sizeof h)
        return oc_err(OC_ERR_INTERNAL, "eval: a rank's counts are cut short");
    memcpy(h, p, sizeof h);
    double nll;
    memcpy(&nll, &h[5], 8);
    *cancelled |= h[0] != 0;
    m->tokens += h[1];
    m->bytes += h[2];
    m->fewer_shots += (size_t)h[3];
    m->truncated += (size_t)h[4];
    m->nll += nll;
    for (size_t k = sizeof h, first = 1; k < n; first = 0) {
        if (n - k < sizeof w)
            return oc_err(OC_ERR_INTERNAL, "eval: a rank's counts are cut short");
        memcpy(w, p + k, sizeof w);
        k += sizeof w;
        if (w[7] > n - k)
            return oc_err(OC_ERR_INTERNAL, "eval: a rank's counts are cut short");
        oc_eval_group *g = &m->all;
        if (!first)
            OC_TRY(group_of(m, (const char *)p + k, (size_t)w[7], &g));
        add_counts(g, w);
        k += (size_t)w[7];
    }
    return OC_OK;
}

oc_status oc_res_merge(oc_eval_result *r, const oc_eval_params *p, oc_status st) {
    if (oc_res_ranks(p) <= 1)
        return st;
    int cancelled = st == OC_ERR_CANCELLED;
    OC_TRY(oc_dist_agree(cancelled ? OC_OK : st));
    size_t n = put_result(NULL, r, cancelled);
    uint8_t *mine = oc_malloc(n);
    size_t *sizes = oc_malloc((size_t)oc_dist_size_() * sizeof *sizes);
    void *all = NULL;
    oc_status s = mine && sizes ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK) {
        put_result(mine, r, cancelled);
        s = oc_dist_allgather(mine, n, &all, sizes);
    }
    /* the counts of every rank, added in rank order: groups in the order one process
     * meets them (the ranks' blocks are in item order) */
    oc_eval_result m;
    memset(&m, 0, sizeof m);
    m.task = r->task;
    m.seconds = r->seconds;
    int any = 0;
    const uint8_t *at = all;
    for (int k = 0; s == OC_OK && k < oc_dist_size_(); k++) {
        s = add_rank(&m, at, sizes[k], &any);
        at += sizes[k];
    }
    oc_free(mine);
    oc_free(sizes);
    oc_free(all);
    if (s != OC_OK) {
        oc_eval_result_free(&m);
        return s;
    }
    m.mean_nll = m.tokens ? m.nll / (double)m.tokens : 0;
    m.perplexity = exp(m.mean_nll);
    m.bits_per_byte = m.bytes ? m.nll / (double)m.bytes / log(2.0) : 0;
    oc_res_finish(&m);
    oc_eval_result_free(r);
    *r = m;
    if (any)
        return oc_err(OC_ERR_CANCELLED, "evaluation stopped; the counts are of the items "
                      "scored so far");
    return OC_OK;
}

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
