/* POPE's reading of an answer and its scores (the POPE evaluation script, evaluate.py):
 * only the first sentence counts, commas are removed, and the answer is "no" when one of
 * its space-separated words is "No", "no" or "not" - anything else is a yes. */
#include <string.h>

#include "ocellus.h"

int oc_pope_says_yes(const char *answer) {
    if (!answer)
        return 1;
    size_t n = strcspn(answer, "."); /* text.split('.')[0] */
    const char *p = answer, *end = answer + n;
    /* text.replace(',', '').split(' '): words between single spaces, commas ignored */
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        char w[4];
        size_t k = 0;
        int too_long = 0;
        for (const char *c = p; c < q; c++) {
            if (*c == ',')
                continue;
            if (k == 3) {
                too_long = 1;
                break;
            }
            w[k++] = *c;
        }
        w[k] = 0;
        if (!too_long && (!strcmp(w, "No") || !strcmp(w, "no") || !strcmp(w, "not")))
            return 0;
        p = q + 1;
    }
    return 1;
}
