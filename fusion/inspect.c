/* `ocellus inspect`: the intermediate tensors of one forward pass, written as
 * safetensors with the names of the transformers reference dumps, so that a user can
 * find where ocellus and transformers part ways. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "session.h"

typedef struct {
    float *pixels, *vision, *feats, *hidden, *logits, *ids_f;
    uint32_t n_tiles;
    size_t n_pixels, n_feats;    /* floats of pixels, rows of feats */
    uint32_t *tiles;             /* (n_images) tiles of each image */
} dump_bufs;

static void free_bufs(dump_bufs *b) {
    oc_free(b->pixels);
    oc_free(b->vision);
    oc_free(b->feats);
    oc_free(b->hidden);
    oc_free(b->logits);
    oc_free(b->ids_f);
    oc_free(b->tiles);
}

/* Pixel values from FILE's TENSOR, which must hold exactly the images' values. */
static oc_status load_override(const oc_inspect_params *p, const dump_bufs *b, float *dst) {
    oc_st_file *f;
    OC_TRY(oc_st_open(p->pixel_values_file, &f));
    oc_status s = OC_OK;
    const oc_st_tensor *t = oc_st_find(f, p->pixel_values_tensor);
    if (!t)
        s = oc_err(OC_ERR_FORMAT, "%s: no tensor '%s'", p->pixel_values_file,
                   p->pixel_values_tensor);
    else if (t->numel != b->n_pixels)
        s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has %zu values; the images need %zu (%u "
                   "tiles)", p->pixel_values_file, t->name, t->numel, b->n_pixels, b->n_tiles);
    else
        s = oc_st_to_f32(t, dst, b->n_pixels);
    oc_st_close(f);
    return s;
}

/* Preprocesses every image into b->pixels (all tiles in order) and records layouts. */
static oc_status gather_pixels(oc_session *s, const oc_image *const *images, size_t n,
                               dump_bufs *b) {
    const oc_model *m = s->m;
    s->layouts = oc_calloc(n ? n : 1, sizeof *s->layouts);
    b->tiles = oc_calloc(n ? n : 1, sizeof *b->tiles);
    if (!s->layouts || !b->tiles)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        float *px;
        uint32_t tiles, rows, cols;
        OC_TRY(oc_model_preprocess(m, images[i], &px, &tiles, &rows, &cols));
        size_t k = oc_model_pixel_count(m, tiles, rows, cols);
        float *np = oc_realloc(b->pixels, (b->n_pixels + k) * sizeof(float));
        if (!np) {
            oc_free(px);
            return oc_err(OC_ERR_NOMEM, "out of memory");
        }
        b->pixels = np;
        memcpy(b->pixels + b->n_pixels, px, k * sizeof(float));
        oc_free(px);
        b->n_pixels += k;
        b->n_tiles += tiles;
        b->tiles[i] = tiles;
        s->layouts[s->n_images] = (oc_tile_layout){rows, cols};
        b->n_feats += oc_image_tokens(&m->cfg, &s->layouts[s->n_images]);
        s->n_images++;
    }
    return OC_OK;
}

static int is_qwen(const oc_model *m) { return m->cfg.family == OC_FAMILY_QWEN25VL; }

static oc_status run(oc_session *s, const oc_image *const *images, size_t n_images,
                     const char *question, const oc_inspect_params *p, dump_bufs *b,
                     int32_t **ids, size_t *n_ids) {
    const oc_model *m = s->m;
    const oc_model_config *c = &m->cfg;
    OC_TRY(gather_pixels(s, images, n_images, b));
    if (p && p->pixel_values_file)
        OC_TRY(load_override(p, b, b->pixels));
    size_t seq = is_qwen(m) ? 0 : oc_vit_seq(&c->vision);
    size_t Cv = c->vision.hidden, Ct = c->text.hidden;
    b->vision = oc_malloc((b->n_tiles * seq * Cv + 1) * sizeof(float));
    b->feats = oc_malloc((b->n_feats * Ct + 1) * sizeof(float));
    if (!b->vision || !b->feats)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    size_t px = 0, fr = 0, vt = 0;
    for (size_t i = 0; i < n_images; i++) {
        const oc_tile_layout *l = &s->layouts[i];
        OC_TRY(oc_model_encode_image(&s->ex, m, b->pixels + px, b->tiles[i], l->rows, l->cols,
                                     b->feats + fr * Ct, b->vision + vt * seq * Cv, NULL));
        px += oc_model_pixel_count(m, b->tiles[i], l->rows, l->cols);
        fr += oc_image_tokens(c, l);
        vt += b->tiles[i];
    }
    s->feats = b->feats;
    s->n_feat_rows = b->n_feats;
    oc_turn turn = {.text = question, .n_images = (uint32_t)n_images};
    OC_TRY(oc_prompt_encode(c, m->tok, &turn, 1, s->layouts, s->n_images, 1, ids, NULL, n_ids));
    size_t T = *n_ids, V = c->text.vocab;
    if (T > m->context)
        return oc_err(OC_ERR_LIMIT, "the prompt is %zu tokens; the context is %u", T,
                      m->context);
    float *x = oc_malloc(T * Ct * sizeof(float));
    b->hidden = oc_malloc(T * Ct * sizeof(float));
    b->logits = oc_malloc(T * V * sizeof(float));
    b->ids_f = oc_malloc(T * sizeof(float));
    oc_status st = x && b->hidden && b->logits && b->ids_f ? OC_OK
                                                         : oc_err(OC_ERR_NOMEM, "out of memory");
    if (st == OC_OK)
        st = oc_kv_cache_init(&s->kv, &c->text, (uint32_t)T);
    if (st == OC_OK)
        st = oc_session_forward(s, *ids, T, 0, T, x, b->hidden, b->logits, (uint32_t)T);
    for (size_t i = 0; st == OC_OK && i < T; i++)
        b->ids_f[i] = (float)(*ids)[i];
    oc_free(x);
    return st;
}

