/* Exam files (data/exam_read.c, data/mmlu_read.c) and the metrics on what they hold:
 * the input is read as a JSONL exam of every kind and as an MMLU CSV file, and the texts
 * of each item go through the VQA normalisation and accuracy, the COCO tokenization,
 * BLEU/CIDEr-D and POPE's reading. */
#include <stdlib.h>
#include <string.h>

#include "exam.h"
#include "fuzz_util.h"
#include "ocellus.h"

static void metrics(const oc_exam *e) {
    for (size_t i = 0; i < e->n; i++) {
        const oc_exam_item *it = &e->items[i];
        const char *pred = it->answer ? it->answer : it->question ? it->question : "";
        if (it->n_answers) {
            double acc;
            fz_check_error(oc_vqa_accuracy(pred, (const char *const *)it->answers,
                                           it->n_answers, &acc), "oc_vqa_accuracy");
            const char *cands[1] = {pred};
            const char *const *refs[1] = {(const char *const *)it->answers};
            size_t nr[1] = {it->n_answers};
            oc_caption_metrics m;
            fz_check_error(oc_caption_metrics_compute(cands, refs, nr, 1, 1, &m, NULL),
                           "oc_caption_metrics_compute");
        }
        char *norm = NULL;
        if (oc_vqa_normalize(pred, &norm) == OC_OK)
            oc_free(norm);
        (void)oc_pope_says_yes(pred);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path(0, "exam.jsonl");
    fz_write(path, data, size);
    for (int kind = OC_EXAM_VQA; kind <= OC_EXAM_REFERENCES; kind++) {
        oc_exam e;
        oc_status s = oc_exam_load(path, (oc_exam_kind)kind, 0, &e);
        fz_check_error(s, "oc_exam_load");
        if (s == OC_OK) {
            metrics(&e);
            oc_exam_free(&e);
        }
    }
    const char *csv = fz_path(1, "x_test.csv");
    fz_write(csv, data, size);
    oc_mmlu_set set;
    oc_status s = oc_mmlu_load(csv, "test", &set);
    fz_check_error(s, "oc_mmlu_load");
    if (s == OC_OK)
        oc_mmlu_free(&set);
    return 0;
}
