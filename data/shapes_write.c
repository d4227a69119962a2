/* Writing a shapes dataset folder (images, captions, VQA, multiple choice, LLaVA-style
 * conversations), and single scenes in memory. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "image.h"
#include "output.h"
#include "png_write.h"
#include "shapes.h"
#include "strbuf.h"

#define CAPTION_PROMPT "Describe this image."
#define MAX_SCENES ((size_t)100 * 1000 * 1000)
#define MAX_PER_IMAGE 64
#define MAX_WEIGHT 1000
#define MAX_MMLU 100000

oc_shapes_params oc_shapes_default_params(void) {
    oc_shapes_params p;
    memset(&p, 0, sizeof p);
    p.split = OC_SPLIT_TRAIN;
    p.seed = 0;
    p.n = 1000;
    p.image_size = 64;
    p.questions_per_image = 4;
    p.mc_per_image = 1;
    p.write_exams = 1;
    p.mmlu_per_subject = 50;
    return p;
}

static oc_status check_params(const oc_shapes_params *p) {
    if ((int)p->split < OC_SPLIT_TRAIN || p->split > OC_SPLIT_TEST)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: split %d is not train, val or test",
                      (int)p->split);
    if (p->n == 0 || p->n > MAX_SCENES)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: n = %zu is outside [1, %zu]", p->n,
                      MAX_SCENES);
    if (p->image_size < OC_SHAPES_MIN_SIZE || p->image_size > OC_SHAPES_MAX_SIZE)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: image size %u is outside [%d, %d]",
                      p->image_size, OC_SHAPES_MIN_SIZE, OC_SHAPES_MAX_SIZE);
    if (p->questions_per_image > MAX_PER_IMAGE || p->mc_per_image > MAX_PER_IMAGE)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: at most %d questions per image",
                      MAX_PER_IMAGE);
    if (p->mmlu_per_subject > MAX_MMLU)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: at most %d MMLU questions per subject",
                      MAX_MMLU);
    if (!(p->false_premise >= 0 && p->false_premise <= 1))
        return oc_err(OC_ERR_INVALID_ARG, "shapes: false_premise %g is outside [0, 1]",
                      p->false_premise);
    for (int t = 0; t < OC_N_QTYPES; t++)
        if (p->question_weights[t] > MAX_WEIGHT)
            return oc_err(OC_ERR_INVALID_ARG, "shapes: weight %u of %s questions is over %d",
                          p->question_weights[t], oc_shapes_question_type(t), MAX_WEIGHT);
    return OC_OK;
}

/* The dataset is one folder output (core/output.h): written whole beside the old one and
 * swapped in at the end, so that a reader never sees the images of one run with the
 * labels of another, and a second writer of the same folder fails at once. */

static oc_status out_write(oc_out_file *f, const oc_strbuf *line) {
    if (line->failed)
        return oc_err(OC_ERR_NOMEM, "out of memory");
    OC_TRY(oc_out_write(f, line->data, line->len));
    return oc_out_write(f, "\n", 1);
}

static oc_status write_png(oc_out_dir *d, const char *name, const uint8_t *rgb,
                           uint32_t size) {
    uint8_t *png;
    size_t n;
    OC_TRY(oc_png_encode(rgb, size, size, &png, &n));
    oc_status s = oc_out_dir_write(d, name, png, n);
    oc_free(png);
    return s;
}

/* The training files, then the exams (written when params.write_exams). */
enum { F_CAPTIONS, F_VQA, F_MC, F_CONV, F_VQA10, F_CAPTIONS5, F_MCQ_IMAGES, F_POPE, N_FILES };
#define N_TRAINING_FILES F_VQA10
static const char *const file_names[N_FILES] = {
    "captions.jsonl", "vqa.jsonl",       "mc.jsonl",         "conversations.jsonl",
    "vqa10.jsonl",    "captions5.jsonl", "mcq_images.jsonl", "pope.jsonl"};

/* The text of one scene: caption, picked questions, multiple-choice items. */
typedef struct {
    char caption[OC_SCENE_TEXT_MAX];
    oc_scene_qa qa[MAX_PER_IMAGE];
    size_t n_qa;
    oc_scene_mc mc;
} scene_text;

static void line_start(oc_strbuf *b, const char *image) {
    oc_sb_clear(b);
    oc_sb_puts(b, "{\"image\": ");
    oc_sb_json_str(b, image);
}

static void line_field(oc_strbuf *b, const char *key, const char *value) {
    oc_sb_printf(b, ", \"%s\": ", key);
    oc_sb_json_str(b, value);
}

