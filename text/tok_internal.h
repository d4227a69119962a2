/* Internals shared by the tokenizer files (text/tok_*.c, text/tokenizer.c).
 *
 * The pipeline follows Hugging Face tokenizers:
 *   text -> added tokens (non-normalized) split off -> normalizer on each remaining piece
 *        -> added tokens (normalized) split off -> pre-tokenizer -> BPE per pre-token
 *        -> post-processor (special tokens) -> ids
 *   ids -> pieces -> decoder chain -> text
 * Only ids matter here, so strings carry no offset alignments. */
#ifndef OC_TOK_INTERNAL_H
#define OC_TOK_INTERNAL_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"
#include "ocellus.h"

/* ---- growable arrays (tok_util.c) ----------------------------------------------- */

typedef struct {
    char *data; /* len bytes, not NUL-terminated unless oc_buf_cstr was called */
    size_t len, cap;
} oc_buf;

oc_status oc_buf_reserve(oc_buf *b, size_t extra);
oc_status oc_buf_append(oc_buf *b, const void *p, size_t n);
oc_status oc_buf_append_cp(oc_buf *b, uint32_t cp);
/* Adds a NUL after the data (not counted in len). */
oc_status oc_buf_cstr(oc_buf *b);
void oc_buf_free(oc_buf *b);

typedef struct {
    int32_t *v;
    size_t n, cap;
} oc_ids;

oc_status oc_ids_push(oc_ids *ids, int32_t id);
oc_status oc_ids_append(oc_ids *ids, const int32_t *v, size_t n);
void oc_ids_free(oc_ids *ids);

/* Match positions: pairs (start, end) of byte offsets, in order, not overlapping. */
typedef struct {
    size_t *v; /* 2 * n */
    size_t n, cap;
} oc_spans;

oc_status oc_spans_push(oc_spans *s, size_t start, size_t end);
void oc_spans_free(oc_spans *s);

/* A list of strings in one buffer: the pieces a pre-tokenizer produces, or the token
 * strings a decoder works on. A piece with id >= 0 is an added token already resolved:
 * later stages pass it through unchanged. */
typedef struct {
    size_t off, len; /* bytes in text */
    int32_t id;      /* -1: plain text */
    uint8_t first;   /* begins at offset 0 of the input (Metaspace prepend_scheme "first") */
} oc_piece;

typedef struct {
    oc_buf text;
    oc_piece *v;
    size_t n, cap;
} oc_pieces;

/* Appends a copy of p[0..n) (p must not point into l's own buffer). */
oc_status oc_pieces_push(oc_pieces *l, const char *p, size_t n, int32_t id, int first);
/* Appends an empty piece whose text the caller then appends to l->text. */
oc_status oc_pieces_open(oc_pieces *l, int32_t id, int first);
/* Ends the piece opened last: its length is what was appended since. */
void oc_pieces_close(oc_pieces *l);
void oc_pieces_clear(oc_pieces *l);
void oc_pieces_free(oc_pieces *l);
static inline const char *oc_piece_str(const oc_pieces *l, size_t i) {
    /* text.data is NULL while every piece is empty (NULL + 0 is undefined behaviour) */
    return l->text.data ? l->text.data + l->v[i].off : "";
}

/* ---- UTF-8 and Unicode classes (tok_unicode.c) ---------------------------------- */

/* The offset of the first byte that is not valid UTF-8 (as Rust's str: no surrogates,
 * no overlong forms, at most U+10FFFF), or n when all of s is valid. */
size_t oc_utf8_check(const char *s, size_t n);
/* Decodes the character at s (valid UTF-8, n >= 1 bytes left); returns its length. */
size_t oc_utf8_next(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes); returns the length. */
size_t oc_utf8_put(uint32_t cp, char *out);
/* Appends bytes to out, replacing invalid sequences with U+FFFD as Rust's
 * String::from_utf8_lossy does (one per maximal invalid subpart). */
oc_status oc_utf8_lossy(oc_buf *out, const unsigned char *s, size_t n);

