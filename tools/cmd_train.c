/* ocellus train: train or fine-tune a SmolVLM-family model on a JSONL dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"

static const char TRAIN_HELP[] =
    "usage: ocellus train (--init MODEL_DIR | --config DIR | --resume CKPT_DIR)\n"
    "                     --data FILE.jsonl --out DIR [options]\n"
    "Trains a SmolVLM-family model on conversations with images (loss on the assistant's\n"
    "tokens) or on pre-tokenized examples; see the README for the JSONL formats.\n\n"
    "  --init DIR            start from the weights of a model folder (fine-tuning)\n"
    "  --config DIR          start from random weights for DIR/config.json (DIR also holds\n"
    "                        tokenizer.json and preprocessor_config.json)\n"
    "  --resume DIR          continue a checkpoint written by ocellus train\n"
    "  --data FILE           training examples (JSONL)\n"
    "  --val FILE            validation examples; loss printed every --val-every steps\n"
    "                        (preference objectives: pairs; loss, margin and accuracy)\n"
    "  --val-every N         default 100\n"
    "  --out DIR             checkpoint folder (config.json, model.safetensors, tokenizer,\n"
    "                        optimizer state), each written whole beside DIR and put in\n"
    "                        its place: a kill or a full disk leaves the previous one\n"
    "  --save-every N        steps between checkpoints (default: only at the end)\n"
    "  --steps N             optimizer steps (default 1000)\n"
    "  --tokens N            instead of --steps: train on about N tokens (steps = N over\n"
    "                        the tokens of a step, measured on up to 256 examples)\n"
    "  --batch N             examples per micro-batch (default 1)\n"
    "  --grad-accum N        micro-batches per step (default 1)\n"
    "  --lr X                peak learning rate (default 1e-3)\n"
    "  --vision-lr-scale X   the vision tower's and connector's lr is X times --lr\n"
    "  --betas B1,B2         AdamW betas (default 0.9,0.95)\n"
    "  --eps X               AdamW epsilon (default 1e-8)\n"
    "  --weight-decay X      decoupled weight decay on every parameter (default 0.1)\n"
    "  --no-decay-1d         no weight decay on biases and norm weights\n"
    "  --warmup N            linear warmup steps (0 = none)\n"
    "  --schedule S          cosine (default), linear or constant after warmup\n"
    "  --clip X              clip the global gradient norm at X (0 = off; default 1)\n"
    "  --seed S              initialisation and data order (default 0)\n"
    "  --init-std X          std of fresh weights (default: the config's initializer_range)\n"
    "  --dump-first-step F   write the first step's loss, gradients and updated\n"
    "                        parameters to F.safetensors (to compare with PyTorch)\n"
    "  --threads N           threads for the math kernels (under an MPI launcher: per\n"
    "                        rank; default the CPUs the launcher bound it to, else the\n"
    "                        machine's CPUs over its ranks)\n"
    "  --json                one JSON object per step on standard output (step, loss,\n"
    "                        lr, grad_norm, tokens, seconds, comm_seconds, ranks, ...)\n"
    "  --comm-timeout S      under MPI: seconds an exchange between ranks may wait before\n"
    "                        the job is ended, naming the rank (default 600)\n"
    "  --objective O         sft (default); dpo, simpo or orpo: --data holds preference\n"
    "                        pairs (TRL's format: prompt, chosen, rejected, images)\n"
    "  --beta X              DPO's and SimPO's beta (default 0.1 for DPO, 2 for SimPO)\n"
    "  --ref DIR             DPO's reference model (default: the --init model); its\n"
    "                        log-probabilities of every pair are computed once and kept\n"
    "                        in OUT/ref_logprobs.safetensors (reused on --resume)\n"
    "  --gamma X             SimPO's target margin (default 0.5)\n"
    "  --lambda X            ORPO's weight of the odds-ratio term (default 0.1)\n"
    "  --rpo-alpha X         DPO, SimPO: add X times the chosen reply's mean negative\n"
    "                        log-likelihood per token (TRL's rpo_alpha; default 0)\n"
    "  --config-file F       a JSON object of these options without dashes, e.g.\n"
    "                        {\"steps\": 2000, \"lr\": 0.002, \"betas\": \"0.9,0.98\"};\n"
    "                        command-line options override it\n"
    "Ctrl-C saves a checkpoint and stops.\n\n"
    "Data-parallel: `mpirun -np N ocellus train ...` (any MPI launcher) trains on N ranks,\n"
    "each on its part of every step's --batch x --grad-accum examples; the global batch,\n"
    "schedule and loss are those of one process, rank 0 logs and writes the checkpoints,\n"
    "and --resume works with any rank count (docs/DISTRIBUTED.md).\n";

typedef struct {
    const char *init, *config, *resume, *data, *val, *out, *dump, *ref;
    uint32_t val_every, threads;
    int json, rank0;
    double comm_timeout;
    oc_train_params tp;
    oc_dataset *val_ds;
    oc_pref_dataset *val_pref; /* --val with a preference objective */
    oc_trainer *tr;
    double t_start;
    uint64_t first_step;
    uint64_t tokens;  /* --tokens, 0 = not given */
    int steps_given;
} train_opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u64(const char *opt, const char *v, uint64_t *out) {
    return cli_u64("train", opt, v, out);
}

