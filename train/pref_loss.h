/* Preference-optimisation losses on per-sequence log-probabilities: DPO (Rafailov et
 * al. 2023), SimPO (Meng et al. 2024) and ORPO (Hong et al. 2024), as TRL's DPOTrainer
 * and CPOTrainer / ORPOTrainer define them. Pure functions of a pair's numbers, so that
 * they are tested on hand-computed values; the trainer turns their derivatives with
 * respect to the sequence log-probabilities into per-position scales of the
 * cross-entropy's gradient. */
#ifndef OC_PREF_LOSS_H
#define OC_PREF_LOSS_H
#include <stddef.h>

#include "ocellus.h"

/* One pair: summed log-probabilities (natural log) of the chosen and rejected replies
 * under the policy, under the reference model (DPO only), and the replies' token counts
 * (SimPO and ORPO average over them). */
typedef struct {
    double pc, pr;       /* log pi(chosen), log pi(rejected) */
    double rc, rr;       /* log ref(chosen), log ref(rejected) */
    size_t nc, nr;       /* labelled tokens of each reply (>= 1) */
} oc_pref_pair;

typedef struct {
    double loss;             /* this pair's loss */
    double dpc, dpr;         /* d loss / d pc, d loss / d pr */
    double reward_c, reward_r; /* the implicit rewards TRL logs */
} oc_pref_pair_out;

/* objective: OC_OBJECTIVE_DPO, _SIMPO or _ORPO; beta, gamma, lambda as in oc_train_params
 * (already resolved: no zeros meaning "default").
 *  DPO:   loss = -log sigmoid(beta * ((pc - rc) - (pr - rr)));  reward = beta * (p - r)
 *  SimPO: loss = -log sigmoid(beta * (pc/nc - pr/nr) - gamma);  reward = beta * p / n
 *  ORPO:  with a = p / n (mean log-probability per token) and
 *         log odds(a) = a - log(1 - exp(a)):
 *         loss = -pc/nc + lambda * -log sigmoid(log odds(ac) - log odds(ar));
 *         reward = lambda * a */
void oc_pref_pair_loss(int objective, double beta, double gamma, double lambda,
                       const oc_pref_pair *in, oc_pref_pair_out *out);

/* RPO's term for DPO and SimPO: out->loss += alpha * -pc/nc (the chosen reply's mean
 * negative log-likelihood per token), out->dpc += -alpha/nc. */
void oc_pref_add_nll(double alpha, const oc_pref_pair *in, oc_pref_pair_out *out);

/* log(sigmoid(x)) without overflow, and its derivative sigmoid(-x). */
double oc_log_sigmoid(double x);
#endif
