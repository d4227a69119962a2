/* PIL-compatible resampling of 8-bit RGB images.
 *
 * Reproduces what Pillow's Image.resize((dw, dh), filter) computes for an "RGB" image,
 * bit for bit:
 *  - convolution filters (BOX, BILINEAR, HAMMING, BICUBIC, LANCZOS): per output pixel a
 *    window of input pixels and weights computed in double, the support widened by the
 *    downscaling factor, weights normalised to sum 1 and then rounded to fixed point with
 *    22 fractional bits; a horizontal pass (rounded and clipped to 8 bits) followed by a
 *    vertical pass; a pass is skipped when its dimension does not change;
 *  - very tall images (height > 100 x width) that shrink vertically are resized
 *    vertically first, then horizontally (Pillow >= 12.2);
 *  - NEAREST: an affine scale that samples at the centre of each output pixel, with the
 *    source coordinate accumulated step by step as Pillow does.
 */
#include "resample.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

#define PI_D 3.14159265358979323846

/* Fixed point for 8-bit images: 8 bits of result, 2 bits of headroom for negative lobes
 * and overshoot, the rest fraction. */
#define PRECISION_BITS (32 - 8 - 2)

typedef struct {
    double (*fn)(double x);
    double support; /* half-width of the kernel at scale 1 */
} filter_def;

