/* config.json of the Qwen2.5-VL and Gemma 3 families, in both layouts checkpoints use:
 * transformers 4's (Qwen2.5-VL's text settings at the top level, "rope_scaling",
 * Gemma 3's "rope_local_base_freq" and "sliding_window_pattern") and transformers 5's
 * ("text_config", "rope_parameters" per layer type, "layer_types"). Missing keys take the
 * defaults of transformers' config classes; every value is checked against the others
 * before anything is allocated from it. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "error.h"
#include "file.h"

#define U32(obj, key, def, lo, hi, dst)                                             \
    do {                                                                           \
        int64_t v_;                                                                \
        OC_TRY(oc_json_int(obj, key, 0, def, lo, hi, file, &v_));                  \
        (dst) = (uint32_t)v_;                                                      \
    } while (0)

/* A token id within the vocabulary. */
static oc_status token_id(const cJSON *j, const char *key, int64_t def, uint32_t vocab,
                          const char *file, int32_t *out) {
    int64_t v;
    OC_TRY(oc_json_int(j, key, 0, def, 0, (int64_t)vocab - 1, file, &v));
    *out = (int32_t)v;
    return OC_OK;
}

/* A positive number (a RoPE theta or factor) from obj[key]. */
static oc_status positive(const cJSON *obj, const char *key, double def, double min,
                          const char *file, float *out) {
    double v;
    OC_TRY(oc_json_num(obj, key, 0, def, file, &v));
    if (!(v >= min) || !isfinite(v))
        return oc_err(OC_ERR_FORMAT, "%s: %s %g must be a finite number of at least %g", file,
                      key, v, min);
    *out = (float)v;
    return OC_OK;
}

/* layer_types (a list of "full_attention" / "sliding_attention", one per layer) into
 * sliding[]; 0 when absent. */
static oc_status layer_types(const cJSON *t, uint32_t layers, const char *file,
                             uint8_t *sliding, int *given) {
    const cJSON *lt = oc_json_get(t, "layer_types");
    *given = 0;
    if (!lt || cJSON_IsNull(lt))
        return OC_OK;
    if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != (int)layers)
        return oc_err(OC_ERR_FORMAT, "%s: layer_types must be a list of %u layer types "
                      "(num_hidden_layers)", file, layers);
    uint32_t l = 0;
    for (const cJSON *x = lt->child; x; x = x->next, l++) {
        if (cJSON_IsString(x) && !strcmp(x->valuestring, "full_attention"))
            sliding[l] = 0;
        else if (cJSON_IsString(x) && !strcmp(x->valuestring, "sliding_attention"))
            sliding[l] = 1;
        else
            return oc_err(OC_ERR_UNSUPPORTED, "%s: layer_types[%u] must be \"full_attention\" "
                          "or \"sliding_attention\"", file, l);
    }
    *given = 1;
    return OC_OK;
}

/* The decoder sizes both families share. */
static oc_status text_sizes(const cJSON *t, const char *file, oc_llama_config *c,
                            uint32_t def_hidden, uint32_t def_layers, uint32_t def_heads,
                            uint32_t def_kv, uint32_t def_inter, uint32_t def_vocab,
                            uint32_t def_pos, double def_eps) {
    U32(t, "hidden_size", def_hidden, 1, 1 << 16, c->hidden);
    U32(t, "num_hidden_layers", def_layers, 1, OC_MAX_LAYERS, c->layers);
    U32(t, "num_attention_heads", def_heads, 1, 1024, c->heads);
    U32(t, "num_key_value_heads", def_kv, 1, 1024, c->kv_heads);
    U32(t, "intermediate_size", def_inter, 1, 1 << 20, c->intermediate);
    U32(t, "vocab_size", def_vocab, 1, 1 << 24, c->vocab);
    U32(t, "max_position_embeddings", def_pos, 1, 1 << 24, c->max_pos);
    double eps;
    OC_TRY(oc_json_num(t, "rms_norm_eps", 0, def_eps, file, &eps));
    if (!(eps > 0 && eps < 1))
        return oc_err(OC_ERR_FORMAT, "%s: rms_norm_eps %g must be in (0, 1)", file, eps);
    c->rms_eps = (float)eps;
    if (c->heads % c->kv_heads)
        return oc_err(OC_ERR_FORMAT, "%s: num_attention_heads %u is not a multiple of "
                      "num_key_value_heads %u", file, c->heads, c->kv_heads);
    return OC_OK;
}

