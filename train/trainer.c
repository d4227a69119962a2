/* The trainer: a SmolVLM-family model's parameters, gradients and AdamW moments (three
 * mirrors of one table), the forward and backward pass of a packed micro-batch, the
 * optimizer step, checkpoints and resume.
 *
 * Data parallel (core/dist.h, docs/DISTRIBUTED.md): in a job of N ranks each rank runs
 * the forward and backward of its block of the step's examples; the gradients are summed
 * by a reduce-scatter in rank order, so that rank r holds the summed gradient of its
 * shard [shard[r], shard[r+1]) of the flat parameter vector; it clips and updates that
 * shard with its own AdamW moments (ZeRO-1: m and v are (hi - lo) floats per rank), and
 * an allgather gives every rank the whole updated parameters. Alone the shard is
 * everything and the step is the one-process step, bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "connector_train.h"
#include "dist.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "llama_train.h"
#include "optim.h"
#include "output.h"
#include "params.h"
#include "pref_loss.h"
#include "rng.h"
#include "tuner.h"
#include "trainer_internal.h"
#include "vit_train.h"

#define IGNORE_INDEX OC_IGNORE_INDEX

struct oc_trainer {
    oc_train_params p;
    char *out_dir, *dump_path;  /* owned copies of p's strings */
    oc_params params;           /* the weights and their table */
    float *grad;                /* (numel) gradients */
    float *m, *v;               /* (hi - lo) each: AdamW exp_avg, exp_avg_sq of the shard */
    oc_tp_tensors g;            /* pointers into grad */
    uint8_t *decay;             /* (n_tensors) 1 where weight decay applies */
    double *lr_scale;           /* (n_tensors) the tensor's multiple of the lr */
    uint64_t step;              /* optimizer steps done */
    double total_flops;
    oc_rng rng;
    int32_t pad_id;             /* nn.Embedding padding_idx: no gradient through lookups */
    char *config_text;          /* config.json for checkpoints */
    char *src_dir;              /* tokenizer and processor files are copied from here */
    int dumped, stop;
    /* threads: the kernels' context runs on the pool or, when the tuner measured one
     * thread faster (a busy machine), on the calling thread alone */
    oc_pool *pool;
    oc_exec ex;
    oc_tuner tune;
    oc_out_lock *lock;          /* of out_dir while oc_trainer_fit runs */
    /* workspace, grown to the largest micro-batch seen */
    float *ws;
    size_t ws_cap;              /* floats */
    size_t *ibuf;               /* sequence lengths, then labelled rows */
    int32_t *tbuf;              /* targets of the labelled rows */
    size_t ibuf_cap, tbuf_cap;
    /* data parallel: the job's ranks this trainer spans (1 alone), and the parameters
     * whose optimizer state this rank keeps */
    int ranks, rank;
    size_t *shard;              /* (ranks + 1) offsets into the flat parameters */
    size_t lo, hi;              /* this rank's shard */
};

/* ---- parameters of the public API ---------------------------------------------- */

oc_train_params oc_train_default_params(void) {
    oc_train_params p;
    memset(&p, 0, sizeof p);
    p.lr = 1e-3;
    p.beta1 = 0.9;
    p.beta2 = 0.95;
    p.eps = 1e-8;
    p.weight_decay = 0.1;
    p.schedule = OC_SCHED_COSINE;
    p.steps = 1000;
    p.clip = 1.0;
    p.batch = 1;
    p.grad_accum = 1;
    p.objective = OC_OBJECTIVE_SFT;
    p.simpo_gamma = 0.5;
    p.orpo_lambda = 0.1;
    return p;
}

static oc_status check_params(const oc_train_params *p) {
    if (!(p->lr >= 0) || !(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) ||
        !(p->eps > 0) || !(p->weight_decay >= 0) || !(p->clip >= 0) || !(p->init_std >= 0) ||
        !(p->vision_lr_scale >= 0))
        return oc_err(OC_ERR_INVALID_ARG, "training: lr, betas, eps, weight_decay, clip, "
                      "init_std or vision_lr_scale out of range");
    if (p->batch == 0 || p->grad_accum == 0)
        return oc_err(OC_ERR_INVALID_ARG, "training: batch and grad_accum must be >= 1");
    if ((unsigned)p->schedule > OC_SCHED_CONSTANT)
        return oc_err(OC_ERR_INVALID_ARG, "training: unknown schedule %d", (int)p->schedule);
    if ((unsigned)p->objective > OC_OBJECTIVE_ORPO)
        return oc_err(OC_ERR_INVALID_ARG, "training: unknown objective %d", (int)p->objective);
    if (!(p->pref_beta >= 0 && p->pref_beta < 1e6) || !isfinite(p->simpo_gamma) ||
        !(p->orpo_lambda >= 0 && p->orpo_lambda < 1e6) ||
        !(p->rpo_alpha >= 0 && p->rpo_alpha < 1e6))
        return oc_err(OC_ERR_INVALID_ARG, "training: beta, gamma, lambda or rpo_alpha out of "
                      "range");
    return OC_OK;
}

/* ---- construction ---------------------------------------------------------------- */

void oc_trainer_free(oc_trainer *tr) {
    if (!tr)
        return;
    oc_params_free(&tr->params);
    oc_tp_tensors_free(&tr->g);
    oc_free(tr->grad);
    oc_free(tr->m);
    oc_free(tr->v);
    oc_free(tr->decay);
    oc_free(tr->lr_scale);
    oc_free(tr->config_text);
    oc_free(tr->src_dir);
    oc_free(tr->out_dir);
    oc_free(tr->dump_path);
    oc_free(tr->ws);
    oc_free(tr->ibuf);
    oc_free(tr->tbuf);
    oc_free(tr->shard);
    oc_exec_release(&tr->ex);
    oc_pool_free(tr->pool);
    oc_out_lock_release(tr->lock);
    oc_free(tr);
}

/* Reads dir/config.json for checkpoints (dtype set to float32, as saved) and the two
 * values oc_model_config does not keep: initializer_range and the text pad_token_id. */
static oc_status read_config_json(oc_trainer *tr, const char *dir, double *init_range) {
    char *path = oc_path_join(dir, "config.json");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    cJSON *j = NULL;
    oc_status s = oc_json_load(path, 4u << 20, &j);
    if (s == OC_OK) {
        const cJSON *tc = oc_json_get(j, "text_config");
        int64_t pad = -1;
        const char *key = "pad_token_id";
        const cJSON *src = oc_json_get(tc, key) ? tc : j;
        const cJSON *pv = oc_json_get(src, key);
        if (pv && cJSON_IsNumber(pv))
            pad = (int64_t)pv->valuedouble;
        tr->pad_id = pad >= 0 && pad < (int64_t)tr->params.cfg.text.vocab ? (int32_t)pad : -1;
        *init_range = 0.02;
        const cJSON *ir = oc_json_get(tc, "initializer_range");
        if (!ir)
            ir = oc_json_get(j, "initializer_range");
        if (ir && cJSON_IsNumber(ir) && ir->valuedouble > 0)
            *init_range = ir->valuedouble;
        /* The weights are saved in F32: say so where the config names a dtype. */
        cJSON *objs[3] = {j, cJSON_GetObjectItemCaseSensitive(j, "text_config"),
                          cJSON_GetObjectItemCaseSensitive(j, "vision_config")};
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 2; k++) {
                const char *dk = k ? "torch_dtype" : "dtype";
                if (cJSON_IsObject(objs[i]) && cJSON_GetObjectItemCaseSensitive(objs[i], dk))
                    cJSON_ReplaceItemInObjectCaseSensitive(objs[i], dk,
                                                           cJSON_CreateString("float32"));
            }
        tr->config_text = cJSON_Print(j);
        if (!tr->config_text)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(j);
    oc_free(path);
    return s;
}

