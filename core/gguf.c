/* GGUF reader: parsing with every size checked against the bytes left (gguf.h). */
#include "gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "safetensors.h"

#define MAX_KEY_LEN 65535u          /* llama.cpp's keys are short; longer is damage */
#define MAX_NAME_LEN 1023u          /* ggml allows 63; converters of other tools more */
#define DEFAULT_ALIGNMENT 32u

struct oc_gguf {
    char *path;
    oc_mapped_file map;              /* map.mapped == -1: borrowed memory */
    const unsigned char *d;
    size_t size;
    uint32_t version, alignment;
    oc_gguf_kv *kvs;                 /* file order */
    size_t n_kv;
    const oc_gguf_kv **kv_sorted;    /* by key */
    oc_gguf_tensor *tensors;         /* file order */
    size_t n_tensors;
    const oc_gguf_tensor **t_sorted; /* by name */
    char *strings;                   /* keys, names and string values, back to back */
    size_t strings_len, strings_cap;
    uint64_t **str_offs;             /* per string array */
    size_t n_str_offs;
};

/* ---- ggml types ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint32_t elems, bytes;
} ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *oc_ggml_type_name(uint32_t type) {
    static _Thread_local char buf[32];
    if (type < N_GGML_TYPES && ggml_types[type].name)
        return ggml_types[type].name;
    snprintf(buf, sizeof buf, "type %u", type);
    return buf;
}

uint32_t oc_ggml_block_elems(uint32_t type) {
    return type < N_GGML_TYPES ? ggml_types[type].elems : 0;
}

uint32_t oc_ggml_block_bytes(uint32_t type) {
    return type < N_GGML_TYPES ? ggml_types[type].bytes : 0;
}

/* ---- value types ------------------------------------------------------------------- */

static const char *const type_names[OC_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
    "f64"};