/* A RoPE description: {"rope_type": "default"|"linear"|"mrope", "rope_theta", "factor",
 * "mrope_section"}; "type" is the older spelling of rope_type. theta may be absent (the
 * caller's default stays). */
static oc_status rope_object(const cJSON *rp, const char *file, const char *what, float *theta,
                             float *factor, const cJSON **mrope) {
    if (!rp || cJSON_IsNull(rp))
        return OC_OK;
    if (!cJSON_IsObject(rp))
        return oc_err(OC_ERR_FORMAT, "%s: %s must be an object", file, what);
    const char *rt = NULL, *ty = NULL;
    OC_TRY(oc_json_str(rp, "rope_type", 0, file, &rt));
    OC_TRY(oc_json_str(rp, "type", 0, file, &ty));
    if (!rt)
        rt = ty;
    if (oc_json_get(rp, "rope_theta"))
        OC_TRY(positive(rp, "rope_theta", 0, 1.0000001, file, theta));
    if (mrope)
        *mrope = oc_json_get(rp, "mrope_section");
    if (rt && !strcmp(rt, "mrope")) /* transformers 4: M-RoPE as a "scaling" type */
        rt = "default";
    if (!rt || !strcmp(rt, "default")) {
        *factor = 1.0f;
        return OC_OK;
    }
    if (!strcmp(rt, "linear"))
        return positive(rp, "factor", 1.0, 1.0, file, factor);
    return oc_err(OC_ERR_UNSUPPORTED, "%s: %s rope_type \"%s\" is not supported (default, "
                  "linear)", file, what, rt);
}

/* ---- Qwen2.5-VL ------------------------------------------------------------------- */

static oc_status qwen_vision(const cJSON *v, const char *file, oc_qvit_config *c) {
    if (!cJSON_IsObject(v))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"vision_config\" object", file);
    /* Qwen2_5_VLVisionConfig's defaults */
    U32(v, "depth", 32, 1, OC_QVIT_MAX_DEPTH, c->depth);
    U32(v, "hidden_size", 3584, 1, 1 << 16, c->hidden);
    U32(v, "num_heads", 16, 1, 1024, c->heads);
    U32(v, "intermediate_size", 3420, 1, 1 << 20, c->intermediate);
    U32(v, "patch_size", 14, 1, 1024, c->patch);
    U32(v, "temporal_patch_size", 2, 1, 16, c->temporal);
    U32(v, "spatial_merge_size", 2, 1, 64, c->merge);
    U32(v, "window_size", 112, 1, 1 << 16, c->window);
    U32(v, "out_hidden_size", 3584, 1, 1 << 16, c->out_hidden);
    const char *ck = oc_json_get(v, "in_channels") ? "in_channels" : "in_chans";
    U32(v, ck, 3, 3, 3, c->channels);
    OC_TRY(oc_config_act(v, "hidden_act", "silu", file, &c->act));
    /* transformers 5 names the 2D RoPE "axial"; older configs say nothing (theta 10000) */
    c->rope_theta = 10000.0f;
    const cJSON *rp = oc_json_get(v, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        const char *rt = NULL;
        if (!cJSON_IsObject(rp))
            return oc_err(OC_ERR_FORMAT, "%s: vision rope_parameters must be an object", file);
        OC_TRY(oc_json_str(rp, "rope_type", 0, file, &rt));
        if (rt && strcmp(rt, "axial") && strcmp(rt, "default"))
            return oc_err(OC_ERR_UNSUPPORTED, "%s: vision rope_type \"%s\" is not supported "
                          "(axial)", file, rt);
        if (oc_json_get(rp, "rope_theta"))
            OC_TRY(positive(rp, "rope_theta", 0, 1.0000001, file, &c->rope_theta));
    }
    if (c->hidden % c->heads || (c->hidden / c->heads) % 4)
        return oc_err(OC_ERR_FORMAT, "%s: vision hidden_size %u over num_heads %u must give a "
                      "head size that is a multiple of 4 (2D RoPE)", file, c->hidden, c->heads);
    if (c->window / c->merge / c->patch == 0)
        return oc_err(OC_ERR_FORMAT, "%s: window_size %u is smaller than one merged patch "
                      "(%u x %u pixels)", file, c->window, c->merge, c->patch);
    memset(c->full, 0, sizeof c->full);
    const cJSON *fi = oc_json_get(v, "fullatt_block_indexes");
    static const uint32_t def_full[] = {7, 15, 23, 31};
    if (!fi || cJSON_IsNull(fi)) {
        for (size_t i = 0; i < 4; i++)
            if (def_full[i] < c->depth)
                c->full[def_full[i]] = 1;
    } else if (!cJSON_IsArray(fi)) {
        return oc_err(OC_ERR_FORMAT, "%s: fullatt_block_indexes must be a list", file);
    } else {
        for (const cJSON *x = fi->child; x; x = x->next) {
            if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
                !(x->valuedouble >= 0 && x->valuedouble < c->depth))
                return oc_err(OC_ERR_FORMAT, "%s: fullatt_block_indexes holds %g, not a block "
                              "index below depth %u", file, x->valuedouble, c->depth);
            c->full[(size_t)x->valuedouble] = 1;
        }
    }
    return OC_OK;
}

