// Training kernels of recur_train_kernels.h. Loops are written so the inner one is a unit-stride
// axpy the compiler vectorises without -ffast-math (no float reductions reordered).
#include "recur_train_kernels.h"
#include <math.h>
#include <string.h>

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Four rows of C at once, so each row of B is loaded once per four output rows; K in chunks so
   the rows of B a chunk reads stay in cache across all of C. */
#define RT_K_CHUNK 128
void rt_gemm(size_t M, size_t N, size_t K, const float *A, size_t a_row, size_t a_col,
             const float *B, size_t ldb, float *C, size_t ldc, int accumulate) {
    if (!accumulate)
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof(float));
    for (size_t k0 = 0; k0 < K; k0 += RT_K_CHUNK) {
        size_t k1 = k0 + RT_K_CHUNK < K ? k0 + RT_K_CHUNK : K;
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            float *restrict c0 = C + m * ldc, *restrict c1 = c0 + ldc, *restrict c2 = c1 + ldc, *restrict c3 = c2 + ldc;
            const float *a = A + m * a_row;
            for (size_t k = k0; k < k1; k++) {
                const float *restrict b = B + k * ldb;
                float a0 = a[k * a_col], a1 = a[a_row + k * a_col], a2 = a[2 * a_row + k * a_col], a3 = a[3 * a_row + k * a_col];
                if (a0 == 0.0f && a1 == 0.0f && a2 == 0.0f && a3 == 0.0f) continue;  // padding rows
                for (size_t n = 0; n < N; n++) {
                    float bn = b[n];
                    c0[n] += a0 * bn; c1[n] += a1 * bn; c2[n] += a2 * bn; c3[n] += a3 * bn;
                }
            }
        }
        for (; m < M; m++) {
            float *restrict c0 = C + m * ldc;
            const float *a = A + m * a_row;
            for (size_t k = k0; k < k1; k++) {
                const float *restrict b = B + k * ldb;
                float a0 = a[k * a_col];
                if (a0 == 0.0f) continue;
                for (size_t n = 0; n < N; n++) c0[n] += a0 * b[n];
            }
        }
    }
}

void rt_transpose(size_t M, size_t N, const float *in, size_t ldin, float *out) {
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) out[n * M + m] = in[m * ldin + n];
}

void rt_add_bias_rows(size_t M, size_t N, const float *bias, float *C, size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        float *restrict c = C + m * ldc;
        for (size_t n = 0; n < N; n++) c[n] += bias[n];
    }
}

void rt_add_column_sums(size_t M, size_t N, const float *A, size_t lda, float *out) {
    for (size_t m = 0; m < M; m++) {
        const float *restrict a = A + m * lda;
        for (size_t n = 0; n < N; n++) out[n] += a[n];
    }
}

void rt_lstm_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                          float *c, float *h, float *act, size_t ldact, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * 4 * H;
        float *cb = c + b * H, *hb = h + b * H, *a = act + b * ldact;
        for (size_t j = 0; j < H; j++) {
            float i = sigmoidf(x[j] + r[j]);
            float f = sigmoidf(x[H + j] + r[H + j]);
            float g = tanhf(x[2 * H + j] + r[2 * H + j]);
            float o = sigmoidf(x[3 * H + j] + r[3 * H + j]);
            float cn = f * cb[j] + i * g;
            float tc = tanhf(cn);
            a[j] = i; a[H + j] = f; a[2 * H + j] = g; a[3 * H + j] = o; a[4 * H + j] = tc;
            cb[j] = cn;
            hb[j] = o * tc;
        }
    }
}

void rt_lstm_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *cprev, size_t ldc,
                           float *dh, float *dc, float *dg, size_t lddg, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *g = dg + b * lddg;
        if (active && !active[b]) { memset(g, 0, 4 * H * sizeof(float)); continue; }
        const float *a = act + b * ldact, *cp = cprev + b * ldc;
        float *dhb = dh + b * H, *dcb = dc + b * H;
        for (size_t j = 0; j < H; j++) {
            float i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j], tc = a[4 * H + j];
            // h' = o ⊙ tanh(c')
            float dcn = dcb[j] + dhb[j] * o * (1.0f - tc * tc);
            float d_o = dhb[j] * tc;
            // c' = f ⊙ c + i ⊙ g
            float d_i = dcn * gg, d_f = dcn * cp[j], d_g = dcn * i;
            dcb[j] = dcn * f;
            // i, f, o = σ(·); g = tanh(·)
            g[j] = d_i * i * (1.0f - i);
            g[H + j] = d_f * f * (1.0f - f);
            g[2 * H + j] = d_g * (1.0f - gg * gg);
            g[3 * H + j] = d_o * o * (1.0f - o);
            dhb[j] = 0.0f;
        }
    }
}

