/* Stop strings: a suffix of the text that could still become a stop string is held back,
 * so that streamed text never shows part of one, and the first complete match ends it. */
#include "stop.h"

#include <string.h>

void oc_stop_init(oc_stop_filter *f, const char *const *stop, size_t n_stop) {
    memset(f, 0, sizeof *f);
    f->stop = stop;
    f->n_stop = stop ? n_stop : 0;
}

void oc_stop_free(oc_stop_filter *f) { oc_sb_free(&f->text); }

/* Earliest start (>= from) of a complete stop string in text, or len when none. */
static size_t first_match(const oc_stop_filter *f, size_t from) {
    size_t best = f->text.len;
    for (size_t i = 0; i < f->n_stop; i++) {
        size_t k = strlen(f->stop[i]);
        if (!k || f->text.len - from < k)
            continue;
        const char *hit = memmem(f->text.data + from, f->text.len - from, f->stop[i], k);
        if (hit && (size_t)(hit - f->text.data) < best)
            best = (size_t)(hit - f->text.data);
    }
    return best;
}

/* Length of the longest suffix of text[from:] that is a proper prefix of a stop string. */
static size_t held(const oc_stop_filter *f, size_t from) {
    size_t avail = f->text.len - from, best = 0;
    for (size_t i = 0; i < f->n_stop; i++) {
        size_t k = strlen(f->stop[i]);
        if (!k)
            continue;
        for (size_t h = (k - 1 < avail ? k - 1 : avail); h > best; h--)
            if (!memcmp(f->text.data + f->text.len - h, f->stop[i], h)) {
                best = h;
                break;
            }
    }
    return best;
}

int oc_stop_push(oc_stop_filter *f, const char *piece, size_t n, size_t *from, size_t *to) {
    *from = *to = f->sent;
    if (f->matched)
        return 1;
    oc_sb_putn(&f->text, piece, n);
    if (f->text.failed)
        return 0;
    /* a match starts at or after sent: nothing that could begin one was released */
    size_t m = first_match(f, f->sent);
    if (m < f->text.len) {
        f->text.len = m;
        f->text.data[m] = 0;
        f->matched = 1;
        *to = f->sent = m;
        return 1;
    }
    *to = f->sent = f->text.len - held(f, f->sent);
    return 0;
}

void oc_stop_flush(oc_stop_filter *f, size_t *from, size_t *to) {
    *from = f->sent;
    *to = f->sent = f->text.len;
}