oc_status oc_config_parse_qwen25vl(const cJSON *j, const char *file, oc_model_config *c) {
    OC_TRY(qwen_vision(oc_json_get(j, "vision_config"), file, &c->qvit));
    /* transformers 4 checkpoints keep the text settings at the top level */
    const cJSON *tc = oc_json_get(j, "text_config");
    const cJSON *t = cJSON_IsObject(tc) ? tc : j;
    if (tc && !cJSON_IsNull(tc) && !cJSON_IsObject(tc))
        return oc_err(OC_ERR_FORMAT, "%s: \"text_config\" must be an object", file);
    oc_llama_config *x = &c->text;
    OC_TRY(text_sizes(t, file, x, 8192, 80, 64, 8, 29568, 152064, 32768, 1e-5));
    if (x->hidden % x->heads)
        return oc_err(OC_ERR_FORMAT, "%s: hidden_size %u is not a multiple of "
                      "num_attention_heads %u", file, x->hidden, x->heads);
    x->head_dim = x->hidden / x->heads;
    if (x->head_dim % 2 || x->head_dim > 4096)
        return oc_err(OC_ERR_FORMAT, "%s: head size %u must be even and at most 4096", file,
                      x->head_dim);
    oc_act act;
    OC_TRY(oc_config_act(t, "hidden_act", "silu", file, &act));
    if (act != OC_ACT_SILU)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: hidden_act must be silu", file);
    x->attn_bias = 1; /* q, k, v projections have biases, o_proj none (Qwen2) */
    x->rope_theta = 1000000.0f;
    x->rope_factor = 1.0f;
    if (oc_json_get(t, "rope_theta"))
        OC_TRY(positive(t, "rope_theta", 0, 1.0000001, file, &x->rope_theta));
    const cJSON *rp = oc_json_get(t, "rope_parameters");
    const cJSON *ms = NULL;
    OC_TRY(rope_object(cJSON_IsObject(rp) ? rp : oc_json_get(t, "rope_scaling"), file,
                       "rope_parameters", &x->rope_theta, &x->rope_factor, &ms));
    if (x->rope_factor != 1.0f)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: scaled RoPE is not supported with M-RoPE",
                      file);
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) != 3)
        return oc_err(OC_ERR_FORMAT, "%s: rope_parameters needs \"mrope_section\", 3 numbers "
                      "(temporal, height, width)", file);
    uint32_t sum = 0;
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(ms, i);
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 4096) ||
            e->valuedouble != floor(e->valuedouble))
            return oc_err(OC_ERR_FORMAT, "%s: mrope_section[%d] must be a count of "
                          "frequencies", file, i);
        x->mrope[i] = (uint32_t)e->valuedouble;
        sum += x->mrope[i];
    }
    if (sum != x->head_dim / 2)
        return oc_err(OC_ERR_FORMAT, "%s: mrope_section sums to %u; the head size %u has %u "
                      "frequencies", file, sum, x->head_dim, x->head_dim / 2);
    int given;
    OC_TRY(layer_types(t, x->layers, file, x->sliding, &given));
    if (!given) { /* Qwen2: sliding layers from max_window_layers on, when enabled */
        int use;
        uint32_t mwl;
        OC_TRY(oc_json_bool(t, "use_sliding_window", 0, file, &use));
        U32(t, "max_window_layers", 80, 0, 1 << 20, mwl);
        for (uint32_t l = 0; l < x->layers; l++)
            x->sliding[l] = use && l >= mwl;
    }
    int any = 0;
    for (uint32_t l = 0; l < x->layers; l++)
        any |= x->sliding[l];
    if (any) {
        U32(t, "sliding_window", 4096, 1, 1 << 24, x->sliding_window);
        x->rope_theta_local = x->rope_theta;
        x->rope_factor_local = 1.0f;
    }
    if (c->qvit.out_hidden != x->hidden)
        return oc_err(OC_ERR_FORMAT, "%s: vision out_hidden_size %u differs from the text "
                      "hidden_size %u", file, c->qvit.out_hidden, x->hidden);
    x->rope_dtype = OC_DT_F32;
    OC_TRY(oc_config_dtype(t, file, &x->rope_dtype));
    OC_TRY(oc_config_dtype(j, file, &x->rope_dtype));
    c->qvit.rope_dtype = x->rope_dtype;
    int tied_t, tied;
    OC_TRY(oc_json_bool(t, "tie_word_embeddings", 0, file, &tied_t));
    OC_TRY(oc_json_bool(j, "tie_word_embeddings", tied_t, file, &tied));
    x->tied = tied;
    /* the special tokens are at the top level in both layouts */
    OC_TRY(token_id(j, "image_token_id", 151655, x->vocab, file, &c->image_token_id));
    OC_TRY(token_id(j, "vision_start_token_id", 151652, x->vocab, file, &c->vision_start_id));
    OC_TRY(token_id(j, "vision_end_token_id", 151653, x->vocab, file, &c->vision_end_id));
    if (c->image_token_id == c->vision_start_id || c->image_token_id == c->vision_end_id)
        return oc_err(OC_ERR_FORMAT, "%s: image_token_id %d is also a vision start or end "
                      "token", file, c->image_token_id);
    c->bos_id = c->pad_id = -1;
    OC_TRY(oc_config_eos(t, file, c));
    return t == j ? OC_OK : oc_config_eos(j, file, c);
}

