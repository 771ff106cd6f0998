/* Tests of the C API (Include/recur.h, librecur.so), written as a C caller would use it:
   golden cases computed with PyTorch, every error path, 8 threads sharing one model, sessions,
   generation, tokenization and malformed model files. Prints "c-api: N passed, M failed" and
   exits non-zero on any failure. RECUR_GOLDEN_DIR names the golden directory (default
   ../shared/golden, relative to the repository root as the working directory). */
#define _POSIX_C_SOURCE 200809L /* mkfifo, getpid, unlink */
#include "recur.h"
#include "safetensors.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header's constants are the spec's (c-api.md); a renumbering must break the build. */
_Static_assert(RECUR_ABI_VERSION == 1, "ABI version");
_Static_assert(RECUR_OK == 0 && RECUR_ERR_INVALID_ARGUMENT == 1 && RECUR_ERR_IO == 2 && RECUR_ERR_FORMAT == 3 &&
                   RECUR_ERR_INVALID_INPUT == 4 && RECUR_ERR_UNSUPPORTED == 5 && RECUR_ERR_OUT_OF_MEMORY == 6 &&
                   RECUR_ERR_INTERNAL == 7,
               "status values");
_Static_assert(RECUR_F32 == 1 && RECUR_I32 == 2 && RECUR_I64 == 3, "dtype values");

static int passed, failed;
static const char *golden_dir;

static void check(int ok, const char *file, int line, const char *format, ...) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list args;
    va_start(args, format);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, format, args);
    fprintf(stderr, " (last error: %s)\n", recur_last_error());
    va_end(args);
}
#define CHECK(cond, ...) check((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)

/* The call returned `want` and, on failure, recur_last_error() mentions `mention`. */
#define EXPECT_STATUS(call, want, mention)                                                                       \
    do {                                                                                                         \
        recur_status got_ = (call);                                                                              \
        CHECK(got_ == (want), "%s returned %d, expected %d", #call, (int)got_, (int)(want));                      \
        if ((want) != RECUR_OK)                                                                                  \
            CHECK(strstr(recur_last_error(), (mention)) != NULL, "%s: message '%s' does not mention '%s'", #call, \
                  recur_last_error(), (mention));                                                                \
    } while (0)

static char *path_in(const char *case_name, const char *file) {
    size_t n = strlen(golden_dir) + strlen(case_name) + strlen(file) + 3;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s/%s", golden_dir, case_name, file);
    return path;
}

static recur_model *load_model(const char *case_name) {
    char *path = path_in(case_name, "model.safetensors");
    recur_model *model = NULL;
    recur_status status = recur_model_load(path, &model);
    CHECK(status == RECUR_OK && model, "load %s: status %d", path, (int)status);
    free(path);
    return model;
}

static int load_case(const char *case_name, st_file *file) {
    char *path = path_in(case_name, "case.safetensors");
    int status = st_load(path, file);
    CHECK(status == 0, "cannot read %s", path);
    free(path);
    return status;
}

static recur_tensor tensor(const char *name, recur_dtype dtype, int32_t rank, const int64_t *shape, const void *data) {
    recur_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = dtype;
    t.rank = rank;
    for (int i = 0; i < rank && i < 8; i++) t.shape[i] = shape[i];
    t.data = (void *)(uintptr_t)data;
    return t;
}

static size_t element_count(const recur_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->shape[i];
    return n;
}

static size_t element_size(recur_dtype dtype) { return dtype == RECUR_I64 ? 8 : 4; }

/* How run_case hands a case's inputs over. */
enum { AS_STORED = 0, TOKENS_AS_I32 = 1, AT_ODD_ADDRESSES = 2 };

/* Runs a golden case's inputs (every tensor not named expected.*): as stored, with token ids as int32,
   or with every tensor's data one byte past an aligned address (which the library must copy rather
   than read as floats in place). */
static recur_status run_case(const recur_model *model, const st_file *file, int how, recur_result **out) {
    recur_tensor inputs[ST_MAX_TENSORS] = {{0}};
    void *converted[ST_MAX_TENSORS];
    size_t n = 0, n_converted = 0;
    for (size_t i = 0; i < file->n; i++) {
        const st_tensor *t = &file->tensors[i];
        if (strncmp(t->name, "expected.", 9) == 0) continue;
        inputs[n] = st_view(t, t->name);
        if (how == TOKENS_AS_I32 && t->dtype == RECUR_I64) {
            int32_t *narrow = malloc(t->count * sizeof *narrow + 1);
            for (size_t k = 0; k < t->count; k++) narrow[k] = (int32_t)((const int64_t *)t->data)[k];
            inputs[n].dtype = RECUR_I32;
            inputs[n].data = narrow;
            converted[n_converted++] = narrow;
        } else if (how == AT_ODD_ADDRESSES) {
            size_t bytes = t->count * element_size(t->dtype);
            char *odd = malloc(bytes + 2);
            memcpy(odd + 1, t->data, bytes);
            inputs[n].data = odd + 1;
            converted[n_converted++] = odd;
        }
        n++;
    }
    recur_status status = recur_model_run(model, inputs, n, out);
    for (size_t i = 0; i < n_converted; i++) free(converted[i]);
    return status;
}

/* PyTorch and Recur agree to float32 rounding: |a - e| <= max(1e-5, 1e-4 |e|). */
static int close_enough(const float *actual, const float *expected, size_t n, double *worst) {
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double allowed = fmax(1e-5, 1e-4 * fabs(expected[i]));
        double ratio = isnan(actual[i]) ? INFINITY : fabs((double)actual[i] - expected[i]) / allowed;
        if (ratio > *worst) *worst = ratio;
    }
    return *worst <= 1;
}

/* recur_result_tensors describes every tensor as recur_result_get does, their data in one block in
   index order, each at a multiple of 64 bytes. */
static void check_result_tensors(const char *case_name, const recur_result *result) {
    const recur_tensor *tensors = NULL;
    size_t count = 0;
    CHECK(recur_result_tensors(result, &tensors, &count) == RECUR_OK, "%s: recur_result_tensors failed", case_name);
    CHECK(count == recur_result_count(result) && tensors != NULL, "%s: recur_result_tensors gave %zu tensors", case_name,
          count);
    for (size_t i = 0; tensors && i < count; i++) {
        recur_tensor got;
        CHECK(recur_result_get(result, i, &got) == RECUR_OK && memcmp(&got, &tensors[i], sizeof got) == 0,
              "%s: recur_result_tensors' tensor %zu is not recur_result_get's", case_name, i);
        CHECK((uintptr_t)tensors[i].data % 64 == 0, "%s: tensor %zu's data is not at a multiple of 64 bytes", case_name, i);
        if (i > 0) {
            const char *previous_end = (const char *)tensors[i - 1].data +
                                       element_count(&tensors[i - 1]) * element_size(tensors[i - 1].dtype);
            CHECK((const char *)tensors[i].data >= previous_end, "%s: tensor %zu's data overlaps or precedes tensor %zu's",
                  case_name, i, i - 1);
        }
    }
}

/* Every expected.* tensor of the case is in `result` with its shape and values; nothing else is. */
static void check_against_expected(const recur_result *result, const st_file *file, const char *case_name) {
    size_t expected_count = 0;
    for (size_t i = 0; i < file->n; i++) {
        const st_tensor *e = &file->tensors[i];
        if (strncmp(e->name, "expected.", 9) != 0) continue;
        expected_count++;
        const char *name = e->name + 9;
        recur_tensor got;
        recur_status status = recur_result_find(result, name, &got);
        CHECK(status == RECUR_OK, "%s: result has no '%s'", case_name, name);
        if (status != RECUR_OK) continue;
        CHECK(strcmp(got.name, name) == 0, "%s: found '%s' for '%s'", case_name, got.name, name);
        int same_shape = got.dtype == RECUR_F32 && got.rank == e->rank;
        for (int d = 0; same_shape && d < e->rank; d++) same_shape = got.shape[d] == e->shape[d];
        CHECK(same_shape, "%s: '%s' has dtype %d rank %d, expected float32 rank %d", case_name, name, (int)got.dtype,
              (int)got.rank, (int)e->rank);
        if (!same_shape) continue;
        double worst = 0;
        CHECK(close_enough(got.data, e->data, e->count, &worst), "%s: '%s' differs from PyTorch (worst %.2f x tolerance)",
              case_name, name, worst);
    }
    CHECK(recur_result_count(result) == expected_count, "%s: result has %zu tensors, expected %zu", case_name,
          recur_result_count(result), expected_count);
    recur_tensor first;
    CHECK(recur_result_get(result, 0, &first) == RECUR_OK && strcmp(first.name, "output") == 0,
          "%s: first result tensor is not 'output'", case_name);
    check_result_tensors(case_name, result);
}

