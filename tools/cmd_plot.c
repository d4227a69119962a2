/* ocellus plot: draws training curves (the loss.csv files `ocellus scale run` writes in
 * each run's checkpoint folder, or any CSV with a header) as a PNG or SVG chart. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char PLOT_HELP[] =
    "usage: ocellus plot FILE.csv [FILE.csv ...] --out CHART.png|svg [options]\n"
    "Draws one line per file: a column against another, e.g. the training curves of a\n"
    "scaling study (DIR/runs/*/loss.csv: step, tokens, flops, loss, lr, grad_norm,\n"
    "seconds). Each line is named after the file's folder.\n"
    "  --out FILE        the chart, .png or .svg\n"
    "  --x COLUMN        step (default), tokens (summed over the rows: tokens seen), flops,\n"
    "                    or any column\n"
    "  --y COLUMN        default loss\n"
    "  --smooth N        mean of the last N rows (default 1: none)\n"
    "  --log-x, --log-y  logarithmic axes (default: log y, and log x for flops)\n"
    "  --linear-y        linear y axis\n"
    "  --title TEXT\n";

#define MAX_FILES 64

static const uint32_t COLOURS[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

/* "runs/ladder-03/loss.csv" -> "ladder-03" (static buffer per call site) */
static void label_of(const char *path, char *buf, size_t n) {
    const char *end = strrchr(path, '/');
    if (!end) {
        snprintf(buf, n, "%s", path);
        return;
    }
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    snprintf(buf, n, "%.*s", (int)(end - start), start);
    if (!buf[0])
        snprintf(buf, n, "%s", path);
}

static const struct option PLOT_OPTIONS[] = {
    {"out", required_argument, NULL, CLI_OPT_LONG},
    {"x", required_argument, NULL, CLI_OPT_LONG},
    {"y", required_argument, NULL, CLI_OPT_LONG},
    {"smooth", required_argument, NULL, CLI_OPT_LONG},
    {"title", required_argument, NULL, CLI_OPT_LONG},
    {"log-x", no_argument, NULL, CLI_OPT_LONG},
    {"log-y", no_argument, NULL, CLI_OPT_LONG},
    {"linear-y", no_argument, NULL, CLI_OPT_LONG},
    {0},
};

int cmd_plot(int argc, char **argv) {
    const char *cmd = "plot", *out = NULL, *xcol = "step", *ycol = "loss", *title = NULL;
    const char *files[MAX_FILES];
    size_t nf = 0;
    uint32_t smooth = 1;
    int log_x = -1, log_y = 1;
    const struct option *tables[] = {PLOT_OPTIONS, NULL};
    cli_parser p;
    if (cli_parser_init(&p, cmd, argc, argv, tables) != 0)
        return cli_fail(cmd, OC_ERR_INTERNAL);
    for (int k; (k = cli_parser_next(&p)) != CLI_OPT_END;) {
        const char *a = p.flag, *v = p.arg;
        if (k == CLI_OPT_ERROR) {
            return CLI_USAGE;
        } else if (k == CLI_OPT_HELP) {
            printf("%s", PLOT_HELP);
            return 0;
        } else if (k == CLI_OPT_ARG) {
            if (nf == MAX_FILES)
                return cli_usage(cmd, "at most %d files", MAX_FILES), CLI_USAGE;
            files[nf++] = v;
        } else if (!strcmp(a, "--log-x")) {
            log_x = 1;
        } else if (!strcmp(a, "--log-y")) {
            log_y = 1;
        } else if (!strcmp(a, "--linear-y")) {
            log_y = 0;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--x")) {
            xcol = v;
        } else if (!strcmp(a, "--y")) {
            ycol = v;
        } else if (!strcmp(a, "--title")) {
            title = v;
        } else if (!cli_u32(cmd, a, v, &smooth) || smooth == 0 || smooth > 1000000) {
            return cli_usage(cmd, "--smooth must be in 1..1000000"), CLI_USAGE;
        }
    }
    if (!nf || !out)
        return cli_usage(cmd, "give CSV files and --out"), CLI_USAGE;
    if (log_x < 0)
        log_x = !strcmp(xcol, "flops");
    int cumulative = !strcmp(xcol, "tokens");
    oc_chart_series series[MAX_FILES];
    double *cols[MAX_FILES][2];
    char labels[MAX_FILES][128];
    memset(cols, 0, sizeof cols);
    int rc = 0;
    size_t ns = 0;
    for (size_t f = 0; f < nf && !rc; f++) {
        const char *names[2] = {xcol, ycol};
        size_t n = 0;
        oc_status s = oc_csv_read_columns(files[f], names, 2, cols[f], &n);
        if (s != OC_OK) {
            rc = cli_fail(cmd, s);
            break;
        }
        double *x = cols[f][0], *y = cols[f][1];
        if (cumulative)
            for (size_t i = 1; i < n; i++)
                x[i] += x[i - 1];
        if (smooth > 1) { /* trailing mean over the finite values of the window */
            double *sm = malloc((n ? n : 1) * sizeof *sm);
            if (!sm) {
                fprintf(stderr, "ocellus plot: out of memory\n");
                rc = 2 + OC_ERR_NOMEM;
                break;
            }
            for (size_t i = 0; i < n; i++) {
                double sum = 0;
                size_t k = 0;
                for (size_t j = i + 1 > smooth ? i + 1 - smooth : 0; j <= i; j++)
                    if (isfinite(y[j]))
                        sum += y[j], k++;
                sm[i] = k ? sum / (double)k : NAN;
            }
            memcpy(y, sm, n * sizeof *sm);
            free(sm);
        }
        label_of(files[f], labels[f], sizeof labels[f]);
        series[ns++] = (oc_chart_series){labels[f], x, y, NULL, NULL, n, OC_SERIES_LINE,
                                         OC_MARK_CIRCLE, COLOURS[f % 10], 1.5, 0};
    }
    if (!rc) {
        char xl[128], yl[128];
        snprintf(xl, sizeof xl, "%s%s", xcol, cumulative ? " (seen)" : "");
        snprintf(yl, sizeof yl, "%s%s", ycol, smooth > 1 ? " (smoothed)" : "");
        oc_chart ch = oc_chart_default();
        ch.title = title;
        ch.x_label = xl;
        ch.y_label = yl;
        ch.log_x = log_x;
        ch.log_y = log_y;
        ch.series = series;
        ch.n_series = ns;
        oc_status s = oc_chart_write(&ch, out);
        if (s != OC_OK)
            rc = cli_fail(cmd, s);
    }
    for (size_t f = 0; f < nf; f++) {
        oc_free(cols[f][0]);
        oc_free(cols[f][1]);
    }
    return rc;
}
