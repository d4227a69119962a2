/* One run of a scaling study: trained from random weights for its planned steps, with a
 * checkpoint every steps / recipe.checkpoints steps in out/runs/NAME (a model folder that
 * oc_trainer_resume continues bit for bit), the training curve in out/runs/NAME/loss.csv
 * (kept in memory and written whole, through the output layer, just before each
 * checkpoint: a resumed run drops the rows after its checkpoint's step), then evaluated: the validation loss (every labelled position of the validation set
 * counted once) and the capability (-mean over the questions of log p(exact answer)).
 * result.json marks the run finished; a later call skips it. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "dist.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "output.h"
#include "strbuf.h"
#include "scale_internal.h"

#define EVAL_BATCH 16
#define LOSS_HEADER "step,tokens,flops,loss,lr,grad_norm,seconds\n"

double sc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sc_iso_time(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

oc_status sc_json_write(const char *path, const cJSON *j) {
    char *text = cJSON_Print(j);
    if (!text)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t n = strlen(text);
    char *buf = oc_malloc(n + 2);
    oc_status s = buf ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK) {
        memcpy(buf, text, n);
        buf[n] = '\n';
        s = oc_write_file_atomic(path, buf, n + 1);
    }
    oc_free(buf);
    cJSON_free(text);
    return s;
}

int sc_emit(sc_ctx *c, oc_scale_event *ev) {
    ev->n_runs = c->plan->n_ladder + 1;
    ev->compute_done = c->compute_done;
    ev->compute_total = c->compute_total;
    ev->elapsed_s = sc_now() - c->t_start;
    /* several ranks: the ladder's runs side by side, the target data-parallel */
    double rate = c->rate * (c->ranks > 1 ? c->ranks : 1);
    ev->eta_s = rate > 0 ? (c->compute_total - c->compute_done) / rate : -1;
    if (ev->eta_s < 0 && rate > 0)
        ev->eta_s = 0;
    const oc_scale_params *p = c->params;
    return p && p->on_progress ? p->on_progress(ev, p->user_data) : 0;
}

void sc_fill_run(const sc_ctx *c, oc_scale_event *ev, const sc_run *u, size_t i) {
    ev->rank = c->alone ? c->rank : 0;
    ev->run = i;
    ev->name = u->name;
    ev->is_target = u->is_target;
    ev->width = u->width;
    ev->params = u->params;
    ev->tokens = u->tokens;
    ev->steps = u->steps;
    ev->lr = u->lr;
}

/* ---- results ---------------------------------------------------------------------- */

