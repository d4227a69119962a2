/* The crash test: `ocellus train --save-every 1` is killed with SIGKILL at random moments
 * (in a step, in a checkpoint save, at startup), at least 50 times, and resumed after
 * each kill from whatever its output folder holds. Every run must resume (the checkpoint
 * is whole or absent), and each training run, carried to its end through its kills, must
 * end with the bytes of an uninterrupted run (weights, optimizer state, config). What
 * the killed writers left beside the checkpoint must be gone at the end.
 *
 * A training run is STEPS steps on a small mix of examples (two with an image, six of
 * text), so that a step costs about what its checkpoint does; runs follow one another,
 * each in a fresh folder, until the kills are in. The moment of each kill: one in ten
 * during startup (uniform over the uninterrupted run's startup), the others once the
 * run has printed a step, after a delay uniform in [0, 2 x a step and its save]. The seed
 * of the draws is printed; OC_CRASH_SEED=N repeats it, OC_CRASH_KILLS=N sets the number
 * of kills (default 50). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "testproc.h"
#include "testutil.h"

#define STEPS "30"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state;
static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static char *slurp(const char *path, size_t *n) {
    char *d = NULL;
    if (oc_read_file(path, 1 << 28, &d, n) != OC_OK)
        fail_msg("%s", oc_last_error());
    return d;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    oc_free(x);
    oc_free(y);
    return same;
}

/* 1 if dir holds a name beginning with prefix. */
static int has_entry(const char *dir, const char *prefix) {
    DIR *dp = opendir(dir);
    int found = 0;
    struct dirent *e;
    while (dp && !found && (e = readdir(dp)))
        found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (dp)
        closedir(dp);
    return found;
}

/* argv of a training run: from the tiny model, or resuming ck. */
static void train_argv(const char **argv, const char *from_flag, const char *from,
                       const char *data, const char *out) {
    const char *a[] = {OC_CLI_PATH, "train", from_flag, from, "--data", data, "--out", out,
                       "--steps", STEPS, "--save-every", "1", "--batch", "2", "--lr", "2e-3",
                       "--warmup", "10", "--seed", "5", "--threads", "1", NULL};
    memcpy(argv, a, sizeof a);
}

/* Two images of the shapes world and six text-only chats. */
static void make_data(const char *dir, const char *jsonl) {
    assert_int_equal(cli((const char *const[]){"data", "shapes", "--split", "train", "--n",
                                               "2", "--size", "32", "--out", dir, NULL},
                         NULL, NULL, NULL),
                     0);
    FILE *f = fopen(jsonl, "w");
    assert_non_null(f);
    for (int i = 0; i < 2; i++)
        fprintf(f, "{\"image\": \"images/%05d.png\", \"conversations\": [{\"from\": "
                   "\"human\", \"value\": \"<image>\\nDescribe this image.\"}, {\"from\": "
                   "\"gpt\", \"value\": \"a small red circle\"}]}\n", i);
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"conversations\": [{\"from\": \"human\", \"value\": \"What is %d "
                   "plus %d?\"}, {\"from\": \"gpt\", \"value\": \"It is %d.\"}]}\n", i, i,
                2 * i);
    assert_int_equal(fclose(f), 0);
}

