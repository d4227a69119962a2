#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

volatile int cli_interrupted;
int cli_stdout_errno;

int cli_flush(void) {
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    if (!cli_stdout_errno)
        cli_stdout_errno = errno ? errno : EIO;
    return -1;
}

int cli_fail(const char *cmd, oc_status s) {
    fprintf(stderr, "ocellus %s: %s\n", cmd, oc_last_error()[0] ? oc_last_error()
                                                                : oc_status_str(s));
    return 2 + (int)s;
}

void cli_end_job_if_alone(const char *cmd, oc_status s) {
    oc_dist_info job = oc_dist_get_info();
    if (s == OC_OK || job.size <= 1 || oc_dist_error_is_shared())
        return;
    fprintf(stderr, "ocellus %s: rank %d of %d: %s\n", cmd, job.rank, job.size,
            oc_last_error()[0] ? oc_last_error() : oc_status_str(s));
    oc_dist_abort(2 + (int)s);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ocellus %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ocellus %s --help')\n", cmd);
    va_end(ap);
    return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *val, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!*val || *end || errno || val[0] == '-')
        return cli_usage(cmd, "%s expects a non-negative integer, not '%s'", opt, val);
    *out = v;
    return 1;
}

int cli_u32(const char *cmd, const char *opt, const char *val, uint32_t *out) {
    uint64_t v = 0;
    if (!cli_u64(cmd, opt, val, &v))
        return 0;
    if (v > UINT32_MAX)
        return cli_usage(cmd, "%s: %s is too large", opt, val);
    *out = (uint32_t)v;
    return 1;
}

int cli_float(const char *cmd, const char *opt, const char *val, float *out) {
    char *end;
    errno = 0;
    float v = strtof(val, &end);
    if (!*val || *end || errno || !isfinite(v))
        return cli_usage(cmd, "%s expects a number, not '%s'", opt, val);
    *out = v;
    return 1;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_default_model(void) {
    const char *env = getenv("OCELLUS_MODEL");
    if (env && *env)
        return env;
    /* next to the executable (build tree or install prefix), then the source tree */
    static char path[4096];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        const char *rel[] = {"/../models/ocellus-shapes", "/../share/ocellus/ocellus-shapes",
                             "/models/ocellus-shapes"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(path, sizeof path, "%s%s", exe, rel[i]);
            if (is_dir(path))
                return path;
        }
    }
#ifdef OC_SOURCE_MODEL_DIR
    if (is_dir(OC_SOURCE_MODEL_DIR))
        return OC_SOURCE_MODEL_DIR;
#endif
    return NULL;
}