/* ---- Gemma 3 ----------------------------------------------------------------------- */

/* The SigLIP tower: SiglipVisionConfig's defaults. */
static oc_status gemma_vision(const cJSON *v, const char *file, oc_vit_config *c) {
    if (!cJSON_IsObject(v))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"vision_config\" object", file);
    c->kind = OC_VIT_SIGLIP;
    U32(v, "hidden_size", 768, 1, 1 << 16, c->hidden);
    U32(v, "num_hidden_layers", 12, 1, 1024, c->layers);
    U32(v, "num_attention_heads", 12, 1, 1024, c->heads);
    U32(v, "intermediate_size", 3072, 1, 1 << 20, c->intermediate);
    U32(v, "patch_size", 16, 1, 1024, c->patch);
    U32(v, "image_size", 224, 1, 1 << 14, c->image_size);
    U32(v, "num_channels", 3, 3, 3, c->channels);
    double eps;
    OC_TRY(oc_json_num(v, "layer_norm_eps", 0, 1e-6, file, &eps));
    if (!(eps > 0 && eps < 1))
        return oc_err(OC_ERR_FORMAT, "%s: vision layer_norm_eps %g must be in (0, 1)", file,
                      eps);
    c->ln_eps = (float)eps;
    OC_TRY(oc_config_act(v, "hidden_act", "gelu_pytorch_tanh", file, &c->act));
    if (c->hidden % c->heads)
        return oc_err(OC_ERR_FORMAT, "%s: vision hidden_size %u is not a multiple of "
                      "num_attention_heads %u", file, c->hidden, c->heads);
    if (c->image_size % c->patch)
        return oc_err(OC_ERR_FORMAT, "%s: vision image_size %u is not a multiple of "
                      "patch_size %u", file, c->image_size, c->patch);
    return OC_OK;
}

/* RoPE per layer type: transformers 5's rope_parameters {"full_attention": {...},
 * "sliding_attention": {...}}, or transformers 4's rope_theta + rope_scaling (full layers)
 * and rope_local_base_freq (sliding layers). */
