/* The scaling-ladder runner (oc_scale_run) end to end on a tiny recipe of the shapes
 * world: the plan follows the recipe's rules; the prediction is on disk before the
 * target's first step; a run stopped in the middle resumes where it stopped and the
 * whole study comes out bit for bit as one uninterrupted call; finished runs are
 * skipped; the report, CSV and charts are written; bad recipes are refused with a
 * sentence naming the file and the key. And the `ocellus scale` and `ocellus plot`
 * commands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "json.h"
#include "testutil.h"

static const char *RECIPE =
    "{\"family\": \"smolvlm\", \"base\": \"%s\","
    " \"data\": {\"kind\": \"shapes\", \"seed\": 3, \"train_scenes\": 400, \"val_scenes\": 20,"
    "          \"test_scenes\": 5, \"questions_per_image\": 2},"
    " \"model\": {\"text_layers\": 1, \"text_heads\": 1, \"vision_layers\": 1,"
    "           \"vision_heads\": 1, \"vision_width_ratio\": 0.5, \"width_multiple\": 2},"
    " \"target\": {\"width\": 24, \"tokens\": 30000},"
    " \"ladder\": {\"runs\": 6, \"max_compute_fraction\": 0.5, \"compute_ratio\": 1.2,"
    "            \"tokens_exponent\": 0.5, \"variants\": [0.3]},"
    " \"train\": {\"batch\": 2, \"lr\": 3e-3, \"lr_ref_width\": 24, \"min_steps\": 5,"
    "           \"checkpoints\": 3, \"init_std\": 0.1, \"seed\": 2},"
    " \"fit\": {\"bootstrap\": 50}}";

static const char *write_recipe(const char *dir, const char *text) {
    static char path[2048];
    snprintf(path, sizeof path, "%s/recipe.json", dir);
    write_text(path, text);
    return path;
}

static const char *tiny_recipe(const char *dir) {
    char text[4096];
    snprintf(text, sizeof text, RECIPE, td("../../models/ocellus-shapes"));
    return write_recipe(dir, text);
}

static cJSON *load(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cJSON *j = NULL;
    if (oc_json_load(path, 1 << 24, &j) != OC_OK)
        fail_msg("%s", oc_last_error());
    return j;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = oc_json_get(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("no number \"%s\"", k);
    return v->valuedouble;
}

static int file_size_ok(const char *dir, const char *name) { /* > 300 bytes */
    char path[2048];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && st.st_size > 300;
}

/* ---- what the callback sees ----------------------------------------------------------- */

typedef struct {
    const char *out;
    int stop_in;           /* stop at this run index ... */
    uint64_t stop_at;      /* ... after this step (0: never) */
    int skipped[16], started[16];
    uint64_t first_step[16];
    int prediction_before_target;
    int target_steps;
    double eta_last;
} watch;

static int on_event(const oc_scale_event *ev, void *user) {
    watch *w = user;
    if (ev->kind == OC_SCALE_RUN_DONE && ev->skipped)
        w->skipped[ev->run] = 1;
    if (ev->kind == OC_SCALE_RUN_START)
        w->started[ev->run] = 1;
    if (ev->kind == OC_SCALE_RUN_STEP) {
        if (!w->first_step[ev->run])
            w->first_step[ev->run] = ev->stats->step;
        if (ev->is_target && w->target_steps++ == 0) {
            /* the target's first step: its prediction must be on disk already */
            char path[1024];
            snprintf(path, sizeof path, "%s/prediction.json", w->out);
            cJSON *p = NULL;
            w->prediction_before_target = oc_json_load(path, 1 << 20, &p) == OC_OK &&
                                          cJSON_IsNumber(oc_json_get(oc_json_get(p, "loss"),
                                                                     "predicted"));
            cJSON_Delete(p);
        }
        w->eta_last = ev->eta_s;
        if (w->stop_at && (int)ev->run == w->stop_in && ev->stats->step == w->stop_at)
            return 1;
    }
    return 0;
}

static oc_status run_study(const char *recipe, const char *out, watch *w) {
    oc_scale_params p = oc_scale_default_params();
    p.on_progress = on_event;
    p.user_data = w;
    w->out = out;
    return oc_scale_run(recipe, out, &p);
}

