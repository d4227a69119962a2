/* Decoded images: JPEG through libjpeg and WebP through libwebp as Pillow sets them up
 * (image_jpeg.c, image_webp.c), PNG, BMP, GIF (first frame) and TGA through stb_image,
 * binary PNM (P5/P6) by a few lines here; all converted to 8-bit RGB the way
 * transformers' load_image does: PIL's Image.open(...), ImageOps.exif_transpose (the EXIF
 * orientation of JPEG, WebP and PNG eXIf, image_exif.c), convert("RGB"):
 *  - grey is replicated; alpha (and PNG tRNS) is dropped, never composited;
 *  - 16-bit PNG colour and grey+alpha keep the high byte; 16-bit grey PNG (PIL mode
 *    "I;16") is clipped to 255;
 *  - PNM with a maxval other than 255 is scaled as PIL's PPM decoder does (16-bit
 *    grey PGM becomes mode "I", also clipped to 255);
 *  - a GIF's first frame: pixels that stb leaves transparent (the transparent index, and
 *    any area outside the frame) take the palette colour PIL gives them;
 *  - 16-bit BMP channels are widened as PIL does (v * 255 / 31), not by bit repetition.
 * Width, height and file size are checked against oc_image_limits from the header alone,
 * before anything is decoded. stb 2.27 trusts some things it should not (short BMP, TGA
 * and GIF data): those are checked here first. */
#include "image.h"

#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <stb_image.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "image_codecs.h"

#define SUPPORTED "JPEG, PNG, WebP, BMP, GIF, TGA, PNM"

/* ---- the image object ---------------------------------------------------------- */

oc_image_limits oc_image_default_limits(void) {
    oc_image_limits l = {
        .max_pixels = 89478485, /* Pillow's Image.MAX_IMAGE_PIXELS (1 GiB / 4 / 3) */
        .max_side = 32768,
        .max_file_bytes = (uint64_t)512 << 20,
    };
    return l;
}

oc_status oc_image_alloc(uint32_t w, uint32_t h, oc_image **out) {
    if (!out)
        return oc_err(OC_ERR_INVALID_ARG, "image: NULL output");
    if (w == 0 || h == 0)
        return oc_err(OC_ERR_INVALID_ARG, "image: %u x %u: sizes must be > 0", w, h);
    size_t n;
    if (!oc_mul_ok((size_t)w, (size_t)h, &n) || !oc_mul_ok(n, 3, &n))
        return oc_err(OC_ERR_LIMIT, "image: %u x %u pixels is too large", w, h);
    oc_image *img = oc_malloc(sizeof *img);
    uint8_t *rgb = img ? oc_malloc(n) : NULL;
    if (!rgb) {
        oc_free(img);
        return oc_err(OC_ERR_NOMEM, "image: out of memory for %u x %u pixels", w, h);
    }
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    *out = img;
    return OC_OK;
}

oc_status oc_image_from_rgb(const uint8_t *rgb, uint32_t width, uint32_t height,
                            oc_image **out) {
    if (!rgb || !out)
        return oc_err(OC_ERR_INVALID_ARG, "image: NULL pixels or output");
    oc_image *img = NULL;
    OC_TRY(oc_image_alloc(width, height, &img));
    memcpy(img->rgb, rgb, (size_t)width * height * 3);
    *out = img;
    return OC_OK;
}

uint32_t oc_image_width(const oc_image *img) { return img ? img->w : 0; }
uint32_t oc_image_height(const oc_image *img) { return img ? img->h : 0; }
const uint8_t *oc_image_rgb(const oc_image *img) { return img ? img->rgb : NULL; }

void oc_image_free(oc_image *img) {
    if (!img)
        return;
    oc_free(img->rgb);
    oc_free(img);
}

/* ---- recognising the format ------------------------------------------------------ */

