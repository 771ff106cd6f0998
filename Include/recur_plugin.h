/*
 * recur_plugin.h — the plugin ABI of Recur, version 1: layer types from shared libraries.
 *
 * A plugin is a shared library that exports one function, recur_plugin_init, returning a table of
 * layer types. Recur loads it with recur_plugin_load (recur.h), `recurd --plugin PATH`,
 * `recur --plugin PATH ...` or recur.load_plugin(path) in Python; from then on a model file whose
 * architecture names one of its types ({"name": "enc", "type": "mgu", ...}) loads, runs, batches
 * and streams like one made of built-in layers. Built-in layers are registered the same way.
 * A plugin needs only this header: it does not link against librecur.so.
 *
 * Two kinds of layer type:
 *  - per-step (non-recurrent): `forward` maps [B, T, F] to [B, T, F'] (a pooled [B, F] signal
 *    comes as T = 1). Example: layer norm.
 *  - recurrent: `step` advances state tensors by one time step for B sequences; Recur's sequence
 *    driver calls it for every step, in order, and does everything else the built-in rnn/lstm/gru
 *    get: lengths (a sequence's state is only touched at its valid steps), the backward direction
 *    (`"bidirectional": true` in the layer's config), initial states `L.<state>0`, final states
 *    `L.<state>_n`, `pool` `final_state`, streaming sessions and dynamic batching.
 *    Example: a minimal gated unit.
 *
 * Loading (what the host does with a library, in this order):
 *  1. dlopen(path, RTLD_NOW | RTLD_LOCAL); an unresolved symbol fails here.
 *  2. dlsym "recur_plugin_init"; missing: refused.
 *  3. init = recur_plugin_init(RECUR_PLUGIN_ABI_VERSION, error, capacity); NULL: refused with the
 *     plugin's message (a failing registration).
 *  4. init->abi_version must equal the host's RECUR_PLUGIN_ABI_VERSION, and the struct sizes must
 *     be the ones of this version; every type is checked (a name of 1 ... 63 characters from
 *     [A-Za-z0-9_], `create` set, exactly one of `forward` and `step` set).
 *  5. The types are registered all at once: a name that a built-in type, an earlier plugin or
 *     another type of the same table already has refuses the whole plugin.
 * A refused plugin changes nothing: no type is registered, and the library is dlclose'd (so
 * recur_plugin_init must not start threads or register atexit handlers). An accepted plugin's
 * library stays loaded for the life of the process: types cannot be unregistered, because models
 * loaded with them may live on in any thread.
 *
 * Ownership. Everything the plugin hands out from recur_plugin_init (the table, the types, their
 * names) stays the plugin's and must stay valid and unchanged while the library is loaded: static
 * storage is the natural place. Strings and buffers Recur passes in (the config JSON, keys,
 * parameters, inputs, states, outputs, workspaces) are Recur's and valid only during the call;
 * copy what you keep. The per-layer object a `create` returns is the plugin's until Recur calls
 * `destroy` on it, exactly once, when the last model using the layer is freed or its loading fails.
 *
 * Threads. A loaded model is shared: Recur calls a type's `forward` and `step` from many threads
 * at once, with the same layer object and the same parameters, on different inputs, outputs,
 * states and workspaces. They must therefore treat the layer object and the parameters as
 * read-only and keep no mutable global state (use the workspace Recur passes, or the stack).
 * `create` and `destroy` may also run on any thread, concurrently for different layers.
 * recur_plugin_init runs once per successful load, on the loading thread.
 *
 * Errors. Every plugin function that can fail returns a recur_plugin_status and may write a
 * NUL-terminated UTF-8 message of at most `error_capacity` bytes (terminator included) to `error`
 * (snprintf(error, error_capacity, ...)). Recur prefixes it with the plugin, layer and type:
 *   plugin 'example-layers': layer 'enc' (mgu): <message>
 * and reports it with the status's meaning (recur.h). A plugin function must not exit, abort or
 * longjmp out: bad input is a status, never a crash.
 *
 * Stability. RECUR_PLUGIN_ABI_VERSION changes whenever a struct or function of this header changes
 * in a way an existing plugin would notice; the entry point's signature and the first field of
 * recur_plugin_info (abi_version) are the same in every version, so a host can always refuse a
 * plugin of another version cleanly.
 */
#ifndef RECUR_PLUGIN_H
#define RECUR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The plugin ABI this header describes. */
#define RECUR_PLUGIN_ABI_VERSION 1

