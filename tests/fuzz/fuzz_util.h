/* Helpers for the fuzz targets (tests/fuzz/fuzz_*.c): scratch files and folders for the
 * parsers that read paths, and small readers for the fixed inputs in tests/data.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with -Dfuzz=true (clang) it links
 * with libFuzzer's main; otherwise it links with replay.c, which feeds it the files of
 * its corpus (a meson test in every build, so that the sanitizer build replays them). */
#ifndef OC_FUZZ_UTIL_H
#define OC_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private scratch folder for this process (created once, removed at exit). */
const char *fz_dir(void);
/* fz_dir() + "/" + name, in a static buffer per slot (slot 0..3). */
const char *fz_path(int slot, const char *name);
/* Writes data to path (replacing it); aborts on I/O failure (a harness bug). */
void fz_write(const char *path, const void *data, size_t n);
/* Removes path if it exists. */
void fz_unlink(const char *path);
/* Copies a file (aborts on failure). */
void fz_copy(const char *from, const char *to);
/* OC_TEST_DATA "/" rel, in a static buffer per slot (slot 0..3). */
const char *fz_data(int slot, const char *rel);
/* A NUL-terminated copy of data (malloc'd, never NULL). */
char *fz_cstr(const uint8_t *data, size_t n);
/* Asserts that a failing call left a sentence; aborts (a finding) otherwise. */
void fz_check_error(int status, const char *what);
#endif
