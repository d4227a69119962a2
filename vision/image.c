/* placeholder: being written (image decoding) */
#include "image.h"
