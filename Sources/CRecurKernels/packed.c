// Packed matrix products and fused recurrent steps (recur_kernels.h), written once with clang
// vector extensions and compiled into variants (portable, AVX2, AVX-512) chosen at run time.
#include "recur_kernels.h"
#include "simd.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- packing ------------------------------------------------------------------------------ */

/* Matrix product panels: NR output columns side by side for every k, so the kernel reads one
   contiguous stream per panel: P[p][k][c] = W[p·NR + c][k], zero past N. */
enum { GEMM_NR = 16, GEMM_KC = 512 };
/* Less of k than this left goes in one last block (gemm_body): K = 724 as one block, not 512 and 212. */
enum { GEMM_KC_JOINED = GEMM_KC * 3 / 2 };

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

size_t rk_gemm_packed_size(size_t N, size_t K) { return ceil_div(N, GEMM_NR) * GEMM_NR * K; }

void rk_gemm_pack_rows(size_t N, size_t K, size_t first_row, size_t rows, const float *W, float *P) {
    for (size_t n = first_row; n < first_row + rows && n < N; n++, W += K) {
        float *column = P + n / GEMM_NR * GEMM_NR * K + n % GEMM_NR;
        for (size_t k = 0; k < K; k++) column[k * GEMM_NR] = W[k];
    }
}

void rk_gemm_pack(size_t N, size_t K, const float *W, float *P) {
    memset(P, 0, rk_gemm_packed_size(N, K) * sizeof(float));
    rk_gemm_pack_rows(N, K, 0, N, W, P);
}

/* Gate weights (W_hh, W_ih) as a matrix product's column panels (rk_gemm_pack's layout) of W with its
   rows reordered block by block of RK_UNITS units, gate by gate: row n = (u·G + g)·8 + l of the
   reordered matrix is W[g·H + u·8 + l], so every 8 rows are one gate of one unit block and every
   panel of 16 is two of them (a gate pair of one block when G is even). A step over many rows is
   then one matrix product, a fused step reads a gate's 8 weights per k from its half of a panel, and
   the input projection writes gx in the same order, so a block's gates are side by side. */
size_t rk_gate_columns(size_t gates, size_t H) {
    return ceil_div(ceil_div(H, RK_UNITS) * RK_UNITS * gates, GEMM_NR) * GEMM_NR;
}

size_t rk_recurrent_packed_size(size_t gates, size_t H) { return rk_gate_columns(gates, H) * H; }

size_t rk_input_packed_size(size_t gates, size_t H, size_t I) { return rk_gate_columns(gates, H) * I; }

/* Reordered row n's source: the row of W [G·H, ·] it holds, or −1 for the zero rows past H units and
   past the last panel's gates. */
static ptrdiff_t gate_row(size_t gates, size_t H, size_t n) {
    size_t block = n / RK_UNITS, u = block / gates, g = block % gates, j = u * RK_UNITS + n % RK_UNITS;
    return j < H ? (ptrdiff_t)(g * H + j) : -1;
}

/* Where row `row` = g·H + j of W [G·H, ·] goes: reordered row n (gate_row(gates, H, n) = row). */
static size_t reordered_row(size_t gates, size_t H, size_t row) {
    size_t g = row / H, j = row % H;
    return (j / RK_UNITS * gates + g) * RK_UNITS + j % RK_UNITS;
}

void rk_input_bias_pack(size_t gates, size_t H, const float *bias, float *P) {
    for (size_t n = 0; n < rk_gate_columns(gates, H); n++) {
        ptrdiff_t row = gate_row(gates, H, n);
        P[n] = row >= 0 ? bias[row] : 0.0f;
    }
}

/* float32 → binary16, rounded to nearest even; values beyond the largest half (65504) become
   infinity (the engine refuses such weights before packing). */
static uint16_t half_from_float(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000, magnitude = x & 0x7fffffff;
    if (magnitude >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);     /* ≥ 65520: rounds to infinity */
    if (magnitude < 0x38800000u) {                                       /* below 2⁻¹⁴: a subnormal half */
        float a;
        memcpy(&a, &magnitude, sizeof a);
        float units = a * 0x1p24f;                                       /* in half's subnormal steps, exact */
        uint32_t q = (uint32_t)units;
        float rest = units - (float)q;
        if (rest > 0.5f || (rest == 0.5f && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t rounded = magnitude + 0xfff + ((magnitude >> 13) & 1);     /* the 13 bits dropped, to even */
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));          /* exponent bias 127 → 15 */
}

/* ---- bfloat16 ------------------------------------------------------------------------------ */

typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint32_t v16u_unaligned __attribute__((vector_size(64), aligned(2)));
typedef uint16_t v16u16 __attribute__((vector_size(32)));
typedef uint16_t v16u16_unaligned __attribute__((vector_size(32), aligned(2)));

/* Sixteen floats' bits as bfloat16 (rk_bf16_round_rows' rounding): to nearest even; below 2⁻¹²⁶ a
   zero of the value's sign; NaN a quiet NaN (rounding up could carry a NaN's low bits into infinity). */
RK_INLINE v16u16 bf16x16(v16u x) {
    v16i tiny = (x & 0x7f800000u) == 0, nan = (x & 0x7fffffffu) > 0x7f800000u;
    v16u rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    v16u flushed = (x >> 16) & 0x8000u, quiet = (x >> 16) | 0x40u;
    v16u bits = ((v16u)tiny & flushed) | ((v16u)nan & quiet) | ((v16u) ~(tiny | nan) & rounded);
    return __builtin_convertvector(bits, v16u16);
}

static uint16_t bf16_from_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bf16x16((v16u){bits})[0];
}

size_t rk_bf16_row_size(size_t K) { return (K + 1) / 2 * 2; }

void rk_gates_pack_rows(size_t gates, size_t H, size_t K, size_t first_row, size_t rows, const float *W, void *P,
                        rk_weights format) {
    size_t depth = format == RK_WEIGHTS_BFLOAT16 ? rk_bf16_row_size(K) : K;
    for (size_t row = first_row; row < first_row + rows && row < gates * H; row++, W += K) {
        size_t n = reordered_row(gates, H, row), first = n / GEMM_NR * GEMM_NR * depth, c = n % GEMM_NR;
        for (size_t k = 0; k < K; k++) {
            if (format == RK_WEIGHTS_BFLOAT16) ((uint16_t *)P)[first + (k / 2 * 2) * GEMM_NR + 2 * c + k % 2] = bf16_from_float(W[k]);
            else if (format == RK_WEIGHTS_FLOAT16) ((uint16_t *)P)[first + k * GEMM_NR + c] = half_from_float(W[k]);
            else ((float *)P)[first + k * GEMM_NR + c] = W[k];
        }
    }
}

/* All of W [G·H, K] into P [size values of `bytes` each] in `format`, padding zeroed. */
static void gates_pack(size_t gates, size_t H, size_t K, const float *W, void *P, size_t size, size_t bytes,
                       rk_weights format) {
    memset(P, 0, size * bytes);
    rk_gates_pack_rows(gates, H, K, 0, gates * H, W, P, format);
}

void rk_recurrent_pack(size_t gates, size_t H, const float *W, float *P) {
    gates_pack(gates, H, H, W, P, rk_recurrent_packed_size(gates, H), sizeof(float), RK_WEIGHTS_FLOAT32);
}

void rk_recurrent_pack_half(size_t gates, size_t H, const float *W, uint16_t *P) {
    gates_pack(gates, H, H, W, P, rk_recurrent_packed_size(gates, H), sizeof(uint16_t), RK_WEIGHTS_FLOAT16);
}

void rk_input_pack(size_t gates, size_t H, size_t I, const float *W, float *P) {
    gates_pack(gates, H, I, W, P, rk_input_packed_size(gates, H, I), sizeof(float), RK_WEIGHTS_FLOAT32);
}

size_t rk_gates_packed_size_bf16(size_t gates, size_t H, size_t K) { return rk_gate_columns(gates, H) * rk_bf16_row_size(K); }

void rk_gates_pack_bf16(size_t gates, size_t H, size_t K, const float *W, uint16_t *P) {
    gates_pack(gates, H, K, W, P, rk_gates_packed_size_bf16(gates, H, K), sizeof(uint16_t), RK_WEIGHTS_BFLOAT16);
}

/* rk_bf16_round_rows, inlined into each variant: the steps round h_prev every step. */
RK_INLINE void round_rows_bf16(size_t M, size_t K, const float *X, size_t ldx, uint16_t *Y, size_t ldy) {
    for (size_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        uint16_t *y = Y + m * ldy;
        size_t k = 0;
        for (; k + 16 <= K; k += 16) *(v16u16_unaligned *)(y + k) = bf16x16(*(const v16u_unaligned *)(x + k));
        for (; k < K; k++) y[k] = bf16_from_float(x[k]);
        if (K % 2 == 1) y[K] = 0;
    }
}

/* ---- weights as stored: float32, or half (HALF) converted on load ---------------------------- */

typedef uint16_t v8u16 __attribute__((vector_size(16)));
typedef uint16_t v8u16_unaligned __attribute__((vector_size(16), aligned(2)));
typedef _Float16 v8h __attribute__((vector_size(16)));

/* Eight halves as floats, exactly: with F16C one conversion instruction, else by integer arithmetic
   (the magnitude's bits moved into float position and rescaled by 2¹¹², which also handles
   subnormals; an all-ones exponent, an infinity or NaN, becomes float's all-ones exponent with the
   same fraction, as an embedding's table may hold them). */
RK_INLINE v8f half8(const uint16_t *p, int F16C) {
    v8u16 bits = *(const v8u16_unaligned *)p;
    if (F16C) return __builtin_convertvector((v8h)bits, v8f);
    v8i x = __builtin_convertvector(bits, v8i);
    v8i finite = (v8i)((v8f)((x & 0x7fff) << 13) * splat(0x1p112f));
    v8i beyond = (x & 0x7c00) == 0x7c00;
    v8i magnitude = (finite & ~beyond) | ((0x7f800000 | (x & 0x3ff) << 13) & beyond);
    return (v8f)(magnitude | ((x & 0x8000) << 16));
}

/* rk_widen_half, inlined into each variant. */
RK_INLINE void widen_half(size_t n, const uint16_t *half, float *wide, int F16C) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) store8(wide + i, half8(half + i, F16C));
    if (i < n) {
        uint16_t last[8] = {0};
        memcpy(last, half + i, (n - i) * sizeof(uint16_t));
        store_n(wide + i, half8(last, F16C), n - i);
    }
}

/* Weights i ..< i+8 (i+16) of a stream of floats (HALF 0) or halves (HALF 1). */
RK_INLINE v8f wload8(const void *w, size_t i, int HALF, int F16C) {
    return HALF ? half8((const uint16_t *)w + i, F16C) : load8((const float *)w + i);
}
RK_INLINE v16f wload16(const void *w, size_t i, int HALF, int F16C) {
    return HALF ? join16(half8((const uint16_t *)w + i, F16C), half8((const uint16_t *)w + i + 8, F16C))
                : load16((const float *)w + i);
}

/* Where weight i of a stream of floats (HALF 0) or halves (HALF 1) is. */
RK_INLINE const void *wpointer(const void *w, size_t i, int HALF) {
    return HALF ? (const void *)((const uint16_t *)w + i) : (const void *)((const float *)w + i);
}

/* Where gate g's RK_UNITS weights for k of unit block u start in the packed recurrent weights (G gates,
   H units): a half of panel (u·G + g) / 2. */
RK_INLINE size_t recurrent_weight(size_t G, size_t H, size_t u, size_t g, size_t k) {
    size_t n = (u * G + g) * RK_UNITS;
    return n / GEMM_NR * GEMM_NR * H + k * GEMM_NR + n % GEMM_NR;
}

/* ---- the tile ------------------------------------------------------------------------------ */

/* The largest tile of any variant. Tile arrays have these fixed sizes (not MR × NV, which would make
   them variable-length arrays): the compiler keeps fixed arrays in registers, and the loops over
   them are unrolled completely so every index is a constant. */
enum { TILE_MAX_MR = 12, TILE_MAX_NV = 4 };
/* X(height) for every tile height below the tallest, 2 to TILE_MAX_MR - 1: the cases of a switch that
   takes a run-time row count to a tile whose height is a constant (gemm_last_rows, step_tile_of). */
#define RK_SHORT_TILE_HEIGHTS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
_Static_assert(TILE_MAX_MR == 12, "RK_SHORT_TILE_HEIGHTS needs every height from 2 to TILE_MAX_MR - 1");

