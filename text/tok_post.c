/* Post-processors: the special tokens added around one encoded sequence when
 * add_special is set (TemplateProcessing, BertProcessing, RobertaProcessing,
 * ByteLevel, Sequence). Only single sequences are encoded, so each processor comes
 * down to a template: ids to add, with the marker SEQ where the sequence goes. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "tok_internal.h"

#define SEQ (-1)
#define MAX_SPECIAL_ID INT32_MAX

typedef enum { PP_TEMPLATE, PP_NONE, PP_SEQUENCE } post_kind;

struct oc_post {
    post_kind kind;
    int32_t *tmpl;   /* PP_TEMPLATE: ids and SEQ markers */
    size_t n_tmpl;
    oc_post **children;
    size_t n_children;
};

void oc_post_free(oc_post *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n_children; i++)
        oc_post_free(p->children[i]);
    oc_free(p->children);
    oc_free(p->tmpl);
    oc_free(p);
}

static oc_status tmpl_push(oc_post *p, int32_t v, const char *file) {
    int32_t *t = oc_realloc(p->tmpl, (p->n_tmpl + 1) * sizeof *t);
    if (!t)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    p->tmpl = t;
    p->tmpl[p->n_tmpl++] = v;
    return OC_OK;
}

static oc_status read_id(const cJSON *v, const char *file, const char *what, int32_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_SPECIAL_ID ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return oc_err(OC_ERR_FORMAT, "%s: post_processor %s: id must be a non-negative integer",
                      file, what);
    *out = (int32_t)v->valuedouble;
    return OC_OK;
}

/* The ids of special token `name` in TemplateProcessing's "special_tokens". */
static oc_status template_special(oc_post *p, const cJSON *specials, const char *name,
                                  const char *file) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(specials, name);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(st, "ids");
    if (!cJSON_IsArray(ids))
        return oc_err(OC_ERR_FORMAT,
                      "%s: post_processor TemplateProcessing: missing special token '%s'", file,
                      name);
    const cJSON *e;
    cJSON_ArrayForEach(e, ids) {
        int32_t id = 0;
        OC_TRY(read_id(e, file, "TemplateProcessing", &id));
        OC_TRY(tmpl_push(p, id, file));
    }
    return OC_OK;
}

static oc_status parse_template(oc_post *p, const cJSON *j, const char *file) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsArray(single))
        return oc_err(OC_ERR_FORMAT,
                      "%s: post_processor TemplateProcessing has no \"single\" array", file);
    const cJSON *piece;
    cJSON_ArrayForEach(piece, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(piece, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken");
        const char *id = NULL;
        if (seq) {
            OC_TRY(oc_tok_str(seq, "id", 1, file, "post_processor template Sequence", &id));
            if (strcmp(id, "A"))
                return oc_err(OC_ERR_FORMAT, "%s: post_processor TemplateProcessing: the "
                              "single template uses sequence '%s'", file, id);
            OC_TRY(tmpl_push(p, SEQ, file));
        } else if (sp) {
            OC_TRY(oc_tok_str(sp, "id", 1, file, "post_processor template SpecialToken", &id));
            OC_TRY(template_special(p, specials, id, file));
        } else {
            return oc_err(OC_ERR_FORMAT, "%s: post_processor TemplateProcessing: a template "
                          "piece must be {\"Sequence\": ...} or {\"SpecialToken\": ...}", file);
        }
    }
    return OC_OK;
}

/* BertProcessing and RobertaProcessing: cls A sep, with "cls": ["[CLS]", 101]. */
static oc_status parse_cls_sep(oc_post *p, const cJSON *j, const char *file, const char *type) {
    const char *keys[2] = {"cls", "sep"};
    int32_t ids[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        const cJSON *pair = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2)
            return oc_err(OC_ERR_FORMAT, "%s: post_processor %s \"%s\" must be [token, id]",
                          file, type, keys[i]);
        OC_TRY(read_id(cJSON_GetArrayItem(pair, 1), file, type, &ids[i]));
    }
    OC_TRY(tmpl_push(p, ids[0], file));
    OC_TRY(tmpl_push(p, SEQ, file));
    return tmpl_push(p, ids[1], file);
}