static double box_fn(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_fn(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_fn(double x) {
    x = fabs(x);
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * PI_D;
    /* Pillow writes the window's constants as floats; keep their float values. */
    return sin(x) / x * ((double)0.54f + (double)0.46f * cos(x));
}

static double bicubic_fn(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc_fn(double x) {
    if (x == 0.0)
        return 1.0;
    x = x * PI_D;
    return sin(x) / x;
}

static double lanczos_fn(double x) {
    /* sinc windowed by a 3x wider sinc, cut at |x| = 3 (asymmetric bounds as Pillow) */
    if (-3.0 <= x && x < 3.0)
        return sinc_fn(x) * sinc_fn(x / 3);
    return 0.0;
}

static const filter_def *filter_for(oc_resample f) {
    static const filter_def box = {box_fn, 0.5}, bilinear = {bilinear_fn, 1.0},
                            hamming = {hamming_fn, 1.0}, bicubic = {bicubic_fn, 2.0},
                            lanczos = {lanczos_fn, 3.0};
    switch (f) {
    case OC_RESAMPLE_BOX: return &box;
    case OC_RESAMPLE_BILINEAR: return &bilinear;
    case OC_RESAMPLE_HAMMING: return &hamming;
    case OC_RESAMPLE_BICUBIC: return &bicubic;
    case OC_RESAMPLE_LANCZOS: return &lanczos;
    case OC_RESAMPLE_NEAREST: break;
    }
    return NULL;
}

/* Weights of a 1-D resampling from in_size to out_size pixels, for the n output pixels
 * o0 .. o0 + n - 1 (a window; the weights of a pixel do not depend on the others).
 * For window pixel i: first[i] (first input pixel), count[i] (number of inputs) and
 * k[i * ksize .. + count[i]] the fixed-point weights. */
typedef struct {
    int ksize;
    int *first;  /* (n) */
    int *count;  /* (n) */
    int32_t *k;  /* (n, ksize) */
} coeffs;

static void coeffs_free(coeffs *c) {
    oc_free(c->first);
    oc_free(c->count);
    oc_free(c->k);
    memset(c, 0, sizeof *c);
}

/* The weight rounded to fixed point, half away from zero. */
static int32_t to_fixed(double w) {
    double s = w * (double)(1 << PRECISION_BITS);
    return (int32_t)(w < 0 ? s - 0.5 : s + 0.5);
}

static oc_status coeffs_make(coeffs *c, int in_size, int out_size, int o0, int n,
                             const filter_def *f) {
    memset(c, 0, sizeof *c);
    /* Pillow passes the source box as floats: (0, in_size). */
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale;
    double ksize_d = ceil(support) * 2 + 1;
    if (ksize_d > (double)(1 << 24))
        return oc_err(OC_ERR_LIMIT, "resize from %d to %d pixels needs too wide a kernel",
                      in_size, out_size);
    c->ksize = (int)ksize_d;

    size_t nk;
    if (!oc_mul_ok((size_t)n, (size_t)c->ksize, &nk))
        return oc_err(OC_ERR_LIMIT, "resize to %d pixels: kernel table too large", out_size);
    c->first = oc_calloc((size_t)n, sizeof(int));
    c->count = oc_calloc((size_t)n, sizeof(int));
    c->k = oc_calloc(nk, sizeof(int32_t));
    double *w = oc_calloc((size_t)c->ksize, sizeof(double)); /* (ksize) */
    if (!c->first || !c->count || !c->k || !w) {
        oc_free(w);
        coeffs_free(c);
        return oc_err(OC_ERR_NOMEM, "resize: out of memory for %zu weights", nk);
    }

    double inv_filterscale = 1.0 / filterscale;
    for (int i = 0; i < n; i++) {
        double center = (o0 + i + 0.5) * scale;
        /* (int) truncates toward zero, as Pillow's casts do */
        int lo = (int)(center - support + 0.5);
        if (lo < 0)
            lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size)
            hi = in_size;
        int cnt = hi - lo;
        double sum = 0.0;
        for (int j = 0; j < cnt; j++) {
            w[j] = f->fn((j + lo - center + 0.5) * inv_filterscale);
            sum += w[j];
        }
        int32_t *k = c->k + (size_t)i * (size_t)c->ksize;
        for (int j = 0; j < cnt; j++)
            k[j] = to_fixed(sum != 0.0 ? w[j] / sum : w[j]);
        c->first[i] = lo;
        c->count[i] = cnt;
    }
    oc_free(w);
    return OC_OK;
}

/* Rounds a fixed-point sum (which started at one half) to 8 bits, clipping. */
static uint8_t clip8(int64_t acc) {
    if (acc < 0)
        return 0;
    int64_t v = acc >> PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* A view of 8-bit RGB pixels: rows of w pixels, stride pixels apart. */
typedef struct {
    const uint8_t *p;
    int w, h;
    size_t stride; /* in pixels */
} view;

static const uint8_t *view_px(const view *v, int x, int y) {
    return v->p + ((size_t)y * v->stride + (size_t)x) * 3;
}

/* dst (rows, n, 3) = horizontal pass with window weights c over source rows
 * row0 .. row0 + rows - 1. */
static void pass_horizontal(uint8_t *dst, int n, const view *src, int row0, int rows,
                            const coeffs *c) {
    for (int y = 0; y < rows; y++) {
        uint8_t *out = dst + (size_t)y * (size_t)n * 3;
        for (int x = 0; x < n; x++) {
            const int32_t *k = c->k + (size_t)x * (size_t)c->ksize;
            const uint8_t *p = view_px(src, c->first[x], row0 + y);
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int j = 0; j < c->count[x]; j++) {
                s0 += (int64_t)p[j * 3 + 0] * k[j];
                s1 += (int64_t)p[j * 3 + 1] * k[j];
                s2 += (int64_t)p[j * 3 + 2] * k[j];
            }
            out[x * 3 + 0] = clip8(s0);
            out[x * 3 + 1] = clip8(s1);
            out[x * 3 + 2] = clip8(s2);
        }
    }
}

/* dst (n, src->w, 3) = vertical pass with window weights c; src row 0 is input row row0. */
static void pass_vertical(uint8_t *dst, int n, const view *src, int row0, const coeffs *c) {
    size_t w3 = (size_t)src->w * 3, stride = src->stride * 3;
    for (int y = 0; y < n; y++) {
        const int32_t *k = c->k + (size_t)y * (size_t)c->ksize;
        const uint8_t *col = view_px(src, 0, c->first[y] - row0);
        uint8_t *out = dst + (size_t)y * w3;
        for (size_t x = 0; x < w3; x++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            for (int j = 0; j < c->count[y]; j++)
                s += (int64_t)col[(size_t)j * stride + x] * k[j];
            out[x] = clip8(s);
        }
    }
}

/* A window of an output image: cw x ch pixels at (x0, y0) of dw x dh. */
typedef struct {
    int dw, dh, x0, y0, cw, ch;
} window;

static void copy_window(uint8_t *dst, const view *src, const window *wn) {
    for (int y = 0; y < wn->ch; y++)
        memcpy(dst + (size_t)y * (size_t)wn->cw * 3, view_px(src, wn->x0, wn->y0 + y),
               (size_t)wn->cw * 3);
}

/* Pillow's ImagingResample on a window: a horizontal pass over the rows the vertical
 * pass reads, then the vertical pass; each only when its dimension changes. */
static oc_status resample_conv(uint8_t *dst, const window *wn, const view *src,
                               const filter_def *f) {
    int need_h = wn->dw != src->w, need_v = wn->dh != src->h;
    if (!need_h && !need_v) {
        copy_window(dst, src, wn);
        return OC_OK;
    }
    coeffs cv = {0}, chz = {0};
    if (need_v)
        OC_TRY(coeffs_make(&cv, src->h, wn->dh, wn->y0, wn->ch, f));
    if (!need_h) { /* the window's columns of the source, resampled vertically */
        view cols = {view_px(src, wn->x0, 0), wn->cw, src->h, src->stride};
        pass_vertical(dst, wn->ch, &cols, 0, &cv);
        coeffs_free(&cv);
        return OC_OK;
    }
    oc_status s = coeffs_make(&chz, src->w, wn->dw, wn->x0, wn->cw, f);
    if (s != OC_OK) {
        coeffs_free(&cv);
        return s;
    }
    if (!need_v) {
        pass_horizontal(dst, wn->cw, src, wn->y0, wn->ch, &chz);
        coeffs_free(&chz);
        return OC_OK;
    }
    int row0 = cv.first[0];
    int rows = cv.first[wn->ch - 1] + cv.count[wn->ch - 1] - row0;
    uint8_t *tmp = oc_calloc((size_t)rows * (size_t)wn->cw, 3); /* (rows, cw, 3) */
    if (!tmp) {
        s = oc_err(OC_ERR_NOMEM, "resize: out of memory for a %d x %d buffer", wn->cw, rows);
    } else {
        pass_horizontal(tmp, wn->cw, src, row0, rows, &chz);
        view t = {tmp, wn->cw, rows, (size_t)wn->cw};
        pass_vertical(dst, wn->ch, &t, row0, &cv);
    }
    oc_free(tmp);
    coeffs_free(&cv);
    coeffs_free(&chz);
    return s;
}

/* Source positions of Pillow's NEAREST (ImagingScaleAffine) for outputs o0 .. o0 + n - 1:
 * sampled at pixel centres, the position advanced by a running sum of the step (not
 * multiplied out), -1 where it falls outside. */
static void nearest_positions(int *pos, int in_size, int out_size, int o0, int n) {
    double step = (double)(float)in_size / out_size;
    double v = step * 0.5;
    for (int i = 0; i < o0; i++)
        v += step;
    for (int i = 0; i < n; i++) {
        int p = v < 0.0 ? -1 : (int)v;
        pos[i] = p < in_size ? p : -1;
        v += step;
    }
}

static oc_status resample_nearest(uint8_t *dst, const window *wn, const view *src) {
    int *xs = oc_calloc((size_t)wn->cw, sizeof(int)); /* (cw) */
    int *ys = oc_calloc((size_t)wn->ch, sizeof(int)); /* (ch) */
    if (!xs || !ys) {
        oc_free(xs);
        oc_free(ys);
        return oc_err(OC_ERR_NOMEM, "resize: out of memory");
    }
    nearest_positions(xs, src->w, wn->dw, wn->x0, wn->cw);
    nearest_positions(ys, src->h, wn->dh, wn->y0, wn->ch);
    for (int y = 0; y < wn->ch; y++) {
        uint8_t *out = dst + (size_t)y * (size_t)wn->cw * 3;
        memset(out, 0, (size_t)wn->cw * 3); /* Pillow leaves pixels mapped outside at 0 */
        if (ys[y] < 0)
            continue;
        for (int x = 0; x < wn->cw; x++)
            if (xs[x] >= 0)
                memcpy(out + (size_t)x * 3, view_px(src, xs[x], ys[y]), 3);
    }
    oc_free(xs);
    oc_free(ys);
    return OC_OK;
}

static oc_status resize_window(uint8_t *dst, const window *wn, const view *src,
                               oc_resample filter) {
    if (filter == OC_RESAMPLE_NEAREST) {
        if (wn->dw == src->w && wn->dh == src->h) {
            copy_window(dst, src, wn);
            return OC_OK;
        }
        return resample_nearest(dst, wn, src);
    }
    return resample_conv(dst, wn, src, filter_for(filter));
}

/* Pillow >= 12.2 resizes images taller than 100 x their width vertically first when they
 * shrink vertically; each step then leaves the other dimension alone. */
static oc_status resize_tall(uint8_t *dst, const window *wn, const view *src,
                             oc_resample filter) {
    size_t n;
    if (!oc_mul_ok((size_t)src->w * 3, (size_t)wn->ch, &n))
        return oc_err(OC_ERR_LIMIT, "resize: image too large");
    uint8_t *tmp = oc_malloc(n); /* (ch, sw, 3): the window's rows, full width */
    if (!tmp)
        return oc_err(OC_ERR_NOMEM, "resize: out of memory");
    window w1 = {src->w, wn->dh, 0, wn->y0, src->w, wn->ch};
    oc_status s = resize_window(tmp, &w1, src, filter);
    if (s == OC_OK) {
        view t = {tmp, src->w, wn->ch, (size_t)src->w};
        window w2 = {wn->dw, wn->ch, wn->x0, 0, wn->cw, wn->ch};
        s = resize_window(dst, &w2, &t, filter);
    }
    oc_free(tmp);
    return s;
}

oc_status oc_resize_rgb8_window(uint8_t *dst, uint32_t dw, uint32_t dh, uint32_t x0,
                                uint32_t y0, uint32_t cw, uint32_t ch, const uint8_t *src,
                                uint32_t sw, uint32_t sh, oc_resample filter) {
    if (!dst || !src)
        return oc_err(OC_ERR_INVALID_ARG, "resize: NULL image");
    if (filter != OC_RESAMPLE_NEAREST && !filter_for(filter))
        return oc_err(OC_ERR_INVALID_ARG, "resize: unknown filter %d", (int)filter);
    if (dw == 0 || dh == 0 || sw == 0 || sh == 0)
        return oc_err(OC_ERR_INVALID_ARG, "resize: %u x %u to %u x %u: sizes must be > 0",
                      sw, sh, dw, dh);
    /* Pillow keeps sizes in C ints */
    if (dw > INT32_MAX / 4 || dh > INT32_MAX / 4 || sw > INT32_MAX / 4 || sh > INT32_MAX / 4)
        return oc_err(OC_ERR_LIMIT, "resize: %u x %u to %u x %u is too large", sw, sh, dw,
                      dh);
    if (cw == 0 || ch == 0 || x0 > dw || cw > dw - x0 || y0 > dh || ch > dh - y0)
        return oc_err(OC_ERR_INVALID_ARG, "resize: window %u x %u at (%u, %u) is not inside "
                      "%u x %u", cw, ch, x0, y0, dw, dh);
    window wn = {(int)dw, (int)dh, (int)x0, (int)y0, (int)cw, (int)ch};
    view v = {src, (int)sw, (int)sh, sw};
    if ((uint64_t)sh > (uint64_t)sw * 100 && dh < sh && dw != sw)
        return resize_tall(dst, &wn, &v, filter);
    return resize_window(dst, &wn, &v, filter);
}

oc_status oc_resize_rgb8(uint8_t *dst, uint32_t dw, uint32_t dh, const uint8_t *src,
                         uint32_t sw, uint32_t sh, oc_resample filter) {
    return oc_resize_rgb8_window(dst, dw, dh, 0, 0, dw, dh, src, sw, sh, filter);
}
