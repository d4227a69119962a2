/* OpenAI's response objects: chat.completion, chat.completion.chunk events, errors and the
 * model list, written with cJSON. */
#include "response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *str_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

/* OpenAI's finish_reason: a cancelled reply (the client left) never reaches a client. */
static const char *finish_name(oc_finish_reason f) {
    return f == OC_FINISH_LENGTH ? "length" : "stop";
}

char *srv_error_json(const srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    cJSON_AddItemToObject(o, "param", str_or_null(e->param));
    cJSON_AddItemToObject(o, "code", str_or_null(e->code));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void add_ident(cJSON *o, const srv_ident *id, const char *object) {
    cJSON_AddStringToObject(o, "id", id->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)id->created);
    cJSON_AddStringToObject(o, "model", id->model);
    cJSON_AddStringToObject(o, "system_fingerprint", "ocellus-" OCELLUS_VERSION);
}

static void add_usage(cJSON *o, const oc_reply *r) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)r->prompt_tokens + r->completion_tokens);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", r->cached_tokens);
}

char *srv_completion_json(const srv_ident *id, const oc_reply *r) {
    cJSON *root = cJSON_CreateObject();
    add_ident(root, id, "chat.completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", r->text ? r->text : "");
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", finish_name(r->finish));
    add_usage(root, r);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

char *srv_chunk_event(const srv_ident *id, const char *role, const char *content,
                      const char *finish, const oc_reply *usage, int usage_null) {
    cJSON *root = cJSON_CreateObject();
    add_ident(root, id, "chat.completion.chunk");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (!usage) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        if (role)
            cJSON_AddStringToObject(delta, "role", role);
        if (content)
            cJSON_AddStringToObject(delta, "content", content);
        cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddItemToObject(c, "finish_reason", str_or_null(finish));
        if (usage_null)
            cJSON_AddNullToObject(root, "usage");
    } else {
        add_usage(root, usage);
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!js)
        return NULL;
    size_t n = strlen(js);
    char *ev = malloc(n + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, js, n);
        memcpy(ev + 6 + n, "\n\n", 3);
    }
    free(js);
    return ev;
}

char *srv_models_json(const char *model_id, long long created, int list) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "ocellus");
    cJSON *root = m;
    if (list) {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "object", "list");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "data"), m);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
