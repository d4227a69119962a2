/* The image processors of Qwen2.5-VL (Qwen2VLImageProcessorPil) and Gemma 3
 * (Gemma3ImageProcessorPil), with the arithmetic of their Python code: sizes in float64
 * with Python's rounding, PIL's resampling on 8-bit RGB, rescale in float64 and
 * normalisation in float32 (preprocess.c's shared steps). */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "json.h"
#include "preprocess.h"
#include "preprocess_internal.h"

/* OpenAI CLIP's mean and std (Qwen) and 0.5 / 0.5 (Gemma). */
static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};
static const float HALF[3] = {0.5f, 0.5f, 0.5f};

#define MAX_PIXELS_CONFIG ((int64_t)1 << 30)

/* ---- Qwen2-VL ------------------------------------------------------------------- */

oc_status oc_qwen_proc_from_json(const cJSON *j, const char *file, oc_qwen_proc *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "%s: NULL output", file ? file : "processor");
    if (!file)
        file = "preprocessor_config.json";
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    oc_qwen_proc p;
    memset(&p, 0, sizeof p);
    OC_TRY(oc_json_bool(j, "do_resize", 1, file, &p.do_resize));
    /* the PIL processor's defaults: 56*56 .. 28*28*1280 pixels */
    int64_t lo = 56 * 56, hi = 28 * 28 * 1280, v;
    const cJSON *size = oc_json_get(j, "size");
    if (size && !cJSON_IsNull(size) && !cJSON_IsObject(size))
        return oc_err(OC_ERR_FORMAT, "%s: \"size\" must be an object", file);
    OC_TRY(oc_json_int(size, "shortest_edge", 0, lo, 1, MAX_PIXELS_CONFIG, file, &lo));
    OC_TRY(oc_json_int(size, "longest_edge", 0, hi, 1, MAX_PIXELS_CONFIG, file, &hi));
    OC_TRY(oc_json_int(j, "min_pixels", 0, lo, 1, MAX_PIXELS_CONFIG, file, &lo));
    OC_TRY(oc_json_int(j, "max_pixels", 0, hi, 1, MAX_PIXELS_CONFIG, file, &hi));
    if (lo > hi)
        return oc_err(OC_ERR_FORMAT, "%s: min_pixels %lld is over max_pixels %lld", file,
                      (long long)lo, (long long)hi);
    p.min_pixels = (uint32_t)lo;
    p.max_pixels = (uint32_t)hi;
    OC_TRY(oc_json_int(j, "patch_size", 0, 14, 1, 1024, file, &v));
    p.patch = (uint32_t)v;
    OC_TRY(oc_json_int(j, "merge_size", 0, 2, 1, 64, file, &v));
    p.merge = (uint32_t)v;
    OC_TRY(oc_json_int(j, "temporal_patch_size", 0, 2, 1, 16, file, &v));
    p.temporal = (uint32_t)v;
    OC_TRY(oc_pp_common_fields(j, file, OC_RESAMPLE_BICUBIC, CLIP_MEAN, CLIP_STD,
                               &p.do_rescale, &p.rescale_factor, &p.do_normalize, p.mean,
                               p.std, &p.resample));
    *out = p;
    return OC_OK;
}

oc_status oc_qwen_smart_resize(uint32_t height, uint32_t width, uint32_t factor,
                               uint32_t min_pixels, uint32_t max_pixels, uint32_t *out_h,
                               uint32_t *out_w) {
    if (height == 0 || width == 0 || factor == 0)
        return oc_err(OC_ERR_INVALID_ARG, "smart resize: empty image or factor 0");
    double h = height, w = width, f = factor, big = h > w ? h : w, small = h > w ? w : h;
    if (big / small > 200)
        return oc_err(OC_ERR_UNSUPPORTED, "preprocess: a %u x %u image has an aspect ratio of "
                      "%.1f; Qwen2-VL's processor takes at most 200", width, height,
                      big / small);
    /* Python's round(): halves to even, as rint does in the default rounding mode */
    double hb = rint(h / f) * f, wb = rint(w / f) * f;
    if (hb * wb > (double)max_pixels) {
        double beta = sqrt(h * w / (double)max_pixels);
        hb = fmax(f, floor(h / beta / f) * f);
        wb = fmax(f, floor(w / beta / f) * f);
    } else if (hb * wb < (double)min_pixels) {
        double beta = sqrt((double)min_pixels / (h * w));
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
    }
    if (!(hb >= f && wb >= f && hb <= 1e6 && wb <= 1e6))
        return oc_err(OC_ERR_UNSUPPORTED, "preprocess: a %u x %u image would be resized to "
                      "%.0f x %.0f pixels", width, height, wb, hb);
    *out_h = (uint32_t)hb;
    *out_w = (uint32_t)wb;
    return OC_OK;
}

/* out (gh*gw, C*T*p*p) from the normalised image: patch (gy, gx) of the grid in the order
 * (gy/m, gx/m, gy%m, gx%m), each (channel, frame, row, column), the frames copies. */
