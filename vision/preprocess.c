/* Image processors as transformers' PIL-backend processors (SmolVLMImageProcessorPil /
 * Idefics3, CLIPImageProcessorPil).
 *
 * Every resize runs on 8-bit RGB with PIL's resampling (resample.c). Sizes are computed
 * with the same float64 and truncating-integer steps as the Python code, so that the
 * shapes, and therefore the pixels, agree exactly. Rescale is done in float64 and cast
 * to float32, normalisation in float32, as numpy does there.
 */
#include "preprocess.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "json.h"
#include "preprocess_internal.h"

/* transformers' MAX_IMAGE_SIZE for Idefics3/SmolVLM: longest side after the first resize. */
#define IDEFICS3_MAX_SIDE 4096
/* Bounds accepted from configuration files (far above any published model). */
#define MAX_CONFIG_SIDE 16384

/* ---- configuration ------------------------------------------------------------ */

/* A side from j[key]: an object holding sub_key, or a bare integer (older configs). */
oc_status oc_pp_size_field(const cJSON *j, const char *key, const char *sub_key,
                           uint32_t def, const char *file, uint32_t *out) {
    const cJSON *v = oc_json_get(j, key);
    int64_t x;
    if (cJSON_IsNumber(v))
        OC_TRY(oc_json_int(j, key, 1, def, 1, MAX_CONFIG_SIDE, file, &x));
    else if (!v || cJSON_IsNull(v))
        x = def;
    else if (cJSON_IsObject(v)) {
        if (!oc_json_get(v, sub_key))
            return oc_err(OC_ERR_UNSUPPORTED, "%s: \"%s\" has no \"%s\" (only that form is "
                          "supported)", file, key, sub_key);
        OC_TRY(oc_json_int(v, sub_key, 1, def, 1, MAX_CONFIG_SIDE, file, &x));
    } else
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be an object", file, key);
    *out = (uint32_t)x;
    return OC_OK;
}

/* mean or std: an array of 3 numbers or one number for all channels. */
static oc_status channel_values(const cJSON *j, const char *key, const float def[3],
                                const char *file, float out[3]) {
    const cJSON *v = oc_json_get(j, key);
    if (!v || cJSON_IsNull(v)) {
        memcpy(out, def, 3 * sizeof(float));
        return OC_OK;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        out[0] = out[1] = out[2] = (float)v->valuedouble;
        return OC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return oc_err(OC_ERR_FORMAT, "%s: \"%s\" must be a number or 3 numbers", file, key);
    for (int c = 0; c < 3; c++) {
        const cJSON *e = cJSON_GetArrayItem(v, c);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return oc_err(OC_ERR_FORMAT, "%s: \"%s\"[%d] must be a finite number", file, key,
                          c);
        out[c] = (float)e->valuedouble;
    }
    return OC_OK;
}

/* The fields both processors share: rescale, normalise, resample. */
oc_status oc_pp_common_fields(const cJSON *j, const char *file, int def_resample,
                              const float def_mean[3], const float def_std[3],
                              int *do_rescale, double *rescale_factor, int *do_normalize,
                              float mean[3], float std[3], oc_resample *resample) {
    int64_t r;
    OC_TRY(oc_json_bool(j, "do_rescale", 1, file, do_rescale));
    OC_TRY(oc_json_num(j, "rescale_factor", 0, 1.0 / 255.0, file, rescale_factor));
    OC_TRY(oc_json_bool(j, "do_normalize", 1, file, do_normalize));
    OC_TRY(channel_values(j, "image_mean", def_mean, file, mean));
    OC_TRY(channel_values(j, "image_std", def_std, file, std));
    for (int c = 0; c < 3; c++)
        if (*do_normalize && !(std[c] != 0.0f))
            return oc_err(OC_ERR_FORMAT, "%s: \"image_std\"[%d] is zero", file, c);
    OC_TRY(oc_json_int(j, "resample", 0, def_resample, 0, 5, file, &r));
    *resample = (oc_resample)r;
    return OC_OK;
}

oc_status oc_idefics3_proc_from_json(const cJSON *j, const char *file, oc_idefics3_proc *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "%s: NULL output", file ? file : "processor");
    if (!file)
        file = "preprocessor_config.json";
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    static const float half[3] = {0.5f, 0.5f, 0.5f}; /* IMAGENET_STANDARD_MEAN / STD */
    oc_idefics3_proc p;
    memset(&p, 0, sizeof p);
    OC_TRY(oc_json_bool(j, "do_resize", 1, file, &p.do_resize));
    OC_TRY(oc_pp_size_field(j, "size", "longest_edge", 4 * 364, file, &p.longest_edge));
    OC_TRY(oc_pp_size_field(j, "max_image_size", "longest_edge", 364, file, &p.tile));
    OC_TRY(oc_json_bool(j, "do_image_splitting", 1, file, &p.do_split));
    OC_TRY(oc_pp_common_fields(j, file, OC_RESAMPLE_LANCZOS, half, half, &p.do_rescale,
                               &p.rescale_factor, &p.do_normalize, p.mean, p.std,
                               &p.resample));
    *out = p;
    return OC_OK;
}

