/* Charts with cairo: lines, markers and error bars on linear or logarithmic axes, written
 * as PNG or SVG (by the file's extension). Used for the scaling reports (loss against
 * compute with the fitted curve, the prediction's interval and the actual point) and for
 * training curves (`ocellus plot`). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cairo-svg.h>
#include <cairo.h>

#include "alloc.h"
#include "error.h"
#include "output.h"

#define MAX_TICKS 64

oc_chart oc_chart_default(void) {
    oc_chart c;
    memset(&c, 0, sizeof c);
    c.width = 900;
    c.height = 600;
    return c;
}

typedef struct {
    double lo, hi;  /* data range of the axis (in log10 when log) */
    int log;
    double p0, p1;  /* pixel range */
} axis;

static double to_px(const axis *a, double v) {
    double t = a->log ? log10(v) : v;
    return a->p0 + (t - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static int usable(const axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }

/* The data range of x (or y) over every series, error bars included. */
static int data_range(const oc_chart *c, int want_y, int log, double *lo, double *hi) {
    int any = 0;
    for (size_t s = 0; s < c->n_series; s++) {
        const oc_chart_series *se = &c->series[s];
        for (size_t i = 0; i < se->n; i++) {
            double v[3] = {want_y ? se->y[i] : se->x[i], NAN, NAN};
            if (want_y && se->y_low)
                v[1] = se->y_low[i];
            if (want_y && se->y_high)
                v[2] = se->y_high[i];
            if (!isfinite(se->x[i]) || !isfinite(se->y[i]))
                continue;
            for (int k = 0; k < 3; k++) {
                if (!isfinite(v[k]) || (log && v[k] <= 0))
                    continue;
                double t = log ? log10(v[k]) : v[k];
                if (!any || t < *lo)
                    *lo = t;
                if (!any || t > *hi)
                    *hi = t;
                any = 1;
            }
        }
    }
    return any;
}

/* Widens [lo, hi] a little (and a degenerate range to something drawable). */
static void pad_range(double *lo, double *hi, int log) {
    double span = *hi - *lo;
    if (span <= 0)
        span = log ? 1 : (fabs(*lo) > 0 ? fabs(*lo) : 1);
    *lo -= 0.06 * span;
    *hi += 0.06 * span;
}

/* Linear ticks at a step of 1, 2 or 5 x 10^k with about 6 in the range. */
static size_t linear_ticks(double lo, double hi, double *t) {
    double raw = (hi - lo) / 6, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5)
        step = 10 * mag;
    else if (raw / mag > 2)
        step = 5 * mag;
    else if (raw / mag > 1)
        step = 2 * mag;
    size_t n = 0;
    for (double v = ceil(lo / step) * step; v <= hi + 1e-9 * step && n < MAX_TICKS; v += step)
        t[n++] = fabs(v) < 1e-12 * step ? 0 : v;
    return n;
}

/* Log ticks (values, not logs): decades when the range spans several, else 1-9 x 10^k
 * thinned to at most 12 labelled ones. label[i] says whether tick i gets a label. */
static size_t log_ticks(double lo, double hi, double *t, int *label, int *decade) {
    size_t n = 0;
    double span = hi - lo;
    *decade = span >= 2.5;
    for (int e = (int)floor(lo); e <= (int)ceil(hi) && n < MAX_TICKS; e++)
        for (int m = 1; m <= 9 && n < MAX_TICKS; m++) {
            double v = m * pow(10, e), lv = log10(v);
            if (lv < lo - 1e-9 || lv > hi + 1e-9)
                continue;
            if (*decade && m != 1 && span > 6)
                continue;
            int lab = m == 1 || (!*decade && (span < 1.2 || m == 2 || m == 5));
            t[n] = v;
            label[n++] = lab;
        }
    return n;
}

static void tick_text(double v, int log_decade, char *buf, size_t n) {
    if (log_decade)
        snprintf(buf, n, "%d", (int)lround(log10(v)));
    else
        snprintf(buf, n, "%g", v);
}

static void set_rgb(cairo_t *cr, uint32_t rgb, double alpha) {
    cairo_set_source_rgba(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                          (rgb & 255) / 255.0, alpha);
}

static void marker(cairo_t *cr, double x, double y, int shape, double r, int filled) {
    switch (shape) {
    case OC_MARK_SQUARE:
        cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r);
        break;
    case OC_MARK_DIAMOND:
        cairo_move_to(cr, x, y - 1.3 * r);
        cairo_line_to(cr, x + 1.3 * r, y);
        cairo_line_to(cr, x, y + 1.3 * r);
        cairo_line_to(cr, x - 1.3 * r, y);
        cairo_close_path(cr);
        break;
    case OC_MARK_STAR:
        for (int k = 0; k < 10; k++) {
            double ang = -M_PI / 2 + k * M_PI / 5, rr = k % 2 ? 0.45 * r * 1.5 : 1.5 * r;
            if (k == 0)
                cairo_move_to(cr, x + rr * cos(ang), y + rr * sin(ang));
            else
                cairo_line_to(cr, x + rr * cos(ang), y + rr * sin(ang));
        }
        cairo_close_path(cr);
        break;
    default:
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, r, 0, 2 * M_PI);
        break;
    }
    if (filled) {
        cairo_fill_preserve(cr);
    }
    cairo_stroke(cr);
}

