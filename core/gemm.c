/* Matrix products: the packed GEMM (batched rows: encoder, prefill, training) and the
 * GEMV path (one to four rows: decoding), over the per-ISA microkernels of kern.h.
 *
 * GEMM: op(B) is packed into micro-panels of NR columns, k-major, in column blocks of at
 * most NC_BYTES that the threads share; op(A) is read in place by the microkernel (MR
 * rows of A, or MR consecutive values of each row of A when transposed).
 * The tiles of C (MC rows x NT columns) are the tasks. Each element of C sums its k in
 * the same order (chunks of KC, then k within) whatever the tiling or the threads, so
 * the result is the same bits on any thread count. */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "kern.h"
#include "kernels.h"

#define KC 256 /* <= OC_UKR_MAX_KC */
#define MC_PANELS 16         /* MC = 16 * MR rows per tile */
#define NT_PANELS 4          /* NT = 4 * NR columns per tile */
#define NC_BYTES (8u << 20)  /* packed B per column block */

static const oc_kern *kern_table(oc_isa isa) {
    switch (isa) {
    case OC_ISA_AVX512:
        return &oc_kern_avx512;
    case OC_ISA_AVX2:
        return &oc_kern_avx2;
    default:
        return &oc_kern_ref;
    }
}

const oc_kern *oc_kern_get(void) {
    return kern_table(oc_cpu()->isa);
}

/* ---- packing ------------------------------------------------------------------------- */

typedef struct {
    const oc_kern *kr;
    int ta, tb;
    size_t M, N, K;
    float alpha, beta;
    const float *A;
    size_t lda;
    const void *B;
    oc_dtype bdt;
    size_t ldb;
    float *C;
    size_t ldc;
    float *bp;        /* packed B block: (ceil(nc/NR)) panels of K x NR */
    size_t j0, nc;    /* the column block */
    size_t a_panels, b_panels, n_tiles_n;  /* a_panels: groups of MR rows of C */
    oc_sgemm_ukr ukr; /* F32, or BF16 pairs (A, B and K in pairs) */
} gemm_job;

/* op(B)[k][j] as a float, any dtype (not F32 only when tb: a weight). */
static float at_b(const gemm_job *g, size_t k, size_t j) {
    if (g->bdt != OC_DT_F32) {
        float v;
        oc_kern_ref.pack_bt(&v, g->B, g->bdt, g->ldb, j, 1, k, 1, 1);
        return v;
    }
    return ((const float *)g->B)[g->tb ? j * g->ldb + k : k * g->ldb + j];
}

void oc_pack_b_panel(const oc_kern *kr, float *bp, const float *B, size_t ldb, int tb,
                     size_t K, size_t j, size_t n) {
    size_t NR = kr->nr;
    if (tb) {
        for (size_t k0 = 0; k0 < K; k0 += KC) {
            size_t kc = K - k0 < KC ? K - k0 : KC;
            kr->pack_bt(bp + k0 * NR, B, OC_DT_F32, ldb, j, n, k0, kc, NR);
        }
        return;
    }
    (kr->pack_bn ? kr->pack_bn : oc_kern_ref.pack_bn)(bp, B, ldb, j, n, K, NR);
}

/* B panel q of the column block: bp[k*NR + j] = op(B)[k][j0 + q*NR + j], columns past
 * the block zero. */
static void pack_b_panel(const gemm_job *g, size_t q, float *bp) {
    size_t NR = g->kr->nr, jq = g->j0 + q * NR, rem = g->j0 + g->nc - jq;
    size_t n = rem < NR ? rem : NR;
    if (g->tb && g->bdt != OC_DT_F32) { /* F16/BF16/Q8_0 weights: converted while packed */
        for (size_t k0 = 0; k0 < g->K; k0 += KC) {
            size_t kc = g->K - k0 < KC ? g->K - k0 : KC;
            g->kr->pack_bt(bp + k0 * NR, g->B, g->bdt, g->ldb, jq, n, k0, kc, NR);
        }
        return;
    }
    oc_pack_b_panel(g->kr, bp, g->B, g->ldb, g->tb, g->K, jq, n);
}

static void pack_task(void *ctx, size_t t, int thread) {
    (void)thread;
    gemm_job *g = ctx;
    pack_b_panel(g, t, g->bp + t * g->K * g->kr->nr);
}

/* ---- compute --------------------------------------------------------------------------- */

