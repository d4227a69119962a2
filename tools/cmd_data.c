/* ocellus data: make datasets (the built-in shapes world). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ocellus.h"

static const char DATA_HELP[] =
    "usage: ocellus data shapes --split train|val|test --n N --out DIR [options]\n"
    "       ocellus data check FILE.jsonl --model DIR [--max-tokens N] [--preferences]\n"
    "       ocellus data preferences --model DIR --data VQA.jsonl --out PAIRS.jsonl\n"
    "                                [--samples N] [--temperature T] [options]\n"
    "\n"
    "data preferences: samples N answers (default 8, temperature default 1) to each\n"
    "question of a VQA file ({\"image\", \"question\", \"answer\" | \"answers\"}, e.g. a\n"
    "shapes vqa.jsonl), grades them with the judge (VQA accuracy against the reference\n"
    "answers after the VQA normaliser: for the shapes world the scene's truth) and writes\n"
    "the best and worst as {\"prompt\", \"chosen\", \"rejected\", \"images\"} for ocellus\n"
    "train --objective dpo|simpo|orpo. Options: --max-tokens N (32), --seed S, --limit N\n"
    "(first N questions), --reference-fallback (when every sample is wrong, the reference\n"
    "answer is the chosen reply), --threads N.\n"
    "\n"
    "data check: reads a fine-tuning JSONL file (LLaVA \"conversations\", Hugging Face\n"
    "\"messages\", or pre-tokenized \"input_ids\"/\"labels\"), encodes every example for\n"
    "the model (chat format, tokenizer, image processor) and prints counts; the first bad\n"
    "line is reported as FILE:LINE: what is wrong. --preferences: the file holds preference\n"
    "pairs (TRL's DPO format: \"prompt\", \"chosen\", \"rejected\", \"images\"), as\n"
    "ocellus train --objective dpo|simpo|orpo reads them.\n"
    "\n"
    "data shapes:\n"
    "Writes a dataset of the built-in shapes world: scenes of 1-4 objects (circle, square,\n"
    "triangle, star, cross in red, green, blue, yellow, purple, orange; small or large) on a\n"
    "white, grey or black background. Scene i of a split is a pure function of (split,\n"
    "seed, i); train, val and test never share a scene, whatever their seeds.\n"
    "\n"
    "DIR receives:\n"
    "  images/NNNNN.png     the scenes\n"
    "  captions.jsonl       {\"image\", \"caption\"}, e.g. \"a large red circle to the left\n"
    "                       of a small blue square on a white background\"\n"
    "  vqa.jsonl            {\"image\", \"question\", \"answer\"}, one-word answers\n"
    "  mc.jsonl             {\"image\", \"question\", \"choices\": [4], \"answer\": \"A\"..\"D\"}\n"
    "  conversations.jsonl  LLaVA fine-tuning format: \"Describe this image.\" (answered\n"
    "                       by the caption) and the questions, in one chat per image\n"
    "  info.json            the parameters\n"
    "and the exams (for ocellus eval; not with --no-exams):\n"
    "  vqa10.jsonl          vqa.jsonl's questions with 10 answers each (VQA's format), the\n"
    "                       world's paraphrases among them (\"2\"/\"two\", \"grey\"/\"gray\")\n"
    "  captions5.jsonl      {\"image\", \"captions\": [5]}: the caption, the objects in\n"
    "                       reverse order with left/right and above/below flipped, both\n"
    "                       with the background first, and \"there is ...\"\n"
    "  mcq_images.jsonl     mc.jsonl's items with \"id\" and \"type\"\n"
    "  pope.jsonl           POPE: \"Is there a red circle?\" for objects present and absent\n"
    "                       (random, popular, adversarial), with \"answer\" and \"category\"\n"
    "  mmlu/                MMLU layout: dev/ and SPLIT/ CSVs of text questions about the\n"
    "                       world's rules (shapes_geometry, shapes_rules, shapes_captions,\n"
    "                       shapes_relations)\n"
    "\n"
    "options:\n"
    "  --split S          train, val or test (required)\n"
    "  --n N              number of scenes (required)\n"
    "  --out DIR          output folder (required): written whole beside DIR, then put in\n"
    "                     its place; files in DIR that a dataset does not hold are kept\n"
    "  --seed S           seed (default 0)\n"
    "  --size PX          image side in pixels, 32..1024 (default 64)\n"
    "  --questions K      questions per image in vqa.jsonl and conversations (default 4)\n"
    "  --mc K             multiple-choice items per image (default 1)\n"
    "  --mmlu-questions K questions per subject in mmlu/SPLIT/ (default 50)\n"
    "  --no-exams         only the training files\n"
    "  --question-weights TYPE=W,...\n"
    "                     how often each question type is drawn, relative to the others\n"
    "                     (default 1 each; 0 never, at most 1000). Types: count,\n"
    "                     count_colour, count_shape, colour_of, shape_of, exists, left_of,\n"
    "                     above, size_of, background. E.g. left_of=4,above=4,background=0\n"
    "  --false-premise P  replace each question with probability P by one whose premise\n"
    "                     is false (\"What colour is the star?\" with no star), answered\n"
    "                     in the world's grammar (\"there is no star\"); type\n"
    "                     false_premise in vqa.jsonl and vqa10.jsonl (default 0: none)\n";

/* "left_of=4,above=0": sets those types' weights; the others keep theirs. */
static int parse_weights(const char *cmd, const char *v, uint32_t *w) {
    char buf[512];
    if (strlen(v) >= sizeof buf)
        return cli_usage(cmd, "--question-weights is too long"), 0;
    memcpy(buf, v, strlen(v) + 1);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            return cli_usage(cmd, "--question-weights: '%s' is not TYPE=W", item), 0;
        *eq = 0;
        int t = 0;
        while (t < OC_SHAPES_QUESTION_TYPES && strcmp(oc_shapes_question_type(t), item) != 0)
            t++;
        if (t == OC_SHAPES_QUESTION_TYPES)
            return cli_usage(cmd, "--question-weights: no question type '%s'", item), 0;
        if (!cli_u32(cmd, "--question-weights", eq + 1, &w[t]))
            return 0;
    }
    return 1;
}

