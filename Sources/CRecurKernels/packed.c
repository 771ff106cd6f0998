// Packed matrix product and fused recurrent steps (recur_kernels.h), written once over v8f and
// compiled twice: an AVX2+FMA variant chosen at run time and a portable one.
#include "recur_kernels.h"
#include "simd.h"
#include <stdatomic.h>
#include <stdlib.h>

/* ---- packing ------------------------------------------------------------------------------ */

/* Matrix product panels: NR output columns side by side for every k, so the kernel reads one
   contiguous stream per panel: P[p][k][c] = W[p·NR + c][k], zero past N. */
enum { GEMM_MR = 6, GEMM_NR = 16, GEMM_KC = 256, GEMM_MC = 96 };

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

size_t rk_gemm_packed_size(size_t N, size_t K) { return ceil_div(N, GEMM_NR) * GEMM_NR * K; }

void rk_gemm_pack(size_t N, size_t K, const float *W, float *P) {
    for (size_t p = 0; p < ceil_div(N, GEMM_NR); p++)
        for (size_t k = 0; k < K; k++)
            for (size_t c = 0; c < GEMM_NR; c++) {
                size_t n = p * GEMM_NR + c;
                *P++ = n < N ? W[n * K + k] : 0.0f;
            }
}

/* Recurrent weights in blocks of RK_UNITS hidden units: for each k, the block's rows of every gate,
   so one block's product for all gates is one contiguous stream: P[u][k][g][l] = W[g·H + u·8 + l][k]. */
size_t rk_recurrent_packed_size(size_t gates, size_t H) { return ceil_div(H, RK_UNITS) * RK_UNITS * gates * H; }

void rk_recurrent_pack(size_t gates, size_t H, const float *W, float *P) {
    for (size_t u = 0; u < ceil_div(H, RK_UNITS); u++)
        for (size_t k = 0; k < H; k++)
            for (size_t g = 0; g < gates; g++)
                for (size_t l = 0; l < RK_UNITS; l++) {
                    size_t j = u * RK_UNITS + l;
                    *P++ = j < H ? W[(g * H + j) * H + k] : 0.0f;
                }
}

/* ---- matrix product ----------------------------------------------------------------------- */

/* acc[6][2] (+)= rows[0..6)[0..kc) · panel[kc][16]. */
RK_INLINE void gemm_micro(size_t kc, const float *const rows[GEMM_MR], const float *panel, v8f acc[GEMM_MR][2]) {
    for (size_t k = 0; k < kc; k++, panel += GEMM_NR) {
        v8f w0 = load8(panel), w1 = load8(panel + 8);
        for (int r = 0; r < GEMM_MR; r++) {
            v8f x = splat(rows[r][k]);
            acc[r][0] += x * w0;
            acc[r][1] += x * w1;
        }
    }
}

RK_INLINE void gemm_body(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P, const float *bias,
                         float *Y, size_t ldy, size_t panel_begin, size_t panel_end) {
    for (size_t k0 = 0; k0 < K || k0 == 0; k0 += GEMM_KC) {
        size_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        for (size_t m0 = 0; m0 < M; m0 += GEMM_MC) {
            size_t m_end = M - m0 < GEMM_MC ? M : m0 + GEMM_MC;
            for (size_t p = panel_begin; p < panel_end; p++) {
                const float *panel = P + p * GEMM_NR * K + k0 * GEMM_NR;
                size_t n0 = p * GEMM_NR, width = N - n0 < GEMM_NR ? N - n0 : GEMM_NR;
                v8f start[2] = {splat(0.0f), splat(0.0f)};
                if (bias && k0 == 0) start[0] = load_n(bias + n0, width), start[1] = width > 8 ? load_n(bias + n0 + 8, width - 8) : splat(0.0f);
                for (size_t m = m0; m < m_end; m += GEMM_MR) {
                    size_t mr = m_end - m < GEMM_MR ? m_end - m : GEMM_MR;
                    const float *rows[GEMM_MR];
                    v8f acc[GEMM_MR][2];
                    for (int r = 0; r < GEMM_MR; r++) {
                        /* Rows past the tail repeat the last row: no branch in the kernel, never stored. */
                        size_t row = m + ((size_t)r < mr ? (size_t)r : mr - 1);
                        rows[r] = X + row * ldx + k0;
                        float *y = Y + row * ldy + n0;
                        if (k0 == 0) acc[r][0] = start[0], acc[r][1] = start[1];
                        else acc[r][0] = load_n(y, width), acc[r][1] = width > 8 ? load_n(y + 8, width - 8) : splat(0.0f);
                    }
                    gemm_micro(kc, rows, panel, acc);
                    for (size_t r = 0; r < mr; r++) {
                        float *y = Y + (m + r) * ldy + n0;
                        store_n(y, acc[r][0], width);
                        if (width > 8) store_n(y + 8, acc[r][1], width - 8);
                    }
                }
            }
        }
        if (K == 0) break;
    }
}

