/* The model-assisted preference pipeline: sample answers to each question of a VQA file,
 * grade them with a rule-based judge (the file's reference answers through the VQA
 * normaliser; for the shapes world those are the scene's truth, written by its rules),
 * and write the best and worst graded answers as a chosen/rejected pair in TRL's format. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "exam.h"
#include "image.h"
#include "output.h"
#include "strbuf.h"

oc_pref_gen_params oc_pref_gen_default_params(void) {
    oc_pref_gen_params p;
    memset(&p, 0, sizeof p);
    p.samples = 8;
    p.temperature = 1.0f;
    p.max_tokens = 32;
    p.seed = 0;
    return p;
}

/* The judge: VQA accuracy of answer against the item's references (1 = right). */
static oc_status grade(const oc_exam_item *it, const char *answer, double *score) {
    if (it->n_answers)
        return oc_vqa_accuracy(answer, (const char *const *)it->answers, it->n_answers, score);
    const char *want = it->answer;
    return oc_vqa_accuracy(answer, &want, 1, score);
}

/* The folder of a path, made absolute and resolved (NULL if it does not exist). */
static char *real_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? oc_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : oc_strdup(".");
    if (!dir)
        return NULL;
    char *r = realpath(dir, NULL);
    oc_free(dir);
    return r; /* malloc'd by libc */
}

/* An image path as the output file should name it: relative to its folder when the image
 * lies under it, else absolute. */
static char *out_image_path(const char *image, const char *out_dir) {
    char *abs = realpath(image, NULL);
    if (!abs)
        return NULL;
    size_t n = out_dir ? strlen(out_dir) : 0;
    char *r = n && !strncmp(abs, out_dir, n) && abs[n] == '/' ? oc_strdup(abs + n + 1)
                                                              : oc_strdup(abs);
    free(abs);
    return r;
}

typedef struct {
    char *text;
    double score;
} sample;

/* One item: its samples, graded; the pair written to b (nothing when no pair). */
static oc_status item_pair(const oc_model *m, const oc_exam_item *it, size_t index,
                           const oc_pref_gen_params *p, const char *out_dir, oc_strbuf *b,
                           oc_pref_gen_stats *st) {
    oc_image **imgs = oc_calloc(it->n_images + 1, sizeof *imgs);
    sample *sm = oc_calloc(p->samples, sizeof *sm);
    oc_status s = imgs && sm ? OC_OK : oc_err(OC_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < it->n_images && s == OC_OK; k++)
        s = oc_image_load(it->images[k], NULL, &imgs[k]);
    for (uint32_t k = 0; k < p->samples && s == OC_OK; k++) {
        oc_gen_params g = oc_gen_default_params();
        g.temperature = p->temperature;
        g.max_tokens = p->max_tokens;
        /* a stream of its own per (item, sample), whatever the order of work */
        g.seed = p->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)index * p->samples + k;
        oc_answer a;
        memset(&a, 0, sizeof a);
        s = oc_ask(m, (const oc_image *const *)imgs, it->n_images, it->question, &g, &a);
        if (s == OC_OK) {
            /* as a conversation keeps a reply: the chat format puts the space after
             * "Assistant:" that the model generates */
            if (a.text[0] == ' ')
                memmove(a.text, a.text + 1, strlen(a.text));
            sm[k].text = a.text;
            a.text = NULL;
            s = grade(it, sm[k].text, &sm[k].score);
        }
        oc_answer_free(&a);
    }
    size_t best = 0, worst = 0;
    double sum = 0;
    for (uint32_t k = 0; s == OC_OK && k < p->samples; k++) {
        sum += sm[k].score;
        if (sm[k].score > sm[best].score)
            best = k;
        if (sm[k].score < sm[worst].score)
            worst = k;
    }
    if (s == OC_OK) {
        st->prompts++;
        st->mean_score += sum / p->samples;
        const char *chosen = NULL, *rejected = sm[worst].text;
        if (sm[best].score > sm[worst].score) {
            chosen = sm[best].text;
        } else if (sm[best].score == 0) {
            st->none_right++;
            if (p->reference_fallback) { /* the judge's own answer against a wrong sample */
                chosen = it->n_answers ? it->answers[0] : it->answer;
                st->from_reference++;
            }
        } else {
            st->all_right++;
        }
        if (chosen && strcmp(chosen, rejected) == 0)
            chosen = NULL;
        if (!chosen) {
            st->skipped++;
        } else {
            oc_sb_puts(b, "{\"prompt\": ");
            oc_sb_json_str(b, it->question);
            oc_sb_puts(b, ", \"chosen\": ");
            oc_sb_json_str(b, chosen);
            oc_sb_puts(b, ", \"rejected\": ");
            oc_sb_json_str(b, rejected);
            oc_sb_puts(b, ", \"images\": [");
            for (size_t k = 0; k < it->n_images && s == OC_OK; k++) {
                char *path = out_image_path(it->images[k], out_dir);
                if (!path) {
                    s = oc_err(OC_ERR_IO, "%s: cannot resolve the path", it->images[k]);
                    break;
                }
                oc_sb_puts(b, k ? ", " : "");
                oc_sb_json_str(b, path);
                oc_free(path);
            }
            oc_sb_printf(b, "], \"scores\": [%.4g, %.4g]", sm[best].score, sm[worst].score);
            if (it->group) {
                oc_sb_puts(b, ", \"type\": ");
                oc_sb_json_str(b, it->group);
            }
            oc_sb_puts(b, "}\n");
            st->pairs++;
        }
    }
    for (uint32_t k = 0; sm && k < p->samples; k++)
        oc_free(sm[k].text);
    oc_free(sm);
    for (size_t k = 0; imgs && k < it->n_images; k++)
        oc_image_free(imgs[k]);
    oc_free(imgs);
    return s;
}

