/* ocellus bench: the speed of a model on this machine, each figure beside the limit the
 * machine measured in the same run. A benchmark, never a test. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

static const char BENCH_HELP[] =
    "usage: ocellus bench [--model DIR] [--dtype auto|f32|bf16|q8_0] [--threads N]\n"
    "                     [--image IMAGE] [--prompt-tokens N] [--gen-tokens N] [--runs N]\n"
    "                     [--no-limits] [--json]\n"
    "Measures, best of --runs (default 1):\n"
    "  image encoding  seconds per tile and GFLOP/s, captioning a 512x512 picture (or\n"
    "                  --image), with the time to the first token of that caption\n"
    "  prefill         tokens/s of a text-only prompt of --prompt-tokens (default 512)\n"
    "  decode          tokens/s of --gen-tokens (default 32) after a one-word prompt, and\n"
    "                  after the prefill prompt; GB/s of weights read per token\n"
    "  peak memory     resident set size\n"
    "and first what the machine allows with the same threads: the FP32 FMA peak and the\n"
    "read bandwidth (skip with --no-limits), each figure quoted as a fraction of it. When\n"
    "two threads run much slower each than one alone (virtual CPUs on one physical core,\n"
    "or a busy machine) it says so: quote ratios then, not absolute figures.\n"
    "Make a model with 'ocellus make-model --preset smolvlm-256m --out DIR' to measure\n"
    "without a download. --json prints one object: encode_s_per_tile, encode_gflops,\n"
    "prefill_tok_s, decode_tok_s, ttft_s, peak_rss_mib, threads, dtype, fma_peak_gflops,\n"
    "read_gb_s and the rest of the table.\n";

typedef struct {
    int tty;
} progress;

static void step(const progress *p, const char *what) {
    if (p->tty)
        fprintf(stderr, "\r\033[Kbench: %s", what);
}

/* A picture with detail at every scale (gradients and a xor pattern), side x side. */
static oc_image *synthetic_image(uint32_t side) {
    uint8_t *rgb = malloc((size_t)side * side * 3);
    if (!rgb)
        return NULL;
    for (uint32_t y = 0; y < side; y++)
        for (uint32_t x = 0; x < side; x++) {
            uint8_t *p = rgb + ((size_t)y * side + x) * 3;
            p[0] = (uint8_t)(x * 255 / side);
            p[1] = (uint8_t)(y * 255 / side);
            p[2] = (uint8_t)((x ^ y) & 0xff);
        }
    oc_image *img = NULL;
    oc_image_from_rgb(rgb, side, side, &img);
    free(rgb);
    return img;
}

/* "a a a ..." with k words. */
static char *filler(size_t k) {
    char *s = malloc(2 * k + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < k; i++)
        s[2 * i] = 'a', s[2 * i + 1] = ' ';
    s[k ? 2 * k - 1 : 0] = 0;
    return s;
}

/* A text-only question whose whole prompt is want tokens (or as close as the tokenizer
 * allows): the chat template's tokens measured with a one-word question first. */
static char *question_of(oc_model *m, uint32_t want, oc_status *st) {
    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 1;
    oc_answer a;
    char *q = filler(1);
    *st = oc_ask(m, NULL, 0, q, &gp, &a);
    if (*st != OC_OK) {
        free(q);
        return NULL;
    }
    const oc_tokenizer *tok = oc_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n1 = 0;
    oc_tokenize(tok, q, strlen(q), 0, &ids, &n1);
    oc_free(ids);
    long overhead = (long)a.timings.prompt_tokens - (long)n1;
    oc_answer_free(&a);
    size_t k = want > overhead ? (size_t)(want - overhead) : 1;
    for (int iter = 0; iter < 8; iter++) { /* words are not always one token each */
        free(q);
        q = filler(k);
        size_t n = 0;
        if (!q || oc_tokenize(tok, q, strlen(q), 0, &ids, &n) != OC_OK)
            break;
        oc_free(ids);
        long total = overhead + (long)n;
        if (total == (long)want || n == 0)
            break;
        long nk = (long)k + ((long)want - total) * (long)k / (long)n;
        if (nk < 1 || (size_t)nk == k)
            break;
        k = (size_t)nk;
    }
    return q;
}

typedef struct {
    double encode_s_per_tile, encode_gflops, ttft_s;
    uint32_t tiles;
    double prefill_tok_s, prefill_gflops;
    uint32_t prompt_tokens;
    double decode_tok_s, decode_long_tok_s;
} figures;

static double better(double a, double b, int lower) {
    if (a == 0)
        return b;
    return lower ? (b < a ? b : a) : (b > a ? b : a);
}

