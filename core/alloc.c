#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic long fail_at;   /* 0: never fail */
static _Atomic long n_allocs;

long oc_alloc_fail_at(long k) {
    long n = atomic_exchange(&n_allocs, 0);
    atomic_store(&fail_at, k);
    return n;
}

static int should_fail(void) {
    long n = atomic_fetch_add(&n_allocs, 1) + 1;
    long k = atomic_load(&fail_at);
    return k > 0 && n == k;
}

void *oc_malloc(size_t n) {
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *oc_calloc(size_t count, size_t size) {
    size_t total;
    if (!oc_mul_ok(count, size, &total) || should_fail())
        return NULL;
    return calloc(total ? total : 1, 1);
}

void *oc_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *oc_strndup(const char *s, size_t n) {
    char *d = oc_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

char *oc_strdup(const char *s) { return oc_strndup(s, strlen(s)); }

void oc_free(void *p) { free(p); }
