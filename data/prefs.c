/* Preference datasets: JSONL files of (prompt, chosen, rejected) as TRL's DPOTrainer reads
 * them, each line turned into two conversations (the prompt with each reply) that the
 * fine-tuning reader parses and encodes, with labels on the reply only. Lines are checked
 * at open and re-parsed when encoded, as oc_dataset does. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "dataset.h"
#include "error.h"
#include "file.h"
#include "rng.h"

#define MAX_LINE_BYTES ((size_t)64 << 20)
#define IMAGE_MARKER "<image>"

typedef struct {
    size_t off, len, line;
} pline;

struct oc_pref_dataset {
    char *path, *base_dir;
    oc_dataset_params params;
    oc_data_model model;
    size_t max_tokens, image_seq;
    oc_mapped_file file;
    pline *lines;
    size_t n;
    double *ref;              /* (n, 2) reference log-probabilities, or NULL */
    uint64_t position, order_epoch;
    size_t *order;
    oc_data_encoded *held;    /* (2 * cap_held): chosen, rejected of each pair handed out */
    size_t n_held, cap_held;
};

static oc_status fail(const char *file, size_t line, oc_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static oc_status fail(const char *file, size_t line, oc_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return oc_err(s, "%s:%zu: %s", file, line, msg);
}

/* ---- one line into two conversations ----------------------------------------------- */

/* A string prompt as one user message: its images as parts before the text, or at its
 * "<image>" markers. */
static cJSON *prompt_message(const char *text, size_t n_images) {
    cJSON *msg = cJSON_CreateObject(), *parts = cJSON_CreateArray();
    if (!msg || !parts) {
        cJSON_Delete(msg);
        cJSON_Delete(parts);
        return NULL;
    }
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddItemToObject(msg, "content", parts);
    const char *marker = strstr(text, IMAGE_MARKER);
    if (!marker)
        for (size_t i = 0; i < n_images; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "image");
            cJSON_AddItemToArray(parts, p);
        }
    for (const char *t = text; *t;) {
        const char *m = strstr(t, IMAGE_MARKER);
        size_t len = m ? (size_t)(m - t) : strlen(t);
        /* LLaVA's habit: "<image>\nQuestion"; the newline belongs to the marker */
        if (len) {
            char *seg = oc_strndup(t, len);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "text");
            cJSON_AddStringToObject(p, "text", seg ? seg : "");
            cJSON_AddItemToArray(parts, p);
            oc_free(seg);
        }
        if (!m)
            break;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "image");
        cJSON_AddItemToArray(parts, p);
        t = m + strlen(IMAGE_MARKER);
        if (*t == '\n')
            t++;
    }
    return msg;
}

static int is_assistant_message(const cJSON *m) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsObject(m) && cJSON_IsString(role) &&
           (!strcmp(role->valuestring, "assistant") || !strcmp(role->valuestring, "gpt"));
}

/* A reply as one assistant message (a copy), or NULL with *why set. */
static cJSON *reply_message(const cJSON *r, const char *key, char *why, size_t why_len) {
    if (cJSON_IsString(r)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", r->valuestring);
        return m;
    }
    if (cJSON_IsArray(r) && cJSON_GetArraySize(r) == 1 && is_assistant_message(r->child))
        return cJSON_Duplicate(r->child, 1);
    snprintf(why, why_len, "\"%s\" must be a string or a list of one assistant message",
             key);
    return NULL;
}

