/* Model folder loading: config, tokenizer, image processor and the weights, looked up
 * by the tensor names the families use, each shape checked against the config. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "model_internal.h"
#include "prompt.h"
#include "tokenizer.h"

/* Tensor-name prefixes by part, in the spellings checkpoints use. */
static const char *const SMOL_VISION[] = {"model.vision_model.", "vision_model.", NULL};
static const char *const SMOL_TEXT[] = {"model.text_model.", "text_model.",
                                        "model.language_model.", NULL};
static const char *const SMOL_CONN[] = {"model.connector.", "connector.", NULL};
static const char *const LLAVA_VISION[] = {"vision_tower.vision_model.", "vision_tower.",
                                           "model.vision_tower.vision_model.",
                                           "model.vision_tower.", NULL};
static const char *const LLAVA_TEXT[] = {"language_model.model.", "model.language_model.",
                                         "language_model.", NULL};
static const char *const LLAVA_PROJ[] = {"multi_modal_projector.",
                                         "model.multi_modal_projector.", NULL};
static const char *const ROOT[] = {"", NULL};

static const oc_st_tensor *find_tensor(const oc_model *m, const char *const *prefixes,
                                       const char *name, char *full, size_t full_size) {
    for (size_t i = 0; prefixes[i]; i++) {
        snprintf(full, full_size, "%s%s", prefixes[i], name);
        const oc_st_tensor *t = m->gguf ? oc_gguf_model_find(m->gguf, full)
                                        : oc_st_set_find(m->tensors, full);
        if (t)
            return t;
    }
    snprintf(full, full_size, "%s%s", prefixes[0], name);
    return NULL;
}

static oc_status missing(const oc_model *m, const char *full) {
    return oc_err(OC_ERR_FORMAT, "%s: the weights have no tensor '%s'", m->dir, full);
}

/* Q8_0 comes from GGUF files (safetensors has no such dtype). */
static oc_status check_float(const oc_st_tensor *t) {
    if (t->dtype != OC_DT_F32 && t->dtype != OC_DT_F16 && t->dtype != OC_DT_BF16 &&
        t->dtype != OC_DT_Q8_0)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (F32, F16, BF16 only)",
                      t->file, t->name, oc_dtype_name(t->dtype));
    return OC_OK;
}

static oc_status own(oc_model *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        size_t nc = m->cap_owned ? 2 * m->cap_owned : 64;
        void **n = oc_realloc(m->owned, nc * sizeof *n);
        if (!n) {
            oc_free(p);
            return oc_err(OC_ERR_NOMEM, "out of memory");
        }
        m->owned = n;
        m->cap_owned = nc;
    }
    m->owned[m->n_owned++] = p;
    return OC_OK;
}

/* An F32 copy of a tensor of any float dtype (norm weights, biases, embeddings).
 * The copies are checked for NaN and infinities: a hostile or damaged file is refused at
 * load with the tensor's name rather than answering garbage. The large matrices, used in
 * place from the mapping, are not scanned (that would read every weight at load). */
static oc_status to_owned(oc_model *m, const oc_st_tensor *t, const float **out) {
    float *p = oc_malloc(t->numel * sizeof(float));
    if (!p)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory for '%s'", t->file, t->name);
    oc_status s = oc_st_to_f32(t, p, t->numel);
    for (size_t i = 0; s == OC_OK && i < t->numel; i++)
        if (!isfinite(p[i]))
            s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' holds NaN or infinite values "
                       "(element %zu is %g)", t->file, t->name, i, (double)p[i]);
    if (s != OC_OK) {
        oc_free(p);
        return s;
    }
    OC_TRY(own(m, p));
    *out = p;
    return OC_OK;
}

/* A float vector of n elements (any shape with n elements is refused unless 1-D or the
 * given 2-D shape: dims d0 x d1 when d1 > 0). */
static oc_status get_vec(oc_model *m, const char *const *pre, const char *name, int64_t d0,
                         int64_t d1, int required, const float **out) {
    char full[256];
    const oc_st_tensor *t = find_tensor(m, pre, name, full, sizeof full);
    *out = NULL;
    if (!t)
        return required ? missing(m, full) : OC_OK;
    OC_TRY(check_float(t));
    if (d1 > 0)
        OC_TRY(oc_st_check_shape(t, 2, (int64_t[]){d0, d1}));
    else
        OC_TRY(oc_st_check_shape(t, 1, (int64_t[]){d0}));
    return to_owned(m, t, out);
}