/* One round of the three runs; keeps the best of each figure in f. */
static oc_status round_once(oc_model *m, const oc_image *img, const char *long_q,
                            uint32_t gen, figures *f, const progress *pr) {
    oc_gen_params gp = oc_gen_default_params();
    gp.ignore_eos = 1;
    oc_answer a;
    step(pr, "image encoding and time to first token");
    gp.max_tokens = 1;
    oc_status s = oc_caption(m, img, &gp, &a);
    if (s != OC_OK)
        return s;
    oc_timings t = a.timings;
    oc_answer_free(&a);
    f->tiles = t.n_tiles;
    if (t.n_tiles && t.image_ms > 0) {
        f->encode_s_per_tile = better(f->encode_s_per_tile, t.image_ms / t.n_tiles / 1e3, 1);
        f->encode_gflops = better(f->encode_gflops, t.image_flops / t.image_ms / 1e6, 0);
    }
    f->ttft_s = better(f->ttft_s, t.first_token_ms / 1e3, 1);

    step(pr, "prefill and decoding after it");
    gp.max_tokens = gen;
    if ((s = oc_ask(m, NULL, 0, long_q, &gp, &a)) != OC_OK)
        return s;
    t = a.timings;
    oc_answer_free(&a);
    f->prompt_tokens = t.prompt_tokens;
    f->prefill_tok_s = better(f->prefill_tok_s, t.prompt_tokens * 1e3 / t.prompt_ms, 0);
    f->prefill_gflops = better(f->prefill_gflops, t.prompt_flops / t.prompt_ms / 1e6, 0);
    if (t.gen_ms > 0)
        f->decode_long_tok_s = better(f->decode_long_tok_s, t.gen_tokens * 1e3 / t.gen_ms, 0);

    step(pr, "decoding");
    if ((s = oc_ask(m, NULL, 0, "a", &gp, &a)) != OC_OK)
        return s;
    t = a.timings;
    oc_answer_free(&a);
    if (t.gen_ms > 0)
        f->decode_tok_s = better(f->decode_tok_s, t.gen_tokens * 1e3 / t.gen_ms, 0);
    return OC_OK;
}

/* VmHWM (peak resident memory since the last reset), else getrusage's maximum. */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atof(line + 6);
    if (f)
        fclose(f);
    if (kb <= 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (double)ru.ru_maxrss;
    }
    return kb / 1024.0;
}

static const char *const DTYPE_NAMES[] = {"auto", "f32", "bf16", "q8_0"};

static double frac(double v, double limit) { return limit > 0 ? v / limit : 0; }

