/*
 * recur.h — the C API of Recur (librecur.so), ABI version 1.
 *
 * Recur runs recurrent networks (Elman RNN, LSTM, GRU, bidirectional and stacked, embeddings,
 * heads, pooling) from safetensors model files (docs: shared spec model-format.md); plugins add
 * layer types (recur_plugin_load, Include/recur_plugin.h).
 *
 * General rules, valid for every function below unless it says otherwise:
 *
 *  - Status codes. Functions that can fail return a recur_status. RECUR_OK is 0; every other
 *    value is a failure and comes with a message for people from recur_last_error(). On failure,
 *    `out` parameters are left untouched (pointers are not set, nothing is allocated).
 *  - Bad input never crashes the library: NULL pointers, ranks outside 0 ... 8, negative or
 *    overflowing shapes, dtype values outside recur_dtype, NULL data for non-empty tensors,
 *    out-of-range token ids or lengths, and malformed model files all return a status.
 *    The library cannot check what C cannot express: a pointer that is not NULL must point to as
 *    much valid memory as its size or shape says.
 *  - Ownership. Objects the library creates (recur_model, recur_session, recur_result, strings
 *    from recur_model_describe) are owned by the caller until passed to their *_free function.
 *    Every *_free function accepts NULL and does nothing. Input memory (tensors, strings, token
 *    arrays) stays the caller's: the library only reads it during the call and keeps no pointer.
 *  - Threads. A recur_model is immutable: any number of threads may use one model at once
 *    (recur_model_run, recur_model_describe, recur_model_encode, recur_generate, and sessions
 *    opened on it). A recur_session and a recur_result must be used by one thread at a time.
 *    recur_last_error() is per thread. Free an object only when no other thread uses it.
 *  - Lifetimes. A session keeps its model alive: recur_model_free may be called while sessions
 *    opened on the model are still open. Results do not depend on the model or session that
 *    produced them.
 *  - Memory. Buffers of 64 KiB and more that a run allocates (workspaces, outputs, the library's
 *    copies of inputs) are kept for the next run of the same shapes, at most 16 of them and
 *    128 MiB in all per process, rather than returned to malloc after every run;
 *    recur_release_kept_buffers gives them back.
 *  - Stability. Names, signatures, struct layouts and constant values of ABI version 1 never
 *    change; new statuses and dtypes are only added at the end.
 *
 * Build: cc -std=c11 prog.c -I<repo>/Include -L<repo>/.build/release -lrecur
 *        -Wl,-rpath,<repo>/.build/release
 * (librecur.so carries an rpath to the Swift runtime libraries it was built with.)
 */
#ifndef RECUR_H
#define RECUR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; compare with recur_abi_version() at run time. */
#define RECUR_ABI_VERSION 1

/** A loaded model: immutable, safe to share across threads. */
typedef struct recur_model recur_model;
/** One stream's state (streaming inference): use from one thread at a time. */
typedef struct recur_session recur_session;
/** Named output tensors owned by the library, until recur_result_free. */
typedef struct recur_result recur_result;

/** Outcome of a call. Values never change; new ones are only added at the end. */
typedef enum recur_status {
    RECUR_OK = 0,
    RECUR_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, bad rank, capacity too small, ... */
    RECUR_ERR_IO = 2,               /* file cannot be read */
    RECUR_ERR_FORMAT = 3,           /* model file malformed or inconsistent */
    RECUR_ERR_INVALID_INPUT = 4,    /* input shape/dtype/values do not fit the model */
    RECUR_ERR_UNSUPPORTED = 5,      /* valid but not supported (e.g. generation on a classifier) */
    RECUR_ERR_OUT_OF_MEMORY = 6,
    RECUR_ERR_INTERNAL = 7
} recur_status;

/** Element type of a tensor. Values never change. */
typedef enum recur_dtype {
    RECUR_F32 = 1, /* float */
    RECUR_I32 = 2, /* int32_t */
    RECUR_I64 = 3  /* int64_t */
} recur_dtype;