/* The most rows of a tile over PANELS panels whose sums, PANELS weight vectors and a row's value fit
   REGISTERS vectors of 16 floats (0 past TILE_MAX_NV panels): a product's short tiles
   (short_tile_panels) and a step's wide tiles (wide_tile_rows). */
RK_INLINE int rows_in_registers(int PANELS, int REGISTERS) {
    return PANELS <= TILE_MAX_NV ? (REGISTERS - PANELS - 1) / PANELS : 0;
}

/* Every product here is made of one tile: acc[r][v] (+)= Σ_{k < kc} rows[r][k] · w[v][16k ..< 16k+16],
   MR rows times NV panels of 16 weights per k (MR, NV, HALF, F16C, PREFETCH constants after
   inlining). The AVX2 variant runs 6 × 1 (12 registers of 8 floats), the AVX-512 one 12 × 2 (24 of
   16). PREFETCH > 0 asks for each panel's weights that many k ahead: for weights streamed from
   memory once per use (a step's, larger than the caches), where one panel at a time is too few
   streams for the hardware prefetcher to keep the memory busy. */
RK_INLINE void tile_micro(int MR, int NV, int HALF, int F16C, int PREFETCH, size_t kc, const float *const *rows,
                          const void *const *w, v16f acc[TILE_MAX_MR][TILE_MAX_NV]) {
    for (size_t k = 0; k < kc; k++) {
        v16f weights[TILE_MAX_NV];
        RK_UNROLL for (int v = 0; v < NV; v++) weights[v] = wload16(w[v], k * GEMM_NR, HALF, F16C);
        if (PREFETCH > 0)
            RK_UNROLL for (int v = 0; v < NV; v++) __builtin_prefetch(wpointer(w[v], (k + PREFETCH) * GEMM_NR, HALF));
        RK_UNROLL for (int r = 0; r < MR; r++) {
            v16f x = splat16(rows[r][k]);
            RK_UNROLL for (int v = 0; v < NV; v++) acc[r][v] += x * weights[v];
        }
    }
}

#if RK_HAVE_AVX2_VARIANT
#include <immintrin.h>
#define RK_AVX512_BF16 __attribute__((target("avx512f,avx512vl,avx512bf16,avx2,fma,f16c")))
/* *acc ← VDPBF16PS(*acc, *x, *w). Not always_inline: inlined only into gemm_dpbf16, compiled for
   AVX-512 BF16, and a call never made in the other variants (through pointers: a 512-bit vector
   argument would change the ABI of their calls). */
RK_AVX512_BF16 static inline void dot_pairs_native(v16f *acc, const v16u *x, const v16u *w) {
    *acc = (v16f)_mm512_dpbf16_ps((__m512)*acc, (__m512bh)*x, (__m512bh)*w);
}
#else
static inline void dot_pairs_native(v16f *acc, const v16u *x, const v16u *w) { (void)acc, (void)x, (void)w; }
#endif