/* The weight format params.weights asks for, made from a stored tensor when it differs:
 * the mapping is used in place whenever the stored dtype is the format. With Q8_0 the
 * vision tower and projector stay as stored, as llama.cpp keeps an mmproj in F16: an
 * image's features quantized on top of the text model lose too much (2-4% of the logits
 * on the tiny models, against under 2% with only the language model quantized). */
static oc_status convert_weight(oc_model *m, const oc_st_tensor *t, oc_weight *w) {
    oc_weight_format f = m->params.weights;
    if (f == OC_WEIGHTS_Q8_0 && m->loading_vision)
        f = OC_WEIGHTS_AUTO;
    size_t n = t->numel;
    int q8 = f == OC_WEIGHTS_Q8_0 && w->cols % OC_Q8_BLOCK == 0;
    oc_dtype want = f == OC_WEIGHTS_F32 ? OC_DT_F32 : f == OC_WEIGHTS_BF16 ? OC_DT_BF16
                  : q8                  ? OC_DT_Q8_0
                                        : w->dtype;
    w->bf16_products = want == OC_DT_BF16 && f == OC_WEIGHTS_BF16;
    if (want == w->dtype)
        return OC_OK;
    float *f32 = oc_malloc(n * sizeof(float));
    if (!f32)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory converting '%s'", t->file, t->name);
    oc_status s = oc_st_to_f32(t, f32, n);
    for (size_t i = 0; s == OC_OK && want == OC_DT_Q8_0 && i < n; i++)
        if (!isfinite(f32[i])) /* Q8_0's scale would be NaN */
            s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' holds NaN or infinite values (element "
                       "%zu is %g)", t->file, t->name, i, (double)f32[i]);
    void *out = f32;
    if (s == OC_OK && want != OC_DT_F32) {
        size_t bytes = want == OC_DT_BF16 ? n * 2 : n / OC_Q8_BLOCK * OC_Q8_BYTES;
        if (!(out = oc_malloc(bytes)))
            s = oc_err(OC_ERR_NOMEM, "%s: out of memory converting '%s'", t->file, t->name);
        else if (want == OC_DT_BF16)
            oc_convert_bf16(out, f32, n);
        else
            oc_quantize_q8_0(out, f32, n);
        oc_free(f32);
    }
    if (s != OC_OK) {
        oc_free(out);
        return s;
    }
    OC_TRY(own(m, out));
    if (w->data == t->data) /* not an aligned copy: the stored bytes are not read again */
        oc_release_pages(t->data, t->nbytes);
    w->data = out;
    w->dtype = want;
    return OC_OK;
}

/* t, whose shape has been checked, as a (rows, cols) weight. */
static oc_status view(oc_model *m, const oc_st_tensor *t, int64_t rows, int64_t cols,
                      oc_weight *out) {
    out->rows = rows;
    out->cols = cols;
    out->dtype = t->dtype;
    out->data = t->data;
    if (t->dtype != OC_DT_Q8_0 && (uintptr_t)t->data % oc_dtype_size(t->dtype)) {
        const float *copy;
        OC_TRY(to_owned(m, t, &copy));
        out->data = copy;
        out->dtype = OC_DT_F32;
    }
    return convert_weight(m, t, out);
}

/* A (rows, cols) matrix view into the mapping, in the format params.weights asks for;
 * conv kernels (rows, c, p, p) are viewed as (rows, c*p*p). F32 data that is not 4-byte
 * aligned is copied. */
static oc_status get_mat(oc_model *m, const char *const *pre, const char *name, int64_t rows,
                         int64_t cols, oc_weight *out) {
    char full[256];
    const oc_st_tensor *t = find_tensor(m, pre, name, full, sizeof full);
    if (!t)
        return missing(m, full);
    OC_TRY(check_float(t));
    if (t->ndim == 4) {
        int64_t p = t->shape[2];
        OC_TRY(oc_st_check_shape(t, 4, (int64_t[]){rows, 3, p, p}));
        if (3 * p * p != cols)
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has patch %lld, expected %lld values "
                          "per patch", t->file, t->name, (long long)p, (long long)cols);
    } else {
        OC_TRY(oc_st_check_shape(t, 2, (int64_t[]){rows, cols}));
    }
    return view(m, t, rows, cols, out);
}

