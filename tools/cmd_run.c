/* ocellus caption / ask / inspect / make-model */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

/* Prints streamed text; the space chat models put first ("Assistant: A cat") is dropped.
 * Stops generation when standard output fails (main reports it). */
static int print_piece(const char *piece, int32_t id, void *user) {
    (void)id;
    int *started = user;
    if (!*started && *piece == ' ')
        piece++;
    *started |= *piece != 0;
    fputs(piece, stdout);
    return cli_interrupted || cli_flush() != 0;
}

static int stop_only(const char *piece, int32_t id, void *user) {
    (void)piece;
    (void)id;
    (void)user;
    return cli_interrupted;
}

static double ms1(double ms) { return round(ms * 10) / 10; } /* to 0.1 ms */

/* A label that is not UTF-8 (a file name in another encoding) shows U+FFFD in the JSON;
 * say so rather than change it silently. */
static cJSON *json_label(const char *cmd, const char *what, const char *s) {
    size_t bad = 0;
    cJSON *j = cli_json_bytes(s, strlen(s), &bad);
    if (bad)
        fprintf(stderr, "ocellus %s: warning: the %s \"%s\" is not UTF-8; the JSON shows "
                "U+FFFD for %zu byte%s\n", cmd, what, s, bad, bad == 1 ? "" : "s");
    return j;
}

static int print_json_answer(const char *cmd, const char *image, const char *question,
                             const oc_answer *a) {
    cJSON *o = cJSON_CreateObject(), *toks = cJSON_CreateArray();
    int ok = o && toks;
    ok = ok && cli_json_add(o, "image", image ? json_label(cmd, "image name", image)
                                               : cJSON_CreateNull());
    ok = ok && cli_json_add(o, "question", json_label(cmd, "question", question));
    ok = ok && cli_json_add(o, "text", cli_json_str(a->text ? a->text : ""));
    for (size_t i = 0; ok && i < a->n_tokens; i++)
        ok = cJSON_AddItemToArray(toks, cJSON_CreateNumber(a->tokens[i]));
    ok = ok && cli_json_add(o, "tokens", toks);
    toks = NULL;
    ok = ok && cJSON_AddBoolToObject(o, "stopped_by_eos", a->stopped_by_eos) &&
         cJSON_AddNumberToObject(o, "prompt_tokens", a->timings.prompt_tokens) &&
         cJSON_AddNumberToObject(o, "image_tiles", a->timings.n_tiles) &&
         cJSON_AddNumberToObject(o, "image_ms", ms1(a->timings.image_ms)) &&
         cJSON_AddNumberToObject(o, "prompt_ms", ms1(a->timings.prompt_ms)) &&
         cJSON_AddNumberToObject(o, "gen_ms", ms1(a->timings.gen_ms));
    cJSON_Delete(toks);
    return cli_json_print(o, ok);
}

/* Runs one question over images and prints the answer; returns the exit code. */
static int answer(const char *cmd, const oc_model *m, const cli_gen_opts *o,
                  oc_image **imgs, size_t n, const char *label, const char *question) {
    oc_gen_params gp = o->gen;
    int stream = o->stream < 0 ? isatty(STDOUT_FILENO) && !o->json : o->stream && !o->json;
    int started = 0;
    gp.on_token = stream ? print_piece : stop_only;
    gp.user_data = &started;
    oc_answer a;
    oc_status s = oc_ask(m, (const oc_image *const *)imgs, n, question, &gp, &a);
    if (s != OC_OK && s != OC_ERR_CANCELLED)
        return cli_fail(cmd, s);
    int rc = 0;
    if (o->json)
        rc = print_json_answer(cmd, label, question, &a) ? 2 + OC_ERR_NOMEM : 0;
    else if (stream)
        putchar('\n');
    else
        printf("%s\n", a.text[0] == ' ' ? a.text + 1 : a.text);
    int out_failed = cli_flush() != 0;
    oc_answer_free(&a);
    if (out_failed)
        return 2 + OC_ERR_IO; /* main says what failed */
    if (s == OC_ERR_CANCELLED) {
        fprintf(stderr, "ocellus %s: interrupted\n", cmd);
        return 2 + OC_ERR_CANCELLED;
    }
    return rc;
}

