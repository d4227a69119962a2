#include "config.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"

#define U32(obj, key, req, def, lo, hi, dst)                                        \
    do {                                                                           \
        int64_t v_;                                                                \
        OC_TRY(oc_json_int(obj, key, req, def, lo, hi, file, &v_));                \
        (dst) = (uint32_t)v_;                                                      \
    } while (0)

oc_status oc_config_act(const cJSON *obj, const char *key, const char *def, const char *file,
                        oc_act *out) {
    const char *s;
    OC_TRY(oc_json_str(obj, key, 0, file, &s));
    if (!s)
        s = def;
    if (!strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_new") || !strcmp(s, "gelu_fast"))
        *out = OC_ACT_GELU_TANH;
    else if (!strcmp(s, "gelu"))
        *out = OC_ACT_GELU;
    else if (!strcmp(s, "quick_gelu"))
        *out = OC_ACT_QUICK_GELU;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish"))
        *out = OC_ACT_SILU;
    else
        return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported %s \"%s\"", file, key, s);
    return OC_OK;
}

/* A norm's epsilon: positive (a negative one makes the variance negative and the output
 * NaN, a blank caption), small, and not 0 once in float32. */
static oc_status check_eps(const char *file, const char *where, const char *key, double eps) {
    if (!(eps > 0 && eps < 1) || !((float)eps > 0))
        return oc_err(OC_ERR_FORMAT, "%s: %s %s = %g must be in (0, 1)", file, where, key, eps);
    return OC_OK;
}

static oc_status parse_vision(const cJSON *v, oc_family fam, const char *file,
                              oc_vit_config *c) {
    if (!cJSON_IsObject(v))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"vision_config\" object", file);
    c->kind = fam == OC_FAMILY_SMOLVLM ? OC_VIT_SIGLIP : OC_VIT_CLIP;
    /* Defaults are those of transformers' config classes. */
    int siglip = c->kind == OC_VIT_SIGLIP;
    U32(v, "hidden_size", 0, siglip ? 1152 : 768, 1, 1 << 16, c->hidden);
    U32(v, "num_hidden_layers", 0, siglip ? 26 : 12, 1, 1024, c->layers);
    U32(v, "num_attention_heads", 0, siglip ? 16 : 12, 1, 1024, c->heads);
    U32(v, "intermediate_size", 0, siglip ? 4304 : 3072, 1, 1 << 20, c->intermediate);
    U32(v, "patch_size", 0, siglip ? 32 : 32, 1, 1024, c->patch);
    U32(v, "image_size", 0, siglip ? 224 : 224, 1, 1 << 14, c->image_size);
    U32(v, "num_channels", 0, 3, 3, 3, c->channels);
    double eps;
    OC_TRY(oc_json_num(v, "layer_norm_eps", 0, siglip ? 1e-6 : 1e-5, file, &eps));
    OC_TRY(check_eps(file, "vision_config", "layer_norm_eps", eps));
    c->ln_eps = (float)eps;
    OC_TRY(oc_config_act(v, "hidden_act", siglip ? "gelu_pytorch_tanh" : "quick_gelu", file,
                     &c->act));
    if (c->hidden % c->heads)
        return oc_err(OC_ERR_FORMAT, "%s: vision hidden_size %u is not a multiple of "
                      "num_attention_heads %u", file, c->hidden, c->heads);
    if (c->image_size % c->patch)
        return oc_err(OC_ERR_FORMAT, "%s: vision image_size %u is not a multiple of "
                      "patch_size %u", file, c->image_size, c->patch);
    return OC_OK;
}

