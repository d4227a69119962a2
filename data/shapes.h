/* The built-in synthetic visual world: scenes of 1-4 coloured shapes on a plain
 * background, rendered to RGB, with a caption in a fixed grammar, one-word questions and
 * answers, and multiple-choice items. Everything is a pure function of (split, seed,
 * index), so a dataset is reproducible from its command line.
 *
 * Layout: the image is a 3 x 3 grid of cells; each object sits in its own cell (with a
 * small jitter that never leaves the cell), so objects never overlap and "left of" /
 * "above" are decided by cell columns / rows, never by a pixel or two.
 *
 * Splits: a scene's key is its discrete content (background, and each object's cell,
 * shape, colour and size; not jitter or noise). The key's hash, independent of the seed,
 * assigns the split (80% train, 10% val, 10% test); a scene drawn for one split whose key
 * belongs to another is rejected and drawn again. So train, val and test never share a
 * scene, whatever seeds they were made with. */
#ifndef OC_SHAPES_H
#define OC_SHAPES_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"
#include "output.h"
#include "rng.h"

#define OC_SHAPES_MAX_OBJECTS 4
#define OC_SHAPES_GRID 3
#define OC_SHAPES_MIN_SIZE 32   /* smallest image side that still shows small stars */
#define OC_SHAPES_MAX_SIZE 1024
#define OC_SCENE_TEXT_MAX 256   /* captions, questions, choices (with the NUL) */
#define OC_SCENE_MAX_QA 128     /* bound on the questions one scene can have */

typedef enum {
    OC_SHAPE_CIRCLE = 0,
    OC_SHAPE_SQUARE,
    OC_SHAPE_TRIANGLE,
    OC_SHAPE_STAR,
    OC_SHAPE_CROSS,
    OC_N_SHAPES
} oc_shape_kind;

typedef enum {
    OC_COLOUR_RED = 0,
    OC_COLOUR_GREEN,
    OC_COLOUR_BLUE,
    OC_COLOUR_YELLOW,
    OC_COLOUR_PURPLE,
    OC_COLOUR_ORANGE,
    OC_N_COLOURS
} oc_colour;

typedef enum { OC_SIZE_SMALL = 0, OC_SIZE_LARGE, OC_N_SIZES } oc_obj_size;

typedef enum { OC_BG_WHITE = 0, OC_BG_GREY, OC_BG_BLACK, OC_N_BACKGROUNDS } oc_background;

/* Relation between consecutive objects of the canonical order. */
typedef enum { OC_REL_LEFT_OF = 0, OC_REL_ABOVE } oc_relation;

typedef struct {
    uint8_t shape, colour, size; /* oc_shape_kind, oc_colour, oc_obj_size */
    uint8_t col, row;            /* grid cell: 0..2 left to right, top to bottom */
    int8_t jx, jy;               /* offset in the cell, in hundredths of the free room */
} oc_shape_obj;

typedef struct {
    uint8_t background;          /* oc_background */
    uint8_t noise;               /* amplitude of the background's grey noise (8-bit levels) */
    uint64_t noise_seed;
    uint32_t n;                  /* 1..OC_SHAPES_MAX_OBJECTS */
    oc_shape_obj obj[OC_SHAPES_MAX_OBJECTS]; /* canonical order: by column, then row */
} oc_scene;

/* Names as they appear in captions and answers ("circle", "circles", "red", "large",
 * "grey"); NULL for an out-of-range value. */
const char *oc_shape_name(int shape);
const char *oc_shape_plural(int shape);
const char *oc_colour_name(int colour);
const char *oc_size_name(int size);
const char *oc_background_name(int bg);
/* Index of a name, or -1. */
int oc_shape_parse(const char *s, size_t n);
int oc_colour_parse(const char *s, size_t n);
int oc_size_parse(const char *s, size_t n);
int oc_background_parse(const char *s, size_t n);
/* The 8-bit RGB of an object colour and of a background. */
void oc_colour_rgb(int colour, uint8_t rgb[3]);
void oc_background_rgb(int bg, uint8_t rgb[3]);

/* ---- scenes (shapes.c) ----------------------------------------------------------- */

/* Checks a hand-built scene (ranges, distinct cells) and sorts its objects into the
 * canonical order. */
oc_status oc_scene_canonicalize(oc_scene *s);
/* Hash of the scene's key (see above); the same on every platform. */
uint64_t oc_scene_key_hash(const oc_scene *s);
/* The split the scene's key belongs to. */
oc_split oc_scene_split(const oc_scene *s);
/* 1 if a and b have the same key. */
int oc_scene_same_key(const oc_scene *a, const oc_scene *b);
/* Scene number index of a split for a seed. */
oc_status oc_scene_generate(oc_split split, uint64_t seed, uint64_t index, oc_scene *out);
/* The relation between objects i and i + 1 of the canonical order. */
oc_relation oc_scene_relation(const oc_scene *s, uint32_t i);

