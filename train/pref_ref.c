/* DPO's reference log-probabilities: computed once by a frozen copy of the reference
 * model (the trainer's own forward pass, so that a policy equal to the reference scores
 * the same bits), and kept in a safetensors file keyed by the data file's and the
 * reference weights' hashes. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "dist.h"
#include "error.h"
#include "file.h"
#include "ocellus.h"
#include "output.h"
#include "safetensors.h"

#define KEY_DATA "ocellus_pref_data"
#define KEY_REF "ocellus_pref_ref"
#define KEY_REF_DIR "ocellus_pref_ref_dir"

/* FNV-1a 64 of the reference's weights file (model.safetensors, else the shard index). */
static oc_status weights_fingerprint(const char *dir, uint64_t *out) {
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json"};
    for (int k = 0; k < 2; k++) {
        char *path = oc_path_join(dir, names[k]);
        if (!path)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        if (!oc_file_exists(path)) {
            oc_free(path);
            continue;
        }
        oc_mapped_file f;
        oc_status s = oc_map_file(path, &f);
        oc_free(path);
        OC_TRY(s);
        uint64_t h = 0xcbf29ce484222325ULL;
        const unsigned char *p = f.data;
        for (size_t i = 0; i < f.size; i++)
            h = (h ^ p[i]) * 0x100000001b3ULL;
        oc_unmap_file(&f);
        *out = h;
        return OC_OK;
    }
    return oc_err(OC_ERR_IO, "%s: no model.safetensors", dir);
}

/* The cached values when the cache is for this data and (ref_fp != NULL) these weights;
 * *hit 0 otherwise. A cache that is not a readable safetensors file is an error: it is
 * not ours to overwrite. */
static oc_status read_cache(const char *path, size_t n, uint64_t data_fp, const uint64_t *ref_fp,
                            double *logp, int *hit) {
    *hit = 0;
    if (!oc_file_exists(path))
        return OC_OK;
    oc_st_file *f = NULL;
    OC_TRY(oc_st_open(path, &f));
    char want[32];
    const char *d = oc_st_metadata(f, KEY_DATA), *r = oc_st_metadata(f, KEY_REF);
    snprintf(want, sizeof want, "%016" PRIx64, data_fp);
    int match = d && !strcmp(d, want) && r;
    if (match && ref_fp) {
        snprintf(want, sizeof want, "%016" PRIx64, *ref_fp);
        match = !strcmp(r, want);
    }
    oc_status s = OC_OK;
    const oc_st_tensor *t = match ? oc_st_find(f, "logps") : NULL;
    if (match && (!t || t->dtype != OC_DT_F64 || t->ndim != 2 || t->shape[0] != (int64_t)n ||
                  t->shape[1] != 2))
        s = oc_err(OC_ERR_FORMAT, "%s: tensor 'logps' must be F64 [%zu, 2]", path, n);
    if (s == OC_OK && t) {
        memcpy(logp, t->data, 2 * n * sizeof *logp);
        for (size_t i = 0; i < 2 * n && s == OC_OK; i++)
            if (!isfinite(logp[i]) || logp[i] > 0)
                s = oc_err(OC_ERR_FORMAT, "%s: log-probability %zu is %g", path, i, logp[i]);
        *hit = s == OC_OK;
    }
    oc_st_close(f);
    return s;
}

static oc_status write_cache(const char *path, size_t n, uint64_t data_fp, uint64_t ref_fp,
                             const char *ref_dir, const double *logp) {
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) { /* the checkpoint folder may not exist yet */
        char *dir = oc_strndup(path, (size_t)(slash - path));
        oc_status s = dir ? oc_make_dirs(dir) : oc_err(OC_ERR_NOMEM, "out of memory");
        oc_free(dir);
        OC_TRY(s);
    }
    oc_st_writer *w = NULL;
    OC_TRY(oc_st_writer_new(&w));
    char text[32];
    snprintf(text, sizeof text, "%016" PRIx64, data_fp);
    oc_status s = oc_st_writer_set_metadata(w, KEY_DATA, text);
    snprintf(text, sizeof text, "%016" PRIx64, ref_fp);
    if (s == OC_OK)
        s = oc_st_writer_set_metadata(w, KEY_REF, text);
    if (s == OC_OK)
        s = oc_st_writer_set_metadata(w, KEY_REF_DIR, ref_dir);
    if (s == OC_OK)
        s = oc_st_writer_add(w, "logps", OC_DT_F64, 2, (int64_t[]){(int64_t)n, 2}, logp);
    if (s == OC_OK)
        s = oc_st_writer_save(w, path);
    oc_st_writer_free(w);
    return s;
}