static const struct option SHAPES_OPTIONS[] = {
    {"split", required_argument, NULL, CLI_OPT_LONG},
    {"n", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {"size", required_argument, NULL, CLI_OPT_LONG},
    {"questions", required_argument, NULL, CLI_OPT_LONG},
    {"mc", required_argument, NULL, CLI_OPT_LONG},
    {"question-weights", required_argument, NULL, CLI_OPT_LONG},
    {"mmlu-questions", required_argument, NULL, CLI_OPT_LONG},
    {"false-premise", required_argument, NULL, CLI_OPT_LONG},
    {"no-exams", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

static int shapes(int argc, char **argv) {
    const char *cmd = "data";
    oc_shapes_params p = oc_shapes_default_params();
    const char *out = NULL, *v;
    int have_split = 0, have_n = 0, have_weights = 0;
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, SHAPES_OPTIONS) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, DATA_HELP, &rc)) != CLI_OPT_END;) {
        const char *a = ps.flag;
        v = ps.arg;
        if (k == CLI_OPT_ARG)
            return cli_usage(cmd, "unexpected argument '%s'", v), CLI_USAGE;
        if (!strcmp(a, "--no-exams")) {
            p.write_exams = 0;
            continue;
        }
        uint64_t u64;
        if (!strcmp(a, "--split")) {
            int sp = oc_split_parse(v);
            if (sp < 0)
                return cli_usage(cmd, "--split must be train, val or test, not '%s'", v),
                       CLI_USAGE;
            p.split = (oc_split)sp;
            have_split = 1;
        } else if (!strcmp(a, "--n")) {
            if (!cli_u64(cmd, a, v, &u64))
                return CLI_USAGE;
            p.n = (size_t)u64;
            have_n = 1;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_u64(cmd, a, v, &p.seed))
                return CLI_USAGE;
        } else if (!strcmp(a, "--size")) {
            if (!cli_u32(cmd, a, v, &p.image_size))
                return CLI_USAGE;
        } else if (!strcmp(a, "--questions")) {
            if (!cli_u32(cmd, a, v, &p.questions_per_image))
                return CLI_USAGE;
        } else if (!strcmp(a, "--mc")) {
            if (!cli_u32(cmd, a, v, &p.mc_per_image))
                return CLI_USAGE;
        } else if (!strcmp(a, "--mmlu-questions")) {
            if (!cli_u32(cmd, a, v, &p.mmlu_per_subject))
                return CLI_USAGE;
        } else if (!strcmp(a, "--false-premise")) {
            float f;
            if (!cli_float(cmd, a, v, &f) || !(f >= 0 && f <= 1))
                return cli_usage(cmd, "--false-premise must be a rate in [0, 1]"), CLI_USAGE;
            p.false_premise = strtod(v, NULL);
        } else if (!strcmp(a, "--question-weights")) {
            if (!have_weights)
                for (int t = 0; t < OC_SHAPES_QUESTION_TYPES; t++)
                    p.question_weights[t] = 1; /* the all-equal default, made explicit */
            have_weights = 1;
            if (!parse_weights(cmd, v, p.question_weights))
                return CLI_USAGE;
        }
    }
    if (rc >= 0)
        return rc;
    if (!have_split || !have_n || !out)
        return cli_usage(cmd, "shapes needs --split, --n and --out"), CLI_USAGE;
    uint32_t total = 0;
    for (int t = 0; t < OC_SHAPES_QUESTION_TYPES; t++)
        total += p.question_weights[t];
    if (have_weights && total == 0)
        return cli_usage(cmd, "--question-weights leaves no question type"), CLI_USAGE;
    oc_status s = oc_shapes_write_dataset(&p, out);
    if (s != OC_OK)
        return cli_fail(cmd, s);
    fprintf(stderr, "ocellus data: wrote %zu %s scenes to %s\n", p.n, oc_split_name(p.split),
            out);
    return 0;
}

