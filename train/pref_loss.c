/* DPO, SimPO and ORPO on one pair's sequence log-probabilities (see pref_loss.h). */
#include "pref_loss.h"

#include <math.h>

double oc_log_sigmoid(double x) {
    /* log sigmoid(x) = -log(1 + exp(-x)) = min(x, 0) - log1p(exp(-|x|)) */
    return (x < 0 ? x : 0) - log1p(exp(-fabs(x)));
}

static double sigmoid(double x) {
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* log(p / (1 - p)) for log p = a < 0, and its derivative 1 / (1 - p). a is clamped just
 * below 0 (a reply the model is certain of has infinite odds). */
static double log_odds(double a, double *deriv) {
    const double top = -1e-7;
    if (a > top)
        a = top;
    double one_minus_p = -expm1(a); /* 1 - exp(a), exact for small |a| */
    *deriv = 1 / one_minus_p;
    return a - log(one_minus_p);
}

void oc_pref_pair_loss(int objective, double beta, double gamma, double lambda,
                       const oc_pref_pair *in, oc_pref_pair_out *out) {
    double nc = in->nc ? (double)in->nc : 1, nr = in->nr ? (double)in->nr : 1;
    if (objective == OC_OBJECTIVE_DPO) {
        double z = beta * ((in->pc - in->rc) - (in->pr - in->rr));
        double s = sigmoid(-z); /* -d/dz log sigmoid(z) */
        out->loss = -oc_log_sigmoid(z);
        out->dpc = -beta * s;
        out->dpr = beta * s;
        out->reward_c = beta * (in->pc - in->rc);
        out->reward_r = beta * (in->pr - in->rr);
    } else if (objective == OC_OBJECTIVE_SIMPO) {
        double z = beta * (in->pc / nc - in->pr / nr) - gamma;
        double s = sigmoid(-z);
        out->loss = -oc_log_sigmoid(z);
        out->dpc = -beta * s / nc;
        out->dpr = beta * s / nr;
        out->reward_c = beta * in->pc / nc;
        out->reward_r = beta * in->pr / nr;
    } else { /* ORPO */
        double ac = in->pc / nc, ar = in->pr / nr, gc, gr;
        double z = log_odds(ac, &gc) - log_odds(ar, &gr);
        double s = sigmoid(-z);
        out->loss = -ac - lambda * oc_log_sigmoid(z);
        /* d/dac = -1 - lambda * s * gc; d/dar = lambda * s * gr; a = p / n */
        out->dpc = (-1 - lambda * s * (ac > -1e-7 ? 0 : gc)) / nc;
        out->dpr = lambda * s * (ar > -1e-7 ? 0 : gr) / nr;
        out->reward_c = lambda * ac;
        out->reward_r = lambda * ar;
    }
}

void oc_pref_add_nll(double alpha, const oc_pref_pair *in, oc_pref_pair_out *out) {
    double nc = in->nc ? (double)in->nc : 1;
    out->loss += alpha * -in->pc / nc;
    out->dpc += -alpha / nc;
}