static oc_status load_vit_layer(oc_model *m, const char *const *pre, uint32_t l,
                                oc_vit_layer *L) {
    const oc_vit_config *c = &m->cfg.vision;
    int64_t C = c->hidden, I = c->intermediate;
    char n[128];
#define VEC(field, suffix, size)                                              \
    snprintf(n, sizeof n, "encoder.layers.%u.%s", l, suffix);                 \
    OC_TRY(get_vec(m, pre, n, size, 0, 1, &L->field))
#define MAT(field, suffix, r, cc)                                             \
    snprintf(n, sizeof n, "encoder.layers.%u.%s", l, suffix);                 \
    OC_TRY(get_mat(m, pre, n, r, cc, &L->field))
    VEC(ln1_w, "layer_norm1.weight", C);
    VEC(ln1_b, "layer_norm1.bias", C);
    VEC(ln2_w, "layer_norm2.weight", C);
    VEC(ln2_b, "layer_norm2.bias", C);
    MAT(q, "self_attn.q_proj.weight", C, C);
    MAT(k, "self_attn.k_proj.weight", C, C);
    MAT(v, "self_attn.v_proj.weight", C, C);
    MAT(o, "self_attn.out_proj.weight", C, C);
    VEC(q_b, "self_attn.q_proj.bias", C);
    VEC(k_b, "self_attn.k_proj.bias", C);
    VEC(v_b, "self_attn.v_proj.bias", C);
    VEC(o_b, "self_attn.out_proj.bias", C);
    MAT(fc1, "mlp.fc1.weight", I, C);
    VEC(fc1_b, "mlp.fc1.bias", I);
    MAT(fc2, "mlp.fc2.weight", C, I);
    VEC(fc2_b, "mlp.fc2.bias", C);
#undef VEC
#undef MAT
    return OC_OK;
}

static oc_status load_vit(oc_model *m, const char *const *pre) {
    const oc_vit_config *c = &m->cfg.vision;
    oc_vit_weights *w = &m->vit;
    int64_t C = c->hidden, K = (int64_t)c->channels * c->patch * c->patch;
    int clip = c->kind == OC_VIT_CLIP;
    OC_TRY(get_mat(m, pre, "embeddings.patch_embedding.weight", C, K, &w->patch_w));
    OC_TRY(get_vec(m, pre, "embeddings.patch_embedding.bias", C, 0, !clip, &w->patch_b));
    OC_TRY(get_vec(m, pre, "embeddings.position_embedding.weight", oc_vit_seq(c), C, 1,
                   &w->pos_emb));
    if (clip) {
        OC_TRY(get_vec(m, pre, "embeddings.class_embedding", C, 0, 1, &w->class_emb));
        OC_TRY(get_vec(m, pre, "pre_layrnorm.weight", C, 0, 1, &w->pre_ln_w));
        OC_TRY(get_vec(m, pre, "pre_layrnorm.bias", C, 0, 1, &w->pre_ln_b));
    }
    /* LLaVA never uses CLIP's post-layernorm (features come from an inner layer). */
    OC_TRY(get_vec(m, pre, "post_layernorm.weight", C, 0, !clip, &w->post_ln_w));
    OC_TRY(get_vec(m, pre, "post_layernorm.bias", C, 0, !clip, &w->post_ln_b));
    w->layers = oc_calloc(c->layers, sizeof *w->layers);
    if (!w->layers)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < c->layers; l++)
        OC_TRY(load_vit_layer(m, pre, l, &w->layers[l]));
    return OC_OK;
}

