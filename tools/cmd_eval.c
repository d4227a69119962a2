/* ocellus eval: exams and benchmarks, scored by the library (eval/); this file parses the
 * arguments, shows progress and prints the results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "eval_output.h"

static const char EVAL_HELP[] =
    "usage: ocellus eval SUBCOMMAND --data PATH [options]   (ocellus eval SUBCOMMAND --help)\n"
    "\n"
    "  mcq         multiple choice: an MMLU-layout folder (text; letter log-probabilities\n"
    "              after \"Answer:\", as the MMLU evaluation or lm-evaluation-harness), or\n"
    "              a JSONL file of questions about images (lmms-eval's prompt)\n"
    "  vqa         VQA accuracy with the official answer normalisation (10 answers), or\n"
    "              exact match (one answer)\n"
    "  captions    BLEU-1..4 and CIDEr-D as the COCO caption evaluation, and exact match\n"
    "  pope        yes/no object existence: accuracy, precision, recall, F1, yes-ratio\n"
    "  perplexity  tokens, mean NLL, perplexity and bits per byte of texts\n"
    "  score       score another system's predictions against references (no model)\n";

static const char COMMON_HELP[] =
    "common options:\n"
    "  --data PATH           the exam (required)\n"
    "  --limit N             score the first N items only\n"
    "  --show-errors N       print the first N wrong items to standard error\n"
    "  --json                print one JSON object (ratios as fractions in [0, 1])\n"
    "  --quiet               no progress line\n";

static const char MCQ_HELP[] =
    "usage: ocellus eval mcq --data DIR_OR_FILE [options]\n"
    "\n"
    "MMLU layout (DIR with dev/NAME_dev.csv and test/NAME_test.csv, or one NAME_test.csv):\n"
    "headerless CSV rows question,A,B,C,D,answer. Each question follows k examples of its\n"
    "subject's dev file in the prompt of the original MMLU evaluation (\"The following are\n"
    "multiple choice questions (with answers) about  SUBJECT.\\n\\n\", each example\n"
    "\"QUESTION\\nA. ...\\nD. ...\\nAnswer: X\\n\\n\"), fewer when it would not fit the\n"
    "context; the answer is the letter the model finds most likely after \"Answer:\" (for a\n"
    "one-token letter, the argmax of the four letters' logits). Accuracy per subject and\n"
    "the micro and macro averages. The shots of a subject are encoded once and reused.\n"
    "\n"
    "A FILE.jsonl of questions about images, {\"image\" | \"images\", \"question\",\n"
    "\"choices\": [...], \"answer\": \"A\", \"hint\"?}, is asked as lmms-eval asks\n"
    "ScienceQA-IMG, AI2D and MMMU: \"QUESTION\\nA. ...\\nB. ...\\nAnswer with the option's\n"
    "letter from the given choices directly.\" after the images; the answer is the most\n"
    "likely letter, or with --generate the generated text (stripped, any case).\n"
    "\n"
    "options:\n"
    "  --shots K             MMLU: dev examples before each question (default 5)\n"
    "  --format F            MMLU: original (default) or harness (lm-evaluation-harness's\n"
    "                        mmlu: one space before the subject, the question stripped, no\n"
    "                        BOS, the context cut from the left when too long)\n"
    "  --split S             MMLU: test (default), val or dev\n"
    "  --show-prompt         print the first question's prompt and stop\n"
    "  --generate            images: generate the answer instead of reading the letters\n"
    "  --suffix TEXT         images: instead of lmms-eval's \"\\nAnswer with the option's\n"
    "                        letter...\" (\\n in TEXT is a line break)\n";

static const char VQA_HELP[] =
    "usage: ocellus eval vqa --data FILE.jsonl [options]\n"
    "\n"
    "Lines {\"image\" | \"images\", \"question\", \"answers\": [10 human answers]} are scored\n"
    "with VQA accuracy as the official evaluation (vqaEval.py) computes it: the mean over\n"
    "the 10 leave-one-out subsets of min(1, matches / 3), the generated answer normalised\n"
    "(punctuation, number words to digits, articles, contractions) and the human answers'\n"
    "punctuation when they differ. Lines with one \"answer\" are an exact match (trimmed,\n"
    "final period and case ignored). Per question type when lines have \"type\".\n"
    "\n"
    "options:\n"
    "  --suffix TEXT         appended to each question, e.g. \"\\nAnswer the question\n"
    "                        using a single word or phrase.\" (LLaVA's VQAv2 prompt)\n";

static const char CAPTIONS_HELP[] =
    "usage: ocellus eval captions --data FILE.jsonl [options]\n"
    "\n"
    "Lines {\"image\" | \"images\", \"captions\" | \"references\": [...] | \"caption\"}: the\n"
    "model captions each image (\"Describe this image.\"), scored with corpus BLEU-1..4\n"
    "(closest reference length) and CIDEr-D (document frequencies from the references,\n"
    "clipping, Gaussian length penalty sigma 6, x10) after the COCO evaluation's\n"
    "tokenization (PTB-style, lower case, punctuation removed), and by exact match with a\n"
    "reference.\n"
    "\n"
    "options:\n"
    "  --prompt TEXT         the request (default \"Describe this image.\")\n";

static const char POPE_HELP[] =
    "usage: ocellus eval pope --data FILE.jsonl [options]\n"
    "\n"
    "Lines {\"image\", \"question\" | \"text\", \"answer\" | \"label\": \"yes\" | \"no\",\n"
    "\"category\"} (POPE: \"Is there a X in the image?\" with random, popular and adversarial\n"
    "absent objects). An answer is a no when its first sentence holds the word \"No\", \"no\"\n"
    "or \"not\", as the POPE script reads it. Accuracy, precision, recall, F1 and the\n"
    "yes-ratio, per category and overall.\n"
    "\n"
    "options:\n"
    "  --suffix TEXT         appended to each question\n";

static const char PPL_HELP[] =
    "usage: ocellus eval perplexity --data FILE [options]\n"
    "\n"
    "FILE.jsonl of {\"text\"}, or a text file of one text a line. Every token of a text is\n"
    "scored after a BOS (or end-of-text) token, in windows of the model's context as\n"
    "lm-evaluation-harness's rolling log-likelihood. Prints the tokens, the mean negative\n"
    "log-likelihood, the perplexity and bits per UTF-8 byte.\n";

static const char SCORE_HELP[] =
    "usage: ocellus eval score --metric vqa|bleu|cider|pope|mcq --predictions P.jsonl\n"
    "                          --references R.jsonl [--json] [--limit N] [--show-errors N]\n"
    "\n"
    "Scores another system's outputs, with no model, by the same rules as the other\n"
    "subcommands. P.jsonl lines {\"id\", \"prediction\"}; R.jsonl lines {\"id\",\n"
    "\"references\": [...]} (bleu, cider: both are printed), {\"id\", \"answers\": [...]}\n"
    "(vqa) or {\"id\", \"answer\"} (vqa exact match, pope, mcq). Ids (strings or integers)\n"
    "match across the files; each reference needs a prediction and each prediction a\n"
    "reference. JSON keys: bleu1..bleu4, cider_d, vqa_accuracy, accuracy, precision,\n"
    "recall, f1, n.\n";

typedef struct {
    const char *cmd;
    uint32_t show_errors;
    int quiet, tty;
    double last;      /* time of the last progress line */
    size_t last_step; /* last tenth reported when not on a terminal */
    int printed;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The question itself: an MMLU prompt's text after its last blank line. */
