/* The power-law fit (eval/fit_powerlaw.c) on synthetic points drawn from known a, b, c,
 * and the CSV reader (eval/fit_csv.c).
 *
 * Tolerances are derived, not picked: for points with multiplicative noise of standard
 * deviation sigma (log L_i = log f(C_i) + sigma * z_i), the linearised (Gauss-Newton)
 * covariance of theta = (log a, b, log c) is sigma^2 (J^T J)^-1, J_ij = d log f(C_i) /
 * d theta_j; the standard error of any function g(theta) (a parameter, or log f at a
 * compute 1000x beyond the data) is sqrt(grad g^T cov grad g). A fit passes when it is
 * within 4 standard errors (a 4-sigma miss has probability 6e-5 for a Gaussian
 * estimator; the draws are seeded, so the test is deterministic). The Huber loss with
 * delta = 0.01 at sigma = 0.005 is least squares for nearly every point, so the
 * linearised covariance is the right yardstick. Noise-free points must be recovered to
 * 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "testutil.h"

/* a, b, c of the synthetic curve: the shape of a ladder's loss (L from ~1.4 to ~0.5 over
 * the data, c = 0.3) */
#define TRUE_A 2.0e3
#define TRUE_B (-0.3)
#define TRUE_C 0.3
#define N_POINTS 9
#define C_MIN 1e10
#define C_STEP 2.0 /* compute ratio between successive points (9 points: 2.4 decades) */
#define SIGMA 0.005

static double truth(double C) { return TRUE_A * pow(C, TRUE_B) + TRUE_C; }

static void points(double *C, double *L, size_t n, double sigma, uint64_t seed) {
    oc_rng r;
    oc_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        C[i] = C_MIN * pow(C_STEP, (double)i);
        L[i] = truth(C[i]) * exp(sigma * oc_rng_normal(&r));
    }
}

/* Gradient of log f(C) by (log a, b, log c) at the true parameters. */
static void dlogf(double C, double *g) {
    double red = TRUE_A * pow(C, TRUE_B), f = red + TRUE_C;
    g[0] = red / f;
    g[1] = red / f * log(C);
    g[2] = TRUE_C / f;
}

/* Inverse of a symmetric positive definite 3x3 matrix. */
static void inv3(const double m[9], double o[9]) {
    double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                 m[2] * (m[3] * m[7] - m[4] * m[6]);
    o[0] = (m[4] * m[8] - m[5] * m[7]) / det;
    o[1] = (m[2] * m[7] - m[1] * m[8]) / det;
    o[2] = (m[1] * m[5] - m[2] * m[4]) / det;
    o[3] = (m[5] * m[6] - m[3] * m[8]) / det;
    o[4] = (m[0] * m[8] - m[2] * m[6]) / det;
    o[5] = (m[2] * m[3] - m[0] * m[5]) / det;
    o[6] = (m[3] * m[7] - m[4] * m[6]) / det;
    o[7] = (m[1] * m[6] - m[0] * m[7]) / det;
    o[8] = (m[0] * m[4] - m[1] * m[3]) / det;
}

/* sigma^2 (J^T J)^-1 for the points C (n). */
static void covariance(const double *C, size_t n, double sigma, double cov[9]) {
    double jtj[9] = {0};
    for (size_t i = 0; i < n; i++) {
        double g[3];
        dlogf(C[i], g);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                jtj[3 * r + c] += g[r] * g[c];
    }
    inv3(jtj, cov);
    for (int k = 0; k < 9; k++)
        cov[k] *= sigma * sigma;
}

static double quad(const double cov[9], const double g[3]) {
    double s = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            s += g[r] * cov[3 * r + c] * g[c];
    return s;
}

static oc_powerlaw *fit(const double *C, const double *L, size_t n, uint32_t boot) {
    oc_powerlaw_params p = oc_powerlaw_default_params();
    p.bootstrap = boot;
    p.seed = 5;
    oc_powerlaw *f = NULL;
    if (oc_powerlaw_fit(C, L, n, &p, &f) != OC_OK)
        fail_msg("fit: %s", oc_last_error());
    return f;
}

static void test_exact_points(void **state) {
    (void)state;
    double C[N_POINTS], L[N_POINTS];
    points(C, L, N_POINTS, 0, 1);
    oc_powerlaw *f = fit(C, L, N_POINTS, 0);
    const oc_powerlaw_result *r = oc_powerlaw_get(f);
    assert_true(fabs(r->a / TRUE_A - 1) < 1e-6);
    assert_true(fabs(r->b - TRUE_B) < 1e-6);
    assert_true(fabs(r->c / TRUE_C - 1) < 1e-6);
    assert_true(r->rms_log_residual < 1e-9);
    double big = C[N_POINTS - 1] * 1000;
    assert_true(fabs(oc_powerlaw_value(f, big) / truth(big) - 1) < 1e-6);
    oc_powerlaw_free(f);
}

