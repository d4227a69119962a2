/* The prediction and the report of a scaling study.
 *
 * The prediction (prediction.json) is made from the ladder alone, before the target
 * starts: L(C) = a C^b + c fitted to the final validation losses of the ladder's runs
 * with at most max_compute_fraction of the target's planned compute (and the same for
 * each variant's smaller fraction), and -mean log p(answer) = alpha C^-k fitted to their
 * capability; both evaluated at the target's planned compute with bootstrap intervals.
 * The report (report.json, report.csv, the charts) adds the target's actual numbers and
 * the errors: relative error of the loss, of its reducible part L - c, and of the
 * capability. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "output.h"
#include "scale_internal.h"

static double target_planned(const sc_ctx *c) {
    return c->plan->runs[c->plan->n_ladder].planned_compute;
}

static cJSON *num_or_null(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static void add_num(cJSON *o, const char *k, double v) {
    cJSON_AddItemToObject(o, k, num_or_null(v));
}

static void add_pair(cJSON *o, const char *k, const double v[2]) {
    cJSON *a = cJSON_AddArrayToObject(o, k);
    cJSON_AddItemToArray(a, num_or_null(v[0]));
    cJSON_AddItemToArray(a, num_or_null(v[1]));
}

static cJSON *fit_json(const oc_powerlaw_result *f, int irreducible) {
    cJSON *o = cJSON_CreateObject();
    add_num(o, "a", f->a);
    add_num(o, "b", f->b);
    add_num(o, "c", f->c);
    add_pair(o, "a_ci", f->a_ci);
    add_pair(o, "b_ci", f->b_ci);
    if (irreducible)
        add_pair(o, "c_ci", f->c_ci);
    add_num(o, "rms_log_residual", f->rms_log_residual);
    add_num(o, "n_points", (double)f->n_points);
    add_num(o, "bootstrap_fits", f->n_bootstrap);
    return o;
}

/* Fits the ladder runs whose counted compute is <= limit: final loss (irreducible term)
 * or capability (pure power law), and predicts at C. NULL and *skip_reason when too few
 * runs qualify. */
static oc_status fit_at(const sc_ctx *c, const sc_result *res, double limit, int capability,
                        double C, cJSON **out) {
    const sc_plan *pl = c->plan;
    double x[SC_MAX_RUNS], y[SC_MAX_RUNS];
    size_t n = 0;
    cJSON *names = cJSON_CreateArray();
    double maxc = 0;
    for (size_t k = 0; k < pl->n_ladder; k++) {
        if (!res[k].done || res[k].compute > limit * (1 + 1e-12))
            continue;
        double v = capability ? res[k].capability : res[k].final_loss;
        if (capability && !res[k].questions)
            continue;
        x[n] = res[k].compute;
        y[n++] = v;
        maxc = res[k].compute > maxc ? res[k].compute : maxc;
        cJSON_AddItemToArray(names, cJSON_CreateString(pl->runs[k].name));
    }
    oc_powerlaw_params fp = c->recipe->fit;
    fp.irreducible = !capability;
    oc_powerlaw *f = NULL;
    oc_status s = oc_powerlaw_fit(x, y, n, &fp, &f);
    if (s != OC_OK) {
        cJSON_Delete(names);
        return oc_err_prefix(s, "%s fit of %zu ladder run%s: ", capability ? "capability" : "loss",
                             n, n == 1 ? "" : "s");
    }
    const oc_powerlaw_result *r = oc_powerlaw_get(f);
    double pred, lo, hi;
    s = oc_powerlaw_predict(f, C, &pred, &lo, &hi);
    cJSON *o = cJSON_CreateObject();
    add_num(o, "max_compute_fraction", limit / target_planned(c));
    cJSON_AddItemToObject(o, "fitted_runs", names);
    add_num(o, "n_runs", (double)n);
    add_num(o, "max_fitted_compute", maxc);
    add_num(o, "compute_ratio", C / maxc);
    cJSON_AddItemToObject(o, "fit", fit_json(r, !capability));
    add_num(o, "target_compute", C);
    add_num(o, "predicted", pred);
    add_num(o, "ci_low", lo);
    add_num(o, "ci_high", hi);
    if (!capability) {
        add_num(o, "predicted_reducible", pred - r->c);
    }
    oc_powerlaw_free(f);
    *out = o;
    return s;
}