static void turn(oc_strbuf *b, int first, const char *from, const char *value) {
    oc_sb_printf(b, "%s{\"from\": \"%s\", \"value\": ", first ? "" : ", ", from);
    oc_sb_json_str(b, value);
    oc_sb_puts(b, "}");
}

/* The question mix: NULL (all equal) when every weight is 0. */
static const uint32_t *weights(const oc_shapes_params *p) {
    for (int t = 0; t < OC_N_QTYPES; t++)
        if (p->question_weights[t])
            return p->question_weights;
    return NULL;
}

/* The exam lines of one scene (vqa10, captions5, pope); mcq_images is written beside
 * mc.jsonl. */
static oc_status write_exam_lines(oc_out_file **f, oc_strbuf *b, const oc_shapes_params *p,
                                  const char *image, size_t index, const oc_scene *s,
                                  const scene_text *t, const uint8_t *popular) {
    char id[96];
    const char *split = oc_split_name(p->split);
    oc_stream ar = oc_stream_derive(p->seed, (uint64_t)p->split, index, 4);
    for (size_t i = 0; i < t->n_qa; i++) {
        const char *answers[OC_VQA_ANSWERS];
        oc_scene_vqa_answers(&t->qa[i], &ar, answers);
        snprintf(id, sizeof id, "shapes-%s-%05zu-q%zu", split, index, i);
        line_start(b, image);
        line_field(b, "id", id);
        line_field(b, "question", t->qa[i].question);
        oc_sb_puts(b, ", \"answers\": [");
        for (int k = 0; k < OC_VQA_ANSWERS; k++) {
            oc_sb_puts(b, k ? ", " : "");
            oc_sb_json_str(b, answers[k]);
        }
        oc_sb_puts(b, "]");
        line_field(b, "type", oc_shapes_question_type(t->qa[i].type));
        oc_sb_puts(b, "}");
        OC_TRY(out_write(f[F_VQA10], b));
    }

    char refs[OC_SCENE_CAPTIONS][OC_SCENE_TEXT_MAX];
    oc_scene_captions5(s, refs);
    snprintf(id, sizeof id, "shapes-%s-%05zu", split, index);
    line_start(b, image);
    line_field(b, "id", id);
    oc_sb_puts(b, ", \"captions\": [");
    for (int k = 0; k < OC_SCENE_CAPTIONS; k++) {
        oc_sb_puts(b, k ? ", " : "");
        oc_sb_json_str(b, refs[k]);
    }
    oc_sb_puts(b, "]}");
    OC_TRY(out_write(f[F_CAPTIONS5], b));

    oc_pope_q pope[OC_POPE_PER_SCENE];
    oc_stream pr = oc_stream_derive(p->seed, (uint64_t)p->split, index, 5);
    size_t n_pope = oc_scene_pope(s, popular, &pr, pope);
    for (size_t i = 0; i < n_pope; i++) {
        snprintf(id, sizeof id, "shapes-%s-%05zu-p%zu", split, index, i);
        line_start(b, image);
        line_field(b, "id", id);
        line_field(b, "question", pope[i].question);
        line_field(b, "answer", pope[i].yes ? "yes" : "no");
        line_field(b, "category", oc_pope_category(pope[i].category));
        oc_sb_puts(b, "}");
        OC_TRY(out_write(f[F_POPE], b));
    }
    return OC_OK;
}

/* One multiple-choice item as a JSONL line (mc.jsonl; with id and type, mcq_images). */
static void mc_line(oc_strbuf *b, const char *image, const char *id, const oc_scene_mc *mc) {
    line_start(b, image);
    if (id)
        line_field(b, "id", id);
    line_field(b, "question", mc->question);
    oc_sb_puts(b, ", \"choices\": [");
    for (int c = 0; c < 4; c++) {
        oc_sb_puts(b, c ? ", " : "");
        oc_sb_json_str(b, mc->choices[c]);
    }
    oc_sb_printf(b, "], \"answer\": \"%c\"", 'A' + mc->answer);
    if (id)
        line_field(b, "type", oc_scene_mc_kind(mc->kind));
    oc_sb_puts(b, "}");
}

