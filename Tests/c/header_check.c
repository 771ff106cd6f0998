/* recur.h and recur_plugin.h in a C11 translation unit under -Wall -Wextra -pedantic -Werror
   (together, as a plugin that also uses the C API includes them). */
#include "recur.h"
#include "recur_plugin.h"

/* The plugin ABI's status values are recur_status's. */
_Static_assert(RECUR_PLUGIN_ABI_VERSION == 1, "plugin ABI version");
_Static_assert(RECUR_PLUGIN_ERR_CONFIG == RECUR_ERR_FORMAT && RECUR_PLUGIN_ERR_INPUT == RECUR_ERR_INVALID_INPUT &&
                   RECUR_PLUGIN_ERR_OUT_OF_MEMORY == RECUR_ERR_OUT_OF_MEMORY && RECUR_PLUGIN_ERR_INTERNAL == RECUR_ERR_INTERNAL,
               "plugin status values");

int recur_header_compiles_as_c(void);
int recur_header_compiles_as_c(void) { return RECUR_ABI_VERSION + (int)sizeof(recur_tensor) + (int)sizeof(recur_sampling) +
                                                 (int)sizeof(recur_plugin_info) + (int)sizeof(recur_layer_builder); }