RK_INLINE float float_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The tile of bfloat16 products (rk_product's X16, P16): tile_micro's, over `pairs` pairs of k, each
   row's pair (two bfloat16 in 32 bits) against NV panels' 16 pairs. DPBF16: with the instruction;
   else the same sums as it computes them (the odd k's product first; products of two bfloat16 are
   exact in float32, so each += rounds once, fused or not). */
RK_INLINE void tile_micro_bf16(int MR, int NV, int DPBF16, size_t pairs, const uint16_t *const *rows,
                               const uint16_t *const *w, v16f acc[TILE_MAX_MR][TILE_MAX_NV]) {
    for (size_t k = 0; k < pairs; k++) {
        v16u weights[TILE_MAX_NV], odd[TILE_MAX_NV], even[TILE_MAX_NV];
        RK_UNROLL for (int v = 0; v < NV; v++) {
            weights[v] = *(const v16u_unaligned *)(w[v] + k * 2 * GEMM_NR);
            odd[v] = weights[v] & 0xffff0000u;
            even[v] = weights[v] << 16;
        }
        RK_UNROLL for (int r = 0; r < MR; r++) {
            uint32_t pair;
            memcpy(&pair, rows[r] + 2 * k, sizeof pair);
            if (DPBF16) {
                v16u x = pair - (v16u){0};
                RK_UNROLL for (int v = 0; v < NV; v++) dot_pairs_native(&acc[r][v], &x, &weights[v]);
            } else {
                v16f x_odd = splat16(float_bits(pair & 0xffff0000u)), x_even = splat16(float_bits(pair << 16));
                RK_UNROLL for (int v = 0; v < NV; v++) {
                    acc[r][v] += x_odd * (v16f)odd[v];
                    acc[r][v] += x_even * (v16f)even[v];
                }
            }
        }
    }
}

/* ---- matrix product ----------------------------------------------------------------------- */

/* Rows whose stride is a multiple of 4 KiB all sit in one set of the 8-way L1 data cache, so a tile of
   12 of them evicts its own rows between one k and the next: x in a step that projects its own input
   (rows T·I floats apart, as at T = 100 with I = 256 or T = 50 with I = 512) and h_prev when H is a
   multiple of 1024. One core, a product of 32 rows × 2048 columns × K = 512: 108 GFLOP/s with rows
   100 KiB apart, 116 with them contiguous; K = 1024 with rows 4 KiB apart 104–106, 115 with 16 floats
   more between them. A product step over ALIASING_MIN_ROWS rows or more reads such rows from a copy in
   its workspace, COPY_PAD floats longer a row, made once per thread and step (rk_step_prepare_rows;
   bench/ab, same bits: LSTM-512 B = 64 0.956–0.967, LSTM-256 B = 32 0.962–0.987, GRU-512 B = 64 0.964,
   RNN-512 B = 64 0.899, LSTM-1024 B = 32 0.918). Tiles of fewer rows (AVX2's 6, the short 4) do not
   fill the set's 8 ways; AVX-512's 8-row tiles (gemm_body) just fill them, and were measured faster
   without copies at B = 8 with such rows (LSTM-256 T = 200: x rows 200 KiB apart); copies for them
   were slower (ALIASING_MIN_ROWS 8: LSTM-256 B = 8 T = 200 1.037, bidirectional LSTM-256 B = 8
   1.024). Other products (the input projection ahead, whose
   rows are x's, I floats apart) copy a tall tile's rows for each k block and panel block instead
   (gemm_row_tiles; bench/ab, same bits: LSTM-1024 B = 1 0.90–0.94, B = 32 0.94, GRU-512 with
   I = 1024 at B = 8 0.89). */
enum { ALIASING_STRIDE_BYTES = 4096, ALIASING_MIN_ROWS = 12, COPY_PAD = 16 };

/* A tile's copied row: one k block, padded. */
enum { COPIED_ROW = GEMM_KC_JOINED + COPY_PAD };

RK_INLINE int rows_alias(size_t rows, size_t ld) {
    return rows >= ALIASING_MIN_ROWS && ld * sizeof(float) % ALIASING_STRIDE_BYTES == 0;
}

static void copy_rows(size_t M, size_t K, const float *X, size_t ldx, float *Y, size_t ldy) {
    for (size_t m = 0; m < M; m++) memcpy(Y + m * ldy, X + m * ldx, K * sizeof(float));
}

/* Where row m of the product goes. */
RK_INLINE float *product_row(const rk_product *p, size_t m) {
    return p->Y + (m / p->group) * p->ldy_group + (m % p->group) * p->ldy;
}

/* Rows m ..< m+MR of panels q ..< q+NV, k in k0 ..< k0+kc (over K + K2 when the product has second
   operands): starting from the bias or `start` (k0 = 0) or Y (a later k block). BF16: the product in
   bfloat16 (k0 even), with the instruction when DPBF16. */
RK_INLINE void gemm_tile(int MR, int NV, int BF16, int DPBF16, const rk_product *p, size_t m, size_t q, size_t k0,
                         size_t kc, const float *rows_copy) {
    const void *w[TILE_MAX_NV];
    size_t n0[TILE_MAX_NV], width[TILE_MAX_NV];
    RK_UNROLL for (int v = 0; v < NV; v++) {
        if (BF16) w[v] = p->P16 + (q + v) * GEMM_NR * rk_bf16_row_size(p->K) + k0 * GEMM_NR;
        else w[v] = p->P + (q + v) * GEMM_NR * p->K + k0 * GEMM_NR;
        n0[v] = (q + v) * GEMM_NR;
        width[v] = p->N - n0[v] < GEMM_NR ? p->N - n0[v] : GEMM_NR;
    }
    const void *rows[TILE_MAX_MR];
    float *out[TILE_MAX_MR];
    v16f acc[TILE_MAX_MR][TILE_MAX_NV];
    RK_UNROLL for (int r = 0; r < MR; r++) {
        size_t row = m + (size_t)r;
        if (BF16) rows[r] = p->X16 + row * p->ldx + k0;
        else if (rows_copy) rows[r] = rows_copy + (size_t)r * COPIED_ROW;
        else rows[r] = p->X + row * p->ldx + k0;
        out[r] = product_row(p, row);
        const float *first = k0 > 0 ? out[r] : p->start ? p->start + row * p->ldstart : NULL;
        RK_UNROLL for (int v = 0; v < NV; v++) {
            if (first) acc[r][v] = load16_n(first + n0[v], width[v]);
            else acc[r][v] = p->bias ? load16_n(p->bias + n0[v], width[v]) : splat16(0.0f);
        }
    }
    size_t first_kc = k0 >= p->K ? 0 : p->K - k0 < kc ? p->K - k0 : kc;
    if (BF16) tile_micro_bf16(MR, NV, DPBF16, ceil_div(kc, 2), (const uint16_t *const *)rows, (const uint16_t *const *)w, acc);
    else if (first_kc > 0) tile_micro(MR, NV, 0, 0, 0, first_kc, (const float *const *)rows, w, acc);
    if (!BF16 && first_kc < kc) {
        size_t k2 = k0 + first_kc - p->K;
        RK_UNROLL for (int v = 0; v < NV; v++) w[v] = p->P2 + (q + v) * GEMM_NR * p->K2 + k2 * GEMM_NR;
        RK_UNROLL for (int r = 0; r < MR; r++) rows[r] = p->X2 + (m + (size_t)r) * p->ldx2 + k2;
        tile_micro(MR, NV, 0, 0, 0, kc - first_kc, (const float *const *)rows, w, acc);
    }
    RK_UNROLL for (int r = 0; r < MR; r++)
        RK_UNROLL for (int v = 0; v < NV; v++) store16_n(out[r] + n0[v], acc[r][v], width[v]);
}

/* Rows m_begin ..< m_end (a multiple of MR) of panels q0 ..< q_end in tiles of MR rows, each tile's
   rows through all the panels, NV at a time; a tall tile of rows that alias in L1 reads its rows' k
   block from a per-thread copy. */
RK_INLINE void gemm_row_tiles(int MR, int NV, int BF16, int DPBF16, const rk_product *p, size_t m_begin, size_t m_end,
                              size_t q0, size_t q_end, size_t k0, size_t kc) {
    int copies = !BF16 && p->K2 == 0 && rows_alias((size_t)MR, p->ldx);
    /* [MR, COPIED_ROW]: k0 ..< k0+kc of each row. Per thread, not on the stack: the step functions inline
       many of these loops, and the pool's threads have 256 KiB stacks. */
    static _Thread_local float copy[TILE_MAX_MR * COPIED_ROW];
    for (size_t m = m_begin; m < m_end; m += MR) {
        size_t q = q0;
        const float *rows_copy = NULL;
        if (copies) copy_rows((size_t)MR, kc, p->X + m * p->ldx + k0, p->ldx, copy, COPIED_ROW), rows_copy = copy;
        for (; q + NV <= q_end; q += NV) gemm_tile(MR, NV, BF16, DPBF16, p, m, q, k0, kc, rows_copy);
        for (; q < q_end; q++) gemm_tile(MR, 1, BF16, DPBF16, p, m, q, k0, kc, rows_copy);
    }
}

/* Rows m_begin ..< m_end (MR of them) of panels q0 ..< q_end: WIDE panels at a time, then the rest NV at
   a time, as any rows' tiles take them. */
RK_INLINE void gemm_wide_row_tiles(int MR, int WIDE, int NV, int BF16, int DPBF16, const rk_product *p, size_t m_begin,
                                   size_t m_end, size_t q0, size_t q_end, size_t k0, size_t kc) {
    size_t rest = q0 + (q_end - q0) / (size_t)WIDE * (size_t)WIDE;
    gemm_row_tiles(MR, WIDE, BF16, DPBF16, p, m_begin, m_end, q0, rest, k0, kc);
    gemm_row_tiles(MR, NV, BF16, DPBF16, p, m_begin, m_end, rest, q_end, k0, kc);
}

/* A lone row takes LONE_NV panels at a time, so that as many sums are in flight as cover the
   multiply-add's latency (with NV = 2 a one-row step in bfloat16 read its weights at half the rate of 4). */
enum { LONE_NV = 4 };

/* Panels a float32 tile of R rows after the tall tiles takes at once: twice the variant's NV when the
   R·2·NV sums, the 2·NV weight vectors and a row's value fit its REGISTERS (vectors of 16 floats;
   AVX-512: up to 6 rows × 4 panels), else NV. With NV panels such a tile keeps 2·R sums: on a CPU that
   completes two 16-float multiply-adds a cycle, with a latency of 4, that is too few for R ≤ 4 and
   just enough for 5–6, and a band of 4–6 rows (pool.c) streams its weights from L2 at half the rate
   of a tall tile. bench/ab on an Intel Xeon VM (family 6 model 207, two 512-bit multiply-adds a cycle),
   a switch in one process, same bits: LSTM-256 B = 8 T = 200 (bands of 4) 0.85, LSTM-256 I = 128
   B = 8 0.86, LSTM-256 B = 12 (bands of 6) 0.89, RNN-256 B = 12 0.87; B = 12 in one product step
   level. Products in bfloat16 keep NV: their tiles hold each row's pair in two registers. */
RK_INLINE int short_tile_panels(int R, int NV, int REGISTERS, int BF16) {
    return !BF16 && R <= rows_in_registers(2 * NV, REGISTERS) ? 2 * NV : NV;
}

/* Rows m_begin ..< m_end, at most MR, in one tile of exactly that many rows (a constant in each case, so
   the tile's sums stay in registers), which reads each weight once for all of them, over
   short_tile_panels panels; one row in tiles of LONE_NV panels. Until 2026-12-05 a product's rows after
   its tall tiles went in tiles of the variant's short height (AVX-512: pairs of 4-row tiles, then tiles
   of 4, then a lone row), whose last tile computed rows past the end and dropped them: 8 rows for 6, 12
   for 9 or 10, 16 for 14. */
RK_INLINE void gemm_last_rows(int MR, int NV, int REGISTERS, int BF16, int DPBF16, const rk_product *p, size_t m_begin,
                              size_t m_end, size_t q0, size_t q_end, size_t k0, size_t kc) {
#define RK_LAST_ROWS(R) \
    case R: \
        if (R <= MR) \
            gemm_wide_row_tiles(R, short_tile_panels(R, NV, REGISTERS, BF16), NV, BF16, DPBF16, p, m_begin, m_end, q0, \
                                q_end, k0, kc); \
        break;
    switch (m_end - m_begin) {
    case 1: gemm_wide_row_tiles(1, LONE_NV, NV, BF16, DPBF16, p, m_begin, m_end, q0, q_end, k0, kc); break;
        RK_SHORT_TILE_HEIGHTS(RK_LAST_ROWS)
    }
#undef RK_LAST_ROWS
}

/* The fewest rows a tile takes after a tall one: 2 or 3 rows left after the tall tiles go with the last
   tall tile's rows into two tiles of about half as many, since a tile of 2 rows keeps too few sums to
   cover the multiply-add's latency (AVX2's: 4 sums of 8 floats, where two pipes of latency 4 need 8). */
enum { LAST_TILE_MIN_ROWS = 4 };

/* Where the tall tiles of a product's `rows` rows end, counted from its first: the rows after them go
   in one or two tiles of their own height (gemm_last_rows, LAST_TILE_MIN_ROWS). */
RK_INLINE size_t tall_tile_rows(size_t rows, size_t MR) {
    size_t whole = rows / MR, rest = rows % MR;
    return whole > 0 && rest > 1 && rest < LAST_TILE_MIN_ROWS ? (whole - 1) * MR : whole * MR;
}

/* k in blocks of GEMM_KC, the last one longer rather than short (GEMM_KC_JOINED); panels in blocks of at most
   GEMM_PANEL_BLOCK_BYTES of weights, which stay in L2 while every row of the range passes through them, a
   tile's MR rows at a time, the rows' k block staying in L1 across the block's panels, and the rows after the
   tall tiles in one or two tiles of their own (tall_tile_rows). (Rows in blocks of 96 outside, all the panels
   inside, streamed every panel from L3 for each block: 15–25% slower on one core here.) Each k block after
   the first reloads the tiles' sums from Y, which has left L1 by then: k blocks of 512 rather than 256 were
   2–7% faster on the Zen 4 VM (bench/ab, same bits: LSTM-512 B = 64 0.971–0.974, B = 1 0.975, GRU-512 B = 64
   0.975, B = 1 0.934, RNN-512 B = 64 0.972, LSTM-1024 B = 1 0.952–0.974, LSTM-2048 B = 4 0.976, with AVX2's
   tiles LSTM-512 B = 64 0.950; K = 256 the same), where 128 was slower (LSTM-256 B = 32 1.14) and 1024 no
   faster than 512. A short last block cost a reload and a store of every sum for few multiply-adds; K of
   513–767 in one block rather than 512 and the rest, on the Zen 4 VM (bench/ab, same bits, passes back to
   back; 2026-12-07): LSTM-243 I = 724 B = 128 T = 12 (a random draw's, 1.13 behind ONNX Runtime) 0.942–0.963,
   GRU-700 B = 32 0.951–0.963, LSTM-300 I = 600 B = 64 0.978, LSTM-320 B = 32 0.981, RNN-640 B = 64 0.987; at
   1–4 rows level (LSTM-630 B = 1 0.995, LSTM-724 B = 4 1.002); AVX2's tiles GRU-700 B = 32 0.961, LSTM-243
   0.994. LSTM-512 B = 64, which it leaves alone, 0.983 beside them. */
enum { GEMM_PANEL_BLOCK_BYTES = 384 * 1024 };
RK_INLINE void gemm_body(int MR, int NV, int REGISTERS, int BF16, int DPBF16, const rk_product *p, size_t row_begin, size_t row_end,
                         size_t panel_begin, size_t panel_end) {
    size_t tall_end = row_begin + tall_tile_rows(row_end - row_begin, (size_t)MR);
    size_t last_rows = row_end - tall_end, middle = last_rows > (size_t)MR ? tall_end + (last_rows + 1) / 2 : row_end;
    size_t weight_bytes = BF16 ? sizeof(uint16_t) : sizeof(float), K = p->K + p->K2;
    for (size_t k0 = 0, kc; k0 < K || k0 == 0; k0 += kc) {
        kc = K - k0 < GEMM_KC_JOINED ? K - k0 : GEMM_KC;
        size_t block = GEMM_PANEL_BLOCK_BYTES / ((kc > 0 ? kc : 1) * GEMM_NR * weight_bytes) / NV * NV;
        block = block > (size_t)NV ? block : (size_t)NV;
        for (size_t q0 = panel_begin; q0 < panel_end; q0 += block) {
            size_t q_end = panel_end - q0 < block ? panel_end : q0 + block;
            gemm_row_tiles(MR, NV, BF16, DPBF16, p, row_begin, tall_end, q0, q_end, k0, kc);
            gemm_last_rows(MR, NV, REGISTERS, BF16, DPBF16, p, tall_end, middle, q0, q_end, k0, kc);
            gemm_last_rows(MR, NV, REGISTERS, BF16, DPBF16, p, middle, row_end, q0, q_end, k0, kc);
        }
        if (K == 0) break;
    }
}

/* ---- fused recurrent step ----------------------------------------------------------------- */

RK_INLINE int row_active(const rk_step *s, size_t b) { return !s->lengths || s->t < s->lengths[b]; }

/* The step's recurrent weights: halves (HALF 1) or floats (HALF 0), for wload8 and wpointer. */
RK_INLINE const void *step_weights(const rk_step *s, int HALF) {
    return HALF ? (const void *)s->half_weights : (const void *)s->weights;
}

/* How many of H's units unit block u holds: RK_UNITS, fewer in the last block when H is not a multiple. */
RK_INLINE size_t block_units(size_t H, size_t u) { return H - u * RK_UNITS < RK_UNITS ? H - u * RK_UNITS : RK_UNITS; }

/* Where gate g of unit block u is in a row of gates (gx, or a product's gates from panel 0): the
   order of the packed weights' rows, so a block's G gates are side by side. */
RK_INLINE size_t gate_column(int G, size_t u, int g) { return (u * (size_t)G + (size_t)g) * RK_UNITS; }

/* The most gates a cell has (lstm's 4). A unit block's gates are held in arrays of this fixed size, not
   [G]: inlined into a loop, an array of G (a variable-length array to the compiler, though G is a
   constant by then) stays a stack allocation made and freed every iteration, and the gates went through
   it (stored as 16 floats, loaded back as 8, which the store cannot forward): the product step's gate
   math took 12% of LSTM-256 B = 8's samples, 7% with fixed arrays (bench/ab on the Zen 4 VM, same bits,
   with step_rows' arrays fixed too: LSTM-256 B = 32 0.944, B = 8 T = 200 0.970–0.984 against an A/A run's
   0.988, B = 1 0.951, LSTM-64 B = 8 0.943, RNN-256 B = 1 0.958, LSTM-300 B = 3 0.979, GRU-512 B = 1 0.983,
   B = 64 0.993; LSTM-100 B = 5 1.011–1.026 against A/A 1.005–1.009, LSTM-64 B = 4 1.003). */
enum { MAX_GATES = 4 };

/* What gate g's sum goes through: lstm's σ(i), σ(f), tanh(g), σ(o); gru's σ(r), σ(z), and its n gate's
   recurrent sum as it is (the activation comes after r gates it, step_finish); an rnn's tanh or relu.
   gate_activation and gate_activation16 both read it, so the two widths cannot disagree on a gate. */
typedef enum { GATE_SIGMOID, GATE_TANH, GATE_RELU, GATE_AS_IS } gate_kind;

RK_INLINE gate_kind gate_kind_of(int cell, int g) {
    switch (cell) {
    case RK_CELL_LSTM: return g == 2 ? GATE_TANH : GATE_SIGMOID;
    case RK_CELL_GRU: return g == 2 ? GATE_AS_IS : GATE_SIGMOID;
    case RK_CELL_RNN_RELU: return GATE_RELU;
    default: return GATE_TANH;
    }
}

/* Gate g's activation from its sum (gate_kind_of). */
RK_INLINE v8f gate_activation(int cell, int g, v8f sum) {
    switch (gate_kind_of(cell, g)) {
    case GATE_SIGMOID: return vsigmoid(sum);
    case GATE_TANH: return vtanh(sum);
    case GATE_RELU: return vrelu(sum);
    default: return sum;
    }
}

/* gate_activation over 16 sums whose first 8 are gate g_low's and last 8 gate g_high's: one tanh of
   all 16 lanes, each σ lane's sum halved first and its tanh halved and raised by ½ after, as vsigmoid
   computes it, and the lanes of a sum that goes on as it is (gru's n gate) left unchanged. The same
   operations lane for lane as gate_activation on each half, so the same bits. A relu cell's gates are
   all relu. */
RK_INLINE v16f gate_activation16(int cell, int g_low, int g_high, v16f sum) {
    gate_kind low = gate_kind_of(cell, g_low), high = gate_kind_of(cell, g_high);
    if (low == GATE_RELU) return vrelu16(sum);
    v16f scale = join16(splat(low == GATE_SIGMOID ? 0.5f : 1.0f), splat(high == GATE_SIGMOID ? 0.5f : 1.0f));
    v16f t = vtanh16(scale * sum);
    v16f activated = select16(scale < splat16(1.0f), splat16(0.5f) * t + splat16(0.5f), t);
    if (low != GATE_AS_IS && high != GATE_AS_IS) return activated;
    v16f as_is = join16(splat(low == GATE_AS_IS ? 1.0f : 0.0f), splat(high == GATE_AS_IS ? 1.0f : 0.0f));
    return select16(as_is > splat16(0.0f), sum, activated);
}

/* A product step's row of gate sums, `columns` of them (a multiple of 16) from gate FIRST of a block,
   replaced by their activations 16 at a time; a chunk's gates are constants, repeating every G/2 chunks
   (G even) or G (odd: gru's [r z], [n r], [z n] from r). The loop 8 at a time over every row, block and
   gate took 9% of LSTM-256 B = 32's time, as measured by leaving it out (3% of LSTM-512 B = 64's); this
   one, a switch in one process on an Intel Xeon VM (family 6 model 207), same bits: LSTM-256 B = 32 0.978,
   LSTM-128 B = 128 0.978, RNN-512 B = 64 0.981, GRU-512 B = 64 0.990, LSTM-512 B = 64 0.998. The rest of
   the activations' time is the division's (perf: the samples fall just after `vdivps`), which a wider
   vector does not speed up. */
RK_INLINE void activate_gates_from(int cell, int G, int FIRST, float *row, size_t columns) {
    const int PERIOD = G % 2 == 0 ? G / 2 : G;
    for (size_t c = 0; c < columns; c += (size_t)PERIOD * 16)
        RK_UNROLL for (int i = 0; i < PERIOD; i++) {
            float *chunk = row + c + (size_t)i * 16;
            if (c + (size_t)i * 16 < columns)
                store16(chunk, gate_activation16(cell, (FIRST + 2 * i) % G, (FIRST + 2 * i + 1) % G, load16(chunk)));
        }
}

/* activate_gates_from with the row's first gate, `first` (< G), a constant in each case. */
RK_INLINE void activate_gates(int cell, int G, int first, float *row, size_t columns) {
    _Static_assert(MAX_GATES == 4, "activate_gates needs a case for every first gate");
    switch (first) {
    case 0: activate_gates_from(cell, G, 0, row, columns); break;
    case 1: if (G > 1) activate_gates_from(cell, G, 1, row, columns); break;
    case 2: if (G > 2) activate_gates_from(cell, G, 2, row, columns); break;
    case 3: if (G > 3) activate_gates_from(cell, G, 3, row, columns); break;
    }
}

/* The end of row b's step for units j ..< j+n from its gates' activations (gate_activation): where the
   row steps, the rest of the gate math, writing h (state and output) and c; where it does not, h carried
   over and c and y left as they are. gx_n: gru's input part of its n gate for these units (unused by the
   other cells). */
RK_INLINE void step_finish(const rk_step *s, int cell, const v8f *gate, size_t b, size_t j, size_t n, const float *gx_n) {
    size_t H = s->hidden;
    if (!row_active(s, b)) {
        memcpy(s->h_next + b * H + j, s->h_prev + b * H + j, n * sizeof(float));
        return;
    }
    v8f h;
    switch (cell) {
    case RK_CELL_LSTM: {
        float *c = s->c + b * H + j;
        v8f cn = gate[1] * load_n(c, n) + gate[0] * gate[2];
        store_n(c, cn, n);
        h = gate[3] * vtanh(cn);
        break;
    }
    case RK_CELL_GRU: {
        v8f z = gate[1];
        v8f candidate = vtanh(load8(gx_n) + gate[0] * gate[2]);
        h = (splat(1.0f) - z) * candidate + z * load_n(s->h_prev + b * H + j, n);
        break;
    }
    default: h = gate[0]; break;
    }
    store_n(s->h_next + b * H + j, h, n);
    if (s->y) store_n(s->y + b * s->ldy + j, h, n);
}

/* The end of row b's sums for units j ..< j+n, G gates: their activations, then step_finish. */
RK_INLINE void step_epilogue(const rk_step *s, int cell, int G, const v8f *acc, size_t b, size_t j, size_t n,
                             const float *gx_n) {
    v8f gate[MAX_GATES];
    RK_UNROLL for (int g = 0; g < G; g++) gate[g] = gate_activation(cell, g, acc[g]);
    step_finish(s, cell, gate, b, j, n, gx_n);
}

/* gru's input part of its n gate at `column` of a row of input parts; NULL for the other cells. */
RK_INLINE const float *gru_n_input(int cell, const float *row, size_t column) {
    return cell == RK_CELL_GRU ? row + column : NULL;
}

/* gru's n gate's recurrent sum for units j ..< j+n starts from b_hn (zero without it). */
RK_INLINE v8f gru_n_start(const rk_step *s, size_t j, size_t n) { return s->bias ? load_n(s->bias + j, n) : splat(0.0f); }

/* Where the sum of gate g of unit block u (units j ..< j+n) starts in a row whose input part is
   `input` (gate columns as gx's): the input part, except gru's n gate, whose recurrent product is
   gated by r apart from gx_n. */
RK_INLINE v8f gate_start(const rk_step *s, int cell, int G, const float *input, int g, size_t u, size_t j, size_t n) {
    if (cell == RK_CELL_GRU && g == 2) return gru_n_start(s, j, n);
    return load8(input + gate_column(G, u, g));
}

/* How far ahead (in k) a step's tiles and row groups ask for their weights: 32 rows of a panel, 2 KiB of float
   weights (32 lines), 1 KiB of halves. A step over a few rows reads a block's panels one or two at a time, too few
   streams for the hardware prefetcher to keep weights larger than the caches coming at the memory's rate (bench/ab,
   same bits, with whole-of-k passes below: LSTM-1024 B = 4 0.83, B = 5 0.81, B = 8 0.82, B = 2 0.86, LSTM-2048 B = 4
   0.85, GRU-1024 B = 4 0.86, LSTM-512 B = 4, 6 0.86; weights in cache 0.98–1.05, as an A/A run). The lone row's 4–8
   streams need no help. */
enum { STEP_PREFETCH_K = 32 };

/* The most rows and unit blocks a row group takes (an rnn's 6 rows, a lone row's 8 blocks), the sizes of
   its fixed arrays (MAX_GATES). */
enum { ROW_GROUP_MAX_ROWS = 6, ROW_GROUP_MAX_BLOCKS = 8 };

/* Rows b0 ..< b0+MR of unit blocks u ..< u+NB, G gates, the sums over k0 ..< k1 of H; MR and NB
   constants after inlining. Sums start from gx (k0 = 0) or the partial sums, and end in the gate math
   (k1 = H) or the partial sums. Every row's sums run over k in order whatever MR and NB are, so a row's
   result never depends on which other rows share its batch. */
RK_INLINE void step_rows(const rk_step *s, int cell, int G, int HALF, int F16C, int PREFETCH, int MR, int NB, size_t u,
                         size_t b0, size_t k0, size_t k1) {
    size_t H = s->hidden;
    const float *h[ROW_GROUP_MAX_ROWS];
    v8f acc[ROW_GROUP_MAX_ROWS][ROW_GROUP_MAX_BLOCKS][MAX_GATES];
    RK_UNROLL for (int r = 0; r < MR; r++) {
        size_t b = b0 + (size_t)r;
        h[r] = s->h_prev + b * H;
        const float *gx = s->gx + b * s->ldgx;
        RK_UNROLL for (int i = 0; i < NB; i++) {
            size_t j = (u + i) * RK_UNITS, n = block_units(H, u + i);
            const float *partial = s->partial + (b * 2 + (u + i) % 2) * G * RK_UNITS;
            RK_UNROLL for (int g = 0; g < G; g++)
                acc[r][i][g] = k0 > 0 ? load8(partial + g * RK_UNITS) : gate_start(s, cell, G, gx, g, u + i, j, n);
        }
    }
    const void *weights = step_weights(s, HALF);
    for (size_t k = k0; k < k1; k++) {
        /* One per panel: a block's gates g and g + 1 share one, or g + 1 shares g + 2's. An rnn's pair of
           blocks asks twice when both are in one panel; testing for that in the loop was slower (bench/ab,
           RNN-256 B = 4 1.04–1.13, RNN-512 B = 8 1.06). */
        if (PREFETCH > 0)
            RK_UNROLL for (int i = 0; i < NB; i++)
                RK_UNROLL for (int g = 0; g < G; g += 2)
                    __builtin_prefetch(wpointer(weights, recurrent_weight(G, H, u + i, g, k + PREFETCH), HALF));
        RK_UNROLL for (int r = 0; r < MR; r++) {
            v8f x = splat(h[r][k]);
            RK_UNROLL for (int i = 0; i < NB; i++)
                RK_UNROLL for (int g = 0; g < G; g++)
                    acc[r][i][g] += x * wload8(weights, recurrent_weight(G, H, u + i, g, k), HALF, F16C);
        }
    }
    RK_UNROLL for (int r = 0; r < MR; r++) {
        size_t b = b0 + (size_t)r;
        RK_UNROLL for (int i = 0; i < NB; i++) {
            size_t j = (u + i) * RK_UNITS, n = block_units(H, u + i);
            if (k1 < H) {
                float *partial = s->partial + (b * 2 + (u + i) % 2) * G * RK_UNITS;
                RK_UNROLL for (int g = 0; g < G; g++) store8(partial + g * RK_UNITS, acc[r][i][g]);
            } else {
                step_epilogue(s, cell, G, acc[r][i], b, j, n, gru_n_input(cell, s->gx + b * s->ldgx, gate_column(G, u + i, 2)));
            }
        }
    }
}

/* Rows b0 ..< b0+rows, 2 ≤ rows < MOST_ROWS, in one row group of exactly that many rows (a constant in
   each case, so its sums stay in registers). Until 2026-12-06 the rows after an rnn's whole groups of 6
   (or gru's of 3) went in a group of the full height that computed rows past the end and dropped them:
   6 rows for 2, three times the multiply-adds. bench/ab on an Intel Xeon VM (family 6 model 207; a switch
   in one process, passes back to back, same bits): RNN-128 B = 2 0.82, B = 3 0.90, B = 4 0.92, B = 5
   0.95, RNN-200 B = 3 0.83, relu RNN-64 B = 5 0.93; with the AVX2 variant RNN-512 B = 2 0.76, RNN-840
   I = 560 B = 3 0.80, RNN-256 B = 5 0.93, relu RNN-300 B = 4 0.90; B = 8–11 level. */
RK_INLINE void step_rows_of(const rk_step *s, int cell, int G, int HALF, int F16C, int PREFETCH, int MOST_ROWS, int NB,
                            size_t u, size_t b0, size_t rows, size_t k0, size_t k1) {
#define RK_ROWS_OF(MR) \
    case MR: \
        if (MR < MOST_ROWS) step_rows(s, cell, G, HALF, F16C, PREFETCH, MR, NB, u, b0, k0, k1); \
        break;
    switch (rows) {
        RK_SHORT_TILE_HEIGHTS(RK_ROWS_OF)
    }
#undef RK_ROWS_OF
}

/* Unit blocks a step tile takes, so that its gates fill whole panels of 16: one when G is even (G/2
   panels), a pair from an even block when G is odd (gru: two blocks' 6 gates, 3 panels). */
RK_INLINE int tile_blocks(int G) { return G % 2 == 0 ? 1 : 2; }

/* Where the sum of a tile's gate g starts (g ≥ G: the next block's gate g − G), u its first block and
   gx the row's input part. */
RK_INLINE v8f tile_gate_start(const rk_step *s, int cell, int G, const float *gx, int g, size_t u) {
    size_t block = u + (size_t)(g / G);
    return gate_start(s, cell, G, gx, g % G, block, block * RK_UNITS, block_units(s->hidden, block));
}

/* Rows b0 ..< b0+MR of unit blocks u ..< u+BLOCKS (tile_blocks(G), or 2 for an even G's wide tiles;
   u even when G is odd), the sums over k0 ..< k1, as matrix-product tiles over the blocks' gate pairs
   (a pair is one panel of 16 weights per k), NV pairs per tile. Sums start and end as in step_rows,
   in the same partial-sum layout (a row's two blocks side by side: a tile of two blocks holds its
   gates in order from the row's first slot), and run over k in the same order: a row's numbers are
   the same whichever path takes it. */
RK_INLINE void step_tile(const rk_step *s, int cell, int G, int HALF, int F16C, int MR, int NV, int BLOCKS, size_t u,
                         size_t b0, size_t k0, size_t k1) {
    const int GATES = BLOCKS * G;
    size_t H = s->hidden;
    const float *rows[TILE_MAX_MR];
    float *partial[TILE_MAX_MR];
    RK_UNROLL for (int r = 0; r < MR; r++) {
        rows[r] = s->h_prev + (b0 + r) * H + k0;
        partial[r] = s->partial + ((b0 + r) * 2 + (BLOCKS == 2 ? 0 : u % 2)) * G * RK_UNITS;
    }
    for (int pair = 0; pair < GATES / 2; pair += NV) {
        const void *w[TILE_MAX_NV];
        v16f acc[TILE_MAX_MR][TILE_MAX_NV];
        RK_UNROLL for (int v = 0; v < NV; v++) {
            size_t first = recurrent_weight(G, H, u, 2 * (pair + v), k0);
            w[v] = wpointer(step_weights(s, HALF), first, HALF);
        }
        RK_UNROLL for (int r = 0; r < MR; r++) {
            const float *gx = s->gx + (b0 + r) * s->ldgx;
            RK_UNROLL for (int v = 0; v < NV; v++) {
                int g = 2 * (pair + v);
                acc[r][v] = k0 > 0 ? load16(partial[r] + g * RK_UNITS)
                                   : join16(tile_gate_start(s, cell, G, gx, g, u), tile_gate_start(s, cell, G, gx, g + 1, u));
            }
        }
        tile_micro(MR, NV, HALF, F16C, STEP_PREFETCH_K, k1 - k0, rows, w, acc);
        /* The last k chunk's sums leave as their activations, 16 at a time from the registers, as a product
           step's do (activate_gates). Against step_epilogue's 8 at a time after the stores (Intel Xeon VM,
           a switch in one process, same bits): LSTM-256 B = 2 0.97, B = 8 0.98, LSTM-512 B = 4 0.98,
           LSTM-300 B = 3 0.98, B = 5 0.99, LSTM-200 B = 14 0.96; GRU level (GRU-256 B = 6, GRU-512 B = 4).
           A lone row's blocks joined in pairs the same way were slower (LSTM-512 B = 1 1.02, LSTM-1024
           1.03), so step_rows keeps step_epilogue. */
        RK_UNROLL for (int r = 0; r < MR; r++)
            RK_UNROLL for (int v = 0; v < NV; v++) {
                int g = 2 * (pair + v);
                if (k1 == H) acc[r][v] = gate_activation16(cell, g % G, (g + 1) % G, acc[r][v]);
                store16(partial[r] + g * RK_UNITS, acc[r][v]);
            }
    }
    if (k1 < H) return;
    for (int r = 0; r < MR; r++)
        for (int i = 0; i < BLOCKS; i++) {
            size_t block = u + (size_t)i;
            v8f gate[MAX_GATES];
            RK_UNROLL for (int g = 0; g < G; g++) gate[g] = load8(partial[r] + (i * G + g) * RK_UNITS);
            step_finish(s, cell, gate, b0 + r, block * RK_UNITS, block_units(H, block),
                        gru_n_input(cell, s->gx + (b0 + r) * s->ldgx, gate_column(G, block, 2)));
        }
}

/* A step not run as a matrix product (below), rows go in whole tiles first, over a unit block's gate
   pairs when G is even, a pair of blocks' when odd (gru: their 6 gates fill 3 panels), then the rows
   left (two or more) in one tile of their own height, so that every weight is read once by them.
   B = 3 as a row group of 2 and a lone row, B = 6 as a short tile of 4 and a row group of 2, read the
   weights twice (bench/ab, same bits: LSTM-300 with I = 100 B = 3 0.78, B = 5 0.84, B = 6 0.62, B = 7
   0.79, B = 2 0.94; LSTM-512 B = 3 0.72; LSTM-256 with I = 600 B = 9 0.91, B = 11 0.88). gru's row
   groups of 3 rows in registers of 8 floats, before its tiles: GRU-256 B = 2 0.84, B = 6 0.83; GRU-300
   B = 3 0.94, B = 5 0.70, B = 7 0.71; GRU-512 B = 4 0.72; with I = 600 B = 10 0.93, B = 13 0.95; products
   unchanged (GRU-512 B = 64 0.98). Without tiles (rnn, whose row groups over two blocks hold the same
   sums) rows go in groups of MR rows (MR·G accumulators and G weight vectors fit the 16 registers),
   over two unit blocks at once when that still fits; a last single row takes two unit blocks, so it
   still has 2·G independent sums in flight (a batch of one row, or an rnn's of up to RNN_FEW_ROWS:
   step_few_rows). When more than one pass (tile or row group) reads a block, the sums go in chunks of
   STEP_KC over k so the block's weights for the chunk stay in L1 while every pass uses them; a single
   pass reads them once, over the whole of k, as one stream from the start of the block's panels to
   their end (chunks made it jump between panels every 8 KiB, one short stream at a time; RNN-1024
   B = 4 0.91). */
enum { STEP_KC = 128 };

/* Asks for what unit blocks u, u+1 read once per row besides the weights (their gates' gx, lstm's c),
   a pair of blocks ahead: a step's gx was written by the input projection long before and is in
   memory, and a step reads B rows of it at once, more streams than the hardware prefetcher follows. */
RK_INLINE void prefetch_units(const rk_step *s, int cell, int G, size_t u) {
    size_t H = s->hidden, j = u * RK_UNITS;
    for (size_t b = 0; b < s->batch; b++) {
        const float *gx = s->gx + b * s->ldgx + gate_column(G, u, 0);
        for (size_t i = 0; i < 2 * (size_t)G * RK_UNITS; i += 64 / sizeof(float)) __builtin_prefetch(gx + i);
        if (cell == RK_CELL_LSTM) __builtin_prefetch(s->c + b * H + j, 1);
    }
}

/* A step with float32 weights over at least STEP_PRODUCT_MIN_ROWS rows (or the variant's
   PRODUCT_MIN_ROWS, RK_VARIANT, when H is at least PRODUCT_MIN_HIDDEN), or given x, is one matrix
   product per group of up to STEP_PRODUCT_UNITS unit blocks (over the panels holding their gates; with
   G odd the group's first or last panel may hold a neighbouring block's gate too, computed and
   ignored), then the gate math: the product's panel blocks and tiles keep weights and rows in cache
   better than the per-block tiles (16–25% faster on one core for B ≥ 16 here). Given x, it first
   computes its rows' input part for the group's gates (x · W_ihᵀ + b, the input projection's own
   product for these rows and panels) instead of reading gx, which the projection of every step wrote
   long before and which has left the caches by now; that pays from STEP_PROJECTING_MIN_ROWS rows
   (rk_step_projects_input), where reading gx the product path was 12% slower than the tiles. Each row's
   sums start from the input part and run over k in order as in the other paths, so its numbers are the
   same. Except for gru (whose n gate keeps its recurrent sum apart), the two parts are one product over
   [x | h_prev] (rk_product's second operands): the sums run from the input part into the recurrent part
   in registers, where two products stored them in the gates and read them back, and each tile is set up
   once (bench/ab, same bits: LSTM-128 B = 64 on one thread 0.935, B = 128 0.924, LSTM-256 B = 32
   0.950–0.965, B = 16 0.975, B = 8 T = 200 0.978, bidirectional LSTM-256 B = 8 0.982; with K = 1024,
   two k blocks either way, LSTM-512 B = 64 0.992–1.020, RNN-512 1.000). */
enum { STEP_PRODUCT_MIN_ROWS = 16, PRODUCT_MIN_HIDDEN = 256, STEP_PROJECTING_MIN_ROWS = 8, STEP_PRODUCT_UNITS = 8,
       WIDE_RNN_PRODUCT_MIN_ROWS = 2 };

/* Floats of a batched step's gates and, for gru, its input part: two [B, columns] buffers, columns at
   most the panels of STEP_PRODUCT_UNITS blocks plus one a neighbouring block shares. */
RK_INLINE size_t product_gates_size(int G, size_t B) { return 2 * B * (STEP_PRODUCT_UNITS * (size_t)G + 2) * RK_UNITS; }

/* Where a step in bfloat16 keeps h_prev rounded, [B, rk_bf16_row_size(H)]: after the gates and the input part. */
RK_INLINE uint16_t *rounded_state(const rk_step *s, int G) { return (uint16_t *)(s->partial + product_gates_size(G, s->batch)); }

RK_INLINE rk_weights step_weight_format(const rk_step *s) {
    return s->bf16_weights ? RK_WEIGHTS_BFLOAT16 : s->half_weights ? RK_WEIGHTS_FLOAT16 : RK_WEIGHTS_FLOAT32;
}

/* Floats of the copies: x's rows (a step given x has input_size ≤ 2·H, rk_step_projects_input) and h_prev's. */
static size_t copied_rows_size(size_t B, size_t H) { return B >= ALIASING_MIN_ROWS ? B * (3 * H + 2 * COPY_PAD) : 0; }

/* Where a float32 product step reads its rows of x and h_prev: in place, or their copies. */
typedef struct {
    const float *x, *h;
    size_t ldx, ldh;
} product_rows;

static product_rows product_rows_of(const rk_step *s, int G) {
    size_t B = s->batch, H = s->hidden;
    float *copies = s->partial + product_gates_size(G, B);
    product_rows r = {s->x, s->h_prev, s->ldx, H};
    if (s->bf16_weights || s->half_weights || !rk_step_runs_as_product((size_t)G, B, H, s->x != NULL, RK_WEIGHTS_FLOAT32)) return r;
    if (s->x && s->input_size <= 2 * H && rows_alias(B, s->ldx)) r.x = copies, r.ldx = s->input_size + COPY_PAD;
    if (rows_alias(B, H)) r.h = copies + B * (2 * H + COPY_PAD), r.ldh = H + COPY_PAD;
    return r;
}

/* rk_step_prepare_rows for float32 weights. */
static void copy_aliasing_rows(const rk_step *s, int G) {
    product_rows r = product_rows_of(s, G);
    if (r.x != s->x) copy_rows(s->batch, s->input_size, s->x, s->ldx, (float *)r.x, r.ldx);
    if (r.h != s->h_prev) copy_rows(s->batch, s->hidden, s->h_prev, s->hidden, (float *)r.h, r.ldh);
}

/* A step as matrix products (above), then its gate math. The products go through the dispatch
   (rk_gemm_packed) to the variant's own gemm function rather than being inlined here: inlined into this
   function, whose gate math keeps more values live, the register allocator kept one of an AVX2 6-row
   tile's 12 sums on the stack for the rnn, a store and a load on its chain every k (bench/ab, same bits:
   RNN-512 B = 64 1.90 times the time of the same products in the gemm function). And the bfloat16
   product may use an instruction this variant is not compiled for. */
RK_INLINE void step_by_product(const rk_step *s, int cell, int G, size_t unit_begin, size_t unit_end) {
    size_t B = s->batch, H = s->hidden;
    uint16_t *h_rounded = rounded_state(s, G);
    if (!s->rows_prepared) rk_step_prepare_rows(s);
    product_rows rows = product_rows_of(s, G);
    for (size_t u0 = unit_begin; u0 < unit_end; u0 += STEP_PRODUCT_UNITS) {
        size_t u1 = unit_end - u0 < STEP_PRODUCT_UNITS ? unit_end : u0 + STEP_PRODUCT_UNITS;
        size_t first = gate_column(G, u0, 0) / GEMM_NR, end = ceil_div(gate_column(G, u1, 0), GEMM_NR);
        size_t columns = (end - first) * GEMM_NR, offset = first * GEMM_NR;
        /* Each [B, columns]: panels first ..< end, block u's gate g at column gate_column(G, u, g) − offset. */
        float *gates = s->partial, *projected = gates + B * columns;
        const float *input_weights = s->x ? s->input_weights + offset * s->input_size : NULL;
        const float *input_bias = s->input_bias ? s->input_bias + offset : NULL;
        const float *recurrent_weights = s->weights + offset * H;
        /* The rows' input part: gx's, or computed here. */
        const float *input = s->gx + offset;
        size_t ldinput = s->ldgx;
        if (s->x && cell != RK_CELL_GRU) {
            /* Every gate's sum starts from the input part: one product over [x | h_prev], the sums
               running from the input part into the recurrent part in registers. */
            rk_product step_product = {.M = B, .N = columns, .K = s->input_size, .X = rows.x, .ldx = rows.ldx,
                                       .P = input_weights, .bias = input_bias, .Y = gates, .ldy = columns,
                                       .group = SIZE_MAX, .X2 = rows.h, .ldx2 = rows.ldh, .K2 = H,
                                       .P2 = recurrent_weights};
            rk_gemm_packed(&step_product, 0, B, 0, end - first);
            input = gates, ldinput = columns;
        } else {
            if (s->x) {
                /* gru's: its n gate's recurrent sum starts from b_hn, apart from the input part. */
                rk_product input_part = {B, columns, s->input_size, rows.x, rows.ldx, input_weights, input_bias, projected,
                                         columns, SIZE_MAX, 0};
                rk_gemm_packed(&input_part, 0, B, 0, end - first);
                input = projected, ldinput = columns;
            }
            /* The recurrent sums start from the input part, read where it is; a gru's from a copy whose n
               gate starts from b_hn instead (its recurrent sum is kept apart). Copied for every cell until
               2026-12-07; without the copy, bench/ab on the Zen 1 VM (same bits, passes back to back):
               bidirectional LSTM-84 I = 243 B = 32 T = 100 (a random draw's, 1.05 behind ONNX Runtime)
               0.982–0.992, RNN-128 B = 64 0.983, bidirectional LSTM-673 I = 53 B = 128 T = 6 0.986; level
               at LSTM-128 B = 128, LSTM-256 B = 32, LSTM-512 B = 64, RNN-512 B = 64 (0.994–1.003). On the Intel
               VM (AVX-512) it had measured 0.99–1.01 (perf-design.md). */
            const float *start = input;
            size_t ldstart = ldinput;
            if (cell == RK_CELL_GRU) {
                for (size_t b = 0; b < B; b++) {
                    float *row = gates + b * columns;
                    memcpy(row, input + b * ldinput, columns * sizeof(float));
                    for (size_t u = u0; u < u1; u++) {
                        size_t j = u * RK_UNITS, n = block_units(H, u);
                        store8(row + gate_column(G, u, 2) - offset, gru_n_start(s, j, n));
                    }
                }
                start = gates, ldstart = columns;
            }
            rk_product recurrent_part = {B, columns, H, rows.h, rows.ldh, recurrent_weights, NULL, gates, columns,
                                         SIZE_MAX, 0, start, ldstart};
            if (s->bf16_weights) {
                recurrent_part.X16 = h_rounded, recurrent_part.ldx = rk_bf16_row_size(H);
                recurrent_part.P16 = s->bf16_weights + offset * rk_bf16_row_size(H);
            }
            rk_gemm_packed(&recurrent_part, 0, B, 0, end - first);
        }
        /* Every gate's activation first, then the rest of the gate math: the activations of all rows and
           blocks are independent and run at the vector units' rate, where a row and block's activations
           and the tanh of its c that waits on them made one long chain (step_epilogue), about 9% of the
           step's samples for LSTM-256 B = 8 (bench/ab on the Zen 3 VM, same bits: LSTM-256 B = 8 T = 200
           0.954–0.964, B = 32 0.948, against A/A runs 0.96–1.01). */
        for (size_t b = 0; b < B; b++) activate_gates(cell, G, (int)(offset / RK_UNITS % (size_t)G), gates + b * columns, columns);
        for (size_t b = 0; b < B; b++)
            for (size_t u = u0; u < u1; u++) {
                v8f gate[MAX_GATES];
                RK_UNROLL for (int g = 0; g < G; g++) gate[g] = load8(gates + b * columns + gate_column(G, u, g) - offset);
                step_finish(s, cell, gate, b, u * RK_UNITS, block_units(H, u),
                            gru_n_input(cell, input + b * ldinput, gate_column(G, u, 2) - offset));
            }
    }
}

/* Unit blocks a step over ROWS rows in one group takes at once: enough independent sums (G·ROWS per
   block) in flight to cover the multiply-add's latency (4 cycles at 2 per cycle: 8 sums). An RNN's
   single row over two blocks had 2 sums in flight and ran its step at half the rate of the same
   weights read by 8 (RNN-256 6.0 → 3.4 µs a step, RNN-512 25 → 17 µs on one core; GRU-256 with 4
   blocks 13.7 → 11.5 µs; LSTM's 2 blocks already hold 8). An rnn's 2 or 3 rows over a pair of blocks
   had 4 or 6. */
RK_INLINE int few_rows_units(int G, int ROWS) {
    return ROWS == 1 ? (G == 1 ? 8 : G == 3 ? 4 : 2) : (8 + ROWS * G - 1) / (ROWS * G);
}

/* A step over ROWS rows that one group takes: nothing else reads its weights, so no k chunks;
   few_rows_units blocks at a time, then pairs and a last block, each sum over k in order as in the
   other paths. */
RK_INLINE void step_few_rows(const rk_step *s, int cell, int G, int HALF, int F16C, int ROWS, size_t unit_begin,
                             size_t unit_end) {
    const int NB = few_rows_units(G, ROWS);
    size_t u = unit_begin, H = s->hidden;
    for (; u + (size_t)NB <= unit_end; u += NB) step_rows(s, cell, G, HALF, F16C, 0, ROWS, NB, u, 0, 0, H);
    for (; u + 2 <= unit_end; u += 2) step_rows(s, cell, G, HALF, F16C, 0, ROWS, 2, u, 0, 0, H);
    if (u < unit_end) step_rows(s, cell, G, HALF, F16C, 0, ROWS, 1, u, 0, 0, H);
}

/* The most rows of an rnn's step that go through step_few_rows rather than its row groups over pairs
   of blocks, whose 2·rows sums are too few below 4 rows. bench/ab on an Intel Xeon VM (family 6 model
   207; a switch in one process, passes back to back, same bits), against exact-height row groups:
   RNN-128 B = 2 0.75, B = 3 0.87, RNN-214 I = 829 B = 2 0.89, relu RNN-64 B = 3 0.93; the AVX2 variant
   RNN-512 B = 2 0.79, RNN-840 I = 560 B = 3 0.84, relu RNN-300 B = 2 0.78, RNN-256 B = 3 0.93; AVX-512's
   rnn products from 256 units level (RNN-256 B = 2 1.00, RNN-560 I = 840 B = 3 0.98). Against those
   products (rk_step_runs_as_product) this step measured RNN-256 B = 2 0.94, B = 3 0.94, RNN-560
   I = 840 B = 3 0.92, RNN-717 I = 626 B = 3 0.93, but RNN-512 B = 2 1.09, RNN-1024 B = 2 1.10; and again
   (2026-12-06, from 09:03 UTC; T = 100, I = H): B = 2 level at 256 units and slower from 384 (RNN-384
   1.05, RNN-512 1.09, RNN-768 1.09, RNN-1024 1.13), B = 3 faster up to 512 units (RNN-256 0.90–0.94,
   RNN-300 I = 100 0.94, relu RNN-300 0.92, RNN-384 0.96–0.97, RNN-512 0.95–0.96) and slower beyond the
   L2 (RNN-768, 2.25 MiB of W_hh, 1.16; RNN-1024 1.09). So where the CPU runs an rnn's few rows as
   products, 3 rows with at most RNN_FEW_ROWS_MAX_HIDDEN units (1 MiB of W_hh, inside any such CPU's
   L2) come here instead (rk_step_runs_as_product); bands of 3 rows with them (RNN-256 B = 6, RNN-512
   B = 6, RNN-384 B = 7) measured level. */
enum { RNN_FEW_ROWS = 3, RNN_FEW_ROWS_MAX_HIDDEN = 512 };

/* Whether a step over `batch` rows goes through step_few_rows: one row of any cell, or an rnn's few. */
RK_INLINE int step_takes_few_rows(int G, size_t batch) { return batch == 1 || (G == 1 && batch <= RNN_FEW_ROWS); }

/* A step's rows among the fused paths: with tiles of TILE_ROWS (> 0), whole tiles up to `tall`, then
   one tile of the rows left up to `tiled` when they are two or more; without, row groups of MR up to
   `full`; then `rest` rows (a last, smaller group, or a lone row); `passes` of these read each unit
   block's weights. */
typedef struct { size_t tall, tiled, full, rest, passes; } row_split;
RK_INLINE row_split split_rows(size_t B, int MR, int TILE_ROWS) {
    size_t tall_tiles = TILE_ROWS > 0 ? B / TILE_ROWS : 0;
    row_split r;
    r.tall = tall_tiles * TILE_ROWS;
    r.tiled = TILE_ROWS > 0 && B - r.tall >= 2 ? B : r.tall;
    size_t groups = (B - r.tiled) / MR;
    r.full = r.tiled + groups * MR;
    r.rest = B - r.full;
    r.passes = tall_tiles + (r.tiled > r.tall) + groups + (r.rest > 0);
    return r;
}

/* One tile of `rows` rows, 2 ≤ rows ≤ MOST_ROWS, over BLOCKS unit blocks: MR a constant in each case,
   so the tile's sums stay in registers, and the rows read each weight once. Heights above MOST_ROWS
   (the tall tile's less one, or wide_tile_rows) are not instantiated; a height without a case would
   compute nothing. */
RK_INLINE void step_tile_of(const rk_step *s, int cell, int G, int HALF, int F16C, int MOST_ROWS, int NV, int BLOCKS,
                            size_t rows, size_t u, size_t b0, size_t k0, size_t k1) {
#define RK_TILE_OF(MR) \
    case MR: \
        if (MR <= MOST_ROWS) step_tile(s, cell, G, HALF, F16C, MR, NV, BLOCKS, u, b0, k0, k1); \
        break;
    switch (rows) {
        RK_SHORT_TILE_HEIGHTS(RK_TILE_OF)
    }
#undef RK_TILE_OF
}

/* Gate pairs a step tile takes at once: the variant's TILE_NV when they divide the tile's pairs, else
   all of them when the variant takes more than one (AVX-512's gru: 3), else one. */
RK_INLINE int step_tile_pairs(int G, int TILE_NV) {
    int pairs = tile_blocks(G) * G / 2;
    return pairs % TILE_NV == 0 ? TILE_NV : TILE_NV > 1 && pairs <= TILE_MAX_NV ? pairs : 1;
}

/* The most rows of a wide tile: an even G's pair of unit blocks in one tile of 2·NV pairs, as many rows
   as the variant's REGISTERS (vectors of 16 floats) hold with the tile's 2·NV weight vectors and a row's
   value (AVX-512: 6 rows × 4 pairs, against 12 × 2; AVX2: 2 rows × 2 pairs; none for the portable
   variant's SSE2). A short tile of one block keeps NV·rows sums, too few chains and too few weight
   streams to keep the multiply-adds busy: lstm B = 3 ran its steps at about 60% of the multiply-add peak
   on AVX-512, reading its weights from L2 at 40% of the rate a lone row reaches; on AVX2 a tile of 2 rows
   keeps 4 sums of 8 floats where the multiply-add's latency and its two pipes need 8 (bench/ab on the Zen
   3 VM, same bits: LSTM-256 B = 2 0.80–0.85 against A/A runs of 1.00–1.05, LSTM-512 B = 2 0.91–0.95;
   B = 8 with a wide tile of the 2 rows after the tall one 0.92–0.95, within an A/A run's 0.905). AVX2's
   3 rows × 2 pairs were slower (LSTM-300 B = 3 1.12–1.29; the half weights' loop spills). */
RK_INLINE int wide_tile_rows(int G, int NV, int REGISTERS) {
    return G % 2 == 0 ? rows_in_registers(2 * NV, REGISTERS) : 0;
}

RK_INLINE void step_cell(const rk_step *s, int cell, int G, int HALF, int F16C, int MR, int TILE_MR, int TILE_NV,
                         int REGISTERS, size_t unit_begin, size_t unit_end) {
    if (rk_step_runs_as_product((size_t)G, s->batch, s->hidden, s->x != NULL, step_weight_format(s))) {
        step_by_product(s, cell, G, unit_begin, unit_end);
        return;
    }
    if (step_takes_few_rows(G, s->batch)) {
        _Static_assert(RNN_FEW_ROWS == 3, "step_cell needs a case for every row count up to RNN_FEW_ROWS");
        switch (s->batch) {
        case 1: step_few_rows(s, cell, G, HALF, F16C, 1, unit_begin, unit_end); break;
        case 2: step_few_rows(s, cell, G, HALF, F16C, 2, unit_begin, unit_end); break;
        case 3: step_few_rows(s, cell, G, HALF, F16C, 3, unit_begin, unit_end); break;
        }
        return;
    }
    /* Tiles hold as many sums as the variant's: AVX-512's 12 rows × 2 pairs, so 8 rows × 3 pairs for
       gru. An rnn keeps its row groups over two blocks, the same sums in registers of 8. */
    const int NV = step_tile_pairs(G, TILE_NV), WIDEST = TILE_MR * TILE_NV / NV;
    const int TILE_ROWS = G > 1 && TILE_MR > 0 ? (WIDEST < TILE_MAX_MR ? WIDEST : TILE_MAX_MR) : 0;
    const int WIDE_ROWS = TILE_ROWS > 0 ? wide_tile_rows(G, NV, REGISTERS) : 0;
    const row_split tiled_rows = split_rows(s->batch, MR, TILE_ROWS), grouped_rows = split_rows(s->batch, MR, 0);
    size_t H = s->hidden;
    const int prefetch = STEP_PREFETCH_K;
    prefetch_units(s, cell, G, unit_begin);
    for (size_t u = unit_begin; u < unit_end; u += 2) {
        int pair = u + 1 < unit_end;
        /* An odd G's tiles need the pair from an even block (rk_step_unit_group starts every chunk at one). */
        int tiles = TILE_ROWS > 0 && (G % 2 == 0 || (pair && u % 2 == 0));
        row_split rows = tiles ? tiled_rows : grouped_rows;
        size_t tall = rows.tall, tiled = rows.tiled, full = rows.full, rest = rows.rest;
        size_t kc = rows.passes > 1 ? STEP_KC : H, tiled_blocks = tiles ? (G % 2 == 0 ? 1 + (size_t)pair : 1) : 0;
        if (u + 2 < unit_end) prefetch_units(s, cell, G, u + 2);
        for (size_t k0 = 0; k0 < H; k0 += kc) {
            size_t k1 = H - k0 < kc ? H : k0 + kc;
            for (size_t i = 0; i < tiled_blocks; i++)
                for (size_t b = 0; b < tall; b += TILE_ROWS)
                    step_tile(s, cell, G, HALF, F16C, TILE_ROWS, NV, tile_blocks(G), u + i, b, k0, k1);
            if (tiled > tall && pair && tiled - tall <= (size_t)WIDE_ROWS) {
                step_tile_of(s, cell, G, HALF, F16C, WIDE_ROWS, 2 * NV, 2, tiled - tall, u, tall, k0, k1);
            } else if (tiled > tall) {
                for (size_t i = 0; i < tiled_blocks; i++)
                    step_tile_of(s, cell, G, HALF, F16C, TILE_ROWS - 1, NV, tile_blocks(G), tiled - tall, u + i, tall, k0, k1);
            }
            if (pair && 2 * MR * G <= 12) {
                /* Both blocks in one pass when their sums fit the registers (rnn: 6 rows × 2 blocks). */
                for (size_t b = tiled; b < full; b += MR) step_rows(s, cell, G, HALF, F16C, prefetch, MR, 2, u, b, k0, k1);
                if (rest > 1) step_rows_of(s, cell, G, HALF, F16C, prefetch, MR, 2, u, full, rest, k0, k1);
            } else {
                for (size_t i = 0; i <= (size_t)pair; i++) {
                    for (size_t b = tiled; b < full; b += MR) step_rows(s, cell, G, HALF, F16C, prefetch, MR, 1, u + i, b, k0, k1);
                    if (rest > 1) step_rows_of(s, cell, G, HALF, F16C, prefetch, MR, 1, u + i, full, rest, k0, k1);
                }
            }
            if (rest == 1) {
                if (pair) step_rows(s, cell, G, HALF, F16C, prefetch, 1, 2, u, full, k0, k1);
                else step_rows(s, cell, G, HALF, F16C, prefetch, 1, 1, u, full, k0, k1);
            }
        }
    }
}

RK_INLINE void step_body(int TILE_MR, int TILE_NV, int REGISTERS, int HALF, int F16C, const rk_step *s,
                         size_t unit_begin, size_t unit_end) {
    switch (s->cell) {
    case RK_CELL_LSTM:
        step_cell(s, RK_CELL_LSTM, 4, HALF, F16C, 2, TILE_MR, TILE_NV, REGISTERS, unit_begin, unit_end);
        break;
    case RK_CELL_GRU:
        step_cell(s, RK_CELL_GRU, 3, HALF, F16C, 3, TILE_MR, TILE_NV, REGISTERS, unit_begin, unit_end);
        break;
    case RK_CELL_RNN_RELU:
        step_cell(s, RK_CELL_RNN_RELU, 1, HALF, F16C, 6, TILE_MR, TILE_NV, REGISTERS, unit_begin, unit_end);
        break;
    default:
        step_cell(s, RK_CELL_RNN_TANH, 1, HALF, F16C, 6, TILE_MR, TILE_NV, REGISTERS, unit_begin, unit_end);
        break;
    }
}

/* ---- variants and dispatch ---------------------------------------------------------------- */

/* One instruction set and tile shape (MR rows × NV streams of 16) for the products. */
typedef struct {
    const char *name;
    void (*gemm)(const rk_product *p, size_t row_begin, size_t row_end, size_t panel_begin, size_t panel_end);
    void (*step)(const rk_step *s, size_t unit_begin, size_t unit_end);
    void (*round_rows_bf16)(size_t M, size_t K, const float *X, size_t ldx, uint16_t *Y, size_t ldy);
    void (*widen_half)(size_t n, const uint16_t *half, float *wide);
    size_t step_product_min_rows;
    int tile_mr, tile_nv, registers; /* step_body's TILE_MR, TILE_NV, REGISTERS */
} kernel_variant;

#if RK_HAVE_AVX2_VARIANT
/* The AVX-512 variant's product in bfloat16 with VDPBF16PS, where the CPU has AVX-512 BF16. */
RK_AVX512_BF16 static void gemm_dpbf16(const rk_product *p, size_t rb, size_t re, size_t pb, size_t pe) {
    gemm_body(12, 2, 32, 1, 1, p, rb, re, pb, pe);
}

static int cpu_has_dpbf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
}
#else
/* Off x86 the portable variant, never asking for the instruction, names its own product here. */
#define gemm_dpbf16 gemm_bf16_portable
#endif

