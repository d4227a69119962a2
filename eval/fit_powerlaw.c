/* Power-law fits L(C) = a * C^b + c, as the Chinchilla paper's third approach fits its
 * parametric loss: minimise the Huber loss of the residuals of log L, where log L is
 * predicted as log(exp(log a + b log C) + exp(log c)) (a, c > 0 by construction), from a
 * grid of starting points, with GSL's BFGS2 minimiser; then a residual bootstrap gives
 * intervals for the parameters and for predictions.
 *
 * Conditioning: compute spans many decades, so the fit works with x = log C - x0, where
 * x0 is the mean log C of the points, and alpha = log a + b x0; the result is converted
 * back. The objective is the Huber loss divided by delta (so that its scale does not
 * depend on delta): r^2 / (2 delta) inside [-delta, delta], |r| - delta / 2 outside. */
#include <math.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "alloc.h"
#include "error.h"
#include "rng.h"

#define MAX_POINTS 100000
#define MAX_BOOTSTRAP 100000
#define MAX_ITER 2000

struct oc_powerlaw {
    oc_powerlaw_result r;
    oc_powerlaw_params p;
    double x0;           /* mean log C of the points */
    size_t np;           /* parameters: 3 with the irreducible term, else 2 */
    double theta[3];     /* alpha, b, e (= log c) of the fit */
    double *boot;        /* (n_bootstrap, 3) the refits' theta */
};

oc_powerlaw_params oc_powerlaw_default_params(void) {
    oc_powerlaw_params p;
    memset(&p, 0, sizeof p);
    p.irreducible = 1;
    p.huber_delta = 0.01;
    p.bootstrap = 1000;
    p.ci_level = 0.95;
    p.seed = 0;
    return p;
}

/* ---- the model and the objective --------------------------------------------------- */

typedef struct {
    const double *x, *y; /* (n) centred log compute, log loss */
    size_t n, np;
    double delta;
} fit_data;

/* Predicted log L at x and, when d != NULL, its derivatives by theta. */
static double model_log(const double *th, size_t np, double x, double *d) {
    double u = th[0] + th[1] * x;
    if (np == 2) {
        if (d)
            d[0] = 1, d[1] = x;
        return u;
    }
    /* log(exp(u) + exp(e)) without overflow; w = d/du */
    double e = th[2], m = u > e ? u : e;
    double lse = m + log(exp(u - m) + exp(e - m));
    if (d) {
        double w = exp(u - lse);
        d[0] = w;
        d[1] = w * x;
        d[2] = 1 - w;
    }
    return lse;
}

static double huber(double r, double delta) {
    double a = fabs(r);
    return a <= delta ? r * r / (2 * delta) : a - delta / 2;
}

static double huber_psi(double r, double delta) {
    return r > delta ? 1 : r < -delta ? -1 : r / delta;
}

static void objective_fdf(const gsl_vector *v, void *params, double *f, gsl_vector *g) {
    const fit_data *fd = params;
    double th[3] = {0, 0, 0}, d[3], grad[3] = {0, 0, 0}, sum = 0;
    for (size_t k = 0; k < fd->np; k++)
        th[k] = gsl_vector_get(v, k);
    for (size_t i = 0; i < fd->n; i++) {
        double r = model_log(th, fd->np, fd->x[i], g ? d : NULL) - fd->y[i];
        sum += huber(r, fd->delta);
        if (g) {
            double psi = huber_psi(r, fd->delta);
            for (size_t k = 0; k < fd->np; k++)
                grad[k] += psi * d[k];
        }
    }
    if (f)
        *f = isfinite(sum) ? sum : GSL_POSINF;
    if (g)
        for (size_t k = 0; k < fd->np; k++)
            gsl_vector_set(g, k, grad[k]);
}

static double objective_f(const gsl_vector *v, void *params) {
    double f;
    objective_fdf(v, params, &f, NULL);
    return f;
}

static void objective_df(const gsl_vector *v, void *params, gsl_vector *g) {
    objective_fdf(v, params, NULL, g);
}

