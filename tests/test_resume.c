/* Checkpoints: N steps straight == N/2 steps + save + resume + N/2 steps, bit for bit
 * (weights, AdamW moments, step count, losses); checkpoints load as model folders;
 * oc_trainer_fit's loop, periodic saves and cancellation; bad input leaves the weights
 * alone; allocation failures are reported, never crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "file.h"
#include "params.h"
#include "testutil.h"
#include "train_fixture.h"
#include "trainer_internal.h"

#define STEPS 6

static oc_train_params params(void) {
    oc_train_params tp = oc_train_default_params();
    tp.lr = 3e-3;
    tp.warmup_steps = 2;
    tp.steps = STEPS;
    tp.clip = 0.5;
    tp.batch = 2;
    tp.grad_accum = 2;
    tp.seed = 11;
    tp.init_std = 0.3f;
    return tp;
}

static oc_trainer *fresh(const char *dir) {
    oc_train_params tp = params();
    oc_trainer *tr = NULL;
    if (oc_trainer_new_from_config(dir, &tp, &tr) != OC_OK)
        fail_msg("%s", oc_last_error());
    return tr;
}

static double run_step(oc_trainer *tr, int i) {
    fixture_batch fb;
    fixture_examples(&fb, 100 + (uint64_t)i, i);
    oc_train_stats st;
    if (oc_trainer_step(tr, fb.ex, 4, &st) != OC_OK)
        fail_msg("%s", oc_last_error());
    free(fb.pixels);
    assert_int_equal(st.step, (uint64_t)i + 1);
    return st.loss;
}

static float *read_all(const char *path, const oc_params *p, const char *prefix) {
    oc_st_file *f = NULL;
    assert_int_equal(oc_st_open(path, &f), OC_OK);
    float *x = malloc(p->numel * sizeof(float));
    for (size_t i = 0; i < p->n_tensors; i++) {
        char name[200];
        snprintf(name, sizeof name, "%s%s", prefix, p->info[i].name);
        const oc_st_tensor *t = oc_st_find(f, name);
        if (!t)
            fail_msg("%s: no %s", path, name);
        assert_int_equal(t->dtype, OC_DT_F32);
        assert_int_equal(t->numel, p->info[i].numel);
        memcpy(x + p->info[i].offset, t->data, t->numel * sizeof(float));
    }
    oc_st_close(f);
    return x;
}

static void test_resume_bit_for_bit(void **state) {
    (void)state;
    const char *tmp = tmpdir("resume");
    char cfgdir[512], a_dir[512], b_dir[512], mid[512];
    snprintf(cfgdir, sizeof cfgdir, "%s/cfg", tmp);
    snprintf(a_dir, sizeof a_dir, "%s/straight", tmp);
    snprintf(b_dir, sizeof b_dir, "%s/resumed", tmp);
    snprintf(mid, sizeof mid, "%s/half/ckpt", tmp); /* nested: save creates parents */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cfgdir);
    assert_int_equal(system(cmd), 0);
    fixture_config(cfgdir, 1);
    char tok[600];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", cfgdir);
    write_text(tok, "{\"model\": {}}");

    double straight[STEPS], resumed[STEPS];
    oc_trainer *a = fresh(cfgdir);
    for (int i = 0; i < STEPS; i++)
        straight[i] = run_step(a, i);
    assert_int_equal(oc_trainer_save(a, a_dir), OC_OK);

    oc_trainer *b = fresh(cfgdir);
    for (int i = 0; i < STEPS / 2; i++)
        resumed[i] = run_step(b, i);
    assert_int_equal(oc_trainer_save(b, mid), OC_OK);
    oc_trainer_free(b);
    oc_train_params tp = params();
    b = NULL;
    if (oc_trainer_resume(mid, &tp, &b) != OC_OK)
        fail_msg("%s", oc_last_error());
    assert_int_equal(oc_trainer_get_info(b).step, STEPS / 2);
    for (int i = STEPS / 2; i < STEPS; i++)
        resumed[i] = run_step(b, i);
    assert_int_equal(oc_trainer_save(b, b_dir), OC_OK);

    for (int i = 0; i < STEPS; i++) {
        print_message("step %d: loss %.9f straight, %.9f resumed\n", i + 1, straight[i],
                      resumed[i]);
        assert_true(straight[i] == resumed[i]);
    }
    oc_params *pa = oc_trainer_params_internal(a), *pb = oc_trainer_params_internal(b);
    assert_int_equal(pa->numel, pb->numel);
    assert_memory_equal(pa->mem, pb->mem, pa->numel * sizeof(float));
    /* the saved moments too */
    char pa_opt[600], pb_opt[600];
    snprintf(pa_opt, sizeof pa_opt, "%s/optimizer.safetensors", a_dir);
    snprintf(pb_opt, sizeof pb_opt, "%s/optimizer.safetensors", b_dir);
    for (int k = 0; k < 2; k++) {
        const char *pre = k ? "exp_avg_sq." : "exp_avg.";
        float *ma = read_all(pa_opt, pa, pre), *mb = read_all(pb_opt, pa, pre);
        assert_memory_equal(ma, mb, pa->numel * sizeof(float));
        free(ma);
        free(mb);
    }

    /* the checkpoint is a model folder: config, weights under transformers' names, and
     * the side files of the folder training began from */
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", a_dir);
    float *w = read_all(path, pa, "");
    assert_memory_equal(w, pa->mem, pa->numel * sizeof(float));
    free(w);
    snprintf(path, sizeof path, "%s/tokenizer.json", a_dir);
    assert_true(oc_file_exists(path));
    oc_trainer *c = NULL;
    assert_int_equal(oc_trainer_new(a_dir, &tp, &c), OC_OK);
    assert_memory_equal(oc_trainer_params_internal(c)->mem, pa->mem,
                        pa->numel * sizeof(float));
    assert_int_equal(oc_trainer_get_info(c).step, 0); /* weights only: a new run */
    oc_trainer_free(c);

    oc_trainer_free(a);
    oc_trainer_free(b);
}

