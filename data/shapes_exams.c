/* The shapes world's exams in the standard benchmarks' formats: ten answers per question
 * (VQA), five references per image (COCO captions), POPE's yes/no existence questions,
 * and an MMLU-layout folder of text questions about the world's rules. All are pure
 * functions of (split, seed, index), like the scenes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "exam.h"
#include "file.h"
#include "output.h"
#include "shapes.h"

#define N_OBJECTS (OC_N_COLOURS * OC_N_SHAPES)

const char *oc_scene_mc_kind(int kind) {
    static const char *const names[] = {"caption", "count", "colour", "shape"};
    return kind >= 0 && kind < 4 ? names[kind] : NULL;
}

const char *oc_pope_category(int category) {
    static const char *const names[] = {"random", "popular", "adversarial"};
    return category >= 0 && category < 3 ? names[category] : NULL;
}

/* ---- VQA: ten answers ------------------------------------------------------------ */

/* Paraphrases an annotator might give, by canonical answer. */
static const char *const PARAPHRASES[][4] = {
    {"0", "zero", "none", NULL}, {"1", "one", NULL},       {"2", "two", NULL},
    {"3", "three", NULL},        {"4", "four", NULL},       {"grey", "gray", NULL},
    {"large", "big", NULL},      {"small", "little", "tiny", NULL},
    {"cross", "plus", "x", NULL}, {"square", "box", NULL},  {"circle", "round", NULL},
    {"triangle", "triangular", NULL}, {"purple", "violet", NULL},
};

void oc_scene_vqa_answers(const oc_scene_qa *qa, oc_stream *rng,
                          const char *out[OC_VQA_ANSWERS]) {
    const char *const *alt = NULL;
    size_t n_alt = 0;
    for (size_t i = 0; i < sizeof PARAPHRASES / sizeof PARAPHRASES[0]; i++)
        if (!strcmp(PARAPHRASES[i][0], qa->answer)) {
            alt = PARAPHRASES[i] + 1;
            while (n_alt < 3 && alt[n_alt])
                n_alt++;
        }
    for (int k = 0; k < OC_VQA_ANSWERS; k++) {
        out[k] = qa->answer;
        /* every answer costs the same draws, paraphrased or not */
        uint64_t r = oc_stream_below(rng, 4), pick = oc_stream_below(rng, 3);
        if (n_alt && r == 3)
            out[k] = alt[pick % n_alt];
    }
}

/* ---- captions: five references ---------------------------------------------------- */

static size_t put(char *buf, size_t k, const char *s) {
    if (k < OC_SCENE_TEXT_MAX)
        k += (size_t)snprintf(buf + k, OC_SCENE_TEXT_MAX - k, "%s", s);
    return k < OC_SCENE_TEXT_MAX ? k : OC_SCENE_TEXT_MAX;
}

/* The objects of a description as a chain, in caption order or reversed (relations
 * flipped). */
static size_t chain(const oc_caption_desc *d, int reversed, char *buf, size_t k) {
    static const char *const rel[2][2] = {{" to the left of ", " above "},
                                          {" to the right of ", " below "}};
    for (uint32_t j = 0; j < d->n; j++) {
        uint32_t i = reversed ? d->n - 1 - j : j;
        if (j > 0) {
            uint32_t r = reversed ? d->rel[i] : d->rel[i - 1];
            k = put(buf, k, rel[reversed][r & 1]);
        }
        char obj[64];
        snprintf(obj, sizeof obj, "a %s %s %s", oc_size_name(d->size[i]),
                 oc_colour_name(d->colour[i]), oc_shape_name(d->shape[i]));
        k = put(buf, k, obj);
    }
    return k;
}

void oc_scene_captions5(const oc_scene *s, char out[OC_SCENE_CAPTIONS][OC_SCENE_TEXT_MAX]) {
    oc_caption_desc d;
    oc_scene_describe(s, &d);
    char bg[48];
    snprintf(bg, sizeof bg, "on a %s background", oc_background_name(d.background));
    for (int v = 0; v < 4; v++) {
        char *b = out[v];
        size_t k = 0;
        b[0] = 0;
        if (v >= 2) {
            k = put(b, k, bg);
            k = put(b, k, ", ");
        }
        k = chain(&d, v & 1, b, k);
        if (v < 2) {
            k = put(b, k, " ");
            put(b, k, bg);
        }
    }
    char first[OC_SCENE_TEXT_MAX];
    memcpy(first, out[0], sizeof first);
    size_t k = put(out[4], 0, "there is ");
    put(out[4], k, first);
}

/* ---- POPE ------------------------------------------------------------------------- */

