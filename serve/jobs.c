/* The worker pool: --parallel threads, each with its own session (KV cache) over the one
 * model, take chat completion jobs in arrival order. A job's images come from the shared
 * encoded-image cache; a streaming job appends server-sent events for its connection to
 * send; a job whose client went away is stopped at its next token. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "server_internal.h"

srv_job *srv_job_new(struct oc_server *s, srv_request *req) {
    srv_job *j = oc_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->changed, NULL);
    j->refs = 1;
    j->srv = s;
    j->req = *req;
    memset(req, 0, sizeof *req);
    pthread_mutex_lock(&s->mu);
    uint64_t n = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* unique per process and start time; the seed of requests that give none */
    uint64_t r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (n * 0x9e3779b97f4a7c15ULL);
    snprintf(j->id, sizeof j->id, "chatcmpl-%016" PRIx64 "%04" PRIx64, r, n & 0xffff);
    j->ident = (srv_ident){j->id, (long long)ts.tv_sec, s->model_id};
    j->seed = j->req.has_seed ? j->req.seed : r;
    return j;
}

void srv_job_ref(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void srv_job_unref(srv_job *j) {
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    srv_request_free(&j->req);
    oc_reply_free(&j->reply);
    oc_sb_free(&j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->changed);
    oc_free(j);
}

/* Lock order: a job's mutex is never taken while s->mu is held, nor s->mu while a job's. */
int srv_job_enqueue(struct oc_server *s, srv_job *j) {
    srv_job_ref(j); /* the queue's, then the worker's */
    j->next = NULL;
    pthread_mutex_lock(&s->mu);
    /* a request waits only if no session is free and the queue has room */
    if (s->quit || (s->running + s->waiting >= s->n_workers && s->waiting >= s->p.queue)) {
        pthread_mutex_unlock(&s->mu);
        srv_job_unref(j);
        return -1;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->waiting++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Appends a streamed event to the job's output (under j->mu). */
static void emit(srv_job *j, char *event) {
    if (!event) {
        j->out.failed = 1;
        return;
    }
    if (j->out_sent == j->out.len) { /* all sent: start the buffer over */
        oc_sb_clear(&j->out);
        j->out_sent = 0;
    }
    oc_sb_puts(&j->out, event);
    free(event);
    j->started = 1;
    pthread_cond_broadcast(&j->changed);
}

static int is_cancelled(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int c = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return c;
}

/* Generation callbacks: stream each piece, and stop once the client is gone. */
static int on_piece_stream(const char *piece, int32_t id, void *user) {
    (void)id;
    srv_job *j = user;
    pthread_mutex_lock(&j->mu);
    if (!j->started)
        emit(j, srv_chunk_event(&j->ident, "assistant", "", NULL, NULL,
                                j->req.include_usage));
    emit(j, srv_chunk_event(&j->ident, NULL, piece, NULL, NULL, j->req.include_usage));
    int stop = j->cancelled || j->out.failed;
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static int on_piece_check(const char *piece, int32_t id, void *user) {
    (void)piece;
    (void)id;
    return is_cancelled(user);
}

/* An error for a failing library call while preparing or running job (err set). */
static int lib_fail(srv_error *err, oc_status s, const char *where) {
    const char *msg = oc_last_error();
    if (s == OC_ERR_NOMEM)
        return srv_fail(err, 503, "server_error", NULL, NULL, "out of memory: %s", msg);
    if (s == OC_ERR_INTERNAL || s == OC_ERR_IO)
        return srv_fail(err, 500, "server_error", NULL, NULL, "%s%s", where, msg);
    const char *code = s == OC_ERR_LIMIT && strstr(msg, "context") ? "context_length_exceeded"
                                                                   : NULL;
    return srv_fail(err, 400, "invalid_request_error", "messages", code, "%s%s", where, msg);
}

/* The request's messages as a conversation, images from the cache. */
static int build_conversation(struct oc_server *s, srv_job *j, oc_conversation *c,
                              srv_error *err) {
    const srv_request *r = &j->req;
    oc_image_limits lim = oc_image_default_limits();
    lim.max_file_bytes = s->p.max_body_bytes;
    for (size_t k = 0; k < r->n_msgs; k++) {
        oc_status st = oc_conversation_add_message(c, r->msgs[k].role);
        if (st != OC_OK)
            return lib_fail(err, st, "");
        for (size_t i = 0; i < r->msgs[k].n_parts; i++) {
            const srv_part *p = &r->msgs[k].parts[i];
            if (p->text) {
                if ((st = oc_conversation_add_text(c, p->text)) != OC_OK)
                    return lib_fail(err, st, "");
                continue;
            }
            unsigned char *bytes = NULL;
            size_t n = 0;
            if (srv_image_bytes(p->url, s->allow_dir, (size_t)s->p.max_body_bytes, &bytes, &n,
                                err))
                return -1;
            char where[64];
            snprintf(where, sizeof where, "messages[%zu].content[%zu]", k, i);
            oc_encoded_image *img = NULL;
            int hit = 0;
            st = oc_image_cache_get(s->cache, bytes, n, where, &lim, &img, &hit);
            oc_free(bytes);
            if (st != OC_OK) {
                char pre[80];
                snprintf(pre, sizeof pre, "%s: ", where);
                return lib_fail(err, st, strstr(oc_last_error(), where) ? "" : pre);
            }
            j->images++;
            j->images_cached += hit != 0;
            st = oc_conversation_add_image(c, img, NULL);
            oc_encoded_image_free(img);
            if (st != OC_OK)
                return lib_fail(err, st, "");
        }
    }
    return 0;
}

static oc_reply_params reply_params(const struct oc_server *s, srv_job *j) {
    const srv_request *r = &j->req;
    oc_reply_params p = oc_reply_default_params();
    p.gen.max_tokens = r->max_tokens ? r->max_tokens : s->lim.max_tokens;
    /* top_p 0 keeps only the most likely token: greedy */
    p.gen.temperature = r->top_p <= 0 ? 0 : r->temperature;
    p.gen.top_p = r->top_p <= 0 ? 1 : r->top_p;
    p.gen.top_k = r->top_k;
    p.gen.repetition_penalty = r->repetition_penalty;
    p.gen.seed = j->seed;
    p.gen.ignore_eos = r->ignore_eos;
    p.gen.on_token = r->stream ? on_piece_stream : on_piece_check;
    p.gen.user_data = j;
    p.stop = r->stop;
    p.n_stop = r->n_stop;
    return p;
}

static void run_job(struct oc_server *s, oc_session *session, srv_job *j) {
    srv_error err = {0};
    oc_reply rep;
    memset(&rep, 0, sizeof rep);
    oc_conversation *c = NULL;
    int rc = is_cancelled(j) ? -1 : 0;
    oc_status st = rc ? OC_OK : oc_conversation_new(&c);
    if (st != OC_OK)
        rc = lib_fail(&err, st, "");
    if (!rc && !is_cancelled(j))
        rc = build_conversation(s, j, c, &err);
    if (!rc && !is_cancelled(j)) {
        oc_reply_params p = reply_params(s, j);
        st = oc_session_reply(session, c, &p, &rep);
        if (st != OC_OK)
            rc = lib_fail(&err, st, "");
    }
    oc_conversation_free(c);
    pthread_mutex_lock(&j->mu);
    j->ok = rc == 0 && !j->cancelled;
    if (j->ok) {
        j->reply = rep;
        if (j->req.stream) {
            if (!j->started)
                emit(j, srv_chunk_event(&j->ident, "assistant", "", NULL, NULL,
                                        j->req.include_usage));
            emit(j, srv_chunk_event(&j->ident, NULL, NULL,
                                    rep.finish == OC_FINISH_LENGTH ? "length" : "stop", NULL,
                                    j->req.include_usage));
            if (j->req.include_usage)
                emit(j, srv_chunk_event(&j->ident, NULL, NULL, NULL, &rep, 0));
        }
    } else {
        oc_reply_free(&rep);
        if (rc == 0)
            srv_fail(&err, 499, "invalid_request_error", NULL, NULL, "client closed the request");
        j->err = err;
        if (j->req.stream && j->started) { /* too late for a status: an error event */
            char *e = srv_error_json(&err);
            if (e) {
                size_t n = strlen(e);
                char *ev = malloc(n + 9);
                if (ev)
                    snprintf(ev, n + 9, "data: %s\n\n", e);
                emit(j, ev);
            }
            free(e);
        }
    }
    if (j->req.stream && j->started) {
        char *done = malloc(16);
        if (done)
            strcpy(done, "data: [DONE]\n\n");
        emit(j, done);
    }
    int left = j->cancelled;
    uint32_t made = rep.completion_tokens;
    pthread_mutex_unlock(&j->mu);
    /* the session is free before anyone hears that the job is done */
    pthread_mutex_lock(&s->mu);
    s->running--;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&j->mu);
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->changed);
    pthread_mutex_unlock(&j->mu);
    if (left)
        srv_log(s, "%s: the client left; generation stopped after %u tokens", j->id, made);
}

typedef struct {
    struct oc_server *s;
    uint32_t index;
} worker_arg;

static void *worker(void *arg) {
    struct oc_server *s = ((worker_arg *)arg)->s;
    oc_session *session = s->sessions[((worker_arg *)arg)->index];
    free(arg);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->quit)
            pthread_cond_wait(&s->work, &s->mu);
        srv_job *j = s->head;
        if (!j) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->waiting--;
        s->running++;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&j->mu);
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&j->mu);
        run_job(s, session, j);
        srv_job_unref(j);
    }
    return NULL;
}

