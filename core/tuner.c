#include "tuner.h"

#include <string.h>

static double load(const _Atomic uint64_t *a) {
    uint64_t b = atomic_load_explicit(a, memory_order_relaxed);
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void store(_Atomic uint64_t *a, double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    atomic_store_explicit(a, b, memory_order_relaxed);
}

int oc_tuner_choose(oc_tuner *t) {
    uint64_t k = atomic_fetch_add_explicit(&t->calls, 1, memory_order_relaxed);
    uint64_t n1 = atomic_load_explicit(&t->seen[0], memory_order_relaxed),
             np = atomic_load_explicit(&t->seen[1], memory_order_relaxed);
    if (np <= OC_TUNE_WARM || n1 <= OC_TUNE_WARM) /* warm-up + samples: alternate */
        return np <= n1;
    int best = load(&t->spf[0]) < OC_TUNE_MARGIN * load(&t->spf[1]) ? 0 : 1;
    return k % OC_TUNE_EVERY == 0 ? !best : best;
}

void oc_tuner_record(oc_tuner *t, int pool, double seconds, double flops) {
    if (flops <= 0 || seconds <= 0)
        return;
    if (atomic_fetch_add_explicit(&t->seen[pool], 1, memory_order_relaxed) == 0)
        return; /* the first call pays for allocations and page faults */
    double v = seconds / flops, old = load(&t->spf[pool]);
    store(&t->spf[pool], old > 0 ? 0.75 * old + 0.25 * v : v);
}
