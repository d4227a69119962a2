/* The HTTP side of the OpenAI-compatible server, on libmicrohttpd with a thread per
 * connection: routing, the API key, body limits, one log line per request, and the
 * graceful stop. A chat completion becomes a job (jobs.c); its connection thread waits for
 * the job (watching for a client that leaves) and sends the JSON, or streams the job's
 * server-sent events as chunked transfer. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "server_internal.h"

#define POLL_MS 200 /* how often a waiting connection checks that its client is still there */

oc_server_params oc_server_default_params(void) {
    oc_server_params p = {
        .host = "127.0.0.1",
        .port = 8080,
        .parallel = 1,
        .queue = 64,
        .max_body_bytes = 32u << 20,
        .image_cache_bytes = 256u << 20,
        .max_connections = 256,
    };
    return p;
}

/* State of one request on a connection, from its first byte to its completion. */
typedef struct {
    double t0;
    char method[8];
    char url[128];
    oc_strbuf body;
    int too_big;
    int status;
    srv_job *job;            /* a chat completion's job */
} conn_state;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void srv_log(const struct oc_server *s, const char *fmt, ...) {
    if (!s->p.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->p.log(line, s->p.log_user_data);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const struct oc_server *s = cls;
    if (!s->p.log)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    s->p.log(line, s->p.log_user_data);
}

static enum MHD_Result send_json(struct MHD_Connection *c, conn_state *cs, int status,
                                 char *json) {
    if (!json)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_COPY);
    free(json);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    cs->status = status;
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, conn_state *cs,
                                  const srv_error *e) {
    return send_json(c, cs, e->status, srv_error_json(e));
}