static void test_plan(void **state) {
    (void)state;
    const char *dir = tmpdir("scale_plan");
    const char *recipe = tiny_recipe(dir);
    char out[1024];
    snprintf(out, sizeof out, "%s/out", dir);
    oc_scale_params p = oc_scale_default_params();
    p.plan_only = 1;
    assert_int_equal(oc_scale_run(recipe, out, &p), OC_OK);
    cJSON *plan = load(out, "plan.json");
    const cJSON *runs = oc_json_get(plan, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 7);
    const cJSON *target = cJSON_GetArrayItem(runs, 6);
    double Ct = num(target, "planned_compute"), Nt = num(target, "params");
    assert_true(num(target, "width") == 24);
    double prev = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *u = cJSON_GetArrayItem(runs, i);
        double C = num(u, "planned_compute"), W = num(u, "width"), N = num(u, "params");
        /* below the fraction, growing, widths multiples of 2 */
        assert_true(C <= 0.5 * Ct && C > prev);
        assert_true(fmod(W, 2) == 0 && W < 24);
        /* the token rule: tokens = 30000 (N / N_target)^0.5 */
        assert_true(fabs(num(u, "tokens") - 30000 * sqrt(N / Nt)) <= 1);
        /* the lr rule: 3e-3 * 24 / W */
        assert_true(fabs(num(u, "lr") - 3e-3 * 24 / W) < 1e-12);
        /* compute is the shapes' FLOPs per example times steps and batch */
        assert_true(fabs(C - num(u, "flops_per_example") * num(u, "steps") * 2) <= 1e-9 * C);
        prev = C;
    }
    cJSON_Delete(plan);
}

