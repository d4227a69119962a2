/* The nine failures of the reliability issue, each tried the way a hostile or unlucky
 * user would meet it, through the command line or the library:
 *  1. a checkpoint save that fails half-way (a full disk: RLIMIT_FSIZE) must leave the
 *     previous checkpoint whole: resuming from it gives the uninterrupted run's weights;
 *  2. symlinks planted where temporaries were predictable are never followed;
 *  3. `caption --json` of a file name that is not UTF-8 prints valid UTF-8 JSON;
 *  4. a command whose standard output fails (/dev/full) exits 4, saying so;
 *  5. a second `data shapes` on a folder being written fails at once, and two racing
 *     runs never mix their images and labels;
 *  6. `tokenize --decode` of ids that decode to "a\0b" prints the three bytes;
 *  7. a writer killed mid-checkpoint (SIGXFSZ) leaves temporaries that the next save
 *     removes;
 *  8. Ctrl-C while the disk is full never claims that a checkpoint was saved;
 *  9. bounds: a pipe read stops at its limit, /dev/zero is no image, a JPEG without
 *     tables is refused, so are rms_norm_eps -1, overlapping safetensors tensors and an
 *     added token with id -1.
 * Only public calls, the CLI and long-standing internal readers are used, so that the
 * same file also runs against the code from before the fixes (where each part fails). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "json.h"
#include "safetensors.h"
#include "testproc.h"
#include "testutil.h"
#include "train_fixture.h"

/* output.h (core/file.h before the fixes) */
oc_status oc_write_file_atomic(const char *path, const void *data, size_t size);

#define TINY td("smolvlm-tiny")

/* ---- running the CLI (testproc.h) ---- */

#define CLI(...) cli((const char *const[]){__VA_ARGS__, NULL}, NULL, NULL, NULL)

