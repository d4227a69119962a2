/* The n-grams (n = 1..4) of a tokenized sentence with their counts, in the order the COCO
 * caption code's precook() meets them (all unigrams by first occurrence, then bigrams,
 * ...): CIDEr-D sums in that order. */
#ifndef OC_NGRAMS_H
#define OC_NGRAMS_H
#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"

#define OC_NGRAM_MAX 4

typedef struct {
    char *key;       /* the words joined by single spaces */
    uint8_t n;       /* 1..OC_NGRAM_MAX */
    uint32_t count;
} oc_ngram;

typedef struct {
    oc_ngram *v;     /* (n_grams) distinct n-grams */
    size_t n_grams;
    size_t words;    /* the sentence's length */
    oc_strmap index; /* key -> position in v */
} oc_ngrams;

/* sentence: words separated by whitespace (Python's split()). */
oc_status oc_ngrams_build(const char *sentence, oc_ngrams *out);
/* Count of key in g (0 if absent). */
uint32_t oc_ngrams_count(const oc_ngrams *g, const char *key);
void oc_ngrams_free(oc_ngrams *g);

/* Corpus BLEU-1..4 as pycocoevalcap's BleuScorer.compute_score(option='closest'). */
void oc_bleu_corpus(const oc_ngrams *cands, const oc_ngrams *const *refs, const size_t *n_refs,
                    size_t n, double bleu[4]);
/* CIDEr-D per image (n values) as pycocoevalcap's CiderScorer (sigma 6, x10), with
 * document frequencies from these references; *mean = their numpy mean. */
oc_status oc_cider_d(const oc_ngrams *cands, const oc_ngrams *const *refs,
                     const size_t *n_refs, size_t n, double *per_image, double *mean);
/* numpy's float64 add.reduce (the first element plus the pairwise sum of the rest). */
double oc_np_sum(const double *a, size_t n);
#endif
