/* JSON output of the command line: every object is built with cJSON, and every string
 * goes through cli_json_bytes, so that a byte that is not UTF-8 (a file name, a token
 * piece) never reaches the output raw and a NUL inside a text is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (k == 0 || n < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||
        (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return k;
}

/* The segment s[0..n) (no NUL) as the inside of a JSON string literal, appended to out
 * (cJSON's escaping); 0 when out of memory. */
static int append_escaped(char **out, size_t *len, const char *s, size_t n) {
    char *seg = malloc(n + 1);
    if (!seg)
        return 0;
    memcpy(seg, s, n);
    seg[n] = 0;
    cJSON *j = cJSON_CreateString(seg);
    free(seg);
    char *lit = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!lit)
        return 0;
    size_t m = strlen(lit) - 2; /* without the quotes */
    char *o = realloc(*out, *len + m + 8);
    if (!o) {
        cJSON_free(lit);
        return 0;
    }
    memcpy(o + *len, lit + 1, m);
    *len += m;
    *out = o;
    cJSON_free(lit);
    return 1;
}

cJSON *cli_json_bytes(const char *s, size_t n, size_t *replaced) {
    /* valid UTF-8 first: each byte that is not part of a valid sequence becomes U+FFFD */
    char *u = malloc(3 * n + 1);
    if (!u)
        return NULL;
    size_t m = 0, bad = 0, nuls = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0) {
            memcpy(u + m, "\xEF\xBF\xBD", 3);
            m += 3;
            bad++;
            i++;
        } else {
            memcpy(u + m, p + i, k);
            m += k;
            nuls += p[i] == 0;
            i += k;
        }
    }
    u[m] = 0;
    if (replaced)
        *replaced = bad;
    if (nuls == 0) {
        cJSON *j = cJSON_CreateString(u);
        free(u);
        return j;
    }
    /* cJSON's strings end at a NUL: join the escaped pieces with \u0000 by hand */
    char *lit = malloc(8);
    size_t len = 0;
    int ok = lit != NULL;
    if (ok)
        lit[len++] = '"';
    for (size_t i = 0; ok && i <= m;) {
        size_t e = i;
        while (e < m && u[e])
            e++;
        ok = append_escaped(&lit, &len, u + i, e - i);
        if (ok && e < m) {
            memcpy(lit + len, "\\u0000", 6);
            len += 6;
        }
        i = e + 1;
    }
    cJSON *j = NULL;
    if (ok) {
        lit[len++] = '"';
        lit[len] = 0;
        j = cJSON_CreateRaw(lit);
    }
    free(lit);
    free(u);
    return j;
}

cJSON *cli_json_str(const char *s) { return cli_json_bytes(s, strlen(s), NULL); }

int cli_json_add(cJSON *obj, const char *key, cJSON *value) {
    if (!value)
        return 0;
    if (!obj || !cJSON_AddItemToObject(obj, key, value)) {
        cJSON_Delete(value);
        return 0;
    }
    return 1;
}

int cli_json_print(cJSON *j, int ok) {
    char *text = ok && j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "ocellus: out of memory building the JSON output\n");
        return -1;
    }
    fputs(text, stdout);
    putchar('\n');
    cJSON_free(text);
    return 0;
}

void cli_json_string(const char *s) {
    cJSON *j = cli_json_str(s);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    fputs(text ? text : "null", stdout);
    cJSON_free(text);
    cJSON_Delete(j);
}
