/* ocellus eval: exact-match accuracy of a model on question/answer and caption files
 * (the JSONL files `ocellus data shapes` writes, or any of the same shape). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"

static const char EVAL_HELP[] =
    "usage: ocellus eval vqa|captions --data FILE.jsonl [--limit N] [--show-errors N]\n"
    "                    [options]\n"
    "Asks each line's question (vqa: {\"image\", \"question\", \"answer\"}) or asks for a\n"
    "caption (captions: {\"image\", \"caption\"}, prompt \"Describe this image.\") with\n"
    "greedy decoding, and counts exact matches after trimming spaces and a final period\n"
    "and ignoring case. Image paths are relative to the file's folder. Prints the\n"
    "accuracy (and with --json an object with the counts); lines with a \"type\" (as\n"
    "`ocellus data shapes` writes) are also counted per type.\n\n";

#define MAX_TYPES 64

/* Exact matches per question type, in first-seen order. */
typedef struct {
    char *name[MAX_TYPES];
    size_t total[MAX_TYPES], right[MAX_TYPES];
    int n;
} type_counts;

static void type_count(type_counts *t, const char *name, int ok) {
    int i = 0;
    while (i < t->n && strcmp(t->name[i], name) != 0)
        i++;
    if (i == t->n) {
        if (t->n == MAX_TYPES)
            return;
        t->name[t->n++] = strdup(name);
    }
    t->total[i]++;
    t->right[i] += (size_t)ok;
}

static double percent(size_t right, size_t total) {
    return total ? 100.0 * (double)right / (double)total : 0;
}

static void print_result(const char *task, const char *data, size_t right, size_t total,
                         const type_counts *t, int json) {
    if (json) {
        printf("{\"task\": \"%s\", \"data\": \"%s\", \"total\": %zu, \"correct\": %zu, "
               "\"accuracy\": %.2f", task, data, total, right, percent(right, total));
        if (t->n) {
            printf(", \"types\": {");
            for (int i = 0; i < t->n; i++)
                printf("%s\"%s\": {\"total\": %zu, \"correct\": %zu}", i ? ", " : "",
                       t->name[i], t->total[i], t->right[i]);
            printf("}");
        }
        printf("}\n");
        return;
    }
    printf("%s: %zu of %zu exact (%.2f%%)\n", task, right, total, percent(right, total));
    for (int i = 0; i < t->n; i++)
        printf("  %-14s %zu of %zu (%.2f%%)\n", t->name[i], t->right[i], t->total[i],
               percent(t->right[i], t->total[i]));
}

/* Trimmed, lowercased copy without a final period. */
static char *normalise(const char *s) {
    while (isspace((unsigned char)*s))
        s++;
    char *d = strdup(s);
    size_t n = strlen(d);
    while (n > 0 && (isspace((unsigned char)d[n - 1]) || d[n - 1] == '.'))
        d[--n] = 0;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)d[i]);
    return d;
}

static char *dir_of(const char *path) {
    char *d = strdup(path);
    char *slash = strrchr(d, '/');
    if (slash)
        slash[1] = 0;
    else
        d[0] = 0;
    return d;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval", *data = NULL;
    uint32_t limit = 0, show = 0;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    o.gen.max_tokens = 64;
    o.stream = 0;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("%s%s", EVAL_HELP, CLI_GEN_HELP);
        return argc < 2 ? CLI_USAGE : 0;
    }
    int captions = !strcmp(argv[1], "captions");
    if (!captions && strcmp(argv[1], "vqa"))
        return cli_usage(cmd, "the first argument is vqa or captions"), CLI_USAGE;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--data") || !strcmp(a, "--limit") || !strcmp(a, "--show-errors")) {
            if (!(v = cli_value(cmd, argc, argv, &i)))
                return CLI_USAGE;
            if (!strcmp(a, "--data"))
                data = v;
            else if (!cli_u32(cmd, a, v, !strcmp(a, "--limit") ? &limit : &show))
                return CLI_USAGE;
            continue;
        }
        int r = cli_gen_option(cmd, &o, argc, argv, &i);
        if (r <= 0)
            return r == 0 ? (cli_usage(cmd, "unknown argument %s", a), CLI_USAGE) : CLI_USAGE;
    }
    if (!data)
        return cli_usage(cmd, "--data is required"), CLI_USAGE;
    FILE *f = fopen(data, "r");
    if (!f) {
        fprintf(stderr, "ocellus eval: %s: cannot open\n", data);
        return 2 + OC_ERR_IO;
    }
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    char *dir = dir_of(data), *line = NULL;
    size_t cap = 0, total = 0, right = 0, lineno = 0;
    type_counts types = {.n = 0};
    while (rc == 0 && getline(&line, &cap, f) > 0 && (!limit || total < limit)) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *img = cJSON_GetObjectItem(j, "image");
        const cJSON *q = cJSON_GetObjectItem(j, "question");
        const cJSON *want = cJSON_GetObjectItem(j, captions ? "caption" : "answer");
        if (!cJSON_IsString(img) || !cJSON_IsString(want) || (!captions && !cJSON_IsString(q))) {
            fprintf(stderr, "ocellus eval: %s:%zu: expected \"image\" and \"%s\"%s\n", data,
                    lineno, captions ? "caption" : "answer", captions ? "" : " and \"question\"");
            cJSON_Delete(j);
            rc = 2 + OC_ERR_FORMAT;
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s%s", img->valuestring[0] == '/' ? "" : dir,
                 img->valuestring);
        oc_image *im = NULL;
        oc_status s = oc_image_load(path, NULL, &im);
        oc_answer ans;
        const char *question = captions ? "Describe this image." : q->valuestring;
        if (s == OC_OK)
            s = oc_ask(m, (const oc_image *const *)&im, 1, question, &o.gen, &ans);
        oc_image_free(im);
        if (s != OC_OK) {
            rc = cli_fail(cmd, s);
            cJSON_Delete(j);
            break;
        }
        char *got = normalise(ans.text), *exp = normalise(want->valuestring);
        int ok = !strcmp(got, exp);
        right += ok;
        total++;
        const cJSON *type = cJSON_GetObjectItem(j, "type");
        if (cJSON_IsString(type))
            type_count(&types, type->valuestring, ok);
        if (!ok && show) {
            show--;
            fprintf(stderr, "%s: %s\n  expected: %s\n  got:      %s\n", img->valuestring,
                    question, exp, got);
        }
        free(got);
        free(exp);
        oc_answer_free(&ans);
        cJSON_Delete(j);
    }
    if (rc == 0)
        print_result(argv[1], data, right, total, &types, o.json);
    for (int i = 0; i < types.n; i++)
        free(types.name[i]);
    free(line);
    free(dir);
    fclose(f);
    oc_model_free(m);
    return rc;
}
