/* The trainer's random numbers: xoshiro256** seeded by splitmix64, normals by
 * Box-Muller. The state is four words so that a checkpoint can save and restore it. */
#ifndef OC_TRAIN_RNG_H
#define OC_TRAIN_RNG_H
#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} oc_train_rng;

static inline uint64_t oc_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void oc_train_rng_seed(oc_train_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = oc_splitmix64(&seed);
}

static inline uint64_t oc_train_rng_next(oc_train_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform in (0, 1): 53 random bits, never 0 (log is taken of it). */
static inline double oc_train_rng_uniform(oc_train_rng *r) {
    return ((double)(oc_train_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (one of the Box-Muller pair; the other is dropped for simplicity). */
static inline double oc_train_rng_normal(oc_train_rng *r) {
    double u1 = oc_train_rng_uniform(r), u2 = oc_train_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
#endif