/* TGA has no signature: it is what stb accepts that none of the others is. */
typedef enum {
    FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_GIF, FMT_BMP, FMT_PNM, FMT_TGA, FMT_WEBP
} img_format;

static const char *format_name(img_format f) {
    switch (f) {
    case FMT_PNG: return "PNG";
    case FMT_JPEG: return "JPEG";
    case FMT_GIF: return "GIF";
    case FMT_BMP: return "BMP";
    case FMT_PNM: return "PNM";
    case FMT_TGA: return "TGA";
    case FMT_WEBP: return "WebP";
    case FMT_UNKNOWN: break;
    }
    return "image";
}

static img_format sniff(const uint8_t *d, size_t n) {
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return FMT_PNG;
    size_t k = 0; /* stb, like libjpeg, skips fill bytes before the start marker */
    while (k < n && d[k] == 0xFF)
        k++;
    if (k > 0 && k < n && d[k] == 0xD8)
        return FMT_JPEG;
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return FMT_GIF;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return FMT_BMP;
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7')
        return FMT_PNM;
    if (oc_webp_sniff(d, n))
        return FMT_WEBP;
    return FMT_UNKNOWN;
}

/* stb_image_impl.c: forgets stb's last failure (so that a reason is never one left over
 * from an earlier call); whether an allocation failed since. */
void oc_stbi_clear_failure(void);
int oc_stbi_alloc_failed(void);

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }
static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return be16(p) << 16 | be16(p + 2); }

static const char *stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r ? r : "unknown error";
}

/* ---- limits ------------------------------------------------------------------------ */

/* The decoder's output buffer: width x height x channels x bytes a sample, held to what
 * an 8-bit RGB image at the pixel limit takes, before anything is decoded. */
static oc_status check_decoded(const char *name, uint64_t w, uint64_t h, int channels,
                               int bytes, const oc_image_limits *lim) {
    uint64_t need = w * h * (uint64_t)channels * (uint64_t)bytes; /* w, h < 2^32, checked */
    uint64_t cap = lim->max_pixels > UINT64_MAX / 3 ? UINT64_MAX : 3 * lim->max_pixels;
    if (w * h > UINT64_MAX / 8 || need > cap)
        return oc_err(OC_ERR_LIMIT, "%s: %llu x %llu pixels of %d channel%s would take %llu "
                      "bytes to decode, over the limit of %llu (3 x max_pixels)", name,
                      (unsigned long long)w, (unsigned long long)h, channels,
                      channels == 1 ? "" : "s", (unsigned long long)need,
                      (unsigned long long)cap);
    return OC_OK;
}

oc_status oc_image_check_limits(const char *name, int64_t w, int64_t h,
                                const oc_image_limits *lim) {
    if (w <= 0 || h <= 0)
        return oc_err(OC_ERR_FORMAT, "%s: image has %lld x %lld pixels", name, (long long)w,
                      (long long)h);
    if ((uint64_t)w > lim->max_side || (uint64_t)h > lim->max_side)
        return oc_err(OC_ERR_LIMIT, "%s: %lld x %lld pixels is over the limit of %u pixels "
                      "a side", name, (long long)w, (long long)h, lim->max_side);
    uint64_t px = (uint64_t)w * (uint64_t)h; /* both below 2^32 here */
    if (px > lim->max_pixels)
        return oc_err(OC_ERR_LIMIT, "%s: %lld x %lld pixels is over the limit of %llu pixels",
                      name, (long long)w, (long long)h, (unsigned long long)lim->max_pixels);
    return OC_OK;
}

/* ---- PNM: decoded here ------------------------------------------------------------
 * Binary PGM/PPM is a text header and raw samples. stb 2.27 reads 16-bit samples in the
 * machine's byte order and does not notice short files, so ocellus reads them itself. */

typedef struct {
    char kind;      /* '5': grey, '6': colour */
    long w, h;
    long maxval;    /* 1..65535; samples are 2 bytes big-endian above 255 */
    size_t offset;  /* first sample byte */
} pnm_header;

