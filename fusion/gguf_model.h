/* A GGUF model: llama.cpp's text GGUF + mmproj GGUF pair, presented as what a Hugging Face
 * folder holds (config.json, preprocessor_config.json, tokenizer.json and tensors under
 * transformers' names), so that model.c loads it through the same checks. */
#ifndef OC_GGUF_MODEL_H
#define OC_GGUF_MODEL_H
#include "gguf.h"
#include "json.h"
#include "ocellus.h"
#include "safetensors.h"

typedef struct oc_gguf_model oc_gguf_model;

/* 1 if path is a GGUF file, or a folder with a .gguf file and no config.json. */
int oc_gguf_model_is(const char *path);

/* Opens the pair: path is the text GGUF (then mmproj, or the one mmproj GGUF beside it)
 * or a folder holding one text GGUF and one mmproj GGUF; mmproj may be NULL. Tensors in
 * F32, F16, BF16 and Q8_0 are used in place (Q/K rows, stored permuted for llama.cpp's
 * RoPE, are put back in transformers' order in a copy); other types are converted at
 * load: to Q8_0 when weights is AUTO or Q8_0 (the nearest format with a kernel), else to
 * F32 (which BF16 then rounds). */
oc_status oc_gguf_model_open(const char *path, const char *mmproj, oc_weight_format weights,
                             oc_gguf_model **out);
void oc_gguf_model_close(oc_gguf_model *g);

const char *oc_gguf_model_path(const oc_gguf_model *g);         /* the text GGUF */
const oc_gguf *oc_gguf_model_text(const oc_gguf_model *g);
const cJSON *oc_gguf_model_config(const oc_gguf_model *g);      /* as config.json */
const cJSON *oc_gguf_model_processor(const oc_gguf_model *g);   /* as preprocessor_config */
/* A tensor by its transformers name (the first prefix of each family's list in model.c). */
const oc_st_tensor *oc_gguf_model_find(const oc_gguf_model *g, const char *name);
#endif
