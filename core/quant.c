/* Weight formats made at load: BF16 (round to nearest even) and llama.cpp's Q8_0. */
#include <math.h>
#include <string.h>

#include "kernels.h"

void oc_quantize_q8_0(uint8_t *dst, const float *src, size_t n) {
    for (size_t b = 0; b < n / OC_Q8_BLOCK; b++) {
        const float *x = src + b * OC_Q8_BLOCK;
        uint8_t *blk = dst + b * OC_Q8_BYTES;
        float amax = 0;
        for (size_t i = 0; i < OC_Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        /* as llama.cpp: the scale is rounded to F16 for storage, the quants use the
         * unrounded one */
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t dh = oc_f32_to_f16(d);
        memcpy(blk, &dh, 2);
        for (size_t i = 0; i < OC_Q8_BLOCK; i++)
            blk[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

void oc_convert_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = oc_f32_to_bf16(src[i]);
}
