/*
 * The recurrent kernels under AddressSanitizer: every buffer allocated to the exact size
 * recur_kernels.h states, so a read or write past one (a tile's last rows, a product's panel that
 * holds a neighbouring block's gate, a partial unit block) stops the run. Sequences of every cell,
 * batch sizes on both sides of the tile heights (4, 6, 8, 12) and of the step's product path (16, and
 * 8 with avx2 from 256 units), hidden sizes that are not multiples of 8, lengths, both directions,
 * float32 weights, half W_hh (widened to float32 for the run where a batch's float32 steps are
 * products) and products in bfloat16.
 *
 * Prints one line per case: its shape and the sum of its outputs and final state as a hex float.
 * Tests/kernels/run.sh runs it under each kernel variant (RECUR_KERNELS) and compares: the AVX2
 * variant, AVX-512's tile shapes in AVX2 and the AVX-512 variant where the CPU has it must agree bit
 * for bit (same sums in the same order; in bfloat16, VDPBF16PS where the CPU has AVX-512 BF16 and
 * its sums computed in the other variants).
 *
 * Then every row of a batch, forward and reverse, is checked against the same row run alone, bit
 * for bit: a batch big enough runs in bands of rows, one per thread, each with its own time loop
 * up to its own longest row (W_hh within a core's L2, from 4 rows a band: 8–13 rows of H = 44, 128
 * or 300 for rnn, bands of 5–7 rows projecting ahead or in their steps; or larger W_hh when a band's
 * steps are matrix products: 23 rows and H = 300), or else its steps split by hidden units across
 * threads (W_hh beyond the L2: H = 520), as matrix products that compute their own input part (9–15
 * rows, W_ih up to twice W_hh's size: the rows after the tall tiles in one tile of their own height,
 * or in two after the last tall tile, 14 rows as 7 and 7) or
 * read the input projection's (a larger W_ih: I = 650 against H = 300, 17 rows in bands of 8 and 9,
 * 5 and 7 rows, and 10 and 15 split by units where W_hh passes the L2, all fused tiles or row groups
 * of every height, lstm's short tiles of 5 and 3 rows over a pair of unit blocks, alone and after a
 * tall tile in chunks of k; 10 rows of H = 520), with rows of x
 * 4 KiB apart (T·I = 1024) or H = 1024, which those
 * products read from copies (13 rows split by units at T·I = 1024 and H = 520, 29 at H = 1024: the
 * rnn's in bands of 14 and 15, the others' split by units), and a projection ahead whose tall tiles
 * copy rows of x 4 KiB apart (I = 1024, 13 rows);
 * rows whose half W_hh the run widens against the row alone, in the half weights' tiles (23 rows of
 * H = 44, 12 of H = 300, 13 of H = 520 with rows of x 4 KiB apart, which the float32 steps copy into
 * their partial workspace: sized for float32, as recur_kernels.h says);
 * 5 rows of lstm in bands of 2 and 3, the 3-row band's input projection for its last steps (its first,
 * reversed) computed by the 2-row band's thread (T = 60); 6 and 7 rows of 150 units in bands of 3 and 4
 * where W_hh is under a quarter of the L2 (lstm's in wide tiles; the other cells' where the CPU has two
 * multiply-adds of 16 floats a cycle; split by units with an L2 under 1.4 MiB);
 * a lone row (and an rnn's 2 or 3 rows) runs through the few-rows step, several unit blocks at
 * once, after the projection of every step; in bfloat16 every step is a product. Last, one step
 * split into two ranges of unit blocks at an odd block against the whole step, and against a driver
 * written here sequences whose steps run on one thread while other threads compute their input
 * projection in blocks, and sequences with W_hh beyond 32 MiB, whose odd steps take each chunk
 * backward in pieces; a bidirectional layer's directions in one call against each alone, with W_hh
 * past the L3 together (one after the other over 2 rows, beside each other over 64) and within it
 * (beside each other); a product whose sums start from another matrix's rows against sums in double;
 * then packing W a block of rows at a time, as the loader does, against packing it whole and against
 * the layout recur_kernels.h states (exits 1 on a difference).
 */
#include "recur_kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `n` deterministic values in [-0.5, 0.5), in a buffer of exactly n floats. */
static float *values(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(float) + (n == 0));
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u + seed * 40503u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* A bias [G·H] from `seed` in the kernels' gate order, in a buffer of exactly rk_gate_columns(G, H). */
static float *packed_bias(size_t G, size_t H, unsigned seed) {
    float *bias = values(G * H, seed), *packed = malloc(rk_gate_columns(G, H) * sizeof(float));
    rk_input_bias_pack(G, H, bias, packed);
    free(bias);
    return packed;
}

