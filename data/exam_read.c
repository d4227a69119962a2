/* Reading exam JSONL files (and plain text files for perplexity) into checked items. */
#include "exam.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

#define MAX_LINE ((size_t)16 << 20)
#define MAX_ITEMS ((size_t)50 * 1000 * 1000)
#define MAX_LIST 1000 /* answers or references per item */

int oc_utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Where we are, for error messages. */
typedef struct {
    const char *path;
    size_t line;
    const char *dir; /* the file's folder with a trailing '/', or "" */
} ctx;

static oc_status bad(const ctx *c, const char *what) {
    return oc_err(OC_ERR_FORMAT, "%s:%zu: %s", c->path, c->line, what);
}

/* A copy of a string member that the model will read: must be valid UTF-8. */
static oc_status text_copy(const ctx *c, const char *key, const char *s, char **out) {
    if (!oc_utf8_valid(s, strlen(s)))
        return oc_err(OC_ERR_FORMAT, "%s:%zu: \"%s\" is not valid UTF-8", c->path, c->line,
                      key);
    if (!(*out = oc_strdup(s)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    return OC_OK;
}

/* The first of keys present as a string; NULL if none. Another type is an error. */
static oc_status get_str(const ctx *c, const cJSON *o, const char *const *keys,
                         const char **out) {
    *out = NULL;
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (!v)
            continue;
        if (!cJSON_IsString(v)) {
            char msg[96];
            snprintf(msg, sizeof msg, "\"%s\" must be a string", *keys);
            return bad(c, msg);
        }
        *out = v->valuestring;
        return OC_OK;
    }
    return OC_OK;
}

/* "id"/"question_id": a string, or an integer written in decimal. */
static oc_status get_id(const ctx *c, const cJSON *o, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!v)
        v = cJSON_GetObjectItemCaseSensitive(o, "question_id");
    *out = NULL;
    if (!v)
        return OC_OK;
    char buf[32];
    const char *s;
    if (cJSON_IsString(v)) {
        s = v->valuestring;
    } else if (cJSON_IsNumber(v) && fabs(v->valuedouble) < 9e15 &&
               v->valuedouble == floor(v->valuedouble)) {
        snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        s = buf;
    } else {
        return bad(c, "\"id\" must be a string or an integer");
    }
    if (!(*out = oc_strdup(s)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    return OC_OK;
}

static oc_status push_str(char ***v, size_t *n, char *s) {
    char **nv = oc_realloc(*v, (*n + 1) * sizeof **v);
    if (!nv) {
        oc_free(s);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    *v = nv;
    (*v)[(*n)++] = s;
    return OC_OK;
}

static oc_status add_image(const ctx *c, oc_exam_item *it, const char *rel) {
    if (!*rel)
        return bad(c, "an image path is empty");
    char *p = rel[0] == '/' ? oc_strdup(rel) : oc_path_join(c->dir, rel);
    if (!p)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    return push_str(&it->images, &it->n_images, p);
}

static oc_status get_images(const ctx *c, const cJSON *o, oc_exam_item *it) {
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(o, "image");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(o, "images");
    if (one && !cJSON_IsString(one))
        return bad(c, "\"image\" must be a string");
    if (one)
        return add_image(c, it, one->valuestring);
    if (!many)
        return bad(c, "expected \"image\" or \"images\"");
    if (!cJSON_IsArray(many) || cJSON_GetArraySize(many) == 0)
        return bad(c, "\"images\" must be a non-empty list of paths");
    const cJSON *e;
    cJSON_ArrayForEach(e, many) {
        if (!cJSON_IsString(e))
            return bad(c, "\"images\" must hold strings");
        OC_TRY(add_image(c, it, e->valuestring));
    }
    return OC_OK;
}

/* A list of strings (VQA answers may be {"answer": ...} objects, as VQA's files hold). */
static oc_status get_list(const ctx *c, const cJSON *v, const char *key, char ***out,
                          size_t *n) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be a non-empty list", key);
        return bad(c, msg);
    }
    if (cJSON_GetArraySize(v) > MAX_LIST)
        return oc_err(OC_ERR_LIMIT, "%s:%zu: more than %d \"%s\"", c->path, c->line, MAX_LIST,
                      key);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        const cJSON *s = e;
        if (cJSON_IsObject(e))
            s = cJSON_GetObjectItemCaseSensitive(e, "answer");
        if (!cJSON_IsString(s)) {
            char msg[96];
            snprintf(msg, sizeof msg, "\"%s\" must hold strings", key);
            return bad(c, msg);
        }
        char *copy;
        OC_TRY(text_copy(c, key, s->valuestring, &copy));
        OC_TRY(push_str(out, n, copy));
    }
    return OC_OK;
}

