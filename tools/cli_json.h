/* JSON output through cJSON, with byte strings that are not UTF-8 made valid (each bad
 * byte becomes U+FFFD, as Python's errors="replace" does), so that what ocellus prints
 * always parses. */
#ifndef OC_CLI_JSON_H
#define OC_CLI_JSON_H
#include <cjson/cJSON.h>

/* A cJSON string of s (NULL gives JSON null); NULL when out of memory. */
cJSON *cli_json_text(const char *s);
/* Adds key: text to obj (key made valid too); 0 when out of memory. */
int cli_json_add_text(cJSON *obj, const char *key, const char *text);
/* Prints obj on one line of stdout and deletes it; 0 on failure (message printed). */
int cli_json_print(const char *cmd, cJSON *obj);
#endif
