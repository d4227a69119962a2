/* The processes of one job (core/dist.c): MPI when ocellus is built with it (-Dmpi) and
 * started by an MPI launcher, else this process alone (rank 0 of 1). The public calls are
 * oc_dist_* in ocellus.h; these are the exchanges the trainer and the exams are built
 * on. All of them are collective: every rank calls them in the same order, from the
 * thread that called oc_dist_init.
 *
 * Determinism: no MPI reduction operator is used. Sums are done here, in rank order,
 * from every rank's values, so that a fixed rank count gives the same bits on every run
 * whatever order the network delivers them in.
 *
 * Faults: every wait is polled against a deadline (oc_dist_set_timeout). A rank that
 * sends nothing within it is named in the error ("no answer from rank 2 for 600 s during
 * the gradient exchange"); after such an error the job cannot go on and the caller must
 * end it (oc_dist_abort). A rank that dies is normally noticed sooner, by the launcher,
 * which ends the job and names it. */
#ifndef OC_DIST_H
#define OC_DIST_H
#include <stddef.h>
#include <stdint.h>

#include "ocellus.h"

/* rank and size of the job (0 and 1 alone). */
int oc_dist_rank_(void);
int oc_dist_size_(void);

/* Block `rank` of n items cut into `size` contiguous blocks (the first n % size have one
 * more): the block oc_dist_span gives that rank. */
void oc_dist_block_of(size_t n, int rank, int size, size_t *lo, size_t *hi);

/* Every rank's `bytes` bytes, in rank order: all is (size * bytes). */
oc_status oc_dist_allgather_fixed(const void *mine, size_t bytes, void *all, const char *what);

/* oc_dist_agree (ocellus.h): the agreement on a status the other calls build on. */

/* Marks the error just returned as known to every rank (it was reached by all of them
 * from the same values, e.g. a gradient that is not finite). */
void oc_dist_mark_shared(void);

/* Sums of uint64 counts over ranks (exact). */
oc_status oc_dist_sum_u64(uint64_t *values, size_t n, const char *what);

/* The flat vector buf (off[size] floats) is cut into shards: rank r owns
 * [off[r], off[r+1]). */
/* On return buf's own shard holds the sum over ranks of every rank's buf on that shard,
 * summed in rank order (((b0 + b1) + b2) + ...); the rest of buf is left as it was. */
oc_status oc_dist_reduce_scatter_f32(float *buf, const size_t *off, const char *what);
/* Every rank's shard of buf to every rank. */
oc_status oc_dist_allgather_f32(float *buf, const size_t *off, const char *what);
/* Each rank's shard `mine` (off[r+1] - off[r] floats) into root's full (off[size]
 * floats; NULL on the other ranks). */
oc_status oc_dist_gather_f32(float *full, const float *mine, const size_t *off, int root,
                             const char *what);
/* root's bytes to every rank. */
oc_status oc_dist_bcast(void *buf, size_t bytes, int root, const char *what);

/* Seconds spent in exchanges since the process started (waits included). */
double oc_dist_comm_seconds(void);
#endif