oc_status sc_predict(sc_ctx *c, const sc_result *res, cJSON **out) {
    const sc_recipe *r = c->recipe;
    double Ct = target_planned(c);
    cJSON *p = cJSON_CreateObject();
    char when[32];
    sc_iso_time(when, sizeof when);
    cJSON_AddStringToObject(p, "written_at", when);
    cJSON_AddStringToObject(p, "note", "made from the ladder alone, before the target started");
    add_num(p, "target_compute_planned", Ct);
    add_num(p, "ci_level", r->fit.ci_level);
    add_num(p, "huber_delta", r->fit.huber_delta);
    cJSON *loss = NULL, *cap = NULL;
    oc_status s = fit_at(c, res, r->max_fraction * Ct, 0, Ct, &loss);
    if (s == OC_OK)
        cJSON_AddItemToObject(p, "loss", loss);
    cJSON *vars = cJSON_AddArrayToObject(p, "variants");
    for (size_t v = 0; v < r->n_variants && s == OC_OK; v++) {
        cJSON *vl = NULL;
        oc_status sv = fit_at(c, res, r->variants[v] * Ct, 0, Ct, &vl);
        if (sv == OC_OK) {
            cJSON_AddItemToArray(vars, vl);
        } else {
            /* too few runs below this fraction: say so in the report, not fatal */
            cJSON *o = cJSON_CreateObject();
            add_num(o, "max_compute_fraction", r->variants[v]);
            cJSON_AddStringToObject(o, "error", oc_last_error());
            cJSON_AddItemToArray(vars, o);
        }
    }
    int have_cap = c->questions != NULL;
    if (s == OC_OK && have_cap) {
        s = fit_at(c, res, r->max_fraction * Ct, 1, Ct, &cap);
        if (s == OC_OK) {
            cJSON_AddStringToObject(cap, "metric", "-mean over the questions of log p(exact "
                                                   "answer), fitted as alpha * C^-k");
            cJSON_AddItemToObject(p, "capability", cap);
            cJSON *cvars = cJSON_AddArrayToObject(cap, "variants");
            for (size_t v = 0; v < r->n_variants; v++) {
                cJSON *vl = NULL;
                if (fit_at(c, res, r->variants[v] * Ct, 1, Ct, &vl) == OC_OK)
                    cJSON_AddItemToArray(cvars, vl);
            }
        }
    }
    if (s != OC_OK) {
        cJSON_Delete(p);
        return s;
    }
    *out = p;
    return OC_OK;
}

