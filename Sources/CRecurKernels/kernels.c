// Element-wise and row kernels of recur_kernels.h: straightforward loops the compiler vectorises.
#include "recur_kernels.h"
#include <math.h>
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
