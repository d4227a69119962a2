/* The encoded-image cache: SHA-256 of the file's bytes -> encoded image, least recently
 * used first out. A miss inserts a pending entry so that concurrent requests for the same
 * new image wait for one encoding instead of each doing it. */
#include <pthread.h>
#include <string.h>

#include <nettle/sha2.h>

#include "alloc.h"
#include "encoded_image.h"
#include "error.h"

typedef struct entry {
    uint8_t key[SHA256_DIGEST_SIZE];
    oc_encoded_image *img;   /* NULL while pending */
    size_t bytes;
    struct entry *prev, *next; /* LRU list: head is the most recent */
} entry;

struct oc_image_cache {
    const oc_model *m;
    uint64_t max_bytes;
    pthread_mutex_t mu;
    pthread_cond_t ready;   /* a pending entry was filled or dropped */
    entry *head, *tail;
    oc_image_cache_stats st;
};

oc_status oc_image_cache_new(const oc_model *m, uint64_t max_bytes, oc_image_cache **out) {
    if (!m || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_image_cache_new: NULL argument");
    oc_image_cache *c = oc_calloc(1, sizeof *c);
    if (!c)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    c->m = m;
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->ready, NULL);
    *out = c;
    return OC_OK;
}

static void unlink_entry(oc_image_cache *c, entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(oc_image_cache *c, entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(oc_image_cache *c, entry *e) {
    unlink_entry(c, e);
    if (e->img) {
        c->st.entries--;
        c->st.bytes -= e->bytes;
        oc_encoded_image_free(e->img);
    }
    oc_free(e);
}

void oc_image_cache_free(oc_image_cache *c) {
    if (!c)
        return;
    while (c->head)
        drop(c, c->head);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->ready);
    oc_free(c);
}

/* A linear scan: the cache holds at most a few thousand images, and a lookup costs far
 * less than the hashing of the image that precedes it. */
static entry *find(oc_image_cache *c, const uint8_t *key) {
    for (entry *e = c->head; e; e = e->next)
        if (!memcmp(e->key, key, sizeof e->key))
            return e;
    return NULL;
}

/* Evicts ready entries from the cold end until the budget holds. */
static void evict(oc_image_cache *c) {
    entry *e = c->tail;
    while (e && c->st.bytes > c->max_bytes) {
        entry *prev = e->prev;
        if (e->img)
            drop(c, e);
        e = prev;
    }
}

static oc_status encode(const oc_image_cache *c, const void *data, size_t size,
                        const char *name, const oc_image_limits *limits,
                        oc_encoded_image **out) {
    oc_image *img;
    OC_TRY(oc_image_load_memory(data, size, name, limits, &img));
    oc_status s = oc_image_encode(c->m, img, out);
    oc_image_free(img);
    return s;
}

oc_status oc_image_cache_get(oc_image_cache *c, const void *data, size_t size,
                             const char *name, const oc_image_limits *limits,
                             oc_encoded_image **out, int *hit) {
    if (!c || (!data && size) || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_image_cache_get: NULL argument");
    if (hit)
        *hit = 0;
    uint8_t key[SHA256_DIGEST_SIZE];
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, size, data);
    sha256_digest(&h, sizeof key, key);

    pthread_mutex_lock(&c->mu);
    entry *e;
    while ((e = find(c, key)) && !e->img) /* someone is encoding it */
        pthread_cond_wait(&c->ready, &c->mu);
    if (e) {
        unlink_entry(c, e);
        push_front(c, e);
        c->st.hits++;
        *out = oc_encoded_image_ref(e->img);
        pthread_mutex_unlock(&c->mu);
        if (hit)
            *hit = 1;
        return OC_OK;
    }
    c->st.misses++;
    entry *pending = c->max_bytes ? oc_calloc(1, sizeof *pending) : NULL;
    if (pending) {
        memcpy(pending->key, key, sizeof key);
        push_front(c, pending);
    }
    pthread_mutex_unlock(&c->mu);

    oc_encoded_image *img = NULL;
    oc_status s = encode(c, data, size, name, limits, &img);

    if (pending) {
        pthread_mutex_lock(&c->mu);
        size_t bytes = s == OC_OK ? oc_encoded_image_bytes(img) : 0;
        if (s == OC_OK && bytes <= c->max_bytes) {
            pending->img = oc_encoded_image_ref(img);
            pending->bytes = bytes;
            c->st.entries++;
            c->st.bytes += bytes;
            evict(c);
        } else {
            drop(c, pending);
        }
        pthread_cond_broadcast(&c->ready);
        pthread_mutex_unlock(&c->mu);
    }
    if (s != OC_OK)
        return s;
    *out = img;
    return OC_OK;
}

oc_image_cache_stats oc_image_cache_get_stats(oc_image_cache *c) {
    oc_image_cache_stats st = {0};
    if (!c)
        return st;
    pthread_mutex_lock(&c->mu);
    st = c->st;
    pthread_mutex_unlock(&c->mu);
    return st;
}
