/* The recipe of a scaling study: a JSON object read into sc_recipe, with every key
 * checked (an unknown key is an error, so that a typo never silently falls back to a
 * default) and paths resolved against the recipe's folder. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "scale_internal.h"

/* path relative to the recipe's folder (absolute paths kept), malloc'd */
static char *resolve(const char *recipe, const char *path) {
    if (path[0] == '/')
        return oc_strdup(path);
    const char *slash = strrchr(recipe, '/');
    if (!slash)
        return oc_strdup(path);
    size_t n = (size_t)(slash - recipe);
    char *dir = oc_strndup(recipe, n ? n : 1);
    char *p = dir ? oc_path_join(dir, path) : NULL;
    oc_free(dir);
    return p;
}

/* Errors if obj has a key not in the NULL-terminated list. */
static oc_status only_keys(const cJSON *obj, const char *where, const char *file,
                           const char *const *keys) {
    if (!obj)
        return OC_OK;
    if (!cJSON_IsObject(obj))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be an object", file, where);
    for (const cJSON *e = obj->child; e; e = e->next) {
        int known = 0;
        for (size_t i = 0; keys[i] && !known; i++)
            known = !strcmp(e->string, keys[i]);
        if (!known)
            return oc_err(OC_ERR_FORMAT, "%s: unknown key \"%s%s%s\"", file, where,
                          *where ? "." : "", e->string);
    }
    return OC_OK;
}

static oc_status get_u64(const cJSON *o, const char *k, int req, uint64_t def, uint64_t lo,
                         uint64_t hi, const char *file, uint64_t *out) {
    int64_t v;
    OC_TRY(oc_json_int(o, k, req, (int64_t)def, (int64_t)lo, (int64_t)hi, file, &v));
    *out = (uint64_t)v;
    return OC_OK;
}

static oc_status get_u32(const cJSON *o, const char *k, int req, uint32_t def, uint32_t lo,
                         uint32_t hi, const char *file, uint32_t *out) {
    uint64_t v;
    OC_TRY(get_u64(o, k, req, def, lo, hi, file, &v));
    *out = (uint32_t)v;
    return OC_OK;
}

static oc_status get_num(const cJSON *o, const char *k, int req, double def, double lo,
                         double hi, const char *file, double *out) {
    OC_TRY(oc_json_num(o, k, req, def, file, out));
    if (!(*out >= lo && *out <= hi))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" = %g is out of range [%g, %g]", file, k,
                      *out, lo, hi);
    return OC_OK;
}