/* BFGS2 from start; the minimum in th and *fmin. 0 when no finite minimum was found. */
static int minimise(gsl_multimin_fdfminimizer *mz, const fit_data *fd, const double *start,
                    double *th, double *fmin) {
    gsl_multimin_function_fdf fn = {objective_f, objective_df, objective_fdf, fd->np,
                                    (void *)fd};
    double buf[3];
    gsl_vector_view x = gsl_vector_view_array(buf, fd->np);
    for (size_t k = 0; k < fd->np; k++)
        buf[k] = start[k];
    double f0 = objective_f(&x.vector, (void *)fd);
    if (!isfinite(f0))
        return 0;
    if (gsl_multimin_fdfminimizer_set(mz, &fn, &x.vector, 0.01, 0.1) != GSL_SUCCESS)
        return 0;
    for (int it = 0; it < MAX_ITER; it++) {
        int st = gsl_multimin_fdfminimizer_iterate(mz);
        if (st != GSL_SUCCESS) /* GSL_ENOPROG: no better point along the line: done */
            break;
        if (gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(mz), 1e-10) ==
            GSL_SUCCESS)
            break;
    }
    double f = gsl_multimin_fdfminimizer_minimum(mz);
    const gsl_vector *xm = gsl_multimin_fdfminimizer_x(mz);
    for (size_t k = 0; k < fd->np; k++)
        th[k] = gsl_vector_get(xm, k);
    if (!isfinite(f) || !isfinite(th[0]) || !isfinite(th[1]) ||
        (fd->np == 3 && !isfinite(th[2])))
        return 0;
    *fmin = f;
    return 1;
}

/* Ordinary least squares of y on x: slope and intercept (x centred: intercept = mean). */
static void ols(const double *x, const double *y, size_t n, double *alpha, double *b) {
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (size_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++)
        sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    *b = sxx > 0 ? sxy / sxx : 0;
    *alpha = my - *b * mx;
}

/* The best of several starts. With the irreducible term: for c0 a fraction of the
 * smallest loss, the straight line through log(L - c0) and, when grid, a grid of slopes
 * with the intercept through the mean; without: the straight line through log L. An
 * extra start (a bootstrap replicate starts from the fit) is tried first. */
static int fit_multistart(gsl_multimin_fdfminimizer *mz, const fit_data *fd,
                          const double *extra_start, int grid, double *best, double *fbest,
                          uint32_t *n_starts, double *tmp) {
    static const double c_frac[] = {0.0, 0.25, 0.5, 0.75, 0.9, 0.97};
    static const double slopes[] = {-0.02, -0.05, -0.1, -0.2, -0.35, -0.5, -0.8, -1.2, 0.1,
                                    0.3};
    size_t n = fd->n;
    double ymin = fd->y[0];
    for (size_t i = 1; i < n; i++)
        ymin = fd->y[i] < ymin ? fd->y[i] : ymin;
    double lmin = exp(ymin);
    int found = 0;
    uint32_t tried = 0;
    double start[3], th[3], f;
#define TRY()                                                          \
    do {                                                               \
        tried++;                                                       \
        if (minimise(mz, fd, start, th, &f) && (!found || f < *fbest)) { \
            memcpy(best, th, sizeof th);                               \
            *fbest = f;                                                \
            found = 1;                                                 \
        }                                                              \
    } while (0)
    if (extra_start) {
        memcpy(start, extra_start, sizeof start);
        TRY();
    }
    if (fd->np == 2) {
        ols(fd->x, fd->y, n, &start[0], &start[1]);
        start[2] = 0;
        TRY();
    } else {
        for (size_t k = 0; k < sizeof c_frac / sizeof c_frac[0]; k++) {
            double c0 = c_frac[k] * lmin;
            for (size_t i = 0; i < n; i++)
                tmp[i] = log(exp(fd->y[i]) - c0);
            ols(fd->x, tmp, n, &start[0], &start[1]);
            start[2] = log(c0 > 0 ? c0 : 1e-3 * lmin);
            TRY();
            for (size_t s = 0; grid && s < sizeof slopes / sizeof slopes[0]; s++) {
                double my = 0;
                for (size_t i = 0; i < n; i++)
                    my += tmp[i];
                start[0] = my / (double)n; /* x is centred */
                start[1] = slopes[s];
                TRY();
            }
        }
    }
#undef TRY
    *n_starts = tried;
    return found;
}

/* ---- checks ---------------------------------------------------------------------- */

static oc_status check_points(const double *compute, const double *loss, size_t n,
                              size_t np) {
    if (!compute || !loss)
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: NULL points");
    if (n < 3)
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: %zu point%s; at least 3 are needed",
                      n, n == 1 ? "" : "s");
    if (n > MAX_POINTS)
        return oc_err(OC_ERR_LIMIT, "power-law fit: %zu points (at most %d)", n, MAX_POINTS);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(compute[i]) || compute[i] <= 0)
            return oc_err(OC_ERR_INVALID_ARG, "power-law fit: point %zu: compute must be "
                          "positive and finite (got %g)", i + 1, compute[i]);
        if (!isfinite(loss[i]) || loss[i] <= 0)
            return oc_err(OC_ERR_INVALID_ARG, "power-law fit: point %zu: loss must be "
                          "positive and finite (got %g)", i + 1, loss[i]);
    }
    /* distinct compute values: a curve of np parameters needs np of them */
    size_t distinct = 0;
    for (size_t i = 0; i < n && distinct < np; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = compute[j] == compute[i];
        distinct += !seen;
    }
    if (distinct < np)
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: compute takes %zu different "
                      "value%s; a fit with %zu parameters needs at least %zu", distinct,
                      distinct == 1 ? "" : "s", np, np);
    double lo = loss[0], hi = loss[0];
    for (size_t i = 1; i < n; i++)
        lo = loss[i] < lo ? loss[i] : lo, hi = loss[i] > hi ? loss[i] : hi;
    if (hi - lo <= 1e-9 * hi)
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: the loss is %g at every point: a "
                      "flat curve has no power law", lo);
    return OC_OK;
}