/* ---- report ------------------------------------------------------------------------ */

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = oc_json_get(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Adds actual, relative_error (and the reducible part's) to a prediction object. */
static void add_errors(cJSON *o, double actual, int reducible) {
    double pred = jnum(o, "predicted");
    add_num(o, "actual", actual);
    add_num(o, "relative_error", (pred - actual) / actual);
    if (reducible) {
        double cc = jnum(oc_json_get(o, "fit"), "c");
        double pr = pred - cc, ar = actual - cc;
        add_num(o, "actual_reducible", ar);
        add_num(o, "reducible_relative_error", (pr - ar) / ar);
    }
}

static oc_status write_csv(const char *path, const sc_ctx *c, const sc_result *res) {
    const sc_plan *pl = c->plan;
    size_t cap = 4096, len = 0;
    char *buf = oc_malloc(cap);
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    double Ct = res[pl->n_ladder].done ? res[pl->n_ladder].compute : target_planned(c);
    len += (size_t)snprintf(buf + len, cap - len,
                            "name,role,width,vision_width,params,tokens,steps,lr,compute,"
                            "fraction_of_target,final_loss,capability,mean_pass_rate,"
                            "seconds\n");
    for (size_t k = 0; k <= pl->n_ladder; k++) {
        const sc_run *u = &pl->runs[k];
        const sc_result *q = &res[k];
        if (!q->done)
            continue;
        char capb[32] = "", passb[32] = "";
        if (q->questions) {
            snprintf(capb, sizeof capb, "%.6f", q->capability);
            snprintf(passb, sizeof passb, "%.6f", q->mean_pass_rate);
        }
        if (cap - len < 512) {
            cap *= 2;
            char *nb = oc_realloc(buf, cap);
            if (!nb) {
                oc_free(buf);
                return oc_err(OC_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s,%s,%u,%u,%zu,%llu,%llu,%.6g,%.6e,%.6g,%.6f,%s,%s,%.1f\n",
                                u->name, u->is_target ? "target" : "ladder", u->width,
                                u->vision_width, u->params, (unsigned long long)q->tokens,
                                (unsigned long long)q->steps, u->lr, q->compute,
                                q->compute / Ct, q->final_loss, capb, passb, q->seconds);
    }
    oc_status s = oc_write_file_atomic(path, buf, len);
    oc_free(buf);
    return s;
}

/* ---- charts ------------------------------------------------------------------------- */

#define CURVE_POINTS 200

/* The curve a C^b + c of fit object f over [x0, x1] (log-spaced). */
static void curve(const cJSON *f, double x0, double x1, double *x, double *y) {
    double a = jnum(f, "a"), b = jnum(f, "b"), cc = jnum(f, "c");
    if (!isfinite(cc))
        cc = 0;
    for (int i = 0; i < CURVE_POINTS; i++) {
        x[i] = x0 * pow(x1 / x0, (double)i / (CURVE_POINTS - 1));
        y[i] = a * pow(x[i], b) + cc;
    }
}

/* loss_vs_compute or capability_vs_compute. */
static oc_status chart(const char *path, const sc_ctx *c, const sc_result *res,
                       const cJSON *pred, int capability) {
    const sc_plan *pl = c->plan;
    double lx[SC_MAX_RUNS], ly[SC_MAX_RUNS], vx[SC_MAX_RUNS], vy[SC_MAX_RUNS];
    size_t n = 0, nv = 0;
    double vlimit = 0;
    const cJSON *var = NULL;
    const cJSON *vars = oc_json_get(pred, "variants");
    if (cJSON_IsArray(vars) && cJSON_GetArraySize(vars) > 0)
        var = cJSON_GetArrayItem(vars, 0);
    if (var && !oc_json_get(var, "fit"))
        var = NULL;
    if (var)
        vlimit = jnum(var, "max_fitted_compute");
    for (size_t k = 0; k < pl->n_ladder; k++) {
        if (!res[k].done || (capability && !res[k].questions))
            continue;
        double v = capability ? res[k].capability : res[k].final_loss;
        lx[n] = res[k].compute;
        ly[n++] = v;
        if (var && res[k].compute <= vlimit) {
            vx[nv] = res[k].compute;
            vy[nv++] = v;
        }
    }
    const cJSON *fit = oc_json_get(pred, "fit");
    double Ct = jnum(pred, "target_compute");
    double x0 = lx[0] / 2, x1 = Ct * 3;
    double cx[CURVE_POINTS], cy[CURVE_POINTS], wx[CURVE_POINTS], wy[CURVE_POINTS];
    curve(fit, x0, x1, cx, cy);
    if (var)
        curve(oc_json_get(var, "fit"), x0, x1, wx, wy);
    double px[1] = {Ct}, py[1] = {jnum(pred, "predicted")}, plo[1] = {jnum(pred, "ci_low")},
           phi[1] = {jnum(pred, "ci_high")};
    double qx[1] = {Ct * 1.12}, qy[1] = {var ? jnum(var, "predicted") : NAN},
           qlo[1] = {var ? jnum(var, "ci_low") : NAN}, qhi[1] = {var ? jnum(var, "ci_high") : NAN};
    const sc_result *t = &res[pl->n_ladder];
    double ax[1] = {t->compute}, ay[1] = {capability ? t->capability : t->final_loss};
    char lab_fit[160], lab_var[160], lab_pred[96], lab_vpred[96], lab_var_runs[96];
    double fa = jnum(fit, "a"), fb = jnum(fit, "b"), fc = jnum(fit, "c");
    if (capability)
        snprintf(lab_fit, sizeof lab_fit, "fit %.3g C^%.3f (runs <= 1/%.0f)", fa, fb,
                 Ct / jnum(pred, "max_fitted_compute"));
    else
        snprintf(lab_fit, sizeof lab_fit, "fit %.3g C^%.3f + %.3f (runs <= 1/%.0f)", fa, fb, fc,
                 Ct / jnum(pred, "max_fitted_compute"));
    if (var) {
        const cJSON *vf = oc_json_get(var, "fit");
        snprintf(lab_var, sizeof lab_var, "variant fit (runs <= 1/%.0f)",
                 Ct / jnum(var, "max_fitted_compute"));
        (void)vf;
    }
    snprintf(lab_pred, sizeof lab_pred, "prediction (%.0f%% interval)",
             100 * c->recipe->fit.ci_level);
    snprintf(lab_vpred, sizeof lab_vpred, "variant's prediction");
    snprintf(lab_var_runs, sizeof lab_var_runs, "runs the variant fits");
    oc_chart_series s[8];
    size_t ns = 0;
    s[ns++] = (oc_chart_series){lab_fit, cx, cy, NULL, NULL, CURVE_POINTS, OC_SERIES_DASHED,
                                OC_MARK_CIRCLE, 0x555555, 1.5, 0};
    if (var)
        s[ns++] = (oc_chart_series){lab_var, wx, wy, NULL, NULL, CURVE_POINTS, OC_SERIES_LINE,
                                    OC_MARK_CIRCLE, 0xff9f40, 1.2, 0};
    s[ns++] = (oc_chart_series){"ladder runs", lx, ly, NULL, NULL, n, OC_SERIES_MARKERS,
                                OC_MARK_CIRCLE, 0x1f77b4, 0, 5};
    if (var && nv)
        s[ns++] = (oc_chart_series){lab_var_runs, vx, vy, NULL, NULL, nv,
                                    OC_SERIES_OPEN_MARKERS, OC_MARK_CIRCLE, 0xff7f0e, 1.5, 8};
    s[ns++] = (oc_chart_series){lab_pred, px, py, plo, phi, 1, OC_SERIES_OPEN_MARKERS,
                                OC_MARK_DIAMOND, 0xd62728, 2, 7};
    if (var)
        s[ns++] = (oc_chart_series){lab_vpred, qx, qy, qlo, qhi, 1, OC_SERIES_OPEN_MARKERS,
                                    OC_MARK_DIAMOND, 0xff7f0e, 2, 6};
    if (t->done)
        s[ns++] = (oc_chart_series){"target run (actual)", ax, ay, NULL, NULL, 1,
                                    OC_SERIES_MARKERS, OC_MARK_STAR, 0x2ca02c, 1, 8};
    oc_chart ch = oc_chart_default();
    ch.title = capability ? "Capability: -mean log p(exact answer) of held-out questions"
                          : "Final validation loss against training compute";
    ch.x_label = "training compute (FLOPs, counted by the trainer)";
    ch.y_label = capability ? "-mean log pass rate" : "validation loss (nats per token)";
    ch.log_x = ch.log_y = 1;
    ch.series = s;
    ch.n_series = ns;
    ch.legend_bottom_left = 1;
    return oc_chart_write(&ch, path);
}

/* ---- report.json -------------------------------------------------------------------- */

static cJSON *runs_json(const sc_ctx *c, const sc_result *res, double Ct) {
    const sc_plan *pl = c->plan;
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; k <= pl->n_ladder; k++) {
        const sc_run *u = &pl->runs[k];
        const sc_result *q = &res[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", u->name);
        cJSON_AddStringToObject(o, "role", u->is_target ? "target" : "ladder");
        add_num(o, "width", u->width);
        add_num(o, "vision_width", u->vision_width);
        add_num(o, "params", (double)u->params);
        add_num(o, "tokens", q->done ? (double)q->tokens : NAN);
        add_num(o, "planned_tokens", (double)u->tokens);
        add_num(o, "steps", (double)u->steps);
        add_num(o, "warmup", (double)u->warmup);
        add_num(o, "lr", u->lr);
        add_num(o, "init_std", u->init_std);
        add_num(o, "compute", q->done ? q->compute : NAN);
        add_num(o, "planned_compute", u->planned_compute);
        add_num(o, "fraction_of_target", q->done ? q->compute / Ct : NAN);
        add_num(o, "final_loss", q->done ? q->final_loss : NAN);
        if (q->questions) {
            add_num(o, "capability", q->capability);
            add_num(o, "mean_pass_rate", q->mean_pass_rate);
        }
        add_num(o, "seconds", q->done ? q->seconds : NAN);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

oc_status sc_report_write(sc_ctx *c, const sc_result *res, const cJSON *prediction) {
    const sc_plan *pl = c->plan;
    const sc_result *t = &res[pl->n_ladder];
    double Ct = t->done ? t->compute : target_planned(c);
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "recipe", cJSON_Duplicate(c->recipe->json, 1));
    cJSON *plan = sc_plan_json(c->recipe, pl);
    cJSON_AddItemToObject(rep, "ladder_rule", cJSON_Duplicate(oc_json_get(plan, "rule"), 1));
    cJSON_Delete(plan);
    cJSON_AddItemToObject(rep, "runs", runs_json(c, res, Ct));
    cJSON *pred = cJSON_Duplicate(prediction, 1);
    cJSON *loss = cJSON_GetObjectItemCaseSensitive(pred, "loss");
    const cJSON *lf = oc_json_get(loss, "fit");
    cJSON *fit = cJSON_CreateObject();
    add_num(fit, "a", jnum(lf, "a"));
    add_num(fit, "b", jnum(lf, "b"));
    add_num(fit, "c", jnum(lf, "c"));
    cJSON_AddItemToObject(rep, "fit", fit);
    add_num(rep, "target_compute", Ct);
    add_num(rep, "target_compute_planned", target_planned(c));
    add_num(rep, "max_fitted_compute", jnum(loss, "max_fitted_compute"));
    add_num(rep, "compute_ratio", Ct / jnum(loss, "max_fitted_compute"));
    add_num(rep, "n_fitted_runs", jnum(loss, "n_runs"));
    add_num(rep, "predicted_loss", jnum(loss, "predicted"));
    add_num(rep, "ci_low", jnum(loss, "ci_low"));
    add_num(rep, "ci_high", jnum(loss, "ci_high"));
    add_num(rep, "actual_loss", t->done ? t->final_loss : NAN);
    double pl_ = jnum(loss, "predicted"), cc = jnum(lf, "c");
    add_num(rep, "relative_error", t->done ? (pl_ - t->final_loss) / t->final_loss : NAN);
    add_num(rep, "predicted_reducible", pl_ - cc);
    add_num(rep, "actual_reducible", t->done ? t->final_loss - cc : NAN);
    add_num(rep, "reducible_relative_error",
            t->done ? ((pl_ - cc) - (t->final_loss - cc)) / (t->final_loss - cc) : NAN);
    if (t->done) {
        add_errors(loss, t->final_loss, 1);
        cJSON *vars = cJSON_GetObjectItemCaseSensitive(pred, "variants");
        for (cJSON *v = vars ? vars->child : NULL; v; v = v->next)
            if (oc_json_get(v, "fit"))
                add_errors(v, t->final_loss, 1);
        cJSON *cap = cJSON_GetObjectItemCaseSensitive(pred, "capability");
        if (cap && t->questions) {
            add_errors(cap, t->capability, 0);
            add_num(cap, "actual_mean_pass_rate", t->mean_pass_rate);
            cJSON *cv = cJSON_GetObjectItemCaseSensitive(cap, "variants");
            for (cJSON *v = cv ? cv->child : NULL; v; v = v->next)
                add_errors(v, t->capability, 0);
        }
    }
    cJSON_AddItemToObject(rep, "prediction", pred);
    double ladder_s = 0;
    for (size_t k = 0; k < pl->n_ladder; k++)
        ladder_s += res[k].done ? res[k].seconds : 0;
    cJSON *tm = cJSON_AddObjectToObject(rep, "training_seconds");
    add_num(tm, "ladder", ladder_s);
    add_num(tm, "target", t->done ? t->seconds : NAN);
    char when[32];
    sc_iso_time(when, sizeof when);
    cJSON_AddStringToObject(rep, "written_at", when);

    char *pj = sc_path(c->out, "report.json", NULL), *pc = sc_path(c->out, "report.csv", NULL),
         *pl1 = sc_path(c->out, "loss_vs_compute.png", NULL),
         *pl2 = sc_path(c->out, "capability_vs_compute.png", NULL);
    oc_status s = pj && pc && pl1 && pl2 ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK)
        s = sc_json_write(pj, rep);
    if (s == OC_OK)
        s = write_csv(pc, c, res);
    cJSON *lossp = cJSON_Duplicate(loss, 1);
    cJSON_AddItemToObject(lossp, "variants",
                          cJSON_Duplicate(oc_json_get(pred, "variants"), 1));
    if (s == OC_OK)
        s = chart(pl1, c, res, lossp, 0);
    cJSON_Delete(lossp);
    const cJSON *cap = oc_json_get(pred, "capability");
    if (s == OC_OK && cap)
        s = chart(pl2, c, res, cap, 1);
    if (s == OC_OK) {
        oc_scale_event ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = OC_SCALE_REPORT;
        ev.path = pj;
        ev.run = pl->n_ladder;
        sc_emit(c, &ev);
    }
    oc_free(pj);
    oc_free(pc);
    oc_free(pl1);
    oc_free(pl2);
    cJSON_Delete(rep);
    return s;
}