/* ---- fused recurrent step ----------------------------------------------------------------- */

RK_INLINE int row_active(const rk_step *s, size_t b) { return !s->lengths || s->t < s->lengths[b]; }

/* Gate math on one row's accumulators for units j ..< j+n; writes h (state and output) and c. */
RK_INLINE void step_epilogue(const rk_step *s, int cell, v8f *acc, size_t b, size_t j, size_t n) {
    size_t H = s->hidden;
    const float *gx = s->gx + b * s->ldgx;
    v8f h;
    switch (cell) {
    case RK_CELL_LSTM: {
        float *c = s->c + b * H + j;
        v8f cn = vsigmoid(acc[1]) * load_n(c, n) + vsigmoid(acc[0]) * vtanh(acc[2]);
        store_n(c, cn, n);
        h = vsigmoid(acc[3]) * vtanh(cn);
        break;
    }
    case RK_CELL_GRU: {
        v8f z = vsigmoid(acc[1]);
        v8f candidate = vtanh(load_n(gx + 2 * H + j, n) + vsigmoid(acc[0]) * acc[2]);
        h = (splat(1.0f) - z) * candidate + z * load_n(s->h_prev + b * H + j, n);
        break;
    }
    case RK_CELL_RNN_RELU: h = vrelu(acc[0]); break;
    default: h = vtanh(acc[0]); break;
    }
    store_n(s->h_next + b * H + j, h, n);
    if (s->y) store_n(s->y + b * s->ldy + j, h, n);
}

/* Rows b0 ..< b0+mr of unit blocks u ..< u+NB, G gates, the sums over k0 ..< k1 of H; MR and NB
   constants after inlining (MR ≥ mr). Sums start from gx (k0 = 0) or the partial sums, and end in
   the gate math (k1 = H) or the partial sums. Every row's sums run over k in order whatever MR and
   NB are, so a row's result never depends on which other rows share its batch. */
RK_INLINE void step_rows(const rk_step *s, int cell, int G, int MR, int NB, size_t u, size_t b0, size_t mr,
                         size_t k0, size_t k1) {
    size_t H = s->hidden;
    const float *h[MR];
    v8f acc[MR][NB][G];
    for (int r = 0; r < MR; r++) {
        size_t b = b0 + ((size_t)r < mr ? (size_t)r : mr - 1);
        h[r] = s->h_prev + b * H;
        const float *gx = s->gx + b * s->ldgx;
        for (int i = 0; i < NB; i++) {
            size_t j = (u + i) * RK_UNITS, n = H - j < RK_UNITS ? H - j : RK_UNITS;
            const float *partial = s->partial + (b * 2 + (u + i) % 2) * G * RK_UNITS;
            for (int g = 0; g < G; g++) {
                if (k0 > 0) acc[r][i][g] = load8(partial + g * RK_UNITS);
                else if (cell == RK_CELL_GRU && g == 2) acc[r][i][g] = s->bias ? load_n(s->bias + j, n) : splat(0.0f);
                else acc[r][i][g] = load_n(gx + g * H + j, n);
            }
        }
    }
    const float *block = s->weights + u * RK_UNITS * G * H + k0 * G * RK_UNITS;
    for (size_t k = k0; k < k1; k++, block += G * RK_UNITS) {
        for (int r = 0; r < MR; r++) {
            v8f x = splat(h[r][k]);
            for (int i = 0; i < NB; i++)
                for (int g = 0; g < G; g++) acc[r][i][g] += x * load8(block + i * RK_UNITS * G * H + g * RK_UNITS);
        }
    }
    for (size_t r = 0; r < mr; r++) {
        size_t b = b0 + r;
        for (int i = 0; i < NB; i++) {
            size_t j = (u + i) * RK_UNITS, n = H - j < RK_UNITS ? H - j : RK_UNITS;
            if (k1 < H) {
                float *partial = s->partial + (b * 2 + (u + i) % 2) * G * RK_UNITS;
                for (int g = 0; g < G; g++) store8(partial + g * RK_UNITS, acc[r][i][g]);
            } else if (row_active(s, b)) {
                step_epilogue(s, cell, acc[r][i], b, j, n);
            } else {
                memcpy(s->h_next + b * H + j, s->h_prev + b * H + j, n * sizeof(float));
            }
        }
    }
}