oc_status oc_clip_proc_from_json(const cJSON *j, const char *file, oc_clip_proc *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "%s: NULL output", file ? file : "processor");
    if (!file)
        file = "preprocessor_config.json";
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    oc_clip_proc p;
    memset(&p, 0, sizeof p);
    OC_TRY(oc_json_bool(j, "do_resize", 1, file, &p.do_resize));
    OC_TRY(oc_pp_size_field(j, "size", "shortest_edge", 224, file, &p.shortest_edge));
    OC_TRY(oc_json_bool(j, "do_center_crop", 1, file, &p.do_center_crop));
    /* crop_size: {"height", "width"}, or one integer for a square */
    const cJSON *cs = oc_json_get(j, "crop_size");
    if (cJSON_IsObject(cs)) {
        OC_TRY(oc_pp_size_field(j, "crop_size", "height", 224, file, &p.crop_h));
        OC_TRY(oc_pp_size_field(j, "crop_size", "width", 224, file, &p.crop_w));
    } else {
        OC_TRY(oc_pp_size_field(j, "crop_size", "height", 224, file, &p.crop_h));
        p.crop_w = p.crop_h;
    }
    OC_TRY(oc_pp_common_fields(j, file, OC_RESAMPLE_BICUBIC, clip_mean, clip_std,
                               &p.do_rescale, &p.rescale_factor, &p.do_normalize, p.mean,
                               p.std, &p.resample));
    *out = p;
    return OC_OK;
}

/* ---- shared steps --------------------------------------------------------------- */

/* A byte as transformers makes it: x * factor in float64 cast to float32, then
 * (x - mean) / std in float32. */
float oc_pp_norm_value(const pixel_norm *n, uint8_t u, int c) {
    float v = n->do_rescale ? (float)((double)u * n->rescale_factor) : (float)u;
    if (n->do_normalize)
        v = (v - n->mean[c]) / n->std[c];
    return v;
}

/* out (3, h, w) = normalised pixels of img rows y0.., columns x0..; positions outside
 * img are zero bytes (the padding of transformers' center_crop). */
void oc_pp_write_planar(float *out, const oc_image *img, int64_t x0, int64_t y0, uint32_t w,
                        uint32_t h, const pixel_norm *n) {
    size_t plane = (size_t)w * h;
    for (uint32_t y = 0; y < h; y++) {
        int64_t sy = y0 + y;
        for (uint32_t x = 0; x < w; x++) {
            int64_t sx = x0 + x;
            int inside = sy >= 0 && sy < img->h && sx >= 0 && sx < img->w;
            const uint8_t *p = inside ? img->rgb + ((size_t)sy * img->w + (size_t)sx) * 3 : NULL;
            for (int c = 0; c < 3; c++)
                out[(size_t)c * plane + (size_t)y * w + x] =
                    oc_pp_norm_value(n, p ? p[c] : 0, c);
        }
    }
}

