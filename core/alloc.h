/* Allocation with overflow-checked sizes and fault injection for tests. Every
 * allocation in the library goes through here so that tests can fail the k-th one. */
#ifndef OC_ALLOC_H
#define OC_ALLOC_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h" /* oc_free is public: its OC_API declaration comes first */

void *oc_malloc(size_t n);
void *oc_calloc(size_t count, size_t size); /* zeroed; NULL on overflow */
void *oc_realloc(void *p, size_t n);
char *oc_strdup(const char *s);
char *oc_strndup(const char *s, size_t n);

/* n * m into *out; 0 on overflow. */
static inline int oc_mul_ok(size_t n, size_t m, size_t *out) {
    return !__builtin_mul_overflow(n, m, out);
}

/* Test hook: the k-th allocation from now fails (k >= 1); 0 disables. Returns the
 * number of allocations counted since the last call. */
long oc_alloc_fail_at(long k);
#endif
