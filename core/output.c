#include "output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "io.h"

#define BUF_SIZE (64u << 10)
#define TMP_TAG ".oc-tmp."
#define OLD_TAG ".oc-old."
#define LOCK_TAG ".oc-lock"
#define MAX_BASE 200 /* of a name inside temporary names (NAME_MAX is 255) */

/* ---- names ------------------------------------------------------------------------ */

/* 10 characters of [a-z0-9] from the kernel's random source (or, if that is missing,
 * from the clock, the process and a counter): nobody can guess a temporary's name. */
static void random_tag(char out[11]) {
    static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        static _Atomic uint64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 17 ^
            ++counter * 0x9E3779B97F4A7C15ull;
        r ^= r >> 31;
        r *= 0xBF58476D1CE4E5B9ull;
        r ^= r >> 27;
    }
    for (int i = 0; i < 10; i++, r /= 36)
        out[i] = al[r % 36];
    out[10] = 0;
}

/* parent + "/." + base (cut to MAX_BASE bytes) + tag + rest, malloc'd. */
static char *sibling(const char *parent, const char *base, const char *tag, const char *rest) {
    size_t b = strlen(base);
    if (b > MAX_BASE)
        b = MAX_BASE;
    size_t n = strlen(parent) + b + strlen(tag) + strlen(rest) + 4;
    char *p = oc_malloc(n);
    if (p)
        snprintf(p, n, "%s/.%.*s%s%s", parent, (int)b, base, tag, rest);
    return p;
}

/* "." + base (cut) + tag: what sibling() names begin with. */
static char *sibling_prefix(const char *base, const char *tag) {
    size_t b = strlen(base);
    if (b > MAX_BASE)
        b = MAX_BASE;
    size_t n = b + strlen(tag) + 2;
    char *p = oc_malloc(n);
    if (p)
        snprintf(p, n, ".%.*s%s", (int)b, base, tag);
    return p;
}

/* A new temporary name beside base in parent: ".base.oc-tmp.PID.RAND". */
static char *temp_name(const char *parent, const char *base) {
    char rest[40], tag[11];
    random_tag(tag);
    snprintf(rest, sizeof rest, "%ld.%s", (long)getpid(), tag);
    return sibling(parent, base, TMP_TAG, rest);
}

/* Splits path into its folder and last name (trailing slashes dropped). A last name of
 * "." or "..", or none, is resolved with realpath when resolve is set. */
static oc_status split_path(const char *path, int resolve, char **parent, char **base) {
    *parent = *base = NULL;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    char *p = oc_strndup(path, n), *rp = NULL;
    if (!p)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    char *slash = strrchr(p, '/');
    const char *b = slash ? slash + 1 : p;
    if (!*b || !strcmp(b, ".") || !strcmp(b, "..")) {
        if (!resolve || !(rp = realpath(p, NULL))) {
            oc_free(p);
            return oc_err(OC_ERR_INVALID_ARG, "%s: not a file or folder name", path);
        }
        oc_free(p);
        if (!strcmp(rp, "/")) {
            free(rp);
            return oc_err(OC_ERR_INVALID_ARG, "%s: cannot write over the root folder", path);
        }
        p = oc_strdup(rp);
        free(rp);
        if (!p)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
        slash = strrchr(p, '/');
    }
    if (!slash) {
        *base = p;
        *parent = oc_strdup(".");
    } else {
        *base = oc_strdup(slash + 1);
        *slash = 0;
        *parent = oc_strdup(slash == p ? "/" : p);
        oc_free(p);
    }
    if (!*base || !*parent) {
        oc_free(*base);
        oc_free(*parent);
        *parent = *base = NULL;
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    }
    return OC_OK;
}

static char *join(const char *a, const char *b) {
    char *p = oc_path_join(a, b);
    if (!p)
        oc_err(OC_ERR_NOMEM, "out of memory");
    return p;
}