static oc_status load_llama(oc_model *m, const char *const *pre, const char *const *head_pre,
                            const char *head_name) {
    const oc_llama_config *c = &m->cfg.text;
    oc_llama_weights *w = &m->llm;
    int64_t C = c->hidden, HD = (int64_t)c->heads * c->head_dim,
            KVD = (int64_t)c->kv_heads * c->head_dim, I = c->intermediate, V = c->vocab;
    OC_TRY(get_mat(m, pre, "embed_tokens.weight", V, C, &w->embed));
    OC_TRY(get_vec(m, pre, "norm.weight", C, 0, 1, &w->norm));
    char full[256];
    if (find_tensor(m, head_pre, head_name, full, sizeof full))
        OC_TRY(get_mat(m, head_pre, head_name, V, C, &w->lm_head));
    else if (c->tied)
        w->lm_head = w->embed;
    else
        return missing(m, full);
    w->layers = oc_calloc(c->layers, sizeof *w->layers);
    if (!w->layers)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (uint32_t l = 0; l < c->layers; l++) {
        oc_llama_layer *L = &w->layers[l];
        char n[128];
#define VEC(field, suffix, size, req)                                         \
    snprintf(n, sizeof n, "layers.%u.%s", l, suffix);                         \
    OC_TRY(get_vec(m, pre, n, size, 0, req, &L->field))
#define MAT(field, suffix, r, cc)                                             \
    snprintf(n, sizeof n, "layers.%u.%s", l, suffix);                         \
    OC_TRY(get_mat(m, pre, n, r, cc, &L->field))
        VEC(in_norm, "input_layernorm.weight", C, 1);
        VEC(post_norm, "post_attention_layernorm.weight", C, 1);
        MAT(q, "self_attn.q_proj.weight", HD, C);
        MAT(k, "self_attn.k_proj.weight", KVD, C);
        MAT(v, "self_attn.v_proj.weight", KVD, C);
        MAT(o, "self_attn.o_proj.weight", C, HD);
        VEC(q_b, "self_attn.q_proj.bias", HD, c->attn_bias);
        VEC(k_b, "self_attn.k_proj.bias", KVD, c->attn_bias);
        VEC(v_b, "self_attn.v_proj.bias", KVD, c->attn_bias);
        VEC(o_b, "self_attn.o_proj.bias", C, c->attn_bias);
        MAT(gate, "mlp.gate_proj.weight", I, C);
        MAT(up, "mlp.up_proj.weight", I, C);
        MAT(down, "mlp.down_proj.weight", C, I);
#undef VEC
#undef MAT
    }
    return OC_OK;
}

static oc_status load_image_side(oc_model *m) {
    const oc_model_config *c = &m->cfg;
    if (c->family == OC_FAMILY_SMOLVLM) {
        OC_TRY(load_vit(m, SMOL_VISION));
        int64_t in = (int64_t)c->vision.hidden * c->scale_factor * c->scale_factor;
        return get_mat(m, SMOL_CONN, "modality_projection.proj.weight", c->text.hidden, in,
                       &m->proj);
    }
    OC_TRY(load_vit(m, LLAVA_VISION));
    int64_t T = c->text.hidden;
    OC_TRY(get_mat(m, LLAVA_PROJ, "linear_1.weight", T, c->vision.hidden, &m->mm1));
    OC_TRY(get_vec(m, LLAVA_PROJ, "linear_1.bias", T, 0, 0, &m->mm1_b));
    OC_TRY(get_mat(m, LLAVA_PROJ, "linear_2.weight", T, T, &m->mm2));
    return get_vec(m, LLAVA_PROJ, "linear_2.bias", T, 0, 0, &m->mm2_b);
}

static oc_status load_weights(oc_model *m) {
    if (oc_family_tensors(m->cfg.family, &(size_t){0}))
        return oc_model_load_family_weights(m);
    m->loading_vision = 1;
    oc_status s = load_image_side(m);
    m->loading_vision = 0;
    OC_TRY(s);
    if (m->cfg.family == OC_FAMILY_SMOLVLM)
        return load_llama(m, SMOL_TEXT, ROOT, "lm_head.weight");
    static const char *const head_pre[] = {"language_model.", "", NULL};
    return load_llama(m, LLAVA_TEXT, head_pre, "lm_head.weight");
}

/* preprocessor_config.json, or the "image_processor" of processor_config.json. */
static oc_status load_processor(oc_model *m) {
    const char *names[] = {"preprocessor_config.json", "processor_config.json"};
    for (int i = 0; i < 2; i++) {
        char *path = oc_path_join(m->dir, names[i]);
        if (!path)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        if (!oc_file_exists(path)) {
            oc_free(path);
            continue;
        }
        cJSON *j;
        oc_status s = oc_json_load(path, 1u << 20, &j);
        if (s == OC_OK) {
            const cJSON *ip = oc_json_get(j, "image_processor");
            const cJSON *src = cJSON_IsObject(ip) ? ip : j;
            oc_family f = m->cfg.family;
            s = f == OC_FAMILY_SMOLVLM    ? oc_idefics3_proc_from_json(src, path, &m->smol_proc)
                : f == OC_FAMILY_QWEN25VL ? oc_qwen_proc_from_json(src, path, &m->qwen_proc)
                : f == OC_FAMILY_GEMMA3   ? oc_gemma_proc_from_json(src, path, &m->gemma_proc)
                                          : oc_clip_proc_from_json(src, path, &m->clip_proc);
            cJSON_Delete(j);
        }
        oc_free(path);
        return s;
    }
    return oc_err(OC_ERR_IO, "%s: no preprocessor_config.json or processor_config.json",
                  m->dir);
}