static void test_noisy_points(void **state) {
    (void)state;
    double C[N_POINTS], L[N_POINTS], cov[9];
    points(C, L, N_POINTS, SIGMA, 42);
    covariance(C, N_POINTS, SIGMA, cov);
    oc_powerlaw *f = fit(C, L, N_POINTS, 400);
    const oc_powerlaw_result *r = oc_powerlaw_get(f);
    double se_loga = sqrt(cov[0]), se_b = sqrt(cov[4]), se_logc = sqrt(cov[8]);
    print_message("fit a %.4g b %.4f c %.4f; errors in standard errors: log a %.2f, b %.2f, "
                  "log c %.2f\n", r->a, r->b, r->c, (log(r->a) - log(TRUE_A)) / se_loga,
                  (r->b - TRUE_B) / se_b, (log(r->c) - log(TRUE_C)) / se_logc);
    assert_true(fabs(log(r->a) - log(TRUE_A)) < 4 * se_loga);
    assert_true(fabs(r->b - TRUE_B) < 4 * se_b);
    assert_true(fabs(log(r->c) - log(TRUE_C)) < 4 * se_logc);

    /* 1000x beyond the largest point */
    double big = C[N_POINTS - 1] * 1000, g[3], pred, lo, hi;
    dlogf(big, g);
    double se_pred = sqrt(quad(cov, g));
    assert_int_equal(oc_powerlaw_predict(f, big, &pred, &lo, &hi), OC_OK);
    print_message("1000x: predicted %.5f true %.5f (log error %.2f standard errors of %.4f), "
                  "interval [%.5f, %.5f]\n", pred, truth(big),
                  (log(pred) - log(truth(big))) / se_pred, se_pred, lo, hi);
    assert_true(fabs(log(pred) - log(truth(big))) < 4 * se_pred);
    /* the bootstrap interval is about the linearised one: its half-width within a
     * factor 3 of 1.96 standard errors (the bootstrap sees only 9 residuals) */
    double half = (log(hi) - log(lo)) / 2;
    assert_true(lo < pred && pred < hi);
    assert_true(half > 1.96 * se_pred / 3 && half < 1.96 * se_pred * 3);
    assert_true(r->n_bootstrap > 390);
    assert_true(r->a_ci[0] < r->a && r->a < r->a_ci[1]);
    oc_powerlaw_free(f);
}

/* Over 40 independent draws, the 95% bootstrap interval of the 1000x prediction covers
 * the truth at least 28 times: coverage of a residual bootstrap with 9 points and 3
 * parameters runs below nominal, but a binomial(40, 0.85) count falls under 28 with
 * probability 0.003. */
static void test_interval_coverage(void **state) {
    (void)state;
    int covered = 0;
    for (int k = 0; k < 40; k++) {
        double C[N_POINTS], L[N_POINTS], pred, lo, hi;
        points(C, L, N_POINTS, SIGMA, 100 + (uint64_t)k);
        oc_powerlaw *f = fit(C, L, N_POINTS, 200);
        double big = C[N_POINTS - 1] * 1000;
        assert_int_equal(oc_powerlaw_predict(f, big, &pred, &lo, &hi), OC_OK);
        covered += lo <= truth(big) && truth(big) <= hi;
        oc_powerlaw_free(f);
    }
    print_message("95%% intervals covering the truth: %d of 40\n", covered);
    assert_true(covered >= 28);
}

/* One point 30% high: the Huber loss treats it as an absolute deviation, so the other
 * eight still pin the curve (within the 4-standard-error tolerance of eight points). */
