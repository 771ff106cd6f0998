// Element-wise and row kernels of recur_kernels.h: straightforward loops the compiler vectorises.
#include "recur_kernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void rk_sigmoid(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = sigmoidf(x[i]); }
void rk_tanh(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]); }
/* NaN stays NaN, as in PyTorch (x > 0 ? x : 0 would turn it into 0). */
void rk_relu(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i]; }

static float row_max(size_t width, const float *x) {
    float m = -INFINITY;
    for (size_t j = 0; j < width; j++) m = x[j] > m ? x[j] : m;
    return m;
}

void rk_softmax_rows(size_t rows, size_t width, float *x) {
    for (size_t r = 0; r < rows; r++, x += width) {
        float m = row_max(width, x), sum = 0.0f;
        for (size_t j = 0; j < width; j++) { x[j] = expf(x[j] - m); sum += x[j]; }
        for (size_t j = 0; j < width; j++) x[j] /= sum;
    }
}

void rk_log_softmax_rows(size_t rows, size_t width, float *x) {
    for (size_t r = 0; r < rows; r++, x += width) {
        float m = row_max(width, x), sum = 0.0f;
        for (size_t j = 0; j < width; j++) sum += expf(x[j] - m);
        float lse = m + logf(sum);
        for (size_t j = 0; j < width; j++) x[j] -= lse;
    }
}

/* glibc's memcpy copies blocks of a few KiB and more with `rep movsb`, which on AMD Zen 3 ran 15 times
   slower (200 KB in cache: 70 µs, 2.9 GB/s, against 3–5 µs) when the destination was 1–31 bytes past a
   multiple of 4 KiB from the source (32, 33, 48 and 0 were fast). A Swift array's elements and a
   malloc'd block can be that far apart call after call: through the Python binding, the copy of a
   result took 7% of a run of LSTM-64 B = 8 T = 100. Those copies go by 16-byte loads and stores here
   (the attributes keep the compiler from making the loop a memcpy call); the rest by memcpy, whose
   wider moves are faster than this loop's. */
#if defined(__clang__)
#define RK_NOT_MEMCPY __attribute__((no_builtin("memcpy")))
#else
#define RK_NOT_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
enum { REP_MOVSB_SLOW_DISTANCE = 32, REP_MOVSB_PAGE = 4096 };

RK_NOT_MEMCPY static void copy_by_vectors(unsigned char *to, const unsigned char *from, size_t bytes) {
    typedef float lanes __attribute__((vector_size(16), aligned(1)));
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        lanes a = *(const lanes *)(from + i), b = *(const lanes *)(from + i + 16);
        lanes c = *(const lanes *)(from + i + 32), d = *(const lanes *)(from + i + 48);
        *(lanes *)(to + i) = a, *(lanes *)(to + i + 16) = b, *(lanes *)(to + i + 32) = c, *(lanes *)(to + i + 48) = d;
    }
    for (; i < bytes; i++) to[i] = from[i];
}

void rk_copy_bytes(void *to, const void *from, size_t bytes) {
    size_t distance = ((uintptr_t)to - (uintptr_t)from) % REP_MOVSB_PAGE;
    if (distance > 0 && distance < REP_MOVSB_SLOW_DISTANCE) copy_by_vectors(to, from, bytes);
    else if (bytes > 0) memcpy(to, from, bytes);
}
