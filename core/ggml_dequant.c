/* ggml's block formats to floats, as ggml-quants.c's dequantize_row_* computes them (the
 * same float operations in the same order, so the values are the same bits):
 *   Q4_0  {f16 d; u8 qs[16]}                     x = (q - 8) * d
 *   Q4_1  {f16 d, m; u8 qs[16]}                  x = q * d + m
 *   Q5_0  {f16 d; u8 qh[4]; u8 qs[16]}           x = (q5 - 16) * d
 *   Q5_1  {f16 d, m; u8 qh[4]; u8 qs[16]}        x = q5 * d + m
 *   Q8_0  {f16 d; i8 qs[32]}                     x = q * d
 *   Q4_K  {f16 d, dmin; u8 scales[12]; u8 qs[128]}            256 values, 8 sub-blocks
 *   Q5_K  {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}  of 32 with 6-bit scale/min
 *   Q6_K  {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}        16 sub-blocks of 16
 * In the 32-value formats the low nibbles hold values 0..15 and the high nibbles 16..31. */
#include <string.h>

#include "error.h"
#include "gguf.h"
#include "safetensors.h"

static float f16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return oc_f16_to_f32(h);
}

static void q4_0(const unsigned char *b, float *y) {
    float d = f16(b);
    const unsigned char *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void q4_1(const unsigned char *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    const unsigned char *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void q5(const unsigned char *b, float *y, int has_min) {
    float d = f16(b), m = has_min ? f16(b + 2) : 0;
    const unsigned char *hp = b + (has_min ? 4 : 2), *qs = hp + 4;
    uint32_t qh;
    memcpy(&qh, hp, 4);
    for (int j = 0; j < 16; j++) {
        int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
        int x0 = (qs[j] & 0x0F) | h0, x1 = (qs[j] >> 4) | h1;
        if (has_min) {
            y[j] = (float)x0 * d + m;
            y[j + 16] = (float)x1 * d + m;
        } else {
            y[j] = (float)(x0 - 16) * d;
            y[j + 16] = (float)(x1 - 16) * d;
        }
    }
}

static void q8_0(const unsigned char *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* The 6-bit scale and min of sub-block j (0..7) packed in 12 bytes (get_scale_min_k4). */
static void scale_min_k4(int j, const unsigned char *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void q4_k(const unsigned char *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const unsigned char *scales = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        int sc, m;
        scale_min_k4(is, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(is + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

static void q5_k(const unsigned char *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const unsigned char *scales = b + 4, *qh = b + 16, *ql = b + 48;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        int sc, m;
        scale_min_k4(is, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(is + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void q6_k(const unsigned char *b, float *y) {
    const unsigned char *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

typedef void (*block_fn)(const unsigned char *b, float *y);

static void q5_0(const unsigned char *b, float *y) { q5(b, y, 0); }
static void q5_1(const unsigned char *b, float *y) { q5(b, y, 1); }

static block_fn block_decoder(uint32_t type) {
    switch (type) {
    case OC_GGML_Q4_0: return q4_0;
    case OC_GGML_Q4_1: return q4_1;
    case OC_GGML_Q5_0: return q5_0;
    case OC_GGML_Q5_1: return q5_1;
    case OC_GGML_Q8_0: return q8_0;
    case OC_GGML_Q4_K: return q4_k;
    case OC_GGML_Q5_K: return q5_k;
    case OC_GGML_Q6_K: return q6_k;
    default: return NULL;
    }
}

int oc_ggml_can_dequantize(uint32_t type) {
    return type == OC_GGML_F32 || type == OC_GGML_F16 || type == OC_GGML_BF16 ||
           block_decoder(type) != NULL;
}

oc_status oc_ggml_dequantize(uint32_t type, const void *src, float *dst, size_t n) {
    const unsigned char *p = src;
    if (type == OC_GGML_F32) {
        memcpy(dst, p, n * sizeof(float));
        return OC_OK;
    }
    if (type == OC_GGML_F16 || type == OC_GGML_BF16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = type == OC_GGML_F16 ? oc_f16_to_f32(h) : oc_bf16_to_f32(h);
        }
        return OC_OK;
    }
    block_fn fn = block_decoder(type);
    uint32_t be = oc_ggml_block_elems(type), bb = oc_ggml_block_bytes(type);
    if (!fn)
        return oc_err(OC_ERR_UNSUPPORTED, "ggml type %s cannot be converted (F32, F16, BF16, "
                      "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K can)",
                      oc_ggml_type_name(type));
    if (n % be)
        return oc_err(OC_ERR_INTERNAL, "ggml: %zu values are not whole %s blocks", n,
                      oc_ggml_type_name(type));
    for (size_t k = 0; k < n / be; k++)
        fn(p + k * bb, dst + k * be);
    return OC_OK;
}