oc_status oc_shapes_popularity(oc_split split, uint64_t seed, size_t n, uint8_t *rank) {
    uint64_t count[N_OBJECTS] = {0};
    for (size_t i = 0; i < n; i++) {
        oc_scene s;
        OC_TRY(oc_scene_generate(split, seed, i, &s));
        uint8_t seen[N_OBJECTS] = {0};
        for (uint32_t j = 0; j < s.n; j++)
            seen[s.obj[j].colour * OC_N_SHAPES + s.obj[j].shape] = 1;
        for (int o = 0; o < N_OBJECTS; o++)
            count[o] += seen[o]; /* images that show it, as POPE counts */
    }
    for (int o = 0; o < N_OBJECTS; o++)
        rank[o] = (uint8_t)o;
    for (int i = 1; i < N_OBJECTS; i++) { /* stable insertion sort, most frequent first */
        uint8_t x = rank[i];
        int j = i;
        for (; j > 0 && count[rank[j - 1]] < count[x]; j--)
            rank[j] = rank[j - 1];
        rank[j] = x;
    }
    return OC_OK;
}

static void pope_q(oc_pope_q *q, int object, int yes, int category) {
    snprintf(q->question, sizeof q->question, "Is there a %s %s?",
             oc_colour_name(object / OC_N_SHAPES), oc_shape_name(object % OC_N_SHAPES));
    q->yes = yes;
    q->category = category;
}

size_t oc_scene_pope(const oc_scene *s, const uint8_t *popular_rank, oc_stream *rng,
                     oc_pope_q out[OC_POPE_PER_SCENE]) {
    uint8_t present[N_OBJECTS] = {0};
    int objs[OC_SHAPES_MAX_OBJECTS], n_obj = 0;
    for (uint32_t j = 0; j < s->n; j++) {
        int o = s->obj[j].colour * OC_N_SHAPES + s->obj[j].shape;
        if (!present[o])
            objs[n_obj++] = o;
        present[o] = 1;
    }
    int k = n_obj < 3 ? n_obj : 3;
    size_t n = 0;
    for (int cat = 0; cat < 3; cat++) {
        for (int i = 0; i < k; i++)
            pope_q(&out[n++], objs[i], 1, cat);
        /* the absent objects this way of sampling may ask about, in its order */
        int cand[N_OBJECTS], n_cand = 0;
        for (int r = 0; r < N_OBJECTS; r++) {
            int o = cat == 1 ? popular_rank[r] : r;
            if (present[o])
                continue;
            int near = 0;
            for (int i = 0; i < n_obj; i++)
                near |= o / OC_N_SHAPES == objs[i] / OC_N_SHAPES ||
                        o % OC_N_SHAPES == objs[i] % OC_N_SHAPES;
            if (cat != 2 || near)
                cand[n_cand++] = o;
        }
        for (int i = 0; i < k && n_cand > 0; i++) {
            /* popular: the top ones; random and adversarial: drawn without replacement */
            int at = cat == 1 ? 0 : (int)oc_stream_below(rng, (uint64_t)n_cand);
            pope_q(&out[n++], cand[at], 0, cat);
            memmove(cand + at, cand + at + 1, (size_t)(n_cand - at - 1) * sizeof *cand);
            n_cand--;
        }
    }
    return n;
}

/* ---- MMLU: text questions about the world's rules --------------------------------- */

typedef struct {
    char question[512];
    char choices[4][128];
    int answer;
} mmlu_item;

/* Puts right among three wrong ones at a drawn position. */
static void place(mmlu_item *it, oc_stream *r, const char *right, const char *const wrong[3]) {
    it->answer = (int)oc_stream_below(r, 4);
    for (int i = 0, w = 0; i < 4; i++)
        snprintf(it->choices[i], sizeof it->choices[i], "%s", i == it->answer ? right : wrong[w++]);
}

/* Three distinct names of pool other than right, drawn. */
static void draw_wrong(oc_stream *r, const char *right, const char *const *pool, int n,
                       const char *wrong[3]) {
    const char *v[16];
    int k = 0;
    for (int i = 0; i < n && k < 16; i++)
        if (strcmp(pool[i], right))
            v[k++] = pool[i];
    for (int i = 0; i < 3; i++) {
        int j = i + (int)oc_stream_below(r, (uint64_t)(k - i));
        const char *t = v[i];
        v[i] = v[j];
        v[j] = t;
        wrong[i] = v[i];
    }
}

static const char *const NUMBERS[] = {"0", "1", "2", "3", "4", "5", "6", "8", "9", "10", "12"};
#define N_NUMBERS 11

