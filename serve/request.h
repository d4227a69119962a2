/* A /v1/chat/completions request body, parsed and checked (OpenAI's semantics), and the
 * image bytes its URLs name. Errors carry the HTTP status and OpenAI's error fields. */
#ifndef OC_SERVE_REQUEST_H
#define OC_SERVE_REQUEST_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ocellus.h"

#define SRV_MAX_STOP 4 /* OpenAI's limit on stop strings */

/* An OpenAI error: {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct {
    int status;            /* 400, 401, 404, 413, 500, 503 ... */
    const char *type;      /* "invalid_request_error", "server_error", ... */
    const char *param;     /* the offending field, or NULL */
    const char *code;      /* "context_length_exceeded", ... or NULL */
    char message[512];
} srv_error;

/* Sets *e and returns -1. */
int srv_fail(srv_error *e, int status, const char *type, const char *param, const char *code,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

typedef struct {
    const char *text;      /* a text part, or NULL for an image part; borrowed from json */
    const char *url;       /* image part: image_url.url */
} srv_part;

typedef struct {
    oc_role role;
    srv_part *parts;
    size_t n_parts;
} srv_message;

typedef struct {
    uint32_t max_images;   /* per request */
    uint32_t max_tokens;   /* the largest max_tokens accepted */
} srv_limits;

typedef struct {
    cJSON *json;           /* owns every string below */
    srv_message *msgs;
    size_t n_msgs, n_images;
    const char *model;     /* as asked, or NULL */
    uint32_t max_tokens;   /* 0: not given */
    float temperature, top_p, repetition_penalty;
    uint32_t top_k;
    int has_seed;
    uint64_t seed;
    const char *stop[SRV_MAX_STOP];
    size_t n_stop;
    int stream, include_usage;
    int ignore_eos;        /* llama.cpp's extension: generate max_tokens */
} srv_request;

/* Parses body (len bytes, not NUL-terminated). 0 on success (free *out with
 * srv_request_free), -1 with *err (status 400) otherwise. */
int srv_request_parse(const char *body, size_t len, const srv_limits *lim, srv_request *out,
                      srv_error *err);
void srv_request_free(srv_request *r);

/* The bytes of an image URL: a base64 data: URL ("data:image/png;base64,..."), or a
 * file:// URL whose real path lies inside allow_dir (NULL: file URLs refused). Remote URLs
 * are refused. At most max_bytes. 0 and *data (free with oc_free), or -1 with *err. */
int srv_image_bytes(const char *url, const char *allow_dir, size_t max_bytes,
                    unsigned char **data, size_t *size, srv_error *err);

/* Decodes standard base64 (padding optional at the end, white space ignored) with
 * nettle. 0 and *out (free with oc_free), or -1 when the text is not base64 or the result
 * would exceed max_bytes (*too_big = 1). */
int srv_base64_decode(const char *text, size_t len, size_t max_bytes, unsigned char **out,
                      size_t *n, int *too_big);
#endif