/* The parsed conversations of one line: prompt + chosen reply, prompt + rejected reply. */
static oc_status parse_pair(const oc_pref_dataset *ds, size_t i, oc_data_line out[2]) {
    const pline *pl = &ds->lines[i];
    const char *text = (const char *)ds->file.data + pl->off, *file = ds->path;
    size_t line = pl->line;
    memset(out, 0, 2 * sizeof *out);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, pl->len, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return fail(file, line, OC_ERR_FORMAT, "invalid JSON near byte %zu", off + 1);
    }
    oc_status s = OC_OK;
    char why[160] = "";
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "chosen");
    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(j, "rejected");
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (!cJSON_IsObject(j))
        s = fail(file, line, OC_ERR_FORMAT, "expected a JSON object");
    else if (!ch)
        s = fail(file, line, OC_ERR_FORMAT, "missing field \"chosen\"");
    else if (!rj)
        s = fail(file, line, OC_ERR_FORMAT, "missing field \"rejected\"");
    else if (images && !cJSON_IsNull(images) && !cJSON_IsArray(images))
        s = fail(file, line, OC_ERR_FORMAT, "\"images\" must be a list of paths");
    size_t n_images = cJSON_IsArray(images) ? (size_t)cJSON_GetArraySize(images) : 0;

    /* the prompt's messages, and the replies' */
    cJSON *pmsgs = s == OC_OK ? cJSON_CreateArray() : NULL;
    const cJSON *replies[2] = {ch, rj};
    cJSON *implicit[2] = {NULL, NULL};
    if (s == OC_OK && !prompt) {
        /* TRL's implicit prompt: the messages both conversations begin with */
        if (!cJSON_IsArray(ch) || !cJSON_IsArray(rj)) {
            s = fail(file, line, OC_ERR_FORMAT, "missing field \"prompt\"");
        } else {
            const cJSON *a = ch->child, *b = rj->child;
            while (a && b && a->next && b->next && cJSON_Compare(a, b, 1)) {
                cJSON_AddItemToArray(pmsgs, cJSON_Duplicate(a, 1));
                a = a->next, b = b->next;
            }
            if (cJSON_GetArraySize(pmsgs) == 0) {
                s = fail(file, line, OC_ERR_FORMAT, "missing field \"prompt\" (and \"chosen\" "
                         "and \"rejected\" share no first messages)");
            } else {
                implicit[0] = cJSON_CreateArray();
                implicit[1] = cJSON_CreateArray();
                for (; a; a = a->next)
                    cJSON_AddItemToArray(implicit[0], cJSON_Duplicate(a, 1));
                for (; b; b = b->next)
                    cJSON_AddItemToArray(implicit[1], cJSON_Duplicate(b, 1));
                replies[0] = implicit[0];
                replies[1] = implicit[1];
            }
        }
    } else if (s == OC_OK && cJSON_IsString(prompt)) {
        size_t markers = 0;
        for (const char *t = prompt->valuestring; (t = strstr(t, IMAGE_MARKER)); t++)
            markers++;
        if (markers && markers != n_images)
            s = fail(file, line, OC_ERR_FORMAT, "\"prompt\" has %zu \"<image>\" markers but "
                     "there are %zu \"images\"", markers, n_images);
        else
            cJSON_AddItemToArray(pmsgs, prompt_message(prompt->valuestring, n_images));
    } else if (s == OC_OK && cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) > 0) {
        const cJSON *m;
        cJSON_ArrayForEach(m, prompt) cJSON_AddItemToArray(pmsgs, cJSON_Duplicate(m, 1));
    } else if (s == OC_OK) {
        s = fail(file, line, OC_ERR_FORMAT, "\"prompt\" must be a string or a list of "
                 "messages");
    }
    cJSON *rep[2] = {NULL, NULL};
    for (int k = 0; k < 2 && s == OC_OK; k++)
        if (!(rep[k] = reply_message(replies[k], k ? "rejected" : "chosen", why, sizeof why)))
            s = fail(file, line, OC_ERR_FORMAT, "%s", why);
    if (s == OC_OK && cJSON_Compare(rep[0], rep[1], 1))
        s = fail(file, line, OC_ERR_FORMAT, "\"chosen\" and \"rejected\" are the same reply");

    /* each conversation in the messages format, parsed by the fine-tuning reader */
    oc_data_line_limits lim = {ds->params.max_images, ds->max_tokens};
    for (int k = 0; k < 2 && s == OC_OK; k++) {
        cJSON *conv = cJSON_CreateObject();
        cJSON *all = cJSON_Duplicate(pmsgs, 1);
        cJSON_AddItemToArray(all, rep[k]);
        rep[k] = NULL;
        cJSON_AddItemToObject(conv, "messages", all);
        if (n_images)
            cJSON_AddItemToObject(conv, "images", cJSON_Duplicate(images, 1));
        char *txt = cJSON_PrintUnformatted(conv);
        cJSON_Delete(conv);
        s = txt ? oc_data_line_parse(txt, strlen(txt), file, line, ds->base_dir, &lim, &out[k])
                : fail(file, line, OC_ERR_NOMEM, "out of memory");
        cJSON_free(txt);
    }
    cJSON_Delete(rep[0]);
    cJSON_Delete(rep[1]);
    cJSON_Delete(implicit[0]);
    cJSON_Delete(implicit[1]);
    cJSON_Delete(pmsgs);
    cJSON_Delete(j);
    if (s != OC_OK) {
        oc_data_line_free(&out[0]);
        oc_data_line_free(&out[1]);
    }
    return s;
}