void rt_gru_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                         float *h, float *act, size_t ldact, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * 3 * H;
        float *hb = h + b * H, *a = act + b * ldact;
        for (size_t j = 0; j < H; j++) {
            float rg = sigmoidf(x[j] + r[j]);
            float z = sigmoidf(x[H + j] + r[H + j]);
            float n = tanhf(x[2 * H + j] + rg * r[2 * H + j]);
            a[j] = rg; a[H + j] = z; a[2 * H + j] = n; a[3 * H + j] = r[2 * H + j];
            hb[j] = (1.0f - z) * n + z * hb[j];
        }
    }
}

void rt_gru_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *hprev, size_t ldh,
                          float *dh, float *dgx, size_t lddgx, float *dgh, size_t lddgh, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *gx = dgx + b * lddgx, *gh = dgh + b * lddgh;
        if (active && !active[b]) {
            memset(gx, 0, 3 * H * sizeof(float));
            memset(gh, 0, 3 * H * sizeof(float));
            continue;
        }
        const float *a = act + b * ldact, *hp = hprev + b * ldh;
        float *dhb = dh + b * H;
        for (size_t j = 0; j < H; j++) {
            float r = a[j], z = a[H + j], n = a[2 * H + j], ghn = a[3 * H + j], d = dhb[j];
            // h' = (1 − z) ⊙ n + z ⊙ h
            float dn = d * (1.0f - z), dz = d * (hp[j] - n);
            // n = tanh(gx_n + r ⊙ gh_n)
            float dan = dn * (1.0f - n * n);
            float dr = dan * ghn;
            // r, z = σ(·)
            float dar = dr * r * (1.0f - r), daz = dz * z * (1.0f - z);
            gx[j] = dar; gx[H + j] = daz; gx[2 * H + j] = dan;
            gh[j] = dar; gh[H + j] = daz; gh[2 * H + j] = dan * r;
            dhb[j] = d * z;
        }
    }
}

void rt_rnn_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                         float *h, float *act, size_t ldact, int relu, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * H;
        float *hb = h + b * H, *a = act + b * ldact;
        for (size_t j = 0; j < H; j++) {
            float v = x[j] + r[j];
            hb[j] = a[j] = relu ? (v > 0.0f ? v : 0.0f) : tanhf(v);
        }
    }
}

void rt_rnn_backward_step(size_t B, size_t H, const float *act, size_t ldact, float *dh,
                          float *dg, size_t lddg, int relu, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *g = dg + b * lddg;
        if (active && !active[b]) { memset(g, 0, H * sizeof(float)); continue; }
        const float *a = act + b * ldact;
        float *dhb = dh + b * H;
        for (size_t j = 0; j < H; j++) {
            // h' = relu(a) or tanh(a)
            g[j] = relu ? (a[j] > 0.0f ? dhb[j] : 0.0f) : dhb[j] * (1.0f - a[j] * a[j]);
            dhb[j] = 0.0f;
        }
    }
}

double rt_cross_entropy(size_t rows, size_t width, const float *x, const int32_t *target,
                        float scale, float *dx, size_t *correct) {
    double loss = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *d = dx ? dx + r * width : NULL;
        int32_t t = target[r];
        if (t < 0 || (size_t)t >= width) {
            if (d) memset(d, 0, width * sizeof(float));
            continue;
        }
        float m = xr[0];
        size_t best = 0;
        for (size_t j = 1; j < width; j++) if (xr[j] > m) { m = xr[j]; best = j; }
        double sum = 0.0;
        for (size_t j = 0; j < width; j++) sum += exp((double)(xr[j] - m));
        double lse = (double)m + log(sum);
        loss += lse - (double)xr[t];
        if (best == (size_t)t) (*correct)++;
        if (d) {
            for (size_t j = 0; j < width; j++) d[j] = scale * (float)exp((double)xr[j] - lse);
            d[t] -= scale;
        }
    }
    return loss;
}

void rt_adam(size_t n, float *w, const float *g, float *m, float *v, float lr, float beta1,
             float beta2, float eps, long t) {
    float c1 = 1.0f - powf(beta1, (float)t), c2 = 1.0f - powf(beta2, (float)t);
    float step = lr / c1, root_c2 = sqrtf(c2);
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        w[i] -= step * m[i] / (sqrtf(v[i]) / root_c2 + eps);
    }
}

void rt_sgd_momentum(size_t n, float *w, const float *g, float *velocity, float lr, float momentum) {
    for (size_t i = 0; i < n; i++) {
        velocity[i] = momentum * velocity[i] + g[i];
        w[i] -= lr * velocity[i];
    }
}
