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

/* ---- packed matrix product ----------------------------------------------------------------
   Weights are packed once at load into the layout the kernels stream (rk_gemm_pack); the packed
   buffer replaces the [N, K] original. Kernels pick AVX2+FMA code at run time when the CPU has it,
   portable code otherwise; results agree within float32 rounding. */

/* The kernel variant in use: "avx512", "avx2" or "portable", the fastest this CPU runs; chosen on
   first use. RECUR_KERNELS=NAME asks for another one the CPU runs (tests run the portable one
   that way, and "avx512_tiles_on_avx2", AVX-512's code paths in AVX2 instructions). */
const char *rk_kernels_name(void);

/* Floats of W [N, K] packed for rk_gemm_packed. */
size_t rk_gemm_packed_size(size_t N, size_t K);
/* P[rk_gemm_packed_size(N, K)] ← W [N, K] (PyTorch's weight layout [out, in]). */
void rk_gemm_pack(size_t N, size_t K, const float *W, float *P);
/* Column panels of an N-column product: the unit rk_gemm_packed splits work by. */
size_t rk_gemm_panels(size_t N);
/* Rows of rk_gemm_packed's full tiles in float32 for the kernels in use: a product of fewer rows runs
   in shorter tiles, which keep fewer sums going at once. */
size_t rk_gemm_tile_rows(void);

/* Y[M, N] = X[M, K] · Wᵀ + bias[N] (or start[M, N] + X · Wᵀ when `start` is not NULL), with rows
   placed by a row map so that a [B·T] product can be written time-major: row m of Y at
   Y + (m / group)·ldy_group + (m % group)·ldy (a plain matrix: group = SIZE_MAX, ldy its row
   stride). P from rk_gemm_pack; bias may be NULL; K ≥ 1. */
typedef struct {
    size_t M, N, K;
    const float *X;                     /* row m at X + m·ldx */
    size_t ldx;
    const float *P, *bias;
    float *Y;
    size_t ldy, group, ldy_group;
    const float *start;                 /* not NULL: sums start from row m at start + m·ldstart (Y's own, or */
    size_t ldstart;                     /* another's: a step's gx), not from the bias */
    /* A product in bfloat16 (P16 not NULL) reads X16 and P16 instead of X and P: row m of X rounded to
       bfloat16 at X16 + m·ldx (rk_bf16_round_rows), W packed by rk_gates_pack_bf16. */
    const uint16_t *X16, *P16;
    /* With K2 > 0 (float32 only), a second pair of operands after the first: Y = [X | X2] · [W | W2]ᵀ
       + bias, k running over X's K columns, then X2's K2 (row m at X2 + m·ldx2, W2 packed at P2 for
       K2). The sums go from one to the other in registers, as a step's input part runs into its
       recurrent part. Rows of X2 are read in place, never copied for L1 aliasing. */
    const float *X2;
    size_t ldx2, K2;
    const float *P2;
} rk_product;

/* Rows row_begin ..< row_end of the product over column panels panel_begin ..< panel_end
   (0 ..< rk_gemm_panels(N) for all). */
void rk_gemm_packed(const rk_product *product, size_t row_begin, size_t row_end, size_t panel_begin, size_t panel_end);

/* Y[M, N] = X[M, K] · Wᵀ + bias[N] (rows of Y ldy apart), on the worker pool's threads when it is free. */
void rk_gemm_packed_parallel(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P,
                             const float *bias, float *Y, size_t ldy);

/* ---- bfloat16 products (opt-in) ------------------------------------------------------------
   A product in bfloat16 rounds its weights and its rows to bfloat16 (to nearest even, so a value
   beyond ±3.3895e38 becomes infinite; a value below 2⁻¹²⁶ becomes a zero of its sign, as AVX-512
   BF16 reads it; NaN stays NaN) and sums in float32 over pairs of k
   as VDPBF16PS does: sum += x[k+1]·w[k+1], then sum += x[k]·w[k], each product exact, each sum rounded.
   Every variant computes exactly that (with the instruction where the CPU has AVX-512 BF16), so a
   row's result is the same bits everywhere. Rows and weights hold K rounded up to even values, the
   last one zero when K is odd. */

/* Values of a row of K in bfloat16: K rounded up to even. */
size_t rk_bf16_row_size(size_t K);
/* Y[m] (rows ldy values apart, ldy ≥ rk_bf16_row_size(K)) ← X[m, K] (rows ldx apart) rounded, m < M. */
void rk_bf16_round_rows(size_t M, size_t K, const float *X, size_t ldx, uint16_t *Y, size_t ldy);

/* ---- recurrent cells ----------------------------------------------------------------------
   Gate order is PyTorch's: lstm (i, f, g, o), gru (r, z, n), rnn one gate. */