static const char *tail(const char *prompt) {
    if (!prompt)
        return "";
    const char *last = prompt, *p = prompt;
    while ((p = strstr(p, "\n\n")) && p[2])
        last = p += 2;
    return last;
}

static int on_item(const oc_eval_item *it, void *user_data) {
    progress *pg = user_data;
    if (!it->correct && pg->show_errors && it->so_far->task != OC_EVAL_PERPLEXITY) {
        pg->show_errors--;
        if (pg->printed && pg->tty)
            fputc('\n', stderr);
        pg->printed = 0;
        fprintf(stderr, "%s: %s\n  expected: %s\n  got:      %s\n", it->id, tail(it->prompt),
                it->expected ? it->expected : "", it->prediction ? it->prediction : "");
    }
    double t = now_s();
    const oc_eval_result *r = it->so_far;
    size_t done = it->index + 1, step = it->total ? 10 * done / it->total : 10;
    int show = !pg->quiet && (pg->tty ? t - pg->last > 0.25 || done == it->total
                                      : step != pg->last_step);
    if (show) {
        double elapsed = t - r->seconds, rate = elapsed > 0 ? (double)done / elapsed : 0;
        double eta = rate > 0 ? (double)(it->total - done) / rate : 0;
        fprintf(stderr, "%s%s: %zu/%zu, ", pg->tty ? "\r" : "", pg->cmd, done, it->total);
        if (r->task == OC_EVAL_PERPLEXITY)
            fprintf(stderr, "%llu tokens, ppl %.3f", (unsigned long long)r->tokens, r->perplexity);
        else
            fprintf(stderr, "%.2f%% so far", 100 * r->accuracy);
        fprintf(stderr, ", %.1f/s, ETA %d:%02d  %s", rate, (int)eta / 60, (int)eta % 60,
                pg->tty ? "" : "\n");
        pg->last = t;
        pg->last_step = step;
        pg->printed = 1;
    }
    return cli_interrupted;
}

