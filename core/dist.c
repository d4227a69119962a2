/* The processes of one job: MPI (Open MPI, MPICH, any MPI-3 library) when ocellus is
 * built with it and the process was started by an MPI launcher (mpirun, mpiexec, srun),
 * else this process alone. See dist.h for the rules every exchange follows, and
 * docs/DISTRIBUTED.md for how jobs are launched. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef OC_HAVE_MPI
#include <mpi.h>
#endif

#include "alloc.h"
#include "dist.h"
#include "error.h"

#define MSG_MAX 1024 /* bytes of an error sentence sent to the other ranks */

static struct {
    int inited;             /* oc_dist_init ran */
    int mpi;                /* the job runs on MPI (MPI_Init was called here) */
    int finalized;
    int rank, size, local_rank, local_size, threads;
    int broken;             /* an exchange failed part-way: no exchange may follow */
    int shared;             /* the last error returned is known to every rank */
    double timeout;         /* seconds a wait may last */
    double comm;            /* seconds spent in exchanges */
#ifdef OC_HAVE_MPI
    MPI_Comm world;         /* a duplicate of MPI_COMM_WORLD, errors returned */
#endif
} g = {.size = 1, .local_size = 1, .timeout = 600.0};

/* ---- the job: who we are ------------------------------------------------------------- */

/* The number of processes an MPI launcher says the job has: 0 when no launcher started
 * this process, -1 when one did without saying how many. */
static long launcher_size(void) {
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                        "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *v = getenv(sizes[i]);
        if (v && *v)
            return strtol(v, NULL, 10) > 0 ? strtol(v, NULL, 10) : -1;
    }
    /* PMIx launchers (srun --mpi=pmix, prterun) and PMI-1/2 ones name only the rank */
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? -1 : 0;
}

/* Threads for each process on this machine: the CPUs the launcher bound this process
 * to, or, unbound, the machine's CPUs shared out among its processes. */
static int threads_per_process(int local_size) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1)
        online = 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    long mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
    if (mine >= 1 && mine < online)
        return (int)mine;
    long t = online / (local_size > 0 ? local_size : 1);
    return t < 1 ? 1 : (int)t;
}