/* One forward pass per pair with a trainer on the reference weights, for pairs [lo, hi)
 * into logp[2 lo .. 2 hi). The trainer is this process's alone (no exchange). */
static oc_status compute(oc_pref_dataset *ds, const char *ref_dir, const oc_train_params *params,
                         size_t lo, size_t hi, double *logp) {
    oc_train_params tp = params ? *params : oc_train_default_params();
    tp.objective = OC_OBJECTIVE_SFT;
    tp.out_dir = NULL;
    tp.dump_first_step = NULL;
    tp.on_progress = NULL;
    tp.dist_alone = 1;
    oc_trainer *tr = NULL;
    OC_TRY(oc_trainer_new(ref_dir, &tp, &tr));
    oc_status s = OC_OK;
    for (size_t i = lo; i < hi && s == OC_OK; i++) {
        oc_pref_example p;
        s = oc_pref_dataset_get(ds, i, &p);
        oc_train_example two[2] = {p.chosen, p.rejected};
        if (s == OC_OK)
            s = oc_trainer_logprobs(tr, two, 2, logp + 2 * i, NULL);
    }
    oc_trainer_free(tr);
    return s;
}

/* In a job of several ranks (oc_dist_init) each computes its block of the pairs and
 * every rank gets all of them; rank 0 alone writes the cache. Collective. */
static oc_status compute_shared(oc_pref_dataset *ds, const char *ref_dir,
                                const oc_train_params *params, double *logp) {
    size_t n = oc_pref_dataset_size(ds), lo, hi;
    oc_dist_span(n, &lo, &hi);
    OC_TRY(oc_dist_agree(compute(ds, ref_dir, params, lo, hi, logp)));
    oc_dist_info job = oc_dist_get_info();
    if (job.size == 1)
        return OC_OK;
    void *all = NULL;
    size_t *sizes = oc_calloc((size_t)job.size, sizeof *sizes);
    if (!sizes)
        return oc_dist_agree(oc_err(OC_ERR_NOMEM, "out of memory"));
    oc_status s = oc_dist_allgather(logp + 2 * lo, 2 * (hi - lo) * sizeof *logp, &all, sizes);
    if (s == OC_OK) /* the blocks in rank order are the pairs in order */
        memcpy(logp, all, 2 * n * sizeof *logp);
    oc_free(all);
    oc_free(sizes);
    return s;
}

oc_status oc_pref_reference(oc_pref_dataset *ds, const char *ref_dir, const char *cache_path,
                            const oc_train_params *params, int *from_cache) {
    if (!ds || (!ref_dir && !cache_path))
        return oc_err(OC_ERR_INVALID_ARG, "oc_pref_reference: no dataset, or neither a "
                      "reference model nor a cache");
    size_t n = oc_pref_dataset_size(ds);
    double *logp = oc_malloc(2 * n * sizeof *logp);
    if (!logp)
        return oc_err(OC_ERR_NOMEM, "out of memory for %zu reference log-probabilities", 2 * n);
    uint64_t data_fp = oc_pref_dataset_fingerprint(ds), ref_fp = 0;
    oc_status s = ref_dir ? weights_fingerprint(ref_dir, &ref_fp) : OC_OK;
    int hit = 0, rank0 = oc_dist_get_info().rank == 0;
    if (s == OC_OK && cache_path)
        s = read_cache(cache_path, n, data_fp, ref_dir ? &ref_fp : NULL, logp, &hit);
    /* on several ranks: the cache is used only when every rank could read it */
    s = oc_dist_agree(s);
    double hits = hit;
    if (s == OC_OK)
        s = oc_dist_sum(&hits, 1);
    hit = s == OC_OK && hits == (double)oc_dist_get_info().size;
    if (s == OC_OK && !hit && !ref_dir) {
        s = oc_err(OC_ERR_INVALID_ARG, "%s holds no reference log-probabilities for this "
                   "data file: name the reference model (--ref)", cache_path);
        oc_dist_mark_shared(); /* every rank reached it from agreed values: rank 0 says it */
    }
    if (s == OC_OK && !hit) {
        s = compute_shared(ds, ref_dir, params, logp);
        if (s == OC_OK && cache_path && rank0)
            s = write_cache(cache_path, n, data_fp, ref_fp, ref_dir, logp);
        s = oc_dist_agree(s);
    }
    if (s == OC_OK)
        s = oc_pref_dataset_set_reference(ds, logp);
    if (s == OC_OK && from_cache)
        *from_cache = hit;
    oc_free(logp);
    return s;
}