/**
 * A named n-dimensional row-major array.
 *
 * As an input: every field is the caller's; `name` is a NUL-terminated UTF-8 string
 * ("input", "lengths", "L.h0", "L.c0"); `rank` is 0 ... 8 and only shape[0 .. rank-1] is read;
 * `data` holds product(shape) elements of `dtype` (it may be NULL only when that product is 0)
 * and is only read during the call.
 * As a result (recur_result_get / recur_result_find): `name` and `data` point into the result and
 * stay valid until recur_result_free; shape[rank ...] are 0.
 */
typedef struct recur_tensor {
    const char *name;
    recur_dtype dtype;
    int32_t rank;
    int64_t shape[8];
    void *data;
} recur_tensor;

/** How recur_generate picks each next token. */
typedef struct recur_sampling {
    float temperature; /* 0 = greedy arg-max (lowest id on ties); otherwise finite and > 0 */
    int32_t top_k;     /* keep the k most likely tokens; 0 = off; negative is an error */
    float top_p;       /* keep the smallest set of most likely tokens reaching p, in (0, 1]; 1 = off */
    uint64_t seed;     /* same seed, model and prompt -> same tokens */
} recur_sampling;

/* ---------------------------------------------------------------------------------------------
 * Library
 * ------------------------------------------------------------------------------------------- */

/** RECUR_ABI_VERSION of the loaded library. Never fails; any thread. */
int32_t recur_abi_version(void);

/** The library version, "MAJOR.MINOR.PATCH": a static string, never freed. Any thread. */
const char *recur_version(void);

/**
 * The kernel variant this process computes with: "avx512", "avx2" or "portable" — the fastest
 * the CPU runs, or the one the environment variable RECUR_KERNELS names if the CPU runs it; fixed
 * at the first call or computation. A static string, never freed. Never fails; any thread.
 */
const char *recur_kernels(void);

/**
 * Gives the buffers kept between runs (see Memory above) back to malloc, and malloc's free memory
 * back to the system (glibc's malloc_trim), and returns the bytes those buffers held: 0 when none
 * were kept. For a process done with its large runs, or that freed the models they were for; the
 * next run allocates its buffers afresh. Runs in progress on other threads are unaffected. Never
 * fails; any thread.
 */
size_t recur_release_kept_buffers(void);

/**
 * This thread's message for its last failed call, or "" if none of its calls has failed yet.
 * Set by every call that returns a status other than RECUR_OK; successful calls leave it as it
 * is. The string belongs to the library and stays valid until this thread's next call into the
 * library; copy it to keep it. Never NULL. Messages longer than 4095 bytes are cut (at a UTF-8
 * character boundary).
 */
const char *recur_last_error(void);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

/**
 * Loads the model file at `path` (a NUL-terminated path) and checks it completely.
 * On RECUR_OK, *out is a new model the caller frees with recur_model_free.
 * Errors: INVALID_ARGUMENT (path or out NULL), IO (cannot be read), FORMAT (malformed or
 * inconsistent; the message names the tensor or key). Any thread.
 */
recur_status recur_model_load(const char *path, recur_model **out);

/**
 * Loads a model from a file image of `size` bytes at `data`. The bytes are read during the call
 * only, not copied (the model keeps none of them): the caller keeps them unchanged until the call
 * returns and may free them as soon as it does. On RECUR_OK, *out is a new model (recur_model_free).
 * Errors: INVALID_ARGUMENT (out NULL, or data NULL with size > 0), FORMAT. Any thread.
 */
recur_status recur_model_load_memory(const void *data, size_t size, recur_model **out);

/**
 * Releases the caller's reference to `model`. NULL is a no-op. Sessions still open on the model
 * keep it alive; no other call may use `model` after this one.
 */
void recur_model_free(recur_model *model);

/**
 * Describes the model as a JSON document (UTF-8, NUL-terminated): the architecture of the model
 * file ("input", "layers", "labels", "vocab", "tokenizer", ...) plus "inputs" and "outputs"
 * ({name: {"dtype", "shape"}}, with "B" and "T" for the batch and step dimensions), "parameters"
 * (the number of floats), "can_stream" and "can_generate".
 * On RECUR_OK, *json_out is a new string the caller frees with recur_string_free.
 * Errors: INVALID_ARGUMENT (model or json_out NULL). Any thread, concurrently.
 */
