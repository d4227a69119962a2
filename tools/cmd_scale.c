/* ocellus scale: predictable scaling. `scale run` trains a recipe's ladder and target and
 * checks the prediction; `scale fit` fits a user's CSV of runs; `scale report` prints an
 * output folder's table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"

static const char SCALE_HELP[] =
    "usage: ocellus scale run --recipe FILE.json --out DIR [--threads N] [--plan]\n"
    "                         [--stop-before-target]\n"
    "       ocellus scale fit FILE.csv [--predict C] [--json] [--no-irreducible]\n"
    "                         [--huber-delta D] [--bootstrap N] [--level L] [--seed S]\n"
    "       ocellus scale report DIR\n\n"
    "scale run: trains the recipe's ladder of small runs (smallest first), fits the final\n"
    "validation loss L(C) = a*C^b + c and the capability -mean log p(answer) = alpha*C^-k to\n"
    "them, writes the target's predicted values with their intervals to DIR/prediction.json,\n"
    "then trains the target and writes DIR/report.json, report.csv and the charts\n"
    "(loss_vs_compute.png, capability_vs_compute.png). C is the FLOPs the trainer counts.\n"
    "Running it again continues: finished runs are skipped, a run in progress resumes from\n"
    "its checkpoint. Ctrl-C checkpoints the run in progress and stops. The recipe's format\n"
    "is in docs/scaling/README.md.\n"
    "  --plan                 write DIR/plan.json (and the data) and print the plan\n"
    "  --stop-before-target   stop once the prediction is written\n"
    "  --threads N            trainer threads (default: the recipe's, else 1; under mpirun\n"
    "                         the CPUs each rank is bound to)\n"
    "  --comm-timeout S       under MPI: seconds an exchange between ranks may wait (600)\n"
    "Under mpirun (`mpirun -np N ocellus scale run ...`) the ladder's runs are shared out\n"
    "among the ranks (each run trained by one rank, the same bits as alone) and the\n"
    "target is trained data-parallel by all of them; DIR must be seen by every rank.\n\n"
    "scale fit: FILE.csv has a header line and one run a line; the columns \"compute\" and\n"
    "\"loss\" (or \"final_loss\") are used when named, else the first two. Fits\n"
    "L(C) = a*C^b + c (Huber loss on log residuals from several starting points, GSL's\n"
    "BFGS2) with residual-bootstrap intervals.\n"
    "  --predict C            the fitted value at compute C and its interval\n"
    "  --json                 one JSON object: a, b, c, their intervals, and with --predict\n"
    "                         predicted_loss, ci_low, ci_high\n"
    "  --no-irreducible       fit a*C^b (c = 0)\n"
    "  --huber-delta D        default 0.01 (on log residuals)\n"
    "  --bootstrap N          refits for the intervals (default 1000; 0: none)\n"
    "  --level L              interval level (default 0.95)\n"
    "  --seed S               bootstrap draws (default 0)\n\n"
    "scale report: prints the table of DIR's report.json (or its plan).\n";

/* ---- run --------------------------------------------------------------------------- */

