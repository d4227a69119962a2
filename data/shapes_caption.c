/* Captions of the shapes world: a fixed grammar, written and parsed back, so that a
 * model's caption can be checked object by object against the scene (see shapes.h). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "shapes.h"

static const char *const rel_text[2] = {" to the left of ", " above "};

void oc_scene_describe(const oc_scene *s, oc_caption_desc *out) {
    memset(out, 0, sizeof *out);
    out->n = s->n;
    out->background = s->background;
    for (uint32_t i = 0; i < s->n; i++) {
        out->shape[i] = s->obj[i].shape;
        out->colour[i] = s->obj[i].colour;
        out->size[i] = s->obj[i].size;
        if (i + 1 < s->n)
            out->rel[i] = (uint8_t)oc_scene_relation(s, i);
    }
}

int oc_caption_desc_equal(const oc_caption_desc *a, const oc_caption_desc *b) {
    if (a->n != b->n || a->background != b->background)
        return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->shape[i] != b->shape[i] || a->colour[i] != b->colour[i] ||
            a->size[i] != b->size[i])
            return 0;
        if (i + 1 < a->n && a->rel[i] != b->rel[i])
            return 0;
    }
    return 1;
}

void oc_caption_write(const oc_caption_desc *d, char *buf) {
    /* the longest caption (4 objects, 3 "to the left of", "purple triangle"s) is ~150 */
    size_t k = 0, cap = OC_SCENE_TEXT_MAX;
    buf[0] = 0;
    for (uint32_t i = 0; i < d->n && k < cap; i++) {
        if (i > 0)
            k += (size_t)snprintf(buf + k, cap - k, "%s", rel_text[d->rel[i - 1] & 1]);
        if (k < cap)
            k += (size_t)snprintf(buf + k, cap - k, "a %s %s %s", oc_size_name(d->size[i]),
                                  oc_colour_name(d->colour[i]), oc_shape_name(d->shape[i]));
    }
    if (k < cap)
        snprintf(buf + k, cap - k, " on a %s background", oc_background_name(d->background));
}

void oc_scene_caption(const oc_scene *s, char *buf) {
    oc_caption_desc d;
    oc_scene_describe(s, &d);
    oc_caption_write(&d, buf);
}

/* A cursor over the caption text for the parser. */
typedef struct {
    const char *p;
    const char *start;
} cursor;

static int eat(cursor *c, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* A word up to the next space or the end; its index by parse, or -1. */
static int eat_word(cursor *c, int (*parse)(const char *, size_t)) {
    size_t n = strcspn(c->p, " ");
    int v = parse(c->p, n);
    if (v >= 0)
        c->p += n;
    return v;
}

static oc_status parse_error(const cursor *c, const char *what) {
    return oc_err(OC_ERR_FORMAT, "caption: expected %s at offset %zu (\"%.24s\")", what,
                  (size_t)(c->p - c->start), c->p);
}

static oc_status parse_object(cursor *c, oc_caption_desc *d, uint32_t i) {
    if (!eat(c, "a "))
        return parse_error(c, "\"a \"");
    int size = eat_word(c, oc_size_parse);
    if (size < 0 || !eat(c, " "))
        return parse_error(c, "a size");
    int colour = eat_word(c, oc_colour_parse);
    if (colour < 0 || !eat(c, " "))
        return parse_error(c, "a colour");
    int shape = eat_word(c, oc_shape_parse);
    if (shape < 0)
        return parse_error(c, "a shape");
    d->size[i] = (uint8_t)size;
    d->colour[i] = (uint8_t)colour;
    d->shape[i] = (uint8_t)shape;
    return OC_OK;
}

oc_status oc_caption_parse(const char *text, oc_caption_desc *out) {
    if (!text || !out)
        return oc_err(OC_ERR_INVALID_ARG, "caption: NULL argument");
    oc_caption_desc d;
    memset(&d, 0, sizeof d);
    cursor c = {text, text};
    for (;;) {
        OC_TRY(parse_object(&c, &d, d.n));
        d.n++;
        int rel = eat(&c, rel_text[OC_REL_LEFT_OF])  ? OC_REL_LEFT_OF
                  : eat(&c, rel_text[OC_REL_ABOVE]) ? OC_REL_ABOVE
                                                    : -1;
        if (rel < 0)
            break;
        if (d.n == OC_SHAPES_MAX_OBJECTS)
            return parse_error(&c, "at most 4 objects");
        d.rel[d.n - 1] = (uint8_t)rel;
    }
    if (!eat(&c, " on a "))
        return parse_error(&c, "\" on a \"");
    int bg = eat_word(&c, oc_background_parse);
    if (bg < 0)
        return parse_error(&c, "a background colour");
    if (!eat(&c, " background") || *c.p)
        return parse_error(&c, "\" background\" and the end");
    d.background = (uint8_t)bg;
    *out = d;
    return OC_OK;
}