static void test_outlier(void **state) {
    (void)state;
    double C[N_POINTS], L[N_POINTS], cov[9], g[3];
    points(C, L, N_POINTS, SIGMA, 7);
    covariance(C, N_POINTS - 1, SIGMA, cov);
    L[4] *= 1.3;
    oc_powerlaw *f = fit(C, L, N_POINTS, 0);
    double big = C[N_POINTS - 1] * 1000;
    dlogf(big, g);
    double pred = oc_powerlaw_value(f, big), tol = 4 * sqrt(quad(cov, g));
    /* least squares (delta far above every residual) is pulled off by the outlier */
    oc_powerlaw_params p = oc_powerlaw_default_params();
    p.huber_delta = 10;
    p.bootstrap = 0;
    oc_powerlaw *ls = NULL;
    assert_int_equal(oc_powerlaw_fit(C, L, N_POINTS, &p, &ls), OC_OK);
    double pred_ls = oc_powerlaw_value(ls, big);
    print_message("with an outlier: 1000x predicted %.5f (least squares %.5f), true %.5f, "
                  "tolerance %.3f in log\n", pred, pred_ls, truth(big), tol);
    assert_true(fabs(log(pred) - log(truth(big))) < tol);
    assert_true(fabs(log(pred_ls) - log(truth(big))) > tol);
    oc_powerlaw_free(ls);
    oc_powerlaw_free(f);
}

/* Without the irreducible term: y = alpha C^-k, e.g. a capability's -mean log pass rate. */
static void test_pure_power_law(void **state) {
    (void)state;
    double C[6], y[6];
    for (int i = 0; i < 6; i++) {
        C[i] = 1e9 * pow(3.0, i);
        y[i] = 40.0 * pow(C[i], -0.12);
    }
    oc_powerlaw_params p = oc_powerlaw_default_params();
    p.irreducible = 0;
    p.bootstrap = 50;
    oc_powerlaw *f = NULL;
    assert_int_equal(oc_powerlaw_fit(C, y, 6, &p, &f), OC_OK);
    const oc_powerlaw_result *r = oc_powerlaw_get(f);
    assert_true(fabs(r->a / 40.0 - 1) < 1e-6);
    assert_true(fabs(r->b + 0.12) < 1e-7);
    assert_true(r->c == 0);
    oc_powerlaw_free(f);
}

static void expect_error(const double *C, const double *L, size_t n, const char *words) {
    oc_powerlaw *f = NULL;
    oc_status s = oc_powerlaw_fit(C, L, n, NULL, &f);
    assert_int_equal(s, OC_ERR_INVALID_ARG);
    assert_null(f);
    if (!strstr(oc_last_error(), words))
        fail_msg("expected '%s' in: %s", words, oc_last_error());
}

static void test_degenerate(void **state) {
    (void)state;
    double C[4] = {1e9, 2e9, 4e9, 8e9}, L[4] = {2.0, 1.5, 1.2, 1.0};
    expect_error(C, L, 2, "2 points; at least 3");
    expect_error(C, L, 0, "0 points");
    double c0[4] = {1e9, 0, 4e9, 8e9};
    expect_error(c0, L, 4, "point 2: compute must be positive");
    double cneg[4] = {1e9, 2e9, -4e9, 8e9};
    expect_error(cneg, L, 4, "point 3: compute must be positive");
    double lneg[4] = {2.0, 1.5, -1.2, 1.0};
    expect_error(C, lneg, 4, "point 3: loss must be positive");
    double lzero[4] = {2.0, 0.0, 1.2, 1.0};
    expect_error(C, lzero, 4, "point 2: loss must be positive");
    double lnan[4] = {2.0, 1.5, NAN, 1.0};
    expect_error(C, lnan, 4, "point 3: loss must be positive and finite (got nan)");
    double cinf[4] = {1e9, INFINITY, 4e9, 8e9};
    expect_error(cinf, L, 4, "point 2: compute must be positive and finite");
    double flat[4] = {1.25, 1.25, 1.25, 1.25};
    expect_error(C, flat, 4, "flat curve");
    double same[4] = {1e9, 1e9, 2e9, 2e9};
    expect_error(same, L, 4, "2 different values");
    assert_int_equal(oc_powerlaw_fit(NULL, L, 4, NULL, &(oc_powerlaw *){NULL}),
                     OC_ERR_INVALID_ARG);
    oc_powerlaw_params p = oc_powerlaw_default_params();
    p.huber_delta = 0;
    oc_powerlaw *f = NULL;
    assert_int_equal(oc_powerlaw_fit(C, L, 4, &p, &f), OC_ERR_INVALID_ARG);
    p = oc_powerlaw_default_params();
    p.ci_level = 1;
    assert_int_equal(oc_powerlaw_fit(C, L, 4, &p, &f), OC_ERR_INVALID_ARG);
    /* exactly determined: a fit, no intervals */
    assert_int_equal(oc_powerlaw_fit(C, L, 3, NULL, &f), OC_OK);
    assert_int_equal(oc_powerlaw_get(f)->n_bootstrap, 0);
    double v, lo, hi;
    assert_int_equal(oc_powerlaw_predict(f, 1e12, &v, &lo, &hi), OC_OK);
    assert_true(isfinite(v) && isnan(lo) && isnan(hi));
    assert_int_equal(oc_powerlaw_predict(f, -1, &v, NULL, NULL), OC_ERR_INVALID_ARG);
    assert_true(isnan(oc_powerlaw_value(f, 0)));
    oc_powerlaw_free(f);
    oc_powerlaw_free(NULL);
}

