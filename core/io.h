/* The system calls through which ocellus reads and writes files. Each behaves as the call
 * it wraps (-1 and errno on failure; EINTR retried), and each passes through one hook so
 * that tests can fail the k-th of them, as SQLite fails the k-th allocation or write, and
 * see the order in which they come. path is the file the call is about, for the trace. */
#ifndef OC_IO_H
#define OC_IO_H
#include <stddef.h>
#include <sys/types.h>

typedef enum {
    OC_IO_OPEN,   /* open of a file or folder */
    OC_IO_READ,
    OC_IO_WRITE,
    OC_IO_FSYNC,  /* of a file or a folder */
    OC_IO_CLOSE,
    OC_IO_RENAME, /* rename, renameat2 (exchange, no-replace) */
    OC_IO_MKDIR,
    OC_IO_LINK,
    OC_IO_MMAP,
    OC_IO_LOCK,   /* flock */
    OC_IO_N_OPS
} oc_io_op;

const char *oc_io_op_name(oc_io_op op); /* "open", "write", ... */

int oc_io_open(const char *path, int flags, mode_t mode);
/* Reads up to n bytes; 0 at the end. */
ssize_t oc_io_read(int fd, void *buf, size_t n, const char *path);
/* Writes all n bytes (in as many write calls as it takes); 0, or -1 and errno. */
int oc_io_write_all(int fd, const void *buf, size_t n, const char *path);
int oc_io_fsync(int fd, const char *path);
/* Closes fd whatever happens; -1 if close reported an error (or one was injected). */
int oc_io_close(int fd, const char *path);
/* renameat2(AT_FDCWD, from, AT_FDCWD, to, flags): 0, RENAME_NOREPLACE or
 * RENAME_EXCHANGE. */
int oc_io_rename(const char *from, const char *to, unsigned flags);
int oc_io_mkdir(const char *path, mode_t mode);
int oc_io_link(const char *from, const char *to);
/* mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0); MAP_FAILED on failure. */
void *oc_io_mmap(size_t n, int fd, const char *path);
/* flock(fd, LOCK_EX | LOCK_NB). */
int oc_io_lock(int fd, const char *path);

/* ---- test hooks (not exported from the shared library) ---------------------------- */

/* The k-th hooked call from now (k >= 1) fails with errno err (0: EIO) without being
 * made (a close is still made); k = 0 disables. Returns the number of hooked calls
 * counted since the previous oc_io_fail_at. */
long oc_io_fail_at(long k, int err);

/* Called before each hooked call (NULL: none). */
typedef void (*oc_io_trace_fn)(oc_io_op op, const char *path, void *user_data);
void oc_io_set_trace(oc_io_trace_fn fn, void *user_data);
#endif