static oc_status check_processor(const oc_model *m) {
    uint32_t S = m->cfg.vision.image_size;
    const oc_qwen_proc *qp = &m->qwen_proc;
    const oc_qvit_config *qv = &m->cfg.qvit;
    if (m->cfg.family == OC_FAMILY_QWEN25VL &&
        (qp->patch != qv->patch || qp->merge != qv->merge || qp->temporal != qv->temporal))
        return oc_err(OC_ERR_FORMAT, "%s: the processor's patch_size %u, merge_size %u, "
                      "temporal_patch_size %u differ from the vision tower's %u, %u, %u",
                      m->dir, qp->patch, qp->merge, qp->temporal, qv->patch, qv->merge,
                      qv->temporal);
    if (m->cfg.family == OC_FAMILY_GEMMA3 &&
        (m->gemma_proc.height != S || m->gemma_proc.width != S))
        return oc_err(OC_ERR_FORMAT, "%s: the processor's size %ux%u differs from the vision "
                      "image_size %u", m->dir, m->gemma_proc.width, m->gemma_proc.height, S);
    if (m->cfg.family == OC_FAMILY_SMOLVLM && m->smol_proc.tile != S)
        return oc_err(OC_ERR_FORMAT, "%s: max_image_size.longest_edge %u differs from the "
                      "vision image_size %u", m->dir, m->smol_proc.tile, S);
    if (m->cfg.family == OC_FAMILY_LLAVA &&
        (m->clip_proc.crop_h != S || m->clip_proc.crop_w != S))
        return oc_err(OC_ERR_FORMAT, "%s: crop_size %ux%u differs from the vision image_size "
                      "%u", m->dir, m->clip_proc.crop_h, m->clip_proc.crop_w, S);
    return OC_OK;
}

static oc_status load_tokenizer(oc_model *m) {
    char *path = oc_path_join(m->dir, "tokenizer.json");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = oc_tokenizer_load_file(path, &m->tok);
    oc_free(path);
    return s;
}

oc_model_params oc_model_default_params(void) {
    oc_model_params p = {
        .n_threads = 0,
        .image_limits = oc_image_default_limits(),
        .max_images = 16,
        .max_tiles = 64,
        .max_context = 0,
    };
    return p;
}

static void describe(oc_model *m) {
    const oc_model_config *c = &m->cfg;
    if (c->family == OC_FAMILY_QWEN25VL) {
        snprintf(m->desc, sizeof m->desc,
                 "qwen2_5_vl: vision %u layers x %u (patch %u, merge %u, window %u), text %u "
                 "layers x %u (%u heads, %u kv), vocab %u", c->qvit.depth, c->qvit.hidden,
                 c->qvit.patch, c->qvit.merge, c->qvit.window, c->text.layers, c->text.hidden,
                 c->text.heads, c->text.kv_heads, c->text.vocab);
        return;
    }
    if (c->family == OC_FAMILY_GEMMA3) {
        snprintf(m->desc, sizeof m->desc,
                 "gemma3: vision %u layers x %u (%ux%u, patch %u, %u tokens), text %u layers x "
                 "%u (%u heads, %u kv, window %u), vocab %u", c->vision.layers,
                 c->vision.hidden, c->vision.image_size, c->vision.image_size, c->vision.patch,
                 c->mm_tokens, c->text.layers, c->text.hidden, c->text.heads,
                 c->text.kv_heads, c->text.sliding_window, c->text.vocab);
        return;
    }
    snprintf(m->desc, sizeof m->desc,
             "%s: vision %u layers x %u (%ux%u, patch %u), text %u layers x %u (%u heads, "
             "%u kv), vocab %u",
             c->family == OC_FAMILY_SMOLVLM ? "smolvlm" : "llava", c->vision.layers,
             c->vision.hidden, c->vision.image_size, c->vision.image_size, c->vision.patch,
             c->text.layers, c->text.hidden, c->text.heads, c->text.kv_heads, c->text.vocab);
}

