/* Products with weight matrices in any stored format: one to four input rows read each
 * weight row once (decoding is bound by the bytes of weights per token), more rows go
 * through the packed GEMM (converting F16/BF16 rows while packing). */
#include <string.h>

#include "kern.h"
#include "kernels.h"

/* Weight bytes per GEMV task (rows are never split). */
#define GEMV_TASK_BYTES (64u << 10)

size_t oc_weight_row_bytes(const oc_weight *w) {
    size_t C = (size_t)w->cols;
    if (w->dtype == OC_DT_Q8_0)
        return C / OC_Q8_BLOCK * OC_Q8_BYTES;
    return C * oc_dtype_size(w->dtype);
}

void oc_weight_row(float *out, const oc_weight *w, size_t r) {
    size_t C = (size_t)w->cols;
    const unsigned char *p = (const unsigned char *)w->data + r * oc_weight_row_bytes(w);
    switch (w->dtype) {
    case OC_DT_F32:
        memcpy(out, p, C * 4);
        break;
    case OC_DT_BF16:
    case OC_DT_F16:
        for (size_t i = 0; i < C; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = w->dtype == OC_DT_BF16 ? oc_bf16_to_f32(h) : oc_f16_to_f32(h);
        }
        break;
    default: /* Q8_0 */
        for (size_t b = 0; b < C / OC_Q8_BLOCK; b++) {
            const unsigned char *blk = p + b * OC_Q8_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            float d = oc_f16_to_f32(dh);
            for (size_t i = 0; i < OC_Q8_BLOCK; i++)
                out[b * OC_Q8_BLOCK + i] = d * (float)(int8_t)blk[2 + i];
        }
        break;
    }
}

typedef struct {
    const oc_kern *kr;
    float *out;
    const float *inp;
    const oc_weight *w;
    size_t T, rows_per_task;
} gemv_job;

static void gemv_task(void *ctx, size_t t, int thread) {
    (void)thread;
    const gemv_job *g = ctx;
    size_t OC = (size_t)g->w->rows, IC = (size_t)g->w->cols;
    size_t r0 = t * g->rows_per_task, r1 = r0 + g->rows_per_task;
    r1 = r1 > OC ? OC : r1;
    g->kr->gemv(g->out, OC, g->inp, IC, g->T, g->w->data, g->w->dtype, IC, IC, r0, r1);
}

static int self_thread(void) {
    int t = oc_pool_current_thread();
    return t < 0 ? 0 : t;
}

/* out (T, OC) = inp @ w^T for T <= OC_GEMV_MAX_T. */
static void gemv(oc_exec *ex, float *out, const float *inp, const oc_weight *w, size_t T) {
    size_t OC = (size_t)w->rows, IC = (size_t)w->cols;
    gemv_job g = {oc_kern_get(), out, inp, w, T, 0};
    size_t per = GEMV_TASK_BYTES / oc_weight_row_bytes(w);
    per = per < 16 ? 16 : per & ~(size_t)3;
    g.rows_per_task = per;
    oc_exec_add_flops(ex, self_thread(), 2.0 * (double)T * (double)OC * (double)IC);
    oc_pool_run(ex->pool, (OC + per - 1) / per, gemv_task, &g);
}

void oc_matmul(oc_exec *ex, float *out, const float *inp, const oc_weight *w,
               const float *bias, size_t T) {
    size_t OC = (size_t)w->rows;
    if (T <= OC_GEMV_MAX_T)
        gemv(ex, out, inp, w, T);
    else if (w->dtype != OC_DT_Q8_0 || !oc_gemm_q8(ex, self_thread(), out, inp, w, T))
        oc_gemm_weight(ex, out, inp, w, T); /* Q8_0 without VNNI: converted while packed */
    if (bias)
        oc_add_rows(ex, out, bias, T, OC);
}
