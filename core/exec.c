/* Execution contexts: a pool, per-thread scratch that grows once and is then reused
 * (no allocation per forward call), and FLOP counters. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "kernels.h"

typedef struct {
    void *p[OC_BUF_KINDS];
    size_t cap[OC_BUF_KINDS];
    double flops;
    char pad[64];  /* keep threads' counters on separate cache lines */
} thread_bufs;

struct oc_exec_bufs {
    thread_bufs t[1];  /* (n_bufs) */
};

static thread_bufs *tb(const oc_exec *ex, int thread) {
    return &ex->bufs->t[thread];
}

void oc_exec_init(oc_exec *ex, oc_pool *pool) {
    memset(ex, 0, sizeof *ex);
    ex->pool = pool;
    int n = oc_pool_size(pool);
    ex->bufs = oc_calloc(1, sizeof(oc_exec_bufs) + (size_t)(n - 1) * sizeof(thread_bufs));
    ex->n_bufs = ex->bufs ? n : 0;
}

void oc_exec_release(oc_exec *ex) {
    if (!ex)
        return;
    for (int i = 0; i < ex->n_bufs; i++)
        for (int k = 0; k < OC_BUF_KINDS; k++)
            free(tb(ex, i)->p[k]);
    oc_free(ex->bufs);
    memset(ex, 0, sizeof *ex);
}

double oc_exec_flops(const oc_exec *ex) {
    double f = 0;
    for (int i = 0; i < ex->n_bufs; i++)
        f += tb(ex, i)->flops;
    return f;
}

void oc_exec_add_flops(oc_exec *ex, int thread, double flops) {
    if (thread >= 0 && thread < ex->n_bufs)
        tb(ex, thread)->flops += flops;
}

void *oc_exec_buf(oc_exec *ex, int thread, int kind, size_t n) {
    if (thread < 0 || thread >= ex->n_bufs)
        return NULL;
    thread_bufs *t = tb(ex, thread);
    if (t->cap[kind] >= n && t->p[kind])
        return t->p[kind];
    /* grow by half again, so that slowly rising sizes do not reallocate every call */
    size_t want = n + n / 2;
    want = (want + 63) & ~(size_t)63;
    if (want < n)
        return NULL;
    void *p = NULL;
    /* plain aligned_alloc: scratch is not part of the allocation-failure contract, a
     * failure only selects a slower path */
    p = aligned_alloc(64, want);
    if (!p)
        return NULL;
    free(t->p[kind]);
    t->p[kind] = p;
    t->cap[kind] = want;
    return p;
}

size_t oc_exec_scratch_bytes(const oc_exec *ex) {
    size_t s = 0;
    for (int i = 0; i < ex->n_bufs; i++)
        for (int k = 0; k < OC_BUF_KINDS; k++)
            s += tb(ex, i)->cap[k];
    return s;
}