static double num(const cJSON *j, const char *k) {
    const cJSON *v = oc_json_get(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A finished run's result.json, when it matches the plan's run (same width, steps, lr). */
oc_status sc_result_load(const char *out, const sc_run *u, sc_result *res) {
    memset(res, 0, sizeof *res);
    char *path = sc_path(out, "runs", u->name);
    char *file = path ? oc_path_join(path, "result.json") : NULL;
    oc_free(path);
    if (!file)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = OC_OK;
    if (oc_file_exists(file)) {
        cJSON *j = NULL;
        s = oc_json_load(file, 1 << 20, &j);
        if (s == OC_OK) {
            if (num(j, "width") != u->width || num(j, "steps") != (double)u->steps ||
                fabs(num(j, "lr") - u->lr) > 1e-12 * u->lr)
                s = oc_err(OC_ERR_INVALID_ARG, "%s: this run was trained with another plan "
                           "(width, steps or lr differ): use a new output folder", file);
            res->final_loss = num(j, "final_loss");
            res->capability = num(j, "capability");
            res->mean_pass_rate = num(j, "mean_pass_rate");
            res->compute = num(j, "compute");
            res->seconds = num(j, "seconds");
            res->tokens = (uint64_t)num(j, "tokens");
            res->steps = (uint64_t)num(j, "steps");
            res->val_labelled = num(j, "val_labelled");
            res->questions = (size_t)num(j, "questions");
            if (s == OC_OK && !(res->final_loss > 0 && res->compute > 0))
                s = oc_err(OC_ERR_FORMAT, "%s: no final_loss or compute", file);
            res->done = s == OC_OK;
        }
        cJSON_Delete(j);
    }
    oc_free(file);
    return s;
}

static oc_status result_write(const char *dir, const sc_run *u, const sc_result *res) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", u->name);
    cJSON_AddNumberToObject(j, "width", u->width);
    cJSON_AddNumberToObject(j, "params", (double)u->params);
    cJSON_AddNumberToObject(j, "steps", (double)u->steps);
    cJSON_AddNumberToObject(j, "lr", u->lr);
    cJSON_AddNumberToObject(j, "tokens", (double)res->tokens);
    cJSON_AddNumberToObject(j, "compute", res->compute);
    cJSON_AddNumberToObject(j, "planned_compute", u->planned_compute);
    cJSON_AddNumberToObject(j, "final_loss", res->final_loss);
    cJSON_AddNumberToObject(j, "val_labelled", res->val_labelled);
    if (res->questions) {
        cJSON_AddNumberToObject(j, "capability", res->capability);
        cJSON_AddNumberToObject(j, "mean_pass_rate", res->mean_pass_rate);
        cJSON_AddNumberToObject(j, "questions", (double)res->questions);
    }
    cJSON_AddNumberToObject(j, "seconds", res->seconds);
    char when[32];
    sc_iso_time(when, sizeof when);
    cJSON_AddStringToObject(j, "finished_at", when);
    char *file = oc_path_join(dir, "result.json");
    oc_status s = file ? sc_json_write(file, j) : oc_err(OC_ERR_NOMEM, "out of memory");
    oc_free(file);
    cJSON_Delete(j);
    return s;
}

/* ---- evaluation ------------------------------------------------------------------- */

static size_t labelled(const oc_train_example *e) {
    size_t k = 0;
    for (size_t t = 1; t < e->n_tokens; t++)
        k += e->labels[t] != -100;
    return k;
}

/* Sum of the loss over every labelled position of ds (in file order), and their count. */
static oc_status eval_sum(oc_trainer *tr, oc_dataset *ds, double *sum, double *count) {
    size_t n = oc_dataset_size(ds);
    oc_train_example ex[EVAL_BATCH];
    *sum = *count = 0;
    oc_dataset_seek(ds, 0);
    for (size_t i = 0; i < n; i += EVAL_BATCH) {
        size_t k = n - i < EVAL_BATCH ? n - i : EVAL_BATCH, lab = 0;
        OC_TRY(oc_dataset_next_batch(ex, k, ds));
        for (size_t j = 0; j < k; j++)
            lab += labelled(&ex[j]);
        if (!lab)
            continue;
        double mean;
        OC_TRY(oc_trainer_eval(tr, ex, k, &mean));
        *sum += mean * (double)lab;
        *count += (double)lab;
    }
    return OC_OK;
}

/* -mean log p(answer) and mean p(answer) over the questions, one at a time. */
static oc_status eval_questions(oc_trainer *tr, oc_dataset *ds, double *nll, double *pass,
                                size_t *n_out) {
    size_t n = oc_dataset_size(ds);
    double s_nll = 0, s_p = 0;
    for (size_t i = 0; i < n; i++) {
        oc_train_example e;
        OC_TRY(oc_dataset_get(ds, i, &e));
        size_t lab = labelled(&e);
        if (!lab)
            return oc_err(OC_ERR_FORMAT, "capability question %zu has no answer tokens", i + 1);
        double mean;
        OC_TRY(oc_trainer_eval(tr, &e, 1, &mean));
        double q = mean * (double)lab; /* -log p(answer) */
        s_nll += q;
        s_p += exp(-q);
    }
    *nll = s_nll / (double)n;
    *pass = s_p / (double)n;
    *n_out = n;
    return OC_OK;
}

/* ---- the loss curve ---------------------------------------------------------------- */

/* What the kept rows of a curve add up to. */
typedef struct {
    double flops;        /* the trainer's total at the last kept row */
    double tokens, seconds;
} curve_sums;

/* The rows of dir/loss.csv up to step (a checkpoint) into b, so that a resumed run
 * continues after them; a fresh run gets the header alone. *sums: what the kept rows add
 * up to. */
static oc_status curve_load(const char *dir, uint64_t step, oc_strbuf *b, curve_sums *sums) {
    memset(sums, 0, sizeof *sums);
    char *path = oc_path_join(dir, "loss.csv");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t n = 0, keep = 0;
    oc_status s = OC_OK;
    if (step > 0 && oc_file_exists(path) &&
        (s = oc_read_file(path, (size_t)1 << 30, &text, &n)) == OC_OK) {
        /* the header, then the rows whose step is <= step */
        char *nl = memchr(text, '\n', n);
        if (nl && (size_t)(nl + 1 - text) == strlen(LOSS_HEADER) &&
            !memcmp(text, LOSS_HEADER, strlen(LOSS_HEADER)))
            keep = strlen(LOSS_HEADER);
        for (char *p = text + keep; keep && p < text + n;) {
            nl = memchr(p, '\n', (size_t)(text + n - p));
            unsigned long long st, tok;
            double fl, loss, lr, gn, sec;
            if (!nl || sscanf(p, "%llu,%llu,%lf,%lf,%lf,%lf,%lf", &st, &tok, &fl, &loss, &lr,
                              &gn, &sec) != 7 || st > step)
                break;
            sums->flops = fl;
            sums->tokens += (double)tok;
            sums->seconds += sec;
            keep = (size_t)(nl + 1 - text);
            p = nl + 1;
        }
    }
    if (s == OC_OK) {
        if (keep)
            oc_sb_putn(b, text, keep);
        else
            oc_sb_puts(b, LOSS_HEADER);
        if (b->failed)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
    }
    oc_free(text);
    oc_free(path);
    return s;
}

/* dir/loss.csv := b, atomically. */
static oc_status curve_write(const char *dir, const oc_strbuf *b) {
    if (b->failed)
        return oc_err(OC_ERR_NOMEM, "%s/loss.csv: out of memory", dir);
    char *path = oc_path_join(dir, "loss.csv");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = oc_write_file_atomic(path, b->data, b->len);
    oc_free(path);
    return s;
}

oc_status sc_agree(const sc_ctx *c, oc_status s) {
    return sc_collective(c) ? oc_dist_agree(s) : s;
}

/* The curve first, then the checkpoint: a crash between the two leaves rows after the
 * checkpoint's step, which the resumed run drops. Rank 0 writes the curve; the save is
 * collective in a collective run. */
static oc_status checkpoint(const sc_ctx *c, oc_trainer *tr, const char *dir,
                            const oc_strbuf *curve) {
    OC_TRY(sc_agree(c, c->rank == 0 || c->alone ? curve_write(dir, curve) : OC_OK));
    return oc_trainer_save(tr, dir);
}

/* What rank 0 finds on disk (result.json, a checkpoint) is what every rank goes by in a
 * collective run. */
static oc_status result_shared(const sc_ctx *c, const sc_run *u, sc_result *res) {
    if (!sc_collective(c))
        return sc_result_load(c->out, u, res);
    memset(res, 0, sizeof *res);
    OC_TRY(oc_dist_agree(c->rank == 0 ? sc_result_load(c->out, u, res) : OC_OK));
    return oc_dist_bcast(res, sizeof *res, 0, "the run's result");
}

static oc_status exists_shared(const sc_ctx *c, const char *path, int *yes) {
    *yes = oc_file_exists(path);
    return sc_collective(c) ? oc_dist_bcast(yes, sizeof *yes, 0, "a checkpoint's presence")
                            : OC_OK;
}

/* ---- training ---------------------------------------------------------------------- */

static oc_train_params train_params(const sc_ctx *c, const sc_run *u) {
    const sc_recipe *r = c->recipe;
    oc_train_params tp = oc_train_default_params();
    tp.lr = u->lr;
    tp.vision_lr_scale = r->vision_lr_scale;
    tp.beta1 = r->beta1;
    tp.beta2 = r->beta2;
    tp.eps = r->eps;
    tp.weight_decay = r->weight_decay;
    tp.schedule = r->schedule;
    tp.warmup_steps = u->warmup;
    tp.steps = u->steps;
    tp.clip = r->clip;
    tp.batch = r->batch;
    tp.grad_accum = 1;
    tp.seed = r->seed;
    tp.init_std = (float)u->init_std;
    tp.dist_alone = !sc_collective(c);
    int th = c->params && c->params->n_threads > 0 ? c->params->n_threads : r->threads;
    tp.n_threads = th > 0 ? th : 1;
    return tp;
}

oc_status sc_run_train(sc_ctx *c, size_t i, sc_result *res) {
    const sc_run *u = &c->plan->runs[i];
    OC_TRY(result_shared(c, u, res));
    oc_scale_event ev;
    if (res->done) {
        c->compute_done += res->compute;
        memset(&ev, 0, sizeof ev);
        sc_fill_run(c, &ev, u, i);
        ev.kind = OC_SCALE_RUN_DONE;
        ev.skipped = 1;
        ev.final_loss = res->final_loss;
        ev.capability = res->questions ? res->capability : NAN;
        ev.run_compute = res->compute;
        ev.run_seconds = res->seconds;
        return sc_emit(c, &ev) ? oc_err(OC_ERR_CANCELLED, "scale: stopped") : OC_OK;
    }
    char *dir = sc_path(c->out, "runs", u->name);
    char *cfg = sc_path(c->out, "configs", u->name);
    char *opt = dir ? oc_path_join(dir, "optimizer.safetensors") : NULL;
    oc_status s = dir && cfg && opt ? oc_make_dirs(dir) : oc_err(OC_ERR_NOMEM, "out of memory");
    oc_train_params tp = train_params(c, u);
    oc_trainer *tr = NULL;
    int resumed = 0, have_opt = 0;
    s = sc_agree(c, s);
    if (s == OC_OK)
        s = exists_shared(c, opt, &have_opt);
    if (s == OC_OK && have_opt) {
        s = oc_trainer_resume(dir, &tp, &tr);
        resumed = 1;
    } else if (s == OC_OK) {
        s = oc_trainer_new_from_config(cfg, &tp, &tr);
    }
    uint64_t step0 = tr ? oc_trainer_get_info(tr).step : 0;
    oc_strbuf curve = {0};
    curve_sums prior;
    memset(&prior, 0, sizeof prior);
    int writer = c->rank == 0 || !sc_collective(c); /* of loss.csv and result.json */
    if (s == OC_OK && writer)
        s = curve_load(dir, step0, &curve, &prior);
    if (s == OC_OK && writer && resumed && prior.flops == 0 && step0 > 0)
        s = oc_err(OC_ERR_FORMAT, "%s/loss.csv: no rows up to the checkpoint's step %llu",
                   dir, (unsigned long long)step0);
    if (tr) /* the trainer was made: every rank is here */
        s = sc_agree(c, s);
    /* a resumed run's compute before its checkpoint counts as done */
    double run_flops = prior.flops, tokens = prior.tokens, seconds = prior.seconds;
    c->compute_done += prior.flops;
    memset(&ev, 0, sizeof ev);
    sc_fill_run(c, &ev, u, i);
    ev.kind = OC_SCALE_RUN_START;
    ev.run_compute = u->planned_compute;
    if (s == OC_OK && sc_emit(c, &ev))
        s = oc_err(OC_ERR_CANCELLED, "scale: stopped");
    if (tr)
        s = sc_agree(c, s);

    oc_dataset_seek(c->train, step0 * c->recipe->batch);
    size_t B = c->recipe->batch;
    oc_train_example *ex = oc_calloc(B, sizeof *ex);
    if (s == OC_OK && !ex)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    if (tr)
        s = sc_agree(c, s);
    uint64_t every = u->steps / c->recipe->checkpoints;
    if (every < 1)
        every = 1;
    double rate_flops = 0, rate_time = 0;
    int stop = 0;
    uint64_t step = step0;
    while (s == OC_OK && step < u->steps && !stop) {
        oc_train_stats st;
        s = sc_agree(c, oc_dataset_next_batch(ex, B, c->train));
        if (s == OC_OK)
            s = oc_trainer_step(tr, ex, B, &st);
        if (s != OC_OK)
            break;
        step = st.step;
        run_flops = st.total_flops;
        tokens += (double)st.tokens;
        seconds += st.seconds;
        rate_flops += st.flops;
        rate_time += st.seconds;
        c->compute_done += st.flops;
        if (rate_time > 0)
            c->rate = rate_flops / rate_time;
        oc_sb_printf(&curve, "%llu,%llu,%.17g,%.9g,%.9g,%.9g,%.6f\n", (unsigned long long)st.step,
                (unsigned long long)st.tokens, st.total_flops, st.loss, st.lr, st.grad_norm,
                st.seconds);
        ev.kind = OC_SCALE_RUN_STEP;
        ev.stats = &st;
        if (sc_emit(c, &ev))
            stop = 1;
        if (sc_collective(c)) { /* any rank's stop stops them all, after the same step */
            uint64_t any = (uint64_t)stop;
            s = oc_dist_sum_u64(&any, 1, "the exchange of the stop flag");
            stop = any > 0;
        }
        if (s == OC_OK && (stop || (step % every == 0 && step < u->steps)))
            s = checkpoint(c, tr, dir, &curve);
    }
    oc_free(ex);
    if (s == OC_OK && stop)
        s = oc_err(OC_ERR_CANCELLED, "scale: stopped at step %llu of %s (checkpoint saved)",
                   (unsigned long long)step, u->name);
    if (s == OC_OK)
        s = checkpoint(c, tr, dir, &curve);
    oc_sb_free(&curve);

    /* evaluation */
    if (s == OC_OK) {
        memset(res, 0, sizeof *res);
        double sum, cnt;
        s = eval_sum(tr, c->val, &sum, &cnt);
        if (s == OC_OK && cnt == 0)
            s = oc_err(OC_ERR_FORMAT, "the validation set has no labelled positions");
        if (s == OC_OK) {
            res->final_loss = sum / cnt;
            res->val_labelled = cnt;
        }
        if (s == OC_OK && c->questions)
            s = eval_questions(tr, c->questions, &res->capability, &res->mean_pass_rate,
                               &res->questions);
        if (tr)
            s = sc_agree(c, s);
    }
    if (s == OC_OK) {
        res->compute = run_flops;
        res->tokens = (uint64_t)tokens;
        res->steps = u->steps;
        res->seconds = seconds; /* of training, over every call */
        res->done = 1;
        s = sc_agree(c, writer ? result_write(dir, u, res) : OC_OK);
    }
    if (s == OC_OK) {
        ev.kind = OC_SCALE_RUN_DONE;
        ev.stats = NULL;
        ev.final_loss = res->final_loss;
        ev.capability = res->questions ? res->capability : NAN;
        ev.run_compute = res->compute;
        ev.run_seconds = res->seconds;
        if (sc_emit(c, &ev))
            s = oc_err(OC_ERR_CANCELLED, "scale: stopped");
    }
    if (s != OC_OK && s != OC_ERR_CANCELLED)
        oc_err_prefix(s, "scale run %s: ", u->name);
    oc_trainer_free(tr);
    oc_free(dir);
    oc_free(cfg);
    oc_free(opt);
    return s;
}
