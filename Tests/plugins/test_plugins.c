/* Plugins for the loading tests, one per refusal the plugin ABI promises, built from this file
   with -D (Tests/plugins/Makefile):
     WRONG_ABI     a table of another ABI version (type "wrong_abi_type")
     NO_ENTRY      no recur_plugin_init (a misspelt one instead)
     DUPLICATE     types "fresh_type" and "lstm" (a built-in name): refused whole
     FAILING       recur_plugin_init refuses with a message
     MALFORMED     type "fresh_type", then a type with neither forward nor step
     PICKY         accepted: recurrent type "picky" (state "h" of width 1, output = input) whose
                   step fails with RECUR_PLUGIN_ERR_INPUT on an input above 100, to test errors
                   at run time; and "elman", the built-in rnn (tanh) as a plugin, whose step
                   computes every row even past its length, to test that plugin recurrent types
                   get the built-in driver's lengths, directions and states; and "sloppy", whose
                   create succeeds after a declaration Recur refused */
#include "recur_plugin.h"

#include <math.h>
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
/* elman: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), PyTorch's nn.RNN names; the layer object is H. */
static recur_plugin_status create_elman(recur_layer_builder *b, void **layer, char *error, size_t capacity) {
    (void)error, (void)capacity;
    int64_t input_size, hidden;
    recur_plugin_status status;
    if ((status = b->get_integer(b, "input_size", NULL, 1, &input_size)) ||
        (status = b->get_integer(b, "hidden_size", NULL, 1, &hidden)))
        return status;
    const int64_t ih[2] = {hidden, input_size}, hh[2] = {hidden, hidden}, bias[1] = {hidden};
    if ((status = b->set_features(b, input_size, hidden)) || (status = b->add_parameter(b, "weight_ih", 2, ih)) ||
        (status = b->add_parameter(b, "weight_hh", 2, hh)) || (status = b->add_parameter(b, "bias_ih", 1, bias)) ||
        (status = b->add_parameter(b, "bias_hh", 1, bias)) || (status = b->add_state(b, "h", hidden)) ||
        (status = b->set_workspace(b, hidden)))
        return status;
    *layer = (void *)(intptr_t)hidden;
    return RECUR_PLUGIN_OK;
}

static recur_plugin_status step_elman(const void *layer, const recur_step_args *a, char *error, size_t capacity) {
    (void)error, (void)capacity;
    const int64_t H = (int64_t)(intptr_t)layer, F = a->input_features;
    const float *w_ih = a->parameters[0], *w_hh = a->parameters[1], *b_ih = a->parameters[2], *b_hh = a->parameters[3];
    for (int64_t b = 0; b < a->batch; b++) { /* every row: Recur restores those past their length */
        const float *x = a->input + b * a->input_stride;
        float *h = a->states[0] + b * H, *next = a->workspace + b * H, *y = a->output + b * a->output_stride;
        for (int64_t j = 0; j < H; j++) {
            float sum = b_ih[j] + b_hh[j];
            for (int64_t k = 0; k < F; k++) sum += w_ih[j * F + k] * x[k];
            for (int64_t k = 0; k < H; k++) sum += w_hh[j * H + k] * h[k];
            next[j] = tanhf(sum);
        }
        for (int64_t j = 0; j < H; j++) h[j] = y[j] = next[j];
    }
    return RECUR_PLUGIN_OK;
}

/* sloppy: ignores that Recur refuses its parameter name and returns success anyway. */
static recur_plugin_status create_sloppy(recur_layer_builder *b, void **layer, char *error, size_t capacity) {
    const int64_t shape[1] = {1};
    (void)b->add_parameter(b, "bad.name", 1, shape);
    return create_identity(b, layer, error, capacity);
}

static const recur_layer_type types[] = {{.name = "picky", .create = create_identity, .step = step_picky},
                                         {.name = "elman", .create = create_elman, .step = step_elman},
                                         {.name = "sloppy", .create = create_sloppy, .step = step_picky}};
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
