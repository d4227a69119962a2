/* EXIF orientation: tag 0x0112 of a TIFF structure's first IFD, and the transposes of
 * PIL.ImageOps.exif_transpose (what transformers' load_image applies before
 * convert("RGB")). Every offset is checked; anything unreadable counts as no
 * orientation, as Pillow's getexif() gives no tag for it. */
#include <string.h>

#include "error.h"
#include "image_codecs.h"

int oc_exif_orientation(const uint8_t *d, size_t n) {
    if (n >= 6 && !memcmp(d, "Exif\0\0", 6)) {
        d += 6;
        n -= 6;
    }
    if (n < 8)
        return 1;
    int le = d[0] == 'I' && d[1] == 'I', be = d[0] == 'M' && d[1] == 'M';
    if (!le && !be)
        return 1;
#define U16(p) (le ? (uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 : (uint32_t)(p)[0] << 8 | (p)[1])
#define U32(p) (le ? U16(p) | U16((p) + 2) << 16 : U16(p) << 16 | U16((p) + 2))
    if (U16(d + 2) != 42)
        return 1;
    uint32_t ifd = U32(d + 4);
    if (ifd > n - 2)
        return 1;
    uint32_t count = U16(d + ifd);
    if (count > (n - ifd - 2) / 12)
        return 1;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = d + ifd + 2 + 12 * i;
        if (U16(e) != 0x0112)
            continue;
        uint32_t type = U16(e + 2), cnt = U32(e + 4);
        uint32_t v = type == 3 ? U16(e + 8) : type == 4 ? U32(e + 8) : 0; /* SHORT, LONG */
        return cnt >= 1 && v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
#undef U16
#undef U32
}

oc_status oc_image_orient(oc_image **img, int orientation) {
    if (orientation < 2 || orientation > 8)
        return OC_OK;
    const oc_image *in = *img;
    size_t w = in->w, h = in->h;
    int swap = orientation >= 5; /* transposes and quarter turns swap the sides */
    oc_image *o = NULL;
    OC_TRY(oc_image_alloc(swap ? in->h : in->w, swap ? in->w : in->h, &o));
    size_t ow = o->w, oh = o->h;
    for (size_t y = 0; y < oh; y++)
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy; /* the source pixel of output (x, y) */
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;                 /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;         /* ROTATE_180 */
            case 4: sx = x; sy = h - 1 - y; break;                 /* FLIP_TOP_BOTTOM */
            case 5: sx = y; sy = x; break;                         /* TRANSPOSE */
            case 6: sx = y; sy = h - 1 - x; break;                 /* ROTATE_270 */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;         /* TRANSVERSE */
            default: sx = w - 1 - y; sy = x; break;                /* 8: ROTATE_90 */
            }
            memcpy(o->rgb + (y * ow + x) * 3, in->rgb + (sy * w + sx) * 3, 3);
        }
    oc_image_free(*img);
    *img = o;
    return OC_OK;
}