/* ---- the fit ---------------------------------------------------------------------- */

static void to_abc(const oc_powerlaw *f, const double *th, double *a, double *b, double *c) {
    *b = th[1];
    *a = exp(th[0] - th[1] * f->x0);
    *c = f->np == 3 ? exp(th[2]) : 0;
}

/* Percentile interval of v (n values, sorted in place). */
static void interval(double *v, size_t n, double level, double out[2]) {
    if (n < 2) {
        out[0] = out[1] = NAN;
        return;
    }
    gsl_sort(v, 1, n);
    out[0] = gsl_stats_quantile_from_sorted_data(v, 1, n, (1 - level) / 2);
    out[1] = gsl_stats_quantile_from_sorted_data(v, 1, n, (1 + level) / 2);
}

static oc_status check_params(const oc_powerlaw_params *p) {
    if (!(p->huber_delta > 0) || !isfinite(p->huber_delta))
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: huber_delta must be > 0");
    if (!(p->ci_level > 0 && p->ci_level < 1))
        return oc_err(OC_ERR_INVALID_ARG, "power-law fit: ci_level must be in (0, 1)");
    if (p->bootstrap > MAX_BOOTSTRAP)
        return oc_err(OC_ERR_LIMIT, "power-law fit: at most %d bootstrap refits",
                      MAX_BOOTSTRAP);
    return OC_OK;
}

/* The bootstrap: log L*_i = fit_i + r_j * sqrt(n / (n - np)), r_j drawn with replacement
 * from the fit's log residuals (inflated for the degrees of freedom the fit used), each
 * replicate refitted from the fit and from the grid. */
static oc_status bootstrap(oc_powerlaw *f, gsl_multimin_fdfminimizer *mz, const double *x,
                           const double *y, size_t n, double *work) {
    size_t np = f->np, B = f->p.bootstrap;
    f->r.n_bootstrap = 0;
    if (B == 0 || n <= np)
        return OC_OK;
    double *fitted = work, *resid = work + n, *ys = work + 2 * n, *tmp = work + 3 * n;
    double infl = sqrt((double)n / (double)(n - np));
    for (size_t i = 0; i < n; i++) {
        fitted[i] = model_log(f->theta, np, x[i], NULL);
        resid[i] = (y[i] - fitted[i]) * infl;
    }
    f->boot = oc_calloc(B, 3 * sizeof(double));
    if (!f->boot)
        return oc_err(OC_ERR_NOMEM, "power-law fit: out of memory for %zu bootstrap fits", B);
    oc_rng rng;
    oc_rng_seed(&rng, f->p.seed);
    fit_data fd = {x, ys, n, np, f->p.huber_delta};
    size_t ok = 0;
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; i < n; i++)
            ys[i] = fitted[i] + resid[oc_rng_next(&rng) % n];
        double th[3], fv;
        uint32_t starts;
        /* the fit's optimum first: replicates are small perturbations of the data */
        if (fit_multistart(mz, &fd, f->theta, 0, th, &fv, &starts, tmp))
            memcpy(f->boot + 3 * ok++, th, sizeof th);
    }
    f->r.n_bootstrap = (uint32_t)ok;
    double *va = oc_malloc(3 * (ok ? ok : 1) * sizeof(double));
    if (!va)
        return oc_err(OC_ERR_NOMEM, "power-law fit: out of memory");
    double *vb = va + ok, *vc = va + 2 * ok;
    for (size_t k = 0; k < ok; k++)
        to_abc(f, f->boot + 3 * k, &va[k], &vb[k], &vc[k]);
    interval(va, ok, f->p.ci_level, f->r.a_ci);
    interval(vb, ok, f->p.ci_level, f->r.b_ci);
    if (np == 3)
        interval(vc, ok, f->p.ci_level, f->r.c_ci);
    oc_free(va);
    return OC_OK;
}

