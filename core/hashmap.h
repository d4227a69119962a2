/* Small open-addressing hash maps for lookups on hot paths (tokenizer vocabularies and
 * merge tables): string -> int32 with borrowed keys, and uint64 -> uint64.
 * Both grow by doubling and keep the load factor under 3/4, so probes stay short.
 * Allocations go through oc_malloc; a failed insert leaves the map as it was. */
#ifndef OC_HASHMAP_H
#define OC_HASHMAP_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"

/* 64-bit hash of n bytes (not cryptographic; fine for tables of trusted sizes). */
uint64_t oc_hash_bytes(const void *data, size_t n);

/* ---- string -> int32; keys are NOT copied: they must outlive the map ---------- */

typedef struct {
    const char *key;
    uint32_t len;
    uint32_t hash;  /* low 32 bits of the full hash, to skip most memcmp calls */
    int32_t value;
} oc_strmap_entry;

typedef struct {
    oc_strmap_entry *slots; /* cap slots; key == NULL marks an empty one */
    size_t cap;             /* a power of two, or 0 */
    size_t count;
} oc_strmap;

/* Reserves room for n keys without rehashing. */
oc_status oc_strmap_init(oc_strmap *m, size_t n);
void oc_strmap_free(oc_strmap *m);
/* Inserts or overwrites. *old (may be NULL) gets the previous value or -1. */
oc_status oc_strmap_put(oc_strmap *m, const char *key, size_t len, int32_t value,
                        int32_t *old);
/* The value, or -1 when absent. */
int32_t oc_strmap_get(const oc_strmap *m, const char *key, size_t len);
/* The same with the key's hash (oc_hash_bytes) computed by the caller, and a hint to
 * fetch the slot early: bulk loads hash a batch, prefetch it, then look it up, so that
 * the cache misses of a batch overlap. */
int32_t oc_strmap_get_hashed(const oc_strmap *m, const char *key, size_t len, uint64_t hash);
oc_status oc_strmap_put_hashed(oc_strmap *m, const char *key, size_t len, uint64_t hash,
                               int32_t value, int32_t *old);
void oc_strmap_prefetch(const oc_strmap *m, uint64_t hash);

/* ---- uint64 -> uint64; the key UINT64_MAX is reserved ------------------------- */

typedef struct {
    uint64_t key; /* UINT64_MAX marks an empty slot */
    uint64_t value;
} oc_u64map_entry;

typedef struct {
    oc_u64map_entry *slots;
    size_t cap;
    size_t count;
} oc_u64map;

oc_status oc_u64map_init(oc_u64map *m, size_t n);
void oc_u64map_free(oc_u64map *m);
oc_status oc_u64map_put(oc_u64map *m, uint64_t key, uint64_t value);
void oc_u64map_prefetch(const oc_u64map *m, uint64_t key);
/* 1 and *value when present, 0 when absent. */
int oc_u64map_get(const oc_u64map *m, uint64_t key, uint64_t *value);
#endif
