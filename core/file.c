#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

oc_status oc_map_file(const char *path, oc_mapped_file *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return oc_err(OC_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return OC_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return oc_err(OC_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
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

oc_status oc_read_file(const char *path, size_t max_size, char **data, size_t *size) {
    int is_stdin = strcmp(path, "-") == 0;
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    if (!fp)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = oc_malloc(cap);
    oc_status s = OC_OK;
    if (!buf)
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    while (s == OC_OK) {
        if (n + 1 >= cap) {
            if (cap > max_size + 1) {
                s = oc_err(OC_ERR_LIMIT, "%s: file is larger than the limit of %zu bytes",
                           path, max_size);
                break;
            }
            char *nb = oc_realloc(buf, cap * 2);
            if (!nb) {
                s = oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp))
                s = oc_err(OC_ERR_IO, "%s: read error", path);
            break;
        }
    }
    if (s == OC_OK && n > max_size)
        s = oc_err(OC_ERR_LIMIT, "%s: file is larger than the limit of %zu bytes", path,
                   max_size);
    if (!is_stdin)
        fclose(fp);
    if (s != OC_OK) {
        oc_free(buf);
        return s;
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return OC_OK;
}

oc_status oc_write_file_atomic(const char *path, const void *data, size_t size) {
    size_t len = strlen(path);
    char *tmp = oc_malloc(len + 16);
    if (!tmp)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, len + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        oc_status s = oc_err(OC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        oc_free(tmp);
        return s;
    }
    const unsigned char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    int ok = left == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        oc_status s = oc_err(OC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        oc_free(tmp);
        return s;
    }
    oc_free(tmp);
    return OC_OK;
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
