/* The thread pool (see pool.h).
 *
 * One job at a time is published in `state`: its generation in the high 32 bits and the
 * next unclaimed task in the low 32. A thread claims task i by a compare-and-swap from
 * (gen, i) to (gen, i + 1) after checking i < n_tasks. To publish, the caller first
 * closes the state ((gen + 1, CLOSED): nothing can be claimed), then writes fn, ctx and
 * n_tasks, then opens it ((gen + 1, 0)). A thread that read the new n_tasks (acquire)
 * also sees the closed state, so its compare-and-swap from an old state fails: a claim
 * never pairs one job's state with another's n. The caller publishes the next job only
 * after every claimed task has finished, so the job is stable for whoever holds a
 * claim. */
#include "pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long an idle worker spins before it sleeps: longer than the serial gaps between
 * the parallel loops of a forward pass, short enough not to steal a shared core. */
#define SPIN_NS 50000
#define CLOSED 0xffffffffu

struct oc_pool {
    int n;                      /* threads, the caller included */
    pthread_t *workers;         /* (n - 1) */
    _Atomic uint64_t state;     /* gen << 32 | next task */
    _Atomic uint32_t seq;       /* futex word, bumped at every publish */
    _Atomic int sleepers;
    _Atomic int stop;
    _Atomic(oc_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic uint32_t n_tasks;
    _Atomic uint32_t done;      /* tasks of the current job finished */
};

typedef struct {
    oc_pool *pool;
    int id;
} worker_arg;

/* The thread index inside a running task, -1 outside any. */
static _Thread_local int tls_thread = -1;
static _Atomic int default_threads;

void oc_set_threads(int n) { atomic_store(&default_threads, n > 0 ? n : 0); }

int oc_default_threads(void) {
    int n = atomic_load(&default_threads);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return n > OC_POOL_MAX ? OC_POOL_MAX : n;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Claims and runs tasks of the published job until none is left; returns how many. */
static int work(oc_pool *p, int id) {
    int ran = 0;
    for (;;) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        uint32_t i = (uint32_t)s;
        if (i >= atomic_load_explicit(&p->n_tasks, memory_order_acquire))
            return ran;
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1,
                                                   memory_order_acquire,
                                                   memory_order_relaxed))
            continue;
        oc_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        tls_thread = id;
        fn(ctx, i, id);
        tls_thread = -1;
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        ran++;
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    oc_free(arg);
    oc_pool *p = wa.pool;
    uint64_t idle_since = now_ns();
    unsigned spins = 0;
    while (!atomic_load(&p->stop)) {
        if (work(p, wa.id)) {
            idle_since = now_ns();
            continue;
        }
        CPU_RELAX();
        if (++spins % 64 || now_ns() - idle_since < SPIN_NS)
            continue;
        /* sleep until the next publish (the order against oc_pool_run: see there) */
        atomic_fetch_add(&p->sleepers, 1);
        uint32_t v = atomic_load(&p->seq);
        uint64_t s = atomic_load(&p->state);
        if ((uint32_t)s >= atomic_load(&p->n_tasks) && !atomic_load(&p->stop))
            futex_wait(&p->seq, v);
        atomic_fetch_sub(&p->sleepers, 1);
        idle_since = now_ns();
    }
    return NULL;
}

oc_status oc_pool_new(int n, oc_pool **out) {
    if (n <= 0)
        n = oc_default_threads();
    if (n > OC_POOL_MAX)
        n = OC_POOL_MAX;
    oc_pool *p = oc_calloc(1, sizeof *p);
    if (!p)
        return oc_err(OC_ERR_NOMEM, "out of memory for a thread pool");
    p->n = 1;
    if (n > 1 && !(p->workers = oc_calloc((size_t)n - 1, sizeof *p->workers))) {
        oc_free(p);
        return oc_err(OC_ERR_NOMEM, "out of memory for a thread pool");
    }
    for (int i = 1; i < n; i++) {
        worker_arg *wa = oc_malloc(sizeof *wa);
        if (!wa)
            break;
        *wa = (worker_arg){p, i};
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
            oc_free(wa);
            break;
        }
        p->n++;
    }
    /* fewer threads than asked (a thread limit, no memory) still works: fewer workers */
    *out = p;
    return OC_OK;
}

void oc_pool_free(oc_pool *p) {
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->seq, 1);
    futex_wake_all(&p->seq);
    for (int i = 0; i + 1 < p->n; i++)
        pthread_join(p->workers[i], NULL);
    oc_free(p->workers);
    oc_free(p);
}

int oc_pool_current_thread(void) { return tls_thread; }

int oc_pool_size(const oc_pool *p) { return p ? p->n : 1; }

void oc_pool_run(oc_pool *p, size_t n_tasks, oc_task_fn fn, void *ctx) {
    if (!p || p->n == 1 || n_tasks <= 1 || tls_thread >= 0 || n_tasks >= CLOSED) {
        int id = tls_thread >= 0 ? tls_thread : 0, outer = tls_thread;
        tls_thread = id;
        for (size_t i = 0; i < n_tasks; i++)
            fn(ctx, i, id);
        tls_thread = outer;
        return;
    }
    uint64_t gen = (atomic_load_explicit(&p->state, memory_order_relaxed) >> 32) + 1;
    atomic_store(&p->state, gen << 32 | CLOSED);
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_tasks, (uint32_t)n_tasks, memory_order_release);
    atomic_store_explicit(&p->state, gen << 32, memory_order_release);
    /* A worker going to sleep counts itself in sleepers before it reads seq; this side
     * bumps seq before it reads sleepers (all sequentially consistent), so either the
     * worker sees the new seq and does not sleep, or this side sees it and wakes it. */
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->sleepers) > 0)
        futex_wake_all(&p->seq);
    work(p, 0);
    unsigned spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < (uint32_t)n_tasks) {
        CPU_RELAX();
        if (++spins % 1024 == 0)
            sched_yield(); /* the task's holder may need this core */
    }
}

typedef struct {
    oc_range_fn fn;
    void *ctx;
    size_t n, grain;
} range_job;

static void range_task(void *ctx, size_t task, int thread) {
    const range_job *j = ctx;
    size_t i0 = task * j->grain, i1 = i0 + j->grain > j->n ? j->n : i0 + j->grain;
    j->fn(j->ctx, i0, i1, thread);
}

void oc_pool_for(oc_pool *p, size_t n, size_t grain, oc_range_fn fn, void *ctx) {
    if (n == 0)
        return;
    range_job j = {fn, ctx, n, grain ? grain : 1};
    oc_pool_run(p, (n + j.grain - 1) / j.grain, range_task, &j);
}