typedef enum { RK_CELL_RNN_TANH = 0, RK_CELL_RNN_RELU = 1, RK_CELL_LSTM = 2, RK_CELL_GRU = 3 } rk_cell;

/* Gates of a cell: 4 (lstm), 3 (gru), 1 (rnn). */
size_t rk_cell_gates(rk_cell cell);

/* The most threads one call uses. */
#define RK_MAX_THREADS 8

/* Hidden units per block of packed recurrent weights: the SIMD width of the fused step. */
#define RK_UNITS 8

/* Gate weights are packed as rk_gemm_pack's column panels with their rows reordered block by block
   of RK_UNITS units, gate by gate (zero rows past H units and to fill the last panel): reordered row
   (u·G + g)·RK_UNITS + l is row g·H + u·RK_UNITS + l of PyTorch's [G·H, ·]. A step over many rows is
   then one matrix product, and a row of gates (gx) holds a unit block's G gates side by side. */

/* Columns of a row of gates in that order: rk_gemm_pack's columns of the reordered rows. */
size_t rk_gate_columns(size_t gates, size_t H);

/* Floats of a recurrent weight W_hh [G·H, H] packed for rk_recurrent_step. */
size_t rk_recurrent_packed_size(size_t gates, size_t H);
/* P ← W [G·H, H] (gate blocks of H rows) in that layout. */
void rk_recurrent_pack(size_t gates, size_t H, const float *W, float *P);
/* The same layout in IEEE binary16 (rk_recurrent_packed_size(G, H) values), rounded to nearest
   even: half the bytes a step streams, about 3 significant digits. Values beyond ±65504 become
   infinite; the caller refuses them first. */
void rk_recurrent_pack_half(size_t gates, size_t H, const float *W, uint16_t *P);
/* wide[i] ← half[i] for i < n, exactly: rk_recurrent_pack_half's values back in rk_recurrent_pack's
   layout, which is the same. */
void rk_widen_half(size_t n, const uint16_t *half, float *wide);
/* Whether a sequence of `batch` rows holding W_hh in half precision runs its steps on W_hh widened
   to float32 (rk_sequence's recurrent_widened, once a run) rather than on the halves: where float32
   steps over those rows run as matrix products (rk_step_runs_as_product). Either way the outputs are
   the float32 engine's with W_hh equal to the halves. */
int rk_step_widens_half_weights(size_t gates, size_t batch, size_t hidden);

/* Floats of an input weight W_ih [G·H, I] packed for the input projection (rk_sequence) and the
   steps that compute it themselves; P ← W in that layout. */
size_t rk_input_packed_size(size_t gates, size_t H, size_t I);
void rk_input_pack(size_t gates, size_t H, size_t I, const float *W, float *P);
/* Values of W_ih [G·H, I] or W_hh [G·H, H] (K = I or H) packed for bfloat16 products, and P ← W
   rounded, in the gate order, in rk_gemm_pack's panels with k in pairs: P[p][k/2][c][k%2] is row
   p·16 + c of the reordered W at k (with one gate, W [N, K] in plain order: any matrix). */
size_t rk_gates_packed_size_bf16(size_t gates, size_t H, size_t K);
void rk_gates_pack_bf16(size_t gates, size_t H, size_t K, const float *W, uint16_t *P);
/* P [rk_gate_columns(G, H)] ← bias [G·H] (PyTorch's gate order) in the gate order, zero in the padding. */
void rk_input_bias_pack(size_t gates, size_t H, const float *bias, float *P);

/* How a step holds W_hh: rk_recurrent_pack's floats, rk_recurrent_pack_half's halves, or
   rk_gates_pack_bf16's bfloat16 for products in bfloat16. */
typedef enum { RK_WEIGHTS_FLOAT32 = 0, RK_WEIGHTS_FLOAT16 = 1, RK_WEIGHTS_BFLOAT16 = 2 } rk_weights;

/* Rows first_row ..< first_row + rows of W [G·H, K] (W holds just those rows, K values each) into
   their places in P, packed as the functions above pack all of W: floats (rk_input_pack,
   rk_recurrent_pack) for RK_WEIGHTS_FLOAT32, binary16 (rk_recurrent_pack_half) for
   RK_WEIGHTS_FLOAT16, bfloat16 pairs (rk_gates_pack_bf16) for RK_WEIGHTS_BFLOAT16. The padding no
   row fills is not written: P starts zeroed. A loader packs W a block of rows at a time as it reads
   them, so that it never holds all of W unpacked beside its packed copy. */
