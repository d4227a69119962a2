/* Random-weight folders of Qwen2.5-VL and Gemma 3: the published shapes (Qwen2.5-VL-3B-
 * Instruct, gemma-3-4b-it, in their own config layouts) for `ocellus bench`, and tiny ones
 * for tests. config.json is written first and read back through the loader's parser;
 * the weights then follow the family's tensor table, so the writer and the loader can
 * never disagree on a name or a shape. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "model_internal.h"
#include "rng.h"

/* Token ids the configs name, where the presets' tokenizers put them. */
static const char *const QWEN_SPECIAL[] = {"<|endoftext|>",   "<|im_start|>",
                                           "<|im_end|>",      "<|vision_start|>",
                                           "<|vision_end|>",  "<|image_pad|>",
                                           "<|video_pad|>"};
static const char *const GEMMA_SPECIAL[] = {"<pad>",            "<eos>",
                                            "<bos>",            "<unk>",
                                            "<start_of_turn>",  "<end_of_turn>",
                                            "<start_of_image>", "<end_of_image>",
                                            "<image_soft_token>"};

typedef struct {
    const char *name;
    int gemma, big;
} family_preset;

static const family_preset PRESETS[] = {
    {"qwen2.5-vl-3b", 0, 1},
    {"qwen2.5-vl-tiny", 0, 0},
    {"gemma-3-4b", 1, 1},
    {"gemma-3-tiny", 1, 0},
};

static const family_preset *find(const char *name) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (!strcmp(PRESETS[i].name, name))
            return &PRESETS[i];
    return NULL;
}

int oc_random_family_preset(const char *name) { return name && find(name) != NULL; }

static void num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static cJSON *int_list(const int *v, int n) { return cJSON_CreateIntArray(v, n); }

/* Qwen2.5-VL-3B-Instruct's config.json (transformers 4: text settings at the top level),
 * or the tiny reference model's (transformers 5: text_config). */
static cJSON *qwen_config(int big) {
    cJSON *j = cJSON_CreateObject(), *v = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen2_5_VLForConditionalGeneration"));
    cJSON_AddStringToObject(j, "model_type", "qwen2_5_vl");
    num(j, "vision_start_token_id", 3);
    num(j, "vision_end_token_id", 4);
    num(j, "image_token_id", 5);
    num(j, "video_token_id", 6);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", big);
    static const int sec_big[] = {16, 24, 24}, sec_tiny[] = {2, 3, 3};
    static const int full_big[] = {7, 15, 23, 31}, full_tiny[] = {1};
    cJSON *t = big ? j : cJSON_AddObjectToObject(j, "text_config");
    cJSON_AddStringToObject(big ? j : t, big ? "torch_dtype" : "dtype",
                            big ? "bfloat16" : "float32");
    num(t, "hidden_size", big ? 2048 : 64);
    num(t, "intermediate_size", big ? 11008 : 160);
    num(t, "num_hidden_layers", big ? 36 : 2);
    num(t, "num_attention_heads", big ? 16 : 4);
    num(t, "num_key_value_heads", 2);
    num(t, "vocab_size", big ? 151936 : 380);
    num(t, "max_position_embeddings", big ? 128000 : 4096);
    num(t, "rms_norm_eps", 1e-6);
    cJSON_AddStringToObject(t, "hidden_act", "silu");
    cJSON_AddBoolToObject(t, "use_sliding_window", 0);
    num(t, "max_window_layers", big ? 70 : 80);
    num(t, "eos_token_id", 2);
    cJSON *rope = cJSON_AddObjectToObject(t, big ? "rope_scaling" : "rope_parameters");
    cJSON_AddStringToObject(rope, "type", "mrope");
    cJSON_AddItemToObject(rope, "mrope_section", int_list(big ? sec_big : sec_tiny, 3));
    num(big ? t : rope, "rope_theta", 1000000.0);
    num(v, "depth", big ? 32 : 2);
    num(v, "hidden_size", big ? 1280 : 64);
    num(v, "intermediate_size", big ? 3420 : 128);
    num(v, "num_heads", big ? 16 : 4);
    num(v, big ? "in_chans" : "in_channels", 3);
    num(v, "out_hidden_size", big ? 2048 : 64);
    num(v, "patch_size", 14);
    num(v, "spatial_merge_size", 2);
    num(v, "temporal_patch_size", 2);
    num(v, "window_size", big ? 112 : 56);
    num(v, "tokens_per_second", big ? 2 : 4);
    cJSON_AddStringToObject(v, "hidden_act", "silu");
    cJSON_AddItemToObject(v, "fullatt_block_indexes",
                          big ? int_list(full_big, 4) : int_list(full_tiny, 1));
    cJSON_AddItemToObject(j, "vision_config", v);
    return j;
}

