/* FLOPs of a training step from the model's shapes alone: 2*M*N*K for every matrix
 * product oc_trainer_step runs, written out layer by layer from the config and the
 * examples' lengths (tokens, tiles, labelled positions), so that the count the kernels
 * keep (oc_train_stats.flops) can be checked against it (tests/test_scaling_flops.c).
 *
 * Per example of n tokens, t tiles and R labelled positions, with the text model's
 * hidden E, heads H of head_dim D over KVH KV heads, MLP width F, L layers, vocab V, and
 * the vision tower's N patches of K = 3*p*p values, hidden C, MLP width I, heads Hv of
 * Dv, Lv layers, pixel shuffle s:
 *   text linear layers   forward 2n (E*H*D + 2*E*KVH*D + H*D*E + 3*E*F) per layer;
 *                        backward twice that (input and weight gradients)
 *   causal attention     forward: blocks of ATTN_BQ queries, each against every key up
 *                        to its last query (the kernel's blocks), 4*D*rows*keys per head;
 *                        backward 8*n*n*D per head (four n x n products: the full square)
 *   LM head              labelled positions only: 2*R*E*V forward, 4*R*E*V backward
 *   vision (per tile)    patch embedding 2*N*K*C forward, its weight gradient only
 *                        backward; layers 2N (4C^2 + 2*C*I) forward, twice backward;
 *                        attention 4*N*N*Dv per head forward, 8*N*N*Dv backward
 *   connector (per tile) 2*(N/s^2)*(C*s^2)*E forward, twice backward.
 * Elementwise work (norms, activations, softmax, RoPE) and the optimizer are not counted,
 * as the kernels do not count them. */
#include <string.h>

#include "error.h"
#include "params.h"
#include "trainer_internal.h"

/* Queries per block of the attention kernel (core/attention.c's BQ). */
#define ATTN_BQ 64

#define IGNORE_INDEX OC_IGNORE_INDEX

/* Score and value products of causal attention over n positions, per head of dim D, as
 * the blocked kernel runs them. */
static double causal_blocked(size_t n, size_t D) {
    double rows_keys = 0;
    for (size_t t0 = 0; t0 < n; t0 += ATTN_BQ) {
        size_t t1 = t0 + ATTN_BQ < n ? t0 + ATTN_BQ : n;
        rows_keys += (double)(t1 - t0) * (double)t1;
    }
    return 4.0 * (double)D * rows_keys;
}

oc_status oc_trainer_step_flops(const oc_trainer *tr, const oc_train_example *ex, size_t n,
                                oc_step_flops *out) {
    if (!tr || !out || (n && !ex))
        return oc_err(OC_ERR_INVALID_ARG, "oc_trainer_step_flops: NULL argument");
    const oc_params *pp = oc_trainer_params_internal((oc_trainer *)tr);
    const oc_model_config *c = &pp->cfg;
    const oc_llama_config *t = &c->text;
    const oc_vit_config *v = &c->vision;
    double E = t->hidden, HD = (double)t->heads * t->head_dim,
           KD = (double)t->kv_heads * t->head_dim, F = t->intermediate, V = t->vocab,
           L = t->layers;
    size_t g = oc_vit_grid(v), N = g * g, s = c->scale_factor ? c->scale_factor : 1;
    double Cv = v->hidden, I = v->intermediate, K = (double)v->channels * v->patch * v->patch,
           Lv = v->layers, Dv = v->heads ? Cv / v->heads : 0, M = (double)(N / (s * s));
    double text_lin = 2.0 * (E * HD + 2 * E * KD + HD * E + 3 * E * F) * L; /* per token */

    oc_step_flops f;
    memset(&f, 0, sizeof f);
    double tokens = 0;
    for (size_t i = 0; i < n; i++) {
        const oc_train_example *e = &ex[i];
        size_t nt = e->n_tokens, R = 0;
        for (size_t k = 1; k < nt; k++)
            R += e->labels && e->labels[k] != IGNORE_INDEX;
        double dn = (double)nt, dR = (double)R, tiles = e->n_tiles;
        tokens += dn;

        /* text: linear layers, attention, LM head */
        double lin_f = text_lin * dn;
        double att_f = causal_blocked(nt, t->head_dim) * t->heads * L;
        double att_b = 8.0 * dn * dn * t->head_dim * t->heads * L;
        double head_f = 2.0 * dR * E * V;
        /* the exact triangle: sum over t of (t + 1) visible keys */
        double tri = dn * (dn + 1) / 2;
        f.attention_exact += 12.0 * (double)t->head_dim * tri * t->heads * L;

        /* vision tower and connector, per tile */
        double dN = (double)N;
        double patch_f = 2.0 * dN * K * Cv * tiles;
        double vlin_f = 2.0 * dN * (4 * Cv * Cv + 2 * Cv * I) * Lv * tiles;
        double vatt_f = 4.0 * dN * dN * Dv * v->heads * Lv * tiles;
        double vatt_b = 8.0 * dN * dN * Dv * v->heads * Lv * tiles;
        double conn_f = 2.0 * M * (Cv * s * s) * E * tiles;
        f.attention_exact += (vatt_f + vatt_b);

        double fwd = lin_f + att_f + head_f + patch_f + vlin_f + vatt_f + conn_f;
        double bwd = 2 * lin_f + att_b + 2 * head_f + patch_f + 2 * vlin_f + vatt_b + 2 * conn_f;
        f.forward += fwd;
        f.total += fwd + bwd;
        f.attention += att_f + att_b + vatt_f + vatt_b;
        f.vision += 2 * patch_f + 3 * vlin_f + vatt_f + vatt_b + 3 * conn_f;
        f.lm_head += 3 * head_f;
    }
    f.six_n_d = 6.0 * (double)pp->numel * tokens;
    *out = f;
    return OC_OK;
}
