#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "gguf.h"
#include "json.h"
#include "output.h"

#define MAX_HEADER (100u << 20) /* as the reference implementation: 100 MB */

struct oc_st_file {
    char *path;
    oc_mapped_file map;
    oc_st_tensor *tensors; /* sorted by name */
    size_t n;
    cJSON *header;         /* owns the name strings */
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [OC_DT_F32] = {"F32", 4}, [OC_DT_F16] = {"F16", 2}, [OC_DT_BF16] = {"BF16", 2},
    [OC_DT_F64] = {"F64", 8}, [OC_DT_I64] = {"I64", 8}, [OC_DT_I32] = {"I32", 4},
    [OC_DT_I16] = {"I16", 2}, [OC_DT_I8] = {"I8", 1},   [OC_DT_U8] = {"U8", 1},
    [OC_DT_BOOL] = {"BOOL", 1}, [OC_DT_Q8_0] = {"Q8_0", 0}, /* a block type: not parsed */
};

size_t oc_dtype_size(oc_dtype dt) { return dtypes[dt].size; }
const char *oc_dtype_name(oc_dtype dt) { return dtypes[dt].name; }

int oc_dtype_parse(const char *name, oc_dtype *out) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].size && strcmp(name, dtypes[i].name) == 0) {
            *out = (oc_dtype)i;
            return 1;
        }
    return 0;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const oc_st_tensor *)a)->name, ((const oc_st_tensor *)b)->name);
}

/* Validates one header entry and fills t. */
static oc_status parse_entry(const char *path, const cJSON *e, const unsigned char *data,
                             size_t data_size, oc_st_tensor *t) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
    const cJSON *dt = oc_json_get(e, "dtype"), *shape = oc_json_get(e, "shape"),
                *offs = oc_json_get(e, "data_offsets");
    if (!cJSON_IsString(dt) || !oc_dtype_parse(dt->valuestring, &t->dtype))
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': missing or unknown dtype", path, name);
    if (!cJSON_IsArray(shape))
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': shape is not a list", path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > OC_MAX_DIMS)
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has %d dims (at most %d)", path, name,
                      nd, OC_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > 9.0e15)
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': bad dimension %d", path, name, i);
        t->shape[i] = (int64_t)v;
        if (!oc_mul_ok(numel, (size_t)v, &numel))
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': element count overflows", path,
                          name);
    }
    size_t nbytes;
    if (!oc_mul_ok(numel, oc_dtype_size(t->dtype), &nbytes))
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]",
                      path, name);
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble,
           en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(offs, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(offs, 1)) || b < 0 || en < b || b != floor(b) ||
        en != floor(en))
        return oc_err(OC_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, name);
    if (en > (double)data_size)
        return oc_err(OC_ERR_FORMAT,
                      "%s: tensor '%s': data ends at byte %.0f, past the end of the data "
                      "(%zu bytes; file truncated?)",
                      path, name, en, data_size);
    if ((size_t)(en - b) != nbytes)
        return oc_err(OC_ERR_FORMAT,
                      "%s: tensor '%s': %zu bytes of data for %zu elements of %s", path, name,
                      (size_t)(en - b), numel, dtypes[t->dtype].name);
    t->name = name;
    t->file = path;
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = data + (size_t)b;
    return OC_OK;
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const oc_st_tensor *x = *(const oc_st_tensor *const *)a, *y = *(const oc_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* No two tensors may share a byte (the reference implementation refuses that too): a
 * write through one would change the other, and a file that says so is corrupt. */
static oc_status check_overlaps(const oc_st_file *f, const unsigned char *data) {
    if (f->n < 2)
        return OC_OK;
    const oc_st_tensor **by = oc_calloc(f->n, sizeof *by);
    if (!by)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", f->path);
    size_t m = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->tensors[i].nbytes)
            by[m++] = &f->tensors[i];
    qsort(by, m, sizeof *by, cmp_tensor_begin);
    oc_status s = OC_OK;
    for (size_t i = 1; i < m && s == OC_OK; i++) {
        const oc_st_tensor *a = by[i - 1], *b = by[i];
        if ((const unsigned char *)a->data + a->nbytes > (const unsigned char *)b->data) {
            size_t ab = (size_t)((const unsigned char *)a->data - data),
                   bb = (size_t)((const unsigned char *)b->data - data);
            s = oc_err(OC_ERR_FORMAT, "%s: tensors '%s' (bytes %zu-%zu) and '%s' (bytes "
                       "%zu-%zu) overlap", f->path, a->name, ab, ab + a->nbytes, b->name, bb,
                       bb + b->nbytes);
        }
    }
    oc_free(by);
    return s;
}