static char *path2(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static char *read_text(const char *path, size_t *n) {
    char *d = NULL;
    size_t k = 0;
    if (oc_read_file(path, 1 << 28, &d, &k) != OC_OK)
        fail_msg("%s: %s", path, oc_last_error());
    if (n)
        *n = k;
    return d;
}

/* A tiny shapes dataset for the training runs. */
static void make_data(const char *dir) {
    assert_int_equal(CLI("data", "shapes", "--split", "train", "--n", "4", "--size", "32",
                         "--out", dir),
                     0);
}

/* model.safetensors of two folders hold the same tensors, byte for byte. */
static int same_weights(const char *a_dir, const char *b_dir) {
    char *a = path2(a_dir, "model.safetensors"), *b = path2(b_dir, "model.safetensors");
    oc_st_file *fa = NULL, *fb = NULL;
    assert_int_equal(oc_st_open(a, &fa), OC_OK);
    assert_int_equal(oc_st_open(b, &fb), OC_OK);
    int same = oc_st_count(fa) == oc_st_count(fb);
    for (size_t i = 0; same && i < oc_st_count(fa); i++) {
        const oc_st_tensor *x = oc_st_at(fa, i), *y = oc_st_find(fb, x->name);
        same = y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0;
    }
    oc_st_close(fa);
    oc_st_close(fb);
    free(a);
    free(b);
    return same;
}

/* The names in a folder, " "-separated, sorted (for messages and checks). */
static char *listing(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | sort | tr '\\n' ' '", dir);
    FILE *p = popen(cmd, "r");
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    pclose(p);
    return buf;
}

/* ---- 1. a checkpoint is whole or absent ---------------------------------------------- */

#define TRAIN_ARGS(data) "--data", data, "--schedule", "constant", "--warmup", "0", \
                         "--threads", "1", "--batch", "2"

static void test_1_checkpoint_set(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-ckpt");
    char *data = path2(dir, "d"), *conv = path2(dir, "d/conversations.jsonl");
    char *ref = path2(dir, "ref"), *ck = path2(dir, "ck"), *again = path2(dir, "again");
    make_data(data);
    /* the uninterrupted run: 2 steps */
    assert_int_equal(CLI("train", "--init", TINY, TRAIN_ARGS(conv), "--steps", "2", "--out",
                         ref),
                     0);
    /* 1 step, then a resume whose save runs out of disk: model.safetensors (844 KB) fits,
     * optimizer.safetensors (1.7 MB) does not */
    assert_int_equal(CLI("train", "--init", TINY, TRAIN_ARGS(conv), "--steps", "1", "--out",
                         ck),
                     0);
    run_opts full = {1200000, 0, NULL};
    char *err = NULL;
    int rc = cli((const char *const[]){"train", "--resume", ck, TRAIN_ARGS(conv), "--steps",
                                       "2", "--out", ck, NULL},
                 &full, NULL, &err);
    print_message("  save on a full disk: exit %d: %s", rc, err);
    assert_int_equal(rc, 4);
    assert_non_null(strstr(err, "optimizer.safetensors"));
    free(err);
    /* ck must still be the whole step-1 checkpoint: resuming it gives the 2-step run */
    err = NULL;
    rc = cli((const char *const[]){"train", "--resume", ck, TRAIN_ARGS(conv), "--steps", "2",
                                   "--out", again, NULL},
             NULL, NULL, &err);
    if (rc != 0)
        fail_msg("resume after the failed save: exit %d: %s", rc, err);
    assert_non_null(strstr(err, "step 1 of 2"));
    free(err);
    if (!same_weights(ref, again))
        fail_msg("resuming after a failed save does not give the uninterrupted run's weights "
                 "(the checkpoint mixed two steps)");
    free(data);
    free(conv);
    free(ref);
    free(ck);
    free(again);
}

/* ---- 2. planted symlinks --------------------------------------------------------- */

static void plant(const char *link, const char *victim) {
    unlink(link);
    assert_int_equal(symlink(victim, link), 0);
}

static void assert_victim(const char *victim) {
    char *t = read_text(victim, NULL);
    if (strcmp(t, "precious\n") != 0)
        fail_msg("%s was overwritten through a planted symlink", victim);
    oc_free(t);
}

static void assert_regular(const char *path) {
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    if (!S_ISREG(st.st_mode))
        fail_msg("%s is not a regular file", path);
}

static void test_2_symlinks(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-symlink");
    char *victim = path2(dir, "victim"), *ck = path2(dir, "ck"), *ds = path2(dir, "ds");
    write_text(victim, "precious\n");
    char link[700], target[600];
    /* a file: the old temporary name NAME.tmpPID */
    snprintf(target, sizeof target, "%s/config.json", dir);
    snprintf(link, sizeof link, "%s.tmp%ld", target, (long)getpid());
    plant(link, victim);
    assert_int_equal(oc_write_file_atomic(target, "{}\n", 3), OC_OK);
    assert_victim(victim);
    assert_regular(target);

    /* a checkpoint */
    fixture_config(dir, 0);
    oc_train_params tp = oc_train_default_params();
    oc_trainer *tr = NULL;
    assert_int_equal(oc_trainer_new_from_config(dir, &tp, &tr), OC_OK);
    assert_int_equal(mkdir(ck, 0755), 0);
    const char *files[] = {"config.json", "model.safetensors", "optimizer.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(link, sizeof link, "%s/%s.tmp%ld", ck, files[i], (long)getpid());
        plant(link, victim);
    }
    assert_int_equal(oc_trainer_save(tr, ck), OC_OK);
    oc_trainer_free(tr);
    assert_victim(victim);
    for (int i = 0; i < 3; i++) {
        snprintf(link, sizeof link, "%s/%s", ck, files[i]);
        assert_regular(link);
    }

    /* a dataset whose images folder holds a symlink where an image will go */
    oc_shapes_params sp = oc_shapes_default_params();
    sp.n = 2;
    sp.image_size = 32;
    assert_int_equal(oc_shapes_write_dataset(&sp, ds), OC_OK);
    snprintf(link, sizeof link, "%s/images/00000.png", ds);
    plant(link, victim);
    for (int i = 0; i < 4; i++) {
        snprintf(link, sizeof link, "%s/%s.tmp%ld", ds,
                 (const char *[]){"captions.jsonl", "vqa.jsonl", "mc.jsonl",
                                  "conversations.jsonl"}[i],
                 (long)getpid());
        plant(link, victim);
    }
    assert_int_equal(oc_shapes_write_dataset(&sp, ds), OC_OK);
    assert_victim(victim);
    snprintf(link, sizeof link, "%s/images/00000.png", ds);
    assert_regular(link);
    free(victim);
    free(ck);
    free(ds);
}

/* ---- 3. JSON of a name that is not UTF-8 --------------------------------------------- */

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            return 0;
        i += k;
    }
    return 1;
}

