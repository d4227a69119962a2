/* Encoded images: preprocessing + vision encoder + connector once, features kept. */
#include "encoded_image.h"

#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "prompt.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

oc_status oc_image_encode(const oc_model *m, const oc_image *img, oc_encoded_image **out) {
    if (!m || !img || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_image_encode: NULL argument");
    double t0 = now_ms();
    float *px = NULL;
    uint32_t tiles = 0, rows = 0, cols = 0;
    OC_TRY(oc_model_preprocess(m, img, &px, &tiles, &rows, &cols));
    oc_tile_layout lay = {rows, cols};
    size_t C = m->cfg.text.hidden, n_rows = oc_image_tokens(&m->cfg, &lay), bytes;
    oc_encoded_image *e = oc_calloc(1, sizeof *e);
    float *feats = oc_mul_ok(n_rows, C * sizeof(float), &bytes) ? oc_malloc(bytes) : NULL;
    oc_status st = e && feats ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory for the features "
                                               "of %u tiles", tiles);
    oc_pool *pool = NULL; /* the model's threads, for this image */
    if (st == OC_OK)
        st = oc_pool_new(m->params.n_threads, &pool);
    if (st == OC_OK) {
        oc_exec ex;
        oc_exec_init(&ex, pool);
        st = oc_model_encode_image(&ex, m, px, tiles, rows, cols, feats, NULL, NULL);
        oc_exec_release(&ex);
        oc_pool_free(pool);
    }
    oc_free(px);
    if (st != OC_OK) {
        oc_free(feats);
        oc_free(e);
        return st;
    }
    e->m = m;
    e->feats = feats;
    e->n_rows = n_rows;
    e->n_tiles = tiles;
    e->layout = (oc_tile_layout){rows, cols};
    atomic_init(&e->refs, 1);
    e->ms = now_ms() - t0;
    *out = e;
    return OC_OK;
}

oc_encoded_image *oc_encoded_image_ref(oc_encoded_image *e) {
    if (e)
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void oc_encoded_image_free(oc_encoded_image *e) {
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    oc_free(e->feats);
    oc_free(e);
}

uint32_t oc_encoded_image_tiles(const oc_encoded_image *e) { return e ? e->n_tiles : 0; }
uint32_t oc_encoded_image_tokens(const oc_encoded_image *e) {
    return e ? (uint32_t)e->n_rows : 0;
}
double oc_encoded_image_ms(const oc_encoded_image *e) { return e ? e->ms : 0; }

size_t oc_encoded_image_bytes(const oc_encoded_image *e) {
    return e->n_rows * e->m->cfg.text.hidden * sizeof(float) + sizeof *e;
}
