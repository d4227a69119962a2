/* Sessions and generation: prompt prefill with image features, then token-by-token
 * decoding with the KV cache, streaming complete UTF-8 pieces. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "positions.h"
#include "session.h"
#include "tokenizer.h"

/* Prompt tokens fed per forward call (bounds scratch memory on long prompts, and is the
 * step of the progress callback). */
#define PREFILL_CHUNK 512

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

oc_gen_params oc_gen_default_params(void) {
    oc_gen_params p = {
        .max_tokens = 256,
        .temperature = 0.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .repetition_penalty = 1.0f,
        .seed = 0,
    };
    return p;
}

void oc_answer_free(oc_answer *a) {
    if (!a)
        return;
    oc_free(a->text);
    oc_free(a->tokens);
    memset(a, 0, sizeof *a);
}

/* One call of a kind on one thread or on the pool, as the model's tuner says; the time
 * and FLOPs it took go back to the tuner. */
typedef struct {
    oc_tuner *t;
    int pool;
    double t0, f0;
} tuned;

static tuned tune_begin(oc_session *s, int kind) {
    tuned c = {NULL, 1, 0, 0};
    if (oc_pool_size(s->pool) > 1 && s->m->tuners && !s->m->params.fixed_threads) {
        c.t = &s->m->tuners[kind];
        c.pool = oc_tuner_choose(c.t);
        s->ex.pool = c.pool ? s->pool : NULL;
        c.t0 = now_ms();
        c.f0 = oc_exec_flops(&s->ex);
    }
    return c;
}

static void tune_end(oc_session *s, const tuned *c) {
    if (!c->t)
        return;
    oc_tuner_record(c->t, c->pool, (now_ms() - c->t0) / 1e3, oc_exec_flops(&s->ex) - c->f0);
    s->ex.pool = s->pool;
}

oc_status oc_progress_report(const oc_progress *p, oc_progress_stage stage, uint64_t done,
                             uint64_t total) {
    if (p && p->fn && p->fn(stage, done, total, p->user_data))
        return oc_err(OC_ERR_CANCELLED, "stopped by the progress callback (%s %llu of %llu)",
                      stage == OC_PROGRESS_IMAGE ? "image tile" : "prompt token",
                      (unsigned long long)done, (unsigned long long)total);
    return OC_OK;
}

oc_status oc_session_new(const oc_model *m, oc_session **out) {
    if (!m || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_session_new: NULL argument");
    oc_session *s = oc_calloc(1, sizeof *s);
    if (!s)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    s->m = m;
    oc_status st = oc_pool_new(m->params.n_threads, &s->pool);
    if (st != OC_OK) {
        oc_free(s);
        return st;
    }
    oc_exec_init(&s->ex, s->pool);
    *out = s;
    return OC_OK;
}

void oc_session_reset(oc_session *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n_turns; i++)
        oc_free((void *)s->turns[i].text);
    oc_free(s->turns);
    oc_free(s->layouts);
    oc_free(s->feats);
    oc_free(s->fed);
    oc_kv_cache_free(&s->kv);
    const oc_model *m = s->m;
    oc_pool *pool = s->pool;
    oc_exec ex = s->ex; /* the threads and scratch outlive a reset */
    memset(s, 0, sizeof *s);
    s->m = m;
    s->pool = pool;
    s->ex = ex;
}

void oc_session_free(oc_session *s) {
    if (!s)
        return;
    oc_session_reset(s);
    oc_exec_release(&s->ex);
    oc_pool_free(s->pool);
    oc_free(s);
}

