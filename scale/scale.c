/* oc_scale_run: data, plan, the ladder, the prediction (written before the target
 * starts), the target, the report; every step kept in the output folder so that a second
 * call continues where the first stopped. oc_scale_summary: the table for a terminal. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "dist.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "output.h"
#include "scale_internal.h"

oc_scale_params oc_scale_default_params(void) {
    oc_scale_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* plan.json of an earlier call must describe the same runs. */
static oc_status check_plan(const char *path, const cJSON *now) {
    cJSON *old = NULL;
    OC_TRY(oc_json_load(path, 16u << 20, &old));
    const cJSON *a = oc_json_get(old, "runs"), *b = oc_json_get(now, "runs");
    oc_status s = OC_OK;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
        s = oc_err(OC_ERR_INVALID_ARG, "%s: the output folder was started with a plan of %d "
                   "runs, the recipe now gives %d: use a new output folder", path,
                   cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0, cJSON_GetArraySize(b));
    static const char *const keys[] = {"width", "params", "steps", "lr", "warmup"};
    for (int i = 0; s == OC_OK && i < cJSON_GetArraySize(b); i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0] && s == OC_OK; k++) {
            const cJSON *u = oc_json_get(x, keys[k]), *v = oc_json_get(y, keys[k]);
            if (!cJSON_IsNumber(u) || !cJSON_IsNumber(v) ||
                fabs(u->valuedouble - v->valuedouble) > 1e-9 * fabs(v->valuedouble))
                s = oc_err(OC_ERR_INVALID_ARG, "%s: run %d's %s was %g, the recipe now gives "
                           "%g: use a new output folder", path, i,
                           keys[k], cJSON_IsNumber(u) ? u->valuedouble : NAN,
                           cJSON_IsNumber(v) ? v->valuedouble : NAN);
        }
    }
    cJSON_Delete(old);
    return s;
}

/* A prediction.json written by an earlier call is kept (it was made before the target
 * started) when the ladder's losses it was made from are still those of the runs. */
static oc_status load_prediction(const char *path, const sc_ctx *c, const sc_result *res,
                                 cJSON **out) {
    *out = NULL;
    if (!oc_file_exists(path))
        return OC_OK;
    cJSON *p = NULL;
    OC_TRY(oc_json_load(path, 16u << 20, &p));
    const cJSON *loss = oc_json_get(p, "loss");
    const cJSON *names = oc_json_get(loss, "fitted_runs");
    oc_status s = cJSON_IsArray(names) ? OC_OK
                                       : oc_err(OC_ERR_FORMAT, "%s: no loss.fitted_runs", path);
    for (const cJSON *n = names ? names->child : NULL; n && s == OC_OK; n = n->next) {
        int found = 0;
        for (size_t k = 0; k < c->plan->n_ladder; k++)
            found |= cJSON_IsString(n) && !strcmp(n->valuestring, c->plan->runs[k].name) &&
                     res[k].done;
        if (!found)
            s = oc_err(OC_ERR_INVALID_ARG, "%s: made from a run that is not a finished run of "
                       "this plan: use a new output folder", path);
    }
    if (s != OC_OK) {
        cJSON_Delete(p);
        return s;
    }
    *out = p;
    return OC_OK;
}

static oc_status open_data(const sc_recipe *r, const sc_data *d, const char *cfg,
                           sc_ctx *c) {
    oc_dataset_params dp = oc_dataset_default_params();
    dp.seed = r->seed;
    OC_TRY(oc_dataset_open(d->train, cfg, &dp, &c->train));
    dp.shuffle = 0;
    OC_TRY(oc_dataset_open(d->val, cfg, &dp, &c->val));
    if (d->questions)
        OC_TRY(oc_dataset_open(d->questions, cfg, &dp, &c->questions));
    return OC_OK;
}

/* The ladder's runs: alone, all of them in turn; in a job of several ranks, each rank
 * those oc_dist_assign gives it (by planned FLOPs), trained alone, then every rank gets
 * every result. An error of this rank's own runs returns at once, not agreed: the caller
 * ends the job (oc_dist_abort) rather than have it wait for the other ranks' runs. */
