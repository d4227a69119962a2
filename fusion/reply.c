/* oc_session_reply: a whole conversation (system prompt, text and encoded images) in the
 * session, the assistant's next message generated with stop strings, a finish reason and
 * the count of prompt tokens the KV cache already held. */
#include <math.h>
#include <stdalign.h>
#include <string.h>

#include "alloc.h"
#include "conversation.h"
#include "error.h"
#include "session.h"
#include "stop.h"
#include "tokenizer.h"

oc_reply_params oc_reply_default_params(void) {
    oc_reply_params p = {.gen = oc_gen_default_params()};
    return p;
}

const char *oc_finish_reason_str(oc_finish_reason r) {
    switch (r) {
    case OC_FINISH_STOP: return "stop";
    case OC_FINISH_LENGTH: return "length";
    case OC_FINISH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

void oc_reply_free(oc_reply *r) {
    if (!r)
        return;
    oc_free(r->text);
    memset(r, 0, sizeof *r);
}

/* One message as a turn. The text (text parts joined: SmolVLM's template concatenates
 * them, LLaVA's follows each with a space) and the image offsets share one allocation, so
 * that the session frees both with the text. Empty text parts are dropped. */
static oc_status make_turn(const oc_conv_message *msg, int smol, oc_turn *out) {
    size_t len = 0, n_img = 0, n_text = 0;
    for (size_t i = 0; i < msg->n_parts; i++) {
        const oc_conv_part *p = &msg->parts[i];
        if (p->image)
            n_img++;
        else if (p->text[0]) {
            len += strlen(p->text) + (!smol && n_text ? 1 : 0);
            n_text++;
        }
    }
    size_t at = (len + 1 + alignof(size_t) - 1) / alignof(size_t) * alignof(size_t);
    char *block = oc_malloc(at + n_img * sizeof(size_t));
    if (!block)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t *offsets = (size_t *)(void *)(block + at), k = 0, pos = 0;
    n_text = 0;
    for (size_t i = 0; i < msg->n_parts; i++) {
        const oc_conv_part *p = &msg->parts[i];
        if (p->image) {
            offsets[k++] = pos;
        } else if (p->text[0]) {
            if (!smol && n_text++)
                block[pos++] = ' ';
            size_t n = strlen(p->text);
            memcpy(block + pos, p->text, n);
            pos += n;
        }
    }
    block[pos] = 0;
    *out = (oc_turn){.is_assistant = msg->role == OC_ROLE_ASSISTANT, .text = block,
                     .n_images = (uint32_t)n_img, .is_system = msg->role == OC_ROLE_SYSTEM,
                     .image_at = n_img ? offsets : NULL};
    return OC_OK;
}

static void free_turns(oc_turn *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        oc_free((void *)t[i].text);
    oc_free(t);
}

/* The KV cache matches prompts by token ids, and every image token has the same id:
 * cut the cache before the first image token whose features change (new: rows, C). */
static void forget_changed_images(oc_session *s, const float *feats, size_t rows) {
    size_t C = s->m->cfg.text.hidden, same = 0;
    size_t common = rows < s->n_feat_rows ? rows : s->n_feat_rows;
    while (same < common && !memcmp(feats + same * C, s->feats + same * C, C * sizeof(float)))
        same++;
    if (!s->fed || (same == rows && same == s->n_feat_rows))
        return;
    size_t k = 0;
    for (uint32_t i = 0; i < s->kv.len; i++)
        if (s->fed[i] == s->m->cfg.image_token_id && k++ == same) {
            s->kv.len = i;
            break;
        }
}

/* Replaces the session's turns, layouts and image features with the conversation's; the
 * KV cache stays (prefill reuses what still matches). */
static oc_status load_conversation(oc_session *s, const oc_conversation *c) {
    const oc_model *m = s->m;
    size_t C = m->cfg.text.hidden, n_img = 0, rows = 0;
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->msgs[i].n_parts; j++) {
            const oc_encoded_image *e = c->msgs[i].parts[j].image;
            if (!e)
                continue;
            if (e->m != m)
                return oc_err(OC_ERR_INVALID_ARG, "message %zu: the image was encoded by "
                              "another model", i + 1);
            if (c->msgs[i].role != OC_ROLE_USER)
                return oc_err(OC_ERR_INVALID_ARG, "message %zu: only a user message can "
                              "hold images", i + 1);
            n_img++;
            rows += e->n_rows;
        }
    if (n_img > m->params.max_images)
        return oc_err(OC_ERR_LIMIT, "%zu images in the conversation; the limit is %u", n_img,
                      m->params.max_images);
    oc_turn *turns = oc_calloc(c->n + 1, sizeof *turns); /* + 1: room for the reply */
    oc_tile_layout *lay = oc_malloc((n_img ? n_img : 1) * sizeof *lay);
    float *feats = oc_malloc((rows ? rows : 1) * C * sizeof(float));
    oc_status st = turns && lay && feats ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    size_t made = 0, k = 0, r = 0;
    int smol = m->cfg.family == OC_FAMILY_SMOLVLM;
    for (; st == OC_OK && made < c->n; made++) {
        st = make_turn(&c->msgs[made], smol, &turns[made]);
        for (size_t j = 0; st == OC_OK && j < c->msgs[made].n_parts; j++) {
            const oc_encoded_image *e = c->msgs[made].parts[j].image;
            if (!e)
                continue;
            lay[k++] = e->layout;
            memcpy(feats + r * C, e->feats, e->n_rows * C * sizeof(float));
            r += e->n_rows;
        }
    }
    if (st != OC_OK) {
        if (turns)
            free_turns(turns, made);
        oc_free(lay);
        oc_free(feats);
        return st;
    }
    forget_changed_images(s, feats, rows);
    free_turns(s->turns, s->n_turns);
    oc_free(s->layouts);
    oc_free(s->feats);
    s->turns = turns;
    s->n_turns = c->n;
    s->layouts = lay;
    s->n_images = s->n_images_in_turns = n_img;
    s->feats = feats;
    s->n_feat_rows = rows;
    return OC_OK;
}

/* Between the generator's pieces and the caller's callback: drops the chat format's
 * leading space, holds back possible stop strings. */
typedef struct {
    oc_stop_filter f;
    const oc_gen_params *user;
    int started;        /* a non-empty piece has come */
    int user_stopped;   /* the caller's callback asked to stop */
} relay;

/* Hands text[from, to) to the caller's callback; 1 when it asks to stop. */
static int release(relay *r, size_t from, size_t to) {
    if (!r->user->on_token || to <= from)
        return 0;
    char *t = r->f.text.data, saved = t[to];
    t[to] = 0;
    int stop = r->user->on_token(t + from, -1, r->user->user_data);
    t[to] = saved;
    if (stop)
        r->user_stopped = 1;
    return stop;
}

static int on_piece(const char *piece, int32_t id, void *user) {
    (void)id;
    relay *r = user;
    if (!r->started && *piece == ' ')
        piece++;
    r->started |= *piece != 0;
    size_t from, to;
    int matched = oc_stop_push(&r->f, piece, strlen(piece), &from, &to);
    if (r->f.text.failed)
        return 1;
    return release(r, from, to) || matched;
}

/* Prompt tokens that prefill found in the cache: the common prefix of what the cache held
 * (old, n_old) and the new prompt, less the last position, which it always recomputes. */
static uint32_t reused(const int32_t *old, size_t n_old, const int32_t *fed, size_t n_prompt) {
    size_t p = 0;
    while (p < n_old && p < n_prompt && old[p] == fed[p])
        p++;
    return (uint32_t)(p == n_prompt && p ? p - 1 : p);
}

/* Appends the reply as an assistant turn, so that the session holds c + reply. */
static oc_status push_reply(oc_session *s, const char *text) {
    char *copy = oc_strdup(text);
    if (!copy)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    s->turns[s->n_turns++] = (oc_turn){.is_assistant = 1, .text = copy};
    return OC_OK;
}

oc_status oc_session_reply(oc_session *s, const oc_conversation *c,
                           const oc_reply_params *params, oc_reply *out) {
    if (!s || !c || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_session_reply: NULL argument");
    if (!c->n)
        return oc_err(OC_ERR_INVALID_ARG, "the conversation has no messages");
    oc_reply_params p = params ? *params : oc_reply_default_params();
    if (!isfinite(p.gen.temperature) || !isfinite(p.gen.top_p) ||
        !isfinite(p.gen.repetition_penalty))
        return oc_err(OC_ERR_INVALID_ARG, "generation parameters must be finite numbers");
    for (size_t i = 0; i < p.n_stop; i++)
        if (!p.stop || !p.stop[i])
            return oc_err(OC_ERR_INVALID_ARG, "stop string %zu is NULL", i);
    OC_TRY(load_conversation(s, c));
    oc_rng_seed(&s->rng, p.gen.seed);

    size_t n_old = s->fed ? s->kv.len : 0;
    int32_t *old = oc_malloc((n_old ? n_old : 1) * sizeof *old);
    if (!old)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    if (n_old)
        memcpy(old, s->fed, n_old * sizeof *old);

    relay r = {.user = &p.gen};
    oc_stop_init(&r.f, p.stop, p.n_stop);
    oc_gen_params gp = p.gen;
    gp.on_token = on_piece;
    gp.user_data = &r;
    oc_answer ans;
    memset(&ans, 0, sizeof ans);
    oc_status st = oc_session_generate(s, &gp, &ans);
    int cancelled = st == OC_ERR_CANCELLED;
    if (cancelled && r.f.text.failed)
        st = oc_err(OC_ERR_NOMEM, "out of memory for the reply");
    else if (cancelled)
        st = OC_OK;
    oc_reply rep;
    memset(&rep, 0, sizeof rep);
    if (st == OC_OK) {
        if (!r.f.matched && !r.user_stopped) {
            size_t from, to;
            oc_stop_flush(&r.f, &from, &to);
            release(&r, from, to);
        }
        rep.text = oc_strdup(r.f.text.data ? r.f.text.data : "");
        if (!rep.text)
            st = oc_err(OC_ERR_NOMEM, "out of memory");
    }
    if (st == OC_OK)
        st = push_reply(s, rep.text);
    if (st == OC_OK) {
        rep.prompt_tokens = ans.timings.prompt_tokens;
        rep.cached_tokens = s->fed ? reused(old, n_old, s->fed, ans.timings.prompt_tokens) : 0;
        rep.completion_tokens = (uint32_t)ans.n_tokens;
        rep.finish = r.user_stopped ? OC_FINISH_CANCELLED
                     : r.f.matched || ans.stopped_by_eos ? OC_FINISH_STOP
                                                         : OC_FINISH_LENGTH;
        rep.timings = ans.timings;
        *out = rep;
    } else {
        oc_free(rep.text);
    }
    oc_free(old);
    oc_stop_free(&r.f);
    oc_answer_free(&ans);
    return st;
}