static size_t scalar_size(oc_gguf_type t) {
    static const size_t s[OC_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < OC_GGUF_TYPE_COUNT ? s[t] : 0;
}

static const char *tname(uint32_t t) {
    return t < OC_GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---- the cursor ---------------------------------------------------------------------- */

typedef struct {
    oc_gguf *g;
    size_t pos;
    const char *what; /* what is being read, for errors */
} cursor;

static size_t left(const cursor *c) { return c->g->size - c->pos; }

static oc_status short_file(const cursor *c, const char *item, uint64_t need) {
    return oc_err(OC_ERR_FORMAT, "%s: %s: %s needs %llu bytes at offset %zu, but the file has "
                  "%zu left (truncated?)", c->g->path, c->what, item,
                  (unsigned long long)need, c->pos, left(c));
}

static oc_status take(cursor *c, size_t n, const char *item, const unsigned char **p) {
    if (n > left(c))
        return short_file(c, item, n);
    *p = c->g->d + c->pos;
    c->pos += n;
    return OC_OK;
}

static oc_status u32_at(cursor *c, const char *item, uint32_t *v) {
    const unsigned char *p = NULL;
    OC_TRY(take(c, 4, item, &p));
    *v = rd32(p);
    return OC_OK;
}

static oc_status u64_at(cursor *c, const char *item, uint64_t *v) {
    const unsigned char *p = NULL;
    OC_TRY(take(c, 8, item, &p));
    *v = rd64(p);
    return OC_OK;
}

/* A string's length and bytes, the length checked against what is left and max. */
static oc_status str_at(cursor *c, const char *item, uint64_t max, const unsigned char **s,
                        uint64_t *len) {
    OC_TRY(u64_at(c, item, len));
    if (*len > left(c))
        return oc_err(OC_ERR_FORMAT, "%s: %s: %s of %llu bytes runs past the end of the file "
                      "(%zu bytes left)", c->g->path, c->what, item,
                      (unsigned long long)*len, left(c));
    if (*len > max)
        return oc_err(OC_ERR_FORMAT, "%s: %s: %s of %llu bytes is longer than %llu",
                      c->g->path, c->what, item, (unsigned long long)*len,
                      (unsigned long long)max);
    return take(c, (size_t)*len, item, s);
}

/* A NUL-terminated copy in the string pool; returns its offset (pointers are made after
 * parsing, when the pool no longer moves). Embedded NULs are refused where asked. */
static oc_status pool_add(oc_gguf *g, const unsigned char *s, uint64_t len, int no_nul,
                          const char *what, size_t *off) {
    if (no_nul && memchr(s, 0, (size_t)len))
        return oc_err(OC_ERR_FORMAT, "%s: %s holds a NUL byte", g->path, what);
    size_t need = g->strings_len + (size_t)len + 1;
    if (need > g->strings_cap) {
        size_t cap = g->strings_cap ? g->strings_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *n = oc_realloc(g->strings, cap);
        if (!n)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", g->path);
        g->strings = n;
        g->strings_cap = cap;
    }
    memcpy(g->strings + g->strings_len, s, (size_t)len);
    g->strings[g->strings_len + len] = 0;
    *off = g->strings_len;
    g->strings_len = need;
    return OC_OK;
}

/* ---- key-value pairs --------------------------------------------------------------- */

/* Array elements: fixed-size ones are checked as one block, strings one by one (each
 * at least its 8-byte length, so a count larger than the bytes left fails at once). */
static oc_status parse_array(cursor *c, oc_gguf_kv *kv) {
    uint32_t et = 0;
    OC_TRY(u32_at(c, "the array element type", &et));
    if (et >= OC_GGUF_TYPE_COUNT)
        return oc_err(OC_ERR_FORMAT, "%s: %s: unknown array element type %u", c->g->path,
                      c->what, et);
    if (et == OC_GGUF_ARRAY)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: %s: arrays of arrays are not supported",
                      c->g->path, c->what);
    kv->elem_type = (oc_gguf_type)et;
    OC_TRY(u64_at(c, "the array length", &kv->n));
    size_t es = et == OC_GGUF_STRING ? 8 : scalar_size(kv->elem_type);
    if (kv->n > left(c) / es)
        return oc_err(OC_ERR_FORMAT, "%s: %s: an array of %llu %s values cannot fit in the "
                      "%zu bytes left", c->g->path, c->what, (unsigned long long)kv->n,
                      tname(et), left(c));
    kv->data = c->g->d + c->pos;
    if (et != OC_GGUF_STRING) {
        const unsigned char *p = NULL;
        OC_TRY(take(c, (size_t)kv->n * es, "the array", &p));
        if (et == OC_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->n; i++)
                if (p[i] > 1)
                    return oc_err(OC_ERR_FORMAT, "%s: %s: element %llu is a bool of value %u",
                                  c->g->path, c->what, (unsigned long long)i, p[i]);
        return OC_OK;
    }
    uint64_t *offs = oc_malloc((size_t)(kv->n ? kv->n : 1) * sizeof *offs);
    if (!offs)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory for an array of %llu strings",
                      c->g->path, (unsigned long long)kv->n);
    oc_gguf *g = c->g;
    uint64_t **no = oc_realloc(g->str_offs, (g->n_str_offs + 1) * sizeof *no);
    if (!no) {
        oc_free(offs);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", g->path);
    }
    g->str_offs = no;
    g->str_offs[g->n_str_offs++] = offs;
    kv->str_off = offs;
    for (uint64_t i = 0; i < kv->n; i++) {
        offs[i] = (uint64_t)(c->pos - (size_t)(kv->data - g->d));
        const unsigned char *sp = NULL;
        uint64_t len = 0;
        OC_TRY(str_at(c, "an array string", UINT64_MAX, &sp, &len));
    }
    return OC_OK;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const oc_gguf_kv *const *)a)->key, (*(const oc_gguf_kv *const *)b)->key);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const oc_gguf_tensor *const *)a)->name,
                  (*(const oc_gguf_tensor *const *)b)->name);
}

/* key_off / str_off hold pool offsets until fix_pointers. */
typedef struct {
    size_t key_off, str_off, name_off;
} pool_refs;