static void patchify(float *out, const oc_image *img, const oc_qwen_proc *p, uint32_t gh,
                     uint32_t gw, const pixel_norm *n) {
    uint32_t P = p->patch, m = p->merge, T = p->temporal;
    size_t dim = (size_t)3 * T * P * P, k = 0;
    for (uint32_t by = 0; by < gh / m; by++)
        for (uint32_t bx = 0; bx < gw / m; bx++)
            for (uint32_t my = 0; my < m; my++)
                for (uint32_t mx = 0; mx < m; mx++, k++) {
                    size_t y0 = (size_t)(by * m + my) * P, x0 = (size_t)(bx * m + mx) * P;
                    float *row = out + k * dim;
                    for (int c = 0; c < 3; c++)
                        for (uint32_t t = 0; t < T; t++)
                            for (uint32_t y = 0; y < P; y++)
                                for (uint32_t x = 0; x < P; x++) {
                                    const uint8_t *px =
                                        img->rgb + ((y0 + y) * img->w + x0 + x) * 3;
                                    *row++ = oc_pp_norm_value(n, px[c], c);
                                }
                }
}

oc_status oc_qwen_preprocess(const oc_qwen_proc *p, const oc_image *img, uint64_t max_patches,
                             float **pixels, uint32_t *grid_h, uint32_t *grid_w) {
    if (!p || !pixels || !grid_h || !grid_w)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: NULL argument");
    OC_TRY(oc_pp_check_image(img));
    uint32_t factor = p->patch * p->merge, h = img->h, w = img->w;
    if (p->do_resize)
        OC_TRY(oc_qwen_smart_resize(img->h, img->w, factor, p->min_pixels, p->max_pixels, &h,
                                    &w));
    else if (h % factor || w % factor)
        return oc_err(OC_ERR_UNSUPPORTED, "preprocess: without resizing, a %u x %u image must "
                      "have sides that are multiples of %u (patch x merge)", w, h, factor);
    uint32_t gh = h / p->patch, gw = w / p->patch;
    if ((uint64_t)gh * gw > max_patches)
        return oc_err(OC_ERR_LIMIT, "preprocess: a %u x %u image makes %u x %u patches, over "
                      "the limit of %llu", img->w, img->h, gw, gh,
                      (unsigned long long)max_patches);
    size_t n = (size_t)gh * gw * 3 * p->temporal * p->patch * p->patch;
    float *out = oc_malloc(n * sizeof(float));
    if (!out)
        return oc_err(OC_ERR_NOMEM, "preprocess: out of memory for %u x %u patches", gw, gh);
    oc_image *r = NULL;
    oc_status s = OC_OK;
    if (p->do_resize)
        s = oc_pp_resized(img, w, h, p->resample, &r);
    if (s == OC_OK) {
        pixel_norm nm = {p->do_rescale, p->rescale_factor, p->do_normalize, p->mean, p->std};
        patchify(out, r ? r : img, p, gh, gw, &nm);
    }
    oc_image_free(r);
    if (s != OC_OK) {
        oc_free(out);
        return s;
    }
    *pixels = out;
    *grid_h = gh;
    *grid_w = gw;
    return OC_OK;
}

/* ---- Gemma 3 ---------------------------------------------------------------------- */

oc_status oc_gemma_proc_from_json(const cJSON *j, const char *file, oc_gemma_proc *out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "%s: NULL output", file ? file : "processor");
    if (!file)
        file = "preprocessor_config.json";
    if (!cJSON_IsObject(j))
        return oc_err(OC_ERR_FORMAT, "%s: not a JSON object", file);
    oc_gemma_proc p;
    memset(&p, 0, sizeof p);
    OC_TRY(oc_json_bool(j, "do_resize", 1, file, &p.do_resize));
    OC_TRY(oc_pp_size_field(j, "size", "height", 224, file, &p.height));
    if (cJSON_IsObject(oc_json_get(j, "size")))
        OC_TRY(oc_pp_size_field(j, "size", "width", 224, file, &p.width));
    else
        p.width = p.height;
    OC_TRY(oc_pp_common_fields(j, file, OC_RESAMPLE_BILINEAR, HALF, HALF, &p.do_rescale,
                               &p.rescale_factor, &p.do_normalize, p.mean, p.std,
                               &p.resample));
    /* null means the processor's defaults (Gemma3ProcessorKwargs) */
    int64_t v;
    OC_TRY(oc_json_bool(j, "do_pan_and_scan", 0, file, &p.do_pan_and_scan));
    OC_TRY(oc_json_int(j, "pan_and_scan_min_crop_size", 0, 256, 1, 1 << 16, file, &v));
    p.pas_min_crop = (uint32_t)v;
    OC_TRY(oc_json_int(j, "pan_and_scan_max_num_crops", 0, 4, 1, 64, file, &v));
    p.pas_max_crops = (uint32_t)v;
    OC_TRY(oc_json_num(j, "pan_and_scan_min_ratio_to_activate", 0, 1.2, file,
                       &p.pas_min_ratio));
    if (!(p.pas_min_ratio > 0) || !isfinite(p.pas_min_ratio))
        return oc_err(OC_ERR_FORMAT, "%s: pan_and_scan_min_ratio_to_activate must be a "
                      "positive number", file);
    *out = p;
    return OC_OK;
}