static void expect_csv(const char *text, oc_status want, const char *words, size_t n_want) {
    const char *dir = tmpdir("scaling_csv");
    char path[512];
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    write_text(path, text);
    double *C = NULL, *L = NULL;
    size_t n = 0;
    oc_status s = oc_powerlaw_read_csv(path, &C, &L, &n);
    assert_int_equal(s, want);
    if (s != OC_OK) {
        if (!strstr(oc_last_error(), words))
            fail_msg("expected '%s' in: %s", words, oc_last_error());
        return;
    }
    assert_int_equal(n, n_want);
    oc_free(C);
    oc_free(L);
}

static void test_csv(void **state) {
    (void)state;
    const char *dir = tmpdir("scaling_csv_ok");
    char path[512];
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    write_text(path, "name,params,compute,final_loss\r\n"
                     "a,100,1e9,2.5\r\n\r\n# a comment\n"
                     "b,200,4e9,\"1.5\"\n");
    double *C = NULL, *L = NULL;
    size_t n = 0;
    assert_int_equal(oc_powerlaw_read_csv(path, &C, &L, &n), OC_OK);
    assert_int_equal(n, 2);
    assert_true(C[0] == 1e9 && L[0] == 2.5 && C[1] == 4e9 && L[1] == 1.5);
    oc_free(C);
    oc_free(L);
    expect_csv("compute,loss\n1e9,2\n2e9,1.5\n", OC_OK, "", 2);
    expect_csv("flops,xent\n1e9,2\n", OC_OK, "", 1); /* unnamed: the first two columns */
    expect_csv("", OC_ERR_FORMAT, "empty", 0);
    expect_csv("1e9,2\n2e9,1\n", OC_ERR_FORMAT, "runs.csv:1: expected a header", 0);
    expect_csv("compute,loss\n1e9,2\n2e9,abc\n", OC_ERR_FORMAT, "runs.csv:3: loss 'abc' is "
               "not a number", 0);
    expect_csv("compute,loss\n1e9,2\n2e9,nan\n", OC_ERR_FORMAT, "runs.csv:3: loss must be "
               "positive and finite", 0);
    expect_csv("compute,loss\n-1e9,2\n", OC_ERR_FORMAT, "runs.csv:2: compute must be positive",
               0);
    expect_csv("compute,loss\n1e9\n", OC_ERR_FORMAT, "runs.csv:2: 1 field, expected at least 2",
               0);
    expect_csv("compute\n1e9\n", OC_ERR_FORMAT, "no column \"loss|final_loss\"", 0);
    expect_csv("x\n1e9\n", OC_ERR_FORMAT, "the header has 1 column; 2 are needed", 0);
    expect_csv("compute,loss\n1e9,2\0\n", OC_OK, "", 1); /* write_text stops at the NUL */
    /* named columns, empty fields as NaN (a loss curve's validation column) */
    snprintf(path, sizeof path, "%s/curve.csv", dir);
    write_text(path, "step,loss,val_loss\n1,3.5,\n2,3.1,2.9\n");
    const char *names[2] = {"step", "val_loss"};
    double *cols[2];
    size_t rows;
    assert_int_equal(oc_csv_read_columns(path, names, 2, cols, &rows), OC_OK);
    assert_int_equal(rows, 2);
    assert_true(cols[0][1] == 2 && isnan(cols[1][0]) && cols[1][1] == 2.9);
    oc_free(cols[0]);
    oc_free(cols[1]);
    const char *missing[1] = {"tokens"};
    assert_int_equal(oc_csv_read_columns(path, missing, 1, cols, &rows), OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "curve.csv:1: no column \"tokens\""));
    double *c2, *l2;
    size_t n2;
    assert_int_equal(oc_powerlaw_read_csv("/nonexistent/runs.csv", &c2, &l2, &n2), OC_ERR_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_points),
        cmocka_unit_test(test_noisy_points),
        cmocka_unit_test(test_interval_coverage),
        cmocka_unit_test(test_outlier),
        cmocka_unit_test(test_pure_power_law),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