static oc_status get_path(const cJSON *o, const char *k, int req, const char *file,
                          char **out) {
    const char *s = NULL;
    OC_TRY(oc_json_str(o, k, req, file, &s));
    *out = NULL;
    if (!s)
        return OC_OK;
    if (!*s)
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" is empty", file, k);
    if (!(*out = resolve(file, s)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    return OC_OK;
}

static oc_status parse_data(sc_recipe *r, const cJSON *d, const char *f) {
    static const char *const keys[] = {"kind", "seed", "train_scenes", "val_scenes",
                                       "test_scenes", "image_size", "questions_per_image",
                                       "train", "val", "questions", NULL};
    if (!d)
        return oc_err(OC_ERR_FORMAT, "%s: missing \"data\"", f);
    OC_TRY(only_keys(d, "data", f, keys));
    const char *kind = NULL;
    OC_TRY(oc_json_str(d, "kind", 1, f, &kind));
    if (!strcmp(kind, "shapes")) {
        r->shapes = 1;
        OC_TRY(get_u64(d, "seed", 0, 1, 0, UINT32_MAX, f, &r->data_seed));
        OC_TRY(get_u64(d, "train_scenes", 0, 20000, 10, 10000000, f, &r->train_scenes));
        OC_TRY(get_u64(d, "val_scenes", 0, 1000, 1, 1000000, f, &r->val_scenes));
        OC_TRY(get_u64(d, "test_scenes", 0, 250, 1, 1000000, f, &r->test_scenes));
        OC_TRY(get_u32(d, "image_size", 0, 48, 32, 1024, f, &r->image_size));
        OC_TRY(get_u32(d, "questions_per_image", 0, 4, 1, 64, f, &r->questions_per_image));
        if (oc_json_get(d, "train") || oc_json_get(d, "val") || oc_json_get(d, "questions"))
            return oc_err(OC_ERR_FORMAT, "%s: \"data\" of kind \"shapes\" takes no files",
                          f);
    } else if (!strcmp(kind, "jsonl")) {
        OC_TRY(get_path(d, "train", 1, f, &r->train_jsonl));
        OC_TRY(get_path(d, "val", 1, f, &r->val_jsonl));
        OC_TRY(get_path(d, "questions", 0, f, &r->questions_jsonl));
    } else {
        return oc_err(OC_ERR_FORMAT, "%s: data \"kind\" is \"shapes\" or \"jsonl\", not "
                      "\"%s\"", f, kind);
    }
    return OC_OK;
}

static oc_status parse_model(sc_recipe *r, const cJSON *m, const char *f) {
    static const char *const keys[] = {"text_layers", "text_heads", "text_mlp_ratio",
                                       "vision_layers", "vision_heads", "vision_mlp_ratio",
                                       "vision_width_ratio", "width_multiple", NULL};
    if (!m)
        return oc_err(OC_ERR_FORMAT, "%s: missing \"model\"", f);
    OC_TRY(only_keys(m, "model", f, keys));
    OC_TRY(get_u32(m, "text_layers", 1, 0, 1, 256, f, &r->text_layers));
    OC_TRY(get_u32(m, "text_heads", 1, 0, 1, 256, f, &r->text_heads));
    OC_TRY(get_num(m, "text_mlp_ratio", 0, 3, 0.25, 64, f, &r->text_mlp_ratio));
    OC_TRY(get_u32(m, "vision_layers", 1, 0, 1, 256, f, &r->vision_layers));
    OC_TRY(get_u32(m, "vision_heads", 1, 0, 1, 256, f, &r->vision_heads));
    OC_TRY(get_num(m, "vision_mlp_ratio", 0, 4, 0.25, 64, f, &r->vision_mlp_ratio));
    OC_TRY(get_num(m, "vision_width_ratio", 0, 1, 0.05, 16, f, &r->vision_width_ratio));
    /* RoPE rotates pairs: the head dimension W / heads must be even */
    OC_TRY(get_u32(m, "width_multiple", 0, 2 * r->text_heads, 1, 4096, f,
                   &r->width_multiple));
    if (r->width_multiple % (2 * r->text_heads))
        return oc_err(OC_ERR_FORMAT, "%s: \"model.width_multiple\" = %u must be a multiple of "
                      "2 x text_heads (%u), so that every head dimension is even", f,
                      r->width_multiple, 2 * r->text_heads);
    return OC_OK;
}

static oc_status parse_ladder(sc_recipe *r, const cJSON *l, const char *f) {
    static const char *const keys[] = {"runs", "max_compute_fraction", "compute_ratio",
                                       "tokens_exponent", "variants", NULL};
    if (!l)
        return oc_err(OC_ERR_FORMAT, "%s: missing \"ladder\"", f);
    OC_TRY(only_keys(l, "ladder", f, keys));
    OC_TRY(get_u32(l, "runs", 0, 8, 6, SC_MAX_RUNS, f, &r->runs));
    OC_TRY(get_num(l, "max_compute_fraction", 0, 0.01, 1e-9, 0.5, f, &r->max_fraction));
    OC_TRY(get_num(l, "compute_ratio", 0, 2, 1.05, 100, f, &r->compute_ratio));
    OC_TRY(get_num(l, "tokens_exponent", 0, 1, 0, 4, f, &r->tokens_exponent));
    const cJSON *v = oc_json_get(l, "variants");
    r->n_variants = 0;
    if (!v) {
        r->variants[r->n_variants++] = 0.001;
    } else {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SC_MAX_VARIANTS)
            return oc_err(OC_ERR_FORMAT, "%s: \"ladder.variants\" must be a list of at most %d "
                          "compute fractions", f, SC_MAX_VARIANTS);
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble < r->max_fraction))
                return oc_err(OC_ERR_FORMAT, "%s: \"ladder.variants\": each is a fraction of "
                              "the target's compute below max_compute_fraction (%g)", f,
                              r->max_fraction);
            r->variants[r->n_variants++] = e->valuedouble;
        }
    }
    return OC_OK;
}

