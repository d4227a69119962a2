/* Scoring token sequences with a reused KV cache (see score.h). */
#include "score.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

oc_status oc_scorer_init(oc_scorer *sc, const oc_model *m) {
    memset(sc, 0, sizeof *sc);
    sc->m = m;
    size_t C = m->cfg.text.hidden, V = m->cfg.text.vocab;
    OC_TRY(oc_pool_new(m->params.n_threads, &sc->pool));
    oc_exec_init(&sc->ex, sc->pool);
    oc_status st = oc_kv_cache_init(&sc->kv, &m->cfg.text, m->context);
    if (st != OC_OK) {
        oc_scorer_free(sc);
        return st;
    }
    sc->ids = oc_malloc((size_t)m->context * sizeof *sc->ids);
    sc->last_logits = oc_malloc(V * sizeof(float));
    sc->x = oc_malloc((size_t)OC_SCORE_CHUNK * C * sizeof(float));
    sc->logits = oc_malloc((size_t)OC_SCORE_CHUNK * V * sizeof(float));
    if (!sc->ids || !sc->last_logits || !sc->x || !sc->logits) {
        oc_scorer_free(sc);
        return oc_err(OC_ERR_NOMEM, "out of memory for scoring");
    }
    return OC_OK;
}

void oc_scorer_free(oc_scorer *sc) {
    if (!sc)
        return;
    oc_kv_cache_free(&sc->kv);
    oc_exec_release(&sc->ex);
    oc_pool_free(sc->pool);
    oc_free(sc->ids);
    oc_free(sc->last_logits);
    oc_free(sc->x);
    oc_free(sc->logits);
    memset(sc, 0, sizeof *sc);
}

static void rewind_to(oc_scorer *sc, size_t len) {
    if (len < sc->kv.len) {
        sc->kv.len = (uint32_t)len;
        sc->last_valid = 0;
    }
}

void oc_scorer_set_images(oc_scorer *sc, const float *feats, size_t n_feat_rows,
                          uint64_t key) {
    if (key != sc->image_key || key == 0) {
        size_t i = 0;
        while (i < sc->kv.len && sc->ids[i] != sc->m->cfg.image_token_id)
            i++;
        rewind_to(sc, i);
    }
    sc->feats = feats;
    sc->n_feat_rows = n_feat_rows;
    sc->image_key = key;
}

/* x (to - from, C) = embeddings of ids[from:to]; image tokens take feature rows in order
 * (the k-th image token of ids the k-th row). */
static oc_status embed(const oc_scorer *sc, const int32_t *ids, size_t from, size_t to,
                       float *x) {
    const oc_model *m = sc->m;
    size_t C = m->cfg.text.hidden, k = 0;
    for (size_t i = 0; i < from; i++)
        k += ids[i] == m->cfg.image_token_id;
    for (size_t i = from; i < to; i++) {
        int32_t id = ids[i];
        if (id < 0 || (uint32_t)id >= m->cfg.text.vocab)
            return oc_err(OC_ERR_FORMAT, "token id %d is outside the model's vocabulary (%u)",
                          id, m->cfg.text.vocab);
        if (id == m->cfg.image_token_id) {
            /* their images need M-RoPE positions or bidirectional spans, which only the
             * session's forward pass gives */
            if (m->cfg.family == OC_FAMILY_QWEN25VL || m->cfg.family == OC_FAMILY_GEMMA3)
                return oc_err(OC_ERR_UNSUPPORTED, "scoring answers about images (image "
                              "letter choices, answer log-probabilities) is not supported "
                              "for %s models yet; text-only scoring is",
                              m->cfg.family == OC_FAMILY_GEMMA3 ? "gemma3" : "qwen2_5_vl");
            if (k >= sc->n_feat_rows)
                return oc_err(OC_ERR_INVALID_ARG, "the text has more image tokens (%zu) than "
                              "the images give features (%zu)", k + 1, sc->n_feat_rows);
            memcpy(x + (i - from) * C, sc->feats + k * C, C * sizeof(float));
            k++;
        } else {
            oc_llama_embed(x + (i - from) * C, &m->cfg.text, &m->llm, id);
        }
    }
    return OC_OK;
}