static void test_3_json_utf8(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-utf8");
    char img[600], cmd[1400];
    snprintf(img, sizeof img, "%s/a\"\xff" "b.png", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", td("images/tiny_17x9.png"), img);
    assert_int_equal(system(cmd), 0);
    char *out = NULL, *err = NULL;
    int rc = cli((const char *const[]){"caption", img, "--model", TINY, "--max-tokens", "2",
                                       "--json", NULL},
                 NULL, &out, &err);
    assert_int_equal(rc, 0);
    if (!valid_utf8((const unsigned char *)out, strlen(out)))
        fail_msg("caption --json printed invalid UTF-8: %s", out);
    cJSON *j = NULL;
    assert_int_equal(oc_json_parse(out, strlen(out), "stdout", &j), OC_OK);
    const cJSON *im = oc_json_get(j, "image");
    assert_true(cJSON_IsString(im));
    char want[700];
    snprintf(want, sizeof want, "%s/a\"\xEF\xBF\xBD" "b.png", dir);
    assert_string_equal(im->valuestring, want);
    assert_non_null(strstr(err, "not UTF-8")); /* and the replacement is reported */
    cJSON_Delete(j);
    free(out);
    free(err);
}

/* ---- 4. standard output that fails ------------------------------------------------- */

static void test_4_stdout_errors(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-stdout");
    char *data = path2(dir, "d"), *vqa = path2(dir, "d/vqa.jsonl"),
         *conv = path2(dir, "d/conversations.jsonl");
    make_data(data);
    /* td() hands out 8 buffers in turn: keep copies */
    char *img = strdup(td("images/tiny_17x9.png")), *tiny = strdup(TINY);
#undef TINY
#define TINY tiny
    const char *const *cmds[] = {
        (const char *const[]){"tokenize", "--tokenizer", TINY, "hello world", NULL},
        (const char *const[]){"tokenize", "--tokenizer", TINY, "--decode", "107,231,108",
                              NULL},
        (const char *const[]){"caption", img, "--model", TINY, "--max-tokens", "3", NULL},
        (const char *const[]){"caption", img, "--model", TINY, "--max-tokens", "3", "--json",
                              NULL},
        (const char *const[]){"ask", img, "Why?", "--model", TINY, "--max-tokens", "3",
                              "--stream", NULL},
        (const char *const[]){"data", "check", conv, "--model", TINY, NULL},
        (const char *const[]){"eval", "vqa", "--model", TINY, "--data", vqa, "--limit", "2",
                              "--max-tokens", "2", NULL},
        (const char *const[]){"bench", "--model", TINY, "--gen-tokens", "2", "--runs", "1",
                              NULL},
        (const char *const[]){"--help", NULL},
    };
    run_opts full = {0, 0, "/dev/full"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *err = NULL;
        int rc = cli(cmds[i], &full, NULL, &err);
        print_message("  ocellus %s > /dev/full: exit %d, %s", cmds[i][0], rc, err);
        if (rc != 4 || !strstr(err, "standard output"))
            fail_msg("ocellus %s > /dev/full: exit %d (want 4 and a message)", cmds[i][0], rc);
        free(err);
    }
#undef TINY
#define TINY td("smolvlm-tiny")
    free(img);
    free(tiny);
    free(data);
    free(vqa);
    free(conv);
}

/* ---- 5. two writers of one dataset --------------------------------------------------- */

/* Every line of captions.jsonl names an image that is the scene of that line, of the seed
 * info.json gives: the images and the labels come from one run. */
static void check_dataset_consistent(const char *ds) {
    char *info_path = path2(ds, "info.json"), *cap_path = path2(ds, "captions.jsonl");
    cJSON *info = NULL;
    assert_int_equal(oc_json_load(info_path, 1 << 20, &info), OC_OK);
    uint64_t seed = (uint64_t)oc_json_get(info, "seed")->valuedouble;
    size_t n = (size_t)oc_json_get(info, "n")->valuedouble, size = 32;
    cJSON_Delete(info);
    char *text = read_text(cap_path, NULL), *save = NULL;
    size_t i = 0, wrong = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = NULL;
        assert_int_equal(oc_json_parse(line, strlen(line), cap_path, &j), OC_OK);
        char *img_path = path2(ds, oc_json_get(j, "image")->valuestring);
        oc_image *got = NULL, *want = NULL;
        char *caption = NULL;
        assert_int_equal(oc_image_load(img_path, NULL, &got), OC_OK);
        assert_int_equal(oc_shapes_scene(OC_SPLIT_TRAIN, seed, i, (uint32_t)size, &want,
                                         &caption),
                         OC_OK);
        wrong += memcmp(oc_image_rgb(got), oc_image_rgb(want), size * size * 3) != 0 ||
                 strcmp(caption, oc_json_get(j, "caption")->valuestring) != 0;
        oc_image_free(got);
        oc_image_free(want);
        oc_free(caption);
        free(img_path);
        cJSON_Delete(j);
        i++;
    }
    if (i != n || wrong)
        fail_msg("%s: %zu of %zu images do not match their labels (%zu lines)", ds, wrong, n,
                 i);
    oc_free(text);
    free(info_path);
    free(cap_path);
}

