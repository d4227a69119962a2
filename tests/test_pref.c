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

static void test_rpo_values(void **state) {
    (void)state;
    /* DPO's pair of test_dpo_values plus alpha 0.5 times the chosen reply's mean NLL:
     * loss = 0.598138869 + 0.5 * 5 / 3, d/dpc = -0.0450166 - 0.5 / 3, d/dpr unchanged */
    oc_pref_pair in = {-5, -7, -6, -6, 3, 4};
    oc_pref_pair_out o;
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 0.1, 0, 0, &in, &o);
    oc_pref_add_nll(0.5, &in, &o);
    assert_true(fabs(o.loss - (0.598138869381592 + 2.5 / 3)) < 1e-12);
    assert_true(fabs(o.dpc + (0.0450166002687522 + 0.5 / 3)) < 1e-12);
    assert_true(fabs(o.dpr - 0.0450166002687522) < 1e-12);
    assert_true(fabs(o.reward_c - 0.1) < 1e-12); /* the rewards are DPO's */
    /* and its derivative against a central difference */
    const double h = 1e-5;
    oc_pref_pair a = in, b = in;
    a.pc += h, b.pc -= h;
    oc_pref_pair_out oa, ob;
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 0.1, 0, 0, &a, &oa);
    oc_pref_add_nll(0.5, &a, &oa);
    oc_pref_pair_loss(OC_OBJECTIVE_DPO, 0.1, 0, 0, &b, &ob);
    oc_pref_add_nll(0.5, &b, &ob);
    assert_true(fabs((oa.loss - ob.loss) / (2 * h) - o.dpc) < 1e-8);
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
        if (tp->rpo_alpha > 0 && tp->objective != OC_OBJECTIVE_ORPO)
            oc_pref_add_nll(tp->rpo_alpha, &in, &o);
        sum += o.loss;
    }
    return sum / (double)n;
}

static void check_pref_gradients(oc_objective obj, uint32_t batch, double beta,
                                 double rpo_alpha) {
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
    tp.rpo_alpha = rpo_alpha;
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
    check_pref_gradients(OC_OBJECTIVE_DPO, 1, 0.5, 0); /* each pair its own micro-batch */
    check_pref_gradients(OC_OBJECTIVE_DPO, 2, 0.5, 0); /* both pairs packed together */
    check_pref_gradients(OC_OBJECTIVE_DPO, 2, 0.5, 0.8); /* with RPO's chosen NLL */
}

static void test_gradients_simpo(void **state) {
    (void)state;
    check_pref_gradients(OC_OBJECTIVE_SIMPO, 2, 0, 0); /* beta 0: SimPO's default 2.0 */
}