typedef struct {
    int tty;
    double last_print;
    double run_t0;
    int rank, ranks;          /* of the job (mpirun); rank 0 prints every run's lines, the
                                 others only their own ladder runs' starts and ends */
} run_state;

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void hms(double s, char *buf, size_t n) {
    if (!(s >= 0) || !isfinite(s)) {
        snprintf(buf, n, "--:--:--");
        return;
    }
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static int on_event(const oc_scale_event *ev, void *user) {
    run_state *st = user;
    if (st->rank != 0 && ev->kind != OC_SCALE_RUN_START && ev->kind != OC_SCALE_RUN_DONE)
        return cli_interrupted;
    if (st->rank != 0 && ev->is_target)
        return cli_interrupted;
    if (ev->kind == OC_SCALE_RUN_DONE && ev->rank != st->rank)
        return cli_interrupted; /* another rank's run: that rank said it */
    char eta[64], el[64], where[32] = "";
    if (st->ranks > 1 && !ev->is_target)
        snprintf(where, sizeof where, " (rank %d)", ev->rank);
    hms(ev->eta_s, eta, sizeof eta);
    hms(ev->elapsed_s, el, sizeof el);
    switch (ev->kind) {
    case OC_SCALE_DATA:
        fprintf(stderr, "ocellus scale: %s\n", ev->message);
        break;
    case OC_SCALE_PLAN:
        fprintf(stderr, "ocellus scale: plan of %zu runs (%zu ladder + target), %.3g FLOPs in "
                        "all, written to %s\n", ev->n_runs, ev->n_runs - 1, ev->compute_total,
                ev->path);
        break;
    case OC_SCALE_RUN_START:
        st->run_t0 = wall();
        st->last_print = 0;
        fprintf(stderr, "[%zu/%zu] %s%s: width %u, %zu params, %llu tokens, %llu steps, lr %.3g, "
                        "%.3g FLOPs planned; overall %s elapsed, ETA %s\n",
                ev->run + 1, ev->n_runs, ev->name, where, ev->width, ev->params,
                (unsigned long long)ev->tokens, (unsigned long long)ev->steps, ev->lr,
                ev->run_compute, el, eta);
        break;
    case OC_SCALE_RUN_STEP: {
        const oc_train_stats *s = ev->stats;
        double now = wall();
        int last = s->step == s->total_steps;
        int every = s->total_steps >= 10 ? (int)(s->total_steps / 10) : 1;
        if (st->tty ? (now - st->last_print >= 1 || last) : (s->step % (uint64_t)every == 0)) {
            st->last_print = now;
            double tps = s->seconds > 0 ? (double)s->tokens / s->seconds : 0;
            fprintf(stderr, "%s  %s step %llu/%llu  loss %.4f  lr %.3g  %.0f tok/s  "
                            "overall ETA %s%s",
                    st->tty ? "\r" : "", ev->name, (unsigned long long)s->step,
                    (unsigned long long)s->total_steps, s->loss, s->lr, tps, eta,
                    st->tty ? "   " : "\n");
            if (st->tty && last)
                fprintf(stderr, "\n");
        }
        break;
    }
    case OC_SCALE_RUN_DONE:
        if (ev->skipped)
            fprintf(stderr, "[%zu/%zu] %s: finished earlier: validation loss %.4f",
                    ev->run + 1, ev->n_runs, ev->name, ev->final_loss);
        else
            fprintf(stderr, "[%zu/%zu] %s%s done: validation loss %.4f", ev->run + 1,
                    ev->n_runs, ev->name, where, ev->final_loss);
        if (isfinite(ev->capability))
            fprintf(stderr, ", capability %.4f", ev->capability);
        fprintf(stderr, ", %.3g FLOPs, %.0f s of training; overall %s elapsed, ETA %s\n",
                ev->run_compute, ev->run_seconds, el, eta);
        break;
    case OC_SCALE_PREDICTION:
        fprintf(stderr, "ocellus scale: prediction for the target (written to %s before it "
                        "starts): validation loss %.4f [%.4f, %.4f]\n",
                ev->path, ev->predicted_loss, ev->ci_low, ev->ci_high);
        break;
    case OC_SCALE_REPORT:
        fprintf(stderr, "ocellus scale: report written to %s (%s elapsed)\n", ev->path, el);
        break;
    }
    return cli_interrupted;
}

static int print_summary(const char *cmd, const char *out) {
    char *text = NULL;
    oc_status s = oc_scale_summary(out, &text);
    if (s != OC_OK)
        return cli_fail(cmd, s);
    fputs(text, stdout);
    oc_free(text);
    return 0;
}

static const struct option RUN_OPTIONS[] = {
    {"recipe", required_argument, NULL, CLI_OPT_LONG},
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"threads", required_argument, NULL, 't'},
    {"plan", no_argument, NULL, CLI_OPT_LONG},
    {"stop-before-target", no_argument, NULL, CLI_OPT_LONG},
    {"comm-timeout", required_argument, NULL, CLI_OPT_LONG},
    {0},
};