/* -m, -n, -t and --n-predict as llama.cpp's tools spell them */
const struct option CLI_GEN_OPTIONS[] = {
    {"model", required_argument, NULL, 'm'},
    {"mmproj", required_argument, NULL, CLI_OPT_LONG},
    {"max-tokens", required_argument, NULL, 'n'},
    {"n-predict", required_argument, NULL, 'n'},
    {"temp", required_argument, NULL, CLI_OPT_LONG},
    {"top-k", required_argument, NULL, CLI_OPT_LONG},
    {"top-p", required_argument, NULL, CLI_OPT_LONG},
    {"repeat-penalty", required_argument, NULL, CLI_OPT_LONG},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {"ignore-eos", no_argument, NULL, CLI_OPT_LONG},
    {"threads", required_argument, NULL, 't'},
    {"dtype", required_argument, NULL, CLI_OPT_LONG},
    {"max-pixels", required_argument, NULL, CLI_OPT_LONG},
    {"json", no_argument, NULL, CLI_OPT_LONG},
    {"stream", no_argument, NULL, CLI_OPT_LONG},
    {"no-stream", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

const char CLI_GEN_HELP[] =
    "  -m, --model DIR       model folder (default: $OCELLUS_MODEL, else the bundled model),\n"
    "                        or a GGUF text model (or a folder of a GGUF pair)\n"
    "  --mmproj FILE         the GGUF model's mmproj (default: the one beside it)\n"
    "  -n, --max-tokens N    most tokens to generate (default 256; also --n-predict)\n"
    "  --temp T              sampling temperature; 0 = greedy (default 0)\n"
    "  --top-k K             sample from the K most likely tokens (0 = off)\n"
    "  --top-p P             nucleus sampling (1 = off)\n"
    "  --repeat-penalty R    repetition penalty as in transformers (1 = off)\n"
    "  --seed S              sampling seed (default 0)\n"
    "  --ignore-eos          generate --max-tokens tokens, past the end of the answer\n"
    "  -t, --threads N       threads for the math kernels (default: all cores)\n"
    "  --dtype F             weights as auto (as stored, exact), f32, bf16 or q8_0\n"
    "  --max-pixels N        refuse images of more pixels (width x height; the decoder's\n"
    "                        buffer is held to 3 bytes a pixel of it); default 89478485,\n"
    "                        as Pillow's decompression-bomb limit\n"
    "  --json                one JSON object per answer: text, token ids, timings\n"
    "  --stream / --no-stream  print tokens as they come (default: on a terminal)\n"
    "Options take their value as --opt VALUE or --opt=VALUE; -- ends the options.\n";

void cli_gen_opts_init(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->gen = oc_gen_default_params();
    o->stream = -1;
}

int cli_gen_apply(const char *cmd, cli_gen_opts *o, const char *a, const char *v) {
    uint32_t u = 0;
    if (!strcmp(a, "--model")) {
        o->model = v;
    } else if (!strcmp(a, "--mmproj")) {
        o->mmproj = v;
    } else if (!strcmp(a, "--threads")) {
        if (!cli_u32(cmd, a, v, &u))
            return -1;
        o->threads = (int)u;
    } else if (!strcmp(a, "--dtype")) {
        static const char *const names[] = {"auto", "f32", "bf16", "q8_0"};
        size_t k = 0;
        while (k < 4 && strcasecmp(v, names[k]))
            k++;
        if (k == 4)
            return cli_usage(cmd, "--dtype expects auto, f32, bf16 or q8_0, not '%s'", v), -1;
        o->weights = (oc_weight_format)k;
    } else if (!strcmp(a, "--max-tokens")) {
        if (!cli_u32(cmd, a, v, &o->gen.max_tokens))
            return -1;
    } else if (!strcmp(a, "--temp")) {
        if (!cli_float(cmd, a, v, &o->gen.temperature) || o->gen.temperature < 0)
            return cli_usage(cmd, "--temp must be >= 0"), -1;
    } else if (!strcmp(a, "--top-k")) {
        if (!cli_u32(cmd, a, v, &o->gen.top_k))
            return -1;
    } else if (!strcmp(a, "--top-p")) {
        if (!cli_float(cmd, a, v, &o->gen.top_p) || o->gen.top_p <= 0 || o->gen.top_p > 1)
            return cli_usage(cmd, "--top-p must be in (0, 1]"), -1;
    } else if (!strcmp(a, "--repeat-penalty")) {
        if (!cli_float(cmd, a, v, &o->gen.repetition_penalty) ||
            o->gen.repetition_penalty <= 0)
            return cli_usage(cmd, "--repeat-penalty must be > 0"), -1;
    } else if (!strcmp(a, "--seed")) {
        if (!cli_u64(cmd, a, v, &o->gen.seed))
            return -1;
    } else if (!strcmp(a, "--ignore-eos")) {
        o->gen.ignore_eos = 1;
    } else if (!strcmp(a, "--max-pixels")) {
        if (!cli_u64(cmd, a, v, &o->max_pixels) || o->max_pixels == 0)
            return cli_usage(cmd, "--max-pixels must be a positive integer"), -1;
    } else if (!strcmp(a, "--json")) {
        o->json = 1;
    } else if (!strcmp(a, "--stream")) {
        o->stream = 1;
    } else if (!strcmp(a, "--no-stream")) {
        o->stream = 0;
    } else {
        return 0;
    }
    return 1;
}

oc_image_limits cli_image_limits(const cli_gen_opts *o) {
    oc_image_limits l = oc_image_default_limits();
    if (o->max_pixels)
        l.max_pixels = o->max_pixels;
    return l;
}

int cli_load_model(const char *cmd, const cli_gen_opts *o, oc_model **m) {
    const char *dir = o->model ? o->model : cli_default_model();
    if (!dir) {
        cli_usage(cmd, "no model: give --model DIR or set OCELLUS_MODEL");
        return CLI_USAGE;
    }
    oc_model_params p = oc_model_default_params();
    p.n_threads = o->threads;
    p.weights = o->weights;
    p.mmproj = o->mmproj;
    p.fixed_threads = o->fixed_threads;
    p.image_limits = cli_image_limits(o);
    oc_status s = oc_model_load(dir, &p, m);
    return s == OC_OK ? 0 : cli_fail(cmd, s);
}

/* "encoding image: tile 3/13" / "reading prompt: 512/901 tokens", rewritten in place and
 * cleared when done. */
static int show_progress(oc_progress_stage stage, uint64_t done, uint64_t total, void *ud) {
    (void)ud;
    if (stage == OC_PROGRESS_IMAGE)
        fprintf(stderr, "\rencoding image: tile %llu/%llu", (unsigned long long)done,
                (unsigned long long)total);
    else
        fprintf(stderr, "\rreading prompt: %llu/%llu tokens", (unsigned long long)done,
                (unsigned long long)total);
    if (done == total)
        fprintf(stderr, "\r\033[K");
    return cli_interrupted;
}

void cli_progress_on_terminal(cli_gen_opts *o) {
    if (isatty(STDERR_FILENO)) {
        o->gen.on_progress = show_progress;
        o->gen.progress_user_data = NULL;
    }
}

static void on_sigint(int sig) {
    (void)sig;
    if (cli_interrupted)
        _exit(130);
    cli_interrupted = 1;
}

void cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
}