/** The symbol every plugin exports (see recur_plugin_init below). */
#define RECUR_PLUGIN_ENTRY_POINT "recur_plugin_init"

/** Marks the entry point as exported even under -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define RECUR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RECUR_PLUGIN_EXPORT
#endif

/**
 * Outcome of a plugin function. The failure values are those of recur_status in recur.h, and
 * Recur reports them as such; any other non-zero value is reported as RECUR_ERR_INTERNAL.
 */
typedef int32_t recur_plugin_status;
#define RECUR_PLUGIN_OK 0
#define RECUR_PLUGIN_ERR_CONFIG 3        /* the layer's config does not fit (RECUR_ERR_FORMAT) */
#define RECUR_PLUGIN_ERR_INPUT 4         /* values the layer cannot take (RECUR_ERR_INVALID_INPUT) */
#define RECUR_PLUGIN_ERR_OUT_OF_MEMORY 6 /* RECUR_ERR_OUT_OF_MEMORY */
#define RECUR_PLUGIN_ERR_INTERNAL 7      /* RECUR_ERR_INTERNAL */

/** Longest name (type, parameter, state), in bytes without the terminator. */
#define RECUR_PLUGIN_MAX_NAME 63
/** Highest rank of a parameter. */
#define RECUR_PLUGIN_MAX_RANK 8

/**
 * What `create` gets: the layer's config, and the calls through which it declares the layer.
 * Recur owns the builder; it is valid only during `create`. Every call returns RECUR_PLUGIN_OK or
 * a failure whose message Recur keeps: a `create` that then returns that status without writing
 * its own message reports Recur's (e.g. "layer 'enc' (mgu): hidden_size must be an integer ≥ 1,
 * found "abc"").
 */
typedef struct recur_layer_builder recur_layer_builder;
struct recur_layer_builder {
    /** The layer's name and type from the architecture, NUL-terminated UTF-8. */
    const char *layer_name;
    const char *type_name;
    /** The layer's whole JSON object as text ({"name": ..., "type": ..., ...}), for keys the
        accessors below do not cover. */
    const char *config_json;
    /** Recur's; plugins do not touch it. */
    void *host;

    /** Integer `key` of the config into *out. `fallback` NULL: the key is required; otherwise
        *fallback is used when the key is absent. A present value must be a whole number ≥ minimum
        (RECUR_PLUGIN_ERR_CONFIG otherwise). */
    recur_plugin_status (*get_integer)(recur_layer_builder *builder, const char *key, const int64_t *fallback,
                                       int64_t minimum, int64_t *out);
    /** Finite number `key` into *out; `fallback` as for get_integer. */
    recur_plugin_status (*get_number)(recur_layer_builder *builder, const char *key, const double *fallback,
                                      double *out);
    /** true/false `key` into *out as 1/0; `fallback` as for get_integer. */
    recur_plugin_status (*get_boolean)(recur_layer_builder *builder, const char *key, const int32_t *fallback,
                                       int32_t *out);

    /** Required, once: the features F the layer takes and F' it produces per step (both ≥ 1).
        For a recurrent type, F' is one direction's; a bidirectional layer produces 2·F'. */
    recur_plugin_status (*set_features)(recur_layer_builder *builder, int64_t input_features,
                                        int64_t output_features);
    /** Declares parameter `name` (1 ... RECUR_PLUGIN_MAX_NAME characters from [A-Za-z0-9_], unique in
        the layer) with `rank` (1 ... RECUR_PLUGIN_MAX_RANK) dimensions shape[0 .. rank-1], each ≥ 1.
        The model file must hold "<layer>.<name>" with exactly that shape (for a bidirectional
        recurrent layer also "<layer>.<name>_reverse"); forward and step get them in declaration
        order. */
    recur_plugin_status (*add_parameter)(recur_layer_builder *builder, const char *name, int32_t rank,
                                         const int64_t *shape);
    /** Recurrent types only, at least once: state tensor `name` (as for parameters, e.g. "h", "c")
        of `width` ≥ 1 floats per sequence. It is given as "<layer>.<name>0" and returned as
        "<layer>.<name>_n", [D, B, width]. The first state is the one `pool` `final_state` reads. */
    recur_plugin_status (*add_state)(recur_layer_builder *builder, const char *name, int64_t width);
    /** Optional: scratch floats per sequence that forward or step need; Recur passes a workspace of
        B · floats_per_sequence floats to each call (0, the default: none). */
    recur_plugin_status (*set_workspace)(recur_layer_builder *builder, int64_t floats_per_sequence);
};

