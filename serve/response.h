/* Response bodies of the OpenAI API, as JSON text (malloc'd; NULL when out of memory). */
#ifndef OC_SERVE_RESPONSE_H
#define OC_SERVE_RESPONSE_H
#include <stdint.h>
#include <time.h>

#include "ocellus.h"
#include "request.h"

/* What every completion object names. */
typedef struct {
    const char *id;        /* "chatcmpl-..." */
    long long created;     /* Unix time */
    const char *model;
} srv_ident;

/* {"error": {"message", "type", "param", "code"}} */
char *srv_error_json(const srv_error *e);
/* A chat.completion object. */
char *srv_completion_json(const srv_ident *id, const oc_reply *r);
/* One "data: {...}\n\n" event of a chat.completion.chunk: a delta with role (may be NULL)
 * and content (may be NULL), a finish reason (may be NULL), and usage (r, or NULL for
 * none; with choices empty, OpenAI's final usage chunk). */
char *srv_chunk_event(const srv_ident *id, const char *role, const char *content,
                      const char *finish, const oc_reply *usage, int usage_null);
/* {"object": "list", "data": [model]} or the model object alone. */
char *srv_models_json(const char *model_id, long long created, int list);
#endif