/* REGISTERS: the vector registers in vectors of 16 floats (AVX2's 16 of 8 floats: 8), which bound a
   step's wide tiles (wide_tile_rows). PRODUCT_MIN_ROWS: from how many rows a float32 step that reads gx
   runs as a matrix product rather than in fused tiles when H is at least PRODUCT_MIN_HIDDEN
   (rk_step_runs_as_product; STEP_PRODUCT_MIN_ROWS below that). With AVX2's tiles of 6 rows the product
   was faster from 8 rows (bench/ab on the Zen 3 VM, same bits, against A/A runs made beside them:
   LSTM-512 B = 12 0.947–0.956 against 0.981–0.990, GRU-512 B = 12 with I = 1024 0.957–0.964 against
   0.993–0.994, LSTM-512 B = 8 with I = 1024 0.969–0.979 against 0.990–0.994, LSTM-256 with I = 600 at
   B = 8, 12 and 14 0.96–0.98 against 0.98–0.99, RNN-512 B = 12 0.971–0.984 against 0.993–0.997, GRU-384
   B = 13 0.980–0.983 against 0.986–0.994, LSTM-256 B = 10 level; with B = 16 and 24, whose bands of
   rows then run as products, level or up to 2.4% faster), but slower at H = 128, where the product's
   passes over the gates (gx copied in, sums stored for the gate math) weigh more against k loops of 128
   (LSTM-128 B = 8 with I = 512 1.040–1.050 against 0.992–1.002; lstm and rnn sums start from gx in place
   since 2026-12-07, not measured again). The AVX-512 variant (12-row tiles; on the Zen 4 VM, products
   below 8 rows were mixed) and the portable one keep 16: not measured at 8–15
   rows. DPBF16: whether the variant's products in bfloat16 go to gemm_dpbf16; else computed as it does,
   in tiles of half the rows (each row's pair takes two registers, each k pair two multiply-adds per
   accumulator: the full tiles spilled). */
