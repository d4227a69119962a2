/* A conversation as one line of fine-tuning JSONL (Hugging Face's messages format), the
 * format oc_dataset_open reads back: images as {"type": "image"} parts in place, their
 * files, as absolute paths, in "images". */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "conversation.h"
#include "error.h"
#include "file.h"
#include "strbuf.h"

static const char *role_name(oc_role r) {
    return r == OC_ROLE_SYSTEM ? "system" : r == OC_ROLE_USER ? "user" : "assistant";
}

/* The message's content: a list of parts when it has images, else its text. */
static oc_status add_content(cJSON *msg, const oc_conv_message *m, cJSON *images, size_t k) {
    size_t n_img = 0;
    for (size_t i = 0; i < m->n_parts; i++)
        n_img += m->parts[i].image != NULL;
    if (!n_img) {
        oc_strbuf b = {0};
        oc_sb_puts(&b, "");
        for (size_t i = 0; i < m->n_parts; i++)
            oc_sb_puts(&b, m->parts[i].text);
        if (b.failed)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        cJSON_AddStringToObject(msg, "content", b.data);
        oc_sb_free(&b);
        return OC_OK;
    }
    cJSON *parts = cJSON_AddArrayToObject(msg, "content");
    for (size_t i = 0; i < m->n_parts; i++) {
        const oc_conv_part *p = &m->parts[i];
        cJSON *part = cJSON_CreateObject();
        cJSON_AddItemToArray(parts, part);
        if (p->text) {
            cJSON_AddStringToObject(part, "type", "text");
            cJSON_AddStringToObject(part, "text", p->text);
            continue;
        }
        if (!p->source)
            return oc_err(OC_ERR_INVALID_ARG, "message %zu: an image has no file to name", k + 1);
        char real[PATH_MAX];
        if (!realpath(p->source, real))
            return oc_err(OC_ERR_IO, "%s: %s", p->source, strerror(errno));
        cJSON_AddStringToObject(part, "type", "image");
        cJSON_AddItemToArray(images, cJSON_CreateString(real));
    }
    return OC_OK;
}

oc_status oc_conversation_save_jsonl(const oc_conversation *c, const char *path) {
    if (!c || !path)
        return oc_err(OC_ERR_INVALID_ARG, "oc_conversation_save_jsonl: NULL argument");
    if (!c->n)
        return oc_err(OC_ERR_INVALID_ARG, "the conversation is empty: nothing to save");
    cJSON *root = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(root, "messages");
    cJSON *images = cJSON_CreateArray();
    oc_status s = root && msgs && images ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t k = 0; s == OC_OK && k < c->n; k++) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddItemToArray(msgs, msg);
        cJSON_AddStringToObject(msg, "role", role_name(c->msgs[k].role));
        s = add_content(msg, &c->msgs[k], images, k);
    }
    if (s == OC_OK && cJSON_GetArraySize(images) > 0) {
        cJSON_AddItemToObject(root, "images", images);
        images = NULL;
    }
    char *text = s == OC_OK ? cJSON_PrintUnformatted(root) : NULL;
    if (s == OC_OK && !text)
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK) {
        size_t n = strlen(text);
        char *line = oc_malloc(n + 2);
        if (!line) {
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        } else {
            memcpy(line, text, n);
            line[n] = '\n';
            line[n + 1] = 0;
            s = oc_write_file_atomic(path, line, n + 1);
            oc_free(line);
        }
    }
    free(text);
    cJSON_Delete(images);
    cJSON_Delete(root);
    return s;
}