static int parse_double(const char *opt, const char *v, double *out) {
    float f;
    if (!cli_float("train", opt, v, &f))
        return 0;
    char *end;
    *out = strtod(v, &end); /* keep full precision */
    return 1;
}

/* A number >= lo (> lo when strict); one message either way. */
static int parse_at_least(const char *opt, const char *v, double *out, double lo, int strict) {
    if (!parse_double(opt, v, out))
        return 0;
    if (strict ? *out > lo : *out >= lo)
        return 1;
    return cli_usage("train", "%s must be %s %g, not %s", opt, strict ? ">" : ">=", lo, v);
}

/* Applies one option (name without dashes); 1 ok, 0 usage error, -1 unknown. */
static int apply(train_opts *o, const char *name, const char *v) {
    oc_train_params *tp = &o->tp;
    uint64_t u;
    if (!strcmp(name, "init"))
        o->init = v;
    else if (!strcmp(name, "config"))
        o->config = v;
    else if (!strcmp(name, "resume"))
        o->resume = v;
    else if (!strcmp(name, "data"))
        o->data = v;
    else if (!strcmp(name, "val"))
        o->val = v;
    else if (!strcmp(name, "out"))
        o->out = v;
    else if (!strcmp(name, "dump-first-step"))
        o->dump = v;
    else if (!strcmp(name, "val-every"))
        return cli_u32("train", "--val-every", v, &o->val_every);
    else if (!strcmp(name, "threads"))
        return cli_u32("train", "--threads", v, &o->threads);
    else if (!strcmp(name, "json"))
        o->json = strcmp(v, "false") && strcmp(v, "0");
    else if (!strcmp(name, "comm-timeout"))
        return parse_at_least("--comm-timeout", v, &o->comm_timeout, 0, 1);
    else if (!strcmp(name, "save-every"))
        return parse_u64("--save-every", v, &tp->save_every);
    else if (!strcmp(name, "steps")) {
        o->steps_given = 1;
        return parse_u64("--steps", v, &tp->steps);
    } else if (!strcmp(name, "tokens"))
        return parse_u64("--tokens", v, &o->tokens);
    else if (!strcmp(name, "warmup"))
        return parse_u64("--warmup", v, &tp->warmup_steps);
    else if (!strcmp(name, "seed"))
        return parse_u64("--seed", v, &tp->seed);
    else if (!strcmp(name, "batch")) {
        if (!parse_u64("--batch", v, &u) || u == 0 || u > 4096)
            return cli_usage("train", "--batch must be in 1..4096");
        tp->batch = (uint32_t)u;
    } else if (!strcmp(name, "grad-accum")) {
        if (!parse_u64("--grad-accum", v, &u) || u == 0 || u > 65536)
            return cli_usage("train", "--grad-accum must be in 1..65536");
        tp->grad_accum = (uint32_t)u;
    } else if (!strcmp(name, "lr"))
        return parse_double("--lr", v, &tp->lr);
    else if (!strcmp(name, "vision-lr-scale"))
        return parse_double("--vision-lr-scale", v, &tp->vision_lr_scale);
    else if (!strcmp(name, "eps"))
        return parse_double("--eps", v, &tp->eps);
    else if (!strcmp(name, "weight-decay"))
        return parse_double("--weight-decay", v, &tp->weight_decay);
    else if (!strcmp(name, "clip"))
        return parse_double("--clip", v, &tp->clip);
    else if (!strcmp(name, "init-std")) {
        double d;
        if (!parse_double("--init-std", v, &d))
            return 0;
        tp->init_std = (float)d;
    } else if (!strcmp(name, "betas")) {
        char *end;
        tp->beta1 = strtod(v, &end);
        if (*end != ',')
            return cli_usage("train", "--betas expects B1,B2");
        tp->beta2 = strtod(end + 1, &end);
        if (*end || !(tp->beta1 >= 0 && tp->beta1 < 1 && tp->beta2 >= 0 && tp->beta2 < 1))
            return cli_usage("train", "--betas expects two numbers in [0, 1)");
    } else if (!strcmp(name, "schedule")) {
        if (!strcmp(v, "cosine"))
            tp->schedule = OC_SCHED_COSINE;
        else if (!strcmp(v, "linear"))
            tp->schedule = OC_SCHED_LINEAR;
        else if (!strcmp(v, "constant"))
            tp->schedule = OC_SCHED_CONSTANT;
        else
            return cli_usage("train", "--schedule is cosine, linear or constant");
    } else if (!strcmp(name, "objective")) {
        if (!strcmp(v, "sft"))
            tp->objective = OC_OBJECTIVE_SFT;
        else if (!strcmp(v, "dpo"))
            tp->objective = OC_OBJECTIVE_DPO;
        else if (!strcmp(v, "simpo"))
            tp->objective = OC_OBJECTIVE_SIMPO;
        else if (!strcmp(v, "orpo"))
            tp->objective = OC_OBJECTIVE_ORPO;
        else
            return cli_usage("train", "--objective is sft, dpo, simpo or orpo");
    } else if (!strcmp(name, "beta"))
        return parse_at_least("--beta", v, &tp->pref_beta, 0, 1);
    else if (!strcmp(name, "gamma"))
        return parse_double("--gamma", v, &tp->simpo_gamma);
    else if (!strcmp(name, "lambda"))
        return parse_at_least("--lambda", v, &tp->orpo_lambda, 0, 0);
    else if (!strcmp(name, "rpo-alpha"))
        return parse_at_least("--rpo-alpha", v, &tp->rpo_alpha, 0, 0);
    else if (!strcmp(name, "ref"))
        o->ref = v;
    else if (!strcmp(name, "no-decay-1d"))
        tp->no_decay_1d = strcmp(v, "false") && strcmp(v, "0");
    else
        return -1;
    return 1;
}