void oc_ukr_tile(const oc_kern *kr, oc_sgemm_ukr ukr, size_t kc, const float *a, size_t lda,
                 size_t astep, size_t m, const float *bp, size_t n, float *c, size_t ldc,
                 float alpha, float beta, int mode) {
    size_t MR = kr->mr, NR = kr->nr;
    _Alignas(64) float ap[OC_UKR_MAX_MR * OC_UKR_MAX_KC];
    if (m < MR && !(lda == 1 && astep == MR)) {
        /* A read in place (not a packed panel): the missing rows must not be read. The
         * 32-bit elements are copied as bytes: they may hold BF16 pairs, not floats. */
        for (size_t k = 0; k < kc; k++)
            for (size_t i = 0; i < MR; i++) {
                if (i < m)
                    memcpy(ap + k * MR + i, a + i * lda + k * astep, 4);
                else
                    ap[k * MR + i] = 0.0f;
            }
        a = ap;
        lda = 1;
        astep = MR;
    }
    if (m == MR && n == NR) {
        ukr(kc, a, lda, astep, bp, c, ldc, alpha, beta, mode);
        return;
    }
    /* an edge tile: through a full-size buffer */
    _Alignas(64) float buf[OC_UKR_MAX_MR * OC_UKR_MAX_NR];
    ukr(kc, a, lda, astep, bp, buf, NR, 1.0f, 0.0f, OC_UK_SET);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float v = alpha * buf[i * NR + j], *o = c + i * ldc + j;
            *o = mode == OC_UK_SET ? v : mode == OC_UK_SCALE ? v + beta * *o : *o + v;
        }
}

static void compute_task(void *ctx, size_t t, int thread) {
    (void)thread;
    const gemm_job *g = ctx;
    size_t MR = g->kr->mr, NR = g->kr->nr;
    size_t tm = t / g->n_tiles_n, tn = t % g->n_tiles_n;
    size_t p0 = tm * MC_PANELS, p1 = p0 + MC_PANELS;
    size_t q0 = tn * NT_PANELS, q1 = q0 + NT_PANELS;
    if (p1 > g->a_panels)
        p1 = g->a_panels;
    if (q1 > g->b_panels)
        q1 = g->b_panels;
    int mode0 = g->beta != 0.0f ? OC_UK_SCALE : OC_UK_SET;
    for (size_t k0 = 0; k0 < g->K; k0 += KC) {
        size_t kc = g->K - k0 < KC ? g->K - k0 : KC;
        for (size_t q = q0; q < q1; q++) {
            size_t j = g->j0 + q * NR, n = g->j0 + g->nc - j < NR ? g->j0 + g->nc - j : NR;
            const float *bp = g->bp + q * g->K * NR + k0 * NR;
            for (size_t p = p0; p < p1; p++) {
                size_t i0 = p * MR, m = g->M - i0 < MR ? g->M - i0 : MR;
                /* op(A) is read in place: rows of A, or (transposed) runs of MR in A's
                 * rows */
                const float *a = g->ta ? g->A + k0 * g->lda + i0 : g->A + i0 * g->lda + k0;
                oc_ukr_tile(g->kr, g->ukr, kc, a, g->ta ? 1 : g->lda, g->ta ? g->lda : 1, m, bp, n,
                            g->C + i0 * g->ldc + j, g->ldc, g->alpha, g->beta,
                            k0 == 0 ? mode0 : OC_UK_ADD);
            }
        }
    }
}

/* Without scratch: one element at a time. */
static void gemm_unpacked(const gemm_job *g) {
    for (size_t i = 0; i < g->M; i++)
        for (size_t j = 0; j < g->N; j++) {
            float s = 0;
            for (size_t k = 0; k < g->K; k++)
                s += (g->ta ? g->A[k * g->lda + i] : g->A[i * g->lda + k]) * at_b(g, k, j);
            float *o = g->C + i * g->ldc + j;
            *o = g->alpha * s + (g->beta != 0.0f ? g->beta * *o : 0.0f);
        }
}

static int current_thread(void);

/* CPUs without AVX2: OpenBLAS, single-threaded, on row blocks that the pool shares (the
 * blocks depend on the shape only). It is loaded on first use, so that elsewhere its
 * thread pool never starts beside ours; without it, the plain C kernels run. */
#define BLAS_ROWS 64
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 }; /* CBLAS's constants */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
static sgemm_fn blas_sgemm;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void) {
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (set_threads)
        set_threads(1);
    blas_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
}

static void blas_task(void *ctx, size_t t, int thread) {
    (void)thread;
    const gemm_job *g = ctx;
    size_t i0 = t * BLAS_ROWS, m = g->M - i0 < BLAS_ROWS ? g->M - i0 : BLAS_ROWS;
    blas_sgemm(ROW_MAJOR, g->ta ? TRANS : NO_TRANS, g->tb ? TRANS : NO_TRANS, (int)m,
               (int)g->N, (int)g->K, g->alpha, g->ta ? g->A + i0 : g->A + i0 * g->lda,
               (int)g->lda, g->B, (int)g->ldb, g->beta, g->C + i0 * g->ldc, (int)g->ldc);
}

typedef struct {
    const oc_kern *kr;
    uint32_t *dst;
    const float *src;
    size_t lds, K;
} pairs_job;

static void pairs_rows(void *ctx, size_t i0, size_t i1, int thread) {
    (void)thread;
    const pairs_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        j->kr->to_bf16_pairs(j->dst + i * (j->K / 2), j->src + i * j->lds, j->K);
}

