/* Norms, activations, residual adds and rotary embeddings, shared by inference and
 * training. Rows (or runs of elements) are the tasks; each element's arithmetic is the
 * same on any thread count. Norm statistics are summed in double, as the training
 * oracle's float32 torch results are matched best that way. */
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"

/* Elements per task of the elementwise loops; below 2 tasks' worth, no threads. */
#define ELEMS_PER_TASK 16384

typedef struct {
    float *out, *mean, *rstd;
    const float *inp, *w, *b, *x2;
    size_t T, C, rows_per_task, n;
    float eps;
    int act;
    const oc_kern *kr;
} ew_job;

static size_t row_tasks(ew_job *j) {
    size_t per = ELEMS_PER_TASK / (j->C ? j->C : 1);
    j->rows_per_task = per ? per : 1;
    return (j->T + j->rows_per_task - 1) / j->rows_per_task;
}

static void span(const ew_job *j, size_t task, size_t *t0, size_t *t1) {
    *t0 = task * j->rows_per_task;
    *t1 = *t0 + j->rows_per_task > j->T ? j->T : *t0 + j->rows_per_task;
}

static void layernorm_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t t0, t1, C = j->C;
    span(j, task, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        const float *x = j->inp + t * C;
        float *y = j->out + t * C;
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++)
            m += x[i];
        m /= (double)C;
        for (size_t i = 0; i < C; i++)
            v += ((double)x[i] - m) * ((double)x[i] - m);
        v /= (double)C;
        float mf = (float)m, r = (float)(1.0 / sqrt(v + (double)j->eps));
        for (size_t i = 0; i < C; i++)
            y[i] = (x[i] - mf) * r * j->w[i] + (j->b ? j->b[i] : 0.0f);
        if (j->mean)
            j->mean[t] = mf;
        if (j->rstd)
            j->rstd[t] = r;
    }
}

void oc_layernorm(oc_exec *ex, float *out, float *mean, float *rstd, const float *inp,
                  const float *w, const float *b, size_t T, size_t C, float eps) {
    ew_job j = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .T = T,
                .C = C, .eps = eps};
    oc_pool_run(ex->pool, row_tasks(&j), layernorm_task, &j);
}

static void rmsnorm_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t t0, t1, C = j->C;
    span(j, task, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        const float *x = j->inp + t * C;
        float *y = j->out + t * C;
        double ss = 0;
        for (size_t i = 0; i < C; i++)
            ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)j->eps));
        for (size_t i = 0; i < C; i++)
            y[i] = j->w[i] * (x[i] * r);
        if (j->rstd)
            j->rstd[t] = r;
    }
}

void oc_rmsnorm(oc_exec *ex, float *out, float *rstd, const float *inp, const float *w,
                size_t T, size_t C, float eps) {
    ew_job j = {.out = out, .rstd = rstd, .inp = inp, .w = w, .T = T, .C = C, .eps = eps};
    oc_pool_run(ex->pool, row_tasks(&j), rmsnorm_task, &j);
}

/* Flat loops: n elements as T runs of ELEMS_PER_TASK. */
static size_t flat_tasks(ew_job *j) {
    j->C = 1;
    j->T = j->n;
    j->rows_per_task = ELEMS_PER_TASK;
    return (j->n + ELEMS_PER_TASK - 1) / ELEMS_PER_TASK;
}

static void act_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    j->kr->act(j->out + i0, j->inp + i0, i1 - i0, j->act);
}

void oc_activate(oc_exec *ex, float *out, const float *inp, size_t n, oc_act act) {
    ew_job j = {.out = out, .inp = inp, .n = n, .act = (int)act, .kr = oc_kern_get()};
    oc_pool_run(ex->pool, flat_tasks(&j), act_task, &j);
}

static void swiglu_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    j->kr->swiglu(j->out + i0, j->inp + i0, j->x2 + i0, i1 - i0);
}

void oc_swiglu(oc_exec *ex, float *out, const float *gate, const float *up, size_t n) {
    ew_job j = {.out = out, .inp = gate, .x2 = up, .n = n, .kr = oc_kern_get()};
    oc_pool_run(ex->pool, flat_tasks(&j), swiglu_task, &j);
}

static void add_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        j->out[i] += j->inp[i];
}

void oc_add(oc_exec *ex, float *x, const float *y, size_t n) {
    ew_job j = {.out = x, .inp = y, .n = n};
    oc_pool_run(ex->pool, flat_tasks(&j), add_task, &j);
}

static void add_rows_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t t0, t1;
    span(j, task, &t0, &t1);
    for (size_t t = t0; t < t1; t++)
        for (size_t i = 0; i < j->C; i++)
            j->out[t * j->C + i] += j->inp[i];
}

static void glu_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    j->kr->act(j->out + i0, j->inp + i0, i1 - i0, j->act);
    for (size_t i = i0; i < i1; i++)
        j->out[i] *= j->x2[i];
}

