/* A loaded model: settings, tokenizer, image processor and weight views. Immutable after
 * load, so one model serves many sessions and threads. */
#ifndef OC_MODEL_H
#define OC_MODEL_H
#include "config.h"
#include "gguf_model.h"
#include "llama.h"
#include "ocellus.h"
#include "preprocess.h"
#include "qwen_vit.h"
#include "safetensors.h"
#include "tuner.h"
#include "vit.h"

struct oc_model {
    char *dir;
    oc_model_config cfg;
    oc_model_params params;
    oc_st_set *tensors;        /* mapped weight files (a Hugging Face folder) */
    oc_gguf_model *gguf;       /* or a GGUF text model + mmproj */
    oc_tokenizer *tok;
    oc_idefics3_proc smol_proc; /* family SmolVLM */
    oc_clip_proc clip_proc;     /* family LLaVA */
    oc_vit_weights vit;
    oc_llama_weights llm;
    /* SmolVLM connector: (C_text, C_vision * scale^2), no bias */
    oc_weight proj;
    /* LLaVA projector: linear_1 (C_text, C_vision) + act + linear_2 (C_text, C_text) */
    oc_weight mm1, mm2;
    const float *mm1_b, *mm2_b;
    /* Qwen2.5-VL: processor and vision tower (patch merger included) */
    oc_qwen_proc qwen_proc;
    oc_qvit_weights qvit;
    /* Gemma 3: processor; projector: mm_soft_emb_norm (C_vision, held as 1 + w) and
     * mm_input_projection_weight transposed to (C_text, C_vision) */
    oc_gemma_proc gemma_proc;
    const float *gemma_norm;
    oc_weight gemma_proj;
    uint32_t context;          /* positions a session may use */
    /* one thread or the pool, by measured speed, for its sessions (a hint shared by
     * them), one per kind of call (OC_TUNE_*) */
    oc_tuner *tuners;
    int loading_vision;        /* while loading: the weights are the vision tower's or the
                                  projector's (they stay BF16 when the text model is Q8_0) */
    void **owned;              /* copies made at load (F32 vectors, converted weights) */
    size_t n_owned, cap_owned;
    char desc[256];
};

/* Kinds of calls a model's tuners keep apart: prefill chunks below OC_TUNE_LONG tokens
 * are far less efficient per FLOP than long ones. */
enum { OC_TUNE_IMAGE, OC_TUNE_PREFILL_SHORT, OC_TUNE_PREFILL, OC_TUNE_DECODE, OC_TUNE_KINDS };
#define OC_TUNE_LONG 64

/* Image features of one image: feats (n_tokens, C_text), the rows of the image tokens
 * in order. layout receives the tiling (SmolVLM). pixels_override (optional):
 * preprocessed pixel values (n_tiles, 3, S, S) to use instead of the processor's. */
typedef struct {
    float *feats;
    uint32_t n_tokens;
    uint32_t n_tiles;
    uint32_t rows, cols;
} oc_image_feats;

/* Preprocesses an image: pixels (n_tiles, 3, S, S), free with oc_free. Qwen2.5-VL: one
 * "tile" of (rows * cols, patch values) patches, rows x cols the patch grid. Gemma 3:
 * n_tiles = 1 + rows * cols pan-and-scan crops. */
oc_status oc_model_preprocess(const oc_model *m, const oc_image *img, float **pixels,
                              uint32_t *n_tiles, uint32_t *rows, uint32_t *cols);
/* Floats of pixel values of one image of n_tiles tiles with that grid (oc_model_preprocess's
 * outputs). */
size_t oc_model_pixel_count(const oc_model *m, uint32_t n_tiles, uint32_t rows, uint32_t cols);
/* A progress callback and its user data (either may be NULL). */
typedef struct {
    oc_progress_fn fn;
    void *user_data;
} oc_progress;

/* Calls the callback; OC_ERR_CANCELLED when it asks to stop. */
oc_status oc_progress_report(const oc_progress *p, oc_progress_stage stage, uint64_t done,
                             uint64_t total);

/* Encodes preprocessed pixels into text-space features.
 * feats (n_tiles * image_seq, C_text); vision_out (optional): (n_tiles, seq, C_vision)
 * of the vision tower output used (SmolVLM, Gemma 3: post-layernorm; LLaVA: selected
 * layer). Not for Qwen2.5-VL, whose images have their own sizes: oc_model_encode_image. */
oc_status oc_model_encode_pixels(oc_exec *ex, const oc_model *m, const float *pixels,
                                 uint32_t n_tiles, float *feats, float *vision_out,
                                 const oc_progress *progress);
/* Gemma 3's projector on one tile: vis (seq, C_vision) the tower's output (scratch, kept),
 * feats (mm_tokens, C_text), tmp (mm_tokens, C_vision) scratch. */
oc_status oc_gemma_project_tile(oc_exec *ex, const oc_model *m, const float *pixels,
                                float *vis, float *feats, float *tmp);
/* One image of any family, as oc_model_preprocess gave it (n_tiles, rows, cols):
 * feats (image tokens, C_text); vision_out as above (NULL for Qwen2.5-VL). */
oc_status oc_model_encode_image(oc_exec *ex, const oc_model *m, const float *pixels,
                                uint32_t n_tiles, uint32_t rows, uint32_t cols, float *feats,
                                float *vision_out, const oc_progress *progress);
#endif
