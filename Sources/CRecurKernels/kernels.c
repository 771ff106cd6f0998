// Reference implementations of recur_kernels.h: straightforward loops the compiler vectorises.
#include "recur_kernels.h"
#include <math.h>
#include <string.h>

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void rk_linear(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *W,
               const float *bias, float *Y, size_t ldy) {
    for (size_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        float *y = Y + m * ldy;
        for (size_t n = 0; n < N; n++) {
            const float *w = W + n * K;
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++) acc += x[k] * w[k];
            y[n] = bias ? acc + bias[n] : acc;
        }
    }
}

void rk_lstm_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                  float *c, float *h, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * 4 * H;
        float *cb = c + b * H, *hb = h + b * H;
        for (size_t j = 0; j < H; j++) {
            float i = sigmoidf(x[j] + r[j]);
            float f = sigmoidf(x[H + j] + r[H + j]);
            float g = tanhf(x[2 * H + j] + r[2 * H + j]);
            float o = sigmoidf(x[3 * H + j] + r[3 * H + j]);
            float cn = f * cb[j] + i * g;
            cb[j] = cn;
            hb[j] = o * tanhf(cn);
        }
    }
}

void rk_gru_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                 float *h, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * 3 * H;
        float *hb = h + b * H;
        for (size_t j = 0; j < H; j++) {
            float rg = sigmoidf(x[j] + r[j]);
            float z = sigmoidf(x[H + j] + r[H + j]);
            float n = tanhf(x[2 * H + j] + rg * r[2 * H + j]);
            hb[j] = (1.0f - z) * n + z * hb[j];
        }
    }
}

void rk_rnn_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                 float *h, int relu, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * H;
        float *hb = h + b * H;
        for (size_t j = 0; j < H; j++) {
            float v = x[j] + r[j];
            hb[j] = relu ? (v > 0.0f ? v : 0.0f) : tanhf(v);
        }
    }
}

void rk_sigmoid(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = sigmoidf(x[i]); }
void rk_tanh(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]); }
void rk_relu(size_t n, float *x) { for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f; }

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