void oc_glu(oc_exec *ex, float *out, const float *gate, const float *up, size_t n, oc_act act) {
    if (act == OC_ACT_SILU) {
        oc_swiglu(ex, out, gate, up, n);
        return;
    }
    ew_job j = {.out = out, .inp = gate, .x2 = up, .n = n, .act = (int)act,
                .kr = oc_kern_get()};
    oc_pool_run(ex->pool, flat_tasks(&j), glu_task, &j);
}

static void scale_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    j->kr->scale(j->out + i0, j->eps, i1 - i0);
}

void oc_scale(oc_exec *ex, float *x, float a, size_t n) {
    ew_job j = {.out = x, .n = n, .eps = a, .kr = oc_kern_get()};
    oc_pool_run(ex->pool, flat_tasks(&j), scale_task, &j);
}

static void softcap_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const ew_job *j = ctx;
    size_t i0, i1;
    span(j, task, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        j->out[i] = tanhf(j->out[i] / j->eps) * j->eps;
}

void oc_softcap(oc_exec *ex, float *x, size_t n, float cap) {
    ew_job j = {.out = x, .n = n, .eps = cap};
    oc_pool_run(ex->pool, flat_tasks(&j), softcap_task, &j);
}

void oc_add_rows(oc_exec *ex, float *x, const float *b, size_t T, size_t C) {
    ew_job j = {.out = x, .inp = b, .T = T, .C = C};
    oc_pool_run(ex->pool, row_tasks(&j), add_rows_task, &j);
}

/* Frequency i of RoPE over D dimensions, as transformers computes it in float32. */
static float inv_freq_at(size_t i, size_t D, float theta, float factor, oc_dtype dtype) {
    float f = 1.0f / powf(theta, (float)(2 * i) / (float)D);
    if (factor != 1.0f)
        f /= factor;
    /* transformers keeps inv_freq as a buffer that follows the model's dtype, so a
     * model loaded in BF16/F16 rotates by rounded frequencies. */
    if (dtype == OC_DT_BF16)
        f = oc_bf16_to_f32(oc_f32_to_bf16(f));
    else if (dtype == OC_DT_F16)
        f = oc_f16_to_f32(oc_f32_to_f16(f));
    return f;
}

void oc_rope_inv_freq(float *inv, size_t half, size_t D, float theta, float factor,
                      oc_dtype dtype) {
    for (size_t i = 0; i < half; i++)
        inv[i] = inv_freq_at(i, D, theta, factor, dtype);
}

void oc_rope_tables(float *cos_t, float *sin_t, size_t pos0, size_t n_pos, size_t D,
                    float theta, oc_dtype inv_freq_dtype) {
    size_t half = D / 2;
    for (size_t i = 0; i < half; i++) {
        float inv_freq = inv_freq_at(i, D, theta, 1.0f, inv_freq_dtype);
        for (size_t p = 0; p < n_pos; p++) {
            float ang = (float)(pos0 + p) * inv_freq;
            cos_t[p * half + i] = cosf(ang);
            sin_t[p * half + i] = sinf(ang);
        }
    }
}

void oc_rope_tables_pos(float *cos_t, float *sin_t, const float *inv, size_t half,
                        const int32_t *pos, size_t T, const uint32_t *sections,
                        size_t n_sections) {
    size_t i = 0;
    for (size_t k = 0; k < n_sections; k++)
        for (uint32_t c = 0; c < sections[k] && i < half; c++, i++)
            for (size_t t = 0; t < T; t++) {
                float ang = (float)pos[k * T + t] * inv[i];
                cos_t[t * half + i] = cosf(ang);
                sin_t[t * half + i] = sinf(ang);
            }
}

typedef struct {
    float *x;
    const float *cos_t, *sin_t;
    size_t T, H, D, rows_per_task;
    float sign;
} rope_job;

static void rope_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const rope_job *j = ctx;
    size_t half = j->D / 2, t0 = task * j->rows_per_task;
    size_t t1 = t0 + j->rows_per_task > j->T ? j->T : t0 + j->rows_per_task;
    for (size_t t = t0; t < t1; t++)
        for (size_t h = 0; h < j->H; h++) {
            float *v = j->x + (t * j->H + h) * j->D;
            const float *c = j->cos_t + t * half, *s = j->sin_t + t * half;
            for (size_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], si = j->sign * s[i];
                v[i] = a * c[i] - b * si;
                v[i + half] = b * c[i] + a * si;
            }
        }
}

void oc_rope_apply(oc_exec *ex, float *x, const float *cos_t, const float *sin_t, size_t T,
                   size_t H, size_t D, float sign) {
    size_t per = ELEMS_PER_TASK / (H * D > 0 ? H * D : 1);
    rope_job j = {x, cos_t, sin_t, T, H, D, per ? per : 1, sign};
    oc_pool_run(ex->pool, (T + j.rows_per_task - 1) / j.rows_per_task, rope_task, &j);
}

void oc_softmax(float *x, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++)
        x[i] *= inv;
}
