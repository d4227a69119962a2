/* A complete program using the library: caption an image, streaming the words.
 *   cc caption.c $(pkg-config --cflags --libs ocellus) -o caption
 *   ./caption MODEL_DIR IMAGE */
#include <stdio.h>

#include <ocellus.h>

static int print_piece(const char *piece, int32_t token_id, void *user_data) {
    (void)token_id;
    (void)user_data;
    fputs(piece, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop generation */
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE\n", argv[0]);
        return 2;
    }
    oc_model *model = NULL;
    oc_image *image = NULL;
    oc_answer answer = {0};
    oc_status s = oc_model_load(argv[1], NULL, &model);
    if (s == OC_OK)
        s = oc_image_load(argv[2], NULL, &image);
    if (s == OC_OK) {
        oc_gen_params params = oc_gen_default_params();
        params.max_tokens = 64;
        params.on_token = print_piece;
        s = oc_caption(model, image, &params, &answer);
        putchar('\n');
    }
    if (s != OC_OK)
        fprintf(stderr, "%s: %s\n", oc_status_str(s), oc_last_error());
    oc_answer_free(&answer);
    oc_image_free(image);
    oc_model_free(model);
    return s == OC_OK ? 0 : 1;
}