static int is_1d_decay_exempt(const oc_tp_info *e) { return e->ndim == 1; }

/* The vision tower and the connector (vision_lr_scale applies to them). */
static int is_image_side(const oc_tp_info *e) {
    return !strncmp(e->name, "model.vision_model.", 19) ||
           !strncmp(e->name, "model.connector.", 16);
}

/* Everything but the weights: config, table, mirrors, strings. */
static oc_status trainer_create(const char *dir, const oc_train_params *params,
                                oc_trainer **out, double *init_range) {
    oc_train_params p = params ? *params : oc_train_default_params();
    OC_TRY(check_params(&p));
    oc_model_config cfg;
    OC_TRY(oc_config_load(dir, &cfg));
    OC_TRY(oc_config_check_trainable(&cfg, dir));
    /* Training runs in float32 whatever the checkpoint's dtype, so RoPE's frequencies
     * are float32 too (as in a model loaded with dtype=torch.float32). */
    cfg.text.rope_dtype = OC_DT_F32;
    oc_trainer *tr = oc_calloc(1, sizeof *tr);
    if (!tr)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    tr->p = p;
    oc_status s = oc_pool_new(p.n_threads, &tr->pool);
    if (s == OC_OK) {
        oc_exec_init(&tr->ex, tr->pool);
        s = oc_params_new(&tr->params, &cfg);
    }
    if (s == OC_OK)
        s = read_config_json(tr, dir, init_range);
    tr->ranks = p.dist_alone ? 1 : oc_dist_size_();
    tr->rank = tr->ranks > 1 ? oc_dist_rank_() : 0;
    if (s == OC_OK && !(tr->shard = oc_calloc((size_t)tr->ranks + 1, sizeof *tr->shard)))
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK) {
        size_t n = tr->params.numel;
        for (int r = 0; r < tr->ranks; r++)
            oc_dist_block_of(n, r, tr->ranks, &tr->shard[r], &tr->shard[r + 1]);
        tr->lo = tr->shard[tr->rank];
        tr->hi = tr->shard[tr->rank + 1];
        size_t own = tr->hi - tr->lo ? tr->hi - tr->lo : 1;
        tr->grad = oc_calloc(n, sizeof(float));
        tr->m = oc_calloc(own, sizeof(float));
        tr->v = oc_calloc(own, sizeof(float));
        tr->decay = oc_calloc(tr->params.n_tensors, 1);
        tr->lr_scale = oc_calloc(tr->params.n_tensors, sizeof *tr->lr_scale);
        tr->src_dir = oc_strdup(dir);
        tr->out_dir = p.out_dir ? oc_strdup(p.out_dir) : NULL;
        tr->dump_path = p.dump_first_step ? oc_strdup(p.dump_first_step) : NULL;
        if (!tr->grad || !tr->m || !tr->v || !tr->decay || !tr->lr_scale || !tr->src_dir ||
            (p.out_dir && !tr->out_dir) || (p.dump_first_step && !tr->dump_path))
            s = oc_err(OC_ERR_NOMEM, "out of memory for the optimizer state of %zu parameters",
                       n);
    }
    if (s == OC_OK)
        s = oc_tp_tensors_point(&tr->g, &tr->params, tr->grad);
    if (s != OC_OK) {
        oc_trainer_free(tr);
        return s;
    }
    tr->p.out_dir = tr->out_dir;
    tr->p.dump_first_step = tr->dump_path;
    for (size_t i = 0; i < tr->params.n_tensors; i++) {
        tr->decay[i] = !(p.no_decay_1d && is_1d_decay_exempt(&tr->params.info[i]));
        tr->lr_scale[i] = is_image_side(&tr->params.info[i]) && p.vision_lr_scale > 0
                              ? p.vision_lr_scale
                              : 1.0;
    }
    oc_rng_seed(&tr->rng, p.seed);
    *out = tr;
    return OC_OK;
}

/* Construction in a job of several ranks: each knows whether every rank's trainer was
 * made (a rank that failed alone would otherwise leave the others waiting). */
static oc_status agree_made(const oc_train_params *params, oc_status s, oc_trainer **tr) {
    if ((params && params->dist_alone) || oc_dist_size_() <= 1)
        return s;
    s = oc_dist_agree(s);
    if (s != OC_OK) {
        oc_trainer_free(*tr);
        *tr = NULL;
    }
    return s;
}

static oc_status trainer_new(const char *model_dir, const oc_train_params *params,
                             oc_trainer **out) {
    oc_trainer *tr;
    double ir;
    OC_TRY(trainer_create(model_dir, params, &tr, &ir));
    oc_status s = oc_params_load(&tr->params, model_dir);
    if (s != OC_OK) {
        oc_trainer_free(tr);
        return s;
    }
    *out = tr;
    return OC_OK;
}

