#include "params.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "rng.h"

/* One pass over the model's tensors in a fixed order. Building the table and pointing a
 * struct at a buffer are the same walk, so the two can never disagree. */
typedef struct {
    oc_tp_info *info;     /* NULL: only count */
    size_t n, off;
    float *base;          /* NULL: do not point */
} walker;

static void slot(walker *w, float **dst, int ndim, const int64_t *shape, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

static void slot(walker *w, float **dst, int ndim, const int64_t *shape, const char *fmt,
                 ...) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    if (w->info) {
        oc_tp_info *e = &w->info[w->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->name, sizeof e->name, fmt, ap);
        va_end(ap);
        e->ndim = ndim;
        for (int i = 0; i < ndim; i++)
            e->shape[i] = shape[i];
        e->offset = w->off;
        e->numel = numel;
    }
    if (w->base && dst)
        *dst = w->base + w->off;
    w->n++;
    w->off += numel;
}

#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

/* t may be NULL (table only); its layer arrays must be allocated when given. */
static void walk(walker *w, const oc_model_config *cfg, oc_tp_tensors *t) {
    const oc_vit_config *v = &cfg->vision;
    const oc_llama_config *l = &cfg->text;
    int64_t C = v->hidden, I = v->intermediate, P = v->patch, N = (int64_t)oc_vit_grid(v) * oc_vit_grid(v);
    int64_t E = l->hidden, HD = (int64_t)l->heads * l->head_dim,
            KD = (int64_t)l->kv_heads * l->head_dim, F = l->intermediate, V = l->vocab;
    int64_t S = cfg->scale_factor;
    float *none = NULL; /* sink for the table-only walk */
#define P_(field) (t ? &t->field : &none)
    const char *vm = "model.vision_model.", *tm = "model.text_model.";
    slot(w, P_(patch_w), SHAPE(C, v->channels, P, P), "%sembeddings.patch_embedding.weight", vm);
    slot(w, P_(patch_b), SHAPE(C), "%sembeddings.patch_embedding.bias", vm);
    slot(w, P_(pos_emb), SHAPE(N, C), "%sembeddings.position_embedding.weight", vm);
    for (uint32_t i = 0; i < v->layers; i++) {
        oc_tp_vit_layer *L = t ? &t->vit[i] : NULL;
#define LV(field) (L ? &L->field : &none)
        const char *pre = "model.vision_model.encoder.layers";
        slot(w, LV(ln1_w), SHAPE(C), "%s.%u.layer_norm1.weight", pre, i);
        slot(w, LV(ln1_b), SHAPE(C), "%s.%u.layer_norm1.bias", pre, i);
        slot(w, LV(q_w), SHAPE(C, C), "%s.%u.self_attn.q_proj.weight", pre, i);
        slot(w, LV(q_b), SHAPE(C), "%s.%u.self_attn.q_proj.bias", pre, i);
        slot(w, LV(k_w), SHAPE(C, C), "%s.%u.self_attn.k_proj.weight", pre, i);
        slot(w, LV(k_b), SHAPE(C), "%s.%u.self_attn.k_proj.bias", pre, i);
        slot(w, LV(v_w), SHAPE(C, C), "%s.%u.self_attn.v_proj.weight", pre, i);
        slot(w, LV(v_b), SHAPE(C), "%s.%u.self_attn.v_proj.bias", pre, i);
        slot(w, LV(o_w), SHAPE(C, C), "%s.%u.self_attn.out_proj.weight", pre, i);
        slot(w, LV(o_b), SHAPE(C), "%s.%u.self_attn.out_proj.bias", pre, i);
        slot(w, LV(ln2_w), SHAPE(C), "%s.%u.layer_norm2.weight", pre, i);
        slot(w, LV(ln2_b), SHAPE(C), "%s.%u.layer_norm2.bias", pre, i);
        slot(w, LV(fc1_w), SHAPE(I, C), "%s.%u.mlp.fc1.weight", pre, i);
        slot(w, LV(fc1_b), SHAPE(I), "%s.%u.mlp.fc1.bias", pre, i);
        slot(w, LV(fc2_w), SHAPE(C, I), "%s.%u.mlp.fc2.weight", pre, i);
        slot(w, LV(fc2_b), SHAPE(C), "%s.%u.mlp.fc2.bias", pre, i);
#undef LV
    }
    slot(w, P_(post_w), SHAPE(C), "%spost_layernorm.weight", vm);
    slot(w, P_(post_b), SHAPE(C), "%spost_layernorm.bias", vm);
    slot(w, P_(proj_w), SHAPE(E, C * S * S), "model.connector.modality_projection.proj.weight");
    slot(w, P_(embed), SHAPE(V, E), "%sembed_tokens.weight", tm);
    for (uint32_t i = 0; i < l->layers; i++) {
        oc_tp_llama_layer *L = t ? &t->llm[i] : NULL;
#define LL(field) (L ? &L->field : &none)
        slot(w, LL(in_norm), SHAPE(E), "%slayers.%u.input_layernorm.weight", tm, i);
        slot(w, LL(q_w), SHAPE(HD, E), "%slayers.%u.self_attn.q_proj.weight", tm, i);
        slot(w, LL(k_w), SHAPE(KD, E), "%slayers.%u.self_attn.k_proj.weight", tm, i);
        slot(w, LL(v_w), SHAPE(KD, E), "%slayers.%u.self_attn.v_proj.weight", tm, i);
        slot(w, LL(o_w), SHAPE(E, HD), "%slayers.%u.self_attn.o_proj.weight", tm, i);
        slot(w, LL(post_norm), SHAPE(E), "%slayers.%u.post_attention_layernorm.weight", tm, i);
        slot(w, LL(gate_w), SHAPE(F, E), "%slayers.%u.mlp.gate_proj.weight", tm, i);
        slot(w, LL(up_w), SHAPE(F, E), "%slayers.%u.mlp.up_proj.weight", tm, i);
        slot(w, LL(down_w), SHAPE(E, F), "%slayers.%u.mlp.down_proj.weight", tm, i);
#undef LL
    }
    slot(w, P_(norm), SHAPE(E), "%snorm.weight", tm);
    if (!l->tied)
        slot(w, P_(lm_head), SHAPE(V, E), "lm_head.weight");
    else if (t)
        t->lm_head = t->embed;
#undef P_
}

