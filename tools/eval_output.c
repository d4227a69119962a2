/* ocellus eval's output (see eval_output.h). Ratios are fractions in JSON, as the Python
 * tools print most of them, and percentages on the terminal. */
#include "eval_output.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

static double pct(double a, double b) { return b > 0 ? 100.0 * a / b : 0; }

static const char *unit(oc_eval_task t) {
    switch (t) {
    case OC_EVAL_MCQ:
    case OC_EVAL_IMAGE_MCQ: return "questions";
    case OC_EVAL_CAPTIONS: return "images";
    case OC_EVAL_PERPLEXITY: return "texts";
    default: return "questions";
    }
}

static void heading(const eval_run *run, const oc_eval_result *r) {
    printf("%s", run->sub);
    if (run->metric)
        printf(" (%s)", run->metric);
    if (r->task == OC_EVAL_MCQ)
        printf(" (%s format, %u shots)", run->format, run->shots);
    if (r->task == OC_EVAL_IMAGE_MCQ)
        printf(" (%s)", run->generate ? "generated letters" : "letter log-probabilities");
    printf(": %s, %zu %s in %.1f s\n", run->data, r->all.n, unit(r->task), r->seconds);
}

static void groups_table(const oc_eval_result *r, const char *what, int vqa) {
    if (!r->n_groups)
        return;
    size_t w = strlen(what);
    for (size_t i = 0; i < r->n_groups; i++)
        w = strlen(r->groups[i].name) > w ? strlen(r->groups[i].name) : w;
    printf("  %-*s %8s %8s %9s\n", (int)w, what, "n", vqa ? "exact" : "correct",
           vqa ? "VQA acc" : "accuracy");
    for (size_t i = 0; i < r->n_groups; i++) {
        const oc_eval_group *g = &r->groups[i];
        printf("  %-*s %8zu %8zu %8.2f%%\n", (int)w, g->name, g->n, g->correct,
               pct(g->score, (double)g->n));
    }
}

static void pope_row(const char *name, int w, const oc_eval_group *g) {
    double p = g->tp + g->fp ? (double)g->tp / (double)(g->tp + g->fp) : 0;
    double rc = g->tp + g->fn ? (double)g->tp / (double)(g->tp + g->fn) : 0;
    double f1 = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
    printf("  %-*s %6zu %8.2f%% %9.2f%% %8.2f%% %7.2f%% %8.2f%%\n", w, name, g->n,
           pct((double)g->correct, (double)g->n), 100 * p, 100 * rc, 100 * f1,
           pct((double)(g->tp + g->fp), (double)g->n));
}

void eval_print_table(const eval_run *run, const oc_eval_result *r) {
    heading(run, r);
    switch (r->task) {
    case OC_EVAL_MCQ:
        groups_table(r, "subject", 0);
        printf("  micro average %.2f%% (%zu of %zu), macro average %.2f%% over %zu subjects\n",
               100 * r->accuracy, r->all.correct, r->all.n, 100 * r->macro_accuracy,
               r->n_groups);
        if (r->fewer_shots)
            printf("  %zu questions were asked with fewer shots to fit the context\n",
                   r->fewer_shots);
        if (r->truncated)
            printf("  %zu contexts were cut from the left to fit\n", r->truncated);
        break;
    case OC_EVAL_IMAGE_MCQ:
        groups_table(r, "type", 0);
        printf("  accuracy %.2f%% (%zu of %zu)\n", 100 * r->accuracy, r->all.correct, r->all.n);
        break;
    case OC_EVAL_VQA:
        groups_table(r, "type", 1);
        printf("  VQA accuracy %.2f%% (%zu of %zu fully right)\n", 100 * r->accuracy,
               r->all.correct, r->all.n);
        break;
    case OC_EVAL_CAPTIONS:
        groups_table(r, "type", 0);
        printf("  BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  CIDEr-D %.4f\n",
               r->bleu[0], r->bleu[1], r->bleu[2], r->bleu[3], r->cider_d);
        printf("  exact match %.2f%% (%zu of %zu)\n", 100 * r->accuracy, r->all.correct,
               r->all.n);
        break;
    case OC_EVAL_POPE: {
        int w = 11;
        for (size_t i = 0; i < r->n_groups; i++)
            w = (int)strlen(r->groups[i].name) > w ? (int)strlen(r->groups[i].name) : w;
        printf("  %-*s %6s %9s %10s %9s %8s %9s\n", w, "category", "n", "accuracy",
               "precision", "recall", "F1", "yes");
        for (size_t i = 0; i < r->n_groups; i++)
            pope_row(r->groups[i].name, w, &r->groups[i]);
        pope_row("all", w, &r->all);
        break;
    }
    case OC_EVAL_PERPLEXITY:
        printf("  tokens %llu, mean NLL %.4f nats/token, perplexity %.4f, %.4f bits/byte "
               "(%llu bytes)\n",
               (unsigned long long)r->tokens, r->mean_nll, r->perplexity, r->bits_per_byte,
               (unsigned long long)r->bytes);
        break;
    }
}