/* *out = img resized to w x h with PIL's filter. */
oc_status oc_pp_resized(const oc_image *img, uint32_t w, uint32_t h, oc_resample f,
                        oc_image **out) {
    oc_image *r = NULL;
    OC_TRY(oc_image_alloc(w, h, &r));
    oc_status s = oc_resize_rgb8(r->rgb, w, h, img->rgb, img->w, img->h, f);
    if (s != OC_OK) {
        oc_image_free(r);
        return s;
    }
    *out = r;
    return OC_OK;
}

oc_status oc_pp_check_image(const oc_image *img) {
    if (!img || !img->rgb || img->w == 0 || img->h == 0)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: empty or NULL image");
    return OC_OK;
}

/* ---- Idefics3 / SmolVLM --------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* transformers' get_resize_output_image_size for Idefics3: longest side to max_len,
 * the other side truncated and then made even; then both scaled below 4096. */
static void idefics3_resize_size(int64_t h, int64_t w, int64_t max_len, int64_t *oh,
                                 int64_t *ow) {
    double ar = (double)w / (double)h;
    if (w >= h) {
        w = max_len;
        h = (int64_t)((double)w / ar);
        h += h % 2;
    } else {
        h = max_len;
        w = (int64_t)((double)h * ar);
        w += w % 2;
    }
    h = max64(h, 1);
    w = max64(w, 1);

    ar = (double)w / (double)h;
    if (w >= h && w > IDEFICS3_MAX_SIDE) {
        w = IDEFICS3_MAX_SIDE;
        h = (int64_t)((double)w / ar);
    } else if (h > w && h > IDEFICS3_MAX_SIDE) {
        h = IDEFICS3_MAX_SIDE;
        w = (int64_t)((double)h * ar);
    }
    *oh = max64(h, 1);
    *ow = max64(w, 1);
}

/* ceil(x / t) * t with Python's float division. */
static int64_t ceil_to(int64_t x, int64_t t) { return (int64_t)ceil((double)x / (double)t) * t; }

/* transformers' resize_for_vision_encoder: both sides to multiples of the tile, the
 * longer one first and the other from the aspect ratio. */
static void idefics3_tiled_size(int64_t h, int64_t w, int64_t tile, int64_t *oh, int64_t *ow) {
    double ar = (double)w / (double)h;
    if (w >= h) {
        w = ceil_to(w, tile);
        h = (int64_t)((double)w / ar);
        h = ceil_to(h, tile);
    } else {
        h = ceil_to(h, tile);
        w = (int64_t)((double)h * ar);
        w = ceil_to(w, tile);
    }
    *oh = h;
    *ow = w;
}

/* The shape of the work: the size to resize to first (rw x rh, or the image's own when
 * not resizing), the split size (sw x sh), rows and cols. */
typedef struct {
    int64_t rh, rw, sh, sw;
    uint32_t rows, cols, n_tiles;
} idefics3_plan;

static oc_status idefics3_make_plan(const oc_idefics3_proc *p, const oc_image *img,
                                    uint32_t max_tiles, idefics3_plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->rh = img->h;
    pl->rw = img->w;
    if (p->do_resize)
        idefics3_resize_size(img->h, img->w, p->longest_edge, &pl->rh, &pl->rw);
    pl->n_tiles = 1;
    if (!p->do_split)
        return OC_OK;
    int64_t T = p->tile;
    idefics3_tiled_size(pl->rh, pl->rw, T, &pl->sh, &pl->sw);
    if (pl->sh <= 0 || pl->sw <= 0 || pl->sh > INT32_MAX / 4 || pl->sw > INT32_MAX / 4)
        return oc_err(OC_ERR_UNSUPPORTED, "preprocess: a %u x %u image would be resized to "
                      "%lld x %lld pixels", img->w, img->h, (long long)pl->sw,
                      (long long)pl->sh);
    if (pl->sh > T || pl->sw > T) {
        int64_t rows = (pl->sh - T) / T + 1, cols = (pl->sw - T) / T + 1;
        int64_t n = rows * cols + 1;
        if (n > (int64_t)max_tiles)
            return oc_err(OC_ERR_LIMIT, "preprocess: a %u x %u image makes %lld tiles "
                          "(%lld x %lld + 1), over the limit of %u", img->w, img->h,
                          (long long)n, (long long)rows, (long long)cols, max_tiles);
        pl->rows = (uint32_t)rows;
        pl->cols = (uint32_t)cols;
        pl->n_tiles = (uint32_t)n;
    }
    return OC_OK;
}