static oc_status train_ladder(sc_ctx *c, sc_result *res) {
    size_t n = c->plan->n_ladder;
    if (c->ranks == 1) {
        for (size_t k = 0; k < n; k++)
            OC_TRY(sc_run_train(c, k, &res[k]));
        return OC_OK;
    }
    double *cost = oc_malloc(n * sizeof *cost);
    int *owner = oc_malloc(n * sizeof *owner);
    sc_result *all = oc_malloc((size_t)c->ranks * n * sizeof *all);
    oc_status s = cost && owner && all ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t k = 0; s == OC_OK && k < n; k++)
        cost[k] = c->plan->runs[k].planned_compute;
    if (s == OC_OK)
        s = oc_dist_assign(cost, n, owner);
    c->alone = 1;
    for (size_t k = 0; s == OC_OK && k < n; k++)
        if (owner[k] == c->rank)
            s = sc_run_train(c, k, &res[k]);
    c->alone = 0;
    if (s == OC_OK) {
        /* the other ranks may be hours from done: wait for them without the deadline
         * (a rank that dies is seen by the launcher, which ends the job) */
        double deadline = oc_dist_get_info().timeout;
        oc_dist_set_timeout(1e12);
        s = oc_dist_agree(s);
        oc_dist_set_timeout(deadline);
    }
    if (s == OC_OK)
        s = oc_dist_allgather_fixed(res, n * sizeof *res, all, "the ladder's results");
    for (size_t k = 0; s == OC_OK && k < n; k++) {
        res[k] = all[(size_t)owner[k] * n + k];
        if (owner[k] == c->rank)
            continue;
        c->compute_done += res[k].compute;
        oc_scale_event ev;
        memset(&ev, 0, sizeof ev);
        sc_fill_run(c, &ev, &c->plan->runs[k], k);
        ev.kind = OC_SCALE_RUN_DONE;
        ev.final_loss = res[k].final_loss;
        ev.capability = res[k].questions ? res[k].capability : NAN;
        ev.run_compute = res[k].compute;
        ev.run_seconds = res[k].seconds;
        ev.rank = owner[k];
        if (c->rank == 0)
            sc_emit(c, &ev); /* a stop asked now is seen at the target's first step */
    }
    oc_free(cost);
    oc_free(owner);
    oc_free(all);
    return s;
}

oc_status oc_scale_run(const char *recipe_path, const char *out, const oc_scale_params *params) {
    if (!recipe_path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_scale_run: NULL argument");
    oc_scale_params p = params ? *params : oc_scale_default_params();
    sc_recipe r;
    OC_TRY(sc_recipe_load(recipe_path, &r));
    sc_plan *plan = oc_calloc(1, sizeof *plan);
    sc_result *res = oc_calloc(SC_MAX_RUNS + 1, sizeof *res);
    sc_ctx c;
    memset(&c, 0, sizeof c);
    c.recipe = &r;
    c.plan = plan;
    c.out = out;
    c.params = &p;
    c.t_start = sc_now();
    oc_dist_info job = oc_dist_get_info();
    c.rank = job.rank;
    c.ranks = job.size;
    int rank0 = c.rank == 0; /* writes the study's own files */
    sc_data d;
    memset(&d, 0, sizeof d);
    cJSON *pj = NULL, *prediction = NULL;
    char *plan_path = sc_path(out, "plan.json", NULL), *pred_path = sc_path(out, "prediction.json", NULL),
         *cfg = sc_path(out, "configs", "target");
    /* one process at a time per output folder: a second fails at once, naming the first */
    oc_out_lock *lock = NULL;
    oc_status s = plan && res && plan_path && pred_path && cfg
                      ? (rank0 ? oc_out_lock_acquire(out, &lock) : OC_OK)
                      : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK && rank0)
        s = oc_make_dirs(out);
    s = sc_agree(&c, s);
    oc_scale_event ev;
    memset(&ev, 0, sizeof ev);
    if (s == OC_OK) {
        ev.kind = OC_SCALE_DATA;
        ev.message = r.shapes ? "writing the shapes world's datasets (kept when there already)"
                              : "checking the data";
        ev.eta_s = -1;
        if (p.on_progress && p.on_progress(&ev, p.user_data))
            s = oc_err(OC_ERR_CANCELLED, "scale: stopped");
    }
    /* rank 0 writes the data; the others then find it there */
    if (s == OC_OK && rank0)
        s = sc_data_prepare(&r, out, &d);
    s = sc_agree(&c, s);
    if (s == OC_OK && !rank0)
        s = sc_data_prepare(&r, out, &d);
    s = sc_agree(&c, s);
    /* rank 0 makes the plan (it writes the runs' configs); the others get it */
    if (s == OC_OK)
        s = sc_agree(&c, rank0 ? sc_plan_make(&r, out, d.train, plan) : OC_OK);
    if (s == OC_OK && c.ranks > 1)
        s = oc_dist_bcast(plan, sizeof *plan, 0, "the plan");
    if (s == OC_OK) {
        pj = sc_plan_json(&r, plan);
        if (!rank0)
            ;
        else if (oc_file_exists(plan_path))
            s = check_plan(plan_path, pj);
        else
            s = sc_json_write(plan_path, pj);
        s = sc_agree(&c, s);
    }
    for (size_t k = 0; k <= plan->n_ladder; k++)
        c.compute_total += plan->runs[k].planned_compute;
    if (s == OC_OK) {
        memset(&ev, 0, sizeof ev);
        ev.kind = OC_SCALE_PLAN;
        ev.path = plan_path;
        if (sc_emit(&c, &ev))
            s = oc_err(OC_ERR_CANCELLED, "scale: stopped");
    }
    if (s == OC_OK && p.plan_only)
        goto done;
    if (s == OC_OK)
        s = sc_agree(&c, open_data(&r, &d, cfg, &c));

    /* the ladder, smallest first (shared out among the ranks) */
    if (s == OC_OK)
        s = train_ladder(&c, res);
    if (s != OC_OK) /* agreed, or this rank's alone (the caller ends the job) */
        goto done;

    /* the prediction, before the target starts (rank 0's) */
    if (s == OC_OK && rank0)
        s = load_prediction(pred_path, &c, res, &prediction);
    if (s == OC_OK && rank0 && !prediction) {
        s = sc_predict(&c, res, &prediction);
        if (s == OC_OK)
            s = sc_json_write(pred_path, prediction);
    }
    s = sc_agree(&c, s);
    if (s == OC_OK && rank0) {
        const cJSON *loss = oc_json_get(prediction, "loss");
        memset(&ev, 0, sizeof ev);
        ev.kind = OC_SCALE_PREDICTION;
        ev.run = plan->n_ladder;
        ev.predicted_loss = cJSON_GetNumberValue(oc_json_get(loss, "predicted"));
        ev.ci_low = cJSON_GetNumberValue(oc_json_get(loss, "ci_low"));
        ev.ci_high = cJSON_GetNumberValue(oc_json_get(loss, "ci_high"));
        ev.path = pred_path;
        if (sc_emit(&c, &ev))
            s = oc_err(OC_ERR_CANCELLED, "scale: stopped");
    }
    s = sc_agree(&c, s);
    /* the target: every rank together */
    if (s == OC_OK && !p.stop_before_target)
        s = sc_run_train(&c, plan->n_ladder, &res[plan->n_ladder]);
    if (s == OC_OK && rank0)
        s = sc_report_write(&c, res, prediction);
    s = sc_agree(&c, s);
done:
    oc_out_lock_release(lock);
    cJSON_Delete(pj);
    cJSON_Delete(prediction);
    oc_dataset_free(c.train);
    oc_dataset_free(c.val);
    oc_dataset_free(c.questions);
    sc_data_free(&d);
    oc_free(plan_path);
    oc_free(pred_path);
    oc_free(cfg);
    oc_free(plan);
    oc_free(res);
    sc_recipe_free(&r);
    return s;
}