oc_status oc_dist_init(void) {
    if (g.inited)
        return OC_OK;
    long launched = launcher_size();
    if (launched == 0 || launched == 1) {
        /* no launcher, or a job of one: as ever */
        g.inited = 1;
        g.threads = threads_per_process(1);
        return OC_OK;
    }
#ifndef OC_HAVE_MPI
    if (launched > 1)
        return oc_err(OC_ERR_UNSUPPORTED, "started by an MPI launcher as one of %ld processes, "
                      "but this ocellus was built without MPI (install libopenmpi-dev and "
                      "rebuild: meson setup -Dmpi=enabled)", launched);
    return oc_err(OC_ERR_UNSUPPORTED, "started by an MPI launcher, but this ocellus was built "
                  "without MPI (install libopenmpi-dev and rebuild: meson setup "
                  "-Dmpi=enabled)");
#else
    int already = 0, provided = 0;
    MPI_Initialized(&already);
    if (!already) {
        /* the kernels' pool threads never call MPI: the calling thread does it all */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return oc_err(OC_ERR_IO, "MPI_Init failed (is the job's launcher still running?)");
    }
    g.mpi = 1;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &g.world) != MPI_SUCCESS)
        return oc_err(OC_ERR_IO, "MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(g.world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(g.world, &g.rank);
    MPI_Comm_size(g.world, &g.size);
    MPI_Comm local;
    if (MPI_Comm_split_type(g.world, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_rank(local, &g.local_rank);
        MPI_Comm_size(local, &g.local_size);
        MPI_Comm_free(&local);
    } else {
        g.local_rank = g.rank;
        g.local_size = g.size;
    }
    g.threads = threads_per_process(g.local_size);
    g.inited = 1;
    return OC_OK;
#endif
}

oc_dist_info oc_dist_get_info(void) {
    oc_dist_info in;
    memset(&in, 0, sizeof in);
    in.rank = g.rank;
    in.size = g.size;
    in.local_rank = g.local_rank;
    in.local_size = g.local_size;
    in.mpi = g.mpi;
    in.threads = g.threads > 0 ? g.threads : threads_per_process(g.local_size);
    in.timeout = g.timeout;
#ifdef OC_HAVE_MPI
    in.mpi_built = 1;
#endif
    return in;
}

int oc_dist_rank_(void) { return g.rank; }
int oc_dist_size_(void) { return g.size; }
double oc_dist_comm_seconds(void) { return g.comm; }

void oc_dist_set_timeout(double seconds) {
    if (seconds > 0 && isfinite(seconds))
        g.timeout = seconds;
}

int oc_dist_error_is_shared(void) { return g.shared; }

void oc_dist_mark_shared(void) { g.shared = g.size > 1; }

void oc_dist_finalize(void) {
#ifdef OC_HAVE_MPI
    if (g.mpi && !g.finalized) {
        g.finalized = 1;
        if (g.broken && g.size > 1) {
            MPI_Abort(MPI_COMM_WORLD, 1); /* the others may wait for us forever */
            return;
        }
        MPI_Comm_free(&g.world);
        MPI_Finalize();
    }
#endif
}

void oc_dist_abort(int code) {
#ifdef OC_HAVE_MPI
    if (g.mpi && !g.finalized && g.size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    }
#endif
    (void)code;
}

/* ---- sharing out work ---------------------------------------------------------------- */

/* Block r of n items cut into `size` blocks: the first n % size blocks have one more. */
static void block(size_t n, int r, int size, size_t *lo, size_t *hi) {
    size_t q = n / (size_t)size, extra = n % (size_t)size, ur = (size_t)r;
    *lo = q * ur + (ur < extra ? ur : extra);
    *hi = *lo + q + (ur < extra);
}

void oc_dist_span(size_t n, size_t *lo, size_t *hi) {
    size_t a, b;
    block(n, g.rank, g.size, &a, &b);
    if (lo)
        *lo = a;
    if (hi)
        *hi = b;
}

void oc_dist_block_of(size_t n, int rank, int size, size_t *lo, size_t *hi) {
    block(n, rank < 0 ? 0 : rank, size < 1 ? 1 : size, lo, hi);
}

oc_status oc_dist_assign(const double *cost, size_t n, int *owner) {
    if (n && (!cost || !owner))
        return oc_err(OC_ERR_INVALID_ARG, "oc_dist_assign: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!(cost[i] >= 0) || !isfinite(cost[i]))
            return oc_err(OC_ERR_INVALID_ARG, "oc_dist_assign: cost %zu is %g (costs are "
                          "finite and >= 0)", i, cost[i]);
    size_t *order = oc_malloc((n ? n : 1) * sizeof *order);
    double *load = oc_calloc((size_t)g.size, sizeof *load);
    if (!order || !load) {
        oc_free(order);
        oc_free(load);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    /* the largest first (insertion sort: stable, so equal costs keep their order) */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && cost[order[j - 1]] < cost[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    /* each to the least loaded rank, the lowest of equals */
    for (size_t k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < g.size; r++)
            if (load[r] < load[best])
                best = r;
        owner[order[k]] = best;
        load[best] += cost[order[k]];
    }
    oc_free(order);
    oc_free(load);
    return OC_OK;
}

/* ---- exchanges ------------------------------------------------------------------------ */

static oc_status check_usable(const char *what) {
    g.shared = 0;
    if (g.broken)
        return oc_err(OC_ERR_IO, "an earlier exchange between the ranks failed; %s cannot "
                      "run (the job must end)", what);
    return OC_OK;
}

#ifdef OC_HAVE_MPI
/* Jobs up to this many ranks exchange small values point to point (N - 1 messages each,
 * every peer known by name); larger ones use MPI's collectives (docs/DISTRIBUTED.md). */
#define P2P_MAX 64

enum { TAG_REDUCE = 101, TAG_GATHER_ALL = 102, TAG_GATHER_ROOT = 103, TAG_SMALL = 104 };

/* Floats in flight per peer and round: bounds the receive buffer of the reduction at
 * 64 MiB whatever the model's size. */
static size_t chunk_floats(void) {
    size_t c = ((size_t)1 << 24) / (size_t)g.size;
    return c < 65536 ? 65536 : c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static oc_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "error %d", rc);
    g.broken = 1;
    return oc_err(OC_ERR_IO, "MPI failed during %s: %s (another rank has probably stopped)",
                  what, s);
}

/* Waits for n requests, polling against the deadline; peer[i] is the rank request i
 * talks to (NULL: collectives, no single peer). */
static oc_status wait_all(int n, MPI_Request *req, const int *peer, const char *what) {
    double t0 = now_s(), deadline = t0 + g.timeout;
    unsigned spins = 0;
    for (;;) {
        int pending = -1;
        for (int i = 0; i < n; i++) {
            if (req[i] == MPI_REQUEST_NULL)
                continue;
            int done = 0, rc = MPI_Test(&req[i], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) {
                g.comm += now_s() - t0;
                return mpi_fail(rc, what);
            }
            if (!done && pending < 0)
                pending = i;
        }
        if (pending < 0)
            break;
        double t = now_s();
        if (t > deadline) {
            g.comm += t - t0;
            g.broken = 1;
            if (peer && peer[pending] >= 0)
                return oc_err(OC_ERR_IO, "no answer from rank %d for %g s during %s (it has "
                              "stopped, or its machine cannot be reached); the job cannot go "
                              "on", peer[pending], g.timeout, what);
            return oc_err(OC_ERR_IO, "not every rank answered within %g s during %s (one has "
                          "stopped, or its machine cannot be reached); the job cannot go on",
                          g.timeout, what);
        }
        /* spin briefly (exchanges of a step are short), then poll every 100 us */
        if (++spins > 2000) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        } else if (spins > 200) {
            sched_yield();
        }
    }
    g.comm += now_s() - t0;
    return OC_OK;
}
#endif

oc_status oc_dist_allgather_fixed(const void *mine, size_t bytes, void *all, const char *what) {
    OC_TRY(check_usable(what));
    if (g.size <= 1) {
        if (bytes)
            memmove(all, mine, bytes);
        return OC_OK;
    }
#ifdef OC_HAVE_MPI
    if (bytes > (size_t)1 << 30)
        return oc_err(OC_ERR_LIMIT, "%s: %zu bytes per rank is over 1 GiB", what, bytes);
    if (g.size > P2P_MAX) { /* MPI's collective: log(N) latency, no rank named */
        MPI_Request one;
        int rc1 = MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE,
                                 g.world, &one);
        return rc1 == MPI_SUCCESS ? wait_all(1, &one, NULL, what) : mpi_fail(rc1, what);
    }
    /* point to point (the values are small): a rank that does not answer is named */
    int N = g.size, me = g.rank, n = 0, rc = MPI_SUCCESS;
    MPI_Request *req = oc_malloc(2 * (size_t)N * sizeof *req);
    int *peer = oc_malloc(2 * (size_t)N * sizeof *peer);
    if (!req || !peer) {
        oc_free(req);
        oc_free(peer);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    if (bytes)
        memmove((char *)all + (size_t)me * bytes, mine, bytes);
    for (int r = 0; r < N && rc == MPI_SUCCESS; r++)
        if (r != me && (rc = MPI_Irecv((char *)all + (size_t)r * bytes, (int)bytes, MPI_BYTE,
                                       r, TAG_SMALL, g.world, &req[n])) == MPI_SUCCESS)
            peer[n++] = r;
    for (int r = 0; r < N && rc == MPI_SUCCESS; r++)
        if (r != me && (rc = MPI_Isend(mine, (int)bytes, MPI_BYTE, r, TAG_SMALL, g.world,
                                       &req[n])) == MPI_SUCCESS)
            peer[n++] = r;
    oc_status s = rc == MPI_SUCCESS ? wait_all(n, req, peer, what) : mpi_fail(rc, what);
    oc_free(req);
    oc_free(peer);
    return s;
#else
    return oc_err(OC_ERR_INTERNAL, "%s: several ranks without MPI", what);
#endif
}

oc_status oc_dist_bcast(void *buf, size_t bytes, int root, const char *what) {
    OC_TRY(check_usable(what));
    if (g.size <= 1)
        return OC_OK;
#ifdef OC_HAVE_MPI
    for (size_t done = 0; done < bytes;) {
        size_t k = bytes - done < ((size_t)1 << 30) ? bytes - done : (size_t)1 << 30;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + done, (int)k, MPI_BYTE, root, g.world, &req);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, what);
        int peer = root;
        OC_TRY(wait_all(1, &req, g.rank == root ? NULL : &peer, what));
        done += k;
    }
    return OC_OK;
