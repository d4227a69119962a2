/* Files: read-only mappings and whole-file reads, with errors naming the path. */
#ifndef OC_FILE_H
#define OC_FILE_H
#include "ocellus.h"
#include <stddef.h>

typedef struct {
    const unsigned char *data; /* size bytes, read-only */
    size_t size;
    int mapped;                /* 1: munmap on close; 0: oc_free */
} oc_mapped_file;

/* Maps path read-only. Empty files map to data == NULL, size 0. */
oc_status oc_map_file(const char *path, oc_mapped_file *out);
void oc_unmap_file(oc_mapped_file *f);
/* Tells the kernel the whole pages inside [p, p + n) are not needed for now (a weight
 * copied out of a mapping in another format): they leave the resident set. Contents are
 * kept (MADV_PAGEOUT reclaims, it never discards), so this is safe on any memory. */
void oc_release_pages(const void *p, size_t n);

/* Reads a whole file (or "-" = stdin) into a NUL-terminated buffer; files over
 * max_size fail with OC_ERR_LIMIT before more than max_size + 1 bytes are read (a
 * regular file's size is checked first). Devices and folders are refused. Caller frees
 * *data with oc_free. (Writing: output.h.) */
oc_status oc_read_file(const char *path, size_t max_size, char **data, size_t *size);

/* dir + "/" + name, malloc'd (NULL on failure). */
char *oc_path_join(const char *dir, const char *name);
int oc_file_exists(const char *path);
int oc_is_dir(const char *path);
#endif
