/* Parsing of a chat completion request: messages with roles and content parts, and the
 * sampling fields, each checked with an error that names the field. Unknown fields are
 * ignored (clients send extras); fields whose effect ocellus cannot give are refused. */
#include "request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

int srv_fail(srv_error *e, int status, const char *type, const char *param, const char *code,
             const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(param, ...) srv_fail(err, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

void srv_request_free(srv_request *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n_msgs; i++)
        oc_free(r->msgs[i].parts);
    oc_free(r->msgs);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL; /* null means absent, as OpenAI reads it */
}

static int get_number(const cJSON *o, const char *k, double lo, double hi, int *present,
                      double *out, srv_error *err) {
    const cJSON *v = field(o, k);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return BAD(k, "'%s' must be a number", k);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return BAD(k, "'%s' is %g; it must be between %g and %g", k, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *o, const char *k, double lo, double hi, int *present,
                   double *out, srv_error *err) {
    if (get_number(o, k, lo, hi, present, out, err))
        return -1;
    if (*present && *out != floor(*out))
        return BAD(k, "'%s' must be an integer", k);
    return 0;
}

static int get_bool(const cJSON *o, const char *k, int *out, srv_error *err) {
    const cJSON *v = field(o, k);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return BAD(k, "'%s' must be true or false", k);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int parse_role(const char *r, oc_role *out) {
    if (!strcmp(r, "system") || !strcmp(r, "developer"))
        *out = OC_ROLE_SYSTEM;
    else if (!strcmp(r, "user"))
        *out = OC_ROLE_USER;
    else if (!strcmp(r, "assistant"))
        *out = OC_ROLE_ASSISTANT;
    else
        return -1;
    return 0;
}

/* One content part of message k. */
static int parse_part(const cJSON *part, size_t k, size_t j, oc_role role, srv_part *out,
                      srv_error *err) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!cJSON_IsObject(part) || !cJSON_IsString(type))
        return BAD("messages", "messages[%zu].content[%zu] must be an object with a \"type\"",
                   k, j);
    if (!strcmp(type->valuestring, "text")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(t))
            return BAD("messages", "messages[%zu].content[%zu].text must be a string", k, j);
        *out = (srv_part){.text = t->valuestring};
        return 0;
    }
    if (!strcmp(type->valuestring, "image_url")) {
        if (role != OC_ROLE_USER)
            return BAD("messages", "messages[%zu]: only user messages can hold images", k);
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
        const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
        if (!cJSON_IsString(url))
            return BAD("messages", "messages[%zu].content[%zu].image_url must be "
                       "{\"url\": \"...\"}", k, j);
        *out = (srv_part){.url = url->valuestring};
        return 0;
    }
    return BAD("messages", "messages[%zu].content[%zu]: content type '%.40s' is not supported "
               "(text, image_url)", k, j, type->valuestring);
}

static int parse_message(const cJSON *msg, size_t k, srv_message *out, size_t *n_images,
                         srv_error *err) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    if (!cJSON_IsObject(msg) || !cJSON_IsString(role))
        return BAD("messages", "messages[%zu] must be an object with a \"role\"", k);
    if (parse_role(role->valuestring, &out->role))
        return BAD("messages", "messages[%zu]: role '%.40s' is not supported (system, user, "
                   "assistant)", k, role->valuestring);
    const cJSON *content = field(msg, "content");
    if (!content) {
        if (out->role == OC_ROLE_ASSISTANT)
            return 0; /* an empty assistant turn */
        return BAD("messages", "messages[%zu].content is required", k);
    }
    if (cJSON_IsString(content)) {
        if (!(out->parts = oc_malloc(sizeof *out->parts)))
            return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
        out->parts[0] = (srv_part){.text = content->valuestring};
        out->n_parts = 1;
        return 0;
    }
    if (!cJSON_IsArray(content))
        return BAD("messages", "messages[%zu].content must be a string or a list of parts", k);
    size_t n = (size_t)cJSON_GetArraySize(content);
    if (!(out->parts = oc_calloc(n ? n : 1, sizeof *out->parts)))
        return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        if (parse_part(part, k, out->n_parts, out->role, &out->parts[out->n_parts], err))
            return -1;
        *n_images += out->parts[out->n_parts].url != NULL;
        out->n_parts++;
    }
    return 0;
}

static int parse_messages(const cJSON *j, const srv_limits *lim, srv_request *r,
                          srv_error *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (!msgs)
        return BAD("messages", "'messages' is a required property");
    size_t n = cJSON_IsArray(msgs) ? (size_t)cJSON_GetArraySize(msgs) : 0;
    if (!n)
        return BAD("messages", "'messages' must be a non-empty list");
    if (!(r->msgs = oc_calloc(n, sizeof *r->msgs)))
        return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        /* counted first, so that a failing message's parts are freed */
        if (parse_message(m, r->n_msgs, &r->msgs[r->n_msgs], &r->n_images, err)) {
            r->n_msgs++;
            return -1;
        }
        r->n_msgs++;
    }
    if (r->n_images > lim->max_images)
        return srv_fail(err, 400, "invalid_request_error", "messages", "too_many_images",
                        "%zu images in the request; the limit is %u", r->n_images,
                        lim->max_images);
    return 0;
}

