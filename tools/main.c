#include "ocellus.h"
int main(void) { return 0; }
