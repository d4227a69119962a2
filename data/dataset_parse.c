/* Parsing one line of a fine-tuning JSONL file into turns and images, or token arrays
 * (the formats are described in dataset.h). Checks shape only; the model-dependent checks
 * (vocabulary, image tokens, pixel tensors) are in dataset.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "dataset.h"
#include "error.h"
#include "file.h"

#define IMAGE_MARKER "<image>"

/* Context of the line being parsed, for errors. */
typedef struct {
    const char *file;
    size_t line;
    const char *base_dir;
    const oc_data_line_limits *lim;
} ctx;

static oc_status fail(const ctx *c, oc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static oc_status fail(const ctx *c, oc_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return oc_err(s, "%s:%zu: %s", c->file, c->line, msg);
}

static oc_status nomem(const ctx *c) { return fail(c, OC_ERR_NOMEM, "out of memory"); }

void oc_data_line_free(oc_data_line *l) {
    if (!l)
        return;
    for (size_t i = 0; i < l->n_turns; i++)
        oc_free(l->texts[i]);
    oc_free(l->texts);
    oc_free(l->turns);
    for (size_t i = 0; i < l->n_images; i++)
        oc_free(l->images[i]);
    oc_free(l->images);
    oc_free(l->ids);
    oc_free(l->labels);
    oc_free(l->pv_file);
    oc_free(l->pv_tensor);
    memset(l, 0, sizeof *l);
}

/* A path relative to the JSONL file's folder (absolute paths stay). */
static char *resolve(const ctx *c, const char *path) {
    if (path[0] == '/' || !c->base_dir[0])
        return oc_strdup(path);
    return oc_path_join(c->base_dir, path);
}

static oc_status add_image(const ctx *c, oc_data_line *l, const char *path) {
    if (!*path)
        return fail(c, OC_ERR_FORMAT, "an image path is empty");
    if (l->n_images >= c->lim->max_images)
        return fail(c, OC_ERR_LIMIT, "more than %u images", c->lim->max_images);
    char **v = oc_realloc(l->images, (l->n_images + 1) * sizeof *v);
    if (!v)
        return nomem(c);
    l->images = v;
    if (!(v[l->n_images] = resolve(c, path)))
        return nomem(c);
    l->n_images++;
    return OC_OK;
}

/* "image": "a.png" or "images": ["a.png", ...] (or neither). */
static oc_status parse_images(const ctx *c, const cJSON *j, oc_data_line *l) {
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(j, "image");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (one && !cJSON_IsNull(one) && many && !cJSON_IsNull(many))
        return fail(c, OC_ERR_FORMAT, "give \"image\" or \"images\", not both");
    if (one && !cJSON_IsNull(one)) {
        if (!cJSON_IsString(one))
            return fail(c, OC_ERR_FORMAT, "\"image\" must be a string");
        return add_image(c, l, one->valuestring);
    }
    if (!many || cJSON_IsNull(many))
        return OC_OK;
    if (!cJSON_IsArray(many))
        return fail(c, OC_ERR_FORMAT, "\"images\" must be a list of paths");
    const cJSON *it;
    cJSON_ArrayForEach(it, many) {
        if (!cJSON_IsString(it))
            return fail(c, OC_ERR_FORMAT, "\"images\" must be a list of paths");
        OC_TRY(add_image(c, l, it->valuestring));
    }
    return OC_OK;
}

/* role: 0 user, 1 assistant, 2 system (role_of) */
static oc_status add_turn(const ctx *c, oc_data_line *l, int role, char *text,
                          uint32_t n_images) {
    oc_turn *t = oc_realloc(l->turns, (l->n_turns + 1) * sizeof *t);
    if (t)
        l->turns = t;
    char **x = t ? oc_realloc(l->texts, (l->n_turns + 1) * sizeof *x) : NULL;
    if (!x) {
        oc_free(text);
        return nomem(c);
    }
    l->texts = x;
    l->texts[l->n_turns] = text;
    l->turns[l->n_turns] = (oc_turn){.is_assistant = role == 1, .text = text,
                                     .n_images = n_images, .is_system = role == 2};
    l->n_turns++;
    return OC_OK;
}

static size_t count_markers(const char *s) {
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, IMAGE_MARKER)); p += strlen(IMAGE_MARKER))
        n++;
    return n;
}

