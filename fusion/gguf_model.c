/* GGUF text model + mmproj as a Hugging Face folder (gguf_model.h).
 *
 * Metadata to config.json (the text GGUF's llama.* keys and the mmproj's clip.* keys, as
 * convert_hf_to_gguf.py writes them from config.json):
 *   llama.embedding_length / block_count / attention.head_count / head_count_kv /
 *   key_length / feed_forward_length / context_length / attention.layer_norm_rms_epsilon /
 *   rope.freq_base / vocab_size                         -> text_config
 *   clip.vision.embedding_length / block_count / attention.head_count /
 *   feed_forward_length / patch_size / image_size / attention.layer_norm_epsilon
 *                                                       -> vision_config
 *   clip.projector_type "idefics3" -> SmolVLM (clip.vision.projector.scale_factor),
 *                       "mlp"      -> LLaVA (clip.vision.feature_layer: the hidden state
 *                                     used; without it llama.cpp's block_count - 1)
 *   general.file_type F16 / BF16   -> "dtype" (RoPE frequencies rounded as transformers
 *                                     does for a model loaded in that dtype), else float32
 * and to preprocessor_config.json (clip.vision.image_mean / image_std, image_size as the
 * tile or crop, clip.vision.preproc_image_size as SmolVLM's longest edge; the families'
 * resampling: LANCZOS for SmolVLM, BICUBIC for CLIP).
 * Tensor names: llama.cpp's (token_embd, blk.N.attn_q, v.blk.N.ffn_up, mm.0, ...) to
 * transformers' (gguf-py's tensor_mapping.py read backwards). */
#include "gguf_model.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "error.h"
#include "file.h"
#include "kernels.h"

typedef enum { FAM_SMOLVLM, FAM_LLAVA } family;

struct oc_gguf_model {
    char *text_path, *mmproj_path;
    oc_gguf *text, *mmproj;
    family fam;
    cJSON *config, *processor;
    oc_st_tensor *tensors;  /* sorted by name */
    size_t n, cap;
    void **owned;           /* names and converted data */
    size_t n_owned, cap_owned;
    oc_weight_format weights;
};

/* ---- helpers ------------------------------------------------------------------------- */

static oc_status nomem(const char *what) {
    return oc_err(OC_ERR_NOMEM, "%s: out of memory", what);
}

static oc_status own(oc_gguf_model *g, void *p) {
    if (!p)
        return nomem(g->text_path);
    if (g->n_owned == g->cap_owned) {
        size_t nc = g->cap_owned ? 2 * g->cap_owned : 64;
        void **n = oc_realloc(g->owned, nc * sizeof *n);
        if (!n) {
            oc_free(p);
            return nomem(g->text_path);
        }
        g->owned = n;
        g->cap_owned = nc;
    }
    g->owned[g->n_owned++] = p;
    return OC_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int is_mmproj(const oc_gguf *f) {
    const oc_gguf_kv *a = oc_gguf_find_kv(f, "general.architecture");
    return a && a->type == OC_GGUF_STRING && !strcmp(a->str, "clip");
}

/* ---- finding the two files ------------------------------------------------------------ */

int oc_gguf_model_is(const char *path) {
    if (!path)
        return 0;
    if (oc_file_exists(path))
        return oc_gguf_is_file(path);
    if (!oc_is_dir(path))
        return 0;
    char *cfg = oc_path_join(path, "config.json");
    int has_cfg = cfg && oc_file_exists(cfg);
    oc_free(cfg);
    if (has_cfg)
        return 0;
    DIR *d = opendir(path);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = ends_with(e->d_name, ".gguf");
    if (d)
        closedir(d);
    return found;
}

/* The GGUF files of a folder: the one text model (when want_text) and the one mmproj
 * (when mmproj is not NULL) among them. */
static oc_status scan_folder(const char *dir, int want_text, char **text, char **mmproj) {
    DIR *d = opendir(dir);
    if (!d)
        return oc_err(OC_ERR_IO, "%s: cannot open the folder", dir);
    size_t n_text = 0, n_mm = 0;
    oc_status s = OC_OK;
    for (struct dirent *e; s == OC_OK && (e = readdir(d));) {
        if (!ends_with(e->d_name, ".gguf"))
            continue;
        char *p = oc_path_join(dir, e->d_name);
        if (!p) {
            s = nomem(dir);
            break;
        }
        oc_gguf *f = NULL;
        if (!oc_file_exists(p) || oc_gguf_open(p, &f) != OC_OK) {
            oc_free(p); /* not readable as GGUF: not ours to choose */
            continue;
        }
        int mm = is_mmproj(f);
        oc_gguf_close(f);
        char **slot = mm ? mmproj : want_text ? text : NULL;
        size_t *count = mm ? &n_mm : &n_text;
        if (++*count == 1 && slot)
            *slot = p;
        else
            oc_free(p);
    }
    closedir(d);
    if (s != OC_OK)
        return s;
    if (want_text && n_text != 1)
        return oc_err(n_text ? OC_ERR_INVALID_ARG : OC_ERR_IO,
                      n_text ? "%s: %zu text GGUF files: pass the one to load with --model FILE"
                             : "%s: no text GGUF file (only %zu mmproj)", dir,
                      n_text ? n_text : n_mm);
    if (mmproj && n_mm != 1)
        return oc_err(n_mm ? OC_ERR_INVALID_ARG : OC_ERR_IO,
                      n_mm ? "%s: %zu mmproj GGUF files: pass the one to use with --mmproj FILE"
                           : "%s: no mmproj GGUF file (the vision encoder and projector): pass "
                             "it with --mmproj FILE", dir, n_mm);
    return OC_OK;
}

static char *dirname_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? oc_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : oc_strdup(".");
}

