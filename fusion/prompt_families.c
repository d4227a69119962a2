/* The chat formats of Qwen2.5-VL and Gemma 3 as their chat templates render them, with
 * each image expanded as their processors do.
 * Qwen2.5-VL: "<|im_start|>user\n<|vision_start|><|image_pad|>...<|vision_end|>Question
 *   <|im_end|>\n<|im_start|>assistant\nAnswer<|im_end|>\n...", one <|image_pad|> per merged
 *   patch, after the template's default system turn when the folder's template has one.
 * Gemma 3: "<bos><start_of_turn>user\n\n\n<start_of_image><image_soft_token>...
 *   <end_of_image>\n\nQuestion<end_of_turn>\n<start_of_turn>model\nAnswer<end_of_turn>\n",
 *   the texts trimmed (the template's | trim); with pan and scan "Here is the original image
 *   ... and here are some crops to help you see better ..." (Gemma3Processor). */
#include <string.h>

#include "error.h"
#include "prompt.h"
#include "tokenizer.h"

uint32_t oc_image_tokens(const oc_model_config *c, const oc_tile_layout *lay) {
    switch (c->family) {
    case OC_FAMILY_SMOLVLM:
        return (lay->rows * lay->cols + 1) * oc_config_image_seq(c);
    case OC_FAMILY_QWEN25VL:
        return lay->rows * lay->cols / (c->qvit.merge * c->qvit.merge);
    case OC_FAMILY_GEMMA3:
        return (1 + lay->rows * lay->cols) * c->mm_tokens;
    default:
        return oc_config_image_seq(c);
    }
}

static void repeat(oc_strbuf *b, const char *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        oc_sb_puts(b, s);
}

static void qwen_image(oc_strbuf *b, const oc_model_config *c, const oc_tile_layout *lay) {
    oc_sb_puts(b, "<|vision_start|>");
    repeat(b, "<|image_pad|>", oc_image_tokens(c, lay));
    oc_sb_puts(b, "<|vision_end|>");
}

/* Gemma3Processor's full_image_sequence. */
static void gemma_sequence(oc_strbuf *b, const oc_model_config *c) {
    oc_sb_puts(b, "\n\n<start_of_image>");
    repeat(b, "<image_soft_token>", c->mm_tokens);
    oc_sb_puts(b, "<end_of_image>\n\n");
}

static void gemma_image(oc_strbuf *b, const oc_model_config *c, const oc_tile_layout *lay) {
    uint32_t crops = lay->rows * lay->cols;
    if (!crops) {
        gemma_sequence(b, c);
        return;
    }
    oc_sb_puts(b, "Here is the original image ");
    gemma_sequence(b, c);
    oc_sb_puts(b, " and here are some crops to help you see better ");
    for (uint32_t k = 0; k < crops; k++) {
        if (k)
            oc_sb_puts(b, " ");
        gemma_sequence(b, c);
    }
}

/* Jinja's trim: without leading and trailing whitespace. */
static void put_trimmed(oc_strbuf *b, const char *s) {
    const char *e = s + strlen(s);
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    oc_sb_putn(b, s, (size_t)(e - s));
}

oc_status oc_prompt_render_family(oc_strbuf *b, const oc_model_config *c, const oc_turn *turns,
                                  size_t n_turns, const oc_tile_layout *layouts,
                                  size_t n_images, int add_generation_prompt,
                                  size_t *span_start, size_t *span_end) {
    int qwen = c->family == OC_FAMILY_QWEN25VL;
    size_t img = 0;
    if (qwen && c->default_system)
        oc_sb_puts(b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    if (!qwen)
        oc_sb_puts(b, "<bos>");
    for (size_t t = 0; t < n_turns; t++) {
        const oc_turn *tu = &turns[t];
        if (tu->is_assistant && tu->n_images)
            return oc_err(OC_ERR_INVALID_ARG, "an assistant turn cannot hold images");
        if (img + tu->n_images > n_images)
            return oc_err(OC_ERR_INVALID_ARG, "the turns hold more images than were given");
        const char *role = tu->is_assistant ? (qwen ? "assistant" : "model") : "user";
        oc_sb_puts(b, qwen ? "<|im_start|>" : "<start_of_turn>");
        oc_sb_puts(b, role);
        oc_sb_puts(b, "\n");
        if (span_start)
            span_start[t] = b->len;
        for (uint32_t i = 0; i < tu->n_images; i++, img++)
            (qwen ? qwen_image : gemma_image)(b, c, &layouts[img]);
        const char *text = tu->text ? tu->text : "";
        if (qwen)
            oc_sb_puts(b, text);
        else
            put_trimmed(b, text);
        oc_sb_puts(b, qwen ? "<|im_end|>" : "<end_of_turn>");
        if (span_end)
            span_end[t] = b->len;
        oc_sb_puts(b, "\n");
    }
    if (img != n_images)
        return oc_err(OC_ERR_INVALID_ARG, "%zu images given but the turns hold %zu", n_images,
                      img);
    if (add_generation_prompt)
        oc_sb_puts(b, qwen ? "<|im_start|>assistant\n" : "<start_of_turn>model\n");
    if (b->failed || !b->data)
        return oc_err(OC_ERR_NOMEM, "out of memory building the prompt");
    return OC_OK;
}

/* The token the tokenizer gives piece must be id. */
static oc_status expect_token(const oc_tokenizer *tok, const char *piece, int32_t id,
                              const char *key, const char *dir) {
    int32_t got = oc_tok_id(tok, piece);
    if (got == id)
        return OC_OK;
    if (got < 0)
        return oc_err(OC_ERR_FORMAT, "%s: tokenizer.json has no token %s (config.json's %s is "
                      "%d)", dir, piece, key, id);
    return oc_err(OC_ERR_FORMAT, "%s: tokenizer.json's %s is token %d but config.json's %s "
                  "is %d", dir, piece, got, key, id);
}

oc_status oc_prompt_check_tokens(const oc_model_config *c, const oc_tokenizer *tok,
                                 const char *dir) {
    if (c->family == OC_FAMILY_QWEN25VL) {
        OC_TRY(expect_token(tok, "<|image_pad|>", c->image_token_id, "image_token_id", dir));
        OC_TRY(expect_token(tok, "<|vision_start|>", c->vision_start_id,
                            "vision_start_token_id", dir));
        return expect_token(tok, "<|vision_end|>", c->vision_end_id, "vision_end_token_id",
                            dir);
    }
    if (c->family == OC_FAMILY_GEMMA3) {
        OC_TRY(expect_token(tok, "<image_soft_token>", c->image_token_id, "image_token_index",
                            dir));
        OC_TRY(expect_token(tok, "<start_of_image>", c->boi_id, "boi_token_index", dir));
        return expect_token(tok, "<end_of_image>", c->eoi_id, "eoi_token_index", dir);
    }
    return OC_OK;
}