static enum MHD_Result fail(struct MHD_Connection *c, conn_state *cs, int status,
                            const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result fail(struct MHD_Connection *c, conn_state *cs, int status,
                            const char *type, const char *code, const char *fmt, ...) {
    srv_error e = {.status = status, .type = type, .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return send_error(c, cs, &e);
}

/* 1 when the peer closed its side (a client that left while its request waits). */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Waits (under j->mu) until cond holds or the client leaves; 0 when it left. */
static int wait_job(struct MHD_Connection *c, srv_job *j, int for_start) {
    while (j->state != JOB_DONE && !(for_start && j->started)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->changed, &j->mu, &ts);
        if (j->state != JOB_DONE && client_gone(c)) {
            j->cancelled = 1;
            return 0;
        }
    }
    return 1;
}

/* The stream's body: the job's events as they come. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    while (j->out_sent == j->out.len && j->state != JOB_DONE && !j->cancelled)
        pthread_cond_wait(&j->changed, &j->mu);
    ssize_t n;
    if (j->out_sent < j->out.len) {
        size_t k = j->out.len - j->out_sent < max ? j->out.len - j->out_sent : max;
        memcpy(buf, j->out.data + j->out_sent, k);
        j->out_sent += k;
        n = (ssize_t)k;
    } else {
        n = j->cancelled ? MHD_CONTENT_READER_END_WITH_ERROR
                         : MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* MHD is done with the stream: finished, or the client left (then the job stops). */
static void stream_free(void *cls) {
    srv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    if (j->state != JOB_DONE)
        j->cancelled = 1;
    pthread_cond_broadcast(&j->changed);
    pthread_mutex_unlock(&j->mu);
    srv_job_unref(j);
}

static enum MHD_Result chat_completion(struct oc_server *s, struct MHD_Connection *c,
                                       conn_state *cs) {
    srv_request req;
    srv_error err;
    if (srv_request_parse(cs->body.data ? cs->body.data : "", cs->body.len, &s->lim, &req,
                          &err))
        return send_error(c, cs, &err);
    srv_job *j = srv_job_new(s, &req);
    if (!j) {
        srv_request_free(&req);
        return fail(c, cs, 503, "server_error", NULL, "out of memory");
    }
    cs->job = j;
    if (srv_job_enqueue(s, j))
        return fail(c, cs, 503, "server_error", "server_overloaded",
                    "the server is busy (%u sessions working, %u requests waiting); try "
                    "again later", s->p.parallel, s->p.queue);
    pthread_mutex_lock(&j->mu);
    int stream = j->req.stream;
    int here = wait_job(c, j, stream);
    int ok = j->ok, started = j->started;
    srv_error jerr = j->err;
    pthread_mutex_unlock(&j->mu);
    if (!here) {
        cs->status = 499; /* nginx's "client closed request", for the log */
        return MHD_NO;
    }
    if (stream && started) {
        srv_job_ref(j);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
        if (!r) {
            srv_job_unref(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result res = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        cs->status = 200;
        return res;
    }
    if (!ok)
        return send_error(c, cs, &jerr);
    pthread_mutex_lock(&j->mu);
    char *json = srv_completion_json(&j->ident, &j->reply);
    pthread_mutex_unlock(&j->mu);
    return send_json(c, cs, 200, json);
}

/* Constant-time comparison of the presented key with the server's. */
static int key_ok(const struct oc_server *s, struct MHD_Connection *c) {
    if (!s->api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *k = h + 7;
    size_t n = strlen(k), m = strlen(s->api_key);
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)k[i] ^ (unsigned char)s->api_key[i < m ? i : 0];
    return diff == 0;
}

static int route_known(const char *url) {
    return !strcmp(url, "/health") || !strcmp(url, "/v1/models") ||
           !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/v1/chat/completions");
}

/* Dispatches a complete request. */
static enum MHD_Result dispatch(struct oc_server *s, struct MHD_Connection *c, conn_state *cs,
                                const char *url, const char *method) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!route_known(url))
        return fail(c, cs, 404, "invalid_request_error", "unknown_url",
                    "Unknown request URL: %.8s %.200s (this server has POST "
                    "/v1/chat/completions, GET /v1/models, GET /health)", method, url);
    if (!strcmp(url, "/health")) {
        if (!get)
            return fail(c, cs, 405, "invalid_request_error", "method_not_allowed",
                        "%.8s %s: use GET", method, url);
        pthread_mutex_lock(&s->mu);
        char body[160];
        snprintf(body, sizeof body, "{\"status\":\"ok\",\"slots_idle\":%u,"
                 "\"slots_processing\":%u,\"requests_waiting\":%u}",
                 s->n_workers - s->running, s->running, s->waiting);
        pthread_mutex_unlock(&s->mu);
        return send_json(c, cs, 200, strdup(body));
    }
    if (!key_ok(s, c))
        return fail(c, cs, 401, "invalid_request_error", "invalid_api_key",
                    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")
                        ? "Incorrect API key provided"
                        : "You didn't provide an API key (Authorization: Bearer KEY)");
    if (!strncmp(url, "/v1/models", 10)) {
        if (!get)
            return fail(c, cs, 405, "invalid_request_error", "method_not_allowed",
                        "%.8s %s: use GET", method, url);
        if (url[10] == 0)
            return send_json(c, cs, 200, srv_models_json(s->model_id, s->created, 1));
        if (strcmp(url + 11, s->model_id))
            return fail(c, cs, 404, "invalid_request_error", "model_not_found",
                        "The model '%.100s' does not exist (this server has '%s')", url + 11,
                        s->model_id);
        return send_json(c, cs, 200, srv_models_json(s->model_id, s->created, 0));
    }
    if (strcmp(method, "POST"))
        return fail(c, cs, 405, "invalid_request_error", "method_not_allowed",
                    "%.8s %s: use POST", method, url);
    if (cs->too_big)
        return fail(c, cs, 413, "invalid_request_error", "request_too_large",
                    "the request body is over the limit of %llu bytes (--max-body-mb)",
                    (unsigned long long)s->p.max_body_bytes);
    return chat_completion(s, c, cs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    struct oc_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        if (!(cs = oc_calloc(1, sizeof *cs)))
            return MHD_NO;
        cs->t0 = now_ms();
        snprintf(cs->method, sizeof cs->method, "%s", method);
        snprintf(cs->url, sizeof cs->url, "%s", url);
        *con_cls = cs;
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        /* a body announced over the limit is refused before it is sent (Expect:
         * 100-continue) or read; one sent anyway is drained and refused at its end */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body_bytes) {
            cs->too_big = 1;
            if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect"))
                return dispatch(s, c, cs, url, method);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cs->too_big && cs->body.len + *upload_size > s->p.max_body_bytes) {
            cs->too_big = 1;
            oc_sb_free(&cs->body);
        }
        if (!cs->too_big)
            oc_sb_putn(&cs->body, upload, *upload_size);
        if (cs->body.failed)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->status) /* already answered (a refused body) */
        return MHD_YES;
    return dispatch(s, c, cs, url, method);
}

