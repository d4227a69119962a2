/* The Q8_0 GEMM (prefill and encoder rows against Q8_0 weights), where the CPU has
 * AVX512-VNNI: activations quantized per block of 32 as llama.cpp quantizes them, weights
 * repacked into panels of Q8_PANEL columns (per block: 8 groups of 4 quants per column,
 * offset by 128 to unsigned bytes for vpdpbusd, then the columns' scales), and int32
 * block sums scaled into F32 by the microkernel. Each output sums its blocks in order,
 * so the bits do not depend on the threads. */
#include <string.h>

#include "kern.h"
#include "kernels.h"

#define MC_ROWS 96          /* rows of A per task (a multiple of the microkernel's 6) */
#define NT_PANELS 4         /* panels of B per task */

typedef struct {
    const oc_kern *kr;
    const oc_weight *w;
    float *out;
    const float *inp;
    size_t M, N, K, nb, Mp;
    int8_t *aq;             /* (Mp, K) quantized rows, rows past M zero */
    float *as;              /* (Mp, nb) their scales */
    int32_t *asum;          /* (Mp, nb) 128 * the sum of each block's quants */
    uint8_t *bp;            /* (panels) packed weight panels */
    size_t panels, panel_bytes, n_tiles_n;
} q8_job;

static void quant_rows(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const q8_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        int8_t *q = j->aq + i * j->K;
        float *s = j->as + i * j->nb;
        int32_t *sum = j->asum + i * j->nb;
        if (i >= j->M) {
            memset(q, 0, j->K);
            memset(s, 0, j->nb * sizeof(float));
            memset(sum, 0, j->nb * sizeof(int32_t));
            continue;
        }
        j->kr->quant_q8(q, s, j->inp + i * j->K, j->K);
        for (size_t b = 0; b < j->nb; b++) {
            int32_t t = 0;
            for (size_t k = 0; k < OC_Q8_BLOCK; k++)
                t += q[b * OC_Q8_BLOCK + k];
            sum[b] = 128 * t;
        }
    }
}

/* Panel p: columns p*Q8_PANEL ..; per block b, bytes [kq][col][4] = q + 128, then the
 * columns' scales as floats (0 past N). */
static void pack_panel(void *ctx, size_t p, int thread) {
    (void)thread;
    const q8_job *j = ctx;
    uint8_t *dst = j->bp + p * j->panel_bytes;
    size_t rb = oc_weight_row_bytes(j->w), P = OC_Q8_PANEL;
    const uint8_t *W = j->w->data;
    for (size_t b = 0; b < j->nb; b++) {
        uint8_t *qd = dst + b * (P * OC_Q8_BLOCK + P * sizeof(float));
        float *sd = (float *)(void *)(qd + P * OC_Q8_BLOCK);
        for (size_t c = 0; c < P; c++) {
            size_t col = p * P + c;
            const uint8_t *blk = col < j->N ? W + col * rb + b * OC_Q8_BYTES : NULL;
            uint16_t dh = 0;
            if (blk)
                memcpy(&dh, blk, 2);
            sd[c] = blk ? oc_f16_to_f32(dh) : 0.0f;
            for (size_t k = 0; k < OC_Q8_BLOCK; k++)
                qd[(k / 4) * P * 4 + c * 4 + k % 4] =
                    (uint8_t)((blk ? (int8_t)blk[2 + k] : 0) + 128);
        }
    }
}

static void compute(void *ctx, size_t t, int thread) {
    (void)thread;
    const q8_job *j = ctx;
    size_t MR = j->kr->q8_mr, P = OC_Q8_PANEL;
    size_t tm = t / j->n_tiles_n, tn = t % j->n_tiles_n;
    size_t i0 = tm * MC_ROWS, i1 = i0 + MC_ROWS > j->Mp ? j->Mp : i0 + MC_ROWS;
    size_t p0 = tn * NT_PANELS, p1 = p0 + NT_PANELS > j->panels ? j->panels : p0 + NT_PANELS;
    float buf[OC_UKR_MAX_MR * OC_Q8_PANEL];
    for (size_t p = p0; p < p1; p++) {
        size_t c0 = p * P, n = j->N - c0 < P ? j->N - c0 : P;
        for (size_t i = i0; i < i1; i += MR) {
            size_t m = j->M > i ? (j->M - i < MR ? j->M - i : MR) : 0;
            if (m == 0)
                break;
            int full = m == MR && n == P;
            float *c = full ? j->out + i * j->N + c0 : buf;
            j->kr->q8_gemm(j->nb, j->aq + i * j->K, j->K, j->as + i * j->nb,
                           j->asum + i * j->nb, j->nb, j->bp + p * j->panel_bytes, c,
                           full ? j->N : P);
            if (!full)
                for (size_t r = 0; r < m; r++)
                    memcpy(j->out + (i + r) * j->N + c0, buf + r * P, n * sizeof(float));
        }
    }
}

int oc_gemm_q8(oc_exec *ex, int thread, float *out, const float *inp, const oc_weight *w,
               size_t T) {
    const oc_kern *kr = oc_kern_get();
    if (!kr->q8_gemm || !oc_cpu()->avx512_vnni)
        return 0;
    size_t N = (size_t)w->rows, K = (size_t)w->cols, MR = kr->q8_mr;
    q8_job j = {.kr = kr, .w = w, .out = out, .inp = inp, .M = T, .N = N, .K = K,
                .nb = K / OC_Q8_BLOCK};
    j.Mp = (T + MR - 1) / MR * MR;
    j.panels = (N + OC_Q8_PANEL - 1) / OC_Q8_PANEL;
    j.panel_bytes = j.nb * (OC_Q8_PANEL * OC_Q8_BLOCK + OC_Q8_PANEL * sizeof(float));
    size_t a_bytes = j.Mp * K + 2 * j.Mp * j.nb * 4;
    uint8_t *abuf = oc_exec_buf(ex, thread, OC_BUF_QUANT, a_bytes + 64);
    j.bp = oc_exec_buf(ex, thread, OC_BUF_PACK_B, j.panels * j.panel_bytes);
    if (!abuf || !j.bp)
        return 0;
    j.as = (float *)(void *)abuf;
    j.asum = (int32_t *)(void *)(abuf + j.Mp * j.nb * 4);
    j.aq = (int8_t *)(abuf + 2 * j.Mp * j.nb * 4);
    oc_pool_for(ex->pool, j.Mp, 16, quant_rows, &j);
    oc_pool_run(ex->pool, j.panels, pack_panel, &j);
    j.n_tiles_n = (j.panels + NT_PANELS - 1) / NT_PANELS;
    size_t n_tiles_m = (j.Mp + MC_ROWS - 1) / MC_ROWS;
    oc_exec_add_flops(ex, thread, 2.0 * (double)T * (double)N * (double)K);
    oc_pool_run(ex->pool, n_tiles_m * j.n_tiles_n, compute, &j);
    return 1;
}