/* "\n" in a command-line text is a line break. */
static char *unescape(const char *s) {
    char *d = malloc(strlen(s) + 1), *o = d;
    if (!d)
        return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == 'n') {
            *o++ = '\n';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return d;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const char *sub_help(const char *sub) {
    if (!strcmp(sub, "mcq")) return MCQ_HELP;
    if (!strcmp(sub, "vqa")) return VQA_HELP;
    if (!strcmp(sub, "captions")) return CAPTIONS_HELP;
    if (!strcmp(sub, "pope")) return POPE_HELP;
    if (!strcmp(sub, "perplexity")) return PPL_HELP;
    if (!strcmp(sub, "score")) return SCORE_HELP;
    return NULL;
}

typedef struct {
    const char *data, *predictions, *references, *metric, *format, *split, *prompt;
    char *suffix;
    uint32_t limit, show, shots;
    int generate, show_prompt, quiet, have_shots;
} eval_opts;

static const struct option EVAL_OPTIONS[] = {
    {"data", required_argument, NULL, CLI_OPT_LONG},
    {"limit", required_argument, NULL, CLI_OPT_LONG},
    {"show-errors", required_argument, NULL, CLI_OPT_LONG},
    {"quiet", no_argument, NULL, CLI_OPT_LONG},
    {"shots", required_argument, NULL, CLI_OPT_LONG},
    {"format", required_argument, NULL, CLI_OPT_LONG},
    {"split", required_argument, NULL, CLI_OPT_LONG},
    {"prompt", required_argument, NULL, CLI_OPT_LONG},
    {"suffix", required_argument, NULL, CLI_OPT_LONG},
    {"generate", no_argument, NULL, CLI_OPT_LONG},
    {"show-prompt", no_argument, NULL, CLI_OPT_LONG},
    {0},
};
static const struct option SCORE_OPTIONS[] = {
    {"predictions", required_argument, NULL, CLI_OPT_LONG},
    {"references", required_argument, NULL, CLI_OPT_LONG},
    {"metric", required_argument, NULL, CLI_OPT_LONG},
    {"data", required_argument, NULL, CLI_OPT_LONG},
    {"limit", required_argument, NULL, CLI_OPT_LONG},
    {"show-errors", required_argument, NULL, CLI_OPT_LONG},
    {"quiet", no_argument, NULL, CLI_OPT_LONG},
    {"json", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

/* Applies one eval option (flag as cli_parser gives it); 1 taken, 0 not an eval option,
 * -1 usage error. */
static int eval_option(const char *cmd, eval_opts *e, const char *a, const char *v) {
    if (!strcmp(a, "--generate"))
        return e->generate = 1;
    if (!strcmp(a, "--show-prompt"))
        return e->show_prompt = 1;
    if (!strcmp(a, "--quiet"))
        return e->quiet = 1;
    if (!strcmp(a, "--data")) e->data = v;
    else if (!strcmp(a, "--predictions")) e->predictions = v;
    else if (!strcmp(a, "--references")) e->references = v;
    else if (!strcmp(a, "--metric")) e->metric = v;
    else if (!strcmp(a, "--format")) e->format = v;
    else if (!strcmp(a, "--split")) e->split = v;
    else if (!strcmp(a, "--prompt")) e->prompt = v;
    else if (!strcmp(a, "--suffix")) {
        free(e->suffix);
        if (!(e->suffix = unescape(v)))
            return cli_usage(cmd, "out of memory"), -1;
    } else if (!strcmp(a, "--limit")) return cli_u32(cmd, a, v, &e->limit) ? 1 : -1;
    else if (!strcmp(a, "--show-errors")) return cli_u32(cmd, a, v, &e->show) ? 1 : -1;
    else if (!strcmp(a, "--shots")) {
        e->have_shots = 1;
        return cli_u32(cmd, a, v, &e->shots) ? 1 : -1;
    } else
        return 0;
    return 1;
}

/* --show-prompt: the first MMLU question's prompt, as the model receives it. */
static int show_prompt(const oc_model *m, const eval_opts *e, const oc_eval_params *p);

static int parse_metric(const char *name, oc_metric *out) {
    static const char *const names[] = {"vqa", "bleu", "cider", "pope", "mcq"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i])) {
            *out = (oc_metric)i;
            return 1;
        }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fprintf(argc < 2 ? stderr : stdout, "%s", EVAL_HELP);
        return argc < 2 ? CLI_USAGE : 0;
    }
    const char *sub = argv[1];
    const char *help = sub_help(sub);
    if (!help)
        return cli_usage("eval", "unknown subcommand '%s' (mcq, vqa, captions, pope, "
                         "perplexity, score)", sub), CLI_USAGE;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "eval %s", sub);
    int scoring = !strcmp(sub, "score");
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    o.gen.max_tokens = 64;
    eval_opts e = {.format = "original", .split = "test", .shots = 5};
    int rc = 0;
    const struct option *tables[] = {scoring ? SCORE_OPTIONS : EVAL_OPTIONS,
                                     scoring ? NULL : CLI_GEN_OPTIONS, NULL};
    cli_parser ps;
    if (cli_parser_init(&ps, cmd, argc - 1, argv + 1, tables) != 0)
        rc = cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; rc == 0 && (k = cli_parser_next(&ps)) != CLI_OPT_END;) {
        const char *a = ps.flag, *v = ps.arg;
        if (k == CLI_OPT_HELP) {
            printf("%s\n%s%s", help, COMMON_HELP, scoring ? "" : CLI_GEN_HELP);
            free(e.suffix);
            return 0;
        }
        int r = -1;
        if (k == CLI_OPT_ARG)
            cli_usage(cmd, "unexpected argument %s", v);
        else if (k != CLI_OPT_ERROR && (r = eval_option(cmd, &e, a, v)) == 0)
            r = scoring ? (o.json = 1) : cli_gen_apply(cmd, &o, a, v); /* score: --json */
        if (r <= 0)
            rc = CLI_USAGE;
    }
    oc_eval_params p = oc_eval_default_params();
    oc_metric metric = OC_METRIC_VQA;
    if (rc == 0 && scoring && (!e.metric || !e.predictions || !e.references))
        rc = (cli_usage(cmd, "--metric, --predictions and --references are required"), CLI_USAGE);
    else if (rc == 0 && scoring && !parse_metric(e.metric, &metric))
        rc = (cli_usage(cmd, "--metric is vqa, bleu, cider, pope or mcq, not '%s'", e.metric),
              CLI_USAGE);
    else if (rc == 0 && !scoring && !e.data)
        rc = (cli_usage(cmd, "--data is required"), CLI_USAGE);
    if (rc == 0 && strcmp(e.format, "original") && strcmp(e.format, "harness"))
        rc = (cli_usage(cmd, "--format is original or harness, not '%s'", e.format), CLI_USAGE);
    if (rc) {
        free(e.suffix);
        return rc;
    }
    /* a job of several ranks (mpirun): each scores its block of the items, rank 0 prints
     * the counts of all */
    oc_status ds = oc_dist_init();
    if (ds != OC_OK) {
        free(e.suffix);
        return cli_fail(cmd, ds);
    }
    oc_dist_info job = oc_dist_get_info();
    int rank0 = job.rank == 0;
    if (job.size > 1 && !o.threads)
        o.threads = job.threads;
    p.dist = job.size > 1 && !scoring;
    int image_mcq = !strcmp(sub, "mcq") && ends_with(e.data, ".jsonl");
    p.limit = e.limit;
    p.gen = o.gen;
    p.shots = e.shots;
    p.format = strcmp(e.format, "harness") ? OC_MCQ_ORIGINAL : OC_MCQ_HARNESS;
    p.split = e.split;
    p.generate = e.generate;
    p.prompt = e.prompt;
    p.suffix = e.suffix;
    progress pg = {cmd, rank0 ? e.show : 0, e.quiet || !rank0, isatty(STDERR_FILENO), 0, 99, 0};
    p.on_item = on_item;
    p.user_data = &pg;
    cli_install_sigint();

    oc_model *m = NULL;
    if (!scoring && (rc = cli_load_model(cmd, &o, &m)) != 0) {
        free(e.suffix);
        oc_dist_abort(rc); /* the other ranks would wait for this one */
        return rc;
    }
    if (e.show_prompt && !image_mcq && !strcmp(sub, "mcq")) {
        p.dist = 0;
        rc = rank0 ? show_prompt(m, &e, &p) : 0;
        oc_model_free(m);
        free(e.suffix);
        oc_dist_finalize();
        return rc;
    }
    oc_eval_result r;
    oc_status s;
    if (scoring)
        s = oc_eval_score(metric, e.predictions, e.references, &p, &r);
    else if (image_mcq)
        s = oc_eval_image_mcq(m, e.data, &p, &r);
    else if (!strcmp(sub, "mcq"))
        s = oc_eval_mcq(m, e.data, &p, &r);
    else if (!strcmp(sub, "vqa"))
        s = oc_eval_vqa(m, e.data, &p, &r);
    else if (!strcmp(sub, "captions"))
        s = oc_eval_captions(m, e.data, &p, &r);
    else if (!strcmp(sub, "pope"))
        s = oc_eval_pope(m, e.data, &p, &r);
    else
        s = oc_eval_perplexity(m, e.data, &p, &r);
    if (pg.printed && pg.tty)
        fputc('\n', stderr);
    if (s != OC_ERR_CANCELLED)
        cli_end_job_if_alone(cmd, s);
    if (!rank0) { /* rank 0 prints for the job */
        rc = s == OC_OK ? 0 : 2 + (int)s;
        if (s == OC_OK || s == OC_ERR_CANCELLED)
            oc_eval_result_free(&r);
    } else if (s == OC_OK || s == OC_ERR_CANCELLED) {
        eval_run run = {image_mcq ? "mcq (images)" : sub, scoring ? e.references : e.data,
                        scoring ? e.predictions : NULL, scoring ? e.metric : NULL,
                        e.format, e.shots, e.generate};
        if (o.json ? !eval_print_json(&run, &r) : (eval_print_table(&run, &r), 0))
            rc = 2 + OC_ERR_NOMEM;
        oc_eval_result_free(&r);
        if (s == OC_ERR_CANCELLED) {
            fprintf(stderr, "ocellus %s: interrupted; the counts above are for the items "
                    "scored so far\n", cmd);
            rc = 2 + OC_ERR_CANCELLED;
        }
    } else {
        rc = cli_fail(cmd, s);
    }
    oc_model_free(m);
    free(e.suffix);
    oc_dist_finalize();
    return rc;
}

/* Prints the prompt of the first question through the library's item report (limit 1). */
static int first_prompt(const oc_eval_item *it, void *user_data) {
    (void)user_data;
    fputs(it->prompt, stdout);
    fputc('\n', stdout);
    return 1; /* stop after it */
}

static int show_prompt(const oc_model *m, const eval_opts *e, const oc_eval_params *params) {
    oc_eval_params p = *params;
    p.limit = 1;
    p.on_item = first_prompt;
    oc_eval_result r;
    oc_status s = oc_eval_mcq(m, e->data, &p, &r);
    if (s == OC_OK || s == OC_ERR_CANCELLED) {
        oc_eval_result_free(&r);
        return 0;
    }
    return cli_fail("eval mcq", s);
}
