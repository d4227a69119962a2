/* ocellus chat: an interactive conversation on a terminal (libedit for line editing and
 * history), or one message a line from a pipe. Commands: /image PATH, /clear, /save FILE,
 * /quit, /help. Answers stream; Ctrl-C stops the answer, not the program. The session's
 * KV cache carries the conversation from turn to turn, images included. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"
#include "commands.h"

static const char CHAT_HELP[] =
    "usage: ocellus chat [IMAGE...] [--model DIR] [--system TEXT] [options]\n"
    "Chats with the model. The images given attach to the first message. Each line is a\n"
    "message, or a command:\n"
    "  /image PATH   attach an image to the next message\n"
    "  /clear        start over (the system prompt stays)\n"
    "  /save FILE    write the conversation as fine-tuning JSONL (ocellus train --data)\n"
    "  /quit         leave (so does end of input)\n"
    "Ctrl-C stops an answer. Reads one message a line when standard input is not a\n"
    "terminal.\n\n"
    "  --system TEXT         a system prompt\n"
    "  --verbose             after each answer, tokens (and how many came from the cache),\n"
    "                        images encoded or reused, and times, on standard error\n"
    "  --history FILE        line history (default ~/.ocellus_history; terminal only)\n"
    "  --image FILE          an image for the first message (as IMAGE)\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    const oc_model *m;
    oc_session *session;
    oc_conversation *conv;
    oc_image_cache *cache;
    const char *system;
    oc_reply_params rp;
    int tty, verbose;
    oc_encoded_image **pending; /* attached to the next message */
    char **pending_paths;
    size_t n_pending, cap_pending;
    uint32_t encoded, reused;   /* images of the next message */
} chat;

static int print_piece(const char *piece, int32_t id, void *user) {
    (void)id;
    (void)user;
    fputs(piece, stdout);
    fflush(stdout);
    return interrupted;
}

static void drop_pending(chat *c) {
    for (size_t i = 0; i < c->n_pending; i++) {
        oc_encoded_image_free(c->pending[i]);
        free(c->pending_paths[i]);
    }
    c->n_pending = 0;
    c->encoded = c->reused = 0;
}

static void error_line(const char *what) {
    fprintf(stderr, "ocellus chat: %s%s%s\n", what, oc_last_error()[0] ? ": " : "",
            oc_last_error());
}

/* Reads an image file and encodes it (or finds it encoded: the same bytes again). */
static int attach(chat *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ocellus chat: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0, k;
    unsigned char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            unsigned char *nb = cap < (1u << 30) ? realloc(buf, cap *= 2) : NULL;
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        fprintf(stderr, "ocellus chat: %s: cannot read (or over 1 GiB)\n", path);
        return -1;
    }
    oc_encoded_image *img = NULL;
    int hit = 0;
    oc_status s = oc_image_cache_get(c->cache, buf, n, path, NULL, &img, &hit);
    free(buf);
    if (s != OC_OK) {
        error_line("image not attached");
        return -1;
    }
    if (c->n_pending == c->cap_pending) {
        size_t nc = c->cap_pending ? 2 * c->cap_pending : 4;
        oc_encoded_image **np = realloc(c->pending, nc * sizeof *np);
        if (np)
            c->pending = np;
        char **pp = np ? realloc(c->pending_paths, nc * sizeof *pp) : NULL;
        if (pp)
            c->pending_paths = pp;
        if (!np || !pp) {
            oc_encoded_image_free(img);
            return -1;
        }
        c->cap_pending = nc;
    }
    c->pending[c->n_pending] = img;
    c->pending_paths[c->n_pending++] = strdup(path);
    c->encoded += !hit;
    c->reused += hit != 0;
    if (c->tty)
        fprintf(stderr, "(%s attached: %u tile%s%s)\n", path, oc_encoded_image_tiles(img),
                oc_encoded_image_tiles(img) == 1 ? "" : "s", hit ? ", seen before" : "");
    return 0;
}