static void test_5_two_writers(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-writers");
    char *ds = path2(dir, "ds"), *lock = path2(dir, ".ds.oc-lock");
    /* a: the folder is being written (this process holds its lock) */
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    dprintf(fd, "%ld\n", (long)getpid());
    char *err = NULL;
    int rc = cli((const char *const[]){"data", "shapes", "--split", "train", "--n", "3",
                                       "--size", "32", "--out", ds, NULL},
                 NULL, NULL, &err);
    char want[128];
    snprintf(want, sizeof want, "is being written by process %ld", (long)getpid());
    print_message("  a second writer: exit %d, %s", rc, err);
    if (rc == 0 || !strstr(err, want))
        fail_msg("data shapes into a folder being written: exit %d, \"%s\"", rc, err);
    free(err);
    close(fd);
    unlink(lock);

    /* b: two runs at once (seeds 1 and 2): whatever the timing, the folder ends up one
     * run's dataset, and a run that does not write it says why */
    const char *argv[2][16];
    for (int k = 0; k < 2; k++) {
        const char *a[] = {OC_CLI_PATH, "data", "shapes", "--split", "train", "--n", "300",
                           "--size", "32", "--seed", k ? "2" : "1", "--out", ds, NULL};
        memcpy(argv[k], a, sizeof a);
    }
    run_opts none = {0, 0, NULL};
    child c[2];
    child_start(&c[0], argv[0], &none);
    /* start the second once the first is visibly writing */
    char *images = path2(ds, "images");
    for (int t = 0; t < 5000; t++) {
        char *l = listing(dir);
        if (strstr(l, ".ds.oc-tmp.") || (oc_is_dir(images) && strlen(listing(images)) > 0))
            break;
        usleep(1000);
    }
    child_start(&c[1], argv[1], &none);
    int ok = 0;
    for (int k = 0; k < 2; k++) {
        rc = child_wait(&c[k]);
        print_message("  run %d: exit %d %s", k, rc, c[k].ebuf);
        if (rc == 0)
            ok++;
        else if (!strstr(c[k].ebuf, "is being written by process"))
            fail_msg("run %d: exit %d: %s", k, rc, c[k].ebuf);
        child_free(&c[k]);
    }
    assert_true(ok >= 1);
    check_dataset_consistent(ds);
    free(images);
    free(ds);
    free(lock);
}

