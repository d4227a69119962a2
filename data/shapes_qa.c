/* Questions about a scene with one-word answers, and multiple-choice items. Only
 * questions with one right answer are asked, so exact match is a fair score. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "shapes.h"

typedef struct {
    oc_scene_qa *v;
    size_t n;
} qa_list;

static void add(qa_list *l, oc_qtype type, const char *answer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(qa_list *l, oc_qtype type, const char *answer, const char *fmt, ...) {
    if (l->n >= OC_SCENE_MAX_QA)
        return; /* cannot happen: a scene has at most ~82 questions */
    oc_scene_qa *q = &l->v[l->n++];
    q->type = (uint8_t)type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->question, sizeof q->question, fmt, ap);
    va_end(ap);
    snprintf(q->answer, sizeof q->answer, "%s", answer);
}

const char *oc_shapes_question_type(int type) {
    static const char *const names[OC_N_QTYPES + 1] = {
        "count",  "count_colour", "count_shape", "colour_of", "shape_of",
        "exists", "left_of",      "above",       "size_of",   "background",
        "false_premise"};
    return type >= 0 && type <= OC_Q_FALSE_PREMISE ? names[type] : NULL;
}

static const char *count_word(uint32_t n) {
    static const char *const digits[] = {"0", "1", "2", "3", "4"};
    return n < 5 ? digits[n] : "many";
}

static const char *yes_no(int b) { return b ? "yes" : "no"; }

/* Objects of a colour and shape (-1: any). */
static uint32_t count_of(const oc_scene *s, int colour, int shape) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->n; i++)
        k += (colour < 0 || s->obj[i].colour == colour) && (shape < 0 || s->obj[i].shape == shape);
    return k;
}

static int named_uniquely(const oc_scene *s, uint32_t i) {
    return count_of(s, s->obj[i].colour, s->obj[i].shape) == 1;
}

static void add_counts(const oc_scene *s, qa_list *l) {
    add(l, OC_Q_COUNT, count_word(s->n), "How many objects are there?");
    for (int c = 0; c < OC_N_COLOURS; c++)
        add(l, OC_Q_COUNT_COLOUR, count_word(count_of(s, c, -1)),
            "How many %s objects are there?", oc_colour_name(c));
    for (int k = 0; k < OC_N_SHAPES; k++)
        add(l, OC_Q_COUNT_SHAPE, count_word(count_of(s, -1, k)), "How many %s are there?",
            oc_shape_plural(k));
}

static void add_attributes(const oc_scene *s, qa_list *l) {
    for (uint32_t i = 0; i < s->n; i++) {
        const oc_shape_obj *o = &s->obj[i];
        if (count_of(s, -1, o->shape) == 1)
            add(l, OC_Q_COLOUR_OF, oc_colour_name(o->colour), "What colour is the %s?",
                oc_shape_name(o->shape));
    }
    for (uint32_t i = 0; i < s->n; i++) {
        const oc_shape_obj *o = &s->obj[i];
        if (count_of(s, o->colour, -1) == 1)
            add(l, OC_Q_SHAPE_OF, oc_shape_name(o->shape), "What shape is the %s object?",
                oc_colour_name(o->colour));
    }
    for (int c = 0; c < OC_N_COLOURS; c++)
        for (int k = 0; k < OC_N_SHAPES; k++)
            add(l, OC_Q_EXISTS, yes_no(count_of(s, c, k) > 0), "Is there a %s %s?",
                oc_colour_name(c), oc_shape_name(k));
    for (uint32_t i = 0; i < s->n; i++) {
        const oc_shape_obj *o = &s->obj[i];
        if (named_uniquely(s, i))
            add(l, OC_Q_SIZE_OF, oc_size_name(o->size), "What size is the %s %s?",
                oc_colour_name(o->colour), oc_shape_name(o->shape));
    }
    add(l, OC_Q_BACKGROUND, oc_background_name(s->background),
        "What colour is the background?");
}

