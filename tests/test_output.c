/* The output layer (core/output.c) and the I/O hook (core/io.c):
 *  - a file write is open(O_EXCL | O_NOFOLLOW) of a temporary, write, fsync, close,
 *    rename, fsync of the folder, in that order (traced);
 *  - folder outputs: the old folder is replaced whole, entries ocellus does not write are
 *    kept, a symlink at the output is replaced and not followed, a file there is refused,
 *    the current folder is never replaced, an interrupted two-rename swap is undone;
 *  - locks: a second writer fails at once naming the holder; stale temporaries of dead
 *    writers go, those of live ones stay;
 *  - fault injection, SQLite style: for k = 1, 2, ... the k-th I/O call of a checkpoint
 *    save, of a dataset write and of a model load fails; after each the output is the
 *    old one or the new one, whole, nothing is left behind, and the error names the
 *    output (or, for loading, the file). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "file.h"
#include "io.h"
#include "output.h"
#include "testutil.h"
#include "train_fixture.h"

static char *cat(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static char *slurp(const char *path, size_t *n) {
    char *d = NULL;
    size_t k = 0;
    if (oc_read_file(path, 1 << 28, &d, &k) != OC_OK)
        fail_msg("%s", oc_last_error());
    if (n)
        *n = k;
    return d;
}

static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "name size hash" for every file under dir, sorted: two folders with the same digest
 * hold the same files with the same bytes. */
static void digest_into(const char *dir, const char *rel, char ***lines, size_t *n) {
    char *full = rel[0] ? cat(dir, rel) : strdup(dir);
    DIR *dp = opendir(full);
    assert_non_null(dp);
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char r[1024], *p;
        snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        p = cat(dir, r);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        char line[1200];
        if (S_ISDIR(st.st_mode)) {
            snprintf(line, sizeof line, "%s/", r);
            digest_into(dir, r, lines, n);
        } else if (S_ISLNK(st.st_mode)) {
            snprintf(line, sizeof line, "%s -> link", r);
        } else {
            size_t k;
            char *d = slurp(p, &k);
            snprintf(line, sizeof line, "%s %zu %016llx", r, k, (unsigned long long)fnv(d, k));
            oc_free(d);
        }
        *lines = realloc(*lines, (*n + 1) * sizeof **lines);
        (*lines)[(*n)++] = strdup(line);
        free(p);
    }
    closedir(dp);
    free(full);
}

static char *digest(const char *dir) {
    char **lines = NULL;
    size_t n = 0;
    digest_into(dir, "", &lines, &n);
    qsort(lines, n, sizeof *lines, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(s, lines[i]);
        strcat(s, "\n");
        free(lines[i]);
    }
    free(lines);
    return s;
}

/* The names in dir, space-separated and sorted. */
static char *names(const char *dir) {
    char **v = NULL;
    size_t n = 0, len = 1;
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            v = realloc(v, (n + 1) * sizeof *v);
            v[n++] = strdup(e->d_name);
            len += strlen(e->d_name) + 1;
        }
    closedir(dp);
    qsort(v, n, sizeof *v, cmp_str);
    char *s = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(s, v[i]);
        if (i + 1 < n)
            strcat(s, " ");
        free(v[i]);
    }
    free(v);
    return s;
}

/* ---- traced order of a file write ---------------------------------------------------- */

typedef struct {
    oc_io_op op[64];
    char path[64][512];
    int n;
} trace;

static void record(oc_io_op op, const char *path, void *user) {
    trace *t = user;
    if (t->n < 64) {
        t->op[t->n] = op;
        snprintf(t->path[t->n], sizeof t->path[0], "%s", path ? path : "");
        t->n++;
    }
}

