#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "io.h"

/* Regular files, and for reads also pipes: never a device (/dev/zero is not an image). */
static oc_status check_kind(const char *path, const struct stat *st, int allow_pipe) {
    if (S_ISREG(st->st_mode) || (allow_pipe && S_ISFIFO(st->st_mode)))
        return OC_OK;
    if (S_ISDIR(st->st_mode))
        return oc_err(OC_ERR_IO, "%s: is a folder, not a file", path);
    return oc_err(OC_ERR_IO, "%s: not a regular file", path);
}

oc_status oc_map_file(const char *path, oc_mapped_file *out) {
    memset(out, 0, sizeof *out);
    int fd = oc_io_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    oc_status s = fstat(fd, &st) != 0 ? oc_err(OC_ERR_IO, "%s: cannot stat: %s", path,
                                               strerror(errno))
                                      : check_kind(path, &st, 0);
    if (s != OC_OK || st.st_size == 0) {
        close(fd);
        return s;
    }
    void *p = oc_io_mmap((size_t)st.st_size, fd, path);
    int e = errno;
    close(fd); /* the mapping stays valid */
    if (p == MAP_FAILED)
        return oc_err(OC_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->mapped = 1;
    return OC_OK;
}

void oc_unmap_file(oc_mapped_file *f) {
    if (!f)
        return;
    if (f->mapped && f->data)
        munmap((void *)f->data, f->size);
    else
        oc_free((void *)f->data);
    memset(f, 0, sizeof *f);
}

void oc_release_pages(const void *p, size_t n) {
#ifdef MADV_PAGEOUT
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, e = a + n;
    uintptr_t lo = (a + page - 1) / page * page, hi = e / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_PAGEOUT); /* advice: a failure changes nothing */
#else
    (void)p, (void)n;
#endif
}

static oc_status too_large(const char *path, size_t max_size) {
    return oc_err(OC_ERR_LIMIT, "%s: file is larger than the limit of %zu bytes", path,
                  max_size);
}

/* Reads fd to the end into *buf: never more than max_size + 1 bytes (the one that shows
 * the limit is passed), in a buffer that grows to at most max_size + 2. */
static oc_status read_all(int fd, const char *path, size_t max_size, size_t hint, char **buf,
                          size_t *size) {
    if (max_size > SIZE_MAX - 2)
        max_size = SIZE_MAX - 2;
    size_t cap = hint < max_size ? hint + 2 : max_size + 2, n = 0;
    if (cap < 2)
        cap = 2;
    char *b = oc_malloc(cap);
    if (!b)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    oc_status s = OC_OK;
    for (;;) {
        if (n + 1 == cap) { /* full: grow, but not past the limit */
            if (n > max_size) {
                s = too_large(path, max_size);
                break;
            }
            size_t nc = cap <= (max_size + 2) / 2 ? 2 * cap : max_size + 2;
            char *nb = oc_realloc(b, nc);
            if (!nb) {
                s = oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            b = nb;
            cap = nc;
        }
        ssize_t got = oc_io_read(fd, b + n, cap - 1 - n, path);
        if (got < 0) {
            s = oc_err(OC_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max_size) {
            s = too_large(path, max_size);
            break;
        }
    }
    if (s != OC_OK) {
        oc_free(b);
        return s;
    }
    b[n] = 0;
    *buf = b;
    *size = n;
    return OC_OK;
}

oc_status oc_read_file(const char *path, size_t max_size, char **data, size_t *size) {
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : oc_io_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    size_t hint = 1 << 16;
    oc_status s = OC_OK;
    if (fstat(fd, &st) != 0)
        s = oc_err(OC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!is_stdin)
        s = check_kind(path, &st, 1);
    if (s == OC_OK && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > (uint64_t)max_size)
            s = too_large(path, max_size);
        hint = (size_t)st.st_size;
    }
    if (s == OC_OK)
        s = read_all(fd, is_stdin ? "<stdin>" : path, max_size, hint, data, size);
    if (!is_stdin)
        close(fd); /* read-only: nothing to lose */
    return s;
}

char *oc_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = oc_malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int oc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int oc_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