typedef struct {
    int calls, cancel_at;
    fixture_batch fb; /* the batch handed out last, valid until the next call */
} fit_state;

static oc_status next_batch(oc_train_example *ex, size_t n, void *user) {
    fit_state *fs = user;
    free(fs->fb.pixels);
    fixture_examples(&fs->fb, 7, fs->calls++);
    assert_int_equal(n, 4);
    memcpy(ex, fs->fb.ex, 4 * sizeof *ex);
    return OC_OK;
}

static int progress(const oc_train_stats *st, void *user) {
    fit_state *fs = user;
    assert_true(isfinite(st->loss) && st->flops > 0 && st->total_flops >= st->flops);
    return fs->cancel_at && (int)st->step == fs->cancel_at;
}

static void test_fit_and_cancel(void **state) {
    (void)state;
    const char *tmp = tmpdir("fit");
    fixture_config(tmp, 0);
    char out[600];
    snprintf(out, sizeof out, "%s/out", tmp);
    fit_state fs;
    memset(&fs, 0, sizeof fs);
    oc_train_params tp = params();
    tp.out_dir = out;
    tp.save_every = 2;
    tp.on_progress = progress;
    tp.user_data = &fs;
    oc_trainer *tr = NULL;
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &tr), OC_OK);
    assert_int_equal(oc_trainer_fit(tr, next_batch, &fs), OC_OK);
    assert_int_equal(fs.calls, STEPS);
    assert_int_equal(oc_trainer_get_info(tr).step, STEPS);
    oc_trainer_free(tr);
    char path[700];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", out);
    assert_true(oc_file_exists(path));
    snprintf(path, sizeof path, "%s/config.json", out);
    assert_true(oc_file_exists(path));

    /* the progress callback stops the loop; the checkpoint is still written */
    free(fs.fb.pixels);
    memset(&fs, 0, sizeof fs);
    fs.cancel_at = 3;
    tp.steps = 100;
    tr = NULL;
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &tr), OC_OK);
    assert_int_equal(oc_trainer_fit(tr, next_batch, &fs), OC_ERR_CANCELLED);
    assert_int_equal(oc_trainer_get_info(tr).step, 3);
    oc_trainer_free(tr);
    free(fs.fb.pixels);
}