/* BF16 products: A (M, K) rounded to BF16 pairs, B's BF16 rows read as pairs, then the
 * F32 driver on 32-bit elements with the BF16 microkernel. 0 when the CPU, the shape or
 * the memory do not allow it. */
static int bf16_operands(oc_exec *ex, int th, gemm_job *g) {
    const oc_kern *kr = g->kr;
    if (!kr->sgemm_bf16 || !oc_cpu()->avx512_bf16 || g->ta || !g->tb ||
        g->bdt != OC_DT_BF16 || g->K % 2 || g->ldb % 2 || (uintptr_t)g->B % 4)
        return 0;
    uint32_t *a2 = oc_exec_buf(ex, th, OC_BUF_QUANT, g->M * (g->K / 2) * sizeof(uint32_t));
    if (!a2)
        return 0;
    pairs_job pj = {kr, a2, g->A, g->lda, g->K};
    oc_pool_for(ex->pool, g->M, 16, pairs_rows, &pj);
    g->A = (const float *)(const void *)a2;
    g->lda = g->K / 2;
    g->K /= 2;
    g->ldb /= 2;
    g->bdt = OC_DT_F32; /* pairs move as 32-bit elements */
    g->ukr = kr->sgemm_bf16;
    return 1;
}

/* C (M, N) = alpha op(A) op(B) + beta C with B of dtype bdt (F32, or F16/BF16 when tb);
 * bf16: BF16 B multiplies A rounded to BF16. */
static void gemm_any(oc_exec *ex, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const void *B, oc_dtype bdt, size_t ldb,
                     float beta, float *C, size_t ldc, int bf16) {
    if (M == 0 || N == 0)
        return;
    const oc_kern *kr = oc_kern_get();
    size_t MR = kr->mr, NR = kr->nr;
    gemm_job g = {.kr = kr, .ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha,
                  .beta = beta, .A = A, .lda = lda, .B = B, .bdt = bdt, .ldb = ldb, .C = C,
                  .ldc = ldc, .ukr = kr->sgemm};
    int th = current_thread();
    oc_exec_add_flops(ex, th, 2.0 * (double)M * (double)N * (double)K);
    if (bf16 && K > 0 && !ta && tb && bdt == OC_DT_BF16 &&
        oc_gemm_bf16_amx(ex, th, M, N, K, alpha, A, lda, B, beta, C, ldc))
        return;
    if (bf16 && K > 0 && bf16_operands(ex, th, &g))
        K = g.K;
    if (K == 0) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++)
                C[i * ldc + j] = beta != 0.0f ? beta * C[i * ldc + j] : 0.0f;
        return;
    }
    if (kr->isa == OC_ISA_SCALAR && !oc_cpu()->reference && bdt == OC_DT_F32 &&
        M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX) {
        pthread_once(&blas_once, blas_load);
        if (blas_sgemm) {
            oc_pool_run(ex->pool, (M + BLAS_ROWS - 1) / BLAS_ROWS, blas_task, &g);
            return;
        }
    }
    g.a_panels = (M + MR - 1) / MR;
    size_t nc = NC_BYTES / (K * sizeof(float)) / NR * NR;
    nc = nc < NR ? NR : nc;
    nc = nc > N ? N : nc;
    size_t b_bytes = (nc + NR - 1) / NR * NR * K * sizeof(float);
    g.bp = oc_exec_buf(ex, th, OC_BUF_PACK_B, b_bytes);
    if (!g.bp) {
        gemm_unpacked(&g);
        return;
    }
    for (size_t j0 = 0; j0 < N; j0 += nc) {
        g.j0 = j0;
        g.nc = N - j0 < nc ? N - j0 : nc;
        g.b_panels = (g.nc + NR - 1) / NR;
        oc_pool_run(ex->pool, g.b_panels, pack_task, &g);
        g.n_tiles_n = (g.b_panels + NT_PANELS - 1) / NT_PANELS;
        size_t n_tiles_m = (g.a_panels + MC_PANELS - 1) / MC_PANELS;
        oc_pool_run(ex->pool, n_tiles_m * g.n_tiles_n, compute_task, &g);
    }
}

void oc_gemm(oc_exec *ex, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
             const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
             size_t ldc) {
    gemm_any(ex, ta, tb, M, N, K, alpha, A, lda, B, OC_DT_F32, ldb, beta, C, ldc, 0);
}

void oc_gemm_weight(oc_exec *ex, float *out, const float *inp, const oc_weight *w, size_t T) {
    size_t OC = (size_t)w->rows, IC = (size_t)w->cols;
    gemm_any(ex, 0, 1, T, OC, IC, 1.0f, inp, IC, w->data, w->dtype, IC, 0.0f, out, OC,
             w->bf16_products);
}

/* Scratch is per thread: a product started inside a pool task (a nested one) uses that
 * thread's buffers. */
static int current_thread(void) {
    int t = oc_pool_current_thread();
    return t < 0 ? 0 : t;
}
