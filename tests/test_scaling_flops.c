/* The compute of a training step: the FLOPs the kernels count as they run
 * (oc_train_stats.flops) equal the count written out from the model's shapes
 * (oc_trainer_step_flops), for sequences longer than one attention block, several tiles,
 * GQA, packed micro-batches and gradient accumulation, on one thread and on two. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define IMAGE_TOKEN 3
#define TILE_FLOATS (3 * 16 * 16)
#define N_EX 5

static void write_config(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path,
               "{\"model_type\": \"smolvlm\", \"image_token_id\": 3, \"scale_factor\": 2,"
               " \"tie_word_embeddings\": true, \"pad_token_id\": 0,"
               " \"vision_config\": {\"hidden_size\": 12, \"intermediate_size\": 20,"
               "  \"num_hidden_layers\": 2, \"num_attention_heads\": 3, \"image_size\": 16,"
               "  \"patch_size\": 4, \"num_channels\": 3, \"layer_norm_eps\": 1e-6,"
               "  \"hidden_act\": \"gelu_pytorch_tanh\"},"
               " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 16,"
               "  \"intermediate_size\": 24, \"num_hidden_layers\": 2,"
               "  \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 4,"
               "  \"vocab_size\": 50, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,"
               "  \"max_position_embeddings\": 512, \"tie_word_embeddings\": true,"
               "  \"pad_token_id\": 0}}");
}

typedef struct {
    oc_train_example ex[N_EX];
    int32_t ids[N_EX][200], labels[N_EX][200];
    float pixels[4 * TILE_FLOATS];
} batch;

/* Lengths around the attention kernel's 64-query blocks (one less, one more, several);
 * 4 <image> tokens per tile; labels on every third text position. */
static void make_batch(batch *b) {
    static const size_t lens[N_EX] = {150, 64, 65, 9, 130};
    static const uint32_t tiles[N_EX] = {1, 0, 2, 0, 1};
    for (size_t i = 0; i < 4 * TILE_FLOATS; i++)
        b->pixels[i] = (float)sin(0.37 * (double)i);
    size_t tile = 0;
    for (int e = 0; e < N_EX; e++) {
        size_t n = lens[e], t = 0;
        b->ids[e][t++] = 1;
        for (size_t k = 0; k < tiles[e] * 4; k++)
            b->ids[e][t++] = IMAGE_TOKEN;
        for (; t < n; t++)
            b->ids[e][t] = 5 + (int32_t)((t * 11 + (size_t)e) % 45);
        for (size_t k = 0; k < n; k++)
            b->labels[e][k] = b->ids[e][k] != IMAGE_TOKEN && k % 3 == 0 ? b->ids[e][k] : -100;
        b->ex[e] = (oc_train_example){b->ids[e], b->labels[e], n,
                                      tiles[e] ? b->pixels + tile * TILE_FLOATS : NULL,
                                      tiles[e]};
        tile += tiles[e];
    }
}

static void check(int threads, uint32_t micro, uint32_t accum) {
    const char *dir = tmpdir("scaling_flops");
    write_config(dir);
    oc_train_params tp = oc_train_default_params();
    tp.n_threads = threads;
    tp.batch = micro;
    tp.grad_accum = accum;
    oc_trainer *tr = NULL;
    if (oc_trainer_new_from_config(dir, &tp, &tr) != OC_OK)
        fail_msg("%s", oc_last_error());
    batch *b = calloc(1, sizeof *b);
    make_batch(b);
    oc_step_flops shape;
    assert_int_equal(oc_trainer_step_flops(tr, b->ex, N_EX, &shape), OC_OK);
    /* two steps: the trainer times one thread against its pool between them */
    for (int step = 0; step < 3; step++) {
        oc_train_stats st;
        if (oc_trainer_step(tr, b->ex, N_EX, &st) != OC_OK)
            fail_msg("%s", oc_last_error());
        print_message("threads %d (ran on %d), batch %u x %u: counted %.0f, from shapes %.0f "
                      "(forward %.0f, attention %.0f, exact-mask attention %.0f, 6ND %.0f)\n",
                      threads, st.threads, micro, accum, st.flops, shape.total, shape.forward,
                      shape.attention, shape.attention_exact, shape.six_n_d);
        assert_true(fabs(st.flops - shape.total) <= 1e-12 * shape.total);
        assert_true(fabs(st.total_flops - (step + 1) * shape.total) <= 1e-12 * st.total_flops);
    }
    /* the parts add up and the exact mask is cheaper than the blocks */
    assert_true(shape.forward < shape.total && shape.attention < shape.total);
    assert_true(shape.vision > 0 && shape.lm_head > 0);
    assert_true(shape.attention_exact < shape.attention);
    oc_step_flops none;
    assert_int_equal(oc_trainer_step_flops(tr, b->ex, 0, &none), OC_OK);
    assert_true(none.total == 0);
    assert_int_equal(oc_trainer_step_flops(NULL, b->ex, 1, &none), OC_ERR_INVALID_ARG);
    free(b);
    oc_trainer_free(tr);
}

static void test_one_thread(void **state) {
    (void)state;
    check(1, N_EX, 1);
}

static void test_two_threads_packed(void **state) {
    (void)state;
    check(2, 2, 3); /* micro-batches of 2, 2 and 1 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread),
        cmocka_unit_test(test_two_threads_packed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
