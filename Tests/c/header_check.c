/* recur.h alone in a C11 translation unit under -Wall -Wextra -pedantic -Werror. */
#include "recur.h"

int recur_header_compiles_as_c(void);
int recur_header_compiles_as_c(void) { return RECUR_ABI_VERSION + (int)sizeof(recur_tensor) + (int)sizeof(recur_sampling); }