static oc_status parse_text(const cJSON *t, const char *file, oc_llama_config *c) {
    if (!cJSON_IsObject(t))
        return oc_err(OC_ERR_FORMAT, "%s: missing \"text_config\" object", file);
    const char *mt;
    OC_TRY(oc_json_str(t, "model_type", 0, file, &mt));
    if (mt && strcmp(mt, "llama") && strcmp(mt, "mistral"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: text model_type \"%s\" is not supported "
                      "(llama only)", file, mt);
    U32(t, "hidden_size", 0, 4096, 1, 1 << 16, c->hidden);
    U32(t, "num_hidden_layers", 0, 32, 1, 1024, c->layers);
    U32(t, "num_attention_heads", 0, 32, 1, 1024, c->heads);
    U32(t, "num_key_value_heads", 0, c->heads, 1, 1024, c->kv_heads);
    /* without head_dim, the heads split the width: they must divide it */
    if (!oc_json_get(t, "head_dim") && c->hidden % c->heads)
        return oc_err(OC_ERR_FORMAT, "%s: text hidden_size %u is not a multiple of "
                      "num_attention_heads %u (and no head_dim is given)", file, c->hidden,
                      c->heads);
    U32(t, "head_dim", 0, c->hidden / c->heads, 2, 4096, c->head_dim);
    U32(t, "intermediate_size", 0, 11008, 1, 1 << 20, c->intermediate);
    U32(t, "vocab_size", 0, 32000, 1, 1 << 24, c->vocab);
    U32(t, "max_position_embeddings", 0, 2048, 1, 1 << 24, c->max_pos);
    double eps, theta;
    OC_TRY(oc_json_num(t, "rms_norm_eps", 0, 1e-6, file, &eps));
    OC_TRY(check_eps(file, "text_config", "rms_norm_eps", eps));
    c->rms_eps = (float)eps;
    /* rope_theta moved into rope_parameters in transformers 5; accept both. */
    const cJSON *rp = oc_json_get(t, "rope_parameters");
    if (cJSON_IsObject(rp) && oc_json_get(rp, "rope_theta"))
        OC_TRY(oc_json_num(rp, "rope_theta", 1, 0, file, &theta));
    else
        OC_TRY(oc_json_num(t, "rope_theta", 0, 10000.0, file, &theta));
    if (!(theta > 1))
        return oc_err(OC_ERR_FORMAT, "%s: rope_theta %g must be > 1", file, theta);
    c->rope_theta = (float)theta;
    const char *rt = NULL;
    if (cJSON_IsObject(rp))
        OC_TRY(oc_json_str(rp, "rope_type", 0, file, &rt));
    const cJSON *rs = oc_json_get(t, "rope_scaling");
    if ((rt && strcmp(rt, "default")) || (rs && !cJSON_IsNull(rs)))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: RoPE scaling is not supported", file);
    OC_TRY(oc_json_bool(t, "attention_bias", 0, file, &c->attn_bias));
    OC_TRY(oc_json_bool(t, "mlp_bias", 0, file, &c->mlp_bias));
    if (c->mlp_bias)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: mlp_bias is not supported", file);
    if (c->heads % c->kv_heads)
        return oc_err(OC_ERR_FORMAT, "%s: num_attention_heads %u is not a multiple of "
                      "num_key_value_heads %u", file, c->heads, c->kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2) /* the default hidden / heads may be 0 */
        return oc_err(OC_ERR_FORMAT, "%s: head_dim %u (num_attention_heads %u) must be even "
                      "and at least 2 for RoPE", file, c->head_dim, c->heads);
    return OC_OK;
}

/* eos_token_id may be a number or a list. */
oc_status oc_config_eos(const cJSON *j, const char *file, oc_model_config *c) {
    const cJSON *e = oc_json_get(j, "eos_token_id");
    if (!e || cJSON_IsNull(e))
        return OC_OK;
    c->n_eos = 0;
    const cJSON *first = cJSON_IsArray(e) ? e->child : e;
    if (!cJSON_IsNumber(e) && !cJSON_IsArray(e))
        return oc_err(OC_ERR_FORMAT, "%s: eos_token_id must be an integer or a list", file);
    for (const cJSON *x = first; x && c->n_eos < OC_MAX_EOS; x = x == e ? NULL : x->next) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
            return oc_err(OC_ERR_FORMAT, "%s: eos_token_id must hold integers", file);
        /* Qwen2.5-VL's config class writes its published end tokens into every config it
         * saves, so small checkpoints carry them past their vocabulary: they can never be
         * sampled, and are skipped. */
        if (c->family == OC_FAMILY_QWEN25VL && x->valuedouble >= c->text.vocab &&
            (x->valuedouble == 151643 || x->valuedouble == 151645))
            continue;
        /* range-checked as a double: out-of-range casts to int32 are undefined */
        if (!(x->valuedouble >= 0 && x->valuedouble < (double)c->text.vocab))
            return oc_err(OC_ERR_FORMAT, "%s: eos_token_id %.17g is outside the vocabulary "
                          "(%u)", file, x->valuedouble, c->text.vocab);
        c->eos[c->n_eos++] = (int32_t)x->valuedouble;
    }
    return OC_OK;
}

/* The dtype the checkpoint was saved in: "dtype" (transformers 5) or "torch_dtype". */
oc_status oc_config_dtype(const cJSON *j, const char *file, oc_dtype *out) {
    const char *d;
    OC_TRY(oc_json_str(j, "dtype", 0, file, &d));
    if (!d)
        OC_TRY(oc_json_str(j, "torch_dtype", 0, file, &d));
    if (!d)
        return OC_OK;
    if (!strcmp(d, "bfloat16"))
        *out = OC_DT_BF16;
    else if (!strcmp(d, "float16"))
        *out = OC_DT_F16;
    else if (!strcmp(d, "float32"))
        *out = OC_DT_F32;
    return OC_OK;
}