/* ---- open ------------------------------------------------------------------------ */

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return oc_strdup(".");
    return oc_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static oc_status index_lines(oc_pref_dataset *ds) {
    const char *text = (const char *)ds->file.data;
    size_t size = ds->file.size, cap = 0, line = 0;
    for (size_t pos = 0; pos < size;) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - text) : size;
        line++;
        size_t a = pos, b = end;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        pos = end + 1;
        if (a == b)
            continue;
        if (b - a > MAX_LINE_BYTES)
            return fail(ds->path, line, OC_ERR_LIMIT, "line longer than %zu bytes",
                        MAX_LINE_BYTES);
        if (ds->n == cap) {
            cap = cap ? 2 * cap : 1024;
            pline *l = oc_realloc(ds->lines, cap * sizeof *l);
            if (!l)
                return oc_err(OC_ERR_NOMEM, "%s: out of memory", ds->path);
            ds->lines = l;
        }
        ds->lines[ds->n] = (pline){a, b - a, line};
        oc_data_line two[2];
        OC_TRY(parse_pair(ds, ds->n, two));
        oc_status s = OC_OK;
        for (size_t k = 0; k < two[0].n_images && s == OC_OK; k++)
            if (!oc_file_exists(two[0].images[k]))
                s = fail(ds->path, line, OC_ERR_IO, "image '%s' not found", two[0].images[k]);
        oc_data_line_free(&two[0]);
        oc_data_line_free(&two[1]);
        OC_TRY(s);
        ds->n++;
    }
    if (ds->n == 0)
        return oc_err(OC_ERR_FORMAT, "%s: no preference pairs", ds->path);
    return OC_OK;
}

void oc_pref_dataset_free(oc_pref_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < 2 * ds->n_held; i++)
        oc_data_encoded_free(&ds->held[i]);
    oc_free(ds->held);
    oc_free(ds->order);
    oc_free(ds->ref);
    oc_free(ds->lines);
    oc_unmap_file(&ds->file);
    oc_data_model_free(&ds->model);
    oc_free(ds->path);
    oc_free(ds->base_dir);
    oc_free(ds);
}

oc_status oc_pref_dataset_open(const char *path, const char *model_dir,
                               const oc_dataset_params *params, oc_pref_dataset **out) {
    if (!path || !model_dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_pref_dataset_open: NULL argument");
    oc_pref_dataset *ds = oc_calloc(1, sizeof *ds);
    if (!ds)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    ds->params = params ? *params : oc_dataset_default_params();
    ds->order_epoch = UINT64_MAX;
    ds->path = oc_strdup(path);
    ds->base_dir = dir_of(path);
    oc_status s = ds->path && ds->base_dir ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK && (ds->params.max_images == 0 || ds->params.max_tiles == 0))
        s = oc_err(OC_ERR_INVALID_ARG, "dataset: max_images and max_tiles must be positive");
    if (s == OC_OK)
        s = oc_data_model_load(model_dir, &ds->model);
    if (s == OC_OK) {
        ds->image_seq = oc_config_image_seq(&ds->model.cfg);
        ds->max_tokens = ds->params.max_tokens ? ds->params.max_tokens
                                               : ds->model.cfg.text.max_pos;
    }
    if (s == OC_OK)
        s = oc_map_file(path, &ds->file);
    if (s == OC_OK)
        s = index_lines(ds);
    if (s != OC_OK) {
        oc_pref_dataset_free(ds);
        return s;
    }
    *out = ds;
    return OC_OK;
}

size_t oc_pref_dataset_size(const oc_pref_dataset *ds) { return ds ? ds->n : 0; }

