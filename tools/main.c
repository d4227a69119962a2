/* ocellus: the command-line tool. Thin: parses arguments and calls the library. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ocellus.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"caption", cmd_caption, "describe images"},
    {"ask", cmd_ask, "answer a question about images"},
    {"inspect", cmd_inspect, "dump intermediate tensors to compare with transformers"},
    {"bench", cmd_bench, "measure image encoding, prompt and generation speed"},
    {"make-model", cmd_make_model, "write a random-weight model with a preset's shapes"},
    {"tokenize", cmd_tokenize, "encode text or decode ids with a tokenizer.json"},
    {"train", cmd_train, "train or fine-tune a model on a JSONL dataset"},
    {"train-tokenizer", cmd_train_tokenizer, "train a byte-level BPE tokenizer.json"},
    {"data", cmd_data, "write datasets (the synthetic shapes world)"},
    {"eval", cmd_eval, "exams: MMLU, image MCQ, VQA, captions (BLEU, CIDEr-D), POPE, perplexity"},
    {"chat", cmd_chat, "chat with the model about images, on a terminal or from a pipe"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (/v1/chat/completions)"},
    /* scaling laws (issue 13) */
    {"scale", cmd_scale, "predict a run's loss from small runs; fit a CSV of runs"},
    {"plot", cmd_plot, "draw training curves (CSV) as PNG or SVG"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ocellus COMMAND [options]   (ocellus COMMAND --help for more)\n"
               "       ocellus --version\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\nexit codes: 0 ok, 2 usage error, 3 invalid argument, 4 I/O error, "
               "5 malformed file,\n6 unsupported, 7 out of memory, 8 over a limit, "
               "9 interrupted, 10 internal error\n");
}

/* A command's output is only as good as its last write: flush and close standard output
 * and check that every write to it succeeded (a full disk, /dev/full, a closed pipe
 * would otherwise leave a truncated file behind an exit status of 0). */
static int finish(const char *cmd, int rc) {
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = cli_stdout_errno ? cli_stdout_errno : errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        fprintf(stderr, "ocellus%s%s: error writing standard output%s%s\n", *cmd ? " " : "",
                cmd, e ? ": " : "", e ? strerror(e) : "");
        if (rc == 0)
            rc = 4; /* I/O error */
    }
    if ((fflush(stderr) != 0 || ferror(stderr)) && rc == 0)
        rc = 4; /* nowhere left to say it */
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return finish("", 2);
    }
    /* ocellus help COMMAND: COMMAND --help */
    char help_flag[] = "--help";
    char *help_argv[] = {argv[0], argc == 3 ? argv[2] : NULL, help_flag, NULL};
    if (!strcmp(argv[1], "help") && argc == 3) {
        argc = 3;
        argv = help_argv;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish(argv[1], 0);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("ocellus %s\n", OCELLUS_VERSION);
        return finish(argv[1], 0);
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name))
            return finish(argv[1], COMMANDS[i].run(argc - 1, argv + 1));
    fprintf(stderr, "ocellus: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return finish(argv[1], 2);
}