static int start_over(chat *c) {
    oc_conversation_clear(c->conv);
    drop_pending(c);
    if (!c->system)
        return 0;
    if (oc_conversation_add_message(c->conv, OC_ROLE_SYSTEM) != OC_OK ||
        oc_conversation_add_text(c->conv, c->system) != OC_OK) {
        error_line("system prompt");
        return -1;
    }
    return 0;
}

/* One user message and the answer. */
static void turn(chat *c, const char *text) {
    size_t before = oc_conversation_length(c->conv);
    oc_status s = oc_conversation_add_message(c->conv, OC_ROLE_USER);
    for (size_t i = 0; s == OC_OK && i < c->n_pending; i++)
        s = oc_conversation_add_image(c->conv, c->pending[i], c->pending_paths[i]);
    if (s == OC_OK)
        s = oc_conversation_add_text(c->conv, text);
    oc_reply r;
    interrupted = 0;
    if (s == OC_OK)
        s = oc_session_reply(c->session, c->conv, &c->rp, &r);
    if (s != OC_OK) {
        error_line("no answer");
        while (oc_conversation_length(c->conv) > before)
            oc_conversation_pop(c->conv);
        if (s == OC_ERR_LIMIT)
            fprintf(stderr, "(/clear starts a new conversation)\n");
        return;
    }
    uint32_t encoded = c->encoded, reused = c->reused;
    drop_pending(c);
    if (r.finish == OC_FINISH_CANCELLED)
        fputs(" [interrupted]", stdout);
    putchar('\n');
    fflush(stdout);
    if (oc_conversation_add_message(c->conv, OC_ROLE_ASSISTANT) != OC_OK ||
        oc_conversation_add_text(c->conv, r.text) != OC_OK)
        error_line("the answer is not kept");
    if (c->verbose)
        fprintf(stderr, "[prompt %u tokens, %u cached; %u generated in %.0f ms (%s); images "
                "%u encoded, %u seen before]\n", r.prompt_tokens, r.cached_tokens,
                r.completion_tokens, r.timings.prompt_ms + r.timings.gen_ms,
                oc_finish_reason_str(r.finish), encoded, reused);
    oc_reply_free(&r);
    interrupted = 0;
}

/* A command line ("/..."); 1 to quit. */
static int command(chat *c, const char *line) {
    const char *arg = strchr(line, ' ');
    size_t n = arg ? (size_t)(arg - line) : strlen(line);
    while (arg && *arg == ' ')
        arg++;
#define IS(name) (n == strlen(name) && !strncmp(line, name, n))
    if (IS("/quit") || IS("/exit"))
        return 1;
    if (IS("/help")) {
        fputs("/image PATH, /clear, /save FILE, /quit\n", stderr);
    } else if (IS("/clear")) {
        start_over(c);
        fputs("(new conversation)\n", stderr);
    } else if (IS("/image") || IS("/save")) {
        if (!arg || !*arg) {
            fprintf(stderr, "ocellus chat: %.*s needs a path\n", (int)n, line);
        } else if (IS("/image")) {
            attach(c, arg);
        } else if (oc_conversation_save_jsonl(c->conv, arg) != OC_OK) {
            error_line("not saved");
        } else {
            fprintf(stderr, "(saved %zu messages to %s)\n", oc_conversation_length(c->conv),
                    arg);
        }
    } else {
        fprintf(stderr, "ocellus chat: unknown command %.*s (try /help)\n", (int)n, line);
    }
#undef IS
    return 0;
}

/* The next line without its newline (malloc'd), or NULL at the end of input. */
static char *next_line(const chat *c) {
    if (c->tty) {
        for (;;) {
            interrupted = 0;
            char *l = readline("> ");
            if (l || !interrupted)
                return l;
            putchar('\n'); /* Ctrl-C at the prompt: a fresh prompt */
        }
    }
    char *l = NULL;
    size_t cap = 0;
    ssize_t n = getline(&l, &cap, stdin);
    if (n < 0) {
        free(l);
        return NULL;
    }
    while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == '\r'))
        l[--n] = 0;
    return l;
}