oc_status oc_trainer_new(const char *model_dir, const oc_train_params *params,
                         oc_trainer **out) {
    if (!model_dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_new: NULL argument");
    *out = NULL;
    return agree_made(params, trainer_new(model_dir, params, out), out);
}

static oc_status trainer_new_from_config(const char *config_path,
                                         const oc_train_params *params, oc_trainer **out) {
    char *dir = NULL;
    if (oc_is_dir(config_path)) {
        dir = oc_strdup(config_path);
    } else {
        size_t n = strlen(config_path), k = strlen("config.json");
        if (n < k || strcmp(config_path + n - k, "config.json"))
            return oc_err(OC_ERR_INVALID_ARG, "%s: expected a folder or a config.json",
                          config_path);
        dir = n == k ? oc_strdup(".") : oc_strndup(config_path, n - k);
    }
    if (!dir)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_trainer *tr;
    double ir;
    oc_status s = trainer_create(dir, params, &tr, &ir);
    oc_free(dir);
    if (s != OC_OK)
        return s;
    double std = tr->p.init_std > 0 ? tr->p.init_std : ir;
    oc_params_init_random(&tr->params, tr->p.seed, (float)std, tr->pad_id);
    *out = tr;
    return OC_OK;
}

oc_status oc_trainer_new_from_config(const char *config_path, const oc_train_params *params,
                                     oc_trainer **out) {
    if (!config_path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_new_from_config: NULL argument");
    *out = NULL;
    return agree_made(params, trainer_new_from_config(config_path, params, out), out);
}

/* The step a checkpoint file says it is of ("ocellus_step"); -1 if it does not say. */
static oc_status file_step(const char *dir, const char *name, oc_st_file *open,
                           int64_t *step) {
    *step = -1;
    oc_st_file *f = open;
    char *path = NULL;
    if (!f) {
        if (!(path = oc_path_join(dir, name)))
            return oc_err(OC_ERR_NOMEM, "out of memory");
        oc_status s = oc_file_exists(path) ? oc_st_open(path, &f) : OC_OK;
        oc_free(path);
        OC_TRY(s);
    }
    const char *v = f ? oc_st_metadata(f, "ocellus_step") : NULL;
    char *end;
    if (v) {
        long long k = strtoll(v, &end, 10);
        if (end == v || *end || k < 0) {
            if (f != open)
                oc_st_close(f);
            return oc_err(OC_ERR_FORMAT, "%s/%s: bad \"ocellus_step\" \"%s\"", dir, name, v);
        }
        *step = k;
    }
    if (f != open)
        oc_st_close(f);
    return OC_OK;
}

/* Weights and optimizer state of one step, or an error saying which is missing. */
static oc_status check_complete(const char *dir, oc_st_file *opt) {
    int64_t ms, os;
    OC_TRY(file_step(dir, "model.safetensors", NULL, &ms));
    OC_TRY(file_step(dir, "optimizer.safetensors", opt, &os));
    if (ms >= 0 && os >= 0 && ms != os)
        return oc_err(OC_ERR_FORMAT, "checkpoint %s is incomplete: model.safetensors is of "
                      "step %lld but optimizer.safetensors of step %lld (a save that did not "
                      "finish?)", dir, (long long)ms, (long long)os);
    return OC_OK;
}

static oc_status load_optimizer(oc_trainer *tr, const char *dir) {
    char *path = oc_path_join(dir, "optimizer.safetensors");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    if (!oc_file_exists(path)) {
        oc_free(path);
        return oc_err(OC_ERR_FORMAT, "checkpoint %s is incomplete: it has no "
                      "optimizer.safetensors (a model folder, not a checkpoint? train from "
                      "it with --init)", dir);
    }
    oc_st_file *f = NULL;
    oc_status s = oc_st_open(path, &f);
    if (s == OC_OK)
        s = check_complete(dir, f);
    char name[160];
    for (size_t i = 0; s == OC_OK && i < tr->params.n_tensors; i++) {
        const oc_tp_info *e = &tr->params.info[i];
        for (int k = 0; k < 2 && s == OC_OK; k++) {
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", e->name);
            const oc_st_tensor *t = oc_st_find(f, name);
            if (!t)
                s = oc_err(OC_ERR_FORMAT, "%s: no tensor '%s'", path, name);
            else if (t->dtype != OC_DT_F32)
                s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' must be F32", path, name);
            else if ((s = oc_st_check_shape(t, e->ndim, e->shape)) == OC_OK) {
                /* the part of the tensor in this rank's shard (all of it alone) */
                size_t a = e->offset > tr->lo ? e->offset : tr->lo,
                       b = e->offset + e->numel < tr->hi ? e->offset + e->numel : tr->hi;
                if (a < b)
                    memcpy((k ? tr->v : tr->m) + (a - tr->lo),
                           (const float *)t->data + (a - e->offset), (b - a) * sizeof(float));
            }
        }
    }
    const struct {
        const char *name;
        oc_dtype dt;
        size_t n;
        void *dst;
    } scalars[] = {{"step", OC_DT_I64, 1, &tr->step},
                   {"rng", OC_DT_I64, 4, tr->rng.s},
                   {"total_flops", OC_DT_F64, 1, &tr->total_flops}};
    for (size_t i = 0; s == OC_OK && i < sizeof scalars / sizeof scalars[0]; i++) {
        const oc_st_tensor *t = oc_st_find(f, scalars[i].name);
        if (!t || t->dtype != scalars[i].dt || t->numel != scalars[i].n)
            s = oc_err(OC_ERR_FORMAT, "%s: missing or malformed '%s'", path, scalars[i].name);
        else
            memcpy(scalars[i].dst, t->data, 8 * scalars[i].n);
    }
    int64_t fs;
    if (s == OC_OK && (s = file_step(dir, "optimizer.safetensors", f, &fs)) == OC_OK &&
        fs >= 0 && (uint64_t)fs != tr->step)
        s = oc_err(OC_ERR_FORMAT, "%s: \"step\" is %llu but the file says step %lld", path,
                   (unsigned long long)tr->step, (long long)fs);
    oc_st_close(f);
    oc_free(path);
    return s;
}

static oc_status trainer_resume(const char *checkpoint_dir, const oc_train_params *params,
                                oc_trainer **out) {
    oc_trainer *tr;
    double ir;
    OC_TRY(trainer_create(checkpoint_dir, params, &tr, &ir));
    oc_status s = oc_params_load(&tr->params, checkpoint_dir);
    if (s == OC_OK)
        s = load_optimizer(tr, checkpoint_dir);
    if (s != OC_OK) {
        oc_trainer_free(tr);
        return s;
    }
    tr->dumped = 1; /* the dump is of a run's first step, which is behind us */
    *out = tr;
    return OC_OK;
}

oc_status oc_trainer_resume(const char *checkpoint_dir, const oc_train_params *params,
                            oc_trainer **out) {
    if (!checkpoint_dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_resume: NULL argument");
    *out = NULL;
    return agree_made(params, trainer_resume(checkpoint_dir, params, out), out);
}

oc_trainer_info oc_trainer_get_info(const oc_trainer *tr) {
    oc_trainer_info in;
    memset(&in, 0, sizeof in);
    if (!tr)
        return in;
    const oc_model_config *c = &tr->params.cfg;
    in.image_size = c->vision.image_size;
    in.image_seq = oc_config_image_seq(c);
    in.image_token_id = c->image_token_id;
    in.vocab = c->text.vocab;
    in.n_params = tr->params.numel;
    in.step = tr->step;
    in.optimizer_bytes = 2 * (tr->hi - tr->lo) * sizeof(float);
    in.ranks = tr->ranks;
    return in;
}

oc_params *oc_trainer_params_internal(oc_trainer *tr) { return &tr->params; }

const float *oc_trainer_grads_internal(const oc_trainer *tr) { return tr->grad; }

/* ---- one micro-batch: forward, loss, backward ------------------------------------- */

/* The workspace of a micro-batch, carved from one buffer. */
typedef struct {
    size_t NT, T, A, maxn, R;
    oc_vit_acts va;
    oc_llama_acts la;
    float *pix;        /* (NT, 3, S, S) the examples' tiles, contiguous */
    float *shuf;       /* (NT*M, C*s*s) pixel-shuffled vision output */
    float *feats;      /* (NT*M, E) image features */
    float *x;          /* (T, E) decoder input */
    float *xr, *dxr;   /* (R, E) final hidden states of the labelled rows, and gradient */
    float *dfin, *dx;  /* (T, E) */
    float *dfeats;     /* (NT*M, E) */
    float *dvis;       /* (NT*N, C) */
    float *rloss, *rscale; /* (R) per-row cross-entropy and gradient scale (preferences) */
    float *scratch;
} mb_ws;

static size_t mb_carve(mb_ws *w, const oc_exec *ex, const oc_model_config *c, float *base) {
    size_t S = c->vision.image_size, C = c->vision.hidden, s = c->scale_factor,
           N = (size_t)oc_vit_grid(&c->vision) * oc_vit_grid(&c->vision), M = N / (s * s),
           E = c->text.hidden, NT = w->NT, T = w->T, R = w->R;
    oc_carver cv = {base, 0};
    if (NT)
        oc_vit_acts_carve(&w->va, &cv, &c->vision, NT);
    oc_llama_acts_carve(&w->la, &cv, &c->text, T, w->A, w->maxn);
    w->pix = oc_carve(&cv, NT * 3 * S * S);
    w->shuf = oc_carve(&cv, NT * M * C * s * s);
    w->feats = oc_carve(&cv, NT * M * E);
    w->x = oc_carve(&cv, T * E);
    w->xr = oc_carve(&cv, R * E);
    w->dxr = oc_carve(&cv, R * E);
    w->dfin = oc_carve(&cv, T * E);
    w->dx = oc_carve(&cv, T * E);
    w->dfeats = oc_carve(&cv, NT * M * E);
    w->dvis = oc_carve(&cv, NT * N * C);
    w->rloss = oc_carve(&cv, R);
    w->rscale = oc_carve(&cv, R);
    size_t sc = oc_llama_scratch_size(ex, &c->text, T, w->maxn), k;
    if (NT && (k = oc_vit_scratch_size(ex, &c->vision, NT)) > sc)
        sc = k;
    if ((k = NT * M * C * s * s) > sc)
        sc = k;
    if ((k = oc_t_ce_scratch(R, c->text.vocab)) > sc)
        sc = k;
    w->scratch = oc_carve(&cv, sc);
    return cv.off;
}

static size_t n_labelled(const oc_train_example *e) {
    size_t k = 0;
    for (size_t t = 1; t < e->n_tokens; t++)
        k += e->labels[t] != IGNORE_INDEX;
    return k;
}

static oc_status check_examples(const oc_trainer *tr, const oc_train_example *ex, size_t n,
                                size_t *labelled, size_t *tokens) {
    const oc_model_config *c = &tr->params.cfg;
    uint32_t V = c->text.vocab, M = oc_config_image_seq(c);
    if (!ex || n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "training: no examples");
    *labelled = *tokens = 0;
    for (size_t i = 0; i < n; i++) {
        const oc_train_example *e = &ex[i];
        if (!e->input_ids || !e->labels || e->n_tokens == 0)
            return oc_err(OC_ERR_INVALID_ARG, "training example %zu: no tokens", i);
        if (e->n_tiles && !e->pixel_values)
            return oc_err(OC_ERR_INVALID_ARG, "training example %zu: %u tiles but no "
                          "pixel_values", i, e->n_tiles);
        if (e->n_tokens > (size_t)1 << 24 || e->n_tiles > 4096)
            return oc_err(OC_ERR_LIMIT, "training example %zu: too long", i);
        size_t n_img = 0;
        for (size_t t = 0; t < e->n_tokens; t++) {
            int32_t id = e->input_ids[t], lb = e->labels[t];
            if (id < 0 || (uint32_t)id >= V)
                return oc_err(OC_ERR_INVALID_ARG, "training example %zu: token %d at %zu is "
                              "outside the vocabulary (%u)", i, id, t, V);
            if (lb != IGNORE_INDEX && (lb < 0 || (uint32_t)lb >= V))
                return oc_err(OC_ERR_INVALID_ARG, "training example %zu: label %d at %zu is "
                              "neither -100 nor in the vocabulary", i, lb, t);
            n_img += id == c->image_token_id;
        }
        if (n_img != (size_t)e->n_tiles * M)
            return oc_err(OC_ERR_INVALID_ARG, "training example %zu: %zu image tokens for %u "
                          "tiles (expected %u per tile)", i, n_img, e->n_tiles, M);
        size_t npx = (size_t)e->n_tiles * 3 * c->vision.image_size * c->vision.image_size;
        for (size_t k = 0; k < npx; k++)
            if (!isfinite(e->pixel_values[k]))
                return oc_err(OC_ERR_INVALID_ARG, "training example %zu: pixel value %zu is "
                              "not finite", i, k);
        *labelled += n_labelled(e);
        *tokens += e->n_tokens;
    }
    return OC_OK;
}

static oc_status grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return OC_OK;
    void *nb = oc_malloc(need * elem);
    if (!nb)
        return oc_err(OC_ERR_NOMEM, "training: out of memory for a %zu-element workspace",
                      need);
    oc_free(*buf);
    *buf = nb;
    *cap = need;
    return OC_OK;
}

/* A micro-batch between its forward and backward pass. */
typedef struct {
    mb_ws w;
    oc_t_seqs seqs;
    size_t *rows;      /* (R) packed position of each labelled row, in sequence order */
    int32_t *targets;  /* (R) */
} mb_state;

/* Forward of examples packed into one micro-batch, up to the final hidden states of the
 * labelled rows (m->w.xr). */
static oc_status mb_forward(oc_trainer *tr, oc_exec *xc, const oc_train_example *ex,
                            size_t n, mb_state *m) {
    const oc_model_config *c = &tr->params.cfg;
    const oc_tp_tensors *P = &tr->params.t;
    size_t S = c->vision.image_size, C = c->vision.hidden, s = c->scale_factor,
           g = oc_vit_grid(&c->vision), E = c->text.hidden, H = c->text.heads;
    mb_ws *wp = &m->w;
    memset(wp, 0, sizeof *wp);
    mb_ws w = *wp;
    for (size_t i = 0; i < n; i++) {
        size_t k = ex[i].n_tokens;
        w.NT += ex[i].n_tiles;
        w.T += k;
        w.A += H * k * k;
        w.maxn = k > w.maxn ? k : w.maxn;
        w.R += n_labelled(&ex[i]);
    }
    OC_TRY(grow((void **)&tr->ibuf, &tr->ibuf_cap, 2 * (n + 1) + w.R, sizeof(size_t)));
    OC_TRY(grow((void **)&tr->tbuf, &tr->tbuf_cap, w.R > 0 ? w.R : 1, sizeof(int32_t)));
    /* sized for the pool (per-thread attention scratch), whether it runs or not */
    oc_exec full = tr->ex;
    full.pool = tr->pool;
    OC_TRY(grow((void **)&tr->ws, &tr->ws_cap, mb_carve(&w, &full, c, NULL), sizeof(float)));
    mb_carve(&w, &full, c, tr->ws);
    size_t *seq_off = tr->ibuf, *att_off = tr->ibuf + n + 1, *rows = tr->ibuf + 2 * (n + 1);
    m->seqs = (oc_t_seqs){n, seq_off, att_off, 0};
    int32_t *targets = tr->tbuf;
    m->rows = rows;
    m->targets = targets;

    /* rows: packed position t predicts labels[t+1] of its own sequence */
    size_t t0 = 0, r = 0;
    seq_off[0] = att_off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = ex[i].n_tokens;
        seq_off[i + 1] = seq_off[i] + k;
        att_off[i + 1] = att_off[i] + H * k * k;
        for (size_t t = 0; t + 1 < ex[i].n_tokens; t++)
            if (ex[i].labels[t + 1] != IGNORE_INDEX) {
                rows[r] = t0 + t;
                targets[r++] = ex[i].labels[t + 1];
            }
        t0 += ex[i].n_tokens;
    }

    /* vision tower + connector on all tiles */
    if (w.NT) {
        size_t tile = 0, tsz = 3 * S * S;
        for (size_t i = 0; i < n; i++) {
            if (ex[i].n_tiles)
                memcpy(w.pix + tile * tsz, ex[i].pixel_values,
                       ex[i].n_tiles * tsz * sizeof(float));
            tile += ex[i].n_tiles;
        }
        oc_vit_train_forward(xc, &w.va, &c->vision, P, w.pix, w.NT);
        oc_connector_train_forward(xc, w.feats, w.shuf, w.va.out, P->proj_w, w.NT, g, C, s,
                                   E);
    }

    /* decoder input: token embeddings, image features in place of <image> tokens */
    size_t f = 0;
    t0 = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < ex[i].n_tokens; t++) {
            int32_t id = ex[i].input_ids[t];
            const float *src = id == c->image_token_id ? w.feats + (f++) * E
                                                       : P->embed + (size_t)id * E;
            memcpy(w.x + (t0 + t) * E, src, E * sizeof(float));
        }
        t0 += ex[i].n_tokens;
    }

    oc_llama_train_forward(xc, &w.la, &c->text, P, w.x, &m->seqs);
    for (size_t k = 0; k < w.R; k++)
        memcpy(w.xr + k * E, w.la.fin + rows[k] * E, E * sizeof(float));
    *wp = w;
    return OC_OK;
}