static cJSON *qwen_processor(int big) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "image_processor_type", "Qwen2VLImageProcessor");
    num(j, "min_pixels", 56 * 56);
    num(j, "max_pixels", big ? 12845056 : 112 * 112);
    num(j, "patch_size", 14);
    num(j, "temporal_patch_size", 2);
    num(j, "merge_size", 2);
    float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    cJSON_AddItemToObject(j, "image_mean", cJSON_CreateFloatArray(mean, 3));
    cJSON_AddItemToObject(j, "image_std", cJSON_CreateFloatArray(std, 3));
    return j;
}

/* gemma-3-4b-it's config.json (transformers 4: rope_scaling for the global layers, the
 * sliding pattern implied) or the tiny reference model's (layer_types). */
static cJSON *gemma_config(int big) {
    cJSON *j = cJSON_CreateObject(), *t = cJSON_CreateObject(), *v = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("Gemma3ForConditionalGeneration"));
    cJSON_AddStringToObject(j, "model_type", "gemma3");
    num(j, "boi_token_index", 6);
    num(j, "eoi_token_index", 7);
    num(j, "image_token_index", 8);
    num(j, "mm_tokens_per_image", big ? 256 : 16);
    cJSON_AddStringToObject(j, big ? "torch_dtype" : "dtype", big ? "bfloat16" : "float32");
    int eos[2] = {1, 5};
    cJSON_AddItemToObject(j, "eos_token_id", int_list(eos, 2));
    cJSON_AddStringToObject(t, "model_type", "gemma3_text");
    num(t, "hidden_size", big ? 2560 : 64);
    num(t, "intermediate_size", big ? 10240 : 160);
    num(t, "num_hidden_layers", big ? 34 : 4);
    num(t, "num_attention_heads", big ? 8 : 4);
    num(t, "num_key_value_heads", big ? 4 : 2);
    num(t, "head_dim", big ? 256 : 16);
    num(t, "query_pre_attn_scalar", big ? 256 : 16);
    num(t, "vocab_size", big ? 262208 : 380);
    num(t, "max_position_embeddings", big ? 131072 : 4096);
    num(t, "sliding_window", big ? 1024 : 8);
    if (big) {
        cJSON *rs = cJSON_AddObjectToObject(t, "rope_scaling");
        num(rs, "factor", 8.0);
        cJSON_AddStringToObject(rs, "rope_type", "linear");
    } else {
        cJSON *lt = cJSON_AddArrayToObject(t, "layer_types");
        for (int l = 0; l < 4; l++)
            cJSON_AddItemToArray(lt, cJSON_CreateString(l == 3 ? "full_attention"
                                                                : "sliding_attention"));
        cJSON *rp = cJSON_AddObjectToObject(t, "rope_parameters");
        cJSON *full = cJSON_AddObjectToObject(rp, "full_attention");
        num(full, "rope_theta", 1000000.0);
        cJSON_AddStringToObject(full, "rope_type", "default");
        cJSON *sl = cJSON_AddObjectToObject(rp, "sliding_attention");
        num(sl, "rope_theta", 10000.0);
        cJSON_AddStringToObject(sl, "rope_type", "default");
    }
    cJSON_AddItemToObject(j, "text_config", t);
    num(v, "hidden_size", big ? 1152 : 64);
    num(v, "image_size", big ? 896 : 64);
    num(v, "intermediate_size", big ? 4304 : 128);
    num(v, "num_attention_heads", big ? 16 : 4);
    num(v, "num_hidden_layers", big ? 27 : 2);
    num(v, "patch_size", big ? 14 : 8);
    cJSON_AddStringToObject(v, "model_type", "siglip_vision_model");
    cJSON_AddBoolToObject(v, "vision_use_head", 0);
    cJSON_AddItemToObject(j, "vision_config", v);
    return j;
}

