/* MMLU's file layout: headerless CSVs question,A,B,C,D,answer, one file per subject and
 * split (dev/NAME_dev.csv, val/NAME_val.csv, test/NAME_test.csv), parsed with libcsv as
 * pandas.read_csv(header=None) parses them: RFC 4180 quotes, blank lines skipped, fields
 * verbatim (no trimming). */
#include "exam.h"

#include <csv.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

#define MAX_CSV_BYTES ((size_t)1 << 30)
#define MAX_FIELDS 64
#define MAX_SUBJECTS 10000

/* libcsv's parser state "inside a field" (libcsv.c's FIELD_BEGUN); with quoted set at
 * the end of the data it means a quoted field that never closed. */
#define LIBCSV_FIELD_BEGUN 2

static int no_space(unsigned char c) {
    (void)c;
    return 0; /* pandas keeps spaces around unquoted fields */
}

/* Rows of fields being collected by libcsv's callbacks. */
typedef struct {
    oc_mmlu_question *q;
    size_t n, cap;
    char *fields[MAX_FIELDS];
    size_t n_fields;   /* of the row being read */
    size_t width;      /* fields per row, from the first */
    size_t row;
    const char *path;
    oc_status status;
} collector;

static void on_field(void *s, size_t len, void *data) {
    collector *c = data;
    if (c->status != OC_OK)
        return;
    if (c->n_fields == MAX_FIELDS) {
        c->status = oc_err(OC_ERR_FORMAT, "%s: row %zu has more than %d fields", c->path,
                           c->row + 1, MAX_FIELDS);
        return;
    }
    if (memchr(s, 0, len)) {
        c->status = oc_err(OC_ERR_FORMAT, "%s: row %zu holds a NUL byte", c->path, c->row + 1);
        return;
    }
    if (!(c->fields[c->n_fields++] = oc_strndup(s, len)))
        c->status = oc_err(OC_ERR_NOMEM, "out of memory reading %s", c->path);
}

static void clear_fields(collector *c) {
    for (size_t i = 0; i < c->n_fields; i++)
        oc_free(c->fields[i]);
    c->n_fields = 0;
}

/* A finished row becomes a question: the last field is the answer letter. */
static oc_status take_row(collector *c) {
    size_t w = c->n_fields;
    if (c->width == 0)
        c->width = w;
    if (w != c->width)
        return oc_err(OC_ERR_FORMAT, "%s: row %zu has %zu fields, the first row %zu", c->path,
                      c->row, w, c->width);
    if (w < 4 || w - 2 > OC_EXAM_MAX_CHOICES)
        return oc_err(OC_ERR_FORMAT, "%s: row %zu has %zu fields; expected question, 2 to 26 "
                      "choices, answer", c->path, c->row, w);
    const char *a = c->fields[w - 1];
    size_t k = w - 2;
    if (!(a[0] >= 'A' && a[0] < 'A' + (int)k && a[1] == 0))
        return oc_err(OC_ERR_FORMAT, "%s: row %zu: the answer is '%.16s', expected a letter "
                      "A..%c", c->path, c->row, a, 'A' + (int)k - 1);
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 64;
        oc_mmlu_question *nq = oc_realloc(c->q, nc * sizeof *nq);
        if (!nq)
            return oc_err(OC_ERR_NOMEM, "out of memory reading %s", c->path);
        c->q = nq;
        c->cap = nc;
    }
    oc_mmlu_question *q = &c->q[c->n];
    memset(q, 0, sizeof *q);
    q->choices = oc_malloc(k * sizeof *q->choices);
    if (!q->choices)
        return oc_err(OC_ERR_NOMEM, "out of memory reading %s", c->path);
    c->n++;
    q->question = c->fields[0];
    memcpy(q->choices, c->fields + 1, k * sizeof *q->choices);
    q->n_choices = k;
    q->answer = a[0] - 'A';
    q->row = c->row;
    oc_free(c->fields[w - 1]);
    c->n_fields = 0; /* the strings now belong to the question */
    return OC_OK;
}

static void on_row(int ch, void *data) {
    (void)ch;
    collector *c = data;
    c->row++;
    if (c->status == OC_OK)
        c->status = take_row(c);
    clear_fields(c);
}