/* Backward of a micro-batch whose gradient at the labelled rows is in m->w.dxr. */
static void mb_backward(oc_trainer *tr, oc_exec *xc, const oc_train_example *ex, size_t n,
                        mb_state *m) {
    const oc_model_config *c = &tr->params.cfg;
    const oc_tp_tensors *P = &tr->params.t;
    oc_tp_tensors *G = &tr->g;
    size_t C = c->vision.hidden, s = c->scale_factor, g = oc_vit_grid(&c->vision),
           E = c->text.hidden;
    mb_ws *w = &m->w;
    memset(w->dfin, 0, w->T * E * sizeof(float));
    for (size_t k = 0; k < w->R; k++)
        memcpy(w->dfin + m->rows[k] * E, w->dxr + k * E, E * sizeof(float));
    oc_llama_train_backward(xc, &w->la, &c->text, P, G, w->dfin, w->dx, &m->seqs, w->scratch);
    size_t f = 0, t0 = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < ex[i].n_tokens; t++) {
            int32_t id = ex[i].input_ids[t];
            const float *d = w->dx + (t0 + t) * E;
            if (id == c->image_token_id) {
                memcpy(w->dfeats + (f++) * E, d, E * sizeof(float));
            } else if (id != tr->pad_id) {
                float *ge = G->embed + (size_t)id * E;
                for (size_t j = 0; j < E; j++)
                    ge[j] += d[j];
            }
        }
        t0 += ex[i].n_tokens;
    }
    if (w->NT) {
        oc_connector_train_backward(xc, w->dvis, G->proj_w, w->dfeats, w->shuf, P->proj_w,
                                    w->scratch, w->NT, g, C, s, E);
        oc_vit_train_backward(xc, &w->va, &c->vision, P, G, w->dvis, w->NT, w->scratch);
    }
}