recur_status recur_model_describe(const recur_model *model, char **json_out);

/** Frees a string returned by the library. NULL is a no-op. */
void recur_string_free(char *s);

/**
 * Tokenizes the NUL-terminated UTF-8 `text` with the model's tokenizer and vocab.
 * Writes min(count, capacity) ids to `ids` (which may be NULL when capacity is 0) and the full
 * count to *out_len, and returns RECUR_OK even when capacity < count: compare *out_len with
 * capacity, size a buffer, and call again.
 * Errors: INVALID_ARGUMENT (model, text or out_len NULL, ids NULL with capacity > 0, text not
 * UTF-8), UNSUPPORTED (the model has no tokenizer or no vocab). Any thread, concurrently.
 */
recur_status recur_model_encode(const recur_model *model, const char *text, int64_t *ids, size_t capacity,
                                size_t *out_len);

/* ---------------------------------------------------------------------------------------------
 * Whole-sequence inference
 * ------------------------------------------------------------------------------------------- */

/**
 * Runs whole sequences. `inputs` is an array of `n_inputs` tensors with distinct names:
 *   "input"    float32 [B, T, size] (features models) or int32/int64 token ids [B, T] (tokens models)
 *   "lengths"  optional, int32/int64 [B], each in 1 ... T; steps past a length are padding
 *   "L.h0"     optional, float32 [num_layers*D, B, H] per recurrent layer L (and "L.c0" for lstm)
 * On RECUR_OK, *out is a new result (recur_result_free) holding "output" ([B, T, F] per step or
 * [B, F] pooled), then "L.h_n" (and "L.c_n") per recurrent layer, in that order.
 * Errors: INVALID_ARGUMENT (model or out NULL, inputs NULL with n_inputs > 0, a tensor that
 * breaks the recur_tensor rules, a name given twice), INVALID_INPUT (a missing "input", or names,
 * shapes, dtypes or values that do not fit the model), OUT_OF_MEMORY (shapes whose buffers could
 * not fit in memory; refused before allocating). Any number of threads may run the same model at
 * once. The inputs' data is read during the call, float32 "input" in place (by the library's worker
 * threads too, where its data is aligned to 4 bytes), so it must not change until the call returns.
 */
recur_status recur_model_run(const recur_model *model, const recur_tensor *inputs, size_t n_inputs,
                             recur_result **out);

/* ---------------------------------------------------------------------------------------------
 * Results (one thread at a time per result)
 * ------------------------------------------------------------------------------------------- */

/** Number of tensors in `result`; 0 for NULL. */
size_t recur_result_count(const recur_result *result);

/**
 * Describes tensor `index` (0 ... count-1) in *out. out->name and out->data point into result
 * memory: valid until recur_result_free, read only.
 * Errors: INVALID_ARGUMENT (result or out NULL, index out of range).
 */
recur_status recur_result_get(const recur_result *result, size_t index, recur_tensor *out);

/**
 * Like recur_result_get, for the tensor called `name` ("output", "L.h_n", ...).
 * Errors: INVALID_ARGUMENT (a NULL argument, or no tensor of that name).
 */
recur_status recur_result_find(const recur_result *result, const char *name, recur_tensor *out);

/**
 * Every tensor of `result` at once (an addition to the contract): *tensors points to *count
 * descriptions, tensor i as recur_result_get(result, i, ...) gives it, inside the result: valid
 * until recur_result_free, read only. The tensors' data lie in one allocation in index order, each
 * starting at an address that is a multiple of 64, so a caller may view them all through one
 * buffer, from tensors[0].data to the end of the last tensor's data.
 * Errors: INVALID_ARGUMENT (a NULL argument).
 */
recur_status recur_result_tensors(const recur_result *result, const recur_tensor **tensors, size_t *count);