static cJSON *gemma_processor(int big) {
    cJSON *j = cJSON_CreateObject(), *size = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "image_processor_type", "Gemma3ImageProcessor");
    num(size, "height", big ? 896 : 64);
    num(size, "width", big ? 896 : 64);
    cJSON_AddItemToObject(j, "size", size);
    num(j, "resample", 2);
    num(j, "rescale_factor", 1.0 / 255.0);
    float half[3] = {0.5f, 0.5f, 0.5f};
    cJSON_AddItemToObject(j, "image_mean", cJSON_CreateFloatArray(half, 3));
    cJSON_AddItemToObject(j, "image_std", cJSON_CreateFloatArray(half, 3));
    cJSON_AddNullToObject(j, "do_pan_and_scan");
    return j;
}

/* ---- weights ------------------------------------------------------------------- */

typedef struct {
    oc_rng rng;
    float scale, base; /* value = base + scale * uniform(-1, 1) */
} tensor_gen;

static void fill_uniform(void *ctx, float *out, size_t offset, size_t n) {
    (void)offset; /* called in order: the stream continues */
    tensor_gen *g = ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = g->base + g->scale * (float)(2.0 * oc_rng_uniform(&g->rng) - 1.0);
}

/* A writer of cfg's tensors (random values made while it writes); *gens (free with
 * oc_free after the writer) holds their generators. */
static oc_status family_writer(const oc_model_config *cfg, const char *where, oc_dtype dtype,
                               uint64_t seed, oc_st_writer **out, tensor_gen **gens_out) {
    *out = NULL;
    *gens_out = NULL;
    size_t n_specs;
    const oc_tensor_spec *specs = oc_family_tensors(cfg->family, &n_specs);
    if (!specs)
        return oc_err(OC_ERR_INVALID_ARG, "%s: not a table-driven family", where);
    size_t n = 0;
    for (size_t i = 0; i < n_specs; i++)
        n += oc_family_spec_layers(cfg, &specs[i]);
    tensor_gen *gens = oc_calloc(n ? n : 1, sizeof *gens);
    oc_st_writer *w = NULL;
    oc_status s = gens ? oc_st_writer_new(&w) : oc_err(OC_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; s == OC_OK && i < n_specs; i++) {
        const oc_tensor_spec *sp = &specs[i];
        if ((sp->opt == OC_TO_ATTN_BIAS && !cfg->text.attn_bias) ||
            (sp->opt == OC_TO_UNTIED && cfg->text.tied))
            continue;
        int64_t dims[5];
        int nd = 0;
        for (; nd < 5 && sp->dims[nd]; nd++)
            dims[nd] = oc_family_dim(cfg, (oc_dim)sp->dims[nd]);
        /* fan in: the product of all but the first dim (the first for a stored (in, out)) */
        double fan = 1;
        for (int d = 1; d < nd; d++)
            fan *= (double)dims[d];
        if (sp->xform == OC_TX_TRANSPOSE)
            fan = (double)dims[0];
        uint32_t layers = oc_family_spec_layers(cfg, sp);
        for (uint32_t l = 0; s == OC_OK && l < layers; l++, k++) {
            char base[192], name[256];
            snprintf(base, sizeof base, sp->name, l);
            snprintf(name, sizeof name, "%s%s", oc_family_prefixes(cfg->family, sp->part)[0],
                     base);
            tensor_gen *g = &gens[k];
            oc_rng_seed(&g->rng, seed ^ oc_mix64(k + 1));
            /* uniform(-a, a) has std a / sqrt(3) */
            g->scale = sp->kind == OC_TK_MAT ? (float)sqrt(3.0 / fan) : 0.02f * 1.7320508f;
            g->base = sp->kind == OC_TK_NORM ? 1.0f : 0.0f;
            s = oc_st_writer_add_generated(w, name, dtype, nd, dims, fill_uniform, g);
        }
    }
    if (s != OC_OK) {
        oc_st_writer_free(w);
        oc_free(gens);
        return s;
    }
    *out = w;
    *gens_out = gens;
    return OC_OK;
}

