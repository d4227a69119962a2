/* Drawing a scene. Geometry is in integers, in eighths of a pixel ("sub" units), and
 * edges are anti-aliased by counting which of 4x4 sample points of a pixel fall inside
 * the shape, so the same scene gives the same bytes on every platform. */
#include <string.h>

#include "error.h"
#include "shapes.h"

#define SUB 8        /* sub units per pixel */
#define SAMPLES 4    /* per axis: samples at sub offsets 1, 3, 5, 7 */

/* An object placed on the canvas: centre and radius in sub units. */
typedef struct {
    int64_t cx, cy, r;
    int shape;
} placed;

/* The 5-pointed star's outline: outer points on the unit circle, inner ones at 0.45,
 * starting at the top, clockwise, scaled by 10000 (so no libm in the geometry). */
static const int32_t star_unit[10][2] = {
    {0, -10000},  {2645, -3641}, {9511, -3090},  {4280, 1391},   {5878, 8090},
    {0, 4500},    {-5878, 8090}, {-4280, 1391},  {-9511, -3090}, {-2645, -3641},
};

static placed place(const oc_shape_obj *o, uint32_t size) {
    int64_t w = (int64_t)size * SUB;
    int64_t x0 = o->col * w / OC_SHAPES_GRID, x1 = (o->col + 1) * w / OC_SHAPES_GRID;
    int64_t y0 = o->row * w / OC_SHAPES_GRID, y1 = (o->row + 1) * w / OC_SHAPES_GRID;
    int64_t half = (x1 - x0) / 2;
    placed p;
    p.r = half * (o->size == OC_SIZE_LARGE ? 80 : 50) / 100;
    p.shape = o->shape;
    /* the jitter moves the shape inside its cell, keeping a pixel's margin */
    int64_t room = half - p.r - SUB;
    if (room < 0)
        room = 0;
    p.cx = (x0 + x1) / 2 + room * o->jx / 100;
    p.cy = (y0 + y1) / 2 + room * o->jy / 100;
    return p;
}

/* Crossing-number test of (x, y) against a polygon, in exact integer arithmetic. */
static int in_polygon(const int64_t (*v)[2], int n, int64_t x, int64_t y) {
    int in = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        int64_t xi = v[i][0], yi = v[i][1], xj = v[j][0], yj = v[j][1];
        if ((yi > y) == (yj > y))
            continue;
        /* x < xi + (xj - xi) * (y - yi) / (yj - yi), multiplied through by (yj - yi) */
        int64_t d = yj - yi, lhs = (x - xi) * d, rhs = (xj - xi) * (y - yi);
        if (d > 0 ? lhs < rhs : lhs > rhs)
            in = !in;
    }
    return in;
}

static int64_t abs64(int64_t a) { return a < 0 ? -a : a; }

/* Whether the point (dx, dy), relative to the centre, is inside the shape. */
static int inside(const placed *p, int64_t dx, int64_t dy) {
    int64_t r = p->r;
    switch (p->shape) {
    case OC_SHAPE_CIRCLE:
        return dx * dx + dy * dy <= r * r;
    case OC_SHAPE_SQUARE: {
        int64_t a = r * 85 / 100; /* about the circle's area */
        return abs64(dx) <= a && abs64(dy) <= a;
    }
    case OC_SHAPE_TRIANGLE: {
        const int64_t v[3][2] = {{0, -r}, {r, r * 3 / 4}, {-r, r * 3 / 4}};
        return in_polygon(v, 3, dx, dy);
    }
    case OC_SHAPE_STAR: {
        int64_t v[10][2];
        for (int i = 0; i < 10; i++) {
            v[i][0] = r * star_unit[i][0] / 10000;
            v[i][1] = r * star_unit[i][1] / 10000;
        }
        return in_polygon((const int64_t(*)[2])v, 10, dx, dy);
    }
    case OC_SHAPE_CROSS: {
        int64_t w = r * 34 / 100, ax = abs64(dx), ay = abs64(dy);
        return (ax <= w && ay <= r) || (ay <= w && ax <= r);
    }
    }
    return 0;
}

static uint8_t clamp_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

static void fill_background(const oc_scene *s, uint32_t size, uint8_t *rgb) {
    uint8_t bg[3];
    oc_background_rgb(s->background, bg);
    oc_stream r = oc_stream_seed(s->noise_seed);
    size_t n = (size_t)size * size;
    for (size_t i = 0; i < n; i++) {
        /* grey noise: the same offset on the three channels keeps the hue */
        int d = s->noise ? (int)oc_stream_range(&r, -(int64_t)s->noise, s->noise) : 0;
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + c] = clamp_u8(bg[c] + d);
    }
}

static void draw_object(const oc_shape_obj *o, uint32_t size, uint8_t *rgb) {
    placed p = place(o, size);
    uint8_t col[3];
    oc_colour_rgb(o->colour, col);
    int64_t lo_x = (p.cx - p.r) / SUB, hi_x = (p.cx + p.r) / SUB;
    int64_t lo_y = (p.cy - p.r) / SUB, hi_y = (p.cy + p.r) / SUB;
    if (lo_x < 0)
        lo_x = 0;
    if (lo_y < 0)
        lo_y = 0;
    if (hi_x >= size)
        hi_x = size - 1;
    if (hi_y >= size)
        hi_y = size - 1;
    for (int64_t py = lo_y; py <= hi_y; py++) {
        for (int64_t px = lo_x; px <= hi_x; px++) {
            int cov = 0;
            for (int j = 0; j < SAMPLES; j++)
                for (int i = 0; i < SAMPLES; i++)
                    cov += inside(&p, px * SUB + 1 + 2 * i - p.cx, py * SUB + 1 + 2 * j - p.cy);
            if (!cov)
                continue;
            uint8_t *q = rgb + ((size_t)py * size + (size_t)px) * 3;
            const int total = SAMPLES * SAMPLES;
            for (int c = 0; c < 3; c++)
                q[c] = (uint8_t)((q[c] * (total - cov) + col[c] * cov + total / 2) / total);
        }
    }
}

oc_status oc_scene_render(const oc_scene *s, uint32_t size, uint8_t *rgb) {
    if (!s || !rgb)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: NULL scene or image");
    if (size < OC_SHAPES_MIN_SIZE || size > OC_SHAPES_MAX_SIZE)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: image size %u is outside [%d, %d]", size,
                      OC_SHAPES_MIN_SIZE, OC_SHAPES_MAX_SIZE);
    oc_scene c = *s;
    OC_TRY(oc_scene_canonicalize(&c));
    fill_background(&c, size, rgb);
    for (uint32_t i = 0; i < c.n; i++)
        draw_object(&c.obj[i], size, rgb);
    return OC_OK;
}

void oc_scene_object_pixel(const oc_scene *s, uint32_t i, uint32_t size, uint32_t *x,
                           uint32_t *y) {
    placed p = place(&s->obj[i], size);
    *x = (uint32_t)(p.cx / SUB);
    *y = (uint32_t)(p.cy / SUB);
}