/* ---- 6. decoded text with a NUL --------------------------------------------------- */

static void test_6_decode_nul(void **state) {
    (void)state;
    oc_tokenizer *tok = NULL;
    assert_int_equal(oc_tokenizer_load(TINY, &tok), OC_OK);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(oc_tokenize(tok, "a\0b", 3, 0, &ids, &n), OC_OK);
    char list[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "",
                 (int)ids[i]);
    oc_free(ids);
    oc_tokenizer_free(tok);
    char *out = NULL;
    child c;
    const char *argv[] = {OC_CLI_PATH, "tokenize", "--tokenizer", TINY, "--decode", list, NULL};
    run_opts none = {0, 0, NULL};
    child_start(&c, argv, &none);
    assert_int_equal(child_wait(&c), 0);
    if (c.on != 4 || memcmp(c.obuf, "a\0b\n", 4) != 0)
        fail_msg("tokenize --decode %s printed %zu bytes, not \"a\\0b\\n\"", list, c.on);
    child_free(&c);
    const char *argj[] = {"tokenize", "--tokenizer", TINY, "--json", "--decode", list, NULL};
    assert_int_equal(cli(argj, NULL, &out, NULL), 0);
    if (!strstr(out, "\"a\\u0000b\""))
        fail_msg("tokenize --json --decode: %s", out);
    free(out);
}

/* ---- 7. temporaries of a killed writer --------------------------------------------- */

static void test_7_stale_temporaries(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-stale");
    char *data = path2(dir, "d"), *conv = path2(dir, "d/conversations.jsonl"),
         *ck = path2(dir, "ck");
    make_data(data);
    assert_int_equal(CLI("train", "--init", TINY, TRAIN_ARGS(conv), "--steps", "1", "--out",
                         ck),
                     0);
    /* killed by SIGXFSZ while writing optimizer.safetensors */
    run_opts kill_mid = {1200000, 1, NULL};
    int rc = cli((const char *const[]){"train", "--resume", ck, TRAIN_ARGS(conv), "--steps",
                                       "2", "--out", ck, NULL},
                 &kill_mid, NULL, NULL);
    assert_int_equal(rc, 128 + SIGXFSZ);
    print_message("  after the kill: %s: %s\n", dir, listing(dir));
    print_message("  after the kill: ck: %s\n", listing(ck));
    /* the next save removes what the dead writer left */
    char *err = NULL;
    rc = cli((const char *const[]){"train", "--resume", ck, TRAIN_ARGS(conv), "--steps", "3",
                                   "--out", ck, NULL},
             NULL, NULL, &err);
    if (rc != 0)
        fail_msg("resume after the kill: exit %d: %s", rc, err);
    free(err);
    const char *l = listing(dir);
    print_message("  after the next save: %s: %s\n", dir, l);
    assert_string_equal(l, "ck d ");
    l = listing(ck);
    print_message("  after the next save: ck: %s\n", l);
    assert_string_equal(l, "config.json generation_config.json model.safetensors "
                           "optimizer.safetensors preprocessor_config.json tokenizer.json ");
    free(data);
    free(conv);
    free(ck);
}

/* ---- 8. Ctrl-C on a full disk ---------------------------------------------------- */

static void test_8_sigint_full_disk(void **state) {
    (void)state;
    const char *dir = tmpdir("rel-sigint");
    char *data = path2(dir, "d"), *conv = path2(dir, "d/conversations.jsonl"),
         *ck = path2(dir, "ck");
    make_data(data);
    const char *argv[] = {OC_CLI_PATH, "train", "--init", TINY, TRAIN_ARGS(conv), "--steps",
                          "1000000", "--out", ck, NULL};
    run_opts full = {100000, 0, NULL}; /* model.safetensors (844 KB) cannot be written */
    child c;
    child_start(&c, argv, &full);
    time_t t0 = time(NULL);
    while (!strstr(c.ebuf, "step 1/") && time(NULL) - t0 < 120 && child_read(&c, 100))
        ;
    assert_int_equal(kill(c.pid, SIGINT), 0);
    int rc = child_wait(&c);
    print_message("  exit %d:\n%s", rc, strstr(c.ebuf, "ocellus train: interrupted")
                                           ? strstr(c.ebuf, "ocellus train: interrupted")
                                           : c.ebuf);
    if (strstr(c.ebuf, "checkpoint saved"))
        fail_msg("claims a checkpoint was saved when its save failed");
    assert_int_equal(rc, 4);
    assert_non_null(strstr(c.ebuf, "could not be saved"));
    assert_non_null(strstr(c.ebuf, "model.safetensors"));
    child_free(&c);
    free(data);
    free(conv);
    free(ck);
}

