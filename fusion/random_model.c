/* Random-weight model folders with the exact shapes of published checkpoints, so that
 * speed can be measured without a download (`ocellus bench`). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "model_internal.h"
#include "output.h"
#include "sample.h"
#include "safetensors.h"

typedef struct {
    const char *name;
    /* vision */
    int v_hidden, v_layers, v_heads, v_inter, patch, image;
    int scale;
    /* text */
    int t_hidden, t_layers, t_heads, t_kv, t_inter, vocab, max_pos;
    double theta;
    int longest_edge; /* processor size.longest_edge */
} preset;

static const preset PRESETS[] = {
    {"smolvlm-256m", 768, 12, 12, 3072, 16, 512, 4, 576, 30, 9, 3, 1536, 49280, 8192, 100000.0,
     2048},
    {"smolvlm-tiny", 64, 2, 4, 128, 8, 64, 2, 64, 2, 4, 2, 160, 360, 4096, 100000.0, 192},
};

static const char *const SPECIAL[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                      "<fake_token_around_image>", "<image>",
                                      "<end_of_utterance>", "<global-img>"};
#define N_SPECIAL_FIXED 7
#define N_SPECIAL (N_SPECIAL_FIXED + 36)

typedef struct {
    oc_st_writer *w;
    oc_dtype dtype;
    oc_rng rng;
    float **bufs;
    size_t n_bufs;
    oc_status status;
} gen;

static float gauss(oc_rng *r) { return (float)oc_rng_normal(r); }

/* kind: 'w' weight ~ N(0, 1/fan_in) (fan_in = last dims), 'n' norm ~ 1, 'b' bias ~ 0. */
static void tensor(gen *g, const char *name, char kind, int nd, int64_t d0, int64_t d1,
                   int64_t d2, int64_t d3) {
    if (g->status != OC_OK)
        return;
    int64_t shape[4] = {d0, d1, d2, d3};
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)shape[i];
    float *p = oc_malloc(n * sizeof(float));
    float **nb = oc_realloc(g->bufs, (g->n_bufs + 1) * sizeof *nb);
    if (!p || !nb) {
        oc_free(p);
        g->status = oc_err(OC_ERR_NOMEM, "out of memory for tensor %s", name);
        return;
    }
    g->bufs = nb;
    g->bufs[g->n_bufs++] = p;
    double std = kind == 'w' ? 1.0 / sqrt((double)n / (double)d0) : 0.02;
    for (size_t i = 0; i < n; i++)
        p[i] = (kind == 'n' ? 1.0f : 0.0f) + (float)std * gauss(&g->rng);
    g->status = oc_st_writer_add_f32_as(g->w, name, g->dtype, nd, shape, p);
}

