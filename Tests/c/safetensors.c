#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *st_read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *bytes = NULL;
    size_t length = 0, capacity = 0;
    for (;;) {
        if (length == capacity) {
            capacity = capacity ? capacity * 2 : 65536;
            unsigned char *grown = realloc(bytes, capacity);
            if (!grown) { free(bytes); fclose(f); return NULL; }
            bytes = grown;
        }
        size_t n = fread(bytes + length, 1, capacity - length, f);
        length += n;
        if (n == 0) break;
    }
    fclose(f);
    *size = length;
    return bytes;
}

/* A cursor over JSON text. */
typedef struct scan {
    const char *p, *end;
} scan;

static void skip_space(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int expect(scan *s, char c) {
    skip_space(s);
    if (s->p >= s->end || *s->p != c) return -1;
    s->p++;
    return 0;
}

/* A string without escapes other than \" and \\ (enough for tensor names and dtypes). */
static int read_string(scan *s, char *out, size_t capacity) {
    if (expect(s, '"')) return -1;
    size_t n = 0;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\') s->p++;
        if (s->p >= s->end) return -1;
        if (out && n + 1 < capacity) out[n++] = *s->p;
        s->p++;
    }
    if (out) out[n] = '\0';
    return expect(s, '"');
}

static int skip_value(scan *s) {
    skip_space(s);
    if (s->p >= s->end) return -1;
    if (*s->p == '"') return read_string(s, NULL, 0);
    if (*s->p == '{' || *s->p == '[') {
        char close = *s->p == '{' ? '}' : ']';
        int object = *s->p == '{';
        s->p++;
        skip_space(s);
        if (s->p < s->end && *s->p == close) { s->p++; return 0; }
        for (;;) {
            if (object && (read_string(s, NULL, 0) || expect(s, ':'))) return -1;
            if (skip_value(s)) return -1;
            skip_space(s);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            return expect(s, close);
        }
    }
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']') s->p++;
    return 0;
}

static int read_integers(scan *s, int64_t *values, int capacity, int *count) {
    if (expect(s, '[')) return -1;
    *count = 0;
    skip_space(s);
    if (s->p < s->end && *s->p == ']') { s->p++; return 0; }
    for (;;) {
        skip_space(s);
        char *stop;
        long long v = strtoll(s->p, &stop, 10);
        if (stop == s->p || *count >= capacity) return -1;
        values[(*count)++] = v;
        s->p = stop;
        skip_space(s);
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        return expect(s, ']');
    }
}

int st_load(const char *path, st_file *out) {
    memset(out, 0, sizeof *out);
    size_t size = 0;
    unsigned char *bytes = st_read_bytes(path, &size);
    if (!bytes || size < 8) { free(bytes); return -1; }
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | bytes[i];
    if (header_length > size - 8) { free(bytes); return -1; }
    const unsigned char *data = bytes + 8 + header_length;
    size_t data_length = size - 8 - header_length;
    scan s = {(const char *)bytes + 8, (const char *)data};
    int status = expect(&s, '{');
    while (status == 0) {
        char key[96];
        if (read_string(&s, key, sizeof key) || expect(&s, ':')) { status = -1; break; }
        if (strcmp(key, "__metadata__") == 0) {
            status = skip_value(&s);
        } else if (out->n == ST_MAX_TENSORS) {
            status = -1;
        } else {
            st_tensor *t = &out->tensors[out->n++];
            snprintf(t->name, sizeof t->name, "%s", key);
            int64_t offsets[2] = {0, 0};
            int n_offsets = 0;
            size_t element = 0;
            if (expect(&s, '{')) { status = -1; break; }
            for (;;) {
                char field[32], dtype[16];
                if (read_string(&s, field, sizeof field) || expect(&s, ':')) { status = -1; break; }
                if (strcmp(field, "dtype") == 0) {
                    if (read_string(&s, dtype, sizeof dtype)) { status = -1; break; }
                    if (strcmp(dtype, "F32") == 0) { t->dtype = RECUR_F32; element = 4; }
                    else if (strcmp(dtype, "I32") == 0) { t->dtype = RECUR_I32; element = 4; }
                    else if (strcmp(dtype, "I64") == 0) { t->dtype = RECUR_I64; element = 8; }
                    else { status = -1; break; }
                } else if (strcmp(field, "shape") == 0) {
                    int rank = 0;
                    if (read_integers(&s, t->shape, 8, &rank)) { status = -1; break; }
                    t->rank = rank;
                } else if (strcmp(field, "data_offsets") == 0) {
                    if (read_integers(&s, offsets, 2, &n_offsets) || n_offsets != 2) { status = -1; break; }
                } else if (skip_value(&s)) {
                    status = -1;
                    break;
                }
                skip_space(&s);
                if (s.p < s.end && *s.p == ',') { s.p++; continue; }
                status = expect(&s, '}');
                break;
            }
            if (status) break;
            t->count = 1;
            for (int i = 0; i < t->rank; i++) t->count *= (size_t)t->shape[i];
            if (element == 0 || offsets[0] < 0 || offsets[1] < offsets[0] || (uint64_t)offsets[1] > data_length ||
                (size_t)(offsets[1] - offsets[0]) != t->count * element) {
                status = -1;
                break;
            }
            t->data = malloc(t->count * element + 1);
            if (!t->data) { status = -1; break; }
            memcpy(t->data, data + offsets[0], t->count * element);
        }
        if (status) break;
        skip_space(&s);
        if (s.p < s.end && *s.p == ',') { s.p++; continue; }
        status = expect(&s, '}');
        break;
    }
    free(bytes);
    if (status) st_free(out);
    return status;
}

