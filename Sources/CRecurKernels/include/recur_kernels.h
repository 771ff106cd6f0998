/*
 * Recur's numeric kernels: plain functions over row-major float32 buffers and sizes.
 *
 * They know nothing of layers, models or files. Semantics are fixed here and are what the
 * engine relies on; implementations may change (SIMD, threads) as long as results stay within
 * float32 rounding of these definitions and a row's result never depends on the other rows
 * (dynamic batching relies on that: a sequence batched with others gives the same numbers).
 */
#ifndef RECUR_KERNELS_H
#define RECUR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Y[M, N] = X[M, K] · W[N, K]ᵀ + bias[N]   (bias may be NULL; PyTorch's weight layout [out, in]).
   Row strides: ldx for X, ldy for Y (in elements); W is dense [N, K]. */
void rk_linear(size_t M, size_t N, size_t K,
               const float *X, size_t ldx,
               const float *W, const float *bias,
               float *Y, size_t ldy);

/* One LSTM step for B rows, gates (i, f, g, o) in blocks of H.
   gx [B, 4H] row stride ldgx: W_ih x + b_ih.  gh [B, 4H] dense: W_hh h + b_hh.
   c, h [B, H] dense, updated in place. active[b] == 0 leaves row b untouched; active may be NULL (all). */
void rk_lstm_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                  float *c, float *h, const uint8_t *active);

/* One GRU step (r, z, n), PyTorch's form: n = tanh(gx_n + r ⊙ gh_n). Shapes as rk_lstm_step with 3H. */
void rk_gru_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                 float *h, const uint8_t *active);

/* One Elman step: h = act(gx + gh), act = relu when relu != 0, else tanh. Shapes as above with H. */
void rk_rnn_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                 float *h, int relu, const uint8_t *active);

/* Element-wise, in place over n values. */
void rk_sigmoid(size_t n, float *x);
void rk_tanh(size_t n, float *x);
void rk_relu(size_t n, float *x);

/* Over each of `rows` rows of `width` values, in place. */
void rk_softmax_rows(size_t rows, size_t width, float *x);
void rk_log_softmax_rows(size_t rows, size_t width, float *x);

#ifdef __cplusplus
}
#endif
#endif