/* ---- rendering (shapes_render.c) --------------------------------------------------- */

/* rgb (size, size, 3) = the scene drawn with 4x4 supersampled edges. Integer geometry,
 * so the bytes are the same on every platform. */
oc_status oc_scene_render(const oc_scene *s, uint32_t size, uint8_t *rgb);
/* The pixel holding the centre of object i when drawn at size. */
void oc_scene_object_pixel(const oc_scene *s, uint32_t i, uint32_t size, uint32_t *x,
                           uint32_t *y);

/* ---- captions (shapes_caption.c) -------------------------------------------------- */

/* What a caption says: the objects in canonical order, the relation between each and the
 * next, the background. Two scenes have the same caption iff their descriptions match. */
typedef struct {
    uint32_t n;
    uint8_t shape[OC_SHAPES_MAX_OBJECTS], colour[OC_SHAPES_MAX_OBJECTS],
        size[OC_SHAPES_MAX_OBJECTS];
    uint8_t rel[OC_SHAPES_MAX_OBJECTS - 1]; /* oc_relation */
    uint8_t background;
} oc_caption_desc;

void oc_scene_describe(const oc_scene *s, oc_caption_desc *out);
int oc_caption_desc_equal(const oc_caption_desc *a, const oc_caption_desc *b);
/* Writes the caption of a description; buf holds OC_SCENE_TEXT_MAX bytes. Grammar:
 *   caption  := object (relation object){0,3} " on a " BACKGROUND " background"
 *   object   := "a " SIZE " " COLOUR " " SHAPE
 *   relation := " to the left of " | " above "
 * e.g. "a large red circle to the left of a small blue square above a small green
 * triangle on a white background". */
void oc_caption_write(const oc_caption_desc *d, char *buf);
void oc_scene_caption(const oc_scene *s, char *buf);
/* Parses a caption of that grammar (exactly: no extra spaces or words). */
oc_status oc_caption_parse(const char *text, oc_caption_desc *out);

/* ---- questions and answers (shapes_qa.c) ------------------------------------------- */

typedef enum {
    OC_Q_COUNT = 0,      /* How many objects are there? -> "3" */
    OC_Q_COUNT_COLOUR,   /* How many red objects are there? -> "0".."4" */
    OC_Q_COUNT_SHAPE,    /* How many circles are there? -> "0".."4" */
    OC_Q_COLOUR_OF,      /* What colour is the circle? (one circle) -> "red" */
    OC_Q_SHAPE_OF,       /* What shape is the red object? (one red object) -> "circle" */
    OC_Q_EXISTS,         /* Is there a red circle? -> "yes" / "no" */
    OC_Q_LEFT_OF,        /* Is the red circle to the left of the blue square? */
    OC_Q_ABOVE,          /* Is the red circle above the blue square? */
    OC_Q_SIZE_OF,        /* What size is the red circle? -> "small" / "large" */
    OC_Q_BACKGROUND,     /* What colour is the background? -> "white" / "grey" / "black" */
    OC_N_QTYPES
} oc_qtype;

_Static_assert(OC_N_QTYPES == OC_SHAPES_QUESTION_TYPES, "public count of question types");

/* A question whose premise is false (it names an object the scene lacks), drawn at the
 * rate oc_shapes_params.false_premise and not by the weights; its name is
 * oc_shapes_question_type(OC_Q_FALSE_PREMISE), "false_premise". */
#define OC_Q_FALSE_PREMISE OC_N_QTYPES

typedef struct {
    uint8_t type; /* oc_qtype, or OC_Q_FALSE_PREMISE */
    char question[OC_SCENE_TEXT_MAX];
    char answer[48]; /* one word, or "there is no ..." */
} oc_scene_qa;

/* Every question the scene answers unambiguously (an object named by "colour shape" is
 * the only one of its colour and shape; left/above are asked only across columns /
 * rows). out holds OC_SCENE_MAX_QA entries; returns how many were written. */
size_t oc_scene_questions(const oc_scene *s, oc_scene_qa *out);
/* k distinct questions (fewer if the scene has fewer): a type drawn among the scene's
 * types in proportion to weight[type] (NULL: all equal; 0 excludes a type), then an
 * answer drawn uniformly among that type's answers, then a question with that answer,
 * so that "yes" and "no", or 0 and 2, come equally often. */