uint64_t oc_pref_dataset_fingerprint(const oc_pref_dataset *ds) {
    if (!ds)
        return 0;
    /* FNV-1a 64 of the file's bytes */
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p = ds->file.data;
    for (size_t i = 0; i < ds->file.size; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

oc_status oc_pref_dataset_set_reference(oc_pref_dataset *ds, const double *logp) {
    if (!ds)
        return oc_err(OC_ERR_INVALID_ARG, "oc_pref_dataset_set_reference: NULL dataset");
    if (!logp) {
        oc_free(ds->ref);
        ds->ref = NULL;
        return OC_OK;
    }
    double *r = oc_malloc(2 * ds->n * sizeof *r);
    if (!r)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    memcpy(r, logp, 2 * ds->n * sizeof *r);
    oc_free(ds->ref);
    ds->ref = r;
    return OC_OK;
}

/* ---- encoding ---------------------------------------------------------------------- */

/* Labels on the reply only: the last run of labelled tokens (the prompt's own assistant
 * turns, in a multi-turn prompt, are context). */
static void label_reply_only(oc_data_encoded *e) {
    size_t b = e->n;
    while (b > 0 && e->labels[b - 1] == OC_IGNORE_LABEL)
        b--;
    size_t a = b;
    while (a > 0 && e->labels[a - 1] != OC_IGNORE_LABEL)
        a--;
    for (size_t t = 0; t < a; t++)
        e->labels[t] = OC_IGNORE_LABEL;
}

static oc_status encode_pair(const oc_pref_dataset *ds, size_t i, oc_data_encoded e[2]) {
    memset(e, 0, 2 * sizeof *e);
    oc_data_line two[2];
    OC_TRY(parse_pair(ds, i, two));
    oc_status s = OC_OK;
    for (int k = 0; k < 2 && s == OC_OK; k++) {
        e[k].n_images = two[k].n_images;
        s = oc_data_encode_chat(&ds->model, &ds->params, &two[k], &e[k]);
        if (s == OC_OK && e[k].n > ds->max_tokens)
            s = oc_err(OC_ERR_LIMIT, "%zu tokens, over the limit of %zu", e[k].n,
                       ds->max_tokens);
        if (s == OC_OK)
            label_reply_only(&e[k]);
    }
    oc_data_line_free(&two[0]);
    oc_data_line_free(&two[1]);
    if (s != OC_OK) {
        oc_data_encoded_free(&e[0]);
        oc_data_encoded_free(&e[1]);
        return oc_err_prefix(s, "%s:%zu: ", ds->path, ds->lines[i].line);
    }
    return OC_OK;
}

static oc_status hold(oc_pref_dataset *ds, size_t n) {
    for (size_t i = 0; i < 2 * ds->n_held; i++)
        oc_data_encoded_free(&ds->held[i]);
    ds->n_held = 0;
    if (n > ds->cap_held) {
        oc_data_encoded *h = oc_realloc(ds->held, 2 * n * sizeof *h);
        if (!h)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        ds->held = h;
        ds->cap_held = n;
    }
    return OC_OK;
}

static void to_example(const oc_data_encoded *e, oc_train_example *x) {
    x->input_ids = e->ids;
    x->labels = e->labels;
    x->n_tokens = e->n;
    x->pixel_values = e->pixels;
    x->n_tiles = e->n_tiles;
}

static void to_pair(const oc_pref_dataset *ds, size_t i, const oc_data_encoded e[2],
                    oc_pref_example *out) {
    to_example(&e[0], &out->chosen);
    to_example(&e[1], &out->rejected);
    out->ref_chosen = ds->ref ? ds->ref[2 * i] : 0;
    out->ref_rejected = ds->ref ? ds->ref[2 * i + 1] : 0;
}

oc_status oc_pref_dataset_get(oc_pref_dataset *ds, size_t i, oc_pref_example *out) {
    if (!ds || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_pref_dataset_get: NULL argument");
    if (i >= ds->n)
        return oc_err(OC_ERR_INVALID_ARG, "%s: pair %zu of %zu", ds->path, i, ds->n);
    OC_TRY(hold(ds, 1));
    OC_TRY(encode_pair(ds, i, ds->held));
    ds->n_held = 1;
    to_pair(ds, i, ds->held, out);
    return OC_OK;
}

static oc_status make_order(oc_pref_dataset *ds, uint64_t epoch) {
    if (!ds->order && !(ds->order = oc_malloc(ds->n * sizeof *ds->order)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ds->n; i++)
        ds->order[i] = i;
    if (ds->params.shuffle) {
        oc_stream r = oc_stream_derive(ds->params.seed, epoch, 0x5052454653ULL, 0);
        for (size_t i = ds->n; i > 1; i--) {
            size_t j = (size_t)oc_stream_below(&r, i);
            size_t t = ds->order[i - 1];
            ds->order[i - 1] = ds->order[j];
            ds->order[j] = t;
        }
    }
    ds->order_epoch = epoch;
    return OC_OK;
}

oc_status oc_pref_dataset_next_batch(oc_pref_example *pairs, size_t n, void *dataset) {
    oc_pref_dataset *ds = dataset;
    if (!ds || (n && !pairs))
        return oc_err(OC_ERR_INVALID_ARG, "oc_pref_dataset_next_batch: NULL argument");
    OC_TRY(hold(ds, n));
    uint64_t start = ds->position;
    oc_status s = OC_OK;
    for (size_t k = 0; k < n && s == OC_OK; k++) {
        uint64_t epoch = ds->position / ds->n;
        if (epoch != ds->order_epoch)
            s = make_order(ds, epoch);
        size_t i = s == OC_OK ? ds->order[ds->position % ds->n] : 0;
        if (s == OC_OK)
            s = encode_pair(ds, i, &ds->held[2 * k]);
        if (s == OC_OK) {
            ds->n_held = k + 1;
            to_pair(ds, i, &ds->held[2 * k], &pairs[k]);
            ds->position++;
        }
    }
    if (s != OC_OK) {
        hold(ds, 0);
        ds->position = start;
    }
    return s;
}

uint64_t oc_pref_dataset_position(const oc_pref_dataset *ds) { return ds ? ds->position : 0; }

void oc_pref_dataset_seek(oc_pref_dataset *ds, uint64_t position) {
    if (ds)
        ds->position = position;
}