/* Runs ids[kv.len:to] (chunked) after the cache. logits (optional) receives, row j, the
 * logits after ids[kv.len + j]; it must hold to - kv.len <= OC_SCORE_CHUNK rows. Without
 * it, last_logits receives those after ids[to - 1]. */
static oc_status run(oc_scorer *sc, const int32_t *ids, size_t to, float *logits) {
    const oc_model *m = sc->m;
    if (to > m->context)
        return oc_err(OC_ERR_LIMIT, "%zu tokens do not fit the model's context of %u", to,
                      m->context);
    size_t V = m->cfg.text.vocab;
    while (sc->kv.len < to) {
        size_t p = sc->kv.len, T = to - p < OC_SCORE_CHUNK ? to - p : OC_SCORE_CHUNK;
        int last = p + T == to;
        OC_TRY(embed(sc, ids, p, p + T, sc->x));
        sc->last_valid = 0;
        if (logits) {
            OC_TRY(oc_llama_forward(&sc->ex, &m->cfg.text, &m->llm, &sc->kv, sc->x, (uint32_t)T, NULL,
                                    logits, (uint32_t)T));
            logits += T * V;
        } else {
            OC_TRY(oc_llama_forward(&sc->ex, &m->cfg.text, &m->llm, &sc->kv, sc->x, (uint32_t)T, NULL,
                                    last ? sc->last_logits : NULL, last));
        }
        memcpy(sc->ids + p, ids + p, T * sizeof *ids);
        if (last && !logits)
            sc->last_valid = 1;
    }
    return OC_OK;
}

oc_status oc_scorer_feed(oc_scorer *sc, const int32_t *ids, size_t n) {
    if (n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "scoring: no tokens");
    size_t p = 0;
    while (p < sc->kv.len && p < n && sc->ids[p] == ids[p])
        p++;
    if (p == n && sc->kv.len == n && sc->last_valid)
        return OC_OK;
    if (p == n) /* all cached: the last token runs again for its logits */
        p = n - 1;
    rewind_to(sc, p);
    return run(sc, ids, n, NULL);
}

double oc_logprob_of(const float *logits, size_t V, int32_t id) {
    double mx = logits[0];
    for (size_t i = 1; i < V; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < V; i++)
        sum += exp((double)logits[i] - mx);
    return (double)logits[id] - mx - log(sum);
}

oc_status oc_scorer_logprobs(oc_scorer *sc, const int32_t *ids, size_t n, size_t first,
                             double *logprob, double *sum) {
    if (first == 0 || first > n)
        return oc_err(OC_ERR_INVALID_ARG, "scoring: tokens %zu..%zu of %zu", first, n, n);
    size_t V = sc->m->cfg.text.vocab;
    for (size_t i = first; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= V)
            return oc_err(OC_ERR_FORMAT, "token id %d is outside the model's vocabulary (%zu)",
                          ids[i], V);
    OC_TRY(oc_scorer_feed(sc, ids, first));
    double total = 0;
    if (first < n) {
        double lp = oc_logprob_of(sc->last_logits, V, ids[first]);
        total += lp;
        if (logprob)
            logprob[0] = lp;
    }
    /* ids[first:n-1] run with every position's logits: row j predicts ids[first + j + 1] */
    while (sc->kv.len + 1 < n) {
        size_t p = sc->kv.len, T = n - 1 - p < OC_SCORE_CHUNK ? n - 1 - p : OC_SCORE_CHUNK;
        OC_TRY(run(sc, ids, p + T, sc->logits));
        for (size_t j = 0; j < T; j++) {
            double lp = oc_logprob_of(sc->logits + j * V, V, ids[p + j + 1]);
            total += lp;
            if (logprob)
                logprob[p + j + 1 - first] = lp;
        }
        memcpy(sc->last_logits, sc->logits + (T - 1) * V, V * sizeof(float));
        sc->last_valid = 1;
    }
    if (sum)
        *sum = total;
    return OC_OK;
}