#define RK_VARIANT(NAME, TARGET, MR, NV, REGISTERS, PRODUCT_MIN_ROWS, F16C, DPBF16)                                    \
    TARGET __attribute__((noinline)) static void gemm_bf16_##NAME(const rk_product *p, size_t rb, size_t re,           \
                                                                  size_t pb, size_t pe) {                              \
        gemm_body(MR / 2, NV, REGISTERS, 1, 0, p, rb, re, pb, pe);                                                     \
    }                                                                                                                  \
    TARGET static void gemm_##NAME(const rk_product *p, size_t rb, size_t re, size_t pb, size_t pe) {                  \
        if (!p->P16) gemm_body(MR, NV, REGISTERS, 0, 0, p, rb, re, pb, pe);                                            \
        else if (DPBF16) gemm_dpbf16(p, rb, re, pb, pe);                                                               \
        else gemm_bf16_##NAME(p, rb, re, pb, pe);                                                                      \
    }                                                                                                                  \
    TARGET static void round_rows_bf16_##NAME(size_t M, size_t K, const float *X, size_t ldx, uint16_t *Y,             \
                                              size_t ldy) {                                                            \
        round_rows_bf16(M, K, X, ldx, Y, ldy);                                                                         \
    }                                                                                                                  \
    TARGET static void widen_half_##NAME(size_t n, const uint16_t *half, float *wide) {                                \
        widen_half(n, half, wide, F16C);                                                                               \
    }                                                                                                                  \
    TARGET static void step_##NAME(const rk_step *s, size_t ub, size_t ue) {                                           \
        if (s->half_weights) step_body(MR, NV, REGISTERS, 1, F16C, s, ub, ue);                                         \
        else step_body(MR, NV, REGISTERS, 0, F16C, s, ub, ue);                                                         \
    }                                                                                                                  \
    static const kernel_variant NAME = {#NAME, gemm_##NAME, step_##NAME, round_rows_bf16_##NAME, widen_half_##NAME,    \
                                        PRODUCT_MIN_ROWS, MR, NV, REGISTERS};          