oc_status oc_params_check_config(const oc_model_config *cfg) {
    if (cfg->family != OC_FAMILY_SMOLVLM)
        return oc_err(OC_ERR_UNSUPPORTED, "training supports the SmolVLM (Idefics3) family "
                      "only");
    if (cfg->text.attn_bias || cfg->text.mlp_bias)
        return oc_err(OC_ERR_UNSUPPORTED, "training does not support attention or MLP biases "
                      "in the text model");
    if (cfg->vision.act != OC_ACT_GELU_TANH)
        return oc_err(OC_ERR_UNSUPPORTED, "training supports the vision activation "
                      "gelu_pytorch_tanh only");
    if (cfg->vision.channels != 3 || cfg->scale_factor < 1 ||
        oc_vit_grid(&cfg->vision) % cfg->scale_factor)
        return oc_err(OC_ERR_UNSUPPORTED, "training: unsupported vision geometry");
    if (cfg->text.head_dim % 2)
        return oc_err(OC_ERR_UNSUPPORTED, "training: head_dim must be even");
    return OC_OK;
}

oc_status oc_params_new(oc_params *p, const oc_model_config *cfg) {
    memset(p, 0, sizeof *p);
    OC_TRY(oc_params_check_config(cfg));
    p->cfg = *cfg;
    walker w = {0};
    walk(&w, cfg, NULL);
    p->n_tensors = w.n;
    p->numel = w.off;
    p->info = oc_calloc(w.n, sizeof *p->info);
    p->mem = oc_calloc(p->numel, sizeof(float));
    if (!p->info || !p->mem) {
        oc_params_free(p);
        return oc_err(OC_ERR_NOMEM, "out of memory for %zu parameters", w.off);
    }
    walker w2 = {.info = p->info};
    walk(&w2, cfg, NULL);
    oc_status s = oc_tp_tensors_point(&p->t, p, p->mem);
    if (s != OC_OK)
        oc_params_free(p);
    return s;
}