static void loop(chat *c, const char *history) {
    char *line;
    while ((line = next_line(c))) {
        char *t = line;
        while (*t == ' ' || *t == '\t')
            t++;
        int quit = 0;
        if (*t && c->tty)
            add_history(line);
        if (*t == '/')
            quit = command(c, t);
        else if (*t)
            turn(c, line);
        free(line);
        if (quit)
            break;
    }
    if (c->tty && history)
        write_history(history);
}

static const struct option CHAT_OPTIONS[] = {
    {"system", required_argument, NULL, CLI_OPT_LONG},
    {"history", required_argument, NULL, CLI_OPT_LONG},
    {"verbose", no_argument, NULL, CLI_OPT_LONG},
    {"image", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

/* The options; the images (IMAGE arguments and --image) into images. Returns -1 to go
 * on, else the exit code. */
static int parse_chat(int argc, char **argv, cli_gen_opts *o, chat *c, const char **history,
                      char **images, size_t *n_images) {
    const char *cmd = "chat";
    const struct option *tables[] = {CHAT_OPTIONS, CLI_GEN_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag, *v = p.arg;
        if (k == CLI_OPT_ERROR)
            return CLI_USAGE;
        if (k == CLI_OPT_HELP)
            return printf("%s%s", CHAT_HELP, CLI_GEN_HELP), 0;
        if (k == CLI_OPT_ARG || !strcmp(a, "--image"))
            images[(*n_images)++] = (char *)v;
        else if (!strcmp(a, "--system"))
            c->system = v;
        else if (!strcmp(a, "--history"))
            *history = v;
        else if (!strcmp(a, "--verbose"))
            c->verbose = 1;
        else if (!strcmp(a, "--json") || !strcmp(a, "--stream") || !strcmp(a, "--no-stream"))
            return cli_usage(cmd, "%s is not a chat option", a), CLI_USAGE;
        else if (cli_gen_apply(cmd, o, a, v) <= 0)
            return CLI_USAGE;
    }
    return -1;
}

int cmd_chat(int argc, char **argv) {
    const char *cmd = "chat", *history = NULL;
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    chat c;
    memset(&c, 0, sizeof c);
    char **images = calloc((size_t)argc, sizeof *images);
    size_t n_images = 0;
    if (!images)
        return cli_fail(cmd, OC_ERR_NOMEM);
    int prc = parse_chat(argc, argv, &o, &c, &history, images, &n_images);
    if (prc >= 0) {
        free(images);
        return prc;
    }
    oc_model *m = NULL;
    int rc = cli_load_model(cmd, &o, &m);
    if (rc == 0) {
        c.m = m;
        c.tty = isatty(STDIN_FILENO);
        c.rp = oc_reply_default_params();
        c.rp.gen = o.gen;
        c.rp.gen.on_token = print_piece;
        oc_status s = oc_session_new(m, &c.session);
        if (s == OC_OK)
            s = oc_conversation_new(&c.conv);
        if (s == OC_OK)
            s = oc_image_cache_new(m, 64u << 20, &c.cache);
        rc = s == OC_OK ? 0 : cli_fail(cmd, s);
    }
    if (rc == 0 && start_over(&c))
        rc = 2 + OC_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < n_images; i++)
        if (attach(&c, images[i]))
            rc = 2 + OC_ERR_INVALID_ARG;
    if (rc == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGINT, &sa, NULL);
        char default_history[4096];
        const char *home = getenv("HOME");
        if (!history && home && *home) {
            snprintf(default_history, sizeof default_history, "%s/.ocellus_history", home);
            history = default_history;
        }
        if (c.tty) {
            if (history)
                read_history(history);
            fprintf(stderr, "ocellus chat with %s: /image PATH, /clear, /save FILE, /quit; "
                    "Ctrl-C stops an answer\n", oc_model_describe(m));
        }
        loop(&c, history);
    }
    drop_pending(&c);
    free(c.pending);
    free(c.pending_paths);
    oc_image_cache_free(c.cache);
    oc_conversation_free(c.conv);
    oc_session_free(c.session);
    oc_model_free(m);
    free(images);
    return rc;
}
