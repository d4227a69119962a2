/* Shared pieces of the `ocellus` command line: option parsing, errors, exit codes.
 * tools/ sees only the public header. */
#ifndef OC_CLI_H
#define OC_CLI_H
#include <stddef.h>
#include <stdint.h>

#include <getopt.h>

#include <cjson/cJSON.h>

#include "ocellus.h"

/* Exit codes: 0 success, 2 usage error, 2 + status for a library failure (3 invalid
 * argument, 4 I/O, 5 malformed file, 6 unsupported, 7 out of memory, 8 over a limit,
 * 9 interrupted, 10 internal error). */
#define CLI_USAGE 2
int cli_fail(const char *cmd, oc_status s);      /* prints oc_last_error(), returns code */
/* In a job of several ranks: a failure s of this rank alone (not agreed among them) would
 * leave the others waiting, so it is printed as "rank R of N: ..." and the whole job ends
 * (oc_dist_abort, exit code 2 + s). Returns when s is OC_OK, agreed, or the process alone. */
void cli_end_job_if_alone(const char *cmd, oc_status s);
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option values; each returns 0 and prints a usage error on bad input. */
int cli_u32(const char *cmd, const char *opt, const char *val, uint32_t *out);
int cli_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *val, float *out);

/* The model folder: --model, else $OCELLUS_MODEL, else the bundled model. */
const char *cli_default_model(void);

/* Options shared by commands that load a model and generate (CLI_GEN_OPTIONS). */
typedef struct {
    const char *model;
    int threads;
    oc_weight_format weights;
    const char *mmproj;        /* --mmproj: a GGUF model's vision file */
    int fixed_threads; /* benchmarks: every call on all the threads asked for */
    oc_gen_params gen;
    int json;
    int stream; /* -1 auto (terminal), 0 off, 1 on */
    uint64_t max_pixels; /* --max-pixels; 0: the library's default */
} cli_gen_opts;
void cli_gen_opts_init(cli_gen_opts *o);
/* Applies option flag ("--max-tokens", as cli_parser gives it) with value v (NULL for a
 * flag without one): 1 if it was one of them, 0 if not, -1 on a usage error (printed). */
int cli_gen_apply(const char *cmd, cli_gen_opts *o, const char *flag, const char *v);
extern const struct option CLI_GEN_OPTIONS[];
extern const char CLI_GEN_HELP[];

/* Progress of image encoding and prefill on standard error, when it is a terminal:
 * sets gen.on_progress (and stops generation on Ctrl-C). */
void cli_progress_on_terminal(cli_gen_opts *o);
/* The image limits the options ask for. */
oc_image_limits cli_image_limits(const cli_gen_opts *o);

/* Loads the model named by the options. */
int cli_load_model(const char *cmd, const cli_gen_opts *o, oc_model **m);

/* fflush(stdout), remembering in cli_stdout_errno why the first failure failed (main
 * reports it at exit); 0 on success. */
int cli_flush(void);
extern int cli_stdout_errno;

/* Set by SIGINT; generation callbacks stop when it is set. */
extern volatile int cli_interrupted;
void cli_install_sigint(void);

/* ---- JSON output (cli_json.c): built with cJSON, strings always valid UTF-8 ---------- */

/* A JSON string of n bytes: each byte that is not part of valid UTF-8 becomes U+FFFD
 * (*replaced, if not NULL, counts them); NUL bytes are kept (\u0000). NULL when out of
 * memory. */
cJSON *cli_json_bytes(const char *s, size_t n, size_t *replaced);
cJSON *cli_json_str(const char *s);
/* Adds value to obj under key; frees value and returns 0 if either is NULL or on failure. */
int cli_json_add(cJSON *obj, const char *key, cJSON *value);
/* Prints j (unless !ok) on one line of standard output and frees it; -1 (message
 * printed) if it could not be built. */
int cli_json_print(cJSON *j, int ok);
/* The JSON string literal of s on stdout (as cli_json_str). */
void cli_json_string(const char *s);

/* ---- option parsing (cli_opts.c): getopt_long over a command's tables ---------------
 * Options are `--name VALUE`, `--name=VALUE`, an unambiguous abbreviation of the name,
 * or a short alias (`-n 12`, `-n12`); `--` ends the options; positionals may come
 * before, between and after them; -h and --help are always there. An option's key is
 * its short alias's letter, else CLI_OPT_LONG (the flag tells which). */
#define CLI_OPT_LONG 0x100
#define CLI_OPT_ARG 1      /* a positional argument, in p->arg */
#define CLI_OPT_END (-1)   /* no more arguments */
#define CLI_OPT_ERROR (-2) /* a usage error, printed */
#define CLI_OPT_HELP 'h'
#define CLI_MAX_OPTIONS 96
typedef struct {
    const char *cmd;
    int argc;
    char **argv;
    const char *arg;  /* the option's value (NULL if it takes none), or the positional */
    const char *name; /* the option's long name, "max-tokens" (NULL for a positional) */
    char flag[72];    /* "--max-tokens", whatever alias or abbreviation was typed */
    int done, rest;   /* after the options: positionals from argv[rest] */
    struct option longs[CLI_MAX_OPTIONS];
    char shorts[2 * CLI_MAX_OPTIONS];
} cli_parser;
/* tables: a NULL-terminated list of option arrays, each ended by a zero entry. Returns
 * -1 if they are too many (CLI_MAX_OPTIONS). Uses getopt's globals: one parser at a time. */
int cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv,
                    const struct option *const *tables);
/* The next option's key, CLI_OPT_ARG, CLI_OPT_END or CLI_OPT_ERROR. */
int cli_parser_next(cli_parser *p);
/* For a subcommand with one option table and a help text: the next key, with --help
 * (help printed, *rc = 0) and usage errors (*rc = CLI_USAGE) ending the loop as
 * CLI_OPT_END does. */
int cli_parser_init1(cli_parser *p, const char *cmd, int argc, char **argv,
                     const struct option *options);
int cli_next_option(cli_parser *p, const char *help, int *rc);
/* The arguments not yet read, taken as they are (none of them parsed as an option). */
char **cli_parser_rest(cli_parser *p, int *n);
/* 1 if a is -h, --help or an abbreviation of it (--he): for the commands that pick a
 * subcommand before parsing options. */
int cli_is_help(const char *a);
#endif