static oc_status parse_header(oc_st_file *f) {
    const char *path = f->path;
    if (f->map.size < 8)
        return oc_err(OC_ERR_FORMAT, "%s: too short to be safetensors (%zu bytes)", path,
                      f->map.size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map.data[i];
    if (hlen > MAX_HEADER || hlen > f->map.size - 8)
        return oc_err(OC_ERR_FORMAT,
                      "%s: header length %llu exceeds the file (%zu bytes) or the 100 MB limit",
                      path, (unsigned long long)hlen, f->map.size);
    const char *text = (const char *)f->map.data + 8;
    if (hlen == 0 || text[0] != '{')
        return oc_err(OC_ERR_FORMAT, "%s: header is not a JSON object", path);
    OC_TRY(oc_json_parse(text, (size_t)hlen, path, &f->header));
    if (!cJSON_IsObject(f->header))
        return oc_err(OC_ERR_FORMAT, "%s: header is not a JSON object", path);
    size_t n = 0;
    for (const cJSON *e = f->header->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    f->tensors = oc_calloc(n, sizeof *f->tensors);
    if (!f->tensors)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    const unsigned char *data = f->map.data + 8 + hlen;
    size_t data_size = f->map.size - 8 - (size_t)hlen;
    for (const cJSON *e = f->header->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        OC_TRY(parse_entry(path, e, data, data_size, &f->tensors[f->n]));
        f->n++;
    }
    qsort(f->tensors, f->n, sizeof *f->tensors, cmp_tensor);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' appears twice", path,
                          f->tensors[i].name);
    return check_overlaps(f, data);
}

oc_status oc_st_open(const char *path, oc_st_file **out) {
    oc_st_file *f = oc_calloc(1, sizeof *f);
    if (!f || !(f->path = oc_strdup(path))) {
        oc_free(f);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    }
    oc_status s = oc_map_file(path, &f->map);
    if (s == OC_OK)
        s = parse_header(f);
    if (s != OC_OK) {
        oc_st_close(f);
        return s;
    }
    *out = f;
    return OC_OK;
}

void oc_st_close(oc_st_file *f) {
    if (!f)
        return;
    oc_unmap_file(&f->map);
    cJSON_Delete(f->header);
    oc_free(f->tensors);
    oc_free(f->path);
    oc_free(f);
}

const char *oc_st_metadata(const oc_st_file *f, const char *key) {
    const cJSON *m = oc_json_get(oc_json_get(f->header, "__metadata__"), key);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

size_t oc_st_count(const oc_st_file *f) { return f->n; }
const oc_st_tensor *oc_st_at(const oc_st_file *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}

const oc_st_tensor *oc_st_find(const oc_st_file *f, const char *name) {
    oc_st_tensor key = {.name = name};
    return bsearch(&key, f->tensors, f->n, sizeof key, cmp_tensor);
}

/* ---- shard sets ------------------------------------------------------------- */

struct oc_st_set {
    oc_st_file **files;
    size_t n_files;
    const oc_st_tensor **all; /* sorted by name, across files */
    size_t n;
};

static int cmp_tensor_ptr(const void *a, const void *b) {
    return strcmp((*(const oc_st_tensor *const *)a)->name,
                  (*(const oc_st_tensor *const *)b)->name);
}

static oc_status set_add_file(oc_st_set *s, const char *path) {
    oc_st_file **nf = oc_realloc(s->files, (s->n_files + 1) * sizeof *nf);
    if (!nf)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    s->files = nf;
    OC_TRY(oc_st_open(path, &s->files[s->n_files]));
    s->n_files++;
    return OC_OK;
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Shard names from the index's weight_map, each opened once (sorted and deduplicated,
 * so that a hostile index with millions of entries costs n log n, not n^2). */
static oc_status set_open_index(oc_st_set *s, const char *dir, const char *index_path) {
    cJSON *idx;
    OC_TRY(oc_json_load(index_path, 64u << 20, &idx));
    oc_status st = OC_OK;
    const cJSON *wm = oc_json_get(idx, "weight_map");
    if (!cJSON_IsObject(wm))
        st = oc_err(OC_ERR_FORMAT, "%s: missing \"weight_map\" object", index_path);
    size_t n = 0, n_shards = 0;
    for (const cJSON *e = wm ? wm->child : NULL; st == OC_OK && e; e = e->next) {
        const char *shard = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!shard || strchr(shard, '/') || strcmp(shard, "..") == 0 || !shard[0])
            st = oc_err(OC_ERR_FORMAT, "%s: tensor '%s': bad shard file name", index_path,
                        e->string);
        n++;
    }
    const char **names = NULL;
    if (st == OC_OK && !(names = oc_calloc(n ? n : 1, sizeof *names)))
        st = oc_err(OC_ERR_NOMEM, "%s: out of memory", index_path);
    if (st == OC_OK) {
        for (const cJSON *e = wm->child; e; e = e->next)
            names[n_shards++] = e->valuestring;
        qsort(names, n_shards, sizeof *names, cmp_cstr);
        size_t u = 0;
        for (size_t i = 0; i < n_shards; i++)
            if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
                names[u++] = names[i];
        n_shards = u;
    }
    /* s->files[i] is the shard names[i] */
    for (size_t i = 0; st == OC_OK && i < n_shards; i++) {
        char *path = oc_path_join(dir, names[i]);
        st = path ? set_add_file(s, path) : oc_err(OC_ERR_NOMEM, "out of memory");
        oc_free(path);
    }
    /* Every tensor the index names must be in the shard it names. */
    for (const cJSON *e = wm ? wm->child : NULL; st == OC_OK && e; e = e->next) {
        const char **k = bsearch(&e->valuestring, names, n_shards, sizeof *names, cmp_cstr);
        if (!k || !oc_st_find(s->files[k - names], e->string))
            st = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' is in no shard (the index says %s)",
                        index_path, e->string, e->valuestring);
    }
    oc_free(names);
    cJSON_Delete(idx);
    return st;
}

