#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocellus.h"

static char dir[256];

static void remove_dir(void) {
    if (!dir[0])
        return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *fz_dir(void) {
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/oc-fuzz-XXXXXX", base);
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

const char *fz_path(int slot, const char *name) {
    static char buf[4][512];
    snprintf(buf[slot & 3], sizeof buf[0], "%s/%s", fz_dir(), name);
    return buf[slot & 3];
}

void fz_write(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n) || fclose(fp) != 0) {
        perror(path);
        abort();
    }
}

void fz_unlink(const char *path) { unlink(path); }

void fz_copy(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) {
        perror(from);
        abort();
    }
    FILE *out = fopen(to, "wb");
    if (!out) {
        perror(to);
        abort();
    }
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k)
            abort();
    fclose(in);
    if (fclose(out) != 0)
        abort();
}

const char *fz_data(int slot, const char *rel) {
    static char buf[4][4096];
    snprintf(buf[slot & 3], sizeof buf[0], "%s/%s", OC_TEST_DATA, rel);
    return buf[slot & 3];
}

char *fz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = 0;
    return s;
}

void fz_check_error(int status, const char *what) {
    if (status == OC_OK)
        return;
    const char *e = oc_last_error();
    if (!e || !e[0]) {
        fprintf(stderr, "%s failed with %s but left no error sentence\n", what,
                oc_status_str((oc_status)status));
        abort();
    }
    if (status == OC_ERR_INTERNAL) {
        fprintf(stderr, "%s: internal error on hostile input: %s\n", what, e);
        abort();
    }
}