static void vision_tensors(gen *g, const preset *p) {
    const char *pre = "model.vision_model.";
    char n[192];
    int64_t C = p->v_hidden, I = p->v_inter, g2 = (int64_t)(p->image / p->patch);
    snprintf(n, sizeof n, "%sembeddings.patch_embedding.weight", pre);
    tensor(g, n, 'w', 4, C, 3, p->patch, p->patch);
    snprintf(n, sizeof n, "%sembeddings.patch_embedding.bias", pre);
    tensor(g, n, 'b', 1, C, 0, 0, 0);
    snprintf(n, sizeof n, "%sembeddings.position_embedding.weight", pre);
    tensor(g, n, 'b', 2, g2 * g2, C, 0, 0);
    for (int l = 0; l < p->v_layers; l++) {
        static const char *const sq[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.self_attn.%s.weight", pre, l, sq[i]);
            tensor(g, n, 'w', 2, C, C, 0, 0);
            snprintf(n, sizeof n, "%sencoder.layers.%d.self_attn.%s.bias", pre, l, sq[i]);
            tensor(g, n, 'b', 1, C, 0, 0, 0);
        }
        for (int i = 1; i <= 2; i++) {
            snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm%d.weight", pre, l, i);
            tensor(g, n, 'n', 1, C, 0, 0, 0);
            snprintf(n, sizeof n, "%sencoder.layers.%d.layer_norm%d.bias", pre, l, i);
            tensor(g, n, 'b', 1, C, 0, 0, 0);
        }
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc1.weight", pre, l);
        tensor(g, n, 'w', 2, I, C, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc1.bias", pre, l);
        tensor(g, n, 'b', 1, I, 0, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc2.weight", pre, l);
        tensor(g, n, 'w', 2, C, I, 0, 0);
        snprintf(n, sizeof n, "%sencoder.layers.%d.mlp.fc2.bias", pre, l);
        tensor(g, n, 'b', 1, C, 0, 0, 0);
    }
    snprintf(n, sizeof n, "%spost_layernorm.weight", pre);
    tensor(g, n, 'n', 1, C, 0, 0, 0);
    snprintf(n, sizeof n, "%spost_layernorm.bias", pre);
    tensor(g, n, 'b', 1, C, 0, 0, 0);
}

static void text_tensors(gen *g, const preset *p) {
    const char *pre = "model.text_model.";
    char n[192];
    int64_t C = p->t_hidden, D = C / p->t_heads, I = p->t_inter;
    int64_t rows[4] = {p->t_heads * D, p->t_kv * D, p->t_kv * D, C};
    int64_t cols[4] = {C, C, C, p->t_heads * D};
    static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    snprintf(n, sizeof n, "%sembed_tokens.weight", pre);
    tensor(g, n, 'w', 2, p->vocab, C, 0, 0);
    for (int l = 0; l < p->t_layers; l++) {
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "%slayers.%d.self_attn.%s.weight", pre, l, proj[i]);
            tensor(g, n, 'w', 2, rows[i], cols[i], 0, 0);
        }
        snprintf(n, sizeof n, "%slayers.%d.mlp.gate_proj.weight", pre, l);
        tensor(g, n, 'w', 2, I, C, 0, 0);
        snprintf(n, sizeof n, "%slayers.%d.mlp.up_proj.weight", pre, l);
        tensor(g, n, 'w', 2, I, C, 0, 0);
        snprintf(n, sizeof n, "%slayers.%d.mlp.down_proj.weight", pre, l);
        tensor(g, n, 'w', 2, C, I, 0, 0);
        snprintf(n, sizeof n, "%slayers.%d.input_layernorm.weight", pre, l);
        tensor(g, n, 'n', 1, C, 0, 0, 0);
        snprintf(n, sizeof n, "%slayers.%d.post_attention_layernorm.weight", pre, l);
        tensor(g, n, 'n', 1, C, 0, 0, 0);
    }
    snprintf(n, sizeof n, "%snorm.weight", pre);
    tensor(g, n, 'n', 1, C, 0, 0, 0);
    int64_t in = (int64_t)p->v_hidden * p->scale * p->scale;
    tensor(g, "model.connector.modality_projection.proj.weight", 'w', 2, C, in, 0, 0);
}

