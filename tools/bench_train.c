/* bench_train: training throughput of ocellus on a ~5M-parameter SmolVLM-shaped model
 * (random weights, random data), through the public API only.
 *
 *   bench_train [--steps N] [--batch B] [--seq T] [--threads N] [--layers L]
 *
 * Each example is one 64x64 tile (16 <image> tokens after the pixel shuffle) inside a
 * sequence of T tokens; every non-image position is labelled. Prints tokens/s (all
 * tokens of the sequences, image placeholders included), ms per step and GFLOP/s of the
 * matrix products. tools/bench_train_torch.py runs the same model and batch in PyTorch.
 *
 * Under an MPI launcher (`mpirun -np N bench_train ...`) the batch is the global one, split
 * among the ranks (docs/DISTRIBUTED.md); rank 0 prints, with the time in exchanges. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ocellus.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_u64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The model: vision 64x64 tiles, patch 8, hidden 128 x 4 layers; text hidden 256 x 5
 * layers, 4 heads over 2 KV heads, SwiGLU 768, vocab 2048, tied embeddings. */
static const char *config_fmt =
    "{\"model_type\": \"smolvlm\", \"image_token_id\": 3, \"scale_factor\": 2,"
    " \"tie_word_embeddings\": true,"
    " \"vision_config\": {\"hidden_size\": 128, \"intermediate_size\": 512,"
    "  \"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"image_size\": 64,"
    "  \"patch_size\": 8, \"layer_norm_eps\": 1e-6, \"hidden_act\": \"gelu_pytorch_tanh\"},"
    " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 256,"
    "  \"intermediate_size\": 768, \"num_hidden_layers\": %d, \"num_attention_heads\": 4,"
    "  \"num_key_value_heads\": 2, \"vocab_size\": 2048, \"rms_norm_eps\": 1e-5,"
    "  \"rope_theta\": 10000.0, \"max_position_embeddings\": 2048,"
    "  \"tie_word_embeddings\": true}}";

int main(int argc, char **argv) {
    int steps = 20, batch = 8, seq = 64, threads = 0, layers = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--steps"))
            steps = v;
        else if (!strcmp(argv[i], "--batch"))
            batch = v;
        else if (!strcmp(argv[i], "--seq"))
            seq = v;
        else if (!strcmp(argv[i], "--threads"))
            threads = v;
        else if (!strcmp(argv[i], "--layers"))
            layers = v;
        else {
            fprintf(stderr, "usage: bench_train [--steps N] [--batch B] [--seq T] "
                            "[--threads N] [--layers L]\n");
            return 2;
        }
    }
    if (steps < 1 || batch < 1 || seq < 20 || layers < 1) {
        fprintf(stderr, "bench_train: steps, batch, layers >= 1 and seq >= 20\n");
        return 2;
    }
    if (oc_dist_init() != OC_OK) {
        fprintf(stderr, "bench_train: %s\n", oc_last_error());
        return 1;
    }
    oc_dist_info job = oc_dist_get_info();
    oc_set_threads(threads || job.size == 1 ? threads : job.threads);

    char dir[] = "/tmp/ocellus-bench-train-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], text[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(text, sizeof text, config_fmt, layers);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        return 1;
    }

    oc_train_params tp = oc_train_default_params();
    tp.steps = (uint64_t)steps + 2;
    tp.warmup_steps = 1;
    tp.batch = (uint32_t)batch;
    tp.seed = 1;
    oc_trainer *tr = NULL;
    oc_status s = oc_trainer_new_from_config(path, &tp, &tr);
    remove(path);
    rmdir(dir);
    if (s != OC_OK) {
        fprintf(stderr, "bench_train: %s\n", oc_last_error());
        return 1;
    }
    oc_trainer_info info = oc_trainer_get_info(tr);

    size_t tile = 3 * (size_t)info.image_size * info.image_size;
    int32_t *ids = malloc((size_t)batch * seq * sizeof(int32_t));
    int32_t *labels = malloc((size_t)batch * seq * sizeof(int32_t));
    float *pixels = malloc((size_t)batch * tile * sizeof(float));
    oc_train_example *ex = calloc((size_t)batch, sizeof *ex);
    if (!ids || !labels || !pixels || !ex)
        return 1;
    for (size_t i = 0; i < (size_t)batch * tile; i++)
        pixels[i] = (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2 - 1);
    for (int b = 0; b < batch; b++) {
        int32_t *id = ids + (size_t)b * seq, *lb = labels + (size_t)b * seq;
        for (int t = 0; t < seq; t++) {
            int img = t >= 1 && t < 1 + (int)info.image_seq;
            id[t] = img ? info.image_token_id : 5 + (int32_t)(next_u64() % (info.vocab - 5));
            lb[t] = img ? OC_IGNORE_INDEX : id[t];
        }
        ex[b] = (oc_train_example){id, lb, (size_t)seq, pixels + (size_t)b * tile, 1};
    }

    if (job.rank == 0)
        printf("model: %.2fM parameters; batch %d x %d tokens (1 tile each); %d rank(s) x %d "
               "thread(s)\n", (double)info.n_params / 1e6, batch, seq, job.size,
               threads ? threads : job.threads);
    oc_train_stats st;
    for (int i = 0; i < 2; i++) /* warm-up: allocations, caches, thread pools */
        if (oc_trainer_step(tr, ex, (size_t)batch, &st) != OC_OK) {
            fprintf(stderr, "bench_train: %s\n", oc_last_error());
            return 1;
        }
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), flops = 0,
           loss0 = st.loss, comm = 0;
    for (int i = 0; i < steps; i++) {
        if (oc_trainer_step(tr, ex, (size_t)batch, &st) != OC_OK) {
            fprintf(stderr, "bench_train: %s\n", oc_last_error());
            return 1;
        }
        flops += st.flops;
        comm += st.comm_seconds;
    }
    double dt = clock_s(CLOCK_MONOTONIC) - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double tokens = (double)steps * batch * seq;
    if (job.rank == 0)
        printf("ocellus: %d steps in %.2f s: %.1f ms/step, %.0f tokens/s, %.2f GFLOP/s "
               "(%.3g FLOP/step), %.1f CPU ms/step (rank 0); loss %.3f -> %.3f; "
               "exchanges %.1f ms/step (%.2f MB of gradients per step)\n", steps, dt,
               1e3 * dt / steps, tokens / dt, flops / dt / 1e9, flops / steps,
               1e3 * cpu / steps, loss0, st.loss, 1e3 * comm / steps,
               (double)info.n_params * 4 / 1e6);
    oc_trainer_free(tr);
    free(ids);
    free(labels);
    free(pixels);
    free(ex);
    oc_dist_finalize();
    return 0;
}
