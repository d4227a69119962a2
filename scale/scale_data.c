/* The data of a scaling study: the shapes world's train, validation and test splits
 * written into out/data (kept when already there with the same parameters), or the
 * user's JSONL files; and the capability questions: every {image, question, answer} line
 * turned into a one-turn conversation whose only labelled tokens are the answer's (and
 * its end-of-turn token), so that the trainer's mean loss on it times the labelled count
 * is -log p(exact answer). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "output.h"
#include "scale_internal.h"

#define MAX_JSONL_BYTES ((size_t)1 << 30)

char *sc_path(const char *out, const char *a, const char *b) {
    char *p = oc_path_join(out, a);
    if (p && b) {
        char *q = oc_path_join(p, b);
        oc_free(p);
        p = q;
    }
    return p;
}

/* 1 when dir/info.json describes a dataset made with p. */
static int shapes_ready(const char *dir, const oc_shapes_params *p) {
    char *path = oc_path_join(dir, "info.json");
    cJSON *j = NULL;
    int ok = path && oc_file_exists(path) && oc_json_load(path, 1 << 16, &j) == OC_OK;
    oc_free(path);
    if (ok) {
        const cJSON *seed = oc_json_get(j, "seed"), *n = oc_json_get(j, "n"),
                    *size = oc_json_get(j, "image_size"),
                    *q = oc_json_get(j, "questions_per_image"),
                    *split = oc_json_get(j, "split");
        ok = cJSON_IsNumber(seed) && seed->valuedouble == (double)p->seed &&
             cJSON_IsNumber(n) && n->valuedouble == (double)p->n && cJSON_IsNumber(size) &&
             size->valuedouble == p->image_size && cJSON_IsNumber(q) &&
             q->valuedouble == p->questions_per_image && cJSON_IsString(split) &&
             !strcmp(split->valuestring, oc_split_name(p->split));
    }
    cJSON_Delete(j);
    return ok;
}

/* Writes one split into out/data/NAME unless it is there already; *dir_out its folder. */
static oc_status shapes_write(const sc_recipe *r, const char *out, oc_split split, size_t n,
                              char **dir_out) {
    oc_shapes_params p = oc_shapes_default_params();
    p.split = split;
    p.seed = r->data_seed;
    p.n = n;
    p.image_size = r->image_size;
    p.questions_per_image = r->questions_per_image;
    char *dir = sc_path(out, "data", oc_split_name(split));
    if (!dir)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = OC_OK;
    if (!shapes_ready(dir, &p))
        s = oc_shapes_write_dataset(&p, dir);
    if (s != OC_OK) {
        oc_free(dir);
        return s;
    }
    *dir_out = dir;
    return OC_OK;
}

/* The folder of path, made absolute (malloc'd). */
static char *abs_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? oc_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : oc_strdup(".");
    if (!dir)
        return NULL;
    char buf[PATH_MAX];
    char *abs = realpath(dir, buf) ? oc_strdup(buf) : NULL;
    oc_free(dir);
    return abs;
}

/* questions (JSONL of {"image", "question", "answer"}) -> out_path: one-turn LLaVA
 * conversations, at most max lines (0: all). Image paths are kept when out_path is in
 * the questions' folder, else made absolute. */
