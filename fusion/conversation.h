/* A conversation of messages made of text and image parts (ocellus.h). */
#ifndef OC_CONVERSATION_H
#define OC_CONVERSATION_H
#include "encoded_image.h"

typedef struct {
    char *text;               /* a text part (owned), or NULL for an image part */
    oc_encoded_image *image;  /* a reference */
    char *source;             /* the image's file, or NULL */
} oc_conv_part;

typedef struct {
    oc_role role;
    oc_conv_part *parts;
    size_t n_parts;
} oc_conv_message;

struct oc_conversation {
    oc_conv_message *msgs;
    size_t n;
};
#endif
