/* tokenizer.json (Hugging Face tokenizers): normalizer, pre-tokenizer, BPE model,
 * added tokens, post-processor, decoder. The public functions are in ocellus.h
 * (oc_tokenizer_load, oc_tokenize, oc_detokenize, ...). */
#ifndef OC_TOKENIZER_H
#define OC_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "json.h"
#include "ocellus.h"

/* Loads from a tokenizer.json path; errors name the file. */
oc_status oc_tokenizer_load_file(const char *path, oc_tokenizer **out);
/* Builds a tokenizer from a parsed tokenizer.json (borrowed); name is used in errors. */
oc_status oc_tokenizer_from_json(const cJSON *root, const char *name, oc_tokenizer **out);
/* Builds the tokenizer stored in a GGUF text model's tokenizer.ggml.* keys (tok_gguf.c). */
oc_status oc_tokenizer_load_gguf(const oc_gguf *g, oc_tokenizer **out);
/* The id of a vocabulary or added token, or -1. */
int32_t oc_tok_id(const oc_tokenizer *tok, const char *piece);
/* Ids of the BOS/EOS tokens the post-processor adds, or -1. */
int32_t oc_tok_bos(const oc_tokenizer *tok);
/* 1 if id is a special added token (one that oc_detokenize drops unless keep_special). */
int oc_tok_is_special(const oc_tokenizer *tok, int32_t id);
#endif