/* The resized (or original) image and the tile-multiple image of the plan. */
static oc_status idefics3_split_image(const oc_idefics3_proc *p, const oc_image *img,
                                      const idefics3_plan *pl, oc_image **out) {
    oc_image *a = NULL;
    if (p->do_resize)
        OC_TRY(oc_pp_resized(img, (uint32_t)pl->rw, (uint32_t)pl->rh, p->resample, &a));
    const oc_image *src = a ? a : img;
    oc_status s;
    if (p->do_split)
        s = oc_pp_resized(src, (uint32_t)pl->sw, (uint32_t)pl->sh, p->resample, out);
    else
        s = oc_pp_resized(src, p->tile, p->tile, p->resample, out);
    oc_image_free(a);
    return s;
}

oc_status oc_idefics3_preprocess(const oc_idefics3_proc *p, const oc_image *img,
                                 uint32_t max_tiles, float **pixels, uint32_t *n_tiles,
                                 uint32_t *rows, uint32_t *cols) {
    if (!p || !pixels || !n_tiles || !rows || !cols)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: NULL argument");
    OC_TRY(oc_pp_check_image(img));
    if (p->tile == 0 || p->longest_edge == 0)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: tile and longest_edge must be > 0");
    idefics3_plan pl;
    OC_TRY(idefics3_make_plan(p, img, max_tiles, &pl));
    if (pl.n_tiles > max_tiles)
        return oc_err(OC_ERR_LIMIT, "preprocess: 1 tile is over the limit of %u", max_tiles);

    uint32_t T = p->tile;
    size_t per_tile = (size_t)3 * T * T;
    float *out = oc_calloc((size_t)pl.n_tiles, per_tile * sizeof(float));
    if (!out)
        return oc_err(OC_ERR_NOMEM, "preprocess: out of memory for %u tiles", pl.n_tiles);
    oc_image *big = NULL, *global = NULL;
    oc_status s = idefics3_split_image(p, img, &pl, &big);
    if (s == OC_OK && pl.rows > 0)
        s = oc_pp_resized(big, T, T, p->resample, &global);
    if (s != OC_OK) {
        oc_image_free(big);
        oc_free(out);
        return s;
    }
    pixel_norm n = {p->do_rescale, p->rescale_factor, p->do_normalize, p->mean, p->std};
    size_t k = 0;
    for (uint32_t r = 0; r < pl.rows; r++)
        for (uint32_t c = 0; c < pl.cols; c++, k++)
            oc_pp_write_planar(out + k * per_tile, big, (int64_t)c * T, (int64_t)r * T, T, T,
                               &n);
    /* the global image; when not split, the only tile (already T x T) */
    oc_pp_write_planar(out + k * per_tile, global ? global : big, 0, 0, T, T, &n);
    oc_image_free(global);
    oc_image_free(big);
    *pixels = out;
    *n_tiles = pl.n_tiles;
    *rows = pl.rows;
    *cols = pl.cols;
    return OC_OK;
}

/* ---- CLIP ------------------------------------------------------------------------ */

/* transformers' get_resize_output_image_size(default_to_square=False): the short side
 * to `size`, the long side int(size * long / short). */
static void clip_resize_size(int64_t h, int64_t w, int64_t size, int64_t *oh, int64_t *ow) {
    int64_t s = w <= h ? w : h, l = w <= h ? h : w;
    int64_t nl = (int64_t)((double)(size * l) / (double)s);
    if (w <= h) {
        *oh = nl;
        *ow = size;
    } else {
        *oh = size;
        *ow = nl;
    }
}