static void geometry(oc_stream *r, mmlu_item *it) {
    static const char *const shapes[] = {"circle", "square", "triangle", "star", "cross"};
    static const char *const sides[] = {"0", "4", "3", "10", "12"};
    static const char *const corners[] = {"0", "4", "3", "10", "12"};
    int s = (int)oc_stream_below(r, 5), kind = (int)oc_stream_below(r, 4);
    const char *wrong[3];
    if (kind == 0) {
        snprintf(it->question, sizeof it->question, "How many straight sides does a %s of "
                 "the shapes world have?", shapes[s]);
        draw_wrong(r, sides[s], NUMBERS, N_NUMBERS, wrong);
        place(it, r, sides[s], wrong);
    } else if (kind == 1) {
        snprintf(it->question, sizeof it->question, "How many corners does a %s of the "
                 "shapes world have?", shapes[s]);
        draw_wrong(r, corners[s], NUMBERS, N_NUMBERS, wrong);
        place(it, r, corners[s], wrong);
    } else if (kind == 2) {
        snprintf(it->question, sizeof it->question, "Which shape of the shapes world has "
                 "exactly %s straight sides?", sides[s == 0 ? 1 : s]);
        draw_wrong(r, shapes[s == 0 ? 1 : s], shapes, 5, wrong);
        place(it, r, shapes[s == 0 ? 1 : s], wrong);
    } else {
        snprintf(it->question, sizeof it->question, "How many points does the star of the "
                 "shapes world have?");
        draw_wrong(r, "5", NUMBERS, N_NUMBERS, wrong);
        place(it, r, "5", wrong);
    }
}

static void rules(oc_stream *r, mmlu_item *it) {
    static const char *const other_colours[] = {"pink", "brown", "cyan", "gold", "teal",
                                                "magenta", "navy", "beige"};
    static const char *const other_shapes[] = {"hexagon", "oval", "heart", "diamond",
                                               "pentagon", "crescent", "arrow", "ring"};
    const char *wrong[3], *pool[16];
    int kind = (int)oc_stream_below(r, 6);
    if (kind == 0) {
        const char *right = oc_colour_name((int)oc_stream_below(r, OC_N_COLOURS));
        snprintf(it->question, sizeof it->question, "Which of these is one of the colours an "
                 "object of the shapes world can have?");
        draw_wrong(r, right, other_colours, 8, wrong);
        place(it, r, right, wrong);
    } else if (kind == 1) {
        const char *right = other_shapes[oc_stream_below(r, 8)];
        snprintf(it->question, sizeof it->question, "Which of these is not a shape of the "
                 "shapes world?");
        for (int i = 0; i < OC_N_SHAPES; i++)
            pool[i] = oc_shape_name(i);
        draw_wrong(r, right, pool, OC_N_SHAPES, wrong);
        place(it, r, right, wrong);
    } else if (kind == 2) {
        const char *right = oc_background_name((int)oc_stream_below(r, OC_N_BACKGROUNDS));
        snprintf(it->question, sizeof it->question, "Which of these colours can the "
                 "background of a shapes-world picture be?");
        for (int i = 0; i < OC_N_COLOURS; i++)
            pool[i] = oc_colour_name(i);
        draw_wrong(r, right, pool, OC_N_COLOURS, wrong);
        place(it, r, right, wrong);
    } else {
        static const char *const q[] = {
            "What is the largest number of objects in one picture of the shapes world?",
            "How many different colours can an object of the shapes world have?",
            "In how many sizes are the objects of the shapes world drawn?"};
        static const char *const a[] = {"4", "6", "2"};
        int k = kind - 3;
        snprintf(it->question, sizeof it->question, "%s", q[k]);
        draw_wrong(r, a[k], NUMBERS, N_NUMBERS, wrong);
        place(it, r, a[k], wrong);
    }
}

/* Questions that read one scene's caption. */
static void captions(oc_stream *r, const oc_scene *s, mmlu_item *it) {
    char cap[OC_SCENE_TEXT_MAX];
    oc_scene_caption(s, cap);
    const char *wrong[3], *pool[16];
    int kind = (int)oc_stream_below(r, 3);
    if (kind == 0) {
        static const char *const counts[] = {"1", "2", "3", "4", "5", "6"};
        snprintf(it->question, sizeof it->question, "A picture is described as \"%s\". How "
                 "many objects does it show?", cap);
        draw_wrong(r, counts[s->n - 1], counts, 6, wrong);
        place(it, r, counts[s->n - 1], wrong);
    } else if (kind == 1) {
        const char *right = oc_background_name(s->background);
        snprintf(it->question, sizeof it->question, "A picture is described as \"%s\". What "
                 "colour is its background?", cap);
        for (int i = 0; i < OC_N_BACKGROUNDS; i++)
            pool[i] = oc_background_name(i);
        pool[3] = "red"; /* only three backgrounds: one object colour makes four choices */
        draw_wrong(r, right, pool, 4, wrong);
        place(it, r, right, wrong);
    } else {
        uint32_t i = (uint32_t)oc_stream_below(r, s->n);
        const char *right = oc_colour_name(s->obj[i].colour);
        snprintf(it->question, sizeof it->question, "A picture is described as \"%s\". What "
                 "colour is object number %u of the description?", cap, i + 1);
        for (int c = 0; c < OC_N_COLOURS; c++)
            pool[c] = oc_colour_name(c);
        draw_wrong(r, right, pool, OC_N_COLOURS, wrong);
        place(it, r, right, wrong);
    }
}

