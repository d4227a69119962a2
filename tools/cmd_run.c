/* ocellus caption / ask / inspect / make-model */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    /* the text as printed: without the space SmolVLM's template leaves before an answer
     * (the token ids keep it) */
    const char *text = a->text ? a->text : "";
    ok = ok && cli_json_add(o, "text", cli_json_str(text[0] == ' ' ? text + 1 : text));
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
    "Describes each image (\"-\" reads one from standard input).\n\n"
    "  --image FILE          an image (as IMAGE; may be repeated)\n";

static const char ASK_HELP[] =
    "usage: ocellus ask [IMAGE...] QUESTION [options]\n"
    "       ocellus ask --image IMAGE... -p QUESTION [options]\n"
    "Answers QUESTION about the images, all in one prompt (\"-\" reads an image from\n"
    "standard input).\n\n"
    "  --image FILE          an image (may be repeated; in the prompt in the order given)\n"
    "  -p, --prompt TEXT     the question (then every IMAGE argument is an image)\n";

static const struct option CAPTION_OPTIONS[] = {
    {"image", required_argument, NULL, CLI_OPT_LONG},
    {0},
};
static const struct option ASK_OPTIONS[] = {
    {"image", required_argument, NULL, CLI_OPT_LONG},
    {"prompt", required_argument, NULL, 'p'},
    {0},
};

/* The arguments of caption and ask: the generation options, and the images and
 * positionals in the order given (image[i]: args[i] came from --image). Returns -1 to go
 * on, else the exit code. */
typedef struct {
    cli_gen_opts o;
    char **args, *image;
    size_t n;
    const char *prompt;
} run_args;

static int parse_run(const char *cmd, int argc, char **argv, const struct option *own,
                     const char *help, run_args *r) {
    cli_gen_opts_init(&r->o);
    r->args = calloc((size_t)argc, sizeof *r->args);
    r->image = calloc((size_t)argc, 1);
    if (!r->args || !r->image)
        return cli_fail(cmd, OC_ERR_NOMEM);
    const struct option *tables[] = {own, CLI_GEN_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        if (k == CLI_OPT_ERROR)
            return CLI_USAGE;
        if (k == CLI_OPT_HELP)
            return printf("%s\n%s", help, CLI_GEN_HELP), 0;
        if (k == CLI_OPT_ARG || !strcmp(p.flag, "--image")) {
            r->image[r->n] = k != CLI_OPT_ARG;
            r->args[r->n++] = (char *)p.arg;
        } else if (!strcmp(p.flag, "--prompt")) {
            r->prompt = p.arg;
        } else if (cli_gen_apply(cmd, &r->o, p.flag, p.arg) <= 0) {
            return CLI_USAGE;
        }
    }
    return -1;
}

static void run_args_free(run_args *r) {
    free(r->args);
    free(r->image);
}

int cmd_caption(int argc, char **argv) {
    const char *cmd = "caption";
    run_args ra = {0};
    int rc = parse_run(cmd, argc, argv, CAPTION_OPTIONS, CAPTION_HELP, &ra);
    if (rc >= 0) {
        run_args_free(&ra);
        return rc;
    }
    rc = 0;
    char **paths = ra.args;
    size_t n = ra.n;
    cli_gen_opts o = ra.o;
    if (n == 0) {
        cli_usage(cmd, "no image given");
        run_args_free(&ra);
        return CLI_USAGE;
    }
    oc_model *m = NULL;
    rc = cli_load_model(cmd, &o, &m);
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
    run_args_free(&ra);
    return rc;
}

