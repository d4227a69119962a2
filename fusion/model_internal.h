/* model.c's loading steps, for the table-driven loading of model_families.c, and the
 * tables themselves (one per family: loading and the random-model writer read them). */
#ifndef OC_MODEL_INTERNAL_H
#define OC_MODEL_INTERNAL_H
#include "model.h"
#include "output.h"

/* The first of prefixes + name that the weights hold (full: the name found, or the first
 * spelling when none is). */
const oc_st_tensor *oc_model_find_tensor(const oc_model *m, const char *const *prefixes,
                                         const char *name, char *full, size_t full_size);
/* "DIR: the weights have no tensor 'full'". */
oc_status oc_model_missing(const oc_model *m, const char *full);
/* F32, F16 or BF16, else OC_ERR_UNSUPPORTED. */
oc_status oc_model_check_float(const oc_st_tensor *t);
/* t (shape checked) as a (rows, cols) weight in the format the model's params ask for. */
oc_status oc_model_view(oc_model *m, const oc_st_tensor *t, int64_t rows, int64_t cols,
                        oc_weight *out);
/* An F32 copy of t owned by m, refused when it holds NaN or infinities. */
oc_status oc_model_f32_copy(oc_model *m, const oc_st_tensor *t, const float **out);
/* m frees p with itself (p is freed on failure). */
oc_status oc_model_own(oc_model *m, void *p);

/* ---- tensor tables ----------------------------------------------------------------- */

typedef enum { OC_PART_VISION, OC_PART_PROJ, OC_PART_TEXT, OC_PART_HEAD, OC_PARTS } oc_part;

/* Sizes a table's shapes name, resolved from the config (oc_family_dim). */
typedef enum {
    OC_D_END = 0,
    OC_D_C, OC_D_I, OC_D_V, OC_D_HD, OC_D_KVD, OC_D_HEAD, /* text */
    OC_D_VC, OC_D_VI, OC_D_V3C, OC_D_VCH, OC_D_VT, OC_D_VP, OC_D_VSEQ, OC_D_VMC, OC_D_VOUT,
} oc_dim;

typedef enum {
    OC_TK_MAT,   /* a matrix (or a conv kernel, viewed (dims[0], the rest)): oc_weight */
    OC_TK_VEC,   /* float values (position embeddings) */
    OC_TK_NORM,  /* a norm weight */
    OC_TK_GNORM, /* a Gemma norm weight w, held as 1 + w */
    OC_TK_BIAS,
} oc_tensor_kind;

typedef enum {
    OC_TX_NONE,
    OC_TX_SPLIT3,    /* rows in thirds to three consecutive fields (a fused qkv) */
    OC_TX_TRANSPOSE, /* stored (in, out): held transposed as an F32 (out, in) weight */
} oc_tensor_xform;

typedef enum {
    OC_TB_MODEL,       /* oc_model */
    OC_TB_VIT,         /* oc_vit_weights / oc_vit_layer */
    OC_TB_VIT_LAYER,
    OC_TB_QVIT,        /* oc_qvit_weights / oc_qvit_block */
    OC_TB_QVIT_BLOCK,
    OC_TB_LLM,         /* oc_llama_weights / oc_llama_layer */
    OC_TB_LLM_LAYER,
} oc_tensor_base;

typedef enum {
    OC_TO_REQUIRED,
    OC_TO_ATTN_BIAS, /* present exactly when the config says attention_bias */
    OC_TO_UNTIED,    /* the output head: absent when tied to the embeddings */
} oc_tensor_opt;

typedef struct {
    const char *name;   /* after the part's prefix; "%u" is the layer */
    uint8_t part, base, kind, xform, opt;
    uint8_t dims[5];    /* oc_dim, OC_D_END-terminated */
    size_t off;         /* of the field in its base struct */
} oc_tensor_spec;

/* A family's table ((*n) entries) and its tensor-name prefixes by part, the published
 * checkpoints' spelling first (the one the random-model writer uses); NULL for families
 * with hand-written loaders. */
const oc_tensor_spec *oc_family_tensors(oc_family f, size_t *n);
const char *const *oc_family_prefixes(oc_family f, oc_part part);
/* The value of a size in c; the layer count of a spec (1 for global tensors). */
int64_t oc_family_dim(const oc_model_config *c, oc_dim d);
uint32_t oc_family_spec_layers(const oc_model_config *c, const oc_tensor_spec *s);

/* Loads the weights of a table-driven family into m. */
oc_status oc_model_load_family_weights(oc_model *m);

/* ---- random models (random_model.c, random_families.c) ------------------------------ */

/* tokenizer.json: byte-level BPE, the special tokens first (ids 0..), no merges. */
cJSON *oc_random_tokenizer_json(const char *const *special, int n_fixed, int n_rowcol);
/* name = j (consumed) in the new folder d. */
oc_status oc_random_write_json(oc_out_dir *d, const char *name, cJSON *j);
/* Whether name is a preset of random_families.c, and its writer. */
int oc_random_family_preset(const char *name);
oc_status oc_write_random_family_model(const char *preset, const char *dtype, uint64_t seed,
                                       const char *out_dir);
/* dir/model.safetensors (replaced atomically) with random weights (uniform, std
 * 1/sqrt(fan in); norms near 1, Gemma's near 0; biases small) in dtype for the config of
 * dir/config.json, through the family's tensor table and its published spelling;
 * streamed, nothing held in memory. */
oc_status oc_write_random_family_weights(const char *dir, oc_dtype dtype, uint64_t seed);
#endif
