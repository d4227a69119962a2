/* MMLU-layout exams: each question after k shots from its subject's dev file, the answer
 * the letter whose continuation (" A", " B", ...) the model finds most likely after
 * "Answer:" - for a letter that is one token, the argmax of the letters' logits, as the
 * MMLU evaluation reads them. The prompts of a subject share their shots, so the scorer's
 * cache keeps that prefix and each question runs only its own tokens. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "eval_internal.h"
#include "score.h"
#include "session.h"
#include "strbuf.h"

/* The choices of a question as a NULL-terminated list (oc_mmlu_prompt's shot format). */
static const char **choice_list(const oc_mmlu_question *q) {
    const char **v = oc_malloc((q->n_choices + 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < q->n_choices; i++)
        v[i] = q->choices[i];
    v[q->n_choices] = NULL;
    return v;
}

static oc_status build_prompt(oc_mcq_format f, const oc_mmlu_subject *s, size_t k,
                              const oc_mmlu_question *q, char **out) {
    const char **sq = oc_calloc(k + 1, sizeof *sq);
    const char ***sc = oc_calloc(k + 1, sizeof *sc);
    int *sa = oc_calloc(k + 1, sizeof *sa);
    oc_status st = sq && sc && sa ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == OC_OK && i < k; i++) {
        sq[i] = s->dev[i].question;
        sa[i] = s->dev[i].answer;
        if (!(sc[i] = choice_list(&s->dev[i])))
            st = oc_err(OC_ERR_NOMEM, "out of memory");
    }
    if (st == OC_OK)
        st = oc_mmlu_prompt(f, s->name, sq, (const char *const *const *)sc, sa, k, q->question,
                            (const char *const *)q->choices, q->n_choices, out);
    for (size_t i = 0; sc && i < k; i++)
        oc_free(sc[i]);
    oc_free(sq);
    oc_free(sc);
    oc_free(sa);
    return st;
}

/* The tokens of one letter's continuation: tokenize(context + " X")[len(context's tokens):],
 * as lm-evaluation-harness's _encode_pair takes them. */
static oc_status continuation(const oc_tokenizer *tok, const char *context, size_t n_ctx,
                              int add_special, int letter, int32_t **cont, size_t *n_cont) {
    size_t len = strlen(context);
    char *text = oc_malloc(len + 3);
    if (!text)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    memcpy(text, context, len);
    text[len] = ' ';
    text[len + 1] = (char)('A' + letter);
    text[len + 2] = 0;
    int32_t *whole;
    size_t n_whole;
    oc_status s = oc_tokenize(tok, text, len + 2, add_special, &whole, &n_whole);
    oc_free(text);
    if (s != OC_OK)
        return s;
    if (n_whole <= n_ctx) {
        oc_free(whole);
        return oc_err(OC_ERR_INTERNAL, "the answer letter %c added no token to the prompt",
                      'A' + letter);
    }
    *n_cont = n_whole - n_ctx;
    *cont = oc_malloc(*n_cont * sizeof **cont);
    if (*cont)
        memcpy(*cont, whole + n_ctx, *n_cont * sizeof **cont);
    oc_free(whole);
    return *cont ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
}

/* One question's prompt, tokens and letter continuations. */
typedef struct {
    char *prompt;
    int32_t *ids;
    size_t n_ids;
    int32_t *cont[OC_EXAM_MAX_CHOICES];
    size_t n_cont[OC_EXAM_MAX_CHOICES];
    size_t n_letters;
} encoded;

static void encoded_free(encoded *e) {
    oc_free(e->prompt);
    oc_free(e->ids);
    for (size_t i = 0; i < e->n_letters; i++)
        oc_free(e->cont[i]);
    memset(e, 0, sizeof *e);
}

static oc_status encode(const oc_model *m, oc_mcq_format f, const oc_mmlu_subject *s, size_t k,
                        const oc_mmlu_question *q, encoded *e) {
    memset(e, 0, sizeof *e);
    int add_special = f == OC_MCQ_ORIGINAL;
    OC_TRY(build_prompt(f, s, k, q, &e->prompt));
    OC_TRY(oc_tokenize(m->tok, e->prompt, strlen(e->prompt), add_special, &e->ids, &e->n_ids));
    for (size_t l = 0; l < q->n_choices; l++) {
        OC_TRY(continuation(m->tok, e->prompt, e->n_ids, add_special, (int)l, &e->cont[l],
                            &e->n_cont[l]));
        e->n_letters = l + 1;
    }
    return OC_OK;
}

/* Positions the scorer needs for the longest letter: the prompt and all but the last
 * token of the continuation. */
static size_t needed(const encoded *e) {
    size_t mx = 0;
    for (size_t l = 0; l < e->n_letters; l++)
        mx = e->n_cont[l] > mx ? e->n_cont[l] : mx;
    return e->n_ids + mx - 1;
}