static void test_run_resume_report(void **state) {
    (void)state;
    const char *dir = tmpdir("scale_run");
    const char *recipe = tiny_recipe(dir);
    char out[1024], ref[1024];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);

    /* one uninterrupted call */
    watch w0;
    memset(&w0, 0, sizeof w0);
    if (run_study(recipe, ref, &w0) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_true(w0.prediction_before_target);
    assert_true(w0.eta_last >= 0);

    /* stopped in the middle of ladder run 2 (after a checkpoint at its step 1/3) */
    watch w1;
    memset(&w1, 0, sizeof w1);
    w1.stop_in = 2;
    w1.stop_at = 4;
    assert_int_equal(run_study(recipe, out, &w1), OC_ERR_CANCELLED);
    assert_true(strstr(oc_last_error(), "stopped") != NULL);
    /* continued: runs 0 and 1 skipped, run 2 resumed from its checkpoint */
    watch w2;
    memset(&w2, 0, sizeof w2);
    if (run_study(recipe, out, &w2) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_true(w2.skipped[0] && w2.skipped[1] && !w2.skipped[2]);
    assert_true(w2.first_step[2] > 1);
    assert_true(w2.prediction_before_target);

    cJSON *a = load(ref, "report.json"), *b = load(out, "report.json");
    const cJSON *ra = oc_json_get(a, "runs"), *rb = oc_json_get(b, "runs");
    assert_int_equal(cJSON_GetArraySize(ra), 7);
    for (int i = 0; i < 7; i++) {
        const cJSON *x = cJSON_GetArrayItem(ra, i), *y = cJSON_GetArrayItem(rb, i);
        /* bit for bit: the same losses, capability and FLOPs */
        assert_true(num(x, "final_loss") == num(y, "final_loss"));
        assert_true(num(x, "capability") == num(y, "capability"));
        assert_true(num(x, "compute") == num(y, "compute"));
        assert_true(num(x, "tokens") == num(y, "tokens"));
        assert_true(num(x, "final_loss") > 0 && num(x, "params") > 0);
    }
    /* the keys the issue names */
    const cJSON *fit = oc_json_get(b, "fit");
    assert_true(isfinite(num(fit, "a")) && isfinite(num(fit, "b")) && isfinite(num(fit, "c")));
    double Ct = num(b, "target_compute"), Cmax = num(b, "max_fitted_compute");
    assert_true(Cmax <= 0.5 * Ct);
    double pred = num(b, "predicted_loss"), act = num(b, "actual_loss");
    assert_true(fabs(num(b, "relative_error") - (pred - act) / act) < 1e-12);
    assert_true(isfinite(num(b, "reducible_relative_error")));
    assert_true(num(b, "ci_low") <= pred && pred <= num(b, "ci_high"));
    assert_true(num(b, "predicted_loss") == num(a, "predicted_loss"));
    const cJSON *cap = oc_json_get(oc_json_get(b, "prediction"), "capability");
    assert_true(isfinite(num(cap, "predicted")) && isfinite(num(cap, "actual")));
    cJSON_Delete(a);
    cJSON_Delete(b);
    assert_true(file_size_ok(out, "report.csv"));
    assert_true(file_size_ok(out, "loss_vs_compute.png"));
    assert_true(file_size_ok(out, "capability_vs_compute.png"));
    assert_true(file_size_ok(out, "runs/target/loss.csv"));

    /* the curve of the resumed run has every step once */
    char path[2048];
    snprintf(path, sizeof path, "%s/runs/ladder-02/loss.csv", out);
    const char *names[1] = {"step"};
    double *steps;
    size_t n;
    assert_int_equal(oc_csv_read_columns(path, names, 1, &steps, &n), OC_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(steps[i] == (double)(i + 1));
    oc_free(steps);

    /* a third call does no training: every run is skipped, the report rewritten */
    watch w3;
    memset(&w3, 0, sizeof w3);
    assert_int_equal(run_study(recipe, out, &w3), OC_OK);
    for (int i = 0; i < 7; i++)
        assert_true(w3.skipped[i] && !w3.started[i]);

    char *text = NULL;
    assert_int_equal(oc_scale_summary(out, &text), OC_OK);
    assert_non_null(strstr(text, "ladder-05"));
    assert_non_null(strstr(text, "predicted"));
    oc_free(text);

    /* another recipe in the same folder is refused */
    char other[4096];
    snprintf(other, sizeof other, RECIPE, td("../../models/ocellus-shapes"));
    char *lr = strstr(other, "\"lr\": 3e-3");
    memcpy(lr, "\"lr\": 4e-3", 10);
    assert_int_equal(oc_scale_run(write_recipe(dir, other), out, NULL), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "use a new output folder"));
}

static void expect_recipe_error(const char *dir, const char *text, oc_status want,
                                const char *words) {
    char out[1024];
    snprintf(out, sizeof out, "%s/out-bad", dir);
    oc_scale_params p = oc_scale_default_params();
    p.plan_only = 1;
    oc_status s = oc_scale_run(write_recipe(dir, text), out, &p);
    assert_int_equal(s, want);
    if (!strstr(oc_last_error(), words))
        fail_msg("expected '%s' in: %s", words, oc_last_error());
}

static void test_bad_recipes(void **state) {
    (void)state;
    const char *dir = tmpdir("scale_bad");
    char text[4096], base[1024];
    snprintf(base, sizeof base, "%s", td("../../models/ocellus-shapes"));
    snprintf(text, sizeof text, RECIPE, base);
    char *t = strstr(text, "\"ladder\": {\"runs\"");
    memcpy(t, "\"ladder\": {\"rnus\"", 17);
    expect_recipe_error(dir, text, OC_ERR_FORMAT, "recipe.json: unknown key \"ladder.rnus\"");
    snprintf(text, sizeof text, RECIPE, base);
    t = strstr(text, "\"width\": 24");
    memcpy(t, "\"width\": 25", 11);
    expect_recipe_error(dir, text, OC_ERR_FORMAT, "\"target.width\" = 25 is not a multiple");
    snprintf(text, sizeof text, RECIPE, base);
    t = strstr(text, "\"runs\": 6");
    memcpy(t, "\"runs\": 5", 9);
    expect_recipe_error(dir, text, OC_ERR_FORMAT, "\"runs\" = 5 is out of range [6, 32]");
    snprintf(text, sizeof text, RECIPE, base);
    t = strstr(text, "\"kind\": \"shapes\"");
    memcpy(t, "\"kind\": \"shapez\"", 16);
    expect_recipe_error(dir, text, OC_ERR_FORMAT, "\"shapes\" or \"jsonl\", not \"shapez\"");
    /* 30 runs cannot fit between widths 2 and 22 */
    snprintf(text, sizeof text, RECIPE, base);
    t = strstr(text, "\"runs\": 6,");
    memcpy(t, "\"runs\":30,", 10);
    expect_recipe_error(dir, text, OC_ERR_INVALID_ARG, "only");
    expect_recipe_error(dir, "[1, 2]", OC_ERR_FORMAT, "a recipe is a JSON object");
    expect_recipe_error(dir, "{\"base\": \"x\"}", OC_ERR_FORMAT, "missing \"data\"");
    assert_int_equal(oc_scale_run(NULL, "x", NULL), OC_ERR_INVALID_ARG);
}

/* ---- the commands ------------------------------------------------------------------- */

static int run_cli(const char *args, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", OC_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state) {
    (void)state;
    static char out[1 << 16];
    char args[4096], csv[1024], png[1024];
    const char *dir = tmpdir("scale_cli");
    snprintf(csv, sizeof csv, "%s/runs.csv", dir);
    /* points of 3e3 C^-0.25 + 0.5 */
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof text, "compute,loss\n");
    for (int i = 0; i < 8; i++) {
        double C = 1e10 * pow(2, i);
        len += (size_t)snprintf(text + len, sizeof text - len, "%.17g,%.17g\n", C,
                                3e3 * pow(C, -0.25) + 0.5);
    }
    write_text(csv, text);
    snprintf(args, sizeof args, "scale fit '%s' --predict 1e15 --json --bootstrap 20", csv);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    cJSON *j = NULL;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    assert_true(fabs(num(j, "b") + 0.25) < 1e-5 && fabs(num(j, "c") - 0.5) < 1e-5);
    assert_true(fabs(num(j, "a") / 3e3 - 1) < 1e-4);
    double want = 3e3 * pow(1e15, -0.25) + 0.5;
    assert_true(fabs(num(j, "predicted_loss") / want - 1) < 1e-6);
    assert_true(isfinite(num(j, "ci_low")) && isfinite(num(j, "ci_high")));
    cJSON_Delete(j);
    snprintf(args, sizeof args, "scale fit '%s'", csv);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "b = -0.25"));

    /* degenerate input: a clear message and the exit code of its status */
    write_text(csv, "compute,loss\n1e9,2\n2e9,1.5\n");
    snprintf(args, sizeof args, "scale fit '%s'", csv);
    assert_int_equal(run_cli(args, out, sizeof out), 3);
    assert_non_null(strstr(out, "2 points; at least 3 are needed"));
    write_text(csv, "compute,loss\n1e9,2\n2e9,nan\n4e9,1\n");
    assert_int_equal(run_cli(args, out, sizeof out), 5);
    assert_non_null(strstr(out, "runs.csv:3: loss must be positive and finite"));
    write_text(csv, "compute,loss\n1e9,2\n2e9,2\n4e9,2\n");
    assert_int_equal(run_cli(args, out, sizeof out), 3);
    assert_non_null(strstr(out, "flat curve"));
    write_text(csv, "compute,loss\n0,2\n2e9,1.5\n4e9,1\n");
    assert_int_equal(run_cli(args, out, sizeof out), 5);
    assert_non_null(strstr(out, "compute must be positive"));
    assert_int_equal(run_cli("scale fit", out, sizeof out), 2);
    assert_int_equal(run_cli("scale frobnicate", out, sizeof out), 2);

    /* plot: a loss curve */
    snprintf(csv, sizeof csv, "%s/loss.csv", dir);
    write_text(csv, "step,tokens,flops,loss,lr,grad_norm,seconds\n1,100,1e6,3.5,0,1,0.1\n"
                    "2,100,2e6,3.0,0,1,0.1\n3,100,3e6,2.8,0,1,0.1\n");
    snprintf(png, sizeof png, "%s/curve.png", dir);
    snprintf(args, sizeof args, "plot '%s' --x tokens --smooth 2 --out '%s'", csv, png);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    assert_true(file_size_ok(dir, "curve.png"));
    snprintf(args, sizeof args, "plot '%s' --y nosuch --out '%s'", csv, png);
    assert_int_equal(run_cli(args, out, sizeof out), 5);
    assert_non_null(strstr(out, "no column \"nosuch\""));
    snprintf(args, sizeof args, "plot '%s' --out '%s/x.gif'", csv, dir);
    assert_int_equal(run_cli(args, out, sizeof out), 3);

    /* scale run --plan, then the table */
    const char *recipe = tiny_recipe(dir);
    snprintf(args, sizeof args, "scale run --recipe '%s' --out '%s/study' --plan", recipe, dir);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "ladder-00"));
    assert_non_null(strstr(out, "target"));
    snprintf(args, sizeof args, "scale report '%s/study'", dir);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "ladder-05"));
    assert_int_equal(run_cli("scale run --out x", out, sizeof out), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_run_resume_report),
        cmocka_unit_test(test_bad_recipes),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
