/* Stop strings over streamed text: what can be shown now, and where the text ends. */
#ifndef OC_STOP_H
#define OC_STOP_H
#include <stddef.h>

#include "strbuf.h"

typedef struct {
    const char *const *stop; /* borrowed; empty strings are ignored */
    size_t n_stop;
    oc_strbuf text;          /* everything pushed, cut before a matched stop string */
    size_t sent;             /* bytes of text released so far */
    int matched;             /* a stop string was found (text ends before it) */
} oc_stop_filter;

void oc_stop_init(oc_stop_filter *f, const char *const *stop, size_t n_stop);
void oc_stop_free(oc_stop_filter *f);
/* Adds piece (n bytes). The bytes now safe to release are text.data[*from, text.len - held)
 * returned as *from and *to; returns 1 once a stop string has been matched (nothing after
 * it is ever released). An allocation failure sets text.failed. */
int oc_stop_push(oc_stop_filter *f, const char *piece, size_t n, size_t *from, size_t *to);
/* At the end of generation: the held-back rest, [*from, *to). */
void oc_stop_flush(oc_stop_filter *f, size_t *from, size_t *to);
#endif
