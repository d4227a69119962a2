/* Fine-tuning datasets: JSONL files of conversations (LLaVA's "conversations" or Hugging
 * Face's "messages") or of pre-tokenized examples, turned into oc_train_example (token ids,
 * labels, preprocessed pixels) for the model being trained. The public functions are in
 * ocellus.h (oc_dataset_*).
 *
 * Line formats (one JSON object per line; blank lines are skipped):
 *
 *  LLaVA:    {"image": "a.png" | "images": ["a.png", ...],
 *             "conversations": [{"from": "human", "value": "<image>\nWhat is this?"},
 *                               {"from": "gpt", "value": "A cat."}, ...]}
 *            "human"/"user" and "gpt"/"assistant". Each "<image>" in a human turn marks one
 *            image, in order; as LLaVA's own training code does, the markers are removed
 *            and the turn's images placed at its start. With no marker anywhere, all
 *            images go to the start of the first human turn.
 *  messages: {"messages": [{"role": "user", "content": [{"type": "image"},
 *                                                     {"type": "text", "text": "..."}]},
 *                          {"role": "assistant", "content": "..." | [parts]}],
 *             "images": ["a.png", ...]}
 *            {"type": "image"} takes the next of "images" (or its own "image"/"path"
 *            string); a turn's images go to its start, its texts are concatenated.
 *  tokens:   {"input_ids": [...], "labels": [...], "images": [...] (optional),
 *             "pixel_values": "FILE.safetensors:TENSOR" (optional, [tiles, 3, S, S])}
 *            labels -100 are ignored; pixel_values, when given, replace preprocessing
 *            of "images" (to reproduce a PyTorch run exactly).
 *
 * Paths are relative to the JSONL file's folder. Conversations are encoded with the
 * model's chat format (oc_prompt_encode): labels are -100 except on the assistant's text
 * and end-of-turn token. Every error names the file and line ("data.jsonl:17: ..."). */
#ifndef OC_DATASET_H
#define OC_DATASET_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ocellus.h"
#include "preprocess.h"
#include "prompt.h"

/* What encoding needs from the model: its settings, tokenizer and image processor. */
typedef struct {
    oc_model_config cfg;
    oc_tokenizer *tok;
    oc_idefics3_proc smol; /* family SmolVLM */
    oc_clip_proc clip;     /* family LLaVA */
} oc_data_model;

/* Reads config.json, tokenizer.json and preprocessor_config.json (or processor_config.json)
 * of a model folder; no weights. */
oc_status oc_data_model_load(const char *dir, oc_data_model *out);
void oc_data_model_free(oc_data_model *m);

typedef enum { OC_DATA_CHAT = 0, OC_DATA_TOKENS = 1 } oc_data_kind;

/* One line, parsed and checked for shape (not yet against a model). */
typedef struct {
    oc_data_kind kind;
    /* chat: turns[i].text points into texts[i] */
    oc_turn *turns;
    char **texts;
    size_t n_turns;
    /* images, resolved against the file's folder, in prompt order */
    char **images;
    size_t n_images;
    /* tokens */
    int32_t *ids, *labels;
    size_t n_ids;
    char *pv_file, *pv_tensor; /* pixel_values, or NULL */
} oc_data_line;

typedef struct {
    uint32_t max_images;   /* per example */
    size_t max_tokens;     /* pre-tokenized examples: length limit */
} oc_data_line_limits;

/* Parses text[0..len) of line `line` of `file` (base_dir: the file's folder). Errors are
 * OC_ERR_FORMAT or OC_ERR_LIMIT with "file:line: ..."; images are not opened here. */
oc_status oc_data_line_parse(const char *text, size_t len, const char *file, size_t line,
                             const char *base_dir, const oc_data_line_limits *limits,
                             oc_data_line *out);
void oc_data_line_free(oc_data_line *l);

/* An encoded example and the memory behind it. */
typedef struct {
    int32_t *ids, *labels;
    size_t n;
    float *pixels;
    uint32_t n_tiles;
    size_t n_images;
} oc_data_encoded;

void oc_data_encoded_free(oc_data_encoded *e); /* the arrays; NULL allowed */
/* A parsed conversation line (kind OC_DATA_CHAT) encoded for m: its images decoded and
 * preprocessed (p's limits and tiles), the chat laid out and tokenized, labels on the
 * assistant's tokens. On failure e holds what was allocated: free it. */
oc_status oc_data_encode_chat(const oc_data_model *m, const oc_dataset_params *p,
                              const oc_data_line *l, oc_data_encoded *e);
#endif
