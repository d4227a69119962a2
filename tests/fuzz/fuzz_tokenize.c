/* Encoding arbitrary bytes (invalid UTF-8, NULs, added-token look-alikes) and decoding
 * arbitrary id lists with real tokenizers: SmolVLM-tiny's (byte-level BPE) and Llama 2's
 * (SentencePiece-style BPE with byte fallback).
 * Input: a flags byte (bit 0: tokenizer, bit 1: add_special / keep_special, bit 2:
 * decode instead of encode), then the text, or the ids as little-endian int32. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"

static oc_tokenizer *toks[2];

static void load(void) {
    if (toks[0])
        return;
    const char *files[2] = {"smolvlm-tiny/tokenizer.json", "tokenizers/llama2.json"};
    for (int i = 0; i < 2; i++)
        if (oc_tokenizer_load(fz_data(0, files[i]), &toks[i]) != OC_OK)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    load();
    int flags = data[0];
    data++;
    size--;
    const oc_tokenizer *tok = toks[flags & 1];
    int special = (flags >> 1) & 1;
    size_t V = oc_tokenizer_vocab_size(tok);
    if (flags & 4) {
        size_t n = size / 4;
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                         (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
            /* mostly ids near the vocabulary, sometimes anything */
            ids[i] = (flags & 8) ? (int32_t)u : (int32_t)(u % (V + 8)) - 4;
        }
        char *text = NULL;
        oc_status s = oc_detokenize(tok, ids, n, special, &text);
        fz_check_error(s, "oc_detokenize");
        if (s == OC_OK)
            oc_free(text);
        for (size_t i = 0; i < n && i < 4; i++) {
            const char *p = oc_token_piece(tok, ids[i]);
            if (p)
                (void)strlen(p);
        }
        free(ids);
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    oc_status s = oc_tokenize(tok, (const char *)data, size, special, &ids, &n);
    fz_check_error(s, "oc_tokenize");
    if (s != OC_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || !oc_token_piece(tok, ids[i]))
            abort(); /* an id that is not in the vocabulary */
    char *text = NULL;
    s = oc_detokenize(tok, ids, n, 1, &text);
    fz_check_error(s, "oc_detokenize");
    if (s == OC_OK)
        oc_free(text);
    oc_free(ids);
    return 0;
}