void rk_gates_pack_rows(size_t gates, size_t H, size_t K, size_t first_row, size_t rows, const float *W, void *P,
                        rk_weights format);
/* Rows first_row ..< first_row + rows of W [N, K] (W holds just those rows) into rk_gemm_pack's
   layout in P; the padding is not written: P starts zeroed. */
void rk_gemm_pack_rows(size_t N, size_t K, size_t first_row, size_t rows, const float *W, float *P);

/* One time step of a recurrent cell: the product of h_prev with W_hh for all gates, fused with the
   gate math. The gates' input part is W_ih x + b_ih + b_hh at this step (for gru, b_hh only for r
   and z: the n gate's b_hn is `bias`, since n = tanh(gx_n + r ⊙ (W_hn h + b_hn))): read from gx, or,
   for a step given x (allowed when rk_step_projects_input), computed by the step itself. */
typedef struct {
    rk_cell cell;
    size_t batch, hidden;               /* B, H */
    const float *weights;               /* rk_recurrent_pack of W_hh */
    const uint16_t *half_weights;       /* rk_recurrent_pack_half of W_hh, used instead when not NULL */
    const uint16_t *bf16_weights;       /* rk_gates_pack_bf16 of W_hh: the step's product in bfloat16, when not NULL */
    const float *bias;                  /* gru: b_hn [H] or NULL; unused otherwise */
    const float *gx;                    /* row b at gx + b·ldgx: [rk_gate_columns(G, H)] in the gate order; unused given x */
    size_t ldgx;
    const float *x;                     /* row b's input at x + b·ldx: [input_size]; NULL: the input part is gx */
    size_t ldx, input_size;
    const float *input_weights;         /* with x: rk_input_pack of W_ih */
    const float *input_bias;            /* with x: rk_input_bias_pack of the input part's bias, or NULL */
    const float *h_prev;                /* [B, H] */
    float *h_next;                      /* [B, H], must not alias h_prev */
    float *c;                           /* lstm: [B, H] updated in place; NULL otherwise */
    float *y;                           /* row b's output at y + b·ldy: [H]; NULL for none */
    size_t ldy;
    const size_t *lengths;              /* [B]: row b steps only while t < lengths[b]; NULL: all rows */
    size_t t;
    float *partial;                     /* workspace [rk_step_partial_size(G, B, H, ·)] of the calling thread */
    int rows_prepared;                  /* partial already holds the rows rk_step_prepare_rows puts there */
} rk_step;

/* Floats of the partial sums (or, for a batched step, the gates of a group of unit blocks, and the
   rows rk_step_prepare_rows makes) one thread's rk_recurrent_step keeps: whole 64-byte lines, so that
   threads' workspaces side by side start on a line when the first does. Half weights over a batch a
   run widens (rk_step_widens_half_weights) count as float32, which its steps read. */
size_t rk_step_partial_size(size_t gates, size_t batch, size_t hidden, rk_weights weights);

/* Whether a step of `gates` gates over `batch` rows runs as one matrix product that is better off
   computing its input part itself (given x) than reading the input projection of every step,
   computed ahead: many rows, float32 W_hh, and a W_ih small enough, against one core's L2 of
   core_cache_bytes, to stream every step. */
int rk_step_projects_input(size_t gates, size_t batch, size_t input_size, size_t hidden, rk_weights weights,
                           size_t core_cache_bytes);

/* Whether a step of `gates` gates over `batch` rows runs as matrix products (register tiles over panels
   of weights kept in cache across rows) rather than as fused row groups: float32 W_hh with many rows (16;
   with the avx2 kernels 8 when `hidden` is 256 or more; an rnn's from 2 rows when `hidden` is 256 or more
   and the CPU completes two multiply-adds of 16 floats a cycle) or the step computing its own input part,
   and always in bfloat16. */
int rk_step_runs_as_product(size_t gates, size_t batch, size_t hidden, int projects_input, rk_weights weights);

/* The most rows a float32 step of `gates` gates over fused tiles takes in one wide tile, which reads
   each weight of a pair of unit blocks once for all its rows (AVX-512 lstm: 6; AVX2 lstm: 2); 0 where
   the kernels have none (gru, rnn, the portable kernels). */
size_t rk_step_wide_tile_rows(size_t gates);

/* Whether the kernels in use complete two of their multiply-adds of 16 floats a cycle (Intel's AVX-512
   server cores) rather than one (AMD's Zen 4, which splits each into halves of 8): timed once, the first
   call taking about 0.1 ms; 0 for the avx2 and portable kernels. Then a tile of few rows waits for its
   weights from L2, two 64-byte lines a cycle for 4 rows. */
int rk_wide_multiply_adds(void);

