/* Perplexity of texts as lm-evaluation-harness's loglikelihood_rolling computes it: every
 * token of a text is predicted, the first after a prefix token (the model's BOS, else its
 * end-of-text token), in windows of the model's context (get_rolling_token_windows with
 * context_len 1: each window after the first sees the context's worth of tokens before
 * the ones it predicts). Texts are tokenized without special tokens. Reports the tokens,
 * the mean negative log-likelihood per token, its exp (perplexity) and bits per UTF-8
 * byte. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "eval_internal.h"
#include "score.h"

/* Sum of log p over the tokens of one text (n >= 1), windows of L positions. */
static oc_status text_logprob(oc_scorer *sc, int32_t prefix, const int32_t *toks, size_t n,
                              size_t L, double *sum) {
    /* full = [prefix] + toks: token t of the text is full[t + 1] */
    int32_t *full = oc_malloc((n + 1) * sizeof *full);
    if (!full)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    full[0] = prefix;
    memcpy(full + 1, toks, n * sizeof *toks);
    *sum = 0;
    oc_status s = OC_OK;
    size_t predicted = 0;
    while (s == OC_OK && predicted < n) {
        /* this window predicts toks[predicted : end] from the L tokens before each */
        size_t pred = n - predicted < L ? n - predicted : L, end = predicted + pred;
        size_t start = end + 1 > L + 1 ? end + 1 - (L + 1) : 0; /* in full */
        double lp = 0;
        s = oc_scorer_logprobs(sc, full + start, end + 1 - start, end + 1 - start - pred, NULL,
                               &lp);
        *sum += lp;
        predicted = end;
    }
    oc_free(full);
    return s;
}

oc_status oc_eval_perplexity(const oc_model *m, const char *data, const oc_eval_params *params,
                             oc_eval_result *out) {
    if (!m || !data || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_perplexity: NULL argument");
    oc_eval_params p = params ? *params : oc_eval_default_params();
    int32_t prefix = m->cfg.bos_id >= 0 ? m->cfg.bos_id : m->cfg.n_eos ? m->cfg.eos[0] : -1;
    if (prefix < 0)
        return oc_res_agree(&p, oc_err(OC_ERR_UNSUPPORTED, "perplexity: the model has neither "
                                       "a BOS nor an end token to start a text with"));
    oc_exam exam;
    OC_TRY(oc_res_agree(&p, oc_exam_load(data, OC_EXAM_TEXTS, p.limit, &exam)));
    size_t lo, hi; /* this rank's texts (all of them alone) */
    oc_res_span(&p, exam.n, &lo, &hi);
    oc_eval_result r;
    oc_res_start(&r, OC_EVAL_PERPLEXITY);
    oc_scorer sc;
    oc_status st = oc_scorer_init(&sc, m);
    int have_scorer = st == OC_OK;
    size_t L = m->context; /* the harness's max_length: tokens a window feeds */
    for (size_t i = lo; st == OC_OK && i < hi; i++) {
        const oc_exam_item *it = &exam.items[i];
        int32_t *ids = NULL;
        size_t n = 0;
        st = oc_tokenize(m->tok, it->question, strlen(it->question), 0, &ids, &n);
        double lp = 0;
        if (st == OC_OK && n)
            st = text_logprob(&sc, prefix, ids, n, L, &lp);
        oc_free(ids);
        if (st != OC_OK)
            break;
        r.tokens += n;
        r.bytes += strlen(it->question);
        r.nll -= lp;
        double per = n ? -lp / (double)n : 0;
        st = oc_res_add(&r, it->group, 0, 0, -1, -1);
        r.mean_nll = r.tokens ? r.nll / (double)r.tokens : 0;
        r.perplexity = exp(r.mean_nll);
        r.bits_per_byte = r.bytes ? r.nll / (double)r.bytes / log(2.0) : 0;
        char name[4096], nll[64];
        snprintf(nll, sizeof nll, "%.4f nats/token", per);
        oc_eval_item item = {i - lo, hi - lo, oc_item_name(&exam, it, name, sizeof name), it->group,
                             it->question, nll, "", 0, 0, NULL};
        if (st == OC_OK)
            st = oc_res_report(&r, &p, &item);
    }
    if (have_scorer)
        oc_scorer_free(&sc);
    oc_exam_free(&exam);
    st = oc_res_merge(&r, &p, st); /* every rank's counts (collective) */
    oc_res_stop(&r);
    if (st != OC_OK && st != OC_ERR_CANCELLED) {
        oc_eval_result_free(&r);
        return st;
    }
    *out = r;
    return st;
}