static oc_status resolve(oc_gguf_model *g, const char *path, const char *mmproj) {
    if (oc_is_dir(path)) {
        OC_TRY(scan_folder(path, 1, &g->text_path, mmproj ? NULL : &g->mmproj_path));
    } else if (!(g->text_path = oc_strdup(path))) {
        return nomem(path);
    }
    if (mmproj)
        return (g->mmproj_path = oc_strdup(mmproj)) ? OC_OK : nomem(mmproj);
    if (g->mmproj_path)
        return OC_OK;
    char *dir = dirname_of(path);
    if (!dir)
        return nomem(path);
    char *unused = NULL;
    oc_status s = scan_folder(dir, 0, &unused, &g->mmproj_path);
    oc_free(unused);
    oc_free(dir);
    if (s != OC_OK)
        return oc_err_prefix(s, "%s: no --mmproj given, and in its folder: ", path);
    return OC_OK;
}

/* ---- metadata -> config.json --------------------------------------------------------- */

#define GET_INT(f, key, req, def, lo, hi, dst)                                   \
    do {                                                                         \
        int64_t v_ = 0;                                                              \
        OC_TRY(oc_gguf_get_int(f, key, req, def, lo, hi, &v_));                  \
        (dst) = v_;                                                              \
    } while (0)

static int add_num(cJSON *o, const char *k, double v) {
    return cJSON_AddNumberToObject(o, k, v) != NULL;
}

/* The id of a token by its text, -1 if the vocabulary has none. */
static int64_t token_id(const oc_gguf *f, const char *text) {
    const oc_gguf_kv *toks = oc_gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!toks || toks->type != OC_GGUF_ARRAY || toks->elem_type != OC_GGUF_STRING)
        return -1;
    size_t n = strlen(text);
    for (uint64_t i = 0; i < toks->n; i++) {
        size_t len;
        const char *s = oc_gguf_arr_str(toks, i, &len);
        if (len == n && !memcmp(s, text, n))
            return (int64_t)i;
    }
    return -1;
}