oc_status oc_make_preferences(const oc_model *model, const char *data,
                              const oc_pref_gen_params *params, const char *out_path,
                              oc_pref_gen_stats *stats) {
    if (!model || !data || !out_path)
        return oc_err(OC_ERR_INVALID_ARG, "oc_make_preferences: NULL argument");
    oc_pref_gen_params p = params ? *params : oc_pref_gen_default_params();
    if (p.samples < 2 || p.samples > 1024)
        return oc_err(OC_ERR_INVALID_ARG, "preferences: samples must be in 2..1024");
    if (!(p.temperature >= 0) || p.max_tokens == 0)
        return oc_err(OC_ERR_INVALID_ARG, "preferences: temperature < 0 or max_tokens 0");
    oc_exam ex;
    OC_TRY(oc_exam_load(data, OC_EXAM_VQA, p.limit, &ex));
    oc_pref_gen_stats st;
    memset(&st, 0, sizeof st);
    oc_out_file *f = NULL;
    oc_status s = oc_out_open(out_path, &f);
    char *out_dir = s == OC_OK ? real_dir(out_path) : NULL;
    oc_strbuf b = {0};
    for (size_t i = 0; s == OC_OK && i < ex.n; i++) {
        oc_sb_clear(&b);
        s = item_pair(model, &ex.items[i], i, &p, out_dir, &b, &st);
        if (s != OC_OK)
            s = oc_err_prefix(s, "%s:%zu: ", data, ex.items[i].line);
        if (s == OC_OK && b.failed)
            s = oc_err(OC_ERR_NOMEM, "out of memory");
        if (s == OC_OK && b.len)
            s = oc_out_write(f, b.data, b.len);
        if (s == OC_OK && p.on_item && p.on_item(i + 1, ex.n, &st, p.user_data))
            s = oc_err(OC_ERR_CANCELLED, "preferences: stopped after %zu of %zu items", i + 1,
                       ex.n);
    }
    if (f && s == OC_OK)
        s = oc_out_commit(f);
    else if (f)
        oc_out_abort(f);
    if (st.prompts)
        st.mean_score /= (double)st.prompts;
    if (stats)
        *stats = st;
    free(out_dir);
    oc_sb_free(&b);
    oc_exam_free(&ex);
    return s;
}
