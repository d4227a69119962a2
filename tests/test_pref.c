/* Preference optimisation: the DPO, SimPO and ORPO losses on hand-computed
 * log-probabilities, their gradients through the whole tiny model against finite
 * differences, and the training path's sequence log-probability against the inference
 * path's (oc_answer_logprob) for the same tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "pref_loss.h"
#include "testutil.h"
#include "train_fixture.h"
#include "trainer_internal.h"

/* ---- the losses on numbers worked out by hand ---------------------------------------- */

static void test_dpo_values(void **state) {
    (void)state;
    /* pc -5, pr -7, rc = rr = -6, beta 0.1: z = 0.1 * ((-5 + 6) - (-7 + 6)) = 0.2,
     * loss = log(1 + e^-0.2) = 0.598138869, d/dpc = -0.1 * sigmoid(-0.2) = -0.0450166 */
    oc_pref_pair in = {-5, -7, -6, -6, 3, 4};
    oc_pref_pair_out o;
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 0.1, 0, 0, &in, &o);
    assert_true(fabs(o.loss - 0.598138869381592) < 1e-12);
    assert_true(fabs(o.dpc + 0.0450166002687522) < 1e-12);
    assert_true(fabs(o.dpr - 0.0450166002687522) < 1e-12);
    assert_true(fabs(o.reward_c - 0.1) < 1e-12 && fabs(o.reward_r + 0.1) < 1e-12);
    /* at the reference (pi = ref): z = 0, loss = log 2, rewards 0 */
    oc_pref_pair at = {-5, -7, -5, -7, 3, 4};
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 0.1, 0, 0, &at, &o);
    assert_true(fabs(o.loss - log(2.0)) < 1e-15);
    assert_true(fabs(o.dpc + 0.05) < 1e-15 && fabs(o.dpr - 0.05) < 1e-15);
    /* far apart: no overflow, loss -> 0 or -> |z| */
    oc_pref_pair big = {0, -1e5, 0, 0, 1, 1};
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 1, 0, 0, &big, &o);
    assert_true(o.loss >= 0 && o.loss < 1e-30 && isfinite(o.dpc));
    oc_pref_pair bad = {-1e5, 0, 0, 0, 1, 1};
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 1, 0, 0, &bad, &o);
    assert_true(fabs(o.loss - 1e5) < 1e-6 && fabs(o.dpc + 1) < 1e-12);
}

static void test_simpo_values(void **state) {
    (void)state;
    /* pc -6 over 3 tokens, pr -8 over 2, beta 2, gamma 0.5:
     * z = 2 * (-2 - -4) - 0.5 = 3.5, loss = log(1 + e^-3.5) = 0.0297504183,
     * d/dpc = -2 * sigmoid(-3.5) / 3, d/dpr = 2 * sigmoid(-3.5) / 2 */
    oc_pref_pair in = {-6, -8, 0, 0, 3, 2};
    oc_pref_pair_out o;
    oc_pref_pair_loss(OC_OBJECTIVE_SIMPO, 2, 0.5, 0, &in, &o);
    assert_true(fabs(o.loss - 0.0297504182726206) < 1e-12);
    assert_true(fabs(o.dpc + 0.0195414871675709) < 1e-12);
    assert_true(fabs(o.dpr - 0.0293122307513563) < 1e-12);
    assert_true(fabs(o.reward_c + 4) < 1e-12 && fabs(o.reward_r + 8) < 1e-12);
}

static void test_orpo_values(void **state) {
    (void)state;
    /* pc -2 over 4 tokens (a = -0.5), pr -3 over 2 (a = -1.5), lambda 0.1:
     * log odds(-0.5) = -0.5 - log(1 - e^-0.5) = 0.4327521937,
     * log odds(-1.5) = -1.5 - log(1 - e^-1.5) = -1.2475174770, z = 1.6802696707,
     * loss = 0.5 + 0.1 * log(1 + e^-z) = 0.5170859217 */
    oc_pref_pair in = {-2, -3, 0, 0, 4, 2};
    oc_pref_pair_out o;
    oc_pref_pair_loss(OC_OBJECTIVE_ORPO, 0, 0, 0.1, &in, &o);
    assert_true(fabs(o.loss - 0.517085921714648) < 1e-12);
    assert_true(fabs(o.reward_c + 0.05) < 1e-12 && fabs(o.reward_r + 0.15) < 1e-12);
    /* a reply the model is sure of (log p = 0) stays finite */
    oc_pref_pair sure = {0, -3, 0, 0, 4, 2};
    oc_pref_pair_loss(OC_OBJECTIVE_ORPO, 0, 0, 0.1, &sure, &o);
    assert_true(isfinite(o.loss) && isfinite(o.dpc) && isfinite(o.dpr));
}