/* The first of keys present: a list, or a single string taken as a list of one. */
static oc_status get_refs(const ctx *c, const cJSON *o, const char *const *keys,
                          oc_exam_item *it, int required) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (!v)
            continue;
        if (cJSON_IsString(v)) {
            char *copy;
            OC_TRY(text_copy(c, *keys, v->valuestring, &copy));
            return push_str(&it->answers, &it->n_answers, copy);
        }
        return get_list(c, v, *keys, &it->answers, &it->n_answers);
    }
    return required ? bad(c, "no references") : OC_OK;
}

static oc_status need_text(const ctx *c, const cJSON *o, const char *const *keys, int required,
                           char **out) {
    const char *s;
    OC_TRY(get_str(c, o, keys, &s));
    if (!s) {
        if (!required)
            return OC_OK;
        char msg[128];
        snprintf(msg, sizeof msg, "expected \"%s\"%s%s%s", keys[0], keys[1] ? " (or \"" : "",
                 keys[1] ? keys[1] : "", keys[1] ? "\")" : "");
        return bad(c, msg);
    }
    return text_copy(c, keys[0], s, out);
}

static const char *const K_QUESTION[] = {"question", NULL};
static const char *const K_POPE_Q[] = {"question", "text", NULL};
static const char *const K_ANSWER[] = {"answer", NULL};
static const char *const K_POPE_A[] = {"answer", "label", NULL};
static const char *const K_HINT[] = {"hint", "context", NULL};
static const char *const K_GROUP[] = {"type", "question_type", "category", "subject", NULL};
static const char *const K_CAPTIONS[] = {"captions", "references", "caption", NULL};
static const char *const K_PRED[] = {"prediction", "answer", "caption", "text", NULL};
static const char *const K_REFS[] = {"references", "captions", "answers", "answer", "label",
                                     NULL};
static const char *const K_TEXT[] = {"text", NULL};

static oc_status parse_mcq(const ctx *c, const cJSON *o, oc_exam_item *it) {
    OC_TRY(need_text(c, o, K_QUESTION, 1, &it->question));
    OC_TRY(need_text(c, o, K_HINT, 0, &it->hint));
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (!ch)
        return bad(c, "expected \"choices\"");
    OC_TRY(get_list(c, ch, "choices", &it->choices, &it->n_choices));
    if (it->n_choices < 2 || it->n_choices > OC_EXAM_MAX_CHOICES)
        return bad(c, "\"choices\" must hold 2 to 26 options");
    OC_TRY(need_text(c, o, K_ANSWER, 1, &it->answer));
    const char *a = it->answer;
    if (!(a[0] >= 'A' && a[0] < 'A' + (int)it->n_choices && a[1] == 0)) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"answer\" must be a letter A..%c", 'A' + (int)it->n_choices - 1);
        return bad(c, msg);
    }
    return OC_OK;
}

static oc_status parse_pope(const ctx *c, const cJSON *o, oc_exam_item *it) {
    OC_TRY(need_text(c, o, K_POPE_Q, 1, &it->question));
    OC_TRY(need_text(c, o, K_POPE_A, 1, &it->answer));
    if (strcmp(it->answer, "yes") && strcmp(it->answer, "no"))
        return bad(c, "the answer must be \"yes\" or \"no\"");
    return OC_OK;
}