/* Groups of MR rows (MR·G accumulators and G weight vectors fit the 16 registers); a last single
   row takes two unit blocks at once, so a batch of one still has 2·G independent sums in flight.
   The sums go in chunks of STEP_KC over k so a unit block's weights for the chunk stay in L1 while
   every row group uses them. */
enum { STEP_KC = 128 };
RK_INLINE void step_cell(const rk_step *s, int cell, int G, int MR, size_t unit_begin, size_t unit_end) {
    size_t H = s->hidden, full = s->batch / MR * MR, rest = s->batch - full;
    for (size_t u = unit_begin; u < unit_end; u += 2) {
        int pair = u + 1 < unit_end;
        for (size_t k0 = 0; k0 < H; k0 += STEP_KC) {
            size_t k1 = H - k0 < STEP_KC ? H : k0 + STEP_KC;
            for (size_t i = 0; i <= (size_t)pair; i++) {
                for (size_t b = 0; b < full; b += MR) step_rows(s, cell, G, MR, 1, u + i, b, MR, k0, k1);
                if (rest > 1) step_rows(s, cell, G, MR, 1, u + i, full, rest, k0, k1);
            }
            if (rest == 1) {
                if (pair) step_rows(s, cell, G, 1, 2, u, full, 1, k0, k1);
                else step_rows(s, cell, G, 1, 1, u, full, 1, k0, k1);
            }
        }
    }
}

RK_INLINE void step_body(const rk_step *s, size_t unit_begin, size_t unit_end) {
    switch (s->cell) {
    case RK_CELL_LSTM: step_cell(s, RK_CELL_LSTM, 4, 2, unit_begin, unit_end); break;
    case RK_CELL_GRU: step_cell(s, RK_CELL_GRU, 3, 3, unit_begin, unit_end); break;
    case RK_CELL_RNN_RELU: step_cell(s, RK_CELL_RNN_RELU, 1, 6, unit_begin, unit_end); break;
    default: step_cell(s, RK_CELL_RNN_TANH, 1, 6, unit_begin, unit_end); break;
    }
}

/* ---- variants and dispatch ---------------------------------------------------------------- */

static void gemm_portable(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P, const float *bias,
                          float *Y, size_t ldy, size_t pb, size_t pe) {
    gemm_body(M, N, K, X, ldx, P, bias, Y, ldy, pb, pe);
}
static void step_portable(const rk_step *s, size_t ub, size_t ue) { step_body(s, ub, ue); }

#if RK_HAVE_AVX2_VARIANT
RK_AVX2 static void gemm_avx2(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P, const float *bias,
                              float *Y, size_t ldy, size_t pb, size_t pe) {
    gemm_body(M, N, K, X, ldx, P, bias, Y, ldy, pb, pe);
}
RK_AVX2 static void step_avx2(const rk_step *s, size_t ub, size_t ue) { step_body(s, ub, ue); }

/* 1 with AVX2 and FMA, 0 without or when RECUR_PORTABLE_KERNELS is set (the tests run the portable
   code that way); asked once (racing first callers store the same answer). */
static int have_avx2(void) {
    static _Atomic int known = -1;
    int answer = atomic_load_explicit(&known, memory_order_relaxed);
    if (answer < 0) {
        __builtin_cpu_init();
        answer = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !getenv("RECUR_PORTABLE_KERNELS");
        atomic_store_explicit(&known, answer, memory_order_relaxed);
    }
    return answer;
}
#endif

size_t rk_step_partial_size(size_t gates, size_t batch) { return batch * 2 * gates * RK_UNITS; }

size_t rk_gemm_panels(size_t N) { return ceil_div(N, GEMM_NR); }

void rk_gemm_packed(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P, const float *bias,
                    float *Y, size_t ldy, size_t panel_begin, size_t panel_end) {
    if (M == 0 || panel_begin >= panel_end) return;
#if RK_HAVE_AVX2_VARIANT
    if (have_avx2()) {
        gemm_avx2(M, N, K, X, ldx, P, bias, Y, ldy, panel_begin, panel_end);
        return;
    }
#endif
    gemm_portable(M, N, K, X, ldx, P, bias, Y, ldy, panel_begin, panel_end);
}

void rk_recurrent_step(const rk_step *step, size_t unit_begin, size_t unit_end) {
#if RK_HAVE_AVX2_VARIANT
    if (have_avx2()) {
        step_avx2(step, unit_begin, unit_end);
        return;
    }
#endif
    step_portable(step, unit_begin, unit_end);
}