#else
    (void)buf;
    (void)bytes;
    (void)root;
    return oc_err(OC_ERR_INTERNAL, "%s: several ranks without MPI", what);
#endif
}

oc_status oc_dist_barrier(void) {
    OC_TRY(check_usable("a barrier"));
    if (g.size <= 1)
        return OC_OK;
#ifdef OC_HAVE_MPI
    MPI_Request req;
    int rc = MPI_Ibarrier(g.world, &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "a barrier");
    return wait_all(1, &req, NULL, "a barrier");
#else
    return OC_OK;
#endif
}

oc_status oc_dist_agree(oc_status mine) {
    if (g.size <= 1)
        return mine;
    char saved[MSG_MAX];
    memset(saved, 0, sizeof saved);
    if (mine != OC_OK)
        snprintf(saved, sizeof saved, "%s", oc_last_error());
    int32_t *st = oc_malloc((size_t)g.size * sizeof *st);
    char *msgs = NULL;
    if (!st)
        return oc_err(OC_ERR_NOMEM, "out of memory"); /* local: the job is aborted */
    int32_t m32 = (int32_t)mine;
    oc_status s = oc_dist_allgather_fixed(&m32, sizeof m32, st, "the agreement on a status");
    int first = -1;
    for (int r = 0; s == OC_OK && r < g.size && first < 0; r++)
        if (st[r] != OC_OK)
            first = r;
    if (s == OC_OK && first >= 0) {
        msgs = oc_malloc((size_t)g.size * MSG_MAX);
        s = msgs ? oc_dist_allgather_fixed(saved, MSG_MAX, msgs, "the exchange of an error")
                 : oc_err(OC_ERR_NOMEM, "out of memory");
        if (s == OC_OK) {
            oc_status fs = (oc_status)st[first];
            char *text = msgs + (size_t)first * MSG_MAX;
            text[MSG_MAX - 1] = 0;
            if (mine != OC_OK)
                s = oc_err(mine, "%s", saved);
            else
                s = oc_err(fs, "rank %d: %s", first, text);
            /* known to all: rank 0 says it (its own, or the first failing rank's) */
            g.shared = 1;
        }
    }
    oc_free(st);
    oc_free(msgs);
    return s;
}