/* The derivatives against central differences of the loss itself, for each objective. */
static void test_loss_derivatives(void **state) {
    (void)state;
    const int objs[3] = {OC_OBJECTIVE_DPO, OC_OBJECTIVE_SIMPO, OC_OBJECTIVE_ORPO};
    const oc_pref_pair cases[3] = {{-12.5, -9.25, -11, -10, 5, 3},
                                   {-3.1, -4.7, -3, -5, 2, 6},
                                   {-20, -20.5, -19, -22, 7, 7}};
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++) {
            oc_pref_pair in = cases[c];
            oc_pref_pair_out o, hi, lo;
            oc_pref_pair_loss(objs[k], 0.7, 0.3, 0.4, &in, &o);
            const double h = 1e-5;
            for (int which = 0; which < 2; which++) {
                oc_pref_pair a = in, b = in;
                if (which) a.pr += h, b.pr -= h;
                else a.pc += h, b.pc -= h;
                oc_pref_pair_loss(objs[k], 0.7, 0.3, 0.4, &a, &hi);
                oc_pref_pair_loss(objs[k], 0.7, 0.3, 0.4, &b, &lo);
                double num = (hi.loss - lo.loss) / (2 * h), an = which ? o.dpr : o.dpc;
                if (fabs(num - an) > 1e-7 * fmax(1, fabs(an)))
                    fail_msg("objective %d case %d d/d%s: analytic %.10g numeric %.10g",
                             objs[k], c, which ? "pr" : "pc", an, num);
            }
        }
}

/* ---- the whole model: gradients against finite differences ------------------------- */

static void randomize(oc_params *p, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        int norm = e->ndim == 1 && strstr(e->name, "norm") && strstr(e->name, "weight");
        for (size_t k = 0; k < e->numel; k++) {
            double u = 2 * fixture_uniform(&s) - 1;
            p->mem[e->offset + k] = (float)(norm ? 1 + 0.3 * u : 0.6 * u);
        }
    }
}

/* The step's loss recomputed from oc_trainer_logprobs and the pure loss function. */
static double pref_loss(oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                        const oc_train_params *tp) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        oc_train_example two[2] = {pairs[i].chosen, pairs[i].rejected};
        double lp[2];
        size_t cnt[2];
        assert_int_equal(oc_trainer_logprobs(tr, two, 2, lp, cnt), OC_OK);
        oc_pref_pair in = {lp[0], lp[1], pairs[i].ref_chosen, pairs[i].ref_rejected, cnt[0],
                           cnt[1]};
        oc_pref_pair_out o;
        double beta = tp->pref_beta > 0 ? tp->pref_beta
                                        : tp->objective == OC_OBJECTIVE_SIMPO ? 2.0 : 0.1;
        oc_pref_pair_loss((int)tp->objective, beta, tp->simpo_gamma, tp->orpo_lambda, &in, &o);
        sum += o.loss;
    }
    return sum / (double)n;
}

