/* The processes of a job (core/dist.c) seen from one process alone, which is what every
 * build without a launcher is: rank 0 of 1, sums and gathers that are the identity, work
 * shared out as MPI jobs share it; each rank's part of a dataset's step is that step's
 * examples; oc_trainer_fit_parts is oc_trainer_fit, bit for bit. The jobs of several ranks
 * are tested under mpirun by tests/mpi/mpi_test.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "dist.h"
#include "params.h"
#include "testutil.h"
#include "trainer_internal.h"

/* A build without MPI started by a launcher as one of several processes refuses to run
 * (they would each train alone, over each other's files); run first, in a child, before
 * this process joins its job of one. */
static void test_launched_without_mpi(void **state) {
    (void)state;
    if (oc_dist_get_info().mpi_built)
        skip(); /* under MPI the launcher's job is joined: tests/mpi/mpi_test.py */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
        oc_status s = oc_dist_init();
        _exit(s == OC_ERR_UNSUPPORTED && strstr(oc_last_error(), "one of 2 processes") &&
                      strstr(oc_last_error(), "built without MPI")
                  ? 0
                  : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_alone(void **state) {
    (void)state;
    assert_int_equal(oc_dist_init(), OC_OK);
    assert_int_equal(oc_dist_init(), OC_OK); /* idempotent */
    oc_dist_info in = oc_dist_get_info();
    assert_int_equal(in.rank, 0);
    assert_int_equal(in.size, 1);
    assert_int_equal(in.mpi, 0);
    assert_true(in.threads >= 1);
    size_t lo, hi;
    oc_dist_span(7, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 7);
    double v[3] = {1.5, -2, 1e300};
    assert_int_equal(oc_dist_sum(v, 3), OC_OK);
    assert_true(v[0] == 1.5 && v[1] == -2 && v[2] == 1e300);
    void *all = NULL;
    size_t sizes[1];
    assert_int_equal(oc_dist_allgather("abc", 3, &all, sizes), OC_OK);
    assert_int_equal(sizes[0], 3);
    assert_memory_equal(all, "abc", 3);
    oc_free(all);
    assert_int_equal(oc_dist_barrier(), OC_OK);
    assert_int_equal(oc_dist_agree(OC_OK), OC_OK);
    assert_int_equal(oc_dist_agree(OC_ERR_FORMAT), OC_ERR_FORMAT);
    assert_int_equal(oc_dist_error_is_shared(), 0);
    assert_int_equal(oc_dist_sum(NULL, 1), OC_ERR_INVALID_ARG);
    oc_dist_finalize(); /* harmless alone */
}

/* Blocks as the ranks of a job cut them: contiguous, in order, sizes differing by <= 1. */
static void test_blocks(void **state) {
    (void)state;
    for (int size = 1; size <= 5; size++)
        for (size_t n = 0; n <= 11; n++) {
            size_t at = 0;
            for (int r = 0; r < size; r++) {
                size_t lo, hi;
                oc_dist_block_of(n, r, size, &lo, &hi);
                assert_int_equal(lo, at);
                assert_true(hi - lo == n / (size_t)size + ((size_t)r < n % (size_t)size));
                at = hi;
            }
            assert_int_equal(at, n);
        }
}

/* Tasks of different costs: largest first to the least loaded rank (one rank alone). */
static void test_assign(void **state) {
    (void)state;
    double cost[4] = {1, 8, 2, 4};
    int owner[4] = {-1, -1, -1, -1};
    assert_int_equal(oc_dist_assign(cost, 4, owner), OC_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(owner[i], 0);
    cost[2] = -1;
    assert_int_equal(oc_dist_assign(cost, 4, owner), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "cost 2"));
}

/* n pre-tokenized examples whose second token is 10 + their line (to tell them apart). */
static const char *write_lines(size_t n) {
    static char path[512];
    const char *dir = tmpdir("dist");
    snprintf(path, sizeof path, "%s/tok.jsonl", dir);
    char *text = malloc(n * 96 + 1);
    text[0] = 0;
    for (size_t i = 0; i < n; i++)
        sprintf(text + strlen(text), "{\"input_ids\": [1, %zu, 5, 6], \"labels\": "
                "[-100, %zu, 5, 6]}\n", 10 + i, 10 + i);
    write_text(path, text);
    free(text);
    return path;
}

static oc_dataset *open_ds(const char *path) {
    oc_dataset_params dp = oc_dataset_default_params();
    dp.seed = 3;
    oc_dataset *ds = NULL;
    if (oc_dataset_open(path, td("smolvlm-tiny"), &dp, &ds) != OC_OK)
        fail_msg("%s", oc_last_error());
    return ds;
}

/* The parts of 3 ranks, put together, are each step's examples in order, across epochs;
 * the position advances by the whole step. */
static void test_dataset_parts(void **state) {
    (void)state;
    const char *path = write_lines(5);
    oc_dataset *whole = open_ds(path), *parts[3];
    for (int r = 0; r < 3; r++)
        parts[r] = open_ds(path);
    const size_t n = 4; /* 4 steps of 4 over 5 examples: three epochs */
    for (int step = 0; step < 4; step++) {
        oc_train_example ex[4], part[4];
        assert_int_equal(oc_dataset_next_batch(ex, n, whole), OC_OK);
        for (int r = 0; r < 3; r++) {
            size_t lo, hi;
            oc_dist_block_of(n, r, 3, &lo, &hi);
            assert_int_equal(oc_dataset_next_part(part, n, lo, hi - lo, parts[r]), OC_OK);
            for (size_t k = lo; k < hi; k++)
                assert_int_equal(part[k - lo].input_ids[1], ex[k].input_ids[1]);
            assert_int_equal(oc_dataset_position(parts[r]), oc_dataset_position(whole));
        }
    }
    oc_train_example e[1];
    assert_int_equal(oc_dataset_next_part(e, 4, 3, 2, parts[0]), OC_ERR_INVALID_ARG);
    assert_non_null(strstr(oc_last_error(), "[3, 5) of 4"));
    oc_dataset_free(whole);
    for (int r = 0; r < 3; r++)
        oc_dataset_free(parts[r]);
}

/* Alone, the part of a step is all of it: fit_parts trains as fit does, bit for bit. */
static void test_fit_parts_alone(void **state) {
    (void)state;
    const char *path = write_lines(7);
    oc_train_params tp = oc_train_default_params();
    tp.steps = 3;
    tp.batch = 2;
    tp.grad_accum = 2;
    tp.n_threads = 1;
    oc_trainer *a = NULL, *b = NULL;
    assert_int_equal(oc_trainer_new(td("smolvlm-tiny"), &tp, &a), OC_OK);
    assert_int_equal(oc_trainer_new(td("smolvlm-tiny"), &tp, &b), OC_OK);
    size_t first, count;
    oc_trainer_part(a, 4, &first, &count);
    assert_int_equal(first, 0);
    assert_int_equal(count, 4);
    oc_dataset *da = open_ds(path), *db = open_ds(path);
    assert_int_equal(oc_trainer_fit(a, oc_dataset_next_batch, da), OC_OK);
    assert_int_equal(oc_trainer_fit_parts(b, oc_dataset_next_part, db), OC_OK);
    assert_int_equal(oc_trainer_get_info(b).step, 3);
    /* alone: every parameter's two moments, one rank */
    assert_int_equal(oc_trainer_get_info(b).optimizer_bytes, 8 * oc_trainer_get_info(b).n_params);
    assert_int_equal(oc_trainer_get_info(b).ranks, 1);
    const oc_params *pa = oc_trainer_params_internal(a), *pb = oc_trainer_params_internal(b);
    assert_memory_equal(pa->mem, pb->mem, pa->numel * sizeof(float));
    assert_int_equal(oc_trainer_fit_parts(b, NULL, db), OC_ERR_INVALID_ARG);
    oc_dataset_free(da);
    oc_dataset_free(db);
    oc_trainer_free(a);
    oc_trainer_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_launched_without_mpi),
        cmocka_unit_test(test_alone),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_assign),
        cmocka_unit_test(test_dataset_parts),
        cmocka_unit_test(test_fit_parts_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