static oc_status gemma_rope(const cJSON *t, const char *file, oc_llama_config *x) {
    x->rope_theta = 1000000.0f;
    x->rope_theta_local = 10000.0f;
    x->rope_factor = x->rope_factor_local = 1.0f;
    const cJSON *rp = oc_json_get(t, "rope_parameters");
    if (cJSON_IsObject(rp) && (oc_json_get(rp, "full_attention") ||
                               oc_json_get(rp, "sliding_attention"))) {
        OC_TRY(rope_object(oc_json_get(rp, "full_attention"), file,
                           "rope_parameters.full_attention", &x->rope_theta, &x->rope_factor,
                           NULL));
        return rope_object(oc_json_get(rp, "sliding_attention"), file,
                           "rope_parameters.sliding_attention", &x->rope_theta_local,
                           &x->rope_factor_local, NULL);
    }
    if (oc_json_get(t, "rope_theta"))
        OC_TRY(positive(t, "rope_theta", 0, 1.0000001, file, &x->rope_theta));
    if (oc_json_get(t, "rope_local_base_freq"))
        OC_TRY(positive(t, "rope_local_base_freq", 0, 1.0000001, file, &x->rope_theta_local));
    return rope_object(cJSON_IsObject(rp) ? rp : oc_json_get(t, "rope_scaling"), file,
                       "rope_scaling", &x->rope_theta, &x->rope_factor, NULL);
}

/* Null or a positive number; 0 stands for null. */
static oc_status softcap(const cJSON *t, const char *key, const char *file, float *out) {
    const cJSON *v = oc_json_get(t, key);
    *out = 0.0f;
    if (!v || cJSON_IsNull(v))
        return OC_OK;
    return positive(t, key, 0, 1e-6, file, out);
}

static oc_status gemma_text(const cJSON *t, const char *file, oc_llama_config *x) {
    if (!cJSON_IsObject(t))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"text_config\" object", file);
    /* Gemma3TextConfig's defaults */
    OC_TRY(text_sizes(t, file, x, 2304, 26, 8, 4, 9216, 262208, 131072, 1e-6));
    U32(t, "head_dim", 256, 2, 4096, x->head_dim);
    if (x->head_dim % 2)
        return oc_err(OC_ERR_FORMAT, "%s: head_dim %u must be even for RoPE", file,
                      x->head_dim);
    oc_act act;
    const char *ak = oc_json_get(t, "hidden_activation") ? "hidden_activation" : "hidden_act";
    OC_TRY(oc_config_act(t, ak, "gelu_pytorch_tanh", file, &act));
    if (act != OC_ACT_GELU_TANH)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: %s must be gelu_pytorch_tanh", file, ak);
    x->mlp_gelu = 1;
    x->qk_norm = x->sandwich_norm = 1;
    OC_TRY(oc_json_bool(t, "attention_bias", 0, file, &x->attn_bias));
    float qs = 0;
    OC_TRY(positive(t, "query_pre_attn_scalar", 256, 1e-6, file, &qs));
    x->query_scale = (float)pow((double)qs, -0.5);
    OC_TRY(softcap(t, "final_logit_softcapping", file, &x->final_softcap));
    float attn_cap = 0;
    OC_TRY(softcap(t, "attn_logit_softcapping", file, &attn_cap));
    if (attn_cap != 0.0f)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: attn_logit_softcapping is not supported (Gemma "
                      "3 sets it to null)", file);
    int bidir;
    OC_TRY(oc_json_bool(t, "use_bidirectional_attention", 0, file, &bidir));
    if (bidir)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: use_bidirectional_attention (an embedding "
                      "model) is not supported", file);
    OC_TRY(gemma_rope(t, file, x));
    int given;
    OC_TRY(layer_types(t, x->layers, file, x->sliding, &given));
    if (!given) { /* transformers 4: every pattern-th layer is global */
        uint32_t pattern;
        const char *pk = oc_json_get(t, "sliding_window_pattern") ? "sliding_window_pattern"
                                                                  : "_sliding_window_pattern";
        U32(t, pk, 6, 1, 1 << 20, pattern);
        for (uint32_t l = 0; l < x->layers; l++)
            x->sliding[l] = (l + 1) % pattern != 0;
    }
    U32(t, "sliding_window", 4096, 1, 1 << 24, x->sliding_window);
    return OC_OK;
}

/* The embedding scale sqrt(hidden) as the model holds it: a buffer in the model's dtype. */
static float embed_scale(uint32_t hidden, oc_dtype dt) {
    float s = (float)sqrt((double)hidden);
    if (dt == OC_DT_BF16)
        return oc_bf16_to_f32(oc_f32_to_bf16(s));
    if (dt == OC_DT_F16)
        return oc_f16_to_f32(oc_f32_to_f16(s));
    return s;
}

