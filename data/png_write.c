/* A minimal PNG writer: signature, IHDR, one IDAT, IEND. Each row uses the "Sub" filter,
 * which suits flat synthetic images; deflate comes from zlib with our allocator so that
 * allocation failures are reported, not crashed on. */
#include "png_write.h"

#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "error.h"

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return oc_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    oc_free(p);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes a chunk (length, type, data, CRC of type + data) at out; returns its size. */
static size_t put_chunk(uint8_t *out, const char type[4], const uint8_t *data, uint32_t len) {
    put_u32(out, len);
    memcpy(out + 4, type, 4);
    if (len)
        memmove(out + 8, data, len);
    uLong crc = crc32(0L, out + 4, (uInt)len + 4);
    put_u32(out + 8 + len, (uint32_t)crc);
    return (size_t)len + 12;
}

/* The filtered image: each row is a filter byte (1 = Sub) then w * 3 differences. */
static uint8_t *filter_rows(const uint8_t *rgb, uint32_t w, uint32_t h, size_t *n) {
    size_t stride = (size_t)w * 3;
    uint8_t *f = oc_malloc((stride + 1) * h);
    if (!f)
        return NULL;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *row = rgb + y * stride;
        uint8_t *o = f + y * (stride + 1);
        o[0] = 1;
        for (size_t i = 0; i < stride; i++)
            o[1 + i] = (uint8_t)(row[i] - (i >= 3 ? row[i - 3] : 0));
    }
    *n = (stride + 1) * h;
    return f;
}

static oc_status deflate_all(const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                             size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (deflateInit(&z, 9) != Z_OK)
        return oc_err(OC_ERR_NOMEM, "png: cannot start deflate");
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *out_n = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END)
        return oc_err(OC_ERR_INTERNAL, "png: deflate did not finish (%d)", r);
    return OC_OK;
}

oc_status oc_png_encode(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t **png, size_t *n) {
    if (!rgb || !png || !n || w == 0 || h == 0)
        return oc_err(OC_ERR_INVALID_ARG, "png: empty image or NULL argument");
    if (w > 16384 || h > 16384)
        return oc_err(OC_ERR_LIMIT, "png: %ux%u is over the 16384 side limit", w, h);
    size_t raw_n;
    uint8_t *raw = filter_rows(rgb, w, h, &raw_n);
    if (!raw)
        return oc_err(OC_ERR_NOMEM, "png: out of memory");
    size_t zcap = compressBound((uLong)raw_n);
    /* signature 8 + IHDR 25 + IDAT 12 + data + IEND 12 */
    uint8_t *out = oc_malloc(8 + 25 + 12 + zcap + 12);
    if (!out) {
        oc_free(raw);
        return oc_err(OC_ERR_NOMEM, "png: out of memory");
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, sig, 8);
    uint8_t ihdr[13];
    put_u32(ihdr, w);
    put_u32(ihdr + 4, h);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    size_t k = 8 + put_chunk(out + 8, "IHDR", ihdr, 13);
    size_t zn = 0;
    oc_status s = deflate_all(raw, raw_n, out + k + 8, zcap, &zn);
    oc_free(raw);
    if (s != OC_OK) {
        oc_free(out);
        return s;
    }
    k += put_chunk(out + k, "IDAT", out + k + 8, (uint32_t)zn);
    k += put_chunk(out + k, "IEND", NULL, 0);
    *png = out;
    *n = k;
    return OC_OK;
}