oc_status srv_workers_start(struct oc_server *s) {
    uint32_t n = s->p.parallel;
    s->sessions = oc_calloc(n, sizeof *s->sessions);
    s->workers = oc_calloc(n, sizeof *s->workers);
    if (!s->sessions || !s->workers)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        OC_TRY(oc_session_new(s->m, &s->sessions[i]));
    for (uint32_t i = 0; i < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        *a = (worker_arg){s, i};
        if (pthread_create(&s->workers[i], NULL, worker, a) != 0) {
            free(a);
            return oc_err(OC_ERR_INTERNAL, "cannot start worker thread %u", i);
        }
        s->n_workers++;
    }
    return OC_OK;
}

void srv_workers_stop(struct oc_server *s) {
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    /* jobs still queued (none after a drain) are answered as failed */
    for (srv_job *j = s->head, *next; j; j = next) {
        next = j->next;
        pthread_mutex_lock(&j->mu);
        srv_fail(&j->err, 503, "server_error", NULL, NULL, "the server is shutting down");
        j->state = JOB_DONE;
        pthread_cond_broadcast(&j->changed);
        pthread_mutex_unlock(&j->mu);
        srv_job_unref(j);
    }
    s->head = s->tail = NULL;
    for (uint32_t i = 0; s->sessions && i < s->p.parallel; i++)
        oc_session_free(s->sessions[i]);
    oc_free(s->sessions);
    oc_free(s->workers);
    s->sessions = NULL;
    s->workers = NULL;
}