static int scale_run(int argc, char **argv) {
    const char *cmd = "scale run", *recipe = NULL, *out = NULL;
    double comm_timeout = 0;
    oc_scale_params p = oc_scale_default_params();
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, RUN_OPTIONS) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, SCALE_HELP, &rc)) != CLI_OPT_END;) {
        const char *a = ps.flag, *v = ps.arg;
        if (k == CLI_OPT_ARG) {
            return cli_usage(cmd, "unexpected argument %s", v), CLI_USAGE;
        } else if (!strcmp(a, "--plan")) {
            p.plan_only = 1;
        } else if (!strcmp(a, "--stop-before-target")) {
            p.stop_before_target = 1;
        } else if (!strcmp(a, "--recipe")) {
            recipe = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--comm-timeout")) {
            float t;
            if (!cli_float(cmd, a, v, &t))
                return CLI_USAGE;
            if (!(t > 0))
                return cli_usage(cmd, "--comm-timeout must be > 0 seconds"), CLI_USAGE;
            comm_timeout = t;
        } else {
            uint32_t t;
            if (!cli_u32(cmd, a, v, &t) || t == 0 || t > 1024)
                return cli_usage(cmd, "--threads must be in 1..1024"), CLI_USAGE;
            p.n_threads = (int)t;
        }
    }
    if (rc >= 0)
        return rc;
    if (!recipe || !out)
        return cli_usage(cmd, "--recipe and --out are required"), CLI_USAGE;
    /* a job of several ranks (mpirun): the ladder's runs shared out, the target
     * data-parallel */
    oc_status s = oc_dist_init();
    if (s != OC_OK)
        return cli_fail(cmd, s);
    oc_dist_info job = oc_dist_get_info();
    if (comm_timeout > 0)
        oc_dist_set_timeout(comm_timeout);
    if (job.size > 1 && !p.n_threads)
        p.n_threads = job.threads;
    run_state st = {isatty(2) && job.rank == 0, 0, 0, job.rank, job.size};
    p.on_progress = on_event;
    p.user_data = &st;
    cli_install_sigint();
    s = oc_scale_run(recipe, out, &p);
    cli_end_job_if_alone(cmd, s);
    rc = 0;
    if (job.rank != 0)
        rc = s == OC_OK ? 0 : 2 + (int)s; /* rank 0 says it */
    else if (s == OC_ERR_CANCELLED) {
        fprintf(stderr, "ocellus scale: %s; run the same command again to continue\n",
                oc_last_error());
        rc = cli_fail(cmd, s);
    } else if (s != OC_OK)
        rc = cli_fail(cmd, s);
    else
        rc = print_summary(cmd, out);
    oc_dist_finalize();
    return rc;
}

/* ---- fit ---------------------------------------------------------------------------- */