static oc_status text_config(oc_gguf_model *g, cJSON *tc) {
    const oc_gguf *f = g->text;
    const char *file = g->text_path;
    const char *arch;
    OC_TRY(oc_gguf_get_str(f, "general.architecture", 1, &arch));
    if (strcmp(arch, "llama"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: general.architecture \"%s\" is not supported "
                      "(llama)", file, arch);
    const char *rs;
    OC_TRY(oc_gguf_get_str(f, "llama.rope.scaling.type", 0, &rs));
    if (rs && strcmp(rs, "none"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: RoPE scaling \"%s\" is not supported", file, rs);
    if (oc_gguf_find_tensor(f, "rope_freqs.weight"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: rope_freqs (RoPE scaling) is not supported",
                      file);
    int64_t C, L, H, KV, HD, VD, I, ctx, V, rot;
    GET_INT(f, "llama.embedding_length", 1, 0, 1, 1 << 16, C);
    GET_INT(f, "llama.block_count", 1, 0, 1, 1024, L);
    GET_INT(f, "llama.attention.head_count", 1, 0, 1, 1024, H);
    GET_INT(f, "llama.attention.head_count_kv", 0, H, 1, 1024, KV);
    GET_INT(f, "llama.attention.key_length", 0, C / H, 2, 4096, HD);
    GET_INT(f, "llama.attention.value_length", 0, HD, 2, 4096, VD);
    GET_INT(f, "llama.feed_forward_length", 1, 0, 1, 1 << 20, I);
    GET_INT(f, "llama.context_length", 0, 2048, 1, 1 << 24, ctx);
    GET_INT(f, "llama.rope.dimension_count", 0, HD, 1, 4096, rot);
    const oc_gguf_kv *toks;
    OC_TRY(oc_gguf_get_array(f, "tokenizer.ggml.tokens", 1, OC_GGUF_STRING, &toks));
    GET_INT(f, "llama.vocab_size", 0, (int64_t)toks->n, 1, 1 << 24, V);
    if (VD != HD)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: value_length %lld differs from key_length "
                      "%lld", file, (long long)VD, (long long)HD);
    if (rot != HD)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: rope.dimension_count %lld differs from the head "
                      "size %lld (partial rotary embeddings are not supported)", file,
                      (long long)rot, (long long)HD);
    if ((uint64_t)V != toks->n)
        return oc_err(OC_ERR_FORMAT, "%s: llama.vocab_size %lld but %llu tokens", file,
                      (long long)V, (unsigned long long)toks->n);
    double eps, theta;
    OC_TRY(oc_gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", 1, 0, &eps));
    OC_TRY(oc_gguf_get_float(f, "llama.rope.freq_base", 0, 10000.0, &theta));
    int64_t bos, eos;
    GET_INT(f, "tokenizer.ggml.bos_token_id", 0, -1, -1, V - 1, bos);
    GET_INT(f, "tokenizer.ggml.eos_token_id", 0, -1, -1, V - 1, eos);
    cJSON *eos_list = cJSON_AddArrayToObject(tc, "eos_token_id");
    if (!eos_list)
        return nomem(file);
    if (eos >= 0)
        cJSON_AddItemToArray(eos_list, cJSON_CreateNumber((double)eos));
    int64_t eot; /* end of turn, where the converter recorded one */
    GET_INT(f, "tokenizer.ggml.eot_token_id", 0, -1, -1, V - 1, eot);
    if (eot >= 0 && eot != eos)
        cJSON_AddItemToArray(eos_list, cJSON_CreateNumber((double)eot));
    int ok = cJSON_AddStringToObject(tc, "model_type", "llama") && add_num(tc, "hidden_size", C) &&
             add_num(tc, "num_hidden_layers", L) && add_num(tc, "num_attention_heads", H) &&
             add_num(tc, "num_key_value_heads", KV) && add_num(tc, "head_dim", HD) &&
             add_num(tc, "intermediate_size", I) && add_num(tc, "vocab_size", V) &&
             add_num(tc, "max_position_embeddings", ctx) && add_num(tc, "rms_norm_eps", eps) &&
             add_num(tc, "rope_theta", theta) && add_num(tc, "bos_token_id", bos) &&
             cJSON_AddBoolToObject(tc, "attention_bias",
                                   oc_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL);
    return ok ? OC_OK : nomem(file);
}

static oc_status vision_config(oc_gguf_model *g, cJSON *vc) {
    const oc_gguf *f = g->mmproj;
    const char *file = g->mmproj_path;
    int has_vision;
    OC_TRY(oc_gguf_get_bool(f, "clip.has_vision_encoder", 1, &has_vision));
    if (!has_vision)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: this mmproj has no vision encoder", file);
    int64_t C, L, H, I, P, S;
    GET_INT(f, "clip.vision.embedding_length", 1, 0, 1, 1 << 16, C);
    GET_INT(f, "clip.vision.block_count", 1, 0, 1, 1024, L);
    GET_INT(f, "clip.vision.attention.head_count", 1, 0, 1, 1024, H);
    GET_INT(f, "clip.vision.feed_forward_length", 1, 0, 1, 1 << 20, I);
    GET_INT(f, "clip.vision.patch_size", 1, 0, 1, 1024, P);
    GET_INT(f, "clip.vision.image_size", 1, 0, 1, 1 << 14, S);
    double eps;
    OC_TRY(oc_gguf_get_float(f, "clip.vision.attention.layer_norm_epsilon", 0,
                             g->fam == FAM_SMOLVLM ? 1e-6 : 1e-5, &eps));
    int gelu, silu;
    OC_TRY(oc_gguf_get_bool(f, "clip.use_gelu", 0, &gelu));
    OC_TRY(oc_gguf_get_bool(f, "clip.use_silu", 0, &silu));
    if (silu)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: a vision tower with SiLU is not supported", file);
    /* SigLIP's GELU is the tanh form (llama.cpp's ggml_gelu); CLIP's is quick_gelu unless
     * use_gelu, which transformers' CLIP computes exactly */
    const char *act = g->fam == FAM_SMOLVLM ? "gelu_pytorch_tanh" : gelu ? "gelu" : "quick_gelu";
    int ok = add_num(vc, "hidden_size", C) && add_num(vc, "num_hidden_layers", L) &&
             add_num(vc, "num_attention_heads", H) && add_num(vc, "intermediate_size", I) &&
             add_num(vc, "patch_size", P) && add_num(vc, "image_size", S) &&
             add_num(vc, "layer_norm_eps", eps) && cJSON_AddStringToObject(vc, "hidden_act", act);
    return ok ? OC_OK : nomem(file);
}

static oc_status family_of(oc_gguf_model *g) {
    const char *pt;
    OC_TRY(oc_gguf_get_str(g->mmproj, "clip.projector_type", 0, &pt));
    if (!pt) {
        int llava;
        OC_TRY(oc_gguf_get_bool(g->mmproj, "clip.has_llava_projector", 0, &llava));
        pt = llava ? "mlp" : "";
    }
    if (!strcmp(pt, "idefics3"))
        g->fam = FAM_SMOLVLM;
    else if (!strcmp(pt, "mlp"))
        g->fam = FAM_LLAVA;
    else
        return oc_err(OC_ERR_UNSUPPORTED, "%s: clip.projector_type \"%s\" is not supported "
                      "(idefics3: SmolVLM; mlp: LLaVA-1.5)", g->mmproj_path, pt);
    return OC_OK;
}

/* The hidden state LLaVA takes (an index into hidden_states, 0 = embeddings). */
static oc_status llava_feature_layer(oc_gguf_model *g, int64_t *out) {
    int64_t L;
    GET_INT(g->mmproj, "clip.vision.block_count", 1, 0, 1, 1024, L);
    const oc_gguf_kv *fl = NULL;
    OC_TRY(oc_gguf_get_array(g->mmproj, "clip.vision.feature_layer", 0, OC_GGUF_I64, &fl));
    if (!fl || fl->n == 0) {
        *out = L - 1;
        return OC_OK;
    }
    if (fl->n > 1)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: %llu vision feature layers (stacked features) "
                      "are not supported", g->mmproj_path, (unsigned long long)fl->n);
    *out = oc_gguf_arr_int(fl, 0);
    if (*out < 1 || *out > L)
        return oc_err(OC_ERR_FORMAT, "%s: clip.vision.feature_layer %lld is outside 1..%lld",
                      g->mmproj_path, (long long)*out, (long long)L);
    return OC_OK;
}

static oc_status build_config(oc_gguf_model *g) {
    cJSON *j = g->config = cJSON_CreateObject();
    cJSON *tc = cJSON_AddObjectToObject(j, "text_config");
    cJSON *vc = cJSON_AddObjectToObject(j, "vision_config");
    if (!tc || !vc)
        return nomem(g->text_path);
    OC_TRY(text_config(g, tc));
    OC_TRY(vision_config(g, vc));
    int64_t ft;
    GET_INT(g->text, "general.file_type", 0, 0, 0, 1 << 16, ft);
    const char *dtype = ft == 1 ? "float16" : ft == 32 ? "bfloat16" : "float32";
    int64_t image = token_id(g->text, "<image>");
    if (image < 0)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: the vocabulary has no <image> token, which "
                      "ocellus places image features by", g->text_path);
    int tied = !oc_gguf_find_tensor(g->text, "output.weight");
    int ok = cJSON_AddStringToObject(j, "dtype", dtype) &&
             cJSON_AddBoolToObject(j, "tie_word_embeddings", tied);
    if (g->fam == FAM_SMOLVLM) {
        int64_t sf;
        GET_INT(g->mmproj, "clip.vision.projector.scale_factor", 0, 2, 1, 64, sf);
        ok = ok && cJSON_AddStringToObject(j, "model_type", "smolvlm") &&
             add_num(j, "image_token_id", (double)image) && add_num(j, "scale_factor", sf);
    } else {
        int64_t fl = 0;
        OC_TRY(llava_feature_layer(g, &fl));
        ok = ok && cJSON_AddStringToObject(j, "model_type", "llava") &&
             add_num(j, "image_token_index", (double)image) &&
             add_num(j, "vision_feature_layer", (double)fl) &&
             cJSON_AddStringToObject(j, "vision_feature_select_strategy", "default") &&
             cJSON_AddStringToObject(j, "projector_hidden_act", "gelu");
    }
    return ok ? OC_OK : nomem(g->text_path);
}

