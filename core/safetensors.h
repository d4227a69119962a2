/* safetensors: a mapped, validated reader (one file or an index of shards) and a
 * streaming, atomic writer. Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then data. */
#ifndef OC_SAFETENSORS_H
#define OC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "file.h"
#include "output.h"
#include "ocellus.h"

#define OC_MAX_DIMS 8

typedef enum {
    OC_DT_F32 = 0,
    OC_DT_F16,
    OC_DT_BF16,
    OC_DT_F64,
    OC_DT_I64,
    OC_DT_I32,
    OC_DT_I16,
    OC_DT_I8,
    OC_DT_U8,
    OC_DT_BOOL,
    OC_DT_Q8_0, /* blocks of 32 int8 + an F16 scale (llama.cpp's); weights only, not a safetensors dtype */
} oc_dtype;

size_t oc_dtype_size(oc_dtype dt);
const char *oc_dtype_name(oc_dtype dt);
/* 0 if name is not a known dtype. */
int oc_dtype_parse(const char *name, oc_dtype *out);

typedef struct {
    const char *name;
    const char *file;            /* the file it lives in (for errors) */
    oc_dtype dtype;
    int ndim;
    int64_t shape[OC_MAX_DIMS];
    size_t numel;
    const void *data;            /* into the mapping; alignment not guaranteed */
    size_t nbytes;
} oc_st_tensor;

typedef struct oc_st_file oc_st_file;

/* Opens and validates one .safetensors file: header length, JSON, dtypes, shapes,
 * element counts (overflow-checked), offsets against the file size, and that no two
 * tensors overlap. */
oc_status oc_st_open(const char *path, oc_st_file **out);
void oc_st_close(oc_st_file *f);
size_t oc_st_count(const oc_st_file *f);
const oc_st_tensor *oc_st_at(const oc_st_file *f, size_t i);
const oc_st_tensor *oc_st_find(const oc_st_file *f, const char *name);
/* A string of the header's "__metadata__" (owned by f), or NULL. */
const char *oc_st_metadata(const oc_st_file *f, const char *key);

/* All tensors of a model folder: model.safetensors, or the shards listed in
 * model.safetensors.index.json. */
typedef struct oc_st_set oc_st_set;
oc_status oc_st_set_open(const char *dir, oc_st_set **out);
void oc_st_set_close(oc_st_set *s);
const oc_st_tensor *oc_st_set_find(const oc_st_set *s, const char *name);
size_t oc_st_set_count(const oc_st_set *s);
const oc_st_tensor *oc_st_set_at(const oc_st_set *s, size_t i);

/* Converts a F32/F16/BF16/F64 (or Q8_0) tensor to n floats (n must equal t->numel). */
oc_status oc_st_to_f32(const oc_st_tensor *t, float *dst, size_t n);
/* Checks dims ("%s: tensor '%s' has shape [..], expected [..]"); -1 in want = any. */
oc_status oc_st_check_shape(const oc_st_tensor *t, int ndim, const int64_t *want);

float oc_bf16_to_f32(uint16_t h);
float oc_f16_to_f32(uint16_t h);
uint16_t oc_f32_to_bf16(float f); /* round to nearest even */
uint16_t oc_f32_to_f16(float f);  /* round to nearest even */

/* Writer: tensors are referenced, not copied, until save. */
typedef struct oc_st_writer oc_st_writer;
oc_status oc_st_writer_new(oc_st_writer **out);
void oc_st_writer_free(oc_st_writer *w);
oc_status oc_st_writer_add(oc_st_writer *w, const char *name, oc_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);
/* Same, but data is F32 and is converted to dtype (F32/F16/BF16) at save time. */
oc_status oc_st_writer_add_f32_as(oc_st_writer *w, const char *name, oc_dtype dtype,
                                  int ndim, const int64_t *shape, const float *data);
/* A tensor whose values are made while the file is written, so that nothing is held in
 * memory: fill(ctx, out, offset, n) gives elements offset..offset+n-1 as floats, called
 * in order, converted to dtype (F32/F16/BF16). ctx must live until save. */
typedef void (*oc_st_fill_fn)(void *ctx, float *out, size_t offset, size_t n);
oc_status oc_st_writer_add_generated(oc_st_writer *w, const char *name, oc_dtype dtype,
                                     int ndim, const int64_t *shape, oc_st_fill_fn fill,
                                     void *ctx);
/* A "__metadata__" string beside "format": "pt" (copied). */
oc_status oc_st_writer_set_metadata(oc_st_writer *w, const char *key, const char *value);
/* Writes atomically (output.h: temporary, fsync, rename). */
oc_status oc_st_writer_save(oc_st_writer *w, const char *path);
/* Writes the file's bytes to f (the caller commits or aborts f). */
oc_status oc_st_writer_write(oc_st_writer *w, oc_out_file *f);
#endif
