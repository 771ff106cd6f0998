/* A small safetensors reader and writer for the C tests: enough for the golden case files
   (F32/I32/I64 tensors, a JSON header without escapes in names) and for building model files in
   memory. Independent of librecur, so the tests do not check the library against itself. */
#ifndef RECUR_TEST_SAFETENSORS_H
#define RECUR_TEST_SAFETENSORS_H

#include "recur.h"

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_TENSORS 32

typedef struct st_tensor {
    char name[96];
    recur_dtype dtype;
    int32_t rank;
    int64_t shape[8];
    size_t count; /* elements */
    void *data;   /* malloc'd, aligned */
} st_tensor;

typedef struct st_file {
    st_tensor tensors[ST_MAX_TENSORS];
    size_t n;
} st_file;

/* Reads a whole file into malloc'd memory; NULL on failure. */
unsigned char *st_read_bytes(const char *path, size_t *size);

/* Parses a safetensors file with F32, I32 and I64 tensors. Returns 0 on success. */
int st_load(const char *path, st_file *out);
void st_free(st_file *file);
const st_tensor *st_find(const st_file *file, const char *name);

/* A recur_tensor view of a test tensor under `name`. */
recur_tensor st_view(const st_tensor *t, const char *name);

/* Builds a safetensors image: `metadata_recur` (the architecture JSON, escaped here; NULL for
   none) and `n` F32 tensors with the given names, shapes and values. Returns malloc'd bytes. */
typedef struct st_spec {
    const char *name;
    int32_t rank;
    int64_t shape[4];
    const float *values;
} st_spec;
unsigned char *st_build(const char *metadata_recur, const st_spec *tensors, size_t n, size_t *size);

#endif