static void print_json(const oc_model *m, const figures *f, const oc_machine_limits *ml,
                       int limits, oc_weight_format wf, double text_gb, double rss) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", oc_model_describe(m));
    cJSON_AddStringToObject(o, "dtype", DTYPE_NAMES[wf]);
    cJSON_AddNumberToObject(o, "threads", ml->threads);
    cJSON_AddStringToObject(o, "cpu", ml->cpu);
    cJSON_AddNumberToObject(o, "tiles", f->tiles);
    cJSON_AddNumberToObject(o, "encode_s_per_tile", f->encode_s_per_tile);
    cJSON_AddNumberToObject(o, "encode_gflops", f->encode_gflops);
    cJSON_AddNumberToObject(o, "ttft_s", f->ttft_s);
    cJSON_AddNumberToObject(o, "prefill_tokens", f->prompt_tokens);
    cJSON_AddNumberToObject(o, "prefill_tok_s", f->prefill_tok_s);
    cJSON_AddNumberToObject(o, "prefill_gflops", f->prefill_gflops);
    cJSON_AddNumberToObject(o, "decode_tok_s", f->decode_tok_s);
    cJSON_AddNumberToObject(o, "decode_long_tok_s", f->decode_long_tok_s);
    cJSON_AddNumberToObject(o, "decode_gb_s", f->decode_tok_s * text_gb);
    cJSON_AddNumberToObject(o, "weight_gb_per_token", text_gb);
    cJSON_AddNumberToObject(o, "peak_rss_mib", rss);
    if (limits) {
        cJSON_AddNumberToObject(o, "fma_peak_gflops", ml->fma_peak_gflops);
        cJSON_AddNumberToObject(o, "fma_one_thread_gflops", ml->fma_one_gflops);
        cJSON_AddNumberToObject(o, "read_gb_s", ml->read_gb_s);
        cJSON_AddBoolToObject(o, "shared_core", ml->shared_core);
        cJSON_AddNumberToObject(o, "encode_peak_frac", frac(f->encode_gflops, ml->fma_peak_gflops));
        cJSON_AddNumberToObject(o, "prefill_peak_frac", frac(f->prefill_gflops, ml->fma_peak_gflops));
        cJSON_AddNumberToObject(o, "decode_bw_frac",
                                frac(f->decode_tok_s * text_gb, ml->read_gb_s));
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt)
        printf("%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

static void print_table(const oc_model *m, const figures *f, const oc_machine_limits *ml,
                        int limits, oc_weight_format wf, double text_gb, double rss) {
    printf("model            %s\n", oc_model_describe(m));
    printf("weights          %s, %.0f MB read per decoded token\n", DTYPE_NAMES[wf],
           text_gb * 1e3);
    if (limits)
        printf("machine          %s, %d thread%s: FMA peak %.1f GFLOP/s (one thread alone "
               "%.1f), read %.1f GB/s%s\n",
               ml->cpu, ml->threads, ml->threads == 1 ? "" : "s", ml->fma_peak_gflops,
               ml->fma_one_gflops, ml->read_gb_s,
               ml->shared_core ? "; SHARED: the threads slowed each other, quote ratios" : "");
    printf("image encoding   %.3f s per tile (%u tiles), %.1f GFLOP/s", f->encode_s_per_tile,
           f->tiles, f->encode_gflops);
    if (limits)
        printf(", %.0f%% of the FMA peak", 100 * frac(f->encode_gflops, ml->fma_peak_gflops));
    printf("\nfirst token      %.2f s (caption of the picture)\n", f->ttft_s);
    printf("prefill          %.1f tokens/s (%u tokens), %.1f GFLOP/s", f->prefill_tok_s,
           f->prompt_tokens, f->prefill_gflops);
    if (limits)
        printf(", %.0f%% of the FMA peak", 100 * frac(f->prefill_gflops, ml->fma_peak_gflops));
    printf("\ndecode           %.2f tokens/s, %.1f GB/s of weights", f->decode_tok_s,
           f->decode_tok_s * text_gb);
    if (limits)
        printf(", %.0f%% of the read bandwidth",
               100 * frac(f->decode_tok_s * text_gb, ml->read_gb_s));
    printf("\ndecode after it  %.2f tokens/s (after the %u-token prompt)\n",
           f->decode_long_tok_s, f->prompt_tokens);
    printf("peak memory      %.0f MiB\n", rss);
}

static const struct option BENCH_OPTIONS[] = {
    {"image", required_argument, NULL, CLI_OPT_LONG},
    {"runs", required_argument, NULL, CLI_OPT_LONG},
    {"prompt-tokens", required_argument, NULL, CLI_OPT_LONG},
    {"gen-tokens", required_argument, NULL, CLI_OPT_LONG},
    {"no-limits", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench", *image_path = NULL;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    uint32_t runs = 1, prompt_tokens = 512, gen = 32;
    int limits = 1;
    const struct option *tables[] = {BENCH_OPTIONS, CLI_GEN_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag, *v = p.arg;
        if (k == CLI_OPT_ERROR)
            return CLI_USAGE;
        if (k == CLI_OPT_HELP) {
            printf("%s", BENCH_HELP);
            return 0;
        }
        if (k == CLI_OPT_ARG)
            return cli_usage(cmd, "unexpected argument %s", v), CLI_USAGE;
        if (!strcmp(a, "--no-limits")) {
            limits = 0;
        } else if (!strcmp(a, "--image")) {
            image_path = v;
        } else if (!strcmp(a, "--runs") || !strcmp(a, "--gen-tokens") ||
                   !strcmp(a, "--prompt-tokens")) {
            uint32_t *dst = !strcmp(a, "--runs")         ? &runs
                            : !strcmp(a, "--gen-tokens") ? &gen
                                                         : &prompt_tokens;
            if (!cli_u32(cmd, a, v, dst) || *dst == 0)
                return cli_usage(cmd, "%s must be a positive integer", a), CLI_USAGE;
        } else if (cli_gen_apply(cmd, &o, a, v) <= 0) {
            return CLI_USAGE;
        }
    }
    o.fixed_threads = 1; /* measure the threads asked for, not the tuner's choice */
    progress pr = {isatty(STDERR_FILENO)};
    oc_machine_limits ml;
    memset(&ml, 0, sizeof ml);
    step(&pr, "measuring the machine");
    oc_status s = limits ? oc_measure_machine(o.threads, &ml) : OC_OK;
    if (s != OC_OK)
        return cli_fail(cmd, s);
    ml.threads = limits ? ml.threads : o.threads;
    /* the bandwidth test's buffer is not the model's memory: restart the peak (Linux) */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    step(&pr, "loading the model");
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    if (rc)
        return rc;
    oc_image *img = NULL;
    if (image_path && (s = oc_image_load(image_path, NULL, &img)) != OC_OK) {
        oc_model_free(m);
        return cli_fail(cmd, s);
    }
    if (!img && !(img = synthetic_image(512))) {
        oc_model_free(m);
        return cli_fail(cmd, OC_ERR_NOMEM);
    }
    char *long_q = question_of(m, prompt_tokens, &s);
    figures f;
    memset(&f, 0, sizeof f);
    for (uint32_t r = 0; long_q && r < runs && s == OC_OK; r++)
        s = round_once(m, img, long_q, gen, &f, &pr);
    if (pr.tty)
        fprintf(stderr, "\r\033[K");
    if (s != OC_OK || !long_q)
        rc = cli_fail(cmd, s != OC_OK ? s : OC_ERR_NOMEM);
    if (rc == 0) {
        uint64_t text_bytes = 0;
        oc_model_weight_bytes(m, &text_bytes, NULL);
        double rss = peak_rss_mib(), text_gb = (double)text_bytes / 1e9;
        if (o.json)
            print_json(m, &f, &ml, limits, o.weights, text_gb, rss);
        else
            print_table(m, &f, &ml, limits, o.weights, text_gb, rss);
    }
    free(long_q);
    oc_image_free(img);
    oc_model_free(m);
    return rc;
}
