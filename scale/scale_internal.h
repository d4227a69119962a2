/* The scaling-ladder runner's insides (scale/): the recipe, the plan derived from it, the
 * runs' results, and the files of an output folder. Not part of the public API. */
#ifndef OC_SCALE_INTERNAL_H
#define OC_SCALE_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "ocellus.h"

#define SC_MAX_RUNS 32
#define SC_MAX_VARIANTS 4

/* A recipe file, resolved: paths absolute (or relative to the working folder), defaults
 * filled in. */
typedef struct {
    char *path;                 /* the recipe file */
    char *base;                 /* model folder: tokenizer, processor, config to start from */
    /* data */
    int shapes;                 /* 1: the shapes world; 0: JSONL files */
    uint64_t data_seed;
    uint64_t train_scenes, val_scenes, test_scenes;
    uint32_t image_size, questions_per_image;
    char *train_jsonl, *val_jsonl, *questions_jsonl; /* JSONL kind; questions optional */
    /* shapes of a run of width W */
    uint32_t text_layers, text_heads, vision_layers, vision_heads, width_multiple;
    double text_mlp_ratio, vision_mlp_ratio, vision_width_ratio;
    /* target */
    uint32_t target_width;
    uint64_t target_tokens;
    /* ladder */
    uint32_t runs;
    double max_fraction, compute_ratio, tokens_exponent;
    double variants[SC_MAX_VARIANTS];
    size_t n_variants;
    /* training, the same way for every run */
    uint32_t batch, min_steps;
    double lr, lr_ref_width, lr_width_exponent, vision_lr_scale, warmup_fraction;
    oc_lr_schedule schedule;
    double beta1, beta2, eps, weight_decay, clip, init_std, init_width_exponent;
    uint64_t seed;
    uint32_t checkpoints;       /* per run */
    uint32_t capability_questions; /* 0: all of the test questions */
    oc_powerlaw_params fit;
    int threads;
    cJSON *json;                /* the recipe as read, for the report */
} sc_recipe;

oc_status sc_recipe_load(const char *path, sc_recipe *r);
void sc_recipe_free(sc_recipe *r);

/* One run of the plan. */
typedef struct {
    char name[32];              /* "ladder-00" (the smallest) ... , "target" */
    int is_target;
    uint32_t width, vision_width, intermediate, vision_intermediate;
    size_t params;
    uint64_t tokens;            /* by the rule */
    uint64_t steps, warmup;
    double lr, init_std;
    double flops_per_example;   /* from the shapes, mean over the sample of examples */
    double planned_compute;     /* flops_per_example * steps * batch */
} sc_run;

typedef struct {
    sc_run runs[SC_MAX_RUNS + 1];  /* the ladder, smallest first, then the target */
    size_t n_ladder;
    double mean_tokens;            /* per training example, over the sample */
    double mean_labelled;
    size_t train_examples;
} sc_plan;

/* What a finished run measured (runs/NAME/result.json). */
typedef struct {
    int done;
    double final_loss;          /* validation: mean over every labelled position */
    double capability;          /* -mean over questions of log p(exact answer) */
    double mean_pass_rate;      /* mean over questions of p(exact answer) */
    double compute;             /* FLOPs the trainer counted */
    double seconds;
    uint64_t tokens, steps;
    double val_labelled;
    size_t questions;
} sc_result;

/* The output folder's layout. */
char *sc_path(const char *out, const char *a, const char *b); /* out/a[/b], malloc'd */

/* Plan: widths, tokens and hyperparameters of every run (scale/scale_plan.c). */
oc_status sc_plan_make(const sc_recipe *r, const char *out, const char *train,
                       sc_plan *plan);
cJSON *sc_plan_json(const sc_recipe *r, const sc_plan *plan);
/* Writes out/configs/NAME (config.json and the base's tokenizer and processor files). */
oc_status sc_write_config(const sc_recipe *r, const sc_run *run, const char *dir);

/* Data: writes the shapes world's datasets (or checks the JSONL files) and the capability
 * questions (scale/scale_data.c). */
typedef struct {
    char *train, *val, *questions; /* conversations JSONL files to open */
} sc_data;
oc_status sc_data_prepare(const sc_recipe *r, const char *out, sc_data *d);
void sc_data_free(sc_data *d);

/* Trains one run (or continues it, or skips it when finished) (scale/scale_train.c). */
typedef struct {
    const sc_recipe *recipe;
    const sc_plan *plan;
    const char *out;
    oc_dataset *train, *val, *questions;
    const oc_scale_params *params;
    double t_start;              /* of this invocation */
    double compute_done;         /* counted FLOPs of every run so far (finished and current) */
    double compute_total;        /* planned FLOPs of every run */
    double rate;                 /* FLOPs per second of the latest run */
    /* the job's ranks (oc_dist_init): ladder rungs are shared out, each trained by one
     * rank alone; the target is trained by all of them, data-parallel */
    int rank, ranks;
    int alone;                   /* 1: the run in progress is this rank's alone */
} sc_ctx;

/* The run in progress is trained by several ranks together (collective calls). */
static inline int sc_collective(const sc_ctx *c) { return c->ranks > 1 && !c->alone; }
/* In a collective run: every rank's status agreed (rank 0's file writes, say). */
oc_status sc_agree(const sc_ctx *c, oc_status s);

oc_status sc_run_train(sc_ctx *c, size_t i, sc_result *res);
oc_status sc_result_load(const char *out, const sc_run *run, sc_result *res);

/* Report (scale/scale_report.c). */
oc_status sc_predict(sc_ctx *c, const sc_result *res, cJSON **prediction);
oc_status sc_report_write(sc_ctx *c, const sc_result *res, const cJSON *prediction);

double sc_now(void);
void sc_iso_time(char *buf, size_t n);
int sc_emit(sc_ctx *c, oc_scale_event *ev);
/* The event's fields that describe run i (u); rank: this one's when it trains alone. */
void sc_fill_run(const sc_ctx *c, oc_scale_event *ev, const sc_run *u, size_t i);
oc_status sc_json_write(const char *path, const cJSON *j);
#endif