static oc_status write_lines(oc_out_file **f, oc_strbuf *b, const oc_shapes_params *p,
                             const char *image, size_t index, const oc_scene *s,
                             const uint8_t *popular) {
    scene_text t;
    oc_scene_caption(s, t.caption);
    oc_stream qr = oc_stream_derive(p->seed, (uint64_t)p->split, index, 1);
    t.n_qa = oc_scene_pick_questions(s, &qr, p->questions_per_image, weights(p), t.qa);
    /* false premises replace questions at their rate, from a stream of their own: a rate
     * of 0 leaves every other line as it was */
    if (p->false_premise > 0) {
        oc_stream fr = oc_stream_derive(p->seed, (uint64_t)p->split, index, 6);
        for (size_t i = 0; i < t.n_qa; i++) {
            if (!((double)oc_stream_below(&fr, 1u << 30) < p->false_premise * (double)(1u << 30)))
                continue;
            /* a question the scene does not ask already (a few draws; else it stays) */
            for (int tries = 0; tries < 16; tries++) {
                oc_scene_qa fp;
                oc_scene_false_premise(s, &fr, &fp);
                int dup = 0;
                for (size_t j = 0; j < t.n_qa; j++)
                    dup |= j != i && !strcmp(t.qa[j].question, fp.question);
                if (!dup) {
                    t.qa[i] = fp;
                    break;
                }
            }
        }
    }

    line_start(b, image);
    line_field(b, "caption", t.caption);
    oc_sb_puts(b, "}");
    OC_TRY(out_write(f[F_CAPTIONS], b));

    for (size_t i = 0; i < t.n_qa; i++) {
        line_start(b, image);
        line_field(b, "question", t.qa[i].question);
        line_field(b, "answer", t.qa[i].answer);
        line_field(b, "type", oc_shapes_question_type(t.qa[i].type));
        oc_sb_puts(b, "}");
        OC_TRY(out_write(f[F_VQA], b));
    }

    oc_stream mr = oc_stream_derive(p->seed, (uint64_t)p->split, index, 2);
    for (uint32_t i = 0; i < p->mc_per_image; i++) {
        OC_TRY(oc_scene_make_mc(s, &mr, &t.mc));
        mc_line(b, image, NULL, &t.mc);
        OC_TRY(out_write(f[F_MC], b));
        if (p->write_exams) {
            char id[96];
            snprintf(id, sizeof id, "shapes-%s-%05zu-m%u", oc_split_name(p->split), index, i);
            mc_line(b, image, id, &t.mc);
            OC_TRY(out_write(f[F_MCQ_IMAGES], b));
        }
    }
    if (p->write_exams)
        OC_TRY(write_exam_lines(f, b, p, image, index, s, &t, popular));

    oc_sb_clear(b);
    oc_sb_printf(b, "{\"id\": \"shapes-%s-%05zu\", \"image\": ", oc_split_name(p->split), index);
    oc_sb_json_str(b, image);
    oc_sb_puts(b, ", \"conversations\": [");
    /* The caption request sits at a position drawn per scene, so that the model learns
     * to answer any question right after the image as well as later in a chat. */
    oc_stream cr = oc_stream_derive(p->seed, (uint64_t)p->split, index, 3);
    size_t cap_at = (size_t)oc_stream_below(&cr, t.n_qa + 1);
    for (size_t i = 0; i <= t.n_qa; i++) {
        int is_cap = i == cap_at;
        size_t q = i < cap_at ? i : i - 1;
        const char *question = is_cap ? CAPTION_PROMPT : t.qa[q].question;
        if (i == 0) {
            oc_sb_puts(b, "{\"from\": \"human\", \"value\": ");
            char first[512];
            snprintf(first, sizeof first, "<image>\n%s", question);
            oc_sb_json_str(b, first);
            oc_sb_puts(b, "}");
        } else {
            turn(b, 0, "human", question);
        }
        turn(b, 0, "gpt", is_cap ? t.caption : t.qa[q].answer);
    }
    oc_sb_puts(b, "]}");
    return out_write(f[F_CONV], b);
}

static oc_status write_info(const oc_shapes_params *p, oc_out_dir *d) {
    oc_strbuf b = {0};
    oc_sb_printf(&b,
                 "{\n  \"generator\": \"ocellus data shapes\",\n  \"version\": \"%s\",\n"
                 "  \"split\": \"%s\",\n  \"seed\": %llu,\n  \"n\": %zu,\n"
                 "  \"image_size\": %u,\n  \"questions_per_image\": %u,\n"
                 "  \"mc_per_image\": %u",
                 OCELLUS_VERSION, oc_split_name(p->split), (unsigned long long)p->seed, p->n,
                 p->image_size, p->questions_per_image, p->mc_per_image);
    if (p->write_exams)
        oc_sb_printf(&b, ",\n  \"exams\": true,\n  \"mmlu_per_subject\": %u",
                     p->mmlu_per_subject);
    if (p->false_premise > 0)
        oc_sb_printf(&b, ",\n  \"false_premise\": %.17g", p->false_premise);
    if (weights(p)) {
        oc_sb_puts(&b, ",\n  \"question_weights\": {");
        for (int t = 0; t < OC_N_QTYPES; t++)
            oc_sb_printf(&b, "%s\"%s\": %u", t ? ", " : "", oc_shapes_question_type(t),
                         p->question_weights[t]);
        oc_sb_puts(&b, "}");
    }
    oc_sb_puts(&b, "\n}\n");
    oc_status s = b.failed ? oc_err(OC_ERR_NOMEM, "info.json: out of memory")
                           : oc_out_dir_write(d, "info.json", b.data, b.len);
    oc_sb_free(&b);
    return s;
}