static oc_status parse_body(oc_post *p, const char *type, const cJSON *j, const char *file) {
    if (!strcmp(type, "TemplateProcessing")) {
        p->kind = PP_TEMPLATE;
        return parse_template(p, j, file);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        p->kind = PP_TEMPLATE;
        return parse_cls_sep(p, j, file, type);
    }
    if (!strcmp(type, "ByteLevel")) {
        p->kind = PP_NONE; /* only trims offsets */
        return OC_OK;
    }
    if (!strcmp(type, "Sequence")) {
        p->kind = PP_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(arr))
            return oc_err(OC_ERR_FORMAT,
                          "%s: post_processor Sequence has no \"processors\" array", file);
        size_t count = (size_t)cJSON_GetArraySize(arr);
        p->children = oc_calloc(count ? count : 1, sizeof *p->children);
        if (!p->children)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
        const cJSON *c;
        cJSON_ArrayForEach(c, arr) {
            if (cJSON_IsNull(c))
                return oc_err(OC_ERR_FORMAT, "%s: null inside post_processor Sequence", file);
            OC_TRY(oc_post_parse(c, file, &p->children[p->n_children]));
            p->n_children++;
        }
        return OC_OK;
    }
    return oc_err(OC_ERR_UNSUPPORTED, "%s: unsupported post_processor type '%s'", file, type);
}

oc_status oc_post_parse(const cJSON *j, const char *file, oc_post **out) {
    *out = NULL;
    if (!j || cJSON_IsNull(j))
        return OC_OK;
    const char *type;
    OC_TRY(oc_tok_type(j, file, "post_processor", &type));
    oc_post *p = oc_calloc(1, sizeof *p);
    if (!p)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", file);
    oc_status st = parse_body(p, type, j, file);
    if (st != OC_OK) {
        oc_post_free(p);
        return st;
    }
    *out = p;
    return OC_OK;
}

static oc_status apply_template(const oc_post *p, oc_ids *ids) {
    oc_ids out = {0};
    oc_status st = OC_OK;
    for (size_t i = 0; st == OC_OK && i < p->n_tmpl; i++)
        st = p->tmpl[i] == SEQ ? oc_ids_append(&out, ids->v, ids->n)
                               : oc_ids_push(&out, p->tmpl[i]);
    if (st != OC_OK) {
        oc_ids_free(&out);
        return st;
    }
    oc_ids_free(ids);
    *ids = out;
    return OC_OK;
}

oc_status oc_post_apply(const oc_post *p, oc_ids *ids) {
    if (!p)
        return OC_OK;
    switch (p->kind) {
    case PP_TEMPLATE: return apply_template(p, ids);
    case PP_NONE: return OC_OK;
    case PP_SEQUENCE:
        for (size_t i = 0; i < p->n_children; i++)
            OC_TRY(oc_post_apply(p->children[i], ids));
        return OC_OK;
    }
    return oc_err(OC_ERR_INTERNAL, "tokenizer: bad post-processor kind %d", (int)p->kind);
}

int32_t oc_post_bos(const oc_post *p) {
    /* run the processor on a one-element marker sequence and look at what comes first */
    oc_ids ids = {0};
    int32_t bos = -1;
    if (oc_ids_push(&ids, -2) == OC_OK && oc_post_apply(p, &ids) == OC_OK && ids.n > 0 &&
        ids.v[0] >= 0)
        bos = ids.v[0];
    oc_ids_free(&ids);
    return bos;
}

int32_t oc_post_max_id(const oc_post *p) {
    int32_t m = -1;
    if (!p)
        return m;
    for (size_t i = 0; i < p->n_tmpl; i++)
        if (p->tmpl[i] > m)
            m = p->tmpl[i];
    for (size_t i = 0; i < p->n_children; i++) {
        int32_t c = oc_post_max_id(p->children[i]);
        if (c > m)
            m = c;
    }
    return m;
}
