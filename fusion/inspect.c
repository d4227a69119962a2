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
} dump_bufs;

static void free_bufs(dump_bufs *b) {
    oc_free(b->pixels);
    oc_free(b->vision);
    oc_free(b->feats);
    oc_free(b->hidden);
    oc_free(b->logits);
    oc_free(b->ids_f);
}

/* Pixel values from FILE's TENSOR, which must hold exactly n_tiles tiles. */
static oc_status load_override(const oc_model *m, const oc_inspect_params *p, uint32_t n_tiles,
                               float *dst) {
    oc_st_file *f;
    OC_TRY(oc_st_open(p->pixel_values_file, &f));
    oc_status s = OC_OK;
    const oc_st_tensor *t = oc_st_find(f, p->pixel_values_tensor);
    size_t S = m->cfg.vision.image_size, want = (size_t)n_tiles * 3 * S * S;
    if (!t)
        s = oc_err(OC_ERR_FORMAT, "%s: no tensor '%s'", p->pixel_values_file,
                   p->pixel_values_tensor);
    else if (t->numel != want)
        s = oc_err(OC_ERR_FORMAT, "%s: tensor '%s' has %zu values; the images need %u tiles of "
                   "3x%zux%zu (%zu values)", p->pixel_values_file, t->name, t->numel, n_tiles,
                   S, S, want);
    else
        s = oc_st_to_f32(t, dst, want);
    oc_st_close(f);
    return s;
}

/* Preprocesses every image into b->pixels (all tiles in order) and records layouts. */
static oc_status gather_pixels(oc_session *s, const oc_image *const *images, size_t n,
                               dump_bufs *b) {
    const oc_model *m = s->m;
    size_t S = m->cfg.vision.image_size, tile = 3 * S * S;
    s->layouts = oc_calloc(n ? n : 1, sizeof *s->layouts);
    if (!s->layouts)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        float *px;
        uint32_t tiles, rows, cols;
        OC_TRY(oc_model_preprocess(m, images[i], &px, &tiles, &rows, &cols));
        float *np = oc_realloc(b->pixels, (b->n_tiles + tiles) * tile * sizeof(float));
        if (!np) {
            oc_free(px);
            return oc_err(OC_ERR_NOMEM, "out of memory");
        }
        b->pixels = np;
        memcpy(b->pixels + b->n_tiles * tile, px, tiles * tile * sizeof(float));
        oc_free(px);
        b->n_tiles += tiles;
        s->layouts[s->n_images++] = (oc_tile_layout){rows, cols};
    }
    return OC_OK;
}

static oc_status run(oc_session *s, const oc_image *const *images, size_t n_images,
                     const char *question, const oc_inspect_params *p, dump_bufs *b,
                     int32_t **ids, size_t *n_ids) {
    const oc_model *m = s->m;
    const oc_model_config *c = &m->cfg;
    OC_TRY(gather_pixels(s, images, n_images, b));
    if (p && p->pixel_values_file)
        OC_TRY(load_override(m, p, b->n_tiles, b->pixels));
    size_t seq = oc_vit_seq(&c->vision), per = oc_config_image_seq(c);
    size_t Cv = c->vision.hidden, Ct = c->text.hidden;
    b->vision = oc_malloc((b->n_tiles * seq * Cv + 1) * sizeof(float));
    b->feats = oc_malloc((b->n_tiles * per * Ct + 1) * sizeof(float));
    if (!b->vision || !b->feats)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    OC_TRY(oc_model_encode_pixels(&s->ex, m, b->pixels, b->n_tiles, b->feats, b->vision,
                                  NULL));
    s->feats = b->feats;
    s->n_feat_rows = b->n_tiles * per;
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
        st = oc_session_embed(s, *ids, T, 0, T, x);
    if (st == OC_OK)
        st = oc_kv_cache_init(&s->kv, &c->text, (uint32_t)T);
    if (st == OC_OK)
        st = oc_llama_forward(&s->ex, &c->text, &m->llm, &s->kv, x, (uint32_t)T, b->hidden,
                              b->logits, (uint32_t)T);
    for (size_t i = 0; st == OC_OK && i < T; i++)
        b->ids_f[i] = (float)(*ids)[i];
    oc_free(x);
    return st;
}

static oc_status write_dump(const oc_model *m, const dump_bufs *b, size_t T,
                            const char *path) {
    const oc_model_config *c = &m->cfg;
    int64_t nt = b->n_tiles, S = c->vision.image_size, seq = oc_vit_seq(&c->vision);
    int64_t per = oc_config_image_seq(c), Cv = c->vision.hidden, Ct = c->text.hidden;
    int llava = c->family == OC_FAMILY_LLAVA;
    /* LLaVA's reference dumps hold one image without a leading image dimension. */
    int squeeze = llava && nt == 1;
    oc_st_writer *w;
    OC_TRY(oc_st_writer_new(&w));
    oc_status s = OC_OK;
#define ADD(name, nd, ...)                                                              \
    if (s == OC_OK)                                                                     \
        s = oc_st_writer_add(w, name, OC_DT_F32, nd, (int64_t[]){__VA_ARGS__}, data);
    const float *data = b->pixels;
    if (squeeze) {
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
        st = write_dump(m, &b, n_ids, dump_path);
    s->feats = NULL; /* owned by b */
    oc_session_free(s);
    free_bufs(&b);
    oc_free(ids);
    return st;
}