/* The end of a request: its log line. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    (void)c;
    struct oc_server *s = cls;
    conn_state *cs = *con_cls;
    if (!cs)
        return;
    *con_cls = NULL;
    double ms = now_ms() - cs->t0;
    char extra[256] = "";
    if (cs->job) {
        srv_job *j = cs->job;
        pthread_mutex_lock(&j->mu);
        if (j->ok)
            snprintf(extra, sizeof extra, " tokens %u+%u (cached %u) images %u (cached %u) %s%s",
                     j->reply.prompt_tokens, j->reply.completion_tokens,
                     j->reply.cached_tokens, j->images, j->images_cached,
                     j->req.stream ? "stream " : "",
                     oc_finish_reason_str(j->reply.finish));
        else if (j->state == JOB_DONE && j->err.message[0])
            snprintf(extra, sizeof extra, " (%.200s)", j->err.message);
        if (j->state != JOB_DONE) { /* the client left: the job stops at its next token */
            j->cancelled = 1;
            pthread_cond_broadcast(&j->changed);
            strncat(extra, " client left mid-stream", sizeof extra - strlen(extra) - 1);
        }
        pthread_mutex_unlock(&j->mu);
        srv_job_unref(j);
    }
    srv_log(s, "%s %s %d%s %.1f ms%s", cs->method, cs->url, cs->status ? cs->status : 500,
               extra, ms, why == MHD_REQUEST_TERMINATED_COMPLETED_OK || cs->status == 499
                              ? "" : " (connection closed)");
    oc_sb_free(&cs->body);
    oc_free(cs);
    pthread_mutex_lock(&s->mu);
    if (--s->in_flight == 0)
        pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->mu);
}

/* The listening address: host (a name or a numeric IPv4/IPv6 address) and port. */
static oc_status resolve(const struct oc_server *s, struct sockaddr_storage *ss, int *v6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", s->p.port);
    int rc = getaddrinfo(s->host, port, &hints, &res);
    if (rc != 0 || !res)
        return oc_err(OC_ERR_INVALID_ARG, "cannot listen on '%s': %s", s->host,
                      rc ? gai_strerror(rc) : "no address");
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return OC_OK;
}

static char *dup_or_null(const char *s) { return s ? oc_strdup(s) : NULL; }

/* The model's name in responses: the last component of its folder. */
static char *model_name(const oc_model *m) {
    const char *dir = m->dir ? m->dir : "model";
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    return oc_strndup(dir + b, n - b);
}

static oc_status check_params(const oc_server_params *p) {
    if (!p->host || !p->host[0])
        return oc_err(OC_ERR_INVALID_ARG, "no host to listen on");
    if (p->parallel < 1 || p->parallel > 1024)
        return oc_err(OC_ERR_INVALID_ARG, "parallel is %u; it must be 1 to 1024", p->parallel);
    if (p->max_body_bytes < 1024)
        return oc_err(OC_ERR_INVALID_ARG, "max_body_bytes is %llu; it must be at least 1024",
                      (unsigned long long)p->max_body_bytes);
    if (p->max_connections < 1)
        return oc_err(OC_ERR_INVALID_ARG, "max_connections must be at least 1");
    if (p->api_key && !p->api_key[0])
        return oc_err(OC_ERR_INVALID_ARG, "the API key is empty");
    return OC_OK;
}

