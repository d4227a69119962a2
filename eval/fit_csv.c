/* CSV tables of numbers: a header naming the columns, then one row a line (the runs of a
 * scaling fit, a training run's loss curve). Fields are plain numbers; header names may
 * be quoted with double quotes, which are stripped; blank lines and lines starting with
 * '#' are skipped; an empty field reads as NaN where the caller allows it. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

#define MAX_CSV_BYTES ((size_t)256 << 20)
#define MAX_FIELDS 256
#define MAX_COLUMNS 64

/* Splits line (modified in place) at commas into trimmed fields; returns their count
 * (fields beyond MAX_FIELDS are counted, not stored). */
static size_t split(char *line, char **fields) {
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        while (isspace((unsigned char)*p))
            p++;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = 0;
        if (end - p >= 2 && *p == '"' && end[-1] == '"') {
            end[-1] = 0;
            p++;
        }
        if (n < MAX_FIELDS)
            fields[n] = p;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

static int find_column(char **names, size_t n, const char *name) {
    for (size_t i = 0; i < n && i < MAX_FIELDS; i++)
        if (!strcasecmp(names[i], name))
            return (int)i;
    return -1;
}

static int is_number(const char *f) {
    char *end;
    strtod(f, &end);
    return end != f && !*end;
}

/* How the columns are chosen: by names (each a list of alternatives separated by '|'),
 * or, when positional and the header names none of them, the first columns in order. */
typedef struct {
    const char *const *names;
    size_t n;
    int positional;
    int allow_empty;   /* empty fields read as NaN */
} col_spec;

/* cols[j] (n_rows) for each column j; when lines != NULL, *lines (n_rows) the line
 * number of each row. */
static oc_status read_table(const char *path, const col_spec *cs, double **cols,
                            size_t *n_rows, size_t **lines) {
    if (cs->n == 0 || cs->n > MAX_COLUMNS)
        return oc_err(OC_ERR_INVALID_ARG, "CSV: 1 to %d columns can be read", MAX_COLUMNS);
    char *text = NULL;
    size_t size = 0;
    OC_TRY(oc_read_file(path, MAX_CSV_BYTES, &text, &size));
    if (memchr(text, 0, size)) {
        oc_free(text);
        return oc_err(OC_ERR_FORMAT, "%s: not a text file (NUL byte)", path);
    }
    size_t cap = 64, n = 0, line_no = 0, k = cs->n;
    int idx[MAX_COLUMNS];
    char hdr[MAX_COLUMNS][64];
    size_t *ln = lines ? oc_malloc(cap * sizeof *ln) : NULL;
    oc_status s = lines && !ln ? oc_err(OC_ERR_NOMEM, "out of memory") : OC_OK;
    for (size_t j = 0; j < k; j++)
        cols[j] = NULL;
    for (size_t j = 0; j < k && s == OC_OK; j++)
        if (!(cols[j] = oc_malloc(cap * sizeof(double))))
            s = oc_err(OC_ERR_NOMEM, "out of memory");
    int have_header = 0;
    char *fields[MAX_FIELDS];
    char *p = text;
    while (s == OC_OK && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        char *line = p;
        p = nl ? nl + 1 : p + strlen(p);
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        char *q = line;
        while (isspace((unsigned char)*q))
            q++;
        if (!*q || *q == '#')
            continue;
        size_t nf = split(line, fields);
        if (!have_header) {
            if (is_number(fields[0])) {
                s = oc_err(OC_ERR_FORMAT, "%s:%zu: expected a header line naming the columns "
                           "(e.g. \"compute,loss\"), found numbers", path, line_no);
                break;
            }
            int named = 0;
            for (size_t j = 0; j < k; j++) {
                /* alternatives "a|b" */
                char alt[256];
                snprintf(alt, sizeof alt, "%s", cs->names[j]);
                idx[j] = -1;
                for (char *save = NULL, *tok = strtok_r(alt, "|", &save); tok && idx[j] < 0;
                     tok = strtok_r(NULL, "|", &save))
                    idx[j] = find_column(fields, nf, tok);
                named += idx[j] >= 0;
            }
            if (named < (int)k && cs->positional && named == 0) {
                if (nf < k) {
                    s = oc_err(OC_ERR_FORMAT, "%s:%zu: the header has %zu column%s; %zu are "
                               "needed", path, line_no, nf, nf == 1 ? "" : "s", k);
                    break;
                }
                for (size_t j = 0; j < k; j++)
                    idx[j] = (int)j;
            } else {
                for (size_t j = 0; j < k && s == OC_OK; j++)
                    if (idx[j] < 0)
                        s = oc_err(OC_ERR_FORMAT, "%s:%zu: no column \"%s\" in the header",
                                   path, line_no, cs->names[j]);
            }
            for (size_t j = 0; j < k && s == OC_OK; j++)
                snprintf(hdr[j], sizeof hdr[j], "%s", fields[idx[j]]);
            have_header = 1;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            for (size_t j = 0; j < k && s == OC_OK; j++) {
                double *nc = oc_realloc(cols[j], cap * sizeof(double));
                if (!nc)
                    s = oc_err(OC_ERR_NOMEM, "out of memory");
                else
                    cols[j] = nc;
            }
            size_t *nl2 = ln ? oc_realloc(ln, cap * sizeof *ln) : NULL;
            if (ln && !nl2)
                s = oc_err(OC_ERR_NOMEM, "out of memory");
            else if (ln)
                ln = nl2;
            if (s != OC_OK)
                break;
        }
        if (ln)
            ln[n] = line_no;
        for (size_t j = 0; j < k && s == OC_OK; j++) {
            size_t c = (size_t)idx[j];
            const char *f = c < nf && c < MAX_FIELDS ? fields[c] : NULL;
            const char *name = hdr[j];
            if (!f) {
                s = oc_err(OC_ERR_FORMAT, "%s:%zu: %zu field%s, expected at least %zu", path,
                           line_no, nf, nf == 1 ? "" : "s", c + 1);
            } else if (!*f && cs->allow_empty) {
                cols[j][n] = NAN;
            } else {
                char *end;
                errno = 0;
                double v = strtod(f, &end);
                if (end == f || *end)
                    s = oc_err(OC_ERR_FORMAT, "%s:%zu: %s '%s' is not a number", path, line_no,
                               name, f);
                else if (errno == ERANGE && isinf(v))
                    s = oc_err(OC_ERR_FORMAT, "%s:%zu: %s '%s' is out of range", path,
                               line_no, name, f);
                else
                    cols[j][n] = v;
            }
        }
        n++;
    }
    if (s == OC_OK && !have_header)
        s = oc_err(OC_ERR_FORMAT, "%s: empty: expected a header line and one row a line",
                   path);
    oc_free(text);
    if (s != OC_OK) {
        for (size_t j = 0; j < k; j++) {
            oc_free(cols[j]);
            cols[j] = NULL;
        }
        oc_free(ln);
        return s;
    }
    *n_rows = n;
    if (lines)
        *lines = ln;
    return OC_OK;
}

oc_status oc_csv_read_columns(const char *path, const char *const *names, size_t n_names,
                              double **columns, size_t *n_rows) {
    if (!path || !names || !columns || !n_rows)
        return oc_err(OC_ERR_INVALID_ARG, "oc_csv_read_columns: NULL argument");
    col_spec cs = {names, n_names, 0, 1};
    return read_table(path, &cs, columns, n_rows, NULL);
}

oc_status oc_powerlaw_read_csv(const char *path, double **compute, double **loss,
                               size_t *n_out) {
    if (!path || !compute || !loss || !n_out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_powerlaw_read_csv: NULL argument");
    static const char *const names[2] = {"compute", "loss|final_loss"};
    col_spec cs = {names, 2, 1, 0};
    double *cols[2];
    size_t n, *lines = NULL;
    OC_TRY(read_table(path, &cs, cols, &n, &lines));
    /* the fit's own checks would name a point; here the line is more useful */
    oc_status s = OC_OK;
    for (size_t i = 0; i < n && s == OC_OK; i++) {
        if (!isfinite(cols[0][i]) || cols[0][i] <= 0)
            s = oc_err(OC_ERR_FORMAT, "%s:%zu: compute must be positive and finite (got %g)",
                       path, lines[i], cols[0][i]);
        else if (!isfinite(cols[1][i]) || cols[1][i] <= 0)
            s = oc_err(OC_ERR_FORMAT, "%s:%zu: loss must be positive and finite (got %g)", path,
                       lines[i], cols[1][i]);
    }
    oc_free(lines);
    if (s != OC_OK) {
        oc_free(cols[0]);
        oc_free(cols[1]);
        return s;
    }
    *compute = cols[0];
    *loss = cols[1];
    *n_out = n;
    return OC_OK;
}
