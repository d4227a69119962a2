/* ocellus train-tokenizer: byte-level BPE on text files, written as tokenizer.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ocellus.h"

static const char HELP[] =
    "usage: ocellus train-tokenizer --corpus FILE... --vocab-size N --out tokenizer.json\n"
    "                               [--special TOKEN...] [--min-frequency N]\n"
    "\n"
    "Trains a byte-level BPE tokenizer (GPT-2 style, as Hugging Face tokenizers'\n"
    "BpeTrainer with a ByteLevel pre-tokenizer) on UTF-8 text files, one sequence per line,\n"
    "and writes a tokenizer.json that ocellus and Hugging Face tokenizers load.\n"
    "\n"
    "options:\n"
    "  --corpus FILE...     text files (at least one)\n"
    "  --vocab-size N       total vocabulary: special tokens + 256 bytes + merges (required)\n"
    "  --out PATH           the tokenizer.json to write (required)\n"
    "  --special TOKEN...   special tokens, ids 0.. in this order, kept whole in the corpus\n"
    "                       (default: SmolVLM's <|endoftext|> <|im_start|> <|im_end|>\n"
    "                       <fake_token_around_image> <image> <end_of_utterance>\n"
    "                       <global-img> <row_R_col_C> for R, C in 1..6); giving any\n"
    "                       replaces the default set\n"
    "  --min-frequency N    never merge a pair seen fewer than N times (default 2)\n";

/* Collects the values after a multi-value option up to the next "--" option. */
static int take_values(int argc, char **argv, int *i, const char ***list, size_t *n) {
    int start = *i + 1, end = start;
    while (end < argc && strncmp(argv[end], "--", 2) != 0)
        end++;
    if (end == start)
        return 0;
    const char **l = realloc((void *)*list, (*n + (size_t)(end - start)) * sizeof *l);
    if (!l)
        return 0;
    for (int k = start; k < end; k++)
        l[(*n)++] = argv[k];
    *list = l;
    *i = end - 1;
    return 1;
}

int cmd_train_tokenizer(int argc, char **argv) {
    const char *cmd = "train-tokenizer";
    oc_bpe_train_params p = oc_bpe_train_default_params();
    const char **corpus = NULL, **special = NULL, *out = NULL, *v;
    size_t n_corpus = 0, n_special = 0;
    int have_vocab = 0, have_special = 0, rc = -1; /* -1: keep going */
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(HELP, stdout);
            rc = 0;
        } else if (!strcmp(a, "--corpus")) {
            if (!take_values(argc, argv, &i, &corpus, &n_corpus))
                rc = cli_usage(cmd, "--corpus needs at least one file") + CLI_USAGE;
        } else if (!strcmp(a, "--special")) {
            have_special = 1;
            if (!take_values(argc, argv, &i, &special, &n_special))
                rc = cli_usage(cmd, "--special needs at least one token") + CLI_USAGE;
        } else if (!strcmp(a, "--vocab-size")) {
            if (!(v = cli_value(cmd, argc, argv, &i)) || !cli_u32(cmd, a, v, &p.vocab_size))
                rc = CLI_USAGE;
            have_vocab = 1;
        } else if (!strcmp(a, "--min-frequency")) {
            if (!(v = cli_value(cmd, argc, argv, &i)) || !cli_u32(cmd, a, v, &p.min_frequency))
                rc = CLI_USAGE;
        } else if (!strcmp(a, "--out")) {
            if (!(v = cli_value(cmd, argc, argv, &i)))
                rc = CLI_USAGE;
            out = v;
        } else {
            rc = cli_usage(cmd, "unknown option '%s'", a) + CLI_USAGE; /* cli_usage gives 0 */
        }
    }
    if (rc < 0 && (!n_corpus || !have_vocab || !out))
        rc = cli_usage(cmd, "needs --corpus, --vocab-size and --out") + CLI_USAGE;
    if (rc < 0) {
        if (have_special) {
            p.special = special;
            p.n_special = n_special;
        }
        oc_status s = oc_bpe_train(corpus, n_corpus, &p, out);
        rc = s == OC_OK ? 0 : cli_fail(cmd, s);
        if (s == OC_OK)
            fprintf(stderr, "ocellus train-tokenizer: wrote %s\n", out);
    }
    free((void *)corpus);
    free((void *)special);
    return rc;
}