/* W_ih and W_hh packed as `format` holds them, in buffers of exactly their size. */
typedef struct {
    float *input, *recurrent;
    uint16_t *half_recurrent, *bf16_input, *bf16_recurrent;
} packed_weights;

static packed_weights pack(rk_weights format, size_t G, size_t H, size_t I, const float *input, const float *recurrent) {
    packed_weights p = {0};
    if (format == RK_WEIGHTS_BFLOAT16) {
        p.bf16_input = malloc(rk_gates_packed_size_bf16(G, H, I) * sizeof(uint16_t));
        p.bf16_recurrent = malloc(rk_gates_packed_size_bf16(G, H, H) * sizeof(uint16_t));
        rk_gates_pack_bf16(G, H, I, input, p.bf16_input);
        rk_gates_pack_bf16(G, H, H, recurrent, p.bf16_recurrent);
        return p;
    }
    p.input = malloc(rk_input_packed_size(G, H, I) * sizeof(float));
    rk_input_pack(G, H, I, input, p.input);
    if (format == RK_WEIGHTS_FLOAT16) {
        p.half_recurrent = malloc(rk_recurrent_packed_size(G, H) * sizeof(uint16_t));
        rk_recurrent_pack_half(G, H, recurrent, p.half_recurrent);
    } else {
        p.recurrent = malloc(rk_recurrent_packed_size(G, H) * sizeof(float));
        rk_recurrent_pack(G, H, recurrent, p.recurrent);
    }
    return p;
}

static void free_packed(packed_weights p) {
    free(p.input), free(p.recurrent), free(p.half_recurrent), free(p.bf16_input), free(p.bf16_recurrent);
}

/* One direction's parameters from fixed seeds (the other direction's from the next ones): W_ih and W_hh
   packed as `format` holds them, the input part's bias packed, gru's b_hn (NULL for the other cells). */
typedef struct {
    packed_weights packed;
    float *input_bias, *recurrent_bias;
} seeded_weights;

static seeded_weights weights_of(rk_cell cell, rk_weights format, size_t I, size_t H, unsigned direction) {
    size_t G = rk_cell_gates(cell);
    float *input = values(G * H * I, 2 + direction), *recurrent = values(G * H * H, 4 + direction);
    seeded_weights w = {pack(format, G, H, I, input, recurrent), packed_bias(G, H, 6 + direction),
                        cell == RK_CELL_GRU ? values(H, 8 + direction) : NULL};
    free(input), free(recurrent);
    return w;
}

static void free_weights(seeded_weights w) { free_packed(w.packed), free(w.input_bias), free(w.recurrent_bias); }

/* The sequence's fields for weights packed as `p`, with a rounded-input workspace in bfloat16 and, with
   half W_hh at a batch that widens it, the widened weights' workspace. */
static void use_packed(rk_sequence *s, packed_weights p) {
    size_t G = rk_cell_gates(s->cell);
    s->input_weights = p.input, s->recurrent_weights = p.recurrent, s->recurrent_half_weights = p.half_recurrent;
    s->input_bf16_weights = p.bf16_input, s->recurrent_bf16_weights = p.bf16_recurrent;
    s->x_bf16 = p.bf16_input ? malloc(s->batch * s->steps * rk_bf16_row_size(s->input_size) * sizeof(uint16_t)) : NULL;
    s->recurrent_widened = p.half_recurrent && rk_step_widens_half_weights(G, s->batch, s->hidden)
                               ? malloc(rk_recurrent_packed_size(G, s->hidden) * sizeof(float))
                               : NULL;
}

