/* The server's request parser: a /v1/chat/completions JSON body (messages, roles, content
 * parts, sampling fields), then every image URL it names resolved as the server does
 * (base64 data: URLs; file:// URLs confined to an allowed folder), the bytes decoded as an
 * image with small limits, and the response bodies written (errors, completion, chunks).
 * Input: the body; "@DIR@" in it stands for the allowed folder, which holds inside.png,
 * sub/inside.png and symlinks that lead out of it (escape.png, up -> ..). A finding: a
 * crash, a sanitizer report, an error without a message or with a status other than 400 /
 * 413 / 500, or a file URL that yields any bytes but inside.png's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "fuzz_util.h"
#include "ocellus.h"
#include "request.h"
#include "response.h"

static char allow[512], real_allow[4096];
static unsigned char *inside;
static size_t inside_n;

static void setup(void) {
    if (allow[0])
        return;
    snprintf(allow, sizeof allow, "%s/allow", fz_dir());
    if (mkdir(allow, 0700) != 0 && access(allow, F_OK) != 0)
        abort();
    char p[600];
    snprintf(p, sizeof p, "%s/sub", allow);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/inside.png", allow);
    fz_copy(fz_data(0, "images/tiny_17x9.png"), p);
    snprintf(p, sizeof p, "%s/sub/inside.png", allow);
    fz_copy(fz_data(0, "images/tiny_17x9.png"), p);
    fz_copy(fz_data(0, "images/shapes_200x130.png"), fz_path(0, "outside.png"));
    snprintf(p, sizeof p, "%s/escape.png", allow);
    if (symlink(fz_path(0, "outside.png"), p) != 0)
        abort();
    snprintf(p, sizeof p, "%s/up", allow);
    if (symlink("..", p) != 0)
        abort();
    if (!realpath(allow, real_allow))
        abort();
    FILE *f = fopen(fz_data(0, "images/tiny_17x9.png"), "rb");
    if (!f)
        abort();
    inside = malloc(1 << 16);
    inside_n = fread(inside, 1, 1 << 16, f);
    fclose(f);
}

/* data with every "@DIR@" replaced by the allowed folder. */
static char *expand(const uint8_t *data, size_t n, size_t *out_n) {
    size_t dl = strlen(real_allow), cap = n + 1, k = 0;
    for (size_t i = 0; i + 5 <= n; i++)
        if (!memcmp(data + i, "@DIR@", 5))
            cap += dl;
    char *s = malloc(cap);
    if (!s)
        abort();
    for (size_t i = 0; i < n;) {
        if (i + 5 <= n && !memcmp(data + i, "@DIR@", 5)) {
            memcpy(s + k, real_allow, dl);
            k += dl;
            i += 5;
        } else {
            s[k++] = (char)data[i++];
        }
    }
    s[k] = 0;
    *out_n = k;
    return s;
}

static void check_error(const srv_error *e) {
    if (!e->message[0] || (e->status != 400 && e->status != 413 && e->status != 500))
        abort();
    char *js = srv_error_json(e);
    if (!js)
        abort();
    free(js);
}

static void resolve_images(const srv_request *r) {
    oc_image_limits lim = {.max_pixels = 1 << 16, .max_side = 1024, .max_file_bytes = 1 << 20};
    for (size_t k = 0; k < r->n_msgs; k++)
        for (size_t i = 0; i < r->msgs[k].n_parts; i++) {
            const srv_part *p = &r->msgs[k].parts[i];
            if (!p->url)
                continue;
            unsigned char *bytes = NULL;
            size_t n = 0;
            srv_error e = {0};
            if (srv_image_bytes(p->url, real_allow, 1 << 20, &bytes, &n, &e)) {
                check_error(&e);
                continue;
            }
            if (!strncmp(p->url, "file:", 5) && (n != inside_n || memcmp(bytes, inside, n)))
                abort(); /* read something that is not inside.png: outside the folder */
            oc_image *img = NULL;
            oc_status st = oc_image_load_memory(bytes, n, "fuzz", &lim, &img);
            fz_check_error(st, "oc_image_load_memory");
            oc_image_free(img);
            oc_free(bytes);
        }
}

static void write_responses(const srv_request *r) {
    srv_ident id = {"chatcmpl-fuzz", 1, r->model ? r->model : "m"};
    oc_reply rep = {.prompt_tokens = 3, .completion_tokens = 1};
    for (size_t k = 0; k < r->n_msgs; k++)
        for (size_t i = 0; i < r->msgs[k].n_parts; i++) {
            const char *t = r->msgs[k].parts[i].text;
            if (!t)
                continue;
            rep.text = (char *)t;
            char *a = srv_completion_json(&id, &rep);
            char *b = srv_chunk_event(&id, "assistant", t, NULL, NULL, 1);
            if (!a || !b)
                abort();
            free(a);
            free(b);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    size_t n;
    char *body = expand(data, size, &n);
    srv_limits lim = {.max_images = 4, .max_tokens = 64};
    srv_request r;
    srv_error e = {0};
    if (srv_request_parse(body, n, &lim, &r, &e) == 0) {
        if (r.n_images > lim.max_images || r.max_tokens > lim.max_tokens || r.n_stop > SRV_MAX_STOP)
            abort();
        resolve_images(&r);
        write_responses(&r);
        srv_request_free(&r);
    } else {
        check_error(&e);
    }
    free(body);
    return 0;
}