/* Log-probability of each letter's continuation after the prompt. */
static oc_status score_letters(oc_scorer *sc, const encoded *e, size_t context,
                               oc_mcq_format f, double *lp, int *truncated) {
    size_t cap = e->n_ids + 8;
    for (size_t l = 0; l < e->n_letters; l++)
        cap = e->n_ids + e->n_cont[l] > cap ? e->n_ids + e->n_cont[l] : cap;
    int32_t *seq = oc_malloc(cap * sizeof *seq);
    if (!seq)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = OC_OK;
    for (size_t l = 0; s == OC_OK && l < e->n_letters; l++) {
        memcpy(seq, e->ids, e->n_ids * sizeof *seq);
        memcpy(seq + e->n_ids, e->cont[l], e->n_cont[l] * sizeof *seq);
        size_t n = e->n_ids + e->n_cont[l], from = 0;
        /* the harness keeps the last max_length + 1 tokens (its input is all but the
         * last of them) */
        if (f == OC_MCQ_HARNESS && n > context + 1) {
            from = n - (context + 1);
            *truncated = 1;
        }
        if (n - from <= e->n_cont[l])
            s = oc_err(OC_ERR_LIMIT, "the answer alone is longer than the context");
        else
            s = oc_scorer_logprobs(sc, seq + from, n - from, n - from - e->n_cont[l], NULL,
                                   &lp[l]);
    }
    oc_free(seq);
    return s;
}

static int argmax(const double *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int)best;
}

/* Prompts of the original format drop shots until they fit (its "while crop(prompt) !=
 * prompt: k -= 1"); the harness keeps them and cuts the context instead. */
static oc_status encode_fitting(const oc_model *m, const oc_eval_params *p,
                                const oc_mmlu_subject *s, const oc_mmlu_question *q,
                                encoded *e, size_t *k_used) {
    size_t k = p->shots < s->n_dev ? p->shots : s->n_dev;
    for (;;) {
        OC_TRY(encode(m, p->format, s, k, q, e));
        if (p->format == OC_MCQ_HARNESS || needed(e) <= m->context)
            break;
        if (k == 0)
            return oc_err(OC_ERR_LIMIT, "%s: row %zu: the question alone (%zu tokens) does "
                          "not fit the model's context of %u", s->path, q->row, e->n_ids,
                          m->context);
        encoded_free(e);
        k--;
    }
    *k_used = k;
    return OC_OK;
}

oc_status oc_eval_mcq(const oc_model *m, const char *data, const oc_eval_params *params,
                      oc_eval_result *out) {
    if (!m || !data || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_eval_mcq: NULL argument");
    oc_eval_params p = params ? *params : oc_eval_default_params();
    oc_mmlu_set set;
    OC_TRY(oc_res_agree(&p, oc_mmlu_load(data, p.split, &set)));
    oc_eval_result r;
    oc_res_start(&r, OC_EVAL_MCQ);
    size_t total = 0;
    for (size_t i = 0; i < set.n; i++)
        total += set.subjects[i].n_items;
    if (p.limit && p.limit < total)
        total = p.limit;
    size_t lo, hi; /* this rank's questions (all of them alone) */
    oc_res_span(&p, total, &lo, &hi);
    oc_scorer sc;
    oc_status st = oc_scorer_init(&sc, m);
    int have_scorer = st == OC_OK;
    size_t index = 0;
    for (size_t si = 0; st == OC_OK && si < set.n && index < total; si++) {
        const oc_mmlu_subject *s = &set.subjects[si];
        for (size_t qi = 0; st == OC_OK && qi < s->n_items && index < total; qi++, index++) {
            const oc_mmlu_question *q = &s->items[qi];
            if (index < lo || index >= hi)
                continue;
            encoded e;
            size_t k = 0;
            st = encode_fitting(m, &p, s, q, &e, &k);
            double lp[OC_EXAM_MAX_CHOICES];
            int truncated = 0;
            if (st == OC_OK)
                st = score_letters(&sc, &e, m->context, p.format, lp, &truncated);
            if (st == OC_OK) {
                int pred = argmax(lp, e.n_letters);
                r.fewer_shots += k < (p.shots < s->n_dev ? p.shots : s->n_dev);
                r.truncated += truncated;
                st = oc_res_add(&r, s->name, pred == q->answer, pred == q->answer, -1, -1);
                char id[64], got[2] = {(char)('A' + pred), 0}, want[2] = {(char)('A' + q->answer), 0};
                snprintf(id, sizeof id, "%s:%zu", s->name, q->row);
                oc_eval_item item = {index - lo, hi - lo, id, s->name, e.prompt, got, want,
                                     pred == q->answer, pred == q->answer, NULL};
                if (st == OC_OK)
                    st = oc_res_report(&r, &p, &item);
            }
            encoded_free(&e);
        }
    }
    if (have_scorer)
        oc_scorer_free(&sc);
    oc_mmlu_free(&set);
    st = oc_res_merge(&r, &p, st); /* every rank's counts (collective) */
    oc_res_stop(&r);
    if (st != OC_OK && st != OC_ERR_CANCELLED) {
        oc_eval_result_free(&r);
        return st;
    }
    *out = r;
    return st;
}