/* Forward (and, when train, backward) of examples packed into one micro-batch.
 * loss_sum += the summed cross-entropy; gradients += d(scale * that sum). */
static oc_status micro_batch(oc_trainer *tr, oc_exec *xc, const oc_train_example *ex,
                             size_t n, float scale, int train, double *loss_sum) {
    const oc_model_config *c = &tr->params.cfg;
    mb_state m;
    OC_TRY(mb_forward(tr, xc, ex, n, &m));
    oc_t_lmhead_ce(xc, loss_sum, train ? m.w.dxr : NULL, tr->g.lm_head, m.w.xr, m.targets,
                   tr->params.t.lm_head, m.w.R, c->text.hidden, c->text.vocab, scale,
                   m.w.scratch);
    if (train)
        mb_backward(tr, xc, ex, n, &m);
    return OC_OK;
}

/* Summed log-probability of each example's labelled tokens (logp (n)), from the per-row
 * cross-entropies of a forward pass (rows are in sequence order). */
static void seq_logprobs(const oc_train_example *ex, size_t n, const float *rloss,
                         double *logp, size_t *counts) {
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = n_labelled(&ex[i]);
        double sum = 0;
        for (size_t j = 0; j < k; j++)
            sum -= rloss[r + j];
        r += k;
        logp[i] = sum;
        if (counts)
            counts[i] = k;
    }
}

/* Forward of a micro-batch up to the per-row losses, without gradients. */
static oc_status mb_row_losses(oc_trainer *tr, oc_exec *xc, const oc_train_example *ex,
                               size_t n, mb_state *m) {
    const oc_model_config *c = &tr->params.cfg;
    OC_TRY(mb_forward(tr, xc, ex, n, m));
    oc_t_lmhead_ce_rows(xc, m->w.rloss, NULL, NULL, m->w.xr, m->targets, tr->params.t.lm_head,
                        m->w.R, c->text.hidden, c->text.vocab, NULL, m->w.scratch);
    return OC_OK;
}

/* ---- how many threads ------------------------------------------------------------ */

/* The pool, or the calling thread alone when that measured faster (core/tuner.h): the
 * results are the same bits either way. */
static oc_exec *step_exec(oc_trainer *tr, int *pool) {
    *pool = oc_pool_size(tr->pool) > 1 ? oc_tuner_choose(&tr->tune) : 1;
    tr->ex.pool = *pool ? tr->pool : NULL;
    return &tr->ex;
}

/* ---- steps -------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

oc_status oc_trainer_eval(oc_trainer *tr, const oc_train_example *ex, size_t n,
                          double *loss) {
    if (!tr || !loss)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_eval: NULL argument");
    size_t labelled, tokens;
    OC_TRY(check_examples(tr, ex, n, &labelled, &tokens));
    if (labelled == 0)
        return oc_err(OC_ERR_INVALID_ARG, "training: no labelled positions in the batch");
    double sum = 0;
    size_t b = tr->p.batch;
    oc_status s = OC_OK;
    int pool;
    oc_exec *xc = step_exec(tr, &pool);
    for (size_t i = 0; i < n && s == OC_OK; i += b)
        s = micro_batch(tr, xc, ex + i, n - i < b ? n - i : b, 0.0f, 0, &sum);
    if (s == OC_OK)
        *loss = sum / (double)labelled;
    return s;
}

static oc_status dump_step(oc_trainer *tr, const float *grads, const oc_train_stats *st) {
    oc_st_writer *w = NULL;
    OC_TRY(oc_st_writer_new(&w));
    double scalars[3] = {st->loss, st->grad_norm, st->lr};
    const char *names[3] = {"loss", "grad_norm", "lr"};
    oc_status s = OC_OK;
    for (int i = 0; i < 3 && s == OC_OK; i++)
        s = oc_st_writer_add(w, names[i], OC_DT_F64, 1, (int64_t[]){1}, &scalars[i]);
    if (s == OC_OK)
        s = oc_params_add_to_writer(&tr->params, grads, "grad.", w);
    if (s == OC_OK)
        s = oc_params_add_to_writer(&tr->params, tr->params.mem, "param.", w);
    if (s == OC_OK)
        s = oc_st_writer_save(w, tr->dump_path);
    oc_st_writer_free(w);
    return s;
}

/* In a job of several ranks: every rank's status of the same point, OC_OK when all are
 * (core/dist.h). Alone: s. */
static oc_status agree(const oc_trainer *tr, oc_status s) {
    return tr->ranks > 1 ? oc_dist_agree(s) : s;
}

/* An error every rank reached from the same values (a step's counts, its gradient). */
static oc_status shared_err(const oc_trainer *tr, oc_status s) {
    if (tr->ranks > 1)
        oc_dist_mark_shared();
    return s;
}

void oc_trainer_part(const oc_trainer *tr, size_t n, size_t *first, size_t *count) {
    size_t lo = 0, hi = n;
    if (tr && tr->ranks > 1)
        oc_dist_block_of(n, tr->rank, tr->ranks, &lo, &hi);
    if (first)
        *first = lo;
    if (count)
        *count = hi - lo;
}

/* The rest of a step once this rank's gradient is in tr->grad and st holds the step's
 * loss, counts (and preference numbers): on several ranks the gradient's reduce-scatter,
 * then the norm, the first step's dump, clipping, AdamW on this rank's shard, the
 * parameters' allgather; counters and the progress callback. flops: the whole step's. */