oc_status oc_st_set_open(const char *dir, oc_st_set **out) {
    oc_st_set *s = oc_calloc(1, sizeof *s);
    if (!s)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    char *single = oc_path_join(dir, "model.safetensors");
    char *index = oc_path_join(dir, "model.safetensors.index.json");
    oc_status st = OC_OK;
    if (!single || !index)
        st = oc_err(OC_ERR_NOMEM, "out of memory");
    else if (oc_file_exists(single))
        st = set_add_file(s, single);
    else if (oc_file_exists(index))
        st = set_open_index(s, dir, index);
    else
        st = oc_err(OC_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json",
                    dir);
    oc_free(single);
    oc_free(index);
    size_t total = 0;
    for (size_t i = 0; st == OC_OK && i < s->n_files; i++)
        total += s->files[i]->n;
    if (st == OC_OK && !(s->all = oc_calloc(total, sizeof *s->all)))
        st = oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == OC_OK && i < s->n_files; i++)
        for (size_t j = 0; j < s->files[i]->n; j++)
            s->all[s->n++] = &s->files[i]->tensors[j];
    if (st == OC_OK) {
        qsort(s->all, s->n, sizeof *s->all, cmp_tensor_ptr);
        for (size_t i = 1; i < s->n; i++)
            if (strcmp(s->all[i - 1]->name, s->all[i]->name) == 0) {
                st = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' appears in two shards", dir,
                            s->all[i]->name);
                break;
            }
    }
    if (st != OC_OK) {
        oc_st_set_close(s);
        return st;
    }
    *out = s;
    return OC_OK;
}

