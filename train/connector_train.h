/* SmolVLM / Idefics3 connector for training: pixel shuffle, then a linear layer without
 * bias. Shapes: NT tiles, a g x g patch grid (N = g*g), scale s, M = N / s^2 tokens per
 * tile, C vision hidden, E text hidden. */
#ifndef OC_CONNECTOR_TRAIN_H
#define OC_CONNECTOR_TRAIN_H
#include <stddef.h>

#include "kernels.h"

/* feats (NT*M, E) = shuffle(vis (NT*N, C)) @ w^T (E, C*s*s); shuf (NT*M, C*s*s) saved. */
void oc_connector_train_forward(oc_exec *ex, float *feats, float *shuf, const float *vis,
                                const float *w, size_t NT, size_t g, size_t C, size_t s,
                                size_t E);
/* dvis (NT*N, C) = (overwritten); dw (E, C*s*s) +=; scratch (NT*M, C*s*s). */
void oc_connector_train_backward(oc_exec *ex, float *dvis, float *dw, const float *dfeats,
                                 const float *shuf, const float *w, float *scratch, size_t NT,
                                 size_t g, size_t C, size_t s, size_t E);
#endif