oc_status oc_dist_sum_u64(uint64_t *values, size_t n, const char *what) {
    if (g.size <= 1 || n == 0)
        return check_usable(what);
    uint64_t *all = oc_malloc((size_t)g.size * n * sizeof *all);
    if (!all)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = oc_dist_allgather_fixed(values, n * sizeof *values, all, what);
    for (size_t j = 0; s == OC_OK && j < n; j++) {
        uint64_t t = 0;
        for (int r = 0; r < g.size; r++)
            t += all[(size_t)r * n + j];
        values[j] = t;
    }
    oc_free(all);
    return s;
}

oc_status oc_dist_sum(double *values, size_t n) {
    if (n && !values)
        return oc_err(OC_ERR_INVALID_ARG, "oc_dist_sum: NULL argument");
    if (g.size <= 1 || n == 0)
        return check_usable("a sum over the ranks");
    double *all = oc_malloc((size_t)g.size * n * sizeof *all);
    if (!all)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = oc_dist_allgather_fixed(values, n * sizeof *values, all, "a sum over the ranks");
    for (size_t j = 0; s == OC_OK && j < n; j++) {
        double t = all[j]; /* rank 0's, then 1's, ...: the same bits on every run */
        for (int r = 1; r < g.size; r++)
            t += all[(size_t)r * n + j];
        values[j] = t;
    }
    oc_free(all);
    return s;
}