/* A Hugging Face folder: config, processor, tokenizer and the safetensors files. */
static oc_status open_folder(oc_model *m) {
    OC_TRY(oc_config_load(m->dir, &m->cfg));
    OC_TRY(load_processor(m));
    OC_TRY(load_tokenizer(m));
    return oc_st_set_open(m->dir, &m->tensors);
}

/* A GGUF pair: the same from its metadata (gguf_model.c). */
static oc_status open_gguf(oc_model *m, const char *path) {
    OC_TRY(oc_gguf_model_open(path, m->params.mmproj, m->params.weights, &m->gguf));
    oc_free(m->dir); /* errors name the text GGUF from here on */
    if (!(m->dir = oc_strdup(oc_gguf_model_path(m->gguf))))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    OC_TRY(oc_config_from_json(oc_gguf_model_config(m->gguf), NULL, m->dir, &m->cfg));
    const cJSON *pj = oc_gguf_model_processor(m->gguf);
    OC_TRY(m->cfg.family == OC_FAMILY_SMOLVLM
               ? oc_idefics3_proc_from_json(pj, m->dir, &m->smol_proc)
               : oc_clip_proc_from_json(pj, m->dir, &m->clip_proc));
    return oc_tokenizer_load_gguf(oc_gguf_model_text(m->gguf), &m->tok);
}

oc_status oc_model_load(const char *dir, const oc_model_params *params, oc_model **out) {
    if (!dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_model_load: NULL argument");
    int gguf = oc_gguf_model_is(dir);
    if (!gguf && oc_file_exists(dir))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: not a model folder or a GGUF file", dir);
    if (!gguf && !oc_is_dir(dir))
        return oc_err(OC_ERR_IO, "%s: not a model folder (no such directory)", dir);
    oc_model *m = oc_calloc(1, sizeof *m);
    if (!m)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    m->params = params ? *params : oc_model_default_params();
    m->params.mmproj = NULL; /* the caller's string is used only while loading */
    oc_status s = (m->dir = oc_strdup(dir)) ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if ((unsigned)m->params.weights > OC_WEIGHTS_Q8_0)
        s = oc_err(OC_ERR_INVALID_ARG, "oc_model_load: unknown weight format %d",
                   (int)m->params.weights);
    if (s == OC_OK && !(m->tuners = oc_calloc(OC_TUNE_KINDS, sizeof *m->tuners)))
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK) {
        if (gguf) {
            m->params.mmproj = params ? params->mmproj : NULL;
            s = open_gguf(m, dir);
            m->params.mmproj = NULL;
        } else {
            s = open_folder(m);
        }
    }
    if (s == OC_OK)
        s = check_processor(m);
    if (s == OC_OK)
        s = oc_prompt_check_tokens(&m->cfg, m->tok, m->dir);
    if (s == OC_OK)
        s = load_weights(m);
    if (s != OC_OK) {
        oc_model_free(m);
        return s;
    }
    m->context = m->cfg.text.max_pos;
    if (m->params.max_context && m->params.max_context < m->context)
        m->context = m->params.max_context;
    describe(m);
    *out = m;
    return OC_OK;
}

void oc_model_free(oc_model *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        oc_free(m->owned[i]);
    oc_free(m->owned);
    oc_free(m->vit.layers);
    oc_free(m->qvit.blocks);
    oc_free(m->llm.layers);
    oc_free(m->tuners);
    oc_tokenizer_free(m->tok);
    oc_st_set_close(m->tensors);
    oc_gguf_model_close(m->gguf);
    oc_free(m->dir);
    oc_free(m);
}

const char *oc_model_describe(const oc_model *m) { return m ? m->desc : ""; }
const oc_tokenizer *oc_model_tokenizer(const oc_model *m) { return m ? m->tok : NULL; }