static int pnm_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next header integer, skipping whitespace and '#' comments; -1 if none. */
static long pnm_int(const uint8_t *d, size_t n, size_t *p) {
    for (;;) {
        while (*p < n && pnm_space(d[*p]))
            (*p)++;
        if (*p < n && d[*p] == '#') {
            while (*p < n && d[*p] != '\n' && d[*p] != '\r')
                (*p)++;
            continue;
        }
        break;
    }
    long v = 0;
    size_t start = *p;
    while (*p < n && d[*p] >= '0' && d[*p] <= '9' && *p - start < 10)
        v = v * 10 + (d[(*p)++] - '0');
    return *p > start ? v : -1;
}

static oc_status pnm_parse(const char *name, const uint8_t *d, size_t n, pnm_header *h) {
    if (n < 2 || (d[1] != '5' && d[1] != '6'))
        return oc_err(OC_ERR_UNSUPPORTED, "%s: only binary PNM (P5 grey, P6 colour) is "
                      "supported, not P%c", name, n >= 2 ? d[1] : '?');
    size_t p = 2;
    h->kind = (char)d[1];
    h->w = pnm_int(d, n, &p);
    h->h = pnm_int(d, n, &p);
    h->maxval = pnm_int(d, n, &p);
    if (h->w <= 0 || h->h <= 0 || h->maxval <= 0 || h->maxval > 65535 || p >= n ||
        !pnm_space(d[p]))
        return oc_err(OC_ERR_FORMAT, "%s: bad PNM header", name);
    h->offset = p + 1; /* one whitespace byte ends the header */
    return OC_OK;
}

/* PIL's PPM decoder for a maxval it does not read raw: value / maxval * out_max
 * rounded half to even, capped at out_max. */
static uint32_t pnm_scale(uint32_t v, long maxval, uint32_t out_max) {
    double x = nearbyint((double)v / (double)maxval * (double)out_max);
    return x > out_max ? out_max : (uint32_t)x;
}

/* One sample as PIL's RGB: colour and 8-bit grey are scaled to 255; grey above 255
 * becomes mode "I" (scaled to 65535 unless maxval is 65535) and is clipped to 255. */
static uint8_t pnm_sample(uint32_t v, const pnm_header *h) {
    if (h->kind == '5' && h->maxval > 255) {
        if (h->maxval != 65535)
            v = pnm_scale(v, h->maxval, 65535);
        return v > 255 ? 255 : (uint8_t)v;
    }
    return h->maxval == 255 ? (uint8_t)v : (uint8_t)pnm_scale(v, h->maxval, 255);
}

static oc_status decode_pnm(const char *name, const uint8_t *d, size_t n,
                            const pnm_header *h, oc_image *img) {
    size_t ch = h->kind == '6' ? 3 : 1, bps = h->maxval > 255 ? 2 : 1;
    size_t px = (size_t)img->w * img->h, need = px * ch * bps;
    if (n - h->offset < need)
        return oc_err(OC_ERR_FORMAT, "%s: PNM is truncated: %zu bytes of samples, expected "
                      "%zu", name, n - h->offset, need);
    const uint8_t *s = d + h->offset;
    for (size_t i = 0; i < px; i++)
        for (size_t c = 0; c < 3; c++) {
            size_t k = (i * ch + (ch == 3 ? c : 0)) * bps;
            uint32_t v = bps == 2 ? ((uint32_t)s[k] << 8) | s[k + 1] : s[k];
            img->rgb[i * 3 + c] = pnm_sample(v, h);
        }
    return OC_OK;
}

/* ---- GIF: what stb does not tell ----------------------------------------------------- */

typedef struct {
    uint8_t fill[3]; /* the colour PIL gives pixels the first frame leaves undrawn */
    int complete;    /* the first frame's data blocks end inside the file */
} gif_scan;