/* key: text, the text made valid UTF-8 (NULL: JSON null) */
static void add_text(cJSON *o, const char *key, const char *text) {
    cli_json_add(o, key, text ? cli_json_str(text) : cJSON_CreateNull());
}

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static cJSON *group_json(const oc_eval_group *g, oc_eval_task task) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_text(o, "name", g->name);
    add_num(o, "n", (double)g->n);
    add_num(o, "correct", (double)g->correct);
    add_num(o, task == OC_EVAL_VQA ? "vqa_accuracy" : "accuracy",
            g->n ? g->score / (double)g->n : 0);
    if (task == OC_EVAL_POPE) {
        add_num(o, "tp", (double)g->tp);
        add_num(o, "fp", (double)g->fp);
        add_num(o, "tn", (double)g->tn);
        add_num(o, "fn", (double)g->fn);
    }
    return o;
}

static const char *task_name(oc_eval_task t) {
    static const char *const names[] = {"mcq", "image_mcq", "vqa", "captions", "pope",
                                        "perplexity"};
    return (int)t >= 0 && t <= OC_EVAL_PERPLEXITY ? names[t] : "unknown";
}

int eval_print_json(const eval_run *run, const oc_eval_result *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return cli_json_print(NULL, 0) == 0;
    add_text(o, "task", task_name(r->task));
    add_text(o, "data", run->data);
    if (run->predictions)
        add_text(o, "predictions", run->predictions);
    if (run->metric)
        add_text(o, "metric", run->metric);
    add_num(o, "n", (double)r->all.n);
    add_num(o, "correct", (double)r->all.correct);
    switch (r->task) {
    case OC_EVAL_MCQ:
        add_text(o, "format", run->format);
        add_num(o, "shots", run->shots);
        add_num(o, "accuracy", r->accuracy);
        add_num(o, "macro_accuracy", r->macro_accuracy);
        add_num(o, "fewer_shots", (double)r->fewer_shots);
        add_num(o, "truncated", (double)r->truncated);
        break;
    case OC_EVAL_IMAGE_MCQ:
        cJSON_AddBoolToObject(o, "generate", run->generate);
        add_num(o, "accuracy", r->accuracy);
        break;
    case OC_EVAL_VQA:
        add_num(o, "vqa_accuracy", r->accuracy);
        break;
    case OC_EVAL_CAPTIONS:
        add_num(o, "bleu1", r->bleu[0]);
        add_num(o, "bleu2", r->bleu[1]);
        add_num(o, "bleu3", r->bleu[2]);
        add_num(o, "bleu4", r->bleu[3]);
        add_num(o, "cider_d", r->cider_d);
        add_num(o, "exact_match", r->accuracy);
        break;
    case OC_EVAL_POPE:
        add_num(o, "accuracy", r->accuracy);
        add_num(o, "precision", r->precision);
        add_num(o, "recall", r->recall);
        add_num(o, "f1", r->f1);
        add_num(o, "yes_ratio", r->yes_ratio);
        break;
    case OC_EVAL_PERPLEXITY:
        add_num(o, "tokens", (double)r->tokens);
        add_num(o, "bytes", (double)r->bytes);
        add_num(o, "mean_nll", r->mean_nll);
        add_num(o, "perplexity", r->perplexity);
        add_num(o, "bits_per_byte", r->bits_per_byte);
        break;
    }
    add_num(o, "seconds", r->seconds);
    if (r->n_groups) {
        cJSON *g = cJSON_AddArrayToObject(o, "groups");
        for (size_t i = 0; g && i < r->n_groups; i++) {
            cJSON *gj = group_json(&r->groups[i], r->task);
            if (gj)
                cJSON_AddItemToArray(g, gj);
        }
    }
    return cli_json_print(o, 1) == 0;
}
