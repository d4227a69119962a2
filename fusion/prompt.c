/* Chat formats of the families, as their chat templates render them, and the processors'
 * expansion of each image into image tokens.
 * SmolVLM: "<|im_start|>System: Be brief.<end_of_utterance>\nUser:<image>Question<end_of_utterance>\n
 *           Assistant: Answer<end_of_utterance>\n..." (the colon takes no space when the
 *           message starts with an image; images sit where their parts are)
 * LLaVA-1.5: "Be brief. USER: <image>\nQuestion ASSISTANT: Answer USER: ..." (a system
 *           prompt is its text alone; images go first)
 * For training, LLaVA's answers end in "</s>" (the EOS token) as in LLaVA's own training
 * format ("ASSISTANT: Answer</s>USER: ..."), so that a fine-tuned model learns to stop;
 * the Hugging Face template, used for inference, has no end marker. */
#include "prompt.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"
#include "tokenizer.h"

static void sb_repeat(oc_strbuf *b, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        oc_sb_puts(b, s);
}

/* SmolVLM's expansion of one image (Idefics3Processor / SmolVLMProcessor). */
static void smol_image(oc_strbuf *b, const oc_model_config *c, const oc_tile_layout *lay) {
    uint32_t seq = oc_config_image_seq(c);
    char tag[64];
    for (uint32_t r = 1; r <= lay->rows; r++) {
        for (uint32_t col = 1; col <= lay->cols; col++) {
            snprintf(tag, sizeof tag, "<fake_token_around_image><row_%u_col_%u>", r, col);
            oc_sb_puts(b, tag);
            sb_repeat(b, "<image>", seq);
        }
        oc_sb_puts(b, "\n");
    }
    if (lay->rows)
        oc_sb_puts(b, "\n");
    oc_sb_puts(b, "<fake_token_around_image><global-img>");
    sb_repeat(b, "<image>", seq);
    oc_sb_puts(b, "<fake_token_around_image>");
}

/* Appends the conversation; span_start/span_end (optional, n_turns entries) receive the
 * byte range of each assistant turn's trained text (answer + end-of-turn marker).
 * llava_end: LLaVA's end of an answer when training (the EOS token's text), or NULL. */
static oc_status render(oc_strbuf *b, const oc_model_config *c, const oc_turn *turns,
                        size_t n_turns, const oc_tile_layout *layouts, size_t n_images,
                        int add_generation_prompt, size_t *span_start, size_t *span_end,
                        const char *llava_end) {
    if (c->family == OC_FAMILY_QWEN25VL || c->family == OC_FAMILY_GEMMA3)
        return oc_prompt_render_family(b, c, turns, n_turns, layouts, n_images,
                                       add_generation_prompt, span_start, span_end);
    int smol = c->family == OC_FAMILY_SMOLVLM;
    size_t img = 0;
    if (smol)
        oc_sb_puts(b, "<|im_start|>");
    for (size_t t = 0; t < n_turns; t++) {
        const oc_turn *tu = &turns[t];
        if ((tu->is_assistant || tu->is_system) && tu->n_images)
            return oc_err(OC_ERR_INVALID_ARG, "an assistant or system turn cannot hold images");
        if (img + tu->n_images > n_images)
            return oc_err(OC_ERR_INVALID_ARG, "the turns hold more images than were given");
        const char *text = tu->text ? tu->text : "";
        /* A trained span starts before the space that follows the role's colon: the
         * tokenizers fold that space into the answer's first token. */
        if (smol) {
            oc_sb_puts(b, tu->is_system ? "System:" : tu->is_assistant ? "Assistant:" : "User:");
            if (span_start)
                span_start[t] = b->len;
            if (!tu->n_images || (tu->image_at && tu->image_at[0] > 0))
                oc_sb_puts(b, " ");
            size_t pos = 0, len = strlen(text);
            for (uint32_t i = 0; i < tu->n_images; i++, img++) {
                size_t at = tu->image_at ? tu->image_at[i] : 0;
                if (at < pos || at > len)
                    return oc_err(OC_ERR_INVALID_ARG, "turn %zu: image %u is placed at byte "
                                  "%zu of a %zu-byte text (after %zu)", t + 1, i + 1, at, len,
                                  pos);
                oc_sb_putn(b, text + pos, at - pos);
                pos = at;
                smol_image(b, c, &layouts[img]);
            }
            oc_sb_puts(b, text + pos);
            oc_sb_puts(b, "<end_of_utterance>");
            if (span_end)
                span_end[t] = b->len;
            oc_sb_puts(b, "\n");
        } else if (tu->is_system) {
            oc_sb_puts(b, text);
            oc_sb_puts(b, " ");
        } else {
            oc_sb_puts(b, tu->is_assistant ? "ASSISTANT:" : "USER:");
            if (span_start)
                span_start[t] = b->len;
            oc_sb_puts(b, " ");
            for (uint32_t i = 0; i < tu->n_images; i++, img++) {
                sb_repeat(b, "<image>", oc_config_image_seq(c));
                oc_sb_puts(b, "\n");
            }
            oc_sb_puts(b, text);
            int ends = tu->is_assistant && llava_end;
            if (ends)
                oc_sb_puts(b, llava_end);
            if (span_end)
                span_end[t] = b->len;
            if (!ends)
                oc_sb_puts(b, " ");
        }
    }
    if (img != n_images)
        return oc_err(OC_ERR_INVALID_ARG, "%zu images given but the turns hold %zu", n_images,
                      img);
    if (add_generation_prompt)
        oc_sb_puts(b, smol ? "Assistant:" : "ASSISTANT:");
    if (b->failed || !b->data)
        return oc_err(OC_ERR_NOMEM, "out of memory building the prompt");
    return OC_OK;
}