static oc_status setup(struct oc_server *s, const oc_model *m, const oc_server_params *p) {
    s->m = m;
    s->p = *p;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->drained, NULL);
    s->host = dup_or_null(p->host);
    s->api_key = dup_or_null(p->api_key);
    s->model_id = p->model_id ? oc_strdup(p->model_id) : model_name(m);
    if (!s->host || (p->api_key && !s->api_key) || !s->model_id)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    if (p->allow_dir) {
        char real[PATH_MAX];
        if (!realpath(p->allow_dir, real))
            return oc_err(OC_ERR_IO, "--allow-dir %s: %s", p->allow_dir, strerror(errno));
        if (!(s->allow_dir = oc_strdup(real)))
            return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    s->lim.max_images = p->max_images && p->max_images < m->params.max_images
                            ? p->max_images : m->params.max_images;
    uint32_t ctx = m->context;
    s->lim.max_tokens = p->max_tokens && p->max_tokens < ctx ? p->max_tokens : ctx;
    s->created = (long long)time(NULL);
    OC_TRY(oc_image_cache_new(m, p->image_cache_bytes, &s->cache));
    if (pipe2(s->stop_pipe, O_CLOEXEC) != 0)
        return oc_err(OC_ERR_IO, "pipe: %s", strerror(errno));
    return srv_workers_start(s);
}

oc_status oc_server_start(const oc_model *m, const oc_server_params *params, oc_server **out) {
    if (!m || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_server_start: NULL argument");
    oc_server_params p = params ? *params : oc_server_default_params();
    OC_TRY(check_params(&p));
    struct oc_server *s = oc_calloc(1, sizeof *s);
    if (!s)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status st = setup(s, m, &p);
    struct sockaddr_storage ss;
    int v6 = 0;
    if (st == OC_OK)
        st = resolve(s, &ss, &v6);
    if (st == OC_OK) {
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
        s->d = MHD_start_daemon(flags, p.port, NULL, NULL, on_request, s,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)p.max_connections,
                                MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                                MHD_OPTION_END);
        if (!s->d)
            st = oc_err(OC_ERR_IO, "cannot listen on %s port %u (in use, or not an address "
                        "of this machine)", p.host, p.port);
    }
    if (st != OC_OK) {
        oc_server_free(s);
        return st;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p.port;
    *out = s;
    return OC_OK;
}

uint16_t oc_server_port(const oc_server *s) { return s ? s->port : 0; }

void oc_server_stop(oc_server *s) {
    if (!s || atomic_exchange(&s->stop_asked, 1))
        return;
    char b = 1;
    ssize_t w = write(s->stop_pipe[1], &b, 1); /* async-signal-safe */
    (void)w;
}

void oc_server_wait(oc_server *s) {
    if (!s || s->waited)
        return;
    char b;
    while (read(s->stop_pipe[0], &b, 1) < 0 && errno == EINTR)
        ;
    s->waited = 1;
    if (!s->d)
        return;
    /* no new connections; the requests under way finish, then the daemon stops */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    srv_log(s, "stopping: finishing the requests under way");
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        pthread_cond_wait(&s->drained, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
    s->d = NULL;
}

void oc_server_free(oc_server *s) {
    if (!s)
        return;
    if (s->d) {
        oc_server_stop(s);
        oc_server_wait(s);
    }
    if (s->workers)
        srv_workers_stop(s);
    oc_image_cache_free(s->cache);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->drained);
    oc_free(s->host);
    oc_free(s->api_key);
    oc_free(s->allow_dir);
    oc_free(s->model_id);
    oc_free(s);
}
