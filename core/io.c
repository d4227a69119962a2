#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic long fail_at; /* 0: never */
static _Atomic long n_calls;
static _Atomic int fail_errno;
static oc_io_trace_fn trace_fn;
static void *trace_user;

static const char *const op_names[OC_IO_N_OPS] = {
    "open", "read", "write", "fsync", "close", "rename", "mkdir", "link", "mmap", "lock",
};

const char *oc_io_op_name(oc_io_op op) {
    return (unsigned)op < OC_IO_N_OPS ? op_names[op] : "?";
}

long oc_io_fail_at(long k, int err) {
    long n = atomic_exchange(&n_calls, 0);
    atomic_store(&fail_errno, err ? err : EIO);
    atomic_store(&fail_at, k);
    return n;
}

void oc_io_set_trace(oc_io_trace_fn fn, void *user_data) {
    trace_fn = fn;
    trace_user = user_data;
}

/* Counts the call; 1 if it is the one to fail (errno set). */
static int inject(oc_io_op op, const char *path) {
    if (trace_fn)
        trace_fn(op, path, trace_user);
    long n = atomic_fetch_add(&n_calls, 1) + 1, k = atomic_load(&fail_at);
    if (k > 0 && n == k) {
        errno = atomic_load(&fail_errno);
        return 1;
    }
    return 0;
}

int oc_io_open(const char *path, int flags, mode_t mode) {
    if (inject(OC_IO_OPEN, path))
        return -1;
    int fd;
    do
        fd = open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

ssize_t oc_io_read(int fd, void *buf, size_t n, const char *path) {
    if (inject(OC_IO_READ, path))
        return -1;
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

int oc_io_write_all(int fd, const void *buf, size_t n, const char *path) {
    const unsigned char *p = buf;
    while (n > 0) {
        if (inject(OC_IO_WRITE, path))
            return -1;
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* no progress and no error: treat as a full device */
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int oc_io_fsync(int fd, const char *path) {
    if (inject(OC_IO_FSYNC, path))
        return -1;
    int r;
    do
        r = fsync(fd);
    while (r != 0 && errno == EINTR);
    return r;
}

int oc_io_close(int fd, const char *path) {
    int injected = inject(OC_IO_CLOSE, path), e = errno;
    /* Linux frees the descriptor even when close fails: never retry it */
    int r = close(fd);
    if (injected) {
        errno = e;
        return -1;
    }
    return r;
}

int oc_io_rename(const char *from, const char *to, unsigned flags) {
    if (inject(OC_IO_RENAME, to))
        return -1;
    return flags ? renameat2(AT_FDCWD, from, AT_FDCWD, to, flags) : rename(from, to);
}

int oc_io_mkdir(const char *path, mode_t mode) {
    if (inject(OC_IO_MKDIR, path))
        return -1;
    return mkdir(path, mode);
}

int oc_io_link(const char *from, const char *to) {
    if (inject(OC_IO_LINK, to))
        return -1;
    return link(from, to);
}

void *oc_io_mmap(size_t n, int fd, const char *path) {
    if (inject(OC_IO_MMAP, path))
        return MAP_FAILED;
    return mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
}

int oc_io_lock(int fd, const char *path) {
    if (inject(OC_IO_LOCK, path))
        return -1;
    int r;
    do
        r = flock(fd, LOCK_EX | LOCK_NB);
    while (r != 0 && errno == EINTR);
    return r;
}
