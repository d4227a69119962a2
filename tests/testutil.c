#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "json.h"

const char *td(const char *rel) {
    /* a few buffers in turn, so that one call's result survives the next calls */
    static char bufs[8][4096];
    static int next;
    char *buf = bufs[next++ % 8];
    snprintf(buf, sizeof bufs[0], "%s/%s", OC_TEST_DATA, rel);
    return buf;
}

/* Every folder tmpdir() made, removed when the test program exits (set OC_KEEP_TMP to
 * keep them for a look after a failure). */
#define MAX_TMPDIRS 64
static char made[MAX_TMPDIRS][256];
static int n_made;

static void remove_tmpdirs(void) {
    if (getenv("OC_KEEP_TMP"))
        return;
    for (int i = 0; i < n_made; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%.255s'", made[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", made[i]);
    }
}

const char *tmpdir(const char *tag) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/oc-test-%s-%ld", tag, (long)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    assert_int_equal(system(cmd), 0);
    int seen = 0;
    for (int i = 0; i < n_made && !seen; i++)
        seen = strcmp(made[i], buf) == 0;
    if (!seen && n_made < MAX_TMPDIRS) {
        if (n_made == 0)
            atexit(remove_tmpdirs);
        snprintf(made[n_made++], sizeof made[0], "%s", buf);
    }
    return buf;
}

double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) /* NaN counts as infinitely wrong */
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double rel_err(const float *a, const float *b, size_t n) {
    double mb = 0;
    for (size_t i = 0; i < n; i++)
        mb = fmax(mb, fabs((double)b[i]));
    return max_abs_diff(a, b, n) / (mb > 0 ? mb : 1);
}

float *load_f32(const char *path, const char *name, size_t *n) {
    oc_st_file *f = NULL;
    oc_status s = oc_st_open(path, &f);
    if (s != OC_OK)
        fail_msg("%s", oc_last_error());
    const oc_st_tensor *t = oc_st_find(f, name);
    if (!t)
        fail_msg("%s: no tensor %s", path, name);
    float *x = malloc(t->numel * sizeof(float) + 1);
    assert_int_equal(oc_st_to_f32(t, x, t->numel), OC_OK);
    *n = t->numel;
    oc_st_close(f);
    return x;
}

void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

char *ref_greedy_text(const char *model, int i) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/reference.json", model);
    cJSON *ref;
    assert_int_equal(oc_json_load(td(rel), 1 << 20, &ref), OC_OK);
    const cJSON *c = cJSON_GetArrayItem(oc_json_get(ref, "cases"), i);
    const cJSON *g = oc_json_get(c, "greedy_text");
    assert_true(cJSON_IsString(g));
    char *s = strdup(g->valuestring);
    cJSON_Delete(ref);
    return s;
}