static int is_space(char ch) { return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r'; }

/* s without its "<image>" markers and the white space around the text, as LLaVA's
 * preprocess_multimodal leaves a human turn before putting the image first. */
static char *strip_markers(const char *s) {
    size_t n = strlen(s), k = 0, m = strlen(IMAGE_MARKER);
    char *out = oc_malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        if (strncmp(s + i, IMAGE_MARKER, m) == 0) {
            i += m;
            continue;
        }
        out[k++] = s[i++];
    }
    out[k] = 0;
    size_t a = 0;
    while (a < k && is_space(out[a]))
        a++;
    while (k > a && is_space(out[k - 1]))
        k--;
    memmove(out, out + a, k - a);
    out[k - a] = 0;
    return out;
}

static int role_of(const char *r) {
    if (!strcmp(r, "human") || !strcmp(r, "user"))
        return 0;
    if (!strcmp(r, "gpt") || !strcmp(r, "assistant"))
        return 1;
    if (!strcmp(r, "system"))
        return 2;
    return -1;
}

static oc_status check_has_assistant(const ctx *c, const oc_data_line *l) {
    for (size_t i = 0; i < l->n_turns; i++)
        if (l->turns[i].is_assistant)
            return OC_OK;
    return fail(c, OC_ERR_FORMAT, "no assistant turn: nothing to learn");
}

static oc_status parse_llava(const ctx *c, const cJSON *j, oc_data_line *l) {
    OC_TRY(parse_images(c, j, l));
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(j, "conversations");
    if (!cJSON_IsArray(conv))
        return fail(c, OC_ERR_FORMAT, "\"conversations\" must be a list");
    size_t markers = 0, k = 0, first_human = SIZE_MAX;
    const cJSON *turn;
    cJSON_ArrayForEach(turn, conv) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(turn, "from");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(turn, "value");
        if (!cJSON_IsObject(turn) || !cJSON_IsString(from) || !cJSON_IsString(value))
            return fail(c, OC_ERR_FORMAT, "turn %zu of \"conversations\" must be "
                                          "{\"from\": ..., \"value\": \"...\"}", k + 1);
        int role = role_of(from->valuestring);
        if (role < 0)
            return fail(c, OC_ERR_UNSUPPORTED, "turn %zu: unknown \"from\" \"%.40s\" (expected "
                                               "human, gpt, user, assistant or system)", k + 1,
                        from->valuestring);
        size_t m = count_markers(value->valuestring);
        if (role != 0 && m)
            return fail(c, OC_ERR_FORMAT, "turn %zu: an assistant or system turn cannot hold "
                        "\"<image>\"", k + 1);
        if (role == 0 && first_human == SIZE_MAX)
            first_human = k;
        char *text = m ? strip_markers(value->valuestring) : oc_strdup(value->valuestring);
        if (!text)
            return nomem(c);
        OC_TRY(add_turn(c, l, role, text, (uint32_t)m));
        markers += m;
        k++;
    }
    if (k == 0)
        return fail(c, OC_ERR_FORMAT, "\"conversations\" is empty");
    if (markers == 0 && l->n_images > 0) {
        if (first_human == SIZE_MAX)
            return fail(c, OC_ERR_FORMAT, "images but no human turn to hold them");
        l->turns[first_human].n_images = (uint32_t)l->n_images;
    } else if (markers != l->n_images) {
        return fail(c, OC_ERR_FORMAT, "%zu \"<image>\" markers but %zu images", markers,
                    l->n_images);
    }
    return check_has_assistant(c, l);
}

/* Appends s to a growing text (*buf of *len bytes). */
static int append(char **buf, size_t *len, const char *s) {
    size_t n = strlen(s);
    char *b = oc_realloc(*buf, *len + n + 1);
    if (!b)
        return 0;
    memcpy(b + *len, s, n + 1);
    *buf = b;
    *len += n;
    return 1;
}

/* One message's content: a string, or a list of text and image parts. Images named in a
 * part are added to l; *pending counts those to be taken from "images". */