static void run(rk_cell cell, size_t B, size_t T, size_t I, size_t H, int directions, rk_weights format, int with_lengths) {
    size_t G = rk_cell_gates(cell);
    float *x = values(B * T * I, 1), *y = calloc(B * T * directions * H, sizeof(float));
    size_t *lengths = NULL;
    if (with_lengths) {
        lengths = malloc(B * sizeof(size_t));
        for (size_t b = 0; b < B; b++) lengths[b] = 1 + (b * 7) % T;
    }
    rk_sequence sequences[2];
    seeded_weights weights[2];
    for (int d = 0; d < directions; d++) {
        weights[d] = weights_of(cell, format, I, H, (unsigned)d);
        sequences[d] = (rk_sequence){
            .cell = cell, .batch = B, .steps = T, .input_size = I, .hidden = H, .x = x, .ldx = I,
            .input_bias = weights[d].input_bias, .recurrent_bias = weights[d].recurrent_bias, .lengths = lengths,
            .reverse = d, .gx = malloc(B * T * rk_gate_columns(G, H) * sizeof(float)), .h = values(B * H, 10 + d),
            .h_spare = malloc(B * H * sizeof(float)),
            .partial = malloc(RK_MAX_THREADS * rk_step_partial_size(G, B, H, format) * sizeof(float)),
            .c = cell == RK_CELL_LSTM ? values(B * H, 12 + d) : NULL, .y = y + d * H, .ldy = directions * H,
        };
        use_packed(&sequences[d], weights[d].packed);
    }
    rk_run_sequences(sequences, (size_t)directions);
    double sum = 0;
    for (size_t i = 0; i < B * T * directions * H; i++) sum += y[i];
    for (int d = 0; d < directions; d++)
        for (size_t i = 0; i < B * H; i++) sum += sequences[d].h[i] + (sequences[d].c ? sequences[d].c[i] : 0);
    printf("cell %d B %zu T %zu I %zu H %zu D %d weights %d lengths %d: %a\n", (int)cell, B, T, I, H, directions,
           (int)format, with_lengths, sum);
    for (int d = 0; d < directions; d++) {
        free_weights(weights[d]);
        free(sequences[d].gx), free(sequences[d].h_spare), free(sequences[d].partial), free(sequences[d].x_bf16);
        free(sequences[d].recurrent_widened);
        free(sequences[d].h), free(sequences[d].c);
    }
    free(x), free(y), free(lengths);
}

/* Rows b ..< b+B of x [·, T, I] with initial states from h0 and c0 [·, H], one direction, weights_of's
   first direction; outputs into y [B, T, H], final states into h and c [B, H]. */
static void run_rows(rk_cell cell, rk_weights format, size_t b, size_t B, size_t T, size_t I, size_t H, int reverse,
                     const size_t *lengths, const float *x, const float *h0, const float *c0, float *y, float *h, float *c) {
    size_t G = rk_cell_gates(cell);
    seeded_weights weights = weights_of(cell, format, I, H, 0);
    float *gx = malloc(B * T * rk_gate_columns(G, H) * sizeof(float)), *h_spare = malloc(B * H * sizeof(float));
    float *partial = malloc(RK_MAX_THREADS * rk_step_partial_size(G, B, H, format) * sizeof(float));
    memcpy(h, h0 + b * H, B * H * sizeof(float));
    if (c) memcpy(c, c0 + b * H, B * H * sizeof(float));
    rk_sequence sequence = {
        .cell = cell, .batch = B, .steps = T, .input_size = I, .hidden = H, .x = x + b * T * I, .ldx = I,
        .input_bias = weights.input_bias, .recurrent_bias = weights.recurrent_bias,
        .lengths = lengths ? lengths + b : NULL,
        .reverse = reverse, .gx = gx, .h = h, .h_spare = h_spare, .partial = partial, .c = c, .y = y, .ldy = H,
    };
    use_packed(&sequence, weights.packed);
    rk_run_sequences(&sequence, 1);
    free_weights(weights), free(sequence.x_bf16), free(sequence.recurrent_widened), free(gx), free(h_spare), free(partial);
}

/* Every row of a batch of B against the row alone; 0 when all agree bit for bit. */
static int rows_agree_alone(rk_cell cell, rk_weights format, size_t B, size_t T, size_t I, size_t H, int reverse,
                            int with_lengths) {
    float *x = values(B * T * I, 1), *h0 = values(B * H, 10), *c0 = values(B * H, 12);
    size_t *lengths = NULL;
    if (with_lengths) {
        lengths = malloc(B * sizeof(size_t));
        for (size_t b = 0; b < B; b++) lengths[b] = 1 + (b * 5) % T;
    }
    int lstm = cell == RK_CELL_LSTM;
    float *y = calloc(B * T * H, sizeof(float)), *h = malloc(B * H * sizeof(float)), *c = lstm ? malloc(B * H * sizeof(float)) : NULL;
    run_rows(cell, format, 0, B, T, I, H, reverse, lengths, x, h0, c0, y, h, c);
    float *y1 = malloc(T * H * sizeof(float)), *h1 = malloc(H * sizeof(float)), *c1 = lstm ? malloc(H * sizeof(float)) : NULL;
    int differing = 0;
    for (size_t b = 0; b < B; b++) {
        memset(y1, 0, T * H * sizeof(float));
        run_rows(cell, format, b, 1, T, I, H, reverse, lengths, x, h0, c0, y1, h1, c1);
        if (memcmp(y1, y + b * T * H, T * H * sizeof(float)) || memcmp(h1, h + b * H, H * sizeof(float)) ||
            (lstm && memcmp(c1, c + b * H, H * sizeof(float)))) {
            fprintf(stderr, "cell %d weights %d B %zu H %zu reverse %d lengths %d: row %zu differs from its run alone\n",
                    (int)cell, (int)format, B, H, reverse, with_lengths, b);
            differing = 1;
        }
    }
    free(x), free(h0), free(c0), free(lengths), free(y), free(h), free(c), free(y1), free(h1), free(c1);
    return differing;
}

