/* A model folder's settings: config.json (family, vision tower, projector, text model)
 * and generation_config.json. Read once at load; every value checked. */
#ifndef OC_CONFIG_H
#define OC_CONFIG_H
#include <stdint.h>

#include "json.h"
#include "llama.h"
#include "vit.h"

typedef enum { OC_FAMILY_SMOLVLM = 0, OC_FAMILY_LLAVA = 1 } oc_family;

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
} oc_model_config;

/* Tokens one image tile becomes in the text stream. */
static inline uint32_t oc_config_image_seq(const oc_model_config *c) {
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
#endif