/* Where the second of two neighbouring objects of a caption is relative to the first. */
static void relations(oc_stream *r, const oc_scene *s, mmlu_item *it) {
    static const char *const where[4] = {"to the right of it", "below it",
                                         "to the left of it", "above it"};
    oc_caption_desc d;
    oc_scene_describe(s, &d);
    uint32_t i = (uint32_t)oc_stream_below(r, d.n - 1);
    char cap[OC_SCENE_TEXT_MAX];
    oc_caption_write(&d, cap);
    snprintf(it->question, sizeof it->question, "A picture is described as \"%s\". Where is "
             "the %s %s relative to the %s %s?", cap, oc_colour_name(d.colour[i + 1]),
             oc_shape_name(d.shape[i + 1]), oc_colour_name(d.colour[i]), oc_shape_name(d.shape[i]));
    const char *right = where[d.rel[i] & 1], *wrong[3];
    draw_wrong(r, right, where, 4, wrong);
    place(it, r, right, wrong);
}

#define N_SUBJECTS 4
static const char *const SUBJECTS[N_SUBJECTS] = {"shapes_geometry", "shapes_rules",
                                                 "shapes_captions", "shapes_relations"};

/* Item i of a subject: scenes from (split, seed); relations need two objects. */
static oc_status make_item(int subject, oc_split split, uint64_t seed, uint64_t i,
                           uint64_t tag, mmlu_item *it) {
    memset(it, 0, sizeof *it);
    oc_stream r = oc_stream_derive(seed, (uint64_t)split, i, tag + (uint64_t)subject);
    if (subject == 0)
        geometry(&r, it);
    else if (subject == 1)
        rules(&r, it);
    else {
        oc_scene s;
        uint64_t k = tag == 200 ? i + (1u << 20) : i; /* dev: scenes no split item uses */
        do {
            OC_TRY(oc_scene_generate(split, seed ^ 0x4d4d4c55ULL, k, &s)); /* "MMLU" */
            k += 1000003;
        } while (subject == 3 && s.n < 2);
        if (subject == 2)
            captions(&r, &s, it);
        else
            relations(&r, &s, it);
    }
    return OC_OK;
}

/* One subject's CSV (n items) as the folder output's file name. The rows are built in
 * memory (open_memstream) and written whole through the output layer. */
static oc_status write_csv(oc_out_dir *d, const char *name, int subject, oc_split split,
                           uint64_t seed, uint32_t n, uint64_t tag) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    oc_status s = OC_OK;
    for (uint32_t i = 0; s == OC_OK && i < n; i++) {
        mmlu_item it;
        s = make_item(subject, split, seed, i, tag, &it);
        char letter[2] = {(char)('A' + it.answer), 0};
        const char *row[6] = {it.question, it.choices[0], it.choices[1], it.choices[2],
                              it.choices[3], letter};
        if (s == OC_OK && !oc_csv_write_row(f, row, 6))
            s = oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    }
    if (fclose(f) != 0 && s == OC_OK)
        s = oc_err(OC_ERR_NOMEM, "%s: out of memory", name);
    if (s == OC_OK)
        s = oc_out_dir_write(d, name, buf, len);
    free(buf);
    return s;
}

oc_status oc_shapes_write_mmlu(const oc_shapes_params *p, oc_out_dir *d, const char *dir) {
    const char *split = p->split == OC_SPLIT_TEST ? "test" : p->split == OC_SPLIT_VAL ? "val"
                                                                                      : "train";
    char sub[256];
    snprintf(sub, sizeof sub, "%s/dev", dir);
    OC_TRY(oc_out_dir_mkdir(d, dir));
    OC_TRY(oc_out_dir_mkdir(d, sub));
    snprintf(sub, sizeof sub, "%s/%s", dir, split);
    OC_TRY(oc_out_dir_mkdir(d, sub));
    oc_status s = OC_OK;
    for (int k = 0; s == OC_OK && k < N_SUBJECTS; k++) {
        char name[384];
        /* dev: 5 per subject from the val split's stream, the same whatever is written */
        snprintf(name, sizeof name, "%s/dev/%s_dev.csv", dir, SUBJECTS[k]);
        s = write_csv(d, name, k, OC_SPLIT_VAL, p->seed, 5, 200);
        snprintf(name, sizeof name, "%s/%s/%s_%s.csv", dir, split, SUBJECTS[k], split);
        if (s == OC_OK)
            s = write_csv(d, name, k, p->split, p->seed, p->mmlu_per_subject, 100);
    }
    return s;
}