/* A bidirectional layer's two directions in one call against each run alone, bit for bit: directions
   whose W_hh together pass half the L3 run one after the other on all the threads unless they have many rows,
   others each on its own (sequences_beside, pool.c). Both directions take direction 0's weights here, the
   second reversed. */
static int directions_agree(rk_cell cell, size_t B, size_t T, size_t I, size_t H) {
    size_t G = rk_cell_gates(cell), state_bytes = B * H * sizeof(float);
    int lstm = cell == RK_CELL_LSTM;
    float *x = values(B * T * I, 1), *h0 = values(B * H, 10), *c0 = values(B * H, 12);
    float *y = calloc(B * T * 2 * H, sizeof(float)), *y_alone = calloc(B * T * H, sizeof(float));
    float *h_alone = malloc(state_bytes), *c_alone = lstm ? malloc(state_bytes) : NULL;
    seeded_weights weights = weights_of(cell, RK_WEIGHTS_FLOAT32, I, H, 0);
    rk_sequence sequences[2];
    for (int d = 0; d < 2; d++) {
        sequences[d] = (rk_sequence){
            .cell = cell, .batch = B, .steps = T, .input_size = I, .hidden = H, .x = x, .ldx = I,
            .input_bias = weights.input_bias, .recurrent_bias = weights.recurrent_bias, .reverse = d,
            .gx = malloc(B * T * rk_gate_columns(G, H) * sizeof(float)), .h = malloc(state_bytes),
            .h_spare = malloc(state_bytes),
            .partial = malloc(RK_MAX_THREADS * rk_step_partial_size(G, B, H, RK_WEIGHTS_FLOAT32) * sizeof(float)),
            .c = lstm ? malloc(state_bytes) : NULL, .y = y + d * H, .ldy = 2 * H,
        };
        memcpy(sequences[d].h, h0, state_bytes);
        if (lstm) memcpy(sequences[d].c, c0, state_bytes);
        use_packed(&sequences[d], weights.packed);
    }
    rk_run_sequences(sequences, 2);
    int differing = 0;
    for (int d = 0; d < 2; d++) {
        run_rows(cell, RK_WEIGHTS_FLOAT32, 0, B, T, I, H, d, NULL, x, h0, c0, y_alone, h_alone, c_alone);
        for (size_t row_step = 0; row_step < B * T; row_step++)
            differing |= memcmp(y + row_step * 2 * H + d * H, y_alone + row_step * H, H * sizeof(float)) != 0;
        differing |= memcmp(sequences[d].h, h_alone, state_bytes) != 0 || (lstm && memcmp(sequences[d].c, c_alone, state_bytes) != 0);
        free(sequences[d].gx), free(sequences[d].h), free(sequences[d].h_spare), free(sequences[d].partial);
        free(sequences[d].c), free(sequences[d].x_bf16), free(sequences[d].recurrent_widened);
    }
    if (differing)
        fprintf(stderr, "cell %d B %zu T %zu I %zu H %zu: two directions in one call differ from each run alone\n", (int)cell,
                B, T, I, H);
    free(x), free(h0), free(c0), free(y), free(y_alone), free(h_alone), free(c_alone), free_weights(weights);
    return differing;
}

/* A product whose sums start from rows of another matrix (rk_product's `start`, as a step's start from its
   gx), rows ldstart apart, against the sums in double: Y = start + X · Wᵀ, over one k block and over several
   (K past the product's k block, whose later blocks go on from Y, not from start). 1 when an element is off
   by more than 1e-5 of the magnitudes summed into it. */