/* Appends the features of one image's tiles. */
static oc_status add_encoded(oc_session *s, const float *px, uint32_t tiles,
                             oc_tile_layout layout, const oc_progress *progress) {
    const oc_model *m = s->m;
    if (s->n_images + 1 > m->params.max_images)
        return oc_err(OC_ERR_LIMIT, "%zu images in one conversation; the limit is %u",
                      s->n_images + 1, m->params.max_images);
    size_t Ct = m->cfg.text.hidden, n_tok = oc_image_tokens(&m->cfg, &layout);
    size_t rows_new = s->n_feat_rows + n_tok;
    float *nf = oc_realloc(s->feats, rows_new * Ct * sizeof(float));
    if (!nf)
        return oc_err(OC_ERR_NOMEM, "out of memory for image features");
    s->feats = nf;
    oc_tile_layout *nl = oc_realloc(s->layouts, (s->n_images + 1) * sizeof *nl);
    if (!nl)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    s->layouts = nl;
    tuned tc = tune_begin(s, OC_TUNE_IMAGE);
    oc_status st = oc_model_encode_image(&s->ex, m, px, tiles, layout.rows, layout.cols,
                                         s->feats + s->n_feat_rows * Ct, NULL, progress);
    tune_end(s, &tc);
    OC_TRY(st);
    s->layouts[s->n_images++] = layout;
    s->n_feat_rows = rows_new;
    return OC_OK;
}

oc_status oc_session_add_pixels(oc_session *s, const float *pixels, uint32_t n_tiles,
                                oc_tile_layout layout) {
    oc_family f = s->m->cfg.family;
    int tiled = f == OC_FAMILY_SMOLVLM || f == OC_FAMILY_GEMMA3;
    uint32_t want = tiled ? layout.rows * layout.cols + 1 : 1;
    if (n_tiles != want)
        return oc_err(OC_ERR_INVALID_ARG, "%u tiles given for a %ux%u layout", n_tiles,
                      layout.rows, layout.cols);
    if (f == OC_FAMILY_QWEN25VL) {
        uint32_t mg = s->m->cfg.qvit.merge;
        if (!layout.rows || !layout.cols || layout.rows % mg || layout.cols % mg)
            return oc_err(OC_ERR_INVALID_ARG, "a %ux%u patch grid is not a multiple of the "
                          "merge size %u", layout.rows, layout.cols, mg);
    }
    return add_encoded(s, pixels, n_tiles, layout, NULL);
}

oc_status oc_session_add_images(oc_session *s, const oc_image *const *images, size_t n,
                                oc_timings *tm, const oc_progress *progress) {
    double t0 = now_ms(), f0 = oc_exec_flops(&s->ex);
    for (size_t i = 0; i < n; i++) {
        if (!images[i])
            return oc_err(OC_ERR_INVALID_ARG, "image %zu is NULL", i);
        float *px = NULL;
        uint32_t tiles, rows, cols;
        OC_TRY(oc_model_preprocess(s->m, images[i], &px, &tiles, &rows, &cols));
        oc_status st = add_encoded(s, px, tiles, (oc_tile_layout){rows, cols}, progress);
        oc_free(px);
        OC_TRY(st);
        tm->n_tiles += tiles;
    }
    tm->image_ms += now_ms() - t0;
    tm->image_flops += oc_exec_flops(&s->ex) - f0;
    return OC_OK;
}

oc_status oc_session_embed(const oc_session *s, const int32_t *ids, size_t n, size_t from,
                           size_t to, float *x) {
    const oc_model *m = s->m;
    size_t C = m->cfg.text.hidden, k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        int keep = i >= from && i < to;
        if (id < 0 || (uint32_t)id >= m->cfg.text.vocab)
            return oc_err(OC_ERR_FORMAT, "token id %d is outside the model's vocabulary (%u); "
                          "tokenizer and model do not match", id, m->cfg.text.vocab);
        if (id == m->cfg.image_token_id) {
            if (k >= s->n_feat_rows)
                return oc_err(OC_ERR_INVALID_ARG, "the prompt has more image tokens than the "
                              "images provide (does the text contain an image token?)");
            if (keep)
                memcpy(x + (i - from) * C, s->feats + k * C, C * sizeof(float));
            k++;
        } else if (keep) {
            oc_llama_embed(x + (i - from) * C, &m->cfg.text, &m->llm, id);
        }
    }
    if (k != s->n_feat_rows)
        return oc_err(OC_ERR_INVALID_ARG, "the prompt has %zu image tokens for %zu image "
                      "features", k, s->n_feat_rows);
    return OC_OK;
}