/* Options from a JSON object file: strings, numbers and booleans. */
static int load_config_file(train_opts *o, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_usage("train", "%s: cannot open", path);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    int too_long = n == sizeof text - 1 && fgetc(f) != EOF, err = ferror(f);
    fclose(f);
    if (err)
        return cli_usage("train", "%s: read error", path);
    if (too_long)
        return cli_usage("train", "%s: larger than %zu bytes", path, sizeof text - 1);
    text[n] = 0;
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return cli_usage("train", "%s: not a JSON object", path);
    }
    /* options keep pointers to their values for the whole run: copies live here */
    static char values[1 << 16];
    size_t used = 0;
    int ok = 1;
    for (const cJSON *e = j->child; ok && e; e = e->next) {
        char num[64];
        const char *val = NULL;
        if (cJSON_IsString(e))
            val = e->valuestring;
        else if (cJSON_IsBool(e))
            val = cJSON_IsTrue(e) ? "true" : "false";
        else if (cJSON_IsNumber(e))
            snprintf(num, sizeof num, "%.17g", e->valuedouble), val = num;
        if (!val) {
            ok = cli_usage("train", "%s: \"%s\" must be a string, number or boolean", path,
                           e->string);
            break;
        }
        size_t len = strlen(val) + 1;
        if (len > sizeof values - used) {
            ok = cli_usage("train", "%s: the values are too long", path);
            break;
        }
        char *copy = memcpy(values + used, val, len);
        used += len;
        int r = apply(o, e->string, copy);
        if (r < 0)
            ok = cli_usage("train", "%s: unknown option \"%s\"", path, e->string);
        else
            ok = r;
    }
    cJSON_Delete(j);
    return ok;
}