void oc_params_free(oc_params *p) {
    if (!p)
        return;
    oc_tp_tensors_free(&p->t);
    oc_free(p->info);
    oc_free(p->mem);
    memset(p, 0, sizeof *p);
}

oc_status oc_tp_tensors_point(oc_tp_tensors *t, const oc_params *p, float *base) {
    memset(t, 0, sizeof *t);
    t->vit = oc_calloc(p->cfg.vision.layers, sizeof *t->vit);
    t->llm = oc_calloc(p->cfg.text.layers, sizeof *t->llm);
    if (!t->vit || !t->llm) {
        oc_tp_tensors_free(t);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    walker w = {.base = base};
    walk(&w, &p->cfg, t);
    return OC_OK;
}

void oc_tp_tensors_free(oc_tp_tensors *t) {
    if (!t)
        return;
    oc_free(t->vit);
    oc_free(t->llm);
    t->vit = NULL;
    t->llm = NULL;
}

oc_status oc_params_load(oc_params *p, const char *dir) {
    oc_st_set *set = NULL;
    OC_TRY(oc_st_set_open(dir, &set));
    oc_status s = OC_OK;
    for (size_t i = 0; i < p->n_tensors && s == OC_OK; i++) {
        const oc_tp_info *e = &p->info[i];
        const oc_st_tensor *t = oc_st_set_find(set, e->name);
        if (!t) {
            s = oc_err(OC_ERR_FORMAT, "%s: no tensor '%s' in the model's safetensors", dir,
                       e->name);
            break;
        }
        s = oc_st_check_shape(t, e->ndim, e->shape);
        if (s == OC_OK)
            s = oc_st_to_f32(t, p->mem + e->offset, e->numel);
    }
    oc_st_set_close(set);
    return s;
}

/* Norm weights are the 1-D tensors named ...norm...weight; biases end in ".bias". */
static int is_norm_weight(const char *name) {
    size_t n = strlen(name);
    return strstr(name, "norm") && n > 7 && !strcmp(name + n - 7, ".weight");
}

void oc_params_init_random(oc_params *p, uint64_t seed, float std, int32_t pad_id) {
    oc_rng rng;
    oc_rng_seed(&rng, seed);
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        float *x = p->mem + e->offset;
        size_t n = strlen(e->name);
        if (n > 5 && !strcmp(e->name + n - 5, ".bias")) {
            memset(x, 0, e->numel * sizeof(float));
        } else if (e->ndim == 1 && is_norm_weight(e->name)) {
            for (size_t j = 0; j < e->numel; j++)
                x[j] = 1.0f;
        } else {
            for (size_t j = 0; j < e->numel; j++)
                x[j] = (float)(std * oc_rng_normal(&rng));
        }
    }
    /* nn.Embedding(padding_idx=pad) starts with that row at zero. */
    if (pad_id >= 0 && (uint32_t)pad_id < p->cfg.text.vocab)
        memset(p->t.embed + (size_t)pad_id * p->cfg.text.hidden, 0,
               p->cfg.text.hidden * sizeof(float));
}

oc_status oc_params_add_to_writer(const oc_params *p, const float *base, const char *prefix,
                                  oc_st_writer *w) {
    char name[160];
    for (size_t i = 0; i < p->n_tensors; i++) {
        const oc_tp_info *e = &p->info[i];
        snprintf(name, sizeof name, "%s%s", prefix, e->name);
        OC_TRY(oc_st_writer_add(w, name, OC_DT_F32, e->ndim, e->shape, base + e->offset));
    }
    return OC_OK;
}
