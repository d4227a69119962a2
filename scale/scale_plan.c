/* The plan of a scaling study: the shapes, tokens and hyperparameters of every run,
 * derived from the recipe by its stated rules.
 *
 *  - A run of width W: text hidden W with text_heads heads (head_dim W / heads), MLP
 *    round(W * text_mlp_ratio); vision hidden round(W * vision_width_ratio) to a
 *    multiple of vision_heads, MLP round(that * vision_mlp_ratio); layers as the recipe
 *    says; everything else from the base config.
 *  - Tokens: D(W) = target.tokens * (N(W) / N(target))^tokens_exponent, N the trainer's
 *    parameter count; steps = round(D / (batch * mean tokens per example)).
 *  - Compute: the FLOPs of a training step from the model's shapes
 *    (oc_trainer_step_flops), averaged over a sample of the training examples, times the
 *    steps and batch.
 *  - The ladder: run k (k = 0 the largest) aims at C_k = max_compute_fraction *
 *    C(target) / compute_ratio^k: run 0 is the widest multiple of width_multiple with
 *    C(W) <= C_0, run k the narrower width whose C(W) is nearest to C_k in log.
 *  - Hyperparameters: lr(W) = lr * (lr_ref_width / W)^lr_width_exponent, init_std(W) =
 *    init_std * (lr_ref_width / W)^init_width_exponent, warmup = warmup_fraction * steps,
 *    the rest the same for every run. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "output.h"
#include "scale_internal.h"

#define SAMPLE 256
#define MAX_CANDIDATES 4096

static uint32_t round_u32(double x) { return x < 1 ? 1 : (uint32_t)lround(x); }

static void shapes_of(const sc_recipe *r, uint32_t W, sc_run *run) {
    run->width = W;
    run->intermediate = round_u32(W * r->text_mlp_ratio);
    uint32_t vh = r->vision_heads;
    uint32_t vw = round_u32(W * r->vision_width_ratio / vh) * vh;
    run->vision_width = vw < vh ? vh : vw;
    run->vision_intermediate = round_u32(run->vision_width * r->vision_mlp_ratio);
}

static void set_int(cJSON *obj, const char *key, double v) {
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateNumber(v));
    else
        cJSON_AddNumberToObject(obj, key, v);
}

static const char *const side_files[] = {"tokenizer.json", "tokenizer_config.json",
                                         "special_tokens_map.json", "preprocessor_config.json",
                                         "processor_config.json", "chat_template.json",
                                         "generation_config.json"};

/* config.json of the run's shapes, then the base's tokenizer and processor files. */
static oc_status write_config_into(const sc_recipe *r, const sc_run *run, oc_out_dir *d) {
    char *src = oc_path_join(r->base, "config.json");
    if (!src)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    cJSON *j = NULL;
    oc_status s = oc_json_load(src, 4u << 20, &j);
    cJSON *tc = s == OC_OK ? cJSON_GetObjectItemCaseSensitive(j, "text_config") : NULL;
    cJSON *vc = s == OC_OK ? cJSON_GetObjectItemCaseSensitive(j, "vision_config") : NULL;
    if (s == OC_OK && (!cJSON_IsObject(tc) || !cJSON_IsObject(vc)))
        s = oc_err(OC_ERR_FORMAT, "%s: a SmolVLM config needs \"text_config\" and "
                   "\"vision_config\" objects", src);
    if (s == OC_OK) {
        set_int(tc, "hidden_size", run->width);
        set_int(tc, "intermediate_size", run->intermediate);
        set_int(tc, "num_hidden_layers", r->text_layers);
        set_int(tc, "num_attention_heads", r->text_heads);
        set_int(tc, "num_key_value_heads", r->text_heads);
        set_int(tc, "head_dim", run->width / r->text_heads);
        set_int(vc, "hidden_size", run->vision_width);
        set_int(vc, "intermediate_size", run->vision_intermediate);
        set_int(vc, "num_hidden_layers", r->vision_layers);
        set_int(vc, "num_attention_heads", r->vision_heads);
        char *text = cJSON_Print(j);
        s = text ? oc_out_dir_write(d, "config.json", text, strlen(text))
                 : oc_err(OC_ERR_NOMEM, "out of memory");
        cJSON_free(text);
    }
    cJSON_Delete(j);
    oc_free(src);
    for (size_t i = 0; s == OC_OK && i < sizeof side_files / sizeof side_files[0]; i++) {
        char *from = oc_path_join(r->base, side_files[i]);
        char *data = NULL;
        size_t n = 0;
        if (!from)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        else if (oc_file_exists(from) &&
                 (s = oc_read_file(from, (size_t)256 << 20, &data, &n)) == OC_OK)
            s = oc_out_dir_write(d, side_files[i], data, n);
        oc_free(data);
        oc_free(from);
    }
    return s;
}