static cJSON *float_array(const oc_gguf_kv *kv) {
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; a && i < kv->n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber(oc_gguf_arr_float(kv, i)))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

static oc_status build_processor(oc_gguf_model *g) {
    const oc_gguf *f = g->mmproj;
    const char *file = g->mmproj_path;
    const oc_gguf_kv *mean, *std;
    OC_TRY(oc_gguf_get_array(f, "clip.vision.image_mean", 1, OC_GGUF_F64, &mean));
    OC_TRY(oc_gguf_get_array(f, "clip.vision.image_std", 1, OC_GGUF_F64, &std));
    if (mean->n != 3 || std->n != 3)
        return oc_err(OC_ERR_FORMAT, "%s: image_mean and image_std need 3 values each (%llu "
                      "and %llu)", file, (unsigned long long)mean->n,
                      (unsigned long long)std->n);
    int64_t S;
    GET_INT(f, "clip.vision.image_size", 1, 0, 1, 1 << 14, S);
    cJSON *j = g->processor = cJSON_CreateObject();
    cJSON *m = float_array(mean), *sd = float_array(std);
    int ok = j && m && cJSON_AddItemToObject(j, "image_mean", m);
    if (!ok)
        cJSON_Delete(m);
    ok = ok && sd && cJSON_AddItemToObject(j, "image_std", sd);
    if (!ok && sd && !sd->prev)
        cJSON_Delete(sd);
    if (g->fam == FAM_SMOLVLM) {
        int64_t longest;
        GET_INT(f, "clip.vision.preproc_image_size", 0, 4 * S, 1, 1 << 16, longest);
        cJSON *size = cJSON_AddObjectToObject(j, "size");
        cJSON *tile = cJSON_AddObjectToObject(j, "max_image_size");
        ok = ok && size && tile && add_num(size, "longest_edge", (double)longest) &&
             add_num(tile, "longest_edge", (double)S) && add_num(j, "resample", 1);
    } else {
        cJSON *size = cJSON_AddObjectToObject(j, "size");
        cJSON *crop = cJSON_AddObjectToObject(j, "crop_size");
        ok = ok && size && crop && add_num(size, "shortest_edge", (double)S) &&
             add_num(crop, "height", (double)S) && add_num(crop, "width", (double)S) &&
             add_num(j, "resample", 3);
    }
    return ok ? OC_OK : nomem(file);
}

