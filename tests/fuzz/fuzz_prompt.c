/* Chat assembly, tokenization and generation with the tiny SmolVLM model of tests/data:
 * arbitrary questions (invalid UTF-8, literal "<image>" and other special-token text),
 * zero or one image, one or two turns, greedy or sampled, at most 3 new tokens; and
 * oc_prompt_encode with labels over user/assistant turns.
 * Input: a flags byte, then the first question, optionally a NUL byte and the second.
 * flags: bit 0 image, bit 1 second turn in the same session, bits 2-3 max_tokens - 1,
 * bit 4 sampling (temperature, top-k, top-p, repetition penalty), bit 5 a small context
 * (64 positions, so that long prompts hit the limit), bit 6 LLaVA's chat format (the
 * tiny LLaVA model of tests/data) instead of SmolVLM's. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "model.h"
#include "ocellus.h"
#include "prompt.h"

static oc_model *models[2][2]; /* [family: SmolVLM, LLaVA][context: the model's, 64] */
static oc_image *image;

static void load(void) {
    if (models[0][0])
        return;
    oc_model_params p = oc_model_default_params();
    p.max_tiles = 4;
    p.max_images = 2;
    for (int f = 0; f < 2; f++)
        for (int c = 0; c < 2; c++) {
            p.max_context = c ? 64 : 1024;
            if (oc_model_load(fz_data(0, f ? "llava-tiny" : "smolvlm-tiny"), &p,
                              &models[f][c]) != OC_OK)
                abort();
        }
    uint8_t px[24 * 16 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 13);
    if (oc_image_from_rgb(px, 24, 16, &image) != OC_OK)
        abort();
}

static void encode_turns(const oc_model *m, const char *q1, const char *q2) {
    oc_turn turns[3] = {{.text = q1}, {.is_assistant = 1, .text = q2}, {.text = q1}};
    int32_t *ids = NULL, *labels = NULL;
    size_t n = 0;
    oc_status s = oc_prompt_encode(&m->cfg, m->tok, turns, 3, NULL, 0, 1, &ids, &labels, &n);
    fz_check_error(s, "oc_prompt_encode");
    if (s != OC_OK)
        return;
    for (size_t i = 0; i < n; i++)
        if (labels[i] != OC_IGNORE_LABEL && labels[i] != ids[i])
            abort();
    oc_free(ids);
    oc_free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    load();
    int flags = data[0];
    char *text = fz_cstr(data + 1, size - 1);
    const char *q1 = text;
    const uint8_t *nul = memchr(data + 1, 0, size - 1);
    const char *q2 = nul ? text + (nul - (data + 1)) + 1 : NULL;
    const oc_model *m = models[(flags >> 6) & 1][(flags >> 5) & 1];

    encode_turns(m, q1, q2 ? q2 : "");

    oc_gen_params gp = oc_gen_default_params();
    gp.max_tokens = 1 + ((flags >> 2) & 3);
    if (flags & 16) {
        gp.temperature = 0.8f;
        gp.top_k = 20;
        gp.top_p = 0.9f;
        gp.repetition_penalty = 1.3f;
        gp.seed = (uint64_t)size;
    }
    oc_session *s = NULL;
    if (oc_session_new(m, &s) != OC_OK)
        abort();
    const oc_image *imgs[1] = {image};
    int n_img = flags & 1;
    oc_answer ans;
    oc_status st = oc_session_ask(s, imgs, (size_t)n_img, q1, &gp, &ans);
    fz_check_error(st, "oc_session_ask");
    if (st == OC_OK) {
        if (!ans.text || ans.n_tokens > gp.max_tokens)
            abort();
        oc_answer_free(&ans);
    }
    if ((flags & 2) && q2) {
        st = oc_session_ask(s, imgs, (size_t)n_img, q2, &gp, &ans);
        fz_check_error(st, "oc_session_ask (second turn)");
        if (st == OC_OK)
            oc_answer_free(&ans);
    }
    oc_session_free(s);
    free(text);
    return 0;
}
