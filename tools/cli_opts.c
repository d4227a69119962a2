/* Option parsing for every `ocellus` command: getopt_long over the command's option
 * tables, with the command's own messages instead of getopt's. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv,
                    const struct option *const *tables) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    size_t n = 0, ns = 0;
    /* "-": positionals come back in order as key 1 (whatever POSIXLY_CORRECT says);
     * ":": a missing value is ':' and getopt prints nothing */
    p->shorts[ns++] = '-';
    p->shorts[ns++] = ':';
    static const struct option help = {"help", no_argument, NULL, 'h'};
    for (size_t t = 0; tables[t]; t++)
        for (const struct option *o = tables[t]; o->name; o++) {
            if (n + 2 > CLI_MAX_OPTIONS || ns + 4 > sizeof p->shorts)
                return -1; /* a table too large: a bug, caught by the --help test */
            p->longs[n++] = *o;
            int c = o->val;
            if (c > ' ' && c < 0x7f && !strchr(p->shorts + 2, c)) {
                p->shorts[ns++] = (char)c;
                if (o->has_arg == required_argument)
                    p->shorts[ns++] = ':';
            }
        }
    p->longs[n++] = help;
    p->shorts[ns++] = 'h';
    memset(&p->longs[n], 0, sizeof p->longs[n]);
    p->shorts[ns] = 0;
    optind = 0; /* glibc: start over (a fresh scan of this argv) */
    opterr = 0;
    return 0;
}

/* The first entry with this key: a short alias names its option by the long name
 * listed first (the one the help shows). */
static const struct option *by_key(const cli_parser *p, int key) {
    for (const struct option *o = p->longs; o->name; o++)
        if (o->val == key)
            return o;
    return NULL;
}

/* The option as typed, without "=VALUE". */
static void typed(const char *arg, char *buf, size_t n) {
    size_t k = strcspn(arg, "=");
    snprintf(buf, n, "%.*s", (int)(k < 60 ? k : 60), arg);
}

/* An unknown long option, or an abbreviation of several. */
static void unknown_long(const cli_parser *p, const char *arg) {
    char name[64], list[256] = "";
    typed(arg, name, sizeof name);
    size_t len = strlen(name + 2), hits = 0, used = 0;
    for (const struct option *o = p->longs; o->name; o++)
        if (len && !strncmp(o->name, name + 2, len) && used < sizeof list - 64) {
            used += (size_t)snprintf(list + used, sizeof list - used, "%s--%s",
                                     hits ? ", " : "", o->name);
            hits++;
        }
    if (hits > 1)
        cli_usage(p->cmd, "ambiguous option %s (%s)", name, list);
    else
        cli_usage(p->cmd, "unknown option %s", name);
}

static int error(cli_parser *p, int c) {
    const char *prev = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
    int is_long = !strncmp(prev, "--", 2);
    const struct option *o = optopt ? by_key(p, optopt) : NULL;
    char name[64];
    if (c == ':') { /* a value missing at the end of the line */
        if (is_long)
            typed(prev, name, sizeof name);
        else
            snprintf(name, sizeof name, "-%c", optopt);
        cli_usage(p->cmd, "%s needs a value", name);
    } else if (!optopt && is_long) {
        unknown_long(p, prev);
    } else if (o && is_long && strchr(prev, '=')) {
        typed(prev, name, sizeof name);
        cli_usage(p->cmd, "%s takes no value", name);
    } else if (optopt > ' ' && optopt < 0x7f) {
        cli_usage(p->cmd, "unknown option -%c", optopt);
    } else {
        cli_usage(p->cmd, "bad option %s", prev);
    }
    return CLI_OPT_ERROR;
}

int cli_parser_next(cli_parser *p) {
    p->arg = NULL;
    p->flag[0] = 0;
    p->name = NULL;
    if (p->done) {
        if (p->rest < p->argc) {
            p->arg = p->argv[p->rest++];
            return CLI_OPT_ARG;
        }
        return CLI_OPT_END;
    }
    int idx = -1;
    int c = getopt_long(p->argc, p->argv, p->shorts, p->longs, &idx);
    if (c == -1) { /* the end, or "--": what follows is positional */
        p->done = 1;
        p->rest = optind;
        return cli_parser_next(p);
    }
    if (c == 1) {
        p->arg = optarg;
        return CLI_OPT_ARG;
    }
    if (c == '?' || c == ':')
        return error(p, c);
    const struct option *o = c < 0x100 ? by_key(p, c) : idx >= 0 ? &p->longs[idx] : NULL;
    if (!o) /* getopt returned a key it was not given */
        return cli_usage(p->cmd, "bad option %s", p->argv[optind - 1]), CLI_OPT_ERROR;
    p->name = o->name;
    snprintf(p->flag, sizeof p->flag, "--%s", o->name);
    p->arg = optarg;
    return c;
}

char **cli_parser_rest(cli_parser *p, int *n) {
    int from = p->done ? p->rest : optind;
    *n = p->argc - from;
    p->done = 1;
    p->rest = p->argc;
    return p->argv + from;
}

int cli_is_help(const char *a) {
    size_t n = strlen(a);
    return !strcmp(a, "-h") || (n >= 3 && n <= 6 && !strncmp(a, "--help", n));
}

int cli_parser_init1(cli_parser *p, const char *cmd, int argc, char **argv,
                     const struct option *options) {
    const struct option *tables[] = {options, NULL};
    return cli_parser_init(p, cmd, argc, argv, tables);
}

int cli_next_option(cli_parser *p, const char *help, int *rc) {
    int k = cli_parser_next(p);
    if (k == CLI_OPT_HELP) {
        fputs(help, stdout);
        *rc = 0;
    } else if (k == CLI_OPT_ERROR) {
        *rc = CLI_USAGE;
    }
    return k == CLI_OPT_HELP || k == CLI_OPT_ERROR ? CLI_OPT_END : k;
}