/* Every pair encoded once: the full check of a preference file. */
static int check_prefs(const char *file, const char *model, const oc_dataset_params *p) {
    oc_pref_dataset *ds = NULL;
    oc_status s = oc_pref_dataset_open(file, model, p, &ds);
    size_t n = oc_pref_dataset_size(ds), longest = 0;
    unsigned long long tokens = 0, labelled = 0;
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        oc_pref_example e;
        s = oc_pref_dataset_get(ds, i, &e);
        for (int k = 0; s == OC_OK && k < 2; k++) {
            const oc_train_example *x = k ? &e.rejected : &e.chosen;
            tokens += x->n_tokens;
            longest = x->n_tokens > longest ? x->n_tokens : longest;
            for (size_t t = 1; t < x->n_tokens; t++)
                labelled += x->labels[t] != -100;
        }
    }
    oc_pref_dataset_free(ds);
    if (s != OC_OK)
        return cli_fail("data", s);
    printf("%s: %zu preference pairs, %llu tokens (%llu in the replies), longest %zu\n", file,
           n, tokens, labelled, longest);
    return 0;
}

static const struct option CHECK_OPTIONS[] = {
    {"model", required_argument, NULL, 'm'},
    {"max-tokens", required_argument, NULL, CLI_OPT_LONG},
    {"preferences", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

static int check(int argc, char **argv) {
    const char *cmd = "data", *file = NULL, *model = NULL, *v;
    oc_dataset_params p = oc_dataset_default_params();
    p.shuffle = 0;
    int prefs = 0;
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, CHECK_OPTIONS) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, DATA_HELP, &rc)) != CLI_OPT_END;) {
        const char *a = ps.flag;
        v = ps.arg;
        if (k == CLI_OPT_ARG) {
            if (file)
                return cli_usage(cmd, "check takes one file"), CLI_USAGE;
            file = v;
        } else if (!strcmp(a, "--model")) {
            model = v;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!cli_u32(cmd, a, v, &p.max_tokens))
                return CLI_USAGE;
        } else { /* --preferences */
            prefs = 1;
        }
    }
    if (rc >= 0)
        return rc;
    if (!file)
        return cli_usage(cmd, "check needs a JSONL file"), CLI_USAGE;
    if (!model && !(model = cli_default_model()))
        return cli_usage(cmd, "no model: give --model DIR or set OCELLUS_MODEL"), CLI_USAGE;
    if (prefs)
        return check_prefs(file, model, &p);
    oc_dataset *ds = NULL;
    oc_dataset_stats st;
    oc_status s = oc_dataset_open(file, model, &p, &ds);
    if (s == OC_OK)
        s = oc_dataset_check(ds, &st);
    oc_dataset_free(ds);
    if (s != OC_OK)
        return cli_fail(cmd, s);
    printf("%s: %zu examples, %zu images (%zu tiles), %llu tokens (%llu trained on), "
           "longest %zu\n",
           file, st.examples, st.images, st.tiles, (unsigned long long)st.tokens,
           (unsigned long long)st.labelled, st.max_tokens);
    return 0;
}

