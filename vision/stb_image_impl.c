/* The one compilation of stb_image: only the formats ocellus decodes with it, memory
 * only (JPEG goes to libjpeg; files are read by image.c so that the file-size limit applies), our allocator (so
 * that tests can inject failures), and a cap on dimensions as a last line of defence
 * behind the limits that image.c checks before decoding. */
#include <stddef.h>

#include "alloc.h"

/* stb reports a failed allocation only as a reason string, and some of its format tests
 * swallow even that ("unknown image type"); remember it here. */
static _Thread_local int stb_alloc_failed;

/* Zeroed: stb 2.27 can read memory it never wrote (a JPEG scan using a Huffman table the
 * file never defined reads an uninitialised table and then indexes with it). */
static void *stb_malloc(size_t n) {
    void *p = oc_calloc(1, n);
    stb_alloc_failed |= p == NULL;
    return p;
}

static void *stb_realloc(void *p, size_t n) {
    void *q = oc_realloc(p, n);
    stb_alloc_failed |= q == NULL;
    return q;
}

#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
/* no STBI_ONLY_PNM: image.c reads PNM itself (stb 2.27 reads 16-bit samples in host byte
 * order and ignores short files) */
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 24)
#define STBI_MALLOC(sz) stb_malloc(sz)
#define STBI_REALLOC(p, newsz) stb_realloc(p, newsz)
#define STBI_FREE(p) oc_free(p)
#define STB_IMAGE_IMPLEMENTATION

/* stb's code is not ours to warn about */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#if defined(__clang__)
/* stb 2.27 lets its JPEG bit count go negative on corrupt entropy-coded data and then
 * shifts a 32-bit value by 32 or more (fixed in stb 2.28): undefined behaviour that only
 * yields garbage bits on the machines ocellus builds for, and that the caller cannot
 * prevent. Keep the sanitizer builds (clang) quiet about that one kind of report. */
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC diagnostic pop

/* For image.c (which declares them): forget the last failure; did an allocation fail
 * since? */
void oc_stbi_clear_failure(void);
int oc_stbi_alloc_failed(void);

void oc_stbi_clear_failure(void) {
    stbi__g_failure_reason = NULL;
    stb_alloc_failed = 0;
}

int oc_stbi_alloc_failed(void) { return stb_alloc_failed; }