int cmd_ask(int argc, char **argv) {
    const char *cmd = "ask";
    run_args ra = {0};
    int rc = parse_run(cmd, argc, argv, ASK_OPTIONS, ASK_HELP, &ra);
    if (rc >= 0) {
        run_args_free(&ra);
        return rc;
    }
    rc = 0;
    cli_gen_opts o = ra.o;
    /* the question: -p, else the last argument that is not an --image */
    const char *question = ra.prompt;
    size_t q = ra.n;
    if (!question)
        for (size_t i = ra.n; i-- > 0 && !question;)
            if (!ra.image[i])
                question = ra.args[q = i];
    /* `ask photo.jpg`: a file's name is far likelier a forgotten question than one */
    struct stat st;
    if (question && !ra.prompt && ra.n == 1 && stat(question, &st) == 0 &&
        S_ISREG(st.st_mode)) {
        cli_usage(cmd, "no question given ('%s' is a file: give the question after it, "
                  "or with -p)", question);
        run_args_free(&ra);
        return CLI_USAGE;
    }
    if (!question) {
        cli_usage(cmd, "no question given");
        run_args_free(&ra);
        return CLI_USAGE;
    }
    oc_image **imgs = calloc(ra.n + 1, sizeof *imgs);
    size_t n_img = 0;
    const char *label = NULL;
    for (size_t i = 0; rc == 0 && i < ra.n; i++)
        if (i != q) {
            label = ra.args[i];
            rc = load_image(cmd, &o, ra.args[i], &imgs[n_img++]);
        }
    oc_model *m = NULL;
    if (rc == 0)
        rc = cli_load_model(cmd, &o, &m);
    cli_install_sigint();
    cli_progress_on_terminal(&o);
    if (rc == 0)
        rc = answer(cmd, m, &o, imgs, n_img, n_img == 1 ? label : NULL, question);
    for (size_t i = 0; i < n_img; i++)
        oc_image_free(imgs[i]);
    free(imgs);
    oc_model_free(m);
    run_args_free(&ra);
    return rc;
}

static const char INSPECT_HELP[] =
    "usage: ocellus inspect --model DIR --image IMAGE [--image IMAGE...] -p|--prompt TEXT\n"
    "                       --dump OUT.safetensors [--pixel-values FILE:TENSOR]\n"
    "Runs one forward pass and writes pixel_values, input_ids, vision_last_hidden_state\n"
    "(LLaVA: vision_hidden_states_m2), image_hidden_states, text_hidden_states_last and\n"
    "logits, named as in transformers reference dumps. --pixel-values feeds pixel values\n"
    "[tiles,3,S,S] from a safetensors file instead of preprocessing the image.\n";

static const struct option INSPECT_OPTIONS[] = {
    {"image", required_argument, NULL, CLI_OPT_LONG},
    {"prompt", required_argument, NULL, 'p'},
    {"dump", required_argument, NULL, CLI_OPT_LONG},
    {"pixel-values", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect", *prompt = NULL, *dump = NULL, *pv = NULL;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    char **paths = calloc((size_t)argc, sizeof *paths);
    size_t n = 0;
    int rc = 0;
    const struct option *tables[] = {INSPECT_OPTIONS, CLI_GEN_OPTIONS, NULL};
    cli_parser p;
    if (!paths || cli_parser_init(&p, cmd, argc, argv, tables) != 0) {
        free(paths);
        return cli_fail(cmd, OC_ERR_NOMEM);
    }
    for (int k; rc == 0 && (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag, *v = p.arg;
        if (k == CLI_OPT_ERROR) {
            rc = CLI_USAGE;
        } else if (k == CLI_OPT_HELP) {
            printf("%s", INSPECT_HELP);
            free(paths);
            return 0;
        } else if (k == CLI_OPT_ARG) {
            rc = (cli_usage(cmd, "unexpected argument %s (images are --image FILE)", v),
                  CLI_USAGE);
        } else if (!strcmp(a, "--image")) {
            paths[n++] = (char *)v;
        } else if (!strcmp(a, "--prompt")) {
            prompt = v;
        } else if (!strcmp(a, "--dump")) {
            dump = v;
        } else if (!strcmp(a, "--pixel-values")) {
            pv = v;
        } else if (cli_gen_apply(cmd, &o, a, v) <= 0) {
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

static const struct option MAKE_MODEL_OPTIONS[] = {
    {"preset", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"dtype", required_argument, NULL, CLI_OPT_LONG},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_make_model(int argc, char **argv) {
    const char *cmd = "make-model", *preset = NULL, *out = NULL, *dtype = "BF16";
    uint64_t seed = 0;
    const struct option *tables[] = {MAKE_MODEL_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag, *v = p.arg;
        if (k == CLI_OPT_ERROR)
            return CLI_USAGE;
        if (k == CLI_OPT_HELP) {
            printf("%s", MAKE_MODEL_HELP);
            return 0;
        }
        if (k == CLI_OPT_ARG)
            return cli_usage(cmd, "unexpected argument %s", v), CLI_USAGE;
        if (!strcmp(a, "--preset"))
            preset = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--dtype"))
            dtype = v;
        else if (!cli_u64(cmd, a, v, &seed)) /* --seed */
            return CLI_USAGE;
    }
    if (!preset || !out)
        return cli_usage(cmd, "--preset and --out are required"), CLI_USAGE;
    oc_status s = oc_write_random_model(preset, dtype, seed, out);
    return s == OC_OK ? 0 : cli_fail(cmd, s);
}