static oc_status parse_content(const ctx *c, size_t k, const cJSON *content, oc_data_line *l,
                               char **text, uint32_t *n_images, size_t *pending) {
    size_t len = 0;
    *text = NULL;
    *n_images = 0;
    if (!append(text, &len, ""))
        return nomem(c);
    if (cJSON_IsString(content)) {
        if (!append(text, &len, content->valuestring))
            return nomem(c);
        return OC_OK;
    }
    if (!cJSON_IsArray(content))
        return fail(c, OC_ERR_FORMAT, "message %zu: \"content\" must be a string or a list",
                    k + 1);
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsString(type))
            return fail(c, OC_ERR_FORMAT, "message %zu: a content part has no \"type\"", k + 1);
        if (!strcmp(type->valuestring, "text")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(t))
                return fail(c, OC_ERR_FORMAT, "message %zu: a text part needs \"text\"", k + 1);
            if (!append(text, &len, t->valuestring))
                return nomem(c);
        } else if (!strcmp(type->valuestring, "image")) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(part, "image");
            if (!cJSON_IsString(p))
                p = cJSON_GetObjectItemCaseSensitive(part, "path");
            if (cJSON_IsString(p))
                OC_TRY(add_image(c, l, p->valuestring));
            else
                (*pending)++;
            (*n_images)++;
        } else {
            return fail(c, OC_ERR_UNSUPPORTED, "message %zu: content type \"%.40s\" is not "
                                               "supported (text, image)", k + 1,
                        type->valuestring);
        }
    }
    return OC_OK;
}

static oc_status parse_messages(const ctx *c, const cJSON *j, oc_data_line *l) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (!cJSON_IsArray(msgs))
        return fail(c, OC_ERR_FORMAT, "\"messages\" must be a list");
    /* images named in parts are added first; "images" entries fill the bare parts */
    oc_data_line listed;
    memset(&listed, 0, sizeof listed);
    oc_status s = parse_images(c, j, &listed);
    size_t k = 0, pending = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs) {
        if (s != OC_OK)
            break;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        if (!cJSON_IsObject(msg) || !cJSON_IsString(role)) {
            s = fail(c, OC_ERR_FORMAT, "message %zu must be {\"role\": ..., \"content\": ...}",
                     k + 1);
            break;
        }
        int r = role_of(role->valuestring);
        if (r < 0) {
            s = fail(c, OC_ERR_UNSUPPORTED, "message %zu: role \"%.40s\" is not supported (user, "
                                            "assistant, system)", k + 1, role->valuestring);
            break;
        }
        char *text = NULL;
        uint32_t n_img = 0;
        s = parse_content(c, k, cJSON_GetObjectItemCaseSensitive(msg, "content"), l, &text,
                          &n_img, &pending);
        if (s == OC_OK && r != 0 && n_img)
            s = fail(c, OC_ERR_FORMAT, "message %zu: an assistant or system turn cannot hold "
                     "images", k + 1);
        if (s == OC_OK && strstr(text, IMAGE_MARKER))
            s = fail(c, OC_ERR_FORMAT, "message %zu: text holds \"<image>\"; mark images with "
                                       "{\"type\": \"image\"}", k + 1);
        if (s != OC_OK) {
            oc_free(text);
            break;
        }
        s = add_turn(c, l, r, text, n_img);
        k++;
    }
    if (s == OC_OK && k == 0)
        s = fail(c, OC_ERR_FORMAT, "\"messages\" is empty");
    if (s == OC_OK && pending != listed.n_images)
        s = fail(c, OC_ERR_FORMAT, "%zu {\"type\": \"image\"} parts without a path but %zu "
                                   "entries in \"images\"", pending, listed.n_images);
    if (s == OC_OK && pending && l->n_images)
        s = fail(c, OC_ERR_FORMAT, "give every image in its part or all in \"images\", "
                                   "not both");
    if (s == OC_OK && pending) { /* all from "images": take the list over */
        l->images = listed.images;
        l->n_images = listed.n_images;
        listed.images = NULL;
        listed.n_images = 0;
    }
    oc_data_line_free(&listed);
    if (s == OC_OK && l->n_images > c->lim->max_images)
        s = fail(c, OC_ERR_LIMIT, "more than %u images", c->lim->max_images);
    return s == OC_OK ? check_has_assistant(c, l) : s;
}