/* F16C: half weights converted by the conversion instruction (every AVX2 CPU has it), not integer code. */
RK_VARIANT(portable, , 6, 1, 4, 16, 0, 0)
#if RK_HAVE_AVX2_VARIANT
RK_VARIANT(avx2, RK_AVX2, 6, 1, 8, 8, 1, 0)
RK_VARIANT(avx512, RK_AVX512, 12, 2, 32, 16, 1, cpu_has_dpbf16())
/* AVX-512's tile shapes in AVX2 instructions: slow (the tiles spill), only for running the AVX-512
   variant's code paths on a machine without AVX-512 (RECUR_KERNELS=avx512_tiles_on_avx2). */
RK_VARIANT(avx512_tiles_on_avx2, RK_AVX2, 12, 2, 32, 16, 1, 0)
#endif
#undef RK_VARIANT

static int cpu_runs(const kernel_variant *v) {
#if RK_HAVE_AVX2_VARIANT
    __builtin_cpu_init();
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (v == &avx512) return has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    if (v == &avx2 || v == &avx512_tiles_on_avx2) return has_avx2;
#endif
    return v == &portable;
}

/* The variant RECUR_KERNELS names when this CPU runs it, else the fastest it runs; chosen once (racing
   first callers store the same answer). */
static const kernel_variant *kernels(void) {
    static const kernel_variant *_Atomic chosen = NULL;
    const kernel_variant *v = atomic_load_explicit(&chosen, memory_order_acquire);
    if (v) return v;
    const kernel_variant *const fastest_first[] = {
#if RK_HAVE_AVX2_VARIANT
        &avx512, &avx2, &avx512_tiles_on_avx2,
#endif
        &portable,
    };
    const char *wanted = getenv("RECUR_KERNELS");
    size_t count = sizeof fastest_first / sizeof fastest_first[0];
    for (size_t i = 0; i < count && !v; i++)
        if (wanted && strcmp(wanted, fastest_first[i]->name) == 0 && cpu_runs(fastest_first[i])) v = fastest_first[i];
    for (size_t i = 0; i < count && !v; i++)
        if (cpu_runs(fastest_first[i])) v = fastest_first[i];
    atomic_store_explicit(&chosen, v, memory_order_release);
    return v;
}