/* --tokens: the steps that train on about o->tokens tokens, from the mean length of up
 * to 256 examples spread over the file (every position counts, as in tokens/s). */
static oc_status steps_for_tokens(oc_dataset *ds, train_opts *o) {
    size_t n = oc_dataset_size(ds), k = n < 256 ? n : 256;
    uint64_t sum = 0;
    for (size_t i = 0; i < k; i++) {
        oc_train_example ex;
        oc_status s = oc_dataset_get(ds, i * n / k, &ex);
        if (s != OC_OK)
            return s;
        sum += ex.n_tokens;
    }
    double per_step = (double)sum / (double)(k ? k : 1) * o->tp.batch * o->tp.grad_accum;
    double steps = per_step > 0 ? ceil((double)o->tokens / per_step) : 1;
    o->tp.steps = steps < 1 ? 1 : (uint64_t)steps;
    if (o->rank0)
        fprintf(stderr, "ocellus train: --tokens %llu: %llu steps of about %.0f tokens\n",
                (unsigned long long)o->tokens, (unsigned long long)o->tp.steps, per_step);
    return OC_OK;
}

/* --json: the step as one line of standard output. */
static void print_step_json(const oc_train_stats *st, double tps) {
    cJSON *j = cJSON_CreateObject();
    int ok = j != NULL;
    const struct {
        const char *key;
        double v;
    } f[] = {{"step", (double)st->step},          {"total_steps", (double)st->total_steps},
             {"loss", st->loss},                  {"lr", st->lr},
             {"grad_norm", st->grad_norm},        {"tokens", (double)st->tokens},
             {"labelled", (double)st->labelled},  {"flops", st->flops},
             {"seconds", st->seconds},            {"comm_seconds", st->comm_seconds},
             {"tokens_per_s", tps},               {"ranks", (double)st->ranks},
             {"threads", (double)st->threads}};
    for (size_t i = 0; ok && i < sizeof f / sizeof f[0]; i++)
        ok = cli_json_add(j, f[i].key, cJSON_CreateNumber(f[i].v));
    cli_json_print(j, ok);
    cli_flush();
}

/* The validation loss: the mean over the examples of --val, each rank scoring its block
 * of them (collective: every rank calls it after the same step). */
static void validate(train_opts *o, const oc_train_stats *st) {
    size_t n = oc_dataset_size(o->val_ds), lo, hi;
    oc_dist_span(n, &lo, &hi);
    double t[2] = {0, 0}; /* sum of the losses, examples */
    for (size_t i = lo; i < hi; i++) {
        oc_train_example ex;
        double loss;
        if (oc_dataset_get(o->val_ds, i, &ex) != OC_OK ||
            oc_trainer_eval(o->tr, &ex, 1, &loss) != OC_OK)
            break;
        t[0] += loss;
        t[1] += 1;
    }
    /* a failed exchange leaves the job unable to go on: the next step says so */
    if (oc_dist_sum(t, 2) == OC_OK && o->rank0 && t[1] > 0)
        fprintf(stderr, "step %llu  validation loss %.4f (%.0f examples)\n",
                (unsigned long long)st->step, t[0] / t[1], t[1]);
}