static int load_image(const char *cmd, const cli_gen_opts *o, const char *path,
                      oc_image **img) {
    oc_image_limits lim = cli_image_limits(o);
    oc_status s = oc_image_load(path, &lim, img);
    return s == OC_OK ? 0 : cli_fail(cmd, s);
}

static const char CAPTION_HELP[] =
    "usage: ocellus caption IMAGE... [options]\n"
    "Describes each image (\"-\" reads one from standard input).\n\n";

int cmd_caption(int argc, char **argv) {
    const char *cmd = "caption";
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    char **paths = calloc((size_t)argc, sizeof *paths);
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", CAPTION_HELP, CLI_GEN_HELP);
            free(paths);
            return 0;
        }
        int r = cli_gen_option(cmd, &o, argc, argv, &i);
        if (r < 0) {
            free(paths);
            return CLI_USAGE;
        }
        if (r == 0) {
            if (argv[i][0] == '-' && argv[i][1]) {
                cli_usage(cmd, "unknown option %s", argv[i]);
                free(paths);
                return CLI_USAGE;
            }
            paths[n++] = argv[i];
        }
    }
    if (n == 0) {
        cli_usage(cmd, "no image given");
        free(paths);
        return CLI_USAGE;
    }
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    cli_install_sigint();
    cli_progress_on_terminal(&o);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        oc_image *img = NULL;
        rc = load_image(cmd, &o, paths[i], &img);
        if (rc == 0 && n > 1 && !o.json)
            printf("%s: ", paths[i]);
        if (rc == 0)
            rc = answer(cmd, m, &o, &img, 1, paths[i], "Describe this image.");
        oc_image_free(img);
    }
    oc_model_free(m);
    free(paths);
    return rc;
}

static const char ASK_HELP[] =
    "usage: ocellus ask [IMAGE...] QUESTION [options]\n"
    "Answers QUESTION about the images, all in one prompt (\"-\" reads an image from\n"
    "standard input).\n\n";

int cmd_ask(int argc, char **argv) {
    const char *cmd = "ask";
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    char **pos = calloc((size_t)argc, sizeof *pos);
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", ASK_HELP, CLI_GEN_HELP);
            free(pos);
            return 0;
        }
        int r = cli_gen_option(cmd, &o, argc, argv, &i);
        if (r < 0) {
            free(pos);
            return CLI_USAGE;
        }
        if (r == 0) {
            if (argv[i][0] == '-' && argv[i][1]) {
                cli_usage(cmd, "unknown option %s", argv[i]);
                free(pos);
                return CLI_USAGE;
            }
            pos[n++] = argv[i];
        }
    }
    if (n == 0) {
        cli_usage(cmd, "no question given");
        free(pos);
        return CLI_USAGE;
    }
    size_t n_img = n - 1;
    oc_image **imgs = calloc(n_img + 1, sizeof *imgs);
    oc_model *m = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_img; i++)
        rc = load_image(cmd, &o, pos[i], &imgs[i]);
    if (rc == 0)
        rc = cli_load_model(cmd, &o, &m);
    cli_install_sigint();
    cli_progress_on_terminal(&o);
    if (rc == 0)
        rc = answer(cmd, m, &o, imgs, n_img, n_img == 1 ? pos[0] : NULL, pos[n - 1]);
    for (size_t i = 0; i < n_img; i++)
        oc_image_free(imgs[i]);
    free(imgs);
    oc_model_free(m);
    free(pos);
    return rc;
}