void oc_st_set_close(oc_st_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n_files; i++)
        oc_st_close(s->files[i]);
    oc_free(s->files);
    oc_free(s->all);
    oc_free(s);
}

const oc_st_tensor *oc_st_set_find(const oc_st_set *s, const char *name) {
    oc_st_tensor key = {.name = name};
    const oc_st_tensor *kp = &key;
    const oc_st_tensor **r = bsearch(&kp, s->all, s->n, sizeof *s->all, cmp_tensor_ptr);
    return r ? *r : NULL;
}

size_t oc_st_set_count(const oc_st_set *s) { return s->n; }
const oc_st_tensor *oc_st_set_at(const oc_st_set *s, size_t i) {
    return i < s->n ? s->all[i] : NULL;
}

/* ---- conversion ------------------------------------------------------------- */

float oc_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float oc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f)
        u = sign | 0x7f800000u | man << 13; /* inf / nan */
    else if (exp != 0)
        u = sign | (exp + 112) << 23 | man << 13;
    else if (man == 0)
        u = sign;
    else { /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        u = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t oc_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

uint16_t oc_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* subnormal or zero in f16 */
        float af;
        memcpy(&af, &a, 4);
        /* scale so that the f16 subnormal step is 1, round to nearest even */
        float r = nearbyintf(af * 16777216.0f);
        return (uint16_t)(sign | (uint32_t)r);
    }
    uint32_t rounded = a + 0xfff + ((a >> 13) & 1);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

oc_status oc_st_to_f32(const oc_st_tensor *t, float *dst, size_t n) {
    if (n != t->numel)
        return oc_err(OC_ERR_INTERNAL, "%s: tensor '%s': %zu elements, expected %zu", t->file,
                      t->name, t->numel, n);
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case OC_DT_F32:
        memcpy(dst, p, n * 4);
        return OC_OK;
    case OC_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return OC_OK;
    case OC_DT_BF16:
    case OC_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == OC_DT_BF16 ? oc_bf16_to_f32(h) : oc_f16_to_f32(h);
        }
        return OC_OK;
    case OC_DT_Q8_0: /* weights read from GGUF files */
        return oc_ggml_dequantize(OC_GGML_Q8_0, p, dst, n);
    default:
        return oc_err(OC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, expected a float type",
                      t->file, t->name, dtypes[t->dtype].name);
    }
}

oc_status oc_st_check_shape(const oc_st_tensor *t, int ndim, const int64_t *want) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = want[i] < 0 || want[i] == t->shape[i];
    if (ok)
        return OC_OK;
    char got[160] = "", exp[160] = "";
    size_t a = 0, b = 0;
    for (int i = 0; i < t->ndim && a < sizeof got - 24; i++)
        a += (size_t)snprintf(got + a, sizeof got - a, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
    for (int i = 0; i < ndim && b < sizeof exp - 24; i++)
        b += (size_t)snprintf(exp + b, sizeof exp - b, "%s%lld", i ? ", " : "",
                              (long long)want[i]);
    return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%s]", t->file,
                  t->name, got, exp);
}

/* ---- writer ----------------------------------------------------------------- */

typedef struct {
    char *name;
    oc_dtype dtype;
    int ndim;
    int64_t shape[OC_MAX_DIMS];
    const void *data;
    int from_f32; /* data is float; convert to dtype when writing */
    size_t nbytes;
    oc_st_fill_fn fill; /* or the values come from fill(data) */
} wentry;

