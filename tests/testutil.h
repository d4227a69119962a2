/* Helpers shared by the tests: paths into tests/data, comparing tensors. */
#ifndef OC_TESTUTIL_H
#define OC_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ocellus.h"
#include "safetensors.h"

/* OC_TEST_DATA "/" rel, in one of 8 static buffers used in turn. */
const char *td(const char *rel);
/* A fresh empty directory under /tmp for this test, in a static buffer. */
const char *tmpdir(const char *tag);
/* max |a - b| / max |b| */
double rel_err(const float *a, const float *b, size_t n);
double max_abs_diff(const float *a, const float *b, size_t n);
/* Loads a tensor of a safetensors file as floats; fails the test if absent. */
float *load_f32(const char *path, const char *name, size_t *n);
/* Writes text to path. */
void write_text(const char *path, const char *text);
void write_bytes(const char *path, const void *data, size_t n);
/* Case i's "greedy_text" of tests/data/MODEL/reference.json (transformers' greedy answer),
 * malloc'd. */
char *ref_greedy_text(const char *model, int i);
#endif