static void test_sigkill_resume(void **state) {
    (void)state;
    const char *env = getenv("OC_CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    rng_state = seed;
    int kills_wanted = getenv("OC_CRASH_KILLS") ? atoi(getenv("OC_CRASH_KILLS")) : 50;
    print_message("  seed %llu (OC_CRASH_SEED repeats it)\n", (unsigned long long)seed);

    char dir[512], data[600], conv[700], ref[600], ck[600], tiny[600];
    snprintf(dir, sizeof dir, "%s", tmpdir("crash"));
    snprintf(data, sizeof data, "%s/d", dir);
    snprintf(conv, sizeof conv, "%s/mix.jsonl", data);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(tiny, sizeof tiny, "%s", td("smolvlm-tiny"));
    make_data(data, conv);

    /* the uninterrupted run, timing its startup and its steps */
    const char *argv[32];
    train_argv(argv, "--init", tiny, conv, ref);
    run_opts none = {0, 0, NULL};
    child c;
    double t0 = now_s(), first = 0, last = 0;
    child_start(&c, argv, &none);
    int steps_seen = 0;
    size_t scanned = 0;
    while (child_read(&c, 1)) {
        for (char *p = strstr(c.ebuf + scanned, "\nstep "); p; p = strstr(p + 1, "\nstep ")) {
            scanned = (size_t)(p - c.ebuf) + 1;
            if (!steps_seen++)
                first = now_s();
            last = now_s();
        }
    }
    assert_int_equal(child_wait(&c), 0);
    child_free(&c);
    double startup = first - t0, per_step = (last - first) / (steps_seen - 1);
    assert_true(steps_seen >= 2);
    print_message("  uninterrupted: startup %.0f ms, %.1f ms a step with its save\n",
                  1e3 * startup, 1e3 * per_step);

    int kills = 0, mid_save = 0, runs = 0, trainings = 0;
    while (kills < kills_wanted) {
        /* one training run, in a fresh folder, to its end */
        snprintf(ck, sizeof ck, "%s/ck%d", dir, trainings++);
        int done = 0, kills_here = 0;
        char tmp_prefix[64];
        snprintf(tmp_prefix, sizeof tmp_prefix, ".ck%d.oc-tmp.", trainings - 1);
        while (!done) {
            int resume = oc_is_dir(ck);
            train_argv(argv, resume ? "--resume" : "--init", resume ? ck : tiny, conv, ck);
            int kill_now = kills < kills_wanted, early = uniform() < 0.1;
            double delay = early ? uniform() * startup : uniform() * 2 * per_step, from = 0;
            child_start(&c, argv, &none);
            runs++;
            if (early)
                from = now_s();
            int killed = 0;
            while (child_read(&c, 1)) {
                if (!kill_now || killed)
                    continue;
                if (from == 0 && strstr(c.ebuf, "\nstep "))
                    from = now_s();
                if (from > 0 && now_s() - from >= delay) {
                    kill(c.pid, SIGKILL);
                    killed = 1;
                }
            }
            int rc = child_wait(&c);
            if (killed && rc == 128 + SIGKILL) {
                kills++;
                kills_here++;
                /* a kill in a save leaves the new checkpoint's temporary beside the old */
                mid_save += has_entry(dir, tmp_prefix);
            } else if (rc == 0) {
                done = strstr(c.ebuf, "done; model saved") != NULL;
            } else {
                fail_msg("run %d (%s) exit %d:\n%s", runs, resume ? "resumed" : "fresh", rc,
                         c.ebuf);
            }
            child_free(&c);
            if (runs > 20 * kills_wanted + 20)
                fail_msg("no end after %d runs", runs);
        }
        const char *files[] = {"model.safetensors", "optimizer.safetensors", "config.json"};
        for (int i = 0; i < 3; i++) {
            char a[700], b[700];
            snprintf(a, sizeof a, "%s/%s", ref, files[i]);
            snprintf(b, sizeof b, "%s/%s", ck, files[i]);
            if (!same_file(a, b))
                fail_msg("%s: %s after %d kills differs from the uninterrupted run's", ck,
                         files[i], kills_here);
        }
        print_message("  training %d: %d kills, then the uninterrupted run's bytes\n",
                      trainings, kills_here);
    }
    print_message("  %d kills (%d in a checkpoint save), %d runs, %d trainings\n", kills,
                  mid_save, runs, trainings);
    assert_true(kills >= kills_wanted);
    if (kills_wanted >= 50)
        assert_true(mid_save >= 1); /* the test reached the window it is about */

    /* nothing of the killed writers is left */
    DIR *dp = opendir(dir);
    struct dirent *e;
    while ((e = readdir(dp)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fail_msg("%s/%s is left after the last run", dir, e->d_name);
    closedir(dp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