static void free_questions(oc_mmlu_question *q, size_t n) {
    for (size_t i = 0; i < n; i++) {
        oc_free(q[i].question);
        for (size_t j = 0; j < q[i].n_choices; j++)
            oc_free(q[i].choices[j]);
        oc_free(q[i].choices);
    }
    oc_free(q);
}

static oc_status read_csv(const char *path, oc_mmlu_question **out, size_t *n) {
    char *data;
    size_t size;
    OC_TRY(oc_read_file(path, MAX_CSV_BYTES, &data, &size));
    const char *text = data;
    if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) /* pandas drops a UTF-8 BOM */
        text += 3, size -= 3;
    collector c = {.path = path, .status = OC_OK};
    if (!oc_utf8_valid(text, size))
        c.status = oc_err(OC_ERR_FORMAT, "%s: not valid UTF-8", path);
    struct csv_parser p;
    if (c.status == OC_OK && csv_init(&p, CSV_APPEND_NULL) != 0)
        c.status = oc_err(OC_ERR_NOMEM, "out of memory reading %s", path);
    if (c.status == OC_OK) {
        csv_set_space_func(&p, no_space);
        if (csv_parse(&p, text, size, on_field, on_row, &c) != size && c.status == OC_OK)
            c.status = oc_err(OC_ERR_FORMAT, "%s: %s", path, csv_strerror(csv_error(&p)));
        if (c.status == OC_OK && p.quoted && p.pstate == LIBCSV_FIELD_BEGUN)
            c.status = oc_err(OC_ERR_FORMAT, "%s: a quoted field is not closed at the end of "
                              "the file", path);
        csv_fini(&p, on_field, on_row, &c);
        csv_free(&p);
    }
    clear_fields(&c);
    oc_free(data);
    if (c.status != OC_OK) {
        free_questions(c.q, c.n);
        return c.status;
    }
    *out = c.q;
    *n = c.n;
    return OC_OK;
}

static void subject_free(oc_mmlu_subject *s) {
    oc_free(s->name);
    oc_free(s->path);
    free_questions(s->dev, s->n_dev);
    free_questions(s->items, s->n_items);
}

void oc_mmlu_free(oc_mmlu_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        subject_free(&s->subjects[i]);
    oc_free(s->subjects);
    memset(s, 0, sizeof *s);
}

/* Loads one subject: its questions' file and (when present) dev_dir/NAME_dev.csv. */
static oc_status load_subject(const char *name, size_t name_len, const char *file,
                              const char *dev_dir, oc_mmlu_subject *s) {
    memset(s, 0, sizeof *s);
    s->name = oc_strndup(name, name_len);
    s->path = oc_strdup(file);
    if (!s->name || !s->path)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    OC_TRY(read_csv(file, &s->items, &s->n_items));
    if (s->n_items == 0)
        return oc_err(OC_ERR_FORMAT, "%s: no questions", file);
    size_t n = strlen(s->name) + 16;
    char *dev_name = oc_malloc(n);
    if (!dev_name)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    snprintf(dev_name, n, "%s_dev.csv", s->name);
    char *dev = oc_path_join(dev_dir, dev_name);
    oc_free(dev_name);
    if (!dev)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status st = oc_file_exists(dev) ? read_csv(dev, &s->dev, &s->n_dev) : OC_OK;
    oc_free(dev);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Names of split_dir's NAME_SPLIT.csv files, sorted. */
static oc_status list_split(const char *split_dir, const char *suffix, char ***names,
                            size_t *n) {
    DIR *d = opendir(split_dir);
    if (!d)
        return oc_err(OC_ERR_IO, "%s: cannot open the folder: %s", split_dir, strerror(errno));
    char **v = NULL;
    size_t k = 0;
    oc_status s = OC_OK;
    for (struct dirent *e; s == OC_OK && (e = readdir(d));) {
        if (!has_suffix(e->d_name, suffix))
            continue;
        char **nv = k < MAX_SUBJECTS ? oc_realloc(v, (k + 1) * sizeof *v) : NULL;
        if (!nv) {
            s = k < MAX_SUBJECTS ? oc_err(OC_ERR_NOMEM, "out of memory")
                                 : oc_err(OC_ERR_LIMIT, "%s: over %d subjects", split_dir,
                                          MAX_SUBJECTS);
            break;
        }
        v = nv;
        if (!(v[k] = oc_strdup(e->d_name)))
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        else
            k++;
    }
    closedir(d);
    if (s == OC_OK && k == 0)
        s = oc_err(OC_ERR_FORMAT, "%s: no *%s files (an MMLU data folder holds "
                   "dev/NAME_dev.csv and test/NAME_test.csv)", split_dir, suffix);
    if (s != OC_OK) {
        for (size_t i = 0; i < k; i++)
            oc_free(v[i]);
        oc_free(v);
        return s;
    }
    qsort(v, k, sizeof *v, cmp_str);
    *names = v;
    *n = k;
    return OC_OK;
}

static oc_status load_folder(const char *dir, const char *split, oc_mmlu_set *set) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_%s.csv", split);
    char *split_dir = oc_path_join(dir, split), *dev_dir = oc_path_join(dir, "dev");
    char **names = NULL;
    size_t n = 0;
    oc_status s = split_dir && dev_dir ? list_split(split_dir, suffix, &names, &n)
                                       : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK && !(set->subjects = oc_calloc(n, sizeof *set->subjects)))
        s = oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == OC_OK && i < n; i++) {
        char *file = oc_path_join(split_dir, names[i]);
        s = file ? load_subject(names[i], strlen(names[i]) - strlen(suffix), file, dev_dir,
                                &set->subjects[i])
                 : oc_err(OC_ERR_NOMEM, "out of memory");
        set->n = i + 1;
        oc_free(file);
    }
    for (size_t i = 0; i < n; i++)
        oc_free(names[i]);
    oc_free(names);
    oc_free(split_dir);
    oc_free(dev_dir);
    return s;
}