oc_status oc_config_parse_gemma3(const cJSON *j, const char *file, oc_model_config *c) {
    OC_TRY(gemma_vision(oc_json_get(j, "vision_config"), file, &c->vision));
    const cJSON *t = oc_json_get(j, "text_config");
    oc_llama_config *x = &c->text;
    OC_TRY(gemma_text(t, file, x));
    x->rope_dtype = OC_DT_F32;
    OC_TRY(oc_config_dtype(t, file, &x->rope_dtype));
    OC_TRY(oc_config_dtype(j, file, &x->rope_dtype));
    x->embed_scale = embed_scale(x->hidden, x->rope_dtype);
    int tied_t, tied;
    OC_TRY(oc_json_bool(t, "tie_word_embeddings", 1, file, &tied_t));
    OC_TRY(oc_json_bool(j, "tie_word_embeddings", tied_t, file, &tied));
    x->tied = tied;
    U32(j, "mm_tokens_per_image", 256, 1, 1 << 20, c->mm_tokens);
    uint32_t side = (uint32_t)floor(sqrt((double)c->mm_tokens) + 0.5);
    uint32_t g = oc_vit_grid(&c->vision);
    if (side * side != c->mm_tokens || g % side)
        return oc_err(OC_ERR_FORMAT, "%s: mm_tokens_per_image %u must be the square of a "
                      "divisor of the patch grid side %u", file, c->mm_tokens, g);
    const char *ik = oc_json_get(j, "image_token_index") ? "image_token_index"
                                                         : "image_token_id";
    OC_TRY(token_id(j, ik, 262144, x->vocab, file, &c->image_token_id));
    OC_TRY(token_id(j, "boi_token_index", 255999, x->vocab, file, &c->boi_id));
    OC_TRY(token_id(j, "eoi_token_index", 256000, x->vocab, file, &c->eoi_id));
    if (c->image_token_id == c->boi_id || c->image_token_id == c->eoi_id)
        return oc_err(OC_ERR_FORMAT, "%s: the image token %d is also the start or end of an "
                      "image", file, c->image_token_id);
    c->bos_id = c->pad_id = -1;
    OC_TRY(oc_config_eos(t, file, c));
    return oc_config_eos(j, file, c);
}

/* ---- the rest of the folder ------------------------------------------------------- */

/* Whether a chat template file holds Qwen's default system turn. */
static int template_adds_system(const char *dir, const char *name) {
    char *path = oc_path_join(dir, name), *text = NULL;
    size_t n = 0;
    int found = 0;
    if (path && oc_file_exists(path) && oc_read_file(path, 64u << 20, &text, &n) == OC_OK)
        found = strstr(text, "<|im_start|>system") &&
                strstr(text, "You are a helpful assistant.");
    oc_free(text);
    oc_free(path);
    return found;
}

oc_status oc_config_load_extras(const char *dir, oc_model_config *c) {
    if (c->family != OC_FAMILY_QWEN25VL)
        return OC_OK;
    /* Qwen2.5-VL's chat template starts a conversation without a system message with
     * "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"; a folder without a
     * template (the tiny test model) renders none. */
    static const char *const files[] = {"chat_template.json", "chat_template.jinja",
                                        "tokenizer_config.json"};
    c->default_system = 0;
    for (size_t i = 0; i < 3 && !c->default_system; i++)
        c->default_system = template_adds_system(dir, files[i]);
    return OC_OK;
}

const char *oc_family_name(oc_family f) {
    switch (f) {
    case OC_FAMILY_SMOLVLM:
        return "smolvlm";
    case OC_FAMILY_LLAVA:
        return "llava";
    case OC_FAMILY_QWEN25VL:
        return "qwen2_5_vl";
    case OC_FAMILY_GEMMA3:
        return "gemma3";
    }
    return "unknown";
}

oc_status oc_config_check_trainable(const oc_model_config *c, const char *where) {
    if (c->family != OC_FAMILY_QWEN25VL && c->family != OC_FAMILY_GEMMA3)
        return OC_OK;
    return oc_err(OC_ERR_UNSUPPORTED, "%s: fine-tuning %s models is not supported; caption, "
                  "ask, inspect and bench run this model", where ? where : "training",
                  oc_family_name(c->family));
}
