/* The shapes world: vocabulary, scene keys and splits, scene generation. */
#include "shapes.h"

#include <string.h>

#include "error.h"

static const char *const shape_names[OC_N_SHAPES] = {"circle", "square", "triangle", "star",
                                                     "cross"};
static const char *const shape_plurals[OC_N_SHAPES] = {"circles", "squares", "triangles",
                                                       "stars", "crosses"};
static const char *const colour_names[OC_N_COLOURS] = {"red",    "green",  "blue",
                                                       "yellow", "purple", "orange"};
static const char *const size_names[OC_N_SIZES] = {"small", "large"};
static const char *const background_names[OC_N_BACKGROUNDS] = {"white", "grey", "black"};

/* Saturated, well separated hues; none close to a neutral background. */
static const uint8_t colour_rgb[OC_N_COLOURS][3] = {
    {220, 30, 30}, {30, 160, 50}, {30, 80, 220}, {240, 215, 30}, {140, 50, 190}, {250, 135, 20},
};
static const uint8_t background_rgb[OC_N_BACKGROUNDS][3] = {
    {238, 238, 238}, {128, 128, 128}, {24, 24, 24}};

/* Split shares in thousandths: train [0, 800), val [800, 900), test [900, 1000). */
#define SPLIT_TRAIN_END 800
#define SPLIT_VAL_END 900
/* Rejection sampling accepts a test scene with p = 0.1; 10000 tries fail with p < 1e-400. */
#define MAX_DRAWS 10000

static const char *name_at(const char *const *names, int n, int i) {
    return i >= 0 && i < n ? names[i] : NULL;
}

static int name_find(const char *const *names, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    return -1;
}

const char *oc_shape_name(int shape) { return name_at(shape_names, OC_N_SHAPES, shape); }
const char *oc_shape_plural(int shape) { return name_at(shape_plurals, OC_N_SHAPES, shape); }
const char *oc_colour_name(int colour) { return name_at(colour_names, OC_N_COLOURS, colour); }
const char *oc_size_name(int size) { return name_at(size_names, OC_N_SIZES, size); }
const char *oc_background_name(int bg) {
    return name_at(background_names, OC_N_BACKGROUNDS, bg);
}

int oc_shape_parse(const char *s, size_t n) { return name_find(shape_names, OC_N_SHAPES, s, n); }
int oc_colour_parse(const char *s, size_t n) {
    return name_find(colour_names, OC_N_COLOURS, s, n);
}
int oc_size_parse(const char *s, size_t n) { return name_find(size_names, OC_N_SIZES, s, n); }
int oc_background_parse(const char *s, size_t n) {
    return name_find(background_names, OC_N_BACKGROUNDS, s, n);
}

void oc_colour_rgb(int colour, uint8_t rgb[3]) {
    memcpy(rgb, colour_rgb[colour >= 0 && colour < OC_N_COLOURS ? colour : 0], 3);
}

void oc_background_rgb(int bg, uint8_t rgb[3]) {
    memcpy(rgb, background_rgb[bg >= 0 && bg < OC_N_BACKGROUNDS ? bg : 0], 3);
}

const char *oc_split_name(oc_split split) {
    switch (split) {
    case OC_SPLIT_TRAIN: return "train";
    case OC_SPLIT_VAL: return "val";
    case OC_SPLIT_TEST: return "test";
    }
    return NULL;
}

int oc_split_parse(const char *name) {
    if (!name)
        return -1;
    for (int i = 0; i <= OC_SPLIT_TEST; i++)
        if (strcmp(name, oc_split_name((oc_split)i)) == 0)
            return i;
    return -1;
}

static int cell_of(const oc_shape_obj *o) { return o->col * OC_SHAPES_GRID + o->row; }

oc_status oc_scene_canonicalize(oc_scene *s) {
    if (!s)
        return oc_err(OC_ERR_INVALID_ARG, "scene: NULL");
    if (s->n < 1 || s->n > OC_SHAPES_MAX_OBJECTS)
        return oc_err(OC_ERR_INVALID_ARG, "scene: %u objects, expected 1 to %d", s->n,
                      OC_SHAPES_MAX_OBJECTS);
    if (s->background >= OC_N_BACKGROUNDS)
        return oc_err(OC_ERR_INVALID_ARG, "scene: background %u out of range", s->background);
    for (uint32_t i = 0; i < s->n; i++) {
        const oc_shape_obj *o = &s->obj[i];
        if (o->shape >= OC_N_SHAPES || o->colour >= OC_N_COLOURS || o->size >= OC_N_SIZES ||
            o->col >= OC_SHAPES_GRID || o->row >= OC_SHAPES_GRID || o->jx < -100 ||
            o->jx > 100 || o->jy < -100 || o->jy > 100)
            return oc_err(OC_ERR_INVALID_ARG, "scene: object %u has a field out of range", i);
        for (uint32_t j = 0; j < i; j++)
            if (cell_of(&s->obj[j]) == cell_of(o))
                return oc_err(OC_ERR_INVALID_ARG, "scene: objects %u and %u share a cell", j, i);
    }
    /* insertion sort by (column, row): at most 4 objects */
    for (uint32_t i = 1; i < s->n; i++) {
        oc_shape_obj o = s->obj[i];
        uint32_t j = i;
        for (; j > 0 && cell_of(&s->obj[j - 1]) > cell_of(&o); j--)
            s->obj[j] = s->obj[j - 1];
        s->obj[j] = o;
    }
    return OC_OK;
}