/* One NAME_SPLIT.csv file: the subject is NAME, its shots ../dev/NAME_dev.csv. */
static oc_status load_file(const char *path, oc_mmlu_set *set) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *us = strrchr(base, '_');
    size_t name_len = us && us > base ? (size_t)(us - base) : strlen(base);
    if (!us && has_suffix(base, ".csv"))
        name_len -= 4;
    char *dir = oc_strndup(path, (size_t)(base - path));
    char *dev_dir = dir ? oc_path_join(*dir ? dir : ".", "../dev") : NULL;
    set->subjects = oc_calloc(1, sizeof *set->subjects);
    oc_status s = dev_dir && set->subjects
                      ? load_subject(base, name_len, path, dev_dir, &set->subjects[0])
                      : oc_err(OC_ERR_NOMEM, "out of memory");
    if (set->subjects)
        set->n = 1;
    oc_free(dir);
    oc_free(dev_dir);
    return s;
}

oc_status oc_mmlu_load(const char *path, const char *split, oc_mmlu_set *out) {
    if (!path || !out)
        return oc_err(OC_ERR_INVALID_ARG, "mmlu: NULL argument");
    if (!split)
        split = "test";
    if (strcmp(split, "test") && strcmp(split, "val") && strcmp(split, "dev"))
        return oc_err(OC_ERR_INVALID_ARG, "mmlu: split '%s' is not test, val or dev", split);
    oc_mmlu_set set = {0};
    oc_status s;
    if (oc_is_dir(path))
        s = load_folder(path, split, &set);
    else if (oc_file_exists(path))
        s = load_file(path, &set);
    else
        s = oc_err(OC_ERR_IO, "%s: no such file or folder", path);
    if (s != OC_OK) {
        oc_mmlu_free(&set);
        return s;
    }
    *out = set;
    return OC_OK;
}

/* A field needs quotes when a reader would otherwise split or trim it. */
static int needs_quotes(const char *s) {
    size_t n = strlen(s);
    return strpbrk(s, ",\"\r\n") != NULL || (n && (s[0] == ' ' || s[n - 1] == ' '));
}

int oc_csv_write_row(FILE *f, const char *const *fields, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i && fputc(',', f) == EOF)
            return 0;
        const char *s = fields[i];
        int ok = needs_quotes(s) ? csv_fwrite(f, s, strlen(s)) == 0
                                 : fputs(s, f) != EOF;
        if (!ok)
            return 0;
    }
    return fputc('\n', f) != EOF;
}