/* Skips GIF data sub-blocks from *p; 0 if they run past the end. */
static int gif_skip_blocks(const uint8_t *d, size_t n, size_t *p) {
    while (*p < n) {
        uint8_t len = d[(*p)++];
        if (len == 0)
            return 1;
        *p += len;
    }
    return 0;
}

/* PIL fills the first frame's canvas with the transparent index (index 0 when there is
 * none) before drawing the frame, and converts through the frame's palette (local, else
 * global); stb leaves those pixels at alpha 0. */
static void gif_first_frame(const uint8_t *d, size_t n, gif_scan *g) {
    memset(g, 0, sizeof *g);
    if (n < 13)
        return;
    const uint8_t *pal = NULL;
    size_t pal_n = 0, p = 13;
    if (d[10] & 0x80) {
        pal = d + 13;
        pal_n = (size_t)3 << ((d[10] & 7) + 1);
        p += pal_n;
    }
    int trans = -1;
    for (;;) {
        if (p >= n)
            return;
        uint8_t tag = d[p++];
        if (tag == 0x21) { /* extension: label, then sub-blocks */
            if (p >= n)
                return;
            uint8_t label = d[p++];
            if (label == 0xF9 && p + 5 <= n && d[p] >= 4 && (d[p + 1] & 1))
                trans = d[p + 4];
            if (!gif_skip_blocks(d, n, &p))
                return;
        } else if (tag == 0x2C) { /* the first image: descriptor, palette, LZW data */
            if (p + 9 > n)
                return;
            uint8_t flags = d[p + 8];
            p += 9;
            if (flags & 0x80) {
                pal = d + p;
                pal_n = (size_t)3 << ((flags & 7) + 1);
                p += pal_n;
            }
            p += 1; /* LZW minimum code size */
            g->complete = p <= n && gif_skip_blocks(d, n, &p);
            break;
        } else {
            return;
        }
    }
    size_t idx = trans >= 0 ? (size_t)trans : 0;
    if (pal && idx * 3 + 3 <= pal_n && pal + idx * 3 + 3 <= d + n)
        memcpy(g->fill, pal + idx * 3, 3);
}

/* ---- truncation: stb fills missing BMP, TGA and GIF data instead of failing ----------- */

static oc_status truncated(const char *name, const char *fmt) {
    return oc_err(OC_ERR_FORMAT, "%s: %s is truncated", name, fmt);
}

/* PNG: every chunk must fit in the file. stb grows its buffer to a chunk's declared
 * length before reading it, so a tiny file could ask for gigabytes. */
static oc_status png_check(const char *name, const uint8_t *d, size_t n) {
    size_t p = 8;
    while (p + 8 <= n) {
        uint32_t len = be32(d + p);
        if (len > n - p - 8 || n - p - 8 - len < 4)
            return truncated(name, "PNG");
        if (memcmp(d + p + 4, "IEND", 4) == 0)
            return OC_OK;
        p += 12 + (size_t)len;
    }
    return truncated(name, "PNG");
}

/* Uncompressed BMP: pixel data from bfOffBits, rows padded to 4 bytes. */
static oc_status bmp_check(const char *name, const uint8_t *d, size_t n) {
    if (n < 26)
        return truncated(name, "BMP");
    uint64_t off = le32(d + 10), hsz = le32(d + 14), w, h, bpp, comp = 0;
    if (hsz == 12) {
        w = le16(d + 18);
        h = le16(d + 20);
        bpp = le16(d + 24);
    } else {
        if (n < 34)
            return truncated(name, "BMP");
        w = le32(d + 18);
        int64_t sh = (int32_t)le32(d + 22); /* negative: rows top to bottom */
        h = (uint64_t)(sh < 0 ? -sh : sh);
        bpp = le16(d + 28);
        comp = le32(d + 30);
    }
    if (comp != 0 && comp != 3)
        return OC_OK; /* RLE and others: stb refuses them itself */
    uint64_t stride = (w * bpp + 31) / 32 * 4; /* w < 2^32, bpp < 2^16 */
    if ((uint64_t)n < off || ((uint64_t)n - off) / (stride ? stride : 1) < h)
        return truncated(name, "BMP");
    return OC_OK;
}

