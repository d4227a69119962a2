/* Byte-level BPE training (oc_bpe_train in ocellus.h) and the tokenizer.json it writes.
 *
 * The algorithm is Hugging Face tokenizers' BpeTrainer with a ByteLevel pre-tokenizer, so
 * that the same corpus gives the same merges:
 *  - each line of each file (line ending included) is split on the special tokens, the
 *    rest by the GPT-2 regex; each piece's bytes become GPT-2's printable characters;
 *  - ids: the special tokens in order, then all 256 byte characters sorted by code
 *    point, then one id per merge (a merge whose string already exists reuses its id);
 *  - each step merges the pair of adjacent symbols with the highest count over the words
 *    (a word counts as often as it occurs), ties going to the pair with the smallest
 *    (left id, right id); a word's occurrences are merged left to right. Training stops
 *    at the vocabulary size, or when the best count is below min_frequency. */
#ifndef OC_BPE_TRAIN_H
#define OC_BPE_TRAIN_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"

typedef struct {
    char **tokens;        /* id -> UTF-8 piece (GPT-2 byte characters, or a special token) */
    size_t n_tokens;
    size_t n_special;     /* ids 0 .. n_special - 1 */
    int32_t (*merges)[2]; /* in order: left id, right id */
    size_t n_merges;
} oc_bpe_vocab;

void oc_bpe_vocab_free(oc_bpe_vocab *v);

/* GPT-2's map from bytes to printable characters (code points). */
uint32_t oc_bpe_byte_char(uint8_t b);

/* Trains from text already in memory: texts[i] of lens[i] bytes, names[i] for errors. */
oc_status oc_bpe_train_texts(const char *const *texts, const size_t *lens,
                             const char *const *names, size_t n,
                             const oc_bpe_train_params *p, oc_bpe_vocab *out);

/* The tokenizer.json text of a trained vocabulary, laid out as tokenizers writes it
 * (2-space indentation, vocab by id, merges as pairs). *json: free with oc_free. */
oc_status oc_bpe_to_json(const oc_bpe_vocab *v, char **json, size_t *len);
#endif