static void test_gradients_orpo(void **state) {
    (void)state;
    check_pref_gradients(OC_OBJECTIVE_ORPO, 1, 0, 0);
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
    oc_train_stats st, ev;
    assert_int_equal(oc_trainer_pref_eval(tr, pairs, 2, &ev), OC_OK);
    assert_true(fabs(ev.loss - log(2.0)) < 1e-12 && ev.pairs == 2);
    assert_int_equal(oc_trainer_pref_step(tr, pairs, 2, &st), OC_OK);
    assert_true(fabs(st.loss - log(2.0)) < 1e-12);
    assert_true(st.reward_margin == 0 && st.pref_accuracy == 0);
    /* eval after the step: the loss the next step starts from, nothing changed by it */
    oc_train_stats ev2;
    assert_int_equal(oc_trainer_pref_eval(tr, pairs, 2, &ev), OC_OK);
    assert_int_equal(oc_trainer_pref_eval(tr, pairs, 2, &ev2), OC_OK);
    assert_true(ev.loss == ev2.loss && ev.loss < log(2.0) && ev.reward_margin > 0);
    /* the step moved the policy towards the chosen replies */
    assert_int_equal(oc_trainer_pref_step(tr, pairs, 2, &st), OC_OK);
    assert_true(st.loss < log(2.0) && st.reward_margin > 0);
    assert_true(st.loss == ev.loss); /* the step's forward pass is the eval's */
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


/* ---- preference files ------------------------------------------------------------- */

static const char *pref_file(const char *dir, const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_text(path, text);
    return path;
}

/* Labels cover the reply only; chosen and rejected share the prompt's tokens; the three
 * ways of writing a pair (strings, messages, implicit prompt) encode the same tokens. */
static void test_pref_formats(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-fmt");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/a.png'", td("images/shapes_200x130.png"), dir);
    assert_int_equal(system(cmd), 0);
    const char *text =
        "{\"prompt\": \"What colour is the star?\", \"chosen\": \"there is no star\", "
        "\"rejected\": \"red\", \"images\": [\"a.png\"]}\n"
        "\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": "
        "\"text\", \"text\": \"What colour is the star?\"}]}], \"chosen\": [{\"role\": "
        "\"assistant\", \"content\": \"there is no star\"}], \"rejected\": [{\"role\": "
        "\"assistant\", \"content\": \"red\"}], \"images\": [\"a.png\"]}\n"
        "{\"chosen\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": "
        "\"text\", \"text\": \"What colour is the star?\"}]}, {\"role\": \"assistant\", "
        "\"content\": \"there is no star\"}], \"rejected\": [{\"role\": \"user\", \"content\": "
        "[{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"What colour is the star?\"}]},"
        " {\"role\": \"assistant\", \"content\": \"red\"}], \"images\": [\"a.png\"]}\n";
    const char *path = pref_file(dir, "p.jsonl", text);
    oc_pref_dataset *ds = NULL;
    if (oc_pref_dataset_open(path, td("smolvlm-tiny"), NULL, &ds) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(oc_pref_dataset_size(ds), 3);
    int32_t *ids0 = NULL, *lab0 = NULL;
    size_t n0 = 0;
    for (size_t i = 0; i < 3; i++) {
        oc_pref_example e;
        if (oc_pref_dataset_get(ds, i, &e) != OC_OK)
            fail_msg("%s", oc_last_error());
        const oc_train_example *c = &e.chosen, *r = &e.rejected;
        assert_true(c->n_tiles > 0 && c->n_tiles == r->n_tiles);
        /* the prompt: every position before the first label is the same in both */
        size_t first = 0;
        while (first < c->n_tokens && c->labels[first] == -100)
            first++;
        assert_true(first > 0 && first < c->n_tokens && first < r->n_tokens);
        assert_memory_equal(c->input_ids, r->input_ids, first * sizeof(int32_t));
        assert_int_equal(r->labels[first - 1], -100);
        assert_true(r->labels[first] != -100);
        /* labels: one run, the reply's tokens (and its end of turn) */
        size_t t = first;
        while (t < c->n_tokens && c->labels[t] != -100) {
            assert_int_equal(c->labels[t], c->input_ids[t]);
            t++;
        }
        for (; t < c->n_tokens; t++)
            assert_int_equal(c->labels[t], -100);
        if (i == 0) {
            n0 = c->n_tokens;
            ids0 = malloc(n0 * sizeof *ids0), lab0 = malloc(n0 * sizeof *lab0);
            memcpy(ids0, c->input_ids, n0 * sizeof *ids0);
            memcpy(lab0, c->labels, n0 * sizeof *lab0);
        } else {
            assert_int_equal(c->n_tokens, n0);
            assert_memory_equal(c->input_ids, ids0, n0 * sizeof *ids0);
            assert_memory_equal(c->labels, lab0, n0 * sizeof *lab0);
        }
    }
    free(ids0);
    free(lab0);
    oc_pref_dataset_free(ds);
}

static void expect_error(const char *dir, const char *line, const char *want) {
    char text[2048];
    snprintf(text, sizeof text, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n%s\n",
             line);
    const char *path = pref_file(dir, "bad.jsonl", text);
    oc_pref_dataset *ds = NULL;
    oc_status s = oc_pref_dataset_open(path, td("smolvlm-tiny"), NULL, &ds);
    assert_true(s != OC_OK && ds == NULL);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:2: ", path);
    const char *msg = oc_last_error();
    if (strncmp(msg, prefix, strlen(prefix)) || !strstr(msg, want))
        fail_msg("line %s: got \"%s\", expected \"%s%s\"", line, msg, prefix, want);
}

static void test_pref_errors(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-err");
    expect_error(dir, "{\"prompt\": \"q\", \"chosen\": \"a\"}", "missing field \"rejected\"");
    expect_error(dir, "{\"prompt\": \"q\", \"rejected\": \"a\"}", "missing field \"chosen\"");
    expect_error(dir, "{\"chosen\": \"a\", \"rejected\": \"b\"}", "missing field \"prompt\"");
    expect_error(dir, "{\"prompt\": \"q\", \"chosen\": \"same\", \"rejected\": \"same\"}",
                 "\"chosen\" and \"rejected\" are the same reply");
    expect_error(dir, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\", \"images\": "
                 "[\"missing.png\"]}", "missing.png' not found");
    expect_error(dir, "{\"prompt\": 7, \"chosen\": \"a\", \"rejected\": \"b\"}",
                 "\"prompt\" must be a string or a list of messages");
    expect_error(dir, "{\"prompt\": \"q\", \"chosen\": [{\"role\": \"user\", \"content\": "
                 "\"x\"}], \"rejected\": \"b\"}", "\"chosen\" must be a string or a list of one "
                 "assistant message");
    expect_error(dir, "{\"prompt\": \"<image><image>q\", \"chosen\": \"a\", \"rejected\": "
                 "\"b\"}", "2 \"<image>\" markers but there are 0 \"images\"");
    expect_error(dir, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"",
                 "invalid JSON");
    expect_error(dir, "[1, 2]", "expected a JSON object");
}

/* The reference cache: written once, read back with the same values, recomputed when the
 * data changes; a resumed run without the reference model reads it or says what to do. */
static void test_reference_cache(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-ref");
    char path[512], cache[512];
    snprintf(path, sizeof path, "%s", pref_file(dir, "p.jsonl",
             "{\"prompt\": \"How many objects are there?\", \"chosen\": \"2\", \"rejected\": "
             "\"3\"}\n{\"prompt\": \"Hi\", \"chosen\": \"hello\", \"rejected\": \"go away\"}\n"));
    snprintf(cache, sizeof cache, "%s/ckpt/ref_logprobs.safetensors", dir);
    const char *model = td("smolvlm-tiny");
    oc_pref_dataset *ds = NULL;
    assert_int_equal(oc_pref_dataset_open(path, model, NULL, &ds), OC_OK);
    int hit = -1;
    if (oc_pref_reference(ds, model, cache, NULL, &hit) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(hit, 0);
    oc_pref_example e;
    assert_int_equal(oc_pref_dataset_get(ds, 1, &e), OC_OK);
    double rc = e.ref_chosen, rr = e.ref_rejected;
    assert_true(rc < 0 && rr < 0 && rc != rr);
    /* the same numbers as a trainer on the model computes directly */
    oc_trainer *tr = NULL;
    assert_int_equal(oc_trainer_new(model, NULL, &tr), OC_OK);
    oc_train_example two[2] = {e.chosen, e.rejected};
    double lp[2];
    assert_int_equal(oc_trainer_logprobs(tr, two, 2, lp, NULL), OC_OK);
    assert_true(lp[0] == rc && lp[1] == rr);
    oc_trainer_free(tr);
    /* read back, also without naming the reference */
    assert_int_equal(oc_pref_dataset_set_reference(ds, NULL), OC_OK);
    assert_int_equal(oc_pref_reference(ds, model, cache, NULL, &hit), OC_OK);
    assert_int_equal(hit, 1);
    assert_int_equal(oc_pref_reference(ds, NULL, cache, NULL, &hit), OC_OK);
    assert_int_equal(hit, 1);
    assert_int_equal(oc_pref_dataset_get(ds, 1, &e), OC_OK);
    assert_true(e.ref_chosen == rc && e.ref_rejected == rr);
    oc_pref_dataset_free(ds);
    /* another data file: the cache is stale */
    pref_file(dir, "p.jsonl", "{\"prompt\": \"Hi\", \"chosen\": \"hello\", \"rejected\": "
              "\"go away\"}\n");
    assert_int_equal(oc_pref_dataset_open(path, model, NULL, &ds), OC_OK);
    assert_int_equal(oc_pref_reference(ds, NULL, cache, NULL, &hit), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "--ref"));
    assert_int_equal(oc_pref_reference(ds, model, cache, NULL, &hit), OC_OK);
    assert_int_equal(hit, 0);
    assert_int_equal(oc_pref_dataset_get(ds, 0, &e), OC_OK);
    assert_true(e.ref_chosen == rc && e.ref_rejected == rr);
    oc_pref_dataset_free(ds);
}

/* ---- fit, resume, the CLI ----------------------------------------------------------- */

static int stop_at_2(const oc_train_stats *st, void *user) {
    (void)user;
    return st->step == 2;
}

static float *read_weights(const char *dir, size_t *n) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return load_f32(path, "model.text_model.embed_tokens.weight", n);
}