/* The same for preference pairs: loss, reward margin and accuracy over --val's pairs. */
static void validate_pref(train_opts *o, const oc_train_stats *st) {
    size_t n = oc_pref_dataset_size(o->val_pref), lo, hi;
    oc_dist_span(n, &lo, &hi);
    double t[4] = {0, 0, 0, 0}; /* sums of the loss, margin, accuracy; pairs */
    for (size_t i = lo; i < hi; i++) {
        oc_pref_example e;
        oc_train_stats v;
        if (oc_pref_dataset_get(o->val_pref, i, &e) != OC_OK ||
            oc_trainer_pref_eval(o->tr, &e, 1, &v) != OC_OK)
            break;
        t[0] += v.loss;
        t[1] += v.reward_margin;
        t[2] += v.pref_accuracy;
        t[3] += 1;
    }
    if (oc_dist_sum(t, 4) == OC_OK && o->rank0 && t[3] > 0)
        fprintf(stderr, "step %llu  validation loss %.4f  margin %.4f  acc %.3f (%.0f "
                "pairs)\n", (unsigned long long)st->step, t[0] / t[3], t[1] / t[3],
                t[2] / t[3], t[3]);
}

static int on_progress(const oc_train_stats *st, void *user) {
    train_opts *o = user;
    int val = o->val_ds && o->val_every &&
              (st->step % o->val_every == 0 || st->step == st->total_steps);
    int val_pref = o->val_pref && o->val_every &&
                   (st->step % o->val_every == 0 || st->step == st->total_steps);
    if (!o->rank0) { /* rank 0 logs for the job */
        if (val)
            validate(o, st);
        if (val_pref)
            validate_pref(o, st);
        return cli_interrupted;
    }
    double elapsed = now_s() - o->t_start;
    uint64_t done = st->step - o->first_step;
    double eta = done ? elapsed / (double)done * (double)(st->total_steps - st->step) : 0;
    double tps = st->seconds > 0 ? (double)st->tokens / st->seconds : 0;
    if (o->json)
        print_step_json(st, tps);
    char pref[160] = "";
    if (st->pairs)
        snprintf(pref, sizeof pref, "  margin %.4f  acc %.3f  (chosen %.4f rejected %.4f)",
                 st->reward_margin, st->pref_accuracy, st->reward_chosen, st->reward_rejected);
    fprintf(stderr, "step %llu/%llu  loss %.4f%s  lr %.3g  gnorm %.3g  %.0f tok/s  ETA %02d:%02d:%02d\n",
            (unsigned long long)st->step, (unsigned long long)st->total_steps, st->loss, pref,
            st->lr, st->grad_norm, tps, (int)(eta / 3600), (int)fmod(eta / 60, 60),
            (int)fmod(eta, 60));
    if (val)
        validate(o, st);
    if (val_pref)
        validate_pref(o, st);
    return cli_interrupted;
}

/* Preference objectives: pairs, DPO's reference, oc_trainer_fit_pref; under mpirun
 * data-parallel like SFT (the reference's log-probabilities shared out too), rank 0
 * logging. */
