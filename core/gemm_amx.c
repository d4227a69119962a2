/* BF16 products on AMX tiles (Intel Sapphire Rapids and later): out (T, N) = x (T, K) @
 * w^T for BF16 weights, x rounded to BF16. A C block of 32 x 32 is four 16 x 16 F32
 * tiles; per step of 32 k, two tiles of x's rows (read in place from the rounded copy)
 * and two of the weight panel (pairs of k per column, the layout TDPBF16PS wants) are
 * loaded and multiplied. Compiled with AMX flags; only called when oc_cpu() has AMX. */
#include <immintrin.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"

#define TM 32         /* rows of a C block: two tiles */
#define TN 32         /* columns of a C block (one panel): two tiles */
#define TK 32         /* k per step: one tile row of 32 BF16 */
#define PANELS_PER_TASK 4

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

typedef struct {
    const oc_kern *kr;
    float *out;
    size_t ldo;
    const float *inp;
    size_t ldi;
    const uint16_t *w;
    size_t M, N, K, Mp, Kp, panels;
    uint16_t *a;        /* (Mp, Kp) x rounded to BF16, zero-padded */
    uint32_t *bp;       /* (panels, Kp / 2, TN) weight pairs, zero-padded */
    float alpha, beta;
    int mode;
} amx_job;

static void round_rows(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const amx_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        uint16_t *row = j->a + i * j->Kp;
        size_t done = 0;
        if (i < j->M) {
            size_t even = j->K & ~(size_t)1;
            j->kr->to_bf16_pairs((uint32_t *)(void *)row, j->inp + i * j->ldi, even);
            if (even < j->K)
                row[even] = oc_f32_to_bf16(j->inp[i * j->ldi + even]);
            done = j->K;
        }
        memset(row + done, 0, (j->Kp - done) * sizeof(uint16_t));
    }
}

/* Panel p: bp[kp][c] = (w[p*TN + c][2kp], w[..][2kp + 1]), zero past N or K. */
static void pack_panel(void *ctx, size_t p, int thread) {
    (void)thread;
    const amx_job *j = ctx;
    uint32_t *dst = j->bp + p * (j->Kp / 2) * TN;
    size_t c0 = p * TN, n = j->N - c0 < TN ? j->N - c0 : TN, pairs = j->K / 2;
    if (j->K % 2 == 0 && (uintptr_t)j->w % 4 == 0) {
        /* the rows as 32-bit pairs: the F32 transposing packer moves them */
        for (size_t k0 = 0; k0 < pairs; k0 += 256) {
            size_t kc = pairs - k0 < 256 ? pairs - k0 : 256;
            j->kr->pack_bt((float *)(void *)(dst + k0 * TN), j->w, OC_DT_F32, j->K / 2, c0, n,
                           k0, kc, TN);
        }
    } else {
        for (size_t kp = 0; kp < pairs; kp++)
            for (size_t c = 0; c < TN; c++) {
                const uint16_t *row = j->w + (c0 + c) * j->K;
                dst[kp * TN + c] = c < n ? (uint32_t)row[2 * kp] | (uint32_t)row[2 * kp + 1] << 16
                                         : 0;
            }
    }
    for (size_t kp = pairs; kp < j->Kp / 2; kp++) /* the odd last k, then zero padding */
        for (size_t c = 0; c < TN; c++)
            dst[kp * TN + c] = kp == pairs && j->K % 2 && c < n
                                   ? (uint32_t)j->w[(c0 + c) * j->K + j->K - 1]
                                   : 0;
}

static void store_block(const amx_job *j, const float *acc, size_t i0, size_t c0) {
    size_t m = j->M - i0 < TM ? j->M - i0 : TM, n = j->N - c0 < TN ? j->N - c0 : TN;
    for (size_t i = 0; i < m; i++)
        for (size_t c = 0; c < n; c++) {
            float v = j->alpha * acc[i * TN + c], *o = j->out + (i0 + i) * j->ldo + c0 + c;
            *o = j->mode == OC_UK_SET ? v : j->mode == OC_UK_SCALE ? v + j->beta * *o : *o + v;
        }
}

static void compute(void *ctx, size_t t, int thread) {
    (void)thread;
    const amx_job *j = ctx;
    size_t n_groups = (j->panels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    size_t rb = t / n_groups, p0 = t % n_groups * PANELS_PER_TASK;
    size_t p1 = p0 + PANELS_PER_TASK > j->panels ? j->panels : p0 + PANELS_PER_TASK;
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
    size_t i0 = rb * TM, lda = j->Kp * sizeof(uint16_t);
    const uint16_t *a0 = j->a + i0 * j->Kp, *a1 = a0 + 16 * j->Kp;
    _Alignas(64) float acc[TM * TN];
    for (size_t p = p0; p < p1; p++) {
        const uint32_t *b = j->bp + p * (j->Kp / 2) * TN;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (size_t k = 0; k < j->Kp; k += TK) {
            const uint32_t *bk = b + (k / 2) * TN;
            _tile_loadd(4, a0 + k, lda);
            _tile_loadd(5, a1 + k, lda);
            _tile_loadd(6, bk, TN * 4);
            _tile_loadd(7, bk + 16, TN * 4);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, acc, TN * 4);
        _tile_stored(1, acc + 16, TN * 4);
        _tile_stored(2, acc + 16 * TN, TN * 4);
        _tile_stored(3, acc + 16 * TN + 16, TN * 4);
        store_block(j, acc, i0, p * TN);
    }
    _tile_release();
}

int oc_gemm_bf16_amx(oc_exec *ex, int thread, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const uint16_t *W, float beta, float *C,
                     size_t ldc) {
    if (!oc_cpu()->amx)
        return 0;
    amx_job j = {.kr = oc_kern_get(), .out = C, .ldo = ldc, .inp = A, .ldi = lda, .w = W,
                 .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                 .mode = beta != 0.0f ? OC_UK_SCALE : OC_UK_SET};
    j.Mp = (M + TM - 1) / TM * TM;
    j.Kp = (K + TK - 1) / TK * TK;
    j.panels = (N + TN - 1) / TN;
    j.a = oc_exec_buf(ex, thread, OC_BUF_QUANT, j.Mp * j.Kp * sizeof(uint16_t));
    j.bp = oc_exec_buf(ex, thread, OC_BUF_PACK_B, j.panels * (j.Kp / 2) * TN * 4);
    if (!j.a || !j.bp)
        return 0;
    oc_pool_for(ex->pool, j.Mp, 16, round_rows, &j);
    oc_pool_run(ex->pool, j.panels, pack_panel, &j);
    size_t n_groups = (j.panels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    oc_pool_run(ex->pool, j.Mp / TM * n_groups, compute, &j);
    return 1;
}