static void test_bad_input_leaves_weights(void **state) {
    (void)state;
    const char *tmp = tmpdir("bad-input");
    fixture_config(tmp, 1);
    oc_trainer *tr = fresh(tmp);
    oc_params *p = oc_trainer_params_internal(tr);
    float *before = malloc(p->numel * sizeof(float));
    memcpy(before, p->mem, p->numel * sizeof(float));
    fixture_batch fb;
    fixture_examples(&fb, 1, 0);
    oc_train_stats st;

    fb.ex[0].n_tiles = 1; /* 8 image tokens for 1 tile of 4 */
    assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_ERR_INVALID_ARG);
    print_message("  %s\n", oc_last_error());
    fb.ex[0].n_tiles = 2;
    fb.ids[1][3] = 20; /* outside the vocabulary */
    assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_ERR_INVALID_ARG);
    print_message("  %s\n", oc_last_error());
    fb.ids[1][3] = 5;
    fb.labels[2][4] = -7;
    assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_ERR_INVALID_ARG);
    fb.labels[2][4] = 5;
    for (size_t t = 0; t < fb.ex[1].n_tokens; t++)
        fb.labels[1][t] = -100;
    assert_int_equal(oc_trainer_step(tr, fb.ex + 1, 1, &st), OC_ERR_INVALID_ARG);
    print_message("  %s\n", oc_last_error());
    fb.pixels[17] = NAN;
    assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_ERR_INVALID_ARG);
    print_message("  %s\n", oc_last_error());
    fb.pixels[17] = 0.5f;
    assert_int_equal(oc_trainer_step(tr, NULL, 0, &st), OC_ERR_INVALID_ARG);
    assert_memory_equal(before, p->mem, p->numel * sizeof(float));
    assert_int_equal(oc_trainer_get_info(tr).step, 0);

    /* and a good step afterwards works */
    assert_int_equal(oc_trainer_step(tr, fb.ex, 4, &st), OC_OK);
    assert_int_equal(st.step, 1);

    /* files that are not checkpoints */
    oc_trainer *r = NULL;
    oc_train_params tp = params();
    assert_int_not_equal(oc_trainer_resume(tmp, &tp, &r), OC_OK); /* no weights */
    assert_null(r);
    assert_int_not_equal(oc_trainer_new_from_config("/nonexistent/x.txt", &tp, &r), OC_OK);
    tp.batch = 0;
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &r), OC_ERR_INVALID_ARG);

    free(before);
    free(fb.pixels);
    oc_trainer_free(tr);
}

/* Fresh weights: transformers' _init_weights, seeded. */
/* vision_lr_scale: one AdamW step moves the vision tower and the connector k times as far
 * (the first step's update is lr * g / (|g| + eps)) and the text model exactly as far. */
static void test_vision_lr_scale(void **state) {
    (void)state;
    const char *tmp = tmpdir("vlr");
    fixture_config(tmp, 0);
    oc_trainer *tr[3];
    double scale[3] = {0, 1, 3}; /* 0 means 1 */
    for (int j = 0; j < 3; j++) {
        oc_train_params tp = params();
        tp.warmup_steps = 0;
        tp.weight_decay = 0;
        tp.vision_lr_scale = scale[j];
        assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &tr[j]), OC_OK);
    }
    oc_params *p0 = oc_trainer_params_internal(tr[0]);
    float *init = malloc(p0->numel * sizeof(float));
    memcpy(init, p0->mem, p0->numel * sizeof(float));
    for (int j = 0; j < 3; j++)
        run_step(tr[j], 0);
    const float *a = p0->mem, *b = oc_trainer_params_internal(tr[1])->mem,
                *c = oc_trainer_params_internal(tr[2])->mem;
    assert_memory_equal(a, b, p0->numel * sizeof(float));
    size_t n_vision = 0, n_moved = 0;
    for (size_t i = 0; i < p0->n_tensors; i++) {
        const oc_tp_info *e = &p0->info[i];
        int vision = !strncmp(e->name, "model.vision_model.", 19) ||
                     !strncmp(e->name, "model.connector.", 16);
        for (size_t k = e->offset; k < e->offset + e->numel; k++) {
            double d1 = (double)b[k] - init[k], d3 = (double)c[k] - init[k];
            if (!vision) {
                assert_true(c[k] == b[k]);
                continue;
            }
            n_vision++;
            if (fabs(d1) < 1e-6) /* a zero gradient: eps dominates, nothing to compare */
                continue;
            n_moved++;
            if (fabs(d3 - 3 * d1) > 1e-3 * fabs(d1) + 1e-7)
                fail_msg("%s[%zu]: moved %g at scale 1, %g at scale 3", e->name,
                         k - e->offset, d1, d3);
        }
    }
    assert_true(n_vision > 0 && n_moved > n_vision / 2);
    free(init);
    for (int j = 0; j < 3; j++)
        oc_trainer_free(tr[j]);
}