static int train_pref(train_opts *o, const char *model_dir, const oc_dist_info *job) {
    const char *cmd = "train";
    if (o->tokens)
        return cli_usage(cmd, "--tokens is for --objective sft"), CLI_USAGE;
    int dpo = o->tp.objective == OC_OBJECTIVE_DPO;
    if (o->ref && !dpo)
        return cli_usage(cmd, "--ref is for --objective dpo (SimPO and ORPO need no "
                         "reference)"), CLI_USAGE;
    if (dpo && o->config && !o->ref)
        return cli_usage(cmd, "--objective dpo from random weights (--config) needs --ref"),
               CLI_USAGE;
    oc_dataset_params dp = oc_dataset_default_params();
    dp.seed = o->tp.seed;
    oc_pref_dataset *ds = NULL;
    oc_status s = oc_dist_agree(oc_pref_dataset_open(o->data, model_dir, &dp, &ds));
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/ref_logprobs.safetensors", o->out);
    if (s == OC_OK && dpo) {
        /* the reference: --ref, else the model training starts from; a resumed run reads
         * the cache its first run wrote */
        const char *ref = o->ref ? o->ref : o->init;
        int cached = 0;
        double t0 = now_s();
        s = oc_pref_reference(ds, ref, cache, &o->tp, &cached);
        if (s == OC_OK && o->rank0)
            fprintf(stderr, "ocellus train: reference log-probabilities of %zu pairs %s %s "
                    "(%.1f s)\n", oc_pref_dataset_size(ds), cached ? "read from" : "written to",
                    cache, now_s() - t0);
    }
    if (s == OC_OK && o->val) {
        /* validation pairs: in file order, with their own cached reference */
        dp.shuffle = 0;
        s = oc_dist_agree(oc_pref_dataset_open(o->val, model_dir, &dp, &o->val_pref));
        snprintf(cache, sizeof cache, "%s/ref_logprobs_val.safetensors", o->out);
        if (s == OC_OK && dpo)
            s = oc_pref_reference(o->val_pref, o->ref ? o->ref : o->init, cache, &o->tp, NULL);
    }
    if (s == OC_OK && o->init)
        s = oc_trainer_new(o->init, &o->tp, &o->tr);
    else if (s == OC_OK && o->config)
        s = oc_trainer_new_from_config(o->config, &o->tp, &o->tr);
    else if (s == OC_OK)
        s = oc_trainer_resume(o->resume, &o->tp, &o->tr);
    if (s == OC_OK) {
        oc_trainer_info info = oc_trainer_get_info(o->tr);
        o->first_step = info.step;
        oc_pref_dataset_seek(ds, info.step * o->tp.batch * o->tp.grad_accum);
        static const char *const names[] = {"sft", "dpo", "simpo", "orpo"};
        if (o->rank0 && job->size > 1)
            fprintf(stderr, "ocellus train: %d ranks (%d on this machine), %llu pairs per "
                    "step\n", job->size, job->local_size,
                    (unsigned long long)o->tp.batch * o->tp.grad_accum);
        if (o->rank0)
            fprintf(stderr, "ocellus train: %s, %zu parameters, %zu pairs, step %llu of %llu\n",
                    names[o->tp.objective], info.n_params, oc_pref_dataset_size(ds),
                    (unsigned long long)info.step, (unsigned long long)o->tp.steps);
        cli_install_sigint();
        o->t_start = now_s();
        s = oc_trainer_fit_pref(o->tr, oc_pref_dataset_next_batch, ds);
        unsigned long long at = (unsigned long long)oc_trainer_get_info(o->tr).step;
        if (!o->rank0)
            ;
        else if (s == OC_ERR_CANCELLED)
            fprintf(stderr, "ocellus train: interrupted at step %llu; checkpoint saved to %s\n",
                    at, o->out);
        else if (s != OC_OK && cli_interrupted)
            fprintf(stderr, "ocellus train: interrupted at step %llu; the checkpoint could not "
                    "be saved (%s keeps the last one that was):\n", at, o->out);
        else if (s == OC_OK)
            fprintf(stderr, "ocellus train: done; model saved to %s\n", o->out);
    }
    cli_end_job_if_alone(cmd, s);
    int rc = s == OC_OK ? 0 : o->rank0 ? cli_fail(cmd, s) : 2 + (int)s;
    oc_pref_dataset_free(ds);
    oc_pref_dataset_free(o->val_pref);
    o->val_pref = NULL;
    oc_trainer_free(o->tr);
    o->tr = NULL;
    return rc;
}

/* Every option of train takes a value but these two; --config-file's names are the same
 * without the dashes. */
