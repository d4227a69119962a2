/* Choosing between one thread and the pool from measured speed. On a machine that others
 * share, a pool can be slower than one thread: its workers get descheduled while the
 * caller waits for the task they hold. Every kernel gives the same bits either way, so
 * the choice is only about speed: a tuner keeps the seconds per FLOP of both (a moving
 * average, the first call of each left out as warm-up), measures both alternately until
 * each has OC_TUNE_WARM samples, then runs the pool unless one thread measured clearly
 * faster, trying the other again every OC_TUNE_EVERY calls. One tuner per kind of call (a
 * decode step, a short or a long prefill chunk, an image tile), since their FLOP rates
 * differ. Shared by threads without locks: its state is only a hint. */
#ifndef OC_TUNER_H
#define OC_TUNER_H
#include <stdatomic.h>
#include <stdint.h>

#define OC_TUNE_WARM 2
#define OC_TUNE_EVERY 16
/* one thread is chosen only when its seconds per FLOP are below this share of the pool's */
#define OC_TUNE_MARGIN 0.8

typedef struct {
    _Atomic uint64_t calls;
    _Atomic uint64_t seen[2]; /* calls recorded per option, warm-up included */
    _Atomic uint64_t spf[2];  /* bits of the doubles: [0] one thread, [1] the pool */
} oc_tuner;

/* 1: run on the pool; 0: on the calling thread alone. */
int oc_tuner_choose(oc_tuner *t);
/* Records a call's time and FLOPs (ignored when flops <= 0). */
void oc_tuner_record(oc_tuner *t, int pool, double seconds, double flops);
#endif
