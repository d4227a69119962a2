/* tokenizer.json: every component parser (normalizer, pre-tokenizer, BPE model, added
 * tokens, post-processor, decoder), then a few encodings and decodings with what loads.
 * Input: the file's bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"
#include "tokenizer.h"

static const char *const texts[] = {
    "Hello world! <image> 123", "  leading spaces\tand\ntabs", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87",
    "\xff\xfe invalid \xc3", "<|im_start|>User:<end_of_utterance>", "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path(0, "tokenizer.json");
    fz_write(path, data, size);
    oc_tokenizer *tok = NULL;
    oc_status s = oc_tokenizer_load(path, &tok);
    fz_check_error(s, "oc_tokenizer_load");
    if (s != OC_OK)
        return 0;
    size_t V = oc_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int special = 0; special < 2; special++) {
            int32_t *ids = NULL;
            size_t n = 0;
            s = oc_tokenize(tok, texts[i], strlen(texts[i]), special, &ids, &n);
            fz_check_error(s, "oc_tokenize");
            if (s != OC_OK)
                continue;
            char *text = NULL;
            s = oc_detokenize(tok, ids, n, special, &text);
            fz_check_error(s, "oc_detokenize");
            if (s == OC_OK)
                oc_free(text);
            oc_free(ids);
        }
    }
    int32_t some[8] = {0, 1, 2, (int32_t)V - 1, (int32_t)V, -1, 100000, 3};
    char *text = NULL;
    s = oc_detokenize(tok, some, 8, 1, &text);
    fz_check_error(s, "oc_detokenize");
    if (s == OC_OK)
        oc_free(text);
    for (int i = 0; i < 8; i++) {
        const char *p = oc_token_piece(tok, some[i]);
        if (p)
            (void)strlen(p);
    }
    oc_tok_id(tok, "<image>");
    oc_tok_bos(tok);
    oc_tokenizer_free(tok);
    return 0;
}