/* ---- removing -------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf that never follows a symlink; 0 on success. */
static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The PID in ".base.oc-tmp.PID.RAND" after the prefix; 0 if none. */
static long tag_pid(const char *after_prefix) {
    char *end;
    long pid = strtol(after_prefix, &end, 10);
    return pid > 0 && *end == '.' ? pid : 0;
}

/* Removes the entries of parent whose names begin with prefix: all of them (any_pid), or
 * those made by a process that no longer exists. */
static void remove_stale(const char *parent, const char *prefix, int any_pid) {
    DIR *dp = opendir(parent);
    if (!dp)
        return; /* the write itself will report a folder it cannot use */
    size_t k = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (strncmp(e->d_name, prefix, k) != 0)
            continue;
        long pid = tag_pid(e->d_name + k);
        if (!any_pid && (pid == 0 || pid == (long)getpid() ||
                         kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue;
        char *p = oc_path_join(parent, e->d_name);
        if (p && remove_tree(p) != 0)
            oc_log(OC_LOG_WARN, "%s: cannot remove a stale temporary: %s", p,
                   strerror(errno));
        oc_free(p);
    }
    closedir(dp);
}

/* ---- files ---------------------------------------------------------------------- */

struct oc_out_file {
    char *shown;   /* the output's path, for errors */
    char *real;    /* where the bytes go: the temporary, or the file in a new folder */
    char *parent;  /* fsync'd after the rename; NULL when there is no rename */
    int renamed;   /* real is renamed to shown when committed */
    int fd;
    unsigned char *buf;
    size_t len;
    oc_status err; /* the first failure */
};

static void file_free(oc_out_file *f) {
    oc_free(f->shown);
    oc_free(f->real);
    oc_free(f->parent);
    oc_free(f->buf);
    oc_free(f);
}

static oc_status fail_io(oc_out_file *f, const char *what) {
    if (f->err == OC_OK)
        f->err = oc_err(OC_ERR_IO, "%s: %s: %s", f->shown, what, strerror(errno));
    return f->err;
}

/* An output file writing to real, which must not exist (O_EXCL | O_NOFOLLOW: a planted
 * symlink or another writer's file is never opened). Takes real and parent. On failure
 * *err is the open's errno (0 for others). */
static oc_status file_new(const char *shown, char *real, char *parent, int renamed,
                          oc_out_file **out, int *err) {
    *err = 0;
    oc_out_file *f = oc_calloc(1, sizeof *f);
    if (!f || !(f->shown = oc_strdup(shown)) || !(f->buf = oc_malloc(BUF_SIZE))) {
        if (f)
            file_free(f);
        oc_free(real);
        oc_free(parent);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", shown);
    }
    f->real = real;
    f->parent = parent;
    f->renamed = renamed;
    f->fd = oc_io_open(real, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        *err = errno;
        oc_status s = oc_err(OC_ERR_IO, "%s: cannot create: %s", shown, strerror(*err));
        file_free(f);
        return s;
    }
    *out = f;
    return OC_OK;
}

oc_status oc_out_open(const char *path, oc_out_file **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_out_open: NULL argument");
    char *parent, *base;
    OC_TRY(split_path(path, 0, &parent, &base));
    struct stat st;
    oc_status s = OC_OK;
    char *prefix = NULL;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        s = oc_err(OC_ERR_IO, "%s: is a folder, not a file", path);
    else if (!(prefix = sibling_prefix(base, TMP_TAG)))
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    if (s == OC_OK)
        remove_stale(parent, prefix, 0);
    oc_free(prefix);
    /* a name that exists already is someone else's: draw another */
    for (int tries = 0, err = EEXIST; s == OC_OK && err == EEXIST && tries < 100; tries++) {
        char *tmp = temp_name(parent, base), *par = oc_strdup(parent);
        if (!tmp || !par) {
            oc_free(tmp);
            oc_free(par);
            s = oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        s = file_new(path, tmp, par, 1, out, &err);
        if (s != OC_OK && err == EEXIST && tries < 99)
            s = OC_OK;
    }
    oc_free(parent);
    oc_free(base);
    return s;
}

static oc_status flush_buf(oc_out_file *f) {
    if (f->err != OC_OK)
        return f->err;
    if (f->len && oc_io_write_all(f->fd, f->buf, f->len, f->real) != 0)
        return fail_io(f, "write failed");
    f->len = 0;
    return OC_OK;
}

oc_status oc_out_write(oc_out_file *f, const void *data, size_t n) {
    if (f->err != OC_OK || n == 0)
        return f->err;
    if (f->len + n <= BUF_SIZE) {
        memcpy(f->buf + f->len, data, n);
        f->len += n;
        return OC_OK;
    }
    OC_TRY(flush_buf(f));
    if (n < BUF_SIZE) {
        memcpy(f->buf, data, n);
        f->len = n;
        return OC_OK;
    }
    if (oc_io_write_all(f->fd, data, n, f->real) != 0)
        return fail_io(f, "write failed");
    return OC_OK;
}

/* fsync of a folder, so that a rename in it survives a crash. */
static int sync_dir(const char *dir) {
    int fd = oc_io_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int r = oc_io_fsync(fd, dir);
    int e = errno;
    if (oc_io_close(fd, dir) != 0 && r == 0)
        return -1;
    errno = e;
    return r;
}

oc_status oc_out_commit(oc_out_file *f) {
    if (!f)
        return oc_err(OC_ERR_INVALID_ARG, "oc_out_commit: NULL file");
    oc_status s = flush_buf(f);
    if (s == OC_OK && oc_io_fsync(f->fd, f->real) != 0)
        s = fail_io(f, "cannot flush to disk");
    int fd = f->fd;
    f->fd = -1;
    if (oc_io_close(fd, f->real) != 0 && s == OC_OK)
        s = fail_io(f, "cannot close");
    if (s == OC_OK && f->renamed && oc_io_rename(f->real, f->shown, 0) != 0)
        s = fail_io(f, "cannot rename the new file into place");
    if (s != OC_OK) {
        unlink(f->real);
        file_free(f);
        return s;
    }
    /* in place now: a failure below means it may not survive a crash */
    if (f->renamed && sync_dir(f->parent) != 0)
        s = oc_err(OC_ERR_IO, "%s: written, but its folder %s could not be flushed to disk "
                   "(a crash may lose it): %s", f->shown, f->parent, strerror(errno));
    file_free(f);
    return s;
}

void oc_out_abort(oc_out_file *f) {
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    unlink(f->real);
    file_free(f);
}

oc_status oc_write_file_atomic(const char *path, const void *data, size_t size) {
    oc_out_file *f;
    OC_TRY(oc_out_open(path, &f));
    oc_status s = oc_out_write(f, data, size);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    return oc_out_commit(f);
}

/* ---- locks ---------------------------------------------------------------------- */

struct oc_out_lock {
    int fd;
    char *path; /* the lock file */
    char *dir;  /* the output, as given */
};

oc_status oc_make_dirs(const char *path) {
    char *d = oc_strdup(path);
    if (!d)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    oc_status s = OC_OK;
    for (char *q = d + 1;; q++) {
        if (*q != '/' && *q != 0)
            continue;
        char keep = *q;
        *q = 0;
        struct stat st;
        if (stat(d, &st) != 0 && oc_io_mkdir(d, 0755) != 0 && errno != EEXIST)
            s = oc_err(OC_ERR_IO, "%s: cannot create the folder: %s", d, strerror(errno));
        *q = keep;
        if (s != OC_OK || keep == 0)
            break;
    }
    oc_free(d);
    if (s == OC_OK && !oc_is_dir(path))
        s = oc_err(OC_ERR_IO, "%s: not a folder", path);
    return s;
}

/* Who holds the lock, from the PID its holder wrote; 0 if unknown. */
static long lock_holder(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

oc_status oc_out_lock_acquire(const char *dir, oc_out_lock **out) {
    if (!dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_out_lock_acquire: NULL argument");
    char *parent, *base;
    OC_TRY(split_path(dir, 1, &parent, &base));
    oc_status s = oc_make_dirs(parent);
    oc_out_lock *l = s == OC_OK ? oc_calloc(1, sizeof *l) : NULL;
    if (s == OC_OK && (!l || !(l->path = sibling(parent, base, LOCK_TAG, "")) ||
                       !(l->dir = oc_strdup(dir))))
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
    oc_free(parent);
    oc_free(base);
    if (l)
        l->fd = -1;
    /* A lock file removed by its last holder while we opened it is not the lock any
     * more: check that the name still leads to the file we locked. */
    for (int tries = 0; s == OC_OK; tries++) {
        int fd = oc_io_open(l->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            s = oc_err(OC_ERR_IO, "%s: cannot create the lock file %s: %s", dir, l->path,
                       strerror(errno));
            break;
        }
        if (oc_io_lock(fd, l->path) != 0) {
            int e = errno;
            long pid = e == EWOULDBLOCK ? lock_holder(fd) : 0;
            close(fd);
            if (e != EWOULDBLOCK)
                s = oc_err(OC_ERR_IO, "%s: cannot lock %s: %s", dir, l->path, strerror(e));
            else if (pid)
                s = oc_err(OC_ERR_IO, "%s is being written by process %ld", dir, pid);
            else
                s = oc_err(OC_ERR_IO, "%s is being written by another process", dir);
            break;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && lstat(l->path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            l->fd = fd;
            break;
        }
        close(fd);
        if (tries == 100)
            s = oc_err(OC_ERR_IO, "%s: the lock file %s keeps changing", dir, l->path);
    }
    if (s == OC_OK) {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(l->fd, 0) != 0 || oc_io_write_all(l->fd, pid, (size_t)n, l->path) != 0)
            s = oc_err(OC_ERR_IO, "%s: cannot write the lock file %s: %s", dir, l->path,
                       strerror(errno));
    }
    if (s != OC_OK) {
        if (l && l->fd >= 0) {
            unlink(l->path);
            close(l->fd);
        }
        if (l) {
            oc_free(l->path);
            oc_free(l->dir);
        }
        oc_free(l);
        return s;
    }
    *out = l;
    return OC_OK;
}

void oc_out_lock_release(oc_out_lock *l) {
    if (!l)
        return;
    unlink(l->path); /* while held: nobody else can be using this file */
    close(l->fd);
    oc_free(l->path);
    oc_free(l->dir);
    oc_free(l);
}

int oc_out_lock_is_for(const oc_out_lock *l, const char *dir) {
    return l && dir && strcmp(l->dir, dir) == 0;
}

/* ---- folders -------------------------------------------------------------------- */

struct oc_out_dir {
    char *final;      /* the output folder, normalised */
    char *shown;      /* as given, for errors */
    char *parent, *base;
    char *tmp;        /* the new folder while it is written */
    char **dirs;      /* tmp and the folders made in it, fsync'd before the exchange */
    size_t n_dirs, cap_dirs;
    oc_out_lock *lock;
    int own_lock;
};

static void dir_free(oc_out_dir *d) {
    if (d->own_lock)
        oc_out_lock_release(d->lock);
    for (size_t i = 0; i < d->n_dirs; i++)
        oc_free(d->dirs[i]);
    oc_free(d->dirs);
    oc_free(d->final);
    oc_free(d->shown);
    oc_free(d->parent);
    oc_free(d->base);
    oc_free(d->tmp);
    oc_free(d);
}

static oc_status push_dir(oc_out_dir *d, const char *path) {
    if (d->n_dirs == d->cap_dirs) {
        size_t cap = d->cap_dirs ? 2 * d->cap_dirs : 8;
        char **nd = oc_realloc(d->dirs, cap * sizeof *nd);
        if (!nd)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
        d->dirs = nd;
        d->cap_dirs = cap;
    }
    if (!(d->dirs[d->n_dirs] = oc_strdup(path)))
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
    d->n_dirs++;
    return OC_OK;
}

/* 1 if the current folder is path or inside it (replacing it would strand us). */
static int holds_cwd(const char *path) {
    char *rp = realpath(path, NULL), cwd[PATH_MAX];
    int r = 0;
    if (rp && getcwd(cwd, sizeof cwd)) {
        size_t n = strlen(rp);
        r = strncmp(cwd, rp, n) == 0 && (cwd[n] == 0 || cwd[n] == '/');
    }
    free(rp);
    return r;
}

/* Where renameat2 cannot exchange (some network and FUSE file systems) the old folder is
 * first renamed to ".NAME.oc-old.*": if the writer died between that and the second
 * rename, put the old folder back. */
static oc_status restore_old(oc_out_dir *d) {
    struct stat st;
    if (lstat(d->final, &st) == 0 || errno != ENOENT)
        return OC_OK;
    char *prefix = sibling_prefix(d->base, OLD_TAG);
    if (!prefix)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
    DIR *dp = opendir(d->parent);
    oc_status s = OC_OK;
    struct dirent *e;
    while (dp && s == OC_OK && (e = readdir(dp)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            char *p = oc_path_join(d->parent, e->d_name);
            if (!p)
                s = oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
            else if (oc_io_rename(p, d->final, RENAME_NOREPLACE) != 0)
                s = oc_err(OC_ERR_IO, "%s: cannot restore the previous output from %s: %s",
                           d->shown, p, strerror(errno));
            oc_free(p);
            break;
        }
    if (dp)
        closedir(dp);
    oc_free(prefix);
    return s;
}

oc_status oc_out_dir_begin(const char *dir, oc_out_lock *lock, oc_out_dir **out) {
    if (!dir || !out || !*dir)
        return oc_err(OC_ERR_INVALID_ARG, "oc_out_dir_begin: no folder");
    if (lock && !oc_out_lock_is_for(lock, dir))
        return oc_err(OC_ERR_INTERNAL, "%s: written under the lock of %s", dir, lock->dir);
    oc_out_dir *d = oc_calloc(1, sizeof *d);
    if (!d || !(d->shown = oc_strdup(dir))) {
        oc_free(d);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
    }
    oc_status s = split_path(dir, 1, &d->parent, &d->base);
    if (s == OC_OK && !(d->final = oc_path_join(d->parent, d->base)))
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
    if (s == OC_OK && lock) {
        d->lock = lock;
    } else if (s == OC_OK) {
        s = oc_out_lock_acquire(dir, &d->lock);
        d->own_lock = s == OC_OK;
    }
    struct stat st;
    if (s == OC_OK && lstat(d->final, &st) == 0) {
        if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            s = oc_err(OC_ERR_IO, "%s exists and is not a folder", dir);
        else if (S_ISDIR(st.st_mode) && holds_cwd(d->final))
            s = oc_err(OC_ERR_INVALID_ARG, "%s: cannot replace the current folder or one "
                       "that holds it; write the output elsewhere", dir);
    }
    if (s == OC_OK)
        s = restore_old(d);
    /* we hold the lock: every temporary of this output is a dead writer's */
    for (int k = 0; k < 2 && s == OC_OK; k++) {
        char *prefix = sibling_prefix(d->base, k ? OLD_TAG : TMP_TAG);
        if (!prefix)
            s = oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
        else
            remove_stale(d->parent, prefix, 1);
        oc_free(prefix);
    }
    int made = 0;
    for (int tries = 0; s == OC_OK && !made; tries++) {
        oc_free(d->tmp);
        if (!(d->tmp = temp_name(d->parent, d->base)))
            s = oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
        else if (oc_io_mkdir(d->tmp, 0755) == 0)
            made = 1;
        else if (errno != EEXIST || tries == 100)
            s = oc_err(OC_ERR_IO, "%s: cannot create a temporary folder in %s: %s", dir,
                       d->parent, strerror(errno));
    }
    if (s == OC_OK)
        s = push_dir(d, d->tmp);
    if (s != OC_OK) {
        if (made)
            remove_tree(d->tmp);
        dir_free(d);
        return s;
    }
    *out = d;
    return OC_OK;
}

/* final/name and tmp/name. */
static oc_status dir_paths(oc_out_dir *d, const char *name, char **shown, char **real) {
    *shown = oc_path_join(d->final, name);
    *real = oc_path_join(d->tmp, name);
    if (!*shown || !*real) {
        oc_free(*shown);
        oc_free(*real);
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
    }
    return OC_OK;
}

oc_status oc_out_dir_create(oc_out_dir *d, const char *name, oc_out_file **out) {
    char *shown, *real;
    OC_TRY(dir_paths(d, name, &shown, &real));
    int err;
    oc_status s = file_new(shown, real, NULL, 0, out, &err);
    oc_free(shown);
    return s;
}

oc_status oc_out_dir_write(oc_out_dir *d, const char *name, const void *data, size_t n) {
    oc_out_file *f;
    OC_TRY(oc_out_dir_create(d, name, &f));
    oc_status s = oc_out_write(f, data, n);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    return oc_out_commit(f);
}

oc_status oc_out_dir_mkdir(oc_out_dir *d, const char *name) {
    char *shown, *real;
    OC_TRY(dir_paths(d, name, &shown, &real));
    oc_status s = OC_OK;
    if (oc_io_mkdir(real, 0755) != 0)
        s = oc_err(OC_ERR_IO, "%s: cannot create the folder: %s", shown, strerror(errno));
    if (s == OC_OK)
        s = push_dir(d, real);
    oc_free(shown);
    oc_free(real);
    return s;
}

/* Copies a regular file (carry-over where hard links are refused). */
static oc_status copy_file(const char *from, const char *to) {
    int in = oc_io_open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (in < 0)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", from, strerror(errno));
    oc_out_file *f = NULL;
    char *real = oc_strdup(to);
    int err;
    oc_status s = real ? file_new(to, real, NULL, 0, &f, &err)
                       : oc_err(OC_ERR_NOMEM, "%s: out of memory", to);
    static unsigned char buf[1 << 16];
    while (s == OC_OK) {
        ssize_t n = oc_io_read(in, buf, sizeof buf, from);
        if (n < 0)
            s = oc_err(OC_ERR_IO, "%s: read error: %s", from, strerror(errno));
        if (n <= 0)
            break;
        s = oc_out_write(f, buf, (size_t)n);
    }
    close(in);
    if (s != OC_OK) {
        oc_out_abort(f);
        return s;
    }
    return oc_out_commit(f);
}

/* Puts every entry of from that to lacks into to: folders made anew, everything else hard
 * linked (regular files copied where links are refused). */
static oc_status carry_over(oc_out_dir *d, const char *from, const char *to, int top) {
    DIR *dp = opendir(from);
    if (!dp)
        return oc_err(OC_ERR_IO, "%s: cannot read the folder: %s", from, strerror(errno));
    oc_status s = OC_OK;
    struct dirent *e;
    errno = 0;
    while (s == OC_OK && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *src = join(from, e->d_name), *dst = join(to, e->d_name);
        struct stat st, dt;
        if (!src || !dst)
            s = OC_ERR_NOMEM;
        else if (lstat(dst, &dt) == 0 && top)
            ; /* the new output has it */
        else if (lstat(src, &st) != 0)
            s = oc_err(OC_ERR_IO, "%s: cannot read: %s", src, strerror(errno));
        else if (S_ISDIR(st.st_mode)) {
            if (oc_io_mkdir(dst, st.st_mode & 07777) != 0)
                s = oc_err(OC_ERR_IO, "%s: cannot create the folder: %s", dst, strerror(errno));
            if (s == OC_OK)
                s = push_dir(d, dst);
            if (s == OC_OK)
                s = carry_over(d, src, dst, 0);
        } else if (oc_io_link(src, dst) != 0) {
            if (S_ISREG(st.st_mode) && (errno == EXDEV || errno == EPERM || errno == EMLINK ||
                                        errno == ENOTSUP))
                s = copy_file(src, dst);
            else
                s = oc_err(OC_ERR_IO, "%s: cannot keep it in the new %s: %s", src, d->shown,
                           strerror(errno));
        }
        oc_free(src);
        oc_free(dst);
        errno = 0;
    }
    if (s == OC_OK && errno)
        s = oc_err(OC_ERR_IO, "%s: cannot read the folder: %s", from, strerror(errno));
    closedir(dp);
    return s;
}

/* Puts tmp in final's place; *old: where the previous folder now is (NULL: none). */
static oc_status swap_in(oc_out_dir *d, char **old) {
    *old = NULL;
    struct stat st;
    if (lstat(d->final, &st) != 0) {
        if (oc_io_rename(d->tmp, d->final, RENAME_NOREPLACE) == 0)
            return OC_OK;
        if (errno == EINVAL && oc_io_rename(d->tmp, d->final, 0) == 0)
            return OC_OK;
        return oc_err(OC_ERR_IO, "%s: cannot rename the new folder into place: %s", d->shown,
                      strerror(errno));
    }
    if (oc_io_rename(d->tmp, d->final, RENAME_EXCHANGE) == 0) {
        *old = d->tmp;
        d->tmp = NULL;
        return OC_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return oc_err(OC_ERR_IO, "%s: cannot put the new folder in place: %s", d->shown,
                      strerror(errno));
    /* no exchange here: two renames, undone by restore_old if we die between them */
    char tag[11], rest[40];
    random_tag(tag);
    snprintf(rest, sizeof rest, "%ld.%s", (long)getpid(), tag);
    char *o = sibling(d->parent, d->base, OLD_TAG, rest);
    if (!o)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", d->shown);
    if (oc_io_rename(d->final, o, 0) != 0) {
        oc_status s = oc_err(OC_ERR_IO, "%s: cannot move the old folder aside: %s", d->shown,
                             strerror(errno));
        oc_free(o);
        return s;
    }
    if (oc_io_rename(d->tmp, d->final, 0) != 0) {
        oc_status s = oc_err(OC_ERR_IO, "%s: cannot rename the new folder into place: %s",
                             d->shown, strerror(errno));
        if (rename(o, d->final) != 0)
            oc_log(OC_LOG_WARN, "%s: the previous output is in %s", d->shown, o);
        oc_free(o);
        return s;
    }
    *old = o;
    return OC_OK;
}

oc_status oc_out_dir_commit(oc_out_dir *d) {
    if (!d)
        return oc_err(OC_ERR_INVALID_ARG, "oc_out_dir_commit: NULL folder");
    struct stat st;
    oc_status s = OC_OK;
    if (lstat(d->final, &st) == 0 && S_ISDIR(st.st_mode))
        s = carry_over(d, d->final, d->tmp, 1);
    for (size_t i = 0; i < d->n_dirs && s == OC_OK; i++)
        if (sync_dir(d->dirs[i]) != 0)
            s = oc_err(OC_ERR_IO, "%s: cannot flush the new folder to disk: %s", d->shown,
                       strerror(errno));
    char *old = NULL;
    if (s == OC_OK)
        s = swap_in(d, &old);
    if (s != OC_OK) {
        if (d->tmp)
            remove_tree(d->tmp);
        dir_free(d);
        return s;
    }
    if (sync_dir(d->parent) != 0)
        s = oc_err(OC_ERR_IO, "%s: written, but its folder %s could not be flushed to disk "
                   "(a crash may bring back the previous one): %s", d->shown, d->parent,
                   strerror(errno));
    /* what is left of the old folder is a stale temporary for the next writer if this
     * fails */
    if (old && remove_tree(old) != 0)
        oc_log(OC_LOG_WARN, "%s: cannot remove the previous output %s: %s", d->shown, old,
               strerror(errno));
    oc_free(old);
    dir_free(d);
    return s;
}

void oc_out_dir_abort(oc_out_dir *d) {
    if (!d)
        return;
    if (d->tmp)
        remove_tree(d->tmp);
    dir_free(d);
}