static oc_status finish_step(oc_trainer *tr, oc_exec *xc, int pool, double t_start,
                             double comm0, double flops, oc_train_stats *st,
                             oc_train_stats *stats) {
    const oc_params *pp = &tr->params;
    oc_status s = OC_OK;
    st->threads = oc_pool_size(xc->pool);
    st->ranks = tr->ranks;
    size_t lo = tr->lo, own = tr->hi - tr->lo;
    if (tr->ranks > 1) {
        /* this rank's shard of the summed gradient */
        OC_TRY(oc_dist_reduce_scatter_f32(tr->grad, tr->shard, "the gradient exchange"));
        double sq = oc_grad_sumsq(xc, tr->grad + lo, own);
        OC_TRY(oc_dist_sum(&sq, 1));
        st->grad_norm = sqrt(sq);
    } else {
        st->grad_norm = oc_grad_norm(xc, tr->grad, pp->numel);
    }
    if (!isfinite(st->grad_norm))
        return shared_err(tr, oc_err(OC_ERR_INVALID_ARG, "training diverged: the gradient is "
                                     "not finite at step %llu (loss %g); the weights are left "
                                     "as they were (a lower learning rate may help)",
                                     (unsigned long long)tr->step + 1, st->loss));
    float *raw = NULL;
    int dump = tr->dump_path && !tr->dumped;
    if (dump && tr->ranks > 1) /* the whole summed gradient, for the dump */
        OC_TRY(oc_dist_allgather_f32(tr->grad, tr->shard, "the gradient dump"));
    if (dump && !(raw = oc_malloc(pp->numel * sizeof(float))))
        s = oc_err(OC_ERR_NOMEM, "out of memory for the gradient dump");
    OC_TRY(agree(tr, s));

    if (dump)
        memcpy(raw, tr->grad, pp->numel * sizeof(float));
    if (tr->p.clip > 0)
        oc_clip_grads(xc, tr->grad + lo, own, st->grad_norm, tr->p.clip);

    /* the schedule's value at the number of steps already taken (0 for the first) */
    st->lr = tr->p.lr * oc_lr_lambda((int)tr->p.schedule, tr->step, tr->p.warmup_steps,
                                     tr->p.steps);
    for (size_t i = 0; i < pp->n_tensors; i++) {
        const oc_tp_info *e = &pp->info[i];
        /* the tensor's part in this rank's shard (all of it alone) */
        size_t a = e->offset > lo ? e->offset : lo,
               z = e->offset + e->numel < tr->hi ? e->offset + e->numel : tr->hi;
        if (a >= z)
            continue;
        oc_adamw_hparams h = {st->lr * tr->lr_scale[i], tr->p.beta1, tr->p.beta2, tr->p.eps,
                              tr->p.weight_decay};
        oc_adamw_update(xc, pp->mem + a, tr->grad + a, tr->m + (a - lo), tr->v + (a - lo),
                        z - a, &h, tr->step + 1, tr->decay[i] ? h.weight_decay : 0.0);
    }
    if (tr->ranks > 1 &&
        (s = oc_dist_allgather_f32(pp->mem, tr->shard, "the exchange of the parameters")) !=
            OC_OK) {
        oc_free(raw);
        return s;
    }
    tr->step++;
    tr->total_flops += flops;

    st->step = tr->step;
    st->total_steps = tr->p.steps;
    st->flops = flops;
    st->total_flops = tr->total_flops;
    st->seconds = now_s() - t_start;
    st->comm_seconds = oc_dist_comm_seconds() - comm0;
    oc_tuner_record(&tr->tune, pool, st->seconds - st->comm_seconds, flops);
    if (dump) {
        tr->dumped = 1;
        if (tr->rank == 0)
            s = dump_step(tr, raw, st);
        oc_free(raw);
    }
    if (stats)
        *stats = *st;
    if (tr->p.on_progress && tr->p.on_progress(st, tr->p.user_data))
        tr->stop = 1;
    return s;
}

/* One optimizer step on this rank's part ex[0..count) of a step of n examples (all of
 * them alone). */
static oc_status step_part(oc_trainer *tr, const oc_train_example *ex, size_t count, size_t n,
                           oc_train_stats *stats) {
    double t_start = now_s(), comm0 = oc_dist_comm_seconds();
    size_t labelled = 0, tokens = 0;
    oc_status s = OC_OK;
    if (n == 0 || count || tr->ranks == 1)
        s = check_examples(tr, ex, count, &labelled, &tokens);
    if (tr->ranks > 1) {
        /* the counts of the whole step: the loss is the mean over all its positions */
        OC_TRY(oc_dist_agree(s));
        uint64_t c[2] = {labelled, tokens};
        OC_TRY(oc_dist_sum_u64(c, 2, "the exchange of the step's counts"));
        labelled = (size_t)c[0];
        tokens = (size_t)c[1];
    }
    OC_TRY(s);
    if (labelled == 0)
        return shared_err(tr, oc_err(OC_ERR_INVALID_ARG, "training: no labelled positions in "
                                     "the batch"));
    const oc_params *pp = &tr->params;
    /* mean over the step's labelled positions, as a single batch in torch would have it */
    float scale = 1.0f / (float)labelled;
    double sum = 0;
    size_t b = tr->p.batch;
    int pool;
    oc_exec *xc = step_exec(tr, &pool);
    double flops0 = oc_exec_flops(xc);
    oc_t_zero(xc, tr->grad, pp->numel);
    for (size_t i = 0; i < count && s == OC_OK; i += b)
        s = micro_batch(tr, xc, ex + i, count - i < b ? count - i : b, scale, 1, &sum);
    double flops = oc_exec_flops(xc) - flops0;
    OC_TRY(agree(tr, s));
    if (tr->ranks > 1) { /* the loss and FLOPs of every rank */
        double d[2] = {sum, flops};
        OC_TRY(oc_dist_sum(d, 2));
        sum = d[0];
        flops = d[1];
    }
    oc_train_stats st;
    memset(&st, 0, sizeof st);
    st.loss = sum / (double)labelled;
    st.tokens = tokens;
    st.labelled = labelled;
    return finish_step(tr, xc, pool, t_start, comm0, flops, &st, stats);
}

oc_status oc_trainer_step(oc_trainer *tr, const oc_train_example *ex, size_t n,
                          oc_train_stats *stats) {
    if (!tr)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_step: NULL trainer");
    size_t first, count;
    oc_trainer_part(tr, n, &first, &count);
    return step_part(tr, ex ? ex + first : NULL, count, n, stats);
}

/* ---- checkpoints -------------------------------------------------------------------- */

/* A checkpoint is one folder output (core/output.h): written whole beside the old one and
 * exchanged with it in one rename, so that the folder is at every moment the whole
 * previous checkpoint or the whole new one, never weights of one step with the optimizer
 * state of another. Both safetensors files also carry the step ("ocellus_step"), which
 * resume checks. */

/* The files of a model folder that are not weights or config. */
static const char *const side_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "preprocessor_config.json",
    "processor_config.json", "chat_template.json", "chat_template.jinja",
    "generation_config.json",
};

static oc_status copy_side_files(const char *from, oc_out_dir *d, const char *dir) {
    for (size_t i = 0; i < sizeof side_files / sizeof side_files[0]; i++) {
        char *src = oc_path_join(from, side_files[i]);
        if (!src)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        oc_status s = OC_OK;
        if (oc_file_exists(src)) {
            char *data = NULL;
            size_t n = 0;
            s = oc_read_file(src, (size_t)256 << 20, &data, &n);
            if (s != OC_OK)
                s = oc_err_prefix(s, "checkpoint %s: ", dir);
            else
                s = oc_out_dir_write(d, side_files[i], data, n);
            oc_free(data);
        }
        oc_free(src);
        OC_TRY(s);
    }
    return OC_OK;
}

#define STEP_KEY "ocellus_step"

static oc_status save_tensors(oc_out_dir *d, const char *name, oc_st_writer *w,
                              uint64_t step) {
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)step);
    OC_TRY(oc_st_writer_set_metadata(w, STEP_KEY, text));
    oc_out_file *f;
    OC_TRY(oc_out_dir_create(d, name, &f));
    oc_status s = oc_st_writer_write(w, f);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    return oc_out_commit(f);
}

/* m, v: (numel) the moments of every parameter (every rank's shard). */
static oc_status save_optimizer(oc_trainer *tr, oc_out_dir *d, const float *m,
                                const float *v) {
    oc_st_writer *w = NULL;
    oc_status s = oc_st_writer_new(&w);
    if (s == OC_OK)
        s = oc_params_add_to_writer(&tr->params, m, "exp_avg.", w);
    if (s == OC_OK)
        s = oc_params_add_to_writer(&tr->params, v, "exp_avg_sq.", w);
    if (s == OC_OK)
        s = oc_st_writer_add(w, "step", OC_DT_I64, 1, (int64_t[]){1}, &tr->step);
    if (s == OC_OK)
        s = oc_st_writer_add(w, "rng", OC_DT_I64, 1, (int64_t[]){4}, tr->rng.s);
    if (s == OC_OK)
        s = oc_st_writer_add(w, "total_flops", OC_DT_F64, 1, (int64_t[]){1},
                             &tr->total_flops);
    if (s == OC_OK)
        s = save_tensors(d, "optimizer.safetensors", w, tr->step);
    oc_st_writer_free(w);
    return s;
}