/* ---- tensor names ------------------------------------------------------------------------- */

typedef struct {
    const char *gguf, *hf;
} name_pair;

static const name_pair TEXT_LAYER[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},       {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},       {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},       {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},        {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},        {NULL, NULL},
};

static const name_pair VISION_LAYER[] = {
    {"ln1.weight", "layer_norm1.weight"},          {"ln1.bias", "layer_norm1.bias"},
    {"ln2.weight", "layer_norm2.weight"},          {"ln2.bias", "layer_norm2.bias"},
    {"attn_q.weight", "self_attn.q_proj.weight"},  {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},  {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},  {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_out.weight", "self_attn.out_proj.weight"},
    {"attn_out.bias", "self_attn.out_proj.bias"},
    {"ffn_up.weight", "mlp.fc1.weight"},           {"ffn_up.bias", "mlp.fc1.bias"},
    {"ffn_down.weight", "mlp.fc2.weight"},         {"ffn_down.bias", "mlp.fc2.bias"},
    {NULL, NULL},
};

static const name_pair VISION_TOP[] = {
    {"v.patch_embd.weight", "embeddings.patch_embedding.weight"},
    {"v.patch_embd.bias", "embeddings.patch_embedding.bias"},
    {"v.position_embd.weight", "embeddings.position_embedding.weight"},
    {"v.class_embd", "embeddings.class_embedding"},
    {"v.pre_ln.weight", "pre_layrnorm.weight"},    {"v.pre_ln.bias", "pre_layrnorm.bias"},
    {"v.post_ln.weight", "post_layernorm.weight"}, {"v.post_ln.bias", "post_layernorm.bias"},
    {NULL, NULL},
};

static const char *lookup(const name_pair *t, const char *gguf) {
    for (; t->gguf; t++)
        if (!strcmp(t->gguf, gguf))
            return t->hf;
    return NULL;
}

/* "blk.N.rest" (after prefix): N and rest, or 0. */
static int layer_of(const char *name, const char *prefix, unsigned *layer, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n))
        return 0;
    char *end;
    unsigned long l = strtoul(name + n, &end, 10);
    if (end == name + n || *end != '.' || l > 100000)
        return 0;
    *layer = (unsigned)l;
    *rest = end + 1;
    return 1;
}

