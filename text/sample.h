/* Choosing the next token from logits: greedy, or transformers' logits processors
 * (repetition penalty, temperature, top-k, top-p) and a seeded multinomial draw. */
#ifndef OC_SAMPLE_H
#define OC_SAMPLE_H
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef struct {
    float temperature;        /* <= 0: greedy */
    uint32_t top_k;           /* 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off */
} oc_sampler;

/* Picks a token from logits (V), which it modifies. history (n_hist): the ids seen so far
 * (prompt and generated), for the repetition penalty. scratch: V floats + V ints. */
int32_t oc_sample(const oc_sampler *s, float *logits, size_t V, const int32_t *history,
                  size_t n_hist, oc_rng *rng, float *scratch_f, int32_t *scratch_i);
#endif