/* Python's floor division by 2. */
static int64_t floor_half(int64_t d) { return d >= 0 ? d / 2 : -((-d + 1) / 2); }

/* The part of the (resized) image that the crop window (x0, y0, cw, ch) covers, as an
 * image of its own whose origin is at (*ox, *oy); only that part is ever resized. */
static oc_status clip_visible(const oc_clip_proc *p, const oc_image *img, int64_t w,
                              int64_t h, int64_t x0, int64_t y0, oc_image **out, int64_t *ox,
                              int64_t *oy) {
    int64_t ax = x0 > 0 ? x0 : 0, ay = y0 > 0 ? y0 : 0;
    int64_t bx = x0 + p->crop_w < w ? x0 + p->crop_w : w;
    int64_t by = y0 + p->crop_h < h ? y0 + p->crop_h : h;
    /* the crop always overlaps: it is centred on the image */
    oc_image *v = NULL;
    OC_TRY(oc_image_alloc((uint32_t)(bx - ax), (uint32_t)(by - ay), &v));
    oc_status s;
    if (p->do_resize)
        s = oc_resize_rgb8_window(v->rgb, (uint32_t)w, (uint32_t)h, (uint32_t)ax,
                                  (uint32_t)ay, v->w, v->h, img->rgb, img->w, img->h,
                                  p->resample);
    else
        s = oc_resize_rgb8_window(v->rgb, img->w, img->h, (uint32_t)ax, (uint32_t)ay, v->w,
                                  v->h, img->rgb, img->w, img->h, OC_RESAMPLE_NEAREST);
    if (s != OC_OK) {
        oc_image_free(v);
        return s;
    }
    *out = v;
    *ox = ax;
    *oy = ay;
    return OC_OK;
}

oc_status oc_clip_preprocess(const oc_clip_proc *p, const oc_image *img, float **pixels) {
    if (!p || !pixels)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: NULL argument");
    OC_TRY(oc_pp_check_image(img));
    if (p->crop_h == 0 || p->crop_w == 0 || (p->do_resize && p->shortest_edge == 0))
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: crop and resize sizes must be > 0");
    int64_t h = img->h, w = img->w;
    if (p->do_resize) {
        clip_resize_size(img->h, img->w, p->shortest_edge, &h, &w);
        if (h <= 0 || w <= 0 || h > INT32_MAX / 4 || w > INT32_MAX / 4)
            return oc_err(OC_ERR_UNSUPPORTED, "preprocess: a %u x %u image would be resized "
                          "to %lld x %lld pixels", img->w, img->h, (long long)w, (long long)h);
    }
    if (!p->do_center_crop && (h != p->crop_h || w != p->crop_w))
        return oc_err(OC_ERR_UNSUPPORTED, "preprocess: without center crop the image is "
                      "%lld x %lld, not the model's %u x %u", (long long)w, (long long)h,
                      p->crop_w, p->crop_h);
    /* transformers' center_crop: offsets floor((size - crop) / 2), zero padding where
     * the crop reaches outside */
    int64_t x0 = floor_half(w - p->crop_w), y0 = floor_half(h - p->crop_h), ox, oy;
    oc_image *vis = NULL;
    OC_TRY(clip_visible(p, img, w, h, x0, y0, &vis, &ox, &oy));
    float *out = oc_calloc((size_t)3 * p->crop_h, (size_t)p->crop_w * sizeof(float));
    if (!out) {
        oc_image_free(vis);
        return oc_err(OC_ERR_NOMEM, "preprocess: out of memory");
    }
    pixel_norm n = {p->do_rescale, p->rescale_factor, p->do_normalize, p->mean, p->std};
    oc_pp_write_planar(out, vis, x0 - ox, y0 - oy, p->crop_w, p->crop_h, &n);
    oc_image_free(vis);
    *pixels = out;
    return OC_OK;
}
