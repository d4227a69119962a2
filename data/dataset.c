/* Fine-tuning datasets: open (index and check every line), encode an example (chat
 * format + tokenizer + image processor), and hand out batches in a seeded order that
 * changes every epoch. Lines are re-parsed when encoded, so memory stays small whatever
 * the file's size. */
#include "dataset.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "json.h"
#include "rng.h"
#include "safetensors.h"
#include "tokenizer.h"

#define MAX_LINE_BYTES ((size_t)64 << 20)
#define MAX_PROCESSOR_JSON ((size_t)1 << 20)

/* ---- the model's side ------------------------------------------------------------- */

static oc_status load_processor(const char *dir, oc_data_model *m) {
    static const char *const names[] = {"preprocessor_config.json", "processor_config.json"};
    for (int i = 0; i < 2; i++) {
        char *path = oc_path_join(dir, names[i]);
        if (!path)
            return oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
        if (!oc_file_exists(path)) {
            oc_free(path);
            continue;
        }
        cJSON *j = NULL;
        oc_status s = oc_json_load(path, MAX_PROCESSOR_JSON, &j);
        if (s == OC_OK) {
            /* processor_config.json nests the image processor's settings */
            const cJSON *ip = oc_json_get(j, "image_processor");
            const cJSON *src = cJSON_IsObject(ip) ? ip : j;
            s = m->cfg.family == OC_FAMILY_SMOLVLM ? oc_idefics3_proc_from_json(src, path, &m->smol)
                                                   : oc_clip_proc_from_json(src, path, &m->clip);
        }
        cJSON_Delete(j);
        oc_free(path);
        return s;
    }
    return oc_err(OC_ERR_IO, "%s: no preprocessor_config.json or processor_config.json", dir);
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return oc_strdup(".");
    return oc_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static oc_status load_model_files(const char *dir, oc_data_model *out);

oc_status oc_data_model_load(const char *dir, oc_data_model *out) {
    if (!dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "dataset: NULL model folder");
    if (oc_is_dir(dir))
        return load_model_files(dir, out);
    /* the path of a config.json: its folder holds the other files */
    char *d = dir_of(dir);
    if (!d)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
    oc_status s = oc_file_exists(dir) ? load_model_files(d, out)
                                      : oc_err(OC_ERR_IO, "%s: no such model folder", dir);
    oc_free(d);
    return s;
}

static oc_status load_model_files(const char *dir, oc_data_model *out) {
    oc_data_model m;
    memset(&m, 0, sizeof m);
    OC_TRY(oc_config_load(dir, &m.cfg));
    OC_TRY(oc_config_check_trainable(&m.cfg, dir));
    OC_TRY(load_processor(dir, &m));
    uint32_t S = m.cfg.vision.image_size;
    if (m.cfg.family == OC_FAMILY_SMOLVLM && m.smol.tile != S)
        return oc_err(OC_ERR_FORMAT, "%s: the processor's tile %u differs from the vision "
                      "image_size %u", dir, m.smol.tile, S);
    if (m.cfg.family == OC_FAMILY_LLAVA && (m.clip.crop_h != S || m.clip.crop_w != S))
        return oc_err(OC_ERR_FORMAT, "%s: the processor's crop %ux%u differs from the vision "
                      "image_size %u", dir, m.clip.crop_h, m.clip.crop_w, S);
    char *path = oc_path_join(dir, "tokenizer.json");
    if (!path)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", dir);
    oc_status s = oc_tokenizer_load_file(path, &m.tok);
    oc_free(path);
    if (s != OC_OK)
        return s;
    *out = m;
    return OC_OK;
}

void oc_data_model_free(oc_data_model *m) {
    if (!m)
        return;
    oc_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

/* ---- the dataset ------------------------------------------------------------------ */

typedef struct {
    size_t off, len; /* bytes of the line in the file */
    size_t line;     /* 1-based, for errors */
} line_ref;

typedef oc_data_encoded encoded;

struct oc_dataset {
    char *path, *base_dir;
    oc_dataset_params params;
    oc_data_model model;
    uint32_t image_seq, tile;  /* image tokens per tile, tile side */
    size_t max_tokens;
    oc_mapped_file file;
    line_ref *lines;
    size_t n;
    /* batching */
    uint64_t position;         /* examples handed out so far */
    size_t *order;             /* this epoch's order */
    uint64_t order_epoch;      /* the epoch `order` is for (UINT64_MAX: none yet) */
    encoded *held;             /* what the last get/next_batch returned */
    size_t n_held, cap_held;
};

oc_dataset_params oc_dataset_default_params(void) {
    oc_dataset_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 0;
    p.max_images = 16;
    p.max_tiles = 64;
    p.image_limits = oc_image_default_limits();
    p.shuffle = 1;
    p.seed = 0;
    return p;
}

static void encoded_free(encoded *e) {
    oc_free(e->ids);
    oc_free(e->labels);
    oc_free(e->pixels);
    memset(e, 0, sizeof *e);
}

void oc_data_encoded_free(oc_data_encoded *e) {
    if (e)
        encoded_free(e);
}

static void release_held(oc_dataset *ds) {
    for (size_t i = 0; i < ds->n_held; i++)
        encoded_free(&ds->held[i]);
    ds->n_held = 0;
}

void oc_dataset_free(oc_dataset *ds) {
    if (!ds)
        return;
    release_held(ds);
    oc_free(ds->held);
    oc_free(ds->order);
    oc_free(ds->lines);
    oc_unmap_file(&ds->file);
    oc_data_model_free(&ds->model);
    oc_free(ds->path);
    oc_free(ds->base_dir);
    oc_free(ds);
}

size_t oc_dataset_size(const oc_dataset *ds) { return ds ? ds->n : 0; }

static oc_data_line_limits line_limits(const oc_dataset *ds) {
    oc_data_line_limits l = {ds->params.max_images, ds->max_tokens};
    return l;
}

static oc_status parse_line(const oc_dataset *ds, size_t i, oc_data_line *out) {
    const line_ref *r = &ds->lines[i];
    oc_data_line_limits lim = line_limits(ds);
    return oc_data_line_parse((const char *)ds->file.data + r->off, r->len, ds->path, r->line,
                              ds->base_dir, &lim, out);
}

static size_t count_image_tokens(const oc_dataset *ds, const int32_t *ids, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ids[i] == ds->model.cfg.image_token_id;
    return k;
}

/* pixel_values of a pre-tokenized line: checks the tensor's shape; *n_tiles its first dim;
 * pixels (optional) receives the values. */
static oc_status read_pixel_tensor(const oc_dataset *ds, const oc_data_line *l,
                                   uint32_t *n_tiles, float **pixels) {
    oc_st_file *f = NULL;
    OC_TRY(oc_st_open(l->pv_file, &f));
    oc_status s = OC_OK;
    const oc_st_tensor *t = oc_st_find(f, l->pv_tensor);
    int64_t S = ds->tile;
    if (!t)
        s = oc_err(OC_ERR_FORMAT, "%s: no tensor '%s'", l->pv_file, l->pv_tensor);
    else if (t->ndim != 4 || t->shape[1] != 3 || t->shape[2] != S || t->shape[3] != S ||
             t->shape[0] < 1 || t->shape[0] > 4096)
        s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' must have shape [tiles, 3, %lld, %lld]",
                   l->pv_file, l->pv_tensor, (long long)S, (long long)S);
    if (s == OC_OK) {
        *n_tiles = (uint32_t)t->shape[0];
        if (pixels) {
            float *p = oc_malloc(t->numel * sizeof *p);
            s = p ? oc_st_to_f32(t, p, t->numel) : oc_err(OC_ERR_NOMEM, "out of memory");
            if (s == OC_OK)
                *pixels = p;
            else
                oc_free(p);
        }
    }
    oc_st_close(f);
    return s;
}

/* Model-dependent checks of a parsed line, done once at open. */
static oc_status check_line(const oc_dataset *ds, const oc_data_line *l) {
    for (size_t i = 0; i < l->n_images; i++)
        if (!oc_file_exists(l->images[i]))
            return oc_err(OC_ERR_IO, "image '%s' not found", l->images[i]);
    if (l->kind != OC_DATA_TOKENS)
        return OC_OK;
    uint32_t vocab = ds->model.cfg.text.vocab;
    for (size_t i = 0; i < l->n_ids; i++) {
        if ((uint32_t)l->ids[i] >= vocab)
            return oc_err(OC_ERR_FORMAT, "\"input_ids\"[%zu] = %d is outside the vocabulary "
                          "of %u", i, l->ids[i], vocab);
        if (l->labels[i] != OC_IGNORE_LABEL && (uint32_t)l->labels[i] >= vocab)
            return oc_err(OC_ERR_FORMAT, "\"labels\"[%zu] = %d is outside the vocabulary of %u",
                          i, l->labels[i], vocab);
    }
    size_t k = count_image_tokens(ds, l->ids, l->n_ids);
    if (l->pv_file) {
        uint32_t tiles = 0;
        OC_TRY(read_pixel_tensor(ds, l, &tiles, NULL));
        if (k != (size_t)tiles * ds->image_seq)
            return oc_err(OC_ERR_FORMAT, "%zu image tokens but %u tiles of %u tokens in "
                          "\"pixel_values\"", k, tiles, ds->image_seq);
    } else if (k % ds->image_seq != 0) {
        return oc_err(OC_ERR_FORMAT, "%zu image tokens is not a whole number of tiles of %u",
                      k, ds->image_seq);
    } else if (k && !l->n_images) {
        return oc_err(OC_ERR_FORMAT, "image tokens but no \"images\" or \"pixel_values\"");
    } else if (!k && l->n_images) {
        return oc_err(OC_ERR_FORMAT, "\"images\" given but \"input_ids\" has no image token");
    }
    return OC_OK;
}

/* Indexes the non-blank lines of the mapped file, checking each. */
static oc_status index_lines(oc_dataset *ds) {
    const char *text = (const char *)ds->file.data;
    size_t size = ds->file.size, cap = 0, line = 0;
    for (size_t pos = 0; pos < size;) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - text) : size;
        line++;
        size_t a = pos, b = end;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        pos = end + 1;
        if (a == b)
            continue; /* blank */
        if (b - a > MAX_LINE_BYTES)
            return oc_err(OC_ERR_LIMIT, "%s:%zu: line longer than %zu bytes", ds->path, line,
                          MAX_LINE_BYTES);
        if (ds->n == cap) {
            cap = cap ? 2 * cap : 1024;
            line_ref *l = oc_realloc(ds->lines, cap * sizeof *l);
            if (!l)
                return oc_err(OC_ERR_NOMEM, "%s: out of memory", ds->path);
            ds->lines = l;
        }
        ds->lines[ds->n] = (line_ref){a, b - a, line};
        oc_data_line parsed;
        OC_TRY(parse_line(ds, ds->n, &parsed));
        oc_status s = check_line(ds, &parsed);
        oc_data_line_free(&parsed);
        if (s != OC_OK)
            return oc_err_prefix(s, "%s:%zu: ", ds->path, line);
        ds->n++;
    }
    if (ds->n == 0)
        return oc_err(OC_ERR_FORMAT, "%s: no examples", ds->path);
    return OC_OK;
}

