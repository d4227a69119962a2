/* Qwen2.5-VL's vision tower (Qwen2_5_VisionTransformerPretrainedModel), for one image.
 *
 * The processor's patches come in groups of m x m (one group per merged token, groups
 * row-major over the merged grid). The tower reorders the groups so that the windows of
 * window_size pixels are contiguous (windows row-major, groups row-major inside each, the
 * windows at the right and bottom edges smaller), runs every block in that order (window
 * blocks attend within their window, full blocks over the image), merges each group with
 * the MLP and puts the merged tokens back in the image's order. RMSNorm eps is 1e-6, as
 * transformers hard-codes it. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "qwen_vit.h"

#define NORM_EPS 1e-6f

typedef struct {
    float *x, *h;            /* (N, C) */
    float *q, *k, *v, *att;  /* (N, C) */
    float *gate, *up;        /* (N, I) */
    float *cos_t, *sin_t;    /* (N, D/2) */
    float *merged;           /* (N / m^2, out_hidden) in window order */
    size_t *lo, *hi;         /* (N) keys of each query in the window blocks */
    size_t *order;           /* (N / m^2) group of the image at each window-order slot */
    int32_t *pos;            /* (2, N) row and column of each patch, window order */
} qvit_scratch;

static size_t floats_of(const oc_qvit_config *c, size_t N) {
    size_t C = c->hidden, I = c->intermediate, D = C / c->heads, M = N / (c->merge * c->merge);
    size_t n = N * (6 * C + 2 * I + D) + M * c->out_hidden;
    return n + n % 2; /* the size_t arrays after it stay aligned */
}

size_t oc_qvit_scratch_bytes(const oc_qvit_config *c, uint32_t grid_h, uint32_t grid_w) {
    size_t N = (size_t)grid_h * grid_w, M = N / (c->merge * c->merge);
    return floats_of(c, N) * sizeof(float) + (2 * N + M) * sizeof(size_t) +
           2 * N * sizeof(int32_t);
}

/* get_window_index: the order of the merged groups (order, (M)) and the window of each
 * patch in that order (lo, hi: the window's first and past-last patch). */
static void window_order(const oc_qvit_config *c, uint32_t gh, uint32_t gw, size_t *order,
                         size_t *lo, size_t *hi) {
    size_t m = c->merge, mm = m * m, lh = gh / m, lw = gw / m;
    size_t ws = c->window / c->merge / c->patch; /* merged groups per window side */
    size_t k = 0;
    for (size_t wy = 0; wy * ws < lh; wy++)
        for (size_t wx = 0; wx * ws < lw; wx++) {
            size_t first = k;
            for (size_t y = wy * ws; y < (wy + 1) * ws && y < lh; y++)
                for (size_t x = wx * ws; x < (wx + 1) * ws && x < lw; x++)
                    order[k++] = y * lw + x;
            for (size_t i = first * mm; i < k * mm; i++) {
                lo[i] = first * mm;
                hi[i] = k * mm;
            }
        }
}

/* rot_pos_emb's positions of the patches in window order: pos[0] rows, pos[1] columns. */
static void positions(const oc_qvit_config *c, uint32_t gw, const size_t *order, size_t M,
                      int32_t *pos) {
    size_t m = c->merge, mm = m * m, lw = gw / m, N = M * mm;
    for (size_t i = 0; i < N; i++) {
        size_t g = order[i / mm], j = i % mm;
        pos[i] = (int32_t)(g / lw * m + j / m);
        pos[N + i] = (int32_t)(g % lw * m + j % m);
    }
}