static cJSON *config_json(const preset *p) {
    cJSON *j = cJSON_CreateObject(), *v = cJSON_CreateObject(), *t = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("SmolVLMForConditionalGeneration"));
    cJSON_AddStringToObject(j, "model_type", "smolvlm");
    cJSON_AddNumberToObject(j, "image_token_id", 4);
    cJSON_AddNumberToObject(j, "scale_factor", p->scale);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", 1);
    cJSON_AddNumberToObject(v, "hidden_size", p->v_hidden);
    cJSON_AddNumberToObject(v, "num_hidden_layers", p->v_layers);
    cJSON_AddNumberToObject(v, "num_attention_heads", p->v_heads);
    cJSON_AddNumberToObject(v, "intermediate_size", p->v_inter);
    cJSON_AddNumberToObject(v, "patch_size", p->patch);
    cJSON_AddNumberToObject(v, "image_size", p->image);
    cJSON_AddNumberToObject(v, "num_channels", 3);
    cJSON_AddNumberToObject(v, "layer_norm_eps", 1e-6);
    cJSON_AddStringToObject(v, "hidden_act", "gelu_pytorch_tanh");
    cJSON_AddStringToObject(v, "model_type", "smolvlm_vision");
    cJSON_AddItemToObject(j, "vision_config", v);
    cJSON_AddStringToObject(t, "model_type", "llama");
    cJSON_AddNumberToObject(t, "hidden_size", p->t_hidden);
    cJSON_AddNumberToObject(t, "num_hidden_layers", p->t_layers);
    cJSON_AddNumberToObject(t, "num_attention_heads", p->t_heads);
    cJSON_AddNumberToObject(t, "num_key_value_heads", p->t_kv);
    cJSON_AddNumberToObject(t, "head_dim", p->t_hidden / p->t_heads);
    cJSON_AddNumberToObject(t, "intermediate_size", p->t_inter);
    cJSON_AddNumberToObject(t, "vocab_size", p->vocab);
    cJSON_AddNumberToObject(t, "max_position_embeddings", p->max_pos);
    cJSON_AddNumberToObject(t, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(t, "rope_theta", p->theta);
    cJSON_AddStringToObject(t, "hidden_act", "silu");
    cJSON_AddBoolToObject(t, "tie_word_embeddings", 1);
    cJSON_AddNumberToObject(t, "bos_token_id", 1);
    cJSON_AddNumberToObject(t, "eos_token_id", 2);
    cJSON_AddItemToObject(j, "text_config", t);
    return j;
}

static cJSON *processor_json(const preset *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "image_processor_type", "SmolVLMImageProcessor");
    cJSON_AddBoolToObject(j, "do_convert_rgb", 1);
    cJSON_AddBoolToObject(j, "do_image_splitting", 1);
    cJSON_AddBoolToObject(j, "do_normalize", 1);
    cJSON_AddBoolToObject(j, "do_pad", 1);
    cJSON_AddBoolToObject(j, "do_rescale", 1);
    cJSON_AddBoolToObject(j, "do_resize", 1);
    cJSON_AddNumberToObject(j, "resample", 1);
    cJSON_AddNumberToObject(j, "rescale_factor", 1.0 / 255.0);
    float half[3] = {0.5f, 0.5f, 0.5f};
    cJSON_AddItemToObject(j, "image_mean", cJSON_CreateFloatArray(half, 3));
    cJSON_AddItemToObject(j, "image_std", cJSON_CreateFloatArray(half, 3));
    cJSON *mx = cJSON_AddObjectToObject(j, "max_image_size");
    cJSON_AddNumberToObject(mx, "longest_edge", p->image);
    cJSON *sz = cJSON_AddObjectToObject(j, "size");
    cJSON_AddNumberToObject(sz, "longest_edge", p->longest_edge);
    return j;
}

/* GPT-2's byte-to-unicode map: printable bytes map to themselves, others to 256+. */
static uint32_t byte_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return (uint32_t)b;
    int k = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255)))
            k++;
    return 256u + (uint32_t)k;
}

static void utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A byte-level BPE tokenizer.json with SmolVLM's special tokens and no merges. */
static cJSON *tokenizer_json(void) {
    return oc_random_tokenizer_json(SPECIAL, N_SPECIAL_FIXED, N_SPECIAL - N_SPECIAL_FIXED);
}

/* The special tokens (ids 0..), then n_rowcol of SmolVLM's <row_R_col_C>, then the 256
 * bytes. */
