/* bench_kernels: the speed of the core kernels on this CPU, one at a time (a benchmark,
 * never a test). Built against the library's internal headers.
 *
 *   bench_kernels [--threads N] [--isa scalar|avx2|avx512] [--reps R] [--cpu-time]
 *
 * Prints GFLOP/s of GEMMs in the shapes of a SigLIP-B/16 encoder and a prefill, GB/s of
 * decode-sized products per weight format, and the time of encoder attention. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "kernels.h"

/* Wall time, or with --cpu-time the process's CPU time (on a machine others share, a
 * one-thread figure that leaves out the time the OS ran someone else). */
static int use_cpu_time;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *rnd(size_t n) {
    float *v = malloc(n * sizeof(float));
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    return v;
}

/* best of reps: seconds of one call */
#define TIME_BEST(reps, call)                                                            \
    ({                                                                                   \
        double best_ = 1e30;                                                             \
        for (int r_ = 0; r_ < (reps); r_++) {                                            \
            double t_ = now_s();                                                         \
            call;                                                                        \
            t_ = now_s() - t_;                                                           \
            best_ = t_ < best_ ? t_ : best_;                                             \
        }                                                                                \
        best_;                                                                           \
    })

/* one row through `layers` weights stored one after another */
static void decode_pass(oc_exec *ex, float *y, const float *x, const void *data, size_t bytes,
                        oc_dtype dt, size_t OC, size_t IC, size_t layers) {
    for (size_t l = 0; l < layers; l++) {
        oc_weight W = {.data = (const char *)data + l * bytes, .dtype = dt, .rows = (int64_t)OC,
                       .cols = (int64_t)IC};
        oc_matmul(ex, y, x, &W, NULL, 1);
    }
}

int main(int argc, char **argv) {
    int threads = 1, reps = 5;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--cpu-time"))
            use_cpu_time = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--isa"))
            isa = argv[i + 1];
    }
    if (isa)
        oc_cpu_force(!strcmp(isa, "scalar") ? OC_ISA_SCALAR
                     : !strcmp(isa, "avx2") ? OC_ISA_AVX2
                                            : OC_ISA_AVX512);
    oc_pool *pool;
    oc_pool_new(threads, &pool);
    oc_exec ex;
    oc_exec_init(&ex, pool);
    printf("cpu %s, %d threads\n", oc_cpu()->name, oc_pool_size(pool));

    /* out (T, OC) = inp (T, IC) @ w^T: encoder and prefill shapes */
    const size_t shapes[][3] = {{1024, 768, 768}, {1024, 3072, 768}, {1024, 768, 3072},
                                {512, 576, 576},  {512, 1536, 576},  {512, 576, 1536}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t T = shapes[s][0], OC = shapes[s][1], IC = shapes[s][2];
        float *x = rnd(T * IC), *w = rnd(OC * IC), *y = malloc(T * OC * sizeof(float));
        uint16_t *wh = malloc(OC * IC * 2);
        uint8_t *wq = malloc(OC * IC / 32 * OC_Q8_BYTES);
        oc_convert_bf16(wh, w, OC * IC);
        oc_quantize_q8_0(wq, w, OC * IC);
        oc_weight W[3] = {
            {.data = w, .dtype = OC_DT_F32, .rows = (int64_t)OC, .cols = (int64_t)IC},
            {.data = wh, .dtype = OC_DT_BF16, .rows = (int64_t)OC, .cols = (int64_t)IC,
             .bf16_products = 1},
            {.data = wq, .dtype = OC_DT_Q8_0, .rows = (int64_t)OC, .cols = (int64_t)IC}};
        const char *names[3] = {"F32", "BF16", "Q8_0"};
        for (int f = 0; f < 3; f++) {
            double t = TIME_BEST(reps, oc_matmul(&ex, y, x, &W[f], NULL, T));
            printf("gemm  %5zu x %5zu x %5zu  %-5s %8.2f ms  %7.1f GFLOP/s\n", T, OC, IC,
                   names[f], t * 1e3, 2.0 * T * OC * IC / t / 1e9);
        }
        free(x), free(w), free(y), free(wh), free(wq);
    }

    /* decode: one row against a 576 x 1536 weight stack the size of a layer, many times
     * over a buffer larger than the caches */
    size_t IC = 576, OC = 1536, layers = 64;
    float *w = rnd(OC * IC * layers), *x = rnd(IC), *y = malloc(OC * sizeof(float));
    uint16_t *wh = malloc(OC * IC * layers * 2);
    uint8_t *wq = malloc(OC * IC * layers / 32 * OC_Q8_BYTES);
    oc_convert_bf16(wh, w, OC * IC * layers);
    oc_quantize_q8_0(wq, w, OC * IC * layers);
    const struct {
        const char *name;
        oc_dtype dt;
        const void *data;
        size_t bytes;
    } fm[] = {{"F32", OC_DT_F32, w, 4 * OC * IC},
              {"BF16", OC_DT_BF16, wh, 2 * OC * IC},
              {"Q8_0", OC_DT_Q8_0, wq, OC * IC / 32 * OC_Q8_BYTES}};
    for (size_t f = 0; f < 3; f++) {
        double t = TIME_BEST(reps, decode_pass(&ex, y, x, fm[f].data, fm[f].bytes, fm[f].dt,
                                               OC, IC, layers));
        printf("gemv  1 x %zu x %zu x %zu layers %-5s %8.2f ms  %7.1f GB/s\n", OC, IC, layers,
               fm[f].name, t * 1e3, (double)fm[f].bytes * layers / t / 1e9);
    }
    free(w), free(x), free(y), free(wh), free(wq);

    /* encoder attention: 1024 patches, 12 heads of 64 */
    size_t N = 1024, H = 12, D = 64;
    float *q = rnd(N * H * D), *k = rnd(N * H * D), *v = rnd(N * H * D),
          *o = malloc(N * H * D * sizeof(float));
    oc_attn_shape sh = {.T = N, .S = N, .H = H, .KVH = H, .D = D, .kv_stride = H * D};
    double t = TIME_BEST(reps, oc_attention(&ex, o, NULL, q, k, v, &sh));
    printf("attn  %zu x %zu heads of %zu  %8.2f ms  %7.1f GFLOP/s\n", N, H, D, t * 1e3,
           4.0 * N * N * D * H / t / 1e9);
    free(q), free(k), free(v), free(o);

    /* decoding attention: one query of 9 heads over 1166 cached keys of 3 KV heads */
    size_t S = 1166, Hq = 9, KV = 3;
    q = rnd(Hq * D), k = rnd(S * KV * D), v = rnd(S * KV * D), o = malloc(Hq * D * sizeof(float));
    oc_attn_shape dsh = {.T = 1, .S = S, .H = Hq, .KVH = KV, .D = D, .kv_stride = KV * D,
                         .causal = 1};
    t = TIME_BEST(reps * 20, oc_attention(&ex, o, NULL, q, k, v, &dsh));
    printf("attn  decode 1 x %zu keys, %zu heads over %zu  %8.3f ms\n", S, Hq, KV, t * 1e3);
    free(q), free(k), free(v), free(o);
    oc_exec_release(&ex);
    oc_pool_free(pool);
    return 0;
}
