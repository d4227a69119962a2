/* MMLU prompts, byte for byte.
 * Original (hendrycks/test evaluate.py):
 *   "The following are multiple choice questions (with answers) about" + " word" for each
 *   word of the subject split at "_" + ".\n\n", then per example the question,
 *   "\nA. choice" ..., "\nAnswer:", and after a shot " X\n\n".
 * lm-evaluation-harness (tasks/mmlu/default): the description "... about " + the subject
 *   with "_" as " " + ".\n\n", examples "{question.strip()}\nA. ...\nAnswer:", each shot
 *   followed by " X" (target delimiter) and "\n\n" (few-shot delimiter). */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "ocellus.h"
#include "pytext.h"
#include "strbuf.h"

static const char HEADER[] = "The following are multiple choice questions (with answers) about";

static void example(oc_strbuf *b, oc_mcq_format f, const char *question,
                    const char *const *choices, size_t n_choices, int answer) {
    char *q = f == OC_MCQ_HARNESS ? oc_py_strip(question) : NULL;
    if (f == OC_MCQ_HARNESS && !q) {
        b->failed = 1;
        return;
    }
    oc_sb_puts(b, q ? q : question);
    oc_free(q);
    for (size_t j = 0; j < n_choices; j++)
        oc_sb_printf(b, "\n%c. %s", 'A' + (int)j, choices[j]);
    oc_sb_puts(b, "\nAnswer:");
    if (answer >= 0)
        oc_sb_printf(b, f == OC_MCQ_HARNESS ? " %c" : " %c\n\n", 'A' + answer);
}

oc_status oc_mmlu_prompt(oc_mcq_format format, const char *subject,
                         const char *const *shot_questions,
                         const char *const *const *shot_choices, const int *shot_answers,
                         size_t k, const char *question, const char *const *choices,
                         size_t n_choices, char **out) {
    if (!subject || !question || !choices || !out || (k && (!shot_questions || !shot_choices ||
                                                             !shot_answers)))
        return oc_err(OC_ERR_INVALID_ARG, "oc_mmlu_prompt: NULL argument");
    if (format != OC_MCQ_ORIGINAL && format != OC_MCQ_HARNESS)
        return oc_err(OC_ERR_INVALID_ARG, "oc_mmlu_prompt: unknown format %d", (int)format);
    if (n_choices < 1 || n_choices > 26)
        return oc_err(OC_ERR_INVALID_ARG, "oc_mmlu_prompt: %zu choices", n_choices);
    oc_strbuf b = {0};
    oc_sb_puts(&b, HEADER);
    if (format == OC_MCQ_ORIGINAL) {
        /* format_subject(): " " before every piece of subject.split("_") */
        oc_sb_puts(&b, " ");
        for (const char *p = subject;; p++) {
            const char *us = strchr(p, '_');
            oc_sb_puts(&b, " ");
            oc_sb_putn(&b, p, us ? (size_t)(us - p) : strlen(p));
            if (!us)
                break;
            p = us;
        }
    } else {
        oc_sb_puts(&b, " ");
        for (const char *p = subject; *p; p++)
            oc_sb_putn(&b, *p == '_' ? " " : p, 1);
    }
    oc_sb_puts(&b, ".\n\n");
    for (size_t i = 0; i < k; i++) {
        size_t nc = 0;
        while (shot_choices[i][nc])
            nc++;
        example(&b, format, shot_questions[i], shot_choices[i], nc, shot_answers[i]);
        if (format == OC_MCQ_HARNESS)
            oc_sb_puts(&b, "\n\n");
    }
    example(&b, format, question, choices, n_choices, -1);
    if (b.failed || !b.data) {
        oc_sb_free(&b);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    *out = b.data;
    return OC_OK;
}