oc_status oc_model_preprocess(const oc_model *m, const oc_image *img, float **pixels,
                              uint32_t *n_tiles, uint32_t *rows, uint32_t *cols) {
    if (m->cfg.family == OC_FAMILY_SMOLVLM)
        return oc_idefics3_preprocess(&m->smol_proc, img, m->params.max_tiles, pixels, n_tiles,
                                      rows, cols);
    if (m->cfg.family == OC_FAMILY_QWEN25VL) {
        /* max_tiles tiles' worth of 448 x 448 pixels (the published max_pixels is 64) */
        uint64_t max_patches = (uint64_t)m->params.max_tiles * 1024;
        *n_tiles = 1;
        return oc_qwen_preprocess(&m->qwen_proc, img, max_patches, pixels, rows, cols);
    }
    if (m->cfg.family == OC_FAMILY_GEMMA3)
        return oc_gemma_preprocess(&m->gemma_proc, img, m->params.max_tiles, pixels, n_tiles,
                                   rows, cols);
    *rows = *cols = 0;
    *n_tiles = 1;
    return oc_clip_preprocess(&m->clip_proc, img, pixels);
}

size_t oc_model_pixel_count(const oc_model *m, uint32_t n_tiles, uint32_t rows, uint32_t cols) {
    if (m->cfg.family == OC_FAMILY_QWEN25VL)
        return (size_t)rows * cols * oc_qvit_patch_dim(&m->cfg.qvit);
    size_t S = m->cfg.vision.image_size;
    return (size_t)n_tiles * 3 * S * S;
}

static uint64_t wbytes(const oc_weight *w) {
    return (uint64_t)oc_weight_row_bytes(w) * (uint64_t)w->rows;
}

void oc_model_weight_bytes(const oc_model *m, uint64_t *text_per_token,
                           uint64_t *vision_per_tile) {
    uint64_t t = 0, v = 0;
    for (uint32_t l = 0; m && l < m->cfg.text.layers; l++) {
        const oc_llama_layer *L = &m->llm.layers[l];
        t += wbytes(&L->q) + wbytes(&L->k) + wbytes(&L->v) + wbytes(&L->o) +
             wbytes(&L->gate) + wbytes(&L->up) + wbytes(&L->down);
    }
    if (m)
        t += wbytes(&m->llm.lm_head);
    for (uint32_t l = 0; m && l < m->cfg.vision.layers; l++) {
        const oc_vit_layer *L = &m->vit.layers[l];
        v += wbytes(&L->q) + wbytes(&L->k) + wbytes(&L->v) + wbytes(&L->o) + wbytes(&L->fc1) +
             wbytes(&L->fc2);
    }
    for (uint32_t l = 0; m && m->qvit.blocks && l < m->cfg.qvit.depth; l++) {
        const oc_qvit_block *B = &m->qvit.blocks[l];
        v += wbytes(&B->q) + wbytes(&B->k) + wbytes(&B->v) + wbytes(&B->proj) +
             wbytes(&B->gate) + wbytes(&B->up) + wbytes(&B->down);
    }
    if (m) {
        oc_family f = m->cfg.family;
        v += wbytes(&m->vit.patch_w) + wbytes(&m->qvit.patch_w);
        v += f == OC_FAMILY_SMOLVLM    ? wbytes(&m->proj)
             : f == OC_FAMILY_QWEN25VL ? wbytes(&m->qvit.mlp0) + wbytes(&m->qvit.mlp2)
             : f == OC_FAMILY_GEMMA3   ? wbytes(&m->gemma_proj)
                                       : wbytes(&m->mm1) + wbytes(&m->mm2);
    }
    if (text_per_token)
        *text_per_token = t;
    if (vision_per_tile)
        *vision_per_tile = v;
}

/* ---- for the table-driven loading of the other families (model_families.c) ---------- */

const oc_st_tensor *oc_model_find_tensor(const oc_model *m, const char *const *prefixes,
                                         const char *name, char *full, size_t full_size) {
    return find_tensor(m, prefixes, name, full, full_size);
}

oc_status oc_model_missing(const oc_model *m, const char *full) { return missing(m, full); }

oc_status oc_model_check_float(const oc_st_tensor *t) { return check_float(t); }

oc_status oc_model_view(oc_model *m, const oc_st_tensor *t, int64_t rows, int64_t cols,
                        oc_weight *out) {
    return view(m, t, rows, cols, out);
}

oc_status oc_model_f32_copy(oc_model *m, const oc_st_tensor *t, const float **out) {
    return to_owned(m, t, out);
}

oc_status oc_model_own(oc_model *m, void *p) { return own(m, p); }