static void test_init(void **state) {
    (void)state;
    const char *tmp = tmpdir("init");
    fixture_config(tmp, 0);
    oc_train_params tp = oc_train_default_params();
    tp.seed = 5;
    oc_trainer *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &a), OC_OK);
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &b), OC_OK);
    tp.seed = 6;
    assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &c), OC_OK);
    oc_params *pa = oc_trainer_params_internal(a);
    assert_memory_equal(pa->mem, oc_trainer_params_internal(b)->mem, pa->numel * 4);
    assert_memory_not_equal(pa->mem, oc_trainer_params_internal(c)->mem, pa->numel * 4);
    double s = 0, ss = 0;
    size_t nw = 0;
    for (size_t i = 0; i < pa->n_tensors; i++) {
        const oc_tp_info *e = &pa->info[i];
        const float *x = pa->mem + e->offset;
        int bias = strstr(e->name, ".bias") != NULL;
        int norm = e->ndim == 1 && strstr(e->name, "norm") && !bias;
        for (size_t k = 0; k < e->numel; k++) {
            if (bias)
                assert_true(x[k] == 0.0f);
            else if (norm)
                assert_true(x[k] == 1.0f);
            else {
                s += x[k];
                ss += (double)x[k] * x[k];
                nw++;
            }
        }
    }
    double mean = s / (double)nw, sd = sqrt(ss / (double)nw - mean * mean);
    print_message("  %zu weights: mean %.4f, std %.4f (config: 0.02)\n", nw, mean, sd);
    assert_true(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.001);
    /* pad_token_id 0: nn.Embedding(padding_idx=0) starts with that row at zero */
    for (int k = 0; k < 8; k++)
        assert_true(pa->t.embed[k] == 0.0f);

    /* any float dtype loads: a BF16 copy reads back as the rounded weights */
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    oc_st_writer *w = NULL;
    assert_int_equal(oc_st_writer_new(&w), OC_OK);
    for (size_t i = 0; i < pa->n_tensors; i++)
        assert_int_equal(oc_st_writer_add_f32_as(w, pa->info[i].name, OC_DT_BF16,
                                                 pa->info[i].ndim, pa->info[i].shape,
                                                 pa->mem + pa->info[i].offset),
                         OC_OK);
    assert_int_equal(oc_st_writer_save(w, path), OC_OK);
    oc_st_writer_free(w);
    oc_trainer *d = NULL;
    assert_int_equal(oc_trainer_new(tmp, &tp, &d), OC_OK);
    const float *xd = oc_trainer_params_internal(d)->mem;
    for (size_t k = 0; k < pa->numel; k++)
        assert_true(xd[k] == oc_bf16_to_f32(oc_f32_to_bf16(pa->mem[k])));
    oc_trainer_free(a);
    oc_trainer_free(b);
    oc_trainer_free(c);
    oc_trainer_free(d);
}

/* The same bits on one thread or several: every output element of a product sums its k
 * in one order whatever the tiling, attention items and elementwise loops are
 * independent, reductions run in a fixed order. A model big enough for the parallel
 * paths to be taken. */