static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay) {
    cairo_text_extents_t ext;
    cairo_text_extents(cr, s, &ext);
    cairo_move_to(cr, x - ax * ext.width - ext.x_bearing, y - ay * ext.height - ext.y_bearing);
    cairo_show_text(cr, s);
}

/* "10" with the exponent as a superscript, centred at x (below y). */
static void power_of_ten(cairo_t *cr, const char *exp, double x, double y, double size,
                         int right_align) {
    cairo_text_extents_t e1, e2;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, "10", &e1);
    cairo_set_font_size(cr, size * 0.7);
    cairo_text_extents(cr, exp, &e2);
    double w = e1.x_advance + e2.x_advance;
    double x0 = right_align ? x - w : x - w / 2;
    cairo_set_font_size(cr, size);
    cairo_move_to(cr, x0, y);
    cairo_show_text(cr, "10");
    cairo_set_font_size(cr, size * 0.7);
    cairo_move_to(cr, x0 + e1.x_advance, y - 0.45 * size);
    cairo_show_text(cr, exp);
    cairo_set_font_size(cr, size);
}

static void draw(cairo_t *cr, const oc_chart *c, const axis *ax, const axis *ay) {
    double H = c->height, fs = H / 42.0;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs);
    double L = ax->p0, R = ax->p1, T = ay->p1, B = ay->p0;

    /* grid and ticks */
    double tx[MAX_TICKS], ty[MAX_TICKS];
    int lx[MAX_TICKS], ly[MAX_TICKS], dx = 0, dy = 0;
    size_t nx, ny;
    if (ax->log)
        nx = log_ticks(ax->lo, ax->hi, tx, lx, &dx);
    else
        for (nx = linear_ticks(ax->lo, ax->hi, tx), dx = 0; dx < (int)nx; dx++)
            lx[dx] = 1;
    if (!ax->log)
        dx = 0;
    if (ay->log)
        ny = log_ticks(ay->lo, ay->hi, ty, ly, &dy);
    else
        for (ny = linear_ticks(ay->lo, ay->hi, ty), dy = 0; dy < (int)ny; dy++)
            ly[dy] = 1;
    if (!ay->log)
        dy = 0;
    cairo_set_line_width(cr, 1);
    char buf[64];
    for (size_t i = 0; i < nx; i++) {
        double px = to_px(ax, tx[i]);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        if (lx[i]) {
            cairo_move_to(cr, px, T);
            cairo_line_to(cr, px, B);
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, px, B);
        cairo_line_to(cr, px, B + (lx[i] ? 6 : 3));
        cairo_stroke(cr);
        if (lx[i]) {
            tick_text(tx[i], dx, buf, sizeof buf);
            if (dx)
                power_of_ten(cr, buf, px, B + 8 + 1.1 * fs, fs, 0);
            else
                text_at(cr, buf, px, B + 9, 0.5, 0);
        }
    }
    for (size_t i = 0; i < ny; i++) {
        double py = to_px(ay, ty[i]);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        if (ly[i]) {
            cairo_move_to(cr, L, py);
            cairo_line_to(cr, R, py);
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, L, py);
        cairo_line_to(cr, L - (ly[i] ? 6 : 3), py);
        cairo_stroke(cr);
        if (ly[i]) {
            tick_text(ty[i], dy, buf, sizeof buf);
            if (dy)
                power_of_ten(cr, buf, L - 9, py + 0.4 * fs, fs, 1);
            else
                text_at(cr, buf, L - 9, py, 1, 0.5);
        }
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, L, T, R - L, B - T);
    cairo_stroke(cr);

    /* labels and title */
    if (c->x_label)
        text_at(cr, c->x_label, (L + R) / 2, H - 0.6 * fs, 0.5, 1);
    if (c->y_label) {
        cairo_save(cr);
        cairo_translate(cr, 0.8 * fs, (T + B) / 2);
        cairo_rotate(cr, -M_PI / 2);
        text_at(cr, c->y_label, 0, 0, 0.5, 0);
        cairo_restore(cr);
    }
    if (c->title) {
        cairo_set_font_size(cr, 1.15 * fs);
        text_at(cr, c->title, (L + R) / 2, 0.6 * fs, 0.5, 0);
        cairo_set_font_size(cr, fs);
    }

    /* series, clipped to the frame */
    cairo_save(cr);
    cairo_rectangle(cr, L, T, R - L, B - T);
    cairo_clip(cr);
    for (size_t s = 0; s < c->n_series; s++) {
        const oc_chart_series *se = &c->series[s];
        set_rgb(cr, se->rgb, 1);
        double lw = se->line_width > 0 ? se->line_width : 2;
        cairo_set_line_width(cr, lw);
        if (se->style == OC_SERIES_LINE || se->style == OC_SERIES_DASHED) {
            if (se->style == OC_SERIES_DASHED) {
                double d[2] = {8, 5};
                cairo_set_dash(cr, d, 2, 0);
            }
            int pen = 0;
            for (size_t i = 0; i < se->n; i++) {
                if (!usable(ax, se->x[i]) || !usable(ay, se->y[i])) {
                    pen = 0;
                    continue;
                }
                double px = to_px(ax, se->x[i]), py = to_px(ay, se->y[i]);
                if (pen)
                    cairo_line_to(cr, px, py);
                else
                    cairo_move_to(cr, px, py);
                pen = 1;
            }
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            continue;
        }
        double r = se->marker_size > 0 ? se->marker_size : 5;
        for (size_t i = 0; i < se->n; i++) {
            if (!usable(ax, se->x[i]) || !usable(ay, se->y[i]))
                continue;
            double px = to_px(ax, se->x[i]), py = to_px(ay, se->y[i]);
            if (se->y_low && se->y_high && usable(ay, se->y_low[i]) &&
                usable(ay, se->y_high[i])) {
                double y0 = to_px(ay, se->y_low[i]), y1 = to_px(ay, se->y_high[i]);
                cairo_set_line_width(cr, 1.5);
                cairo_move_to(cr, px, y0);
                cairo_line_to(cr, px, y1);
                cairo_move_to(cr, px - r, y0);
                cairo_line_to(cr, px + r, y0);
                cairo_move_to(cr, px - r, y1);
                cairo_line_to(cr, px + r, y1);
                cairo_stroke(cr);
                cairo_set_line_width(cr, lw);
            }
            marker(cr, px, py, se->marker, r, se->style != OC_SERIES_OPEN_MARKERS);
        }
    }
    cairo_restore(cr);

    /* legend, top right */
    size_t n_leg = 0;
    double wmax = 0;
    for (size_t s = 0; s < c->n_series; s++)
        if (c->series[s].label) {
            cairo_text_extents_t e;
            cairo_text_extents(cr, c->series[s].label, &e);
            wmax = e.x_advance > wmax ? e.x_advance : wmax;
            n_leg++;
        }
    if (n_leg) {
        double lh = 1.5 * fs, bw = wmax + 3.2 * fs, bh = n_leg * lh + 0.6 * fs;
        double bx = R - bw - 10, by = T + 10;
        if (c->legend_bottom_left) {
            bx = L + 10;
            by = B - bh - 10;
        }
        cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
        cairo_rectangle(cr, bx, by, bw, bh);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        size_t k = 0;
        for (size_t s = 0; s < c->n_series; s++) {
            const oc_chart_series *se = &c->series[s];
            if (!se->label)
                continue;
            double cy = by + 0.3 * fs + (k + 0.5) * lh, cx = bx + 1.2 * fs;
            set_rgb(cr, se->rgb, 1);
            cairo_set_line_width(cr, se->line_width > 0 ? se->line_width : 2);
            if (se->style == OC_SERIES_LINE || se->style == OC_SERIES_DASHED) {
                if (se->style == OC_SERIES_DASHED) {
                    double d[2] = {6, 3};
                    cairo_set_dash(cr, d, 2, 0);
                }
                cairo_move_to(cr, cx - 0.8 * fs, cy);
                cairo_line_to(cr, cx + 0.8 * fs, cy);
                cairo_stroke(cr);
                cairo_set_dash(cr, NULL, 0, 0);
            } else {
                marker(cr, cx, cy, se->marker, se->marker_size > 0 ? se->marker_size : 5,
                       se->style != OC_SERIES_OPEN_MARKERS);
            }
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            text_at(cr, se->label, bx + 2.4 * fs, cy, 0, 0.5);
            k++;
        }
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* cairo's stream writer into an output-layer file; the first failure is kept. */
typedef struct {
    oc_out_file *f;
    oc_status s;
} chart_sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int n) {
    chart_sink *k = closure;
    if (k->s == OC_OK)
        k->s = oc_out_write(k->f, data, n);
    return k->s == OC_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

oc_status oc_chart_write(const oc_chart *c, const char *path) {
    if (!c || !path || (c->n_series && !c->series))
        return oc_err(OC_ERR_INVALID_ARG, "oc_chart_write: NULL argument");
    int svg = ends_with(path, ".svg");
    if (!svg && !ends_with(path, ".png"))
        return oc_err(OC_ERR_INVALID_ARG, "%s: a chart is written as .png or .svg", path);
    if (c->width < 200 || c->height < 150 || c->width > 8000 || c->height > 8000)
        return oc_err(OC_ERR_INVALID_ARG, "%s: chart size %ux%u (200x150 to 8000x8000)", path,
                      c->width, c->height);
    for (size_t s = 0; s < c->n_series; s++)
        if (c->series[s].n && (!c->series[s].x || !c->series[s].y))
            return oc_err(OC_ERR_INVALID_ARG, "%s: series %zu has no values", path, s + 1);
    axis ax = {0, 0, c->log_x, 0, 0}, ay = {0, 0, c->log_y, 0, 0};
    if (!data_range(c, 0, c->log_x, &ax.lo, &ax.hi) ||
        !data_range(c, 1, c->log_y, &ay.lo, &ay.hi))
        return oc_err(OC_ERR_INVALID_ARG, "%s: nothing to plot (no finite point%s)", path,
                      c->log_x || c->log_y ? " with positive values on the log axes" : "");
    pad_range(&ax.lo, &ax.hi, ax.log);
    pad_range(&ay.lo, &ay.hi, ay.log);
    double fs = c->height / 42.0;
    ax.p0 = 6.5 * fs;
    ax.p1 = c->width - 1.5 * fs;
    ay.p0 = c->height - 4.2 * fs;
    ay.p1 = c->title ? 2.6 * fs : 1.2 * fs;

    /* Both formats go through the output layer (a temporary renamed into place): SVG
     * streams into it as cairo draws, PNG is encoded into it from an image surface. */
    chart_sink sink = {NULL, OC_OK};
    OC_TRY(oc_out_open(path, &sink.f));
    cairo_surface_t *surf =
        svg ? cairo_svg_surface_create_for_stream(sink_write, &sink, c->width, c->height)
            : cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)c->width, (int)c->height);
    oc_status s = OC_OK;
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        s = oc_err(OC_ERR_IO, "%s: cannot draw: %s", path,
                   cairo_status_to_string(cairo_surface_status(surf)));
    } else {
        cairo_t *cr = cairo_create(surf);
        draw(cr, c, &ax, &ay);
        if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
            s = oc_err(OC_ERR_INTERNAL, "%s: drawing failed: %s", path,
                       cairo_status_to_string(cairo_status(cr)));
        cairo_destroy(cr);
    }
    if (s == OC_OK && !svg) {
        cairo_status_t st = cairo_surface_write_to_png_stream(surf, sink_write, &sink);
        if (st != CAIRO_STATUS_SUCCESS && sink.s == OC_OK)
            s = oc_err(OC_ERR_IO, "%s: cannot encode the PNG: %s", path,
                       cairo_status_to_string(st));
    }
    cairo_surface_finish(surf); /* an SVG's last bytes are written here */
    if (s == OC_OK && sink.s == OC_OK && cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS)
        s = oc_err(OC_ERR_IO, "%s: cannot write: %s", path,
                   cairo_status_to_string(cairo_surface_status(surf)));
    cairo_surface_destroy(surf);
    if (s == OC_OK)
        s = sink.s; /* the output layer's error, naming the file */
    if (s != OC_OK) {
        oc_out_abort(sink.f);
        return s;
    }
    return oc_out_commit(sink.f);
}
