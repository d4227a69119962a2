/* ocellus eval's output: the terminal table and the JSON object of a result. */
#ifndef OC_EVAL_OUTPUT_H
#define OC_EVAL_OUTPUT_H
#include "ocellus.h"

/* What the run was, for the headings. */
typedef struct {
    const char *sub;       /* "mcq", "vqa", ... */
    const char *data;      /* the data path (score: the references) */
    const char *predictions;
    const char *metric;    /* score: the metric's name */
    const char *format;    /* mcq: "original" / "harness" */
    uint32_t shots;
    int generate;
} eval_run;

void eval_print_table(const eval_run *run, const oc_eval_result *r);
/* 0 on failure (message printed). */
int eval_print_json(const eval_run *run, const oc_eval_result *r);
#endif
