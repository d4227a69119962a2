/* ocellus bench: image encoding per tile, prompt tokens/s, generated tokens/s, peak
 * memory. A benchmark, never a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "commands.h"

static const char BENCH_HELP[] =
    "usage: ocellus bench --model DIR [--image IMAGE] [--gen-tokens N] [--runs N]\n"
    "                     [--threads N] [--json]\n"
    "Measures one caption: image preprocessing + encoding per tile, prompt prefill\n"
    "tokens/s, generated tokens/s (generation runs the full N tokens), peak memory.\n"
    "Without --image a synthetic 640x480 picture is used. Make a model with\n"
    "'ocellus make-model --preset smolvlm-256m --out DIR' to measure without a download.\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static oc_image *synthetic_image(void) {
    uint32_t w = 640, h = 480;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return NULL;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)((x ^ y) & 0xff);
        }
    oc_image *img = NULL;
    oc_image_from_rgb(rgb, w, h, &img);
    free(rgb);
    return img;
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench", *image_path = NULL;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    o.gen.max_tokens = 32;
    uint32_t runs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", BENCH_HELP);
            return 0;
        }
        if (!strcmp(a, "--image") || !strcmp(a, "--gen-tokens") || !strcmp(a, "--runs")) {
            if (!(v = cli_value(cmd, argc, argv, &i)))
                return CLI_USAGE;
            if (!strcmp(a, "--image"))
                image_path = v;
            else if (!strcmp(a, "--runs")) {
                if (!cli_u32(cmd, a, v, &runs) || runs == 0)
                    return CLI_USAGE;
            } else if (!cli_u32(cmd, a, v, &o.gen.max_tokens))
                return CLI_USAGE;
            continue;
        }
        int r = cli_gen_option(cmd, &o, argc, argv, &i);
        if (r <= 0)
            return r == 0 ? (cli_usage(cmd, "unknown argument %s", a), CLI_USAGE) : CLI_USAGE;
    }
    double t0 = now_s();
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    if (rc)
        return rc;
    double load_s = now_s() - t0;
    oc_image *img = NULL;
    if (image_path) {
        oc_status s = oc_image_load(image_path, NULL, &img);
        if (s != OC_OK) {
            oc_model_free(m);
            return cli_fail(cmd, s);
        }
    } else {
        img = synthetic_image();
    }
    o.gen.ignore_eos = 1;
    oc_timings best = {0};
    for (uint32_t r = 0; r < runs && rc == 0; r++) {
        oc_answer a;
        oc_status s = oc_caption(m, img, &o.gen, &a);
        if (s != OC_OK) {
            rc = cli_fail(cmd, s);
            break;
        }
        oc_timings t = a.timings;
        if (r == 0 || t.image_ms + t.prompt_ms + t.gen_ms <
                          best.image_ms + best.prompt_ms + best.gen_ms)
            best = t;
        oc_answer_free(&a);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_mib = ru.ru_maxrss / 1024.0;
    if (rc == 0) {
        double tile_ms = best.n_tiles ? best.image_ms / best.n_tiles : 0;
        double pps = best.prompt_ms > 0 ? best.prompt_tokens * 1e3 / best.prompt_ms : 0;
        double gps = best.gen_ms > 0 ? best.gen_tokens * 1e3 / best.gen_ms : 0;
        if (o.json) {
            printf("{\"model\": ");
            cli_json_string(oc_model_describe(m));
            printf(", \"load_s\": %.3f, \"tiles\": %u, \"image_ms_per_tile\": %.1f, "
                   "\"prompt_tokens\": %u, \"prompt_tokens_per_s\": %.2f, "
                   "\"gen_tokens\": %u, \"gen_tokens_per_s\": %.2f, \"peak_mib\": %.0f}\n",
                   load_s, best.n_tiles, tile_ms, best.prompt_tokens, pps, best.gen_tokens, gps,
                   peak_mib);
        } else {
            printf("model            %s\n", oc_model_describe(m));
            printf("load             %.2f s\n", load_s);
            printf("image encoding   %.1f ms per tile (%u tiles, %.0f ms)\n", tile_ms,
                   best.n_tiles, best.image_ms);
            printf("prompt           %.1f tokens/s (%u tokens, %.0f ms)\n", pps,
                   best.prompt_tokens, best.prompt_ms);
            printf("generation       %.2f tokens/s (%u tokens, %.0f ms)\n", gps,
                   best.gen_tokens, best.gen_ms);
            printf("peak memory      %.0f MiB\n", peak_mib);
        }
    }
    oc_image_free(img);
    oc_model_free(m);
    return rc;
}
