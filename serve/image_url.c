/* The bytes behind an image URL: base64 data: URLs (decoded by nettle), and file:// URLs
 * confined to --allow-dir: the real path (symlinks resolved) must lie beneath the real
 * allowed folder, the file is opened without following a last symlink, and the opened
 * descriptor's own path is checked again, so that a path swapped after the check cannot
 * lead outside. The server never fetches remote URLs. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/base64.h>

#include "alloc.h"
#include "request.h"

#define BAD(...) srv_fail(err, 400, "invalid_request_error", "messages", NULL, __VA_ARGS__)

int srv_base64_decode(const char *text, size_t len, size_t max_bytes, unsigned char **out,
                      size_t *n, int *too_big) {
    *too_big = 0;
    size_t cap = BASE64_DECODE_LENGTH(len);
    /* white space makes the text longer than its data; the data's length bounds the
     * output, so only text that could hold more than max_bytes is refused early */
    size_t data_chars = 0;
    for (size_t i = 0; i < len; i++)
        data_chars += !isspace((unsigned char)text[i]);
    if (data_chars / 4 * 3 > max_bytes + 2) {
        *too_big = 1;
        return -1;
    }
    unsigned char *buf = oc_malloc(cap ? cap : 1);
    if (!buf)
        return -1;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    size_t got = cap;
    if (!base64_decode_update(&ctx, &got, buf, len, text) || !base64_decode_final(&ctx)) {
        oc_free(buf);
        return -1;
    }
    if (got > max_bytes) {
        oc_free(buf);
        *too_big = 1;
        return -1;
    }
    *out = buf;
    *n = got;
    return 0;
}

static int data_url(const char *url, size_t max_bytes, unsigned char **data, size_t *size,
                    srv_error *err) {
    const char *comma = strchr(url, ',');
    if (!comma)
        return BAD("a data: URL needs a comma before its data");
    const char *meta = url + 5, *semi = memchr(meta, ';', (size_t)(comma - meta));
    size_t type_len = (size_t)((semi ? semi : comma) - meta);
    if (type_len < 6 || strncasecmp(meta, "image/", 6) != 0)
        return BAD("the data: URL's media type '%.*s' is not an image (data:image/png;base64,"
                   "...)", (int)(type_len < 60 ? type_len : 60), meta);
    if (comma - meta < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return BAD("only base64 data: URLs are accepted (data:image/png;base64,...)");
    int too_big = 0;
    const char *b64 = comma + 1;
    if (srv_base64_decode(b64, strlen(b64), max_bytes, data, size, &too_big)) {
        if (too_big)
            return srv_fail(err, 413, "invalid_request_error", "messages", NULL,
                            "an image is over the limit of %zu bytes", max_bytes);
        return BAD("the data: URL's data is not valid base64");
    }
    return 0;
}

static int hex(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The path of a file:// URL, percent-decoded, or NULL (not absolute, %00, bad escape). */
static char *file_path(const char *url) {
    const char *p = url + 7;
    if (!strncasecmp(p, "localhost/", 10))
        p += 9;
    if (*p != '/')
        return NULL;
    size_t n = strlen(p);
    char *out = oc_malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        int h = hex(p[1]), l = h < 0 ? -1 : hex(p[2]);
        if (l < 0 || (h == 0 && l == 0)) {
            oc_free(out);
            return NULL;
        }
        *o++ = (char)(h * 16 + l);
        p += 2;
    }
    *o = 0;
    return out;
}

/* 1 when path is dir itself or beneath it (both real paths). */
static int beneath(const char *path, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

static int read_fd(int fd, size_t size, unsigned char **data) {
    unsigned char *buf = oc_malloc(size ? size : 1);
    if (!buf)
        return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != size) {
        oc_free(buf);
        return -1;
    }
    *data = buf;
    return 0;
}

static int file_url(const char *url, const char *allow_dir, size_t max_bytes,
                    unsigned char **data, size_t *size, srv_error *err) {
    if (!allow_dir)
        return BAD("file:// image URLs are off; start the server with --allow-dir DIR");
    char *path = file_path(url);
    if (!path)
        return BAD("'%.200s' is not an absolute file:// URL", url);
    /* one message for every refusal, so that errors reveal nothing outside the folder */
    char real[PATH_MAX], opened[PATH_MAX], link[64];
    int fd = -1, ok = realpath(path, real) && beneath(real, allow_dir);
    if (ok)
        fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (ok) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, opened, sizeof opened - 1);
        ok = k > 0;
        if (ok) {
            opened[k] = 0;
            ok = beneath(opened, allow_dir);
        }
    }
    int rc = 0;
    if (!ok) {
        rc = BAD("%.300s is not a readable file inside --allow-dir", path);
    } else if ((uint64_t)st.st_size > max_bytes) {
        rc = srv_fail(err, 413, "invalid_request_error", "messages", NULL,
                      "%.300s is %lld bytes; the limit is %zu", path, (long long)st.st_size,
                      max_bytes);
    } else if (read_fd(fd, (size_t)st.st_size, data)) {
        rc = BAD("%.300s could not be read", path);
    } else {
        *size = (size_t)st.st_size;
    }
    if (fd >= 0)
        close(fd);
    oc_free(path);
    return rc;
}

int srv_image_bytes(const char *url, const char *allow_dir, size_t max_bytes,
                    unsigned char **data, size_t *size, srv_error *err) {
    if (!strncasecmp(url, "data:", 5))
        return data_url(url, max_bytes, data, size, err);
    if (!strncasecmp(url, "file://", 7))
        return file_url(url, allow_dir, max_bytes, data, size, err);
    if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8))
        return BAD("remote image URLs are not fetched by this server; send the image as a "
                   "data: URL (data:image/png;base64,...)");
    return BAD("unsupported image URL '%.60s' (data:image/...;base64,... or file://...)", url);
}
