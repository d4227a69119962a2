/* A model folder's settings: config.json (family, vision tower, projector, text model)
 * and generation_config.json. Read once at load; every value checked. */
#ifndef OC_CONFIG_H
#define OC_CONFIG_H
#include <stdint.h>

#include "json.h"
#include "llama.h"
#include "qwen_vit.h"
#include "vit.h"

typedef enum {
    OC_FAMILY_SMOLVLM = 0,
    OC_FAMILY_LLAVA = 1,
    OC_FAMILY_QWEN25VL = 2, /* qwen2_5_vl: windowed ViT + patch merger + Qwen2 with M-RoPE */
    OC_FAMILY_GEMMA3 = 3,   /* gemma3: SigLIP + average pool projector + Gemma 3 */
} oc_family;

#define OC_MAX_EOS 8

typedef struct {
    oc_family family;
    oc_vit_config vision;
    oc_llama_config text;
    int32_t image_token_id;     /* image_token_id / image_token_index */
    uint32_t scale_factor;      /* SmolVLM pixel shuffle */
    /* LLaVA */
    int32_t vision_feature_layer;  /* e.g. -2 */
    int feature_keep_cls;          /* vision_feature_select_strategy "full" */
    oc_act projector_act;
    /* generation_config.json (falls back to config.json) */
    int32_t eos[OC_MAX_EOS];
    uint32_t n_eos;
    int32_t bos_id, pad_id;
    /* Qwen2.5-VL (config_families.c): its vision tower (vision stays unused) and the
     * tokens around an image; the chat template's default system message */
    oc_qvit_config qvit;
    int32_t vision_start_id, vision_end_id;
    int default_system;
    /* Gemma 3: image tokens per image (and per pan-and-scan crop), and the tokens around
     * them */
    uint32_t mm_tokens;
    int32_t boi_id, eoi_id;
} oc_model_config;

/* Tokens one image tile becomes in the text stream (Qwen2.5-VL: 0, images have their own
 * sizes: oc_image_tokens in prompt.h). */
static inline uint32_t oc_config_image_seq(const oc_model_config *c) {
    if (c->family == OC_FAMILY_GEMMA3)
        return c->mm_tokens;
    if (c->family == OC_FAMILY_QWEN25VL)
        return 0;
    uint32_t g = oc_vit_grid(&c->vision);
    if (c->family == OC_FAMILY_SMOLVLM)
        return g * g / (c->scale_factor * c->scale_factor);
    return g * g + (uint32_t)c->feature_keep_cls;
}

/* The same from parsed config.json and generation_config.json (NULL: none) objects
 * (GGUF models build them from their metadata); file names them in errors. */
oc_status oc_config_from_json(const cJSON *config, const cJSON *generation, const char *file,
                              oc_model_config *out);
/* Reads dir/config.json and dir/generation_config.json (optional). */
oc_status oc_config_load(const char *dir, oc_model_config *out);

/* Shared readers (config.c): an activation name; eos_token_id (a number or a list) into
 * c->eos; the checkpoint's dtype ("dtype" / "torch_dtype") into *out when given. */
oc_status oc_config_act(const cJSON *obj, const char *key, const char *def, const char *file,
                        oc_act *out);
oc_status oc_config_eos(const cJSON *j, const char *file, oc_model_config *c);
oc_status oc_config_dtype(const cJSON *j, const char *file, oc_dtype *out);

/* The families of config_families.c: config.json (j) into c, family already set. */
oc_status oc_config_parse_qwen25vl(const cJSON *j, const char *file, oc_model_config *c);
oc_status oc_config_parse_gemma3(const cJSON *j, const char *file, oc_model_config *c);
/* Settings of a family read from the folder's other files (Qwen2.5-VL: whether its chat
 * template adds a default system message). */
oc_status oc_config_load_extras(const char *dir, oc_model_config *c);
/* The family name as config.json spells it ("qwen2_5_vl"). */
const char *oc_family_name(oc_family f);
/* OC_OK for families ocellus can train (not Qwen2.5-VL, Gemma 3); else OC_ERR_UNSUPPORTED with a sentence naming
 * the family and what runs it (where: the folder, for the message). */
oc_status oc_config_check_trainable(const oc_model_config *c, const char *where);
#endif