static oc_status parse_train(sc_recipe *r, const cJSON *t, const char *f) {
    static const char *const keys[] = {
        "batch", "lr", "lr_ref_width", "lr_width_exponent", "vision_lr_scale",
        "warmup_fraction", "schedule", "betas", "eps", "weight_decay", "clip", "init_std",
        "init_width_exponent", "seed", "min_steps", "checkpoints", NULL};
    if (!t)
        return oc_err(OC_ERR_FORMAT, "%s: missing \"train\"", f);
    OC_TRY(only_keys(t, "train", f, keys));
    OC_TRY(get_u32(t, "batch", 0, 8, 1, 4096, f, &r->batch));
    OC_TRY(get_num(t, "lr", 1, 0, 1e-8, 10, f, &r->lr));
    OC_TRY(get_num(t, "lr_ref_width", 0, r->target_width, 1, 1e6, f, &r->lr_ref_width));
    OC_TRY(get_num(t, "lr_width_exponent", 0, 1, -4, 4, f, &r->lr_width_exponent));
    OC_TRY(get_num(t, "vision_lr_scale", 0, 1, 0, 1000, f, &r->vision_lr_scale));
    OC_TRY(get_num(t, "warmup_fraction", 0, 0.05, 0, 0.5, f, &r->warmup_fraction));
    const char *sched = NULL;
    OC_TRY(oc_json_str(t, "schedule", 0, f, &sched));
    r->schedule = OC_SCHED_COSINE;
    if (sched && !strcmp(sched, "linear"))
        r->schedule = OC_SCHED_LINEAR;
    else if (sched && !strcmp(sched, "constant"))
        r->schedule = OC_SCHED_CONSTANT;
    else if (sched && strcmp(sched, "cosine"))
        return oc_err(OC_ERR_FORMAT, "%s: \"train.schedule\" is cosine, linear or constant",
                      f);
    r->beta1 = 0.9;
    r->beta2 = 0.95;
    const cJSON *b = oc_json_get(t, "betas");
    if (b) {
        if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(b, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(b, 1)))
            return oc_err(OC_ERR_FORMAT, "%s: \"train.betas\" must be [beta1, beta2]", f);
        r->beta1 = cJSON_GetArrayItem(b, 0)->valuedouble;
        r->beta2 = cJSON_GetArrayItem(b, 1)->valuedouble;
        if (!(r->beta1 >= 0 && r->beta1 < 1 && r->beta2 >= 0 && r->beta2 < 1))
            return oc_err(OC_ERR_FORMAT, "%s: \"train.betas\" must be in [0, 1)", f);
    }
    OC_TRY(get_num(t, "eps", 0, 1e-8, 1e-30, 1, f, &r->eps));
    OC_TRY(get_num(t, "weight_decay", 0, 0, 0, 10, f, &r->weight_decay));
    OC_TRY(get_num(t, "clip", 0, 1, 0, 1e6, f, &r->clip));
    OC_TRY(get_num(t, "init_std", 0, 0.02, 1e-6, 10, f, &r->init_std));
    OC_TRY(get_num(t, "init_width_exponent", 0, 0, -4, 4, f, &r->init_width_exponent));
    OC_TRY(get_u64(t, "seed", 0, 0, 0, UINT32_MAX, f, &r->seed));
    OC_TRY(get_u32(t, "min_steps", 0, 50, 1, 100000000, f, &r->min_steps));
    OC_TRY(get_u32(t, "checkpoints", 0, 10, 1, 10000, f, &r->checkpoints));
    return OC_OK;
}

