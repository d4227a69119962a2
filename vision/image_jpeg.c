/* JPEG through libjpeg(-turbo), set up as Pillow's JpegDecode.c leaves it: the library's
 * defaults (the accurate integer IDCT, fancy upsampling), output in the colour space of
 * Pillow's mode for the component count (1: "L", 3: "RGB", 4: "CMYK" with YCCK converted
 * by libjpeg), then Pillow's convert("RGB"):
 *  - grey is replicated;
 *  - CMYK is read inverted ("CMYK;I": Pillow assumes Adobe's convention for every
 *    4-component JPEG) and converted as Convert.c's cmyk2rgb does:
 *    r = clip(nk - nk * c / 255) with nk = 255 - k and the product rounded by MULDIV255.
 * A file cut short is an error (Pillow says "image file is truncated"); libjpeg's other
 * warnings about corrupt data are ignored, as Pillow ignores them. Progressive files with
 * more than MAX_SCANS scans are refused (each scan re-reads the whole image: a few
 * kilobytes could otherwise keep a CPU busy for minutes). The EXIF APP1 segment gives
 * the orientation. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "alloc.h"
#include "error.h"
#include "image_codecs.h"

#define MAX_SCANS 1000

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;           /* libjpeg reached the end of the data */
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_error(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings: only "premature end of data" matters (the file was cut). */
static void on_message(j_common_ptr c, int level) {
    jpeg_err *e = (jpeg_err *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
        e->truncated = 1;
}

typedef struct {
    struct jpeg_progress_mgr pub;
    jmp_buf *jump;
    jpeg_err *err;
} scan_guard;

static void on_progress(j_common_ptr c) {
    scan_guard *g = (scan_guard *)c->progress;
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > MAX_SCANS) {
        snprintf(g->err->msg, sizeof g->err->msg, "more than %d progressive scans",
                 MAX_SCANS);
        longjmp(*g->jump, 1);
    }
}

/* MULDIV255 of Pillow's ImagingUtils.h: a * b / 255, rounded. */
static uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_row_to_rgb(uint8_t *rgb, const uint8_t *cmyk, size_t w) {
    for (size_t x = 0; x < w; x++, cmyk += 4, rgb += 3) {
        unsigned nk = cmyk[3]; /* 255 - k, k being read inverted */
        for (int c = 0; c < 3; c++) {
            unsigned v = 255u - cmyk[c];
            int r = (int)nk - muldiv255(v, nk);
            rgb[c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        }
    }
}

static int orientation_of(j_decompress_ptr c) {
    for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && !memcmp(m->data, "Exif\0\0", 6))
            return oc_exif_orientation(m->data, m->data_length);
    return 1;
}

oc_status oc_jpeg_decode(const char *name, const uint8_t *d, size_t n,
                         const oc_image_limits *lim, oc_image **out, int *orientation) {
    struct jpeg_decompress_struct c;
    jpeg_err err;
    scan_guard guard;
    memset(&err, 0, sizeof err);
    c.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    oc_image *volatile img = NULL;
    uint8_t *volatile row = NULL;
    volatile oc_status st = OC_OK;
    if (setjmp(err.jump)) {
        if (st == OC_OK)
            st = oc_err(OC_ERR_FORMAT, "%s: cannot decode this JPEG (corrupt?): %s", name,
                        err.msg);
        jpeg_destroy_decompress(&c);
        oc_image_free(img);
        oc_free(row);
        return st;
    }
    jpeg_create_decompress(&c);
    guard.pub.progress_monitor = on_progress;
    guard.jump = &err.jump;
    guard.err = &err;
    c.progress = &guard.pub;
    jpeg_mem_src(&c, d, (unsigned long)n);
    jpeg_save_markers(&c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&c, TRUE);
    if (err.truncated) {
        st = oc_err(OC_ERR_FORMAT, "%s: JPEG is truncated (it ends in the header)", name);
        longjmp(err.jump, 1);
    }
    st = oc_image_check_limits(name, c.image_width, c.image_height, lim);
    if (st != OC_OK)
        longjmp(err.jump, 1);
    int comps = c.num_components;
    if (comps == 1)
        c.out_color_space = JCS_GRAYSCALE;
    else if (comps == 3)
        c.out_color_space = JCS_RGB;
    else if (comps == 4)
        c.out_color_space = JCS_CMYK;
    else {
        st = oc_err(OC_ERR_UNSUPPORTED, "%s: a JPEG of %d components is not supported", name,
                    comps);
        longjmp(err.jump, 1);
    }
    *orientation = orientation_of(&c);
    jpeg_start_decompress(&c);
    if ((st = oc_image_alloc(c.output_width, c.output_height, (oc_image **)&img)) != OC_OK)
        longjmp(err.jump, 1);
    size_t w = c.output_width, oc = (size_t)c.output_components;
    if (!(row = oc_malloc(w * oc))) {
        st = oc_err(OC_ERR_NOMEM, "%s: out of memory decoding the JPEG", name);
        longjmp(err.jump, 1);
    }
    while (c.output_scanline < c.output_height) {
        size_t y = c.output_scanline;
        JSAMPROW rp = row;
        if (jpeg_read_scanlines(&c, &rp, 1) != 1 || err.truncated)
            break;
        uint8_t *dst = img->rgb + y * w * 3;
        if (oc == 1)
            for (size_t x = 0; x < w; x++)
                memset(dst + 3 * x, row[x], 3);
        else if (oc == 3)
            memcpy(dst, row, w * 3);
        else
            cmyk_row_to_rgb(dst, row, w);
    }
    if (err.truncated || c.output_scanline < c.output_height) {
        st = oc_err(OC_ERR_FORMAT, "%s: JPEG is truncated (%u of %u rows)", name,
                    c.output_scanline, c.output_height);
        longjmp(err.jump, 1);
    }
    jpeg_abort_decompress(&c); /* not finish: trailing garbage is not an error */
    jpeg_destroy_decompress(&c);
    oc_free(row);
    *out = img;
    return OC_OK;
}