static void test_file_write_order(void **state) {
    (void)state;
    const char *dir = tmpdir("out-order");
    char *path = cat(dir, "a.json");
    trace t;
    memset(&t, 0, sizeof t);
    oc_io_set_trace(record, &t);
    assert_int_equal(oc_write_file_atomic(path, "{}\n", 3), OC_OK);
    oc_io_set_trace(NULL, NULL);
    char seq[512] = "";
    for (int i = 0; i < t.n; i++)
        snprintf(seq + strlen(seq), sizeof seq - strlen(seq), "%s ", oc_io_op_name(t.op[i]));
    print_message("  %s\n", seq);
    assert_string_equal(seq, "open write fsync close rename open fsync close ");
    /* the temporary is a hidden sibling, the rename goes to the path, then the folder */
    assert_non_null(strstr(t.path[0], "/.a.json.oc-tmp."));
    assert_string_equal(t.path[4], path);
    assert_string_equal(t.path[6], dir);
    size_t n;
    char *d = slurp(path, &n);
    assert_int_equal(n, 3);
    oc_free(d);
    char *l = names(dir);
    assert_string_equal(l, "a.json");
    free(l);

    /* a folder output: every file fsync'd, the folders too, the exchange, then the parent */
    char *out = cat(dir, "out");
    for (int round = 0; round < 2; round++) { /* a new folder, then a replacement */
        memset(&t, 0, sizeof t);
        oc_io_set_trace(record, &t);
        oc_out_dir *od;
        assert_int_equal(oc_out_dir_begin(out, NULL, &od), OC_OK);
        assert_int_equal(oc_out_dir_write(od, "x.txt", "x", 1), OC_OK);
        assert_int_equal(oc_out_dir_commit(od), OC_OK);
        oc_io_set_trace(NULL, NULL);
        int renamed = -1, synced_after = 0, file_synced = 0;
        for (int i = 0; i < t.n; i++) {
            if (t.op[i] == OC_IO_FSYNC && strstr(t.path[i], "x.txt"))
                file_synced = 1;
            if (t.op[i] == OC_IO_RENAME && !strcmp(t.path[i], out))
                renamed = i;
            if (renamed >= 0 && t.op[i] == OC_IO_FSYNC && !strcmp(t.path[i], dir))
                synced_after = 1;
        }
        assert_true(file_synced && renamed >= 0 && synced_after);
    }
    l = names(dir);
    assert_string_equal(l, "a.json out");
    free(l);
    free(out);
    free(path);
}

/* ---- folder outputs -------------------------------------------------------------- */

static void test_folders(void **state) {
    (void)state;
    const char *dir = tmpdir("out-folders");
    char *out = cat(dir, "ds"), *extra = cat(dir, "ds/README"), *sub = cat(dir, "ds/notes"),
         *subf = cat(dir, "ds/notes/n.txt"), *victim = cat(dir, "victim");
    oc_out_dir *d;
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_OK);
    assert_int_equal(oc_out_dir_mkdir(d, "images"), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "images/0.png", "old0", 4), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "images/1.png", "old1", 4), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "labels", "old", 3), OC_OK);
    /* until the commit, the output does not exist */
    assert_false(oc_is_dir(out));
    /* a second writer fails at once, naming this process */
    oc_out_dir *d2 = NULL;
    char want[64];
    snprintf(want, sizeof want, "is being written by process %ld", (long)getpid());
    assert_int_equal(oc_out_dir_begin(out, NULL, &d2), OC_ERR_IO);
    assert_non_null(strstr(oc_last_error(), want));
    print_message("  %s\n", oc_last_error());
    assert_int_equal(oc_out_dir_commit(d), OC_OK);

    /* the user's own files in it are kept; images/ is replaced as a whole */
    write_text(extra, "mine\n");
    assert_int_equal(mkdir(sub, 0755), 0);
    write_text(subf, "mine too\n");
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_OK);
    assert_int_equal(oc_out_dir_mkdir(d, "images"), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "images/0.png", "new0", 4), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "labels", "new", 3), OC_OK);
    /* the old output is still all there while the new one is written */
    char *dg = digest(out);
    assert_non_null(strstr(dg, "images/1.png 4"));
    free(dg);
    assert_int_equal(oc_out_dir_commit(d), OC_OK);
    dg = digest(out);
    print_message("%s", dg);
    assert_null(strstr(dg, "images/1.png"));
    assert_non_null(strstr(dg, "README 5"));
    assert_non_null(strstr(dg, "notes/n.txt 9"));
    free(dg);
    char *l = names(dir);
    assert_string_equal(l, "ds");
    free(l);

    /* an aborted write leaves the old output and nothing else */
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "labels", "newer", 5), OC_OK);
    oc_out_dir_abort(d);
    size_t n;
    char *lab = cat(out, "labels"), *t = slurp(lab, &n);
    assert_int_equal(n, 3);
    oc_free(t);
    l = names(dir);
    assert_string_equal(l, "ds");
    free(l);

    /* a symlink at the output is replaced, never followed */
    char *link = cat(dir, "link");
    assert_int_equal(mkdir(victim, 0755), 0);
    char *vf = cat(victim, "keep");
    write_text(vf, "keep\n");
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(oc_out_dir_begin(link, NULL, &d), OC_OK);
    assert_int_equal(oc_out_dir_write(d, "f", "f", 1), OC_OK);
    assert_int_equal(oc_out_dir_commit(d), OC_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    l = names(victim);
    assert_string_equal(l, "keep");
    free(l);

    /* a file where the folder should go is refused */
    char *file = cat(dir, "plain");
    write_text(file, "x");
    assert_int_equal(oc_out_dir_begin(file, NULL, &d), OC_ERR_IO);
    print_message("  %s\n", oc_last_error());

    /* the current folder (or one holding it) is never replaced */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(sub), 0);
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_ERR_INVALID_ARG);
    print_message("  %s\n", oc_last_error());
    assert_int_equal(chdir(cwd), 0);

    /* a writer that died between the two renames of the fallback swap: the old folder,
     * moved aside, is put back before anything else */
    char *aside = cat(dir, ".ds.oc-old.1.abcdefghij");
    assert_int_equal(rename(out, aside), 0);
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_OK);
    assert_true(oc_is_dir(out));
    oc_out_dir_abort(d);
    dg = digest(out);
    assert_non_null(strstr(dg, "README 5"));
    free(dg);
    l = names(dir);
    assert_string_equal(l, "ds link plain victim");
    free(l);

    free(aside);
    free(file);
    free(vf);
    free(link);
    free(lab);
    free(out);
    free(extra);
    free(sub);
    free(subf);
    free(victim);
}

