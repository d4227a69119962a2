/* Explicit random number generators: the same seed gives the same numbers on every
 * platform (unlike rand()), and the state is plain data that a checkpoint can store.
 *   oc_rng     xoshiro256** seeded by splitmix64: sampling, weight initialisation.
 *   oc_stream  a splitmix64 counter that can be derived from a seed and a tuple of
 *              integers: the synthetic world draws scene i of a split from its own
 *              stream, so any scene can be made without making the ones before it. */
#ifndef OC_RNG_H
#define OC_RNG_H
#include <math.h>
#include <stdint.h>

/* splitmix64's output function: a bijective mix of 64 bits. */
static inline uint64_t oc_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t oc_splitmix64(uint64_t *x) {
    return oc_mix64(*x += 0x9e3779b97f4a7c15ULL);
}

typedef struct {
    uint64_t s[4];
} oc_rng;

static inline void oc_rng_seed(oc_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = oc_splitmix64(&seed);
}

static inline uint64_t oc_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t oc_rng_next(oc_rng *r) {
    uint64_t *s = r->s, out = oc_rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = oc_rotl64(s[3], 45);
    return out;
}

/* Uniform in [0, 1) from 53 random bits. */
static inline double oc_rng_uniform(oc_rng *r) {
    return (double)(oc_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1): never 0, so that its log can be taken. */
static inline double oc_rng_uniform_open(oc_rng *r) {
    return ((double)(oc_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal (one of the Box-Muller pair; the other is dropped for simplicity). */
static inline double oc_rng_normal(oc_rng *r) {
    double u1 = oc_rng_uniform_open(r), u2 = oc_rng_uniform_open(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    uint64_t state;
} oc_stream;

static inline oc_stream oc_stream_seed(uint64_t seed) {
    oc_stream r = {oc_mix64(seed ^ 0x6a09e667f3bcc909ULL)};
    return r;
}

/* A stream derived from a seed and a tuple of integers (split, index, purpose). */
static inline oc_stream oc_stream_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = oc_mix64(seed ^ 0x6a09e667f3bcc909ULL);
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (a + 1));
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (b + 1));
    s = oc_mix64(s + 0x9e3779b97f4a7c15ULL * (c + 1));
    oc_stream r = {s};
    return r;
}

static inline uint64_t oc_stream_next(oc_stream *r) { return oc_splitmix64(&r->state); }

/* Uniform in [0, n) without modulo bias (n >= 1). */
static inline uint64_t oc_stream_below(oc_stream *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = oc_stream_next(r);
    while (x >= limit);
    return x % n;
}

/* Uniform in [lo, hi] (lo <= hi). */
static inline int64_t oc_stream_range(oc_stream *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)oc_stream_below(r, (uint64_t)(hi - lo) + 1);
}
#endif
