/* Errors: a status plus a thread-local sentence. */
#ifndef OC_ERROR_H
#define OC_ERROR_H
#include "ocellus.h"

/* Sets the thread's error sentence (printf format) and returns s, so that callers can
 * write `return oc_err(OC_ERR_FORMAT, "%s: bad header", path);`. */
oc_status oc_err(oc_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current sentence ("model.safetensors: " + old) and returns s. */
oc_status oc_err_prefix(oc_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void oc_log(oc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define OC_TRY(expr)                 \
    do {                             \
        oc_status oc_try_s_ = (expr); \
        if (oc_try_s_ != OC_OK)      \
            return oc_try_s_;        \
    } while (0)

#endif