int oc_uni_is_space(uint32_t cp);   /* White_Space (Rust char::is_whitespace, regex \s) */
int oc_uni_is_word(uint32_t cp);    /* Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control */
int oc_uni_is_numeric(uint32_t cp); /* Nd, Nl, No (Rust char::is_numeric) */
int oc_uni_is_punct(uint32_t cp);   /* ASCII punctuation or P* (tokenizers' is_punc) */
int oc_uni_is_other(uint32_t cp);   /* Cc, Cf, Cn, Co, Cs */
int oc_uni_is_mark(uint32_t cp);    /* Mn, Mc, Me */
int oc_uni_is_mark_nonspacing(uint32_t cp); /* Mn */
/* Lowercase as Rust's char::to_lowercase (full mapping); appends to out. */
oc_status oc_uni_lower(oc_buf *out, uint32_t cp);
/* Unicode normalisation of valid UTF-8 with utf8proc; form: "NFC", "NFD", "NFKC", "NFKD". */
oc_status oc_uni_normalize(oc_buf *out, const char *s, size_t n, const char *form);

/* GPT-2's byte <-> unicode map: a printable character for every byte. */
uint32_t oc_bytelevel_char(uint8_t b);
/* The byte a character stands for, or -1 if it is not in the map. */
int oc_bytelevel_byte(uint32_t cp);

/* ---- patterns: literal strings or PCRE2 regexes (tok_regex.c) -------------------- */

typedef struct oc_regex oc_regex;

typedef struct {
    char *literal;    /* a literal pattern (may be empty: matches nothing), or NULL */
    size_t literal_len;
    oc_regex *regex;  /* or a compiled regex */
} oc_pattern;

/* Compiles a regex written for Oniguruma (which tokenizers uses) with PCRE2 (UTF, UCP).
 * what names the pattern in errors ("tokenizer.json: pre_tokenizer Split regex"). */
oc_status oc_regex_compile(const char *pattern, const char *what, oc_regex **out);
void oc_regex_free(oc_regex *re);

/* Parses {"String": s} or {"Regex": r}. */
oc_status oc_pattern_parse(const cJSON *j, const char *what, oc_pattern *out);
void oc_pattern_free(oc_pattern *p);
/* All non-overlapping matches of p in s[0..n), leftmost first, appended to m. */
oc_status oc_pattern_find(const oc_pattern *p, const char *s, size_t n, oc_spans *m);

/* The same one match at a time, for long texts. */
typedef struct {
    const oc_pattern *p;
    const char *s;
    size_t n, pos, last_end;
    void *md; /* PCRE2 match data */
} oc_match_iter;

oc_status oc_match_begin(oc_match_iter *it, const oc_pattern *p, const char *s, size_t n);
/* 1 with the next match in [*start, *end); 0 when there are no more (or *st is set). */
int oc_match_next(oc_match_iter *it, size_t *start, size_t *end, oc_status *st);
void oc_match_end(oc_match_iter *it);

/* ---- normalizers (tok_normalize.c) ---------------------------------------------- */

typedef struct oc_normalizer oc_normalizer;
/* j may be JSON null (then *out = NULL). file names the file in errors. */
oc_status oc_normalizer_parse(const cJSON *j, const char *file, oc_normalizer **out);
void oc_normalizer_free(oc_normalizer *n);
/* Replaces out's contents with the normalized s[0..len). */
oc_status oc_normalize(const oc_normalizer *n, const char *s, size_t len, oc_buf *out);

/* ---- pre-tokenizers (tok_pretokenize.c) ----------------------------------------- */

typedef struct oc_pretok oc_pretok;
oc_status oc_pretok_parse(const cJSON *j, const char *file, oc_pretok **out);
void oc_pretok_free(oc_pretok *p);
/* Receives the pre-tokens in order: text (id < 0) for the model, or an added token. */
typedef oc_status (*oc_pretok_sink)(void *ctx, const char *s, size_t n, int32_t id);
/* Pre-tokenizes the pieces of in (added-token pieces pass through), streaming each
 * pre-token to sink as soon as it is complete. p may be NULL (no pre-tokenizer). */
oc_status oc_pretokenize(const oc_pretok *p, const oc_pieces *in, oc_pretok_sink sink,
                         void *ctx);

/* ---- BPE model (tok_bpe.c) ------------------------------------------------------- */