oc_status oc_session_forward(oc_session *s, const int32_t *ids, size_t n, size_t from,
                             size_t to, float *x, float *hidden_out, float *logits,
                             uint32_t n_logits) {
    const oc_model *m = s->m;
    const oc_model_config *c = &m->cfg;
    size_t T = to - from;
    OC_TRY(oc_session_embed(s, ids, n, from, to, x));
    if (c->family != OC_FAMILY_QWEN25VL && c->family != OC_FAMILY_GEMMA3)
        return oc_llama_forward(&s->ex, &c->text, &m->llm, &s->kv, x, (uint32_t)T, hidden_out,
                                logits, n_logits);
    oc_decoder_inputs in = {0};
    int32_t *pos = NULL;
    uint32_t *span = NULL;
    oc_status st = OC_OK;
    if (c->family == OC_FAMILY_QWEN25VL) {
        /* positions depend on everything before: computed over the whole prompt */
        pos = oc_malloc(3 * n * sizeof *pos);
        if (!pos)
            return oc_err(OC_ERR_NOMEM, "out of memory for %zu positions", n);
        st = oc_mrope_positions(c, ids, n, s->layouts, s->n_images, pos, &s->next_pos);
        for (int r = 0; st == OC_OK && r < 3; r++) /* rows (3, T) of this call */
            memmove(pos + r * T, pos + r * n + from, T * sizeof *pos);
        for (size_t t = 0; st == OC_OK && s->text_positions && t < 3 * T; t++)
            pos[t] = (int32_t)(from + t % T);
        if (s->text_positions)
            s->next_pos = (int32_t)n;
        in.pos = pos;
    } else {
        span = oc_malloc(T * sizeof *span);
        if (!span)
            return oc_err(OC_ERR_NOMEM, "out of memory for %zu tokens", T);
        for (size_t t = 0; t < T; t++) {
            size_t a, e;
            oc_image_run(c, ids, n, from + t, &a, &e);
            if (e > to)
                st = oc_err(OC_ERR_INTERNAL, "a forward call cuts an image's tokens");
            span[t] = (uint32_t)e;
        }
        in.span_end = span;
    }
    if (st == OC_OK)
        st = oc_decoder_forward(&s->ex, &c->text, &m->llm, &s->kv, x, (uint32_t)T, &in,
                                hidden_out, logits, n_logits);
    oc_free(pos);
    oc_free(span);
    return st;
}

/* Whether the family's image tokens must be fed in one call (they see each other). */
static int images_bidirectional(const oc_model *m) {
    return m->cfg.family == OC_FAMILY_GEMMA3;
}

