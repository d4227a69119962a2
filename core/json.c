#include "json.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

oc_status oc_json_parse(const char *text, size_t len, const char *name, cJSON **out) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        return oc_err(OC_ERR_FORMAT, "%s: invalid JSON near byte %zu", name, off);
    }
    *out = j;
    return OC_OK;
}

oc_status oc_json_load(const char *path, size_t max_size, cJSON **out) {
    char *text;
    size_t n;
    OC_TRY(oc_read_file(path, max_size, &text, &n));
    oc_status s = oc_json_parse(text, n, path, out);
    oc_free(text);
    return s;
}

const cJSON *oc_json_get(const cJSON *obj, const char *key) {
    if (!cJSON_IsObject(obj))
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

oc_status oc_json_int(const cJSON *obj, const char *key, int required, int64_t def,
                      int64_t lo, int64_t hi, const char *file, int64_t *out) {
    const cJSON *v = oc_json_get(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: missing \"%s\"", file, key);
        *out = def;
        return OC_OK;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be an integer", file, key);
    if (d < (double)lo || d > (double)hi)
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" = %.17g is out of range [%lld, %lld]", file,
                      key, d, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return OC_OK;
}

oc_status oc_json_num(const cJSON *obj, const char *key, int required, double def,
                      const char *file, double *out) {
    const cJSON *v = oc_json_get(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: missing \"%s\"", file, key);
        *out = def;
        return OC_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be a finite number", file, key);
    *out = v->valuedouble;
    return OC_OK;
}

oc_status oc_json_bool(const cJSON *obj, const char *key, int def, const char *file,
                       int *out) {
    const cJSON *v = oc_json_get(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return OC_OK;
    }
    if (!cJSON_IsBool(v))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be true or false", file, key);
    *out = cJSON_IsTrue(v);
    return OC_OK;
}

oc_status oc_json_str(const cJSON *obj, const char *key, int required, const char *file,
                      const char **out) {
    const cJSON *v = oc_json_get(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return oc_err(OC_ERR_FORMAT, "%s: missing \"%s\"", file, key);
        *out = NULL;
        return OC_OK;
    }
    if (!cJSON_IsString(v))
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be a string", file, key);
    *out = v->valuestring;
    return OC_OK;
}