cJSON *oc_random_tokenizer_json(const char *const *special, int n_fixed, int n_rowcol) {
    cJSON *j = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(j, "added_tokens");
    cJSON_AddStringToObject(j, "version", "1.0");
    cJSON *model = cJSON_CreateObject(), *vocab = cJSON_AddObjectToObject(model, "vocab");
    char name[64];
    int n_special = n_fixed + n_rowcol;
    for (int i = 0; i < n_special; i++) {
        if (i < n_fixed)
            snprintf(name, sizeof name, "%s", special[i]);
        else
            snprintf(name, sizeof name, "<row_%d_col_%d>", (i - n_fixed) / 6 + 1,
                     (i - n_fixed) % 6 + 1);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", name);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
        cJSON_AddNumberToObject(vocab, name, i);
    }
    for (int b = 0; b < 256; b++) {
        utf8(name, byte_char(b));
        cJSON_AddNumberToObject(vocab, name, n_special + b);
    }
    cJSON_AddNullToObject(j, "normalizer");
    cJSON *pt = cJSON_AddObjectToObject(j, "pre_tokenizer");
    cJSON_AddStringToObject(pt, "type", "ByteLevel");
    cJSON_AddBoolToObject(pt, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pt, "trim_offsets", 1);
    cJSON_AddBoolToObject(pt, "use_regex", 1);
    cJSON_AddNullToObject(j, "post_processor");
    cJSON *dec = cJSON_AddObjectToObject(j, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
    cJSON_AddBoolToObject(dec, "trim_offsets", 1);
    cJSON_AddBoolToObject(dec, "use_regex", 1);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToObject(j, "model", model);
    return j;
}

oc_status oc_random_write_json(oc_out_dir *d, const char *name, cJSON *j) {
    char *text = j ? cJSON_Print(j) : NULL;
    oc_status s = text ? oc_out_dir_write(d, name, text, strlen(text))
                       : oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    cJSON_free(text);
    cJSON_Delete(j);
    return s;
}

/* The folder's files, into the new folder d. */
static oc_status write_model(gen *g, const preset *p, oc_out_dir *d) {
    oc_out_file *f;
    OC_TRY(oc_out_dir_create(d, "model.safetensors", &f));
    oc_status s = oc_st_writer_write(g->w, f);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    OC_TRY(oc_out_commit(f));
    OC_TRY(oc_random_write_json(d, "config.json", config_json(p)));
    OC_TRY(oc_random_write_json(d, "preprocessor_config.json", processor_json(p)));
    OC_TRY(oc_random_write_json(d, "tokenizer.json", tokenizer_json()));
    cJSON *gc = cJSON_CreateObject();
    cJSON_AddNumberToObject(gc, "bos_token_id", 1);
    cJSON *eos = cJSON_AddArrayToObject(gc, "eos_token_id");
    cJSON_AddItemToArray(eos, cJSON_CreateNumber(2));
    cJSON_AddItemToArray(eos, cJSON_CreateNumber(5));
    return oc_random_write_json(d, "generation_config.json", gc);
}

oc_status oc_write_random_model(const char *preset_name, const char *dtype, uint64_t seed,
                                const char *out_dir) {
    if (!preset_name || !out_dir)
        return oc_err(OC_ERR_INVALID_ARG, "oc_write_random_model: NULL argument");
    if (oc_random_family_preset(preset_name))
        return oc_write_random_family_model(preset_name, dtype, seed, out_dir);
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (!strcmp(PRESETS[i].name, preset_name))
            p = &PRESETS[i];
    if (!p)
        return oc_err(OC_ERR_INVALID_ARG, "unknown preset \"%s\" (smolvlm-256m, smolvlm-tiny, "
                      "qwen2.5-vl-3b, qwen2.5-vl-tiny, gemma-3-4b, gemma-3-tiny)", preset_name);
    gen g = {.status = OC_OK};
    if (!oc_dtype_parse(dtype ? dtype : "BF16", &g.dtype) ||
        (g.dtype != OC_DT_F32 && g.dtype != OC_DT_F16 && g.dtype != OC_DT_BF16))
        return oc_err(OC_ERR_INVALID_ARG, "dtype \"%s\": F32, F16 or BF16", dtype);
    oc_rng_seed(&g.rng, seed);
    OC_TRY(oc_st_writer_new(&g.w));
    vision_tensors(&g, p);
    text_tensors(&g, p);
    oc_out_dir *d = NULL;
    if (g.status == OC_OK)
        g.status = oc_out_dir_begin(out_dir, NULL, &d);
    if (g.status == OC_OK)
        g.status = write_model(&g, p, d);
    if (d && g.status == OC_OK)
        g.status = oc_out_dir_commit(d);
    else
        oc_out_dir_abort(d);
    oc_st_writer_free(g.w);
    for (size_t i = 0; i < g.n_bufs; i++)
        oc_free(g.bufs[i]);
    oc_free(g.bufs);
    return g.status;
}