static const char INSPECT_HELP[] =
    "usage: ocellus inspect --model DIR --image IMAGE [--image IMAGE...] --prompt TEXT\n"
    "                       --dump OUT.safetensors [--pixel-values FILE:TENSOR]\n"
    "Runs one forward pass and writes pixel_values, input_ids, vision_last_hidden_state\n"
    "(LLaVA: vision_hidden_states_m2), image_hidden_states, text_hidden_states_last and\n"
    "logits, named as in transformers reference dumps. --pixel-values feeds pixel values\n"
    "[tiles,3,S,S] from a safetensors file instead of preprocessing the image.\n";

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect", *prompt = NULL, *dump = NULL, *pv = NULL;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    char **paths = calloc((size_t)argc, sizeof *paths);
    size_t n = 0;
    int rc = 0;
    for (int i = 1; rc == 0 && i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", INSPECT_HELP);
            free(paths);
            return 0;
        }
        if (!strcmp(a, "--image") || !strcmp(a, "--prompt") || !strcmp(a, "--dump") ||
            !strcmp(a, "--pixel-values")) {
            const char *v = cli_value(cmd, argc, argv, &i);
            if (!v)
                rc = CLI_USAGE;
            else if (!strcmp(a, "--image"))
                paths[n++] = (char *)v;
            else if (!strcmp(a, "--prompt"))
                prompt = v;
            else if (!strcmp(a, "--dump"))
                dump = v;
            else
                pv = v;
            continue;
        }
        int r = cli_gen_option(cmd, &o, argc, argv, &i);
        if (r <= 0) {
            if (r == 0)
                cli_usage(cmd, "unknown argument %s", a);
            rc = CLI_USAGE;
        }
    }
    if (rc == 0 && (!prompt || !dump))
        rc = (cli_usage(cmd, "--prompt and --dump are required"), CLI_USAGE);
    oc_inspect_params ip = {0};
    char *pv_copy = pv ? strdup(pv) : NULL;
    if (rc == 0 && pv) {
        char *colon = strrchr(pv_copy, ':');
        if (!colon || colon == pv_copy || !colon[1])
            rc = (cli_usage(cmd, "--pixel-values expects FILE:TENSOR"), CLI_USAGE);
        else {
            *colon = 0;
            ip.pixel_values_file = pv_copy;
            ip.pixel_values_tensor = colon + 1;
        }
    }
    oc_image **imgs = calloc(n + 1, sizeof *imgs);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = load_image(cmd, &o, paths[i], &imgs[i]);
    oc_model *m = NULL;
    if (rc == 0)
        rc = cli_load_model(cmd, &o, &m);
    if (rc == 0) {
        oc_status s = oc_inspect(m, (const oc_image *const *)imgs, n, prompt, &ip, dump);
        rc = s == OC_OK ? 0 : cli_fail(cmd, s);
        if (rc == 0)
            fprintf(stderr, "ocellus inspect: wrote %s\n", dump);
    }
    for (size_t i = 0; i < n; i++)
        oc_image_free(imgs[i]);
    free(imgs);
    free(pv_copy);
    free(paths);
    oc_model_free(m);
    return rc;
}

static const char MAKE_MODEL_HELP[] =
    "usage: ocellus make-model --preset NAME --out DIR [--dtype BF16|F16|F32] [--seed S]\n"
    "Writes a model folder with random weights and the exact shapes of a published model,\n"
    "for benchmarks. Presets: smolvlm-256m (SmolVLM-256M-Instruct), smolvlm-tiny.\n";

int cmd_make_model(int argc, char **argv) {
    const char *cmd = "make-model", *preset = NULL, *out = NULL, *dtype = "BF16";
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", MAKE_MODEL_HELP);
            return 0;
        }
        if (!(v = cli_value(cmd, argc, argv, &i)))
            return CLI_USAGE;
        if (!strcmp(a, "--preset"))
            preset = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--dtype"))
            dtype = v;
        else if (!strcmp(a, "--seed")) {
            if (!cli_u64(cmd, a, v, &seed))
                return CLI_USAGE;
        } else
            return cli_usage(cmd, "unknown option %s", a), CLI_USAGE;
    }
    if (!preset || !out)
        return cli_usage(cmd, "--preset and --out are required"), CLI_USAGE;
    oc_status s = oc_write_random_model(preset, dtype, seed, out);
    return s == OC_OK ? 0 : cli_fail(cmd, s);
}