static oc_status parse_kv(cursor *c, uint64_t i, oc_gguf_kv *kv, pool_refs *r) {
    char what[64];
    snprintf(what, sizeof what, "key-value pair %llu", (unsigned long long)i);
    c->what = what;
    const unsigned char *ks = NULL;
    uint64_t klen = 0;
    OC_TRY(str_at(c, "the key", MAX_KEY_LEN, &ks, &klen));
    if (klen == 0)
        return oc_err(OC_ERR_FORMAT, "%s: %s has an empty key", c->g->path, what);
    OC_TRY(pool_add(c->g, ks, klen, 1, what, &r->key_off));
    /* errors below name the key */
    char keyname[96];
    snprintf(keyname, sizeof keyname, "key '%.*s'", (int)(klen < 80 ? klen : 80),
             (const char *)ks);
    c->what = keyname;
    uint32_t t = 0;
    OC_TRY(u32_at(c, "the value type", &t));
    if (t >= OC_GGUF_TYPE_COUNT)
        return oc_err(OC_ERR_FORMAT, "%s: %s has unknown value type %u", c->g->path, keyname,
                      t);
    kv->type = (oc_gguf_type)t;
    kv->n = 1;
    r->str_off = (size_t)-1;
    if (t == OC_GGUF_ARRAY) {
        OC_TRY(parse_array(c, kv));
    } else if (t == OC_GGUF_STRING) {
        const unsigned char *s = NULL;
        OC_TRY(str_at(c, "the string", UINT64_MAX, &s, &kv->str_len));
        kv->data = s;
        OC_TRY(pool_add(c->g, s, kv->str_len, 0, keyname, &r->str_off));
    } else {
        const unsigned char *p = NULL;
        OC_TRY(take(c, scalar_size(kv->type), "the value", &p));
        kv->data = p;
        if (t == OC_GGUF_BOOL && p[0] > 1)
            return oc_err(OC_ERR_FORMAT, "%s: %s is a bool of value %u", c->g->path, keyname,
                          p[0]);
    }
    c->what = "header";
    return OC_OK;
}

/* ---- tensor infos -------------------------------------------------------------------- */

static oc_status parse_tensor_info(cursor *c, uint64_t i, oc_gguf_tensor *t, pool_refs *r) {
    char what[64];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
    c->what = what;
    const unsigned char *ns = NULL;
    uint64_t nlen = 0;
    OC_TRY(str_at(c, "the tensor name", MAX_NAME_LEN, &ns, &nlen));
    if (nlen == 0)
        return oc_err(OC_ERR_FORMAT, "%s: %s has an empty name", c->g->path, what);
    OC_TRY(pool_add(c->g, ns, nlen, 1, what, &r->name_off));
    char tn[96];
    snprintf(tn, sizeof tn, "tensor '%.*s'", (int)(nlen < 80 ? nlen : 80), (const char *)ns);
    c->what = tn;
    uint32_t nd = 0;
    OC_TRY(u32_at(c, "the number of dimensions", &nd));
    if (nd < 1 || nd > OC_GGUF_MAX_DIMS)
        return oc_err(OC_ERR_FORMAT, "%s: %s has %u dimensions (1 to %d)", c->g->path, tn, nd,
                      OC_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (int k = 0; k < OC_GGUF_MAX_DIMS; k++) {
        uint64_t ne = 1;
        if (k < t->ndim)
            OC_TRY(u64_at(c, "a dimension", &ne));
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return oc_err(OC_ERR_FORMAT, "%s: %s has dimension %d of %llu", c->g->path, tn, k,
                          (unsigned long long)ne);
        if (__builtin_mul_overflow(numel, ne, &numel) || numel > (uint64_t)INT64_MAX)
            return oc_err(OC_ERR_FORMAT, "%s: %s: element count overflows", c->g->path, tn);
        t->ne[k] = (int64_t)ne;
    }
    t->numel = numel;
    OC_TRY(u32_at(c, "the tensor type", &t->type));
    uint32_t be = oc_ggml_block_elems(t->type), bb = oc_ggml_block_bytes(t->type);
    if (!be)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: %s has ggml type %u, which ocellus does not "
                      "know", c->g->path, tn, t->type);
    if ((uint64_t)t->ne[0] % be)
        return oc_err(OC_ERR_FORMAT, "%s: %s: a row of %lld elements is not a whole number of "
                      "%s blocks (%u elements)", c->g->path, tn, (long long)t->ne[0],
                      oc_ggml_type_name(t->type), be);
    uint64_t nbytes = numel / be;
    if (__builtin_mul_overflow(nbytes, (uint64_t)bb, &nbytes) || nbytes > SIZE_MAX)
        return oc_err(OC_ERR_FORMAT, "%s: %s: byte size overflows", c->g->path, tn);
    t->nbytes = (size_t)nbytes;
    OC_TRY(u64_at(c, "the data offset", &t->offset));
    c->what = "header";
    return OC_OK;
}

