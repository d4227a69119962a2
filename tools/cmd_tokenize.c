/* ocellus tokenize: encode text to ids (with their pieces) or decode ids to text with a
 * tokenizer.json, as Hugging Face tokenizers does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ocellus.h"

static const char HELP[] =
    "usage: ocellus tokenize --tokenizer FILE_OR_DIR [--no-special] [--json] TEXT\n"
    "       ocellus tokenize --tokenizer FILE_OR_DIR [--no-special] [--json] --decode ID...\n"
    "\n"
    "Encodes TEXT (\"-\" reads standard input) with a tokenizer.json and prints the ids\n"
    "and their pieces, or decodes ids (separated by spaces or commas) back to text.\n"
    "\n"
    "options:\n"
    "  --tokenizer PATH   a tokenizer.json, or a model folder holding one\n"
    "  --no-special       encoding: do not add special tokens (BOS...);\n"
    "                     decoding: drop special tokens from the text\n"
    "  --json             print one JSON object: {\"ids\": [...], \"pieces\": [...]}\n"
    "                     or {\"text\": \"...\"}\n"
    "  --decode           the remaining arguments are ids to decode\n"
    "A TEXT that starts with '-' goes after --: ocellus tokenize --tokenizer T -- -1 or 2\n";

static const char *CMD = "tokenize";

#define MAX_STDIN ((size_t)256 << 20)

/* Reads standard input whole (at most MAX_STDIN bytes, the buffer never grown past it);
 * NULL on failure (message printed). */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap)
            break;
        if (cap >= MAX_STDIN) {
            if (fgetc(stdin) == EOF && !ferror(stdin))
                break; /* exactly MAX_STDIN bytes */
            fprintf(stderr, "ocellus %s: standard input is larger than %zu bytes\n", CMD,
                    MAX_STDIN);
            free(buf);
            return NULL;
        }
        char *b2 = realloc(buf, cap * 2);
        if (!b2) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b2;
        cap *= 2;
    }
    if (!buf || ferror(stdin)) {
        fprintf(stderr, "ocellus %s: cannot read standard input\n", CMD);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A piece for a terminal: control characters escaped. */
static void print_piece(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else if (*p < 0x20 || *p == 0x7F)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static int print_ids(const oc_tokenizer *tok, const int32_t *ids, size_t n, int json) {
    if (json) {
        cJSON *o = cJSON_CreateObject(), *jids = cJSON_CreateArray(),
              *pieces = cJSON_CreateArray();
        int ok = o && jids && pieces;
        for (size_t i = 0; ok && i < n; i++) {
            const char *p = oc_token_piece(tok, ids[i]);
            ok = cJSON_AddItemToArray(jids, cJSON_CreateNumber(ids[i])) &&
                 cJSON_AddItemToArray(pieces, p ? cli_json_str(p) : cJSON_CreateNull());
        }
        ok = ok && cli_json_add(o, "ids", jids);
        jids = NULL;
        ok = ok && cli_json_add(o, "pieces", pieces);
        pieces = NULL;
        cJSON_Delete(jids);
        cJSON_Delete(pieces);
        return cli_json_print(o, ok) ? 2 + OC_ERR_NOMEM : 0;
    }
    printf("%zu tokens:", n);
    for (size_t i = 0; i < n; i++)
        printf(" %d", (int)ids[i]);
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        const char *p = oc_token_piece(tok, ids[i]);
        printf("%8d  ", (int)ids[i]);
        print_piece(p ? p : "(none)");
        putchar('\n');
    }
    return 0;
}

static int encode(const oc_tokenizer *tok, const char *arg, int special, int json) {
    size_t len = 0;
    char *owned = NULL;
    const char *text = arg;
    if (!strcmp(arg, "-")) {
        if (!(owned = read_stdin(&len)))
            return 2 + OC_ERR_IO;
        text = owned;
    } else {
        len = strlen(arg);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    oc_status s = oc_tokenize(tok, text, len, special, &ids, &n);
    free(owned);
    if (s != OC_OK)
        return cli_fail(CMD, s);
    int rc = print_ids(tok, ids, n, json);
    oc_free(ids);
    return rc;
}

/* Parses ids from arguments like "1 2 3" or "1,2,3"; 0 on a usage error. */
static int parse_ids(int argc, char **argv, int32_t **out, size_t *n) {
    size_t cap = 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    *n = 0;
    for (int a = 0; ids && a < argc; a++) {
        const char *p = argv[a];
        while (*p) {
            if (*p == ',' || *p == ' ') {
                p++;
                continue;
            }
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < INT32_MIN || v > INT32_MAX ||
                (*end && *end != ',' && *end != ' ')) {
                free(ids);
                return cli_usage(CMD, "--decode expects integer ids, not '%s'", argv[a]);
            }
            if (*n == cap) {
                int32_t *i2 = realloc(ids, 2 * cap * sizeof *ids);
                if (!i2)
                    break;
                ids = i2;
                cap *= 2;
            }
            ids[(*n)++] = (int32_t)v;
            p = end;
        }
    }
    if (!ids) {
        fprintf(stderr, "ocellus %s: out of memory\n", CMD);
        return 0;
    }
    *out = ids;
    return 1;
}

static int decode(const oc_tokenizer *tok, int argc, char **argv, int keep_special, int json) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (!parse_ids(argc, argv, &ids, &n))
        return CLI_USAGE;
    char *text = NULL;
    size_t len = 0;
    oc_status s = oc_detokenize_bytes(tok, ids, n, keep_special, &text, &len);
    free(ids);
    if (s != OC_OK)
        return cli_fail(CMD, s);
    int rc = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        int ok = cli_json_add(o, "text", cli_json_bytes(text, len, NULL));
        rc = cli_json_print(o, ok) ? 2 + OC_ERR_NOMEM : 0;
    } else {
        /* the bytes as they are, NULs included */
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    oc_free(text);
    return rc;
}

