/* A small explicit PRNG (splitmix64) for data generation and shuffling: the same seed
 * gives the same stream on every platform, unlike rand(). */
#ifndef OC_RNG_H
#define OC_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t state;
} oc_rng;

/* splitmix64's output function: a bijective mix of 64 bits. */
static inline uint64_t oc_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline oc_rng oc_rng_seed(uint64_t seed) {
    oc_rng r = {oc_mix64(seed ^ 0x6a09e667f3bcc909ULL)};
    return r;
}

/* A stream derived from a seed and a tuple of integers (split, index, purpose, ...). */
static inline oc_rng oc_rng_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = oc_mix64(seed ^ 0x6a09e667f3bcc909ULL);
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (a + 1));
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (b + 1));
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (c + 1));
    oc_rng r = {s};
    return r;
}

static inline uint64_t oc_rng_next(oc_rng *r) {
    r->state += 0x9e3779b97f4a7c15ULL;
    return oc_mix64(r->state);
}

/* Uniform in [0, n) without modulo bias (n >= 1). */
static inline uint64_t oc_rng_below(oc_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = oc_rng_next(r);
    while (x >= limit);
    return x % n;
}

/* Uniform in [lo, hi] (lo <= hi). */
static inline int64_t oc_rng_range(oc_rng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)oc_rng_below(r, (uint64_t)(hi - lo) + 1);
}
#endif
