#include "hashmap.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

static uint64_t mix64(uint64_t x) {
    /* the finaliser of MurmurHash3: every input bit affects every output bit */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t oc_hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xbf58476d1ce4e5b9ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x94d049bb133111ebULL;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ mix64(w)) * 0x94d049bb133111ebULL;
    }
    return mix64(h);
}

/* The smallest power of two with n <= 3/4 of it, at least 16. */
static int table_size(size_t n, size_t *out) {
    size_t cap = 16;
    while (cap - cap / 4 < n) {
        if (cap > SIZE_MAX / 64)
            return 0;
        cap *= 2;
    }
    *out = cap;
    return 1;
}

/* ---- string map ------------------------------------------------------------ */

static size_t str_find_slot(const oc_strmap_entry *slots, size_t cap, const char *key,
                            uint32_t len, uint32_t hash) {
    size_t mask = cap - 1, i = hash & mask;
    for (;;) {
        const oc_strmap_entry *e = &slots[i];
        if (!e->key || (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

static oc_status str_rehash(oc_strmap *m, size_t cap) {
    oc_strmap_entry *slots = oc_calloc(cap, sizeof *slots);
    if (!slots)
        return oc_err(OC_ERR_NOMEM, "out of memory for a hash table of %zu slots", cap);
    for (size_t i = 0; i < m->cap; i++) {
        const oc_strmap_entry *e = &m->slots[i];
        if (e->key) {
            size_t j = e->hash & (cap - 1);
            while (slots[j].key)
                j = (j + 1) & (cap - 1);
            slots[j] = *e;
        }
    }
    oc_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return OC_OK;
}

oc_status oc_strmap_init(oc_strmap *m, size_t n) {
    memset(m, 0, sizeof *m);
    size_t cap;
    if (!table_size(n, &cap))
        return oc_err(OC_ERR_LIMIT, "hash table of %zu keys is too large", n);
    return str_rehash(m, cap);
}

void oc_strmap_free(oc_strmap *m) {
    oc_free(m->slots);
    memset(m, 0, sizeof *m);
}

oc_status oc_strmap_put_hashed(oc_strmap *m, const char *key, size_t len, uint64_t hash64,
                               int32_t value, int32_t *old) {
    if (len > UINT32_MAX)
        return oc_err(OC_ERR_LIMIT, "hash key of %zu bytes is too long", len);
    size_t cap = m->cap;
    if (!table_size(m->count + 1, &cap))
        return oc_err(OC_ERR_LIMIT, "hash table of %zu keys is too large", m->count + 1);
    if (cap > m->cap)
        OC_TRY(str_rehash(m, cap));
    uint32_t hash = (uint32_t)hash64;
    oc_strmap_entry *e = &m->slots[str_find_slot(m->slots, m->cap, key, (uint32_t)len, hash)];
    if (old)
        *old = e->key ? e->value : -1;
    if (!e->key) {
        e->key = key;
        e->len = (uint32_t)len;
        e->hash = hash;
        m->count++;
    }
    e->value = value;
    return OC_OK;
}

oc_status oc_strmap_put(oc_strmap *m, const char *key, size_t len, int32_t value,
                        int32_t *old) {
    return oc_strmap_put_hashed(m, key, len, oc_hash_bytes(key, len), value, old);
}

int32_t oc_strmap_get_hashed(const oc_strmap *m, const char *key, size_t len, uint64_t hash) {
    if (!m->cap || len > UINT32_MAX)
        return -1;
    const oc_strmap_entry *e =
        &m->slots[str_find_slot(m->slots, m->cap, key, (uint32_t)len, (uint32_t)hash)];
    return e->key ? e->value : -1;
}

int32_t oc_strmap_get(const oc_strmap *m, const char *key, size_t len) {
    return oc_strmap_get_hashed(m, key, len, oc_hash_bytes(key, len));
}

void oc_strmap_prefetch(const oc_strmap *m, uint64_t hash) {
    if (m->cap)
        __builtin_prefetch(&m->slots[(uint32_t)hash & (m->cap - 1)]);
}

/* ---- uint64 map ------------------------------------------------------------ */

#define EMPTY UINT64_MAX

static size_t u64_find_slot(const oc_u64map_entry *slots, size_t cap, uint64_t key) {
    size_t mask = cap - 1, i = (size_t)mix64(key) & mask;
    while (slots[i].key != EMPTY && slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

static oc_status u64_rehash(oc_u64map *m, size_t cap) {
    oc_u64map_entry *slots = oc_malloc(cap * sizeof *slots);
    if (!slots)
        return oc_err(OC_ERR_NOMEM, "out of memory for a hash table of %zu slots", cap);
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != EMPTY)
            slots[u64_find_slot(slots, cap, m->slots[i].key)] = m->slots[i];
    oc_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return OC_OK;
}

oc_status oc_u64map_init(oc_u64map *m, size_t n) {
    memset(m, 0, sizeof *m);
    size_t cap;
    if (!table_size(n, &cap))
        return oc_err(OC_ERR_LIMIT, "hash table of %zu keys is too large", n);
    return u64_rehash(m, cap);
}

void oc_u64map_free(oc_u64map *m) {
    oc_free(m->slots);
    memset(m, 0, sizeof *m);
}

oc_status oc_u64map_put(oc_u64map *m, uint64_t key, uint64_t value) {
    if (key == EMPTY)
        return oc_err(OC_ERR_INTERNAL, "hash key %llu is reserved", (unsigned long long)key);
    size_t cap = m->cap;
    if (!table_size(m->count + 1, &cap))
        return oc_err(OC_ERR_LIMIT, "hash table of %zu keys is too large", m->count + 1);
    if (cap > m->cap)
        OC_TRY(u64_rehash(m, cap));
    oc_u64map_entry *e = &m->slots[u64_find_slot(m->slots, m->cap, key)];
    if (e->key == EMPTY) {
        e->key = key;
        m->count++;
    }
    e->value = value;
    return OC_OK;
}

int oc_u64map_get(const oc_u64map *m, uint64_t key, uint64_t *value) {
    if (!m->cap || key == EMPTY)
        return 0;
    const oc_u64map_entry *e = &m->slots[u64_find_slot(m->slots, m->cap, key)];
    if (e->key == EMPTY)
        return 0;
    *value = e->value;
    return 1;
}

void oc_u64map_prefetch(const oc_u64map *m, uint64_t key) {
    if (m->cap)
        __builtin_prefetch(&m->slots[(size_t)mix64(key) & (m->cap - 1)]);
}
