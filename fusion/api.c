/* Process-wide settings of the public API. */
#include <cblas.h>
#include <omp.h>

#include "ocellus.h"

void oc_set_threads(int n) {
    if (n <= 0)
        n = omp_get_num_procs();
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}