static void add_relations(const oc_scene *s, qa_list *l) {
    for (uint32_t i = 0; i < s->n; i++) {
        for (uint32_t j = 0; j < s->n; j++) {
            if (i == j || !named_uniquely(s, i) || !named_uniquely(s, j))
                continue;
            const oc_shape_obj *a = &s->obj[i], *b = &s->obj[j];
            const char *ca = oc_colour_name(a->colour), *sa = oc_shape_name(a->shape);
            const char *cb = oc_colour_name(b->colour), *sb = oc_shape_name(b->shape);
            if (a->col != b->col)
                add(l, OC_Q_LEFT_OF, yes_no(a->col < b->col),
                    "Is the %s %s to the left of the %s %s?", ca, sa, cb, sb);
            if (a->row != b->row)
                add(l, OC_Q_ABOVE, yes_no(a->row < b->row), "Is the %s %s above the %s %s?", ca,
                    sa, cb, sb);
        }
    }
}

size_t oc_scene_questions(const oc_scene *s, oc_scene_qa *out) {
    qa_list l = {out, 0};
    add_counts(s, &l);
    add_attributes(s, &l);
    add_relations(s, &l);
    return l.n;
}

/* Picks one unused question: a type among those with an unused question, drawn with
 * probability proportional to its weight (0 excludes it), then an answer uniformly
 * among that type's, then a question. Returns its index, or -1 when none is left. */
static int pick_one(const oc_scene_qa *all, size_t n, const uint8_t *used,
                    const uint32_t weight[OC_N_QTYPES], oc_stream *rng) {
    uint64_t total = 0;
    uint8_t present[OC_N_QTYPES] = {0};
    for (size_t i = 0; i < n; i++)
        present[all[i].type] |= !used[i];
    for (int t = 0; t < OC_N_QTYPES; t++)
        total += present[t] ? weight[t] : 0;
    if (total == 0)
        return -1;
    /* with all weights 1 this is a uniform draw among the present types */
    uint64_t r = oc_stream_below(rng, total);
    int t = 0;
    while (!present[t] || r >= weight[t])
        r -= present[t] ? weight[t] : 0, t++;
    /* distinct answers of that type, in first-seen order (deterministic) */
    const char *answers[OC_SCENE_MAX_QA];
    size_t n_answers = 0;
    for (size_t i = 0; i < n; i++) {
        if (used[i] || all[i].type != t)
            continue;
        size_t a = 0;
        while (a < n_answers && strcmp(answers[a], all[i].answer) != 0)
            a++;
        if (a == n_answers)
            answers[n_answers++] = all[i].answer;
    }
    const char *ans = answers[oc_stream_below(rng, n_answers)];
    size_t n_match = 0;
    for (size_t i = 0; i < n; i++)
        n_match += !used[i] && all[i].type == t && strcmp(all[i].answer, ans) == 0;
    size_t k = (size_t)oc_stream_below(rng, n_match);
    for (size_t i = 0; i < n; i++)
        if (!used[i] && all[i].type == t && strcmp(all[i].answer, ans) == 0 && k-- == 0)
            return (int)i;
    return -1;
}

size_t oc_scene_pick_questions(const oc_scene *s, oc_stream *rng, size_t k,
                               const uint32_t weight[OC_N_QTYPES], oc_scene_qa *out) {
    static const uint32_t equal[OC_N_QTYPES] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    _Static_assert(OC_N_QTYPES == 10, "one 1 per question type");
    oc_scene_qa all[OC_SCENE_MAX_QA];
    uint8_t used[OC_SCENE_MAX_QA] = {0};
    size_t n = oc_scene_questions(s, all), got = 0;
    while (got < k) {
        int i = pick_one(all, n, used, weight ? weight : equal, rng);
        if (i < 0)
            break;
        used[i] = 1;
        out[got++] = all[i];
    }
    return got;
}

/* ---- false premises ---------------------------------------------------------------- */

/* An absent (colour, shape) drawn uniformly; colour or shape fixed when >= 0. */
static void absent_object(const oc_scene *s, oc_stream *rng, int *colour, int *shape) {
    int cs[OC_N_COLOURS * OC_N_SHAPES][2], n = 0;
    for (int c = 0; c < OC_N_COLOURS; c++)
        for (int k = 0; k < OC_N_SHAPES; k++)
            if (count_of(s, c, k) == 0)
                cs[n][0] = c, cs[n][1] = k, n++;
    /* at most 4 of the 30 objects are present: n >= 26 */
    int i = (int)oc_stream_below(rng, (uint64_t)n);
    *colour = cs[i][0];
    *shape = cs[i][1];
}