/* ---- stale temporaries --------------------------------------------------------------- */

static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    int st;
    waitpid(p, &st, 0);
    return (long)p; /* reaped: no such process (until the number is reused) */
}

static void test_stale(void **state) {
    (void)state;
    const char *dir = tmpdir("out-stale");
    char *path = cat(dir, "t.json"), name[256], *p;
    long dead = dead_pid(), live = (long)getppid();
    snprintf(name, sizeof name, ".t.json.oc-tmp.%ld.aaaaaaaaaa", dead);
    p = cat(dir, name);
    write_text(p, "dead writer");
    free(p);
    snprintf(name, sizeof name, ".t.json.oc-tmp.%ld.bbbbbbbbbb", live);
    p = cat(dir, name);
    write_text(p, "live writer");
    free(p);
    assert_int_equal(oc_write_file_atomic(path, "1", 1), OC_OK);
    char *l = names(dir), want[512];
    snprintf(want, sizeof want, "%s t.json", name);
    assert_string_equal(l, want); /* the dead one is gone, the live one's stays */
    free(l);

    /* folders: under the lock every temporary of the output is a dead writer's */
    char *out = cat(dir, "ck");
    snprintf(name, sizeof name, ".ck.oc-tmp.%ld.cccccccccc", live);
    p = cat(dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
    char *q = cat(p, "model.safetensors");
    write_text(q, "half");
    free(q);
    free(p);
    oc_out_dir *d;
    assert_int_equal(oc_out_dir_begin(out, NULL, &d), OC_OK);
    assert_int_equal(oc_out_dir_commit(d), OC_OK);
    l = names(dir);
    snprintf(want, sizeof want, ".t.json.oc-tmp.%ld.bbbbbbbbbb ck t.json", live);
    assert_string_equal(l, want);
    free(l);
    free(out);
    free(path);
}

/* ---- fault injection ------------------------------------------------------------------ */

/* After a failed lock call the lock file may stay (one that might be another process's
 * is never removed): it must be free, and empty of a holder. Removes it. */
static void drop_free_lock(const char *root, const char *name) {
    char *p = cat(root, name);
    int fd = open(p, O_RDWR);
    if (fd >= 0) {
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
        close(fd);
        unlink(p);
    }
    free(p);
}

typedef oc_status (*io_op)(void *ctx);

/* Runs op with its k-th I/O call failing (errno err), k = 1, 2, ... until a run makes
 * fewer calls; check(ctx, status, k) looks at the result each time. */
static long io_loop(const char *what, io_op op, void *ctx, int err,
                    void (*check)(void *ctx, oc_status s, long k)) {
    long k = 1, failed = 0;
    for (;; k++) {
        oc_io_fail_at(k, err);
        oc_status s = op(ctx);
        long calls = oc_io_fail_at(0, 0);
        if (calls < k) {
            if (s != OC_OK)
                fail_msg("%s: fails with no failure injected: %s", what, oc_last_error());
            check(ctx, s, 0);
            break;
        }
        failed += s != OC_OK;
        check(ctx, s, k);
        if (k > 100000)
            fail_msg("%s: does not end", what);
    }
    print_message("  %-40s %4ld I/O calls, each failed once (%ld runs failed)\n", what, k - 1,
                  failed);
    return k - 1;
}

typedef struct {
    const char *root, *out;
    oc_trainer *old, *cur; /* the checkpoint there, and the one being saved */
    char *old_digest, *new_digest;
} save_ctx;

static oc_status op_save(void *ctx) {
    save_ctx *c = ctx;
    return oc_trainer_save(c->cur, c->out);
}

/* After each run: the checkpoint is the old or the new one, whole; nothing else is left
 * in its parent; a failure says where. Then the old one is put back for the next run. */
static void check_save(void *ctx, oc_status s, long k) {
    save_ctx *c = ctx;
    char *dg = digest(c->out);
    int is_old = !strcmp(dg, c->old_digest), is_new = !strcmp(dg, c->new_digest);
    if (!is_old && !is_new)
        fail_msg("I/O call %ld failing (%s) leaves a checkpoint that is neither the old nor "
                 "the new one:\n%s", k, oc_last_error(), dg);
    if (s != OC_OK && (s != OC_ERR_IO || !strstr(oc_last_error(), c->out)))
        fail_msg("I/O call %ld failing gives %s \"%s\", which does not name %s", k,
                 oc_status_str(s), oc_last_error(), c->out);
    if (s == OC_OK && !is_new)
        fail_msg("I/O call %ld failing: the save says it succeeded but wrote nothing", k);
    drop_free_lock(c->root, ".ck.oc-lock");
    char *l = names(c->root);
    if (strcmp(l, "cfg ck"))
        fail_msg("I/O call %ld failing (%s) leaves %s", k, oc_last_error(), l);
    free(l);
    free(dg);
    if (is_new)
        assert_int_equal(oc_trainer_save(c->old, c->out), OC_OK);
}

static void test_io_faults_checkpoint(void **state) {
    (void)state;
    const char *root = tmpdir("out-io-ckpt");
    char *cfg = cat(root, "cfg"), *out = cat(root, "ck"), *ref = cat(root, "ref");
    assert_int_equal(mkdir(cfg, 0755), 0);
    fixture_config(cfg, 0);
    char *tokp = cat(cfg, "tokenizer.json");
    write_text(tokp, "{\"model\": {}}");
    oc_train_params tp = oc_train_default_params();
    tp.steps = 4;
    save_ctx c = {root, out, NULL, NULL, NULL, NULL};
    assert_int_equal(oc_trainer_new_from_config(cfg, &tp, &c.old), OC_OK);
    assert_int_equal(oc_trainer_new_from_config(cfg, &tp, &c.cur), OC_OK);
    fixture_batch fb;
    fixture_examples(&fb, 3, 0);
    assert_int_equal(oc_trainer_step(c.old, fb.ex, 4, NULL), OC_OK);
    assert_int_equal(oc_trainer_step(c.cur, fb.ex, 4, NULL), OC_OK);
    assert_int_equal(oc_trainer_step(c.cur, fb.ex, 4, NULL), OC_OK);
    free(fb.pixels);
    assert_int_equal(oc_trainer_save(c.cur, ref), OC_OK);
    c.new_digest = digest(ref);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ref);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(oc_trainer_save(c.old, out), OC_OK);
    c.old_digest = digest(out);
    assert_true(strcmp(c.old_digest, c.new_digest) != 0);
    long n = io_loop("checkpoint save (EIO)", op_save, &c, EIO, check_save);
    assert_true(n > 20);
    io_loop("checkpoint save (ENOSPC)", op_save, &c, ENOSPC, check_save);

    /* and a resume from what is there gives one step's weights and moments */
    oc_trainer *r = NULL;
    assert_int_equal(oc_trainer_resume(out, &tp, &r), OC_OK);
    assert_int_equal(oc_trainer_get_info(r).step, 1);
    oc_trainer_free(r);
    oc_trainer_free(c.old);
    oc_trainer_free(c.cur);
    free(c.old_digest);
    free(c.new_digest);
    free(tokp);
    free(cfg);
    free(out);
    free(ref);
}