static oc_status parse_fit(sc_recipe *r, const cJSON *fj, const char *f) {
    static const char *const keys[] = {"huber_delta", "bootstrap", "ci_level", "seed", NULL};
    OC_TRY(only_keys(fj, "fit", f, keys));
    r->fit = oc_powerlaw_default_params();
    OC_TRY(get_num(fj, "huber_delta", 0, r->fit.huber_delta, 1e-9, 10, f,
                   &r->fit.huber_delta));
    OC_TRY(get_u32(fj, "bootstrap", 0, r->fit.bootstrap, 0, 100000, f, &r->fit.bootstrap));
    OC_TRY(get_num(fj, "ci_level", 0, r->fit.ci_level, 0.5, 0.999, f, &r->fit.ci_level));
    OC_TRY(get_u64(fj, "seed", 0, 0, 0, UINT32_MAX, f, &r->fit.seed));
    return OC_OK;
}

static oc_status parse(sc_recipe *r, const cJSON *j, const char *f) {
    static const char *const keys[] = {"family", "base", "data", "model", "target", "ladder",
                                       "train", "fit", "capability", "threads", "comment",
                                       NULL};
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: a recipe is a JSON object", f);
    OC_TRY(only_keys(j, "", f, keys));
    const char *family = "smolvlm";
    OC_TRY(oc_json_str(j, "family", 0, f, &family));
    if (!family)
        family = "smolvlm";
    if (strcmp(family, "smolvlm"))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: family \"%s\": ocellus trains the \"smolvlm\" "
                      "family", f, family);
    OC_TRY(get_path(j, "base", 1, f, &r->base));
    OC_TRY(parse_data(r, oc_json_get(j, "data"), f));
    OC_TRY(parse_model(r, oc_json_get(j, "model"), f));
    const cJSON *t = oc_json_get(j, "target");
    static const char *const tkeys[] = {"width", "tokens", NULL};
    if (!t)
        return oc_err(OC_ERR_FORMAT, "%s: missing \"target\"", f);
    OC_TRY(only_keys(t, "target", f, tkeys));
    OC_TRY(get_u32(t, "width", 1, 0, 1, 65536, f, &r->target_width));
    if (r->target_width % r->width_multiple)
        return oc_err(OC_ERR_FORMAT, "%s: \"target.width\" = %u is not a multiple of "
                      "model.width_multiple (%u)", f, r->target_width, r->width_multiple);
    OC_TRY(get_u64(t, "tokens", 1, 0, 1000, (uint64_t)1 << 50, f, &r->target_tokens));
    OC_TRY(parse_ladder(r, oc_json_get(j, "ladder"), f));
    OC_TRY(parse_train(r, oc_json_get(j, "train"), f));
    OC_TRY(parse_fit(r, oc_json_get(j, "fit"), f));
    const cJSON *cap = oc_json_get(j, "capability");
    static const char *const ckeys[] = {"questions", NULL};
    OC_TRY(only_keys(cap, "capability", f, ckeys));
    OC_TRY(get_u32(cap, "questions", 0, 0, 0, 10000000, f, &r->capability_questions));
    int64_t th;
    OC_TRY(oc_json_int(j, "threads", 0, 1, 0, 1024, f, &th));
    r->threads = (int)th;
    return OC_OK;
}

oc_status sc_recipe_load(const char *path, sc_recipe *r) {
    memset(r, 0, sizeof *r);
    if (!path)
        return oc_err(OC_ERR_INVALID_ARG, "scale: no recipe");
    if (!(r->path = oc_strdup(path)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = oc_json_load(path, 1u << 20, &r->json);
    if (s == OC_OK)
        s = parse(r, r->json, path);
    if (s != OC_OK)
        sc_recipe_free(r);
    return s;
}

void sc_recipe_free(sc_recipe *r) {
    if (!r)
        return;
    oc_free(r->path);
    oc_free(r->base);
    oc_free(r->train_jsonl);
    oc_free(r->val_jsonl);
    oc_free(r->questions_jsonl);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}