static oc_status save_into(oc_trainer *tr, oc_out_dir *d, const char *dir, const float *m,
                           const float *v) {
    OC_TRY(copy_side_files(tr->src_dir, d, dir));
    OC_TRY(oc_out_dir_write(d, "config.json", tr->config_text, strlen(tr->config_text)));
    oc_st_writer *w = NULL;
    oc_status s = oc_st_writer_new(&w);
    if (s == OC_OK)
        s = oc_params_add_to_writer(&tr->params, tr->params.mem, "", w);
    if (s == OC_OK)
        s = save_tensors(d, "model.safetensors", w, tr->step);
    oc_st_writer_free(w);
    if (s == OC_OK)
        s = save_optimizer(tr, d, m, v);
    return s;
}

static oc_status save_local(oc_trainer *tr, const char *dir, const float *m, const float *v) {
    /* during oc_trainer_fit the run holds its output's lock */
    oc_out_lock *held = oc_out_lock_is_for(tr->lock, dir) ? tr->lock : NULL;
    oc_out_dir *d;
    OC_TRY(oc_out_dir_begin(dir, held, &d));
    oc_status s = save_into(tr, d, dir, m, v);
    if (s != OC_OK) {
        oc_out_dir_abort(d);
        return s;
    }
    return oc_out_dir_commit(d);
}

oc_status oc_trainer_save(oc_trainer *tr, const char *dir) {
    if (!tr || !dir)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_save: NULL argument");
    if (tr->ranks == 1)
        return save_local(tr, dir, tr->m, tr->v);
    /* every rank's shard of the moments to rank 0, which writes the one checkpoint */
    size_t n = tr->params.numel;
    float *m = NULL, *v = NULL;
    oc_status s = OC_OK;
    if (tr->rank == 0 && (!(m = oc_malloc(n * sizeof *m)) || !(v = oc_malloc(n * sizeof *v))))
        s = oc_err(OC_ERR_NOMEM, "out of memory for the optimizer state of %zu parameters", n);
    s = oc_dist_agree(s);
    if (s == OC_OK)
        s = oc_dist_gather_f32(m, tr->m, tr->shard, 0, "the gathering of the optimizer state");
    if (s == OC_OK)
        s = oc_dist_gather_f32(v, tr->v, tr->shard, 0, "the gathering of the optimizer state");
    if (s == OC_OK) {
        if (tr->rank == 0)
            s = save_local(tr, dir, m, v);
        s = oc_dist_agree(s); /* every rank knows whether it was saved */
    }
    oc_free(m);
    oc_free(v);
    return s;
}

/* Where a run's examples come from: each rank asks for all n of a step (whole) or for
 * its part (part); or n preference pairs a step (pref, one process). */
typedef struct {
    oc_train_batch_fn whole;
    oc_train_part_fn part;
    oc_pref_batch_fn pref;
    void *user_data;
} batch_source;

static oc_status fit(oc_trainer *tr, const batch_source *src) {
    size_t n = (size_t)tr->p.batch * tr->p.grad_accum, first = 0, count = n;
    if (src->part)
        oc_trainer_part(tr, n, &first, &count);
    size_t n_ex = src->part ? (count ? count : 1) : n;
    size_t elem = src->pref ? sizeof(oc_pref_example) : sizeof(oc_train_example);
    void *ex = oc_calloc(n_ex, elem);
    oc_status s = ex ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    /* a second run writing the same folder fails now, not at its first save; in a job of
     * several ranks rank 0 alone writes */
    if (s == OC_OK && tr->out_dir && !tr->lock && tr->rank == 0)
        s = oc_out_lock_acquire(tr->out_dir, &tr->lock);
    s = agree(tr, s);
    tr->stop = 0;
    while (s == OC_OK && tr->step < tr->p.steps && !tr->stop) {
        memset(ex, 0, n_ex * elem);
        if (src->pref) {
            s = src->pref(ex, n, src->user_data);
            if (s == OC_OK)
                s = oc_trainer_pref_step(tr, ex, n, NULL);
        } else if (src->part) {
            s = agree(tr, src->part(ex, n, first, count, src->user_data));
            if (s == OC_OK)
                s = step_part(tr, ex, count, n, NULL);
        } else {
            s = agree(tr, src->whole(ex, n, src->user_data));
            if (s == OC_OK)
                s = oc_trainer_step(tr, ex, n, NULL);
        }
        if (s == OC_OK && tr->ranks > 1) {
            /* any rank's callback stops them all, after the same step */
            uint64_t stop = (uint64_t)tr->stop;
            s = oc_dist_sum_u64(&stop, 1, "the exchange of the stop flag");
            tr->stop = stop > 0;
        }
        if (s == OC_OK && tr->out_dir && tr->p.save_every && tr->step % tr->p.save_every == 0 &&
            tr->step < tr->p.steps)
            s = oc_trainer_save(tr, tr->out_dir);
    }
    oc_free(ex);
    if (s == OC_OK && tr->out_dir)
        s = oc_trainer_save(tr, tr->out_dir);
    oc_out_lock_release(tr->lock);
    tr->lock = NULL;
    if (s == OC_OK && tr->stop)
        s = shared_err(tr, oc_err(OC_ERR_CANCELLED, "training stopped by the progress "
                                  "callback at step %llu", (unsigned long long)tr->step));
    return s;
}

oc_status oc_trainer_fit(oc_trainer *tr, oc_train_batch_fn next_batch, void *user_data) {
    if (!tr || !next_batch)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_fit: NULL argument");
    batch_source src = {next_batch, NULL, NULL, user_data};
    return fit(tr, &src);
}

oc_status oc_trainer_fit_parts(oc_trainer *tr, oc_train_part_fn next_part, void *user_data) {
    if (!tr || !next_part)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_fit_parts: NULL argument");
    batch_source src = {NULL, next_part, NULL, user_data};
    return fit(tr, &src);
}

oc_status oc_trainer_fit_pref(oc_trainer *tr, oc_pref_batch_fn next_batch, void *user_data) {
    if (!tr || !next_batch)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_fit_pref: NULL argument");
    batch_source src = {NULL, NULL, next_batch, user_data};
    return fit(tr, &src);
}

/* ---- preference optimisation ------------------------------------------------------- */

oc_status oc_trainer_logprobs(oc_trainer *tr, const oc_train_example *ex, size_t n,
                              double *logp, size_t *n_tokens) {
    if (!tr || !logp)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_logprobs: NULL argument");
    size_t labelled, tokens;
    OC_TRY(check_examples(tr, ex, n, &labelled, &tokens));
    size_t b = tr->p.batch;
    int pool;
    oc_exec *xc = step_exec(tr, &pool);
    for (size_t i = 0; i < n; i += b) {
        size_t k = n - i < b ? n - i : b;
        mb_state m;
        OC_TRY(mb_row_losses(tr, xc, ex + i, k, &m));
        seq_logprobs(ex + i, k, m.w.rloss, logp + i, n_tokens ? n_tokens + i : NULL);
    }
    return OC_OK;
}

/* The objective's hyperparameters with the defaults filled in. */
static void pref_hparams(const oc_train_params *p, double *beta, double *gamma,
                         double *lambda) {
    *beta = p->pref_beta > 0 ? p->pref_beta : p->objective == OC_OBJECTIVE_SIMPO ? 2.0 : 0.1;
    *gamma = p->simpo_gamma;
    *lambda = p->orpo_lambda;
}

/* Sums over a step's pairs. */
typedef struct {
    double loss, rc, rr;
    size_t correct;
} pref_sums;