static int parse_stop(const cJSON *j, srv_request *r, srv_error *err) {
    const cJSON *stop = field(j, "stop");
    if (!stop)
        return 0;
    if (cJSON_IsString(stop)) {
        if (!stop->valuestring[0])
            return BAD("stop", "'stop' must not be empty");
        r->stop[r->n_stop++] = stop->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(stop))
        return BAD("stop", "'stop' must be a string or a list of strings");
    if (cJSON_GetArraySize(stop) > SRV_MAX_STOP)
        return BAD("stop", "'stop' has %d strings; the limit is %d", cJSON_GetArraySize(stop),
                   SRV_MAX_STOP);
    const cJSON *s;
    cJSON_ArrayForEach(s, stop) {
        if (!cJSON_IsString(s) || !s->valuestring[0])
            return BAD("stop", "'stop' must hold non-empty strings");
        r->stop[r->n_stop++] = s->valuestring;
    }
    return 0;
}

/* Fields ocellus cannot honour: refused rather than silently ignored. */
static int refuse_unsupported(const cJSON *j, srv_error *err) {
    static const char *const zero_ok[] = {"frequency_penalty", "presence_penalty"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = field(j, zero_ok[i]);
        if (v && (!cJSON_IsNumber(v) || v->valuedouble != 0))
            return BAD(zero_ok[i], "'%s' is not supported (only 0)", zero_ok[i]);
    }
    const cJSON *lp = field(j, "logprobs");
    if (lp && !cJSON_IsFalse(lp))
        return BAD("logprobs", "'logprobs' is not supported");
    static const char *const lists[] = {"tools", "functions"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = field(j, lists[i]);
        if (v && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0))
            return BAD(lists[i], "'%s' (tool calls) is not supported", lists[i]);
    }
    const cJSON *rf = field(j, "response_format");
    const cJSON *rt = rf ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
    if (rf && !(cJSON_IsString(rt) && !strcmp(rt->valuestring, "text")))
        return BAD("response_format", "'response_format' other than {\"type\": \"text\"} is "
                   "not supported");
    return 0;
}

static int parse_sampling(const cJSON *j, const srv_limits *lim, srv_request *r,
                          srv_error *err) {
    int has;
    double v;
    const char *mt = field(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (get_int(j, mt, 1, 1e18, &has, &v, err))
        return -1;
    if (has && v > lim->max_tokens)
        return srv_fail(err, 400, "invalid_request_error", mt, "max_tokens_exceeded",
                        "'%s' is %.0f; the limit is %u", mt, v, lim->max_tokens);
    r->max_tokens = has ? (uint32_t)v : 0;
    r->temperature = 1.0f; /* OpenAI's default */
    if (get_number(j, "temperature", 0, 2, &has, &v, err))
        return -1;
    if (has)
        r->temperature = (float)v;
    r->top_p = 1.0f;
    if (get_number(j, "top_p", 0, 1, &has, &v, err))
        return -1;
    if (has)
        r->top_p = (float)v;
    if (get_int(j, "top_k", 0, 1e9, &has, &v, err))
        return -1;
    r->top_k = has ? (uint32_t)v : 0;
    r->repetition_penalty = 1.0f;
    const char *rp = field(j, "repeat_penalty") ? "repeat_penalty" : "repetition_penalty";
    if (get_number(j, rp, 1e-3, 100, &has, &v, err))
        return -1;
    if (has)
        r->repetition_penalty = (float)v;
    if (get_int(j, "seed", -9.2e18, 1.8e19, &has, &v, err))
        return -1;
    r->has_seed = has;
    r->seed = has ? (v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v) : 0;
    if (get_int(j, "n", 1, 1e9, &has, &v, err))
        return -1;
    if (has && v != 1)
        return BAD("n", "'n' must be 1 (one choice per request)");
    return 0;
}

int srv_request_parse(const char *body, size_t len, const srv_limits *lim, srv_request *out,
                      srv_error *err) {
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        return BAD(NULL, "the body is not valid JSON (near byte %zu)", off + 1);
    }
    out->json = j;
    if (!cJSON_IsObject(j)) {
        srv_request_free(out);
        return BAD(NULL, "the body must be a JSON object");
    }
    const cJSON *model = field(j, "model");
    const cJSON *so = field(j, "stream_options");
    int rc = 0;
    if (model && !cJSON_IsString(model))
        rc = BAD("model", "'model' must be a string");
    if (!rc)
        out->model = model ? model->valuestring : NULL;
    if (!rc)
        rc = parse_messages(j, lim, out, err);
    if (!rc)
        rc = parse_sampling(j, lim, out, err);
    if (!rc)
        rc = parse_stop(j, out, err);
    if (!rc)
        rc = refuse_unsupported(j, err);
    if (!rc)
        rc = get_bool(j, "stream", &out->stream, err);
    if (!rc)
        rc = get_bool(j, "ignore_eos", &out->ignore_eos, err);
    if (!rc && so && !cJSON_IsObject(so))
        rc = BAD("stream_options", "'stream_options' must be an object");
    if (!rc && so && !out->stream)
        rc = BAD("stream_options", "'stream_options' is only allowed with \"stream\": true");
    if (!rc && so)
        rc = get_bool(so, "include_usage", &out->include_usage, err);
    if (rc)
        srv_request_free(out);
    return rc;
}