/* The transformers name of a text-model tensor ("" when unknown). */
static void text_name(const oc_gguf_model *g, const char *name, char *out, size_t n) {
    const char *pre = g->fam == FAM_SMOLVLM ? "model.text_model." : "language_model.model.";
    unsigned l;
    const char *rest, *hf;
    out[0] = 0;
    if (!strcmp(name, "token_embd.weight"))
        snprintf(out, n, "%sembed_tokens.weight", pre);
    else if (!strcmp(name, "output_norm.weight"))
        snprintf(out, n, "%snorm.weight", pre);
    else if (!strcmp(name, "output.weight"))
        snprintf(out, n, "%s", g->fam == FAM_SMOLVLM ? "lm_head.weight"
                                                      : "language_model.lm_head.weight");
    else if (layer_of(name, "blk.", &l, &rest) && (hf = lookup(TEXT_LAYER, rest)))
        snprintf(out, n, "%slayers.%u.%s", pre, l, hf);
}

/* The same for the mmproj; swap_ffn: this layer's ffn_up / ffn_down hold fc2 / fc1 (the
 * legacy LLaVA converter swapped the names; the shapes tell). */
static void vision_name(const oc_gguf_model *g, const char *name, int swap_ffn, char *out,
                        size_t n) {
    int smol = g->fam == FAM_SMOLVLM;
    const char *pre = smol ? "model.vision_model." : "vision_tower.vision_model.";
    unsigned l;
    const char *rest, *hf;
    out[0] = 0;
    if ((hf = lookup(VISION_TOP, name))) {
        snprintf(out, n, "%s%s", pre, hf);
    } else if (layer_of(name, "v.blk.", &l, &rest) && (hf = lookup(VISION_LAYER, rest))) {
        if (swap_ffn && !strncmp(rest, "ffn_", 4))
            hf = lookup(VISION_LAYER, !strncmp(rest, "ffn_up", 6)
                                          ? (ends_with(rest, "bias") ? "ffn_down.bias"
                                                                     : "ffn_down.weight")
                                          : (ends_with(rest, "bias") ? "ffn_up.bias"
                                                                     : "ffn_up.weight"));
        snprintf(out, n, "%sencoder.layers.%u.%s", pre, l, hf);
    } else if (smol && !strcmp(name, "mm.model.fc.weight")) {
        snprintf(out, n, "model.connector.modality_projection.proj.weight");
    } else if (!smol && (!strncmp(name, "mm.0.", 5) || !strncmp(name, "mm.2.", 5)) &&
               (!strcmp(name + 5, "weight") || !strcmp(name + 5, "bias"))) {
        snprintf(out, n, "multi_modal_projector.linear_%c.%s", name[3] == '0' ? '1' : '2',
                 name + 5);
    }
}

/* Whether layer l's ffn_up maps I -> C (fc2's shape) instead of C -> I. */
static int ffn_swapped(const oc_gguf *f, unsigned l) {
    char n[64];
    snprintf(n, sizeof n, "v.blk.%u.ffn_up.weight", l);
    const oc_gguf_tensor *t = oc_gguf_find_tensor(f, n);
    int64_t C;
    if (oc_gguf_get_int(f, "clip.vision.embedding_length", 0, 0, 0, INT64_MAX, &C) != OC_OK)
        return 0;
    return t && t->ndim == 2 && t->ne[1] == C && t->ne[0] != C;
}

/* ---- tensors ----------------------------------------------------------------------------- */

/* Rows of a Q or K projection (weight or bias) from llama.cpp's order (each head's rotary
 * pairs interleaved: row 2i + j holds transformers' row j * D/2 + i) back to
 * transformers' (rotate_half halves); a copy, any type (rows are whole blocks). */
static oc_status unpermute(oc_gguf_model *g, oc_st_tensor *t, int64_t n_head) {
    int64_t rows = t->shape[0];
    if (n_head <= 0 || rows % n_head || (rows / n_head) % 2)
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has %lld rows, not a whole number of "
                      "%lld heads of an even size", t->file, t->name, (long long)rows,
                      (long long)n_head);
    size_t rb = t->nbytes / (size_t)rows, D = (size_t)(rows / n_head), half = D / 2;
    unsigned char *dst = oc_malloc(t->nbytes);
    OC_TRY(own(g, dst));
    const unsigned char *src = t->data;
    for (size_t h = 0; h < (size_t)n_head; h++)
        for (size_t j = 0; j < 2; j++)
            for (size_t i = 0; i < half; i++)
                memcpy(dst + (h * D + j * half + i) * rb, src + (h * D + 2 * i + j) * rb, rb);
    t->data = dst;
    return OC_OK;
}

