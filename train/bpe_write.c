/* tokenizer.json for a trained byte-level BPE, in the layout Hugging Face tokenizers
 * writes (serde_json's pretty printer: 2-space indentation, one value per line). */
#include <string.h>

#include "alloc.h"
#include "bpe_train.h"
#include "error.h"
#include "strbuf.h"

static void added_tokens(oc_strbuf *b, const oc_bpe_vocab *v) {
    if (v->n_special == 0) {
        oc_sb_puts(b, "  \"added_tokens\": [],\n");
        return;
    }
    oc_sb_puts(b, "  \"added_tokens\": [\n");
    for (size_t i = 0; i < v->n_special; i++) {
        oc_sb_printf(b, "    {\n      \"id\": %zu,\n      \"content\": ", i);
        oc_sb_json_str(b, v->tokens[i]);
        oc_sb_puts(b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n"
                      "      \"rstrip\": false,\n      \"normalized\": false,\n"
                      "      \"special\": true\n    }");
        oc_sb_puts(b, i + 1 < v->n_special ? ",\n" : "\n");
    }
    oc_sb_puts(b, "  ],\n");
}

static const char PIPELINE[] =
    "  \"normalizer\": null,\n"
    "  \"pre_tokenizer\": {\n"
    "    \"type\": \"ByteLevel\",\n"
    "    \"add_prefix_space\": false,\n"
    "    \"trim_offsets\": true,\n"
    "    \"use_regex\": true\n"
    "  },\n"
    "  \"post_processor\": null,\n"
    "  \"decoder\": {\n"
    "    \"type\": \"ByteLevel\",\n"
    "    \"add_prefix_space\": true,\n"
    "    \"trim_offsets\": true,\n"
    "    \"use_regex\": true\n"
    "  },\n"
    "  \"model\": {\n"
    "    \"type\": \"BPE\",\n"
    "    \"dropout\": null,\n"
    "    \"unk_token\": null,\n"
    "    \"continuing_subword_prefix\": null,\n"
    "    \"end_of_word_suffix\": null,\n"
    "    \"fuse_unk\": false,\n"
    "    \"byte_fallback\": false,\n"
    "    \"ignore_merges\": false,\n";

static void model_vocab(oc_strbuf *b, const oc_bpe_vocab *v) {
    oc_sb_puts(b, v->n_tokens ? "    \"vocab\": {\n" : "    \"vocab\": {},\n");
    for (size_t i = 0; i < v->n_tokens; i++) {
        oc_sb_puts(b, "      ");
        oc_sb_json_str(b, v->tokens[i]);
        oc_sb_printf(b, ": %zu%s\n", i, i + 1 < v->n_tokens ? "," : "");
    }
    if (v->n_tokens)
        oc_sb_puts(b, "    },\n");
}

static void model_merges(oc_strbuf *b, const oc_bpe_vocab *v) {
    if (v->n_merges == 0) {
        oc_sb_puts(b, "    \"merges\": []\n");
        return;
    }
    oc_sb_puts(b, "    \"merges\": [\n");
    for (size_t i = 0; i < v->n_merges; i++) {
        oc_sb_puts(b, "      [\n        ");
        oc_sb_json_str(b, v->tokens[v->merges[i][0]]);
        oc_sb_puts(b, ",\n        ");
        oc_sb_json_str(b, v->tokens[v->merges[i][1]]);
        oc_sb_puts(b, i + 1 < v->n_merges ? "\n      ],\n" : "\n      ]\n");
    }
    oc_sb_puts(b, "    ]\n");
}

oc_status oc_bpe_to_json(const oc_bpe_vocab *v, char **json, size_t *len) {
    if (!v || !json || !len)
        return oc_err(OC_ERR_INVALID_ARG, "bpe: NULL argument");
    oc_strbuf b = {0};
    oc_sb_puts(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
    added_tokens(&b, v);
    oc_sb_puts(&b, PIPELINE);
    model_vocab(&b, v);
    model_merges(&b, v);
    oc_sb_puts(&b, "  }\n}"); /* tokenizers writes no final newline */
    if (b.failed) {
        oc_sb_free(&b);
        return oc_err(OC_ERR_NOMEM, "bpe: out of memory");
    }
    *json = b.data;
    *len = b.len;
    return OC_OK;
}