/* TGA: raw pixels, or run-length packets that must cover every pixel. */
static oc_status tga_check(const char *name, const uint8_t *d, size_t n) {
    if (n < 18)
        return truncated(name, "TGA");
    uint32_t type = d[2], bytes_pp = (d[16] + 7u) / 8u;
    uint64_t px = (uint64_t)le16(d + 12) * le16(d + 14);
    uint64_t p = 18 + (uint64_t)d[0] + (d[1] ? le16(d + 5) * ((d[7] + 7u) / 8u) : 0);
    if (type == 1 || type == 2 || type == 3) {
        if (p > n || (n - p) / bytes_pp < px)
            return truncated(name, "TGA");
    } else if (type == 9 || type == 10 || type == 11) {
        for (uint64_t got = 0; got < px;) {
            if (p >= n)
                return truncated(name, "TGA");
            uint8_t hdr = d[p++];
            uint64_t count = (hdr & 0x7Fu) + 1;
            p += (hdr & 0x80) ? bytes_pp : count * bytes_pp;
            if (p > n)
                return truncated(name, "TGA");
            got += count;
        }
    }
    return OC_OK;
}

/* ---- BMP: 16-bit pixels ------------------------------------------------------------- */

/* The 16-bit layouts PIL reads: 5-5-5 (no masks, or those masks) and 5-6-5. */
typedef enum { BMP16_NONE, BMP16_555, BMP16_565 } bmp16_layout;

static bmp16_layout bmp16(const uint8_t *d, size_t n) {
    if (n < 34 || le32(d + 14) < 40 || le16(d + 28) != 16)
        return BMP16_NONE;
    uint32_t comp = le32(d + 30);
    if (comp == 0)
        return BMP16_555;
    if (comp != 3 || n < 66)
        return BMP16_NONE;
    uint32_t r = le32(d + 54), g = le32(d + 58), b = le32(d + 62);
    if (r == 0xF800 && g == 0x07E0 && b == 0x001F)
        return BMP16_565;
    if (r == 0x7C00 && g == 0x03E0 && b == 0x001F)
        return BMP16_555;
    return BMP16_NONE;
}

/* stb widens an n-bit channel by repeating its top bits, PIL by v * max8 / max (integer
 * division): take v back from the top bits of stb's byte and widen it PIL's way. */
static uint8_t widen_pil(uint8_t stb, int bits) {
    uint32_t v = (uint32_t)stb >> (8 - bits), max = (1u << bits) - 1;
    return (uint8_t)(v * 255 / max);
}

static void bmp16_to_pil(uint8_t *rgb, size_t px, bmp16_layout l) {
    for (size_t i = 0; i < px; i++, rgb += 3) {
        rgb[0] = widen_pil(rgb[0], 5);
        rgb[1] = widen_pil(rgb[1], l == BMP16_565 ? 6 : 5);
        rgb[2] = widen_pil(rgb[2], 5);
    }
}

/* ---- decoding ------------------------------------------------------------------------- */

/* rgb (w*h*3) from stb's RGBA output, filling what the first frame left transparent. */
static void gif_to_rgb(uint8_t *rgb, const uint8_t *rgba, size_t px, const uint8_t fill[3]) {
    for (size_t i = 0; i < px; i++) {
        const uint8_t *s = rgba + i * 4;
        memcpy(rgb + i * 3, s[3] ? s : fill, 3);
    }
}