static int product_start_agrees(size_t M, size_t N, size_t K) {
    size_t ldstart = N + 5;
    float *X = values(M * K, 2), *W = values(N * K, 3), *start = values(M * ldstart, 4), *Y = malloc(M * N * sizeof(float));
    float *P = malloc(rk_gemm_packed_size(N, K) * sizeof(float));
    rk_gemm_pack(N, K, W, P);
    rk_product product = {.M = M, .N = N, .K = K, .X = X, .ldx = K, .P = P, .Y = Y, .ldy = N, .group = SIZE_MAX,
                          .start = start, .ldstart = ldstart};
    rk_gemm_packed(&product, 0, M, 0, rk_gemm_panels(N));
    int differing = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            double sum = start[m * ldstart + n], magnitude = fabs(sum);
            for (size_t k = 0; k < K; k++) {
                double term = (double)X[m * K + k] * W[n * K + k];
                sum += term, magnitude += fabs(term);
            }
            differing |= fabs(Y[m * N + n] - sum) > 1e-5 * magnitude;
        }
    if (differing) fprintf(stderr, "bounds: a product of M %zu N %zu K %zu starting from another matrix is off\n", M, N, K);
    free(X), free(W), free(start), free(Y), free(P);
    return differing;
}

/* A sequence run by the pool against a driver written here: the whole projection as one product, then
   every step in turn over all its unit blocks; 0 when the two agree bit for bit. */
static int driver_agrees(rk_cell cell, size_t B, size_t T, size_t I, size_t H, int reverse, int with_lengths) {
    size_t G = rk_cell_gates(cell), columns = rk_gate_columns(G, H);
    float *x = values(B * T * I, 1), *h0 = values(B * H, 10), *c0 = values(B * H, 12);
    size_t *lengths = NULL, length = T;
    if (with_lengths) {
        lengths = malloc(B * sizeof(size_t));
        length = 0;
        for (size_t b = 0; b < B; b++) lengths[b] = T - (b * 5) % T, length = lengths[b] > length ? lengths[b] : length;
    }
    int lstm = cell == RK_CELL_LSTM;
    float *y = calloc(B * T * H, sizeof(float)), *h = malloc(B * H * sizeof(float)), *c = lstm ? malloc(B * H * sizeof(float)) : NULL;
    run_rows(cell, RK_WEIGHTS_FLOAT32, 0, B, T, I, H, reverse, lengths, x, h0, c0, y, h, c);

    seeded_weights weights = weights_of(cell, RK_WEIGHTS_FLOAT32, I, H, 0);
    float *gx = malloc(B * T * columns * sizeof(float)), *partial = malloc(rk_step_partial_size(G, B, H, RK_WEIGHTS_FLOAT32) * sizeof(float));
    float *y_ref = calloc(B * T * H, sizeof(float)), *state[2] = {malloc(B * H * sizeof(float)), malloc(B * H * sizeof(float))};
    float *c_ref = lstm ? malloc(B * H * sizeof(float)) : NULL;
    memcpy(state[0], h0, B * H * sizeof(float));
    if (lstm) memcpy(c_ref, c0, B * H * sizeof(float));
    rk_product projection = {B * T, columns, I, x, I, weights.packed.input, weights.input_bias, gx, B * columns, T, columns};
    rk_gemm_packed(&projection, 0, B * T, 0, rk_gemm_panels(columns));
    for (size_t i = 0; i < length; i++) {
        size_t t = reverse ? length - 1 - i : i;
        rk_step step = {
            .cell = cell, .batch = B, .hidden = H, .weights = weights.packed.recurrent,
            .bias = weights.recurrent_bias, .gx = gx + t * B * columns, .ldgx = columns,
            .input_size = I, .h_prev = state[i % 2], .h_next = state[(i + 1) % 2], .c = c_ref, .y = y_ref + t * H,
            .ldy = T * H, .lengths = lengths, .t = t, .partial = partial,
        };
        rk_recurrent_step(&step, 0, (H + RK_UNITS - 1) / RK_UNITS);
    }
    int differing = memcmp(y, y_ref, B * T * H * sizeof(float)) || memcmp(h, state[length % 2], B * H * sizeof(float)) ||
                    (lstm && memcmp(c, c_ref, B * H * sizeof(float)));
    if (differing)
        fprintf(stderr, "cell %d B %zu T %zu I %zu H %zu reverse %d lengths %d: the pool's run differs from the driver's\n",
                (int)cell, B, T, I, H, reverse, with_lengths);
    free(x), free(h0), free(c0), free(lengths), free(y), free(h), free(c), free_weights(weights), free(gx), free(partial);
    free(y_ref), free(state[0]), free(state[1]), free(c_ref);
    return differing;
}