typedef struct oc_bpe oc_bpe;
oc_status oc_bpe_load(const cJSON *model, const char *file, oc_bpe **out);
void oc_bpe_free(oc_bpe *m);
/* Appends the ids of one pre-token. */
oc_status oc_bpe_encode(const oc_bpe *m, const char *s, size_t n, oc_ids *out);
int32_t oc_bpe_id(const oc_bpe *m, const char *s, size_t n); /* -1 if absent */
const char *oc_bpe_piece(const oc_bpe *m, int32_t id);       /* NULL if absent */
size_t oc_bpe_size(const oc_bpe *m);    /* number of vocabulary entries */
int32_t oc_bpe_max_id(const oc_bpe *m); /* -1 when empty */

/* ---- added tokens (tok_added.c) -------------------------------------------------- */

typedef struct {
    char *content;
    size_t len;
    char *normalized; /* content after the normalizer (normalized tokens), else NULL */
    size_t normalized_len;
    int32_t id;
    uint8_t single_word, lstrip, rstrip, is_normalized, special;
} oc_added_token;

typedef struct oc_added_vocab oc_added_vocab;
/* Reads the added_tokens array (may be absent/null) and assigns ids as tokenizers does:
 * the model's id for a known string, else the next free id. */
oc_status oc_added_load(const cJSON *arr, const char *file, const oc_bpe *model,
                        const oc_normalizer *norm, oc_added_vocab **out);
void oc_added_free(oc_added_vocab *av);
size_t oc_added_count(const oc_added_vocab *av);
const oc_added_token *oc_added_at(const oc_added_vocab *av, size_t i);
const oc_added_token *oc_added_by_id(const oc_added_vocab *av, int32_t id);
int32_t oc_added_id(const oc_added_vocab *av, const char *s, size_t n); /* -1 if absent */
int oc_added_is_special(const oc_added_vocab *av, const char *s, size_t n);
/* Splits s[0..n) on the added tokens of one set (normalized = 0: tokens matched on the
 * raw text, 1: on normalized text), as AddedVocabulary::find_matches: leftmost-longest
 * matches with single_word/lstrip/rstrip. Appends (start, end) spans to m and the id of
 * each span (-1 for text between tokens) to ids. */
oc_status oc_added_split(const oc_added_vocab *av, int normalized, const char *s, size_t n,
                         oc_spans *m, oc_ids *ids);
int oc_added_has(const oc_added_vocab *av, int normalized); /* any token in that set */

/* ---- post-processors (tok_post.c) ------------------------------------------------ */

typedef struct oc_post oc_post;
oc_status oc_post_parse(const cJSON *j, const char *file, oc_post **out);
void oc_post_free(oc_post *p);
/* Adds the special tokens of a single sequence around ids. */
oc_status oc_post_apply(const oc_post *p, oc_ids *ids);
/* The first id added before the sequence, or -1. */
int32_t oc_post_bos(const oc_post *p);
/* The largest id the post-processor adds (-1 if none), to check against the vocabulary. */
int32_t oc_post_max_id(const oc_post *p);

/* ---- decoders (tok_decode.c) ------------------------------------------------------ */

typedef struct oc_decoder oc_decoder;
oc_status oc_decoder_parse(const cJSON *j, const char *file, oc_decoder **out);
void oc_decoder_free(oc_decoder *d);
/* Runs the decoder chain on the token strings in *io (tmp is scratch); the caller joins
 * the resulting strings. */
oc_status oc_decode_chain(const oc_decoder *d, oc_pieces *io, oc_pieces *tmp);

/* ---- JSON helpers for the parsers (tok_util.c) ------------------------------------ */

/* The "type" string of a component, or an error naming file and what. */
oc_status oc_tok_type(const cJSON *j, const char *file, const char *what, const char **type);
/* A required/optional string member; errors name file, what and key. */
oc_status oc_tok_str(const cJSON *j, const char *key, int required, const char *file,
                     const char *what, const char **out);
oc_status oc_tok_bool(const cJSON *j, const char *key, int def, const char *file,
                      const char *what, int *out);
/* A member that must hold exactly one character (Metaspace replacement, Strip content). */
oc_status oc_tok_char(const cJSON *j, const char *key, const char *file, const char *what,
                      uint32_t *cp);
#endif