/* Decodes with stb into *pixels (img->h, img->w, comp): 8 bits, or 16 when wide. */
static oc_status stb_decode(const char *name, img_format fmt, const uint8_t *d, size_t n,
                            const oc_image *img, int comp, int wide, void **pixels) {
    int w, h, c;
    oc_stbi_clear_failure();
    void *p = wide ? (void *)stbi_load_16_from_memory(d, (int)n, &w, &h, &c, comp)
                   : (void *)stbi_load_from_memory(d, (int)n, &w, &h, &c, comp);
    if (!p) {
        const char *r = stb_reason();
        /* stb tries the formats in turn: a PNG signature complaint comes from that test,
         * when the real decoder failed without saying why */
        if (fmt != FMT_PNG && strcmp(r, "bad png sig") == 0)
            r = "no detail from the decoder";
        if (oc_stbi_alloc_failed())
            return oc_err(OC_ERR_NOMEM, "%s: out of memory decoding the %s", name,
                          format_name(fmt));
        return oc_err(OC_ERR_FORMAT, "%s: cannot decode this %s (corrupt or truncated?): %s",
                      name, format_name(fmt), r);
    }
    if ((uint32_t)w != img->w || (uint32_t)h != img->h) {
        stbi_image_free(p);
        return oc_err(OC_ERR_FORMAT, "%s: the %s header says %u x %u but decodes to %d x %d",
                      name, format_name(fmt), img->w, img->h, w, h);
    }
    *pixels = p;
    return OC_OK;
}

/* 16-bit grey PNG: PIL's mode "I;16", whose RGB clips values to 255. */
static oc_status decode_png_grey16(const char *name, const uint8_t *d, size_t n,
                                   oc_image *img) {
    void *p;
    OC_TRY(stb_decode(name, FMT_PNG, d, n, img, 1, 1, &p));
    const uint16_t *g = p;
    size_t px = (size_t)img->w * img->h;
    for (size_t i = 0; i < px; i++)
        memset(img->rgb + i * 3, g[i] > 255 ? 255 : g[i], 3);
    stbi_image_free(p);
    return OC_OK;
}

/* Other 16-bit PNGs: the high byte of each sample, which is what stb's own 16-to-8 step
 * keeps. Done here because stb 2.27's stbi__convert_16_to_8 leaks the 16-bit image when
 * its allocation fails. */
static oc_status decode_png16_rgb(const char *name, const uint8_t *d, size_t n,
                                  oc_image *img) {
    void *p;
    OC_TRY(stb_decode(name, FMT_PNG, d, n, img, 3, 1, &p));
    const uint16_t *s = p;
    size_t m = (size_t)img->w * img->h * 3;
    for (size_t i = 0; i < m; i++)
        img->rgb[i] = (uint8_t)(s[i] >> 8);
    stbi_image_free(p);
    return OC_OK;
}

static oc_status decode_gif(const char *name, const uint8_t *d, size_t n, oc_image *img) {
    gif_scan g;
    gif_first_frame(d, n, &g);
    if (!g.complete)
        return truncated(name, "GIF");
    void *p;
    OC_TRY(stb_decode(name, FMT_GIF, d, n, img, 4, 0, &p));
    gif_to_rgb(img->rgb, p, (size_t)img->w * img->h, g.fill);
    stbi_image_free(p);
    return OC_OK;
}

static oc_status decode_rgb8(const char *name, img_format fmt, const uint8_t *d, size_t n,
                             oc_image *img) {
    void *p;
    OC_TRY(stb_decode(name, fmt, d, n, img, 3, 0, &p));
    memcpy(img->rgb, p, (size_t)img->w * img->h * 3);
    stbi_image_free(p);
    return OC_OK;
}