/* Four DPO steps straight, or two, a checkpoint, a resume and two more: the same bits. */
static void test_resume_same_bits(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-resume");
    char path[512], a[512], b[512];
    snprintf(path, sizeof path, "%s", pref_file(dir, "p.jsonl",
             "{\"prompt\": \"How many objects are there?\", \"chosen\": \"2\", \"rejected\": "
             "\"3\"}\n{\"prompt\": \"Hi\", \"chosen\": \"hello\", \"rejected\": \"go away\"}\n"
             "{\"prompt\": \"What colour is the star?\", \"chosen\": \"there is no star\", "
             "\"rejected\": \"red\"}\n"));
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    const char *model = td("smolvlm-tiny");
    const char *outs[2] = {a, b};
    for (int run = 0; run < 2; run++) {
        oc_train_params tp = oc_train_default_params();
        tp.objective = OC_OBJECTIVE_DPO;
        tp.steps = 4;
        tp.batch = 2;
        tp.lr = 1e-3;
        tp.out_dir = outs[run];
        tp.on_progress = run ? stop_at_2 : NULL;
        char cache[600];
        snprintf(cache, sizeof cache, "%s/ref_logprobs.safetensors", outs[run]);
        oc_pref_dataset *ds = NULL;
        assert_int_equal(oc_pref_dataset_open(path, model, NULL, &ds), OC_OK);
        assert_int_equal(oc_pref_reference(ds, model, cache, &tp, NULL), OC_OK);
        oc_trainer *tr = NULL;
        assert_int_equal(oc_trainer_new(model, &tp, &tr), OC_OK);
        oc_status s = oc_trainer_fit_pref(tr, oc_pref_dataset_next_batch, ds);
        assert_int_equal(s, run ? OC_ERR_CANCELLED : OC_OK);
        oc_trainer_free(tr);
        oc_pref_dataset_free(ds);
        if (run) {
            /* the resumed run: the reference from the cache beside the checkpoint */
            tp.on_progress = NULL;
            assert_int_equal(oc_pref_dataset_open(path, model, NULL, &ds), OC_OK);
            int hit = 0;
            assert_int_equal(oc_pref_reference(ds, NULL, cache, &tp, &hit), OC_OK);
            assert_int_equal(hit, 1);
            assert_int_equal(oc_trainer_resume(b, &tp, &tr), OC_OK);
            oc_pref_dataset_seek(ds, oc_trainer_get_info(tr).step * tp.batch);
            assert_int_equal(oc_trainer_fit_pref(tr, oc_pref_dataset_next_batch, ds), OC_OK);
            oc_trainer_free(tr);
            oc_pref_dataset_free(ds);
        }
    }
    size_t na, nb;
    float *wa = read_weights(a, &na), *wb = read_weights(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(wa, wb, na * sizeof(float));
    free(wa);
    free(wb);
}

/* ocellus train --objective ...: per-step preference numbers, the cache reused. */
static void test_cli(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-cli");
    char path[512], cmd[2048], out[4096];
    snprintf(path, sizeof path, "%s", pref_file(dir, "p.jsonl",
             "{\"prompt\": \"Hi\", \"chosen\": \"hello\", \"rejected\": \"go away\"}\n"));
    const char *objs[3] = {"dpo", "simpo", "orpo"};
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd, "'%s' train --objective %s --init '%s' --data '%s' --val "
                 "'%s' --out '%s/%s' --steps 2 --threads 1 2>&1", OC_CLI_PATH, objs[k],
                 td("smolvlm-tiny"), path, path, dir, objs[k]);
        FILE *f = popen(cmd, "r");
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        assert_int_equal(pclose(f), 0);
        assert_non_null(strstr(out, "step 2/2  loss "));
        assert_non_null(strstr(out, "margin "));
        assert_non_null(strstr(out, "acc "));
        assert_non_null(strstr(out, "step 2  validation loss "));
        if (k == 0) {
            assert_non_null(strstr(out, "step 1/2  loss 0.6931  margin 0.0000"));
            assert_non_null(strstr(out, "written to"));
            /* a resumed run reads the reference from the checkpoint folder */
            snprintf(cmd, sizeof cmd, "'%s' train --objective dpo --resume '%s/dpo' --data '%s' "
                     "--out '%s/dpo' --steps 3 --threads 1 2>&1", OC_CLI_PATH, dir, path, dir);
            f = popen(cmd, "r");
            n = fread(out, 1, sizeof out - 1, f);
            out[n] = 0;
            assert_int_equal(pclose(f), 0);
            assert_non_null(strstr(out, "read from"));
            assert_non_null(strstr(out, "step 3/3"));
        }
    }
    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' train --objective simpo --ref x --init '%s' --data '%s' "
             "--out '%s/x' 2>&1", OC_CLI_PATH, td("smolvlm-tiny"), path, dir);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    assert_int_not_equal(pclose(f), 0);
    assert_non_null(strstr(out, "--ref is for --objective dpo"));
}

