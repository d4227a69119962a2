/* JSON output with valid UTF-8 (see cli_json.h). */
#include "cli_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

cJSON *cli_json_text(const char *s) {
    if (!s)
        return cJSON_CreateNull();
    size_t n = strlen(s);
    char *v = malloc(3 * n + 1);
    if (!v)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i);
        if (k) {
            memcpy(v + o, s + i, k);
            o += k, i += k;
        } else {
            memcpy(v + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3, i++;
        }
    }
    v[o] = 0;
    cJSON *j = cJSON_CreateString(v);
    free(v);
    return j;
}

int cli_json_add_text(cJSON *obj, const char *key, const char *text) {
    cJSON *k = cli_json_text(key), *v = cli_json_text(text);
    int ok = k && v && cJSON_IsString(k) && cJSON_AddItemToObject(obj, k->valuestring, v);
    if (!ok)
        cJSON_Delete(v);
    cJSON_Delete(k);
    return ok;
}

int cli_json_print(const char *cmd, cJSON *obj) {
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) {
        fprintf(stderr, "ocellus %s: out of memory building the JSON output\n", cmd);
        return 0;
    }
    puts(text);
    free(text);
    return 1;
}