uint64_t oc_scene_key_hash(const oc_scene *s) {
    uint64_t h = oc_mix64(0x5348415045530001ULL ^ s->background);
    h = oc_mix64(h ^ ((uint64_t)s->n << 32));
    for (uint32_t i = 0; i < s->n; i++) {
        const oc_shape_obj *o = &s->obj[i];
        uint64_t v = (uint64_t)o->col | (uint64_t)o->row << 8 | (uint64_t)o->shape << 16 |
                     (uint64_t)o->colour << 24 | (uint64_t)o->size << 32;
        h = oc_mix64(h ^ (v + 0x9e3779b97f4a7c15ULL * (i + 1)));
    }
    return h;
}

oc_split oc_scene_split(const oc_scene *s) {
    uint64_t u = oc_scene_key_hash(s) % 1000;
    return u < SPLIT_TRAIN_END ? OC_SPLIT_TRAIN : u < SPLIT_VAL_END ? OC_SPLIT_VAL : OC_SPLIT_TEST;
}

int oc_scene_same_key(const oc_scene *a, const oc_scene *b) {
    if (a->background != b->background || a->n != b->n)
        return 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const oc_shape_obj *x = &a->obj[i], *y = &b->obj[i];
        if (x->col != y->col || x->row != y->row || x->shape != y->shape ||
            x->colour != y->colour || x->size != y->size)
            return 0;
    }
    return 1;
}

oc_relation oc_scene_relation(const oc_scene *s, uint32_t i) {
    /* canonical order: a later object is in a later column, or lower in the same one */
    return s->obj[i].col < s->obj[i + 1].col ? OC_REL_LEFT_OF : OC_REL_ABOVE;
}

/* One draw from the world's distribution (any split). */
static void draw_scene(oc_stream *r, oc_scene *s) {
    static const uint8_t noise_levels[] = {0, 4, 8};
    memset(s, 0, sizeof *s);
    s->background = (uint8_t)oc_stream_below(r, OC_N_BACKGROUNDS);
    s->noise = noise_levels[oc_stream_below(r, sizeof noise_levels)];
    s->noise_seed = oc_stream_next(r);
    s->n = 1 + (uint32_t)oc_stream_below(r, OC_SHAPES_MAX_OBJECTS);
    /* distinct cells: the first n of a shuffled list of the 9 */
    uint8_t cells[OC_SHAPES_GRID * OC_SHAPES_GRID];
    for (int i = 0; i < OC_SHAPES_GRID * OC_SHAPES_GRID; i++)
        cells[i] = (uint8_t)i;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t j = i + (uint32_t)oc_stream_below(r, OC_SHAPES_GRID * OC_SHAPES_GRID - i);
        uint8_t t = cells[i];
        cells[i] = cells[j];
        cells[j] = t;
        oc_shape_obj *o = &s->obj[i];
        o->col = cells[i] / OC_SHAPES_GRID;
        o->row = cells[i] % OC_SHAPES_GRID;
        o->shape = (uint8_t)oc_stream_below(r, OC_N_SHAPES);
        o->colour = (uint8_t)oc_stream_below(r, OC_N_COLOURS);
        o->size = (uint8_t)oc_stream_below(r, OC_N_SIZES);
        o->jx = (int8_t)oc_stream_range(r, -100, 100);
        o->jy = (int8_t)oc_stream_range(r, -100, 100);
    }
}

oc_status oc_scene_generate(oc_split split, uint64_t seed, uint64_t index, oc_scene *out) {
    if (!out || (int)split < OC_SPLIT_TRAIN || split > OC_SPLIT_TEST)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: bad split or NULL output");
    oc_stream r = oc_stream_derive(seed, (uint64_t)split, index, 0);
    for (int k = 0; k < MAX_DRAWS; k++) {
        oc_scene s;
        draw_scene(&r, &s);
        OC_TRY(oc_scene_canonicalize(&s));
        if (oc_scene_split(&s) == split) {
            *out = s;
            return OC_OK;
        }
    }
    return oc_err(OC_ERR_INTERNAL, "shapes: no %s scene in %d draws", oc_split_name(split),
                  MAX_DRAWS);
}