static const struct option TRAIN_OPTIONS[] = {
    {"init", required_argument, NULL, CLI_OPT_LONG},
    {"config", required_argument, NULL, CLI_OPT_LONG},
    {"resume", required_argument, NULL, CLI_OPT_LONG},
    {"data", required_argument, NULL, CLI_OPT_LONG},
    {"val", required_argument, NULL, CLI_OPT_LONG},
    {"val-every", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"save-every", required_argument, NULL, CLI_OPT_LONG},
    {"steps", required_argument, NULL, CLI_OPT_LONG},
    {"tokens", required_argument, NULL, CLI_OPT_LONG},
    {"batch", required_argument, NULL, CLI_OPT_LONG},
    {"grad-accum", required_argument, NULL, CLI_OPT_LONG},
    {"lr", required_argument, NULL, CLI_OPT_LONG},
    {"vision-lr-scale", required_argument, NULL, CLI_OPT_LONG},
    {"betas", required_argument, NULL, CLI_OPT_LONG},
    {"eps", required_argument, NULL, CLI_OPT_LONG},
    {"weight-decay", required_argument, NULL, CLI_OPT_LONG},
    {"no-decay-1d", no_argument, NULL, CLI_OPT_LONG},
    {"warmup", required_argument, NULL, CLI_OPT_LONG},
    {"schedule", required_argument, NULL, CLI_OPT_LONG},
    {"clip", required_argument, NULL, CLI_OPT_LONG},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {"init-std", required_argument, NULL, CLI_OPT_LONG},
    {"dump-first-step", required_argument, NULL, CLI_OPT_LONG},
    {"threads", required_argument, NULL, 't'},
    {"json", no_argument, NULL, CLI_OPT_LONG},
    {"comm-timeout", required_argument, NULL, CLI_OPT_LONG},
    {"objective", required_argument, NULL, CLI_OPT_LONG},
    {"beta", required_argument, NULL, CLI_OPT_LONG},
    {"ref", required_argument, NULL, CLI_OPT_LONG},
    {"gamma", required_argument, NULL, CLI_OPT_LONG},
    {"lambda", required_argument, NULL, CLI_OPT_LONG},
    {"rpo-alpha", required_argument, NULL, CLI_OPT_LONG},
    {"config-file", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

/* The options in order; --config-file applied before the rest, so that they override it.
 * Returns -1 to go on, else the exit code. */
static int parse_train(int argc, char **argv, train_opts *o) {
    const char *cmd = "train", *config_file = NULL;
    const struct option *tables[] = {TRAIN_OPTIONS, NULL};
    cli_parser p;
    const char **names = calloc((size_t)argc, sizeof *names);
    const char **values = calloc((size_t)argc, sizeof *values);
    int n = 0, rc = -1;
    if (!names || !values || cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        rc = cli_fail(cmd, OC_ERR_NOMEM);
    for (int k; rc < 0 && (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        if (k == CLI_OPT_ERROR)
            rc = CLI_USAGE;
        else if (k == CLI_OPT_HELP)
            rc = (printf("%s", TRAIN_HELP), 0);
        else if (k == CLI_OPT_ARG)
            rc = (cli_usage(cmd, "unexpected argument %s", p.arg), CLI_USAGE);
        else if (!strcmp(p.name, "config-file"))
            config_file = p.arg;
        else {
            names[n] = p.name; /* points into the static table */
            values[n++] = p.arg ? p.arg : "true";
        }
    }
    if (rc < 0 && config_file && !load_config_file(o, config_file))
        rc = CLI_USAGE;
    for (int i = 0; rc < 0 && i < n; i++)
        if (apply(o, names[i], values[i]) <= 0) /* -1 (unknown) cannot happen here */
            rc = CLI_USAGE;
    free(names);
    free(values);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    train_opts o;
    memset(&o, 0, sizeof o);
    o.tp = oc_train_default_params();
    o.val_every = 100;
    int prc = parse_train(argc, argv, &o);
    if (prc >= 0)
        return prc;
    int starts = !!o.init + !!o.config + !!o.resume;
    if (starts != 1)
        return cli_usage(cmd, "give exactly one of --init, --config, --resume"), CLI_USAGE;
    if (!o.data || !o.out)
        return cli_usage(cmd, "--data and --out are required"), CLI_USAGE;
    /* a job of several ranks (mpirun): one trainer over all of them */
    oc_status s = oc_dist_init();
    if (s != OC_OK)
        return cli_fail(cmd, s);
    oc_dist_info job = oc_dist_get_info();
    o.rank0 = job.rank == 0;
    if (o.comm_timeout > 0)
        oc_dist_set_timeout(o.comm_timeout);
    if (o.threads)
        oc_set_threads((int)o.threads);
    else if (job.size > 1)
        oc_set_threads(job.threads);
    o.tp.out_dir = o.out;
    o.tp.dump_first_step = o.dump;
    o.tp.on_progress = on_progress;
    o.tp.user_data = &o;

    if (o.tokens && o.steps_given) {
        cli_usage(cmd, "give --steps or --tokens, not both");
        oc_dist_finalize();
        return CLI_USAGE;
    }

    const char *model_dir = o.init ? o.init : o.config ? o.config : o.resume;
    if (o.tp.objective != OC_OBJECTIVE_SFT) {
        int rc = train_pref(&o, model_dir, &job);
        oc_dist_finalize();
        return rc;
    }
    if (o.ref) {
        cli_usage(cmd, "--ref is for --objective dpo");
        oc_dist_finalize();
        return CLI_USAGE;
    }
    oc_dataset_params dp = oc_dataset_default_params();
    dp.seed = o.tp.seed;
    oc_dataset *ds = NULL;
    s = oc_dataset_open(o.data, model_dir, &dp, &ds);
    if (s == OC_OK && o.val) {
        dp.shuffle = 0;
        s = oc_dataset_open(o.val, model_dir, &dp, &o.val_ds);
    }
    if (s == OC_OK && o.tokens)
        s = steps_for_tokens(ds, &o);
    s = oc_dist_agree(s); /* every rank's data, or none starts */
    if (s == OC_OK && o.init)
        s = oc_trainer_new(o.init, &o.tp, &o.tr);
    else if (s == OC_OK && o.config)
        s = oc_trainer_new_from_config(o.config, &o.tp, &o.tr);
    else if (s == OC_OK)
        s = oc_trainer_resume(o.resume, &o.tp, &o.tr);
    if (s == OC_OK) {
        oc_trainer_info info = oc_trainer_get_info(o.tr);
        o.first_step = info.step;
        oc_dataset_seek(ds, info.step * o.tp.batch * o.tp.grad_accum);
        if (o.rank0 && job.size > 1)
            fprintf(stderr, "ocellus train: %d ranks (%d on this machine) x %d threads, "
                    "%llu examples per step; optimizer state %.2f MB per rank\n", job.size,
                    job.local_size, o.threads ? (int)o.threads : job.threads,
                    (unsigned long long)o.tp.batch * o.tp.grad_accum,
                    (double)info.optimizer_bytes / 1e6);
        if (o.rank0)
            fprintf(stderr, "ocellus train: %zu parameters, %zu examples, step %llu of %llu\n",
                    info.n_params, oc_dataset_size(ds), (unsigned long long)info.step,
                    (unsigned long long)o.tp.steps);
        cli_install_sigint();
        o.t_start = now_s();
        /* Ctrl-C stops the run after the step in progress; oc_trainer_fit then saves the
         * checkpoint, and says whether that worked: only then is it said to be saved */
        s = oc_trainer_fit_parts(o.tr, oc_dataset_next_part, ds); /* each rank its part */
        unsigned long long at = (unsigned long long)oc_trainer_get_info(o.tr).step;
        if (!o.rank0)
            ;
        else if (s == OC_ERR_CANCELLED)
            fprintf(stderr, "ocellus train: interrupted at step %llu; checkpoint saved to %s\n",
                    at, o.out);
        else if (s != OC_OK && cli_interrupted)
            fprintf(stderr, "ocellus train: interrupted at step %llu; the checkpoint could not "
                    "be saved (%s keeps the last one that was):\n", at, o.out);
        else if (s == OC_OK)
            fprintf(stderr, "ocellus train: done; model saved to %s\n", o.out);
    }
    int rc = 0;
    cli_end_job_if_alone(cmd, s);
    if (s != OC_OK && o.rank0)
        rc = cli_fail(cmd, s);
    else if (s != OC_OK)
        rc = 2 + (int)s; /* rank 0 says it */
    oc_dataset_free(ds);
    oc_dataset_free(o.val_ds);
    oc_trainer_free(o.tr);
    oc_dist_finalize();
    return rc;
}
