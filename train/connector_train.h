/* SmolVLM / Idefics3 connector for training: pixel shuffle, then a linear layer without
 * bias. Shapes: NT tiles, a g x g patch grid (N = g*g), scale s, M = N / s^2 tokens per
 * tile, C vision hidden, E text hidden. */
#ifndef OC_CONNECTOR_TRAIN_H
#define OC_CONNECTOR_TRAIN_H
#include <stddef.h>

/* Idefics3Connector.pixel_shuffle on each tile: out (NT, M, C*s*s) from in (NT, N, C).
 * Output token (iy, jx) (of the (g/s) x (g/s) grid) holds the s x s block of patches
 * (iy*s + b, jx*s + a) at channels (b*s + a)*C .. + C. */
void oc_pixel_shuffle(float *out, const float *in, size_t NT, size_t g, size_t C, size_t s);
/* The inverse permutation: in (NT, N, C) = (overwritten) from out (NT, M, C*s*s). */
void oc_pixel_unshuffle(float *in, const float *out, size_t NT, size_t g, size_t C, size_t s);

/* feats (NT*M, E) = shuffle(vis (NT*N, C)) @ w^T (E, C*s*s); shuf (NT*M, C*s*s) saved. */
void oc_connector_train_forward(double *flops, float *feats, float *shuf, const float *vis,
                                const float *w, size_t NT, size_t g, size_t C, size_t s,
                                size_t E);
/* dvis (NT*N, C) = (overwritten); dw (E, C*s*s) +=; scratch (NT*M, C*s*s). */
void oc_connector_train_backward(double *flops, float *dvis, float *dw, const float *dfeats,
                                 const float *shuf, const float *w, float *scratch, size_t NT,
                                 size_t g, size_t C, size_t s, size_t E);
#endif