static void test_thread_count_invariance(void **state) {
    (void)state;
    const char *tmp = tmpdir("threads");
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", tmp);
    write_text(path,
               "{\"model_type\": \"smolvlm\", \"image_token_id\": 3, \"scale_factor\": 2,"
               " \"vision_config\": {\"hidden_size\": 64, \"intermediate_size\": 256,"
               "  \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"image_size\": 32,"
               "  \"patch_size\": 4},"
               " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 128,"
               "  \"intermediate_size\": 384, \"num_hidden_layers\": 1,"
               "  \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
               "  \"vocab_size\": 512, \"tie_word_embeddings\": false}}");
    enum { B = 4, T = 48, IMG = 16 };
    static int32_t ids[B][T], labels[B][T];
    float *px = malloc((size_t)B * 3 * 32 * 32 * sizeof(float));
    uint64_t s = 9;
    for (size_t i = 0; i < (size_t)B * 3 * 32 * 32; i++)
        px[i] = (float)(2 * fixture_uniform(&s) - 1);
    oc_train_example ex[B];
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int img = t >= 1 && t <= IMG;
            ids[b][t] = img ? 3 : 5 + (int32_t)(fixture_uniform(&s) * 500);
            labels[b][t] = img ? -100 : ids[b][t];
        }
        ex[b] = (oc_train_example){ids[b], labels[b], T, px + (size_t)b * 3 * 32 * 32, 1};
    }
    float *w[2];
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        oc_set_threads(k ? 2 : 1);
        oc_train_params tp = oc_train_default_params();
        tp.batch = B;
        tp.steps = 3;
        oc_trainer *tr = NULL;
        assert_int_equal(oc_trainer_new_from_config(tmp, &tp, &tr), OC_OK);
        oc_train_stats st;
        for (int i = 0; i < 3; i++)
            assert_int_equal(oc_trainer_step(tr, ex, B, &st), OC_OK);
        oc_params *p = oc_trainer_params_internal(tr);
        n = p->numel;
        w[k] = malloc(n * sizeof(float));
        memcpy(w[k], p->mem, n * sizeof(float));
        print_message("  %d thread(s) asked, last step ran on %d: loss %.9f\n", k ? 2 : 1,
                      st.threads, st.loss);
        oc_trainer_free(tr);
    }
    oc_set_threads(0);
    assert_memory_equal(w[0], w[1], n * sizeof(float));
    free(w[0]);
    free(w[1]);
    free(px);
}

/* The k-th allocation fails, for every k until none does: a status, never a crash. */
static void test_allocation_failures(void **state) {
    (void)state;
    const char *tmp = tmpdir("alloc-fail");
    fixture_config(tmp, 0);
    fixture_batch fb;
    fixture_examples(&fb, 2, 0);
    oc_train_params tp = params();
    int ok = 0;
    for (long k = 1; k < 2000 && !ok; k++) {
        oc_alloc_fail_at(k);
        oc_trainer *tr = NULL;
        oc_status s = oc_trainer_new_from_config(tmp, &tp, &tr);
        oc_train_stats st;
        if (s == OC_OK)
            s = oc_trainer_step(tr, fb.ex, 4, &st);
        long used = oc_alloc_fail_at(0);
        if (s == OC_OK)
            ok = used < k; /* the failure point was never reached */
        else
            assert_int_equal(s, OC_ERR_NOMEM);
        oc_trainer_free(tr);
    }
    oc_alloc_fail_at(0);
    assert_true(ok);
    free(fb.pixels);
}

/* A folder whose weights and optimizer state are of different steps (what a save that
 * stopped between its files left before checkpoints were written whole, or a folder put
 * together by hand) is refused, and so is one without optimizer state. */
static void test_incomplete_checkpoint(void **state) {
    (void)state;
    const char *tmp = tmpdir("incomplete");
    fixture_config(tmp, 0);
    char a[600], b[600], cmd[1400];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    oc_trainer *tr = fresh(tmp);
    run_step(tr, 0);
    assert_int_equal(oc_trainer_save(tr, a), OC_OK);
    run_step(tr, 1);
    assert_int_equal(oc_trainer_save(tr, b), OC_OK);
    oc_trainer_free(tr);
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/model.safetensors'", b, a);
    assert_int_equal(system(cmd), 0);
    oc_train_params tp = params();
    oc_trainer *r = NULL;
    assert_int_equal(oc_trainer_resume(a, &tp, &r), OC_ERR_FORMAT);
    print_message("  %s\n", oc_last_error());
    assert_non_null(strstr(oc_last_error(), "is incomplete: model.safetensors is of step 2 "
                                            "but optimizer.safetensors of step 1"));
    snprintf(cmd, sizeof cmd, "rm '%s/optimizer.safetensors'", a);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(oc_trainer_resume(a, &tp, &r), OC_ERR_FORMAT);
    print_message("  %s\n", oc_last_error());
    assert_non_null(strstr(oc_last_error(), "has no optimizer.safetensors"));
    assert_null(r);
    assert_int_equal(oc_trainer_resume(b, &tp, &r), OC_OK);
    assert_int_equal(oc_trainer_get_info(r).step, 2);
    oc_trainer_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bit_for_bit),
        cmocka_unit_test(test_fit_and_cancel),
        cmocka_unit_test(test_bad_input_leaves_weights),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_vision_lr_scale),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_incomplete_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
