/* Plugins for the loading tests, one per refusal the plugin ABI promises, built from this file
   with -D (Tests/plugins/Makefile):
     WRONG_ABI     a table of another ABI version (type "wrong_abi_type")
     NO_ENTRY      no recur_plugin_init (a misspelt one instead)
     DUPLICATE     types "fresh_type" and "lstm" (a built-in name): refused whole
     FAILING       recur_plugin_init refuses with a message
     MALFORMED     type "fresh_type", then a type with neither forward nor step
     PICKY         accepted: recurrent type "picky" (state "h" of width 1, output = input) whose
                   step fails with RECUR_PLUGIN_ERR_INPUT on an input above 100, to test errors
                   at run time */
#include "recur_plugin.h"

#include <stdio.h>

static recur_plugin_status create_identity(recur_layer_builder *b, void **layer, char *error, size_t capacity) {
    (void)layer, (void)error, (void)capacity;
    recur_plugin_status status;
    if ((status = b->set_features(b, 1, 1)) || (status = b->add_state(b, "h", 1))) return status;
    return RECUR_PLUGIN_OK;
}

static recur_plugin_status step_picky(const void *layer, const recur_step_args *a, char *error, size_t capacity) {
    (void)layer;
    for (int64_t b = 0; b < a->batch; b++) {
        float x = a->input[b * a->input_stride];
        if (x > 100) {
            snprintf(error, capacity, "input %g is above 100", x);
            return RECUR_PLUGIN_ERR_INPUT;
        }
        a->states[0][b] = x;
        a->output[b * a->output_stride] = x;
    }
    return RECUR_PLUGIN_OK;
}

#if defined(MALFORMED)
static const recur_layer_type types[] = {{.name = "fresh_type", .create = create_identity, .step = step_picky},
                                         {.name = "malformed_type", .create = create_identity}};
#elif defined(DUPLICATE)
static const recur_layer_type types[] = {{.name = "fresh_type", .create = create_identity, .step = step_picky},
                                         {.name = "lstm", .create = create_identity, .step = step_picky}};
#elif defined(WRONG_ABI)
static const recur_layer_type types[] = {{.name = "wrong_abi_type", .create = create_identity, .step = step_picky}};
#else
static const recur_layer_type types[] = {{.name = "picky", .create = create_identity, .step = step_picky}};
#endif

static const recur_plugin_info info = {
#if defined(WRONG_ABI)
    .abi_version = RECUR_PLUGIN_ABI_VERSION + 1,
#else
    .abi_version = RECUR_PLUGIN_ABI_VERSION,
#endif
    .info_size = sizeof(recur_plugin_info),
    .type_size = sizeof(recur_layer_type),
    .name = "test-plugin",
    .type_count = sizeof types / sizeof types[0],
    .types = types,
};

#if defined(NO_ENTRY)
RECUR_PLUGIN_EXPORT const recur_plugin_info *recur_plugin_initialise(void) { return &info; }
#else
RECUR_PLUGIN_EXPORT const recur_plugin_info *recur_plugin_init(uint32_t host_abi_version, char *error,
                                                               size_t capacity) {
    (void)host_abi_version;
#if defined(FAILING)
    snprintf(error, capacity, "no licence for this machine");
    return info.abi_version ? NULL : &info;
#else
    (void)error, (void)capacity;
    return &info;
#endif
}
#endif