/* dir: a model folder for the run (written whole, as a folder output). */
oc_status sc_write_config(const sc_recipe *r, const sc_run *run, const char *dir) {
    oc_out_dir *d = NULL;
    OC_TRY(oc_out_dir_begin(dir, NULL, &d));
    oc_status s = write_config_into(r, run, d);
    if (s != OC_OK) {
        oc_out_dir_abort(d);
        return s;
    }
    return oc_out_dir_commit(d);
}

/* The sample: lengths and labels of up to SAMPLE training examples spread over the file
 * (copied: the dataset's arrays are reused). */
typedef struct {
    oc_train_example ex[SAMPLE];
    int32_t *ids[SAMPLE], *labels[SAMPLE];
    size_t n;
    size_t train_examples;
    double mean_tokens, mean_labelled;
} sample;

static void sample_free(sample *sp) {
    for (size_t i = 0; i < sp->n; i++) {
        oc_free(sp->ids[i]);
        oc_free(sp->labels[i]);
    }
}

static oc_status sample_load(const char *train, const char *config_dir, sample *sp) {
    memset(sp, 0, sizeof *sp);
    oc_dataset_params dp = oc_dataset_default_params();
    dp.shuffle = 0;
    oc_dataset *ds = NULL;
    OC_TRY(oc_dataset_open(train, config_dir, &dp, &ds));
    size_t n = oc_dataset_size(ds), k = n < SAMPLE ? n : SAMPLE;
    oc_status s = n ? OC_OK : oc_err(OC_ERR_FORMAT, "%s: no training examples", train);
    double tok = 0, lab = 0;
    for (size_t i = 0; i < k && s == OC_OK; i++) {
        oc_train_example e;
        s = oc_dataset_get(ds, i * n / k, &e);
        if (s != OC_OK)
            break;
        sp->ids[i] = oc_malloc(e.n_tokens * sizeof(int32_t));
        sp->labels[i] = oc_malloc(e.n_tokens * sizeof(int32_t));
        if (!sp->ids[i] || !sp->labels[i]) {
            oc_free(sp->ids[i]);
            oc_free(sp->labels[i]);
            s = oc_err(OC_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(sp->ids[i], e.input_ids, e.n_tokens * sizeof(int32_t));
        memcpy(sp->labels[i], e.labels, e.n_tokens * sizeof(int32_t));
        sp->ex[i] = (oc_train_example){sp->ids[i], sp->labels[i], e.n_tokens, NULL, e.n_tiles};
        sp->n = i + 1;
        tok += (double)e.n_tokens;
        for (size_t t = 1; t < e.n_tokens; t++)
            lab += e.labels[t] != -100;
    }
    sp->train_examples = n;
    oc_dataset_free(ds);
    if (s != OC_OK) {
        sample_free(sp);
        return s;
    }
    sp->mean_tokens = tok / (double)sp->n;
    sp->mean_labelled = lab / (double)sp->n;
    return OC_OK;
}

/* Parameters and FLOPs per example of width W (a config written to dir). */
static oc_status measure(const sc_recipe *r, uint32_t W, const char *dir, const sample *sp,
                         sc_run *run) {
    shapes_of(r, W, run);
    OC_TRY(sc_write_config(r, run, dir));
    oc_train_params tp = oc_train_default_params();
    tp.n_threads = 1;
    tp.dist_alone = 1; /* a measurement of this process (rank 0 plans) */
    oc_trainer *tr = NULL;
    OC_TRY(oc_trainer_new_from_config(dir, &tp, &tr));
    oc_step_flops f;
    oc_status s = oc_trainer_step_flops(tr, sp->ex, sp->n, &f);
    run->params = oc_trainer_get_info(tr).n_params;
    run->flops_per_example = f.total / (double)sp->n;
    oc_trainer_free(tr);
    return s;
}

/* Tokens, steps, planned compute and hyperparameters of a measured run. */
static void schedule(const sc_recipe *r, const sc_plan *pl, size_t target_params,
                     sc_run *run) {
    double D = (double)r->target_tokens *
               pow((double)run->params / (double)target_params, r->tokens_exponent);
    run->tokens = (uint64_t)llround(D);
    double steps = round(D / ((double)r->batch * pl->mean_tokens));
    run->steps = steps < 1 ? 1 : (uint64_t)steps;
    run->warmup = (uint64_t)llround(r->warmup_fraction * (double)run->steps);
    run->planned_compute = run->flops_per_example * (double)run->steps * r->batch;
    double ratio = r->lr_ref_width / run->width;
    run->lr = r->lr * pow(ratio, r->lr_width_exponent);
    run->init_std = r->init_std * pow(ratio, r->init_width_exponent);
}

oc_status sc_plan_make(const sc_recipe *r, const char *out, const char *train,
                       sc_plan *pl) {
    memset(pl, 0, sizeof *pl);
    char *tdir = sc_path(out, "configs", "target");
    if (!tdir)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    sc_run target;
    memset(&target, 0, sizeof target);
    snprintf(target.name, sizeof target.name, "target");
    target.is_target = 1;
    shapes_of(r, r->target_width, &target);
    oc_status s = sc_write_config(r, &target, tdir);
    sample sp;
    memset(&sp, 0, sizeof sp);
    if (s == OC_OK)
        s = sample_load(train, tdir, &sp);
    if (s == OC_OK)
        s = measure(r, r->target_width, tdir, &sp, &target);
    if (s != OC_OK) {
        oc_free(tdir);
        sample_free(&sp);
        return s;
    }
    pl->mean_tokens = sp.mean_tokens;
    pl->mean_labelled = sp.mean_labelled;
    pl->train_examples = sp.train_examples;
    schedule(r, pl, target.params, &target);

    /* every narrower width, measured once */
    size_t nc = r->target_width / r->width_multiple - 1;
    if (nc > MAX_CANDIDATES)
        nc = MAX_CANDIDATES;
    sc_run *cand = nc ? oc_calloc(nc, sizeof *cand) : NULL;
    char *cdir = sc_path(out, "configs", "candidate");
    if ((nc && !cand) || !cdir)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nc && s == OC_OK; i++) {
        s = measure(r, (uint32_t)(i + 1) * r->width_multiple, cdir, &sp, &cand[i]);
        if (s == OC_OK)
            schedule(r, pl, target.params, &cand[i]);
    }
    sample_free(&sp);

    /* the ladder, largest first */
    sc_run ladder[SC_MAX_RUNS];
    size_t last = nc; /* runs take candidates below this index */
    double C0 = r->max_fraction * target.planned_compute;
    for (uint32_t k = 0; k < r->runs && s == OC_OK; k++) {
        double Ck = C0 / pow(r->compute_ratio, k);
        size_t best = nc;
        for (size_t i = 0; i < last; i++) {
            if (k == 0 && cand[i].planned_compute > C0)
                continue;
            if (best == nc || fabs(log(cand[i].planned_compute / Ck)) <
                                  fabs(log(cand[best].planned_compute / Ck)))
                best = i;
        }
        if (best == nc) {
            s = oc_err(OC_ERR_INVALID_ARG, "%s: the ladder needs %u runs of different widths "
                       "(multiples of %u) below %.3g of the target's compute (%.3g FLOPs), but "
                       "only %u fit: use a smaller model.width_multiple or ladder.runs, a "
                       "larger max_compute_fraction, or a larger target", r->path, r->runs,
                       r->width_multiple, r->max_fraction, target.planned_compute, k);
            break;
        }
        ladder[k] = cand[best];
        last = best;
        if (ladder[k].steps < r->min_steps)
            s = oc_err(OC_ERR_INVALID_ARG, "%s: ladder run of width %u would train %llu steps "
                       "(train.min_steps is %u): give the target more tokens, a smaller "
                       "batch, or a smaller ladder.tokens_exponent", r->path,
                       ladder[k].width, (unsigned long long)ladder[k].steps, r->min_steps);
    }
    oc_free(cand);
    oc_free(cdir);
    if (s == OC_OK) {
        pl->n_ladder = r->runs;
        for (size_t k = 0; k < r->runs; k++) {
            pl->runs[k] = ladder[r->runs - 1 - k];
            snprintf(pl->runs[k].name, sizeof pl->runs[k].name, "ladder-%02zu", k);
        }
        pl->runs[r->runs] = target;
        /* each run's config in its own folder */
        for (size_t k = 0; k <= pl->n_ladder && s == OC_OK; k++) {
            char *dir = sc_path(out, "configs", pl->runs[k].name);
            s = dir ? sc_write_config(r, &pl->runs[k], dir) : oc_err(OC_ERR_NOMEM, "out of memory");
            oc_free(dir);
        }
    }
    oc_free(tdir);
    return s;
}

cJSON *sc_plan_json(const sc_recipe *r, const sc_plan *pl) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "recipe", r->path);
    cJSON_AddNumberToObject(j, "mean_tokens_per_example", pl->mean_tokens);
    cJSON_AddNumberToObject(j, "mean_labelled_per_example", pl->mean_labelled);
    cJSON_AddNumberToObject(j, "train_examples", (double)pl->train_examples);
    cJSON_AddNumberToObject(j, "batch", r->batch);
    char rule[1024];
    snprintf(rule, sizeof rule,
             "%u ladder runs, compute geometrically spaced by %g from %g of the target's "
             "down; widths multiples of %u; tokens = target tokens x (params / target "
             "params)^%g; lr = %g x (%g / width)^%g; init std = %g x (%g / width)^%g; warmup "
             "%g of the steps; batch %u; %s schedule to 0; AdamW betas %g, %g, weight decay "
             "%g, clip %g", r->runs, r->compute_ratio, r->max_fraction, r->width_multiple,
             r->tokens_exponent, r->lr, r->lr_ref_width, r->lr_width_exponent, r->init_std,
             r->lr_ref_width, r->init_width_exponent, r->warmup_fraction, r->batch,
             r->schedule == OC_SCHED_COSINE ? "cosine"
             : r->schedule == OC_SCHED_LINEAR ? "linear" : "constant",
             r->beta1, r->beta2, r->weight_decay, r->clip);
    cJSON_AddStringToObject(j, "rule", rule);
    cJSON *runs = cJSON_AddArrayToObject(j, "runs");
    double Ct = pl->runs[pl->n_ladder].planned_compute;
    for (size_t k = 0; k <= pl->n_ladder; k++) {
        const sc_run *u = &pl->runs[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", u->name);
        cJSON_AddStringToObject(o, "role", u->is_target ? "target" : "ladder");
        cJSON_AddNumberToObject(o, "width", u->width);
        cJSON_AddNumberToObject(o, "vision_width", u->vision_width);
        cJSON_AddNumberToObject(o, "params", (double)u->params);
        cJSON_AddNumberToObject(o, "tokens", (double)u->tokens);
        cJSON_AddNumberToObject(o, "steps", (double)u->steps);
        cJSON_AddNumberToObject(o, "warmup", (double)u->warmup);
        cJSON_AddNumberToObject(o, "lr", u->lr);
        cJSON_AddNumberToObject(o, "init_std", u->init_std);
        cJSON_AddNumberToObject(o, "flops_per_example", u->flops_per_example);
        cJSON_AddNumberToObject(o, "planned_compute", u->planned_compute);
        cJSON_AddNumberToObject(o, "planned_fraction_of_target", u->planned_compute / Ct);
        cJSON_AddItemToArray(runs, o);
    }
    return j;
}
