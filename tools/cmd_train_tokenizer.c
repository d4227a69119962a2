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

/* Appends v to a multi-value option's list; 0 when out of memory. */
static int add_value(const char ***list, size_t *n, const char *v) {
    const char **l = realloc((void *)*list, (*n + 1) * sizeof *l);
    if (!l)
        return 0;
    l[(*n)++] = v;
    *list = l;
    return 1;
}

static const struct option OPTIONS[] = {
    {"corpus", required_argument, NULL, CLI_OPT_LONG},
    {"special", required_argument, NULL, CLI_OPT_LONG},
    {"vocab-size", required_argument, NULL, CLI_OPT_LONG},
    {"min-frequency", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_train_tokenizer(int argc, char **argv) {
    const char *cmd = "train-tokenizer";
    oc_bpe_train_params p = oc_bpe_train_default_params();
    const char **corpus = NULL, **special = NULL, *out = NULL;
    size_t n_corpus = 0, n_special = 0;
    int have_vocab = 0, have_special = 0, rc = -1; /* -1: keep going */
    int list = 0; /* the multi-value option positionals go to: 1 corpus, 2 special */
    const struct option *tables[] = {OPTIONS, NULL};
    cli_parser ps;
    if (cli_parser_init(&ps, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; rc < 0 && (k = cli_parser_next(&ps)) != CLI_OPT_END;) {
        const char *a = ps.flag, *v = ps.arg;
        if (k == CLI_OPT_ERROR) {
            rc = CLI_USAGE;
        } else if (k == CLI_OPT_HELP) {
            fputs(HELP, stdout);
            rc = 0;
        } else if (k == CLI_OPT_ARG && !list) {
            rc = cli_usage(cmd, "unexpected argument %s", v) + CLI_USAGE; /* gives 0 */
        } else if (k == CLI_OPT_ARG || !strcmp(a, "--corpus") || !strcmp(a, "--special")) {
            /* --corpus A B C: the files after it, up to the next option */
            if (k != CLI_OPT_ARG)
                list = !strcmp(a, "--corpus") ? 1 : 2;
            have_special |= list == 2;
            if (!(list == 1 ? add_value(&corpus, &n_corpus, v)
                            : add_value(&special, &n_special, v)))
                rc = cli_fail(cmd, OC_ERR_NOMEM);
        } else if (!strcmp(a, "--vocab-size")) {
            list = 0;
            if (!cli_u32(cmd, a, v, &p.vocab_size))
                rc = CLI_USAGE;
            have_vocab = 1;
        } else if (!strcmp(a, "--min-frequency")) {
            list = 0;
            if (!cli_u32(cmd, a, v, &p.min_frequency))
                rc = CLI_USAGE;
        } else { /* --out */
            list = 0;
            out = v;
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
