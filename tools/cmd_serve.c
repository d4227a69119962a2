/* ocellus serve: the OpenAI-compatible HTTP server (serve/ in the library). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

static const char SERVE_HELP[] =
    "usage: ocellus serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--parallel N]\n"
    "                     [--api-key KEY] [--max-body-mb N] [--allow-dir DIR] [options]\n"
    "Serves the model over HTTP with OpenAI's API: POST /v1/chat/completions (images as\n"
    "data: URLs, or file:// URLs inside --allow-dir; \"stream\": true for server-sent\n"
    "events), GET /v1/models, GET /health. One log line per request goes to standard\n"
    "error; Ctrl-C or SIGTERM finishes the requests under way and exits.\n\n"
    "  -m, --model DIR       model folder (default: $OCELLUS_MODEL, else the bundled model)\n"
    "  --mmproj FILE         a GGUF model's mmproj (default: the one beside it)\n"
    "  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
    "  --port N              port (default 8080; 0 picks a free one, printed at start)\n"
    "  --parallel N          requests generated at once, each in its own session (default 1)\n"
    "  --queue N             requests that may wait for a session; more get 503 (default 64)\n"
    "  --api-key KEY         require \"Authorization: Bearer KEY\" (default: $OCELLUS_API_KEY,\n"
    "                        else none)\n"
    "  --max-body-mb N       largest request body, images included (default 32)\n"
    "  --allow-dir DIR       allow file:// image URLs to files inside DIR (default: refused)\n"
    "  --max-images N        images per request (default: the model's limit, 16)\n"
    "  -n, --max-tokens N    largest max_tokens a request may ask (default: the context)\n"
    "  --image-cache-mb N    encoded images kept for reuse (default 256; 0 = off)\n"
    "  --max-connections N   open connections (default 256)\n"
    "  --model-id NAME       the model's name in responses (default: its folder's name)\n"
    "  -t, --threads N       threads for the math kernels of each session (default: the\n"
    "                        cores divided among the sessions)\n";

static oc_server *g_server;

static void on_signal(int sig) {
    (void)sig;
    oc_server_stop(g_server);
}

static void log_line(const char *line, void *user) {
    (void)user;
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
    fprintf(stderr, "%s %s\n", when, line);
}

static const struct option SERVE_OPTIONS[] = {
    {"model", required_argument, NULL, 'm'},
    {"mmproj", required_argument, NULL, CLI_OPT_LONG},
    {"threads", required_argument, NULL, 't'},
    {"host", required_argument, NULL, CLI_OPT_LONG},
    {"port", required_argument, NULL, CLI_OPT_LONG},
    {"parallel", required_argument, NULL, CLI_OPT_LONG},
    {"queue", required_argument, NULL, CLI_OPT_LONG},
    {"api-key", required_argument, NULL, CLI_OPT_LONG},
    {"max-body-mb", required_argument, NULL, CLI_OPT_LONG},
    {"allow-dir", required_argument, NULL, CLI_OPT_LONG},
    {"max-images", required_argument, NULL, CLI_OPT_LONG},
    {"max-tokens", required_argument, NULL, 'n'},
    {"image-cache-mb", required_argument, NULL, CLI_OPT_LONG},
    {"max-connections", required_argument, NULL, CLI_OPT_LONG},
    {"model-id", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

/* A numeric option's value in lo..hi; 0 after a usage error. */
static int num_value(const char *cmd, const char *name, const char *v, uint64_t lo,
                     uint64_t hi, uint64_t *out) {
    if (!cli_u64(cmd, name, v, out))
        return 0;
    if (*out < lo || *out > hi)
        return cli_usage(cmd, "%s must be between %llu and %llu", name,
                         (unsigned long long)lo, (unsigned long long)hi);
    return 1;
}