oc_status oc_prompt_text(const oc_model_config *cfg, const oc_turn *turns, size_t n_turns,
                         const oc_tile_layout *layouts, size_t n_images,
                         int add_generation_prompt, char **text) {
    oc_strbuf b = {0};
    oc_status s = render(&b, cfg, turns, n_turns, layouts, n_images, add_generation_prompt,
                         NULL, NULL, NULL);
    if (s != OC_OK) {
        oc_free(b.data);
        return s;
    }
    *text = b.data;
    return OC_OK;
}

/* Tokens of text[0:n], counted. */
static oc_status count_prefix(const oc_tokenizer *tok, const char *text, size_t n,
                              int add_special, size_t *count) {
    int32_t *ids;
    OC_TRY(oc_tokenize(tok, text, n, add_special, &ids, count));
    oc_free(ids);
    return OC_OK;
}

oc_status oc_prompt_encode(const oc_model_config *cfg, const oc_tokenizer *tok,
                           const oc_turn *turns, size_t n_turns, const oc_tile_layout *layouts,
                           size_t n_images, int add_generation_prompt, int32_t **ids,
                           int32_t **labels, size_t *n) {
    oc_strbuf b = {0};
    size_t *spans = oc_calloc(2 * n_turns + 1, sizeof *spans);
    int32_t *out = NULL, *lab = NULL;
    size_t n_ids = 0;
    oc_status s = spans ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    /* LLaVA's end of answer, when it is an added special token that the text can name */
    const char *llava_end = NULL;
    if (labels && cfg->family == OC_FAMILY_LLAVA && cfg->n_eos > 0 &&
        oc_tok_is_special(tok, cfg->eos[0]))
        llava_end = oc_token_piece(tok, cfg->eos[0]);
    if (s == OC_OK)
        s = render(&b, cfg, turns, n_turns, layouts, n_images, add_generation_prompt, spans,
                   spans + n_turns, llava_end);
    /* the new families' formats spell every special token themselves, <bos> included,
     * as their chat templates render them (transformers then tokenizes without adding) */
    int add_special = cfg->family != OC_FAMILY_QWEN25VL && cfg->family != OC_FAMILY_GEMMA3;
    if (s == OC_OK)
        s = oc_tokenize(tok, b.data, b.len, add_special, &out, &n_ids);
    if (s == OC_OK && labels) {
        lab = oc_malloc((n_ids ? n_ids : 1) * sizeof *lab);
        if (!lab)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; s == OC_OK && i < n_ids; i++)
            lab[i] = OC_IGNORE_LABEL;
        /* A turn's tokens are those between the token counts of the text before and
         * after it: the formats put token boundaries there. */
        for (size_t t = 0; s == OC_OK && t < n_turns; t++) {
            if (!turns[t].is_assistant)
                continue;
            size_t k0 = 0, k1 = 0;
            s = count_prefix(tok, b.data, spans[t], add_special, &k0);
            if (s == OC_OK)
                s = count_prefix(tok, b.data, spans[n_turns + t], add_special, &k1);
            for (size_t i = k0; s == OC_OK && i < k1 && i < n_ids; i++)
                lab[i] = out[i];
        }
    }
    oc_free(b.data);
    oc_free(spans);
    if (s != OC_OK) {
        oc_free(out);
        oc_free(lab);
        return s;
    }
    *ids = out;
    if (labels)
        *labels = lab;
    *n = n_ids;
    return OC_OK;
}
