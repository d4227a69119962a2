/* The tensors of Qwen2.5-VL and Gemma 3: one table per family, in the names of the
 * published checkpoints (Qwen2.5-VL-3B-Instruct, gemma-3-4b-it) and accepting every other
 * spelling they come in (transformers 5's "model.visual.", "model.language_model.", ...).
 * Loading walks the table (shapes from the config, every one checked); the random-model
 * writer walks the same table (random_families.c). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "model_internal.h"

#define QB(f) offsetof(oc_qvit_block, f)
#define QW(f) offsetof(oc_qvit_weights, f)
#define VL(f) offsetof(oc_vit_layer, f)
#define VW(f) offsetof(oc_vit_weights, f)
#define LL(f) offsetof(oc_llama_layer, f)
#define LW(f) offsetof(oc_llama_weights, f)
#define MD(f) offsetof(oc_model, f)

enum { V = OC_PART_VISION, P = OC_PART_PROJ, T = OC_PART_TEXT, H = OC_PART_HEAD };
enum { MAT = OC_TK_MAT, VEC = OC_TK_VEC, NORM = OC_TK_NORM, GNORM = OC_TK_GNORM,
       BIAS = OC_TK_BIAS };
enum { X0 = OC_TX_NONE, X3 = OC_TX_SPLIT3, XT = OC_TX_TRANSPOSE };
enum { REQ = OC_TO_REQUIRED, ABIAS = OC_TO_ATTN_BIAS, UNTIED = OC_TO_UNTIED };
#define D(...) {__VA_ARGS__}

/* Qwen2_5_VLForConditionalGeneration */
static const oc_tensor_spec QWEN[] = {
    {"patch_embed.proj.weight", V, OC_TB_QVIT, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VCH, OC_D_VT, OC_D_VP, OC_D_VP), QW(patch_w)},
    {"blocks.%u.norm1.weight", V, OC_TB_QVIT_BLOCK, NORM, X0, REQ, D(OC_D_VC), QB(norm1)},
    {"blocks.%u.attn.qkv.weight", V, OC_TB_QVIT_BLOCK, MAT, X3, REQ, D(OC_D_V3C, OC_D_VC),
     QB(q)},
    {"blocks.%u.attn.qkv.bias", V, OC_TB_QVIT_BLOCK, BIAS, X3, REQ, D(OC_D_V3C), QB(q_b)},
    {"blocks.%u.attn.proj.weight", V, OC_TB_QVIT_BLOCK, MAT, X0, REQ, D(OC_D_VC, OC_D_VC),
     QB(proj)},
    {"blocks.%u.attn.proj.bias", V, OC_TB_QVIT_BLOCK, BIAS, X0, REQ, D(OC_D_VC), QB(proj_b)},
    {"blocks.%u.norm2.weight", V, OC_TB_QVIT_BLOCK, NORM, X0, REQ, D(OC_D_VC), QB(norm2)},
    {"blocks.%u.mlp.gate_proj.weight", V, OC_TB_QVIT_BLOCK, MAT, X0, REQ, D(OC_D_VI, OC_D_VC),
     QB(gate)},
    {"blocks.%u.mlp.gate_proj.bias", V, OC_TB_QVIT_BLOCK, BIAS, X0, REQ, D(OC_D_VI),
     QB(gate_b)},
    {"blocks.%u.mlp.up_proj.weight", V, OC_TB_QVIT_BLOCK, MAT, X0, REQ, D(OC_D_VI, OC_D_VC),
     QB(up)},
    {"blocks.%u.mlp.up_proj.bias", V, OC_TB_QVIT_BLOCK, BIAS, X0, REQ, D(OC_D_VI), QB(up_b)},
    {"blocks.%u.mlp.down_proj.weight", V, OC_TB_QVIT_BLOCK, MAT, X0, REQ, D(OC_D_VC, OC_D_VI),
     QB(down)},
    {"blocks.%u.mlp.down_proj.bias", V, OC_TB_QVIT_BLOCK, BIAS, X0, REQ, D(OC_D_VC),
     QB(down_b)},
    {"merger.ln_q.weight", V, OC_TB_QVIT, NORM, X0, REQ, D(OC_D_VC), QW(merger_norm)},
    {"merger.mlp.0.weight", V, OC_TB_QVIT, MAT, X0, REQ, D(OC_D_VMC, OC_D_VMC), QW(mlp0)},
    {"merger.mlp.0.bias", V, OC_TB_QVIT, BIAS, X0, REQ, D(OC_D_VMC), QW(mlp0_b)},
    {"merger.mlp.2.weight", V, OC_TB_QVIT, MAT, X0, REQ, D(OC_D_VOUT, OC_D_VMC), QW(mlp2)},
    {"merger.mlp.2.bias", V, OC_TB_QVIT, BIAS, X0, REQ, D(OC_D_VOUT), QW(mlp2_b)},
    {"embed_tokens.weight", T, OC_TB_LLM, MAT, X0, REQ, D(OC_D_V, OC_D_C), LW(embed)},
    {"layers.%u.input_layernorm.weight", T, OC_TB_LLM_LAYER, NORM, X0, REQ, D(OC_D_C),
     LL(in_norm)},
    {"layers.%u.self_attn.q_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_HD, OC_D_C), LL(q)},
    {"layers.%u.self_attn.q_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, REQ, D(OC_D_HD),
     LL(q_b)},
    {"layers.%u.self_attn.k_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_KVD, OC_D_C), LL(k)},
    {"layers.%u.self_attn.k_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, REQ, D(OC_D_KVD),
     LL(k_b)},
    {"layers.%u.self_attn.v_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_KVD, OC_D_C), LL(v)},
    {"layers.%u.self_attn.v_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, REQ, D(OC_D_KVD),
     LL(v_b)},
    {"layers.%u.self_attn.o_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_C, OC_D_HD), LL(o)},
    {"layers.%u.post_attention_layernorm.weight", T, OC_TB_LLM_LAYER, NORM, X0, REQ, D(OC_D_C),
     LL(post_norm)},
    {"layers.%u.mlp.gate_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_I, OC_D_C),
     LL(gate)},
    {"layers.%u.mlp.up_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_I, OC_D_C),
     LL(up)},
    {"layers.%u.mlp.down_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_C, OC_D_I),
     LL(down)},
    {"norm.weight", T, OC_TB_LLM, NORM, X0, REQ, D(OC_D_C), LW(norm)},
    {"lm_head.weight", H, OC_TB_LLM, MAT, X0, UNTIED, D(OC_D_V, OC_D_C), LW(lm_head)},
};

/* Gemma3ForConditionalGeneration (the SigLIP head, unused by Gemma 3, is not read) */
static const oc_tensor_spec GEMMA[] = {
    {"embeddings.patch_embedding.weight", V, OC_TB_VIT, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VCH, OC_D_VP, OC_D_VP), VW(patch_w)},
    {"embeddings.patch_embedding.bias", V, OC_TB_VIT, BIAS, X0, REQ, D(OC_D_VC), VW(patch_b)},
    {"embeddings.position_embedding.weight", V, OC_TB_VIT, VEC, X0, REQ,
     D(OC_D_VSEQ, OC_D_VC), VW(pos_emb)},
    {"encoder.layers.%u.layer_norm1.weight", V, OC_TB_VIT_LAYER, NORM, X0, REQ, D(OC_D_VC),
     VL(ln1_w)},
    {"encoder.layers.%u.layer_norm1.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(ln1_b)},
    {"encoder.layers.%u.self_attn.q_proj.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VC), VL(q)},
    {"encoder.layers.%u.self_attn.q_proj.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(q_b)},
    {"encoder.layers.%u.self_attn.k_proj.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VC), VL(k)},
    {"encoder.layers.%u.self_attn.k_proj.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(k_b)},
    {"encoder.layers.%u.self_attn.v_proj.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VC), VL(v)},
    {"encoder.layers.%u.self_attn.v_proj.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(v_b)},
    {"encoder.layers.%u.self_attn.out_proj.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VC), VL(o)},
    {"encoder.layers.%u.self_attn.out_proj.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ,
     D(OC_D_VC), VL(o_b)},
    {"encoder.layers.%u.layer_norm2.weight", V, OC_TB_VIT_LAYER, NORM, X0, REQ, D(OC_D_VC),
     VL(ln2_w)},
    {"encoder.layers.%u.layer_norm2.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(ln2_b)},
    {"encoder.layers.%u.mlp.fc1.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VI, OC_D_VC), VL(fc1)},
    {"encoder.layers.%u.mlp.fc1.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VI),
     VL(fc1_b)},
    {"encoder.layers.%u.mlp.fc2.weight", V, OC_TB_VIT_LAYER, MAT, X0, REQ,
     D(OC_D_VC, OC_D_VI), VL(fc2)},
    {"encoder.layers.%u.mlp.fc2.bias", V, OC_TB_VIT_LAYER, BIAS, X0, REQ, D(OC_D_VC),
     VL(fc2_b)},
    {"post_layernorm.weight", V, OC_TB_VIT, NORM, X0, REQ, D(OC_D_VC), VW(post_ln_w)},
    {"post_layernorm.bias", V, OC_TB_VIT, BIAS, X0, REQ, D(OC_D_VC), VW(post_ln_b)},
    {"mm_soft_emb_norm.weight", P, OC_TB_MODEL, GNORM, X0, REQ, D(OC_D_VC), MD(gemma_norm)},
    {"mm_input_projection_weight", P, OC_TB_MODEL, MAT, XT, REQ, D(OC_D_VC, OC_D_C),
     MD(gemma_proj)},
    {"embed_tokens.weight", T, OC_TB_LLM, MAT, X0, REQ, D(OC_D_V, OC_D_C), LW(embed)},
    {"layers.%u.input_layernorm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ, D(OC_D_C),
     LL(in_norm)},
    {"layers.%u.self_attn.q_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_HD, OC_D_C), LL(q)},
    {"layers.%u.self_attn.q_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, ABIAS, D(OC_D_HD),
     LL(q_b)},
    {"layers.%u.self_attn.k_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_KVD, OC_D_C), LL(k)},
    {"layers.%u.self_attn.k_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, ABIAS, D(OC_D_KVD),
     LL(k_b)},
    {"layers.%u.self_attn.v_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_KVD, OC_D_C), LL(v)},
    {"layers.%u.self_attn.v_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, ABIAS, D(OC_D_KVD),
     LL(v_b)},
    {"layers.%u.self_attn.o_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ,
     D(OC_D_C, OC_D_HD), LL(o)},
    {"layers.%u.self_attn.o_proj.bias", T, OC_TB_LLM_LAYER, BIAS, X0, ABIAS, D(OC_D_C),
     LL(o_b)},
    {"layers.%u.self_attn.q_norm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ, D(OC_D_HEAD),
     LL(q_norm)},
    {"layers.%u.self_attn.k_norm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ, D(OC_D_HEAD),
     LL(k_norm)},
    {"layers.%u.post_attention_layernorm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ,
     D(OC_D_C), LL(attn_out_norm)},
    {"layers.%u.pre_feedforward_layernorm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ,
     D(OC_D_C), LL(post_norm)},
    {"layers.%u.mlp.gate_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_I, OC_D_C),
     LL(gate)},
    {"layers.%u.mlp.up_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_I, OC_D_C),
     LL(up)},
    {"layers.%u.mlp.down_proj.weight", T, OC_TB_LLM_LAYER, MAT, X0, REQ, D(OC_D_C, OC_D_I),
     LL(down)},
    {"layers.%u.post_feedforward_layernorm.weight", T, OC_TB_LLM_LAYER, GNORM, X0, REQ,
     D(OC_D_C), LL(mlp_out_norm)},
    {"norm.weight", T, OC_TB_LLM, GNORM, X0, REQ, D(OC_D_C), LW(norm)},
    {"lm_head.weight", H, OC_TB_LLM, MAT, X0, UNTIED, D(OC_D_V, OC_D_C), LW(lm_head)},
};

static const char *const QWEN_PRE[OC_PARTS][3] = {
    {"visual.", "model.visual.", NULL},
    {NULL},
    {"model.", "model.language_model.", NULL},
    {"", NULL},
};
static const char *const GEMMA_PRE[OC_PARTS][5] = {
    {"vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_tower.",
     "model.vision_tower.", NULL},
    {"multi_modal_projector.", "model.multi_modal_projector.", NULL},
    {"language_model.model.", "model.language_model.", "language_model.", NULL},
    {"language_model.", "", NULL},
};

const oc_tensor_spec *oc_family_tensors(oc_family f, size_t *n) {
    if (f == OC_FAMILY_QWEN25VL) {
        *n = sizeof QWEN / sizeof QWEN[0];
        return QWEN;
    }
    if (f == OC_FAMILY_GEMMA3) {
        *n = sizeof GEMMA / sizeof GEMMA[0];
        return GEMMA;
    }
    *n = 0;
    return NULL;
}

const char *const *oc_family_prefixes(oc_family f, oc_part part) {
    if (f == OC_FAMILY_QWEN25VL)
        return QWEN_PRE[part];
    if (f == OC_FAMILY_GEMMA3)
        return GEMMA_PRE[part];
    return NULL;
}

int64_t oc_family_dim(const oc_model_config *c, oc_dim d) {
    const oc_llama_config *t = &c->text;
    const oc_qvit_config *q = &c->qvit;
    int qwen = c->family == OC_FAMILY_QWEN25VL;
    switch (d) {
    case OC_D_C:
        return t->hidden;
    case OC_D_I:
        return t->intermediate;
    case OC_D_V:
        return t->vocab;
    case OC_D_HD:
        return (int64_t)t->heads * t->head_dim;
    case OC_D_KVD:
        return (int64_t)t->kv_heads * t->head_dim;
    case OC_D_HEAD:
        return t->head_dim;
    case OC_D_VC:
        return qwen ? q->hidden : c->vision.hidden;
    case OC_D_VI:
        return qwen ? q->intermediate : c->vision.intermediate;
    case OC_D_V3C:
        return 3 * (int64_t)(qwen ? q->hidden : c->vision.hidden);
    case OC_D_VCH:
        return qwen ? q->channels : c->vision.channels;
    case OC_D_VT:
        return q->temporal;
    case OC_D_VP:
        return qwen ? q->patch : c->vision.patch;
    case OC_D_VSEQ:
        return (int64_t)oc_vit_grid(&c->vision) * oc_vit_grid(&c->vision);
    case OC_D_VMC:
        return (int64_t)q->hidden * q->merge * q->merge;
    case OC_D_VOUT:
        return q->out_hidden;
    case OC_D_END:
        break;
    }
    return 0;
}

uint32_t oc_family_spec_layers(const oc_model_config *c, const oc_tensor_spec *s) {
    switch (s->base) {
    case OC_TB_VIT_LAYER:
        return c->vision.layers;
    case OC_TB_QVIT_BLOCK:
        return c->qvit.depth;
    case OC_TB_LLM_LAYER:
        return c->text.layers;
    default:
        return 1;
    }
}

/* The struct a spec's field lives in, for layer l. */
static char *base_of(oc_model *m, const oc_tensor_spec *s, uint32_t l) {
    switch (s->base) {
    case OC_TB_MODEL:
        return (char *)m;
    case OC_TB_VIT:
        return (char *)&m->vit;
    case OC_TB_VIT_LAYER:
        return (char *)&m->vit.layers[l];
    case OC_TB_QVIT:
        return (char *)&m->qvit;
    case OC_TB_QVIT_BLOCK:
        return (char *)&m->qvit.blocks[l];
    case OC_TB_LLM:
        return (char *)&m->llm;
    default:
        return (char *)&m->llm.layers[l];
    }
}

/* x (rows, cols) held as an F32 copy of its transpose (cols, rows). */
static oc_status transposed(oc_model *m, const oc_st_tensor *t, int64_t rows, int64_t cols,
                            oc_weight *w) {
    const float *src;
    OC_TRY(oc_model_f32_copy(m, t, &src));
    float *dst = oc_malloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!dst)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory for '%s'", t->file, t->name);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * cols + c];
    OC_TRY(oc_model_own(m, dst));
    *w = (oc_weight){.data = dst, .dtype = OC_DT_F32, .rows = cols, .cols = rows};
    return OC_OK;
}

static oc_status load_one(oc_model *m, const oc_tensor_spec *s, uint32_t l) {
    const oc_model_config *c = &m->cfg;
    char name[192], full[256];
    snprintf(name, sizeof name, s->name, l);
    const oc_st_tensor *t =
        oc_model_find_tensor(m, oc_family_prefixes(c->family, s->part), name, full, sizeof full);
    int required = s->opt == OC_TO_REQUIRED || (s->opt == OC_TO_ATTN_BIAS && c->text.attn_bias) ||
                   (s->opt == OC_TO_UNTIED && !c->text.tied);
    if (!required) /* an absent option, or a head tied to the embeddings */
        return OC_OK;
    if (!t)
        return oc_model_missing(m, full);
    OC_TRY(oc_model_check_float(t));
    int64_t dims[5];
    int nd = 0;
    for (; nd < 5 && s->dims[nd]; nd++)
        dims[nd] = oc_family_dim(c, (oc_dim)s->dims[nd]);
    OC_TRY(oc_st_check_shape(t, nd, dims));
    void *field = base_of(m, s, l) + s->off;
    if (s->kind == OC_TK_MAT) {
        oc_weight *w = field;
        if (s->xform == OC_TX_TRANSPOSE)
            return transposed(m, t, dims[0], dims[1], w);
        int64_t cols = 1;
        for (int i = 1; i < nd; i++)
            cols *= dims[i];
        OC_TRY(oc_model_view(m, t, dims[0], cols, w));
        if (s->xform == OC_TX_SPLIT3) { /* q, k, v: consecutive oc_weight fields */
            oc_weight whole = *w;
            size_t part = (size_t)whole.rows / 3 * oc_weight_row_bytes(&whole);
            for (int i = 0; i < 3; i++) {
                w[i] = whole;
                w[i].rows = whole.rows / 3;
                w[i].data = (const char *)whole.data + (size_t)i * part;
            }
        }
        return OC_OK;
    }
    const float *v;
    OC_TRY(oc_model_f32_copy(m, t, &v));
    if (s->kind == OC_TK_GNORM) /* Gemma3RMSNorm multiplies by (1 + w) */
        for (size_t i = 0; i < t->numel; i++)
            ((float *)v)[i] += 1.0f;
    const float **dst = field;
    if (s->xform == OC_TX_SPLIT3)
        for (int i = 0; i < 3; i++)
            dst[i] = v + (size_t)i * (t->numel / 3);
    else
        *dst = v;
    return OC_OK;
}

oc_status oc_model_load_family_weights(oc_model *m) {
    const oc_model_config *c = &m->cfg;
    size_t n;
    const oc_tensor_spec *specs = oc_family_tensors(c->family, &n);
    if (!specs)
        return oc_err(OC_ERR_INTERNAL, "no tensor table for family %d", (int)c->family);
    if (c->family == OC_FAMILY_QWEN25VL)
        m->qvit.blocks = oc_calloc(c->qvit.depth, sizeof *m->qvit.blocks);
    else
        m->vit.layers = oc_calloc(c->vision.layers, sizeof *m->vit.layers);
    m->llm.layers = oc_calloc(c->text.layers, sizeof *m->llm.layers);
    if (!m->llm.layers || (!m->qvit.blocks && !m->vit.layers))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const oc_tensor_spec *s = &specs[i];
        /* the vision tower and projector stay as stored under Q8_0 (convert_weight) */
        m->loading_vision = s->part == OC_PART_VISION || s->part == OC_PART_PROJ;
        uint32_t layers = oc_family_spec_layers(c, s);
        for (uint32_t l = 0; l < layers; l++) {
            oc_status st = load_one(m, s, l);
            if (st != OC_OK) {
                m->loading_vision = 0;
                return st;
            }
        }
    }
    m->loading_vision = 0;
    if (c->text.tied)
        m->llm.lm_head = m->llm.embed;
    return OC_OK;
}