void oc_scene_false_premise(const oc_scene *s, oc_stream *rng, oc_scene_qa *out) {
    qa_list l = {out, 0};
    /* objects named uniquely: the present side of a relation */
    uint32_t named[OC_SHAPES_MAX_OBJECTS], n_named = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (named_uniquely(s, i))
            named[n_named++] = i;
    int kinds = n_named ? 5 : 3;
    int kind = (int)oc_stream_below(rng, (uint64_t)kinds);
    char absent[32];
    if (kind == 0) { /* colour of an absent shape */
        int shapes[OC_N_SHAPES], n = 0;
        for (int k = 0; k < OC_N_SHAPES; k++)
            if (count_of(s, -1, k) == 0)
                shapes[n++] = k;
        int k = shapes[oc_stream_below(rng, (uint64_t)n)]; /* n >= 1: 5 shapes, <= 4 objects */
        snprintf(absent, sizeof absent, "%s", oc_shape_name(k));
        add(&l, OC_Q_FALSE_PREMISE, "", "What colour is the %s?", absent);
    } else if (kind == 1) { /* shape of an absent colour */
        int colours[OC_N_COLOURS], n = 0;
        for (int c = 0; c < OC_N_COLOURS; c++)
            if (count_of(s, c, -1) == 0)
                colours[n++] = c;
        int c = colours[oc_stream_below(rng, (uint64_t)n)];
        snprintf(absent, sizeof absent, "%s object", oc_colour_name(c));
        add(&l, OC_Q_FALSE_PREMISE, "", "What shape is the %s?", absent);
    } else if (kind == 2) { /* size of an absent object */
        int c, k;
        absent_object(s, rng, &c, &k);
        snprintf(absent, sizeof absent, "%s %s", oc_colour_name(c), oc_shape_name(k));
        add(&l, OC_Q_FALSE_PREMISE, "", "What size is the %s?", absent);
    } else { /* a relation between a present object and an absent one, either way round */
        const oc_shape_obj *o = &s->obj[named[oc_stream_below(rng, n_named)]];
        int c, k;
        absent_object(s, rng, &c, &k);
        snprintf(absent, sizeof absent, "%s %s", oc_colour_name(c), oc_shape_name(k));
        char present[32];
        snprintf(present, sizeof present, "%s %s", oc_colour_name(o->colour),
                 oc_shape_name(o->shape));
        int absent_first = (int)oc_stream_below(rng, 2);
        const char *a = absent_first ? absent : present, *b = absent_first ? present : absent;
        if (kind == 3)
            add(&l, OC_Q_FALSE_PREMISE, "", "Is the %s to the left of the %s?", a, b);
        else
            add(&l, OC_Q_FALSE_PREMISE, "", "Is the %s above the %s?", a, b);
    }
    snprintf(out->answer, sizeof out->answer, "there is no %s", absent);
}

/* ---- multiple choice --------------------------------------------------------------- */

static void set_choices(oc_scene_mc *mc, oc_stream *rng, const char *right,
                        const char *const *wrong) {
    mc->answer = (int)oc_stream_below(rng, 4);
    for (int i = 0, w = 0; i < 4; i++)
        snprintf(mc->choices[i], sizeof mc->choices[i], "%s", i == mc->answer ? right : wrong[w++]);
}

_Static_assert(OC_N_COLOURS <= 8 && OC_N_SHAPES <= 8, "name pools hold 8");