/* Picks the conversion that matches PIL for this file. */
static oc_status decode_into(const char *name, img_format fmt, const uint8_t *d, size_t n,
                             int comp, oc_image *img) {
    if (fmt == FMT_GIF)
        return decode_gif(name, d, n, img);
    if (fmt == FMT_PNG && stbi_is_16_bit_from_memory(d, (int)n))
        return comp == 1 ? decode_png_grey16(name, d, n, img)
                         : decode_png16_rgb(name, d, n, img);
    OC_TRY(decode_rgb8(name, fmt, d, n, img));
    bmp16_layout l = fmt == FMT_BMP ? bmp16(d, n) : BMP16_NONE;
    if (l != BMP16_NONE)
        bmp16_to_pil(img->rgb, (size_t)img->w * img->h, l);
    return OC_OK;
}

static oc_status load_pnm(const char *name, const uint8_t *d, size_t n,
                          const oc_image_limits *lim, oc_image **out) {
    pnm_header h;
    memset(&h, 0, sizeof h);
    OC_TRY(pnm_parse(name, d, n, &h));
    OC_TRY(oc_image_check_limits(name, h.w, h.h, lim));
    oc_image *img = NULL;
    OC_TRY(oc_image_alloc((uint32_t)h.w, (uint32_t)h.h, &img));
    oc_status s = decode_pnm(name, d, n, &h, img);
    if (s != OC_OK) {
        oc_image_free(img);
        return s;
    }
    *out = img;
    return OC_OK;
}

/* The size a header claims, read here because stb refuses some large sizes itself (so
 * that the caller would not learn it is a limit) and allocates for others; 0 if the
 * header is too short or the format has no signature (TGA). */
static int header_size(img_format fmt, const uint8_t *d, size_t n, int64_t *w, int64_t *h) {
    switch (fmt) {
    case FMT_PNG: /* signature, IHDR length and type, then width and height */
        if (n < 24 || memcmp(d + 12, "IHDR", 4) != 0)
            return 0;
        *w = be32(d + 16);
        *h = be32(d + 20);
        return 1;
    case FMT_GIF: /* the logical screen */
        if (n < 10)
            return 0;
        *w = le16(d + 6);
        *h = le16(d + 8);
        return 1;
    case FMT_BMP:
        if (n < 26)
            return 0;
        if (le32(d + 14) == 12) { /* OS/2 header: 16-bit sizes */
            *w = le16(d + 18);
            *h = le16(d + 20);
        } else {
            *w = (int32_t)le32(d + 18);
            *h = (int32_t)le32(d + 22);
            *h = *h < 0 ? -*h : *h; /* negative: rows top to bottom */
        }
        return 1;
    case FMT_JPEG:
    case FMT_WEBP:
    case FMT_PNM:
    case FMT_TGA:
    case FMT_UNKNOWN:
        break;
    }
    return 0;
}

/* PNG: the orientation in an eXIf chunk (Pillow reads it before or after the image
 * data); png_check has made sure every chunk lies inside the file. */
static int png_orientation(const uint8_t *d, size_t n) {
    for (size_t p = 8; p + 12 <= n;) {
        uint32_t len = be32(d + p);
        if (len > n - p - 12)
            break;
        if (memcmp(d + p + 4, "eXIf", 4) == 0)
            return oc_exif_orientation(d + p + 8, len);
        if (memcmp(d + p + 4, "IEND", 4) == 0)
            break;
        p += 12 + (size_t)len;
    }
    return 1;
}