static const struct option TOKENIZE_OPTIONS[] = {
    {"tokenizer", required_argument, NULL, CLI_OPT_LONG},
    {"no-special", no_argument, NULL, CLI_OPT_LONG},
    {"json", no_argument, NULL, CLI_OPT_LONG},
    {"decode", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL;
    int special = 1, json = 0, decoding = 0, n_ids = 0;
    char **ids = NULL;
    const struct option *tables[] = {TOKENIZE_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, CMD, argc, argv, tables) != 0)
        return cli_fail(CMD, OC_ERR_INTERNAL);
    for (int k; !decoding && (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag;
        if (k == CLI_OPT_ERROR) {
            return CLI_USAGE;
        } else if (k == CLI_OPT_HELP) {
            fputs(HELP, stdout);
            return 0;
        } else if (k == CLI_OPT_ARG) {
            if (text) {
                cli_usage(CMD, "give the text as one argument (quote it), or '-' for stdin");
                return CLI_USAGE;
            }
            text = p.arg;
        } else if (!strcmp(a, "--tokenizer")) {
            path = p.arg;
        } else if (!strcmp(a, "--no-special")) {
            special = 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else { /* --decode: the rest are ids, negative ones too */
            decoding = 1;
            ids = cli_parser_rest(&p, &n_ids);
        }
    }
    if (!path) {
        cli_usage(CMD, "--tokenizer is required");
        return CLI_USAGE;
    }
    if (decoding ? text != NULL : text == NULL) {
        cli_usage(CMD, decoding ? "give either TEXT or --decode IDS, not both"
                                      : "nothing to encode: give TEXT, '-' or --decode IDS");
        return CLI_USAGE;
    }
    oc_tokenizer *tok = NULL;
    oc_status s = oc_tokenizer_load(path, &tok);
    if (s != OC_OK)
        return cli_fail(CMD, s);
    int rc = decoding ? decode(tok, n_ids, ids, special, json)
                            : encode(tok, text, special, json);
    oc_tokenizer_free(tok);
    return rc;
}