/* NaN (no interval) is null */
static void json_num(cJSON *o, const char *key, double v) {
    cJSON_AddItemToObject(o, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

static void json_pair(cJSON *o, const char *key, const double v[2]) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int i = 0; i < 2; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
}

static const struct option FIT_OPTIONS[] = {
    {"predict", required_argument, NULL, CLI_OPT_LONG},
    {"huber-delta", required_argument, NULL, CLI_OPT_LONG},
    {"level", required_argument, NULL, CLI_OPT_LONG},
    {"bootstrap", required_argument, NULL, CLI_OPT_LONG},
    {"seed", required_argument, NULL, CLI_OPT_LONG},
    {"json", no_argument, NULL, CLI_OPT_LONG},
    {"no-irreducible", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

static int scale_fit(int argc, char **argv) {
    const char *cmd = "scale fit", *file = NULL;
    int json = 0, have_pred = 0;
    double predict_at = 0;
    oc_powerlaw_params fp = oc_powerlaw_default_params();
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, FIT_OPTIONS) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, SCALE_HELP, &rc)) != CLI_OPT_END;) {
        const char *a = ps.flag, *v = ps.arg;
        if (k == CLI_OPT_ARG) {
            if (file)
                return cli_usage(cmd, "one CSV file"), CLI_USAGE;
            file = v;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-irreducible")) {
            fp.irreducible = 0;
        } else {
            char *end;
            double d = strtod(v, &end);
            if (!*v || *end || !isfinite(d))
                return cli_usage(cmd, "%s expects a number, not '%s'", a, v), CLI_USAGE;
            if (!strcmp(a, "--predict")) {
                if (!(d > 0))
                    return cli_usage(cmd, "--predict expects a positive compute"), CLI_USAGE;
                predict_at = d;
                have_pred = 1;
            } else if (!strcmp(a, "--huber-delta")) {
                fp.huber_delta = d;
            } else if (!strcmp(a, "--level")) {
                fp.ci_level = d;
            } else {
                uint64_t u;
                if (!cli_u64(cmd, a, v, &u))
                    return CLI_USAGE;
                if (!strcmp(a, "--bootstrap")) {
                    if (u > 100000)
                        return cli_usage(cmd, "--bootstrap is at most 100000"), CLI_USAGE;
                    fp.bootstrap = (uint32_t)u;
                } else {
                    fp.seed = u;
                }
            }
        }
    }
    if (rc >= 0)
        return rc;
    if (!file)
        return cli_usage(cmd, "give the CSV file of runs"), CLI_USAGE;
    double *C = NULL, *L = NULL;
    size_t n = 0;
    oc_status s = oc_powerlaw_read_csv(file, &C, &L, &n);
    oc_powerlaw *f = NULL;
    if (s == OC_OK)
        s = oc_powerlaw_fit(C, L, n, &fp, &f);
    double pred = NAN, lo = NAN, hi = NAN;
    if (s == OC_OK && have_pred)
        s = oc_powerlaw_predict(f, predict_at, &pred, &lo, &hi);
    oc_free(C);
    oc_free(L);
    if (s != OC_OK) {
        oc_powerlaw_free(f);
        return cli_fail(cmd, s);
    }
    const oc_powerlaw_result *r = oc_powerlaw_get(f);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        json_num(o, "a", r->a);
        json_num(o, "b", r->b);
        json_num(o, "c", r->c);
        json_pair(o, "a_ci", r->a_ci);
        json_pair(o, "b_ci", r->b_ci);
        if (fp.irreducible)
            json_pair(o, "c_ci", r->c_ci);
        json_num(o, "n_points", (double)r->n_points);
        json_num(o, "rms_log_residual", r->rms_log_residual);
        json_num(o, "bootstrap_fits", r->n_bootstrap);
        json_num(o, "ci_level", fp.ci_level);
        if (have_pred) {
            json_num(o, "compute", predict_at);
            json_num(o, "predicted_loss", pred);
            json_num(o, "ci_low", lo);
            json_num(o, "ci_high", hi);
        }
        if (cli_json_print(o, 1) != 0) {
            oc_powerlaw_free(f);
            return 2 + OC_ERR_NOMEM;
        }
    } else {
        double lev = 100 * fp.ci_level;
        printf("%zu runs: L(C) = a * C^b + c (rms log residual %.4f)\n", r->n_points,
               r->rms_log_residual);
        printf("  a = %.6g  [%.6g, %.6g]\n", r->a, r->a_ci[0], r->a_ci[1]);
        printf("  b = %.6f  [%.6f, %.6f]\n", r->b, r->b_ci[0], r->b_ci[1]);
        if (fp.irreducible)
            printf("  c = %.6f  [%.6f, %.6f]\n", r->c, r->c_ci[0], r->c_ci[1]);
        else
            printf("  c = 0 (--no-irreducible)\n");
        printf("  intervals: %.0f%%, %u bootstrap refits\n", lev, r->n_bootstrap);
        if (have_pred)
            printf("predicted loss at C = %.6g: %.6f  [%.6f, %.6f]\n", predict_at, pred, lo, hi);
    }
    oc_powerlaw_free(f);
    return 0;
}

static int scale_report(int argc, char **argv) {
    const char *cmd = "scale report", *dir = NULL;
    static const struct option none[] = {{0}};
    cli_parser ps;
    if (cli_parser_init1(&ps, cmd, argc, argv, none) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    int rc = -1;
    for (int k; (k = cli_next_option(&ps, SCALE_HELP, &rc)) != CLI_OPT_END;) {
        if (dir)
            return cli_usage(cmd, "give one output folder"), CLI_USAGE;
        dir = ps.arg; /* only positionals are left */
    }
    if (rc >= 0)
        return rc;
    if (!dir)
        return cli_usage(cmd, "give the output folder"), CLI_USAGE;
    return print_summary(cmd, dir);
}

int cmd_scale(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(SCALE_HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : 0;
    }
    if (!strcmp(argv[1], "run"))
        return scale_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "fit"))
        return scale_fit(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report"))
        return scale_report(argc - 1, argv + 1);
    return cli_usage("scale", "unknown subcommand '%s' (run, fit or report)", argv[1]),
           CLI_USAGE;
}