/* One step of B rows over all unit blocks at once, and again as two ranges split after block 3, which
   no chunk of a batched gru's step starts at (its tiles take pairs of blocks from an even one, and an
   odd start takes the row groups instead); 0 when the two agree bit for bit. */
static int split_step_agrees(rk_cell cell, rk_weights format, size_t B, size_t H) {
    size_t G = rk_cell_gates(cell), columns = rk_gate_columns(G, H);
    size_t units = (H + RK_UNITS - 1) / RK_UNITS;
    seeded_weights weights = weights_of(cell, format, 3, H, 0);
    float *gx = values(B * columns, 3), *h_prev = values(B * H, 10), *c0 = values(B * H, 12);
    float *partial = malloc(rk_step_partial_size(G, B, H, format) * sizeof(float));
    float *h_next[2], *c[2];
    for (int split = 0; split < 2; split++) {
        h_next[split] = malloc(B * H * sizeof(float)), c[split] = malloc(B * H * sizeof(float));
        memcpy(c[split], c0, B * H * sizeof(float));
        rk_step step = {
            .cell = cell, .batch = B, .hidden = H, .weights = weights.packed.recurrent,
            .half_weights = weights.packed.half_recurrent, .bias = weights.recurrent_bias, .gx = gx, .ldgx = columns, .h_prev = h_prev,
            .h_next = h_next[split], .c = cell == RK_CELL_LSTM ? c[split] : NULL, .partial = partial,
        };
        if (split) {
            rk_recurrent_step(&step, 0, 3);
            rk_recurrent_step(&step, 3, units);
        } else {
            rk_recurrent_step(&step, 0, units);
        }
    }
    int differing = memcmp(h_next[0], h_next[1], B * H * sizeof(float)) || memcmp(c[0], c[1], B * H * sizeof(float));
    if (differing)
        fprintf(stderr, "cell %d weights %d B %zu H %zu: a step split after block 3 differs from the whole step\n",
                (int)cell, (int)format, B, H);
    free_weights(weights), free(gx), free(h_prev), free(c0), free(partial);
    for (int split = 0; split < 2; split++) free(h_next[split]), free(c[split]);
    return differing;
}

/* Packing a block of `block` rows at a time into a zeroed buffer (rk_gates_pack_rows, rk_gemm_pack_rows:
   how the loader packs W as it reads it) gives what packing all of W gives (rk_input_pack,
   rk_recurrent_pack_half, rk_gates_pack_bf16, rk_gemm_pack), and in float32 that is the layout
   recur_kernels.h states: P[p][k][c] is reordered row n = p·16 + c, which for gates is W's row
   g·H + u·RK_UNITS + l where n = (u·G + g)·RK_UNITS + l (zero past H units and past the last gate).
   1 on a difference. */
