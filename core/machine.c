/* What the machine allows, measured for benchmarks (oc_measure_machine): the FP32 FMA
 * throughput of the widest vectors the kernels use, with all threads running at once and
 * with one alone, and the read bandwidth from a buffer larger than the caches. Plain
 * pthreads that start together, not the pool: every thread must run at the same time. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "kern.h"
#include "ocellus.h"
#include "pool.h"

#define FMA_ITERS 4000000u        /* ~0.05 s of one core's FMAs per run */
#define READ_BYTES (1024u << 20)   /* beyond any L3 seen (480 MiB on some Xeons) */
#define REPEATS 3

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    _Atomic int *start;     /* set once every thread exists */
    const oc_kern *kr;
    const float *data;      /* read test: this thread's slice */
    size_t n;
    double seconds, flops;
    float sink;
} probe;

static void wait_start(const probe *p) {
    while (!atomic_load(p->start))
        ;
}

static void *fma_thread(void *arg) {
    probe *p = arg;
    wait_start(p);
    double t = now_s();
    p->flops = p->kr->fma_burn(FMA_ITERS, &p->sink);
    p->seconds = now_s() - t;
    return NULL;
}

static void *read_thread(void *arg) {
    probe *p = arg;
    wait_start(p);
    double t = now_s();
    p->sink = p->kr->read_sum(p->data, p->n);
    p->seconds = now_s() - t;
    return NULL;
}

/* Runs fn on n threads started together; returns the slowest thread's seconds, the
 * FLOPs summed into *flops. 0 when the threads cannot all be made. */
static double run_together(int n, void *(*fn)(void *), probe *pr, double *flops) {
    _Atomic int start = 0;
    pthread_t th[OC_POOL_MAX];
    int made = 1;
    for (int i = 0; i < n; i++)
        pr[i].start = &start;
    while (made < n && pthread_create(&th[made], NULL, fn, &pr[made]) == 0)
        made++;
    atomic_store(&start, 1);
    fn(&pr[0]);
    double slowest = pr[0].seconds;
    *flops = pr[0].flops;
    for (int i = 1; i < made; i++) {
        pthread_join(th[i], NULL);
        slowest = pr[i].seconds > slowest ? pr[i].seconds : slowest;
        *flops += pr[i].flops;
    }
    return made == n ? slowest : 0;
}

static double fma_rate(const oc_kern *kr, int n) {
    probe pr[OC_POOL_MAX];
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        memset(pr, 0, sizeof pr);
        for (int i = 0; i < n; i++)
            pr[i].kr = kr;
        double flops = 0, t = run_together(n, fma_thread, pr, &flops);
        if (t > 0 && flops / t > best)
            best = flops / t;
    }
    return best / 1e9;
}

oc_status oc_measure_machine(int n, oc_machine_limits *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_measure_machine: NULL argument");
    if (n <= 0)
        n = oc_default_threads();
    n = n > OC_POOL_MAX ? OC_POOL_MAX : n;
    memset(out, 0, sizeof *out);
    const oc_kern *kr = oc_kern_get();
    out->threads = n;
    snprintf(out->cpu, sizeof out->cpu, "%s", oc_cpu()->name);
    out->fma_one_gflops = fma_rate(kr, 1);
    out->fma_peak_gflops = n > 1 ? fma_rate(kr, n) : out->fma_one_gflops;
    /* each of two threads well below one alone: they share a physical core */
    out->shared_core = n > 1 && out->fma_peak_gflops < 1.4 * out->fma_one_gflops;

    float *buf = malloc(READ_BYTES);
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory for the %u MiB bandwidth test",
                      READ_BYTES >> 20);
    size_t total = READ_BYTES / sizeof(float);
    for (size_t i = 0; i < total; i++)
        buf[i] = (float)(i & 1023);
    probe pr[OC_POOL_MAX];
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        memset(pr, 0, sizeof pr);
        for (int i = 0; i < n; i++) {
            size_t lo = total * (size_t)i / (size_t)n, hi = total * (size_t)(i + 1) / (size_t)n;
            pr[i] = (probe){.kr = kr, .data = buf + lo, .n = hi - lo};
        }
        double flops = 0, t = run_together(n, read_thread, pr, &flops);
        if (t > 0 && READ_BYTES / t > best)
            best = READ_BYTES / t;
    }
    free(buf);
    out->read_gb_s = best / 1e9;
    return OC_OK;
}