/* ---- ocellus data preferences ------------------------------------------------------- */

/* Sampled answers graded by the reference: pairs whose chosen reply scores higher, in the
 * format the preference reader takes (images resolved from the pairs' folder). */
static void test_make_preferences(void **state) {
    (void)state;
    const char *dir = tmpdir("pref-make");
    char cmd[2048], data[512], out[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/img' && cp '%s' '%s/img/a.png'", dir,
             td("images/shapes_200x130.png"), dir);
    assert_int_equal(system(cmd), 0);
    snprintf(data, sizeof data, "%s", pref_file(dir, "vqa.jsonl",
             "{\"image\": \"img/a.png\", \"question\": \"How many objects are there?\", "
             "\"answer\": \"2\", \"type\": \"count\"}\n"
             "{\"image\": \"img/a.png\", \"question\": \"What colour is the star?\", "
             "\"answers\": [\"there is no star\"], \"type\": \"false_premise\"}\n"));
    snprintf(out, sizeof out, "%s/pairs/p.jsonl", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/pairs'", dir);
    assert_int_equal(system(cmd), 0);
    oc_model *m = NULL;
    oc_model_params mp = oc_model_default_params();
    mp.n_threads = 1;
    assert_int_equal(oc_model_load(td("smolvlm-tiny"), &mp, &m), OC_OK);
    oc_pref_gen_params gp = oc_pref_gen_default_params();
    gp.samples = 3;
    gp.max_tokens = 4;
    gp.reference_fallback = 1; /* a random model is never right */
    oc_pref_gen_stats st;
    if (oc_make_preferences(m, data, &gp, out, &st) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(st.prompts, 2);
    assert_int_equal(st.pairs + st.skipped, 2);
    assert_true(st.pairs >= 1);
    assert_int_equal(st.from_reference, st.none_right);
    /* the same seed, the same file */
    char out2[600];
    snprintf(out2, sizeof out2, "%s/pairs/q.jsonl", dir);
    assert_int_equal(oc_make_preferences(m, data, &gp, out2, NULL), OC_OK);
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", out, out2);
    assert_int_equal(system(cmd), 0);
    /* readable as preference pairs, the chosen reply the reference */
    oc_pref_dataset *ds = NULL;
    if (oc_pref_dataset_open(out, td("smolvlm-tiny"), NULL, &ds) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(oc_pref_dataset_size(ds), st.pairs);
    oc_pref_example e;
    assert_int_equal(oc_pref_dataset_get(ds, 0, &e), OC_OK);
    assert_true(e.chosen.n_tiles > 0);
    oc_pref_dataset_free(ds);
    FILE *f = fopen(out, "r");
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_true(strstr(line, "\"chosen\": \"2\"") || strstr(line, "\"chosen\": \"there is no star\""));
    assert_non_null(strstr(line, "\"images\": [\"")); /* absolute: img/ is not under pairs/ */
    assert_non_null(strstr(line, "/img/a.png\"]"));
    /* without the fallback, all-wrong items give no pair */
    gp.reference_fallback = 0;
    assert_int_equal(oc_make_preferences(m, data, &gp, out2, &st), OC_OK);
    assert_int_equal(st.from_reference, 0);
    assert_int_equal(st.pairs + st.none_right + st.all_right, 2);
    /* a bad data file: FILE:LINE */
    pref_file(dir, "bad.jsonl", "{\"image\": \"img/a.png\", \"question\": \"q\"}\n");
    snprintf(data, sizeof data, "%s/bad.jsonl", dir);
    assert_int_not_equal(oc_make_preferences(m, data, &gp, out2, NULL), OC_OK);
    assert_non_null(strstr(oc_last_error(), "bad.jsonl:1"));
    oc_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpo_values),
        cmocka_unit_test(test_rpo_values),
        cmocka_unit_test(test_simpo_values),
        cmocka_unit_test(test_orpo_values),
        cmocka_unit_test(test_loss_derivatives),
        cmocka_unit_test(test_gradients_dpo),
        cmocka_unit_test(test_gradients_simpo),
        cmocka_unit_test(test_gradients_orpo),
        cmocka_unit_test(test_dpo_starts_at_log2),
        cmocka_unit_test(test_logprob_matches_inference),
        cmocka_unit_test(test_pref_formats),
        cmocka_unit_test(test_pref_errors),
        cmocka_unit_test(test_reference_cache),
        cmocka_unit_test(test_resume_same_bits),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_make_preferences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