oc_status oc_dist_allgather(const void *data, size_t size, void **all, size_t *sizes) {
    if (!all || !sizes || (size && !data))
        return oc_err(OC_ERR_INVALID_ARG, "oc_dist_allgather: NULL argument");
    *all = NULL;
    uint64_t *n = oc_malloc((size_t)g.size * sizeof *n);
    if (!n)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    uint64_t mine = size;
    oc_status s = oc_dist_allgather_fixed(&mine, sizeof mine, n, "the exchange of sizes");
    uint64_t total = 0;
    for (int r = 0; s == OC_OK && r < g.size; r++) {
        sizes[r] = (size_t)n[r];
        total += n[r];
    }
    if (s == OC_OK && total > (uint64_t)INT32_MAX)
        s = oc_err(OC_ERR_LIMIT, "oc_dist_allgather: %llu bytes in all is over 2 GiB",
                   (unsigned long long)total);
    char *buf = s == OC_OK ? oc_malloc(total ? (size_t)total : 1) : NULL;
    if (s == OC_OK && !buf)
        s = oc_err(OC_ERR_NOMEM, "out of memory for %llu bytes", (unsigned long long)total);
    if (s == OC_OK && g.size <= 1) {
        if (size)
            memcpy(buf, data, size);
    } else if (s == OC_OK) {
#ifdef OC_HAVE_MPI
        int *cnt = oc_malloc((size_t)g.size * sizeof *cnt),
            *dsp = oc_malloc((size_t)g.size * sizeof *dsp);
        if (!cnt || !dsp)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        for (int r = 0, at = 0; s == OC_OK && r < g.size; r++) {
            cnt[r] = (int)n[r];
            dsp[r] = at;
            at += cnt[r];
        }
        MPI_Request req;
        int rc = s == OC_OK ? MPI_Iallgatherv(data, (int)size, MPI_BYTE, buf, cnt, dsp,
                                              MPI_BYTE, g.world, &req)
                            : MPI_SUCCESS;
        if (s == OC_OK && rc != MPI_SUCCESS)
            s = mpi_fail(rc, "the exchange of results");
        else if (s == OC_OK)
            s = wait_all(1, &req, NULL, "the exchange of results");
        oc_free(cnt);
        oc_free(dsp);
#endif
    }
    oc_free(n);
    if (s != OC_OK) {
        oc_free(buf);
        return s;
    }
    *all = buf;
    return OC_OK;
}

/* ---- sharded float vectors --------------------------------------------------------- */

#ifdef OC_HAVE_MPI
/* [lo, hi) of shard r in round k. */
static void piece(const size_t *off, int r, size_t k, size_t C, size_t *lo, size_t *hi) {
    size_t a = off[r] + k * C, end = off[r + 1];
    *lo = a < end ? a : end;
    *hi = a + C < end ? a + C : end;
}

static size_t rounds_of(const size_t *off, size_t C) {
    size_t mx = 0;
    for (int r = 0; r < g.size; r++)
        if (off[r + 1] - off[r] > mx)
            mx = off[r + 1] - off[r];
    return (mx + C - 1) / C;
}

typedef struct {
    MPI_Request *req;
    int *peer;
    int n;
} reqs;

static oc_status reqs_new(reqs *q) {
    q->n = 0;
    q->req = oc_malloc(2 * (size_t)g.size * sizeof *q->req);
    q->peer = oc_malloc(2 * (size_t)g.size * sizeof *q->peer);
    if (!q->req || !q->peer) {
        oc_free(q->req);
        oc_free(q->peer);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    return OC_OK;
}

static void reqs_free(reqs *q) {
    oc_free(q->req);
    oc_free(q->peer);
}

static oc_status post(reqs *q, int recv, float *p, size_t n, int peer, int tag,
                      const char *what) {
    if (n == 0)
        return OC_OK;
    int rc = recv ? MPI_Irecv(p, (int)n, MPI_FLOAT, peer, tag, g.world, &q->req[q->n])
                  : MPI_Isend(p, (int)n, MPI_FLOAT, peer, tag, g.world, &q->req[q->n]);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, what);
    q->peer[q->n++] = peer;
    return OC_OK;
}
#endif