/* ---- opening ------------------------------------------------------------------------- */

int oc_gguf_sniff(const void *data, size_t size) {
    return data && size >= 4 && memcmp(data, "GGUF", 4) == 0;
}

int oc_gguf_is_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char m[4];
    int ok = fread(m, 1, 4, f) == 4 && memcmp(m, "GGUF", 4) == 0;
    fclose(f);
    return ok;
}

static oc_status parse_header(oc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv, cursor *c) {
    const unsigned char *p = NULL;
    OC_TRY(take(c, 4, "the magic", &p));
    if (memcmp(p, "GGUF", 4) != 0)
        return oc_err(OC_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", g->path);
    OC_TRY(u32_at(c, "the version", &g->version));
    if (g->version == 1)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (2 and 3 are; "
                      "convert it again with a current llama.cpp)", g->path);
    if ((g->version & 0xFFFF) == 0 && g->version)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: a big-endian GGUF file (version %u byte-swapped) "
                      "is not supported", g->path, __builtin_bswap32(g->version));
    if (g->version != 2 && g->version != 3)
        return oc_err(OC_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)",
                      g->path, g->version);
    OC_TRY(u64_at(c, "the tensor count", n_tensors));
    OC_TRY(u64_at(c, "the key-value count", n_kv));
    /* the smallest key-value pair takes 14 bytes (key length, one key byte, type, a
     * one-byte value), the smallest tensor info 33: larger counts cannot be honest */
    if (*n_kv > left(c) / 14 || *n_tensors > left(c) / 33 ||
        *n_kv * 14 + *n_tensors * 33 > left(c))
        return oc_err(OC_ERR_FORMAT, "%s: header claims %llu tensors and %llu key-value pairs, "
                      "more than the %zu bytes of the file can hold", g->path,
                      (unsigned long long)*n_tensors, (unsigned long long)*n_kv, left(c));
    return OC_OK;
}

static oc_status check_unique(oc_gguf *g) {
    for (size_t i = 1; i < g->n_kv; i++)
        if (!strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key))
            return oc_err(OC_ERR_FORMAT, "%s: key '%s' appears twice", g->path,
                          g->kv_sorted[i]->key);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name))
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' appears twice", g->path,
                          g->t_sorted[i]->name);
    return OC_OK;
}