/** The arguments of a per-step type's forward. Every buffer is Recur's, valid during the call. */
typedef struct recur_forward_args {
    int64_t batch;          /* B ≥ 1 */
    int64_t steps;          /* T ≥ 1 */
    int64_t input_features; /* F, as set_features declared */
    int64_t output_features;/* F', as set_features declared */
    /** [B], each in 1 ... T: steps at or past a sequence's length are padding, whose output Recur
        sets to zero afterwards. NULL: every sequence has T steps. */
    const int64_t *lengths;
    /** parameters[i]: the i-th declared parameter, row-major in its declared shape (NULL when the
        layer declares none). */
    const float *const *parameters;
    const float *input; /* [B, T, F] */
    float *output;      /* [B, T, F'], to be written in full (it is not initialised) */
    float *workspace;   /* [B, floats_per_sequence], uninitialised; NULL when none was asked for */
} recur_forward_args;

/** The arguments of a recurrent type's step: one time step t for B sequences. */
typedef struct recur_step_args {
    int64_t batch;           /* B ≥ 1 */
    int64_t input_features;  /* F */
    int64_t output_features; /* F' (one direction's) */
    /** This direction's parameters, in declaration order ("<name>_reverse" for the backward one);
        NULL when the layer declares none. */
    const float *const *parameters;
    /** Sequence b's input at this step: input + b · input_stride, F floats. */
    const float *input;
    int64_t input_stride;
    /** Sequence b's output at this step: output + b · output_stride, F' floats, to be written. */
    float *output;
    int64_t output_stride;
    /** states[i]: the i-th declared state, [B, width_i], holding the state before this step;
        the step replaces it with the state after it. */
    float *const *states;
    /** [B]: 0 for sequences already past their length at this step. Recur restores their state
        after the call and discards their output, so a step may compute every row or skip these.
        NULL: every sequence is inside its length. */
    const uint8_t *active;
    float *workspace; /* [B, floats_per_sequence], uninitialised; NULL when none was asked for */
} recur_step_args;

/** One layer type. */
typedef struct recur_layer_type {
    /** The architecture's "type" string: 1 ... RECUR_PLUGIN_MAX_NAME characters from [A-Za-z0-9_]. */
    const char *name;
    /**
     * Reads a layer's config through `builder`, declares its features, parameters, states and
     * workspace, and sets *layer to the plugin's per-layer object (or leaves it NULL when it needs
     * none). Recur calls it when a model using the type is loaded, possibly more than once per
     * layer. A failing create frees whatever it made: Recur ignores *layer then.
     */
    recur_plugin_status (*create)(recur_layer_builder *builder, void **layer, char *error, size_t error_capacity);
    /** Frees a per-layer object `create` made; never called with NULL. May be NULL when `create`
        never makes one. */
    void (*destroy)(void *layer);
    /** Per-step types: computes the layer (see recur_forward_args). NULL for recurrent types. */
    recur_plugin_status (*forward)(const void *layer, const recur_forward_args *args, char *error,
                                   size_t error_capacity);
    /** Recurrent types: one time step (see recur_step_args). NULL for per-step types. */
    recur_plugin_status (*step)(const void *layer, const recur_step_args *args, char *error, size_t error_capacity);
} recur_layer_type;

/** What recur_plugin_init returns: the plugin's name and its types. */
typedef struct recur_plugin_info {
    /** RECUR_PLUGIN_ABI_VERSION the plugin was built with. The first field in every version. */
    uint32_t abi_version;
    /** sizeof(recur_plugin_info) and sizeof(recur_layer_type) as the plugin was built. */
    uint32_t info_size;
    uint32_t type_size;
    /** The plugin's name for messages (NUL-terminated UTF-8, e.g. "example-layers"). */
    const char *name;
    /** types[0 .. type_count-1]; type_count ≥ 1. */
    uint32_t type_count;
    const recur_layer_type *types;
} recur_plugin_info;

/**
 * The entry point every plugin exports. `host_abi_version` is the host's RECUR_PLUGIN_ABI_VERSION.
 * Returns the plugin's table (with abi_version = RECUR_PLUGIN_ABI_VERSION), or NULL with a message
 * in `error` to refuse to load (the plugin cannot run here: a missing CPU feature, a licence, ...).
 * Called once per load, before any other plugin function.
 */
RECUR_PLUGIN_EXPORT const recur_plugin_info *recur_plugin_init(uint32_t host_abi_version, char *error,
                                                               size_t error_capacity);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RECUR_PLUGIN_H */