static oc_status parse_config(const cJSON *j, const char *file, oc_model_config *c) {
    const char *mt;
    OC_TRY(oc_json_str(j, "model_type", 1, file, &mt));
    if (!strcmp(mt, "smolvlm") || !strcmp(mt, "idefics3"))
        c->family = OC_FAMILY_SMOLVLM;
    else if (!strcmp(mt, "llava"))
        c->family = OC_FAMILY_LLAVA;
    else if (!strcmp(mt, "qwen2_5_vl"))
        return c->family = OC_FAMILY_QWEN25VL, oc_config_parse_qwen25vl(j, file, c);
    else if (!strcmp(mt, "gemma3"))
        return c->family = OC_FAMILY_GEMMA3, oc_config_parse_gemma3(j, file, c);
    else
        return oc_err(OC_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not supported "
                      "(smolvlm, idefics3, llava, qwen2_5_vl, gemma3)", file, mt);
    OC_TRY(parse_vision(oc_json_get(j, "vision_config"), c->family, file, &c->vision));
    OC_TRY(parse_text(oc_json_get(j, "text_config"), file, &c->text));
    c->text.rope_dtype = OC_DT_F32;
    OC_TRY(oc_config_dtype(oc_json_get(j, "text_config"), file, &c->text.rope_dtype));
    OC_TRY(oc_config_dtype(j, file, &c->text.rope_dtype));
    /* tie_word_embeddings: the top level wins where both are given (transformers 5). */
    int tied_text, tied;
    OC_TRY(oc_json_bool(oc_json_get(j, "text_config"), "tie_word_embeddings",
                        c->family == OC_FAMILY_SMOLVLM ? 0 : 0, file, &tied_text));
    OC_TRY(oc_json_bool(j, "tie_word_embeddings", tied_text, file, &tied));
    c->text.tied = tied;
    int64_t v;
    if (c->family == OC_FAMILY_SMOLVLM) {
        OC_TRY(oc_json_int(j, "image_token_id", 0, 128257, 0, c->text.vocab - 1, file, &v));
        c->image_token_id = (int32_t)v;
        OC_TRY(oc_json_int(j, "scale_factor", 0, 2, 1, 64, file, &v));
        c->scale_factor = (uint32_t)v;
        uint32_t g = oc_vit_grid(&c->vision);
        if (g % c->scale_factor)
            return oc_err(OC_ERR_FORMAT, "%s: patch grid %u is not a multiple of "
                          "scale_factor %u", file, g, c->scale_factor);
    } else {
        const char *key = oc_json_get(j, "image_token_index") ? "image_token_index"
                                                              : "image_token_id";
        OC_TRY(oc_json_int(j, key, 0, 32000, 0, c->text.vocab - 1, file, &v));
        c->image_token_id = (int32_t)v;
        OC_TRY(oc_json_int(j, "vision_feature_layer", 0, -2,
                           -(int64_t)c->vision.layers - 1, c->vision.layers, file, &v));
        c->vision_feature_layer = (int32_t)v;
        const char *strat;
        OC_TRY(oc_json_str(j, "vision_feature_select_strategy", 0, file, &strat));
        if (strat && strcmp(strat, "default") && strcmp(strat, "full"))
            return oc_err(OC_ERR_UNSUPPORTED, "%s: vision_feature_select_strategy \"%s\"",
                          file, strat);
        c->feature_keep_cls = strat && !strcmp(strat, "full");
        OC_TRY(oc_config_act(j, "projector_hidden_act", "gelu", file, &c->projector_act));
    }
    const cJSON *tc = oc_json_get(j, "text_config");
    c->bos_id = c->pad_id = -1;
    OC_TRY(oc_json_int(tc, "bos_token_id", 0, -1, -1, c->text.vocab - 1, file, &v));
    c->bos_id = (int32_t)v;
    OC_TRY(oc_config_eos(tc, file, c));
    OC_TRY(oc_config_eos(j, file, c));
    return OC_OK;
}

oc_status oc_config_from_json(const cJSON *config, const cJSON *generation, const char *file,
                              oc_model_config *out) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(config))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    OC_TRY(parse_config(config, file, out));
    return generation ? oc_config_eos(generation, file, out) : OC_OK;
}

oc_status oc_config_load(const char *dir, oc_model_config *out) {
    memset(out, 0, sizeof *out);
    char *path = oc_path_join(dir, "config.json");
    char *gpath = oc_path_join(dir, "generation_config.json");
    oc_status s = OC_OK;
    cJSON *j = NULL, *g = NULL;
    if (!path || !gpath)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK)
        s = oc_json_load(path, 4u << 20, &j);
    if (s == OC_OK && !cJSON_IsObject(j))
        s = oc_err(OC_ERR_FORMAT, "%s: not a JSON object", path);
    if (s == OC_OK)
        s = parse_config(j, path, out);
    if (s == OC_OK)
        s = oc_config_load_extras(dir, out);
    /* generation_config.json's end tokens take precedence when present. */
    if (s == OC_OK && oc_file_exists(gpath)) {
        s = oc_json_load(gpath, 1u << 20, &g);
        if (s == OC_OK)
            s = oc_config_eos(g, gpath, out);
    }
    cJSON_Delete(j);
    cJSON_Delete(g);
    oc_free(path);
    oc_free(gpath);
    return s;
}