const char *rk_kernels_name(void) { return kernels()->name; }

/* Seconds for PROBE_ROUNDS rounds of PROBE_CHAINS independent multiply-adds of 16 floats (WIDE) or of 8:
   enough chains to keep two pipes of latency 4 busy, either width. */
enum { PROBE_CHAINS = 24, PROBE_ROUNDS = 2048, PROBE_TRIES = 3 };
#if RK_HAVE_AVX2_VARIANT
static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile float probe_sink;
RK_INLINE double chains_seconds(int WIDE, float seed) {
    v16f wide[PROBE_CHAINS];
    v8f narrow[PROBE_CHAINS];
    RK_UNROLL for (int i = 0; i < PROBE_CHAINS; i++) wide[i] = splat16(seed * (float)i), narrow[i] = splat(seed * (float)i);
    v16f a16 = splat16(seed * 0.999f), b16 = splat16(seed * 1e-4f);
    v8f a8 = splat(seed * 0.999f), b8 = splat(seed * 1e-4f);
    double start = seconds_now();
    for (int round = 0; round < PROBE_ROUNDS; round++) {
        if (WIDE) RK_UNROLL for (int i = 0; i < PROBE_CHAINS; i++) wide[i] = wide[i] * a16 + b16;
        else RK_UNROLL for (int i = 0; i < PROBE_CHAINS; i++) narrow[i] = narrow[i] * a8 + b8;
    }
    double seconds = seconds_now() - start;
    float sum = 0.0f; /* the chains' results are used, so they are computed */
    RK_UNROLL for (int i = 0; i < PROBE_CHAINS; i++) sum += WIDE ? wide[i][0] : narrow[i][0];
    probe_sink = sum;
    return seconds;
}

