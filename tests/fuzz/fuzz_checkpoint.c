/* A training checkpoint from elsewhere (`ocellus train --resume DIR`): oc_trainer_resume
 * on a folder whose config.json describes a tiny SmolVLM (vision and text hidden 8,
 * vocab 20) and whose optimizer.safetensors (flags bit 0 clear) or model.safetensors
 * (set) is the input, the other file a real one of that model. Shapes, dtypes, the
 * optimizer's scalars (step, rng, total_flops) and the step both files say they are of
 * are all checked; a resumed trainer is taken one step.
 * Input: a flags byte, then the safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ocellus.h"

static const char CONFIG[] =
    "{\"model_type\": \"smolvlm\", \"image_token_id\": 3, \"scale_factor\": 2,"
    " \"vision_config\": {\"hidden_size\": 8, \"intermediate_size\": 12,"
    "  \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"image_size\": 16,"
    "  \"patch_size\": 4},"
    " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 8,"
    "  \"intermediate_size\": 12, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
    "  \"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 20,"
    "  \"max_position_embeddings\": 64, \"tie_word_embeddings\": true}}";

static char *ck, *good_model, *good_opt;

/* A checkpoint of the tiny model, once: the real files to put beside the input. */
static void setup(void) {
    if (ck)
        return;
    fz_write(fz_path(0, "config.json"), CONFIG, strlen(CONFIG));
    oc_train_params tp = oc_train_default_params();
    tp.steps = 10;
    oc_trainer *tr = NULL;
    if (oc_trainer_new_from_config(fz_dir(), &tp, &tr) != OC_OK)
        abort();
    int32_t ids[6] = {1, 5, 6, 7, 8, 9}, labels[6] = {-100, 5, 6, 7, 8, 9};
    oc_train_example ex = {ids, labels, 6, NULL, 0};
    if (oc_trainer_step(tr, &ex, 1, NULL) != OC_OK) /* step 1: the corpus's seeds */
        abort();
    ck = strdup(fz_path(0, "ck"));
    if (oc_trainer_save(tr, ck) != OC_OK)
        abort();
    oc_trainer_free(tr);
    good_model = strdup(fz_path(1, "model.safetensors"));
    good_opt = strdup(fz_path(2, "optimizer.safetensors"));
    char src[1024];
    snprintf(src, sizeof src, "%s/model.safetensors", ck);
    fz_copy(src, good_model);
    snprintf(src, sizeof src, "%s/optimizer.safetensors", ck);
    fz_copy(src, good_opt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    setup();
    int fuzz_model = data[0] & 1;
    char path[1024], other[1024];
    snprintf(path, sizeof path, "%s/%s", ck,
             fuzz_model ? "model.safetensors" : "optimizer.safetensors");
    snprintf(other, sizeof other, "%s/%s", ck,
             fuzz_model ? "optimizer.safetensors" : "model.safetensors");
    fz_write(path, data + 1, size - 1);
    fz_copy(fuzz_model ? good_opt : good_model, other);
    oc_train_params tp = oc_train_default_params();
    tp.steps = 10;
    oc_trainer *tr = NULL;
    oc_status s = oc_trainer_resume(ck, &tp, &tr);
    fz_check_error(s, "oc_trainer_resume");
    if (s == OC_OK) {
        oc_trainer_info in = oc_trainer_get_info(tr);
        if (in.n_params == 0)
            abort();
        int32_t ids[6] = {1, 5, 6, 7, 8, 9}, labels[6] = {-100, 5, 6, 7, 8, 9};
        oc_train_example ex = {ids, labels, 6, NULL, 0};
        oc_train_stats st;
        s = oc_trainer_step(tr, &ex, 1, &st);
        fz_check_error(s, "oc_trainer_step");
        oc_trainer_free(tr);
    }
    return 0;
}