/* An array of integers, each in [lo, hi] or equal to `also`. */
static oc_status int_array(const ctx *c, const cJSON *a, const char *key, int64_t lo,
                           int64_t hi, int64_t also, int32_t **out, size_t *n) {
    if (!cJSON_IsArray(a))
        return fail(c, OC_ERR_FORMAT, "\"%s\" must be a list of integers", key);
    size_t len = (size_t)cJSON_GetArraySize(a);
    if (len == 0)
        return fail(c, OC_ERR_FORMAT, "\"%s\" is empty", key);
    if (len > c->lim->max_tokens)
        return fail(c, OC_ERR_LIMIT, "\"%s\" has %zu tokens, more than the limit of %zu", key,
                    len, c->lim->max_tokens);
    int32_t *v = oc_malloc(len * sizeof *v);
    if (!v)
        return nomem(c);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        double d = it->valuedouble;
        if (!cJSON_IsNumber(it) || d != floor(d) || ((d < (double)lo || d > (double)hi) &&
                                                     d != (double)also)) {
            oc_free(v);
            return fail(c, OC_ERR_FORMAT, "\"%s\"[%zu] must be an integer in [%lld, %lld]%s",
                        key, i, (long long)lo, (long long)hi, also != lo ? " or -100" : "");
        }
        v[i++] = (int32_t)d;
    }
    *out = v;
    *n = len;
    return OC_OK;
}

static oc_status parse_tokens(const ctx *c, const cJSON *j, oc_data_line *l) {
    OC_TRY(parse_images(c, j, l));
    size_t n_labels = 0;
    OC_TRY(int_array(c, cJSON_GetObjectItemCaseSensitive(j, "input_ids"), "input_ids", 0,
                     INT32_MAX, 0, &l->ids, &l->n_ids));
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(j, "labels");
    if (!lab)
        return fail(c, OC_ERR_FORMAT, "missing \"labels\" (use -100 for untrained positions)");
    OC_TRY(int_array(c, lab, "labels", 0, INT32_MAX, OC_IGNORE_LABEL, &l->labels, &n_labels));
    if (n_labels != l->n_ids)
        return fail(c, OC_ERR_FORMAT, "\"labels\" has %zu entries but \"input_ids\" %zu",
                    n_labels, l->n_ids);
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(j, "pixel_values");
    if (!pv || cJSON_IsNull(pv))
        return OC_OK;
    const char *colon = cJSON_IsString(pv) ? strrchr(pv->valuestring, ':') : NULL;
    if (!colon || colon == pv->valuestring || !colon[1])
        return fail(c, OC_ERR_FORMAT, "\"pixel_values\" must be \"FILE.safetensors:TENSOR\"");
    char *file = oc_strndup(pv->valuestring, (size_t)(colon - pv->valuestring));
    l->pv_file = file ? resolve(c, file) : NULL;
    l->pv_tensor = oc_strdup(colon + 1);
    oc_free(file);
    if (!l->pv_file || !l->pv_tensor)
        return nomem(c);
    return OC_OK;
}

oc_status oc_data_line_parse(const char *text, size_t len, const char *file, size_t line,
                             const char *base_dir, const oc_data_line_limits *limits,
                             oc_data_line *out) {
    ctx c = {file, line, base_dir ? base_dir : "", limits};
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return fail(&c, OC_ERR_FORMAT, "invalid JSON near byte %zu", off + 1);
    }
    oc_status s;
    if (!cJSON_IsObject(j))
        s = fail(&c, OC_ERR_FORMAT, "expected a JSON object");
    else if (cJSON_GetObjectItemCaseSensitive(j, "conversations"))
        s = parse_llava(&c, j, out);
    else if (cJSON_GetObjectItemCaseSensitive(j, "messages"))
        s = parse_messages(&c, j, out);
    else if (cJSON_GetObjectItemCaseSensitive(j, "input_ids")) {
        out->kind = OC_DATA_TOKENS;
        s = parse_tokens(&c, j, out);
    } else
        s = fail(&c, OC_ERR_FORMAT, "expected \"conversations\", \"messages\" or \"input_ids\"");
    cJSON_Delete(j);
    if (s != OC_OK)
        oc_data_line_free(out);
    return s;
}
