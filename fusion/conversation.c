/* Conversations: messages of text and image parts, built by the caller and rendered by
 * oc_session_reply. */
#include "conversation.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

oc_status oc_conversation_new(oc_conversation **out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_conversation_new: NULL argument");
    oc_conversation *c = oc_calloc(1, sizeof *c);
    if (!c)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    *out = c;
    return OC_OK;
}

static void free_message(oc_conv_message *m) {
    for (size_t i = 0; i < m->n_parts; i++) {
        oc_free(m->parts[i].text);
        oc_free(m->parts[i].source);
        oc_encoded_image_free(m->parts[i].image);
    }
    oc_free(m->parts);
}

void oc_conversation_clear(oc_conversation *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free_message(&c->msgs[i]);
    oc_free(c->msgs);
    c->msgs = NULL;
    c->n = 0;
}

void oc_conversation_free(oc_conversation *c) {
    oc_conversation_clear(c);
    oc_free(c);
}

size_t oc_conversation_length(const oc_conversation *c) { return c ? c->n : 0; }

void oc_conversation_pop(oc_conversation *c) {
    if (c && c->n)
        free_message(&c->msgs[--c->n]);
}

oc_status oc_conversation_add_message(oc_conversation *c, oc_role role) {
    if (!c)
        return oc_err(OC_ERR_INVALID_ARG, "oc_conversation_add_message: NULL conversation");
    if (role != OC_ROLE_SYSTEM && role != OC_ROLE_USER && role != OC_ROLE_ASSISTANT)
        return oc_err(OC_ERR_INVALID_ARG, "unknown role %d", (int)role);
    oc_conv_message *m = oc_realloc(c->msgs, (c->n + 1) * sizeof *m);
    if (!m)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    c->msgs = m;
    c->msgs[c->n++] = (oc_conv_message){.role = role};
    return OC_OK;
}

/* Appends part (whose owned fields it takes over on success). */
static oc_status add_part(oc_conversation *c, oc_conv_part part) {
    if (!c->n)
        return oc_err(OC_ERR_INVALID_ARG, "the conversation has no message to add to");
    oc_conv_message *m = &c->msgs[c->n - 1];
    oc_conv_part *p = oc_realloc(m->parts, (m->n_parts + 1) * sizeof *p);
    if (!p)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    m->parts = p;
    m->parts[m->n_parts++] = part;
    return OC_OK;
}

oc_status oc_conversation_add_text(oc_conversation *c, const char *text) {
    if (!c || !text)
        return oc_err(OC_ERR_INVALID_ARG, "oc_conversation_add_text: NULL argument");
    char *copy = oc_strdup(text);
    if (!copy)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = add_part(c, (oc_conv_part){.text = copy});
    if (s != OC_OK)
        oc_free(copy);
    return s;
}

oc_status oc_conversation_add_image(oc_conversation *c, oc_encoded_image *img,
                                    const char *source) {
    if (!c || !img)
        return oc_err(OC_ERR_INVALID_ARG, "oc_conversation_add_image: NULL argument");
    if (c->n && c->msgs[c->n - 1].role != OC_ROLE_USER)
        return oc_err(OC_ERR_INVALID_ARG, "only a user message can hold images");
    char *src = source ? oc_strdup(source) : NULL;
    if (source && !src)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = add_part(c, (oc_conv_part){.image = img, .source = src});
    if (s != OC_OK) {
        oc_free(src);
        return s;
    }
    oc_encoded_image_ref(img);
    return OC_OK;
}