/* Three distinct wrong options from a domain of names, drawn without replacement. */
static void set_choices_from(oc_scene_mc *mc, oc_stream *rng, const char *right,
                             const char *const *domain, int n_domain) {
    const char *pool[8];
    int n = 0;
    for (int i = 0; i < n_domain && n < 8; i++)
        if (strcmp(domain[i], right) != 0)
            pool[n++] = domain[i];
    for (int i = 0; i < 3; i++) {
        int j = i + (int)oc_stream_below(rng, (uint64_t)(n - i));
        const char *t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    set_choices(mc, rng, right, pool);
}

/* One change to a caption: a colour, shape or size, the background, or two neighbours
 * swapped (which keeps the same objects but breaks the relations). */
static void perturb(const oc_caption_desc *d, oc_stream *rng, oc_caption_desc *out) {
    *out = *d;
    uint32_t i = (uint32_t)oc_stream_below(rng, d->n);
    switch (oc_stream_below(rng, 5)) {
    case 0:
        out->colour[i] = (uint8_t)((d->colour[i] + 1 + oc_stream_below(rng, OC_N_COLOURS - 1)) %
                                   OC_N_COLOURS);
        break;
    case 1:
        out->shape[i] =
            (uint8_t)((d->shape[i] + 1 + oc_stream_below(rng, OC_N_SHAPES - 1)) % OC_N_SHAPES);
        break;
    case 2:
        out->size[i] = (uint8_t)(1 - d->size[i]);
        break;
    case 3:
        out->background = (uint8_t)((d->background + 1 + oc_stream_below(rng, OC_N_BACKGROUNDS - 1)) %
                                    OC_N_BACKGROUNDS);
        break;
    default:
        if (d->n > 1) {
            uint32_t j = i + 1 < d->n ? i + 1 : i - 1;
            out->colour[i] = d->colour[j], out->colour[j] = d->colour[i];
            out->shape[i] = d->shape[j], out->shape[j] = d->shape[i];
            out->size[i] = d->size[j], out->size[j] = d->size[i];
        }
        break;
    }
}

static oc_status caption_mc(const oc_scene *s, oc_stream *rng, oc_scene_mc *mc) {
    oc_caption_desc d;
    oc_scene_describe(s, &d);
    char right[OC_SCENE_TEXT_MAX], wrong[3][OC_SCENE_TEXT_MAX];
    oc_caption_write(&d, right);
    int n = 0;
    for (int tries = 0; n < 3 && tries < 1000; tries++) {
        oc_caption_desc p;
        perturb(&d, rng, &p);
        char text[OC_SCENE_TEXT_MAX];
        oc_caption_write(&p, text);
        int dup = strcmp(text, right) == 0;
        for (int k = 0; k < n; k++)
            dup |= strcmp(text, wrong[k]) == 0;
        if (!dup)
            memcpy(wrong[n++], text, sizeof text);
    }
    if (n < 3)
        return oc_err(OC_ERR_INTERNAL, "shapes: no three distinct wrong captions");
    snprintf(mc->question, sizeof mc->question, "Which caption describes the image?");
    const char *w[3] = {wrong[0], wrong[1], wrong[2]};
    set_choices(mc, rng, right, w);
    return OC_OK;
}

oc_status oc_scene_make_mc(const oc_scene *s, oc_stream *rng, oc_scene_mc *out) {
    if (!s || !rng || !out)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: NULL argument");
    memset(out, 0, sizeof *out);
    /* kinds: 0 caption, 1 counting, 2 colour of, 3 shape of */
    const uint32_t masks[4] = {
        0, 1u << OC_Q_COUNT | 1u << OC_Q_COUNT_COLOUR | 1u << OC_Q_COUNT_SHAPE,
        1u << OC_Q_COLOUR_OF, 1u << OC_Q_SHAPE_OF};
    uint32_t weight[OC_N_QTYPES];
    oc_scene_qa all[OC_SCENE_MAX_QA];
    uint8_t used[OC_SCENE_MAX_QA] = {0};
    size_t n = oc_scene_questions(s, all);
    int kinds[4] = {0}, n_kinds = 1;
    for (int k = 1; k < 4; k++)
        for (size_t i = 0; i < n; i++)
            if (masks[k] >> all[i].type & 1) {
                kinds[n_kinds++] = k;
                break;
            }
    int kind = kinds[oc_stream_below(rng, (uint64_t)n_kinds)];
    out->kind = kind;
    if (kind == 0)
        return caption_mc(s, rng, out);
    for (int t = 0; t < OC_N_QTYPES; t++)
        weight[t] = masks[kind] >> t & 1;
    int i = pick_one(all, n, used, weight, rng);
    if (i < 0)
        return oc_err(OC_ERR_INTERNAL, "shapes: no question for a multiple-choice item");
    snprintf(out->question, sizeof out->question, "%s", all[i].question);
    static const char *const counts[] = {"0", "1", "2", "3", "4"};
    const char *names[8]; /* >= OC_N_COLOURS, OC_N_SHAPES */
    if (kind == 1) {
        set_choices_from(out, rng, all[i].answer, counts, 5);
    } else if (kind == 2) {
        for (int c = 0; c < OC_N_COLOURS; c++)
            names[c] = oc_colour_name(c);
        set_choices_from(out, rng, all[i].answer, names, OC_N_COLOURS);
    } else {
        for (int c = 0; c < OC_N_SHAPES; c++)
            names[c] = oc_shape_name(c);
        set_choices_from(out, rng, all[i].answer, names, OC_N_SHAPES);
    }
    return OC_OK;
}
