/* The server's pieces shared by its files: a job per chat completion, handed from the
 * HTTP connection thread (server.c) to a worker that owns a session (jobs.c). */
#ifndef OC_SERVE_INTERNAL_H
#define OC_SERVE_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>

#include "request.h"
#include "response.h"
#include "strbuf.h"

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } srv_job_state;

typedef struct srv_job {
    pthread_mutex_t mu;
    pthread_cond_t changed;   /* state, started, out or cancelled changed */
    int refs;                 /* under mu: the connection, the queue/worker, the stream */
    struct oc_server *srv;
    srv_request req;
    char id[48];
    srv_ident ident;
    uint64_t seed;
    srv_job_state state;
    int started;              /* stream: events are in out, the 200 can go */
    int cancelled;            /* the client went away */
    oc_strbuf out;            /* stream: event bytes not yet sent */
    size_t out_sent;
    int ok;                   /* JOB_DONE: 1 reply valid, 0 err valid */
    srv_error err;
    oc_reply reply;
    uint32_t images, images_cached;
    struct srv_job *next;     /* queue link */
} srv_job;

struct oc_server {
    const oc_model *m;
    oc_server_params p;
    char *host, *api_key, *allow_dir, *model_id; /* owned copies (allow_dir: real path) */
    srv_limits lim;
    long long created;
    struct MHD_Daemon *d;
    uint16_t port;
    oc_image_cache *cache;
    /* the pool */
    pthread_mutex_t mu;
    pthread_cond_t work;      /* a job was queued, or quit */
    pthread_cond_t drained;   /* in_flight reached 0 */
    srv_job *head, *tail;
    uint32_t waiting, running, in_flight;
    int quit;
    pthread_t *workers;
    oc_session **sessions;
    uint32_t n_workers;
    uint64_t next_id;
    /* stopping */
    int stop_pipe[2];
    atomic_int stop_asked;
    int waited;
};

/* A line for the server's log callback (server.c). */
void srv_log(const struct oc_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Jobs (jobs.c). A new job holds one reference (the caller's). */
srv_job *srv_job_new(struct oc_server *s, srv_request *req);
void srv_job_ref(srv_job *j);
void srv_job_unref(srv_job *j);
/* Queues j for a worker (taking a reference); 0, or -1 when the queue is full. */
int srv_job_enqueue(struct oc_server *s, srv_job *j);
/* Starts / stops the workers and their sessions. */
oc_status srv_workers_start(struct oc_server *s);
void srv_workers_stop(struct oc_server *s);
#endif
