/* Running the `ocellus` CLI (or any program) from a test: a resource limit on file size,
 * SIGXFSZ left to kill or ignored, standard output to a file or captured, standard error
 * captured; incremental reads so that a test can act on what the child prints. */
#ifndef OC_TESTPROC_H
#define OC_TESTPROC_H
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    long fsize;            /* RLIMIT_FSIZE in bytes; 0: none */
    int xfsz_kills;        /* 1: SIGXFSZ left at its default (the writer dies mid-write) */
    const char *stdout_to; /* a file for standard output (/dev/full); NULL: captured */
} run_opts;

typedef struct {
    pid_t pid;
    int out, err;          /* read ends; -1 when not captured or at their end */
    char *obuf, *ebuf;     /* what was read so far, NUL-terminated */
    size_t on, en;
} child;

/* Starts argv (argv[0] a path) with OMP_NUM_THREADS=1. */
void child_start(child *c, const char *const *argv, const run_opts *o);
/* Reads what the child wrote, waiting up to ms; 0 once both pipes are at their end. */
int child_read(child *c, int ms);
/* Waits for the child (killing it after 300 s): its exit status, or 128 + the signal. */
int child_wait(child *c);
void child_free(child *c);
/* Runs OC_CLI_PATH with args (NULL-terminated, no program name) to the end; *out and
 * *err (malloc'd, may be NULL) get what it printed. o may be NULL. */
int cli(const char *const *args, const run_opts *o, char **out, char **err);
#endif
