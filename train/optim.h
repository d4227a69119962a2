/* Optimizer pieces with PyTorch's semantics: torch.optim.AdamW (single-tensor path, float32
 * state), torch.nn.utils.clip_grad_norm_, and transformers' learning-rate schedules. */
#ifndef OC_TRAIN_OPTIM_H
#define OC_TRAIN_OPTIM_H
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} oc_adamw_hparams;

/* One AdamW step on n parameters (one tensor); step counts from 1 (this step included).
 *   p *= 1 - lr*wd;  m = lerp(m, g, 1-beta1);  v = beta2*v + (1-beta2)*g*g
 *   p += -(lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * wd is this tensor's weight decay (h->weight_decay, or 0 for tensors left undecayed). */
void oc_adamw_update(oc_exec *ex, float *p, const float *g, float *m, float *v, size_t n,
                     const oc_adamw_hparams *h, uint64_t step, double wd);

/* sqrt(sum g^2) over n values, accumulated in double with a fixed order. */
double oc_grad_norm(oc_exec *ex, const float *g, size_t n);
/* sum g^2, the square of oc_grad_norm before its root (a shard's part of the norm). */
double oc_grad_sumsq(oc_exec *ex, const float *g, size_t n);
/* clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when < 1. Returns coef
 * (clamped at 1). */
float oc_clip_grads(oc_exec *ex, float *g, size_t n, double norm, double max_norm);

typedef enum {
    OC_SCHED_COSINE_ = 0,   /* mirrors the public enum in ocellus.h */
    OC_SCHED_LINEAR_ = 1,
    OC_SCHED_CONSTANT_ = 2,
} oc_sched_kind;

/* The multiplier of the peak learning rate for the step-th step (0-based), as
 * transformers' get_{cosine,linear,constant}_schedule_with_warmup: step/warmup during the
 * warmup, then 0.5*(1 + cos(pi*progress)) (cosine), 1 - progress (linear) or 1. */
double oc_lr_lambda(int kind, uint64_t step, uint64_t warmup, uint64_t total);
#endif
