/*
 * Training kernels: the products and the per-step cell math of backpropagation through time, as
 * plain functions over row-major float32 buffers (llm.c style). Every forward step keeps what its
 * backward step needs; every backward function names the forward line it differentiates.
 *
 * Rows whose `active` flag is 0 (padding steps) are neither read nor written by a forward step,
 * and a backward step passes their state gradient through unchanged with zero gate gradients.
 */
#ifndef RECUR_TRAIN_KERNELS_H
#define RECUR_TRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C[M, N] = (accumulate ? C : 0) + A·B, where A is M×K with element (m, k) at
   A[m·a_row + k·a_col] (so A or Aᵀ of a row-major buffer), B [K, N] row stride ldb, C row stride ldc.
   The summation order is fixed: results are bit-identical run to run. */
void rt_gemm(size_t M, size_t N, size_t K, const float *A, size_t a_row, size_t a_col,
             const float *B, size_t ldb, float *C, size_t ldc, int accumulate);

/* out[N, M] = in[M, N]ᵀ (in has row stride ldin). */
void rt_transpose(size_t M, size_t N, const float *in, size_t ldin, float *out);

/* C[m, :] += bias[N] for each of M rows (row stride ldc). */
void rt_add_bias_rows(size_t M, size_t N, const float *bias, float *C, size_t ldc);

/* out[N] += Σ_m A[m, :]   (A [M, N], row stride lda): bias gradients. */
void rt_add_column_sums(size_t M, size_t N, const float *A, size_t lda, float *out);

/* LSTM, gates (i, f, g, o). gx [B, 4H] row stride ldgx = W_ih x + b_ih; gh [B, 4H] dense = W_hh h + b_hh.
   c, h [B, H] updated in place. act [B, 5H] row stride ldact keeps (i, f, g, o, tanh c'). */
void rt_lstm_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                          float *c, float *h, float *act, size_t ldact, const uint8_t *active);

/* Differentiates  c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')  and the gate non-linearities.
   act as written by the forward step; cprev [B, H] row stride ldc = c before the step.
   dh [B, H]: in ∂L/∂h', out the part of ∂L/∂h that does not flow through W_hh (0 on active rows).
   dc [B, H]: in ∂L/∂c', out ∂L/∂c. dg [B, 4H] row stride lddg: ∂L/∂(gate pre-activations). */
void rt_lstm_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *cprev, size_t ldc,
                           float *dh, float *dc, float *dg, size_t lddg, const uint8_t *active);

/* GRU (r, z, n), PyTorch's form. h [B, H] in place. act [B, 4H] row stride ldact keeps
   (r, z, n, W_hn h + b_hn). */
void rt_gru_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                         float *h, float *act, size_t ldact, const uint8_t *active);

/* Differentiates  n = tanh(gx_n + r ⊙ gh_n);  h' = (1 − z) ⊙ n + z ⊙ h  and r, z = σ(·).
   hprev [B, H] row stride ldh. dh as in rt_lstm_backward_step (active rows: out ∂L/∂h' ⊙ z).
   dgx [B, 3H] (row stride lddgx) = ∂L/∂(W_ih x + b_ih); dgh [B, 3H] (lddgh) = ∂L/∂(W_hh h + b_hh). */
void rt_gru_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *hprev, size_t ldh,
                          float *dh, float *dgx, size_t lddgx, float *dgh, size_t lddgh, const uint8_t *active);

/* Elman: h' = act(gx + gh), relu when relu != 0 else tanh. h [B, H] in place; act [B, H] keeps h'. */
void rt_rnn_forward_step(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                         float *h, float *act, size_t ldact, int relu, const uint8_t *active);

/* Differentiates  h' = act(a). dh as in rt_lstm_backward_step; dg [B, H] (lddg) = ∂L/∂a. */
void rt_rnn_backward_step(size_t B, size_t H, const float *act, size_t ldact, float *dh,
                          float *dg, size_t lddg, int relu, const uint8_t *active);

/* Softmax cross-entropy over `rows` rows of logits [rows, width]: for rows with target ≥ 0,
   loss += −log softmax(x)[target] (summed in double), correct += (arg-max == target), and
   dx = scale · (softmax(x) − onehot(target)); rows with target < 0 get dx = 0. dx may be NULL. */
double rt_cross_entropy(size_t rows, size_t width, const float *x, const int32_t *target,
                        float scale, float *dx, size_t *correct);

/* Adam (PyTorch's form, bias-corrected) and SGD with momentum over n parameters.
   step_size = lr, t = 1-based step count. */
void rt_adam(size_t n, float *w, const float *g, float *m, float *v, float lr, float beta1,
             float beta2, float eps, long t);
void rt_sgd_momentum(size_t n, float *w, const float *g, float *velocity, float lr, float momentum);

/* Training allocates and frees the same large buffers every step: keep freed memory in the
   process (glibc: no mmap per buffer, no trimming) instead of mapping fresh zeroed pages each step.
   A no-op elsewhere. */
void rt_retain_freed_memory(void);

#ifdef __cplusplus
}
#endif
#endif
