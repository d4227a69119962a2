/* GGUF (llama.cpp's model file, versions 2 and 3): a mapped, validated reader.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count;
 * the key-value pairs (string key, u32 value type, value); the tensor infos (string name,
 * u32 number of dims, u64 ne[dims] fastest first, u32 ggml type, u64 offset); padding to
 * general.alignment (32 by default); the tensor data, each tensor at its offset from the
 * data start. A string is a u64 length and that many bytes; an array a u32 element type,
 * a u64 count and the elements.
 *
 * GGUF readers have a history of integer overflows in counts and lengths: every count,
 * length, dimension, type, offset and the alignment is checked against the bytes that
 * remain before it is used, element counts and byte sizes are overflow-checked, tensors
 * must lie inside the data section at aligned offsets without overlapping, and keys and
 * tensor names must be unique. Errors name the file and the problem. */
#ifndef OC_GGUF_H
#define OC_GGUF_H
#include <stddef.h>
#include <stdint.h>

#include "file.h"
#include "ocellus.h"

/* Value types of key-value pairs (gguf_type). */
typedef enum {
    OC_GGUF_U8 = 0,
    OC_GGUF_I8 = 1,
    OC_GGUF_U16 = 2,
    OC_GGUF_I16 = 3,
    OC_GGUF_U32 = 4,
    OC_GGUF_I32 = 5,
    OC_GGUF_F32 = 6,
    OC_GGUF_BOOL = 7,
    OC_GGUF_STRING = 8,
    OC_GGUF_ARRAY = 9,
    OC_GGUF_U64 = 10,
    OC_GGUF_I64 = 11,
    OC_GGUF_F64 = 12,
    OC_GGUF_TYPE_COUNT
} oc_gguf_type;

/* Tensor types (ggml_type) that ocellus converts; others are validated by size only. */
enum {
    OC_GGML_F32 = 0,
    OC_GGML_F16 = 1,
    OC_GGML_Q4_0 = 2,
    OC_GGML_Q4_1 = 3,
    OC_GGML_Q5_0 = 6,
    OC_GGML_Q5_1 = 7,
    OC_GGML_Q8_0 = 8,
    OC_GGML_Q4_K = 12,
    OC_GGML_Q5_K = 13,
    OC_GGML_Q6_K = 14,
    OC_GGML_BF16 = 30,
};

#define OC_GGUF_MAX_DIMS 4

typedef struct {
    const char *key;           /* NUL-terminated copy */
    oc_gguf_type type;
    oc_gguf_type elem_type;    /* arrays */
    uint64_t n;                /* arrays: element count; 1 otherwise */
    const unsigned char *data; /* the value (arrays: the first element) in the mapping */
    const uint64_t *str_off;   /* string arrays: offset of element i's length from data */
    const char *str;           /* strings: NUL-terminated copy */
    uint64_t str_len;
} oc_gguf_kv;

typedef struct {
    const char *name;            /* NUL-terminated copy */
    uint32_t type;               /* ggml type */
    int ndim;
    int64_t ne[OC_GGUF_MAX_DIMS]; /* ne[0] varies fastest (a row); unused dims are 1 */
    uint64_t numel;
    uint64_t offset;             /* from the data section */
    const void *data;            /* in the mapping, aligned to general.alignment */
    size_t nbytes;
} oc_gguf_tensor;

typedef struct oc_gguf oc_gguf;

/* Maps and validates path. Caller closes *out with oc_gguf_close. */
oc_status oc_gguf_open(const char *path, oc_gguf **out);
/* The same on bytes the caller keeps alive until close (name is used in errors). */
oc_status oc_gguf_open_memory(const void *data, size_t size, const char *name,
                              oc_gguf **out);
void oc_gguf_close(oc_gguf *g);

const char *oc_gguf_path(const oc_gguf *g);
uint32_t oc_gguf_version(const oc_gguf *g);
uint32_t oc_gguf_alignment(const oc_gguf *g);
/* 1 if the bytes start with the GGUF magic. */
int oc_gguf_sniff(const void *data, size_t size);
/* 1 if the file at path starts with the GGUF magic. */
int oc_gguf_is_file(const char *path);

size_t oc_gguf_kv_count(const oc_gguf *g);
const oc_gguf_kv *oc_gguf_kv_at(const oc_gguf *g, size_t i);
const oc_gguf_kv *oc_gguf_find_kv(const oc_gguf *g, const char *key); /* NULL if absent */

/* Typed getters. A missing key gives def (or OC_ERR_FORMAT naming the key when
 * required); a present one of the wrong type or out of [lo, hi] is OC_ERR_FORMAT. */
oc_status oc_gguf_get_int(const oc_gguf *g, const char *key, int required, int64_t def,
                          int64_t lo, int64_t hi, int64_t *out);
oc_status oc_gguf_get_float(const oc_gguf *g, const char *key, int required, double def,
                            double *out);
oc_status oc_gguf_get_bool(const oc_gguf *g, const char *key, int def, int *out);
/* *out NULL when absent and not required. */
oc_status oc_gguf_get_str(const oc_gguf *g, const char *key, int required, const char **out);
/* An array of the given element type (any integer type for OC_GGUF_I64, F32 or F64 for
 * OC_GGUF_F64); *kv NULL when absent and not required. */
oc_status oc_gguf_get_array(const oc_gguf *g, const char *key, int required,
                            oc_gguf_type elem, const oc_gguf_kv **kv);

/* Element i (< kv->n) of an array: strings as pointer + length (not NUL-terminated),
 * numbers converted. */
const char *oc_gguf_arr_str(const oc_gguf_kv *kv, uint64_t i, size_t *len);
int64_t oc_gguf_arr_int(const oc_gguf_kv *kv, uint64_t i);
double oc_gguf_arr_float(const oc_gguf_kv *kv, uint64_t i);

size_t oc_gguf_tensor_count(const oc_gguf *g);
const oc_gguf_tensor *oc_gguf_tensor_at(const oc_gguf *g, size_t i); /* in file order */
const oc_gguf_tensor *oc_gguf_find_tensor(const oc_gguf *g, const char *name);

/* ggml type facts: a name ("Q4_K"; "type N" when unknown), elements per block and bytes
 * per block (0 when unknown). */
const char *oc_ggml_type_name(uint32_t type);
uint32_t oc_ggml_block_elems(uint32_t type);
uint32_t oc_ggml_block_bytes(uint32_t type);
/* 1 if oc_ggml_dequantize converts this type. */
int oc_ggml_can_dequantize(uint32_t type);
/* dst (n) = the n values of src in type (n a multiple of the block size). */
oc_status oc_ggml_dequantize(uint32_t type, const void *src, float *dst, size_t n);
#endif