/* The chains in AVX-512's instructions (the body is inlined here, where they are enabled). */
__attribute__((noinline)) RK_AVX512 static double multiply_add_seconds(int wide, float seed) {
    return wide ? chains_seconds(1, seed) : chains_seconds(0, seed);
}
#endif

/* Measured once: the fastest of PROBE_TRIES for each width, 16 floats tried first so that a core that
   changes its clock for 512-bit work has done so before the timed tries. Wide when 16 floats take less
   than 1.5 times as long as 8 (1 when both widths run at two a cycle, 2 when the 16-float ones are split
   in halves). Racing first callers each measure and store their own answer, the same unless every try
   of one width was disturbed; either answer gives the same numbers, only at another speed. */
int rk_wide_multiply_adds(void) {
#if RK_HAVE_AVX2_VARIANT
    static _Atomic int known = -1;
    int wide = atomic_load_explicit(&known, memory_order_relaxed);
    if (wide >= 0) return wide;
    wide = 0;
    if (kernels() == &avx512) {
        volatile float seed = 1.0f;
        double fastest[2] = {1e9, 1e9};
        multiply_add_seconds(1, seed);
        for (int t = 0; t < PROBE_TRIES; t++)
            for (int WIDE = 1; WIDE >= 0; WIDE--) {
                double seconds = multiply_add_seconds(WIDE, seed);
                fastest[WIDE] = seconds < fastest[WIDE] ? seconds : fastest[WIDE];
            }
        wide = fastest[1] < 1.5 * fastest[0];
    }
    atomic_store_explicit(&known, wide, memory_order_relaxed);
    return wide;
#else
    return 0;
#endif
}

size_t rk_step_wide_tile_rows(size_t gates) {
    const kernel_variant *v = kernels();
    int G = (int)gates;
    return G > 1 && v->tile_mr > 0 ? (size_t)wide_tile_rows(G, step_tile_pairs(G, v->tile_nv), v->registers) : 0;
}

size_t rk_step_partial_size(size_t gates, size_t batch, size_t hidden, rk_weights weights) {
    /* A run over such a batch steps on W_hh widened to float32, whose steps keep more than the halves'. */
    if (weights == RK_WEIGHTS_FLOAT16 && rk_step_widens_half_weights(gates, batch, hidden)) weights = RK_WEIGHTS_FLOAT32;
    size_t rows = weights == RK_WEIGHTS_BFLOAT16  ? ceil_div(batch * rk_bf16_row_size(hidden), 2)
                  : weights == RK_WEIGHTS_FLOAT32 ? copied_rows_size(batch, hidden)
                                                  : 0;
    return ceil_div(product_gates_size((int)gates, batch) + rows, 16) * 16; /* whole 64-byte lines: each thread's starts on one */
}

/* A step that projects its own input streams W_ih along with W_hh every step, where the projection
   of every step ahead reads it once and leaves gx to be read back from memory. Measured (bench/ab,
   whole sequences, same bits) on a Zen 3 VM with 512 KiB of L2: with W_ih of 1–2 MiB 5–15% faster
   at 8–64 rows (LSTM-256 at B = 8, 12, 32, RNN-512 at B = 8 and 64, GRU-384 at B = 12 and 16,
   bidirectional LSTM-256 layers at B = 8 and 16); below 8 rows, where the weights are most of the
   work, mixed or slower (LSTM-256 B = 7 1.04–1.12, B = 6 0.90, B = 5 0.96, B = 4 1.03–1.07, B = 2
   1.5; GRU-384 B = 6 0.96, B = 5 1.08); with 3–4 MiB no faster or up to 4% slower (LSTM-512,
   GRU-512 at B = 64). On a Zen 4 VM with 1 MiB of L2: with 3–4 MiB faster (LSTM-512 B = 64
   0.948–0.955, B = 16 0.906, B = 8 0.992; GRU-512 B = 64 0.984), with 7 MiB no faster (GRU-768
   B = 32 1.012), with 16 MiB slower (LSTM-1024 B = 64 1.074, B = 12 1.133). So from 8 rows, up to
   STEP_INPUT_CACHE_SHARES times one core's L2 (2 MiB there, 4 MiB here), and no more than twice
   W_hh's inputs, where the projection's long product does better. */
enum { STEP_INPUT_CACHE_SHARES = 4 };

int rk_step_projects_input(size_t gates, size_t batch, size_t input_size, size_t hidden, rk_weights weights,
                           size_t core_cache_bytes) {
    return weights == RK_WEIGHTS_FLOAT32 && batch >= STEP_PROJECTING_MIN_ROWS && input_size <= 2 * hidden &&
           rk_input_packed_size(gates, hidden, input_size) * sizeof(float) <= STEP_INPUT_CACHE_SHARES * core_cache_bytes;
}

/* An rnn's step over WIDE_RNN_PRODUCT_MIN_ROWS rows or more (H ≥ PRODUCT_MIN_HIDDEN) runs as a product
   where the CPU completes two multiply-adds of 16 floats a cycle (rk_wide_multiply_adds). Its row groups
   compute in vectors of 8 floats, at half that CPU's rate; the product's short tiles hold exactly the
   rows, over 4 panels of 16. Against row groups of exactly the rows (step_rows_of), products measured
   RNN-256 B = 2 0.87, B = 4 0.98, B = 6 0.87, RNN-512 B = 2 0.71, B = 5 0.83, RNN-560 I = 840 B = 3 0.94,
   RNN-717 I = 626 B = 3 0.84 (2026-12-06). Against the earlier groups, whose last group of fewer than 6
   rows computed 6, bench/ab on an Intel Xeon VM (family 6 model 207; a switch in one process, passes back
   to back, same bits): RNN-256 B = 2 0.64, B = 3 0.71, B = 4 0.82–0.86, B = 6 0.88–0.90; RNN-512 B = 2
   0.51, B = 4 0.69, B = 6 0.83; RNN-1024 B = 2 0.55, B = 6 0.78; RNN-560 I = 840 B = 2 0.66, B = 3
   0.74–0.77, B = 5 0.87, B = 9 0.67–0.68 (I > 2·H: no step projects its input), RNN-717 I = 626 B = 3
   0.68, a relu RNN-400 I = 1000 B = 3 0.78, B = 7 0.83, bidirectional RNN-300 I = 700 B = 4 0.81; B ≥ 8
   with I ≤ 2·H already products. Below 256 units mixed (RNN-64 B = 2 0.71, RNN-128 B = 6 1.16, RNN-181 B =
   6 1.06–1.10: the product's passes over the gates weigh more against short k loops), so they keep their
   row groups; so do AVX2's 6-row groups (as products B = 2 0.62–0.78 but B = 6 1.07–1.16) and Zen 4's,
   whose 16-float multiply-adds take two cycles each (not measured). An rnn's 3 rows over at most
   RNN_FEW_ROWS_MAX_HIDDEN units take step_few_rows, faster still (2026-12-06, RNN_FEW_ROWS). */
int rk_step_runs_as_product(size_t gates, size_t batch, size_t hidden, int projects_input, rk_weights weights) {
    if (weights != RK_WEIGHTS_FLOAT32) return weights == RK_WEIGHTS_BFLOAT16;
    if (projects_input) return 1;
    if (hidden < PRODUCT_MIN_HIDDEN) return batch >= STEP_PRODUCT_MIN_ROWS;
    if (batch >= kernels()->step_product_min_rows) return 1;
    if (gates == 1 && batch == RNN_FEW_ROWS && hidden <= RNN_FEW_ROWS_MAX_HIDDEN) return 0;
    return gates == 1 && batch >= WIDE_RNN_PRODUCT_MIN_ROWS && rk_wide_multiply_adds();
}

void rk_widen_half(size_t n, const uint16_t *half, float *wide) { kernels()->widen_half(n, half, wide); }

/* Half weights take the fused tiles at every batch (rk_step_runs_as_product), which convert each weight
   they read, once a tile and step. Where float32 steps run as products, which reuse each weight over a
   tile's rows and stream little of W_hh for it, one widening a run costs less than a step's conversions:
   on the Zen 1 VM (AMD EPYC family 23 model 1, AVX2; bench.py --half-weights, 2 rounds) half weights
   in fused tiles took lstm-256-b32 1.18 of the best peer's time and widened 0.98 (float32 0.98 in run
   84), and `recur bench` (T = 100, I = H) LSTM-300 B = 8 20.4 ms and 18.1 (float32 17.9), GRU-256 B = 8
   11.5 and 10.0 (float32 9.6). Below, half weights keep their fused tiles, which stream half the bytes
   of W_hh every step: on the Zen 3 VM faster than float32 at batch 1 where W_hh streams from L3
   (LSTM-512 4.40 ms against 5.65, 2026-12-02). Not on Zen 1, whose conversion takes 2.5 times a
   multiply-add of 8 floats (a loop from L1: 6.6 weights a nanosecond against 16.5): LSTM-256 B = 1
   2.98 ms against float32's 1.84, LSTM-300 B = 3 8.46 against 6.83 (docs/perf-design.md). */
int rk_step_widens_half_weights(size_t gates, size_t batch, size_t hidden) {
    return rk_step_runs_as_product(gates, batch, hidden, 0, RK_WEIGHTS_FLOAT32);
}

size_t rk_gemm_panels(size_t N) { return ceil_div(N, GEMM_NR); }

size_t rk_gemm_tile_rows(void) { return (size_t)kernels()->tile_mr; }

void rk_bf16_round_rows(size_t M, size_t K, const float *X, size_t ldx, uint16_t *Y, size_t ldy) {
    kernels()->round_rows_bf16(M, K, X, ldx, Y, ldy);
}

void rk_gemm_packed(const rk_product *product, size_t row_begin, size_t row_end, size_t panel_begin, size_t panel_end) {
    if (row_begin >= row_end || panel_begin >= panel_end) return;
    kernels()->gemm(product, row_begin, row_end, panel_begin, panel_end);
}

size_t rk_cell_gates(rk_cell cell) { return cell == RK_CELL_LSTM ? 4 : cell == RK_CELL_GRU ? 3 : 1; }

void rk_step_prepare_rows(const rk_step *step) {
    int G = (int)rk_cell_gates(step->cell);
    /* A lone row's state, all its lines at once: the other threads wrote their units' part of it a moment
       ago, and the step's loop, reading it a k at a time, met those lines one miss after another. */
    if (step->batch == 1)
        for (size_t k = 0; k < step->hidden; k += 64 / sizeof(float)) __builtin_prefetch(step->h_prev + k);
    if (step->bf16_weights)
        rk_bf16_round_rows(step->batch, step->hidden, step->h_prev, step->hidden, rounded_state(step, G),
                           rk_bf16_row_size(step->hidden));
    else copy_aliasing_rows(step, G);
}

/* A step over few rows takes chunks of step_few_rows' blocks; batched otherwise, an odd G's chunks (gru,
   rnn) start at even blocks, where its tiles' pairs of blocks and a product step's panels (16 columns,
   an rnn's two blocks) do. An rnn's chunks had started at any block: a product step over a range from an
   odd block computed the panel it shares with the block before, in every STEP_PRODUCT_UNITS of it, so
   the chunks that started odd computed 5 panels for every 4 of their own. Measured on an Intel Xeon VM
   (family 6 model 207), a switch in one process, same bits, split steps (W_hh beyond the L2), T = 20,
   I = H unless said: RNN-801 I = 948 B = 64 0.82, B = 32 0.83, RNN-800 B = 64 0.82, RNN-1000 0.87,
   RNN-1100 0.85; level where the chunks started even before (RNN-768, RNN-900, RNN-1024 B = 16) and in
   bands (RNN-600 B = 64, RNN-512 B = 4 and B = 8, RNN-200 B = 32). */
size_t rk_step_unit_group(size_t gates, size_t batch) {
    int G = (int)gates;
    if (step_takes_few_rows(G, batch)) return (size_t)few_rows_units(G, (int)batch);
    return (size_t)tile_blocks(G);
}

void rk_recurrent_step(const rk_step *step, size_t unit_begin, size_t unit_end) {
    kernels()->step(step, unit_begin, unit_end);
}