/** Frees `result` and the memory its tensors point to. NULL is a no-op. */
void recur_result_free(recur_result *result);

/* ---------------------------------------------------------------------------------------------
 * Streaming sessions
 * ------------------------------------------------------------------------------------------- */

/**
 * Opens a stream over `model`: recurrent state carries over from step to step, so feeding a
 * sequence in chunks gives the same outputs and final states as one recur_model_run over all of
 * it. On RECUR_OK, *out is a new session (recur_session_free); it keeps the model alive.
 * Errors: INVALID_ARGUMENT (NULL argument), UNSUPPORTED (a bidirectional layer cannot stream).
 * Any thread; each session is then used by one thread at a time.
 */
recur_status recur_session_open(const recur_model *model, recur_session **out);

/**
 * Runs the next chunk: `inputs` holds only "input" ([B, T, size] or token ids [B, T]; no
 * lengths, no initial states), with the same B as earlier steps since the last reset.
 * On RECUR_OK, *out is a new result as for recur_model_run for this chunk. On failure the
 * session's state is unchanged.
 * Errors: as recur_model_run; INVALID_INPUT for a batch size that differs from the held state.
 */
recur_status recur_session_step(recur_session *session, const recur_tensor *inputs, size_t n_inputs,
                                recur_result **out);

/** Forgets the carried state: the next step starts from zeros. Errors: INVALID_ARGUMENT (NULL). */
recur_status recur_session_reset(recur_session *session);

/** Frees `session` (and its reference to the model). NULL is a no-op. */
void recur_session_free(recur_session *session);

/* ---------------------------------------------------------------------------------------------
 * Generation
 * ------------------------------------------------------------------------------------------- */

/**
 * Generates up to `max_tokens` token ids after `prompt` (prompt_len >= 1 ids in the vocabulary):
 * feeds the prompt, then repeatedly samples the next token from the last step's distribution and
 * feeds it back. `sampling` NULL means greedy ({0, 0, 1, 0}). A token in `stop` (n_stop ids; may
 * be NULL when n_stop is 0) ends generation and is not written.
 * `out_tokens` must have room for max_tokens ids (it may be NULL when max_tokens is 0); the
 * library writes at most max_tokens ids there and their count to *out_len.
 * Errors: INVALID_ARGUMENT (model or out_len NULL, prompt/stop/out_tokens NULL with a non-zero
 * count, bad sampling values), INVALID_INPUT (empty prompt, prompt id outside the vocabulary),
 * UNSUPPORTED (the model's input is not tokens or its output is not per step over the vocabulary).
 * Deterministic: same model, prompt, sampling (seed) and stop tokens give the same ids.
 * Any number of threads may generate with the same model at once.
 */
recur_status recur_generate(const recur_model *model, const int32_t *prompt, size_t prompt_len,
                            const recur_sampling *sampling, const int32_t *stop, size_t n_stop,
                            size_t max_tokens, int32_t *out_tokens, size_t *out_len);

/* ---------------------------------------------------------------------------------------------
 * Plugins (Include/recur_plugin.h, docs/plugins.md)
 * ------------------------------------------------------------------------------------------- */

/**
 * Loads the layer-type plugin at `path` (a NUL-terminated path to a shared library; one without
 * a '/' is relative to the working directory) and registers its types for every model loaded
 * afterwards in this process. All or nothing: a refused plugin registers no type.
 * The library stays loaded until the process exits (there is no unload: models built with its
 * types may be in use on any thread); the path string stays the caller's.
 * Errors: INVALID_ARGUMENT (path NULL or not UTF-8; a type name that a built-in type or an
 * earlier plugin already has), IO (the file is missing or not a loadable shared library),
 * UNSUPPORTED (no recur_plugin_init, another plugin ABI version, or the plugin's init refused),
 * FORMAT (the plugin's type table is malformed). The message names the path.
 * Any thread. Registration is atomic: of two plugins loaded at once that share a type name, one
 * is refused.
 */
recur_status recur_plugin_load(const char *path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RECUR_H */