/* A type without a kernel, converted row by row: to Q8_0 (weights AUTO or Q8_0, rows a
 * multiple of 32) or to F32. */
static oc_status convert(oc_gguf_model *g, oc_st_tensor *t, uint32_t type) {
    int64_t cols = t->shape[t->ndim - 1];
    size_t rows = t->numel / (size_t)cols;
    size_t src_rb = t->nbytes / rows;
    int q8 = (g->weights == OC_WEIGHTS_AUTO || g->weights == OC_WEIGHTS_Q8_0) && t->ndim >= 2 &&
             cols % OC_Q8_BLOCK == 0;
    size_t dst_rb = q8 ? (size_t)cols / OC_Q8_BLOCK * OC_Q8_BYTES : (size_t)cols * sizeof(float);
    size_t total;
    if (!oc_mul_ok(dst_rb, rows, &total))
        return oc_err(OC_ERR_LIMIT, "%s: tensor '%s' is too large", t->file, t->name);
    unsigned char *dst = oc_malloc(total);
    float *row = q8 ? oc_malloc((size_t)cols * sizeof(float)) : NULL;
    oc_status s = dst && (row || !q8) ? OC_OK
                                      : oc_err(OC_ERR_NOMEM, "%s: out of memory converting '%s'",
                                               t->file, t->name);
    for (size_t r = 0; s == OC_OK && r < rows; r++) {
        const unsigned char *in = (const unsigned char *)t->data + r * src_rb;
        float *f = q8 ? row : (float *)(dst + r * dst_rb);
        s = oc_ggml_dequantize(type, in, f, (size_t)cols);
        for (size_t i = 0; s == OC_OK && i < (size_t)cols; i++)
            if (!isfinite(f[i])) /* a scale of NaN or infinity */
                s = oc_err(OC_ERR_FORMAT, "row %zu holds NaN or infinite values", r);
        if (s == OC_OK && q8)
            oc_quantize_q8_0(dst + r * dst_rb, f, (size_t)cols);
    }
    oc_free(row);
    if (s != OC_OK) {
        oc_free(dst);
        return oc_err_prefix(s, "%s: tensor '%s': ", t->file, t->name);
    }
    OC_TRY(own(g, dst));
    t->data = dst;
    t->nbytes = total;
    t->dtype = q8 ? OC_DT_Q8_0 : OC_DT_F32;
    return OC_OK;
}

static oc_status add_tensor(oc_gguf_model *g, const oc_gguf_tensor *gt, const char *file,
                            const char *hf, int64_t permute_heads) {
    if (g->n == g->cap) {
        size_t nc = g->cap ? 2 * g->cap : 128;
        oc_st_tensor *n = oc_realloc(g->tensors, nc * sizeof *n);
        if (!n)
            return nomem(file);
        g->tensors = n;
        g->cap = nc;
    }
    oc_st_tensor *t = &g->tensors[g->n];
    memset(t, 0, sizeof *t);
    char *name = oc_strdup(hf);
    OC_TRY(own(g, name));
    t->name = name;
    t->file = file;
    t->ndim = gt->ndim;
    for (int k = 0; k < gt->ndim; k++) /* row-major: the slowest dimension first */
        t->shape[k] = gt->ne[gt->ndim - 1 - k];
    t->numel = (size_t)gt->numel;
    t->data = gt->data;
    t->nbytes = gt->nbytes;
    uint32_t type = gt->type;
    int native = 1;
    switch (type) {
    case OC_GGML_F32: t->dtype = OC_DT_F32; break;
    case OC_GGML_F16: t->dtype = OC_DT_F16; break;
    case OC_GGML_BF16: t->dtype = OC_DT_BF16; break;
    case OC_GGML_Q8_0: t->dtype = OC_DT_Q8_0; break;
    default:
        if (!oc_ggml_can_dequantize(type))
            return oc_err(OC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (F32, F16, BF16, "
                          "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K are supported)", file,
                          gt->name, oc_ggml_type_name(type));
        native = 0;
    }
    g->n++;
    if (permute_heads)
        OC_TRY(unpermute(g, t, permute_heads));
    if (!native)
        OC_TRY(convert(g, t, type));
    return OC_OK;
}

static oc_status add_text_tensors(oc_gguf_model *g) {
    int64_t H, KV;
    GET_INT(g->text, "llama.attention.head_count", 1, 0, 1, 1024, H);
    GET_INT(g->text, "llama.attention.head_count_kv", 0, H, 1, 1024, KV);
    for (size_t i = 0; i < oc_gguf_tensor_count(g->text); i++) {
        const oc_gguf_tensor *t = oc_gguf_tensor_at(g->text, i);
        char hf[256];
        text_name(g, t->name, hf, sizeof hf);
        if (!hf[0])
            return oc_err(OC_ERR_UNSUPPORTED, "%s: tensor '%s' is not one of a llama text model",
                          g->text_path, t->name);
        int64_t heads = strstr(hf, "q_proj.") ? H : strstr(hf, "k_proj.") ? KV : 0;
        OC_TRY(add_tensor(g, t, g->text_path, hf, heads));
    }
    return OC_OK;
}

static oc_status add_vision_tensors(oc_gguf_model *g) {
    for (size_t i = 0; i < oc_gguf_tensor_count(g->mmproj); i++) {
        const oc_gguf_tensor *t = oc_gguf_tensor_at(g->mmproj, i);
        unsigned l;
        const char *rest;
        int swap = g->fam == FAM_LLAVA && layer_of(t->name, "v.blk.", &l, &rest) &&
                   ffn_swapped(g->mmproj, l);
        char hf[256];
        vision_name(g, t->name, swap, hf, sizeof hf);
        if (!hf[0])
            return oc_err(OC_ERR_UNSUPPORTED, "%s: tensor '%s' is not one of a %s mmproj",
                          g->mmproj_path, t->name,
                          g->fam == FAM_SMOLVLM ? "SmolVLM (idefics3)" : "LLaVA (mlp)");
        OC_TRY(add_tensor(g, t, g->mmproj_path, hf, 0));
    }
    return OC_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const oc_st_tensor *)a)->name, ((const oc_st_tensor *)b)->name);
}