/* The formats stb decodes: PNG, BMP, GIF, TGA. */
static oc_status load_stb(const char *name, img_format fmt, const uint8_t *d, size_t size,
                          const oc_image_limits *lim, oc_image **out) {
    int64_t hw, hh;
    if (header_size(fmt, d, size, &hw, &hh))
        OC_TRY(oc_image_check_limits(name, hw, hh, lim));
    if (fmt == FMT_PNG)
        OC_TRY(png_check(name, d, size));
    int w, h, comp;
    oc_stbi_clear_failure();
    if (!stbi_info_from_memory(d, (int)size, &w, &h, &comp)) {
        if (oc_stbi_alloc_failed())
            return oc_err(OC_ERR_NOMEM, "%s: out of memory reading the header", name);
        if (fmt != FMT_UNKNOWN)
            return oc_err(OC_ERR_FORMAT, "%s: corrupt or truncated %s header: %s", name,
                          format_name(fmt), stb_reason());
        return oc_err(OC_ERR_UNSUPPORTED, "%s: not a supported image (" SUPPORTED "): %s",
                      name, stb_reason());
    }
    if (fmt == FMT_BMP && h < 0)
        h = -h; /* stb passes on the sign of a top-down BMP */
    OC_TRY(oc_image_check_limits(name, w, h, lim));
    if (fmt == FMT_UNKNOWN)
        fmt = FMT_TGA;
    if (fmt == FMT_BMP)
        OC_TRY(bmp_check(name, d, size));
    if (fmt == FMT_TGA)
        OC_TRY(tga_check(name, d, size));

    /* what stb will allocate for its output (decode_into's conversions) */
    int wide = fmt == FMT_PNG && stbi_is_16_bit_from_memory(d, (int)size);
    int out_ch = fmt == FMT_GIF ? 4 : wide && comp == 1 ? 1 : 3;
    OC_TRY(check_decoded(name, (uint64_t)w, (uint64_t)h, out_ch, wide ? 2 : 1, lim));
    oc_image *img = NULL;
    OC_TRY(oc_image_alloc((uint32_t)w, (uint32_t)h, &img));
    oc_status s = decode_into(name, fmt, d, size, comp, img);
    if (s != OC_OK) {
        oc_image_free(img);
        return s;
    }
    *out = img;
    return OC_OK;
}

oc_status oc_image_load_memory(const void *data, size_t size, const char *name,
                               const oc_image_limits *limits, oc_image **out) {
    if (!name)
        name = "image";
    if ((!data && size > 0) || !out)
        return oc_err(OC_ERR_INVALID_ARG, "%s: NULL data or output", name);
    oc_image_limits lim = limits ? *limits : oc_image_default_limits();
    if (size == 0)
        return oc_err(OC_ERR_FORMAT, "%s: empty file", name);
    /* stb takes an int length */
    uint64_t max_bytes = lim.max_file_bytes < INT_MAX ? lim.max_file_bytes : INT_MAX;
    if ((uint64_t)size > max_bytes)
        return oc_err(OC_ERR_LIMIT, "%s: %zu bytes is over the limit of %llu bytes", name,
                      size, (unsigned long long)max_bytes);
    const uint8_t *d = data;
    img_format fmt = sniff(d, size);
    oc_image *img = NULL;
    int orientation = 1;
    if (fmt == FMT_PNM)
        return load_pnm(name, d, size, &lim, out);
    if (fmt == FMT_JPEG)
        OC_TRY(oc_jpeg_decode(name, d, size, &lim, &img, &orientation));
    else if (fmt == FMT_WEBP)
        OC_TRY(oc_webp_decode(name, d, size, &lim, &img, &orientation));
    else
        OC_TRY(load_stb(name, fmt, d, size, &lim, &img));
    if (fmt == FMT_PNG)
        orientation = png_orientation(d, size);
    oc_status s = oc_image_orient(&img, orientation);
    if (s != OC_OK) {
        oc_image_free(img);
        return s;
    }
    *out = img;
    return OC_OK;
}

oc_status oc_image_load(const char *path, const oc_image_limits *limits, oc_image **out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "image: NULL path or output");
    oc_image_limits lim = limits ? *limits : oc_image_default_limits();
    size_t max = lim.max_file_bytes < (uint64_t)INT_MAX ? (size_t)lim.max_file_bytes
                                                        : (size_t)INT_MAX;
    char *data;
    size_t size;
    OC_TRY(oc_read_file(path, max, &data, &size));
    oc_status s = oc_image_load_memory(data, size, strcmp(path, "-") == 0 ? "<stdin>" : path,
                                       &lim, out);
    oc_free(data);
    return s;
}