oc_status oc_dataset_open(const char *path, const char *model_dir,
                          const oc_dataset_params *params, oc_dataset **out) {
    if (!path || !model_dir || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_open: NULL argument");
    oc_dataset *ds = oc_calloc(1, sizeof *ds);
    if (!ds)
        return oc_err(OC_ERR_NOMEM, "%s: out of memory", path);
    ds->params = params ? *params : oc_dataset_default_params();
    ds->order_epoch = UINT64_MAX;
    ds->path = oc_strdup(path);
    ds->base_dir = dir_of(path);
    oc_status s = ds->path && ds->base_dir ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    if (s == OC_OK && (ds->params.max_images == 0 || ds->params.max_tiles == 0))
        s = oc_err(OC_ERR_INVALID_ARG, "dataset: max_images and max_tiles must be positive");
    if (s == OC_OK)
        s = oc_data_model_load(model_dir, &ds->model);
    if (s == OC_OK) {
        ds->image_seq = oc_config_image_seq(&ds->model.cfg);
        ds->tile = ds->model.cfg.vision.image_size;
        ds->max_tokens = ds->params.max_tokens ? ds->params.max_tokens
                                               : ds->model.cfg.text.max_pos;
        if (ds->image_seq == 0 || ds->max_tokens == 0)
            s = oc_err(OC_ERR_FORMAT, "%s: no image tokens per tile or no context", model_dir);
    }
    if (s == OC_OK)
        s = oc_map_file(path, &ds->file);
    if (s == OC_OK)
        s = index_lines(ds);
    if (s != OC_OK) {
        oc_dataset_free(ds);
        return s;
    }
    *out = ds;
    return OC_OK;
}

/* ---- encoding --------------------------------------------------------------------- */

/* Appends the tiles of one image to *pixels (n_tiles so far). */
static oc_status add_tiles(const oc_data_model *m, const oc_dataset_params *p,
                           const char *path, float **pixels, uint32_t *n_tiles,
                           oc_tile_layout *layout) {
    oc_image *img = NULL;
    OC_TRY(oc_image_load(path, &p->image_limits, &img));
    float *px = NULL;
    uint32_t tiles = 1, rows = 0, cols = 0;
    oc_status s = m->cfg.family == OC_FAMILY_SMOLVLM
                      ? oc_idefics3_preprocess(&m->smol, img, p->max_tiles, &px, &tiles, &rows,
                                               &cols)
                      : oc_clip_preprocess(&m->clip, img, &px);
    oc_image_free(img);
    OC_TRY(s);
    size_t per = (size_t)3 * m->cfg.vision.image_size * m->cfg.vision.image_size;
    float *all = oc_realloc(*pixels, ((size_t)*n_tiles + tiles) * per * sizeof *all);
    if (!all) {
        oc_free(px);
        return oc_err(OC_ERR_NOMEM, "out of memory");
    }
    memcpy(all + (size_t)*n_tiles * per, px, tiles * per * sizeof *all);
    oc_free(px);
    *pixels = all;
    *n_tiles += tiles;
    layout->rows = rows;
    layout->cols = cols;
    return OC_OK;
}

static oc_status add_image_tiles(const oc_dataset *ds, const char *path, float **pixels,
                                 uint32_t *n_tiles, oc_tile_layout *layout) {
    return add_tiles(&ds->model, &ds->params, path, pixels, n_tiles, layout);
}

oc_status oc_data_encode_chat(const oc_data_model *m, const oc_dataset_params *p,
                              const oc_data_line *l, oc_data_encoded *e) {
    oc_tile_layout *layouts = oc_calloc(l->n_images + 1, sizeof *layouts);
    if (!layouts)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    oc_status s = OC_OK;
    for (size_t i = 0; i < l->n_images && s == OC_OK; i++)
        s = add_tiles(m, p, l->images[i], &e->pixels, &e->n_tiles, &layouts[i]);
    if (s == OC_OK)
        s = oc_prompt_encode(&m->cfg, m->tok, l->turns, l->n_turns, layouts, l->n_images, 0,
                             &e->ids, &e->labels, &e->n);
    oc_free(layouts);
    return s;
}

static oc_status encode_chat(const oc_dataset *ds, const oc_data_line *l, encoded *e) {
    return oc_data_encode_chat(&ds->model, &ds->params, l, e);
}

static oc_status encode_tokens(const oc_dataset *ds, oc_data_line *l, encoded *e) {
    /* the parsed arrays are the example's */
    e->ids = l->ids;
    e->labels = l->labels;
    e->n = l->n_ids;
    l->ids = l->labels = NULL;
    if (l->pv_file)
        return read_pixel_tensor(ds, l, &e->n_tiles, &e->pixels);
    oc_tile_layout layout;
    for (size_t i = 0; i < l->n_images; i++)
        OC_TRY(add_image_tiles(ds, l->images[i], &e->pixels, &e->n_tiles, &layout));
    return OC_OK;
}

/* Example i in file order. */
static oc_status encode(const oc_dataset *ds, size_t i, encoded *e) {
    memset(e, 0, sizeof *e);
    oc_data_line l;
    OC_TRY(parse_line(ds, i, &l)); /* its errors name the file and line already */
    e->n_images = l.n_images;
    oc_status s = l.kind == OC_DATA_TOKENS ? encode_tokens(ds, &l, e) : encode_chat(ds, &l, e);
    oc_data_line_free(&l);
    size_t k = s == OC_OK ? count_image_tokens(ds, e->ids, e->n) : 0;
    if (s == OC_OK && e->n > ds->max_tokens)
        s = oc_err(OC_ERR_LIMIT, "%zu tokens, over the limit of %zu", e->n, ds->max_tokens);
    else if (s == OC_OK && k != (size_t)e->n_tiles * ds->image_seq)
        s = oc_err(OC_ERR_FORMAT, "%zu image tokens but %u tiles of %u tokens", k, e->n_tiles,
                   ds->image_seq);
    if (s != OC_OK) {
        encoded_free(e);
        return oc_err_prefix(s, "%s:%zu: ", ds->path, ds->lines[i].line);
    }
    return OC_OK;
}

static oc_status hold(oc_dataset *ds, size_t n) {
    release_held(ds);
    if (n > ds->cap_held) {
        encoded *h = oc_realloc(ds->held, n * sizeof *h);
        if (!h)
            return oc_err(OC_ERR_NOMEM, "out of memory");
        ds->held = h;
        ds->cap_held = n;
    }
    return OC_OK;
}

static void to_example(const encoded *e, oc_train_example *x) {
    x->input_ids = e->ids;
    x->labels = e->labels;
    x->n_tokens = e->n;
    x->pixel_values = e->pixels;
    x->n_tiles = e->n_tiles;
}

oc_status oc_dataset_get(oc_dataset *ds, size_t i, oc_train_example *out) {
    if (!ds || !out)
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_get: NULL argument");
    if (i >= ds->n)
        return oc_err(OC_ERR_INVALID_ARG, "%s: example %zu of %zu", ds->path, i, ds->n);
    OC_TRY(hold(ds, 1));
    OC_TRY(encode(ds, i, &ds->held[0]));
    ds->n_held = 1;
    to_example(&ds->held[0], out);
    return OC_OK;
}

/* The order of an epoch: file order, or a Fisher-Yates shuffle seeded by (seed, epoch). */
static oc_status make_order(oc_dataset *ds, uint64_t epoch) {
    if (!ds->order && !(ds->order = oc_malloc(ds->n * sizeof *ds->order)))
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ds->n; i++)
        ds->order[i] = i;
    if (ds->params.shuffle) {
        oc_stream r = oc_stream_derive(ds->params.seed, epoch, 0x5348554646ULL, 0);
        for (size_t i = ds->n; i > 1; i--) {
            size_t j = (size_t)oc_stream_below(&r, i);
            size_t t = ds->order[i - 1];
            ds->order[i - 1] = ds->order[j];
            ds->order[j] = t;
        }
    }
    ds->order_epoch = epoch;
    return OC_OK;
}