oc_status oc_gguf_model_open(const char *path, const char *mmproj, oc_weight_format weights,
                             oc_gguf_model **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_gguf_model_open: NULL argument");
    oc_gguf_model *g = oc_calloc(1, sizeof *g);
    if (!g)
        return nomem(path);
    g->weights = weights;
    oc_status s = resolve(g, path, mmproj);
    if (s == OC_OK)
        s = oc_gguf_open(g->text_path, &g->text);
    if (s == OC_OK && is_mmproj(g->text))
        s = oc_err(OC_ERR_INVALID_ARG, "%s: this is an mmproj (vision encoder and projector): "
                   "pass it with --mmproj, and the text model with --model", g->text_path);
    if (s == OC_OK)
        s = oc_gguf_open(g->mmproj_path, &g->mmproj);
    if (s == OC_OK && !is_mmproj(g->mmproj))
        s = oc_err(OC_ERR_INVALID_ARG, "%s: not an mmproj (general.architecture is not "
                   "\"clip\")", g->mmproj_path);
    if (s == OC_OK)
        s = family_of(g);
    if (s == OC_OK)
        s = build_config(g);
    if (s == OC_OK)
        s = build_processor(g);
    if (s == OC_OK)
        s = add_text_tensors(g);
    if (s == OC_OK)
        s = add_vision_tensors(g);
    if (s == OC_OK) {
        qsort(g->tensors, g->n, sizeof *g->tensors, cmp_name);
        for (size_t i = 1; i < g->n && s == OC_OK; i++)
            if (!strcmp(g->tensors[i - 1].name, g->tensors[i].name))
                s = oc_err(OC_ERR_FORMAT, "%s: two tensors map to '%s'", g->mmproj_path,
                           g->tensors[i].name);
    }
    if (s != OC_OK) {
        oc_gguf_model_close(g);
        return s;
    }
    *out = g;
    return OC_OK;
}

void oc_gguf_model_close(oc_gguf_model *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n_owned; i++)
        oc_free(g->owned[i]);
    oc_free(g->owned);
    oc_free(g->tensors);
    cJSON_Delete(g->config);
    cJSON_Delete(g->processor);
    oc_gguf_close(g->text);
    oc_gguf_close(g->mmproj);
    oc_free(g->text_path);
    oc_free(g->mmproj_path);
    oc_free(g);
}

const char *oc_gguf_model_path(const oc_gguf_model *g) { return g ? g->text_path : ""; }
const oc_gguf *oc_gguf_model_text(const oc_gguf_model *g) { return g ? g->text : NULL; }
const cJSON *oc_gguf_model_config(const oc_gguf_model *g) { return g ? g->config : NULL; }
const cJSON *oc_gguf_model_processor(const oc_gguf_model *g) { return g ? g->processor : NULL; }

const oc_st_tensor *oc_gguf_model_find(const oc_gguf_model *g, const char *name) {
    if (!g || !name)
        return NULL;
    oc_st_tensor key;
    key.name = name;
    return bsearch(&key, g->tensors, g->n, sizeof *g->tensors, cmp_name);
}