typedef struct {
    const char *root, *out;
    oc_shapes_params old, cur;
    char *old_digest, *new_digest;
} ds_ctx;

static oc_status op_dataset(void *ctx) {
    ds_ctx *c = ctx;
    return oc_shapes_write_dataset(&c->cur, c->out);
}

static void check_dataset(void *ctx, oc_status s, long k) {
    ds_ctx *c = ctx;
    char *dg = digest(c->out);
    int is_old = !strcmp(dg, c->old_digest), is_new = !strcmp(dg, c->new_digest);
    if (!is_old && !is_new)
        fail_msg("I/O call %ld failing (%s) leaves a dataset that is neither the old nor the "
                 "new one", k, oc_last_error());
    if (s != OC_OK && (s != OC_ERR_IO || !strstr(oc_last_error(), c->out)))
        fail_msg("I/O call %ld failing: \"%s\" does not name %s", k, oc_last_error(), c->out);
    drop_free_lock(c->root, ".ds.oc-lock");
    char *l = names(c->root);
    if (strcmp(l, "ds"))
        fail_msg("I/O call %ld failing leaves %s", k, l);
    free(l);
    free(dg);
    if (is_new)
        assert_int_equal(oc_shapes_write_dataset(&c->old, c->out), OC_OK);
}

static void test_io_faults_dataset(void **state) {
    (void)state;
    const char *root = tmpdir("out-io-ds");
    ds_ctx c = {root, NULL, oc_shapes_default_params(), oc_shapes_default_params(), NULL,
                NULL};
    char *out = cat(root, "ds");
    c.out = out;
    c.old.n = c.cur.n = 3;
    c.old.image_size = c.cur.image_size = 32;
    c.old.seed = 1;
    c.cur.seed = 2;
    assert_int_equal(oc_shapes_write_dataset(&c.cur, out), OC_OK);
    c.new_digest = digest(out);
    assert_int_equal(oc_shapes_write_dataset(&c.old, out), OC_OK);
    c.old_digest = digest(out);
    long n = io_loop("dataset write (EIO)", op_dataset, &c, EIO, check_dataset);
    assert_true(n > 20);
    free(c.old_digest);
    free(c.new_digest);
    free(out);
}