oc_status oc_dataset_next_batch(oc_train_example *examples, size_t n, void *dataset) {
    oc_dataset *ds = dataset;
    if (!ds || (n && !examples))
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_next_batch: NULL argument");
    OC_TRY(hold(ds, n));
    uint64_t start = ds->position;
    oc_status s = OC_OK;
    for (size_t k = 0; k < n && s == OC_OK; k++) {
        uint64_t epoch = ds->position / ds->n;
        if (epoch != ds->order_epoch)
            s = make_order(ds, epoch);
        if (s == OC_OK)
            s = encode(ds, ds->order[ds->position % ds->n], &ds->held[k]);
        if (s == OC_OK) {
            ds->n_held = k + 1;
            to_example(&ds->held[k], &examples[k]);
            ds->position++;
        }
    }
    if (s != OC_OK) { /* nothing handed out: the same call can be retried */
        release_held(ds);
        ds->position = start;
    }
    return s;
}

oc_status oc_dataset_next_part(oc_train_example *examples, size_t n, size_t first,
                               size_t count, void *dataset) {
    oc_dataset *ds = dataset;
    if (!ds || (count && !examples))
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_next_part: NULL argument");
    if (first > n || count > n - first)
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_next_part: examples [%zu, %zu) of %zu",
                      first, first + count, n);
    OC_TRY(hold(ds, count));
    oc_status s = OC_OK;
    /* the same examples, in the same order, as the n of oc_dataset_next_batch */
    for (size_t k = 0; k < count && s == OC_OK; k++) {
        uint64_t at = ds->position + first + k, epoch = at / ds->n;
        if (epoch != ds->order_epoch)
            s = make_order(ds, epoch);
        if (s == OC_OK)
            s = encode(ds, ds->order[at % ds->n], &ds->held[k]);
        if (s == OC_OK) {
            ds->n_held = k + 1;
            to_example(&ds->held[k], &examples[k]);
        }
    }
    if (s != OC_OK) { /* nothing handed out: the same call can be retried */
        release_held(ds);
        return s;
    }
    ds->position += n;
    return OC_OK;
}

uint64_t oc_dataset_position(const oc_dataset *ds) { return ds ? ds->position : 0; }

void oc_dataset_seek(oc_dataset *ds, uint64_t position) {
    if (ds)
        ds->position = position;
}

oc_status oc_dataset_check(oc_dataset *ds, oc_dataset_stats *stats) {
    if (!ds)
        return oc_err(OC_ERR_INVALID_ARG, "oc_dataset_check: NULL dataset");
    oc_dataset_stats st;
    memset(&st, 0, sizeof st);
    OC_TRY(hold(ds, 1));
    for (size_t i = 0; i < ds->n; i++) {
        encoded e;
        OC_TRY(encode(ds, i, &e));
        st.examples++;
        st.images += e.n_images;
        st.tiles += e.n_tiles;
        st.tokens += e.n;
        if (e.n > st.max_tokens)
            st.max_tokens = e.n;
        for (size_t t = 1; t < e.n; t++) /* labels[0] has no position to predict it */
            st.labelled += e.labels[t] != OC_IGNORE_LABEL;
        encoded_free(&e);
    }
    if (stats)
        *stats = st;
    return OC_OK;
}