static oc_status write_questions(const char *questions, const char *out_path, uint32_t max,
                                 int same_folder) {
    char *text = NULL;
    size_t size = 0;
    OC_TRY(oc_read_file(questions, MAX_JSONL_BYTES, &text, &size));
    char *dir = same_folder ? NULL : abs_dir_of(questions);
    oc_status s = same_folder || dir ? OC_OK
                                     : oc_err(OC_ERR_IO, "%s: cannot resolve its folder",
                                              questions);
    size_t cap = 1 << 16, len = 0, line_no = 0, n = 0;
    char *buf = oc_malloc(cap);
    if (s == OC_OK && !buf)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    char *p = text;
    while (s == OC_OK && *p && (max == 0 || n < max)) {
        char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        line_no++;
        const char *line = p;
        p += ll + (nl ? 1 : 0);
        size_t k = 0;
        while (k < ll && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
            k++;
        if (k == ll)
            continue;
        cJSON *j = cJSON_ParseWithLength(line, ll);
        const char *img = NULL, *q = NULL, *a = NULL;
        const cJSON *v;
        if ((v = oc_json_get(j, "image")) && cJSON_IsString(v))
            img = v->valuestring;
        if ((v = oc_json_get(j, "question")) && cJSON_IsString(v))
            q = v->valuestring;
        if ((v = oc_json_get(j, "answer")) && cJSON_IsString(v))
            a = v->valuestring;
        if (!j || !img || !q || !a || !*a) {
            s = oc_err(OC_ERR_FORMAT, "%s:%zu: expected {\"image\", \"question\", \"answer\"} "
                       "with strings (a non-empty answer)", questions, line_no);
            cJSON_Delete(j);
            break;
        }
        char *ipath = img[0] == '/' || same_folder ? oc_strdup(img) : oc_path_join(dir, img);
        char *qv = oc_malloc(strlen(q) + 9);
        cJSON *o = cJSON_CreateObject(), *conv = cJSON_CreateArray(), *t1 = cJSON_CreateObject(),
              *t2 = cJSON_CreateObject();
        char *line_out = NULL;
        if (ipath && qv && o && conv && t1 && t2) {
            snprintf(qv, strlen(q) + 9, "<image>\n%s", q);
            cJSON_AddStringToObject(o, "image", ipath);
            cJSON_AddStringToObject(t1, "from", "human");
            cJSON_AddStringToObject(t1, "value", qv);
            cJSON_AddStringToObject(t2, "from", "gpt");
            cJSON_AddStringToObject(t2, "value", a);
            cJSON_AddItemToArray(conv, t1);
            cJSON_AddItemToArray(conv, t2);
            cJSON_AddItemToObject(o, "conversations", conv);
            t1 = t2 = conv = NULL;
            line_out = cJSON_PrintUnformatted(o);
        }
        cJSON_Delete(t1);
        cJSON_Delete(t2);
        cJSON_Delete(conv);
        cJSON_Delete(o);
        cJSON_Delete(j);
        oc_free(ipath);
        oc_free(qv);
        if (!line_out) {
            s = oc_err(OC_ERR_NOMEM, "out of memory");
            break;
        }
        size_t m = strlen(line_out);
        if (len + m + 2 > cap) {
            while (len + m + 2 > cap)
                cap *= 2;
            char *nb = oc_realloc(buf, cap);
            if (!nb) {
                free(line_out);
                s = oc_err(OC_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf + len, line_out, m);
        len += m;
        buf[len++] = '\n';
        free(line_out);
        n++;
    }
    if (s == OC_OK && n == 0)
        s = oc_err(OC_ERR_FORMAT, "%s: no questions", questions);
    if (s == OC_OK)
        s = oc_write_file_atomic(out_path, buf, len);
    oc_free(buf);
    oc_free(dir);
    oc_free(text);
    return s;
}

oc_status sc_data_prepare(const sc_recipe *r, const char *out, sc_data *d) {
    memset(d, 0, sizeof *d);
    oc_status s = OC_OK;
    if (r->shapes) {
        char *tr = NULL, *va = NULL, *te = NULL;
        s = shapes_write(r, out, OC_SPLIT_TRAIN, r->train_scenes, &tr);
        if (s == OC_OK)
            s = shapes_write(r, out, OC_SPLIT_VAL, r->val_scenes, &va);
        if (s == OC_OK)
            s = shapes_write(r, out, OC_SPLIT_TEST, r->test_scenes, &te);
        if (s == OC_OK) {
            d->train = oc_path_join(tr, "conversations.jsonl");
            d->val = oc_path_join(va, "conversations.jsonl");
            d->questions = oc_path_join(te, "capability.jsonl");
            char *vqa = oc_path_join(te, "vqa.jsonl");
            if (!d->train || !d->val || !d->questions || !vqa)
                s = oc_err(OC_ERR_NOMEM, "out of memory");
            /* made from the test split, which is rewritten whenever it changes */
            if (s == OC_OK)
                s = write_questions(vqa, d->questions, r->capability_questions, 1);
            oc_free(vqa);
        }
        oc_free(tr);
        oc_free(va);
        oc_free(te);
    } else {
        d->train = oc_strdup(r->train_jsonl);
        d->val = oc_strdup(r->val_jsonl);
        if (!d->train || !d->val)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        if (s == OC_OK && r->questions_jsonl) {
            char *ddir = sc_path(out, "data", NULL);
            d->questions = sc_path(out, "data", "capability.jsonl");
            if (!ddir || !d->questions)
                s = oc_err(OC_ERR_NOMEM, "out of memory");
            if (s == OC_OK)
                s = oc_make_dirs(ddir);
            if (s == OC_OK)
                s = write_questions(r->questions_jsonl, d->questions, r->capability_questions,
                                    0);
            oc_free(ddir);
        }
    }
    if (s != OC_OK)
        sc_data_free(d);
    return s;
}

void sc_data_free(sc_data *d) {
    oc_free(d->train);
    oc_free(d->val);
    oc_free(d->questions);
    memset(d, 0, sizeof *d);
}
