/* being written */
#include "ocellus.h"
