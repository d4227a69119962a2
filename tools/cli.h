/* Shared pieces of the `ocellus` command line: option parsing, errors, exit codes.
 * tools/ sees only the public header. */
#ifndef OC_CLI_H
#define OC_CLI_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ocellus.h"

/* Exit codes: 0 success, 2 usage error, 2 + status for a library failure (3 invalid
 * argument, 4 I/O, 5 malformed file, 6 unsupported, 7 out of memory, 8 over a limit,
 * 9 interrupted, 10 internal error). */
#define CLI_USAGE 2
int cli_fail(const char *cmd, oc_status s);      /* prints oc_last_error(), returns code */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option values; each returns 0 and prints a usage error on bad input. */
int cli_u32(const char *cmd, const char *opt, const char *val, uint32_t *out);
int cli_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *val, float *out);

/* The value after argv[*i] for option opt, or NULL (usage error printed). */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* The model folder: --model, else $OCELLUS_MODEL, else the bundled model. */
const char *cli_default_model(void);

/* Options shared by commands that load a model and generate. Returns 1 if argv[*i] was
 * one of them (consuming its value), 0 if not, -1 on a usage error. */
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
int cli_gen_option(const char *cmd, cli_gen_opts *o, int argc, char **argv, int *i);
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
#endif