static oc_status parse_object(const ctx *c, const cJSON *o, oc_exam_kind kind,
                              oc_exam_item *it) {
    OC_TRY(get_id(c, o, &it->id));
    const char *g;
    OC_TRY(get_str(c, o, K_GROUP, &g));
    if (g && !(it->group = oc_strdup(g)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    switch (kind) {
    case OC_EXAM_VQA:
        OC_TRY(get_images(c, o, it));
        OC_TRY(need_text(c, o, K_QUESTION, 1, &it->question));
        if (cJSON_GetObjectItemCaseSensitive(o, "answers")) {
            const char *const k[] = {"answers", NULL};
            return get_refs(c, o, k, it, 1);
        }
        return need_text(c, o, K_ANSWER, 1, &it->answer);
    case OC_EXAM_CAPTIONS:
        OC_TRY(get_images(c, o, it));
        return get_refs(c, o, K_CAPTIONS, it, 1);
    case OC_EXAM_IMAGE_MCQ:
        OC_TRY(get_images(c, o, it));
        return parse_mcq(c, o, it);
    case OC_EXAM_POPE:
        OC_TRY(get_images(c, o, it));
        return parse_pope(c, o, it);
    case OC_EXAM_TEXTS:
        return need_text(c, o, K_TEXT, 1, &it->question);
    case OC_EXAM_PREDICTIONS:
        if (!it->id)
            return bad(c, "expected \"id\"");
        return need_text(c, o, K_PRED, 1, &it->answer);
    case OC_EXAM_REFERENCES:
        if (!it->id)
            return bad(c, "expected \"id\"");
        return get_refs(c, o, K_REFS, it, 1);
    }
    return oc_err(OC_ERR_INTERNAL, "exam: unknown kind %d", (int)kind);
}

static void item_free(oc_exam_item *it) {
    oc_free(it->id);
    oc_free(it->group);
    for (size_t i = 0; i < it->n_images; i++)
        oc_free(it->images[i]);
    oc_free(it->images);
    oc_free(it->question);
    oc_free(it->hint);
    for (size_t i = 0; i < it->n_choices; i++)
        oc_free(it->choices[i]);
    oc_free(it->choices);
    oc_free(it->answer);
    for (size_t i = 0; i < it->n_answers; i++)
        oc_free(it->answers[i]);
    oc_free(it->answers);
    memset(it, 0, sizeof *it);
}

void oc_exam_free(oc_exam *e) {
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        item_free(&e->items[i]);
    oc_free(e->items);
    oc_free(e->path);
    memset(e, 0, sizeof *e);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* One line into *it (text lines of a plain text file are taken as they are). */
static oc_status parse_line(const ctx *c, char *line, size_t len, oc_exam_kind kind, int plain,
                            oc_exam_item *it) {
    it->line = c->line;
    if (plain) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (memchr(line, 0, len))
            return bad(c, "the line holds a NUL byte");
        return text_copy(c, "text", line, &it->question);
    }
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!o)
        return bad(c, "not valid JSON");
    oc_status s = cJSON_IsObject(o) ? parse_object(c, o, kind, it) : bad(c, "not a JSON object");
    cJSON_Delete(o);
    return s;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? oc_strndup(path, (size_t)(slash - path) + 1) : oc_strdup("");
}

oc_status oc_exam_load(const char *path, oc_exam_kind kind, size_t limit, oc_exam *out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "exam: NULL argument");
    memset(out, 0, sizeof *out);
    if (oc_is_dir(path))
        return oc_err(OC_ERR_IO, "%s: is a folder, expected a file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return oc_err(OC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *dir = dir_of(path);
    oc_exam e = {.path = oc_strdup(path)};
    ctx c = {path, 0, dir};
    int plain = kind == OC_EXAM_TEXTS && !ends_with(path, ".jsonl");
    char *line = NULL;
    size_t cap = 0, room = 0;
    ssize_t got;
    oc_status s = dir && e.path ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    while (s == OC_OK && (!limit || e.n < limit) && (got = getline(&line, &cap, f)) >= 0) {
        c.line++;
        size_t len = (size_t)got;
        if (len > MAX_LINE) {
            s = oc_err(OC_ERR_LIMIT, "%s:%zu: a line of %zu bytes (the limit is 16 MiB)", path,
                       c.line, len);
            break;
        }
        if (blank(line, len))
            continue;
        if (e.n == MAX_ITEMS) {
            s = oc_err(OC_ERR_LIMIT, "%s: more than %zu items", path, MAX_ITEMS);
            break;
        }
        if (e.n == room) {
            size_t nr = room ? 2 * room : 256;
            oc_exam_item *ni = oc_realloc(e.items, nr * sizeof *ni);
            if (!ni) {
                s = oc_err(OC_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            e.items = ni;
            room = nr;
        }
        memset(&e.items[e.n], 0, sizeof e.items[e.n]);
        s = parse_line(&c, line, len, kind, plain, &e.items[e.n]);
        e.n++; /* counted either way, so that oc_exam_free frees what was parsed */
    }
    if (s == OC_OK && ferror(f))
        s = oc_err(OC_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (s == OC_OK && e.n == 0)
        s = oc_err(OC_ERR_FORMAT, "%s: no items", path);
    free(line); /* getline's buffer comes from malloc */
    fclose(f);
    oc_free(dir);
    if (s != OC_OK) {
        oc_exam_free(&e);
        return s;
    }
    *out = e;
    return OC_OK;
}