/* Both results hold the same names, shapes and bytes, in the same order. */
static int identical(const recur_result *a, const recur_result *b) {
    if (recur_result_count(a) != recur_result_count(b)) return 0;
    for (size_t i = 0; i < recur_result_count(a); i++) {
        recur_tensor x, y;
        if (recur_result_get(a, i, &x) != RECUR_OK || recur_result_get(b, i, &y) != RECUR_OK) return 0;
        if (strcmp(x.name, y.name) != 0 || x.dtype != y.dtype || x.rank != y.rank) return 0;
        if (memcmp(x.shape, y.shape, sizeof x.shape) != 0) return 0;
        if (memcmp(x.data, y.data, element_count(&x) * element_size(x.dtype)) != 0) return 0;
    }
    return 1;
}

/* Case names from index.json ("name": "..."), at most `capacity`. */
static size_t golden_cases(char names[][64], size_t capacity) {
    size_t size = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/index.json", golden_dir);
    char *json = (char *)st_read_bytes(path, &size);
    CHECK(json != NULL, "cannot read %s (set RECUR_GOLDEN_DIR)", path);
    if (!json) return 0;
    char *text = realloc(json, size + 1);
    text[size] = '\0';
    size_t n = 0;
    for (char *p = strstr(text, "\"name\""); p && n < capacity; p = strstr(p + 1, "\"name\"")) {
        char *colon = p + 6;
        while (*colon == ' ') colon++;
        if (*colon != ':') continue;
        char *open = strchr(colon, '"');
        char *close = open ? strchr(open + 1, '"') : NULL;
        if (!close || close - open - 1 >= 64) continue;
        memcpy(names[n], open + 1, (size_t)(close - open - 1));
        names[n][close - open - 1] = '\0';
        n++;
    }
    free(text);
    return n;
}

/* ----------------------------------------------------------------------------------------------- */

static void test_library(void) {
    CHECK(recur_abi_version() == RECUR_ABI_VERSION, "abi version %d", (int)recur_abi_version());
    int major, minor, patch;
    char end;
    CHECK(sscanf(recur_version(), "%d.%d.%d%c", &major, &minor, &patch, &end) == 3, "version '%s' is not M.m.p",
          recur_version());
    CHECK(recur_last_error() != NULL, "recur_last_error is NULL");
    /* scripts/test.sh runs the C tests with RECUR_KERNELS unset: the fastest variant this CPU runs. */
    const char *kernels = recur_kernels();
    CHECK(strcmp(kernels, "avx512") == 0 || strcmp(kernels, "avx2") == 0 || strcmp(kernels, "portable") == 0,
          "recur_kernels() is '%s'", kernels);
    CHECK(recur_kernels() == kernels, "recur_kernels() is not one static string");
    recur_release_kept_buffers();
    CHECK(recur_release_kept_buffers() == 0, "a second recur_release_kept_buffers() found buffers kept");
}

static void test_golden(void) {
    char names[32][64];
    size_t n = golden_cases(names, 32);
    CHECK(n >= 11, "index.json lists %zu cases", n);
    for (size_t c = 0; c < n; c++) {
        st_file file;
        if (load_case(names[c], &file)) continue;
        recur_model *model = load_model(names[c]);
        recur_result *result = NULL;
        if (model) {
            /* The library reads the caller's float input in place (on its worker threads too): it must
               leave it as it was. */
            const st_tensor *input = st_find(&file, "input");
            size_t input_bytes = input ? input->count * element_size(input->dtype) : 0;
            void *before = input ? malloc(input_bytes + 1) : NULL;
            if (input) memcpy(before, input->data, input_bytes);
            recur_status status = run_case(model, &file, AS_STORED, &result);
            CHECK(status == RECUR_OK, "%s: run returned %d", names[c], (int)status);
            if (status == RECUR_OK) check_against_expected(result, &file, names[c]);
            CHECK(input && memcmp(before, input->data, input_bytes) == 0, "%s: the run changed the caller's input", names[c]);
            free(before);
            recur_result *odd = NULL;
            CHECK(result && run_case(model, &file, AT_ODD_ADDRESSES, &odd) == RECUR_OK && identical(result, odd),
                  "%s: inputs at odd addresses give different outputs", names[c]);
            recur_result_free(odd);
        }
        /* The same file loaded from memory, and token ids as int32, give the same bytes. */
        char *path = path_in(names[c], "model.safetensors");
        size_t size = 0;
        unsigned char *bytes = st_read_bytes(path, &size);
        recur_model *from_memory = NULL;
        CHECK(bytes && recur_model_load_memory(bytes, size, &from_memory) == RECUR_OK, "%s: load_memory", names[c]);
        free(bytes);
        free(path);
        recur_result *again = NULL, *narrow = NULL;
        if (from_memory && result) {
            CHECK(run_case(from_memory, &file, AS_STORED, &again) == RECUR_OK && identical(result, again),
                  "%s: model from memory gives different outputs", names[c]);
            CHECK(run_case(from_memory, &file, TOKENS_AS_I32, &narrow) == RECUR_OK && identical(result, narrow),
                  "%s: int32 token ids give different outputs", names[c]);
        }
        recur_result_free(again);
        recur_result_free(narrow);
        recur_result_free(result);
        recur_model_free(from_memory);
        recur_model_free(model);
        st_free(&file);
    }
}

static void test_describe(void) {
    recur_model *model = load_model("bilstm_classifier");
    if (!model) return;
    char *json = NULL;
    EXPECT_STATUS(recur_model_describe(model, &json), RECUR_OK, "");
    if (json) {
        const char *needles[] = {"\"labels\":[\"neg\",\"neu\",\"pos\"]", "\"can_stream\":false", "\"can_generate\":false",
                                 "\"encoder.h0\":{\"dtype\":\"float32\",\"shape\":[4,\"B\",5]}",
                                 "\"output\":{\"dtype\":\"float32\",\"shape\":[\"B\",3]}", "\"parameters\":"};
        for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
            CHECK(strstr(json, needles[i]) != NULL, "describe lacks %s: %s", needles[i], json);
    }
    recur_string_free(json);
    recur_model_free(model);

    model = load_model("char_lm");
    if (!model) return;
    json = NULL;
    EXPECT_STATUS(recur_model_describe(model, &json), RECUR_OK, "");
    CHECK(json && strstr(json, "\"can_generate\":true") && strstr(json, "\"can_stream\":true"), "char_lm describe: %s",
          json ? json : "(null)");
    recur_string_free(json);
    recur_model_free(model);
}

/* ----------------------------------------------------------------------------------------------- */