size_t oc_scene_pick_questions(const oc_scene *s, oc_stream *rng, size_t k,
                               const uint32_t weight[OC_N_QTYPES], oc_scene_qa *out);

/* A question about an object the scene does not have, answered in the world's grammar:
 * "What colour is the star?" -> "there is no star"; "What shape is the red object?" ->
 * "there is no red object"; "What size is the red star?" -> "there is no red star";
 * "Is the red circle to the left of the blue square?" (or "above"; one of the two present
 * and named uniquely, the other absent) -> "there is no blue square". The kind is drawn
 * uniformly among those the scene allows, then the absent object uniformly. */
void oc_scene_false_premise(const oc_scene *s, oc_stream *rng, oc_scene_qa *out);

/* A multiple-choice item: 4 choices, one right. Kinds: which caption describes the image
 * (distractors differ from the true caption in one colour, shape, size, the background,
 * or two neighbours swapped), how many, what colour, what shape. */
typedef struct {
    char question[OC_SCENE_TEXT_MAX];
    char choices[4][OC_SCENE_TEXT_MAX];
    int answer; /* 0..3 = "A".."D" */
    int kind;   /* 0 caption, 1 counting, 2 colour, 3 shape (oc_scene_mc_kind names it) */
} oc_scene_mc;

oc_status oc_scene_make_mc(const oc_scene *s, oc_stream *rng, oc_scene_mc *out);

/* ---- exams (shapes_exams.c) ---------------------------------------------------------
 * The world's questions in the formats of the standard benchmarks. */

/* "caption", "count", "colour", "shape"; NULL out of range. */
const char *oc_scene_mc_kind(int kind);

/* Ten human-like answers to a question, as VQA collects them: each the canonical answer
 * with probability 3/4, else one of the paraphrases the world allows ("2" / "two",
 * "0" / "zero" / "none", "grey" / "gray", "large" / "big", "small" / "little" / "tiny",
 * "cross" / "plus" / "x", "square" / "box", "circle" / "round", "triangle" /
 * "triangular", "purple" / "violet"); yes/no answers have none. Pointers to static or
 * qa's strings. */
#define OC_VQA_ANSWERS 10
void oc_scene_vqa_answers(const oc_scene_qa *qa, oc_stream *rng,
                          const char *out[OC_VQA_ANSWERS]);

/* Five reference captions of a scene: the caption; the objects in reverse order with the
 * relations flipped ("to the right of", "below"); both again with the background first
 * ("on a white background, a ..."); "there is " + the caption. */
#define OC_SCENE_CAPTIONS 5
void oc_scene_captions5(const oc_scene *s, char out[OC_SCENE_CAPTIONS][OC_SCENE_TEXT_MAX]);

/* POPE: "Is there a red circle?" (the world's grammar for POPE's "Is there a X in the
 * image?", which the world's models never saw) for up to 3 objects the scene has (yes) and
 * as many it lacks (no), per way of drawing the absent ones: random (any absent colour and
 * shape), popular (the most frequent objects of the dataset, popular_rank[0] the most
 * frequent of the OC_N_COLOURS * OC_N_SHAPES objects, index colour * OC_N_SHAPES + shape)
 * and adversarial (absent objects that share a colour or a shape with one present: the
 * near misses). Returns the number written to out. */
#define OC_POPE_PER_SCENE 18
typedef struct {
    char question[OC_SCENE_TEXT_MAX];
    int yes;
    int category; /* 0 random, 1 popular, 2 adversarial */
} oc_pope_q;
const char *oc_pope_category(int category);
size_t oc_scene_pope(const oc_scene *s, const uint8_t *popular_rank, oc_stream *rng,
                     oc_pope_q out[OC_POPE_PER_SCENE]);

/* Counts the objects of the scenes 0..n-1 of (split, seed) and ranks them: rank (30)
 * receives object indices, most frequent first (ties to the smaller index). */
oc_status oc_shapes_popularity(oc_split split, uint64_t seed, size_t n, uint8_t *rank);

/* An MMLU-layout folder of text-only questions about the world's rules, written as the
 * subfolder dir of the folder output d: dir/dev/
 * SUBJECT_dev.csv (5 each, the same for every split of a seed) and dir/SPLIT/
 * SUBJECT_SPLIT.csv (per_subject each; "val" for the val split), subjects
 * shapes_geometry (sides, corners and points of the shapes), shapes_rules (which colours,
 * shapes, sizes, backgrounds and how many objects the world has), shapes_captions
 * (reading a caption of a scene of the split: how many objects, which colours) and
 * shapes_relations (where one object of a caption is relative to another). */
oc_status oc_shapes_write_mmlu(const oc_shapes_params *p, oc_out_dir *d, const char *dir);
#endif