void st_free(st_file *file) {
    for (size_t i = 0; i < file->n; i++) free(file->tensors[i].data);
    file->n = 0;
}

const st_tensor *st_find(const st_file *file, const char *name) {
    for (size_t i = 0; i < file->n; i++)
        if (strcmp(file->tensors[i].name, name) == 0) return &file->tensors[i];
    return NULL;
}

recur_tensor st_view(const st_tensor *t, const char *name) {
    recur_tensor view;
    memset(&view, 0, sizeof view);
    view.name = name;
    view.dtype = t->dtype;
    view.rank = t->rank;
    memcpy(view.shape, t->shape, sizeof view.shape);
    view.data = t->data;
    return view;
}

/* Appends printf-formatted text to a growing buffer. */
typedef struct text {
    char *s;
    size_t n, capacity;
} text;

static void append(text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->capacity) {
        size_t capacity = (t->n + n + 1) * 2;
        char *grown = realloc(t->s, capacity);
        if (!grown) abort();
        t->s = grown;
        t->capacity = capacity;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}

static void append_str(text *t, const char *s) { append(t, s, strlen(s)); }

unsigned char *st_build(const char *metadata_recur, const st_spec *tensors, size_t n, size_t *size) {
    text header = {NULL, 0, 0};
    append_str(&header, "{");
    if (metadata_recur) {
        append_str(&header, "\"__metadata__\":{\"recur\":\"");
        for (const char *c = metadata_recur; *c; c++) {
            if (*c == '"' || *c == '\\') append_str(&header, "\\");
            append(&header, c, 1);
        }
        append_str(&header, "\"}");
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        char entry[512];
        size_t count = 1;
        int w = snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", (metadata_recur || i) ? "," : "",
                         tensors[i].name);
        for (int d = 0; d < tensors[i].rank; d++) {
            w += snprintf(entry + w, sizeof entry - (size_t)w, "%s%lld", d ? "," : "", (long long)tensors[i].shape[d]);
            count *= (size_t)tensors[i].shape[d];
        }
        snprintf(entry + w, sizeof entry - (size_t)w, "],\"data_offsets\":[%zu,%zu]}", offset, offset + count * 4);
        append_str(&header, entry);
        offset += count * 4;
    }
    append_str(&header, "}");
    *size = 8 + header.n + offset;
    unsigned char *bytes = malloc(*size);
    if (!bytes) abort();
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)header.n >> (8 * i));
    memcpy(bytes + 8, header.s, header.n);
    unsigned char *data = bytes + 8 + header.n;
    for (size_t i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < tensors[i].rank; d++) count *= (size_t)tensors[i].shape[d];
        memcpy(data, tensors[i].values, count * 4);
        data += count * 4;
    }
    free(header.s);
    return bytes;
}