struct oc_st_writer {
    wentry *e;
    size_t n, cap;
    char **meta; /* key, value, key, value, ... */
    size_t n_meta;
};

oc_status oc_st_writer_new(oc_st_writer **out) {
    *out = oc_calloc(1, sizeof **out);
    return *out ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
}

void oc_st_writer_free(oc_st_writer *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        oc_free(w->e[i].name);
    for (size_t i = 0; i < 2 * w->n_meta; i++)
        oc_free(w->meta[i]);
    oc_free(w->meta);
    oc_free(w->e);
    oc_free(w);
}

oc_status oc_st_writer_set_metadata(oc_st_writer *w, const char *key, const char *value) {
    if (!strcmp(key, "format"))
        return oc_err(OC_ERR_INVALID_ARG, "safetensors: \"format\" is always \"pt\"");
    char **nm = oc_realloc(w->meta, (2 * w->n_meta + 2) * sizeof *nm);
    if (!nm)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    w->meta = nm;
    nm[2 * w->n_meta] = oc_strdup(key);
    nm[2 * w->n_meta + 1] = oc_strdup(value);
    w->n_meta++;
    if (!nm[2 * w->n_meta - 2] || !nm[2 * w->n_meta - 1])
        return oc_err(OC_ERR_NOMEM, "out of memory");
    return OC_OK;
}
static oc_status writer_push(oc_st_writer *w, const char *name, oc_dtype dtype, int ndim,
                             const int64_t *shape, const void *data, int from_f32) {
    if (ndim < 0 || ndim > OC_MAX_DIMS)
        return oc_err(OC_ERR_INVALID_ARG, "tensor '%s': bad ndim %d", name, ndim);
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        wentry *ne = oc_realloc(w->e, nc * sizeof *ne);
        if (!ne)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !oc_mul_ok(numel, (size_t)shape[i], &numel))
            return oc_err(OC_ERR_INVALID_ARG, "tensor '%s': bad shape", name);
        e->shape[i] = shape[i];
    }
    if (!(e->name = oc_strdup(name)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    e->data = data;
    e->from_f32 = from_f32;
    e->nbytes = numel * oc_dtype_size(dtype);
    w->n++;
    return OC_OK;
}

oc_status oc_st_writer_add(oc_st_writer *w, const char *name, oc_dtype dtype, int ndim,
                           const int64_t *shape, const void *data) {
    return writer_push(w, name, dtype, ndim, shape, data, 0);
}

oc_status oc_st_writer_add_generated(oc_st_writer *w, const char *name, oc_dtype dtype,
                                     int ndim, const int64_t *shape, oc_st_fill_fn fill,
                                     void *ctx) {
    if (dtype != OC_DT_F32 && dtype != OC_DT_F16 && dtype != OC_DT_BF16)
        return oc_err(OC_ERR_INVALID_ARG, "tensor '%s': cannot make %s", name,
                      oc_dtype_name(dtype));
    OC_TRY(writer_push(w, name, dtype, ndim, shape, ctx, 1));
    w->e[w->n - 1].fill = fill;
    return OC_OK;
}

oc_status oc_st_writer_add_f32_as(oc_st_writer *w, const char *name, oc_dtype dtype,
                                  int ndim, const int64_t *shape, const float *data) {
    if (dtype != OC_DT_F32 && dtype != OC_DT_F16 && dtype != OC_DT_BF16)
        return oc_err(OC_ERR_INVALID_ARG, "tensor '%s': cannot convert to %s", name,
                      oc_dtype_name(dtype));
    return writer_push(w, name, dtype, ndim, shape, data, dtype != OC_DT_F32);
}

static int cmp_wentry(const void *a, const void *b) {
    return strcmp(((const wentry *)a)->name, ((const wentry *)b)->name);
}

static int add_num(cJSON *arr, double v) {
    cJSON *x = cJSON_CreateNumber(v);
    if (!x || !cJSON_AddItemToArray(arr, x)) {
        cJSON_Delete(x);
        return 0;
    }
    return 1;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes; NULL when out of memory
 * (every cJSON call is checked: a header missing an entry would misplace the data). */
static char *writer_header(oc_st_writer *w, size_t *len) {
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    int ok = meta && cJSON_AddStringToObject(meta, "format", "pt");
    for (size_t i = 0; ok && i < w->n_meta; i++)
        ok = cJSON_AddStringToObject(meta, w->meta[2 * i], w->meta[2 * i + 1]) != NULL;
    size_t off = 0;
    for (size_t i = 0; ok && i < w->n; i++) {
        wentry *e = &w->e[i];
        cJSON *o = cJSON_AddObjectToObject(h, e->name);
        ok = o && cJSON_AddStringToObject(o, "dtype", oc_dtype_name(e->dtype));
        cJSON *shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        for (int d = 0; shape && ok && d < e->ndim; d++)
            ok = add_num(shape, (double)e->shape[d]);
        cJSON *offs = shape && ok ? cJSON_AddArrayToObject(o, "data_offsets") : NULL;
        ok = ok && offs;
        ok = ok && add_num(offs, (double)off) && add_num(offs, (double)(off + e->nbytes));
        off += e->nbytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    if (!text)
        return NULL;
    size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
    char *out = oc_malloc(padded + 1);
    if (out) {
        memcpy(out, text, n);
        memset(out + n, ' ', padded - n);
        out[padded] = 0;
        *len = padded;
    }
    cJSON_free(text);
    return out;
}

/* A generated entry, chunk by chunk. */
static oc_status write_generated(oc_out_file *f, const wentry *e) {
    size_t es = oc_dtype_size(e->dtype), n = e->nbytes / es;
    float v[4096];
    uint16_t h[4096];
    for (size_t i = 0; i < n; i += 4096) {
        size_t m = n - i < 4096 ? n - i : 4096;
        e->fill((void *)e->data, v, i, m);
        if (e->dtype == OC_DT_F32) {
            OC_TRY(oc_out_write(f, v, m * 4));
            continue;
        }
        for (size_t k = 0; k < m; k++)
            h[k] = e->dtype == OC_DT_BF16 ? oc_f32_to_bf16(v[k]) : oc_f32_to_f16(v[k]);
        OC_TRY(oc_out_write(f, h, m * 2));
    }
    return OC_OK;
}

static oc_status write_entry(oc_out_file *f, const wentry *e) {
    if (e->fill)
        return write_generated(f, e);
    if (!e->from_f32)
        return oc_out_write(f, e->data, e->nbytes);
    const float *src = e->data;
    size_t n = e->nbytes / 2;
    uint16_t buf[4096];
    for (size_t i = 0; i < n; i += 4096) {
        size_t m = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < m; j++)
            buf[j] = e->dtype == OC_DT_BF16 ? oc_f32_to_bf16(src[i + j])
                                            : oc_f32_to_f16(src[i + j]);
        OC_TRY(oc_out_write(f, buf, m * 2));
    }
    return OC_OK;
}

oc_status oc_st_writer_write(oc_st_writer *w, oc_out_file *f) {
    qsort(w->e, w->n, sizeof *w->e, cmp_wentry);
    size_t hlen;
    char *header = writer_header(w, &hlen);
    if (!header)
        return oc_err(OC_ERR_NOMEM, "safetensors header: out of memory");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    oc_status s = oc_out_write(f, len8, 8);
    if (s == OC_OK)
        s = oc_out_write(f, header, hlen);
    for (size_t i = 0; s == OC_OK && i < w->n; i++)
        s = write_entry(f, &w->e[i]);
    oc_free(header);
    return s;
}

oc_status oc_st_writer_save(oc_st_writer *w, const char *path) {
    oc_out_file *f;
    OC_TRY(oc_out_open(path, &f));
    oc_status s = oc_st_writer_write(w, f);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    return oc_out_commit(f);
}