/* Feeds ids[s->kv.len : n] (reusing the cached prefix) and leaves the last logits. */
static oc_status prefill(oc_session *s, const int32_t *ids, size_t n, float *logits,
                         const oc_progress *progress) {
    const oc_model *m = s->m;
    if (!s->kv.k)
        OC_TRY(oc_kv_cache_init(&s->kv, &m->cfg.text, m->context));
    size_t p = 0;
    while (p < s->kv.len && p < n && s->fed[p] == ids[p])
        p++;
    if (p == n) /* everything cached: recompute the last position for its logits */
        p--;
    size_t a, e, longest = 0;
    if (images_bidirectional(m)) { /* never restart inside an image */
        oc_image_run(&m->cfg, ids, n, p, &a, &e);
        if (e && a < p)
            p = a;
        for (size_t i = p; i < n; i = e > i ? e : i + 1) {
            oc_image_run(&m->cfg, ids, n, i, &a, &e);
            longest = e - a > longest ? e - a : longest;
        }
    }
    s->kv.len = (uint32_t)p;
    /* fed mirrors the cache, one id per position: decode_loop appends past the prompt */
    if (!s->fed && !(s->fed = oc_malloc((size_t)s->kv.cap * sizeof *s->fed)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t C = m->cfg.text.hidden;
    size_t chunk = n - p < PREFILL_CHUNK ? n - p : PREFILL_CHUNK;
    float *x = oc_malloc((chunk > longest ? chunk : longest) * C * sizeof(float));
    if (!x)
        return oc_err(OC_ERR_NOMEM, "out of memory for %zu prompt tokens", chunk);
    oc_status st = OC_OK;
    size_t p0 = p;
    while (st == OC_OK && p < n) {
        size_t T = n - p < chunk ? n - p : chunk;
        if (images_bidirectional(m) && p + T < n) { /* end the chunk outside an image */
            oc_image_run(&m->cfg, ids, n, p + T, &a, &e);
            if (e && a > p)
                T = a - p;
            else if (e)
                T = e - p;
        }
        tuned tc = tune_begin(s, T < OC_TUNE_LONG ? OC_TUNE_PREFILL_SHORT : OC_TUNE_PREFILL);
        st = oc_session_forward(s, ids, n, p, p + T, x, NULL, p + T == n ? logits : NULL,
                                p + T == n);
        tune_end(s, &tc);
        if (st == OC_OK) {
            memcpy(s->fed + p, ids + p, T * sizeof *ids);
            p += T;
            st = oc_progress_report(progress, OC_PROGRESS_PROMPT, p - p0, n - p0);
        }
    }
    oc_free(x);
    return st;
}

/* Stop tokens: generation_config's end tokens, plus the end of a turn of SmolVLM, Qwen and
 * Gemma chats. */
static int is_stop(const oc_model *m, int32_t id) {
    for (uint32_t i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos[i] == id)
            return 1;
    oc_family f = m->cfg.family;
    const char *end = f == OC_FAMILY_SMOLVLM    ? "<end_of_utterance>"
                      : f == OC_FAMILY_QWEN25VL ? "<|im_end|>"
                      : f == OC_FAMILY_GEMMA3   ? "<end_of_turn>"
                                                : NULL;
    return end && id == oc_tok_id(m->tok, end);
}

/* Length of the prefix of text that can be shown: complete UTF-8, without a trailing
 * replacement character that more tokens may still complete. */
static size_t stable_prefix(const char *text, size_t n) {
    size_t end = n;
    while (end >= 3 && (unsigned char)text[end - 3] == 0xEF &&
           (unsigned char)text[end - 2] == 0xBF && (unsigned char)text[end - 1] == 0xBD)
        end -= 3;
    size_t i = end, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)text[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i > 0) {
        unsigned char lead = (unsigned char)text[i - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (need > back + 1)
            end = i - 1;
    }
    return end;
}

typedef struct {
    const oc_gen_params *p;
    char *shown;     /* text handed to the callback so far */
    size_t n_shown;
} streamer;

/* Decodes all generated tokens and hands the new, stable part to the callback. */
static oc_status stream_update(streamer *st, const oc_tokenizer *tok, const int32_t *toks,
                               size_t n, int final, int32_t last_id) {
    if (!st->p->on_token)
        return OC_OK;
    char *text;
    OC_TRY(oc_detokenize(tok, toks, n, 0, &text));
    size_t len = strlen(text), end = final ? len : stable_prefix(text, len);
    oc_status s = OC_OK;
    if (end > st->n_shown && strncmp(text, st->shown ? st->shown : "", st->n_shown) == 0) {
        char saved = text[end];
        text[end] = 0;
        if (st->p->on_token(text + st->n_shown, last_id, st->p->user_data))
            s = oc_err(OC_ERR_CANCELLED, "generation stopped by the token callback");
        text[end] = saved;
        st->n_shown = end;
    }
    oc_free(st->shown);
    st->shown = text;
    return s;
}

/* Samples up to max_tokens after the prefilled prompt; t_start: when the call began. */
static oc_status decode_loop(oc_session *s, const oc_gen_params *p, size_t n_prompt,
                             float *logits, oc_answer *ans, double t_start) {
    const oc_model *m = s->m;
    size_t V = m->cfg.text.vocab, C = m->cfg.text.hidden;
    size_t room = m->context - n_prompt, max = p->max_tokens < room ? p->max_tokens : room;
    float *sf = oc_malloc(V * sizeof(float) + C * sizeof(float));
    int32_t *si = oc_malloc(V * sizeof(int32_t));
    int32_t *hist = oc_malloc((n_prompt + max + 1) * sizeof(int32_t));
    ans->tokens = oc_malloc((max + 1) * sizeof(int32_t));
    streamer st = {.p = p};
    oc_status status = sf && si && hist && ans->tokens ? OC_OK
                                                       : oc_err(OC_ERR_NOMEM, "out of memory");
    if (status == OC_OK)
        memcpy(hist, s->fed, n_prompt * sizeof *hist);
    oc_sampler smp = {p->temperature, p->top_k, p->top_p, p->repetition_penalty};
    float *x = sf ? sf + V : NULL; /* NULL + V is undefined when sf failed */
    double t0 = now_ms();
    while (status == OC_OK && ans->n_tokens < max) {
        int32_t id = oc_sample(&smp, logits, V, hist, n_prompt + ans->n_tokens, &s->rng, sf, si);
        if (ans->n_tokens == 0)
            ans->timings.first_token_ms = now_ms() - t_start;
        if (!p->ignore_eos && is_stop(m, id)) {
            ans->stopped_by_eos = 1;
            break;
        }
        ans->tokens[ans->n_tokens++] = id;
        hist[n_prompt + ans->n_tokens - 1] = id;
        status = stream_update(&st, m->tok, ans->tokens, ans->n_tokens, 0, id);
        if (status != OC_OK || ans->n_tokens == max)
            break;
        /* feed the token: its keys and values join the cache */
        oc_llama_embed(x, &m->cfg.text, &m->llm, id);
        int32_t pos[3] = {s->next_pos, s->next_pos, s->next_pos};
        oc_decoder_inputs in = {.pos = pos};
        int mrope = m->cfg.family == OC_FAMILY_QWEN25VL;
        tuned tc = tune_begin(s, OC_TUNE_DECODE);
        status = oc_decoder_forward(&s->ex, &m->cfg.text, &m->llm, &s->kv, x, 1,
                                    mrope ? &in : NULL, NULL, logits, 1);
        tune_end(s, &tc);
        s->next_pos++;
        if (status == OC_OK)
            s->fed[s->kv.len - 1] = id;
    }
    if (status == OC_OK)
        status = stream_update(&st, m->tok, ans->tokens, ans->n_tokens, 1, -1);
    ans->timings.gen_ms = now_ms() - t0;
    ans->timings.gen_tokens = (uint32_t)ans->n_tokens;
    oc_free(st.shown);
    oc_free(sf);
    oc_free(si);
    oc_free(hist);
    return status;
}

/* Appends a turn with a copy of text. */
static oc_status push_turn(oc_session *s, int assistant, const char *text, uint32_t n_images) {
    oc_turn *nt = oc_realloc(s->turns, (s->n_turns + 1) * sizeof *nt);
    if (!nt)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    s->turns = nt;
    char *copy = oc_strdup(text);
    if (!copy)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    s->turns[s->n_turns++] =
        (oc_turn){.is_assistant = assistant, .text = copy, .n_images = n_images};
    return OC_OK;
}

static void pop_turn(oc_session *s) {
    oc_free((void *)s->turns[--s->n_turns].text);
}

static oc_status generate(oc_session *s, const oc_gen_params *p, oc_answer *ans,
                          double t_start) {
    const oc_model *m = s->m;
    int32_t *ids = NULL;
    size_t n = 0;
    OC_TRY(oc_prompt_encode(&m->cfg, m->tok, s->turns, s->n_turns, s->layouts, s->n_images, 1,
                            &ids, NULL, &n));
    oc_status st = OC_OK;
    if (n + 1 > m->context)
        st = oc_err(OC_ERR_LIMIT, "the prompt is %zu tokens; the model's context is %u", n,
                    m->context);
    float *logits = st == OC_OK ? oc_malloc(m->cfg.text.vocab * sizeof(float)) : NULL;
    if (st == OC_OK && !logits)
        st = oc_err(OC_ERR_NOMEM, "out of memory");
    double t0 = now_ms(), f0 = oc_exec_flops(&s->ex);
    oc_progress progress = {p->on_progress, p->progress_user_data};
    if (st == OC_OK)
        st = prefill(s, ids, n, logits, &progress);
    ans->timings.prompt_ms = now_ms() - t0;
    ans->timings.prompt_flops = oc_exec_flops(&s->ex) - f0;
    ans->timings.prompt_tokens = (uint32_t)n;
    if (st == OC_OK)
        st = decode_loop(s, p, n, logits, ans, t_start);
    oc_free(logits);
    oc_free(ids);
    return st;
}

oc_status oc_session_ask(oc_session *s, const oc_image *const *images, size_t n_images,
                         const char *question, const oc_gen_params *params, oc_answer *out) {
    if (!s || !out || !question || (n_images && !images))
        return oc_err(OC_ERR_INVALID_ARG, "oc_session_ask: NULL argument");
    oc_gen_params p = params ? *params : oc_gen_default_params();
    /* NaN would make the sampler's sort comparison inconsistent (and the answer garbage) */
    if (!isfinite(p.temperature) || !isfinite(p.top_p) || !isfinite(p.repetition_penalty))
        return oc_err(OC_ERR_INVALID_ARG, "generation parameters: temperature %g, top_p %g, "
                      "repetition_penalty %g must be finite numbers", (double)p.temperature,
                      (double)p.top_p, (double)p.repetition_penalty);
    oc_answer ans;
    memset(&ans, 0, sizeof ans);
    double t_start = now_ms();
    if (s->n_turns == 0 && s->n_images == 0)
        oc_rng_seed(&s->rng, p.seed);
    size_t images_before = s->n_images, rows_before = s->n_feat_rows;
    oc_progress progress = {p.on_progress, p.progress_user_data};
    oc_status st = oc_session_add_images(s, images, n_images, &ans.timings, &progress);
    if (st == OC_OK)
        st = push_turn(s, 0, question, (uint32_t)(s->n_images - s->n_images_in_turns));
    if (st == OC_OK) {
        st = generate(s, &p, &ans, t_start);
        if (st == OC_OK || st == OC_ERR_CANCELLED) {
            oc_status dst = oc_detokenize(s->m->tok, ans.tokens, ans.n_tokens, 0, &ans.text);
            if (dst != OC_OK)
                st = dst;
        }
        /* The answer joins the conversation (as the template renders it: no leading
         * space, SmolVLM puts one after "Assistant:"). */
        if (st == OC_OK || st == OC_ERR_CANCELLED) {
            const char *t = ans.text;
            if (s->m->cfg.family == OC_FAMILY_SMOLVLM && *t == ' ')
                t++;
            oc_status pst = push_turn(s, 1, t, 0);
            st = pst != OC_OK ? pst : st;
        }
        if (st != OC_OK && st != OC_ERR_CANCELLED)
            pop_turn(s);
        else
            s->n_images_in_turns = s->n_images;
    }
    if (st != OC_OK && st != OC_ERR_CANCELLED) {
        /* Forget this turn's images so the session stays consistent. */
        s->n_images = images_before;
        s->n_feat_rows = rows_before;
        oc_answer_free(&ans);
        return st;
    }
    *out = ans;
    return st;
}

oc_status oc_ask(const oc_model *m, const oc_image *const *images, size_t n_images,
                 const char *question, const oc_gen_params *params, oc_answer *out) {
    oc_session *s;
    OC_TRY(oc_session_new(m, &s));
    oc_status st = oc_session_ask(s, images, n_images, question, params, out);
    oc_session_free(s);
    return st;
}

oc_status oc_caption(const oc_model *m, const oc_image *image, const oc_gen_params *params,
                     oc_answer *out) {
    if (!image)
        return oc_err(OC_ERR_INVALID_ARG, "oc_caption: NULL image");
    return oc_ask(m, &image, 1, "Describe this image.", params, out);
}

/* For oc_session_reply (fusion/reply.c), which sets the turns itself. */
oc_status oc_session_generate(oc_session *s, const oc_gen_params *p, oc_answer *ans) {
    return generate(s, p, ans, now_ms());
}
