/* Pieces shared by the exam loops: result bookkeeping, the per-item report, images. */
#ifndef OC_EVAL_INTERNAL_H
#define OC_EVAL_INTERNAL_H
#include <stddef.h>

#include "exam.h"
#include "ocellus.h"

/* Adds one scored item to the whole and to its group (NULL: none). pope_pred and
 * pope_label: 1 yes, 0 no, -1 not a POPE item. */
oc_status oc_res_add(oc_eval_result *r, const char *group, double score, int correct,
                     int pope_pred, int pope_label);
/* accuracy, macro_accuracy, POPE's ratios from the counts. */
void oc_res_finish(oc_eval_result *r);
/* Starts a result: zeroed, task set, the clock started. */
void oc_res_start(oc_eval_result *r, oc_eval_task task);
/* Hands an item to params->on_item (with the running result); OC_ERR_CANCELLED when the
 * callback asks to stop. */
oc_status oc_res_report(oc_eval_result *r, const oc_eval_params *p, oc_eval_item *item);
/* Stops the clock. */
void oc_res_stop(oc_eval_result *r);

/* Jobs of several ranks (params.dist after oc_dist_init): the ranks taking part (1: this
 * process alone), this rank's block [*lo, *hi) of n items, and the agreement on a status
 * (collective; st itself alone). */
int oc_res_ranks(const oc_eval_params *p);
void oc_res_span(const oc_eval_params *p, size_t n, size_t *lo, size_t *hi);
oc_status oc_res_agree(const oc_eval_params *p, oc_status st);
/* Every rank's counts summed into *r, on every rank (collective; st: this rank's status,
 * agreed first). Returns the agreed status: OC_ERR_CANCELLED when any rank was stopped
 * (the counts then of the items scored); alone st. */
oc_status oc_res_merge(oc_eval_result *r, const oc_eval_params *p, oc_status st);

/* "FILE:LINE" of an item without an id, in buf. */
const char *oc_item_name(const oc_exam *e, const oc_exam_item *it, char *buf, size_t cap);

/* The images of an item, loaded once for consecutive items that name the same files. */
typedef struct {
    oc_image **images;
    char **paths;
    size_t n;
    uint64_t key;       /* changes whenever the images do (1, 2, ...) */
} oc_item_images;

oc_status oc_item_images_get(oc_item_images *c, const oc_exam_item *it,
                             const oc_image_limits *limits);
void oc_item_images_free(oc_item_images *c);

double oc_eval_now(void);
#endif