static int packing_agrees(size_t G, size_t H, size_t K, rk_weights format, size_t block) {
    size_t rows = G * H, bytes_each = format == RK_WEIGHTS_FLOAT32 ? sizeof(float) : sizeof(uint16_t);
    size_t count = format == RK_WEIGHTS_BFLOAT16 ? rk_gates_packed_size_bf16(G, H, K) : rk_input_packed_size(G, H, K);
    float *W = values(rows * K, (unsigned)(G + H + K)), *gemm_whole = malloc(rk_gemm_packed_size(rows, K) * sizeof(float));
    float *gemm_blocks = calloc(rk_gemm_packed_size(rows, K), sizeof(float));
    unsigned char *whole = malloc(count * bytes_each), *blocks = calloc(count, bytes_each);
    if (format == RK_WEIGHTS_FLOAT32) rk_input_pack(G, H, K, W, (float *)whole);
    else if (format == RK_WEIGHTS_FLOAT16) rk_recurrent_pack_half(G, H, W, (uint16_t *)whole); /* K = H */
    else rk_gates_pack_bf16(G, H, K, W, (uint16_t *)whole);
    rk_gemm_pack(rows, K, W, gemm_whole);
    for (size_t first = 0; first < rows; first += block) {
        size_t n = rows - first < block ? rows - first : block;
        rk_gates_pack_rows(G, H, K, first, n, W + first * K, blocks, format);
        rk_gemm_pack_rows(rows, K, first, n, W + first * K, gemm_blocks);
    }
    int differs = memcmp(whole, blocks, count * bytes_each) != 0 ||
                  memcmp(gemm_whole, gemm_blocks, rk_gemm_packed_size(rows, K) * sizeof(float)) != 0;
    for (size_t n = 0; n < rk_gemm_packed_size(rows, K) / K; n++)
        for (size_t k = 0; k < K; k++) {
            float packed = gemm_blocks[(n / 16 * K + k) * 16 + n % 16];
            differs |= packed != (n < rows ? W[n * K + k] : 0.0f);
            if (format != RK_WEIGHTS_FLOAT32 || n >= rk_gate_columns(G, H)) continue;
            size_t block_index = n / RK_UNITS, g = block_index % G, j = block_index / G * RK_UNITS + n % RK_UNITS;
            packed = ((const float *)blocks)[(n / 16 * K + k) * 16 + n % 16];
            differs |= packed != (j < H ? W[(g * H + j) * K + k] : 0.0f);
        }
    if (differs) fprintf(stderr, "bounds: packing G %zu H %zu K %zu format %d in blocks of %zu rows differs\n", G, H, K, (int)format, block);
    free(W), free(gemm_whole), free(gemm_blocks), free(whole), free(blocks);
    return differs;
}