/* ---- summary ------------------------------------------------------------------------- */

static double jget(const cJSON *o, const char *k) {
    const cJSON *v = oc_json_get(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void sb_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static void sb_add(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    if (!*buf)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        char *nb = oc_realloc(*buf, *cap * 2);
        if (!nb) {
            oc_free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb;
        *cap *= 2;
    }
}

static void pct(char *b, size_t n, double v) {
    if (isfinite(v))
        snprintf(b, n, "%+.2f%%", 100 * v);
    else
        snprintf(b, n, "-");
}

/* "1/NNN" of the target's compute */
static void frac(char *b, size_t n, double f) {
    if (isfinite(f) && f > 0)
        snprintf(b, n, f >= 0.5 ? "%.2f" : "1/%.0f", f >= 0.5 ? f : 1 / f);
    else
        snprintf(b, n, "-");
}

static void fit_lines(char **buf, size_t *len, size_t *cap, const char *what, const cJSON *o,
                      int loss) {
    const cJSON *f = oc_json_get(o, "fit");
    if (!f) {
        const cJSON *e = oc_json_get(o, "error");
        sb_add(buf, len, cap, "%s: no fit (%s)\n", what,
               cJSON_IsString(e) ? e->valuestring : "?");
        return;
    }
    char fr[32], re[32], rr[32];
    frac(fr, sizeof fr, jget(o, "max_fitted_compute") / jget(o, "target_compute"));
    if (loss)
        sb_add(buf, len, cap, "%s: %g runs, the largest %s of the target: L(C) = %.4g * C^%.4f "
               "+ %.4f\n", what, jget(o, "n_runs"), fr, jget(f, "a"), jget(f, "b"), jget(f, "c"));
    else
        sb_add(buf, len, cap, "%s: %g runs, the largest %s of the target: %.4g * C^%.4f\n", what,
               jget(o, "n_runs"), fr, jget(f, "a"), jget(f, "b"));
    pct(re, sizeof re, jget(o, "relative_error"));
    pct(rr, sizeof rr, jget(o, "reducible_relative_error"));
    sb_add(buf, len, cap, "  predicted %.4f [%.4f, %.4f]", jget(o, "predicted"), jget(o, "ci_low"),
           jget(o, "ci_high"));
    if (isfinite(jget(o, "actual"))) {
        sb_add(buf, len, cap, "  actual %.4f  error %s", jget(o, "actual"), re);
        if (loss)
            sb_add(buf, len, cap, "  (reducible part L - c: %s)", rr);
    }
    sb_add(buf, len, cap, "\n");
}

oc_status oc_scale_summary(const char *out, char **text) {
    if (!out || !text)
        return oc_err(OC_ERR_INVALID_ARG, "oc_scale_summary: NULL argument");
    char *rp = sc_path(out, "report.json", NULL), *pp = sc_path(out, "plan.json", NULL);
    if (!rp || !pp) {
        oc_free(rp);
        oc_free(pp);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    int have_report = oc_file_exists(rp);
    cJSON *j = NULL;
    oc_status s = have_report ? oc_json_load(rp, 64u << 20, &j)
                  : oc_file_exists(pp) ? oc_json_load(pp, 64u << 20, &j)
                                       : oc_err(OC_ERR_IO, "%s: no report.json or plan.json", out);
    oc_free(rp);
    oc_free(pp);
    if (s != OC_OK)
        return s;
    size_t cap = 4096, len = 0;
    char *buf = oc_malloc(cap);
    if (buf)
        buf[0] = 0;
    const cJSON *runs = oc_json_get(j, "runs");
    double Ct = NAN;
    for (const cJSON *u = runs ? runs->child : NULL; u; u = u->next)
        if (cJSON_IsString(oc_json_get(u, "role")) &&
            !strcmp(oc_json_get(u, "role")->valuestring, "target"))
            Ct = isfinite(jget(u, "compute")) ? jget(u, "compute") : jget(u, "planned_compute");
    sb_add(&buf, &len, &cap, "%-10s %6s %9s %11s %7s %9s %10s %9s %9s %10s\n", "run", "width",
           "params", "tokens", "steps", "lr", "compute", "of target", "val loss",
           "capability");
    for (const cJSON *u = runs ? runs->child : NULL; u; u = u->next) {
        const cJSON *nm = oc_json_get(u, "name");
        double C = isfinite(jget(u, "compute")) ? jget(u, "compute") : jget(u, "planned_compute");
        char fr[32], loss[32] = "-", capb[32] = "-";
        frac(fr, sizeof fr, C / Ct);
        if (isfinite(jget(u, "final_loss")))
            snprintf(loss, sizeof loss, "%.4f", jget(u, "final_loss"));
        if (isfinite(jget(u, "capability")))
            snprintf(capb, sizeof capb, "%.4f", jget(u, "capability"));
        double tok = isfinite(jget(u, "tokens")) ? jget(u, "tokens") : jget(u, "planned_tokens");
        if (!isfinite(tok))
            tok = jget(u, "tokens");
        sb_add(&buf, &len, &cap, "%-10s %6.0f %9.0f %11.0f %7.0f %9.3g %10.3g %9s %9s %10s\n",
               cJSON_IsString(nm) ? nm->valuestring : "?", jget(u, "width"), jget(u, "params"), tok,
               jget(u, "steps"), jget(u, "lr"), C, fr, loss, capb);
    }
    const cJSON *pred = oc_json_get(j, "prediction");
    if (pred) {
        sb_add(&buf, &len, &cap, "\n");
        fit_lines(&buf, &len, &cap, "loss fit", oc_json_get(pred, "loss"), 1);
        const cJSON *vars = oc_json_get(pred, "variants");
        for (const cJSON *v = vars ? vars->child : NULL; v; v = v->next) {
            char what[64], fr[32];
            frac(fr, sizeof fr, jget(v, "max_compute_fraction"));
            snprintf(what, sizeof what, "variant (runs <= %s)", fr);
            fit_lines(&buf, &len, &cap, what, v, 1);
        }
        const cJSON *capj = oc_json_get(pred, "capability");
        if (capj)
            fit_lines(&buf, &len, &cap, "capability (-mean log p(answer))", capj, 0);
        const cJSON *w = oc_json_get(pred, "written_at");
        if (cJSON_IsString(w))
            sb_add(&buf, &len, &cap, "prediction written %s, before the target started\n",
                   w->valuestring);
    }
    cJSON_Delete(j);
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    *text = buf;
    return OC_OK;
}