static void check_pref_gradients(oc_objective obj, uint32_t batch, double beta) {
    const char *dir = tmpdir("pref-gc");
    fixture_config(dir, 1);
    oc_train_params tp = oc_train_default_params();
    tp.lr = 0;
    tp.clip = 0;
    tp.weight_decay = 0;
    tp.batch = batch;
    tp.objective = obj;
    tp.pref_beta = beta;
    tp.orpo_lambda = 0.7; /* large enough that the odds-ratio term shows in the gradient */
    oc_trainer *tr = NULL;
    if (oc_trainer_new_from_config(dir, &tp, &tr) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_params *p = oc_trainer_params_internal(tr);
    randomize(p, 99);
    fixture_batch fb;
    fixture_examples(&fb, 7, 0);
    /* two pairs of the fixture's sequences; reference log-probabilities near the
     * policy's, so that the sigmoid is neither flat nor saturated */
    oc_pref_example pairs[2] = {{fb.ex[0], fb.ex[1], 0, 0}, {fb.ex[3], fb.ex[2], 0, 0}};
    double lp[4];
    assert_int_equal(oc_trainer_logprobs(tr, fb.ex, 4, lp, NULL), OC_OK);
    pairs[0].ref_chosen = lp[0] + 0.9, pairs[0].ref_rejected = lp[1] - 0.4;
    pairs[1].ref_chosen = lp[3] - 1.3, pairs[1].ref_rejected = lp[2] + 0.2;
    oc_train_stats st;
    if (oc_trainer_pref_step(tr, pairs, 2, &st) != OC_OK)
        fail_msg("%s", oc_last_error());
    double L0 = pref_loss(tr, pairs, 2, &tp);
    assert_true(fabs(L0 - st.loss) < 1e-9 * fmax(1, fabs(L0)));
    assert_int_equal(st.pairs, 2);
    assert_true(fabs(st.reward_margin - (st.reward_chosen - st.reward_rejected)) < 1e-12);
    const float *g = oc_trainer_grads_internal(tr);

    const double h = 2e-2;
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        float *w = p->mem + e->offset;
        double *v = malloc(e->numel * sizeof(double)), gn = 0;
        for (size_t k = 0; k < e->numel; k++)
            gn += (double)g[e->offset + k] * g[e->offset + k];
        gn = sqrt(gn);
        if (gn == 0) {
            free(v);
            continue;
        }
        for (size_t k = 0; k < e->numel; k++)
            v[k] = g[e->offset + k] / gn;
        float *saved = malloc(e->numel * sizeof(float));
        memcpy(saved, w, e->numel * sizeof(float));
        double analytic = gn, L[4];
        const double steps[4] = {2 * h, h, -h, -2 * h};
        for (int j = 0; j < 4; j++) {
            for (size_t k = 0; k < e->numel; k++)
                w[k] = (float)(saved[k] + steps[j] * v[k]);
            L[j] = pref_loss(tr, pairs, 2, &tp);
        }
        memcpy(w, saved, e->numel * sizeof(float));
        double numeric = (8 * (L[1] - L[2]) - (L[0] - L[3])) / (12 * h);
        double err = fabs(numeric - analytic) / fmax(fabs(analytic), 1e-2);
        if (err > worst)
            worst = err, worst_name = e->name;
        if (err > 2e-3)
            print_message("  %s: analytic %.6g numeric %.6g\n", e->name, analytic, numeric);
        free(v);
        free(saved);
    }
    print_message("  objective %d, batch %u: %zu tensors, worst directional error %.2e (%s)\n",
                  (int)obj, batch, p->n_tensors, worst, worst_name);
    assert_true(worst < 2e-3);
    free(fb.pixels);
    oc_trainer_free(tr);
}

static void test_gradients_dpo(void **state) {
    (void)state;
    check_pref_gradients(OC_OBJECTIVE_DPO, 1, 0.5); /* each pair its own micro-batch */
    check_pref_gradients(OC_OBJECTIVE_DPO, 2, 0.5); /* both pairs packed together */
}

static void test_gradients_simpo(void **state) {
    (void)state;
    check_pref_gradients(OC_OBJECTIVE_SIMPO, 2, 0); /* beta 0: SimPO's default 2.0 */
}

static void test_gradients_orpo(void **state) {
    (void)state;
    check_pref_gradients(OC_OBJECTIVE_ORPO, 1, 0);
}

/* DPO starts at the reference: policy == reference gives log 2 whatever the pairs, the
 * reference log-probabilities coming from the same trainer before any step. */