oc_status oc_powerlaw_fit(const double *compute, const double *loss, size_t n,
                          const oc_powerlaw_params *params, oc_powerlaw **out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_powerlaw_fit: NULL output");
    oc_powerlaw_params p = params ? *params : oc_powerlaw_default_params();
    OC_TRY(check_params(&p));
    size_t np = p.irreducible ? 3 : 2;
    OC_TRY(check_points(compute, loss, n, np));

    oc_powerlaw *f = oc_calloc(1, sizeof *f);
    double *work = oc_malloc(6 * n * sizeof(double));
    if (!f || !work) {
        oc_free(f);
        oc_free(work);
        return oc_err(OC_ERR_NOMEM, "power-law fit: out of memory");
    }
    double *x = work, *y = work + n;
    f->p = p;
    f->np = np;
    for (size_t i = 0; i < n; i++)
        f->x0 += log(compute[i]);
    f->x0 /= (double)n;
    for (size_t i = 0; i < n; i++) {
        x[i] = log(compute[i]) - f->x0;
        y[i] = log(loss[i]);
    }

    /* GSL's default error handler aborts the process: off while fitting */
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    gsl_multimin_fdfminimizer *mz =
        gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, np);
    oc_status s = OC_OK;
    if (!mz) {
        s = oc_err(OC_ERR_NOMEM, "power-law fit: out of memory for the minimiser");
    } else {
        fit_data fd = {x, y, n, np, p.huber_delta};
        double fbest = 0;
        if (!fit_multistart(mz, &fd, NULL, 1, f->theta, &fbest, &f->r.n_starts, work + 2 * n))
            s = oc_err(OC_ERR_INVALID_ARG, "power-law fit: no start of the minimiser reached "
                       "a finite fit of these %zu points", n);
        else
            f->r.objective = fbest * p.huber_delta;
    }
    if (s == OC_OK) {
        to_abc(f, f->theta, &f->r.a, &f->r.b, &f->r.c);
        if (!isfinite(f->r.a) || f->r.a <= 0)
            s = oc_err(OC_ERR_INVALID_ARG, "power-law fit: the coefficient a is out of range "
                       "(b = %g): the points do not follow a power law", f->r.b);
    }
    if (s == OC_OK) {
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            double r = y[i] - model_log(f->theta, np, x[i], NULL);
            ss += r * r;
        }
        f->r.rms_log_residual = sqrt(ss / (double)n);
        f->r.n_points = n;
        f->r.a_ci[0] = f->r.a_ci[1] = f->r.b_ci[0] = f->r.b_ci[1] = NAN;
        f->r.c_ci[0] = f->r.c_ci[1] = np == 3 ? NAN : 0;
        s = bootstrap(f, mz, x, y, n, work + 2 * n);
    }
    gsl_multimin_fdfminimizer_free(mz);
    gsl_set_error_handler(old);
    oc_free(work);
    if (s != OC_OK) {
        oc_powerlaw_free(f);
        return s;
    }
    *out = f;
    return OC_OK;
}

void oc_powerlaw_free(oc_powerlaw *f) {
    if (!f)
        return;
    oc_free(f->boot);
    oc_free(f);
}

const oc_powerlaw_result *oc_powerlaw_get(const oc_powerlaw *f) { return f ? &f->r : NULL; }

double oc_powerlaw_value(const oc_powerlaw *f, double compute) {
    if (!f || !(compute > 0))
        return NAN;
    return exp(model_log(f->theta, f->np, log(compute) - f->x0, NULL));
}

oc_status oc_powerlaw_predict(const oc_powerlaw *f, double compute, double *value,
                              double *ci_low, double *ci_high) {
    if (!f)
        return oc_err(OC_ERR_INVALID_ARG, "oc_powerlaw_predict: NULL fit");
    if (!isfinite(compute) || compute <= 0)
        return oc_err(OC_ERR_INVALID_ARG, "power-law prediction: compute must be positive "
                      "and finite (got %g)", compute);
    double x = log(compute) - f->x0, ci[2] = {NAN, NAN};
    size_t B = f->r.n_bootstrap;
    if (B >= 2) {
        double *v = oc_malloc(B * sizeof(double));
        if (!v)
            return oc_err(OC_ERR_NOMEM, "power-law prediction: out of memory");
        for (size_t k = 0; k < B; k++)
            v[k] = exp(model_log(f->boot + 3 * k, f->np, x, NULL));
        interval(v, B, f->p.ci_level, ci);
        oc_free(v);
    }
    if (value)
        *value = exp(model_log(f->theta, f->np, x, NULL));
    if (ci_low)
        *ci_low = ci[0];
    if (ci_high)
        *ci_high = ci[1];
    return OC_OK;
}