/* The numeric options and their ranges. */
static const struct {
    const char *name;
    uint64_t lo, hi;
} NUMERIC[] = {
    {"--port", 0, 65535},          {"--parallel", 1, 1024},         {"--queue", 0, 1000000},
    {"--max-body-mb", 1, 4096},    {"--max-images", 1, 1024},       {"--max-tokens", 1, 1u << 30},
    {"--image-cache-mb", 0, 1u << 20}, {"--max-connections", 1, 100000},
};

/* One option into the server's parameters (o: --model, --mmproj, --threads); 0 after a
 * usage error. */
static int serve_option(const char *cmd, const char *a, const char *v, oc_server_params *p,
                        cli_gen_opts *o) {
    if (!strcmp(a, "--host"))
        p->host = v;
    else if (!strcmp(a, "--api-key"))
        p->api_key = v;
    else if (!strcmp(a, "--allow-dir"))
        p->allow_dir = v;
    else if (!strcmp(a, "--model-id"))
        p->model_id = v;
    else {
        size_t i = 0, n = sizeof NUMERIC / sizeof NUMERIC[0];
        while (i < n && strcmp(a, NUMERIC[i].name))
            i++;
        if (i == n)
            return cli_gen_apply(cmd, o, a, v) > 0; /* --model, --mmproj, --threads */
        uint64_t u = 0;
        if (!num_value(cmd, a, v, NUMERIC[i].lo, NUMERIC[i].hi, &u))
            return 0;
        switch (i) {
        case 0: p->port = (uint16_t)u; break;
        case 1: p->parallel = (uint32_t)u; break;
        case 2: p->queue = (uint32_t)u; break;
        case 3: p->max_body_bytes = u << 20; break;
        case 4: p->max_images = (uint32_t)u; break;
        case 5: p->max_tokens = (uint32_t)u; break;
        case 6: p->image_cache_bytes = u << 20; break;
        default: p->max_connections = (uint32_t)u; break;
        }
    }
    return 1;
}

int cmd_serve(int argc, char **argv) {
    const char *cmd = "serve";
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    oc_server_params p = oc_server_default_params();
    p.api_key = getenv("OCELLUS_API_KEY");
    if (p.api_key && !*p.api_key)
        p.api_key = NULL;
    const struct option *tables[] = {SERVE_OPTIONS, NULL};
    cli_parser ps;
    if (cli_parser_init(&ps, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&ps)) != CLI_OPT_END;) {
        if (k == CLI_OPT_ERROR)
            return CLI_USAGE;
        if (k == CLI_OPT_HELP)
            return printf("%s", SERVE_HELP), 0;
        if (k == CLI_OPT_ARG)
            return cli_usage(cmd, "unexpected argument %s", ps.arg), CLI_USAGE;
        if (!serve_option(cmd, ps.flag, ps.arg, &p, &o))
            return CLI_USAGE;
    }
    if (o.threads <= 0 && p.parallel > 1) { /* the cores shared among the sessions */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cores > (long)p.parallel ? (int)(cores / p.parallel) : 1;
    }
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    if (rc)
        return rc;
    p.log = log_line;
    oc_status s = oc_server_start(m, &p, &g_server);
    if (s != OC_OK) {
        rc = cli_fail(cmd, s);
        oc_model_free(m);
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int v6 = strchr(p.host, ':') != NULL;
    fprintf(stderr, "ocellus serve: listening on http://%s%s%s:%u (%s; %u session%s%s%s)\n",
            v6 ? "[" : "", p.host, v6 ? "]" : "", oc_server_port(g_server),
            oc_model_describe(m), p.parallel, p.parallel == 1 ? "" : "s",
            p.api_key ? "; API key required" : "", p.allow_dir ? "; file:// URLs allowed" : "");
    fflush(stderr);
    oc_server_wait(g_server);
    oc_server_free(g_server);
    g_server = NULL;
    oc_model_free(m);
    fprintf(stderr, "ocellus serve: stopped\n");
    return 0;
}