/* ---- 9. bounds ------------------------------------------------------------------- */

typedef struct {
    int fd;
    size_t written;
} pipe_writer;

static void *write_forever(void *arg) {
    pipe_writer *w = arg;
    static char chunk[1 << 16];
    for (;;) {
        ssize_t n = write(w->fd, chunk, sizeof chunk);
        if (n <= 0)
            break;
        w->written += (size_t)n;
    }
    close(w->fd);
    return NULL;
}

static void test_9_bounds(void **state) {
    (void)state;
    /* a. a stream is read to its limit and no further (the buffer doubled past it) */
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pipe_writer w = {p[1], 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_forever, &w), 0);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
    const size_t max = (size_t)4 << 20;
    char *data = NULL;
    size_t n = 0;
    oc_status s = oc_read_file(path, max, &data, &n);
    close(p[0]);
    pthread_join(th, NULL);
    print_message("  a stream against a %zu-byte limit: %s; %zu bytes taken from the pipe\n",
                  max, oc_last_error(), w.written);
    assert_int_equal(s, OC_ERR_LIMIT);
    if (w.written > max + ((size_t)2 << 20))
        fail_msg("read %zu bytes of a stream for a limit of %zu", w.written, max);

    /* b. /dev/zero is not an image */
    oc_image *img = NULL;
    s = oc_image_load("/dev/zero", NULL, &img);
    print_message("  /dev/zero: %s\n", oc_last_error());
    assert_int_equal(s, OC_ERR_IO);
    assert_null(img);

    /* c. a 8000 x 8000 JPEG with no tables at all, with quantisation tables only, with
     * Huffman tables only */
    static const uint8_t sof[] = {0xFF, 0xC0, 0, 17, 8, 0x1F, 0x40, 0x1F, 0x40, 3,
                                  1,    0x22, 0, 2,  0x11, 1, 3, 0x11, 1};
    static const uint8_t sos[] = {0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0};
    uint8_t dqt[2 + 2 + 2 * 65], dht[2 + 2 + 4 * 18];
    size_t k = 0;
    dqt[k++] = 0xFF, dqt[k++] = 0xDB, dqt[k++] = 0, dqt[k++] = 2 + 2 * 65;
    for (int t = 0; t < 2; t++) {
        dqt[k++] = (uint8_t)t;
        for (int i = 0; i < 64; i++)
            dqt[k++] = 1;
    }
    k = 0;
    dht[k++] = 0xFF, dht[k++] = 0xC4, dht[k++] = 0, dht[k++] = 2 + 4 * 18;
    for (int t = 0; t < 4; t++) { /* one 1-bit code each, for symbol 0 */
        dht[k++] = (uint8_t)((t >> 1) << 4 | (t & 1));
        dht[k++] = 1;
        memset(dht + k, 0, 15);
        k += 15;
        dht[k++] = 0;
    }
    for (int v = 0; v < 3; v++) {
        uint8_t jpg[512];
        size_t m = 0;
        jpg[m++] = 0xFF, jpg[m++] = 0xD8;
        if (v == 1)
            memcpy(jpg + m, dqt, sizeof dqt), m += sizeof dqt;
        if (v == 2)
            memcpy(jpg + m, dht, sizeof dht), m += sizeof dht;
        memcpy(jpg + m, sof, sizeof sof), m += sizeof sof;
        memcpy(jpg + m, sos, sizeof sos), m += sizeof sos;
        memset(jpg + m, 0, 96), m += 96;
        jpg[m++] = 0xFF, jpg[m++] = 0xD9;
        img = NULL;
        s = oc_image_load_memory(jpg, m, "bomb.jpg", NULL, &img);
        print_message("  %zu-byte JPEG of 8000 x 8000 (%s): %s\n", m,
                      (const char *[]){"no tables", "no Huffman tables",
                                       "no quantisation tables"}[v],
                      s == OC_OK ? "decoded" : oc_last_error());
        oc_image_free(img);
        if (v == 1) { /* libjpeg, as under Pillow, falls back on the standard Huffman tables
                         (Motion-JPEG) and fills the missing data: within the pixel limit */
            assert_int_equal(s, OC_OK);
            continue;
        }
        if (s == OC_OK)
            fail_msg("a JPEG with %s decodes", v == 0 ? "no tables" : "no quantisation tables");
        assert_int_equal(s, OC_ERR_FORMAT);
    }

    /* d. rms_norm_eps -1 */
    const char *dir = tmpdir("rel-bounds");
    const char *links[] = {"generation_config.json", "preprocessor_config.json",
                           "tokenizer.json", "model.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        char from[600], to[600];
        snprintf(from, sizeof from, "smolvlm-tiny/%s", links[i]);
        snprintf(to, sizeof to, "%s/%s", dir, links[i]);
        assert_int_equal(symlink(td(from), to), 0);
    }
    cJSON *cfg = NULL;
    assert_int_equal(oc_json_load(td("smolvlm-tiny/config.json"), 1 << 20, &cfg), OC_OK);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "text_config"),
                                           "rms_norm_eps", cJSON_CreateNumber(-1));
    char *text = cJSON_Print(cfg), cpath[600];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    write_text(cpath, text);
    cJSON_free(text);
    cJSON_Delete(cfg);
    oc_model *m = NULL;
    s = oc_model_load(dir, NULL, &m);
    print_message("  rms_norm_eps -1: %s\n", s == OC_OK ? "loaded" : oc_last_error());
    oc_model_free(m);
    assert_int_equal(s, OC_ERR_FORMAT);
    assert_non_null(strstr(oc_last_error(), "rms_norm_eps"));

    /* e. two tensors on the same bytes */
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    size_t hl = strlen(hdr);
    uint8_t st_bytes[256] = {0};
    for (int i = 0; i < 8; i++)
        st_bytes[i] = (uint8_t)(hl >> (8 * i));
    memcpy(st_bytes + 8, hdr, hl);
    char stp[600];
    snprintf(stp, sizeof stp, "%s/overlap.safetensors", dir);
    write_bytes(stp, st_bytes, 8 + hl + 12);
    oc_st_file *f = NULL;
    s = oc_st_open(stp, &f);
    print_message("  overlapping tensors: %s\n", s == OC_OK ? "accepted" : oc_last_error());
    oc_st_close(f);
    assert_int_equal(s, OC_ERR_FORMAT);

    /* f. an added token with id -1 */
    char tpath[600];
    snprintf(tpath, sizeof tpath, "%s/tok.json", dir);
    write_text(tpath, "{\"added_tokens\": [{\"id\": -1, \"content\": \"<x>\", \"special\": true}],"
                      " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1},"
                      " \"merges\": []}}");
    oc_tokenizer *tok = NULL;
    s = oc_tokenizer_load(tpath, &tok);
    print_message("  added token id -1: %s\n", s == OC_OK ? "accepted" : oc_last_error());
    oc_tokenizer_free(tok);
    assert_int_equal(s, OC_ERR_FORMAT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_checkpoint_set),
        cmocka_unit_test(test_2_symlinks),
        cmocka_unit_test(test_3_json_utf8),
        cmocka_unit_test(test_4_stdout_errors),
        cmocka_unit_test(test_5_two_writers),
        cmocka_unit_test(test_6_decode_nul),
        cmocka_unit_test(test_7_stale_temporaries),
        cmocka_unit_test(test_8_sigint_full_disk),
        cmocka_unit_test(test_9_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