static oc_status read_alignment(oc_gguf *g) {
    g->alignment = DEFAULT_ALIGNMENT;
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, "general.alignment");
    if (!kv)
        return OC_OK;
    if (kv->type != OC_GGUF_U32)
        return oc_err(OC_ERR_FORMAT, "%s: general.alignment is a %s, expected u32", g->path,
                      tname(kv->type));
    uint32_t a = rd32(kv->data);
    if (a == 0 || (a & (a - 1)) || a > (1u << 20))
        return oc_err(OC_ERR_FORMAT, "%s: general.alignment %u is not a power of two up to "
                      "1 MiB", g->path, a);
    g->alignment = a;
    return OC_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const oc_gguf_tensor *x = *(const oc_gguf_tensor *const *)a,
                         *y = *(const oc_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every tensor aligned, inside the data section, and apart from the others. */
static oc_status place_tensors(oc_gguf *g, size_t header_end) {
    size_t a = g->alignment;
    size_t data_start = (header_end + a - 1) / a * a;
    if (g->n_tensors && data_start > g->size)
        return oc_err(OC_ERR_FORMAT, "%s: the tensor data would start at byte %zu, past the "
                      "end of the file (%zu bytes; truncated?)", g->path, data_start, g->size);
    size_t data_size = g->n_tensors ? g->size - data_start : 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        oc_gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' is at data offset %llu, not a "
                          "multiple of the alignment %zu", g->path, t->name,
                          (unsigned long long)t->offset, a);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return oc_err(OC_ERR_FORMAT, "%s: tensor '%s' (%zu bytes at data offset %llu) runs "
                          "past the end of the file (%zu data bytes; truncated?)", g->path,
                          t->name, t->nbytes, (unsigned long long)t->offset, data_size);
        t->data = g->d + data_start + t->offset;
    }
    const oc_gguf_tensor **by_off = oc_malloc((g->n_tensors ? g->n_tensors : 1) *
                                              sizeof *by_off);
    if (!by_off)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", g->path);
    for (size_t i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, g->n_tensors, sizeof *by_off, cmp_offset);
    oc_status s = OC_OK;
    for (size_t i = 1; i < g->n_tensors && s == OC_OK; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset)
            s = oc_err(OC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", g->path,
                       by_off[i - 1]->name, by_off[i]->name);
    oc_free(by_off);
    return s;
}

static oc_status parse(oc_gguf *g) {
    cursor c = {g, 0, "header"};
    uint64_t n_tensors = 0, n_kv = 0;
    OC_TRY(parse_header(g, &n_tensors, &n_kv, &c));
    size_t nk = (size_t)n_kv, nt = (size_t)n_tensors;
    pool_refs *kr = oc_calloc(nk ? nk : 1, sizeof *kr);
    pool_refs *tr = oc_calloc(nt ? nt : 1, sizeof *tr);
    g->kvs = oc_calloc(nk ? nk : 1, sizeof *g->kvs);
    g->tensors = oc_calloc(nt ? nt : 1, sizeof *g->tensors);
    g->kv_sorted = oc_calloc(nk ? nk : 1, sizeof *g->kv_sorted);
    g->t_sorted = oc_calloc(nt ? nt : 1, sizeof *g->t_sorted);
    oc_status s = OC_OK;
    if (!kr || !tr || !g->kvs || !g->tensors || !g->kv_sorted || !g->t_sorted)
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", g->path);
    for (size_t i = 0; s == OC_OK && i < nk; i++, g->n_kv++)
        s = parse_kv(&c, i, &g->kvs[i], &kr[i]);
    for (size_t i = 0; s == OC_OK && i < nt; i++, g->n_tensors++)
        s = parse_tensor_info(&c, i, &g->tensors[i], &tr[i]);
    if (s == OC_OK) { /* the pool no longer grows: pointers into it are stable */
        for (size_t i = 0; i < nk; i++) {
            g->kvs[i].key = g->strings + kr[i].key_off;
            g->kvs[i].str = kr[i].str_off != (size_t)-1 ? g->strings + kr[i].str_off : NULL;
            g->kv_sorted[i] = &g->kvs[i];
        }
        for (size_t i = 0; i < nt; i++) {
            g->tensors[i].name = g->strings + tr[i].name_off;
            g->t_sorted[i] = &g->tensors[i];
        }
        qsort(g->kv_sorted, nk, sizeof *g->kv_sorted, cmp_kv);
        qsort(g->t_sorted, nt, sizeof *g->t_sorted, cmp_tensor);
        s = check_unique(g);
    }
    if (s == OC_OK)
        s = read_alignment(g);
    if (s == OC_OK)
        s = place_tensors(g, c.pos);
    oc_free(kr);
    oc_free(tr);
    return s;
}

static oc_status open_common(oc_gguf *g, oc_gguf **out) {
    oc_status s = parse(g);
    if (s != OC_OK) {
        oc_gguf_close(g);
        return s;
    }
    *out = g;
    return OC_OK;
}

