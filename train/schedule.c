#include <math.h>

#include "optim.h"

double oc_lr_lambda(int kind, uint64_t step, uint64_t warmup, uint64_t total) {
    if (step < warmup)
        return (double)step / (double)(warmup > 1 ? warmup : 1);
    if (kind == OC_SCHED_CONSTANT_)
        return 1.0;
    double span = total > warmup ? (double)(total - warmup) : 1.0;
    double progress = (double)(step - warmup) / span;
    if (kind == OC_SCHED_LINEAR_)
        return fmax(0.0, 1.0 - progress);
    /* num_cycles = 0.5: one half cosine from 1 to 0 */
    return fmax(0.0, 0.5 * (1.0 + cos(M_PI * 2.0 * 0.5 * progress)));
}