/* Gemma3ImageProcessor.pan_and_scan: nw x nh crops of cw x ch pixels (0 crops when the
 * image is not elongated enough or the crops would be small). */
static void pan_and_scan_plan(const oc_gemma_proc *p, uint32_t h, uint32_t w, uint32_t *nw,
                              uint32_t *nh, uint32_t *cw, uint32_t *ch) {
    double W = w, H = h;
    int64_t n;
    *nw = *nh = 0;
    if (w >= h) {
        if (W / H < p->pas_min_ratio)
            return;
        n = (int64_t)floor(W / H + 0.5);
        n = fmin(floor(W / p->pas_min_crop), (double)n);
        n = n < 2 ? 2 : n;
        n = n > p->pas_max_crops ? p->pas_max_crops : n;
        *nw = (uint32_t)n;
        *nh = 1;
    } else {
        if (H / W < p->pas_min_ratio)
            return;
        n = (int64_t)floor(H / W + 0.5);
        n = fmin(floor(H / p->pas_min_crop), (double)n);
        n = n < 2 ? 2 : n;
        n = n > p->pas_max_crops ? p->pas_max_crops : n;
        *nw = 1;
        *nh = (uint32_t)n;
    }
    *cw = (uint32_t)ceil(W / *nw);
    *ch = (uint32_t)ceil(H / *nh);
    if ((*cw < *ch ? *cw : *ch) < p->pas_min_crop)
        *nw = *nh = 0;
}

/* One tile (3, height, width) from img's window (x0, y0, cw, ch), clipped to the image as
 * numpy slicing does, then resized. */
static oc_status gemma_tile(const oc_gemma_proc *p, const oc_image *img, uint32_t x0,
                            uint32_t y0, uint32_t cw, uint32_t ch, float *out) {
    oc_image *crop = NULL, *r = NULL;
    const oc_image *src = img;
    if (x0 || y0 || cw != img->w || ch != img->h) {
        cw = x0 + cw > img->w ? img->w - x0 : cw;
        ch = y0 + ch > img->h ? img->h - y0 : ch;
        OC_TRY(oc_image_alloc(cw, ch, &crop));
        for (uint32_t y = 0; y < ch; y++)
            memcpy(crop->rgb + (size_t)y * cw * 3,
                   img->rgb + ((size_t)(y0 + y) * img->w + x0) * 3, (size_t)cw * 3);
        src = crop;
    }
    oc_status s = OC_OK;
    if (p->do_resize)
        s = oc_pp_resized(src, p->width, p->height, p->resample, &r);
    else if (src->w != p->width || src->h != p->height)
        s = oc_err(OC_ERR_UNSUPPORTED, "preprocess: without resizing, a %u x %u image is not "
                   "the model's %u x %u", src->w, src->h, p->width, p->height);
    if (s == OC_OK) {
        pixel_norm nm = {p->do_rescale, p->rescale_factor, p->do_normalize, p->mean, p->std};
        oc_pp_write_planar(out, r ? r : src, 0, 0, p->width, p->height, &nm);
    }
    oc_image_free(r);
    oc_image_free(crop);
    return s;
}

oc_status oc_gemma_preprocess(const oc_gemma_proc *p, const oc_image *img, uint32_t max_tiles,
                              float **pixels, uint32_t *n_tiles, uint32_t *rows,
                              uint32_t *cols) {
    if (!p || !pixels || !n_tiles || !rows || !cols)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: NULL argument");
    OC_TRY(oc_pp_check_image(img));
    if (p->width == 0 || p->height == 0)
        return oc_err(OC_ERR_INVALID_ARG, "preprocess: the size must be > 0");
    uint32_t nw = 0, nh = 0, cw = 0, ch = 0;
    if (p->do_pan_and_scan)
        pan_and_scan_plan(p, img->h, img->w, &nw, &nh, &cw, &ch);
    uint32_t n = 1 + nw * nh;
    if (n > max_tiles)
        return oc_err(OC_ERR_LIMIT, "preprocess: a %u x %u image makes %u tiles with pan and "
                      "scan, over the limit of %u", img->w, img->h, n, max_tiles);
    size_t per = (size_t)3 * p->height * p->width;
    float *out = oc_malloc(n * per * sizeof(float));
    if (!out)
        return oc_err(OC_ERR_NOMEM, "preprocess: out of memory for %u tiles", n);
    oc_status s = gemma_tile(p, img, 0, 0, img->w, img->h, out);
    for (uint32_t k = 0; s == OC_OK && k + 1 < n; k++)
        s = gemma_tile(p, img, k % nw * cw, k / nw * ch, cw, ch, out + (k + 1) * per);
    if (s != OC_OK) {
        oc_free(out);
        return s;
    }
    *pixels = out;
    *n_tiles = n;
    *rows = nh;
    *cols = nw;
    return OC_OK;
}