oc_status oc_dist_reduce_scatter_f32(float *buf, const size_t *off, const char *what) {
    OC_TRY(check_usable(what));
    if (g.size <= 1)
        return OC_OK;
#ifdef OC_HAVE_MPI
    int N = g.size, me = g.rank;
    size_t C = chunk_floats(), mine = off[me + 1] - off[me];
    size_t slot = mine < C ? mine : C;
    /* (N, slot): the pieces of our shard from each rank; our own slot is the sum */
    float *recv = oc_malloc(((size_t)N * slot + 1) * sizeof *recv);
    reqs q;
    if (!recv)
        return oc_err(OC_ERR_NOMEM, "out of memory for the gradient exchange");
    oc_status s = reqs_new(&q);
    size_t R = rounds_of(off, C);
    for (size_t k = 0; s == OC_OK && k < R; k++) {
        size_t mlo, mhi, lo, hi;
        piece(off, me, k, C, &mlo, &mhi);
        q.n = 0;
        for (int r = 0; s == OC_OK && r < N; r++)
            if (r != me)
                s = post(&q, 1, recv + (size_t)r * slot, mhi - mlo, r, TAG_REDUCE, what);
        for (int r = 0; s == OC_OK && r < N; r++)
            if (r != me) {
                piece(off, r, k, C, &lo, &hi);
                s = post(&q, 0, buf + lo, hi - lo, r, TAG_REDUCE, what);
            }
        if (s == OC_OK)
            s = wait_all(q.n, q.req, q.peer, what);
        if (s != OC_OK || mhi == mlo)
            continue;
        /* in rank order, whatever order the pieces came in */
        size_t n = mhi - mlo;
        float *acc = recv + (size_t)me * slot;
        memcpy(acc, me == 0 ? buf + mlo : recv, n * sizeof *acc);
        for (int r = 1; r < N; r++) {
            const float *p = r == me ? buf + mlo : recv + (size_t)r * slot;
            for (size_t j = 0; j < n; j++)
                acc[j] += p[j];
        }
        memcpy(buf + mlo, acc, n * sizeof *acc);
    }
    reqs_free(&q);
    oc_free(recv);
    return s;
#else
    (void)buf;
    (void)off;
    return oc_err(OC_ERR_INTERNAL, "%s: several ranks without MPI", what);
#endif
}

oc_status oc_dist_allgather_f32(float *buf, const size_t *off, const char *what) {
    OC_TRY(check_usable(what));
    if (g.size <= 1)
        return OC_OK;
#ifdef OC_HAVE_MPI
    int N = g.size, me = g.rank;
    size_t C = chunk_floats(), R = rounds_of(off, C);
    reqs q;
    oc_status s = reqs_new(&q);
    for (size_t k = 0; s == OC_OK && k < R; k++) {
        size_t mlo, mhi, lo, hi;
        piece(off, me, k, C, &mlo, &mhi);
        q.n = 0;
        for (int r = 0; s == OC_OK && r < N; r++)
            if (r != me) {
                piece(off, r, k, C, &lo, &hi);
                s = post(&q, 1, buf + lo, hi - lo, r, TAG_GATHER_ALL, what);
            }
        for (int r = 0; s == OC_OK && r < N; r++)
            if (r != me)
                s = post(&q, 0, buf + mlo, mhi - mlo, r, TAG_GATHER_ALL, what);
        if (s == OC_OK)
            s = wait_all(q.n, q.req, q.peer, what);
    }
    reqs_free(&q);
    return s;
#else
    (void)buf;
    (void)off;
    return oc_err(OC_ERR_INTERNAL, "%s: several ranks without MPI", what);
#endif
}

oc_status oc_dist_gather_f32(float *full, const float *mine, const size_t *off, int root,
                             const char *what) {
    OC_TRY(check_usable(what));
    size_t own = off[g.rank + 1] - off[g.rank];
    if (g.rank == root && own)
        memcpy(full + off[g.rank], mine, own * sizeof *mine);
    if (g.size <= 1)
        return OC_OK;
#ifdef OC_HAVE_MPI
    int N = g.size, me = g.rank;
    size_t C = chunk_floats(), R = rounds_of(off, C);
    reqs q;
    oc_status s = reqs_new(&q);
    for (size_t k = 0; s == OC_OK && k < R; k++) {
        size_t lo, hi;
        q.n = 0;
        if (me == root) {
            for (int r = 0; s == OC_OK && r < N; r++)
                if (r != me) {
                    piece(off, r, k, C, &lo, &hi);
                    s = post(&q, 1, full + lo, hi - lo, r, TAG_GATHER_ROOT, what);
                }
        } else {
            piece(off, me, k, C, &lo, &hi);
            s = post(&q, 0, (float *)mine + (lo - off[me]), hi - lo, root, TAG_GATHER_ROOT,
                     what);
        }
        if (s == OC_OK)
            s = wait_all(q.n, q.req, q.peer, what);
    }
    reqs_free(&q);
    return s;
#else
    return oc_err(OC_ERR_INTERNAL, "%s: several ranks without MPI", what);
#endif
}