/* Renders and writes every scene; f are the open JSONL files. */
static oc_status write_scenes(const oc_shapes_params *p, oc_out_dir *d, oc_out_file **f,
                              const uint8_t *popular) {
    size_t npix = (size_t)p->image_size * p->image_size * 3;
    uint8_t *rgb = oc_malloc(npix);
    oc_strbuf line = {0};
    oc_status s = rgb ? OC_OK : oc_err(OC_ERR_NOMEM, "shapes: out of memory");
    char image[64];
    for (size_t i = 0; i < p->n && s == OC_OK; i++) {
        oc_scene sc;
        snprintf(image, sizeof image, "images/%05zu.png", i);
        s = oc_scene_generate(p->split, p->seed, i, &sc);
        if (s == OC_OK)
            s = oc_scene_render(&sc, p->image_size, rgb);
        if (s == OC_OK)
            s = write_png(d, image, rgb, p->image_size);
        if (s == OC_OK)
            s = write_lines(f, &line, p, image, i, &sc, popular);
    }
    oc_sb_free(&line);
    oc_free(rgb);
    return s;
}

static oc_status write_all(const oc_shapes_params *p, oc_out_dir *d) {
    OC_TRY(oc_out_dir_mkdir(d, "images"));
    oc_out_file *f[N_FILES] = {0};
    int n_files = p->write_exams ? N_FILES : N_TRAINING_FILES;
    oc_status s = OC_OK;
    for (int i = 0; i < n_files && s == OC_OK; i++)
        s = oc_out_dir_create(d, file_names[i], &f[i]);
    /* POPE's popular negatives: the objects most of this dataset's scenes show */
    uint8_t popular[OC_N_COLOURS * OC_N_SHAPES];
    if (s == OC_OK && p->write_exams)
        s = oc_shapes_popularity(p->split, p->seed, p->n, popular);
    if (s == OC_OK)
        s = write_scenes(p, d, f, popular);
    for (int i = 0; i < n_files; i++) {
        if (s == OC_OK)
            s = oc_out_commit(f[i]);
        else
            oc_out_abort(f[i]);
    }
    if (s == OC_OK && p->write_exams)
        s = oc_shapes_write_mmlu(p, d, "mmlu");
    if (s == OC_OK)
        s = write_info(p, d);
    return s;
}

oc_status oc_shapes_write_dataset(const oc_shapes_params *params, const char *out_dir) {
    oc_shapes_params p = params ? *params : oc_shapes_default_params();
    if (!out_dir || !*out_dir)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: no output folder");
    OC_TRY(check_params(&p));
    oc_out_dir *d;
    OC_TRY(oc_out_dir_begin(out_dir, NULL, &d));
    oc_status s = write_all(&p, d);
    if (s != OC_OK) {
        oc_out_dir_abort(d);
        return s;
    }
    return oc_out_dir_commit(d);
}

oc_status oc_shapes_scene(oc_split split, uint64_t seed, uint64_t index, uint32_t image_size,
                          oc_image **image, char **caption) {
    if (image_size < OC_SHAPES_MIN_SIZE || image_size > OC_SHAPES_MAX_SIZE)
        return oc_err(OC_ERR_INVALID_ARG, "shapes: image size %u is outside [%d, %d]",
                      image_size, OC_SHAPES_MIN_SIZE, OC_SHAPES_MAX_SIZE);
    oc_scene sc;
    OC_TRY(oc_scene_generate(split, seed, index, &sc));
    char text[OC_SCENE_TEXT_MAX];
    oc_scene_caption(&sc, text);
    char *cap = NULL;
    if (caption && !(cap = oc_strdup(text)))
        return oc_err(OC_ERR_NOMEM, "shapes: out of memory");
    if (image) {
        oc_image *img = NULL;
        oc_status s = oc_image_alloc(image_size, image_size, &img);
        if (s == OC_OK)
            s = oc_scene_render(&sc, image_size, img->rgb);
        if (s != OC_OK) {
            oc_image_free(img);
            oc_free(cap);
            return s;
        }
        *image = img;
    }
    if (caption)
        *caption = cap;
    return OC_OK;
}