/* One micro-batch of np pairs, packed as chosen0, rejected0, chosen1, ...: forward, the
 * pairs' losses and their derivatives with respect to each reply's log-probability, then
 * the cross-entropy's gradient at every row scaled by its reply's derivative / n_total
 * (the step's mean over pairs), and backward. */
static oc_status pref_micro_batch(oc_trainer *tr, oc_exec *xc, const oc_pref_example *pairs,
                                  size_t np, size_t n_total, oc_train_example *seqs,
                                  int train, pref_sums *acc) {
    const oc_model_config *c = &tr->params.cfg;
    for (size_t i = 0; i < np; i++) {
        seqs[2 * i] = pairs[i].chosen;
        seqs[2 * i + 1] = pairs[i].rejected;
    }
    mb_state m;
    OC_TRY(mb_row_losses(tr, xc, seqs, 2 * np, &m));
    double beta, gamma, lambda;
    pref_hparams(&tr->p, &beta, &gamma, &lambda);
    size_t r = 0;
    for (size_t i = 0; i < np; i++) {
        double lp[2];
        size_t cnt[2];
        seq_logprobs(seqs + 2 * i, 2, m.w.rloss + r, lp, cnt);
        oc_pref_pair in = {lp[0], lp[1], pairs[i].ref_chosen, pairs[i].ref_rejected, cnt[0],
                           cnt[1]};
        oc_pref_pair_out out;
        oc_pref_pair_loss((int)tr->p.objective, beta, gamma, lambda, &in, &out);
        if (tr->p.rpo_alpha > 0 && tr->p.objective != OC_OBJECTIVE_ORPO)
            oc_pref_add_nll(tr->p.rpo_alpha, &in, &out);
        acc->loss += out.loss;
        acc->rc += out.reward_c;
        acc->rr += out.reward_r;
        acc->correct += out.reward_c > out.reward_r;
        /* log p = -sum of the rows' cross-entropies: d loss / d ce_row = -d loss / d log p */
        for (int k = 0; k < 2; k++) {
            float sc = (float)(-(k ? out.dpr : out.dpc) / (double)n_total);
            for (size_t j = 0; j < cnt[k]; j++)
                m.w.rscale[r + j] = sc;
            r += cnt[k];
        }
    }
    if (!train)
        return OC_OK;
    oc_t_lmhead_ce_rows(xc, NULL, m.w.dxr, tr->g.lm_head, m.w.xr, m.targets,
                        tr->params.t.lm_head, m.w.R, c->text.hidden, c->text.vocab,
                        m.w.rscale, m.w.scratch);
    mb_backward(tr, xc, seqs, 2 * np, &m);
    return OC_OK;
}

static oc_status check_pairs(const oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                             oc_train_example *seqs, size_t *labelled, size_t *tokens) {
    for (size_t i = 0; i < n; i++) {
        seqs[2 * i] = pairs[i].chosen;
        seqs[2 * i + 1] = pairs[i].rejected;
    }
    OC_TRY(check_examples(tr, seqs, 2 * n, labelled, tokens));
    for (size_t i = 0; i < 2 * n; i++)
        if (n_labelled(&seqs[i]) == 0)
            return oc_err(OC_ERR_INVALID_ARG, "preference pair %zu: the %s reply has no "
                          "labelled tokens", i / 2, i % 2 ? "rejected" : "chosen");
    if (tr->p.objective == OC_OBJECTIVE_DPO)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(pairs[i].ref_chosen) || !isfinite(pairs[i].ref_rejected))
                return oc_err(OC_ERR_INVALID_ARG, "preference pair %zu: the reference "
                              "log-probabilities are not finite", i);
    return OC_OK;
}

oc_status oc_trainer_pref_step(oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                               oc_train_stats *stats) {
    if (!tr || !pairs || n == 0)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_pref_step: no pairs");
    if (tr->p.objective == OC_OBJECTIVE_SFT)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_pref_step: the objective is SFT "
                      "(set params.objective to DPO, SimPO or ORPO)");
    double t_start = now_s(), comm0 = oc_dist_comm_seconds();
    /* on several ranks each takes its block of the pairs; the losses are scaled by the
     * whole step's 1/n, so that the gradients' sum over ranks is one process's */
    size_t first, count;
    oc_trainer_part(tr, n, &first, &count);
    pairs += first;
    oc_train_example *seqs = oc_malloc((2 * count + 1) * sizeof *seqs);
    if (!seqs)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t labelled = 0, tokens = 0;
    oc_status s = count ? check_pairs(tr, pairs, count, seqs, &labelled, &tokens) : OC_OK;
    int pool;
    oc_exec *xc = step_exec(tr, &pool);
    double flops0 = oc_exec_flops(xc);
    pref_sums acc = {0, 0, 0, 0};
    if (s == OC_OK)
        oc_t_zero(xc, tr->grad, tr->params.numel);
    size_t b = tr->p.batch;
    for (size_t i = 0; i < count && s == OC_OK; i += b)
        s = pref_micro_batch(tr, xc, pairs + i, count - i < b ? count - i : b, n, seqs, 1,
                             &acc);
    oc_free(seqs);
    OC_TRY(agree(tr, s));
    double flops = oc_exec_flops(xc) - flops0;
    if (tr->ranks > 1) { /* the step's sums over every rank's pairs, in rank order */
        double d[7] = {acc.loss, acc.rc, acc.rr, (double)acc.correct, (double)labelled,
                       (double)tokens, flops};
        OC_TRY(oc_dist_sum(d, 7));
        acc.loss = d[0];
        acc.rc = d[1];
        acc.rr = d[2];
        acc.correct = (size_t)d[3];
        labelled = (size_t)d[4];
        tokens = (size_t)d[5];
        flops = d[6];
    }
    oc_train_stats st;
    memset(&st, 0, sizeof st);
    st.loss = acc.loss / (double)n;
    st.tokens = tokens;
    st.labelled = labelled;
    st.pairs = n;
    st.reward_chosen = acc.rc / (double)n;
    st.reward_rejected = acc.rr / (double)n;
    st.reward_margin = st.reward_chosen - st.reward_rejected;
    st.pref_accuracy = (double)acc.correct / (double)n;
    return finish_step(tr, xc, pool, t_start, comm0, flops, &st, stats);
}

oc_status oc_trainer_pref_eval(oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                               oc_train_stats *stats) {
    if (!tr || !pairs || n == 0 || !stats)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_pref_eval: no pairs");
    if (tr->p.objective == OC_OBJECTIVE_SFT)
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_pref_eval: the objective is SFT");
    oc_train_example *seqs = oc_malloc(2 * n * sizeof *seqs);
    if (!seqs)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t labelled = 0, tokens = 0;
    oc_status s = check_pairs(tr, pairs, n, seqs, &labelled, &tokens);
    int pool;
    oc_exec *xc = step_exec(tr, &pool);
    pref_sums acc = {0, 0, 0, 0};
    size_t b = tr->p.batch;
    for (size_t i = 0; i < n && s == OC_OK; i += b)
        s = pref_micro_batch(tr, xc, pairs + i, n - i < b ? n - i : b, n, seqs, 0, &acc);
    oc_free(seqs);
    if (s != OC_OK)
        return s;
    memset(stats, 0, sizeof *stats);
    stats->step = tr->step;
    stats->loss = acc.loss / (double)n;
    stats->tokens = tokens;
    stats->labelled = labelled;
    stats->pairs = n;
    stats->reward_chosen = acc.rc / (double)n;
    stats->reward_rejected = acc.rr / (double)n;
    stats->reward_margin = stats->reward_chosen - stats->reward_rejected;
    stats->pref_accuracy = (double)acc.correct / (double)n;
    return OC_OK;
}