static oc_status write_dump(const oc_session *ss, const dump_bufs *b, size_t T,
                            const char *path) {
    const oc_model *m = ss->m;
    const oc_model_config *c = &m->cfg;
    int qwen = is_qwen(m);
    int64_t nt = b->n_tiles, S = c->vision.image_size, seq = qwen ? 0 : oc_vit_seq(&c->vision);
    int64_t per = oc_config_image_seq(c), Cv = c->vision.hidden, Ct = c->text.hidden;
    int llava = c->family == OC_FAMILY_LLAVA;
    /* LLaVA's and Gemma 3's reference dumps hold one image's pixels without a leading
     * image dimension (LLaVA's features too) */
    int squeeze = llava && nt == 1, squeeze_px = (llava || c->family == OC_FAMILY_GEMMA3) &&
                                                 nt == 1;
    oc_st_writer *w;
    OC_TRY(oc_st_writer_new(&w));
    oc_status s = OC_OK;
    float *grid = NULL;
#define ADD(name, nd, ...)                                                              \
    if (s == OC_OK)                                                                     \
        s = oc_st_writer_add(w, name, OC_DT_F32, nd, (int64_t[]){__VA_ARGS__}, data);
    const float *data = b->pixels;
    if (qwen) { /* the processor's flattened patches, their grids, the merger's output */
        int64_t dim = oc_qvit_patch_dim(&c->qvit);
        ADD("pixel_values", 2, (int64_t)b->n_pixels / dim, dim);
        grid = oc_malloc((3 * ss->n_images + 1) * sizeof(float));
        for (size_t i = 0; grid && i < ss->n_images; i++) {
            grid[3 * i] = 1;
            grid[3 * i + 1] = (float)ss->layouts[i].rows;
            grid[3 * i + 2] = (float)ss->layouts[i].cols;
        }
        if (!grid)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        data = grid;
        ADD("image_grid_thw", 2, (int64_t)ss->n_images, 3);
        data = b->feats;
        ADD("image_hidden_states", 2, (int64_t)b->n_feats, Ct);
        ADD("image_embeds", 2, (int64_t)b->n_feats, Ct);
    } else {
        if (squeeze_px) {
            ADD("pixel_values", 3, 3, S, S);
        } else {
            ADD("pixel_values", 4, nt, 3, S, S);
        }
        data = b->vision;
        const char *vname = llava ? "vision_hidden_states_m2" : "vision_last_hidden_state";
        if (squeeze) {
            ADD(vname, 2, seq, Cv);
        } else {
            ADD(vname, 3, nt, seq, Cv);
        }
        data = b->feats;
        if (squeeze) {
            ADD("image_hidden_states", 2, per, Ct);
        } else {
            ADD("image_hidden_states", 3, nt, per, Ct);
        }
    }
    data = b->ids_f;
    ADD("input_ids", 1, (int64_t)T);
    data = b->hidden;
    ADD("text_hidden_states_last", 2, (int64_t)T, Ct);
    data = b->logits;
    ADD("logits", 2, (int64_t)T, (int64_t)c->text.vocab);
#undef ADD
    if (s == OC_OK)
        s = oc_st_writer_save(w, path);
    oc_st_writer_free(w);
    oc_free(grid);
    return s;
}

oc_status oc_inspect(const oc_model *m, const oc_image *const *images, size_t n_images,
                     const char *question, const oc_inspect_params *params,
                     const char *dump_path) {
    if (!m || !question || !dump_path || (n_images && !images))
        return oc_err(OC_ERR_INVALID_ARG, "oc_inspect: NULL argument");
    if (n_images > m->params.max_images)
        return oc_err(OC_ERR_LIMIT, "%zu images; the limit is %u", n_images,
                      m->params.max_images);
    oc_session *s;
    OC_TRY(oc_session_new(m, &s));
    dump_bufs b;
    memset(&b, 0, sizeof b);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    oc_status st = run(s, images, n_images, question, params, &b, &ids, &n_ids);
    if (st == OC_OK)
        st = write_dump(s, &b, n_ids, dump_path);
    s->feats = NULL; /* owned by b */
    oc_session_free(s);
    free_bufs(&b);
    oc_free(ids);
    return st;
}