static oc_status op_load(void *ctx) {
    oc_model *m = NULL;
    oc_status s = oc_model_load((const char *)ctx, NULL, &m);
    if (s == OC_OK)
        assert_non_null(m);
    else
        assert_null(m);
    oc_model_free(m);
    return s;
}

static void check_load(void *ctx, oc_status s, long k) {
    const char *dir = ctx;
    if (s != OC_OK && (s != OC_ERR_IO || !strstr(oc_last_error(), dir)))
        fail_msg("I/O call %ld of a load failing gives %s \"%s\" (want an I/O error naming a "
                 "file of %s)", k, oc_status_str(s), oc_last_error(), dir);
}

static void test_io_faults_load(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", td("smolvlm-tiny"));
    long n = io_loop("model load", op_load, dir, EIO, check_load);
    assert_true(n >= 8);
    /* and an image, through the same reader */
    char img[1024];
    snprintf(img, sizeof img, "%s", td("images/tiny_17x9.png"));
    for (long k = 1; k <= 3; k++) {
        oc_io_fail_at(k, EIO);
        oc_image *im = NULL;
        oc_status s = oc_image_load(img, NULL, &im);
        long calls = oc_io_fail_at(0, 0);
        oc_image_free(im);
        if (calls < k)
            break;
        assert_int_equal(s, OC_ERR_IO);
        assert_non_null(strstr(oc_last_error(), "tiny_17x9.png"));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_write_order),
        cmocka_unit_test(test_folders),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_io_faults_checkpoint),
        cmocka_unit_test(test_io_faults_dataset),
        cmocka_unit_test(test_io_faults_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