oc_status oc_gguf_open(const char *path, oc_gguf **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_gguf_open: NULL argument");
    oc_gguf *g = oc_calloc(1, sizeof *g);
    if (!g || !(g->path = oc_strdup(path))) {
        oc_free(g);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    }
    oc_status s = oc_map_file(path, &g->map);
    if (s != OC_OK) {
        g->map.mapped = -1;
        oc_gguf_close(g);
        return s;
    }
    g->d = g->map.data;
    g->size = g->map.size;
    return open_common(g, out);
}

oc_status oc_gguf_open_memory(const void *data, size_t size, const char *name,
                              oc_gguf **out) {
    if ((!data && size) || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_gguf_open_memory: NULL argument");
    if (!name)
        name = "gguf";
    oc_gguf *g = oc_calloc(1, sizeof *g);
    if (!g || !(g->path = oc_strdup(name))) {
        oc_free(g);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    }
    g->map.mapped = -1;
    g->d = data;
    g->size = size;
    return open_common(g, out);
}

void oc_gguf_close(oc_gguf *g) {
    if (!g)
        return;
    if (g->map.mapped != -1)
        oc_unmap_file(&g->map);
    for (size_t i = 0; i < g->n_str_offs; i++)
        oc_free(g->str_offs[i]);
    oc_free(g->str_offs);
    oc_free(g->kvs);
    oc_free(g->kv_sorted);
    oc_free(g->tensors);
    oc_free(g->t_sorted);
    oc_free(g->strings);
    oc_free(g->path);
    oc_free(g);
}

const char *oc_gguf_path(const oc_gguf *g) { return g ? g->path : ""; }
uint32_t oc_gguf_version(const oc_gguf *g) { return g ? g->version : 0; }
uint32_t oc_gguf_alignment(const oc_gguf *g) { return g ? g->alignment : 0; }

/* ---- lookups ----------------------------------------------------------------------------- */

size_t oc_gguf_kv_count(const oc_gguf *g) { return g ? g->n_kv : 0; }

const oc_gguf_kv *oc_gguf_kv_at(const oc_gguf *g, size_t i) {
    return g && i < g->n_kv ? &g->kvs[i] : NULL;
}

const oc_gguf_kv *oc_gguf_find_kv(const oc_gguf *g, const char *key) {
    if (!g || !key)
        return NULL;
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv_sorted[mid]->key, key);
        if (c == 0)
            return g->kv_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t oc_gguf_tensor_count(const oc_gguf *g) { return g ? g->n_tensors : 0; }

const oc_gguf_tensor *oc_gguf_tensor_at(const oc_gguf *g, size_t i) {
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const oc_gguf_tensor *oc_gguf_find_tensor(const oc_gguf *g, const char *name) {
    if (!g || !name)
        return NULL;
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->t_sorted[mid]->name, name);
        if (c == 0)
            return g->t_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- values ------------------------------------------------------------------------------ */

static int is_int_type(oc_gguf_type t) {
    return t <= OC_GGUF_I32 || t == OC_GGUF_U64 || t == OC_GGUF_I64;
}

/* An integer value of type t at p, as int64 (u64 above INT64_MAX saturates: out of any
 * range a caller asks for). */
static int64_t int_value(oc_gguf_type t, const unsigned char *p) {
    switch (t) {
    case OC_GGUF_U8: return p[0];
    case OC_GGUF_I8: return (int8_t)p[0];
    case OC_GGUF_U16: return (uint16_t)(p[0] | p[1] << 8);
    case OC_GGUF_I16: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case OC_GGUF_U32: return rd32(p);
    case OC_GGUF_I32: return (int32_t)rd32(p);
    case OC_GGUF_U64: {
        uint64_t v = rd64(p);
        return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    case OC_GGUF_I64: return (int64_t)rd64(p);
    default: return 0;
    }
}

static double float_value(oc_gguf_type t, const unsigned char *p) {
    if (t == OC_GGUF_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    double d;
    memcpy(&d, p, 8);
    return d;
}

oc_status oc_gguf_get_int(const oc_gguf *g, const char *key, int required, int64_t def,
                          int64_t lo, int64_t hi, int64_t *out) {
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, key);
    if (!kv) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: missing key '%s'", g->path, key);
        *out = def;
        return OC_OK;
    }
    if (!is_int_type(kv->type))
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is a %s, expected an integer", g->path, key,
                      tname(kv->type));
    int64_t v = int_value(kv->type, kv->data);
    if (v < lo || v > hi)
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is %lld, outside [%lld, %lld]", g->path, key,
                      (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return OC_OK;
}

oc_status oc_gguf_get_float(const oc_gguf *g, const char *key, int required, double def,
                            double *out) {
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, key);
    if (!kv) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: missing key '%s'", g->path, key);
        *out = def;
        return OC_OK;
    }
    if (kv->type != OC_GGUF_F32 && kv->type != OC_GGUF_F64)
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is a %s, expected a float", g->path, key,
                      tname(kv->type));
    double v = float_value(kv->type, kv->data);
    if (!isfinite(v))
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is %g", g->path, key, v);
    *out = v;
    return OC_OK;
}

