#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];
static oc_log_fn log_fn;
static void *log_user;

const char *oc_status_str(oc_status s) {
    switch (s) {
    case OC_OK: return "OC_OK";
    case OC_ERR_INVALID_ARG: return "OC_ERR_INVALID_ARG";
    case OC_ERR_IO: return "OC_ERR_IO";
    case OC_ERR_FORMAT: return "OC_ERR_FORMAT";
    case OC_ERR_UNSUPPORTED: return "OC_ERR_UNSUPPORTED";
    case OC_ERR_NOMEM: return "OC_ERR_NOMEM";
    case OC_ERR_LIMIT: return "OC_ERR_LIMIT";
    case OC_ERR_CANCELLED: return "OC_ERR_CANCELLED";
    case OC_ERR_INTERNAL: return "OC_ERR_INTERNAL";
    }
    return "OC_ERR_UNKNOWN";
}

const char *oc_last_error(void) { return last_error; }

oc_status oc_err(oc_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

oc_status oc_err_prefix(oc_status s, const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix), m = strlen(old);
    if (n >= sizeof last_error)
        n = sizeof last_error - 1;
    if (m > sizeof last_error - 1 - n)
        m = sizeof last_error - 1 - n;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, old, m);
    last_error[n + m] = 0;
    return s;
}

void oc_set_log_callback(oc_log_fn fn, void *user_data) {
    log_fn = fn;
    log_user = user_data;
}

void oc_log(oc_log_level level, const char *fmt, ...) {
    if (!log_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}
