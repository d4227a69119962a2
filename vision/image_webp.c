/* WebP through libwebp's animation decoder, which is what Pillow's WebP plugin reads every
 * WebP file with (still or animated): RGBA output (not premultiplied), the first frame
 * composed on the decoder's canvas, then convert("RGB") drops alpha. Lossy frames use
 * libwebp's default (fancy) upsampling, as Pillow does. The EXIF chunk gives the
 * orientation. */
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "error.h"
#include "image_codecs.h"

int oc_webp_sniff(const uint8_t *d, size_t n) {
    return n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4);
}

static int exif_orientation(const WebPData *data) {
    WebPDemuxer *dm = WebPDemux(data);
    int o = 1;
    WebPChunkIterator it;
    if (dm && WebPDemuxGetChunk(dm, "EXIF", 1, &it)) {
        o = oc_exif_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(dm);
    return o;
}

oc_status oc_webp_decode(const char *name, const uint8_t *d, size_t n,
                         const oc_image_limits *lim, oc_image **out, int *orientation) {
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(d, n, &f);
    if (vs == VP8_STATUS_NOT_ENOUGH_DATA)
        return oc_err(OC_ERR_FORMAT, "%s: WebP is truncated", name);
    if (vs != VP8_STATUS_OK)
        return oc_err(OC_ERR_FORMAT, "%s: corrupt WebP header (libwebp status %d)", name,
                      (int)vs);
    WebPData data = {d, n};
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt))
        return oc_err(OC_ERR_INTERNAL, "%s: libwebp's decoder version does not match", name);
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    /* the canvas size is in the header (VP8X) or is the frame's: check it before the
     * decoder allocates a canvas of that size */
    WebPDemuxer *dm = WebPDemux(&data);
    if (!dm)
        return oc_err(OC_ERR_FORMAT, "%s: corrupt or truncated WebP", name);
    uint32_t w = WebPDemuxGetI(dm, WEBP_FF_CANVAS_WIDTH), h = WebPDemuxGetI(dm, WEBP_FF_CANVAS_HEIGHT);
    WebPDemuxDelete(dm);
    OC_TRY(oc_image_check_limits(name, w, h, lim));
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&data, &opt);
    if (!dec)
        return oc_err(OC_ERR_FORMAT, "%s: corrupt or truncated WebP", name);
    uint8_t *rgba;
    int ts;
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts)) {
        WebPAnimDecoderDelete(dec);
        return oc_err(OC_ERR_FORMAT, "%s: cannot decode this WebP (corrupt or truncated?)",
                      name);
    }
    oc_image *img = NULL;
    oc_status s = oc_image_alloc(w, h, &img);
    if (s == OC_OK) {
        size_t px = (size_t)w * h;
        for (size_t i = 0; i < px; i++)
            memcpy(img->rgb + 3 * i, rgba + 4 * i, 3);
    }
    WebPAnimDecoderDelete(dec);
    if (s != OC_OK)
        return s;
    *orientation = exif_orientation(&data);
    *out = img;
    return OC_OK;
}