oc_status oc_gguf_get_bool(const oc_gguf *g, const char *key, int def, int *out) {
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return OC_OK;
    }
    if (kv->type != OC_GGUF_BOOL)
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is a %s, expected a bool", g->path, key,
                      tname(kv->type));
    *out = kv->data[0] != 0;
    return OC_OK;
}

oc_status oc_gguf_get_str(const oc_gguf *g, const char *key, int required, const char **out) {
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, key);
    *out = NULL;
    if (!kv)
        return required ? oc_err(OC_ERR_FORMAT, "%s: missing key '%s'", g->path, key) : OC_OK;
    if (kv->type != OC_GGUF_STRING)
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is a %s, expected a string", g->path, key,
                      tname(kv->type));
    if (memchr(kv->str, 0, (size_t)kv->str_len))
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' holds a NUL byte", g->path, key);
    *out = kv->str;
    return OC_OK;
}

oc_status oc_gguf_get_array(const oc_gguf *g, const char *key, int required,
                            oc_gguf_type elem, const oc_gguf_kv **out) {
    const oc_gguf_kv *kv = oc_gguf_find_kv(g, key);
    *out = NULL;
    if (!kv)
        return required ? oc_err(OC_ERR_FORMAT, "%s: missing key '%s'", g->path, key) : OC_OK;
    int ok = kv->type == OC_GGUF_ARRAY &&
             (elem == OC_GGUF_I64   ? is_int_type(kv->elem_type)
              : elem == OC_GGUF_F64 ? kv->elem_type == OC_GGUF_F32 ||
                                          kv->elem_type == OC_GGUF_F64
                                    : kv->elem_type == elem);
    if (!ok)
        return oc_err(OC_ERR_FORMAT, "%s: key '%s' is %s%s, expected an array of %s", g->path,
                      key, kv->type == OC_GGUF_ARRAY ? "an array of " : "a ",
                      tname(kv->type == OC_GGUF_ARRAY ? kv->elem_type : kv->type),
                      elem == OC_GGUF_I64 ? "integers" : elem == OC_GGUF_F64 ? "floats"
                                                                            : tname(elem));
    *out = kv;
    return OC_OK;
}

const char *oc_gguf_arr_str(const oc_gguf_kv *kv, uint64_t i, size_t *len) {
    const unsigned char *p = kv->data + kv->str_off[i];
    *len = (size_t)rd64(p);
    return (const char *)p + 8;
}

int64_t oc_gguf_arr_int(const oc_gguf_kv *kv, uint64_t i) {
    return int_value(kv->elem_type, kv->data + i * scalar_size(kv->elem_type));
}

double oc_gguf_arr_float(const oc_gguf_kv *kv, uint64_t i) {
    return float_value(kv->elem_type, kv->data + i * scalar_size(kv->elem_type));
}
