/* The trainer's insides, for tests (finite differences need to move the weights). Not
 * part of the public API. */
#ifndef OC_TRAINER_INTERNAL_H
#define OC_TRAINER_INTERNAL_H
#include "ocellus.h"
#include "params.h"

/* The parameters being trained (owned by tr; writable). */
oc_params *oc_trainer_params_internal(oc_trainer *tr);
/* The gradients of the last oc_trainer_step (after clipping), laid out as the
 * parameters. */
const float *oc_trainer_grads_internal(const oc_trainer *tr);
#endif
