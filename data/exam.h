/* Exam files: JSONL question sets and MMLU-layout folders, read whole and checked, so that
 * a bad line is reported ("vqa.jsonl:17: ...") before any model time is spent.
 *
 * JSONL kinds (one object a line; blank lines skipped; paths relative to the file):
 *   VQA        {"image" | "images", "question", "answers": [10 strings, or VQA's
 *              {"answer": ...} objects] | "answer": "..."}
 *   captions   {"image" | "images", "captions" | "references": [...] | "caption": "..."}
 *   image MCQ  {"image" | "images", "question", "choices": [...], "answer": "A"..,
 *              "hint" (optional context)}
 *   POPE       {"image", "question" | "text", "answer" | "label": "yes" | "no",
 *              "category" (random / popular / adversarial)}
 *   texts      FILE.jsonl of {"text": ...}, or any other file: one text a line
 *   predictions  {"id", "prediction" | "answer" | "caption" | "text"}
 *   references   {"id", "references" | "captions" | "answers" | "answer" | "label"}
 * Every kind may carry "id" / "question_id" (a string or an integer) and a group name:
 * "type", "question_type", "category" or "subject". */
#ifndef OC_EXAM_H
#define OC_EXAM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ocellus.h"

typedef enum {
    OC_EXAM_VQA = 0,
    OC_EXAM_CAPTIONS,
    OC_EXAM_IMAGE_MCQ,
    OC_EXAM_POPE,
    OC_EXAM_TEXTS,
    OC_EXAM_PREDICTIONS,
    OC_EXAM_REFERENCES,
} oc_exam_kind;

#define OC_EXAM_MAX_CHOICES 26 /* letters A..Z */

typedef struct {
    size_t line;          /* 1-based line of the file */
    char *id;             /* "id" / "question_id" as text; NULL if absent */
    char *group;          /* type / category / subject; NULL if absent */
    char **images;        /* (n_images) paths resolved against the file's folder */
    size_t n_images;
    char *question;       /* the question (POPE: "text" too); the text (texts) */
    char *hint;           /* image MCQ context; NULL if absent */
    char **choices;       /* (n_choices) image MCQ */
    size_t n_choices;
    char *answer;         /* a single answer: VQA, POPE ("yes"/"no"), MCQ letter,
                             a prediction */
    char **answers;       /* (n_answers) VQA answers, caption references */
    size_t n_answers;
} oc_exam_item;

typedef struct {
    char *path;
    oc_exam_item *items;
    size_t n;
} oc_exam;

/* Reads up to limit items (0: all) of a file of the kind. Errors: OC_ERR_IO (cannot open),
 * OC_ERR_FORMAT "FILE:LINE: what is wrong" (bad JSON, missing or mistyped fields, text
 * that is not UTF-8, an answer letter outside the choices), OC_ERR_LIMIT (a line over
 * 16 MiB). Free with oc_exam_free. */
oc_status oc_exam_load(const char *path, oc_exam_kind kind, size_t limit, oc_exam *out);
void oc_exam_free(oc_exam *e);

/* 1 if s[0:n) is valid UTF-8. */
int oc_utf8_valid(const char *s, size_t n);

/* ---- MMLU layout (mmlu_read.c) ---------------------------------------------------- */

/* One question of a headerless CSV row question,A,B,...,answer (as the MMLU release and
 * pandas.read_csv(header=None) read it: RFC 4180 quoting, fields taken verbatim). */
typedef struct {
    char *question;
    char **choices;       /* (n_choices), 2..26 */
    size_t n_choices;
    int answer;           /* 0.. for "A".. */
    size_t row;           /* 1-based row of its file */
} oc_mmlu_question;

typedef struct {
    char *name;           /* "abstract_algebra" */
    char *path;           /* the questions' file */
    oc_mmlu_question *dev;    /* few-shot examples: dev/NAME_dev.csv, in file order */
    size_t n_dev;
    oc_mmlu_question *items;  /* the split's questions */
    size_t n_items;
} oc_mmlu_subject;

typedef struct {
    oc_mmlu_subject *subjects; /* sorted by name, as the MMLU evaluation lists them */
    size_t n;
} oc_mmlu_set;

/* path: an MMLU data folder (SPLIT/NAME_SPLIT.csv for every subject, dev/NAME_dev.csv for
 * the shots; a subject without a dev file gets none), or one NAME_SPLIT.csv file (its
 * shots from ../dev/NAME_dev.csv when present). split: "test", "val" or "dev".
 * Errors name the file and row. Free with oc_mmlu_free. */
oc_status oc_mmlu_load(const char *path, const char *split, oc_mmlu_set *out);
void oc_mmlu_free(oc_mmlu_set *s);

/* Writes one CSV row (RFC 4180: a field is quoted when it holds a comma, a quote, a line
 * break or leading/trailing spaces) to f; returns 0 on a write error. */
int oc_csv_write_row(FILE *f, const char *const *fields, size_t n);
#endif
