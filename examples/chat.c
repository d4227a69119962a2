/* A complete program using a session: questions about one image, each answer streamed as
 * it is written; the image is encoded once and every turn reuses the conversation so far.
 *   cc chat.c $(pkg-config --cflags --libs ocellus) -o chat
 *   ./chat MODEL_DIR IMAGE QUESTION [QUESTION...] */
#include <stdio.h>

#include <ocellus.h>

static int print_piece(const char *piece, int32_t token_id, void *user_data) {
    (void)token_id;
    (void)user_data;
    fputs(piece, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop this answer */
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE QUESTION [QUESTION...]\n", argv[0]);
        return 2;
    }
    oc_model *model = NULL;
    oc_image *image = NULL;
    oc_session *session = NULL;
    oc_status s = oc_model_load(argv[1], NULL, &model);
    if (s == OC_OK)
        s = oc_image_load(argv[2], NULL, &image);
    if (s == OC_OK)
        s = oc_session_new(model, &session);
    oc_gen_params params = oc_gen_default_params();
    params.max_tokens = 64;
    params.on_token = print_piece;
    for (int i = 3; s == OC_OK && i < argc; i++) {
        /* the image goes with the first question; later turns see it in the history */
        const oc_image *const images[] = {image};
        oc_answer answer = {0};
        printf("> %s\n", argv[i]);
        s = oc_session_ask(session, images, i == 3 ? 1 : 0, argv[i], &params, &answer);
        if (s == OC_OK)
            printf("\n  (%u tokens)\n", (unsigned)answer.n_tokens);
        oc_answer_free(&answer);
    }
    if (s != OC_OK)
        fprintf(stderr, "%s: %s\n", oc_status_str(s), oc_last_error());
    oc_session_free(session);
    oc_image_free(image);
    oc_model_free(model);
    return s == OC_OK ? 0 : 1;
}
