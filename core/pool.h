/* ocellus's own thread pool: persistent pthreads that share the tasks of one parallel
 * loop at a time.
 *
 * oc_pool_run(pool, n, fn, ctx) calls fn(ctx, task, thread) once for every task in
 * [0, n) and returns when all have finished. The calling thread takes part (it is thread
 * 0; workers are 1 .. size-1). Tasks are claimed one at a time from a shared counter, so
 * a worker the OS has descheduled delays only the task it holds: on a busy machine the
 * caller does the work itself instead of waiting for the others to wake up, and two
 * threads are not slower than one. Results must not depend on which thread runs a task
 * (every kernel gives the same bits on any thread count).
 *
 * A pool belongs to one model session or trainer and is used by one thread at a time.
 * A run from inside a task (a nested parallel loop) runs its tasks inline on the
 * calling thread. Idle workers spin briefly, then sleep on a futex. */
#ifndef OC_POOL_H
#define OC_POOL_H
#include <stddef.h>

#include "ocellus.h"

typedef struct oc_pool oc_pool;

/* task in [0, n_tasks); thread in [0, oc_pool_size(pool)) identifies per-thread scratch. */
typedef void (*oc_task_fn)(void *ctx, size_t task, int thread);

/* n_threads <= 0: the number of online CPUs (at most OC_POOL_MAX). */
oc_status oc_pool_new(int n_threads, oc_pool **out);
void oc_pool_free(oc_pool *pool);
/* Threads that may run tasks (1 for a NULL pool). */
int oc_pool_size(const oc_pool *pool);
/* Runs all tasks; pool may be NULL (everything on the caller). */
void oc_pool_run(oc_pool *pool, size_t n_tasks, oc_task_fn fn, void *ctx);
/* fn(ctx, i0, i1, thread) over [0, n) in ranges of grain elements (the last shorter),
 * each range a task: a parallel for loop whose split depends on n and grain only. */
typedef void (*oc_range_fn)(void *ctx, size_t i0, size_t i1, int thread);
void oc_pool_for(oc_pool *pool, size_t n, size_t grain, oc_range_fn fn, void *ctx);

/* The index of the pool thread running the current task, -1 outside tasks. */
int oc_pool_current_thread(void);
/* The default thread count (online CPUs, or oc_set_threads' value). */
int oc_default_threads(void);

#define OC_POOL_MAX 256
#endif