/* x (N, C) += attn(norm1(x)); x += mlp(norm2(x)) */
static void block(oc_exec *ex, const oc_qvit_config *c, const oc_qvit_block *B, int full,
                  qvit_scratch *s, size_t N) {
    size_t C = c->hidden, H = c->heads, D = C / H;
    oc_rmsnorm(ex, s->h, NULL, s->x, B->norm1, N, C, NORM_EPS);
    oc_matmul(ex, s->q, s->h, &B->q, B->q_b, N);
    oc_matmul(ex, s->k, s->h, &B->k, B->k_b, N);
    oc_matmul(ex, s->v, s->h, &B->v, B->v_b, N);
    oc_rope_apply(ex, s->q, s->cos_t, s->sin_t, N, H, D, 1.0f);
    oc_rope_apply(ex, s->k, s->cos_t, s->sin_t, N, H, D, 1.0f);
    oc_attn_shape sh = {.T = N, .S = N, .H = H, .KVH = H, .D = D, .kv_stride = C,
                        .kv_lo = full ? NULL : s->lo, .kv_hi = full ? NULL : s->hi};
    oc_attention(ex, s->att, NULL, s->q, s->k, s->v, &sh);
    oc_matmul(ex, s->h, s->att, &B->proj, B->proj_b, N);
    oc_add(ex, s->x, s->h, N * C);
    oc_rmsnorm(ex, s->h, NULL, s->x, B->norm2, N, C, NORM_EPS);
    oc_matmul(ex, s->gate, s->h, &B->gate, B->gate_b, N);
    oc_matmul(ex, s->up, s->h, &B->up, B->up_b, N);
    oc_glu(ex, s->gate, s->gate, s->up, N * c->intermediate, c->act);
    oc_matmul(ex, s->h, s->gate, &B->down, B->down_b, N);
    oc_add(ex, s->x, s->h, N * C);
}

oc_status oc_qvit_forward(oc_exec *ex, float *out, const oc_qvit_config *c,
                          const oc_qvit_weights *w, const float *pixels, uint32_t grid_h,
                          uint32_t grid_w) {
    size_t m = c->merge, mm = m * m;
    if (grid_h == 0 || grid_w == 0 || grid_h % m || grid_w % m)
        return oc_err(OC_ERR_INVALID_ARG, "vision: a %u x %u patch grid is not a multiple of "
                      "the merge size %zu", grid_w, grid_h, m);
    size_t N = (size_t)grid_h * grid_w, M = N / mm, C = c->hidden, D = C / c->heads;
    size_t I = c->intermediate, nf = floats_of(c, N);
    float *buf = oc_exec_buf(ex, 0, OC_BUF_MODEL, oc_qvit_scratch_bytes(c, grid_h, grid_w));
    if (!buf)
        return oc_err(OC_ERR_NOMEM, "out of memory for the vision tower (%zu patches)", N);
    qvit_scratch s = {.x = buf};
    s.h = s.x + N * C;
    s.q = s.h + N * C;
    s.k = s.q + N * C;
    s.v = s.k + N * C;
    s.att = s.v + N * C;
    s.gate = s.att + N * C;
    s.up = s.gate + N * I;
    s.cos_t = s.up + N * I;
    s.sin_t = s.cos_t + N * D / 2;
    s.merged = s.sin_t + N * D / 2;
    s.lo = (size_t *)(void *)(buf + nf);
    s.hi = s.lo + N;
    s.order = s.hi + N;
    s.pos = (int32_t *)(void *)(s.order + M);

    window_order(c, grid_h, grid_w, s.order, s.lo, s.hi);
    positions(c, grid_w, s.order, M, s.pos);
    /* 2D RoPE: Qwen2_5_VisionRotaryEmbedding(D/2) has D/4 frequencies, used for the row
     * and again for the column */
    size_t q4 = D / 4;
    float inv[2 * 1024];
    if (D / 2 > sizeof inv / sizeof inv[0])
        return oc_err(OC_ERR_UNSUPPORTED, "vision: head size %zu is over 2048", D);
    oc_rope_inv_freq(inv, q4, D / 2, c->rope_theta, 1.0f, c->rope_dtype);
    memcpy(inv + q4, inv, q4 * sizeof(float));
    uint32_t sections[2] = {(uint32_t)q4, (uint32_t)q4};
    oc_rope_tables_pos(s.cos_t, s.sin_t, inv, D / 2, s.pos, N, sections, 2);

    /* patch embedding in the image's order, then the groups to window order (through h) */
    oc_matmul(ex, s.h, pixels, &w->patch_w, NULL, N);
    oc_permute_groups(s.x, s.h, s.order, M, mm * C, 0);
    for (uint32_t b = 0; b < c->depth; b++)
        block(ex, c, &w->blocks[b], c->full[b], &s, N);

    /* merger: ln_q per patch, each group's m^2 patches as one row, MLP */
    oc_rmsnorm(ex, s.h, NULL, s.x, w->merger_norm, N, C, NORM_EPS);
    oc_matmul(ex, s.q, s.h, &w->mlp0, w->mlp0_b, M);
    oc_activate(ex, s.q, s.q, M * mm * C, OC_ACT_GELU);
    oc_matmul(ex, s.merged, s.q, &w->mlp2, w->mlp2_b, M);
    oc_permute_groups(out, s.merged, s.order, M, c->out_hidden, 1);
    return OC_OK;
}