static void test_errors_loading(void) {
    recur_model *model = NULL;
    EXPECT_STATUS(recur_model_load(NULL, &model), RECUR_ERR_INVALID_ARGUMENT, "path is NULL");
    char *path = path_in("lstm_basic", "model.safetensors");
    EXPECT_STATUS(recur_model_load(path, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
    free(path);
    EXPECT_STATUS(recur_model_load("/nonexistent/model.safetensors", &model), RECUR_ERR_IO, "/nonexistent/model.safetensors");
    EXPECT_STATUS(recur_model_load(golden_dir, &model), RECUR_ERR_IO, "not a regular file");
    EXPECT_STATUS(recur_model_load("/dev/null", &model), RECUR_ERR_IO, "/dev/null");
    /* A FIFO without a writer: refused at once rather than waiting for data. */
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/recur-test-fifo-%ld", (long)getpid());
    if (mkfifo(fifo, 0600) == 0) {
        EXPECT_STATUS(recur_model_load(fifo, &model), RECUR_ERR_IO, "not a regular file");
        unlink(fifo);
    } else {
        CHECK(0, "mkfifo %s failed", fifo);
    }
    EXPECT_STATUS(recur_model_load("\xff\xfe", &model), RECUR_ERR_INVALID_ARGUMENT, "UTF-8");
    EXPECT_STATUS(recur_model_load_memory(NULL, 10, &model), RECUR_ERR_INVALID_ARGUMENT, "data is NULL");
    EXPECT_STATUS(recur_model_load_memory("12345678", 8, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
    EXPECT_STATUS(recur_model_load_memory(NULL, 0, &model), RECUR_ERR_FORMAT, "too short");
    EXPECT_STATUS(recur_model_load_memory("\x02\0\0\0\0\0\0\0{}", 10, &model), RECUR_ERR_FORMAT, "__metadata__");
    EXPECT_STATUS(recur_model_load_memory("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10, &model), RECUR_ERR_FORMAT,
                  "header length");
    EXPECT_STATUS(recur_model_load_memory("\x08\0\0\0\0\0\0\0{{{{{{{{", 16, &model), RECUR_ERR_FORMAT, "header");
    CHECK(model == NULL, "a failed load set *out");

    /* A valid tiny model, then the ways a file can be inconsistent. */
    const float table[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    const char *architecture =
        "{\"format\":1,\"input\":{\"kind\":\"tokens\",\"vocab_size\":5},"
        "\"layers\":[{\"name\":\"e\",\"type\":\"embedding\",\"num_embeddings\":5,\"embedding_dim\":2}]}";
    struct {
        const char *architecture;
        st_spec tensors[2];
        size_t n;
        recur_status want;
        const char *mention;
    } cases[] = {
        {architecture, {{"e.weight", 2, {5, 2}, table}}, 1, RECUR_OK, ""},
        {NULL, {{"e.weight", 2, {5, 2}, table}}, 1, RECUR_ERR_FORMAT, "__metadata__"},
        {architecture, {{"e.weight", 2, {2, 5}, table}}, 1, RECUR_ERR_FORMAT, "e.weight"},
        {architecture, {{"x.weight", 2, {5, 2}, table}}, 1, RECUR_ERR_FORMAT, "missing tensor e.weight"},
        {architecture, {{"e.weight", 2, {5, 2}, table}, {"extra", 1, {1}, table}}, 2, RECUR_ERR_FORMAT, "extra"},
        {"{\"format\":2,\"input\":{\"kind\":\"tokens\",\"vocab_size\":5},\"layers\":[]}", {{"e.weight", 2, {5, 2}, table}}, 1,
         RECUR_ERR_FORMAT, "format 2"},
        {"{\"format\":1,\"input\":{\"kind\":\"tokens\",\"vocab_size\":5},\"layers\":[{\"name\":\"e\",\"type\":\"nope\"}]}",
         {{"e.weight", 2, {5, 2}, table}}, 1, RECUR_ERR_FORMAT, "unknown type 'nope'"},
        {"{\"format\":1,", {{"e.weight", 2, {5, 2}, table}}, 1, RECUR_ERR_FORMAT, "architecture"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t size = 0;
        unsigned char *bytes = st_build(cases[i].architecture, cases[i].tensors, cases[i].n, &size);
        model = NULL;
        EXPECT_STATUS(recur_model_load_memory(bytes, size, &model), cases[i].want, cases[i].mention);
        CHECK((model != NULL) == (cases[i].want == RECUR_OK), "case %zu: *out %p", i, (void *)model);
        recur_model_free(model);
        /* Every truncation of the file is refused, none crashes. */
        if (cases[i].want == RECUR_OK) {
            for (size_t cut = 0; cut < size; cut++) {
                recur_model *truncated = NULL;
                recur_status status = recur_model_load_memory(bytes, cut, &truncated);
                CHECK(status == RECUR_ERR_FORMAT && truncated == NULL, "truncated to %zu bytes: status %d", cut, (int)status);
                recur_model_free(truncated);
            }
        }
        free(bytes);
    }
}

/* Flips bytes of a real model file: each variant loads or fails with a status, never crashes. */
static void test_errors_corrupt_files(void) {
    char *path = path_in("bilstm_classifier", "model.safetensors");
    size_t size = 0;
    unsigned char *bytes = st_read_bytes(path, &size);
    free(path);
    CHECK(bytes != NULL, "cannot read bilstm_classifier");
    if (!bytes) return;
    uint64_t header_end = 8;
    for (int i = 7; i >= 0; i--) header_end += (uint64_t)bytes[i] << (8 * i);
    uint64_t state = 12345;
    int failures = 0, unexplained = 0;
    for (int trial = 0; trial < 300; trial++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, bytes, size);
        for (int flips = 0; flips < 3; flips++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)((state >> 33) % (header_end < size ? header_end : size));
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            copy[at] = (unsigned char)(state >> 56);
        }
        recur_model *model = NULL;
        recur_status status = recur_model_load_memory(copy, size, &model);
        if (status != RECUR_OK) {
            failures++;
            if (status != RECUR_ERR_FORMAT || model != NULL || recur_last_error()[0] == '\0') {
                unexplained++;
                fprintf(stderr, "corrupted file: status %d, message '%s'\n", (int)status, recur_last_error());
            }
        }
        recur_model_free(model);
        free(copy);
    }
    CHECK(failures > 0, "no corrupted header was refused");
    CHECK(unexplained == 0, "%d refusals were not format errors with a message and *out untouched", unexplained);
    free(bytes);
}

static void test_errors_run(void) {
    recur_model *model = load_model("lstm_basic"); /* features, size 5, lstm "rnn" hidden 8 */
    recur_model *tokens = load_model("bilstm_classifier"); /* tokens, vocab 20 */
    if (!model || !tokens) {
        recur_model_free(model);
        recur_model_free(tokens);
        return;
    }
    float x[3 * 7 * 5];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)i / 100.0f;
    const int64_t shape[3] = {3, 7, 5};
    recur_tensor input = tensor("input", RECUR_F32, 3, shape, x);
    recur_result *result = NULL;

    EXPECT_STATUS(recur_model_run(NULL, &input, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "model is NULL");
    EXPECT_STATUS(recur_model_run(model, NULL, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "inputs is NULL");
    EXPECT_STATUS(recur_model_run(model, &input, 1, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
    EXPECT_STATUS(recur_model_run(model, NULL, 0, &result), RECUR_ERR_INVALID_INPUT, "missing tensor 'input'");
    EXPECT_STATUS(recur_model_run(model, &input, SIZE_MAX, &result), RECUR_ERR_INVALID_ARGUMENT, "n_inputs");

    recur_tensor bad = input;
    bad.name = NULL;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "inputs[0].name is NULL");
    bad = input;
    bad.name = "in\xc3";
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "UTF-8");
    bad = input;
    bad.name = "inputs";
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "unknown input 'inputs'");
    const int32_t ranks[] = {-1, 9, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < 4; i++) {
        bad = input;
        bad.rank = ranks[i];
        EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "outside 0 … 8");
    }
    bad = input;
    bad.rank = 2;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "float32 [B, T, 5]");
    bad = input;
    bad.rank = 0;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "input must be");
    bad = input;
    bad.rank = 8;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "input must be");
    bad = input;
    bad.shape[0] = -3;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "negative");
    bad = input;
    bad.shape[0] = INT64_MAX;
    bad.shape[1] = INT64_MAX;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "more elements than fit");
    bad = input;
    bad.shape[0] = (int64_t)1 << 31;
    bad.shape[1] = (int64_t)1 << 31;
    bad.shape[2] = 5; /* 2^62 · 5 elements: the byte count overflows */
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "more elements than fit");
    bad = input;
    bad.shape[0] = (int64_t)1 << 30;
    bad.shape[1] = (int64_t)1 << 20; /* 2^50 · 5 elements fit in int64 but not in memory: refused before reading */
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_OUT_OF_MEMORY, "above the limit");
    bad = input;
    bad.shape[0] = 0;
    bad.data = NULL;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "at least 1");
    const int dtypes[] = {0, 4, -1, 99};
    for (size_t i = 0; i < 4; i++) {
        bad = input;
        bad.dtype = (recur_dtype)dtypes[i];
        EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "is not a recur_dtype");
    }
    bad = input;
    bad.dtype = RECUR_I32;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_INPUT, "found int32");
    bad = input;
    bad.data = NULL;
    EXPECT_STATUS(recur_model_run(model, &bad, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "data is NULL for 105 elements");

    recur_tensor twice[2] = {input, input};
    EXPECT_STATUS(recur_model_run(model, twice, 2, &result), RECUR_ERR_INVALID_ARGUMENT, "'input' is given twice");

    /* Lengths: each in 1 ... T, int [B]. */
    const int64_t length_shape[1] = {3};
    const int64_t wrong_shape[1] = {2};
    const int64_t lengths_bad[][3] = {{0, 7, 7}, {7, 8, 7}, {7, 7, -1}, {7, 7, INT64_MAX}};
    for (size_t i = 0; i < 4; i++) {
        recur_tensor pair[2] = {input, tensor("lengths", RECUR_I64, 1, length_shape, lengths_bad[i])};
        EXPECT_STATUS(recur_model_run(model, pair, 2, &result), RECUR_ERR_INVALID_INPUT, "outside 1 … 7");
    }
    const int64_t lengths_ok[3] = {7, 1, 4};
    recur_tensor pair[2] = {input, tensor("lengths", RECUR_I64, 1, wrong_shape, lengths_ok)};
    EXPECT_STATUS(recur_model_run(model, pair, 2, &result), RECUR_ERR_INVALID_INPUT, "lengths must be");
    pair[1] = tensor("lengths", RECUR_F32, 1, length_shape, x);
    EXPECT_STATUS(recur_model_run(model, pair, 2, &result), RECUR_ERR_INVALID_INPUT, "lengths must be");

    /* Initial states: float32 [1, B, 8]. */
    const int64_t state_shape[3] = {1, 3, 8}, state_wrong[3] = {1, 2, 8};
    pair[1] = tensor("rnn.h0", RECUR_F32, 3, state_wrong, x);
    EXPECT_STATUS(recur_model_run(model, pair, 2, &result), RECUR_ERR_INVALID_INPUT, "rnn.h0 must be float32 [1, 3, 8]");
    pair[1] = tensor("rnn.c0", RECUR_I64, 3, state_shape, x);
    EXPECT_STATUS(recur_model_run(model, pair, 2, &result), RECUR_ERR_INVALID_INPUT, "rnn.c0 must be float32 [1, 3, 8]");
    CHECK(result == NULL, "a failed run set *out");

    /* Token ids outside [0, vocab) in either integer type. */
    const int64_t token_shape[2] = {2, 3};
    const int64_t ids64[2][6] = {{1, 2, 3, 4, 5, 20}, {-1, 0, 0, 0, 0, 0}};
    const int32_t ids32[2][6] = {{1, 2, 3, 4, 5, 20}, {0, 0, 0, 0, INT32_MIN, 0}};
    for (size_t i = 0; i < 2; i++) {
        recur_tensor ids = tensor("input", RECUR_I64, 2, token_shape, ids64[i]);
        EXPECT_STATUS(recur_model_run(tokens, &ids, 1, &result), RECUR_ERR_INVALID_INPUT, "outside the vocabulary [0, 20)");
        ids = tensor("input", RECUR_I32, 2, token_shape, ids32[i]);
        EXPECT_STATUS(recur_model_run(tokens, &ids, 1, &result), RECUR_ERR_INVALID_INPUT, "outside the vocabulary [0, 20)");
    }
    recur_tensor floats_for_tokens = tensor("input", RECUR_F32, 2, token_shape, x);
    EXPECT_STATUS(recur_model_run(tokens, &floats_for_tokens, 1, &result), RECUR_ERR_INVALID_INPUT, "token ids [B, T]");

    /* A good run after all the failures still works, and the last error stays the last failure's. */
    EXPECT_STATUS(recur_model_run(model, &input, 1, &result), RECUR_OK, "");
    CHECK(strstr(recur_last_error(), "token ids") != NULL, "a successful call changed the last error: %s",
          recur_last_error());

    /* Results. */
    recur_tensor out;
    EXPECT_STATUS(recur_result_get(NULL, 0, &out), RECUR_ERR_INVALID_ARGUMENT, "result is NULL");
    EXPECT_STATUS(recur_result_get(result, 0, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
    EXPECT_STATUS(recur_result_get(result, 3, &out), RECUR_ERR_INVALID_ARGUMENT, "index 3 is outside");
    EXPECT_STATUS(recur_result_get(result, SIZE_MAX, &out), RECUR_ERR_INVALID_ARGUMENT, "is outside");
    EXPECT_STATUS(recur_result_find(result, "nope", &out), RECUR_ERR_INVALID_ARGUMENT, "no result tensor named 'nope'");
    EXPECT_STATUS(recur_result_find(result, NULL, &out), RECUR_ERR_INVALID_ARGUMENT, "name is NULL");
    EXPECT_STATUS(recur_result_find(NULL, "output", &out), RECUR_ERR_INVALID_ARGUMENT, "result is NULL");
    EXPECT_STATUS(recur_result_find(result, "output", NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
    const recur_tensor *all = NULL;
    size_t all_count = 0;
    EXPECT_STATUS(recur_result_tensors(NULL, &all, &all_count), RECUR_ERR_INVALID_ARGUMENT, "result is NULL");
    EXPECT_STATUS(recur_result_tensors(result, NULL, &all_count), RECUR_ERR_INVALID_ARGUMENT, "tensors is NULL");
    EXPECT_STATUS(recur_result_tensors(result, &all, NULL), RECUR_ERR_INVALID_ARGUMENT, "count is NULL");
    CHECK(recur_result_count(NULL) == 0, "count of NULL");
    CHECK(recur_result_count(result) == 3, "lstm result count %zu", recur_result_count(result));
    EXPECT_STATUS(recur_result_find(result, "rnn.c_n", &out), RECUR_OK, "");
    CHECK(out.rank == 3 && out.shape[0] == 1 && out.shape[1] == 3 && out.shape[2] == 8 && out.shape[3] == 0,
          "rnn.c_n shape");

    /* Describe and free with NULL. */
    char *json = NULL;
    EXPECT_STATUS(recur_model_describe(NULL, &json), RECUR_ERR_INVALID_ARGUMENT, "model is NULL");
    EXPECT_STATUS(recur_model_describe(model, NULL), RECUR_ERR_INVALID_ARGUMENT, "json_out is NULL");
    recur_model_free(NULL);
    recur_result_free(NULL);
    recur_session_free(NULL);
    recur_string_free(NULL);

    recur_result_free(result);
    recur_model_free(tokens);
    recur_model_free(model);
}

/* A message longer than the last-error buffer is cut cleanly, on a UTF-8 boundary. */
static void test_long_error(void) {
    static char name[10000];
    memset(name, 'a', sizeof name - 1);
    memcpy(name + 4080, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 16); /* é × 8 over the cut */
    recur_model *model = NULL;
    EXPECT_STATUS(recur_model_load(name, &model), RECUR_ERR_IO, "aaaa");
    const char *message = recur_last_error();
    size_t length = strlen(message);
    CHECK(length <= 4095 && length > 4000, "message length %zu", length);
    int lone_lead = length > 0 && ((unsigned char)message[length - 1] & 0xE0) == 0xC0;
    CHECK(!lone_lead, "message ends in the middle of a UTF-8 character");
}

/* A small input that would need a buffer larger than memory: an lstm with hidden 1024 over 2^22
   steps needs a [B·T, 4·H] = 2^34-float (64 GiB) input projection. Refused before allocating on
   any machine with less than 256 GiB of memory (the limit is a quarter of it). */
static void test_errors_huge_run(void) {
    const char *architecture =
        "{\"format\":1,\"input\":{\"kind\":\"features\",\"size\":1},"
        "\"layers\":[{\"name\":\"l\",\"type\":\"lstm\",\"input_size\":1,\"hidden_size\":1024,\"bias\":false}]}";
    float *weights = calloc(4096 * 1024, sizeof(float));
    st_spec specs[2] = {{"l.weight_ih_l0", 2, {4096, 1}, weights}, {"l.weight_hh_l0", 2, {4096, 1024}, weights}};
    size_t size = 0;
    unsigned char *bytes = st_build(architecture, specs, 2, &size);
    free(weights);
    recur_model *model = NULL;
    EXPECT_STATUS(recur_model_load_memory(bytes, size, &model), RECUR_OK, "");
    free(bytes);
    const int64_t steps = (int64_t)1 << 22;
    float *x = calloc((size_t)steps, sizeof(float));
    const int64_t shape[3] = {1, steps, 1};
    recur_tensor input = tensor("input", RECUR_F32, 3, shape, x);
    recur_result *result = NULL;
    EXPECT_STATUS(recur_model_run(model, &input, 1, &result), RECUR_ERR_OUT_OF_MEMORY, "would need buffers");
    free(x);
    recur_model_free(model);
}

/* ----------------------------------------------------------------------------------------------- */

/* output[0, T-1, :] argmax of a whole-sequence run over `tokens` (lowest id on ties). */
static int32_t next_greedy(const recur_model *model, const int32_t *tokens, size_t n) {
    int64_t shape[2] = {1, (int64_t)n};
    recur_tensor input = tensor("input", RECUR_I32, 2, shape, tokens);
    recur_result *result = NULL;
    if (recur_model_run(model, &input, 1, &result) != RECUR_OK) return -1;
    recur_tensor out;
    int32_t best = -1;
    if (recur_result_find(result, "output", &out) == RECUR_OK && out.rank == 3) {
        const float *last = (const float *)out.data + (n - 1) * (size_t)out.shape[2];
        best = 0;
        for (int32_t v = 1; v < out.shape[2]; v++)
            if (last[v] > last[best]) best = v;
    }
    recur_result_free(result);
    return best;
}

static void test_generation(void) {
    recur_model *model = load_model("char_lm"); /* vocab 12 */
    recur_model *classifier = load_model("bilstm_classifier");
    if (!model || !classifier) {
        recur_model_free(model);
        recur_model_free(classifier);
        return;
    }
    const int32_t prompt[3] = {1, 5, 7};
    recur_sampling greedy = {0.0f, 0, 1.0f, 0};
    int32_t out[24];
    size_t n = 0;

    /* Greedy generation is the arg-max of whole-sequence runs, computed here step by step. */
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, 16, out, &n), RECUR_OK, "");
    CHECK(n == 16, "greedy generated %zu tokens", n);
    int32_t sequence[3 + 16];
    memcpy(sequence, prompt, sizeof prompt);
    for (size_t i = 0; i < 16; i++) {
        sequence[3 + i] = next_greedy(model, sequence, 3 + i);
        CHECK(sequence[3 + i] == out[i], "greedy token %zu: %d, arg-max of the run %d", i, out[i], sequence[3 + i]);
    }
    int32_t again[24];
    size_t n_again = 0;
    EXPECT_STATUS(recur_generate(model, prompt, 3, NULL, NULL, 0, 16, again, &n_again), RECUR_OK, "");
    CHECK(n_again == 16 && memcmp(out, again, sizeof(int32_t) * 16) == 0, "NULL sampling is not greedy");

    /* Stop tokens end generation before they would be written. */
    int32_t stop = out[4];
    size_t first_stop = 0;
    while (out[first_stop] != stop) first_stop++;
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, &stop, 1, 16, again, &n_again), RECUR_OK, "");
    CHECK(n_again == first_stop && memcmp(out, again, sizeof(int32_t) * n_again) == 0, "stop token: %zu tokens, expected %zu",
          n_again, first_stop);

    /* Never more than max_tokens written: the rest of the buffer keeps its canary. */
    for (size_t i = 0; i < 24; i++) again[i] = -7;
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, 5, again, &n_again), RECUR_OK, "");
    int canary = 1;
    for (size_t i = 5; i < 24; i++) canary = canary && again[i] == -7;
    CHECK(n_again == 5 && canary && memcmp(out, again, sizeof(int32_t) * 5) == 0, "max_tokens 5 wrote past 5 tokens");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, 0, NULL, &n_again), RECUR_OK, "");
    CHECK(n_again == 0, "max_tokens 0 gave %zu tokens", n_again);

    /* Sampling: the same seed gives the same tokens, all in the vocabulary; seeds differ. */
    recur_sampling sampling = {1.0f, 0, 1.0f, 42};
    int32_t first[20], second[20];
    size_t n_first = 0, n_second = 0;
    EXPECT_STATUS(recur_generate(model, prompt, 3, &sampling, NULL, 0, 20, first, &n_first), RECUR_OK, "");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &sampling, NULL, 0, 20, second, &n_second), RECUR_OK, "");
    CHECK(n_first == 20 && n_second == 20 && memcmp(first, second, sizeof first) == 0, "same seed, different tokens");
    int in_vocabulary = 1;
    for (size_t i = 0; i < n_first; i++) in_vocabulary = in_vocabulary && first[i] >= 0 && first[i] < 12;
    CHECK(in_vocabulary, "sampled token outside the vocabulary");
    int differs = 0;
    for (uint64_t seed = 1; seed <= 4 && !differs; seed++) {
        recur_sampling other = sampling;
        other.seed = seed;
        EXPECT_STATUS(recur_generate(model, prompt, 3, &other, NULL, 0, 20, second, &n_second), RECUR_OK, "");
        differs = memcmp(first, second, sizeof first) != 0;
    }
    CHECK(differs, "four other seeds all gave seed 42's tokens");
    recur_sampling narrow = {0.7f, 3, 0.9f, 7};
    EXPECT_STATUS(recur_generate(model, prompt, 3, &narrow, NULL, 0, 20, first, &n_first), RECUR_OK, "");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &narrow, NULL, 0, 20, second, &n_second), RECUR_OK, "");
    CHECK(memcmp(first, second, sizeof first) == 0, "top-k/top-p sampling is not deterministic");
    /* top_k = 1 keeps only the arg-max: greedy at any temperature. */
    recur_sampling top1 = {5.0f, 1, 1.0f, 99};
    EXPECT_STATUS(recur_generate(model, prompt, 3, &top1, NULL, 0, 16, first, &n_first), RECUR_OK, "");
    CHECK(memcmp(first, out, sizeof(int32_t) * 16) == 0, "top_k 1 differs from greedy");

    /* Errors. */
    EXPECT_STATUS(recur_generate(NULL, prompt, 3, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_ARGUMENT, "model is NULL");
    EXPECT_STATUS(recur_generate(model, NULL, 3, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_ARGUMENT, "prompt is NULL");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 2, 4, out, &n), RECUR_ERR_INVALID_ARGUMENT, "stop is NULL");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, 4, NULL, &n), RECUR_ERR_INVALID_ARGUMENT,
                  "out_tokens is NULL");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, 4, out, NULL), RECUR_ERR_INVALID_ARGUMENT, "out_len is NULL");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, NULL, 0, SIZE_MAX, out, &n), RECUR_ERR_INVALID_ARGUMENT,
                  "max_tokens");
    EXPECT_STATUS(recur_generate(model, prompt, SIZE_MAX, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_ARGUMENT,
                  "prompt_len");
    EXPECT_STATUS(recur_generate(model, prompt, 0, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_INPUT, "prompt is empty");
    /* Counts beyond any buffer are refused before the library reads them. */
    EXPECT_STATUS(recur_generate(model, prompt, (size_t)1 << 40, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_OUT_OF_MEMORY,
                  "prompt_len");
    EXPECT_STATUS(recur_generate(model, prompt, 3, &greedy, prompt, (size_t)1 << 40, 4, out, &n), RECUR_ERR_OUT_OF_MEMORY,
                  "n_stop");
    const int32_t outside[2] = {3, 12};
    EXPECT_STATUS(recur_generate(model, outside, 2, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_INPUT,
                  "prompt[1] is token id 12");
    const int32_t negative[1] = {-1};
    EXPECT_STATUS(recur_generate(model, negative, 1, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_INVALID_INPUT, "prompt[0]");
    recur_sampling bad[] = {{-1.0f, 0, 1.0f, 0}, {NAN, 0, 1.0f, 0}, {INFINITY, 0, 1.0f, 0},
                            {1.0f, -1, 1.0f, 0}, {1.0f, 0, 0.0f, 0}, {1.0f, 0, 1.5f, 0}, {1.0f, 0, NAN, 0}};
    const char *mentions[] = {"temperature", "temperature", "temperature", "top_k", "top_p", "top_p", "top_p"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        EXPECT_STATUS(recur_generate(model, prompt, 3, &bad[i], NULL, 0, 4, out, &n), RECUR_ERR_INVALID_ARGUMENT, mentions[i]);
    EXPECT_STATUS(recur_generate(classifier, prompt, 3, &greedy, NULL, 0, 4, out, &n), RECUR_ERR_UNSUPPORTED,
                  "cannot generate");
    recur_model_free(classifier);
    recur_model_free(model);
}

/* ----------------------------------------------------------------------------------------------- */

/* Steps `tokens` (I64 [1, T]) or `features` (F32 [B, T, F]) in chunks; compares per-step outputs
   with one whole run and the last chunk's final states with the run's. */
static void check_chunked(recur_model *model, const st_tensor *input, const int64_t *chunks, size_t n_chunks, const char *what) {
    recur_tensor whole_input = st_view(input, "input");
    recur_result *whole = NULL;
    CHECK(recur_model_run(model, &whole_input, 1, &whole) == RECUR_OK, "%s: whole run", what);
    if (!whole) return;
    recur_tensor whole_output;
    recur_result_find(whole, "output", &whole_output);
    recur_session *session = NULL;
    EXPECT_STATUS(recur_session_open(model, &session), RECUR_OK, "");
    if (!session) {
        recur_result_free(whole);
        return;
    }
    const int64_t batch = input->shape[0], steps = input->shape[1];
    const int64_t width = input->rank == 3 ? input->shape[2] : 1;
    const size_t element = element_size(input->dtype);
    const int64_t out_width = whole_output.shape[2];
    for (int pass = 0; pass < 2; pass++) { /* the second pass checks that reset forgets the state */
        int64_t start = 0;
        recur_result *chunk_result = NULL;
        for (size_t c = 0; c < n_chunks; c++) {
            int64_t length = chunks[c];
            unsigned char *chunk = malloc((size_t)(batch * length * width) * element);
            for (int64_t b = 0; b < batch; b++)
                memcpy(chunk + (size_t)(b * length * width) * element,
                       (const unsigned char *)input->data + (size_t)((b * steps + start) * width) * element,
                       (size_t)(length * width) * element);
            recur_tensor chunk_input = whole_input;
            chunk_input.shape[1] = length;
            chunk_input.data = chunk;
            recur_result_free(chunk_result);
            chunk_result = NULL;
            recur_status status = recur_session_step(session, &chunk_input, 1, &chunk_result);
            CHECK(status == RECUR_OK, "%s: step %zu returned %d", what, c, (int)status);
            free(chunk);
            if (status != RECUR_OK) break;
            recur_tensor out;
            recur_result_find(chunk_result, "output", &out);
            int same = out.rank == 3 && out.shape[1] == length;
            for (int64_t b = 0; same && b < batch; b++) {
                double worst = 0;
                same = close_enough((const float *)out.data + b * length * out_width,
                                    (const float *)whole_output.data + (b * steps + start) * out_width,
                                    (size_t)(length * out_width), &worst);
            }
            CHECK(same, "%s: chunk %zu differs from the whole run", what, c);
            start += length;
        }
        /* Final states of the last chunk equal the whole run's. */
        for (size_t i = 1; chunk_result && i < recur_result_count(whole); i++) {
            recur_tensor expected, got;
            recur_result_get(whole, i, &expected);
            double worst = 0;
            CHECK(recur_result_find(chunk_result, expected.name, &got) == RECUR_OK &&
                      close_enough(got.data, expected.data, element_count(&expected), &worst),
                  "%s: final state %s differs (%.2f)", what, expected.name, worst);
        }
        recur_result_free(chunk_result);
        EXPECT_STATUS(recur_session_reset(session), RECUR_OK, "");
    }
    recur_session_free(session);
    recur_result_free(whole);
}

static void test_sessions(void) {
    st_file lm_case, lstm_case;
    if (load_case("char_lm", &lm_case)) return;
    if (load_case("lstm_basic", &lstm_case)) {
        st_free(&lm_case);
        return;
    }
    recur_model *lm = load_model("char_lm");
    recur_model *lstm = load_model("lstm_basic");
    recur_model *bidirectional = load_model("bigru_tagger");
    if (lm && lstm && bidirectional) {
        const int64_t lm_chunks[] = {3, 1, 4, 2}, lstm_chunks[] = {2, 5}, single_steps[] = {1, 1, 1, 1, 1, 1, 1};
        check_chunked(lm, st_find(&lm_case, "input"), lm_chunks, 4, "char_lm 3+1+4+2");
        check_chunked(lstm, st_find(&lstm_case, "input"), lstm_chunks, 2, "lstm_basic 2+5");
        check_chunked(lstm, st_find(&lstm_case, "input"), single_steps, 7, "lstm_basic one step at a time");

        recur_session *session = NULL;
        EXPECT_STATUS(recur_session_open(bidirectional, &session), RECUR_ERR_UNSUPPORTED, "bidirectional");
        CHECK(session == NULL, "a failed open set *out");
        EXPECT_STATUS(recur_session_open(NULL, &session), RECUR_ERR_INVALID_ARGUMENT, "model is NULL");
        EXPECT_STATUS(recur_session_open(lstm, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
        EXPECT_STATUS(recur_session_reset(NULL), RECUR_ERR_INVALID_ARGUMENT, "session is NULL");

        EXPECT_STATUS(recur_session_open(lstm, &session), RECUR_OK, "");
        /* The session keeps its model alive after recur_model_free. */
        recur_model_free(lstm);
        lstm = NULL;
        const st_tensor *x = st_find(&lstm_case, "input");
        recur_tensor input = st_view(x, "input");
        recur_result *result = NULL;
        EXPECT_STATUS(recur_session_step(NULL, &input, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "session is NULL");
        EXPECT_STATUS(recur_session_step(session, &input, 1, NULL), RECUR_ERR_INVALID_ARGUMENT, "out is NULL");
        EXPECT_STATUS(recur_session_step(session, NULL, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "inputs is NULL");
        EXPECT_STATUS(recur_session_step(session, &input, 1, &result), RECUR_OK, "");
        recur_result_free(result);
        result = NULL;
        recur_tensor smaller = input;
        smaller.shape[0] = 2;
        EXPECT_STATUS(recur_session_step(session, &smaller, 1, &result), RECUR_ERR_INVALID_INPUT, "holds state for batch 3");
        const int64_t lengths[3] = {7, 7, 7}, length_shape[1] = {3};
        recur_tensor with_lengths[2] = {input, tensor("lengths", RECUR_I64, 1, length_shape, lengths)};
        EXPECT_STATUS(recur_session_step(session, with_lengths, 2, &result), RECUR_ERR_INVALID_INPUT, "only 'input'");
        recur_tensor scalar = input;
        scalar.rank = 0;
        EXPECT_STATUS(recur_session_step(session, &scalar, 1, &result), RECUR_ERR_INVALID_INPUT, "rank 0");
        recur_tensor nine = input;
        nine.rank = 9;
        EXPECT_STATUS(recur_session_step(session, &nine, 1, &result), RECUR_ERR_INVALID_ARGUMENT, "rank 9");
        EXPECT_STATUS(recur_session_reset(session), RECUR_OK, "");
        EXPECT_STATUS(recur_session_step(session, &smaller, 1, &result), RECUR_OK, "");
        recur_result_free(result);
        recur_session_free(session);
    }
    recur_model_free(bidirectional);
    recur_model_free(lstm);
    recur_model_free(lm);
    st_free(&lm_case);
    st_free(&lstm_case);
}

/* ----------------------------------------------------------------------------------------------- */

static void test_encode(void) {
    const float table[10] = {0};
    const char *architecture =
        "{\"format\":1,\"input\":{\"kind\":\"tokens\",\"vocab_size\":5},"
        "\"layers\":[{\"name\":\"e\",\"type\":\"embedding\",\"num_embeddings\":5,\"embedding_dim\":2}],"
        "\"vocab\":[\"<pad>\",\"<unk>\",\"a\",\"b\",\"\xc3\xa9\"],\"tokenizer\":{\"kind\":\"char\",\"unk_id\":1}}";
    st_spec weight = {"e.weight", 2, {5, 2}, table};
    size_t size = 0;
    unsigned char *bytes = st_build(architecture, &weight, 1, &size);
    recur_model *model = NULL;
    EXPECT_STATUS(recur_model_load_memory(bytes, size, &model), RECUR_OK, "");
    free(bytes); /* the library copied the image */
    recur_model *no_tokenizer = load_model("char_lm");
    if (!model || !no_tokenizer) {
        recur_model_free(model);
        recur_model_free(no_tokenizer);
        return;
    }
    int64_t ids[8] = {-9, -9, -9, -9, -9, -9, -9, -9};
    size_t n = 0;
    EXPECT_STATUS(recur_model_encode(model, "ab\xc3\xa9z", ids, 8, &n), RECUR_OK, "");
    CHECK(n == 4 && ids[0] == 2 && ids[1] == 3 && ids[2] == 4 && ids[3] == 1 && ids[4] == -9, "encode gave %zu ids", n);
    /* Too small a buffer: the full count, and nothing written past the capacity. */
    int64_t small[3] = {-9, -9, -9};
    EXPECT_STATUS(recur_model_encode(model, "abab", small, 2, &n), RECUR_OK, "");
    CHECK(n == 4 && small[0] == 2 && small[1] == 3 && small[2] == -9, "capacity 2: n %zu", n);
    EXPECT_STATUS(recur_model_encode(model, "abab", NULL, 0, &n), RECUR_OK, "");
    CHECK(n == 4, "sizing call gave %zu", n);
    EXPECT_STATUS(recur_model_encode(model, "", ids, 8, &n), RECUR_OK, "");
    CHECK(n == 0, "empty text gave %zu ids", n);

    EXPECT_STATUS(recur_model_encode(NULL, "a", ids, 8, &n), RECUR_ERR_INVALID_ARGUMENT, "model is NULL");
    EXPECT_STATUS(recur_model_encode(model, NULL, ids, 8, &n), RECUR_ERR_INVALID_ARGUMENT, "text is NULL");
    EXPECT_STATUS(recur_model_encode(model, "a", NULL, 8, &n), RECUR_ERR_INVALID_ARGUMENT, "ids is NULL");
    EXPECT_STATUS(recur_model_encode(model, "a", ids, 8, NULL), RECUR_ERR_INVALID_ARGUMENT, "out_len is NULL");
    EXPECT_STATUS(recur_model_encode(model, "a\xff", ids, 8, &n), RECUR_ERR_INVALID_ARGUMENT, "UTF-8");
    EXPECT_STATUS(recur_model_encode(no_tokenizer, "a", ids, 8, &n), RECUR_ERR_UNSUPPORTED, "tokenizer");
    recur_model_free(no_tokenizer);
    recur_model_free(model);
}

/* ----------------------------------------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 12 };

/* What every thread computes, and the single-thread answers it must match bit for bit. */
typedef struct shared_work {
    recur_model *classifier, *lm;
    const st_file *classifier_case, *lm_case;
    recur_result *classifier_expected, *lm_expected;
    int32_t generated[12];
    recur_result *last_chunk_expected; /* char_lm streamed as 4 + 6 */
} shared_work;

static recur_result *stream_lm(recur_model *lm, const st_tensor *input) {
    recur_session *session = NULL;
    if (recur_session_open(lm, &session) != RECUR_OK) return NULL;
    recur_result *result = NULL;
    const int64_t *ids = input->data;
    int64_t split[2] = {4, 6}, start = 0;
    for (int c = 0; c < 2; c++) {
        int64_t shape[2] = {1, split[c]};
        recur_tensor chunk = tensor("input", RECUR_I64, 2, shape, ids + start);
        recur_result_free(result);
        result = NULL;
        if (recur_session_step(session, &chunk, 1, &result) != RECUR_OK) break;
        start += split[c];
    }
    recur_session_free(session);
    return result;
}

static int generate_lm(recur_model *lm, int32_t *out) {
    const int32_t prompt[2] = {3, 4};
    recur_sampling sampling = {0.9f, 6, 0.95f, 2024};
    size_t n = 0;
    return recur_generate(lm, prompt, 2, &sampling, NULL, 0, 12, out, &n) == RECUR_OK && n == 12;
}

static void *worker(void *argument) {
    const shared_work *work = argument;
    size_t mismatches = 0;
    for (int round = 0; round < ROUNDS; round++) {
        recur_result *a = NULL, *b = NULL, *c = NULL;
        if (run_case(work->classifier, work->classifier_case, round % 2 ? TOKENS_AS_I32 : AS_STORED, &a) != RECUR_OK ||
            !identical(a, work->classifier_expected))
            mismatches++;
        if (run_case(work->lm, work->lm_case, AS_STORED, &b) != RECUR_OK || !identical(b, work->lm_expected)) mismatches++;
        c = stream_lm(work->lm, st_find(work->lm_case, "input"));
        if (!c || !identical(c, work->last_chunk_expected)) mismatches++;
        int32_t generated[12];
        if (!generate_lm(work->lm, generated) || memcmp(generated, work->generated, sizeof generated) != 0) mismatches++;
        /* A failing call on this thread leaves its own message, whatever the other threads do. */
        recur_model *none = NULL;
        if (recur_model_load("/nonexistent/thread", &none) != RECUR_ERR_IO ||
            strstr(recur_last_error(), "/nonexistent/thread") == NULL)
            mismatches++;
        recur_result_free(a);
        recur_result_free(b);
        recur_result_free(c);
    }
    return (void *)(uintptr_t)mismatches;
}

static void test_threads(void) {
    st_file classifier_case, lm_case;
    if (load_case("bilstm_classifier", &classifier_case)) return;
    if (load_case("char_lm", &lm_case)) {
        st_free(&classifier_case);
        return;
    }
    shared_work work;
    memset(&work, 0, sizeof work);
    work.classifier = load_model("bilstm_classifier");
    work.lm = load_model("char_lm");
    work.classifier_case = &classifier_case;
    work.lm_case = &lm_case;
    int ready = work.classifier && work.lm && run_case(work.classifier, &classifier_case, AS_STORED, &work.classifier_expected) == RECUR_OK &&
                run_case(work.lm, &lm_case, AS_STORED, &work.lm_expected) == RECUR_OK &&
                (work.last_chunk_expected = stream_lm(work.lm, st_find(&lm_case, "input"))) != NULL &&
                generate_lm(work.lm, work.generated);
    CHECK(ready, "single-thread references");
    if (ready) {
        pthread_t threads[THREADS];
        int started = 0;
        for (int i = 0; i < THREADS; i++) started += pthread_create(&threads[i], NULL, worker, &work) == 0;
        CHECK(started == THREADS, "started %d threads", started);
        size_t mismatches = 0;
        for (int i = 0; i < started; i++) {
            void *value = NULL;
            pthread_join(threads[i], &value);
            mismatches += (size_t)(uintptr_t)value;
        }
        CHECK(mismatches == 0, "%zu of %d threaded results differ from the single-thread results", mismatches,
              THREADS * ROUNDS * 5);
    }
    recur_result_free(work.classifier_expected);
    recur_result_free(work.lm_expected);
    recur_result_free(work.last_chunk_expected);
    recur_model_free(work.classifier);
    recur_model_free(work.lm);
    st_free(&classifier_case);
    st_free(&lm_case);
}

/* ----------------------------------------------------------------------------------------------- */
/* Plugins: the example plugin (bindings/c/plugins) against the numpy reference's fixtures
   (Tests/RecurTests/Fixtures/plugins), sessions and threads through its types, and every refusal
   with the test plugins (Tests/plugins). */

static const char *env_or(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value && *value ? value : fallback;
}

static char *joined(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, file);
    return path;
}

/* The fixture `name`'s model (NULL on failure) and case file. */
static recur_model *load_plugin_fixture(const char *name, st_file *file) {
    const char *dir = env_or("RECUR_PLUGIN_FIXTURES", "Tests/RecurTests/Fixtures/plugins");
    char model_file[96], case_file[96];
    snprintf(model_file, sizeof model_file, "%s.model.safetensors", name);
    snprintf(case_file, sizeof case_file, "%s.case.safetensors", name);
    char *model_path = joined(dir, model_file), *case_path = joined(dir, case_file);
    recur_model *model = NULL;
    EXPECT_STATUS(recur_model_load(model_path, &model), RECUR_OK, "");
    int read = st_load(case_path, file);
    CHECK(read == 0, "cannot read %s", case_path);
    free(model_path);
    free(case_path);
    if (read != 0) {
        recur_model_free(model);
        return NULL;
    }
    return model;
}

typedef struct plugin_work {
    const recur_model *model;
    const st_file *file;
    const recur_result *expected;
} plugin_work;

static void *plugin_worker(void *argument) {
    const plugin_work *work = argument;
    size_t mismatches = 0;
    for (int round = 0; round < ROUNDS; round++) {
        recur_result *result = NULL;
        if (run_case(work->model, work->file, AS_STORED, &result) != RECUR_OK || !identical(result, work->expected)) mismatches++;
        recur_result_free(result);
    }
    return (void *)(uintptr_t)mismatches;
}

static void test_plugins(void) {
    const char *test_plugins = env_or("RECUR_TEST_PLUGINS", ".build/test-plugins");
    const char *example = env_or("RECUR_EXAMPLE_PLUGIN", "bindings/c/plugins/build/librecur_example_layers.so");
    st_file file;
    recur_model *model = NULL;

    /* Before loading, the plugin's types are unknown. */
    const char *fixtures = env_or("RECUR_PLUGIN_FIXTURES", "Tests/RecurTests/Fixtures/plugins");
    char *mgu_path = joined(fixtures, "mgu_norm.model.safetensors");
    EXPECT_STATUS(recur_model_load(mgu_path, &model), RECUR_ERR_FORMAT, "unknown type 'mgu'");
    free(mgu_path);

    /* Refusals change nothing: "fresh_type" of the duplicate and malformed plugins stays unknown. */
    static const struct {
        const char *file;
        recur_status status;
        const char *mention;
    } refusals[] = {
        {"wrong_abi.so", RECUR_ERR_UNSUPPORTED, "built for plugin ABI version 2"},
        {"no_entry.so", RECUR_ERR_UNSUPPORTED, "exports no recur_plugin_init"},
        {"duplicate.so", RECUR_ERR_INVALID_ARGUMENT, "layer type 'lstm' is already registered"},
        {"failing.so", RECUR_ERR_UNSUPPORTED, "no licence for this machine"},
        {"malformed.so", RECUR_ERR_FORMAT, "'malformed_type' must have exactly one of forward"},
        {"not_a_library.so", RECUR_ERR_IO, "cannot be loaded"},
        {"missing.so", RECUR_ERR_IO, "missing.so"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        char *path = joined(test_plugins, refusals[i].file);
        EXPECT_STATUS(recur_plugin_load(path), refusals[i].status, refusals[i].mention);
        free(path);
    }
    EXPECT_STATUS(recur_plugin_load(NULL), RECUR_ERR_INVALID_ARGUMENT, "path is NULL");
    size_t size = 0;
    unsigned char *fresh = st_build("{\"format\": 1, \"input\": {\"kind\": \"features\", \"size\": 1}, "
                                    "\"layers\": [{\"name\": \"f\", \"type\": \"fresh_type\"}]}",
                                    NULL, 0, &size);
    EXPECT_STATUS(recur_model_load_memory(fresh, size, &model), RECUR_ERR_FORMAT, "unknown type 'fresh_type'");
    free(fresh);

    /* The example plugin; a second load of it is a duplicate. */
    EXPECT_STATUS(recur_plugin_load(example), RECUR_OK, "");
    EXPECT_STATUS(recur_plugin_load(example), RECUR_ERR_INVALID_ARGUMENT, "layer type 'mgu' is already registered");

    /* Numerics against numpy, for a per-step and a bidirectional recurrent stack. */
    const char *cases[] = {"mgu_norm", "peephole_bidirectional"};
    for (size_t i = 0; i < 2; i++) {
        model = load_plugin_fixture(cases[i], &file);
        if (!model) continue;
        recur_result *result = NULL;
        EXPECT_STATUS(run_case(model, &file, AS_STORED, &result), RECUR_OK, "");
        if (result) check_against_expected(result, &file, cases[i]);
        recur_result_free(result);
        recur_session *session = NULL;
        if (i == 1) EXPECT_STATUS(recur_session_open(model, &session), RECUR_ERR_UNSUPPORTED, "bidirectional");
        recur_model_free(model);
        st_free(&file);
    }

    /* Streaming through the recurrent plugin type, and eight threads sharing its layers. */
    model = load_plugin_fixture("mgu_norm", &file);
    if (model) {
        const int64_t chunks[] = {3, 1, 3};
        check_chunked(model, st_find(&file, "input"), chunks, 3, "mgu_norm 3+1+3");
        plugin_work work = {model, &file, NULL};
        recur_result *expected = NULL;
        EXPECT_STATUS(run_case(model, &file, AS_STORED, &expected), RECUR_OK, "");
        work.expected = expected;
        pthread_t threads[THREADS];
        int started = 0;
        for (int t = 0; expected && t < THREADS; t++) started += pthread_create(&threads[t], NULL, plugin_worker, &work) == 0;
        size_t mismatches = 0;
        for (int t = 0; t < started; t++) {
            void *value = NULL;
            pthread_join(threads[t], &value);
            mismatches += (size_t)(uintptr_t)value;
        }
        CHECK(started == THREADS && mismatches == 0, "%zu threaded plugin runs differ (%d threads)", mismatches, started);
        recur_result_free(expected);
        recur_model_free(model);
        st_free(&file);
    }

    /* A plugin's failure at run time is the call's error; the model keeps working. */
    char *picky = joined(test_plugins, "picky.so");
    EXPECT_STATUS(recur_plugin_load(picky), RECUR_OK, "");
    free(picky);
    unsigned char *bytes = st_build("{\"format\": 1, \"input\": {\"kind\": \"features\", \"size\": 1}, "
                                    "\"layers\": [{\"name\": \"p\", \"type\": \"picky\"}]}",
                                    NULL, 0, &size);
    model = NULL;
    EXPECT_STATUS(recur_model_load_memory(bytes, size, &model), RECUR_OK, "");
    free(bytes);
    if (model) {
        const float values[2] = {1, 500};
        const int64_t shape[3] = {2, 1, 1};
        recur_tensor input = tensor("input", RECUR_F32, 3, shape, values);
        recur_result *result = NULL;
        EXPECT_STATUS(recur_model_run(model, &input, 1, &result), RECUR_ERR_INVALID_INPUT,
                      "plugin 'test-plugin': layer 'p' (picky): input 500 is above 100");
        CHECK(result == NULL, "a failed run set *out");
        input.shape[0] = 1;
        EXPECT_STATUS(recur_model_run(model, &input, 1, &result), RECUR_OK, "");
        recur_result_free(result);
        recur_model_free(model);
    }
}

int main(void) {
    golden_dir = getenv("RECUR_GOLDEN_DIR");
    if (!golden_dir || !*golden_dir) golden_dir = "../shared/golden";
    test_library();
    test_golden();
    test_describe();
    test_errors_loading();
    test_errors_corrupt_files();
    test_errors_run();
    test_long_error();
    test_errors_huge_run();
    test_sessions();
    test_generation();
    test_encode();
    test_threads();
    test_plugins();
    printf("c-api: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