oc_status oc_write_random_family_weights(const char *dir, oc_dtype dtype, uint64_t seed) {
    oc_model_config cfg;
    OC_TRY(oc_config_load(dir, &cfg));
    oc_st_writer *w;
    tensor_gen *gens;
    OC_TRY(family_writer(&cfg, dir, dtype, seed, &w, &gens));
    char *path = oc_path_join(dir, "model.safetensors");
    oc_status s = path ? oc_st_writer_save(w, path) : oc_err(OC_ERR_NOMEM, "out of memory");
    oc_free(path);
    oc_st_writer_free(w);
    oc_free(gens);
    return s;
}

/* The preset's files into the new folder d. */
static oc_status write_family(const family_preset *p, oc_dtype dt, uint64_t seed,
                              oc_out_dir *d) {
    int g = p->gemma, big = p->big;
    cJSON *config = g ? gemma_config(big) : qwen_config(big);
    oc_model_config cfg;
    oc_status s = config ? oc_config_from_json(config, NULL, "config.json", &cfg)
                         : oc_err(OC_ERR_NOMEM, "out of memory");
    oc_st_writer *w = NULL;
    tensor_gen *gens = NULL;
    if (s == OC_OK)
        s = family_writer(&cfg, p->name, dt, seed, &w, &gens);
    oc_out_file *f = NULL;
    if (s == OC_OK)
        s = oc_out_dir_create(d, "model.safetensors", &f);
    if (s == OC_OK) {
        s = oc_st_writer_write(w, f);
        s = s == OC_OK ? oc_out_commit(f) : (oc_out_abort(f), s);
    }
    oc_st_writer_free(w);
    oc_free(gens);
    if (s != OC_OK) {
        cJSON_Delete(config);
        return s;
    }
    OC_TRY(oc_random_write_json(d, "config.json", config));
    OC_TRY(oc_random_write_json(d, "preprocessor_config.json",
                                g ? gemma_processor(big) : qwen_processor(big)));
    OC_TRY(oc_random_write_json(d, "tokenizer.json",
                                g ? oc_random_tokenizer_json(GEMMA_SPECIAL, 9, 0)
                                  : oc_random_tokenizer_json(QWEN_SPECIAL, 7, 0)));
    cJSON *gc = cJSON_CreateObject();
    int eos_q[2] = {2, 0}, eos_g[2] = {1, 5};
    cJSON_AddItemToObject(gc, "eos_token_id", int_list(g ? eos_g : eos_q, 2));
    return oc_random_write_json(d, "generation_config.json", gc);
}

oc_status oc_write_random_family_model(const char *preset_name, const char *dtype,
                                       uint64_t seed, const char *out_dir) {
    const family_preset *p = find(preset_name);
    oc_dtype dt;
    if (!p)
        return oc_err(OC_ERR_INVALID_ARG, "unknown preset \"%s\"", preset_name);
    if (!oc_dtype_parse(dtype ? dtype : "BF16", &dt) ||
        (dt != OC_DT_F32 && dt != OC_DT_F16 && dt != OC_DT_BF16))
        return oc_err(OC_ERR_INVALID_ARG, "dtype \"%s\": F32, F16 or BF16", dtype);
    oc_out_dir *d = NULL;
    OC_TRY(oc_out_dir_begin(out_dir, NULL, &d));
    oc_status s = write_family(p, dt, seed, d);
    if (s == OC_OK)
        return oc_out_dir_commit(d);
    oc_out_dir_abort(d);
    return s;
}
