/* N-gram counts of a sentence (see ngrams.h). */
#include "ngrams.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pytext.h"
#include "strbuf.h"

void oc_ngrams_free(oc_ngrams *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n_grams; i++)
        oc_free(g->v[i].key);
    oc_free(g->v);
    oc_strmap_free(&g->index);
    memset(g, 0, sizeof *g);
}

uint32_t oc_ngrams_count(const oc_ngrams *g, const char *key) {
    int32_t i = oc_strmap_get(&g->index, key, strlen(key));
    return i < 0 ? 0 : g->v[i].count;
}

oc_status oc_ngrams_build(const char *sentence, oc_ngrams *out) {
    memset(out, 0, sizeof *out);
    char **w;
    size_t n = oc_py_split(sentence, &w);
    if (n == (size_t)-1)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_ngrams g = {0};
    g.words = n;
    size_t cap = n * OC_NGRAM_MAX + 1;
    g.v = oc_malloc(cap * sizeof *g.v);
    oc_status s = g.v ? oc_strmap_init(&g.index, cap) : oc_err(OC_ERR_NOMEM, "out of memory");
    oc_strbuf b = {0};
    for (size_t k = 1; s == OC_OK && k <= OC_NGRAM_MAX; k++) {
        for (size_t i = 0; s == OC_OK && i + k <= n; i++) {
            oc_sb_clear(&b);
            for (size_t j = 0; j < k; j++) {
                if (j)
                    oc_sb_puts(&b, " ");
                oc_sb_puts(&b, w[i + j]);
            }
            if (b.failed) {
                s = oc_err(OC_ERR_NOMEM, "out of memory");
                break;
            }
            int32_t at = oc_strmap_get(&g.index, b.data, b.len);
            if (at >= 0) {
                g.v[at].count++;
                continue;
            }
            char *key = oc_strndup(b.data, b.len);
            if (!key) {
                s = oc_err(OC_ERR_NOMEM, "out of memory");
                break;
            }
            g.v[g.n_grams] = (oc_ngram){key, (uint8_t)k, 1};
            s = oc_strmap_put(&g.index, key, b.len, (int32_t)g.n_grams, NULL);
            if (s != OC_OK) {
                oc_free(key);
                break;
            }
            g.n_grams++;
        }
    }
    oc_sb_free(&b);
    oc_py_words_free(w, n);
    if (s != OC_OK) {
        oc_ngrams_free(&g);
        return s;
    }
    *out = g;
    return OC_OK;
}

/* numpy's pairwise_sum for float64 (numpy/core/src/umath/loops_utils.h): a plain loop
 * under 8 values, eight interleaved partial sums up to a block of 128, halves above. */
static double pairwise(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++)
            r[k] = a[k];
        size_t i;
        for (i = 8; i < n - n % 8; i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

double oc_np_sum(const double *a, size_t n) {
    return n == 0 ? 0. : a[0] + pairwise(a + 1, n - 1);
}