int main(void) {
    /* A variant the CPU cannot run is ignored by the kernels; here that would compare a variant with
       itself, so it is an error. */
    const char *wanted = getenv("RECUR_KERNELS");
    if (wanted && strcmp(wanted, rk_kernels_name()) != 0) {
        fprintf(stderr, "bounds: RECUR_KERNELS=%s, but the kernels run %s\n", wanted, rk_kernels_name());
        return 1;
    }
    /* Only the avx512 kernels have multiply-adds of 16 floats to time; the answer is measured once. */
    int wide = rk_wide_multiply_adds();
    if ((wide && strcmp(rk_kernels_name(), "avx512") != 0) || wide != rk_wide_multiply_adds()) {
        fprintf(stderr, "bounds: rk_wide_multiply_adds() %d with the %s kernels, then %d\n", wide, rk_kernels_name(),
                rk_wide_multiply_adds());
        return 1;
    }
    const rk_cell cells[] = {RK_CELL_RNN_TANH, RK_CELL_RNN_RELU, RK_CELL_LSTM, RK_CELL_GRU};
    const size_t batches[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 16, 17, 20, 29};
    const size_t hiddens[] = {3, 8, 20, 33, 140};
    for (size_t c = 0; c < sizeof cells / sizeof *cells; c++)
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
            for (size_t h = 0; h < sizeof hiddens / sizeof *hiddens; h++)
                for (rk_weights format = RK_WEIGHTS_FLOAT32; format <= RK_WEIGHTS_BFLOAT16; format++)
                    run(cells[c], batches[b], 3, 5 + h, hiddens[h], 1 + (int)(b % 2), format, (int)((b + h) % 2));
    /* Steps that read gx (I > 2H) over 8-15 rows of 256 units or more: products with the avx2 kernels, fused
       tiles with the others, which must give the same bits. */
    const size_t gx_product_batches[] = {8, 11, 12, 13};
    for (size_t c = 0; c < sizeof cells / sizeof *cells; c++)
        for (size_t b = 0; b < sizeof gx_product_batches / sizeof *gx_product_batches; b++)
            for (rk_weights format = RK_WEIGHTS_FLOAT32; format <= RK_WEIGHTS_BFLOAT16; format++)
                run(cells[c], gx_product_batches[b], 3, 600, 260, 1 + (int)(b % 2), format, (int)(b % 2));
    int differing = 0;
    for (size_t c = 0; c < sizeof cells / sizeof *cells; c++)
        for (int reverse = 0; reverse <= 1; reverse++)
            for (int with_lengths = 0; with_lengths <= 1; with_lengths++)
                differing |= rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 23, 5, 7, 44, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 23, 3, 7, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 12, 3, 7, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 8, 3, 7, 44, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 33, 3, 50, 20, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 17, 2, 650, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 7, 2, 650, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 10, 2, 650, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 5, 2, 650, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 15, 2, 650, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 13, 4, 256, 128, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 13, 4, 256, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 12, 3, 7, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 9, 2, 7, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 11, 2, 7, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 14, 2, 7, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 15, 2, 7, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 10, 2, 650, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 29, 4, 256, 128, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 29, 2, 8, 1024, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 13, 2, 1024, 64, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 5, 60, 37, 100, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 6, 5, 300, 150, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT32, 7, 5, 40, 150, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT16, 23, 5, 7, 44, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT16, 12, 3, 7, 300, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_FLOAT16, 13, 4, 256, 520, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_BFLOAT16, 23, 5, 7, 44, reverse, with_lengths) |
                             rows_agree_alone(cells[c], RK_WEIGHTS_BFLOAT16, 12, 3, 7, 300, reverse, with_lengths);
    const size_t split_batches[] = {2, 5, 7, 9, 13};
    for (size_t c = 0; c < sizeof cells / sizeof *cells; c++)
        for (size_t b = 0; b < sizeof split_batches / sizeof *split_batches; b++)
            for (rk_weights format = RK_WEIGHTS_FLOAT32; format <= RK_WEIGHTS_FLOAT16; format++)
                differing |= split_step_agrees(cells[c], format, split_batches[b], 44) |
                             split_step_agrees(cells[c], format, split_batches[b], 300);
    /* Steps too small to split between threads, whose input projection is computed in blocks beside them:
       blocks of one full tile of rows or 4 steps, the last one short (B = 1 T = 100) or whole (B = 3 T = 100
       in AVX2's tiles of 6 rows), and of more steps (T = 400 and 1000: at most 64 blocks); the T = 400
       projection is large enough to take a worker that sleeps, so that case runs in blocks whatever the
       worker was doing. Then steps big enough to split (over 2¹⁵ multiply-adds, in every cell here) that
       run beside a projection of three times their work or more (steps_beside_projection), the last block
       short. */
    for (size_t c = 0; c < sizeof cells / sizeof *cells; c++)
        for (int reverse = 0; reverse <= 1; reverse++)
            for (int with_lengths = 0; with_lengths <= 1; with_lengths++)
                differing |= driver_agrees(cells[c], 1, 100, 200, 40, reverse, with_lengths) |
                             driver_agrees(cells[c], 3, 100, 130, 20, reverse, with_lengths) |
                             driver_agrees(cells[c], 1, 1000, 33, 11, reverse, with_lengths) |
                             driver_agrees(cells[c], 2, 400, 600, 40, reverse, with_lengths) |
                             driver_agrees(cells[c], 2, 50, 600, 130, reverse, with_lengths);
    /* W_hh of more than 32 MiB, whose odd steps take each chunk backward in pieces of a few unit blocks,
       the last piece first (an odd number of blocks for gru, whose tiles take pairs). */
    const struct { rk_cell cell; size_t hidden; } streamed[] = {{RK_CELL_RNN_TANH, 2900}, {RK_CELL_LSTM, 1450}, {RK_CELL_GRU, 1683}};
    for (size_t i = 0; i < sizeof streamed / sizeof *streamed; i++)
        differing |= driver_agrees(streamed[i].cell, 3, 4, 7, streamed[i].hidden, 0, 0) |
                     driver_agrees(streamed[i].cell, 2, 3, 7, streamed[i].hidden, 1, 1);
    /* Two directions of 33 MiB of W_hh each, past half of any L3 of up to 128 MiB: one after the other over 2 rows,
       beside each other over 64; and two of 6 KiB, beside each other. */
    differing |= directions_agree(RK_CELL_LSTM, 2, 3, 7, 1450) | directions_agree(RK_CELL_LSTM, 64, 1, 7, 1450) |
                 directions_agree(RK_CELL_GRU, 3, 5, 9, 40);
    differing |= product_start_agrees(13, 40, 37) | product_start_agrees(7, 300, 700);
    const size_t packing_gates[] = {1, 3, 4}, packing_hiddens[] = {3, 20, 33}, packing_blocks[] = {1, 7, 64};
    for (size_t g = 0; g < 3; g++)
        for (size_t h = 0; h < 3; h++)
            for (size_t b = 0; b < 3; b++)
                for (rk_weights format = RK_WEIGHTS_FLOAT32; format <= RK_WEIGHTS_BFLOAT16; format++) {
                    size_t K = format == RK_WEIGHTS_FLOAT16 ? packing_hiddens[h] : 5 + 14 * b; /* odd K: bfloat16's zero pair half */
                    differing |= packing_agrees(packing_gates[g], packing_hiddens[h], K, format, packing_blocks[b]);
                }
    return differing;
}