static void test_dpo_starts_at_log2(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-log2");
    fixture_config(dir, 0);
    oc_train_params tp = oc_train_default_params();
    tp.objective = OC_OBJECTIVE_DPO;
    tp.batch = 2;
    oc_trainer *tr = NULL;
    assert_int_equal(oc_trainer_new_from_config(dir, &tp, &tr), OC_OK);
    randomize(oc_trainer_params_internal(tr), 3);
    fixture_batch fb;
    fixture_examples(&fb, 11, 2);
    double lp[4];
    assert_int_equal(oc_trainer_logprobs(tr, fb.ex, 4, lp, NULL), OC_OK);
    oc_pref_example pairs[2] = {{fb.ex[0], fb.ex[1], lp[0], lp[1]},
                                {fb.ex[2], fb.ex[3], lp[2], lp[3]}};
    oc_train_stats st;
    assert_int_equal(oc_trainer_pref_step(tr, pairs, 2, &st), OC_OK);
    assert_true(fabs(st.loss - log(2.0)) < 1e-12);
    assert_true(st.reward_margin == 0 && st.pref_accuracy == 0);
    /* the step moved the policy towards the chosen replies */
    assert_int_equal(oc_trainer_pref_step(tr, pairs, 2, &st), OC_OK);
    assert_true(st.loss < log(2.0) && st.reward_margin > 0);
    /* SFT trainers refuse pairs */
    oc_trainer_free(tr);
    tp.objective = OC_OBJECTIVE_SFT;
    assert_int_equal(oc_trainer_new_from_config(dir, &tp, &tr), OC_OK);
    assert_int_equal(oc_trainer_pref_step(tr, pairs, 2, &st), OC_ERR_INVALID_ARG);
    free(fb.pixels);
    oc_trainer_free(tr);
}

/* ---- training and inference agree on a sequence's log-probability ------------------- */

static void test_logprob_matches_inference(void **state) {
    (void)state;
    const char *model_dir = td("smolvlm-tiny");
    const char *dir = tmpdir("pref-lp");
    char img[512], jsonl[512], line[1024];
    snprintf(img, sizeof img, "%s", td("images/shapes_200x130.png"));
    snprintf(jsonl, sizeof jsonl, "%s/one.jsonl", dir);
    const char *q = "What colour is the circle?", *a = "red";
    snprintf(line, sizeof line,
             "{\"image\": \"%s\", \"conversations\": [{\"from\": \"human\", \"value\": "
             "\"<image>\\n%s\"}, {\"from\": \"gpt\", \"value\": \"%s\"}]}\n", img, q, a);
    write_text(jsonl, line);
    oc_dataset *ds = NULL;
    if (oc_dataset_open(jsonl, model_dir, NULL, &ds) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_train_example ex;
    assert_int_equal(oc_dataset_get(ds, 0, &ex), OC_OK);
    oc_trainer *tr = NULL;
    if (oc_trainer_new(model_dir, NULL, &tr) != OC_OK)
        fail_msg("%s", oc_last_error());
    double train_lp;
    size_t train_n;
    assert_int_equal(oc_trainer_logprobs(tr, &ex, 1, &train_lp, &train_n), OC_OK);

    oc_model_params mp = oc_model_default_params();
    oc_model *m = NULL;
    if (oc_model_load(model_dir, &mp, &m) != OC_OK)
        fail_msg("%s", oc_last_error());
    oc_image *im = NULL;
    assert_int_equal(oc_image_load(img, NULL, &im), OC_OK);
    double inf_lp;
    size_t inf_n;
    const oc_image *ims[1] = {im};
    if (oc_answer_logprob(m, ims, 1, q, a, &inf_lp, &inf_n) != OC_OK)
        fail_msg("%s", oc_last_error());
    print_message("  log p(\"%s\"): training %.9g over %zu tokens, inference %.9g over %zu\n",
                  a, train_lp, train_n, inf_lp, inf_n);
    assert_int_equal(train_n, inf_n);
    /* float32 both; the two paths run the same kernels in different groupings */
    assert_true(fabs(train_lp - inf_lp) < 1e-4 * fmax(1, fabs(inf_lp)));
    oc_image_free(im);
    oc_model_free(m);
    oc_trainer_free(tr);
    oc_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpo_values),
        cmocka_unit_test(test_simpo_values),
        cmocka_unit_test(test_orpo_values),
        cmocka_unit_test(test_loss_derivatives),
        cmocka_unit_test(test_gradients_dpo),
        cmocka_unit_test(test_gradients_simpo),
        cmocka_unit_test(test_gradients_orpo),
        cmocka_unit_test(test_dpo_starts_at_log2),
        cmocka_unit_test(test_logprob_matches_inference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
