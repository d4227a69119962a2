/* JSON helpers over cJSON: load a file, read typed fields with errors naming the file. */
#ifndef OC_JSON_H
#define OC_JSON_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "ocellus.h"

/* Parses path (at most max_size bytes) into *out; caller frees with cJSON_Delete. */
oc_status oc_json_load(const char *path, size_t max_size, cJSON **out);
oc_status oc_json_parse(const char *text, size_t len, const char *name, cJSON **out);

/* Object member lookup (case-sensitive); NULL if absent or obj is not an object. */
const cJSON *oc_json_get(const cJSON *obj, const char *key);

/* Typed reads. A missing key gives *out = def (or an error when required). A present key
 * of the wrong type or out of [lo, hi] is an error naming file and key. */
oc_status oc_json_int(const cJSON *obj, const char *key, int required, int64_t def,
                      int64_t lo, int64_t hi, const char *file, int64_t *out);
oc_status oc_json_num(const cJSON *obj, const char *key, int required, double def,
                      const char *file, double *out);
oc_status oc_json_bool(const cJSON *obj, const char *key, int def, const char *file,
                       int *out);
/* Borrowed string (NULL if absent and not required). */
oc_status oc_json_str(const cJSON *obj, const char *key, int required, const char *file,
                      const char **out);
#endif