/* How many unit blocks a step over `batch` rows computes at once: a range of blocks given to
   rk_recurrent_step that is a multiple of it (or ends at the last block) runs at full rate. */
size_t rk_step_unit_group(size_t gates, size_t batch);

/* Puts into the step's workspace the rows its matrix products read from there, where rk_recurrent_step
   with rows_prepared set finds them: in bfloat16, h_prev rounded; in float32, rows of x and h_prev
   whose stride would make a tile's rows evict one another from L1, copied with a shorter one; for a
   lone row, all of h_prev's lines asked for at once. A thread that runs several chunks of one step
   prepares them once, not once a chunk. */
void rk_step_prepare_rows(const rk_step *step);

/* The step for hidden-unit blocks unit_begin ..< unit_end (of ceil(H / RK_UNITS)), every row. A row
   that does not step copies h_prev to h_next and leaves c and y. Blocks are independent: threads may
   run disjoint ranges of one step at once. */
void rk_recurrent_step(const rk_step *step, size_t unit_begin, size_t unit_end);

/* One direction of one recurrent layer over whole sequences: the input projection of every step as
   one matrix product, then the time loop of fused steps; or, when the steps project their own
   input (rk_step_projects_input), the time loop alone. */
typedef struct {
    rk_cell cell;
    size_t batch, steps, input_size, hidden;  /* B, T, I, H */
    const float *x;                     /* [B, T, I] with row stride ldx: row (b·T + t) */
    size_t ldx;
    const float *input_weights;         /* rk_input_pack of W_ih [G·H, I]; unused in bfloat16 */
    const float *input_bias;            /* rk_input_bias_pack of b_ih + b_hh (gru: b_hn left out), or NULL */
    const float *recurrent_weights;     /* rk_recurrent_pack of W_hh */
    const uint16_t *recurrent_half_weights; /* rk_recurrent_pack_half of W_hh, used instead when not NULL */
    const float *recurrent_bias;        /* gru's b_hn [H], or NULL */
    const size_t *lengths;              /* [B] in 1 … T, or NULL: every row has T steps */
    int reverse;                        /* run t = len−1 … 0 */
    float *gx;                          /* workspace of T·B·rk_gate_columns(G, H) floats: time-major, so one step's
                                           rows are together ([T, B, ·], or each band of rows [T, rows, ·] in a block
                                           of its own); left untouched when the steps project their input */
    float *h;                           /* [B, H]: initial state in, final state out */
    float *h_spare;                     /* workspace [B, H] */
    float *partial;                     /* workspace [RK_MAX_THREADS, rk_step_partial_size(G, B, H, ·)] */
    float *c;                           /* lstm: [B, H] initial in, final out; NULL otherwise */
    float *y;                           /* [B, T, ·] with row stride ldy: h of row b, step t at y + (b·T + t)·ldy */
    size_t ldy;
    /* Products in bfloat16 (both not NULL; input_weights, recurrent_weights and recurrent_half_weights
       NULL): rk_gates_pack_bf16 of W_ih and of W_hh, and a workspace for x rounded,
       [B·T, rk_bf16_row_size(I)] (row b·T + t). Last, so the fields before keep their places. */
    const uint16_t *input_bf16_weights, *recurrent_bf16_weights;
    uint16_t *x_bf16;
    /* With recurrent_half_weights, where rk_step_widens_half_weights: a workspace of
       rk_recurrent_packed_size(G, H) floats, where the run widens W_hh and steps on it. Elsewhere NULL,
       or left unused (bench/ab hands one to every half sequence, whatever the commit's rule). */
    float *recurrent_widened;
} rk_sequence;

/* Runs `count` independent sequences (a bidirectional layer's two directions) on the worker pool, at
   once while their W_hh fit half the L3 together or they have 64 rows or more, else one after another: a
   sequence's rows are split into bands, one per thread, each running its own time loop (a batch with
   several rows per thread and W_hh that fits a core's cache), or else its hidden units are split across
   its threads, which meet at a barrier per step. A row's numbers are the same either way. When the pool
   is busy with another caller, runs on the calling thread alone. Thread-safe. */
void rk_run_sequences(const rk_sequence *sequences, size_t count);

/* Element-wise, in place over n values. */
void rk_sigmoid(size_t n, float *x);
void rk_tanh(size_t n, float *x);
void rk_relu(size_t n, float *x);

/* Over each of `rows` rows of `width` values, in place. */
void rk_softmax_rows(size_t rows, size_t width, float *x);
void rk_log_softmax_rows(size_t rows, size_t width, float *x);

/* to ← from, `bytes` bytes, the regions not overlapping: memcpy, except where glibc's is slow (kernels.c). */
void rk_copy_bytes(void *to, const void *from, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