static int pref_progress(size_t done, size_t total, const oc_pref_gen_stats *st, void *ud) {
    (void)ud;
    if (done % 25 == 0 || done == total)
        fprintf(stderr, "ocellus data: %zu/%zu questions, %zu pairs, mean score %.3f\n", done,
                total, st->pairs, st->mean_score / (double)(st->prompts ? st->prompts : 1));
    return cli_interrupted;
}

static const struct option PREF_OPTIONS[] = {
    {"model", required_argument, NULL, 'm'},
    {"data", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"samples", required_argument, NULL, CLI_OPT_LONG},
    {"temperature", required_argument, NULL, CLI_OPT_LONG},
    {"max-tokens", required_argument, NULL, 'n'},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {"limit", required_argument, NULL, CLI_OPT_LONG},
    {"threads", required_argument, NULL, 't'},
    {"reference-fallback", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

static int preferences(int argc, char **argv) {
    const char *cmd = "data", *v;
    const char *data = NULL, *out = NULL;
    cli_gen_opts g;
    cli_gen_opts_init(&g);
    oc_pref_gen_params p = oc_pref_gen_default_params();
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, PREF_OPTIONS) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, DATA_HELP, &rc)) != CLI_OPT_END;) {
        const char *a = ps.flag;
        v = ps.arg;
        if (k == CLI_OPT_ARG)
            return cli_usage(cmd, "unexpected argument '%s'", v), CLI_USAGE;
        if (!strcmp(a, "--reference-fallback")) {
            p.reference_fallback = 1;
            continue;
        }
        uint64_t u;
        uint32_t t;
        if (!strcmp(a, "--model"))
            g.model = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--samples")) {
            if (!cli_u32(cmd, a, v, &p.samples) || p.samples < 2 || p.samples > 1024)
                return cli_usage(cmd, "--samples must be in 2..1024"), CLI_USAGE;
        } else if (!strcmp(a, "--temperature")) {
            if (!cli_float(cmd, a, v, &p.temperature) || !(p.temperature >= 0))
                return cli_usage(cmd, "--temperature must be >= 0"), CLI_USAGE;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!cli_u32(cmd, a, v, &p.max_tokens) || p.max_tokens == 0)
                return cli_usage(cmd, "--max-tokens must be >= 1"), CLI_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_u64(cmd, a, v, &p.seed))
                return CLI_USAGE;
        } else if (!strcmp(a, "--limit")) {
            if (!cli_u64(cmd, a, v, &u))
                return CLI_USAGE;
            p.limit = (size_t)u;
        } else if (!strcmp(a, "--threads")) {
            if (!cli_u32(cmd, a, v, &t))
                return CLI_USAGE;
            g.threads = (int)t;
        }
    }
    if (rc >= 0)
        return rc;
    if (!data || !out)
        return cli_usage(cmd, "preferences needs --data and --out"), CLI_USAGE;
    oc_model *m = NULL;
    rc = cli_load_model(cmd, &g, &m);
    if (rc)
        return rc;
    p.on_item = pref_progress;
    cli_install_sigint();
    oc_pref_gen_stats st;
    oc_status s = oc_make_preferences(m, data, &p, out, &st);
    oc_model_free(m);
    if (s != OC_OK)
        return cli_fail(cmd, s);
    fprintf(stderr, "ocellus data: %zu pairs from %zu questions to %s (all right %zu, all "
            "wrong %zu, chosen = reference %zu; mean score %.3f)\n", st.pairs, st.prompts, out,
            st.all_right, st.none_right, st.from_reference, st.mean_score);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(DATA_HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : 0;
    }
    if (!strcmp(argv[1], "shapes"))
        return shapes(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "preferences"))
        return preferences(argc - 1, argv + 1);
    return cli_usage("data", "unknown subcommand '%s' (shapes, check, preferences)", argv[1]),
           CLI_USAGE;
}
